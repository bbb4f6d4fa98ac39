/* test-host-metrics.c: CpClient:metrics-enabled and a host serving its clients' series at /metrics
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two plugin servers (in process) and two clients with metrics; the host's
 * own CpServer serves both clients' series at /metrics over TCP, which is
 * fetched with libsoup and parsed back with the strict reader of
 * metrics-test.h (one HELP/TYPE per family, no duplicate sample).
 */
#include <string.h>

#include "host-test-util.h"
#include "../metrics-test.h"

#define ECHO_SERVICE "hosttest.v1.EchoService"

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_client_connect_finish (CP_CLIENT (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static CpClient *
connect_client (CpServer   *server,
                const char *label)
{
  g_autoptr(CpInProcessDiscovery) discovery = cp_in_process_discovery_new_for_server (server);
  CpClient *client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  const char *plugins[] = { "echo", NULL };
  gboolean done = FALSE;

  cp_client_set_plugins (client, plugins);
  if (label != NULL)
    g_object_set (client, "metrics-label", label, NULL);
  cp_client_connect_async (client, NULL, connect_cb, &done);
  host_test_wait_flag (&done);
  g_assert_cmpint (cp_client_get_state (client), ==, CP_CLIENT_STATE_READY);
  return client;
}

static void
result_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
say (CpClient *client)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpProxy) proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY,
                                                 &error);
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(HosttestSayResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  g_assert_no_error (error);
  hosttest_say_request_set_text (request, "hello");
  hosttest_echo_service_call_say (HOSTTEST_ECHO_SERVICE (proxy), request, NULL, NULL,
                                  result_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = hosttest_echo_service_call_say_finish (HOSTTEST_ECHO_SERVICE (proxy), result, &error);
  g_assert_no_error (error);
}

static void
fetched_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  GBytes *body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);

  g_assert_no_error (error);
  *(GBytes **) user_data = body;
}

/* GET @url/metrics, answered by a server of this thread. */
static char *
fetch_metrics (const char *url)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *uri = g_strconcat (url, "/metrics", NULL);
  g_autoptr(SoupMessage) message = soup_message_new ("GET", uri);
  g_autoptr(GBytes) body = NULL;

  soup_session_send_and_read_async (session, message, G_PRIORITY_DEFAULT, NULL, fetched_cb, &body);
  HOST_TEST_WAIT_UNTIL (body != NULL);
  g_assert_cmpuint (soup_message_get_status (message), ==, SOUP_STATUS_OK);
  g_assert_true (g_str_has_prefix (soup_message_headers_get_content_type (
                                     soup_message_get_response_headers (message), NULL),
                                   "text/plain"));
  return g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

static gdouble
calls (MetricsExposition *expo,
       const char        *plugin,
       const char        *code)
{
  return metrics_test_value (expo, "connectplugin_client_calls_total", "plugin", plugin,
                             "service", ECHO_SERVICE, "method", "Say", "code", code, NULL);
}

static void
test_client_series (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(MetricsExposition) expo = NULL;
  g_autofree char *text = NULL;
  gboolean enabled = FALSE;

  client = connect_client (server, NULL);
  /* Off by default: nothing counted. */
  say (client);
  text = cp_client_render_metrics (client);
  expo = metrics_test_parse (text);
  g_assert_cmpuint (expo->n_samples, ==, 0);

  cp_client_set_circuit_breaker (client, breaker);
  g_object_set (client, "metrics-enabled", TRUE, NULL);
  g_object_get (client, "metrics-enabled", &enabled, NULL);
  g_assert_true (enabled);
  /* Turned on for the channel of the current connection. */
  g_object_get (cp_client_get_channel (client), "metrics-enabled", &enabled, NULL);
  g_assert_true (enabled);
  say (client);
  say (client);

  g_clear_pointer (&text, g_free);
  g_clear_pointer (&expo, metrics_exposition_free);
  text = cp_client_render_metrics (client);
  expo = metrics_test_parse (text);
  /* The label defaults to the first plugin asked for. */
  g_assert_cmpfloat (calls (expo, "echo", "ok"), ==, 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_calls_started_total",
                                         "plugin", "echo", "service", ECHO_SERVICE,
                                         "method", "Say", NULL), ==, 2);
  /* The client's own calls (handshake, health) are not counted. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_calls_started_total",
                                         "plugin", "echo", "service", "grpc.health.v1.Health",
                                         "method", "Watch", NULL), ==, -1);
  /* The health the monitor reported when metrics were turned on. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "echo", "state", "healthy", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "echo", "state", "unhealthy", NULL), ==, 0);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "echo", "state", "closed", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_opened_total",
                                         "plugin", "echo", NULL), ==, 0);

  cp_circuit_breaker_force_open (breaker);
  g_clear_pointer (&text, g_free);
  g_clear_pointer (&expo, metrics_exposition_free);
  text = cp_client_render_metrics (client);
  expo = metrics_test_parse (text);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "echo", "state", "open", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "echo", "state", "closed", NULL), ==, 0);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_opened_total",
                                         "plugin", "echo", NULL), ==, 1);
}

static MetricsExposition *
scrape (CpClient *client)
{
  g_autofree char *text = cp_client_render_metrics (client);

  return metrics_test_parse (text);
}

/* The series survive a reconnect (a new channel); health and circuit
 * follow the plugin going unhealthy and back. */
