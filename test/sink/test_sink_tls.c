/* test_sink_tls.c: the sink over TLS against real kps-collector processes,
 * with certificates made by gen-certs.sh.  One case per process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "sink_test_util.h"

#ifndef KPS_CERT_DIR
#error "KPS_CERT_DIR must name the directory gen-certs.sh wrote"
#endif

static const char *cert(const char *name) {
  static char bufs[8][600];
  static int next;
  char *b = bufs[next++ % 8];

  snprintf(b, sizeof(bufs[0]), "%s/%s", KPS_CERT_DIR, name);
  return b;
}

static kps_sink_config_t tls_cfg(int port, const char *ca_name) {
  kps_sink_config_t cfg;

  memset(&cfg, 0, sizeof(cfg));
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.timeout_ms = 3000;
  cfg.keepalive_ms = 60000;
  cfg.tls = 1;
  cfg.tls_verify = 1;
  cfg.tls_ca_file = ca_name ? cert(ca_name) : NULL;
  cfg.queue_max_bytes = 16u << 20;
  cfg.queue_max_entries = 100000;
  return cfg;
}

static kps_sink_t *acquire_ok(uv_loop_t *loop, const kps_sink_config_t *cfg) {
  char *err = NULL;
  kps_sink_t *s = kps_sink_acquire(loop, cfg, &err);

  if (!s) t_fail(__FILE__, __LINE__, "acquire failed: %s", err ? err : "?");
  return s;
}

/* A TLS collector on port (0: any free one). */
static void start_server_on(t_collector_t *col, int port, const char *pem, const char *key, const char *const *more) {
  const char *extra[16];
  int n = 0;

  extra[n++] = "--tls-cert";
  extra[n++] = cert(pem);
  extra[n++] = "--tls-key";
  extra[n++] = cert(key);
  for (; more && *more && n < 15; more++) extra[n++] = *more;
  extra[n] = NULL;
  t_collector_start(col, "srv", port, extra);
}

static void start_server(t_collector_t *col, const char *pem, const char *key, const char *const *more) {
  start_server_on(col, 0, pem, key, more);
}

static size_t rec_size(unsigned seq) { return 60 + seq % 97; }

static void enqueue(kps_sink_t *s, unsigned seq, size_t size) {
  CHECK_EQ(kps_sink_enqueue(s, t_record(seq, size), size), 0);
}

/* Checks the collector's output: byte-exact lines; the seqs of each range
 * [from_i, to_i) appear exactly once each, in order. */
static void check_ranges(const char *path, const unsigned (*ranges)[2], int nranges) {
  unsigned next[4];
  size_t len;
  char *buf = t_read_file(path, &len), *p = buf, *end = buf + len;
  int i;

  CHECK(buf != NULL && nranges <= 4);
  for (i = 0; i < nranges; i++) next[i] = ranges[i][0];
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    long seq;
    CHECK(nl != NULL);
    seq = t_record_seq(p, (size_t)(nl + 1 - p));
    CHECK(seq >= 0);
    for (i = 0; i < nranges; i++)
      if ((unsigned long)seq >= ranges[i][0] && (unsigned long)seq < ranges[i][1]) break;
    CHECK(i < nranges);
    CHECK_EQ(seq, next[i]);
    next[i]++;
    p = nl + 1;
  }
  for (i = 0; i < nranges; i++) CHECK_EQ(next[i], ranges[i][1]);
  free(buf);
}

typedef struct wait_s {
  kps_sink_t *a, *b;
  const t_collector_t *col;
  uint64_t na, nb, lines, tls_failures;
} wait_t;

static int pred_delivered(void *ud) {
  wait_t *w = ud;
  kps_sink_stats_t a = t_stats(w->a);

  CHECK(w->col != NULL);
  if (a.records_sent < w->na || a.queue_depth) return 0;
  if (w->b) {
    kps_sink_stats_t b = t_stats(w->b);
    if (b.records_sent < w->nb || b.queue_depth) return 0;
  }
  return t_collector_count(w->col) >= w->lines;
}

