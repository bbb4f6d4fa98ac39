/* test-client-metrics.c: CpChannel:metrics-enabled, the client's Prometheus series
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real CpRpcServer on 127.0.0.1 answers Get (ok, an error on demand,
 * or held until the test releases it), Watch (two messages) and PutMany;
 * the channel's exposition is parsed back with the strict reader of
 * metrics-test.h and its samples are checked exactly. The per-plugin
 * gauges (health, circuit) and the grouping of several clients are checked
 * on the private CpClientMetrics that CpClient uses.
 */
#include <string.h>

#include <connectplugin.h>

#include "client-test-util.h"
#include "cp-client-metrics-private.h"
#include "metrics-test.h"

#define KV_PROCEDURE_PUT_MANY "/kv.v1.KVService/PutMany"
#define KV_SERVICE "kv.v1.KVService"

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  char *url;

  CpError fail_code;          /* Get fails with it (0: answers) */
  gboolean hold;              /* Get is held in `held` */
  CpInvocation *held;
  guint n_get;
} Fixture;

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(GBytes) value = g_bytes_new_static ("value", 5);
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

  f->n_get++;
  if (f->hold)
    f->held = g_object_ref (invocation);
  else if (f->fail_code != 0)
    cp_invocation_return_error (invocation, f->fail_code, "failing on purpose");
  else
    cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "k", NULL);

      cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
    }
  cp_invocation_return_ok (invocation);
}

static void
handle_put_many (CpInvocation *invocation,
                 CpMessage    *request,
                 gpointer      user_data)
{
  test_receive_all_then_found (invocation);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  struct {
    const char *procedure;
    CpMethodKind kind;
    GType in, out;
    CpMethodHandler handler;
  } methods[] = {
    { KV_PROCEDURE_GET, CP_METHOD_UNARY, KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE, handle_get },
    { KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING, KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT,
      handle_watch },
    { KV_PROCEDURE_PUT_MANY, CP_METHOD_CLIENT_STREAMING, KV_TYPE_PUT_REQUEST,
      KV_TYPE_GET_RESPONSE, handle_put_many },
  };
  g_autoptr(GError) error = NULL;

  memset (f, 0, sizeof *f);
  f->server = cp_rpc_server_new ();
  for (gsize i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(CpMethodInfo) info = cp_method_info_new (methods[i].procedure, methods[i].kind,
                                                         methods[i].in, methods[i].out);

      cp_rpc_server_add_method (f->server, info, methods[i].handler, f, NULL);
    }
  f->url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->channel = cp_channel_new (f->url, &error);
  g_assert_no_error (error);
  g_object_set (f->channel, "metrics-enabled", data == NULL, "metrics-label", "kv", NULL);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  g_clear_object (&f->held);
  cp_rpc_server_close (f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->server);
  g_free (f->url);
}

static MetricsExposition *
scrape (Fixture *f)
{
  g_autofree char *text = cp_channel_render_metrics (f->channel);

  g_assert_nonnull (text);
  return metrics_test_parse (text);
}

/* A sample of procedure @method of the kv service, with one more label
 * pair (@label NULL for none). */
static gdouble
value (MetricsExposition *expo,
       const char        *name,
       const char        *method,
       const char        *label,
       const char        *label_value)
{
  if (label == NULL)
    return metrics_test_value (expo, name, "plugin", "kv", "service", KV_SERVICE,
                               "method", method, NULL);
  return metrics_test_value (expo, name, "plugin", "kv", "service", KV_SERVICE,
                             "method", method, label, label_value, NULL);
}

static void
get (Fixture       *f,
     CpCallOptions *options,
     CpError        expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = test_kv_get (f->channel, "k", options, &error);

  if (expected == 0)
    {
      g_assert_no_error (error);
      g_assert_nonnull (response);
    }
  else
    g_assert_error (error, CP_ERROR, (gint) expected);
}

