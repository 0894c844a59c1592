/* sink.c: the registry of sinks, their bounded queue, the balancing of
 * records over a sink's endpoints (kps__sink_dispatch), the endpoint
 * syntax and the shutdown flush (see sink.h).  One endpoint's connection
 * state machine lives in sink_endpoint.c; wire formats live in the
 * transports (sink_tcp.c, sink_tls.c) behind kps__sink_transport_t.
 */
#include "sink.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sink_internal.h"

static kps_sink_t *kps__sink_registry;

static void kps__sink_close(kps_sink_t *s);

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
uint64_t kps__sink_rand(kps_sink_t *s) {
  s->rng ^= s->rng << 13;
  s->rng ^= s->rng >> 7;
  s->rng ^= s->rng << 17;
  return s->rng;
}

/* ---- record lists --------------------------------------------------------- */

void kps__sink_list_push(kps__sink_list_t *l, kps__sink_rec_t *r) {
  r->next = NULL;
  if (l->tail)
    l->tail->next = r;
  else
    l->head = r;
  l->tail = r;
  l->count++;
  l->bytes += r->len;
}

kps__sink_rec_t *kps__sink_list_pop(kps__sink_list_t *l) {
  kps__sink_rec_t *r = l->head;

  if (!r) return NULL;
  l->head = r->next;
  if (!l->head) l->tail = NULL;
  l->count--;
  l->bytes -= r->len;
  r->next = NULL;
  return r;
}

void kps__sink_list_prepend(kps__sink_list_t *dst, kps__sink_list_t *src) {
  if (!src->head) return;
  src->tail->next = dst->head;
  if (!dst->head) dst->tail = src->tail;
  dst->head = src->head;
  dst->count += src->count;
  dst->bytes += src->bytes;
  memset(src, 0, sizeof(*src));
}

/* Ownership: frees the records and their data. */
void kps__sink_list_free(kps__sink_list_t *l) {
  kps__sink_rec_t *r, *next;

  for (r = l->head; r; r = next) {
    next = r->next;
    free(r->data);
    free(r);
  }
  memset(l, 0, sizeof(*l));
}

static int kps__sink_inflight_any(const kps_sink_t *s) {
  unsigned i;

  for (i = 0; i < s->neps; i++)
    if (s->eps[i].inflight.head) return 1;
  return 0;
}

/* ---- endpoint syntax ------------------------------------------------------ */

