/* listener.c: bind, listen, accept (see listener.h). */
#include "listener.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

static uv_pipe_t listener;
static int listening;
static char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static dev_t socket_dev;
static ino_t socket_ino;

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) {
    KPS_WARN("accept failed: %s", uv_strerror(status));
    return;
  }
  kps__conn_accept(server);
}

int kps__listener_start(uv_loop_t *loop, const char *path, char *err, size_t errlen) {
  struct stat st;
  int rc;

  if (strlen(path) >= sizeof(socket_path)) {
    snprintf(err, errlen, "socket path %s is longer than %zu bytes", path,
             sizeof(socket_path) - 1);
    return -1;
  }
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, errlen, "refusing to replace %s: it exists and is not a socket", path);
      return -1;
    }
    if (unlink(path) != 0) {
      snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
      return -1;
    }
    KPS_INFO("removed stale socket %s", path);
  }
  uv_pipe_init(loop, &listener, 0);
  /* Create the socket file as 0660 from the start: no window in which
   * other users could connect. */
  mode_t old = umask(0117);
  rc = uv_pipe_bind(&listener, path);
  umask(old);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&listener, 4096, on_connection);
  if (rc != 0) {
    snprintf(err, errlen, "cannot listen on %s: %s", path, uv_strerror(rc));
    uv_close((uv_handle_t *)&listener, NULL);
    return -1;
  }
  chmod(path, 0660);
  if (lstat(path, &st) == 0) {
    socket_dev = st.st_dev;
    socket_ino = st.st_ino;
  }
  snprintf(socket_path, sizeof(socket_path), "%s", path);
  listening = 1;
  return 0;
}

void kps__listener_stop(void) {
  struct stat st;
  if (!listening) return;
  listening = 0;
  uv_close((uv_handle_t *)&listener, NULL);
  if (lstat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == socket_dev &&
      st.st_ino == socket_ino)
    unlink(socket_path);
}
