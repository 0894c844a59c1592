/* fuzz_rpc.c: libFuzzer target for the RPC stream decoder and the method
 * dispatch, through the real code path: each input is played as one or
 * more Kong connections (socketpairs adopted with kps__conn_adopt) on the
 * server's own libuv loop, written in chunks whose sizes come from the
 * input, and every reply is checked on the way back.
 *
 * Input: a 4-byte header, then a MessagePack byte stream.
 *   byte 0  bits 0-1  connections: 1 + (bits % 3)
 *           bit 2     reap every event before disconnecting (as the tick would)
 *           bit 3     expire every idle instance before disconnecting
 *           bit 4     small caps: max_events 2, max_instances 2
 *           bit 5     max_message_size = 64 + 16 * byte 3 (else the default)
 *           bits 6-7  collector: 0 up, 1 refusing, 2 unresolvable, 3 closes at once
 *   bytes 1-2         seed for chunk sizes and the connection of each object
 *   byte 3            see bit 5
 * The stream is cut into objects with the frame scanner; each object goes
 * to one connection (chosen from the seed) in random-sized chunks; the
 * rest (an incomplete or refused object) goes last, raw.
 *
 * Ids: instance and event ids depend on the start time, so the harness
 * plays Kong's part: in a request, an InstanceId/Id/EventId (or the bare
 * CloseInstance/InstanceStatus id) below 16 names the n-th instance or
 * event this input has seen in replies, and "@k<hex>" inside a Step's Data
 * string is replaced by the n-th tcp-body-log join key.  Recorded Kong
 * streams (ids 0, 1, 2, ...) therefore replay deep into the plugins.
 *
 * Checks (abort on failure): the first message on a connection is
 * [2, "serverPid", pid], every other one is [1, msgid, error, result] with
 * error nil or a string, result nil when there is an error, and msgids in
 * the order of the requests sent on that connection (no reply twice, none
 * unasked).  After each input everything is torn down (connections,
 * events, instances, exchange contexts, sinks) and nothing may remain:
 * no handle, connection, event, instance, context or sink, so a leak
 * belongs to the input that caused it.
 *
 * The harness never leaves loopback and never reads arbitrary files: it
 * interposes getaddrinfo (every collector name resolves to an in-process
 * collector on 127.0.0.1), dlopen (SetPluginDir loads nothing) and fopen
 * (TLS file fields may only name small regular files). */
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <uv.h>

#include "conn.h"
#include "event.h"
#include "exchange.h"
#include "frame.h"
#include "instance.h"
#include "log.h"
#include "plugins.h"
#include "server.h"
#include "sink.h"
#include "value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_CONNS 3
#define MAX_IDS 16
#define MAX_REQS 4096

/* stderr as it was before libFuzzer's -close_fd_mask=2 closed it (the
 * server's log lines then go nowhere, our findings still show). */
static int report_fd = 2;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dprintf(report_fd, "fuzz_rpc: ");
  vdprintf(report_fd, fmt, ap);
  dprintf(report_fd, "\n");
  va_end(ap);
  abort();
}

/* ---- interposed libc calls ------------------------------------------- */

static int in_input;          /* inside LLVMFuzzerTestOneInput */
static int trace;             /* KPS_FUZZ_TRACE=1: print every message */
static int collector_mode;    /* bits 6-7 of the header */
static int collector_port;    /* the in-process collector */
static int refusing_port;     /* bound, never listening: connection refused */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
  static gai_fn real;
  char port[16];
  struct addrinfo h;
  if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
  if (!in_input) return real(node, service, hints, res);
  if (collector_mode == 2) return EAI_NONAME;
  snprintf(port, sizeof(port), "%d", collector_mode == 1 ? refusing_port : collector_port);
  memset(&h, 0, sizeof(h));
  h.ai_family = AF_INET;
  h.ai_socktype = SOCK_STREAM;
  h.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  return real("127.0.0.1", port, &h, res);
}

typedef void *(*dlopen_fn)(const char *, int);

void *dlopen(const char *file, int mode) {
  static dlopen_fn real;
  if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "dlopen");
  if (in_input && file != NULL) return real("/nonexistent/kps-fuzz-loads-no-plugins.so", mode);
  return real(file, mode);
}

