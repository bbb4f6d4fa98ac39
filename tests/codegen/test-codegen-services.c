/* test-codegen-services.c: what protoc-gen-cp generates for services
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The generator's side of services: the KV proto's generated descriptor, a
 * C subclass overriding a generated virtual method, and
 * tests/codegen/protos/services.proto (several services in one file, every
 * kind of method) served and called end to end. The service layer itself
 * (CpProxy, CpSkeleton, CpServiceDescriptor) is tested in tests/service/.
 */
#include <connectplugin.h>

#include "kv.cp.h"
#include "../service/service-test-util.h"
#include "services.cp.h"

/* ------------------------------------------------------------------ */
/* Tests                                                                */

static void
test_descriptor (void)
{
  CpServiceDescriptor *d = kv_kv_service_get_descriptor ();
  GPtrArray *methods;
  CpMethodInfo *info;
  static const struct {
    const char *name;
    CpMethodKind kind;
    CpIdempotency idempotency;
  } expected[] = {
    { "Get", CP_METHOD_UNARY, CP_IDEMPOTENCY_NO_SIDE_EFFECTS },
    { "Put", CP_METHOD_UNARY, CP_IDEMPOTENCY_UNKNOWN },
    { "Delete", CP_METHOD_UNARY, CP_IDEMPOTENCY_UNKNOWN },
    { "Watch", CP_METHOD_SERVER_STREAMING, CP_IDEMPOTENCY_UNKNOWN },
  };

  g_assert_nonnull (d);
  g_assert_true (d == kv_kv_service_get_descriptor ());
  g_assert_cmpstr (cp_service_descriptor_get_full_name (d), ==, "kv.v1.KVService");
  g_assert_cmpstr (cp_service_descriptor_get_path (d), ==, "/kv.v1.KVService/");
  g_assert_true (cp_service_descriptor_get_proxy_type (d) == KV_TYPE_KV_SERVICE_PROXY);
  g_assert_true (cp_service_descriptor_get_skeleton_type (d) == KV_TYPE_KV_SERVICE_SKELETON);
  g_assert_true (g_type_is_a (KV_TYPE_KV_SERVICE_PROXY, CP_TYPE_PROXY));
  g_assert_true (g_type_is_a (KV_TYPE_KV_SERVICE_SKELETON, CP_TYPE_SKELETON));
  g_assert_true (g_type_is_a (KV_TYPE_KV_SERVICE_SKELETON, KV_TYPE_KV_SERVICE));

  methods = cp_service_descriptor_get_methods (d);
  g_assert_cmpuint (methods->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < methods->len; i++)
    {
      g_autofree char *procedure = g_strconcat ("/kv.v1.KVService/", expected[i].name, NULL);

      info = g_ptr_array_index (methods, i);
      g_assert_cmpstr (cp_method_info_get_method_name (info), ==, expected[i].name);
      g_assert_cmpstr (cp_method_info_get_procedure (info), ==, procedure);
      g_assert_cmpint (cp_method_info_get_kind (info), ==, expected[i].kind);
      g_assert_cmpint (cp_method_info_get_idempotency (info), ==, expected[i].idempotency);
      g_assert_true (cp_service_descriptor_lookup_method (d, expected[i].name) == info);
    }
  info = cp_service_descriptor_lookup_method (d, "Watch");
  g_assert_true (cp_method_info_get_input_type (info) == KV_TYPE_WATCH_REQUEST);
  g_assert_true (cp_method_info_get_output_type (info) == KV_TYPE_WATCH_EVENT);
  info = cp_service_descriptor_lookup_method (d, "Get");
  g_assert_true (cp_method_info_get_input_type (info) == KV_TYPE_GET_REQUEST);
  g_assert_true (cp_method_info_get_output_type (info) == KV_TYPE_GET_RESPONSE);
  g_assert_null (cp_service_descriptor_lookup_method (d, "get"));
  g_assert_null (cp_service_descriptor_lookup_method (d, "List"));
}


