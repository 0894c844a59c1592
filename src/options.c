/* options.c: command-line parsing (see options.h). */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plugin_loader.h"
#include "plugins.h"
#include "server.h"

static const char *basename_of(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static int parse_size(const char *v, uint64_t min, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n < min || n > max) return -1;
  *out = n;
  return 0;
}

void kps__options_usage(const char *prog) {
  printf(
      "Usage: %s [options]\n"
      "Kong external plugin server (MsgPack:1) written in C.\n"
      "\n"
      "  -dump, --dump               print the selected plugin's info as JSON and exit\n"
      "  -dump-all-plugins           print every plugin's info as JSON and exit\n"
      "  --kong-version X.Y          the Kong the dump is for (3.0-3.3 refuse field descriptions)\n"
      "  -kong-prefix, --kong-prefix DIR   Kong prefix (default %s)\n"
      "  --socket PATH               socket path (default <prefix>/<plugin>.socket)\n"
      "  --plugin NAME               plugin to serve (default: from the program name)\n"
      "  -plugins-directory DIR      load plugins (*.so) from DIR (default %s)\n"
      "  --status                    print the running server's GetStatus as JSON\n"
      "  --log-level LEVEL           debug, info, notice, warn, error (default info)\n"
      "  --max-message-size BYTES    largest RPC message accepted (default %u)\n"
      "  --event-timeout MS          reap events Kong abandoned after MS (default %u)\n"
      "  --instance-idle-timeout MS  close instances idle for MS (default %u)\n"
      "  --shutdown-timeout MS       SIGTERM flush deadline (default %u)\n"
      "  --max-events N              events in flight (default %u)\n"
      "  --max-instances N           live instances (default %u)\n"
      "  --max-connections N         open Kong connections (default %u)\n"
      "  --help, --version\n"
      "\n"
      "Plugins:",
      prog, KPS_DEFAULT_PREFIX, KPS_DEFAULT_PLUGIN_DIR, KPS_DEFAULT_MAX_MESSAGE_SIZE, KPS_DEFAULT_EVENT_TIMEOUT_MS,
      KPS_DEFAULT_INSTANCE_IDLE_MS, KPS_DEFAULT_SHUTDOWN_TIMEOUT_MS, KPS_DEFAULT_MAX_EVENTS,
      KPS_DEFAULT_MAX_INSTANCES, KPS_DEFAULT_MAX_CONNECTIONS);
  for (size_t i = 0; i < kps__plugins_count(); i++) printf(" %s", kps__plugins_at(i)->name);
  printf("\n");
}

/* Flags that take a value, and where it goes. */
enum { V_PREFIX, V_SOCKET, V_PLUGIN, V_PLUGINDIR, V_LOGLEVEL, V_MAXMSG, V_EVTIMEOUT, V_IDLE, V_SHUTDOWN,
       V_MAXEVENTS, V_MAXINST, V_MAXCONN, V_KONGVER };

static const struct {
  const char *name;
  int kind;
} valued[] = {
    {"kong-prefix", V_PREFIX},     {"socket", V_SOCKET},
    {"plugin", V_PLUGIN},          {"log-level", V_LOGLEVEL},
    {"plugins-directory", V_PLUGINDIR},
    {"max-message-size", V_MAXMSG}, {"event-timeout", V_EVTIMEOUT},
    {"instance-idle-timeout", V_IDLE}, {"shutdown-timeout", V_SHUTDOWN},
    {"max-events", V_MAXEVENTS},   {"max-instances", V_MAXINST},
    {"max-connections", V_MAXCONN}, {"kong-version", V_KONGVER},
};

/* "3.4" or "3.4.2" -> 304; -1 for anything else (Kong 2.x has no -dump). */
static int parse_kong_version(const char *v) {
  unsigned major, minor;
  int n = 0;
  if (sscanf(v, "%u.%u%n", &major, &minor, &n) != 2 || major != 3 || minor > 99) return -1;
  if (v[n] == '.') {
    unsigned patch;
    int m = 0;
    if (sscanf(v + n + 1, "%u%n", &patch, &m) != 1) return -1;
    n += 1 + m;
  }
  return v[n] == '\0' ? (int)(major * 100 + minor) : -1;
}

