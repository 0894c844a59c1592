/* test_safe_defaults.c: the safe defaults of issue 6 that the process and
 * tcp-body-log tests do not check yet: the socket's mode whatever the
 * umask, nothing but a socket is ever unlinked, TLS verification and the
 * credential redaction are on by default, the server's own log never holds
 * body bytes or redacted header values, and every cap's default is the one
 * the README gives. */
#include <ctype.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "kong_helpers.h"

static fk_server_t srv;
static fk_client_t k;
static fk_collector_t col;

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

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) FAIL("cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  buf[fread(buf, 1, (size_t)n, f)] = '\0';
  fclose(f);
  return buf;
}

/* ---- the socket --------------------------------------------------------- */

/* R52: mode 0660 whatever the umask Kong runs with, inside the prefix. */
TEST(socket_mode_0660_inside_prefix_whatever_the_umask) {
  static const mode_t masks[] = {0000, 0022, 0077, 0777};
  for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
    fk_server_t s;
    struct stat st;
    mode_t old = umask(masks[i]);
    fk_server_start(&s, "c-hello", NULL);
    umask(old);
    ASSERT_EQ(lstat(s.socket, &st), 0);
    ASSERT(S_ISSOCK(st.st_mode));
    if ((st.st_mode & 07777) != 0660)
      FAIL("umask %03o: socket mode %04o, expected 0660", (unsigned)masks[i], (unsigned)(st.st_mode & 07777));
    char copy[300];
    snprintf(copy, sizeof(copy), "%s", s.socket);
    ASSERT_STREQ(dirname(copy), s.prefix);
    ASSERT_EQ(st.st_uid, getuid());
    ASSERT_EQ(fk_server_stop(&s), 0);
  }
}

/* R53: at the socket path, anything that is not a socket is left alone
 * and the server exits 1: a symlink (to a file, to a socket, dangling), a
 * directory, a FIFO. */
TEST(nothing_but_a_socket_is_unlinked) {
  char dir[] = "/tmp/kps-safe-XXXXXX", path[300], target[300], cmd[800];
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof(path), "%s/c-hello.socket", dir);
  snprintf(target, sizeof(target), "%s/precious", dir);
  FILE *f = fopen(target, "w");
  fputs("precious", f);
  fclose(f);
  snprintf(cmd, sizeof(cmd), "%s --plugin c-hello -kong-prefix %s 2>&1", KPS_SERVER_BIN, dir);
  for (int kind = 0; kind < 5; kind++) {
    struct stat before, after;
    switch (kind) {
      case 0: ASSERT_EQ(symlink(target, path), 0); break;
      case 1: ASSERT_EQ(symlink("/nonexistent/kps", path), 0); break;
      case 2: ASSERT_EQ(mkdir(path, 0700), 0); break;
      case 3: ASSERT_EQ(mkfifo(path, 0600), 0); break;
      case 4: { /* a symlink to a live socket of another server */
        fk_server_t other;
        fk_server_start(&other, "c-hello", NULL);
        ASSERT_EQ(symlink(other.socket, path), 0);
        int st;
        char *out = run(cmd, &st);
        ASSERT_EQ(st, 1);
        free(out);
        ASSERT_EQ(lstat(path, &after), 0);
        ASSERT(S_ISLNK(after.st_mode));
        fk_client_init(&k, other.socket); /* the other server is untouched */
        ASSERT(fk_start_instance(&k, "c-hello", "{}") > 0);
        fk_client_close(&k);
        ASSERT_EQ(fk_server_stop(&other), 0);
        unlink(path);
        continue;
      }
    }
    ASSERT_EQ(lstat(path, &before), 0);
    int st;
    char *out = run(cmd, &st);
    if (st != 1) FAIL("kind %d: exit status %d, expected 1: %s", kind, st, out);
    ASSERT_CONTAINS(out, "refusing to replace");
    free(out);
    ASSERT_EQ(lstat(path, &after), 0);
    ASSERT_EQ(after.st_ino, before.st_ino);
    ASSERT_EQ(after.st_mode & S_IFMT, before.st_mode & S_IFMT);
    if (kind == 2) rmdir(path);
    else unlink(path);
  }
  char *text = read_text(target);
  ASSERT_STREQ(text, "precious");
  free(text);
  unlink(target);
  rmdir(dir);
}

/* ---- TLS and redaction defaults ----------------------------------------- */

/* tls_verify defaults to true: a collector whose certificate is not in the
 * system store (a test CA) is refused; with tls_verify false the same
 * collector gets the record, so the refusal was the verification. */
