/* sink.c: registry, bounded queue, batching and the connection state machine
 * of the collector sinks (see sink.h).  Wire format details live in the
 * transports (sink_tcp.c, sink_tls.c) behind kps__sink_transport_t.
 *
 * Connection states:  IDLE -> RESOLVING -> CONNECTING -> HANDSHAKE -> READY
 * and BACKOFF after any failure.  One timer serves the connect timeout, the
 * keepalive idle timeout and the backoff delay (never two at once); a second
 * timer polls SIOCOUTQ for acknowledgements and enforces the send timeout.
 */
#include "sink.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "log.h"
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

typedef enum kps__sink_state_e {
  KPS__SINK_IDLE = 0,
  KPS__SINK_RESOLVING,
  KPS__SINK_CONNECTING,
  KPS__SINK_HANDSHAKE,
  KPS__SINK_READY,
  KPS__SINK_BACKOFF
} kps__sink_state_t;

typedef enum kps__sink_fail_e {
  KPS__SINK_FAIL_CONNECT, /* DNS, connect, handshake timeout */
  KPS__SINK_FAIL_TLS,     /* handshake or verification */
  KPS__SINK_FAIL_IO,      /* write error, send timeout, read error */
  KPS__SINK_FAIL_RESET,   /* the collector reset the connection: replay */
  KPS__SINK_FAIL_CLOSED   /* the collector closed the connection */
} kps__sink_fail_t;

typedef struct kps__sink_flush_s {
  uv_timer_t timer;
  void (*done_cb)(void *ud);
  void *ud;
  unsigned pending; /* sinks not yet fully closed */
  int closing;
} kps__sink_flush_t;

/* A resolve request lives on its own so a timed-out one can finish late. */
typedef struct kps__sink_gai_s {
  uv_getaddrinfo_t req;
  kps_sink_t *sink;
} kps__sink_gai_t;

typedef struct kps__sink_raw_s {
  uv_write_t req;
  kps__sink_conn_t *conn;
  char *buf;
} kps__sink_raw_t;

struct kps_sink_s {
  kps_sink_t *prev, *next; /* registry, until freed */
  uv_loop_t *loop;
  /* Endpoint key: owned copies, "" normalised to NULL. */
  char *host, *sni, *ca, *cert, *key;
  int port, tls, verify;
  char name[KPS__SINK_HOST_MAX + 16];
  uint64_t timeout_ms, keepalive_ms;
  size_t max_bytes, max_entries;
  const kps__sink_transport_t *transport;
  void *tctx;
  unsigned refs;

  kps__sink_state_t state;
  uint64_t attempts;
  kps__sink_gai_t *gai; /* current resolve or NULL */
  struct addrinfo *addrs, *next_addr;
  int last_connect_err;
  kps__sink_conn_t *conn; /* current connection or NULL */
  uv_timer_t timer;
  uv_timer_t ack_timer;
  uv_idle_t kick; /* defers writing to the next loop turn so enqueues batch up */
  unsigned open;  /* handles and requests that still point at this sink */
  uint64_t backoff_ms, ack_delay_ms, last_progress;
  uint64_t rng;

  kps__sink_rec_t *head, *tail, *unsent; /* unsent: first record not written on conn */
  kps__sink_rec_t *kept, *kept_tail;     /* acknowledged on conn, within the replay window */
  size_t kept_count, kept_bytes;
  kps_sink_stats_t st;
  int closing, closed, flushing;
  kps__sink_flush_t *flush;
};

static kps_sink_t *kps__sink_registry;

static void kps__sink_connect_start(kps_sink_t *s);
static void kps__sink_connect_next(kps_sink_t *s);
static void kps__sink_fail(kps_sink_t *s, kps__sink_fail_t kind, const char *why);
static void kps__sink_write_batch(kps_sink_t *s);
static void kps__sink_close(kps_sink_t *s);
static void kps__sink_on_timer(uv_timer_t *t);
static void kps__sink_on_ack_timer(uv_timer_t *t);

void kps__sink_errf(char **err, const char *fmt, ...) {
  va_list ap;
  char buf[512];

  if (!err) return;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  *err = strdup(buf);
}

static char *kps__sink_dup(const char *s) { return (s && *s) ? strdup(s) : NULL; }

