/* event.h: one phase of one request (HandleEvent), driven Step by Step.
 *
 * An event is global to the process: Kong may send its Steps on any pooled
 * connection.  Each event is in one of two states:
 *   - owing a reply: a HandleEvent or Step is waiting on `conn`;
 *   - waiting for Kong: a PDK call was sent, `cb` will get the result.
 * Kong abandons events (kong.response.exit, a Lua error in a PDK call);
 * the housekeeping tick reaps those after the event timeout. */
#ifndef KPS_EVENT_H
#define KPS_EVENT_H

#include <stdint.h>
#include <msgpack.h>

#include "conn.h"
#include "idmap.h"
#include "kps_plugin.h"

struct kps_event_s {
  kps_idmap_node_t node; /* node.id is the event id */
  kps_instance_t *inst;
  kps_phase_t phase;
  kps_result_cb cb;      /* continuation for the pending PDK call */
  void *cb_ud;
  int call_pending;      /* a PDK call was sent and Kong owes a Step */
  kps_conn_t *conn;      /* connection owed a reply, or NULL */
  int64_t msgid;
  uint64_t last_ms;      /* last activity, for reaping */
  void *data;
  void (*free_fn)(void *);
  struct kps_event_s *prev, *next; /* oldest activity first */
};

/* HandleEvent: starts an event and runs the phase handler.  Returns 0 (a
 * reply was sent or will be), or -1 with a message in err. */
int kps__event_start(kps_conn_t *c, int64_t msgid, kps_instance_t *inst, kps_phase_t phase,
                     char *err, size_t errlen);
/* Step*: resumes event `id` with the PDK result (data NULL = no Data key). */
int kps__event_step(kps_conn_t *c, int64_t msgid, int64_t id, const msgpack_object *data,
                    char *err, size_t errlen);
/* The connection owed a reply by ev went away: the event cannot go on. */
void kps__event_conn_lost(kps_event_t *ev);
void kps__event_reap(uint64_t now_ms);
void kps__event_abort_all(void);
size_t kps__event_count(void);

/* A result value standing for "no Data" (nil). */
extern const msgpack_object kps__nil_object;

#endif

/* For pdk_call.c: a reply to the request the event owes.  begin packs
 * [1, msgid, nil, {"EventId": id, "Data": and returns the packer for the
 * Data value; end sends it and frees the connection for the next request. */
msgpack_packer *kps__event_reply_begin(kps_event_t *ev);
void kps__event_reply_end(kps_event_t *ev);
/* Ends the event and frees it (runs the data free_fn). */
void kps__event_finish(kps_event_t *ev);
