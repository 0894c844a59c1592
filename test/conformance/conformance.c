/* conformance.c: generated plugin configs sent to the real server as Kong
 * sends them (test/conformance/README.md).
 *
 * For one plugin: takes its -dump, runs gen_cases.lua (luajit) on it, which
 * prints every generated config with Kong's verdict (Kong's validation,
 * test/e2e/gateway/schema.lua) and, for the accepted ones, the Config JSON
 * Kong would send; then sends each case as StartInstance over the socket,
 * CloseInstance after each one the server accepts (so at most one instance
 * is alive: --max-instances never matters).  Fails when
 *   - the server refuses a config Kong accepts (Kong would answer HTTP 500
 *     on every request of the route: plugin.lua get_instance_id raises),
 *   - the server accepts it but holds other values than Kong sent (the
 *     Config in the StartInstance result, R10/R25, compared field by field
 *     with the generator's expectation: e.g. a string cut at a NUL byte),
 *   - Kong accepts a config it cannot encode (NaN/Inf: Kong sends no Config
 *     at all, the same 500): a gap in the plugin's schema,
 *   - the server crashes, hangs (5 s per call) or exits uncleanly on any
 *     case, the refused ones included.
 * That is PROTOCOL.md R30-R33: every rule StartInstance applies is in the
 * schema, so the server accepts whatever Kong accepts.
 * Prints the counts per plugin and every failing case with the server's
 * error.  Run as `conformance <test>`; the generated cases stay in
 * $KPS_CONFORMANCE_KEEP/<plugin>.cases when that is set. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_kong.h"
#include "test.h"

#ifndef KPS_CONFORMANCE_DIR
#error "KPS_CONFORMANCE_DIR names test/conformance (gen_cases.lua)"
#endif
#ifndef KPS_CONFORMANCE_PLUGINS
#error "KPS_CONFORMANCE_PLUGINS names the directory holding c-size-limit.so"
#endif
#ifndef KPS_LUAJIT
#define KPS_LUAJIT "luajit"
#endif

/* the case being sent, named if the test dies on it (crash, hang) */
static char current_case[600];
static const char *current_plugin = "";

static void report_current(void) {
  if (current_case[0]) fprintf(stderr, "(while sending %s case %s)\n", current_plugin, current_case);
}

/* Bytes as a printable one-line string (server errors, labels). */
static void print_escaped(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c >= 0x7f || c == '\\')
      fprintf(f, "\\x%02x", c);
    else
      fputc(c, f);
  }
}

/* ---- the expected values (cases.lua _M.expectation) ------------------ */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* hex up to ';' into buf; returns the length, -1 when malformed */
static long read_hex(const char **p, char *buf, size_t cap) {
  size_t n = 0;
  const char *s = *p;
  while (*s && *s != ';') {
    int hi = hexval(s[0]), lo = s[1] ? hexval(s[1]) : -1;
    if (hi < 0 || lo < 0 || n >= cap) return -1;
    buf[n++] = (char)(hi << 4 | lo);
    s += 2;
  }
  if (*s != ';') return -1;
  *p = s + 1;
  return (long)n;
}

static int is_num(const msgpack_object *o, double *d) {
  switch (o->type) {
  case MSGPACK_OBJECT_POSITIVE_INTEGER: *d = (double)o->via.u64; return 1;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: *d = (double)o->via.i64; return 1;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: *d = o->via.f64; return 1;
  default: return 0;
  }
}

static char *big; /* scratch for strings (up to the largest generated) */
#define BIG_CAP (1u << 20)

/* 1 when o holds the value at *p (advanced past it); else 0 and why.  Maps
 * are compared on the expected keys only (the server adds its defaults). */
