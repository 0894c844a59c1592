/* schema.c: the Kong schema and plugin info generated from the field table,
 * and the descriptor checks that keep them valid under Kong's rules
 * (proto/PROTOCOL.md R40-R46). */
#include <stdio.h>
#include <string.h>

#include "config.h"

static const char *const phase_names[KPS_PHASE__COUNT] = {
    "certificate", "rewrite", "access", "response", "preread", "log",
};

const char *kps_phase_name(kps_phase_t phase) {
  if ((int)phase < 0 || phase >= KPS_PHASE__COUNT) return NULL;
  return phase_names[phase];
}

static const char *kong_type(kps_field_type_t t) {
  switch (t) {
    case KPS_FIELD_STRING: return "string";
    case KPS_FIELD_INTEGER: return "integer";
    case KPS_FIELD_NUMBER: return "number";
    case KPS_FIELD_BOOLEAN: return "boolean";
    case KPS_FIELD_STRING_ARRAY: return "array";
  }
  return "string";
}

static cJSON *field_schema(const kps_field_t *f) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", kong_type(f->type));
  if (f->type == KPS_FIELD_STRING_ARRAY) {
    cJSON *el = cJSON_AddObjectToObject(o, "elements");
    cJSON_AddStringToObject(el, "type", "string");
  }
  if (f->flags & KPS_FIELD_REQUIRED) cJSON_AddTrueToObject(o, "required");
  if (f->default_json != NULL) {
    cJSON *d = cJSON_Parse(f->default_json);
    if (d != NULL) cJSON_AddItemToObject(o, "default", d);
  }
  if (f->flags & KPS_FIELD_BETWEEN) {
    cJSON *b = cJSON_AddArrayToObject(o, "between");
    cJSON_AddItemToArray(b, cJSON_CreateNumber(f->min));
    cJSON_AddItemToArray(b, cJSON_CreateNumber(f->max));
  }
  if (f->flags & KPS_FIELD_LEN) {
    cJSON_AddNumberToObject(o, "len_min", f->min);
    cJSON_AddNumberToObject(o, "len_max", f->max);
  }
  if (f->one_of != NULL) {
    cJSON *a = cJSON_AddArrayToObject(o, "one_of");
    for (const char *const *s = f->one_of; *s != NULL; s++)
      cJSON_AddItemToArray(a, cJSON_CreateString(*s));
  }
  if (f->description != NULL) cJSON_AddStringToObject(o, "description", f->description);
  return o;
}

cJSON *kps__schema_build(const kps_plugin_t *plugin) {
  cJSON *schema = cJSON_CreateObject();
  cJSON_AddStringToObject(schema, "name", plugin->name);
  cJSON *top = cJSON_AddArrayToObject(schema, "fields");
  cJSON *wrap = cJSON_CreateObject();
  cJSON *config = cJSON_AddObjectToObject(wrap, "config");
  cJSON_AddStringToObject(config, "type", "record");
  cJSON *fields = cJSON_AddArrayToObject(config, "fields");
  for (size_t i = 0; i < plugin->nfields; i++) {
    cJSON *one = cJSON_CreateObject(); /* a single-key object per field */
    cJSON_AddItemToObject(one, plugin->fields[i].name, field_schema(&plugin->fields[i]));
    cJSON_AddItemToArray(fields, one);
  }
  cJSON_AddItemToArray(top, wrap);
  return schema;
}

cJSON *kps__plugin_info(const kps_plugin_t *plugin) {
  cJSON *info = cJSON_CreateObject();
  cJSON_AddStringToObject(info, "Name", plugin->name);
  cJSON_AddStringToObject(info, "Version", plugin->version);
  cJSON_AddNumberToObject(info, "Priority", plugin->priority);
  cJSON *phases = cJSON_AddArrayToObject(info, "Phases");
  for (int p = 0; p < KPS_PHASE__COUNT; p++)
    if (plugin->phases[p] != NULL) cJSON_AddItemToArray(phases, cJSON_CreateString(phase_names[p]));
  cJSON_AddItemToObject(info, "Schema", kps__schema_build(plugin));
  return info;
}

/* Kong accepts one to three dot-separated numeric parts. */
static int version_ok(const char *v) {
  int parts = 0;
  const char *p = v;
  if (v == NULL || *v == '\0') return 0;
  for (;;) {
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    parts++;
    if (*p == '\0') break;
    if (*p != '.') return 0;
    p++;
  }
  return parts >= 1 && parts <= 3;
}

/* Names Kong adds to every config or uses for itself (R31). */
static const char *const reserved_names[] = {
    "route_id", "service_id", "consumer_id", "plugin_instance_name", "__plugin_id",
    "__ws_id", "__key__", "__seq__", NULL,
};

int kps__plugin_check(const kps_plugin_t *plugin, char *err, size_t errlen) {
  if (plugin->api_version != KPS_API_VERSION) {
    snprintf(err, errlen, "plugin API version %u, this server speaks %u", plugin->api_version,
             (unsigned)KPS_API_VERSION);
    return -1;
  }
  if (plugin->name == NULL || plugin->name[0] == '\0' || strlen(plugin->name) > 128) {
    snprintf(err, errlen, "plugin name missing or longer than 128 characters");
    return -1;
  }
  for (const char *c = plugin->name; *c; c++) {
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_')) {
      snprintf(err, errlen, "plugin name \"%s\": only a-z, 0-9, '-' and '_' are allowed",
               plugin->name);
      return -1;
    }
  }
  if (!version_ok(plugin->version)) {
    snprintf(err, errlen, "%s: Version must look like x.y.z", plugin->name);
    return -1;
  }
  int nphases = 0;
  for (int p = 0; p < KPS_PHASE__COUNT; p++) nphases += plugin->phases[p] != NULL;
  if (nphases == 0) {
    snprintf(err, errlen, "%s: declares no phase", plugin->name);
    return -1;
  }
  for (size_t i = 0; i < plugin->nfields; i++) {
    const kps_field_t *f = &plugin->fields[i];
    size_t dl = f->description ? strlen(f->description) : 0;
    if (f->name == NULL || f->name[0] == '\0') {
      snprintf(err, errlen, "%s: field %zu has no name", plugin->name, i);
      return -1;
    }
    for (const char *const *r = reserved_names; *r; r++) {
      if (strcmp(*r, f->name) == 0) {
        snprintf(err, errlen, "%s: field name %s is reserved by Kong", plugin->name, f->name);
        return -1;
      }
    }
    if (f->type < KPS_FIELD_STRING || f->type > KPS_FIELD_STRING_ARRAY) {
      snprintf(err, errlen, "%s: config.%s has an unknown type", plugin->name, f->name);
      return -1;
    }
    if (dl < 10 || dl > 500) {
      snprintf(err, errlen, "%s: config.%s description must be 10 to 500 characters, has %zu",
               plugin->name, f->name, dl);
      return -1;
    }
    if (f->default_json != NULL) {
      cJSON *d = cJSON_Parse(f->default_json);
      char why[256];
      int bad = d == NULL || kps__config_check_value(f, d, why, sizeof(why)) != 0;
      cJSON_Delete(d);
      if (bad) {
        snprintf(err, errlen, "%s: config.%s default does not validate as its own type",
                 plugin->name, f->name);
        return -1;
      }
    }
  }
  return 0;
}
