/* test-host-client.c: CpClient, static and in-process discovery
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>

#include "host-test-util.h"

typedef struct {
  GArray *states;     /* CpClientState, one per notify::state */
  gboolean done;
  gboolean ok;
  GError *error;
  CpClientState state_at_callback;
} Connect;

static void
state_notify_cb (CpClient   *client,
                 GParamSpec *pspec,
                 Connect    *c)
{
  CpClientState state = cp_client_get_state (client);

  g_array_append_val (c->states, state);
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Connect *c = user_data;

  c->ok = cp_client_connect_finish (CP_CLIENT (source), result, &c->error);
  c->state_at_callback = cp_client_get_state (CP_CLIENT (source));
  c->done = TRUE;
}

static void
connect_init (Connect  *c,
              CpClient *client)
{
  memset (c, 0, sizeof *c);
  c->states = g_array_new (FALSE, FALSE, sizeof (CpClientState));
  g_signal_connect (client, "notify::state", G_CALLBACK (state_notify_cb), c);
}

static void
connect_clear (Connect  *c,
               CpClient *client)
{
  g_signal_handlers_disconnect_by_data (client, c);
  g_clear_pointer (&c->states, g_array_unref);
  g_clear_error (&c->error);
}

/* Connects and waits; returns the result. */
static gboolean
run_connect (Connect  *c,
             CpClient *client)
{
  c->done = FALSE;
  g_clear_error (&c->error);
  g_array_set_size (c->states, 0);
  cp_client_connect_async (client, NULL, connect_cb, c);
  host_test_wait_flag (&c->done);
  return c->ok;
}

static void
assert_states (Connect *c,
               ...)
{
  va_list ap;
  guint i = 0;
  int expected;

  va_start (ap, c);
  while ((expected = va_arg (ap, int)) >= 0)
    {
      g_assert_cmpuint (i, <, c->states->len);
      g_assert_cmpint (g_array_index (c->states, CpClientState, i), ==, expected);
      i++;
    }
  va_end (ap);
  g_assert_cmpuint (i, ==, c->states->len);
}

static void
close_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_client_close_finish (CP_CLIENT (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static void
close_client (CpClient *client)
{
  gboolean closed = FALSE;

  cp_client_close_async (client, NULL, close_cb, &closed);
  host_test_wait_flag (&closed);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_CLOSED);
}

static CpClient *
client_for_server (CpServer *server)
{
  g_autoptr(CpInProcessDiscovery) discovery =
    cp_in_process_discovery_new (cp_server_get_rpc_server (server));

  return cp_client_new_for_discovery (CP_DISCOVERY (discovery));
}

static void
result_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Dispenses @plugin's EchoService proxy and calls Say (asynchronously: the
 * server runs in this thread). */
static void
assert_say (CpClient   *client,
            const char *plugin)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpProxy) proxy = cp_client_dispense (client, plugin, HOSTTEST_TYPE_ECHO_SERVICE_PROXY,
                                                 &error);
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(HosttestSayResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  g_assert_no_error (error);
  g_assert_true (HOSTTEST_IS_ECHO_SERVICE_PROXY (proxy));
  hosttest_say_request_set_text (request, "hello");
  hosttest_echo_service_call_say (HOSTTEST_ECHO_SERVICE (proxy), request, NULL, NULL,
                                  result_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = hosttest_echo_service_call_say_finish (HOSTTEST_ECHO_SERVICE (proxy), result, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (hosttest_say_response_get_text (response), ==, "hello");
}

/* ---- tests ---- */

static void
test_in_process (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "echo", NULL };
  const char * const *urls;
  CpHealthMonitor *monitor;
  CpPluginInfo *info;
  Connect c;

  /* The discovery starts the server (nothing listens). */
  {
    g_autoptr(CpInProcessDiscovery) discovery = cp_in_process_discovery_new_for_server (server);

    g_assert_true (cp_in_process_discovery_get_plugin_server (discovery) == server);
    g_assert_true (cp_in_process_discovery_get_server (discovery) ==
                   cp_server_get_rpc_server (server));
    client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  }
  cp_client_set_plugins (client, plugins);
  connect_init (&c, client);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_CREATED);

  g_assert_true (run_connect (&c, client));
  g_assert_no_error (c.error);
  assert_states (&c, CP_CLIENT_STATE_CONNECTING, CP_CLIENT_STATE_CONNECTED,
                 CP_CLIENT_STATE_READY, -1);
  g_assert_cmpint (c.state_at_callback, ==, CP_CLIENT_STATE_READY);
  g_assert_cmpstr (cp_client_get_url (client), ==, CP_IN_PROCESS_URL);

  /* No socket at all. */
  urls = cp_rpc_server_get_urls (cp_server_get_rpc_server (server));
  g_assert_true (urls == NULL || urls[0] == NULL);

  info = cp_client_get_plugin_info (client, "echo");
  g_assert_nonnull (info);
  g_assert_cmpstr (cp_plugin_info_get_version (info), ==, "1.2.3");
  g_assert_cmpuint (cp_client_get_plugin_infos (client)->len, ==, 1);
  {
    g_autoptr(GHashTable) metadata = cp_handshake_response_get_server_metadata (
      cp_client_get_handshake_response (client));
    g_assert_nonnull (g_hash_table_lookup (metadata, "server_version"));
  }

  monitor = cp_client_get_health_monitor (client);
  g_assert_nonnull (monitor);
  g_assert_cmpint (cp_health_monitor_get_health_state (monitor), ==, CP_HEALTH_STATE_HEALTHY);
  g_assert_cmpint (cp_health_monitor_get_serving_status (monitor), ==, CP_SERVING_STATUS_SERVING);

  assert_say (client, "echo");

  /* Idempotent: ready stays ready, without a new handshake or state change. */
  g_assert_true (run_connect (&c, client));
  g_assert_cmpuint (c.states->len, ==, 0);

  close_client (client);
  g_assert_null (cp_client_get_channel (client));
  connect_clear (&c, client);
  cp_server_close (server);
}