static int check_value(const char **p, const msgpack_object *o, char *why, size_t n) {
  char c = *(*p)++;
  double d;
  long len;
  if (big == NULL) big = malloc(BIG_CAP);
  switch (c) {
  case 'N':
    if (o->type == MSGPACK_OBJECT_NIL) return 1;
    snprintf(why, n, "expected null, got type %d", o->type);
    return 0;
  case 'T':
  case 'F':
    if (o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean == (c == 'T')) return 1;
    snprintf(why, n, "expected %s", c == 'T' ? "true" : "false");
    return 0;
  case 'n': {
    char *end;
    double want = strtod(*p, &end);
    if (*end != ';') FAIL("malformed number in an expectation");
    *p = end + 1;
    if (is_num(o, &d) && d == want) return 1;
    if (is_num(o, &d))
      snprintf(why, n, "expected %.17g, got %.17g", want, d);
    else
      snprintf(why, n, "expected the number %.17g, got type %d", want, o->type);
    return 0;
  }
  case 's':
    len = read_hex(p, big, BIG_CAP);
    if (len < 0) FAIL("malformed string in an expectation");
    if ((o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN) && o->via.str.size == (size_t)len &&
        memcmp(o->via.str.ptr, big, (size_t)len) == 0)
      return 1;
    if (o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN)
      snprintf(why, n, "expected a string of %ld bytes, got %u bytes (other bytes or truncated)", len,
               o->via.str.size);
    else
      snprintf(why, n, "expected a string, got type %d", o->type);
    return 0;
  case 'e':
    if ((o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 0) ||
        (o->type == MSGPACK_OBJECT_MAP && o->via.map.size == 0))
      return 1;
    snprintf(why, n, "expected an empty array or map, got type %d", o->type);
    return 0;
  case 'a': {
    char *end;
    long cnt = strtol(*p, &end, 10);
    if (*end != ';') FAIL("malformed array in an expectation");
    *p = end + 1;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != (uint32_t)cnt) {
      snprintf(why, n, "expected an array of %ld", cnt);
      return 0;
    }
    for (long i = 0; i < cnt; i++) {
      if (!check_value(p, &o->via.array.ptr[i], why, n)) {
        size_t l = strlen(why);
        snprintf(why + l, n - l, " (item %ld)", i + 1);
        return 0;
      }
    }
    return 1;
  }
  case 'o': {
    char *end, key[256];
    long cnt = strtol(*p, &end, 10);
    if (*end != ';') FAIL("malformed map in an expectation");
    *p = end + 1;
    if (o->type != MSGPACK_OBJECT_MAP) {
      snprintf(why, n, "expected a map, got type %d", o->type);
      return 0;
    }
    for (long i = 0; i < cnt; i++) {
      long kl = read_hex(p, key, sizeof(key) - 1);
      if (kl < 0) FAIL("malformed key in an expectation");
      key[kl] = '\0';
      const msgpack_object *v = NULL;
      for (uint32_t j = 0; j < o->via.map.size; j++) {
        const msgpack_object *mk = &o->via.map.ptr[j].key;
        if ((mk->type == MSGPACK_OBJECT_STR || mk->type == MSGPACK_OBJECT_BIN) && mk->via.str.size == (size_t)kl &&
            memcmp(mk->via.str.ptr, key, (size_t)kl) == 0)
          v = &o->via.map.ptr[j].val;
      }
      if (v == NULL) {
        snprintf(why, n, "%.100s: missing", key);
        return 0;
      }
      char sub[300];
      if (!check_value(p, v, sub, sizeof(sub))) {
        snprintf(why, n, "%.100s: %.290s", key, sub);
        return 0;
      }
    }
    return 1;
  }
  default:
    FAIL("malformed expectation at '%c'", c);
  }
  return 0;
}

static void run(const char *cmd) {
  int st = system(cmd);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    FAIL("command failed (status %d): %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, cmd);
}

typedef struct {
  const char *verdict, *label, *config, *note;
  size_t config_len;
} gen_case_t;

/* "verdict\tlabel\tconfig\tnote\n" in place; 0 when the line is malformed. */
static int parse_case(char *line, size_t len, gen_case_t *c) {
  char *f[4];
  int n = 0;
  if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
  f[n++] = line;
  for (size_t i = 0; i < len && n < 4; i++)
    if (line[i] == '\t') {
      line[i] = '\0';
      f[n++] = line + i + 1;
    }
  if (n != 4) return 0;
  c->verdict = f[0];
  c->label = f[1];
  c->config = f[2];
  c->config_len = strlen(f[2]);
  c->note = f[3];
  return 1;
}

/* StartInstance as Kong's mp_rpc.lua packs it: {Name, Config}, or {Name}
 * when cjson could not encode the config (Config = nil). */
static void start_param(msgpack_sbuffer *sb, const char *name, const char *config, size_t len) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, config ? 2 : 1);
  fk_pack_cstr(&pk, "Name");
  fk_pack_cstr(&pk, name);
  if (config) {
    fk_pack_cstr(&pk, "Config");
    fk_pack_str(&pk, config, len);
  }
}

/* 1 and the instance id when the server accepted (*mismatch: why the
 * Config it returns differs from `expect`, "" when it does not; expect NULL:
 * not compared), 0 and its error. */
static int check_value(const char **p, const msgpack_object *o, char *why, size_t n);

