/* test_record.c: tcp-body-log's record builder and body helpers: the exact
 * fields a record carries for each kind of body. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>

#include "body.h"
#include "exchange.h"
#include "record.h"
#include "serialize_shapes.h"
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

/* Builds a record for an exchange holding req/resp bodies. */
static cJSON *build(const char *req, size_t reqlen, const char *resp, size_t resplen,
                    const tbl_record_opts_t *o) {
  char key[TBL_KEY_MAX], ser[4096], err[128];
  tbl_exchange_t *ex = tbl_exchange_new(1000, key);
  ASSERT(ex != NULL);
  if (req) tbl_exchange_capture(ex, &ex->req, req, reqlen, o->max_body_size);
  else ex->req.state = TBL_BODY_NIL;
  if (resp) tbl_exchange_capture(ex, &ex->resp, resp, resplen, o->max_body_size);
  snprintf(ser, sizeof(ser), SHAPE_39_PROXIED(SHAPE_KEY("%s")), key);
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
  ASSERT_EQ(at(j, "request", "size")->valuedouble, 172);
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
  /* cut inside the secret's value: the rest is masked, nothing leaks; the
   * masked text is cut back to max_body_size (R61) */
  cJSON *j = build("{\"a\":1,\"secret\":\"abcdefghijkl\"}", 31, "", 0, &o);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "{\"a\":1,\"secret\":\"RED");
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

/* Builds the record for a serialize text and returns the two reasons. */
static void skipped_reasons(const char *ser, const char *want_req, const char *want_resp) {
  tbl_record_opts_t o = opts(8192);
  char err[128];
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
  ASSERT(line != NULL);
  cJSON *j = cJSON_Parse(line);
  free(line);
  ASSERT(j != NULL);
  ASSERT(at(j, "request", "body") == NULL);
  ASSERT(at(j, "response", "body") == NULL);
  ASSERT_STREQ(at(j, "request", "body_skipped")->valuestring, want_req);
  ASSERT_STREQ(at(j, "response", "body_skipped")->valuestring, want_resp);
  cJSON_Delete(j);
}

/* R60: another plugin ended the request in access.  Kong 3.4 writes no
 * "source" but upstream_uri is set (the router ran first): only tries []
 * and latencies.proxy -1 tell that Kong never sent it on. */
TEST(record_short_circuited_kong_3_4) {
  skipped_reasons(SHAPE_34_SHORT_CIRCUITED, "short_circuited", "short_circuited");
}

TEST(record_short_circuited_kong_3_9) {
  skipped_reasons(SHAPE_39_SHORT_CIRCUITED, "short_circuited", "short_circuited");
}

TEST(record_no_route_kong_3_9) {
  skipped_reasons(SHAPE_39_NO_ROUTE, "short_circuited", "short_circuited");
}

/* R60: the balancer tried a dead service: Kong sent it on (a failed try),
 * but the response phase never ran, in both eras. */
TEST(record_upstream_dead_kong_3_4) {
  skipped_reasons(SHAPE_34_UPSTREAM_DEAD, "no_response_phase", "no_response_phase");
}

TEST(record_upstream_dead_kong_3_9) {
  skipped_reasons(SHAPE_39_UPSTREAM_DEAD, "no_response_phase", "no_response_phase");
}

/* R60: proxied without the response phase (an Upgrade request is never
 * buffered), so there is no join key; 3.4 without "source": the try and a
 * proxy latency say it reached the service. */
TEST(record_proxied_without_key_kong_3_4) {
  skipped_reasons(SHAPE_34_PROXIED(""), "no_response_phase", "no_response_phase");
}

TEST(record_proxied_without_key_kong_3_9) {
  skipped_reasons(SHAPE_39_PROXIED(""), "no_response_phase", "no_response_phase");
}

