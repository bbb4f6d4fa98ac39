/* test-client-raw.c: the client engine against a scripted HTTP server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Response-side validation (docs/engine.md "Client checks", https://connectrpc.com/docs/protocol) and
 * what the client puts on the wire, checked byte by byte.
 */
#include <string.h>
#include <sys/resource.h>
#include "client-test-util.h"
#include "raw-server.h"
#include "cp-envelope-private.h"
#include "cp-compression.h"

typedef struct {
  RawServer *server;
  CpChannel *channel;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->server = raw_server_new ();
  f->channel = cp_channel_new (raw_server_get_url (f->server), &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  raw_server_free (f->server);
}

static CpMessage *
get (Fixture        *f,
     const char     *key,
     CpCallOptions  *options,
     GError        **error)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);

  return test_call_unary (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                          KV_TYPE_GET_RESPONSE, options, NULL, error);
}

static void
serve (Fixture    *f,
       guint       status,
       const char *headers,
       GBytes     *body)
{
  g_autoptr(GBytes) response = NULL;

  response = raw_response (status, headers,
                           body ? g_bytes_get_data (body, NULL) : NULL,
                           body ? (gssize) g_bytes_get_size (body) : 0);
  raw_server_set_response (f->server, response, RAW_AFTER_CLOSE);
}

static void
serve_text (Fixture    *f,
            guint       status,
            const char *headers,
            const char *body)
{
  g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));

  serve (f, status, headers, bytes);
}

static GBytes *
last_request (Fixture *f)
{
  guint n = raw_server_get_n_requests (f->server);

  g_assert_cmpuint (n, >, 0);
  return raw_server_get_request (f->server, n - 1);
}

/* ---- unary ---- */

static void
test_unary_proto (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("hello", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) request_body = NULL;
  g_autoptr(GBytes) expected_body = NULL;
  g_autoptr(KvGetRequest) expected = kv_test_get_request ("k1");
  g_autofree char *line = NULL;
  g_autofree char *ct = NULL;
  g_autofree char *version = NULL;
  g_autofree char *accept = NULL;
  g_autofree char *timeout = NULL;
  g_autofree char *user = NULL;
  SoupMessageHeaders *headers, *trailers;

  soup_message_headers_append (cp_call_options_get_request_headers (options), "X-User", "u1");
  /* Protocol headers are not metadata: ignored. */
  soup_message_headers_append (cp_call_options_get_request_headers (options), "Content-Type", "evil/x");
  soup_message_headers_append (cp_call_options_get_request_headers (options), "Connect-Timeout-Ms", "1");

  serve (f, 200, "Content-Type: application/proto\r\nX-Leading: a\r\nTrailer-X-Cost: 12\r\n"
         "trailer-x-multi: 1\r\nTrailer-X-Multi: 2\r\n", body);
  response = get (f, "k1", options, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "hello");
  g_assert_true (kv_get_response_get_found (KV_GET_RESPONSE (response)));

  request = last_request (f);
  line = raw_request_line (request);
  g_assert_cmpstr (line, ==, "POST /kv.v1.KVService/Get HTTP/1.1");
  ct = raw_request_header (request, "Content-Type");
  g_assert_cmpstr (ct, ==, "application/proto");
  version = raw_request_header (request, "Connect-Protocol-Version");
  g_assert_cmpstr (version, ==, "1");
  accept = raw_request_header (request, "Accept-Encoding");
  g_assert_cmpstr (accept, ==, "gzip");
  /* The channel's default deadline (30 s), not the user's "1". */
  timeout = raw_request_header (request, "Connect-Timeout-Ms");
  g_assert_nonnull (timeout);
  g_assert_cmpuint (g_ascii_strtoull (timeout, NULL, 10), >, 20000);
  g_assert_cmpuint (g_ascii_strtoull (timeout, NULL, 10), <=, 30000);
  user = raw_request_header (request, "X-User");
  g_assert_cmpstr (user, ==, "u1");
  g_assert_null (g_strstr_len (g_bytes_get_data (request, NULL), g_bytes_get_size (request), "evil"));
  request_body = raw_request_body (request);
  expected_body = cp_message_serialize (CP_MESSAGE (expected), CP_CODEC_PROTO, NULL);
  g_assert_true (g_bytes_equal (request_body, expected_body));

  headers = cp_call_options_get_response_headers (options);
  trailers = cp_call_options_get_response_trailers (options);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "X-Leading"), ==, "a");
  g_assert_null (soup_message_headers_get_one (headers, "Trailer-X-Cost"));
  g_assert_cmpstr (soup_message_headers_get_one (trailers, "X-Cost"), ==, "12");
  g_assert_cmpstr (soup_message_headers_get_list (trailers, "X-Multi"), ==, "1, 2");
}

static void
test_unary_json (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autofree char *ct = NULL;

  cp_call_options_set_codec (options, CP_CODEC_JSON);
  serve_text (f, 200, "Content-Type: application/json; charset=utf-8\r\n",
              "{\"value\":\"aGk=\",\"found\":true}");
  response = get (f, "k", options, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "hi");

  request = last_request (f);
  ct = raw_request_header (request, "Content-Type");
  g_assert_cmpstr (ct, ==, "application/json");
  body = raw_request_body (request);
  g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body), "{\"key\":\"k\"}", 11);
}

static void
test_unary_empty_proto (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve_text (f, 200, "Content-Type: application/proto\r\n", "");
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (response));
  g_assert_false (kv_get_response_get_found (KV_GET_RESPONSE (response)));
  g_assert_cmpstr (test_get_value (response), ==, "");
}

static void
test_unary_timeout_header (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autofree char *timeout = NULL;
  guint64 ms;

  cp_call_options_set_timeout_ms (options, 5000);
  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "k", options, &error);
  g_assert_no_error (error);

  request = last_request (f);
  timeout = raw_request_header (request, "Connect-Timeout-Ms");
  g_assert_nonnull (timeout);
  g_assert_true (g_ascii_string_to_unsigned (timeout, 10, 1, 5000, &ms, NULL));
  for (const char *p = timeout; *p; p++)
    g_assert_true (g_ascii_isdigit (*p));

  /* A huge timeout does not fit in 10 digits: no header at all. */
  cp_call_options_set_timeout_ms (options, G_GINT64_CONSTANT (20000000000));
  g_clear_object (&response);
  response = get (f, "k", options, &error);
  g_assert_no_error (error);
  g_clear_pointer (&request, g_bytes_unref);
  g_clear_pointer (&timeout, g_free);
  request = last_request (f);
  timeout = raw_request_header (request, "Connect-Timeout-Ms");
  g_assert_null (timeout);
}

