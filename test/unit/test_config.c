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
  expect_error("{\"port\":9000}", "config.host: required field missing");
  expect_error("{\"host\":\"h\"}", "config.port: required field missing");
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
               "config.timeout: expected a number between 1 and 3600000, got 0");
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
    {"message", KPS_FIELD_STRING, 0, "\"hi\"", 0, 0, NULL, "A long enough description."},
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
