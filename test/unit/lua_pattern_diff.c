/* lua_pattern_diff.c: src/lua_pattern.c against the real thing.  Runs
 * lua_pattern_diff.lua under luajit (KPS_LUAJIT, else `luajit` on PATH;
 * missing luajit fails the test, CI installs it) and checks, for every
 * (pattern, subject) pair:
 *   - a LuaJIT error means kps__lua_pattern_check refuses the pattern;
 *   - a pattern we accept gets LuaJIT's verdict from kps__lua_pattern_find.
 * It also counts the patterns LuaJIT answered that we refuse, by reason. */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lua_pattern.h"
#include "test.h"

#define SCRIPT KPS_SOURCE_DIR "/test/unit/lua_pattern_diff.lua"
#define MIN_COMPARED 20000 /* cases; fewer means the script went wrong */

/* Runs luajit on the script; returns its whole stdout (NUL-terminated,
 * caller frees) or fails the test. */
static char *run_luajit(void) {
  const char *bin = getenv("KPS_LUAJIT");
  if (bin == NULL || *bin == '\0') bin = "luajit";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execlp(bin, bin, SCRIPT, (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0, cap = 1 << 20;
  char *buf = malloc(cap);
  ASSERT(buf != NULL);
  for (;;) {
    if (cap - len < 65536) {
      cap *= 2;
      buf = realloc(buf, cap);
      ASSERT(buf != NULL);
    }
    ssize_t n = read(fds[0], buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR) continue;
    ASSERT(n >= 0);
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fds[0]);
  buf[len] = '\0';
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    FAIL("%s %s failed (%s %d): this test needs LuaJIT, Kong's Lua (the luajit2 package, see "
         ".ci/install-deps; or set KPS_LUAJIT)", bin, SCRIPT, WIFEXITED(status) ? "exit status" : "signal",
         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return buf;
}

/* Decodes the hex run at *p (up to a space or the end) in place; returns
 * its start and sets *n, moves *p past it. */
static char *unhex(char **p, size_t *n) {
  char *s = *p, *out = *p;
  size_t k = 0;
  while (s[0] != '\0' && s[0] != ' ') {
    unsigned v;
    if (s[1] == '\0' || sscanf(s, "%2x", &v) != 1) FAIL("bad hex in luajit output: %.40s", *p);
    out[k++] = (char)v;
    s += 2;
  }
  *n = k;
  *p = s;
  return out;
}


/* Why we refuse a pattern LuaJIT answered; the last two are malformed
 * patterns whose bad part LuaJIT never reached on these subjects (it
 * reads a pattern only as far as a match attempt gets). */
static const char *const reasons[] = {
    "capture", "back-reference", "%b", "%f", "not a character class", "NUL byte", "longer than",
    "missing ']'", "lone '%'",
};
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

typedef struct {
  const char *pat; /* the current pattern, NULL before the first */
  size_t plen;
  int ours;        /* kps__lua_pattern_check's answer for it */
  char err[256];   /* and its message */
  int lj_errors;   /* its cases LuaJIT raised an error on */
  long patterns, accepted, cases, compared, matched, lj_err_patterns, lj_err_cases, bad;
  long refused[NREASONS];
} diff_t;

/* Files the current pattern's outcome once all its cases are in. */
static void finish_pattern(diff_t *d) {
  char b[1200];
  if (d->pat == NULL) return;
  if (d->lj_errors > 0) {
    d->lj_err_patterns++;
  } else if (d->ours != 0) {
    size_t r = 0;
    while (r < NREASONS && strstr(d->err, reasons[r]) == NULL) r++;
    if (r == NREASONS) FAIL("refused \"%s\" for an unexpected reason: %s", test_escape(d->pat, d->plen, b, sizeof(b)), d->err);
    d->refused[r]++;
  }
}

/* One "S <subject> <verdict>" line for the current pattern. */
static void check_case(diff_t *d, char *p, const char *line) {
  char b1[1200], b2[1200];
  size_t slen;
  const char *subj = unhex(&p, &slen);
  if (p[0] != ' ' || (p[1] != '1' && p[1] != '0' && p[1] != 'E')) FAIL("unexpected luajit output: %.60s", line);
  d->cases++;
  if (p[1] == 'E') {
    d->lj_errors++;
    d->lj_err_cases++;
    if (d->ours == 0 && d->bad++ < 20)
      fprintf(stderr, "LuaJIT raised \"%s\" for (\"%s\"):match(\"%s\"), but the pattern is accepted\n", p + 3,
              test_escape(subj, slen, b2, sizeof(b2)), test_escape(d->pat, d->plen, b1, sizeof(b1)));
    return;
  }
  if (d->ours != 0) return;
  int want = p[1] == '1';
  int got = kps__lua_pattern_find(d->pat, d->plen, subj, slen);
  d->compared++;
  d->matched += want;
  if (got != want && d->bad++ < 20)
    fprintf(stderr, "(\"%s\"):match(\"%s\"): LuaJIT says %s, kps__lua_pattern_find says %s\n",
            test_escape(subj, slen, b2, sizeof(b2)), test_escape(d->pat, d->plen, b1, sizeof(b1)), want ? "a match" : "nil",
            got ? "a match" : "nil");
}

TEST(lua_pattern_matches_luajit) {
  char *out = run_luajit(), *line, *next;
  static diff_t d; /* zeroed; large */

  if (strncmp(out, "# LuaJIT 2.", 11) != 0) FAIL("not LuaJIT 2.x output: %.60s", out);
  printf("%.*s\n", (int)strcspn(out + 2, "\n"), out + 2);
  for (line = out; line != NULL && *line != '\0'; line = next) {
    next = strchr(line, '\n');
    if (next != NULL) *next++ = '\0';
    if (line[0] == '#') continue;
    if (line[0] == 'P' && line[1] == ' ') {
      char *p = line + 2;
      finish_pattern(&d);
      d.pat = unhex(&p, &d.plen);
      d.ours = kps__lua_pattern_check(d.pat, d.plen, d.err, sizeof(d.err));
      d.accepted += d.ours == 0;
      d.lj_errors = 0;
      d.patterns++;
    } else if (line[0] == 'S' && line[1] == ' ' && d.pat != NULL) {
      check_case(&d, line + 2, line);
    } else {
      FAIL("unexpected luajit output: %.60s", line);
    }
  }
  finish_pattern(&d);

  printf("%ld patterns, %ld cases\n", d.patterns, d.cases);
  printf("accepted here: %ld patterns; %ld cases compared (%ld match, %ld nil), %ld differences\n", d.accepted,
         d.compared, d.matched, d.compared - d.matched, d.bad);
  printf("LuaJIT raised an error: %ld patterns (%ld cases); every one refused here\n", d.lj_err_patterns,
         d.lj_err_cases);
  printf("LuaJIT answered but refused here, by reason:");
  for (size_t r = 0; r < NREASONS; r++) printf(" [%s] %ld", reasons[r], d.refused[r]);
  printf("\n");
  free(out);
  if (d.bad > 0) FAIL("%ld disagreements with LuaJIT (the first 20 above)", d.bad);
  if (d.compared < MIN_COMPARED) FAIL("only %ld cases compared, want %d or more", d.compared, MIN_COMPARED);
}
