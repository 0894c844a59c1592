/* test_tcp_body_log.c: tcp-body-log driven the way Kong drives it, over the
 * real socket, shipping to a real collector process.  Each test checks the
 * exact record fields that arrive. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "fake_kong.h"
#include "test.h"

static fk_server_t srv;
static fk_client_t k;
static fk_collector_t col;

static void up(const char *const *collector_args) {
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, collector_args);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
}

static void down(void) {
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
}

static int64_t start(const char *extra_config) {
  char cfg[4096];
  snprintf(cfg, sizeof(cfg),
           "{\"host\":\"127.0.0.1\",\"port\":%d,\"__seq__\":1,\"__plugin_id\":\"p1\"%s%s}", col.port,
           extra_config ? "," : "", extra_config ? extra_config : "");
  return fk_start_instance(&k, "tcp-body-log", cfg);
}

static void expect_method(const fk_reply_t *r, const char *method) {
  if (r->error_str[0]) FAIL("unexpected error: %s", r->error_str);
  const msgpack_object *data = fk_map_get(r->result, "Data");
  char *m = fk_strdup_obj(fk_map_get(data, "Method"));
  ASSERT_STREQ(m, method);
  free(m);
}

static void expect_ret(const fk_reply_t *r) {
  if (r->error_str[0]) FAIL("unexpected error: %s", r->error_str);
  ASSERT(fk_str_eq(fk_map_get(r->result, "Data"), "ret"));
}

/* Sends a Step whose Data is `packed` (NULL = no Data). */
static void step(int64_t ev, const msgpack_sbuffer *packed, fk_reply_t *r) {
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, packed ? packed->data : NULL, packed ? packed->size : 0);
  fk_call(&k, "plugin.Step", &p, r);
  msgpack_sbuffer_destroy(&p);
}

static void handle(int64_t inst, const char *phase, fk_reply_t *r) {
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, phase);
  fk_call(&k, "plugin.HandleEvent", &p, r);
  msgpack_sbuffer_destroy(&p);
}

/* The response phase as Kong runs it: returns the join key the server set.
 * req_body NULL: $request_body was nil.  Bodies go as Kong sends them:
 * get_var's string as str, the service body as bin. */
static char *response_phase(int64_t inst, const char *req_body, size_t req_len,
                            const char *resp_body, size_t resp_len) {
  fk_reply_t r;
  msgpack_sbuffer d;
  msgpack_packer pk;
  handle(inst, "response", &r);
  expect_method(&r, "kong.log.set_serialize_value");
  const msgpack_object *args = fk_map_get(fk_map_get(r.result, "Data"), "Args");
  ASSERT_EQ(args->via.array.size, 2);
  ASSERT(fk_str_eq(&args->via.array.ptr[0], "tcp_body_log_exchange"));
  char *key = fk_strdup_obj(&args->via.array.ptr[1]);
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);

  step(ev, NULL, &r); /* set_serialize_value returns nothing */
  expect_method(&r, "kong.nginx.get_var");
  args = fk_map_get(fk_map_get(r.result, "Data"), "Args");
  ASSERT(fk_str_eq(&args->via.array.ptr[0], "request_body"));
  fk_reply_free(&r);

  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  if (req_body) fk_pack_str(&pk, req_body, req_len);
  step(ev, req_body ? &d : NULL, &r);
  expect_method(&r, "kong.service.response.get_raw_body");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);

  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  msgpack_pack_bin_with_body(&pk, resp_body, resp_len);
  step(ev, &d, &r);
  expect_ret(&r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
  return key;
}

/* A kong.log.serialize() output in Kong 3.7+'s shape. */
static void serialize_json(char *out, size_t n, const char *key, const char *req_ct,
                           const char *extra_req_headers) {
  snprintf(out, n,
           "{\"request\":{\"id\":\"2372e68d\",\"uri\":\"/echo\",\"url\":\"http://127.0.0.1:8000/echo\","
           "\"querystring\":{},\"method\":\"POST\",\"headers\":{\"host\":\"127.0.0.1:8000\","
           "\"content-type\":\"%s\",\"authorization\":\"REDACTED\",\"cookie\":\"sid=abc\"%s},"
           "\"size\":87},\"upstream_uri\":\"/echo\",\"upstream_status\":200,"
           "\"response\":{\"status\":200,\"headers\":{\"content-type\":\"text/plain\","
           "\"set-cookie\":\"t=1\"},\"size\":191},\"latencies\":{\"kong\":1,\"proxy\":2,"
           "\"request\":4,\"receive\":0},\"tries\":[{\"ip\":\"127.0.0.1\",\"port\":18101}],"
           "\"client_ip\":\"127.0.0.1\",\"started_at\":1795684822308,\"source\":\"service\"%s%s%s}",
           req_ct, extra_req_headers ? extra_req_headers : "", key ? ",\"tcp_body_log_exchange\":\"" : "",
           key ? key : "", key ? "\"" : "");
}