/* GetPluginInfo on the client's channel, with @options (nullable). */
static CpMessage *
get_plugin_info (CpClient       *client,
                 CpCallOptions  *options,
                 GError        **error)
{
  g_autoptr(CpGetPluginInfoRequest) request = cp_get_plugin_info_request_new ();
  g_autoptr(GAsyncResult) result = NULL;
  CpChannel *channel = cp_client_get_channel (client);

  cp_channel_call_async (channel, CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO, CP_MESSAGE (request),
                         CP_TYPE_GET_PLUGIN_INFO_RESPONSE, options, NULL, result_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  return cp_channel_call_finish (channel, result, error);
}

static void
test_in_process_control_secret (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpInProcessDiscovery) discovery = cp_in_process_discovery_new_for_server (server);
  g_autoptr(CpClient) client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  g_autoptr(CpCallOptions) options = NULL;
  g_autoptr(CpMessage) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *secret = NULL;
  g_autofree char *server_secret = NULL;
  const char *plugins[] = { "echo", NULL };
  Connect c;

  g_object_set (server, "identity-enabled", TRUE, NULL);
  cp_client_set_plugins (client, plugins);
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  g_assert_no_error (c.error);

  /* The discovery gave the server a secret, as a launching host does. */
  g_object_get (discovery, "control-secret", &secret, NULL);
  g_object_get (server, "control-secret", &server_secret, NULL);
  g_assert_cmpuint (strlen (secret), ==, 44);
  g_assert_cmpstr (secret, ==, server_secret);

  info = get_plugin_info (client, NULL, &error);
  g_assert_null (info);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);

  options = cp_client_new_control_call_options (client);
  info = get_plugin_info (client, options, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cp_get_plugin_info_response_get_self_id (CP_GET_PLUGIN_INFO_RESPONSE (info)),
                   ==, "echo");

  close_client (client);
  connect_clear (&c, client);
  cp_server_close (server);
}

static void
test_static_control_secret (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpCallOptions) options = NULL;
  g_autoptr(CpMessage) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  const char *plugins[] = { "echo", NULL };
  Connect c;

  /* A plugin the host did not launch: the operator knows its secret. */
  g_object_set (server, "identity-enabled", TRUE, "control-secret", "from-the-operator", NULL);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  client = cp_client_new (url);
  cp_client_set_plugins (client, plugins);
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  g_assert_no_error (c.error);

  /* Not known yet: no header, refused. */
  options = cp_client_new_control_call_options (client);
  g_assert_null (soup_message_headers_get_one (cp_call_options_get_request_headers (options),
                                               "Authorization"));
  info = get_plugin_info (client, options, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);
  g_clear_object (&options);

  g_object_set (cp_client_get_discovery (client), "control-secret", "from-the-operator", NULL);
  options = cp_client_new_control_call_options (client);
  info = get_plugin_info (client, options, &error);
  g_assert_no_error (error);
  g_assert_nonnull (info);

  close_client (client);
  connect_clear (&c, client);
  cp_server_close (server);
}

static void
test_static_tcp (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  const char *plugins[] = { "echo", "other", NULL };
  Connect c;

  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  client = cp_client_new (url);
  cp_client_set_plugins (client, plugins);
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  g_assert_no_error (c.error);
  g_assert_cmpstr (cp_client_get_url (client), ==, url);
  g_assert_cmpuint (cp_client_get_plugin_infos (client)->len, ==, 2);
  assert_say (client, "echo");

  connect_clear (&c, client);
  close_client (client);
  cp_server_close (server);
}

/* No plugin named: the client asks for all the server offers (a second
 * handshake, from the names in the first one's metadata). */
static void
test_all_plugins (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  GPtrArray *infos;
  Connect c;

  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  client = cp_client_new (url);
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  g_assert_no_error (c.error);
  infos = cp_client_get_plugin_infos (client);
  g_assert_cmpuint (infos->len, ==, 2);
  g_assert_cmpstr (cp_plugin_info_get_name (infos->pdata[0]), ==, "echo");
  g_assert_cmpstr (cp_plugin_info_get_name (infos->pdata[1]), ==, "other");
  assert_say (client, "echo");

  connect_clear (&c, client);
  close_client (client);
  cp_server_close (server);
}

static void
count_items (GListModel *model,
             guint       position,
             guint       removed,
             guint       added,
             guint      *changes)
{
  (*changes)++;
}

static void
client_initialized (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GObject **client = user_data;
  g_autoptr(GError) error = NULL;

  *client = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, &error);
  g_assert_no_error (error);
}

/* GAsyncInitable / GInitable: initializing connects; the plugins of the
 * connection as a GListModel, emptied when the connection goes. */