static int pred_tls_failures(void *ud) {
  wait_t *w = ud;
  return t_stats(w->a).tls_failures >= w->tls_failures;
}

static int pred_not_connected(void *ud) { return !t_stats(ud).connected; }

/* Refused twice, however it showed: a TLS alert, or a reset when the
 * collector closed with our record unread (the kernel then drops the alert). */
static int pred_refused_twice(void *ud) {
  kps_sink_stats_t st = t_stats(((wait_t *)ud)->a);
  return st.tls_failures + st.write_errors >= 2;
}

/* Good CA, verification by IP SAN and by SNI/DNS SAN, records larger than a
 * TLS record. */
static void test_tls_good(void) {
  static const unsigned ranges[2][2] = {{0, 304}, {1000, 1300}};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t c1, c2;
  kps_sink_t *s[2];
  kps_sink_stats_t st;
  wait_t w;
  unsigned i;

  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", NULL);
  c1 = tls_cfg(col.port, "ca.pem"); /* checked against IP:127.0.0.1 */
  c2 = tls_cfg(col.port, "ca.pem");
  c2.host = "localhost";
  c2.tls_sni = "localhost"; /* checked against DNS:localhost */
  s[0] = acquire_ok(&loop, &c1);
  s[1] = acquire_ok(&loop, &c2);
  CHECK(s[0] != s[1]);
  for (i = 0; i < 300; i++) enqueue(s[0], i, rec_size(i));
  for (i = 300; i < 304; i++) enqueue(s[0], i, 40000 + i); /* spans several TLS records */
  for (i = 1000; i < 1300; i++) enqueue(s[1], i, rec_size(i));
  memset(&w, 0, sizeof(w));
  w.a = s[0];
  w.b = s[1];
  w.col = &col;
  w.na = 304;
  w.nb = 300;
  w.lines = 604;
  CHECK(t_run_until(&loop, pred_delivered, &w, 20000));
  check_ranges(col.out, ranges, 2);
  for (i = 0; i < 2; i++) {
    st = t_stats(s[i]);
    CHECK_EQ(st.tls_failures, 0);
    CHECK_EQ(st.connects, 1);
    CHECK_EQ(st.records_resent, 0);
    CHECK(st.batches < st.records_sent);
  }
  t_finish(&loop, 2000, s, 2);
  t_collector_stop(&col);
  CHECK_EQ(t_collector_count(&col), 604);
}

/* Wrong CA: refused, counted, retried with backoff; verification off passes. */
static void test_tls_wrong_ca(void) {
  static const unsigned ranges[1][2] = {{0, 5}};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t c1, c2;
  kps_sink_t *s[2];
  kps_sink_stats_t st;
  uint64_t t0, took;
  wait_t w;
  unsigned i;

  t_capture_log();
  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", NULL);
  c1 = tls_cfg(col.port, "wrongca.pem");
  s[0] = acquire_ok(&loop, &c1);
  for (i = 0; i < 5; i++) enqueue(s[0], i, 100);
  memset(&w, 0, sizeof(w));
  w.a = s[0];
  w.tls_failures = 4;
  t0 = t_now_ms();
  CHECK(t_run_until(&loop, pred_tls_failures, &w, 20000));
  took = t_now_ms() - t0;
  st = t_stats(s[0]);
  /* Backoff: 4 failures need at least 50 + 100 + 200 ms of waiting. */
  CHECK(took >= 300);
  CHECK(st.reconnects >= 3 && st.reconnects <= st.tls_failures);
  CHECK_EQ(st.connects, 0);
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(st.queue_depth, 5);
  CHECK_EQ(t_collector_count(&col), 0);
  CHECK(t_log_contains("TLS handshake failed: certificate verification: unable to get local issuer certificate"));
  t_note("wrong CA: %llu tls_failures in %llu ms", (unsigned long long)st.tls_failures, (unsigned long long)took);

  /* Same endpoint without verification is another sink, and it delivers. */
  c2 = c1;
  c2.tls_verify = 0;
  s[1] = acquire_ok(&loop, &c2);
  CHECK(s[1] != s[0]);
  for (i = 0; i < 5; i++) enqueue(s[1], i, 100);
  w.a = s[1];
  w.col = &col;
  w.na = 5;
  w.lines = 5;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  check_ranges(col.out, ranges, 1);
  CHECK_EQ(t_stats(s[0]).records_sent, 0);

  t_finish(&loop, 200, s, 0);
  CHECK_EQ(t_stats(s[0]).dropped[KPS_SINK_DROP_SHUTDOWN], 5);
  CHECK_EQ(t_stats(s[1]).dropped[KPS_SINK_DROP_SHUTDOWN], 0);
  kps_sink_release(s[0]);
  kps_sink_release(s[1]);
  t_collector_stop(&col);
  CHECK_EQ(t_collector_count(&col), 5);
}