static void
test_unary_deadline_expired (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve_text (f, 200, "Content-Type: application/proto\r\n", "");
  cp_call_options_set_deadline (options, g_get_monotonic_time () - 1);
  response = get (f, "k", options, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_null (response);
  g_assert_cmpuint (raw_server_get_n_requests (f->server), ==, 0);
}

static gboolean
peer_closed (gpointer data)
{
  return raw_server_get_n_peer_closed (data) > 0;
}

static gboolean
request_seen (gpointer data)
{
  return raw_server_get_n_requests (data) > 0;
}

static void
test_unary_timeout_enforced (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  /* The server reads the request and never answers. */
  raw_server_set_response (f->server, NULL, RAW_AFTER_WAIT_EOF);
  cp_call_options_set_timeout_ms (options, 200);
  response = get (f, "k", options, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_null (response);
  /* The HTTP exchange was aborted: the server sees the connection close. */
  test_wait_until (peer_closed, f->server);
}

typedef struct {
  gboolean done;
  GError *error;
} AsyncRun;

static void
on_call_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  AsyncRun *run = user_data;
  g_autoptr(CpMessage) message = cp_channel_call_finish (CP_CHANNEL (source), result, &run->error);

  g_assert_null (message);
  run->done = TRUE;
}

static void
test_unary_cancel (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  AsyncRun run = { FALSE, NULL };

  raw_server_set_response (f->server, NULL, RAW_AFTER_WAIT_EOF);
  cp_channel_call_async (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                         KV_TYPE_GET_RESPONSE, NULL, cancellable, on_call_done, &run);
  test_wait_until (request_seen, f->server);
  g_assert_false (run.done);
  g_cancellable_cancel (cancellable);
  test_wait_for (&run.done);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&run.error);
  test_wait_until (peer_closed, f->server);

  /* Already cancelled: fails without sending. */
  run.done = FALSE;
  cp_channel_call_async (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                         KV_TYPE_GET_RESPONSE, NULL, cancellable, on_call_done, &run);
  test_wait_for (&run.done);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&run.error);
  g_assert_cmpuint (raw_server_get_n_requests (f->server), ==, 1);
}

/* A non-200 answer without a Connect error body: the code from the status. */
typedef struct {
  guint       status;
  CpErrorCode code;
} HttpStatusCase;

static const HttpStatusCase http_status_cases[] = {
  { 400, CP_ERROR_INTERNAL },
  { 401, CP_ERROR_UNAUTHENTICATED },
  { 403, CP_ERROR_PERMISSION_DENIED },
  { 404, CP_ERROR_UNIMPLEMENTED },
  { 405, CP_ERROR_UNKNOWN },
  { 409, CP_ERROR_UNKNOWN },
  { 412, CP_ERROR_UNKNOWN },
  { 413, CP_ERROR_UNKNOWN },
  { 415, CP_ERROR_UNKNOWN },
  { 418, CP_ERROR_UNKNOWN },
  { 429, CP_ERROR_UNAVAILABLE },
  { 431, CP_ERROR_UNKNOWN },
  { 500, CP_ERROR_UNKNOWN },
  { 502, CP_ERROR_UNAVAILABLE },
  { 503, CP_ERROR_UNAVAILABLE },
  { 504, CP_ERROR_UNAVAILABLE },
  { 505, CP_ERROR_UNKNOWN },
  { 800, CP_ERROR_UNKNOWN },
};

static void
test_unary_http_status (Fixture       *f,
                        gconstpointer  data)
{
  const HttpStatusCase *c = data;
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve_text (f, c->status, "Content-Type: text/plain\r\n", "not connect");
  response = get (f, "k", NULL, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, (gint) c->code);
}

/* A JSON error body, well-formed or not: its code when it has a valid one,
 * else the status's; its message when it has one. */
typedef struct {
  const char  *path;
  guint        status;
  const char  *body;
  CpErrorCode  code;
  const char  *message;
} ErrorJsonCase;

static const ErrorJsonCase error_json_cases[] = {
  { "null", 401, "null", CP_ERROR_UNAUTHENTICATED, NULL },
  { "unknown-code", 429, "{\"code\":\"foobar\",\"message\":\"kept\"}", CP_ERROR_UNAVAILABLE, "kept" },
  { "null-code", 400, "{\"code\":null,\"message\":\"x\"}", CP_ERROR_INTERNAL, "x" },
  { "no-code", 503, "{\"message\":\"no code\",\"extra\":1}", CP_ERROR_UNAVAILABLE, "no code" },
  { "code-only", 500, "{\"code\":\"aborted\"}", CP_ERROR_ABORTED, NULL },
  { "not-json", 500, "not json at all", CP_ERROR_UNKNOWN, NULL },
  { "empty", 504, "", CP_ERROR_UNAVAILABLE, NULL },
};

static void
test_unary_error_json (Fixture       *f,
                       gconstpointer  data)
{
  const ErrorJsonCase *c = data;
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve_text (f, c->status, "Content-Type: application/json\r\n", c->body);
  response = get (f, "k", NULL, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, (gint) c->code);
  if (c->message)
    g_assert_cmpstr (error->message, ==, c->message);
}

static void
test_unary_error_details (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *details;
  CpErrorDetail *detail;
  GBytes *value;
  SoupMessageHeaders *metadata;
  static const guint8 retry_info[] = { 0x0a, 0x02, 0x08, 0x1e };

  serve_text (f, 404, "Content-Type: application/json\r\nX-Head: h\r\nTrailer-X-Tail: t\r\n",
              "{\"code\":\"not_found\",\"message\":\"no such key\",\"details\":["
              "{\"type\":\"google.rpc.RetryInfo\",\"value\":\"CgIIHg\",\"debug\":\"garbage\",\"x\":1}]}");
  response = get (f, "k", options, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "no such key");

  details = cp_error_get_details (error);
  g_assert_nonnull (details);
  g_assert_cmpuint (details->len, ==, 1);
  detail = details->pdata[0];
  g_assert_cmpstr (cp_error_detail_get_type_name (detail), ==, "google.rpc.RetryInfo");
  value = cp_error_detail_get_value (detail);
  g_assert_cmpmem (g_bytes_get_data (value, NULL), g_bytes_get_size (value),
                   retry_info, sizeof retry_info);

  /* Error metadata = headers ∪ trailers; the options split them. */
  metadata = cp_error_get_metadata (error);
  g_assert_nonnull (metadata);
  g_assert_cmpstr (soup_message_headers_get_one (metadata, "X-Head"), ==, "h");
  g_assert_cmpstr (soup_message_headers_get_one (metadata, "X-Tail"), ==, "t");
  g_assert_cmpstr (soup_message_headers_get_one (cp_call_options_get_response_headers (options),
                                                 "X-Head"), ==, "h");
  g_assert_cmpstr (soup_message_headers_get_one (cp_call_options_get_response_trailers (options),
                                                 "X-Tail"), ==, "t");
}

/* A `canceled` the server answers is the Connect code, not GIO's
 * cancellation (which only the caller's cancellable gives). */
static void
test_unary_server_canceled (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve_text (f, 499, "Content-Type: application/json\r\n",
              "{\"code\":\"canceled\",\"message\":\"gave up\"}");
  response = get (f, "k", NULL, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_CANCELED);
  g_assert_cmpstr (error->message, ==, "gave up");
  g_assert_cmpint (cp_error_get_code (error), ==, CP_ERROR_CANCELED);
}

static void
test_unary_error_non_json (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  /* 403 with a protobuf body: the body is ignored. */
  serve_text (f, 403, "Content-Type: application/proto\r\n", "{\"code\":\"not_found\"}");
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
}

static void
test_unary_error_gzip (Fixture       *f,
                       gconstpointer  data)
{
  static const char json[] =
    "{\"code\":\"out_of_range\",\"message\":\"too far\",\"details\":"
    "[{\"type\":\"google.rpc.RetryInfo\",\"value\":\"CgIIHg==\"}]}";
  g_autoptr(GBytes) plain = g_bytes_new_static (json, strlen (json));
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, plain, NULL);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve (f, 422, "Content-Type: application/json\r\nContent-Encoding: gzip\r\n", gz);
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_OUT_OF_RANGE);
  g_assert_cmpstr (error->message, ==, "too far");
  g_assert_cmpuint (cp_error_get_details (error)->len, ==, 1);
}

/* A 200 answer the client cannot take as a unary response. */
typedef struct {
  const char  *path;
  const char  *headers;
  CpErrorCode  code;
} ContentTypeCase;

