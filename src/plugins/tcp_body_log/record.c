/* record.c: serialize JSON + captured bodies -> one record line (record.h).
 *
 * Kong's serialize text is not re-encoded: one validating pass over it
 * gathers what the record depends on (the join key, whether the request was
 * proxied, the content type and length of each side), then a second pass
 * copies it with the edits spliced in: the join key left out, redacted
 * header values replaced, body fields of ours replaced, and the body fields
 * appended to "request" and "response".  Numbers, key order and escapes stay
 * exactly as Kong wrote them, and no JSON tree is built.
 *
 * Around the two passes: a serialize text that is not valid UTF-8 (raw
 * bytes of a query string or header) is first repaired into a copy (one
 * fast validation pass, the copy only when it fails); the syslog header,
 * when framed so, is written before the JSON; and a record longer than
 * max_record_size has its body values cut (their spans in the body fields
 * are known) and is copied once more.  The octet count goes in front last. */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "buf.h"
#include "exchange.h"
#include "syslog.h"

#define MAX_DEPTH 64
#define TBL_CT_MAX 128 /* a media type longer than this matches no pattern */

static tbl_record_stats_t stats;

static const char *const skip_names[TBL_SKIP__COUNT] = {
    "disabled", "content_type", "file_buffered", "short_circuited",
    "no_response_phase", "context_lost", "not_received", "redaction_failed",
};

/* The fields this plugin owns in request and response; whatever serialize
 * already holds under these names (another plugin's set_serialize_value)
 * is dropped, so a consumer never reads someone else's unredacted body. */
static const char *const body_keys[] = {"body", "body_encoding", "body_size", "body_truncated",
                                        "body_skipped"};

const char *tbl_skip_name(tbl_skip_t why) { return skip_names[why]; }

void tbl_record_get_stats(tbl_record_stats_t *out) { *out = stats; }

/* ---- output buffer ----------------------------------------------------- */

static void puts_(tbl_buf_t *b, const char *s) { tbl_buf_put(b, s, strlen(s)); }

static void put_num(tbl_buf_t *b, unsigned long long v) {
  char n[24];
  size_t i = sizeof(n);
  do {
    n[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  tbl_buf_put(b, n + i, sizeof(n) - i);
}

/* Bytes that end a run inside a JSON string: '"', '\\' and controls. */
static const unsigned char special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, ['\\'] = 1,
};

/* A JSON string of UTF-8 text without NUL: escapes quotes, backslashes and
 * control characters; other bytes go as they are. */
static void put_json_string(tbl_buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t run = 0;
  tbl_buf_put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!special[c]) continue;
    tbl_buf_put(b, s + run, i - run);
    run = i + 1;
    char esc[6] = {'\\', 0};
    switch (c) {
      case '"': esc[1] = '"'; tbl_buf_put(b, esc, 2); break;
      case '\\': esc[1] = '\\'; tbl_buf_put(b, esc, 2); break;
      case '\n': esc[1] = 'n'; tbl_buf_put(b, esc, 2); break;
      case '\r': esc[1] = 'r'; tbl_buf_put(b, esc, 2); break;
      case '\t': esc[1] = 't'; tbl_buf_put(b, esc, 2); break;
      case '\b': esc[1] = 'b'; tbl_buf_put(b, esc, 2); break;
      case '\f': esc[1] = 'f'; tbl_buf_put(b, esc, 2); break;
      default:
        esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
        tbl_buf_put(b, esc, 6);
    }
  }
  tbl_buf_put(b, s + run, n - run);
  tbl_buf_put(b, "\"", 1);
}

/* Base64's length for n bytes. */
static size_t base64_len(size_t n) { return (n + 2) / 3 * 4; }

/* ---- the scanner ------------------------------------------------------- */

/* What one of "request" / "response" holds that the record depends on. */
typedef struct part_s {
  int found;
  int has_ct;      /* a content-type header was seen */
  char *ct;        /* TBL_CT_MAX bytes for its media type, JSON escapes decoded
                      (Kong writes "application\/json"); NULL: not gathered */
  size_t ctlen;
  long long cl;    /* content-length, or -1 */
  int chunked;     /* a transfer-encoding header is present */
  const char *fields; /* body fields to append (pass 2) */
  size_t fields_len;
} part_t;

