/* test_lua_pattern.c: the `match` rule's Lua patterns (src/lua_pattern.c),
 * grouped by kind.  Every expected answer here is what LuaJIT 2.1's
 * string.match says (lua_pattern_diff.c checks thousands more against a
 * real luajit). */
#include "lua_pattern.h"
#include "test.h"


static void expect(const char *p, size_t pn, const char *s, size_t sn, int want, int line) {
  char err[256], b1[1200], b2[1200];
  if (kps__lua_pattern_check(p, pn, err, sizeof(err)) != 0)
    FAIL("line %d: pattern \"%s\" refused: %s", line, test_escape(p, pn, b1, sizeof(b1)), err);
  int got = kps__lua_pattern_find(p, pn, s, sn);
  if (got != want)
    FAIL("line %d: (\"%s\"):match(\"%s\") should %s", line, test_escape(s, sn, b2, sizeof(b2)),
         test_escape(p, pn, b1, sizeof(b1)), want ? "match" : "not match");
}

static void expect_refused(const char *p, size_t pn, const char *why, int line) {
  char err[256] = "unset", b[1200];
  if (kps__lua_pattern_check(p, pn, err, sizeof(err)) != -1)
    FAIL("line %d: pattern \"%s\" accepted", line, test_escape(p, pn, b, sizeof(b)));
  if (strstr(err, why) == NULL) FAIL("line %d: \"%s\" does not contain \"%s\"", line, err, why);
  /* An unchecked refused pattern fails closed. */
  ASSERT_EQ(kps__lua_pattern_find(p, pn, "", 0), 0);
  ASSERT_EQ(kps__lua_pattern_find(p, pn, p, pn), 0);
}

/* String literals, so embedded \0 bytes count. */
#define YES(p, s) expect(p, sizeof(p) - 1, s, sizeof(s) - 1, 1, __LINE__)
#define NO(p, s) expect(p, sizeof(p) - 1, s, sizeof(s) - 1, 0, __LINE__)
#define REFUSED(p, why) expect_refused(p, sizeof(p) - 1, why, __LINE__)

/* How many of the 256 one-byte subjects pattern p matches. */
static int count_bytes(const char *p) {
  int n = 0;
  for (int c = 0; c < 256; c++) {
    char b = (char)c;
    n += kps__lua_pattern_find(p, strlen(p), &b, 1);
  }
  return n;
}

TEST(lua_pattern_empty_pattern_and_subject) {
  YES("", "");
  YES("", "abc");
  YES("^", "");
  YES("^", "abc");
  YES("$", "");
  YES("$", "abc");
  YES("^$", "");
  NO("^$", "a");
  NO("^$", "\0");
  NO("a", "");
  NO(".", "");
  YES("a*", "");
  YES("a-", "");
  YES("a?", "");
  NO("a+", "");
  NO("%z", "");
  YES("[^a]*", "");
}

TEST(lua_pattern_anchors) {
  YES("^ab", "abc");
  NO("^ab", "cab");
  YES("ab$", "cab");
  NO("ab$", "abc");
  YES("^ab$", "ab");
  NO("^ab$", "abab");
  YES("ab", "xxabxx");
  YES("^a*$", "aaaa");
  NO("^a*$", "aaba");
  YES("a*$", "ba");
  /* '$' anywhere but last, and '^' anywhere but first, are plain bytes. */
  YES("a$b", "xa$b");
  NO("a$b", "ab");
  YES("$$", "a$");
  NO("$$", "a");
  YES("%$$", "cost$");
  NO("%$$", "cost");
  YES("b^", "ab^");
  NO("b^", "ab");
  YES("^^a", "^a");
  NO("^^a", "a");
  YES("^$$", "$");
  YES("$a", "$a");
  NO("$a", "a");
  /* A quantifier after '^' or first has nothing to repeat: plain byte. */
  YES("^*", "*a");
  NO("^*", "a*");
  YES("*", "a*");
  YES("^?", "?");
  NO("^?", "");
  YES("+", "+");
  NO("+", "a");
  YES("^-", "-");
  NO("^-", "a");
  YES("$*", "");
  NO("^$+$", "");
  YES("^$+$", "$$");
  /* An unanchored match may start at the very end (empty match). */
  YES("a*$", "bbb");
}

