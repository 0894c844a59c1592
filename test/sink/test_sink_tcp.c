/* test_sink_tcp.c: the sink over plain TCP against real kps-collector
 * processes.  One case per process: test-sink-tcp CASE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "sink.h"
#include "sink_test_util.h"

#define BATCH_MAX 256 /* KPS__SINK_BATCH_MAX: duplicates allowed per broken connection */

static kps_sink_config_t cfg_for(int port) {
  kps_sink_config_t cfg;

  memset(&cfg, 0, sizeof(cfg));
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.timeout_ms = 3000;
  cfg.keepalive_ms = 60000;
  cfg.queue_max_bytes = 64u << 20;
  cfg.queue_max_entries = 100000;
  return cfg;
}

static kps_sink_t *acquire_ok(uv_loop_t *loop, const kps_sink_config_t *cfg) {
  char *err = NULL;
  kps_sink_t *s = kps_sink_acquire(loop, cfg, &err);

  if (!s) t_fail(__FILE__, __LINE__, "acquire failed: %s", err ? err : "?");
  CHECK(err == NULL);
  return s;
}

static size_t rec_size(unsigned seq) { return 60 + seq % 97; }

static void enqueue_range(kps_sink_t *s, unsigned from, unsigned to, size_t fixed_size) {
  unsigned i;

  for (i = from; i < to; i++) {
    size_t n = fixed_size ? fixed_size : rec_size(i);
    CHECK_EQ(kps_sink_enqueue(s, t_record(i, n), n), 0);
  }
}

/* The exact bytes of records from..to-1. */
static char *expected_range(unsigned from, unsigned to, size_t fixed_size, size_t *len) {
  size_t cap = 0, n = 0;
  char *buf = NULL;
  unsigned i;

  for (i = from; i < to; i++) cap += fixed_size ? fixed_size : rec_size(i);
  buf = malloc(cap + 1);
  CHECK(buf != NULL);
  for (i = from; i < to; i++) {
    size_t sz = fixed_size ? fixed_size : rec_size(i);
    char *r = t_record(i, sz);
    memcpy(buf + n, r, sz);
    n += sz;
    free(r);
  }
  *len = n;
  return buf;
}

static void check_file_exact(const char *path, unsigned from, unsigned to, size_t fixed_size) {
  size_t got_len, want_len;
  char *got = t_read_file(path, &got_len);
  char *want = expected_range(from, to, fixed_size, &want_len);

  CHECK(got != NULL);
  CHECK_EQ(got_len, want_len);
  CHECK(memcmp(got, want, want_len) == 0);
  free(got);
  free(want);
}

typedef struct wait_s {
  kps_sink_t *sink;
  const t_collector_t *col;
  uint64_t n;
} wait_t;

/* n records acknowledged, queue empty and n lines written by the collector. */
static int pred_delivered(void *ud) {
  wait_t *w = ud;
  kps_sink_stats_t st = t_stats(w->sink);

  return st.records_sent >= w->n && st.queue_depth == 0 && (!w->col || t_collector_count(w->col) >= w->n);
}

static int pred_connect_failed(void *ud) { return t_stats(ud).connect_failures > 0; }
static int pred_disconnected(void *ud) { return !t_stats(ud).connected; }
static int pred_flag(void *ud) { return *(int *)ud != 0; }
static void on_done_flag(void *ud) { *(int *)ud = 1; }

static int pred_log_has(void *ud) {
  const char **a = ud;
  return t_file_contains(a[0], a[1]);
}

