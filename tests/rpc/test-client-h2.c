/* test-client-h2.c: the client's HTTP/2 transport (CpChannel:http-version
 * 2) against our own CpRpcServer over h2c, on TCP and on a unix socket
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the KV tests (test-client-kv, run on "h2c" too) do not: full-duplex
 * bidi streams, flow control of a paused stream larger than the windows,
 * one connection for many calls, start_duplex () on HTTP/1.1, and a
 * cancellation that comes with the response already queued.
 */
#include <string.h>
#include <glib/gstdio.h>

#include "client-test-util.h"
#include "cp-h2-connection-private.h"

#define ECHO_PROCEDURE "/kv.v1.KVService/Echo"
#define BIG_MESSAGES   64
#define BIG_SIZE       (64 * 1024)

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  char *url;
  char *tmpdir;
  gboolean answered;   /* handle_get () ran */
} Fixture;

/* Get: an empty answer at once. */
static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  f->answered = TRUE;
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
echo_received (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  CpInvocation *invocation = CP_INVOCATION (source);
  g_autoptr(CpMessage) request = cp_invocation_receive_finish (invocation, result, NULL);
  g_autoptr(KvWatchEvent) event = NULL;

  if (request == NULL)
    {
      cp_invocation_return_ok (invocation);
      return;
    }
  event = kv_test_watch_event (KV_EVENT_TYPE_PUT, kv_put_request_get_key (KV_PUT_REQUEST (request)), NULL);
  cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
  cp_invocation_receive_async (invocation, NULL, echo_received, NULL);
}

static void
handle_echo (CpInvocation *invocation,
             CpMessage    *request,
             gpointer      user_data)
{
  cp_invocation_receive_async (invocation, NULL, echo_received, NULL);
}

/* "big": BIG_MESSAGES events of BIG_SIZE bytes (4 MiB, past the 1 MiB
 * stream window). */
