/* test-client-upload.c: client-streaming back-pressure (issue 17): a
 * streamed request body over HTTP/1.1 (chunked) and HTTP/2, send_async ()
 * waiting for the transport, and the memory of a large upload
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The uploads send 1 MiB messages, each send waiting for the one before,
 * to a server handler (in this process, over TCP) that counts the bytes
 * and keeps nothing. The memory check reads VmRSS and VmHWM from
 * /proc/self/status (the peak is reset first through
 * /proc/self/clear_refs where the kernel allows): the peak during the
 * upload must stay within 64 MiB of the resident size before it (not
 * checked under AddressSanitizer, whose quarantine keeps freed memory).
 * Each 1 GiB upload takes a few seconds (one core, client and server in
 * this process).
 */
#include <stdio.h>
#include <string.h>

#include "client-test-util.h"

#define UPLOAD_PROCEDURE "/kv.v1.KVService/Upload"
#define UPLOAD_BIDI_PROCEDURE "/kv.v1.KVService/UploadBidi"
#define MESSAGE_SIZE     (1024 * 1024)
#define MEMORY_BOUND     (64 * 1024 * 1024)

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  guint64 received;          /* value bytes the handler counted */
  guint n_received;
  gboolean paused;           /* the handler does not read yet */
  CpInvocation *waiting;     /* paused: the invocation to read later */
  gboolean handler_started;
} Fixture;

static void upload_received (GObject *source, GAsyncResult *result, gpointer user_data);

static void
upload_read_next (Fixture      *f,
                  CpInvocation *invocation)
{
  cp_invocation_receive_async (invocation, NULL, upload_received, f);
}

static void
upload_received (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Fixture *f = user_data;
  CpInvocation *invocation = CP_INVOCATION (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (invocation, result, &error);

  if (message != NULL)
    {
      Kv__V1__PutRequest *m = cp_message_get_c_message (message);

      f->received += m->value.len;
      f->n_received++;
      upload_read_next (f, invocation);
      return;
    }
  if (error == NULL)
    {
      g_autofree char *count = g_strdup_printf ("%" G_GUINT64_FORMAT, f->received);
      g_autoptr(GBytes) value = g_bytes_new (count, strlen (count));
      g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

      cp_invocation_return_message (invocation, CP_MESSAGE (response));
    }
  g_object_unref (invocation);
}

static void
handle_upload (CpInvocation *invocation,
               CpMessage    *request,
               gpointer      user_data)
{
  Fixture *f = user_data;

  f->handler_started = TRUE;
  if (f->paused)
    {
      f->waiting = g_object_ref (invocation);
      return;
    }
  upload_read_next (f, g_object_ref (invocation));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpMethodInfo) upload = cp_method_info_new (UPLOAD_PROCEDURE, CP_METHOD_CLIENT_STREAMING,
                                                       KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  f->server = cp_rpc_server_new ();
  /* The messages are 1 MiB and a bit: past the default limit of some
   * builds, whatever it is. */
  g_object_set (f->server, "max-receive-size", (guint) (4 * MESSAGE_SIZE), NULL);
  cp_rpc_server_add_method (f->server, upload, handle_upload, f, NULL);
  /* The same handler as a bidi method: its one response comes at the end. */
  {
    g_autoptr(CpMethodInfo) bidi = cp_method_info_new (UPLOAD_BIDI_PROCEDURE, CP_METHOD_BIDI_STREAMING,
                                                       KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
    cp_rpc_server_add_method (f->server, bidi, handle_upload, f, NULL);
  }
  url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  cp_channel_set_http_version (f->channel, GPOINTER_TO_INT (data) == 2 ? CP_HTTP_VERSION_HTTP_2
                                                                      : CP_HTTP_VERSION_HTTP_1_1);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->waiting);
  g_clear_object (&f->channel);
  cp_rpc_server_close (f->server);
  g_clear_object (&f->server);
}

/* A /proc/self/status field in KiB, 0 when unknown. */
static guint64
status_kib (const char *field)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/self/status", &contents, NULL, NULL))
    return 0;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], field) && lines[i][strlen (field)] == ':')
      return g_ascii_strtoull (lines[i] + strlen (field) + 1, NULL, 10);
  return 0;
}

/* Resets VmHWM to the current VmRSS (Linux 4.0+); FALSE when not allowed. */
static gboolean
reset_peak (void)
{
  FILE *file = fopen ("/proc/self/clear_refs", "w");
  gboolean ok;

  if (file == NULL)
    return FALSE;
  ok = fputs ("5", file) >= 0;
  return fclose (file) == 0 && ok;
}

