/* test.h: a minimal test runner.  Each TEST(name) becomes its own ctest
 * test (kps_add_tests in test/CMakeLists.txt greps the names), run as
 * `binary name`.  ASSERT_* print both values and abort the test. */
#ifndef KPS_TEST_H
#define KPS_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
typedef struct {
  const char *name;
  test_fn fn;
} test_entry_t;

#define TEST_MAX 256
extern test_entry_t test_table[TEST_MAX];
extern int test_count;

#define TEST(name)                                                              \
  static void test_##name(void);                                               \
  __attribute__((constructor)) static void register_##name(void) {             \
    if (test_count < TEST_MAX) test_table[test_count++] = (test_entry_t){#name, test_##name}; \
  }                                                                            \
  static void test_##name(void)

#define FAIL(...)                                                               \
  do {                                                                         \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                            \
    fprintf(stderr, __VA_ARGS__);                                              \
    fprintf(stderr, "\n");                                                     \
    exit(1);                                                                   \
  } while (0)

#define ASSERT(c)                                                               \
  do {                                                                         \
    if (!(c)) FAIL("assertion failed: %s", #c);                                \
  } while (0)

#define ASSERT_EQ(a, b)                                                         \
  do {                                                                         \
    long long a_ = (long long)(a), b_ = (long long)(b);                        \
    if (a_ != b_) FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);              \
  } while (0)

#define ASSERT_STREQ(a, b)                                                      \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                       \
      FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                            \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (h_ == NULL || strstr(h_, n_) == NULL)                                  \
      FAIL("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_);          \
  } while (0)

/* s[0..n) for a failure message: printable ASCII as is, other bytes (NUL,
 * quotes, backslashes, >= 0x7f) as \xHH; cut to fit cap.  Returns buf. */
const char *test_escape(const char *s, size_t n, char *buf, size_t cap);

int test_main(int argc, char **argv);

#endif
