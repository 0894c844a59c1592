/* test_regressions.c: bugs in src/ found while hardening (issue 6), one
 * test each, written failing and fixed in cc146b1 and 2656c9f.  Each comment says how
 * the bug was found and what it was; docs/reliability.md has the list. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "kong_helpers.h"

static fk_server_t srv;
static fk_client_t k;
static fk_collector_t col;

/* Stops what the test started, then fails. */
static void stop_all(void) {
  if (srv.pid > 0) kill(srv.pid, SIGKILL);
  fk_collector_stop(&col);
}

#define BUG_BACK(...)           \
  do {                          \
    stop_all();                 \
    FAIL("regression: " __VA_ARGS__); \
  } while (0)

static int64_t up_tbl(const char *extra_config) {
  char cfg[1024];
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d%s%s}", col.port, extra_config ? "," : "",
           extra_config ? extra_config : "");
  return fk_start_instance(&k, "tcp-body-log", cfg);
}

static void down(void) {
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
}

/* serialize: NULL for kh_serialize's, else a JSON text in which "@KEY"
 * stands for the join key. */
static char *one_record(int64_t inst, const char *req_body, const char *serialize, const char *req_headers) {
  char ser[8192];
  char *key = kh_response_phase(&k, inst, req_body, strlen(req_body), "{}", 2);
  if (serialize != NULL) {
    const char *at = strstr(serialize, "@KEY");
    ASSERT(at != NULL);
    snprintf(ser, sizeof(ser), "%.*s%s%s", (int)(at - serialize), serialize, key, at + 4);
  } else {
    kh_serialize(ser, sizeof(ser), key, "application/json", req_headers, NULL);
  }
  kh_log_phase(&k, inst, ser);
  free(key);
  ASSERT_EQ(fk_collector_wait_lines(&col, 1, 5000), 1);
  return fk_collector_read(&col);
}

/* body.c tbl_json_mask compares keys as raw bytes, escapes undecoded: a key
 * written "pass\u0077ord" -- or "contrase\u00f1a", as Python's json.dumps
 * writes every non-ASCII key by default -- is not masked, although every
 * JSON parser upstream reads it as the configured name.
 * Fixed (cc146b1): decode the key's escapes (\uXXXX with surrogate pairs, \" \\ \/ \b
 * \f \n \r \t) into a small buffer before comparing; a key that does not fit
 * the buffer is longer than every configured name and cannot match. */
TEST(json_mask_misses_escaped_keys) {
  int64_t inst = up_tbl("\"redact_json_fields\":[\"password\",\"contrase\xc3\xb1" "a\"]");
  char *line = one_record(inst, "{\"pass\\u0077ord\":\"hunter2\",\"contrase\\u00f1a\":\"s3cr3t\"}", NULL, NULL);
  int leaked = strstr(line, "hunter2") != NULL || strstr(line, "s3cr3t") != NULL;
  if (leaked) BUG_BACK("redacted JSON fields written with escapes are logged: %s", line);
  free(line);
  down();
}

/* record.c add_body/add_skip add "body", "body_encoding", "body_size", ...
 * with cJSON_Add*ToObject: when serialize already has such a key (another
 * plugin's kong.log.set_serialize_value("request.body", ...)), the record
 * holds the key twice, and a consumer keeping the first occurrence sees the
 * other plugin's (unredacted, untruncated) value.
 * Fixed (cc146b1): remove existing body* keys first (cJSON_DeleteItemFromObjectCaseSensitive)
 * or use cJSON_ReplaceItemInObjectCaseSensitive. */
TEST(record_body_key_already_in_serialize) {
  int64_t inst = up_tbl(NULL);
  static const char fmt[] = "{\"request\":{\"method\":\"POST\",\"headers\":{},\"body\":\"set by another plugin\"},"
                            "\"response\":{\"status\":200,\"headers\":{},\"body_size\":1},\"upstream_uri\":\"/\","
                            "\"tries\":[{}],\"tcp_body_log_exchange\":\"@KEY\"}";
  char *line = one_record(inst, "ours", fmt, NULL);
  cJSON *j = cJSON_Parse(line);
  ASSERT(j != NULL);
  int bodies = 0, sizes = 0;
  for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "request")->child; c; c = c->next)
    bodies += strcmp(c->string, "body") == 0;
  for (const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "response")->child; c; c = c->next)
    sizes += strcmp(c->string, "body_size") == 0;
  if (bodies != 1 || sizes != 1)
    BUG_BACK("the record has %d \"body\" keys in request and %d \"body_size\" keys in response: %s", bodies,
              sizes, line);
  cJSON_Delete(j);
  free(line);
  down();
}

