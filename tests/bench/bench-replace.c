/* bench-replace.c: replacing a plugin under load, 0 failed calls, and how long a replace takes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Three threads of one process: the host (CpServer + CpBroker), the plugins
 * (--replaces + 1 CpServers serving a KV skeleton, PluginIdentity and
 * PluginControl behind a control secret, all listening on 127.0.0.1 before
 * the run: a replace starts from a running replacement), and the caller,
 * which keeps --concurrency routed Get calls in flight through the host's
 * router, always addressed to the FIRST instance's runtime id (as a caller
 * that discovered it before any replace would). Each plugin answers its
 * generation number, so the caller knows which instance served a call.
 *
 * The first plugin is added, then replaced --replaces times, one after the
 * other, each once the current instance has served --calls-between calls.
 * Per replace, from cp_broker_replace_plugin_async() in the host's thread:
 *   finish     replace_finish's callback ran (the switch: the old runtime
 *              id routes to the new instance from then on);
 *   handled    the new instance's handler ran for its first routed call;
 *   answered   the caller got the first answer from the new instance;
 *   old gone   the old instance drained and left the broker.
 * "Calls answered meanwhile" are those the caller got back between the
 * request and the old instance gone. Every routed call must succeed: the
 * bench exits 1 if one failed.
 *
 *   BUILD/tests/bench/bench-replace [--replaces 5] [--concurrency 8] [--calls-between 2000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp-broker-private.h"
#include "bench-thread.h"
#include "kv-test.h"

#define SECRET "bench-control-secret"
#define GUARD_US (20 * G_USEC_PER_SEC)
/* The broker follows a replaced runtime id through at most 8 replacements
 * (cp_broker_route_target). */
#define MAX_REPLACES 7

/* ------------------------------------------------------------------ */
/* The plugins' thread                                                  */

typedef struct {
  CpServer *server;
  KvKVService *kv;
  char *url;
  GBytes *generation;           /* what it answers */
  gint64 first_call;            /* when its handler first ran */
} Plugin;

typedef struct {
  BenchThread side;
  guint n;
  Plugin *plugins;
} Plugins;

