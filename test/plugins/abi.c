/* A plugin built against another API version. */
#include <kps_plugin.h>

static void access(kps_event_t *ev) { kps_done(ev); }

static const kps_plugin_t future = {
    .api_version = KPS_API_VERSION + 98, .name = "c-test-future", .version = "1.0.0",
    .phases = {[KPS_PHASE_ACCESS] = access},
};

KPS_PLUGIN_EXPORT(future)
