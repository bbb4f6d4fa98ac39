/* test-rpc-server-interceptor.c: CpRpcServer: server interceptors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CpServerInterceptor on a server: order, rejection of unary and stream
 * calls, asynchronous decisions, headers, and the observed outcome.
 *
 * A real CpRpcServer on 127.0.0.1:0 (the fixture of rpc-test-util.c) and a
 * raw HTTP/1.1 client (rpc-test-util.h) sending exact requests, so that
 * statuses, headers and bodies can be checked against
 * https://connectrpc.com/docs/protocol and docs/engine.md "Server checks".
 */
#include <connectplugin.h>

#include "kv-test.h"
#include "rpc-test-util.h"

/* ------------------------------------------------------------------ */
/* Interceptors                                                         */

/* A synchronous interceptor that records what it saw; refuses calls with
 * reject_code when set; adds a response header and trailer. */
#define TEST_TYPE_INTERCEPTOR (test_interceptor_get_type ())
G_DECLARE_DERIVABLE_TYPE (TestInterceptor, test_interceptor, TEST, INTERCEPTOR, CpServerInterceptor)

struct _TestInterceptorClass
{
  CpServerInterceptorClass parent_class;
};

typedef struct {
  char *name;
  GString *log;              /* shared by a chain: "A,B,B:ok,A:ok," */
  Fixture *f;
  CpError reject_code;       /* 0: proceed */
  gboolean answer;           /* answer "cached" itself, then proceed */

  guint n_intercepts;
  guint n_completed;
  char *procedure;
  CpMethodKind kind;
  char *request_key;         /* NULL when the request was NULL */
  gboolean saw_request;
  char *token;               /* X-Token request header */
  char *peer;
  gint64 deadline;
  guint calls_at_intercept;  /* f->n_calls when intercepted */
  guint calls_at_completed;
  int last_code;             /* 0 = ok, -1 = not completed */

  /* Asynchronous subclass. */
  gboolean hold;             /* keep the decision in pending */
  GTask *pending;
} TestInterceptorPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (TestInterceptor, test_interceptor, CP_TYPE_SERVER_INTERCEPTOR)

static TestInterceptorPrivate *
icept (gpointer self)
{
  return test_interceptor_get_instance_private (TEST_INTERCEPTOR (self));
}

static void
test_interceptor_record (TestInterceptor *self,
                         CpInvocation    *invocation,
                         CpMessage       *request)
{
  TestInterceptorPrivate *p = icept (self);
  GSocketAddress *peer = cp_invocation_get_remote_address (invocation);

  p->n_intercepts++;
  g_string_append_printf (p->log, "%s,", p->name);
  g_free (p->procedure);
  p->procedure = g_strdup (cp_invocation_get_procedure (invocation));
  p->kind = cp_method_info_get_kind (cp_invocation_get_method_info (invocation));
  g_clear_pointer (&p->request_key, g_free);
  p->saw_request = request != NULL;
  if (KV_IS_GET_REQUEST (request))
    p->request_key = g_strdup (kv_get_request_get_key (KV_GET_REQUEST (request)));
  else if (KV_IS_WATCH_REQUEST (request))
    p->request_key = g_strdup (kv_watch_request_get_prefix (KV_WATCH_REQUEST (request)));
  g_free (p->token);
  p->token = g_strdup (soup_message_headers_get_one (cp_invocation_get_request_headers (invocation),
                                                     "X-Token"));
  g_clear_pointer (&p->peer, g_free);
  if (G_IS_INET_SOCKET_ADDRESS (peer))
    p->peer = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (peer)));
  p->deadline = cp_invocation_get_deadline (invocation);
  p->calls_at_intercept = p->f->n_calls;
  p->last_code = -1;

  soup_message_headers_append (cp_invocation_get_response_headers (invocation),
                               "x-intercepted-by", p->name);
  soup_message_headers_append (cp_invocation_get_response_trailers (invocation),
                               "x-seen-by", p->name);
}

