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
 * Every process is stopped by PID at the end. Every wait has a guard
 * (GUARD_S); the Go hosts die with this program (PR_SET_PDEATHSIG), and
 * their stderr goes to a temporary file, printed when a wait fails and
 * kept when the test fails.
 */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <unistd.h>
#endif

#include "app.cp.h"
#include "logger.cp.h"

/* Every wait is event-driven and ends after this long with a failure
 * that names what it waited for, kills the Go hosts and prints their
 * logs: nothing here waits forever. */
#define GUARD_S 30

static char *plugin_dir;
static char *go_host_path;
static char *log_dir;           /* the Go hosts' stderr, one file each */
static GPtrArray *running;      /* (element-type GoHost) not stopped yet */

typedef struct {
  GSubprocess *process;
  GDataInputStream *out;
  char *url;
  char *log_path;
} GoHost;

static void
dump_log (GoHost *host)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (host->log_path, &text, NULL, NULL))
    return;
  g_test_message ("--- Go host %s (%s) stderr:", host->url ? host->url : "(no URL yet)",
                  host->log_path);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      g_test_message ("go: %s", lines[i]);
  g_test_message ("--- end of Go host stderr");
}

/* Fails the test: the Go hosts still running are killed by PID (they
 * would also get SIGKILL when this process dies, see die_with_test) and
 * their stderr printed. */
static void G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN
fail_now (const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  for (guint i = 0; running != NULL && i < running->len; i++)
    {
      GoHost *host = running->pdata[i];

      g_test_message ("killing Go host pid %s", g_subprocess_get_identifier (host->process));
      g_subprocess_force_exit (host->process);
      dump_log (host);
    }
  g_error ("%s", message);
}

typedef struct {
  const char *what;
  gboolean expired;
  guint source;
} Guard;

static gboolean
on_guard (gpointer data)
{
  Guard *guard = data;

  guard->expired = TRUE;
  guard->source = 0;
  return G_SOURCE_REMOVE;
}

static void
guard_start (Guard      *guard,
             const char *what)
{
  guard->what = what;
  guard->expired = FALSE;
  guard->source = g_timeout_add_seconds (GUARD_S, on_guard, guard);
}

static void
guard_iterate (Guard *guard)
{
  g_main_context_iteration (NULL, TRUE);
  if (guard->expired)
    fail_now ("waited more than %d s for %s", GUARD_S, guard->what);
}

static void
guard_end (Guard *guard)
{
  g_clear_handle_id (&guard->source, g_source_remove);
}

/* Runs the main context until @cond holds, for at most GUARD_S. */
#define WAIT_UNTIL(cond, what) \
  G_STMT_START { \
    Guard guard_; \
    guard_start (&guard_, (what)); \
    while (!(cond)) \
      guard_iterate (&guard_); \
    guard_end (&guard_); \
  } G_STMT_END

static void
store_result (GObject *source, GAsyncResult *result, gpointer data)
{
  *(GAsyncResult **) data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **result,
             const char    *what)
{
  WAIT_UNTIL (*result != NULL, what);
  return *result;
}

#ifdef __linux__
/* In the child, before exec: a failed assertion aborts this program, and
 * the Go host must not outlive it (holding its port, and running until
 * meson's timeout). */
static void
die_with_test (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  /* The test may have died before prctl () took effect. */
  if (getppid () != (pid_t) GPOINTER_TO_INT (data))
    _exit (1);
}
#endif

static void
on_line (GObject *source, GAsyncResult *result, gpointer data)
{
  char **line = data;

  *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result, NULL, NULL);
  if (*line == NULL)
    *line = g_strdup ("");      /* end of output or an error */
}

/* The next line the Go host prints on stdout (@what names it). */
static char *
go_host_read_line (GoHost     *host,
                   const char *what)
{
  char *line = NULL;

  g_data_input_stream_read_line_async (host->out, G_PRIORITY_DEFAULT, NULL, on_line, &line);
  WAIT_UNTIL (line != NULL, what);
  if (line[0] == '\0')
    fail_now ("the Go host's output ended before %s", what);
  return line;
}

