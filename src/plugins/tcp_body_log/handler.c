/* handler.c: tcp-body-log, Kong's tcp-log with the request and response
 * bodies added.
 *
 * Six RPCs per logged exchange (Kong's client makes one round trip per
 * HandleEvent and per PDK call):
 *   response  HandleEvent -> kong.log.set_serialize_value(key, id)
 *             Step        -> kong.nginx.get_var("request_body")
 *             Step(body)  -> kong.service.response.get_raw_body()
 *             Step(body)  -> "ret"
 *   log       HandleEvent -> kong.log.serialize()
 *             Step(json)  -> "ret"   (record built and queued to the sink)
 * Declaring `response` makes Kong buffer the upstream response and read the
 * whole request body first (Kong.response in kong/init.lua), so both bodies
 * are readable there.  $request_body is nil when nginx spooled the body to a
 * file; unlike kong.request.get_raw_body on Kong <= 3.7, that never fails the
 * request.  The join key travels inside kong.log.serialize(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "instance.h"
#include "kps_plugin.h"
#include "record.h"
#include "server.h"
#include "sink.h"
#include "syslog.h"

extern const kps_plugin_t kps__plugin_tcp_body_log;
#define PLUGIN (&kps__plugin_tcp_body_log)

/* Every rule is here, so Kong refuses a bad config when it is written;
 * instance_start refuses only files that cannot be read or used. */
#define DEFAULT_REDACT_HEADERS \
  "[\"authorization\",\"proxy-authorization\",\"cookie\",\"set-cookie\",\"apikey\",\"x-api-key\"]"

#define HOST_NAME_LEN .flags = KPS_FIELD_LEN, .min = 1, .max = 255 /* a DNS name's limit */
#define PATH_LEN .flags = KPS_FIELD_LEN, .min = 1, .max = 4096    /* PATH_MAX */

/* A hosts entry: a name or IPv4 address, or an IPv6 address in brackets,
 * then a port of 1..65535.  Lua patterns have no alternation, so the port
 * range takes six patterns per host form (Kong's match_any). */
#define EP_NAME "^[%w%._%-]+:"
#define EP_V6 "^%[[%x:%.]+%]:"
#define EP_PORTS(h) \
  h "[1-9]%d?%d?%d?$", h "[1-5]%d%d%d%d$", h "6[0-4]%d%d%d$", h "65[0-4]%d%d$", h "655[0-2]%d$", \
      h "6553[0-5]$"
static const char *const endpoint_patterns[] = {EP_PORTS(EP_NAME), EP_PORTS(EP_V6), NULL};
#define ENDPOINT_ERR "expected host:port or [IPv6]:port, with a port of 1 to 65535"

static const char *const balances[] = {"failover", "round_robin", NULL};
static const char *const framings[] = {"json_lines", "syslog", NULL};