typedef struct scan_s {
  const char *s;
  size_t len, pos;
  int depth;
  int emit;        /* 0: gather, 1: write to out */
  tbl_buf_t *out;
  const tbl_record_opts_t *o;
  part_t req, resp;
  const char *key; /* the join key's value (raw), or NULL */
  size_t keylen;
  int source;      /* "source" (Kong 3.6+): 0 absent, 1 "upstream", -1 other */
  int tries;       /* "tries" is a non-empty array */
  int proxy_time;  /* "latencies.proxy" is >= 0 (-1: Kong never waited) */
  int spaced;      /* whitespace between tokens seen: copies must compact */
} scan_t;

static void ws(scan_t *sc) {
  size_t p0 = sc->pos;
  while (sc->pos < sc->len) {
    char c = sc->s[sc->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    sc->pos++;
  }
  if (sc->pos != p0) sc->spaced = 1;
}

static int at(scan_t *sc, char c) { return sc->pos < sc->len && sc->s[sc->pos] == c; }

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at pos; [*a, *b) is its raw content.  Validates the escapes. */
static int scan_string(scan_t *sc, size_t *a, size_t *b) {
  if (!at(sc, '"')) return -1;
  *a = ++sc->pos;
  while (sc->pos < sc->len) {
    while (sc->pos < sc->len && !special[(unsigned char)sc->s[sc->pos]]) sc->pos++;
    if (sc->pos >= sc->len) break;
    unsigned char c = (unsigned char)sc->s[sc->pos];
    if (c == '"') {
      *b = sc->pos++;
      return 0;
    }
    if (c < 0x20) return -1;
    if (c == '\\') {
      if (++sc->pos >= sc->len) return -1;
      char e = sc->s[sc->pos];
      if (e == 'u') {
        if (sc->len - sc->pos < 5) return -1;
        for (int i = 1; i <= 4; i++)
          if (!is_hex(sc->s[sc->pos + (size_t)i])) return -1;
        sc->pos += 4;
      } else if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') {
        return -1;
      }
    }
    sc->pos++;
  }
  return -1;
}

static int scan_digits(scan_t *sc) {
  size_t p0 = sc->pos;
  while (sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9') sc->pos++;
  return sc->pos > p0 ? 0 : -1;
}

static int skip_value(scan_t *sc);

/* A container at pos ('{' or '['), validated and skipped. */
static int skip_container(scan_t *sc, char open, char close) {
  size_t a, b;
  if (++sc->depth > MAX_DEPTH) return -1;
  sc->pos++;
  ws(sc);
  if (at(sc, close)) {
    sc->pos++;
    sc->depth--;
    return 0;
  }
  for (;;) {
    if (open == '{') {
      if (scan_string(sc, &a, &b) != 0) return -1;
      ws(sc);
      if (!at(sc, ':')) return -1;
      sc->pos++;
      ws(sc);
    }
    if (skip_value(sc) != 0) return -1;
    ws(sc);
    if (at(sc, ',')) {
      sc->pos++;
      ws(sc);
      continue;
    }
    if (!at(sc, close)) return -1;
    sc->pos++;
    sc->depth--;
    return 0;
  }
}

static int skip_value(scan_t *sc) {
  size_t a, b;
  if (sc->pos >= sc->len) return -1;
  switch (sc->s[sc->pos]) {
    case '{': return skip_container(sc, '{', '}');
    case '[': return skip_container(sc, '[', ']');
    case '"': return scan_string(sc, &a, &b);
    case 't':
    case 'f':
    case 'n': {
      const char *lit = sc->s[sc->pos] == 't' ? "true" : sc->s[sc->pos] == 'f' ? "false" : "null";
      size_t n = strlen(lit);
      if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, lit, n) != 0) return -1;
      sc->pos += n;
      return 0;
    }
    default:
      if (at(sc, '-')) sc->pos++;
      if (scan_digits(sc) != 0) return -1;
      if (at(sc, '.')) {
        sc->pos++;
        if (scan_digits(sc) != 0) return -1;
      }
      if (at(sc, 'e') || at(sc, 'E')) {
        sc->pos++;
        if (at(sc, '+') || at(sc, '-')) sc->pos++;
        if (scan_digits(sc) != 0) return -1;
      }
      return 0;
  }
}

