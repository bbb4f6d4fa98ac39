/* dynamic-host.c: a host that adds, replaces and removes plugins while a client calls them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   dynamic-host [--plugin-dir DIR] [--calls N] [--verbose]
 *
 * A host with the plugin platform (a CpServer with a CpBroker on
 * 127.0.0.1) that changes its plugins while they serve:
 *
 *   1. it launches logger-plugin and cache-plugin from DIR (default: next
 *      to itself) without HOST_URL and adds them itself
 *      (cp_broker_add_plugin_async()); the cache requires the logger, so
 *      the logger comes first;
 *   2. a client starts: a CpServer with no services of its own that
 *      handshakes with the host for a runtime identity, as a plugin does,
 *      and keeps 8 cache.Get calls in flight through the host's router
 *      (/services/cache/{provider runtime id}/Get; the cache logs each one
 *      through the router to the logger);
 *   3. the host replaces the cache with a new instance
 *      (cp_broker_replace_plugin_async()): calls addressed to the old
 *      runtime id go to the new instance from the switch on;
 *   4. it adds a second cache; the client's workers ask the host's registry
 *      for a provider every 10 calls, so the calls spread over both
 *      (round robin);
 *   5. it removes the second cache (cp_broker_remove_plugin_async()): the
 *      calls in flight to it finish, and the router refuses new ones.
 *
 * Each phase lasts N calls (default 200) after its step is done. The host
 * prints each step with its duration, the plugins it lists (its
 * GListModel) after each step, the calls of each phase and which cache
 * served them, and finally "dynamic: N calls, M failed"; the exit status
 * is 0 only when no call failed.
 *
 * The client's policy for a refused call: the router answers `unavailable`
 * when the provider is leaving and `unimplemented` (HTTP 404) once it has
 * left, in both cases without forwarding the call, and Get has no side
 * effects, so the worker discovers a provider anew and sends the call
 * again (at most 3 attempts). Such calls are counted as "rerouted"; a
 * call that fails otherwise, or 3 times, is counted as failed.
 *
 * Every wait is an event (a finished step, a number of calls, a signal),
 * bounded by a guard of 20 s.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cache.cp.h"

#define WAIT_GUARD_SECONDS 20
#define N_WORKERS          8
#define REDISCOVER_EVERY   10
#define MAX_ATTEMPTS       3

typedef enum {
  PHASE_ONE,
  PHASE_REPLACE,
  PHASE_ADD,
  PHASE_REMOVE,
  N_PHASES
} Phase;

static const char *phase_names[N_PHASES] = {
  "one cache", "replace", "a second cache", "remove the second cache",
};

typedef struct _Load Load;

typedef struct {
  Load *load;
  DemoCache *cache;             /* routed to one provider; NULL: discover */
  char *provider;               /* the runtime id its calls address */
  guint since_discovery;
  guint attempt;
  CpCallOptions *options;       /* of the call in flight */
} Worker;

struct _Load {
  CpServer *client;
  Worker workers[N_WORKERS];
  guint busy;                   /* workers still calling */
  gboolean stop;
  Phase phase;
  guint calls, failed, rerouted;
  guint phase_calls[N_PHASES], phase_failed[N_PHASES], phase_rerouted[N_PHASES];
  GHashTable *served[N_PHASES]; /* cache runtime id -> calls it served */
  char *replaced_id;            /* calls addressed to it, served by another */
  guint forwarded;
};

static gboolean verbose;

static void worker_next (Worker *worker);

