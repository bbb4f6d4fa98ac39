/* test-client-interceptor.c: CpClientInterceptor on a CpChannel, in call
 * options and on a CpClient
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real CpRpcServer (over TCP and in-process) counts the requests it sees
 * and what headers they carried, and answers with response headers and
 * trailers; a recording interceptor subclass logs its decisions and the
 * outcomes it is told ("A B | B:ok A:ok"), and may add a header, fail or
 * answer the call, synchronously or from a later main-loop iteration.
 */
#include <string.h>
#include "client-test-util.h"
#include "cp-call-options-private.h"
#include "cp-channel-private.h"

#define KV_PROCEDURE_PUT_MANY "/kv.v1.KVService/PutMany"

/* ------------------------------------------------------------------------ */
/* A recording interceptor                                                   */

typedef enum {
  MODE_PROCEED,
  MODE_FAIL,          /* permission_denied "refused by NAME" */
  MODE_ANSWER,        /* a KvGetResponse with found = TRUE */
  MODE_FAIL_NO_ERROR, /* FALSE without an error: a programming error */
} Mode;

/* Declared by hand: TestAsyncInterceptor derives from it. */
typedef struct _TestInterceptor TestInterceptor;
typedef struct {
  CpClientInterceptorClass parent_class;
} TestInterceptorClass;

static GType test_interceptor_get_type (void);
#define TEST_TYPE_INTERCEPTOR (test_interceptor_get_type ())
#define TEST_INTERCEPTOR(o) (G_TYPE_CHECK_INSTANCE_CAST ((o), TEST_TYPE_INTERCEPTOR, TestInterceptor))
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestInterceptor, g_object_unref)

struct _TestInterceptor
{
  CpClientInterceptor parent_instance;

  char *name;
  GString *log;            /* shared by the interceptors of a test */
  Mode mode;
  gboolean async;          /* decide from an idle */
  char *add_header;        /* "name: value" to add, or NULL */

  /* What completed saw, last time. */
  guint n_completed;
  CpError code;            /* 0: success; -1: cancelled */
  guint attempts;
  gint64 duration;
  char *response_header;   /* x-resp */
  char *response_trailer;  /* x-trail */
  CpMessage *response;
  CpMethodKind kind;
  gboolean had_request;
};

G_DEFINE_TYPE (TestInterceptor, test_interceptor, CP_TYPE_CLIENT_INTERCEPTOR)

static gboolean
decide (TestInterceptor  *self,
        CpClientCall     *call,
        GError          **error)
{
  g_string_append_printf (self->log, "%s ", self->name);
  /* (A call cancelled while this one decided is over already.) */
  g_assert_cmpuint (cp_client_call_get_attempts (call), ==, 0);
  if (self->add_header != NULL)
    {
      g_auto(GStrv) parts = g_strsplit (self->add_header, ": ", 2);

      soup_message_headers_replace (cp_client_call_get_request_headers (call), parts[0], parts[1]);
    }
  switch (self->mode)
    {
    case MODE_FAIL:
      g_set_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED, "refused by %s", self->name);
      return FALSE;
    case MODE_ANSWER:
      {
        g_autoptr(KvGetResponse) answer = kv_test_get_response (NULL, TRUE);

        cp_client_call_return_message (call, CP_MESSAGE (answer));
        return TRUE;
      }
    case MODE_FAIL_NO_ERROR:
      return FALSE;
    case MODE_PROCEED:
    default:
      return TRUE;
    }
}

static gboolean
test_interceptor_intercept (CpClientInterceptor  *interceptor,
                            CpClientCall         *call,
                            GError              **error)
{
  return decide (TEST_INTERCEPTOR (interceptor), call, error);
}

typedef struct {
  GTask *task;
  CpClientCall *call;
} Pending;