static gboolean
test_interceptor_intercept (CpServerInterceptor  *interceptor,
                            CpInvocation         *invocation,
                            CpMessage            *request,
                            GError              **error)
{
  TestInterceptorPrivate *p = icept (interceptor);

  test_interceptor_record (TEST_INTERCEPTOR (interceptor), invocation, request);
  if (p->answer)
    {
      g_autoptr(GBytes) value = g_bytes_new_static ("cached", 6);
      g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

      cp_invocation_return_message (invocation, CP_MESSAGE (response));
      return TRUE;
    }
  if (p->reject_code != 0)
    {
      g_set_error (error, CP_ERROR, p->reject_code, "refused by %s", p->name);
      return FALSE;
    }
  return TRUE;
}

static void
test_interceptor_completed (CpServerInterceptor *interceptor,
                            CpInvocation        *invocation,
                            const GError        *error)
{
  TestInterceptorPrivate *p = icept (interceptor);

  g_assert_true (CP_IS_INVOCATION (invocation));
  g_assert_true (error == NULL || error->domain == CP_ERROR);
  p->n_completed++;
  p->last_code = error ? error->code : 0;
  p->calls_at_completed = p->f->n_calls;
  g_string_append_printf (p->log, "%s:%s,", p->name,
                          error ? cp_error_code_to_string (error->code) : "ok");
}

static void
test_interceptor_finalize (GObject *object)
{
  TestInterceptorPrivate *p = icept (object);

  g_assert_null (p->pending);
  g_free (p->name);
  g_free (p->procedure);
  g_free (p->request_key);
  g_free (p->token);
  g_free (p->peer);
  G_OBJECT_CLASS (test_interceptor_parent_class)->finalize (object);
}

static void
test_interceptor_class_init (TestInterceptorClass *klass)
{
  CpServerInterceptorClass *icept_class = CP_SERVER_INTERCEPTOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_interceptor_finalize;
  icept_class->intercept = test_interceptor_intercept;
  icept_class->completed = test_interceptor_completed;
}

static void
test_interceptor_init (TestInterceptor *self)
{
  icept (self)->last_code = -1;
}

/* The same, deciding asynchronously: in a later main-loop iteration, or
 * when the test resolves `pending` (hold). */
#define TEST_TYPE_ASYNC_INTERCEPTOR (test_async_interceptor_get_type ())
G_DECLARE_FINAL_TYPE (TestAsyncInterceptor, test_async_interceptor, TEST, ASYNC_INTERCEPTOR, TestInterceptor)

struct _TestAsyncInterceptor
{
  TestInterceptor parent_instance;
};

G_DEFINE_FINAL_TYPE (TestAsyncInterceptor, test_async_interceptor, TEST_TYPE_INTERCEPTOR)

static gboolean
async_decide_cb (gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  TestInterceptorPrivate *p = icept (g_task_get_source_object (task));

  if (p->reject_code != 0)
    g_task_return_new_error (task, CP_ERROR, p->reject_code, "refused later by %s", p->name);
  else
    g_task_return_boolean (task, TRUE);
  return G_SOURCE_REMOVE;
}

static void
test_async_interceptor_intercept_async (CpServerInterceptor *interceptor,
                                        CpInvocation        *invocation,
                                        CpMessage           *request,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  TestInterceptorPrivate *p = icept (interceptor);
  GTask *task = g_task_new (interceptor, cancellable, callback, user_data);

  test_interceptor_record (TEST_INTERCEPTOR (interceptor), invocation, request);
  g_assert_true (cancellable == cp_invocation_get_cancellable (invocation));
  if (p->hold)
    {
      g_assert_null (p->pending);
      p->pending = task;
    }
  else
    g_idle_add (async_decide_cb, task);
}