static void
test_off (Fixture       *f,
          gconstpointer  data)
{
  g_autoptr(MetricsExposition) expo = NULL;
  gboolean enabled = TRUE;

  g_object_get (f->channel, "metrics-enabled", &enabled, NULL);
  g_assert_false (enabled);
  get (f, NULL, 0);
  expo = scrape (f);
  /* The families are declared, nothing is counted. */
  g_assert_cmpuint (expo->n_samples, ==, 0);
  g_assert_cmpstr (g_hash_table_lookup (expo->types, "connectplugin_client_calls_total"), ==,
                   "counter");
  g_assert_cmpstr (g_hash_table_lookup (expo->types,
                                        "connectplugin_client_call_duration_seconds"), ==,
                   "histogram");
}

static void
test_codes (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(MetricsExposition) expo = NULL;

  get (f, NULL, 0);
  get (f, NULL, 0);
  f->fail_code = CP_ERROR_NOT_FOUND;
  get (f, NULL, CP_ERROR_NOT_FOUND);

  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_started_total", "Get", NULL, NULL),
                     ==, 3);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Get", "code", "ok"), ==, 2);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Get", "code", "not_found"),
                     ==, 1);
  /* Codes never seen have no series. */
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Get", "code", "internal"),
                     ==, -1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_in_flight", "Get", NULL, NULL),
                     ==, 0);
  g_assert_cmpfloat (value (expo, "connectplugin_client_call_duration_seconds_count", "Get",
                            NULL, NULL), ==, 3);
  g_assert_cmpfloat (value (expo, "connectplugin_client_call_duration_seconds_bucket", "Get",
                            "le", "+Inf"), ==, 3);
  g_assert_cmpfloat (value (expo, "connectplugin_client_call_duration_seconds_sum", "Get",
                            NULL, NULL), >, 0);
  /* Every request has the key "k" (a 3-byte message); every answer a body. */
  g_assert_cmpfloat (value (expo, "connectplugin_client_request_bytes_total", "Get", NULL, NULL),
                     ==, 9);
  g_assert_cmpfloat (value (expo, "connectplugin_client_response_bytes_total", "Get", NULL, NULL),
                     >, 0);
  g_assert_cmpfloat (value (expo, "connectplugin_client_retries_total", "Get", NULL, NULL), ==, 0);
  /* A unary method has no stream message series. */
  g_assert_cmpfloat (value (expo, "connectplugin_client_stream_messages_total", "Get",
                            "direction", "sent"), ==, -1);

  /* Off: nothing more is counted, what was counted stays. */
  g_object_set (f->channel, "metrics-enabled", FALSE, NULL);
  get (f, NULL, CP_ERROR_NOT_FOUND);
  g_clear_pointer (&expo, metrics_exposition_free);
  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_started_total", "Get", NULL, NULL),
                     ==, 3);
}

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);

  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static gboolean
got_get (gpointer data)
{
  return ((Fixture *) data)->held != NULL;
}

static void
test_in_flight (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(MetricsExposition) expo = NULL;
  g_autoptr(GBytes) v = g_bytes_new_static ("v", 1);
  g_autoptr(KvGetResponse) response = kv_test_get_response (v, TRUE);
  gboolean done = FALSE;

  f->hold = TRUE;
  cp_channel_call_async (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                         KV_TYPE_GET_RESPONSE, NULL, NULL, call_done, &done);
  test_wait_until (got_get, f);

  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_started_total", "Get", NULL, NULL),
                     ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_in_flight", "Get", NULL, NULL),
                     ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_call_duration_seconds_count", "Get",
                            NULL, NULL), ==, 0);

  cp_invocation_return_message (f->held, CP_MESSAGE (response));
  test_wait_for (&done);
  g_clear_pointer (&expo, metrics_exposition_free);
  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_in_flight", "Get", NULL, NULL),
                     ==, 0);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Get", "code", "ok"), ==, 1);
}