static const kps_field_t fields[] = {
    {.name = "host", .type = KPS_FIELD_STRING, HOST_NAME_LEN,
     .description = "The collector's host name or IP address (or use hosts)."},
    {.name = "port", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN, .min = 1, .max = 65535,
     .description = "The collector's TCP port, with host."},
    {.name = "hosts", .type = KPS_FIELD_STRING_ARRAY, .flags = KPS_FIELD_LEN, .min = 3, .max = 255,
     .match_any = endpoint_patterns, .match_any_err = ENDPOINT_ERR, .max_items = 32,
     .description = "Several collectors instead of host and port: \"host:port\" or \"[v6]:port\" "
                    "entries, used as balance says."},
    {.name = "balance", .type = KPS_FIELD_STRING, .default_json = "\"failover\"", .one_of = balances,
     .description = "failover: the first healthy collector in order; round_robin: each in turn."},
    {.name = "timeout", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "10000", .min = 1, .max = 3600000,
     .description = "Connect and send timeout towards the collector, in milliseconds."},
    {.name = "keepalive", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "60000", .min = 1, .max = 86400000,
     .description = "How long an idle collector connection stays open, in milliseconds."},
    {.name = "tls", .type = KPS_FIELD_BOOLEAN, .default_json = "false",
     .description = "Connect to the collector with TLS."},
    {.name = "tls_sni", .type = KPS_FIELD_STRING, HOST_NAME_LEN,
     .description = "Server name sent with TLS (SNI) and checked against the certificate."},
    {.name = "tls_verify", .type = KPS_FIELD_BOOLEAN, .default_json = "true",
     .description = "Verify the collector's certificate chain and name (on by default)."},
    {.name = "tls_ca_file", .type = KPS_FIELD_STRING, PATH_LEN,
     .description = "PEM bundle of CAs to verify the collector with; default: the system store."},
    {.name = "tls_client_cert", .type = KPS_FIELD_STRING, PATH_LEN,
     .description = "PEM client certificate presented to the collector (mutual TLS)."},
    {.name = "tls_client_key", .type = KPS_FIELD_STRING, PATH_LEN,
     .description = "PEM private key of tls_client_cert; set both or neither."},
    {.name = "log_request_body", .type = KPS_FIELD_BOOLEAN, .default_json = "true",
     .description = "Add the request body to the record."},
    {.name = "log_response_body", .type = KPS_FIELD_BOOLEAN, .default_json = "true",
     .description = "Add the upstream response body to the record."},
    {.name = "max_body_size", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "8192", .min = 0, .max = 16777216,
     .description = "Bytes of each body kept in the record; a longer body is truncated and marked."},
    {.name = "content_types", .type = KPS_FIELD_STRING_ARRAY, .default_json = "[]",
     .description = "Content types whose bodies are logged, such as application/json or text/*; "
                    "empty logs all."},
    {.name = "redact_headers", .type = KPS_FIELD_STRING_ARRAY, .default_json = DEFAULT_REDACT_HEADERS,
     .description = "Header names whose values are replaced by REDACTED in the record."},
    {.name = "redact_json_fields", .type = KPS_FIELD_STRING_ARRAY, .default_json = "[]",
     .description = "JSON keys whose values are masked, at any depth, in JSON bodies."},
    {.name = "queue_max_bytes", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "16777216", .min = 65536, .max = 1073741824,
     .description = "Cap on the bytes of records waiting for the collector; newer records are dropped."},
    {.name = "queue_max_entries", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "10000", .min = 1, .max = 10000000,
     .description = "Cap on the number of records waiting for the collector; newer records are dropped."},
    {.name = "context_ttl", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "60000", .min = 1000, .max = 3600000,
     .description = "How long captured bodies wait for their log phase, in milliseconds."},
    {.name = "context_max_bytes", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "67108864", .min = 65536, .max = 4294967296.0,
     .description = "Cap on the bytes of captured bodies waiting for their log phase."},
    {.name = "max_record_size", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "65536", .min = 4096, .max = 67108864,
     .description = "Longest record the collector takes, in bytes (the line with its newline, or "
                    "the syslog message); bodies are cut to fit."},
    {.name = "framing", .type = KPS_FIELD_STRING, .default_json = "\"json_lines\"", .one_of = framings,
     .description = "json_lines: one JSON record per line; syslog: RFC 5424 messages, octet-counted "
                    "(RFC 6587)."},
    {.name = "syslog_facility", .type = KPS_FIELD_STRING, .default_json = "\"user\"",
     .one_of = tbl_syslog_facility_names,
     .description = "The syslog facility of the messages (framing syslog)."},
    {.name = "syslog_app_name", .type = KPS_FIELD_STRING, .flags = KPS_FIELD_LEN, .min = 1, .max = 48,
     .match = "^[!-~]+$", .default_json = "\"kong\"",
     .description = "The syslog APP-NAME of the messages (framing syslog), printable ASCII."},
};

/* The client certificate and its key come together (Kong refuses one
 * without the other, so StartInstance never has to). */