TEST(lua_pattern_classes_count_the_c_locale) {
  /* Complements hold exactly the other bytes; nothing above 0x7f is in a
   * class (LuaJIT's ASCII tables, the "C" locale). */
  static const struct {
    const char *cls;
    int n;
  } tab[] = {
      {"a", 52}, {"c", 33}, {"d", 10}, {"g", 94}, {"l", 26}, {"p", 32},
      {"s", 6},  {"u", 26}, {"w", 62}, {"x", 22}, {"z", 1},
  };
  for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
    char p[3] = {'%', tab[i].cls[0], '\0'};
    ASSERT_EQ(count_bytes(p), tab[i].n);
    p[1] = (char)(tab[i].cls[0] - 'a' + 'A');
    ASSERT_EQ(count_bytes(p), 256 - tab[i].n);
    for (int c = 0x80; c < 256; c++) {
      char b = (char)c;
      p[1] = tab[i].cls[0];
      ASSERT_EQ(kps__lua_pattern_find(p, 2, &b, 1), 0);
    }
  }
}

TEST(lua_pattern_each_class_and_complement) {
  YES("%a", "z"); YES("%a", "A"); NO("%a", "@"); NO("%a", "["); NO("%a", "`"); NO("%a", "{"); NO("%a", "\xe9");
  YES("%A", "1"); NO("%A", "Q"); YES("%A", "\xe9");
  YES("%c", "\x01"); YES("%c", "\x1f"); YES("%c", "\x7f"); YES("%c", "\0"); NO("%c", " "); NO("%c", "\x80");
  YES("%C", "a"); NO("%C", "\n");
  YES("%d", "0"); YES("%d", "9"); NO("%d", "/"); NO("%d", ":"); NO("%d", "\xb2");
  YES("%D", "x"); NO("%D", "5");
  YES("%g", "!"); YES("%g", "~"); YES("%g", "a"); NO("%g", " "); NO("%g", "\x7f"); NO("%g", "\xa0");
  YES("%G", " "); NO("%G", "#");
  YES("%l", "a"); YES("%l", "z"); NO("%l", "A"); NO("%l", "\xdf");
  YES("%L", "A"); NO("%L", "q");
  YES("%p", "!"); YES("%p", "/"); YES("%p", ":"); YES("%p", "@"); YES("%p", "["); YES("%p", "`");
  YES("%p", "{"); YES("%p", "~"); YES("%p", "_"); NO("%p", "a"); NO("%p", " "); NO("%p", "\x7f"); NO("%p", "\xa1");
  YES("%P", "a"); NO("%P", ".");
  YES("%s", " "); YES("%s", "\t"); YES("%s", "\n"); YES("%s", "\v"); YES("%s", "\f"); YES("%s", "\r");
  NO("%s", "\x1c"); NO("%s", "\x85"); NO("%s", "\xa0"); NO("%s", "\0");
  YES("%S", "a"); NO("%S", " ");
  YES("%u", "A"); YES("%u", "Z"); NO("%u", "a"); NO("%u", "\xc0");
  YES("%U", "a"); NO("%U", "M");
  YES("%w", "a"); YES("%w", "Z"); YES("%w", "5"); NO("%w", "_"); NO("%w", "-");
  YES("%W", "_"); NO("%W", "k");
  YES("%x", "0"); YES("%x", "a"); YES("%x", "F"); NO("%x", "g"); NO("%x", "G");
  YES("%X", "g"); NO("%X", "c");
  YES("%z", "\0"); YES("%z", "a\0b"); NO("%z", "ab"); YES("^%z$", "\0"); NO("^%z$", "\0\0");
  YES("%Z", "a"); NO("%Z", "\0\0"); YES("^%Z+$", "ab\xff");
  YES("^%d+%.%d+$", "3.14"); NO("^%d+%.%d+$", "3x14");
}

