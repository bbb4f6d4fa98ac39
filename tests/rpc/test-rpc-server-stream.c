/* test-rpc-server-stream.c: CpRpcServer: streams and back-pressure
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Server, client and bidi (half-duplex) streams, their errors and
 * cardinality, and senders facing a client that does not read.
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
/* Streams                                                              */

static void
test_server_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("n:2");
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GError) error = NULL;
  RawResponse resp;
  GArray *envs;

  envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Protocol-Version: 1\r\n", env, &resp);
  assert_header (resp.headers, "Content-Type", "application/connect+proto");
  assert_header (resp.headers, "x-custom-header", "foo, bar");
  g_assert_null (soup_message_headers_get_one (resp.headers, "Trailer"));
  g_assert_cmpuint (envs->len, ==, 3);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(CpMessage) event = NULL;
      g_autofree char *key = g_strdup_printf ("key%u", i);

      g_assert_cmpuint (g_array_index (envs, RawEnvelope, i).flags, ==, 0);
      event = cp_message_new_from_bytes (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO,
                                         g_array_index (envs, RawEnvelope, i).payload, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (kv_watch_event_get_key (KV_WATCH_EVENT (event)), ==, key);
    }
  error = parse_end_stream (g_array_index (envs, RawEnvelope, 2).payload, trailers);
  g_assert_no_error (error);
  assert_header (trailers, "x-custom-trailer", "bing, quux");
  raw_envelopes_free (envs);
  raw_response_clear (&resp);

  /* Zero responses: EndStream only. */
  {
    g_autoptr(GBytes) zero = watch_request_envelope ("n:0");
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, zero, &resp);
    g_assert_cmpuint (envs->len, ==, 1);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* Empty request envelope → default message (prefix ""), echoed. */
  {
    g_autoptr(GBytes) empty = raw_envelope (0, NULL, 0);
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, empty, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* JSON codec. */
  {
    const char *json = "{\"prefix\":\"n:1\"}";
    g_autoptr(GBytes) json_env = raw_envelope (0, json, strlen (json));
    roundtrip (f, "POST", KV_PROCEDURE_WATCH, "Content-Type: application/connect+json\r\n",
               json_env, &resp);
    g_assert_cmpuint (resp.status, ==, 200);
    assert_header (resp.headers, "Content-Type", "application/connect+json");
    envs = raw_parse_envelopes (resp.body);
    g_assert_cmpuint (envs->len, ==, 2);
    g_assert_cmpuint (g_bytes_get_size (g_array_index (envs, RawEnvelope, 0).payload), >, 0);
    g_assert_cmpint (((const char *) g_bytes_get_data (g_array_index (envs, RawEnvelope, 0).payload, NULL))[0], ==, '{');
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
}

static void
test_server_stream_errors (Fixture *f, gconstpointer data)
{
  for (CpErrorCode code = CP_ERROR_CANCELED; code <= CP_ERROR_UNAUTHENTICATED; code++)
    for (int n = 0; n <= 2; n += 2)
      {
        g_autofree char *prefix = g_strdup_printf ("error:%d:%d", code, n);
        g_autoptr(GBytes) env = watch_request_envelope (prefix);
        g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
        g_autoptr(GError) error = NULL;
        RawResponse resp;
        GArray *envs;

        envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, env, &resp);
        assert_header (resp.headers, "x-custom-header", "foo, bar");
        g_assert_cmpuint (envs->len, ==, n + 1);
        error = parse_end_stream (g_array_index (envs, RawEnvelope, n).payload, trailers);
        g_assert_error (error, CP_ERROR, (gint) code);
        g_assert_cmpstr (error->message, ==, UNICODE_MESSAGE);
        g_assert_cmpuint (cp_error_get_details (error)->len, ==, 1);
        assert_header (trailers, "x-custom-trailer", "bing, quux");
        assert_header (trailers, "x-error-meta", "m1");
        raw_envelopes_free (envs);
        raw_response_clear (&resp);
      }
}

