/* sink.h: ships finished records (JSON lines) to one or several TCP or TLS
 * collectors.
 *
 * Last stage of the data path: record builder -> kps_sink_enqueue -> queue ->
 * connection to a collector endpoint (plain TCP or TLS over memory BIOs,
 * behind one transport table) -> collector.  Everything runs on the
 * server's single libuv loop and never blocks it: DNS is asynchronous
 * (uv_getaddrinfo), connects and writes are non-blocking, and a slow
 * collector only fills the bounded queue.
 *
 * Endpoints: a sink has one queue and 1..KPS_SINK_ENDPOINTS_MAX endpoints
 * (a collector cluster).  Each endpoint has its own connection, its own
 * backoff after a failure (100 ms doubling to 30 s, jittered: the delay is
 * drawn from [b/2, b]) and its own health.  With KPS_SINK_FAILOVER the
 * records go to the first endpoint, in order, whose connection is up
 * (preferring an accepted one, see below); when none is up, the first
 * endpoint not in backoff is connected.  When a higher endpoint's backoff
 * ends while a lower one carries the traffic, it is connected again (when
 * records are waiting) and takes the traffic back once accepted; the lower
 * connection then closes after keepalive_ms idle.  With KPS_SINK_ROUND_ROBIN
 * every endpoint not in backoff is connected while records wait, and
 * successive batches go to successive connected endpoints.
 *
 * Addresses: a host name is resolved at every connection attempt and its
 * addresses are tried in order.  After a connection to one address fails
 * (refused, timed out, reset, refused by TLS), the endpoint's next attempt
 * starts at the next address of the list, so a dead address is not the
 * first one tried forever.
 *
 * Acceptance: a connection counts as accepted by the collector only once
 * the collector showed it: plain TCP at connect; TLS 1.2 at the end of the
 * handshake (the server's Finished comes after it checked our certificate);
 * TLS 1.3 once the collector sends anything after our Finished that
 * OpenSSL processes without error (OpenSSL and GnuTLS servers send session
 * tickets by default), or, if it sends nothing, once the connection is
 * still up 1000 ms after the handshake.  A TLS 1.3 server checks the
 * client certificate only after the client's handshake is over, so until
 * acceptance records may be written and acknowledged by TCP but are neither
 * counted as sent nor let go, and the backoff does not reset.  If the
 * connection ends before acceptance, its records go back to the queue and
 * the failure counts as tls_failures and tls_unconfirmed, with a growing
 * backoff.
 *
 * Delivery rule: a record leaves the queue only once its connection is
 * accepted and the collector's TCP stack has acknowledged all of its bytes
 * (ioctl SIOCOUTQ on the socket).  If the connection breaks first, the
 * records written on it go back to the front of the queue and out on the
 * next usable endpoint, so a collector restart loses nothing that fit in
 * the queue.  Acknowledged is not read: a collector that stops with unread
 * data resets the connection, so each connection keeps the records
 * acknowledged in its last 2 s (at most 1 MiB, the replay window) and,
 * after a reset, queues them again.  Delivery is at least once: records of
 * the write in flight and of the replay window may arrive twice.
 *
 * Drop policy: a record that does not fit the byte or entry cap is refused
 * at enqueue time (drop-newest) and counted by reason; an accepted record is
 * never dropped except when the shutdown flush deadline expires: what is
 * then queued or written but not proven delivered (acknowledged on an
 * accepted connection) counts as KPS_SINK_DROP_SHUTDOWN, never as sent.
 */
#ifndef KPS_SINK_H
#define KPS_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct kps_sink_s kps_sink_t;

/* One collector endpoint: host is a name, an IPv4 address or a bare IPv6
 * address (no brackets). */
typedef struct kps_sink_endpoint_s {
  const char *host; /* 1..255 bytes */
  int port;         /* 1..65535 */
} kps_sink_endpoint_t;

typedef enum kps_sink_balance_e { KPS_SINK_FAILOVER = 0, KPS_SINK_ROUND_ROBIN } kps_sink_balance_t;

/* Most endpoints one sink takes; kps_sink_acquire refuses more. */
#define KPS_SINK_ENDPOINTS_MAX 32

typedef struct kps_sink_config_s {
  const char *host;            /* collector host name or address (when nendpoints is 0) */
  int port;                    /* 1..65535 (when nendpoints is 0) */
  const kps_sink_endpoint_t *endpoints; /* the collectors, in priority order */
  size_t nendpoints;           /* 0: the single host/port above */
  kps_sink_balance_t balance;  /* how records spread over several endpoints */
  uint64_t timeout_ms;         /* connect (incl. DNS, TLS handshake) and send timeout; 0 = 10000 */
  uint64_t keepalive_ms;       /* close a connection after this long idle; 0 = as soon as idle */
  int tls;                     /* 0 = plain TCP, 1 = TLS */
  const char *tls_sni;         /* SNI name; NULL = none (each endpoint's host is used for verification) */
  int tls_verify;              /* verify peer certificate chain and name */
  const char *tls_ca_file;     /* CA bundle; NULL = system default store */
  const char *tls_client_cert; /* PEM client certificate for mTLS, or NULL */
  const char *tls_client_key;  /* PEM client key for mTLS, or NULL */
  size_t queue_max_bytes;      /* cap on queued + unacknowledged bytes */
  size_t queue_max_entries;    /* cap on queued + unacknowledged records */
} kps_sink_config_t;