/* A key from another server process (restarted between phases). */
TEST(record_key_from_another_process_is_lost) {
  skipped_reasons(SHAPE_39_PROXIED(SHAPE_KEY("00000000-1")), "context_lost", "context_lost");
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
 * escapes and key order exactly as Kong wrote them; the join key left out;
 * header values redacted; body fields another plugin set replaced by ours
 * (appended at the end of request and response). */
#define BODIES_REQ                                                                          \
  ",\"body\":\"a\\\"b\\n\",\"body_encoding\":\"text\",\"body_size\":4,\"body_truncated\":false"
#define BODIES_RESP ",\"body\":\"ok\",\"body_encoding\":\"text\",\"body_size\":2,\"body_truncated\":false"

/* `tmpl` with its "@KEY@" replaced by key. */
static void with_key(const char *tmpl, const char *key, char *out, size_t cap) {
  const char *at_key = strstr(tmpl, "@KEY@");
  ASSERT(at_key != NULL);
  int n = snprintf(out, cap, "%.*s%s%s", (int)(at_key - tmpl), tmpl, key, at_key + 5);
  ASSERT(n > 0 && (size_t)n < cap);
}

static void exact_bytes(const char *ser_tmpl, const char *want) {
  tbl_record_opts_t o = opts(8192);
  char key[TBL_KEY_MAX], ser[4096], err[128];
  tbl_exchange_t *ex = tbl_exchange_new(1000, key);
  tbl_exchange_capture(ex, &ex->req, "a\"b\n", 4, 8192);
  tbl_exchange_capture(ex, &ex->resp, "ok", 2, 8192);
  with_key(ser_tmpl, key, ser, sizeof(ser));
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 1001, &n, err, sizeof(err));
  ASSERT(line != NULL);
  ASSERT_STREQ(line, want);
  ASSERT_EQ(n, strlen(line));
  free(line);
}

TEST(record_exact_bytes_spliced_kong_3_4) {
  exact_bytes(SHAPE_34_X(SHAPE_KEY("@KEY@"), SHAPE_REQ_HEADERS, ",\"body\":\"theirs\"",
                         SHAPE_RESP_HEADERS, ""),
              SHAPE_34_X("", SHAPE_REQ_HEADERS_REDACTED, BODIES_REQ, SHAPE_RESP_HEADERS_REDACTED,
                         BODIES_RESP) "\n");
}

TEST(record_exact_bytes_spliced_kong_3_9) {
  exact_bytes(SHAPE_39_X(SHAPE_KEY("@KEY@"), SHAPE_REQ_HEADERS, "", SHAPE_RESP_HEADERS,
                         ",\"body_skipped\":\"theirs\""),
              SHAPE_39_X("", SHAPE_REQ_HEADERS_REDACTED, BODIES_REQ, SHAPE_RESP_HEADERS_REDACTED,
                         BODIES_RESP) "\n");
}

/* ---- hostile input ------------------------------------------------------
 * The tests below feed what Kong never writes (repeated keys, whitespace,
 * broken JSON): the builder must not trust its input. */

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

/* ---- the size bound (R61) -------------------------------------------------
 * Whatever the bytes, a body field takes at most base64 of max_body_size
 * bytes: 4 * ceil(8192 / 3) = 10924 at the default, plus its quotes. */

static size_t line_len(const char *req, size_t reqlen, const char *resp, size_t resplen,
                       const tbl_record_opts_t *o, char **out) {
  char key[TBL_KEY_MAX], ser[4096], err[128];
  tbl_exchange_t *ex = tbl_exchange_new(1000, key);
  ASSERT(ex != NULL);
  tbl_exchange_capture(ex, &ex->req, req, reqlen, o->max_body_size);
  tbl_exchange_capture(ex, &ex->resp, resp, resplen, o->max_body_size);
  snprintf(ser, sizeof(ser), SHAPE_39_PROXIED(SHAPE_KEY("%s")), key);
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), o, 1001, &n, err, sizeof(err));
  ASSERT(line != NULL);
  if (out) *out = line;
  else free(line);
  return n;
}

/* Both bodies of one worst-case kind at exactly max_body_size bytes. */
static void worst_case(const char *what, const char *body, size_t len, const char *want_encoding,
                       size_t want_line) {
  tbl_record_opts_t o = opts(8192);
  char *line;
  size_t base = line_len("", 0, "", 0, &o, NULL);
  size_t n = line_len(body, len, body, len, &o, &line);
  cJSON *j = cJSON_Parse(line);
  ASSERT(j != NULL);
  for (int side = 0; side < 2; side++) {
    const char *part = side ? "response" : "request";
    ASSERT_STREQ(at(j, part, "body_encoding")->valuestring, want_encoding);
    ASSERT_EQ(at(j, part, "body_size")->valuedouble, (double)len);
  }
  cJSON_Delete(j);
  /* two bodies of at most 10924 bytes each; "0" -> "8192", "text" -> "base64" */
  if (n - base > 2 * (10924 + 5)) FAIL("%s: record grew by %zu bytes", what, n - base);
  if (n != want_line) FAIL("%s: record of %zu bytes, expected %zu", what, n, want_line);
  free(line);
}

