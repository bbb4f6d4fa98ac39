/* test-client-grpc-streams.c: CpChannel's streams in gRPC and gRPC-Web
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every stream kind — server stream, client stream, half-duplex and
 * full-duplex bidi — made by our client (CpChannel:protocol) against our
 * own server (rpc-test-util.c's handlers), in gRPC over HTTP/2 (h2c) and
 * gRPC-Web over HTTP/1.1 and HTTP/2, with and without gzip: messages,
 * headers, trailers (HTTP trailers or the trailers frame), errors with
 * their details and metadata, a trailers-only answer. Then the response
 * decoder alone on bytes no server of ours sends (compressed trailers
 * frame, trailers-only head, a missing status, HTTP status mapping).
 */
#include "rpc-test-util.h"
#include "cp-grpc-private.h"
#include "cp-envelope-private.h"
#include "cp-stream-decoder-private.h"

typedef struct {
  CpProtocol protocol;
  CpHttpVersion http_version;
  CpCompression compression;
} Variant;

static const Variant variants[] = {
  { CP_PROTOCOL_GRPC, CP_HTTP_VERSION_HTTP_2, CP_COMPRESSION_IDENTITY },
  { CP_PROTOCOL_GRPC, CP_HTTP_VERSION_HTTP_2, CP_COMPRESSION_GZIP },
  { CP_PROTOCOL_GRPC_WEB, CP_HTTP_VERSION_HTTP_1_1, CP_COMPRESSION_IDENTITY },
  { CP_PROTOCOL_GRPC_WEB, CP_HTTP_VERSION_HTTP_1_1, CP_COMPRESSION_GZIP },
  { CP_PROTOCOL_GRPC_WEB, CP_HTTP_VERSION_HTTP_2, CP_COMPRESSION_IDENTITY },
  { CP_PROTOCOL_GRPC_WEB, CP_HTTP_VERSION_HTTP_2, CP_COMPRESSION_GZIP },
};

static CpChannel *
variant_channel (Fixture       *f,
                 const Variant *v)
{
  g_autoptr(GError) error = NULL;
  CpChannel *channel = cp_channel_new (f->url, &error);

  g_assert_no_error (error);
  cp_channel_set_http_version (channel, v->http_version);
  cp_channel_set_protocol (channel, v->protocol);
  g_object_set (channel, "compression", v->compression, NULL);
  return channel;
}

/* ---- what a response stream delivered ---- */

typedef struct {
  GPtrArray *messages;
  gboolean headers;
  gboolean closed;
  GError *error;
  CpRequestStream *duplex_requests;   /* full duplex: the next request per answer */
  const char * const *duplex_keys;
  guint duplex_next;
} Seen;

static void
seen_clear (Seen *seen)
{
  g_clear_pointer (&seen->messages, g_ptr_array_unref);
  g_clear_error (&seen->error);
}

static void
send_watch (CpRequestStream *requests,
            const char      *prefix)
{
  g_autoptr(KvWatchRequest) request = kv_watch_request_new ();
  g_autoptr(GError) error = NULL;

  kv_watch_request_set_prefix (request, prefix);
  g_assert_true (cp_request_stream_send (requests, CP_MESSAGE (request), &error));
  g_assert_no_error (error);
}

static void
on_headers (CpResponseStream *stream, SoupMessageHeaders *headers, Seen *seen)
{
  seen->headers = TRUE;
}

static void
on_message (CpResponseStream *stream, CpMessage *message, Seen *seen)
{
  g_ptr_array_add (seen->messages, g_object_ref (message));
  if (seen->duplex_requests != NULL)
    {
      /* Full duplex: the next request only once the previous one was
       * answered, so the answers must come while the request is open. */
      if (seen->duplex_keys[seen->duplex_next] != NULL)
        send_watch (seen->duplex_requests, seen->duplex_keys[seen->duplex_next++]);
      else
        cp_request_stream_close_send (seen->duplex_requests);
    }
}

static void
on_closed (CpResponseStream *stream, const GError *error, Seen *seen)
{
  g_assert_false (seen->closed);
  seen->closed = TRUE;
  seen->error = error ? g_error_copy (error) : NULL;
}

