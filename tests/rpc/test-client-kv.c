/* test-client-kv.c: the client engine against a real CpRpcServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A KV service (Get/Put/Watch plus a client-streaming PutMany) served by
 * CpRpcServer, called over TCP, over a unix socket and in-process.
 */
#include <string.h>
#include <glib/gstdio.h>
#include "client-test-util.h"
#include "cp-rpc-server-private.h"

#define KV_PROCEDURE_PUT_MANY "/kv.v1.KVService/PutMany"

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  char *tmpdir;
  GHashTable *store;           /* key → GBytes */
  GPtrArray *watchers;         /* CpInvocation of live watches */
  GPtrArray *hanging;          /* CpInvocation never answered */
  guint n_server_cancelled;    /* invocations whose cancellable fired */
} Fixture;

static void
on_invocation_cancelled (GCancellable *cancellable,
                         Fixture      *f)
{
  f->n_server_cancelled++;
}

static void
watch_cancellable (Fixture      *f,
                   CpInvocation *invocation)
{
  GCancellable *cancellable = cp_invocation_get_cancellable (invocation);

  if (cancellable != NULL)
    g_signal_connect (cancellable, "cancelled", G_CALLBACK (on_invocation_cancelled), f);
}

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  GBytes *value;
  g_autoptr(KvGetResponse) response = NULL;

  if (g_str_equal (key, "hang"))
    {
      watch_cancellable (f, invocation);
      g_ptr_array_add (f->hanging, g_object_ref (invocation));
      return;
    }
  if (g_str_equal (key, "error"))
    {
      GError *error = g_error_new_literal (CP_ERROR, CP_ERROR_NOT_FOUND, "no such key ☺");
      static const guint8 retry[] = { 0x0a, 0x02, 0x08, 0x1e };
      g_autoptr(GBytes) detail_value = g_bytes_new_static (retry, sizeof retry);
      g_autoptr(CpErrorDetail) detail = cp_error_detail_new ("google.rpc.RetryInfo", detail_value);

      cp_error_add_detail (error, detail);
      soup_message_headers_append (cp_invocation_get_response_headers (invocation), "x-head", "h");
      soup_message_headers_append (cp_invocation_get_response_trailers (invocation), "x-tail", "t");
      cp_invocation_take_error (invocation, error);
      return;
    }
  if (g_str_equal (key, "meta"))
    {
      SoupMessageHeaders *in = cp_invocation_get_request_headers (invocation);
      const char *echo = soup_message_headers_get_list (in, "x-echo");
      g_autoptr(GBytes) v = g_bytes_new (echo ? echo : "", echo ? strlen (echo) : 0);

      soup_message_headers_append (cp_invocation_get_response_headers (invocation), "x-custom-header", "hv");
      soup_message_headers_append (cp_invocation_get_response_trailers (invocation), "x-custom-trailer", "t1");
      soup_message_headers_append (cp_invocation_get_response_trailers (invocation), "x-custom-trailer", "t2");
      response = kv_test_get_response (v, TRUE);
      cp_invocation_return_message (invocation, CP_MESSAGE (response));
      return;
    }

  value = g_hash_table_lookup (f->store, key);
  response = kv_test_get_response (value, value != NULL);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
notify_watchers (Fixture    *f,
                 const char *key,
                 GBytes     *value)
{
  for (guint i = 0; i < f->watchers->len; i++)
    {
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, key, value);

      cp_invocation_send_message (f->watchers->pdata[i], CP_MESSAGE (event), NULL);
    }
}

