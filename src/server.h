/* server.h: the process-wide pieces every stage shares: the one libuv
 * loop, the configured limits, the counters reported by GetStatus, and the
 * once-a-second housekeeping tick (event reaping, instance expiry, parent
 * watch). */
#ifndef KPS_SERVER_H
#define KPS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct kps_limits_s {
  size_t max_message_size;      /* one RPC message, either direction */
  uint64_t event_timeout_ms;    /* an event Kong stopped driving is reaped */
  uint64_t instance_idle_ms;    /* an instance unused this long is closed */
  uint64_t shutdown_timeout_ms; /* SIGTERM: flush deadline */
  size_t max_events;            /* events in flight */
  size_t max_instances;         /* live instances */
  size_t max_connections;       /* open Kong connections */
} kps_limits_t;

#define KPS_DEFAULT_MAX_MESSAGE_SIZE (16u * 1024 * 1024)
#define KPS_DEFAULT_EVENT_TIMEOUT_MS 60000u
#define KPS_DEFAULT_INSTANCE_IDLE_MS 60000u
#define KPS_DEFAULT_SHUTDOWN_TIMEOUT_MS 5000u
#define KPS_DEFAULT_MAX_EVENTS 100000u
#define KPS_DEFAULT_MAX_INSTANCES 10000u
#define KPS_DEFAULT_MAX_CONNECTIONS 4096u

/* Counters; all only ever grow, except the *_active gauges. */
typedef struct kps_counters_s {
  uint64_t connections_accepted;
  uint64_t connections_refused; /* over max_connections */
  uint64_t connections_active;
  uint64_t requests;            /* RPC requests decoded */
  uint64_t error_replies;       /* replies that carried an error string */
  uint64_t malformed;           /* undecodable streams (connection closed) */
  uint64_t oversized;           /* messages over max_message_size */
  uint64_t instances_started;
  uint64_t instances_closed;
  uint64_t instances_expired;
  uint64_t instance_start_errors;
  uint64_t events_started;
  uint64_t events_finished;
  uint64_t events_reaped;       /* abandoned by Kong, ended by timeout */
  uint64_t events_refused;      /* over max_events */
  uint64_t pdk_calls;
  uint64_t heap_trims;          /* freed heap handed back to the kernel */
} kps_counters_t;

extern kps_limits_t kps__limits;
extern kps_counters_t kps__counters;

void kps__server_init(uv_loop_t *loop);
uv_loop_t *kps__server_loop(void);
/* Milliseconds on the loop's monotonic clock (uv_now). */
uint64_t kps__now_ms(void);
/* Wall-clock seconds since the epoch, as a double (for StartTime). */
double kps__wall_time(void);
/* A base that makes instance and event ids unique across restarts, so a
 * Kong worker holding an id from a previous server process gets
 * "no plugin instance" instead of someone else's instance.  Stays < 2^52,
 * so Kong's doubles hold it exactly. */
int64_t kps__id_base(void);

/* Starts the 1 s housekeeping timer; watch_parent: exit when the parent
 * process goes away (not when started by init/a supervisor: ppid 1). */
void kps__housekeeping_start(int watch_parent, void (*on_parent_gone)(void));
void kps__housekeeping_stop(void);

#endif