/* Read-only opens of anything but a small regular file (devices, FIFOs,
 * /proc, /sys, big files) fail: a TLS file field must not block or take
 * the fuzzer's memory. */
static int open_allowed(const char *path, const char *mode) {
  struct stat st;
  struct statfs fs;
  if (!in_input || path == NULL || mode == NULL || strchr(mode, 'r') == NULL) return 1;
  if (stat(path, &st) != 0) return 1; /* fails on its own */
  if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (1 << 20)) return 0;
  if (statfs(path, &fs) == 0 && (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC))
    return 0;
  return 1;
}

typedef FILE *(*fopen_fn)(const char *, const char *);

FILE *fopen(const char *path, const char *mode) {
  static fopen_fn real;
  if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "fopen");
  if (!open_allowed(path, mode)) {
    errno = EACCES;
    return NULL;
  }
  return real(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
  static fopen_fn real;
  if (real == NULL) *(void **)&real = dlsym(RTLD_NEXT, "fopen64");
  if (!open_allowed(path, mode)) {
    errno = EACCES;
    return NULL;
  }
  return real(path, mode);
}

/* ---- the in-process collector ---------------------------------------- */

static uv_loop_t loop;
static uv_tcp_t listener;

typedef struct peer_s {
  uv_tcp_t tcp;
  char buf[16384];
  struct peer_s *next;
} peer_t;

static peer_t *peers;

static void peer_closed(uv_handle_t *h) {
  peer_t *p = (peer_t *)h;
  peer_t **pp = &peers;
  while (*pp != p) pp = &(*pp)->next;
  *pp = p->next;
  free(p);
}

static void peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  peer_t *p = (peer_t *)h;
  *b = uv_buf_init(p->buf, sizeof(p->buf));
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  if (n < 0 && !uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, peer_closed);
}

static void on_collector_conn(uv_stream_t *server, int status) {
  if (status < 0) return;
  peer_t *p = calloc(1, sizeof(*p));
  if (p == NULL) die("out of memory");
  uv_tcp_init(&loop, &p->tcp);
  p->next = peers;
  peers = p;
  if (uv_accept(server, (uv_stream_t *)&p->tcp) != 0 || collector_mode == 3) {
    uv_close((uv_handle_t *)&p->tcp, peer_closed);
    return;
  }
  uv_read_start((uv_stream_t *)&p->tcp, peer_alloc, peer_read);
}

static int bound_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof(sa);
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) die("getsockname: %s", strerror(errno));
  return ntohs(sa.sin_port);
}

static void collector_init(void) {
  struct sockaddr_in sa;
  uv_os_fd_t fd;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  if (uv_tcp_init(&loop, &listener) != 0 || uv_tcp_bind(&listener, (struct sockaddr *)&sa, 0) != 0 ||
      uv_listen((uv_stream_t *)&listener, 128, on_collector_conn) != 0 ||
      uv_fileno((uv_handle_t *)&listener, &fd) != 0)
    die("cannot start the in-process collector");
  uv_unref((uv_handle_t *)&listener); /* never keeps the loop alive */
  collector_port = bound_port(fd);
  int r = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r < 0 || bind(r, (struct sockaddr *)&sa, sizeof(sa)) != 0) die("bind: %s", strerror(errno));
  refusing_port = bound_port(r); /* r stays open, never listens */
}

/* ---- Kong's side of the connections ---------------------------------- */

typedef struct client_s {
  int fd;                 /* -1 once closed */
  msgpack_unpacker up;
  int nmsgs;              /* messages received */
  int64_t reqs[MAX_REQS]; /* msgids of the requests sent, in order */
  int nreqs, next_reply;
} client_t;

static client_t clients[MAX_CONNS];
static int nclients;
static int64_t inst_ids[MAX_IDS], ev_ids[MAX_IDS];
static int ninst, nev;
static char keys[MAX_IDS][TBL_KEY_MAX];
static int nkeys;

