/* sink_endpoint.c: one collector endpoint's connection state machine (see
 * sink.h): resolve, connect address by address, transport handshake,
 * acceptance, batch writes, acknowledgements (SIOCOUTQ), the replay window,
 * keepalive and backoff.  Which endpoint carries which records is decided
 * by sink.c (kps__sink_dispatch); an endpoint takes batches from the sink's
 * pending queue and gives back, at the front, what a broken connection held.
 *
 * States:  IDLE -> RESOLVING -> CONNECTING -> HANDSHAKE -> [PROVING ->] READY
 * and BACKOFF after any failure.  PROVING (TLS 1.3 only) carries records
 * but lets none go before the collector showed it accepted the connection.
 * One timer serves the connect timeout, the acceptance grace, the keepalive
 * and the backoff delay, by state; a second polls SIOCOUTQ for
 * acknowledgements and enforces the send timeout.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "log.h"
#include "sink_internal.h"

typedef enum kps__sink_fail_e {
  KPS__SINK_FAIL_CONNECT, /* DNS, connect, handshake timeout */
  KPS__SINK_FAIL_TLS,     /* handshake, verification or TLS protocol */
  KPS__SINK_FAIL_IO,      /* write error, send timeout, read error */
  KPS__SINK_FAIL_RESET,   /* the collector reset the connection: replay */
  KPS__SINK_FAIL_CLOSED   /* the collector closed the connection */
} kps__sink_fail_t;

typedef struct kps__sink_raw_s {
  uv_write_t req;
  kps__sink_conn_t *conn;
  char *buf;
} kps__sink_raw_t;

static void kps__sink_ep_fail(kps__sink_ep_t *ep, kps__sink_fail_t kind, const char *why);
static void kps__sink_ep_on_timer(uv_timer_t *t);
static void kps__sink_ep_on_ack_timer(uv_timer_t *t);
static void kps__sink_ep_connect_next(kps__sink_ep_t *ep);

int kps__sink_ep_usable(const kps__sink_ep_t *ep) {
  return ep->conn != NULL && (ep->state == KPS__SINK_PROVING || ep->state == KPS__SINK_READY);
}

/* ---- handles ----------------------------------------------------------- */

static void kps__sink_ep_on_handle_closed(uv_handle_t *h) {
  kps__sink_ep_t *ep = h->data;
  kps_sink_t *s = ep->sink;

  s->open--;
  kps__sink_finalize_if_done(s);
}

/* Ownership: the caller has copied host and port into ep; the endpoint's two
 * timers count in s->open until their close callbacks. */
void kps__sink_ep_init(kps_sink_t *s, kps__sink_ep_t *ep) {
  ep->sink = s;
  snprintf(ep->name, sizeof(ep->name), strchr(ep->host, ':') ? "[%s]:%d" : "%s:%d", ep->host, ep->port);
  snprintf(ep->label, sizeof(ep->label), "%s%s", s->transport->scheme, ep->name);
  ep->st.name = ep->name;
  ep->state = KPS__SINK_IDLE;
  ep->backoff_ms = KPS__SINK_BACKOFF_MIN_MS;
  ep->ack_delay_ms = KPS__SINK_ACK_POLL_MIN_MS;
  uv_timer_init(s->loop, &ep->timer);
  uv_timer_init(s->loop, &ep->ack_timer);
  ep->timer.data = ep->ack_timer.data = ep;
  s->open += 2;
}

/* ---- connections ------------------------------------------------------- */

/* Close callback of a connection's TCP handle: the only place a conn is freed. */
static void kps__sink_on_conn_closed(uv_handle_t *h) {
  kps__sink_conn_t *c = h->data;
  kps_sink_t *s = c->ep->sink;

  if (c->tstate) s->transport->conn_free(c);
  free(c);
  s->open--;
  kps__sink_finalize_if_done(s);
}

