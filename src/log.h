/* log.h: the server's own log lines, to stderr, one line each:
 *   2026-11-26T10:36:20.123Z [kong-c-pluginserver] LEVEL message
 * Kong merges the server's stderr into its own log at INFO level.
 * Never pass body bytes or header values to these functions. */
#ifndef KPS_LOG_H
#define KPS_LOG_H

typedef enum kps_log_level_e {
  KPS_LOG_DEBUG = 0,
  KPS_LOG_INFO,
  KPS_LOG_NOTICE,
  KPS_LOG_WARN,
  KPS_LOG_ERROR,
  KPS_LOG_OFF
} kps_log_level_t;

void kps__log_set_level(kps_log_level_t level);
kps_log_level_t kps__log_get_level(void);
/* Parses "debug", "info", "notice", "warn", "error" or "off"; -1 if unknown. */
int kps__log_parse_level(const char *name);
void kps__log(kps_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define KPS_DEBUG(...) kps__log(KPS_LOG_DEBUG, __VA_ARGS__)
#define KPS_INFO(...) kps__log(KPS_LOG_INFO, __VA_ARGS__)
#define KPS_NOTICE(...) kps__log(KPS_LOG_NOTICE, __VA_ARGS__)
#define KPS_WARN(...) kps__log(KPS_LOG_WARN, __VA_ARGS__)
#define KPS_ERROR(...) kps__log(KPS_LOG_ERROR, __VA_ARGS__)

#endif