static const ContentTypeCase content_type_cases[] = {
  { "json", "Content-Type: application/json\r\n", CP_ERROR_INTERNAL },
  { "image", "Content-Type: image/jpeg\r\n", CP_ERROR_UNKNOWN },
  { "missing", "", CP_ERROR_UNKNOWN },
  { "unknown-encoding", "Content-Type: application/proto\r\nContent-Encoding: foo\r\n",
    CP_ERROR_INTERNAL },
};

static void
test_unary_content_type (Fixture       *f,
                         gconstpointer  data)
{
  const ContentTypeCase *c = data;
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve (f, 200, c->headers, body);
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, (gint) c->code);
  g_assert_null (response);
}

static void
test_unary_gzip_response (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("zipped", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, body, NULL);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve (f, 200, "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", gz);
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "zipped");
}

static void
test_unary_gzip_request (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) request_body = NULL;
  g_autoptr(GBytes) plain = NULL;
  g_autoptr(KvGetRequest) expected = kv_test_get_request ("gzipped-key");
  g_autoptr(GBytes) expected_body = NULL;
  g_autofree char *encoding = NULL;

  cp_call_options_set_compression (options, CP_COMPRESSION_GZIP);
  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "gzipped-key", options, &error);
  g_assert_no_error (error);

  request = last_request (f);
  encoding = raw_request_header (request, "Content-Encoding");
  g_assert_cmpstr (encoding, ==, "gzip");
  request_body = raw_request_body (request);
  plain = cp_decompress (CP_COMPRESSION_GZIP, request_body, 0, &error);
  g_assert_no_error (error);
  expected_body = cp_message_serialize (CP_MESSAGE (expected), CP_CODEC_PROTO, NULL);
  g_assert_true (g_bytes_equal (plain, expected_body));
}

/* An empty request message is compressed too: a server may insist on the
 * negotiated encoding (found by the conformance suite). */
static void
test_unary_gzip_empty_request (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) request_body = NULL;
  g_autoptr(GBytes) plain = NULL;
  g_autofree char *encoding = NULL;

  cp_call_options_set_compression (options, CP_COMPRESSION_GZIP);
  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "", options, &error);
  g_assert_no_error (error);

  request = last_request (f);
  encoding = raw_request_header (request, "Content-Encoding");
  g_assert_cmpstr (encoding, ==, "gzip");
  request_body = raw_request_body (request);
  g_assert_cmpuint (g_bytes_get_size (request_body), >, 0);
  plain = cp_decompress (CP_COMPRESSION_GZIP, request_body, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (plain), ==, 0);
}

static void
test_unary_bad_body (Fixture       *f,
                     gconstpointer  data)
{
  static const guint8 garbage[] = { 0x0a, 0x7f, 0x01 };  /* length 127, 1 byte */
  g_autoptr(GBytes) body = g_bytes_new_static (garbage, sizeof garbage);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
}

static void
test_unary_max_receive_size (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("0123456789", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  gsize size = g_bytes_get_size (body);

  serve (f, 200, "Content-Type: application/proto\r\n", body);
  g_object_set (f->channel, "max-receive-size", (guint64) size - 1, NULL);
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_clear_error (&error);

  /* Exactly at the limit is accepted. */
  g_object_set (f->channel, "max-receive-size", (guint64) size, NULL);
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "0123456789");
}

static void
test_unary_get (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autofree char *line = NULL;
  g_autofree char *ct = NULL;
  g_autofree char *length = NULL;

  cp_call_options_set_use_get (options, TRUE);
  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "k", options, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "v");

  request = last_request (f);
  line = raw_request_line (request);
  /* "k" = 0a 01 6b → CgFr */
  g_assert_cmpstr (line, ==,
                   "GET /kv.v1.KVService/Get?connect=v1&base64=1&encoding=proto&message=CgFr HTTP/1.1");
  ct = raw_request_header (request, "Content-Type");
  g_assert_null (ct);
  length = raw_request_header (request, "Content-Length");
  g_assert_true (length == NULL || g_str_equal (length, "0"));

  /* JSON: percent-encoded text, no base64. */
  cp_call_options_set_codec (options, CP_CODEC_JSON);
  serve_text (f, 200, "Content-Type: application/json\r\n", "{\"found\":true}");
  g_clear_object (&response);
  response = get (f, "a b", options, &error);
  g_assert_no_error (error);
  g_clear_pointer (&request, g_bytes_unref);
  g_clear_pointer (&line, g_free);
  request = last_request (f);
  line = raw_request_line (request);
  g_assert_cmpstr (line, ==,
                   "GET /kv.v1.KVService/Get?connect=v1&encoding=json"
                   "&message=%7B%22key%22%3A%22a%20b%22%7D HTTP/1.1");

  /* Compressed: base64 and compression, in the recommended order. */
  cp_call_options_set_compression (options, CP_COMPRESSION_GZIP);
  g_clear_object (&response);
  response = get (f, "k", options, &error);
  g_assert_no_error (error);
  g_clear_pointer (&request, g_bytes_unref);
  g_clear_pointer (&line, g_free);
  request = last_request (f);
  line = raw_request_line (request);
  g_assert_true (g_str_has_prefix (line, "GET /kv.v1.KVService/Get?connect=v1&base64=1"
                                         "&compression=gzip&encoding=json&message="));
  {
    const char *msg = strstr (line, "message=") + strlen ("message=");
    const char *end = strchr (msg, ' ');

    g_assert_nonnull (end);
    g_assert_true (end > msg);
    for (const char *p = msg; p < end; p++)
      g_assert_true (g_ascii_isalnum (*p) || *p == '-' || *p == '_');
  }
}

/* ---- server streams ---- */

static GBytes *
envelopes (guint8      flags1,
           GBytes     *payload1,
           ...)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  va_list args;
  int flags = flags1;
  GBytes *payload = payload1;

  va_start (args, payload1);
  while (flags >= 0)
    {
      cp_envelope_append (out, (guint8) flags, payload);
      flags = va_arg (args, int);
      if (flags >= 0)
        payload = va_arg (args, GBytes *);
    }
  va_end (args);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static GBytes *
text_bytes (const char *text)
{
  return g_bytes_new (text, strlen (text));
}

static void
serve_stream (Fixture    *f,
              const char *headers,
              GBytes     *body,
              gboolean    framed,
              RawAfter    after)
{
  g_autoptr(GBytes) response = NULL;
  gsize len;
  const void *data = g_bytes_get_data (body, &len);

  if (framed)
    response = raw_response (200, headers, data, len);
  else
    response = raw_response_unframed (200, headers, data, len);
  raw_server_set_response (f->server, response, after);
}

static CpResponseStream *
watch (Fixture       *f,
       CpCallOptions *options)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("w");

  /* Any procedure works against the scripted server. */
  return cp_channel_call_server_stream (f->channel, "/kv.v1.KVService/GetMany",
                                        CP_MESSAGE (request), KV_TYPE_GET_RESPONSE, options);
}

#define STREAM_CT "Content-Type: application/connect+proto\r\n"

