/* plugin_loader.c: dlopen'd plugins (see plugin_loader.h and the
 * KPS_PLUGIN_EXPORT contract in kps_plugin.h). */
#include "plugin_loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kps_plugin.h"
#include "log.h"
#include "plugins.h"

int kps__plugin_load_file(const char *path, char *err, size_t errlen) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    snprintf(err, errlen, "%s: cannot load: %s", path, dlerror());
    return -1;
  }
  kps_plugin_entry_fn entry;
  *(void **)&entry = dlsym(h, KPS_PLUGIN_ENTRY_NAME);
  if (entry == NULL) {
    snprintf(err, errlen, "%s: no %s symbol (use KPS_PLUGIN_EXPORT)", path, KPS_PLUGIN_ENTRY_NAME);
    dlclose(h);
    return -1;
  }
  const kps_plugin_t *p = entry(KPS_API_VERSION);
  if (p == NULL) {
    snprintf(err, errlen, "%s: %s returned no descriptor", path, KPS_PLUGIN_ENTRY_NAME);
    dlclose(h);
    return -1;
  }
  /* api_version is the first member in every version of the struct, so it
   * can be read before anything else is trusted. */
  if (p->api_version != KPS_API_VERSION) {
    snprintf(err, errlen, "%s: built for plugin API version %u, this server speaks %u; rebuild it",
             path, p->api_version, (unsigned)KPS_API_VERSION);
    dlclose(h);
    return -1;
  }
  char why[512];
  if (kps__plugins_register(p, path, why, sizeof(why)) != 0) {
    snprintf(err, errlen, "%s", why); /* names the path already */
    dlclose(h);
    return -1;
  }
  /* The handle stays open for the life of the process. */
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int kps__plugins_load_dir(const char *dir, int quiet_if_missing, char *err, size_t errlen) {
  DIR *d = opendir(dir);
  char *names[256];
  size_t n = 0;
  int loaded = 0;
  struct dirent *e;

  if (d == NULL) {
    if (quiet_if_missing && errno == ENOENT) return 0;
    snprintf(err, errlen, "plugins directory %s: %s", dir, strerror(errno));
    return -1;
  }
  while ((e = readdir(d)) != NULL && n < sizeof(names) / sizeof(names[0])) {
    size_t len = strlen(e->d_name);
    if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0) names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof(names[0]), by_name);
  for (size_t i = 0; i < n; i++) {
    char path[4096], why[512];
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    free(names[i]);
    if (kps__plugin_load_file(path, why, sizeof(why)) == 0) {
      loaded++;
      KPS_INFO("loaded plugin from %s", path);
    } else {
      KPS_ERROR("plugin not loaded: %s", why);
    }
  }
  return loaded;
}
