/* exchange.c: the per-request context table (see exchange.h). */
#include "exchange.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static kps_idmap_t table;
static tbl_exchange_t *oldest, *newest;
static int64_t next_id = 1;
static uint32_t nonce;
static uint64_t ttl_ms = 60000;
static size_t max_bytes = 64u << 20, max_entries = 10000;
static tbl_exchange_stats_t stats;

void tbl_exchange_set_limits(uint64_t ttl, size_t bytes, size_t entries) {
  ttl_ms = ttl;
  max_bytes = bytes;
  max_entries = entries;
}

static void unlink_ex(tbl_exchange_t *ex) {
  kps__idmap_remove(&table, &ex->node);
  if (ex->prev) ex->prev->next = ex->next;
  else oldest = ex->next;
  if (ex->next) ex->next->prev = ex->prev;
  else newest = ex->prev;
  ex->prev = ex->next = NULL;
  stats.live--;
  stats.bytes -= ex->bytes;
}

void tbl_exchange_free(tbl_exchange_t *ex) {
  if (ex == NULL) return;
  free(ex->req.data);
  free(ex->resp.data);
  free(ex);
}

static void drop_oldest(uint64_t *counter) {
  tbl_exchange_t *ex = oldest;
  unlink_ex(ex);
  tbl_exchange_free(ex);
  (*counter)++;
}

static void sweep(uint64_t now_ms) {
  while (oldest != NULL && now_ms - oldest->created_ms >= ttl_ms) drop_oldest(&stats.expired);
}

/* The key: 8 lowercase hex digits of this process's nonce, '-', the
 * context's id in decimal (ids are positive).  Written and read by hand:
 * this runs twice per exchange. */
static void format_key(char *key, uint32_t n, int64_t id) {
  static const char hex[] = "0123456789abcdef";
  char digits[20];
  size_t nd = 0, k = 0;
  uint64_t v = id > 0 ? (uint64_t)id : 0;
  for (int i = 7; i >= 0; i--) key[k++] = hex[(n >> (4 * i)) & 0xf];
  key[k++] = '-';
  do {
    digits[nd++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (nd > 0) key[k++] = digits[--nd];
  key[k] = '\0';
}

/* The inverse of format_key, strict: exactly 8 hex digits, '-', 1 to 18
 * decimal digits, nothing else. */
static int parse_key(const char *key, size_t len, uint32_t *n, int64_t *id) {
  uint32_t h = 0;
  int64_t v = 0;
  if (len < 10 || len > 27 || key[8] != '-') return -1;
  for (size_t i = 0; i < 8; i++) {
    char c = key[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    h = h << 4 | (uint32_t)d;
  }
  for (size_t i = 9; i < len; i++) {
    if (key[i] < '0' || key[i] > '9') return -1;
    v = v * 10 + (key[i] - '0');
  }
  *n = h;
  *id = v;
  return 0;
}

tbl_exchange_t *tbl_exchange_new(uint64_t now_ms, char *key) {
  if (nonce == 0) {
    if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
      nonce = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    if (nonce == 0) nonce = 1;
  }
  sweep(now_ms);
  while (stats.live >= max_entries && oldest != NULL) drop_oldest(&stats.evicted);
  tbl_exchange_t *ex = calloc(1, sizeof(*ex));
  if (ex == NULL) return NULL;
  ex->node.id = next_id++;
  ex->created_ms = now_ms;
  kps__idmap_insert(&table, &ex->node);
  ex->prev = newest;
  if (newest) newest->next = ex;
  else oldest = ex;
  newest = ex;
  stats.live++;
  stats.created++;
  format_key(key, nonce, ex->node.id);
  return ex;
}

int tbl_exchange_capture(tbl_exchange_t *ex, tbl_captured_t *slot, const char *data, size_t len,
                         size_t max) {
  size_t keep = len < max ? len : max;
  slot->size = len;
  slot->len = 0;
  /* Make room under the byte cap by evicting older contexts, never this. */
  while (stats.bytes + keep > max_bytes && oldest != NULL && oldest != ex)
    drop_oldest(&stats.evicted);
  if (stats.bytes + keep > max_bytes) keep = 0; /* this one alone is over the cap */
  if (keep > 0) {
    slot->data = malloc(keep);
    if (slot->data == NULL) return -1;
    memcpy(slot->data, data, keep);
  }
  slot->len = keep;
  slot->state = TBL_BODY_CAPTURED;
  ex->bytes += keep;
  stats.bytes += keep;
  return 0;
}

tbl_exchange_t *tbl_exchange_lookup(int64_t id) {
  return (tbl_exchange_t *)kps__idmap_find(&table, id);
}

tbl_exchange_t *tbl_exchange_take(const char *key, size_t keylen, uint64_t now_ms) {
  uint32_t n;
  int64_t id;
  sweep(now_ms);
  if (parse_key(key, keylen, &n, &id) != 0 || n != nonce) goto lost;
  tbl_exchange_t *ex = tbl_exchange_lookup(id);
  if (ex == NULL) goto lost;
  unlink_ex(ex);
  stats.consumed++;
  return ex;
lost:
  stats.lost++;
  return NULL;
}

void tbl_exchange_clear(void) {
  while (oldest != NULL) {
    tbl_exchange_t *ex = oldest;
    unlink_ex(ex);
    tbl_exchange_free(ex);
  }
  kps__idmap_free(&table);
}

void tbl_exchange_get_stats(tbl_exchange_stats_t *out) { *out = stats; }
