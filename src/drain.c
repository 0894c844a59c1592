/* drain.c: see drain.h. */
#include "drain.h"

#include "sink.h"

void kps__drain(uv_loop_t *loop, uint64_t deadline_ms, void (*done)(void *ud), void *ud) {
  kps_sink_flush_all(loop, deadline_ms, done, ud);
}
