/* test-fast-paths.c: the engine's performance shortcuts keep their contracts
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the benchmarks made fast, checked for behaviour (never for time):
 *   - gzip converters cached per thread: any sequence of compressions,
 *     decompressions and failures gives the same results as fresh ones;
 *   - cp_invocation_send_message_async() completing without a GTask when
 *     the connection is not congested: callbacks never run inside the
 *     _async call, in order, with a proper GAsyncResult, cancellation wins;
 *   - coalesced stream writes: every message arrives, in order;
 *   - CpChannel reading unary bodies without a GTask per read and closing
 *     them synchronously: sequential calls still reuse one connection.
 */
#include <connectplugin.h>
#include <string.h>

#include "cp-compression.h"
#include "kv-test.h"

/* ---- compression ---- */

static GBytes *
make_payload (gsize size,
              guint seed)
{
  guint8 *data = g_malloc (size);

  /* Compressible but not trivial. */
  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) ("connectplugin"[(i + seed) % 13] + (i / 977) % 3);
  return g_bytes_new_take (data, size);
}

static void
test_compression_reuse (void)
{
  const gsize sizes[] = { 0, 1, 17, 1000, 16 * 1024 - 1, 16 * 1024, 70000, 300000 };
  g_autoptr(GBytes) garbage = g_bytes_new_static ("\x1f\x8b\x08\x00garbage!", 12);

  for (guint round = 0; round < 3; round++)
    for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
      {
        g_autoptr(GBytes) plain = make_payload (sizes[i], i + round);
        g_autoptr(GBytes) packed = NULL;
        g_autoptr(GBytes) unpacked = NULL;
        g_autoptr(GBytes) failed = NULL;
        g_autoptr(GBytes) doubled = NULL;
        g_autoptr(GBytes) doubled_out = NULL;
        g_autoptr(GError) error = NULL;
        GByteArray *two;

        packed = cp_compress (CP_COMPRESSION_GZIP, plain, &error);
        g_assert_no_error (error);
        g_assert_nonnull (packed);

        /* A failure in between must not leave a half-used stream behind. */
        failed = cp_decompress (CP_COMPRESSION_GZIP, garbage, 0, &error);
        g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
        g_assert_null (failed);
        g_clear_error (&error);
        if (sizes[i] > 10)
          {
            failed = cp_decompress (CP_COMPRESSION_GZIP, packed, sizes[i] - 1, &error);
            g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
            g_assert_null (failed);
            g_clear_error (&error);
          }

        unpacked = cp_decompress (CP_COMPRESSION_GZIP, packed, sizes[i], &error);
        g_assert_no_error (error);
        g_assert_true (g_bytes_equal (plain, unpacked));

        /* Two members back to back decode as their concatenation. */
        two = g_byte_array_new ();
        g_byte_array_append (two, g_bytes_get_data (packed, NULL), g_bytes_get_size (packed));
        g_byte_array_append (two, g_bytes_get_data (packed, NULL), g_bytes_get_size (packed));
        doubled = g_byte_array_free_to_bytes (two);
        doubled_out = cp_decompress (CP_COMPRESSION_GZIP, doubled, 0, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (g_bytes_get_size (doubled_out), ==, 2 * sizes[i]);
        if (sizes[i] > 0)
          g_assert_cmpmem (g_bytes_get_data (doubled_out, NULL), sizes[i],
                           (const guint8 *) g_bytes_get_data (doubled_out, NULL) + sizes[i], sizes[i]);
      }
}

/* Converters are cached per thread: the same sequence works on others. */
static gpointer
compression_thread (gpointer data)
{
  test_compression_reuse ();
  return NULL;
}

static void
test_compression_threads (void)
{
  GThread *threads[3];

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("gzip", compression_thread, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
}

/* ---- a KV Watch server streaming with awaited sends ---- */

#define N_EVENTS 3000

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  char *url;
  /* server side */
  guint sent;
  guint callbacks;
  gboolean inside_send;
  gboolean cancel_mode;
  GPtrArray *ports;            /* remote ports of unary calls (TCP) */
  /* client side */
  guint received;
  gboolean closed;
  GError *error;
} Fixture;

typedef struct {
  Fixture *fixture;
  CpInvocation *invocation;
  GCancellable *cancellable;
} Job;

static void job_send (Job *job);

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Job *job = user_data;
  Fixture *f = job->fixture;
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) source_object = g_async_result_get_source_object (result);

  /* GIO rules: never from inside the _async call, in the caller's context,
   * with a result that knows its source and tag. */
  g_assert_false (f->inside_send);
  g_assert_true (g_main_context_is_owner (g_main_context_default ()));
  g_assert_true (source_object == G_OBJECT (job->invocation));
  g_assert_true (g_async_result_get_user_data (result) == job);
  g_assert_true (g_async_result_is_tagged (result, cp_invocation_send_message_async));
  f->callbacks++;

  if (f->cancel_mode && f->callbacks == 1)
    {
      /* Cancelled after completion, before finish: finish reports it. */
      g_assert_false (cp_invocation_send_message_finish (job->invocation, result, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      cp_invocation_return_ok (job->invocation);
      g_object_unref (job->invocation);
      g_object_unref (job->cancellable);
      g_free (job);
      return;
    }
  g_assert_true (cp_invocation_send_message_finish (job->invocation, result, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->callbacks, ==, f->sent);
  job_send (job);
}

static void
job_send (Job *job)
{
  Fixture *f = job->fixture;
  g_autoptr(KvWatchEvent) event = NULL;
  g_autofree char *key = NULL;

  if (f->sent == N_EVENTS)
    {
      cp_invocation_return_ok (job->invocation);
      g_object_unref (job->invocation);
      g_clear_object (&job->cancellable);
      g_free (job);
      return;
    }
  key = g_strdup_printf ("key/%u", f->sent);
  event = kv_test_watch_event (KV_EVENT_TYPE_PUT, key, NULL);
  f->sent++;
  f->inside_send = TRUE;
  cp_invocation_send_message_async (job->invocation, CP_MESSAGE (event), job->cancellable,
                                    on_sent, job);
  if (f->cancel_mode)
    g_cancellable_cancel (job->cancellable);
  f->inside_send = FALSE;
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  Job *job = g_new0 (Job, 1);

  job->fixture = user_data;
  job->invocation = g_object_ref (invocation);
  job->cancellable = g_cancellable_new ();
  job_send (job);
}

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  GInetSocketAddress *remote = G_INET_SOCKET_ADDRESS (cp_invocation_get_remote_address (invocation));
  g_autoptr(GBytes) value = g_bytes_new_static ("world", 5);
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

  g_ptr_array_add (f->ports, GUINT_TO_POINTER (g_inet_socket_address_get_port (remote)));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMethodInfo) get_info = NULL;
  g_autoptr(CpMethodInfo) watch_info = NULL;

  kv_test_ensure_types ();
  f->ports = g_ptr_array_new ();
  f->server = cp_rpc_server_new ();
  get_info = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                 KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  cp_rpc_server_add_method (f->server, get_info, handle_get, f, NULL);
  watch_info = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                   KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  cp_rpc_server_add_method (f->server, watch_info, handle_watch, f, NULL);
  f->url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->channel = cp_channel_new (f->url, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  cp_rpc_server_close (f->server);
  g_clear_object (&f->server);
  g_free (f->url);
  g_ptr_array_unref (f->ports);
  g_clear_error (&f->error);
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
on_message (CpResponseStream *stream,
            CpMessage        *message,
            Fixture          *f)
{
  g_autofree char *expected = g_strdup_printf ("key/%u", f->received);

  g_assert_cmpstr (kv_watch_event_get_key (KV_WATCH_EVENT (message)), ==, expected);
  f->received++;
}

static void
on_closed (CpResponseStream *stream,
           const GError     *error,
           Fixture          *f)
{
  f->closed = TRUE;
  if (error != NULL)
    f->error = g_error_copy (error);
}

static void
run_watch (Fixture *f)
{
  g_autoptr(KvWatchRequest) request = kv_test_watch_request ("");
  g_autoptr(CpResponseStream) stream = NULL;

  stream = cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH, CP_MESSAGE (request),
                                          KV_TYPE_WATCH_EVENT, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_message), f);
  g_signal_connect (stream, "closed", G_CALLBACK (on_closed), f);
  while (!f->closed)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_stream_awaited_sends (Fixture       *f,
                           gconstpointer  data)
{
  run_watch (f);
  g_assert_no_error (f->error);
  g_assert_cmpuint (f->sent, ==, N_EVENTS);
  g_assert_cmpuint (f->callbacks, ==, N_EVENTS);
  g_assert_cmpuint (f->received, ==, N_EVENTS);
}

static void
test_stream_cancelled_send (Fixture       *f,
                            gconstpointer  data)
{
  f->cancel_mode = TRUE;
  run_watch (f);
  g_assert_no_error (f->error);
  g_assert_cmpuint (f->callbacks, ==, 1);
  /* The message was queued before the cancellation: it still arrives. */
  g_assert_cmpuint (f->received, ==, 1);
}

/* ---- client: sequential unary calls ---- */

static void
on_get_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  CpMessage **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = cp_channel_call_finish (CP_CHANNEL (source), result, &error);
  g_assert_no_error (error);
}