static void
test_initable (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpStaticDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  const char *plugins[] = { "echo", "other", NULL };
  const char *endpoints[2] = { NULL, NULL };
  GListModel *model;
  guint changes = 0;

  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  endpoints[0] = url;
  discovery = cp_static_discovery_new (endpoints);
  g_async_initable_new_async (CP_TYPE_CLIENT, G_PRIORITY_DEFAULT, NULL, client_initialized,
                              &client, "discovery", discovery, "plugins", plugins, NULL);
  HOST_TEST_WAIT_UNTIL (client != NULL);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);

  model = cp_client_get_plugin_model (client);
  g_assert_true (g_list_model_get_item_type (model) == CP_TYPE_PLUGIN_INFO);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 2);
  {
    g_autoptr(CpPluginInfo) first = g_list_model_get_item (model, 0);

    g_assert_cmpstr (cp_plugin_info_get_name (first), ==, "echo");
  }
  g_signal_connect (model, "items-changed", G_CALLBACK (count_items), &changes);
  close_client (client);
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, 0);
  g_assert_cmpuint (changes, ==, 1);

  /* The blocking form, against a launched plugin (its own process serves
   * while this thread blocks). */
  {
    const char *argv[] = { FAKE_PLUGIN_PATH, "serve", NULL };
    const char *echo[] = { "echo", NULL };
    g_autoptr(CpProcessDiscovery) launched = cp_process_discovery_new (argv);
    g_autoptr(CpClient) blocking = g_initable_new (CP_TYPE_CLIENT, NULL, &error,
                                                   "discovery", launched, "plugins", echo,
                                                   NULL);

    g_assert_no_error (error);
    g_assert_nonnull (blocking);
    g_assert_cmpint (cp_client_get_state (blocking), ==, CP_CLIENT_STATE_READY);
    g_assert_cmpuint (g_list_model_get_n_items (cp_client_get_plugin_model (blocking)), ==, 1);
    g_assert_true (cp_client_close_sync (blocking, NULL, &error));
    g_assert_no_error (error);
  }
  cp_server_close (server);
}

/* A plugin that is a GApplication (cp_server_bind_application ()):
 * launched, connected, called, and stopped with a graceful shutdown that
 * ends the application (its shutdown handler runs, status 0). */
static void
test_gapplication_plugin (void)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, "gapplication", "--metrics", NULL };
  const char *echo[] = { "echo", NULL };
  g_autoptr(CpProcessDiscovery) discovery = cp_process_discovery_new (argv);
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;

  host_test_capture_plugin_logs ();
  client = g_initable_new (CP_TYPE_CLIENT, NULL, &error, "discovery", discovery,
                           "plugins", echo, NULL);
  g_assert_no_error (error);
  assert_say (client, "echo");
  /* AutoMTLS: bind_application serves TLS with the host's certificates. */
  g_assert_true (g_str_has_prefix (cp_client_get_url (client), "https://127.0.0.1:"));
  g_assert_true (cp_client_close_sync (client, NULL, &error));
  g_assert_no_error (error);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) == CP_PROCESS_STATE_STOPPED);
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("fake-plugin", "stderr", "application shutdown"));
  g_assert_true (host_test_plugin_log_has ("fake-plugin", "stderr", "application startup"));
}

static void
collect_span (CpServer  *server,
              CpSpan    *span,
              GPtrArray *names)
{
  g_assert_cmpint (cp_span_get_kind (span), ==, CP_SPAN_KIND_SERVER);
  g_ptr_array_add (names, g_strdup (cp_span_get_name (span)));
}

/* CpServer::span-finished: the engine's spans, for every call (tracing
 * turned on by the handler). */
static void
test_server_spans (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  const char *plugins[] = { "echo", NULL };
  Connect c;

  g_signal_connect (server, "span-finished", G_CALLBACK (collect_span), names);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  client = cp_client_new (url);
  cp_client_set_plugins (client, plugins);
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  connect_clear (&c, client);
  assert_say (client, "echo");
  HOST_TEST_WAIT_UNTIL (g_ptr_array_find_with_equal_func (names, "/hosttest.v1.EchoService/Say",
                                                          g_str_equal, NULL));
  /* The built-in calls too: the handshake. */
  g_assert_true (g_ptr_array_find_with_equal_func (names, "/connectplugin.v1.HandshakeService/Handshake",
                                                   g_str_equal, NULL));
  close_client (client);
  cp_server_close (server);
}

static gboolean
start_connect (gpointer data)
{
  cp_client_connect_async (data, NULL, NULL, NULL);
  return G_SOURCE_REMOVE;
}

static gpointer
run_loop (gpointer data)
{
  GMainContext *context = g_main_loop_get_context (data);

  g_main_context_push_thread_default (context);
  g_main_loop_run (data);
  g_main_context_pop_thread_default (context);
  return NULL;
}

/* cp_client_close_sync (): from the thread that runs the client's context
 * (it iterates it), and from another one while a thread runs it (the close
 * runs there, the caller waits). */
