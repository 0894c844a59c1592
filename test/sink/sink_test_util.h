/* sink_test_util.h: harness for the sink tests: checks, a uv loop driven
 * with deadlines, and real kps-collector child processes. */
#ifndef KPS_SINK_TEST_UTIL_H
#define KPS_SINK_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "sink.h"

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                        \
  } while (0)

#define CHECK_EQ(a, b)                                                                  \
  do {                                                                                  \
    unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);      \
    if (a_ != b_) t_fail(__FILE__, __LINE__, "%s == %llu, expected %s == %llu", #a, a_, #b, b_); \
  } while (0)

void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
/* Progress notes on the real stderr (even while the sink log is captured). */
void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Private directory for this test process, removed when the test passes. */
const char *t_dir(void);
/* t_dir()/name in a static rotating buffer. */
const char *t_path(const char *name);

/* Sends the process's stderr (the sink's log lines) to t_dir()/sink.log. */
void t_capture_log(void);
int t_log_contains(const char *needle);

char *t_read_file(const char *path, size_t *len); /* NULL if missing */
int t_file_contains(const char *path, const char *needle);
/* Occurrences of needle in the file (0 if missing). */
unsigned t_file_count(const char *path, const char *needle);
int t_free_port(void);
uint64_t t_now_ms(void);

/* ---- the loop ---- */
void t_loop_init(uv_loop_t *loop);
typedef int (*t_pred_fn)(void *ud);
/* Runs the loop until pred(ud) is true (returns 1) or timeout_ms passed (0). */
int t_run_until(uv_loop_t *loop, t_pred_fn pred, void *ud, uint64_t timeout_ms);
void t_run_for(uv_loop_t *loop, uint64_t ms);
/* Flushes every sink (deadline_ms), releases the given references, runs the
 * loop dry and checks uv_loop_close() == 0. */
void t_finish(uv_loop_t *loop, uint64_t deadline_ms, kps_sink_t **sinks, int nsinks);
/* Closes the ticker, runs the loop dry, checks uv_loop_close() == 0. */
void t_loop_done(uv_loop_t *loop);

/* ---- collectors ---- */
typedef struct t_collector_s {
  pid_t pid;
  int port;
  char tag[32];
  char out[512], port_file[512], count_file[512], log[512];
} t_collector_t;

/* Starts kps-collector on 127.0.0.1:port (0 = ephemeral) with extra args
 * (NULL-terminated, may be NULL) and waits until it listens. */
void t_collector_start(t_collector_t *c, const char *tag, int port, const char *const *extra);
/* The same on another loopback address ("127.0.0.2", "::1"). */
void t_collector_start_on(t_collector_t *c, const char *tag, const char *addr, int port, const char *const *extra);
/* SIGTERM, wait, and check it exited 0. */
void t_collector_stop(t_collector_t *c);
uint64_t t_collector_count(const t_collector_t *c);

/* ---- records ---- */
/* A JSON line of exactly size bytes (size >= 40) carrying seq; malloc'd. */
char *t_record(unsigned seq, size_t size);
/* seq of a line made by t_record (len bytes incl. '\n') if it is byte-exact, else -1. */
long t_record_seq(const char *line, size_t len);
/* Every line of the files must be a byte-exact record < total and every
 * record must be there (fails the test otherwise).  Returns the number of
 * duplicate lines. */
uint64_t t_check_delivered(const char *const *files, int nfiles, unsigned total);

/* Stats helpers. */
kps_sink_stats_t t_stats(const kps_sink_t *s);
kps_sink_endpoint_stats_t t_ep_stats(const kps_sink_t *s, size_t i);

#endif
