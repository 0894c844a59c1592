/* frame.c: the incremental MessagePack object scanner (see frame.h). */
#include "frame.h"

void kps__frame_reset(kps_frame_t *f) {
  f->pos = 0;
  f->skip = 0;
  f->depth = 1;
  f->remaining[0] = 1;
}

static uint64_t read_be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

/* One item of the innermost container is complete; close every container
 * that this completes.  Returns 1 when the root object is complete. */
static int item_done(kps_frame_t *f) {
  for (;;) {
    f->remaining[f->depth - 1]--;
    if (f->remaining[f->depth - 1] != 0) return 0;
    f->depth--;
    if (f->depth == 0) return 1;
  }
}

/* Header of the item at p (at least 1 byte): sets *hdr to the header size,
 * *payload to the str/bin/ext payload length and *items to a container's
 * item count (maps count keys and values).  Returns 0, or -1 for 0xc1. */
static int classify(const uint8_t *p, unsigned *hdr, uint64_t *payload, uint64_t *items,
                    int *container) {
  uint8_t t = p[0];
  *payload = 0;
  *items = 0;
  *container = 0;
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
    *hdr = 1;
  } else if (t >= 0x80 && t <= 0x8f) {
    *hdr = 1, *items = 2u * (t & 0x0f), *container = 1;
  } else if (t >= 0x90 && t <= 0x9f) {
    *hdr = 1, *items = t & 0x0f, *container = 1;
  } else if (t >= 0xa0 && t <= 0xbf) {
    *hdr = 1, *payload = t & 0x1f;
  } else {
    switch (t) {
      case 0xc4: case 0xd9: *hdr = 2; break;            /* bin8, str8 */
      case 0xc5: case 0xda: *hdr = 3; break;            /* bin16, str16 */
      case 0xc6: case 0xdb: *hdr = 5; break;            /* bin32, str32 */
      case 0xc7: *hdr = 3; break;                       /* ext8 */
      case 0xc8: *hdr = 4; break;                       /* ext16 */
      case 0xc9: *hdr = 6; break;                       /* ext32 */
      case 0xca: *hdr = 5; break;                       /* float32 */
      case 0xcb: *hdr = 9; break;                       /* float64 */
      case 0xcc: case 0xd0: *hdr = 2; break;
      case 0xcd: case 0xd1: *hdr = 3; break;
      case 0xce: case 0xd2: *hdr = 5; break;
      case 0xcf: case 0xd3: *hdr = 9; break;
      case 0xd4: *hdr = 2, *payload = 1; break;         /* fixext 1..16 */
      case 0xd5: *hdr = 2, *payload = 2; break;
      case 0xd6: *hdr = 2, *payload = 4; break;
      case 0xd7: *hdr = 2, *payload = 8; break;
      case 0xd8: *hdr = 2, *payload = 16; break;
      case 0xdc: *hdr = 3, *container = 1; break;       /* array16 */
      case 0xdd: *hdr = 5, *container = 1; break;       /* array32 */
      case 0xde: *hdr = 3, *container = 2; break;       /* map16 */
      case 0xdf: *hdr = 5, *container = 2; break;       /* map32 */
      default: return -1;                               /* 0xc1 */
    }
  }
  return 0;
}

static void header_sizes(const uint8_t *p, unsigned hdr, uint64_t *payload, uint64_t *items,
                         int *container) {
  uint8_t t = p[0];
  switch (t) {
    case 0xc4: case 0xc5: case 0xc6: case 0xd9: case 0xda: case 0xdb:
      *payload = read_be(p + 1, hdr - 1);
      break;
    case 0xc7: case 0xc8: case 0xc9: /* extN: length then a type byte */
      *payload = read_be(p + 1, hdr - 2);
      break;
    case 0xdc: case 0xdd:
      *items = read_be(p + 1, hdr - 1);
      break;
    case 0xde: case 0xdf:
      *items = 2 * read_be(p + 1, hdr - 1);
      *container = 1;
      break;
    default:
      break;
  }
}

int kps__frame_scan(kps_frame_t *f, const uint8_t *buf, size_t len, size_t max_size) {
  for (;;) {
    if (f->skip > 0) {
      size_t avail = len - f->pos;
      if ((uint64_t)avail < f->skip) {
        f->skip -= avail;
        f->pos = len;
        return KPS_FRAME_MORE;
      }
      f->pos += (size_t)f->skip;
      f->skip = 0;
      if (item_done(f)) return KPS_FRAME_DONE;
      continue;
    }
    if (f->pos >= len) return KPS_FRAME_MORE;

    const uint8_t *p = buf + f->pos;
    unsigned hdr;
    uint64_t payload, items;
    int container;
    if (classify(p, &hdr, &payload, &items, &container) != 0) return KPS_FRAME_EMALFORMED;
    if ((uint64_t)f->pos + hdr > max_size) return KPS_FRAME_EBIG;
    if (len - f->pos < hdr) return KPS_FRAME_MORE; /* header incomplete */
    header_sizes(p, hdr, &payload, &items, &container);
    /* Refuse what is declared too big before waiting for it. */
    if ((uint64_t)f->pos + hdr + payload > max_size) return KPS_FRAME_EBIG;
    if (container && items > (uint64_t)max_size) return KPS_FRAME_EBIG;
    f->pos += hdr;

    if (container) {
      if (items == 0) {
        if (item_done(f)) return KPS_FRAME_DONE;
        continue;
      }
      if (f->depth > KPS_FRAME_MAX_DEPTH) return KPS_FRAME_EDEEP;
      f->remaining[f->depth++] = items;
      continue;
    }
    if (payload > 0) {
      f->skip = payload;
      continue;
    }
    if (item_done(f)) return KPS_FRAME_DONE;
  }
}