TEST(record_size_bound_worst_case_bytes) {
  static char body[8192];
  size_t base64_line;
  tbl_record_opts_t o = opts(8192);
  size_t base = line_len("", 0, "", 0, &o, NULL);
  ASSERT_EQ(base, 1808);
  base64_line = base + 2 * (10924 - 0) + 2 * 3 + 2 * (6 - 4); /* "text" -> "base64" */
  memset(body, 0x01, sizeof(body)); /* escapes to \u0001: 6 bytes each as text */
  worst_case("control characters", body, sizeof(body), "base64", base64_line);
  for (size_t i = 0; i < sizeof(body); i++) body[i] = i % 2 ? '\\' : '"'; /* 2 bytes each */
  worst_case("quotes and backslashes", body, sizeof(body), "base64", base64_line);
  for (size_t i = 0; i < sizeof(body); i++) body[i] = i % 3 ? 'a' : (char)0xe9; /* not UTF-8 */
  worst_case("invalid UTF-8 in text", body, sizeof(body), "base64", base64_line);
  /* one escape in three bytes still fits: text */
  for (size_t i = 0; i < sizeof(body); i++) body[i] = i % 3 ? 'a' : '"';
  worst_case("a quote every third byte", body, sizeof(body), "text", base + 2 * (8192 + 2731 + 3));
  memset(body, 'a', sizeof(body));
  worst_case("plain text", body, sizeof(body), "text", base + 2 * (8192 + 3));
}

/* Masking may lengthen a body ("REDACTED" for 1): the masked text is cut
 * back to max_body_size bytes and marked truncated. */
TEST(record_size_bound_masking_expansion) {
  static const char *const fields[] = {"a"};
  static char body[8192];
  tbl_record_opts_t o = opts(8192);
  o.redact_json_fields = fields;
  o.nredact_json_fields = 1;
  size_t n = 0;
  body[n++] = '{';
  while (n + 7 < sizeof(body)) memcpy(body + n, "\"a\":1,", 6), n += 6;
  body[n - 1] = '}';
  char *line;
  line_len(body, n, "", 0, &o, &line);
  cJSON *j = cJSON_Parse(line);
  free(line);
  ASSERT(j != NULL);
  const char *got = at(j, "request", "body")->valuestring;
  ASSERT_EQ(strlen(got), 8192);
  ASSERT(strncmp(got, "{\"a\":\"REDACTED\",\"a\":\"REDACTED\",", 31) == 0);
  ASSERT(strstr(got, ":1") == NULL); /* every value it kept is masked */
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, (double)n);
  cJSON_Delete(j);
}

/* ---- valid UTF-8 (RFC 8259) ---------------------------------------------
 * Raw bytes of serialize that are not UTF-8 become U+FFFD (EF BF BD), one
 * per maximal invalid subsequence, as WHATWG's UTF-8 decoder reads them. */

#define FFFD "\xef\xbf\xbd"