static int kps__sink_streq(const char *a, const char *b) {
  if (a && !*a) a = NULL;
  if (b && !*b) b = NULL;
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

/* xorshift64: jitter only, no need for a shared or strong generator. */
static uint64_t kps__sink_rand(kps_sink_t *s) {
  s->rng ^= s->rng << 13;
  s->rng ^= s->rng >> 7;
  s->rng ^= s->rng << 17;
  return s->rng;
}

/* ---- connections ------------------------------------------------------ */

static void kps__sink_finalize_if_done(kps_sink_t *s);

/* Close callback of a connection's TCP handle: the only place a conn is freed. */
static void kps__sink_on_conn_closed(uv_handle_t *h) {
  kps__sink_conn_t *c = h->data;
  kps_sink_t *s = c->sink;

  if (c->tstate) s->transport->conn_free(c);
  free(c);
  s->open--;
  kps__sink_finalize_if_done(s);
}

/* Starts closing c; the caller must already have detached it from s->conn.
 * goodbye: try to send the transport's farewell (TLS close_notify) first. */
static void kps__sink_conn_close(kps__sink_conn_t *c, int goodbye) {
  char bye[256];
  size_t n;

  if (c->closing) return;
  c->closing = 1;
  if (goodbye && c->tstate) {
    n = c->sink->transport->conn_goodbye(c, bye, sizeof(bye));
    if (n > 0) {
      uv_buf_t b = uv_buf_init(bye, (unsigned)n);
      (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1); /* best effort, never blocks */
    }
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, kps__sink_on_conn_closed);
}

/* Returns a new connection with an initialised TCP handle, or NULL. */
static kps__sink_conn_t *kps__sink_conn_new(kps_sink_t *s) {
  kps__sink_conn_t *c = calloc(1, sizeof(*c));

  if (!c) return NULL;
  if (uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  c->connect_req.data = c;
  c->batch.req.data = c;
  c->sink = s;
  c->name = s->name;
  c->tctx = s->tctx;
  s->open++;
  return c;
}

/* How a read or write error on the connection counts: a reset of a ready
 * connection replays the window (kps__sink_replay_kept). */
static kps__sink_fail_t kps__sink_io_kind(const kps_sink_t *s, int err) {
  if (s->state != KPS__SINK_READY) return KPS__SINK_FAIL_CONNECT;
  return err == UV_ECONNRESET || err == UV_EPIPE ? KPS__SINK_FAIL_RESET : KPS__SINK_FAIL_IO;
}

static void kps__sink_on_raw_written(uv_write_t *req, int status) {
  kps__sink_raw_t *w = req->data;
  kps__sink_conn_t *c = w->conn;

  free(w->buf);
  free(w);
  if (status < 0 && !c->closing && c->sink->conn == c)
    kps__sink_fail(c->sink, kps__sink_io_kind(c->sink, status), uv_strerror(status));
}

/* Ownership: buf is freed by the write callback (or here on error). */
int kps__sink_conn_send_raw(kps__sink_conn_t *c, char *buf, size_t len) {
  kps__sink_raw_t *w;
  uv_buf_t b;
  int rc;

  if (c->closing) {
    free(buf);
    return UV_ECANCELED;
  }
  w = malloc(sizeof(*w));
  if (!w) {
    free(buf);
    return UV_ENOMEM;
  }
  w->req.data = w;
  w->conn = c;
  w->buf = buf;
  b.base = buf;
  b.len = len;
  rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, kps__sink_on_raw_written);
  if (rc < 0) {
    free(buf);
    free(w);
    return rc;
  }
  c->wire_submitted += len;
  return 0;
}

/* ---- queue ------------------------------------------------------------ */

static void kps__sink_free_list(kps__sink_rec_t *r) {
  kps__sink_rec_t *next;

  for (; r; r = next) {
    next = r->next;
    free(r->data);
    free(r);
  }
}

/* Forgets the replay window (the connection ended without a reset). */
static void kps__sink_release_kept(kps_sink_t *s) {
  kps__sink_free_list(s->kept);
  s->kept = s->kept_tail = NULL;
  s->kept_count = s->kept_bytes = 0;
  s->st.replay_bytes = 0;
}

/* Only after the connection handle closed: a cancelled write may still
 * point into record data until then. */
static void kps__sink_free_records(kps_sink_t *s) {
  kps__sink_free_list(s->head);
  s->head = s->tail = s->unsent = NULL;
  kps__sink_release_kept(s);
}

/* Keeps an acknowledged record in the replay window, then lets go of the
 * records older than the window or past its byte cap. */
static void kps__sink_keep(kps_sink_t *s, kps__sink_rec_t *r, uint64_t now) {
  r->next = NULL;
  r->acked_at = now;
  if (s->kept_tail)
    s->kept_tail->next = r;
  else
    s->kept = r;
  s->kept_tail = r;
  s->kept_count++;
  s->kept_bytes += r->len;
}

static void kps__sink_trim_kept(kps_sink_t *s, uint64_t now) {
  while (s->kept && (s->kept_bytes > KPS__SINK_REPLAY_BYTES || now - s->kept->acked_at > KPS__SINK_REPLAY_MS)) {
    kps__sink_rec_t *r = s->kept;
    s->kept = r->next;
    if (!s->kept) s->kept_tail = NULL;
    s->kept_count--;
    s->kept_bytes -= r->len;
    free(r->data);
    free(r);
  }
  s->st.replay_bytes = s->kept_bytes;
}

/* The connection was reset: what it acknowledged within the window may be
 * unread, so those records go back to the front of the queue (at least
 * once; the collector may see them twice). */
static void kps__sink_replay_kept(kps_sink_t *s) {
  kps__sink_trim_kept(s, uv_now(s->loop));
  if (!s->kept) return;
  s->kept_tail->next = s->head;
  if (!s->head) s->tail = s->kept_tail;
  s->head = s->kept;
  s->st.records_sent -= s->kept_count;
  s->st.bytes_sent -= s->kept_bytes;
  s->st.records_replayed += s->kept_count;
  s->st.queue_depth += s->kept_count;
  s->st.queue_bytes += s->kept_bytes;
  s->kept = s->kept_tail = NULL;
  s->kept_count = s->kept_bytes = 0;
  s->st.replay_bytes = 0;
}

/* Everything written but not acknowledged goes out again on the next connection. */
static void kps__sink_requeue_inflight(kps_sink_t *s) { s->unsent = s->head; }

/* Queue drained: keep the connection for keepalive_ms, or close the sink
 * when nobody holds it any more or a flush is waiting for it. */
static void kps__sink_on_drained(kps_sink_t *s) {
  if (s->head) return;
  if (s->refs == 0 || s->flushing) {
    kps__sink_close(s);
    return;
  }
  if (s->state == KPS__SINK_READY) uv_timer_start(&s->timer, kps__sink_on_timer, s->keepalive_ms, 0);
}

/* Frees every record whose bytes the collector's TCP stack has acknowledged:
 * acked = bytes in the kernel (submitted - libuv's backlog) - SIOCOUTQ. */
static void kps__sink_poll_acks(kps_sink_t *s) {
  kps__sink_conn_t *c = s->conn;
  uv_os_fd_t fd;
  int outq = 0;
  uint64_t in_kernel, acked;

  if (!c || s->state != KPS__SINK_READY) return;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &outq) < 0 || outq < 0)
    return; /* unknown: keep waiting, the send timeout bounds it */
  in_kernel = c->wire_submitted - c->tcp.write_queue_size;
  acked = in_kernel >= (uint64_t)outq ? in_kernel - (uint64_t)outq : 0;
  if (acked <= c->wire_acked) return;
  c->wire_acked = acked;
  s->last_progress = uv_now(s->loop);
  s->ack_delay_ms = KPS__SINK_ACK_POLL_MIN_MS;
  /* A connection that carries data is a success: reset the backoff here,
   * not at connect, so a collector that accepts and drops is not hammered. */
  s->backoff_ms = KPS__SINK_BACKOFF_MIN_MS;
  while (s->head && s->head != s->unsent && s->head->wire_end <= acked) {
    kps__sink_rec_t *r = s->head;
    s->head = r->next;
    if (!s->head) s->tail = NULL;
    s->st.records_sent++;
    s->st.bytes_sent += r->len;
    s->st.queue_depth--;
    s->st.queue_bytes -= r->len;
    kps__sink_keep(s, r, s->last_progress);
  }
  kps__sink_trim_kept(s, s->last_progress);
  kps__sink_on_drained(s);
}