/* ------------------------------------------------------------------ */
/* Waiting                                                              */

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
on_guard (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main context until @done (@data) or the guard fires. */
static gboolean
wait_until (gboolean (*done) (gpointer),
            gpointer   data,
            const char *what)
{
  gboolean expired = FALSE;
  guint guard = g_timeout_add_seconds (WAIT_GUARD_SECONDS, on_guard, &expired);

  while (!done (data) && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (expired)
    {
      g_printerr ("dynamic-host: %s: not done after %d s\n", what, WAIT_GUARD_SECONDS);
      return FALSE;
    }
  g_source_remove (guard);
  return TRUE;
}

static gboolean
result_ready (gpointer data)
{
  return *(GAsyncResult **) data != NULL;
}

static double
ms_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / 1000.0;
}

/* ------------------------------------------------------------------ */
/* The host's view                                                      */

static const char *
nick (GType type, int value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  return v != NULL ? v->value_nick : "?";
}

/* The broker's GListModel of plugins, on one line. */
static void
print_plugins (CpBroker *broker)
{
  GListModel *plugins = cp_broker_get_plugins (broker);
  guint n = g_list_model_get_n_items (plugins);
  g_autoptr(GString) line = g_string_new (NULL);

  g_string_append_printf (line, "  plugins (%u):", n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(CpPluginInstance) plugin = g_list_model_get_item (plugins, i);

      g_string_append_printf (line, "%s %s [%s%s%s]", i > 0 ? "," : "",
                              cp_plugin_instance_get_runtime_id (plugin),
                              nick (CP_TYPE_HEALTH_STATE, cp_plugin_instance_get_health_state (plugin)),
                              cp_plugin_instance_get_managed (plugin) ? ", added by the host" : "",
                              cp_plugin_instance_get_routable (plugin) ? "" : ", not routable");
    }
  g_print ("%s\n", line->str);
}

static void
on_plugin_added (CpBroker         *broker,
                 CpPluginInstance *plugin,
                 gpointer          user_data)
{
  g_print ("  signal plugin-added: %s\n", cp_plugin_instance_get_runtime_id (plugin));
}

/* The removal's impact, from the broker's dependency graph: which plugins
 * would have to stop, which services would have no provider left. */
static void
on_plugin_removing (CpBroker           *broker,
                    CpPluginInstance   *plugin,
                    CpDependencyImpact *impact,
                    gpointer            user_data)
{
  g_autofree char *stops = NULL;
  g_autofree char *lost = NULL;

  if (impact != NULL)
    {
      const char * const *affected = cp_dependency_impact_get_affected_plugins (impact);
      const char * const *unavailable = cp_dependency_impact_get_unavailable_services (impact);

      stops = affected[0] != NULL ? g_strjoinv (", ", (char **) affected) : NULL;
      lost = unavailable[0] != NULL ? g_strjoinv (", ", (char **) unavailable) : NULL;
    }
  g_print ("  signal plugin-removing: %s (stops: %s; services left without a provider: %s)\n",
           cp_plugin_instance_get_runtime_id (plugin), stops != NULL ? stops : "none",
           lost != NULL ? lost : "none");
}

static void
on_plugin_removed (CpBroker         *broker,
                   CpPluginInstance *plugin,
                   gpointer          user_data)
{
  g_print ("  signal plugin-removed: %s\n", cp_plugin_instance_get_runtime_id (plugin));
}

/* The plugins' own output (forwarded by CpProcessDiscovery with the field
 * CP_PLUGIN) is hidden unless --verbose: the logger writes a line for
 * every call. */
static GLogWriterOutput
log_writer (GLogLevelFlags   level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  for (gsize i = 0; i < n_fields && !verbose; i++)
    if (g_strcmp0 (fields[i].key, "CP_PLUGIN") == 0)
      return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
on_exited (CpProcessDiscovery *process,
           int                 status,
           int                 term_signal,
           gpointer            user_data)
{
  if (term_signal != 0)
    g_print ("  process %s killed by signal %d\n", cp_process_discovery_get_name (process), term_signal);
  else
    g_print ("  process %s exited (status %d)\n", cp_process_discovery_get_name (process), status);
}

/* Launches DIR/NAME without HOST_URL: it serves, and waits to be added. */
static CpProcessDiscovery *
launch (const char  *dir,
        const char  *name,
        char       **url)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  const char *argv[] = { path, NULL };
  g_auto(GStrv) env = g_environ_unsetenv (g_get_environ (), "HOST_URL");
  g_autoptr(CpProcessDiscovery) process = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  process = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "name", name,
                          "environment", env, NULL);
  cp_process_discovery_start_async (process, NULL, store_result, &result);
  if (!wait_until (result_ready, &result, name) ||
      (*url = cp_process_discovery_start_finish (process, result, &error)) == NULL)
    {
      g_printerr ("dynamic-host: %s: %s\n", name, error != NULL ? error->message : "start-up timed out");
      return NULL;
    }
  g_signal_connect (process, "exited", G_CALLBACK (on_exited), NULL);
  g_print ("host: launched %s (pid %d) at %s\n", name, (int) cp_process_discovery_get_pid (process), *url);
  return g_steal_pointer (&process);
}

static gboolean
all_exited (gpointer data)
{
  GPtrArray *processes = data;

  for (guint i = 0; i < processes->len; i++)
    if (cp_process_discovery_get_state (processes->pdata[i]) != CP_PROCESS_STATE_EXITED)
      return FALSE;
  return TRUE;
}

