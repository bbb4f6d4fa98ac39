/* platform-host.c: the host of seed scenarios 2 and 3
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   platform-host [--plugin-dir DIR] [--calls N]
 *
 * A host application with the plugin platform: a CpServer with a CpBroker
 * (capability broker, service registry, health reports, router) on
 * 127.0.0.1. It offers the capability "secrets" (secrets.v1.Secrets,
 * served in-process by a DemoSecrets skeleton) and launches four plugins
 * from DIR (default: next to itself), each with HOST_URL pointing at it:
 *
 *   secrets-reader  requests the secrets capability and reads a secret
 *                   through the grant (scenario 2);
 *   logger-plugin, cache-plugin, app-plugin
 *                   register their services and call each other only
 *                   through the host's router (scenario 3).
 *
 * It waits until every plugin has registered and reported healthy (events,
 * no sleeps), calls app.Process N times (default 3) and prints the route of
 * each call, then shuts the plugins down. Exit status 0 when every step
 * worked.
 */
#include <stdio.h>
#include <stdlib.h>

#include "app.cp.h"
#include "secrets.cp.h"

#define WAIT_GUARD_SECONDS 20

static const char *plugin_names[] = { "secrets-reader", "logger-plugin", "cache-plugin", "app-plugin" };
#define N_PLUGINS G_N_ELEMENTS (plugin_names)

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

/* Iterates the main context until *@done or the guard fires. */
static gboolean
wait_until (gboolean   (*done) (gpointer),
            gpointer     data)
{
  gboolean expired = FALSE;
  guint guard = g_timeout_add_seconds (WAIT_GUARD_SECONDS, on_guard, &expired);

  while (!done (data) && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (guard);
  return !expired;
}

static gboolean
result_ready (gpointer data)
{
  return *(GAsyncResult **) data != NULL;
}

static const char *
nick (GType type, int value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  return v != NULL ? v->value_nick : "?";
}

/* The secrets capability: a generated Skeleton, answered in-process. */
static gboolean
on_get_secret (DemoSecrets          *secrets,
               CpInvocation         *invocation,
               DemoGetSecretRequest *request,
               gpointer              user_data)
{
  GHashTable *vault = user_data;
  const char *name = demo_get_secret_request_get_name (request);
  const char *value = g_hash_table_lookup (vault, name);
  g_autoptr(DemoGetSecretResponse) response = NULL;

  if (value == NULL)
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND, "no secret named %s", name);
      return TRUE;
    }
  g_print ("host: secrets capability: %s read by a grant holder\n", name);
  response = demo_get_secret_response_new ();
  demo_get_secret_response_set_value (response, value);
  demo_secrets_complete_get_secret (secrets, invocation, response);
  return TRUE;
}

static void
on_plugin_added (CpBroker         *broker,
                 CpPluginInstance *plugin,
                 gpointer          user_data)
{
  g_print ("host: plugin %s joined\n", cp_plugin_instance_get_runtime_id (plugin));
}

static void
on_plugin_health (CpBroker         *broker,
                  CpPluginInstance *plugin,
                  gpointer          user_data)
{
  const char *reason = cp_plugin_instance_get_health_reason (plugin);

  g_print ("host: plugin %s is %s%s%s%s\n", cp_plugin_instance_get_runtime_id (plugin),
           nick (CP_TYPE_HEALTH_STATE, cp_plugin_instance_get_health_state (plugin)),
           reason != NULL ? " (" : "", reason != NULL ? reason : "", reason != NULL ? ")" : "");
}

/* Every plugin has joined and reports healthy. */
static gboolean
all_healthy (gpointer data)
{
  GListModel *plugins = cp_broker_get_plugins (CP_BROKER (data));
  guint n = g_list_model_get_n_items (plugins), healthy = 0;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(CpPluginInstance) plugin = g_list_model_get_item (plugins, i);

      if (cp_plugin_instance_get_health_state (plugin) == CP_HEALTH_STATE_HEALTHY)
        healthy++;
    }
  return healthy >= N_PLUGINS;
}

static CpClient *
launch (const char *dir,
        const char *name,
        const char *host_url)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  const char *argv[] = { path, NULL };
  g_auto(GStrv) env = g_environ_setenv (g_get_environ (), "HOST_URL", host_url, TRUE);
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { NULL, NULL };

  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "name", name,
                            "environment", env, NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  /* logger-plugin serves the plugin "logger"; secrets-reader serves none. */
  plugins[0] = g_str_has_suffix (name, "-plugin") ? g_strndup (name, strlen (name) - 7) : NULL;
  cp_client_set_plugins (client, plugins);
  g_free ((char *) plugins[0]);

  /* Asynchronously, so that the host keeps serving the plugin's
   * registration while it starts. */
  cp_client_connect_async (client, NULL, store_result, &result);
  if (!wait_until (result_ready, &result) ||
      !cp_client_connect_finish (client, result, &error))
    {
      g_printerr ("platform-host: %s: %s\n", name, error != NULL ? error->message : "start-up timed out");
      return NULL;
    }
  g_print ("host: launched %s (pid %d) at %s\n", name,
           (int) cp_process_discovery_get_pid (discovery), cp_client_get_url (client));
  return g_steal_pointer (&client);
}

