/* test-rpc-metrics.c: CpRpcServer:metrics-enabled and /metrics
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The engine's counters (cp-metrics-private.h) after known calls over real
 * sockets (the fixture of rpc-test-util.c): unary calls answered OK and with
 * errors, server, client and bidi streams, a call in flight, requests that
 * are no calls (404, 415); the exposition read back with the strict parser
 * of tests/metrics-test.h; label and HELP escaping; metrics off (the
 * default, and turned off again) answers /metrics with 404.
 */
#include <connectplugin.h>

#include "cp-rpc-server-private.h"
#include "kv-test.h"
#include "metrics-test.h"
#include "rpc-test-util.h"

#define SERVICE_KV "kv.v1.KVService"
#define SERVICE_TEST "test.v1.TestService"

static MetricsExposition *
scrape (Fixture *f)
{
  g_autofree char *text = NULL;
  RawResponse resp;
  MetricsExposition *expo;

  /* Let the server see the clients that closed (the open connections). */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  roundtrip (f, "GET", "/metrics", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  assert_header (resp.headers, "Cache-Control", "no-store");
  text = g_strndup (g_bytes_get_data (resp.body, NULL), g_bytes_get_size (resp.body));
  g_test_message ("%s", text);
  expo = metrics_test_parse (text);
  raw_response_clear (&resp);
  return expo;
}

static gdouble
calls (MetricsExposition *expo, const char *service, const char *method, const char *code)
{
  return metrics_test_value (expo, "connectplugin_server_calls_total",
                             "service", service, "method", method, "code", code, NULL);
}

static gdouble
method_value (MetricsExposition *expo, const char *name, const char *service, const char *method)
{
  return metrics_test_value (expo, name, "service", service, "method", method, NULL);
}

/* One unary Get; returns the response body size. */
static gsize
unary_get (Fixture *f, const char *key, guint expected_status, gsize *request_size)
{
  g_autoptr(GBytes) body = get_request_proto (key);
  RawResponse resp;
  gsize size;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, expected_status);
  size = g_bytes_get_size (resp.body);
  *request_size += g_bytes_get_size (body);
  raw_response_clear (&resp);
  return size;
}

/* One stream call; returns the response body size (all envelopes). */
static gsize
stream (Fixture *f, const char *procedure, GBytes *body, gsize *request_size)
{
  RawResponse resp;
  GArray *envs = stream_call (f, procedure, NULL, body, &resp);
  gsize size = g_bytes_get_size (resp.body);

  *request_size += g_bytes_get_size (body);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  return size;
}

static void
check_histogram (MetricsExposition *expo, const char *service, const char *method, gdouble count)
{
  static const char * const les[] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
  };
  const char *name = "connectplugin_server_call_duration_seconds_bucket";
  gdouble previous = 0;

  for (guint i = 0; i < G_N_ELEMENTS (les); i++)
    {
      gdouble bucket = metrics_test_value (expo, name, "service", service, "method", method,
                                           "le", les[i], NULL);

      g_assert_cmpfloat (bucket, >=, previous);
      previous = bucket;
    }
  g_assert_cmpfloat (previous, ==, count);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_call_duration_seconds_count",
                                   service, method), ==, count);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_call_duration_seconds_sum",
                                   service, method), >=, 0);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_call_duration_seconds_sum",
                                   service, method), <, 30 * count);
}

/* ------------------------------------------------------------------ */
/* Off                                                                  */

static void
test_metrics_off (Fixture *f, gconstpointer data)
{
  gboolean enabled = TRUE;
  RawResponse resp;

  g_object_get (f->server, "metrics-enabled", &enabled, NULL);
  g_assert_false (enabled);
  assert_server_alive (f);
  g_assert_null (cp_rpc_server_get_metrics (f->server));

  roundtrip (f, "GET", "/metrics", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);
}

/* ------------------------------------------------------------------ */
/* Counts                                                               */

static gboolean
held_cb (gpointer user_data)
{
  return ((Fixture *) user_data)->held == NULL;
}