/* Starts closing c; the caller must already have detached it from ep->conn.
 * goodbye: try to send the transport's farewell (TLS close_notify) first. */
static void kps__sink_conn_close(kps__sink_conn_t *c, int goodbye) {
  char bye[256];
  size_t n;

  if (c->closing) return;
  c->closing = 1;
  if (goodbye && c->tstate) {
    n = c->ep->sink->transport->conn_goodbye(c, bye, sizeof(bye));
    if (n > 0) {
      uv_buf_t b = uv_buf_init(bye, (unsigned)n);
      (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1); /* best effort, never blocks */
    }
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, kps__sink_on_conn_closed);
}

/* Ownership: returns a new connection (freed by its close callback) with an
 * initialised TCP handle, or NULL. */
static kps__sink_conn_t *kps__sink_conn_new(kps__sink_ep_t *ep) {
  kps_sink_t *s = ep->sink;
  kps__sink_conn_t *c = calloc(1, sizeof(*c));

  if (!c) return NULL;
  if (uv_tcp_init(s->loop, &c->tcp) != 0) {
    free(c);
    return NULL;
  }
  c->tcp.data = c;
  c->connect_req.data = c;
  c->batch.req.data = c;
  c->ep = ep;
  c->name = ep->label;
  c->host = ep->host;
  c->tctx = s->tctx;
  s->open++;
  return c;
}

/* How a read or write error counts: a reset of an established connection
 * replays the window (once accepted) or counts as unconfirmed (PROVING). */
static kps__sink_fail_t kps__sink_io_kind(const kps__sink_ep_t *ep, int err) {
  if (!kps__sink_ep_usable(ep)) return KPS__SINK_FAIL_CONNECT;
  return err == UV_ECONNRESET || err == UV_EPIPE ? KPS__SINK_FAIL_RESET : KPS__SINK_FAIL_IO;
}

static void kps__sink_on_raw_written(uv_write_t *req, int status) {
  kps__sink_raw_t *w = req->data;
  kps__sink_conn_t *c = w->conn;
  char why[128];

  free(w->buf);
  free(w);
  if (status < 0 && !c->closing && c->ep->conn == c) {
    snprintf(why, sizeof(why), "write failed: %s", uv_strerror(status));
    kps__sink_ep_fail(c->ep, kps__sink_io_kind(c->ep, status), why);
  }
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

/* ---- records of the current connection ------------------------------------ */

/* Lets go of the records older than the replay window or past its byte cap. */
static void kps__sink_ep_trim_kept(kps__sink_ep_t *ep, uint64_t now) {
  kps__sink_list_t *k = &ep->kept;

  while (k->head && (k->bytes > KPS__SINK_REPLAY_BYTES || now - k->head->acked_at > KPS__SINK_REPLAY_MS)) {
    kps__sink_rec_t *r = kps__sink_list_pop(k);
    free(r->data);
    free(r);
  }
}

/* The connection was reset: what it acknowledged within the window may be
 * unread, so those records go back to the front of the queue (at least
 * once; the collector may see them twice). */
static void kps__sink_ep_replay_kept(kps__sink_ep_t *ep) {
  kps_sink_t *s = ep->sink;
  kps__sink_list_t *k = &ep->kept;

  kps__sink_ep_trim_kept(ep, uv_now(s->loop));
  if (!k->head) return;
  s->st.records_sent -= k->count;
  s->st.bytes_sent -= k->bytes;
  ep->st.records_sent -= k->count;
  ep->st.bytes_sent -= k->bytes;
  s->st.records_replayed += k->count;
  s->st.queue_depth += k->count;
  s->st.queue_bytes += k->bytes;
  kps__sink_list_prepend(&s->pending, k);
}

/* Frees every record of the connection whose bytes the collector's TCP stack
 * acknowledged, once the connection is accepted:
 * acked = bytes in the kernel (submitted - libuv's backlog) - SIOCOUTQ.
 * Before acceptance only the byte count advances (the send timeout's
 * progress); the records stay in flight. */
static void kps__sink_ep_poll_acks(kps__sink_ep_t *ep) {
  kps_sink_t *s = ep->sink;
  kps__sink_conn_t *c = ep->conn;
  uv_os_fd_t fd;
  int outq = 0, progressed = 0;
  uint64_t in_kernel, acked, now;
  size_t freed = 0;

  if (!kps__sink_ep_usable(ep)) return;
  now = uv_now(s->loop);
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &outq) == 0 && outq >= 0) {
    in_kernel = c->wire_submitted - c->tcp.write_queue_size;
    acked = in_kernel >= (uint64_t)outq ? in_kernel - (uint64_t)outq : 0;
    if (acked > c->wire_acked) {
      c->wire_acked = acked;
      ep->last_progress = now;
      ep->ack_delay_ms = KPS__SINK_ACK_POLL_MIN_MS;
      progressed = 1;
    }
  } /* else unknown: keep waiting, the send timeout bounds it */
  if (ep->state != KPS__SINK_READY) return;
  while (ep->inflight.head && ep->inflight.head->wire_end <= c->wire_acked) {
    kps__sink_rec_t *r = kps__sink_list_pop(&ep->inflight);
    s->st.records_sent++;
    s->st.bytes_sent += r->len;
    ep->st.records_sent++;
    ep->st.bytes_sent += r->len;
    s->st.queue_depth--;
    s->st.queue_bytes -= r->len;
    r->acked_at = now;
    kps__sink_list_push(&ep->kept, r);
    freed++;
  }
  /* An accepted connection that carries data is a success: reset the
   * backoff here, not at connect, so a collector that accepts and drops is
   * not hammered. */
  if (progressed || freed) ep->backoff_ms = KPS__SINK_BACKOFF_MIN_MS;
  kps__sink_ep_trim_kept(ep, now);
  if (freed) kps__sink_schedule(s); /* drained? idle? */
}

