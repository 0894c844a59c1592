/* drain.h: graceful stop of everything that holds accepted work (the
 * sinks' queues), bounded by a deadline. */
#ifndef KPS_DRAIN_H
#define KPS_DRAIN_H

#include <stdint.h>
#include <uv.h>

/* done(ud) runs once every sink is empty or deadline_ms has passed. */
void kps__drain(uv_loop_t *loop, uint64_t deadline_ms, void (*done)(void *ud), void *ud);

#endif
