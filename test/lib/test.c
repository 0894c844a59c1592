/* test.c: the runner behind test.h. */
#include "test.h"

test_entry_t test_table[TEST_MAX];
int test_count;

const char *test_escape(const char *s, size_t n, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') buf[o++] = (char)c;
    else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
  }
  buf[o] = '\0';
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    for (int i = 0; i < test_count; i++) printf("%s\n", test_table[i].name);
    return 0;
  }
  for (int i = 0; i < test_count; i++) {
    if (strcmp(test_table[i].name, argv[1]) == 0) {
      test_table[i].fn();
      printf("ok %s\n", argv[1]);
      return 0;
    }
  }
  fprintf(stderr, "no test named %s\n", argv[1]);
  return 1;
}