static void
test_stream_success (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) m2 = g_bytes_new (NULL, 0);
  g_autoptr(GBytes) end = text_bytes ("{\"metadata\":{\"x-t\":[\"1\",\"2\"]}}");
  g_autoptr(GBytes) body = envelopes (0, m1, 0, m2, 2, end, -1);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) request_body = NULL;
  g_autofree char *ct = NULL;
  g_autofree char *cae = NULL;
  g_autofree char *ae = NULL;
  StreamRun run;

  serve_stream (f, STREAM_CT "X-Lead: l\r\n", body, TRUE, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, options));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_true (run.got_headers);
  g_assert_cmpuint (run.n_closed, ==, 1);
  g_assert_cmpuint (run.messages->len, ==, 2);
  g_assert_cmpstr (test_get_value (run.messages->pdata[0]), ==, "one");
  /* Empty envelope = default message. */
  g_assert_false (kv_get_response_get_found (run.messages->pdata[1]));
  g_assert_cmpstr (soup_message_headers_get_one (cp_response_stream_get_response_headers (run.stream),
                                                 "X-Lead"), ==, "l");
  g_assert_cmpstr (soup_message_headers_get_list (cp_response_stream_get_response_trailers (run.stream),
                                                  "x-t"), ==, "1, 2");
  g_assert_cmpstr (soup_message_headers_get_list (cp_call_options_get_response_trailers (options),
                                                  "x-t"), ==, "1, 2");

  request = last_request (f);
  ct = raw_request_header (request, "Content-Type");
  g_assert_cmpstr (ct, ==, "application/connect+proto");
  cae = raw_request_header (request, "Connect-Accept-Encoding");
  g_assert_cmpstr (cae, ==, "gzip");
  ae = raw_request_header (request, "Accept-Encoding");
  g_assert_cmpstr (ae, ==, "identity");
  request_body = raw_request_body (request);
  /* One envelope: 00, length 3, 0a 01 77 */
  g_assert_cmpmem (g_bytes_get_data (request_body, NULL), g_bytes_get_size (request_body),
                   "\x00\x00\x00\x00\x03\x0a\x01\x77", 8);
  stream_run_clear (&run);
}

static void
test_stream_end_stream_error (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) end = text_bytes ("{\"error\":{\"code\":\"unavailable\",\"message\":\"overloaded\"},"
                                      "\"metadata\":{\"x-t\":[\"1\"]}}");
  g_autoptr(GBytes) body = envelopes (0, m1, 2, end, -1);
  StreamRun run;

  serve_stream (f, STREAM_CT "X-Lead: l\r\n", body, TRUE, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, NULL));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (run.error->message, ==, "overloaded");
  g_assert_cmpuint (run.messages->len, ==, 1);
  /* Error metadata = headers ∪ trailers. */
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (run.error), "X-Lead"), ==, "l");
  g_assert_cmpstr (soup_message_headers_get_one (cp_error_get_metadata (run.error), "x-t"), ==, "1");
  stream_run_clear (&run);
}

static void
check_stream_fails (Fixture     *f,
                    const char  *headers,
                    GBytes      *body,
                    gboolean     framed,
                    CpErrorCode  code,
                    guint        n_messages)
{
  StreamRun run;

  serve_stream (f, headers, body, framed, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, NULL));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, (gint) code);
  g_assert_cmpuint (run.messages->len, ==, n_messages);
  g_assert_cmpuint (run.n_closed, ==, 1);
  stream_run_clear (&run);
}

/* Bodies a server stream's response may carry (stream_body()). */
typedef enum {
  BODY_GOOD,          /* a message, EndStream "{}" */
  BODY_MISSING_END,   /* two messages, no EndStream */
  BODY_AFTER_END,     /* a message, EndStream, another message */
  BODY_COMPRESSED,    /* a message flagged compressed, EndStream */
  BODY_TRUNCATED,     /* BODY_GOOD without its last 3 bytes */
  BODY_BAD_END,       /* an EndStream whose payload is not JSON */
  BODY_UNDECODABLE,   /* a message that does not decode, EndStream */
} StreamBody;

static GBytes *
stream_body (StreamBody kind)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) end = text_bytes ("{}");
  static const guint8 garbage[] = { 0x0a, 0x7f, 0x01 };
  g_autoptr(GBytes) garbage_bytes = g_bytes_new_static (garbage, sizeof garbage);
  g_autoptr(GBytes) good = envelopes (0, m1, 2, end, -1);

  switch (kind)
    {
    case BODY_GOOD:
      return g_steal_pointer (&good);
    case BODY_MISSING_END:
      return envelopes (0, m1, 0, m1, -1);
    case BODY_AFTER_END:
      return envelopes (0, m1, 2, end, 0, m1, -1);
    case BODY_COMPRESSED:
      return envelopes (1, m1, 2, end, -1);
    case BODY_TRUNCATED:
      return g_bytes_new_from_bytes (good, 0, g_bytes_get_size (good) - 3);
    case BODY_BAD_END:
      return envelopes (2, m1, -1);
    case BODY_UNDECODABLE:
      return envelopes (0, garbage_bytes, 2, end, -1);
    }
  g_assert_not_reached ();
}

/* A server stream whose response breaks the protocol: the error, after the
 * messages that came before the fault. */
typedef struct {
  const char  *path;
  const char  *headers;
  StreamBody   body;
  gboolean     framed;      /* FALSE: the body as is, then close */
  CpErrorCode  code;
  guint        n_messages;
} ProtocolErrorCase;

static const ProtocolErrorCase protocol_error_cases[] = {
  /* Body ends without EndStream: messages first, then internal. */
  { "missing-end-stream", STREAM_CT, BODY_MISSING_END, TRUE, CP_ERROR_INTERNAL, 2 },
  /* Bytes after EndStream. */
  { "after-end-stream", STREAM_CT, BODY_AFTER_END, TRUE, CP_ERROR_INTERNAL, 1 },
  /* Compressed flag without Connect-Content-Encoding. */
  { "compressed-no-encoding", STREAM_CT, BODY_COMPRESSED, TRUE, CP_ERROR_INTERNAL, 0 },
  { "compressed-identity", STREAM_CT "Connect-Content-Encoding: identity\r\n", BODY_COMPRESSED,
    TRUE, CP_ERROR_INTERNAL, 0 },
  /* Unsupported Connect-Content-Encoding. */
  { "unknown-encoding", STREAM_CT "Connect-Content-Encoding: foo\r\n", BODY_GOOD, TRUE,
    CP_ERROR_INTERNAL, 0 },
  /* Server closes in the middle of an envelope. */
  { "truncated", STREAM_CT, BODY_TRUNCATED, FALSE, CP_ERROR_INVALID_ARGUMENT, 1 },
  /* EndStream payload is not JSON. */
  { "end-stream-not-json", STREAM_CT, BODY_BAD_END, TRUE, CP_ERROR_INTERNAL, 0 },
  /* A message that does not decode. */
  { "undecodable", STREAM_CT, BODY_UNDECODABLE, TRUE, CP_ERROR_INVALID_ARGUMENT, 0 },
  /* Content types. */
  { "content-type-json", "Content-Type: application/json\r\n", BODY_GOOD, TRUE,
    CP_ERROR_UNKNOWN, 0 },
  { "content-type-connect-json", "Content-Type: application/connect+json\r\n", BODY_GOOD, TRUE,
    CP_ERROR_INTERNAL, 0 },
};

static void
test_stream_protocol_error (Fixture       *f,
                            gconstpointer  data)
{
  const ProtocolErrorCase *c = data;
  g_autoptr(GBytes) body = stream_body (c->body);

  check_stream_fails (f, c->headers, body, c->framed, c->code, c->n_messages);
}

static void
test_stream_server_closes (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) body = envelopes (0, m1, -1);
  g_autoptr(GBytes) response = NULL;
  GString *s = g_string_new ("HTTP/1.1 200 OK\r\n" STREAM_CT "Content-Length: 1000\r\n\r\n");
  StreamRun run;

  /* Announces more than it sends, then closes: an error, never a hang. */
  g_string_append_len (s, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  response = g_string_free_to_bytes (s);
  raw_server_set_response (f->server, response, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, NULL));
  stream_run_wait (&run);
  g_assert_nonnull (run.error);
  g_assert_true (run.error->domain == CP_ERROR);
  g_assert_cmpuint (run.n_closed, ==, 1);
  stream_run_clear (&run);
}