static gboolean
test_async_interceptor_intercept_finish (CpServerInterceptor  *interceptor,
                                         GAsyncResult         *result,
                                         GError              **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
test_async_interceptor_class_init (TestAsyncInterceptorClass *klass)
{
  CpServerInterceptorClass *icept_class = CP_SERVER_INTERCEPTOR_CLASS (klass);

  icept_class->intercept_async = test_async_interceptor_intercept_async;
  icept_class->intercept_finish = test_async_interceptor_intercept_finish;
}

static void
test_async_interceptor_init (TestAsyncInterceptor *self)
{
}

static TestInterceptor *
add_interceptor (Fixture    *f,
                 GType       type,
                 const char *name,
                 GString    *log)
{
  TestInterceptor *interceptor = g_object_new (type, NULL);
  TestInterceptorPrivate *p = icept (interceptor);

  p->name = g_strdup (name);
  p->log = log;
  p->f = f;
  cp_rpc_server_add_interceptor (f->server, CP_SERVER_INTERCEPTOR (interceptor));
  return interceptor;
}

/* Resolves a held asynchronous decision. */
static void
resolve_pending (TestInterceptor *interceptor, gboolean proceed)
{
  TestInterceptorPrivate *p = icept (interceptor);
  GTask *task = g_steal_pointer (&p->pending);

  g_assert_nonnull (task);
  if (proceed)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE, "decided late");
  g_object_unref (task);
}

static void
test_interceptor_order (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "B", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nX-Token: t1\r\nConnect-Timeout-Ms: 60000\r\n",
             body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "value of hello");
  /* Registration order in, reverse order out, the handler in between. */
  g_assert_cmpstr (log->str, ==, "A,B,B:ok,A:ok,");
  g_assert_cmpuint (f->n_calls, ==, 1);
  for (TestInterceptor *i = a; i != NULL; i = (i == a ? b : NULL))
    {
      TestInterceptorPrivate *p = icept (i);

      g_assert_cmpuint (p->calls_at_intercept, ==, 0);
      g_assert_cmpuint (p->calls_at_completed, ==, 1);
      g_assert_cmpstr (p->procedure, ==, KV_PROCEDURE_GET);
      g_assert_cmpint (p->kind, ==, CP_METHOD_UNARY);
      g_assert_cmpstr (p->request_key, ==, "hello");
      g_assert_cmpstr (p->token, ==, "t1");
      g_assert_cmpstr (p->peer, ==, "127.0.0.1");
      g_assert_cmpint (p->deadline, !=, G_MAXINT64);
      g_assert_cmpint (p->deadline, >, g_get_monotonic_time ());
      g_assert_cmpint (p->last_code, ==, 0);
    }
  /* Both interceptors' headers, in chain order. */
  assert_header (resp.headers, "x-intercepted-by", "A, B");
  raw_response_clear (&resp);

  /* Every call is intercepted, each once. */
  assert_server_alive (f);
  g_assert_cmpuint (icept (a)->n_intercepts, ==, 2);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 2);
  g_assert_cmpuint (icept (a)->n_completed, ==, 2);
  g_assert_cmpuint (icept (b)->n_completed, ==, 2);
  g_assert_cmpint (icept (a)->deadline, ==, G_MAXINT64);
}