static void kps__sink_ep_arm_ack_timer(kps__sink_ep_t *ep) {
  kps__sink_conn_t *c = ep->conn;

  if (!c || c->wire_acked >= c->wire_submitted) {
    uv_timer_stop(&ep->ack_timer);
    return;
  }
  if (!uv_is_active((uv_handle_t *)&ep->ack_timer))
    uv_timer_start(&ep->ack_timer, kps__sink_ep_on_ack_timer, ep->ack_delay_ms, 0);
}

/* Polls acknowledgements with a growing interval and fails the connection
 * when nothing was acknowledged for timeout_ms (send timeout). */
static void kps__sink_ep_on_ack_timer(uv_timer_t *t) {
  kps__sink_ep_t *ep = t->data;
  kps_sink_t *s = ep->sink;
  kps__sink_conn_t *c = ep->conn;

  if (!kps__sink_ep_usable(ep)) return;
  kps__sink_ep_poll_acks(ep);
  if (c->wire_acked >= c->wire_submitted) return;
  if (uv_now(s->loop) - ep->last_progress >= s->timeout_ms) {
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_IO, "send timed out");
    return;
  }
  ep->ack_delay_ms *= 2;
  if (ep->ack_delay_ms > KPS__SINK_ACK_POLL_MAX_MS) ep->ack_delay_ms = KPS__SINK_ACK_POLL_MAX_MS;
  uv_timer_start(&ep->ack_timer, kps__sink_ep_on_ack_timer, ep->ack_delay_ms, 0);
}

static void kps__sink_on_batch_written(uv_write_t *req, int status) {
  kps__sink_conn_t *c = req->data;
  kps__sink_ep_t *ep = c->ep;
  char why[128];

  c->writing = 0;
  free(c->batch.owned);
  c->batch.owned = NULL;
  if (c->closing || ep->conn != c) return; /* cancelled: its records were re-queued */
  if (status < 0) {
    snprintf(why, sizeof(why), "write failed: %s", uv_strerror(status));
    kps__sink_ep_fail(ep, kps__sink_io_kind(ep, status), why);
    return;
  }
  ep->last_progress = uv_now(ep->sink->loop);
  kps__sink_ep_poll_acks(ep);
  kps__sink_ep_arm_ack_timer(ep);
  kps__sink_schedule(ep->sink); /* the connection can take the next batch */
}

