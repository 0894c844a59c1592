/* sink_test_util.c: see sink_test_util.h. */
#include "sink_test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KPS_COLLECTOR_PATH
#error "KPS_COLLECTOR_PATH must name the kps-collector binary"
#endif

extern char **environ;

#define MAX_CHILDREN 16

static char dir_path[512];
static int failed;
static int saved_stderr = -1;
static pid_t children[MAX_CHILDREN];
static uv_timer_t ticker;

static int note_fd(void) { return saved_stderr >= 0 ? saved_stderr : STDERR_FILENO; }

static void kill_children(void) {
  int i;

  for (i = 0; i < MAX_CHILDREN; i++) {
    if (children[i] > 0) {
      kill(children[i], SIGKILL);
      waitpid(children[i], NULL, 0);
      children[i] = 0;
    }
  }
}

static void remove_dir(void) {
  DIR *d;
  struct dirent *e;
  char p[1024];

  if (!dir_path[0] || failed) return;
  d = opendir(dir_path);
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(p, sizeof(p), "%s/%s", dir_path, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir_path);
}

static void at_exit(void) {
  kill_children();
  remove_dir();
}

void t_note(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  if (write(note_fd(), buf, (size_t)n) < 0) { /* nothing better to do */
  }
}

void t_fail(const char *file, int line, const char *fmt, ...) {
  char buf[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  failed = 1;
  t_note("%s:%d: FAILED: %s", file, line, buf);
  if (dir_path[0]) t_note("test files kept in %s", dir_path);
  kill_children();
  exit(1);
}

const char *t_dir(void) {
  if (!dir_path[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir_path, sizeof(dir_path), "%s/kps-sink-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir_path)) {
      dir_path[0] = 0;
      t_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
    }
    atexit(at_exit);
    signal(SIGPIPE, SIG_IGN);
  }
  return dir_path;
}

const char *t_path(const char *name) {
  static char bufs[8][600];
  static int next;
  char *b = bufs[next++ % 8];

  snprintf(b, sizeof(bufs[0]), "%s/%s", t_dir(), name);
  return b;
}

void t_capture_log(void) {
  int fd = open(t_path("sink.log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

  CHECK(fd >= 0);
  saved_stderr = dup(STDERR_FILENO);
  CHECK(saved_stderr >= 0);
  CHECK(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  close(fd);
}

int t_log_contains(const char *needle) { return t_file_contains(t_path("sink.log"), needle); }

char *t_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0, r;

  *len = 0;
  if (!f) return NULL;
  for (;;) {
    if (n + 65536 + 1 > cap) {
      char *nb;
      cap = cap ? cap * 2 : 131072;
      nb = realloc(buf, cap);
      CHECK(nb != NULL);
      buf = nb;
    }
    r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  fclose(f);
  buf[n] = 0;
  *len = n;
  return buf;
}

int t_file_contains(const char *path, const char *needle) {
  size_t len;
  char *s = t_read_file(path, &len);
  int found = s && strstr(s, needle) != NULL;

  free(s);
  return found;
}

unsigned t_file_count(const char *path, const char *needle) {
  size_t len, nl = strlen(needle);
  char *s = t_read_file(path, &len), *p = s;
  unsigned n = 0;

  while (p && nl && (p = strstr(p, needle)) != NULL) {
    n++;
    p += nl;
  }
  free(s);
  return n;
}

int t_free_port(void) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;

  CHECK(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
  port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

uint64_t t_now_ms(void) { return uv_hrtime() / 1000000u; }

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- the loop ---- */

static void on_tick(uv_timer_t *t) {}

void t_loop_init(uv_loop_t *loop) {
  CHECK(uv_loop_init(loop) == 0);
  CHECK(uv_timer_init(loop, &ticker) == 0);
}

int t_run_until(uv_loop_t *loop, t_pred_fn pred, void *ud, uint64_t timeout_ms) {
  uint64_t deadline = t_now_ms() + timeout_ms;
  int ok;

  uv_timer_start(&ticker, on_tick, 2, 2); /* bounds each uv_run(ONCE) */
  for (;;) {
    if (pred(ud)) {
      ok = 1;
      break;
    }
    if (t_now_ms() >= deadline) {
      ok = 0;
      break;
    }
    uv_run(loop, UV_RUN_ONCE);
  }
  uv_timer_stop(&ticker);
  return ok;
}

static int pred_time(void *ud) { return t_now_ms() >= *(uint64_t *)ud; }

void t_run_for(uv_loop_t *loop, uint64_t ms) {
  uint64_t until = t_now_ms() + ms;

  t_run_until(loop, pred_time, &until, ms + 1000);
}

static void on_flush_done(void *ud) { *(int *)ud = 1; }
static int pred_flag(void *ud) { return *(int *)ud != 0; }

void t_finish(uv_loop_t *loop, uint64_t deadline_ms, kps_sink_t **sinks, int nsinks) {
  int done = 0, i;

  kps_sink_flush_all(loop, deadline_ms, on_flush_done, &done);
  CHECK(t_run_until(loop, pred_flag, &done, deadline_ms + 10000));
  for (i = 0; i < nsinks; i++) kps_sink_release(sinks[i]);
  t_loop_done(loop);
}

static void walk_print(uv_handle_t *h, void *arg) {
  t_note("  open handle: %s active=%d closing=%d", uv_handle_type_name(uv_handle_get_type(h)),
         uv_is_active(h), uv_is_closing(h));
}

void t_loop_done(uv_loop_t *loop) {
  uint64_t deadline = t_now_ms() + 10000;

  if (!uv_is_closing((uv_handle_t *)&ticker)) uv_close((uv_handle_t *)&ticker, NULL);
  while (uv_loop_alive(loop) && t_now_ms() < deadline) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (uv_loop_alive(loop)) sleep_ms(1);
  }
  uv_run(loop, UV_RUN_NOWAIT);
  if (uv_loop_alive(loop)) {
    uv_walk(loop, walk_print, NULL);
    t_fail(__FILE__, __LINE__, "loop still alive after the test");
  }
  if (uv_loop_close(loop) != 0) {
    uv_walk(loop, walk_print, NULL);
    t_fail(__FILE__, __LINE__, "uv_loop_close() != 0: handles left open");
  }
}

/* ---- collectors ---- */

static void remember_child(pid_t pid) {
  int i;

  for (i = 0; i < MAX_CHILDREN; i++) {
    if (children[i] == 0) {
      children[i] = pid;
      return;
    }
  }
  t_fail(__FILE__, __LINE__, "too many collectors");
}

static void forget_child(pid_t pid) {
  int i;

  for (i = 0; i < MAX_CHILDREN; i++)
    if (children[i] == pid) children[i] = 0;
}

/* KPS_COLLECTOR in the environment overrides the binary (e.g. a wrapper
 * that runs it under valgrind). */
static const char *collector_path(void) {
  const char *p = getenv("KPS_COLLECTOR");
  return p && *p ? p : KPS_COLLECTOR_PATH;
}

void t_collector_start(t_collector_t *c, const char *tag, int port, const char *const *extra) {
  t_collector_start_on(c, tag, "127.0.0.1", port, extra);
}

void t_collector_start_on(t_collector_t *c, const char *tag, const char *addr, int port, const char *const *extra) {
  const char *argv[40];
  char listen[80];
  posix_spawn_file_actions_t fa;
  uint64_t deadline;
  int argc = 0, rc, status;
  char name[64];

  memset(c, 0, sizeof(*c));
  snprintf(c->tag, sizeof(c->tag), "%s", tag);
  snprintf(name, sizeof(name), "%s.out", tag);
  snprintf(c->out, sizeof(c->out), "%s", t_path(name));
  snprintf(name, sizeof(name), "%s.port", tag);
  snprintf(c->port_file, sizeof(c->port_file), "%s", t_path(name));
  snprintf(name, sizeof(name), "%s.count", tag);
  snprintf(c->count_file, sizeof(c->count_file), "%s", t_path(name));
  snprintf(name, sizeof(name), "%s.log", tag);
  snprintf(c->log, sizeof(c->log), "%s", t_path(name));
  unlink(c->port_file);
  snprintf(listen, sizeof(listen), strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr, port);

  argv[argc++] = collector_path();
  argv[argc++] = "--listen";
  argv[argc++] = listen;
  argv[argc++] = "--port-file";
  argv[argc++] = c->port_file;
  argv[argc++] = "--out";
  argv[argc++] = c->out;
  argv[argc++] = "--count-file";
  argv[argc++] = c->count_file;
  for (; extra && *extra && argc < 38; extra++) argv[argc++] = *extra;
  argv[argc] = NULL;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, c->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  rc = posix_spawn(&c->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) t_fail(__FILE__, __LINE__, "spawn %s: %s", argv[0], strerror(rc));
  remember_child(c->pid);

  /* Readiness of a child process, not an assertion: wait for its port file. */
  deadline = t_now_ms() + 10000;
  for (;;) {
    size_t len;
    char *s = t_read_file(c->port_file, &len);
    if (s && len > 0 && s[len - 1] == '\n') {
      c->port = atoi(s);
      free(s);
      break;
    }
    free(s);
    if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
      forget_child(c->pid);
      t_fail(__FILE__, __LINE__, "collector %s exited early (see %s)", tag, c->log);
    }
    if (t_now_ms() > deadline) t_fail(__FILE__, __LINE__, "collector %s did not start", tag);
    sleep_ms(2);
  }
  CHECK(c->port > 0);
  CHECK(port == 0 || c->port == port);
}

void t_collector_stop(t_collector_t *c) {
  uint64_t deadline = t_now_ms() + 10000;
  int status = 0;
  pid_t r;

  if (c->pid <= 0) return;
  CHECK(kill(c->pid, SIGTERM) == 0);
  for (;;) {
    r = waitpid(c->pid, &status, WNOHANG);
    if (r == c->pid) break;
    if (t_now_ms() > deadline) t_fail(__FILE__, __LINE__, "collector %s ignores SIGTERM", c->tag);
    sleep_ms(2);
  }
  forget_child(c->pid);
  c->pid = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    t_fail(__FILE__, __LINE__, "collector %s did not exit cleanly (status 0x%x)", c->tag, status);
}

uint64_t t_collector_count(const t_collector_t *c) {
  size_t len;
  char *s = t_read_file(c->count_file, &len);
  uint64_t n = s ? strtoull(s, NULL, 10) : 0;

  free(s);
  return n;
}

/* ---- records ---- */

char *t_record(unsigned seq, size_t size) {
  char *r = malloc(size + 1);
  int h;
  size_t i;

  CHECK(r != NULL && size >= 40);
  h = snprintf(r, size + 1, "{\"seq\":%u,\"pad\":\"", seq);
  CHECK(h > 0 && (size_t)h + 3 <= size);
  for (i = (size_t)h; i < size - 3; i++) r[i] = (char)('a' + (seq + i) % 26);
  memcpy(r + size - 3, "\"}\n", 3);
  return r;
}

long t_record_seq(const char *line, size_t len) {
  unsigned seq;
  char *want;
  int same;

  if (len < 40 || line[len - 1] != '\n' || sscanf(line, "{\"seq\":%u,", &seq) != 1) return -1;
  want = t_record(seq, len);
  same = memcmp(want, line, len) == 0;
  free(want);
  return same ? (long)seq : -1;
}

uint64_t t_check_delivered(const char *const *files, int nfiles, unsigned total) {
  unsigned char *seen = calloc(total ? total : 1, 1);
  uint64_t dups = 0;
  unsigned i;
  int f;

  CHECK(seen != NULL);
  for (f = 0; f < nfiles; f++) {
    size_t len;
    char *buf = t_read_file(files[f], &len), *p = buf, *end = buf + len;
    while (buf && p < end) {
      char *nl = memchr(p, '\n', (size_t)(end - p));
      long seq;
      CHECK(nl != NULL);
      seq = t_record_seq(p, (size_t)(nl + 1 - p));
      if (seq < 0 || (unsigned long)seq >= total)
        t_fail(__FILE__, __LINE__, "corrupt line in %s at offset %ld", files[f], (long)(p - buf));
      if (seen[seq]) dups++;
      seen[seq] = 1;
      p = nl + 1;
    }
    free(buf);
  }
  for (i = 0; i < total; i++)
    if (!seen[i]) t_fail(__FILE__, __LINE__, "record %u was lost", i);
  free(seen);
  return dups;
}

kps_sink_endpoint_stats_t t_ep_stats(const kps_sink_t *s, size_t i) {
  kps_sink_endpoint_stats_t st;

  kps_sink_get_endpoint_stats(s, i, &st);
  return st;
}

kps_sink_stats_t t_stats(const kps_sink_t *s) {
  kps_sink_stats_t st;

  kps_sink_get_stats(s, &st);
  return st;
}
