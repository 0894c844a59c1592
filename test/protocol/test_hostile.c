/* test_hostile.c: hostile and bad input that test_limits.c and
 * test_protocol.c do not cover yet (issue 6, "Hostile and bad input").
 * Every case must end in a clear error reply or a closed connection while
 * other connections keep being served. */
#include <sys/socket.h>
#include <unistd.h>

#include "kong_helpers.h"

static fk_server_t srv;
static fk_client_t k;
static fk_collector_t col;

static void up(const char *plugin, const char *const *args) {
  fk_server_start(&srv, plugin, args);
  fk_client_init(&k, srv.socket);
}

static void down(void) {
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
}

/* A whole c-hello access event on pooled connections. */
static void still_serving(void) {
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  fk_reply_t r;
  kh_handle(&k, inst, "access", &r);
  kh_expect_method(&r, "kong.request.get_header");
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);
  msgpack_sbuffer d;
  msgpack_packer pk;
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  fk_pack_cstr(&pk, "h");
  kh_step(&k, ev, &d, &r);
  kh_expect_method(&r, "kong.response.set_header");
  fk_reply_free(&r);
  kh_step(&k, ev, NULL, &r);
  kh_expect_ret(&r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
}

/* ---- every field of every method with the wrong type (R24) ----------- */

/* One parameter, packed by a tiny language: i=int 7, 0/1/2=that int, I=int -1, f=1.5,
 * d=2.0, n=nil, t=true, s="one", e="", a=[], m={}, B=bin "access",
 * U=uint64 max, X=huge string (5000 bytes), {k v k v}=map with keys
 * given as 'quoted' strings, [..]=array. */
static const char *pack_spec(msgpack_packer *pk, const char *p) {
  while (*p == ' ') p++;
  switch (*p++) {
    case 'i': msgpack_pack_int(pk, 7); break;
    case '0': case '1': case '2': msgpack_pack_int(pk, p[-1] - '0'); break;
    case 'I': msgpack_pack_int(pk, -1); break;
    case 'f': msgpack_pack_double(pk, 1.5); break;
    case 'd': msgpack_pack_double(pk, 2.0); break;
    case 'n': msgpack_pack_nil(pk); break;
    case 't': msgpack_pack_true(pk); break;
    case 's': fk_pack_cstr(pk, "one"); break;
    case 'e': fk_pack_str(pk, "", 0); break;
    case 'a': msgpack_pack_array(pk, 0); break;
    case 'm': msgpack_pack_map(pk, 0); break;
    case 'B': msgpack_pack_bin_with_body(pk, "access", 6); break;
    case 'U': msgpack_pack_uint64(pk, UINT64_MAX); break;
    case 'X': {
      static char big[5000];
      memset(big, 'x', sizeof(big));
      fk_pack_str(pk, big, sizeof(big));
      break;
    }
    case '\'': { /* 'a string' */
      const char *end = strchr(p, '\'');
      if (end == NULL) FAIL("unterminated string in spec");
      fk_pack_str(pk, p, (size_t)(end - p));
      p = end + 1;
      break;
    }
    case '{': case '[': {
      char close = p[-1] == '{' ? '}' : ']';
      int n = 0;
      const char *q = p;
      msgpack_sbuffer inner;
      msgpack_packer ipk;
      msgpack_sbuffer_init(&inner);
      msgpack_packer_init(&ipk, &inner, msgpack_sbuffer_write);
      while (*q == ' ') q++;
      while (*q != close) {
        q = pack_spec(&ipk, q);
        n++;
        while (*q == ' ') q++;
      }
      if (close == '}') msgpack_pack_map(pk, (size_t)n / 2);
      else msgpack_pack_array(pk, (size_t)n);
      msgpack_sbuffer_write(pk->data, inner.data, inner.size);
      msgpack_sbuffer_destroy(&inner);
      p = q + 1;
      break;
    }
    default: FAIL("bad spec at %s", p - 1);
  }
  return p;
}

