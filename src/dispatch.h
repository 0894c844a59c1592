/* dispatch.h: one decoded MessagePack-RPC object -> its method handler. */
#ifndef KPS_DISPATCH_H
#define KPS_DISPATCH_H

#include <msgpack.h>

#include "conn.h"

/* Handles one message.  Returns 0, or -1 when the message is not a
 * request we can answer at all (no msgid): the connection then closes. */
int kps__dispatch(kps_conn_t *c, const msgpack_object *msg);

#endif
