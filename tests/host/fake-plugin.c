/* fake-plugin.c: plugin executables for the process-discovery tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   fake-plugin serve          the echo server through cp_server_run ()
 *                              (PluginControl on; logs Shutdown requests,
 *                              SIGTERM and whether the control secret is
 *                              still in its environment on stderr)
 *   fake-plugin serve-no-control   serves without PluginControl; exits 0 on
 *                              SIGTERM (after saying so on stderr)
 *   fake-plugin ignore-term    serves, without PluginControl, ignoring SIGTERM
 *   fake-plugin never-announce sleeps without printing anything
 *   fake-plugin exit-early     complains on stderr and exits with status 3
 *   fake-plugin garbage        prints something that is not an address
 *   fake-plugin port-serve     like connect-plugin-go's plugins: prints no
 *                              address, listens on 127.0.0.1:$PORT a moment
 *                              after starting (logs $HOST_URL on stderr)
 *   fake-plugin chatty         like serve, plus lines on stderr and stdout
 *   fake-plugin glib-logs      like serve, then plain lines and records of
 *                              GLib's default log writer (messages,
 *                              warnings, debug ... records, without a
 *                              domain or in FakePlugin; debug ones need
 *                              G_MESSAGES_DEBUG=FakePlugin; one INFO
 *                              record before the address), then
 *                              "glib-logs done" on stderr
 *   fake-plugin host           a host: launches "fake-plugin serve", prints its
 *                              pid, waits to be killed
 *   fake-plugin crash-on-file  serves the echo plugin (not "other"); a Say
 *                              while the file $FAKE_PLUGIN_CRASH_FILE
 *                              exists ends the process (status 70) before
 *                              answering: a plugin in a crash loop
 *   fake-plugin gapplication   the echo server run by a GApplication
 *                              (cp_server_bind_application ()); its own
 *                              startup and shutdown handlers say so on
 *                              stderr
 *   fake-plugin slow           serves the echo plugin; Say waits
 *                              $FAKE_PLUGIN_SLOW_MS ms, then fails with
 *                              unavailable "slow: timeout=N" where N is the
 *                              call's Connect-Timeout-Ms (-1 for none)
 */
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>

#include "host-test-util.h"

static gboolean
sigterm_logged (gpointer user_data)
{
  fprintf (stderr, "fake-plugin: got SIGTERM\n");
  fflush (stderr);
  return G_SOURCE_CONTINUE;
}

static void
host_started (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = cp_process_discovery_start_finish (CP_PROCESS_DISCOVERY (source),
                                                            result, &error);

  if (url == NULL)
    {
      fprintf (stderr, "fake-plugin: %s\n", error->message);
      exit (1);
    }
  *(gboolean *) user_data = TRUE;
}

