/* test-go-platform.c: our plugins on the Go stand-in's platform host
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   test-go-platform GO-PLATFORM-HOST PLUGIN-DIR
 *
 * Starts connect-plugin-go's host platform (the stand-in's
 * cp-go-platform-host: handshake, lifecycle, registry, router, broker with a
 * "secrets" capability) on 127.0.0.1 port 0, then launches OUR example
 * plugins from examples/platform with HOST_URL pointing at it:
 *   - logger-plugin, cache-plugin, app-plugin register with the Go
 *     registry, report health to the Go lifecycle service, and call each
 *     other through the Go router: app.Process must come back with the route
 *     app -> cache -> logger;
 *   - secrets-reader requests the "secrets" capability from the Go broker
 *     and reads db-password through the grant (it logs the value, which
 *     comes to this process's log through CpProcessDiscovery).
 *   - the Go host's Platform.AddPlugin and RemovePlugin drive one of our
 *     plugins (a CpServer in this process) through PluginIdentity and
 *     PluginControl.
 * Every process is stopped by PID at the end.
 */
#include <string.h>

#include "app.cp.h"
#include "logger.cp.h"

#define GUARD_S 30

static char *plugin_dir;
static char *go_host_path;

typedef struct {
  GSubprocess *process;
  char *url;
} GoHost;

static gboolean
on_guard (gpointer data)
{
  g_error ("a wait ran past its %d s guard", GUARD_S);
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
  guint guard = g_timeout_add_seconds (GUARD_S, on_guard, NULL);

  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
  return *result;
}

static void
go_host_start (GoHost *host)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) out = NULL;

  host->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                                    go_host_path, "--listen", "127.0.0.1:0", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (host->process));
  host->url = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (host->url);
  g_test_message ("Go platform host at %s", host->url);
}

static void
go_host_stop (GoHost *host)
{
  g_subprocess_send_signal (host->process, SIGTERM);
  g_subprocess_wait (host->process, NULL, NULL);
  g_clear_object (&host->process);
  g_free (host->url);
}

static CpClient *
launch (const char *name,
        const char *plugin_name,
        const char *host_url)
{
  g_autofree char *path = g_build_filename (plugin_dir, name, NULL);
  const char *argv[] = { path, NULL };
  const char *plugins[] = { plugin_name, NULL };
  g_auto(GStrv) env = g_environ_setenv (g_get_environ (), "HOST_URL", host_url, TRUE);
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "name", name,
                            "environment", env, NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);
  cp_client_connect_async (client, NULL, store_result, &result);
  g_assert_true (cp_client_connect_finish (client, wait_result (&result), &error));
  g_assert_no_error (error);
  return g_steal_pointer (&client);
}

static void
close_client (CpClient *client)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_client_close_async (client, NULL, store_result, &result);
  cp_client_close_finish (client, wait_result (&result), NULL);
  g_object_unref (client);
}

static gboolean
on_retry (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_routed_through_go (void)
{
  GoHost host = { 0 };
  CpClient *logger, *cache, *app;
  g_autoptr(DemoApp) proxy = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) route = NULL;
  gint64 deadline;

  go_host_start (&host);
  logger = launch ("logger-plugin", "logger", host.url);
  cache = launch ("cache-plugin", "cache", host.url);
  app = launch ("app-plugin", "app", host.url);
  proxy = DEMO_APP (cp_client_dispense (app, "app", DEMO_TYPE_APP_PROXY, &error));
  g_assert_no_error (error);

  /* The plugins register on their own after start-up: retry the first
   * call while the Go registry does not know them yet (not_found). */
  deadline = g_get_monotonic_time () + GUARD_S * G_USEC_PER_SEC;
  while (TRUE)
    {
      g_autoptr(DemoProcessRequest) request = demo_process_request_new ();
      g_autoptr(DemoProcessResponse) response = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      gboolean retry = FALSE;

      g_clear_error (&error);
      demo_process_request_set_input (request, "go");
      demo_app_call_process (proxy, request, NULL, NULL, store_result, &result);
      response = demo_app_call_process_finish (proxy, wait_result (&result), &error);
      if (response != NULL)
        {
          g_assert_cmpstr (demo_process_response_get_result (response), ==, "GO");
          route = demo_process_response_get_route (response);
          if (route != NULL && g_strv_length (route) == 2)
            break;
          g_clear_pointer (&route, g_strfreev);
        }
      g_test_message ("not routed yet: %s", error != NULL ? error->message : "cache did not reach logger");
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_timeout_add (100, on_retry, &retry);
      while (!retry)
        g_main_context_iteration (NULL, TRUE);
    }
  g_test_message ("route: %s | %s", route[0], route[1]);
  g_assert_true (g_str_has_prefix (route[0], "app-plugin-"));
  g_assert_nonnull (strstr (route[0], " -> cache-plugin-"));
  g_assert_true (g_str_has_prefix (route[1], "cache-plugin-"));
  g_assert_nonnull (strstr (route[1], " -> logger-plugin-"));

  close_client (app);
  close_client (cache);
  close_client (logger);
  go_host_stop (&host);
}

