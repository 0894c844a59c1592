/* lua_pattern.h: Kong's `match` schema rule, i.e. LuaJIT 2.1's
 * `value:match(pattern) ~= nil`, for the subset of Lua patterns without
 * captures (lua_pattern.c says which, and why the answer is exact). */
#ifndef KPS_LUA_PATTERN_H
#define KPS_LUA_PATTERN_H

#include <stddef.h>

/* The longest pattern accepted, in bytes.  Well under the length at which
 * LuaJIT's own matcher could raise "pattern too complex" (lua_pattern.c). */
#define KPS_LUA_PATTERN_MAX 256

/* 0 if the `patlen` bytes at `pat` are a Lua pattern that LuaJIT accepts and
 * that kps__lua_pattern_find answers exactly; else -1 and a message naming
 * the problem and its byte (1-based) in `err` (NUL-terminated, truncated to
 * `errlen`; `err` may be NULL when errlen is 0).  Refused: captures ( ),
 * back-references %0-%9, %b, %f, % followed by a letter that is not a class,
 * a trailing %, an unclosed [, NUL bytes, and patterns longer than
 * KPS_LUA_PATTERN_MAX.  Borrows `pat` for the call only. */
int kps__lua_pattern_check(const char *pat, size_t patlen, char *err, size_t errlen);

/* 1 if LuaJIT's string.match(s, pat) would return non-nil (a match anywhere,
 * or at the start with ^ and/or the end with $; an empty match counts), else
 * 0.  `s` is `slen` arbitrary bytes, NULs included.  A pattern that
 * kps__lua_pattern_check refuses matches nothing (0), so a caller that forgot
 * the check fails closed.  No recursion and no backtracking: time is
 * O(patlen * slen), stack about 9 KiB, no allocation.  Borrows both buffers
 * for the call only. */
int kps__lua_pattern_find(const char *pat, size_t patlen, const char *s, size_t slen);

#endif
