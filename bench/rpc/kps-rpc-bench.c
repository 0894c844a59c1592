/* kps-rpc-bench: a MsgPack:1 load driver that acts like N Kong workers.
 *
 *   kps-rpc-bench --socket PATH --plugin NAME --config JSON
 *                 [--phases response,log] [--workers 2] [--concurrency 16]
 *                 [--body BYTES] [--warmup S] [--duration S] [--max-exchanges N]
 *                 [--pid SERVER_PID] [--count-file COLLECTOR_COUNT_FILE]
 *                 [--drain-timeout S] [--rate EXCHANGES_PER_S] [--label TEXT]
 *
 * Per worker: StartInstance once, then `concurrency / workers` exchanges at a
 * time.  Closed loop by default (a slot starts its next exchange as soon as
 * one ends: the server's saturation throughput); with --rate, exchanges start
 * at that fixed total rate (open loop, at most `concurrency` in flight; starts
 * the slots could not absorb are counted as `late`), which measures per-RPC
 * latency at a load below saturation.  An exchange is the RPC sequence Kong's plugin-server client
 * (kong/runloop/plugin_servers/plugin.lua, rpc/mp_rpc.lua) runs for the
 * plugin: for each phase, HandleEvent, then one plugin.Step per PDK call the
 * server asks for, answered with canned data, until "ret".  Like Kong, every
 * call takes a connection from the worker's keepalive pool (LIFO, at most 256
 * idle, lua_socket_pool_size) or connects a new one, and has one request
 * outstanding per connection.  Encoding follows Kong's lua-MessagePack
 * settings: str is fixstr/str16/str32 (never str8), raw bodies are bin, a nil
 * PDK result is a Step without Data.
 *
 * Canned PDK answers (per exchange):
 *   kong.nginx.get_var("request_body")     request body as str (nil when 0 B,
 *                                           as nginx's $request_body)
 *   kong.request.get_raw_body()            request body as bin
 *   kong.service.response.get_raw_body()   response body as bin
 *   kong.log.set_serialize_value(k, v)     remembered, added to serialize
 *   kong.ctx.shared.set(k, v) / get(k)     a per-exchange table
 *   kong.log.serialize()                   a ~1.6 KB JSON string, the shape of
 *                                           Kong 3.x's (fixture 01-post-0B minus
 *                                           bodies) with a fresh request id
 *   anything else                          nil (counted as unknown_pdk)
 *
 * After the warm-up, exchanges, RPCs and per-RPC latency (send to reply, with
 * the connect when the pool had none) are counted for --duration seconds;
 * then no new exchange starts, the in-flight ones finish, and the collector's
 * line count (kps-collector --count-file) must reach the number of exchanges
 * the run completed.  Server CPU (utime+stime of /proc/PID/stat), peak RSS
 * (VmHWM after resetting it through /proc/PID/clear_refs) and RSS before and
 * after are read for --pid.  One JSON object is printed on stdout.
 *
 * Bounded: --max-exchanges, --duration, --drain-timeout and a hard deadline
 * (warm-up + duration + drain + 30 s) after which the run is abandoned with
 * exit status 3.  Only Unix sockets are used; exit status 1 when an RPC
 * failed or the collector count does not match, 2 on usage errors. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <msgpack.h>
#include <uv.h>

#define POOL_MAX 256       /* lua_socket_pool_size in the gateway */
#define MAX_WORKERS 64
#define MAX_CONCURRENCY 4096
#define MAX_PHASES 6
#define MAX_KV 8
#define READ_CHUNK 65536
#define HIST_US 100000     /* 1 us buckets up to 100 ms, then one overflow bucket */

/* ---- options ------------------------------------------------------------ */

static struct {
  const char *socket, *plugin, *config, *count_file, *label;
  const char *phases[MAX_PHASES];
  int nphases, workers, concurrency;
  size_t body;
  double warmup, duration, drain_timeout, rate;
  uint64_t max_exchanges;
  int pid;
} opt = {.workers = 2, .concurrency = 16, .warmup = 1, .duration = 5, .drain_timeout = 30,
         .max_exchanges = 100000000, .label = ""};

