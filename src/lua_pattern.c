/* lua_pattern.c: Lua 5.1 patterns as LuaJIT 2.1 reads them (Lua manual
 * 5.4.1), without captures, answering only "does string.match find
 * anything?", which is what Kong's `match` schema rule asks.
 *
 * The pattern is compiled into a list of items, each a 256-bit byte set and
 * a repetition (once, 0..n, 0..1; `x+` becomes `x` then `x*`), with the two
 * anchors as flags.  LuaJIT's backtracking matcher tries every alternative of
 * every quantifier and every start position, and lazy `-` only changes which
 * match it returns first; so "some match exists" is exactly "the regular
 * language of the items matches some substring", and that is answered here
 * by running all states of the item list at once over the subject (a
 * Thompson simulation).  Worst case O(items * subject) steps (about 0.25 s
 * for 1 MiB against the 255 items of a 256-byte pattern), where LuaJIT's
 * own worst case is O(subject ^ quantifiers) (e.g. "a*a*a*a*b" against a
 * long run of a's), and no recursion at all.
 *
 * Where LuaJIT differs from the Lua 5.1 reference, LuaJIT wins: it has %g
 * (printable except space, from Lua 5.2) and its classes are fixed ASCII
 * tables (lj_char.c), never the C library's locale-dependent isalpha().
 * The same ASCII tests are spelled out below, so the answer is the "C"
 * locale's whatever setlocale() the process ran.
 *
 * Why the length cap keeps LuaJIT itself out of trouble: LuaJIT raises
 * "pattern too complex" past 200 nested matcher calls, and it nests one call
 * per quantified item (2 bytes at least), so a pattern of
 * KPS_LUA_PATTERN_MAX = 256 bytes nests at most 129 deep. */
#include "lua_pattern.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

_Static_assert(1 + KPS_LUA_PATTERN_MAX / 2 < 200, "LuaJIT's LJ_MAX_XLEVEL must stay out of reach");

enum { REP_ONE, REP_ANY, REP_OPT };

typedef struct {
  uint8_t set[32]; /* bit c set: the item matches byte c */
  uint8_t rep;     /* REP_ONE, REP_ANY (* and -), REP_OPT (?) */
} item_t;

typedef struct {
  int anchor_start, anchor_end;
  int n;
  item_t items[KPS_LUA_PATTERN_MAX]; /* one item per pattern byte at most */
} prog_t;

/* Character classes, ASCII only, as LuaJIT's lj_char_bits table has them. */
static int is_upper(unsigned c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(unsigned c) { return c >= 'a' && c <= 'z'; }
static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }
static int is_alpha(unsigned c) { return is_upper(c) || is_lower(c); }
static int is_alnum(unsigned c) { return is_alpha(c) || is_digit(c); }
static int is_graph(unsigned c) { return c > 0x20 && c < 0x7f; }

/* Whether byte c is in class letter cl (lower case; upper case complements
 * it).  -1 if cl is not a class letter. */
static int class_has(unsigned cl, unsigned c) {
  switch (cl) {
    case 'a': return is_alpha(c);
    case 'c': return c < 0x20 || c == 0x7f;
    case 'd': return is_digit(c);
    case 'g': return is_graph(c);
    case 'l': return is_lower(c);
    case 'p': return is_graph(c) && !is_alnum(c);
    case 's': return c == ' ' || (c >= '\t' && c <= '\r');
    case 'u': return is_upper(c);
    case 'w': return is_alnum(c);
    case 'x': return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
    case 'z': return c == 0;
    default: return -1;
  }
}

static void set_add(uint8_t *set, unsigned c) { set[c >> 3] |= (uint8_t)(1u << (c & 7)); }
static int set_has(const uint8_t *set, unsigned c) { return (set[c >> 3] >> (c & 7)) & 1; }

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err != NULL && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Adds what `%d` stands for to `set`: a class, or the byte d itself when d
 * is not alphanumeric.  `at` is d's offset, for the message.  Inside and
 * outside sets LuaJIT reads % + a non-class letter or digit as the plain
 * character (outside, %0-%9 are back-references and %b, %f special); a
 * pattern author who writes it meant something else, so it is refused. */
static int add_escape(uint8_t *set, unsigned d, size_t at, int in_set, char *err, size_t errlen) {
  if (!is_alnum(d)) {
    set_add(set, d);
    return 0;
  }
  int lower = class_has(d | 0x20, 0) >= 0;
  if (!lower && !in_set) {
    if (is_digit(d))
      return fail(err, errlen, "back-reference %%%c at byte %zu is not supported (no captures)", d, at);
    if (d == 'b') return fail(err, errlen, "%%b (balanced match) at byte %zu is not supported", at);
    if (d == 'f') return fail(err, errlen, "%%f (frontier) at byte %zu is not supported", at);
  }
  if (!lower)
    return fail(err, errlen, "%%%c at byte %zu is not a character class (write a plain '%c')", d, at, d);
  for (unsigned c = 0; c < 256; c++)
    if (class_has(d | 0x20, c) == is_lower(d)) set_add(set, c);
  return 0;
}

/* The set whose '[' is at pat[open]: ends it where LuaJIT's classend()
 * does (a ']' right after '[' or "[^" belongs to the set, and %x skips x),
 * then reads its members as matchbracketclass() does: "a-z" is a range only
 * when a ']' does not follow the '-' directly, and an escape is never a
 * range end point.  Sets *end to the offset just past the closing ']'. */
