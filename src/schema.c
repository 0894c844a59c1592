/* schema.c: the Kong schema and plugin info generated from the field table,
 * and the descriptor checks that keep them valid under Kong's rules
 * (proto/PROTOCOL.md R33, R40-R46). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "lua_pattern.h"

/* Kong's not_match pattern for "no NUL byte" (R33). */
#define KPS_SCHEMA_NO_NUL "%z"

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

/* The rules a string (or each element of a string array) carries. */
static void string_rules(cJSON *o, const kps_field_t *f) {
  if (f->flags & KPS_FIELD_LEN) {
    cJSON_AddNumberToObject(o, "len_min", f->min);
    cJSON_AddNumberToObject(o, "len_max", f->max);
  }
  if (f->one_of != NULL) {
    cJSON *a = cJSON_AddArrayToObject(o, "one_of");
    for (const char *const *s = f->one_of; *s != NULL; s++)
      cJSON_AddItemToArray(a, cJSON_CreateString(*s));
  }
  if (f->match != NULL) cJSON_AddStringToObject(o, "match", f->match);
  if (f->match_any != NULL) {
    cJSON *m = cJSON_AddObjectToObject(o, "match_any");
    cJSON *a = cJSON_AddArrayToObject(m, "patterns");
    for (const char *const *p = f->match_any; *p != NULL; p++)
      cJSON_AddItemToArray(a, cJSON_CreateString(*p));
    cJSON_AddStringToObject(m, "err", f->match_any_err);
  }
  cJSON_AddStringToObject(o, "not_match", KPS_SCHEMA_NO_NUL); /* R33 */
}

static cJSON *field_schema(const kps_field_t *f, int descriptions) {
  cJSON *o = cJSON_CreateObject();
  double lo, hi;
  cJSON_AddStringToObject(o, "type", kong_type(f->type));
  if (f->flags & KPS_FIELD_REQUIRED) cJSON_AddTrueToObject(o, "required");
  if (f->default_json != NULL) cJSON_AddItemToObject(o, "default", cJSON_Parse(f->default_json));
  switch (f->type) {
    case KPS_FIELD_STRING: string_rules(o, f); break;
    case KPS_FIELD_STRING_ARRAY: {
      cJSON *el = cJSON_AddObjectToObject(o, "elements");
      cJSON_AddStringToObject(el, "type", "string");
      string_rules(el, f);
      if (f->max_items > 0) cJSON_AddNumberToObject(o, "len_max", f->max_items);
      break;
    }
    case KPS_FIELD_NUMBER:
      /* NaN passes Kong's `between` but not `gt` (R33). */
      cJSON_AddNumberToObject(o, "gt", f->min - fmax(1.0, fabs(f->min)));
      __attribute__((fallthrough));
    case KPS_FIELD_INTEGER: {
      kps__field_bounds(f, &lo, &hi);
      cJSON *b = cJSON_AddArrayToObject(o, "between");
      cJSON_AddItemToArray(b, cJSON_CreateNumber(lo));
      cJSON_AddItemToArray(b, cJSON_CreateNumber(hi));
      break;
    }
    case KPS_FIELD_BOOLEAN: break;
  }
  if (descriptions && f->description != NULL)
    cJSON_AddStringToObject(o, "description", f->description);
  return o;
}

/* "config.<name>" paths, as Kong's entity checks name the plugin's fields. */
static cJSON *config_paths(const char *const *names) {
  cJSON *a = cJSON_CreateArray();
  char path[200];
  for (const char *const *n = names; *n != NULL; n++) {
    snprintf(path, sizeof(path), "config.%s", *n);
    cJSON_AddItemToArray(a, cJSON_CreateString(path));
  }
  return a;
}