static gboolean
decide_later (gpointer user_data)
{
  Pending *p = user_data;
  TestInterceptor *self = g_task_get_source_object (p->task);
  GError *error = NULL;

  if (decide (self, p->call, &error))
    g_task_return_boolean (p->task, TRUE);
  else if (error != NULL)
    g_task_return_error (p->task, error);
  else
    g_task_return_boolean (p->task, FALSE);
  g_object_unref (p->task);
  cp_client_call_unref (p->call);
  g_free (p);
  return G_SOURCE_REMOVE;
}

static void
test_interceptor_intercept_async (CpClientInterceptor *interceptor,
                                  CpClientCall        *call,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  TestInterceptor *self = TEST_INTERCEPTOR (interceptor);
  Pending *p = g_new0 (Pending, 1);

  p->task = g_task_new (self, cancellable, callback, user_data);
  p->call = cp_client_call_ref (call);
  if (self->async)
    g_timeout_add (20, decide_later, p);
  else
    decide_later (p);
}

static gboolean
test_interceptor_intercept_finish (CpClientInterceptor  *interceptor,
                                   GAsyncResult         *result,
                                   GError              **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
test_interceptor_completed (CpClientInterceptor *interceptor,
                            CpClientCall        *call,
                            const GError        *error)
{
  TestInterceptor *self = TEST_INTERCEPTOR (interceptor);
  const char *code = "ok";

  g_assert_true (cp_client_call_is_completed (call));
  self->n_completed++;
  if (error == NULL)
    self->code = 0;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    self->code = -1;
  else
    {
      g_assert_true (error->domain == CP_ERROR);
      self->code = error->code;
    }
  if (error != NULL)
    code = self->code == (CpError) -1 ? "cancelled" : cp_error_code_to_string (self->code);
  g_string_append_printf (self->log, "%s:%s ", self->name, code);
  self->attempts = cp_client_call_get_attempts (call);
  self->duration = cp_client_call_get_duration (call);
  g_free (self->response_header);
  self->response_header = g_strdup (soup_message_headers_get_one (
    cp_client_call_get_response_headers (call), "x-resp"));
  g_free (self->response_trailer);
  self->response_trailer = g_strdup (soup_message_headers_get_one (
    cp_client_call_get_response_trailers (call), "x-trail"));
  g_set_object (&self->response, cp_client_call_get_response (call));
  self->kind = cp_client_call_get_method_kind (call);
  self->had_request = cp_client_call_get_request (call) != NULL;
}

static void
test_interceptor_finalize (GObject *object)
{
  TestInterceptor *self = TEST_INTERCEPTOR (object);

  g_free (self->name);
  g_free (self->add_header);
  g_free (self->response_header);
  g_free (self->response_trailer);
  g_clear_object (&self->response);

  G_OBJECT_CLASS (test_interceptor_parent_class)->finalize (object);
}

static void
test_interceptor_class_init (TestInterceptorClass *klass)
{
  CpClientInterceptorClass *interceptor_class = CP_CLIENT_INTERCEPTOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_interceptor_finalize;
  interceptor_class->intercept = test_interceptor_intercept;
  interceptor_class->completed = test_interceptor_completed;
}

static void
test_interceptor_init (TestInterceptor *self)
{
}

/* @async: override the async pair (deciding after 20 ms). */
static TestInterceptor *
test_interceptor_new (const char *name,
                      GString    *log,
                      Mode        mode,
                      gboolean    async)
{
  TestInterceptor *self = g_object_new (TEST_TYPE_INTERCEPTOR, NULL);

  self->name = g_strdup (name);
  self->log = log;
  self->mode = mode;
  self->async = async;
  return self;
}

/* The same decisions through intercept_async, from a timeout. */
typedef TestInterceptor TestAsyncInterceptor;
typedef TestInterceptorClass TestAsyncInterceptorClass;

static GType test_async_interceptor_get_type (void);
#define TEST_TYPE_ASYNC_INTERCEPTOR (test_async_interceptor_get_type ())

G_DEFINE_TYPE (TestAsyncInterceptor, test_async_interceptor, TEST_TYPE_INTERCEPTOR)

static void
test_async_interceptor_class_init (TestAsyncInterceptorClass *klass)
{
  CpClientInterceptorClass *interceptor_class = CP_CLIENT_INTERCEPTOR_CLASS (klass);

  interceptor_class->intercept_async = test_interceptor_intercept_async;
  interceptor_class->intercept_finish = test_interceptor_intercept_finish;
}

static void
test_async_interceptor_init (TestAsyncInterceptor *self)
{
}

static TestInterceptor *
test_async_interceptor_new (const char *name,
                            GString    *log,
                            Mode        mode)
{
  TestInterceptor *self = g_object_new (TEST_TYPE_ASYNC_INTERCEPTOR, NULL);

  self->name = g_strdup (name);
  self->log = log;
  self->mode = mode;
  self->async = TRUE;
  return self;
}

/* ------------------------------------------------------------------------ */
/* The server                                                                */

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  GString *log;
  guint n_unary;
  guint n_watch;
  guint n_put_many;
  char *seen_header;      /* x-added of the last request */
  char *seen_replaced;    /* x-replaced */
  char *seen_channel;     /* x-channel */
} Fixture;

