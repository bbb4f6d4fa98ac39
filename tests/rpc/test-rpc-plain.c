/* test-rpc-plain.c: plain HTTP paths served by CpRpcServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * cp_rpc_server_add_plain_handler() (cp-rpc-server-private.h), the hook
 * CpServer's /healthz and /readyz use: the handler gives a status and a
 * short text, the engine writes the answer over real sockets.
 */
#include <connectplugin.h>
#include <string.h>

#include "cp-rpc-server-private.h"
#include "rpc-test-util.h"

typedef struct {
  CpRpcServer *server;
  char *url;
  guint status;           /* what the handler answers */
  const char *text;
  guint n_calls;
  guint n_destroyed;
} PlainFixture;

static guint
plain_handler (CpRpcServer  *server,
               const char  **text,
               gpointer      user_data)
{
  PlainFixture *f = user_data;

  g_assert_true (server == f->server);
  f->n_calls++;
  *text = f->text;
  return f->status;
}

static void
count_destroy (gpointer user_data)
{
  PlainFixture *f = user_data;

  f->n_destroyed++;
}

static void
plain_fixture_setup (PlainFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->server = cp_rpc_server_new ();
  f->url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->status = SOUP_STATUS_OK;
  f->text = "fine";
  cp_rpc_server_add_plain_handler (f->server, "/probe", plain_handler, f, count_destroy);
}

static void
plain_fixture_teardown (PlainFixture *f, gconstpointer data)
{
  g_clear_object (&f->server);
  /* Disposing the server frees the handler's data. */
  g_assert_cmpuint (f->n_destroyed, ==, 1);
  g_free (f->url);
}

static void
request (RawConn *rc, const char *text, RawResponse *resp)
{
  g_assert_true (raw_send (rc, text, strlen (text)));
  g_assert_true (raw_read_response (rc, resp));
}

static void
assert_body (RawResponse *resp, const char *expected)
{
  gsize len;
  const char *body = g_bytes_get_data (resp->body, &len);

  g_assert_cmpmem (body, len, expected, strlen (expected));
}

/* Status and text from the handler, text/plain, never cached; any verb,
 * query ignored; the connection is kept. */
static void
test_plain_get (PlainFixture *f, gconstpointer data)
{
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;

  request (rc, "GET /probe HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (resp.headers, "Content-Type"), ==,
                   "text/plain; charset=utf-8");
  g_assert_cmpstr (soup_message_headers_get_one (resp.headers, "Cache-Control"), ==, "no-store");
  assert_body (&resp, "fine");
  raw_response_clear (&resp);

  f->status = SOUP_STATUS_SERVICE_UNAVAILABLE;
  f->text = "not ready";
  request (rc, "DELETE /probe?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
  g_assert_cmpuint (resp.status, ==, 503);
  assert_body (&resp, "not ready");
  raw_response_clear (&resp);

  /* A NULL text is an empty body. */
  f->text = NULL;
  request (rc, "GET /probe HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
  g_assert_cmpuint (resp.status, ==, 503);
  assert_body (&resp, "");
  raw_response_clear (&resp);

  g_assert_cmpuint (f->n_calls, ==, 3);
  raw_conn_free (rc);
}

/* HEAD: the head of the GET answer and no body bytes, so that the next
 * response on the connection parses from its first byte. */
static void
test_plain_head (PlainFixture *f, gconstpointer data)
{
  RawConn *rc = raw_conn_new (f->url);
  const char *head = "HEAD /probe HTTP/1.1\r\nHost: x\r\n\r\n";
  RawResponse resp;

  g_assert_true (raw_send (rc, head, strlen (head)));
  memset (&resp, 0, sizeof resp);
  g_assert_true (raw_read_head (rc, &resp));
  g_assert_cmpuint (resp.status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (resp.headers, "Content-Type"), ==,
                   "text/plain; charset=utf-8");
  raw_response_clear (&resp);

  request (rc, "GET /probe HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_body (&resp, "fine");
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

/* A request body is not read: the answer comes, then the connection closes
 * rather than being reused with unread bytes in it. */
static void
test_plain_unread_body (PlainFixture *f, gconstpointer data)
{
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;

  request (rc, "POST /probe HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_body (&resp, "fine");
  g_assert_true (soup_message_headers_header_contains (resp.headers, "Connection", "close"));
  while (raw_read_more (rc))
    ;
  g_assert_true (rc->eof);
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

static void
other_handler_destroy (gpointer user_data)
{
  (*(guint *) user_data)++;
}

static guint
other_handler (CpRpcServer  *server,
               const char  **text,
               gpointer      user_data)
{
  *text = "other";
  return SOUP_STATUS_ACCEPTED;
}

/* A second handler at a path replaces the first (whose data is freed);
 * other paths stay 404. */
static void
test_plain_replace (PlainFixture *f, gconstpointer data)
{
  RawConn *rc = raw_conn_new (f->url);
  RawResponse resp;
  guint n_other_destroyed = 0;

  request (rc, "GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
  g_assert_cmpuint (resp.status, ==, 404);
  raw_response_clear (&resp);

  cp_rpc_server_add_plain_handler (f->server, "/other", other_handler,
                                   &n_other_destroyed, other_handler_destroy);
  cp_rpc_server_add_plain_handler (f->server, "/other", plain_handler, f, NULL);
  g_assert_cmpuint (n_other_destroyed, ==, 1);
  request (rc, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", &resp);
  g_assert_cmpuint (resp.status, ==, 200);
  assert_body (&resp, "fine");
  raw_response_clear (&resp);
  raw_conn_free (rc);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) \
  g_test_add (path, PlainFixture, NULL, plain_fixture_setup, fn, plain_fixture_teardown)
  ADD ("/rpc/plain/get", test_plain_get);
  ADD ("/rpc/plain/head", test_plain_head);
  ADD ("/rpc/plain/unread-body", test_plain_unread_body);
  ADD ("/rpc/plain/replace", test_plain_replace);
#undef ADD

  return g_test_run ();
}