static int start_instance(fk_client_t *k, const char *plugin, const char *config, size_t len,
                          const char *expect, int64_t *id, char *err, size_t errlen) {
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  start_param(&p, plugin, config, len);
  fk_call(k, "plugin.StartInstance", &p, &r);
  msgpack_sbuffer_destroy(&p);
  int ok = r.error_str[0] == '\0';
  err[0] = '\0';
  if (ok) {
    const msgpack_object *o = fk_map_get(r.result, "Id");
    if (o == NULL || (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER && o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
      FAIL("StartInstance accepted without an integer Id");
    *id = fk_int(o);
    if (expect) {
      const char *e = expect;
      const msgpack_object *cfg = fk_map_get(r.result, "Config");
      if (cfg == NULL)
        snprintf(err, errlen, "the StartInstance result has no Config");
      else if (check_value(&e, cfg, err, errlen) && *e != '\0')
        snprintf(err, errlen, "trailing expectation %.40s", e);
    }
  } else {
    snprintf(err, errlen, "%s", r.error_str);
  }
  fk_reply_free(&r);
  return ok;
}

static void close_instance(fk_client_t *k, int64_t id) {
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, id);
  fk_call(k, "plugin.CloseInstance", &p, &r);
  msgpack_sbuffer_destroy(&p);
  if (r.error_str[0]) FAIL("CloseInstance(%lld): %s", (long long)id, r.error_str);
  fk_reply_free(&r);
}

typedef struct {
  int cases, kong_accepts, kong_refuses, noencode, server_accepts, altered, failures, lax;
} counts_t;

/* bases: NULL-ended "--base" arguments ("name=value") for gen_cases.lua;
 * a "json:" prefix passes the value as JSON (--base-json: numbers, arrays).
 * plugins_dir: -plugins-directory for a plugin built as a .so, or NULL. */
static void run_plugin(const char *plugin, const char *plugins_dir, const char *const *bases) {
  char dir[64], cmd[4096], dump[128], out[128];
  size_t n;
  current_plugin = plugin;
  signal(SIGPIPE, SIG_IGN); /* a crashed server shows as a failed write */
  atexit(report_current);
  snprintf(dir, sizeof(dir), "/tmp/kps-conformance-XXXXXX");
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(dump, sizeof(dump), "%s/dump.json", dir);
  snprintf(out, sizeof(out), "%s/cases.txt", dir);

  /* 1. the schema Kong would get from the query command */
  n = (size_t)snprintf(cmd, sizeof(cmd), "%s --plugin %s", KPS_SERVER_BIN, plugin);
  if (plugins_dir) n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " -plugins-directory %s", plugins_dir);
  snprintf(cmd + n, sizeof(cmd) - n, " -dump > %s", dump);
  run(cmd);

  /* 2. the cases, with Kong's verdicts */
  n = (size_t)snprintf(cmd, sizeof(cmd), "%s %s/gen_cases.lua --dump %s", KPS_LUAJIT, KPS_CONFORMANCE_DIR, dump);
  for (int i = 0; bases && bases[i]; i++) {
    int json = strncmp(bases[i], "json:", 5) == 0;
    n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " --base%s '%s'", json ? "-json" : "",
                          bases[i] + (json ? 5 : 0));
  }
  snprintf(cmd + n, sizeof(cmd) - n, " > %s", out);
  if (n >= sizeof(cmd) - 200) FAIL("command too long");
  run(cmd);
  const char *keep = getenv("KPS_CONFORMANCE_KEEP");
  if (keep && *keep) {
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp %s '%s/%s.cases'", keep, out, keep, plugin);
    run(cmd);
  }

  /* 3. the server, every case */
  const char *args[] = {"-plugins-directory", plugins_dir, NULL};
  fk_server_t srv;
  fk_client_t k;
  fk_server_start(&srv, plugin, plugins_dir ? args : NULL);
  fk_client_init(&k, srv.socket);

  FILE *f = fopen(out, "r");
  ASSERT(f != NULL);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int end_count = -1;
  counts_t c = {0};
  char err[600];
  while ((len = getline(&line, &cap, f)) > 0) {
    if (strncmp(line, "END\t", 4) == 0) {
      end_count = atoi(line + 4);
      break;
    }
    gen_case_t gc;
    if (!parse_case(line, (size_t)len, &gc)) FAIL("malformed line %d of %s", c.cases + 1, out);
    snprintf(current_case, sizeof(current_case), "%s", gc.label);
    c.cases++;
    int64_t id = 0;
    if (strcmp(gc.verdict, "accept") == 0) {
      c.kong_accepts++;
      if (start_instance(&k, plugin, gc.config, gc.config_len, gc.note, &id, err, sizeof(err))) {
        c.server_accepts++;
        close_instance(&k, id);
        if (err[0]) {
          /* accepted, but not with Kong's values (e.g. a string cut at a NUL) */
          c.failures++;
          c.altered++;
          fprintf(stderr, "FAIL %s: Kong accepts, the server accepts other values: %s\n  ", plugin, gc.label);
          print_escaped(stderr, err, strlen(err));
          fprintf(stderr, "\n");
        }
      } else {
        c.failures++;
        fprintf(stderr, "FAIL %s: Kong accepts, the server refuses: %s\n  server: ", plugin, gc.label);
        print_escaped(stderr, err, strlen(err));
        fprintf(stderr, "\n  Config: ");
        print_escaped(stderr, gc.config, gc.config_len > 300 ? 300 : gc.config_len);
        fprintf(stderr, "%s\n", gc.config_len > 300 ? "..." : "");
      }
    } else if (strcmp(gc.verdict, "noencode") == 0) {
      /* Kong stores it, then cannot encode it: StartInstance without Config */
      c.kong_accepts++;
      c.noencode++;
      c.failures++;
      int accepted = start_instance(&k, plugin, NULL, 0, NULL, &id, err, sizeof(err));
      if (accepted) close_instance(&k, id);
      fprintf(stderr, "FAIL %s: Kong accepts but cannot encode (%s), so it sends no Config: %s\n"
              "  the schema must refuse this value; server without Config: %s\n",
              plugin, gc.note, gc.label, accepted ? "accepted" : err);
    } else if (strcmp(gc.verdict, "refuse") == 0) {
      c.kong_refuses++;
      if (start_instance(&k, plugin, gc.config, gc.config_len, NULL, &id, err, sizeof(err))) {
        c.lax++;
        close_instance(&k, id);
        if (c.lax <= 10) fprintf(stderr, "note %s: Kong refuses, the server accepts: %s (Kong: %s)\n",
                                 plugin, gc.label, gc.note);
      }
    } else {
      FAIL("unknown verdict %s on line %d", gc.verdict, c.cases);
    }
  }
  current_case[0] = '\0';
  free(line);
  fclose(f);
  if (end_count != c.cases) FAIL("%s: %d cases read, the generator announced %d", out, c.cases, end_count);
  ASSERT(fk_server_alive(&srv));
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);

  printf("%s: %d cases; Kong accepts %d (%d of them it cannot encode), the server accepts %d of those "
         "(%d with other values than Kong's); Kong refuses %d (the server accepts %d of them); failures %d\n",
         plugin, c.cases, c.kong_accepts, c.noencode, c.server_accepts, c.altered, c.kong_refuses, c.lax,
         c.failures);
  fflush(stdout);
  /* the generator must have exercised both sides of the schema */
  ASSERT(c.kong_accepts > 0);
  ASSERT(c.kong_refuses > 0);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  run(cmd);
  if (c.failures == 0) { /* the server's prefix (its log) stays when something failed */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", srv.prefix);
    run(cmd);
  } else {
    fprintf(stderr, "server log: %s\n", srv.log);
  }
  if (c.failures) FAIL("%s: %d of %d Kong-accepted configs fail (listed above)", plugin, c.failures, c.kong_accepts);
}

