/* conn.c: a Kong connection: bytes in, frames, dispatch, replies out
 * (see conn.h).  Replies are packed into `out` and handed to the kernel with
 * uv_try_write; only what the kernel does not take goes through uv_write. */
#include "conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "event.h"
#include "log.h"
#include "rpc.h"
#include "server.h"

#define READ_CHUNK (64 * 1024)
#define IDLE_BUFFER_KEEP (256 * 1024) /* shrink larger idle input buffers */

static kps_conn_t *conns;
static size_t nconns;

static void process_input(kps_conn_t *c);
static void set_reading(kps_conn_t *c, int on);

static void on_close(uv_handle_t *h) {
  kps_conn_t *c = (kps_conn_t *)h;
  free(c->in);
  msgpack_sbuffer_destroy(&c->out);
  msgpack_sbuffer_destroy(&c->wr);
  msgpack_zone_destroy(&c->zone);
  free(c);
}

void kps__conn_close(kps_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  kps_event_t *ev = c->event;
  c->event = NULL;
  if (ev != NULL) kps__event_conn_lost(ev); /* it owed a reply here */
  if (c->prev) c->prev->next = c->next;
  else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  nconns--;
  kps__counters.connections_active--;
  uv_close((uv_handle_t *)&c->pipe, on_close);
}

void kps__conn_close_all(void) {
  while (conns != NULL) kps__conn_close(conns);
}

size_t kps__conn_count(void) { return nconns; }

/* ---- output ------------------------------------------------------------ */

static void flush(kps_conn_t *c);

static void on_write(uv_write_t *req, int status) {
  kps_conn_t *c = req->data;
  c->writing = 0;
  c->wr.size = 0;
  if (status < 0) {
    if (!c->closing) {
      KPS_DEBUG("write to Kong failed: %s", uv_strerror(status));
      kps__conn_close(c);
    }
    return;
  }
  flush(c);
}

static void flush(kps_conn_t *c) {
  if (c->closing || c->writing) return;
  if (c->out.size == 0) {
    if (c->close_after_write) kps__conn_close(c);
    return;
  }
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.size);
  int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
  if (n == (int)c->out.size) {
    c->out.size = 0;
    if (c->close_after_write) kps__conn_close(c);
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    KPS_DEBUG("write to Kong failed: %s", uv_strerror(n));
    kps__conn_close(c);
    return;
  }
  if (n < 0) n = 0;
  /* The rest goes out asynchronously from `wr`; new replies pack into the
   * (now empty) `out` meanwhile. */
  msgpack_sbuffer tmp = c->wr;
  c->wr = c->out;
  c->out = tmp;
  c->out.size = 0;
  b = uv_buf_init(c->wr.data + n, (unsigned)(c->wr.size - (size_t)n));
  c->writing = 1;
  c->wreq.data = c;
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, on_write);
  if (rc != 0) {
    c->writing = 0;
    kps__conn_close(c);
  }
}

msgpack_packer *kps__conn_reply_begin(kps_conn_t *c, int64_t msgid) {
  msgpack_pack_array(&c->pk, 4);
  msgpack_pack_int(&c->pk, KPS_RPC_RESPONSE);
  msgpack_pack_int64(&c->pk, msgid);
  msgpack_pack_nil(&c->pk);
  return &c->pk;
}

void kps__conn_reply_end(kps_conn_t *c) {
  c->awaiting = 0;
  flush(c);
  /* An answer given later (not from inside the input loop) lets the
   * connection take its next request. */
  if (!c->in_process && !c->closing) process_input(c);
}

void kps__conn_reply_error(kps_conn_t *c, int64_t msgid, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  kps__counters.error_replies++;
  msgpack_pack_array(&c->pk, 4);
  msgpack_pack_int(&c->pk, KPS_RPC_RESPONSE);
  msgpack_pack_int64(&c->pk, msgid);
  msgpack_pack_str_with_body(&c->pk, msg, strlen(msg)); /* R20: always a string */
  msgpack_pack_nil(&c->pk);
  kps__conn_reply_end(c);
}

