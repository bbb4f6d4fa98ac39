/* test-rpc-server-limits.c: CpRpcServer: deadlines and receive limits
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connect-timeout-ms (visible to handlers, malformed, exceeded) and the
 * receive-size limits: declared, per envelope and after decompression.
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
/* Timeouts                                                             */

static void
test_timeout_visible (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("timeout");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 2000\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_cmpint (f->seen_timeout_ms, ==, 2000);
  g_assert_cmpint (f->seen_remaining_ms, >, 1500);
  g_assert_cmpint (f->seen_remaining_ms, <=, 2000);
  raw_response_clear (&resp);

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_cmpint (f->seen_timeout_ms, ==, -1);
  g_assert_cmpint (f->seen_remaining_ms, ==, -1);
  raw_response_clear (&resp);
}

static void
test_timeout_malformed (Fixture *f, gconstpointer data)
{
  const char *values[] = { "abc", "12345678901", "-5", "1.5" };
  g_autoptr(GBytes) body = get_request_proto ("x");
  g_autoptr(GBytes) env = watch_request_envelope ("n:1");

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *headers = g_strdup_printf ("Content-Type: application/proto\r\n"
                                                  "Connect-Timeout-Ms: %s\r\n", values[i]);
      g_autofree char *stream_headers = g_strdup_printf ("Connect-Timeout-Ms: %s\r\n", values[i]);
      g_autoptr(GError) error = NULL;
      RawResponse resp;

      roundtrip (f, "POST", KV_PROCEDURE_GET, headers, body, &resp);
      g_assert_cmpuint (resp.status, ==, 400);
      assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
      raw_response_clear (&resp);

      error = stream_call_error (f, KV_PROCEDURE_WATCH, stream_headers, env);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    }
  g_assert_cmpuint (f->n_calls, ==, 0);
}