TEST(tls_verification_on_by_default) {
  char dir[64], a1[200], a2[200], cfg[512];
  kh_gen_certs(dir, sizeof(dir));
  snprintf(a1, sizeof(a1), "%s/certs/server.pem", dir);
  snprintf(a2, sizeof(a2), "%s/certs/server.key", dir);
  const char *const cargs[] = {"--tls-cert", a1, "--tls-key", a2, NULL};
  const char *const sargs[] = {"--shutdown-timeout", "300", NULL};
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, cargs);
  fk_server_start(&srv, "tcp-body-log", sargs);
  fk_client_init(&k, srv.socket);
  snprintf(cfg, sizeof(cfg), "{\"host\":\"localhost\",\"port\":%d,\"tls\":true}", col.port);
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_start_instance(&p, "tcp-body-log", cfg);
  fk_call(&k, "plugin.StartInstance", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  const msgpack_object *verify = fk_map_get(fk_map_get(r.result, "Config"), "tls_verify");
  ASSERT(verify != NULL && verify->type == MSGPACK_OBJECT_BOOLEAN && verify->via.boolean);
  int64_t inst = fk_int(fk_map_get(r.result, "Id"));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  char ser[4096];
  char *key = kh_response_phase(&k, inst, "a", 1, "b", 1);
  kh_serialize(ser, sizeof(ser), key, "text/plain", NULL, NULL);
  kh_log_phase(&k, inst, ser);
  free(key);
  int64_t failures = 0;
  for (int i = 0; i < 500 && failures == 0; i++) {
    usleep(10000);
    failures = kh_status(&k, "sink", "tls_failures");
  }
  ASSERT(failures >= 1);
  ASSERT_EQ(kh_status(&k, "sink", "records_sent"), 0);
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 200), 0);
  /* the same collector without verification */
  snprintf(cfg, sizeof(cfg), "{\"host\":\"localhost\",\"port\":%d,\"tls\":true,\"tls_verify\":false}", col.port);
  int64_t noverify = fk_start_instance(&k, "tcp-body-log", cfg);
  key = kh_response_phase(&k, noverify, "c", 1, "d", 1);
  kh_serialize(ser, sizeof(ser), key, "text/plain", NULL, NULL);
  kh_log_phase(&k, noverify, ser);
  free(key);
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 5000), 1);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
}

static const cJSON *jget(const cJSON *j, const char *a, const char *b) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
  return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

/* The default redact_headers cover credentials in requests and responses,
 * whatever the case of the header name and for repeated headers. */
TEST(redaction_defaults_cover_credentials) {
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  char cfg[256], ser[8192];
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d}", col.port);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  char *key = kh_response_phase(&k, inst, "x", 1, "y", 1);
  kh_serialize(ser, sizeof(ser), key, "text/plain",
               ",\"authorization\":\"Bearer S1\",\"proxy-authorization\":\"Basic S2\",\"cookie\":\"sid=S3\","
               "\"apikey\":\"S4\",\"x-api-key\":\"S5\",\"Authorization\":\"S6\",\"X-API-KEY\":[\"S7\",\"S8\"]",
               ",\"set-cookie\":[\"a=S9\",\"b=S10\"],\"Set-Cookie\":\"S11\"");
  kh_log_phase(&k, inst, ser);
  free(key);
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 5000), 1);
  char *line = fk_collector_read(&col);
  for (int i = 1; i <= 11; i++) {
    char needle[8];
    snprintf(needle, sizeof(needle), "S%d\"", i);
    if (strstr(line, needle) != NULL) FAIL("credential S%d logged: %s", i, line);
  }
  cJSON *j = cJSON_Parse(line);
  ASSERT(j != NULL);
  const cJSON *h = jget(j, "request", "headers");
  static const char *const names[] = {"authorization", "proxy-authorization", "cookie", "apikey", "x-api-key"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(h, names[i])->valuestring, "REDACTED");
  ASSERT_STREQ(jget(j, "request", "headers")->child->valuestring, "127.0.0.1:8000"); /* host kept */
  ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(jget(j, "response", "headers"), "set-cookie")->valuestring,
               "REDACTED");
  cJSON_Delete(j);
  free(line);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
}

/* ---- the server's own log ----------------------------------------------- */

/* R56: at --log-level debug, through a whole exchange and every error path
 * that handles a body or headers (collector down then up, queue full,
 * oversized and malformed messages, bad serialize, bad configs, unknown
 * events), the server's log never contains a byte of a body or a redacted
 * header value. */