static cJSON *check_schema(const kps_check_t *c) {
  static const char *const kinds[] = {
      [KPS_CHECK_MUTUALLY_REQUIRED] = "mutually_required",
      [KPS_CHECK_MUTUALLY_EXCLUSIVE] = "mutually_exclusive",
      [KPS_CHECK_AT_LEAST_ONE_OF] = "at_least_one_of",
      [KPS_CHECK_ONLY_ONE_OF] = "only_one_of",
      [KPS_CHECK_CONDITIONAL] = "conditional",
  };
  cJSON *o = cJSON_CreateObject();
  if (c->kind != KPS_CHECK_CONDITIONAL) {
    cJSON_AddItemToObject(o, kinds[c->kind], config_paths(c->fields));
    return o;
  }
  const char *if_field[] = {c->if_field, NULL}, *then_field[] = {c->then_field, NULL};
  cJSON *paths_if = config_paths(if_field), *paths_then = config_paths(then_field);
  cJSON *cond = cJSON_AddObjectToObject(o, kinds[c->kind]);
  cJSON_AddStringToObject(cond, "if_field", paths_if->child->valuestring);
  cJSON_AddItemToObject(cJSON_AddObjectToObject(cond, "if_match"), "eq",
                        cJSON_Parse(c->if_equals_json));
  cJSON_AddStringToObject(cond, "then_field", paths_then->child->valuestring);
  cJSON_AddTrueToObject(cJSON_AddObjectToObject(cond, "then_match"), "required");
  cJSON_Delete(paths_if);
  cJSON_Delete(paths_then);
  return o;
}

cJSON *kps__schema_build(const kps_plugin_t *plugin, unsigned kong_version) {
  int descriptions = kong_version == 0 || kong_version >= KPS_KONG_DESCRIPTIONS_SINCE;
  cJSON *schema = cJSON_CreateObject();
  cJSON_AddStringToObject(schema, "name", plugin->name);
  cJSON *top = cJSON_AddArrayToObject(schema, "fields");
  cJSON *wrap = cJSON_CreateObject();
  cJSON *config = cJSON_AddObjectToObject(wrap, "config");
  cJSON_AddStringToObject(config, "type", "record");
  cJSON *fields = cJSON_AddArrayToObject(config, "fields");
  for (size_t i = 0; i < plugin->nfields; i++) {
    cJSON *one = cJSON_CreateObject(); /* a single-key object per field */
    cJSON_AddItemToObject(one, plugin->fields[i].name, field_schema(&plugin->fields[i], descriptions));
    cJSON_AddItemToArray(fields, one);
  }
  cJSON_AddItemToArray(top, wrap);
  if (plugin->nchecks > 0) {
    cJSON *checks = cJSON_AddArrayToObject(schema, "entity_checks");
    for (size_t i = 0; i < plugin->nchecks; i++)
      cJSON_AddItemToArray(checks, check_schema(&plugin->checks[i]));
  }
  return schema;
}

