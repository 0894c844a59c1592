/* fake_kong.c: see fake_kong.h. */
#include "fake_kong.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

#ifndef KPS_SERVER_BIN
#error "KPS_SERVER_BIN must name the server binary"
#endif

/* Fills a sockaddr_un; aborts when the path does not fit. */
static void set_path(struct sockaddr_un *sa, const char *path) {
  memset(sa, 0, sizeof(*sa));
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sa->sun_path)) FAIL("socket path too long: %s", path);
  memcpy(sa->sun_path, path, strlen(path) + 1);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- server process ---------------------------------------------------- */

/* KPS_SERVER_WRAPPER (e.g. "valgrind --error-exitcode=99 --leak-check=full"):
 * words put before the server command, for memcheck runs of these tests.
 * Returns the number of words stored in argv. */
static int wrapper_words(const char **argv, int max, char *buf, size_t buflen) {
  const char *w = getenv("KPS_SERVER_WRAPPER");
  int n = 0;
  if (w == NULL || *w == '\0') return 0;
  snprintf(buf, buflen, "%s", w);
  for (char *tok = strtok(buf, " \t"); tok != NULL && n < max; tok = strtok(NULL, " \t")) argv[n++] = tok;
  return n;
}

/* The wrapper's --error-exitcode=N, or -1. */
static int wrapper_error_exit(void) {
  const char *w = getenv("KPS_SERVER_WRAPPER");
  const char *p = w ? strstr(w, "--error-exitcode=") : NULL;
  return p ? atoi(p + strlen("--error-exitcode=")) : -1;
}

/* A wrapped server (valgrind) starts and stops far slower. */
static int64_t slow_factor(void) {
  const char *w = getenv("KPS_SERVER_WRAPPER");
  return (w != NULL && *w != '\0') ? 6 : 1;
}

void fk_server_start(fk_server_t *s, const char *plugin, const char *const *args) {
  const char *argv[64];
  static char wrapbuf[1024];
  int n = 0;
  snprintf(s->prefix, sizeof(s->prefix), "/tmp/kps-test-XXXXXX");
  if (mkdtemp(s->prefix) == NULL) FAIL("mkdtemp: %s", strerror(errno));
  snprintf(s->socket, sizeof(s->socket), "%s/%s.socket", s->prefix,
           plugin ? plugin : "kong-c-pluginserver");
  snprintf(s->log, sizeof(s->log), "%s/server.log", s->prefix);
  n = wrapper_words(argv, 24, wrapbuf, sizeof(wrapbuf));
  argv[n++] = KPS_SERVER_BIN;
  if (plugin) {
    argv[n++] = "--plugin";
    argv[n++] = plugin;
  }
  argv[n++] = "-kong-prefix";
  argv[n++] = s->prefix;
  for (int i = 0; args && args[i] && n < 62; i++) argv[n++] = args[i];
  argv[n] = NULL;

  s->pid = fork();
  if (s->pid < 0) FAIL("fork: %s", strerror(errno));
  if (s->pid == 0) {
    int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 2);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  int64_t deadline = now_ms() + 10000 * slow_factor();
  while (now_ms() < deadline) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    set_path(&sa, s->socket);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
      close(fd);
      return;
    }
    close(fd);
    int st;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
      char *log = fk_server_log(s);
      FAIL("server exited during startup: %s", log);
    }
    usleep(10000);
  }
  FAIL("server did not listen on %s within %lld s", s->socket, (long long)(10 * slow_factor()));
}

int fk_server_alive(const fk_server_t *s) {
  int st;
  return waitpid(s->pid, &st, WNOHANG) == 0;
}

/* What no server run may leave in its log: sanitizer and memcheck reports,
 * and the loop closing with handles still open (main.c). */
static void check_server_log(const fk_server_t *s, int status) {
  static const char *const bad[] = {"handles still open", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                    "runtime error:", "Invalid read", "Invalid write", "definitely lost in",
                                    "uninitialised value", NULL};
  char *log = fk_server_log(s);
  for (int i = 0; bad[i] != NULL; i++)
    if (strstr(log, bad[i]) != NULL) {
      fprintf(stderr, "---- %s ----\n%s\n----\n", s->log, log);
      FAIL("server log contains \"%s\" (exit status %d)", bad[i], status);
    }
  int wexit = wrapper_error_exit();
  if (wexit > 0 && status == wexit) {
    fprintf(stderr, "---- %s ----\n%s\n----\n", s->log, log);
    FAIL("the server wrapper (%s) reported errors: exit status %d", getenv("KPS_SERVER_WRAPPER"), status);
  }
  free(log);
}