static void expect_refused(const char *pem, const char *key, const char *sni, const char *log_text) {
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  wait_t w;

  t_capture_log();
  t_loop_init(&loop);
  start_server(&col, pem, key, NULL);
  cfg = tls_cfg(col.port, "ca.pem");
  cfg.tls_sni = sni;
  s = acquire_ok(&loop, &cfg);
  enqueue(s, 1, 100);
  memset(&w, 0, sizeof(w));
  w.a = s;
  w.tls_failures = 2;
  CHECK(t_run_until(&loop, pred_tls_failures, &w, 20000));
  st = t_stats(s);
  CHECK_EQ(st.connects, 0);
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(t_collector_count(&col), 0);
  CHECK(t_log_contains(log_text));
  t_finish(&loop, 100, &s, 0);
  st = t_stats(s);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_SHUTDOWN], 1);
  kps_sink_release(s);
  t_collector_stop(&col);
  CHECK(t_file_contains(col.log, "handshake failed"));
}

/* The certificate is fine but names localhost, not wrong.example. */
static void test_tls_name_mismatch(void) {
  expect_refused("server.pem", "server.key", "wrong.example", "certificate verification: hostname mismatch");
}

static void test_tls_expired(void) {
  expect_refused("expired.pem", "expired.key", NULL, "certificate verification: certificate has expired");
}

/* mTLS: the collector requires a client certificate signed by the CA. */
static void test_tls_mtls(void) {
  static const unsigned ranges[1][2] = {{0, 100}};
  const char *more[] = {"--tls-client-ca", cert("ca.pem"), "--client-cn-file", t_path("cn"), NULL};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t c1, c2;
  kps_sink_t *s[2];
  size_t len;
  char *cn;
  wait_t w;
  unsigned i;

  t_capture_log();
  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", more);
  c1 = tls_cfg(col.port, "ca.pem");
  c1.tls_client_cert = cert("client.pem");
  c1.tls_client_key = cert("client.key");
  s[0] = acquire_ok(&loop, &c1);
  for (i = 0; i < 100; i++) enqueue(s[0], i, rec_size(i));
  memset(&w, 0, sizeof(w));
  w.a = s[0];
  w.col = &col;
  w.na = 100;
  w.lines = 100;
  CHECK(t_run_until(&loop, pred_delivered, &w, 20000));
  check_ranges(col.out, ranges, 1);
  cn = t_read_file(t_path("cn"), &len);
  CHECK(cn != NULL);
  CHECK(strcmp(cn, "kps-test-client\n") == 0);
  free(cn);
  CHECK_EQ(t_stats(s[0]).tls_failures, 0);

  /* Without a client certificate the collector refuses the connection.
   * With TLS 1.3 the client's handshake ends before the collector checks
   * the certificate, so the record goes out and is acknowledged by TCP,
   * then the alert comes: the record must stay queued, never count as sent. */
  c2 = tls_cfg(col.port, "ca.pem");
  s[1] = acquire_ok(&loop, &c2);
  enqueue(s[1], 5000, 100);
  w.a = s[1];
  CHECK(t_run_until(&loop, pred_refused_twice, &w, 20000));
  CHECK(t_run_until(&loop, pred_not_connected, s[1], 5000));
  {
    kps_sink_stats_t st = t_stats(s[1]);
    CHECK_EQ(st.records_sent, 0);
    CHECK_EQ(st.queue_depth, 1);
    t_note("mtls refused: tls_failures=%llu records_replayed=%llu", (unsigned long long)st.tls_failures,
           (unsigned long long)st.records_replayed);
  }
  t_finish(&loop, 100, s, 2);
  t_collector_stop(&col);
  CHECK_EQ(t_collector_count(&col), 100);
  check_ranges(col.out, ranges, 1);
  CHECK(t_file_contains(col.log, "handshake failed"));
}

