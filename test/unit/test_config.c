/* test_config.c: config validation against field tables, and the checks
 * that keep a plugin descriptor valid under Kong's schema rules. */
#include "config.h"
#include "plugins.h"
#include "test.h"

static void expect_error(const char *json, const char *want) {
  char err[512] = "";
  kps_config_t *cfg = kps__config_parse(&kps__plugin_tcp_body_log, json, strlen(json), err, sizeof(err));
  if (cfg != NULL) FAIL("config %s was accepted", json);
  ASSERT_STREQ(err, want);
}

TEST(config_tcp_body_log_errors_name_the_field) {
  expect_error("{\"port\":9000}",
               "exactly one of these fields must be non-empty: 'config.host', 'config.hosts'");
  expect_error("{\"host\":\"h\"}", "all or none of these fields must be set: 'config.host', 'config.port'");
  expect_error("{\"host\":\"h\",\"port\":1,\"hosts\":[\"a:1\"]}",
               "exactly one of these fields must be non-empty: 'config.host', 'config.hosts'");
  expect_error("{\"hosts\":[\"a:1\",\"b:65536\"]}",
               "config.hosts[2]: expected host:port or [IPv6]:port, with a port of 1 to 65535");
  expect_error("{\"hosts\":[\"a:0\"]}",
               "config.hosts[1]: expected host:port or [IPv6]:port, with a port of 1 to 65535");
  expect_error("{\"hosts\":[\"::1:80\"]}",
               "config.hosts[1]: expected host:port or [IPv6]:port, with a port of 1 to 65535");
  expect_error("{\"hosts\":[\"a:1\"],\"balance\":\"random\"}",
               "config.balance: expected one of \"failover\", \"round_robin\", got \"random\"");
  expect_error("{\"host\":\"h\",\"port\":1,\"max_record_size\":4095}",
               "config.max_record_size: expected an integer between 4096 and 67108864, got 4095");
  expect_error("{\"host\":\"h\",\"port\":1,\"syslog_app_name\":\"a b\"}",
               "config.syslog_app_name: does not match the pattern ^[!-~]+$");
  expect_error("{\"host\":\"h\",\"port\":0}", "config.port: expected an integer between 1 and 65535, got 0");
  expect_error("{\"host\":\"h\",\"port\":70000}", "config.port: expected an integer between 1 and 65535, got 70000");
  expect_error("{\"host\":\"h\",\"port\":1.5}", "config.port: expected an integer, got 1.5");
  expect_error("{\"host\":\"h\",\"port\":\"80\"}", "config.port: expected an integer, got a string");
  expect_error("{\"host\":5,\"port\":80}", "config.host: expected a string, got 5");
  expect_error("{\"host\":\"h\",\"port\":80,\"max_body_size\":-1}",
               "config.max_body_size: expected an integer between 0 and 16777216, got -1");
  expect_error("{\"host\":\"h\",\"port\":80,\"tls\":\"yes\"}", "config.tls: expected a boolean, got a string");
  expect_error("{\"host\":\"h\",\"port\":80,\"content_types\":\"text/*\"}",
               "config.content_types: expected an array of strings, got a string");
  expect_error("{\"host\":\"h\",\"port\":80,\"redact_headers\":[\"a\",3]}",
               "config.redact_headers[2]: expected a string, got 3");
  expect_error("{\"host\":\"h\",\"port\":80,\"timeout\":0}",
               "config.timeout: expected an integer between 1 and 3600000, got 0");
}

