/* test-node-h2.c: our HTTP/2 client (CpChannel:http-version 2) against a
 * connect-node server over HTTP/2
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Starts tests/interop/node/kv-server-h2.mjs on 127.0.0.1:0 twice: h2c
 * (prior knowledge) and TLS with ALPN h2 (a certificate made for the run),
 * then calls them through CpChannel: unary calls with headers and
 * trailers, an error, a deadline, a server stream, a client stream, a
 * full-duplex bidi stream (each response read before the next request is
 * sent), and many concurrent calls multiplexed on one connection (the
 * server counts the connections it accepted). A third peer speaks HTTPS
 * over HTTP/1.1 only: the channel falls back to libsoup there. Skipped (77)
 * without node or the npm peers; the TLS cases need openssl.
 */
#include <connectplugin.h>
#include <glib/gstdio.h>

#include "kv-test.h"

#define STREAMS_PUT_MANY "/kv.v1.KVStreams/PutMany"
#define STREAMS_ECHO     "/kv.v1.KVStreams/Echo"
#define STREAMS_STATS    "/kv.v1.KVStreams/Stats"

typedef struct {
  GSubprocess *process;
  char *url;
} NodePeer;

static NodePeer h2c_peer, tls_peer, http1_peer;
static char *tmp_dir;
static GTlsDatabase *tls_database;

static gboolean
start_peer (NodePeer   *peer,
            const char *cert,
            const char *key,
            const char *mode)
{
  g_autofree char *node = g_find_program_in_path ("node");
  g_autofree char *script = g_build_filename (NODE_PEER_DIR, "kv-server-h2.mjs", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) out = NULL;

  peer->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                                    node, script, KV_DESCRIPTOR_SET, cert, key, mode, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (peer->process));
  peer->url = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (peer->url);
  return TRUE;
}

static void
stop_peer (NodePeer *peer)
{
  if (peer->process == NULL)
    return;
  g_subprocess_send_signal (peer->process, SIGTERM);
  g_subprocess_wait (peer->process, NULL, NULL);
  g_clear_object (&peer->process);
  g_clear_pointer (&peer->url, g_free);
}

/* A self-signed certificate for 127.0.0.1, made with openssl for the run;
 * FALSE when openssl is missing (the TLS cases are then skipped). */
static gboolean
make_certificate (char **cert_path,
                  char **key_path)
{
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  g_autoptr(GError) error = NULL;
  int status = 0;

  if (openssl == NULL)
    return FALSE;
  *cert_path = g_build_filename (tmp_dir, "cert.pem", NULL);
  *key_path = g_build_filename (tmp_dir, "key.pem", NULL);
  const char *argv[] = {
    openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    "-keyout", *key_path, "-out", *cert_path, NULL
  };
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                NULL, NULL, NULL, NULL, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    return FALSE;
  tls_database = g_tls_file_database_new (*cert_path, &error);
  g_assert_no_error (error);
  return TRUE;
}

static CpChannel *
new_channel (gboolean tls)
{
  g_autoptr(GError) error = NULL;
  CpChannel *channel = cp_channel_new (tls ? tls_peer.url : h2c_peer.url, &error);

  g_assert_no_error (error);
  cp_channel_set_http_version (channel, CP_HTTP_VERSION_HTTP_2);
  g_assert_cmpint (cp_channel_get_http_version (channel), ==, CP_HTTP_VERSION_HTTP_2);
  if (tls)
    g_object_set (channel, "tls-database", tls_database, NULL);
  return channel;
}

static CpCallOptions *
options_for (CpCodec codec)
{
  CpCallOptions *options = cp_call_options_new ();
  cp_call_options_set_codec (options, codec);
  return options;
}

/* How many connections the peer has accepted so far. */
static guint
peer_connections (CpChannel *channel)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetRequest) req = kv_test_get_request ("");
  g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, STREAMS_STATS, CP_MESSAGE (req),
                                                    KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_autoptr(GBytes) value = NULL;
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  value = kv_get_response_get_value (KV_GET_RESPONSE (resp));
  text = g_strndup (g_bytes_get_data (value, NULL), g_bytes_get_size (value));
  return (guint) g_ascii_strtoull (text, NULL, 10);
}