static void
remember_headers (Fixture      *f,
                  CpInvocation *invocation)
{
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);

  g_free (f->seen_header);
  f->seen_header = g_strdup (soup_message_headers_get_one (headers, "x-added"));
  g_free (f->seen_replaced);
  f->seen_replaced = g_strdup (soup_message_headers_get_one (headers, "x-replaced"));
  g_free (f->seen_channel);
  f->seen_channel = g_strdup (soup_message_headers_get_one (headers, "x-channel"));
  soup_message_headers_replace (cp_invocation_get_response_headers (invocation), "x-resp", "r");
  soup_message_headers_replace (cp_invocation_get_response_trailers (invocation), "x-trail", "t");
}

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  g_autoptr(KvGetResponse) response = NULL;

  f->n_unary++;
  g_string_append (f->log, "| ");
  remember_headers (f, invocation);
  if (g_str_equal (key, "missing"))
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND, "no such key");
      return;
    }
  response = kv_test_get_response (NULL, FALSE);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "k", NULL);

  f->n_watch++;
  g_string_append (f->log, "| ");
  remember_headers (f, invocation);
  cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
  cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
  cp_invocation_return_ok (invocation);
}

static void
handle_put_many (CpInvocation *invocation,
                 CpMessage    *request,
                 gpointer      user_data)
{
  Fixture *f = user_data;

  f->n_put_many++;
  g_string_append (f->log, "| ");
  remember_headers (f, invocation);
  test_receive_all_then_found (invocation);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(CpMethodInfo) put_many = cp_method_info_new (KV_PROCEDURE_PUT_MANY, CP_METHOD_CLIENT_STREAMING,
                                                         KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;

  memset (f, 0, sizeof *f);
  f->log = g_string_new (NULL);
  f->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (f->server, get, handle_get, f, NULL);
  cp_rpc_server_add_method (f->server, watch, handle_watch, f, NULL);
  cp_rpc_server_add_method (f->server, put_many, handle_put_many, f, NULL);

  f->channel = test_channel_new (f->server, data);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  cp_rpc_server_close (f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->server);
  g_string_free (f->log, TRUE);
  g_free (f->seen_header);
  g_free (f->seen_replaced);
  g_free (f->seen_channel);
}

static CpMessage *
get (Fixture        *f,
     const char     *key,
     CpCallOptions  *options,
     GError        **error)
{
  return test_kv_get (f->channel, key, options, error);
}

static void
assert_log (Fixture    *f,
            const char *expected)
{
  g_strchomp (f->log->str);
  g_assert_cmpstr (f->log->str, ==, expected);
  g_string_truncate (f->log, 0);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */

static void
test_header (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(TestInterceptor) a = test_interceptor_new ("A", f->log, MODE_PROCEED, FALSE);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  a->add_header = g_strdup ("x-added: by-A");
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (a));
  cp_channel_set_header (f->channel, "x-channel", "c");
  soup_message_headers_append (cp_call_options_get_request_headers (options), "x-replaced", "old");
  /* It sees the options' and the channel's headers, and may change them;
   * protocol headers it adds are left out. */
  {
    g_autoptr(TestInterceptor) b = test_interceptor_new ("B", f->log, MODE_PROCEED, FALSE);

    b->add_header = g_strdup ("x-replaced: new");
    cp_call_options_add_interceptor (options, CP_CLIENT_INTERCEPTOR (b));
  }
  {
    g_autoptr(TestInterceptor) c = test_interceptor_new ("C", f->log, MODE_PROCEED, FALSE);

    c->add_header = g_strdup ("Content-Type: text/plain");
    cp_call_options_add_interceptor (options, CP_CLIENT_INTERCEPTOR (c));
  }

  response = get (f, "k", options, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (response));
  g_assert_cmpuint (f->n_unary, ==, 1);
  g_assert_cmpstr (f->seen_header, ==, "by-A");
  g_assert_cmpstr (f->seen_replaced, ==, "new");
  g_assert_cmpstr (f->seen_channel, ==, "c");
  assert_log (f, "A B C | C:ok B:ok A:ok");
  /* The caller's options were not changed by the interceptors. */
  g_assert_cmpstr (soup_message_headers_get_one (cp_call_options_get_request_headers (options),
                                                 "x-replaced"), ==, "old");
}

static void
test_local_answer (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(TestInterceptor) a = test_interceptor_new ("A", f->log, MODE_PROCEED, FALSE);
  g_autoptr(TestInterceptor) b = test_interceptor_new ("B", f->log, MODE_ANSWER, FALSE);
  g_autoptr(TestInterceptor) c = test_interceptor_new ("C", f->log, MODE_PROCEED, FALSE);
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (a));
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (b));
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (c));
  /* Answered before the breaker: an open one does not matter. */
  cp_circuit_breaker_force_open (breaker);
  cp_channel_set_circuit_breaker (f->channel, breaker);

  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (KV_GET_RESPONSE (response)));
  g_assert_cmpuint (f->n_unary, ==, 0);
  /* C was never asked, so it is not told. */
  assert_log (f, "A B B:ok A:ok");
  g_assert_cmpuint (c->n_completed, ==, 0);
  g_assert_true (a->response == response);
  g_assert_cmpuint (a->attempts, ==, 0);
  g_assert_null (a->response_header);

  /* The same answer through a blocking call. */
  {
    g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
    g_autoptr(CpMessage) sync_response =
      cp_channel_call_sync (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                            KV_TYPE_GET_RESPONSE, NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (KV_IS_GET_RESPONSE (sync_response));
  }
  g_assert_cmpuint (f->n_unary, ==, 0);
  assert_log (f, "A B B:ok A:ok");
}