static void
test_streams (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(KvWatchRequest) watch = kv_test_watch_request ("");
  g_autoptr(CpRequestStream) put_many = NULL;
  g_autoptr(MetricsExposition) expo = NULL;
  g_autoptr(CpMessage) answer = NULL;
  g_autoptr(GError) error = NULL;
  StreamRun run;

  stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                        CP_MESSAGE (watch), KV_TYPE_WATCH_EVENT,
                                                        NULL));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, 2);
  stream_run_clear (&run);

  put_many = cp_channel_call_client_stream (f->channel, KV_PROCEDURE_PUT_MANY,
                                            KV_TYPE_GET_RESPONSE, NULL);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(KvPutRequest) put = kv_test_put_request ("k", NULL);

      g_assert_true (cp_request_stream_send (put_many, CP_MESSAGE (put), &error));
      g_assert_no_error (error);
    }
  answer = test_client_stream (put_many, &error);
  g_assert_no_error (error);

  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_stream_messages_total", "Watch",
                            "direction", "sent"), ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_stream_messages_total", "Watch",
                            "direction", "received"), ==, 2);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Watch", "code", "ok"),
                     ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_stream_messages_total", "PutMany",
                            "direction", "sent"), ==, 3);
  g_assert_cmpfloat (value (expo, "connectplugin_client_stream_messages_total", "PutMany",
                            "direction", "received"), ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "PutMany", "code", "ok"),
                     ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_request_bytes_total", "PutMany",
                            NULL, NULL), >, 0);
  g_assert_cmpfloat (value (expo, "connectplugin_client_response_bytes_total", "Watch",
                            NULL, NULL), >, 0);
}

static void
test_retries (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(MetricsExposition) expo = NULL;

  cp_retry_policy_set_initial_backoff_ms (policy, 5);
  cp_retry_policy_set_jitter (policy, 0.0);
  cp_channel_set_retry_policy (f->channel, policy);
  cp_call_options_set_idempotent (options, TRUE);
  f->fail_code = CP_ERROR_UNAVAILABLE;

  /* Three attempts, one logical call. */
  get (f, options, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f->n_get, ==, 3);
  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_started_total", "Get", NULL, NULL),
                     ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Get", "code",
                            "unavailable"), ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_retries_total", "Get", NULL, NULL), ==, 2);
  g_assert_cmpfloat (value (expo, "connectplugin_client_retries_throttled_total", "Get",
                            NULL, NULL), ==, 0);
  g_assert_cmpuint (cp_retry_policy_get_n_retries (policy), ==, 2);
  /* Every attempt sent its request. */
  g_assert_cmpfloat (value (expo, "connectplugin_client_request_bytes_total", "Get", NULL, NULL),
                     ==, 9);

  /* A budget that allows nothing: the retry is refused and counted. */
  cp_retry_policy_set_budget_ratio (policy, 0.0);
  cp_retry_policy_set_budget_min_per_second (policy, 0);
  get (f, options, CP_ERROR_UNAVAILABLE);
  g_clear_pointer (&expo, metrics_exposition_free);
  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_retries_throttled_total", "Get",
                            NULL, NULL), ==, 1);
  g_assert_cmpfloat (value (expo, "connectplugin_client_retries_total", "Get", NULL, NULL), ==, 2);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Get", "code",
                            "unavailable"), ==, 2);
}

typedef struct {
  Fixture *f;
  guint n;
} ThreadData;

static gpointer
call_thread (gpointer user_data)
{
  ThreadData *t = user_data;

  for (guint i = 0; i < t->n; i++)
    {
      g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response = cp_channel_call_sync (t->f->channel, KV_PROCEDURE_GET,
                                                            CP_MESSAGE (request),
                                                            KV_TYPE_GET_RESPONSE, NULL, NULL,
                                                            &error);

      g_assert_no_error (error);
    }
  return NULL;
}

static gboolean
threads_done (gpointer data)
{
  return ((Fixture *) data)->n_get == 4 * 25;
}

/* Blocking calls from several threads at once: no count is lost. */
static void
test_threads (Fixture       *f,
              gconstpointer  data)
{
  ThreadData t = { f, 25 };
  GThread *threads[4];
  g_autoptr(MetricsExposition) expo = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("caller", call_thread, &t);
  /* The server answers in this thread's context. */
  test_wait_until (threads_done, f);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);

  expo = scrape (f);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_started_total", "Get", NULL, NULL),
                     ==, 100);
  g_assert_cmpfloat (value (expo, "connectplugin_client_calls_total", "Get", "code", "ok"),
                     ==, 100);
  g_assert_cmpfloat (value (expo, "connectplugin_client_call_duration_seconds_count", "Get",
                            NULL, NULL), ==, 100);
  g_assert_cmpfloat (value (expo, "connectplugin_client_request_bytes_total", "Get", NULL, NULL),
                     ==, 300);
}