/* Hands the next run of the sink's pending records to the transport and
 * writes them in one uv_write (writev for plain TCP); they move to the
 * connection's in-flight list.  One batch in flight per connection. */
int kps__sink_ep_write(kps__sink_ep_t *ep) {
  kps_sink_t *s = ep->sink;
  kps__sink_conn_t *c = ep->conn;
  kps__sink_batch_t *b;
  kps__sink_rec_t *r;
  size_t bytes = 0;
  uint64_t base;
  unsigned i;
  int rc;

  if (!kps__sink_ep_usable(ep) || c->writing || c->closing || !s->pending.head) return 0;
  b = &c->batch;
  b->nrec = 0;
  for (r = s->pending.head; r && b->nrec < KPS__SINK_BATCH_MAX; r = r->next) {
    if (b->nrec > 0 && bytes + r->len > KPS__SINK_BATCH_BYTES) break;
    b->recs[b->nrec++] = r;
    bytes += r->len;
  }
  b->owned = NULL;
  c->why[0] = 0;
  if (s->transport->conn_encode(c, b) != 0) {
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_IO, c->why[0] ? c->why : "encoding failed");
    return 0;
  }
  base = c->wire_submitted;
  rc = uv_write(&b->req, (uv_stream_t *)&c->tcp, b->bufs, b->nbufs, kps__sink_on_batch_written);
  if (rc < 0) {
    char why[128];
    free(b->owned);
    b->owned = NULL;
    snprintf(why, sizeof(why), "write failed: %s", uv_strerror(rc));
    kps__sink_ep_fail(ep, kps__sink_io_kind(ep, rc), why);
    return 0;
  }
  if (c->wire_acked >= c->wire_submitted) ep->last_progress = uv_now(s->loop); /* was idle */
  c->writing = 1;
  c->wire_submitted += b->wire_len;
  for (i = 0; i < b->nrec; i++) {
    r = kps__sink_list_pop(&s->pending); /* == b->recs[i] */
    if (r->writes++ > 0) s->st.records_resent++;
    r->wire_end = base + b->rec_end[i];
    kps__sink_list_push(&ep->inflight, r);
  }
  s->st.batches++;
  if (ep->state == KPS__SINK_READY) uv_timer_stop(&ep->timer); /* no longer idle */
  kps__sink_ep_arm_ack_timer(ep);
  return 1;
}

/* ---- the state machine ---------------------------------------------------- */

static void kps__sink_ep_free_addrs(kps__sink_ep_t *ep) {
  if (ep->addrs) uv_freeaddrinfo(ep->addrs);
  ep->addrs = NULL;
}

/* Drops the current connection attempt or connection (records in flight go
 * back to the front of the sink's queue), counts the failure and schedules
 * the next attempt after a backoff.  Only a clean close of a connection that
 * held nothing in flight leaves the endpoint healthy. */
