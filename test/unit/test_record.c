/* test_record.c: tcp-body-log's record builder and body helpers: the exact
 * fields a record carries for each kind of body. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>

#include "body.h"
#include "exchange.h"
#include "record.h"
#include "test.h"

static const char *const redact_default[] = {"authorization", "proxy-authorization", "cookie",
                                             "set-cookie"};

static tbl_record_opts_t opts(size_t max) {
  tbl_record_opts_t o = {0};
  o.max_body_size = max;
  o.log_request_body = o.log_response_body = 1;
  o.redact_headers = redact_default;
  o.nredact_headers = 4;
  return o;
}

#define SERIALIZE_WITH_KEY(key)                                                            \
  "{\"request\":{\"method\":\"POST\",\"headers\":{\"content-type\":\"application/json\","   \
  "\"authorization\":\"REDACTED\",\"cookie\":\"sid=secret\",\"content-length\":\"27\"},"     \
  "\"size\":120},\"response\":{\"status\":200,\"headers\":{\"content-type\":\"text/plain\","   \
  "\"set-cookie\":[\"a=1\",\"b=2\"]},\"size\":300},\"upstream_uri\":\"/echo\","            \
  "\"tries\":[{\"ip\":\"127.0.0.1\"}],\"source\":\"service\",\"started_at\":1795684822308,"  \
  "\"" TBL_EXCHANGE_KEY "\":\"" key "\"}"

/* Builds a record for an exchange holding req/resp bodies. */
static cJSON *build(const char *req, size_t reqlen, const char *resp, size_t resplen,
                    const tbl_record_opts_t *o) {
  char key[TBL_KEY_MAX], ser[2048], err[128];
  tbl_exchange_t *ex = tbl_exchange_new(1000, key);
  ASSERT(ex != NULL);
  if (req) tbl_exchange_capture(ex, &ex->req, req, reqlen, o->max_body_size);
  else ex->req.state = TBL_BODY_NIL;
  if (resp) tbl_exchange_capture(ex, &ex->resp, resp, resplen, o->max_body_size);
  snprintf(ser, sizeof(ser), SERIALIZE_WITH_KEY("%s"), key);
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), o, 1001, &n, err, sizeof(err));
  ASSERT(line != NULL);
  ASSERT_EQ(line[n - 1], '\n');
  ASSERT(memchr(line, '\n', n - 1) == NULL); /* one line */
  cJSON *j = cJSON_Parse(line);
  free(line);
  ASSERT(j != NULL);
  return j;
}

static const cJSON *at(const cJSON *j, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
  return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

TEST(record_text_bodies_and_serialize_fields) {
  tbl_record_opts_t o = opts(8192);
  const char *req = "{\"a\":1,\"password\":\"pw\"}";
  cJSON *j = build(req, strlen(req), "hello", 5, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "{\"a\":1,\"password\":\"pw\"}");
  ASSERT_STREQ(at(j, "request", "body_encoding")->valuestring, "text");
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 23);
  ASSERT(cJSON_IsFalse(at(j, "request", "body_truncated")));
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "hello");
  ASSERT_EQ(at(j, "response", "body_size")->valuedouble, 5);
  /* serialize fields kept, join key removed */
  ASSERT_STREQ(at(j, "request", "method")->valuestring, "POST");
  ASSERT_EQ(at(j, "request", "size")->valuedouble, 120);
  ASSERT_EQ(at(j, "started_at", NULL)->valuedouble, 1795684822308.0);
  ASSERT_STREQ(at(j, "upstream_uri", NULL)->valuestring, "/echo");
  ASSERT(at(j, TBL_EXCHANGE_KEY, NULL) == NULL);
  cJSON_Delete(j);
}

TEST(record_redacts_headers) {
  tbl_record_opts_t o = opts(8192);
  cJSON *j = build("", 0, "", 0, &o);
  const cJSON *rh = at(j, "request", "headers"), *sh = at(j, "response", "headers");
  ASSERT_STREQ(cJSON_GetObjectItem(rh, "cookie")->valuestring, "REDACTED");
  ASSERT_STREQ(cJSON_GetObjectItem(rh, "authorization")->valuestring, "REDACTED");
  ASSERT_STREQ(cJSON_GetObjectItem(rh, "content-type")->valuestring, "application/json");
  ASSERT_STREQ(cJSON_GetObjectItem(sh, "set-cookie")->valuestring, "REDACTED");
  cJSON_Delete(j);
}

