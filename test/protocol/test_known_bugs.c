/* test_known_bugs.c: reproducers of bugs in src/ found while hardening
 * (issue 6) and not fixed yet; each fails until its bug is fixed.  They
 * are registered only with -DKPS_KNOWN_BUGS=ON, so that the suite and CI
 * stay green meanwhile:
 *
 *   cmake -S . -B build-bugs -DKPS_KNOWN_BUGS=ON
 *   cmake --build build-bugs && (cd build-bugs && ctest -L known_bug --output-on-failure)
 *
 * When a bug is fixed its test passes: move it to test_regressions.c (and
 * drop the matching relaxation in test/fuzz).  docs/reliability.md lists
 * them with the fixes proposed. */
#include <unistd.h>

#include "kong_helpers.h"

static fk_server_t srv;
static fk_client_t k;
static fk_collector_t col;

/* record.c (c3eb989, the splicing builder) copies nested values of
 * serialize byte for byte, whitespace included: a serialize with a line
 * break between two tokens of a nested value gives a record of several
 * lines, and a line-oriented collector (Logstash, Fluent Bit, Vector)
 * splits it into invalid JSON lines.  Kong's cjson never writes such
 * whitespace, but the record's framing should not depend on it.
 * Proposed fix: in copy() (emit mode), drop ' ', '\t', '\n' and '\r'
 * outside strings -- skip_value already knows where strings are -- or
 * escape nothing and simply replace raw '\n'/'\r' outside strings by ' '.
 * Found by fuzz_record. */
TEST(record_is_one_line_whatever_the_whitespace) {
  memset(&col, 0, sizeof(col));
  fk_collector_start(&col, 0, NULL);
  fk_server_start(&srv, "tcp-body-log", NULL);
  fk_client_init(&k, srv.socket);
  char cfg[256], ser[1024];
  snprintf(cfg, sizeof(cfg), "{\"host\":\"127.0.0.1\",\"port\":%d}", col.port);
  int64_t inst = fk_start_instance(&k, "tcp-body-log", cfg);
  char *key = kh_response_phase(&k, inst, "a", 1, "b", 1);
  snprintf(ser, sizeof(ser),
           "{\"request\":{\"headers\":{}},\"route\":{\n  \"paths\": [\n    \"/\"\n  ]\n},"
           "\"tcp_body_log_exchange\":\"%s\"}",
           key);
  free(key);
  kh_log_phase(&k, inst, ser);
  int lines = fk_collector_wait_lines(&col, 2, 2000);
  fk_client_close(&k);
  ASSERT_EQ(fk_server_stop(&srv), 0);
  fk_collector_stop(&col);
  if (lines != 1) FAIL("KNOWN BUG: one record arrived as %d lines", lines);
}