static void kps__sink_ep_fail(kps__sink_ep_t *ep, kps__sink_fail_t kind, const char *why) {
  kps_sink_t *s = ep->sink;
  kps__sink_state_t was = ep->state;
  int unconfirmed = was == KPS__SINK_PROVING;
  int clean = kind == KPS__SINK_FAIL_CLOSED && !unconfirmed && ep->inflight.head == NULL;
  char reason[KPS__SINK_WHY_MAX + 64];
  uint64_t delay;

  snprintf(reason, sizeof(reason), "%s", why); /* why may live in the connection */
  if (unconfirmed) {
    ep->st.tls_failures++;
    s->st.tls_failures++;
    ep->st.tls_unconfirmed++;
    s->st.tls_unconfirmed++;
  } else {
    switch (kind) {
    case KPS__SINK_FAIL_CONNECT:
      ep->st.connect_failures++;
      s->st.connect_failures++;
      break;
    case KPS__SINK_FAIL_TLS:
      ep->st.tls_failures++;
      s->st.tls_failures++;
      break;
    case KPS__SINK_FAIL_IO:
    case KPS__SINK_FAIL_RESET:
      ep->st.write_errors++;
      s->st.write_errors++;
      break;
    case KPS__SINK_FAIL_CLOSED: break;
    }
  }
  /* In flight first, then (after a reset, or a TLS alert, of an accepted
   * connection, which can discard what TCP acknowledged) the replay window
   * in front of it: the queue keeps the order of the writes. */
  kps__sink_list_prepend(&s->pending, &ep->inflight);
  if (was == KPS__SINK_READY && (kind == KPS__SINK_FAIL_RESET || kind == KPS__SINK_FAIL_TLS))
    kps__sink_ep_replay_kept(ep);
  else
    kps__sink_list_free(&ep->kept);
  if (ep->conn) {
    kps__sink_conn_t *c = ep->conn;
    ep->conn = NULL;
    kps__sink_conn_close(c, 0);
  }
  if (ep->gai) {
    uv_cancel((uv_req_t *)&ep->gai->req); /* may fail when already running; its callback copes */
    ep->gai = NULL;
  }
  kps__sink_ep_free_addrs(ep);
  /* The next attempt starts at the address after the one that failed. */
  if (!clean && ep->addr_tried > 0 && was >= KPS__SINK_CONNECTING && was <= KPS__SINK_READY)
    ep->addr_start = ep->addr_cur + 1;
  uv_timer_stop(&ep->ack_timer);
  uv_timer_stop(&ep->timer);
  if (clean) {
    ep->state = KPS__SINK_IDLE;
    ep->backoff_cur = 0;
    KPS_INFO("sink %s: %s", ep->label, reason);
  } else {
    delay = ep->backoff_ms / 2 + kps__sink_rand(s) % (ep->backoff_ms / 2 + 1);
    ep->backoff_ms *= 2;
    if (ep->backoff_ms > KPS__SINK_BACKOFF_MAX_MS) ep->backoff_ms = KPS__SINK_BACKOFF_MAX_MS;
    ep->backoff_cur = delay;
    ep->state = KPS__SINK_BACKOFF;
    uv_timer_start(&ep->timer, kps__sink_ep_on_timer, delay, 0);
    KPS_WARN("sink %s: %s%s; %zu records waiting, retrying in %llu ms", ep->label,
             unconfirmed ? "collector refused the connection after the TLS handshake (certificate?): " : "",
             reason, s->st.queue_depth, (unsigned long long)delay);
  }
  kps__sink_schedule(s);
}

/* The collector showed it accepted the connection: what TCP acknowledged
 * meanwhile counts as sent now. */
static void kps__sink_ep_on_accepted(kps__sink_ep_t *ep) {
  kps_sink_t *s = ep->sink;

  uv_timer_stop(&ep->timer);
  ep->state = KPS__SINK_READY;
  ep->st.connects++;
  s->st.connects++;
  KPS_INFO("sink %s: connected", ep->label);
  kps__sink_ep_poll_acks(ep);
  if (!ep->inflight.head && !s->pending.head)
    ep->backoff_ms = KPS__SINK_BACKOFF_MIN_MS; /* nothing to prove: the connection works */
  kps__sink_ep_arm_ack_timer(ep);
  kps__sink_schedule(s);
}

