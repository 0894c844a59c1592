/* test.c: the runner behind test.h. */
#include "test.h"

test_entry_t test_table[TEST_MAX];
int test_count;

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
