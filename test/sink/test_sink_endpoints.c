/* test_sink_endpoints.c: a sink with several collector endpoints (failover,
 * round robin), a host name with several addresses, the endpoint syntax and
 * the registry's sharing rule, against real kps-collector processes.  One
 * case per process: test-sink-endpoints CASE. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "sink.h"
#include "sink_test_util.h"

#define SKIPPED 77 /* ctest SKIP_RETURN_CODE: reported as skipped, never as passed */

static kps_sink_config_t cfg_eps(const kps_sink_endpoint_t *eps, size_t n, kps_sink_balance_t balance) {
  kps_sink_config_t cfg;

  memset(&cfg, 0, sizeof(cfg));
  cfg.endpoints = eps;
  cfg.nendpoints = n;
  cfg.balance = balance;
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

static void expect_acquire_error(uv_loop_t *loop, const kps_sink_config_t *cfg, const char *want) {
  char *err = NULL;
  kps_sink_t *s = kps_sink_acquire(loop, cfg, &err);

  CHECK(s == NULL);
  CHECK(err != NULL);
  if (strcmp(err, want) != 0) t_fail(__FILE__, __LINE__, "error \"%s\", expected \"%s\"", err, want);
  free(err);
}

static void enqueue_range(kps_sink_t *s, unsigned from, unsigned to, size_t size) {
  unsigned i;

  for (i = from; i < to; i++) CHECK_EQ(kps_sink_enqueue(s, t_record(i, size), size), 0);
}

/* Seqs in the file, in order, are strictly increasing: one collector sees
 * the records it got in queue order.  Returns the line count. */
static unsigned check_increasing(const char *path) {
  size_t len;
  char *buf = t_read_file(path, &len), *p = buf, *end = buf + len;
  long last = -1;
  unsigned n = 0;

  while (buf && p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    long seq;
    CHECK(nl != NULL);
    seq = t_record_seq(p, (size_t)(nl + 1 - p));
    CHECK(seq >= 0);
    if (seq <= last) t_fail(__FILE__, __LINE__, "%s: record %ld after %ld", path, seq, last);
    last = seq;
    n++;
    p = nl + 1;
  }
  free(buf);
  return n;
}

typedef struct wait_s {
  kps_sink_t *sink;
  const t_collector_t *col;
  uint64_t n;
  size_t ep;
} wait_t;

static int pred_delivered(void *ud) {
  wait_t *w = ud;
  kps_sink_stats_t st = t_stats(w->sink);

  return st.records_sent >= w->n && st.queue_depth == 0;
}

static int pred_col_count(void *ud) {
  wait_t *w = ud;
  return t_collector_count(w->col) >= w->n;
}

static int pred_ep_disconnected(void *ud) {
  wait_t *w = ud;
  return !t_ep_stats(w->sink, w->ep).connected;
}

static int pred_two_connected(void *ud) {
  kps_sink_t *s = ud;
  return t_ep_stats(s, 0).connected && t_ep_stats(s, 2).connected;
}

static int pred_ep_healthy(void *ud) {
  wait_t *w = ud;
  return t_ep_stats(w->sink, w->ep).healthy;
}

static int pred_ep_connect_failed(void *ud) {
  wait_t *w = ud;
  return t_ep_stats(w->sink, w->ep).connect_failures >= w->n;
}

/* Feeds records on a timer until told to stop, so the stream is still
 * flowing while the test stops and starts collectors. */
typedef struct producer_s {
  uv_timer_t timer;
  kps_sink_t *sink;
  unsigned next, per_tick;
  size_t size;
} producer_t;

static void on_produce(uv_timer_t *t) {
  producer_t *p = t->data;
  unsigned i;

  for (i = 0; i < p->per_tick; i++, p->next++) CHECK_EQ(kps_sink_enqueue(p->sink, t_record(p->next, p->size), p->size), 0);
}

static void producer_start(uv_loop_t *loop, producer_t *p, kps_sink_t *s) {
  memset(p, 0, sizeof(*p));
  p->sink = s;
  p->per_tick = 10;
  p->size = 200;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, on_produce, 2, 2);
}

static void producer_stop(producer_t *p) {
  uv_timer_stop(&p->timer);
  uv_close((uv_handle_t *)&p->timer, NULL);
}