typedef struct {
  gboolean done;
  gboolean ok;
  GError *error;
  CpMessage *response;
} Wait;

static void
sent (GObject      *source,
      GAsyncResult *result,
      gpointer      user_data)
{
  Wait *wait = user_data;

  wait->ok = cp_request_stream_send_finish (CP_REQUEST_STREAM (source), result, &wait->error);
  wait->done = TRUE;
}

static void
closed (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Wait *wait = user_data;

  wait->response = cp_request_stream_close_finish (CP_REQUEST_STREAM (source), result,
                                                   &wait->error);
  wait->done = TRUE;
}

static CpMessage *
upload_message (GBytes *payload,
                guint   i)
{
  g_autofree char *key = g_strdup_printf ("m%06u", i);  /* every message the same size */

  return CP_MESSAGE (kv_test_put_request (key, payload));
}

/* Uploads @n_messages of MESSAGE_SIZE with send_async (), each awaited,
 * and checks the count, bytes-sent and the memory. */
static void
run_upload (Fixture  *f,
            guint     n_messages,
            gboolean  sync_sends)
{
  g_autoptr(CpRequestStream) stream = NULL;
  g_autofree guint8 *data = g_malloc (MESSAGE_SIZE);
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GError) error = NULL;
  Wait close_wait = { 0 };
  guint64 rss_before, hwm_after, rss_after, max_pending = 0;
  gboolean peak_reset;
  gsize one_message = 0;

  memset (data, 0x5a, MESSAGE_SIZE);
  payload = g_bytes_new_take (g_steal_pointer (&data), MESSAGE_SIZE);
  peak_reset = reset_peak ();
  rss_before = status_kib ("VmRSS");

  stream = cp_channel_call_client_stream (f->channel, UPLOAD_PROCEDURE, KV_TYPE_GET_RESPONSE, NULL);
  for (guint i = 0; i < n_messages; i++)
    {
      g_autoptr(CpMessage) message = upload_message (payload, i);
      guint64 given;

      if (sync_sends)
        {
          g_assert_true (cp_request_stream_send (stream, message, &error));
          g_assert_no_error (error);
        }
      else
        {
          Wait wait = { 0 };

          cp_request_stream_send_async (stream, message, NULL, sent, &wait);
          test_wait_for (&wait.done);
          g_assert_no_error (wait.error);
          g_assert_true (wait.ok);
        }
      if (one_message == 0)
        {
          g_autoptr(GBytes) encoded = cp_message_serialize (message, CP_CODEC_PROTO, NULL);

          one_message = g_bytes_get_size (encoded) + 5;
        }
      /* A completed send leaves at most 256 KiB or the one message queued. */
      given = (guint64) (i + 1) * one_message;
      if (i > 0)
        {
          guint64 bytes_sent = cp_request_stream_get_bytes_sent (stream);

          g_assert_cmpuint (bytes_sent, <=, given);
          max_pending = MAX (max_pending, given - bytes_sent);
          g_assert_cmpuint (given - bytes_sent, <=, MAX (256 * 1024, one_message));
        }
    }
  cp_request_stream_close_async (stream, NULL, closed, &close_wait);
  test_wait_for (&close_wait.done);
  g_assert_no_error (close_wait.error);
  g_assert_nonnull (close_wait.response);
  g_assert_cmpuint (f->n_received, ==, n_messages);
  g_assert_cmpuint (f->received, ==, (guint64) n_messages * MESSAGE_SIZE);
  g_assert_cmpuint (cp_request_stream_get_bytes_sent (stream), ==, (guint64) n_messages * one_message);
  g_clear_object (&close_wait.response);

  hwm_after = status_kib ("VmHWM");
  rss_after = status_kib ("VmRSS");
  g_test_message ("HTTP/%s upload of %u MiB: VmRSS before %" G_GUINT64_FORMAT " KiB, after %"
                  G_GUINT64_FORMAT " KiB, peak (VmHWM%s) %" G_GUINT64_FORMAT " KiB; "
                  "largest queue after a send %" G_GUINT64_FORMAT " bytes",
                  cp_channel_get_http_version (f->channel) == CP_HTTP_VERSION_HTTP_2 ? "2" : "1.1",
                  n_messages, rss_before, rss_after, peak_reset ? "" : ", not reset",
                  hwm_after, max_pending);
  if (g_test_verbose ())
    fprintf (stderr, "HTTP/%s %u MiB: VmRSS before %" G_GUINT64_FORMAT " KiB after %"
             G_GUINT64_FORMAT " KiB peak %" G_GUINT64_FORMAT " KiB%s\n",
             cp_channel_get_http_version (f->channel) == CP_HTTP_VERSION_HTTP_2 ? "2" : "1.1",
             n_messages, rss_before, rss_after, hwm_after, peak_reset ? "" : " (peak not reset)");
