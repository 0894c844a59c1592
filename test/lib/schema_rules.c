/* schema_rules.c: see schema_rules.h. */
#include "schema_rules.h"

#include <math.h>
#include <cjson/cJSON.h>

#include "test.h"

/* ---- Kong's schema rules (metaschema.lua, dao/plugins.lua) ------------- */

static const char *const allowed_types[] = {"string", "number", "integer", "boolean", "array",
                                            "set", "map", "record", "foreign", "json", NULL};
/* A field's attributes in Kong's metaschema (field_schema and validators,
 * 3.4.2; 3.0-3.3 lack `description`).  Anything else makes Kong refuse the
 * schema ("unknown field"). */
static const char *const allowed_attrs[] = {
    "type", "required", "default", "between", "eq", "ne", "gt", "one_of", "not_one_of",
    "len_eq", "len_min", "len_max", "match", "not_match", "match_all", "match_none", "match_any",
    "starts_with", "contains", "uuid", "timestamp", "is_regex", "referenceable", "encrypted",
    "unique", "auto", "immutable", "abstract", "elements", "keys", "values", "fields",
    "entity_checks", "description", NULL};

static unsigned kong_version; /* of the check in progress: 0 = the newest */

static int in_list(const char *s, const char *const *list) {
  for (; *list; list++)
    if (strcmp(s, *list) == 0) return 1;
  return 0;
}

static void check_default(const char *name, const char *type, const cJSON *d) {
  if (strcmp(type, "string") == 0) ASSERT(cJSON_IsString(d));
  else if (strcmp(type, "integer") == 0) ASSERT(cJSON_IsNumber(d) && floor(d->valuedouble) == d->valuedouble);
  else if (strcmp(type, "number") == 0) ASSERT(cJSON_IsNumber(d));
  else if (strcmp(type, "boolean") == 0) ASSERT(cJSON_IsBool(d));
  else if (strcmp(type, "array") == 0 || strcmp(type, "set") == 0) ASSERT(cJSON_IsArray(d));
  (void)name;
}

static void check_field(const char *name, const cJSON *f) {
  ASSERT(cJSON_IsObject(f));
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
  if (!cJSON_IsString(type) || !in_list(type->valuestring, allowed_types))
    FAIL("field %s: type missing or not allowed", name);
  for (const cJSON *a = f->child; a; a = a->next) {
    if (!in_list(a->string, allowed_attrs)) FAIL("field %s: attribute %s not allowed", name, a->string);
    if (strcmp(a->string, "description") == 0 && kong_version != 0 && kong_version < 304)
      FAIL("field %s: Kong %u.%u has no description attribute", name, kong_version / 100,
           kong_version % 100);
  }
  const cJSON *desc = cJSON_GetObjectItemCaseSensitive(f, "description");
  if (desc != NULL) {
    ASSERT(cJSON_IsString(desc));
    size_t n = strlen(desc->valuestring);
    if (n < 10 || n > 500) FAIL("field %s: description has %zu characters", name, n);
  }
  const char *t = type->valuestring;
  if (cJSON_GetObjectItemCaseSensitive(f, "between")) {
    ASSERT(strcmp(t, "integer") == 0 || strcmp(t, "number") == 0);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "between")), 2);
  }
  if (cJSON_GetObjectItemCaseSensitive(f, "one_of"))
    ASSERT(strcmp(t, "string") == 0 || strcmp(t, "integer") == 0 || strcmp(t, "number") == 0);
  if (cJSON_GetObjectItemCaseSensitive(f, "gt"))
    ASSERT(strcmp(t, "integer") == 0 || strcmp(t, "number") == 0);
  static const char *const string_only[] = {"match", "not_match", "match_any", NULL};
  for (const char *const *a = string_only; *a; a++)
    if (cJSON_GetObjectItemCaseSensitive(f, *a) && strcmp(t, "string") != 0)
      FAIL("field %s: %s on a %s field", name, *a, t);
  /* Kong's len_* count bytes of a string or elements of an array/set/map */
  static const char *const len_rules[] = {"len_min", "len_max", NULL};
  for (const char *const *a = len_rules; *a; a++)
    if (cJSON_GetObjectItemCaseSensitive(f, *a) && strcmp(t, "string") != 0 && strcmp(t, "array") != 0 &&
        strcmp(t, "set") != 0 && strcmp(t, "map") != 0)
      FAIL("field %s: %s on a %s field", name, *a, t);
  const cJSON *ma = cJSON_GetObjectItemCaseSensitive(f, "match_any");
  if (ma) {
    const cJSON *pats = cJSON_GetObjectItemCaseSensitive(ma, "patterns");
    ASSERT(cJSON_IsArray(pats) && cJSON_GetArraySize(pats) > 0);
    ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ma, "err")));
  }
  if (strcmp(t, "array") == 0 || strcmp(t, "set") == 0)
    ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(f, "elements")));
  if (strcmp(t, "map") == 0)
    ASSERT(cJSON_GetObjectItemCaseSensitive(f, "keys") && cJSON_GetObjectItemCaseSensitive(f, "values"));
  const cJSON *d = cJSON_GetObjectItemCaseSensitive(f, "default");
  if (d) check_default(name, t, d);
  if (strcmp(t, "record") == 0) {
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(f, "fields");
    ASSERT(cJSON_IsArray(fields));
    for (const cJSON *one = fields->child; one; one = one->next) {
      ASSERT(cJSON_IsObject(one));
      ASSERT_EQ(cJSON_GetArraySize(one), 1); /* single-key objects */
      check_field(one->child->string, one->child);
    }
  }
}