/* ---- endpoint syntax ---------------------------------------------------------- */

static void parse_ok(const char *in, const char *want_host, int want_port) {
  char host[300];
  int port = -1;
  char *err = (char *)"untouched";

  if (kps_sink_parse_endpoint(in, host, sizeof(host), &port, &err) != 0)
    t_fail(__FILE__, __LINE__, "\"%s\" refused: %s", in, err ? err : "?");
  CHECK(err == NULL);
  if (strcmp(host, want_host) != 0) t_fail(__FILE__, __LINE__, "\"%s\": host \"%s\", expected \"%s\"", in, host, want_host);
  CHECK_EQ(port, want_port);
}

static void parse_bad(const char *in, size_t hostcap, const char *want) {
  char host[300];
  int port = -1;
  char *err = NULL;

  CHECK(hostcap <= sizeof(host));
  if (kps_sink_parse_endpoint(in, host, hostcap, &port, &err) != -1)
    t_fail(__FILE__, __LINE__, "\"%s\" accepted as %s:%d", in ? in : "(null)", host, port);
  CHECK(err != NULL);
  if (strcmp(err, want) != 0) t_fail(__FILE__, __LINE__, "error \"%s\", expected \"%s\"", err, want);
  CHECK_EQ(port, -1);
  free(err);
}

static void test_parse_endpoint(void) {
  char longhost[300], in[400], want[700];
  int port = 0;

  parse_ok("logs.example.com:5170", "logs.example.com", 5170);
  parse_ok("10.0.0.7:514", "10.0.0.7", 514);
  parse_ok("[::1]:6514", "::1", 6514);
  parse_ok("[2001:db8::7]:1", "2001:db8::7", 1);
  parse_ok("[fe80::1%eth0]:514", "fe80::1%eth0", 514);
  parse_ok("a:65535", "a", 65535);
  parse_ok("h:00080", "h", 80);
  memset(longhost, 'h', 255);
  longhost[255] = 0;
  snprintf(in, sizeof(in), "%s:9", longhost);
  parse_ok(in, longhost, 9);

  parse_bad("", 300, "hosts entry \"\": expected host:port");
  parse_bad(NULL, 300, "hosts entry \"\": expected host:port");
  parse_bad("logs.example.com", 300, "hosts entry \"logs.example.com\": expected host:port");
  parse_bad(":514", 300, "hosts entry \":514\": the host is empty");
  parse_bad("[]:514", 300, "hosts entry \"[]:514\": the host is empty");
  parse_bad("h:", 300, "hosts entry \"h:\": the port must be a number 1..65535");
  parse_bad("h:0", 300, "hosts entry \"h:0\": the port must be a number 1..65535");
  parse_bad("h:65536", 300, "hosts entry \"h:65536\": the port must be a number 1..65535");
  parse_bad("h:1000000", 300, "hosts entry \"h:1000000\": the port must be a number 1..65535");
  parse_bad("h:+80", 300, "hosts entry \"h:+80\": the port must be a number 1..65535");
  parse_bad("h:-1", 300, "hosts entry \"h:-1\": the port must be a number 1..65535");
  parse_bad("h:80 ", 300, "hosts entry \"h:80 \": the port must be a number 1..65535");
  parse_bad("h:8o", 300, "hosts entry \"h:8o\": the port must be a number 1..65535");
  parse_bad("::1:514", 300, "hosts entry \"::1:514\": an IPv6 address needs brackets, as in [::1]:514");
  parse_bad("[::1]514", 300, "hosts entry \"[::1]514\": expected [IPv6 address]:port");
  parse_bad("[::1:514", 300, "hosts entry \"[::1:514\": expected [IPv6 address]:port");
  parse_bad("[example.com]:514", 300,
            "hosts entry \"[example.com]:514\": the address in brackets is not an IPv6 address");
  parse_bad("my host:514", 300,
            "hosts entry \"my host:514\": the host contains a space, a control character or a bracket");
  parse_bad("h\tx:514", 300, "hosts entry \"h?x:514\": the host contains a space, a control character or a bracket");
  parse_bad("a]b:514", 300, "hosts entry \"a]b:514\": the host contains a space, a control character or a bracket");
  parse_bad("abcd:514", 4, "hosts entry \"abcd:514\": the host does not fit 3 bytes");
  memset(longhost, 'h', 256);
  longhost[256] = 0;
  snprintf(in, sizeof(in), "%s:9", longhost);
  snprintf(want, sizeof(want), "hosts entry \"%s\": the host is longer than 255 bytes", in);
  parse_bad(in, 300, want);
  CHECK_EQ(kps_sink_parse_endpoint("h:1", longhost, sizeof(longhost), &port, NULL), 0); /* err may be NULL */
  CHECK_EQ(kps_sink_parse_endpoint("h", longhost, sizeof(longhost), &port, NULL), -1);
  CHECK_EQ(port, 1);
}