static void
watch_stream (CpResponseStream *stream,
              Seen             *seen)
{
  seen->messages = g_ptr_array_new_with_free_func (g_object_unref);
  g_signal_connect (stream, "headers", G_CALLBACK (on_headers), seen);
  g_signal_connect (stream, "message", G_CALLBACK (on_message), seen);
  g_signal_connect (stream, "closed", G_CALLBACK (on_closed), seen);
  cp_response_stream_start (stream);
  while (!seen->closed)
    g_main_context_iteration (NULL, TRUE);
}

static const char *
event_key (Seen *seen, guint i)
{
  return kv_watch_event_get_key (KV_WATCH_EVENT (g_ptr_array_index (seen->messages, i)));
}

static void
assert_custom_metadata (SoupMessageHeaders *headers,
                        SoupMessageHeaders *trailers)
{
  g_assert_cmpstr (soup_message_headers_get_list (headers, "x-custom-header"), ==, "foo, bar");
  g_assert_cmpstr (soup_message_headers_get_list (trailers, "x-custom-trailer"), ==, "bing, quux");
}

/* The rich error of rpc-test-util.c's make_rich_error (). */
static void
assert_rich_error (const GError *error,
                   CpErrorCode   code)
{
  GPtrArray *details;

  g_assert_error (error, CP_ERROR, (gint) code);
  g_assert_cmpstr (error->message, ==, UNICODE_MESSAGE);
  details = cp_error_get_details ((GError *) error);
  g_assert_nonnull (details);
  g_assert_cmpuint (details->len, ==, 1);
  g_assert_cmpstr (cp_error_detail_get_type_name (details->pdata[0]), ==, "google.rpc.RetryInfo");
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (error),
                                                 "x-error-meta"), ==, "m1");
}

static CpResponseStream *
server_stream (CpChannel  *channel,
               const char *prefix)
{
  g_autoptr(KvWatchRequest) request = kv_watch_request_new ();

  kv_watch_request_set_prefix (request, prefix);
  return cp_channel_call_server_stream (channel, KV_PROCEDURE_WATCH, CP_MESSAGE (request),
                                        KV_TYPE_WATCH_EVENT, NULL);
}

static void
test_server_stream (Fixture *f, gconstpointer data)
{
  const Variant *v = data;
  g_autoptr(CpChannel) channel = variant_channel (f, v);

  {
    g_autoptr(CpResponseStream) stream = server_stream (channel, "n:3");
    Seen seen = { 0 };

    watch_stream (stream, &seen);
    g_assert_no_error (seen.error);
    g_assert_true (seen.headers);
    g_assert_cmpuint (seen.messages->len, ==, 3);
    g_assert_cmpstr (event_key (&seen, 0), ==, "key0");
    g_assert_cmpstr (event_key (&seen, 2), ==, "key2");
    assert_custom_metadata (cp_response_stream_get_response_headers (stream),
                            cp_response_stream_get_response_trailers (stream));
    /* The status is the protocol's, not the caller's metadata... but it is
     * in the trailers as received. */
    g_assert_cmpstr (soup_message_headers_get_one (cp_response_stream_get_response_trailers (stream),
                                                   "grpc-status"), ==, "0");
    seen_clear (&seen);
  }
  {
    /* Messages, then an error with details in the trailers. */
    g_autoptr(CpResponseStream) stream = server_stream (channel, "error:5:2");
    Seen seen = { 0 };

    watch_stream (stream, &seen);
    g_assert_cmpuint (seen.messages->len, ==, 2);
    assert_rich_error (seen.error, CP_ERROR_NOT_FOUND);
    g_assert_cmpstr (soup_message_headers_get_list (cp_response_stream_get_response_trailers (stream),
                                                    "x-custom-trailer"), ==, "bing, quux");
    seen_clear (&seen);
  }
  {
    /* An error before any message: a trailers-only answer. */
    g_autoptr(CpResponseStream) stream = server_stream (channel, "error:9:0");
    Seen seen = { 0 };

    watch_stream (stream, &seen);
    g_assert_cmpuint (seen.messages->len, ==, 0);
    assert_rich_error (seen.error, CP_ERROR_FAILED_PRECONDITION);
    seen_clear (&seen);
  }
}

