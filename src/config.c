/* config.c: config validation at StartInstance and the public getters. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAFE_INTEGER 9007199254740992.0 /* 2^53: Kong's numbers are doubles */

static const char *type_word(kps_field_type_t t) {
  switch (t) {
    case KPS_FIELD_STRING: return "a string";
    case KPS_FIELD_INTEGER: return "an integer";
    case KPS_FIELD_NUMBER: return "a number";
    case KPS_FIELD_BOOLEAN: return "a boolean";
    case KPS_FIELD_STRING_ARRAY: return "an array of strings";
  }
  return "a value";
}

/* What we got, for error messages.  Strings are not echoed (they may be
 * secrets) except where the field has a fixed set of allowed values. */
static void describe(const cJSON *v, char *out, size_t outlen) {
  if (cJSON_IsNumber(v)) snprintf(out, outlen, "%.17g", v->valuedouble);
  else if (cJSON_IsBool(v)) snprintf(out, outlen, "%s", cJSON_IsTrue(v) ? "true" : "false");
  else if (cJSON_IsString(v)) snprintf(out, outlen, "a string");
  else if (cJSON_IsArray(v)) snprintf(out, outlen, "an array");
  else if (cJSON_IsObject(v)) snprintf(out, outlen, "an object");
  else if (cJSON_IsNull(v)) snprintf(out, outlen, "null");
  else snprintf(out, outlen, "an invalid value");
}

static int is_integral(double d) {
  return isfinite(d) && floor(d) == d && fabs(d) <= MAX_SAFE_INTEGER;
}

int kps__config_check_value(const kps_field_t *f, const cJSON *v, char *err, size_t errlen) {
  char got[64];
  describe(v, got, sizeof(got));
  switch (f->type) {
    case KPS_FIELD_STRING: {
      if (!cJSON_IsString(v)) goto wrong_type;
      size_t n = strlen(v->valuestring);
      if ((f->flags & KPS_FIELD_LEN) && ((double)n < f->min || (double)n > f->max)) {
        snprintf(err, errlen, "config.%s: expected a string of %.0f to %.0f characters, got %zu",
                 f->name, f->min, f->max, n);
        return -1;
      }
      if (f->one_of != NULL) {
        for (const char *const *o = f->one_of; *o != NULL; o++)
          if (strcmp(*o, v->valuestring) == 0) return 0;
        size_t off = (size_t)snprintf(err, errlen, "config.%s: expected one of", f->name);
        for (const char *const *o = f->one_of; *o != NULL && off < errlen; o++)
          off += (size_t)snprintf(err + off, errlen - off, "%s \"%s\"",
                                  o == f->one_of ? "" : ",", *o);
        if (off < errlen) snprintf(err + off, errlen - off, ", got \"%.40s\"", v->valuestring);
        return -1;
      }
      return 0;
    }
    case KPS_FIELD_INTEGER:
      if (!cJSON_IsNumber(v) || !is_integral(v->valuedouble)) goto wrong_type;
      __attribute__((fallthrough)); /* to the bounds check */
    case KPS_FIELD_NUMBER:
      if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) goto wrong_type;
      if ((f->flags & KPS_FIELD_BETWEEN) && (v->valuedouble < f->min || v->valuedouble > f->max)) {
        snprintf(err, errlen, "config.%s: expected %s between %.17g and %.17g, got %s", f->name,
                 type_word(f->type), f->min, f->max, got);
        return -1;
      }
      return 0;
    case KPS_FIELD_BOOLEAN:
      if (!cJSON_IsBool(v)) goto wrong_type;
      return 0;
    case KPS_FIELD_STRING_ARRAY: {
      /* Lua's cjson encodes an empty table as {}: accept it as []. */
      if (cJSON_IsObject(v) && v->child == NULL) return 0;
      if (!cJSON_IsArray(v)) goto wrong_type;
      int i = 0;
      for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
          describe(e, got, sizeof(got));
          snprintf(err, errlen, "config.%s[%d]: expected a string, got %s", f->name, i + 1, got);
          return -1;
        }
      }
      return 0;
    }
  }