static int is_str(const msgpack_object *o, const char *s) {
  return o != NULL && (o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN) &&
         o->via.str.size == strlen(s) && memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static void remember(int64_t *ids, int *n, int64_t id) {
  for (int i = 0; i < *n; i++)
    if (ids[i] == id) return;
  if (*n < MAX_IDS) ids[(*n)++] = id;
}

/* One message from the server on client c. */
static void check_message(client_t *c, const msgpack_object *m) {
  int64_t v;
  if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size < 1) die("reply is not an array");
  const msgpack_object *a = m->via.array.ptr;
  if (trace) {
    char buf[1024];
    msgpack_object_print_buffer(buf, sizeof(buf), *m);
    dprintf(report_fd, "fuzz_rpc: conn %d <- %s\n", (int)(c - clients), buf);
  }
  if (c->nmsgs++ == 0) { /* R3 */
    if (m->via.array.size != 3 || kps__value_int(&a[0], &v) != 0 || v != 2 || !is_str(&a[1], "serverPid") ||
        kps__value_int(&a[2], &v) != 0 || v != (int64_t)getpid())
      die("first message is not [2, \"serverPid\", pid]");
    return;
  }
  if (m->via.array.size != 4 || kps__value_int(&a[0], &v) != 0 || v != 1) die("reply is not [1, msgid, error, result]");
  if (kps__value_int(&a[1], &v) != 0) die("reply msgid is not an integer");
  int i = c->next_reply;
  while (i < c->nreqs && c->reqs[i] != v) i++;
  if (i == c->nreqs) die("reply to msgid %lld, which is not pending on this connection", (long long)v);
  c->next_reply = i + 1;
  if (a[2].type != MSGPACK_OBJECT_NIL && a[2].type != MSGPACK_OBJECT_STR)
    die("reply error is neither nil nor a string (R14, R24)");
  if (a[2].type == MSGPACK_OBJECT_STR) {
    if (a[3].type != MSGPACK_OBJECT_NIL) die("error reply with a result");
    return;
  }
  /* Ids and join keys handed out, for the requests that follow. */
  const msgpack_object *res = &a[3], *id;
  if ((id = kps__value_map_get(res, "Id")) != NULL && kps__value_map_get(res, "StartTime") != NULL && kps__value_int(id, &v) == 0)
    remember(inst_ids, &ninst, v);
  if ((id = kps__value_map_get(res, "EventId")) != NULL && kps__value_int(id, &v) == 0) remember(ev_ids, &nev, v);
  const msgpack_object *d = kps__value_map_get(res, "Data");
  const msgpack_object *args = kps__value_map_get(d, "Args");
  if (is_str(kps__value_map_get(d, "Method"), "kong.log.set_serialize_value") && args != NULL &&
      args->type == MSGPACK_OBJECT_ARRAY && args->via.array.size == 2 &&
      args->via.array.ptr[1].type == MSGPACK_OBJECT_STR &&
      args->via.array.ptr[1].via.str.size < TBL_KEY_MAX && nkeys < MAX_IDS) {
    memcpy(keys[nkeys], args->via.array.ptr[1].via.str.ptr, args->via.array.ptr[1].via.str.size);
    keys[nkeys][args->via.array.ptr[1].via.str.size] = '\0';
    nkeys++;
  }
}

/* Reads what the server sent; returns the bytes read (0: nothing new). */
static size_t drain_replies(void) {
  size_t total = 0;
  for (int k = 0; k < nclients; k++) {
    client_t *c = &clients[k];
    if (c->fd < 0) continue;
    for (int rounds = 0; rounds < 64; rounds++) {
      if (!msgpack_unpacker_reserve_buffer(&c->up, 65536)) die("out of memory");
      ssize_t n = recv(c->fd, msgpack_unpacker_buffer(&c->up), msgpack_unpacker_buffer_capacity(&c->up),
                       MSG_DONTWAIT);
      if (n <= 0) break;
      total += (size_t)n;
      msgpack_unpacker_buffer_consumed(&c->up, (size_t)n);
      msgpack_unpacked u;
      msgpack_unpacked_init(&u);
      msgpack_unpack_return r;
      while ((r = msgpack_unpacker_next(&c->up, &u)) == MSGPACK_UNPACK_SUCCESS) check_message(c, &u.data);
      msgpack_unpacked_destroy(&u);
      if (r != MSGPACK_UNPACK_CONTINUE) die("server sent undecodable MessagePack");
    }
  }
  return total;
}