TEST(log_never_contains_bodies_or_redacted_values) {
  static const char *const secrets[] = {
      "BODYSECRETREQ", "BODYSECRETRESP", "HDRSECRETAUTH", "HDRSECRETCOOKIE", "HDRSECRETAPIKEY",
      "HDRSECRETCUSTOM", "JSONSECRETPW", "SERSECRET", "MPSECRET", "BIGSECRET", "CFGSECRET", "STEPSECRET",
      "QUEUESECRET", "BINSECRET"};
  const char *const sargs[] = {"--log-level", "debug", "--max-message-size", "65536", "--shutdown-timeout",
                               "300", NULL};
  /* the collector starts after the first records (down at start) */
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  int port = col.port;
  fk_collector_stop(&col);
  fk_server_start(&srv, "tcp-body-log", sargs);
  fk_client_init(&k, srv.socket);
  char cfg[512], ser[8192];
  snprintf(cfg, sizeof(cfg),
           "{\"host\":\"127.0.0.1\",\"port\":%d,\"redact_headers\":[\"authorization\",\"cookie\",\"x-custom\","
           "\"apikey\"],\"redact_json_fields\":[\"password\"],\"queue_max_entries\":3}",
           port);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  const char *req = "{\"user\":\"BODYSECRETREQ\",\"password\":\"JSONSECRETPW\"}";
  const char *hdrs = ",\"authorization\":\"Bearer HDRSECRETAUTH\",\"cookie\":\"HDRSECRETCOOKIE\","
                     "\"apikey\":\"HDRSECRETAPIKEY\",\"x-custom\":\"HDRSECRETCUSTOM\"";
  for (int i = 0; i < 5; i++) { /* 3 queued while the collector is down, 2 refused (queue full) */
    const char *resp = i < 3 ? "{\"token\":\"BODYSECRETRESP\"}" : "{\"more\":\"QUEUESECRET\"}";
    char *key = kh_response_phase(&k, inst, req, strlen(req), resp, strlen(resp));
    kh_serialize(ser, sizeof(ser), key, "application/json", hdrs, NULL);
    kh_log_phase(&k, inst, ser);
    free(key);
  }
  ASSERT(kh_status(&k, "plugin", "records_refused") >= 1);
  /* a binary body, truncated */
  static const char bin[] = "\xff\xfe" "BINSECRET\x00\x01";
  char *key = kh_response_phase(&k, inst, bin, sizeof(bin) - 1, bin, sizeof(bin) - 1);
  kh_serialize(ser, sizeof(ser), key, "application/octet-stream", hdrs, NULL);
  kh_log_phase(&k, inst, ser);
  free(key);
  /* a serialize that is not JSON, with a secret in it */
  kh_log_phase(&k, inst, "{\"request\": SERSECRET");
  /* a Step for an unknown event carrying a body */
  msgpack_sbuffer d, p;
  msgpack_packer pk;
  fk_reply_t r;
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  fk_pack_cstr(&pk, "STEPSECRET");
  kh_step(&k, 123456789, &d, &r);
  ASSERT_CONTAINS(r.error_str, "no running event");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&d);
  /* configs refused, with secrets in their string values */
  static const char *const bad_cfgs[] = {
      "{\"host\":\"127.0.0.1\",\"port\":\"CFGSECRET\"}",
      "{\"host\":\"127.0.0.1\",\"port\":1,\"tls\":\"CFGSECRET\"}",
      "{\"host\":\"127.0.0.1\",\"port\":1,\"redact_headers\":[1,\"CFGSECRET\"],\"content_types\":5}",
      "{\"host\":\"127.0.0.1\",\"port\":1,\"tls_client_cert\":\"CFGSECRET\"}",
      "{\"host\":\"127.0.0.1\",\"port\":1,\"max_body_size\":-1,\"tls_sni\":\"CFGSECRET\"}",
  };
  for (size_t i = 0; i < sizeof(bad_cfgs) / sizeof(bad_cfgs[0]); i++) {
    msgpack_sbuffer_init(&p);
    fk_param_start_instance(&p, "tcp-body-log", bad_cfgs[i]);
    fk_call(&k, "plugin.StartInstance", &p, &r);
    ASSERT(r.error_str[0] != 0);
    ASSERT(strstr(r.error_str, "CFGSECRET") == NULL); /* R30: not echoed to Kong either */
    fk_reply_free(&r);
    msgpack_sbuffer_destroy(&p);
  }
  /* an oversized message and a malformed one, with secrets in them */
  static char big[70000];
  memset(big, 'B', sizeof(big));
  memcpy(big + 100, "BIGSECRET", 9);
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  fk_pack_cstr(&pk, "EventId");
  msgpack_pack_int(&pk, 1);
  fk_pack_cstr(&pk, "Data");
  fk_pack_str(&pk, big, sizeof(big));
  msgpack_sbuffer_init(&p);
  fk_build_request(&p, 77, "plugin.Step", d.data, d.size);
  fk_conn_t *c = fk_connect(srv.socket);
  fk_send(c, p.data, p.size, FK_SEND_WHOLE, NULL);
  ASSERT_EQ(fk_recv(c, 77, &r, 5000), 0);
  ASSERT_CONTAINS(r.error_str, "max_message_size");
  fk_reply_free(&r);
  fk_conn_close(c);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_destroy(&d);
  static const unsigned char bad[] = {0x94, 0x00, 0x05, 0xab, 'p', 'l', 'u', 'g', 'i', 'n', '.', 'S', 't', 'e', 'p',
                                      0x91, 0x82, 0xa4, 'D', 'a', 't', 'a', 0xa8, 'M', 'P', 'S', 'E', 'C', 'R',
                                      'E', 'T', 0xc1};
  c = fk_connect(srv.socket);
  fk_send(c, bad, sizeof(bad), FK_SEND_WHOLE, NULL);
  ASSERT(fk_wait_closed(c, 5000));
  fk_conn_close(c);
  /* the collector comes up: the queued records go out */
  fk_collector_start(&col, port, NULL);
  ASSERT_EQ(fk_collector_wait_lines(&col, 3, 15000), 3);
  char *lines = fk_collector_read(&col);
  /* positive control: the bodies did flow, to the collector only */
  ASSERT_CONTAINS(lines, "BODYSECRETREQ");
  ASSERT_CONTAINS(lines, "BODYSECRETRESP");
  ASSERT(strstr(lines, "JSONSECRETPW") == NULL);
  ASSERT(strstr(lines, "HDRSECRET") == NULL);
  free(lines);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
  char *log = fk_server_log(&srv);
  ASSERT(strstr(log, " debug ") != NULL); /* it did log at debug */
  for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
    if (strstr(log, secrets[i]) != NULL) {
      fprintf(stderr, "%s\n", log);
      FAIL("the server's log contains %s", secrets[i]);
    }
  free(log);
}