/* hosts: every form the schema's match_any takes, and the element cap. */
TEST(config_hosts_accepted_and_capped) {
  const char *json = "{\"hosts\":[\"a.example:1\",\"10.0.0.1:65535\",\"[::1]:514\",\"log_1:6514\"],"
                     "\"balance\":\"round_robin\",\"framing\":\"syslog\",\"syslog_facility\":\"local3\"}";
  char err[512];
  kps_config_t *cfg = kps__config_parse(&kps__plugin_tcp_body_log, json, strlen(json), err, sizeof(err));
  if (cfg == NULL) FAIL("refused: %s", err);
  ASSERT_EQ(kps_config_array_len(cfg, "hosts"), 4);
  ASSERT_STREQ(kps_config_array_at(cfg, "hosts", 2), "[::1]:514");
  ASSERT_EQ(kps_config_integer(cfg, "max_record_size", -1), 65536);
  ASSERT_STREQ(kps_config_string(cfg, "syslog_app_name"), "kong");
  kps__config_free(cfg);
  char big[1024] = "{\"hosts\":[";
  for (int i = 0; i < 33; i++) strcat(big, i ? ",\"h:1\"" : "\"h:1\"");
  strcat(big, "]}");
  expect_error(big, "config.hosts: expected at most 32 elements, got 33");
}

TEST(config_defaults_and_kong_keys) {
  const char *json = "{\"host\":\"h\",\"port\":80,\"__seq__\":3,\"route_id\":\"r\",\"tls_sni\":null,"
                     "\"content_types\":{},\"max_body_size\":null}";
  char err[256];
  kps_config_t *cfg = kps__config_parse(&kps__plugin_tcp_body_log, json, strlen(json), err, sizeof(err));
  ASSERT(cfg != NULL);
  ASSERT_EQ(kps_config_integer(cfg, "max_body_size", -1), 8192);
  ASSERT_EQ(kps_config_number(cfg, "timeout", -1), 10000);
  ASSERT_EQ(kps_config_bool(cfg, "tls_verify", -1), 1);
  ASSERT_EQ(kps_config_bool(cfg, "tls", -1), 0);
  ASSERT(kps_config_string(cfg, "tls_sni") == NULL);
  ASSERT_EQ(kps_config_array_len(cfg, "redact_headers"), 6);
  ASSERT_STREQ(kps_config_array_at(cfg, "redact_headers", 0), "authorization");
  ASSERT_EQ(kps_config_array_len(cfg, "content_types"), 0);
  kps__config_free(cfg);
}

static void on_access(kps_event_t *ev) { kps_done(ev); }

static const kps_field_t good_fields[] = {
    {.name = "message", .type = KPS_FIELD_STRING, .default_json = "\"hi\"", .description = "A long enough description."},
};