/* Bytes written to c that the server has not read yet. */
static int unread(const client_t *c) {
  int q = 0;
  if (c->fd < 0 || ioctl(c->fd, SIOCOUTQ, &q) != 0) return 0;
  return q;
}

/* Runs the loop until the server has read what was sent to c and nothing
 * more comes back (bounded). */
static void pump(const client_t *c) {
  for (int i = 0, idle = 0; i < 200 && idle < 3; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    size_t got = drain_replies();
    idle = (got == 0 && (c == NULL || unread(c) == 0)) ? idle + 1 : 0;
  }
}

static void send_bytes(client_t *c, const uint8_t *p, size_t n, uint32_t *rng) {
  while (n > 0 && c->fd >= 0) {
    *rng = *rng * 1103515245u + 12345u;
    uint32_t r = *rng >> 8;
    size_t chunk = (r & 1) ? n : 1 + (r >> 1) % n;
    ssize_t w = -1;
    for (int tries = 0; tries < 100; tries++) {
      w = send(c->fd, p, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w >= 0 || errno != EAGAIN) break;
      pump(c); /* socket buffer full: let the server read */
    }
    if (w <= 0) return; /* the server closed the connection (or never reads) */
    p += w;
    n -= (size_t)w;
    pump(c);
  }
}

/* msgid of a refused message, read the way conn.c peek_msgid does. */
static void note_peeked_msgid(client_t *c, const uint8_t *p, size_t n) {
  if (n < 3 || p[0] != 0x94 || p[1] != 0x00 || c->nreqs >= MAX_REQS) return;
  if (p[2] <= 0x7f) {
    c->reqs[c->nreqs++] = p[2];
    return;
  }
  unsigned w = p[2] == 0xcc ? 1 : p[2] == 0xcd ? 2 : p[2] == 0xce ? 4 : p[2] == 0xcf ? 8 : 0;
  if (w == 0 || n < 3 + w) return;
  uint64_t v = 0;
  for (unsigned i = 0; i < w; i++) v = (v << 8) | p[3 + i];
  if (v <= (uint64_t)INT64_MAX) c->reqs[c->nreqs++] = (int64_t)v;
}

static int map_id(msgpack_object *o, const int64_t *ids, int n) {
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 >= MAX_IDS) return 0;
  if ((int)o->via.u64 >= n) return 0;
  o->via.u64 = (uint64_t)ids[o->via.u64];
  return 1;
}

/* "@k<hex>" in a Data string -> the n-th join key. */
static int map_keys(msgpack_object *o, msgpack_zone *z) {
  if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN) return 0;
  const char *s = o->via.str.ptr;
  uint32_t n = o->via.str.size, hits = 0;
  for (uint32_t i = 0; i + 2 < n; i++)
    if (s[i] == '@' && s[i + 1] == 'k' && strchr("0123456789abcdef", s[i + 2]) && s[i + 2]) hits++;
  if (hits == 0 || nkeys == 0) return 0;
  char *out = msgpack_zone_malloc(z, (size_t)n + (size_t)hits * TBL_KEY_MAX + 1);
  if (out == NULL) return 0;
  uint32_t len = 0;
  for (uint32_t i = 0; i < n;) {
    if (i + 2 < n && s[i] == '@' && s[i + 1] == 'k' && s[i + 2] && strchr("0123456789abcdef", s[i + 2])) {
      int idx = (int)(strchr("0123456789abcdef", s[i + 2]) - "0123456789abcdef") % nkeys;
      size_t kl = strlen(keys[idx]);
      memcpy(out + len, keys[idx], kl);
      len += (uint32_t)kl;
      i += 3;
    } else {
      out[len++] = s[i++];
    }
  }
  o->via.str.ptr = out;
  o->via.str.size = len;
  return 1;
}

/* Plays Kong's part on a decoded request: ids and keys (see the top).
 * Returns 1 when the object changed. */
