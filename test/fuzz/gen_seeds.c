/* gen_seeds.c: writes the seed corpora of the fuzz targets.
 *
 *   fuzz-seeds <out: test/fuzz/corpus> <proto/fixtures/kong-wire> <shared kong-wire fixtures>
 *
 * fuzz_rpc: Kong's recorded client streams (proto/fixtures/kong-wire, with
 * the reference plugins' names and configs replaced by c-hello and
 * tcp-body-log ones, and as recorded), whole c-hello and tcp-body-log
 * exchanges packed as Kong packs them (ids 0, 1, ... and "@k0" join keys,
 * which fuzz_rpc maps to the real ones), and hostile streams.
 * fuzz_config: configs for both plugins, good and bad.
 * fuzz_record: the serialize lines of the shared fixtures' sink.jsonl with
 * bodies and options.  Inputs over 16 KiB are left out. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <msgpack.h>

#define MAX_SEED 16384

static const char *outdir;
static int nwritten;

static void write_seed(const char *target, const char *name, const uint8_t hdr[4], const void *data,
                       size_t len) {
  char path[4096];
  if (len + (hdr ? 4 : 0) > MAX_SEED) return;
  snprintf(path, sizeof(path), "%s/%s", outdir, target);
  mkdir(path, 0755);
  snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    exit(1);
  }
  if (hdr) fwrite(hdr, 1, 4, f);
  fwrite(data, 1, len, f);
  fclose(f);
  nwritten++;
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  *len = fread(buf, 1, (size_t)n, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

/* ---- packing as Kong's lua-MessagePack does (string_compat) ------------ */

static void str(msgpack_packer *pk, const char *s, size_t n) {
  unsigned char h[5];
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
static void cstr(msgpack_packer *pk, const char *s) { str(pk, s, strlen(s)); }

static msgpack_sbuffer sb;
static msgpack_packer pk;
static int64_t msgid;

static void begin(void) {
  msgpack_sbuffer_clear(&sb);
  msgid = 0;
}

/* [0, msgid, method, [ -- the caller packs the one parameter */
static void req(const char *method) {
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, 0);
  msgpack_pack_int64(&pk, ++msgid);
  cstr(&pk, method);
  msgpack_pack_array(&pk, 1);
}

static void start_instance(const char *name, const char *config) {
  req("plugin.StartInstance");
  msgpack_pack_map(&pk, 2);
  cstr(&pk, "Name");
  cstr(&pk, name);
  cstr(&pk, "Config");
  cstr(&pk, config);
}

static void handle_event(int inst, const char *phase) {
  req("plugin.HandleEvent");
  msgpack_pack_map(&pk, 2);
  cstr(&pk, "InstanceId");
  msgpack_pack_int(&pk, inst);
  cstr(&pk, "EventName");
  cstr(&pk, phase);
}

/* kind: 0 no Data, 1 str, 2 bin */
static void step_m(const char *method, int ev, int kind, const char *data, size_t len) {
  req(method);
  msgpack_pack_map(&pk, kind ? 2 : 1);
  if (kind) {
    cstr(&pk, "Data");
    if (kind == 1) str(&pk, data, len);
    else msgpack_pack_bin_with_body(&pk, data, len);
  }
  cstr(&pk, "EventId");
  msgpack_pack_int(&pk, ev);
}
static void step(int ev, int kind, const char *data) { step_m("plugin.Step", ev, kind, data, data ? strlen(data) : 0); }

static void int_param(const char *method, int64_t v) {
  req(method);
  msgpack_pack_int64(&pk, v);
}

static void emit(const char *name, uint8_t flags) {
  uint8_t hdr[4] = {flags, (uint8_t)(nwritten * 37), (uint8_t)(nwritten * 11), 20};
  write_seed("fuzz_rpc", name, hdr, sb.data, sb.size);
}

