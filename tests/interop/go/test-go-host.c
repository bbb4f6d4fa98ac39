/* test-go-host.c: our host (CpClient, CpHealthMonitor, the generated KV
 * proxy) against a Go KV plugin served like connect-plugin-go's Serve
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   test-go-host CP_GO_KV_PLUGIN
 *
 * Each test starts cp-go-kv-plugin on 127.0.0.1:0 (its URL is the first
 * line of its stdout). The Go store announces each Watch with a
 * {UNSPECIFIED, "_watch_started"} event, as connect-plugin-go's does.
 */
#include <connectplugin.h>
#include <signal.h>
#include <string.h>

#include "kv.cp.h"

#define GUARD_MS 10000 /* a broken test fails instead of hanging */

static const char *go_plugin;

typedef struct {
  GSubprocess *process;
  char *url;
} GoPlugin;

static void
go_plugin_start (GoPlugin *p)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) out = NULL;

  p->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                                 go_plugin, "--listen", "127.0.0.1:0", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (p->process));
  p->url = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (p->url);
  g_assert_true (g_str_has_prefix (p->url, "http://127.0.0.1:"));
}

static void
go_plugin_stop (GoPlugin *p)
{
  if (p->process != NULL)
    {
      g_subprocess_force_exit (p->process);
      g_subprocess_wait (p->process, NULL, NULL);
    }
  g_clear_object (&p->process);
  g_clear_pointer (&p->url, g_free);
}

static gboolean
guard_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main context until *flag, at most GUARD_MS. */
static void
wait_for (const gboolean *flag,
          const char     *what)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (GUARD_MS, guard_cb, &timed_out);

  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (timed_out)
    g_error ("still waiting for %s after %d ms", what, GUARD_MS);
  g_source_remove (id);
}

static CpClient *
client_new (const char *url)
{
  const char *plugins[] = { "kv", NULL };
  CpClient *client = cp_client_new (url);

  cp_client_set_plugins (client, plugins);
  g_object_set (client, "self-id", "C-Interop-Host", "self-version", "1.0.0", NULL);
  return client;
}

/* ------------------------------------------------------------------ */

typedef struct {
  gboolean   started;   /* the "_watch_started" event arrived */
  gboolean   closed;
  GError    *error;
  GPtrArray *events;
} Watch;

static void
on_watch_message (CpResponseStream *stream, CpMessage *message, gpointer user_data)
{
  Watch *w = user_data;
  KvWatchEvent *event = KV_WATCH_EVENT (message);

  if (kv_watch_event_get_type_ (event) == KV_EVENT_TYPE_UNSPECIFIED &&
      g_str_equal (kv_watch_event_get_key (event), "_watch_started"))
    w->started = TRUE;
  else
    g_ptr_array_add (w->events, g_object_ref (event));
}

static void
on_watch_closed (CpResponseStream *stream, GError *error, gpointer user_data)
{
  Watch *w = user_data;

  w->closed = TRUE;
  if (error != NULL)
    w->error = g_error_copy (error);
}

static void
put (KvKVService *kv, const char *key, GBytes *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvPutRequest) request = kv_put_request_new ();
  g_autoptr(KvPutResponse) response = NULL;

  kv_put_request_set_key (request, key);
  kv_put_request_set_value (request, value);
  response = kv_kv_service_call_put_sync (kv, request, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (response);
}

static KvGetResponse *
get (KvKVService *kv, const char *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", key, NULL);
  KvGetResponse *response = kv_kv_service_call_get_sync (kv, request, NULL, NULL, &error);

  g_assert_no_error (error);
  return response;
}

static gboolean
delete (KvKVService *kv, const char *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvDeleteRequest) request = g_object_new (KV_TYPE_DELETE_REQUEST, "key", key, NULL);
  g_autoptr(KvDeleteResponse) response = kv_kv_service_call_delete_sync (kv, request, NULL, NULL, &error);

  g_assert_no_error (error);
  return kv_delete_response_get_found (response);
}

static void
assert_event (KvWatchEvent *event, KvEventType type, const char *key, GBytes *value)
{
  g_autoptr(GBytes) got = kv_watch_event_get_value (event);

  g_assert_cmpint (kv_watch_event_get_type_ (event), ==, type);
  g_assert_cmpstr (kv_watch_event_get_key (event), ==, key);
  if (value != NULL)
    g_assert_true (g_bytes_equal (got, value));
  else
    g_assert_cmpuint (g_bytes_get_size (got), ==, 0);
}

