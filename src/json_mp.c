/* json_mp.c: cJSON <-> MessagePack (see json_mp.h). */
#include "json_mp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void kps__json_pack(msgpack_packer *pk, const cJSON *v) {
  if (cJSON_IsNumber(v)) {
    double d = v->valuedouble;
    if (isfinite(d) && floor(d) == d && fabs(d) < 9007199254740992.0) msgpack_pack_int64(pk, (int64_t)d);
    else msgpack_pack_double(pk, d);
  } else if (cJSON_IsString(v)) {
    msgpack_pack_str_with_body(pk, v->valuestring, strlen(v->valuestring));
  } else if (cJSON_IsTrue(v)) {
    msgpack_pack_true(pk);
  } else if (cJSON_IsFalse(v)) {
    msgpack_pack_false(pk);
  } else if (cJSON_IsArray(v)) {
    msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(v));
    for (const cJSON *e = v->child; e != NULL; e = e->next) kps__json_pack(pk, e);
  } else if (cJSON_IsObject(v)) {
    msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(v));
    for (const cJSON *e = v->child; e != NULL; e = e->next) {
      msgpack_pack_str_with_body(pk, e->string, strlen(e->string));
      kps__json_pack(pk, e);
    }
  } else {
    msgpack_pack_nil(pk);
  }
}

static cJSON *string_of(const char *p, size_t n) {
  char buf[256];
  if (n < sizeof(buf)) {
    memcpy(buf, p, n);
    buf[n] = '\0';
    return cJSON_CreateString(buf);
  }
  char *heap = cJSON_malloc(n + 1);
  if (heap == NULL) return NULL;
  memcpy(heap, p, n);
  heap[n] = '\0';
  cJSON *s = cJSON_CreateString(heap);
  cJSON_free(heap);
  return s;
}

cJSON *kps__json_from_mp(const msgpack_object *o) {
  switch (o->type) {
    case MSGPACK_OBJECT_NIL: return cJSON_CreateNull();
    case MSGPACK_OBJECT_BOOLEAN: return cJSON_CreateBool(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return cJSON_CreateNumber((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return cJSON_CreateNumber((double)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return cJSON_CreateNumber(o->via.f64);
    case MSGPACK_OBJECT_STR: return string_of(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return string_of(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
      cJSON *a = cJSON_CreateArray();
      for (uint32_t i = 0; a && i < o->via.array.size; i++)
        cJSON_AddItemToArray(a, kps__json_from_mp(&o->via.array.ptr[i]));
      return a;
    }
    case MSGPACK_OBJECT_MAP: {
      cJSON *m = cJSON_CreateObject();
      for (uint32_t i = 0; m && i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        char key[256];
        if (k->type == MSGPACK_OBJECT_STR || k->type == MSGPACK_OBJECT_BIN) {
          size_t n = k->via.str.size < sizeof(key) - 1 ? k->via.str.size : sizeof(key) - 1;
          memcpy(key, k->via.str.ptr, n);
          key[n] = '\0';
        } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
          snprintf(key, sizeof(key), "%llu", (unsigned long long)k->via.u64);
        } else if (k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
          snprintf(key, sizeof(key), "%lld", (long long)k->via.i64);
        } else {
          snprintf(key, sizeof(key), "?");
        }
        cJSON_AddItemToObject(m, key, kps__json_from_mp(&o->via.map.ptr[i].val));
      }
      return m;
    }
    default: return cJSON_CreateNull();
  }
}