static void kps__sink_arm_ack_timer(kps_sink_t *s) {
  kps__sink_conn_t *c = s->conn;

  if (!c || c->wire_acked >= c->wire_submitted) {
    uv_timer_stop(&s->ack_timer);
    return;
  }
  if (!uv_is_active((uv_handle_t *)&s->ack_timer))
    uv_timer_start(&s->ack_timer, kps__sink_on_ack_timer, s->ack_delay_ms, 0);
}

/* Polls acknowledgements with a growing interval and fails the connection
 * when nothing was acknowledged for timeout_ms (send timeout). */
static void kps__sink_on_ack_timer(uv_timer_t *t) {
  kps_sink_t *s = t->data;
  kps__sink_conn_t *c = s->conn;

  if (!c || s->state != KPS__SINK_READY) return;
  kps__sink_poll_acks(s);
  if (s->closing || s->conn != c) return;
  if (c->wire_acked >= c->wire_submitted) return;
  if (uv_now(s->loop) - s->last_progress >= s->timeout_ms) {
    kps__sink_fail(s, KPS__SINK_FAIL_IO, "send timed out");
    return;
  }
  s->ack_delay_ms *= 2;
  if (s->ack_delay_ms > KPS__SINK_ACK_POLL_MAX_MS) s->ack_delay_ms = KPS__SINK_ACK_POLL_MAX_MS;
  uv_timer_start(&s->ack_timer, kps__sink_on_ack_timer, s->ack_delay_ms, 0);
}

static void kps__sink_on_batch_written(uv_write_t *req, int status) {
  kps__sink_conn_t *c = req->data;
  kps_sink_t *s = c->sink;

  c->writing = 0;
  free(c->batch.owned);
  c->batch.owned = NULL;
  if (c->closing || s->conn != c) return; /* cancelled: records were re-queued */
  if (status < 0) {
    kps__sink_fail(s, kps__sink_io_kind(s, status), uv_strerror(status));
    return;
  }
  s->last_progress = uv_now(s->loop);
  kps__sink_poll_acks(s);
  if (s->closing || s->conn != c) return;
  kps__sink_write_batch(s);
  kps__sink_arm_ack_timer(s);
}