/* The plugin's stderr comes to our log (CpProcessDiscovery forwards it):
 * look for the line secrets-reader writes once it has read the secret. */
static gboolean secret_seen;

static GLogWriterOutput
watch_log (GLogLevelFlags   level,
           const GLogField *fields,
           gsize            n_fields,
           gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0 &&
        strstr (fields[i].value, "secrets-reader: db-password = hunter2") != NULL)
      secret_seen = TRUE;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
test_capability_from_go (void)
{
  GoHost host = { 0 };
  CpClient *reader;
  guint guard;

  go_host_start (&host);
  reader = launch ("secrets-reader", NULL, host.url);
  guard = g_timeout_add_seconds (GUARD_S, on_guard, NULL);
  while (!secret_seen)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
  close_client (reader);
  go_host_stop (&host);
}

/* A Go host's Platform.AddPlugin / RemovePlugin drive our plugin through
 * PluginIdentity (GetPluginInfo, SetRuntimeIdentity with the host's URL:
 * our plugin registers and reports HEALTHY to the Go host) and
 * PluginControl.Shutdown. connect-plugin-go sends no control secret, so the
 * plugin allows unauthenticated control, as `--insecure-control` does. */
static gboolean shutdown_requested;

static void
on_shutdown_requested (CpServer *server, int grace, const char *reason, gpointer data)
{
  shutdown_requested = TRUE;
}

static void
on_line (GObject *source, GAsyncResult *result, gpointer data)
{
  char **line = data;

  *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result, NULL, NULL);
  if (*line == NULL)
    *line = g_strdup ("(end of output)");
}

static char *
read_line (GDataInputStream *out)
{
  char *line = NULL;
  guint guard = g_timeout_add_seconds (GUARD_S, on_guard, NULL);

  g_data_input_stream_read_line_async (out, G_PRIORITY_DEFAULT, NULL, on_line, &line);
  while (line == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
  return line;
}

static void
test_go_platform_drives_ours (void)
{
  g_autoptr(DemoLogger) logger = demo_logger_skeleton_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("logger", "1.0.0");
  g_autoptr(CpServer) server = NULL;
  g_autoptr(GSubprocess) go = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *go_url = NULL;
  g_autofree char *added = NULL;
  g_autofree char *removed = NULL;
  g_autofree char *expected = NULL;

  cp_plugin_add_service (plugin, CP_SKELETON (logger));
  cp_plugin_add_provides (plugin, "logger", "1.0.0", "/logger.v1.Logger/");
  server = g_object_new (CP_TYPE_SERVER, "self-id", "logger-plugin", "self-version", "1.0.0",
                         "identity-enabled", TRUE, "plugin-control-enabled", TRUE,
                         "control-allow-unauthenticated", TRUE, NULL);
  g_signal_connect (server, "shutdown-requested", G_CALLBACK (on_shutdown_requested), NULL);
  cp_server_add_plugin (server, plugin);
  g_assert_true (cp_server_start (server, &error));
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  go = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, go_host_path,
                         "--listen", "127.0.0.1:0", "--add", url, "--remove",
                         "--identity-host-url", "self", "--remove-grace", "0s", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (go));
  go_url = read_line (out);
  added = read_line (out);
  g_test_message ("Go host %s: %s", go_url, added);
  expected = g_strdup_printf ("added %s", cp_server_get_runtime_id (server));
  g_assert_cmpstr (added, ==, expected);
  /* Registered with the Go registry too (the health report may come
   * first). */
  {
    guint guard = g_timeout_add_seconds (GUARD_S, on_guard, NULL);

    while (!cp_server_get_host_registered (server))
      g_main_context_iteration (NULL, TRUE);
    g_source_remove (guard);
  }
  g_assert_cmpstr (cp_server_get_host_url (server), ==, go_url);

  removed = read_line (out);
  g_free (expected);
  expected = g_strdup_printf ("removed %s", cp_server_get_runtime_id (server));
  g_assert_cmpstr (removed, ==, expected);
  while (!shutdown_requested)
    g_main_context_iteration (NULL, TRUE);

  g_subprocess_send_signal (go, SIGTERM);
  g_subprocess_wait (go, NULL, NULL);
  cp_server_close (server);
  cp_skeleton_unexport (CP_SKELETON (logger));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 3)
    {
      g_printerr ("usage: %s GO-PLATFORM-HOST PLUGIN-DIR\n", argv[0]);
      return 2;
    }
  g_log_set_writer_func (watch_log, NULL, NULL);
  go_host_path = argv[1];
  plugin_dir = argv[2];
  g_test_add_func ("/interop/go/platform/routed-through-go-router", test_routed_through_go);
  g_test_add_func ("/interop/go/platform/capability-from-go-broker", test_capability_from_go);
  g_test_add_func ("/interop/go/platform/go-add-remove-drives-ours", test_go_platform_drives_ours);
  return g_test_run ();
}