#define TBL_CFG "{\"host\":\"127.0.0.1\",\"port\":5170,\"__seq__\":1,\"route_id\":null}"
#define SERIALIZE(extra)                                                                       \
  "{\"request\":{\"uri\":\"/echo\",\"method\":\"POST\",\"headers\":{\"host\":\"h\","           \
  "\"content-type\":\"application/json\",\"authorization\":\"Bearer t0k3n\","                   \
  "\"content-length\":\"16\"},\"size\":87},\"upstream_uri\":\"/echo\",\"response\":{\"status\":200," \
  "\"headers\":{\"content-type\":\"text/plain\",\"set-cookie\":\"s=1\"},\"size\":9},"           \
  "\"tries\":[{\"ip\":\"127.0.0.1\",\"port\":8080}],\"source\":\"service\"" extra "}"

/* The response phase and the log phase of one tcp-body-log exchange. */
static void tbl_response(int inst, int ev, const char *req_body, int resp_kind, const char *resp_body) {
  handle_event(inst, "response");
  step(ev, 0, NULL);                         /* set_serialize_value -> nil */
  step(ev, req_body ? 1 : 0, req_body);      /* $request_body */
  step(ev, resp_kind, resp_body);            /* get_raw_body */
}
static void tbl_log(int inst, int ev, const char *serialize) {
  handle_event(inst, "log");
  step(ev, 1, serialize);
}

