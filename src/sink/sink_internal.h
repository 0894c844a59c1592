/* sink_internal.h: the sink and endpoint structures shared by sink.c
 * (registry, queue, balancing over endpoints, flush) and sink_endpoint.c
 * (one collector endpoint's connection state machine).  Not for use
 * outside src/sink.
 */
#ifndef KPS_SINK_INTERNAL_H
#define KPS_SINK_INTERNAL_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sink.h"
#include "sink_transport.h"

#define KPS__SINK_BACKOFF_MIN_MS 100
#define KPS__SINK_BACKOFF_MAX_MS 30000
#define KPS__SINK_ACK_POLL_MIN_MS 1
#define KPS__SINK_ACK_POLL_MAX_MS 32
#define KPS__SINK_DEFAULT_TIMEOUT_MS 10000
#define KPS__SINK_HOST_MAX 255
/* Replay window: records the collector's TCP acknowledged this recently
 * (and at most this many bytes of them) are sent again if the connection
 * then ends in a reset, which is how a collector that stops with unread
 * data (in its socket or its accept queue) ends it. */
#define KPS__SINK_REPLAY_MS 2000
#define KPS__SINK_REPLAY_BYTES (1u << 20)
/* TLS 1.3: a collector that sends nothing after our Finished counts as
 * having accepted the connection once it is still up this long after the
 * handshake (one that refuses our certificate alerts within a round trip). */
#define KPS__SINK_ACCEPT_GRACE_MS 1000
/* "[" host "]:" port NUL */
#define KPS__SINK_EP_NAME_MAX (KPS__SINK_HOST_MAX + 10)
#define KPS__SINK_LABEL_MAX (KPS__SINK_EP_NAME_MAX + 8)
#define KPS__SINK_NAME_MAX 320

/* One endpoint's connection states.  PROVING: handshake done, records may
 * be written, but the collector has not yet shown it accepted us. */
typedef enum kps__sink_state_e {
  KPS__SINK_IDLE = 0,
  KPS__SINK_RESOLVING,
  KPS__SINK_CONNECTING,
  KPS__SINK_HANDSHAKE,
  KPS__SINK_PROVING,
  KPS__SINK_READY,
  KPS__SINK_BACKOFF
} kps__sink_state_t;

/* A FIFO of records with its count and bytes. */
typedef struct kps__sink_list_s {
  kps__sink_rec_t *head, *tail;
  size_t count, bytes;
} kps__sink_list_t;

typedef struct kps__sink_ep_s kps__sink_ep_t;

/* A resolve request lives on its own so a timed-out one can finish late. */
typedef struct kps__sink_gai_s {
  uv_getaddrinfo_t req;
  kps__sink_ep_t *ep;
} kps__sink_gai_t;

typedef struct kps__sink_flush_s {
  uv_timer_t timer;
  void (*done_cb)(void *ud);
  void *ud;
  unsigned pending; /* sinks not yet fully closed */
  int closing;
} kps__sink_flush_t;

struct kps__sink_ep_s {
  kps_sink_t *sink;
  char *host; /* owned copy */
  int port;
  char name[KPS__SINK_EP_NAME_MAX];   /* "host:port" or "[v6]:port" */
  char label[KPS__SINK_LABEL_MAX];    /* name with the transport's scheme, for log lines */
  kps__sink_state_t state;
  kps__sink_gai_t *gai;   /* current resolve or NULL */
  struct addrinfo *addrs; /* resolved for the current attempt */
  unsigned naddrs;        /* usable (IPv4/IPv6) addresses in addrs */
  unsigned addr_start;    /* index the next attempt starts at */
  unsigned addr_base;     /* index the current attempt started at */
  unsigned addr_tried;    /* addresses tried in the current attempt */
  unsigned addr_cur;      /* index of the current connection's address */
  int last_connect_err;
  kps__sink_conn_t *conn; /* current connection or NULL */
  /* One timer, by state: connect timeout (RESOLVING..HANDSHAKE), acceptance
   * grace (PROVING), keepalive (READY, idle) or the backoff delay. */
  uv_timer_t timer;
  uv_timer_t ack_timer; /* polls SIOCOUTQ and enforces the send timeout */
  uint64_t backoff_ms;  /* the next backoff's upper bound */
  uint64_t backoff_cur; /* the current backoff's delay (state BACKOFF) */
  uint64_t ack_delay_ms, last_progress;
  kps__sink_list_t inflight; /* written on conn, not yet acknowledged on an accepted connection */
  kps__sink_list_t kept;     /* acknowledged on conn within the replay window */
  kps_sink_endpoint_stats_t st;
};

