/* test-broker-plugins.c: adding, removing and replacing plugins while the host runs
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real host (CpServer + CpBroker) and real plugins (CpServer serving a KV
 * skeleton, PluginIdentity and PluginControl behind a control secret), all
 * in this process and context. A routed client — a CpChannel with a runtime
 * identity the host issued, as a plugin's discover_service() channel is —
 * drives Get calls through the host's router while plugins come and go.
 */
#include "cp-broker-private.h"
#include "kv-test.h"

#define SECRET "test-control-secret"
#define GUARD_MS 20000

typedef struct {
  CpServer *server;
  KvKVService *kv;
  char *url;
  guint calls;
  gboolean shutdown_requested;
} Plugin;

typedef struct {
  CpServer *host;
  CpBroker *broker;
  char *host_url;
} Fixture;

static gboolean
on_get (KvKVService  *kv,
        CpInvocation *invocation,
        KvGetRequest *request,
        Plugin       *plugin)
{
  g_autoptr(KvGetResponse) response = kv_get_response_new ();

  plugin->calls++;
  kv_kv_service_complete_get (kv, invocation, response);
  return TRUE;
}

static void
on_shutdown_requested (CpServer   *server,
                       int         grace,
                       const char *reason,
                       Plugin     *plugin)
{
  plugin->shutdown_requested = TRUE;
}

/* A plugin serving kv.v1.KVService, declared as @provided_type. */
static Plugin *
plugin_new_full (const char *self_id,
                 const char *provided_type,
                 const char *required_type)
{
  Plugin *plugin = g_new0 (Plugin, 1);
  g_autoptr(CpPlugin) p = cp_plugin_new ("kv", "1.0.0");
  g_autoptr(GError) error = NULL;

  plugin->kv = kv_kv_service_skeleton_new ();
  g_signal_connect (plugin->kv, "handle-get", G_CALLBACK (on_get), plugin);
  cp_plugin_add_service (p, CP_SKELETON (plugin->kv));
  cp_plugin_add_provides (p, provided_type, "1.0.0", "/kv.v1.KVService/");
  if (required_type != NULL)
    cp_plugin_add_requires (p, required_type, "1.0.0", TRUE, FALSE);
  plugin->server = g_object_new (CP_TYPE_SERVER, "self-id", self_id, "self-version", "1.0.0",
                                 "identity-enabled", TRUE, "plugin-control-enabled", TRUE,
                                 "control-secret", SECRET, NULL);
  g_signal_connect (plugin->server, "shutdown-requested", G_CALLBACK (on_shutdown_requested), plugin);
  cp_server_add_plugin (plugin->server, p);
  g_assert_true (cp_server_start (plugin->server, &error));
  g_assert_no_error (error);
  plugin->url = cp_server_listen (plugin->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  return plugin;
}

static Plugin *
plugin_new (const char *self_id,
            const char *required_type)
{
  return plugin_new_full (self_id, "kv", required_type);
}

static void
plugin_free (Plugin *plugin)
{
  cp_server_close (plugin->server);
  g_object_unref (plugin->server);
  cp_skeleton_unexport (CP_SKELETON (plugin->kv));
  g_object_unref (plugin->kv);
  g_free (plugin->url);
  g_free (plugin);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->host = cp_server_new ();
  f->broker = cp_broker_new (f->host);
  g_object_set (f->broker, "add-timeout-ms", 10000, "drain-timeout-ms", 10000, NULL);
  g_assert_true (cp_server_start (f->host, &error));
  f->host_url = cp_server_listen (f->host, "127.0.0.1:0", &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->broker);
  cp_server_close (f->host);
  g_clear_object (&f->host);
  g_free (f->host_url);
}

static gboolean
on_guard (gpointer data)
{
  g_error ("a wait ran past its %d ms guard", GUARD_MS);
  return G_SOURCE_REMOVE;
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer data)
{
  *(GAsyncResult **) data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **result)
{
  guint guard = g_timeout_add (GUARD_MS, on_guard, NULL);

  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
  return *result;
}

/* A Get through @kv, waited for in this context (which also serves the
 * host and the plugins, so no _sync call here). */
static KvGetResponse *
get (KvKVService *kv, GError **error)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GAsyncResult) result = NULL;

  kv_kv_service_call_get (kv, request, NULL, NULL, store_result, &result);
  return kv_kv_service_call_get_finish (kv, wait_result (&result), error);
}