static void rpc_seeds(void) {
  /* c-hello, as in proto fixture order */
  begin();
  start_instance("c-hello", "{\"message\":\"fuzz\"}");
  handle_event(0, "access");
  step(0, 1, "example.com");
  step(0, 0, NULL);
  int_param("plugin.InstanceStatus", 0);
  int_param("plugin.GetStatus", 0);
  int_param("plugin.CloseInstance", 0);
  handle_event(0, "access");
  emit("c-hello-exchange", 0x00);

  begin();
  start_instance("c-hello", "{}");
  handle_event(0, "access");
  step_m("plugin.StepError", 0, 0, NULL, 0);
  step(0, 1, "x");
  handle_event(0, "access");
  step_m("plugin.StepMultiMap", 1, 1, "y", 1);
  step_m("plugin.StepCredential", 1, 0, NULL, 0);
  emit("c-hello-step-variants-2conns", 0x01);

  /* tcp-body-log: whole exchanges */
  begin();
  start_instance("tcp-body-log", TBL_CFG);
  tbl_response(0, 0, "{\"user\":\"ann\",\"password\":\"hunter2\"}", 2, "{\"ok\":true}");
  tbl_log(0, 1, SERIALIZE(",\"tcp_body_log_exchange\":\"@k0\""));
  int_param("plugin.GetStatus", 0);
  emit("tbl-exchange", 0x00);

  begin();
  start_instance("tcp-body-log",
                 "{\"host\":\"127.0.0.1\",\"port\":5170,\"max_body_size\":8,\"redact_json_fields\":[\"password\"],"
                 "\"redact_headers\":[\"authorization\",\"x-secret\"],\"content_types\":[\"application/json\",\"text/*\"],"
                 "\"queue_max_entries\":2,\"queue_max_bytes\":65536,\"context_max_bytes\":65536}");
  tbl_response(0, 0, "{\"password\":\"hunter2\",\"more\":\"xxxxxxxxxxxxxxxx\"}", 2, "\xff\xfe" "\x01" "binary");
  tbl_response(0, 1, NULL, 1, "text \xc3\xa9");
  tbl_log(0, 2, SERIALIZE(",\"tcp_body_log_exchange\":\"@k0\""));
  tbl_log(0, 3, SERIALIZE(",\"tcp_body_log_exchange\":\"@k1\""));
  tbl_log(0, 4, SERIALIZE(""));
  emit("tbl-truncate-redact-two-exchanges", 0x00);

  begin();
  start_instance("tcp-body-log", "{\"host\":\"collector.example\",\"port\":6514,\"tls\":true,\"tls_verify\":false,"
                                 "\"tls_sni\":\"logs\",\"log_request_body\":false}");
  tbl_response(0, 0, NULL, 2, "r");
  tbl_log(0, 1, SERIALIZE(",\"tcp_body_log_exchange\":\"@k0\""));
  emit("tbl-tls-noverify", 0x40);

  begin();
  start_instance("tcp-body-log", TBL_CFG);
  handle_event(0, "response"); /* abandoned: Kong never steps it */
  tbl_log(0, 1, "{\"request\":{},\"response\":{},\"source\":\"kong\"}");
  handle_event(0, "log");
  step(2, 0, NULL); /* serialize returned nothing */
  emit("tbl-abandoned-reaped", 0x04 | 0x08);

  begin();
  start_instance("tcp-body-log", TBL_CFG);
  start_instance("tcp-body-log", "{\"host\":\"127.0.0.1\",\"port\":5171}");
  start_instance("c-hello", "{}");
  tbl_response(1, 0, "a", 1, "b");
  int_param("plugin.CloseInstance", 1);
  tbl_log(1, 1, SERIALIZE(",\"tcp_body_log_exchange\":\"@k0\""));
  emit("tbl-small-caps-3conns", 0x02 | 0x10 | 0xc0);

  begin();
  start_instance("tcp-body-log", TBL_CFG);
  tbl_response(0, 0, "q", 1, "r");
  tbl_log(0, 1, SERIALIZE(",\"tcp_body_log_exchange\":\"@k0\""));
  emit("tbl-collector-refusing", 0x80);

  /* tooling and errors */
  begin();
  req("plugin.GetPluginInfo");
  cstr(&pk, "tcp-body-log");
  req("plugin.GetPluginInfo");
  cstr(&pk, "nope");
  req("plugin.SetPluginDir");
  cstr(&pk, "/tmp");
  int_param("plugin.InstanceStatus", 12345);
  int_param("plugin.Nope", 1);
  int_param("foo.Bar", 1);
  step(99, 0, NULL);
  handle_event(77, "access");
  start_instance("nope", "{}");
  start_instance("c-hello", "not json");
  start_instance("tcp-body-log", "{\"host\":\"h\",\"port\":70000}");
  start_instance("c-hello", "[]");
  emit("tooling-and-errors", 0x00);

  /* every field of every method with the wrong type */
  begin();
  req("plugin.StartInstance"); msgpack_pack_int(&pk, 7);
  req("plugin.StartInstance"); msgpack_pack_map(&pk, 2); cstr(&pk, "Name"); msgpack_pack_int(&pk, 1);
  cstr(&pk, "Config"); cstr(&pk, "{}");
  req("plugin.StartInstance"); msgpack_pack_map(&pk, 2); cstr(&pk, "Name"); cstr(&pk, "c-hello");
  cstr(&pk, "Config"); msgpack_pack_true(&pk);
  req("plugin.HandleEvent"); msgpack_pack_map(&pk, 2); cstr(&pk, "InstanceId"); msgpack_pack_double(&pk, 0.5);
  cstr(&pk, "EventName"); msgpack_pack_nil(&pk);
  req("plugin.Step"); msgpack_pack_map(&pk, 2); cstr(&pk, "EventId"); msgpack_pack_array(&pk, 0);
  cstr(&pk, "Data"); msgpack_pack_map(&pk, 0);
  req("plugin.CloseInstance"); msgpack_pack_map(&pk, 1); cstr(&pk, "Id"); cstr(&pk, "1");
  req("plugin.GetPluginInfo"); msgpack_pack_map(&pk, 1); cstr(&pk, "Name"); msgpack_pack_int(&pk, 1);
  req("plugin.SetPluginDir"); msgpack_pack_bin_with_body(&pk, "", 0);
  emit("wrong-types", 0x00);

  /* envelope oddities: params not an array, float msgid, notifications and
   * responses from the client, then a request without a msgid */
  begin();
  msgpack_pack_array(&pk, 4); msgpack_pack_int(&pk, 0); msgpack_pack_int(&pk, 1);
  cstr(&pk, "plugin.GetStatus"); msgpack_pack_map(&pk, 0);
  msgpack_pack_array(&pk, 4); msgpack_pack_int(&pk, 0); msgpack_pack_double(&pk, 2.0);
  cstr(&pk, "plugin.GetPluginInfo"); cstr(&pk, "c-hello");
  msgpack_pack_array(&pk, 3); msgpack_pack_int(&pk, 2); cstr(&pk, "serverPid"); msgpack_pack_int(&pk, 1);
  msgpack_pack_array(&pk, 4); msgpack_pack_int(&pk, 1); msgpack_pack_int(&pk, 3); msgpack_pack_nil(&pk);
  msgpack_pack_nil(&pk);
  msgpack_pack_array(&pk, 4); msgpack_pack_int(&pk, 0); cstr(&pk, "4"); cstr(&pk, "plugin.GetStatus");
  msgpack_pack_array(&pk, 0);
  emit("envelope-oddities", 0x00);

  /* hostile bytes */
  static const uint8_t c1[] = {0x94, 0x00, 0x01, 0xc1};
  begin();
  msgpack_sbuffer_write(&sb, (const char *)c1, sizeof(c1));
  emit("malformed-c1", 0x00);
  static const uint8_t hdrs[][5] = {{0xdb, 0xff, 0xff, 0xff, 0xff}, {0xc6, 0xff, 0xff, 0xff, 0xff},
                                    {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdf, 0xff, 0xff, 0xff, 0xff}};
  static const char *const hnames[] = {"declared-4g-str", "declared-4g-bin", "declared-4g-array",
                                       "declared-4g-map"};
  for (int i = 0; i < 4; i++) {
    begin();
    req("plugin.StartInstance");
    msgpack_sbuffer_write(&sb, (const char *)hdrs[i], 5);
    emit(hnames[i], 0x00);
  }
  begin();
  req("plugin.Step");
  for (int i = 0; i < 40; i++) msgpack_pack_array(&pk, 1);
  msgpack_pack_nil(&pk);
  emit("nesting-40", 0x00);
  begin();
  start_instance("c-hello", "{\"message\":\"a message long enough to pass a small cap of 64 + 16 bytes\"}");
  int_param("plugin.GetStatus", 0);
  emit("over-small-cap", 0x20);
}