static const char *const client_pair[] = {"tls_client_cert", "tls_client_key", NULL};
/* One collector (host and port) or several (hosts). */
static const char *const host_port[] = {"host", "port", NULL};
static const char *const host_or_hosts[] = {"host", "hosts", NULL};
static const kps_check_t checks[] = {
    {.kind = KPS_CHECK_MUTUALLY_REQUIRED, .fields = client_pair},
    {.kind = KPS_CHECK_ONLY_ONE_OF, .fields = host_or_hosts},
    {.kind = KPS_CHECK_MUTUALLY_REQUIRED, .fields = host_port},
};

/* One configured instance. */
typedef struct tbl_instance_s {
  kps_sink_t *sink;
  tbl_record_opts_t opts;
  const char **lists; /* content_types, redact_headers, redact_json_fields */
  char hostname[256]; /* the syslog HOSTNAME */
} tbl_instance_t;

static uint64_t records_queued, records_refused, serialize_missing, contexts_refused;

/* Points `*out` at the config array's strings (owned by the config). */
static const char **take_list(const kps_config_t *cfg, const char *name, const char **slot,
                              size_t *n) {
  *n = kps_config_array_len(cfg, name);
  for (size_t i = 0; i < *n; i++) slot[i] = kps_config_array_at(cfg, name, i);
  return slot;
}

/* 1 if the string field `name` holds `value`. */
static int config_is(const kps_config_t *cfg, const char *name, const char *value) {
  const char *v = kps_config_string(cfg, name);
  return v != NULL && strcmp(v, value) == 0;
}

/* The record builder's options; the lists point into ti->lists. */
static void record_opts(tbl_instance_t *ti, const kps_config_t *cfg) {
  tbl_record_opts_t *o = &ti->opts;
  size_t used = 0;
  o->content_types = take_list(cfg, "content_types", ti->lists, &o->ncontent_types);
  used += o->ncontent_types;
  o->redact_headers = take_list(cfg, "redact_headers", ti->lists + used, &o->nredact_headers);
  used += o->nredact_headers;
  o->redact_json_fields =
      take_list(cfg, "redact_json_fields", ti->lists + used, &o->nredact_json_fields);
  o->max_body_size = (size_t)kps_config_integer(cfg, "max_body_size", 8192);
  o->log_request_body = kps_config_bool(cfg, "log_request_body", 1);
  o->log_response_body = kps_config_bool(cfg, "log_response_body", 1);
  o->max_record_size = (size_t)kps_config_integer(cfg, "max_record_size", 65536);
  o->framing = config_is(cfg, "framing", "syslog") ? TBL_FRAMING_SYSLOG : TBL_FRAMING_JSON_LINES;
  const char *facility = kps_config_string(cfg, "syslog_facility");
  int code = facility != NULL ? tbl_syslog_facility_code(facility) : -1;
  o->syslog_facility = code >= 0 ? code : 1; /* "user", the default */
  o->syslog_app_name = kps_config_string(cfg, "syslog_app_name");
  if (o->syslog_app_name == NULL) o->syslog_app_name = "kong";
  tbl_syslog_hostname(ti->hostname, sizeof(ti->hostname));
  o->syslog_hostname = ti->hostname;
}

/* The collector connection: host and port, or the hosts list.  The sink
 * copies what it keeps, so the parsed endpoints live only for the call. */