/* 1. Order, byte-exactness and batching. */
static void test_order_batching(void) {
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  char name[64];
  size_t total_bytes;
  wait_t w;
  int i;

  t_loop_init(&loop);
  t_collector_start(&col, "a", 0, NULL);
  cfg = cfg_for(col.port);
  s = acquire_ok(&loop, &cfg);
  snprintf(name, sizeof(name), "127.0.0.1:%d", col.port);
  CHECK(strcmp(kps_sink_name(s), name) == 0);
  CHECK_EQ(t_stats(s).connects, 0); /* nothing connects before a record */
  enqueue_range(s, 0, 1000, 0);
  free(expected_range(0, 1000, 0, &total_bytes));
  st = t_stats(s);
  CHECK_EQ(st.queue_depth, 1000);
  CHECK_EQ(st.queue_bytes, total_bytes);

  w.sink = s;
  w.col = &col;
  w.n = 1000;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  check_file_exact(col.out, 0, 1000, 0);
  st = t_stats(s);
  CHECK_EQ(st.records_enqueued, 1000);
  CHECK_EQ(st.records_sent, 1000);
  CHECK_EQ(st.bytes_sent, total_bytes);
  CHECK_EQ(st.records_resent, 0);
  CHECK_EQ(st.queue_depth, 0);
  CHECK_EQ(st.queue_bytes, 0);
  CHECK_EQ(st.connects, 1);
  CHECK_EQ(st.reconnects, 0);
  CHECK_EQ(st.connect_failures + st.write_errors + st.tls_failures, 0);
  for (i = 0; i < KPS_SINK_DROP__COUNT; i++) CHECK_EQ(st.dropped[i], 0);
  CHECK(st.connected);
  CHECK(st.batches >= 1 && st.batches < 1000);
  CHECK(st.batches <= (1000 + BATCH_MAX - 1) / BATCH_MAX + 2);
  t_note("1000 records in %llu writes", (unsigned long long)st.batches);

  t_finish(&loop, 2000, &s, 1);
  t_collector_stop(&col);
  CHECK_EQ(t_collector_count(&col), 1000);
}

/* 2. Collector down at start, up ~1.2 s later. */
static void test_down_at_start(void) {
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  wait_t w;
  int port = t_free_port();

  t_loop_init(&loop);
  cfg = cfg_for(port);
  s = acquire_ok(&loop, &cfg);
  enqueue_range(s, 0, 200, 0);
  CHECK(t_run_until(&loop, pred_connect_failed, s, 5000));
  t_run_for(&loop, 1200); /* staging: the collector comes up later */
  CHECK_EQ(t_stats(s).records_sent, 0);
  t_collector_start(&col, "a", port, NULL);
  w.sink = s;
  w.col = &col;
  w.n = 200;
  CHECK(t_run_until(&loop, pred_delivered, &w, 20000));
  check_file_exact(col.out, 0, 200, 0);
  st = t_stats(s);
  CHECK(st.connect_failures > 0);
  CHECK(st.reconnects >= st.connect_failures);
  CHECK_EQ(st.connects, 1);
  CHECK_EQ(st.records_sent, 200);
  CHECK_EQ(st.records_resent, 0);
  t_note("connect_failures=%llu reconnects=%llu", (unsigned long long)st.connect_failures,
         (unsigned long long)st.reconnects);
  t_finish(&loop, 2000, &s, 1);
  t_collector_stop(&col);
}

/* Feeds records on a timer so the stream is still flowing while the test
 * restarts collectors. */
typedef struct producer_s {
  uv_timer_t timer;
  kps_sink_t *sink;
  unsigned next, total, per_tick;
  size_t size;
} producer_t;

static void on_produce(uv_timer_t *t) {
  producer_t *p = t->data;
  unsigned i;

  for (i = 0; i < p->per_tick && p->next < p->total; i++, p->next++)
    CHECK_EQ(kps_sink_enqueue(p->sink, t_record(p->next, p->size), p->size), 0);
  if (p->next >= p->total) uv_timer_stop(t);
}

static int pred_col_count(void *ud) {
  wait_t *w = ud;
  return t_collector_count(w->col) >= w->n;
}