/* Resets over TLS: a record counts as delivered only once the whole TLS
 * record carrying its end is acknowledged, so nothing is lost. */
static void test_tls_rst(void) {
  const char *more[] = {"--rst-after-lines", "500", "--rcvbuf", "65536", NULL};
  const unsigned total = 4000;
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  unsigned char *seen;
  size_t len;
  char *buf, *p, *end;
  uint64_t dups = 0;
  wait_t w;
  unsigned i;

  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", more);
  cfg = tls_cfg(col.port, "ca.pem");
  cfg.timeout_ms = 10000;
  s = acquire_ok(&loop, &cfg);
  for (i = 0; i < total; i++) enqueue(s, i, 1000);
  memset(&w, 0, sizeof(w));
  w.a = s;
  w.col = &col;
  w.na = total;
  w.lines = 0;
  CHECK(t_run_until(&loop, pred_delivered, &w, 60000));
  t_collector_stop(&col);
  seen = calloc(total, 1);
  CHECK(seen != NULL);
  buf = t_read_file(col.out, &len);
  CHECK(buf != NULL);
  for (p = buf, end = buf + len; p < end;) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    long seq;
    CHECK(nl != NULL);
    seq = t_record_seq(p, (size_t)(nl + 1 - p));
    CHECK(seq >= 0 && (unsigned long)seq < total);
    if (seen[seq]) dups++;
    seen[seq] = 1;
    p = nl + 1;
  }
  for (i = 0; i < total; i++)
    if (!seen[i]) t_fail(__FILE__, __LINE__, "record %u was lost", i);
  free(seen);
  free(buf);
  st = t_stats(s);
  CHECK_EQ(st.records_sent, total);
  CHECK(st.records_resent > 0);
  CHECK(st.connects >= 2);
  CHECK(dups <= (st.connects - 1) * 256);
  t_note("tls rst: connects=%llu records_resent=%llu duplicates=%llu", (unsigned long long)st.connects,
         (unsigned long long)st.records_resent, (unsigned long long)dups);
  t_finish(&loop, 2000, &s, 1);
}

/* ---- acceptance (sink.h): TLS 1.3 servers check our certificate after
 * our handshake is over ------------------------------------------------------ */

static int pred_collector_lines(void *ud) {
  wait_t *w = ud;
  return t_collector_count(w->col) >= w->lines;
}

static int pred_log_has(void *ud) {
  const char **a = ud;
  return t_file_contains(a[0], a[1]);
}

static int pred_sent(void *ud) {
  wait_t *w = ud;
  kps_sink_stats_t st = t_stats(w->a);
  return st.records_sent >= w->na && st.queue_depth == 0;
}

/* The k-th failure happened and its backoff is running. */
static int pred_unconfirmed_backoff(void *ud) {
  wait_t *w = ud;
  kps_sink_endpoint_stats_t e = t_ep_stats(w->a, 0);
  return e.tls_unconfirmed == w->tls_failures && !e.healthy;
}

static int pred_connect_failures_backoff(void *ud) {
  wait_t *w = ud;
  kps_sink_endpoint_stats_t e = t_ep_stats(w->a, 0);
  return e.connect_failures == w->tls_failures && !e.healthy;
}

static void on_done_flag(void *ud) { *(int *)ud = 1; }
static int pred_flag(void *ud) { return *(int *)ud != 0; }

