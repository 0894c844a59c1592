/* syslog.h: the RFC 5424 header tcp-body-log puts before a record when
 * `framing` is "syslog", and the facility names of the schema.
 *
 * A framed record is (RFC 6587 octet counting, no newline after it):
 *   MSG-LEN SP "<" PRI ">1" SP TIMESTAMP SP HOSTNAME SP APP-NAME SP "-" SP
 *   "tcp-body-log" SP "-" SP MSG
 * PRI = facility * 8 + 6 (informational), TIMESTAMP the record's build
 * time in UTC with milliseconds (2026-11-26T10:36:20.123Z), PROCID "-",
 * MSGID "tcp-body-log", no structured data ("-"), MSG the JSON record
 * without BOM and without newline; MSG-LEN counts the bytes after its SP. */
#ifndef TBL_SYSLOG_H
#define TBL_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

/* Room tbl_syslog_header needs: "<191>1 " (7) + timestamp and SP (25) +
 * hostname and SP (256) + app-name and SP (49) + "- tcp-body-log - " (17). */
#define TBL_SYSLOG_HEADER_MAX 384
#define TBL_SYSLOG_HOSTNAME_MAX 255 /* RFC 5424 HOSTNAME: 1*255PRINTUSASCII */
#define TBL_SYSLOG_APP_NAME_MAX 48  /* RFC 5424 APP-NAME: 1*48PRINTUSASCII */
#define TBL_SYSLOG_MSGID "tcp-body-log"

/* The facility names of Kong's syslog plugin, in code order, NULL-terminated:
 * kern user mail daemon auth syslog lpr news uucp cron authpriv ftp
 * local0..local7 (the schema's one_of for syslog_facility). */
extern const char *const tbl_syslog_facility_names[];

/* The code of a facility name (kern 0 ... ftp 11, local0..local7 16..23),
 * or -1 for a name not in tbl_syslog_facility_names (case-sensitive). */
int tbl_syslog_facility_code(const char *name);

/* This machine's name as a syslog HOSTNAME, into out[cap] (NUL-terminated):
 * gethostname(), keeping only the bytes '!'..'~', at most 255 (and cap - 1)
 * of them; "-" (the NILVALUE) when nothing is left. */
void tbl_syslog_hostname(char *out, size_t cap);

/* Writes the header of one message, from "<PRI>" to the SP before MSG, into
 * out (TBL_SYSLOG_HEADER_MAX bytes, not NUL-terminated); returns its
 * length.  facility outside 0..23 is taken as 1 ("user"); hostname and
 * app_name keep only their '!'..'~' bytes, cut to 255 and 48, and are "-"
 * when NULL or empty; the timestamp is "-" when now_ms is past year 9999. */
size_t tbl_syslog_header(char *out, int facility, uint64_t now_ms, const char *hostname,
                         const char *app_name);

#endif