static void
test_reconnect (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(CpChannel) first_channel = NULL;
  g_autoptr(MetricsExposition) expo = NULL;
  gboolean enabled = FALSE, done = FALSE;

  client = connect_client (server, NULL);
  g_object_set (client, "metrics-enabled", TRUE, "circuit-breaker", breaker, NULL);
  first_channel = g_object_ref (cp_client_get_channel (client));
  say (client);

  cp_server_set_serving_status (server, "", CP_SERVING_STATUS_NOT_SERVING);
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  expo = scrape (client);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "echo", "state", "unhealthy", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "echo", "state", "open", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_opened_total",
                                         "plugin", "echo", NULL), ==, 1);

  cp_server_set_serving_status (server, "", CP_SERVING_STATUS_SERVING);
  cp_client_connect_async (client, NULL, connect_cb, &done);
  host_test_wait_flag (&done);
  g_assert_true (cp_client_get_channel (client) != first_channel);
  g_object_get (cp_client_get_channel (client), "metrics-enabled", &enabled, NULL);
  g_assert_true (enabled);
  say (client);

  g_clear_pointer (&expo, metrics_exposition_free);
  expo = scrape (client);
  g_assert_cmpfloat (calls (expo, "echo", "ok"), ==, 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "echo", "state", "healthy", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "echo", "state", "open", NULL), ==, 0);
}

/* A host serving two clients' series at its server's /metrics. */
static void
test_host_exposition (void)
{
  g_autoptr(CpServer) plugin_a = host_test_echo_server_new ();
  g_autoptr(CpServer) plugin_b = host_test_echo_server_new ();
  g_autoptr(CpServer) host = cp_server_new ();
  g_autoptr(CpClient) a = NULL;
  g_autoptr(CpClient) b = NULL;
  g_autoptr(MetricsExposition) expo = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *text = NULL;
  gboolean enabled = FALSE;

  a = connect_client (plugin_a, "echo-a");
  b = connect_client (plugin_b, "echo-b");
  cp_client_add_metrics_to_server (a, host);
  cp_client_add_metrics_to_server (b, host);
  /* Twice is once. */
  cp_client_add_metrics_to_server (b, host);
  g_object_get (b, "metrics-enabled", &enabled, NULL);
  g_assert_true (enabled);
  g_assert_true (cp_server_start (host, &error));
  g_assert_no_error (error);
  url = cp_server_listen (host, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  say (a);
  say (b);
  say (b);

  text = fetch_metrics (url);
  expo = metrics_test_parse (text);
  g_assert_cmpfloat (calls (expo, "echo-a", "ok"), ==, 1);
  g_assert_cmpfloat (calls (expo, "echo-b", "ok"), ==, 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "echo-a", "state", "healthy", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "echo-b", "state", "healthy", NULL), ==, 1);
  /* No breaker, no circuit series. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "echo-a", "state", "closed", NULL), ==, -1);
  /* The host server's own families are there too, declared once. */
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_calls_total"), ==,
                   "counter");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_plugin_health"), ==,
                   "gauge");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_client_calls_total"), ==,
                   "counter");

  cp_server_close (host);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/host-metrics/client-series", test_client_series);
  g_test_add_func ("/host-metrics/reconnect", test_reconnect);
  g_test_add_func ("/host-metrics/host-exposition", test_host_exposition);
  return g_test_run ();
}