static void
test_server_stream_cardinality (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(GBytes) one = watch_request_envelope ("n:1");
  GByteArray *two = g_byte_array_new ();
  g_autoptr(GBytes) two_bytes = NULL;
  GError *error;

  g_byte_array_append (two, g_bytes_get_data (one, NULL), g_bytes_get_size (one));
  g_byte_array_append (two, g_bytes_get_data (one, NULL), g_bytes_get_size (one));
  two_bytes = g_byte_array_free_to_bytes (two);

  error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, empty);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);
  error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, two_bytes);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);

  /* Truncated envelope → invalid_argument. */
  {
    g_autoptr(GBytes) truncated = g_bytes_new_from_bytes (one, 0, g_bytes_get_size (one) - 1);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, truncated);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    g_autoptr(GBytes) short_prefix = g_bytes_new_static ("\0\0", 2);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, short_prefix);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  /* An EndStream flag on a request frame ends the input (tolerated). */
  {
    GByteArray *with_end = g_byte_array_new ();
    g_autoptr(GBytes) end = raw_envelope (0x02, "{}", 2);
    g_autoptr(GBytes) with_end_bytes = NULL;
    RawResponse resp;
    GArray *envs;

    g_byte_array_append (with_end, g_bytes_get_data (one, NULL), g_bytes_get_size (one));
    g_byte_array_append (with_end, g_bytes_get_data (end, NULL), g_bytes_get_size (end));
    with_end_bytes = g_byte_array_free_to_bytes (with_end);
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, with_end_bytes, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 1).payload, NULL);
    g_assert_no_error (error);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
    f->n_calls = 0;
  }
  /* Reserved flag bits → internal. */
  {
    g_autoptr(GBytes) bad_flags = raw_envelope (0x40, NULL, 0);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, bad_flags);
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
    g_clear_error (&error);
  }
  /* Undecodable message → invalid_argument. */
  {
    static const guint8 garbage[] = { 0x0a, 0x20, 0x01 };
    g_autoptr(GBytes) bad = raw_envelope (0, garbage, sizeof garbage);
    error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, bad);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
  }
  g_assert_cmpuint (f->n_calls, ==, 0);
  assert_server_alive (f);
}

