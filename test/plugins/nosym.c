/* A shared object without the entry symbol. */
int kps_test_not_a_plugin(void);
int kps_test_not_a_plugin(void) { return 1; }
