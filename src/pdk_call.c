/* pdk_call.c: a phase handler's answers to Kong: a PDK call (with its
 * continuation), "ret", or a terminal kong.response.exit. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "event.h"
#include "instance.h"
#include "log.h"
#include "rpc.h"
#include "server.h"

/* Counts the items of a format span up to `close` ('\0', ']' or '}') and
 * checks that brackets balance and letters are known.  Returns the count,
 * or -1.  *end is set past the span. */
static long fmt_count(const char *p, char close, const char **end) {
  long n = 0;
  while (*p != close) {
    char ch = *p++;
    switch (ch) {
      case 's': case 'S': case 'b': case 'i': case 'I': case 'd': case 'B': case 'n':
        n++;
        break;
      case '[': case '{': {
        const char *sub_end;
        long k = fmt_count(p, ch == '[' ? ']' : '}', &sub_end);
        if (k < 0 || (ch == '{' && (k % 2) != 0)) return -1;
        p = sub_end + 1;
        n++;
        break;
      }
      default:
        return -1; /* unknown letter, or a span that never closes */
    }
  }
  *end = p;
  return n;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t len) {
  if (s == NULL) msgpack_pack_nil(pk);
  else msgpack_pack_str_with_body(pk, s, len);
}

/* Packs the span starting at *pp (already validated) up to `close`. */
static void fmt_pack(msgpack_packer *pk, const char **pp, char close, va_list *ap) {
  const char *p = *pp;
  while (*p != close) {
    char ch = *p++;
    switch (ch) {
      case 's': {
        const char *s = va_arg(*ap, const char *);
        pack_str(pk, s, s ? strlen(s) : 0);
        break;
      }
      case 'S': {
        const char *s = va_arg(*ap, const char *);
        size_t len = va_arg(*ap, size_t);
        pack_str(pk, s, len);
        break;
      }
      case 'b': {
        const void *b = va_arg(*ap, const void *);
        size_t len = va_arg(*ap, size_t);
        msgpack_pack_bin_with_body(pk, b, len);
        break;
      }
      case 'i': msgpack_pack_int64(pk, va_arg(*ap, int)); break;
      case 'I': msgpack_pack_int64(pk, va_arg(*ap, int64_t)); break;
      case 'd': msgpack_pack_double(pk, va_arg(*ap, double)); break;
      case 'B':
        if (va_arg(*ap, int)) msgpack_pack_true(pk);
        else msgpack_pack_false(pk);
        break;
      case 'n': msgpack_pack_nil(pk); break;
      case '[': case '{': {
        char sub_close = ch == '[' ? ']' : '}';
        const char *end;
        long k = fmt_count(p, sub_close, &end);
        if (ch == '[') msgpack_pack_array(pk, (size_t)k);
        else msgpack_pack_map(pk, (size_t)k / 2);
        fmt_pack(pk, &p, sub_close, ap);
        p++; /* past the closing bracket */
        break;
      }
    }
  }
  *pp = p;
}

/* kong.response.exit and .error never return to the plugin server (R15). */
static int is_terminal(const char *method) {
  return strcmp(method, "kong.response.exit") == 0 || strcmp(method, "kong.response.error") == 0;
}

static int check_can_answer(kps_event_t *ev, const char *what) {
  if (ev->conn != NULL) return 0;
  KPS_ERROR("%s: %s on event #%lld, which is not waiting for an answer (plugin bug)",
            ev->inst->plugin->name, what, (long long)ev->node.id);
  return -1;
}

static void send_call(kps_event_t *ev, kps_result_cb cb, void *ud, const char *method,
                      const char *fmt, long nargs, va_list *ap) {
  msgpack_packer *pk = kps__event_reply_begin(ev);
  msgpack_pack_map(pk, 2);
  msgpack_pack_str_with_body(pk, KPS_KEY_METHOD, sizeof(KPS_KEY_METHOD) - 1);
  msgpack_pack_str_with_body(pk, method, strlen(method));
  msgpack_pack_str_with_body(pk, KPS_KEY_ARGS, sizeof(KPS_KEY_ARGS) - 1);
  msgpack_pack_array(pk, (size_t)nargs);
  fmt_pack(pk, &fmt, '\0', ap);
  kps__counters.pdk_calls++;
  int terminal = is_terminal(method);
  ev->cb = cb;
  ev->cb_ud = ud;
  ev->call_pending = !terminal;
  kps__event_reply_end(ev);
  if (terminal) kps__event_finish(ev);
}

int kps_call(kps_event_t *ev, kps_result_cb cb, void *ud, const char *method, const char *fmt,
             ...) {
  const char *end;
  long nargs;
  va_list ap;

  if (check_can_answer(ev, "kps_call") != 0) return -1;
  if (fmt == NULL) fmt = "";
  nargs = method == NULL ? -1 : fmt_count(fmt, '\0', &end);
  if (nargs < 0) {
    KPS_ERROR("%s: kps_call(%s): bad argument format \"%s\"", ev->inst->plugin->name,
              method ? method : "(null)", fmt);
    kps_conn_t *c = ev->conn;
    int64_t msgid = ev->msgid;
    const char *name = ev->inst->plugin->name; /* static: outlives the event */
    kps__event_finish(ev);
    kps__conn_reply_error(c, msgid, "plugin %s made an invalid PDK call", name);
    return -1;
  }
  va_start(ap, fmt);
  send_call(ev, cb, ud, method, fmt, nargs, &ap);
  va_end(ap);
  return 0;
}

void kps_done(kps_event_t *ev) {
  if (check_can_answer(ev, "kps_done") != 0) return;
  msgpack_packer *pk = kps__event_reply_begin(ev);
  msgpack_pack_str_with_body(pk, KPS_RPC_RET, sizeof(KPS_RPC_RET) - 1);
  kps__event_reply_end(ev);
  kps__event_finish(ev);
}

void kps_exit(kps_event_t *ev, int status, const char *body, const char *const *headers) {
  if (check_can_answer(ev, "kps_exit") != 0) return;
  msgpack_packer *pk = kps__event_reply_begin(ev);
  size_t nh = 0;
  if (headers != NULL)
    while (headers[nh * 2] != NULL && headers[nh * 2 + 1] != NULL) nh++;
  msgpack_pack_map(pk, 2);
  msgpack_pack_str_with_body(pk, KPS_KEY_METHOD, sizeof(KPS_KEY_METHOD) - 1);
  msgpack_pack_str_with_body(pk, "kong.response.exit", 18);
  msgpack_pack_str_with_body(pk, KPS_KEY_ARGS, sizeof(KPS_KEY_ARGS) - 1);
  /* Kong unpacks Args positionally; a nil body with headers would leave a
   * hole, so an absent body is sent as "" when headers follow. */
  msgpack_pack_array(pk, nh > 0 ? 3 : body != NULL ? 2 : 1);
  msgpack_pack_int64(pk, status);
  if (body != NULL || nh > 0) pack_str(pk, body ? body : "", body ? strlen(body) : 0);
  if (nh > 0) {
    msgpack_pack_map(pk, nh);
    for (size_t i = 0; i < nh; i++) {
      pack_str(pk, headers[2 * i], strlen(headers[2 * i]));
      pack_str(pk, headers[2 * i + 1], strlen(headers[2 * i + 1]));
    }
  }
  kps__counters.pdk_calls++;
  kps__event_reply_end(ev);
  kps__event_finish(ev);
}