static void call_spec(const char *method, const char *spec, fk_reply_t *r) {
  msgpack_sbuffer p;
  msgpack_packer pk;
  msgpack_sbuffer_init(&p);
  msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
  pack_spec(&pk, spec);
  fk_call(&k, method, &p, r);
  msgpack_sbuffer_destroy(&p);
}

TEST(wrong_type_every_field_of_every_method) {
  static const struct {
    const char *method, *param, *error;
  } cases[] = {
      /* StartInstance {Name, Config} */
      {"plugin.StartInstance", "i", "plugin.StartInstance: expected a map parameter"},
      {"plugin.StartInstance", "n", "plugin.StartInstance: expected a map parameter"},
      {"plugin.StartInstance", "s", "plugin.StartInstance: expected a map parameter"},
      {"plugin.StartInstance", "[i]", "plugin.StartInstance: expected a map parameter"},
      {"plugin.StartInstance", "{'Config' '{}'}", "Name must be a string"},
      {"plugin.StartInstance", "{'Name' i 'Config' '{}'}", "Name must be a string"},
      {"plugin.StartInstance", "{'Name' n 'Config' '{}'}", "Name must be a string"},
      {"plugin.StartInstance", "{'Name' m 'Config' '{}'}", "Name must be a string"},
      {"plugin.StartInstance", "{'Name' a 'Config' '{}'}", "Name must be a string"},
      {"plugin.StartInstance", "{'Name' 'c-hello'}", "Config must be a JSON string"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' i}", "Config must be a JSON string"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' n}", "Config must be a JSON string"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' t}", "Config must be a JSON string"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' m}", "Config must be a JSON string"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' [s]}", "Config must be a JSON string"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' s}", "Config: not valid JSON"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' e}", "Config: not valid JSON"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' '[1]'}", "Config: expected a JSON object"},
      {"plugin.StartInstance", "{'Name' X 'Config' '{}'}", "no plugin named"},
      /* CloseInstance id (bare, {Id} or {InstanceId}) */
      {"plugin.CloseInstance", "s", "plugin.CloseInstance: expected an instance id"},
      {"plugin.CloseInstance", "n", "plugin.CloseInstance: expected an instance id"},
      {"plugin.CloseInstance", "f", "plugin.CloseInstance: expected an instance id"},
      {"plugin.CloseInstance", "t", "plugin.CloseInstance: expected an instance id"},
      {"plugin.CloseInstance", "U", "plugin.CloseInstance: expected an instance id"},
      {"plugin.CloseInstance", "{'Id' s}", "plugin.CloseInstance: expected an instance id"},
      {"plugin.CloseInstance", "{'InstanceId' f}", "plugin.CloseInstance: expected an instance id"},
      {"plugin.CloseInstance", "I", "no plugin instance #-1"},
      /* HandleEvent {InstanceId, EventName} */
      {"plugin.HandleEvent", "i", "plugin.HandleEvent: expected a map parameter"},
      {"plugin.HandleEvent", "n", "plugin.HandleEvent: expected a map parameter"},
      {"plugin.HandleEvent", "{'EventName' 'access'}", "InstanceId must be an integer"},
      {"plugin.HandleEvent", "{'InstanceId' s 'EventName' 'access'}", "InstanceId must be an integer"},
      {"plugin.HandleEvent", "{'InstanceId' n 'EventName' 'access'}", "InstanceId must be an integer"},
      {"plugin.HandleEvent", "{'InstanceId' f 'EventName' 'access'}", "InstanceId must be an integer"},
      {"plugin.HandleEvent", "{'InstanceId' U 'EventName' 'access'}", "InstanceId must be an integer"},
      {"plugin.HandleEvent", "{'InstanceId' a 'EventName' 'access'}", "InstanceId must be an integer"},
      {"plugin.HandleEvent", "{'InstanceId' i}", "EventName must be a string"},
      {"plugin.HandleEvent", "{'InstanceId' i 'EventName' i}", "EventName must be a string"},
      {"plugin.HandleEvent", "{'InstanceId' i 'EventName' n}", "EventName must be a string"},
      {"plugin.HandleEvent", "{'InstanceId' i 'EventName' m}", "EventName must be a string"},
      /* Step and its variants {EventId, Data} */
      {"plugin.Step", "i", "plugin.Step: expected a map parameter"},
      {"plugin.Step", "n", "plugin.Step: expected a map parameter"},
      {"plugin.Step", "{'Data' s}", "EventId must be an integer"},
      {"plugin.Step", "{'EventId' s}", "EventId must be an integer"},
      {"plugin.Step", "{'EventId' n}", "EventId must be an integer"},
      {"plugin.Step", "{'EventId' f}", "EventId must be an integer"},
      {"plugin.Step", "{'EventId' U}", "EventId must be an integer"},
      {"plugin.Step", "{'EventId' m}", "EventId must be an integer"},
      {"plugin.StepMultiMap", "{'EventId' s}", "EventId must be an integer"},
      {"plugin.StepCredential", "s", "expected a map parameter"},
      {"plugin.StepConsumer", "{'EventId' t}", "EventId must be an integer"},
      {"plugin.StepRoute", "{'EventId' a}", "EventId must be an integer"},
      {"plugin.StepService", "{'EventId' f}", "EventId must be an integer"},
      {"plugin.StepMemoryStats", "{'EventId' n}", "EventId must be an integer"},
      {"plugin.StepError", "i", "plugin.StepError: expected a map parameter"},
      {"plugin.StepError", "{'EventId' s}", "plugin.StepError: EventId must be an integer"},
      {"plugin.Step", "{'EventId' i 'Data' X}", "no running event #7"},
      /* tooling */
      {"plugin.GetPluginInfo", "i", "plugin.GetPluginInfo: expected a plugin name"},
      {"plugin.GetPluginInfo", "n", "plugin.GetPluginInfo: expected a plugin name"},
      {"plugin.GetPluginInfo", "{'Name' i}", "plugin.GetPluginInfo: expected a plugin name"},
      {"plugin.GetPluginInfo", "X", "no plugin named"},
      {"plugin.InstanceStatus", "s", "plugin.InstanceStatus: expected an instance id"},
      {"plugin.InstanceStatus", "n", "plugin.InstanceStatus: expected an instance id"},
      {"plugin.InstanceStatus", "{'Id' s}", "plugin.InstanceStatus: expected an instance id"},
      {"plugin.SetPluginDir", "i", "plugin.SetPluginDir: expected a directory path"},
      {"plugin.SetPluginDir", "n", "plugin.SetPluginDir: expected a directory path"},
      {"plugin.SetPluginDir", "e", "plugin.SetPluginDir: expected a directory path"},
      {"plugin.SetPluginDir", "m", "plugin.SetPluginDir: expected a directory path"},
      {"plugin.SetPluginDir", "X", "plugin.SetPluginDir: expected a directory path"},
      {"plugin.SetPluginDir", "s", "plugins directory one: No such file or directory"},
  };
  up("c-hello", NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fk_reply_t r;
    call_spec(cases[i].method, cases[i].param, &r);
    if (strstr(r.error_str, cases[i].error) == NULL)
      FAIL("%s(%s): error \"%s\" does not contain \"%s\"", cases[i].method, cases[i].param, r.error_str,
           cases[i].error);
    ASSERT(r.result->type == MSGPACK_OBJECT_NIL);
    fk_reply_free(&r);
  }
  /* Wrong types where a type is tolerated (R8, R9): answered normally. */
  static const struct {
    const char *method, *param;
  } fine[] = {
      {"plugin.GetStatus", "n"},
      {"plugin.GetStatus", "s"},
      {"plugin.GetStatus", "{'x' [m]}"},
      {"plugin.GetPluginInfo", "{'Name' 'c-hello'}"},
      {"plugin.StartInstance", "{'Name' 'c-hello' 'Config' '[]'}"},
  };
  for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
    fk_reply_t r;
    call_spec(fine[i].method, fine[i].param, &r);
    if (r.error_str[0]) FAIL("%s(%s): unexpected error %s", fine[i].method, fine[i].param, r.error_str);
    fk_reply_free(&r);
  }
  /* HandleEvent: EventName as bin (R8) works, an unknown phase is named */
  int64_t inst = fk_start_instance(&k, "c-hello", "{}");
  fk_reply_t r;
  msgpack_sbuffer p;
  msgpack_packer pk;
  msgpack_sbuffer_init(&p);
  msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  fk_pack_cstr(&pk, "InstanceId");
  msgpack_pack_double(&pk, (double)inst); /* integral double: accepted (R8) */
  fk_pack_cstr(&pk, "EventName");
  msgpack_pack_bin_with_body(&pk, "access", 6);
  fk_call(&k, "plugin.HandleEvent", &p, &r);
  kh_expect_method(&r, "kong.request.get_header");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  kh_handle(&k, inst, "log", &r);
  ASSERT_CONTAINS(r.error_str, "c-hello has no \"log\" phase");
  fk_reply_free(&r);
  still_serving();
  ASSERT(kh_status(&k, "server", "error_replies") >= (int64_t)(sizeof(cases) / sizeof(cases[0])));
  down();
}