static gboolean
on_handle_get_decline (KvKVService  *object,
                       CpInvocation *invocation,
                       KvGetRequest *request,
                       gpointer      user_data)
{
  guint *n_calls = user_data;

  (*n_calls)++;
  return FALSE;
}

typedef struct {
  GPtrArray *events;
  gboolean   closed;
  GError    *error;
} StreamLog;

static void
on_stream_closed (CpResponseStream *stream,
                  const GError     *error,
                  gpointer          user_data)
{
  StreamLog *log = user_data;

  g_assert_false (log->closed);
  log->closed = TRUE;
  log->error = error ? g_error_copy (error) : NULL;
}

/* ---- a C subclass overriding the virtual method ---- */

#define TEST_TYPE_KV (test_kv_get_type ())
G_DECLARE_FINAL_TYPE (TestKv, test_kv, TEST, KV, KvKVServiceSkeleton)

struct _TestKv
{
  KvKVServiceSkeleton parent_instance;
  guint n_gets;
};

static gboolean
test_kv_handle_get (KvKVService  *object,
                    CpInvocation *invocation,
                    KvGetRequest *request)
{
  TestKv *self = TEST_KV (object);
  g_autofree char *echo = g_strdup_printf ("vfunc:%s", kv_get_request_get_key (request));
  g_autoptr(GBytes) value = bytes_from_string (echo);
  g_autoptr(KvGetResponse) response = g_object_new (KV_TYPE_GET_RESPONSE, "found", TRUE,
                                                    "value", value, NULL);

  self->n_gets++;
  kv_kv_service_complete_get (object, invocation, response);
  return TRUE;
}

static void
test_kv_iface_init (KvKVServiceInterface *iface)
{
  iface->handle_get = test_kv_handle_get;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestKv, test_kv, KV_TYPE_KV_SERVICE_SKELETON,
                               G_IMPLEMENT_INTERFACE (KV_TYPE_KV_SERVICE, test_kv_iface_init))

static void
test_kv_class_init (TestKvClass *klass)
{
}

static void
test_kv_init (TestKv *self)
{
}

static void
test_subclass (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  g_autoptr(TestKv) skeleton = g_object_new (TEST_TYPE_KV, NULL);
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvKVService) proxy = NULL;
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", "z", NULL);
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(KvPutResponse) put_resp = NULL;
  g_autoptr(KvPutRequest) put_req = kv_put_request_new ();
  g_autoptr(GBytes) value = NULL;
  g_autoptr(GError) error = NULL;
  guint n_declined = 0;
  gulong handler;

  g_assert_true (cp_skeleton_get_descriptor (CP_SKELETON (skeleton)) ==
                 kv_kv_service_get_descriptor ());
  g_assert_true (cp_skeleton_export (CP_SKELETON (skeleton), server, &error));
  channel = cp_channel_new_in_process (server);
  proxy = kv_kv_service_proxy_new (channel);

  /* No handler connected: the virtual method is called without an emission. */
  response = kv_kv_service_call_get_sync (proxy, request, NULL, NULL, &error);
  g_assert_no_error (error);
  value = kv_get_response_get_value (response);
  assert_bytes_equal (value, "vfunc:z");
  g_assert_cmpuint (skeleton->n_gets, ==, 1);
  g_clear_object (&response);
  g_clear_pointer (&value, g_bytes_unref);

  /* A declining signal handler runs first, then the virtual method. */
  handler = g_signal_connect (skeleton, "handle-get", G_CALLBACK (on_handle_get_decline), &n_declined);
  response = kv_kv_service_call_get_sync (proxy, request, NULL, NULL, &error);
  g_assert_no_error (error);
  value = kv_get_response_get_value (response);
  assert_bytes_equal (value, "vfunc:z");
  g_assert_cmpuint (skeleton->n_gets, ==, 2);
  g_assert_cmpuint (n_declined, ==, 1);
  g_clear_object (&response);

  /* A blocked handler is skipped; the virtual method still answers. */
  g_signal_handler_block (skeleton, handler);
  response = kv_kv_service_call_get_sync (proxy, request, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (skeleton->n_gets, ==, 3);
  g_assert_cmpuint (n_declined, ==, 1);
  g_signal_handler_unblock (skeleton, handler);

  /* Methods it does not override stay unimplemented. */
  put_resp = kv_kv_service_call_put_sync (proxy, put_req, NULL, NULL, &error);
  g_assert_null (put_resp);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  cp_skeleton_unexport (CP_SKELETON (skeleton));
}