/* ---- output buffer and Kong-style MessagePack encoder ------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "kps-rpc-bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void reserve(buf_t *b, size_t n) {
  if (b->len + n <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n) cap *= 2;
  b->p = realloc(b->p, cap);
  if (b->p == NULL) die("out of memory");
  b->cap = cap;
}
static void put(buf_t *b, const void *p, size_t n) {
  reserve(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
}
static void put8(buf_t *b, uint8_t v) { put(b, &v, 1); }
static void put16(buf_t *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(b, x, 2);
}
static void put32(buf_t *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  put(b, x, 4);
}
static void put64(buf_t *b, uint64_t v) {
  put32(b, (uint32_t)(v >> 32));
  put32(b, (uint32_t)v);
}
static void mp_array(buf_t *b, uint32_t n) {
  if (n < 16) put8(b, (uint8_t)(0x90 | n));
  else if (n < 65536) put8(b, 0xdc), put16(b, (uint16_t)n);
  else put8(b, 0xdd), put32(b, n);
}
static void mp_map(buf_t *b, uint32_t n) {
  if (n < 16) put8(b, (uint8_t)(0x80 | n));
  else if (n < 65536) put8(b, 0xde), put16(b, (uint16_t)n);
  else put8(b, 0xdf), put32(b, n);
}
static void mp_uint(buf_t *b, uint64_t v) {
  if (v < 128) put8(b, (uint8_t)v);
  else if (v < 256) put8(b, 0xcc), put8(b, (uint8_t)v);
  else if (v < 65536) put8(b, 0xcd), put16(b, (uint16_t)v);
  else if (v <= UINT32_MAX) put8(b, 0xce), put32(b, (uint32_t)v);
  else put8(b, 0xcf), put64(b, v);
}
static void mp_int(buf_t *b, int64_t v) {
  if (v >= 0) mp_uint(b, (uint64_t)v);
  else if (v >= -32) put8(b, (uint8_t)(int8_t)v);
  else if (v >= INT8_MIN) put8(b, 0xd0), put8(b, (uint8_t)(int8_t)v);
  else if (v >= INT16_MIN) put8(b, 0xd1), put16(b, (uint16_t)(int16_t)v);
  else if (v >= INT32_MIN) put8(b, 0xd2), put32(b, (uint32_t)(int32_t)v);
  else put8(b, 0xd3), put64(b, (uint64_t)v);
}
/* lua-MessagePack string_compat: fixstr, then str16 and str32, never str8. */
static void mp_str_hdr(buf_t *b, size_t n) {
  if (n < 32) put8(b, (uint8_t)(0xa0 | n));
  else if (n < 65536) put8(b, 0xda), put16(b, (uint16_t)n);
  else put8(b, 0xdb), put32(b, (uint32_t)n);
}
static void mp_str(buf_t *b, const char *s, size_t n) {
  mp_str_hdr(b, n);
  put(b, s, n);
}
static void mp_cstr(buf_t *b, const char *s) { mp_str(b, s, strlen(s)); }
static void mp_bin_hdr(buf_t *b, size_t n) {
  if (n < 256) put8(b, 0xc4), put8(b, (uint8_t)n);
  else if (n < 65536) put8(b, 0xc5), put16(b, (uint16_t)n);
  else put8(b, 0xc6), put32(b, (uint32_t)n);
}
static void mp_nil(buf_t *b) { put8(b, 0xc0); }

/* Re-encodes a decoded value the way Kong would send it back. */
static void mp_object(buf_t *b, const msgpack_object *o) {
  switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: mp_uint(b, o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: mp_int(b, o->via.i64); break;
    case MSGPACK_OBJECT_BOOLEAN: put8(b, o->via.boolean ? 0xc3 : 0xc2); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
      double d = o->via.f64;
      uint64_t u;
      if (d == (double)(int64_t)d) {
        mp_int(b, (int64_t)d); /* Kong sends integral numbers as integers */
        break;
      }
      memcpy(&u, &d, 8);
      put8(b, 0xcb), put64(b, u);
      break;
    }
    case MSGPACK_OBJECT_STR: mp_str(b, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: mp_str(b, o->via.bin.ptr, o->via.bin.size); break;
    case MSGPACK_OBJECT_ARRAY:
      mp_array(b, o->via.array.size);
      for (uint32_t i = 0; i < o->via.array.size; i++) mp_object(b, &o->via.array.ptr[i]);
      break;
    case MSGPACK_OBJECT_MAP:
      mp_map(b, o->via.map.size);
      for (uint32_t i = 0; i < o->via.map.size; i++) {
        mp_object(b, &o->via.map.ptr[i].key);
        mp_object(b, &o->via.map.ptr[i].val);
      }
      break;
    default: mp_nil(b); break;
  }
}

/* JSON text of a decoded scalar (for set_serialize_value). */
static void json_object(buf_t *b, const msgpack_object *o) {
  char num[40];
  switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      put(b, num, (size_t)snprintf(num, sizeof(num), "%" PRIu64, o->via.u64));
      break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
      put(b, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, o->via.i64));
      break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      put(b, num, (size_t)snprintf(num, sizeof(num), "%.17g", o->via.f64));
      break;
    case MSGPACK_OBJECT_BOOLEAN: put(b, o->via.boolean ? "true" : "false", o->via.boolean ? 4 : 5); break;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: {
      const char *s = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
      uint32_t n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
      put8(b, '"');
      for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') put8(b, '\\'), put8(b, c);
        else if (c < 0x20) put(b, num, (size_t)snprintf(num, sizeof(num), "\\u%04x", c));
        else put8(b, c);
      }
      put8(b, '"');
      break;
    }
    default: put(b, "null", 4); break;
  }
}

static int str_eq(const msgpack_object *o, const char *s) {
  size_t n = strlen(s);
  if (o->type == MSGPACK_OBJECT_STR) return o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
  if (o->type == MSGPACK_OBJECT_BIN) return o->via.bin.size == n && memcmp(o->via.bin.ptr, s, n) == 0;
  return 0;
}
static const msgpack_object *map_get(const msgpack_object *m, const char *key) {
  if (m == NULL || m->type != MSGPACK_OBJECT_MAP) return NULL;
  for (uint32_t i = 0; i < m->via.map.size; i++)
    if (str_eq(&m->via.map.ptr[i].key, key)) return &m->via.map.ptr[i].val;
  return NULL;
}
static int as_int(const msgpack_object *o, int64_t *v) {
  if (o == NULL) return 0;
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return *v = (int64_t)o->via.u64, 1;
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return *v = o->via.i64, 1;
  if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
    return *v = (int64_t)o->via.f64, 1;
  return 0;
}

/* ---- the canned serialize JSON ------------------------------------------ */

/* Kong 3.x kong.log.serialize() of a proxied POST, from the recorded fixture
 * /work/shared/fixtures/kong-wire/01-post-0B/sink.jsonl without the bodies:
 * %s request id (32 hex), %zu request content-length, %zu request size,
 * %zu response content-length, %zu response size. */
