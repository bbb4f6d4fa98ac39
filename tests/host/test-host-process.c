/* test-host-process.c: CpProcessDiscovery with real child processes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "host-test-util.h"

typedef struct {
  guint exits;
  int exit_status;
  int term_signal;
  guint changes;
} Events;

static void
exited_cb (CpProcessDiscovery *discovery,
           int                 exit_status,
           int                 term_signal,
           Events             *events)
{
  events->exits++;
  events->exit_status = exit_status;
  events->term_signal = term_signal;
}

static void
changed_cb (CpDiscovery *discovery,
            Events      *events)
{
  events->changes++;
}

static CpProcessDiscovery *
discovery_new (const char *mode,
               Events     *events)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, mode, NULL };
  CpProcessDiscovery *discovery;

  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY,
                            "argv", argv,
                            "name", mode,
                            NULL);
  if (events != NULL)
    {
      memset (events, 0, sizeof *events);
      g_signal_connect (discovery, "exited", G_CALLBACK (exited_cb), events);
      g_signal_connect (discovery, "changed", G_CALLBACK (changed_cb), events);
    }
  return discovery;
}

typedef struct {
  gboolean done;
  char *url;
  gboolean ok;
  GError *error;
} Result;

static void
start_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Result *r = user_data;

  r->url = cp_process_discovery_start_finish (CP_PROCESS_DISCOVERY (source), result, &r->error);
  r->done = TRUE;
}

static void
stop_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Result *r = user_data;

  r->ok = cp_process_discovery_stop_finish (CP_PROCESS_DISCOVERY (source), result, &r->error);
  r->done = TRUE;
}

static void
result_clear (Result *r)
{
  g_clear_pointer (&r->url, g_free);
  g_clear_error (&r->error);
  r->done = FALSE;
}

static char *
start (CpProcessDiscovery  *discovery,
       GError             **error)
{
  Result r = { 0 };

  cp_process_discovery_start_async (discovery, NULL, start_cb, &r);
  host_test_wait_flag (&r.done);
  if (r.error != NULL)
    g_propagate_error (error, r.error);
  return r.url;
}

static void
stop (CpProcessDiscovery *discovery)
{
  Result r = { 0 };

  cp_process_discovery_stop_async (discovery, NULL, stop_cb, &r);
  host_test_wait_flag (&r.done);
  g_assert_no_error (r.error);
  g_assert_true (r.ok);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STOPPED);
  g_assert_cmpint (cp_process_discovery_get_pid (discovery), ==, 0);
  result_clear (&r);
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Result *r = user_data;

  r->ok = cp_client_connect_finish (CP_CLIENT (source), result, &r->error);
  r->done = TRUE;
}

static void
connect_client (CpClient *client)
{
  Result r = { 0 };

  cp_client_connect_async (client, NULL, connect_cb, &r);
  host_test_wait_flag (&r.done);
  g_assert_no_error (r.error);
  g_assert_true (r.ok);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);
}

static void
close_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Result *r = user_data;

  r->ok = cp_client_close_finish (CP_CLIENT (source), result, &r->error);
  r->done = TRUE;
}

static void
say_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
assert_say (CpClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpProxy) proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY,
                                                 &error);
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(HosttestSayResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  g_assert_no_error (error);
  hosttest_say_request_set_text (request, "over there");
  hosttest_echo_service_call_say (HOSTTEST_ECHO_SERVICE (proxy), request, NULL, NULL,
                                  say_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = hosttest_echo_service_call_say_finish (HOSTTEST_ECHO_SERVICE (proxy), result, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (hosttest_say_response_get_text (response), ==, "over there");
}

static CpClient *
client_new (CpProcessDiscovery *discovery)
{
  CpClient *client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  const char *plugins[] = { "echo", NULL };

  cp_client_set_plugins (client, plugins);
  return client;
}

/* ---- tests ---- */

