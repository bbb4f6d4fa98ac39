/* test-grpc-web.c: CpRpcServer answering gRPC-Web (binary and text) and gRPC beside Connect
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The same KV handlers as the Connect tests (rpc-test-util.c), asked in
 * gRPC-Web through a SoupSession and on a raw socket, and in gRPC over
 * HTTP/1.1 (the status in the chunked body's trailer section).
 */
#include "rpc-test-util.h"
#include "cp-grpc-private.h"

static void
on_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/* A gRPC-Web POST through libsoup (the server runs in this thread's
 * context: asynchronously); returns the response body. */
static GBytes *
soup_post (Fixture            *f,
           const char         *procedure,
           const char         *content_type,
           const char         *extra_name,
           const char         *extra_value,
           GBytes             *body,
           guint              *out_status,
           SoupMessageHeaders **out_headers)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *uri = g_str_has_suffix (f->url, "/") ? g_strconcat (f->url, procedure + 1, NULL)
                                                        : g_strconcat (f->url, procedure, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", uri);
  g_autoptr(GError) error = NULL;
  GBytes *response;
  g_autoptr(GAsyncResult) result = NULL;

  soup_message_headers_replace (soup_message_get_request_headers (msg), "X-Grpc-Web", "1");
  if (extra_name != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg), extra_name, extra_value);
  soup_message_set_request_body_from_bytes (msg, content_type, body);
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_sent, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  response = soup_session_send_and_read_finish (session, result, &error);
  g_assert_no_error (error);
  *out_status = soup_message_get_status (msg);
  *out_headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  return response;
}

/* The envelopes of a gRPC-Web body; the last one must be the trailers
 * frame, parsed into @trailers. */
static GArray *
split_web_body (GBytes             *body,
                SoupMessageHeaders *trailers)
{
  GArray *envs = raw_parse_envelopes (body);
  RawEnvelope *last;
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (envs->len, >=, 1);
  last = &g_array_index (envs, RawEnvelope, envs->len - 1);
  g_assert_cmphex (last->flags, ==, CP_GRPC_FLAG_TRAILERS);
  g_assert_true (cp_grpc_web_trailers_decode (last->payload, trailers, &error));
  g_assert_no_error (error);
  return envs;
}

static void
test_web_unary (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) request = get_request_proto ("k1");
  g_autoptr(GBytes) envelope = raw_envelope (0, g_bytes_get_data (request, NULL), g_bytes_get_size (request));
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(GError) rpc = NULL;
  GArray *envs;
  guint status;

  body = soup_post (f, KV_PROCEDURE_GET, "application/grpc-web+proto", NULL, NULL, envelope,
                    &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  assert_header (headers, "Content-Type", "application/grpc-web+proto");
  assert_header (headers, "x-custom-header", "foo, bar");
  envs = split_web_body (body, trailers);
  g_assert_cmpuint (envs->len, ==, 2);
  g_assert_cmphex (g_array_index (envs, RawEnvelope, 0).flags, ==, 0);
  response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
  assert_value (response, "value of k1");
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "grpc-status"), ==, "0");
  g_assert_cmpstr (soup_message_headers_get_list (trailers, "x-custom-trailer"), ==, "bing, quux");
  g_assert_true (cp_grpc_error_from_trailers (trailers, &rpc, NULL));
  g_assert_null (rpc);
  raw_envelopes_free (envs);
}

static void
test_web_json (Fixture *f, gconstpointer data)
{
  static const char json[] = "{\"key\":\"k2\"}";
  g_autoptr(GBytes) envelope = raw_envelope (0, json, strlen (json));
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  GArray *envs;
  guint status;

  body = soup_post (f, KV_PROCEDURE_GET, "application/grpc-web+json", NULL, NULL, envelope,
                    &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  assert_header (headers, "Content-Type", "application/grpc-web+json");
  envs = split_web_body (body, trailers);
  response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_JSON);
  assert_value (response, "value of k2");
  raw_envelopes_free (envs);
}

/* An error before any message or leading metadata: "trailers-only", the
 * status in the head of an empty 200 response. */