#if defined(__SANITIZE_ADDRESS__)
  g_test_message ("memory not checked under AddressSanitizer");
  return;
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
  g_test_message ("memory not checked under AddressSanitizer");
  return;
# endif
#endif
  if (rss_before == 0)
    {
      g_test_skip ("no /proc/self/status");
      return;
    }
  g_assert_cmpuint (rss_after, <, rss_before + MEMORY_BOUND / 1024);
  if (peak_reset)
    g_assert_cmpuint (hwm_after, <, rss_before + MEMORY_BOUND / 1024);
}

/* 1 GiB. */
static void
test_upload (Fixture       *f,
             gconstpointer  data)
{
  run_upload (f, 1024, FALSE);
}

static void
test_upload_sync (Fixture       *f,
                  gconstpointer  data)
{
  run_upload (f, 32, TRUE);
}

/* A quiet period of the transport: no send completed and bytes-sent did
 * not move for 300 ms. Only used to stop sending, never asserted on. */
static gboolean
wait_or_stall (Wait            *wait,
               CpRequestStream *stream)
{
  GMainContext *context = g_main_context_get_thread_default ();

  for (;;)
    {
      guint64 before = cp_request_stream_get_bytes_sent (stream);
      gint64 until = g_get_monotonic_time () + 300 * G_TIME_SPAN_MILLISECOND;

      while (!wait->done && g_get_monotonic_time () < until)
        {
          if (!g_main_context_iteration (context, FALSE))
            g_usleep (2000);
        }
      if (wait->done)
        return TRUE;
      if (cp_request_stream_get_bytes_sent (stream) == before)
        return FALSE;
    }
}

/* The handler does not read: sends stop completing once the transport's
 * buffers are full, and the queue stays bounded; once it reads, the send
 * waiting completes and the whole body arrives. */
static void
test_paused_server (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(CpRequestStream) stream = NULL;
  g_autofree guint8 *bytes = g_malloc0 (MESSAGE_SIZE);
  g_autoptr(GBytes) payload = g_bytes_new_take (g_steal_pointer (&bytes), MESSAGE_SIZE);
  Wait pending = { 0 };
  Wait close_wait = { 0 };
  guint n_sent = 0;
  const guint max_messages = 256;

  f->paused = TRUE;
  stream = cp_channel_call_client_stream (f->channel, UPLOAD_PROCEDURE, KV_TYPE_GET_RESPONSE, NULL);
  for (; n_sent < max_messages; n_sent++)
    {
      g_autoptr(CpMessage) message = upload_message (payload, n_sent);

      memset (&pending, 0, sizeof pending);
      cp_request_stream_send_async (stream, message, NULL, sent, &pending);
      if (!wait_or_stall (&pending, stream))
        break;
      g_assert_no_error (pending.error);
    }
  g_test_message ("%s: a send waited after %u MiB, %" G_GUINT64_FORMAT " bytes sent",
                  GPOINTER_TO_INT (data) == 2 ? "HTTP/2" : "HTTP/1.1", n_sent,
                  cp_request_stream_get_bytes_sent (stream));
  /* A send waits: far fewer than 256 MiB went while nobody read. */
  g_assert_cmpuint (n_sent, <, max_messages);
  g_assert_false (pending.done);
  g_assert_true (f->handler_started);
  g_assert_cmpuint (f->n_received, ==, 0);

  /* The handler reads now: the waiting send completes. */
  f->paused = FALSE;
  upload_read_next (f, g_steal_pointer (&f->waiting));
  test_wait_for (&pending.done);
  g_assert_no_error (pending.error);
  g_assert_true (pending.ok);

  cp_request_stream_close_async (stream, NULL, closed, &close_wait);
  test_wait_for (&close_wait.done);
  g_assert_no_error (close_wait.error);
  g_assert_nonnull (close_wait.response);
  g_clear_object (&close_wait.response);
  g_assert_cmpuint (f->n_received, ==, n_sent + 1);
  g_assert_cmpuint (f->received, ==, (guint64) (n_sent + 1) * MESSAGE_SIZE);
}