static const char SERIALIZE_FMT[] =
    "{\"upstream_status\":\"200\",\"tries\":[{\"balancer_latency_ns\":0,\"ip\":\"127.0.0.1\","
    "\"balancer_start\":1795684822312,\"port\":18101,\"balancer_latency\":0,"
    "\"balancer_start_ns\":1.795684822312e+18}],\"response\":{\"size\":%zu,\"status\":200,"
    "\"headers\":{\"connection\":\"close\",\"content-length\":\"%zu\",\"x-upstream\":\"gateway000\","
    "\"content-type\":\"text/plain\"}},\"request\":{\"url\":\"http://127.0.0.1:18100/\",\"uri\":\"/\","
    "\"method\":\"POST\",\"querystring\":{},\"id\":\"%s\",\"size\":%zu,"
    "\"headers\":{\"content-length\":\"%zu\",\"host\":\"127.0.0.1:18100\",\"content-type\":\"text/plain\"}},"
    "\"service\":{\"path\":null,\"read_timeout\":60000,\"enabled\":true,\"name\":\"example-service0000\","
    "\"created_at\":1795684821,\"updated_at\":1795684821,\"ws_id\":\"0dc6f45b-8f8d-40d2-a504-473544ee190b\","
    "\"protocol\":\"http\",\"host\":\"127.0.0.1\",\"write_timeout\":60000,\"port\":18101,"
    "\"id\":\"5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f\",\"retries\":5,\"connect_timeout\":60000},"
    "\"source\":\"service\",\"latencies\":{\"receive\":2,\"request\":6,\"kong\":4,\"proxy\":0},"
    "\"route\":{\"name\":\"example-route000\",\"methods\":null,\"protocols\":[\"http\",\"https\"],"
    "\"hosts\":null,\"strip_path\":false,\"preserve_host\":false,\"regex_priority\":0,"
    "\"path_handling\":\"v0\",\"https_redirect_status_code\":426,\"request_buffering\":true,"
    "\"response_buffering\":true,\"created_at\":1795684821,\"updated_at\":1795684821,"
    "\"ws_id\":\"0dc6f45b-8f8d-40d2-a504-473544ee190b\",\"service\":{\"id\":"
    "\"5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f\"},\"id\":\"3d4b8a2c-1e5f-4c6d-9a7b-8e9f0a1b2c3d\","
    "\"paths\":[\"/\"]},\"workspace\":\"0dc6f45b-8f8d-40d2-a504-473544ee190b\",\"upstream_uri\":\"/\","
    "\"client_ip\":\"127.0.0.1\",\"started_at\":1795684822308,\"workspace_name\":\"default\"}";

static char *body_req, *body_resp; /* opt.body bytes each */

/* ---- workers, connections, exchanges ------------------------------------ */

typedef struct worker_s worker_t;
typedef struct conn_s conn_t;
typedef struct exch_s exch_t;

enum { CALL_START, CALL_HANDLE, CALL_STEP };

struct conn_s {
  uv_pipe_t pipe;
  uv_connect_t creq;
  worker_t *w;
  msgpack_unpacker up;
  exch_t *ex;    /* owes it a reply; NULL when idle */
  conn_t *next;  /* idle stack */
  int idle, closing;
};

typedef struct {
  buf_t key, val; /* val: MessagePack (ctx) or JSON text (serialize) */
} kv_t;

struct exch_s {
  worker_t *w;
  int slot, kind, phase, active;
  int64_t event_id;
  uint64_t msgid, t0, seq;
  buf_t out;              /* the request (body excluded) */
  const char *tail;       /* zero-copy body after out */
  size_t tail_len;
  kv_t sv[MAX_KV], ctx[MAX_KV];
  int nsv, nctx, rpcs;
  buf_t ser;
};

struct worker_s {
  int id;
  int64_t instance_id;
  int have_instance, starting;
  uint64_t msgid;
  conn_t *idle;
  int nidle, nconn;
  exch_t *waiting[MAX_CONCURRENCY]; /* exchanges waiting for StartInstance */
  int nwaiting;
};

static uv_loop_t *loop;
static worker_t workers[MAX_WORKERS];
static exch_t *exchs;
static int running = 1, measuring = 0, active_exchanges = 0, instances_ready = 0;
static uint64_t seq_counter;
static int failed_hard = 0;
static exch_t **free_slots; /* --rate: slots without an exchange */
static int nfree;
static double tokens;
static uint64_t late_starts, last_tick;
static uv_timer_t t_rate;

static struct {
  uint64_t exchanges_total, exchanges, rpcs, errors, unknown_pdk, connects, instance_restarts,
      pool_closes, rpcs_total;
  uint64_t hist[HIST_US + 1];
  uint64_t lat_max_ns;
  char first_error[256];
} st;

static uint64_t t_measure_start, t_measure_end;

static void error_note(const char *fmt, ...) {
  st.errors++;
  if (st.first_error[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st.first_error, sizeof(st.first_error), fmt, ap);
    va_end(ap);
  }
}

static void record_latency(uint64_t ns) {
  uint64_t us = ns / 1000;
  st.hist[us < HIST_US ? us : HIST_US]++;
  if (ns > st.lat_max_ns) st.lat_max_ns = ns;
}

static double percentile(double p) {
  uint64_t total = 0, seen = 0;
  for (size_t i = 0; i <= HIST_US; i++) total += st.hist[i];
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(p * (double)total);
  if (want >= total) want = total - 1;
  for (size_t i = 0; i <= HIST_US; i++) {
    seen += st.hist[i];
    if (seen > want) return i == HIST_US ? (double)st.lat_max_ns / 1000.0 : (double)i + 0.5;
  }
  return 0;
}