static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  g_autofree guint8 *payload = g_malloc0 (BIG_SIZE);
  g_autoptr(GBytes) value = g_bytes_new (payload, BIG_SIZE);

  for (guint i = 0; i < BIG_MESSAGES; i++)
    {
      g_autofree char *key = g_strdup_printf ("big%u", i);
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, key, value);

      cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
    }
  cp_invocation_return_ok (invocation);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  const char *transport = data;
  g_autoptr(CpMethodInfo) echo = cp_method_info_new (ECHO_PROCEDURE, CP_METHOD_BIDI_STREAMING,
                                                     KV_TYPE_PUT_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;

  f->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (f->server, echo, handle_echo, f, NULL);
  cp_rpc_server_add_method (f->server, watch, handle_watch, f, NULL);
  cp_rpc_server_add_method (f->server, get, handle_get, f, NULL);
  if (g_str_equal (transport, "unix"))
    {
      f->tmpdir = g_dir_make_tmp ("cp-h2-XXXXXX", &error);
      g_assert_no_error (error);
      address = g_strdup_printf ("unix:%s/sock", f->tmpdir);
    }
  f->url = cp_rpc_server_listen (f->server, address ? address : "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->channel = cp_channel_new (f->url, &error);
  g_assert_no_error (error);
  cp_channel_set_http_version (f->channel, CP_HTTP_VERSION_HTTP_2);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  cp_rpc_server_close (f->server);
  g_clear_object (&f->server);
  if (f->tmpdir != NULL)
    {
      g_autofree char *sock = g_build_filename (f->tmpdir, "sock", NULL);

      g_unlink (sock);
      g_rmdir (f->tmpdir);
    }
  g_free (f->tmpdir);
  g_free (f->url);
}

typedef struct {
  CpRequestStream *requests;
  guint received;
  gboolean closed;
  GError *error;
} Duplex;

static void
on_echo (CpResponseStream *stream,
         CpMessage        *message,
         Duplex           *d)
{
  g_autofree char *expected = g_strdup_printf ("m%u", d->received);
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr (kv_watch_event_get_key (KV_WATCH_EVENT (message)), ==, expected);
  d->received++;
  if (d->received < 5)
    {
      g_autofree char *key = g_strdup_printf ("m%u", d->received);
      g_autoptr(KvPutRequest) next = kv_test_put_request (key, NULL);

      /* Sent only now: the server has answered the previous one while
       * the request is still open. */
      g_assert_true (cp_request_stream_send (d->requests, CP_MESSAGE (next), &error));
      g_assert_no_error (error);
    }
  else
    cp_request_stream_close_send (d->requests);
}

static void
on_echo_closed (CpResponseStream *stream,
                GError           *error,
                Duplex           *d)
{
  d->closed = TRUE;
  d->error = error ? g_error_copy (error) : NULL;
}

static void
test_bidi_full_duplex (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(CpRequestStream) requests = cp_channel_call_bidi_stream (f->channel, ECHO_PROCEDURE,
                                                                     KV_TYPE_WATCH_EVENT, NULL);
  g_autoptr(CpResponseStream) responses = cp_request_stream_start_duplex (requests);
  g_autoptr(KvPutRequest) first = kv_test_put_request ("m0", NULL);
  g_autoptr(GError) error = NULL;
  Duplex d = { requests, 0, FALSE, NULL };

  g_signal_connect (responses, "message", G_CALLBACK (on_echo), &d);
  g_signal_connect (responses, "closed", G_CALLBACK (on_echo_closed), &d);
  g_assert_true (cp_request_stream_send (requests, CP_MESSAGE (first), &error));
  test_wait_for (&d.closed);
  g_assert_no_error (d.error);
  g_assert_cmpuint (d.received, ==, 5);
  /* Closed: no more sends. */
  g_assert_false (cp_request_stream_send (requests, CP_MESSAGE (first), &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
}

static void
test_duplex_needs_http2 (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->url, &error);
  g_autoptr(CpRequestStream) requests = NULL;
  g_autoptr(CpResponseStream) responses = NULL;
  StreamRun run;

  g_assert_no_error (error);
  g_assert_cmpint (cp_channel_get_http_version (channel), ==, CP_HTTP_VERSION_DEFAULT);
  requests = cp_channel_call_bidi_stream (channel, ECHO_PROCEDURE, KV_TYPE_WATCH_EVENT, NULL);
  responses = cp_request_stream_start_duplex (requests);
  stream_run_init (&run, g_object_ref (responses));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  stream_run_clear (&run);
}

static gboolean
stop_spinning (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* A paused stream holds its bytes back from the flow-control windows: the
 * server (which sends 4 MiB at once) is stopped by them, nothing is lost,
 * and the rest arrives on resume. */
static void
test_flow_control (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(KvWatchRequest) req = kv_test_watch_request ("big");
  CpResponseStream *stream = cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                            CP_MESSAGE (req), KV_TYPE_WATCH_EVENT, NULL);
  gboolean spun = FALSE;
  StreamRun run;

  stream_run_init (&run, stream);
  run.pause_at = 1;
  g_timeout_add (300, stop_spinning, &spun);
  test_wait_for (&spun);
  g_assert_cmpuint (run.messages->len, ==, 1);
  g_assert_false (run.closed);
  cp_response_stream_resume (stream);
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, BIG_MESSAGES);
  stream_run_clear (&run);
}

/* Many calls, sequential and concurrent, on one connection. */
static void
test_one_connection (Fixture       *f,
                     gconstpointer  data)
{
  for (guint round = 0; round < 3; round++)
    {
      StreamRun runs[8];

      for (guint i = 0; i < G_N_ELEMENTS (runs); i++)
        {
          g_autoptr(KvWatchRequest) req = kv_test_watch_request ("big");

          stream_run_init (&runs[i], cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                                    CP_MESSAGE (req),
                                                                    KV_TYPE_WATCH_EVENT, NULL));
        }
      for (guint i = 0; i < G_N_ELEMENTS (runs); i++)
        {
          stream_run_wait (&runs[i]);
          g_assert_no_error (runs[i].error);
          g_assert_cmpuint (runs[i].messages->len, ==, BIG_MESSAGES);
          stream_run_clear (&runs[i]);
        }
    }
  g_assert_cmpuint (cp_h2_client_get_n_connects (cp_channel_get_h2_client (f->channel)), ==, 1);
}

