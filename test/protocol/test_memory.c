/* test_memory.c: the server gives memory back.  glibc keeps freed heap
 * mapped, so without the housekeeping tick's trim (src/server.c) a burst
 * of large bodies would leave the process at its high-water mark for good
 * (issue 5: RSS <= 20 MiB when idle).  Not built with sanitizers and not
 * run under valgrind: both replace malloc, and RSS then measures them. */
#include <unistd.h>

#include "kong_helpers.h"

enum { EXCHANGES = 120, BODY = 100 * 1024 };

/* Twice 120 exchanges with 100 KiB bodies each way (under glibc's mmap
 * threshold, so they come from the heap), all in flight at once (every
 * response phase before any log phase): the heap grows by over 20 MiB.
 * Without the trim RSS stays there (29 MiB measured); with it, it falls
 * back near its start. */
TEST(rss_returns_after_large_bodies) {
  fk_server_t srv;
  fk_client_t k;
  fk_collector_t col;
  char cfg[512], ser[4096];
  char *keys[EXCHANGES];

  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  snprintf(cfg, sizeof(cfg),
           "{\"host\":\"127.0.0.1\",\"port\":%d,\"max_body_size\":%d,\"queue_max_bytes\":268435456}", col.port,
           BODY);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  ASSERT(inst > 0);
  long rss0 = fk_server_rss_kib(&srv);

  char *body = malloc(BODY);
  ASSERT(body != NULL);
  for (int i = 0; i < BODY; i++) body[i] = (char)('a' + i % 26);
  long rss_contexts = 0;
  for (int round = 1; round <= 2; round++) {
    for (int i = 0; i < EXCHANGES; i++) keys[i] = kh_response_phase(&k, inst, body, BODY, body, BODY);
    rss_contexts = fk_server_rss_kib(&srv);
    for (int i = 0; i < EXCHANGES; i++) {
      kh_serialize(ser, sizeof(ser), keys[i], "text/plain", NULL, NULL);
      kh_log_phase(&k, inst, ser);
      free(keys[i]);
    }
    ASSERT_EQ(fk_collector_wait_lines(&col, round * EXCHANGES, 30000), round * EXCHANGES);
  }
  free(body);

  /* 120 x 200 KiB of captured bodies were held at once */
  if (rss_contexts - rss0 < 20 * 1024)
    FAIL("RSS grew by only %ld KiB: the test did not load the heap", rss_contexts - rss0);
  long rss = 0;
  int64_t trims = 0;
  for (int i = 0; i < 100; i++) { /* the tick runs once a second */
    usleep(100000);
    rss = fk_server_rss_kib(&srv);
    trims = kh_status(&k, "server", "heap_trims");
    if (trims >= 1 && rss - rss0 < 8 * 1024) break;
  }
  if (trims < 1) FAIL("no heap trim; RSS %ld KiB (started at %ld, %ld with the contexts)", rss, rss0, rss_contexts);
  if (rss - rss0 >= 8 * 1024)
    FAIL("RSS %ld KiB after the burst (started at %ld, %ld with the contexts)", rss, rss0, rss_contexts);
  if (rss >= 20 * 1024) FAIL("idle RSS %ld KiB, over 20 MiB", rss);
  ASSERT_EQ(kh_status(&k, "sink", "records_sent"), 2 * EXCHANGES);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
}