/* ---- registry ------------------------------------------------------------------ */

static void count_sink(kps_sink_t *s, void *ud) { (*(int *)ud)++; }

static int count_sinks(void) {
  int n = 0;
  kps_sink_foreach(count_sink, &n);
  return n;
}

static void test_registry(void) {
  static char hosts[KPS_SINK_ENDPOINTS_MAX + 1][64];
  kps_sink_endpoint_t ab[2] = {{"127.0.0.1", 1}, {"127.0.0.1", 2}}, ba[2] = {{"127.0.0.1", 2}, {"127.0.0.1", 1}};
  kps_sink_endpoint_t one[1] = {{"127.0.0.1", 1}}, v6[2] = {{"::1", 5}, {"localhost", 6}};
  kps_sink_endpoint_t many[KPS_SINK_ENDPOINTS_MAX + 1], bad[2];
  kps_sink_config_t cfg, other;
  kps_sink_t *s[8];
  kps_sink_endpoint_stats_t es;
  const char *name;
  uv_loop_t loop;
  size_t i;
  int k = 0;

  {
    t_loop_init(&loop);
    /* The shorthand and a one-entry list are the same endpoint; with one
     * endpoint the balance is not compared. */
    cfg = cfg_eps(NULL, 0, KPS_SINK_FAILOVER);
    cfg.host = "127.0.0.1";
    cfg.port = 1;
    s[k++] = acquire_ok(&loop, &cfg);
    other = cfg_eps(one, 1, KPS_SINK_ROUND_ROBIN);
    s[k++] = acquire_ok(&loop, &other);
    CHECK(s[1] == s[0]);
    CHECK(strcmp(kps_sink_name(s[0]), "127.0.0.1:1") == 0);
    CHECK_EQ(kps_sink_endpoint_count(s[0]), 1);

    /* Same list and balance: shared.  Other order or balance: another sink. */
    cfg = cfg_eps(ab, 2, KPS_SINK_FAILOVER);
    s[k++] = acquire_ok(&loop, &cfg);
    s[k++] = acquire_ok(&loop, &cfg);
    CHECK(s[2] == s[3] && s[2] != s[0]);
    CHECK(strcmp(kps_sink_name(s[2]), "127.0.0.1:1,127.0.0.1:2") == 0);
    CHECK_EQ(kps_sink_endpoint_count(s[2]), 2);
    es = t_ep_stats(s[2], 1);
    CHECK(strcmp(es.name, "127.0.0.1:2") == 0);
    CHECK(es.healthy && !es.connected);
    CHECK_EQ(es.backoff_ms + es.connects + es.records_sent + es.connect_failures + es.tls_unconfirmed, 0);
    es = t_ep_stats(s[2], 2); /* out of range */
    CHECK(strcmp(es.name, "") == 0);
    CHECK_EQ(es.connects, 0);
    other = cfg_eps(ba, 2, KPS_SINK_FAILOVER);
    s[k++] = acquire_ok(&loop, &other);
    CHECK(s[4] != s[2]);
    CHECK(strcmp(kps_sink_name(s[4]), "127.0.0.1:2,127.0.0.1:1") == 0);
    other = cfg_eps(ab, 2, KPS_SINK_ROUND_ROBIN);
    s[k++] = acquire_ok(&loop, &other);
    CHECK(s[5] != s[2] && s[5] != s[4]);
    other = cfg_eps(v6, 2, KPS_SINK_FAILOVER);
    other.tls = 1;
    s[k++] = acquire_ok(&loop, &other);
    CHECK(strcmp(kps_sink_name(s[6]), "tls://[::1]:5,localhost:6") == 0);
    CHECK(strcmp(t_ep_stats(s[6], 0).name, "[::1]:5") == 0);
    CHECK_EQ(count_sinks(), 5);

    /* 32 long names: the sink name is cut after the last whole one that fits. */
    for (i = 0; i < KPS_SINK_ENDPOINTS_MAX + 1; i++) {
      snprintf(hosts[i], sizeof(hosts[i]), "collector-%02zu.logs.internal.example.com", i);
      many[i].host = hosts[i];
      many[i].port = 6000 + (int)i;
    }
    other = cfg_eps(many, KPS_SINK_ENDPOINTS_MAX, KPS_SINK_FAILOVER);
    s[k++] = acquire_ok(&loop, &other);
    name = kps_sink_name(s[7]);
    CHECK(strncmp(name, "collector-00.logs.internal.example.com:6000,collector-01.", 57) == 0);
    CHECK(strlen(name) < 320 && strlen(name) > 250);
    CHECK(strcmp(name + strlen(name) - 4, ",...") == 0);
    CHECK(strstr(name, "collector-31") == NULL);
    CHECK_EQ(kps_sink_endpoint_count(s[7]), 32);
    CHECK(strcmp(t_ep_stats(s[7], 31).name, "collector-31.logs.internal.example.com:6031") == 0);
    t_note("cut name: %s", name);

    /* Errors name the field (and the entry). */
    other = cfg_eps(many, KPS_SINK_ENDPOINTS_MAX + 1, KPS_SINK_FAILOVER);
    expect_acquire_error(&loop, &other, "hosts: at most 32 collectors, got 33");
    bad[0] = ab[0];
    bad[1].host = "127.0.0.1";
    bad[1].port = 0;
    other = cfg_eps(bad, 2, KPS_SINK_FAILOVER);
    expect_acquire_error(&loop, &other, "hosts[1]: the port must be 1..65535, got 0");
    bad[1].host = "";
    bad[1].port = 1;
    expect_acquire_error(&loop, &other, "hosts[1]: the host must be a name or address of 1..255 bytes");
    other = cfg_eps(NULL, 2, KPS_SINK_FAILOVER);
    expect_acquire_error(&loop, &other, "hosts: missing the list of 2 collectors");
    other = cfg_eps(ab, 2, (kps_sink_balance_t)7);
    expect_acquire_error(&loop, &other, "balance: must be failover or round_robin");
    other = cfg_eps(ab, 2, KPS_SINK_FAILOVER);
    other.tls = 1;
    other.tls_ca_file = "/nonexistent/kps/ca.pem";
    expect_acquire_error(&loop, &other, "tls_ca_file: cannot read /nonexistent/kps/ca.pem: No such file or directory");
    CHECK_EQ(count_sinks(), 6);

    for (i = 0; i < (size_t)k; i++) kps_sink_release(s[i]);
    CHECK_EQ(count_sinks(), 0);
    t_loop_done(&loop);
  }
}