static void log_phase(int64_t inst, const char *serialize) {
  fk_reply_t r;
  msgpack_sbuffer d;
  msgpack_packer pk;
  handle(inst, "log", &r);
  expect_method(&r, "kong.log.serialize");
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  fk_pack_cstr(&pk, serialize);
  step(ev, &d, &r);
  expect_ret(&r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
}

/* The single line that arrived, parsed. */
static cJSON *one_record(void) {
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 5000), 1);
  usleep(50000);
  char *text = fk_collector_read(&col);
  ASSERT_EQ(strchr(text, '\n') - text + 1, (long long)strlen(text)); /* exactly one line */
  cJSON *j = cJSON_Parse(text);
  if (j == NULL) FAIL("record is not JSON: %s", text);
  free(text);
  return j;
}

static const cJSON *get(const cJSON *j, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
  return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

/* Done when: a full exchange (response, log) gives one correct line. */
TEST(tcp_exchange_one_line_with_bodies) {
  up(NULL);
  int64_t inst = start(NULL);
  char ser[4096];
  const char *req = "{\"order\":42}";
  char *key = response_phase(inst, req, strlen(req), "echo: ok", 8);
  serialize_json(ser, sizeof(ser), key, "application/json", NULL);
  log_phase(inst, ser);
  cJSON *j = one_record();
  ASSERT_STREQ(get(j, "request", "body")->valuestring, "{\"order\":42}");
  ASSERT_STREQ(get(j, "request", "body_encoding")->valuestring, "text");
  ASSERT_EQ(get(j, "request", "body_size")->valuedouble, 12);
  ASSERT(cJSON_IsFalse(get(j, "request", "body_truncated")));
  ASSERT_STREQ(get(j, "response", "body")->valuestring, "echo: ok");
  ASSERT_EQ(get(j, "response", "body_size")->valuedouble, 8);
  /* the rest of serialize, unchanged; secrets redacted; key removed */
  ASSERT_STREQ(get(j, "request", "url")->valuestring, "http://127.0.0.1:8000/echo");
  ASSERT_EQ(get(j, "response", "status")->valuedouble, 200);
  ASSERT_EQ(get(j, "latencies", "request")->valuedouble, 4);
  ASSERT_EQ(get(j, "started_at", NULL)->valuedouble, 1795684822308.0);
  ASSERT_STREQ(get(get(j, "request", "headers"), "cookie", NULL)->valuestring, "REDACTED");
  ASSERT_STREQ(get(get(j, "response", "headers"), "set-cookie", NULL)->valuestring, "REDACTED");
  ASSERT(get(j, "tcp_body_log_exchange", NULL) == NULL);
  cJSON_Delete(j);
  free(key);
  down();
}

/* The request body was spooled to a file ($request_body nil): the record
 * says so, with the size from Content-Length. */
TEST(tcp_file_buffered_request_body) {
  up(NULL);
  int64_t inst = start(NULL);
  char ser[4096];
  char *key = response_phase(inst, NULL, 0, "ok", 2);
  serialize_json(ser, sizeof(ser), key, "application/octet-stream", ",\"content-length\":\"16384\"");
  log_phase(inst, ser);
  cJSON *j = one_record();
  ASSERT(get(j, "request", "body") == NULL);
  ASSERT_STREQ(get(j, "request", "body_skipped")->valuestring, "file_buffered");
  ASSERT_EQ(get(j, "request", "body_size")->valuedouble, 16384);
  ASSERT_STREQ(get(j, "response", "body")->valuestring, "ok");
  cJSON_Delete(j);
  free(key);
  down();
}

/* No response phase ran (Kong short-circuited before access): still one
 * record, saying why there are no bodies. */
TEST(tcp_short_circuited_request_still_logged) {
  up(NULL);
  int64_t inst = start(NULL);
  const char *ser = "{\"request\":{\"method\":\"GET\",\"headers\":{}},\"response\":{\"status\":403,"
                    "\"headers\":{}},\"upstream_uri\":\"\",\"source\":\"kong\"}";
  log_phase(inst, ser);
  cJSON *j = one_record();
  ASSERT_STREQ(get(j, "request", "body_skipped")->valuestring, "short_circuited");
  ASSERT_STREQ(get(j, "response", "body_skipped")->valuestring, "short_circuited");
  ASSERT_EQ(get(j, "response", "status")->valuedouble, 403);
  cJSON_Delete(j);
  down();
}

/* Binary bodies go base64; max_body_size truncates and marks. */
TEST(tcp_binary_and_truncated_bodies) {
  up(NULL);
  int64_t inst = start("\"max_body_size\":4");
  char ser[4096];
  static const char bin[] = {(char)0x00, (char)0xff, (char)0x10, (char)0x80};
  char *key = response_phase(inst, bin, 4, "abcdef", 6);
  serialize_json(ser, sizeof(ser), key, "application/octet-stream", NULL);
  log_phase(inst, ser);
  cJSON *j = one_record();
  ASSERT_STREQ(get(j, "request", "body")->valuestring, "AP8QgA==");
  ASSERT_STREQ(get(j, "request", "body_encoding")->valuestring, "base64");
  ASSERT(cJSON_IsFalse(get(j, "request", "body_truncated")));
  ASSERT_STREQ(get(j, "response", "body")->valuestring, "abcd");
  ASSERT(cJSON_IsTrue(get(j, "response", "body_truncated")));
  ASSERT_EQ(get(j, "response", "body_size")->valuedouble, 6);
  cJSON_Delete(j);
  free(key);
  down();
}

/* Redaction of headers and JSON fields, and the content-type filter. */
TEST(tcp_redaction_and_content_type_filter) {
  up(NULL);
  int64_t inst = start("\"redact_json_fields\":[\"password\"],\"redact_headers\":[\"x-secret\"],"
                       "\"content_types\":[\"application/json\"]");
  char ser[4096];
  const char *req = "{\"user\":{\"password\":\"hunter2\"}}";
  char *key = response_phase(inst, req, strlen(req), "plain text", 10);
  serialize_json(ser, sizeof(ser), key, "application/json", ",\"x-secret\":\"s3\"");
  log_phase(inst, ser);
  cJSON *j = one_record();
  ASSERT_STREQ(get(j, "request", "body")->valuestring, "{\"user\":{\"password\":\"REDACTED\"}}");
  ASSERT_STREQ(get(get(j, "request", "headers"), "x-secret", NULL)->valuestring, "REDACTED");
  /* only the configured list applies: cookie is kept */
  ASSERT_STREQ(get(get(j, "request", "headers"), "cookie", NULL)->valuestring, "sid=abc");
  ASSERT_STREQ(get(j, "response", "body_skipped")->valuestring, "content_type");
  ASSERT_EQ(get(j, "response", "body_size")->valuedouble, 10);
  cJSON_Delete(j);
  free(key);
  down();
}

/* The collector is down: records wait in the queue and arrive when it comes
 * up; nothing is lost. */
TEST(tcp_collector_down_then_up) {
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  int port = col.port;
  fk_collector_stop(&col); /* remember a free port, then stop */
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  char cfg[256];
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d}", port);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  for (int i = 0; i < 5; i++) {
    char ser[4096];
    char *key = response_phase(inst, "x", 1, "y", 1);
    serialize_json(ser, sizeof(ser), key, "text/plain", NULL);
    log_phase(inst, ser);
    free(key);
  }
  usleep(300000);
  fk_collector_start(&col, port, NULL);
  ASSERT_EQ(fk_collector_wait_lines(&col, 5, 15000), 5);
  down();
}