static void
test_web_trailers_only (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) request = get_request_proto ("plain-error");
  g_autoptr(GBytes) envelope = raw_envelope (0, g_bytes_get_data (request, NULL), g_bytes_get_size (request));
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) rpc = NULL;
  g_autoptr(GError) error = NULL;
  guint status;

  body = soup_post (f, KV_PROCEDURE_GET, "application/grpc-web", NULL, NULL, envelope, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpuint (g_bytes_get_size (body), ==, 0);
  assert_header (headers, "Content-Type", "application/grpc-web");
  g_assert_true (cp_grpc_error_from_trailers (headers, &rpc, &error));
  g_assert_no_error (error);
  g_assert_error (rpc, CP_ERROR, CP_ERROR_UNKNOWN);
  g_assert_cmpstr (rpc->message, ==, "no such thing");
}

/* A rich error after leading metadata: headers, then the status, message
 * (percent-encoded), details and error metadata in the trailers frame. */
static void
test_web_rich_error (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) request = get_request_proto ("error:7");
  g_autoptr(GBytes) envelope = raw_envelope (0, g_bytes_get_data (request, NULL), g_bytes_get_size (request));
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) rpc = NULL;
  GArray *envs;
  guint status;

  body = soup_post (f, KV_PROCEDURE_GET, "application/grpc-web+proto", NULL, NULL, envelope,
                    &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  assert_header (headers, "x-custom-header", "foo, bar");
  envs = split_web_body (body, trailers);
  g_assert_cmpuint (envs->len, ==, 1);
  g_assert_true (cp_grpc_error_from_trailers (trailers, &rpc, NULL));
  g_assert_error (rpc, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_cmpstr (rpc->message, ==, UNICODE_MESSAGE);
  g_assert_cmpuint (cp_error_get_details (rpc)->len, ==, 1);
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (rpc), "x-error-meta"), ==, "m1");
  g_assert_cmpstr (soup_message_headers_get_list (cp_error_get_metadata (rpc), "x-custom-trailer"), ==,
                   "bing, quux");
  raw_envelopes_free (envs);
}

static void
test_web_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) request = get_request_proto ("timeout");
  g_autoptr(GBytes) envelope = raw_envelope (0, g_bytes_get_data (request, NULL), g_bytes_get_size (request));
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) rpc = NULL;
  guint status;

  body = soup_post (f, KV_PROCEDURE_GET, "application/grpc-web+proto", "grpc-timeout", "5S", envelope,
                    &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpint (f->seen_timeout_ms, ==, 5000);
  g_clear_pointer (&body, g_bytes_unref);
  g_clear_pointer (&headers, soup_message_headers_unref);

  /* A malformed timeout is the caller's fault. */
  body = soup_post (f, KV_PROCEDURE_GET, "application/grpc-web+proto", "grpc-timeout", "5s", envelope,
                    &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  g_assert_true (cp_grpc_error_from_trailers (headers, &rpc, NULL));
  g_assert_error (rpc, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
}

/* A server stream in application/grpc-web-text: base64 both ways, the
 * request cut mid-group by a chunked body. */
static void
test_web_text_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) envelope = watch_request_envelope ("n:3");
  g_autofree char *text = g_base64_encode (g_bytes_get_data (envelope, NULL), g_bytes_get_size (envelope));
  g_autoptr(GBytes) text_body = g_bytes_new (text, strlen (text));
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) binary = NULL;
  g_autoptr(GBytes) tail = NULL;
  g_autoptr(CpGrpcTextDecoder) decoder = cp_grpc_text_decoder_new ();
  g_autoptr(GError) error = NULL;
  GArray *envs;
  guint status;

  body = soup_post (f, KV_PROCEDURE_WATCH, "application/grpc-web-text", NULL, NULL, text_body,
                    &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  assert_header (headers, "Content-Type", "application/grpc-web-text");
  binary = cp_grpc_text_decoder_push (decoder, g_bytes_get_data (body, NULL), g_bytes_get_size (body), &error);
  g_assert_no_error (error);
  g_assert_true (cp_grpc_text_decoder_finish (decoder, &tail, &error));
  g_assert_null (tail);
  envs = split_web_body (binary, trailers);
  g_assert_cmpuint (envs->len, ==, 4);
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "grpc-status"), ==, "0");
  raw_envelopes_free (envs);

  /* Not base64: invalid_argument. */
  {
    g_autoptr(GBytes) bad = g_bytes_new_static ("AAAA*AAA", 8);
    g_autoptr(GBytes) bad_body = NULL;
    g_autoptr(SoupMessageHeaders) bad_headers = NULL;
    g_autoptr(GError) rpc = NULL;

    bad_body = soup_post (f, KV_PROCEDURE_WATCH, "application/grpc-web-text+proto", NULL, NULL, bad,
                          &status, &bad_headers);
    g_assert_cmpuint (status, ==, 200);
    g_assert_true (cp_grpc_error_from_trailers (bad_headers, &rpc, NULL));
    g_assert_error (rpc, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  }
}