/* The envelope [type, msgid, method, params] with wrong types (R4, R5):
 * an error reply where the msgid is readable, nothing for messages that
 * are not requests, otherwise the connection closes.  expect: NULL =
 * closed, "" = answered without error, "-" = ignored (a request sent next
 * on the same connection is answered), else the error text. */
static void raw_expect(const char *spec, int64_t msgid, const char *expect) {
  msgpack_sbuffer b;
  msgpack_packer pk;
  msgpack_sbuffer_init(&b);
  msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
  pack_spec(&pk, spec);
  fk_conn_t *c = fk_connect(srv.socket);
  fk_send(c, b.data, b.size, FK_SEND_WHOLE, NULL);
  if (expect == NULL) {
    if (!fk_wait_closed(c, 5000)) FAIL("%s: connection not closed", spec);
  } else {
    fk_reply_t r;
    if (strcmp(expect, "-") == 0) { /* ignored: the next request is answered */
      msgpack_sbuffer q;
      msgpack_sbuffer_init(&q);
      fk_build_request(&q, 42, "plugin.GetStatus", "\xc0", 1);
      fk_send(c, q.data, q.size, FK_SEND_WHOLE, NULL);
      msgpack_sbuffer_destroy(&q);
      msgid = 42;
    }
    if (fk_recv(c, msgid, &r, 5000) != 0) FAIL("%s: no reply with msgid %lld", spec, (long long)msgid);
    if (expect[0] == '\0' || expect[0] == '-') {
      if (r.error_str[0]) FAIL("%s: unexpected error %s", spec, r.error_str);
    } else if (strstr(r.error_str, expect) == NULL) {
      FAIL("%s: error \"%s\" does not contain \"%s\"", spec, r.error_str, expect);
    }
    fk_reply_free(&r);
  }
  fk_conn_close(c);
  msgpack_sbuffer_destroy(&b);
}