static void
test_local_failure (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TestInterceptor) a = test_interceptor_new ("A", f->log, MODE_PROCEED, FALSE);
  g_autoptr(TestInterceptor) b = test_interceptor_new ("B", f->log, MODE_FAIL, FALSE);
  g_autoptr(TestInterceptor) c = test_interceptor_new ("C", f->log, MODE_PROCEED, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (a));
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (b));
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (c));

  response = get (f, "k", NULL, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_cmpstr (error->message, ==, "refused by B");
  g_clear_error (&error);
  g_assert_cmpuint (f->n_unary, ==, 0);
  assert_log (f, "A B B:permission_denied A:permission_denied");
  g_assert_cmpuint (a->attempts, ==, 0);

  /* Without an error: `internal`, naming the interceptor. */
  b->mode = MODE_FAIL_NO_ERROR;
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  g_assert_nonnull (strstr (error->message, "TestInterceptor"));
  g_assert_cmpuint (f->n_unary, ==, 0);
  assert_log (f, "A B B:internal A:internal");
}

static void
test_completed (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(TestInterceptor) a = test_interceptor_new ("A", f->log, MODE_PROCEED, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  gint64 start, elapsed;

  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (a));

  /* A success: headers and trailers of the answer, the response. */
  start = g_get_monotonic_time ();
  response = get (f, "k", NULL, &error);
  elapsed = g_get_monotonic_time () - start;
  g_assert_no_error (error);
  g_assert_cmpuint (a->n_completed, ==, 1);
  g_assert_cmpint (a->code, ==, 0);
  g_assert_cmpuint (a->attempts, ==, 1);
  g_assert_cmpstr (a->response_header, ==, "r");
  g_assert_cmpstr (a->response_trailer, ==, "t");
  g_assert_true (a->response == response);
  g_assert_cmpint (a->kind, ==, CP_METHOD_UNARY);
  g_assert_true (a->had_request);
  g_assert_cmpint (a->duration, >, 0);
  g_assert_cmpint (a->duration, <=, elapsed);
  g_clear_object (&response);

  /* An error of the server: its code, and its trailers. */
  response = get (f, "missing", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpuint (a->n_completed, ==, 2);
  g_assert_cmpint (a->code, ==, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (a->response_header, ==, "r");
  g_assert_cmpstr (a->response_trailer, ==, "t");
  g_assert_null (a->response);
  assert_log (f, "A | A:ok A | A:not_found");
}

static void
count_completed (CpClientInterceptor *interceptor,
                 CpClientCall        *call,
                 const GError        *error,
                 guint               *count)
{
  g_assert_true (cp_client_call_is_completed (call));
  (*count)++;
}

static void
test_observer (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpClientInterceptor) observer = cp_client_interceptor_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  guint count = 0;

  /* The base class lets calls go on; the signal tells outcomes. */
  g_signal_connect (observer, "completed", G_CALLBACK (count_completed), &count);
  cp_channel_add_interceptor (f->channel, observer);
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&response);
  response = get (f, "missing", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpuint (count, ==, 2);
  g_assert_cmpuint (f->n_unary, ==, 2);
}

static void
test_async (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(TestInterceptor) a = test_async_interceptor_new ("A", f->log, MODE_PROCEED);
  g_autoptr(TestInterceptor) b = test_interceptor_new ("B", f->log, MODE_PROCEED, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  a->add_header = g_strdup ("x-added: later");
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (a));
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (b));

  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (f->seen_header, ==, "later");
  assert_log (f, "A B | B:ok A:ok");
  g_clear_object (&response);

  /* An asynchronous refusal; nothing sent. */
  a->mode = MODE_FAIL;
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_assert_cmpuint (f->n_unary, ==, 1);
  assert_log (f, "A A:permission_denied");

  /* An asynchronous answer. */
  a->mode = MODE_ANSWER;
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (KV_GET_RESPONSE (response)));
  g_assert_cmpuint (f->n_unary, ==, 1);
  assert_log (f, "A A:ok");
  g_clear_object (&response);

  /* Cancelled while the interceptor decides: G_IO_ERROR_CANCELLED and
   * nothing sent. */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();
    g_autoptr(KvGetRequest) request = kv_test_get_request ("k");

    a->mode = MODE_PROCEED;
    g_cancellable_cancel (cancellable);
    response = test_call_unary (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                KV_TYPE_GET_RESPONSE, NULL, cancellable, &error);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpuint (f->n_unary, ==, 1);
    assert_log (f, "A A:cancelled");
  }
}

