/* test_syslog.c: tcp-body-log's syslog framing: the facility table, the
 * RFC 5424 header byte for byte, RFC 6587 octet counting of a built
 * record, and max_record_size measuring the syslog message. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#include "exchange.h"
#include "record.h"
#include "serialize_shapes.h"
#include "syslog.h"
#include "test.h"

#define NOW_MS 1795684822308ull /* 2026-11-26T09:20:22.308Z */

static size_t header(char *out, int facility, uint64_t now_ms, const char *host, const char *app) {
  size_t n = tbl_syslog_header(out, facility, now_ms, host, app);
  ASSERT(n < TBL_SYSLOG_HEADER_MAX);
  out[n] = '\0';
  return n;
}

TEST(syslog_facility_codes) {
  static const struct {
    const char *name;
    int code;
  } want[] = {{"kern", 0},   {"user", 1},    {"mail", 2},    {"daemon", 3},    {"auth", 4},
              {"syslog", 5}, {"lpr", 6},     {"news", 7},    {"uucp", 8},      {"cron", 9},
              {"authpriv", 10}, {"ftp", 11}, {"local0", 16}, {"local1", 17},   {"local2", 18},
              {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22},  {"local7", 23}};
  size_t n = 0;
  while (tbl_syslog_facility_names[n] != NULL) n++;
  ASSERT_EQ(n, sizeof(want) / sizeof(want[0]));
  for (size_t i = 0; i < n; i++) {
    ASSERT_STREQ(tbl_syslog_facility_names[i], want[i].name);
    ASSERT_EQ(tbl_syslog_facility_code(want[i].name), want[i].code);
  }
  static const char *const unknown[] = {"", "USER", "local8", "local", "security", "user "};
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
    ASSERT_EQ(tbl_syslog_facility_code(unknown[i]), -1);
  ASSERT_EQ(tbl_syslog_facility_code(NULL), -1);
}

TEST(syslog_header_exact_bytes) {
  char h[TBL_SYSLOG_HEADER_MAX];
  size_t n = header(h, 1, NOW_MS, "gw-1.example", "kong");
  ASSERT_STREQ(h, "<14>1 2026-11-26T09:20:22.308Z gw-1.example kong - tcp-body-log - ");
  ASSERT_EQ(n, strlen(h));
}

/* PRI = facility * 8 + 6 (informational); outside 0..23: user. */
TEST(syslog_pri_per_facility) {
  static const struct {
    int facility;
    const char *pri;
  } want[] = {{0, "<6>1 "},    {1, "<14>1 "},   {2, "<22>1 "},  {4, "<38>1 "}, {10, "<86>1 "},
              {11, "<94>1 "},  {16, "<134>1 "}, {23, "<190>1 "}, {-1, "<14>1 "}, {24, "<14>1 "}};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    char h[TBL_SYSLOG_HEADER_MAX];
    header(h, want[i].facility, NOW_MS, "h", "a");
    if (strncmp(h, want[i].pri, strlen(want[i].pri)) != 0)
      FAIL("facility %d: header %s, expected PRI %s", want[i].facility, h, want[i].pri);
  }
}

TEST(syslog_timestamp_edges) {
  static const struct {
    uint64_t ms;
    const char *ts;
  } want[] = {{0, "1970-01-01T00:00:00.000Z"},
              {951782400999ull, "2000-02-29T00:00:00.999Z"},
              {1795684822001ull, "2026-11-26T09:20:22.001Z"},
              {253402300799999ull, "9999-12-31T23:59:59.999Z"},
              {253402300800000ull, "-"}};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    char h[TBL_SYSLOG_HEADER_MAX], w[128];
    header(h, 1, want[i].ms, "h", "a");
    snprintf(w, sizeof(w), "<14>1 %s h a - tcp-body-log - ", want[i].ts);
    ASSERT_STREQ(h, w);
  }
}