/* ---- every cap has a default, and it is in the README -------------------- */

/* "16 MiB" -> 16777216, "64 MiB" -> ..., "8 KiB", "60 s", "60000 ms",
 * "10000" -> numbers. */
static double readme_number(const char *s) {
  char *end;
  while (*s == ' ' || *s == '`') s++;
  double v = strtod(s, &end);
  while (*end == ' ') end++;
  if (strncmp(end, "MiB", 3) == 0) v *= 1024 * 1024;
  else if (strncmp(end, "KiB", 3) == 0) v *= 1024;
  else if (strncmp(end, "s", 1) == 0 && strncmp(end, "s", 1) == 0 && end[1] != 'e') v *= 1000;
  return v;
}

/* The cells of a markdown table row ("| a | b |"), trimmed, into cells. */
static int row_cells(const char *line, char cells[][256], int max) {
  int n = 0;
  const char *p = strchr(line, '|');
  while (p && n < max) {
    const char *q = strchr(p + 1, '|');
    if (!q) break;
    const char *a = p + 1, *b = q;
    while (a < b && *a == ' ') a++;
    while (b > a && b[-1] == ' ') b--;
    snprintf(cells[n], 256, "%.*s", (int)(b - a), a);
    n++;
    p = q;
  }
  return n;
}

/* The README table row whose first cell names `name` ("| `a` |" or
 * "| `a`, `b` |"). */
static const char *find_row(const char *readme, const char *name) {
  char needle[80];
  snprintf(needle, sizeof(needle), "`%s`", name);
  for (const char *p = strstr(readme, needle); p; p = strstr(p + 1, needle)) {
    const char *bol = p;
    while (bol > readme && bol[-1] != '\n') bol--;
    if (strncmp(bol, "| `", 3) != 0) continue;
    const char *second = strchr(bol + 1, '|');
    if (second != NULL && p < second) return bol;
  }
  return NULL;
}

