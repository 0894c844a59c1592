/* frame.h: finds where one MessagePack object ends in a byte stream.
 *
 * Kong sends MessagePack-RPC objects back to back with no length prefix, and
 * a read may hold half an object or several.  The scanner walks the type
 * headers without decoding or allocating anything, so a declared 4 GiB
 * string or a 4-billion-entry array costs nothing until its bytes arrive;
 * the declared sizes are checked against the message cap up front.
 *
 * It is resumable: call kps__frame_scan again with the same (grown) buffer
 * after more bytes arrive and it continues where it stopped.  Returns
 * KPS_FRAME_DONE with f->pos = the object's length, KPS_FRAME_MORE, or a
 * negative error.  Reset with kps__frame_reset before the next object. */
#ifndef KPS_FRAME_H
#define KPS_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* msgpack-c's own unpacker stops at 32 levels; so do we. */
#define KPS_FRAME_MAX_DEPTH 32

enum {
  KPS_FRAME_MORE = 0,
  KPS_FRAME_DONE = 1,
  KPS_FRAME_EMALFORMED = -1, /* 0xc1, the never-used type byte */
  KPS_FRAME_EDEEP = -2,      /* nested deeper than KPS_FRAME_MAX_DEPTH */
  KPS_FRAME_EBIG = -3        /* the object is (or declares to be) over the cap */
};

typedef struct kps_frame_s {
  size_t pos;      /* bytes of this object consumed so far */
  uint64_t skip;   /* payload bytes of a str/bin/ext still to pass */
  unsigned depth;  /* open containers, the root counting as one */
  uint64_t remaining[KPS_FRAME_MAX_DEPTH + 1]; /* items left per level */
} kps_frame_t;

void kps__frame_reset(kps_frame_t *f);
int kps__frame_scan(kps_frame_t *f, const uint8_t *buf, size_t len, size_t max_size);

#endif