/* The transport finished its handshake: records may go out. */
static void kps__sink_ep_on_established(kps__sink_ep_t *ep, int accepted) {
  kps_sink_t *s = ep->sink;

  uv_timer_stop(&ep->timer); /* the connect timeout */
  ep->ack_delay_ms = KPS__SINK_ACK_POLL_MIN_MS;
  ep->last_progress = uv_now(s->loop);
  if (accepted) {
    kps__sink_ep_on_accepted(ep);
    return;
  }
  ep->state = KPS__SINK_PROVING;
  uv_timer_start(&ep->timer, kps__sink_ep_on_timer, KPS__SINK_ACCEPT_GRACE_MS, 0);
  KPS_DEBUG("sink %s: handshake done, waiting for the collector to accept the connection", ep->label);
  kps__sink_schedule(s);
}

/* The collector closed its side: count what it acknowledged, then reconnect
 * if anything is left. */
static void kps__sink_ep_on_peer_closed(kps__sink_ep_t *ep) {
  switch (ep->state) {
  case KPS__SINK_READY:
    kps__sink_ep_poll_acks(ep);
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_CLOSED, "collector closed the connection");
    break;
  case KPS__SINK_PROVING: kps__sink_ep_fail(ep, KPS__SINK_FAIL_CLOSED, "collector closed the connection"); break;
  case KPS__SINK_HANDSHAKE: /* only transports with a handshake get here */
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_TLS, "collector closed the connection during the handshake");
    break;
  default: kps__sink_ep_fail(ep, KPS__SINK_FAIL_CONNECT, "collector closed the connection while connecting"); break;
  }
}

static void kps__sink_ep_transport_result(kps__sink_ep_t *ep, int rc) {
  kps__sink_conn_t *c = ep->conn;

  switch (rc) {
  case KPS__SINK_T_OK: break;
  case KPS__SINK_T_READY:
    if (ep->state == KPS__SINK_HANDSHAKE) kps__sink_ep_on_established(ep, 0);
    break;
  case KPS__SINK_T_ACCEPTED:
    if (ep->state == KPS__SINK_HANDSHAKE)
      kps__sink_ep_on_established(ep, 1);
    else if (ep->state == KPS__SINK_PROVING)
      kps__sink_ep_on_accepted(ep);
    break;
  case KPS__SINK_T_EOF: kps__sink_ep_on_peer_closed(ep); break;
  case KPS__SINK_T_TLSERR: kps__sink_ep_fail(ep, KPS__SINK_FAIL_TLS, c->why[0] ? c->why : "TLS failure"); break;
  default:
    kps__sink_ep_fail(ep, kps__sink_ep_usable(ep) ? KPS__SINK_FAIL_IO : KPS__SINK_FAIL_CONNECT,
                      c->why[0] ? c->why : "connection error");
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
  kps__sink_ep_t *ep = c->ep;
  char why[128];

  if (c->closing || ep->conn != c || nread == 0) return;
  if (nread == UV_EOF) {
    kps__sink_ep_on_peer_closed(ep);
  } else if (nread < 0) {
    snprintf(why, sizeof(why), "read failed: %s", uv_strerror((int)nread));
    kps__sink_ep_fail(ep, kps__sink_io_kind(ep, (int)nread), why);
  } else {
    c->why[0] = 0;
    kps__sink_ep_transport_result(ep, ep->sink->transport->conn_input(c, buf->base, (size_t)nread));
  }
}

static void kps__sink_on_connect(uv_connect_t *req, int status) {
  kps__sink_conn_t *c = req->data;
  kps__sink_ep_t *ep = c->ep;
  kps_sink_t *s = ep->sink;
  int rc;

  if (c->closing || ep->conn != c) return; /* cancelled by a close */
  if (status < 0) {
    ep->last_connect_err = status;
    ep->addr_start = ep->addr_cur + 1;
    KPS_DEBUG("sink %s: address %u of %u: %s", ep->label, ep->addr_cur + 1, ep->naddrs, uv_strerror(status));
    ep->conn = NULL;
    kps__sink_conn_close(c, 0);
    kps__sink_ep_connect_next(ep);
    return;
  }
  kps__sink_ep_free_addrs(ep);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, 60);
  /* Reading detects the collector closing its side; TLS also needs it. */
  rc = uv_read_start((uv_stream_t *)&c->tcp, kps__sink_on_alloc, kps__sink_on_read);
  if (rc < 0) {
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_CONNECT, uv_strerror(rc));
    return;
  }
  ep->state = KPS__SINK_HANDSHAKE;
  c->why[0] = 0;
  kps__sink_ep_transport_result(ep, s->transport->conn_start(c));
}