/* ---- chunked bodies: cut off vs complete without EndStream ---- */

#define CHUNKED_HEAD "HTTP/1.1 200 OK\r\n" STREAM_CT "Transfer-Encoding: chunked\r\n"

static void
append_chunk (GString *s,
              GBytes  *data)
{
  gsize len;
  const char *bytes = g_bytes_get_data (data, &len);

  g_string_append_printf (s, "%" G_GSIZE_MODIFIER "x\r\n", len);
  g_string_append_len (s, bytes, len);
  g_string_append (s, "\r\n");
}

/* Serves @response (consumed) and runs one server stream to its end. */
static void
run_chunked (Fixture   *f,
             GString   *response,
             RawAfter   after,
             StreamRun *run)
{
  g_autoptr(GBytes) bytes = g_string_free_to_bytes (response);

  raw_server_set_response (f->server, bytes, after);
  stream_run_init (run, watch (f, NULL));
  stream_run_wait (run);
  g_assert_cmpuint (run->n_closed, ==, 1);
}

/* A chunked response, after CHUNKED_HEAD and the case's header lines, as
 * one letter per piece:
 *   E  a chunk holding one message envelope
 *   F  a chunk holding the EndStream envelope "{}"
 *   H  a chunk holding the first 3 bytes of an envelope
 *   C  a chunk announcing 0x40 bytes that sends only those 3 bytes
 *   Z  the zero-size last chunk */
typedef struct {
  const char  *path;
  const char  *head;
  const char  *script;
  RawAfter     after;
  gboolean     ok;
  CpErrorCode  code;
  const char  *message_part;  /* in the error message; NULL: not checked */
  guint        n_messages;
} ChunkedCase;

static const ChunkedCase chunked_cases[] = {
  /* The server dies between two chunks: libsoup 3.2 reports a clean end of
   * body there, the client must still say `unavailable`, not `internal`. */
  { "cut-at-boundary", "", "EE", RAW_AFTER_CLOSE, FALSE, CP_ERROR_UNAVAILABLE,
    "closed the connection", 2 },
  /* The server dies inside a chunk (libsoup's own error) or, at a chunk
   * boundary, inside an envelope: `unavailable` as well. */
  { "cut-inside", "", "EC", RAW_AFTER_CLOSE, FALSE, CP_ERROR_UNAVAILABLE, NULL, 1 },
  { "cut-inside-envelope", "", "EH", RAW_AFTER_CLOSE, FALSE, CP_ERROR_UNAVAILABLE, NULL, 1 },
  /* A complete chunked body (zero-size chunk) without EndStream is the
   * server's protocol error: `internal` (the conformance suite checks it);
   * here the connection stays open. */
  { "missing-end-stream", "", "EEZ", RAW_AFTER_WAIT_EOF, FALSE, CP_ERROR_INTERNAL,
    "EndStream", 2 },
  /* Same when the response announced "Connection: close" and the server
   * closes right after the zero-size chunk. */
  { "missing-end-stream-close", "Connection: close\r\n", "EZ", RAW_AFTER_CLOSE, FALSE,
    CP_ERROR_INTERNAL, NULL, 1 },
  /* EndStream, zero-size chunk, then the server closes at once: a success
   * (the connection state only ever picks between two errors). */
  { "end-then-close", "", "EFZ", RAW_AFTER_CLOSE, TRUE, 0, NULL, 1 },
};

static void
test_stream_chunked (Fixture       *f,
                     gconstpointer  data)
{
  const ChunkedCase *c = data;
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) end = text_bytes ("{}");
  g_autoptr(GBytes) env = envelopes (0, m1, -1);
  g_autoptr(GBytes) env_end = envelopes (2, end, -1);
  g_autoptr(GBytes) half = g_bytes_new_from_bytes (env, 0, 3);
  GString *s = g_string_new (CHUNKED_HEAD);
  StreamRun run;

  g_string_append_printf (s, "%s\r\n", c->head);
  for (const char *p = c->script; *p != '\0'; p++)
    switch (*p)
      {
      case 'E':
        append_chunk (s, env);
        break;
      case 'F':
        append_chunk (s, env_end);
        break;
      case 'H':
        append_chunk (s, half);
        break;
      case 'C':
        g_string_append (s, "40\r\n");
        g_string_append_len (s, g_bytes_get_data (half, NULL), g_bytes_get_size (half));
        break;
      case 'Z':
        g_string_append (s, "0\r\n\r\n");
        break;
      default:
        g_assert_not_reached ();
      }
  run_chunked (f, s, c->after, &run);
  if (c->ok)
    g_assert_no_error (run.error);
  else
    g_assert_error (run.error, CP_ERROR, (gint) c->code);
  if (c->message_part != NULL)
    g_assert_nonnull (strstr (run.error->message, c->message_part));
  g_assert_cmpuint (run.messages->len, ==, c->n_messages);
  stream_run_clear (&run);
}

/* A server stream answered with an HTTP error: the code from the status. */
typedef struct {
  const char  *path;
  guint        status;
  const char  *headers;
  const char  *body;
  gsize        body_len;
  CpErrorCode  code;
} HttpErrorCase;

static const HttpErrorCase http_error_cases[] = {
  /* An EndStream-looking body is not read. */
  { "503", 503, "Content-Type: application/connect+proto\r\n", "\x02\x00\x00\x00\x02{}", 7,
    CP_ERROR_UNAVAILABLE },
  { "404", 404, NULL, NULL, 0, CP_ERROR_UNIMPLEMENTED },
};

static void
test_stream_http_error (Fixture       *f,
                        gconstpointer  data)
{
  const HttpErrorCase *c = data;
  StreamRun run;
  g_autoptr(GBytes) response = raw_response (c->status, c->headers, c->body, c->body_len);

  raw_server_set_response (f->server, response, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, NULL));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, (gint) c->code);
  g_assert_false (run.got_headers);
  stream_run_clear (&run);
}

static void
test_stream_gzip (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("compressed", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) m1z = cp_compress (CP_COMPRESSION_GZIP, m1, NULL);
  g_autoptr(GBytes) end = text_bytes ("{\"metadata\":{\"k\":[\"v\"]}}");
  g_autoptr(GBytes) endz = cp_compress (CP_COMPRESSION_GZIP, end, NULL);
  g_autoptr(GBytes) body = envelopes (1, m1z, 0, m1, 3, endz, -1);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) request_body = NULL;
  g_autofree char *cce = NULL;
  StreamRun run;

  cp_call_options_set_compression (options, CP_COMPRESSION_GZIP);
  serve_stream (f, STREAM_CT "Connect-Content-Encoding: gzip\r\n", body, TRUE, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, options));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, 2);
  g_assert_cmpstr (test_get_value (run.messages->pdata[0]), ==, "compressed");
  g_assert_cmpstr (test_get_value (run.messages->pdata[1]), ==, "compressed");
  g_assert_cmpstr (soup_message_headers_get_one (cp_response_stream_get_response_trailers (run.stream),
                                                 "k"), ==, "v");

  request = last_request (f);
  cce = raw_request_header (request, "Connect-Content-Encoding");
  g_assert_cmpstr (cce, ==, "gzip");
  request_body = raw_request_body (request);
  g_assert_cmpuint (((const guint8 *) g_bytes_get_data (request_body, NULL))[0], ==, 1);
  stream_run_clear (&run);
}