static void
test_close_sync (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  const char *plugins[] = { "echo", NULL };

  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  {
    g_autoptr(CpClient) client = cp_client_new (url);
    Connect c;

    cp_client_set_plugins (client, plugins);
    connect_init (&c, client);
    g_assert_true (run_connect (&c, client));
    connect_clear (&c, client);
    g_assert_true (cp_client_close_sync (client, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_CLOSED);
  }

  {
    g_autoptr(GMainContext) context = g_main_context_new ();
    g_autoptr(GMainLoop) loop = g_main_loop_new (context, FALSE);
    g_autoptr(CpClient) client = NULL;
    GThread *thread;

    /* The client lives in @context, which a thread of its own runs. */
    g_main_context_push_thread_default (context);
    client = cp_client_new (url);
    g_main_context_pop_thread_default (context);
    cp_client_set_plugins (client, plugins);
    thread = g_thread_new ("client-context", run_loop, loop);
    /* Connects in @context; this thread serves the server meanwhile. */
    g_main_context_invoke (context, start_connect, client);
    HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_READY);
    g_assert_true (cp_client_close_sync (client, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_CLOSED);
    g_main_loop_quit (loop);
    g_thread_join (thread);
  }
  g_assert_true (cp_server_shutdown_sync (server, NULL, &error));
  g_assert_no_error (error);
}

static void
changed_count_cb (CpDiscovery *discovery,
                  guint       *count)
{
  (*count)++;
}

static void
test_static_discovery (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpServer) dead = host_test_echo_server_new ();
  g_autoptr(CpStaticDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *dead_url = NULL;
  const char *plugins[] = { "echo", NULL };
  guint changes = 0;
  Connect c;

  /* An address where nobody listens any more. */
  dead_url = cp_server_listen (dead, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  cp_server_close (dead);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  {
    const char *urls[] = { dead_url, url, NULL };
    discovery = cp_static_discovery_new (urls);
  }
  g_signal_connect (discovery, "changed", G_CALLBACK (changed_count_cb), &changes);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  g_object_set (client, "auto-reconnect", FALSE, NULL);
  cp_client_set_plugins (client, plugins);
  connect_init (&c, client);

  /* The first endpoint is unreachable: the client moves on to the next. */
  g_assert_true (run_connect (&c, client));
  g_assert_no_error (c.error);
  g_assert_cmpstr (cp_client_get_url (client), ==, url);

  {
    const char *urls[] = { url, NULL };
    cp_static_discovery_set_urls (discovery, urls);
    g_assert_cmpuint (changes, ==, 1);
    /* Same list again: no change. */
    cp_static_discovery_set_urls (discovery, urls);
    g_assert_cmpuint (changes, ==, 1);
    g_assert_cmpstr (cp_static_discovery_get_urls (discovery)[0], ==, url);
  }

  connect_clear (&c, client);
  close_client (client);
  cp_server_close (server);
}

static void
test_static_discovery_empty (void)
{
  g_autoptr(CpStaticDiscovery) discovery = cp_static_discovery_new (NULL);
  g_autoptr(CpClient) client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  Connect c;

  connect_init (&c, client);
  g_assert_false (run_connect (&c, client));
  g_assert_error (c.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  assert_states (&c, CP_CLIENT_STATE_CONNECTING, CP_CLIENT_STATE_FAILED, -1);
  connect_clear (&c, client);
}

static void
expect_handshake_error (CpServer   *server,
                        CpClient   *client,
                        int         code,
                        const char *substring)
{
  Connect c;

  connect_init (&c, client);
  g_assert_false (run_connect (&c, client));
  g_assert_error (c.error, CP_ERROR, code);
  if (substring != NULL && strstr (c.error->message, substring) == NULL)
    g_error ("“%s” does not mention “%s”", c.error->message, substring);
  assert_states (&c, CP_CLIENT_STATE_CONNECTING, CP_CLIENT_STATE_FAILED, -1);
  g_assert_cmpint (c.state_at_callback, ==, CP_CLIENT_STATE_FAILED);
  g_assert_error (cp_client_get_error (client), CP_ERROR, code);
  g_assert_null (cp_client_get_channel (client));
  connect_clear (&c, client);
}

static void
test_wrong_cookie (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "echo", NULL };
  Connect c;

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  cp_client_set_plugins (client, plugins);
  g_object_set (client, "magic-cookie-value", "not-the-cookie", NULL);
  expect_handshake_error (server, client, CP_ERROR_INVALID_ARGUMENT, NULL);

  /* Fixed, it connects again, through RECONNECTING and a new handshake. */
  g_object_set (client, "magic-cookie-value", CP_MAGIC_COOKIE_VALUE, NULL);
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  assert_states (&c, CP_CLIENT_STATE_RECONNECTING, CP_CLIENT_STATE_CONNECTED,
                 CP_CLIENT_STATE_READY, -1);
  g_assert_null (cp_client_get_error (client));
  connect_clear (&c, client);
  cp_server_close (server);
}

static void
test_wrong_core_version (void)
{
  /* The server insists on another core version: it refuses ours. */
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;

  g_object_set (server, "core-protocol-version", 2, NULL);
  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  expect_handshake_error (server, client, CP_ERROR_INVALID_ARGUMENT, NULL);
  cp_server_close (server);
}

static void
test_wrong_core_version_answered (void)
{
  /* A server answering with another core version: refused locally. */
  FakeServer *fake = fake_server_new ();
  g_autoptr(CpInProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;

  fake->core_version = 2;
  fake_server_start (fake);
  discovery = cp_in_process_discovery_new (fake->rpc);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  expect_handshake_error (NULL, client, CP_ERROR_FAILED_PRECONDITION, "core protocol version 2");
  g_clear_object (&client);
  fake_server_free (fake);
}

static void
test_wrong_app_version (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  g_object_set (client, "app-protocol-version", 7, NULL);
  expect_handshake_error (server, client, CP_ERROR_FAILED_PRECONDITION, NULL);
  cp_server_close (server);
}

static void
test_unknown_plugin (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "echo", "no-such-plugin", NULL };

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  cp_client_set_plugins (client, plugins);
  expect_handshake_error (server, client, CP_ERROR_NOT_FOUND, "“no-such-plugin”");
  cp_server_close (server);
}

static void
test_not_a_server (void)
{
  /* An HTTP server without the handshake (404 for everything). */
  g_autoptr(CpRpcServer) rpc = cp_rpc_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = cp_rpc_server_listen (rpc, "127.0.0.1:0", &error);

  g_assert_no_error (error);
  client = cp_client_new (url);
  expect_handshake_error (NULL, client, CP_ERROR_UNIMPLEMENTED,
                          "does not look like a connectplugin server");
  cp_rpc_server_close (rpc);
}

static gboolean
answer_html (GSocketService    *service,
             GSocketConnection *connection,
             GObject           *source,
             gpointer           user_data)
{
  static const char reply[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n"
    "Connection: close\r\n\r\n<html></html>";
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));

  /* Small enough for the socket buffer: no need to read the request first. */
  g_output_stream_write_all (out, reply, sizeof reply - 1, NULL, NULL, NULL);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  return TRUE;
}

static void
test_not_a_server_html (void)
{
  g_autoptr(GSocketService) service = g_socket_service_new ();
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autofree char *url = NULL;
  Connect c;

  g_assert_true (g_socket_listener_add_address (G_SOCKET_LISTENER (service), any,
                                                G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                                NULL, &bound, &error));
  g_signal_connect (service, "incoming", G_CALLBACK (answer_html), NULL);
  url = g_strdup_printf ("http://127.0.0.1:%u",
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  client = cp_client_new (url);
  connect_init (&c, client);
  g_assert_false (run_connect (&c, client));
  g_assert_nonnull (c.error);
  g_assert_true (c.error->domain == CP_ERROR);
  g_assert_nonnull (strstr (c.error->message, url));
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_FAILED);
  connect_clear (&c, client);
  g_socket_service_stop (service);
}

static void
test_nobody_listening (void)
{
  g_autoptr(CpServer) dead = host_test_echo_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *url = cp_server_listen (dead, "127.0.0.1:0", &error);
  g_autoptr(CpClient) client = NULL;

  g_assert_no_error (error);
  cp_server_close (dead);
  client = cp_client_new (url);
  expect_handshake_error (NULL, client, CP_ERROR_UNAVAILABLE, url);
}

static void
test_unhealthy_fails (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  Connect c;

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  g_array_set_size (c.states, 0);

  cp_server_set_serving_status (server, "", CP_SERVING_STATUS_NOT_SERVING);
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  assert_states (&c, CP_CLIENT_STATE_FAILED, -1);
  g_assert_error (cp_client_get_error (client), CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (cp_client_get_error (client)->message, "unhealthy"));

  /* Serving again: a new connect gets it back. */
  cp_server_set_serving_status (server, "", CP_SERVING_STATUS_SERVING);
  g_assert_true (run_connect (&c, client));
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);
  connect_clear (&c, client);
  cp_server_close (server);
}