struct kps_sink_s {
  kps_sink_t *prev, *next; /* registry, until freed */
  uv_loop_t *loop;
  /* TLS key of the registry: owned copies, "" normalised to NULL. */
  char *sni, *ca, *cert, *key;
  int tls, verify;
  kps_sink_balance_t balance; /* KPS_SINK_FAILOVER when there is one endpoint */
  char name[KPS__SINK_NAME_MAX];
  uint64_t timeout_ms, keepalive_ms;
  size_t max_bytes, max_entries;
  const kps__sink_transport_t *transport;
  void *tctx;
  unsigned refs;

  kps__sink_ep_t *eps; /* neps endpoints, in configuration order */
  unsigned neps;
  unsigned rr_next;    /* round robin: the endpoint the next batch tries first */
  uv_idle_t kick;      /* runs kps__sink_dispatch on the next loop turn */
  unsigned open;       /* handles and requests that still point at this sink or its endpoints */
  uint64_t attempts;
  uint64_t rng;

  kps__sink_list_t pending; /* not written on any connection */
  kps_sink_stats_t st;      /* totals; connected and replay_bytes are computed on read */
  int closing, closed, flushing;
  kps__sink_flush_t *flush;
};

/* ---- sink.c, for sink_endpoint.c ---- */
/* Runs kps__sink_dispatch on the next loop turn (never re-entrantly). */
void kps__sink_schedule(kps_sink_t *s);
/* Frees the sink once nothing points at it any more. */
void kps__sink_finalize_if_done(kps_sink_t *s);
uint64_t kps__sink_rand(kps_sink_t *s);
void kps__sink_list_push(kps__sink_list_t *l, kps__sink_rec_t *r);
kps__sink_rec_t *kps__sink_list_pop(kps__sink_list_t *l);
/* Moves all of src in front of dst; src ends empty. */
void kps__sink_list_prepend(kps__sink_list_t *dst, kps__sink_list_t *src);
/* Frees every record of l (data included); l ends empty. */
void kps__sink_list_free(kps__sink_list_t *l);

/* ---- sink_endpoint.c, for sink.c ---- */
/* Sets up ep (host and port already set) and its handles (counted in s->open). */
void kps__sink_ep_init(kps_sink_t *s, kps__sink_ep_t *ep);
/* A connection is up (PROVING or READY): records may be written on it. */
int kps__sink_ep_usable(const kps__sink_ep_t *ep);
/* Starts a connection attempt; ep must be IDLE. */
void kps__sink_ep_connect(kps__sink_ep_t *ep);
/* Writes the next batch of the sink's pending records on ep if it can
 * (usable, no batch in flight).  Returns 1 when a batch went out. */
int kps__sink_ep_write(kps__sink_ep_t *ep);
/* Starts the keepalive timer of an accepted connection with nothing in flight. */
void kps__sink_ep_idle_check(kps__sink_ep_t *ep);
/* Ends a backoff now (flush): the endpoint may be connected again at once. */
void kps__sink_ep_wake(kps__sink_ep_t *ep);
/* Sink close: closes the connection, cancels the resolve, closes the handles. */
void kps__sink_ep_close(kps__sink_ep_t *ep);
/* After every handle closed: frees the endpoint's records and host. */
void kps__sink_ep_free(kps__sink_ep_t *ep);

#endif