static void
test_client_sequential_reuse (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("hello");

  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(CpMessage) response = NULL;
      g_autoptr(GBytes) value = NULL;

      cp_channel_call_async (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                             KV_TYPE_GET_RESPONSE, NULL, NULL, on_get_done, &response);
      while (response == NULL)
        g_main_context_iteration (NULL, TRUE);
      value = kv_get_response_get_value (KV_GET_RESPONSE (response));
      g_assert_cmpmem (g_bytes_get_data (value, NULL), g_bytes_get_size (value), "world", 5);
    }
  g_assert_cmpuint (f->ports->len, ==, 50);
  /* One connection for all of them (SOUP_MESSAGE_IDEMPOTENT, and the body
   * read without GTasks and closed leaves the connection reusable). */
  for (guint i = 1; i < f->ports->len; i++)
    g_assert_cmpuint (GPOINTER_TO_UINT (f->ports->pdata[i]), ==,
                      GPOINTER_TO_UINT (f->ports->pdata[0]));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/fast-paths/compression/reuse", test_compression_reuse);
  g_test_add_func ("/fast-paths/compression/threads", test_compression_threads);
  g_test_add ("/fast-paths/stream/awaited-sends", Fixture, NULL,
              fixture_setup, test_stream_awaited_sends, fixture_teardown);
  g_test_add ("/fast-paths/stream/cancelled-send", Fixture, NULL,
              fixture_setup, test_stream_cancelled_send, fixture_teardown);
  g_test_add ("/fast-paths/client/sequential-reuse", Fixture, NULL,
              fixture_setup, test_client_sequential_reuse, fixture_teardown);
  return g_test_run ();
}