static char *
secret_of (CpProcessDiscovery *process)
{
  char *secret = NULL;

  g_object_get (process, "control-secret", &secret, NULL);
  return secret;
}

/* Launches NAME and adds it to the platform. */
static CpPluginInstance *
add (CpBroker            *broker,
     const char          *dir,
     const char          *name,
     GPtrArray           *processes)
{
  g_autofree char *url = NULL;
  g_autofree char *secret = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  CpProcessDiscovery *process = launch (dir, name, &url);
  CpPluginInstance *plugin;
  gint64 start;

  if (process == NULL)
    return NULL;
  g_ptr_array_add (processes, process);
  secret = secret_of (process);
  start = g_get_monotonic_time ();
  cp_broker_add_plugin_async (broker, url, secret, NULL, store_result, &result);
  if (!wait_until (result_ready, &result, "add") ||
      (plugin = cp_broker_add_plugin_finish (broker, result, &error)) == NULL)
    {
      g_printerr ("dynamic-host: adding %s failed: %s\n", name, error != NULL ? error->message : "timed out");
      return NULL;
    }
  g_print ("add %s: %s routable after %.1f ms\n", name, cp_plugin_instance_get_runtime_id (plugin),
           ms_since (start));
  return plugin;
}

/* ------------------------------------------------------------------ */
/* The client                                                           */

static void
on_reply (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Worker *worker = user_data;
  Load *load = worker->load;
  g_autoptr(GError) error = NULL;
  g_autoptr(DemoGetResponse) response = demo_cache_call_get_finish (DEMO_CACHE (source), result, &error);
  g_autoptr(CpCallOptions) options = g_steal_pointer (&worker->options);
  Phase phase = load->phase;

  if (response != NULL)
    {
      /* The cache names itself in its answer: "<cache id> -> <logger id>". */
      const char *route = soup_message_headers_get_one (cp_call_options_get_response_headers (options),
                                                        "X-Plugin-Route");
      g_autofree char *served_by = route != NULL ? g_strndup (route, strcspn (route, " ")) : g_strdup ("?");

      load->calls++;
      load->phase_calls[phase]++;
      g_hash_table_replace (load->served[phase], g_strdup (served_by),
                            GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (load->served[phase],
                                                                                     served_by)) + 1));
      if (load->replaced_id != NULL && g_strcmp0 (worker->provider, load->replaced_id) == 0 &&
          g_strcmp0 (served_by, load->replaced_id) != 0)
        load->forwarded++;
      worker->attempt = 0;
      worker->since_discovery++;
    }
  else if ((g_error_matches (error, CP_ERROR, CP_ERROR_UNAVAILABLE) ||
            g_error_matches (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED)) &&
           ++worker->attempt < MAX_ATTEMPTS)
    {
      /* Refused by the router (the provider is leaving, or has left):
       * the call reached no plugin; ask the registry again. */
      load->rerouted++;
      load->phase_rerouted[phase]++;
      g_clear_object (&worker->cache);
    }
  else
    {
      if (load->failed < 5)
        g_printerr ("dynamic-host: a call to %s failed: %s\n", worker->provider, error->message);
      load->calls++;
      load->failed++;
      load->phase_calls[phase]++;
      load->phase_failed[phase]++;
      worker->attempt = 0;
      g_clear_object (&worker->cache);
    }
  worker_next (worker);
}

static void
send_call (Worker *worker)
{
  g_autoptr(DemoGetRequest) request = demo_get_request_new ();

  demo_get_request_set_key (request, "greeting");
  worker->options = cp_call_options_new ();
  cp_call_options_set_timeout_ms (worker->options, 10000);
  demo_cache_call_get (worker->cache, request, worker->options, NULL, on_reply, worker);
}

static void
on_discovered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Worker *worker = user_data;
  Load *load = worker->load;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_server_discover_service_finish (CP_SERVER (source), result, &error);
  g_autofree char *base_url = NULL;

  if (channel == NULL)
    {
      if (load->failed < 5)
        g_printerr ("dynamic-host: no cache provider: %s\n", error->message);
      load->calls++;
      load->failed++;
      load->phase_calls[load->phase]++;
      load->phase_failed[load->phase]++;
      worker->attempt = 0;
      worker_next (worker);
      return;
    }
  /* The base URL ends with /services/cache/<provider runtime id>. */
  g_object_get (channel, "base-url", &base_url, NULL);
  g_free (worker->provider);
  worker->provider = g_path_get_basename (base_url);
  worker->cache = demo_cache_proxy_new (channel);
  worker->since_discovery = 0;
  send_call (worker);
}