static void
test_launch_tcp (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(CpClient) client = NULL;
  Result r = { 0 };

  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STOPPED);
  host_test_plugin_logs_clear ();

  /* The client launches it through discovery. */
  client = client_new (discovery);
  connect_client (client);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_RUNNING);
  /* AutoMTLS is on by default for TCP launches. */
  g_assert_true (g_str_has_prefix (cp_process_discovery_get_url (discovery), "https://127.0.0.1:"));
  g_assert_cmpstr (cp_client_get_url (client), ==, cp_process_discovery_get_url (discovery));
  g_assert_cmpint (cp_process_discovery_get_pid (discovery), >, 0);
  assert_say (client);

  /* Closing the client shuts the plugin down: PluginControl.Shutdown is
   * enough, no signal needed. */
  cp_client_close_async (client, NULL, close_cb, &r);
  host_test_wait_flag (&r.done);
  g_assert_no_error (r.error);
  g_assert_true (r.ok);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STOPPED);
  g_assert_cmpuint (events.exits, ==, 1);
  g_assert_cmpint (events.exit_status, ==, 0);
  g_assert_cmpint (events.term_signal, ==, 0);
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("serve", "stderr", "shutdown requested"));
  g_assert_false (host_test_plugin_log_has ("serve", "stderr", "got SIGTERM"));
  /* Asked to stop: not a change to react to. */
  g_assert_cmpuint (events.changes, ==, 0);
}

static void
test_launch_unix (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *dir = NULL;
  struct stat st;

  g_object_set (discovery, "listen-mode", CP_LISTEN_UNIX, NULL);
  url = start (discovery, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (url, "unix:/"));
  dir = g_path_get_dirname (url + strlen ("unix:"));
  g_assert_cmpint (stat (dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);

  /* Starting again while running: the same process. */
  {
    GPid pid = cp_process_discovery_get_pid (discovery);
    g_autofree char *again = start (discovery, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (again, ==, url);
    g_assert_cmpint (cp_process_discovery_get_pid (discovery), ==, pid);
  }

  client = client_new (discovery);
  connect_client (client);
  assert_say (client);

  stop (discovery);
  g_assert_cmpuint (events.exits, ==, 1);
  /* The private directory is gone with the plugin. */
  HOST_TEST_WAIT_UNTIL (!g_file_test (dir, G_FILE_TEST_EXISTS));
}

/* A plugin that prints no address (connect-plugin-go's way): it gets a
 * free port in PORT and the host URL in HOST_URL, and serves once the port
 * accepts. */
static void
test_launch_port (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("port-serve", &events);
  g_autoptr(CpClient) client = NULL;
  g_autofree char *listening = NULL;
  CpStartupMode mode;

  g_object_get (discovery, "startup-mode", &mode, NULL);
  g_assert_cmpint (mode, ==, CP_STARTUP_MODE_STDOUT_LINE);
  g_object_set (discovery,
                "startup-mode", CP_STARTUP_MODE_PORT,
                "host-url", "http://host.example:8080",
                "start-timeout-ms", 30000,
                NULL);
  host_test_plugin_logs_clear ();

  client = client_new (discovery);
  connect_client (client);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_RUNNING);
  g_assert_true (g_str_has_prefix (cp_process_discovery_get_url (discovery), "http://127.0.0.1:"));
  g_assert_cmpstr (cp_client_get_url (client), ==, cp_process_discovery_get_url (discovery));
  assert_say (client);

  /* It listened where PORT said, saw HOST_URL, and its stdout was logged. */
  listening = g_strconcat ("listening on ",
                           cp_process_discovery_get_url (discovery) + strlen ("http://"), NULL);
  g_assert_true (host_test_plugin_log_has ("port-serve", "stderr", listening));
  g_assert_true (host_test_plugin_log_has ("port-serve", "stderr",
                                           "HOST_URL=http://host.example:8080"));
  g_assert_true (host_test_plugin_log_has ("port-serve", "stdout", "not an address"));

  stop (discovery);
  g_assert_cmpuint (events.exits, ==, 1);
}

/* A plugin that never becomes usable: start() fails with @code and a
 * message naming the cause, the process is gone. */
typedef struct {
  const char  *path;
  const char  *mode;            /* fake-plugin's mode; NULL: a missing program */
  guint        start_timeout_ms; /* 0: the default */
  CpErrorCode  code;
  const char  *message[2];      /* in the error message (NULL: none) */
  int          exit_status;     /* -1: no exit was seen or checked */
  gboolean     then_client;     /* a client on it fails the same way */
  gboolean     port_mode;       /* CP_STARTUP_MODE_PORT */
} StartFailure;

static const StartFailure start_failures[] = {
  { "never-announces", "never-announce", 200, CP_ERROR_DEADLINE_EXCEEDED,
    { "never-announce", NULL }, -1, FALSE },
  { "exit-during-startup", "exit-early", 0, CP_ERROR_UNAVAILABLE,
    { "exit status 3", "cannot read my configuration" }, 3, TRUE },
  { "garbage-announcement", "garbage", 0, CP_ERROR_INTERNAL,
    { "hello, I am a plugin", NULL }, -1, FALSE },
  { "launch-failure", NULL, 0, CP_ERROR_UNAVAILABLE,
    { "connectplugin-plugin", NULL }, -1, FALSE },
  /* Port mode: the port never opens, the plugin exits first, and a line on
   * its stdout is no announcement. */
  { "port/never-listens", "never-announce", 300, CP_ERROR_DEADLINE_EXCEEDED,
    { "did not accept connections on 127.0.0.1:", "(the port given in PORT) within 300 ms" },
    -1, FALSE, TRUE },
  { "port/exit-during-startup", "exit-early", 0, CP_ERROR_UNAVAILABLE,
    { "exit status 3", "cannot read my configuration" }, 3, TRUE, TRUE },
  { "port/stdout-is-no-announcement", "garbage", 300, CP_ERROR_DEADLINE_EXCEEDED,
    { "did not accept connections on 127.0.0.1:", NULL }, -1, FALSE, TRUE },
};

static void
test_start_failure (gconstpointer data)
{
  const StartFailure *c = data;
  const char *missing_argv[] = { "/nonexistent/connectplugin-plugin", NULL };
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  if (c->mode != NULL)
    discovery = discovery_new (c->mode, &events);
  else
    discovery = cp_process_discovery_new (missing_argv);
  if (c->start_timeout_ms > 0)
    g_object_set (discovery, "start-timeout-ms", c->start_timeout_ms, NULL);
  if (c->port_mode)
    g_object_set (discovery, "startup-mode", CP_STARTUP_MODE_PORT, NULL);

  url = start (discovery, &error);
  g_assert_null (url);
  g_assert_error (error, CP_ERROR, (gint) c->code);
  for (guint i = 0; i < G_N_ELEMENTS (c->message) && c->message[i] != NULL; i++)
    g_assert_nonnull (strstr (error->message, c->message[i]));
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_EXITED);
  g_assert_cmpint (cp_process_discovery_get_pid (discovery), ==, 0);
  if (c->exit_status >= 0)
    {
      g_assert_cmpuint (events.exits, ==, 1);
      g_assert_cmpint (events.exit_status, ==, c->exit_status);
    }

  /* A client on it fails with the same story (no relaunch behind the
   * policy's back). */
  if (c->then_client)
    {
      g_autoptr(CpClient) client = client_new (discovery);
      Result r = { 0 };

      cp_client_connect_async (client, NULL, connect_cb, &r);
      host_test_wait_flag (&r.done);
      g_assert_error (r.error, CP_ERROR, (gint) c->code);
      g_assert_nonnull (strstr (r.error->message, c->message[0]));
      g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_FAILED);
      g_assert_cmpuint (events.exits, ==, 1);
      result_clear (&r);
    }
}

