/* sink.h: ships finished records (JSON lines) to a TCP or TLS collector.
 *
 * Last stage of the data path: record builder -> kps_sink_enqueue -> queue ->
 * connection (plain TCP or TLS over memory BIOs, behind one transport table)
 * -> collector.  Everything runs on the server's single libuv loop and never
 * blocks it: DNS is asynchronous (uv_getaddrinfo), connects and writes are
 * non-blocking, and a slow collector only fills the bounded queue.
 *
 * Delivery rule: a record leaves the queue only once the collector's TCP
 * stack has acknowledged all of its bytes (ioctl SIOCOUTQ on the socket).
 * If the connection breaks first, the unacknowledged records are sent again
 * on the next connection, so a collector restart loses nothing that fit in
 * the queue.  Acknowledged is not read: a collector that stops with unread
 * data resets the connection, so the records acknowledged in the last 2 s
 * (at most 1 MiB, the replay window) are kept and, after a reset, queued
 * again.  Delivery is at least once: records of the write in flight and of
 * the replay window may arrive twice.
 *
 * Drop policy: a record that does not fit the byte or entry cap is refused
 * at enqueue time (drop-newest) and counted by reason; an accepted record is
 * never dropped except when the shutdown flush deadline expires.
 */
#ifndef KPS_SINK_H
#define KPS_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct kps_sink_s kps_sink_t;

typedef struct kps_sink_config_s {
  const char *host;            /* collector host name or address */
  int port;                    /* 1..65535 */
  uint64_t timeout_ms;         /* connect (incl. DNS, TLS handshake) and send timeout; 0 = 10000 */
  uint64_t keepalive_ms;       /* close the connection after this long idle; 0 = as soon as idle */
  int tls;                     /* 0 = plain TCP, 1 = TLS */
  const char *tls_sni;         /* SNI name; NULL = none (host is used for verification) */
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
  KPS_SINK_DROP_SHUTDOWN,        /* still queued when the flush deadline expired */
  KPS_SINK_DROP__COUNT
} kps_sink_drop_t;

typedef struct kps_sink_stats_s {
  uint64_t records_enqueued;   /* accepted by kps_sink_enqueue */
  uint64_t records_sent;       /* acknowledged by the collector's TCP stack */
  uint64_t bytes_sent;         /* payload bytes of records_sent */
  uint64_t records_resent;     /* records written again after a broken connection */
  uint64_t records_replayed;   /* acknowledged records queued again after a reset */
  size_t replay_bytes;         /* bytes held in the replay window (at most 1 MiB) */
  uint64_t dropped[KPS_SINK_DROP__COUNT];
  uint64_t connects;           /* successful connections (after TLS handshake) */
  uint64_t reconnects;         /* connection attempts after the first one */
  uint64_t connect_failures;   /* DNS, connect or timeout failures */
  uint64_t tls_failures;       /* handshake or verification failures */
  uint64_t write_errors;       /* writes that failed or timed out */
  size_t queue_depth;          /* records waiting or unacknowledged */
  size_t queue_bytes;          /* their bytes */
  int connected;
  uint64_t batches;            /* record writes (one writev each, many records per batch) */
} kps_sink_stats_t;

/* Returns the sink for this endpoint, creating it if needed.  Sinks are
 * shared: two calls with the same host, port and TLS settings return the
 * same sink with its reference count raised (the newest queue caps apply).
 * Nothing is connected until the first record is queued.  On error returns
 * NULL and sets *err to a malloc'd message naming the field (for example an
 * unreadable tls_ca_file); the caller frees it. */
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

/* A short "host:port" (with "tls://" prefix for TLS) label for logs/status. */
const char *kps_sink_name(const kps_sink_t *sink);

/* Calls fn for every live sink (for GetStatus). */
void kps_sink_foreach(void (*fn)(kps_sink_t *sink, void *ud), void *ud);

/* Graceful stop: every sink writes what it holds; done_cb runs once all
 * queues are empty or deadline_ms has passed (then the rest is counted as
 * KPS_SINK_DROP_SHUTDOWN).  After done_cb every sink handle is closed. */
void kps_sink_flush_all(uv_loop_t *loop, uint64_t deadline_ms, void (*done_cb)(void *ud), void *ud);

#endif