static void send_call(exch_t *ex);
static void start_exchange(exch_t *ex);
static void handle_reply(exch_t *ex, const msgpack_object *err, const msgpack_object *res);

/* -- connections -- */

static void on_conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  msgpack_unpacker_destroy(&c->up);
  free(c);
}

static void conn_close(conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  worker_t *w = c->w;
  if (c->idle) { /* unlink from the idle stack */
    conn_t **pp = &w->idle;
    while (*pp && *pp != c) pp = &(*pp)->next;
    if (*pp) *pp = c->next, w->nidle--;
    c->idle = 0;
  }
  w->nconn--;
  if (c->ex) {
    exch_t *ex = c->ex;
    c->ex = NULL;
    error_note("connection closed while waiting for a reply (msgid %" PRIu64 ")", ex->msgid);
    handle_reply(ex, NULL, NULL);
  }
  uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

/* The reply arrived: back to the pool, as Kong's setkeepalive. */
static void conn_release(conn_t *c) {
  worker_t *w = c->w;
  c->ex = NULL;
  if (w->nidle >= POOL_MAX) {
    st.pool_closes++;
    conn_close(c);
    return;
  }
  c->idle = 1;
  c->next = w->idle;
  w->idle = c;
  w->nidle++;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  conn_t *c = h->data;
  if (!msgpack_unpacker_reserve_buffer(&c->up, READ_CHUNK)) die("out of memory");
  b->base = msgpack_unpacker_buffer(&c->up);
  b->len = msgpack_unpacker_buffer_capacity(&c->up);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  conn_t *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  msgpack_unpacker_buffer_consumed(&c->up, (size_t)nread);
  msgpack_unpacked msg;
  msgpack_unpacked_init(&msg);
  for (int guard = 0; guard < 100000 && !c->closing; guard++) {
    msgpack_unpack_return r = msgpack_unpacker_next(&c->up, &msg);
    if (r == MSGPACK_UNPACK_CONTINUE) break;
    if (r != MSGPACK_UNPACK_SUCCESS) {
      error_note("undecodable reply");
      conn_close(c);
      break;
    }
    const msgpack_object *o = &msg.data;
    int64_t type, msgid;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3 || !as_int(&o->via.array.ptr[0], &type)) {
      error_note("reply is not a MsgPack-RPC message");
      conn_close(c);
      break;
    }
    if (type == 2) continue; /* serverPid notification */
    if (type != 1 || o->via.array.size != 4 || !as_int(&o->via.array.ptr[1], &msgid)) {
      error_note("unexpected message type %" PRId64, type);
      conn_close(c);
      break;
    }
    exch_t *ex = c->ex;
    if (ex == NULL || (uint64_t)msgid != ex->msgid) {
      /* Kong asserts msgid == expected */
      error_note("msgid %" PRId64 " does not match the request's", msgid);
      conn_close(c);
      break;
    }
    uint64_t now = uv_hrtime();
    if (measuring && ex->kind != CALL_START) {
      record_latency(now - ex->t0);
      st.rpcs++;
    }
    st.rpcs_total++;
    conn_release(c);
    handle_reply(ex, &o->via.array.ptr[2], &o->via.array.ptr[3]);
  }
  msgpack_unpacked_destroy(&msg);
}

typedef struct {
  uv_write_t req;
} wreq_t;

static void on_written(uv_write_t *req, int status) {
  if (status < 0 && status != UV_ECANCELED) error_note("write: %s", uv_strerror(status));
  free(req);
}

static void conn_write(conn_t *c, exch_t *ex) {
  uv_buf_t bufs[2] = {uv_buf_init(ex->out.p, (unsigned)ex->out.len),
                      uv_buf_init((char *)ex->tail, (unsigned)ex->tail_len)};
  unsigned nb = ex->tail_len ? 2 : 1;
  int n = uv_try_write((uv_stream_t *)&c->pipe, bufs, nb);
  size_t total = ex->out.len + ex->tail_len;
  if (n == (int)total) return;
  if (n < 0 && n != UV_EAGAIN) {
    conn_close(c);
    return;
  }
  if (n < 0) n = 0;
  /* the rest goes through libuv; the buffers stay untouched until the reply */
  size_t skip = (size_t)n;
  uv_buf_t rest[2];
  unsigned nr = 0;
  for (unsigned i = 0; i < nb; i++) {
    if (skip >= bufs[i].len) {
      skip -= bufs[i].len;
      continue;
    }
    rest[nr++] = uv_buf_init(bufs[i].base + skip, (unsigned)(bufs[i].len - skip));
    skip = 0;
  }
  wreq_t *w = malloc(sizeof(*w));
  if (w == NULL) die("out of memory");
  int rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, rest, nr, on_written);
  if (rc < 0) {
    free(w);
    conn_close(c);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status < 0) {
    error_note("connect %s: %s", opt.socket, uv_strerror(status));
    conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
  if (c->ex) conn_write(c, c->ex);
}

/* Kong's sock:connect(): a pooled connection, or a new one. */
static void send_call(exch_t *ex) {
  worker_t *w = ex->w;
  ex->t0 = uv_hrtime();
  ex->rpcs += ex->kind != CALL_START;
  conn_t *c = w->idle;
  if (c) {
    w->idle = c->next;
    w->nidle--;
    c->idle = 0;
    c->ex = ex;
    conn_write(c, ex);
    return;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL || !msgpack_unpacker_init(&c->up, READ_CHUNK)) die("out of memory");
  c->w = w;
  c->ex = ex;
  c->pipe.data = c;
  c->creq.data = c;
  uv_pipe_init(loop, &c->pipe, 0);
  w->nconn++;
  st.connects++;
  uv_pipe_connect(&c->creq, &c->pipe, opt.socket, on_connect);
}