static void
test_not_serving_at_start (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  Connect c;

  g_assert_true (cp_server_start (server, &error));
  cp_server_set_serving_status (server, "", CP_SERVING_STATUS_NOT_SERVING);
  client = client_for_server (server);
  g_object_set (client, "health-timeout-ms", 100, NULL);
  connect_init (&c, client);
  g_assert_false (run_connect (&c, client));
  g_assert_error (c.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  assert_states (&c, CP_CLIENT_STATE_CONNECTING, CP_CLIENT_STATE_CONNECTED,
                 CP_CLIENT_STATE_FAILED, -1);
  connect_clear (&c, client);
  cp_server_close (server);
}

static void
test_dispense_errors (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpProxy) proxy = NULL;
  const char *plugins[] = { "echo", NULL };
  Connect c;

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  cp_client_set_plugins (client, plugins);

  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_null (proxy);
  g_clear_error (&error);

  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));

  /* Served, but not requested. */
  proxy = cp_client_dispense (client, "other", HOSTTEST_TYPE_OTHER_SERVICE_PROXY, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_null (proxy);
  g_clear_error (&error);

  /* "echo" does not serve OtherService. */
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_OTHER_SERVICE_PROXY, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_null (proxy);
  g_clear_error (&error);

  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  g_assert_true (cp_proxy_get_channel (proxy) == cp_client_get_channel (client));

  connect_clear (&c, client);
  cp_server_close (server);
}

static void
test_close_while_connecting (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  Connect c;
  gboolean closed = FALSE;

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  connect_init (&c, client);
  cp_client_connect_async (client, NULL, connect_cb, &c);
  cp_client_close_async (client, NULL, close_cb, &closed);
  host_test_wait_flag (&c.done);
  host_test_wait_flag (&closed);
  g_assert_false (c.ok);
  g_assert_error (c.error, CP_ERROR, CP_ERROR_CANCELED);
  assert_states (&c, CP_CLIENT_STATE_CONNECTING, CP_CLIENT_STATE_CLOSED, -1);

  /* Closed is final. */
  g_assert_false (run_connect (&c, client));
  g_assert_error (c.error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  connect_clear (&c, client);
  cp_server_close (server);
}

static void
test_connect_sync (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "echo", NULL };

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  cp_client_set_plugins (client, plugins);
  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);
  assert_say (client, "echo");
  cp_server_close (server);
}

static void
on_count_message (CpResponseStream *stream,
                  CpMessage        *message,
                  guint            *n)
{
  (*n)++;
}

