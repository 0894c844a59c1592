/* plugins.c: the registry of plugins served by this process. */
#include "plugins.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define MAX_PLUGINS 64

static const kps_plugin_t *registry[MAX_PLUGINS];
static size_t nregistry;

static const kps_plugin_t *const builtins[] = {
    &kps__plugin_tcp_body_log,
    &kps__plugin_c_hello,
};

int kps__plugins_register(const kps_plugin_t *plugin, const char *origin, char *err,
                          size_t errlen) {
  char why[384];
  if (kps__plugin_check(plugin, why, sizeof(why)) != 0) {
    snprintf(err, errlen, "%s: %s", origin, why);
    return -1;
  }
  if (kps__plugins_find(plugin->name, strlen(plugin->name)) != NULL) {
    snprintf(err, errlen, "%s: duplicate plugin name \"%s\"", origin, plugin->name);
    return -1;
  }
  if (nregistry == MAX_PLUGINS) {
    snprintf(err, errlen, "%s: more than %d plugins", origin, MAX_PLUGINS);
    return -1;
  }
  registry[nregistry++] = plugin;
  return 0;
}

void kps__plugins_init(void) {
  char err[256];
  nregistry = 0;
  for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
    if (kps__plugins_register(builtins[i], "built-in", err, sizeof(err)) != 0)
      KPS_ERROR("built-in plugin rejected: %s", err);
}

const kps_plugin_t *kps__plugins_find(const char *name, size_t len) {
  for (size_t i = 0; i < nregistry; i++)
    if (strlen(registry[i]->name) == len && memcmp(registry[i]->name, name, len) == 0)
      return registry[i];
  return NULL;
}

size_t kps__plugins_count(void) { return nregistry; }

const kps_plugin_t *kps__plugins_at(size_t i) { return i < nregistry ? registry[i] : NULL; }

void kps__plugins_shutdown(void) {
  for (size_t i = 0; i < nregistry; i++)
    if (registry[i]->shutdown) registry[i]->shutdown();
}
