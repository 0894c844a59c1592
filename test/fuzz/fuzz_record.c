/* fuzz_record.c: libFuzzer target for tcp-body-log's record builder
 * (tbl_record_build) with bodies captured through the exchange table
 * (tbl_exchange_new / tbl_exchange_capture), as the handler does.
 *
 * Input:
 *   byte 0   bit 0 log_request_body, bit 1 log_response_body,
 *            bits 2-3 request body state, bits 4-5 response body state
 *            (0 asked but never answered, 1 captured, 2 nil, 3 disabled),
 *            bit 6 an older context is created first (eviction by the caps),
 *            bit 7 the context is taken before the log phase (context_lost)
 *   bytes 1-2 max_body_size (little endian; 0xffff = 16 MiB)
 *   byte 3   low nibble: context byte cap (0 = 64 MiB, else n * 8 bytes),
 *            high nibble: context entry cap (0 = 10000, else n)
 *   then sections separated by 0x1e: content_types, redact_headers,
 *   redact_json_fields (one entry per line each), request body, response
 *   body, and the kong.log.serialize() JSON, in which "@k" is replaced by
 *   the context's join key.
 *
 * Checks (abort on failure):
 *   - a record comes back only for a serialize that is one JSON object
 *     (cJSON, more lenient, accepts everything the builder accepts);
 *   - it is one line: one JSON object, one '\n' at the end, no NUL;
 *   - the join key is gone; request and response are objects, and each
 *     body field appears once (serialize's own are replaced);
 *   - every header named in redact_headers has the value "REDACTED";
 *   - a logged text body that parses as JSON has "REDACTED" as the value
 *     of every key named in redact_json_fields, at any depth, and a body
 *     that was valid JSON before masking still is;
 *   - body_size is the captured body's size; body, when text, is at most
 *     max_body_size bytes unless masking lengthened it;
 *   - every record is valid UTF-8, whatever bytes serialize held;
 *   - the exchange table is empty afterwards (no context leaks).
 *
 * Then the same input is built again (a fresh context with the same
 * bodies) under max_record_size, framed as json_lines or syslog (bit 0 of
 * byte 1), the limit taken from bytes 2-3 relative to the first record's
 * message length (anywhere from 1 byte to 8 bytes over it; byte 2 also
 * picks the facility, byte 3 the app-name and hostname), and checked:
 *   - a record comes back exactly when the first build gave one;
 *   - the frame: json_lines one line ending in '\n'; syslog "LEN " with LEN
 *     the byte count of the rest, the exact RFC 5424 header, no newline;
 *   - the message (line with '\n', or syslog header and JSON) is at most
 *     max_record_size, unless records_oversize counted it;
 *   - each body value is the first build's or a prefix of it (base64: a
 *     multiple of 4 characters) marked body_truncated, with the same
 *     body_size and encoding; oversize: every body value is "". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "body.h"
#include "exchange.h"
#include "record.h"
#include "syslog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int report_fd = 2; /* stderr before -close_fd_mask=2 */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  report_fd = dup(2);
  return 0;
}

#define MAX_LIST 32

static void die(const char *what, const char *detail) {
  dprintf(report_fd, "fuzz_record: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort();
}

/* Splits s[0..n) at '\n' into NUL-terminated copies. */
static size_t split_list(const uint8_t *s, size_t n, char **out) {
  size_t count = 0, start = 0;
  for (size_t i = 0; i <= n && count < MAX_LIST; i++) {
    if (i == n || s[i] == '\n') {
      if (i > start) {
        out[count] = malloc(i - start + 1);
        memcpy(out[count], s + start, i - start);
        out[count][i - start] = '\0';
        if (strlen(out[count]) > 0) count++;
        else free(out[count]);
      }
      start = i + 1;
    }
  }
  return count;
}

static int in_list(const char *s, char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(s, list[i]) == 0) return 1;
  return 0;
}

static void check_headers(const cJSON *headers, char *const *list, size_t n) {
  if (!cJSON_IsObject(headers)) return;
  for (const cJSON *h = headers->child; h != NULL; h = h->next)
    if (h->string && in_list(h->string, list, n) &&
        !(cJSON_IsString(h) && strcmp(h->valuestring, "REDACTED") == 0))
      die("a redacted header kept its value", h->string);
}