static void
on_count_closed (CpResponseStream *stream,
                 const GError     *error,
                 gboolean         *closed)
{
  *closed = TRUE;
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Issue 12: call-timeout-ms is for unary calls; a quiet, healthy server
 * stream (a Watch) used to be cut with deadline_exceeded when it ran out. */
static void
test_stream_outlives_call_timeout (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(HosttestCountRequest) request = hosttest_count_request_new ();
  g_autoptr(CpResponseStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  const char *plugins[] = { "echo", NULL };
  gboolean closed = FALSE, elapsed = FALSE;
  guint n_messages = 0;
  gint64 channel_timeout;
  Connect c;

  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  client = cp_client_new (url);
  cp_client_set_plugins (client, plugins);
  g_object_set (client, "call-timeout-ms", 100, NULL);
  /* The server runs in this thread's context: connect_sync () would not
   * let it answer. */
  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  connect_clear (&c, client);
  g_object_get (cp_client_get_channel (client), "timeout-ms", &channel_timeout, NULL);
  g_assert_cmpint (channel_timeout, ==, 100);
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);

  /* Count with up_to < 0 sends 1, then stays open and quiet. */
  hosttest_count_request_set_up_to (request, -1);
  stream = hosttest_echo_service_call_count (HOSTTEST_ECHO_SERVICE (proxy), request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_count_message), &n_messages);
  g_signal_connect (stream, "closed", G_CALLBACK (on_count_closed), &closed);
  HOST_TEST_WAIT_UNTIL (n_messages == 1);
  g_timeout_add (500, set_flag, &elapsed);
  HOST_TEST_WAIT_UNTIL (elapsed);
  g_assert_false (closed);
  assert_say (client, "echo");

  cp_response_stream_cancel (stream);
  HOST_TEST_WAIT_UNTIL (closed);
  g_signal_handlers_disconnect_by_data (stream, &n_messages);
  g_signal_handlers_disconnect_by_data (stream, &closed);
  close_client (client);
  cp_server_close (server);
}

static CpProcessDiscovery *
fake_plugin_discovery_new (const char *mode)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, mode, NULL };

  return g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "name", mode,
                       "restart-policy", CP_RESTART_NEVER,
                       "startup-mode", g_str_equal (mode, "port-serve") ? CP_STARTUP_MODE_PORT
                                                                       : CP_STARTUP_MODE_STDOUT_LINE,
                       NULL);
}

static CpClient *
fake_plugin_client_new (CpProcessDiscovery *discovery)
{
  CpClient *client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  const char *plugins[] = { "echo", NULL };

  cp_client_set_plugins (client, plugins);
  g_object_set (client, "auto-reconnect", FALSE, NULL);
  return client;
}

/* connect_sync () runs a context of its own: the caller's sources wait.
 * What it set up (the launched plugin's exit watch, the health Watch) then
 * runs in the client's context. */
static void
test_connect_sync_private_context (gconstpointer data)
{
  const char *mode = data;
  g_autoptr(CpProcessDiscovery) discovery = fake_plugin_discovery_new (mode);
  g_autoptr(CpClient) client = fake_plugin_client_new (discovery);
  g_autoptr(GError) error = NULL;
  gboolean idle_ran = FALSE;
  GPid pid;

  g_idle_add (set_flag, &idle_ran);
  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (idle_ran);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_RUNNING);
  g_assert_cmpint (cp_health_monitor_get_mode (cp_client_get_health_monitor (client)), ==,
                   CP_HEALTH_MODE_WATCHING);
  HOST_TEST_WAIT_UNTIL (idle_ran);

  /* The exit is noticed in this context: by the discovery (the moved exit
   * wait) and by the client (its health Watch breaks). */
  pid = cp_process_discovery_get_pid (discovery);
  g_assert_cmpint (pid, >, 0);
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) == CP_PROCESS_STATE_EXITED);
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  g_assert_error (cp_client_get_error (client), CP_ERROR, CP_ERROR_UNAVAILABLE);
  close_client (client);
}

typedef struct {
  GCancellable *cancellable;
  guint delay_ms;
} CancelLater;

static gpointer
cancel_later_thread (gpointer data)
{
  CancelLater *later = data;

  g_usleep (later->delay_ms * 1000);
  g_cancellable_cancel (later->cancellable);
  return NULL;
}

/* Cancelling connect_sync () from another thread ends its attempt; the
 * plugin it launched goes on in the client's context, where its start-up
 * timeout ends it. While an asynchronous attempt runs, connect_sync ()
 * refuses. */
