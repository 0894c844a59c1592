/* body.c: body transformations for tcp-body-log (see body.h). */
#include "body.h"
#include "buf.h"

#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>

int tbl_content_type_allowed(const char *ct, size_t ctlen, const char *const *patterns,
                             size_t npatterns) {
  char media[128];
  size_t n = 0;
  if (npatterns == 0) return 1;
  if (ct == NULL) return 0;
  /* the media type: up to ';', without surrounding spaces */
  while (ctlen > 0 && (*ct == ' ' || *ct == '\t')) ct++, ctlen--;
  while (n < ctlen && n < sizeof(media) - 1 && ct[n] != ';') media[n] = ct[n], n++;
  while (n > 0 && (media[n - 1] == ' ' || media[n - 1] == '\t')) n--;
  media[n] = '\0';
  for (size_t i = 0; i < npatterns; i++)
    if (fnmatch(patterns[i], media, FNM_CASEFOLD) == 0) return 1;
  return 0;
}

/* The maximal subpart at p (Unicode 15, 3.9 "U+FFFD substitution of
 * maximal subparts", as WHATWG's UTF-8 decoder reads it): the bytes of the
 * longest start of a well-formed sequence, at least 1.  *complete says
 * whether they are a whole character.  The second byte's range excludes
 * overlongs (E0 A0.., F0 90..), surrogates (ED ..9F) and code points above
 * U+10FFFF (F4 ..8F); C0, C1 and F5..FF never start one. */
static size_t utf8_subpart(const unsigned char *p, const unsigned char *end, int *complete) {
  unsigned char c = p[0], lo = 0x80, hi = 0xbf;
  size_t need, i;
  if (c < 0x80) need = 1;
  else if (c >= 0xc2 && c <= 0xdf) need = 2;
  else if (c >= 0xe0 && c <= 0xef) need = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
  else if (c >= 0xf0 && c <= 0xf4) need = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
  else need = 0; /* a continuation byte or a byte that never starts one */
  for (i = 1; i < need && p + i < end && p[i] >= lo && p[i] <= hi; i++) lo = 0x80, hi = 0xbf;
  *complete = need > 0 && i == need;
  return i;
}

/* Length of the UTF-8 sequence starting at p (1..4), or 0 if invalid or cut
 * off by end. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
  int complete;
  size_t n = utf8_subpart(p, end, &complete);
  return complete ? n : 0;
}

size_t tbl_utf8_valid_prefix(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    /* ASCII, eight bytes at a time */
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (w & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p >= end) break;
    if (*p < 0x80) {
      p++;
      continue;
    }
    size_t n = utf8_seq(p, end);
    if (n == 0) break;
    p += n;
  }
  return (size_t)(p - (const unsigned char *)s);
}

char *tbl_utf8_repair(const char *s, size_t len, size_t *outlen, size_t *replaced) {
  static const char fffd[3] = {(char)0xef, (char)0xbf, (char)0xbd};
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  tbl_buf_t o = {0};
  size_t count = 0;
  tbl_buf_reserve(&o, len + len / 8 + 16);
  while (p < end) {
    size_t v = tbl_utf8_valid_prefix((const char *)p, (size_t)(end - p));
    tbl_buf_put(&o, (const char *)p, v);
    p += v;
    if (p >= end) break;
    int complete;
    p += utf8_subpart(p, end, &complete); /* not complete: p was invalid */
    tbl_buf_put(&o, fffd, 3);
    count++;
  }
  if (o.failed || o.p == NULL) {
    free(o.p);
    return NULL;
  }
  o.p[o.len] = '\0';
  *outlen = o.len;
  if (replaced) *replaced = count;
  return o.p;
}

/* Is p[0..n) the start of a UTF-8 sequence cut off by the end? */
static int incomplete_sequence(const unsigned char *p, size_t n) {
  size_t need = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
              : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;
  if (need == 0 || n >= need) return 0;
  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  return 1;
}

size_t tbl_truncate_point(const char *s, size_t len, size_t size, size_t max) {
  size_t cut = len < max ? len : max;
  if (cut == size) return cut; /* nothing was cut off */
  /* A UTF-8 text cut inside a character loses that character's start. */
  size_t v = tbl_utf8_valid_prefix(s, cut);
  if (v < cut && cut - v <= 3 && incomplete_sequence((const unsigned char *)s + v, cut - v))
    return v;
  return cut;
}

