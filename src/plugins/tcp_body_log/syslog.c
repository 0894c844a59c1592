/* syslog.c: the RFC 5424 message header of tcp-body-log's syslog framing
 * (syslog.h); record.c adds the record and the RFC 6587 octet count. */
#include "syslog.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const tbl_syslog_facility_names[] = {
    "kern",   "user",   "mail",   "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",   "cron",   "authpriv", "ftp",  "local0", "local1", "local2", "local3",
    "local4", "local5", "local6", "local7", NULL,
};

/* The codes of tbl_syslog_facility_names, index for index (12-15 are
 * facilities Kong's syslog plugin does not name). */
static const int facility_codes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                     16, 17, 18, 19, 20, 21, 22, 23};

int tbl_syslog_facility_code(const char *name) {
  if (name == NULL) return -1;
  for (size_t i = 0; tbl_syslog_facility_names[i] != NULL; i++)
    if (strcmp(name, tbl_syslog_facility_names[i]) == 0) return facility_codes[i];
  return -1;
}

/* Copies the '!'..'~' bytes of s into out, at most max of them; "-" when
 * none.  Returns the bytes written (out has room for max). */
static size_t printusascii(char *out, const char *s, size_t max) {
  size_t n = 0;
  for (; s != NULL && *s != '\0' && n < max; s++)
    if (*s >= '!' && *s <= '~') out[n++] = *s;
  if (n == 0) out[n++] = '-';
  return n;
}

void tbl_syslog_hostname(char *out, size_t cap) {
  char name[TBL_SYSLOG_HOSTNAME_MAX + 2];
  if (cap == 0) return;
  if (gethostname(name, sizeof(name)) != 0) name[0] = '\0';
  name[sizeof(name) - 1] = '\0'; /* gethostname need not terminate a cut name */
  size_t max = cap - 1 < TBL_SYSLOG_HOSTNAME_MAX ? cap - 1 : TBL_SYSLOG_HOSTNAME_MAX;
  if (max == 0) {
    out[0] = '\0';
    return;
  }
  out[printusascii(out, name, max)] = '\0';
}

/* Writes v as exactly `width` decimal digits. */
static char *put_digits(char *o, unsigned v, int width) {
  for (int i = width - 1; i >= 0; i--, v /= 10) o[i] = (char)('0' + v % 10);
  return o + width;
}

/* YYYY-MM-DDThh:mm:ss.mmmZ (24 bytes), or "-" past year 9999. */
static size_t timestamp(char *o, uint64_t now_ms) {
  struct tm tm;
  time_t secs = (time_t)(now_ms / 1000);
  if (now_ms / 1000 > 253402300799ull || gmtime_r(&secs, &tm) == NULL) { /* 9999-12-31T23:59:59 */
    o[0] = '-';
    return 1;
  }
  char *p = put_digits(o, (unsigned)tm.tm_year + 1900, 4);
  *p++ = '-';
  p = put_digits(p, (unsigned)tm.tm_mon + 1, 2);
  *p++ = '-';
  p = put_digits(p, (unsigned)tm.tm_mday, 2);
  *p++ = 'T';
  p = put_digits(p, (unsigned)tm.tm_hour, 2);
  *p++ = ':';
  p = put_digits(p, (unsigned)tm.tm_min, 2);
  *p++ = ':';
  p = put_digits(p, (unsigned)tm.tm_sec, 2);
  *p++ = '.';
  p = put_digits(p, (unsigned)(now_ms % 1000), 3);
  *p++ = 'Z';
  return (size_t)(p - o);
}

size_t tbl_syslog_header(char *out, int facility, uint64_t now_ms, const char *hostname,
                         const char *app_name) {
  char *p = out;
  if (facility < 0 || facility > 23) facility = 1;
  unsigned pri = (unsigned)facility * 8 + 6; /* severity 6: informational */
  *p++ = '<';
  p = put_digits(p, pri, pri >= 100 ? 3 : pri >= 10 ? 2 : 1);
  memcpy(p, ">1 ", 3), p += 3;
  p += timestamp(p, now_ms);
  *p++ = ' ';
  p += printusascii(p, hostname, TBL_SYSLOG_HOSTNAME_MAX);
  *p++ = ' ';
  p += printusascii(p, app_name, TBL_SYSLOG_APP_NAME_MAX);
  static const char tail[] = " - " TBL_SYSLOG_MSGID " - "; /* PROCID, MSGID, SD */
  memcpy(p, tail, sizeof(tail) - 1), p += sizeof(tail) - 1;
  return (size_t)(p - out);
}