static void
handle_put (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  KvPutRequest *put = KV_PUT_REQUEST (request);
  g_autoptr(KvPutResponse) response = kv_put_response_new ();
  g_autoptr(GBytes) value = kv_put_request_get_value (put);  /* (transfer full) */

  g_hash_table_insert (f->store, g_strdup (kv_put_request_get_key (put)), g_bytes_ref (value));
  notify_watchers (f, kv_put_request_get_key (put), value);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  Fixture *f = user_data;
  const char *prefix = kv_watch_request_get_prefix (KV_WATCH_REQUEST (request));

  if (g_str_has_prefix (prefix, "finite:"))
    {
      guint n = atoi (prefix + strlen ("finite:"));

      for (guint i = 0; i < n; i++)
        {
          g_autofree char *key = g_strdup_printf ("k%u", i);
          g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, key, NULL);
          g_autoptr(GError) error = NULL;

          g_assert_true (cp_invocation_send_message (invocation, CP_MESSAGE (event), &error));
        }
      soup_message_headers_append (cp_invocation_get_response_trailers (invocation), "x-count", prefix);
      cp_invocation_return_ok (invocation);
      return;
    }
  if (g_str_equal (prefix, "fail"))
    {
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_DELETE, "x", NULL);

      cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
      cp_invocation_return_error (invocation, CP_ERROR_RESOURCE_EXHAUSTED, "too many watchers");
      return;
    }
  watch_cancellable (f, invocation);
  g_ptr_array_add (f->watchers, g_object_ref (invocation));
  {
    g_autoptr(KvWatchEvent) hello = kv_test_watch_event (KV_EVENT_TYPE_UNSPECIFIED, "", NULL);

    cp_invocation_send_message (invocation, CP_MESSAGE (hello), NULL);
  }
}

typedef struct {
  Fixture *f;
  CpInvocation *invocation;
  guint count;
} PutMany;

static void put_many_next (PutMany *pm);

static void
put_many_received (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  PutMany *pm = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (pm->invocation, result, &error);

  if (message == NULL && error == NULL)
    {
      /* End of the request stream: one response. */
      g_autofree char *count = g_strdup_printf ("%u", pm->count);
      g_autoptr(GBytes) v = g_bytes_new (count, strlen (count));
      g_autoptr(KvGetResponse) response = kv_test_get_response (v, TRUE);

      cp_invocation_return_message (pm->invocation, CP_MESSAGE (response));
      g_object_unref (pm->invocation);
      g_free (pm);
      return;
    }
  if (message == NULL)
    {
      g_object_unref (pm->invocation);
      g_free (pm);
      return;
    }
  pm->count++;
  put_many_next (pm);
}

static void
put_many_next (PutMany *pm)
{
  cp_invocation_receive_async (pm->invocation, NULL, put_many_received, pm);
}