static void
test_connect_sync_cancel (void)
{
  g_autoptr(CpProcessDiscovery) discovery = fake_plugin_discovery_new ("never-announce");
  g_autoptr(CpClient) client = fake_plugin_client_new (discovery);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  CancelLater later = { cancellable, 300 };
  GThread *thread;
  gint64 started = g_get_monotonic_time ();
  Connect c;

  g_object_set (discovery, "start-timeout-ms", 1500, NULL);
  thread = g_thread_new ("cancel-later", cancel_later_thread, &later);
  g_assert_false (cp_client_connect_sync (client, cancellable, &error));
  g_thread_join (thread);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - started, <, 1500 * 1000);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_FAILED);
  /* The plugin launched for the attempt is stopped, not left running until
   * its start-up timeout. */
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STOPPING);
  /* STOPPED, not EXITED: stopped by the client, not by its start-up timeout. */
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) == CP_PROCESS_STATE_STOPPED);
  g_clear_error (&error);

  /* An asynchronous attempt is under way: no second one. */
  connect_init (&c, client);
  cp_client_connect_async (client, NULL, connect_cb, &c);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_RECONNECTING);
  g_assert_false (cp_client_connect_sync (client, NULL, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  close_client (client);
  host_test_wait_flag (&c.done);
  connect_clear (&c, client);
}

/* The only caller of connect_async () cancels: the attempt ends (FAILED,
 * G_IO_ERROR_CANCELLED), the plugin launched for it is stopped, and
 * connecting again launches it anew. */
static void
test_connect_async_cancel_last (void)
{
  g_autoptr(CpProcessDiscovery) discovery = fake_plugin_discovery_new ("serve");
  g_autoptr(CpClient) client = fake_plugin_client_new (discovery);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  Connect c, again;

  connect_init (&c, client);
  cp_client_connect_async (client, cancellable, connect_cb, &c);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_pid (discovery) > 0);
  g_cancellable_cancel (cancellable);
  host_test_wait_flag (&c.done);
  g_assert_false (c.ok);
  g_assert_error (c.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_FAILED);
  g_assert_error (cp_client_get_error (client), G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (cp_client_get_channel (client));
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) == CP_PROCESS_STATE_STOPPED);
  g_assert_cmpint (cp_process_discovery_get_pid (discovery), ==, 0);
  connect_clear (&c, client);

  connect_init (&again, client);
  cp_client_connect_async (client, NULL, connect_cb, &again);
  host_test_wait_flag (&again.done);
  g_assert_no_error (again.error);
  g_assert_true (again.ok);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_RUNNING);
  connect_clear (&again, client);
  close_client (client);
}

/* connect_async ()'s cancellable ends that caller's wait at once; the
 * attempt goes on for the others. */