int fk_server_stop(fk_server_t *s) {
  int st = 0;
  kill(s->pid, SIGTERM);
  int64_t deadline = now_ms() + 10000 * slow_factor();
  while (now_ms() < deadline) {
    pid_t r = waitpid(s->pid, &st, WNOHANG);
    if (r == s->pid) {
      int status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      check_server_log(s, status);
      return status;
    }
    usleep(10000);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, &st, 0);
  FAIL("server did not stop within %lld s of SIGTERM", (long long)(10 * slow_factor()));
  return -1;
}

char *fk_server_log(const fk_server_t *s) {
  FILE *f = fopen(s->log, "r");
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (f != NULL) {
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
      len += n;
      if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
  }
  buf[len] = '\0';
  return buf;
}

long fk_server_rss_kib(const fk_server_t *s) {
  char path[64], line[256];
  long kib = -1;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)s->pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* ---- connections ------------------------------------------------------- */

fk_conn_t *fk_connect(const char *path) {
  fk_conn_t *c = calloc(1, sizeof(*c));
  struct sockaddr_un sa;
  set_path(&sa, path);
  c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    FAIL("connect %s: %s", path, strerror(errno));
  msgpack_unpacker_init(&c->up, 64 * 1024);
  return c;
}

void fk_conn_close(fk_conn_t *c) {
  if (c == NULL) return;
  close(c->fd);
  msgpack_unpacker_destroy(&c->up);
  free(c);
}

void fk_send(fk_conn_t *c, const void *buf, size_t len, fk_send_mode_t mode, unsigned *seed) {
  const char *p = buf;
  while (len > 0) {
    size_t chunk = len;
    if (mode == FK_SEND_BYTEWISE) chunk = 1;
    else if (mode == FK_SEND_RANDOM_SPLIT) chunk = 1 + (size_t)rand_r(seed) % (len < 300 ? len : 300);
    ssize_t n = write(c->fd, p, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) FAIL("write: %s", strerror(errno));
    p += n;
    len -= (size_t)n;
    if (mode != FK_SEND_WHOLE) usleep(50); /* let the server see separate reads */
  }
}

static int read_more(fk_conn_t *c, int timeout_ms) {
  struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
  int r = poll(&pfd, 1, timeout_ms);
  if (r <= 0) return -1;
  msgpack_unpacker_reserve_buffer(&c->up, 64 * 1024);
  ssize_t n = read(c->fd, msgpack_unpacker_buffer(&c->up), msgpack_unpacker_buffer_capacity(&c->up));
  if (n <= 0) return -1;
  msgpack_unpacker_buffer_consumed(&c->up, (size_t)n);
  return 0;
}

int fk_recv(fk_conn_t *c, int64_t msgid, fk_reply_t *out, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  msgpack_unpacked_init(&out->msg);
  out->error_str[0] = '\0';
  for (;;) {
    msgpack_unpack_return r = msgpack_unpacker_next(&c->up, &out->msg);
    if (r == MSGPACK_UNPACK_SUCCESS) {
      msgpack_object o = out->msg.data;
      if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 3) FAIL("reply is not an RPC array");
      if (fk_int(&o.via.array.ptr[0]) == 2) { /* notification */
        c->notifications++;
        if (fk_str_eq(&o.via.array.ptr[1], "serverPid")) c->server_pid = fk_int(&o.via.array.ptr[2]);
        continue;
      }
      if (o.via.array.size != 4) FAIL("response has %u elements, expected 4", o.via.array.size);
      if (fk_int(&o.via.array.ptr[0]) != 1) FAIL("expected a type-1 response");
      if (fk_int(&o.via.array.ptr[1]) != msgid)
        FAIL("unexpected msgid %lld, expected %lld", (long long)fk_int(&o.via.array.ptr[1]),
             (long long)msgid);
      out->error = &out->msg.data.via.array.ptr[2];
      out->result = &out->msg.data.via.array.ptr[3];
      if (out->error->type == MSGPACK_OBJECT_STR) {
        size_t n = out->error->via.str.size < sizeof(out->error_str) - 1 ? out->error->via.str.size
                                                                        : sizeof(out->error_str) - 1;
        memcpy(out->error_str, out->error->via.str.ptr, n);
        out->error_str[n] = '\0';
      } else if (out->error->type != MSGPACK_OBJECT_NIL) {
        FAIL("error is neither nil nor a string (type %d)", out->error->type);
      }
      return 0;
    }
    if (r == MSGPACK_UNPACK_PARSE_ERROR) FAIL("server sent malformed MessagePack");
    int left = (int)(deadline - now_ms());
    if (left <= 0 || read_more(c, left) != 0) {
      msgpack_unpacked_destroy(&out->msg);
      return -1;
    }
  }
}

