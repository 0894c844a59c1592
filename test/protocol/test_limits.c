/* test_limits.c: bad and hostile input on the wire, and the limits that
 * bound it.  Each case ends in an error reply or a closed connection while
 * other connections keep being served (proto/PROTOCOL.md R6, R26-R29). */
#include <unistd.h>

#include "fake_kong.h"
#include "test.h"

static fk_server_t srv;
static fk_client_t k;

static void up(const char *const *args) {
  fk_server_start(&srv, "c-hello", args);
  fk_client_init(&k, srv.socket);
}

static void down(void) {
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
}

/* Another connection still gets full service. */
static void still_serving(void) {
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, "access");
  fk_call(&k, "plugin.HandleEvent", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
}

static int64_t status_counter(const char *name) {
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call(&k, "plugin.GetStatus", &p, &r);
  int64_t v = fk_int(fk_map_get(fk_map_get(r.result, "Counters"), name));
  if (v == -999999) v = fk_int(fk_map_get(r.result, name));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  return v;
}

/* Sends raw bytes on a fresh connection and expects it to be closed. */
static fk_conn_t *send_raw(const void *bytes, size_t n) {
  fk_conn_t *c = fk_connect(srv.socket);
  fk_send(c, bytes, n, FK_SEND_WHOLE, NULL);
  return c;
}

/* R26: 0xc1 is never valid MessagePack: the connection is closed. */
TEST(malformed_messagepack_closes_connection) {
  up(NULL);
  static const unsigned char bad[] = {0x94, 0x00, 0x01, 0xc1};
  fk_conn_t *c = send_raw(bad, sizeof(bad));
  ASSERT(fk_wait_closed(c, 5000));
  fk_conn_close(c);
  still_serving();
  ASSERT_EQ(status_counter("malformed"), 1);
  down();
}

/* R26: a message that is not an RPC array closes the connection. */
TEST(non_rpc_message_closes_connection) {
  up(NULL);
  static const unsigned char bad[] = {0xa3, 'a', 'b', 'c'};
  fk_conn_t *c = send_raw(bad, sizeof(bad));
  ASSERT(fk_wait_closed(c, 5000));
  fk_conn_close(c);
  still_serving();
  down();
}

/* R27: over the configured cap: an error reply naming the limit, then close. */
TEST(message_over_cap) {
  static const char *const args[] = {"--max-message-size", "4096", NULL};
  up(args);
  char config[6000];
  memset(config, ' ', sizeof(config) - 1);
  config[0] = '{';
  config[sizeof(config) - 2] = '}';
  config[sizeof(config) - 1] = '\0';
  msgpack_sbuffer p, req;
  msgpack_sbuffer_init(&p);
  msgpack_sbuffer_init(&req);
  fk_param_start_instance(&p, "c-hello", config);
  fk_build_request(&req, 7, "plugin.StartInstance", p.data, p.size);
  fk_conn_t *c = fk_connect(srv.socket);
  fk_send(c, req.data, req.size, FK_SEND_WHOLE, NULL);
  fk_reply_t r;
  ASSERT_EQ(fk_recv(c, 7, &r, 5000), 0);
  ASSERT_CONTAINS(r.error_str, "message exceeds max_message_size (limit 4096 bytes");
  fk_reply_free(&r);
  ASSERT(fk_wait_closed(c, 5000));
  fk_conn_close(c);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_destroy(&req);
  still_serving();
  ASSERT_EQ(status_counter("oversized"), 1);
  down();
}

/* R28: declared 4 GiB lengths with no bytes behind them allocate nothing:
 * refused as soon as the header is seen. */
TEST(declared_4gib_lengths_refused_without_allocation) {
  static const unsigned char headers[][5] = {
      {0xdb, 0xff, 0xff, 0xff, 0xff}, /* str32 */
      {0xc6, 0xff, 0xff, 0xff, 0xff}, /* bin32 */
      {0xdd, 0xff, 0xff, 0xff, 0xff}, /* array32 */
      {0xdf, 0xff, 0xff, 0xff, 0xff}, /* map32 */
  };
  up(NULL);
  long rss_before = fk_server_rss_kib(&srv);
  for (size_t i = 0; i < 4; i++) {
    /* [0, 9, "plugin.StartInstance", [<header>... */
    unsigned char msg[64];
    size_t n = 0;
    msg[n++] = 0x94, msg[n++] = 0x00, msg[n++] = 0x09;
    msg[n++] = 0xb4;
    memcpy(msg + n, "plugin.StartInstance", 20), n += 20;
    msg[n++] = 0x91;
    memcpy(msg + n, headers[i], 5), n += 5;
    fk_conn_t *c = send_raw(msg, n);
    fk_reply_t r;
    ASSERT_EQ(fk_recv(c, 9, &r, 5000), 0);
    ASSERT_CONTAINS(r.error_str, "message exceeds max_message_size");
    fk_reply_free(&r);
    ASSERT(fk_wait_closed(c, 5000));
    fk_conn_close(c);
  }
  long rss_after = fk_server_rss_kib(&srv);
  ASSERT(rss_after - rss_before < 4096); /* well under 4 MiB of growth */
  still_serving();
  down();
}