/* 3. Collector restart mid-stream. */
static void test_collector_restart(void) {
  uv_loop_t loop;
  t_collector_t a, b;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  producer_t prod;
  const char *files[2];
  uint64_t dups;
  wait_t w;

  t_loop_init(&loop);
  t_collector_start(&a, "a", 0, NULL);
  cfg = cfg_for(a.port);
  s = acquire_ok(&loop, &cfg);
  memset(&prod, 0, sizeof(prod));
  prod.sink = s;
  prod.total = 6000;
  prod.per_tick = 40;
  prod.size = 200;
  uv_timer_init(&loop, &prod.timer);
  prod.timer.data = &prod;
  uv_timer_start(&prod.timer, on_produce, 1, 1);

  w.sink = s;
  w.col = &a;
  w.n = 1500;
  CHECK(t_run_until(&loop, pred_col_count, &w, 15000));
  CHECK(prod.next < prod.total); /* really mid-stream */
  t_collector_stop(&a);
  t_note("collector a stopped after %llu lines, %u records produced", (unsigned long long)t_collector_count(&a),
         prod.next);
  t_collector_start(&b, "b", a.port, NULL);

  w.col = NULL;
  w.n = prod.total;
  CHECK(t_run_until(&loop, pred_delivered, &w, 30000));
  CHECK_EQ(prod.next, prod.total);
  uv_close((uv_handle_t *)&prod.timer, NULL);
  t_collector_stop(&b);

  files[0] = a.out;
  files[1] = b.out;
  dups = t_check_delivered(files, 2, prod.total);
  st = t_stats(s);
  CHECK_EQ(st.records_sent, prod.total);
  CHECK(st.connects >= 2);
  CHECK(dups <= (st.connects - 1) * BATCH_MAX);
  CHECK_EQ(t_collector_count(&a) + t_collector_count(&b), prod.total + dups);
  t_note("restart: duplicates=%llu records_resent=%llu connects=%llu", (unsigned long long)dups,
         (unsigned long long)st.records_resent, (unsigned long long)st.connects);
  t_finish(&loop, 2000, &s, 1);
}

/* 3b. Acknowledged is not read: a collector whose listener closes with our
 * connection still in its accept queue (data acknowledged by its kernel,
 * never read) resets it.  The replay window sends those records again. */
static int pred_kernel_acked(void *ud) {
  wait_t *w = ud;
  kps_sink_stats_t st = t_stats(w->sink);

  return st.records_sent >= w->n && st.queue_depth == 0;
}

static void test_reset_after_ack(void) {
  uv_loop_t loop;
  t_collector_t b;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  struct sockaddr_in sa;
  socklen_t salen = sizeof(sa);
  const char *files[1];
  wait_t w;
  int lfd, one = 1;
  const unsigned total = 200;
  const size_t size = 100;

  t_loop_init(&loop);
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(lfd >= 0);
  CHECK(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
  CHECK(listen(lfd, 8) == 0); /* never accepted */
  CHECK(getsockname(lfd, (struct sockaddr *)&sa, &salen) == 0);
  cfg = cfg_for(ntohs(sa.sin_port));
  s = acquire_ok(&loop, &cfg);
  enqueue_range(s, 0, total, size);
  w.sink = s;
  w.col = NULL;
  w.n = total;
  CHECK(t_run_until(&loop, pred_kernel_acked, &w, 10000));
  st = t_stats(s);
  CHECK_EQ(st.records_sent, total);
  CHECK_EQ(st.replay_bytes, total * size); /* all in the window */
  CHECK_EQ(st.records_replayed, 0);

  close(lfd); /* the kernel resets the queued connection: 200 records unread */
  t_collector_start(&b, "b", ntohs(sa.sin_port), NULL);
  w.col = &b;
  CHECK(t_run_until(&loop, pred_delivered, &w, 15000));
  t_collector_stop(&b);
  files[0] = b.out;
  CHECK_EQ(t_check_delivered(files, 1, total), 0);
  check_file_exact(b.out, 0, total, size); /* in order, once each */
  st = t_stats(s);
  CHECK_EQ(st.records_replayed, total);
  CHECK_EQ(st.records_sent, total);
  CHECK_EQ(st.records_enqueued, total);
  CHECK_EQ(st.queue_depth, 0);
  CHECK(st.write_errors >= 1);
  CHECK_EQ(st.connects, 2);
  t_note("reset_after_ack: replayed=%llu resent=%llu", (unsigned long long)st.records_replayed,
         (unsigned long long)st.records_resent);
  t_finish(&loop, 2000, &s, 1);
}

/* 4. The collector resets connections: un-acknowledged records are re-sent. */
static void test_rst(void) {
  static const char *const extra[] = {"--rst-after-lines", "1000", "--rcvbuf", "65536", NULL};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  const char *files[1];
  uint64_t dups;
  wait_t w;
  const unsigned total = 8000;

  t_loop_init(&loop);
  t_collector_start(&col, "a", 0, extra);
  cfg = cfg_for(col.port);
  cfg.timeout_ms = 10000; /* the collector stalls reading before each reset */
  s = acquire_ok(&loop, &cfg);
  enqueue_range(s, 0, total, 1000);
  w.sink = s;
  w.col = NULL;
  w.n = total;
  CHECK(t_run_until(&loop, pred_delivered, &w, 60000));
  t_collector_stop(&col);
  files[0] = col.out;
  dups = t_check_delivered(files, 1, total);
  st = t_stats(s);
  CHECK_EQ(st.records_sent, total);
  CHECK(st.records_resent > 0);
  CHECK(st.connects >= 2);
  CHECK(dups <= (st.connects - 1) * BATCH_MAX);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_QUEUE_BYTES] + st.dropped[KPS_SINK_DROP_QUEUE_ENTRIES], 0);
  t_note("rst: connects=%llu records_resent=%llu duplicates=%llu", (unsigned long long)st.connects,
         (unsigned long long)st.records_resent, (unsigned long long)dups);
  t_finish(&loop, 2000, &s, 1);
}