static void
handle_put_many (CpInvocation *invocation,
                 CpMessage    *request,
                 gpointer      user_data)
{
  PutMany *pm = g_new0 (PutMany, 1);

  pm->f = user_data;
  pm->invocation = g_object_ref (invocation);
  put_many_next (pm);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  const char *transport = data;
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpMethodInfo) put = cp_method_info_new (KV_PROCEDURE_PUT, CP_METHOD_UNARY,
                                                    KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE);
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(CpMethodInfo) put_many = cp_method_info_new (KV_PROCEDURE_PUT_MANY, CP_METHOD_CLIENT_STREAMING,
                                                         KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  f->store = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref);
  f->watchers = g_ptr_array_new_with_free_func (g_object_unref);
  f->hanging = g_ptr_array_new_with_free_func (g_object_unref);

  cp_method_info_set_idempotency (get, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
  f->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (f->server, get, handle_get, f, NULL);
  cp_rpc_server_add_method (f->server, put, handle_put, f, NULL);
  cp_rpc_server_add_method (f->server, watch, handle_watch, f, NULL);
  cp_rpc_server_add_method (f->server, put_many, handle_put_many, f, NULL);

  if (g_str_equal (transport, "in-process"))
    f->channel = cp_channel_new_in_process (f->server);
  else
    {
      if (g_str_has_suffix (transport, "unix"))
        {
          g_autofree char *address = NULL;

          f->tmpdir = g_dir_make_tmp ("cp-client-XXXXXX", &error);
          g_assert_no_error (error);
          address = g_strdup_printf ("unix:%s/sock", f->tmpdir);
          url = cp_rpc_server_listen (f->server, address, &error);
        }
      else
        url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
      g_assert_no_error (error);
      g_assert_nonnull (url);
      f->channel = cp_channel_new (url, &error);
      g_assert_no_error (error);
      /* HTTP/2 with prior knowledge (our own HTTP/2 server). */
      if (g_str_has_prefix (transport, "h2c"))
        cp_channel_set_http_version (f->channel, CP_HTTP_VERSION_HTTP_2);
    }
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  for (guint i = 0; i < f->hanging->len; i++)
    cp_invocation_return_error (f->hanging->pdata[i], CP_ERROR_CANCELED, "teardown");
  for (guint i = 0; i < f->watchers->len; i++)
    cp_invocation_return_ok (f->watchers->pdata[i]);
  cp_rpc_server_close (f->server);
  /* Let pending sources of the closed server run. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->server);
  g_ptr_array_unref (f->hanging);
  g_ptr_array_unref (f->watchers);
  g_hash_table_unref (f->store);
  if (f->tmpdir)
    {
      g_autofree char *sock = g_build_filename (f->tmpdir, "sock", NULL);

      g_unlink (sock);
      g_rmdir (f->tmpdir);
      g_free (f->tmpdir);
    }
}

static CpMessage *
kv_get (Fixture        *f,
        const char     *key,
        CpCallOptions  *options,
        GError        **error)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);

  return test_call_unary (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                          KV_TYPE_GET_RESPONSE, options, NULL, error);
}

static void
kv_put (Fixture    *f,
        const char *key,
        const char *value,
        CpCodec     codec)
{
  g_autoptr(GBytes) v = g_bytes_new (value, strlen (value));
  g_autoptr(KvPutRequest) request = kv_test_put_request (key, v);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  cp_call_options_set_codec (options, codec);
  response = test_call_unary (f->channel, KV_PROCEDURE_PUT, CP_MESSAGE (request),
                              KV_TYPE_PUT_RESPONSE, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_PUT_RESPONSE (response));
}

static void
test_unary (Fixture       *f,
            gconstpointer  data)
{
  static const CpCodec codecs[] = { CP_CODEC_PROTO, CP_CODEC_JSON };

  for (gsize i = 0; i < G_N_ELEMENTS (codecs); i++)
    for (int gzip = 0; gzip < 2; gzip++)
      for (int use_get = 0; use_get < 2; use_get++)
        {
          g_autoptr(CpCallOptions) options = cp_call_options_new ();
          g_autoptr(CpMessage) response = NULL;
          g_autoptr(GError) error = NULL;
          g_autofree char *value = g_strdup_printf ("value-%" G_GSIZE_FORMAT "-%d-%d ☺", i, gzip, use_get);

          g_test_message ("codec %" G_GSIZE_FORMAT " gzip %d get %d", i, gzip, use_get);
          kv_put (f, "key", value, codecs[i]);
          cp_call_options_set_codec (options, codecs[i]);
          cp_call_options_set_compression (options, gzip ? CP_COMPRESSION_GZIP : CP_COMPRESSION_IDENTITY);
          cp_call_options_set_use_get (options, use_get);
          response = kv_get (f, "key", options, &error);
          g_assert_no_error (error);
          g_assert_cmpstr (test_get_value (response), ==, value);
          g_assert_true (kv_get_response_get_found (KV_GET_RESPONSE (response)));
        }
}

typedef struct {
  Fixture *f;
  gint done;
} SyncData;

static gpointer
sync_thread (gpointer user_data)
{
  SyncData *sd = user_data;
  g_autoptr(KvGetRequest) absent = kv_test_get_request ("absent");
  g_autoptr(KvGetRequest) present = kv_test_get_request ("present");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  response = cp_channel_call_sync (sd->f->channel, KV_PROCEDURE_GET, CP_MESSAGE (absent),
                                   KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (kv_get_response_get_found (KV_GET_RESPONSE (response)));
  g_clear_object (&response);
  response = cp_channel_call_sync (sd->f->channel, KV_PROCEDURE_GET, CP_MESSAGE (present),
                                   KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "p");
  g_atomic_int_set (&sd->done, 1);
  g_main_context_wakeup (NULL);
  return NULL;
}

static gboolean
sync_done (gpointer data)
{
  return g_atomic_int_get (&((SyncData *) data)->done);
}

static void
test_sync (Fixture       *f,
           gconstpointer  data)
{
  SyncData sd = { f, 0 };
  GThread *thread;

  kv_put (f, "present", "p", CP_CODEC_PROTO);
  /* Blocking calls from another thread while the server's context runs. */
  thread = g_thread_new ("sync", sync_thread, &sd);
  test_wait_until (sync_done, &sd);
  g_thread_join (thread);

  /* In-process with the server in this thread: the sync call iterates the
   * server's context itself. */
  if (g_str_equal (data, "in-process"))
    {
      g_autoptr(KvGetRequest) request = kv_test_get_request ("present");
      g_autoptr(CpMessage) response = NULL;
      g_autoptr(GError) error = NULL;

      response = cp_channel_call_sync (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                       KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (test_get_value (response), ==, "p");
    }
}

static void
test_metadata (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  SoupMessageHeaders *trailers;
  g_auto(GStrv) values = NULL;

  soup_message_headers_append (cp_call_options_get_request_headers (options), "x-echo", "Value1");
  soup_message_headers_append (cp_call_options_get_request_headers (options), "x-echo", "Value2");
  response = kv_get (f, "meta", options, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "Value1, Value2");
  g_assert_cmpstr (soup_message_headers_get_one (cp_call_options_get_response_headers (options),
                                                 "x-custom-header"), ==, "hv");
  trailers = cp_call_options_get_response_trailers (options);
  values = cp_metadata_get_values (trailers, "x-custom-trailer");
  g_assert_nonnull (values);
  g_assert_cmpuint (g_strv_length (values), ==, 2);
  g_assert_cmpstr (values[0], ==, "t1");
  g_assert_cmpstr (values[1], ==, "t2");
  g_assert_null (soup_message_headers_get_one (cp_call_options_get_response_headers (options),
                                               "x-custom-trailer"));
}

static void
test_error (Fixture       *f,
            gconstpointer  data)
{
  static const CpCodec codecs[] = { CP_CODEC_PROTO, CP_CODEC_JSON };

  for (gsize i = 0; i < G_N_ELEMENTS (codecs); i++)
    {
      g_autoptr(CpCallOptions) options = cp_call_options_new ();
      g_autoptr(CpMessage) response = NULL;
      g_autoptr(GError) error = NULL;
      GPtrArray *details;
      SoupMessageHeaders *metadata;

      cp_call_options_set_codec (options, codecs[i]);
      response = kv_get (f, "error", options, &error);
      g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
      g_assert_cmpstr (error->message, ==, "no such key ☺");
      details = cp_error_get_details (error);
      g_assert_nonnull (details);
      g_assert_cmpuint (details->len, ==, 1);
      g_assert_cmpstr (cp_error_detail_get_type_name (details->pdata[0]), ==, "google.rpc.RetryInfo");
      metadata = cp_error_get_metadata (error);
      g_assert_nonnull (metadata);
      g_assert_cmpstr (soup_message_headers_get_one (metadata, "x-head"), ==, "h");
      g_assert_cmpstr (soup_message_headers_get_one (metadata, "x-tail"), ==, "t");
      g_assert_cmpstr (soup_message_headers_get_one (cp_call_options_get_response_trailers (options),
                                                     "x-tail"), ==, "t");
    }
}

static void
test_unknown_method (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  response = test_call_unary (f->channel, "/kv.v1.KVService/Nope", CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
}

static guint
count_plain_hit (CpRpcServer  *server,
                 const char  **text,
                 gpointer      user_data)
{
  guint *hits = user_data;

  (*hits)++;
  *text = "method only";
  return 418;
}

/* CpChannel:method-only-paths on every transport (in-process included):
 * the request goes to "/Get", not to the KV service's "/kv.v1.KVService/Get". */
static void
test_method_only_paths (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  guint hits = 0;

  cp_rpc_server_add_plain_handler (f->server, "/Get", count_plain_hit, &hits, NULL);
  response = kv_get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hits, ==, 0);
  g_clear_object (&response);

  g_object_set (f->channel, "method-only-paths", TRUE, NULL);
  response = kv_get (f, "k", NULL, &error);
  g_assert_null (response);
  g_assert_nonnull (error);
  g_assert_cmpuint (hits, ==, 1);
}

typedef struct {
  CpChannel *channel;
  gint stop;
} HeaderFlipper;

static gpointer
flip_headers (gpointer data)
{
  HeaderFlipper *flipper = data;
  guint i = 0;

  while (!g_atomic_int_get (&flipper->stop))
    cp_channel_set_header (flipper->channel, "Authorization",
                           (i++ % 2) ? "Bearer odd-token" : "Bearer even-token");
  return NULL;
}

static void
record_authorization (CpServerInterceptor *interceptor,
                      CpInvocation        *invocation,
                      const GError        *error,
                      GPtrArray           *seen)
{
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);

  g_ptr_array_add (seen, g_strdup (soup_message_headers_get_list (headers, "Authorization")));
}