/* Hands the next run of unsent records to the transport and writes them in
 * one uv_write (writev for plain TCP).  One batch in flight per connection. */
static void kps__sink_write_batch(kps_sink_t *s) {
  kps__sink_conn_t *c = s->conn;
  kps__sink_batch_t *b;
  kps__sink_rec_t *r;
  size_t bytes = 0;
  uint64_t base;
  unsigned i;
  int rc;

  if (!c || s->state != KPS__SINK_READY || c->writing || !s->unsent) return;
  b = &c->batch;
  b->nrec = 0;
  for (r = s->unsent; r && b->nrec < KPS__SINK_BATCH_MAX; r = r->next) {
    if (b->nrec > 0 && bytes + r->len > KPS__SINK_BATCH_BYTES) break;
    b->recs[b->nrec++] = r;
    bytes += r->len;
  }
  b->owned = NULL;
  if (s->transport->conn_encode(c, b) != 0) {
    kps__sink_fail(s, KPS__SINK_FAIL_IO, "encoding failed");
    return;
  }
  base = c->wire_submitted;
  rc = uv_write(&b->req, (uv_stream_t *)&c->tcp, b->bufs, b->nbufs, kps__sink_on_batch_written);
  if (rc < 0) {
    free(b->owned);
    b->owned = NULL;
    kps__sink_fail(s, KPS__SINK_FAIL_IO, uv_strerror(rc));
    return;
  }
  if (c->wire_acked >= c->wire_submitted) s->last_progress = uv_now(s->loop); /* was idle */
  c->writing = 1;
  c->wire_submitted += b->wire_len;
  for (i = 0; i < b->nrec; i++) {
    if (b->recs[i]->writes++ > 0) s->st.records_resent++;
    b->recs[i]->wire_end = base + b->rec_end[i];
  }
  s->unsent = r;
  s->st.batches++;
  kps__sink_arm_ack_timer(s);
}

/* ---- connection state machine ----------------------------------------- */

static void kps__sink_free_addrs(kps_sink_t *s) {
  if (s->addrs) uv_freeaddrinfo(s->addrs);
  s->addrs = s->next_addr = NULL;
}

/* Drops the current connection attempt or connection (records in flight go
 * back to the queue), counts the failure and schedules the next attempt. */
static void kps__sink_fail(kps_sink_t *s, kps__sink_fail_t kind, const char *why) {
  uint64_t delay;
  int was_ready = s->state == KPS__SINK_READY;

  switch (kind) {
  case KPS__SINK_FAIL_CONNECT: s->st.connect_failures++; break;
  case KPS__SINK_FAIL_TLS: s->st.tls_failures++; break;
  case KPS__SINK_FAIL_IO: s->st.write_errors++; break;
  case KPS__SINK_FAIL_RESET: s->st.write_errors++; break;
  case KPS__SINK_FAIL_CLOSED: break;
  }
  /* A reset, or a TLS alert after the handshake (a TLS 1.3 server refuses a
   * client certificate only after the client has started sending), can
   * discard what TCP acknowledged. */
  if (kind == KPS__SINK_FAIL_RESET || (kind == KPS__SINK_FAIL_TLS && was_ready))
    kps__sink_replay_kept(s);
  else
    kps__sink_release_kept(s);
  if (s->conn) {
    kps__sink_conn_t *c = s->conn;
    s->conn = NULL;
    kps__sink_conn_close(c, 0);
  }
  if (s->gai) {
    uv_cancel((uv_req_t *)&s->gai->req); /* may fail when already running; its callback copes */
    s->gai = NULL;
  }
  kps__sink_free_addrs(s);
  kps__sink_requeue_inflight(s);
  uv_timer_stop(&s->ack_timer);
  uv_timer_stop(&s->timer);
  s->st.connected = 0;
  if (!s->head) {
    s->state = KPS__SINK_IDLE;
    if (was_ready && kind == KPS__SINK_FAIL_CLOSED)
      KPS_INFO("sink %s: collector closed the connection", s->name);
    else
      KPS_WARN("sink %s: %s", s->name, why);
    if (s->refs == 0 || s->flushing) kps__sink_close(s);
    return;
  }
  delay = s->backoff_ms / 2 + kps__sink_rand(s) % (s->backoff_ms / 2 + 1);
  s->backoff_ms *= 2;
  if (s->backoff_ms > KPS__SINK_BACKOFF_MAX_MS) s->backoff_ms = KPS__SINK_BACKOFF_MAX_MS;
  KPS_WARN("sink %s: %s; %zu records waiting, retrying in %llu ms", s->name, why,
           s->st.queue_depth, (unsigned long long)delay);
  s->state = KPS__SINK_BACKOFF;
  uv_timer_start(&s->timer, kps__sink_on_timer, delay, 0);
}

