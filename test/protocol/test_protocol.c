/* test_protocol.c: the server as Kong's client sees it, over the real
 * socket, through the fake-Kong client.  Rule numbers refer to
 * proto/PROTOCOL.md. */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
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

/* One call with a freshly packed param; the caller frees the reply. */
typedef void (*param_fn)(msgpack_sbuffer *sb, void *ud);

static void call_param(const char *method, const msgpack_sbuffer *p, fk_reply_t *r) {
  fk_call(&k, method, p, r);
}

static void handle_event(int64_t inst, const char *phase, fk_reply_t *r) {
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, phase);
  call_param("plugin.HandleEvent", &p, r);
  msgpack_sbuffer_destroy(&p);
}

static void step_str(const char *method, int64_t ev, const char *s, fk_reply_t *r) {
  msgpack_sbuffer p, d;
  msgpack_packer pk;
  msgpack_sbuffer_init(&p);
  msgpack_sbuffer_init(&d);
  if (s) {
    msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
    fk_pack_cstr(&pk, s);
  }
  fk_param_step(&p, ev, s ? d.data : NULL, d.size);
  call_param(method, &p, r);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_destroy(&d);
}

/* The PDK call a reply asks for: Data = {Method, Args}. */
static void expect_call(const fk_reply_t *r, const char *method, int nargs) {
  if (r->error_str[0]) FAIL("unexpected error: %s", r->error_str);
  const msgpack_object *data = fk_map_get(r->result, "Data");
  ASSERT(data != NULL && data->type == MSGPACK_OBJECT_MAP);
  char *m = fk_strdup_obj(fk_map_get(data, "Method"));
  ASSERT_STREQ(m, method);
  free(m);
  const msgpack_object *args = fk_map_get(data, "Args");
  ASSERT(args != NULL && args->type == MSGPACK_OBJECT_ARRAY);
  ASSERT_EQ(args->via.array.size, nargs);
}

static char *arg_str(const fk_reply_t *r, int i) {
  const msgpack_object *args = fk_map_get(fk_map_get(r->result, "Data"), "Args");
  return fk_strdup_obj(&args->via.array.ptr[i]);
}

static void expect_ret(const fk_reply_t *r) {
  if (r->error_str[0]) FAIL("unexpected error: %s", r->error_str);
  ASSERT(fk_str_eq(fk_map_get(r->result, "Data"), "ret"));
}

static void expect_error(const fk_reply_t *r, const char *text) {
  ASSERT_CONTAINS(r->error_str, text);
  ASSERT(r->result->type == MSGPACK_OBJECT_NIL);
}

static int64_t event_id(const fk_reply_t *r) { return fk_int(fk_map_get(r->result, "EventId")); }

/* A whole c-hello access event; each call may land on any pooled conn. */
static void c_hello_exchange(int64_t inst, const char *host, const char *expect_header) {
  fk_reply_t r;
  handle_event(inst, "access", &r);
  expect_call(&r, "kong.request.get_header", 1);
  char *a = arg_str(&r, 0);
  ASSERT_STREQ(a, "host");
  free(a);
  int64_t ev = event_id(&r);
  fk_reply_free(&r);

  step_str("plugin.Step", ev, host, &r);
  expect_call(&r, "kong.response.set_header", 2);
  ASSERT_EQ(event_id(&r), ev);
  a = arg_str(&r, 0);
  ASSERT_STREQ(a, "x-hello-from-c");
  free(a);
  a = arg_str(&r, 1);
  ASSERT_STREQ(a, expect_header);
  free(a);
  fk_reply_free(&r);

  step_str("plugin.Step", ev, NULL, &r); /* set_header returns nothing */
  expect_ret(&r);
  ASSERT_EQ(event_id(&r), ev);
  fk_reply_free(&r);
}

#define KONG_KEYS                                                                \
  "\"route_id\":\"3d4b8a2c-1e5f-4c6d-9a7b-8e9f0a1b2c3d\",\"service_id\":null,"   \
  "\"consumer_id\":null,\"__seq__\":1,\"__plugin_id\":\"9a6b4c1e-2d3f-4a5b-8c7d-" \
  "0e1f2a3b4c5d\",\"__key__\":\"plugins:c-hello:::::x\",\"__ws_id\":\"0dc6f45b\","  \
  "\"plugin_instance_name\":\"hello1\""