/* Kong's recorded client streams, as recorded and with our plugins. */
static void fixture_seeds(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  if (d == NULL) {
    fprintf(stderr, "%s: %s\n", dir, strerror(errno));
    exit(1);
  }
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    for (int conn = 1; conn <= 9; conn++) {
      char path[4096], name[300];
      size_t len;
      snprintf(path, sizeof(path), "%s/%s/conn-%03d.c2s.bin", dir, e->d_name, conn);
      char *raw = read_all(path, &len);
      if (raw == NULL) continue;
      uint8_t hdr[4] = {0, (uint8_t)conn, 0, 0};
      snprintf(name, sizeof(name), "kong-%.200s-c%d-raw", e->d_name, conn);
      write_seed("fuzz_rpc", name, hdr, raw, len);
      /* the same stream with the reference plugins replaced by ours */
      msgpack_unpacker up;
      msgpack_unpacked u;
      msgpack_unpacker_init(&up, len + 16);
      memcpy(msgpack_unpacker_buffer(&up), raw, len);
      msgpack_unpacker_buffer_consumed(&up, len);
      msgpack_unpacked_init(&u);
      begin();
      while (msgpack_unpacker_next(&up, &u) == MSGPACK_UNPACK_SUCCESS) {
        msgpack_object o = u.data;
        msgpack_object *a = o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size == 4 ? o.via.array.ptr : NULL;
        if (a && a[2].type == MSGPACK_OBJECT_STR && a[2].via.str.size == 20 &&
            memcmp(a[2].via.str.ptr, "plugin.StartInstance", 20) == 0) {
          int hello = strstr(e->d_name, "probe") != NULL || memmem(raw, len, "kbprobe", 7) != NULL;
          start_instance(hello ? "c-hello" : "tcp-body-log", hello ? "{\"message\":\"probe\"}" : TBL_CFG);
          continue;
        }
        msgpack_pack_object(&pk, o);
      }
      msgpack_unpacked_destroy(&u);
      msgpack_unpacker_destroy(&up);
      snprintf(name, sizeof(name), "kong-%.200s-c%d-ours", e->d_name, conn);
      write_seed("fuzz_rpc", name, hdr, sb.data, sb.size);
      free(raw);
    }
  }
  closedir(d);
}

