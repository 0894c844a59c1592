/* fuzz_config.c: libFuzzer target for config validation at StartInstance
 * (kps__config_parse, proto/PROTOCOL.md R30-R32), run on the input for
 * every registered plugin.
 *
 * Checks (abort on failure):
 *   - a refusal has a message that names the config ("Config: ...") or a
 *     field ("config.<name>..."), NUL-terminated within the buffer;
 *   - an accepted config holds, for every field, either nothing (optional
 *     without default) or a value that passes the field's own check, and
 *     every required field is present;
 *   - string values are never echoed in errors (they may be secrets): a
 *     string value starting with "SECRET" must not appear in the message;
 *   - the public getters agree with the JSON (array lengths and items). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "log.h"
#include "plugins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int report_fd = 2; /* stderr before -close_fd_mask=2 */

static void die(const char *what, const char *plugin, const char *err) {
  dprintf(report_fd, "fuzz_config: %s: %s (error: %s)\n", plugin, what, err ? err : "-");
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  report_fd = dup(2);
  kps__log_set_level(KPS_LOG_OFF);
  kps__plugins_init();
  return 0;
}

/* Does any string value starting with SECRET (in the top-level object or
 * one level of arrays) appear in err? */
static int secret_echoed(const char *json, size_t len, const char *err) {
  cJSON *root = cJSON_ParseWithLength(json, len);
  int echoed = 0;
  if (root == NULL) return 0;
  for (const cJSON *v = root->child; v != NULL && !echoed; v = v->next) {
    const cJSON *items = cJSON_IsArray(v) ? v->child : v;
    for (const cJSON *e = items; e != NULL && !echoed; e = cJSON_IsArray(v) ? e->next : NULL)
      if (cJSON_IsString(e) && strncmp(e->valuestring, "SECRET", 6) == 0 && strstr(err, e->valuestring))
        echoed = 1;
  }
  cJSON_Delete(root);
  return echoed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (size_t p = 0; p < kps__plugins_count(); p++) {
    const kps_plugin_t *plugin = kps__plugins_at(p);
    char err[512];
    memset(err, 0x55, sizeof(err));
    err[0] = '\0';
    kps_config_t *cfg = kps__config_parse(plugin, (const char *)data, size, err, sizeof(err));
    if (cfg == NULL) {
      if (memchr(err, '\0', sizeof(err)) == NULL) die("error message not terminated", plugin->name, NULL);
      /* a cross-field check (Kong's sentence) names its fields as 'config.x' */
      const char *quoted = strstr(err, ": 'config.");
      if (quoted != NULL && strncmp(err, "config.", 7) != 0) {
        for (const char *q = quoted; (q = strstr(q, "'config.")) != NULL; q++) {
          const char *end = strchr(q + 8, '\'');
          int named = 0;
          for (size_t i = 0; end && i < plugin->nfields && !named; i++)
            named = strlen(plugin->fields[i].name) == (size_t)(end - q - 8) &&
                    strncmp(q + 8, plugin->fields[i].name, (size_t)(end - q - 8)) == 0;
          if (!named) die("a check names no field of the plugin", plugin->name, err);
        }
        continue;
      }
      if (strncmp(err, "Config: ", 8) != 0 && strncmp(err, "config.", 7) != 0)
        die("error names neither the config nor a field", plugin->name, err);
      if (strncmp(err, "config.", 7) == 0) {
        int named = 0;
        for (size_t i = 0; i < plugin->nfields && !named; i++) {
          size_t n = strlen(plugin->fields[i].name);
          named = strncmp(err + 7, plugin->fields[i].name, n) == 0 &&
                  (err[7 + n] == ':' || err[7 + n] == '[');
        }
        if (!named) die("error names no field of the plugin", plugin->name, err);
      }
      if (secret_echoed((const char *)data, size, err)) die("a string value is echoed", plugin->name, err);
      continue;
    }
    for (size_t i = 0; i < plugin->nfields; i++) {
      const kps_field_t *f = &plugin->fields[i];
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->json, f->name);
      char why[512];
      if (v == NULL || cJSON_IsNull(v)) {
        if ((f->flags & KPS_FIELD_REQUIRED) || f->default_json != NULL)
          die("accepted without a required or defaulted field", plugin->name, f->name);
        continue;
      }
      if (kps__config_check_value(f, v, why, sizeof(why)) != 0)
        die("accepted a value that fails its field's check", plugin->name, why);
      switch (f->type) {
        case KPS_FIELD_STRING:
          if (kps_config_string(cfg, f->name) == NULL) die("string getter lost the value", plugin->name, f->name);
          break;
        case KPS_FIELD_STRING_ARRAY: {
          size_t n = kps_config_array_len(cfg, f->name);
          if (cJSON_IsArray(v) && n != (size_t)cJSON_GetArraySize(v))
            die("array getter length differs", plugin->name, f->name);
          for (size_t k = 0; k < n; k++)
            if (kps_config_array_at(cfg, f->name, k) == NULL) die("array item lost", plugin->name, f->name);
          break;
        }
        case KPS_FIELD_INTEGER:
        case KPS_FIELD_NUMBER:
          (void)kps_config_integer(cfg, f->name, 0);
          (void)kps_config_number(cfg, f->name, 0);
          break;
        case KPS_FIELD_BOOLEAN:
          if (kps_config_bool(cfg, f->name, -1) == -1) die("bool getter lost the value", plugin->name, f->name);
          break;
      }
    }
    kps__config_free(cfg);
  }
  return 0;
}