static gboolean
sigterm_quit (gpointer user_data)
{
  fprintf (stderr, "fake-plugin: got SIGTERM\n");
  fflush (stderr);
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
print_later (gpointer user_data)
{
  printf ("fake-plugin: a line on stdout after the address\n");
  fflush (stdout);
  return G_SOURCE_REMOVE;
}

/* Once serving: what test-plugin-output expects, in GLib's own formats
 * (INFO and DEBUG records go to stdout, the others to stderr). */
static gboolean
print_glib_logs (gpointer user_data)
{
  fprintf (stderr, "a plain line\n");
  fprintf (stderr, "fake-plugin: a plain line with the name\n");
  fflush (stderr);
  /* (g_message () would have the domain ConnectPlugin, from the build.) */
  g_log_structured (NULL, G_LOG_LEVEL_MESSAGE, "MESSAGE", "a message without a domain");
  g_log_structured ("FakePlugin", G_LOG_LEVEL_WARNING, "MESSAGE", "a warning");
  g_log_structured ("FakePlugin", G_LOG_LEVEL_INFO, "MESSAGE", "an info");
  g_log_structured ("FakePlugin", G_LOG_LEVEL_DEBUG, "MESSAGE", "a debug line");
  g_log_structured (NULL, G_LOG_LEVEL_CRITICAL, "MESSAGE", "a critical without a domain");
  /* g_error () would end the plugin: its line, as GLib prints it. */
  fprintf (stderr, "\n** (fake-plugin:%d): ERROR **: 12:34:56.789: a pretend error\n", (int) getpid ());
  fprintf (stderr, "glib-logs done\n");
  fflush (stderr);
  return G_SOURCE_REMOVE;
}

static void
shutdown_requested (CpServer   *server,
                    int         grace_period_seconds,
                    const char *reason,
                    gpointer    user_data)
{
  fprintf (stderr, "fake-plugin: shutdown requested (%d s: %s)\n", grace_period_seconds, reason);
  fflush (stderr);
}

/* What the plugin's own children would inherit, once it serves. */
static void
serving_changed (CpServer   *server,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  if (cp_server_get_serving (server))
    {
      fprintf (stderr, "fake-plugin: control secret in the environment: %s\n",
               g_getenv (CP_CONTROL_SECRET_ENV) != NULL ? "yes" : "no");
      fprintf (stderr, "fake-plugin: AutoMTLS in the environment: %s\n",
               g_getenv (CP_AUTOMTLS_CERT_ENV) != NULL || g_getenv (CP_AUTOMTLS_KEY_ENV) != NULL ||
               g_getenv (CP_AUTOMTLS_CA_ENV) != NULL || g_getenv (CP_AUTOMTLS_FD_ENV) != NULL
               ? "yes" : "no");
      fflush (stderr);
    }
}

/* ---- the fault modes ---- */

static gboolean
crash_or_say (HosttestEchoService *object,
              CpInvocation        *invocation,
              HosttestSayRequest  *request,
              gpointer             user_data)
{
  g_autoptr(HosttestSayResponse) response = hosttest_say_response_new ();

  if (g_file_test (g_getenv ("FAKE_PLUGIN_CRASH_FILE"), G_FILE_TEST_EXISTS))
    _exit (70);
  hosttest_say_response_set_text (response, hosttest_say_request_get_text (request));
  hosttest_echo_service_complete_say (object, invocation, response);
  return TRUE;
}

static gboolean
fail_slowly (gpointer user_data)
{
  CpInvocation *invocation = user_data;

  cp_invocation_return_error (invocation, CP_ERROR_UNAVAILABLE, "slow: timeout=%" G_GINT64_FORMAT,
                              cp_invocation_get_timeout_ms (invocation));
  return G_SOURCE_REMOVE;
}

static gboolean
say_slowly (HosttestEchoService *object,
            CpInvocation        *invocation,
            HosttestSayRequest  *request,
            gpointer             user_data)
{
  guint delay_ms = (guint) g_ascii_strtoull (g_getenv ("FAKE_PLUGIN_SLOW_MS"), NULL, 10);

  g_timeout_add_full (G_PRIORITY_DEFAULT, delay_ms, fail_slowly,
                      g_object_ref (invocation), g_object_unref);
  return TRUE;
}

/* The echo plugin alone, with @say as its Say handler, through
 * cp_server_run (). */
static int
serve_fault (GCallback   say,
             const char *env,
             char      **argv)
{
  g_autoptr(CpServer) server = cp_server_new ();
  g_autoptr(CpPlugin) echo = cp_plugin_new ("echo", "1.2.3");
  g_autoptr(HosttestEchoService) echo_impl = hosttest_echo_service_skeleton_new ();

  if (g_getenv (env) == NULL)
    {
      fprintf (stderr, "fake-plugin: no %s\n", env);
      return 4;
    }
  g_signal_connect (echo_impl, "handle-say", say, NULL);
  cp_plugin_add_service (echo, CP_SKELETON (echo_impl));
  cp_server_add_plugin (server, echo);
  return cp_server_run (server, 1, argv);
}

static int
serve (int    argc,
       char **argv)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();

  g_signal_connect (server, "shutdown-requested", G_CALLBACK (shutdown_requested), NULL);
  g_signal_connect (server, "notify::serving", G_CALLBACK (serving_changed), NULL);
  g_unix_signal_add (SIGTERM, sigterm_logged, NULL);
  fprintf (stderr, "fake-plugin: starting\n");
  fflush (stderr);
  return cp_server_run (server, 1, argv);
}

static gboolean
listen_on_port (gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *address = g_strdup_printf ("127.0.0.1:%s", g_getenv ("PORT"));
  g_autofree char *url = cp_server_listen (user_data, address, &error);

  if (url == NULL)
    {
      fprintf (stderr, "fake-plugin: %s\n", error->message);
      exit (1);
    }
  fprintf (stderr, "fake-plugin: listening on %s\n", address);
  fflush (stderr);
  return G_SOURCE_REMOVE;
}

/* Only $PORT says where (not CONNECTPLUGIN_LISTEN), nothing is printed on
 * stdout but a line that is not an address, and the port opens late, so
 * that the host has to poll for it. */
static int
port_serve (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  if (g_getenv ("PORT") == NULL)
    {
      fprintf (stderr, "fake-plugin: no PORT\n");
      return 4;
    }
  fprintf (stderr, "fake-plugin: HOST_URL=%s\n", g_getenv ("HOST_URL") ? g_getenv ("HOST_URL") : "(unset)");
  fflush (stderr);
  printf ("starting up, not an address\n");
  fflush (stdout);
  g_timeout_add (200, listen_on_port, server);
  g_unix_signal_add (SIGTERM, sigterm_quit, loop);
  g_main_loop_run (loop);
  cp_server_close (server);
  return 0;
}

static void
app_said (GApplication *application,
          gpointer      what)
{
  fprintf (stderr, "fake-plugin: application %s\n", (const char *) what);
  fflush (stderr);
}

/* The echo server as a GApplication: the application's own options and
 * handlers next to the server's. */
static int
serve_application (int    argc,
                   char **argv)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(GApplication) app = g_application_new ("org.example.FakePlugin",
                                                   G_APPLICATION_NON_UNIQUE);

  cp_server_bind_application (server, app);
  g_signal_connect (app, "startup", G_CALLBACK (app_said), (gpointer) "startup");
  g_signal_connect (app, "shutdown", G_CALLBACK (app_said), (gpointer) "shutdown");
  /* argv without the mode. */
  argv[1] = argv[0];
  return g_application_run (app, argc - 1, argv + 1);
}