/* Client streaming: several request envelopes, one answer. */
static void
test_web_client_stream (Fixture *f, gconstpointer data)
{
  static const char * const keys[] = { "a", "b", "c", NULL };
  g_autoptr(GBytes) request = put_envelopes (keys);
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = NULL;
  GArray *envs;
  guint status;

  body = soup_post (f, SUM_PROCEDURE, "application/grpc-web+proto", NULL, NULL, request, &status, &headers);
  g_assert_cmpuint (status, ==, 200);
  envs = split_web_body (body, trailers);
  g_assert_cmpuint (envs->len, ==, 2);
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "grpc-status"), ==, "0");
  raw_envelopes_free (envs);
}

/* De-chunks @in from @pos; returns the body and fills @trailers from the
 * trailer section. */
static GBytes *
dechunk (const guint8       *in,
         gsize               len,
         gsize               pos,
         SoupMessageHeaders *trailers)
{
  GByteArray *body = g_byte_array_new ();

  for (;;)
    {
      const guint8 *eol = memmem (in + pos, len - pos, "\r\n", 2);
      guint64 size;

      g_assert_nonnull (eol);
      size = g_ascii_strtoull ((const char *) in + pos, NULL, 16);
      pos = eol - in + 2;
      if (size == 0)
        break;
      g_assert_cmpuint (len - pos, >=, size + 2);
      g_byte_array_append (body, in + pos, size);
      pos += size + 2;
    }
  /* Trailer fields up to the empty line. */
  for (;;)
    {
      const guint8 *eol = memmem (in + pos, len - pos, "\r\n", 2);
      g_autofree char *line = NULL;
      char *colon;

      g_assert_nonnull (eol);
      if (eol == in + pos)
        break;
      line = g_strndup ((const char *) in + pos, eol - in - pos);
      colon = strchr (line, ':');
      g_assert_nonnull (colon);
      *colon = '\0';
      soup_message_headers_append (trailers, line, g_strstrip (colon + 1));
      pos = eol - in + 2;
    }
  return g_byte_array_free_to_bytes (body);
}

/* gRPC over HTTP/1.1: the status after the last chunk. */
static void
test_grpc_http1_trailers (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) request = get_request_proto ("k3");
  g_autoptr(GBytes) envelope = raw_envelope (0, g_bytes_get_data (request, NULL), g_bytes_get_size (request));
  g_autofree char *target = g_strdup (KV_PROCEDURE_GET);
  g_autoptr(GBytes) wire = build_request ("POST", target,
                                          "Content-Type: application/grpc\r\nTE: trailers\r\n"
                                          "Connection: close\r\n", envelope);
  g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  RawConn *rc = raw_conn_new (f->url);
  const guint8 *head_end;
  GArray *envs;

  g_assert_true (raw_send (rc, g_bytes_get_data (wire, NULL), g_bytes_get_size (wire)));
  while (raw_read_more (rc))
    ;
  g_assert_true (g_str_has_prefix ((const char *) rc->in->data, "HTTP/1.1 200"));
  g_assert_nonnull (g_strstr_len ((const char *) rc->in->data, rc->in->len,
                                  "Content-Type: application/grpc\r\n"));
  head_end = memmem (rc->in->data, rc->in->len, "\r\n\r\n", 4);
  g_assert_nonnull (head_end);
  body = dechunk (rc->in->data, rc->in->len, head_end - rc->in->data + 4, trailers);
  envs = raw_parse_envelopes (body);
  g_assert_cmpuint (envs->len, ==, 1);
  response = decode_get_response (g_array_index (envs, RawEnvelope, 0).payload, CP_CODEC_PROTO);
  assert_value (response, "value of k3");
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "grpc-status"), ==, "0");
  g_assert_cmpstr (soup_message_headers_get_list (trailers, "x-custom-trailer"), ==, "bing, quux");
  raw_envelopes_free (envs);
  raw_conn_free (rc);
}

/* Connect is unchanged beside them, and unknown grpc flavours are 415. */
static void
test_content_types (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) request = get_request_proto ("k4");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", request, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/grpc+xml\r\n", request, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/grpcweb\r\n", request, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
}

/* ------------------------------------------------------------------ */
/* Our client: CpChannel:protocol gRPC-Web                              */

