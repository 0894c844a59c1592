/* kong_helpers.h: Kong's side of whole exchanges, shared by the hostile
 * input, fault and safe-default tests (header-only: each test binary is
 * one source file).  Calls go through the fake-Kong client exactly as in
 * test_tcp_body_log.c. */
#ifndef KPS_KONG_HELPERS_H
#define KPS_KONG_HELPERS_H

#include <time.h>
#include <unistd.h>

#include "fake_kong.h"
#include "test.h"

static inline int64_t kh_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void kh_handle(fk_client_t *k, int64_t inst, const char *phase, fk_reply_t *r) {
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, phase);
  fk_call(k, "plugin.HandleEvent", &p, r);
  msgpack_sbuffer_destroy(&p);
}

/* Step whose Data is `packed` (NULL = no Data key). */
static inline void kh_step(fk_client_t *k, int64_t ev, const msgpack_sbuffer *packed, fk_reply_t *r) {
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, packed ? packed->data : NULL, packed ? packed->size : 0);
  fk_call(k, "plugin.Step", &p, r);
  msgpack_sbuffer_destroy(&p);
}

static inline void kh_expect_method(const fk_reply_t *r, const char *method) {
  if (r->error_str[0]) FAIL("unexpected error: %s", r->error_str);
  char *m = fk_strdup_obj(fk_map_get(fk_map_get(r->result, "Data"), "Method"));
  ASSERT_STREQ(m, method);
  free(m);
}

static inline void kh_expect_ret(const fk_reply_t *r) {
  if (r->error_str[0]) FAIL("unexpected error: %s", r->error_str);
  ASSERT(fk_str_eq(fk_map_get(r->result, "Data"), "ret"));
}

/* tcp-body-log's response phase; returns the join key (malloc'd).
 * req_body NULL: $request_body was nil. */
static inline char *kh_response_phase(fk_client_t *k, int64_t inst, const char *req_body, size_t req_len,
                                      const char *resp_body, size_t resp_len) {
  fk_reply_t r;
  msgpack_sbuffer d;
  msgpack_packer pk;
  kh_handle(k, inst, "response", &r);
  kh_expect_method(&r, "kong.log.set_serialize_value");
  const msgpack_object *args = fk_map_get(fk_map_get(r.result, "Data"), "Args");
  char *key = fk_strdup_obj(&args->via.array.ptr[1]);
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);
  kh_step(k, ev, NULL, &r);
  kh_expect_method(&r, "kong.nginx.get_var");
  fk_reply_free(&r);
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  if (req_body) fk_pack_str(&pk, req_body, req_len);
  kh_step(k, ev, req_body ? &d : NULL, &r);
  kh_expect_method(&r, "kong.service.response.get_raw_body");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  msgpack_pack_bin_with_body(&pk, resp_body, resp_len);
  kh_step(k, ev, &d, &r);
  kh_expect_ret(&r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
  return key;
}

static inline void kh_log_phase(fk_client_t *k, int64_t inst, const char *serialize) {
  fk_reply_t r;
  msgpack_sbuffer d;
  msgpack_packer pk;
  kh_handle(k, inst, "log", &r);
  kh_expect_method(&r, "kong.log.serialize");
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  fk_pack_cstr(&pk, serialize);
  kh_step(k, ev, &d, &r);
  kh_expect_ret(&r);
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
}

/* A kong.log.serialize() output in Kong 3.x's shape, with extra request
 * and response headers (",\"name\":\"value\"..." or ""). */
static inline void kh_serialize(char *out, size_t n, const char *key, const char *req_ct,
                                const char *req_headers, const char *resp_headers) {
  snprintf(out, n,
           "{\"request\":{\"id\":\"2372e68d\",\"uri\":\"/echo\",\"url\":\"http://127.0.0.1:8000/echo\","
           "\"querystring\":{},\"method\":\"POST\",\"headers\":{\"host\":\"127.0.0.1:8000\","
           "\"content-type\":\"%s\"%s},\"size\":87},\"upstream_uri\":\"/echo\",\"upstream_status\":200,"
           "\"response\":{\"status\":200,\"headers\":{\"content-type\":\"application/json\"%s},\"size\":191},"
           "\"latencies\":{\"kong\":1,\"proxy\":2,\"request\":4,\"receive\":0},"
           "\"tries\":[{\"ip\":\"127.0.0.1\",\"port\":18101}],\"client_ip\":\"127.0.0.1\","
           "\"started_at\":1795684822308,\"source\":\"service\"%s%s%s}",
           req_ct, req_headers ? req_headers : "", resp_headers ? resp_headers : "",
           key ? ",\"tcp_body_log_exchange\":\"" : "", key ? key : "", key ? "\"" : "");
}

/* GetStatus: a counter of the first tcp-body-log sink, of the plugin, or
 * of the server (-999999 when absent). */
static inline int64_t kh_status(fk_client_t *k, const char *where, const char *name) {
  msgpack_sbuffer p;
  fk_reply_t r;
  int64_t v = -999999;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call(k, "plugin.GetStatus", &p, &r);
  const msgpack_object *tbl = fk_map_get(fk_map_get(r.result, "Plugins"), "tcp-body-log");
  if (strcmp(where, "sink") == 0) {
    const msgpack_object *sinks = fk_map_get(tbl, "sinks");
    if (sinks && sinks->type == MSGPACK_OBJECT_MAP && sinks->via.map.size)
      v = fk_int(fk_map_get(&sinks->via.map.ptr[0].val, name));
  } else if (strcmp(where, "plugin") == 0) {
    v = fk_int(fk_map_get(tbl, name));
  } else {
    v = fk_int(fk_map_get(fk_map_get(r.result, "Counters"), name));
    if (v == -999999) v = fk_int(fk_map_get(r.result, name));
  }
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  return v;
}

/* TLS material from test/sink/gen-certs.sh, fresh for this run, in dir. */
static inline void kh_gen_certs(char *dir, size_t n) {
  char cmd[600];
  snprintf(dir, n, "/tmp/kps-tls-XXXXXX");
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(cmd, sizeof(cmd), "sh %s/test/sink/gen-certs.sh %s/certs >/dev/null 2>&1", KPS_SOURCE_DIR, dir);
  ASSERT_EQ(system(cmd), 0);
}

#endif