typedef struct {
  guint messages;
  gboolean closed;
  GError *error;
} StreamEvents;

static void
stream_message_cb (CpResponseStream *stream,
                   CpMessage        *message,
                   StreamEvents     *ev)
{
  ev->messages++;
}

static void
stream_closed_cb (CpResponseStream *stream,
                  const GError     *error,
                  StreamEvents     *ev)
{
  ev->closed = TRUE;
  ev->error = error != NULL ? g_error_copy (error) : NULL;
}

static void
test_killed_mid_stream (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(HosttestCountRequest) request = hosttest_count_request_new ();
  g_autoptr(CpResponseStream) stream = NULL;
  StreamEvents ev = { 0 };
  gint64 killed_at;

  client = client_new (discovery);
  connect_client (client);
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);

  /* A stream that stays open after its first message. */
  hosttest_count_request_set_up_to (request, -1);
  stream = hosttest_echo_service_call_count (HOSTTEST_ECHO_SERVICE (proxy), request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (stream_message_cb), &ev);
  g_signal_connect (stream, "closed", G_CALLBACK (stream_closed_cb), &ev);
  HOST_TEST_WAIT_UNTIL (ev.messages == 1);

  killed_at = g_get_monotonic_time ();
  g_assert_cmpint (kill (cp_process_discovery_get_pid (discovery), SIGKILL), ==, 0);

  /* The stream ends with `unavailable`, the exit is seen, the client fails.
   * The connection drops between two chunks, which libsoup 3.2 reports as
   * a clean end of body: the engine must still tell it from a server that
   * omitted EndStream (`internal`). The message shows the socket closed
   * it, not a deadline or the client's own failure. */
  HOST_TEST_WAIT_UNTIL (ev.closed);
  g_test_message ("stream closed %" G_GINT64_FORMAT " us after SIGKILL",
                  g_get_monotonic_time () - killed_at);
  g_assert_error (ev.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (ev.error->message, "closed the connection"));
  HOST_TEST_WAIT_UNTIL (events.exits == 1);
  g_assert_cmpint (events.term_signal, ==, SIGKILL);
  g_assert_cmpint (events.exit_status, ==, -1);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_EXITED);
  g_assert_cmpuint (events.changes, ==, 1);
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  g_assert_error (cp_client_get_error (client), CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&ev.error);
}

