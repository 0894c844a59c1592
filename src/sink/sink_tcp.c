/* sink_tcp.c: the plain TCP transport: records go out as they are, one
 * uv_buf_t each, so a batch is a single writev with no copying.  There is
 * no handshake: a connection counts as accepted once TCP connected. */
#include "sink_transport.h"

static int kps__sink_tcp_ctx_new(const kps_sink_config_t *cfg, void **tctx, char **err) {
  *tctx = NULL;
  return 0;
}

static void kps__sink_tcp_ctx_free(void *tctx) {}

static int kps__sink_tcp_conn_start(kps__sink_conn_t *c) { return KPS__SINK_T_ACCEPTED; }

/* Collectors do not talk back on a log stream; whatever arrives is ignored. */
static int kps__sink_tcp_conn_input(kps__sink_conn_t *c, const char *data, size_t len) {
  return KPS__SINK_T_OK;
}

static int kps__sink_tcp_conn_encode(kps__sink_conn_t *c, kps__sink_batch_t *b) {
  uint64_t end = 0;
  unsigned i;

  for (i = 0; i < b->nrec; i++) {
    b->bufs[i].base = b->recs[i]->data;
    b->bufs[i].len = b->recs[i]->len;
    end += b->recs[i]->len;
    b->rec_end[i] = end;
  }
  b->nbufs = b->nrec;
  b->owned = NULL;
  b->wire_len = (size_t)end;
  return 0;
}

static size_t kps__sink_tcp_conn_goodbye(kps__sink_conn_t *c, char *buf, size_t cap) { return 0; }

static void kps__sink_tcp_conn_free(kps__sink_conn_t *c) { c->tstate = NULL; }

const kps__sink_transport_t kps__sink_tcp = {
    "",
    kps__sink_tcp_ctx_new,
    kps__sink_tcp_ctx_free,
    kps__sink_tcp_conn_start,
    kps__sink_tcp_conn_input,
    kps__sink_tcp_conn_encode,
    kps__sink_tcp_conn_goodbye,
    kps__sink_tcp_conn_free,
};