/* [0, msgid, method, [params...]] with params written by the caller */
static void begin_request(exch_t *ex, const char *method) {
  ex->msgid = ++ex->w->msgid;
  ex->out.len = 0;
  ex->tail = NULL;
  ex->tail_len = 0;
  mp_array(&ex->out, 4);
  mp_uint(&ex->out, 0);
  mp_uint(&ex->out, ex->msgid);
  mp_cstr(&ex->out, method);
  mp_array(&ex->out, 1);
}

static void call_start_instance(exch_t *ex) {
  ex->kind = CALL_START;
  begin_request(ex, "plugin.StartInstance");
  mp_map(&ex->out, 2);
  mp_cstr(&ex->out, "Name");
  mp_cstr(&ex->out, opt.plugin);
  mp_cstr(&ex->out, "Config");
  mp_cstr(&ex->out, opt.config);
  send_call(ex);
}

static void call_handle_event(exch_t *ex) {
  ex->kind = CALL_HANDLE;
  begin_request(ex, "plugin.HandleEvent");
  mp_map(&ex->out, 2);
  mp_cstr(&ex->out, "InstanceId");
  mp_int(&ex->out, ex->w->instance_id);
  mp_cstr(&ex->out, "EventName");
  mp_cstr(&ex->out, opt.phases[ex->phase]);
  send_call(ex);
}

/* -- canned PDK answers -- */

static kv_t *kv_find(kv_t *kv, int n, const msgpack_object *key) {
  if (key->type != MSGPACK_OBJECT_STR && key->type != MSGPACK_OBJECT_BIN) return NULL;
  for (int i = 0; i < n; i++) {
    size_t kl = key->via.str.size; /* str and bin share the layout */
    if (kl == kv[i].key.len && memcmp(kv[i].key.p, key->via.str.ptr, kl) == 0) return &kv[i];
  }
  return NULL;
}

static kv_t *kv_slot(kv_t *kv, int *n, const msgpack_object *key) {
  if (key->type != MSGPACK_OBJECT_STR && key->type != MSGPACK_OBJECT_BIN) return NULL;
  kv_t *e = kv_find(kv, *n, key);
  if (e == NULL && *n < MAX_KV) {
    e = &kv[(*n)++];
    e->key.len = 0;
    put(&e->key, key->via.str.ptr, key->via.str.size);
  }
  if (e) e->val.len = 0;
  return e;
}

static void build_serialize(exch_t *ex) {
  char id[33];
  snprintf(id, sizeof(id), "%016" PRIx64 "%016" PRIx64, (uint64_t)0x2372e68d29750cd9ULL,
           (uint64_t)ex->seq);
  size_t req_size = 87 + opt.body, resp_size = 167 + opt.body;
  ex->ser.len = 0;
  reserve(&ex->ser, sizeof(SERIALIZE_FMT) + 128);
  int n = snprintf(ex->ser.p, ex->ser.cap, SERIALIZE_FMT, resp_size, opt.body, id, req_size, opt.body);
  ex->ser.len = (size_t)n - 1; /* drop the closing brace */
  for (int i = 0; i < ex->nsv; i++) {
    put8(&ex->ser, ',');
    put8(&ex->ser, '"');
    put(&ex->ser, ex->sv[i].key.p, ex->sv[i].key.len);
    put(&ex->ser, "\":", 2);
    put(&ex->ser, ex->sv[i].val.p, ex->sv[i].val.len);
  }
  put8(&ex->ser, '}');
}

/* plugin.Step {EventId, Data} with Data written by `answer` (or absent). */
static void answer_pdk(exch_t *ex, const msgpack_object *data) {
  const msgpack_object *method = map_get(data, "Method");
  const msgpack_object *args = map_get(data, "Args");
  const msgpack_object *a0 = NULL, *a1 = NULL;
  if (args && args->type == MSGPACK_OBJECT_ARRAY) {
    if (args->via.array.size > 0) a0 = &args->via.array.ptr[0];
    if (args->via.array.size > 1) a1 = &args->via.array.ptr[1];
  }
  ex->kind = CALL_STEP;
  begin_request(ex, "plugin.Step");
  buf_t *o = &ex->out;
  size_t map_at = o->len;
  mp_map(o, 2); /* patched to 1 when Data is nil */
  mp_cstr(o, "EventId");
  mp_int(o, ex->event_id);
  size_t data_key_at = o->len;
  mp_cstr(o, "Data");

  int nil = 0;
  if (method == NULL) {
    nil = 1;
    error_note("PDK call without Method");
  } else if (str_eq(method, "kong.nginx.get_var")) {
    if (a0 && str_eq(a0, "request_body") && opt.body > 0) {
      mp_str_hdr(o, opt.body);
      ex->tail = body_req, ex->tail_len = opt.body;
    } else {
      nil = 1;
    }
  } else if (str_eq(method, "kong.request.get_raw_body")) {
    mp_bin_hdr(o, opt.body);
    ex->tail = body_req, ex->tail_len = opt.body;
  } else if (str_eq(method, "kong.service.response.get_raw_body")) {
    mp_bin_hdr(o, opt.body);
    ex->tail = body_resp, ex->tail_len = opt.body;
  } else if (str_eq(method, "kong.log.set_serialize_value")) {
    kv_t *e = a0 ? kv_slot(ex->sv, &ex->nsv, a0) : NULL;
    if (e && a1) json_object(&e->val, a1);
    else if (e) put(&e->val, "null", 4);
    nil = 1;
  } else if (str_eq(method, "kong.ctx.shared.set")) {
    kv_t *e = a0 ? kv_slot(ex->ctx, &ex->nctx, a0) : NULL;
    if (e && a1) mp_object(&e->val, a1);
    else if (e) mp_nil(&e->val);
    nil = 1;
  } else if (str_eq(method, "kong.ctx.shared.get")) {
    kv_t *e = a0 ? kv_find(ex->ctx, ex->nctx, a0) : NULL;
    if (e && !(e->val.len == 1 && (uint8_t)e->val.p[0] == 0xc0)) put(o, e->val.p, e->val.len);
    else nil = 1;
  } else if (str_eq(method, "kong.log.serialize")) {
    build_serialize(ex);
    mp_str_hdr(o, ex->ser.len);
    ex->tail = ex->ser.p, ex->tail_len = ex->ser.len;
  } else {
    st.unknown_pdk++;
    nil = 1;
  }
  if (nil) {
    o->len = data_key_at; /* no Data key: the PDK call returned nil */
    o->p[map_at] = (char)0x81;
  }
  send_call(ex);
}

