/* record.h: builds tcp-body-log's record: Kong's kong.log.serialize()
 * object, unchanged except for redacted header values and our join key
 * removed, with the captured bodies added under request and response:
 *   body            the text, or base64 when the bytes are not UTF-8
 *   body_encoding   "text" or "base64"
 *   body_size       the original size in bytes (when known)
 *   body_truncated  whether body holds only the start of the body (cut at
 *                   max_body_size, or to fit max_record_size)
 *   body_skipped    instead of body: why it was not captured
 *
 * Framing (opts.framing):
 *   TBL_FRAMING_JSON_LINES  the JSON object followed by "\n";
 *   TBL_FRAMING_SYSLOG      "LEN <PRI>1 TIMESTAMP HOSTNAME APP-NAME - tcp-body-log - "
 *                           then the JSON object, no newline: an RFC 5424
 *                           message octet-counted as RFC 6587 says (syslog.h).
 *
 * Size (opts.max_record_size, 0 for no limit): the line with its "\n", or
 * the syslog message (header and JSON, without the "LEN " prefix: what
 * rsyslog's maxMessageSize and syslog-ng's log-msg-size measure).  A record
 * over the limit gets its body values cut so it fits: the bytes left after
 * everything else are split between request and response body (a body that
 * needs less than half leaves the rest to the other); text is cut at a
 * character and escape boundary, base64 at a multiple of 3 input bytes,
 * masked JSON after masking.  A cut body says body_truncated true and keeps
 * body_size (the original size).  When the record does not fit even with
 * empty body values (huge headers), it goes out whole with every body
 * value "" (body_truncated true), counted in records_oversize: a record is
 * never split.
 *
 * UTF-8 (RFC 8259): Kong's serialize copies raw bytes of the query string,
 * headers and URI.  Every record is valid UTF-8: a serialize text with an
 * invalid sequence has each maximal invalid subsequence (Unicode's
 * "substitution of maximal subparts", as WHATWG's decoder) replaced by
 * U+FFFD (bytes EF BF BD) before it is read, in keys and values alike:
 * "caf\xe9" becomes "caf\xef\xbf\xbd" (counted in records_utf8_repaired).
 * JSON escapes are left as Kong wrote them, "\ud800" too.  Bodies that are
 * not UTF-8 go as base64, never repaired. */
#ifndef TBL_RECORD_H
#define TBL_RECORD_H

#include <stddef.h>
#include <stdint.h>

/* opts.framing */
enum tbl_framing_e { TBL_FRAMING_JSON_LINES = 0, TBL_FRAMING_SYSLOG = 1 };

typedef struct tbl_record_opts_s {
  size_t max_body_size;
  int log_request_body, log_response_body;
  const char *const *content_types;
  size_t ncontent_types;
  const char *const *redact_headers;
  size_t nredact_headers;
  const char *const *redact_json_fields;
  size_t nredact_json_fields;
  size_t max_record_size;      /* bytes of the framed record (above); 0: no limit */
  int framing;                 /* TBL_FRAMING_JSON_LINES or TBL_FRAMING_SYSLOG */
  int syslog_facility;         /* 0..23 (tbl_syslog_facility_code); else 1, "user" */
  const char *syslog_app_name; /* APP-NAME: 1..48 bytes '!'..'~'; NULL: "-" */
  const char *syslog_hostname; /* HOSTNAME (tbl_syslog_hostname); NULL: "-" */
} tbl_record_opts_t;

/* Why a body is not in the record (body_skipped). */
typedef enum tbl_skip_e {
  TBL_SKIP_DISABLED = 0,     /* "disabled": log_*_body is false */
  TBL_SKIP_CONTENT_TYPE,     /* "content_type": not in content_types */
  TBL_SKIP_FILE_BUFFERED,    /* "file_buffered": nginx kept the request body in a file */
  TBL_SKIP_SHORT_CIRCUITED,  /* "short_circuited": Kong answered before proxying */
  TBL_SKIP_NO_RESPONSE_PHASE,/* "no_response_phase": proxied without buffering (upgrade,
                                upstream failure mid-response) */
  TBL_SKIP_CONTEXT_LOST,     /* "context_lost": evicted, expired or server restarted */
  TBL_SKIP_NOT_RECEIVED,     /* "not_received": the body's RPC failed (e.g. over the cap) */
  TBL_SKIP_REDACTION_FAILED, /* "redaction_failed": out of memory while masking */
  TBL_SKIP__COUNT
} tbl_skip_t;

typedef struct tbl_record_stats_s {
  uint64_t records;
  uint64_t serialize_invalid;
  uint64_t bodies_logged, bodies_truncated, bodies_base64, bodies_masked;
  uint64_t bodies_shortened;      /* body values cut to fit max_record_size */
  uint64_t records_oversize;      /* over max_record_size even with empty bodies */
  uint64_t records_utf8_repaired; /* serialize held invalid UTF-8 (replaced by U+FFFD) */
  uint64_t skipped[TBL_SKIP__COUNT];
} tbl_record_stats_t;

const char *tbl_skip_name(tbl_skip_t why);

/* Builds the record for one kong.log.serialize() JSON text; takes (and
 * frees) the exchange context named in it.  now_ms is the syslog
 * TIMESTAMP.  Returns the framed record, malloc'd and NUL-terminated (the
 * caller frees it), its length in *outlen; or NULL with a message in err
 * (serialize was not a JSON object, or out of memory). */
char *tbl_record_build(const char *serialize, size_t len, const tbl_record_opts_t *o,
                       uint64_t now_ms, size_t *outlen, char *err, size_t errlen);

void tbl_record_get_stats(tbl_record_stats_t *out);

#endif
