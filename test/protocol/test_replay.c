/* test_replay.c: every Kong-to-server stream recorded from Kong's own
 * client code (proto/fixtures/kong-wire/<case>/conn-*.c2s.bin) replayed
 * against a fresh server, each message split at random points.  Every
 * message must decode and get the answer the protocol requires: the ids and
 * plugin names belong to the recording, so StartInstance gets "no plugin
 * named", HandleEvent "no plugin instance #<id>" and Steps "no running
 * event #<id>" (R20, R21).  Nothing may crash, hang or leak. */
#include <dirent.h>
#include <unistd.h>

#include "fake_kong.h"
#include "test.h"

#define FIXTURES KPS_SOURCE_DIR "/proto/fixtures/kong-wire"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) FAIL("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) FAIL("short read %s", path);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static int64_t param_int(const msgpack_object *param, const char *key) {
  if (key == NULL) return fk_int(param);
  return fk_int(fk_map_get(param, key));
}

/* The error the protocol requires for a recorded request. */
static void expected_error(const msgpack_object *req, char *out, size_t n) {
  char *method = fk_strdup_obj(&req->via.array.ptr[2]);
  const msgpack_object *param = &req->via.array.ptr[3].via.array.ptr[0];
  if (strcmp(method, "plugin.StartInstance") == 0) {
    char *name = fk_strdup_obj(fk_map_get(param, "Name"));
    snprintf(out, n, "no plugin named \"%s\" in this server", name);
    free(name);
  } else if (strcmp(method, "plugin.HandleEvent") == 0) {
    snprintf(out, n, "no plugin instance #%lld", (long long)param_int(param, "InstanceId"));
  } else if (strcmp(method, "plugin.CloseInstance") == 0) {
    snprintf(out, n, "no plugin instance #%lld", (long long)param_int(param, NULL));
  } else if (strncmp(method, "plugin.Step", 11) == 0) {
    snprintf(out, n, "no running event #%lld", (long long)param_int(param, "EventId"));
  } else {
    FAIL("recording holds an unexpected method %s", method);
  }
  free(method);
}

/* Replays one stream on one connection, message by message (Kong waits for
 * each reply), each message cut at random points. */
static int replay_stream(const char *socket, const char *path, unsigned seed) {
  size_t len, off = 0;
  char *data = slurp(path, &len);
  fk_conn_t *c = fk_connect(socket);
  int messages = 0;
  while (off < len) {
    msgpack_unpacked u;
    size_t start = off;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, data, len, &off) != MSGPACK_UNPACK_SUCCESS)
      FAIL("%s: message at offset %zu does not decode", path, start);
    const msgpack_object *req = &u.data;
    ASSERT(req->type == MSGPACK_OBJECT_ARRAY && req->via.array.size == 4);
    ASSERT_EQ(fk_int(&req->via.array.ptr[0]), 0);
    int64_t msgid = fk_int(&req->via.array.ptr[1]);
    char want[256];
    expected_error(req, want, sizeof(want));
    fk_send(c, data + start, off - start, FK_SEND_RANDOM_SPLIT, &seed);
    fk_reply_t r;
    if (fk_recv(c, msgid, &r, 5000) != 0) FAIL("%s: no reply to msgid %lld", path, (long long)msgid);
    ASSERT_STREQ(r.error_str, want);
    ASSERT(r.result->type == MSGPACK_OBJECT_NIL);
    fk_reply_free(&r);
    msgpack_unpacked_destroy(&u);
    messages++;
  }
  ASSERT_EQ(c->notifications, 1); /* serverPid, once, first */
  fk_conn_close(c);
  free(data);
  return messages;
}

static int64_t status_field(fk_client_t *k, const char *group, const char *name) {
  msgpack_sbuffer p;
  fk_reply_t r;
  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call(k, "plugin.GetStatus", &p, &r);
  const msgpack_object *o = group ? fk_map_get(r.result, group) : r.result;
  int64_t v = fk_int(fk_map_get(o, name));
  fk_reply_free(&r);
  msgpack_sbuffer_destroy(&p);
  return v;
}

TEST(replay_every_recorded_stream) {
  DIR *d = opendir(FIXTURES);
  struct dirent *e;
  int cases = 0, total = 0;
  ASSERT(d != NULL);
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", FIXTURES, e->d_name);
    for (unsigned round = 0; round < 3; round++) {
      fk_server_t srv;
      fk_client_t k;
      int messages = 0;
      fk_server_start(&srv, "c-hello", NULL);
      for (int conn = 1; conn < 100; conn++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/conn-%03d.c2s.bin", dir, conn);
        if (access(path, R_OK) != 0) break;
        messages += replay_stream(srv.socket, path, 1000 * round + (unsigned)conn);
      }
      ASSERT(messages > 0);
      fk_client_init(&k, srv.socket);
      ASSERT_EQ(status_field(&k, "Counters", "requests"), messages + 1); /* + this GetStatus */
      ASSERT_EQ(status_field(&k, "Counters", "error_replies"), messages);
      ASSERT_EQ(status_field(&k, NULL, "Events"), 0);
      ASSERT_EQ(status_field(&k, NULL, "Instances"), 0);
      fk_client_close(&k);
      ASSERT_EQ(fk_server_stop(&srv), 0);
      if (round == 0) total += messages;
    }
    cases++;
  }
  closedir(d);
  ASSERT_EQ(cases, 14);
  printf("replayed %d cases, %d messages per round\n", cases, total);
}
