/* test-rpc-server-unary.c: CpRpcServer: unary calls over POST and GET
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unary calls in the proto and JSON codecs: answers, errors with details
 * and metadata, empty and chunked bodies, keep-alive, and the GET form
 * (base64 message, encoding, compression and connect query parameters).
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
/* Unary                                                                */

static void
test_unary_proto (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("headers");
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n"
             "X-Conformance-Test: Value1\r\nX-Conformance-Test: Value2\r\n",
             body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Type", "application/proto");
  assert_header (resp.headers, "Accept-Encoding", "gzip");
  assert_header (resp.headers, "x-custom-header", "foo, bar");
  assert_header (resp.headers, "Trailer-X-Custom-Trailer", "bing, quux");
  g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
  g_assert_null (soup_message_headers_get_one (resp.headers, "Vary"));
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "Value1|Value2");
  g_assert_true (kv_get_response_get_found (response));
  raw_response_clear (&resp);
}

static void
test_unary_json (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = g_bytes_new_static ("{\"key\":\"hello\"}", 15);
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/json; charset=utf-8\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  /* The request's exact Content-Type is echoed. */
  assert_header (resp.headers, "Content-Type", "application/json; charset=utf-8");
  response = decode_get_response (resp.body, CP_CODEC_JSON);
  assert_value (response, "value of hello");
  raw_response_clear (&resp);

  /* An empty body is not a JSON message. */
  {
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", empty, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    raw_response_clear (&resp);
  }
  /* Malformed JSON. */
  {
    g_autoptr(GBytes) bad = g_bytes_new_static ("{\"key\":", 7);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", bad, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_header (resp.headers, "Content-Type", "application/json");
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

static void
test_unary_empty_request (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(KvGetResponse) response = NULL;
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", empty, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "value of ");
  raw_response_clear (&resp);

  /* A zero-length body with Content-Encoding: gzip is not decompressed. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", empty, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);

  /* Garbage proto → invalid_argument. */
  {
    static const guint8 garbage[] = { 0x0a, 0x20, 0x01 };
    g_autoptr(GBytes) bad = g_bytes_new_static (garbage, sizeof garbage);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", bad, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    raw_response_clear (&resp);
  }
}

static void
test_unary_errors (Fixture *f, gconstpointer data)
{
  static const guint statuses[] = { 0, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409,
                                    400, 501, 500, 503, 500, 401 };

  for (CpErrorCode code = CP_ERROR_CANCELED; code <= CP_ERROR_UNAUTHENTICATED; code++)
    {
      g_autofree char *key = g_strdup_printf ("error:%d", code);
      g_autoptr(GBytes) body = get_request_proto (key);
      RawResponse resp;

      roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
      g_assert_cmpuint (resp.status, ==, statuses[code]);
      assert_header (resp.headers, "Content-Type", "application/json");
      assert_header (resp.headers, "Accept-Encoding", "gzip");
      assert_header (resp.headers, "x-custom-header", "foo, bar");
      assert_header (resp.headers, "Trailer-X-Custom-Trailer", "bing, quux");
      assert_header (resp.headers, "x-error-meta", "m1");
      assert_rich_error_json (resp.body, code);
      raw_response_clear (&resp);
    }
  assert_server_alive (f);
}

static void
test_unary_non_connect_error (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("plain-error");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 500);
  assert_error_json (resp.body, CP_ERROR_UNKNOWN, "no such thing");
  raw_response_clear (&resp);
}

static void
test_unary_no_answer (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("no-answer");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 500);
  assert_error_json (resp.body, CP_ERROR_INTERNAL, "handler did not answer");
  raw_response_clear (&resp);
  assert_server_alive (f);
}

static void
test_unary_answered_twice (Fixture *f, gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GBytes) body = get_request_proto ("twice");
      RawResponse resp;

      roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
      raw_response_clear (&resp);
      return;
    }

  /* Answering twice is a programming error: a critical (fatal in tests). */
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*invocation of /kv.v1.KVService/Get was already answered*");
}


