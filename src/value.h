/* value.h: the server's own readings of decoded MessagePack, shared by the
 * RPC dispatcher and the plugin API accessors (value.c), so a parameter and
 * a PDK result are read by the same rules. */
#ifndef KPS_VALUE_H
#define KPS_VALUE_H

#include <stdint.h>
#include <msgpack.h>

/* Integers, and doubles without a fraction (PROTOCOL.md R8): 0 and *out,
 * or -1 for anything else (NULL included). */
int kps__value_int(const msgpack_object *o, int64_t *out);

/* The value of a str or bin key equal to `key` in a map, or NULL (also
 * when m is NULL or not a map). */
const msgpack_object *kps__value_map_get(const msgpack_object *m, const char *key);

#endif