/* Flushes every sink with deadline_ms; returns how long it took. */
static uint64_t flush_all(uv_loop_t *loop, uint64_t deadline_ms) {
  uint64_t t0 = t_now_ms();
  int done = 0;

  kps_sink_flush_all(loop, deadline_ms, on_done_flag, &done);
  CHECK(t_run_until(loop, pred_flag, &done, deadline_ms + 10000));
  return t_now_ms() - t0;
}

/* A TLS 1.3 collector that requires a client certificate refuses ours (none,
 * or one from another CA) after our handshake: the record is written and
 * acknowledged by TCP each time, yet never counts as sent; the attempts back
 * off (failure k waits [50, 100] * 2^(k-1) ms); the flush drops it. */
static void refused_after_handshake(const char *crt, const char *key) {
  const char *more[] = {"--tls-client-ca", cert("ca.pem"), NULL};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  kps_sink_endpoint_stats_t e;
  uint64_t t0, took, k;
  unsigned attempts;
  wait_t w;

  t_capture_log();
  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", more);
  cfg = tls_cfg(col.port, "ca.pem");
  cfg.tls_client_cert = crt ? cert(crt) : NULL;
  cfg.tls_client_key = key ? cert(key) : NULL;
  s = acquire_ok(&loop, &cfg);
  t0 = t_now_ms();
  enqueue(s, 1, 100);
  memset(&w, 0, sizeof(w));
  w.a = s;
  for (k = 1; k <= 3; k++) {
    w.tls_failures = k;
    CHECK(t_run_until(&loop, pred_unconfirmed_backoff, &w, 10000));
    e = t_ep_stats(s, 0);
    if (e.backoff_ms < (50u << (k - 1)) || e.backoff_ms > (100u << (k - 1)))
      t_fail(__FILE__, __LINE__, "failure %llu: backoff %llu ms", (unsigned long long)k,
             (unsigned long long)e.backoff_ms);
    CHECK_EQ(t_stats(s).records_sent, 0);
  }
  t_run_for(&loop, t0 + 3000 - t_now_ms());
  attempts = t_file_count(col.log, " open from ");
  st = t_stats(s);
  e = t_ep_stats(s, 0);
  t_note("refused after the handshake: %u attempts in 3 s, tls_unconfirmed=%llu, records_resent=%llu", attempts,
         (unsigned long long)st.tls_unconfirmed, (unsigned long long)st.records_resent);
  /* Backoff bound: attempts at 0, >=50, >=150, >=350, >=750, >=1550 ms. */
  CHECK(attempts >= 4 && attempts <= 7);
  CHECK(st.tls_unconfirmed >= 3 && st.tls_unconfirmed <= attempts);
  CHECK_EQ(st.tls_failures, st.tls_unconfirmed);
  CHECK_EQ(e.tls_unconfirmed, st.tls_unconfirmed);
  CHECK_EQ(e.tls_failures, st.tls_failures);
  CHECK_EQ(st.connects, 0);
  CHECK_EQ(e.connects, 0);
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(e.records_sent, 0);
  CHECK_EQ(st.connect_failures + st.write_errors, 0);
  CHECK_EQ(st.queue_depth, 1);
  CHECK(st.records_resent >= 1); /* written again after a refusal: it had gone out */
  CHECK(t_log_contains("collector refused the connection after the TLS handshake (certificate?)"));
  CHECK_EQ(t_collector_count(&col), 0);

  /* The shutdown flush does not take TCP's acknowledgement for delivery. */
  took = flush_all(&loop, 300);
  CHECK(took >= 250);
  st = t_stats(s);
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_SHUTDOWN], 1);
  CHECK_EQ(st.queue_depth, 0);
  kps_sink_release(s);

  /* A fresh sink flushed at once (SIGTERM right after a record): it
   * connects, writes, sees TCP acknowledge, and still waits for the
   * collector's verdict until the deadline. */
  s = acquire_ok(&loop, &cfg);
  enqueue(s, 2, 100);
  took = flush_all(&loop, 1500);
  st = t_stats(s);
  t_note("flush against a refusing collector: %llu ms, tls_unconfirmed=%llu", (unsigned long long)took,
         (unsigned long long)st.tls_unconfirmed);
  CHECK(took >= 1450);
  CHECK(st.tls_unconfirmed >= 1);
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_SHUTDOWN], 1);
  kps_sink_release(s);
  t_loop_done(&loop);
  t_collector_stop(&col);
  CHECK_EQ(t_collector_count(&col), 0);
}

