/* kps_plugin.h: the public C plugin API of kong-c-pluginserver.
 *
 * A plugin is a static descriptor (kps_plugin_t): name, version, priority,
 * config fields and one handler per phase.  Kong starts an instance per
 * plugin configuration (StartInstance) and then, for every request phase the
 * plugin declares, sends an event.  The phase handler answers the event with
 * PDK calls made as continuations:
 *
 *   static void on_host(kps_event_t *ev, const kps_value_t *host, void *ud) {
 *     ...use host...
 *     kps_call(ev, NULL, NULL, "kong.response.set_header", "ss", "x-a", "b");
 *   }
 *   static void access(kps_event_t *ev) {
 *     kps_call(ev, on_host, NULL, "kong.request.get_header", "s", "host");
 *   }
 *
 * Each kps_call sends one PDK call to Kong; when Kong answers, the callback
 * runs with the decoded result.  A handler or callback must end by doing
 * exactly one of: kps_call() (another call), kps_done() (finish the event)
 * or kps_exit() (kong.response.exit, which also finishes the event).  A
 * kps_call with a NULL callback finishes the event when Kong answers it.
 *
 * Threading: everything runs on the server's single event loop thread.
 * Handlers must not block.  Plugin code never touches MessagePack or libuv.
 */
#ifndef KPS_PLUGIN_H
#define KPS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below changes layout or a function changes
 * meaning.  The server refuses plugins built against another version.
 * 2: kps_field_t.match, kps_plugin_t.checks (schema rules Kong enforces).
 * 3: kps_field_t.match_any, match_any_err and max_items. */
#define KPS_API_VERSION 3

typedef struct kps_plugin_s kps_plugin_t;
typedef struct kps_instance_s kps_instance_t;
typedef struct kps_event_s kps_event_t;
typedef struct kps_config_s kps_config_t;
typedef struct kps_value_s kps_value_t;
typedef struct kps_status_s kps_status_t;

/* ---- phases ------------------------------------------------------------ */

typedef enum kps_phase_e {
  KPS_PHASE_CERTIFICATE = 0,
  KPS_PHASE_REWRITE,
  KPS_PHASE_ACCESS,
  KPS_PHASE_RESPONSE, /* makes Kong buffer the upstream response */
  KPS_PHASE_PREREAD,
  KPS_PHASE_LOG,      /* runs in a timer with saved request data */
  KPS_PHASE__COUNT
} kps_phase_t;

/* "access", "log", ...; NULL for an out-of-range value. */
const char *kps_phase_name(kps_phase_t phase);

/* ---- configuration fields ------------------------------------------------
 * The field table is the single source of truth: `-dump` generates the Kong
 * schema from it, Kong validates every config against that schema before
 * StartInstance, and StartInstance applies the same rules again.  Every rule
 * below is one Kong's schema language states, so Kong refuses a bad config
 * when it is written (Admin API, kong.yml) instead of failing requests with
 * HTTP 500 later.  The server refuses a table that Kong could not enforce
 * (see kps_plugin_t). */

typedef enum kps_field_type_e {
  KPS_FIELD_STRING = 1,
  KPS_FIELD_INTEGER,
  KPS_FIELD_NUMBER,
  KPS_FIELD_BOOLEAN,
  KPS_FIELD_STRING_ARRAY /* array of strings */
} kps_field_type_t;

#define KPS_FIELD_REQUIRED 0x1u /* must be present and not null */
#define KPS_FIELD_BETWEEN 0x2u  /* min..max bound the value (integer, number only) */
#define KPS_FIELD_LEN 0x4u      /* min..max bound the length in bytes (string, and each
                                   element of a string array) */

