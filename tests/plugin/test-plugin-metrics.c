/* test-plugin-metrics.c: CpServer:metrics-enabled over real sockets
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * /metrics of a CpServer: off by default (404), read when the server
 * starts, counting the plugin's calls and the built-in services' (the
 * handshake, health Check), with the plugin's health and readiness gauges;
 * the exposition read back with tests/metrics-test.h.
 */
#include <connectplugin.h>
#include <string.h>

#include "cp-plugin-constants.h"
#include "metrics-test.h"
#include "plugintest.cp.h"

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

/* GET @path with libsoup; returns the body, sets *@status and *@content_type. */
static char *
http_get (const char  *url,
          const char  *path,
          guint       *status,
          char       **content_type)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *uri = g_strconcat (url, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  gsize len;
  const char *bytes;

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, store_result, &result);
  data = soup_session_send_and_read_finish (session, wait_for_result (&result), &error);
  g_object_unref (result);
  g_assert_no_error (error);
  *status = soup_message_get_status (msg);
  if (content_type != NULL)
    *content_type = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                            "Content-Type"));
  bytes = g_bytes_get_data (data, &len);
  return g_strndup (bytes, len);
}

static CpMessage *
call (CpChannel   *channel,
      const char  *procedure,
      gpointer     request,
      GType        response_type,
      GError     **error)
{
  GAsyncResult *result = NULL;
  CpMessage *response;

  cp_channel_call_async (channel, procedure, CP_MESSAGE (request), response_type, NULL,
                         NULL, store_result, &result);
  response = cp_channel_call_finish (channel, wait_for_result (&result), error);
  g_object_unref (result);
  return response;
}

static MetricsExposition *
scrape (const char *url)
{
  g_autofree char *content_type = NULL;
  g_autofree char *text = NULL;
  guint status = 0;

  text = http_get (url, "/metrics", &status, &content_type);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (content_type, ==, "text/plain; version=0.0.4; charset=utf-8");
  g_test_message ("%s", text);
  return metrics_test_parse (text);
}