static void
test_order (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GPtrArray) client = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(TestInterceptor) own1 = test_interceptor_new ("own1", f->log, MODE_PROCEED, FALSE);
  g_autoptr(TestInterceptor) own2 = test_async_interceptor_new ("own2", f->log, MODE_PROCEED);
  g_autoptr(TestInterceptor) call1 = test_interceptor_new ("call1", f->log, MODE_PROCEED, FALSE);
  g_autoptr(TestInterceptor) call2 = test_interceptor_new ("call2", f->log, MODE_PROCEED, FALSE);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (own1));
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (own2));
  /* A client's, set after the channel's own, still come first. */
  g_ptr_array_add (client, test_interceptor_new ("client1", f->log, MODE_PROCEED, FALSE));
  g_ptr_array_add (client, test_interceptor_new ("client2", f->log, MODE_PROCEED, FALSE));
  cp_channel_set_client_interceptors (f->channel, client);
  cp_call_options_add_interceptor (options, CP_CLIENT_INTERCEPTOR (call1));
  cp_call_options_add_interceptor (options, CP_CLIENT_INTERCEPTOR (call2));

  response = get (f, "k", options, &error);
  g_assert_no_error (error);
  assert_log (f, "client1 client2 own1 own2 call1 call2 | "
                 "call2:ok call1:ok own2:ok own1:ok client2:ok client1:ok");
  g_clear_object (&response);

  /* Without the options, the call's are not there. */
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  assert_log (f, "client1 client2 own1 own2 | own2:ok own1:ok client2:ok client1:ok");
  g_clear_object (&response);

  /* An exempt call (a CpClient's own) skips the channel's, not its own. */
  cp_call_options_set_circuit_breaker_exempt (options, TRUE);
  response = get (f, "k", options, &error);
  g_assert_no_error (error);
  assert_log (f, "call1 call2 | call2:ok call1:ok");
}

