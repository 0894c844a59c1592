/* exchange.h: the per-request context of tcp-body-log.
 *
 * The response phase captures both bodies and tags the request with a key
 * through kong.log.set_serialize_value; the log phase finds the key in
 * kong.log.serialize() and takes the bodies.  Contexts live in one table for
 * the whole process, bounded by entries, bytes and a TTL; what is evicted is
 * counted.  Keys carry a per-process nonce, so a key from before a restart
 * is recognised as lost rather than matched to another request. */
#ifndef TBL_EXCHANGE_H
#define TBL_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "idmap.h"

#define TBL_EXCHANGE_KEY "tcp_body_log_exchange"
#define TBL_KEY_MAX 40

typedef enum tbl_body_state_e {
  TBL_BODY_PENDING = 0, /* asked for, answer never came (RPC failed) */
  TBL_BODY_CAPTURED,    /* data/len hold the first max_body_size bytes */
  TBL_BODY_NIL,         /* Kong had no body to give (request body in a file) */
  TBL_BODY_DISABLED     /* not asked for by configuration */
} tbl_body_state_t;

typedef struct tbl_captured_s {
  tbl_body_state_t state;
  char *data;
  size_t len;  /* bytes kept */
  size_t size; /* original size */
} tbl_captured_t;

typedef struct tbl_exchange_s {
  kps_idmap_node_t node;
  uint64_t created_ms;
  size_t bytes;
  tbl_captured_t req, resp;
  struct tbl_exchange_s *prev, *next; /* oldest first */
} tbl_exchange_t;

typedef struct tbl_exchange_stats_s {
  uint64_t created, consumed, evicted, expired, lost;
  size_t live, bytes;
} tbl_exchange_stats_t;

/* Caps for the table (the most recently started instance's values). */
void tbl_exchange_set_limits(uint64_t ttl_ms, size_t max_bytes, size_t max_entries);
/* A new context; writes its NUL-terminated key into key[TBL_KEY_MAX]. */
tbl_exchange_t *tbl_exchange_new(uint64_t now_ms, char *key);
/* Stores a captured body (copies at most max bytes). 0, or -1 if out of
 * memory (the body is then recorded as pending). */
int tbl_exchange_capture(tbl_exchange_t *ex, tbl_captured_t *slot, const char *data, size_t len,
                         size_t max);
/* Takes the context named by a key out of the table (the caller frees it
 * with tbl_exchange_free).  NULL when it was evicted, expired or belongs to
 * a previous server process (counted as lost). */
tbl_exchange_t *tbl_exchange_take(const char *key, size_t keylen, uint64_t now_ms);
/* Is this an exchange still in the table?  (An event may hold a pointer
 * across a PDK call; eviction could free it meanwhile.) */
tbl_exchange_t *tbl_exchange_lookup(int64_t id);
void tbl_exchange_free(tbl_exchange_t *ex);
void tbl_exchange_clear(void);
void tbl_exchange_get_stats(tbl_exchange_stats_t *out);

#endif