static void test_tls13_refused(void) { refused_after_handshake(NULL, NULL); }
static void test_tls13_refused_wrong_cert(void) { refused_after_handshake("wrongclient.pem", "wrongclient.key"); }

/* The collector sends its session ticket 300 ms after the handshake: the
 * records are stored (and acknowledged by TCP) before that, but count as
 * sent only at the ticket, well before the 1000 ms grace. */
static void test_tls13_ticket_delay(void) {
  static const unsigned ranges[1][2] = {{0, 50}};
  const char *more[] = {"--tls-ticket-delay-ms", "300", NULL};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  kps_sink_endpoint_stats_t e;
  const char *log_has[2];
  uint64_t t0, took;
  wait_t w;
  unsigned i;

  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", more);
  cfg = tls_cfg(col.port, "ca.pem");
  s = acquire_ok(&loop, &cfg);
  t0 = t_now_ms();
  for (i = 0; i < 50; i++) enqueue(s, i, rec_size(i));
  memset(&w, 0, sizeof(w));
  w.a = s;
  w.col = &col;
  w.lines = 50;
  w.na = 50;
  CHECK(t_run_until(&loop, pred_collector_lines, &w, 10000));
  st = t_stats(s);
  e = t_ep_stats(s, 0);
  took = t_now_ms() - t0;
  CHECK(took < 300); /* so the ticket cannot have come yet */
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(st.queue_depth, 50);
  CHECK_EQ(e.connects, 0);
  CHECK(e.connected && st.connected);
  CHECK(t_run_until(&loop, pred_sent, &w, 10000));
  took = t_now_ms() - t0;
  t_note("ticket 300 ms after the handshake: records counted as sent after %llu ms", (unsigned long long)took);
  CHECK(took >= 290 && took < 900);
  st = t_stats(s);
  e = t_ep_stats(s, 0);
  CHECK_EQ(st.records_sent, 50);
  CHECK_EQ(e.records_sent, 50);
  CHECK_EQ(st.connects, 1);
  CHECK_EQ(st.tls_unconfirmed + st.tls_failures + st.records_resent, 0);
  log_has[0] = col.log; /* the collector logs just after sending it */
  log_has[1] = "session ticket sent";
  CHECK(t_run_until(&loop, pred_log_has, (void *)log_has, 5000));
  t_finish(&loop, 2000, &s, 1);
  t_collector_stop(&col);
  check_ranges(col.out, ranges, 1);
}

/* A collector that sends nothing after the handshake: accepted after the
 * grace period; the shutdown flush waits for that. */
