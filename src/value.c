/* value.c: read-only accessors over decoded PDK results.  A kps_value_t is
 * a msgpack_object; plugins never see the MessagePack types. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <msgpack.h>

#include "kps_plugin.h"
#include "value.h"

#define OBJ(v) ((const msgpack_object *)(v))
#define VAL(o) ((const kps_value_t *)(o))

kps_value_type_t kps_value_type(const kps_value_t *v) {
  if (v == NULL) return KPS_VALUE_NIL;
  switch (OBJ(v)->type) {
    case MSGPACK_OBJECT_NIL: return KPS_VALUE_NIL;
    case MSGPACK_OBJECT_BOOLEAN: return KPS_VALUE_BOOL;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return KPS_VALUE_INTEGER;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return KPS_VALUE_NUMBER;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: return KPS_VALUE_STRING;
    case MSGPACK_OBJECT_ARRAY: return KPS_VALUE_ARRAY;
    case MSGPACK_OBJECT_MAP: return KPS_VALUE_MAP;
    default: return KPS_VALUE_OTHER;
  }
}

int kps_value_is_nil(const kps_value_t *v) { return kps_value_type(v) == KPS_VALUE_NIL; }

const char *kps_value_string(const kps_value_t *v, size_t *len) {
  if (v == NULL) return NULL;
  const msgpack_object *o = OBJ(v);
  if (o->type == MSGPACK_OBJECT_STR) {
    if (len) *len = o->via.str.size;
    return o->via.str.ptr ? o->via.str.ptr : "";
  }
  if (o->type == MSGPACK_OBJECT_BIN) {
    if (len) *len = o->via.bin.size;
    return o->via.bin.ptr ? o->via.bin.ptr : "";
  }
  return NULL;
}

char *kps_value_strdup(const kps_value_t *v) {
  size_t len;
  const char *s = kps_value_string(v, &len);
  if (s == NULL) return NULL;
  char *copy = malloc(len + 1);
  if (copy == NULL) return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

int kps_value_bool(const kps_value_t *v, int fallback) {
  if (v == NULL || OBJ(v)->type != MSGPACK_OBJECT_BOOLEAN) return fallback;
  return OBJ(v)->via.boolean ? 1 : 0;
}

int kps__value_int(const msgpack_object *o, int64_t *out) {
  if (o == NULL) return -1;
  switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o->via.u64 > (uint64_t)INT64_MAX) return -1;
      *out = (int64_t)o->via.u64;
      return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = o->via.i64; return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      /* Kong sends integral numbers as integers, other encoders may not. */
      if (isfinite(o->via.f64) && floor(o->via.f64) == o->via.f64 && fabs(o->via.f64) < 9.2e18) {
        *out = (int64_t)o->via.f64;
        return 0;
      }
      return -1;
    default: return -1;
  }
}

int64_t kps_value_integer(const kps_value_t *v, int64_t fallback) {
  int64_t n;
  return kps__value_int(OBJ(v), &n) == 0 ? n : fallback;
}

double kps_value_number(const kps_value_t *v, double fallback) {
  if (v == NULL) return fallback;
  const msgpack_object *o = OBJ(v);
  switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return o->via.f64;
    default: return fallback;
  }
}

size_t kps_value_len(const kps_value_t *v) {
  if (v == NULL) return 0;
  if (OBJ(v)->type == MSGPACK_OBJECT_ARRAY) return OBJ(v)->via.array.size;
  if (OBJ(v)->type == MSGPACK_OBJECT_MAP) return OBJ(v)->via.map.size;
  return 0;
}

const kps_value_t *kps_value_at(const kps_value_t *v, size_t i) {
  if (v == NULL || OBJ(v)->type != MSGPACK_OBJECT_ARRAY || i >= OBJ(v)->via.array.size)
    return NULL;
  return VAL(&OBJ(v)->via.array.ptr[i]);
}

const kps_value_t *kps_value_key_at(const kps_value_t *v, size_t i) {
  if (v == NULL || OBJ(v)->type != MSGPACK_OBJECT_MAP || i >= OBJ(v)->via.map.size) return NULL;
  return VAL(&OBJ(v)->via.map.ptr[i].key);
}

const kps_value_t *kps_value_value_at(const kps_value_t *v, size_t i) {
  if (v == NULL || OBJ(v)->type != MSGPACK_OBJECT_MAP || i >= OBJ(v)->via.map.size) return NULL;
  return VAL(&OBJ(v)->via.map.ptr[i].val);
}

static int key_is(const msgpack_object *k, const char *key, size_t keylen, int nocase) {
  const char *s;
  size_t n;
  if (k->type == MSGPACK_OBJECT_STR) s = k->via.str.ptr, n = k->via.str.size;
  else if (k->type == MSGPACK_OBJECT_BIN) s = k->via.bin.ptr, n = k->via.bin.size;
  else return 0;
  if (n != keylen) return 0;
  return nocase ? strncasecmp(s, key, n) == 0 : memcmp(s, key, n) == 0;
}

const msgpack_object *kps__value_map_get(const msgpack_object *o, const char *key) {
  if (o == NULL || key == NULL || o->type != MSGPACK_OBJECT_MAP) return NULL;
  size_t keylen = strlen(key);
  const msgpack_object_map *m = &o->via.map;
  for (uint32_t i = 0; i < m->size; i++)
    if (key_is(&m->ptr[i].key, key, keylen, 0)) return &m->ptr[i].val;
  return NULL;
}

const kps_value_t *kps_value_get(const kps_value_t *v, const char *key) {
  return VAL(kps__value_map_get(OBJ(v), key));
}

const char *kps_value_multimap_first(const kps_value_t *v, const char *key, size_t *len) {
  if (v == NULL || key == NULL || OBJ(v)->type != MSGPACK_OBJECT_MAP) return NULL;
  size_t keylen = strlen(key);
  const msgpack_object_map *m = &OBJ(v)->via.map;
  for (uint32_t i = 0; i < m->size; i++) {
    if (!key_is(&m->ptr[i].key, key, keylen, 1)) continue;
    const msgpack_object *val = &m->ptr[i].val;
    if (val->type == MSGPACK_OBJECT_ARRAY)
      return val->via.array.size ? kps_value_string(VAL(&val->via.array.ptr[0]), len) : NULL;
    return kps_value_string(VAL(val), len);
  }
  return NULL;
}