TEST(record_empty_body) {
  tbl_record_opts_t o = opts(8192);
  cJSON *j = build("", 0, "", 0, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "");
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 0);
  ASSERT_STREQ(at(j, "request", "body_encoding")->valuestring, "text");
  cJSON_Delete(j);
}

TEST(record_binary_body_base64) {
  tbl_record_opts_t o = opts(8192);
  static const char bin[] = {(char)0xff, (char)0x00, (char)0x80, 'a'};
  cJSON *j = build("x", 1, bin, 4, &o);
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "/wCAYQ==");
  ASSERT_STREQ(at(j, "response", "body_encoding")->valuestring, "base64");
  ASSERT_EQ(at(j, "response", "body_size")->valuedouble, 4);
  cJSON_Delete(j);
}

TEST(record_nul_byte_goes_base64) {
  tbl_record_opts_t o = opts(8192);
  cJSON *j = build("a\0b", 3, "", 0, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "YQBi");
  ASSERT_STREQ(at(j, "request", "body_encoding")->valuestring, "base64");
  cJSON_Delete(j);
}

TEST(record_body_exactly_max_and_one_over) {
  tbl_record_opts_t o = opts(8);
  cJSON *j = build("12345678", 8, "123456789", 9, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "12345678");
  ASSERT(cJSON_IsFalse(at(j, "request", "body_truncated")));
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "12345678");
  ASSERT(cJSON_IsTrue(at(j, "response", "body_truncated")));
  ASSERT_EQ(at(j, "response", "body_size")->valuedouble, 9);
  cJSON_Delete(j);
}

TEST(record_truncation_keeps_utf8_whole) {
  tbl_record_opts_t o = opts(4);
  /* "aé€" = 61 c3a9 e282ac: a cut at 4 would split the euro sign */
  cJSON *j = build("a\xc3\xa9\xe2\x82\xac", 6, "", 0, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "a\xc3\xa9");
  ASSERT_STREQ(at(j, "request", "body_encoding")->valuestring, "text");
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 6);
  cJSON_Delete(j);
}

TEST(record_json_fields_masked_at_depth) {
  static const char *const fields[] = {"password", "token"};
  tbl_record_opts_t o = opts(8192);
  o.redact_json_fields = fields;
  o.nredact_json_fields = 2;
  const char *body = "{\"user\":\"a\",\"password\":\"pw1\",\"deep\":{\"x\":[{\"Token\":{\"v\":1}},"
                     "{\"token\":42}]},\"note\":\"password\"}";
  cJSON *j = build(body, strlen(body), "[{\"password\": \"p2\"}]", 20, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring,
               "{\"user\":\"a\",\"password\":\"REDACTED\",\"deep\":{\"x\":[{\"Token\":\"REDACTED\"},"
               "{\"token\":\"REDACTED\"}]},\"note\":\"password\"}");
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "[{\"password\": \"REDACTED\"}]");
  cJSON_Delete(j);
}

TEST(record_json_mask_on_truncated_body) {
  static const char *const fields[] = {"secret"};
  tbl_record_opts_t o = opts(20);
  o.redact_json_fields = fields;
  o.nredact_json_fields = 1;
  /* cut inside the secret's value: the rest is masked, nothing leaks */
  cJSON *j = build("{\"a\":1,\"secret\":\"abcdefghijkl\"}", 31, "", 0, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "{\"a\":1,\"secret\":\"REDACTED\"");
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  cJSON_Delete(j);
}

TEST(record_content_type_filter) {
  static const char *const types[] = {"text/*"};
  tbl_record_opts_t o = opts(8192);
  o.content_types = types;
  o.ncontent_types = 1;
  cJSON *j = build("{\"a\":1}", 7, "ok", 2, &o);
  ASSERT(at(j, "request", "body") == NULL);
  ASSERT_STREQ(at(j, "request", "body_skipped")->valuestring, "content_type");
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 7);
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "ok"); /* text/plain passes */
  cJSON_Delete(j);
}