/* ---- failover ------------------------------------------------------------------ */

/* Records reach the first collector; it stops mid-stream; the rest and what
 * was in flight reach the second; the first comes back and takes the
 * traffic back after its backoff; the second then idles out. */
static void test_failover(void) {
  uv_loop_t loop;
  t_collector_t a, b, a2;
  kps_sink_endpoint_t eps[2];
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  kps_sink_endpoint_stats_t e0, e1;
  producer_t prod;
  const char *files[3];
  uint64_t dups, b_at_switch;
  wait_t w;

  t_capture_log();
  t_loop_init(&loop);
  t_collector_start(&a, "a", 0, NULL);
  t_collector_start(&b, "b", 0, NULL);
  eps[0].host = "127.0.0.1";
  eps[0].port = a.port;
  eps[1].host = "127.0.0.1";
  eps[1].port = b.port;
  cfg = cfg_eps(eps, 2, KPS_SINK_FAILOVER);
  cfg.keepalive_ms = 500;
  s = acquire_ok(&loop, &cfg);
  producer_start(&loop, &prod, s);

  memset(&w, 0, sizeof(w));
  w.sink = s;
  w.col = &a;
  w.n = 1500;
  CHECK(t_run_until(&loop, pred_col_count, &w, 20000));
  CHECK_EQ(t_collector_count(&b), 0); /* the second one is only a standby */
  CHECK_EQ(t_ep_stats(s, 1).connects, 0);
  CHECK(t_ep_stats(s, 0).connected);

  t_collector_stop(&a); /* records in flight on its connection */
  t_note("a stopped after %llu lines, %u produced", (unsigned long long)t_collector_count(&a), prod.next);
  w.col = &b;
  w.n = 1000;
  CHECK(t_run_until(&loop, pred_col_count, &w, 20000));
  e0 = t_ep_stats(s, 0);
  e1 = t_ep_stats(s, 1);
  CHECK(!e0.connected);
  CHECK(e1.connected);
  CHECK_EQ(e1.connects, 1);

  /* The first one comes back on its port: probed after its backoff. */
  t_collector_start(&a2, "a2", a.port, NULL);
  w.col = &a2;
  w.n = 500;
  CHECK(t_run_until(&loop, pred_col_count, &w, 40000));
  b_at_switch = t_collector_count(&b);
  producer_stop(&prod);
  t_note("traffic back on a after %llu lines on b, %u produced", (unsigned long long)b_at_switch, prod.next);

  w.n = prod.next;
  CHECK(t_run_until(&loop, pred_delivered, &w, 30000));
  /* The second connection carries nothing now and closes after keepalive. */
  w.ep = 1;
  CHECK(t_run_until(&loop, pred_ep_disconnected, &w, 10000));
  CHECK(t_ep_stats(s, 0).connected);
  t_collector_stop(&a2);
  t_collector_stop(&b);

  files[0] = a.out;
  files[1] = b.out;
  files[2] = a2.out;
  dups = t_check_delivered(files, 3, prod.next);
  st = t_stats(s);
  e0 = t_ep_stats(s, 0);
  e1 = t_ep_stats(s, 1);
  CHECK_EQ(st.records_sent, prod.next);
  CHECK_EQ(st.records_enqueued, prod.next);
  CHECK_EQ(e0.records_sent + e1.records_sent, prod.next);
  CHECK_EQ(e0.connects, 2);
  CHECK_EQ(e1.connects, 1);
  CHECK_EQ(st.connects, 3);
  CHECK(dups <= st.records_resent); /* only a record written twice can arrive twice */
  CHECK_EQ(t_collector_count(&a) + t_collector_count(&b) + t_collector_count(&a2), prod.next + dups);
  CHECK_EQ(e1.connect_failures + e1.write_errors + e1.tls_failures, 0);
  CHECK(t_collector_count(&b) - b_at_switch <= 256); /* at most the batch in flight at the switch */
  CHECK(t_log_contains("sink 127.0.0.1:"));
  t_note("failover: dups=%llu resent=%llu ep0 sent=%llu ep1 sent=%llu", (unsigned long long)dups,
         (unsigned long long)st.records_resent, (unsigned long long)e0.records_sent,
         (unsigned long long)e1.records_sent);
  t_finish(&loop, 2000, &s, 1);
}