/* The entry for a message: at most 300 bytes, non-printable bytes as '?'. */
static void kps__sink_quote(const char *s, char *out, size_t cap) {
  size_t n = 0;

  for (; *s && n + 4 < cap; s++) out[n++] = (unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f ? '?' : *s;
  if (*s) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = 0;
}

static int kps__sink_is_ipv6(const char *h, size_t len) {
  char buf[64];
  unsigned char addr[16];
  const char *zone = memchr(h, '%', len);

  if (zone) len = (size_t)(zone - h); /* fe80::1%eth0: getaddrinfo takes the zone */
  if (len == 0 || len >= sizeof(buf)) return 0;
  memcpy(buf, h, len);
  buf[len] = 0;
  return inet_pton(AF_INET6, buf, addr) == 1;
}

/* Ownership: *err (on failure) is the caller's to free. */
int kps_sink_parse_endpoint(const char *s, char *host, size_t hostcap, int *port, char **err) {
  const char *h, *hend, *p, *colon;
  char q[304];
  size_t hl, i;
  long v = 0;

  if (err) *err = NULL;
  if (!s || !*s) {
    kps__sink_errf(err, "hosts entry \"\": expected host:port");
    return -1;
  }
  kps__sink_quote(s, q, sizeof(q));
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') {
      kps__sink_errf(err, "hosts entry \"%s\": expected [IPv6 address]:port", q);
      return -1;
    }
    h = s + 1;
    hend = close;
    p = close + 2;
    if (hend > h && !kps__sink_is_ipv6(h, (size_t)(hend - h))) {
      kps__sink_errf(err, "hosts entry \"%s\": the address in brackets is not an IPv6 address", q);
      return -1;
    }
  } else {
    colon = strrchr(s, ':');
    if (!colon) {
      kps__sink_errf(err, "hosts entry \"%s\": expected host:port", q);
      return -1;
    }
    if (memchr(s, ':', (size_t)(colon - s))) {
      kps__sink_errf(err, "hosts entry \"%s\": an IPv6 address needs brackets, as in [::1]:514", q);
      return -1;
    }
    h = s;
    hend = colon;
    p = colon + 1;
  }
  hl = (size_t)(hend - h);
  if (hl == 0) {
    kps__sink_errf(err, "hosts entry \"%s\": the host is empty", q);
    return -1;
  }
  if (hl > KPS__SINK_HOST_MAX) {
    kps__sink_errf(err, "hosts entry \"%s\": the host is longer than %d bytes", q, KPS__SINK_HOST_MAX);
    return -1;
  }
  for (i = 0; i < hl; i++) {
    unsigned char ch = (unsigned char)h[i];
    if (ch <= 0x20 || ch == 0x7f || ch == '[' || ch == ']') {
      kps__sink_errf(err, "hosts entry \"%s\": the host contains a space, a control character or a bracket", q);
      return -1;
    }
  }
  for (i = 0; p[i] >= '0' && p[i] <= '9' && i < 6; i++) v = v * 10 + (p[i] - '0');
  if (i == 0 || p[i] != 0 || v < 1 || v > 65535) {
    kps__sink_errf(err, "hosts entry \"%s\": the port must be a number 1..65535", q);
    return -1;
  }
  if (!host || hl + 1 > hostcap) {
    kps__sink_errf(err, "hosts entry \"%s\": the host does not fit %zu bytes", q, hostcap ? hostcap - 1 : 0);
    return -1;
  }
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = (int)v;
  return 0;
}

/* ---- balancing ---------------------------------------------------------------- */

/* Failover: records go to the first accepted connection in endpoint order
 * (else the first one still proving itself); the first endpoint not in
 * backoff is connected when it is idle, which is also how a higher endpoint
 * whose backoff ended takes the traffic back. */
static void kps__sink_dispatch_failover(kps_sink_t *s) {
  kps__sink_ep_t *carrier = NULL;
  unsigned i;

  for (i = 0; i < s->neps && !carrier; i++)
    if (s->eps[i].state == KPS__SINK_READY) carrier = &s->eps[i];
  for (i = 0; i < s->neps && !carrier; i++)
    if (s->eps[i].state == KPS__SINK_PROVING) carrier = &s->eps[i];
  if (!s->pending.head) return;
  for (i = 0; i < s->neps; i++) {
    if (s->eps[i].state == KPS__SINK_BACKOFF) continue;
    if (s->eps[i].state == KPS__SINK_IDLE) kps__sink_ep_connect(&s->eps[i]);
    break;
  }
  if (carrier) kps__sink_ep_write(carrier);
}

/* Round robin: every endpoint not in backoff is connected; successive
 * batches go to successive connections that can take one. */
static void kps__sink_dispatch_round_robin(kps_sink_t *s) {
  unsigned i, k;

  if (!s->pending.head) return;
  for (i = 0; i < s->neps; i++)
    if (s->eps[i].state == KPS__SINK_IDLE) kps__sink_ep_connect(&s->eps[i]);
  for (k = 0; k < s->neps && s->pending.head; k++) {
    i = (s->rr_next + k) % s->neps;
    if (kps__sink_ep_write(&s->eps[i])) s->rr_next = (i + 1) % s->neps;
  }
}

/* Decides connects and writes for the whole sink; starts keepalive timers
 * of idle connections; closes a drained sink nobody holds (or a flushing
 * one).  Runs from the kick handle only, never inside an endpoint callback. */