/* tcp-body-log's file fields are read by the server only (readable PEM
 * files: Kong cannot check that), so the generator mutates around valid
 * files: a CA, and a client certificate and key signed by it, made here
 * with openssl by test/sink/gen-certs.sh.  With them, the cases that turn
 * `tls` on load real files; the cases that mutate a file field keep `tls`
 * off (the base), where the server does not open the files. */
static char certs[64];

static void remove_certs(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", certs);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", certs);
}

TEST(tcp_body_log) {
  char cmd[512];
  static char ca[128], cert[128], key[128];
  snprintf(certs, sizeof(certs), "/tmp/kps-conformance-certs-XXXXXX");
  ASSERT(mkdtemp(certs) != NULL);
  atexit(remove_certs); /* also when a check fails */
  snprintf(cmd, sizeof(cmd), "sh %s/test/sink/gen-certs.sh %s >/dev/null 2>&1", KPS_SOURCE_DIR, certs);
  run(cmd);
  snprintf(ca, sizeof(ca), "tls_ca_file=%s/ca.pem", certs);
  snprintf(cert, sizeof(cert), "tls_client_cert=%s/client.pem", certs);
  snprintf(key, sizeof(key), "tls_client_key=%s/client.key", certs);
  /* host and port are no longer required (hosts is the other way): the
   * base names one collector, the only_one_of and mutually_required checks
   * get their combinations from the generator. */
  const char *bases[] = {"host=127.0.0.1", "json:port=5170", ca, cert, key, NULL};
  run_plugin("tcp-body-log", NULL, bases);
}

TEST(c_hello) { run_plugin("c-hello", NULL, NULL); }

/* the out-of-tree example, built as a .so from examples/plugins/c-size-limit */
TEST(c_size_limit) { run_plugin("c-size-limit", KPS_CONFORMANCE_PLUGINS, NULL); }
