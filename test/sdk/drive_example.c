/* drive_example: the fake-Kong client drives the out-of-tree example plugin
 * c-size-limit, loaded from a plugins directory, through the real server.
 * Run by out_of_tree.sh as `drive_example example_exchange` with
 * KPS_EXAMPLE_SERVER (the installed server) and KPS_EXAMPLE_PLUGINS set. */
#include <stdlib.h>

#include "fake_kong.h"
#include "test.h"

/* HandleEvent(access), then the Content-Length step; returns the reply. */
static int64_t access_event(fk_client_t *k, int64_t inst, const char *content_length,
                            fk_reply_t *r) {
  msgpack_sbuffer p, d;
  msgpack_packer pk;
  msgpack_sbuffer_init(&p);
  fk_param_handle_event(&p, inst, "access");
  fk_call(k, "plugin.HandleEvent", &p, r);
  msgpack_sbuffer_destroy(&p);
  ASSERT_EQ(r->error_str[0], 0);
  const msgpack_object *data = fk_map_get(r->result, "Data");
  ASSERT(fk_str_eq(fk_map_get(data, "Method"), "kong.request.get_header"));
  ASSERT(fk_str_eq(&fk_map_get(data, "Args")->via.array.ptr[0], "content-length"));
  int64_t ev = fk_int(fk_map_get(r->result, "EventId"));
  fk_reply_free(r);
  msgpack_sbuffer_init(&d);
  msgpack_packer_init(&pk, &d, msgpack_sbuffer_write);
  fk_pack_cstr(&pk, content_length);
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, d.data, d.size);
  fk_call(k, "plugin.Step", &p, r);
  msgpack_sbuffer_destroy(&p);
  msgpack_sbuffer_destroy(&d);
  ASSERT_EQ(r->error_str[0], 0);
  return ev;
}

TEST(example_exchange) {
  const char *dir = getenv("KPS_EXAMPLE_PLUGINS");
  if (dir == NULL) FAIL("KPS_EXAMPLE_PLUGINS is not set (run out_of_tree.sh)");
  const char *const args[] = {"-plugins-directory", dir, NULL};
  fk_server_t srv;
  fk_client_t k;
  fk_reply_t r;
  fk_server_start(&srv, "c-size-limit", args);
  fk_client_init(&k, srv.socket);
  int64_t inst = fk_start_instance(&k, "c-size-limit", "{\"allowed_payload_size\":100,\"__seq__\":1}");

  /* small body: the response gets x-size-limit, then "ret" */
  int64_t ev = access_event(&k, inst, "10", &r);
  const msgpack_object *data = fk_map_get(r.result, "Data");
  ASSERT(fk_str_eq(fk_map_get(data, "Method"), "kong.response.set_header"));
  const msgpack_object *a = fk_map_get(data, "Args");
  ASSERT(fk_str_eq(&a->via.array.ptr[0], "x-size-limit") && fk_str_eq(&a->via.array.ptr[1], "100"));
  fk_reply_free(&r);
  msgpack_sbuffer p;
  msgpack_sbuffer_init(&p);
  fk_param_step(&p, ev, NULL, 0);
  fk_call(&k, "plugin.Step", &p, &r);
  msgpack_sbuffer_destroy(&p);
  ASSERT(fk_str_eq(fk_map_get(r.result, "Data"), "ret"));
  fk_reply_free(&r);

  /* large body: kong.response.exit(413, body, headers), and no Step after */
  access_event(&k, inst, "101", &r);
  data = fk_map_get(r.result, "Data");
  ASSERT(fk_str_eq(fk_map_get(data, "Method"), "kong.response.exit"));
  a = fk_map_get(data, "Args");
  ASSERT_EQ(a->via.array.size, 3);
  ASSERT_EQ(fk_int(&a->via.array.ptr[0]), 413);
  ASSERT(fk_str_eq(&a->via.array.ptr[1], "{\"message\":\"Request size limit exceeded\"}"));
  ASSERT(fk_str_eq(fk_map_get(&a->via.array.ptr[2], "Content-Type"), "application/json"));
  fk_reply_free(&r);

  msgpack_sbuffer_init(&p);
  fk_param_int(&p, 0);
  fk_call(&k, "plugin.GetStatus", &p, &r);
  msgpack_sbuffer_destroy(&p);
  ASSERT_EQ(fk_int(fk_map_get(r.result, "Events")), 0); /* the exit ended its event */
  fk_reply_free(&r);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
}