static void kps__sink_on_ready(kps_sink_t *s) {
  uv_timer_stop(&s->timer);
  s->state = KPS__SINK_READY;
  s->st.connects++;
  s->st.connected = 1;
  s->ack_delay_ms = KPS__SINK_ACK_POLL_MIN_MS;
  s->last_progress = uv_now(s->loop);
  KPS_INFO("sink %s: connected", s->name);
  if (s->unsent) {
    kps__sink_write_batch(s);
  } else {
    s->backoff_ms = KPS__SINK_BACKOFF_MIN_MS; /* nothing to prove: the connection works */
    kps__sink_on_drained(s);
  }
}

/* The collector closed its side: count what it acknowledged, then reconnect
 * if anything is left. */
static void kps__sink_on_peer_closed(kps_sink_t *s) {
  if (s->state == KPS__SINK_READY) {
    kps__sink_poll_acks(s);
    if (s->closing || !s->conn) return;
    kps__sink_fail(s, KPS__SINK_FAIL_CLOSED, "collector closed the connection");
  } else if (s->state == KPS__SINK_HANDSHAKE) { /* only transports with a handshake get here */
    kps__sink_fail(s, KPS__SINK_FAIL_TLS, "collector closed the connection during the handshake");
  } else {
    kps__sink_fail(s, KPS__SINK_FAIL_CONNECT, "collector closed the connection while connecting");
  }
}

static void kps__sink_transport_result(kps_sink_t *s, int rc) {
  switch (rc) {
  case KPS__SINK_T_OK: break;
  case KPS__SINK_T_READY: kps__sink_on_ready(s); break;
  case KPS__SINK_T_EOF: kps__sink_on_peer_closed(s); break;
  case KPS__SINK_T_TLSERR: kps__sink_fail(s, KPS__SINK_FAIL_TLS, "TLS failure"); break;
  default:
    kps__sink_fail(s, s->state == KPS__SINK_READY ? KPS__SINK_FAIL_IO : KPS__SINK_FAIL_CONNECT,
                   "connection error");
    break;
  }
}

static void kps__sink_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  kps__sink_conn_t *c = h->data;

  buf->base = c->rbuf;
  buf->len = sizeof(c->rbuf);
}

static void kps__sink_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  kps__sink_conn_t *c = stream->data;
  kps_sink_t *s = c->sink;
  char why[128];

  if (c->closing || s->conn != c || nread == 0) return;
  if (nread == UV_EOF) {
    kps__sink_on_peer_closed(s);
  } else if (nread < 0) {
    snprintf(why, sizeof(why), "read failed: %s", uv_strerror((int)nread));
    kps__sink_fail(s, kps__sink_io_kind(s, (int)nread), why);
  } else {
    kps__sink_transport_result(s, s->transport->conn_input(c, buf->base, (size_t)nread));
  }
}

static void kps__sink_on_connect(uv_connect_t *req, int status) {
  kps__sink_conn_t *c = req->data;
  kps_sink_t *s = c->sink;
  int rc;

  if (c->closing || s->conn != c) return; /* cancelled by a close */
  if (status < 0) {
    s->last_connect_err = status;
    s->conn = NULL;
    kps__sink_conn_close(c, 0);
    kps__sink_connect_next(s);
    return;
  }
  kps__sink_free_addrs(s);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 60);
  /* Reading detects the collector closing its side; TLS also needs it. */
  rc = uv_read_start((uv_stream_t *)&c->tcp, kps__sink_on_alloc, kps__sink_on_read);
  if (rc < 0) {
    kps__sink_fail(s, KPS__SINK_FAIL_CONNECT, uv_strerror(rc));
    return;
  }
  s->state = KPS__SINK_HANDSHAKE;
  kps__sink_transport_result(s, s->transport->conn_start(c));
}

/* Tries the next resolved address; fails the attempt when none is left. */
static void kps__sink_connect_next(kps_sink_t *s) {
  char why[160];

  while (s->next_addr) {
    struct addrinfo *ai = s->next_addr;
    kps__sink_conn_t *c;
    int rc;

    s->next_addr = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    c = kps__sink_conn_new(s);
    if (!c) {
      s->last_connect_err = UV_ENOMEM;
      break;
    }
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, ai->ai_addr, kps__sink_on_connect);
    if (rc == 0) {
      s->conn = c;
      return;
    }
    s->last_connect_err = rc;
    kps__sink_conn_close(c, 0);
  }
  snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(s->last_connect_err));
  kps__sink_fail(s, KPS__SINK_FAIL_CONNECT, why);
}

static void kps__sink_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  kps__sink_gai_t *g = req->data;
  kps_sink_t *s = g->sink;
  char why[160];
  int stale = s->gai != g;

  free(g);
  s->open--;
  if (stale || s->closing) {
    if (res) uv_freeaddrinfo(res);
    kps__sink_finalize_if_done(s);
    return;
  }
  s->gai = NULL;
  if (status < 0) {
    snprintf(why, sizeof(why), "cannot resolve %s: %s", s->host, uv_strerror(status));
    kps__sink_fail(s, KPS__SINK_FAIL_CONNECT, why);
    return;
  }
  s->addrs = s->next_addr = res;
  s->last_connect_err = UV_EADDRNOTAVAIL;
  s->state = KPS__SINK_CONNECTING;
  kps__sink_connect_next(s);
}