static void
test_timeout_exceeded (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("slow");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 50\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 504);
  assert_error_json (resp.body, CP_ERROR_DEADLINE_EXCEEDED, NULL);
  raw_response_clear (&resp);
  g_assert_nonnull (f->held);
  g_assert_true (f->held_cancelled);
  /* The late answer is dropped silently (no critical). */
  {
    g_autoptr(KvGetResponse) late = kv_test_get_response (NULL, FALSE);
    cp_invocation_return_message (f->held, CP_MESSAGE (late));
  }
  g_clear_object (&f->held);

  /* 0 = already expired. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Timeout-Ms: 0\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 504);
  raw_response_clear (&resp);
  g_clear_object (&f->held);

  /* Server stream: EndStream deadline_exceeded after the first message. */
  {
    g_autoptr(GBytes) env = watch_request_envelope ("forever");
    GArray *envs = stream_call (f, KV_PROCEDURE_WATCH, "Connect-Timeout-Ms: 50\r\n", env, &resp);
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint (envs->len, ==, 2);
    error = parse_end_stream (g_array_index (envs, RawEnvelope, 1).payload, NULL);
    g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
    g_assert_true (f->held_cancelled);
    {
      g_autoptr(GError) send_error = NULL;
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (0, "late", NULL);
      g_assert_false (cp_invocation_send_message (f->held, CP_MESSAGE (event), &send_error));
      g_assert_error (send_error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
    }
    g_clear_object (&f->held);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}


/* ------------------------------------------------------------------ */
/* Message size limit                                                   */

static void
test_max_receive_size (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) small = get_request_proto ("k");
  const guint limit = 200;
  RawResponse resp;

  g_object_set (f->server, "max-receive-size", limit, NULL);

  /* Exactly at the limit: the key fills the message to `limit` bytes
   * (tag + 2-byte length + key). */
  {
    g_autofree char *key = g_strnfill (limit - 3, 'k');
    g_autoptr(GBytes) exact = get_request_proto (key);
    g_autoptr(GBytes) over = NULL;
    g_autofree char *over_key = g_strnfill (limit + 7, 'k');

    g_assert_cmpuint (g_bytes_get_size (exact), ==, limit);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", exact, &resp);
    g_assert_cmpuint (resp.status, ==, 200);
    raw_response_clear (&resp);

    over = get_request_proto (over_key);
    g_assert_cmpuint (g_bytes_get_size (over), ==, limit + 10);
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", over, &resp);
    g_assert_cmpuint (resp.status, ==, 429);
    assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, NULL);
    raw_response_clear (&resp);

    /* gzip bomb: small on the wire, large once inflated. */
    {
      g_autofree char *huge_key = g_strnfill (100000, 'b');
      g_autoptr(GBytes) huge = get_request_proto (huge_key);
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) bomb = cp_compress (CP_COMPRESSION_GZIP, huge, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (g_bytes_get_size (bomb), <, limit);
      roundtrip (f, "POST", KV_PROCEDURE_GET,
                 "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", bomb, &resp);
      g_assert_cmpuint (resp.status, ==, 429);
      raw_response_clear (&resp);

      /* Same bomb in a stream envelope. */
      {
        g_autoptr(GBytes) env = raw_envelope (0x01, g_bytes_get_data (bomb, NULL), g_bytes_get_size (bomb));
        g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                         "Connect-Content-Encoding: gzip\r\n", env);
        g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
      }
    }

    /* Server stream request over the limit. */
    {
      g_autofree char *big_prefix = g_strnfill (limit + 10, 'p');
      g_autoptr(GBytes) env = watch_request_envelope (big_prefix);
      g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, env);
      g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    }

    /* Client stream: messages at the limit pass; a later one over it fails. */
    {
      g_autofree char *at_key = g_strnfill (limit - 3, 'a');
      const char *ok_keys[] = { at_key, at_key, NULL };
      const char *bad_keys[] = { "a", over_key, "c", NULL };
      g_autoptr(GBytes) ok_body = put_envelopes (ok_keys);
      g_autoptr(GBytes) bad_body = put_envelopes (bad_keys);
      GArray *envs = stream_call (f, SUM_PROCEDURE, NULL, ok_body, &resp);
      g_autoptr(GError) rpc_error = NULL;

      g_assert_cmpuint (envs->len, ==, 2);
      raw_envelopes_free (envs);
      raw_response_clear (&resp);

      rpc_error = stream_call_error (f, SUM_PROCEDURE, NULL, bad_body);
      g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    }
  }

  /* First client-stream message over the limit: answered at once, before
   * the client has finished sending (the body is never completed here). */
  {
    g_autofree char *over_key = g_strnfill (limit + 7, 'k');
    const char *keys[] = { over_key, NULL };
    g_autoptr(GBytes) env = put_envelopes (keys);
    GString *req = g_string_new ("POST " SUM_PROCEDURE " HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Type: application/connect+proto\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n");
    RawConn *rc = raw_conn_new (f->url);
    GArray *envs;
    g_autoptr(GError) rpc_error = NULL;

    g_string_append_printf (req, "%zx\r\n", g_bytes_get_size (env));
    g_string_append_len (req, g_bytes_get_data (env, NULL), g_bytes_get_size (env));
    g_string_append (req, "\r\n");
    g_assert_true (raw_send (rc, req->str, req->len));
    g_string_free (req, TRUE);
    g_assert_true (raw_read_response (rc, &resp));
    g_assert_cmpuint (resp.status, ==, 200);
    envs = raw_parse_envelopes (resp.body);
    rpc_error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
    raw_envelopes_free (envs);
    raw_response_clear (&resp);
    raw_conn_free (rc);
  }

  /* The limit does not apply to responses. */
  {
    g_autoptr(GBytes) big = get_request_proto ("big:5000");
    g_autoptr(KvGetResponse) response = NULL;
    roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", big, &resp);
    g_assert_cmpuint (resp.status, ==, 200);
    raw_response_clear (&resp);
  }

  (void) small;
  assert_server_alive (f);
}

/* Reads until the server closes the connection; FALSE if it stalled. */
static gboolean
read_until_eof (RawConn *rc)
{
  while (raw_read_more (rc))
    ;
  return rc->eof;
}

/* The default limit is finite (4 MiB), and a unary body declared larger is
 * refused from its Content-Length alone, before any of it is read: the
 * answer comes although only a few bytes of the 5 GiB were sent, then the
 * connection closes instead of draining the rest. */
static void
test_receive_limit_declared (Fixture *f, gconstpointer data)
{
  guint limit = 0;
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;
  const char *request = "POST " KV_PROCEDURE_GET " HTTP/1.1\r\nHost: x\r\n"
                        "Content-Type: application/proto\r\n"
                        "Content-Length: 5368709120\r\n\r\n\x0a\x01k";

  g_object_get (f->server, "max-receive-size", &limit, NULL);
  g_assert_cmpuint (limit, ==, 4 * 1024 * 1024);

  g_assert_true (raw_send (rc, request, strlen (request)));
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 429);
  assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, NULL);
  g_assert_true (read_until_eof (rc));
  raw_response_clear (&resp);
  raw_conn_free (rc);

  /* Just over the limit, declared: the same. */
  {
    g_autofree char *head = g_strdup_printf ("POST " KV_PROCEDURE_GET " HTTP/1.1\r\nHost: x\r\n"
                                             "Content-Type: application/proto\r\n"
                                             "Content-Length: %u\r\n\r\n", limit + 1);
    rc = raw_conn_new (f->url);
    g_assert_true (raw_send (rc, head, strlen (head)));
    g_assert_true (raw_read_response (rc, &resp));
    g_assert_cmpuint (resp.status, ==, 429);
    g_assert_true (read_until_eof (rc));
    raw_response_clear (&resp);
    raw_conn_free (rc);
  }
  assert_server_alive (f);
}