int fk_wait_closed(fk_conn_t *c, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  char buf[4096];
  while (now_ms() < deadline) {
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)(deadline - now_ms())) <= 0) return 0;
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n <= 0) return 1;
  }
  return 0;
}

void fk_reply_free(fk_reply_t *r) { msgpack_unpacked_destroy(&r->msg); }

/* ---- packing ----------------------------------------------------------- */

void fk_pack_str(msgpack_packer *pk, const char *s, size_t n) {
  unsigned char h[5];
  /* lua-MessagePack string_compat: fixstr, then str16, then str32. */
  if (n < 32) {
    h[0] = (unsigned char)(0xa0 | n);
    pk->callback(pk->data, (const char *)h, 1);
  } else if (n < 65536) {
    h[0] = 0xda, h[1] = (unsigned char)(n >> 8), h[2] = (unsigned char)n;
    pk->callback(pk->data, (const char *)h, 3);
  } else {
    h[0] = 0xdb, h[1] = (unsigned char)(n >> 24), h[2] = (unsigned char)(n >> 16);
    h[3] = (unsigned char)(n >> 8), h[4] = (unsigned char)n;
    pk->callback(pk->data, (const char *)h, 5);
  }
  if (n) pk->callback(pk->data, s, n);
}

void fk_pack_cstr(msgpack_packer *pk, const char *s) { fk_pack_str(pk, s, strlen(s)); }

void fk_build_request(msgpack_sbuffer *out, int64_t msgid, const char *method, const char *param,
                      size_t param_len) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_int64(&pk, msgid);
  fk_pack_cstr(&pk, method);
  msgpack_pack_array(&pk, 1);
  msgpack_sbuffer_write(out, param, param_len);
}

void fk_param_start_instance(msgpack_sbuffer *sb, const char *name, const char *config_json) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  fk_pack_cstr(&pk, "Name");
  fk_pack_cstr(&pk, name);
  fk_pack_cstr(&pk, "Config");
  fk_pack_cstr(&pk, config_json);
}

void fk_param_handle_event(msgpack_sbuffer *sb, int64_t instance_id, const char *event) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  fk_pack_cstr(&pk, "InstanceId");
  msgpack_pack_int64(&pk, instance_id);
  fk_pack_cstr(&pk, "EventName");
  fk_pack_cstr(&pk, event);
}

void fk_param_step(msgpack_sbuffer *sb, int64_t event_id, const char *data_packed, size_t data_len) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, data_packed ? 2 : 1);
  if (data_packed) {
    fk_pack_cstr(&pk, "Data");
    msgpack_sbuffer_write(sb, data_packed, data_len);
  }
  fk_pack_cstr(&pk, "EventId");
  msgpack_pack_int64(&pk, event_id);
}

void fk_param_int(msgpack_sbuffer *sb, int64_t v) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_int64(&pk, v);
}

void fk_param_cstr(msgpack_sbuffer *sb, const char *s) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  fk_pack_cstr(&pk, s);
}

/* ---- client ------------------------------------------------------------ */

void fk_client_init(fk_client_t *k, const char *socket_path) {
  memset(k, 0, sizeof(*k));
  snprintf(k->path, sizeof(k->path), "%s", socket_path);
  k->seed = 12345;
}

void fk_client_close(fk_client_t *k) {
  for (int i = 0; i < k->npool; i++) fk_conn_close(k->pool[i]);
  k->npool = 0;
}

void fk_call_on(fk_client_t *k, fk_conn_t *c, const char *method, const msgpack_sbuffer *param,
                fk_reply_t *out) {
  msgpack_sbuffer req;
  msgpack_sbuffer_init(&req);
  int64_t id = ++k->msgid;
  fk_build_request(&req, id, method, param->data, param->size);
  fk_send(c, req.data, req.size, k->send_mode, &k->seed);
  msgpack_sbuffer_destroy(&req);
  if (fk_recv(c, id, out, 5000) != 0) FAIL("no reply to %s (msgid %lld) within 5 s", method, (long long)id);
  if (c->server_pid) k->server_pid = c->server_pid;
}

