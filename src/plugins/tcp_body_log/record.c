/* record.c: serialize JSON + captured bodies -> one record line (record.h). */
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>

#include "body.h"
#include "exchange.h"

static tbl_record_stats_t stats;

static const char *const skip_names[TBL_SKIP__COUNT] = {
    "disabled", "content_type", "file_buffered", "short_circuited",
    "no_response_phase", "context_lost", "not_received", "redaction_failed",
};

const char *tbl_skip_name(tbl_skip_t why) { return skip_names[why]; }

void tbl_record_get_stats(tbl_record_stats_t *out) { *out = stats; }

static int in_list_nocase(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(s, list[i]) == 0) return 1;
  return 0;
}

/* Replaces the values of the named headers with "REDACTED" (serialize gives
 * lowercase names; we compare case-insensitively anyway). */
static void redact_headers(cJSON *headers, const tbl_record_opts_t *o) {
  if (!cJSON_IsObject(headers)) return;
  cJSON *next;
  for (cJSON *h = headers->child; h != NULL; h = next) {
    next = h->next; /* replacing frees h */
    if (h->string && in_list_nocase(h->string, o->redact_headers, o->nredact_headers)) {
      cJSON *r = cJSON_CreateString("REDACTED");
      if (r == NULL) { /* cannot redact: drop the header rather than leak it */
        cJSON_Delete(cJSON_DetachItemViaPointer(headers, h));
        continue;
      }
      r->string = h->string; /* the replacement keeps the name */
      h->string = NULL;
      cJSON_ReplaceItemViaPointer(headers, h, r);
    }
  }
}