/* R29: nesting 10,000 deep is refused; the server stays up. */
TEST(nesting_10000_deep) {
  up(NULL);
  static unsigned char msg[10100];
  size_t n = 0;
  msg[n++] = 0x94, msg[n++] = 0x00, msg[n++] = 0x05;
  msg[n++] = 0xab;
  memcpy(msg + n, "plugin.Step", 11), n += 11;
  for (int i = 0; i < 10000; i++) msg[n++] = 0x91;
  fk_conn_t *c = send_raw(msg, n);
  fk_reply_t r;
  ASSERT_EQ(fk_recv(c, 5, &r, 5000), 0);
  ASSERT_CONTAINS(r.error_str, "message nested too deeply");
  fk_reply_free(&r);
  ASSERT(fk_wait_closed(c, 5000));
  fk_conn_close(c);
  still_serving();
  down();
}

/* R29: 32 levels of containers are accepted, 33 are refused. */
static void send_nested(int containers, int expect_ok) {
  unsigned char msg[128];
  size_t n = 0;
  msg[n++] = 0x94, msg[n++] = 0x00, msg[n++] = 0x05;
  msg[n++] = 0xb0; /* fixstr of 16 */
  memcpy(msg + n, "plugin.GetStatus", 16), n += 16;
  /* the envelope is one level, the params array the next */
  for (int i = 0; i < containers - 1; i++) msg[n++] = 0x91;
  msg[n++] = 0xc0;
  fk_conn_t *c = send_raw(msg, n);
  fk_reply_t r;
  ASSERT_EQ(fk_recv(c, 5, &r, 5000), 0);
  if (expect_ok) ASSERT_EQ(r.error_str[0], 0);
  else ASSERT_CONTAINS(r.error_str, "message nested too deeply");
  fk_reply_free(&r);
  fk_conn_close(c);
}

TEST(nesting_boundary_32_levels) {
  up(NULL);
  send_nested(32, 1);
  send_nested(33, 0);
  still_serving();
  down();
}

/* A client that connects and sends nothing holds nothing up. */
TEST(silent_client_does_not_block_others) {
  up(NULL);
  fk_conn_t *silent = fk_connect(srv.socket);
  still_serving();
  fk_conn_close(silent);
  down();
}

/* A client sending one byte at a time, slowly, while others are served. */
TEST(slow_client_does_not_block_others) {
  up(NULL);
  msgpack_sbuffer p, req;
  msgpack_sbuffer_init(&p);
  msgpack_sbuffer_init(&req);
  fk_param_cstr(&p, "c-hello");
  fk_build_request(&req, 3, "plugin.GetPluginInfo", p.data, p.size);
  fk_conn_t *slow = fk_connect(srv.socket);
  for (size_t i = 0; i < req.size; i++) {
    fk_send(slow, req.data + i, 1, FK_SEND_WHOLE, NULL);
    if (i % 8 == 0) still_serving(); /* others keep being answered */
  }
  fk_reply_t r;
  ASSERT_EQ(fk_recv(slow, 3, &r, 5000), 0);
  ASSERT(fk_str_eq(fk_map_get(r.result, "Name"), "c-hello"));
  fk_reply_free(&r);
  fk_conn_close(slow);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_destroy(&req);
  down();
}

/* R16: an event Kong abandons (connection closed, or never stepped) is
 * reaped after --event-timeout and frees its instance reference. */
TEST(abandoned_event_is_reaped) {
  static const char *const args[] = {"--event-timeout", "300", NULL};
  up(args);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  fk_conn_t *c = fk_connect(srv.socket);
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, "access");
  fk_call_on(&k, c, "plugin.HandleEvent", &p, &r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  fk_conn_close(c); /* Kong disconnects mid-event */
  ASSERT_EQ(status_counter("Events"), 1);
  int64_t reaped = 0;
  for (int i = 0; i < 300 && reaped == 0; i++) {
    usleep(10000);
    reaped = status_counter("events_reaped");
  }
  ASSERT_EQ(reaped, 1);
  ASSERT_EQ(status_counter("Events"), 0);
  down();
}

/* R17: an instance idle past --instance-idle-timeout expires; Kong then
 * gets "no plugin instance" and starts a new one. */
TEST(idle_instance_expires) {
  static const char *const args[] = {"--instance-idle-timeout", "300", NULL};
  up(args);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  int64_t expired = 0;
  for (int i = 0; i < 300 && expired == 0; i++) {
    usleep(10000);
    expired = status_counter("instances_expired");
  }
  ASSERT_EQ(expired, 1);
  msgpack_sbuffer p;
  fk_reply_t r;
  char want[64];
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, "access");
  fk_call(&k, "plugin.HandleEvent", &p, &r);
  snprintf(want, sizeof(want), "no plugin instance #%lld", (long long)inst);
  ASSERT_CONTAINS(r.error_str, want);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  down();
}

/* max_events bounds the event table; refusals are counted. */
TEST(max_events_cap) {
  static const char *const args[] = {"--max-events", "3", NULL};
  up(args);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  for (int i = 0; i < 4; i++) {
    msgpack_sbuffer p;
    fk_reply_t r;
    msgpack_sbuffer_init(&p);
    fk_param_handle_event(&p, inst, "access");
    fk_call(&k, "plugin.HandleEvent", &p, &r);
    if (i < 3) ASSERT_EQ(r.error_str[0], 0);
    else ASSERT_CONTAINS(r.error_str, "too many events in flight (max_events 3)");
    fk_reply_free(&r);
    msgpack_sbuffer_destroy(&p);
  }
  ASSERT_EQ(status_counter("events_refused"), 1);
  down();
}