wrong_type:
  snprintf(err, errlen, "config.%s: expected %s, got %s", f->name, type_word(f->type), got);
  return -1;
}

kps_config_t *kps__config_parse(const kps_plugin_t *plugin, const char *json, size_t len,
                                char *err, size_t errlen) {
  kps_config_t *cfg = NULL;
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (root == NULL) {
    snprintf(err, errlen, "Config: not valid JSON");
    return NULL;
  }
  if (!cJSON_IsObject(root)) {
    /* An empty config table may arrive as [] from some encoders. */
    if (cJSON_IsArray(root) && root->child == NULL) {
      cJSON_Delete(root);
      root = cJSON_CreateObject();
    } else {
      snprintf(err, errlen, "Config: expected a JSON object");
      goto fail;
    }
  }
  for (size_t i = 0; i < plugin->nfields; i++) {
    const kps_field_t *f = &plugin->fields[i];
    /* A key given twice would let the unchecked occurrence win later. */
    int seen = 0;
    for (const cJSON *e = root->child; e != NULL; e = e->next)
      seen += e->string != NULL && strcmp(e->string, f->name) == 0;
    if (seen > 1) {
      snprintf(err, errlen, "config.%s: given more than once", f->name);
      goto fail;
    }
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, f->name);
    if (v == NULL || cJSON_IsNull(v)) {
      if (f->default_json != NULL) {
        cJSON *d = cJSON_Parse(f->default_json);
        if (d == NULL) {
          snprintf(err, errlen, "config.%s: the plugin's default is not valid JSON", f->name);
          goto fail;
        }
        if (v != NULL) cJSON_DeleteItemFromObjectCaseSensitive(root, f->name);
        cJSON_AddItemToObject(root, f->name, d);
        continue;
      }
      if (f->flags & KPS_FIELD_REQUIRED) {
        snprintf(err, errlen, "config.%s: required field missing", f->name);
        goto fail;
      }
      continue;
    }
    if (kps__config_check_value(f, v, err, errlen) != 0) goto fail;
  }
  cfg = calloc(1, sizeof(*cfg));
  if (cfg == NULL) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  cfg->plugin = plugin;
  cfg->json = root;
  return cfg;
fail:
  cJSON_Delete(root);
  return NULL;
}

void kps__config_free(kps_config_t *cfg) {
  if (cfg == NULL) return;
  cJSON_Delete(cfg->json);
  free(cfg);
}

/* ---- public getters ---------------------------------------------------- */

static const cJSON *get(const kps_config_t *cfg, const char *name) {
  if (cfg == NULL || name == NULL) return NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->json, name);
  return cJSON_IsNull(v) ? NULL : v;
}

const char *kps_config_string(const kps_config_t *cfg, const char *name) {
  const cJSON *v = get(cfg, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t kps_config_integer(const kps_config_t *cfg, const char *name, int64_t fallback) {
  const cJSON *v = get(cfg, name);
  return (cJSON_IsNumber(v) && is_integral(v->valuedouble)) ? (int64_t)v->valuedouble : fallback;
}

double kps_config_number(const kps_config_t *cfg, const char *name, double fallback) {
  const cJSON *v = get(cfg, name);
  return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

int kps_config_bool(const kps_config_t *cfg, const char *name, int fallback) {
  const cJSON *v = get(cfg, name);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : fallback;
}

size_t kps_config_array_len(const kps_config_t *cfg, const char *name) {
  const cJSON *v = get(cfg, name);
  return cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
}

const char *kps_config_array_at(const kps_config_t *cfg, const char *name, size_t i) {
  const cJSON *v = get(cfg, name);
  if (!cJSON_IsArray(v)) return NULL;
  const cJSON *e = cJSON_GetArrayItem(v, (int)i);
  return cJSON_IsString(e) ? e->valuestring : NULL;
}