static gboolean
on_handle_slow (PlugintestSlowService *object,
                CpInvocation          *invocation,
                PlugintestSlowRequest *request,
                gpointer               user_data)
{
  g_autoptr(PlugintestSlowResponse) response = NULL;

  if (strcmp (plugintest_slow_request_get_text (request), "fail") == 0)
    {
      cp_invocation_return_error (invocation, CP_ERROR_FAILED_PRECONDITION, "asked to fail");
      return TRUE;
    }
  response = plugintest_slow_response_new ();
  plugintest_slow_response_set_text (response, plugintest_slow_request_get_text (request));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

typedef struct {
  CpServer *server;
  CpPlugin *plugin;
  PlugintestSlowService *skeleton;
  CpChannel *channel;
  char *url;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->server = cp_server_new ();
  f->plugin = cp_plugin_new ("test", "1.2.3");
  f->skeleton = PLUGINTEST_SLOW_SERVICE (plugintest_slow_service_skeleton_new ());
  g_signal_connect (f->skeleton, "handle-slow", G_CALLBACK (on_handle_slow), f);
  cp_plugin_add_service (f->plugin, CP_SKELETON (f->skeleton));
  cp_server_add_plugin (f->server, f->plugin);
}

static void
fixture_listen (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  f->url = cp_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->channel = cp_channel_new (f->url, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  cp_server_close (f->server);
  g_clear_object (&f->channel);
  g_clear_object (&f->plugin);
  g_clear_object (&f->skeleton);
  g_assert_finalize_object (f->server);
  g_free (f->url);
}

static void
slow (Fixture *f, const char *text, CpError expected)
{
  g_autoptr(PlugintestSlowRequest) request = plugintest_slow_request_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  plugintest_slow_request_set_text (request, text);
  response = call (f->channel, "/plugintest.v1.SlowService/Slow", request,
                   PLUGINTEST_TYPE_SLOW_RESPONSE, &error);
  if (expected == 0)
    {
      g_assert_no_error (error);
      g_assert_nonnull (response);
    }
  else
    g_assert_error (error, CP_ERROR, (gint) expected);
}

/* Default: off, /metrics is 404 next to a working /healthz. */
static void
test_metrics_default_off (Fixture *f, gconstpointer data)
{
  g_autofree char *body = NULL;
  gboolean enabled = TRUE;
  guint status = 0;

  g_object_get (f->server, "metrics-enabled", &enabled, NULL);
  g_assert_false (enabled);
  fixture_listen (f);
  slow (f, "hi", 0);

  body = http_get (f->url, "/metrics", &status, NULL);
  g_assert_cmpuint (status, ==, 404);
  g_clear_pointer (&body, g_free);
  body = http_get (f->url, CP_HEALTHZ_PATH, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
}

/* Read when the server starts: set afterwards, it changes nothing. */
static void
test_metrics_read_at_start (Fixture *f, gconstpointer data)
{
  g_autofree char *body = NULL;
  gboolean enabled = FALSE;
  guint status = 0;

  fixture_listen (f);
  g_object_set (f->server, "metrics-enabled", TRUE, NULL);
  g_object_get (f->server, "metrics-enabled", &enabled, NULL);
  g_assert_true (enabled);
  body = http_get (f->url, "/metrics", &status, NULL);
  g_assert_cmpuint (status, ==, 404);
}

static void
test_metrics_counts (Fixture *f, gconstpointer data)
{
  g_autoptr(MetricsExposition) expo = NULL;
  g_autoptr(CpHealthCheckRequest) check = cp_health_check_request_new ();
  g_autoptr(CpMessage) check_response = NULL;
  g_autoptr(GError) error = NULL;
  gboolean enabled = FALSE;

  g_object_set (f->server, "metrics-enabled", TRUE, NULL);
  fixture_listen (f);
  g_object_get (cp_server_get_rpc_server (f->server), "metrics-enabled", &enabled, NULL);
  g_assert_true (enabled);

  slow (f, "one", 0);
  slow (f, "two", 0);
  slow (f, "fail", CP_ERROR_FAILED_PRECONDITION);
  check_response = call (f->channel, CP_PROCEDURE_HEALTH_CHECK, check,
                         CP_TYPE_HEALTH_CHECK_RESPONSE, &error);
  g_assert_no_error (error);

  expo = scrape (f->url);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_calls_total",
                                         "service", "plugintest.v1.SlowService", "method", "Slow",
                                         "code", "ok", NULL), ==, 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_calls_total",
                                         "service", "plugintest.v1.SlowService", "method", "Slow",
                                         "code", "failed_precondition", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_calls_started_total",
                                         "service", "plugintest.v1.SlowService", "method", "Slow",
                                         NULL), ==, 3);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_call_duration_seconds_count",
                                         "service", "plugintest.v1.SlowService", "method", "Slow",
                                         NULL), ==, 3);
  /* The built-in services count too. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_calls_total",
                                         "service", "connectplugin.health.v1.HealthService",
                                         "method", "Check", "code", "ok", NULL), ==, 1);
  /* The plugin's gauges. */
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_plugin_health"), ==, "gauge");
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_plugin_health", "state", "healthy", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_plugin_health", "state", "degraded", NULL), ==, 0);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_plugin_health", "state", "unhealthy", NULL), ==, 0);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_plugin_ready", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_connections_open", NULL), >=, 1);
  g_clear_pointer (&expo, metrics_exposition_free);

  cp_server_set_health (f->server, CP_HEALTH_STATE_DEGRADED, "slow disk", NULL);
  cp_server_set_serving_status (f->server, "", CP_SERVING_STATUS_NOT_SERVING);
  expo = scrape (f->url);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_plugin_health", "state", "healthy", NULL), ==, 0);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_plugin_health", "state", "degraded", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_plugin_ready", NULL), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/plugin/metrics/default-off", test_metrics_default_off);
  ADD ("/plugin/metrics/read-at-start", test_metrics_read_at_start);
  ADD ("/plugin/metrics/counts", test_metrics_counts);
#undef ADD

  return g_test_run ();
}
