/* test-node-server.c: our client (CpChannel) against a connect-node server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Starts tests/interop/node/kv-server.mjs on 127.0.0.1:0 (a real connect-node
 * server over HTTP/1.1), then calls it through CpChannel in both codecs:
 * unary calls with binary payloads, metadata and trailers, an error, a local
 * timeout, and a server stream followed through signals.
 */
#include <connectplugin.h>
#include <glib/gstdio.h>

#include "kv-test.h"

static GSubprocess *node_server;
static char *node_url;

static gboolean
start_node_server (void)
{
  g_autofree char *modules = g_build_filename (NODE_PEER_DIR, "node_modules", "@connectrpc", "connect-node", NULL);
  g_autofree char *node = g_find_program_in_path ("node");
  g_autoptr(GError) error = NULL;

  if (node == NULL || !g_file_test (modules, G_FILE_TEST_IS_DIR))
    return FALSE;

  g_autofree char *script = g_build_filename (NODE_PEER_DIR, "kv-server.mjs", NULL);
  node_server = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                                  node, script, KV_DESCRIPTOR_SET, NULL);
  g_assert_no_error (error);
  g_autoptr(GDataInputStream) out =
    g_data_input_stream_new (g_subprocess_get_stdout_pipe (node_server));
  node_url = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (node_url);
  g_assert_true (g_str_has_prefix (node_url, "http://127.0.0.1:"));
  return TRUE;
}

static CpCallOptions *
options_for (CpCodec codec)
{
  CpCallOptions *options = cp_call_options_new ();
  cp_call_options_set_codec (options, codec);
  return options;
}

static void
test_unary (gconstpointer data)
{
  CpCodec codec = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (node_url, &error);
  g_assert_no_error (error);

  const guint8 raw[] = { 0x00, 0xff, 0x01, 0x80, 0x00 };
  g_autoptr(GBytes) value = g_bytes_new (raw, sizeof raw);
  g_autofree char *key = g_strdup_printf ("%s/bin", cp_codec_to_string (codec));
  g_autoptr(KvPutRequest) put = kv_test_put_request (key, value);
  g_autoptr(CpCallOptions) put_opts = options_for (codec);
  g_autoptr(CpMessage) put_resp = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (put),
                                                        KV_TYPE_PUT_RESPONSE, put_opts, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_PUT_RESPONSE (put_resp));
  /* leading metadata and a trailer set by the connect-node handler */
  g_assert_nonnull (soup_message_headers_get_one (cp_call_options_get_response_headers (put_opts), "x-kv-size"));
  g_assert_cmpstr (soup_message_headers_get_one (cp_call_options_get_response_trailers (put_opts), "x-kv-trailer"), ==, "done");

  g_autoptr(KvGetRequest) get = kv_test_get_request (key);
  g_autoptr(CpCallOptions) get_opts = options_for (codec);
  g_autoptr(CpMessage) got = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (get),
                                                   KV_TYPE_GET_RESPONSE, get_opts, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (KV_GET_RESPONSE (got)));
  g_autoptr(GBytes) got_value = kv_get_response_get_value (KV_GET_RESPONSE (got));
  g_assert_true (g_bytes_equal (got_value, value));

  g_autoptr(KvDeleteRequest) del = kv_test_delete_request (key);
  g_autoptr(CpCallOptions) del_opts = options_for (codec);
  g_autoptr(CpMessage) deleted = cp_channel_call_sync (channel, KV_PROCEDURE_DELETE, CP_MESSAGE (del),
                                                       KV_TYPE_DELETE_RESPONSE, del_opts, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (kv_delete_response_get_found (KV_DELETE_RESPONSE (deleted)));
}

static void
test_error (gconstpointer data)
{
  CpCodec codec = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (node_url, &error);
  g_assert_no_error (error);

  g_autoptr(KvPutRequest) put = kv_test_put_request ("", NULL);
  g_autoptr(CpCallOptions) opts = options_for (codec);
  g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (put),
                                                    KV_TYPE_PUT_RESPONSE, opts, NULL, &error);
  g_assert_null (resp);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "key must not be empty");
}

static void
test_timeout (gconstpointer data)
{
  CpCodec codec = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (node_url, &error);
  g_assert_no_error (error);

  /* The node handler takes 2 s for the key "slow"; we allow 200 ms. */
  g_autoptr(KvPutRequest) put = kv_test_put_request ("slow", NULL);
  g_autoptr(CpCallOptions) opts = options_for (codec);
  cp_call_options_set_timeout_ms (opts, 200);
  g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (put),
                                                    KV_TYPE_PUT_RESPONSE, opts, NULL, &error);
  g_assert_null (resp);
  g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
}

typedef struct {
  GMainLoop *loop;
  GPtrArray *keys;
  guint      ping_source;
  gboolean   pinged;
  GError    *closed_error;
  gboolean   closed;
  CpChannel *channel;
  CpCodec    codec;
} WatchData;

static void put_key (WatchData *wd, const char *key);
static void put_changes (WatchData *wd);