int
main (int    argc,
      char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "serve";
  int fd3_flags = fcntl (3, F_GETFD);

  /* What main () finds: a launch with AutoMTLS has its variables taken
   * out of the environment by the library before main () runs, and its
   * pipe made close-on-exec. */
  fprintf (stderr, "fake-plugin: at main: AutoMTLS descriptor in the environment: %s, "
           "control secret in the environment: %s, descriptor 3: %s\n",
           g_getenv (CP_AUTOMTLS_FD_ENV) != NULL ? "yes" : "no",
           g_getenv (CP_CONTROL_SECRET_ENV) != NULL ? "yes" : "no",
           fd3_flags < 0 ? "closed" : (fd3_flags & FD_CLOEXEC) ? "close-on-exec" : "inherited");
  fflush (stderr);
  if (g_str_equal (mode, "serve"))
    return serve (argc, argv);
  if (g_str_equal (mode, "serve-no-control"))
    {
      /* Its own loop (not cp_server_run ()), so that the SIGTERM line is
       * written before anything else reacts to the signal. */
      g_autoptr(CpServer) server = host_test_echo_server_new ();
      g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
      g_autoptr(GError) error = NULL;
      g_autofree char *url = NULL;

      g_object_set (server, "plugin-control-enabled", FALSE, NULL);
      url = cp_server_listen (server, g_getenv (CP_LISTEN_ENV), &error);
      if (url == NULL)
        {
          fprintf (stderr, "fake-plugin: %s\n", error->message);
          return 1;
        }
      g_unix_signal_add (SIGTERM, sigterm_quit, loop);
      printf ("%s\n", url);
      fflush (stdout);
      g_main_loop_run (loop);
      cp_server_close (server);
      return 0;
    }
  if (g_str_equal (mode, "chatty"))
    {
      fprintf (stderr, "fake-plugin: first line on stderr\nfake-plugin: second line\n");
      fflush (stderr);
      /* Runs once the server has announced its address. */
      g_idle_add (print_later, NULL);
      return serve (argc, argv);
    }
  if (g_str_equal (mode, "glib-logs"))
    {
      /* A record on stdout before the address: logged, not announced. */
      g_log_structured ("FakePlugin", G_LOG_LEVEL_INFO, "MESSAGE", "an info before the address");
      g_idle_add (print_glib_logs, NULL);
      return serve (argc, argv);
    }
  if (g_str_equal (mode, "ignore-term"))
    {
      g_autoptr(CpServer) server = host_test_echo_server_new ();
      g_autoptr(GError) error = NULL;
      g_autofree char *url = NULL;

      signal (SIGTERM, SIG_IGN);
      g_object_set (server, "plugin-control-enabled", FALSE, NULL);
      url = cp_server_listen (server, g_getenv (CP_LISTEN_ENV), &error);
      if (url == NULL)
        {
          fprintf (stderr, "fake-plugin: %s\n", error->message);
          return 1;
        }
      printf ("%s\n", url);
      fflush (stdout);
      for (;;)
        g_main_context_iteration (NULL, TRUE);
    }
  if (g_str_equal (mode, "host"))
    {
      /* A host launching "fake-plugin serve", reporting its pid and then
       * waiting to be killed. */
      const char *plugin_argv[] = { argv[0], "serve", NULL };
      g_autoptr(CpProcessDiscovery) discovery = cp_process_discovery_new (plugin_argv);
      gboolean done = FALSE;

      cp_process_discovery_start_async (discovery, NULL, host_started, &done);
      while (!done)
        g_main_context_iteration (NULL, TRUE);
      printf ("%d\n", (int) cp_process_discovery_get_pid (discovery));
      fflush (stdout);
      for (;;)
        g_main_context_iteration (NULL, TRUE);
    }
  if (g_str_equal (mode, "never-announce"))
    {
      for (;;)
        pause ();
    }
  if (g_str_equal (mode, "exit-early"))
    {
      fprintf (stderr, "fake-plugin: cannot read my configuration\n");
      return 3;
    }
  if (g_str_equal (mode, "garbage"))
    {
      printf ("hello, I am a plugin\n");
      fflush (stdout);
      for (;;)
        pause ();
    }

  if (g_str_equal (mode, "port-serve"))
    return port_serve ();
  if (g_str_equal (mode, "gapplication"))
    return serve_application (argc, argv);
  if (g_str_equal (mode, "crash-on-file"))
    return serve_fault (G_CALLBACK (crash_or_say), "FAKE_PLUGIN_CRASH_FILE", argv);
  if (g_str_equal (mode, "slow"))
    return serve_fault (G_CALLBACK (say_slowly), "FAKE_PLUGIN_SLOW_MS", argv);

  fprintf (stderr, "fake-plugin: unknown mode %s\n", mode);
  return 2;
}