/* ---- services.proto: several services, client streaming ---- */

static gboolean
on_calculator_ping (SvcCalculator  *object,
                    CpInvocation   *invocation,
                    SvcPingRequest *request,
                    gpointer        user_data)
{
  g_autoptr(SvcPingResponse) response =
    g_object_new (SVC_TYPE_PING_RESPONSE, "text", svc_ping_request_get_text (request),
                  "service", "Calculator", NULL);

  svc_calculator_complete_ping (object, invocation, response);
  return TRUE;
}

static gboolean
on_echo_ping (SvcEcho        *object,
              CpInvocation   *invocation,
              SvcPingRequest *request,
              gpointer        user_data)
{
  g_autoptr(SvcPingResponse) response =
    g_object_new (SVC_TYPE_PING_RESPONSE, "text", svc_ping_request_get_text (request),
                  "service", "Echo", NULL);

  svc_echo_complete_ping (object, invocation, response);
  return TRUE;
}

typedef struct {
  SvcCalculator *object;
  CpInvocation  *invocation;
  gint64         sum;
  gint           count;
} SumState;

static void
sum_received (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  SumState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (state->invocation, result, &error);

  if (message != NULL)
    {
      g_assert_true (SVC_IS_NUMBER (message));
      state->sum += svc_number_get_value (SVC_NUMBER (message));
      state->count++;
      cp_invocation_receive_async (state->invocation, NULL, sum_received, state);
      return;
    }
  if (error == NULL)
    {
      g_autoptr(SvcTotal) total = g_object_new (SVC_TYPE_TOTAL, "sum", state->sum,
                                                "count", state->count, NULL);

      svc_calculator_complete_sum (state->object, state->invocation, total);
    }
  g_object_unref (state->invocation);
  g_object_unref (state->object);
  g_free (state);
}

static gboolean
on_calculator_sum (SvcCalculator *object,
                   CpInvocation  *invocation,
                   gpointer       user_data)
{
  SumState *state = g_new0 (SumState, 1);

  state->object = g_object_ref (object);
  state->invocation = g_object_ref (invocation);
  cp_invocation_receive_async (invocation, NULL, sum_received, state);
  return TRUE;
}

static gboolean
on_calculator_count (SvcCalculator *object,
                     CpInvocation  *invocation,
                     SvcNumber     *request,
                     gpointer       user_data)
{
  gint64 n = svc_number_get_value (request);
  g_autoptr(GError) error = NULL;

  for (gint64 i = 1; i <= n; i++)
    {
      g_autoptr(SvcNumber) number = g_object_new (SVC_TYPE_NUMBER, "value", i, NULL);

      g_assert_true (cp_invocation_send_message (invocation, CP_MESSAGE (number), &error));
      g_assert_no_error (error);
    }
  cp_invocation_return_ok (invocation);
  return TRUE;
}

/* Chat (half-duplex bidi): reads every request, then answers each with its
 * text reversed, in order. */
typedef struct {
  CpInvocation *invocation;
  GPtrArray    *texts;
} ChatState;