/* A collector that never reads: the queue cap holds, drops are counted and
 * RPC replies keep coming (the sink never blocks the loop). */
TEST(tcp_slow_collector_bounded_queue) {
  static const char *const noread[] = {"--no-read", "--rcvbuf", "4096", NULL};
  up(noread);
  int64_t inst = start("\"queue_max_entries\":50,\"queue_max_bytes\":65536");
  char big[3000];
  memset(big, 'b', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  for (int i = 0; i < 400; i++) {
    char ser[8192];
    char *key = response_phase(inst, big, strlen(big), big, strlen(big));
    serialize_json(ser, sizeof(ser), key, "text/plain", NULL);
    log_phase(inst, ser); /* each call must be answered (5 s deadline) */
    free(key);
  }
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call(&k, "plugin.GetStatus", &p, &r);
  const msgpack_object *tbl = fk_map_get(fk_map_get(r.result, "Plugins"), "tcp-body-log");
  int64_t queued = fk_int(fk_map_get(tbl, "records_queued"));
  int64_t refused = fk_int(fk_map_get(tbl, "records_refused"));
  ASSERT_EQ(queued + refused, 400);
  ASSERT(refused > 0);
  const msgpack_object *sinks = fk_map_get(tbl, "sinks");
  ASSERT(sinks != NULL && sinks->type == MSGPACK_OBJECT_MAP && sinks->via.map.size == 1);
  const msgpack_object *s = &sinks->via.map.ptr[0].val;
  ASSERT(fk_int(fk_map_get(s, "queue_depth")) <= 50);
  ASSERT(fk_int(fk_map_get(s, "queue_bytes")) <= 65536);
  const msgpack_object *dropped = fk_map_get(s, "dropped");
  ASSERT_EQ(fk_int(fk_map_get(dropped, "queue_bytes")) + fk_int(fk_map_get(dropped, "queue_entries")) +
                fk_int(fk_map_get(dropped, "too_large")),
            refused);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  fk_client_close(&k);
  /* SIGTERM: the flush deadline bounds the stop even though nothing drains */
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
}

/* GetStatus and --status report the plugin's counters. */
TEST(tcp_status_counters_and_status_flag) {
  up(NULL);
  int64_t inst = start(NULL);
  char ser[4096];
  char *key = response_phase(inst, "a", 1, "b", 1);
  serialize_json(ser, sizeof(ser), key, "text/plain", NULL);
  log_phase(inst, ser);
  free(key);
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 5000), 1);
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "%s --status --socket %s", KPS_SERVER_BIN, srv.socket);
  int sent = 0;
  for (int i = 0; i < 100 && !sent; i++) { /* acknowledged by the collector's TCP */
    FILE *f = popen(cmd, "r");
    char out[16384];
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    ASSERT_EQ(pclose(f), 0);
    cJSON *j = cJSON_Parse(out);
    ASSERT(j != NULL);
    const cJSON *tbl = get(get(j, "Plugins", NULL), "tcp-body-log", NULL);
    ASSERT_EQ(get(tbl, "records_queued", NULL)->valuedouble, 1);
    ASSERT_EQ(get(tbl, "bodies_logged", NULL)->valuedouble, 2);
    const cJSON *sink = get(tbl, "sinks", NULL)->child;
    ASSERT(sink != NULL);
    sent = get(sink, "records_sent", NULL)->valuedouble == 1;
    cJSON_Delete(j);
    if (!sent) usleep(20000);
  }
  ASSERT(sent);
  down();
}