static void
worker_next (Worker *worker)
{
  Load *load = worker->load;

  if (load->stop && worker->attempt == 0)
    {
      load->busy--;
      return;
    }
  if (worker->cache != NULL && worker->since_discovery >= REDISCOVER_EVERY)
    g_clear_object (&worker->cache);
  if (worker->cache == NULL)
    cp_server_discover_service_async (load->client, "cache", "1.0.0", NULL, on_discovered, worker);
  else
    send_call (worker);
}

static gboolean
client_registered (gpointer data)
{
  return cp_server_get_host_registered (CP_SERVER (data));
}

/* A caller with a runtime identity: a CpServer without services that
 * handshakes with the host, as a plugin does. */
static CpServer *
client_new (const char *host_url)
{
  g_autoptr(CpServer) client = g_object_new (CP_TYPE_SERVER, "self-id", "dynamic-client",
                                             "self-version", "1.0.0", "host-url", host_url, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  if (!cp_server_start (client, &error) ||
      (url = cp_server_listen (client, "127.0.0.1:0", &error)) == NULL)
    {
      g_printerr ("dynamic-host: client: %s\n", error->message);
      return NULL;
    }
  if (!wait_until (client_registered, client, "the client's handshake"))
    return NULL;
  return g_steal_pointer (&client);
}

static void
load_start (Load *load)
{
  load->busy = N_WORKERS;
  for (guint i = 0; i < N_WORKERS; i++)
    {
      load->workers[i].load = load;
      worker_next (&load->workers[i]);
    }
}

typedef struct {
  Load *load;
  guint min_calls;
  const char *must_serve;       /* a cache that must have served in the phase */
  guint must_serve_calls;       /* (this many calls) */
  gboolean *also;               /* and this must be TRUE */
} PhaseGoal;

static gboolean
phase_done (gpointer data)
{
  PhaseGoal *goal = data;
  Load *load = goal->load;

  return load->phase_calls[load->phase] >= goal->min_calls &&
         (goal->must_serve == NULL ||
          GPOINTER_TO_UINT (g_hash_table_lookup (load->served[load->phase], goal->must_serve)) >=
          goal->must_serve_calls) &&
         (goal->also == NULL || *goal->also);
}

static void
print_phase (Load *load, Phase phase)
{
  g_autoptr(GString) line = g_string_new (NULL);
  g_autoptr(GList) keys = g_hash_table_get_keys (load->served[phase]);

  keys = g_list_sort (keys, (GCompareFunc) g_strcmp0);
  g_string_append_printf (line, "phase %d (%s): %u calls, %u failed, %u rerouted; served by",
                          phase + 1, phase_names[phase], load->phase_calls[phase],
                          load->phase_failed[phase], load->phase_rerouted[phase]);
  for (GList *l = keys; l != NULL; l = l->next)
    g_string_append_printf (line, "%s %s %u", l == keys ? "" : ",", (char *) l->data,
                            GPOINTER_TO_UINT (g_hash_table_lookup (load->served[phase], l->data)));
  g_print ("%s\n", line->str);
}

static gboolean
load_stopped (gpointer data)
{
  return ((Load *) data)->busy == 0;
}

/* ------------------------------------------------------------------ */
/* The steps                                                            */

typedef struct {
  CpPluginInstance *plugin;
  gboolean gone;
} Leaving;

static void
on_leaving_removed (CpBroker         *broker,
                    CpPluginInstance *plugin,
                    gpointer          user_data)
{
  Leaving *leaving = user_data;

  if (plugin == leaving->plugin)
    leaving->gone = TRUE;
}

static gboolean
remove_plugin (CpBroker         *broker,
               CpPluginInstance *plugin)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  cp_broker_remove_plugin_async (broker, plugin, NULL, store_result, &result);
  if (!wait_until (result_ready, &result, "remove") ||
      !cp_broker_remove_plugin_finish (broker, result, &error))
    {
      g_printerr ("dynamic-host: removing %s failed: %s\n", cp_plugin_instance_get_runtime_id (plugin),
                  error != NULL ? error->message : "timed out");
      return FALSE;
    }
  return TRUE;
}

