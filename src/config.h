/* config.h: a plugin's config fields, as one table (kps_field_t, in the
 * public header) that both validates StartInstance's Config JSON and
 * generates the Kong schema printed by -dump. */
#ifndef KPS_CONFIG_H
#define KPS_CONFIG_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "kps_plugin.h"

/* 2^53: Kong's numbers are doubles, so integers are exact up to here. */
#define KPS_INTEGER_LIMIT 9007199254740992.0
/* Integer bounds: an integer field without declared bounds gets +-10^15,
 * and declared bounds stay within it, so the schema (printed by cJSON with
 * 15 significant digits) states them exactly.  Kong accepts 1e300 as an
 * integer otherwise. */
#define KPS_INTEGER_BOUND 1e15

struct kps_config_s {
  const kps_plugin_t *plugin;
  cJSON *json; /* the config object, defaults filled in */
};

/* Parses and validates `json` (len bytes, not NUL-terminated) against the
 * plugin's field table and checks: types, bounds, lengths, one_of, match,
 * no NUL byte, required, cross-field checks; fills defaults (also for an
 * explicit null); ignores keys the table does not name (Kong adds route_id,
 * __seq__, ...).
 * Returns the config, or NULL with a message naming the field in err. */
kps_config_t *kps__config_parse(const kps_plugin_t *plugin, const char *json, size_t len,
                                char *err, size_t errlen);
void kps__config_free(kps_config_t *cfg);

/* A field's effective value bounds (integer, number) and length bounds
 * in bytes (string, array element), defaults included. */
void kps__field_bounds(const kps_field_t *f, double *lo, double *hi);
void kps__field_len_bounds(const kps_field_t *f, size_t *lo, size_t *hi);

/* Checks one value against one field; 0 or -1 with a message in err. */
int kps__config_check_value(const kps_field_t *f, const cJSON *v, char *err, size_t errlen);

/* The Kong the schema is for, as major * 100 + minor (0: the newest).
 * Kong 3.0-3.3's metaschema has no `description` attribute and refuses a
 * schema that has one (R44). */
#define KPS_KONG_DESCRIPTIONS_SINCE 304

/* {"name":..., "fields":[{"config":{"type":"record","fields":[...]}}],
 *  "entity_checks":[...]} for Kong `kong_version` (0: the newest). */
cJSON *kps__schema_build(const kps_plugin_t *plugin, unsigned kong_version);
/* {"Name","Version","Priority","Phases","Schema"}: one -dump entry. */
cJSON *kps__plugin_info(const kps_plugin_t *plugin, unsigned kong_version);
/* Checks a descriptor before it is served: API version, name, x.y.z
 * version, and a field table and checks Kong can enforce as written
 * (descriptions 10..500 chars, attributes only on types Kong allows them
 * on, bounds, patterns, defaults valid for their fields). */
int kps__plugin_check(const kps_plugin_t *plugin, char *err, size_t errlen);

#endif