/* The first endpoint is dead from the start: everything goes to the second,
 * in order, and the first is only retried after its backoff. */
static void test_failover_dead_first(void) {
  uv_loop_t loop;
  t_collector_t b;
  kps_sink_endpoint_t eps[2];
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_endpoint_stats_t e0, e1;
  char name[64];
  uint64_t f1;
  wait_t w;
  int dead = t_free_port();

  t_loop_init(&loop);
  t_collector_start(&b, "b", 0, NULL);
  eps[0].host = "127.0.0.1";
  eps[0].port = dead;
  eps[1].host = "127.0.0.1";
  eps[1].port = b.port;
  cfg = cfg_eps(eps, 2, KPS_SINK_FAILOVER);
  s = acquire_ok(&loop, &cfg);
  snprintf(name, sizeof(name), "127.0.0.1:%d,127.0.0.1:%d", dead, b.port);
  CHECK(strcmp(kps_sink_name(s), name) == 0);
  enqueue_range(s, 0, 100, 100);
  memset(&w, 0, sizeof(w));
  w.sink = s;
  w.n = 100;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  w.col = &b;
  CHECK(t_run_until(&loop, pred_col_count, &w, 10000));
  e0 = t_ep_stats(s, 0);
  e1 = t_ep_stats(s, 1);
  /* One attempt, then its backoff while the second carries (a second probe
   * only if delivering took longer than that first backoff). */
  CHECK(e0.connect_failures >= 1 && e0.connect_failures <= 2);
  CHECK_EQ(e0.connects, 0);
  CHECK_EQ(e0.records_sent, 0);
  CHECK_EQ(e1.connects, 1);
  CHECK_EQ(e1.records_sent, 100);
  CHECK_EQ(e1.bytes_sent, 100 * 100);
  CHECK_EQ(check_increasing(b.out), 100);

  /* Once its backoff is over, the next record probes the first endpoint
   * again (refused) while the second carries it; the backoff grows:
   * failure k waits [50, 100] * 2^(k-1) ms. */
  w.ep = 0;
  CHECK(t_run_until(&loop, pred_ep_healthy, &w, 10000));
  f1 = t_ep_stats(s, 0).connect_failures;
  enqueue_range(s, 100, 101, 100);
  w.n = f1 + 1;
  CHECK(t_run_until(&loop, pred_ep_connect_failed, &w, 10000));
  e0 = t_ep_stats(s, 0);
  CHECK(!e0.healthy);
  CHECK_EQ(e0.connect_failures, f1 + 1);
  CHECK(e0.backoff_ms >= (50u << f1) && e0.backoff_ms <= (100u << f1));
  w.n = 101;
  CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
  CHECK_EQ(t_ep_stats(s, 1).records_sent, 101);
  t_finish(&loop, 2000, &s, 1);
  t_collector_stop(&b);
  CHECK_EQ(t_collector_count(&b), 101);
}