static void
count_notify (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
test_metrics_counts (Fixture *f, gconstpointer data)
{
  g_autoptr(MetricsExposition) expo = NULL;
  gsize get_request = 0, get_response = 0;
  gsize watch_request = 0, watch_response = 0;
  gsize sum_request = 0, sum_response = 0;
  gsize echo_request = 0, echo_response = 0;
  guint notified = 0;
  RawResponse resp;

  g_signal_connect (f->server, "notify::metrics-enabled", G_CALLBACK (count_notify), &notified);
  g_object_set (f->server, "metrics-enabled", TRUE, NULL);
  g_object_set (f->server, "metrics-enabled", TRUE, NULL);
  g_assert_cmpuint (notified, ==, 1);

  /* Before any call: every family, no series. */
  expo = scrape (f);
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_calls_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_calls_started_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_calls_in_flight"), ==, "gauge");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_call_duration_seconds"), ==, "histogram");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_request_bytes_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_response_bytes_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_stream_messages_total"), ==, "counter");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_connections_open"), ==, "gauge");
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_server_connections_total"), ==, "counter");
  g_assert_nonnull (g_hash_table_lookup (expo->helps, "connectplugin_server_calls_total"));
  /* Only the connection gauges have samples; the scrape's own connection is open. */
  g_assert_cmpuint (expo->n_samples, ==, 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_connections_open", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_connections_total", NULL), ==, 1);
  g_clear_pointer (&expo, metrics_exposition_free);

  /* Unary: 3 OK, one not_found, one unknown (a non-Connect error). */
  for (guint i = 0; i < 3; i++)
    get_response += unary_get (f, "a", 200, &get_request);
  get_response += unary_get (f, "error:5", 404, &get_request);
  get_response += unary_get (f, "plain-error", 500, &get_request);

  /* Not calls: an unknown path, a wrong content type. */
  roundtrip (f, "POST", "/kv.v1.KVService/Nope", "Content-Type: application/proto\r\n", NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: text/plain\r\n", NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);

  /* Server streams: 3 messages then OK; 2 messages then aborted. */
  {
    g_autoptr(GBytes) three = watch_request_envelope ("n:3");
    g_autoptr(GBytes) aborted = watch_request_envelope ("error:10:2");

    watch_response += stream (f, KV_PROCEDURE_WATCH, three, &watch_request);
    watch_response += stream (f, KV_PROCEDURE_WATCH, aborted, &watch_request);
  }

  /* Client stream: 3 requests, one answer. */
  {
    g_autoptr(GBytes) puts = put_envelopes ((const char *[]) { "x", "y", "z", NULL });

    sum_response += stream (f, SUM_PROCEDURE, puts, &sum_request);
  }

  /* Bidi: 2 requests, 2 answers. */
  {
    g_autoptr(GBytes) first = watch_request_envelope ("p");
    g_autoptr(GBytes) second = watch_request_envelope ("q");
    g_autoptr(GByteArray) both = g_byte_array_new ();
    g_autoptr(GBytes) body = NULL;

    g_byte_array_append (both, g_bytes_get_data (first, NULL), g_bytes_get_size (first));
    g_byte_array_append (both, g_bytes_get_data (second, NULL), g_bytes_get_size (second));
    body = g_byte_array_free_to_bytes (g_steal_pointer (&both));
    echo_response += stream (f, ECHO_PROCEDURE, body, &echo_request);
  }

  /* A call in flight while scraping. */
  {
    g_autoptr(GBytes) slow = get_request_proto ("slow");
    g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                               "Content-Type: application/proto\r\n", slow);
    RawConn *rc = raw_conn_new (f->url);
    guint guard = g_timeout_add_seconds (RAW_STALL_SECONDS, held_cb, f);

    g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
    while (f->held == NULL)
      g_main_context_iteration (NULL, TRUE);
    g_source_remove (guard);
    get_request += g_bytes_get_size (slow);

    expo = scrape (f);
    g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_in_flight", SERVICE_KV, "Get"), ==, 1);
    g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_started_total", SERVICE_KV, "Get"), ==, 6);
    g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_connections_open", NULL), ==, 2);
    g_clear_pointer (&expo, metrics_exposition_free);

    {
      g_autoptr(KvGetResponse) answer = kv_test_get_response (NULL, TRUE);

      cp_invocation_return_message (f->held, CP_MESSAGE (answer));
      g_clear_object (&f->held);
    }
    g_assert_true (raw_read_response (rc, &resp));
    g_assert_cmpuint (resp.status, ==, 200);
    get_response += g_bytes_get_size (resp.body);
    raw_response_clear (&resp);
    raw_conn_free (rc);
  }

  expo = scrape (f);

  /* Unary Get. */
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_started_total", SERVICE_KV, "Get"), ==, 6);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Get", "ok"), ==, 4);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Get", "not_found"), ==, 1);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Get", "unknown"), ==, 1);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Get", "internal"), ==, -1);  /* no zero series */
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_in_flight", SERVICE_KV, "Get"), ==, 0);
  check_histogram (expo, SERVICE_KV, "Get", 6);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_request_bytes_total", SERVICE_KV, "Get"), ==, get_request);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_response_bytes_total", SERVICE_KV, "Get"), ==, get_response);
  /* Unary methods have no stream message series. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", SERVICE_KV, "method", "Get",
                                         "direction", "sent", NULL), ==, -1);
  /* 404 and 415 were no calls. */
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_started_total", SERVICE_KV, "Nope"), ==, -1);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_started_total", SERVICE_KV, "Put"), ==, -1);

  /* Server stream Watch. */
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_started_total", SERVICE_KV, "Watch"), ==, 2);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Watch", "ok"), ==, 1);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Watch", "aborted"), ==, 1);
  check_histogram (expo, SERVICE_KV, "Watch", 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", SERVICE_KV, "method", "Watch",
                                         "direction", "received", NULL), ==, 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", SERVICE_KV, "method", "Watch",
                                         "direction", "sent", NULL), ==, 5);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_request_bytes_total", SERVICE_KV, "Watch"), ==, watch_request);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_response_bytes_total", SERVICE_KV, "Watch"), ==, watch_response);

  /* Client stream Sum, bidi Echo. */
  g_assert_cmpfloat (calls (expo, SERVICE_TEST, "Sum", "ok"), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", SERVICE_TEST, "method", "Sum",
                                         "direction", "received", NULL), ==, 3);
  /* The single answer of a client stream is a message of the stream. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", SERVICE_TEST, "method", "Sum",
                                         "direction", "sent", NULL), ==, 1);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_request_bytes_total", SERVICE_TEST, "Sum"), ==, sum_request);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_response_bytes_total", SERVICE_TEST, "Sum"), ==, sum_response);
  g_assert_cmpfloat (calls (expo, SERVICE_TEST, "Echo", "ok"), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", SERVICE_TEST, "method", "Echo",
                                         "direction", "received", NULL), ==, 2);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", SERVICE_TEST, "method", "Echo",
                                         "direction", "sent", NULL), ==, 2);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_request_bytes_total", SERVICE_TEST, "Echo"), ==, echo_request);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_response_bytes_total", SERVICE_TEST, "Echo"), ==, echo_response);

  /* Every request above had its own connection (3 scrapes, 5 unary calls, 404,
   * 415, 4 streams, the slow call); the last scrape's is open. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_connections_open", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_connections_total", NULL), ==, 15);
}

/* ------------------------------------------------------------------ */
/* On and off                                                           */