static gboolean
listed (Fixture *f, CpPluginInstance *instance)
{
  GListModel *plugins = cp_broker_get_plugins (f->broker);

  for (guint i = 0; i < g_list_model_get_n_items (plugins); i++)
    {
      g_autoptr(CpPluginInstance) item = g_list_model_get_item (plugins, i);

      if (item == instance)
        return TRUE;
    }
  return FALSE;
}

static CpPluginInstance *
add (Fixture *f, Plugin *plugin, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_broker_add_plugin_async (f->broker, plugin->url, SECRET, NULL, store_result, &result);
  return cp_broker_add_plugin_finish (f->broker, wait_result (&result), error);
}

/* A channel routed to @provider through the host, with an identity the
 * host issued to a caller "client". */
static CpChannel *
routed_channel (Fixture *f, const char *provider)
{
  g_autofree char *id = NULL;
  g_autofree char *token = NULL;
  g_autofree char *bearer = NULL;
  g_autofree char *base = g_strdup_printf ("%s/services/kv/%s", f->host_url, provider);
  g_autoptr(GError) error = NULL;
  CpChannel *channel;

  cp_server_issue_runtime_identity (f->host, "client", &id, &token);
  bearer = g_strconcat ("Bearer ", token, NULL);
  channel = cp_channel_new (base, &error);
  g_assert_no_error (error);
  g_object_set (channel, "method-only-paths", TRUE, NULL);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", id);
  cp_channel_set_header (channel, "Authorization", bearer);
  return channel;
}

static void
test_add_remove (Fixture *f, gconstpointer data)
{
  Plugin *plugin = plugin_new ("kv-plugin", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpPluginInstance) instance = add (f, plugin, &error);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvKVService) kv = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  GListModel *plugins = cp_broker_get_plugins (f->broker);

  g_assert_no_error (error);
  g_assert_nonnull (instance);
  g_assert_true (cp_plugin_instance_get_managed (instance));
  g_assert_true (cp_plugin_instance_get_routable (instance));
  g_assert_cmpint (cp_plugin_instance_get_health_state (instance), ==, CP_HEALTH_STATE_HEALTHY);
  g_assert_true (g_str_has_prefix (cp_plugin_instance_get_runtime_id (instance), "kv-plugin-"));
  g_assert_cmpstr (cp_server_get_runtime_id (plugin->server), ==, cp_plugin_instance_get_runtime_id (instance));
  g_assert_cmpuint (g_list_model_get_n_items (plugins), ==, 1);
  /* What it declared is in the broker's dependency graph. */
  g_assert_true (cp_dependency_graph_has_service (cp_broker_get_dependency_graph (f->broker), "kv", "1.0.0"));

  /* Routable: a call through the router reaches it. */
  channel = routed_channel (f, cp_plugin_instance_get_runtime_id (instance));
  kv = kv_kv_service_proxy_new (channel);
  response = get (kv, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (plugin->calls, ==, 1);

  cp_broker_remove_plugin_async (f->broker, instance, NULL, store_result, &result);
  g_assert_true (cp_broker_remove_plugin_finish (f->broker, wait_result (&result), &error));
  g_assert_no_error (error);
  /* (The routed caller "client" is a plugin of the host too, since its
   * first call.) */
  g_assert_false (listed (f, instance));
  g_assert_false (cp_dependency_graph_has_plugin (cp_broker_get_dependency_graph (f->broker),
                                                  cp_plugin_instance_get_runtime_id (instance)));
  g_assert_null (cp_broker_lookup_plugin (f->broker, cp_plugin_instance_get_runtime_id (instance)));
  /* Its token no longer authenticates anything, and it was told to stop. */
  g_assert_false (cp_server_check_runtime_token (f->host, cp_plugin_instance_get_runtime_id (instance),
                                                 cp_server_get_runtime_token (plugin->server)));
  while (!plugin->shutdown_requested)
    g_main_context_iteration (NULL, TRUE);

  /* Gone from the router. */
  g_clear_object (&response);
  response = get (kv, &error);
  g_assert_null (response);
  g_assert_nonnull (error);
  plugin_free (plugin);
}

typedef struct {
  guint n;
  CpPluginInstance *plugin;
  CpDependencyImpact *impact;
  gboolean routable;          /* the plugin's, when the signal came */
} Removing;