/* Rules every field gets without asking, as Kong applies them:
 *   string (and each array element)  1 byte or more unless KPS_FIELD_LEN says
 *                                    otherwise (Kong's default len_min 1); never
 *                                    a NUL byte (not_match "%z"), so a config
 *                                    string is always a whole C string
 *   integer                          integral, -10^15..10^15 unless KPS_FIELD_BETWEEN
 *                                    says otherwise, within that (Kong accepts 1e300
 *                                    as an integer)
 *   number                           KPS_FIELD_BETWEEN is required, and the
 *                                    schema adds `gt` below min: Kong's `between`
 *                                    lets NaN through, which Kong then cannot
 *                                    send.  Prefer integer for ms and bytes. */
typedef struct kps_field_s {
  const char *name;
  kps_field_type_t type;
  unsigned flags;
  const char *default_json;   /* default as JSON text, e.g. "10000", "true",
                                 "\"x\"", "[\"a\",\"b\"]"; NULL = none */
  double min, max;            /* with KPS_FIELD_BETWEEN or KPS_FIELD_LEN */
  const char *const *one_of;  /* NULL-terminated allowed values (string fields), or NULL */
  const char *description;    /* 10..500 characters (a Kong schema rule) */
  const char *match;          /* Lua pattern the string (each element) must match,
                                 as Kong's `match` applies it; NULL = any.  Anchors,
                                 classes, sets and single-character quantifiers;
                                 no captures, %b, %f or back-references. */
  const char *const *match_any; /* NULL-terminated Lua patterns: the string (each
                                   element) must match at least one, as Kong's
                                   `match_any` applies them; NULL = no such rule.
                                   Lua patterns have no alternation; this is how a
                                   field says "a:1..65535 or [v6]:1..65535". */
  const char *match_any_err;    /* Kong's message when none matches (required with
                                   match_any) */
  unsigned max_items;           /* string arrays: at most this many elements (Kong's
                                   len_max on the array); 0 = no bound */
} kps_field_t;

/* Cross-field rules (Kong's entity checks, emitted beside the fields with
 * "config." paths).  A field is "set" as Kong's is_nonempty says: present,
 * not null, not "" and not []; false counts as set. */
typedef enum kps_check_kind_e {
  KPS_CHECK_MUTUALLY_REQUIRED = 1, /* all of `fields` are set, or none */
  KPS_CHECK_MUTUALLY_EXCLUSIVE,    /* at most one of `fields` is set */
  KPS_CHECK_AT_LEAST_ONE_OF,       /* one or more of `fields` are set */
  KPS_CHECK_ONLY_ONE_OF,           /* exactly one of `fields` is set */
  KPS_CHECK_CONDITIONAL            /* if `if_field` equals `if_equals_json`,
                                      `then_field` must not be null */
} kps_check_kind_t;

typedef struct kps_check_s {
  kps_check_kind_t kind;
  const char *const *fields;  /* NULL-terminated field names (all kinds but CONDITIONAL) */
  const char *if_field;       /* CONDITIONAL */
  const char *if_equals_json; /* CONDITIONAL: a JSON value of if_field's type */
  const char *then_field;     /* CONDITIONAL */
} kps_check_t;

/* Config getters.  A field that is absent, null or not in the table yields
 * the fallback (strings: NULL), so Kong's own keys (route_id, __seq__, ...)
 * are never returned.  An explicit null takes the field's default, as an
 * absent field does.  Returned strings live as long as the instance and
 * hold no NUL byte (the schema refuses them). */
const char *kps_config_string(const kps_config_t *cfg, const char *name);
int64_t kps_config_integer(const kps_config_t *cfg, const char *name, int64_t fallback);
double kps_config_number(const kps_config_t *cfg, const char *name, double fallback);
int kps_config_bool(const kps_config_t *cfg, const char *name, int fallback);
size_t kps_config_array_len(const kps_config_t *cfg, const char *name);
const char *kps_config_array_at(const kps_config_t *cfg, const char *name, size_t i);

/* ---- the plugin descriptor --------------------------------------------- */

typedef void (*kps_phase_cb)(kps_event_t *ev);