/* Two plugins in one exposition: each family declared once; the health
 * and circuit gauges. */
static void
test_sources (void)
{
  g_autoptr(GPtrArray) sources = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_client_metrics_unref);
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(MetricsExposition) expo = NULL;
  CpClientMetrics *a = cp_client_metrics_new ("a");
  CpClientMetrics *b = cp_client_metrics_new ("b \"quoted\"");
  CpClientMetricsCall call;
  GError error = { CP_ERROR, CP_ERROR_INTERNAL, (char *) "boom" };

  g_ptr_array_add (sources, a);
  g_ptr_array_add (sources, b);
  cp_client_metrics_call_begin (&call, a, KV_PROCEDURE_GET, FALSE);
  cp_client_metrics_call_end (&call, NULL);
  cp_client_metrics_call_begin (&call, b, KV_PROCEDURE_GET, FALSE);
  cp_client_metrics_call_end (&call, &error);
  cp_client_metrics_call_begin (&call, b, KV_PROCEDURE_WATCH, TRUE);
  /* Dropped without an outcome: canceled. */
  cp_client_metrics_call_clear (&call);
  /* Not counted: nothing to end. */
  cp_client_metrics_call_begin (&call, NULL, KV_PROCEDURE_GET, FALSE);
  cp_client_metrics_call_end (&call, NULL);

  cp_client_metrics_set_health (a, 2);
  cp_client_metrics_set_circuit_breaker (b, breaker);
  cp_circuit_breaker_force_open (breaker);

  cp_client_metrics_render (out, sources);
  expo = metrics_test_parse (out->str);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_calls_total", "plugin", "a",
                                         "service", KV_SERVICE, "method", "Get", "code", "ok",
                                         NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_calls_total",
                                         "plugin", "b \"quoted\"", "service", KV_SERVICE,
                                         "method", "Get", "code", "internal", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_calls_total",
                                         "plugin", "b \"quoted\"", "service", KV_SERVICE,
                                         "method", "Watch", "code", "canceled", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_stream_messages_total",
                                         "plugin", "b \"quoted\"", "service", KV_SERVICE,
                                         "method", "Watch", "direction", "received", NULL), ==, 0);

  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "a", "state", "degraded", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "a", "state", "healthy", NULL), ==, 0);
  /* No report, no series. */
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_plugin_health",
                                         "plugin", "b \"quoted\"", "state", "healthy", NULL),
                     ==, -1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "b \"quoted\"", "state", "open", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "b \"quoted\"", "state", "closed", NULL), ==, 0);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_opened_total",
                                         "plugin", "b \"quoted\"", NULL), ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "a", "state", "open", NULL), ==, -1);

  cp_circuit_breaker_force_half_open (breaker);
  g_string_truncate (out, 0);
  cp_client_metrics_render (out, sources);
  g_clear_pointer (&expo, metrics_exposition_free);
  expo = metrics_test_parse (out->str);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "b \"quoted\"", "state", "half_open", NULL),
                     ==, 1);
  g_assert_cmpfloat (metrics_test_value (expo, "connectplugin_client_circuit_state",
                                         "plugin", "b \"quoted\"", "state", "open", NULL), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

#define ADD(path, func, data) \
  g_test_add (path, Fixture, data, fixture_setup, func, fixture_teardown)
  ADD ("/client-metrics/off", test_off, "off");
  ADD ("/client-metrics/codes", test_codes, NULL);
  ADD ("/client-metrics/in-flight", test_in_flight, NULL);
  ADD ("/client-metrics/streams", test_streams, NULL);
  ADD ("/client-metrics/retries", test_retries, NULL);
  ADD ("/client-metrics/threads", test_threads, NULL);
#undef ADD
  g_test_add_func ("/client-metrics/sources", test_sources);
  return g_test_run ();
}
