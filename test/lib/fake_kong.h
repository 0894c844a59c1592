/* fake_kong.h: a test client that talks to the plugin server the way Kong's
 * rpc/mp_rpc.lua does: connect per call, reusing pooled idle connections;
 * one request outstanding per connection; [0, msgid, method, [param]] with
 * msgids counted per client ("worker"); strings packed as fixstr/str16/str32
 * (never str8, like lua-MessagePack's string_compat); read until the type-1
 * response, handling serverPid notifications on the way.
 *
 * Also starts and stops the real server binary in a temporary prefix. */
#ifndef KPS_FAKE_KONG_H
#define KPS_FAKE_KONG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <msgpack.h>

/* ---- the server process ------------------------------------------------ */

typedef struct fk_server_s {
  pid_t pid;
  char prefix[256];
  char socket[300];
  char log[300];
} fk_server_t;

/* Starts KPS_SERVER_BIN with -kong-prefix <tmp> plus `args` (NULL-ended),
 * waits until the socket accepts.  Aborts the test on failure. */
void fk_server_start(fk_server_t *s, const char *plugin, const char *const *args);
/* SIGTERM, wait (deadline 10 s); returns the exit status (-1 if signalled). */
int fk_server_stop(fk_server_t *s);
int fk_server_alive(const fk_server_t *s);
/* The server's stderr so far, malloc'd. */
char *fk_server_log(const fk_server_t *s);
/* VmRSS of the server in KiB. */
long fk_server_rss_kib(const fk_server_t *s);

/* ---- connections and calls --------------------------------------------- */

typedef enum { FK_SEND_WHOLE = 0, FK_SEND_BYTEWISE, FK_SEND_RANDOM_SPLIT } fk_send_mode_t;

typedef struct fk_conn_s {
  int fd;
  msgpack_unpacker up;
  int64_t server_pid;    /* from the serverPid notification, or 0 */
  int notifications;     /* how many arrived on this connection */
} fk_conn_t;

typedef struct fk_reply_s {
  msgpack_unpacked msg;     /* owns the decoded reply */
  const msgpack_object *error;  /* nil or the error */
  const msgpack_object *result;
  char error_str[512];      /* "" when there was no error */
} fk_reply_t;

#define FK_POOL_MAX 64

typedef struct fk_client_s {
  char path[300];
  fk_conn_t *pool[FK_POOL_MAX];
  int npool;
  int64_t msgid;
  fk_send_mode_t send_mode;
  unsigned seed;
  int64_t server_pid;
} fk_client_t;

void fk_client_init(fk_client_t *k, const char *socket_path);
void fk_client_close(fk_client_t *k);

fk_conn_t *fk_connect(const char *path);
void fk_conn_close(fk_conn_t *c);
/* Writes bytes in the given mode; aborts on error. */
void fk_send(fk_conn_t *c, const void *buf, size_t len, fk_send_mode_t mode, unsigned *seed);
/* Reads until the response with `msgid` (notifications are counted and
 * skipped).  0, or -1 on EOF/timeout/wrong msgid. */
int fk_recv(fk_conn_t *c, int64_t msgid, fk_reply_t *out, int timeout_ms);
/* 1 if the server closed the connection within timeout_ms. */
int fk_wait_closed(fk_conn_t *c, int timeout_ms);
void fk_reply_free(fk_reply_t *r);

/* Builds [0, msgid, method, [param]] around an already-packed param. */
void fk_build_request(msgpack_sbuffer *out, int64_t msgid, const char *method,
                      const char *param, size_t param_len);
/* One call the way Kong makes it (pooled connection, one request).
 * param is packed MessagePack (e.g. from fk_param_*).  Aborts on I/O error. */
void fk_call(fk_client_t *k, const char *method, const msgpack_sbuffer *param, fk_reply_t *out);
/* The same on a given connection (for hopping and concurrency tests). */
void fk_call_on(fk_client_t *k, fk_conn_t *c, const char *method, const msgpack_sbuffer *param,
                fk_reply_t *out);

/* ---- packing as Kong does ---------------------------------------------- */

void fk_pack_str(msgpack_packer *pk, const char *s, size_t n);
void fk_pack_cstr(msgpack_packer *pk, const char *s);
/* Params of the methods Kong calls. */
void fk_param_start_instance(msgpack_sbuffer *sb, const char *name, const char *config_json);
void fk_param_handle_event(msgpack_sbuffer *sb, int64_t instance_id, const char *event);
/* Step: data_packed NULL = no Data key (a nil PDK result). */
void fk_param_step(msgpack_sbuffer *sb, int64_t event_id, const char *data_packed,
                   size_t data_len);
void fk_param_int(msgpack_sbuffer *sb, int64_t v);
void fk_param_cstr(msgpack_sbuffer *sb, const char *s);

/* ---- reading replies --------------------------------------------------- */

const msgpack_object *fk_map_get(const msgpack_object *m, const char *key);
/* A str/bin value as a malloc'd C string ("" if absent). */
char *fk_strdup_obj(const msgpack_object *o);
int fk_str_eq(const msgpack_object *o, const char *s);
int64_t fk_int(const msgpack_object *o);

/* Asserts reply has no error and returns its Id (StartInstance). */
int64_t fk_start_instance(fk_client_t *k, const char *name, const char *config_json);

#endif

/* ---- the collector process (test/tools/collector.c) --------------------- */

typedef struct fk_collector_s {
  pid_t pid;
  int port;
  char dir[256];
  char out[300];
} fk_collector_t;

/* Starts kps-collector on 127.0.0.1 (port 0 = any free port) with extra
 * args (NULL-ended), writing lines to <dir>/lines.jsonl. */
void fk_collector_start(fk_collector_t *c, int port, const char *const *args);
void fk_collector_stop(fk_collector_t *c);
/* Waits until at least n lines arrived (deadline ms); returns the count. */
int fk_collector_wait_lines(const fk_collector_t *c, int n, int timeout_ms);
/* All received lines, malloc'd (NUL-terminated). */
char *fk_collector_read(const fk_collector_t *c);