/* The classes of invalid input, with what each becomes. */
static const struct {
  const char *what, *in, *out;
} utf8_cases[] = {
    {"lone continuation", "a\x80z", "a" FFFD "z"},
    {"two lone continuations", "\xbf\x80", FFFD FFFD},
    {"truncated 2-byte", "a\xc3z", "a" FFFD "z"},
    {"truncated 3-byte", "a\xe2\x82z", "a" FFFD "z"},
    {"truncated 4-byte", "a\xf0\x9f\x98z", "a" FFFD "z"},
    {"truncated at the end", "caf\xe9", "caf" FFFD},
    {"overlong C0 80", "\xc0\x80", FFFD FFFD},
    {"overlong E0 80 80", "\xe0\x80\x80", FFFD FFFD FFFD},
    {"overlong F0 80 80 80", "\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD},
    {"surrogate ED A0 80", "\xed\xa0\x80", FFFD FFFD FFFD},
    {"above U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD},
    {"never a lead F5", "\xf5\x80", FFFD FFFD},
    {"FF", "\xff", FFFD},
    {"valid 4-byte then invalid", "\xf0\x9f\x98\x80\xe9", "\xf0\x9f\x98\x80" FFFD},
};

TEST(utf8_repair_maximal_subparts) {
  char shown[2][128];
  for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
    size_t n, replaced;
    const char *in = utf8_cases[i].in, *want = utf8_cases[i].out;
    char *got = tbl_utf8_repair(in, strlen(in), &n, &replaced);
    ASSERT(got != NULL);
    if (n != strlen(want) || memcmp(got, want, n) != 0)
      FAIL("%s: \"%s\" became \"%s\", expected \"%s\"", utf8_cases[i].what,
           test_escape(in, strlen(in), shown[0], sizeof(shown[0])),
           test_escape(got, n, shown[1], sizeof(shown[1])), want);
    size_t fffd = 0;
    for (const char *p = want; (p = strstr(p, FFFD)) != NULL; p += 3) fffd++;
    ASSERT_EQ(replaced, fffd);
    ASSERT_EQ(tbl_utf8_valid_prefix(got, n), n);
    free(got);
  }
}

/* Valid text is left alone: a 4-byte character, the edges of the ranges. */
TEST(utf8_valid_left_alone) {
  static const char *const valid[] = {"\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf",
                                      "\xee\x80\x80", "\xe0\xa0\x80", "\xc2\x80", "plain"};
  for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
    size_t n = strlen(valid[i]), m, replaced;
    ASSERT_EQ(tbl_utf8_valid_prefix(valid[i], n), n);
    char *got = tbl_utf8_repair(valid[i], n, &m, &replaced);
    ASSERT(got != NULL);
    ASSERT_EQ(m, n);
    ASSERT(memcmp(got, valid[i], n) == 0);
    ASSERT_EQ(replaced, 0);
    free(got);
  }
}

/* Each class in a header value, a query argument and a key: the record
 * holds exactly the replacement, everything else byte for byte. */
TEST(record_utf8_repaired_in_header_query_and_key) {
  tbl_record_opts_t o = opts(8192);
  for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
    const char *x = utf8_cases[i].in, *r = utf8_cases[i].out;
    char ser[512], want[512], err[128], shown[2][600];
    snprintf(ser, sizeof(ser),
             "{\"request\":{\"querystring\":{\"q\":\"%s\"},\"headers\":{\"x-latin\":\"%s\","
             "\"k-%s\":\"v\"}},\"started_at\":1}",
             x, x, x);
    snprintf(want, sizeof(want),
             "{\"request\":{\"querystring\":{\"q\":\"%s\"},\"headers\":{\"x-latin\":\"%s\","
             "\"k-%s\":\"v\"},\"body_skipped\":\"short_circuited\"},\"started_at\":1,"
             "\"response\":{\"body_skipped\":\"short_circuited\"}}\n",
             r, r, r);
    tbl_record_stats_t s0, s1;
    tbl_record_get_stats(&s0);
    size_t n;
    char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
    if (line == NULL) FAIL("%s: no record: %s", utf8_cases[i].what, err);
    if (n != strlen(want) || memcmp(line, want, n) != 0)
      FAIL("%s:\n got  %s\n want %s", utf8_cases[i].what, test_escape(line, n, shown[0], 600),
           test_escape(want, strlen(want), shown[1], 600));
    tbl_record_get_stats(&s1);
    ASSERT_EQ(s1.records_utf8_repaired - s0.records_utf8_repaired, 1);
    free(line);
  }
}

/* A valid serialize is not counted, and JSON escapes are not touched: a
 * lone surrogate written as an escape stays as Kong wrote it. */