static void kps__sink_connect_start(kps_sink_t *s) {
  struct addrinfo hints;
  char port[8];
  kps__sink_gai_t *g;
  int rc;

  if (s->attempts++ > 0) s->st.reconnects++;
  s->state = KPS__SINK_RESOLVING;
  uv_timer_start(&s->timer, kps__sink_on_timer, s->timeout_ms, 0);
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(port, sizeof(port), "%d", s->port);
  g = malloc(sizeof(*g));
  if (!g) {
    kps__sink_fail(s, KPS__SINK_FAIL_CONNECT, "out of memory");
    return;
  }
  g->req.data = g;
  g->sink = s;
  rc = uv_getaddrinfo(s->loop, &g->req, kps__sink_on_resolved, s->host, port, &hints);
  if (rc < 0) {
    free(g);
    kps__sink_fail(s, KPS__SINK_FAIL_CONNECT, uv_strerror(rc));
    return;
  }
  s->open++;
  s->gai = g;
}

static void kps__sink_on_timer(uv_timer_t *t) {
  kps_sink_t *s = t->data;

  switch (s->state) {
  case KPS__SINK_RESOLVING:
  case KPS__SINK_CONNECTING:
  case KPS__SINK_HANDSHAKE:
    kps__sink_fail(s, KPS__SINK_FAIL_CONNECT, "connect timed out");
    break;
  case KPS__SINK_BACKOFF:
    s->state = KPS__SINK_IDLE;
    if (s->head) kps__sink_connect_start(s);
    break;
  case KPS__SINK_READY:
    if (!s->head && s->conn) { /* keepalive expired */
      kps__sink_conn_t *c = s->conn;
      s->conn = NULL;
      s->state = KPS__SINK_IDLE;
      s->st.connected = 0;
      uv_timer_stop(&s->ack_timer);
      kps__sink_release_kept(s);
      kps__sink_conn_close(c, 1);
      KPS_INFO("sink %s: closed idle connection", s->name);
    }
    break;
  case KPS__SINK_IDLE: break;
  }
}

static void kps__sink_on_kick(uv_idle_t *h) {
  kps_sink_t *s = h->data;

  uv_idle_stop(h);
  if (s->closing) return;
  if (s->state == KPS__SINK_IDLE && s->unsent)
    kps__sink_connect_start(s);
  else if (s->state == KPS__SINK_READY)
    kps__sink_write_batch(s);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* Ownership: frees the sink and everything it owns; only once no handle or
 * request points at it (closed) and nobody holds a reference. */
static void kps__sink_free(kps_sink_t *s) {
  if (s->prev)
    s->prev->next = s->next;
  else if (kps__sink_registry == s)
    kps__sink_registry = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->tctx) s->transport->ctx_free(s->tctx);
  free(s->host);
  free(s->sni);
  free(s->ca);
  free(s->cert);
  free(s->key);
  free(s);
}

static void kps__sink_on_flush_closed(uv_handle_t *h) {
  kps__sink_flush_t *f = h->data;

  f->done_cb(f->ud);
  free(f);
}

static void kps__sink_flush_finish(kps__sink_flush_t *f) {
  if (f->closing) return;
  f->closing = 1;
  uv_close((uv_handle_t *)&f->timer, kps__sink_on_flush_closed);
}

/* Runs once nothing points at the sink any more: every handle closed and
 * every request called back. */
static void kps__sink_finalize_if_done(kps_sink_t *s) {
  kps__sink_flush_t *f;

  if (!s->closing || s->open > 0 || s->closed) return;
  s->closed = 1;
  kps__sink_free_records(s);
  f = s->flush;
  s->flush = NULL;
  if (f && --f->pending == 0) kps__sink_flush_finish(f);
  if (s->refs == 0) kps__sink_free(s);
}

static void kps__sink_on_handle_closed(uv_handle_t *h) {
  kps_sink_t *s = h->data;

  s->open--;
  kps__sink_finalize_if_done(s);
}

/* Stops the sink for good: what is still queued is counted as a shutdown
 * drop, every handle is closed; memory goes once the callbacks are in. */