static kps_sink_t *acquire_sink(const kps_config_t *cfg, char *err, size_t errlen) {
  size_t n = kps_config_array_len(cfg, "hosts");
  kps_sink_endpoint_t *eps = n > 0 ? calloc(n, sizeof(*eps)) : NULL;
  char(*names)[256] = n > 0 ? calloc(n, sizeof(*names)) : NULL;
  kps_sink_t *sink = NULL;
  char *why = NULL;
  if (n > 0 && (eps == NULL || names == NULL)) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    eps[i].host = names[i];
    if (kps_sink_parse_endpoint(kps_config_array_at(cfg, "hosts", i), names[i], sizeof(names[i]),
                                &eps[i].port, &why) != 0) {
      snprintf(err, errlen, "hosts: %s", why ? why : "bad entry");
      goto out;
    }
  }
  kps_sink_config_t sc = {
      .host = kps_config_string(cfg, "host"),
      .port = (int)kps_config_integer(cfg, "port", 0),
      .endpoints = eps,
      .nendpoints = n,
      .balance = config_is(cfg, "balance", "round_robin") ? KPS_SINK_ROUND_ROBIN : KPS_SINK_FAILOVER,
      .timeout_ms = (uint64_t)kps_config_integer(cfg, "timeout", 10000),
      .keepalive_ms = (uint64_t)kps_config_integer(cfg, "keepalive", 60000),
      .tls = kps_config_bool(cfg, "tls", 0),
      .tls_sni = kps_config_string(cfg, "tls_sni"),
      .tls_verify = kps_config_bool(cfg, "tls_verify", 1),
      .tls_ca_file = kps_config_string(cfg, "tls_ca_file"),
      .tls_client_cert = kps_config_string(cfg, "tls_client_cert"),
      .tls_client_key = kps_config_string(cfg, "tls_client_key"),
      .queue_max_bytes = (size_t)kps_config_integer(cfg, "queue_max_bytes", 16 << 20),
      .queue_max_entries = (size_t)kps_config_integer(cfg, "queue_max_entries", 10000),
  };
  sink = kps_sink_acquire(kps__server_loop(), &sc, &why);
  if (sink == NULL) snprintf(err, errlen, "%s", why ? why : "cannot set up the collector connection");
out:
  free(why);
  free(names);
  free(eps);
  return sink;
}

