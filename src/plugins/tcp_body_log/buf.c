/* buf.c: growth of tbl_buf_t (buf.h). */
#include "buf.h"

#include <stdlib.h>

int tbl_buf_reserve(tbl_buf_t *b, size_t n) {
  if (b->failed) return -1;
  if (b->len + n + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (b->len + n + 1 > cap) cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL) {
    b->failed = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}
