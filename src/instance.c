/* instance.c: the instance registry (see instance.h). */
#include "instance.h"

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "plugins.h"
#include "server.h"

static kps_idmap_t by_id;
static kps_instance_t *head; /* all live (not closed) instances */
static int64_t next_seq;

static void unlink_live(kps_instance_t *inst) {
  if (inst->prev) inst->prev->next = inst->next;
  else head = inst->next;
  if (inst->next) inst->next->prev = inst->prev;
  inst->prev = inst->next = NULL;
}

static void destroy(kps_instance_t *inst) {
  if (inst->plugin->instance_close) inst->plugin->instance_close(inst, inst->data);
  kps__config_free(inst->config);
  free(inst);
}

kps_instance_t *kps__instance_start(const char *name, size_t namelen, const char *config,
                                    size_t configlen, char *err, size_t errlen) {
  const kps_plugin_t *plugin = kps__plugins_find(name, namelen);
  kps_instance_t *inst;
  kps_config_t *cfg;

  if (plugin == NULL) {
    snprintf(err, errlen, "no plugin named \"%.*s\" in this server", (int)(namelen > 64 ? 64 : namelen),
             name);
    return NULL;
  }
  if (by_id.count >= kps__limits.max_instances) {
    snprintf(err, errlen, "%s: too many instances (max_instances %zu)", plugin->name,
             kps__limits.max_instances);
    return NULL;
  }
  cfg = kps__config_parse(plugin, config, configlen, err, errlen);
  if (cfg == NULL) return NULL;
  inst = calloc(1, sizeof(*inst));
  if (inst == NULL) {
    kps__config_free(cfg);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  inst->plugin = plugin;
  inst->config = cfg;
  inst->start_time = kps__wall_time();
  inst->last_used_ms = kps__now_ms();
  if (plugin->instance_start) {
    char why[512] = "";
    if (plugin->instance_start(inst, cfg, &inst->data, why, sizeof(why)) != 0) {
      snprintf(err, errlen, "%s", why[0] ? why : "the plugin refused the config");
      kps__config_free(cfg);
      free(inst);
      return NULL;
    }
  }
  inst->node.id = kps__id_base() + next_seq++;
  kps__idmap_insert(&by_id, &inst->node);
  inst->next = head;
  if (head) head->prev = inst;
  head = inst;
  return inst;
}

kps_instance_t *kps__instance_find(int64_t id) {
  kps_idmap_node_t *n = kps__idmap_find(&by_id, id);
  return n ? (kps_instance_t *)n : NULL;
}

void kps__instance_close(kps_instance_t *inst) {
  if (inst->closed) return;
  inst->closed = 1;
  kps__idmap_remove(&by_id, &inst->node);
  unlink_live(inst);
  if (inst->active_events == 0) destroy(inst);
}

void kps__instance_event_begin(kps_instance_t *inst) {
  inst->active_events++;
  inst->events_total++;
  inst->last_used_ms = kps__now_ms();
}

void kps__instance_event_end(kps_instance_t *inst) {
  inst->active_events--;
  inst->last_used_ms = kps__now_ms();
  if (inst->closed && inst->active_events == 0) destroy(inst);
}

void kps__instance_hold(kps_instance_t *inst) { inst->active_events++; }

void kps__instance_release(kps_instance_t *inst) {
  inst->active_events--;
  if (inst->closed && inst->active_events == 0) destroy(inst);
}

void kps__instance_expire(uint64_t now_ms) {
  kps_instance_t *inst = head;
  while (inst != NULL) {
    kps_instance_t *next = inst->next;
    if (inst->active_events == 0 && now_ms - inst->last_used_ms >= kps__limits.instance_idle_ms) {
      KPS_INFO("instance #%lld of %s expired after %llu ms idle", (long long)inst->node.id,
               inst->plugin->name, (unsigned long long)(now_ms - inst->last_used_ms));
      kps__counters.instances_expired++;
      kps__instance_close(inst);
    }
    inst = next;
  }
}

void kps__instance_close_all(void) {
  while (head != NULL) kps__instance_close(head);
  if (by_id.count == 0) kps__idmap_free(&by_id);
}

size_t kps__instance_count(void) { return by_id.count; }

size_t kps__instance_count_for(const kps_plugin_t *plugin) {
  size_t n = 0;
  for (kps_instance_t *i = head; i != NULL; i = i->next) n += i->plugin == plugin;
  return n;
}

int64_t kps_instance_id(const kps_instance_t *inst) { return inst->node.id; }
void *kps_instance_data(const kps_instance_t *inst) { return inst->data; }
const kps_config_t *kps_instance_config(const kps_instance_t *inst) { return inst->config; }
