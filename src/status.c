/* status.c: what GetStatus and InstanceStatus report (see status.h). */
#include "status.h"

#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "event.h"
#include "instance.h"
#include "plugins.h"
#include "server.h"

#define STATUS_MAX_DEPTH 8

struct kps_status_s {
  cJSON *stack[STATUS_MAX_DEPTH];
  int top;
};

void kps_status_counter(kps_status_t *st, const char *name, uint64_t value) {
  cJSON_AddNumberToObject(st->stack[st->top], name, (double)value);
}

void kps_status_string(kps_status_t *st, const char *name, const char *value) {
  cJSON_AddStringToObject(st->stack[st->top], name, value ? value : "");
}

void kps_status_begin(kps_status_t *st, const char *name) {
  cJSON *o = cJSON_AddObjectToObject(st->stack[st->top], name);
  if (st->top + 1 < STATUS_MAX_DEPTH && o != NULL) st->stack[++st->top] = o;
}

void kps_status_end(kps_status_t *st) {
  if (st->top > 0) st->top--;
}

cJSON *kps__status_build(void) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddNumberToObject(root, "Pid", (double)getpid());
  cJSON_AddStringToObject(root, "Version", KPS_VERSION);
  cJSON_AddStringToObject(root, "Protocol", "MsgPack:1");
  cJSON_AddNumberToObject(root, "Instances", (double)kps__instance_count());
  cJSON_AddNumberToObject(root, "Events", (double)kps__event_count());
  cJSON_AddNumberToObject(root, "Connections", (double)kps__conn_count());

  cJSON *plugins = cJSON_AddObjectToObject(root, "Plugins");
  for (size_t i = 0; i < kps__plugins_count(); i++) {
    const kps_plugin_t *p = kps__plugins_at(i);
    cJSON *o = cJSON_AddObjectToObject(plugins, p->name);
    cJSON_AddStringToObject(o, "Version", p->version);
    cJSON_AddNumberToObject(o, "Instances", (double)kps__instance_count_for(p));
    if (p->status) {
      kps_status_t st = {{o}, 0};
      p->status(&st);
    }
  }

  const kps_counters_t *k = &kps__counters;
  cJSON *c = cJSON_AddObjectToObject(root, "Counters");
#define COUNTER(name) cJSON_AddNumberToObject(c, #name, (double)k->name)
  COUNTER(connections_accepted);
  COUNTER(connections_refused);
  COUNTER(requests);
  COUNTER(error_replies);
  COUNTER(malformed);
  COUNTER(oversized);
  COUNTER(instances_started);
  COUNTER(instances_closed);
  COUNTER(instances_expired);
  COUNTER(instance_start_errors);
  COUNTER(events_started);
  COUNTER(events_finished);
  COUNTER(events_reaped);
  COUNTER(heap_trims);
  COUNTER(events_refused);
  COUNTER(pdk_calls);
#undef COUNTER

  cJSON *l = cJSON_AddObjectToObject(root, "Limits");
  cJSON_AddNumberToObject(l, "max_message_size", (double)kps__limits.max_message_size);
  cJSON_AddNumberToObject(l, "event_timeout_ms", (double)kps__limits.event_timeout_ms);
  cJSON_AddNumberToObject(l, "instance_idle_ms", (double)kps__limits.instance_idle_ms);
  cJSON_AddNumberToObject(l, "max_events", (double)kps__limits.max_events);
  cJSON_AddNumberToObject(l, "max_instances", (double)kps__limits.max_instances);
  cJSON_AddNumberToObject(l, "max_connections", (double)kps__limits.max_connections);
  return root;
}

cJSON *kps__instance_status(const kps_instance_t *inst) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "Name", inst->plugin->name);
  cJSON_AddNumberToObject(o, "Id", (double)inst->node.id);
  cJSON_AddItemToObject(o, "Config", cJSON_Duplicate(inst->config->json, 1));
  cJSON_AddNumberToObject(o, "StartTime", inst->start_time);
  cJSON_AddNumberToObject(o, "Events", (double)inst->events_total);
  cJSON_AddNumberToObject(o, "ActiveEvents", (double)inst->active_events);
  return o;
}