static void
test_stream_cancel (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) body = envelopes (0, m1, -1);
  StreamRun run;

  /* One message, then the server keeps the stream open. */
  serve_stream (f, STREAM_CT, body, FALSE, RAW_AFTER_WAIT_EOF);
  stream_run_init (&run, watch (f, NULL));
  run.cancel_at = 1;
  stream_run_wait (&run);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (run.messages->len, ==, 1);
  /* The connection was aborted. */
  test_wait_until (peer_closed, f->server);
  stream_run_clear (&run);
}

static void
test_stream_deadline (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) body = envelopes (0, m1, -1);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autofree char *timeout = NULL;
  g_autoptr(GBytes) request = NULL;
  StreamRun run;

  serve_stream (f, STREAM_CT, body, FALSE, RAW_AFTER_WAIT_EOF);
  cp_call_options_set_timeout_ms (options, 300);
  stream_run_init (&run, watch (f, options));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_cmpuint (run.messages->len, ==, 1);
  test_wait_until (peer_closed, f->server);
  request = last_request (f);
  timeout = raw_request_header (request, "Connect-Timeout-Ms");
  g_assert_nonnull (timeout);
  stream_run_clear (&run);
}

static void
on_paused_message (CpResponseStream *stream,
                   CpMessage        *message,
                   gboolean         *seen)
{
  *seen = TRUE;
}

static void
test_stream_pause_resume (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) end = text_bytes ("{}");
  g_autoptr(GBytes) body = envelopes (0, m1, 0, m1, 0, m1, 2, end, -1);
  gboolean seen = FALSE;
  StreamRun run;

  serve_stream (f, STREAM_CT, body, TRUE, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, NULL));
  run.pause_at = 1;
  while (run.messages->len == 0)
    g_main_context_iteration (NULL, TRUE);
  /* Paused from the handler: nothing more is delivered, whatever arrives. */
  g_signal_connect (run.stream, "message", G_CALLBACK (on_paused_message), &seen);
  for (int i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (seen);
  g_assert_false (run.closed);
  g_assert_cmpuint (run.messages->len, ==, 1);

  cp_response_stream_resume (run.stream);
  /* Not from within resume(). */
  g_assert_cmpuint (run.messages->len, ==, 1);
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_true (seen);
  g_assert_cmpuint (run.messages->len, ==, 3);
  g_signal_handlers_disconnect_by_func (run.stream, on_paused_message, &seen);
  stream_run_clear (&run);
}

/* ---- client streams ---- */

static CpMessage *
client_stream (Fixture  *f,
               guint     n_send,
               GError  **error)
{
  g_autoptr(CpRequestStream) stream = NULL;

  stream = cp_channel_call_client_stream (f->channel, "/kv.v1.KVService/PutMany",
                                          KV_TYPE_GET_RESPONSE, NULL);
  for (guint i = 0; i < n_send; i++)
    {
      g_autoptr(KvGetRequest) request = kv_test_get_request ("k");

      g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (request), NULL));
    }
  return test_client_stream (stream, error);
}

static void
test_client_stream_cardinality (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) end = text_bytes ("{\"metadata\":{\"x\":[\"y\"]}}");
  g_autoptr(GBytes) one = envelopes (0, m1, 2, end, -1);
  g_autoptr(GBytes) none = envelopes (2, end, -1);
  g_autoptr(GBytes) two = envelopes (0, m1, 0, m1, 2, end, -1);
  g_autoptr(GBytes) stray = text_bytes ("{\"code\":\"out_of_range\"}");
  g_autoptr(GBytes) none_stray = envelopes (2, stray, -1);
  g_autoptr(GBytes) err = text_bytes ("{\"error\":{\"code\":\"data_loss\",\"message\":\"lost\"}}");
  g_autoptr(GBytes) failed = envelopes (0, m1, 2, err, -1);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) request_body = NULL;
  g_autofree char *length = NULL;

  serve_stream (f, STREAM_CT, one, TRUE, RAW_AFTER_CLOSE);
  response = client_stream (f, 3, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "one");
  request = last_request (f);
  length = raw_request_header (request, "Content-Length");
  g_assert_cmpstr (length, ==, "24");  /* 3 × (5 + 3) */
  request_body = raw_request_body (request);
  g_assert_cmpuint (g_bytes_get_size (request_body), ==, 24);
  g_clear_object (&response);

  serve_stream (f, STREAM_CT, none, TRUE, RAW_AFTER_CLOSE);
  response = client_stream (f, 0, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);

  serve_stream (f, STREAM_CT, none_stray, TRUE, RAW_AFTER_CLOSE);
  response = client_stream (f, 1, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);

  serve_stream (f, STREAM_CT, two, TRUE, RAW_AFTER_CLOSE);
  response = client_stream (f, 1, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);

  serve_stream (f, STREAM_CT, failed, TRUE, RAW_AFTER_CLOSE);
  response = client_stream (f, 1, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_DATA_LOSS);
  g_assert_cmpstr (error->message, ==, "lost");
}

/* ---- sync and actor model ---- */

static void
test_sync (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("sync", TRUE, CP_CODEC_PROTO);
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = cp_channel_call_sync (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                   KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "sync");
}

typedef struct {
  const char *url;
  gboolean ok;
} WorkerData;

static gpointer
worker_thread (gpointer user_data)
{
  WorkerData *data = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  StreamRun run;

  g_main_context_push_thread_default (context);
  channel = cp_channel_new (data->url, &error);
  g_assert_no_error (error);

  /* test_call_unary asserts the callback runs on this thread. */
  response = test_call_unary (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "worker");

  /* Signals: StreamRun checks thread and context ownership. The scripted
   * server answers with a unary body, so the stream fails: still signals. */
  stream_run_init (&run, cp_channel_call_server_stream (channel, "/kv.v1.KVService/GetMany",
                                                        CP_MESSAGE (request),
                                                        KV_TYPE_GET_RESPONSE, NULL));
  g_assert_true (run.context == context);
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_UNKNOWN);
  stream_run_clear (&run);

  g_main_context_pop_thread_default (context);
  data->ok = TRUE;
  return NULL;
}

static void
test_actor_worker_thread (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("worker", TRUE, CP_CODEC_PROTO);
  WorkerData wd = { raw_server_get_url (f->server), FALSE };
  GThread *thread;

  serve (f, 200, "Content-Type: application/proto\r\n", body);
  thread = g_thread_new ("worker", worker_thread, &wd);
  g_thread_join (thread);
  g_assert_true (wd.ok);
}