/* A stream envelope announcing 2^32 - 1 bytes is refused from its prefix
 * under the default limit (nothing of it buffered). */
static void
test_receive_limit_envelope (Fixture *f, gconstpointer data)
{
  static const guint8 prefix[] = { 0x00, 0xff, 0xff, 0xff, 0xff, 'x' };
  GString *req = g_string_new ("POST " KV_PROCEDURE_WATCH " HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/connect+proto\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n");
  RawConn *rc = raw_conn_new (f->url);
  g_autoptr(GError) rpc_error = NULL;
  RawResponse resp;
  GArray *envs;

  g_string_append_printf (req, "%zx\r\n", sizeof prefix);
  g_string_append_len (req, (const char *) prefix, sizeof prefix);
  g_string_append (req, "\r\n");
  g_assert_true (raw_send (rc, req->str, req->len));
  g_string_free (req, TRUE);
  g_assert_true (raw_read_response (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  envs = raw_parse_envelopes (resp.body);
  rpc_error = parse_end_stream (g_array_index (envs, RawEnvelope, envs->len - 1).payload, NULL);
  g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  raw_envelopes_free (envs);
  raw_response_clear (&resp);
  raw_conn_free (rc);
  assert_server_alive (f);
}

/* Under the limit on the wire but ~30 times larger once decoded: 3-byte
 * unknown fields are refused by the pre-scan, before protobuf-c allocates
 * anything; a gzip bomb under the default limit is refused while it
 * inflates. */
static void
test_receive_limit_decoded (Fixture *f, gconstpointer data)
{
  const guint limit = 64 * 1024;
  GByteArray *wire = g_byte_array_new ();
  g_autoptr(GBytes) body = NULL;
  RawResponse resp;

  g_object_set (f->server, "max-receive-size", limit, NULL);
  while (wire->len + 3 <= limit)
    {
      static const guint8 field[] = { 0xc0, 0x3e, 0x01 }; /* field 1000 = 1 */
      g_byte_array_append (wire, field, sizeof field);
    }
  body = g_byte_array_free_to_bytes (wire);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 429);
  assert_error_json (resp.body, CP_ERROR_RESOURCE_EXHAUSTED, NULL);
  raw_response_clear (&resp);

  /* The same fields in a stream message. */
  {
    g_autoptr(GBytes) env = raw_envelope (0, g_bytes_get_data (body, NULL), g_bytes_get_size (body));
    g_autoptr(GError) rpc_error = stream_call_error (f, KV_PROCEDURE_WATCH, NULL, env);
    g_assert_error (rpc_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  }

  /* Default limit: a 64 MiB gzip bomb (64 KiB on the wire). */
  g_object_set (f->server, "max-receive-size", 4 * 1024 * 1024, NULL);
  {
    g_autofree char *huge_key = g_strnfill (64 * 1024 * 1024, 'b');
    g_autoptr(GBytes) huge = get_request_proto (huge_key);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bomb = cp_compress (CP_COMPRESSION_GZIP, huge, &error);

    g_assert_no_error (error);
    g_clear_pointer (&huge_key, g_free);
    roundtrip (f, "POST", KV_PROCEDURE_GET,
               "Content-Type: application/proto\r\nContent-Encoding: gzip\r\n", bomb, &resp);
    g_assert_cmpuint (resp.status, ==, 429);
    raw_response_clear (&resp);
  }
  assert_server_alive (f);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/rpc/server/timeout/visible", test_timeout_visible);
  ADD ("/rpc/server/timeout/malformed", test_timeout_malformed);
  ADD ("/rpc/server/timeout/exceeded", test_timeout_exceeded);
  ADD ("/rpc/server/max-receive-size", test_max_receive_size);
  ADD ("/rpc/server/receive-limit/declared", test_receive_limit_declared);
  ADD ("/rpc/server/receive-limit/envelope", test_receive_limit_envelope);
  ADD ("/rpc/server/receive-limit/decoded", test_receive_limit_decoded);
#undef ADD

  return g_test_run ();
}
