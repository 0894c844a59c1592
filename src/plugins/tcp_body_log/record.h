/* record.h: builds tcp-body-log's record: Kong's kong.log.serialize()
 * object, unchanged except for redacted header values and our join key
 * removed, with the captured bodies added under request and response:
 *   body            the text, or base64 when the bytes are not UTF-8
 *   body_encoding   "text" or "base64"
 *   body_size       the original size in bytes (when known)
 *   body_truncated  whether body holds only the first max_body_size bytes
 *   body_skipped    instead of body: why it was not captured
 * The record is one JSON object followed by "\n". */
#ifndef TBL_RECORD_H
#define TBL_RECORD_H

#include <stddef.h>
#include <stdint.h>

typedef struct tbl_record_opts_s {
  size_t max_body_size;
  int log_request_body, log_response_body;
  const char *const *content_types;
  size_t ncontent_types;
  const char *const *redact_headers;
  size_t nredact_headers;
  const char *const *redact_json_fields;
  size_t nredact_json_fields;
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
  uint64_t skipped[TBL_SKIP__COUNT];
} tbl_record_stats_t;

const char *tbl_skip_name(tbl_skip_t why);

/* Builds the record for one kong.log.serialize() JSON text; takes (and
 * frees) the exchange context named in it.  Returns a malloc'd line ending
 * in '\n', or NULL with a message in err (serialize was not a JSON object). */
char *tbl_record_build(const char *serialize, size_t len, const tbl_record_opts_t *o,
                       uint64_t now_ms, size_t *outlen, char *err, size_t errlen);

void tbl_record_get_stats(tbl_record_stats_t *out);

#endif
