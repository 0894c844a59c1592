/* A plugin whose name is taken by a built-in. */
#include <kps_plugin.h>

static void access(kps_event_t *ev) { kps_done(ev); }

static const kps_plugin_t dup = {
    .api_version = KPS_API_VERSION, .name = "c-hello", .version = "9.9.9",
    .phases = {[KPS_PHASE_ACCESS] = access},
};

KPS_PLUGIN_EXPORT(dup)
