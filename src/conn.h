/* conn.h: one Kong connection on the Unix socket.
 *
 * Reads bytes, cuts them into MessagePack objects with the frame scanner,
 * hands each request to the dispatcher and writes the replies.  Kong keeps
 * at most one request outstanding per connection; the connection processes
 * its input strictly in order and holds further requests until the current
 * one is answered, so a client that pipelines still gets ordered replies. */
#ifndef KPS_CONN_H
#define KPS_CONN_H

#include <stdint.h>
#include <msgpack.h>
#include <uv.h>

#include "frame.h"

typedef struct kps_event_s kps_event_t;

typedef struct kps_conn_s {
  uv_pipe_t pipe;        /* first: the handle's address is the conn's */
  char *in;              /* received bytes */
  size_t in_len, in_off, in_cap;
  kps_frame_t frame;
  msgpack_zone zone;     /* decoded objects of the current request */
  msgpack_sbuffer out;   /* replies not yet handed to the kernel */
  msgpack_sbuffer wr;    /* the write in flight */
  msgpack_packer pk;     /* packs into `out` */
  uv_write_t wreq;
  int writing;
  int reading;
  int closing;
  int close_after_write;
  int awaiting;          /* a request is dispatched and unanswered */
  int in_process;        /* inside the input loop (no re-entry) */
  int64_t await_msgid;
  kps_event_t *event;    /* the event that owes this conn a reply */
  struct kps_conn_s *prev, *next;
} kps_conn_t;

/* Accepts a connection from the listening socket. */
void kps__conn_accept(uv_stream_t *server);
/* Serves an already-connected stream socket as a Kong connection (for
 * fuzzers and in-process tests).  0 or a libuv error code. */
int kps__conn_adopt(uv_loop_t *loop, int fd);

/* Replies.  begin packs [1, msgid, nil, and returns the packer for the
 * result; end completes the reply, sends it and resumes reading. */
msgpack_packer *kps__conn_reply_begin(kps_conn_t *c, int64_t msgid);
void kps__conn_reply_end(kps_conn_t *c);
/* [1, msgid, "<message>", nil] */
void kps__conn_reply_error(kps_conn_t *c, int64_t msgid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void kps__conn_close(kps_conn_t *c);
void kps__conn_close_all(void);
size_t kps__conn_count(void);

#endif