/* The server answers (with an error) before reading the body: the
 * waiting send fails with it, and so does close. */
static void
handle_refuse (CpInvocation *invocation,
               CpMessage    *request,
               gpointer      user_data)
{
  cp_invocation_return_error_literal (invocation, CP_ERROR_PERMISSION_DENIED, "no uploads");
}

static void
test_early_answer (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(CpMethodInfo) refuse = cp_method_info_new ("/kv.v1.KVService/Refuse",
                                                       CP_METHOD_CLIENT_STREAMING,
                                                       KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpRequestStream) stream = NULL;
  g_autofree guint8 *bytes = g_malloc0 (MESSAGE_SIZE);
  g_autoptr(GBytes) payload = g_bytes_new_take (g_steal_pointer (&bytes), MESSAGE_SIZE);
  Wait close_wait = { 0 };
  GError *send_error = NULL;

  cp_rpc_server_add_method (f->server, refuse, handle_refuse, f, NULL);
  stream = cp_channel_call_client_stream (f->channel, "/kv.v1.KVService/Refuse",
                                          KV_TYPE_GET_RESPONSE, NULL);
  for (guint i = 0; i < 1024 && send_error == NULL; i++)
    {
      g_autoptr(CpMessage) message = upload_message (payload, i);
      Wait wait = { 0 };

      cp_request_stream_send_async (stream, message, NULL, sent, &wait);
      test_wait_for (&wait.done);
      send_error = wait.error;
    }
  /* The answer ends the call long before 1 GiB went. */
  g_assert_nonnull (send_error);
  g_clear_error (&send_error);
  cp_request_stream_close_async (stream, NULL, closed, &close_wait);
  test_wait_for (&close_wait.done);
  g_assert_null (close_wait.response);
  /* libsoup 3.2 reads an HTTP/1.1 response only once the request body was
   * written: the server's close after its early answer reaches it as a
   * failed write (`unavailable`). HTTP/2 delivers the answer. */
  if (GPOINTER_TO_INT (data) == 1 &&
      g_error_matches (close_wait.error, CP_ERROR, CP_ERROR_UNAVAILABLE))
    g_test_message ("HTTP/1.1: %s", close_wait.error->message);
  else
    g_assert_error (close_wait.error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_clear_error (&close_wait.error);
}

/* A streamed call is not retried (its body is gone), even when the
 * policy would retry its error; the interceptors see one attempt. */
static guint n_unavailable_calls;

static void
handle_unavailable (CpInvocation *invocation,
                    CpMessage    *request,
                    gpointer      user_data)
{
  n_unavailable_calls++;
  cp_invocation_return_error_literal (invocation, CP_ERROR_UNAVAILABLE, "try again later");
}

static void
record_attempts (CpClientInterceptor *interceptor,
                 CpClientCall        *client_call,
                 const GError        *error,
                 guint               *attempts)
{
  *attempts = cp_client_call_get_attempts (client_call);
}

static void
test_no_retry (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpMethodInfo) method = cp_method_info_new ("/kv.v1.KVService/Unavailable",
                                                       CP_METHOD_CLIENT_STREAMING,
                                                       KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  g_autoptr(CpClientInterceptor) observer = cp_client_interceptor_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpRequestStream) stream = NULL;
  g_autofree guint8 *bytes = g_malloc0 (MESSAGE_SIZE);
  g_autoptr(GBytes) payload = g_bytes_new_take (g_steal_pointer (&bytes), MESSAGE_SIZE);
  Wait close_wait = { 0 };
  guint attempts = 0;

  n_unavailable_calls = 0;
  cp_rpc_server_add_method (f->server, method, handle_unavailable, f, NULL);
  cp_retry_policy_set_initial_backoff_ms (policy, 1);
  cp_channel_set_retry_policy (f->channel, policy);
  g_signal_connect (observer, "completed", G_CALLBACK (record_attempts), &attempts);
  cp_channel_add_interceptor (f->channel, observer);
  cp_call_options_set_idempotent (options, TRUE);

  stream = cp_channel_call_client_stream (f->channel, "/kv.v1.KVService/Unavailable",
                                          KV_TYPE_GET_RESPONSE, options);
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(CpMessage) message = upload_message (payload, i);
      Wait wait = { 0 };

      cp_request_stream_send_async (stream, message, NULL, sent, &wait);
      test_wait_for (&wait.done);
      g_clear_error (&wait.error);   /* the answer may already have come */
    }
  cp_request_stream_close_async (stream, NULL, closed, &close_wait);
  test_wait_for (&close_wait.done);
  g_assert_error (close_wait.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&close_wait.error);
  g_assert_cmpuint (n_unavailable_calls, ==, 1);
  g_assert_cmpuint (attempts, ==, 1);
  g_assert_cmpuint (cp_retry_policy_get_n_retries (policy), ==, 0);
}

