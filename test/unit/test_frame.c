/* test_frame.c: the resumable MessagePack scanner (src/frame.c), edge cases
 * grouped by kind: empty, truncated, boundary, overlong, wrong type. */
#include "frame.h"
#include "test.h"

static int scan_all(const unsigned char *b, size_t n, size_t max, size_t *len) {
  kps_frame_t f;
  kps__frame_reset(&f);
  int r = kps__frame_scan(&f, b, n, max);
  *len = f.pos;
  return r;
}

TEST(frame_empty_input_needs_more) {
  size_t len;
  ASSERT_EQ(scan_all((const unsigned char *)"", 0, 100, &len), KPS_FRAME_MORE);
}

TEST(frame_scalars_complete) {
  static const struct {
    unsigned char b[10];
    size_t n;
  } cases[] = {{{0x00}, 1}, {{0xc0}, 1}, {{0xc3}, 1}, {{0xcc, 1}, 2}, {{0xcd, 1, 2}, 3},
               {{0xca, 0, 0, 0, 0}, 5}, {{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, 9}, {{0xe0}, 1},
               {{0xa2, 'h', 'i'}, 3}, {{0xd4, 1, 2}, 3}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t len;
    ASSERT_EQ(scan_all(cases[i].b, cases[i].n, 100, &len), KPS_FRAME_DONE);
    ASSERT_EQ(len, cases[i].n);
  }
}

TEST(frame_two_messages_in_one_buffer) {
  static const unsigned char b[] = {0x92, 0x01, 0x02, 0x91, 0x03};
  size_t len;
  ASSERT_EQ(scan_all(b, sizeof(b), 100, &len), KPS_FRAME_DONE);
  ASSERT_EQ(len, 3);
}

TEST(frame_truncated_resumes_byte_by_byte) {
  /* [0, 1, "plugin.GetStatus", [nil]] with a str16 and a bin8 inside */
  static const unsigned char b[] = {0x95, 0x00, 0x01, 0xda, 0x00, 0x03, 'a', 'b', 'c',
                                    0xc4, 0x02, 0xff, 0xfe, 0x91, 0xc0};
  kps_frame_t f;
  kps__frame_reset(&f);
  for (size_t n = 1; n < sizeof(b); n++) ASSERT_EQ(kps__frame_scan(&f, b, n, 100), KPS_FRAME_MORE);
  ASSERT_EQ(kps__frame_scan(&f, b, sizeof(b), 100), KPS_FRAME_DONE);
  ASSERT_EQ(f.pos, sizeof(b));
}

TEST(frame_size_boundary) {
  /* bin8 of 10 bytes: 12 bytes total; cap 12 is fine, 11 is over */
  unsigned char b[12] = {0xc4, 10};
  size_t len;
  ASSERT_EQ(scan_all(b, sizeof(b), 12, &len), KPS_FRAME_DONE);
  ASSERT_EQ(scan_all(b, sizeof(b), 11, &len), KPS_FRAME_EBIG);
}

TEST(frame_declared_overlong_refused_early) {
  static const unsigned char s32[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
  static const unsigned char a32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  static const unsigned char m32[] = {0xdf, 0x80, 0x00, 0x00, 0x00};
  size_t len;
  ASSERT_EQ(scan_all(s32, sizeof(s32), 1 << 20, &len), KPS_FRAME_EBIG);
  ASSERT_EQ(scan_all(a32, sizeof(a32), 1 << 20, &len), KPS_FRAME_EBIG);
  ASSERT_EQ(scan_all(m32, sizeof(m32), 1 << 20, &len), KPS_FRAME_EBIG);
}

TEST(frame_header_split_needs_more) {
  static const unsigned char b[] = {0xdb, 0x00};
  size_t len;
  ASSERT_EQ(scan_all(b, sizeof(b), 100, &len), KPS_FRAME_MORE);
  ASSERT_EQ(len, 0);
}

TEST(frame_never_used_byte_malformed) {
  static const unsigned char b[] = {0x92, 0x01, 0xc1};
  size_t len;
  ASSERT_EQ(scan_all(b, sizeof(b), 100, &len), KPS_FRAME_EMALFORMED);
}

TEST(frame_depth_limit) {
  unsigned char b[40];
  size_t len;
  for (int i = 0; i < 32; i++) b[i] = 0x91;
  b[32] = 0xc0;
  ASSERT_EQ(scan_all(b, 33, 100, &len), KPS_FRAME_DONE);
  for (int i = 0; i < 33; i++) b[i] = 0x91;
  b[33] = 0xc0;
  ASSERT_EQ(scan_all(b, 34, 100, &len), KPS_FRAME_EDEEP);
}

TEST(frame_empty_containers) {
  static const unsigned char b[] = {0x93, 0x90, 0x80, 0xdc, 0x00, 0x00};
  size_t len;
  ASSERT_EQ(scan_all(b, sizeof(b), 100, &len), KPS_FRAME_DONE);
  ASSERT_EQ(len, sizeof(b));
}

TEST(frame_map_counts_keys_and_values) {
  static const unsigned char b[] = {0x82, 0x01, 0x02, 0x03, 0x91, 0x04, 0xff};
  size_t len;
  ASSERT_EQ(scan_all(b, sizeof(b), 100, &len), KPS_FRAME_DONE);
  ASSERT_EQ(len, 6);
}
