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
 *   - the exchange table is empty afterwards (no context leaks). */
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
  uint64_t now = 1000000;
  char key[TBL_KEY_MAX], older_key[TBL_KEY_MAX];
  if (flags & 0x40) {
    tbl_exchange_t *old = tbl_exchange_new(now - 10, older_key);
    if (old != NULL) tbl_exchange_capture(old, &old->req, "0123456789abcdef", 16, 16);
  }
  tbl_exchange_t *ex = tbl_exchange_new(now, key);
  if (ex == NULL) die("tbl_exchange_new failed", NULL);
  int64_t ex_id = ex->node.id;
  const tbl_body_state_t states[4] = {TBL_BODY_PENDING, TBL_BODY_CAPTURED, TBL_BODY_NIL, TBL_BODY_DISABLED};
  tbl_captured_t *slots[2] = {&ex->req, &ex->resp};
  for (int s = 0; s < 2; s++) {
    tbl_body_state_t st = states[(flags >> (2 + 2 * s)) & 3];
    if (st == TBL_BODY_CAPTURED) {
      const char *b = nsec > (size_t)(3 + s) ? (const char *)sec[3 + s] : "";
      size_t blen = nsec > (size_t)(3 + s) ? seclen[3 + s] : 0;
      if (tbl_exchange_capture(ex, slots[s], b, blen, max_body) != 0) die("capture failed", NULL);
    } else {
      slots[s]->state = st;
    }
  }
  /* Keep what the builder is about to see (it frees the context). */
  tbl_captured_t cap[2] = {ex->req, ex->resp};
  for (int s = 0; s < 2; s++) {
    char *copy = malloc(cap[s].len + 1);
    if (cap[s].len) memcpy(copy, cap[s].data, cap[s].len);
    cap[s].data = copy;
  }
  if (flags & 0x80) tbl_exchange_free(tbl_exchange_take(key, strlen(key), now));
  int still_there = tbl_exchange_lookup(ex_id) != NULL;

  /* serialize, with @k -> key */
  const uint8_t *ser = nsec > 5 ? sec[5] : (const uint8_t *)"";
  size_t serlen = nsec > 5 ? seclen[5] : 0;
  char *json = malloc(serlen * TBL_KEY_MAX / 2 + TBL_KEY_MAX + 1);
  size_t jl = 0;
  for (size_t i = 0; i < serlen;) {
    if (i + 1 < serlen && ser[i] == '@' && ser[i + 1] == 'k') {
      memcpy(json + jl, key, strlen(key));
      jl += strlen(key);
      i += 2;
    } else {
      json[jl++] = (char)ser[i++];
    }
  }
  json[jl] = '\0';

  /* cJSON is more lenient than the record builder (numbers like ".5",
   * controls as whitespace, nesting past 64), so the check goes one way:
   * what the builder accepts, cJSON accepts too, without trailing bytes. */
  char *checked = neutral_copy(json, jl);
  const char *end = NULL;
  cJSON *input = cJSON_ParseWithLengthOpts(checked, jl, &end, 0);
  int is_object = cJSON_IsObject(input);
  if (is_object) {
    while (end < checked + jl && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    is_object = end == checked + jl;
  }
  /* A "request" or "response" that is not an object is kept as it is, and
   * the record gets an object of its own after it (Kong's are objects). */
  const cJSON *in_req = cJSON_GetObjectItemCaseSensitive(input, "request");
  const cJSON *in_resp = cJSON_GetObjectItemCaseSensitive(input, "response");
  int parts_ok = (in_req == NULL || cJSON_IsObject(in_req)) && (in_resp == NULL || cJSON_IsObject(in_resp));
  cJSON_Delete(input);

  size_t outlen = 0;
  char err[256];
  char *line = tbl_record_build(json, jl, &o, now, &outlen, err, sizeof(err));
  free(checked);
  if (line != NULL && !is_object) die("a record from a serialize that is not a JSON object", json);
  if (line != NULL) {
    if (outlen == 0 || line[outlen - 1] != '\n' || strlen(line) != outlen) die("record does not end in a newline", NULL);
    if (memchr(line, '\n', outlen - 1) != NULL)
      die("record is not exactly one line", NULL);
    char *raw = line;
    line = neutral_copy(raw, outlen);
    free(raw);
    const char *rend = NULL;
    cJSON *rec = cJSON_ParseWithLengthOpts(line, outlen - 1, &rend, 0);
    if (!cJSON_IsObject(rec) || rend != line + outlen - 1) die("record is not one JSON object", line);
    if (has_escaped_key(json, jl) || !parts_ok) {
      cJSON_Delete(rec);
      free(line);
      goto done;
    }
    /* (a key written with escapes is another key to the builder: Kong's
     * cjson never escapes letters) */
    if (cJSON_GetObjectItemCaseSensitive(rec, TBL_EXCHANGE_KEY) != NULL &&
        strstr(line, "\"" TBL_EXCHANGE_KEY "\":") != NULL)
      die("join key left in the record", line);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(rec, "request");
    const cJSON *resp = cJSON_GetObjectItemCaseSensitive(rec, "response");
    if (!cJSON_IsObject(req) || !cJSON_IsObject(resp)) die("request/response not objects", NULL);
    check_headers(cJSON_GetObjectItemCaseSensitive(req, "headers"), rh, nrh);
    check_headers(cJSON_GetObjectItemCaseSensitive(resp, "headers"), rh, nrh);
    if (still_there) {
      check_body(req, &cap[0], cap[0].data, cap[0].len, max_body, rj, nrj);
      check_body(resp, &cap[1], cap[1].data, cap[1].len, max_body, rj, nrj);
    } else {
      check_body(req, NULL, NULL, 0, max_body, rj, nrj);
      check_body(resp, NULL, NULL, 0, max_body, rj, nrj);
    }
    cJSON_Delete(rec);
    free(line);
  }

done:
  /* The builder took the context if the key named it; the rest goes now. */
  tbl_exchange_clear();
  tbl_exchange_stats_t xs;
  tbl_exchange_get_stats(&xs);
  if (xs.live != 0 || xs.bytes != 0) die("contexts left in the table", NULL);
  free(json);
  free(cap[0].data);
  free(cap[1].data);
  for (size_t i = 0; i < nct; i++) free(ct[i]);
  for (size_t i = 0; i < nrh; i++) free(rh[i]);
  for (size_t i = 0; i < nrj; i++) free(rj[i]);
  return 0;
}