static void
test_interceptor_reject_unary (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "B", log);
  g_autoptr(TestInterceptor) c = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "C", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  RawResponse resp;

  icept (b)->reject_code = CP_ERROR_UNAUTHENTICATED;
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 401);
  assert_error_json (resp.body, CP_ERROR_UNAUTHENTICATED, "refused by B");
  /* Metadata added by the interceptors that ran goes with the error. */
  assert_header (resp.headers, "x-intercepted-by", "A, B");
  assert_header (resp.headers, "Trailer-X-Seen-By", "A, B");
  raw_response_clear (&resp);

  /* Neither the handler nor C ran; A and B saw the outcome. */
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (c)->n_intercepts, ==, 0);
  g_assert_cmpuint (icept (c)->n_completed, ==, 0);
  g_assert_cmpstr (log->str, ==, "A,B,B:unauthenticated,A:unauthenticated,");

  /* The same over GET. */
  icept (b)->reject_code = CP_ERROR_RESOURCE_EXHAUSTED;
  {
    g_autofree char *target = g_strdup_printf ("%s?encoding=json&message=%%7B%%22key%%22%%3A%%22g%%22%%7D",
                                               KV_PROCEDURE_GET);
    roundtrip (f, "GET", target, NULL, NULL, &resp);
    g_assert_cmpuint (resp.status, ==, 429);
    assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, "refused by B");
    raw_response_clear (&resp);
    g_assert_cmpstr (icept (a)->request_key, ==, "g");
  }
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_RESOURCE_EXHAUSTED);
}

static void
test_interceptor_reject_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "B", log);
  RawResponse resp;
  GArray *envs;

  icept (b)->reject_code = CP_ERROR_RESOURCE_EXHAUSTED;

  /* Server stream: the request was decoded; a lone EndStream answers. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("n:3");
    g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(GError) error = NULL;

    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, env, &resp);
    g_assert_cmpuint (envs->len, ==, 1);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 0).payload, trailers);
    g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    g_assert_cmpstr (error->message, ==, "refused later by B");
    assert_header (trailers, "x-seen-by", "A, B");
    assert_header (resp.headers, "x-intercepted-by", "A, B");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
    g_assert_cmpstr (icept (a)->request_key, ==, "n:3");
    g_assert_cmpint (icept (a)->kind, ==, CP_METHOD_SERVER_STREAMING);
  }

  /* Client stream: intercepted before any request is read (request NULL). */
  {
    const char *keys[] = { "a", "b", NULL };
    g_autoptr(GBytes) body = put_envelopes (keys);
    g_autoptr(GError) error = stream_call_error (f, SUM_PROCEDURE, NULL, body);

    g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    g_assert_false (icept (a)->saw_request);
    g_assert_false (icept (b)->saw_request);
    g_assert_cmpint (icept (a)->kind, ==, CP_METHOD_CLIENT_STREAMING);
  }

  /* Bidi, refused by the synchronous one. */
  icept (b)->reject_code = 0;
  icept (a)->reject_code = CP_ERROR_PERMISSION_DENIED;
  {
    g_autoptr(GBytes) body = watch_request_envelope ("x");
    g_autoptr(GError) error = stream_call_error (f, ECHO_PROCEDURE, NULL, body);

    g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
    g_assert_false (icept (a)->saw_request);
  }

  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 2);
  g_assert_cmpstr (log->str, ==,
                   "A,B,B:resource_exhausted,A:resource_exhausted,"
                   "A,B,B:resource_exhausted,A:resource_exhausted,"
                   "A,A:permission_denied,");
  icept (a)->reject_code = 0;
  assert_server_alive (f);
}

static void
test_interceptor_async (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "A", log);
  g_autoptr(TestInterceptor) b = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "B", log);
  g_autoptr(GBytes) body = get_request_proto ("later");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                             "Content-Type: application/proto\r\n", body);
  RawConn *rc;
  RawResponse resp;

  /* The call waits for the decision: nothing runs after A until then. */
  icept (a)->hold = TRUE;
  rc = raw_conn_new (f->url);
  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  while (icept (a)->pending == NULL)
    g_main_context_iteration (NULL, TRUE);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 0);

  resolve_pending (a, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);
  raw_conn_free (rc);
  g_assert_cmpuint (f->n_calls, ==, 1);
  g_assert_cmpstr (log->str, ==, "A,B,B:ok,A:ok,");

  /* A late refusal. */
  g_string_truncate (log, 0);
  rc = raw_conn_new (f->url);
  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  while (icept (a)->pending == NULL)
    g_main_context_iteration (NULL, TRUE);
  resolve_pending (a, FALSE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 503);
  assert_error_json (resp.body, CP_ERROR_UNAVAILABLE, "decided late");
  raw_response_clear (&resp);
  raw_conn_free (rc);
  g_assert_cmpuint (f->n_calls, ==, 1);
  g_assert_cmpstr (log->str, ==, "A,A:unavailable,");

  /* Decided in a later iteration, without the test's help. */
  icept (a)->hold = FALSE;
  icept (a)->reject_code = CP_ERROR_UNAUTHENTICATED;
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 401);
  raw_response_clear (&resp);
  g_assert_cmpuint (f->n_calls, ==, 1);
}