/* cp_channel_set_header() from another thread while calls are made: every
 * call carries exactly one of the values, whole (the channel's lock). */
static void
test_set_header_concurrent (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(CpServerInterceptor) interceptor = cp_server_interceptor_new ();
  g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func (g_free);
  HeaderFlipper flipper = { f->channel, 0 };
  GThread *thread;

  g_signal_connect (interceptor, "completed", G_CALLBACK (record_authorization), seen);
  cp_rpc_server_add_interceptor (f->server, interceptor);
  cp_channel_set_header (f->channel, "Authorization", "Bearer even-token");
  thread = g_thread_new ("flipper", flip_headers, &flipper);
  for (guint i = 0; i < 200; i++)
    {
      g_autoptr(CpMessage) response = NULL;
      g_autoptr(GError) error = NULL;

      response = kv_get (f, "k", NULL, &error);
      g_assert_no_error (error);
    }
  g_atomic_int_set (&flipper.stop, 1);
  g_thread_join (thread);

  g_assert_cmpuint (seen->len, ==, 200);
  for (guint i = 0; i < seen->len; i++)
    g_assert_true (g_strcmp0 (seen->pdata[i], "Bearer odd-token") == 0 ||
                   g_strcmp0 (seen->pdata[i], "Bearer even-token") == 0);
}