/* The idx-th IPv4/IPv6 address of the current resolution. */
static struct addrinfo *kps__sink_ep_addr(const kps__sink_ep_t *ep, unsigned idx) {
  struct addrinfo *ai;

  for (ai = ep->addrs; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (idx-- == 0) return ai;
  }
  return NULL;
}

/* Tries the next resolved address, going round the list from the address
 * this attempt started at; fails the attempt when none is left. */
static void kps__sink_ep_connect_next(kps__sink_ep_t *ep) {
  char why[160];

  while (ep->addr_tried < ep->naddrs) {
    unsigned idx = (ep->addr_base + ep->addr_tried) % ep->naddrs;
    struct addrinfo *ai = kps__sink_ep_addr(ep, idx);
    kps__sink_conn_t *c;
    int rc;

    ep->addr_tried++;
    c = kps__sink_conn_new(ep);
    if (!c) {
      ep->last_connect_err = UV_ENOMEM;
      break;
    }
    ep->addr_cur = idx;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, ai->ai_addr, kps__sink_on_connect);
    if (rc == 0) {
      ep->conn = c;
      return;
    }
    ep->last_connect_err = rc;
    ep->addr_start = idx + 1;
    kps__sink_conn_close(c, 0);
  }
  snprintf(why, sizeof(why), "connect failed: %s", uv_strerror(ep->last_connect_err));
  kps__sink_ep_fail(ep, KPS__SINK_FAIL_CONNECT, why);
}

static void kps__sink_ep_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  kps__sink_gai_t *g = req->data;
  kps__sink_ep_t *ep = g->ep;
  kps_sink_t *s = ep->sink;
  struct addrinfo *ai;
  char why[KPS__SINK_HOST_MAX + 80];
  int stale = ep->gai != g;

  free(g);
  s->open--;
  if (stale || s->closing) {
    if (res) uv_freeaddrinfo(res);
    kps__sink_finalize_if_done(s);
    return;
  }
  ep->gai = NULL;
  if (status < 0) {
    snprintf(why, sizeof(why), "cannot resolve %s: %s", ep->host, uv_strerror(status));
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_CONNECT, why);
    return;
  }
  ep->addrs = res;
  ep->naddrs = 0;
  for (ai = res; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) ep->naddrs++;
  /* A new list may be shorter: keep the rotation inside it (connect_next
   * starts at addr_start modulo the count). */
  ep->addr_start = ep->naddrs ? ep->addr_start % ep->naddrs : 0;
  ep->addr_base = ep->addr_start;
  ep->addr_tried = 0;
  ep->last_connect_err = UV_EADDRNOTAVAIL;
  ep->state = KPS__SINK_CONNECTING;
  kps__sink_ep_connect_next(ep);
}

/* Ownership: the resolve request is freed by its callback (which may run
 * after the attempt was abandoned: it then only frees). */