TEST(record_request_body_in_file) {
  tbl_record_opts_t o = opts(8192);
  cJSON *j = build(NULL, 0, "", 0, &o); /* $request_body was nil, content-length 27 */
  ASSERT(at(j, "request", "body") == NULL);
  ASSERT_STREQ(at(j, "request", "body_skipped")->valuestring, "file_buffered");
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 27);
  cJSON_Delete(j);
}

TEST(record_disabled_bodies) {
  tbl_record_opts_t o = opts(8192);
  o.log_request_body = 0;
  cJSON *j = build("abc", 3, "def", 3, &o);
  ASSERT_STREQ(at(j, "request", "body_skipped")->valuestring, "disabled");
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "def");
  cJSON_Delete(j);
}

TEST(record_short_circuited_without_key) {
  tbl_record_opts_t o = opts(8192);
  const char *ser = "{\"request\":{\"headers\":{}},\"response\":{\"status\":403,\"headers\":{}},"
                    "\"upstream_uri\":\"\",\"source\":\"kong\"}";
  char err[128];
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
  cJSON *j = cJSON_Parse(line);
  free(line);
  ASSERT_STREQ(at(j, "request", "body_skipped")->valuestring, "short_circuited");
  ASSERT_STREQ(at(j, "response", "body_skipped")->valuestring, "short_circuited");
  ASSERT_EQ(at(j, "response", "status")->valuedouble, 403);
  cJSON_Delete(j);
}

TEST(record_proxied_without_response_phase) {
  tbl_record_opts_t o = opts(8192);
  const char *ser = "{\"request\":{\"headers\":{}},\"response\":{\"status\":101,\"headers\":{}},"
                    "\"upstream_uri\":\"/ws\",\"tries\":[{\"ip\":\"127.0.0.1\"}],\"source\":\"service\"}";
  char err[128];
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
  cJSON *j = cJSON_Parse(line);
  free(line);
  ASSERT_STREQ(at(j, "response", "body_skipped")->valuestring, "no_response_phase");
  cJSON_Delete(j);
}

TEST(record_key_from_another_process_is_lost) {
  tbl_record_opts_t o = opts(8192);
  const char *ser = "{\"request\":{},\"response\":{},\"" TBL_EXCHANGE_KEY "\":\"00000000-1\"}";
  char err[128];
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
  cJSON *j = cJSON_Parse(line);
  free(line);
  ASSERT_STREQ(at(j, "request", "body_skipped")->valuestring, "context_lost");
  ASSERT_STREQ(at(j, "response", "body_skipped")->valuestring, "context_lost");
  cJSON_Delete(j);
}