static void kps__sink_close(kps_sink_t *s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->st.queue_depth > 0) {
    KPS_WARN("sink %s: dropping %zu undelivered records at shutdown", s->name, s->st.queue_depth);
    s->st.dropped[KPS_SINK_DROP_SHUTDOWN] += s->st.queue_depth;
    s->st.queue_depth = 0;
    s->st.queue_bytes = 0;
  }
  if (s->conn) {
    kps__sink_conn_t *c = s->conn;
    s->conn = NULL;
    kps__sink_conn_close(c, s->state == KPS__SINK_READY);
  }
  if (s->gai) {
    uv_cancel((uv_req_t *)&s->gai->req);
    s->gai = NULL;
  }
  kps__sink_free_addrs(s);
  s->state = KPS__SINK_IDLE;
  s->st.connected = 0;
  uv_close((uv_handle_t *)&s->timer, kps__sink_on_handle_closed);
  uv_close((uv_handle_t *)&s->ack_timer, kps__sink_on_handle_closed);
  uv_close((uv_handle_t *)&s->kick, kps__sink_on_handle_closed);
}

static int kps__sink_same_endpoint(const kps_sink_t *s, uv_loop_t *loop, const kps_sink_config_t *cfg) {
  if (s->loop != loop || s->closing || s->port != cfg->port || s->tls != (cfg->tls != 0)) return 0;
  if (!kps__sink_streq(s->host, cfg->host)) return 0;
  if (!s->tls) return 1;
  return s->verify == (cfg->tls_verify != 0) && kps__sink_streq(s->sni, cfg->tls_sni) &&
         kps__sink_streq(s->ca, cfg->tls_ca_file) && kps__sink_streq(s->cert, cfg->tls_client_cert) &&
         kps__sink_streq(s->key, cfg->tls_client_key);
}

static void kps__sink_apply_limits(kps_sink_t *s, const kps_sink_config_t *cfg) {
  s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : KPS__SINK_DEFAULT_TIMEOUT_MS;
  s->keepalive_ms = cfg->keepalive_ms;
  s->max_bytes = cfg->queue_max_bytes;
  s->max_entries = cfg->queue_max_entries;
}

static int kps__sink_validate(uv_loop_t *loop, const kps_sink_config_t *cfg, char **err) {
  if (!loop || !cfg) {
    kps__sink_errf(err, "sink: missing loop or configuration");
    return -1;
  }
  if (!cfg->host || !*cfg->host || strlen(cfg->host) > KPS__SINK_HOST_MAX) {
    kps__sink_errf(err, "host: must be a name or address of 1..%d characters", KPS__SINK_HOST_MAX);
    return -1;
  }
  if (cfg->port < 1 || cfg->port > 65535) {
    kps__sink_errf(err, "port: must be 1..65535, got %d", cfg->port);
    return -1;
  }
  if (cfg->queue_max_bytes == 0) {
    kps__sink_errf(err, "queue_max_bytes: must be greater than 0");
    return -1;
  }
  if (cfg->queue_max_entries == 0) {
    kps__sink_errf(err, "queue_max_entries: must be greater than 0");
    return -1;
  }
  return 0;
}

/* Ownership: the returned sink holds one reference for the caller; *err
 * (on failure) is the caller's to free. */
kps_sink_t *kps_sink_acquire(uv_loop_t *loop, const kps_sink_config_t *cfg, char **err) {
  kps_sink_t *s;

  if (err) *err = NULL;
  if (kps__sink_validate(loop, cfg, err) != 0) return NULL;
  for (s = kps__sink_registry; s; s = s->next) {
    if (kps__sink_same_endpoint(s, loop, cfg)) {
      s->refs++;
      kps__sink_apply_limits(s, cfg);
      return s;
    }
  }
  s = calloc(1, sizeof(*s));
  if (!s) {
    kps__sink_errf(err, "sink: out of memory");
    return NULL;
  }
  s->loop = loop;
  s->port = cfg->port;
  s->tls = cfg->tls != 0;
  s->verify = cfg->tls_verify != 0;
  s->host = kps__sink_dup(cfg->host);
  if (s->tls) {
    s->sni = kps__sink_dup(cfg->tls_sni);
    s->ca = kps__sink_dup(cfg->tls_ca_file);
    s->cert = kps__sink_dup(cfg->tls_client_cert);
    s->key = kps__sink_dup(cfg->tls_client_key);
  }
  s->transport = s->tls ? &kps__sink_tls : &kps__sink_tcp;
  snprintf(s->name, sizeof(s->name), strchr(cfg->host, ':') ? "%s[%s]:%d" : "%s%s:%d",
           s->transport->scheme, cfg->host, cfg->port);
  kps__sink_apply_limits(s, cfg);
  if (!s->host || s->transport->ctx_new(cfg, &s->tctx, err) != 0) {
    if (err && !*err) kps__sink_errf(err, "sink: out of memory");
    s->tctx = NULL;
    kps__sink_free(s);
    return NULL;
  }
  uv_timer_init(loop, &s->timer);
  uv_timer_init(loop, &s->ack_timer);
  uv_idle_init(loop, &s->kick);
  s->timer.data = s->ack_timer.data = s->kick.data = s;
  s->open = 3;
  s->refs = 1;
  s->backoff_ms = KPS__SINK_BACKOFF_MIN_MS;
  s->ack_delay_ms = KPS__SINK_ACK_POLL_MIN_MS;
  s->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)s;
  if (!s->rng) s->rng = 0x9e3779b97f4a7c15ull;
  s->next = kps__sink_registry;
  if (kps__sink_registry) kps__sink_registry->prev = s;
  kps__sink_registry = s;
  return s;
}

