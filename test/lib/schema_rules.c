/* schema_rules.c: see schema_rules.h. */
#include "schema_rules.h"

#include <math.h>
#include <cjson/cJSON.h>

#include "test.h"

/* ---- Kong's schema rules (metaschema.lua, dao/plugins.lua) ------------- */

static const char *const allowed_types[] = {"string", "number", "integer", "boolean", "array",
                                            "set", "map", "record", "foreign", "json", NULL};
static const char *const allowed_attrs[] = {
    "type", "required", "default", "between", "one_of", "len_eq", "len_min", "len_max", "gt",
    "match", "starts_with", "contains", "uuid", "referenceable", "encrypted", "elements",
    "keys", "values", "fields", "entity_checks", "description", NULL};

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
  for (const cJSON *a = f->child; a; a = a->next)
    if (!in_list(a->string, allowed_attrs)) FAIL("field %s: attribute %s not allowed", name, a->string);
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
  int has_config = 0;
  for (const cJSON *one = top->child; one; one = one->next) {
    ASSERT(cJSON_IsObject(one) && cJSON_GetArraySize(one) == 1);
    if (!in_list(one->child->string, plugin_fields)) FAIL("top-level field %s not allowed", one->child->string);
    if (strcmp(one->child->string, "config") == 0) {
      has_config = 1;
      ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(one->child, "type")->valuestring, "record");
    }
    check_field(one->child->string, one->child);
  }
  ASSERT(has_config);
}

void check_dump(const char *json, int expect_plugins) {
  cJSON *d = cJSON_Parse(json);
  if (d == NULL) FAIL("-dump output is not JSON: %s", json);
  ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(d, "Protocol")->valuestring, "MsgPack:1");
  const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(d, "Plugins");
  ASSERT(cJSON_IsArray(plugins));
  ASSERT_EQ(cJSON_GetArraySize(plugins), expect_plugins);
  for (const cJSON *p = plugins->child; p; p = p->next) check_plugin_info(p);
  cJSON_Delete(d);
}