static void
test_server_stream (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(TestInterceptor) a = test_async_interceptor_new ("A", f->log, MODE_PROCEED);
  g_autoptr(TestInterceptor) b = test_interceptor_new ("B", f->log, MODE_PROCEED, FALSE);
  g_autoptr(KvWatchRequest) request = kv_test_watch_request ("");
  StreamRun run;

  a->add_header = g_strdup ("x-added: stream");
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (a));
  cp_channel_add_interceptor (f->channel, CP_CLIENT_INTERCEPTOR (b));

  stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                        CP_MESSAGE (request),
                                                        KV_TYPE_WATCH_EVENT, NULL));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, 2);
  g_assert_cmpstr (f->seen_header, ==, "stream");
  /* At the start, before anything was sent; told the final status. */
  assert_log (f, "A B | B:ok A:ok");
  g_assert_cmpint (b->kind, ==, CP_METHOD_SERVER_STREAMING);
  g_assert_true (b->had_request);
  g_assert_cmpstr (b->response_header, ==, "r");
  g_assert_cmpstr (b->response_trailer, ==, "t");
  g_assert_cmpuint (b->attempts, ==, 1);
  stream_run_clear (&run);

  /* Failed at the start: closed with the error, nothing sent. */
  b->mode = MODE_FAIL;
  stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                        CP_MESSAGE (request),
                                                        KV_TYPE_WATCH_EVENT, NULL));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_false (run.got_headers);
  g_assert_cmpuint (f->n_watch, ==, 1);
  assert_log (f, "A B B:permission_denied A:permission_denied");
  stream_run_clear (&run);

  /* Cancelled while A decides: closed once, A told. */
  b->mode = MODE_PROCEED;
  stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                        CP_MESSAGE (request),
                                                        KV_TYPE_WATCH_EVENT, NULL));
  cp_response_stream_start (run.stream);
  cp_response_stream_cancel (run.stream);
  stream_run_wait (&run);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* Let A's decision come: it changes nothing. */
  {
    gint64 end = g_get_monotonic_time () + 60 * 1000;

    while (g_get_monotonic_time () < end)
      g_main_context_iteration (NULL, FALSE);
  }
  g_assert_cmpuint (f->n_watch, ==, 1);
  g_assert_cmpuint (run.n_closed, ==, 1);
  assert_log (f, "A:cancelled A");
  stream_run_clear (&run);
}