static void
test_stops_answering_health (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(CpClient) client = NULL;
  CpHealthMonitor *monitor;
  GPid pid;

  client = client_new (discovery);
  g_object_set (client, "health-interval-ms", 50, "health-timeout-ms", 200, NULL);
  connect_client (client);
  monitor = cp_client_get_health_monitor (client);
  g_object_ref (monitor);
  pid = cp_process_discovery_get_pid (discovery);

  /* Frozen: the socket still accepts, nothing answers. */
  g_assert_cmpint (kill (pid, SIGSTOP), ==, 0);
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  g_assert_cmpint (cp_health_monitor_get_health_state (monitor), ==, CP_HEALTH_STATE_UNHEALTHY);
  g_assert_nonnull (strstr (cp_client_get_error (client)->message, "unhealthy"));
  g_object_unref (monitor);

  kill (pid, SIGKILL);
  HOST_TEST_WAIT_UNTIL (events.exits == 1);
}

static void
test_stderr_forwarding (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("chatty", &events);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  host_test_plugin_logs_clear ();
  url = start (discovery, &error);
  g_assert_no_error (error);
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("chatty", "stderr", "second line"));
  g_assert_true (host_test_plugin_log_has ("chatty", "stderr", "first line on stderr"));
  /* Standard output after the address is forwarded too. */
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("chatty", "stdout", "a line on stdout"));
  /* The address itself is not a log line. */
  g_assert_false (host_test_plugin_log_has ("chatty", "stdout", url));
  stop (discovery);
}

/* How stop() ends a plugin, by what the plugin does about it. */
typedef struct {
  const char  *path;
  const char  *mode;
  guint        grace_ms;        /* shutdown-grace-ms; 0: the default */
  int          exit_status;     /* -1: not checked */
  int          term_signal;
  const char  *log_has;         /* on the plugin's stderr (NULL: none) */
  const char  *log_lacks;       /* never on it (NULL: none) */
} ShutdownCase;

static const ShutdownCase shutdown_cases[] = {
  /* PluginControl.Shutdown is enough: no signal is sent (a SIGTERM would
   * only come after a minute). */
  { "plugin-control", "serve", 60000, 0, 0, "shutdown requested (60 s", "got SIGTERM" },
  /* No PluginControl: SIGTERM at once, and the plugin exits cleanly. */
  { "sigterm", "serve-no-control", 0, 0, 0, "got SIGTERM", NULL },
  /* A plugin that ignores everything is killed after the grace period. */
  { "sigkill", "ignore-term", 100, -1, SIGKILL, NULL, NULL },
};

static void
test_shutdown (gconstpointer data)
{
  const ShutdownCase *c = data;
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new (c->mode, &events);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  host_test_plugin_logs_clear ();
  if (c->grace_ms > 0)
    g_object_set (discovery, "shutdown-grace-ms", c->grace_ms, NULL);
  url = start (discovery, &error);
  g_assert_no_error (error);
  stop (discovery);
  g_assert_cmpuint (events.exits, ==, 1);
  if (c->exit_status >= 0)
    g_assert_cmpint (events.exit_status, ==, c->exit_status);
  g_assert_cmpint (events.term_signal, ==, c->term_signal);
  if (c->log_has != NULL)
    HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has (c->mode, "stderr", c->log_has));
  if (c->log_lacks != NULL)
    g_assert_false (host_test_plugin_log_has (c->mode, "stderr", c->log_lacks));
}

