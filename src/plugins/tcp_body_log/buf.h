/* buf.h: the growable byte buffer tcp-body-log builds its output in (the
 * record, its body fields, masked JSON bodies).  A failed allocation sets
 * `failed`; later appends do nothing, and the caller checks once. */
#ifndef TBL_BUF_H
#define TBL_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct tbl_buf_s {
  char *p; /* malloc'd; the caller frees it */
  size_t len, cap;
  int failed;
} tbl_buf_t;

/* Room for n more bytes and a terminating NUL: 0, or -1 (failed set). */
int tbl_buf_reserve(tbl_buf_t *b, size_t n);

/* Appends n bytes; one byte past them always stays free for a NUL. */
static inline void tbl_buf_put(tbl_buf_t *b, const char *s, size_t n) {
  if (b->failed || n == 0) return;
  if (b->len + n + 1 > b->cap && tbl_buf_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

#endif