static gboolean
on_get (KvKVService  *kv,
        CpInvocation *invocation,
        KvGetRequest *request,
        Plugin       *plugin)
{
  g_autoptr(KvGetResponse) response = kv_test_get_response (plugin->generation, TRUE);

  if (plugin->first_call == 0)
    plugin->first_call = g_get_monotonic_time ();
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static void
plugin_start (Plugin *plugin,
              guint   generation)
{
  g_autoptr(CpPlugin) p = cp_plugin_new ("kv", "1.0.0");
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_strdup_printf ("%u", generation);

  plugin->generation = g_bytes_new (text, strlen (text));
  plugin->kv = kv_kv_service_skeleton_new ();
  g_signal_connect (plugin->kv, "handle-get", G_CALLBACK (on_get), plugin);
  cp_plugin_add_service (p, CP_SKELETON (plugin->kv));
  cp_plugin_add_provides (p, "kv", "1.0.0", "/kv.v1.KVService/");
  plugin->server = g_object_new (CP_TYPE_SERVER, "self-id", "kv-plugin", "self-version", "1.0.0",
                                 "identity-enabled", TRUE, "plugin-control-enabled", TRUE,
                                 "control-secret", SECRET, NULL);
  cp_server_add_plugin (plugin->server, p);
  if (!cp_server_start (plugin->server, &error) ||
      (plugin->url = cp_server_listen (plugin->server, "127.0.0.1:0", &error)) == NULL)
    g_error ("plugin %u: %s", generation, error->message);
}

static gpointer
plugins_thread (gpointer data)
{
  Plugins *plugins = data;

  g_main_context_push_thread_default (plugins->side.context);
  for (guint i = 0; i < plugins->n; i++)
    plugin_start (&plugins->plugins[i], i);
  bench_thread_ready (&plugins->side);
  g_main_loop_run (plugins->side.loop);
  for (guint i = 0; i < plugins->n; i++)
    {
      Plugin *plugin = &plugins->plugins[i];

      cp_server_close (plugin->server);
      g_clear_object (&plugin->server);
      cp_skeleton_unexport (CP_SKELETON (plugin->kv));
      g_clear_object (&plugin->kv);
      g_bytes_unref (plugin->generation);
      g_free (plugin->url);
    }
  while (g_main_context_iteration (plugins->side.context, FALSE))
    ;
  g_main_context_pop_thread_default (plugins->side.context);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The host's thread                                                    */

typedef struct {
  BenchThread side;
  CpServer *server;
  CpBroker *broker;
  char *url;
  char *caller_id, *caller_token;
} Host;

/* One add or replace, started in the host's thread; the fields are
 * written there and read by the caller once @done is set. */
typedef struct {
  Host *host;
  CpPluginInstance *old;        /* NULL: an add */
  const char *url;
  char *old_id;
  gint64 t_request, t_finish, t_gone;
  gint64 t_first;               /* the caller's first answer from the new instance */
  guint64 calls, failed;        /* answered while the op ran (caller's view) */
  CpPluginInstance *instance;
  char *error;
  gulong items_changed;
  gint done;
} Op;

static void
op_check_done (Op *op)
{
  if (op->t_finish == 0 || (op->old != NULL && op->t_gone == 0))
    return;
  if (op->items_changed != 0)
    {
      g_signal_handler_disconnect (cp_broker_get_plugins (op->host->broker), op->items_changed);
      op->items_changed = 0;
    }
  g_atomic_int_set (&op->done, 1);
  g_main_context_wakeup (g_main_context_default ());
}

static void
on_items_changed (GListModel *plugins,
                  guint       position,
                  guint       removed,
                  guint       added,
                  Op         *op)
{
  if (op->t_gone == 0 && cp_broker_lookup_plugin (op->host->broker, op->old_id) == NULL)
    {
      op->t_gone = g_get_monotonic_time ();
      op_check_done (op);
    }
}

static void
on_op_finished (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Op *op = user_data;
  g_autoptr(GError) error = NULL;

  op->t_finish = g_get_monotonic_time ();
  op->instance = op->old != NULL
    ? cp_broker_replace_plugin_finish (CP_BROKER (source), result, &error)
    : cp_broker_add_plugin_finish (CP_BROKER (source), result, &error);
  if (op->instance == NULL)
    {
      op->error = g_strdup (error->message);
      op->t_gone = op->t_finish;
    }
  op_check_done (op);
}

static gboolean
op_start (gpointer data)
{
  Op *op = data;
  CpBroker *broker = op->host->broker;

  if (op->old != NULL)
    {
      op->old_id = g_strdup (cp_plugin_instance_get_runtime_id (op->old));
      op->items_changed = g_signal_connect (cp_broker_get_plugins (broker), "items-changed",
                                            G_CALLBACK (on_items_changed), op);
      op->t_request = g_get_monotonic_time ();
      cp_broker_replace_plugin_async (broker, op->old, op->url, SECRET, NULL, on_op_finished, op);
    }
  else
    {
      op->t_request = g_get_monotonic_time ();
      cp_broker_add_plugin_async (broker, op->url, SECRET, NULL, on_op_finished, op);
    }
  return G_SOURCE_REMOVE;
}

static gpointer
host_thread (gpointer data)
{
  Host *host = data;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (host->side.context);
  host->server = cp_server_new ();
  host->broker = cp_broker_new (host->server);
  g_object_set (host->broker, "add-timeout-ms", 10000, "drain-timeout-ms", 10000, NULL);
  if (!cp_server_start (host->server, &error) ||
      (host->url = cp_server_listen (host->server, "127.0.0.1:0", &error)) == NULL)
    g_error ("host: %s", error->message);
  cp_server_issue_runtime_identity (host->server, "client", &host->caller_id, &host->caller_token);
  bench_thread_ready (&host->side);
  g_main_loop_run (host->side.loop);
  g_clear_object (&host->broker);
  cp_server_close (host->server);
  while (g_main_context_iteration (host->side.context, FALSE))
    ;
  g_clear_object (&host->server);
  g_main_context_pop_thread_default (host->side.context);
  return NULL;
}

/* Runs @op in the host's thread and waits for it here (the caller's load
 * goes on meanwhile). */
static void
op_run (Op *op)
{
  gint64 end = g_get_monotonic_time () + GUARD_US;

  g_main_context_invoke (op->host->side.context, op_start, op);
  while (!g_atomic_int_get (&op->done))
    {
      if (g_get_monotonic_time () > end)
        g_error ("a plugin add or replace ran past %d s", (int) (GUARD_US / G_USEC_PER_SEC));
      g_main_context_iteration (NULL, TRUE);
    }
}

/* ------------------------------------------------------------------ */
/* The caller (main thread)                                             */

typedef struct {
  KvKVService *kv;
  KvGetRequest *request;
  guint in_flight;
  gboolean stop;
  guint64 started, ok, failed;
  guint *served;                /* answers per generation */
  guint n_generations;
  int watch_generation;         /* -1: none */
  gint64 first_answer;          /* from @watch_generation */
  GString *errors;
} Load;

static void call_once (Load *load);

static void
on_reply (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Load *load = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = kv_kv_service_call_get_finish (KV_KV_SERVICE (source), result, &error);
  gint64 now = g_get_monotonic_time ();

  load->in_flight--;
  if (response != NULL)
    {
      g_autoptr(GBytes) value = kv_get_response_get_value (response);
      g_autofree char *text = g_strndup (g_bytes_get_data (value, NULL), g_bytes_get_size (value));
      guint64 generation = g_ascii_strtoull (text, NULL, 10);

      g_assert (generation < load->n_generations);
      load->ok++;
      load->served[generation]++;
      if ((int) generation == load->watch_generation && load->first_answer == 0)
        load->first_answer = now;
    }
  else
    {
      load->failed++;
      if (load->errors->len < 4096)
        g_string_append_printf (load->errors, "  %s\n", error->message);
    }
  if (!load->stop)
    call_once (load);
}

static void
call_once (Load *load)
{
  load->started++;
  load->in_flight++;
  kv_kv_service_call_get (load->kv, load->request, NULL, NULL, on_reply, load);
}

static void
wait_served (Load *load, guint generation, guint calls)
{
  gint64 end = g_get_monotonic_time () + GUARD_US;

  while (load->served[generation] < calls)
    {
      if (g_get_monotonic_time () > end)
        g_error ("generation %u served %u of %u calls in %d s", generation,
                 load->served[generation], calls, (int) (GUARD_US / G_USEC_PER_SEC));
      g_main_context_iteration (NULL, TRUE);
    }
}

static double
ms (gint64 us)
{
  return us / 1000.0;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  int n_replaces = 5, concurrency = 8, calls_between = 2000;
  GOptionEntry entries[] = {
    { "replaces", 0, 0, G_OPTION_ARG_INT, &n_replaces, "replaces, one after the other (1..7)", "K" },
    { "concurrency", 0, 0, G_OPTION_ARG_INT, &concurrency, "routed calls in flight", "N" },
    { "calls-between", 0, 0, G_OPTION_ARG_INT, &calls_between, "calls each instance serves before it is replaced", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- replacing a plugin under load");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autofree char *base = NULL, *bearer = NULL;
  Plugins plugins = { 0 };
  Host host = { 0 };
  Load load = { 0 };
  Op *ops;
  double finish_ms[MAX_REPLACES], first_ms[MAX_REPLACES];
  gint64 run_start, run_us;
  gboolean ok = TRUE;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    g_error ("%s", error->message);
  if (n_replaces < 1 || n_replaces > MAX_REPLACES || concurrency < 1 || calls_between < 1)
    g_error ("need 1 <= --replaces <= %d, --concurrency >= 1, --calls-between >= 1", MAX_REPLACES);

  plugins.n = n_replaces + 1;
  plugins.plugins = g_new0 (Plugin, plugins.n);
  bench_thread_start (&plugins.side, "plugins", plugins_thread, &plugins);
  bench_thread_start (&host.side, "host", host_thread, &host);

  /* Generation 0 joins the platform. */
  ops = g_new0 (Op, n_replaces + 1);
  ops[0].host = &host;
  ops[0].url = plugins.plugins[0].url;
  op_run (&ops[0]);
  if (ops[0].instance == NULL)
    g_error ("add: %s", ops[0].error);

  /* The caller: every call addressed to generation 0's runtime id. */
  base = g_strdup_printf ("%s/services/kv/%s", host.url, cp_plugin_instance_get_runtime_id (ops[0].instance));
  channel = cp_channel_new (base, &error);
  g_assert_no_error (error);
  g_object_set (channel, "method-only-paths", TRUE, NULL);
  bearer = g_strdup_printf ("Bearer %s", host.caller_token);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", host.caller_id);
  cp_channel_set_header (channel, "Authorization", bearer);
  load.kv = kv_kv_service_proxy_new (channel);
  load.request = kv_test_get_request ("k");
  load.n_generations = plugins.n;
  load.served = g_new0 (guint, plugins.n);
  load.watch_generation = -1;
  load.errors = g_string_new (NULL);

  run_start = g_get_monotonic_time ();
  for (int i = 0; i < concurrency; i++)
    call_once (&load);
  for (int r = 1; r <= n_replaces; r++)
    {
      Op *op = &ops[r];
      guint64 answered = load.ok + load.failed, failed = load.failed;

      wait_served (&load, r - 1, calls_between);
      answered = load.ok + load.failed;
      failed = load.failed;
      op->host = &host;
      op->old = ops[r - 1].instance;
      op->url = plugins.plugins[r].url;
      load.watch_generation = r;
      load.first_answer = 0;
      op_run (op);
      if (op->instance == NULL)
        g_error ("replace %d: %s", r, op->error);
      op->calls = load.ok + load.failed - answered;
      op->failed = load.failed - failed;
      wait_served (&load, r, 1);
      op->t_first = load.first_answer;
    }
  wait_served (&load, n_replaces, calls_between);
  load.stop = TRUE;
  while (load.in_flight > 0)
    g_main_context_iteration (NULL, TRUE);
  run_us = g_get_monotonic_time () - run_start;
  g_clear_object (&load.kv);
  /* Both threads stop here: what they wrote is read below. */
  bench_thread_stop (&host.side);
  bench_thread_stop (&plugins.side);

  printf ("| replace # | request -> replace_finish | -> new instance's first call handled "
          "| -> caller's first answer from it | -> old instance gone | calls answered meanwhile | failed |\n");
  printf ("|---|---|---|---|---|---|---|\n");
  for (int r = 1; r <= n_replaces; r++)
    {
      Op *op = &ops[r];

      finish_ms[r - 1] = ms (op->t_finish - op->t_request);
      first_ms[r - 1] = ms (op->t_first - op->t_request);
      printf ("| %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %" G_GUINT64_FORMAT " | %" G_GUINT64_FORMAT " |\n",
              r, finish_ms[r - 1], ms (plugins.plugins[r].first_call - op->t_request), first_ms[r - 1],
              ms (op->t_gone - op->t_request), op->calls, op->failed);
    }
  qsort (finish_ms, n_replaces, sizeof (double), cmp_double);
  qsort (first_ms, n_replaces, sizeof (double), cmp_double);
  printf ("median of %d: replace_finish %.2f ms, first answer from the new instance %.2f ms\n",
          n_replaces, finish_ms[n_replaces / 2], first_ms[n_replaces / 2]);
  printf ("calls: %" G_GUINT64_FORMAT " started, %" G_GUINT64_FORMAT " ok, %" G_GUINT64_FORMAT
          " failed, in %.2f s (%.0f calls/s, %d in flight)\n",
          load.started, load.ok, load.failed, run_us / (double) G_USEC_PER_SEC,
          load.ok / (run_us / (double) G_USEC_PER_SEC), concurrency);
  if (load.failed > 0 || load.ok != load.started)
    {
      fprintf (stderr, "FAIL: %" G_GUINT64_FORMAT " routed calls failed:\n%s", load.failed, load.errors->str);
      ok = FALSE;
    }

  g_object_unref (load.request);
  g_string_free (load.errors, TRUE);
  g_free (load.served);
  for (int r = 0; r <= n_replaces; r++)
    {
      g_clear_object (&ops[r].instance);
      g_free (ops[r].old_id);
      g_free (ops[r].error);
    }
  g_free (ops);
  g_free (plugins.plugins);
  g_free (host.url);
  g_free (host.caller_id);
  g_free (host.caller_token);
  return ok ? 0 : 1;
}