/* Ownership: drops the caller's reference; the sink frees itself once it is
 * unreferenced and closed (never synchronously inside its own callbacks). */
void kps_sink_release(kps_sink_t *s) {
  if (!s || s->refs == 0) return;
  if (--s->refs > 0) return;
  if (s->closed)
    kps__sink_free(s);
  else if (!s->closing && !s->head)
    kps__sink_close(s);
}

/* Ownership: takes `line` in every case (queued, or freed when dropped).
 * Never does I/O: the kick handle writes on the next loop turn. */
int kps_sink_enqueue(kps_sink_t *s, char *line, size_t len) {
  kps__sink_rec_t *r;
  kps_sink_drop_t why;

  if (!s) {
    free(line);
    return KPS_SINK_ECLOSED;
  }
  if (s->closing) {
    why = KPS_SINK_DROP_SHUTDOWN;
    goto drop;
  }
  if (len > s->max_bytes) {
    why = KPS_SINK_DROP_TOO_LARGE;
    goto drop;
  }
  if (s->st.queue_depth >= s->max_entries) {
    why = KPS_SINK_DROP_QUEUE_ENTRIES;
    goto drop;
  }
  if (s->st.queue_bytes + len > s->max_bytes) {
    why = KPS_SINK_DROP_QUEUE_BYTES;
    goto drop;
  }
  r = malloc(sizeof(*r));
  if (!r) {
    why = KPS_SINK_DROP_QUEUE_BYTES; /* out of memory is a byte limit too */
    goto drop;
  }
  r->next = NULL;
  r->data = line;
  r->len = len;
  r->wire_end = 0;
  r->writes = 0;
  if (s->tail)
    s->tail->next = r;
  else
    s->head = r;
  s->tail = r;
  if (!s->unsent) s->unsent = r;
  s->st.records_enqueued++;
  s->st.queue_depth++;
  s->st.queue_bytes += len;
  if (s->state == KPS__SINK_READY) uv_timer_stop(&s->timer); /* no longer idle */
  if (!uv_is_active((uv_handle_t *)&s->kick)) uv_idle_start(&s->kick, kps__sink_on_kick);
  return 0;

drop:
  free(line);
  s->st.dropped[why]++;
  if (why == KPS_SINK_DROP_SHUTDOWN) return KPS_SINK_ECLOSED;
  return why == KPS_SINK_DROP_TOO_LARGE ? KPS_SINK_ETOOBIG : KPS_SINK_EFULL;
}

/* Ownership: copies into the caller's struct. */
void kps_sink_get_stats(const kps_sink_t *s, kps_sink_stats_t *out) { *out = s->st; }

/* Ownership: the string lives as long as the sink. */
const char *kps_sink_name(const kps_sink_t *s) { return s->name; }

/* fn may release the sink it is given (the next one is saved first). */
void kps_sink_foreach(void (*fn)(kps_sink_t *sink, void *ud), void *ud) {
  kps_sink_t *s, *next;

  for (s = kps__sink_registry; s; s = next) {
    next = s->next;
    if (!s->closing) fn(s, ud);
  }
}

static void kps__sink_on_flush_deadline(uv_timer_t *t) {
  kps__sink_flush_t *f = t->data;
  kps_sink_t *s, *next;

  for (s = kps__sink_registry; s; s = next) {
    next = s->next; /* closing never frees synchronously, but stay safe */
    if (s->flush == f && !s->closing) kps__sink_close(s);
  }
}

/* Ownership: the flush context frees itself after calling done_cb. */
void kps_sink_flush_all(uv_loop_t *loop, uint64_t deadline_ms, void (*done_cb)(void *ud), void *ud) {
  kps__sink_flush_t *f = calloc(1, sizeof(*f));
  kps_sink_t *s, *next;

  if (!f) {
    KPS_ERROR("sink: out of memory in flush; not waiting for collectors");
    done_cb(ud);
    return;
  }
  uv_timer_init(loop, &f->timer);
  f->timer.data = f;
  f->done_cb = done_cb;
  f->ud = ud;
  for (s = kps__sink_registry; s; s = next) {
    next = s->next;
    if (s->loop != loop || s->closed || s->flush) continue;
    s->flush = f;
    f->pending++;
    if (s->closing) continue;
    s->flushing = 1;
    if (!s->head) {
      kps__sink_close(s);
    } else if (s->state == KPS__SINK_BACKOFF) {
      uv_timer_stop(&s->timer); /* one more try now rather than after a long backoff */
      s->state = KPS__SINK_IDLE;
      kps__sink_connect_start(s);
    }
  }
  if (f->pending == 0)
    kps__sink_flush_finish(f);
  else
    uv_timer_start(&f->timer, kps__sink_on_flush_deadline, deadline_ms, 0);
}