static guint
wait_watch_big (CpChannel *channel)
{
  g_autoptr(KvWatchRequest) req = kv_test_watch_request ("big");
  StreamRun run;
  guint n;

  stream_run_init (&run, cp_channel_call_server_stream (channel, KV_PROCEDURE_WATCH, CP_MESSAGE (req),
                                                        KV_TYPE_WATCH_EVENT, NULL));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  n = run.messages->len;
  stream_run_clear (&run);
  return n;
}

/* The server goes away (its connection closes) and a new one listens at
 * the same address: the next call opens a new connection; a call made
 * while none listens fails with `unavailable`. */
static void
test_reconnect (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvWatchRequest) req = kv_test_watch_request ("big");
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autofree char *address = g_strdup_printf ("unix:%s/sock", f->tmpdir);
  g_autofree char *sock = g_build_filename (f->tmpdir, "sock", NULL);
  g_autofree char *url = NULL;
  StreamRun run;

  g_assert_cmpuint (wait_watch_big (f->channel), ==, BIG_MESSAGES);
  cp_rpc_server_close (f->server);
  g_clear_object (&f->server);
  g_unlink (sock);

  stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH, CP_MESSAGE (req),
                                                        KV_TYPE_WATCH_EVENT, NULL));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  stream_run_clear (&run);

  f->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (f->server, watch, handle_watch, f, NULL);
  url = cp_rpc_server_listen (f->server, address, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (wait_watch_big (f->channel), ==, BIG_MESSAGES);
  g_assert_cmpuint (cp_h2_client_get_n_connects (cp_channel_get_h2_client (f->channel)), ==, 3);
}

static void
on_call_result (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static gboolean
cancel_now (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

/* The caller cancels in the iteration of the call's context where the
 * response is dispatched too (as a timer would, after a stall): the call
 * ends cancelled, not with the answer that came meanwhile. */
static void
test_cancel_wins (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpMessage) answer = NULL;
  g_autoptr(GError) error = NULL;
  GSource *idle;
  gint64 until;

  g_main_context_push_thread_default (context);
  cp_channel_call_async (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request), KV_TYPE_GET_RESPONSE,
                         NULL, cancellable, on_call_result, &result);
  g_main_context_pop_thread_default (context);
  /* Attached before the response's delivery source: dispatched first once
   * both are ready. */
  idle = g_idle_source_new ();
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);   /* as the timer of a cancel would be */
  g_source_set_callback (idle, cancel_now, cancellable, NULL);
  g_source_attach (idle, context);
  g_source_unref (idle);

  /* The server (this thread's default context) answers, and the HTTP/2
   * thread queues the response for @context, which does not run yet. A
   * slow machine may queue it later: then the cancellation wins anyway. */
  while (!f->answered)
    g_main_context_iteration (NULL, TRUE);
  until = g_get_monotonic_time () + 200 * G_TIME_SPAN_MILLISECOND;
  while (g_get_monotonic_time () < until)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (G_TIME_SPAN_MILLISECOND);
    }

  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  answer = cp_channel_call_finish (f->channel, result, &error);
  g_assert_null (answer);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  for (guint t = 0; t < 2; t++)
    {
      const char *transport = t == 0 ? "tcp" : "unix";
#define ADD(name, func) G_STMT_START { \
    g_autofree char *path = g_strdup_printf ("/client/h2/%s/%s", transport, name); \
    g_test_add (path, Fixture, transport, fixture_setup, func, fixture_teardown); \
  } G_STMT_END
      ADD ("bidi-full-duplex", test_bidi_full_duplex);
      ADD ("duplex-needs-http2", test_duplex_needs_http2);
      ADD ("flow-control", test_flow_control);
      ADD ("one-connection", test_one_connection);
      ADD ("cancel-wins", test_cancel_wins);
#undef ADD
    }
  g_test_add ("/client/h2/unix/reconnect", Fixture, "unix", fixture_setup, test_reconnect,
              fixture_teardown);
  return g_test_run ();
}
