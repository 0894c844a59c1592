/* test_process.c: the command line, the -dump schema against Kong's schema
 * rules, the socket file and process behaviour (proto/PROTOCOL.md R40-R46,
 * R50-R56). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "fake_kong.h"
#include "schema_rules.h"
#include "test.h"

/* Runs a shell command, returns its stdout (malloc'd) and exit status. */
static char *run(const char *cmd, int *status) {
  FILE *f = popen(cmd, "r");
  size_t cap = 1 << 16, len = 0, n;
  char *buf = malloc(cap);
  if (f == NULL) FAIL("popen %s", cmd);
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  buf[len] = '\0';
  int st = pclose(f);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return buf;
}

/* R40-R46: -dump passes Kong's schema rules; the first entry is the plugin. */
TEST(dump_passes_kong_schema_rules) {
  int st;
  char *out = run(KPS_SERVER_BIN " --plugin c-hello -dump", &st);
  ASSERT_EQ(st, 0);
  check_dump(out, 1);
  ASSERT_CONTAINS(out, "\"Name\":\"c-hello\"");
  free(out);
  out = run(KPS_SERVER_BIN " --plugin c-hello --dump", &st);
  ASSERT_EQ(st, 0);
  check_dump(out, 1);
  free(out);
}

/* R44: Kong 3.0-3.3 refuse field descriptions; --kong-version leaves them
 * out, and only for those. */
TEST(dump_for_kong_3_3_has_no_descriptions) {
  int st;
  char *out = run(KPS_SERVER_BIN " --plugin tcp-body-log -dump --kong-version 3.3", &st);
  ASSERT_EQ(st, 0);
  check_dump_kong(out, 1, 303);
  ASSERT(strstr(out, "\"description\"") == NULL);
  ASSERT_CONTAINS(out, "\"entity_checks\":[{\"mutually_required\":[\"config.tls_client_cert\","
                       "\"config.tls_client_key\"]},{\"only_one_of\":[\"config.host\",\"config.hosts\"]},"
                       "{\"mutually_required\":[\"config.host\",\"config.port\"]}]");
  free(out);
  out = run(KPS_SERVER_BIN " --plugin tcp-body-log -dump --kong-version 3.4.2", &st);
  ASSERT_EQ(st, 0);
  check_dump_kong(out, 1, 304);
  ASSERT_CONTAINS(out, "\"description\":\"The collector's TCP port, with host.\"");
  free(out);
  out = run(KPS_SERVER_BIN " --plugin tcp-body-log -dump --kong-version 2.8 2>&1", &st);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(out, "invalid value '2.8' for --kong-version");
  free(out);
}

TEST(dump_all_plugins) {
  int st;
  char *out = run(KPS_SERVER_BIN " -dump-all-plugins", &st);
  ASSERT_EQ(st, 0);
  cJSON *d = cJSON_Parse(out);
  int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "Plugins"));
  ASSERT(n >= 1);
  check_dump(out, n);
  ASSERT_CONTAINS(out, "\"Name\":\"c-hello\"");
  cJSON_Delete(d);
  free(out);
}

/* R50: the program name selects the plugin (a symlink named after it). */
TEST(argv0_symlink_selects_plugin) {
  char dir[] = "/tmp/kps-argv0-XXXXXX", link[256], cmd[512];
  int st;
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(link, sizeof(link), "%s/c-hello", dir);
  ASSERT_EQ(symlink(KPS_SERVER_BIN, link), 0);
  snprintf(cmd, sizeof(cmd), "%s -dump", link);
  char *out = run(cmd, &st);
  ASSERT_EQ(st, 0);
  check_dump(out, 1);
  ASSERT_CONTAINS(out, "\"Name\":\"c-hello\"");
  free(out);
  unlink(link);
  rmdir(dir);
}

/* R51: unknown flags and plugins: one line on stderr, exit 2. */
TEST(cli_errors_exit_2) {
  static const struct {
    const char *args, *msg;
  } cases[] = {
      {"--bogus", "unknown option '--bogus'"},
      {"--plugin nope", "unknown plugin 'nope'"},
      {"--log-level loud", "unknown log level 'loud'"},
      {"--max-message-size -5", "invalid value '-5' for --max-message-size"},
      {"-dump", "-dump needs a plugin"},
      {"--socket", "option '--socket' needs a value"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char cmd[512];
    int st;
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1 >/dev/null", KPS_SERVER_BIN, cases[i].args);
    char *out = run(cmd, &st);
    ASSERT_EQ(st, 2);
    ASSERT_CONTAINS(out, cases[i].msg);
    ASSERT_EQ(strchr(out, '\n') - out + 1, (long long)strlen(out)); /* one line */
    free(out);
  }
}

TEST(help_and_version) {
  int st;
  char *out = run(KPS_SERVER_BIN " --version", &st);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "kong-c-pluginserver 0.1.0");
  free(out);
  out = run(KPS_SERVER_BIN " --help", &st);
  ASSERT_EQ(st, 0);
  ASSERT_CONTAINS(out, "-kong-prefix");
  ASSERT_CONTAINS(out, "c-hello");
  free(out);
}

