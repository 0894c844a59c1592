/* plugins.h: the plugins this process serves (built-ins for now). */
#ifndef KPS_PLUGINS_H
#define KPS_PLUGINS_H

#include <stddef.h>

#include "kps_plugin.h"

/* Registers every built-in plugin; a descriptor that fails
 * kps__plugin_check is reported and skipped. */
void kps__plugins_init(void);
/* Adds one plugin; -1 with a message if it is invalid or its name is taken.
 * `origin` names where it came from (for messages). */
int kps__plugins_register(const kps_plugin_t *plugin, const char *origin, char *err,
                          size_t errlen);
const kps_plugin_t *kps__plugins_find(const char *name, size_t len);
size_t kps__plugins_count(void);
const kps_plugin_t *kps__plugins_at(size_t i);
/* Runs every plugin's shutdown hook. */
void kps__plugins_shutdown(void);

extern const kps_plugin_t kps__plugin_c_hello;
extern const kps_plugin_t kps__plugin_tcp_body_log;

#endif
