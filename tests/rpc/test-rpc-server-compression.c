/* test-rpc-server-compression.c: CpRpcServer: compression
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * gzip and identity request and response compression, negotiated per call,
 * for unary calls and for streams (per envelope).
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
/* Compression                                                          */

static void
test_compression_unary (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) proto = get_request_proto ("zip");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, proto, &error);
  RawResponse resp;

  g_assert_no_error (error);

  /* gzip request body → gzip response. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", gz, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Encoding", "gzip");
  assert_header (resp.headers, "Accept-Encoding", "gzip");
  {
    g_autoptr(GBytes) plain = cp_decompress (CP_COMPRESSION_GZIP, resp.body, 0, &error);
    g_autoptr(KvGetResponse) response = NULL;
    g_assert_no_error (error);
    response = decode_get_response (plain, CP_CODEC_PROTO);
    assert_value (response, "value of zip");
  }
  raw_response_clear (&resp);

  /* identity request + Accept-Encoding: gzip → gzip response. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nAccept-Encoding: gzip\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Encoding", "gzip");
  raw_response_clear (&resp);

  /* The list in two fields, gzip in the first, the second spelled in
   * capitals → gzip. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nAccept-Encoding: gzip\r\nACCEPT-ENCODING: zstd, br\r\n",
             proto, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_header (resp.headers, "Content-Encoding", "gzip");
  raw_response_clear (&resp);

  /* Accept-Encoding without anything we support → identity. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nAccept-Encoding: br, zstd\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
  raw_response_clear (&resp);

  /* Small responses below compress-min-bytes stay uncompressed. */
  g_object_set (f->server, "compress-min-bytes", 1000, NULL);
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nAccept-Encoding: gzip\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_null (soup_message_headers_get_one (resp.headers, "Content-Encoding"));
  raw_response_clear (&resp);
  g_object_set (f->server, "compress-min-bytes", 0, NULL);

  /* Unsupported encoding → unimplemented listing ours. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: foo\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 501);
  assert_header (resp.headers, "Accept-Encoding", "gzip");
  assert_error_json (resp.body, CP_ERROR_UNIMPLEMENTED,
                     "unknown compression \"foo\": supported encodings are gzip");
  raw_response_clear (&resp);

  /* Corrupt gzip → invalid_argument. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", proto, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  /* A server configured without gzip. */
  {
    const char *identity_only[] = { "identity", NULL };
    g_object_set (f->server, "compressions", identity_only, NULL);
    roundtrip (f, "POST", KV_PROCEDURE_GET,
               "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", gz, &resp);
    g_assert_cmpuint (resp.status, ==, 501);
    assert_header (resp.headers, "Accept-Encoding", "identity");
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

static void
test_compression_stream (Fixture *f, gconstpointer data)
{
  g_autoptr(KvWatchRequest) request = kv_test_watch_request ("n:2");
  g_autoptr(GBytes) payload = proto_of (request);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) gz = cp_compress (CP_COMPRESSION_GZIP, payload, &error);
  g_autoptr(GBytes) env = raw_envelope (0x01, g_bytes_get_data (gz, NULL), g_bytes_get_size (gz));
  RawResponse resp;
  GArray *envs;

  envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Content-Encoding: gzip\r\n", env, &resp);
  assert_header (resp.headers, "Connect-Content-Encoding", "gzip");
  assert_header (resp.headers, "Connect-Accept-Encoding", "gzip");
  g_assert_cmpuint (envs->len, ==, 3);
  for (guint i = 0; i < 2; i++)
    {
      RawEnvelope *e = &g_array_index (envs, RawEnvelope, i);
      g_autoptr(GBytes) plain = NULL;
      g_autoptr(CpMessage) event = NULL;

      g_assert_cmpuint (e->flags, ==, 0x01);
      plain = cp_decompress (CP_COMPRESSION_GZIP, e->payload, 0, &error);
      g_assert_no_error (error);
      event = cp_message_new_from_bytes (KV_TYPE_WATCH_EVENT, CP_CODEC_PROTO, plain, &error);
      g_assert_no_error (error);
    }
  raw_envelopes_free (envs);
  raw_response_clear (&resp);

  /* Uncompressed request envelope, Connect-Accept-Encoding: gzip. */
  {
    g_autoptr(GBytes) plain_env = watch_request_envelope ("n:1");
    envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Accept-Encoding: gzip\r\n", plain_env, &resp);
    g_assert_cmpuint (envs->len, ==, 2);
    g_assert_cmpuint (g_array_index (envs, RawEnvelope, 0).flags, ==, 0x01);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);

    /* No negotiation → identity: no Connect-Content-Encoding, flag clear. */
    envs = stream_call (f, KV_PROCEDURE_WATCH, NULL, plain_env, &resp);
    g_assert_null (soup_message_headers_get_one (resp.headers, "Connect-Content-Encoding"));
    assert_header (resp.headers, "Connect-Accept-Encoding", "gzip");
    g_assert_cmpuint (g_array_index (envs, RawEnvelope, 0).flags, ==, 0x00);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }

  /* Compressed flag without an encoding → internal. */
  {
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_INTERNAL);
  }
  {
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                     "Connect-Content-Encoding: identity\r\n", env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_INTERNAL);
  }
  /* Unsupported stream encoding → unimplemented in an EndStream. */
  {
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                     "Connect-Content-Encoding: foo\r\n", env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
    g_assert_nonnull (strstr (rpc_error->message, "gzip"));
  }
  g_assert_cmpuint (f->n_calls, ==, 3);
  assert_server_alive (f);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/rpc/server/compression/unary", test_compression_unary);
  ADD ("/rpc/server/compression/stream", test_compression_stream);
#undef ADD

  return g_test_run ();
}