static void
on_plugin_removing (CpBroker           *broker,
                    CpPluginInstance   *plugin,
                    CpDependencyImpact *impact,
                    Removing           *removing)
{
  removing->n++;
  g_set_object (&removing->plugin, plugin);
  g_set_object (&removing->impact, impact);
  removing->routable = cp_plugin_instance_get_routable (plugin);
}

static gboolean
remove_plugin (Fixture *f, CpPluginInstance *instance, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_broker_remove_plugin_async (f->broker, instance, NULL, store_result, &result);
  return cp_broker_remove_plugin_finish (f->broker, wait_result (&result), error);
}

/* The impact check of a removal: refused with protect-dependents while
 * another plugin requires what the plugin alone provides; reported by
 * ::plugin-removing otherwise. */
static void
test_remove_impact (Fixture *f, gconstpointer data)
{
  Plugin *cache_plugin = plugin_new_full ("cache-plugin", "cache", NULL);
  Plugin *app_plugin = plugin_new_full ("app-plugin", "app", "cache");
  Plugin *app_plugin2 = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpPluginInstance) cache = add (f, cache_plugin, &error);
  g_autoptr(CpPluginInstance) app = NULL;
  Removing removing = { 0, };
  const char *cache_id, *app_id;

  g_assert_no_error (error);
  app = add (f, app_plugin, &error);
  g_assert_no_error (error);
  cache_id = cp_plugin_instance_get_runtime_id (cache);
  app_id = cp_plugin_instance_get_runtime_id (app);
  g_signal_connect (f->broker, "plugin-removing", G_CALLBACK (on_plugin_removing), &removing);

  /* Refused: app requires cache, and nothing else provides it. */
  g_object_set (f->broker, "protect-dependents", TRUE, NULL);
  g_assert_false (remove_plugin (f, cache, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_nonnull (strstr (error->message, cache_id));
  g_assert_nonnull (strstr (error->message, app_id));
  g_assert_nonnull (strstr (error->message, "without a provider: app, cache)"));
  g_clear_error (&error);
  g_assert_cmpuint (removing.n, ==, 0);
  /* Nothing changed: still listed, routable, in the graph, authenticated. */
  g_assert_true (listed (f, cache));
  g_assert_true (cp_plugin_instance_get_routable (cache));
  g_assert_true (cp_dependency_graph_has_plugin (cp_broker_get_dependency_graph (f->broker), cache_id));
  g_assert_true (cp_server_check_runtime_token (f->host, cache_id,
                                                cp_server_get_runtime_token (cache_plugin->server)));
  g_assert_false (cache_plugin->shutdown_requested);

  /* The dependent itself can go: nothing requires it. */
  g_assert_true (remove_plugin (f, app, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (removing.n, ==, 1);
  g_assert_true (removing.plugin == app);
  g_assert_true (removing.routable);
  g_assert_nonnull (removing.impact);
  g_assert_cmpstr (cp_dependency_impact_get_target (removing.impact), ==, app_id);
  g_assert_null (cp_dependency_impact_get_affected_plugins (removing.impact)[0]);
  g_assert_cmpstr (cp_dependency_impact_get_services (removing.impact)[0], ==, "app");

  /* Without protect-dependents (the default) a removal that breaks a
   * dependent goes ahead, and the signal says what it breaks. */
  g_clear_object (&app);
  app_plugin2 = plugin_new_full ("app-plugin", "app", "cache");
  app = add (f, app_plugin2, &error);
  g_assert_no_error (error);
  app_id = cp_plugin_instance_get_runtime_id (app);
  g_object_set (f->broker, "protect-dependents", FALSE, NULL);
  g_assert_true (remove_plugin (f, cache, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (removing.n, ==, 2);
  g_assert_true (removing.plugin == cache);
  g_assert_true (removing.routable);
  g_assert_cmpstr (cp_dependency_impact_get_affected_plugins (removing.impact)[0], ==, app_id);
  g_assert_null (cp_dependency_impact_get_affected_plugins (removing.impact)[1]);
  /* Sorted: app goes with its dependency. */
  g_assert_cmpstr (cp_dependency_impact_get_unavailable_services (removing.impact)[0], ==, "app");
  g_assert_cmpstr (cp_dependency_impact_get_unavailable_services (removing.impact)[1], ==, "cache");
  g_assert_null (cp_dependency_impact_get_unavailable_services (removing.impact)[2]);
  g_assert_false (listed (f, cache));

  g_clear_object (&removing.plugin);
  g_clear_object (&removing.impact);
  g_signal_handlers_disconnect_by_func (f->broker, on_plugin_removing, &removing);
  plugin_free (cache_plugin);
  plugin_free (app_plugin);
  plugin_free (app_plugin2);
}

static void
test_missing_dependency (Fixture *f, gconstpointer data)
{
  Plugin *plugin = plugin_new ("needy-plugin", "no-such-service");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpPluginInstance) instance = add (f, plugin, &error);

  g_assert_null (instance);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_nonnull (strstr (error->message, "no-such-service"));
  g_assert_cmpuint (g_list_model_get_n_items (cp_broker_get_plugins (f->broker)), ==, 0);
  plugin_free (plugin);
}

static void
test_wrong_secret (Fixture *f, gconstpointer data)
{
  Plugin *plugin = plugin_new ("kv-plugin", NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpPluginInstance) instance = NULL;

  cp_broker_add_plugin_async (f->broker, plugin->url, "not-the-secret", NULL, store_result, &result);
  instance = cp_broker_add_plugin_finish (f->broker, wait_result (&result), &error);
  g_assert_null (instance);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_assert_cmpuint (g_list_model_get_n_items (cp_broker_get_plugins (f->broker)), ==, 0);
  plugin_free (plugin);
}

/* A plugin is listed from the moment its identity is issued, before it is
 * healthy: removing it then ends the add, at once, with an error (not with
 * a plugin that is no longer in the platform, nor after add-timeout-ms). */
static void
remove_on_added (CpBroker         *broker,
                 CpPluginInstance *instance,
                 GAsyncResult    **result)
{
  g_assert_false (cp_plugin_instance_get_routable (instance));
  cp_broker_remove_plugin_async (broker, instance, NULL, store_result, result);
}

/* Adds @plugin with @callback connected to the broker's @signal (which
 * starts a removal into *result); the add must end with `aborted` (not
 * the add timeout's `deadline_exceeded`), and the removal succeed. */
static void
remove_during_add (Fixture    *f,
                   Plugin     *plugin,
                   const char *signal,
                   GCallback   callback)
{
  g_autoptr(GAsyncResult) added = NULL;
  g_autoptr(GAsyncResult) removed = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpPluginInstance) instance = NULL;
  gulong handler;

  handler = g_signal_connect (f->broker, signal, callback, &removed);
  cp_broker_add_plugin_async (f->broker, plugin->url, SECRET, NULL, store_result, &added);
  instance = cp_broker_add_plugin_finish (f->broker, wait_result (&added), &error);
  g_signal_handler_disconnect (f->broker, handler);
  g_assert_null (instance);
  /* Ended by the removal, not by the add timeout (deadline_exceeded). */
  g_assert_error (error, CP_ERROR, CP_ERROR_ABORTED);
  g_assert_true (cp_broker_remove_plugin_finish (f->broker, wait_result (&removed), NULL));
  g_assert_cmpuint (g_list_model_get_n_items (cp_broker_get_plugins (f->broker)), ==, 0);
  while (!plugin->shutdown_requested)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_remove_while_adding (Fixture *f, gconstpointer data)
{
  Plugin *plugin = plugin_new ("kv-plugin", NULL);

  remove_during_add (f, plugin, "plugin-added", G_CALLBACK (remove_on_added));
  plugin_free (plugin);
}

/* The same once the plugin has its identity and reported, but not healthy. */
static void
remove_on_degraded (CpBroker         *broker,
                    CpPluginInstance *instance,
                    GAsyncResult    **result)
{
  if (*result == NULL && cp_plugin_instance_get_health_state (instance) == CP_HEALTH_STATE_DEGRADED)
    cp_broker_remove_plugin_async (broker, instance, NULL, store_result, result);
}

static void
test_remove_while_degraded (Fixture *f, gconstpointer data)
{
  Plugin *plugin = plugin_new ("kv-plugin", NULL);

  cp_server_set_health (plugin->server, CP_HEALTH_STATE_DEGRADED, "warming up", NULL);
  remove_during_add (f, plugin, "plugin-health-changed", G_CALLBACK (remove_on_degraded));
  plugin_free (plugin);
}

/* ---- replace under load ---- */

typedef struct {
  KvKVService *kv;
  guint started, ok, failed, in_flight;
  gboolean stop;
  GString *errors;
} Load;

static void call_once (Load *load);

static void
on_load_reply (GObject *source, GAsyncResult *result, gpointer data)
{
  Load *load = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = kv_kv_service_call_get_finish (KV_KV_SERVICE (source), result, &error);

  load->in_flight--;
  if (response != NULL)
    load->ok++;
  else
    {
      load->failed++;
      g_string_append_printf (load->errors, "%s\n", error->message);
    }
  if (!load->stop)
    call_once (load);
}

static void
call_once (Load *load)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");

  load->started++;
  load->in_flight++;
  kv_kv_service_call_get (load->kv, request, NULL, NULL, on_load_reply, load);
}

static void
test_replace_under_load (Fixture *f, gconstpointer data)
{
  Plugin *old_plugin = plugin_new ("kv-plugin", NULL);
  Plugin *new_plugin = plugin_new ("kv-plugin", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpPluginInstance) old = add (f, old_plugin, &error);
  g_autoptr(CpPluginInstance) replacement = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  Load load = { 0 };
  guint old_calls_at_switch, guard;

  g_assert_no_error (error);
  /* Calls addressed to the OLD runtime id, 8 in flight all the time. */
  channel = routed_channel (f, cp_plugin_instance_get_runtime_id (old));
  load.kv = kv_kv_service_proxy_new (channel);
  load.errors = g_string_new (NULL);
  for (guint i = 0; i < 8; i++)
    call_once (&load);
  guard = g_timeout_add (GUARD_MS, on_guard, NULL);
  while (load.ok < 100)
    g_main_context_iteration (NULL, TRUE);

  cp_broker_replace_plugin_async (f->broker, old, new_plugin->url, SECRET, NULL, store_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  replacement = cp_broker_replace_plugin_finish (f->broker, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (replacement);
  old_calls_at_switch = old_plugin->calls;

  /* Keep the load on until the old instance is gone and the new one has
   * served plenty. */
  while (cp_broker_lookup_plugin (f->broker, cp_plugin_instance_get_runtime_id (old)) != NULL ||
         new_plugin->calls < 100)
    g_main_context_iteration (NULL, TRUE);
  load.stop = TRUE;
  while (load.in_flight > 0)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);

  g_test_message ("%u calls: %u ok, %u failed; old served %u (%u at the switch), new %u",
                  load.started, load.ok, load.failed, old_plugin->calls, old_calls_at_switch,
                  new_plugin->calls);
  g_assert_cmpstr (load.errors->str, ==, "");
  g_assert_cmpuint (load.failed, ==, 0);
  g_assert_cmpuint (load.ok, ==, load.started);
  /* After the switch only the calls already in flight reached the old one. */
  g_assert_cmpuint (old_plugin->calls - old_calls_at_switch, <=, 8);
  g_assert_true (old_plugin->shutdown_requested);
  g_assert_false (listed (f, old));
  g_assert_true (listed (f, replacement));

  g_string_free (load.errors, TRUE);
  g_object_unref (load.kv);
  plugin_free (old_plugin);
  plugin_free (new_plugin);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/host/broker/plugins/add-remove", Fixture, NULL, fixture_set_up, test_add_remove, fixture_tear_down);
  g_test_add ("/host/broker/plugins/remove-impact", Fixture, NULL, fixture_set_up, test_remove_impact, fixture_tear_down);
  g_test_add ("/host/broker/plugins/missing-dependency", Fixture, NULL, fixture_set_up, test_missing_dependency, fixture_tear_down);
  g_test_add ("/host/broker/plugins/wrong-secret", Fixture, NULL, fixture_set_up, test_wrong_secret, fixture_tear_down);
  g_test_add ("/host/broker/plugins/remove-while-adding", Fixture, NULL, fixture_set_up, test_remove_while_adding, fixture_tear_down);
  g_test_add ("/host/broker/plugins/remove-while-degraded", Fixture, NULL, fixture_set_up, test_remove_while_degraded, fixture_tear_down);
  g_test_add ("/host/broker/plugins/replace-under-load", Fixture, NULL, fixture_set_up, test_replace_under_load, fixture_tear_down);
  return g_test_run ();
}