static void
test_interceptor_headers (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  RawResponse resp;

  /* Unary: next to the handler's own metadata. */
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "x-intercepted-by", "A");
  assert_header (resp.headers, "Trailer-X-Seen-By", "A");
  assert_header (resp.headers, "x-custom-header", "foo, bar");
  assert_header (resp.headers, "Trailer-X-Custom-Trailer", "bing, quux");
  raw_response_clear (&resp);

  /* Server stream: the header leads, the trailer is in the EndStream. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("n:2");
    g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(GError) error = NULL;
    GArray *envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, env, &resp);

    g_assert_cmpuint (envs->len, ==, 3);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 2).payload, trailers);
    g_assert_no_error (error);
    assert_header (resp.headers, "x-intercepted-by", "A");
    assert_header (resp.headers, "x-custom-header", "foo, bar");
    assert_header (trailers, "x-seen-by", "A");
    assert_header (trailers, "x-custom-trailer", "bing, quux");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
  g_assert_cmpuint (f->n_calls, ==, 2);
}

static void
test_interceptor_outcome (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  RawResponse resp;

  /* The handler's error. */
  {
    g_autofree char *key = g_strdup_printf ("error:%d", CP_ERROR_NOT_FOUND);
    g_autoptr(GBytes) body = get_request_proto (key);

    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
    g_assert_cmpuint (resp.status, ==, 404);
    raw_response_clear (&resp);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_NOT_FOUND);
  }

  /* A handler that answers nothing: internal. */
  {
    g_autoptr(GBytes) body = get_request_proto ("no-answer");

    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
    g_assert_cmpuint (resp.status, ==, 500);
    raw_response_clear (&resp);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_INTERNAL);
  }

  /* The deadline passes while the handler works. */
  {
    g_autoptr(GBytes) body = get_request_proto ("slow");

    roundtrip (f, "POST", KV_PROCEDURE_GET,
               "Content-Type: application/proto\r\nConnect-Timeout-Ms: 50\r\n", body, &resp);
    g_assert_cmpuint (resp.status, ==, 504);
    raw_response_clear (&resp);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_DEADLINE_EXCEEDED);
    g_assert_nonnull (f->held);
    g_clear_object (&f->held);
  }

  /* The client goes away in the middle of a stream. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("forever");
    g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                               "Content-Type: application/connect+proto\r\n", env);
    RawConn *rc = raw_conn_new (f->url);
    guint n_completed;

    g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
    g_assert_true (raw_read_head (rc, &resp));
    raw_response_clear (&resp);
    g_assert_nonnull (f->held);
    n_completed = icept (a)->n_completed;
    g_assert_cmpint (icept (a)->last_code, ==, -1);

    raw_conn_free (rc);
    while (icept (a)->n_completed == n_completed)
      g_main_context_iteration (NULL, TRUE);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_CANCELED);
    g_assert_true (f->held_cancelled);
    cp_invocation_return_ok (f->held);
    g_clear_object (&f->held);
  }

  g_assert_cmpuint (icept (a)->n_completed, ==, 4);
  g_assert_cmpstr (log->str, ==, "A,A:not_found,A,A:internal,A,A:deadline_exceeded,A,A:canceled,");
}

/* The deadline passes, or the client leaves, while a decision is pending:
 * the call ends then and there; the handler never runs. */
