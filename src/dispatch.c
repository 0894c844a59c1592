/* dispatch.c: validates the request envelope, finds the method in a table
 * and turns a handler's error into the RPC error reply, in this one place
 * (proto/PROTOCOL.md R2, R4, R20-R24). */
#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "event.h"
#include "instance.h"
#include "json_mp.h"
#include "log.h"
#include "plugin_loader.h"
#include "plugins.h"
#include "rpc.h"
#include "server.h"
#include "status.h"
#include "value.h"

#define ERRLEN 512

typedef int (*method_fn)(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err);

/* ---- parameter helpers ------------------------------------------------- */

/* str or bin (R7). */
static int as_str(const msgpack_object *o, const char **p, size_t *n) {
  if (o == NULL || (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)) return -1;
  /* msgpack-c gives an empty string a NULL pointer */
  *p = o->via.str.size ? o->via.str.ptr : "";
  *n = o->via.str.size;
  return 0;
}

/* A param that must be a map; Kong sends an empty table as [] (R9). */
static int want_map(const msgpack_object *param, const char *method, char *err) {
  if (param->type == MSGPACK_OBJECT_MAP) return 0;
  snprintf(err, ERRLEN, "%s: expected a map parameter", method);
  return -1;
}

static void reply_json(kps_conn_t *c, int64_t msgid, cJSON *v) {
  msgpack_packer *pk = kps__conn_reply_begin(c, msgid);
  kps__json_pack(pk, v);
  kps__conn_reply_end(c);
  cJSON_Delete(v);
}

static int parse_phase(const char *p, size_t n, kps_phase_t *out) {
  for (int i = 0; i < KPS_PHASE__COUNT; i++) {
    const char *name = kps_phase_name((kps_phase_t)i);
    if (strlen(name) == n && memcmp(name, p, n) == 0) {
      *out = (kps_phase_t)i;
      return 0;
    }
  }
  return -1;
}

/* ---- methods ----------------------------------------------------------- */

static int m_start_instance(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  const char *name, *config;
  size_t namelen, configlen;
  if (want_map(param, "plugin.StartInstance", err)) return -1;
  if (as_str(kps__value_map_get(param, KPS_KEY_NAME), &name, &namelen) != 0) {
    snprintf(err, ERRLEN, "plugin.StartInstance: Name must be a string");
    return -1;
  }
  if (as_str(kps__value_map_get(param, KPS_KEY_CONFIG), &config, &configlen) != 0) {
    snprintf(err, ERRLEN, "plugin.StartInstance: Config must be a JSON string");
    return -1;
  }
  kps_instance_t *inst = kps__instance_start(name, namelen, config, configlen, err, ERRLEN);
  if (inst == NULL) {
    kps__counters.instance_start_errors++;
    KPS_WARN("StartInstance refused: %s", err);
    return -1;
  }
  kps__counters.instances_started++;
  KPS_INFO("instance #%lld of %s started", (long long)inst->node.id, inst->plugin->name);
  cJSON *st = kps__instance_status(inst);
  cJSON_DeleteItemFromObject(st, "Events");
  cJSON_DeleteItemFromObject(st, "ActiveEvents");
  reply_json(c, msgid, st);
  return 0;
}

static int m_close_instance(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  int64_t id;
  /* Kong sends the bare id; tools may send {Id: n} or {InstanceId: n}. */
  if (kps__value_int(param, &id) != 0 && kps__value_int(kps__value_map_get(param, KPS_KEY_ID), &id) != 0 &&
      kps__value_int(kps__value_map_get(param, KPS_KEY_INSTANCE_ID), &id) != 0) {
    snprintf(err, ERRLEN, "plugin.CloseInstance: expected an instance id");
    return -1;
  }
  kps_instance_t *inst = kps__instance_find(id);
  if (inst == NULL) {
    snprintf(err, ERRLEN, KPS_ERR_NO_INSTANCE, (long long)id);
    return -1;
  }
  cJSON *st = kps__instance_status(inst);
  kps__counters.instances_closed++;
  KPS_INFO("instance #%lld of %s closed", (long long)id, inst->plugin->name);
  kps__instance_close(inst);
  reply_json(c, msgid, st);
  return 0;
}

