/* main.c: the kong-c-pluginserver process.
 *
 * Reading order of the data path, one file per stage:
 *   listener.c   the Unix socket Kong connects to
 *   conn.c       bytes in, replies out, per connection
 *   frame.c      where one MessagePack object ends
 *   dispatch.c   request envelope -> method handler (+ the error reply)
 *   instance.c   StartInstance/CloseInstance, idle expiry
 *   event.c      HandleEvent/Step: one phase of one request
 *   pdk_call.c   the plugin's answer: a PDK call, "ret" or exit
 *   value.c      PDK results as the plugin sees them
 *   plugins/     the plugins (tcp-body-log: record.c -> sink/)
 *   sink/        queue and TCP/TLS connection to the collector
 */
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "drain.h"
#include "event.h"
#include "instance.h"
#include "listener.h"
#include "log.h"
#include "options.h"
#include "plugins.h"
#include "server.h"
#include "status_cli.h"

static uv_signal_t sig_term, sig_int;
static int shutting_down;

static void print_json(cJSON *j) {
  char *s = cJSON_PrintUnformatted(j);
  fputs(s, stdout);
  fputc('\n', stdout);
  free(s);
  cJSON_Delete(j);
}

static int dump(const kps_options_t *o) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "Protocol", "MsgPack:1");
  cJSON *list = cJSON_AddArrayToObject(root, "Plugins");
  if (o->action == KPS_ACTION_DUMP) {
    cJSON_AddItemToArray(list, kps__plugin_info(o->plugin, o->kong_version));
  } else {
    for (size_t i = 0; i < kps__plugins_count(); i++)
      cJSON_AddItemToArray(list, kps__plugin_info(kps__plugins_at(i), o->kong_version));
  }
  print_json(root);
  return 0;
}

/* Last step of a shutdown: close everything so uv_run returns. */
static void finish_shutdown(void *ud) {
  kps__conn_close_all();
  kps__event_abort_all();
  kps__instance_close_all();
  kps__plugins_shutdown();
  kps__housekeeping_stop();
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
}

static void begin_shutdown(void) {
  if (shutting_down) return;
  shutting_down = 1;
  KPS_NOTICE("shutting down: flushing queued records (deadline %llu ms)",
             (unsigned long long)kps__limits.shutdown_timeout_ms);
  kps__listener_stop();
  /* Connections keep being served while the sinks drain. */
  kps__drain(kps__server_loop(), kps__limits.shutdown_timeout_ms, finish_shutdown, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  if (shutting_down) {
    KPS_WARN("second signal %d: exiting now", signum);
    _exit(1);
  }
  KPS_NOTICE("received signal %d", signum);
  begin_shutdown();
}

int main(int argc, char **argv) {
  kps_options_t opts;
  char err[512];
  int rc;

  signal(SIGPIPE, SIG_IGN);
  kps__plugins_init();
  rc = kps__options_parse(&opts, argc, argv);
  if (rc != 0) return rc;
  kps__log_set_level((kps_log_level_t)opts.log_level);

  switch (opts.action) {
    case KPS_ACTION_HELP: kps__options_usage(argv[0]); return 0;
    case KPS_ACTION_VERSION: printf("kong-c-pluginserver %s\n", KPS_VERSION); return 0;
    case KPS_ACTION_DUMP:
    case KPS_ACTION_DUMP_ALL: return dump(&opts);
    case KPS_ACTION_STATUS: return kps__status_cli(opts.socket);
    case KPS_ACTION_SERVE: break;
  }

  /* Thousands of pooled Kong connections need as many descriptors. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  uv_loop_t *loop = uv_default_loop();
  kps__server_init(loop);
  /* Signals first: once the socket accepts, Kong (or a test) may already
   * send SIGTERM, and it must find the graceful handler. */
  uv_signal_init(loop, &sig_term);
  uv_signal_init(loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  if (kps__listener_start(loop, opts.socket, err, sizeof(err)) != 0) {
    KPS_ERROR("%s", err);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_loop_close(loop);
    return 1;
  }
  /* Started by init or a supervisor (parent pid 1): never watch it. */
  kps__housekeeping_start(getppid() != 1, begin_shutdown);

  KPS_NOTICE("kong-c-pluginserver %s pid %d listening on %s, serving %s", KPS_VERSION,
             (int)getpid(), opts.socket, opts.plugin ? opts.plugin->name : "all plugins");
  uv_run(loop, UV_RUN_DEFAULT);
  kps__listener_stop();
  rc = uv_loop_close(loop);
  if (rc != 0) KPS_WARN("event loop closed with handles still open: %s", uv_strerror(rc));
  KPS_NOTICE("stopped");
  return 0;
}
