/* config.c: config validation at StartInstance and the public getters.
 *
 * The rules are the ones the -dump schema states (schema.c), applied as
 * Kong applies them (kong/db/schema/init.lua), so whatever Kong accepts is
 * accepted here (proto/PROTOCOL.md R30-R33). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_pattern.h"

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

void kps__field_bounds(const kps_field_t *f, double *lo, double *hi) {
  if (f->flags & KPS_FIELD_BETWEEN) {
    *lo = f->min, *hi = f->max;
  } else {
    *lo = -KPS_INTEGER_BOUND, *hi = KPS_INTEGER_BOUND;
  }
}

void kps__field_len_bounds(const kps_field_t *f, size_t *lo, size_t *hi) {
  if (f->flags & KPS_FIELD_LEN) {
    *lo = (size_t)f->min, *hi = (size_t)f->max;
  } else {
    *lo = 1, *hi = SIZE_MAX; /* Kong: strings are not empty by default */
  }
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

/* One string (a string field, or one element of an array field): length,
 * one_of, match, match_any.  `where` names it in messages ("config.x", "config.x[2]"). */
static int check_string(const kps_field_t *f, const char *where, const char *s, char *err,
                        size_t errlen) {
  size_t n = strlen(s), lo, hi;
  kps__field_len_bounds(f, &lo, &hi);
  if (n < lo || n > hi) {
    if (hi == SIZE_MAX)
      snprintf(err, errlen, "%s: expected a string of at least %zu bytes, got %zu", where, lo, n);
    else
      snprintf(err, errlen, "%s: expected a string of %zu to %zu bytes, got %zu", where, lo, hi, n);
    return -1;
  }
  if (f->one_of != NULL) {
    for (const char *const *o = f->one_of; *o != NULL; o++)
      if (strcmp(*o, s) == 0) return 0;
    size_t off = (size_t)snprintf(err, errlen, "%s: expected one of", where);
    for (const char *const *o = f->one_of; *o != NULL && off < errlen; o++)
      off += (size_t)snprintf(err + off, errlen - off, "%s \"%s\"", o == f->one_of ? "" : ",", *o);
    if (off < errlen) snprintf(err + off, errlen - off, ", got \"%.40s\"", s);
    return -1;
  }
  if (f->match != NULL && !kps__lua_pattern_find(f->match, strlen(f->match), s, n)) {
    snprintf(err, errlen, "%s: does not match the pattern %s", where, f->match);
    return -1;
  }
  if (f->match_any != NULL) {
    for (const char *const *p = f->match_any; *p != NULL; p++)
      if (kps__lua_pattern_find(*p, strlen(*p), s, n)) return 0;
    snprintf(err, errlen, "%s: %s", where, f->match_any_err);
    return -1;
  }
  return 0;
}

int kps__config_check_value(const kps_field_t *f, const cJSON *v, char *err, size_t errlen) {
  char got[64], where[160];
  double lo, hi;
  describe(v, got, sizeof(got));
  snprintf(where, sizeof(where), "config.%s", f->name);
  switch (f->type) {
    case KPS_FIELD_STRING:
      if (!cJSON_IsString(v)) goto wrong_type;
      return check_string(f, where, v->valuestring, err, errlen);
    case KPS_FIELD_INTEGER:
    case KPS_FIELD_NUMBER:
      if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) goto wrong_type;
      if (f->type == KPS_FIELD_INTEGER && floor(v->valuedouble) != v->valuedouble) goto wrong_type;
      kps__field_bounds(f, &lo, &hi);
      if (v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(err, errlen, "%s: expected %s between %.17g and %.17g, got %s", where,
                 type_word(f->type), lo, hi, got);
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
      int i = cJSON_GetArraySize(v);
      if (f->max_items > 0 && (unsigned)i > f->max_items) {
        snprintf(err, errlen, "%s: expected at most %u elements, got %d", where, f->max_items, i);
        return -1;
      }
      i = 0;
      for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
        snprintf(where, sizeof(where), "config.%s[%d]", f->name, i + 1);
        if (!cJSON_IsString(e)) {
          describe(e, got, sizeof(got));
          snprintf(err, errlen, "%s: expected a string, got %s", where, got);
          return -1;
        }
        if (check_string(f, where, e->valuestring, err, errlen) != 0) return -1;
      }
      return 0;
    }
  }
