/* json_mp.h: conversions between cJSON trees and MessagePack, used where a
 * reply carries JSON-shaped data (schemas, configs, status). */
#ifndef KPS_JSON_MP_H
#define KPS_JSON_MP_H

#include <cjson/cJSON.h>
#include <msgpack.h>

/* Packs a JSON value: integral numbers below 2^53 as integers, other
 * numbers as doubles, objects as maps. */
void kps__json_pack(msgpack_packer *pk, const cJSON *v);
/* Builds a JSON value from a MessagePack object (bin becomes a string;
 * map keys that are not strings are printed). NULL on allocation failure. */
cJSON *kps__json_from_mp(const msgpack_object *o);

#endif