static void
test_bad_url (void)
{
  static const char *bad[] = { "ftp://x", "http://", "unix:", "not a url", "http://h:1/?q=1" };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpChannel) channel = cp_channel_new (bad[i], &error);

      g_assert_null (channel);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_connection_refused (void)
{
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GSocket) sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                          G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autofree char *url = NULL;

  /* A bound but not listening port refuses connections. */
  g_assert_true (g_socket_bind (sock, address, TRUE, NULL));
  bound = g_socket_get_local_address (sock, NULL);
  url = g_strdup_printf ("http://127.0.0.1:%u",
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  response = test_call_unary (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
}

/* ---- default limits and deadlines (issue 12) ---- */

static void
test_channel_defaults (Fixture       *f,
                       gconstpointer  data)
{
  GParamSpec *timeout = g_object_class_find_property (G_OBJECT_GET_CLASS (f->channel), "timeout-ms");
  GParamSpec *limit = g_object_class_find_property (G_OBJECT_GET_CLASS (f->channel),
                                                    "max-receive-size");
  gint64 timeout_ms;
  guint64 max_receive_size;

  g_object_get (f->channel, "timeout-ms", &timeout_ms, "max-receive-size", &max_receive_size, NULL);
  /* The wire contract's RPC timeout, and the servers' receive limit. */
  g_assert_cmpint (timeout_ms, ==, 30000);
  g_assert_cmpint (G_PARAM_SPEC_INT64 (timeout)->default_value, ==, 30000);
  g_assert_cmpuint (max_receive_size, ==, 4 * 1024 * 1024);
  g_assert_cmpuint (G_PARAM_SPEC_UINT64 (limit)->default_value, ==, 4 * 1024 * 1024);
}

#define BOMB_MIB 256

/* A gzip bomb: BOMB_MIB gzip members of 1 MiB of zeros each (about 1 KiB
 * apiece); gzip readers take concatenated members as one stream. */
static GBytes *
gzip_bomb (void)
{
  g_autoptr(GBytes) zeros = g_bytes_new_take (g_malloc0 (1024 * 1024), 1024 * 1024);
  g_autoptr(GBytes) member = cp_compress (CP_COMPRESSION_GZIP, zeros, NULL);
  GByteArray *out = g_byte_array_new ();
  gsize len;
  const guint8 *bytes = g_bytes_get_data (member, &len);

  for (guint i = 0; i < BOMB_MIB; i++)
    g_byte_array_append (out, bytes, len);
  return g_byte_array_free_to_bytes (out);
}

/* The process's peak resident size so far, in KiB. */
static glong
peak_rss_kib (void)
{
  struct rusage usage;

  g_assert_cmpint (getrusage (RUSAGE_SELF, &usage), ==, 0);
  return usage.ru_maxrss;
}

/* Inflating 256 MiB would raise the peak by at least that much; stopping
 * at the 4 MiB limit costs a few MiB. */
#define BOMB_PEAK_MARGIN_KIB (64 * 1024)

static void
test_unary_gzip_bomb (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GBytes) bomb = gzip_bomb ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  glong before;

  /* No limit set on the channel: its default applies while inflating. */
  serve (f, 200, "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", bomb);
  before = peak_rss_kib ();
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_null (response);
  g_test_message ("peak RSS grew by %ld KiB", peak_rss_kib () - before);
  g_assert_cmpint (peak_rss_kib () - before, <, BOMB_PEAK_MARGIN_KIB);
}

static void
test_stream_gzip_bomb (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GBytes) bomb = gzip_bomb ();
  g_autoptr(GBytes) end = text_bytes ("{}");
  g_autoptr(GBytes) body = envelopes (CP_ENVELOPE_FLAG_COMPRESSED, bomb,
                                      CP_ENVELOPE_FLAG_END_STREAM, end, -1);
  StreamRun run;
  glong before;

  serve_stream (f, STREAM_CT "Connect-Content-Encoding: gzip\r\n", body, TRUE, RAW_AFTER_CLOSE);
  before = peak_rss_kib ();
  stream_run_init (&run, watch (f, NULL));
  stream_run_wait (&run);
  g_assert_error (run.error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpuint (run.messages->len, ==, 0);
  g_test_message ("peak RSS grew by %ld KiB", peak_rss_kib () - before);
  g_assert_cmpint (peak_rss_kib () - before, <, BOMB_PEAK_MARGIN_KIB);
  stream_run_clear (&run);
}

static void
test_unary_default_deadline (Fixture       *f,
                             gconstpointer  data)
{
  static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\n"
                             "Content-Length: 100\r\n\r\n";
  g_autoptr(GBytes) response_head = g_bytes_new_static (head, sizeof head - 1);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autofree char *timeout = NULL;
  gint64 timeout_ms;

  /* Headers, then silence: without a deadline the call would never end.
   * The channel has one by default (30 s), shortened here. */
  g_object_get (f->channel, "timeout-ms", &timeout_ms, NULL);
  g_assert_cmpint (timeout_ms, ==, 30000);
  g_object_set (f->channel, "timeout-ms", (gint64) 200, NULL);
  raw_server_set_response (f->server, response_head, RAW_AFTER_WAIT_EOF);
  response = get (f, "k", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_null (response);
  test_wait_until (peer_closed, f->server);
  request = last_request (f);
  timeout = raw_request_header (request, "Connect-Timeout-Ms");
  g_assert_cmpuint (g_ascii_strtoull (timeout, NULL, 10), <=, 200);
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_stream_no_default_deadline (Fixture       *f,
                                 gconstpointer  data)
{
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) body = envelopes (0, m1, -1);
  g_autoptr(GBytes) request = NULL;
  g_autofree char *timeout = NULL;
  gboolean elapsed = FALSE;
  StreamRun run;

  /* One message, then a long quiet time: the channel's (unary) timeout
   * does not apply to streams. */
  g_object_set (f->channel, "timeout-ms", (gint64) 100, NULL);
  serve_stream (f, STREAM_CT, body, FALSE, RAW_AFTER_WAIT_EOF);
  stream_run_init (&run, watch (f, NULL));
  g_timeout_add (500, set_flag, &elapsed);
  test_wait_for (&elapsed);
  g_assert_false (run.closed);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, 1);
  request = last_request (f);
  timeout = raw_request_header (request, "Connect-Timeout-Ms");
  g_assert_null (timeout);

  cp_response_stream_cancel (run.stream);
  stream_run_wait (&run);
  g_assert_error (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  stream_run_clear (&run);
}

/* ---- channel headers and URL shapes ---- */

/* Replaces f->channel by one at the raw server's URL followed by @suffix. */
static void
rebase (Fixture    *f,
        const char *suffix,
        gboolean    method_only)
{
  g_autofree char *url = g_strconcat (raw_server_get_url (f->server), suffix, NULL);
  g_autoptr(GError) error = NULL;

  g_clear_object (&f->channel);
  f->channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  g_object_set (f->channel, "method-only-paths", method_only, NULL);
}

static char *
last_header (Fixture    *f,
             const char *name)
{
  g_autoptr(GBytes) request = last_request (f);

  return raw_request_header (request, name);
}

static char *
last_line (Fixture *f)
{
  g_autoptr(GBytes) request = last_request (f);

  return raw_request_line (request);
}

static void
test_channel_headers (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autofree char *raw = NULL;

  cp_channel_set_header (f->channel, "Authorization", "Bearer t1");
  cp_channel_set_header (f->channel, "X-Tenant", "channel");
  cp_channel_set_header (f->channel, "Content-Type", "evil/x");  /* reserved: ignored */
  soup_message_headers_append (cp_call_options_get_request_headers (options), "X-Tenant", "call");

  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(CpMessage) response = NULL;
      g_autofree char *auth = NULL;
      g_autofree char *tenant = NULL;
      g_autofree char *ct = NULL;
      g_autofree char *whole = NULL;

      serve (f, 200, "Content-Type: application/proto\r\n", body);
      response = get (f, "k", round == 0 ? options : NULL, &error);
      g_assert_no_error (error);
      auth = last_header (f, "Authorization");
      tenant = last_header (f, "X-Tenant");
      ct = last_header (f, "Content-Type");
      g_assert_cmpstr (ct, ==, "application/proto");
      request = last_request (f);
      whole = g_strndup (g_bytes_get_data (request, NULL), g_bytes_get_size (request));
      g_clear_pointer (&request, g_bytes_unref);
      switch (round)
        {
        case 0:
          /* The call's own header wins, and is the only one of its name. */
          g_assert_cmpstr (auth, ==, "Bearer t1");
          g_assert_cmpstr (tenant, ==, "call");
          g_assert_null (strstr (whole, "channel"));
          /* A renewed token replaces the old one in place. */
          cp_channel_set_header (f->channel, "Authorization", "Bearer t2");
          break;
        case 1:
          g_assert_cmpstr (auth, ==, "Bearer t2");
          g_assert_cmpstr (tenant, ==, "channel");
          g_assert_null (strstr (whole, "t1"));
          cp_channel_set_header (f->channel, "Authorization", NULL);
          break;
        default:
          g_assert_null (auth);
          g_assert_cmpstr (tenant, ==, "channel");
        }
    }
}