static gboolean
run (CpBroker   *broker,
     const char *url,
     const char *dir,
     guint       n_calls,
     GPtrArray  *processes,
     Load       *load)
{
  g_autoptr(CpPluginInstance) logger = NULL;
  g_autoptr(CpPluginInstance) cache = NULL;
  g_autoptr(CpPluginInstance) replacement = NULL;
  g_autoptr(CpPluginInstance) second = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *new_url = NULL;
  g_autofree char *secret = NULL;
  CpProcessDiscovery *process;
  Leaving leaving = { NULL, FALSE };
  PhaseGoal goal = { load, n_calls, NULL, 0, NULL };
  gulong leaving_id;
  gboolean waited;
  guint in_flight;
  gint64 start;

  /* 1. The logger, then the cache that requires it. */
  if ((logger = add (broker, dir, "logger-plugin", processes)) == NULL)
    return FALSE;
  print_plugins (broker);
  if ((cache = add (broker, dir, "cache-plugin", processes)) == NULL)
    return FALSE;
  print_plugins (broker);

  /* 2. The client, and phase 1: one cache. */
  if ((load->client = client_new (url)) == NULL)
    return FALSE;
  g_print ("client: %s keeps %d cache.Get calls in flight through the host's router\n",
           cp_server_get_runtime_id (load->client), N_WORKERS);
  print_plugins (broker);
  load_start (load);
  if (!wait_until (phase_done, &goal, "phase 1"))
    return FALSE;
  print_phase (load, PHASE_ONE);

  /* 3. Replace the cache under load. */
  if ((process = launch (dir, "cache-plugin", &new_url)) == NULL)
    return FALSE;
  g_ptr_array_add (processes, process);
  secret = secret_of (process);
  leaving.plugin = cache;
  leaving_id = g_signal_connect (broker, "plugin-removed", G_CALLBACK (on_leaving_removed), &leaving);
  load->phase = PHASE_REPLACE;
  load->replaced_id = g_strdup (cp_plugin_instance_get_runtime_id (cache));
  start = g_get_monotonic_time ();
  cp_broker_replace_plugin_async (broker, cache, new_url, secret, NULL, store_result, &result);
  if (!wait_until (result_ready, &result, "replace") ||
      (replacement = cp_broker_replace_plugin_finish (broker, result, &error)) == NULL)
    {
      g_printerr ("dynamic-host: replace failed: %s\n", error != NULL ? error->message : "timed out");
      g_signal_handler_disconnect (broker, leaving_id);
      return FALSE;
    }
  in_flight = cp_plugin_instance_get_n_inflight (cache);
  g_print ("replace %s: the new instance %s serves every new call after %.1f ms (calls answered "
           "meanwhile: %u; still in flight on the old one: %u)\n",
           cp_plugin_instance_get_runtime_id (cache), cp_plugin_instance_get_runtime_id (replacement),
           ms_since (start), load->phase_calls[PHASE_REPLACE], in_flight);
  goal.also = &leaving.gone;
  waited = wait_until (phase_done, &goal, "phase 2");
  g_signal_handler_disconnect (broker, leaving_id);
  if (!waited)
    return FALSE;
  print_plugins (broker);
  print_phase (load, PHASE_REPLACE);
  g_print ("  %u calls addressed to %s were served by its replacement\n", load->forwarded,
           load->replaced_id);
  goal.also = NULL;

  /* 4. A second cache: the workers' next discoveries spread over both. */
  load->phase = PHASE_ADD;
  if ((second = add (broker, dir, "cache-plugin", processes)) == NULL)
    return FALSE;
  g_print ("  (calls answered while it was added: %u)\n", load->phase_calls[PHASE_ADD]);
  print_plugins (broker);
  /* ... until both serve: the second cache a quarter of the calls at least. */
  goal.must_serve = cp_plugin_instance_get_runtime_id (second);
  goal.must_serve_calls = MAX (n_calls / 4, 1);
  if (!wait_until (phase_done, &goal, "phase 3"))
    return FALSE;
  print_phase (load, PHASE_ADD);
  goal.must_serve = NULL;

  /* 5. Remove the second cache while calls go to it. */
  load->phase = PHASE_REMOVE;
  in_flight = cp_plugin_instance_get_n_inflight (second);
  start = g_get_monotonic_time ();
  if (!remove_plugin (broker, second))
    return FALSE;
  g_print ("remove %s: out of the platform after %.1f ms (calls in flight to it at the start, which "
           "finished: %u; calls answered meanwhile: %u)\n",
           cp_plugin_instance_get_runtime_id (second), ms_since (start), in_flight,
           load->phase_calls[PHASE_REMOVE]);
  print_plugins (broker);
  goal.min_calls = load->phase_calls[PHASE_REMOVE] + n_calls;
  if (!wait_until (phase_done, &goal, "phase 4"))
    return FALSE;
  print_phase (load, PHASE_REMOVE);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *plugin_dir = NULL;
  int n_calls = 200;
  GOptionEntry entries[] = {
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &plugin_dir, "Where the plugin executables are", "DIR" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &n_calls, "Calls per phase (at least)", "N" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Show the plugins' own output", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— plugins added, replaced and removed under load");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpServer) server = NULL;
  g_autoptr(CpBroker) broker = NULL;
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *url = NULL;
  Load load = { 0 };
  GListModel *plugins;
  gboolean ok;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("dynamic-host: %s\n", error->message);
      return 2;
    }
  if (plugin_dir == NULL)
    {
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);

      plugin_dir = g_path_get_dirname (self != NULL ? self : argv[0]);
    }
  g_log_set_writer_func (log_writer, NULL, NULL);
  for (guint i = 0; i < N_PHASES; i++)
    load.served[i] = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  server = cp_server_new ();
  broker = cp_broker_new (server);
  cp_broker_set_selection_strategy (broker, "cache", CP_SELECTION_ROUND_ROBIN);
  g_signal_connect (broker, "plugin-added", G_CALLBACK (on_plugin_added), NULL);
  g_signal_connect (broker, "plugin-removing", G_CALLBACK (on_plugin_removing), NULL);
  g_signal_connect (broker, "plugin-removed", G_CALLBACK (on_plugin_removed), NULL);
  if (!cp_server_start (server, &error) ||
      (url = cp_server_listen (server, "127.0.0.1:0", &error)) == NULL)
    {
      g_printerr ("dynamic-host: %s\n", error->message);
      return 1;
    }
  g_print ("host: serving the platform at %s%s\n", url,
           verbose ? "" : " (the plugins' own output is hidden: --verbose shows it)");

  ok = run (broker, url, plugin_dir, (guint) MAX (n_calls, 1), processes, &load);

  /* The end: the client stops, the host removes what is left (the plugins
   * it added are asked to shut down; the client, which registered itself
   * and has no way to leave, is only dropped), and the processes are
   * waited for. */
  load.stop = TRUE;
  if (load.busy > 0 && !wait_until (load_stopped, &load, "the client's last calls"))
    ok = FALSE;
  if (load.client != NULL)
    {
      g_autoptr(GAsyncResult) result = NULL;

      /* A graceful shutdown: the client unregisters from the host. */
      cp_server_shutdown_async (load.client, NULL, store_result, &result);
      if (!wait_until (result_ready, &result, "the client's shutdown"))
        ok = FALSE;
      else
        cp_server_shutdown_finish (load.client, result, NULL);
      cp_server_close (load.client);
      g_clear_object (&load.client);
    }
  plugins = cp_broker_get_plugins (broker);
  for (guint i = g_list_model_get_n_items (plugins); i > 0; i--)
    {
      g_autoptr(CpPluginInstance) plugin = g_list_model_get_item (plugins, i - 1);

      if (!remove_plugin (broker, plugin))
        ok = FALSE;
    }
  /* The removals asked each plugin to shut down: wait for them to exit
   * (stopping them, with SIGTERM if need be, only if one does not). */
  if (!wait_until (all_exited, processes, "the plugins' exit"))
    {
      ok = FALSE;
      for (guint i = 0; i < processes->len; i++)
        {
          g_autoptr(GAsyncResult) result = NULL;

          cp_process_discovery_stop_async (processes->pdata[i], NULL, store_result, &result);
          if (wait_until (result_ready, &result, "a plugin's stop"))
            cp_process_discovery_stop_finish (processes->pdata[i], result, NULL);
        }
    }
  print_plugins (broker);
  for (guint i = 0; i < N_WORKERS; i++)
    {
      g_clear_object (&load.workers[i].cache);
      g_free (load.workers[i].provider);
    }
  for (guint i = 0; i < N_PHASES; i++)
    g_hash_table_unref (load.served[i]);
  g_free (load.replaced_id);
  cp_server_close (server);

  g_print ("dynamic: %u calls, %u failed (%u rerouted after the router refused them)\n",
           load.calls, load.failed, load.rerouted);
  return ok && load.failed == 0 && load.calls > 0 ? 0 : 1;
}
