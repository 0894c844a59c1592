/* A plugin that breaks the answering rules, for the kps_call contract
 * (kps_plugin.h) in test_loader.c:
 *   access  a second kps_call while the first is out: refused (-1),
 *           nothing sent; the first goes on as usual;
 *   rewrite a call with a bad format: -1, and Kong gets an error reply.
 * The return codes are reported in GetStatus. */
#include <kps_plugin.h>

static int second_rc = 1, bad_fmt_rc = 1;

static void access(kps_event_t *ev) {
  kps_call(ev, NULL, NULL, "kong.response.set_header", "ss", "x-first", "1");
  second_rc = kps_call(ev, NULL, NULL, "kong.response.set_header", "ss", "x-second", "2");
}

static void rewrite(kps_event_t *ev) {
  bad_fmt_rc = kps_call(ev, NULL, NULL, "kong.response.set_header", "sq", "x", "y");
}

static void status(kps_status_t *st) {
  kps_status_counter(st, "second_call_failed", second_rc == -1);
  kps_status_counter(st, "bad_format_failed", bad_fmt_rc == -1);
}

static const kps_plugin_t misuse = {
    .api_version = KPS_API_VERSION, .name = "c-test-misuse", .version = "1.0.0",
    .phases = {[KPS_PHASE_ACCESS] = access, [KPS_PHASE_REWRITE] = rewrite},
    .status = status,
};

KPS_PLUGIN_EXPORT(misuse)
