/* c_hello.c: the C twin of Kong's go-hello and py-hello test plugins.
 * access: read the Host header, then set
 *   x-hello-from-c: C says <config.message> to <host>
 * on the response.  Two PDK calls, three RPCs. */
#include <stdio.h>
#include <string.h>

#include "kps_plugin.h"

static const kps_field_t fields[] = {
    {.name = "message", .type = KPS_FIELD_STRING, .flags = KPS_FIELD_LEN,
     .default_json = "\"hello\"", .min = 1, .max = 256,
     .description = "Greeting placed in the x-hello-from-c response header."},
};

static void on_host(kps_event_t *ev, const kps_value_t *host, void *ud) {
  const kps_config_t *cfg = kps_instance_config(kps_event_instance(ev));
  const char *message = kps_config_string(cfg, "message");
  size_t hlen = 0;
  const char *h = kps_value_string(host, &hlen);
  char value[1024];

  if (h == NULL) h = "", hlen = 0; /* no Host header: Kong returned nil */
  if (hlen > 512) hlen = 512;
  snprintf(value, sizeof(value), "C says %s to %.*s", message ? message : "hello", (int)hlen, h);
  /* NULL continuation: the event ends when Kong has set the header. */
  kps_call(ev, NULL, NULL, "kong.response.set_header", "ss", "x-hello-from-c", value);
}

static void access(kps_event_t *ev) {
  kps_call(ev, on_host, NULL, "kong.request.get_header", "s", "host");
}

const kps_plugin_t kps__plugin_c_hello = {
    .api_version = KPS_API_VERSION,
    .name = "c-hello",
    .version = "0.1.0",
    .priority = 1000,
    .fields = fields,
    .nfields = sizeof(fields) / sizeof(fields[0]),
    .phases = {[KPS_PHASE_ACCESS] = access},
};