static int key_is(scan_t *sc, size_t a, size_t b, const char *name) {
  return b - a == strlen(name) && memcmp(sc->s + a, name, b - a) == 0;
}

/* Copies s[a, b) (validated JSON) to the output in emit mode.  Kong's
 * cjson writes no whitespace; if the text had some, it is dropped outside
 * strings so the record stays one line. */
static void copy(scan_t *sc, size_t a, size_t b) {
  if (!sc->emit) return;
  if (!sc->spaced) {
    tbl_buf_put(sc->out, sc->s + a, b - a);
    return;
  }
  int in_str = 0;
  size_t run = a;
  for (size_t i = a; i < b; i++) {
    char c = sc->s[i];
    if (in_str) {
      if (c == '\\') i++;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      tbl_buf_put(sc->out, sc->s + run, i - run);
      run = i + 1;
    }
  }
  tbl_buf_put(sc->out, sc->s + run, b - run);
}

/* A header value: a string, or the first string of an array (raw). */
static void header_value(scan_t *sc, size_t v0, size_t v1, const char **p, size_t *n) {
  scan_t t = *sc;
  size_t a, b;
  t.pos = v0;
  if (at(&t, '[')) {
    t.pos++;
    ws(&t);
  }
  if (t.pos < v1 && scan_string(&t, &a, &b) == 0) {
    *p = sc->s + a;
    *n = b - a;
  }
}

/* Steps to the next member of an object whose '{' was consumed: returns 1
 * with its key in [*a, *b) and pos at its value, 0 past the closing '}',
 * or -1 on a syntax error. */
static int next_member(scan_t *sc, int *first, size_t *a, size_t *b) {
  ws(sc);
  if (at(sc, '}')) {
    sc->pos++;
    return 0;
  }
  if (!*first) {
    if (!at(sc, ',')) return -1;
    sc->pos++;
    ws(sc);
  }
  *first = 0;
  if (scan_string(sc, a, b) != 0) return -1;
  ws(sc);
  if (!at(sc, ':')) return -1;
  sc->pos++;
  ws(sc);
  return 1;
}

/* Bytes of whitespace at s[pos...). */
static size_t ws_len(const scan_t *sc, size_t pos) {
  scan_t t = *sc;
  t.pos = pos;
  ws(&t);
  return t.pos - pos;
}

/* The latencies object at v0 (validated): 1 if its "proxy" member is a
 * number >= 0, else 0. */
static int proxy_latency_known(const scan_t *sc, size_t v0) {
  scan_t t = *sc;
  size_t a, b;
  int first = 1;
  t.pos = v0 + 1;
  t.emit = 0;
  while (next_member(&t, &first, &a, &b) == 1) {
    if (key_is(&t, a, b, "proxy")) return t.pos < t.len && t.s[t.pos] >= '0' && t.s[t.pos] <= '9';
    if (skip_value(&t) != 0) return 0;
  }
  return 0;
}