static void config_seeds(void) {
  static const char *const configs[] = {
      "{\"message\":\"hello\"}",
      "{}",
      "[]",
      "null",
      "{\"message\":\"\"}",
      "{\"message\":1}",
      TBL_CFG,
      "{\"host\":\"127.0.0.1\",\"port\":5170,\"timeout\":10000,\"keepalive\":60000,\"tls\":true,"
      "\"tls_sni\":\"logs.example\",\"tls_verify\":true,\"tls_ca_file\":\"SECRET-ca-path-0001\","
      "\"tls_client_cert\":\"/etc/c.pem\",\"tls_client_key\":\"/etc/k.pem\",\"log_request_body\":true,"
      "\"log_response_body\":false,\"max_body_size\":8192,\"content_types\":[\"application/json\",\"text/*\"],"
      "\"redact_headers\":[\"authorization\"],\"redact_json_fields\":[\"password\"],"
      "\"queue_max_bytes\":16777216,\"queue_max_entries\":10000,\"context_ttl\":60000,"
      "\"context_max_bytes\":67108864,\"route_id\":\"r\",\"__seq__\":3,\"__plugin_id\":\"p\"}",
      "{\"host\":\"h\",\"port\":0}",
      "{\"host\":\"h\",\"port\":70000}",
      "{\"host\":\"h\",\"port\":\"5170\"}",
      "{\"host\":\"h\",\"port\":1.5}",
      "{\"host\":\"h\",\"port\":5170,\"max_body_size\":-1}",
      "{\"host\":\"h\",\"port\":5170,\"queue_max_bytes\":-65536}",
      "{\"host\":\"h\",\"port\":5170,\"timeout\":1e309}",
      "{\"host\":\"h\",\"port\":5170,\"content_types\":{}}",
      "{\"host\":\"h\",\"port\":5170,\"redact_headers\":[1,\"SECRET-xyz\"]}",
      "{\"host\":\"SECRET-host-name-long\",\"port\":5170,\"tls\":\"yes\"}",
      "{\"host\":null,\"port\":5170}",
      "{\"port\":5170}",
      "{\"host\":\"h\",\"port\":9007199254740993}",
      "{\"host\":\"h\",\"port\":5170,\"context_max_bytes\":4294967297}",
      "{\"host\":\"h\",\"port\":5170,\"host\":\"dup\"}",
      "{\"host\":\"h\\u0000x\",\"port\":5170}",
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
  };
  for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
    char name[32];
    snprintf(name, sizeof(name), "config-%02zu", i);
    write_seed("fuzz_config", name, NULL, configs[i], strlen(configs[i]));
  }
}

/* fuzz_record: <flags><max_body le16><caps> sections separated by 0x1e. */
static void record_seed(const char *name, uint8_t flags, unsigned max_body, uint8_t caps, const char *ct,
                        const char *rh, const char *rj, const char *reqb, size_t reqlen, const char *respb,
                        size_t resplen, const char *ser, size_t serlen) {
  msgpack_sbuffer_clear(&sb);
  uint8_t hdr[4] = {flags, (uint8_t)(max_body & 0xff), (uint8_t)(max_body >> 8), caps};
  const char sep = 0x1e;
  msgpack_sbuffer_write(&sb, ct, strlen(ct));
  msgpack_sbuffer_write(&sb, &sep, 1);
  msgpack_sbuffer_write(&sb, rh, strlen(rh));
  msgpack_sbuffer_write(&sb, &sep, 1);
  msgpack_sbuffer_write(&sb, rj, strlen(rj));
  msgpack_sbuffer_write(&sb, &sep, 1);
  msgpack_sbuffer_write(&sb, reqb, reqlen);
  msgpack_sbuffer_write(&sb, &sep, 1);
  msgpack_sbuffer_write(&sb, respb, resplen);
  msgpack_sbuffer_write(&sb, &sep, 1);
  msgpack_sbuffer_write(&sb, ser, serlen);
  write_seed("fuzz_record", name, hdr, sb.data, sb.size);
}