/* Every key in `fields` has the value "REDACTED", at any depth. */
static void check_masked(const cJSON *v, char *const *fields, size_t n) {
  for (const cJSON *c = v ? v->child : NULL; c != NULL; c = c->next) {
    if (cJSON_IsObject(v) && c->string && in_list(c->string, fields, n) &&
        !(cJSON_IsString(c) && strcmp(c->valuestring, "REDACTED") == 0))
      die("a JSON field named in redact_json_fields was logged", c->string);
    check_masked(c, fields, n);
  }
}

/* The member named `name`; it must be the only one: the builder replaces
 * body fields that serialize already had (test_regressions.c
 * record_body_key_already_in_serialize). */
static const cJSON *only_item(const cJSON *obj, const char *name) {
  const cJSON *found = NULL;
  for (const cJSON *c = obj ? obj->child : NULL; c != NULL; c = c->next)
    if (c->string && strcmp(c->string, name) == 0) {
      if (found != NULL) die("a body field twice in the record", name);
      found = c;
    }
  return found;
}

/* Does a key of this JSON text contain an escape?  The builder compares
 * serialize's keys ("request", "headers", ...) as written, cJSON decoded:
 * Kong's cjson never escapes such keys, so those inputs are not checked. */
static int has_escaped_key(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '"') continue;
    size_t j = i + 1;
    int esc = 0;
    while (j < n && s[j] != '"') {
      if (s[j] == '\\') esc = 1, j++;
      j++;
    }
    size_t k = j + 1;
    while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r')) k++;
    if (esc && k < n && s[k] == ':') return 1;
    i = j;
  }
  return 0;
}

/* cJSON refuses a \uD800-\uDFFF escape that is not half of a valid pair;
 * JSON parsers commonly take them and the builder passes them through as
 * written.  The checks read copies in which every such escape is \u0041. */
static char *neutral_copy(const char *s, size_t n) {
  char *c = malloc(n + 1);
  memcpy(c, s, n);
  c[n] = '\0';
  for (size_t i = 0; i + 1 < n; i++) {
    if (c[i] != '\\') continue;
    if (c[i + 1] == 'u' && i + 5 < n && (c[i + 2] == 'd' || c[i + 2] == 'D') && c[i + 3] != '\0' &&
        strchr("89abcdefABCDEF", c[i + 3]) != NULL)
      memcpy(c + i + 2, "0041", 4);
    i++; /* the escaped character */
  }
  return c;
}

/* UTF-8 as RFC 3629 defines it, decoded here rather than with the
 * builder's own validator: no overlong form, no surrogate, nothing above
 * U+10FFFF, no sequence cut short. */