/* A base URL with a path (a capability grant's endpoint): URL = base-url +
 * procedure, for unary calls (POST and GET) and streams. */
static void
test_channel_base_path (Fixture       *f,
                        gconstpointer  data)
{
  const char *base = "/capabilities/secrets/R3JhbnQtaWQtMTIzNDU2Nw==";
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *expected = NULL;

  rebase (f, base, FALSE);
  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  line = last_line (f);
  expected = g_strdup_printf ("POST %s/kv.v1.KVService/Get HTTP/1.1", base);
  g_assert_cmpstr (line, ==, expected);
}

static void
check_stream_line (Fixture    *f,
                   const char *expected)
{
  g_autofree char *line = last_line (f);
  g_autofree char *auth = last_header (f, "Authorization");

  g_assert_cmpstr (line, ==, expected);
  g_assert_cmpstr (auth, ==, "Bearer rt");
}

/* method-only-paths: URL = base-url + "/" + method, for every call kind. */
static void
test_channel_method_only_paths (Fixture       *f,
                                gconstpointer  data)
{
  g_autoptr(GBytes) body = test_get_response ("v", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) m1 = test_get_response ("one", TRUE, CP_CODEC_PROTO);
  g_autoptr(GBytes) end = text_bytes ("{}");
  g_autoptr(GBytes) stream_body = envelopes (0, m1, 2, end, -1);
  g_autoptr(CpCallOptions) get_options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(CpMessage) client_response = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  gboolean method_only = FALSE;
  StreamRun run;

  rebase (f, "/services/kv/kv-plugin-3fa0/", TRUE);
  cp_channel_set_header (f->channel, "Authorization", "Bearer rt");
  g_object_get (f->channel, "method-only-paths", &method_only, NULL);
  g_assert_true (method_only);

  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  check_stream_line (f, "POST /services/kv/kv-plugin-3fa0/Get HTTP/1.1");
  g_clear_object (&response);

  cp_call_options_set_use_get (get_options, TRUE);
  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "k", get_options, &error);
  g_assert_no_error (error);
  check_stream_line (f, "GET /services/kv/kv-plugin-3fa0/Get?connect=v1&base64=1&encoding=proto&message=CgFr HTTP/1.1");

  serve_stream (f, STREAM_CT, stream_body, TRUE, RAW_AFTER_CLOSE);
  stream_run_init (&run, watch (f, NULL));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  stream_run_clear (&run);
  check_stream_line (f, "POST /services/kv/kv-plugin-3fa0/GetMany HTTP/1.1");

  serve_stream (f, STREAM_CT, stream_body, TRUE, RAW_AFTER_CLOSE);
  client_response = client_stream (f, 1, &error);
  g_assert_no_error (error);
  check_stream_line (f, "POST /services/kv/kv-plugin-3fa0/PutMany HTTP/1.1");

  /* Off again: the whole procedure. */
  g_object_set (f->channel, "method-only-paths", FALSE, NULL);
  g_clear_object (&response);
  serve (f, 200, "Content-Type: application/proto\r\n", body);
  response = get (f, "k", NULL, &error);
  g_assert_no_error (error);
  line = last_line (f);
  g_assert_cmpstr (line, ==, "POST /services/kv/kv-plugin-3fa0/kv.v1.KVService/Get HTTP/1.1");
}

#define ADD(path, func) \
  g_test_add ("/client/raw/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

/* One test per row of a table of cases whose first member is the path's tail. */
#define ADD_CASE(prefix, table, i, func)                                        \
  G_STMT_START {                                                                \
    g_autofree char *path_ = g_strconcat ("/client/raw/" prefix, table[i].path, NULL); \
    g_test_add (path_, Fixture, &table[i], fixture_setup, func, fixture_teardown); \
  } G_STMT_END

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  ADD ("unary/proto", test_unary_proto);
  ADD ("channel/headers", test_channel_headers);
  ADD ("channel/base-path", test_channel_base_path);
  ADD ("channel/method-only-paths", test_channel_method_only_paths);
  ADD ("unary/json", test_unary_json);
  ADD ("unary/empty-proto-body", test_unary_empty_proto);
  ADD ("unary/timeout-header", test_unary_timeout_header);
  ADD ("unary/deadline-expired", test_unary_deadline_expired);
  ADD ("unary/timeout-enforced", test_unary_timeout_enforced);
  ADD ("unary/cancel", test_unary_cancel);
  ADD ("unary/server-canceled", test_unary_server_canceled);
  for (gsize i = 0; i < G_N_ELEMENTS (http_status_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/client/raw/unary/http-status/%u",
                                               http_status_cases[i].status);
      g_test_add (path, Fixture, &http_status_cases[i], fixture_setup, test_unary_http_status,
                  fixture_teardown);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (error_json_cases); i++)
    ADD_CASE ("unary/error-json/", error_json_cases, i, test_unary_error_json);
  ADD ("unary/error-details", test_unary_error_details);
  ADD ("unary/error-non-json", test_unary_error_non_json);
  ADD ("unary/error-gzip", test_unary_error_gzip);
  for (gsize i = 0; i < G_N_ELEMENTS (content_type_cases); i++)
    ADD_CASE ("unary/content-type/", content_type_cases, i, test_unary_content_type);
  ADD ("unary/gzip-response", test_unary_gzip_response);
  ADD ("unary/gzip-request", test_unary_gzip_request);
  ADD ("unary/gzip-empty-request", test_unary_gzip_empty_request);
  ADD ("unary/bad-body", test_unary_bad_body);
  ADD ("unary/max-receive-size", test_unary_max_receive_size);
  ADD ("unary/get", test_unary_get);
  ADD ("unary/gzip-bomb", test_unary_gzip_bomb);
  ADD ("unary/default-deadline", test_unary_default_deadline);
  ADD ("channel-defaults", test_channel_defaults);
  ADD ("unary/sync", test_sync);
  ADD ("stream/success", test_stream_success);
  ADD ("stream/end-stream-error", test_stream_end_stream_error);
  for (gsize i = 0; i < G_N_ELEMENTS (protocol_error_cases); i++)
    ADD_CASE ("stream/protocol-errors/", protocol_error_cases, i, test_stream_protocol_error);
  ADD ("stream/server-closes", test_stream_server_closes);
  for (gsize i = 0; i < G_N_ELEMENTS (chunked_cases); i++)
    ADD_CASE ("stream/chunked/", chunked_cases, i, test_stream_chunked);
  for (gsize i = 0; i < G_N_ELEMENTS (http_error_cases); i++)
    ADD_CASE ("stream/http-error/", http_error_cases, i, test_stream_http_error);
  ADD ("stream/gzip", test_stream_gzip);
  ADD ("stream/cancel", test_stream_cancel);
  ADD ("stream/deadline", test_stream_deadline);
  ADD ("stream/no-default-deadline", test_stream_no_default_deadline);
  ADD ("stream/gzip-bomb", test_stream_gzip_bomb);
  ADD ("stream/pause-resume", test_stream_pause_resume);
  ADD ("client-stream/cardinality", test_client_stream_cardinality);
  ADD ("actor/worker-thread", test_actor_worker_thread);
  g_test_add_func ("/client/raw/bad-url", test_bad_url);
  g_test_add_func ("/client/raw/connection-refused", test_connection_refused);

  return g_test_run ();
}