/* ---- round robin ----------------------------------------------------------------- */

static void test_round_robin(void) {
  uv_loop_t loop;
  t_collector_t a, b;
  kps_sink_endpoint_t eps[3];
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_stats_t st;
  kps_sink_endpoint_stats_t e[3];
  const char *files[2];
  unsigned burst, na, nb;
  wait_t w;
  const unsigned bursts = 20, per = 10;

  t_loop_init(&loop);
  t_collector_start(&a, "a", 0, NULL);
  t_collector_start(&b, "b", 0, NULL);
  eps[0].host = "127.0.0.1";
  eps[0].port = a.port;
  eps[1].host = "127.0.0.1";
  eps[1].port = t_free_port(); /* dead: skipped while in backoff */
  eps[2].host = "127.0.0.1";
  eps[2].port = b.port;
  cfg = cfg_eps(eps, 3, KPS_SINK_ROUND_ROBIN);
  s = acquire_ok(&loop, &cfg);
  memset(&w, 0, sizeof(w));
  w.sink = s;
  for (burst = 0; burst < bursts; burst++) {
    enqueue_range(s, burst * per, (burst + 1) * per, 120);
    w.n = (burst + 1) * per;
    CHECK(t_run_until(&loop, pred_delivered, &w, 10000));
    /* The first burst connects every endpoint; the first one up takes it. */
    if (burst == 0) CHECK(t_run_until(&loop, pred_two_connected, s, 10000));
  }
  t_collector_stop(&a);
  t_collector_stop(&b);
  files[0] = a.out;
  files[1] = b.out;
  CHECK_EQ(t_check_delivered(files, 2, bursts * per), 0);
  na = check_increasing(a.out);
  nb = check_increasing(b.out);
  CHECK_EQ(na + nb, bursts * per);
  /* Then the batches alternate, skipping the dead one: 10 or 9 of the other
   * 19 bursts each. */
  CHECK(na >= 9 * per && nb >= 9 * per);
  st = t_stats(s);
  e[0] = t_ep_stats(s, 0);
  e[1] = t_ep_stats(s, 1);
  e[2] = t_ep_stats(s, 2);
  CHECK_EQ(st.records_sent, bursts * per);
  CHECK_EQ(e[0].records_sent, na);
  CHECK_EQ(e[2].records_sent, nb);
  CHECK_EQ(e[1].records_sent, 0);
  CHECK_EQ(e[1].connects, 0);
  CHECK(e[1].connect_failures >= 1);
  CHECK_EQ(e[0].connects, 1);
  CHECK_EQ(e[2].connects, 1);
  CHECK_EQ(st.records_resent, 0);
  CHECK(st.batches >= bursts);
  t_note("round robin: a=%u b=%u batches=%llu dead endpoint failures=%llu", na, nb, (unsigned long long)st.batches,
         (unsigned long long)e[1].connect_failures);
  t_finish(&loop, 500, &s, 1);
}