static void
test_interceptor_outcome_pending (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) a = add_interceptor (f, TEST_TYPE_ASYNC_INTERCEPTOR, "A", log);
  g_autoptr(GBytes) body = get_request_proto ("hello");
  RawResponse resp;

  icept (a)->hold = TRUE;
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 50\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 504);
  assert_error_json (resp.body, CP_ERROR_DEADLINE_EXCEEDED, NULL);
  raw_response_clear (&resp);
  g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_DEADLINE_EXCEEDED);
  /* The decision comes too late: ignored. */
  resolve_pending (a, TRUE);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpuint (f->n_calls, ==, 0);

  /* Client gone. */
  {
    g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                               "Content-Type: application/proto\r\n", body);
    RawConn *rc = raw_conn_new (f->url);

    g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
    while (icept (a)->pending == NULL)
      g_main_context_iteration (NULL, TRUE);
    raw_conn_free (rc);
    while (icept (a)->n_completed < 2)
      g_main_context_iteration (NULL, TRUE);
    g_assert_cmpint (icept (a)->last_code, ==, CP_ERROR_CANCELED);
    resolve_pending (a, TRUE);
    for (int i = 0; i < 10; i++)
      g_main_context_iteration (NULL, FALSE);
  }
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpstr (log->str, ==, "A,A:deadline_exceeded,A,A:canceled,");
  icept (a)->hold = FALSE;
  assert_server_alive (f);
  g_assert_cmpuint (f->n_calls, ==, 1);
}

static void
on_observed (CpServerInterceptor *observer,
             CpInvocation        *invocation,
             const GError        *error,
             gpointer             user_data)
{
  GString *seen = user_data;

  g_string_append_printf (seen, "%s:%s,", cp_invocation_get_procedure (invocation),
                          error ? cp_error_code_to_string (error->code) : "ok");
}

/* An interceptor may answer the call itself: the chain stops there. The
 * plain base class lets calls through and emits ::completed. */
static void
test_interceptor_answers (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(GString) seen = g_string_new (NULL);
  g_autoptr(CpServerInterceptor) observer = cp_server_interceptor_new ();
  g_autoptr(TestInterceptor) a = NULL;
  g_autoptr(TestInterceptor) b = NULL;
  g_autoptr(GBytes) body = get_request_proto ("hello");
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  g_signal_connect (observer, "completed", G_CALLBACK (on_observed), seen);
  cp_rpc_server_add_interceptor (f->server, observer);
  a = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "A", log);
  b = add_interceptor (f, TEST_TYPE_INTERCEPTOR, "B", log);
  icept (a)->answer = TRUE;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "cached");
  assert_header (resp.headers, "x-intercepted-by", "A");
  raw_response_clear (&resp);
  g_assert_cmpuint (f->n_calls, ==, 0);
  g_assert_cmpuint (icept (b)->n_intercepts, ==, 0);
  g_assert_cmpstr (log->str, ==, "A,A:ok,");
  g_assert_cmpstr (seen->str, ==, KV_PROCEDURE_GET ":ok,");
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/rpc/server/interceptor/order", test_interceptor_order);
  ADD ("/rpc/server/interceptor/reject-unary", test_interceptor_reject_unary);
  ADD ("/rpc/server/interceptor/reject-stream", test_interceptor_reject_stream);
  ADD ("/rpc/server/interceptor/async", test_interceptor_async);
  ADD ("/rpc/server/interceptor/headers", test_interceptor_headers);
  ADD ("/rpc/server/interceptor/outcome", test_interceptor_outcome);
  ADD ("/rpc/server/interceptor/outcome-pending", test_interceptor_outcome_pending);
  ADD ("/rpc/server/interceptor/answers", test_interceptor_answers);
#undef ADD

  return g_test_run ();
}