static int instance_start(kps_instance_t *inst, const kps_config_t *cfg, void **data, char *err,
                          size_t errlen) {
  size_t nlists = kps_config_array_len(cfg, "content_types") +
                  kps_config_array_len(cfg, "redact_headers") +
                  kps_config_array_len(cfg, "redact_json_fields");
  tbl_instance_t *ti = calloc(1, sizeof(*ti));
  const char **lists = calloc(nlists + 1, sizeof(char *));
  if (ti == NULL || lists == NULL) {
    free(lists);
    free(ti);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  ti->lists = lists;
  record_opts(ti, cfg);
  ti->sink = acquire_sink(cfg, err, errlen);
  if (ti->sink == NULL) {
    free(ti->lists);
    free(ti);
    return -1;
  }
  tbl_exchange_set_limits((uint64_t)kps_config_integer(cfg, "context_ttl", 60000),
                          (size_t)kps_config_integer(cfg, "context_max_bytes", 64 << 20),
                          (size_t)kps_config_integer(cfg, "queue_max_entries", 10000));
  *data = ti;
  return 0;
}

static void instance_close(kps_instance_t *inst, void *data) {
  tbl_instance_t *ti = data;
  if (ti == NULL) return;
  kps_sink_release(ti->sink);
  free(ti->lists);
  free(ti);
}

static tbl_instance_t *instance_of(kps_event_t *ev) {
  return kps_instance_data(kps_event_instance(ev));
}

/* ---- response phase: capture both bodies ------------------------------- */

static tbl_exchange_t *exchange_of(kps_event_t *ev) {
  return tbl_exchange_lookup((int64_t)(intptr_t)kps_event_data(ev));
}

/* Stores a body result (str, bin or nil) in the exchange's slot. */
static void capture(kps_event_t *ev, const kps_value_t *result, int request) {
  tbl_exchange_t *ex = exchange_of(ev); /* may have been evicted meanwhile */
  if (ex == NULL) return;
  tbl_captured_t *slot = request ? &ex->req : &ex->resp;
  size_t len;
  const char *data = kps_value_string(result, &len);
  if (data == NULL) {
    slot->state = TBL_BODY_NIL;
    return;
  }
  tbl_exchange_capture(ex, slot, data, len, instance_of(ev)->opts.max_body_size);
}

static void got_response_body(kps_event_t *ev, const kps_value_t *body, void *ud) {
  capture(ev, body, 0);
  kps_done(ev);
}

static void ask_response_body(kps_event_t *ev) {
  if (instance_of(ev)->opts.log_response_body)
    kps_call(ev, got_response_body, NULL, "kong.service.response.get_raw_body", "");
  else
    kps_done(ev);
}

static void got_request_body(kps_event_t *ev, const kps_value_t *body, void *ud) {
  capture(ev, body, 1);
  ask_response_body(ev);
}

static void key_set(kps_event_t *ev, const kps_value_t *ignored, void *ud) {
  if (instance_of(ev)->opts.log_request_body)
    kps_call(ev, got_request_body, NULL, "kong.nginx.get_var", "s", "request_body");
  else
    ask_response_body(ev);
}

static void response_phase(kps_event_t *ev) {
  tbl_instance_t *ti = instance_of(ev);
  char key[TBL_KEY_MAX];
  tbl_exchange_t *ex = tbl_exchange_new(kps__now_ms(), key);
  if (ex == NULL) {
    contexts_refused++;
    kps_done(ev);
    return;
  }
  ex->req.state = ti->opts.log_request_body ? TBL_BODY_PENDING : TBL_BODY_DISABLED;
  ex->resp.state = ti->opts.log_response_body ? TBL_BODY_PENDING : TBL_BODY_DISABLED;
  kps_event_set_data(ev, (void *)(intptr_t)ex->node.id, NULL);
  kps_call(ev, key_set, NULL, "kong.log.set_serialize_value", "ss", TBL_EXCHANGE_KEY, key);
}

/* ---- log phase: serialize, build, queue -------------------------------- */

static void got_serialize(kps_event_t *ev, const kps_value_t *json, void *ud) {
  kps_instance_t *inst = kps_event_instance(ev);
  tbl_instance_t *ti = kps_instance_data(inst);
  size_t len, n;
  char err[160];
  const char *s = kps_value_string(json, &len);
  /* Answer first: Kong's log timer is done with us.  The serialize text
   * stays valid until this callback returns; the instance is held. */
  kps__instance_hold(inst);
  kps_done(ev);
  if (s == NULL) {
    serialize_missing++;
    kps_log(PLUGIN, KPS_LEVEL_WARN, "kong.log.serialize() returned nothing; no record");
    kps__instance_release(inst);
    return;
  }
  char *line = tbl_record_build(s, len, &ti->opts, kps__now_ms(), &n, err, sizeof(err));
  if (line == NULL) {
    kps_log(PLUGIN, KPS_LEVEL_WARN, "no record: %s", err);
  } else if (kps_sink_enqueue(ti->sink, line, n) == 0) {
    records_queued++;
  } else {
    records_refused++; /* counted by reason in the sink */
  }
  kps__instance_release(inst);
}

static void log_phase(kps_event_t *ev) {
  kps_call(ev, got_serialize, NULL, "kong.log.serialize", "");
}

/* ---- status ------------------------------------------------------------ */

static void sink_status(kps_sink_t *sink, void *ud) {
  kps_status_t *st = ud;
  kps_sink_stats_t s;
  static const char *const drop_names[KPS_SINK_DROP__COUNT] = {"queue_bytes", "queue_entries",
                                                               "too_large", "shutdown"};
  kps_sink_get_stats(sink, &s);
  kps_status_begin(st, kps_sink_name(sink));
  kps_status_counter(st, "records_enqueued", s.records_enqueued);
  kps_status_counter(st, "records_sent", s.records_sent);
  kps_status_counter(st, "bytes_sent", s.bytes_sent);
  kps_status_counter(st, "records_resent", s.records_resent);
  kps_status_counter(st, "records_replayed", s.records_replayed);
  kps_status_begin(st, "dropped");
  for (int i = 0; i < KPS_SINK_DROP__COUNT; i++) kps_status_counter(st, drop_names[i], s.dropped[i]);
  kps_status_end(st);
  kps_status_counter(st, "queue_depth", s.queue_depth);
  kps_status_counter(st, "queue_bytes", s.queue_bytes);
  kps_status_counter(st, "replay_bytes", s.replay_bytes);
  kps_status_counter(st, "connects", s.connects);
  kps_status_counter(st, "reconnects", s.reconnects);
  kps_status_counter(st, "connect_failures", s.connect_failures);
  kps_status_counter(st, "tls_failures", s.tls_failures);
  kps_status_counter(st, "write_errors", s.write_errors);
  kps_status_counter(st, "tls_unconfirmed", s.tls_unconfirmed);
  kps_status_counter(st, "connected", (uint64_t)s.connected);
  kps_status_begin(st, "endpoints");
  for (size_t i = 0, n = kps_sink_endpoint_count(sink); i < n; i++) {
    kps_sink_endpoint_stats_t e;
    kps_sink_get_endpoint_stats(sink, i, &e);
    kps_status_begin(st, e.name);
    kps_status_counter(st, "records_sent", e.records_sent);
    kps_status_counter(st, "bytes_sent", e.bytes_sent);
    kps_status_counter(st, "connects", e.connects);
    kps_status_counter(st, "connect_failures", e.connect_failures);
    kps_status_counter(st, "tls_failures", e.tls_failures);
    kps_status_counter(st, "tls_unconfirmed", e.tls_unconfirmed);
    kps_status_counter(st, "write_errors", e.write_errors);
    kps_status_counter(st, "connected", (uint64_t)e.connected);
    kps_status_counter(st, "healthy", (uint64_t)e.healthy);
    kps_status_counter(st, "backoff_ms", e.backoff_ms);
    kps_status_end(st);
  }
  kps_status_end(st);
  kps_status_end(st);
}

static void status(kps_status_t *st) {
  tbl_record_stats_t r;
  tbl_exchange_stats_t x;
  tbl_record_get_stats(&r);
  tbl_exchange_get_stats(&x);
  kps_status_counter(st, "records_queued", records_queued);
  kps_status_counter(st, "records_refused", records_refused);
  kps_status_counter(st, "serialize_invalid", r.serialize_invalid);
  kps_status_counter(st, "serialize_missing", serialize_missing);
  kps_status_counter(st, "bodies_logged", r.bodies_logged);
  kps_status_counter(st, "bodies_truncated", r.bodies_truncated);
  kps_status_counter(st, "bodies_base64", r.bodies_base64);
  kps_status_counter(st, "bodies_masked", r.bodies_masked);
  kps_status_counter(st, "bodies_shortened", r.bodies_shortened);
  kps_status_counter(st, "records_oversize", r.records_oversize);
  kps_status_counter(st, "records_utf8_repaired", r.records_utf8_repaired);
  kps_status_begin(st, "bodies_skipped");
  for (int i = 0; i < TBL_SKIP__COUNT; i++)
    kps_status_counter(st, tbl_skip_name((tbl_skip_t)i), r.skipped[i]);
  kps_status_end(st);
  kps_status_begin(st, "contexts");
  kps_status_counter(st, "live", x.live);
  kps_status_counter(st, "bytes", x.bytes);
  kps_status_counter(st, "created", x.created);
  kps_status_counter(st, "consumed", x.consumed);
  kps_status_counter(st, "evicted", x.evicted);
  kps_status_counter(st, "expired", x.expired);
  kps_status_counter(st, "lost", x.lost);
  kps_status_counter(st, "refused", contexts_refused);
  kps_status_end(st);
  kps_status_begin(st, "sinks");
  kps_sink_foreach(sink_status, st);
  kps_status_end(st);
}

static void shutdown_plugin(void) { tbl_exchange_clear(); }

const kps_plugin_t kps__plugin_tcp_body_log = {
    .api_version = KPS_API_VERSION,
    .name = "tcp-body-log",
    .version = "0.1.0",
    .priority = 7,
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
    .checks = checks,
    .nchecks = sizeof(checks) / sizeof(checks[0]),
    .phases = {[KPS_PHASE_RESPONSE] = response_phase, [KPS_PHASE_LOG] = log_phase},
    .instance_start = instance_start,
    .instance_close = instance_close,
    .status = status,
    .shutdown = shutdown_plugin,
};
