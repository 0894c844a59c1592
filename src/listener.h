/* listener.h: the Unix socket Kong connects to. */
#ifndef KPS_LISTENER_H
#define KPS_LISTENER_H

#include <stddef.h>
#include <uv.h>

/* Binds `path` with mode 0660 and starts accepting.  A stale socket at the
 * path is removed; any other kind of file is left alone and an error is
 * returned.  Returns 0 or -1 with a message in err. */
int kps__listener_start(uv_loop_t *loop, const char *path, char *err, size_t errlen);
/* Stops accepting and removes the socket file if it is still ours (on
 * `kong reload` a new server may already have bound the same path). */
void kps__listener_stop(void);

#endif