static void test_tls13_no_tickets(void) {
  static const unsigned ranges[2][2] = {{0, 20}, {100, 105}};
  const char *more[] = {"--tls-no-tickets", NULL};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t c1, c2;
  kps_sink_t *s[2];
  kps_sink_stats_t st;
  uint64_t t0, took;
  wait_t w;
  unsigned i;

  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", more);
  c1 = tls_cfg(col.port, "ca.pem");
  s[0] = acquire_ok(&loop, &c1);
  t0 = t_now_ms();
  for (i = 0; i < 20; i++) enqueue(s[0], i, rec_size(i));
  memset(&w, 0, sizeof(w));
  w.a = s[0];
  w.col = &col;
  w.lines = 20;
  w.na = 20;
  CHECK(t_run_until(&loop, pred_collector_lines, &w, 10000));
  CHECK(t_now_ms() - t0 < 900);
  CHECK_EQ(t_stats(s[0]).records_sent, 0);
  CHECK(t_run_until(&loop, pred_sent, &w, 10000));
  took = t_now_ms() - t0;
  t_note("no tickets: records counted as sent after %llu ms", (unsigned long long)took);
  CHECK(took >= 950);
  st = t_stats(s[0]);
  CHECK_EQ(st.connects, 1);
  CHECK_EQ(st.tls_unconfirmed + st.tls_failures, 0);

  /* Another sink (verified by name), flushed at once: done_cb waits for the
   * grace, then counts the records as sent, none dropped. */
  c2 = tls_cfg(col.port, "ca.pem");
  c2.host = "localhost";
  s[1] = acquire_ok(&loop, &c2);
  CHECK(s[1] != s[0]);
  for (i = 100; i < 105; i++) enqueue(s[1], i, rec_size(i));
  took = flush_all(&loop, 5000);
  st = t_stats(s[1]);
  t_note("no tickets: the flush took %llu ms", (unsigned long long)took);
  CHECK(took >= 950 && took < 4000);
  CHECK_EQ(st.records_sent, 5);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_SHUTDOWN], 0);
  kps_sink_release(s[0]);
  kps_sink_release(s[1]);
  t_loop_done(&loop);
  t_collector_stop(&col);
  check_ranges(col.out, ranges, 2);
}

/* Failures grow the backoff; an accepted connection that carried records
 * resets it: the next failure waits [50, 100] ms again. */
static void test_tls13_backoff_reset(void) {
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_endpoint_stats_t e;
  wait_t w;
  int port = t_free_port();
  unsigned i;

  t_capture_log();
  t_loop_init(&loop);
  cfg = tls_cfg(port, "ca.pem");
  s = acquire_ok(&loop, &cfg);
  for (i = 0; i < 10; i++) enqueue(s, i, 100);
  memset(&w, 0, sizeof(w));
  w.a = s;
  w.tls_failures = 3; /* here: connect failures */
  CHECK(t_run_until(&loop, pred_connect_failures_backoff, &w, 10000));
  e = t_ep_stats(s, 0);
  CHECK(e.backoff_ms >= 200 && e.backoff_ms <= 400);
  start_server_on(&col, port, "server.pem", "server.key", NULL);
  w.col = &col;
  w.na = 10;
  w.lines = 10;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  e = t_ep_stats(s, 0);
  CHECK_EQ(e.connects, 1);
  CHECK_EQ(e.connect_failures, 3);
  CHECK_EQ(e.tls_unconfirmed, 0);
  CHECK(e.healthy && e.backoff_ms == 0);

  /* The collector goes away with the connection idle (not a failure), then
   * a record finds it down. */
  t_collector_stop(&col);
  CHECK(t_run_until(&loop, pred_not_connected, s, 10000));
  CHECK(t_ep_stats(s, 0).healthy);
  enqueue(s, 10, 100);
  w.tls_failures = 4;
  CHECK(t_run_until(&loop, pred_connect_failures_backoff, &w, 10000));
  e = t_ep_stats(s, 0);
  t_note("backoff after reset: %llu ms", (unsigned long long)e.backoff_ms);
  CHECK(e.backoff_ms >= 50 && e.backoff_ms <= 100);
  t_finish(&loop, 100, &s, 1);
}

/* TLS 1.2: the server checks our certificate before its Finished, so the
 * handshake's end is acceptance (no grace) and a refusal is a handshake
 * failure, never tls_unconfirmed. */