static int translate(msgpack_object *msg, msgpack_zone *z) {
  msgpack_object *a = msg->via.array.ptr;
  msgpack_object *param = &a[3];
  int changed = 0;
  if (param->type == MSGPACK_OBJECT_ARRAY) {
    if (param->via.array.size == 0) return 0;
    param = &param->via.array.ptr[0];
  }
  if (param->type == MSGPACK_OBJECT_MAP) {
    for (uint32_t i = 0; i < param->via.map.size; i++) {
      msgpack_object *k = &param->via.map.ptr[i].key, *v = &param->via.map.ptr[i].val;
      if (is_str(k, "InstanceId") || is_str(k, "Id")) changed |= map_id(v, inst_ids, ninst);
      else if (is_str(k, "EventId")) changed |= map_id(v, ev_ids, nev);
      else if (is_str(k, "Data")) changed |= map_keys(v, z);
    }
  } else if (is_str(&a[2], "plugin.CloseInstance") || is_str(&a[2], "plugin.InstanceStatus")) {
    changed |= map_id(param, inst_ids, ninst);
  }
  return changed;
}

/* Sends one whole object (as decoded by msgpack-c, possibly translated). */
static void send_object(client_t *c, const uint8_t *p, size_t n, uint32_t *rng) {
  msgpack_zone z;
  msgpack_object obj;
  size_t off = 0;
  int64_t type, msgid;
  msgpack_zone_init(&z, 4096);
  int ur = msgpack_unpack((const char *)p, n, &off, &z, &obj);
  if (trace) {
    char buf[1024] = "";
    if (ur == MSGPACK_UNPACK_SUCCESS) msgpack_object_print_buffer(buf, sizeof(buf), obj);
    else snprintf(buf, sizeof(buf), "(%zu bytes msgpack-c cannot decode)", n);
    dprintf(report_fd, "fuzz_rpc: conn %d -> %s\n", (int)(c - clients), buf);
  }
  if (ur != MSGPACK_UNPACK_SUCCESS || off != n) {
    note_peeked_msgid(c, p, n); /* the server refuses it too */
    send_bytes(c, p, n, rng);
    msgpack_zone_destroy(&z);
    return;
  }
  if (obj.type == MSGPACK_OBJECT_ARRAY && obj.via.array.size == 4 &&
      kps__value_int(&obj.via.array.ptr[0], &type) == 0 && type == 0 &&
      kps__value_int(&obj.via.array.ptr[1], &msgid) == 0 && msgid >= 0) {
    if (c->nreqs < MAX_REQS) c->reqs[c->nreqs++] = msgid;
    if (translate(&obj, &z)) {
      msgpack_sbuffer sb;
      msgpack_packer pk;
      msgpack_sbuffer_init(&sb);
      msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
      msgpack_pack_object(&pk, obj);
      send_bytes(c, (const uint8_t *)sb.data, sb.size, rng);
      msgpack_sbuffer_destroy(&sb);
      msgpack_zone_destroy(&z);
      return;
    }
  } else {
    note_peeked_msgid(c, p, n); /* an oversized one is answered by its peeked msgid */
  }
  send_bytes(c, p, n, rng);
  msgpack_zone_destroy(&z);
}

/* ---- teardown and the no-leftovers checks ------------------------------ */

static int flushed;
static void on_flushed(void *ud) { flushed = 1; }

static void count_handle(uv_handle_t *h, void *ud) {
  if (h == (uv_handle_t *)&listener || uv_is_closing(h)) return;
  dprintf(report_fd, "fuzz_rpc: handle left open: %s\n", uv_handle_type_name(uv_handle_get_type(h)));
  (*(int *)ud)++;
}

static void count_sink(kps_sink_t *s, void *ud) {
  dprintf(report_fd, "fuzz_rpc: sink left open: %s\n", kps_sink_name(s));
  (*(int *)ud)++;
}