TEST(every_cap_default_is_in_the_readme) {
  int st;
  char *help = run(KPS_SERVER_BIN " --help", &st);
  ASSERT_EQ(st, 0);
  char path[600];
  snprintf(path, sizeof(path), "%s/README.md", KPS_SOURCE_DIR);
  char *readme = read_text(path);
  char *dump = run(KPS_SERVER_BIN " --plugin tcp-body-log -dump", &st);
  ASSERT_EQ(st, 0);
  cJSON *schema = cJSON_Parse(dump);
  ASSERT(schema != NULL);
  const cJSON *fields = jget(jget(cJSON_GetArrayItem(jget(jget(cJSON_GetArrayItem(jget(schema, "Plugins", NULL), 0),
                                                               "Schema", NULL), "fields", NULL), 0),
                                  "config", NULL), "fields", NULL);
  ASSERT(cJSON_IsArray(fields));

  /* 1. the server's caps: every "--max-*" / "--*-timeout" option of --help
   * has a default, and the README's cap table gives the same one */
  int checked = 0;
  for (char *line = help; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    char opt[64];
    if (sscanf(line, " --%63s", opt) != 1) continue;
    if (strncmp(opt, "max-", 4) != 0 && strstr(opt, "-timeout") == NULL) continue;
    const char *eol = strchr(line, '\n');
    const char *def = strstr(line, "(default ");
    if (def == NULL || (eol && def > eol)) FAIL("--%s has no default in --help", opt);
    double hv = strtod(def + 9, NULL);
    char needle[80];
    snprintf(needle, sizeof(needle), "| `--%s` |", opt);
    const char *row = strstr(readme, needle);
    if (row == NULL) FAIL("--%s is missing from the README's cap table", opt);
    char cells[8][256];
    int n = row_cells(row, cells, 8);
    ASSERT(n >= 2);
    double rv = readme_number(cells[1]);
    if (rv != hv) FAIL("--%s: --help says %.0f, the README %s", opt, hv, cells[1]);
    checked++;
  }
  ASSERT(checked >= 7);

  /* 2. every README cap row naming a server option is an option of --help */
  for (const char *p = strstr(readme, "| `--"); p; p = strstr(p + 1, "| `--")) {
    char opt[64];
    if (sscanf(p, "| `--%63[a-z-]`", opt) != 1) continue;
    char needle[80];
    snprintf(needle, sizeof(needle), "--%s ", opt);
    if (strstr(help, needle) == NULL) FAIL("README cap --%s is not an option of --help", opt);
  }

  /* 3. tcp-body-log: every field with a default in the schema (-dump) has
   * that default in the README's configuration table, and every number in
   * the cap table's plugin rows is the schema default */
  int fchecked = 0;
  for (const cJSON *f = fields->child; f; f = f->next) {
    const cJSON *def = jget(f->child, "default", NULL);
    const char *name = f->child->string;
    const char *row = find_row(readme, name);
    if (row == NULL) FAIL("config field %s is missing from the README", name);
    char cells[8][256];
    int n = row_cells(row, cells, 8);
    ASSERT(n >= 3);
    if (def == NULL) continue;
    if (cJSON_IsNumber(def)) {
      if (readme_number(cells[2]) != def->valuedouble)
        FAIL("%s: default %.0f in the schema, \"%s\" in the README", name, def->valuedouble, cells[2]);
    } else if (cJSON_IsBool(def)) {
      if (strstr(cells[2], cJSON_IsTrue(def) ? "true" : "false") == NULL)
        FAIL("%s: default %s in the schema, \"%s\" in the README", name, cJSON_IsTrue(def) ? "true" : "false",
             cells[2]);
    } else if (cJSON_IsArray(def)) {
      for (const cJSON *e = def->child; e; e = e->next) {
        char item[128];
        snprintf(item, sizeof(item), "`%s`", e->valuestring);
        if (strstr(cells[2], item) == NULL) FAIL("%s: default item %s missing from the README", name, item);
      }
      if (def->child == NULL && strstr(cells[2], "[]") == NULL) FAIL("%s: empty default not in the README", name);
    }
    fchecked++;
  }
  ASSERT(fchecked >= 12);
  static const char *const caprows[][2] = {{"| `queue_max_bytes` / `queue_max_entries` |", "queue_max_bytes"},
                                           {"| `context_max_bytes` / `context_ttl` |", "context_max_bytes"},
                                           {"| `max_body_size` |", "max_body_size"}};
  for (size_t i = 0; i < 3; i++) {
    const char *row = strstr(strstr(readme, "| cap | default |"), caprows[i][0]);
    if (row == NULL) FAIL("cap row %s missing", caprows[i][0]);
    char cells[8][256];
    ASSERT(row_cells(row, cells, 8) >= 2);
    double schema_default = -1;
    for (const cJSON *f = fields->child; f; f = f->next)
      if (strcmp(f->child->string, caprows[i][1]) == 0) schema_default = jget(f->child, "default", NULL)->valuedouble;
    if (readme_number(cells[1]) != schema_default)
      FAIL("cap table: %s is %s in the README, %.0f in the schema", caprows[i][1], cells[1], schema_default);
  }
  cJSON_Delete(schema);
  free(dump);
  free(readme);
  free(help);
}
