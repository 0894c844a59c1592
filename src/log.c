/* log.c: timestamped, levelled lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static kps_log_level_t current_level = KPS_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "notice", "warn", "error", "off"};

void kps__log_set_level(kps_log_level_t level) { current_level = level; }

kps_log_level_t kps__log_get_level(void) { return current_level; }

int kps__log_parse_level(const char *name) {
  for (int i = 0; i <= (int)KPS_LOG_OFF; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

void kps__log(kps_log_level_t level, const char *fmt, ...) {
  char line[1024];
  struct timeval tv;
  struct tm tm;
  size_t n;
  va_list ap;

  if (level < current_level || level >= KPS_LOG_OFF) return;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03dZ [kong-c-pluginserver] %s ",
                        (int)(tv.tv_usec / 1000), level_names[level]);
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  n = strlen(line);
  line[n++] = '\n';
  /* One write per line so lines from a restarting server never interleave. */
  fwrite(line, 1, n, stderr);
  fflush(stderr);
}
