/* test_loader.c: plugins built as shared objects and loaded with
 * -plugins-directory: a good plugin is served like a built-in; a missing
 * symbol, an ABI mismatch, a duplicate name and a non-ELF file are each
 * reported with the path and the reason while the rest is still served. */
#include <sys/wait.h>
#include <unistd.h>

#include "fake_kong.h"
#include "schema_rules.h"
#include "test.h"

#ifndef KPS_TEST_PLUGINS
#error "KPS_TEST_PLUGINS names the directory of the test plugins"
#endif

/* Runs a command; returns stdout, stderr in *errout (both malloc'd). */
static char *run2(const char *cmd, char **errout, int *status) {
  char full[2048], errfile[] = "/tmp/kps-loader-err-XXXXXX";
  int fd = mkstemp(errfile);
  close(fd);
  snprintf(full, sizeof(full), "%s 2>%s", cmd, errfile);
  FILE *f = popen(full, "r");
  size_t cap = 1 << 16, len = 0, n;
  char *buf = malloc(cap);
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) len += n;
  buf[len] = '\0';
  int st = pclose(f);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  f = fopen(errfile, "r");
  *errout = malloc(cap);
  len = fread(*errout, 1, cap - 1, f);
  (*errout)[len] = '\0';
  fclose(f);
  unlink(errfile);
  return buf;
}

/* A directory holding copies of the named test plugins (NULL-ended). */
static void plugin_dir(char *dir, size_t n, const char *const *names) {
  char cmd[1024];
  snprintf(dir, n, "/tmp/kps-plugins-XXXXXX");
  ASSERT(mkdtemp(dir) != NULL);
  for (int i = 0; names[i]; i++) {
    snprintf(cmd, sizeof(cmd), "cp %s/%s.so %s/", KPS_TEST_PLUGINS, names[i], dir);
    ASSERT_EQ(system(cmd), 0);
  }
}

TEST(loaded_plugin_dumped_and_listed) {
  static const char *const only_good[] = {"good", NULL};
  char dir[64], cmd[512], *err;
  int st;
  plugin_dir(dir, sizeof(dir), only_good);
  snprintf(cmd, sizeof(cmd), "%s -plugins-directory %s --plugin c-test-good -dump", KPS_SERVER_BIN, dir);
  char *out = run2(cmd, &err, &st);
  ASSERT_EQ(st, 0);
  check_dump(out, 1); /* valid by construction: the same field table */
  ASSERT_CONTAINS(out, "\"Name\":\"c-test-good\"");
  free(out);
  free(err);
  snprintf(cmd, sizeof(cmd), "%s --plugins-directory=%s -dump-all-plugins", KPS_SERVER_BIN, dir);
  out = run2(cmd, &err, &st);
  ASSERT_EQ(st, 0);
  check_dump(out, 3);
  ASSERT_CONTAINS(out, "\"Name\":\"c-test-good\"");
  ASSERT_CONTAINS(out, "\"Name\":\"c-hello\"");
  free(out);
  free(err);
}

TEST(bad_plugins_reported_rest_served) {
  static const char *const all[] = {"good", "nosym", "abi", "dup", NULL};
  char dir[64], cmd[512], path[256], *err;
  int st;
  plugin_dir(dir, sizeof(dir), all);
  snprintf(path, sizeof(path), "%s/not-elf.so", dir);
  FILE *f = fopen(path, "w");
  fputs("this is not a shared object\n", f);
  fclose(f);
  snprintf(cmd, sizeof(cmd), "%s -plugins-directory %s -dump-all-plugins", KPS_SERVER_BIN, dir);
  char *out = run2(cmd, &err, &st);
  ASSERT_EQ(st, 0);
  check_dump(out, 3); /* c-test-good and the two built-ins */
  ASSERT_CONTAINS(out, "\"Name\":\"c-test-good\"");
  char want[512];
  snprintf(want, sizeof(want), "%s/nosym.so: no kps_plugin_entry symbol", dir);
  ASSERT_CONTAINS(err, want);
  snprintf(want, sizeof(want), "%s/abi.so: built for plugin API version %u, this server speaks %u",
           dir, 101u, 3u); /* abi.c: KPS_API_VERSION + 98 */
  ASSERT_CONTAINS(err, want);
  snprintf(want, sizeof(want), "%s/dup.so: duplicate plugin name \"c-hello\"", dir);
  ASSERT_CONTAINS(err, want);
  snprintf(want, sizeof(want), "%s/not-elf.so: cannot load", dir);
  ASSERT_CONTAINS(err, want);
  free(out);
  free(err);
}

TEST(missing_plugins_directory_exits_2) {
  char *err;
  int st;
  char *out = run2(KPS_SERVER_BIN " -plugins-directory /nonexistent/plugins -dump-all-plugins", &err, &st);
  ASSERT_EQ(st, 2);
  ASSERT_CONTAINS(err, "plugins directory /nonexistent/plugins: No such file or directory");
  free(out);
  free(err);
}