static void
state_cb (CpProcessDiscovery *discovery,
          GParamSpec         *pspec,
          GArray             *states)
{
  CpProcessState state = cp_process_discovery_get_state (discovery);

  g_array_append_val (states, state);
}

static void
test_restart (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (CpProcessState));
  GPid first;

  g_object_set (discovery, "restart-policy", CP_RESTART_ON_FAILURE,
                "restart-delay-ms", 10, NULL);
  client = client_new (discovery);
  connect_client (client);
  first = cp_process_discovery_get_pid (discovery);
  g_signal_connect (discovery, "notify::state", G_CALLBACK (state_cb), states);

  g_assert_cmpint (kill (first, SIGKILL), ==, 0);
  HOST_TEST_WAIT_UNTIL (events.exits == 1);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) == CP_PROCESS_STATE_RUNNING);
  /* The exit was announced; the client, reconnecting since, waited for the
   * new address rather than needing a second "changed". */
  g_assert_cmpuint (events.changes, ==, 1);
  g_assert_cmpuint (events.exits, ==, 1);
  g_assert_cmpint (cp_process_discovery_get_pid (discovery), !=, first);
  g_assert_cmpuint (cp_process_discovery_get_restart_count (discovery), ==, 1);
  g_assert_cmpuint (states->len, ==, 4);
  g_assert_cmpint (g_array_index (states, CpProcessState, 0), ==, CP_PROCESS_STATE_EXITED);
  g_assert_cmpint (g_array_index (states, CpProcessState, 1), ==, CP_PROCESS_STATE_RESTARTING);
  g_assert_cmpint (g_array_index (states, CpProcessState, 2), ==, CP_PROCESS_STATE_STARTING);
  g_assert_cmpint (g_array_index (states, CpProcessState, 3), ==, CP_PROCESS_STATE_RUNNING);

  /* The client follows the plugin to its new address. */
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_READY &&
                        g_strcmp0 (cp_client_get_url (client),
                                   cp_process_discovery_get_url (discovery)) == 0);
  assert_say (client);
  stop (discovery);
}

static void
test_clean_exit_not_restarted (void)
{
  /* ON_FAILURE: a plugin that exits with status 0 on its own stays down. */
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve-no-control", &events);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  g_object_set (discovery, "restart-policy", CP_RESTART_ON_FAILURE,
                "restart-delay-ms", 10, NULL);
  url = start (discovery, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kill (cp_process_discovery_get_pid (discovery), SIGTERM), ==, 0);
  HOST_TEST_WAIT_UNTIL (events.exits == 1);
  g_assert_cmpint (events.exit_status, ==, 0);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_EXITED);
}

static void
test_close_while_streaming (void)
{
  /* The host closes while the plugin is streaming to it: the plugin is shut
   * down all the same (its drain is cut short by the signals), nothing hangs. */
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(HosttestCountRequest) request = hosttest_count_request_new ();
  g_autoptr(CpResponseStream) stream = NULL;
  StreamEvents ev = { 0 };
  Result r = { 0 };

  g_object_set (discovery, "shutdown-grace-ms", 200, NULL);
  client = client_new (discovery);
  connect_client (client);
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  hosttest_count_request_set_up_to (request, -1);
  stream = hosttest_echo_service_call_count (HOSTTEST_ECHO_SERVICE (proxy), request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (stream_message_cb), &ev);
  g_signal_connect (stream, "closed", G_CALLBACK (stream_closed_cb), &ev);
  HOST_TEST_WAIT_UNTIL (ev.messages == 1);

  cp_client_close_async (client, NULL, close_cb, &r);
  host_test_wait_flag (&r.done);
  g_assert_no_error (r.error);
  g_assert_true (r.ok);
  g_assert_cmpuint (events.exits, ==, 1);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STOPPED);
  /* The stream the plugin could not finish is over too. */
  HOST_TEST_WAIT_UNTIL (ev.closed);
  g_assert_nonnull (ev.error);
  g_clear_error (&ev.error);
}