TEST(plugin_descriptor_checks) {
  char err[256];
  kps_plugin_t p = {.api_version = KPS_API_VERSION, .name = "ok-plugin", .version = "1.2.3",
                    .priority = 5, .fields = good_fields, .nfields = 1,
                    .phases = {[KPS_PHASE_ACCESS] = on_access}};
  ASSERT_EQ(kps__plugin_check(&p, err, sizeof(err)), 0);

  kps_plugin_t bad = p;
  bad.version = "1.0.0.0";
  ASSERT_EQ(kps__plugin_check(&bad, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "Version must look like x.y.z");

  bad = p;
  bad.api_version = KPS_API_VERSION + 1;
  ASSERT_EQ(kps__plugin_check(&bad, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "plugin API version");

  bad = p;
  bad.name = "Bad Name";
  ASSERT_EQ(kps__plugin_check(&bad, err, sizeof(err)), -1);

  kps_field_t f = good_fields[0];
  f.description = "short";
  bad = p;
  bad.fields = &f;
  ASSERT_EQ(kps__plugin_check(&bad, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "description must be 10 to 500 characters");

  f = good_fields[0];
  f.default_json = "5";
  ASSERT_EQ(kps__plugin_check(&bad, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "default does not validate");

  f = good_fields[0];
  f.name = "__seq__";
  ASSERT_EQ(kps__plugin_check(&bad, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "reserved by Kong");

  bad = p;
  memset(bad.phases, 0, sizeof(bad.phases));
  ASSERT_EQ(kps__plugin_check(&bad, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "declares no phase");
}

TEST(builtin_plugins_registered_and_valid) {
  char err[256];
  kps__plugins_init();
  ASSERT_EQ(kps__plugins_count(), 2);
  for (size_t i = 0; i < kps__plugins_count(); i++)
    ASSERT_EQ(kps__plugin_check(kps__plugins_at(i), err, sizeof(err)), 0);
  ASSERT(kps__plugins_find("tcp-body-log", 12) != NULL);
  ASSERT(kps__plugins_find("c-hello", 7) != NULL);
  ASSERT_EQ(kps__plugins_register(&kps__plugin_c_hello, "test", err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "duplicate plugin name");
}

/* ---- the rules Kong's schema states, applied at StartInstance (R30-R33) ---- */

static const char *const modes[] = {"fast", "slow", NULL};
static const char *const pair[] = {"cert", "key", NULL};
static const char *const either[] = {"host", "hosts", NULL};
static const kps_field_t rule_fields[] = {
    {.name = "host", .type = KPS_FIELD_STRING, .flags = KPS_FIELD_LEN, .min = 1, .max = 8,
     .description = "A host name of at most 8 bytes."},
    {.name = "hosts", .type = KPS_FIELD_STRING_ARRAY, .match = "^[%w.]+:%d+$",
     .description = "host:port entries of collectors."},
    {.name = "mode", .type = KPS_FIELD_STRING, .default_json = "\"fast\"", .one_of = modes,
     .description = "How fast to go, one of two."},
    {.name = "cert", .type = KPS_FIELD_STRING, .description = "A certificate file path."},
    {.name = "key", .type = KPS_FIELD_STRING, .description = "Its private key file path."},
    {.name = "count", .type = KPS_FIELD_INTEGER, .description = "An integer without bounds."},
    {.name = "ratio", .type = KPS_FIELD_NUMBER, .flags = KPS_FIELD_BETWEEN, .min = 0, .max = 1,
     .default_json = "0.5", .description = "A share between zero and one."},
    {.name = "tls", .type = KPS_FIELD_BOOLEAN, .default_json = "false",
     .description = "Whether TLS is on."},
    {.name = "sni", .type = KPS_FIELD_STRING, .default_json = "\"x\"",
     .description = "Server name for TLS."},
};
static const kps_check_t rule_checks[] = {
    {.kind = KPS_CHECK_MUTUALLY_REQUIRED, .fields = pair},
    {.kind = KPS_CHECK_AT_LEAST_ONE_OF, .fields = either},
    {.kind = KPS_CHECK_CONDITIONAL, .if_field = "tls", .if_equals_json = "true", .then_field = "sni"},
};
static const kps_plugin_t rules_plugin = {
    .api_version = KPS_API_VERSION, .name = "c-rules", .version = "1.0.0",
    .fields = rule_fields, .nfields = sizeof(rule_fields) / sizeof(rule_fields[0]),
    .checks = rule_checks, .nchecks = sizeof(rule_checks) / sizeof(rule_checks[0]),
    .phases = {[KPS_PHASE_ACCESS] = on_access}};

static kps_config_t *rules_parse(const char *json, char *err, size_t errlen) {
  err[0] = '\0';
  return kps__config_parse(&rules_plugin, json, strlen(json), err, errlen);
}

static void rules_ok(const char *json) {
  char err[512];
  kps_config_t *cfg = rules_parse(json, err, sizeof(err));
  if (cfg == NULL) FAIL("refused %s: %s", json, err);
  kps__config_free(cfg);
}

static void rules_refused(const char *json, const char *want) {
  char err[512];
  kps_config_t *cfg = rules_parse(json, err, sizeof(err));
  if (cfg != NULL) FAIL("accepted %s", json);
  ASSERT_STREQ(err, want);
}

TEST(config_rules_descriptor_is_valid) {
  char err[256];
  if (kps__plugin_check(&rules_plugin, err, sizeof(err)) != 0) FAIL("%s", err);
}

/* Strings: Kong's default len_min 1, declared lengths, one_of, match. */
TEST(config_string_rules) {
  rules_ok("{\"host\":\"a\"}");
  rules_ok("{\"host\":\"12345678\"}");
  rules_refused("{\"host\":\"123456789\"}", "config.host: expected a string of 1 to 8 bytes, got 9");
  rules_refused("{\"host\":\"a\",\"cert\":\"\",\"key\":\"k\"}",
                "config.cert: expected a string of at least 1 bytes, got 0");
  rules_refused("{\"host\":\"a\",\"mode\":\"medium\"}",
                "config.mode: expected one of \"fast\", \"slow\", got \"medium\"");
  rules_ok("{\"hosts\":[\"a.b:1\",\"c:65535\"]}");
  rules_refused("{\"hosts\":[\"a.b:1\",\"c:\"]}", "config.hosts[2]: does not match the pattern ^[%w.]+:%d+$");
  rules_refused("{\"hosts\":[\"\"]}", "config.hosts[1]: expected a string of at least 1 bytes, got 0");
}

/* R33: a NUL byte anywhere in a string is refused, naming the field; a
 * C string would silently lose what follows. */
TEST(config_nul_bytes_refused) {
  rules_refused("{\"host\":\"\\u0000abc\"}", "config.host: must not contain a NUL byte");
  rules_refused("{\"host\":\"ab\\u0000\"}", "config.host: must not contain a NUL byte");
  rules_refused("{\"hosts\":[\"a:1\",\"b\\u0000:2\"]}", "config.hosts: must not contain a NUL byte");
  rules_refused("{\"host\":\"a\",\"__key__\":\"x\\u0000\"}", "Config: a string holds a NUL byte");
  rules_refused("{\"host\":\"a\",\"h\\u006fst\":\"\\u0000\"}", "Config: a string holds a NUL byte");
  /* an escaped backslash followed by u0000 is text, not a NUL */
  rules_ok("{\"host\":\"\\\\u0000\"}");
  const char *c = "{\"port\":80,\"host\":\"abc\\u0000\"}";
  char err[256];
  ASSERT(kps__config_parse(&kps__plugin_tcp_body_log, c, strlen(c), err, sizeof(err)) == NULL);
  ASSERT_STREQ(err, "config.host: must not contain a NUL byte");
}

/* Integers without bounds take +-10^15 (which the schema states exactly);
 * numbers are finite. */
TEST(config_number_rules) {
  rules_ok("{\"host\":\"a\",\"count\":1000000000000000}");
  rules_ok("{\"host\":\"a\",\"count\":-1e15}");
  rules_ok("{\"host\":\"a\",\"count\":5.0}");
  rules_refused("{\"host\":\"a\",\"count\":1000000000000001}",
                "config.count: expected an integer between -1000000000000000 and 1000000000000000, "
                "got 1000000000000001");
  rules_refused("{\"host\":\"a\",\"count\":1e300}",
                "config.count: expected an integer between -1000000000000000 and 1000000000000000, "
                "got 1.0000000000000001e+300");
  rules_refused("{\"host\":\"a\",\"count\":1.5}", "config.count: expected an integer, got 1.5");
  rules_ok("{\"host\":\"a\",\"ratio\":0}");
  rules_ok("{\"host\":\"a\",\"ratio\":1}");
  rules_refused("{\"host\":\"a\",\"ratio\":1.0001}",
                "config.ratio: expected a number between 0 and 1, got 1.0001");
}

/* Kong's entity checks, with Kong's idea of "set": false is set, "" and
 * [] are not. */
TEST(config_entity_checks) {
  rules_ok("{\"host\":\"a\"}");
  rules_ok("{\"host\":\"a\",\"cert\":\"c\",\"key\":\"k\"}");
  rules_refused("{\"host\":\"a\",\"cert\":\"c\"}",
                "all or none of these fields must be set: 'config.cert', 'config.key'");
  rules_refused("{\"host\":\"a\",\"key\":\"k\",\"cert\":null}",
                "all or none of these fields must be set: 'config.cert', 'config.key'");
  rules_refused("{}", "at least one of these fields must be non-empty: 'config.host', 'config.hosts'");
  rules_refused("{\"hosts\":[]}", "at least one of these fields must be non-empty: 'config.host', 'config.hosts'");
  rules_refused("{\"host\":null,\"hosts\":{}}",
                "at least one of these fields must be non-empty: 'config.host', 'config.hosts'");
  rules_ok("{\"hosts\":[\"a:1\"]}");
  /* conditional: tls true needs sni not null; its default fills an absent one */
  rules_ok("{\"host\":\"a\",\"tls\":true}");
  rules_refused("{\"host\":\"a\",\"tls\":true,\"sni\":null}", "config.sni: required when config.tls is true");
  rules_ok("{\"host\":\"a\",\"tls\":false,\"sni\":null}");
}

/* An explicit null is what Kong stores for a field the user set to null;
 * the getters then give the default, as for an absent field. */
TEST(config_explicit_null_takes_default) {
  char err[256];
  kps_config_t *cfg = rules_parse("{\"host\":\"a\",\"mode\":null,\"ratio\":null,\"count\":null}", err, sizeof(err));
  ASSERT(cfg != NULL);
  ASSERT_STREQ(kps_config_string(cfg, "mode"), "fast");
  ASSERT(kps_config_number(cfg, "ratio", -1) == 0.5);
  ASSERT_EQ(kps_config_integer(cfg, "count", -7), -7);
  kps__config_free(cfg);
}

/* Getters see only the table's fields, never Kong's own keys. */
TEST(config_getters_only_table_fields) {
  char err[256];
  kps_config_t *cfg = rules_parse("{\"host\":\"a\",\"route_id\":\"r\",\"__seq__\":3}", err, sizeof(err));
  ASSERT(cfg != NULL);
  ASSERT(kps_config_string(cfg, "route_id") == NULL);
  ASSERT_EQ(kps_config_integer(cfg, "__seq__", -1), -1);
  ASSERT_STREQ(kps_config_string(cfg, "host"), "a");
  kps__config_free(cfg);
}

/* The schema states every rule above, in Kong's language (R33). */
TEST(config_rules_schema_exact) {
  cJSON *s = kps__schema_build(&rules_plugin, 0);
  char *text = cJSON_PrintUnformatted(s);
  ASSERT_STREQ(text,
    "{\"name\":\"c-rules\",\"fields\":[{\"config\":{\"type\":\"record\",\"fields\":["
    "{\"host\":{\"type\":\"string\",\"len_min\":1,\"len_max\":8,\"not_match\":\"%z\","
      "\"description\":\"A host name of at most 8 bytes.\"}},"
    "{\"hosts\":{\"type\":\"array\",\"elements\":{\"type\":\"string\",\"match\":\"^[%w.]+:%d+$\","
      "\"not_match\":\"%z\"},\"description\":\"host:port entries of collectors.\"}},"
    "{\"mode\":{\"type\":\"string\",\"default\":\"fast\",\"one_of\":[\"fast\",\"slow\"],"
      "\"not_match\":\"%z\",\"description\":\"How fast to go, one of two.\"}},"
    "{\"cert\":{\"type\":\"string\",\"not_match\":\"%z\",\"description\":\"A certificate file path.\"}},"
    "{\"key\":{\"type\":\"string\",\"not_match\":\"%z\",\"description\":\"Its private key file path.\"}},"
    "{\"count\":{\"type\":\"integer\",\"between\":[-1e+15,1e+15],"
      "\"description\":\"An integer without bounds.\"}},"
    "{\"ratio\":{\"type\":\"number\",\"default\":0.5,\"gt\":-1,\"between\":[0,1],"
      "\"description\":\"A share between zero and one.\"}},"
    "{\"tls\":{\"type\":\"boolean\",\"default\":false,\"description\":\"Whether TLS is on.\"}},"
    "{\"sni\":{\"type\":\"string\",\"default\":\"x\",\"not_match\":\"%z\","
      "\"description\":\"Server name for TLS.\"}}]}}],"
    "\"entity_checks\":[{\"mutually_required\":[\"config.cert\",\"config.key\"]},"
    "{\"at_least_one_of\":[\"config.host\",\"config.hosts\"]},"
    "{\"conditional\":{\"if_field\":\"config.tls\",\"if_match\":{\"eq\":true},"
      "\"then_field\":\"config.sni\",\"then_match\":{\"required\":true}}}]}");
  free(text);
  cJSON_Delete(s);
}

/* A table Kong could not enforce as written is refused before it is served. */
TEST(plugin_check_refuses_rules_kong_cannot_apply) {
  static const char *const nums[] = {"1", NULL};
  static const char *const unknown[] = {"host", "nope", NULL};
  static const char *const one[] = {"host", NULL};
  struct {
    kps_field_t f;
    const char *want;
  } bad[] = {
      {{.name = "s", .type = KPS_FIELD_STRING, .flags = KPS_FIELD_BETWEEN, .max = 2,
        .description = "A long enough description."}, "BETWEEN applies to integer and number fields only"},
      {{.name = "i", .type = KPS_FIELD_INTEGER, .one_of = nums,
        .description = "A long enough description."}, "one_of, match and match_any apply to string fields only"},
      {{.name = "i", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_LEN, .max = 2,
        .description = "A long enough description."}, "KPS_FIELD_LEN applies to string fields"},
      {{.name = "n", .type = KPS_FIELD_NUMBER, .description = "A long enough description."},
       "a number field needs KPS_FIELD_BETWEEN"},
      {{.name = "i", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN, .min = 0, .max = 1e300,
        .description = "A long enough description."}, "integral and within 10^15"},
      {{.name = "i", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN, .min = 0.5, .max = 1,
        .description = "A long enough description."}, "integral and within 10^15"},
      {{.name = "s", .type = KPS_FIELD_STRING, .match = "(%d+)",
        .description = "A long enough description."}, "config.s: match: "},
      {{.name = "s", .type = KPS_FIELD_STRING, .match = "[a-",
        .description = "A long enough description."}, "config.s: match: "},
      {{.name = "s", .type = KPS_FIELD_STRING, .default_json = "\"\"",
        .description = "A long enough description."}, "default does not validate"},
      {{.name = "s", .type = KPS_FIELD_STRING, .flags = 0x80,
        .description = "A long enough description."}, "unknown flags"},
  };
  char err[256];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    kps_plugin_t p = {.api_version = KPS_API_VERSION, .name = "c-bad", .version = "1.0.0",
                      .fields = &bad[i].f, .nfields = 1, .phases = {[KPS_PHASE_ACCESS] = on_access}};
    if (kps__plugin_check(&p, err, sizeof(err)) == 0) FAIL("case %zu accepted", i);
    ASSERT_CONTAINS(err, bad[i].want);
  }
  kps_field_t two[] = {rule_fields[0], rule_fields[0]};
  kps_plugin_t p = {.api_version = KPS_API_VERSION, .name = "c-bad", .version = "1.0.0",
                    .fields = two, .nfields = 2, .phases = {[KPS_PHASE_ACCESS] = on_access}};
  ASSERT_EQ(kps__plugin_check(&p, err, sizeof(err)), -1);
  ASSERT_CONTAINS(err, "config.host is declared twice");
  static const char *const with_default[] = {"host", "mode", NULL};
  kps_check_t checks[] = {{.kind = KPS_CHECK_MUTUALLY_REQUIRED, .fields = unknown},
                          {.kind = KPS_CHECK_MUTUALLY_EXCLUSIVE, .fields = one},
                          {.kind = KPS_CHECK_CONDITIONAL, .if_field = "host", .if_equals_json = "3",
                           .then_field = "host"},
                          {.kind = (kps_check_kind_t)99, .fields = one},
                          {.kind = KPS_CHECK_MUTUALLY_EXCLUSIVE, .fields = with_default},
                          {.kind = KPS_CHECK_CONDITIONAL, .if_field = "mode",
                           .if_equals_json = "\"fast\"", .then_field = "host"}};
  static const char *const want[] = {"names config.nope, which is not a field", "too few fields",
                                     "if_equals_json a valid value", "unknown kind",
                                     "config.mode has a default", "is config.mode's default"};
  p.fields = rule_fields;
  p.nfields = 3;
  for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
    p.checks = &checks[i];
    p.nchecks = 1;
    ASSERT_EQ(kps__plugin_check(&p, err, sizeof(err)), -1);
    ASSERT_CONTAINS(err, want[i]);
  }
}