static void
on_duplex_closed (CpResponseStream *responses,
                  const GError     *error,
                  gpointer          user_data)
{
  Wait *wait = user_data;

  if (error != NULL)
    wait->error = g_error_copy (error);
  wait->done = TRUE;
}

/* A full-duplex call (HTTP/2) whose server does not read: its sends stop
 * completing too, then complete once the handler reads. */
static void
test_duplex_paused_server (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(CpRequestStream) stream = NULL;
  g_autoptr(CpResponseStream) responses = NULL;
  g_autofree guint8 *bytes = g_malloc0 (MESSAGE_SIZE);
  g_autoptr(GBytes) payload = g_bytes_new_take (g_steal_pointer (&bytes), MESSAGE_SIZE);
  Wait pending = { 0 };
  Wait end = { 0 };
  guint n_sent = 0;
  const guint max_messages = 256;

  f->paused = TRUE;
  stream = cp_channel_call_bidi_stream (f->channel, UPLOAD_BIDI_PROCEDURE, KV_TYPE_GET_RESPONSE, NULL);
  responses = g_object_ref (cp_request_stream_start_duplex (stream));
  g_signal_connect (responses, "closed", G_CALLBACK (on_duplex_closed), &end);
  for (; n_sent < max_messages; n_sent++)
    {
      g_autoptr(CpMessage) message = upload_message (payload, n_sent);

      memset (&pending, 0, sizeof pending);
      cp_request_stream_send_async (stream, message, NULL, sent, &pending);
      if (!wait_or_stall (&pending, stream))
        break;
      g_assert_no_error (pending.error);
    }
  g_test_message ("full duplex: a send waited after %u MiB, %" G_GUINT64_FORMAT " bytes sent",
                  n_sent, cp_request_stream_get_bytes_sent (stream));
  g_assert_cmpuint (n_sent, <, max_messages);
  g_assert_false (pending.done);
  g_assert_cmpuint (f->n_received, ==, 0);

  f->paused = FALSE;
  upload_read_next (f, g_steal_pointer (&f->waiting));
  test_wait_for (&pending.done);
  g_assert_no_error (pending.error);
  g_assert_true (pending.ok);
  cp_request_stream_close_send (stream);
  test_wait_for (&end.done);
  g_assert_no_error (end.error);
  g_assert_cmpuint (f->n_received, ==, n_sent + 1);
  g_assert_cmpuint (f->received, ==, (guint64) (n_sent + 1) * MESSAGE_SIZE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  for (guint version = 1; version <= 2; version++)
    {
      const char *name = version == 2 ? "h2" : "http1";
      g_autofree char *upload = g_strdup_printf ("/client-upload/%s/upload", name);
      g_autofree char *upload_sync = g_strdup_printf ("/client-upload/%s/upload-sync", name);
      g_autofree char *paused = g_strdup_printf ("/client-upload/%s/paused-server", name);
      g_autofree char *early = g_strdup_printf ("/client-upload/%s/early-answer", name);
      g_autofree char *no_retry = g_strdup_printf ("/client-upload/%s/no-retry", name);
      gconstpointer data = GINT_TO_POINTER (version);

      g_test_add (upload, Fixture, data, fixture_setup, test_upload, fixture_teardown);
      g_test_add (upload_sync, Fixture, data, fixture_setup, test_upload_sync, fixture_teardown);
      g_test_add (paused, Fixture, data, fixture_setup, test_paused_server, fixture_teardown);
      g_test_add (early, Fixture, data, fixture_setup, test_early_answer, fixture_teardown);
      g_test_add (no_retry, Fixture, data, fixture_setup, test_no_retry, fixture_teardown);
    }
  g_test_add ("/client-upload/h2/duplex-paused-server", Fixture, GINT_TO_POINTER (2),
              fixture_setup, test_duplex_paused_server, fixture_teardown);
  return g_test_run ();
}