/* A unary body in several chunks (chunked transfer encoding). */
static void
test_unary_chunked_body (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("in pieces");
  g_autoptr(KvGetResponse) response = NULL;
  GString *req = g_string_new ("POST " KV_PROCEDURE_GET " HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/proto\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n");
  gsize len;
  const char *bytes = g_bytes_get_data (body, &len);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;

  for (gsize pos = 0; pos < len; pos += 4)
    {
      gsize n = MIN (4, len - pos);
      g_string_append_printf (req, "%zx\r\n", n);
      g_string_append_len (req, bytes + pos, n);
      g_string_append (req, "\r\n");
    }
  g_string_append (req, "0\r\n\r\n");
  g_assert_true (raw_send (rc, req->str, req->len));
  g_string_free (req, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  response = decode_get_response (resp.body, CP_CODEC_PROTO);
  assert_value (response, "value of in pieces");
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

static void
test_keep_alive (Fixture *f, gconstpointer data)
{
  RawConn *rc = raw_conn_new (f->url);

  for (int i = 0; i < 3; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%d", i);
      g_autofree char *expected = g_strdup_printf ("value of k%d", i);
      g_autoptr(GBytes) body = get_request_proto (key);
      g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                                 "Content-Type: application/proto\r\n", body);
      g_autoptr(KvGetResponse) response = NULL;
      RawResponse resp;

      g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
      g_assert_true (raw_read_response (rc, &resp));
      g_assert_cmpuint (resp.status, ==, 200);
      response = decode_get_response (resp.body, CP_CODEC_PROTO);
      assert_value (response, expected);
      raw_response_clear (&resp);
    }
  raw_conn_free (rc);
}


/* ------------------------------------------------------------------ */
/* GET                                                                  */

static char *
base64url (GBytes *bytes, gboolean padded)
{
  char *b64 = g_base64_encode (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

  g_strdelimit (b64, "+", '-');
  g_strdelimit (b64, "/", '_');
  if (!padded)
    {
      char *eq = strchr (b64, '=');
      if (eq)
        *eq = '\0';
    }
  else
    {
      /* '=' must be percent-encoded in a query */
      GString *s = g_string_new (NULL);
      for (char *p = b64; *p; p++)
        if (*p == '=')
          g_string_append (s, "%3D");
        else
          g_string_append_c (s, *p);
      g_free (b64);
      b64 = g_string_free (s, FALSE);
    }
  return b64;
}

static void
assert_get_ok (Fixture *f, const char *target, CpCodec codec, const char *headers,
               const char *expected_value, gboolean expect_gzip)
{
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(GBytes) body = NULL;
  RawResponse resp;

  roundtrip (f, "GET", target, headers, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Vary", "Accept-Encoding");
  assert_header (resp.headers, "Content-Type",
                 codec == CP_CODEC_JSON ? "application/json" : "application/proto");
  if (expect_gzip)
    {
      g_autoptr(GError) error = NULL;
      assert_header (resp.headers, "Content-Encoding", "gzip");
      body = cp_decompress (CP_COMPRESSION_GZIP, resp.body, 0, &error);
      g_assert_no_error (error);
    }
  else
    {
      g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
      body = g_bytes_ref (resp.body);
    }
  response = decode_get_response (body, codec);
  assert_value (response, expected_value);
  raw_response_clear (&resp);
}

static void
test_get (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) proto = get_request_proto ("a?b");
  g_autofree char *unpadded = base64url (proto, FALSE);
  g_autofree char *padded = base64url (proto, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, proto, &error);
  g_autofree char *gz64 = base64url (gz, FALSE);
  g_autofree char *target = NULL;

  g_assert_no_error (error);

  /* JSON, percent-encoded, '+' as space. */
  assert_get_ok (f, KV_PROCEDURE_GET "?connect=v1&encoding=json&message=%7B%22key%22%3A%22a+b%22%7D",
                 CP_CODEC_JSON, NULL, "value of a b", FALSE);
  /* Shuffled, with an unknown parameter. */
  assert_get_ok (f, KV_PROCEDURE_GET "?message=%7B%22key%22%3A%22x%22%7D&cachebust=12&encoding=json",
                 CP_CODEC_JSON, NULL, "value of x", FALSE);

  target = g_strdup_printf ("%s?connect=v1&base64=1&encoding=proto&message=%s", KV_PROCEDURE_GET, unpadded);
  assert_get_ok (f, target, CP_CODEC_PROTO, NULL, "value of a?b", FALSE);
  g_free (target);
  target = g_strdup_printf ("%s?message=%s&encoding=proto&base64=1", KV_PROCEDURE_GET, padded);
  assert_get_ok (f, target, CP_CODEC_PROTO, NULL, "value of a?b", FALSE);
  g_free (target);
  /* Compressed request; the response follows the request's compression. */
  target = g_strdup_printf ("%s?connect=v1&base64=1&compression=gzip&encoding=proto&message=%s",
                            KV_PROCEDURE_GET, gz64);
  assert_get_ok (f, target, CP_CODEC_PROTO, NULL, "value of a?b", TRUE);
  g_free (target);
  /* Identity request, Accept-Encoding: gzip → gzip response. */
  target = g_strdup_printf ("%s?encoding=proto&base64=1&message=%s", KV_PROCEDURE_GET, unpadded);
  assert_get_ok (f, target, CP_CODEC_PROTO, "Accept-Encoding: br, gzip\r\n", "value of a?b", TRUE);
}

static void
test_get_errors (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = g_bytes_new_static ("x", 1);
  RawResponse resp;

  /* GET on a method with side effects. */
  roundtrip (f, "GET", KV_PROCEDURE_PUT "?encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  assert_header (resp.headers, "Allow", "POST");
  raw_response_clear (&resp);

  /* Missing or unknown encoding. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=xml&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);

  /* GET with a body. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=json&message=%7B%7D", NULL, body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);

  /* Missing message. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=json", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  assert_header (resp.headers, "Vary", "Accept-Encoding");
  raw_response_clear (&resp);

  /* connect=v2. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?connect=v2&encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  /* Unsupported compression. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?compression=br&base64=1&encoding=proto&message=", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 501);
  assert_error_json (resp.body, CP_ERROR_UNIMPLEMENTED,
                     "unknown compression \"br\": supported encodings are gzip");
  raw_response_clear (&resp);

  /* Bad base64. */
  roundtrip (f, "GET", KV_PROCEDURE_GET "?base64=1&encoding=proto&message=%21%21%21", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  raw_response_clear (&resp);

  assert_server_alive (f);
}



/* An empty JSON body is invalid_argument (and no NULL + 0 under UBSan). */
static void
test_unary_json_empty_body (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", empty, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  /* Duplicate JSON fields are refused, naming the field. */
  {
    g_autoptr(GBytes) dup = g_bytes_new_static ("{\"key\":\"a\",\"key\":\"b\"}", 21);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/json\r\n", dup, &resp);
    g_assert_cmpuint (resp.status, ==, 400);
    assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
    g_assert_nonnull (g_strstr_len (g_bytes_get_data (resp.body, NULL), g_bytes_get_size (resp.body),
                                    "duplicate field key"));
    raw_response_clear (&resp);
  }
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/rpc/server/unary/proto", test_unary_proto);
  ADD ("/rpc/server/unary/json", test_unary_json);
  ADD ("/rpc/server/unary/empty-request", test_unary_empty_request);
  ADD ("/rpc/server/unary/errors", test_unary_errors);
  ADD ("/rpc/server/unary/non-connect-error", test_unary_non_connect_error);
  ADD ("/rpc/server/unary/no-answer", test_unary_no_answer);
  ADD ("/rpc/server/unary/keep-alive", test_keep_alive);
  ADD ("/rpc/server/unary/answered-twice", test_unary_answered_twice);
  ADD ("/rpc/server/unary/chunked-body", test_unary_chunked_body);
  ADD ("/rpc/server/get/ok", test_get);
  ADD ("/rpc/server/get/errors", test_get_errors);
  ADD ("/rpc/server/unary/json-empty-and-duplicate", test_unary_json_empty_body);
#undef ADD

  return g_test_run ();
}