static void test_tls12_mtls(void) {
  static const unsigned ranges[1][2] = {{0, 20}};
  const char *more[] = {"--tls12", "--tls-client-ca", cert("ca.pem"), NULL};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t c1, c2;
  kps_sink_t *s[2];
  kps_sink_stats_t st;
  uint64_t t0, took;
  wait_t w;
  unsigned i;

  t_capture_log();
  t_loop_init(&loop);
  start_server(&col, "server.pem", "server.key", more);
  c1 = tls_cfg(col.port, "ca.pem");
  c1.tls_client_cert = cert("client.pem");
  c1.tls_client_key = cert("client.key");
  s[0] = acquire_ok(&loop, &c1);
  t0 = t_now_ms();
  for (i = 0; i < 20; i++) enqueue(s[0], i, rec_size(i));
  memset(&w, 0, sizeof(w));
  w.a = s[0];
  w.col = &col;
  w.na = 20;
  w.lines = 20;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  took = t_now_ms() - t0;
  CHECK(took < 900);
  st = t_stats(s[0]);
  CHECK_EQ(st.connects, 1);
  CHECK_EQ(st.tls_unconfirmed + st.tls_failures, 0);
  CHECK(t_file_contains(col.log, "tls TLSv1.2"));

  c2 = tls_cfg(col.port, "ca.pem");
  s[1] = acquire_ok(&loop, &c2);
  enqueue(s[1], 100, 100);
  w.a = s[1];
  w.tls_failures = 2;
  CHECK(t_run_until(&loop, pred_tls_failures, &w, 10000));
  st = t_stats(s[1]);
  CHECK_EQ(st.tls_unconfirmed, 0);
  CHECK_EQ(st.connects, 0);
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(st.batches, 0); /* never had a connection to write on */
  CHECK(t_log_contains("TLS handshake failed: "));
  t_finish(&loop, 100, s, 2);
  t_collector_stop(&col);
  check_ranges(col.out, ranges, 1);
}

/* Client certificate material refused at acquire, each with its reason. */
static void acquire_refused(const char *crt, const char *key, const char *want) {
  uv_loop_t loop;
  kps_sink_config_t c = tls_cfg(1, "ca.pem");
  char *err = NULL;

  CHECK(uv_loop_init(&loop) == 0);
  c.tls_client_cert = cert(crt);
  c.tls_client_key = cert(key);
  CHECK(kps_sink_acquire(&loop, &c, &err) == NULL);
  if (!err || !strstr(err, want)) t_fail(__FILE__, __LINE__, "error \"%s\", expected \"%s\"", err ? err : "", want);
  free(err);
  CHECK(uv_loop_close(&loop) == 0); /* nothing was left open */
}

static void test_tls_client_material(void) {
  char cmd[1400];
  /* the server's key with the client's certificate; an encrypted key */
  acquire_refused("client.pem", "server.key", "does not match tls_client_cert");
  snprintf(cmd, sizeof(cmd), "openssl pkey -in %s -aes256 -passout pass:secret -out %s 2>/dev/null",
           cert("client.key"), cert("client-enc.key"));
  CHECK(system(cmd) == 0);
  acquire_refused("client.pem", "client-enc.key", "no usable PEM private key (encrypted keys are not supported)");
  acquire_refused("client.key", "client.key", "tls_client_cert: cannot load");
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } cases[] = {
      {"tls_good", test_tls_good},
      {"tls_wrong_ca", test_tls_wrong_ca},
      {"tls_name_mismatch", test_tls_name_mismatch},
      {"tls_expired", test_tls_expired},
      {"tls_mtls", test_tls_mtls},
      {"tls_rst", test_tls_rst},
      {"tls_client_material", test_tls_client_material},
      {"tls13_refused", test_tls13_refused},
      {"tls13_refused_wrong_cert", test_tls13_refused_wrong_cert},
      {"tls13_ticket_delay", test_tls13_ticket_delay},
      {"tls13_no_tickets", test_tls13_no_tickets},
      {"tls13_backoff_reset", test_tls13_backoff_reset},
      {"tls12_mtls", test_tls12_mtls},
  };
  size_t i;

  if (argc != 2) {
    fprintf(stderr, "usage: %s CASE\n", argv[0]);
    return 2;
  }
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (strcmp(argv[1], cases[i].name) == 0) {
      t_dir();
      cases[i].fn();
      t_note("%s: ok", argv[1]);
      return 0;
    }
  }
  fprintf(stderr, "unknown case %s\n", argv[1]);
  return 2;
}