/* R3, R10-R14: StartInstance, HandleEvent, Step, Step, "ret". */
TEST(c_hello_full_exchange) {
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{\"message\":\"hi\"," KONG_KEYS "}");
  c_hello_exchange(inst, "example.com", "C says hi to example.com");
  ASSERT(k.server_pid == srv.pid);
  down();
}

/* R3: the first bytes on a new connection are [2,"serverPid",pid], once. */
TEST(server_pid_notification_first_and_once) {
  up(NULL);
  fk_conn_t *c = fk_connect(srv.socket);
  unsigned char buf[64];
  ssize_t n = 0;
  for (int i = 0; i < 100 && n < 5; i++) {
    ssize_t m = recv(c->fd, buf + n, sizeof(buf) - (size_t)n, MSG_DONTWAIT);
    if (m > 0) n += m;
    else usleep(10000);
  }
  /* 0x93 0x02 0xa9 "serverPid" then the pid as an integer */
  ASSERT(n >= 12);
  ASSERT_EQ(buf[0], 0x93);
  ASSERT_EQ(buf[1], 0x02);
  ASSERT_EQ(buf[2], 0xa9);
  ASSERT(memcmp(buf + 3, "serverPid", 9) == 0);
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, "c-hello");
  fk_call_on(&k, c, "plugin.GetPluginInfo", &p, &r);
  fk_reply_free(&r);
  fk_call_on(&k, c, "plugin.GetPluginInfo", &p, &r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  ASSERT_EQ(c->notifications, 0); /* consumed raw above; no later ones */
  /* Nothing else arrives unasked. */
  usleep(100000);
  ASSERT_EQ(recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
  ASSERT_EQ(errno, EAGAIN);
  fk_conn_close(c);
  down();
}

/* R20: an unknown instance gets "no plugin instance #<id>". */
TEST(unknown_instance_error) {
  up(NULL);
  fk_reply_t r;
  handle_event(999, "access", &r);
  expect_error(&r, "no plugin instance #999");
  fk_reply_free(&r);
  down();
}

/* R21: a Step for an unknown event. */
TEST(unknown_event_error) {
  up(NULL);
  fk_reply_t r;
  step_str("plugin.Step", 12345, "x", &r);
  expect_error(&r, "no running event #12345");
  fk_reply_free(&r);
  down();
}

/* R12: a Step without Data is a nil PDK result. */
TEST(step_without_data_is_nil) {
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{\"message\":\"yo\"}");
  c_hello_exchange(inst, NULL, "C says yo to ");
  down();
}

/* R12: every Step variant, and StepError (Kong 2.x), drive the event. */
TEST(step_variants_all_accepted) {
  static const char *const variants[] = {"plugin.StepMultiMap", "plugin.StepCredential",
                                         "plugin.StepConsumer", "plugin.StepRoute",
                                         "plugin.StepService", "plugin.StepMemoryStats",
                                         "plugin.StepError"};
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
    fk_reply_t r;
    handle_event(inst, "access", &r);
    int64_t ev = event_id(&r);
    fk_reply_free(&r);
    step_str(variants[i], ev, "h", &r);
    expect_call(&r, "kong.response.set_header", 2);
    char *v = arg_str(&r, 1);
    /* StepError carries an error, never a result: the plugin sees nil. */
    ASSERT_STREQ(v, strcmp(variants[i], "plugin.StepError") == 0 ? "C says hello to "
                                                                 : "C says hello to h");
    free(v);
    fk_reply_free(&r);
    step_str("plugin.Step", ev, NULL, &r);
    expect_ret(&r);
    fk_reply_free(&r);
  }
  down();
}

/* R30-R32: config validated against the field table; errors name the field. */
TEST(start_instance_bad_config) {
  static const struct {
    const char *name, *config, *error;
  } cases[] = {
      {"c-hello", "{\"message\":5}", "config.message: expected a string, got 5"},
      {"c-hello", "{\"message\":\"\"}", "config.message: expected a string of 1 to 256 bytes, got 0"},
      {"c-hello", "{\"message\":", "Config: not valid JSON"},
      {"c-hello", "[1,2]", "Config: expected a JSON object"},
      {"bodylog", "{}", "no plugin named \"bodylog\""},
  };
  up(NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    msgpack_sbuffer p;
    fk_reply_t r;
    msgpack_sbuffer_init(&p);
    fk_param_start_instance(&p, cases[i].name, cases[i].config);
    call_param("plugin.StartInstance", &p, &r);
    expect_error(&r, cases[i].error);
    fk_reply_free(&r);
    msgpack_sbuffer_destroy(&p);
  }
  down();
}

