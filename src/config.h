/* config.h: a plugin's config fields, as one table (kps_field_t, in the
 * public header) that both validates StartInstance's Config JSON and
 * generates the Kong schema printed by -dump. */
#ifndef KPS_CONFIG_H
#define KPS_CONFIG_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "kps_plugin.h"

struct kps_config_s {
  const kps_plugin_t *plugin;
  cJSON *json; /* the config object, defaults filled in */
};

/* Parses and validates `json` (len bytes, not NUL-terminated) against the
 * plugin's field table: types, bounds, one_of, required; fills defaults;
 * ignores keys the table does not name (Kong adds route_id, __seq__, ...).
 * Returns the config, or NULL with a message naming the field in err. */
kps_config_t *kps__config_parse(const kps_plugin_t *plugin, const char *json, size_t len,
                                char *err, size_t errlen);
void kps__config_free(kps_config_t *cfg);

/* Checks one value against one field; 0 or -1 with a message in err. */
int kps__config_check_value(const kps_field_t *f, const cJSON *v, char *err, size_t errlen);

/* {"name":..., "fields":[{"config":{"type":"record","fields":[...]}}]} */
cJSON *kps__schema_build(const kps_plugin_t *plugin);
/* {"Name","Version","Priority","Phases","Schema"}: one -dump entry. */
cJSON *kps__plugin_info(const kps_plugin_t *plugin);
/* Checks a descriptor before it is served: API version, name, x.y.z
 * version, descriptions 10..500 chars, defaults valid for their fields. */
int kps__plugin_check(const kps_plugin_t *plugin, char *err, size_t errlen);

#endif