/* 5. A collector that never reads: caps hold, drops are counted exactly,
 * enqueue never blocks. */
typedef struct flood_s {
  uv_timer_t timer;
  kps_sink_t *sink;
  size_t cap_bytes, cap_entries;
  uint64_t ok, efull, etoobig, other, calls, max_ns, total_ns, ticks;
} flood_t;

static void flood_enqueue(flood_t *f, char *rec, size_t len) {
  uint64_t t0 = uv_hrtime(), dt;
  int rc = kps_sink_enqueue(f->sink, rec, len);
  kps_sink_stats_t st;

  dt = uv_hrtime() - t0;
  f->calls++;
  f->total_ns += dt;
  if (dt > f->max_ns) f->max_ns = dt;
  if (rc == 0)
    f->ok++;
  else if (rc == KPS_SINK_EFULL)
    f->efull++;
  else if (rc == KPS_SINK_ETOOBIG)
    f->etoobig++;
  else
    f->other++;
  st = t_stats(f->sink);
  CHECK(st.queue_bytes <= f->cap_bytes);
  CHECK(st.queue_depth <= f->cap_entries);
}

static void on_flood(uv_timer_t *t) {
  flood_t *f = t->data;
  int i;

  f->ticks++;
  for (i = 0; i < 100; i++) flood_enqueue(f, t_record((unsigned)f->calls, 1000), 1000);
}