static void kps__sink_dispatch(kps_sink_t *s) {
  unsigned i;

  if (s->closing) return;
  if (s->balance == KPS_SINK_ROUND_ROBIN)
    kps__sink_dispatch_round_robin(s);
  else
    kps__sink_dispatch_failover(s);
  for (i = 0; i < s->neps; i++) kps__sink_ep_idle_check(&s->eps[i]);
  if (!s->pending.head && !kps__sink_inflight_any(s) && (s->refs == 0 || s->flushing)) kps__sink_close(s);
}

static void kps__sink_on_kick(uv_idle_t *h) {
  kps_sink_t *s = h->data;

  uv_idle_stop(h);
  kps__sink_dispatch(s);
}

void kps__sink_schedule(kps_sink_t *s) {
  if (!s->closing && !uv_is_active((uv_handle_t *)&s->kick)) uv_idle_start(&s->kick, kps__sink_on_kick);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* Ownership: frees the sink and everything it owns; only once no handle or
 * request points at it (closed) and nobody holds a reference. */
static void kps__sink_free(kps_sink_t *s) {
  unsigned i;

  if (s->prev)
    s->prev->next = s->next;
  else if (kps__sink_registry == s)
    kps__sink_registry = s->next;
  if (s->next) s->next->prev = s->prev;
  if (s->tctx) s->transport->ctx_free(s->tctx);
  for (i = 0; i < s->neps; i++) kps__sink_ep_free(&s->eps[i]);
  free(s->eps);
  kps__sink_list_free(&s->pending);
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
 * every request called back.  Records go only now: a cancelled write may
 * point into record data until its handle closed. */
void kps__sink_finalize_if_done(kps_sink_t *s) {
  kps__sink_flush_t *f;
  unsigned i;

  if (!s->closing || s->open > 0 || s->closed) return;
  s->closed = 1;
  kps__sink_list_free(&s->pending);
  for (i = 0; i < s->neps; i++) {
    kps__sink_list_free(&s->eps[i].inflight);
    kps__sink_list_free(&s->eps[i].kept);
  }
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

/* Stops the sink for good: what is queued or not proven delivered is
 * counted as a shutdown drop, every handle is closed; memory goes once the
 * callbacks are in. */
static void kps__sink_close(kps_sink_t *s) {
  unsigned i;

  if (s->closing) return;
  s->closing = 1;
  if (s->st.queue_depth > 0) {
    KPS_WARN("sink %s: dropping %zu undelivered records at shutdown", s->name, s->st.queue_depth);
    s->st.dropped[KPS_SINK_DROP_SHUTDOWN] += s->st.queue_depth;
    s->st.queue_depth = 0;
    s->st.queue_bytes = 0;
  }
  for (i = 0; i < s->neps; i++) kps__sink_ep_close(&s->eps[i]);
  uv_close((uv_handle_t *)&s->kick, kps__sink_on_handle_closed);
}

/* The endpoint list of a configuration: cfg->endpoints, or host/port. */
static size_t kps__sink_cfg_endpoints(const kps_sink_config_t *cfg, const kps_sink_endpoint_t **eps,
                                      kps_sink_endpoint_t *one) {
  if (cfg->nendpoints > 0) {
    *eps = cfg->endpoints;
    return cfg->nendpoints;
  }
  one->host = cfg->host;
  one->port = cfg->port;
  *eps = one;
  return 1;
}

static int kps__sink_same(const kps_sink_t *s, uv_loop_t *loop, const kps_sink_config_t *cfg) {
  kps_sink_endpoint_t one;
  const kps_sink_endpoint_t *eps;
  size_t n = kps__sink_cfg_endpoints(cfg, &eps, &one), i;
  kps_sink_balance_t balance = n > 1 ? cfg->balance : KPS_SINK_FAILOVER;

  if (s->loop != loop || s->closing || s->tls != (cfg->tls != 0) || s->neps != n || s->balance != balance)
    return 0;
  for (i = 0; i < n; i++)
    if (s->eps[i].port != eps[i].port || strcmp(s->eps[i].host, eps[i].host) != 0) return 0;
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
  kps_sink_endpoint_t one;
  const kps_sink_endpoint_t *eps;
  size_t n, i;

  if (!loop || !cfg) {
    kps__sink_errf(err, "sink: missing loop or configuration");
    return -1;
  }
  if (cfg->nendpoints > KPS_SINK_ENDPOINTS_MAX) {
    kps__sink_errf(err, "hosts: at most %d collectors, got %zu", KPS_SINK_ENDPOINTS_MAX, cfg->nendpoints);
    return -1;
  }
  if (cfg->nendpoints > 0 && !cfg->endpoints) {
    kps__sink_errf(err, "hosts: missing the list of %zu collectors", cfg->nendpoints);
    return -1;
  }
  if (cfg->balance != KPS_SINK_FAILOVER && cfg->balance != KPS_SINK_ROUND_ROBIN) {
    kps__sink_errf(err, "balance: must be failover or round_robin");
    return -1;
  }
  n = kps__sink_cfg_endpoints(cfg, &eps, &one);
  for (i = 0; i < n; i++) {
    const char *h = eps[i].host;
    if (!h || !*h || strlen(h) > KPS__SINK_HOST_MAX) {
      if (cfg->nendpoints)
        kps__sink_errf(err, "hosts[%zu]: the host must be a name or address of 1..%d bytes", i, KPS__SINK_HOST_MAX);
      else
        kps__sink_errf(err, "host: must be a name or address of 1..%d characters", KPS__SINK_HOST_MAX);
      return -1;
    }
    if (eps[i].port < 1 || eps[i].port > 65535) {
      if (cfg->nendpoints)
        kps__sink_errf(err, "hosts[%zu]: the port must be 1..65535, got %d", i, eps[i].port);
      else
        kps__sink_errf(err, "port: must be 1..65535, got %d", eps[i].port);
      return -1;
    }
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

/* "scheme" + "a:1,b:2", cut with "..." after the last endpoint that fits. */
static void kps__sink_make_name(kps_sink_t *s) {
  size_t cap = sizeof(s->name), n;
  unsigned i;

  n = (size_t)snprintf(s->name, cap, "%s", s->transport->scheme);
  for (i = 0; i < s->neps; i++) {
    const char *sep = i ? "," : "";
    size_t need = strlen(sep) + strlen(s->eps[i].name);
    size_t reserve = i + 1 < s->neps ? 4 : 0; /* room for ",..." after this one */
    if (n + need + reserve >= cap) {
      snprintf(s->name + n, cap - n, "%s...", sep);
      return;
    }
    n += (size_t)snprintf(s->name + n, cap - n, "%s%s", sep, s->eps[i].name);
  }
}

/* Ownership: the returned sink holds one reference for the caller; *err
 * (on failure) is the caller's to free. */
kps_sink_t *kps_sink_acquire(uv_loop_t *loop, const kps_sink_config_t *cfg, char **err) {
  kps_sink_endpoint_t one;
  const kps_sink_endpoint_t *eps;
  kps_sink_t *s;
  size_t n, i;

  if (err) *err = NULL;
  if (kps__sink_validate(loop, cfg, err) != 0) return NULL;
  for (s = kps__sink_registry; s; s = s->next) {
    if (kps__sink_same(s, loop, cfg)) {
      s->refs++;
      kps__sink_apply_limits(s, cfg);
      return s;
    }
  }
  n = kps__sink_cfg_endpoints(cfg, &eps, &one);
  s = calloc(1, sizeof(*s));
  if (!s) {
    kps__sink_errf(err, "sink: out of memory");
    return NULL;
  }
  s->loop = loop;
  s->tls = cfg->tls != 0;
  s->verify = cfg->tls_verify != 0;
  s->balance = n > 1 ? cfg->balance : KPS_SINK_FAILOVER;
  if (s->tls) {
    s->sni = kps__sink_dup(cfg->tls_sni);
    s->ca = kps__sink_dup(cfg->tls_ca_file);
    s->cert = kps__sink_dup(cfg->tls_client_cert);
    s->key = kps__sink_dup(cfg->tls_client_key);
  }
  s->transport = s->tls ? &kps__sink_tls : &kps__sink_tcp;
  kps__sink_apply_limits(s, cfg);
  s->eps = calloc(n, sizeof(*s->eps));
  if (!s->eps) goto oom;
  s->neps = (unsigned)n;
  for (i = 0; i < n; i++) {
    s->eps[i].host = strdup(eps[i].host);
    s->eps[i].port = eps[i].port;
    if (!s->eps[i].host) goto oom;
  }
  if (s->transport->ctx_new(cfg, &s->tctx, err) != 0) {
    s->tctx = NULL;
    goto fail;
  }
  /* Nothing below fails: handles are set up only now. */
  uv_idle_init(loop, &s->kick);
  s->kick.data = s;
  s->open = 1;
  for (i = 0; i < n; i++) kps__sink_ep_init(s, &s->eps[i]);
  kps__sink_make_name(s);
  s->refs = 1;
  s->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)s;
  if (!s->rng) s->rng = 0x9e3779b97f4a7c15ull;
  s->next = kps__sink_registry;
  if (kps__sink_registry) kps__sink_registry->prev = s;
  kps__sink_registry = s;
  return s;

oom:
  kps__sink_errf(err, "sink: out of memory");
fail:
  kps__sink_free(s); /* not in the registry yet, no handle set up */
  return NULL;
}

/* Ownership: drops the caller's reference; the sink frees itself once it is
 * unreferenced and closed (never synchronously inside its own callbacks). */
void kps_sink_release(kps_sink_t *s) {
  if (!s || s->refs == 0) return;
  if (--s->refs > 0) return;
  if (s->closed)
    kps__sink_free(s);
  else if (!s->closing && !s->pending.head && !kps__sink_inflight_any(s))
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
  r->data = line;
  r->len = len;
  r->wire_end = 0;
  r->writes = 0;
  r->acked_at = 0;
  kps__sink_list_push(&s->pending, r);
  s->st.records_enqueued++;
  s->st.queue_depth++;
  s->st.queue_bytes += len;
  kps__sink_schedule(s);
  return 0;

drop:
  free(line);
  s->st.dropped[why]++;
  if (why == KPS_SINK_DROP_SHUTDOWN) return KPS_SINK_ECLOSED;
  return why == KPS_SINK_DROP_TOO_LARGE ? KPS_SINK_ETOOBIG : KPS_SINK_EFULL;
}

/* Ownership: copies into the caller's struct. */
void kps_sink_get_stats(const kps_sink_t *s, kps_sink_stats_t *out) {
  unsigned i;

  *out = s->st;
  out->connected = 0;
  out->replay_bytes = 0;
  for (i = 0; i < s->neps; i++) {
    if (kps__sink_ep_usable(&s->eps[i])) out->connected = 1;
    out->replay_bytes += s->eps[i].kept.bytes;
  }
}

size_t kps_sink_endpoint_count(const kps_sink_t *s) { return s->neps; }

/* Ownership: copies into the caller's struct; out->name lives as long as the sink. */
void kps_sink_get_endpoint_stats(const kps_sink_t *s, size_t i, kps_sink_endpoint_stats_t *out) {
  const kps__sink_ep_t *ep;

  if (i >= s->neps) {
    memset(out, 0, sizeof(*out));
    out->name = "";
    return;
  }
  ep = &s->eps[i];
  *out = ep->st;
  out->name = ep->name;
  out->connected = kps__sink_ep_usable(ep);
  out->healthy = ep->state != KPS__SINK_BACKOFF;
  out->backoff_ms = ep->state == KPS__SINK_BACKOFF ? ep->backoff_cur : 0;
}

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
  unsigned i;

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
    if (!s->pending.head && !kps__sink_inflight_any(s)) {
      kps__sink_close(s);
    } else {
      /* One more try now rather than after a long backoff. */
      for (i = 0; i < s->neps; i++) kps__sink_ep_wake(&s->eps[i]);
      kps__sink_schedule(s);
    }
  }
  if (f->pending == 0)
    kps__sink_flush_finish(f);
  else
    uv_timer_start(&f->timer, kps__sink_on_flush_deadline, deadline_ms, 0);
}