static int fail(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line on stderr; the caller exits 2. */
static int fail(const char *prog, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (see --help)\n");
  return 2;
}

static int set_value(kps_options_t *o, const char *prog, int kind, const char *flag,
                     const char *v) {
  uint64_t n;
  switch (kind) {
    case V_PREFIX: o->prefix = v; return 0;
    case V_SOCKET: o->socket = v; return 0;
    case V_PLUGINDIR: return 0; /* loaded before parsing, see load_plugins */
    case V_PLUGIN:
      o->plugin = kps__plugins_find(v, strlen(v));
      return o->plugin ? 0 : fail(prog, "unknown plugin '%s'", v);
    case V_LOGLEVEL:
      o->log_level = kps__log_parse_level(v);
      return o->log_level >= 0 ? 0 : fail(prog, "unknown log level '%s'", v);
    case V_MAXMSG:
      if (parse_size(v, 1024, 1u << 30, &n)) break;
      kps__limits.max_message_size = (size_t)n;
      return 0;
    case V_EVTIMEOUT:
      if (parse_size(v, 1, 86400000, &n)) break;
      kps__limits.event_timeout_ms = n;
      return 0;
    case V_IDLE:
      if (parse_size(v, 1, 86400000, &n)) break;
      kps__limits.instance_idle_ms = n;
      return 0;
    case V_SHUTDOWN:
      if (parse_size(v, 0, 600000, &n)) break;
      kps__limits.shutdown_timeout_ms = n;
      return 0;
    case V_MAXEVENTS:
      if (parse_size(v, 1, 10000000, &n)) break;
      kps__limits.max_events = (size_t)n;
      return 0;
    case V_MAXINST:
      if (parse_size(v, 1, 1000000, &n)) break;
      kps__limits.max_instances = (size_t)n;
      return 0;
    case V_MAXCONN:
      if (parse_size(v, 1, 1000000, &n)) break;
      kps__limits.max_connections = (size_t)n;
      return 0;
    case V_KONGVER: {
      int ver = parse_kong_version(v);
      if (ver < 0) break;
      o->kong_version = (unsigned)ver;
      return 0;
    }
  }
  fprintf(stderr, "%s: invalid value '%s' for --%s (see --help)\n", prog, v, flag);
  return 2;
}

/* Plugins from -plugins-directory (or the default directory, if it exists)
 * are loaded before anything else, so --plugin NAME, the program name and
 * -dump see them like built-ins. */
static int load_plugins(kps_options_t *o, const char *prog, int argc, char **argv) {
  char err[512];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') continue;
    const char *name = a + 1 + (a[1] == '-');
    const char *dir = NULL;
    if (strcmp(name, "plugins-directory") == 0 && i + 1 < argc) dir = argv[++i];
    else if (strncmp(name, "plugins-directory=", 18) == 0) dir = name + 18;
    if (dir == NULL) continue;
    o->plugins_dir = dir;
    if (kps__plugins_load_dir(dir, 0, err, sizeof(err)) < 0) return fail(prog, "%s", err);
  }
  if (o->plugins_dir == NULL && kps__plugins_load_dir(KPS_DEFAULT_PLUGIN_DIR, 1, err, sizeof(err)) < 0)
    KPS_WARN("%s", err);
  return 0;
}

int kps__options_parse(kps_options_t *o, int argc, char **argv) {
  const char *prog = argc > 0 ? basename_of(argv[0]) : "kong-c-pluginserver";
  memset(o, 0, sizeof(*o));
  o->log_level = KPS_LOG_INFO;
  o->prefix = KPS_DEFAULT_PREFIX;
  int rc = load_plugins(o, prog, argc, argv);
  if (rc != 0) return rc;
  /* Invoked through a symlink named after a plugin: serve that plugin. */
  o->plugin = kps__plugins_find(prog, strlen(prog));

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') return fail(prog, "unexpected argument '%s'", a);
    const char *name = a + 1 + (a[1] == '-');
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    int handled = 0;

    for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
      if (strlen(valued[k].name) != nlen || strncmp(valued[k].name, name, nlen) != 0) continue;
      const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (v == NULL) return fail(prog, "option '%s' needs a value", a);
      rc = set_value(o, prog, valued[k].kind, valued[k].name, v);
      if (rc != 0) return rc;
      handled = 1;
      break;
    }
    if (handled) continue;
    if (eq != NULL) return fail(prog, "unknown option '%s'", a);
    if (strcmp(name, "dump") == 0) o->action = KPS_ACTION_DUMP;
    else if (strcmp(name, "dump-all-plugins") == 0) o->action = KPS_ACTION_DUMP_ALL;
    else if (strcmp(name, "status") == 0) o->action = KPS_ACTION_STATUS;
    else if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0) o->action = KPS_ACTION_HELP;
    else if (strcmp(name, "version") == 0) o->action = KPS_ACTION_VERSION;
    else return fail(prog, "unknown option '%s'", a);
  }

  if (o->action == KPS_ACTION_DUMP && o->plugin == NULL)
    return fail(prog, "-dump needs a plugin: use --plugin NAME or a plugin-named symlink");
  if (o->socket == NULL) {
    int n = snprintf(o->socket_buf, sizeof(o->socket_buf), "%s/%s.socket", o->prefix,
                     o->plugin ? o->plugin->name : "kong-c-pluginserver");
    if (n < 0 || (size_t)n >= sizeof(o->socket_buf)) return fail(prog, "prefix too long: %s", o->prefix);
    o->socket = o->socket_buf;
  }
  return 0;
}
