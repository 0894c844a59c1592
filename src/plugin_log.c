/* plugin_log.c: kps_log, the plugins' way into the server's log. */
#include <stdarg.h>
#include <stdio.h>

#include "kps_plugin.h"
#include "log.h"

void kps_log(const kps_plugin_t *plugin, kps_level_t level, const char *fmt, ...) {
  char msg[900];
  va_list ap;
  if ((int)level < (int)kps__log_get_level()) return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  kps__log((kps_log_level_t)level, "[%s] %s", plugin && plugin->name ? plugin->name : "plugin", msg);
}
