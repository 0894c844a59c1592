/* event.c: event lifecycle: start, step, reap (see event.h). */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>

#include "instance.h"
#include "log.h"
#include "rpc.h"
#include "server.h"

const msgpack_object kps__nil_object = {MSGPACK_OBJECT_NIL, {0}};

static kps_idmap_t by_id;
static kps_event_t *oldest, *newest;
static int64_t next_seq;

static void list_remove(kps_event_t *ev) {
  if (ev->prev) ev->prev->next = ev->next;
  else oldest = ev->next;
  if (ev->next) ev->next->prev = ev->prev;
  else newest = ev->prev;
  ev->prev = ev->next = NULL;
}

static void list_append(kps_event_t *ev) {
  ev->prev = newest;
  ev->next = NULL;
  if (newest) newest->next = ev;
  else oldest = ev;
  newest = ev;
}

static void touch(kps_event_t *ev) {
  ev->last_ms = kps__now_ms();
  if (newest != ev) {
    list_remove(ev);
    list_append(ev);
  }
}

static void attach(kps_event_t *ev, kps_conn_t *c, int64_t msgid) {
  ev->conn = c;
  ev->msgid = msgid;
  c->event = ev;
}

static void detach(kps_event_t *ev) {
  if (ev->conn != NULL) ev->conn->event = NULL;
  ev->conn = NULL;
}

void kps__event_finish(kps_event_t *ev) {
  kps__idmap_remove(&by_id, &ev->node);
  list_remove(ev);
  detach(ev);
  if (ev->free_fn) ev->free_fn(ev->data);
  kps__instance_event_end(ev->inst);
  kps__counters.events_finished++;
  free(ev);
}

msgpack_packer *kps__event_reply_begin(kps_event_t *ev) {
  msgpack_packer *pk = kps__conn_reply_begin(ev->conn, ev->msgid);
  msgpack_pack_map(pk, 2);
  msgpack_pack_str_with_body(pk, KPS_KEY_EVENT_ID, sizeof(KPS_KEY_EVENT_ID) - 1);
  msgpack_pack_int64(pk, ev->node.id);
  msgpack_pack_str_with_body(pk, KPS_KEY_DATA, sizeof(KPS_KEY_DATA) - 1);
  return pk;
}

void kps__event_reply_end(kps_event_t *ev) {
  kps_conn_t *c = ev->conn;
  detach(ev);
  touch(ev);
  kps__conn_reply_end(c);
}

int kps__event_start(kps_conn_t *c, int64_t msgid, kps_instance_t *inst, kps_phase_t phase,
                     char *err, size_t errlen) {
  if (by_id.count >= kps__limits.max_events) {
    kps__counters.events_refused++;
    snprintf(err, errlen, "too many events in flight (max_events %zu)", kps__limits.max_events);
    return -1;
  }
  kps_event_t *ev = calloc(1, sizeof(*ev));
  if (ev == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  ev->inst = inst;
  ev->phase = phase;
  ev->node.id = kps__id_base() + next_seq++;
  ev->last_ms = kps__now_ms();
  kps__idmap_insert(&by_id, &ev->node);
  list_append(ev);
  kps__instance_event_begin(inst);
  kps__counters.events_started++;
  attach(ev, c, msgid);
  /* The handler answers with kps_call, kps_done or kps_exit, now or later. */
  inst->plugin->phases[phase](ev);
  return 0;
}

int kps__event_step(kps_conn_t *c, int64_t msgid, int64_t id, const msgpack_object *data,
                    char *err, size_t errlen) {
  kps_idmap_node_t *n = kps__idmap_find(&by_id, id);
  kps_event_t *ev = (kps_event_t *)n;
  if (ev == NULL) {
    snprintf(err, errlen, KPS_ERR_NO_EVENT, (long long)id);
    return -1;
  }
  if (ev->conn != NULL || !ev->call_pending) {
    snprintf(err, errlen, "event #%lld is not waiting for a Step", (long long)id);
    return -1;
  }
  kps_result_cb cb = ev->cb;
  void *ud = ev->cb_ud;
  ev->cb = NULL;
  ev->cb_ud = NULL;
  ev->call_pending = 0;
  attach(ev, c, msgid);
  touch(ev);
  if (cb == NULL) {
    kps_done(ev); /* a call with no continuation ends the event */
    return 0;
  }
  cb(ev, (const kps_value_t *)(data != NULL ? data : &kps__nil_object), ud);
  return 0;
}

void kps__event_conn_lost(kps_event_t *ev) {
  KPS_DEBUG("event #%lld lost its connection before the reply; ended", (long long)ev->node.id);
  ev->conn = NULL;
  kps__counters.events_reaped++;
  kps__event_finish(ev);
}

void kps__event_reap(uint64_t now_ms) {
  while (oldest != NULL && now_ms - oldest->last_ms >= kps__limits.event_timeout_ms) {
    kps_event_t *ev = oldest;
    KPS_INFO("event #%lld (%s, %s) reaped after %llu ms without progress", (long long)ev->node.id,
             ev->inst->plugin->name, kps_phase_name(ev->phase),
             (unsigned long long)(now_ms - ev->last_ms));
    kps_conn_t *c = ev->conn;
    int64_t msgid = ev->msgid, id = ev->node.id;
    kps__counters.events_reaped++;
    kps__event_finish(ev);
    if (c != NULL) /* the plugin never answered: tell Kong */
      kps__conn_reply_error(c, msgid, "event #%lld timed out in the plugin", (long long)id);
  }
}

void kps__event_abort_all(void) {
  while (oldest != NULL) {
    kps_event_t *ev = oldest;
    kps_conn_t *c = ev->conn;
    int64_t msgid = ev->msgid;
    kps__event_finish(ev);
    if (c != NULL) kps__conn_reply_error(c, msgid, "plugin server is shutting down");
  }
  kps__idmap_free(&by_id);
}

size_t kps__event_count(void) { return by_id.count; }

kps_phase_t kps_event_phase(const kps_event_t *ev) { return ev->phase; }
int64_t kps_event_id(const kps_event_t *ev) { return ev->node.id; }
kps_instance_t *kps_event_instance(const kps_event_t *ev) { return ev->inst; }
void *kps_event_data(const kps_event_t *ev) { return ev->data; }

void kps_event_set_data(kps_event_t *ev, void *data, void (*free_fn)(void *)) {
  if (ev->free_fn && ev->data != data) ev->free_fn(ev->data);
  ev->data = data;
  ev->free_fn = free_fn;
}