wrong_type:
  snprintf(err, errlen, "%s: expected %s, got %s", where, type_word(f->type), got);
  return -1;
}

/* ---- NUL bytes --------------------------------------------------------
 * cJSON decodes "\u0000" into a NUL byte and keeps only a C string, so a
 * value holding one would be cut short silently.  The schema refuses NUL in
 * every string (not_match "%z"), and no key Kong adds can hold one, so a
 * config with "\u0000" anywhere in a string is refused before parsing.  The
 * top-level key it sits under names the field in the message. */

static int is_field(const kps_plugin_t *plugin, const char *name, size_t len) {
  for (size_t i = 0; i < plugin->nfields; i++)
    if (strlen(plugin->fields[i].name) == len && memcmp(plugin->fields[i].name, name, len) == 0)
      return 1;
  return 0;
}

/* 0 if the JSON text has no \u0000 escape; else -1 with a message. */
static int refuse_nul(const kps_plugin_t *plugin, const char *json, size_t len, char *err,
                      size_t errlen) {
  int depth = 0, in_str = 0, expect_key = 0, is_key = 0;
  const char *key = NULL, *str = NULL;
  size_t keylen = 0;
  for (size_t i = 0; i < len; i++) {
    char c = json[i];
    if (in_str) {
      if (c == '\\') {
        if (i + 5 < len && memcmp(json + i + 1, "u0000", 5) == 0) {
          if (!is_key && key != NULL && is_field(plugin, key, keylen))
            snprintf(err, errlen, "config.%.*s: must not contain a NUL byte", (int)keylen, key);
          else
            snprintf(err, errlen, "Config: a string holds a NUL byte");
          return -1;
        }
        i++; /* the escaped character */
      } else if (c == '"') {
        in_str = 0;
        if (is_key) key = str, keylen = (size_t)(json + i - str);
      }
      continue;
    }
    switch (c) {
      case '"':
        in_str = 1;
        is_key = depth == 1 && expect_key;
        expect_key = 0;
        str = json + i + 1;
        break;
      case '{':
      case '[':
        depth++;
        expect_key = depth == 1 && c == '{';
        break;
      case '}':
      case ']': depth--; break;
      case ',': expect_key = depth == 1; break;
      default: break;
    }
  }
  return 0;
}

/* ---- cross-field checks (Kong's entity checks) --------------------------
 * Same semantics and messages as Kong's entity_checkers.  They run on the
 * config before explicit nulls take their defaults, as Kong runs them on
 * what it stores; kps__plugin_check keeps the checks to those whose answer
 * does not change when Kong drops such a null before sending (R33). */

/* Kong's is_nonempty: not absent, null, "" or an empty table. */
static int is_set(const cJSON *v) {
  if (v == NULL || cJSON_IsNull(v)) return 0;
  if (cJSON_IsString(v)) return v->valuestring[0] != '\0';
  if (cJSON_IsArray(v) || cJSON_IsObject(v)) return v->child != NULL;
  return 1;
}

/* "'config.a', 'config.b'", as Kong quotes the fields in its messages. */
static void list_names(const char *const *names, char *out, size_t outlen) {
  size_t off = 0;
  out[0] = '\0';
  for (const char *const *n = names; *n != NULL && off < outlen; n++)
    off += (size_t)snprintf(out + off, outlen - off, "%s'config.%s'", n == names ? "" : ", ", *n);
}

