/* test-rpc-server.c: CpRpcServer: routing, decision order and lifecycle
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the server does before and after a handler runs: method info, the
 * in-process exchange, unknown paths and methods, the protocol header, and
 * a call's lifecycle (disconnects cancel it, shutdown, memory trimming).
 *
 * A real CpRpcServer on 127.0.0.1:0 (the fixture of rpc-test-util.c) and a
 * raw HTTP/1.1 client (rpc-test-util.h) sending exact requests, so that
 * statuses, headers and bodies can be checked against
 * https://connectrpc.com/docs/protocol and docs/engine.md "Server checks".
 */
#include <connectplugin.h>

#include "cp-memory-private.h"
#include "cp-rpc-server-private.h"
#include "kv-test.h"
#include "rpc-test-util.h"

typedef struct {
  guint status;
  GByteArray *body;
  gboolean done;
} LocalResult;

static void
local_head (CpHttpExchange *exchange, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  LocalResult *r = user_data;
  r->status = status;
}

static void
local_chunk (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data)
{
  LocalResult *r = user_data;
  g_byte_array_append (r->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
}

static void
local_end (CpHttpExchange *exchange, gpointer user_data)
{
  LocalResult *r = user_data;
  r->done = TRUE;
}

/* The in-process transport runs the same engine. */
static void
test_local_exchange (Fixture *f, gconstpointer data)
{
  static const CpHttpLocalCallbacks callbacks = { local_head, local_chunk, local_end };
  g_autoptr(GBytes) body = get_request_proto ("local");
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(CpHttpExchange) exchange = NULL;
  g_autoptr(GBytes) response_body = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  LocalResult r = { 0, g_byte_array_new (), FALSE };

  soup_message_headers_replace (headers, "Content-Type", "application/proto");
  exchange = cp_http_exchange_new_local ("POST", KV_PROCEDURE_GET, headers, &callbacks, &r, NULL);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (f->server), exchange);
  /* Three pieces, delivered as three body chunks. */
  for (gsize pos = 0; pos < g_bytes_get_size (body); pos += 3)
    {
      g_autoptr(GBytes) piece = g_bytes_new_from_bytes (body, pos, MIN (3, g_bytes_get_size (body) - pos));
      cp_http_exchange_local_push_body (exchange, piece);
    }
  cp_http_exchange_local_end_body (exchange);
  while (!r.done)
    g_main_context_iteration (NULL, TRUE);

  g_assert_cmpuint (r.status, ==, 200);
  response_body = g_byte_array_free_to_bytes (r.body);
  response = decode_get_response (response_body, CP_CODEC_PROTO);
  assert_value (response, "value of local");
}

/* ------------------------------------------------------------------ */
/* Unexpected requests                                                  */

