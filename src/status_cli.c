/* status_cli.c: `--status`: connect to a running server's socket, ask
 * plugin.GetStatus and print the answer as JSON (for operators). */
#include "status_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <msgpack.h>

#include "json_mp.h"
#include "rpc.h"

int kps__status_cli(const char *socket_path) {
  struct sockaddr_un sa;
  struct timeval tv = {5, 0};
  int fd = socket(AF_UNIX, SOCK_STREAM, 0), rc = 1;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_unpacker up;
  msgpack_unpacked res;

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    fprintf(stderr, "kong-c-pluginserver: cannot connect to %s: %s\n", socket_path,
            strerror(errno));
    if (fd >= 0) close(fd);
    return 1;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, KPS_RPC_REQUEST);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str_with_body(&pk, "plugin.GetStatus", 16);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_nil(&pk);
  if (write(fd, sb.data, sb.size) != (ssize_t)sb.size) {
    fprintf(stderr, "kong-c-pluginserver: write to %s failed\n", socket_path);
    goto out_sb;
  }
  msgpack_unpacker_init(&up, 64 * 1024);
  msgpack_unpacked_init(&res);
  for (;;) {
    msgpack_unpack_return r;
    while ((r = msgpack_unpacker_next(&up, &res)) == MSGPACK_UNPACK_SUCCESS) {
      msgpack_object o = res.data;
      if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4) continue; /* serverPid */
      if (o.via.array.ptr[2].type != MSGPACK_OBJECT_NIL) {
        cJSON *e = kps__json_from_mp(&o.via.array.ptr[2]);
        fprintf(stderr, "kong-c-pluginserver: GetStatus failed: %s\n",
                cJSON_IsString(e) ? e->valuestring : "?");
        cJSON_Delete(e);
        goto out;
      }
      cJSON *j = kps__json_from_mp(&o.via.array.ptr[3]);
      char *text = cJSON_Print(j);
      printf("%s\n", text);
      free(text);
      cJSON_Delete(j);
      rc = 0;
      goto out;
    }
    if (r == MSGPACK_UNPACK_PARSE_ERROR) {
      fprintf(stderr, "kong-c-pluginserver: malformed reply from %s\n", socket_path);
      goto out;
    }
    msgpack_unpacker_reserve_buffer(&up, 64 * 1024);
    ssize_t n = read(fd, msgpack_unpacker_buffer(&up), msgpack_unpacker_buffer_capacity(&up));
    if (n <= 0) {
      fprintf(stderr, "kong-c-pluginserver: no reply from %s\n", socket_path);
      goto out;
    }
    msgpack_unpacker_buffer_consumed(&up, (size_t)n);
  }
out:
  msgpack_unpacked_destroy(&res);
  msgpack_unpacker_destroy(&up);
out_sb:
  msgpack_sbuffer_destroy(&sb);
  close(fd);
  return rc;
}
