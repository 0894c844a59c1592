/* server.c: loop, limits, counters and the housekeeping tick (server.h). */
#include "server.h"

#include <sys/time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "event.h"
#include "instance.h"
#include "log.h"

kps_limits_t kps__limits = {
    KPS_DEFAULT_MAX_MESSAGE_SIZE, KPS_DEFAULT_EVENT_TIMEOUT_MS, KPS_DEFAULT_INSTANCE_IDLE_MS,
    KPS_DEFAULT_SHUTDOWN_TIMEOUT_MS, KPS_DEFAULT_MAX_EVENTS, KPS_DEFAULT_MAX_INSTANCES,
    KPS_DEFAULT_MAX_CONNECTIONS,
};
kps_counters_t kps__counters;

static uv_loop_t *server_loop;
static uv_timer_t tick;
static int tick_running;
static pid_t parent_pid;
static void (*parent_gone_cb)(void);
static int64_t id_base;

void kps__server_init(uv_loop_t *loop) {
  struct timeval tv;
  server_loop = loop;
  gettimeofday(&tv, NULL);
  /* (seconds mod 2^31) << 20 leaves 2^20 fresh ids per second of uptime
   * before two boots could overlap, and stays below 2^51. */
  id_base = ((int64_t)(tv.tv_sec & 0x7fffffff)) << 20;
}

uv_loop_t *kps__server_loop(void) { return server_loop; }

uint64_t kps__now_ms(void) { return uv_now(server_loop); }

double kps__wall_time(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int64_t kps__id_base(void) { return id_base; }

/* glibc keeps freed heap memory mapped: after a burst of large bodies or a
 * collector outage (a full queue) the process would keep that high-water
 * mark for good.  Once a second: when the heap's free bytes grew by more
 * than KPS_HEAP_SLACK since their lowest point after the last trim, hand
 * the free pages back (malloc_trim releases pages in the middle of the
 * heap too, not only at its top).  Steady load frees and reuses the same
 * memory, so it rarely triggers then; a trim costs a few page faults. */
#define KPS_HEAP_SLACK (1u << 20)

static void trim_heap(void) {
#ifdef __GLIBC__
  static size_t low_free;
  struct mallinfo2 mi = mallinfo2();
  if (mi.fordblks < low_free) low_free = mi.fordblks;
  if (mi.fordblks - low_free < KPS_HEAP_SLACK) return;
  malloc_trim(0);
  kps__counters.heap_trims++;
  low_free = mallinfo2().fordblks;
#endif
}

static void on_tick(uv_timer_t *t) {
  uv_update_time(server_loop);
  kps__event_reap(kps__now_ms());
  kps__instance_expire(kps__now_ms());
  trim_heap();
  if (parent_pid > 1 && getppid() != parent_pid) {
    KPS_NOTICE("parent process %d is gone; shutting down", (int)parent_pid);
    parent_pid = 0;
    if (parent_gone_cb) parent_gone_cb();
  }
}

void kps__housekeeping_start(int watch_parent, void (*on_parent_gone)(void)) {
  parent_pid = watch_parent ? getppid() : 0;
  parent_gone_cb = on_parent_gone;
  uv_timer_init(server_loop, &tick);
  uv_timer_start(&tick, on_tick, 1000, 1000);
  tick_running = 1;
}

void kps__housekeeping_stop(void) {
  if (!tick_running) return;
  tick_running = 0;
  uv_timer_stop(&tick);
  uv_close((uv_handle_t *)&tick, NULL);
}