/* Starts cp-go-platform-host on 127.0.0.1 port 0 with @args: stdout is
 * read by the test, stderr goes to a file in log_dir. */
static void
go_host_start (GoHost            *host,
               const char * const *args)
{
  static guint count;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *name = g_strdup_printf ("go-host-%u.log", ++count);
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (argv, go_host_path);
  g_ptr_array_add (argv, "--listen");
  g_ptr_array_add (argv, "127.0.0.1:0");
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  host->log_path = g_build_filename (log_dir, name, NULL);
  g_subprocess_launcher_set_stderr_file_path (launcher, host->log_path);
#ifdef __linux__
  g_subprocess_launcher_set_child_setup (launcher, die_with_test,
                                         GINT_TO_POINTER ((int) getpid ()), NULL);
#endif
  host->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_ptr_array_add (running, host);
  host->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (host->process));
  host->url = go_host_read_line (host, "the Go host's URL");
  g_test_message ("Go platform host at %s, pid %s, stderr in %s", host->url,
                  g_subprocess_get_identifier (host->process), host->log_path);
}

static void
go_host_stop (GoHost *host)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_subprocess_send_signal (host->process, SIGTERM);
  g_subprocess_wait_async (host->process, NULL, store_result, &result);
  g_assert_true (g_subprocess_wait_finish (host->process,
                                           wait_result (&result, "the Go host to exit after SIGTERM"),
                                           &error));
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (host->process) || g_subprocess_get_exit_status (host->process) != 0)
    {
      g_test_message ("the Go host did not exit with 0 after SIGTERM");
      dump_log (host);
    }
  g_ptr_array_remove (running, host);
  g_clear_object (&host->out);
  g_clear_object (&host->process);
  g_clear_pointer (&host->url, g_free);
  g_unlink (host->log_path);
  g_clear_pointer (&host->log_path, g_free);
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
  g_autofree char *what = g_strdup_printf ("%s to start and connect", name);
  gboolean connected;

  /* The Go host routes calls to the plugin itself: no AutoMTLS, whose
   * certificates only this process would hold. */
  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "name", name,
                            "environment", env, "auto-mtls", FALSE, NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);
  cp_client_connect_async (client, NULL, store_result, &result);
  connected = cp_client_connect_finish (client, wait_result (&result, what), &error);
  g_assert_no_error (error);
  g_assert_true (connected);
  return g_steal_pointer (&client);
}

static void
close_client (CpClient *client)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_client_close_async (client, NULL, store_result, &result);
  cp_client_close_finish (client, wait_result (&result, "a plugin to close"), NULL);
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

  go_host_start (&host, NULL);
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
      response = demo_app_call_process_finish (proxy, wait_result (&result, "app.Process"), &error);
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
      WAIT_UNTIL (retry, "the retry timer");
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

  go_host_start (&host, NULL);
  reader = launch ("secrets-reader", NULL, host.url);
  WAIT_UNTIL (secret_seen, "secrets-reader to log the secret it read");
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

static gboolean server_closed;

static void
on_closed (CpServer *server, gpointer data)
{
  server_closed = TRUE;
}

static GError *link_error;

static void
on_host_link_failed (CpServer *server, const GError *error, gpointer data)
{
  g_test_message ("host link failed: %s", error->message);
  if (link_error == NULL)
    link_error = g_error_copy (error);
}

/* Logged only: whether it comes before Shutdown is not ordered (see
 * test_go_platform_drives_ours). */
static void
on_host_registered (CpServer *server, GParamSpec *pspec, gpointer data)
{
  g_test_message ("host-registered: %s", cp_server_get_host_registered (server) ? "TRUE" : "FALSE");
}

/* The Go host's next stdout line must be "@verb RUNTIME-ID" for @server. */
static void
expect_line (GoHost     *host,
             CpServer   *server,
             const char *verb)
{
  g_autofree char *what = g_strdup_printf ("its \"%s\" line", verb);
  g_autofree char *line = go_host_read_line (host, what);
  g_autofree char *expected = g_strdup_printf ("%s %s", verb, cp_server_get_runtime_id (server));

  g_test_message ("Go host %s: %s", host->url, line);
  if (g_strcmp0 (line, expected) != 0)
    fail_now ("the Go host printed \"%s\", expected \"%s\"", line, expected);
}