/* R31: Kong's own keys are ignored and defaults are filled in. */
TEST(start_instance_ignores_kong_keys_fills_defaults) {
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{" KONG_KEYS "}");
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, inst);
  call_param("plugin.InstanceStatus", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  char *m = fk_strdup_obj(fk_map_get(fk_map_get(r.result, "Config"), "message"));
  ASSERT_STREQ(m, "hello");
  free(m);
  ASSERT_EQ(fk_int(fk_map_get(r.result, "Id")), inst);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  c_hello_exchange(inst, "a", "C says hello to a");
  down();
}

/* R11, R20: CloseInstance with a bare id; afterwards the id is unknown. */
TEST(close_instance) {
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, inst);
  call_param("plugin.CloseInstance", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  fk_reply_free(&r);
  call_param("plugin.CloseInstance", &p, &r);
  char want[64];
  snprintf(want, sizeof(want), "no plugin instance #%lld", (long long)inst);
  expect_error(&r, want);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  handle_event(inst, "access", &r);
  expect_error(&r, want);
  fk_reply_free(&r);
  down();
}

/* R25: the tooling methods. */
TEST(tooling_methods) {
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  msgpack_sbuffer p;
  fk_reply_t r;

  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, "c-hello");
  call_param("plugin.GetPluginInfo", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  ASSERT(fk_str_eq(fk_map_get(r.result, "Name"), "c-hello"));
  ASSERT(fk_str_eq(fk_map_get(r.result, "Version"), "0.1.0"));
  ASSERT_EQ(fk_int(fk_map_get(r.result, "Priority")), 1000);
  ASSERT(fk_map_get(r.result, "Schema") != NULL);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);

  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, "nope");
  call_param("plugin.GetPluginInfo", &p, &r);
  expect_error(&r, "no plugin named \"nope\"");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);

  msgpack_sbuffer_init(&p);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
  msgpack_pack_nil(&pk);
  call_param("plugin.GetStatus", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  ASSERT_EQ(fk_int(fk_map_get(r.result, "Pid")), srv.pid);
  ASSERT_EQ(fk_int(fk_map_get(r.result, "Instances")), 1);
  ASSERT_EQ(fk_int(fk_map_get(fk_map_get(fk_map_get(r.result, "Plugins"), "c-hello"), "Instances")), 1);
  ASSERT_EQ(fk_int(fk_map_get(fk_map_get(r.result, "Counters"), "instances_started")), 1);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);

  msgpack_sbuffer_init(&p);
  fk_param_int(&p, inst);
  call_param("plugin.InstanceStatus", &p, &r);
  ASSERT(fk_str_eq(fk_map_get(r.result, "Name"), "c-hello"));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);

  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, srv.prefix);
  call_param("plugin.SetPluginDir", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  ASSERT(fk_str_eq(r.result, "ok"));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);

  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, "/nonexistent/dir");
  call_param("plugin.SetPluginDir", &p, &r);
  expect_error(&r, "plugins directory /nonexistent/dir: No such file or directory");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  down();
}

/* R22, R23: unknown methods and namespaces. */
TEST(unknown_method_and_namespace) {
  up(NULL);
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 1);
  call_param("plugin.Nope", &p, &r);
  expect_error(&r, "unknown method: plugin.Nope");
  fk_reply_free(&r);
  call_param("foo.Bar", &p, &r);
  expect_error(&r, "RPC for foo is not supported");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  down();
}