TEST(record_invalid_serialize_refused) {
  tbl_record_opts_t o = opts(8192);
  char err[128];
  size_t n;
  ASSERT(tbl_record_build("[1,2]", 5, &o, 5, &n, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "did not return a JSON object");
  ASSERT(tbl_record_build("{\"a\":", 5, &o, 5, &n, err, sizeof(err)) == NULL);
}

TEST(exchange_ttl_and_entry_cap) {
  char key[TBL_KEY_MAX], key2[TBL_KEY_MAX];
  tbl_exchange_stats_t s0, s1;
  tbl_exchange_get_stats(&s0);
  tbl_exchange_set_limits(100, 1 << 20, 2);
  tbl_exchange_new(0, key);
  tbl_exchange_new(0, key2);
  tbl_exchange_new(0, key2); /* third: the oldest is evicted */
  ASSERT(tbl_exchange_take(key, strlen(key), 1) == NULL);
  tbl_exchange_t *ex = tbl_exchange_take(key2, strlen(key2), 1);
  ASSERT(ex != NULL);
  tbl_exchange_free(ex);
  tbl_exchange_new(0, key);
  ASSERT(tbl_exchange_take(key, strlen(key), 200) == NULL); /* past the TTL */
  tbl_exchange_get_stats(&s1);
  ASSERT_EQ(s1.evicted - s0.evicted, 1);
  ASSERT_EQ(s1.lost - s0.lost, 2);
  ASSERT(s1.expired - s0.expired >= 1);
  tbl_exchange_clear();
}

/* The join key's exact shape, and a strict reading of it: anything but
 * 8 lowercase hex digits, '-' and the decimal id is not ours. */
TEST(exchange_key_shape_and_strict_parse) {
  char key[TBL_KEY_MAX], bad[TBL_KEY_MAX + 8];
  tbl_exchange_set_limits(100000, 1 << 20, 100);
  tbl_exchange_t *ex = tbl_exchange_new(0, key);
  ASSERT(ex != NULL);
  size_t len = strlen(key);
  ASSERT(len >= 10);
  ASSERT_EQ(key[8], '-');
  for (size_t i = 0; i < 8; i++) ASSERT(strchr("0123456789abcdef", key[i]) != NULL);
  char idtext[24];
  snprintf(idtext, sizeof(idtext), "%lld", (long long)ex->node.id);
  ASSERT_EQ(strcmp(key + 9, idtext), 0);
  tbl_exchange_stats_t s0, s1;
  tbl_exchange_get_stats(&s0);
  static const char *const around[][2] = {{" ", ""}, {"", " "}, {"+", ""}, {"0x", ""}, {"", "0"}, {"", "-1"}};
  for (size_t f = 0; f < sizeof(around) / sizeof(around[0]); f++) {
    snprintf(bad, sizeof(bad), "%s%s%s", around[f][0], key, around[f][1]);
    ASSERT(tbl_exchange_take(bad, strlen(bad), 1) == NULL);
  }
  snprintf(bad, sizeof(bad), "%s", key);
  bad[0] = bad[0] == 'f' ? 'e' : 'f'; /* another process's nonce */
  ASSERT(tbl_exchange_take(bad, len, 1) == NULL);
  bad[0] = key[0];
  for (size_t i = 0; i < 8; i++) bad[i] = (char)toupper((unsigned char)key[i]);
  if (strcmp(bad, key) != 0) ASSERT(tbl_exchange_take(bad, len, 1) == NULL);
  tbl_exchange_get_stats(&s1);
  ASSERT(s1.lost - s0.lost >= 7);
  ASSERT(tbl_exchange_take(key, len, 1) == ex); /* still there, untouched */
  tbl_exchange_free(ex);
  tbl_exchange_clear();
}

TEST(exchange_byte_cap_evicts_older) {
  char k1[TBL_KEY_MAX], k2[TBL_KEY_MAX];
  static char big[600];
  tbl_exchange_set_limits(100000, 1000, 100);
  tbl_exchange_t *a = tbl_exchange_new(0, k1);
  tbl_exchange_capture(a, &a->req, big, sizeof(big), 1 << 20);
  tbl_exchange_t *b = tbl_exchange_new(0, k2);
  tbl_exchange_capture(b, &b->req, big, sizeof(big), 1 << 20); /* evicts a */
  ASSERT(tbl_exchange_take(k1, strlen(k1), 1) == NULL);
  tbl_exchange_t *got = tbl_exchange_take(k2, strlen(k2), 1);
  ASSERT(got != NULL);
  ASSERT_EQ(got->req.len, 600);
  tbl_exchange_free(got);
  tbl_exchange_clear();
}

TEST(content_type_patterns) {
  static const char *const p[] = {"application/json", "text/*", "application/*+json"};
  ASSERT(tbl_content_type_allowed("application/json; charset=utf-8", 31, p, 3));
  ASSERT(tbl_content_type_allowed("TEXT/HTML", 9, p, 3));
  ASSERT(tbl_content_type_allowed("application/problem+json", 24, p, 3));
  ASSERT(!tbl_content_type_allowed("application/octet-stream", 24, p, 3));
  ASSERT(!tbl_content_type_allowed(NULL, 0, p, 3));
  ASSERT(tbl_content_type_allowed(NULL, 0, p, 0));
}

TEST(utf8_validation) {
  ASSERT_EQ(tbl_utf8_valid_prefix("abc", 3), 3);
  ASSERT_EQ(tbl_utf8_valid_prefix("a\xc3", 2), 1);           /* cut sequence */
  ASSERT_EQ(tbl_utf8_valid_prefix("\xc0\x80", 2), 0);        /* overlong */
  ASSERT_EQ(tbl_utf8_valid_prefix("\xed\xa0\x80", 3), 0);    /* surrogate */
  ASSERT_EQ(tbl_utf8_valid_prefix("\xf0\x9f\x98\x80", 4), 4); /* emoji */
}

/* The record is Kong's serialize text with edits spliced in: numbers,
 * escapes and key order exactly as Kong wrote them. */
TEST(record_exact_bytes_spliced) {
  tbl_record_opts_t o = opts(8192);
  char key[TBL_KEY_MAX], ser[1024], err[128];
  tbl_exchange_t *ex = tbl_exchange_new(1000, key);
  tbl_exchange_capture(ex, &ex->req, "a\"b\n", 4, 8192);
  tbl_exchange_capture(ex, &ex->resp, "ok", 2, 8192);
  snprintf(ser, sizeof(ser),
           "{\"upstream_uri\":\"\\/echo\",\"tries\":[{\"balancer_start_ns\":1.795684822312e+18}],"
           "\"" TBL_EXCHANGE_KEY "\":\"%s\",\"request\":{\"headers\":{\"cookie\":[\"a\",\"b\"],"
           "\"content-type\":\"text\\/plain\"},\"body\":\"theirs\",\"size\":87},"
           "\"response\":{\"status\":200},\"started_at\":1795684822308}",
           key);
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 1001, &n, err, sizeof(err));
  ASSERT(line != NULL);
  ASSERT_STREQ(line,
               "{\"upstream_uri\":\"\\/echo\",\"tries\":[{\"balancer_start_ns\":1.795684822312e+18}],"
               "\"request\":{\"headers\":{\"cookie\":\"REDACTED\",\"content-type\":\"text\\/plain\"},"
               "\"size\":87,\"body\":\"a\\\"b\\n\",\"body_encoding\":\"text\",\"body_size\":4,"
               "\"body_truncated\":false},\"response\":{\"status\":200,\"body\":\"ok\","
               "\"body_encoding\":\"text\",\"body_size\":2,\"body_truncated\":false},"
               "\"started_at\":1795684822308}\n");
  ASSERT_EQ(n, strlen(line));
  free(line);
}