/* "config.<name>" naming a field of the config record. */
static void check_path(const cJSON *path, const cJSON *config_fields) {
  ASSERT(cJSON_IsString(path));
  if (strncmp(path->valuestring, "config.", 7) != 0) FAIL("entity check path %s", path->valuestring);
  for (const cJSON *one = config_fields->child; one; one = one->next)
    if (strcmp(one->child->string, path->valuestring + 7) == 0) return;
  FAIL("entity check names %s, which is not a config field", path->valuestring);
}

/* One entry of entity_checks: a single-key object, a checker Kong has. */
static void check_entity_check(const cJSON *c, const cJSON *config_fields) {
  static const char *const lists[] = {"at_least_one_of", "only_one_of", "distinct",
                                      "mutually_required", "mutually_exclusive", NULL};
  ASSERT(cJSON_IsObject(c) && cJSON_GetArraySize(c) == 1);
  const cJSON *arg = c->child;
  if (in_list(arg->string, lists)) {
    ASSERT(cJSON_IsArray(arg) && cJSON_GetArraySize(arg) >= 1);
    for (const cJSON *p = arg->child; p; p = p->next) check_path(p, config_fields);
  } else if (strcmp(arg->string, "conditional") == 0) {
    static const char *const keys[] = {"if_field", "if_match", "then_field", "then_match", "then_err", NULL};
    for (const cJSON *k = arg->child; k; k = k->next)
      if (!in_list(k->string, keys)) FAIL("conditional: key %s not allowed", k->string);
    check_path(cJSON_GetObjectItemCaseSensitive(arg, "if_field"), config_fields);
    check_path(cJSON_GetObjectItemCaseSensitive(arg, "then_field"), config_fields);
    ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(arg, "if_match")));
    ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(arg, "then_match")));
  } else {
    FAIL("entity check %s is not one this test knows", arg->string);
  }
}

static void check_plugin_info(const cJSON *info) {
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(info, "Name");
  const cJSON *version = cJSON_GetObjectItemCaseSensitive(info, "Version");
  const cJSON *prio = cJSON_GetObjectItemCaseSensitive(info, "Priority");
  const cJSON *phases = cJSON_GetObjectItemCaseSensitive(info, "Phases");
  const cJSON *schema = cJSON_GetObjectItemCaseSensitive(info, "Schema");
  ASSERT(cJSON_IsString(name));
  /* Version: one to three numeric parts */
  ASSERT(cJSON_IsString(version));
  int parts = 0;
  for (const char *p = version->valuestring; *p;) {
    if (*p < '0' || *p > '9') FAIL("Version %s is not x.y.z", version->valuestring);
    while (*p >= '0' && *p <= '9') p++;
    parts++;
    if (*p == '.') p++;
    else if (*p) FAIL("Version %s is not x.y.z", version->valuestring);
  }
  ASSERT(parts >= 1 && parts <= 3);
  ASSERT(cJSON_IsNumber(prio) && floor(prio->valuedouble) == prio->valuedouble);
  ASSERT(cJSON_IsArray(phases) && cJSON_GetArraySize(phases) > 0);
  int has_response = 0, has_filter = 0;
  for (const cJSON *ph = phases->child; ph; ph = ph->next) {
    static const char *const ok[] = {"certificate", "rewrite", "access", "response", "preread", "log", NULL};
    ASSERT(cJSON_IsString(ph) && in_list(ph->valuestring, ok));
    has_response |= strcmp(ph->valuestring, "response") == 0;
    has_filter |= strstr(ph->valuestring, "filter") != NULL;
  }
  ASSERT(!(has_response && has_filter));
  ASSERT(cJSON_IsObject(schema));
  ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(schema, "name")));
  ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(schema, "name")->valuestring, name->valuestring);
  const cJSON *top = cJSON_GetObjectItemCaseSensitive(schema, "fields");
  ASSERT(cJSON_IsArray(top));
  static const char *const plugin_fields[] = {"config", "protocols", "consumer", "route", "service",
                                              "consumer_group", "instance_name", NULL};
  const cJSON *config = NULL;
  for (const cJSON *one = top->child; one; one = one->next) {
    ASSERT(cJSON_IsObject(one) && cJSON_GetArraySize(one) == 1);
    if (!in_list(one->child->string, plugin_fields)) FAIL("top-level field %s not allowed", one->child->string);
    if (strcmp(one->child->string, "config") == 0) {
      config = one->child;
      ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(one->child, "type")->valuestring, "record");
    }
    check_field(one->child->string, one->child);
  }
  ASSERT(config != NULL);
  /* MetaSubSchema's keys; entity checks name "config.<field>" paths */
  static const char *const schema_keys[] = {"name", "fields", "entity_checks", NULL};
  for (const cJSON *k = schema->child; k; k = k->next)
    if (!in_list(k->string, schema_keys)) FAIL("Schema key %s not allowed", k->string);
  const cJSON *checks = cJSON_GetObjectItemCaseSensitive(schema, "entity_checks");
  for (const cJSON *c = checks ? checks->child : NULL; c; c = c->next)
    check_entity_check(c, cJSON_GetObjectItemCaseSensitive(config, "fields"));
}

void check_dump(const char *json, int expect_plugins) { check_dump_kong(json, expect_plugins, 0); }

void check_dump_kong(const char *json, int expect_plugins, unsigned version) {
  kong_version = version;
  cJSON *d = cJSON_Parse(json);
  if (d == NULL) FAIL("-dump output is not JSON: %s", json);
  ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(d, "Protocol")->valuestring, "MsgPack:1");
  const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(d, "Plugins");
  ASSERT(cJSON_IsArray(plugins));
  ASSERT_EQ(cJSON_GetArraySize(plugins), expect_plugins);
  for (const cJSON *p = plugins->child; p; p = p->next) check_plugin_info(p);
  cJSON_Delete(d);
}