static int m_handle_event(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  int64_t id;
  const char *ename;
  size_t elen;
  kps_phase_t phase;
  if (want_map(param, "plugin.HandleEvent", err)) return -1;
  if (kps__value_int(kps__value_map_get(param, KPS_KEY_INSTANCE_ID), &id) != 0) {
    snprintf(err, ERRLEN, "plugin.HandleEvent: InstanceId must be an integer");
    return -1;
  }
  if (as_str(kps__value_map_get(param, KPS_KEY_EVENT_NAME), &ename, &elen) != 0) {
    snprintf(err, ERRLEN, "plugin.HandleEvent: EventName must be a string");
    return -1;
  }
  kps_instance_t *inst = kps__instance_find(id);
  if (inst == NULL) {
    snprintf(err, ERRLEN, KPS_ERR_NO_INSTANCE, (long long)id);
    return -1;
  }
  if (parse_phase(ename, elen, &phase) != 0 || inst->plugin->phases[phase] == NULL) {
    snprintf(err, ERRLEN, "plugin.HandleEvent: %s has no \"%.*s\" phase", inst->plugin->name,
             (int)(elen > 32 ? 32 : elen), ename);
    return -1;
  }
  return kps__event_start(c, msgid, inst, phase, err, ERRLEN);
}

static int m_step(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  int64_t id;
  if (want_map(param, "plugin.Step", err)) return -1;
  if (kps__value_int(kps__value_map_get(param, KPS_KEY_EVENT_ID), &id) != 0) {
    snprintf(err, ERRLEN, "plugin.Step: EventId must be an integer");
    return -1;
  }
  /* R12: no Data key means the PDK call returned nil. */
  return kps__event_step(c, msgid, id, kps__value_map_get(param, KPS_KEY_DATA), err, ERRLEN);
}

/* Kong 2.x sends StepError for `nil, err` results: the plugin sees nil. */
static int m_step_error(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  int64_t id;
  if (want_map(param, "plugin.StepError", err)) return -1;
  if (kps__value_int(kps__value_map_get(param, KPS_KEY_EVENT_ID), &id) != 0) {
    snprintf(err, ERRLEN, "plugin.StepError: EventId must be an integer");
    return -1;
  }
  return kps__event_step(c, msgid, id, NULL, err, ERRLEN);
}

static int m_get_plugin_info(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  const char *name;
  size_t n;
  if (as_str(param, &name, &n) != 0 && as_str(kps__value_map_get(param, KPS_KEY_NAME), &name, &n) != 0) {
    snprintf(err, ERRLEN, "plugin.GetPluginInfo: expected a plugin name");
    return -1;
  }
  const kps_plugin_t *p = kps__plugins_find(name, n);
  if (p == NULL) {
    snprintf(err, ERRLEN, "no plugin named \"%.*s\" in this server", (int)(n > 64 ? 64 : n), name);
    return -1;
  }
  reply_json(c, msgid, kps__plugin_info(p, 0));
  return 0;
}

static int m_get_status(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  reply_json(c, msgid, kps__status_build());
  return 0;
}

static int m_instance_status(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  int64_t id;
  if (kps__value_int(param, &id) != 0 && kps__value_int(kps__value_map_get(param, KPS_KEY_ID), &id) != 0) {
    snprintf(err, ERRLEN, "plugin.InstanceStatus: expected an instance id");
    return -1;
  }
  kps_instance_t *inst = kps__instance_find(id);
  if (inst == NULL) {
    snprintf(err, ERRLEN, KPS_ERR_NO_INSTANCE, (long long)id);
    return -1;
  }
  reply_json(c, msgid, kps__instance_status(inst));
  return 0;
}

/* Loads the plugins (*.so) of a directory, like -plugins-directory, and
 * answers "ok" as the reference servers do. */