/* Reasons a record is dropped; one counter each. */
typedef enum kps_sink_drop_e {
  KPS_SINK_DROP_QUEUE_BYTES = 0, /* byte cap reached at enqueue */
  KPS_SINK_DROP_QUEUE_ENTRIES,   /* entry cap reached at enqueue */
  KPS_SINK_DROP_TOO_LARGE,       /* a single record larger than the byte cap */
  KPS_SINK_DROP_SHUTDOWN,        /* not proven delivered when the flush deadline expired */
  KPS_SINK_DROP__COUNT
} kps_sink_drop_t;

/* Totals over the sink's endpoints. */
typedef struct kps_sink_stats_s {
  uint64_t records_enqueued;   /* accepted by kps_sink_enqueue */
  uint64_t records_sent;       /* acknowledged by the collector's TCP stack on an accepted connection */
  uint64_t bytes_sent;         /* payload bytes of records_sent */
  uint64_t records_resent;     /* records written again after a broken connection */
  uint64_t records_replayed;   /* acknowledged records queued again after a reset */
  size_t replay_bytes;         /* bytes held in the replay windows (at most 1 MiB per connection) */
  uint64_t dropped[KPS_SINK_DROP__COUNT];
  uint64_t connects;           /* connections the collector accepted */
  uint64_t reconnects;         /* connection attempts after the first one */
  uint64_t connect_failures;   /* DNS, connect or timeout failures */
  uint64_t tls_failures;       /* handshake, verification or TLS protocol failures, incl. tls_unconfirmed */
  uint64_t write_errors;       /* writes that failed or timed out, resets of accepted connections */
  size_t queue_depth;          /* records waiting or not yet proven delivered */
  size_t queue_bytes;          /* their bytes */
  int connected;               /* a connection to some endpoint is up */
  uint64_t batches;            /* record writes (one writev each, many records per batch) */
  uint64_t tls_unconfirmed;    /* connections that ended after the TLS handshake, before acceptance */
} kps_sink_stats_t;

/* One endpoint's view, for --status. */
typedef struct kps_sink_endpoint_stats_s {
  const char *name;           /* "host:port" or "[v6]:port", lives as long as the sink */
  int connected;              /* a connection is up */
  int healthy;                /* not in backoff */
  uint64_t records_sent, bytes_sent, connects, connect_failures, tls_failures, write_errors;
  uint64_t backoff_ms;        /* the current backoff delay (0 when healthy) */
  uint64_t tls_unconfirmed;   /* connections that ended after the TLS handshake, before acceptance */
} kps_sink_endpoint_stats_t;

/* Parses one "host:port" entry: "name:port", "1.2.3.4:port" or
 * "[::1]:port" (port 1..65535, host 1..255 bytes, no spaces or control
 * characters; a bare IPv6 address needs brackets).  Writes the host
 * (brackets removed, NUL-terminated) to host (hostcap bytes) and the port to
 * *port.  Returns 0, or -1 with *err (if err is not NULL) set to a malloc'd
 * message quoting the entry; the caller frees it. */
int kps_sink_parse_endpoint(const char *s, char *host, size_t hostcap, int *port, char **err);

/* Returns the sink for these endpoints, creating it if needed.  Sinks are
 * shared: two calls with the same endpoint list (same order), balance and
 * TLS settings return the same sink with its reference count raised (the
 * newest queue caps, timeout and keepalive apply).  With one endpoint the
 * balance does not matter and is not compared.  Nothing is connected until
 * the first record is queued.  On error returns NULL and sets *err to a
 * malloc'd message naming the field (for example an unreadable tls_ca_file,
 * or more than KPS_SINK_ENDPOINTS_MAX endpoints); the caller frees it. */
kps_sink_t *kps_sink_acquire(uv_loop_t *loop, const kps_sink_config_t *cfg, char **err);

/* Drops one reference.  At zero the sink keeps running until its queue is
 * empty (or the keepalive idles out), then closes and frees itself. */
void kps_sink_release(kps_sink_t *sink);

/* Queues one record.  Takes ownership of `line` (malloc'd, `len` bytes,
 * ending in '\n') even on error.  Returns 0, or a negative KPS_SINK_E* code
 * when the record was dropped (and counted). */
#define KPS_SINK_EFULL (-1)
#define KPS_SINK_ETOOBIG (-2)
#define KPS_SINK_ECLOSED (-3)
int kps_sink_enqueue(kps_sink_t *sink, char *line, size_t len);

void kps_sink_get_stats(const kps_sink_t *sink, kps_sink_stats_t *out);

/* Number of endpoints (1..KPS_SINK_ENDPOINTS_MAX). */
size_t kps_sink_endpoint_count(const kps_sink_t *sink);

/* Endpoint i (0-based, in configuration order); i out of range gives an
 * all-zero struct with name "". */
void kps_sink_get_endpoint_stats(const kps_sink_t *sink, size_t i, kps_sink_endpoint_stats_t *out);

/* A label for logs/status: "host:port" for one endpoint, "a:1,b:2" for
 * several (cut with "..." when long), with a "tls://" prefix for TLS. */
const char *kps_sink_name(const kps_sink_t *sink);

/* Calls fn for every live sink (for GetStatus). */
void kps_sink_foreach(void (*fn)(kps_sink_t *sink, void *ud), void *ud);

/* Graceful stop: every sink writes what it holds and waits until its
 * connections are accepted and its records acknowledged; done_cb runs once
 * all queues are empty or deadline_ms has passed (then the rest, queued or
 * not proven delivered, is counted as KPS_SINK_DROP_SHUTDOWN).  After
 * done_cb every sink handle is closed. */
void kps_sink_flush_all(uv_loop_t *loop, uint64_t deadline_ms, void (*done_cb)(void *ud), void *ud);

#endif