static void test_no_read(void) {
  static const char *const extra[] = {"--no-read", NULL};
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st, before;
  flood_t f;
  int i;

  t_loop_init(&loop);
  t_collector_start(&col, "a", 0, extra);
  cfg = cfg_for(col.port);
  cfg.queue_max_bytes = 65536;
  cfg.queue_max_entries = 70;
  cfg.timeout_ms = 30000;
  s = acquire_ok(&loop, &cfg);
  memset(&f, 0, sizeof(f));
  f.sink = s;
  f.cap_bytes = cfg.queue_max_bytes;
  f.cap_entries = cfg.queue_max_entries;

  /* Deterministic part, loop not running: 65 x 1000 bytes fit the byte cap. */
  for (i = 0; i < 300; i++) flood_enqueue(&f, t_record((unsigned)i, 1000), 1000);
  st = t_stats(s);
  CHECK_EQ(f.ok, 65);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_QUEUE_BYTES], 235);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_QUEUE_ENTRIES], 0);
  flood_enqueue(&f, t_record(999999, 70000), 70000); /* larger than the byte cap */
  CHECK_EQ(f.etoobig, 1);
  CHECK_EQ(t_stats(s).dropped[KPS_SINK_DROP_TOO_LARGE], 1);
  for (i = 0; i < 40; i++) flood_enqueue(&f, t_record(5000 + (unsigned)i, 40), 40); /* 5 fit */
  st = t_stats(s);
  CHECK_EQ(st.queue_depth, 70);
  CHECK_EQ(st.queue_bytes, 65 * 1000 + 5 * 40);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_QUEUE_ENTRIES], 35);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_QUEUE_BYTES], 235);
  CHECK_EQ(f.ok, 70);

  /* Flood with the loop running until the collector's buffers are full. */
  uv_timer_init(&loop, &f.timer);
  f.timer.data = &f;
  uv_timer_start(&f.timer, on_flood, 1, 1);
  t_run_for(&loop, 1500);
  uv_timer_stop(&f.timer);
  uv_close((uv_handle_t *)&f.timer, NULL);
  before = t_stats(s);
  t_run_for(&loop, 300);
  st = t_stats(s);
  CHECK_EQ(st.records_sent, before.records_sent); /* stalled: the collector is full */
  CHECK(st.queue_depth > 0);
  CHECK(f.ticks > 10);
  CHECK_EQ(st.records_enqueued, f.ok);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_QUEUE_BYTES] + st.dropped[KPS_SINK_DROP_QUEUE_ENTRIES], f.efull);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_TOO_LARGE], f.etoobig);
  CHECK_EQ(f.other, 0);
  CHECK_EQ(f.ok + f.efull + f.etoobig, f.calls);
  CHECK_EQ(st.records_sent + st.queue_depth, st.records_enqueued);
  CHECK(st.queue_bytes <= cfg.queue_max_bytes && st.queue_depth <= cfg.queue_max_entries);
  CHECK(f.efull > 1000);
  /* Non-blocking: generous bounds that still catch any blocking I/O. */
  CHECK(f.max_ns < 50u * 1000 * 1000);
  CHECK(f.total_ns / f.calls < 100u * 1000);
  t_note("no-read: calls=%llu ok=%llu efull=%llu sent=%llu avg=%lluns max=%lluns", (unsigned long long)f.calls,
         (unsigned long long)f.ok, (unsigned long long)f.efull, (unsigned long long)st.records_sent,
         (unsigned long long)(f.total_ns / f.calls), (unsigned long long)f.max_ns);

  /* Shutdown with a full queue: the rest is dropped at the deadline. */
  {
    int done = 0;
    kps_sink_flush_all(&loop, 200, on_done_flag, &done);
    CHECK(t_run_until(&loop, pred_flag, &done, 10000));
  }
  st = t_stats(s);
  CHECK(st.dropped[KPS_SINK_DROP_SHUTDOWN] > 0);
  CHECK_EQ(st.records_sent + st.dropped[KPS_SINK_DROP_SHUTDOWN], st.records_enqueued);
  CHECK_EQ(st.queue_depth, 0);
  CHECK_EQ(st.queue_bytes, 0);
  kps_sink_release(s);
  t_loop_done(&loop);
  t_collector_stop(&col);
}

/* 7. Keepalive: idle connections close, the next record reconnects. */
static void test_keepalive(void) {
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  const char *log_has[2];
  uint64_t t0, idle;
  wait_t w;

  t_loop_init(&loop);
  t_collector_start(&col, "a", 0, NULL);
  cfg = cfg_for(col.port);
  cfg.keepalive_ms = 400;
  s = acquire_ok(&loop, &cfg);
  enqueue_range(s, 0, 10, 0);
  w.sink = s;
  w.col = NULL;
  w.n = 10;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  t0 = t_now_ms();
  CHECK(t_stats(s).connected);
  CHECK(t_run_until(&loop, pred_disconnected, s, 10000));
  idle = t_now_ms() - t0;
  CHECK(idle >= 300); /* stayed open while idle for about keepalive_ms */
  log_has[0] = col.log;
  log_has[1] = "closed: eof (10 lines)";
  CHECK(t_run_until(&loop, pred_log_has, (void *)log_has, 10000)); /* the collector saw EOF */
  st = t_stats(s);
  CHECK_EQ(st.connects, 1);
  CHECK_EQ(st.connect_failures + st.write_errors, 0);

  enqueue_range(s, 10, 11, 0);
  w.col = &col;
  w.n = 11;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  check_file_exact(col.out, 0, 11, 0);
  st = t_stats(s);
  CHECK_EQ(st.connects, 2);
  CHECK_EQ(st.reconnects, 1);
  CHECK_EQ(st.records_resent, 0);
  t_note("keepalive: closed after %llu ms idle, reconnected", (unsigned long long)idle);
  t_finish(&loop, 2000, &s, 1);
  t_collector_stop(&col);
}

