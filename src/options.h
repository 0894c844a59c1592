/* options.h: the command line, in Kong's and the reference servers' style
 * (single- or double-dash long flags). */
#ifndef KPS_OPTIONS_H
#define KPS_OPTIONS_H

#include "kps_plugin.h"

typedef enum kps_action_e {
  KPS_ACTION_SERVE = 0,
  KPS_ACTION_DUMP,
  KPS_ACTION_DUMP_ALL,
  KPS_ACTION_STATUS,
  KPS_ACTION_HELP,
  KPS_ACTION_VERSION
} kps_action_t;

typedef struct kps_options_s {
  kps_action_t action;
  const char *prefix;            /* -kong-prefix */
  const char *socket;            /* --socket, or derived */
  const kps_plugin_t *plugin;    /* --plugin or argv[0]; NULL = all */
  const char *plugins_dir;       /* -plugins-directory, or NULL */
  int log_level;                 /* kps_log_level_t */
  unsigned kong_version;         /* --kong-version 3.3 -> 303; 0 = the newest */
  char socket_buf[4096];
} kps_options_t;

#define KPS_DEFAULT_PREFIX "/usr/local/kong"
#ifndef KPS_DEFAULT_PLUGIN_DIR /* set by CMake from the install prefix */
#define KPS_DEFAULT_PLUGIN_DIR "/usr/local/lib/kong-c-pluginserver/plugins"
#endif

/* Parses argv.  Returns 0, or 2 after printing a one-line error. */
int kps__options_parse(kps_options_t *o, int argc, char **argv);
void kps__options_usage(const char *prog);

#endif