static void
on_client_stream_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static CpMessage *
sum (CpChannel           *channel,
     const char * const  *keys,
     CpRequestStream    **out_stream,
     GError             **error)
{
  CpRequestStream *stream = cp_channel_call_client_stream (channel, SUM_PROCEDURE,
                                                           KV_TYPE_GET_RESPONSE, NULL);
  g_autoptr(GAsyncResult) result = NULL;

  for (guint i = 0; keys[i] != NULL; i++)
    {
      g_autoptr(KvPutRequest) request = kv_put_request_new ();
      g_autoptr(GError) local_error = NULL;

      kv_put_request_set_key (request, keys[i]);
      g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (request), &local_error));
      g_assert_no_error (local_error);
    }
  cp_request_stream_close_async (stream, NULL, on_client_stream_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  *out_stream = stream;
  return cp_request_stream_close_finish (stream, result, error);
}

static void
test_client_stream (Fixture *f, gconstpointer data)
{
  const Variant *v = data;
  g_autoptr(CpChannel) channel = variant_channel (f, v);
  static const char * const keys[] = { "a", "b", "c", NULL };
  static const char * const failing[] = { "a", "fail", NULL };
  g_autoptr(CpRequestStream) stream = NULL;
  g_autoptr(CpRequestStream) stream2 = NULL;
  g_autoptr(CpMessage) answer = NULL;
  g_autoptr(GError) error = NULL;

  answer = sum (channel, keys, &stream, &error);
  g_assert_no_error (error);
  assert_value (KV_GET_RESPONSE (answer), "a,b,c");
  assert_custom_metadata (cp_request_stream_get_response_headers (stream),
                          cp_request_stream_get_response_trailers (stream));
  g_clear_object (&answer);

  answer = sum (channel, failing, &stream2, &error);
  g_assert_null (answer);
  g_assert_error (error, CP_ERROR, CP_ERROR_ABORTED);
  g_assert_cmpstr (error->message, ==, "failed after a");
  g_assert_cmpstr (soup_message_headers_get_list (cp_request_stream_get_response_trailers (stream2),
                                                  "x-custom-trailer"), ==, "bing, quux");
}

static void
test_half_duplex (Fixture *f, gconstpointer data)
{
  const Variant *v = data;
  g_autoptr(CpChannel) channel = variant_channel (f, v);
  g_autoptr(CpRequestStream) requests = cp_channel_call_bidi_stream (channel, ECHO_PROCEDURE,
                                                                     KV_TYPE_WATCH_EVENT, NULL);
  g_autoptr(CpResponseStream) responses = NULL;
  Seen seen = { 0 };

  send_watch (requests, "x");
  send_watch (requests, "y");
  responses = cp_request_stream_close_and_receive (requests);
  watch_stream (responses, &seen);
  g_assert_no_error (seen.error);
  g_assert_cmpuint (seen.messages->len, ==, 2);
  g_assert_cmpstr (event_key (&seen, 0), ==, "x");
  g_assert_cmpstr (event_key (&seen, 1), ==, "y");
  seen_clear (&seen);
}