/* 8. flush_all: delivers before done_cb when it can, drops at the deadline
 * when it cannot. */
static void test_flush_all(void) {
  uv_loop_t loop;
  t_collector_t col;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  uint64_t t0, took;
  wait_t w;
  int done = 0;

  /* Collector up: everything is acknowledged before done_cb. */
  t_loop_init(&loop);
  t_collector_start(&col, "a", 0, NULL);
  cfg = cfg_for(col.port);
  s = acquire_ok(&loop, &cfg);
  enqueue_range(s, 0, 500, 0);
  kps_sink_flush_all(&loop, 10000, on_done_flag, &done);
  CHECK(t_run_until(&loop, pred_flag, &done, 20000));
  st = t_stats(s);
  CHECK_EQ(st.records_sent, 500);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_SHUTDOWN], 0);
  CHECK_EQ(st.queue_depth, 0);
  CHECK(!st.connected);
  CHECK(!uv_loop_alive(&loop)); /* every sink handle is closed after done_cb */
  CHECK_EQ(kps_sink_enqueue(s, t_record(1, 60), 60), KPS_SINK_ECLOSED);
  CHECK_EQ(t_stats(s).dropped[KPS_SINK_DROP_SHUTDOWN], 1);
  kps_sink_release(s);
  w.sink = NULL;
  w.col = &col;
  w.n = 500;
  CHECK(t_run_until(&loop, pred_col_count, &w, 10000));
  check_file_exact(col.out, 0, 500, 0);
  t_loop_done(&loop);
  t_collector_stop(&col);

  /* Collector down: done_cb at the deadline, the rest dropped. */
  t_loop_init(&loop);
  cfg = cfg_for(t_free_port());
  s = acquire_ok(&loop, &cfg);
  enqueue_range(s, 0, 100, 0);
  done = 0;
  t0 = t_now_ms();
  kps_sink_flush_all(&loop, 500, on_done_flag, &done);
  CHECK(t_run_until(&loop, pred_flag, &done, 10000));
  took = t_now_ms() - t0;
  CHECK(took >= 450 && took < 3000);
  st = t_stats(s);
  CHECK_EQ(st.records_sent, 0);
  CHECK_EQ(st.dropped[KPS_SINK_DROP_SHUTDOWN], 100);
  CHECK_EQ(st.queue_depth, 0);
  CHECK(st.connect_failures > 0);
  kps_sink_release(s);
  t_note("flush: deadline flush took %llu ms", (unsigned long long)took);

  /* No sinks at all: done_cb still runs, asynchronously. */
  done = 0;
  kps_sink_flush_all(&loop, 500, on_done_flag, &done);
  CHECK(!done);
  CHECK(t_run_until(&loop, pred_flag, &done, 5000));
  t_loop_done(&loop);
}

/* 9. Registry and refcounting; acquire errors name the field. */
static void count_sink(kps_sink_t *s, void *ud) { (*(int *)ud)++; }

static int count_sinks(void) {
  int n = 0;
  kps_sink_foreach(count_sink, &n);
  return n;
}

static void expect_acquire_error(uv_loop_t *loop, const kps_sink_config_t *cfg, const char *want) {
  char *err = NULL;
  kps_sink_t *s = kps_sink_acquire(loop, cfg, &err);

  CHECK(s == NULL);
  CHECK(err != NULL);
  if (strncmp(err, want, strlen(want)) != 0)
    t_fail(__FILE__, __LINE__, "error \"%s\" does not start with \"%s\"", err, want);
  free(err);
}