/* config.c kps__config_parse validates the first occurrence of a key; for a
 * null first occurrence it deletes that one and appends the default, so a
 * second occurrence of any type becomes the one the getters read.  With
 * "redact_headers":null,"redact_headers":5 the config is accepted and
 * kps_config_array_len reads 5 as no list: nothing is redacted.
 * Fixed (cc146b1): refuse a Config with a key given twice ("config.<name>: given more
 * than once"), or validate the occurrence the getters will read (delete
 * every occurrence before adding the default). */
TEST(config_duplicate_key_bypasses_validation) {
  char cfg[512];
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d,\"redact_headers\":null,\"redact_headers\":5}",
           col.port);
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_start_instance(&p, "tcp-body-log", cfg);
  fk_call(&k, "plugin.StartInstance", &p, &r);
  msgpack_sbuffer_destroy(&p);
  if (r.error_str[0] == 0) {
    int64_t inst = fk_int(fk_map_get(r.result, "Id"));
    fk_reply_free(&r);
    char *line = one_record(inst, "x", NULL, ",\"authorization\":\"Bearer DUPSECRET\"");
    if (strstr(line, "DUPSECRET") != NULL) BUG_BACK("a duplicate key disabled the default header redaction: %s", line);
    BUG_BACK("a Config with a key given twice was accepted");
  }
  ASSERT_STREQ(r.error_str, "config.redact_headers: given more than once");
  fk_reply_free(&r);
  down();
}

/* sink_tls.c kps__sink_tls_readable and OpenSSL open tls_ca_file (and the
 * client certificate and key) with a blocking fopen on the event loop: a
 * path naming a FIFO (or a device, or a file on a hung network mount)
 * blocks StartInstance, and with it every RPC of every Kong worker, for
 * good.
 * Fixed (cc146b1): open with O_RDONLY|O_NONBLOCK|O_CLOEXEC, fstat, refuse anything
 * that is not a regular file (and files over a few MiB) naming the field,
 * then load the PEM from that descriptor (BIO_new_fd / PEM_X509_INFO_read_bio
 * + X509_STORE_add_cert, SSL_CTX_use_certificate_chain from a BIO) so the
 * checked file is the one loaded. */
TEST(tls_ca_file_fifo_stalls_the_server) {
  char dir[] = "/tmp/kps-fifo-XXXXXX", fifo[300], cfg[600];
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(fifo, sizeof(fifo), "%s/ca.pem", dir);
  ASSERT_EQ(mkfifo(fifo, 0600), 0);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":9,\"tls\":true,\"tls_ca_file\":\"%s\"}", fifo);
  msgpack_sbuffer p, req;
  msgpack_sbuffer_init(&p);
  msgpack_sbuffer_init(&req);
  fk_param_start_instance(&p, "tcp-body-log", cfg);
  fk_build_request(&req, 1, "plugin.StartInstance", p.data, p.size);
  fk_conn_t *c = fk_connect(srv.socket);
  fk_send(c, req.data, req.size, FK_SEND_WHOLE, NULL);
  fk_reply_t r;
  int answered = fk_recv(c, 1, &r, 3000) == 0;
  /* meanwhile, another connection */
  fk_conn_t *other = fk_connect(srv.socket);
  msgpack_sbuffer_clear(&req);
  fk_build_request(&req, 2, "plugin.GetStatus", "\xc0", 1);
  fk_send(other, req.data, req.size, FK_SEND_WHOLE, NULL);
  fk_reply_t r2;
  int others = fk_recv(other, 2, &r2, 3000) == 0;
  /* unblock the server: a writer that closes at once gives it EOF */
  int w = open(fifo, O_WRONLY | O_NONBLOCK);
  if (w >= 0) close(w);
  if (answered) fk_reply_free(&r);
  if (others) fk_reply_free(&r2);
  fk_conn_close(c);
  fk_conn_close(other);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_destroy(&req);
  if (!answered || !others)
    BUG_BACK("tls_ca_file naming a FIFO: StartInstance %s, another connection %s within 3 s",
              answered ? "answered" : "not answered", others ? "served" : "not served");
  ASSERT_CONTAINS(r.error_str, "tls_ca_file");
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  unlink(fifo);
  rmdir(dir);
}