static void
test_full_duplex (Fixture *f, gconstpointer data)
{
  const Variant *v = data;
  g_autoptr(CpChannel) channel = variant_channel (f, v);
  g_autoptr(CpRequestStream) requests = cp_channel_call_bidi_stream (channel, ECHO_PROCEDURE,
                                                                     KV_TYPE_WATCH_EVENT, NULL);
  g_autoptr(CpResponseStream) responses = NULL;
  static const char * const keys[] = { "p2", "p3", NULL };
  Seen seen = { 0 };

  responses = cp_request_stream_start_duplex (requests);
  if (v->http_version != CP_HTTP_VERSION_HTTP_2)
    {
      /* Full duplex needs HTTP/2. */
      watch_stream (responses, &seen);
      g_assert_error (seen.error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
      seen_clear (&seen);
      return;
    }
  seen.duplex_requests = requests;
  seen.duplex_keys = keys;
  send_watch (requests, "p1");
  watch_stream (responses, &seen);
  g_assert_no_error (seen.error);
  g_assert_cmpuint (seen.messages->len, ==, 3);
  g_assert_cmpstr (event_key (&seen, 0), ==, "p1");
  g_assert_cmpstr (event_key (&seen, 2), ==, "p3");
  seen_clear (&seen);
}

/* gRPC needs HTTP trailers, which the HTTP/1.1 transport does not give:
 * a clear error, nothing sent. */
static void
test_grpc_http1 (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->url, &error);
  g_autoptr(CpResponseStream) stream = NULL;
  g_autoptr(CpRequestStream) requests = NULL;
  g_autoptr(CpMessage) answer = NULL;
  static const char * const keys[] = { "a", NULL };
  Seen seen = { 0 };

  g_assert_no_error (error);
  cp_channel_set_protocol (channel, CP_PROTOCOL_GRPC);
  stream = server_stream (channel, "n:1");
  watch_stream (stream, &seen);
  g_assert_error (seen.error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  seen_clear (&seen);

  answer = sum (channel, keys, &requests, &error);
  g_assert_null (answer);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_assert_cmpuint (f->n_calls, ==, 0);
}

/* ---- the decoder alone ---- */

static CpStreamDecoder *
decoder_with_head (CpProtocol          protocol,
                   guint               status,
                   SoupMessageHeaders *head,
                   GError            **error)
{
  CpStreamDecoder *decoder = cp_stream_decoder_new (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO,
                                                    protocol, 1 << 20);

  if (!cp_stream_decoder_head (decoder, status, "reason", head, error))
    return decoder;
  return decoder;
}

static GBytes *
event_envelope (const char *key, gboolean gzip)
{
  g_autoptr(GBytes) value = g_bytes_new_static ("v", 1);
  g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, key, value);
  g_autoptr(GBytes) payload = proto_of (event);

  if (gzip)
    {
      g_autoptr(GBytes) compressed = cp_compress (CP_COMPRESSION_GZIP, payload, NULL);

      return cp_envelope_encode (CP_ENVELOPE_FLAG_COMPRESSED, compressed);
    }
  return cp_envelope_encode (0, payload);
}

/* What the conformance suite's reference server sends: a gzip-compressed
 * trailers frame (flags 0x81). */