/* (transfer none) */
static const char *
get_secret (CpProcessDiscovery *discovery)
{
  g_autofree char *secret = NULL;
  const char *interned;

  g_object_get (discovery, "control-secret", &secret, NULL);
  interned = g_intern_string (secret);
  return interned;
}

static gboolean
file_contains (const char *path,
               const char *needle)
{
  g_autofree char *contents = NULL;
  gsize len;
  gsize n = strlen (needle);

  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  for (gsize i = 0; i + n <= len; i++)
    if (memcmp (contents + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

static void
assert_secret_shape (const char *secret)
{
  /* 32 random bytes, base64 with the URL alphabet. */
  g_assert_nonnull (secret);
  g_assert_cmpuint (strlen (secret), ==, 44);
  for (const char *p = secret; *p != '\0'; p++)
    g_assert_true (g_ascii_isalnum (*p) || *p == '-' || *p == '_' || *p == '=');
}

static CpMessage *
call_shutdown (const char  *url,
               const char  *authorization,
               GError     **error)
{
  g_autoptr(CpChannel) channel = cp_channel_new (url, NULL);
  g_autoptr(CpShutdownRequest) request = cp_shutdown_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GAsyncResult) result = NULL;

  if (authorization != NULL)
    soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                  "Authorization", authorization);
  cp_channel_call_async (channel, CP_PROCEDURE_CONTROL_SHUTDOWN, CP_MESSAGE (request),
                         CP_TYPE_SHUTDOWN_RESPONSE, options, NULL, say_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  return cp_channel_call_finish (channel, result, error);
}

static void
test_attach (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) launched = discovery_new ("serve", &events);
  g_autoptr(CpProcessDiscovery) attached = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  Result r = { 0 };

  /* An attached discovery has no AutoMTLS certificates: plain HTTP. */
  g_object_set (launched, "auto-mtls", FALSE, NULL);
  url = start (launched, &error);
  g_assert_no_error (error);

  /* Without the secret the plugin was launched with, it cannot be stopped. */
  attached = cp_process_discovery_new_attach (url);
  cp_process_discovery_stop_async (attached, NULL, stop_cb, &r);
  host_test_wait_flag (&r.done);
  g_assert_error (r.error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_assert_false (r.ok);
  g_assert_cmpint (cp_process_discovery_get_state (attached), ==, CP_PROCESS_STATE_RUNNING);
  g_assert_cmpint (cp_process_discovery_get_state (launched), ==, CP_PROCESS_STATE_RUNNING);
  g_assert_cmpuint (events.exits, ==, 0);
  result_clear (&r);
  g_clear_object (&attached);

  /* Another host re-attaches by address with the secret, and shuts it down
   * when done. */
  attached = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "url", url,
                           "control-secret", get_secret (launched), NULL);
  g_assert_cmpint (cp_process_discovery_get_state (attached), ==, CP_PROCESS_STATE_RUNNING);
  client = client_new (attached);
  connect_client (client);
  assert_say (client);

  cp_client_close_async (client, NULL, close_cb, &r);
  host_test_wait_flag (&r.done);
  g_assert_no_error (r.error);
  g_assert_cmpint (cp_process_discovery_get_state (attached), ==, CP_PROCESS_STATE_STOPPED);
  HOST_TEST_WAIT_UNTIL (events.exits == 1);
  g_assert_cmpint (events.exit_status, ==, 0);
  g_assert_cmpint (events.term_signal, ==, 0);
}

static void
test_stop_during_startup (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("never-announce", &events);
  Result started = { 0 };

  cp_process_discovery_start_async (discovery, NULL, start_cb, &started);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_pid (discovery) > 0);
  stop (discovery);
  /* The start waiter is released, the process got SIGTERM (no address, so
   * no PluginControl to ask). */
  host_test_wait_flag (&started.done);
  g_assert_error (started.error, CP_ERROR, CP_ERROR_CANCELED);
  g_assert_cmpuint (events.exits, ==, 1);
  g_assert_cmpint (events.term_signal, ==, SIGTERM);
  result_clear (&started);
}

/* A start_async () caller's cancellable ends its own wait at once; the
 * launch goes on for the others. */