cJSON *kps__plugin_info(const kps_plugin_t *plugin, unsigned kong_version) {
  cJSON *info = cJSON_CreateObject();
  cJSON_AddStringToObject(info, "Name", plugin->name);
  cJSON_AddStringToObject(info, "Version", plugin->version);
  cJSON_AddNumberToObject(info, "Priority", plugin->priority);
  cJSON *phases = cJSON_AddArrayToObject(info, "Phases");
  for (int p = 0; p < KPS_PHASE__COUNT; p++)
    if (plugin->phases[p] != NULL) cJSON_AddItemToArray(phases, cJSON_CreateString(phase_names[p]));
  cJSON_AddItemToObject(info, "Schema", kps__schema_build(plugin, kong_version));
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

/* A finite bound Kong can hold; integers also integral and within 10^15. */
static int bound_ok(double v, int integral) {
  if (!isfinite(v)) return 0;
  return !integral || (floor(v) == v && fabs(v) <= KPS_INTEGER_BOUND);
}

/* One field: a rule Kong could not apply as written is refused here, so
 * the schema and StartInstance never disagree (R33). */
static int field_check(const char *plugin, const kps_field_t *f, char *err, size_t errlen) {
  size_t dl = f->description ? strlen(f->description) : 0;
  int stringy = f->type == KPS_FIELD_STRING || f->type == KPS_FIELD_STRING_ARRAY;
  int numeric = f->type == KPS_FIELD_INTEGER || f->type == KPS_FIELD_NUMBER;
  const char *n = f->name;
  char why[256];

  if (n == NULL || n[0] == '\0' || strlen(n) > 128) {
    snprintf(err, errlen, "%s: a field has no name or one longer than 128 characters", plugin);
    return -1;
  }
  for (const char *const *r = reserved_names; *r; r++) {
    if (strcmp(*r, n) == 0) {
      snprintf(err, errlen, "%s: field name %s is reserved by Kong", plugin, n);
      return -1;
    }
  }
  if (f->type < KPS_FIELD_STRING || f->type > KPS_FIELD_STRING_ARRAY) {
    snprintf(err, errlen, "%s: config.%s has an unknown type", plugin, n);
    return -1;
  }
  if (dl < 10 || dl > 500) {
    snprintf(err, errlen, "%s: config.%s description must be 10 to 500 characters, has %zu",
             plugin, n, dl);
    return -1;
  }
  if (f->flags & ~(KPS_FIELD_REQUIRED | KPS_FIELD_BETWEEN | KPS_FIELD_LEN)) {
    snprintf(err, errlen, "%s: config.%s has unknown flags", plugin, n);
    return -1;
  }
  if ((f->flags & KPS_FIELD_BETWEEN) && !numeric) {
    snprintf(err, errlen, "%s: config.%s: KPS_FIELD_BETWEEN applies to integer and number fields only",
             plugin, n);
    return -1;
  }
  if (f->type == KPS_FIELD_NUMBER && !(f->flags & KPS_FIELD_BETWEEN)) {
    snprintf(err, errlen, "%s: config.%s: a number field needs KPS_FIELD_BETWEEN (Kong lets NaN "
             "through otherwise)", plugin, n);
    return -1;
  }
  if ((f->flags & KPS_FIELD_BETWEEN) &&
      (!bound_ok(f->min, f->type == KPS_FIELD_INTEGER) ||
       !bound_ok(f->max, f->type == KPS_FIELD_INTEGER) || f->min > f->max ||
       fabs(f->min) > DBL_MAX / 4)) {
    snprintf(err, errlen, "%s: config.%s: bounds must be finite, min <= max%s", plugin, n,
             f->type == KPS_FIELD_INTEGER ? ", integral and within 10^15" : "");
    return -1;
  }
  if ((f->flags & KPS_FIELD_LEN) &&
      (!stringy || !bound_ok(f->min, 1) || !bound_ok(f->max, 1) || f->min < 0 || f->min > f->max)) {
    snprintf(err, errlen, "%s: config.%s: KPS_FIELD_LEN applies to string fields, with "
             "integral 0 <= min <= max", plugin, n);
    return -1;
  }
  if ((f->one_of != NULL || f->match != NULL || f->match_any != NULL) && !stringy) {
    snprintf(err, errlen, "%s: config.%s: one_of, match and match_any apply to string fields only",
             plugin, n);
    return -1;
  }
  if (f->max_items > 0 && f->type != KPS_FIELD_STRING_ARRAY) {
    snprintf(err, errlen, "%s: config.%s: max_items applies to string arrays only", plugin, n);
    return -1;
  }
  if (f->match_any != NULL) {
    if (f->match_any[0] == NULL || f->match_any_err == NULL || *f->match_any_err == '\0') {
      snprintf(err, errlen, "%s: config.%s: match_any needs a pattern and match_any_err", plugin, n);
      return -1;
    }
    for (const char *const *p = f->match_any; *p != NULL; p++) {
      if (kps__lua_pattern_check(*p, strlen(*p), why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: config.%s: match_any: %s", plugin, n, why);
        return -1;
      }
    }
  }
  if (f->one_of != NULL && f->one_of[0] == NULL) {
    snprintf(err, errlen, "%s: config.%s: one_of is empty", plugin, n);
    return -1;
  }
  if (f->match != NULL && kps__lua_pattern_check(f->match, strlen(f->match), why, sizeof(why)) != 0) {
    snprintf(err, errlen, "%s: config.%s: match: %s", plugin, n, why);
    return -1;
  }
  if (f->default_json != NULL) {
    cJSON *d = cJSON_Parse(f->default_json);
    int bad = d == NULL || kps__config_check_value(f, d, why, sizeof(why)) != 0;
    cJSON_Delete(d);
    if (bad) {
      snprintf(err, errlen, "%s: config.%s default does not validate as its own field", plugin, n);
      return -1;
    }
  }
  return 0;
}

static const kps_field_t *field_named(const kps_plugin_t *plugin, const char *name) {
  for (size_t i = 0; name != NULL && i < plugin->nfields; i++)
    if (strcmp(plugin->fields[i].name, name) == 0) return &plugin->fields[i];
  return NULL;
}

/* One cross-field check: a known kind naming fields of the table. */
static int check_check(const kps_plugin_t *plugin, const kps_check_t *c, char *err, size_t errlen) {
  char why[256];
  if (c->kind == KPS_CHECK_CONDITIONAL) {
    const kps_field_t *f = field_named(plugin, c->if_field);
    cJSON *want = c->if_equals_json ? cJSON_Parse(c->if_equals_json) : NULL;
    cJSON *dflt = f && f->default_json ? cJSON_Parse(f->default_json) : NULL;
    int bad = f == NULL || field_named(plugin, c->then_field) == NULL || want == NULL ||
              kps__config_check_value(f, want, why, sizeof(why)) != 0;
    /* An explicit null on if_field passes Kong's check but reaches the
     * server as the default: that default must not trigger the rule. */
    int default_triggers = dflt != NULL && want != NULL && cJSON_Compare(dflt, want, 1);
    cJSON_Delete(want);
    cJSON_Delete(dflt);
    if (default_triggers) {
      snprintf(err, errlen, "%s: a conditional check's if_equals_json is config.%s's default",
               plugin->name, c->if_field);
      return -1;
    }
    if (bad) {
      snprintf(err, errlen, "%s: a conditional check needs if_field and then_field naming "
               "fields, and if_equals_json a valid value of if_field", plugin->name);
      return -1;
    }
    return 0;
  }
  size_t n = 0;
  if (c->kind < KPS_CHECK_MUTUALLY_REQUIRED || c->kind > KPS_CHECK_CONDITIONAL || c->fields == NULL) {
    snprintf(err, errlen, "%s: a check has an unknown kind or no fields", plugin->name);
    return -1;
  }
  for (; c->fields[n] != NULL; n++) {
    const kps_field_t *f = field_named(plugin, c->fields[n]);
    if (f == NULL) {
      snprintf(err, errlen, "%s: a check names config.%s, which is not a field", plugin->name,
               c->fields[n]);
      return -1;
    }
    /* Kong checks an explicit null but then drops it from Config, so the
     * server sees the default: "at most one set" would then disagree. */
    if (f->default_json != NULL &&
        (c->kind == KPS_CHECK_MUTUALLY_EXCLUSIVE || c->kind == KPS_CHECK_ONLY_ONE_OF)) {
      snprintf(err, errlen, "%s: config.%s has a default, so it cannot be in a mutually "
               "exclusive or only-one-of check", plugin->name, c->fields[n]);
      return -1;
    }
  }
  if (n < (c->kind == KPS_CHECK_AT_LEAST_ONE_OF ? 1u : 2u)) {
    snprintf(err, errlen, "%s: a check names too few fields", plugin->name);
    return -1;
  }
  return 0;
}

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
    for (size_t j = 0; j < i; j++) {
      if (f->name != NULL && strcmp(plugin->fields[j].name, f->name) == 0) {
        snprintf(err, errlen, "%s: config.%s is declared twice", plugin->name, f->name);
        return -1;
      }
    }
    if (field_check(plugin->name, f, err, errlen) != 0) return -1;
  }
  for (size_t i = 0; i < plugin->nchecks; i++)
    if (check_check(plugin, &plugin->checks[i], err, errlen) != 0) return -1;
  return 0;
}