/* The headers object of a part: gathers its facts, redacts named values. */
static int walk_headers(scan_t *sc, part_t *part) {
  size_t a, b, v0;
  int first = 1, emitted = 0, more;
  if (++sc->depth > MAX_DEPTH) return -1;
  sc->pos++;
  if (sc->emit) tbl_buf_put(sc->out, "{", 1);
  while ((more = next_member(sc, &first, &a, &b)) == 1) {
    v0 = sc->pos;
    if (skip_value(sc) != 0) return -1;
    if (!sc->emit) {
      const char *p = NULL;
      size_t n = 0;
      if (b - a == 12 && strncasecmp(sc->s + a, "content-type", 12) == 0 && !part->has_ct &&
          part->ct != NULL) {
        header_value(sc, v0, sc->pos, &p, &n);
        const char *semi = p ? memchr(p, ';', n) : NULL; /* parameters are not needed */
        if (semi != NULL) n = (size_t)(semi - p);
        long d = p ? tbl_json_unescape(p, n, part->ct, TBL_CT_MAX) : -1;
        part->has_ct = 1;
        part->ctlen = d > 0 ? (size_t)d : 0;
      } else if (b - a == 14 && strncasecmp(sc->s + a, "content-length", 14) == 0) {
        header_value(sc, v0, sc->pos, &p, &n);
        if (p != NULL && n > 0 && n < 20) {
          char num[24];
          memcpy(num, p, n);
          num[n] = '\0';
          char *end;
          long long v = strtoll(num, &end, 10);
          if (*end == '\0' && v >= 0) part->cl = v;
        }
      } else if (b - a == 17 && strncasecmp(sc->s + a, "transfer-encoding", 17) == 0) {
        part->chunked = 1;
      }
    } else {
      if (emitted++) tbl_buf_put(sc->out, ",", 1);
      copy(sc, a - 1, b + 1);
      tbl_buf_put(sc->out, ":", 1);
      if (tbl_json_key_matches(sc->s + a, b - a, sc->o->redact_headers, sc->o->nredact_headers))
        puts_(sc->out, "\"REDACTED\"");
      else
        copy(sc, v0, sc->pos);
    }
  }
  if (more < 0) return -1;
  sc->depth--;
  if (sc->emit) tbl_buf_put(sc->out, "}", 1);
  return 0;
}

/* "request" or "response": our body fields replace any of the same name. */
static int walk_part(scan_t *sc, part_t *part) {
  size_t a, b, v0;
  int first = 1, kept = 0, more;
  if (++sc->depth > MAX_DEPTH) return -1;
  sc->pos++;
  if (sc->emit) tbl_buf_put(sc->out, "{", 1);
  while ((more = next_member(sc, &first, &a, &b)) == 1) {
    int ours = 0;
    for (size_t i = 0; i < sizeof(body_keys) / sizeof(body_keys[0]); i++)
      ours |= key_is(sc, a, b, body_keys[i]);
    if (ours) {
      if (skip_value(sc) != 0) return -1;
    } else {
      if (sc->emit) {
        if (kept) tbl_buf_put(sc->out, ",", 1);
        copy(sc, a - 1, b + 1);
        tbl_buf_put(sc->out, ":", 1);
      }
      kept++;
      if (key_is(sc, a, b, "headers") && at(sc, '{')) {
        if (walk_headers(sc, part) != 0) return -1;
      } else {
        v0 = sc->pos;
        if (skip_value(sc) != 0) return -1;
        copy(sc, v0, sc->pos);
      }
    }
  }
  if (more < 0) return -1;
  sc->depth--;
  if (sc->emit) {
    if (kept && part->fields_len) tbl_buf_put(sc->out, ",", 1);
    tbl_buf_put(sc->out, part->fields, part->fields_len);
    tbl_buf_put(sc->out, "}", 1);
  }
  return 0;
}