TEST(record_utf8_escapes_left_as_written) {
  tbl_record_opts_t o = opts(8192);
  const char *ser = "{\"request\":{\"headers\":{\"x\":\"\\ud800 caf\xc3\xa9 \\u00e9 \xf0\x9f\x98\x80\"}}}";
  tbl_record_stats_t s0, s1;
  tbl_record_get_stats(&s0);
  char err[128];
  size_t n;
  char *line = tbl_record_build(ser, strlen(ser), &o, 5, &n, err, sizeof(err));
  ASSERT(line != NULL);
  ASSERT_STREQ(line, "{\"request\":{\"headers\":{\"x\":\"\\ud800 caf\xc3\xa9 \\u00e9 \xf0\x9f\x98\x80\"},"
                     "\"body_skipped\":\"short_circuited\"},\"response\":{\"body_skipped\":\"short_circuited\"}}\n");
  tbl_record_get_stats(&s1);
  ASSERT_EQ(s1.records_utf8_repaired, s0.records_utf8_repaired);
  free(line);
}

/* Invalid bytes outside strings are not JSON: still refused. */
TEST(record_utf8_outside_strings_refused) {
  tbl_record_opts_t o = opts(8192);
  char err[128];
  size_t n;
  ASSERT(tbl_record_build("{\"a\":1\xe9}", 8, &o, 5, &n, err, sizeof(err)) == NULL);
  ASSERT_CONTAINS(err, "did not return a JSON object");
}

/* ---- max_record_size ----------------------------------------------------
 * The line with its "\n" fits max_record_size: the body values are cut,
 * split between the two sides; a record that does not fit even with empty
 * values goes out whole, counted. */

/* The record for these bodies under o (a fresh context each time). */
static char *record_of(const char *req, size_t reqlen, const char *resp, size_t resplen,
                       const tbl_record_opts_t *o, size_t *n) {
  char *line;
  *n = line_len(req, reqlen, resp, resplen, o, &line);
  return line;
}

static cJSON *parsed(const char *line, size_t n) {
  cJSON *j = cJSON_ParseWithLength(line, n);
  ASSERT(j != NULL);
  return j;
}

/* The serialize part of a record: everything but the body values. */
static void same_but_bodies(const char *a, const char *b) {
  cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
  ASSERT(x != NULL && y != NULL);
  for (int side = 0; side < 2; side++) {
    const char *part = side ? "response" : "request";
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(x, part), "body");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(y, part), "body");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(x, part), "body_truncated");
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(y, part), "body_truncated");
  }
  ASSERT(cJSON_Compare(x, y, 1));
  cJSON_Delete(x);
  cJSON_Delete(y);
}

static void stats_delta(const tbl_record_stats_t *s0, uint64_t shortened, uint64_t oversize) {
  tbl_record_stats_t s1;
  tbl_record_get_stats(&s1);
  ASSERT_EQ(s1.bodies_shortened - s0->bodies_shortened, shortened);
  ASSERT_EQ(s1.records_oversize - s0->records_oversize, oversize);
}

/* max exactly the length: the record is untouched; 0 is no limit. */
TEST(record_max_size_exactly_the_length) {
  static char a[1000], b[1000];
  memset(a, 'a', sizeof(a)), memset(b, 'b', sizeof(b));
  tbl_record_opts_t o = opts(8192);
  size_t n0, n;
  char *l0 = record_of(a, 1000, b, 1000, &o, &n0);
  tbl_record_stats_t s0;
  tbl_record_get_stats(&s0);
  o.max_record_size = n0;
  char *l = record_of(a, 1000, b, 1000, &o, &n);
  ASSERT_EQ(n, n0);
  ASSERT_STREQ(l, l0);
  stats_delta(&s0, 0, 0);
  free(l);
  free(l0);
}

/* One byte less: a body loses one byte and says truncated, a byte less
 * again: the line is max - 1 (no cut can end on exactly max). */
TEST(record_max_size_one_less) {
  static char a[100], b[100];
  memset(a, 'a', sizeof(a)), memset(b, 'b', sizeof(b));
  tbl_record_opts_t o = opts(8192);
  size_t n0, n;
  char *l0 = record_of(a, 100, b, 100, &o, &n0);
  tbl_record_stats_t s0;
  tbl_record_get_stats(&s0);
  o.max_record_size = n0 - 1;
  char *l = record_of(a, 100, b, 100, &o, &n);
  ASSERT_EQ(n, n0 - 2);
  cJSON *j = parsed(l, n);
  ASSERT_EQ(strlen(at(j, "request", "body")->valuestring), 99);
  ASSERT(strspn(at(j, "request", "body")->valuestring, "a") == 99);
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 100);
  ASSERT_EQ(strlen(at(j, "response", "body")->valuestring), 100);
  ASSERT(cJSON_IsFalse(at(j, "response", "body_truncated")));
  ASSERT_EQ(l[n - 1], '\n');
  same_but_bodies(l0, l);
  stats_delta(&s0, 1, 0);
  cJSON_Delete(j);
  free(l);
  free(l0);
}