static void
test_go_platform_drives_ours (void)
{
  g_autoptr(DemoLogger) logger = demo_logger_skeleton_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("logger", "1.0.0");
  g_autoptr(CpServer) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  GoHost go = { 0 };

  cp_plugin_add_service (plugin, CP_SKELETON (logger));
  cp_plugin_add_provides (plugin, "logger", "1.0.0", "/logger.v1.Logger/");
  server = g_object_new (CP_TYPE_SERVER, "self-id", "logger-plugin", "self-version", "1.0.0",
                         "identity-enabled", TRUE, "plugin-control-enabled", TRUE,
                         "control-allow-unauthenticated", TRUE, NULL);
  g_signal_connect (server, "shutdown-requested", G_CALLBACK (on_shutdown_requested), NULL);
  g_signal_connect (server, "closed", G_CALLBACK (on_closed), NULL);
  g_signal_connect (server, "host-link-failed", G_CALLBACK (on_host_link_failed), NULL);
  g_signal_connect (server, "notify::host-registered", G_CALLBACK (on_host_registered), NULL);
  cp_server_add_plugin (server, plugin);
  g_assert_true (cp_server_start (server, &error));
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  /* AddPlugin gives up on HEALTHY before our guard does: its
   * "add-failed: ..." line then tells why. */
  go_host_start (&go, (const char *[]) { "--add", url, "--remove", "--identity-host-url", "self",
                                         "--remove-grace", "0s", "--health-timeout", "20s", NULL });

  /* AddPlugin returns once the Go lifecycle service holds a HEALTHY report
   * under the runtime id it gave our plugin with SetRuntimeIdentity, which
   * also named the Go host as ours: the link then registered the logger
   * service there and reported health (registering comes first; a failed
   * registration ends the link without a report). Whether the reply to
   * that report reaches us (host-registered turning TRUE) before
   * RemovePlugin's Shutdown is not ordered: Shutdown cancels the link, so
   * host-registered is not waited for. */
  expect_line (&go, server, "added");
  g_assert_cmpstr (cp_server_get_host_url (server), ==, go.url);
  g_assert_nonnull (cp_server_get_runtime_token (server));
  g_assert_no_error (link_error);

  /* RemovePlugin: the Go registry drops the plugin's services, then
   * PluginControl.Shutdown (whose error it ignores: our handler must have
   * run) and our server stops gracefully. */
  expect_line (&go, server, "removed");
  WAIT_UNTIL (shutdown_requested, "PluginControl.Shutdown from the Go host");
  WAIT_UNTIL (server_closed, "our server to stop after Shutdown");

  go_host_stop (&go);
  cp_server_close (server);
  cp_skeleton_unexport (CP_SKELETON (logger));
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  if (argc < 3)
    {
      g_printerr ("usage: %s GO-PLATFORM-HOST PLUGIN-DIR\n", argv[0]);
      return 2;
    }
  g_log_set_writer_func (watch_log, NULL, NULL);
  go_host_path = argv[1];
  plugin_dir = argv[2];
  log_dir = g_dir_make_tmp ("test-go-platform-XXXXXX", &error);
  g_assert_no_error (error);
  running = g_ptr_array_new ();
  g_test_add_func ("/interop/go/platform/routed-through-go-router", test_routed_through_go);
  g_test_add_func ("/interop/go/platform/capability-from-go-broker", test_capability_from_go);
  g_test_add_func ("/interop/go/platform/go-add-remove-drives-ours", test_go_platform_drives_ours);
  status = g_test_run ();
  /* Each stopped Go host removed its log; a failure leaves the others. */
  if (g_rmdir (log_dir) != 0)
    g_test_message ("Go host logs kept in %s", log_dir);
  g_ptr_array_unref (running);
  g_free (log_dir);
  return status;
}