void kps__sink_ep_connect(kps__sink_ep_t *ep) {
  kps_sink_t *s = ep->sink;
  struct addrinfo hints;
  char port[8];
  kps__sink_gai_t *g;
  int rc;

  if (ep->state != KPS__SINK_IDLE || s->closing) return;
  if (s->attempts++ > 0) s->st.reconnects++;
  ep->state = KPS__SINK_RESOLVING;
  ep->addr_tried = 0;
  uv_timer_start(&ep->timer, kps__sink_ep_on_timer, s->timeout_ms, 0);
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(port, sizeof(port), "%d", ep->port);
  g = malloc(sizeof(*g));
  if (!g) {
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_CONNECT, "out of memory");
    return;
  }
  g->req.data = g;
  g->ep = ep;
  rc = uv_getaddrinfo(s->loop, &g->req, kps__sink_ep_on_resolved, ep->host, port, &hints);
  if (rc < 0) {
    free(g);
    kps__sink_ep_fail(ep, KPS__SINK_FAIL_CONNECT, uv_strerror(rc));
    return;
  }
  s->open++;
  ep->gai = g;
}

static void kps__sink_ep_on_timer(uv_timer_t *t) {
  kps__sink_ep_t *ep = t->data;
  kps_sink_t *s = ep->sink;

  switch (ep->state) {
  case KPS__SINK_RESOLVING:
  case KPS__SINK_CONNECTING:
  case KPS__SINK_HANDSHAKE: kps__sink_ep_fail(ep, KPS__SINK_FAIL_CONNECT, "connect timed out"); break;
  case KPS__SINK_PROVING: /* still up after the grace period: nothing objected */
    KPS_DEBUG("sink %s: no refusal within %d ms of the handshake", ep->label, KPS__SINK_ACCEPT_GRACE_MS);
    kps__sink_ep_on_accepted(ep);
    break;
  case KPS__SINK_BACKOFF:
    ep->state = KPS__SINK_IDLE;
    ep->backoff_cur = 0;
    kps__sink_schedule(s);
    break;
  case KPS__SINK_READY:
    if (ep->conn && !ep->inflight.head && !ep->conn->writing) { /* keepalive expired */
      kps__sink_conn_t *c = ep->conn;
      ep->conn = NULL;
      ep->state = KPS__SINK_IDLE;
      uv_timer_stop(&ep->ack_timer);
      kps__sink_list_free(&ep->kept);
      kps__sink_conn_close(c, 1);
      KPS_INFO("sink %s: closed idle connection", ep->label);
      kps__sink_schedule(s);
    }
    break;
  case KPS__SINK_IDLE: break;
  }
}

/* ---- for sink.c ----------------------------------------------------------- */

void kps__sink_ep_idle_check(kps__sink_ep_t *ep) {
  if (ep->state != KPS__SINK_READY || !ep->conn || ep->inflight.head || ep->conn->writing) return;
  if (!uv_is_active((uv_handle_t *)&ep->timer))
    uv_timer_start(&ep->timer, kps__sink_ep_on_timer, ep->sink->keepalive_ms, 0);
}

void kps__sink_ep_wake(kps__sink_ep_t *ep) {
  if (ep->state != KPS__SINK_BACKOFF) return;
  uv_timer_stop(&ep->timer);
  ep->state = KPS__SINK_IDLE;
  ep->backoff_cur = 0;
}

void kps__sink_ep_close(kps__sink_ep_t *ep) {
  if (ep->conn) {
    kps__sink_conn_t *c = ep->conn;
    int bye = kps__sink_ep_usable(ep);
    ep->conn = NULL;
    kps__sink_conn_close(c, bye);
  }
  if (ep->gai) {
    uv_cancel((uv_req_t *)&ep->gai->req);
    ep->gai = NULL;
  }
  kps__sink_ep_free_addrs(ep);
  ep->state = KPS__SINK_IDLE;
  ep->backoff_cur = 0;
  uv_close((uv_handle_t *)&ep->timer, kps__sink_ep_on_handle_closed);
  uv_close((uv_handle_t *)&ep->ack_timer, kps__sink_ep_on_handle_closed);
}

/* Ownership: frees what the endpoint owns (records, host), not ep itself. */
void kps__sink_ep_free(kps__sink_ep_t *ep) {
  kps__sink_list_free(&ep->inflight);
  kps__sink_list_free(&ep->kept);
  free(ep->host);
  ep->host = NULL;
}