static void
test_start_wait_cancelled (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("never-announce", &events);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Result mine = { 0 }, other = { 0 };

  cp_process_discovery_start_async (discovery, cancellable, start_cb, &mine);
  cp_process_discovery_start_async (discovery, NULL, start_cb, &other);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_pid (discovery) > 0);
  g_cancellable_cancel (cancellable);
  host_test_wait_flag (&mine.done);
  g_assert_error (mine.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STARTING);
  g_assert_false (other.done);

  stop (discovery);
  host_test_wait_flag (&other.done);
  g_assert_error (other.error, CP_ERROR, CP_ERROR_CANCELED);
  result_clear (&mine);
  result_clear (&other);
}

static void
test_stop_while_restarting (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  Result again = { 0 };

  g_object_set (discovery, "restart-policy", CP_RESTART_ALWAYS,
                "restart-delay-ms", 60000, NULL);
  url = start (discovery, &error);
  g_assert_no_error (error);
  g_assert_cmpint (kill (cp_process_discovery_get_pid (discovery), SIGKILL), ==, 0);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) == CP_PROCESS_STATE_RESTARTING);

  /* Someone waits for the restart; stopping releases them. */
  cp_process_discovery_start_async (discovery, NULL, start_cb, &again);
  stop (discovery);
  host_test_wait_flag (&again.done);
  g_assert_error (again.error, CP_ERROR, CP_ERROR_CANCELED);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STOPPED);
  result_clear (&again);
}

static void
test_control_secret (void)
{
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) refused = NULL;
  g_autofree char *url = NULL;
  g_autofree char *again = NULL;
  g_autofree char *cmdline = NULL;
  g_autofree char *first = NULL;
  g_autofree char *wrong = NULL;

  host_test_plugin_logs_clear ();
  /* Calls with a plain channel (test-automtls.c covers AutoMTLS). */
  g_object_set (discovery, "shutdown-grace-ms", 60000, "auto-mtls", FALSE, NULL);
  url = start (discovery, &error);
  g_assert_no_error (error);
  first = g_strdup (get_secret (discovery));
  assert_secret_shape (first);

  /* In the child's environment, never on its command line (which every
   * user can read); the plugin removes it from its environment. */
  cmdline = g_strdup_printf ("/proc/%d/cmdline", (int) cp_process_discovery_get_pid (discovery));
  g_assert_false (file_contains (cmdline, first));
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("serve", "stderr",
                                                  "control secret in the environment: no"));

  /* Someone else on the machine cannot stop it, even with a near miss. */
  refused = call_shutdown (url, NULL, &error);
  g_assert_null (refused);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);
  wrong = g_strconcat ("Bearer ", first, NULL);
  wrong[strlen (wrong) - 2] ^= 1;
  refused = call_shutdown (url, wrong, &error);
  g_assert_null (refused);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);
  g_assert_false (host_test_plugin_log_has ("serve", "stderr", "shutdown requested"));
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_RUNNING);

  /* The host can: PluginControl.Shutdown with the secret, no signal. */
  stop (discovery);
  g_assert_cmpuint (events.exits, ==, 1);
  g_assert_cmpint (events.exit_status, ==, 0);
  g_assert_cmpint (events.term_signal, ==, 0);
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("serve", "stderr", "shutdown requested"));
  g_assert_false (host_test_plugin_log_has ("serve", "stderr", "got SIGTERM"));

  /* Each launch gets a secret of its own. */
  again = start (discovery, &error);
  g_assert_no_error (error);
  assert_secret_shape (get_secret (discovery));
  g_assert_cmpstr (get_secret (discovery), !=, first);
  stop (discovery);
}

static void
test_control_secret_given (void)
{
  /* A secret set by the user is the one given to the plugin. */
  Events events;
  g_autoptr(CpProcessDiscovery) discovery = discovery_new ("serve", &events);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) ack = NULL;
  g_autofree char *url = NULL;

  g_object_set (discovery, "control-secret", "operator-chosen-secret", "auto-mtls", FALSE, NULL);
  url = start (discovery, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (get_secret (discovery), ==, "operator-chosen-secret");
  ack = call_shutdown (url, "Bearer operator-chosen-secret", &error);
  g_assert_no_error (error);
  HOST_TEST_WAIT_UNTIL (events.exits == 1);
  g_assert_cmpint (events.exit_status, ==, 0);
}