static gboolean
server_saw_cancel (gpointer data)
{
  Fixture *f = data;

  return f->n_server_cancelled > 0;
}

static void
test_timeout (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  cp_call_options_set_timeout_ms (options, 200);
  response = kv_get (f, "hang", options, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_cmpuint (f->hanging->len, ==, 1);
}

static gboolean
cancel_when_hanging (gpointer data)
{
  Fixture *f = data;

  if (f->hanging->len == 0)
    return G_SOURCE_CONTINUE;
  g_cancellable_cancel (g_object_get_data (G_OBJECT (f->server), "test-cancellable"));
  return G_SOURCE_REMOVE;
}

static void
test_cancel (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(KvGetRequest) request = kv_test_get_request ("hang");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  /* Cancel once the handler has the call. */
  g_object_set_data (G_OBJECT (f->server), "test-cancellable", cancellable);
  g_timeout_add (1, cancel_when_hanging, f);
  response = test_call_unary (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, NULL, cancellable, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (f->hanging->len, ==, 1);
  /* The server notices the aborted exchange. */
  test_wait_until (server_saw_cancel, f);
}

static CpResponseStream *
kv_watch (Fixture       *f,
          const char    *prefix,
          CpCallOptions *options)
{
  g_autoptr(KvWatchRequest) request = kv_test_watch_request (prefix);

  return cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH, CP_MESSAGE (request),
                                        KV_TYPE_WATCH_EVENT, options);
}

static void
test_stream (Fixture       *f,
             gconstpointer  data)
{
  static const CpCodec codecs[] = { CP_CODEC_PROTO, CP_CODEC_JSON };

  for (gsize i = 0; i < G_N_ELEMENTS (codecs); i++)
    for (int gzip = 0; gzip < 2; gzip++)
      {
        g_autoptr(CpCallOptions) options = cp_call_options_new ();
        StreamRun run;

        cp_call_options_set_codec (options, codecs[i]);
        cp_call_options_set_compression (options, gzip ? CP_COMPRESSION_GZIP : CP_COMPRESSION_IDENTITY);
        stream_run_init (&run, kv_watch (f, "finite:5", options));
        stream_run_wait (&run);
        g_assert_no_error (run.error);
        g_assert_true (run.got_headers);
        g_assert_cmpuint (run.messages->len, ==, 5);
        g_assert_cmpstr (kv_watch_event_get_key (run.messages->pdata[4]), ==, "k4");
        g_assert_cmpstr (soup_message_headers_get_one (cp_response_stream_get_response_trailers (run.stream),
                                                       "x-count"), ==, "finite:5");
        stream_run_clear (&run);
      }
}

static void
test_stream_error (Fixture       *f,
                   gconstpointer  data)
{
  StreamRun run;

  stream_run_init (&run, kv_watch (f, "fail", NULL));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpstr (run.error->message, ==, "too many watchers");
  g_assert_cmpuint (run.messages->len, ==, 1);
  stream_run_clear (&run);
}

static void
on_extra_message (CpResponseStream *stream,
                  CpMessage        *message,
                  gboolean         *seen)
{
  *seen = TRUE;
}

static void
test_stream_pause_resume (Fixture       *f,
                          gconstpointer  data)
{
  gboolean seen = FALSE;
  StreamRun run;

  stream_run_init (&run, kv_watch (f, "finite:50", NULL));
  run.pause_at = 1;
  while (run.messages->len == 0 && !run.closed)
    g_main_context_iteration (NULL, TRUE);
  g_signal_connect (run.stream, "message", G_CALLBACK (on_extra_message), &seen);
  for (int i = 0; i < 100; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (seen);
  g_assert_false (run.closed);
  g_assert_cmpuint (run.messages->len, ==, 1);

  cp_response_stream_resume (run.stream);
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_true (seen);
  g_assert_cmpuint (run.messages->len, ==, 50);
  g_signal_handlers_disconnect_by_func (run.stream, on_extra_message, &seen);
  stream_run_clear (&run);
}

static gboolean
has_watcher (gpointer data)
{
  Fixture *f = data;

  return f->watchers->len > 0;
}

static void
test_stream_live_and_cancel (Fixture       *f,
                             gconstpointer  data)
{
  StreamRun run;

  stream_run_init (&run, kv_watch (f, "", NULL));
  while (run.messages->len == 0 && !run.closed)
    g_main_context_iteration (NULL, TRUE);
  test_wait_until (has_watcher, f);
  g_assert_cmpuint (run.messages->len, ==, 1);

  /* Events pushed by another call arrive on the open stream. */
  kv_put (f, "live", "v", CP_CODEC_PROTO);
  while (run.messages->len < 2 && !run.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (kv_watch_event_get_key (run.messages->pdata[1]), ==, "live");

  cp_response_stream_cancel (run.stream);
  stream_run_wait (&run);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* The server notices the aborted exchange. */
  test_wait_until (server_saw_cancel, f);
  stream_run_clear (&run);
}

static gpointer
cancel_in_thread (gpointer data)
{
  g_cancellable_cancel (data);
  return NULL;
}

/* CpCallOptions:cancellable for stream calls: cancelled from another
 * thread, the stream closes with G_IO_ERROR_CANCELLED in its own context
 * (and the server sees the call go); already cancelled, the stream closes
 * at once without sending anything. */
static void
test_stream_options_cancellable (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  StreamRun run;

  cp_call_options_set_cancellable (options, cancellable);
  g_assert_true (cp_call_options_get_cancellable (options) == cancellable);
  stream_run_init (&run, kv_watch (f, "", options));
  while (run.messages->len == 0 && !run.closed)
    g_main_context_iteration (NULL, TRUE);
  test_wait_until (has_watcher, f);
  g_thread_join (g_thread_new ("cancel", cancel_in_thread, cancellable));
  stream_run_wait (&run);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  test_wait_until (server_saw_cancel, f);
  stream_run_clear (&run);

  /* Already cancelled: nothing reaches the server. */
  {
    guint watchers = f->watchers->len;

    stream_run_init (&run, kv_watch (f, "", options));
    stream_run_wait (&run);
    g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpuint (run.messages->len, ==, 0);
    g_assert_cmpuint (f->watchers->len, ==, watchers);
    stream_run_clear (&run);
  }

  /* A client stream too. */
  {
    g_autoptr(CpRequestStream) upload = cp_channel_call_client_stream (f->channel,
                                                                        "/kv.v1.KVService/PutMany",
                                                                        KV_TYPE_GET_RESPONSE, options);
    g_autoptr(GError) error = NULL;
    g_autoptr(CpMessage) response = test_client_stream (upload, &error);

    g_assert_null (response);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  }
}

static void
test_stream_deadline (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  StreamRun run;

  cp_call_options_set_timeout_ms (options, 300);
  stream_run_init (&run, kv_watch (f, "", options));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_cmpuint (run.messages->len, >=, 1);
  stream_run_clear (&run);
}

static void
test_kv_client_stream (Fixture       *f,
                    gconstpointer  data)
{
  static const CpCodec codecs[] = { CP_CODEC_PROTO, CP_CODEC_JSON };

  for (gsize i = 0; i < G_N_ELEMENTS (codecs); i++)
    {
      g_autoptr(CpCallOptions) options = cp_call_options_new ();
      g_autoptr(CpRequestStream) stream = NULL;
      g_autoptr(CpMessage) response = NULL;
      g_autoptr(GError) error = NULL;

      cp_call_options_set_codec (options, codecs[i]);
      cp_call_options_set_compression (options, CP_COMPRESSION_GZIP);
      stream = cp_channel_call_client_stream (f->channel, KV_PROCEDURE_PUT_MANY,
                                              KV_TYPE_GET_RESPONSE, options);
      for (int n = 0; n < 3; n++)
        {
          g_autoptr(GBytes) v = g_bytes_new ("x", 1);
          g_autoptr(KvPutRequest) put = kv_test_put_request ("k", v);

          g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (put), &error));
          g_assert_no_error (error);
        }
      response = test_client_stream (stream, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (test_get_value (response), ==, "3");
    }

  /* The blocking form: this thread iterates the stream's context (where
   * the in-process and TCP servers of the fixture answer too). */
  {
    g_autoptr(CpRequestStream) stream = cp_channel_call_client_stream (f->channel, KV_PROCEDURE_PUT_MANY,
                                                                        KV_TYPE_GET_RESPONSE, NULL);
    g_autoptr(GBytes) v = g_bytes_new ("x", 1);
    g_autoptr(KvPutRequest) put = kv_test_put_request ("k", v);
    g_autoptr(CpMessage) response = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (put), &error));
    g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (put), &error));
    response = cp_request_stream_close_sync (stream, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (test_get_value (response), ==, "2");
  }
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main context for @ms milliseconds. */
static void
run_for (guint ms)
{
  gboolean elapsed = FALSE;

  g_timeout_add (ms, set_flag, &elapsed);
  test_wait_for (&elapsed);
}

