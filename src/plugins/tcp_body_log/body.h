/* body.h: what tcp-body-log does to a body before it goes in a record:
 * content-type filtering, truncation at a UTF-8 boundary, masking of JSON
 * fields at any depth, and base64 for bytes that are not UTF-8. */
#ifndef TBL_BODY_H
#define TBL_BODY_H

#include <stddef.h>

/* 1 if `content_type` (a header value, parameters allowed) matches one of
 * the patterns (fnmatch, case-insensitive: "application/json", "text/ *",
 * "application/ *+json", without the spaces).  An empty pattern list matches everything. */
int tbl_content_type_allowed(const char *content_type, size_t ctlen, const char *const *patterns,
                             size_t npatterns);

/* Length of the longest prefix of s[0..len) that is valid UTF-8, treating a
 * multi-byte sequence cut off by the end as invalid. */
size_t tbl_utf8_valid_prefix(const char *s, size_t len);

/* A copy of s[0..len) in which each maximal invalid subsequence (Unicode's
 * "substitution of maximal subparts", as WHATWG's UTF-8 decoder does) is
 * replaced by U+FFFD, written as EF BF BD: a byte that never starts a
 * character (80..C1, F5..FF), a sequence cut short (E2 82 then a
 * non-continuation), an overlong (C0 80: two), a surrogate (ED A0 80:
 * three), above U+10FFFF (F4 90 80 80: four).  Returns a malloc'd,
 * NUL-terminated string the caller frees, with its length in *outlen and
 * the number of replacements in *replaced (may be NULL); NULL when out of
 * memory. */
char *tbl_utf8_repair(const char *s, size_t len, size_t *outlen, size_t *replaced);

/* How many of the len bytes kept from a body of `size` bytes go in the
 * record (at most max): when the body was cut, a UTF-8 character split by
 * the cut is dropped whole so the text stays valid. */
size_t tbl_truncate_point(const char *s, size_t len, size_t size, size_t max);

/* Base64 of s[0..len) into a malloc'd NUL-terminated string. */
char *tbl_base64(const char *s, size_t len, size_t *outlen);

/* Decodes the escapes of a JSON string's raw content s[0..len) (as every
 * parser downstream will) into out; returns the decoded length, or -1 if it
 * does not fit in cap bytes or is malformed. */
long tbl_json_unescape(const char *s, size_t len, char *out, size_t cap);

/* 1 if the raw JSON key k[0..klen) (escapes decoded, as a parser would)
 * equals one of the names, ignoring ASCII case. */
int tbl_json_key_matches(const char *k, size_t klen, const char *const *names, size_t n);

/* If s looks like JSON (first non-space byte '{' or '['), makes a malloc'd
 * copy in which the value of every key named in `fields` (case-insensitive,
 * any depth) is replaced by "REDACTED"; works on truncated JSON too (a
 * value cut off by the end is masked to the end).  Returns 1 with *out set,
 * 0 when nothing needed masking, -1 when out of memory (the caller must then
 * not log the body). */
int tbl_json_mask(const char *s, size_t len, const char *const *fields, size_t nfields,
                  char **out, size_t *outlen);

#endif