static gboolean
call_app (CpClient *client,
          guint     n_calls)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DemoApp) app = DEMO_APP (cp_client_dispense (client, "app", DEMO_TYPE_APP_PROXY, &error));

  if (app == NULL)
    {
      g_printerr ("platform-host: %s\n", error->message);
      return FALSE;
    }
  for (guint i = 0; i < n_calls; i++)
    {
      g_autoptr(DemoProcessRequest) request = demo_process_request_new ();
      g_autoptr(DemoProcessResponse) response = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      g_autofree char *input = g_strdup_printf ("order-%u", i + 1);
      g_auto(GStrv) route = NULL;

      demo_process_request_set_input (request, input);
      demo_app_call_process (app, request, NULL, NULL, store_result, &result);
      if (!wait_until (result_ready, &result) ||
          (response = demo_app_call_process_finish (app, result, &error)) == NULL)
        {
          g_printerr ("platform-host: Process(%s) failed: %s\n", input,
                      error != NULL ? error->message : "timed out");
          return FALSE;
        }
      route = demo_process_response_get_route (response);
      g_print ("call %u: Process(%s) = %s\n", i + 1, input, demo_process_response_get_result (response));
      g_print ("  route: host -> app (direct)\n");
      for (guint j = 0; route != NULL && route[j] != NULL; j++)
        g_print ("  route: %s (through the host's router)\n", route[j]);
      if (route == NULL || g_strv_length (route) < 2)
        {
          g_printerr ("platform-host: the route is incomplete\n");
          return FALSE;
        }
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *plugin_dir = NULL;
  int n_calls = 3;
  GOptionEntry entries[] = {
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &plugin_dir, "Where the plugin executables are", "DIR" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &n_calls, "How many app.Process calls to make", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— a plugin platform host");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpServer) server = NULL;
  g_autoptr(CpBroker) broker = NULL;
  g_autoptr(DemoSecrets) secrets = NULL;
  g_autoptr(GHashTable) vault = NULL;
  g_autofree char *url = NULL;
  CpClient *clients[N_PLUGINS] = { NULL };
  gboolean ok = TRUE;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("platform-host: %s\n", error->message);
      return 2;
    }
  if (plugin_dir == NULL)
    {
      g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);

      plugin_dir = g_path_get_dirname (self != NULL ? self : argv[0]);
    }

  /* 1. The host: a server with the platform's services on it. */
  server = cp_server_new ();
  broker = cp_broker_new (server);
  g_signal_connect (broker, "plugin-added", G_CALLBACK (on_plugin_added), NULL);
  g_signal_connect (broker, "plugin-health-changed", G_CALLBACK (on_plugin_health), NULL);

  vault = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (vault, (gpointer) "db-password", (gpointer) "hunter2");
  secrets = demo_secrets_skeleton_new ();
  g_signal_connect (secrets, "handle-get-secret", G_CALLBACK (on_get_secret), vault);
  cp_broker_add_capability (broker, "secrets", "1.0.0", CP_SKELETON (secrets));

  if (!cp_server_start (server, &error) ||
      (url = cp_server_listen (server, "127.0.0.1:0", &error)) == NULL)
    {
      g_printerr ("platform-host: %s\n", error->message);
      return 1;
    }
  g_print ("host: serving the platform at %s\n", url);

  /* 2. The plugins, each told where the host is (HOST_URL). */
  for (guint i = 0; i < N_PLUGINS && ok; i++)
    ok = (clients[i] = launch (plugin_dir, plugin_names[i], url)) != NULL;

  /* 3. Every plugin registered and healthy (secrets-reader only once it has
   * read its secret through the grant). */
  if (ok && !wait_until (all_healthy, broker))
    {
      g_printerr ("platform-host: not every plugin reported healthy in %d s\n", WAIT_GUARD_SECONDS);
      ok = FALSE;
    }

  /* 4. Scenario 3: calls that travel app -> cache -> logger. */
  if (ok)
    ok = call_app (clients[N_PLUGINS - 1], (guint) n_calls);

  /* 5. Shut the plugins down. */
  for (guint i = 0; i < N_PLUGINS; i++)
    {
      g_autoptr(GAsyncResult) result = NULL;

      if (clients[i] == NULL)
        continue;
      cp_client_close_async (clients[i], NULL, store_result, &result);
      if (!wait_until (result_ready, &result) || !cp_client_close_finish (clients[i], result, NULL))
        g_printerr ("platform-host: %s did not stop cleanly\n", plugin_names[i]);
      g_object_unref (clients[i]);
    }
  g_print ("host: %s\n", ok ? "done, every call went through" : "FAILED");
  return ok ? 0 : 1;
}