static void
test_decoder_compressed_trailers (void)
{
  g_autoptr(SoupMessageHeaders) head = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) text = NULL;
  g_autoptr(GBytes) compressed = NULL;
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(GBytes) message = event_envelope ("k", TRUE);
  g_autoptr(CpStreamDecoder) decoder = NULL;
  g_autoptr(CpMessage) event = NULL;
  g_autoptr(GError) error = NULL;

  soup_message_headers_append (head, "Content-Type", "application/grpc-web+proto");
  soup_message_headers_append (head, "grpc-encoding", "gzip");
  decoder = decoder_with_head (CP_PROTOCOL_GRPC_WEB, 200, head, &error);
  g_assert_no_error (error);

  soup_message_headers_append (trailers, "grpc-status", "7");
  soup_message_headers_append (trailers, "grpc-message", "no%20way");
  soup_message_headers_append (trailers, "x-t", "1");
  text = cp_grpc_web_trailers_encode (trailers);
  compressed = cp_compress (CP_COMPRESSION_GZIP, text, NULL);
  frame = cp_envelope_encode (CP_GRPC_FLAG_TRAILERS | CP_ENVELOPE_FLAG_COMPRESSED, compressed);

  cp_stream_decoder_push (decoder, message);
  cp_stream_decoder_push (decoder, frame);
  g_assert_true (cp_stream_decoder_next (decoder, &event, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (kv_watch_event_get_key (KV_WATCH_EVENT (event)), ==, "k");
  g_assert_false (cp_stream_decoder_next (decoder, &event, &error));
  g_assert_no_error (error);
  g_assert_true (cp_stream_decoder_has_end_stream (decoder));
  g_assert_false (cp_stream_decoder_finish (decoder, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_cmpstr (error->message, ==, "no way");
  g_assert_cmpstr (soup_message_headers_get_one (cp_stream_decoder_get_trailers (decoder), "x-t"),
                   ==, "1");
}

/* A head with grpc-status is the whole answer; a body after it is not. */
static void
test_decoder_trailers_only (gconstpointer data)
{
  CpProtocol protocol = GPOINTER_TO_INT (data);
  g_autoptr(SoupMessageHeaders) head = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(CpStreamDecoder) decoder = NULL;
  g_autoptr(CpStreamDecoder) decoder2 = NULL;
  g_autoptr(GBytes) message = event_envelope ("late", FALSE);
  g_autoptr(CpMessage) event = NULL;
  g_autoptr(GError) error = NULL;

  soup_message_headers_append (head, "Content-Type", protocol == CP_PROTOCOL_GRPC
                                                     ? "application/grpc" : "application/grpc-web");
  soup_message_headers_append (head, "grpc-status", "5");
  soup_message_headers_append (head, "grpc-message", "gone");
  soup_message_headers_append (head, "x-meta", "m");
  decoder = decoder_with_head (protocol, 200, head, &error);
  g_assert_no_error (error);
  g_assert_true (cp_stream_decoder_has_end_stream (decoder));
  /* gRPC: an end of stream with no HTTP trailers. */
  cp_stream_decoder_set_http_trailers (decoder, NULL);
  g_assert_false (cp_stream_decoder_finish (decoder, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "gone");
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (error), "x-meta"), ==, "m");
  g_clear_error (&error);

  decoder2 = decoder_with_head (protocol, 200, head, &error);
  g_assert_no_error (error);
  cp_stream_decoder_push (decoder2, message);
  g_assert_false (cp_stream_decoder_next (decoder2, &event, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
}

/* gRPC: no HTTP trailers, or trailers without grpc-status, after the
 * messages: `internal` (a status that does not parse: `unknown`). */
static void
test_decoder_missing_status (void)
{
  g_autoptr(SoupMessageHeaders) head = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) message = event_envelope ("k", FALSE);
  g_autoptr(GError) error = NULL;

  soup_message_headers_append (head, "Content-Type", "application/grpc+proto");
  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(CpStreamDecoder) decoder = decoder_with_head (CP_PROTOCOL_GRPC, 200, head, &error);
      g_autoptr(CpMessage) event = NULL;

      g_assert_no_error (error);
      cp_stream_decoder_push (decoder, message);
      g_assert_true (cp_stream_decoder_next (decoder, &event, &error));
      if (round == 1)
        soup_message_headers_replace (trailers, "x-only", "1");
      if (round == 2)
        soup_message_headers_replace (trailers, "grpc-status", "abc");
      cp_stream_decoder_set_http_trailers (decoder, round == 0 ? NULL : trailers);
      g_assert_false (cp_stream_decoder_finish (decoder, &error));
      g_assert_error (error, CP_ERROR, (gint) (round == 2 ? CP_ERROR_UNKNOWN : CP_ERROR_INTERNAL));
      g_clear_error (&error);
    }

  /* gRPC-Web: a body without the trailers frame. */
  {
    g_autoptr(SoupMessageHeaders) web = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(CpStreamDecoder) decoder = NULL;
    g_autoptr(CpMessage) event = NULL;

    soup_message_headers_append (web, "Content-Type", "application/grpc-web+proto");
    decoder = decoder_with_head (CP_PROTOCOL_GRPC_WEB, 200, web, &error);
    g_assert_no_error (error);
    cp_stream_decoder_push (decoder, message);
    g_assert_true (cp_stream_decoder_next (decoder, &event, &error));
    g_assert_false (cp_stream_decoder_finish (decoder, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  }
}

/* Heads that are no gRPC answer: the HTTP status decides (the gRPC
 * spec's mapping); a foreign Content-Type is `unknown`, another codec
 * `internal`; Connect's end-stream flag is no gRPC flag. */
static void
test_decoder_heads (void)
{
  static const struct { guint status; const char *type; CpErrorCode code; } cases[] = {
    { 400, "application/grpc", CP_ERROR_INTERNAL },
    { 401, "application/grpc", CP_ERROR_UNAUTHENTICATED },
    { 403, "application/grpc", CP_ERROR_PERMISSION_DENIED },
    { 404, "text/html", CP_ERROR_UNIMPLEMENTED },
    { 429, "application/grpc", CP_ERROR_UNAVAILABLE },
    { 502, "application/grpc", CP_ERROR_UNAVAILABLE },
    { 503, "application/grpc", CP_ERROR_UNAVAILABLE },
    { 504, "application/grpc", CP_ERROR_UNAVAILABLE },
    { 500, "application/grpc", CP_ERROR_UNKNOWN },
    { 200, "application/json", CP_ERROR_UNKNOWN },
    { 200, "application/grpcx", CP_ERROR_UNKNOWN },
    { 200, "application/grpc+json", CP_ERROR_INTERNAL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(SoupMessageHeaders) head = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      g_autoptr(CpStreamDecoder) decoder = cp_stream_decoder_new (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO,
                                                                  CP_PROTOCOL_GRPC, 0);
      g_autoptr(GError) error = NULL;

      soup_message_headers_append (head, "Content-Type", cases[i].type);
      g_assert_false (cp_stream_decoder_head (decoder, cases[i].status, NULL, head, &error));
      g_assert_error (error, CP_ERROR, (gint) cases[i].code);
    }

  {
    g_autoptr(SoupMessageHeaders) head = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(CpStreamDecoder) decoder = NULL;
    g_autoptr(GBytes) end = cp_envelope_encode (CP_ENVELOPE_FLAG_END_STREAM, NULL);
    g_autoptr(CpMessage) event = NULL;
    g_autoptr(GError) error = NULL;

    soup_message_headers_append (head, "Content-Type", "application/grpc");
    decoder = decoder_with_head (CP_PROTOCOL_GRPC, 200, head, &error);
    g_assert_no_error (error);
    cp_stream_decoder_push (decoder, end);
    g_assert_false (cp_stream_decoder_next (decoder, &event, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  }
}

static const char *
variant_name (const Variant *v)
{
  static char name[64];

  g_snprintf (name, sizeof name, "%s-http%s%s",
              v->protocol == CP_PROTOCOL_GRPC ? "grpc" : "grpc-web",
              v->http_version == CP_HTTP_VERSION_HTTP_2 ? "2" : "1",
              v->compression == CP_COMPRESSION_GZIP ? "-gzip" : "");
  return name;
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      const Variant *v = &variants[i];
      const char *name = variant_name (v);
      g_autofree char *p1 = g_strdup_printf ("/rpc/client-grpc/%s/server-stream", name);
      g_autofree char *p2 = g_strdup_printf ("/rpc/client-grpc/%s/client-stream", name);
      g_autofree char *p3 = g_strdup_printf ("/rpc/client-grpc/%s/half-duplex", name);
      g_autofree char *p4 = g_strdup_printf ("/rpc/client-grpc/%s/full-duplex", name);

      g_test_add (p1, Fixture, v, fixture_setup, test_server_stream, fixture_teardown);
      g_test_add (p2, Fixture, v, fixture_setup, test_client_stream, fixture_teardown);
      g_test_add (p3, Fixture, v, fixture_setup, test_half_duplex, fixture_teardown);
      g_test_add (p4, Fixture, v, fixture_setup, test_full_duplex, fixture_teardown);
    }
  g_test_add ("/rpc/client-grpc/grpc-over-http1", Fixture, NULL, fixture_setup, test_grpc_http1,
              fixture_teardown);
  g_test_add_func ("/rpc/client-grpc/decoder/compressed-trailers", test_decoder_compressed_trailers);
  g_test_add_data_func ("/rpc/client-grpc/decoder/trailers-only/grpc",
                        GINT_TO_POINTER (CP_PROTOCOL_GRPC), test_decoder_trailers_only);
  g_test_add_data_func ("/rpc/client-grpc/decoder/trailers-only/grpc-web",
                        GINT_TO_POINTER (CP_PROTOCOL_GRPC_WEB), test_decoder_trailers_only);
  g_test_add_func ("/rpc/client-grpc/decoder/missing-status", test_decoder_missing_status);
  g_test_add_func ("/rpc/client-grpc/decoder/heads", test_decoder_heads);

  return g_test_run ();
}
