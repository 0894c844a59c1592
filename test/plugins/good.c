/* A well-formed shared-object plugin for the loader tests: access sets
 * x-loaded: yes on the response. */
#include <kps_plugin.h>

static const kps_field_t fields[] = {
    {.name = "value", .type = KPS_FIELD_STRING, .default_json = "\"yes\"",
     .description = "Value of the x-loaded response header."},
};

static void access(kps_event_t *ev) {
  const kps_config_t *cfg = kps_instance_config(kps_event_instance(ev));
  kps_call(ev, NULL, NULL, "kong.response.set_header", "ss", "x-loaded", kps_config_string(cfg, "value"));
}

static const kps_plugin_t good = {
    .api_version = KPS_API_VERSION, .name = "c-test-good", .version = "1.0.0", .priority = 10,
    .fields = fields, .nfields = 1, .phases = {[KPS_PHASE_ACCESS] = access},
};

KPS_PLUGIN_EXPORT(good)