static void finish_exchange(exch_t *ex, int ok) {
  ex->active = 0;
  active_exchanges--;
  if (ok) {
    st.exchanges_total++;
    if (measuring) st.exchanges++;
  }
  if (running && st.exchanges_total + (uint64_t)active_exchanges < opt.max_exchanges) {
    if (opt.rate > 0) free_slots[nfree++] = ex;
    else start_exchange(ex);
  } else if (active_exchanges == 0 && (!running || opt.rate <= 0)) {
    uv_stop(loop);
  }
}

static void instance_ready(worker_t *w) {
  w->starting = 0;
  w->have_instance = 1;
  int n = w->nwaiting;
  w->nwaiting = 0;
  for (int i = 0; i < n; i++) call_handle_event(w->waiting[i]);
}

/* Kong starts an instance when a phase needs one; the exchanges of the
 * worker that arrive meanwhile wait for it. */
static void need_instance(exch_t *ex) {
  worker_t *w = ex->w;
  if (w->starting) {
    w->waiting[w->nwaiting++] = ex;
    return;
  }
  w->starting = 1;
  w->have_instance = 0;
  call_start_instance(ex);
}

static void handle_reply(exch_t *ex, const msgpack_object *err, const msgpack_object *res) {
  if (err == NULL && res == NULL) { /* connection lost */
    finish_exchange(ex, 0);
    return;
  }
  if (err->type != MSGPACK_OBJECT_NIL) {
    char text[200] = "?";
    if (err->type == MSGPACK_OBJECT_STR)
      snprintf(text, sizeof(text), "%.*s", (int)err->via.str.size, err->via.str.ptr);
    if (ex->kind == CALL_HANDLE && strcasestr(text, "no plugin instance")) {
      /* Kong resets the instance and re-runs the phase */
      st.instance_restarts++;
      ex->w->have_instance = 0;
      need_instance(ex);
      return;
    }
    error_note("%s: %s", ex->kind == CALL_START ? "StartInstance" : ex->kind == CALL_HANDLE ? "HandleEvent" : "Step", text);
    if (ex->kind == CALL_START) {
      failed_hard = 1;
      running = 0;
      uv_stop(loop);
      return;
    }
    finish_exchange(ex, 0);
    return;
  }
  if (ex->kind == CALL_START) {
    int64_t id;
    if (!as_int(map_get(res, "Id"), &id)) {
      error_note("StartInstance result without Id");
      failed_hard = 1;
      uv_stop(loop);
      return;
    }
    ex->w->instance_id = id;
    if (!ex->active) { /* the initial start, before any exchange */
      instance_ready(ex->w);
      if (++instances_ready == opt.workers) uv_stop(loop);
      return;
    }
    call_handle_event(ex); /* restart after "no plugin instance" */
    instance_ready(ex->w);
    return;
  }
  int64_t eid;
  const msgpack_object *data = map_get(res, "Data");
  if (!as_int(map_get(res, "EventId"), &eid) || data == NULL) {
    error_note("reply without EventId/Data");
    finish_exchange(ex, 0);
    return;
  }
  ex->event_id = eid;
  if (str_eq(data, "ret")) {
    if (++ex->phase < opt.nphases) {
      call_handle_event(ex);
      return;
    }
    finish_exchange(ex, 1);
    return;
  }
  if (data->type != MSGPACK_OBJECT_MAP) {
    error_note("Data is neither \"ret\" nor a PDK call");
    finish_exchange(ex, 0);
    return;
  }
  answer_pdk(ex, data);
}

static void start_exchange(exch_t *ex) {
  ex->active = 1;
  active_exchanges++;
  ex->phase = 0;
  ex->nsv = ex->nctx = 0;
  ex->rpcs = 0;
  ex->seq = ++seq_counter;
  if (!ex->w->have_instance) need_instance(ex);
  else call_handle_event(ex);
}

/* ---- /proc of the server ------------------------------------------------ */

static int proc_cpu_ticks(int pid, uint64_t *ticks) {
  char path[64], line[2048];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(line, 1, sizeof(line) - 1, f);
  fclose(f);
  line[n] = '\0';
  char *p = strrchr(line, ')');
  if (!p) return -1;
  unsigned long long ut = 0, stt = 0;
  /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) != 2) return -1;
  *ticks = ut + stt;
  return 0;
}