/* HOSTNAME and APP-NAME keep only '!'..'~', cut to 255 and 48; "-" when
 * nothing is left. */
TEST(syslog_header_sanitises_names) {
  char h[TBL_SYSLOG_HEADER_MAX], w[TBL_SYSLOG_HEADER_MAX], long_host[400], long_app[100];
  header(h, 1, 0, "a b\xe9" "c\x01\x7f", " \t");
  ASSERT_STREQ(h, "<14>1 1970-01-01T00:00:00.000Z abc - - tcp-body-log - ");
  header(h, 1, 0, NULL, NULL);
  ASSERT_STREQ(h, "<14>1 1970-01-01T00:00:00.000Z - - - tcp-body-log - ");
  header(h, 1, 0, "", "");
  ASSERT_STREQ(h, "<14>1 1970-01-01T00:00:00.000Z - - - tcp-body-log - ");
  memset(long_host, 'h', sizeof(long_host) - 1), long_host[sizeof(long_host) - 1] = '\0';
  memset(long_app, 'a', sizeof(long_app) - 1), long_app[sizeof(long_app) - 1] = '\0';
  size_t n = header(h, 1, 0, long_host, long_app);
  snprintf(w, sizeof(w), "<14>1 1970-01-01T00:00:00.000Z %.255s %.48s - tcp-body-log - ", long_host,
           long_app);
  ASSERT_STREQ(h, w);
  ASSERT_EQ(n, 6 + 25 + 256 + 49 + 17); /* "<14>1 ", the longest names */
}

TEST(syslog_hostname_from_gethostname) {
  char raw[300] = {0}, want[300], got[256];
  ASSERT_EQ(gethostname(raw, sizeof(raw) - 1), 0);
  size_t n = 0;
  for (const char *p = raw; *p && n < 255; p++)
    if (*p >= '!' && *p <= '~') want[n++] = *p;
  if (n == 0) want[n++] = '-';
  want[n] = '\0';
  tbl_syslog_hostname(got, sizeof(got));
  ASSERT_STREQ(got, want);
  char small[4];
  tbl_syslog_hostname(small, sizeof(small)); /* at most cap - 1 bytes */
  ASSERT(strlen(small) <= 3);
  ASSERT(strncmp(small, want, strlen(small)) == 0);
  char none[1] = {'x'};
  tbl_syslog_hostname(none, 1);
  ASSERT_EQ(none[0], '\0');
}

static tbl_record_opts_t syslog_opts(int facility) {
  tbl_record_opts_t o = {0};
  o.max_body_size = 8192;
  o.log_request_body = o.log_response_body = 1;
  o.framing = TBL_FRAMING_SYSLOG;
  o.syslog_facility = facility;
  o.syslog_app_name = "kong";
  o.syslog_hostname = "gw-1.example";
  return o;
}

/* The length prefix: digits, one space, then exactly that many bytes. */
static size_t message_of(const char *frame, size_t n, const char **msg) {
  size_t i = 0, len = 0;
  ASSERT(n > 0 && frame[0] >= '1' && frame[0] <= '9');
  while (i < n && frame[i] >= '0' && frame[i] <= '9') len = len * 10 + (size_t)(frame[i++] - '0');
  ASSERT(i < n && frame[i] == ' ');
  ASSERT_EQ(len, n - i - 1);
  *msg = frame + i + 1;
  return len;
}

TEST(record_syslog_frame_exact_bytes) {
  tbl_record_opts_t o = syslog_opts(16);
  const char *ser = "{\"request\":{\"headers\":{}}}";
  char err[128];
  size_t n;
  char *frame = tbl_record_build(ser, strlen(ser), &o, NOW_MS, &n, err, sizeof(err));
  ASSERT(frame != NULL);
  ASSERT_STREQ(frame, "172 <134>1 2026-11-26T09:20:22.308Z gw-1.example kong - tcp-body-log - "
                      "{\"request\":{\"headers\":{},\"body_skipped\":\"short_circuited\"},"
                      "\"response\":{\"body_skipped\":\"short_circuited\"}}");
  ASSERT_EQ(n, strlen(frame));
  const char *msg;
  ASSERT_EQ(message_of(frame, n, &msg), 172);
  free(frame);
}