/* The whole serialize object, in either mode. */
static int walk(scan_t *sc) {
  size_t a, b, v0;
  int first = 1, kept = 0, more;
  sc->pos = 0;
  sc->depth = 1;
  ws(sc);
  if (!at(sc, '{')) return -1;
  sc->pos++;
  if (sc->emit) tbl_buf_put(sc->out, "{", 1);
  while ((more = next_member(sc, &first, &a, &b)) == 1) {
    v0 = sc->pos;
    if (key_is(sc, a, b, TBL_EXCHANGE_KEY)) { /* ours: never in the record */
      if (skip_value(sc) != 0) return -1;
      size_t k0, k1;
      scan_t t = *sc;
      t.pos = v0;
      if (!sc->emit && sc->key == NULL && scan_string(&t, &k0, &k1) == 0)
        sc->key = sc->s + k0, sc->keylen = k1 - k0;
      continue;
    }
    if (sc->emit) {
      if (kept) tbl_buf_put(sc->out, ",", 1);
      copy(sc, a - 1, b + 1);
      tbl_buf_put(sc->out, ":", 1);
    }
    kept++;
    part_t *part = key_is(sc, a, b, "request") ? &sc->req : key_is(sc, a, b, "response") ? &sc->resp : NULL;
    if (part != NULL && at(sc, '{')) {
      /* the first occurrence gets the bodies; every one is redacted */
      part_t spare = {0};
      spare.cl = -1;
      part_t *use = part->found && !sc->emit ? &spare : part;
      if (sc->emit && part->found == 2) {
        spare.found = 1;
        use = &spare;
      }
      if (walk_part(sc, use) != 0) return -1;
      part->found = sc->emit ? 2 : 1;
    } else {
      if (skip_value(sc) != 0) return -1;
      copy(sc, v0, sc->pos);
      if (!sc->emit) {
        size_t s0, s1;
        scan_t t = *sc;
        t.pos = v0;
        if (key_is(sc, a, b, "source") && scan_string(&t, &s0, &s1) == 0)
          sc->source = s1 - s0 == 8 && memcmp(sc->s + s0, "upstream", 8) == 0 ? 1 : -1;
        else if (key_is(sc, a, b, "tries") && sc->s[v0] == '[')
          sc->tries = sc->s[v0 + 1 + ws_len(sc, v0 + 1)] != ']';
        else if (key_is(sc, a, b, "latencies") && sc->s[v0] == '{')
          sc->proxy_time = proxy_latency_known(sc, v0);
      }
    }
  }
  if (more < 0) return -1;
  ws(sc);
  if (sc->pos != sc->len) return -1; /* trailing bytes */
  if (sc->emit) {
    /* a side serialize did not have gets an object of its own */
    part_t *parts[2] = {&sc->req, &sc->resp};
    static const char *const names[2] = {"\"request\":{", "\"response\":{"};
    for (int i = 0; i < 2; i++) {
      if (parts[i]->found) continue;
      if (kept++) tbl_buf_put(sc->out, ",", 1);
      puts_(sc->out, names[i]);
      tbl_buf_put(sc->out, parts[i]->fields, parts[i]->fields_len);
      tbl_buf_put(sc->out, "}", 1);
    }
    tbl_buf_put(sc->out, "}", 1);
  }
  return 0;
}

/* ---- the body fields --------------------------------------------------- */

/* Where add_body put a body value in its fields buffer, so that it can be
 * cut to fit max_record_size without being built again. */
typedef struct body_span_s {
  int present;   /* a body value was written */
  int base64;    /* its encoding */
  int truncated; /* body_truncated is already true */
  size_t a, b;   /* the value's content, between its quotes */
  size_t flag;   /* where ",\"body_truncated\":" starts: the last field */
} body_span_t;

static void add_skip(tbl_buf_t *f, tbl_skip_t why, long long size) {
  puts_(f, "\"body_skipped\":\"");
  puts_(f, skip_names[why]);
  puts_(f, "\"");
  if (size >= 0) {
    puts_(f, ",\"body_size\":");
    put_num(f, (unsigned long long)size);
  }
  stats.skipped[why]++;
}

/* body, body_encoding, body_size, body_truncated for captured bytes.
 * The body field never takes more than base64 of max_body_size bytes
 * (4 * ceil(max / 3)) plus its quotes, whatever the bytes (R61):
 *   - masking may lengthen JSON ("REDACTED" for 1): the masked text is cut
 *     back to max_body_size bytes (the cut falls after masking, so nothing
 *     unmasked is revealed);
 *   - UTF-8 text without NUL goes as text while its JSON escaping fits that
 *     bound, else as base64 (a control character escapes to six bytes). */