/* R52: default socket <prefix>/<plugin>.socket, mode 0660. */
TEST(socket_default_path_and_mode) {
  fk_server_t s;
  struct stat st;
  fk_server_start(&s, "c-hello", NULL);
  char want[300];
  snprintf(want, sizeof(want), "%s/c-hello.socket", s.prefix);
  ASSERT_EQ(lstat(want, &st), 0);
  ASSERT(S_ISSOCK(st.st_mode));
  ASSERT_EQ(st.st_mode & 0777, 0660);
  ASSERT_EQ(fk_server_stop(&s), 0);
  ASSERT_EQ(lstat(want, &st), -1); /* removed on exit */
}

/* R53: a stale socket is replaced; any other file is refused. */
TEST(stale_socket_replaced_other_file_refused) {
  char dir[] = "/tmp/kps-sock-XXXXXX", path[300], cmd[700];
  int st;
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/c-hello.socket", dir);
  FILE *f = fopen(path, "w");
  fputs("precious", f);
  fclose(f);
  snprintf(cmd, sizeof(cmd), "%s --plugin c-hello -kong-prefix %s 2>&1", KPS_SERVER_BIN, dir);
  char *out = run(cmd, &st);
  ASSERT_EQ(st, 1);
  ASSERT_CONTAINS(out, "refusing to replace");
  free(out);
  f = fopen(path, "r");
  char buf[16] = "";
  ASSERT(fgets(buf, sizeof(buf), f) != NULL);
  fclose(f);
  ASSERT_STREQ(buf, "precious");
  unlink(path);

  /* A stale socket: bound, then its owner went away without unlinking. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  ASSERT(strlen(path) < sizeof(sa.sun_path));
  memcpy(sa.sun_path, path, strlen(path) + 1);
  ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  close(fd);
  fk_server_t s;
  snprintf(s.prefix, sizeof(s.prefix), "%s", dir);
  pid_t pid = fork();
  if (pid == 0) {
    int nul = open("/dev/null", O_WRONLY);
    dup2(nul, 2);
    execl(KPS_SERVER_BIN, KPS_SERVER_BIN, "--plugin", "c-hello", "-kong-prefix", dir, (char *)NULL);
    _exit(127);
  }
  fk_conn_t *c = NULL;
  for (int i = 0; i < 500 && c == NULL; i++) {
    int t = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(t, (struct sockaddr *)&sa, sizeof(sa)) == 0) c = fk_connect(path);
    close(t);
    if (c == NULL) usleep(10000);
  }
  ASSERT(c != NULL);
  fk_conn_close(c);
  kill(pid, SIGTERM);
  waitpid(pid, &st, 0);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  rmdir(dir);
}

/* R54: SIGTERM stops the server gracefully, within the deadline. */
TEST(sigterm_graceful_stop) {
  fk_server_t s;
  fk_server_start(&s, "c-hello", NULL);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  ASSERT_EQ(fk_server_stop(&s), 0);
  clock_gettime(CLOCK_MONOTONIC, &b);
  ASSERT((b.tv_sec - a.tv_sec) < 6);
  char *log = fk_server_log(&s);
  ASSERT_CONTAINS(log, "received signal 15");
  ASSERT_CONTAINS(log, "stopped");
  ASSERT(strstr(log, "handles still open") == NULL);
  free(log);
}

/* R55: when the process that started the server dies, the server exits. */
TEST(exits_when_parent_dies) {
  char dir[] = "/tmp/kps-parent-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  /* Become a subreaper so the orphaned server is re-parented to us. */
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t mid = fork();
  if (mid == 0) {
    pid_t server = fork();
    if (server == 0) {
      int nul = open("/dev/null", O_WRONLY);
      dup2(nul, 2);
      execl(KPS_SERVER_BIN, KPS_SERVER_BIN, "--plugin", "c-hello", "-kong-prefix", dir, (char *)NULL);
      _exit(127);
    }
    if (write(pipefd[1], &server, sizeof(server)) != sizeof(server)) _exit(1);
    usleep(300000); /* let the server start and note its parent */
    _exit(0);       /* the "Kong worker" dies */
  }
  pid_t server;
  ASSERT_EQ(read(pipefd[0], &server, sizeof(server)), sizeof(server));
  int st;
  waitpid(mid, &st, 0);
  int exited = 0;
  for (int i = 0; i < 600 && !exited; i++) { /* the check runs once a second */
    if (waitpid(server, &st, WNOHANG) == server) exited = 1;
    else usleep(10000);
  }
  ASSERT(exited);
  ASSERT(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0);
  rmdir(dir);
}

/* R56: log lines carry a timestamp and a level. */
TEST(log_lines_have_timestamp_and_level) {
  fk_server_t s;
  fk_server_start(&s, "c-hello", NULL);
  ASSERT_EQ(fk_server_stop(&s), 0);
  char *log = fk_server_log(&s);
  /* 2026-11-26T10:36:20.123Z [kong-c-pluginserver] notice ... */
  int y, mo, d, h, mi, sec, ms;
  char level[16];
  ASSERT_EQ(sscanf(log, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ [kong-c-pluginserver] %15s", &y, &mo, &d, &h,
                   &mi, &sec, &ms, level), 8);
  ASSERT_STREQ(level, "notice");
  free(log);
}