/* R24: every field of every method with the wrong type gets an error. */
TEST(wrong_types) {
  static const struct {
    const char *method, *json_desc;
    int kind;
    const char *error;
  } cases[] = {
      {"plugin.StartInstance", "int", 0, "expected a map parameter"},
      {"plugin.StartInstance", "Name=int", 1, "Name must be a string"},
      {"plugin.StartInstance", "Config=int", 2, "Config must be a JSON string"},
      {"plugin.HandleEvent", "int", 0, "expected a map parameter"},
      {"plugin.HandleEvent", "InstanceId=str", 3, "InstanceId must be an integer"},
      {"plugin.HandleEvent", "EventName=int", 4, "EventName must be a string"},
      {"plugin.Step", "int", 0, "expected a map parameter"},
      {"plugin.Step", "EventId=str", 5, "EventId must be an integer"},
      {"plugin.CloseInstance", "str", 6, "expected an instance id"},
      {"plugin.InstanceStatus", "str", 6, "expected an instance id"},
      {"plugin.GetPluginInfo", "int", 0, "expected a plugin name"},
      {"plugin.SetPluginDir", "int", 0, "expected a directory path"},
  };
  up(NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    msgpack_sbuffer p;
    msgpack_packer pk;
    fk_reply_t r;
    msgpack_sbuffer_init(&p);
    msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
    switch (cases[i].kind) {
      case 0: msgpack_pack_int(&pk, 7); break;
      case 1: msgpack_pack_map(&pk, 2); fk_pack_cstr(&pk, "Name"); msgpack_pack_int(&pk, 1);
              fk_pack_cstr(&pk, "Config"); fk_pack_cstr(&pk, "{}"); break;
      case 2: msgpack_pack_map(&pk, 2); fk_pack_cstr(&pk, "Name"); fk_pack_cstr(&pk, "c-hello");
              fk_pack_cstr(&pk, "Config"); msgpack_pack_int(&pk, 1); break;
      case 3: msgpack_pack_map(&pk, 2); fk_pack_cstr(&pk, "InstanceId"); fk_pack_cstr(&pk, "1");
              fk_pack_cstr(&pk, "EventName"); fk_pack_cstr(&pk, "access"); break;
      case 4: msgpack_pack_map(&pk, 2); fk_pack_cstr(&pk, "InstanceId"); msgpack_pack_int(&pk, 1);
              fk_pack_cstr(&pk, "EventName"); msgpack_pack_int(&pk, 1); break;
      case 5: msgpack_pack_map(&pk, 1); fk_pack_cstr(&pk, "EventId"); fk_pack_cstr(&pk, "1"); break;
      case 6: fk_pack_cstr(&pk, "one"); break;
    }
    call_param(cases[i].method, &p, &r);
    expect_error(&r, cases[i].error);
    fk_reply_free(&r);
    msgpack_sbuffer_destroy(&p);
  }
  /* The server still works. */
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  c_hello_exchange(inst, "x", "C says hello to x");
  down();
}

/* R6: requests delivered one byte per write. */
TEST(bytewise_delivery) {
  up(NULL);
  k.send_mode = FK_SEND_BYTEWISE;
  int64_t inst = fk_start_instance(&k, "c-hello", "{\"message\":\"slow\"}");
  c_hello_exchange(inst, "bytes.example", "C says slow to bytes.example");
  down();
}

/* R6: several requests in one write are answered in order. */
TEST(coalesced_delivery) {
  up(NULL);
  fk_conn_t *c = fk_connect(srv.socket);
  msgpack_sbuffer all, p;
  msgpack_sbuffer_init(&all);
  for (int i = 1; i <= 5; i++) {
    msgpack_sbuffer_init(&p);
    fk_param_cstr(&p, "c-hello");
    fk_build_request(&all, 100 + i, "plugin.GetPluginInfo", p.data, p.size);
    msgpack_sbuffer_destroy(&p);
  }
  fk_send(c, all.data, all.size, FK_SEND_WHOLE, NULL);
  for (int i = 1; i <= 5; i++) {
    fk_reply_t r;
    ASSERT_EQ(fk_recv(c, 100 + i, &r, 5000), 0);
    ASSERT(fk_str_eq(fk_map_get(r.result, "Name"), "c-hello"));
    fk_reply_free(&r);
  }
  msgpack_sbuffer_destroy(&all);
  fk_conn_close(c);
  down();
}

/* R6: random splits over a whole exchange. */
TEST(random_split_delivery) {
  up(NULL);
  k.send_mode = FK_SEND_RANDOM_SPLIT;
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  for (int i = 0; i < 20; i++) c_hello_exchange(inst, "split", "C says hello to split");
  down();
}