static void
test_metrics_toggle (Fixture *f, gconstpointer data)
{
  g_autoptr(MetricsExposition) expo = NULL;
  gsize request = 0;
  RawResponse resp;

  g_object_set (f->server, "metrics-enabled", TRUE, NULL);
  unary_get (f, "a", 200, &request);

  /* Off: 404, and calls are not counted. */
  g_object_set (f->server, "metrics-enabled", FALSE, NULL);
  roundtrip (f, "GET", "/metrics", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);
  unary_get (f, "a", 200, &request);
  g_assert_nonnull (cp_rpc_server_get_metrics (f->server));

  /* On again: the counters were kept. HEAD has no body. */
  g_object_set (f->server, "metrics-enabled", TRUE, NULL);
  unary_get (f, "a", 200, &request);
  roundtrip (f, "HEAD", "/metrics", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_cmpuint (g_bytes_get_size (resp.body), ==, 0);
  raw_response_clear (&resp);
  expo = scrape (f);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Get", "ok"), ==, 2);
}

/* ------------------------------------------------------------------ */
/* In-process calls count too                                           */

static void
on_in_process_get (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CpMessage **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = cp_channel_call_finish (CP_CHANNEL (source), result, &error);
  g_assert_no_error (error);
}

static void
test_metrics_in_process (Fixture *f, gconstpointer data)
{
  g_autoptr(CpChannel) channel = cp_channel_new_in_process (f->server);
  g_autoptr(KvGetRequest) request = kv_test_get_request ("inproc");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(MetricsExposition) expo = NULL;

  g_object_set (f->server, "metrics-enabled", TRUE, NULL);
  cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (request), KV_TYPE_GET_RESPONSE,
                         NULL, NULL, on_in_process_get, &response);
  while (response == NULL)
    g_main_context_iteration (NULL, TRUE);

  expo = scrape (f);
  g_assert_cmpfloat (calls (expo, SERVICE_KV, "Get", "ok"), ==, 1);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_request_bytes_total", SERVICE_KV, "Get"), >, 0);
}

/* ------------------------------------------------------------------ */
/* Escaping                                                             */