/* ---- one name, several addresses ---------------------------------------------------- */

/* Up to two distinct addresses name resolves to, in getaddrinfo's order
 * (the sink's hints).  Returns how many. */
static int resolve_two(const char *name, char addr[2][INET6_ADDRSTRLEN]) {
  struct addrinfo hints, *res = NULL, *ai;
  int n = 0;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  if (getaddrinfo(name, "1", &hints, &res) != 0) return 0;
  for (ai = res; ai && n < 2; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN];
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, sizeof(buf), NULL, 0, NI_NUMERICHOST) != 0) continue;
    if (n == 1 && strcmp(buf, addr[0]) == 0) continue;
    snprintf(addr[n++], INET6_ADDRSTRLEN, "%s", buf);
  }
  freeaddrinfo(res);
  return n;
}

/* Binds addr:port and closes again: 1 if that address can be listened on. */
static int can_bind(const char *addr, int port) {
  struct sockaddr_storage ss;
  socklen_t sl;
  int fd, ok = 0, one = 1;

  memset(&ss, 0, sizeof(ss));
  if (strchr(addr, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) return 0;
    sl = sizeof(*s6);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1) return 0;
    sl = sizeof(*s4);
  }
  fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  ok = bind(fd, (struct sockaddr *)&ss, sl) == 0;
  close(fd);
  return ok;
}

/* A name with two loopback addresses: "localhost" when it has two (127.0.0.1
 * and ::1 on many machines); otherwise, in a private mount namespace (root
 * only), a hosts file naming kps-multi.test 127.0.0.1 and 127.0.0.2.
 * Returns the name, or NULL when neither is possible here. */
static const char *two_address_name(char addr[2][INET6_ADDRSTRLEN]) {
  char hosts[600];
  FILE *f;

  if (resolve_two("localhost", addr) == 2) return "localhost";
  if (unshare(CLONE_NEWNS) != 0) {
    t_note("localhost has one address and unshare(CLONE_NEWNS) failed: %s", strerror(errno));
    return NULL;
  }
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    t_note("cannot make / private: %s", strerror(errno));
    return NULL;
  }
  snprintf(hosts, sizeof(hosts), "%s", t_path("hosts"));
  f = fopen(hosts, "w");
  CHECK(f != NULL);
  fputs("127.0.0.1 localhost\n127.0.0.1 kps-multi.test\n127.0.0.2 kps-multi.test\n", f);
  CHECK(fclose(f) == 0);
  if (mount(hosts, "/etc/hosts", NULL, MS_BIND, NULL) != 0) {
    t_note("cannot bind-mount a hosts file: %s", strerror(errno));
    return NULL;
  }
  if (resolve_two("kps-multi.test", addr) != 2) {
    t_note("kps-multi.test does not resolve to two addresses");
    return NULL;
  }
  return "kps-multi.test";
}

/* The first address accepts connections and resets them at once. */
typedef struct resetter_s {
  uv_tcp_t server;
  unsigned accepts;
} resetter_t;

static void on_reset_closed(uv_handle_t *h) { free(h); }

static void on_reset_conn(uv_stream_t *server, int status) {
  resetter_t *r = server->data;
  uv_tcp_t *c;
  uv_os_fd_t fd;
  struct linger lg = {1, 0};

  CHECK_EQ(status, 0);
  c = malloc(sizeof(*c));
  CHECK(c != NULL);
  CHECK_EQ(uv_tcp_init(server->loop, c), 0);
  CHECK_EQ(uv_accept(server, (uv_stream_t *)c), 0);
  r->accepts++;
  CHECK_EQ(uv_fileno((uv_handle_t *)c, &fd), 0);
  CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  uv_close((uv_handle_t *)c, on_reset_closed); /* RST */
}