TEST(lua_pattern_escapes_of_punctuation) {
  YES("%.", "."); NO("%.", "a");
  YES("%%", "%"); NO("%%", "a");
  YES("%[", "["); YES("%]", "]"); YES("%(", "("); YES("%)", ")");
  YES("%-", "-"); YES("^%-$", "-"); NO("^%-$", "");
  YES("%*", "*"); NO("%*", ""); YES("%+", "+"); YES("%?", "?"); YES("%^", "^"); YES("^%^", "^x");
  YES("% ", " "); YES("%_", "_"); YES("%/", "/");
  YES("%\xff", "\xff"); NO("%\xff", "\xfe");
  YES("%\x01", "\x01");
  YES("^%a%%$", "b%");
}

TEST(lua_pattern_sets_and_ranges) {
  YES("[abc]", "xbx"); NO("[abc]", "xyz");
  YES("[a-c]", "b"); NO("[a-c]", "d"); NO("[a-c]", "-");
  YES("[a-cx-z]", "y"); NO("[a-cx-z]", "m");
  YES("[%d%s]", " "); YES("[%d%s]", "7"); NO("[%d%s]", "x");
  YES("[%a_][%w_]*", "_x1");
  YES("[.]", "."); NO("[.]", "a");
  YES("[%.]", "."); YES("[[]", "["); YES("[(]", "("); YES("[)]", ")");
  YES("[$]", "$"); YES("^[$]$", "$");
  YES("[*+?-]", "?"); YES("[*+?-]", "-");
  YES("[%z]", "\0"); NO("[%z]", "a");
  YES("[\x80-\xff]", "\xc3"); NO("[\x80-\xff]", "\x7f");
  YES("[\x01-\x7f]", "\x7f"); NO("[\x01-\x7f]", "\0");
  /* A range whose ends are backwards is empty. */
  NO("[z-a]", "a"); NO("[z-a]", "z"); NO("[z-a]", "-"); NO("[z-a]", "m");
  YES("[+--]", ","); YES("[+--]", "+"); NO("[+--]", ".");
}

TEST(lua_pattern_set_negation) {
  YES("[^a-c]", "d"); NO("[^a-c]", "b"); NO("[^a-c]", "");
  YES("^[^%d]+$", "abc"); NO("^[^%d]+$", "ab1");
  YES("[^%z]", "\0a"); NO("[^%z]", "\0\0");
  YES("[^^]", "a"); NO("[^^]", "^");
  YES("[a^]", "^"); YES("[a^]", "a");
  YES("[^\xff]", "\xfe"); NO("[^\xff]", "\xff");
  YES("[^%A]", "q"); NO("[^%A]", "1");
  YES("[%^a]", "^");
}

TEST(lua_pattern_set_bracket_and_dash_edge_cases) {
  /* ']' first (also after '^') is a member, not the end. */
  YES("[]]", "]"); NO("[]]", "a");
  YES("[]a]", "a"); YES("[]a]", "]");
  NO("[^]]", "]"); YES("[^]]", "x");
  YES("[]-a]", "^"); YES("[]-a]", "_"); NO("[]-a]", "b");
  YES("[%]]", "]"); YES("[%]a]", "a");
  YES("[%[]", "[");
  /* '-' first or last, or before the closing ']', is a member. */
  YES("[a-]", "-"); YES("[a-]", "a"); NO("[a-]", "b");
  YES("[-a]", "-"); YES("[-a]", "a"); NO("[-a]", "b");
  YES("[^-]", "a"); NO("[^-]", "-");
  YES("[-]", "-");
  YES("[--]", "-");
  YES("[a-]]", "a]"); NO("[a-]]", "a"); YES("[a-]]", "-]");
  /* An escape is never a range end: "%a-z" is %a, '-', 'z' ... */
  YES("[%a-z]", "-"); YES("[%a-z]", "Q"); NO("[%a-z]", "1");
  /* ... but that '-' may start a range of its own: [%a--/] is %a and
   * '-'..'/'. */
  YES("[%a--/]", "."); YES("[%a--/]", "-"); YES("[%a--/]", "/"); YES("[%a--/]", "Q"); NO("[%a--/]", ",");
  /* "a-%" is the empty range 'a'..'%', so [a-%d] is just 'd'. */
  YES("[a-%d]", "d"); NO("[a-%d]", "a"); NO("[a-%d]", "5"); NO("[a-%d]", "%");
  /* "a-%" then "%]" ... whose ']' is the set's own end: [a-%%] holds ']'. */
  YES("[a-%%]", "]"); NO("[a-%%]", "%"); NO("[a-%%]", "a");
  YES("[a-%]]", "]"); NO("[a-%]]", "a");
}