TEST(wrong_type_envelope) {
  static const struct {
    const char *spec;
    int64_t msgid;
    const char *expect;
  } cases[] = {
      {"[0 i i [n]]", 7, "invalid request: method must be a string"},
      {"[0 i n [n]]", 7, "invalid request: method must be a string"},
      {"[0 i m [n]]", 7, "invalid request: method must be a string"},
      {"[0 i ['plugin.GetStatus'] [n]]", 7, "invalid request: method must be a string"},
      {"[0 i 'plugin.GetStatus' n]", 7, ""},             /* params nil: the param is nil */
      {"[0 i 'plugin.GetPluginInfo' 'c-hello']", 7, ""},  /* params not an array: the param */
      {"[0 i 'plugin.GetStatus' a]", 7, ""},             /* no params at all */
      {"[0 d 'plugin.GetStatus' [n]]", 2, ""},           /* msgid 2.0 (R8) */
      {"[0 s 'plugin.GetStatus' [n]]", 0, NULL},         /* msgid a string */
      {"[0 n 'plugin.GetStatus' [n]]", 0, NULL},
      {"[0 I 'plugin.GetStatus' [n]]", 0, NULL},         /* negative msgid */
      {"[0 f 'plugin.GetStatus' [n]]", 0, NULL},         /* msgid 1.5 */
      {"[0 U 'plugin.GetStatus' [n]]", 0, NULL},         /* msgid over int64 */
      {"[0 m 'plugin.GetStatus' [n]]", 0, NULL},
      {"[0 i 'plugin.GetStatus']", 0, NULL},             /* 3 elements */
      {"[0 i 'plugin.GetStatus' [n] n]", 0, NULL},       /* 5 elements */
      {"[0]", 0, NULL},
      {"[s i 'plugin.GetStatus' [n]]", 0, NULL},         /* type a string */
      {"[f i 'plugin.GetStatus' [n]]", 0, NULL},         /* type 1.5 */
      {"[n i 'plugin.GetStatus' [n]]", 0, NULL},
      {"a", 0, NULL},                                   /* [] */
      {"m", 0, NULL},
      {"s", 0, NULL},
      {"n", 0, NULL},
      {"i", 0, NULL},
      {"[2 'serverPid' i]", 0, "-"},                     /* notifications from Kong: ignored */
      {"[1 i n n]", 0, "-"},                            /* responses from Kong: ignored */
      {"[d 'x']", 0, "-"},                               /* type 2.0 */
      {"[i]", 0, "-"},                                  /* unknown type 7 */
  };
  up("c-hello", NULL);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    raw_expect(cases[i].spec, cases[i].msgid, cases[i].expect);
    if (i % 8 == 0) still_serving();
  }
  still_serving();
  down();
}