static void add_body(tbl_buf_t *f, const tbl_captured_t *c, const tbl_record_opts_t *o,
                     body_span_t *span) {
  const char *p = c->data ? c->data : "";
  size_t n = tbl_truncate_point(p, c->len, c->size, o->max_body_size);
  int truncated = c->size > n;
  char *masked = NULL;
  size_t mlen = 0;

  int m = tbl_json_mask(p, n, o->redact_json_fields, o->nredact_json_fields, &masked, &mlen);
  if (m < 0) {
    add_skip(f, TBL_SKIP_REDACTION_FAILED, (long long)c->size);
    return;
  }
  if (m == 1) {
    p = masked;
    n = mlen;
    stats.bodies_masked++;
    if (n > o->max_body_size) {
      n = tbl_truncate_point(p, n, n, o->max_body_size);
      truncated = 1;
    }
  }
  puts_(f, "\"body\":");
  /* Escaped in place, and taken back if it came out too long: no pass of
   * its own to measure the escaping. */
  size_t mark = f->len;
  int text = tbl_utf8_valid_prefix(p, n) == n && memchr(p, '\0', n) == NULL;
  if (text) {
    put_json_string(f, p, n);
    text = f->len - mark <= base64_len(o->max_body_size) + 2; /* quotes */
    if (!text && !f->failed) f->len = mark;
  }
  if (text) {
    span->a = mark + 1, span->b = f->len - 1;
    puts_(f, ",\"body_encoding\":\"text\"");
  } else {
    size_t blen = 0;
    char *b64 = tbl_base64(p, n, &blen);
    tbl_buf_put(f, "\"", 1);
    span->a = f->len;
    if (b64 == NULL) f->failed = 1;
    else tbl_buf_put(f, b64, blen);
    span->b = f->len;
    tbl_buf_put(f, "\"", 1);
    free(b64);
    puts_(f, ",\"body_encoding\":\"base64\"");
    stats.bodies_base64++;
  }
  puts_(f, ",\"body_size\":");
  put_num(f, c->size);
  span->flag = f->len;
  puts_(f, truncated ? ",\"body_truncated\":true" : ",\"body_truncated\":false");
  span->present = !f->failed;
  span->base64 = !text;
  span->truncated = truncated;
  stats.bodies_logged++;
  stats.bodies_truncated += truncated;
  free(masked);
}

static void body_fields(tbl_buf_t *f, int enabled, int have_key, const tbl_exchange_t *ex,
                        const tbl_captured_t *c, int is_request, int was_proxied, const part_t *part,
                        const tbl_record_opts_t *o, body_span_t *span) {
  if (!enabled) {
    add_skip(f, TBL_SKIP_DISABLED, -1);
    return;
  }
  if (!have_key) {
    add_skip(f, was_proxied ? TBL_SKIP_NO_RESPONSE_PHASE : TBL_SKIP_SHORT_CIRCUITED,
             is_request ? part->cl : -1);
    return;
  }
  if (ex == NULL) {
    add_skip(f, TBL_SKIP_CONTEXT_LOST, is_request ? part->cl : -1);
    return;
  }
  switch (c->state) {
    case TBL_BODY_DISABLED: add_skip(f, TBL_SKIP_DISABLED, -1); return;
    case TBL_BODY_PENDING: add_skip(f, TBL_SKIP_NOT_RECEIVED, -1); return;
    case TBL_BODY_NIL: {
      /* nginx returns no $request_body when it spooled the body to a file */
      if (is_request && (part->cl > 0 || part->chunked)) {
        add_skip(f, TBL_SKIP_FILE_BUFFERED, part->cl);
        return;
      }
      tbl_captured_t empty = {TBL_BODY_CAPTURED, NULL, 0, 0};
      add_body(f, &empty, o, span);
      return;
    }
    case TBL_BODY_CAPTURED: break;
  }
  if (c->size > 0 && !tbl_content_type_allowed(part->has_ct ? part->ct : NULL, part->ctlen,
                                                o->content_types, o->ncontent_types)) {
    add_skip(f, TBL_SKIP_CONTENT_TYPE, (long long)c->size);
    return;
  }
  add_body(f, c, o, span);
}

/* Did Kong send the request to the service?  Decided from what every
 * Kong 3.x era writes (proto/PROTOCOL.md R60): "source" is "upstream"
 * (3.6+), or "tries" holds a try (the balancer ran: a dead upstream too),
 * or, where there is no "source" (3.0-3.5), latencies.proxy is not -1.
 * upstream_uri says nothing: the router sets it before access plugins run,
 * so a request another plugin ended in access has one too. */
static int proxied(const scan_t *sc) {
  return sc->source == 1 || sc->tries || (sc->source == 0 && sc->proxy_time);
}