#ifdef KV_PLUGIN_PATH
static void
test_kv_plugin_shutdown (void)
{
  /* examples/kv/kv-plugin launched by a host stops on PluginControl.Shutdown
   * with the secret, not on a signal. */
  const char *argv[] = { KV_PLUGIN_PATH, NULL };
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *cmdline = NULL;
  Events events = { 0 };

  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "name", "kv",
                            "shutdown-grace-ms", 60000, NULL);
  g_signal_connect (discovery, "exited", G_CALLBACK (exited_cb), &events);
  host_test_plugin_logs_clear ();
  url = start (discovery, &error);
  g_assert_no_error (error);
  assert_secret_shape (get_secret (discovery));
  cmdline = g_strdup_printf ("/proc/%d/cmdline", (int) cp_process_discovery_get_pid (discovery));
  g_assert_false (file_contains (cmdline, get_secret (discovery)));

  stop (discovery);
  g_assert_cmpuint (events.exits, ==, 1);
  g_assert_cmpint (events.exit_status, ==, 0);
  g_assert_cmpint (events.term_signal, ==, 0);
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("kv", "stderr", "kv plugin stopped (status 0)"));
  g_assert_true (host_test_plugin_log_has ("kv", "stderr", "shutdown requested"));
}
#endif

static gboolean
process_gone (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  const char *end;

  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return TRUE;
  /* "pid (comm) S ...": a zombie nobody reaped is gone too. */
  end = strrchr (stat, ')');
  return end != NULL && end[1] == ' ' && end[2] == 'Z';
}

static void
test_die_with_host (void)
{
  /* A host killed without closing anything: its plugin follows it. */
  const char *argv[] = { FAKE_PLUGIN_PATH, "host", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) host = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                   G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  GPid plugin;

  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (host));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  plugin = (GPid) g_ascii_strtoll (line, NULL, 10);
  g_assert_cmpint (plugin, >, 0);
  g_assert_false (process_gone (plugin));

  g_subprocess_force_exit (host);
  g_assert_true (g_subprocess_wait (host, NULL, &error));
  HOST_TEST_WAIT_UNTIL (process_gone (plugin));
}

int
main (int    argc,
      char **argv)
{
  host_test_capture_plugin_logs ();
  g_test_init (&argc, &argv, NULL);
  /* Wakes the main loop now and then, so waits re-check their condition. */
  host_test_add_ticker ();

  g_test_add_func ("/host/process/launch-tcp", test_launch_tcp);
  g_test_add_func ("/host/process/launch-unix", test_launch_unix);
  g_test_add_func ("/host/process/launch-port", test_launch_port);
  for (gsize i = 0; i < G_N_ELEMENTS (start_failures); i++)
    {
      g_autofree char *path = g_strconcat ("/host/process/", start_failures[i].path, NULL);
      g_test_add_data_func (path, &start_failures[i], test_start_failure);
    }
  g_test_add_func ("/host/process/killed-mid-stream", test_killed_mid_stream);
  g_test_add_func ("/host/process/stops-answering-health", test_stops_answering_health);
  g_test_add_func ("/host/process/stderr-forwarding", test_stderr_forwarding);
  for (gsize i = 0; i < G_N_ELEMENTS (shutdown_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/host/process/shutdown/", shutdown_cases[i].path, NULL);
      g_test_add_data_func (path, &shutdown_cases[i], test_shutdown);
    }
  g_test_add_func ("/host/process/restart", test_restart);
  g_test_add_func ("/host/process/clean-exit-not-restarted", test_clean_exit_not_restarted);
  g_test_add_func ("/host/process/close-while-streaming", test_close_while_streaming);
  g_test_add_func ("/host/process/attach", test_attach);
  g_test_add_func ("/host/process/control-secret", test_control_secret);
  g_test_add_func ("/host/process/control-secret-given", test_control_secret_given);
#ifdef KV_PLUGIN_PATH
  g_test_add_func ("/host/process/kv-plugin-shutdown", test_kv_plugin_shutdown);
#endif
  g_test_add_func ("/host/process/die-with-host", test_die_with_host);
  g_test_add_func ("/host/process/stop-during-startup", test_stop_during_startup);
  g_test_add_func ("/host/process/stop-while-restarting", test_stop_while_restarting);
  g_test_add_func ("/host/process/start-wait-cancelled", test_start_wait_cancelled);

  return g_test_run ();
}