static void
on_message (CpResponseStream *stream, CpMessage *message, WatchData *wd)
{
  if (g_str_has_suffix (kv_watch_event_get_key (KV_WATCH_EVENT (message)), "ping"))
    {
      /* The watch is registered on the server: make the changes it must see. */
      if (!wd->pinged)
        {
          wd->pinged = TRUE;
          g_clear_handle_id (&wd->ping_source, g_source_remove);
          put_changes (wd);
        }
      return;
    }
  g_ptr_array_add (wd->keys, g_strdup_printf ("%d:%s", kv_watch_event_get_type_ (KV_WATCH_EVENT (message)),
                                              kv_watch_event_get_key (KV_WATCH_EVENT (message))));
  if (wd->keys->len == 3)
    cp_response_stream_cancel (stream);
}

static void
on_closed (CpResponseStream *stream, GError *error, WatchData *wd)
{
  wd->closed = TRUE;
  wd->closed_error = error ? g_error_copy (error) : NULL;
  g_main_loop_quit (wd->loop);
}

static void
put_key (WatchData *wd, const char *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvPutRequest) put = kv_test_put_request (key, NULL);
  g_autoptr(CpCallOptions) opts = options_for (wd->codec);
  g_autoptr(CpMessage) resp = cp_channel_call_sync (wd->channel, KV_PROCEDURE_PUT, CP_MESSAGE (put),
                                                    KV_TYPE_PUT_RESPONSE, opts, NULL, &error);
  g_assert_no_error (error);
}

/* Until the first event arrives we cannot know that the server has
 * registered the watch (connect-node sends the response head with the first
 * message), so keep putting a ping key under the prefix until one is seen. */
static gboolean
ping (gpointer user_data)
{
  WatchData *wd = user_data;
  g_autofree char *key = g_strdup_printf ("%s-w/ping", cp_codec_to_string (wd->codec));
  put_key (wd, key);
  return G_SOURCE_CONTINUE;
}

static void
put_changes (WatchData *wd)
{
  g_autofree char *k1 = g_strdup_printf ("%s-w/1", cp_codec_to_string (wd->codec));
  g_autofree char *k2 = g_strdup_printf ("%s-other", cp_codec_to_string (wd->codec));
  g_autofree char *k3 = g_strdup_printf ("%s-w/2", cp_codec_to_string (wd->codec));
  g_autofree char *k4 = g_strdup_printf ("%s-w/3", cp_codec_to_string (wd->codec));
  put_key (wd, k1);
  put_key (wd, k2);
  put_key (wd, k3);
  put_key (wd, k4);
}

static void
test_watch (gconstpointer data)
{
  CpCodec codec = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (node_url, &error);
  g_assert_no_error (error);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  WatchData wd = { .loop = loop, .keys = g_ptr_array_new_with_free_func (g_free), .channel = channel, .codec = codec };
  g_autofree char *prefix = g_strdup_printf ("%s-w/", cp_codec_to_string (codec));
  g_autoptr(KvWatchRequest) req = kv_test_watch_request (prefix);
  g_autoptr(CpCallOptions) opts = options_for (codec);

  g_autoptr(CpResponseStream) stream = cp_channel_call_server_stream (channel, KV_PROCEDURE_WATCH, CP_MESSAGE (req),
                                                                      KV_TYPE_WATCH_EVENT, opts);
  wd.ping_source = g_timeout_add (100, ping, &wd);
  g_signal_connect (stream, "message", G_CALLBACK (on_message), &wd);
  g_signal_connect (stream, "closed", G_CALLBACK (on_closed), &wd);
  cp_response_stream_start (stream);
  g_main_loop_run (loop);

  g_clear_handle_id (&wd.ping_source, g_source_remove);
  g_assert_true (wd.closed);
  g_assert_error (wd.closed_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (wd.keys->len, ==, 3);
  g_autofree char *e1 = g_strdup_printf ("1:%s1", prefix);
  g_autofree char *e3 = g_strdup_printf ("1:%s3", prefix);
  g_assert_cmpstr (g_ptr_array_index (wd.keys, 0), ==, e1);
  g_assert_cmpstr (g_ptr_array_index (wd.keys, 2), ==, e3);
  g_clear_error (&wd.closed_error);
  g_ptr_array_unref (wd.keys);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  if (!start_node_server ())
    {
      g_print ("SKIP: node or the npm peers are not installed (run scripts/dev setup)\n");
      return 77;
    }

  for (CpCodec codec = CP_CODEC_PROTO; codec <= CP_CODEC_JSON; codec++)
    {
      const char *name = cp_codec_to_string (codec);
      g_autofree char *p1 = g_strdup_printf ("/interop/node-server/%s/unary", name);
      g_autofree char *p2 = g_strdup_printf ("/interop/node-server/%s/error", name);
      g_autofree char *p3 = g_strdup_printf ("/interop/node-server/%s/timeout", name);
      g_autofree char *p4 = g_strdup_printf ("/interop/node-server/%s/watch", name);
      g_test_add_data_func (p1, GINT_TO_POINTER (codec), test_unary);
      g_test_add_data_func (p2, GINT_TO_POINTER (codec), test_error);
      g_test_add_data_func (p3, GINT_TO_POINTER (codec), test_timeout);
      g_test_add_data_func (p4, GINT_TO_POINTER (codec), test_watch);
    }

  int rc = g_test_run ();
  g_subprocess_send_signal (node_server, SIGTERM);
  g_subprocess_wait (node_server, NULL, NULL);
  g_clear_object (&node_server);
  g_free (node_url);
  return rc;
}