/* A request object repeated in serialize: every copy is redacted. */
TEST(record_duplicate_request_objects_all_redacted) {
  tbl_record_opts_t o = opts(8192);
  const char *ser = "{\"request\":{\"headers\":{\"cookie\":\"one\"}},\"request\":{\"headers\":{\"cookie\":\"two\"}}}";
  char err[128];
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
  ASSERT(line != NULL);
  ASSERT(strstr(line, "one") == NULL && strstr(line, "two") == NULL);
  free(line);
}

/* Anything that is not one JSON object is refused, never half-copied. */
TEST(record_malformed_serialize_refused) {
  static const char *const bad[] = {"", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":tru}",
                                    "{\"a\":\"\\q\"}", "{\"a\":[1,]}", "{\"a\":-}", "{\"a\":1.}",
                                    "{\"a\":\"x\n\"}"};
  tbl_record_opts_t o = opts(8192);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char err[128];
    size_t n;
    char *line = tbl_record_build(bad[i], strlen(bad[i]), &o, 5, &n, err, sizeof(err));
    if (line != NULL) FAIL("accepted malformed serialize %s -> %s", bad[i], line);
  }
}

/* Whitespace between tokens (not Kong's cjson, but valid JSON) is dropped
 * outside strings: the record stays one line, strings stay intact. */
TEST(record_pretty_serialize_stays_one_line) {
  tbl_record_opts_t o = opts(8192);
  const char *ser = "{ \"route\" : {\n  \"paths\": [ \"/a b\" ]\n},\n \"request\": {\"headers\": {}} }";
  char err[128];
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
  ASSERT(line != NULL);
  ASSERT_STREQ(line, "{\"route\":{\"paths\":[\"/a b\"]},\"request\":{\"headers\":{},\"body_skipped\":\"short_circuited\"},"
                     "\"response\":{\"body_skipped\":\"short_circuited\"}}\n");
  free(line);
}
