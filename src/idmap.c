/* idmap.c: intrusive id -> object hash table (see idmap.h). */
#include "idmap.h"

#include <stdlib.h>

#define IDMAP_MIN_BUCKETS 64

static size_t slot(int64_t id, size_t nbuckets) {
  uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
  return (size_t)(h >> 32) & (nbuckets - 1);
}

void kps__idmap_init(kps_idmap_t *m) {
  m->buckets = NULL;
  m->nbuckets = 0;
  m->count = 0;
}

void kps__idmap_free(kps_idmap_t *m) {
  free(m->buckets);
  kps__idmap_init(m);
}

static int grow(kps_idmap_t *m) {
  size_t n = m->nbuckets ? m->nbuckets * 2 : IDMAP_MIN_BUCKETS;
  kps_idmap_node_t **b = calloc(n, sizeof(*b));
  if (b == NULL) return -1;
  for (size_t i = 0; i < m->nbuckets; i++) {
    kps_idmap_node_t *node = m->buckets[i];
    while (node != NULL) {
      kps_idmap_node_t *next = node->next;
      size_t s = slot(node->id, n);
      node->next = b[s];
      b[s] = node;
      node = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = n;
  return 0;
}

int kps__idmap_insert(kps_idmap_t *m, kps_idmap_node_t *node) {
  int rc = 0;
  if (m->count >= m->nbuckets) {
    if (grow(m) != 0 && m->nbuckets == 0) return -1;
  }
  size_t s = slot(node->id, m->nbuckets);
  node->next = m->buckets[s];
  m->buckets[s] = node;
  m->count++;
  return rc;
}

kps_idmap_node_t *kps__idmap_find(const kps_idmap_t *m, int64_t id) {
  if (m->nbuckets == 0) return NULL;
  for (kps_idmap_node_t *n = m->buckets[slot(id, m->nbuckets)]; n != NULL; n = n->next)
    if (n->id == id) return n;
  return NULL;
}

void kps__idmap_remove(kps_idmap_t *m, kps_idmap_node_t *node) {
  if (m->nbuckets == 0) return;
  kps_idmap_node_t **pp = &m->buckets[slot(node->id, m->nbuckets)];
  while (*pp != NULL) {
    if (*pp == node) {
      *pp = node->next;
      node->next = NULL;
      m->count--;
      return;
    }
    pp = &(*pp)->next;
  }
}