/* R22, R23: odd method names: long ones are cut in the message, bytes that
 * are not text are answered like any other unknown name. */
TEST(unknown_methods_odd_names) {
  up("c-hello", NULL);
  static char longname[20000];
  memcpy(longname, "plugin.", 7);
  memset(longname + 7, 'A', sizeof(longname) - 8);
  static const char nul_name[] = "plugin.Get\0Status";
  fk_reply_t r;
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 1);
  fk_call(&k, longname, &p, &r);
  ASSERT_CONTAINS(r.error_str, "unknown method: plugin.AAAA");
  ASSERT(strlen(r.error_str) < 200);
  fk_reply_free(&r);
  longname[3] = '\0'; /* "plu": no namespace at all */
  fk_call(&k, longname, &p, &r);
  ASSERT_STREQ(r.error_str, "RPC for plu is not supported");
  fk_reply_free(&r);
  /* a NUL inside the name (fk_call takes C strings: build it by hand) */
  msgpack_sbuffer req;
  msgpack_packer pk;
  msgpack_sbuffer_init(&req);
  msgpack_packer_init(&pk, &req, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_int(&pk, 5);
  fk_pack_str(&pk, nul_name, sizeof(nul_name) - 1);
  msgpack_pack_array(&pk, 0);
  fk_conn_t *c = fk_connect(srv.socket);
  fk_send(c, req.data, req.size, FK_SEND_WHOLE, NULL);
  ASSERT_EQ(fk_recv(c, 5, &r, 5000), 0);
  ASSERT_CONTAINS(r.error_str, "unknown method: plugin.Get");
  fk_reply_free(&r);
  fk_conn_close(c);
  msgpack_sbuffer_destroy(&req);
  msgpack_sbuffer_destroy(&p);
  still_serving();
  down();
}

/* PDK results of the wrong type: the plugins take them as nil and finish
 * the event; serialize results that are not a JSON object are counted. */
