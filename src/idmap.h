/* idmap.h: an intrusive hash table from 64-bit ids to objects.
 * Embed a kps_idmap_node_t in the object; insert and remove never allocate
 * (the bucket array grows by doubling when the table fills). */
#ifndef KPS_IDMAP_H
#define KPS_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct kps_idmap_node_s {
  int64_t id;
  struct kps_idmap_node_s *next;
} kps_idmap_node_t;

typedef struct kps_idmap_s {
  kps_idmap_node_t **buckets;
  size_t nbuckets; /* power of two */
  size_t count;
} kps_idmap_t;

void kps__idmap_init(kps_idmap_t *m);
void kps__idmap_free(kps_idmap_t *m);
/* The caller sets node->id first.  Returns -1 only if growing failed while
 * the table is badly overloaded; the node is inserted either way. */
int kps__idmap_insert(kps_idmap_t *m, kps_idmap_node_t *node);
kps_idmap_node_t *kps__idmap_find(const kps_idmap_t *m, int64_t id);
void kps__idmap_remove(kps_idmap_t *m, kps_idmap_node_t *node);

#endif