static CpRequestStream *
put_many_stream (Fixture       *f,
                 CpCallOptions *options)
{
  g_autoptr(GBytes) value = g_bytes_new_static ("v", 1);
  g_autoptr(KvPutRequest) put = kv_test_put_request ("k", value);
  g_autoptr(GError) error = NULL;
  CpRequestStream *stream = cp_channel_call_client_stream (f->channel, KV_PROCEDURE_PUT_MANY,
                                                           KV_TYPE_GET_RESPONSE, options);

  g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (put), &error));
  g_assert_no_error (error);
  return stream;
}

static void
test_client_stream_calls (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(TestInterceptor) a = test_interceptor_new ("A", f->log, MODE_PROCEED, FALSE);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();

  a->add_header = g_strdup ("x-added: client-stream");
  cp_call_options_add_interceptor (options, CP_CLIENT_INTERCEPTOR (a));

  /* close_async: decided at close, told the response. */
  {
    g_autoptr(CpRequestStream) stream = put_many_stream (f, options);
    g_autoptr(GError) error = NULL;
    g_autoptr(CpMessage) response = NULL;

    g_assert_cmpstr (f->log->str, ==, "");
    response = test_client_stream (stream, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (f->seen_header, ==, "client-stream");
    assert_log (f, "A | A:ok");
    g_assert_cmpint (a->kind, ==, CP_METHOD_CLIENT_STREAMING);
    g_assert_false (a->had_request);
    g_assert_true (a->response == response);
    g_assert_cmpstr (a->response_trailer, ==, "t");
  }

  /* close_and_receive: the same, at the response stream's start. */
  {
    g_autoptr(CpRequestStream) stream = put_many_stream (f, options);
    StreamRun run;

    stream_run_init (&run, cp_request_stream_close_and_receive (stream));
    stream_run_wait (&run);
    g_assert_no_error (run.error);
    g_assert_cmpuint (run.messages->len, ==, 1);
    assert_log (f, "A | A:ok");
    stream_run_clear (&run);
  }

  /* Failed: nothing sent. */
  a->mode = MODE_FAIL;
  {
    g_autoptr(CpRequestStream) stream = put_many_stream (f, options);
    g_autoptr(GError) error = NULL;
    g_autoptr(CpMessage) response = test_client_stream (stream, &error);

    g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
    assert_log (f, "A A:permission_denied");
  }
  g_assert_cmpuint (f->n_put_many, ==, 2);
}

/* ------------------------------------------------------------------------ */
/* On a CpClient                                                             */

typedef struct {
  GString *log;
  guint n_get;
} KvServer;

static gboolean
kv_handle_get (KvKVService  *service,
               CpInvocation *invocation,
               KvGetRequest *request,
               KvServer     *kv)
{
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);
  const char *header = soup_message_headers_get_one (cp_invocation_get_request_headers (invocation),
                                                     "x-added");

  kv->n_get++;
  g_string_append_printf (kv->log, "| %s ", header ? header : "-");
  kv_kv_service_complete_get (service, invocation, response);
  return TRUE;
}

static void
connect_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_client_connect_finish (CP_CLIENT (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static void
get_done (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = kv_kv_service_call_get_finish (KV_KV_SERVICE (source),
                                                                     result, &error);

  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (response));
  *(gboolean *) user_data = TRUE;
}

static void
proxy_get (CpProxy       *proxy,
           CpCallOptions *options)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  gboolean done = FALSE;

  kv_kv_service_call_get (KV_KV_SERVICE (proxy), request, options, NULL, get_done, &done);
  test_wait_for (&done);
}