TEST(pdk_results_of_the_wrong_type) {
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  up("tcp-body-log", NULL);
  char cfg[256];
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d}", col.port);
  int64_t tbl = fk_start_instance(&k, "tcp-body-log", cfg);
  static const char *const specs[] = {"i", "m", "[s s]", "t", "f", "n", "U", "{'a' 'b'}"};
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
    msgpack_sbuffer d;
    msgpack_packer pk;
    fk_reply_t r;
    msgpack_sbuffer_init(&d);
    msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
    pack_spec(&pk, specs[i]);
    /* response phase: every answer of the wrong type */
    kh_handle(&k, tbl, "response", &r);
    int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
    fk_reply_free(&r);
    kh_step(&k, ev, &d, &r); /* set_serialize_value's result */
    kh_expect_method(&r, "kong.nginx.get_var");
    fk_reply_free(&r);
    kh_step(&k, ev, &d, &r); /* $request_body */
    kh_expect_method(&r, "kong.service.response.get_raw_body");
    fk_reply_free(&r);
    kh_step(&k, ev, &d, &r); /* the response body */
    kh_expect_ret(&r);
    fk_reply_free(&r);
    /* log phase: serialize of the wrong type */
    kh_handle(&k, tbl, "log", &r);
    ev = fk_int(fk_map_get(r.result, "EventId"));
    fk_reply_free(&r);
    kh_step(&k, ev, &d, &r);
    kh_expect_ret(&r);
    fk_reply_free(&r);
    msgpack_sbuffer_destroy(&d);
  }
  /* serialize strings that are not a JSON object */
  static const char *const bad_json[] = {"", "[]", "null", "{", "\"text\"", "{\"a\":1}x"};
  for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) kh_log_phase(&k, tbl, bad_json[i]);
  /* 8 log phases got no string (one was nil-like); none of the 6 strings
   * is one JSON object ("{\"a\":1}x" has trailing junk), so no record */
  ASSERT_EQ(kh_status(&k, "plugin", "serialize_missing"), 8);
  ASSERT_EQ(kh_status(&k, "plugin", "serialize_invalid"), 6);
  ASSERT_EQ(kh_status(&k, "plugin", "records_queued"), 0);
  ASSERT_EQ(kh_status(&k, "server", "Events"), 0);
  /* c-hello: a Host of the wrong type is taken as none */
  int64_t hello = fk_start_instance(&k, "c-hello", "{}");
  fk_reply_t r;
  kh_handle(&k, hello, "access", &r);
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);
  msgpack_sbuffer d;
  msgpack_packer pk;
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_int(&pk, 2);
  kh_step(&k, ev, &d, &r);
  kh_expect_method(&r, "kong.response.set_header");
  const msgpack_object *args = fk_map_get(fk_map_get(r.result, "Data"), "Args");
  ASSERT(fk_str_eq(&args->via.array.ptr[1], "C says hello to "));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
  down();
  fk_collector_stop(&col);
}

/* A client sending one byte per second (bounded: a 5-byte request, about
 * 4 s) is answered in the end, and others are served meanwhile with no
 * added delay. */
TEST(client_sending_one_byte_per_second) {
  up("c-hello", NULL);
  /* [0, 9, 1, nil]: a request whose method is not a string */
  static const unsigned char msg[] = {0x94, 0x00, 0x09, 0x01, 0xc0};
  fk_conn_t *slow = fk_connect(srv.socket);
  int64_t worst = 0;
  for (size_t i = 0; i < sizeof(msg); i++) {
    int64_t next = kh_now_ms() + 1000;
    fk_send(slow, msg + i, 1, FK_SEND_WHOLE, NULL);
    while (i + 1 < sizeof(msg) && kh_now_ms() < next) {
      int64_t t0 = kh_now_ms();
      still_serving();
      int64_t dt = kh_now_ms() - t0;
      if (dt > worst) worst = dt;
      usleep(100000);
    }
  }
  fk_reply_t r;
  ASSERT_EQ(fk_recv(slow, 9, &r, 5000), 0);
  ASSERT_CONTAINS(r.error_str, "method must be a string");
  fk_reply_free(&r);
  fk_conn_close(slow);
  /* a whole exchange (4 RPCs) never waited on the slow client */
  if (worst > 1000) FAIL("an exchange took %lld ms while a slow client was connected", (long long)worst);
  down();
}

/* Half a message (a declared 1 MiB string, 10 bytes of it sent) and
 * hundreds of idle connections hold nothing up and cost little memory;
 * closing them gives everything back. */