static void
check_unary (CpChannel *channel,
             CpCodec    codec)
{
  g_autoptr(GError) error = NULL;
  const guint8 raw[] = { 0x00, 0xff, 0x01, 0x80, 0x00 };
  g_autoptr(GBytes) value = g_bytes_new (raw, sizeof raw);
  g_autofree char *key = g_strdup_printf ("h2/%s/bin", cp_codec_to_string (codec));
  g_autoptr(KvPutRequest) put = kv_test_put_request (key, value);
  g_autoptr(CpCallOptions) put_opts = options_for (codec);
  g_autoptr(CpMessage) put_resp = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (put),
                                                        KV_TYPE_PUT_RESPONSE, put_opts, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_PUT_RESPONSE (put_resp));
  g_assert_nonnull (soup_message_headers_get_one (cp_call_options_get_response_headers (put_opts), "x-kv-size"));
  g_assert_cmpstr (soup_message_headers_get_one (cp_call_options_get_response_trailers (put_opts),
                                                 "x-kv-trailer"), ==, "done");

  g_autoptr(KvGetRequest) get = kv_test_get_request (key);
  g_autoptr(CpCallOptions) get_opts = options_for (codec);
  g_autoptr(CpMessage) got = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (get),
                                                   KV_TYPE_GET_RESPONSE, get_opts, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (KV_GET_RESPONSE (got)));
  g_autoptr(GBytes) got_value = kv_get_response_get_value (KV_GET_RESPONSE (got));
  g_assert_true (g_bytes_equal (got_value, value));
}

static void
test_unary (gconstpointer data)
{
  CpCodec codec = GPOINTER_TO_INT (data);
  g_autoptr(CpChannel) channel = new_channel (FALSE);

  check_unary (channel, codec);
}

static void
test_error_and_deadline (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = new_channel (FALSE);
  g_autoptr(KvPutRequest) empty = kv_test_put_request ("", NULL);
  g_autoptr(KvPutRequest) slow = kv_test_put_request ("slow", NULL);
  g_autoptr(CpCallOptions) opts = cp_call_options_new ();
  g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (empty),
                                                    KV_TYPE_PUT_RESPONSE, NULL, NULL, &error);

  g_assert_null (resp);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "key must not be empty");
  g_clear_error (&error);

  /* The node handler takes 2 s for "slow"; 200 ms allowed: the stream is
   * reset (RST_STREAM CANCEL) and the connection stays usable. */
  cp_call_options_set_timeout_ms (opts, 200);
  resp = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (slow),
                               KV_TYPE_PUT_RESPONSE, opts, NULL, &error);
  g_assert_null (resp);
  g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  check_unary (channel, CP_CODEC_PROTO);
}

static void
test_refused (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new ("http://127.0.0.1:1", &error);
  g_autoptr(KvGetRequest) get = kv_test_get_request ("x");
  g_autoptr(CpMessage) resp = NULL;

  g_assert_no_error (error);
  cp_channel_set_http_version (channel, CP_HTTP_VERSION_HTTP_2);
  resp = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (get),
                               KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_null (resp);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
}

typedef struct {
  GMainLoop *loop;
  GPtrArray *keys;
  GError *error;
  gboolean closed;
  guint pending;
  CpRequestStream *requests;   /* full-duplex: the next request is sent from a response */
  guint sent;
} StreamData;

static void
on_message (CpResponseStream *stream,
            CpMessage        *message,
            StreamData       *sd)
{
  g_ptr_array_add (sd->keys, g_strdup (kv_watch_event_get_key (KV_WATCH_EVENT (message))));
  if (sd->requests != NULL)
    {
      g_autoptr(GError) error = NULL;

      if (sd->sent < 3)
        {
          g_autofree char *key = g_strdup_printf ("echo-%u", sd->sent++);
          g_autoptr(KvPutRequest) req = kv_test_put_request (key, NULL);

          g_assert_true (cp_request_stream_send (sd->requests, CP_MESSAGE (req), &error));
          g_assert_no_error (error);
        }
      else
        cp_request_stream_close_send (sd->requests);
    }
}

static void
on_closed (CpResponseStream *stream,
           GError           *error,
           StreamData       *sd)
{
  sd->closed = TRUE;
  sd->error = error ? g_error_copy (error) : NULL;
  g_main_loop_quit (sd->loop);
}

static void
run_stream (CpResponseStream *stream,
            StreamData       *sd)
{
  sd->loop = g_main_loop_new (NULL, FALSE);
  sd->keys = g_ptr_array_new_with_free_func (g_free);
  g_signal_connect (stream, "message", G_CALLBACK (on_message), sd);
  g_signal_connect (stream, "closed", G_CALLBACK (on_closed), sd);
  g_main_loop_run (sd->loop);
  g_main_loop_unref (sd->loop);
}