TEST(lua_pattern_quantifiers) {
  YES("^a*$", ""); YES("^a*$", "aaa"); NO("^a*$", "aab");
  YES("^a+$", "a"); YES("^a+$", "aaa"); NO("^a+$", "");
  YES("^a?$", ""); YES("^a?$", "a"); NO("^a?$", "aa");
  YES("^ab?c$", "ac"); YES("^ab?c$", "abc"); NO("^ab?c$", "abbc");
  YES("^[ab]*c$", "abbac"); NO("^[ab]*c$", "abxc");
  YES("^%d+%-%d+$", "12-34"); NO("^%d+%-%d+$", "12-");
  YES("^.*$", "any\0thing\xff");
  YES("^a*a*a*b$", "aaab"); NO("^a*a*a*b$", "aaa");
  YES("^a+a+a+$", "aaa"); NO("^a+a+a+$", "aa");
  /* A quantifier after a quantifier is a plain byte. */
  YES("^a**$", "aa*"); NO("^a**$", "aa");
  YES("^a?+$", "+"); YES("^a?+$", "a+"); NO("^a?+$", "a");
  YES("^a*?$", "aa?"); NO("^a*?$", "aa");
}

TEST(lua_pattern_lazy_dash) {
  /* For "is there a match", lazy '-' accepts what '*' accepts. */
  YES("^a-$", ""); YES("^a-$", "aaa"); NO("^a-$", "ab");
  YES("^a-b", "aaab"); NO("^a-b", "aaac");
  YES("^.-$", "xyz");
  YES("^x.-y$", "x123y"); NO("^x.-y$", "x123");
  YES("a-", "bbb");
  YES("--", "");
  YES("^%a-%d$", "abc1"); NO("^%a-%d$", "ab-1");
  YES("^[ab]-c", "abac"); NO("^[ab]-c", "abxc");
}

TEST(lua_pattern_high_bytes_and_nul_subjects) {
  YES(".", "\xff"); YES(".", "\0"); YES("^...$", "\0\x80\xff");
  YES("\xff", "a\xff"); NO("\xff", "\xfe");
  YES("^[\xe0-\xef][\x80-\xbf][\x80-\xbf]$", "\xe2\x82\xac");
  NO("%a", "\xe9"); YES("%W", "\xe9"); YES("%P", "\xe9"); YES("%C", "\x80");
  YES("a.b", "a\0b"); NO("a$", "a\0"); YES("a%z$", "a\0");
  YES("b", "\0\0b"); YES("^%z*b$", "\0\0b");
  YES("", "\0");
}

TEST(lua_pattern_no_blowup) {
  /* O(n^12) for a backtracking matcher; linear here. */
  static char s[20001];
  memset(s, 'a', sizeof(s) - 1);
  const char *p = "a*a*a*a*a*a*a*a*a*a*a*a*b";
  ASSERT_EQ(kps__lua_pattern_find(p, strlen(p), s, sizeof(s) - 1), 0);
  p = "a-a-a-a-a-a-a-a-a-a-a-a-$";
  ASSERT_EQ(kps__lua_pattern_find(p, strlen(p), s, sizeof(s) - 1), 1);
  p = "^.*.*.*.*.*.*.*.*.*%z";
  ASSERT_EQ(kps__lua_pattern_find(p, strlen(p), s, sizeof(s) - 1), 0);
}