/* CMakeLists.txt sets KPS_PLUGIN_DIR after add_subdirectory(src), so src/
 * compiles KPS_DEFAULT_PLUGIN_DIR="" : --help prints "(default )" and the
 * default plugins directory (README: /usr/local/lib/kong-c-pluginserver/plugins)
 * is never loaded.
 * Fixed (cc146b1): move set(KPS_PLUGIN_DIR ...) above add_subdirectory(src). */
TEST(help_defaults_match_readme_usage) {
  char path[600], cmd[700];
  snprintf(path, sizeof(path), "%s/README.md", KPS_SOURCE_DIR);
  FILE *f = fopen(path, "r");
  ASSERT(f != NULL);
  static char readme[1 << 17], help[1 << 14];
  readme[fread(readme, 1, sizeof(readme) - 1, f)] = '\0';
  fclose(f);
  snprintf(cmd, sizeof(cmd), "%s --help", KPS_SERVER_BIN);
  f = popen(cmd, "r");
  help[fread(help, 1, sizeof(help) - 1, f)] = '\0';
  pclose(f);
  /* every "(default ...)" of the README's usage block is in --help, and
   * no default in --help is empty */
  int n = 0;
  for (const char *p = strstr(readme, "(default "); p; p = strstr(p + 1, "(default ")) {
    const char *bol = p, *end = strchr(p, ')');
    while (bol > readme && bol[-1] != '\n') bol--;
    char opt[64], def[300];
    if (sscanf(bol, " %63s", opt) != 1 || opt[0] != '-' || end == NULL) continue;
    snprintf(def, sizeof(def), "%.*s", (int)(end - p + 1), p);
    const char *h = strstr(help, opt);
    const char *heol = h ? strchr(h, '\n') : NULL;
    const char *hd = h ? strstr(h, def) : NULL;
    if (h == NULL || hd == NULL || (heol && hd > heol))
      BUG_BACK("README usage says %s %s, --help says: %.*s", opt, def,
                h ? (int)(heol ? heol - h : (long)strlen(h)) : 4, h ? h : "none");
    n++;
  }
  if (strstr(help, "(default )") != NULL) BUG_BACK("--help prints an empty default");
  ASSERT(n >= 5);
}

/* dispatch.c kps__dispatch: an empty method name decodes with a NULL
 * pointer (msgpack-c), which is passed to memchr: undefined behaviour
 * (UBSan: "null pointer passed as argument 1, which is declared to never
 * be null"); a build with -fsanitize=undefined aborts here.  Reproduces
 * only in a -DKPS_SANITIZE=undefined build, as CI's ASan+UBSan stage runs
 * it (fuzz_rpc found it).
 * Fixed (cc146b1): test mlen before memchr, or as_str() returning "" for a NULL pointer. */
TEST(empty_method_name_passes_null_to_memchr) {
  fk_server_start(&srv, "c-hello", NULL);
  static const unsigned char msg[] = {0x94, 0x00, 0x05, 0xa0, 0x90};
  fk_conn_t *c = fk_connect(srv.socket);
  fk_send(c, msg, sizeof(msg), FK_SEND_WHOLE, NULL);
  fk_reply_t r;
  if (fk_recv(c, 5, &r, 5000) != 0 || !fk_server_alive(&srv))
    BUG_BACK("an empty method name killed the server (build with -fsanitize=undefined)");
  ASSERT_STREQ(r.error_str, "RPC for  is not supported");
  fk_reply_free(&r);
  fk_conn_close(c);
  ASSERT_EQ(fk_server_stop(&srv), 0);
}

/* record.c (c3eb989, the splicing builder) copies nested values of
 * serialize byte for byte, whitespace included: a serialize with a line
 * break between two tokens of a nested value gives a record of several
 * lines, and a line-oriented collector (Logstash, Fluent Bit, Vector)
 * splits it into invalid JSON lines.  Kong's cjson never writes such
 * whitespace, but the record's framing should not depend on it.
 * Fixed (2656c9f): whitespace between tokens is compacted.  Found by
 * fuzz_record. */
TEST(record_is_one_line_whatever_the_whitespace) {
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  char cfg[256], ser[1024];
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d}", col.port);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  char *key = kh_response_phase(&k, inst, "a", 1, "b", 1);
  snprintf(ser, sizeof(ser),
           "{\"request\":{\"headers\":{}},\"route\":{\n  \"paths\": [\n    \"/\"\n  ]\n},"
           "\"tcp_body_log_exchange\":\"%s\"}",
           key);
  free(key);
  kh_log_phase(&k, inst, ser);
  int lines = fk_collector_wait_lines(&col, 2, 2000);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
  if (lines != 1) FAIL("regression: one record arrived as %d lines", lines);
}