/* A small body leaves the rest to the other: the line ends on max. */
TEST(record_max_size_small_body_leaves_rest) {
  static char a[1000];
  memset(a, 'a', sizeof(a));
  tbl_record_opts_t o = opts(8192);
  size_t n0, n;
  char *l0 = record_of(a, 1000, "0123456789", 10, &o, &n0);
  size_t base = n0 - 1010; /* with empty values */
  o.max_record_size = n0 - 500;
  char *l = record_of(a, 1000, "0123456789", 10, &o, &n);
  ASSERT_EQ(n, n0 - 500);
  cJSON *j = parsed(l, n);
  /* 510 bytes for both: 10 to the response, 500 and the flag's byte to the request */
  ASSERT_EQ(strlen(at(j, "request", "body")->valuestring), 501);
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 1000);
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "0123456789");
  ASSERT(cJSON_IsFalse(at(j, "response", "body_truncated")));
  ASSERT_EQ(n, base + 501 + 10 - 1);
  same_but_bodies(l0, l);
  cJSON_Delete(j);
  free(l);
  free(l0);
}

/* Two large bodies share the room: half each (and each flag's byte). */
TEST(record_max_size_split_in_halves) {
  static char a[1000], b[1000];
  memset(a, 'a', sizeof(a)), memset(b, 'b', sizeof(b));
  tbl_record_opts_t o = opts(8192);
  size_t n0, n;
  char *l0 = record_of(a, 1000, b, 1000, &o, &n0);
  tbl_record_stats_t s0;
  tbl_record_get_stats(&s0);
  o.max_record_size = n0 - 1001; /* room for 999 bytes: 499 + 1 and 500 + 1 */
  char *l = record_of(a, 1000, b, 1000, &o, &n);
  ASSERT_EQ(n, n0 - 1001);
  cJSON *j = parsed(l, n);
  ASSERT_EQ(strlen(at(j, "request", "body")->valuestring), 500);
  ASSERT_EQ(strlen(at(j, "response", "body")->valuestring), 501);
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  ASSERT(cJSON_IsTrue(at(j, "response", "body_truncated")));
  ASSERT_EQ(at(j, "response", "body_size")->valuedouble, 1000);
  same_but_bodies(l0, l);
  stats_delta(&s0, 2, 0);
  cJSON_Delete(j);
  free(l);
  free(l0);
}

/* Text is cut between characters and between escapes, never inside one:
 * for every max in a range, the line fits and the body is a prefix. */
TEST(record_max_size_text_cut_at_boundaries) {
  /* 2-byte escapes, 6-byte escapes, 2-, 3- and 4-byte characters */
  static const char body[] = "\"\\\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x1f\"abc";
  size_t blen = sizeof(body) - 1;
  tbl_record_opts_t o = opts(8192);
  size_t n0;
  char *l0 = record_of(body, blen, "", 0, &o, &n0);
  /* from one byte less down to empty values (30 bytes less, and the flag) */
  for (size_t max = n0 - 1; max >= n0 - 31; max--) {
    size_t n;
    o.max_record_size = max;
    char *l = record_of(body, blen, "", 0, &o, &n);
    if (n > max) FAIL("max %zu: a line of %zu bytes", max, n);
    cJSON *j = parsed(l, n);
    const char *got = at(j, "request", "body")->valuestring;
    ASSERT_STREQ(at(j, "request", "body_encoding")->valuestring, "text");
    ASSERT(strlen(got) < blen && memcmp(got, body, strlen(got)) == 0);
    ASSERT_EQ(tbl_utf8_valid_prefix(got, strlen(got)), strlen(got));
    ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
    ASSERT_EQ(at(j, "request", "body_size")->valuedouble, (double)blen);
    same_but_bodies(l0, l);
    cJSON_Delete(j);
    free(l);
  }
  free(l0);
}

/* An escape that does not fit whole is left out: with room for 5 bytes
 * of a value starting with \u0001 (6 bytes) the value is "". */