/* The record for two bodies, framed as o says. */
static char *framed(const char *req, size_t reqlen, const char *resp, size_t resplen,
                    const tbl_record_opts_t *o, size_t *n) {
  char key[TBL_KEY_MAX], ser[4096], err[128];
  tbl_exchange_t *ex = tbl_exchange_new(NOW_MS, key);
  ASSERT(ex != NULL);
  tbl_exchange_capture(ex, &ex->req, req, reqlen, o->max_body_size);
  tbl_exchange_capture(ex, &ex->resp, resp, resplen, o->max_body_size);
  snprintf(ser, sizeof(ser), SHAPE_39_PROXIED(SHAPE_KEY("%s")), key);
  char *line = tbl_record_build(ser, strlen(ser), o, NOW_MS, n, err, sizeof(err));
  ASSERT(line != NULL);
  ASSERT(strstr(line, "\"body_encoding\"") != NULL); /* the context was found */
  return line;
}

/* The syslog MSG is the json_lines record without its "\n"; nothing
 * follows the frame. */
TEST(record_syslog_msg_is_the_json_line) {
  tbl_record_opts_t o = syslog_opts(1), lines = o;
  lines.framing = TBL_FRAMING_JSON_LINES;
  size_t n, ln;
  char *frame = framed("abc", 3, "{\"k\":1}", 7, &o, &n);
  char *line = framed("abc", 3, "{\"k\":1}", 7, &lines, &ln);
  const char *msg;
  size_t mlen = message_of(frame, n, &msg);
  static const char hdr[] = "<14>1 2026-11-26T09:20:22.308Z gw-1.example kong - tcp-body-log - ";
  ASSERT_EQ(mlen, sizeof(hdr) - 1 + ln - 1);
  ASSERT(memcmp(msg, hdr, sizeof(hdr) - 1) == 0);
  ASSERT(memcmp(msg + sizeof(hdr) - 1, line, ln - 1) == 0);
  ASSERT(memchr(frame, '\n', n) == NULL);
  free(frame);
  free(line);
}

/* max_record_size counts the syslog header, not the "LEN " prefix. */
TEST(record_syslog_max_size_counts_header) {
  static char a[500];
  memset(a, 'a', sizeof(a));
  tbl_record_opts_t o = syslog_opts(1);
  size_t n0, n;
  char *f0 = framed(a, sizeof(a), "", 0, &o, &n0);
  const char *msg;
  size_t m0 = message_of(f0, n0, &msg);
  o.max_record_size = m0; /* exactly the message: untouched, the prefix is not counted */
  char *f = framed(a, sizeof(a), "", 0, &o, &n);
  ASSERT_EQ(n, n0);
  ASSERT_STREQ(f, f0);
  free(f);
  o.max_record_size = m0 - 100;
  f = framed(a, sizeof(a), "", 0, &o, &n);
  size_t m = message_of(f, n, &msg);
  ASSERT_EQ(m, m0 - 100);
  const char *json = strchr(msg, '{');
  ASSERT(json != NULL);
  cJSON *j = cJSON_ParseWithLength(json, m - (size_t)(json - msg));
  ASSERT(j != NULL);
  const cJSON *req = cJSON_GetObjectItem(j, "request");
  ASSERT_EQ(strlen(cJSON_GetObjectItem(req, "body")->valuestring), 401); /* 500 - 100 + flag */
  ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(req, "body_truncated")));
  ASSERT_EQ(cJSON_GetObjectItem(req, "body_size")->valuedouble, 500);
  cJSON_Delete(j);
  free(f);
  free(f0);
}