TEST(argv0_symlink_selects_loaded_plugin) {
  static const char *const only_good[] = {"good", NULL};
  char dir[64], link[128], cmd[512], *err;
  int st;
  plugin_dir(dir, sizeof(dir), only_good);
  snprintf(link, sizeof(link), "%s/c-test-good", dir);
  ASSERT_EQ(symlink(KPS_SERVER_BIN, link), 0);
  snprintf(cmd, sizeof(cmd), "%s -plugins-directory %s -dump", link, dir);
  char *out = run2(cmd, &err, &st);
  ASSERT_EQ(st, 0);
  check_dump(out, 1);
  ASSERT_CONTAINS(out, "\"Name\":\"c-test-good\"");
  free(out);
  free(err);
}

/* A server loading test plugin <so>.so and serving <plugin>; one instance
 * started with cfg and its first event's reply in *r.  Returns the instance. */
static int64_t serve_so(const char *so, const char *plugin, const char *cfg, const char *phase,
                        fk_server_t *srv, fk_client_t *k, fk_reply_t *r) {
  const char *const only[] = {so, NULL};
  static char dir[64];
  plugin_dir(dir, sizeof(dir), only);
  const char *const args[] = {"-plugins-directory", dir, NULL};
  fk_server_start(srv, plugin, args);
  fk_client_init(k, srv->socket);
  int64_t inst = fk_start_instance(k, plugin, cfg);
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, phase);
  fk_call(k, "plugin.HandleEvent", &p, r);
  msgpack_sbuffer_destroy(&p);
  return inst;
}

/* Served like a built-in: a full fake-Kong exchange through the .so. */
TEST(loaded_plugin_serves_an_exchange) {
  fk_server_t srv;
  fk_client_t k;
  fk_reply_t r;
  msgpack_sbuffer p;
  serve_so("good", "c-test-good", "{\"value\":\"from-so\"}", "access", &srv, &k, &r);
  ASSERT_EQ(r.error_str[0], 0);
  const msgpack_object *data = fk_map_get(r.result, "Data");
  ASSERT(fk_str_eq(fk_map_get(data, "Method"), "kong.response.set_header"));
  const msgpack_object *a = fk_map_get(data, "Args");
  ASSERT(fk_str_eq(&a->via.array.ptr[0], "x-loaded") && fk_str_eq(&a->via.array.ptr[1], "from-so"));
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, NULL, 0);
  fk_call(&k, "plugin.Step", &p, &r);
  msgpack_sbuffer_destroy(&p);
  ASSERT(fk_str_eq(fk_map_get(r.result, "Data"), "ret"));
  fk_reply_free(&r);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
}

/* SetPluginDir loads a directory into a running server. */
TEST(set_plugin_dir_loads_plugins) {
  static const char *const only_good[] = {"good", NULL};
  char dir[64];
  plugin_dir(dir, sizeof(dir), only_good);
  fk_server_t srv;
  fk_client_t k;
  fk_server_start(&srv, "c-hello", NULL);
  fk_client_init(&k, srv.socket);
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, "c-test-good");
  fk_call(&k, "plugin.GetPluginInfo", &p, &r);
  ASSERT_CONTAINS(r.error_str, "no plugin named \"c-test-good\"");
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, dir);
  fk_call(&k, "plugin.SetPluginDir", &p, &r);
  ASSERT(fk_str_eq(r.result, "ok"));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_init(&p);
  fk_param_cstr(&p, "c-test-good");
  fk_call(&k, "plugin.GetPluginInfo", &p, &r);
  ASSERT_EQ(r.error_str[0], 0);
  ASSERT(fk_str_eq(fk_map_get(r.result, "Version"), "1.0.0"));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
}

static int64_t misuse_counter(fk_client_t *k, const char *name) {
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call(k, "plugin.GetStatus", &p, &r);
  msgpack_sbuffer_destroy(&p);
  int64_t v = fk_int(fk_map_get(fk_map_get(fk_map_get(r.result, "Plugins"), "c-test-misuse"), name));
  fk_reply_free(&r);
  return v;
}

/* kps_call's contract (kps_plugin.h): a call while one is out returns -1
 * and sends nothing (the first call goes on); a bad format returns -1 and
 * finishes the event with an error reply Kong logs. */
TEST(kps_call_misuse_contract) {
  fk_server_t srv;
  fk_client_t k;
  fk_reply_t r;
  msgpack_sbuffer p;
  int64_t inst = serve_so("misuse", "c-test-misuse", "{}", "access", &srv, &k, &r);
  ASSERT_EQ(r.error_str[0], 0);
  const msgpack_object *a = fk_map_get(fk_map_get(r.result, "Data"), "Args");
  ASSERT(fk_str_eq(&a->via.array.ptr[0], "x-first"));
  int64_t ev = fk_int(fk_map_get(r.result, "EventId"));
  fk_reply_free(&r);
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, NULL, 0);
  fk_call(&k, "plugin.Step", &p, &r); /* exactly one reply per request: the next is this one */
  msgpack_sbuffer_destroy(&p);
  ASSERT(fk_str_eq(fk_map_get(r.result, "Data"), "ret"));
  fk_reply_free(&r);
  ASSERT_EQ(misuse_counter(&k, "second_call_failed"), 1);

  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, "rewrite");
  fk_call(&k, "plugin.HandleEvent", &p, &r);
  msgpack_sbuffer_destroy(&p);
  ASSERT_STREQ(r.error_str, "plugin c-test-misuse made an invalid PDK call");
  ASSERT(r.result->type == MSGPACK_OBJECT_NIL);
  fk_reply_free(&r);
  ASSERT_EQ(misuse_counter(&k, "bad_format_failed"), 1);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
}