/* ---- input ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  kps_conn_t *c = (kps_conn_t *)h;
  if (c->in_off > 0) { /* keep unconsumed bytes at the front */
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  if (c->in_cap - c->in_len < READ_CHUNK) {
    size_t cap = c->in_cap ? c->in_cap : READ_CHUNK;
    while (cap - c->in_len < READ_CHUNK) cap *= 2;
    char *p = realloc(c->in, cap);
    if (p == NULL) {
      *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
      return;
    }
    c->in = p;
    c->in_cap = cap;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

/* The msgid of a request whose body we refuse, if its first bytes show it:
 * fixarray(4), 0, msgid. */
static int peek_msgid(const uint8_t *p, size_t n, int64_t *msgid) {
  if (n < 3 || p[0] != 0x94 || p[1] != 0x00) return -1;
  if (p[2] <= 0x7f) {
    *msgid = p[2];
    return 0;
  }
  unsigned w = p[2] == 0xcc ? 1 : p[2] == 0xcd ? 2 : p[2] == 0xce ? 4 : p[2] == 0xcf ? 8 : 0;
  if (w == 0 || n < 3 + w) return -1;
  uint64_t v = 0;
  for (unsigned i = 0; i < w; i++) v = (v << 8) | p[3 + i];
  if (v > (uint64_t)INT64_MAX) return -1;
  *msgid = (int64_t)v;
  return 0;
}

/* A message we cannot take: answer it if we can tell its msgid, then close
 * (the rest of the stream cannot be trusted to be in step). */
static void refuse_message(kps_conn_t *c, int why) {
  const uint8_t *p = (const uint8_t *)c->in + c->in_off;
  size_t n = c->in_len - c->in_off;
  int64_t msgid;
  const char *what;
  if (why == KPS_FRAME_EBIG) {
    kps__counters.oversized++;
    what = "message exceeds max_message_size";
  } else if (why == KPS_FRAME_EDEEP) {
    kps__counters.malformed++;
    what = "message nested too deeply";
  } else {
    kps__counters.malformed++;
    what = "malformed MessagePack";
  }
  KPS_WARN("closing connection: %s (limit %zu bytes, %d levels)", what,
           kps__limits.max_message_size, KPS_FRAME_MAX_DEPTH);
  c->close_after_write = 1;
  if (peek_msgid(p, n, &msgid) == 0) {
    kps__conn_reply_error(c, msgid, "%s (limit %zu bytes, %d levels)", what,
                          kps__limits.max_message_size, KPS_FRAME_MAX_DEPTH);
  } else {
    flush(c);
  }
}

static void process_input(kps_conn_t *c) {
  if (c->in_process) return;
  c->in_process = 1;
  while (!c->closing && !c->awaiting && !c->close_after_write && c->in_off < c->in_len) {
    const uint8_t *p = (const uint8_t *)c->in + c->in_off;
    size_t avail = c->in_len - c->in_off;
    int r = kps__frame_scan(&c->frame, p, avail, kps__limits.max_message_size);
    if (r == KPS_FRAME_MORE) break;
    if (r < 0) {
      refuse_message(c, r);
      break;
    }
    size_t n = c->frame.pos, off = 0;
    msgpack_object obj;
    kps__frame_reset(&c->frame);
    msgpack_unpack_return ur = msgpack_unpack((const char *)p, n, &off, &c->zone, &obj);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != n) {
      refuse_message(c, KPS_FRAME_EMALFORMED);
      break;
    }
    if (kps__dispatch(c, &obj) != 0) {
      kps__counters.malformed++;
      kps__conn_close(c);
    }
    c->in_off += n; /* after dispatch: the object points into the buffer */
    msgpack_zone_clear(&c->zone);
  }
  if (c->in_off == c->in_len) {
    c->in_off = c->in_len = 0;
    if (c->in_cap > IDLE_BUFFER_KEEP) { /* give back what a big body took */
      free(c->in);
      c->in = NULL;
      c->in_cap = 0;
    }
  }
  c->in_process = 0;
  if (c->closing) return;
  /* While a request is unanswered, read nothing more: input stays bounded
   * even for a client that pipelines. */
  set_reading(c, !(c->awaiting || c->close_after_write));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  kps_conn_t *c = (kps_conn_t *)s;
  if (nread < 0) {
    if (nread != UV_EOF) KPS_DEBUG("read from Kong failed: %s", uv_strerror((int)nread));
    kps__conn_close(c);
    return;
  }
  c->in_len += (size_t)nread;
  process_input(c);
}

static void set_reading(kps_conn_t *c, int on) {
  if (on == c->reading) return;
  if (on) uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
  else uv_read_stop((uv_stream_t *)&c->pipe);
  c->reading = on;
}

/* Sets up an accepted pipe as a Kong connection and sends serverPid. */
static void conn_start(kps_conn_t *c) {
  msgpack_zone_init(&c->zone, 8192);
  msgpack_sbuffer_init(&c->out);
  msgpack_sbuffer_init(&c->wr);
  msgpack_packer_init(&c->pk, &c->out, msgpack_sbuffer_write);
  kps__frame_reset(&c->frame);
  c->next = conns;
  if (conns) conns->prev = c;
  conns = c;
  nconns++;
  kps__counters.connections_accepted++;
  kps__counters.connections_active++;

  /* R3: [2, "serverPid", pid] right after accept, and never again. */
  msgpack_pack_array(&c->pk, 3);
  msgpack_pack_int(&c->pk, KPS_RPC_NOTIFY);
  msgpack_pack_str_with_body(&c->pk, KPS_RPC_NOTIFY_SERVER_PID,
                             sizeof(KPS_RPC_NOTIFY_SERVER_PID) - 1);
  msgpack_pack_int64(&c->pk, (int64_t)getpid());
  flush(c);
  set_reading(c, 1);
}

void kps__conn_accept(uv_stream_t *server) {
  kps_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    KPS_ERROR("out of memory accepting a connection");
    return;
  }
  uv_pipe_init(server->loop, &c->pipe, 0);
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
    uv_close((uv_handle_t *)&c->pipe, (uv_close_cb)free);
    return;
  }
  if (nconns >= kps__limits.max_connections) {
    kps__counters.connections_refused++;
    KPS_WARN("refusing a connection: %zu open (max_connections)", nconns);
    uv_close((uv_handle_t *)&c->pipe, (uv_close_cb)free);
    return;
  }
  conn_start(c);
}

int kps__conn_adopt(uv_loop_t *loop, int fd) {
  kps_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) return -1;
  uv_pipe_init(loop, &c->pipe, 0);
  int rc = uv_pipe_open(&c->pipe, fd);
  if (rc != 0) {
    uv_close((uv_handle_t *)&c->pipe, (uv_close_cb)free);
    return rc;
  }
  conn_start(c);
  return 0;
}