/* ---- max_record_size ---------------------------------------------------- */

/* The longest prefix of a text body's JSON string content e[0..n) (what
 * put_json_string wrote: UTF-8 characters and escapes) that ends between
 * two of them and takes at most max bytes. */
static size_t text_cut(const char *e, size_t n, size_t max) {
  size_t i = 0;
  if (max >= n) return n;
  while (i < n) {
    unsigned char c = (unsigned char)e[i];
    size_t t = c == '\\' ? (e[i + 1] == 'u' ? 6 : 2) : c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (i + t > max) break;
    i += t;
  }
  return i;
}

/* How many content bytes each body value may keep so that a record of len
 * (> max) bytes fits max (record.h): keep[i] >= 0 (less than the value's
 * length) for a body to cut, -1 for one left whole.  Returns 1 when even
 * empty values do not fit (every non-empty value is then cut to ""). */
static int body_budgets(size_t len, size_t max, const body_span_t sp[2], long long keep[2]) {
  long long need[2], flip[2], base = (long long)len;
  for (int i = 0; i < 2; i++) {
    need[i] = sp[i].present ? (long long)(sp[i].b - sp[i].a) : 0;
    flip[i] = need[i] > 0 && !sp[i].truncated; /* "false" -> "true": a byte less */
    base -= need[i];
  }
  /* base: the record with empty values that still say false where they did */
  long long avail = (long long)max - base, half = avail / 2;
  int oversize = base - flip[0] - flip[1] > (long long)max;
  if (avail < 0) { /* only the flags' bytes can make it fit, if anything */
    keep[0] = keep[1] = 0;
  } else if (need[0] <= half) { /* less than half: the response gets the rest */
    keep[0] = -1;
    keep[1] = avail - need[0] + flip[1];
  } else if (need[1] <= avail - half) {
    keep[1] = -1;
    keep[0] = avail - need[1] + flip[0];
  } else {
    keep[0] = half + flip[0];
    keep[1] = avail - half + flip[1];
  }
  /* A value to cut loses one byte at least, so that its flag does flip
   * (avail >= 0 and len > max: a value to cut is not empty). */
  for (int i = 0; i < 2; i++) {
    if (need[i] == 0) keep[i] = -1;
    else if (keep[i] >= need[i]) keep[i] = need[i] - 1;
  }
  return oversize;
}

/* Into nf: the body fields f with their body value cut to at most keep
 * content bytes, and body_truncated true. */
static void cut_body(tbl_buf_t *nf, const tbl_buf_t *f, const body_span_t *sp, size_t keep) {
  size_t n = sp->b - sp->a;
  n = sp->base64 ? (keep < n ? keep / 4 * 4 : n) : text_cut(f->p + sp->a, n, keep);
  tbl_buf_put(nf, f->p, sp->a + n);
  tbl_buf_put(nf, f->p + sp->b, sp->flag - sp->b);
  puts_(nf, ",\"body_truncated\":true");
  stats.bodies_shortened++;
}

/* ---- the record ---------------------------------------------------------- */

/* The emit pass into out (emptied first): the syslog header, when there is
 * one, then the record; json_lines adds its "\n". */
static int emit(scan_t *sc, tbl_buf_t *out, const char *hdr, size_t hdrlen) {
  out->len = 0;
  if (sc->req.found) sc->req.found = 1; /* the gather pass's mark, again */
  if (sc->resp.found) sc->resp.found = 1;
  sc->emit = 1; /* sc->spaced stays as the gather pass found it */
  sc->out = out;
  tbl_buf_put(out, hdr, hdrlen);
  int rc = walk(sc);
  if (sc->o->framing != TBL_FRAMING_SYSLOG) tbl_buf_put(out, "\n", 1);
  return rc;
}