static void
collect_help (GString *out, gpointer user_data)
{
  cp_metrics_write_family (out, "test_help_escaping", "gauge", "back\\slash\nnew \"line\"");
  g_string_append (out, "test_help_escaping 1\n");
  (*(guint *) user_data)++;
}

static void
count_destroy (gpointer user_data)
{
  (*(guint *) user_data) += 100;
}

static void
test_metrics_escaping (void)
{
  CpMetrics *metrics = cp_metrics_new ();
  const char *weird = "/we\"ird\\pkg.Svc/Me\nth\"od\\";
  CpMetricsMethod *method = cp_metrics_get_method (metrics, weird, FALSE);
  CpMetricsMethod *bad_utf8 = cp_metrics_get_method (metrics, "/pkg.S\xff/M", TRUE);
  CpMetricsMethod *no_service = cp_metrics_get_method (metrics, "bare", FALSE);
  g_autoptr(MetricsExposition) expo = NULL;
  guint collected = 0;
  const char *text;

  g_assert_true (cp_metrics_get_method (metrics, weird, FALSE) == method);
  method->started = 2;
  cp_metrics_method_finished (method, 0, 300);
  cp_metrics_method_finished (method, CP_ERROR_UNAUTHENTICATED, 2000000);
  bad_utf8->started = 1;
  cp_metrics_method_finished (bad_utf8, 99 /* not a code: unknown */, 20 * G_USEC_PER_SEC);
  bad_utf8->messages_sent = 7;
  no_service->started = 1;
  cp_metrics_add_collector (metrics, collect_help, &collected, count_destroy);

  text = cp_metrics_render (metrics);
  g_test_message ("%s", text);
  g_assert_cmpuint (collected, ==, 1);
  /* The escapes as written, then read back. */
  g_assert_nonnull (strstr (text, "service=\"we\\\"ird\\\\pkg.Svc\",method=\"Me\\nth\\\"od\\\\\""));
  g_assert_nonnull (strstr (text, "# HELP test_help_escaping back\\\\slash\\nnew \"line\"\n"));
  expo = metrics_test_parse (text);
  g_assert_cmpstr (g_hash_table_lookup (expo->helps, "test_help_escaping"), ==, "back\\slash\nnew \"line\"");
  g_assert_cmpfloat (calls (expo, "we\"ird\\pkg.Svc", "Me\nth\"od\\", "ok"), ==, 1);
  g_assert_cmpfloat (calls (expo, "we\"ird\\pkg.Svc", "Me\nth\"od\\", "unauthenticated"), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_call_duration_seconds_bucket",
                                         "service", "we\"ird\\pkg.Svc", "method", "Me\nth\"od\\",
                                         "le", "0.0005", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_call_duration_seconds_bucket",
                                         "service", "we\"ird\\pkg.Svc", "method", "Me\nth\"od\\",
                                         "le", "2.5", NULL), ==, 2);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_call_duration_seconds_sum",
                                   "we\"ird\\pkg.Svc", "Me\nth\"od\\"), ==, 2.0003);
  /* Invalid UTF-8 is replaced; an unknown code counts as unknown; 20 s is past 10. */
  g_assert_cmpfloat (calls (expo, "pkg.S\xef\xbf\xbd", "M", "unknown"), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_call_duration_seconds_bucket",
                                         "service", "pkg.S\xef\xbf\xbd", "method", "M",
                                         "le", "10", NULL), ==, 0);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_call_duration_seconds_bucket",
                                         "service", "pkg.S\xef\xbf\xbd", "method", "M",
                                         "le", "+Inf", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_server_stream_messages_total",
                                         "service", "pkg.S\xef\xbf\xbd", "method", "M",
                                         "direction", "sent", NULL), ==, 7);
  g_assert_cmpfloat (method_value (expo, "connectplugin_server_calls_in_flight", "", "bare"), ==, 1);

  cp_metrics_clear_collectors (metrics);
  g_assert_cmpuint (collected, ==, 101);
  cp_metrics_free (metrics);
  g_assert_cmpuint (collected, ==, 101);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  g_test_add ("/rpc/metrics/off", Fixture, NULL, fixture_setup, test_metrics_off, fixture_teardown);
  g_test_add ("/rpc/metrics/counts", Fixture, NULL, fixture_setup, test_metrics_counts, fixture_teardown);
  g_test_add ("/rpc/metrics/toggle", Fixture, NULL, fixture_setup, test_metrics_toggle, fixture_teardown);
  g_test_add ("/rpc/metrics/in-process", Fixture, NULL, fixture_setup, test_metrics_in_process,
              fixture_teardown);
  g_test_add_func ("/rpc/metrics/escaping", test_metrics_escaping);

  return g_test_run ();
}