static void
chat_received (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  ChatState *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (state->invocation, result, &error);

  if (message != NULL)
    {
      g_assert_true (SVC_IS_PING_REQUEST (message));
      g_ptr_array_add (state->texts, g_strdup (svc_ping_request_get_text (SVC_PING_REQUEST (message))));
      cp_invocation_receive_async (state->invocation, NULL, chat_received, state);
      return;
    }
  if (error == NULL)
    {
      for (guint i = 0; i < state->texts->len; i++)
        {
          g_autofree char *reversed = g_utf8_strreverse (g_ptr_array_index (state->texts, i), -1);
          g_autoptr(SvcPingResponse) response = g_object_new (SVC_TYPE_PING_RESPONSE,
                                                              "text", reversed,
                                                              "service", "Chat", NULL);

          g_assert_true (cp_invocation_send_message (state->invocation, CP_MESSAGE (response),
                                                     &error));
          g_assert_no_error (error);
        }
      cp_invocation_return_ok (state->invocation);
    }
  g_object_unref (state->invocation);
  g_ptr_array_unref (state->texts);
  g_free (state);
}

static gboolean
on_calculator_chat (SvcCalculator *object,
                    CpInvocation  *invocation,
                    gpointer       user_data)
{
  ChatState *state = g_new0 (ChatState, 1);

  state->invocation = g_object_ref (invocation);
  state->texts = g_ptr_array_new_with_free_func (g_free);
  cp_invocation_receive_async (invocation, NULL, chat_received, state);
  return TRUE;
}

static void
on_chat_message (CpResponseStream *stream,
                 CpMessage        *message,
                 gpointer          user_data)
{
  StreamLog *log = user_data;

  g_assert_true (SVC_IS_PING_RESPONSE (message));
  g_ptr_array_add (log->events, g_object_ref (message));
}

static SvcPingResponse *
ping (gpointer    proxy,
      gboolean    echo,
      const char *text,
      GError    **error)
{
  g_autoptr(SvcPingRequest) request = g_object_new (SVC_TYPE_PING_REQUEST, "text", text, NULL);
  g_autoptr(GAsyncResult) result = NULL;

  if (echo)
    {
      svc_echo_call_ping (proxy, request, NULL, NULL, store_result, &result);
      return svc_echo_call_ping_finish (proxy, wait_result (&result), error);
    }
  svc_calculator_call_ping (proxy, request, NULL, NULL, store_result, &result);
  return svc_calculator_call_ping_finish (proxy, wait_result (&result), error);
}

static void
close_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  store_result (source, result, user_data);
}

static void
on_number (CpResponseStream *stream,
           CpMessage        *message,
           gpointer          user_data)
{
  GArray *numbers = user_data;
  gint64 value;

  g_assert_true (SVC_IS_NUMBER (message));
  value = svc_number_get_value (SVC_NUMBER (message));
  g_array_append_val (numbers, value);
}