static void record_seeds(const char *shared) {
  static const char ser[] = SERIALIZE(",\"tcp_body_log_exchange\":\"@k\"");
  const char *json_body = "{\"user\":{\"password\":\"hunter2\",\"Token\":[1,{\"password\":null}]},\"x\":\"\\\"password\\\":1\"}";
  /* flags: 1 req on, 2 resp on, req captured (1<<2), resp captured (1<<4) */
  record_seed("text-json", 0x17, 8192, 0, "", "authorization\nset-cookie", "password\ntoken", json_body,
              strlen(json_body), "plain", 5, ser, sizeof(ser) - 1);
  record_seed("truncated-utf8", 0x17, 7, 0, "text/*\napplication/*+json", "", "password",
              "{\"password\":\"h\xc3\xa9llo\"}", 22, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9, ser, sizeof(ser) - 1);
  record_seed("binary-nul", 0x17, 64, 0, "", "", "", "a\0b\xff", 4, "\x80", 1, ser, sizeof(ser) - 1);
  record_seed("file-buffered", 0x03 | (2 << 2) | (1 << 4), 8192, 0, "", "", "", "", 0, "ok", 2,
              ser, sizeof(ser) - 1);
  record_seed("pending-disabled", 0x03 | (3 << 4), 8192, 0, "", "", "", "", 0, "", 0, ser,
              sizeof(ser) - 1);
  record_seed("evicted-by-caps", 0x57, 8192, 0x11, "", "", "", "abcdefghijklmnopqrstuvwxyz", 26, "b", 1, ser,
              sizeof(ser) - 1);
  record_seed("taken-before", 0x97, 8192, 0, "", "", "", "a", 1, "b", 1, ser, sizeof(ser) - 1);
  static const char kong[] = "{\"request\":{\"headers\":{}},\"response\":{\"status\":403},\"source\":\"kong\",\"upstream_uri\":\"\"}";
  record_seed("short-circuited", 0x17, 8192, 0, "", "", "", "", 0, "", 0, kong, sizeof(kong) - 1);
  record_seed("not-an-object", 0x17, 8192, 0, "", "", "", "", 0, "", 0, "[1,2]", 5);

  /* the shared fixtures' records, as serialize output */
  DIR *d = opendir(shared);
  struct dirent *e;
  if (d == NULL) return;
  while ((e = readdir(d)) != NULL) {
    char path[4096], name[300];
    size_t len;
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof(path), "%s/%s/sink.jsonl", shared, e->d_name);
    char *text = read_all(path, &len);
    if (text == NULL) continue;
    char *line = text, *nl;
    int k = 0;
    while ((nl = strchr(line, '\n')) != NULL && k < 2) {
      size_t n = (size_t)(nl - line);
      if (n > 2 && n < 8000 && line[n - 1] == '}') {
        char *with_key = malloc(n + 64);
        memcpy(with_key, line, n - 1);
        int m = snprintf(with_key + n - 1, 64, ",\"tcp_body_log_exchange\":\"@k\"}");
        snprintf(name, sizeof(name), "sink-%.200s-%d", e->d_name, k++);
        record_seed(name, 0x17, 8192, 0, "", "authorization\ncookie", "password", "{\"password\":\"p\"}", 16,
                    "hello 1234", 10, with_key, n - 1 + (size_t)m);
        free(with_key);
      }
      line = nl + 1;
    }
    free(text);
  }
  closedir(d);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <out corpus dir> <proto/fixtures/kong-wire> <shared kong-wire>\n", argv[0]);
    return 2;
  }
  outdir = argv[1];
  mkdir(outdir, 0755);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  rpc_seeds();
  fixture_seeds(argv[2]);
  config_seeds();
  record_seeds(argv[3]);
  msgpack_sbuffer_destroy(&sb);
  printf("%d seeds written to %s\n", nwritten, outdir);
  return 0;
}