char *tbl_base64(const char *s, size_t len, size_t *outlen) {
  size_t cap = 4 * ((len + 2) / 3) + 1;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  int n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
  out[n] = '\0';
  if (outlen) *outlen = (size_t)n;
  return out;
}

/* ---- JSON masking ------------------------------------------------------ */

/* End of the string token starting at s[i] == '"' (index past the closing
 * quote), or len if it is cut off. */
static size_t string_end(const char *s, size_t len, size_t i) {
  for (i++; i < len; i++) {
    if (s[i] == '\\') i++;
    else if (s[i] == '"') return i + 1;
  }
  return len;
}

/* End of the value starting at s[i] (after spaces): a string, a scalar, or
 * a whole nested object/array; len if cut off. */
static size_t value_end(const char *s, size_t len, size_t i) {
  if (i >= len) return len;
  if (s[i] == '"') return string_end(s, len, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    for (; i < len; i++) {
      if (s[i] == '"') {
        i = string_end(s, len, i) - 1;
        continue;
      }
      if (s[i] == '{' || s[i] == '[') depth++;
      else if (s[i] == '}' || s[i] == ']') {
        if (--depth == 0) return i + 1;
      }
    }
    return len;
  }
  while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t')
    i++;
  return i;
}

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) return o[0] = (char)cp, 1;
  if (cp < 0x800) return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

long tbl_json_unescape(const char *k, size_t klen, char *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < klen; i++) {
    if (n + 4 > cap) return -1;
    if (k[i] != '\\') {
      out[n++] = k[i];
      continue;
    }
    if (++i >= klen) return -1;
    switch (k[i]) {
      case 'b': out[n++] = '\b'; break;
      case 'f': out[n++] = '\f'; break;
      case 'n': out[n++] = '\n'; break;
      case 'r': out[n++] = '\r'; break;
      case 't': out[n++] = '\t'; break;
      case 'u': {
        unsigned cp, lo;
        if (klen - i < 5 || hex4(k + i + 1, &cp) != 0) return -1;
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) { /* a surrogate pair */
          if (klen - i < 7 || k[i + 1] != '\\' || k[i + 2] != 'u' || hex4(k + i + 3, &lo) != 0 ||
              lo < 0xdc00 || lo > 0xdfff)
            return -1;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 6;
        }
        n += put_utf8(out + n, cp);
        break;
      }
      default: out[n++] = k[i]; break; /* \" \\ \/ */
    }
  }
  return (long)n;
}

int tbl_json_key_matches(const char *k, size_t klen, const char *const *fields, size_t nfields) {
  char buf[256];
  if (memchr(k, '\\', klen) != NULL) {
    long n = tbl_json_unescape(k, klen, buf, sizeof(buf));
    if (n < 0) return 0; /* longer than any configured name */
    k = buf;
    klen = (size_t)n;
  }
  for (size_t f = 0; f < nfields; f++)
    if (strlen(fields[f]) == klen && strncasecmp(fields[f], k, klen) == 0) return 1;
  return 0;
}

int tbl_json_mask(const char *s, size_t len, const char *const *fields, size_t nfields,
                  char **out, size_t *outlen) {
  size_t i = 0, copied = 0;
  tbl_buf_t o = {0};
  int masked = 0;
  if (nfields == 0) return 0;
  while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
  if (i >= len || (s[i] != '{' && s[i] != '[')) return 0;

  while (i < len) {
    if (s[i] != '"') {
      i++;
      continue;
    }
    size_t kend = string_end(s, len, i);
    size_t j = kend;
    while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) j++;
    if (j >= len || s[j] != ':' || kend == len) { /* a value, not a key */
      i = kend;
      continue;
    }
    /* key: s[i+1 .. kend-1); compare the raw bytes (escapes not decoded) */
    if (!tbl_json_key_matches(s + i + 1, kend - i - 2, fields, nfields)) {
      i = j + 1;
      continue;
    }
    j++;
    while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) j++;
    size_t vend = value_end(s, len, j);
    tbl_buf_put(&o, s + copied, j - copied);
    tbl_buf_put(&o, "\"REDACTED\"", 10);
    copied = vend;
    i = vend;
    masked = 1;
  }
  if (!masked) return 0;
  tbl_buf_put(&o, s + copied, len - copied);
  if (o.failed) {
    free(o.p);
    return -1;
  }
  o.p[o.len] = '\0';
  *out = o.p;
  *outlen = o.len;
  return 1;
}