static int run_check(const kps_check_t *c, const cJSON *root, char *err, size_t errlen) {
  char names[256];
  if (c->kind == KPS_CHECK_CONDITIONAL) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, c->if_field);
    cJSON *want = cJSON_Parse(c->if_equals_json);
    int applies = v != NULL && want != NULL && cJSON_Compare(v, want, 1);
    cJSON_Delete(want);
    const cJSON *then = cJSON_GetObjectItemCaseSensitive(root, c->then_field);
    if (applies && (then == NULL || cJSON_IsNull(then))) {
      snprintf(err, errlen, "config.%s: required when config.%s is %s", c->then_field, c->if_field,
               c->if_equals_json);
      return -1;
    }
    return 0;
  }
  size_t n = 0, nset = 0;
  for (const char *const *f = c->fields; *f != NULL; f++, n++)
    nset += (size_t)is_set(cJSON_GetObjectItemCaseSensitive(root, *f));
  list_names(c->fields, names, sizeof(names));
  switch (c->kind) {
    case KPS_CHECK_MUTUALLY_REQUIRED:
      if (nset == 0 || nset == n) return 0;
      snprintf(err, errlen, "all or none of these fields must be set: %s", names);
      return -1;
    case KPS_CHECK_MUTUALLY_EXCLUSIVE:
      if (nset <= 1) return 0;
      snprintf(err, errlen, "only one or none of these fields must be set: %s", names);
      return -1;
    case KPS_CHECK_AT_LEAST_ONE_OF:
      if (nset >= 1) return 0;
      snprintf(err, errlen, "at least one of these fields must be non-empty: %s", names);
      return -1;
    case KPS_CHECK_ONLY_ONE_OF:
      if (nset == 1) return 0;
      snprintf(err, errlen, "exactly one of these fields must be non-empty: %s", names);
      return -1;
    case KPS_CHECK_CONDITIONAL: break;
  }
  return 0;
}

/* ---- parsing ------------------------------------------------------------ */

kps_config_t *kps__config_parse(const kps_plugin_t *plugin, const char *json, size_t len,
                                char *err, size_t errlen) {
  kps_config_t *cfg = NULL;
  unsigned char *explicit_null = NULL;
  if (refuse_nul(plugin, json, len, err, errlen) != 0) return NULL;
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
  explicit_null = calloc(plugin->nfields + 1, 1);
  if (explicit_null == NULL) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  /* Pass 1, as Kong: absent fields take their default; an explicit null
   * stays null for the cross-field checks (Kong stores it so). */
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
    if (v != NULL && !cJSON_IsNull(v)) {
      if (kps__config_check_value(f, v, err, errlen) != 0) goto fail;
      continue;
    }
    if (f->default_json == NULL) {
      if (f->flags & KPS_FIELD_REQUIRED) {
        snprintf(err, errlen, "config.%s: required field missing", f->name);
        goto fail;
      }
      continue;
    }
    if (v != NULL) {
      explicit_null[i] = 1;
      continue;
    }
    cJSON *d = cJSON_Parse(f->default_json); /* valid: kps__plugin_check */
    if (d == NULL) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
    cJSON_AddItemToObject(root, f->name, d);
  }
  for (size_t i = 0; i < plugin->nchecks; i++)
    if (run_check(&plugin->checks[i], root, err, errlen) != 0) goto fail;
  /* Pass 2: an explicit null takes the default, as an absent field does
   * (a Lua plugin would see nil; the default is the safe reading). */
  for (size_t i = 0; i < plugin->nfields; i++) {
    if (!explicit_null[i]) continue;
    cJSON *d = cJSON_Parse(plugin->fields[i].default_json);
    if (d == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(root, plugin->fields[i].name, d)) {
      cJSON_Delete(d);
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
  }
  cfg = calloc(1, sizeof(*cfg));
  if (cfg == NULL) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  cfg->plugin = plugin;
  cfg->json = root;
  free(explicit_null);
  return cfg;
fail:
  free(explicit_null);
  cJSON_Delete(root);
  return NULL;
}

void kps__config_free(kps_config_t *cfg) {
  if (cfg == NULL) return;
  cJSON_Delete(cfg->json);
  free(cfg);
}

/* ---- public getters ---------------------------------------------------- */

/* The value of a field of the plugin's table; NULL for null, absent, or a
 * name the table does not have (Kong's own keys). */
static const cJSON *get(const kps_config_t *cfg, const char *name) {
  if (cfg == NULL || name == NULL) return NULL;
  size_t i = 0;
  while (i < cfg->plugin->nfields && strcmp(cfg->plugin->fields[i].name, name) != 0) i++;
  if (i == cfg->plugin->nfields) return NULL;
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->json, name);
  return cJSON_IsNull(v) ? NULL : v;
}

const char *kps_config_string(const kps_config_t *cfg, const char *name) {
  const cJSON *v = get(cfg, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t kps_config_integer(const kps_config_t *cfg, const char *name, int64_t fallback) {
  const cJSON *v = get(cfg, name);
  if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble ||
      fabs(v->valuedouble) > KPS_INTEGER_LIMIT)
    return fallback;
  return (int64_t)v->valuedouble;
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