struct kps_plugin_s {
  unsigned api_version; /* KPS_API_VERSION */
  const char *name;     /* Kong plugin name, e.g. "c-hello" */
  const char *version;  /* "x.y.z" */
  int priority;         /* higher runs earlier in Kong */
  const kps_field_t *fields;
  size_t nfields;
  const kps_check_t *checks; /* cross-field rules, or NULL */
  size_t nchecks;
  kps_phase_cb phases[KPS_PHASE__COUNT]; /* NULL = phase not declared */

  /* Optional.  Called at StartInstance after the field table and checks
   * accepted the config.  Return 0 and set *data (kept for the instance's
   * life), or return -1 and write a message naming the field into err.
   * Kong turns that error into HTTP 500 on every request of the route, so
   * refuse here only what no schema rule can express (a file that cannot be
   * read); every other rule belongs in the field table. */
  int (*instance_start)(kps_instance_t *inst, const kps_config_t *cfg, void **data,
                        char *err, size_t errlen);
  /* Optional.  Called when the instance closes or expires; frees data. */
  void (*instance_close)(kps_instance_t *inst, void *data);
  /* Optional.  Adds the plugin's own counters to GetStatus. */
  void (*status)(kps_status_t *st);
  /* Optional.  Called once at server shutdown, after the last event. */
  void (*shutdown)(void);
};

/* ---- loading a plugin from a shared object --------------------------------
 * A plugin built as a shared object (loaded with -plugins-directory DIR)
 * exports one function with this name, returning its descriptor:
 *
 *   KPS_PLUGIN_EXPORT(my_plugin)    // where: const kps_plugin_t my_plugin = {...};
 *
 * The server passes its KPS_API_VERSION and refuses a descriptor whose
 * api_version differs, naming both versions. */
#define KPS_PLUGIN_ENTRY kps_plugin_entry
#define KPS_PLUGIN_ENTRY_NAME "kps_plugin_entry"
typedef const kps_plugin_t *(*kps_plugin_entry_fn)(unsigned server_api_version);

#define KPS_PLUGIN_EXPORT(descriptor)                                                     \
  __attribute__((visibility("default"))) const kps_plugin_t *KPS_PLUGIN_ENTRY(           \
      unsigned server_api_version);                                                      \
  const kps_plugin_t *KPS_PLUGIN_ENTRY(unsigned server_api_version) {                    \
    (void)server_api_version;                                                            \
    return &(descriptor);                                                                \
  }

/* ---- instances and events ---------------------------------------------- */

int64_t kps_instance_id(const kps_instance_t *inst);
void *kps_instance_data(const kps_instance_t *inst);
const kps_config_t *kps_instance_config(const kps_instance_t *inst);

kps_phase_t kps_event_phase(const kps_event_t *ev);
int64_t kps_event_id(const kps_event_t *ev);
kps_instance_t *kps_event_instance(const kps_event_t *ev);
/* Per-event data: kept until the event ends (done, exit, abandoned by Kong
 * and reaped, its connection lost, or the server shutting down); free_fn
 * (may be NULL) runs then.  An instance that closes waits for its events. */
void kps_event_set_data(kps_event_t *ev, void *data, void (*free_fn)(void *data));
void *kps_event_data(const kps_event_t *ev);

/* Receives a PDK call's result.  `result` is never NULL: a call whose result
 * was nil (Kong sent no Data) gives a nil value.  The value and every string
 * in it are valid only during the callback; copy what you keep. */
typedef void (*kps_result_cb)(kps_event_t *ev, const kps_value_t *result, void *ud);