static void
test_connect_async_cancel_wait (void)
{
  g_autoptr(CpProcessDiscovery) discovery = fake_plugin_discovery_new ("never-announce");
  g_autoptr(CpClient) client = fake_plugin_client_new (discovery);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Connect mine, other;

  connect_init (&mine, client);
  connect_init (&other, client);
  cp_client_connect_async (client, cancellable, connect_cb, &mine);
  cp_client_connect_async (client, NULL, connect_cb, &other);
  g_cancellable_cancel (cancellable);
  host_test_wait_flag (&mine.done);
  g_assert_false (mine.ok);
  g_assert_error (mine.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (mine.state_at_callback, ==, CP_CLIENT_STATE_CONNECTING);
  g_assert_false (other.done);
  close_client (client);
  host_test_wait_flag (&other.done);
  g_assert_error (other.error, CP_ERROR, CP_ERROR_CANCELED);
  connect_clear (&mine, client);
  connect_clear (&other, client);
}

static void
test_self_id (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(GError) error = NULL;
  CpHandshakeResponse *response;

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  g_object_set (client, "self-id", "Test-Host", "self-version", "1.0", NULL);
  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  response = cp_client_get_handshake_response (client);
  g_assert_true (g_str_has_prefix (cp_handshake_response_get_runtime_id (response), "test-host-"));
  g_assert_cmpuint (strlen (cp_handshake_response_get_runtime_token (response)), ==, 44);

  /* An invalid self id is the server's invalid_argument. */
  g_clear_object (&client);
  client = client_for_server (server);
  g_object_set (client, "self-id", "9 is not a letter", NULL);
  expect_handshake_error (server, client, CP_ERROR_INVALID_ARGUMENT, NULL);
  cp_server_close (server);
}

static void
breaker_state_cb (CpCircuitBreaker *breaker,
                  CpCircuitState    old_state,
                  CpCircuitState    new_state,
                  GArray           *states)
{
  g_array_append_val (states, new_state);
}

/* Say through @proxy; returns its error. */
static GError *
say_error (CpProxy *proxy)
{
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(HosttestSayResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  GError *error = NULL;

  hosttest_say_request_set_text (request, "hello");
  hosttest_echo_service_call_say (HOSTTEST_ECHO_SERVICE (proxy), request, NULL, NULL,
                                  result_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = hosttest_echo_service_call_say_finish (HOSTTEST_ECHO_SERVICE (proxy), result, &error);
  g_assert_true ((response == NULL) == (error != NULL));
  return error;
}

/* The client's circuit breaker follows the plugin's health: NOT_SERVING
 * opens it at once (no call failed, and its open timeout is 10 s), SERVING
 * after a reconnect makes it half-open; probes close it. The handshake and
 * the health calls pass the open circuit. @data: how to reconnect,
 * "async" (the monitor's Watch) or "sync" (blocking Check calls). */
static void
test_circuit_breaker_health (gconstpointer data)
{
  gboolean sync = g_str_equal (data, "sync");
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(CpChannel) first_channel = NULL;
  g_autoptr(CpProxy) old_proxy = NULL;
  g_autoptr(GArray) states = g_array_new (FALSE, FALSE, sizeof (CpCircuitState));
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "echo", NULL };
  Connect c;

  g_assert_true (cp_server_start (server, &error));
  client = client_for_server (server);
  cp_client_set_plugins (client, plugins);
  g_object_set (client, "circuit-breaker", breaker, NULL);
  g_assert_true (cp_client_get_circuit_breaker (client) == breaker);
  g_signal_connect (breaker, "state-changed", G_CALLBACK (breaker_state_cb), states);

  connect_init (&c, client);
  g_assert_true (run_connect (&c, client));
  first_channel = g_object_ref (cp_client_get_channel (client));
  g_assert_true (cp_channel_get_circuit_breaker (first_channel) == breaker);
  assert_say (client, "echo");
  old_proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_CLOSED);
  g_assert_cmpuint (states->len, ==, 0);

  /* The plugin stops serving: open at once. */
  cp_server_set_serving_status (server, "", CP_SERVING_STATUS_NOT_SERVING);
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_OPEN);
  g_assert_cmpuint (states->len, ==, 1);
  /* A proxy dispensed before fails without calling. */
  error = say_error (old_proxy);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (error->message, ==, "circuit breaker is open");
  g_clear_error (&error);

  /* Serving again: the reconnect's handshake and health calls pass the
   * open circuit, and the SERVING report makes it half-open. */
  cp_server_set_serving_status (server, "", CP_SERVING_STATUS_SERVING);
  if (sync)
    {
      g_assert_true (cp_client_connect_sync (client, NULL, &error));
      g_assert_no_error (error);
    }
  else
    g_assert_true (run_connect (&c, client));
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);
  g_assert_true (cp_client_get_channel (client) != first_channel);
  g_assert_true (cp_channel_get_circuit_breaker (cp_client_get_channel (client)) == breaker);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_HALF_OPEN);
  g_assert_cmpuint (states->len, ==, 2);

  /* Two successful probes (the old proxy's too) close it. */
  assert_say (client, "echo");
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_HALF_OPEN);
  error = say_error (old_proxy);
  g_assert_no_error (error);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_CLOSED);
  g_assert_cmpuint (states->len, ==, 3);
  g_assert_cmpint (g_array_index (states, CpCircuitState, 0), ==, CP_CIRCUIT_STATE_OPEN);
  g_assert_cmpint (g_array_index (states, CpCircuitState, 1), ==, CP_CIRCUIT_STATE_HALF_OPEN);
  g_assert_cmpint (g_array_index (states, CpCircuitState, 2), ==, CP_CIRCUIT_STATE_CLOSED);

  /* Taken off the client, it is off the channel too. */
  cp_client_set_circuit_breaker (client, NULL);
  g_assert_null (cp_channel_get_circuit_breaker (cp_client_get_channel (client)));

  g_signal_handlers_disconnect_by_data (breaker, states);
  connect_clear (&c, client);
  cp_server_close (server);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Wakes the main loop now and then, so waits re-check their condition. */
  host_test_add_ticker ();

  g_test_add_func ("/host/client/in-process", test_in_process);
  g_test_add_func ("/host/client/control-secret/in-process", test_in_process_control_secret);
  g_test_add_func ("/host/client/control-secret/static", test_static_control_secret);
  g_test_add_func ("/host/client/static-tcp", test_static_tcp);
  g_test_add_func ("/host/client/all-plugins", test_all_plugins);
  g_test_add_func ("/host/client/close-sync", test_close_sync);
  g_test_add_func ("/host/client/initable", test_initable);
  g_test_add_func ("/host/client/gapplication-plugin", test_gapplication_plugin);
  g_test_add_func ("/host/client/server-spans", test_server_spans);
  g_test_add_func ("/host/client/static-discovery", test_static_discovery);
  g_test_add_func ("/host/client/static-discovery-empty", test_static_discovery_empty);
  g_test_add_func ("/host/client/connect-sync", test_connect_sync);
  g_test_add_data_func ("/host/client/connect-sync/private-context/stdout-line", "serve",
                        test_connect_sync_private_context);
  g_test_add_data_func ("/host/client/connect-sync/private-context/port", "port-serve",
                        test_connect_sync_private_context);
  g_test_add_func ("/host/client/connect-sync/cancel", test_connect_sync_cancel);
  g_test_add_func ("/host/client/connect-async/cancel-wait", test_connect_async_cancel_wait);
  g_test_add_func ("/host/client/connect-async/cancel-last", test_connect_async_cancel_last);
  g_test_add_func ("/host/client/self-id", test_self_id);
  g_test_add_func ("/host/client/stream-outlives-call-timeout", test_stream_outlives_call_timeout);
  g_test_add_func ("/host/client/handshake/wrong-cookie", test_wrong_cookie);
  g_test_add_func ("/host/client/handshake/wrong-core-version", test_wrong_core_version);
  g_test_add_func ("/host/client/handshake/wrong-core-version-answered",
                   test_wrong_core_version_answered);
  g_test_add_func ("/host/client/handshake/wrong-app-version", test_wrong_app_version);
  g_test_add_func ("/host/client/handshake/unknown-plugin", test_unknown_plugin);
  g_test_add_func ("/host/client/handshake/not-a-server", test_not_a_server);
  g_test_add_func ("/host/client/handshake/not-a-server-html", test_not_a_server_html);
  g_test_add_func ("/host/client/handshake/nobody-listening", test_nobody_listening);
  g_test_add_func ("/host/client/health/unhealthy-fails", test_unhealthy_fails);
  g_test_add_func ("/host/client/health/not-serving-at-start", test_not_serving_at_start);
  g_test_add_data_func ("/host/client/health/circuit-breaker/async", "async",
                        test_circuit_breaker_health);
  g_test_add_data_func ("/host/client/health/circuit-breaker/sync", "sync",
                        test_circuit_breaker_health);
  g_test_add_func ("/host/client/dispense-errors", test_dispense_errors);
  g_test_add_func ("/host/client/close-while-connecting", test_close_while_connecting);

  return g_test_run ();
}