static void test_multi_address(void) {
  char addr[2][INET6_ADDRSTRLEN];
  const char *name = two_address_name(addr);
  uv_loop_t loop;
  t_collector_t b;
  resetter_t rs;
  struct sockaddr_storage ss;
  kps_sink_config_t cfg;
  kps_sink_t *s;
  kps_sink_endpoint_stats_t e;
  int port = 0, tries;
  wait_t w;

  if (!name) {
    t_note("multi_address: SKIPPED: no host name with two loopback addresses here");
    exit(SKIPPED);
  }
  t_note("%s resolves to %s then %s", name, addr[0], addr[1]);
  for (tries = 0; tries < 20 && !port; tries++) {
    int p = t_free_port();
    if (can_bind(addr[0], p) && can_bind(addr[1], p)) port = p;
  }
  CHECK(port > 0);
  t_capture_log();
  t_loop_init(&loop);
  /* addr[0]: accepts then resets; addr[1]: the collector. */
  memset(&rs, 0, sizeof(rs));
  CHECK_EQ(uv_tcp_init(&loop, &rs.server), 0);
  rs.server.data = &rs;
  CHECK_EQ(strchr(addr[0], ':') ? uv_ip6_addr(addr[0], port, (struct sockaddr_in6 *)&ss)
                                : uv_ip4_addr(addr[0], port, (struct sockaddr_in *)&ss),
           0);
  CHECK_EQ(uv_tcp_bind(&rs.server, (struct sockaddr *)&ss, 0), 0);
  CHECK_EQ(uv_listen((uv_stream_t *)&rs.server, 8, on_reset_conn), 0);
  t_collector_start_on(&b, "b", addr[1], port, NULL);

  memset(&cfg, 0, sizeof(cfg));
  cfg.host = name;
  cfg.port = port;
  cfg.timeout_ms = 3000;
  cfg.keepalive_ms = 60000;
  cfg.queue_max_bytes = 1u << 20;
  cfg.queue_max_entries = 1000;
  s = acquire_ok(&loop, &cfg);
  enqueue_range(s, 0, 50, 100);
  memset(&w, 0, sizeof(w));
  w.sink = s;
  w.col = &b;
  w.n = 50;
  CHECK(t_run_until(&loop, pred_delivered, &w, 15000));
  CHECK(t_run_until(&loop, pred_col_count, &w, 10000));
  /* Reset once at the first address; then the second.  The reset shows
   * either while connecting (the attempt goes on with the next address) or
   * after the records went out (the next attempt starts at the next one). */
  CHECK_EQ(rs.accepts, 1);
  e = t_ep_stats(s, 0);
  CHECK_EQ(e.records_sent, 50);
  CHECK(e.connects == 1 || (e.connects == 2 && e.write_errors == 1));
  CHECK_EQ(e.connect_failures, 0);
  t_note("multi_address: first address accepted %u connection(s), write_errors=%llu", rs.accepts,
         (unsigned long long)e.write_errors);

  /* The next connection starts where the last one worked (the collector
   * closes an idle connection: not a failure). */
  t_collector_stop(&b);
  CHECK(t_run_until(&loop, pred_ep_disconnected, &w, 10000));
  CHECK(t_ep_stats(s, 0).healthy);
  t_collector_start_on(&b, "b2", addr[1], port, NULL);
  enqueue_range(s, 50, 60, 100);
  w.n = 10;
  CHECK(t_run_until(&loop, pred_col_count, &w, 15000));
  CHECK_EQ(rs.accepts, 1);
  uv_close((uv_handle_t *)&rs.server, NULL);
  t_finish(&loop, 2000, &s, 1);
  t_collector_stop(&b);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } cases[] = {
      {"parse_endpoint", test_parse_endpoint},
      {"registry", test_registry},
      {"failover", test_failover},
      {"failover_dead_first", test_failover_dead_first},
      {"round_robin", test_round_robin},
      {"multi_address", test_multi_address},
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
