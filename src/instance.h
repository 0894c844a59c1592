/* instance.h: plugin instances, one per plugin configuration per Kong
 * worker, global to the process (an event's calls arrive on any pooled
 * connection).  Kong never closes instances of deleted plugins, so idle
 * ones expire. */
#ifndef KPS_INSTANCE_H
#define KPS_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "idmap.h"
#include "kps_plugin.h"

struct kps_instance_s {
  kps_idmap_node_t node;      /* node.id is the instance id */
  const kps_plugin_t *plugin;
  kps_config_t *config;
  void *data;                 /* from plugin->instance_start */
  double start_time;          /* wall clock, for StartTime */
  uint64_t last_used_ms;
  uint64_t events_total;
  unsigned active_events;     /* events holding this instance */
  int closed;                 /* out of the registry, waiting for events */
  struct kps_instance_s *prev, *next;
};

/* Validates the config and starts an instance.  Returns NULL with a
 * message naming the plugin or field in err. */
kps_instance_t *kps__instance_start(const char *name, size_t namelen, const char *config,
                                    size_t configlen, char *err, size_t errlen);
kps_instance_t *kps__instance_find(int64_t id);
/* Removes the instance from the registry; it is freed once its last event
 * ends. */
void kps__instance_close(kps_instance_t *inst);
void kps__instance_event_begin(kps_instance_t *inst);
void kps__instance_event_end(kps_instance_t *inst);
/* Keeps a (possibly closed) instance alive across work done after its
 * event ended; release may free it. */
void kps__instance_hold(kps_instance_t *inst);
void kps__instance_release(kps_instance_t *inst);
/* Closes instances idle for longer than the limit (and not in use). */
void kps__instance_expire(uint64_t now_ms);
void kps__instance_close_all(void);
size_t kps__instance_count(void);
/* Live instances of one plugin (for GetStatus). */
size_t kps__instance_count_for(const kps_plugin_t *plugin);

#endif