TEST(record_max_size_escape_not_split) {
  tbl_record_opts_t o = opts(8192);
  size_t n0, n;
  char *l0 = record_of("\x01xy", 3, "", 0, &o, &n0); /* value \u0001xy: 8 bytes */
  o.max_record_size = n0 - 4;                       /* 8 - 4 + 1 (flag) = 5 bytes of room */
  char *l = record_of("\x01xy", 3, "", 0, &o, &n);
  cJSON *j = parsed(l, n);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "");
  ASSERT_EQ(n, n0 - 9);
  o.max_record_size = n0 - 2; /* 7 bytes: \u0001x */
  free(l);
  cJSON_Delete(j);
  l = record_of("\x01xy", 3, "", 0, &o, &n);
  j = parsed(l, n);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "\x01x");
  ASSERT_EQ(n, n0 - 2);
  cJSON_Delete(j);
  free(l);
  free(l0);
}

/* base64 is cut at a multiple of 4 characters (3 input bytes): the value
 * decodes to a prefix of the body. */
TEST(record_max_size_base64_whole_groups) {
  static char bin[300];
  for (size_t i = 0; i < sizeof(bin); i++) bin[i] = (char)(0x80 + i % 64); /* not UTF-8 */
  tbl_record_opts_t o = opts(8192);
  size_t n0;
  char *l0 = record_of(bin, sizeof(bin), "", 0, &o, &n0); /* 400 characters */
  char *whole = tbl_base64(bin, sizeof(bin), NULL);
  for (size_t cut = 2; cut < 12; cut++) {
    size_t n;
    o.max_record_size = n0 - cut; /* room for 400 - cut + 1 characters */
    char *l = record_of(bin, sizeof(bin), "", 0, &o, &n);
    cJSON *j = parsed(l, n);
    const char *got = at(j, "request", "body")->valuestring;
    ASSERT_STREQ(at(j, "request", "body_encoding")->valuestring, "base64");
    ASSERT_EQ(strlen(got), (400 - cut + 1) / 4 * 4);
    ASSERT(strncmp(got, whole, strlen(got)) == 0);
    ASSERT(strchr(got, '=') == NULL);
    ASSERT(n <= n0 - cut);
    ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 300);
    cJSON_Delete(j);
    free(l);
  }
  free(whole);
  free(l0);
}

/* Masked JSON is cut after masking: the cut never shows a masked value. */
TEST(record_max_size_masked_json_cut_after_masking) {
  static const char *const fields[] = {"password"};
  tbl_record_opts_t o = opts(8192);
  o.redact_json_fields = fields;
  o.nredact_json_fields = 1;
  const char *body = "{\"user\":\"ann\",\"password\":\"hunter2hunter2\",\"note\":\"x\"}";
  size_t n0;
  char *l0 = record_of(body, strlen(body), "", 0, &o, &n0);
  for (size_t cut = 2; cut < 40; cut++) {
    size_t n;
    o.max_record_size = n0 - cut;
    char *l = record_of(body, strlen(body), "", 0, &o, &n);
    ASSERT(n <= n0 - cut);
    ASSERT(strstr(l, "hunter") == NULL);
    cJSON *j = parsed(l, n);
    const char *got = at(j, "request", "body")->valuestring;
    const char *masked = "{\"user\":\"ann\",\"password\":\"REDACTED\",\"note\":\"x\"}";
    ASSERT(strncmp(got, masked, strlen(got)) == 0);
    cJSON_Delete(j);
    free(l);
  }
  free(l0);
}

/* Empty values fit exactly (both flags flip): not oversize; one byte less:
 * oversize, returned whole with empty values, counted. */