TEST(half_sent_messages_and_idle_connections) {
  up("c-hello", NULL);
  long rss0 = fk_server_rss_kib(&srv);
  enum { IDLE = 300, HALF = 20 };
  fk_conn_t *idle[IDLE], *half[HALF];
  static const unsigned char head[] = {0x94, 0x00, 0x01, 0xab, 'p', 'l', 'u', 'g', 'i', 'n', '.', 'S', 't', 'e',
                                       'p', 0x91, 0xdb, 0x00, 0x10, 0x00, 0x00, 'x', 'x', 'x', 'x', 'x',
                                       'x', 'x', 'x', 'x', 'x'};
  for (int i = 0; i < IDLE; i++) idle[i] = fk_connect(srv.socket);
  for (int i = 0; i < HALF; i++) {
    half[i] = fk_connect(srv.socket);
    fk_send(half[i], head, sizeof(head), FK_SEND_WHOLE, NULL);
  }
  still_serving();
  ASSERT(kh_status(&k, "server", "Connections") >= IDLE + HALF);
  long rss1 = fk_server_rss_kib(&srv);
  /* 64 KiB read buffers at most per half-sent message; nothing for the
   * declared 1 MiB */
  if (rss1 - rss0 > 16 * 1024) FAIL("RSS grew by %ld KiB for %d connections", rss1 - rss0, IDLE + HALF);
  for (int i = 0; i < IDLE; i++) fk_conn_close(idle[i]);
  for (int i = 0; i < HALF; i++) fk_conn_close(half[i]);
  int64_t conns = -1;
  for (int i = 0; i < 200 && conns != 1; i++) {
    usleep(10000);
    conns = kh_status(&k, "server", "Connections");
  }
  ASSERT_EQ(conns, 1); /* only the client's pooled connection is left */
  down();
}

/* Kong disconnects in the middle of tcp-body-log's response phase: the
 * event is reaped, the instance and the captured context are released,
 * and the next exchange is logged normally. */
TEST(kong_disconnects_mid_event_tcp_body_log) {
  static const char *const args[] = {"--event-timeout", "300", NULL};
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  up("tcp-body-log", args);
  char cfg[256];
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d}", col.port);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  for (int round = 0; round < 3; round++) {
    fk_conn_t *c = fk_connect(srv.socket);
    msgpack_sbuffer p;
    fk_reply_t r;
    msgpack_sbuffer_init(&p);
    fk_param_handle_event(&p, inst, "response");
    fk_call_on(&k, c, "plugin.HandleEvent", &p, &r);
    int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
    fk_reply_free(&r);
    msgpack_sbuffer_destroy(&p);
    if (round == 1) { /* one Step in, then gone */
      msgpack_sbuffer_init(&p);
      fk_param_step(&p, ev, NULL, 0);
      fk_call_on(&k, c, "plugin.Step", &p, &r);
      fk_reply_free(&r);
      msgpack_sbuffer_destroy(&p);
    }
    if (round == 2) { /* a Step sent, the reply never read */
      msgpack_sbuffer req;
      msgpack_sbuffer_init(&p);
      msgpack_sbuffer_init(&req);
      fk_param_step(&p, ev, NULL, 0);
      fk_build_request(&req, 999, "plugin.Step", p.data, p.size);
      fk_send(c, req.data, req.size, FK_SEND_WHOLE, NULL);
      msgpack_sbuffer_destroy(&p);
      msgpack_sbuffer_destroy(&req);
    }
    fk_conn_close(c);
  }
  ASSERT_EQ(kh_status(&k, "server", "Events"), 3);
  int64_t reaped = 0;
  for (int i = 0; i < 300 && reaped < 3; i++) {
    usleep(10000);
    reaped = kh_status(&k, "server", "events_reaped");
  }
  ASSERT_EQ(reaped, 3);
  ASSERT_EQ(kh_status(&k, "server", "Events"), 0);
  /* the instance is intact and logs the next exchange */
  char ser[4096];
  char *key = kh_response_phase(&k, inst, "again", 5, "ok", 2);
  kh_serialize(ser, sizeof(ser), key, "text/plain", NULL, NULL);
  kh_log_phase(&k, inst, ser);
  free(key);
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 5000), 1);
  down();
  fk_collector_stop(&col);
}