/* An unreadable CA file is refused at StartInstance, naming the field. */
TEST(tcp_bad_tls_config_refused) {
  up(NULL);
  char cfg[512];
  msgpack_sbuffer p;
  fk_reply_t r;
  snprintf(cfg, sizeof(cfg),
           "{\"host\":\"127.0.0.1\",\"port\":%d,\"tls\":true,\"tls_ca_file\":\"/nonexistent/ca.pem\"}",
           col.port);
  msgpack_sbuffer_init(&p);
  fk_param_start_instance(&p, "tcp-body-log", cfg);
  fk_call(&k, "plugin.StartInstance", &p, &r);
  ASSERT_CONTAINS(r.error_str, "tls_ca_file");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d,\"tls_client_cert\":\"/x.pem\"}", col.port);
  msgpack_sbuffer_init(&p);
  fk_param_start_instance(&p, "tcp-body-log", cfg);
  fk_call(&k, "plugin.StartInstance", &p, &r);
  ASSERT_STREQ(r.error_str, "all or none of these fields must be set: 'config.tls_client_cert', "
                            "'config.tls_client_key'");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  down();
}

/* TLS material from test/sink/gen-certs.sh, made fresh for this run. */
static void gen_certs(char *dir, size_t n) {
  char cmd[600];
  snprintf(dir, n, "/tmp/kps-tls-XXXXXX");
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(cmd, sizeof(cmd), "sh %s/test/sink/gen-certs.sh %s/certs >/dev/null 2>&1", KPS_SOURCE_DIR, dir);
  ASSERT_EQ(system(cmd), 0);
}

static int64_t sink_counter(const char *name) {
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call(&k, "plugin.GetStatus", &p, &r);
  const msgpack_object *sinks =
      fk_map_get(fk_map_get(fk_map_get(r.result, "Plugins"), "tcp-body-log"), "sinks");
  int64_t v = (sinks && sinks->type == MSGPACK_OBJECT_MAP && sinks->via.map.size)
                  ? fk_int(fk_map_get(&sinks->via.map.ptr[0].val, name))
                  : -1;
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  return v;
}