TEST(record_max_size_oversize_boundary) {
  tbl_record_opts_t o = opts(8192);
  size_t n0, n;
  char *l0 = record_of("abc", 3, "de", 2, &o, &n0);
  size_t empty = n0 - 5 - 2; /* "abc" and "de" gone, "false" -> "true" twice */
  tbl_record_stats_t s0;
  tbl_record_get_stats(&s0);
  o.max_record_size = empty;
  char *l = record_of("abc", 3, "de", 2, &o, &n);
  ASSERT_EQ(n, empty);
  cJSON *j = parsed(l, n);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "");
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "");
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  ASSERT(cJSON_IsTrue(at(j, "response", "body_truncated")));
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 3);
  ASSERT_EQ(at(j, "response", "body_size")->valuedouble, 2);
  stats_delta(&s0, 2, 0);
  cJSON_Delete(j);
  free(l);
  tbl_record_get_stats(&s0);
  o.max_record_size = empty - 1;
  l = record_of("abc", 3, "de", 2, &o, &n);
  ASSERT_EQ(n, empty); /* whole, never split */
  ASSERT_EQ(l[n - 1], '\n');
  j = parsed(l, n);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "");
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "");
  stats_delta(&s0, 2, 1);
  cJSON_Delete(j);
  free(l);
  free(l0);
}

/* Huge headers: over the limit whatever the bodies; serialize is kept
 * whole, an empty body that is not cut stays "false", skipped bodies stay. */
TEST(record_max_size_huge_headers_oversize) {
  static char ser[8192];
  char err[128];
  size_t n;
  int k = snprintf(ser, sizeof(ser), "{\"request\":{\"headers\":{\"x-big\":\"%05000d\"}}}", 7);
  ASSERT(k > 5000);
  tbl_record_opts_t o = opts(8192);
  o.max_record_size = 4096;
  tbl_record_stats_t s0;
  tbl_record_get_stats(&s0);
  char *l = tbl_record_build(ser, (size_t)k, &o, 5, &n, err, sizeof(err));
  ASSERT(l != NULL);
  ASSERT(n > 4096);
  ASSERT(strstr(l, "\"x-big\":\"00000") != NULL);
  ASSERT_CONTAINS(l, "\"body_skipped\":\"short_circuited\"");
  stats_delta(&s0, 0, 1);
  free(l);
  /* with bodies: both cut to "", one empty body stays as it was */
  static char hdr[6000];
  memset(hdr, 'h', sizeof(hdr) - 1);
  char key[TBL_KEY_MAX];
  tbl_exchange_t *ex = tbl_exchange_new(1000, key);
  tbl_exchange_capture(ex, &ex->req, "abc", 3, 8192);
  tbl_exchange_capture(ex, &ex->resp, "", 0, 8192);
  k = snprintf(ser, sizeof(ser), "{\"" TBL_EXCHANGE_KEY "\":\"%s\",\"source\":\"upstream\","
               "\"request\":{\"headers\":{\"x-big\":\"%s\"}},\"response\":{}}", key, hdr);
  tbl_record_get_stats(&s0);
  l = tbl_record_build(ser, (size_t)k, &o, 1001, &n, err, sizeof(err));
  ASSERT(l != NULL);
  cJSON *j = parsed(l, n);
  ASSERT_STREQ(at(j, "request", "body")->valuestring, "");
  ASSERT(cJSON_IsTrue(at(j, "request", "body_truncated")));
  ASSERT_EQ(at(j, "request", "body_size")->valuedouble, 3);
  ASSERT_STREQ(at(j, "response", "body")->valuestring, "");
  ASSERT(cJSON_IsFalse(at(j, "response", "body_truncated")));
  stats_delta(&s0, 1, 1);
  cJSON_Delete(j);
  free(l);
}

/* A body that needs exactly half the room is kept whole. */
TEST(record_max_size_exactly_half_kept_whole) {
  static char a[500], b[1000];
  memset(a, 'a', sizeof(a)), memset(b, 'b', sizeof(b));
  tbl_record_opts_t o = opts(8192);
  size_t n0, n;
  char *l0 = record_of(a, 500, b, 1000, &o, &n0);
  o.max_record_size = n0 - 500; /* room for 1000: 500 each */
  char *l = record_of(a, 500, b, 1000, &o, &n);
  ASSERT_EQ(n, n0 - 500);
  cJSON *j = parsed(l, n);
  ASSERT_EQ(strlen(at(j, "request", "body")->valuestring), 500);
  ASSERT(cJSON_IsFalse(at(j, "request", "body_truncated")));
  ASSERT_EQ(strlen(at(j, "response", "body")->valuestring), 501);
  ASSERT(cJSON_IsTrue(at(j, "response", "body_truncated")));
  cJSON_Delete(j);
  free(l);
  free(l0);
}