static void
test_client (void)
{
  g_autoptr(CpServer) server = cp_server_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("kv", "1.0.0");
  g_autoptr(KvKVService) impl = kv_kv_service_skeleton_new ();
  g_autoptr(CpInProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) log = g_string_new (NULL);
  g_autoptr(TestInterceptor) first = test_interceptor_new ("client1", log, MODE_PROCEED, FALSE);
  g_autoptr(TestInterceptor) second = test_interceptor_new ("client2", log, MODE_PROCEED, FALSE);
  g_autoptr(TestInterceptor) own = test_interceptor_new ("own", log, MODE_PROCEED, FALSE);
  g_autoptr(TestInterceptor) call = test_interceptor_new ("call", log, MODE_PROCEED, FALSE);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  const char *plugins[] = { "kv", NULL };
  KvServer kv = { log, 0 };
  gboolean connected = FALSE;

  g_signal_connect (impl, "handle-get", G_CALLBACK (kv_handle_get), &kv);
  cp_plugin_add_service (plugin, CP_SKELETON (impl));
  cp_server_add_plugin (server, plugin);
  discovery = cp_in_process_discovery_new_for_server (server);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);

  /* Set before connecting: applied to the channel it connects with. The
   * handshake and health checks are not intercepted. */
  first->add_header = g_strdup ("x-added: client");
  cp_client_add_interceptor (client, CP_CLIENT_INTERCEPTOR (first));
  cp_client_set_retry_policy (client, policy);
  cp_client_connect_async (client, NULL, connect_done, &connected);
  test_wait_for (&connected);
  g_assert_cmpstr (log->str, ==, "");
  g_assert_true (cp_channel_get_retry_policy (cp_client_get_channel (client)) == policy);
  g_assert_true (cp_client_get_retry_policy (client) == policy);

  proxy = cp_client_dispense (client, "kv", KV_TYPE_KV_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  proxy_get (proxy, NULL);
  g_strchomp (log->str);
  g_assert_cmpstr (log->str, ==, "client1 | client client1:ok");
  g_string_truncate (log, 0);
  g_assert_cmpint (first->kind, ==, CP_METHOD_UNARY);

  /* Added while connected: applies at once, after the first; the
   * channel's own and the call's follow. */
  cp_client_add_interceptor (client, CP_CLIENT_INTERCEPTOR (second));
  cp_channel_add_interceptor (cp_client_get_channel (client), CP_CLIENT_INTERCEPTOR (own));
  cp_call_options_add_interceptor (options, CP_CLIENT_INTERCEPTOR (call));
  proxy_get (proxy, options);
  g_strchomp (log->str);
  g_assert_cmpstr (log->str, ==, "client1 client2 own call | client "
                                 "call:ok own:ok client2:ok client1:ok");
  g_assert_cmpuint (kv.n_get, ==, 2);

  cp_client_close_async (client, NULL, NULL, NULL);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

int
main (int    argc,
      char **argv)
{
  static const char *transports[] = { "tcp", "in-process" };
  static const struct {
    const char *name;
    void (*func) (Fixture *, gconstpointer);
  } channel_tests[] = {
    { "header", test_header },
    { "local-answer", test_local_answer },
    { "local-failure", test_local_failure },
    { "completed", test_completed },
    { "observer", test_observer },
    { "async", test_async },
    { "order", test_order },
    { "server-stream", test_server_stream },
    { "client-stream", test_client_stream_calls },
  };

  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  for (gsize t = 0; t < G_N_ELEMENTS (transports); t++)
    for (gsize i = 0; i < G_N_ELEMENTS (channel_tests); i++)
      {
        g_autofree char *path = g_strdup_printf ("/rpc/client-interceptor/%s/%s",
                                                 channel_tests[i].name, transports[t]);

        g_test_add (path, Fixture, transports[t], fixture_setup, channel_tests[i].func,
                    fixture_teardown);
      }
  g_test_add_func ("/rpc/client-interceptor/client", test_client);

  return g_test_run ();
}