TEST(lua_pattern_longest_accepted) {
  char p[KPS_LUA_PATTERN_MAX + 2], s[KPS_LUA_PATTERN_MAX], err[128];
  for (int i = 0; i < KPS_LUA_PATTERN_MAX; i += 2) memcpy(p + i, "a?", 2);
  memset(s, 'a', sizeof(s));
  ASSERT_EQ(kps__lua_pattern_check(p, KPS_LUA_PATTERN_MAX, err, sizeof(err)), 0);
  ASSERT_STREQ(err, "");
  ASSERT_EQ(kps__lua_pattern_find(p, KPS_LUA_PATTERN_MAX, s, KPS_LUA_PATTERN_MAX / 2), 1);
  /* 128 "+" items: 256 states, the most there can be.  One a short is the
   * case LuaJIT's backtracking spends ages on (every split of the a's). */
  for (int i = 0; i < KPS_LUA_PATTERN_MAX; i += 2) memcpy(p + i, "a+", 2);
  ASSERT_EQ(kps__lua_pattern_find(p, KPS_LUA_PATTERN_MAX, s, KPS_LUA_PATTERN_MAX / 2), 1);
  ASSERT_EQ(kps__lua_pattern_find(p, KPS_LUA_PATTERN_MAX, s, KPS_LUA_PATTERN_MAX / 2 - 1), 0);
  p[KPS_LUA_PATTERN_MAX] = 'a';
  ASSERT_EQ(kps__lua_pattern_check(p, KPS_LUA_PATTERN_MAX + 1, err, sizeof(err)), -1);
  ASSERT_STREQ(err, "pattern is 257 bytes, longer than the 256 supported");
}

TEST(lua_pattern_refused) {
  REFUSED("(a)", "capture '(' at byte 1");
  REFUSED("a)", "capture ')' at byte 2");
  REFUSED("()", "capture '('");
  REFUSED("x%1", "back-reference %1 at byte 3");
  REFUSED("%0", "back-reference %0");
  REFUSED("%b()", "%b (balanced match) at byte 2");
  REFUSED("%f[%a]", "%f (frontier) at byte 2");
  REFUSED("%", "lone '%'");
  REFUSED("abc%", "lone '%'");
  REFUSED("[a", "missing ']' for the set opened at byte 1");
  REFUSED("x[", "missing ']' for the set opened at byte 2");
  REFUSED("[]", "missing ']'");
  REFUSED("[^]", "missing ']'");
  REFUSED("[%]", "missing ']'");
  REFUSED("[a%", "missing ']'");
  REFUSED("[a-z", "missing ']'");
  REFUSED("%q", "%q at byte 2 is not a character class");
  REFUSED("%B", "%B at byte 2 is not a character class");
  REFUSED("[%q]", "%q at byte 3 is not a character class");
  REFUSED("[%1]", "%1 at byte 3 is not a character class");
  REFUSED("a\0b", "NUL byte at byte 2");
  REFUSED("[\0]", "NUL byte");
  /* Inside a set, or escaped, parentheses are plain bytes. */
  YES("[()]", ")");
  YES("%(%)", "()");
  /* No room for the message is fine. */
  ASSERT_EQ(kps__lua_pattern_check("(", 1, NULL, 0), -1);
  ASSERT_EQ(kps__lua_pattern_check("a", 1, NULL, 0), 0);
  ASSERT_EQ(kps__lua_pattern_check(NULL, 0, NULL, 0), 0);
  ASSERT_EQ(kps__lua_pattern_find(NULL, 0, NULL, 0), 1);
}