/* Issue 12: the channel's default timeout is for unary calls; a quiet live
 * Watch and a slow client stream outlive it (5 times over here). */
static void
test_streams_no_default_deadline (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(CpRequestStream) upload = NULL;
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) v = g_bytes_new ("x", 1);
  g_autoptr(KvPutRequest) put = kv_test_put_request ("k", v);
  StreamRun run;

  g_object_set (f->channel, "timeout-ms", (gint64) 100, NULL);
  stream_run_init (&run, kv_watch (f, "", NULL));
  upload = cp_channel_call_client_stream (f->channel, KV_PROCEDURE_PUT_MANY,
                                          KV_TYPE_GET_RESPONSE, NULL);
  run_for (500);
  g_assert_false (run.closed);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, 1);

  g_assert_true (cp_request_stream_send (upload, CP_MESSAGE (put), &error));
  g_assert_no_error (error);
  response = test_client_stream (upload, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "1");

  /* Unary calls keep the channel's timeout. */
  g_clear_object (&response);
  response = kv_get (f, "hang", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_false (run.closed);

  cp_response_stream_cancel (run.stream);
  stream_run_wait (&run);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  stream_run_clear (&run);
}

typedef struct {
  CpChannel *channel;
  gint done;
} WorkerData;

static gpointer
worker_thread (gpointer user_data)
{
  WorkerData *wd = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(KvGetRequest) request = kv_test_get_request ("absent");
  g_autoptr(KvWatchRequest) watch = kv_test_watch_request ("finite:3");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  StreamRun run;

  g_main_context_push_thread_default (context);
  /* The callback must run here (test_call_unary checks the thread). */
  response = test_call_unary (wd->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (kv_get_response_get_found (KV_GET_RESPONSE (response)));

  /* Signals on this thread, with this context owned (StreamRun checks). */
  stream_run_init (&run, cp_channel_call_server_stream (wd->channel, KV_PROCEDURE_WATCH,
                                                        CP_MESSAGE (watch),
                                                        KV_TYPE_WATCH_EVENT, NULL));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, 3);
  stream_run_clear (&run);

  g_main_context_pop_thread_default (context);
  g_atomic_int_set (&wd->done, 1);
  g_main_context_wakeup (NULL);
  return NULL;
}