static void
test_server_stream (gconstpointer data)
{
  gboolean tls = GPOINTER_TO_INT (data);
  g_autoptr(CpChannel) channel = new_channel (tls);
  g_autoptr(KvWatchRequest) req = kv_test_watch_request ("w/");
  g_autoptr(CpResponseStream) stream = cp_channel_call_server_stream (channel, KV_PROCEDURE_WATCH,
                                                                      CP_MESSAGE (req),
                                                                      KV_TYPE_WATCH_EVENT, NULL);
  StreamData sd = { 0 };

  run_stream (stream, &sd);
  g_assert_no_error (sd.error);
  g_assert_cmpuint (sd.keys->len, ==, 3);
  g_assert_cmpstr (g_ptr_array_index (sd.keys, 2), ==, "w/2");
  g_ptr_array_unref (sd.keys);
}

static void
test_client_stream (gconstpointer data)
{
  gboolean tls = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = new_channel (tls);
  g_autoptr(CpRequestStream) stream = cp_channel_call_client_stream (channel, STREAMS_PUT_MANY,
                                                                     KV_TYPE_GET_RESPONSE, NULL);
  g_autoptr(CpMessage) resp = NULL;
  g_autoptr(GBytes) value = NULL;

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *key = g_strdup_printf ("many-%u", i);
      g_autoptr(KvPutRequest) req = kv_test_put_request (key, NULL);

      g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (req), &error));
    }
  resp = cp_request_stream_close_sync (stream, NULL, &error);
  g_assert_no_error (error);
  value = kv_get_response_get_value (KV_GET_RESPONSE (resp));
  g_assert_cmpmem (g_bytes_get_data (value, NULL), g_bytes_get_size (value),
                   "many-0,many-1,many-2", strlen ("many-0,many-1,many-2"));
}

/* Full duplex: the first request goes out, and each later one only once
 * the response to the previous one has arrived; a half-duplex transport
 * would wait forever (the deadline ends the call then). */
static void
test_bidi_duplex (gconstpointer data)
{
  gboolean tls = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = new_channel (tls);
  g_autoptr(CpCallOptions) opts = cp_call_options_new ();
  g_autoptr(CpRequestStream) requests = NULL;
  g_autoptr(CpResponseStream) responses = NULL;
  g_autoptr(KvPutRequest) first = kv_test_put_request ("echo-first", NULL);
  StreamData sd = { 0 };

  cp_call_options_set_timeout_ms (opts, 10000);
  requests = cp_channel_call_bidi_stream (channel, STREAMS_ECHO, KV_TYPE_WATCH_EVENT, opts);
  responses = cp_request_stream_start_duplex (requests);
  g_assert_nonnull (responses);
  g_assert_true (cp_request_stream_send (requests, CP_MESSAGE (first), &error));
  g_assert_no_error (error);
  sd.requests = requests;
  run_stream (responses, &sd);
  g_assert_no_error (sd.error);
  g_assert_cmpuint (sd.keys->len, ==, 4);
  g_assert_cmpstr (g_ptr_array_index (sd.keys, 0), ==, "echo-first");
  g_assert_cmpstr (g_ptr_array_index (sd.keys, 3), ==, "echo-2");
  g_ptr_array_unref (sd.keys);
}

static void
on_call_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  StreamData *sd = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) resp = cp_channel_call_finish (CP_CHANNEL (source), result, &error);

  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (resp));
  if (--sd->pending == 0)
    g_main_loop_quit (sd->loop);
}

/* 64 calls under way at once, then more from another thread: one
 * connection (the peer's count does not move). */
static gpointer
thread_calls (gpointer user_data)
{
  CpChannel *channel = user_data;

  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(KvGetRequest) get = kv_test_get_request ("thread");
      g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (get),
                                                        KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
      g_assert_no_error (error);
    }
  return NULL;
}

static void
test_multiplex (gconstpointer data)
{
  gboolean tls = GPOINTER_TO_INT (data);
  g_autoptr(CpChannel) channel = new_channel (tls);
  guint before = peer_connections (channel);
  StreamData sd = { 0 };
  GThread *thread;

  sd.loop = g_main_loop_new (NULL, FALSE);
  for (guint i = 0; i < 64; i++)
    {
      g_autofree char *key = g_strdup_printf ("mux-%u", i);
      g_autoptr(KvGetRequest) get = kv_test_get_request (key);

      cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (get), KV_TYPE_GET_RESPONSE,
                             NULL, NULL, on_call_done, &sd);
      sd.pending++;
    }
  thread = g_thread_new ("calls", thread_calls, channel);
  g_main_loop_run (sd.loop);
  g_thread_join (thread);
  g_main_loop_unref (sd.loop);
  g_assert_cmpuint (peer_connections (channel), ==, before);
}