/* A header value from serialize: a string, or the first of an array. */
static const char *header(const cJSON *headers, const char *name) {
  const cJSON *v = cJSON_GetObjectItem(headers, name); /* case-insensitive */
  if (cJSON_IsArray(v)) v = v->child;
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void add_skip(cJSON *obj, tbl_skip_t why, long long size) {
  cJSON_AddStringToObject(obj, "body_skipped", skip_names[why]);
  if (size >= 0) cJSON_AddNumberToObject(obj, "body_size", (double)size);
  stats.skipped[why]++;
}

/* Adds body, body_encoding, body_size, body_truncated for captured bytes. */
static void add_body(cJSON *obj, const tbl_captured_t *c, const tbl_record_opts_t *o) {
  size_t n = tbl_truncate_point(c->data ? c->data : "", c->len, c->size, o->max_body_size);
  const char *p = c->data ? c->data : "";
  int truncated = c->size > n;
  char *masked = NULL;
  size_t mlen = 0;

  int m = tbl_json_mask(p, n, o->redact_json_fields, o->nredact_json_fields, &masked, &mlen);
  if (m < 0) {
    add_skip(obj, TBL_SKIP_REDACTION_FAILED, (long long)c->size);
    return;
  }
  if (m == 1) {
    p = masked;
    n = mlen;
    stats.bodies_masked++;
  }
  /* cJSON strings end at NUL, so bodies holding NUL go as base64 too. */
  if (tbl_utf8_valid_prefix(p, n) == n && memchr(p, '\0', n) == NULL) {
    char *text = malloc(n + 1);
    if (text != NULL) {
      memcpy(text, p, n);
      text[n] = '\0';
      cJSON_AddStringToObject(obj, "body", text);
      free(text);
    }
    cJSON_AddStringToObject(obj, "body_encoding", "text");
  } else {
    size_t blen;
    char *b64 = tbl_base64(p, n, &blen);
    cJSON_AddStringToObject(obj, "body", b64 ? b64 : "");
    free(b64);
    cJSON_AddStringToObject(obj, "body_encoding", "base64");
    stats.bodies_base64++;
  }
  cJSON_AddNumberToObject(obj, "body_size", (double)c->size);
  cJSON_AddBoolToObject(obj, "body_truncated", truncated);
  stats.bodies_logged++;
  stats.bodies_truncated += truncated;
  free(masked);
}

/* Was the request proxied at all?  Kong fills tries/upstream_uri then. */
static int proxied(const cJSON *root) {
  const cJSON *tries = cJSON_GetObjectItemCaseSensitive(root, "tries");
  const cJSON *uri = cJSON_GetObjectItemCaseSensitive(root, "upstream_uri");
  const cJSON *source = cJSON_GetObjectItemCaseSensitive(root, "source");
  if (cJSON_IsString(source) && strcmp(source->valuestring, "kong") == 0 &&
      !(cJSON_IsArray(tries) && tries->child))
    return 0;
  return (cJSON_IsArray(tries) && tries->child != NULL) ||
         (cJSON_IsString(uri) && uri->valuestring[0] != '\0');
}

static long long content_length(const cJSON *headers) {
  const char *cl = header(headers, "content-length");
  if (cl == NULL) return -1;
  char *end;
  long long v = strtoll(cl, &end, 10);
  return (end == cl || v < 0) ? -1 : v;
}

/* The fields this plugin owns in request and response; whatever serialize
 * already holds under these names (another plugin's set_serialize_value)
 * is replaced, so a consumer never reads someone else's unredacted body. */
static const char *const body_keys[] = {"body", "body_encoding", "body_size", "body_truncated",
                                        "body_skipped"};

static void body_fields(cJSON *obj, int enabled, int have_key, const tbl_exchange_t *ex,
                        const tbl_captured_t *c, int is_request, int was_proxied,
                        const tbl_record_opts_t *o) {
  for (size_t i = 0; i < sizeof(body_keys) / sizeof(body_keys[0]); i++)
    while (cJSON_GetObjectItemCaseSensitive(obj, body_keys[i]) != NULL)
      cJSON_DeleteItemFromObjectCaseSensitive(obj, body_keys[i]);
  const cJSON *headers = cJSON_GetObjectItemCaseSensitive(obj, "headers");
  if (!enabled) {
    add_skip(obj, TBL_SKIP_DISABLED, -1);
    return;
  }
  if (!have_key) {
    add_skip(obj, was_proxied ? TBL_SKIP_NO_RESPONSE_PHASE : TBL_SKIP_SHORT_CIRCUITED,
             is_request ? content_length(headers) : -1);
    return;
  }
  if (ex == NULL) {
    add_skip(obj, TBL_SKIP_CONTEXT_LOST, is_request ? content_length(headers) : -1);
    return;
  }
  switch (c->state) {
    case TBL_BODY_DISABLED: add_skip(obj, TBL_SKIP_DISABLED, -1); return;
    case TBL_BODY_PENDING: add_skip(obj, TBL_SKIP_NOT_RECEIVED, -1); return;
    case TBL_BODY_NIL: {
      /* nginx returns no $request_body when it spooled the body to a file */
      long long cl = content_length(headers);
      int chunked = header(headers, "transfer-encoding") != NULL;
      if (is_request && (cl > 0 || chunked)) {
        add_skip(obj, TBL_SKIP_FILE_BUFFERED, cl);
        return;
      }
      tbl_captured_t empty = {TBL_BODY_CAPTURED, NULL, 0, 0};
      add_body(obj, &empty, o);
      return;
    }
    case TBL_BODY_CAPTURED: break;
  }
  if (c->size > 0 && !tbl_content_type_allowed(header(headers, "content-type"),
                                               header(headers, "content-type")
                                                   ? strlen(header(headers, "content-type"))
                                                   : 0,
                                               o->content_types, o->ncontent_types)) {
    add_skip(obj, TBL_SKIP_CONTENT_TYPE, (long long)c->size);
    return;
  }
  add_body(obj, c, o);
}

/* The object at root[name], created if missing. */
static cJSON *object_at(cJSON *root, const char *name) {
  cJSON *o = cJSON_GetObjectItemCaseSensitive(root, name);
  if (cJSON_IsObject(o)) return o;
  if (o != NULL) cJSON_DeleteItemFromObjectCaseSensitive(root, name);
  return cJSON_AddObjectToObject(root, name);
}

char *tbl_record_build(const char *serialize, size_t len, const tbl_record_opts_t *o,
                       uint64_t now_ms, size_t *outlen, char *err, size_t errlen) {
  cJSON *root = cJSON_ParseWithLength(serialize, len);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    stats.serialize_invalid++;
    snprintf(err, errlen, "kong.log.serialize() did not return a JSON object");
    return NULL;
  }
  cJSON *key = cJSON_DetachItemFromObjectCaseSensitive(root, TBL_EXCHANGE_KEY);
  int have_key = cJSON_IsString(key);
  tbl_exchange_t *ex = have_key ? tbl_exchange_take(key->valuestring, strlen(key->valuestring), now_ms)
                                : NULL;
  cJSON_Delete(key);

  int was_proxied = proxied(root);
  cJSON *req = object_at(root, "request"), *resp = object_at(root, "response");
  redact_headers(cJSON_GetObjectItemCaseSensitive(req, "headers"), o);
  redact_headers(cJSON_GetObjectItemCaseSensitive(resp, "headers"), o);
  body_fields(req, o->log_request_body, have_key, ex, ex ? &ex->req : NULL, 1, was_proxied, o);
  body_fields(resp, o->log_response_body, have_key, ex, ex ? &ex->resp : NULL, 0, was_proxied, o);
  tbl_exchange_free(ex);

  char *text = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (text == NULL) {
    snprintf(err, errlen, "out of memory printing the record");
    return NULL;
  }
  size_t n = strlen(text);
  char *line = realloc(text, n + 2);
  if (line == NULL) {
    free(text);
    snprintf(err, errlen, "out of memory printing the record");
    return NULL;
  }
  line[n] = '\n';
  line[n + 1] = '\0';
  *outlen = n + 1;
  stats.records++;
  return line;
}