static void
on_state_notify (GObject *client, GParamSpec *pspec, gpointer user_data)
{
  if (cp_client_get_state (CP_CLIENT (client)) == CP_CLIENT_STATE_FAILED)
    *(gboolean *) user_data = TRUE;
}

typedef struct {
  gboolean done;
  GError *error;
} Call;

static void
on_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  g_autoptr(KvGetResponse) response = kv_kv_service_call_get_finish (KV_KV_SERVICE (source), result,
                                                                     &call->error);

  g_assert_null (response);
  call->done = TRUE;
}

/* Handshake, dispense, KV calls with binary values, Watch by signals,
 * health; then the Go plugin is killed. */
static void
test_kv (void)
{
  GoPlugin plugin = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(CpClient) client = NULL;
  CpHandshakeResponse *response;
  CpPluginInfo *info;
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(GRegex) runtime_id = g_regex_new ("^c-interop-host-[0-9a-f]{4}$", 0, 0, NULL);
  g_autoptr(CpHealthMonitor) monitor = NULL;
  KvKVService *kv;
  guint8 *mib = g_malloc (1 << 20);
  const guint8 non_utf8[] = { 0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80 };
  GBytes *values[4];
  gboolean failed = FALSE;
  gint64 killed_at;

  go_plugin_start (&plugin);
  client = client_new (plugin.url);
  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);

  /* The Go handshake server: runtime identity for our self id, the plugin
   * list with Go's service path form (no slashes), server_version. */
  response = cp_client_get_handshake_response (client);
  g_assert_true (g_regex_match (runtime_id, cp_handshake_response_get_runtime_id (response), 0, NULL));
  g_assert_cmpuint (strlen (cp_handshake_response_get_runtime_token (response)), ==, 44);
  g_assert_true (g_hash_table_contains (cp_handshake_response_get_server_metadata (response), "server_version"));
  info = cp_client_get_plugin_info (client, "kv");
  g_assert_nonnull (info);
  g_assert_cmpstr (cp_plugin_info_get_version (info), ==, "1.0.0");
  g_assert_cmpstr (cp_plugin_info_get_service_path (info), ==, "kv.v1.KVService");
  g_print ("# ok   handshake with the Go plugin: runtime id %s, plugin kv 1.0.0 at %s\n",
           cp_handshake_response_get_runtime_id (response), cp_plugin_info_get_service_path (info));

  /* The health monitor follows Go's HealthService.Watch. */
  /* Kept: the client drops its monitor when it fails. */
  monitor = g_object_ref (cp_client_get_health_monitor (client));
  g_assert_cmpint (cp_health_monitor_get_health_state (monitor), ==, CP_HEALTH_STATE_HEALTHY);
  g_assert_cmpint (cp_health_monitor_get_serving_status (monitor), ==, CP_SERVING_STATUS_SERVING);
  g_assert_cmpint (cp_health_monitor_get_mode (monitor), ==, CP_HEALTH_MODE_WATCHING);
  g_print ("# ok   CpHealthMonitor: HEALTHY, SERVING, watching\n");

  proxy = cp_client_dispense (client, "kv", KV_TYPE_KV_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  kv = KV_KV_SERVICE (proxy);

  for (guint i = 0; i < (1 << 20); i++)
    mib[i] = (guint8) (i * 7);
  values[0] = g_bytes_new_static ("", 0);
  values[1] = g_bytes_new_static ("\0", 1);
  values[2] = g_bytes_new_take (mib, 1 << 20);
  values[3] = g_bytes_new_static (non_utf8, sizeof non_utf8);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *key = g_strdup_printf ("bin/%u", i);
      g_autoptr(KvGetResponse) got = NULL;
      g_autoptr(GBytes) got_value = NULL;
      g_autoptr(KvGetResponse) gone = NULL;

      put (kv, key, values[i]);
      got = get (kv, key);
      got_value = kv_get_response_get_value (got);
      g_assert_true (kv_get_response_get_found (got));
      g_assert_true (g_bytes_equal (got_value, values[i]));
      g_assert_true (delete (kv, key));
      gone = get (kv, key);
      g_assert_false (kv_get_response_get_found (gone));
      g_print ("# ok   Put/Get/Delete %zu-byte value\n", g_bytes_get_size (values[i]));
    }
  g_assert_false (delete (kv, "missing"));
  {
    g_autoptr(KvPutRequest) empty_key = g_object_new (KV_TYPE_PUT_REQUEST, "key", "", NULL);
    g_autoptr(KvPutResponse) refused = kv_kv_service_call_put_sync (kv, empty_key, NULL, NULL, &error);
    g_assert_null (refused);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr (error->message, ==, "key cannot be empty");
    g_clear_error (&error);
  }
  g_print ("# ok   missing key, empty key → invalid_argument \"key cannot be empty\"\n");

  /* Watch through signals. */
  Watch watch = { .events = g_ptr_array_new_with_free_func (g_object_unref) };
  g_autoptr(KvWatchRequest) watch_request = g_object_new (KV_TYPE_WATCH_REQUEST, "prefix", "w/", NULL);
  g_autoptr(CpResponseStream) stream = kv_kv_service_call_watch (kv, watch_request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_watch_message), &watch);
  g_signal_connect (stream, "closed", G_CALLBACK (on_watch_closed), &watch);
  cp_response_stream_start (stream);
  wait_for (&watch.started, "the _watch_started event");
  put (kv, "w/a", values[3]);
  put (kv, "x/b", values[1]);
  put (kv, "w/c", values[2]);
  g_assert_true (delete (kv, "w/a"));
  while (watch.events->len < 3 && !watch.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (watch.error);
  g_assert_cmpuint (watch.events->len, ==, 3);
  assert_event (watch.events->pdata[0], KV_EVENT_TYPE_PUT, "w/a", values[3]);
  assert_event (watch.events->pdata[1], KV_EVENT_TYPE_PUT, "w/c", values[2]);
  assert_event (watch.events->pdata[2], KV_EVENT_TYPE_DELETE, "w/a", NULL);
  g_print ("# ok   Watch by signals: PUT w/a, PUT w/c (1 MiB), DELETE w/a\n");

  /* Kill the Go plugin: the health stream breaks, the client fails, the
   * open Watch ends with an error and a new call fails; nothing hangs. */
  g_signal_connect (client, "notify::state", G_CALLBACK (on_state_notify), &failed);
  killed_at = g_get_monotonic_time ();
  g_subprocess_send_signal (plugin.process, SIGKILL);
  wait_for (&failed, "the client to fail");
  g_print ("# ok   Go plugin killed: client FAILED after %.0f ms (%s)\n",
           (g_get_monotonic_time () - killed_at) / 1000.0, cp_client_get_error (client)->message);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_FAILED);
  g_assert_error (cp_client_get_error (client), CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpint (cp_health_monitor_get_health_state (monitor), ==, CP_HEALTH_STATE_UNHEALTHY);
  wait_for (&watch.closed, "the Watch stream to close");
  g_assert_nonnull (watch.error);
  g_print ("# ok   open Watch closed: %s\n", watch.error->message);
  {
    g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", "w/c", NULL);
    Call call = { 0 };
    kv_kv_service_call_get (kv, request, NULL, NULL, on_call_done, &call);
    wait_for (&call.done, "a call to the dead plugin to fail");
    g_assert_error (call.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
    g_print ("# ok   call after the kill: unavailable (%s)\n", call.error->message);
    g_error_free (call.error);
  }

  g_signal_handlers_disconnect_by_data (client, &failed);
  g_ptr_array_unref (watch.events);
  g_clear_error (&watch.error);
  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    g_bytes_unref (values[i]);
  go_plugin_stop (&plugin);
}

static void
on_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_subprocess_wait_finish (G_SUBPROCESS (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* SIGTERM: Go's graceful shutdown turns health NOT_SERVING; our client
 * reports the plugin unhealthy; the Go plugin exits 0. */
static void
test_graceful (void)
{
  GoPlugin plugin = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(CpClient) client = NULL;
  gboolean failed = FALSE;
  gboolean exited = FALSE;

  go_plugin_start (&plugin);
  client = client_new (plugin.url);
  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_signal_connect (client, "notify::state", G_CALLBACK (on_state_notify), &failed);
  g_subprocess_send_signal (plugin.process, SIGTERM);
  wait_for (&failed, "the client to fail");
  g_assert_error (cp_client_get_error (client), CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_print ("# ok   Go plugin SIGTERM: client FAILED (%s)\n", cp_client_get_error (client)->message);
  /* The main context runs meanwhile: the client closes its streams. */
  g_subprocess_wait_async (plugin.process, NULL, on_exited, &exited);
  wait_for (&exited, "the Go plugin to exit");
  g_assert_true (g_subprocess_get_if_exited (plugin.process));
  g_assert_cmpint (g_subprocess_get_exit_status (plugin.process), ==, 0);
  g_signal_handlers_disconnect_by_data (client, &failed);
  go_plugin_stop (&plugin);
}

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;

  cp_client_connect_finish (CP_CLIENT (source), result, &call->error);
  call->done = TRUE;
}

static void
on_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;

  cp_client_close_finish (CP_CLIENT (source), result, &call->error);
  call->done = TRUE;
}

/* CpProcessDiscovery launches the Go plugin unchanged in port mode, as
 * connect-plugin-go's ProcessStrategy does: PORT in the environment, the
 * port polled until it accepts; then the client uses it and stops it. */
static void
test_process_port (void)
{
  const char *argv[] = { go_plugin, NULL };
  g_autoptr(CpProcessDiscovery) discovery = cp_process_discovery_new (argv);
  g_autoptr(CpClient) client = NULL;
  g_autoptr(KvKVService) kv = NULL;
  g_autoptr(KvGetResponse) got = NULL;
  g_autoptr(GBytes) value = g_bytes_new_static ("\x00port\xff", 6);
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "kv", NULL };
  Call connected = { 0 }, closed = { 0 };

  g_object_set (discovery, "startup-mode", CP_STARTUP_MODE_PORT,
                "host-url", "http://127.0.0.1:1", NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);
  cp_client_connect_async (client, NULL, on_connected, &connected);
  wait_for (&connected.done, "the Go plugin launched in port mode");
  g_assert_no_error (connected.error);
  g_assert_true (g_str_has_prefix (cp_process_discovery_get_url (discovery), "http://127.0.0.1:"));
  g_print ("# ok   Go plugin launched in port mode serves %s\n",
           cp_process_discovery_get_url (discovery));

  kv = KV_KV_SERVICE (cp_client_dispense (client, "kv", KV_TYPE_KV_SERVICE_PROXY, &error));
  g_assert_no_error (error);
  put (kv, "k", value);
  got = get (kv, "k");
  g_assert_true (kv_get_response_get_found (got));

  cp_client_close_async (client, NULL, on_closed, &closed);
  wait_for (&closed.done, "the Go plugin to stop");
  g_assert_no_error (closed.error);
  g_assert_cmpint (cp_process_discovery_get_state (discovery), ==, CP_PROCESS_STATE_STOPPED);
}

/* The Go handshake server's refusals keep their codes through CpClient. */
static void
test_handshake_errors (void)
{
  GoPlugin plugin = { 0 };
  struct {
    const char *property;
    const char *string;
    int number;
    const char *plugin;
    int code;
  } cases[] = {
    { "magic-cookie-value", "wrong", 0, "kv", CP_ERROR_INVALID_ARGUMENT },
    { "app-protocol-version", NULL, 2, "kv", CP_ERROR_FAILED_PRECONDITION },
    { "self-id", "9-bad", 0, "kv", CP_ERROR_INVALID_ARGUMENT },
    { NULL, NULL, 0, "nope", CP_ERROR_NOT_FOUND },
  };

  go_plugin_start (&plugin);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(CpClient) client = cp_client_new (plugin.url);
      g_autoptr(GError) error = NULL;
      const char *plugins[] = { cases[i].plugin, NULL };

      cp_client_set_plugins (client, plugins);
      if (cases[i].string != NULL)
        g_object_set (client, cases[i].property, cases[i].string, NULL);
      else if (cases[i].property != NULL)
        g_object_set (client, cases[i].property, cases[i].number, NULL);
      g_assert_false (cp_client_connect_sync (client, NULL, &error));
      g_assert_error (error, CP_ERROR, cases[i].code);
      g_print ("# ok   handshake refused by Go: %s\n", error->message);
    }
  go_plugin_stop (&plugin);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    {
      g_printerr ("usage: test-go-host CP_GO_KV_PLUGIN\n");
      return 2;
    }
  go_plugin = argv[1];
  g_test_add_func ("/interop/go/host/kv", test_kv);
  g_test_add_func ("/interop/go/host/graceful", test_graceful);
  g_test_add_func ("/interop/go/host/handshake-errors", test_handshake_errors);
  g_test_add_func ("/interop/go/host/process-port", test_process_port);
  return g_test_run ();
}