static long proc_status_kib(int pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
      v = strtol(line + fl + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static void reset_peak_rss(int pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs("5", f); /* resets VmHWM to the current RSS */
    fclose(f);
  }
}

static long read_count(void) {
  if (!opt.count_file) return -1;
  FILE *f = fopen(opt.count_file, "r");
  if (!f) return 0;
  long v = 0;
  if (fscanf(f, "%ld", &v) != 1) v = 0;
  fclose(f);
  return v;
}

static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* ---- run control -------------------------------------------------------- */

static uv_timer_t t_warm, t_end, t_deadline;
static uint64_t cpu_ticks0, cpu_ticks1;
static double self_cpu0, self_cpu1;

/* --rate: every millisecond, start the exchanges due since the last tick. */
static void on_rate_tick(uv_timer_t *t) {
  uint64_t now = uv_hrtime();
  tokens += opt.rate * (double)(now - last_tick) / 1e9;
  last_tick = now;
  while (running && tokens >= 1 && nfree > 0 &&
         st.exchanges_total + (uint64_t)active_exchanges < opt.max_exchanges) {
    tokens -= 1;
    start_exchange(free_slots[--nfree]);
  }
  if (tokens > (double)opt.concurrency) { /* the server is behind the offered rate */
    if (measuring) late_starts += (uint64_t)(tokens - (double)opt.concurrency);
    tokens = (double)opt.concurrency;
  }
  if (!running) uv_timer_stop(t);
}

static void on_deadline(uv_timer_t *t) {
  fprintf(stderr, "kps-rpc-bench: hard deadline reached, abandoning the run\n");
  exit(3);
}

static void on_warm(uv_timer_t *t) {
  measuring = 1;
  t_measure_start = uv_hrtime();
  if (opt.pid) proc_cpu_ticks(opt.pid, &cpu_ticks0);
  self_cpu0 = cpu_self();
}

static void on_end(uv_timer_t *t) {
  t_measure_end = uv_hrtime();
  if (opt.pid) proc_cpu_ticks(opt.pid, &cpu_ticks1);
  self_cpu1 = cpu_self();
  measuring = 0;
  running = 0;
  if (opt.rate > 0) uv_timer_stop(&t_rate);
  if (active_exchanges == 0) uv_stop(loop);
}

static void split_phases(const char *s) {
  char *copy = strdup(s), *save = NULL;
  for (char *p = strtok_r(copy, ",", &save); p && opt.nphases < MAX_PHASES; p = strtok_r(NULL, ",", &save))
    opt.phases[opt.nphases++] = p;
}

static void usage(void) {
  fprintf(stderr,
          "usage: kps-rpc-bench --socket PATH --plugin NAME --config JSON [--phases response,log]\n"
          "       [--workers 2] [--concurrency 16] [--body BYTES] [--warmup S] [--duration S]\n"
          "       [--max-exchanges N] [--pid SERVER_PID] [--count-file F] [--drain-timeout S]\n"
          "       [--rate EXCHANGES_PER_S] [--label TEXT]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *phases = "response,log";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--socket")) opt.socket = v;
    else if (!strcmp(a, "--plugin")) opt.plugin = v;
    else if (!strcmp(a, "--config")) opt.config = v;
    else if (!strcmp(a, "--phases")) phases = v;
    else if (!strcmp(a, "--workers")) opt.workers = atoi(v);
    else if (!strcmp(a, "--concurrency")) opt.concurrency = atoi(v);
    else if (!strcmp(a, "--body")) opt.body = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--warmup")) opt.warmup = atof(v);
    else if (!strcmp(a, "--duration")) opt.duration = atof(v);
    else if (!strcmp(a, "--drain-timeout")) opt.drain_timeout = atof(v);
    else if (!strcmp(a, "--max-exchanges")) opt.max_exchanges = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--pid")) opt.pid = atoi(v);
    else if (!strcmp(a, "--count-file")) opt.count_file = v;
    else if (!strcmp(a, "--label")) opt.label = v;
    else if (!strcmp(a, "--rate")) opt.rate = atof(v);
    else usage();
  }
  if (!opt.socket || !opt.plugin || !opt.config) usage();
  if (opt.workers < 1 || opt.workers > MAX_WORKERS) die("--workers must be 1..%d", MAX_WORKERS);
  if (opt.concurrency < 1 || opt.concurrency > MAX_CONCURRENCY) die("--concurrency must be 1..%d", MAX_CONCURRENCY);
  if (opt.workers > opt.concurrency) opt.workers = opt.concurrency;
  if (opt.body > (64u << 20)) die("--body is at most 64 MiB");
  if (opt.rate < 0 || opt.rate > 1e7) die("--rate must be 0..1e7");
  if (opt.duration <= 0 || opt.duration > 3600 || opt.warmup < 0 || opt.warmup > 600 ||
      opt.drain_timeout <= 0 || opt.drain_timeout > 600)
    die("--duration 0..3600, --warmup 0..600, --drain-timeout 0..600 seconds");
  split_phases(phases);
  if (opt.nphases == 0) die("no phases");

  static const char pattern[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  body_req = malloc(opt.body + 1);
  body_resp = malloc(opt.body + 1);
  if (!body_req || !body_resp) die("out of memory");
  for (size_t i = 0; i < opt.body; i++) {
    body_req[i] = pattern[i % 36];
    body_resp[i] = pattern[(i + 7) % 36];
  }

  loop = uv_default_loop();
  exchs = calloc((size_t)opt.concurrency, sizeof(exch_t));
  if (!exchs) die("out of memory");
  for (int i = 0; i < opt.workers; i++) workers[i].id = i;
  for (int i = 0; i < opt.concurrency; i++) {
    exchs[i].slot = i;
    exchs[i].w = &workers[i % opt.workers];
  }

  uv_timer_init(loop, &t_deadline);
  uv_timer_start(&t_deadline, on_deadline,
                 (uint64_t)((opt.warmup + opt.duration + opt.drain_timeout + 30) * 1000), 0);
  uv_unref((uv_handle_t *)&t_deadline);

  /* 1. StartInstance once per worker (not counted) */
  for (int i = 0; i < opt.workers; i++) {
    exch_t *ex = &exchs[i]; /* worker i's first slot */
    ex->w->starting = 1;
    call_start_instance(ex);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (failed_hard || instances_ready != opt.workers) {
    fprintf(stderr, "kps-rpc-bench: StartInstance failed: %s\n", st.first_error);
    return 1;
  }

  long rss_before = opt.pid ? proc_status_kib(opt.pid, "VmRSS") : -1;
  if (opt.pid) reset_peak_rss(opt.pid);
  long count0 = read_count();

  /* 2. load */
  uv_timer_init(loop, &t_warm);
  uv_timer_init(loop, &t_end);
  uv_timer_start(&t_warm, on_warm, (uint64_t)(opt.warmup * 1000), 0);
  uv_timer_start(&t_end, on_end, (uint64_t)((opt.warmup + opt.duration) * 1000), 0);
  if (opt.rate > 0) {
    free_slots = calloc((size_t)opt.concurrency, sizeof(*free_slots));
    if (!free_slots) die("out of memory");
    for (int i = opt.concurrency - 1; i >= 0; i--) free_slots[nfree++] = &exchs[i];
    last_tick = uv_hrtime();
    uv_timer_init(loop, &t_rate);
    uv_timer_start(&t_rate, on_rate_tick, 1, 1);
  } else {
    for (int i = 0; i < opt.concurrency && (uint64_t)i < opt.max_exchanges; i++) start_exchange(&exchs[i]);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (t_measure_end == 0) { /* --max-exchanges hit before the end */
    if (!measuring) on_warm(NULL);
    on_end(NULL);
  }
  uv_timer_stop(&t_warm);
  uv_timer_stop(&t_end);

  /* 3. the collector must receive every record */
  long expected = count0 >= 0 ? count0 + (long)st.exchanges_total : -1, got = -1;
  double waited = 0;
  if (opt.count_file) {
    uint64_t t0 = uv_hrtime();
    for (;;) {
      got = read_count();
      waited = (double)(uv_hrtime() - t0) / 1e9;
      if (got >= expected || waited > opt.drain_timeout) break;
      usleep(20000);
    }
    if (got == expected) { /* a little longer: nothing extra arrives */
      usleep(100000);
      got = read_count();
    }
  }
  long hwm = opt.pid ? proc_status_kib(opt.pid, "VmHWM") : -1;
  long rss_after = opt.pid ? proc_status_kib(opt.pid, "VmRSS") : -1;

  double secs = (double)(t_measure_end - t_measure_start) / 1e9;
  double tck = (double)sysconf(_SC_CLK_TCK);
  double cpu = opt.pid ? (double)(cpu_ticks1 - cpu_ticks0) / tck : -1;
  double xps = secs > 0 ? (double)st.exchanges / secs : 0;
  printf("{\"label\":\"%s\",\"rate\":%.0f,\"late_starts\":%" PRIu64 ",\"plugin\":\"%s\",\"phases\":\"%s\",\"body\":%zu,\"concurrency\":%d,"
         "\"workers\":%d,\"seconds\":%.3f,\"exchanges\":%" PRIu64 ",\"exchanges_per_s\":%.1f,"
         "\"rpcs\":%" PRIu64 ",\"rpcs_per_s\":%.1f,\"rpcs_per_exchange\":%.3f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
         "\"server_cpu_s\":%.2f,\"server_cpu_s_per_1000\":%.4f,\"server_cpu_us_per_exchange\":%.1f,"
         "\"server_cpu_util\":%.3f,\"driver_cpu_util\":%.3f,"
         "\"server_rss_before_kib\":%ld,\"server_hwm_kib\":%ld,\"server_rss_after_kib\":%ld,"
         "\"connects\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"unknown_pdk\":%" PRIu64
         ",\"instance_restarts\":%" PRIu64 ",\"exchanges_total\":%" PRIu64 ","
         "\"collector_expected\":%ld,\"collector_got\":%ld,\"collector_ok\":%s,\"drain_s\":%.2f,"
         "\"first_error\":\"",
         opt.label, opt.rate, late_starts, opt.plugin, phases, opt.body, opt.concurrency, opt.workers, secs, st.exchanges, xps,
         st.rpcs, secs > 0 ? (double)st.rpcs / secs : 0,
         st.exchanges ? (double)st.rpcs / (double)st.exchanges : 0, percentile(0.50), percentile(0.99),
         percentile(0.999), (double)st.lat_max_ns / 1000.0, cpu,
         st.exchanges && cpu >= 0 ? cpu * 1000.0 / (double)st.exchanges : -1,
         st.exchanges && cpu >= 0 ? cpu * 1e6 / (double)st.exchanges : -1, secs > 0 ? cpu / secs : 0,
         secs > 0 ? (self_cpu1 - self_cpu0) / secs : 0, rss_before, hwm, rss_after, st.connects,
         st.errors, st.unknown_pdk, st.instance_restarts, st.exchanges_total, expected, got,
         (!opt.count_file || got == expected) ? "true" : "false", waited);
  for (const char *p = st.first_error; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    putchar((unsigned char)*p < 0x20 ? ' ' : *p);
  }
  printf("\"}\n");
  fflush(stdout);
  return (st.errors || (opt.count_file && got != expected)) ? 1 : 0;
}