/* Done when: the same exchange over TLS, verified, with a client certificate
 * (mTLS) that the collector checks. */
TEST(tls_exchange_one_line_mtls) {
  char dir[64], a1[200], a2[200], a3[200], a4[200], cfg[2048];
  gen_certs(dir, sizeof(dir));
  snprintf(a1, sizeof(a1), "%s/certs/server.pem", dir);
  snprintf(a2, sizeof(a2), "%s/certs/server.key", dir);
  snprintf(a3, sizeof(a3), "%s/certs/ca.pem", dir);
  snprintf(a4, sizeof(a4), "%s/client-cn", dir);
  const char *const args[] = {"--tls-cert", a1, "--tls-key", a2, "--tls-client-ca", a3,
                              "--client-cn-file", a4, NULL};
  up(args);
  snprintf(cfg, sizeof(cfg),
           "\"tls\":true,\"tls_sni\":\"localhost\",\"tls_ca_file\":\"%s/certs/ca.pem\","
           "\"tls_client_cert\":\"%s/certs/client.pem\",\"tls_client_key\":\"%s/certs/client.key\"",
           dir, dir, dir);
  int64_t inst = start(cfg);
  char ser[4096];
  char *key = response_phase(inst, "tls-req", 7, "tls-resp", 8);
  serialize_json(ser, sizeof(ser), key, "text/plain", NULL);
  log_phase(inst, ser);
  cJSON *j = one_record();
  ASSERT_STREQ(get(j, "request", "body")->valuestring, "tls-req");
  ASSERT_STREQ(get(j, "response", "body")->valuestring, "tls-resp");
  ASSERT_STREQ(get(j, "request", "url")->valuestring, "http://127.0.0.1:8000/echo");
  cJSON_Delete(j);
  free(key);
  FILE *f = fopen(a4, "r");
  char cn[128] = "";
  ASSERT(f != NULL && fgets(cn, sizeof(cn), f) != NULL);
  fclose(f);
  ASSERT_CONTAINS(cn, "kps-test-client");
  ASSERT_EQ(sink_counter("tls_failures"), 0);
  down();
}

/* A collector whose certificate is not from the configured CA: refused,
 * counted, nothing delivered, nothing crashes. */
TEST(tls_wrong_ca_refused_and_counted) {
  char dir[64], a1[200], a2[200], cfg[1024];
  gen_certs(dir, sizeof(dir));
  snprintf(a1, sizeof(a1), "%s/certs/server.pem", dir);
  snprintf(a2, sizeof(a2), "%s/certs/server.key", dir);
  const char *const args[] = {"--tls-cert", a1, "--tls-key", a2, NULL};
  up(args);
  snprintf(cfg, sizeof(cfg), "\"tls\":true,\"tls_sni\":\"localhost\",\"tls_ca_file\":\"%s/certs/wrongca.pem\"",
           dir);
  int64_t inst = start(cfg);
  char ser[4096];
  char *key = response_phase(inst, "a", 1, "b", 1);
  serialize_json(ser, sizeof(ser), key, "text/plain", NULL);
  log_phase(inst, ser);
  free(key);
  int64_t failures = 0;
  for (int i = 0; i < 500 && failures == 0; i++) {
    usleep(10000);
    failures = sink_counter("tls_failures");
  }
  ASSERT(failures >= 1);
  ASSERT_EQ(sink_counter("records_sent"), 0);
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 200), 0);
  down();
}

/* SIGTERM with records queued (the collector was down): the flush delivers
 * them before exit, within the deadline. */
TEST(sigterm_flushes_queued_records) {
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  int port = col.port;
  fk_collector_stop(&col);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  char cfg[256];
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d}", port);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  for (int i = 0; i < 200; i++) {
    char ser[4096];
    char *key = response_phase(inst, "q", 1, "r", 1);
    serialize_json(ser, sizeof(ser), key, "text/plain", NULL);
    log_phase(inst, ser);
    free(key);
  }
  ASSERT_EQ(sink_counter("queue_depth"), 200);
  fk_collector_start(&col, port, NULL);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0); /* SIGTERM while all 200 are queued */
  ASSERT_EQ(fk_collector_wait_lines(&col, 200, 2000), 200);
  char *log = fk_server_log(&srv);
  ASSERT(strstr(log, "handles still open") == NULL);
  free(log);
  fk_collector_stop(&col);
}