static void
test_unexpected (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("x");
  g_autoptr(GBytes) env = watch_request_envelope ("n:1");
  RawResponse resp;

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: image/jpeg\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/foo\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, NULL, body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/connect+proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);
  roundtrip (f, "POST", KV_PROCEDURE_WATCH, "Content-Type: application/proto\r\n", env, &resp);
  g_assert_cmpuint (resp.status, ==, 415);
  raw_response_clear (&resp);

  roundtrip (f, "DELETE", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  assert_header (resp.headers, "Allow", "GET, POST");
  raw_response_clear (&resp);
  roundtrip (f, "PUT", KV_PROCEDURE_WATCH, "Content-Type: application/connect+proto\r\n", env, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  assert_header (resp.headers, "Allow", "POST");
  raw_response_clear (&resp);
  roundtrip (f, "GET", KV_PROCEDURE_WATCH "?encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 405);
  raw_response_clear (&resp);

  roundtrip (f, "POST", "/kv.v1.KVService/Nope", "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);
  roundtrip (f, "POST", "/", "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);

  /* Protocol version 2: unary 400, stream 200 + EndStream. */
  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Protocol-Version: 2\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);
  {
    g_autoptr(GError) error = stream_call_error (f, KV_PROCEDURE_WATCH,
                                                 "Connect-Protocol-Version: 2\r\n", env);
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  }

  g_assert_cmpuint (f->n_calls, ==, 0);
  assert_server_alive (f);
}

static void
test_require_protocol_header (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = get_request_proto ("x");
  RawResponse resp;

  g_object_set (f->server, "require-connect-protocol-header", TRUE, NULL);

  roundtrip (f, "POST", KV_PROCEDURE_GET, "Content-Type: application/proto\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  assert_error_json (resp.body, CP_ERROR_INVALID_ARGUMENT, NULL);
  raw_response_clear (&resp);

  roundtrip (f, "POST", KV_PROCEDURE_GET,
             "Content-Type: application/proto\r\nConnect-Protocol-Version: 1\r\n", body, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);

  roundtrip (f, "GET", KV_PROCEDURE_GET "?encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 400);
  raw_response_clear (&resp);
  roundtrip (f, "GET", KV_PROCEDURE_GET "?connect=v1&encoding=json&message=%7B%7D", NULL, NULL, &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);
}


/* ------------------------------------------------------------------ */
/* Disconnects and back-pressure                                         */

static void
test_disconnect_cancels (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("forever");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };

  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  g_assert_true (raw_read_head (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  raw_response_clear (&resp);
  g_assert_nonnull (f->held);
  g_assert_false (f->held_cancelled);

  raw_conn_free (rc);
  while (!f->held_cancelled)
    g_main_context_iteration (NULL, TRUE);

  /* Sending into a dead call fails; answering is silently dropped. */
  {
    g_autoptr(KvWatchEvent) event = kv_test_watch_event (0, "late", NULL);
    g_autoptr(GError) error = NULL;
    g_assert_false (cp_invocation_send_message (f->held, CP_MESSAGE (event), &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_CANCELED);
    cp_invocation_return_ok (f->held);
  }
  g_clear_object (&f->held);
  assert_server_alive (f);
}



static gboolean
wake_up (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates until cp_memory_get_n_trims() differs from @before, at most
 * @seconds (a hang guard: the trim runs about 1 s after it is scheduled). */
static gboolean
wait_for_trim (guint before,
               guint seconds)
{
  gint64 give_up = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  guint id = g_timeout_add (100, wake_up, NULL);

  while (cp_memory_get_n_trims () == before && g_get_monotonic_time () < give_up)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (id);
  return cp_memory_get_n_trims () != before;
}

/* After a large request body, and after connections close, freed memory
 * goes back to the system (malloc_trim) once, on a low-priority timeout. */
static void
test_memory_trim (Fixture *f, gconstpointer data)
{
  g_autofree char *key = g_strnfill (2 * 1024 * 1024, 'k');
  g_autoptr(GBytes) big = get_request_proto (key);
  guint before;
  RawResponse resp;
  RawConn *rc;

  /* Let any trim pending from earlier tests run first. */
  wait_for_trim (cp_memory_get_n_trims (), 3);

  rc = raw_conn_new (f->url);
  before = cp_memory_get_n_trims ();

  /* A 2 MiB body schedules one, the connection still open. */
  {
    g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_GET,
                                               "Content-Type: application/proto\r\n", big);
    g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
    g_assert_true (raw_read_response (rc, &resp));
    g_assert_cmpuint (resp.status, ==, 200);
    raw_response_clear (&resp);
    g_assert_true (wait_for_trim (before, 20));
  }

  /* Closing a connection does too. */
  before = cp_memory_get_n_trims ();
  raw_conn_free (rc);
  g_assert_true (wait_for_trim (before, 20));
}

/* ------------------------------------------------------------------ */
/* Misc                                                                 */

static void
shutdown_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_rpc_server_shutdown_finish (CP_RPC_SERVER (source), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

static void
test_shutdown (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) env = watch_request_envelope ("forever");
  g_autoptr(GBytes) request = build_request ("POST", KV_PROCEDURE_WATCH,
                                             "Content-Type: application/connect+proto\r\n", env);
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp = { 0 };
  gboolean done = FALSE;

  g_assert_true (raw_send (rc, g_bytes_get_data (request, NULL), g_bytes_get_size (request)));
  g_assert_true (raw_read_head (rc, &resp));
  raw_response_clear (&resp);
  g_assert_nonnull (f->held);

  cp_rpc_server_shutdown_async (f->server, NULL, shutdown_cb, &done);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_false (done); /* the stream is still running */

  cp_invocation_return_ok (f->held);
  g_clear_object (&f->held);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  raw_conn_free (rc);
}


static void
test_method_info (void)
{
  g_autoptr(CpMethodInfo) info = cp_method_info_new ("/a.b.Svc/Do", CP_METHOD_SERVER_STREAMING,
                                                     KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);

  g_assert_cmpstr (cp_method_info_get_procedure (info), ==, "/a.b.Svc/Do");
  g_assert_cmpstr (cp_method_info_get_service_name (info), ==, "a.b.Svc");
  g_assert_cmpstr (cp_method_info_get_method_name (info), ==, "Do");
  g_assert_cmpint (cp_method_info_get_kind (info), ==, CP_METHOD_SERVER_STREAMING);
  g_assert_true (cp_method_info_get_input_type (info) == KV_TYPE_GET_REQUEST);
  g_assert_true (cp_method_info_get_output_type (info) == KV_TYPE_GET_RESPONSE);
  g_assert_cmpint (cp_method_info_get_idempotency (info), ==, CP_IDEMPOTENCY_UNKNOWN);
  cp_method_info_set_idempotency (info, CP_IDEMPOTENCY_IDEMPOTENT);
  g_assert_cmpint (cp_method_info_get_idempotency (info), ==, CP_IDEMPOTENCY_IDEMPOTENT);
  g_assert_true (G_TYPE_IS_BOXED (CP_TYPE_METHOD_INFO));
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  g_test_add_func ("/rpc/method-info/basic", test_method_info);
  ADD ("/rpc/server/local-exchange", test_local_exchange);
  ADD ("/rpc/server/unexpected", test_unexpected);
  ADD ("/rpc/server/require-protocol-header", test_require_protocol_header);
  ADD ("/rpc/server/memory-trim", test_memory_trim);
  ADD ("/rpc/server/disconnect-cancels", test_disconnect_cancels);
  ADD ("/rpc/server/shutdown", test_shutdown);
#undef ADD

  return g_test_run ();
}