static gboolean
worker_done (gpointer data)
{
  WorkerData *wd = data;

  return g_atomic_int_get (&wd->done);
}

static void
test_actor_worker_thread (Fixture       *f,
                          gconstpointer  data)
{
  WorkerData wd = { f->channel, 0 };
  GThread *thread;

  /* The server (and for in-process, the channel) live in the main
   * context; the calls are made from a worker thread with its own. */
  thread = g_thread_new ("worker", worker_thread, &wd);
  test_wait_until (worker_done, &wd);
  g_thread_join (thread);
}

static void
add_tests (const char *transport)
{
#define ADD(name, func) G_STMT_START { \
    g_autofree char *path = g_strdup_printf ("/client/kv/%s/%s", transport, name); \
    g_test_add (path, Fixture, transport, fixture_setup, func, fixture_teardown); \
  } G_STMT_END

  ADD ("unary", test_unary);
  ADD ("sync", test_sync);
  ADD ("metadata", test_metadata);
  ADD ("error", test_error);
  ADD ("unknown-method", test_unknown_method);
  ADD ("method-only-paths", test_method_only_paths);
  ADD ("set-header-concurrent", test_set_header_concurrent);
  ADD ("timeout", test_timeout);
  ADD ("cancel", test_cancel);
  ADD ("stream", test_stream);
  ADD ("stream-error", test_stream_error);
  ADD ("stream-pause-resume", test_stream_pause_resume);
  ADD ("stream-live-cancel", test_stream_live_and_cancel);
  ADD ("stream-options-cancellable", test_stream_options_cancellable);
  ADD ("stream-deadline", test_stream_deadline);
  ADD ("streams-no-default-deadline", test_streams_no_default_deadline);
  ADD ("client-stream", test_kv_client_stream);
  ADD ("actor-worker-thread", test_actor_worker_thread);
#undef ADD
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  add_tests ("tcp");
  add_tests ("unix");
  add_tests ("in-process");
  add_tests ("h2c");
  add_tests ("h2c-unix");

  return g_test_run ();
}