static void
test_several_services (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  g_autoptr(SvcCalculator) calculator = svc_calculator_skeleton_new ();
  g_autoptr(SvcEcho) echo = svc_echo_skeleton_new ();
  g_autoptr(SvcIdle) idle = svc_idle_skeleton_new ();
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(SvcCalculator) calc_proxy = NULL;
  g_autoptr(SvcEcho) echo_proxy = NULL;
  g_autoptr(SvcPingResponse) p1 = NULL;
  g_autoptr(SvcPingResponse) p2 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  CpServiceDescriptor *d;
  CpMethodInfo *chat;

  g_signal_connect (calculator, "handle-ping", G_CALLBACK (on_calculator_ping), NULL);
  g_signal_connect (calculator, "handle-sum", G_CALLBACK (on_calculator_sum), NULL);
  g_signal_connect (calculator, "handle-count", G_CALLBACK (on_calculator_count), NULL);
  g_signal_connect (calculator, "handle-chat", G_CALLBACK (on_calculator_chat), NULL);
  g_signal_connect (echo, "handle-ping", G_CALLBACK (on_echo_ping), NULL);
  g_assert_true (cp_skeleton_export (CP_SKELETON (calculator), server, &error));
  g_assert_true (cp_skeleton_export (CP_SKELETON (echo), server, &error));
  g_assert_true (cp_skeleton_export (CP_SKELETON (idle), server, &error));
  g_assert_no_error (error);
  url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  channel = cp_channel_new (url, &error);
  calc_proxy = svc_calculator_proxy_new (channel);
  echo_proxy = svc_echo_proxy_new (channel);

  /* Descriptors: kinds, idempotency, the bidi method with its signal. */
  d = svc_calculator_get_descriptor ();
  g_assert_cmpuint (cp_service_descriptor_get_methods (d)->len, ==, 4);
  g_assert_cmpint (cp_method_info_get_kind (cp_service_descriptor_lookup_method (d, "Sum")),
                   ==, CP_METHOD_CLIENT_STREAMING);
  g_assert_cmpint (cp_method_info_get_kind (cp_service_descriptor_lookup_method (d, "Count")),
                   ==, CP_METHOD_SERVER_STREAMING);
  g_assert_cmpint (cp_method_info_get_idempotency (cp_service_descriptor_lookup_method (d, "Ping")),
                   ==, CP_IDEMPOTENCY_IDEMPOTENT);
  chat = cp_service_descriptor_lookup_method (d, "Chat");
  g_assert_cmpint (cp_method_info_get_kind (chat), ==, CP_METHOD_BIDI_STREAMING);
  g_assert_cmpuint (g_signal_lookup ("handle-chat", SVC_TYPE_CALCULATOR), !=, 0);
  g_assert_cmpuint (g_signal_lookup ("handle-sum", SVC_TYPE_CALCULATOR), !=, 0);
  d = svc_echo_get_descriptor ();
  g_assert_cmpstr (cp_service_descriptor_get_path (d), ==, "/svc.v1.Echo/");
  g_assert_cmpint (cp_method_info_get_idempotency (cp_service_descriptor_lookup_method (d, "GetHTTPInfo")),
                   ==, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
  g_assert_true (cp_method_info_get_input_type (cp_service_descriptor_lookup_method (d, "GetHTTPInfo"))
                 == CGTEST_TYPE_NESTED);
  g_assert_cmpuint (cp_service_descriptor_get_methods (svc_idle_get_descriptor ())->len, ==, 0);

  /* The same method name on two services reaches the right one. */
  p1 = ping (calc_proxy, FALSE, "one", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (svc_ping_response_get_service (p1), ==, "Calculator");
  g_assert_cmpstr (svc_ping_response_get_text (p1), ==, "one");
  p2 = ping (echo_proxy, TRUE, "two", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (svc_ping_response_get_service (p2), ==, "Echo");

  /* Echo's GetHTTPInfo has no handler. */
  {
    g_autoptr(CgtestNested) nested = g_object_new (CGTEST_TYPE_NESTED, "id", 7, NULL);
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(CgtestNested) answer = NULL;

    svc_echo_call_get_http_info (echo_proxy, nested, NULL, NULL, store_result, &result);
    answer = svc_echo_call_get_http_info_finish (echo_proxy, wait_result (&result), &error);
    g_assert_null (answer);
    g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
    g_clear_error (&error);
  }

  /* Client streaming. */
  {
    g_autoptr(CpRequestStream) stream = svc_calculator_call_sum (calc_proxy, NULL);
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(CpMessage) total = NULL;

    g_assert_true (CP_IS_REQUEST_STREAM (stream));
    for (gint64 i = 1; i <= 4; i++)
      {
        g_autoptr(SvcNumber) number = g_object_new (SVC_TYPE_NUMBER, "value", i * 10, NULL);

        g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (number), &error));
        g_assert_no_error (error);
      }
    cp_request_stream_close_async (stream, NULL, close_done, &result);
    total = cp_request_stream_close_finish (stream, wait_result (&result), &error);
    g_assert_no_error (error);
    g_assert_true (SVC_IS_TOTAL (total));
    g_assert_cmpint (svc_total_get_sum (SVC_TOTAL (total)), ==, 100);
    g_assert_cmpint (svc_total_get_count (SVC_TOTAL (total)), ==, 4);
  }

  /* Server streaming on the same skeleton. */
  {
    g_autoptr(SvcNumber) request = g_object_new (SVC_TYPE_NUMBER, "value", (gint64) 3, NULL);
    g_autoptr(CpResponseStream) stream = svc_calculator_call_count (calc_proxy, request, NULL);
    g_autoptr(GArray) numbers = g_array_new (FALSE, FALSE, sizeof (gint64));
    StreamLog log = { NULL, FALSE, NULL };

    g_signal_connect (stream, "message", G_CALLBACK (on_number), numbers);
    g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), &log);
    while (!log.closed)
      g_main_context_iteration (NULL, TRUE);
    g_assert_no_error (log.error);
    g_assert_cmpuint (numbers->len, ==, 3);
    for (guint i = 0; i < 3; i++)
      g_assert_cmpint (g_array_index (numbers, gint64, i), ==, i + 1);
  }

  /* Half-duplex bidi: every request, then every response, in order. */
  {
    g_autoptr(CpRequestStream) requests = svc_calculator_call_chat (calc_proxy, NULL);
    g_autoptr(CpResponseStream) responses = NULL;
    g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func (g_object_unref);
    StreamLog log = { messages, FALSE, NULL };
    static const char * const texts[] = { "abc", "", "xy" };
    static const char * const expected[] = { "cba", "", "yx" };

    g_assert_true (CP_IS_REQUEST_STREAM (requests));
    for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
      {
        g_autoptr(SvcPingRequest) request = g_object_new (SVC_TYPE_PING_REQUEST,
                                                          "text", texts[i], NULL);

        g_assert_true (cp_request_stream_send (requests, CP_MESSAGE (request), &error));
        g_assert_no_error (error);
      }
    responses = cp_request_stream_close_and_receive (requests);
    g_assert_true (CP_IS_RESPONSE_STREAM (responses));
    g_signal_connect (responses, "message", G_CALLBACK (on_chat_message), &log);
    g_signal_connect (responses, "closed", G_CALLBACK (on_stream_closed), &log);
    while (!log.closed)
      g_main_context_iteration (NULL, TRUE);
    g_assert_no_error (log.error);
    g_assert_cmpuint (messages->len, ==, G_N_ELEMENTS (expected));
    for (guint i = 0; i < messages->len; i++)
      {
        SvcPingResponse *response = g_ptr_array_index (messages, i);

        g_assert_true (SVC_IS_PING_RESPONSE (response));
        g_assert_cmpstr (svc_ping_response_get_text (response), ==, expected[i]);
        g_assert_cmpstr (svc_ping_response_get_service (response), ==, "Chat");
      }

    /* Sending after the close is refused. */
    {
      g_autoptr(SvcPingRequest) late = svc_ping_request_new ();

      g_assert_false (cp_request_stream_send (requests, CP_MESSAGE (late), &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
      g_clear_error (&error);
    }
  }

  /* Bidi cancelled before the close: nothing is sent, the stream closes
   * `canceled`. */
  {
    g_autoptr(CpRequestStream) requests = svc_calculator_call_chat (calc_proxy, NULL);
    g_autoptr(CpResponseStream) responses = NULL;
    StreamLog log = { g_ptr_array_new_with_free_func (g_object_unref), FALSE, NULL };

    cp_request_stream_cancel (requests);
    responses = cp_request_stream_close_and_receive (requests);
    g_signal_connect (responses, "message", G_CALLBACK (on_chat_message), &log);
    g_signal_connect (responses, "closed", G_CALLBACK (on_stream_closed), &log);
    while (!log.closed)
      g_main_context_iteration (NULL, TRUE);
    g_assert_error (log.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpuint (log.events->len, ==, 0);
    g_clear_error (&log.error);
    g_ptr_array_unref (log.events);
  }

  cp_skeleton_unexport (CP_SKELETON (calculator));
  cp_skeleton_unexport (CP_SKELETON (echo));
  cp_skeleton_unexport (CP_SKELETON (idle));
  cp_rpc_server_close (server);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/codegen/services/descriptor", test_descriptor);
  g_test_add_func ("/codegen/services/subclass-vfunc", test_subclass);
  g_test_add_func ("/codegen/services/several-services", test_several_services);

  return g_test_run ();
}