static void teardown(void) {
  /* Kong goes away: each connection closes in turn (events owed a reply
   * on it end), then what is left is closed as a shutdown does. */
  for (int k = 0; k < nclients; k++) {
    if (clients[k].fd >= 0) {
      close(clients[k].fd);
      clients[k].fd = -1;
    }
    pump(NULL);
  }
  kps__conn_close_all();
  kps__event_abort_all();
  kps__instance_close_all();
  kps__plugins_shutdown(); /* tcp-body-log: the exchange contexts */
  flushed = 0;
  kps_sink_flush_all(&loop, 0, on_flushed, NULL);
  for (peer_t *p = peers; p != NULL; p = p->next)
    if (!uv_is_closing((uv_handle_t *)&p->tcp)) uv_close((uv_handle_t *)&p->tcp, peer_closed);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    if (!uv_run(&loop, UV_RUN_NOWAIT) && flushed && peers == NULL) break;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 5) break; /* reported below */
    usleep(100);
  }
  for (int k = 0; k < nclients; k++) msgpack_unpacker_destroy(&clients[k].up);

  int left = 0;
  uv_walk(&loop, count_handle, &left);
  kps_sink_foreach(count_sink, &left);
  tbl_exchange_stats_t xs;
  tbl_exchange_get_stats(&xs);
  if (!flushed) die("sink flush never finished");
  if (left || kps__conn_count() || kps__event_count() || kps__instance_count() || xs.live ||
      kps__counters.connections_active)
    die("left after teardown: %d handles/sinks, %zu connections, %zu events, %zu instances, "
        "%zu contexts, %llu active",
        left, kps__conn_count(), kps__event_count(), kps__instance_count(), xs.live,
        (unsigned long long)kps__counters.connections_active);
}

/* ---- libFuzzer entry points ------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *lvl = getenv("KPS_FUZZ_LOG_LEVEL"); /* default debug: every log call runs */
  signal(SIGPIPE, SIG_IGN);
  report_fd = dup(2);
  trace = getenv("KPS_FUZZ_TRACE") != NULL;
  if (uv_loop_init(&loop) != 0) die("uv_loop_init");
  kps__server_init(&loop);
  kps__plugins_init();
  kps__log_set_level(lvl ? (kps_log_level_t)kps__log_parse_level(lvl) : KPS_LOG_DEBUG);
  collector_init();
  return 0;
}

static const kps_limits_t default_limits = {
    KPS_DEFAULT_MAX_MESSAGE_SIZE, KPS_DEFAULT_EVENT_TIMEOUT_MS, KPS_DEFAULT_INSTANCE_IDLE_MS,
    KPS_DEFAULT_SHUTDOWN_TIMEOUT_MS, KPS_DEFAULT_MAX_EVENTS, KPS_DEFAULT_MAX_INSTANCES,
    KPS_DEFAULT_MAX_CONNECTIONS,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  uint8_t flags = data[0];
  uint32_t rng = (uint32_t)data[1] | ((uint32_t)data[2] << 8) | 0x10000u;
  const uint8_t *stream = data + 4;
  size_t len = size - 4;

  kps__limits = default_limits;
  if (flags & 0x10) kps__limits.max_events = 2, kps__limits.max_instances = 2;
  if (flags & 0x20) kps__limits.max_message_size = 64 + 16 * (size_t)data[3];
  collector_mode = flags >> 6;
  ninst = nev = nkeys = 0;
  in_input = 1;

  nclients = 1 + (flags & 3) % 3;
  for (int k = 0; k < nclients; k++) {
    int sv[2];
    client_t *c = &clients[k];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair: %s", strerror(errno));
    c->fd = sv[0];
    c->nmsgs = c->nreqs = c->next_reply = 0;
    msgpack_unpacker_init(&c->up, 65536);
    if (kps__conn_adopt(&loop, sv[1]) != 0) die("kps__conn_adopt failed");
  }
  pump(NULL); /* serverPid */

  /* Whole objects, each to one connection; then the rest, raw. */
  size_t off = 0;
  while (off < len) {
    kps_frame_t f;
    kps__frame_reset(&f);
    if (kps__frame_scan(&f, stream + off, len - off, SIZE_MAX) != KPS_FRAME_DONE) break;
    rng = rng * 1103515245u + 12345u;
    client_t *c = &clients[(rng >> 16) % (uint32_t)nclients];
    send_object(c, stream + off, f.pos, &rng);
    off += f.pos;
  }
  if (off < len) {
    client_t *c = &clients[(rng >> 16) % (uint32_t)nclients];
    note_peeked_msgid(c, stream + off, len - off);
    send_bytes(c, stream + off, len - off, &rng);
  }
  pump(NULL);

  /* The housekeeping tick, as if its timeouts had passed. */
  uv_update_time(&loop);
  if (flags & 0x04) kps__event_reap(kps__now_ms() + kps__limits.event_timeout_ms);
  if (flags & 0x08) kps__instance_expire(kps__now_ms() + kps__limits.instance_idle_ms);
  pump(NULL);

  teardown();
  in_input = 0;
  return 0;
}