char *tbl_record_build(const char *serialize, size_t len, const tbl_record_opts_t *o,
                       uint64_t now_ms, size_t *outlen, char *err, size_t errlen) {
  tbl_buf_t out = {0}, f[2] = {{0}, {0}}, cut[2] = {{0}, {0}};
  body_span_t span[2];
  char *repaired = NULL, hdr[TBL_SYSLOG_HEADER_MAX];
  int was_repaired = 0;
  size_t hdrlen = 0;
  scan_t sc;
  int rc = -1;
  memset(&sc, 0, sizeof(sc));
  memset(span, 0, sizeof(span));

  /* RFC 8259: raw bytes that are not UTF-8 become U+FFFD (record.h). */
  if (tbl_utf8_valid_prefix(serialize, len) != len) {
    repaired = tbl_utf8_repair(serialize, len, &len, NULL);
    if (repaired == NULL) {
      snprintf(err, errlen, "out of memory building the record");
      return NULL;
    }
    serialize = repaired;
    was_repaired = 1;
  }
  sc.s = serialize;
  sc.len = len;
  sc.o = o;
  char ctbuf[2][TBL_CT_MAX];
  sc.req.cl = sc.resp.cl = -1;
  sc.req.ct = ctbuf[0], sc.resp.ct = ctbuf[1];
  if (walk(&sc) != 0) {
    stats.serialize_invalid++;
    snprintf(err, errlen, "kong.log.serialize() did not return a JSON object");
    free(repaired);
    return NULL;
  }
  int have_key = sc.key != NULL;
  tbl_exchange_t *ex = have_key ? tbl_exchange_take(sc.key, sc.keylen, now_ms) : NULL;
  int was_proxied = proxied(&sc);
  body_fields(&f[0], o->log_request_body, have_key, ex, ex ? &ex->req : NULL, 1, was_proxied,
              &sc.req, o, &span[0]);
  body_fields(&f[1], o->log_response_body, have_key, ex, ex ? &ex->resp : NULL, 0, was_proxied,
              &sc.resp, o, &span[1]);
  tbl_exchange_free(ex);
  if (f[0].failed || f[1].failed) goto done;

  if (o->framing == TBL_FRAMING_SYSLOG)
    hdrlen = tbl_syslog_header(hdr, o->syslog_facility, now_ms, o->syslog_hostname,
                               o->syslog_app_name);
  sc.req.fields = f[0].p, sc.req.fields_len = f[0].len;
  sc.resp.fields = f[1].p, sc.resp.fields_len = f[1].len;
  /* about the final size (redacted values may lengthen it): one allocation */
  tbl_buf_reserve(&out, hdrlen + len + f[0].len + f[1].len + 64);
  rc = emit(&sc, &out, hdr, hdrlen);

  /* max_record_size: out holds exactly what the limit measures */
  if (rc == 0 && !out.failed && o->max_record_size > 0 && out.len > o->max_record_size) {
    long long keep[2];
    stats.records_oversize += body_budgets(out.len, o->max_record_size, span, keep);
    for (int i = 0; i < 2; i++) {
      if (keep[i] < 0) continue;
      cut_body(&cut[i], &f[i], &span[i], (size_t)keep[i]);
      if (i == 0) sc.req.fields = cut[i].p, sc.req.fields_len = cut[i].len;
      else sc.resp.fields = cut[i].p, sc.resp.fields_len = cut[i].len;
    }
    if (!cut[0].failed && !cut[1].failed) rc = emit(&sc, &out, hdr, hdrlen);
    else rc = -1;
  }

  /* RFC 6587 octet counting: "LEN " before the message */
  if (rc == 0 && !out.failed && o->framing == TBL_FRAMING_SYSLOG) {
    char num[24];
    int k = snprintf(num, sizeof(num), "%zu ", out.len);
    if (tbl_buf_reserve(&out, (size_t)k) == 0) {
      memmove(out.p + k, out.p, out.len);
      memcpy(out.p, num, (size_t)k);
      out.len += (size_t)k;
    }
  }

done:
  free(f[0].p);
  free(f[1].p);
  free(cut[0].p);
  free(cut[1].p);
  free(repaired);
  if (rc != 0 || out.failed || f[0].failed || f[1].failed) {
    free(out.p);
    snprintf(err, errlen, "out of memory building the record");
    return NULL;
  }
  out.p[out.len] = '\0';
  *outlen = out.len;
  stats.records++;
  stats.records_utf8_repaired += (uint64_t)was_repaired;
  return out.p;
}