static int utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned cp = p[i], len = cp < 0x80 ? 1 : (cp >> 5) == 6 ? 2 : (cp >> 4) == 14 ? 3 : (cp >> 3) == 30 ? 4 : 0;
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (len == 0 || n - i < len) return 0;
    cp &= len == 1 ? 0x7f : 0x7f >> len;
    for (unsigned k = 1; k < len; k++) {
      if ((p[i + k] & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    i += len;
  }
  return 1;
}

static int has_control(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 1;
  return 0;
}

static int parses_as_json(const char *s, size_t n) {
  cJSON *j = cJSON_ParseWithLength(s, n);
  int ok = j != NULL && (cJSON_IsObject(j) || cJSON_IsArray(j));
  cJSON_Delete(j);
  return ok;
}

static void check_body(const cJSON *side, const tbl_captured_t *cap, const char *original, size_t kept,
                       size_t max_body, char *const *fields, size_t nfields) {
  const cJSON *body = only_item(side, "body");
  const cJSON *enc = only_item(side, "body_encoding");
  const cJSON *bsize = only_item(side, "body_size");
  const cJSON *trunc = only_item(side, "body_truncated");
  if (body == NULL) return; /* skipped */
  if (!cJSON_IsString(body) || !cJSON_IsString(enc) || !cJSON_IsNumber(bsize) || !cJSON_IsBool(trunc))
    die("body fields of the wrong type", NULL);
  if (cap != NULL && cap->state == TBL_BODY_CAPTURED && bsize->valuedouble != (double)cap->size)
    die("body_size is not the captured size", NULL);
  if (strcmp(enc->valuestring, "text") != 0) return;
  size_t blen = strlen(body->valuestring);
  if (nfields == 0 && blen > max_body) die("text body longer than max_body_size", NULL);
  if (nfields == 0) return;
  /* cJSON takes any control character as whitespace; JSON (RFC 8259) and
   * the masker take only space, tab, CR and LF.  Bodies with others are
   * not JSON to an upstream, so they are not checked. */
  if (has_control(body->valuestring, blen) || (original != NULL && has_control(original, kept))) return;
  /* Keys are compared decoded, as every parser upstream reads them
   * (test_regressions.c json_mask_misses_escaped_keys), except "\u0000":
   * cJSON cuts a key there, other parsers do not. */
  cJSON *parsed = strstr(body->valuestring, "\\u0000") ? NULL : cJSON_Parse(body->valuestring);
  if (parsed != NULL) check_masked(parsed, fields, nfields);
  cJSON_Delete(parsed);
  /* A whole, valid JSON body stays valid JSON after masking. */
  if (cJSON_IsFalse(trunc) && original != NULL && kept == cap->size && parses_as_json(original, kept) &&
      !parses_as_json(body->valuestring, blen))
    die("masking broke a valid JSON body", body->valuestring);
}

static const uint64_t now_ms = 1000000;

/* A record as built, with what the builder saw. */
typedef struct line_s {
  char *p;
  size_t n;
} line_t;

typedef struct run_s {
  line_t line;
  char *json; /* the serialize text with the key in it */
  size_t jl;
  tbl_captured_t cap[2]; /* copies of the bodies the builder was about to see */
  int still_there;       /* the context was still in the table */
} run_t;

/* One build as the handler does it: a context (and maybe an older one) in
 * a cleared table, the bodies captured, serialize with "@k" replaced by
 * the key; the table is cleared and checked empty afterwards. */
static void run(run_t *r, uint8_t flags, const uint8_t *const bodies[2], const size_t bodylen[2],
                const uint8_t *ser, size_t serlen, const tbl_record_opts_t *o) {
  char key[TBL_KEY_MAX], older_key[TBL_KEY_MAX], err[256];
  memset(r, 0, sizeof(*r));
  if (flags & 0x40) {
    tbl_exchange_t *old = tbl_exchange_new(now_ms - 10, older_key);
    if (old != NULL) tbl_exchange_capture(old, &old->req, "0123456789abcdef", 16, 16);
  }
  tbl_exchange_t *ex = tbl_exchange_new(now_ms, key);
  if (ex == NULL) die("tbl_exchange_new failed", NULL);
  int64_t ex_id = ex->node.id;
  const tbl_body_state_t states[4] = {TBL_BODY_PENDING, TBL_BODY_CAPTURED, TBL_BODY_NIL, TBL_BODY_DISABLED};
  tbl_captured_t *slots[2] = {&ex->req, &ex->resp};
  for (int s = 0; s < 2; s++) {
    tbl_body_state_t st = states[(flags >> (2 + 2 * s)) & 3];
    if (st == TBL_BODY_CAPTURED) {
      const char *b = bodies[s] ? (const char *)bodies[s] : "";
      if (tbl_exchange_capture(ex, slots[s], b, bodylen[s], o->max_body_size) != 0) die("capture failed", NULL);
    } else {
      slots[s]->state = st;
    }
  }
  /* Keep what the builder is about to see (it frees the context). */
  r->cap[0] = ex->req, r->cap[1] = ex->resp;
  for (int s = 0; s < 2; s++) {
    char *copy = malloc(r->cap[s].len + 1);
    if (r->cap[s].len) memcpy(copy, r->cap[s].data, r->cap[s].len);
    r->cap[s].data = copy;
  }
  if (flags & 0x80) tbl_exchange_free(tbl_exchange_take(key, strlen(key), now_ms));
  r->still_there = tbl_exchange_lookup(ex_id) != NULL;

  r->json = malloc(serlen * TBL_KEY_MAX / 2 + TBL_KEY_MAX + 1);
  for (size_t i = 0; i < serlen;) {
    if (i + 1 < serlen && ser[i] == '@' && ser[i + 1] == 'k') {
      memcpy(r->json + r->jl, key, strlen(key));
      r->jl += strlen(key);
      i += 2;
    } else {
      r->json[r->jl++] = (char)ser[i++];
    }
  }
  r->json[r->jl] = '\0';
  r->line.p = tbl_record_build(r->json, r->jl, o, now_ms, &r->line.n, err, sizeof(err));

  /* The builder took the context if the key named it; the rest goes now. */
  tbl_exchange_clear();
  tbl_exchange_stats_t xs;
  tbl_exchange_get_stats(&xs);
  if (xs.live != 0 || xs.bytes != 0) die("contexts left in the table", NULL);
}

static void run_free(run_t *r) {
  free(r->line.p);
  free(r->json);
  free(r->cap[0].data);
  free(r->cap[1].data);
}

/* The record JSON (n bytes at s) parsed, with lone-surrogate escapes
 * neutralised; dies unless it is one JSON object. */
static cJSON *parse_record(const char *s, size_t n) {
  char *copy = neutral_copy(s, n);
  const char *rend = NULL;
  cJSON *rec = cJSON_ParseWithLengthOpts(copy, n, &rend, 0);
  if (!cJSON_IsObject(rec) || rend != copy + n) die("record is not one JSON object", copy);
  free(copy);
  return rec;
}

/* A side of the limited record against the same side without a limit. */
static void compare_bodies(const cJSON *side1, const cJSON *side2, int oversize) {
  const cJSON *b1 = only_item(side1, "body"), *b2 = only_item(side2, "body");
  if ((b1 == NULL) != (b2 == NULL)) die("a limit changed whether a body is logged", NULL);
  const char *same[] = {"body_size", "body_encoding", "body_skipped"};
  for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
    const cJSON *x = only_item(side1, same[i]), *y = only_item(side2, same[i]);
    if ((x == NULL) != (y == NULL) || (x != NULL && !cJSON_Compare(x, y, 1))) die("a limit changed", same[i]);
  }
  if (b1 == NULL) return;
  const cJSON *t1 = only_item(side1, "body_truncated"), *t2 = only_item(side2, "body_truncated");
  const char *v1 = b1->valuestring, *v2 = b2->valuestring;
  size_t n1 = strlen(v1), n2 = strlen(v2);
  if (oversize && n2 != 0) die("an oversize record kept a body value", v2);
  if (n2 == n1 && memcmp(v1, v2, n1) == 0) {
    if (!cJSON_Compare(t1, t2, 1)) die("body_truncated changed on a body left whole", NULL);
    return;
  }
  if (n2 >= n1 || memcmp(v1, v2, n2) != 0) die("a cut body is not a prefix of the body", v2);
  if (!cJSON_IsTrue(t2)) die("a cut body is not marked body_truncated", NULL);
  const cJSON *enc = only_item(side2, "body_encoding");
  if (strcmp(enc->valuestring, "base64") == 0 && n2 % 4 != 0) die("base64 cut inside a group", v2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  uint8_t flags = data[0];
  size_t max_body = (size_t)data[1] | ((size_t)data[2] << 8);
  if (max_body == 0xffff) max_body = 16u << 20;
  size_t cap_bytes = (data[3] & 15) ? (size_t)(data[3] & 15) * 8 : (64u << 20);
  size_t cap_entries = (data[3] >> 4) ? (size_t)(data[3] >> 4) : 10000;

  /* sections */
  const uint8_t *sec[6] = {0};
  size_t seclen[6] = {0};
  size_t nsec = 0, start = 4;
  for (size_t i = 4; i <= size && nsec < 6; i++) {
    if (i == size || (data[i] == 0x1e && nsec < 5)) {
      sec[nsec] = data + start;
      seclen[nsec] = i - start;
      nsec++;
      start = i + 1;
    }
  }
  char *ct[MAX_LIST], *rh[MAX_LIST], *rj[MAX_LIST];
  size_t nct = nsec > 0 ? split_list(sec[0], seclen[0], ct) : 0;
  size_t nrh = nsec > 1 ? split_list(sec[1], seclen[1], rh) : 0;
  size_t nrj = nsec > 2 ? split_list(sec[2], seclen[2], rj) : 0;

  tbl_record_opts_t o = {
      .max_body_size = max_body,
      .log_request_body = flags & 1,
      .log_response_body = (flags >> 1) & 1,
      .content_types = (const char *const *)ct,
      .ncontent_types = nct,
      .redact_headers = (const char *const *)rh,
      .nredact_headers = nrh,
      .redact_json_fields = (const char *const *)rj,
      .nredact_json_fields = nrj,
  };

  tbl_exchange_set_limits(60000, cap_bytes, cap_entries);
  const uint8_t *bodies[2] = {nsec > 3 ? sec[3] : NULL, nsec > 4 ? sec[4] : NULL};
  size_t bodylen[2] = {nsec > 3 ? seclen[3] : 0, nsec > 4 ? seclen[4] : 0};
  const uint8_t *ser = nsec > 5 ? sec[5] : (const uint8_t *)"";
  size_t serlen = nsec > 5 ? seclen[5] : 0;

  /* First build: no size limit, json_lines. */
  run_t r1;
  run(&r1, flags, bodies, bodylen, ser, serlen, &o);
  line_t *l1 = &r1.line;

  /* cJSON is more lenient than the record builder (numbers like ".5",
   * controls as whitespace, nesting past 64), so the check goes one way:
   * what the builder accepts, cJSON accepts too, without trailing bytes. */
  char *checked = neutral_copy(r1.json, r1.jl);
  const char *end = NULL;
  cJSON *input = cJSON_ParseWithLengthOpts(checked, r1.jl, &end, 0);
  int is_object = cJSON_IsObject(input);
  if (is_object) {
    while (end < checked + r1.jl && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    is_object = end == checked + r1.jl;
  }
  /* A "request" or "response" that is not an object is kept as it is, and
   * the record gets an object of its own after it (Kong's are objects). */
  const cJSON *in_req = cJSON_GetObjectItemCaseSensitive(input, "request");
  const cJSON *in_resp = cJSON_GetObjectItemCaseSensitive(input, "response");
  int parts_ok = (in_req == NULL || cJSON_IsObject(in_req)) && (in_resp == NULL || cJSON_IsObject(in_resp));
  cJSON_Delete(input);
  free(checked);
  /* (a key written with escapes is another key to the builder: Kong's
   * cjson never escapes letters) */
  int comparable = parts_ok && !has_escaped_key(r1.json, r1.jl);

  cJSON *rec1 = NULL;
  if (l1->p != NULL && !is_object) die("a record from a serialize that is not a JSON object", r1.json);
  if (l1->p != NULL) {
    size_t outlen = l1->n;
    if (outlen == 0 || l1->p[outlen - 1] != '\n' || strlen(l1->p) != outlen) die("record does not end in a newline", NULL);
    if (memchr(l1->p, '\n', outlen - 1) != NULL)
      die("record is not exactly one line", NULL);
    if (!utf8_valid(l1->p, outlen)) die("record is not valid UTF-8", l1->p);
    rec1 = parse_record(l1->p, outlen - 1);
    if (comparable) {
      if (cJSON_GetObjectItemCaseSensitive(rec1, TBL_EXCHANGE_KEY) != NULL &&
          strstr(l1->p, "\"" TBL_EXCHANGE_KEY "\":") != NULL)
        die("join key left in the record", l1->p);
      const cJSON *req = cJSON_GetObjectItemCaseSensitive(rec1, "request");
      const cJSON *resp = cJSON_GetObjectItemCaseSensitive(rec1, "response");
      if (!cJSON_IsObject(req) || !cJSON_IsObject(resp)) die("request/response not objects", NULL);
      check_headers(cJSON_GetObjectItemCaseSensitive(req, "headers"), rh, nrh);
      check_headers(cJSON_GetObjectItemCaseSensitive(resp, "headers"), rh, nrh);
      if (r1.still_there) {
        check_body(req, &r1.cap[0], r1.cap[0].data, r1.cap[0].len, max_body, rj, nrj);
        check_body(resp, &r1.cap[1], r1.cap[1].data, r1.cap[1].len, max_body, rj, nrj);
      } else {
        check_body(req, NULL, NULL, 0, max_body, rj, nrj);
        check_body(resp, NULL, NULL, 0, max_body, rj, nrj);
      }
    }
  }
  size_t n1 = l1->p != NULL ? l1->n : 0;
  run_free(&r1);

  /* Second build: under max_record_size, json_lines or syslog. */
  o.framing = data[1] & 1 ? TBL_FRAMING_SYSLOG : TBL_FRAMING_JSON_LINES;
  o.syslog_facility = data[2] % 26 - 1; /* -1 and 24: out of range, "user" */
  o.syslog_app_name = data[3] & 1 ? "kong" : "a b\xe9";
  o.syslog_hostname = data[3] & 2 ? "gw-1.example" : NULL;
  char hdr[TBL_SYSLOG_HEADER_MAX];
  size_t hdrlen = o.framing == TBL_FRAMING_SYSLOG
                      ? tbl_syslog_header(hdr, o.syslog_facility, now_ms, o.syslog_hostname, o.syslog_app_name)
                      : 0;
  size_t msg1 = n1 > 0 ? (hdrlen ? n1 - 1 + hdrlen : n1) : 4096;
  size_t back = (size_t)data[2] | ((size_t)data[3] << 8);
  o.max_record_size = msg1 + 8 - back % (msg1 + 8); /* 1 .. msg1 + 8 */
  tbl_record_stats_t s0, s1;
  tbl_record_get_stats(&s0);
  run_t r2;
  run(&r2, flags, bodies, bodylen, ser, serlen, &o);
  tbl_record_get_stats(&s1);
  line_t *l2 = &r2.line;
  if ((l2->p != NULL) != (rec1 != NULL)) die("a limit changed whether a record is built", NULL);
  if (l2->p != NULL) {
    const char *msg = l2->p;
    size_t mlen = l2->n;
    if (strlen(l2->p) != l2->n) die("NUL in a framed record", NULL);
    if (hdrlen) {
      size_t i = 0, count = 0;
      while (i < l2->n && l2->p[i] >= '0' && l2->p[i] <= '9' && i < 20) count = count * 10 + (size_t)(l2->p[i++] - '0');
      if (i == 0 || l2->p[0] == '0' || i >= l2->n || l2->p[i] != ' ') die("no octet count before the message", NULL);
      msg = l2->p + i + 1;
      mlen = l2->n - i - 1;
      if (count != mlen) die("the octet count is not the message's length", l2->p);
      if (mlen < hdrlen || memcmp(msg, hdr, hdrlen) != 0) die("not the RFC 5424 header", l2->p);
      if (memchr(l2->p, '\n', l2->n) != NULL) die("a newline in a syslog frame", NULL);
    } else {
      if (l2->n == 0 || l2->p[l2->n - 1] != '\n' || memchr(l2->p, '\n', l2->n - 1) != NULL)
        die("a json_lines record is not one line", NULL);
    }
    if (!utf8_valid(l2->p, l2->n)) die("record is not valid UTF-8", l2->p);
    int oversize = (int)(s1.records_oversize - s0.records_oversize);
    if (mlen > o.max_record_size && !oversize) die("a record over max_record_size", l2->p);
    if (mlen <= o.max_record_size && oversize) die("a record that fits counted as oversize", NULL);
    cJSON *rec2 = parse_record(msg + hdrlen, mlen - hdrlen - (hdrlen ? 0 : 1));
    if (comparable) {
      for (int side = 0; side < 2; side++) {
        const char *name = side ? "response" : "request";
        compare_bodies(cJSON_GetObjectItemCaseSensitive(rec1, name),
                       cJSON_GetObjectItemCaseSensitive(rec2, name), oversize);
      }
    }
    cJSON_Delete(rec2);
  }
  cJSON_Delete(rec1);
  run_free(&r2);

  for (size_t i = 0; i < nct; i++) free(ct[i]);
  for (size_t i = 0; i < nrh; i++) free(rh[i]);
  for (size_t i = 0; i < nrj; i++) free(rj[i]);
  return 0;
}