static int m_set_plugin_dir(kps_conn_t *c, int64_t msgid, const msgpack_object *param, char *err) {
  const char *dir;
  size_t n;
  char path[4096];
  if (as_str(param, &dir, &n) != 0 || n == 0 || n >= sizeof(path)) {
    snprintf(err, ERRLEN, "plugin.SetPluginDir: expected a directory path");
    return -1;
  }
  memcpy(path, dir, n);
  path[n] = '\0';
  if (kps__plugins_load_dir(path, 0, err, ERRLEN) < 0) return -1;
  msgpack_packer *pk = kps__conn_reply_begin(c, msgid);
  msgpack_pack_str_with_body(pk, "ok", 2);
  kps__conn_reply_end(c);
  return 0;
}

static const struct {
  const char *name;
  method_fn fn;
} methods[] = {
    {"plugin.StartInstance", m_start_instance},
    {"plugin.CloseInstance", m_close_instance},
    {"plugin.HandleEvent", m_handle_event},
    {"plugin.Step", m_step},
    {"plugin.StepMultiMap", m_step},
    {"plugin.StepCredential", m_step},
    {"plugin.StepConsumer", m_step},
    {"plugin.StepRoute", m_step},
    {"plugin.StepService", m_step},
    {"plugin.StepMemoryStats", m_step},
    {"plugin.StepError", m_step_error},
    {"plugin.GetPluginInfo", m_get_plugin_info},
    {"plugin.GetStatus", m_get_status},
    {"plugin.InstanceStatus", m_instance_status},
    {"plugin.SetPluginDir", m_set_plugin_dir},
};

static method_fn find_method(const char *p, size_t n) {
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
    if (strlen(methods[i].name) == n && memcmp(methods[i].name, p, n) == 0) return methods[i].fn;
  return NULL;
}

int kps__dispatch(kps_conn_t *c, const msgpack_object *msg) {
  char err[ERRLEN];
  int64_t type, msgid;
  const char *method;
  size_t mlen;

  /* R4: [0, msgid, method, params] */
  if (msg->type != MSGPACK_OBJECT_ARRAY || msg->via.array.size < 1 ||
      kps__value_int(&msg->via.array.ptr[0], &type) != 0) {
    KPS_WARN("closing connection: message is not an RPC array");
    return -1;
  }
  if (type != KPS_RPC_REQUEST) {
    /* Kong sends only requests; anything else is ignored (R5). */
    KPS_DEBUG("ignoring message of type %lld", (long long)type);
    return 0;
  }
  if (msg->via.array.size != 4 || kps__value_int(&msg->via.array.ptr[1], &msgid) != 0 || msgid < 0) {
    KPS_WARN("closing connection: request without a valid msgid");
    return -1;
  }
  kps__counters.requests++;
  c->awaiting = 1;
  c->await_msgid = msgid;

  const msgpack_object *params = &msg->via.array.ptr[3];
  const msgpack_object *param = &kps__nil_object;
  if (params->type == MSGPACK_OBJECT_ARRAY) {
    if (params->via.array.size > 0) param = &params->via.array.ptr[0];
  } else {
    param = params;
  }

  method_fn fn = NULL;
  if (as_str(&msg->via.array.ptr[2], &method, &mlen) != 0) {
    snprintf(err, sizeof(err), "invalid request: method must be a string");
  } else if (mlen < sizeof(KPS_RPC_NAMESPACE) - 1 ||
             memcmp(method, KPS_RPC_NAMESPACE, sizeof(KPS_RPC_NAMESPACE) - 1) != 0) {
    const char *dot = memchr(method, '.', mlen);
    int nslen = (int)(dot ? (size_t)(dot - method) : mlen);
    snprintf(err, sizeof(err), "RPC for %.*s is not supported", nslen > 64 ? 64 : nslen, method);
  } else if ((fn = find_method(method, mlen)) == NULL) {
    snprintf(err, sizeof(err), "unknown method: %.*s", (int)(mlen > 64 ? 64 : mlen), method);
  }
  if (fn != NULL && fn(c, msgid, param, err) == 0) return 0;
  kps__conn_reply_error(c, msgid, "%s", err);
  return 0;
}
