/* c-size-limit: an example kong-c-pluginserver plugin, built out of tree.
 *
 * access phase: reads the request's Content-Length; a body larger than
 * config.allowed_payload_size bytes is refused with 413 and a JSON message
 * (like Kong's bundled request-size-limiting); otherwise the response gets
 * the header `x-size-limit: <allowed_payload_size>`.
 *
 * Build:   cmake -S . -B build && cmake --build build      (see CMakeLists.txt)
 *     or:  cc $(pkg-config --cflags --libs kong-c-pluginserver) -o c-size-limit.so c_size_limit.c
 * Run:     kong-c-pluginserver -plugins-directory <dir with c-size-limit.so> --plugin c-size-limit */
#include <stdio.h>
#include <stdlib.h>

#include <kps_plugin.h>

static const kps_field_t fields[] = {
    {.name = "allowed_payload_size", .type = KPS_FIELD_INTEGER, .flags = KPS_FIELD_BETWEEN,
     .default_json = "1048576", .min = 0, .max = 1073741824,
     .description = "Largest request body accepted, in bytes, judged by Content-Length."},
    {.name = "message", .type = KPS_FIELD_STRING, .flags = KPS_FIELD_LEN,
     .default_json = "\"Request size limit exceeded\"", .min = 1, .max = 200,
     .description = "Message of the 413 response sent for a larger body."},
};

static const kps_plugin_t c_size_limit; /* defined at the end */

/* The continuation of kong.request.get_header("content-length"). */
static void on_length(kps_event_t *ev, const kps_value_t *value, void *ud) {
  const kps_config_t *cfg = kps_instance_config(kps_event_instance(ev));
  int64_t allowed = kps_config_integer(cfg, "allowed_payload_size", 1048576);
  char text[32] = "";
  size_t len = 0;
  const char *s = kps_value_string(value, &len); /* NULL: no Content-Length */

  if (s != NULL && len < sizeof(text)) {
    snprintf(text, sizeof(text), "%.*s", (int)len, s);
    if (strtoll(text, NULL, 10) > allowed) {
      char body[300];
      static const char *const headers[] = {"Content-Type", "application/json", NULL};
      snprintf(body, sizeof(body), "{\"message\":\"%s\"}", kps_config_string(cfg, "message"));
      kps_log(&c_size_limit, KPS_LEVEL_INFO, "%s bytes refused (limit %lld)", text,
              (long long)allowed);
      kps_exit(ev, 413, body, headers); /* ends the event: Kong sends no Step */
      return;
    }
  }
  snprintf(text, sizeof(text), "%lld", (long long)allowed);
  /* NULL continuation: the event ends when Kong has set the header. */
  kps_call(ev, NULL, NULL, "kong.response.set_header", "ss", "x-size-limit", text);
}

static void access(kps_event_t *ev) {
  kps_call(ev, on_length, NULL, "kong.request.get_header", "s", "content-length");
}

static const kps_plugin_t c_size_limit = {
    .api_version = KPS_API_VERSION,
    .name = "c-size-limit",
    .version = "1.0.0",
    .priority = 951, /* Kong's request-size-limiting runs at 951 */
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
    .phases = {[KPS_PHASE_ACCESS] = access},
};

KPS_PLUGIN_EXPORT(c_size_limit)