/* A TLS server that does not offer h2 in ALPN: the HTTP/2 channel speaks
 * HTTP/1.1 to it (through libsoup); a full-duplex call cannot work there
 * and fails with `unavailable`. */
static void
test_http1_fallback (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (http1_peer.url, &error);
  g_autoptr(CpRequestStream) stream = NULL;
  g_autoptr(CpRequestStream) requests = NULL;
  g_autoptr(CpResponseStream) responses = NULL;
  g_autoptr(KvPutRequest) req = kv_test_put_request ("fallback", NULL);
  g_autoptr(CpMessage) resp = NULL;
  StreamData sd = { 0 };

  g_assert_no_error (error);
  cp_channel_set_http_version (channel, CP_HTTP_VERSION_HTTP_2);
  g_object_set (channel, "tls-database", tls_database, NULL);
  check_unary (channel, CP_CODEC_PROTO);

  stream = cp_channel_call_client_stream (channel, STREAMS_PUT_MANY, KV_TYPE_GET_RESPONSE, NULL);
  g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (req), &error));
  resp = cp_request_stream_close_sync (stream, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (resp));

  requests = cp_channel_call_bidi_stream (channel, STREAMS_ECHO, KV_TYPE_WATCH_EVENT, NULL);
  responses = cp_request_stream_start_duplex (requests);
  g_assert_true (cp_request_stream_send (requests, CP_MESSAGE (req), &error));
  run_stream (responses, &sd);
  g_assert_error (sd.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&sd.error);
  g_ptr_array_unref (sd.keys);
}

int
main (int argc, char **argv)
{
  g_autofree char *modules = g_build_filename (NODE_PEER_DIR, "node_modules", "@connectrpc",
                                               "connect-node", NULL);
  g_autofree char *node = g_find_program_in_path ("node");
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  gboolean tls;
  int rc;

  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();
  if (node == NULL || !g_file_test (modules, G_FILE_TEST_IS_DIR))
    {
      g_print ("SKIP: node or the npm peers are not installed (run scripts/dev setup)\n");
      return 77;
    }
  tmp_dir = g_dir_make_tmp ("cp-node-h2-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  start_peer (&h2c_peer, NULL, NULL, NULL);
  tls = make_certificate (&cert, &key) && start_peer (&tls_peer, cert, key, NULL) &&
        start_peer (&http1_peer, cert, key, "http1");

  for (CpCodec codec = CP_CODEC_PROTO; codec <= CP_CODEC_JSON; codec++)
    {
      g_autofree char *path = g_strdup_printf ("/interop/node-h2/h2c/%s/unary", cp_codec_to_string (codec));
      g_test_add_data_func (path, GINT_TO_POINTER (codec), test_unary);
    }
  g_test_add_func ("/interop/node-h2/h2c/error-and-deadline", test_error_and_deadline);
  g_test_add_func ("/interop/node-h2/h2c/refused", test_refused);
  for (int t = 0; t <= (tls ? 1 : 0); t++)
    {
      const char *mode = t ? "tls" : "h2c";
      g_autofree char *p1 = g_strdup_printf ("/interop/node-h2/%s/server-stream", mode);
      g_autofree char *p2 = g_strdup_printf ("/interop/node-h2/%s/client-stream", mode);
      g_autofree char *p3 = g_strdup_printf ("/interop/node-h2/%s/bidi-full-duplex", mode);
      g_autofree char *p4 = g_strdup_printf ("/interop/node-h2/%s/multiplex", mode);

      g_test_add_data_func (p1, GINT_TO_POINTER (t), test_server_stream);
      g_test_add_data_func (p2, GINT_TO_POINTER (t), test_client_stream);
      g_test_add_data_func (p3, GINT_TO_POINTER (t), test_bidi_duplex);
      g_test_add_data_func (p4, GINT_TO_POINTER (t), test_multiplex);
    }
  if (tls)
    g_test_add_func ("/interop/node-h2/tls-http1/fallback", test_http1_fallback);

  rc = g_test_run ();
  stop_peer (&h2c_peer);
  stop_peer (&tls_peer);
  stop_peer (&http1_peer);
  g_clear_object (&tls_database);
  if (cert != NULL)
    g_unlink (cert);
  if (key != NULL)
    g_unlink (key);
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return rc;
}