static int compile_set(const unsigned char *pat, size_t len, size_t open, uint8_t *set, size_t *end,
                       char *err, size_t errlen) {
  size_t p = open + 1, first, close;
  int negate = 0;
  if (p < len && pat[p] == '^') {
    negate = 1;
    p++;
  }
  first = p;
  do {
    if (p >= len) return fail(err, errlen, "missing ']' for the set opened at byte %zu", open + 1);
    if (pat[p++] == '%' && p < len) p++;
  } while (p >= len || pat[p] != ']');
  close = p;
  for (p = first; p < close;) {
    if (pat[p] == '%') {
      if (add_escape(set, pat[p + 1], p + 2, 1, err, errlen) != 0) return -1;
      p += 2;
    } else if (p + 2 < close && pat[p + 1] == '-') {
      for (unsigned c = pat[p]; c <= pat[p + 2]; c++) set_add(set, c);
      p += 3;
    } else {
      set_add(set, pat[p]);
      p++;
    }
  }
  if (negate)
    for (int i = 0; i < 32; i++) set[i] = (uint8_t)~set[i];
  *end = close + 1;
  return 0;
}

/* Compiles pat into g; 0, or -1 and a message.  Reads the items where
 * LuaJIT's match() would: a quantifier, '$' or '^' anywhere else is a plain
 * character, as is anything after '%' that is not alphanumeric. */
static int compile(const unsigned char *pat, size_t len, prog_t *g, char *err, size_t errlen) {
  size_t pos = 0;
  memset(g, 0, sizeof(*g));
  if (len > KPS_LUA_PATTERN_MAX)
    return fail(err, errlen, "pattern is %zu bytes, longer than the %d supported", len, KPS_LUA_PATTERN_MAX);
  if (len > 0 && memchr(pat, '\0', len) != NULL)
    return fail(err, errlen, "NUL byte at byte %zu (LuaJIT ends a pattern there; write %%z)",
                (size_t)((const unsigned char *)memchr(pat, '\0', len) - pat) + 1);
  if (len > 0 && pat[0] == '^') {
    g->anchor_start = 1;
    pos = 1;
  }
  while (pos < len) {
    item_t *it = &g->items[g->n];
    size_t end = pos + 1;
    unsigned c = pat[pos];
    if (c == '$' && pos + 1 == len) {
      g->anchor_end = 1;
      break;
    }
    switch (c) {
      case '(':
      case ')':
        return fail(err, errlen, "capture '%c' at byte %zu is not supported", c, pos + 1);
      case '%':
        if (pos + 1 == len) return fail(err, errlen, "pattern ends with a lone '%%' (write %%%% for a '%%')");
        if (add_escape(it->set, pat[pos + 1], pos + 2, 0, err, errlen) != 0) return -1;
        end = pos + 2;
        break;
      case '[':
        if (compile_set(pat, len, pos, it->set, &end, err, errlen) != 0) return -1;
        break;
      case '.':
        memset(it->set, 0xff, sizeof(it->set));
        break;
      default:
        set_add(it->set, c);
        break;
    }
    g->n++;
    pos = end;
    if (pos == len) break;
    switch (pat[pos]) {
      case '*':
      case '-': /* lazy: another order of the same alternatives */
        it->rep = REP_ANY;
        pos++;
        break;
      case '?':
        it->rep = REP_OPT;
        pos++;
        break;
      case '+': /* x+ is x x*: one more item, still at most one per byte */
        g->items[g->n] = *it;
        g->items[g->n].rep = REP_ANY;
        g->n++;
        pos++;
        break;
      default:
        break;
    }
  }
  return 0;
}

int kps__lua_pattern_check(const char *pat, size_t patlen, char *err, size_t errlen) {
  prog_t g;
  if (pat == NULL && patlen > 0) return fail(err, errlen, "no pattern");
  if (compile((const unsigned char *)(patlen ? pat : ""), patlen, &g, err, errlen) != 0) return -1;
  if (err != NULL && errlen > 0) err[0] = '\0';
  return 0;
}

/* States 0..n: state i waits for item i, state n has matched them all.
 * An optional item (REP_ANY, REP_OPT) also lets its state fall through to
 * the next, and these edges only go forward, so one ascending pass closes a
 * state set. */
static void close_states(const prog_t *g, uint8_t *st) {
  for (int i = 0; i < g->n; i++)
    if (st[i] && g->items[i].rep != REP_ONE) st[i + 1] = 1;
}

int kps__lua_pattern_find(const char *pat, size_t patlen, const char *s, size_t slen) {
  prog_t g;
  uint8_t cur[KPS_LUA_PATTERN_MAX + 1], next[KPS_LUA_PATTERN_MAX + 1];
  const unsigned char *u = (const unsigned char *)s;
  if ((pat == NULL && patlen > 0) || (s == NULL && slen > 0)) return 0;
  if (compile((const unsigned char *)(patlen ? pat : ""), patlen, &g, NULL, 0) != 0) return 0;
  const int n = g.n;
  memset(cur, 0, (size_t)n + 1);
  cur[0] = 1; /* a match may start at byte 0 ... */
  close_states(&g, cur);
  if (cur[n] && !g.anchor_end) return 1;
  for (size_t k = 0; k < slen; k++) {
    int live = 0;
    memset(next, 0, (size_t)n + 1);
    for (int i = 0; i < n; i++) {
      if (!cur[i] || !set_has(g.items[i].set, u[k])) continue;
      next[g.items[i].rep == REP_ANY ? i : i + 1] = 1;
      live = 1;
    }
    if (!g.anchor_start) {
      next[0] = 1; /* ... and, unanchored, at every later byte up to slen */
      live = 1;
    }
    if (!live) return 0;
    close_states(&g, next);
    if (next[n] && !g.anchor_end) return 1;
    memcpy(cur, next, (size_t)n + 1);
  }
  return cur[n];
}