/* Sends the PDK call `method` (e.g. "kong.request.get_header") with the
 * arguments described by fmt, one letter per argument:
 *   s  const char *            string (NUL-terminated; NULL packs nil)
 *   S  const char *, size_t    string with a length
 *   b  const void *, size_t    binary
 *   i  int                     integer
 *   I  int64_t                 integer
 *   d  double                  number
 *   B  int                     boolean
 *   n  (nothing)               nil (avoid: Kong's unpack stops at holes)
 *   {  ... }                   map: alternating keys (s or S) and values
 *   [  ... ]                   array
 * cb (may be NULL) runs with the result.  Returns 0, or -1:
 *   - fmt (or method) is bad: the event is finished and Kong gets an error
 *     reply, which it logs before going on without the plugin's effect;
 *   - the event owes Kong no answer now (a call is already out, or it was
 *     answered): nothing is sent and the plugin bug is logged.
 * Strings are copied before kps_call returns. */
int kps_call(kps_event_t *ev, kps_result_cb cb, void *ud, const char *method, const char *fmt,
             ...);

/* Finishes the event: Kong gets "ret" and moves on. */
void kps_done(kps_event_t *ev);

/* Calls kong.response.exit(status, body, headers) and finishes the event:
 * Kong never answers an exit, so no callback runs.  body may be NULL.
 * headers is NULL or a NULL-terminated list of name, value, name, value. */
void kps_exit(kps_event_t *ev, int status, const char *body, const char *const *headers);

/* ---- decoded values (PDK results) -------------------------------------- */

typedef enum kps_value_type_e {
  KPS_VALUE_NIL = 0,
  KPS_VALUE_BOOL,
  KPS_VALUE_INTEGER,
  KPS_VALUE_NUMBER, /* floating point */
  KPS_VALUE_STRING, /* MessagePack str or bin */
  KPS_VALUE_ARRAY,
  KPS_VALUE_MAP,
  KPS_VALUE_OTHER
} kps_value_type_t;

kps_value_type_t kps_value_type(const kps_value_t *v);
int kps_value_is_nil(const kps_value_t *v);
/* str or bin bytes (not NUL-terminated) and their length; NULL otherwise. */
const char *kps_value_string(const kps_value_t *v, size_t *len);
/* A malloc'd NUL-terminated copy of a str/bin value; NULL otherwise. */
char *kps_value_strdup(const kps_value_t *v);
int kps_value_bool(const kps_value_t *v, int fallback);
/* Integers, and doubles with no fractional part; fallback otherwise. */
int64_t kps_value_integer(const kps_value_t *v, int64_t fallback);
double kps_value_number(const kps_value_t *v, double fallback);
/* Array or map size; 0 for anything else. */
size_t kps_value_len(const kps_value_t *v);
/* Array element i, or NULL. */
const kps_value_t *kps_value_at(const kps_value_t *v, size_t i);
/* Map entry i's key and value, or NULL. */
const kps_value_t *kps_value_key_at(const kps_value_t *v, size_t i);
const kps_value_t *kps_value_value_at(const kps_value_t *v, size_t i);
/* Map lookup by string key (exact bytes), or NULL when absent.  An empty
 * array counts as an empty map, as Kong sends empty tables as arrays. */
const kps_value_t *kps_value_get(const kps_value_t *v, const char *key);
/* Header/query maps (Kong sends maps of arrays): the first string value of
 * `key`, matched case-insensitively; a plain string value also works. */
const char *kps_value_multimap_first(const kps_value_t *v, const char *key, size_t *len);

/* ---- status and logging ------------------------------------------------ */

void kps_status_counter(kps_status_t *st, const char *name, uint64_t value);
void kps_status_string(kps_status_t *st, const char *name, const char *value);
/* Nested objects: kps_status_begin(st, "sink"); ...; kps_status_end(st); */
void kps_status_begin(kps_status_t *st, const char *name);
void kps_status_end(kps_status_t *st);

typedef enum kps_log_level_pub_e {
  KPS_LEVEL_DEBUG = 0,
  KPS_LEVEL_INFO,
  KPS_LEVEL_NOTICE,
  KPS_LEVEL_WARN,
  KPS_LEVEL_ERROR
} kps_level_t;

/* Logs one line on the server's stderr, prefixed with the plugin name.
 * Never log body bytes or credentials. */
void kps_log(const kps_plugin_t *plugin, kps_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
