/* client-test-util.c: running client calls to completion in tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include "client-test-util.h"

static gboolean
on_watchdog (gpointer data)
{
  g_error ("test timed out waiting for an event");
  return G_SOURCE_REMOVE;
}

void
test_wait_for (gboolean *flag)
{
  GMainContext *context = g_main_context_get_thread_default ();
  GSource *watchdog = g_timeout_source_new_seconds (10);

  g_source_set_callback (watchdog, on_watchdog, NULL, NULL);
  g_source_attach (watchdog, context);
  while (!*flag)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (watchdog);
  g_source_unref (watchdog);
}

void
test_wait_until (gboolean (*func) (gpointer),
                 gpointer data)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  GMainContext *context = g_main_context_get_thread_default ();

  while (!func (data))
    {
      if (g_get_monotonic_time () > end)
        g_error ("test timed out waiting for a condition");
      g_main_context_iteration (context, FALSE);
      g_usleep (1000);
    }
}

typedef struct {
  gboolean done;
  CpMessage *message;
  GError *error;
  GThread *thread;
} UnaryRun;

static void
unary_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  UnaryRun *run = user_data;

  g_assert_true (run->thread == g_thread_self ());
  run->message = cp_channel_call_finish (CP_CHANNEL (source), result, &run->error);
  run->done = TRUE;
}

CpMessage *
test_call_unary (CpChannel      *channel,
                 const char     *procedure,
                 CpMessage      *request,
                 GType           response_type,
                 CpCallOptions  *options,
                 GCancellable   *cancellable,
                 GError        **error)
{
  UnaryRun run = { FALSE, NULL, NULL, g_thread_self () };

  cp_channel_call_async (channel, procedure, request, response_type, options,
                         cancellable, unary_done, &run);
  g_assert_false (run.done);
  test_wait_for (&run.done);
  g_assert_true ((run.message == NULL) != (run.error == NULL));
  if (run.error)
    g_propagate_error (error, run.error);
  return run.message;
}

static void
check_thread (StreamRun *run)
{
  g_assert_true (run->thread == g_thread_self ());
  g_assert_true (g_main_context_is_owner (run->context));
}

static void
on_headers (CpResponseStream   *stream,
            SoupMessageHeaders *headers,
            StreamRun          *run)
{
  check_thread (run);
  g_assert_false (run->got_headers);
  g_assert_cmpuint (run->messages->len, ==, 0);
  g_assert_nonnull (headers);
  run->got_headers = TRUE;
}

static void
on_message (CpResponseStream *stream,
            CpMessage        *message,
            StreamRun        *run)
{
  check_thread (run);
  g_assert_false (run->closed);
  g_ptr_array_add (run->messages, g_object_ref (message));
  if (run->pause_at == run->messages->len)
    cp_response_stream_pause (stream);
  if (run->cancel_at == run->messages->len)
    cp_response_stream_cancel (stream);
}

static void
on_closed (CpResponseStream *stream,
           const GError     *error,
           StreamRun        *run)
{
  check_thread (run);
  run->n_closed++;
  g_assert_false (run->closed);
  run->closed = TRUE;
  if (error)
    run->error = g_error_copy (error);
  g_assert_true (cp_response_stream_is_closed (stream));
}

void
stream_run_init (StreamRun        *run,
                 CpResponseStream *stream)
{
  memset (run, 0, sizeof *run);
  run->stream = stream;
  run->messages = g_ptr_array_new_with_free_func (g_object_unref);
  run->thread = g_thread_self ();
  run->context = g_main_context_ref_thread_default ();
  g_signal_connect (stream, "headers", G_CALLBACK (on_headers), run);
  g_signal_connect (stream, "message", G_CALLBACK (on_message), run);
  g_signal_connect (stream, "closed", G_CALLBACK (on_closed), run);
}

void
stream_run_wait (StreamRun *run)
{
  test_wait_for (&run->closed);
}

void
stream_run_clear (StreamRun *run)
{
  g_signal_handlers_disconnect_by_data (run->stream, run);
  g_clear_object (&run->stream);
  g_ptr_array_unref (run->messages);
  g_clear_error (&run->error);
  g_main_context_unref (run->context);
}

typedef struct {
  gboolean done;
  CpMessage *message;
  GError *error;
} ClientStreamRun;

static void
client_stream_done (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  ClientStreamRun *run = user_data;

  run->message = cp_request_stream_close_finish (CP_REQUEST_STREAM (source), result, &run->error);
  run->done = TRUE;
}

CpMessage *
test_client_stream (CpRequestStream *stream,
                    GError         **error)
{
  ClientStreamRun run = { FALSE, NULL, NULL };

  cp_request_stream_close_async (stream, NULL, client_stream_done, &run);
  test_wait_for (&run.done);
  g_assert_true ((run.message == NULL) != (run.error == NULL));
  if (run.error)
    g_propagate_error (error, run.error);
  return run.message;
}

GBytes *
test_get_response (const char *value,
                   gboolean    found,
                   CpCodec     codec)
{
  g_autoptr(GBytes) v = g_bytes_new (value, strlen (value));
  g_autoptr(KvGetResponse) response = kv_test_get_response (v, found);
  g_autoptr(GError) error = NULL;
  GBytes *bytes = cp_message_serialize (CP_MESSAGE (response), codec, &error);

  g_assert_no_error (error);
  return bytes;
}

/* The value of a KvGetResponse as a string (valid until the next call). */
const char *
test_get_value (CpMessage *message)
{
  static char buf[256];
  g_autoptr(GBytes) value = NULL;
  gsize len;
  const char *data;

  g_assert_true (KV_IS_GET_RESPONSE (message));
  value = kv_get_response_get_value (KV_GET_RESPONSE (message));
  if (value == NULL)
    return "";
  data = g_bytes_get_data (value, &len);
  g_assert_cmpuint (len, <, sizeof buf);
  if (len > 0)
    memcpy (buf, data, len);
  buf[len] = '\0';
  return buf;
}

CpMessage *
test_kv_get (CpChannel      *channel,
             const char     *key,
             CpCallOptions  *options,
             GError        **error)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);

  /* Asserts that the callback does not run within the call. */
  return test_call_unary (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                          KV_TYPE_GET_RESPONSE, options, NULL, error);
}

static void
received_one (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(CpInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (invocation, result, &error);

  if (message != NULL)
    {
      CpInvocation *next = g_steal_pointer (&invocation);

      cp_invocation_receive_async (next, NULL, received_one, next);
      return;
    }
  if (error == NULL)
    {
      g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

      cp_invocation_return_message (invocation, CP_MESSAGE (response));
    }
}

void
test_receive_all_then_found (CpInvocation *invocation)
{
  cp_invocation_receive_async (invocation, NULL, received_one, g_object_ref (invocation));
}

CpChannel *
test_channel_new (CpRpcServer *server,
                  const char  *transport)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  CpChannel *channel;

  if (g_str_equal (transport, "in-process"))
    return cp_channel_new_in_process (server);
  url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  return channel;
}