static void
test_client_stream (Fixture *f, gconstpointer data)
{
  const char *keys[] = { "a", "b", NULL };
  g_autoptr(GBytes) body = put_envelopes (keys);
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;
  GArray *envs;

  envs = stream_call (f, SUM_PROCEDURE, NULL, body, &resp);
  g_assert_cmpuint (envs->len, ==, 2);
  response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
  assert_value (response, "a,b");
  error = parse_end_stream (g_array_index (envs, RawEnvelope, 1).payload, trailers);
  g_assert_no_error (error);
  assert_header (trailers, "x-custom-trailer", "bing, quux");
  raw_envelopes_free (envs);
  raw_response_clear (&resp);

  /* No requests at all. */
  {
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    g_clear_object (&response);
    envs = stream_call (f, SUM_PROCEDURE, NULL, empty, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
    assert_value (response, "");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* Error after several requests. */
  {
    const char *fail_keys[] = { "a", "b", "fail", NULL };
    g_autoptr(GBytes) fail = put_envelopes (fail_keys);
    GError *rpc_error = stream_call_error (f, SUM_PROCEDURE, NULL, fail);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_ABORTED);
    g_assert_cmpstr (rpc_error->message, ==, "failed after a,b");
    g_clear_error (&rpc_error);
  }

  /* Many requests (more than the receive queue holds). */
  {
    const char *many[] = { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", NULL };
    g_autoptr(GBytes) many_body = put_envelopes (many);
    g_clear_object (&response);
    envs = stream_call (f, SUM_PROCEDURE, NULL, many_body, &resp);
    response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
    assert_value (response, "1,2,3,4,5,6,7,8,9,10");
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

static void
test_bidi_half_duplex (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) a = watch_request_envelope ("one");
  g_autoptr(GBytes) b = watch_request_envelope ("two");
  GByteArray *all = g_byte_array_new ();
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  RawResponse resp;
  GArray *envs;

  g_byte_array_append (all, g_bytes_get_data (a, NULL), g_bytes_get_size (a));
  g_byte_array_append (all, g_bytes_get_data (b, NULL), g_bytes_get_size (b));
  body = g_byte_array_free_to_bytes (all);

  envs = stream_call (f, ECHO_PROCEDURE, NULL, body, &resp);
  g_assert_cmpuint (envs->len, ==, 3);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(CpMessage) event = cp_message_new_from_bytes (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO,
                                                              g_array_index (envs, RawEnvelope, i).payload,
                                                              &error);
      g_assert_no_error (error);
      g_assert_cmpstr (kv_watch_event_get_key (KV_WATCH_EVENT (event)), ==, i == 0 ? "one" : "two");
    }
  error = parse_end_stream (g_array_index (envs, RawEnvelope, 2).payload, NULL);
  g_assert_no_error (error);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
}

/* Chunked request body, envelopes split across chunks. */
static void
test_client_stream_chunked (Fixture *f, gconstpointer data)
{
  const char *keys[] = { "x", "y", "z", NULL };
  g_autoptr(GBytes) body = put_envelopes (keys);
  GString *req = g_string_new ("POST " SUM_PROCEDURE " HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/connect+proto\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n");
  gsize len;
  const char *bytes = g_bytes_get_data (body, &len);
  g_autoptr(KvGetResponse) response = NULL;
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;
  GArray *envs;

  for (gsize pos = 0; pos < len; pos += 3)
    {
      gsize n = MIN (3, len - pos);
      g_string_append_printf (req, "%zx\r\n", n);
      g_string_append_len (req, bytes + pos, n);
      g_string_append (req, "\r\n");
    }
  g_string_append (req, "0\r\n\r\n");
  g_assert_true (raw_send (rc, req->str, req->len));
  g_string_free (req, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
  assert_value (response, "x,y,z");
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
}


static void
test_slow_reader_backpressure (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("flood");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };
  GArray *envs;

  f->flood_total = 400; /* 400 × 64 KiB = 25 MiB */
  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));

  /* Do not read: run the server until nothing more can happen. */
  while (f->held == NULL || g_main_context_iteration (NULL, FALSE))
    g_main_context_iteration (NULL, FALSE);
  for (int i = 0; i < 100; i++)
    g_main_context_iteration (NULL, FALSE);

  /* The producer waits for the exchange: it did not queue the whole stream
   * (socket buffers hold a few MiB at most). */
  g_assert_true (f->flood_waiting);
  g_assert_false (f->flood_done);
  g_assert_cmpuint (f->flood_sent, <, 200);

  /* Now read everything: the stream completes. */
  if (!raw_read_response (rc, &resp))
    {
      /* Stalled (see RAW_STALL_SECONDS): the server stopped writing although
       * the client reads. Fail without aborting the other tests; rc may
       * still have a read pending, so it is not freed. */
      g_test_fail_printf ("the stream stalled after %u of %u messages", f->flood_sent, f->flood_total);
      return;
    }
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  g_assert_cmpuint (envs->len, ==, 401);
  g_assert_true (f->flood_done);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

/* A handler sending without waiting to a client that does not read: the
 * stream ends with resource_exhausted once max-send-queue-size bytes wait
 * (beyond the congestion mark), instead of queueing all 25 MiB. */
static void
test_slow_reader_send_queue_bound (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("syncflood");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };
  g_autoptr(GError) end_error = NULL;
  guint max = 0;
  GArray *envs;

  g_object_get (f->server, "max-send-queue-size", &max, NULL);
  g_assert_cmpuint (max, ==, 4 * 1024 * 1024);
  g_object_set (f->server, "max-send-queue-size", 1024 * 1024, NULL);

  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  while (!f->flood_done)
    g_main_context_iteration (NULL, TRUE);

  /* 1 MiB + the 256 KiB mark + socket buffers (a few MiB), not 25 MiB. */
  g_assert_error (f->flood_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpuint (f->flood_sent, <, 300);

  /* What was queued arrives, then the error. */
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  g_assert_cmpuint (envs->len, ==, f->flood_sent + 2);
  end_error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);
  g_assert_error (end_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
  g_clear_error (&f->flood_error);
  assert_server_alive (f);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/rpc/server/stream/server", test_server_stream);
  ADD ("/rpc/server/stream/server-errors", test_server_stream_errors);
  ADD ("/rpc/server/stream/server-cardinality", test_server_stream_cardinality);
  ADD ("/rpc/server/stream/client", test_client_stream);
  ADD ("/rpc/server/stream/client-chunked", test_client_stream_chunked);
  ADD ("/rpc/server/stream/bidi-half-duplex", test_bidi_half_duplex);
  ADD ("/rpc/server/slow-reader/send-queue-bound", test_slow_reader_send_queue_bound);
  /* Last: on failure it stalls for RAW_STALL_SECONDS. */
  g_test_add ("/rpc/zz-backpressure/slow-reader", Fixture, NULL, fixture_setup,
              test_slow_reader_backpressure, fixture_teardown);
#undef ADD

  return g_test_run ();
}