void fk_call(fk_client_t *k, const char *method, const msgpack_sbuffer *param, fk_reply_t *out) {
  fk_conn_t *c = k->npool > 0 ? k->pool[--k->npool] : fk_connect(k->path);
  fk_call_on(k, c, method, param, out);
  if (k->npool < FK_POOL_MAX) k->pool[k->npool++] = c; /* setkeepalive */
  else fk_conn_close(c);
}

/* ---- reading ----------------------------------------------------------- */

const msgpack_object *fk_map_get(const msgpack_object *m, const char *key) {
  if (m == NULL || m->type != MSGPACK_OBJECT_MAP) return NULL;
  for (uint32_t i = 0; i < m->via.map.size; i++)
    if (fk_str_eq(&m->via.map.ptr[i].key, key)) return &m->via.map.ptr[i].val;
  return NULL;
}

char *fk_strdup_obj(const msgpack_object *o) {
  if (o == NULL || (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)) return strdup("");
  return strndup(o->via.str.ptr, o->via.str.size);
}

int fk_str_eq(const msgpack_object *o, const char *s) {
  if (o == NULL || (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)) return 0;
  return o->via.str.size == strlen(s) && memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

int64_t fk_int(const msgpack_object *o) {
  if (o == NULL) return -999999;
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (int64_t)o->via.u64;
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return o->via.i64;
  if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) return (int64_t)o->via.f64;
  return -999999;
}

int64_t fk_start_instance(fk_client_t *k, const char *name, const char *config_json) {
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_start_instance(&p, name, config_json);
  fk_call(k, "plugin.StartInstance", &p, &r);
  msgpack_sbuffer_destroy(&p);
  if (r.error_str[0]) FAIL("StartInstance(%s) failed: %s", name, r.error_str);
  const msgpack_object *id = fk_map_get(r.result, "Id");
  if (id == NULL || (id->type != MSGPACK_OBJECT_POSITIVE_INTEGER && id->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
    FAIL("StartInstance result has no integer Id");
  int64_t v = fk_int(id);
  fk_reply_free(&r);
  return v;
}

/* ---- collector --------------------------------------------------------- */

#ifndef KPS_COLLECTOR_BIN
#error "KPS_COLLECTOR_BIN must name the collector binary"
#endif

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "r");
  size_t cap = 1 << 16, n = 0, r;
  char *buf = malloc(cap);
  buf[0] = '\0';
  if (f == NULL) {
    if (len) *len = 0;
    return buf;
  }
  while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += r;
    if (cap - n < 2) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  buf[n] = '\0';
  if (len) *len = n;
  return buf;
}

void fk_collector_start(fk_collector_t *c, int port, const char *const *args) {
  const char *argv[40];
  char listen[64], portfile[300];
  int n = 0;
  if (c->dir[0] == '\0') {
    snprintf(c->dir, sizeof(c->dir), "/tmp/kps-collector-XXXXXX");
    if (mkdtemp(c->dir) == NULL) FAIL("mkdtemp: %s", strerror(errno));
  }
  snprintf(c->out, sizeof(c->out), "%s/lines.jsonl", c->dir);
  snprintf(portfile, sizeof(portfile), "%s/port", c->dir);
  unlink(portfile);
  snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
  argv[n++] = KPS_COLLECTOR_BIN;
  argv[n++] = "--listen";
  argv[n++] = listen;
  argv[n++] = "--port-file";
  argv[n++] = portfile;
  argv[n++] = "--out";
  argv[n++] = c->out;
  argv[n++] = "--quiet";
  for (int i = 0; args && args[i] && n < 38; i++) argv[n++] = args[i];
  argv[n] = NULL;
  c->pid = fork();
  if (c->pid == 0) {
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int64_t deadline = now_ms() + 10000;
  while (now_ms() < deadline) {
    size_t len;
    char *p = read_file(portfile, &len);
    c->port = len ? atoi(p) : 0;
    free(p);
    if (c->port > 0) return;
    usleep(5000);
  }
  FAIL("collector did not start");
}

void fk_collector_stop(fk_collector_t *c) {
  int st;
  if (c->pid <= 0) return;
  kill(c->pid, SIGTERM);
  waitpid(c->pid, &st, 0);
  c->pid = 0;
}

char *fk_collector_read(const fk_collector_t *c) { return read_file(c->out, NULL); }

int fk_collector_wait_lines(const fk_collector_t *c, int n, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  int lines = 0;
  for (;;) {
    char *p = read_file(c->out, NULL);
    lines = 0;
    for (char *q = p; *q; q++) lines += *q == '\n';
    free(p);
    if (lines >= n || now_ms() >= deadline) return lines;
    usleep(5000);
  }
}