/* R7: an event's calls hop between pooled connections. */
TEST(event_hops_between_connections) {
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  fk_conn_t *a = fk_connect(srv.socket), *b = fk_connect(srv.socket), *c = fk_connect(srv.socket);
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, "access");
  fk_call_on(&k, a, "plugin.HandleEvent", &p, &r);
  int64_t ev = event_id(&r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);

  msgpack_sbuffer d;
  msgpack_packer pk;
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  fk_pack_cstr(&pk, "hop");
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, d.data, d.size);
  fk_call_on(&k, b, "plugin.Step", &p, &r);
  expect_call(&r, "kong.response.set_header", 2);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, NULL, 0);
  fk_call_on(&k, c, "plugin.Step", &p, &r);
  expect_ret(&r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_destroy(&d);
  fk_conn_close(a);
  fk_conn_close(b);
  fk_conn_close(c);
  down();
}

/* R7: 1,000 concurrent connections, each driving events interleaved. */
TEST(concurrent_1000_connections) {
  enum { N = 1000 };
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < N + 64) FAIL("RLIMIT_NOFILE hard limit %ld is too low", (long)rl.rlim_max);
  up(NULL);
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  static fk_conn_t *conns[N];
  static int64_t events[N];
  for (int i = 0; i < N; i++) conns[i] = fk_connect(srv.socket);
  /* Round 1: HandleEvent on every connection before reading any reply. */
  for (int i = 0; i < N; i++) {
    msgpack_sbuffer p, req;
    msgpack_sbuffer_init(&p);
    msgpack_sbuffer_init(&req);
    fk_param_handle_event(&p, inst, "access");
    fk_build_request(&req, 1, "plugin.HandleEvent", p.data, p.size);
    fk_send(conns[i], req.data, req.size, FK_SEND_WHOLE, NULL);
    msgpack_sbuffer_destroy(&p);
    msgpack_sbuffer_destroy(&req);
  }
  for (int i = 0; i < N; i++) {
    fk_reply_t r;
    ASSERT_EQ(fk_recv(conns[i], 1, &r, 10000), 0);
    expect_call(&r, "kong.request.get_header", 1);
    events[i] = event_id(&r);
    fk_reply_free(&r);
  }
  /* Round 2: each event's Step goes to the next connection. */
  for (int i = 0; i < N; i++) {
    char host[32];
    msgpack_sbuffer p, req, d;
    msgpack_packer pk;
    snprintf(host, sizeof(host), "h%d", i);
    msgpack_sbuffer_init(&d);
    msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
    fk_pack_cstr(&pk, host);
    msgpack_sbuffer_init(&p);
    msgpack_sbuffer_init(&req);
    fk_param_step(&p, events[i], d.data, d.size);
    fk_build_request(&req, 2, "plugin.Step", p.data, p.size);
    fk_send(conns[(i + 1) % N], req.data, req.size, FK_SEND_WHOLE, NULL);
    msgpack_sbuffer_destroy(&p);
    msgpack_sbuffer_destroy(&req);
    msgpack_sbuffer_destroy(&d);
  }
  for (int i = 0; i < N; i++) {
    fk_reply_t r;
    char want[64];
    ASSERT_EQ(fk_recv(conns[(i + 1) % N], 2, &r, 10000), 0);
    expect_call(&r, "kong.response.set_header", 2);
    ASSERT_EQ(event_id(&r), events[i]);
    snprintf(want, sizeof(want), "C says hello to h%d", i);
    char *v = arg_str(&r, 1);
    ASSERT_STREQ(v, want);
    free(v);
    fk_reply_free(&r);
  }
  for (int i = 0; i < N; i++) {
    msgpack_sbuffer p;
    fk_reply_t r;
    msgpack_sbuffer_init(&p);
    fk_param_step(&p, events[i], NULL, 0);
    fk_call_on(&k, conns[i], "plugin.Step", &p, &r);
    expect_ret(&r);
    fk_reply_free(&r);
    msgpack_sbuffer_destroy(&p);
  }
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call_on(&k, conns[0], "plugin.GetStatus", &p, &r);
  ASSERT_EQ(fk_int(fk_map_get(r.result, "Events")), 0);
  ASSERT_EQ(fk_int(fk_map_get(r.result, "Connections")), N + 1); /* + the pooled one */
  ASSERT_EQ(fk_int(fk_map_get(fk_map_get(r.result, "Counters"), "events_finished")), N);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  for (int i = 0; i < N; i++) fk_conn_close(conns[i]);
  down();
}