static void test_registry(void) {
  uv_loop_t loop;
  kps_sink_config_t cfg, other;
  kps_sink_t *a, *b, *c, *d;
  char path[600], want[700];
  FILE *f;

  t_loop_init(&loop);
  cfg = cfg_for(1);
  a = acquire_ok(&loop, &cfg);
  other = cfg;
  other.queue_max_entries = 7; /* caps are not part of the endpoint */
  other.keepalive_ms = 5;
  b = acquire_ok(&loop, &other);
  CHECK(a == b);
  other = cfg;
  other.port = 2;
  c = acquire_ok(&loop, &other);
  CHECK(c != a);
  other = cfg;
  other.tls = 1;
  d = acquire_ok(&loop, &other);
  CHECK(d != a && d != c);
  CHECK(strcmp(kps_sink_name(d), "tls://127.0.0.1:1") == 0);
  CHECK_EQ(count_sinks(), 3);
  /* The newest caps apply to the shared sink. */
  CHECK_EQ(kps_sink_enqueue(a, t_record(1, 60), 60), 0);
  kps_sink_release(a);
  CHECK_EQ(count_sinks(), 3);
  kps_sink_release(b); /* refcount 0 with a record queued: keeps running */
  CHECK_EQ(count_sinks(), 3);
  kps_sink_release(c); /* refcount 0, empty: closes and frees itself */
  CHECK_EQ(count_sinks(), 2);
  kps_sink_release(d);
  CHECK_EQ(count_sinks(), 1);
  /* Re-acquiring the draining sink revives it. */
  b = acquire_ok(&loop, &cfg);
  CHECK(b == a);
  CHECK_EQ(t_stats(b).queue_depth, 1);

  /* Errors name the field. */
  other = cfg;
  other.port = 0;
  expect_acquire_error(&loop, &other, "port: ");
  other = cfg;
  other.host = "";
  expect_acquire_error(&loop, &other, "host: ");
  other = cfg;
  other.queue_max_bytes = 0;
  expect_acquire_error(&loop, &other, "queue_max_bytes: ");
  other = cfg;
  other.tls = 1;
  other.tls_verify = 1;
  other.tls_ca_file = "/nonexistent/kps/ca.pem";
  expect_acquire_error(&loop, &other, "tls_ca_file: cannot read /nonexistent/kps/ca.pem: No such file or directory");
  snprintf(path, sizeof(path), "%s", t_path("garbage.pem"));
  f = fopen(path, "w");
  CHECK(f != NULL);
  fputs("this is not a certificate\n", f);
  fclose(f);
  other.tls_ca_file = path;
  snprintf(want, sizeof(want), "tls_ca_file: cannot load %s: ", path);
  expect_acquire_error(&loop, &other, want);
  other.tls_ca_file = NULL;
  other.tls_client_cert = "/nonexistent/kps/client.pem";
  other.tls_client_key = "/nonexistent/kps/client.key";
  expect_acquire_error(&loop, &other, "tls_client_cert: cannot read /nonexistent/kps/client.pem: ");
  other.tls_client_cert = path;
  expect_acquire_error(&loop, &other, "tls_client_cert: cannot load ");
  other.tls_client_key = NULL;
  expect_acquire_error(&loop, &other, "tls_client_key: required together with tls_client_cert");
  CHECK_EQ(count_sinks(), 1);

  t_finish(&loop, 100, &b, 1); /* nothing listens on port 1: dropped at the deadline */
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } cases[] = {
      {"order_batching", test_order_batching},
      {"down_at_start", test_down_at_start},
      {"collector_restart", test_collector_restart},
      {"reset_after_ack", test_reset_after_ack},
      {"rst", test_rst},
      {"no_read", test_no_read},
      {"keepalive", test_keepalive},
      {"flush_all", test_flush_all},
      {"registry", test_registry},
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