static void
on_called (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static CpMessage *
web_call (CpChannel     *channel,
          const char    *key,
          CpCallOptions *options,
          GError       **error)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);
  g_autoptr(GAsyncResult) result = NULL;

  cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (request), KV_TYPE_GET_RESPONSE,
                         options, NULL, on_called, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return cp_channel_call_finish (channel, result, error);
}

static void
test_client_web (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->url, &error);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;

  g_assert_no_error (error);
  cp_channel_set_protocol (channel, CP_PROTOCOL_GRPC_WEB);
  g_assert_cmpint (cp_channel_get_protocol (channel), ==, CP_PROTOCOL_GRPC_WEB);

  for (guint codec = 0; codec < 2; codec++)
    {
      g_autoptr(CpMessage) answer = NULL;

      g_object_set (channel, "codec", codec == 0 ? CP_CODEC_PROTO : CP_CODEC_JSON, NULL);
      answer = web_call (channel, "c1", options, &error);
      g_assert_no_error (error);
      assert_value (KV_GET_RESPONSE (answer), "value of c1");
      g_assert_cmpstr (soup_message_headers_get_list (cp_call_options_get_response_headers (options),
                                                      "x-custom-header"), ==, "foo, bar");
      g_assert_cmpstr (soup_message_headers_get_list (cp_call_options_get_response_trailers (options),
                                                      "x-custom-trailer"), ==, "bing, quux");
    }
  g_object_set (channel, "codec", CP_CODEC_PROTO, NULL);

  /* A rich error in the trailers frame. */
  response = web_call (channel, "error:9", NULL, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_cmpstr (error->message, ==, UNICODE_MESSAGE);
  g_assert_cmpuint (cp_error_get_details (error)->len, ==, 1);
  g_clear_error (&error);

  /* Trailers-only. */
  response = web_call (channel, "plain-error", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNKNOWN);
  g_assert_cmpstr (error->message, ==, "no such thing");
  g_clear_error (&error);

  /* The deadline travels as grpc-timeout. */
  cp_call_options_set_timeout_ms (options, 4000);
  response = web_call (channel, "timeout", options, &error);
  g_assert_no_error (error);
  g_assert_cmpint (f->seen_timeout_ms, >, 0);
  g_assert_cmpint (f->seen_timeout_ms, <=, 4000);
  g_clear_object (&response);

  /* gRPC needs HTTP trailers, so HTTP/2: over HTTP/1.1 a clear error,
   * nothing sent. */
  cp_channel_set_protocol (channel, CP_PROTOCOL_GRPC);
  response = web_call (channel, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
}

/* CpChannel:protocol gRPC over the HTTP/2 client transport (h2c), against
 * the server's HTTP/2 transport: the status in HTTP trailers. */
static void
test_client_grpc (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->url, &error);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) answer = NULL;

  g_assert_no_error (error);
  cp_channel_set_http_version (channel, CP_HTTP_VERSION_HTTP_2);
  cp_channel_set_protocol (channel, CP_PROTOCOL_GRPC);

  answer = web_call (channel, "g1", options, &error);
  g_assert_no_error (error);
  assert_value (KV_GET_RESPONSE (answer), "value of g1");
  g_assert_cmpstr (soup_message_headers_get_list (cp_call_options_get_response_trailers (options),
                                                  "x-custom-trailer"), ==, "bing, quux");
  g_clear_object (&answer);

  answer = web_call (channel, "error:5", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, UNICODE_MESSAGE);
  g_assert_cmpuint (cp_error_get_details (error)->len, ==, 1);
  g_clear_error (&error);

  /* Trailers-only. */
  answer = web_call (channel, "plain-error", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNKNOWN);
  g_assert_cmpstr (error->message, ==, "no such thing");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/rpc/grpc-web/unary", test_web_unary);
  ADD ("/rpc/grpc-web/json", test_web_json);
  ADD ("/rpc/grpc-web/trailers-only", test_web_trailers_only);
  ADD ("/rpc/grpc-web/rich-error", test_web_rich_error);
  ADD ("/rpc/grpc-web/timeout", test_web_timeout);
  ADD ("/rpc/grpc-web/text-stream", test_web_text_stream);
  ADD ("/rpc/grpc-web/client-stream", test_web_client_stream);
  ADD ("/rpc/grpc/http1-trailers", test_grpc_http1_trailers);
  ADD ("/rpc/grpc/content-types", test_content_types);
  ADD ("/rpc/grpc-web/client", test_client_web);
  ADD ("/rpc/grpc/client-h2", test_client_grpc);

  return g_test_run ();
}
