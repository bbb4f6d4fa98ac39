/* test-upstream.c: the router's HTTP/1.1 client (CpUpstreamPool) and its parser
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The parser on each body form, split at every byte; the pool against a
 * scripted raw-socket server (a GSocketService in the test's context that
 * answers each request with the next canned response, counting
 * connections): keep-alive reuse, Connection: close, a provider that
 * closes an idle connection (the call goes out again on a fresh one),
 * refused connections, chunked request bodies, a malformed response.
 */
#include <gio/gio.h>
#include <string.h>

#include "cp-upstream-private.h"

/* ---- parser ---- */

typedef struct {
  guint status;
  GString *body;
  gboolean done;
  gboolean keep_alive;
  char *error;
} Parsed;

/* Feeds @text in pieces of @piece bytes, then EOF. */
static void
parse (const char *text,
       gsize       piece,
       Parsed     *out)
{
  CpUpstreamParser parser;
  GByteArray *buffer = g_byte_array_new ();
  gsize len = strlen (text), offset = 0;
  gboolean over = FALSE;

  memset (out, 0, sizeof *out);
  out->body = g_string_new (NULL);
  cp_upstream_parser_init (&parser, FALSE);
  while (!over)
    {
      gsize n = MIN (piece, len - offset);
      gboolean eof;

      g_byte_array_append (buffer, (const guint8 *) text + offset, n);
      offset += n;
      eof = offset == len;
      for (;;)
        {
          g_autoptr(GError) error = NULL;
          const guint8 *body;
          gsize consumed, body_len;
          CpUpstreamEvent event = cp_upstream_parser_feed (&parser, buffer->data, buffer->len, eof,
                                                           &consumed, &body, &body_len, &error);

          if (event == CP_UPSTREAM_DATA)
            g_string_append_len (out->body, (const char *) body, body_len);
          g_byte_array_remove_range (buffer, 0, consumed);
          if (event == CP_UPSTREAM_HEAD)
            {
              out->status = parser.status;
              out->keep_alive = parser.keep_alive;
            }
          else if (event == CP_UPSTREAM_DONE)
            {
              out->done = over = TRUE;
              break;
            }
          else if (event == CP_UPSTREAM_ERROR)
            {
              out->error = g_strdup (error->message);
              over = TRUE;
              break;
            }
          else if (event == CP_UPSTREAM_NEED_MORE && consumed == 0)
            break;
        }
      if (eof)
        break;
    }
  cp_upstream_parser_clear (&parser);
  g_byte_array_unref (buffer);
}

static void
parsed_clear (Parsed *p)
{
  g_string_free (p->body, TRUE);
  g_free (p->error);
}

static void
check_every_split (const char *text,
                   guint       status,
                   const char *body,
                   gboolean    keep_alive)
{
  for (gsize piece = 1; piece <= strlen (text); piece++)
    {
      Parsed p;

      parse (text, piece, &p);
      g_assert_null (p.error);
      g_assert_true (p.done);
      g_assert_cmpuint (p.status, ==, status);
      g_assert_cmpstr (p.body->str, ==, body);
      g_assert_cmpint (p.keep_alive, ==, keep_alive);
      parsed_clear (&p);
    }
}

static void
test_parser_forms (void)
{
  check_every_split ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", TRUE);
  check_every_split ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5;name=value\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\n",
                     200, "hello!", TRUE);
  check_every_split ("HTTP/1.0 200 OK\r\n\r\nuntil the end", 200, "until the end", FALSE);
  check_every_split ("HTTP/1.1 200 OK\r\n\r\nuntil the end", 200, "until the end", FALSE);
  check_every_split ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, "", TRUE);
  check_every_split ("HTTP/1.1 503 Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                     503, "", FALSE);
}

static void
check_error (const char *text,
             const char *message)
{
  Parsed p;

  parse (text, strlen (text), &p);
  if (p.error == NULL)
    g_error ("%s: expected an error \"%s\", parsed status %u body \"%s\"", text, message,
             p.status, p.body->str);
  g_assert_false (p.done);
  if (strstr (p.error, message) == NULL)
    g_error ("%s: expected \"%s\", got \"%s\"", text, message, p.error);
  parsed_clear (&p);
}

static void
test_parser_errors (void)
{
  check_error ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
               "both Content-Length and Transfer-Encoding");
  check_error ("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
               "invalid Content-Length");
  check_error ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length");
  check_error ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported Transfer-Encoding");
  check_error ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size");
  check_error ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
               "chunk size overflow");
  check_error ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", "malformed chunk end");
  check_error ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "in the middle of the response");
  check_error ("HTTP/1.1 200 OK\r\nContent", "without a response");
  check_error ("SSH-2.0-OpenSSH\r\n\r\n", "malformed response head");
  check_error ("HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols");
}

static void
test_parser_limits (void)
{
  g_autoptr(GString) big = g_string_new ("HTTP/1.1 200 OK\r\n");
  Parsed p;

  while (big->len < CP_UPSTREAM_MAX_HEAD + 10)
    g_string_append (big, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
  g_string_append (big, "\r\n");
  parse (big->str, 4096, &p);
  g_assert_nonnull (p.error);
  g_assert_nonnull (strstr (p.error, "head is too large"));
  parsed_clear (&p);

  g_string_assign (big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1");
  while (big->len < 4096)
    g_string_append_c (big, ' ');
  parse (big->str, 512, &p);
  g_assert_nonnull (p.error);
  g_assert_nonnull (strstr (p.error, "chunk size line too long"));
  parsed_clear (&p);
}

/* ---- pool against a scripted server ---- */

typedef struct {
  GSocketService *service;
  guint16 port;
  guint accepts;
  GPtrArray *responses;        /* char*: the answer to the n-th request */
  guint answered;
  gboolean close_after_answer; /* the server closes right after answering */
  GString *requests;           /* every request byte received */
  GPtrArray *conns;            /* GSocketConnection* open */
  guint live;                  /* ServerConn* whose read is pending */
  GCancellable *cancellable;
  const char *late;            /* written 20 ms after each answer */
} Server;

typedef struct {
  Server *server;
  GSocketConnection *conn;
  GString *pending;
  guint8 buf[4096];
} ServerConn;

static void server_read (ServerConn *sc);

static gboolean
write_late (gpointer data)
{
  ServerConn *sc = data;

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (sc->conn)),
                             sc->server->late, strlen (sc->server->late), NULL, NULL, NULL);
  return G_SOURCE_REMOVE;
}

/* A request is complete at its blank line when it has no body, or after
 * Content-Length bytes, or at the last chunk. Good enough for the tests. */
static gboolean
request_complete (GString *req, gsize *len)
{
  const char *end = strstr (req->str, "\r\n\r\n");
  const char *cl;

  if (end == NULL)
    return FALSE;
  end += 4;
  cl = g_strstr_len (req->str, end - req->str, "Content-Length: ");
  if (cl != NULL)
    {
      gsize n = g_ascii_strtoull (cl + 16, NULL, 10);

      if ((gsize) (req->str + req->len - end) < n)
        return FALSE;
      *len = end - req->str + n;
      return TRUE;
    }
  if (g_strstr_len (req->str, end - req->str, "chunked") != NULL)
    {
      const char *last = strstr (end, "0\r\n\r\n");

      if (last == NULL)
        return FALSE;
      *len = last + 5 - req->str;
      return TRUE;
    }
  *len = end - req->str;
  return TRUE;
}

static void
on_server_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ServerConn *sc = user_data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);
  gsize len;

  if (n <= 0)
    {
      sc->server->live--;
      g_ptr_array_remove (sc->server->conns, sc->conn);
      g_string_free (sc->pending, TRUE);
      g_free (sc);
      return;
    }
  g_string_append_len (sc->pending, (const char *) sc->buf, n);
  g_string_append_len (sc->server->requests, (const char *) sc->buf, n);
  while (request_complete (sc->pending, &len))
    {
      Server *s = sc->server;
      const char *answer = s->answered < s->responses->len
        ? g_ptr_array_index (s->responses, s->answered) : "HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n";

      s->answered++;
      g_string_erase (sc->pending, 0, len);
      g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (sc->conn)),
                                 answer, strlen (answer), NULL, NULL, NULL);
      if (s->late != NULL)
        g_timeout_add (20, write_late, sc);
      if (s->close_after_answer)
        {
          g_io_stream_close (G_IO_STREAM (sc->conn), NULL, NULL);
          break;
        }
    }
  server_read (sc);
}

static void
server_read (ServerConn *sc)
{
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (sc->conn)),
                             sc->buf, sizeof sc->buf, G_PRIORITY_DEFAULT,
                             sc->server->cancellable, on_server_read, sc);
}

static gboolean
on_incoming (GSocketService *service, GSocketConnection *conn, GObject *source, gpointer user_data)
{
  Server *s = user_data;
  ServerConn *sc = g_new0 (ServerConn, 1);

  s->accepts++;
  s->live++;
  sc->server = s;
  sc->conn = g_object_ref (conn);
  sc->pending = g_string_new (NULL);
  g_ptr_array_add (s->conns, conn);
  server_read (sc);
  return TRUE;
}

static Server *
server_new (void)
{
  Server *s = g_new0 (Server, 1);
  g_autoptr(GError) error = NULL;

  s->service = g_socket_service_new ();
  s->port = g_socket_listener_add_any_inet_port (G_SOCKET_LISTENER (s->service), NULL, &error);
  g_assert_no_error (error);
  s->responses = g_ptr_array_new_with_free_func (g_free);
  s->requests = g_string_new (NULL);
  s->conns = g_ptr_array_new_with_free_func (g_object_unref);
  s->cancellable = g_cancellable_new ();
  g_signal_connect (s->service, "incoming", G_CALLBACK (on_incoming), s);
  g_socket_service_start (s->service);
  return s;
}

/* Closes every open server-side connection (a provider dropping idle ones). */
static void
server_drop_connections (Server *s)
{
  for (guint i = 0; i < s->conns->len; i++)
    g_io_stream_close (g_ptr_array_index (s->conns, i), NULL, NULL);
}

static void
server_free (Server *s)
{
  g_socket_service_stop (s->service);
  g_socket_listener_close (G_SOCKET_LISTENER (s->service));
  server_drop_connections (s);
  /* Every pending read ends before @s goes. */
  g_cancellable_cancel (s->cancellable);
  while (s->live > 0)
    g_main_context_iteration (NULL, TRUE);
  g_object_unref (s->cancellable);
  g_object_unref (s->service);
  g_ptr_array_unref (s->responses);
  g_ptr_array_unref (s->conns);
  g_string_free (s->requests, TRUE);
  g_free (s);
}

typedef struct {
  guint status;
  GString *body;
  gboolean over;
  gboolean failed;
  gboolean started;
  char *error;
} Result;

static void
on_head (CpUpstreamCall *call, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  ((Result *) user_data)->status = status;
}

static void
on_data (CpUpstreamCall *call, GBytes *chunk, gpointer user_data)
{
  gsize len;
  const char *data = g_bytes_get_data (chunk, &len);

  g_string_append_len (((Result *) user_data)->body, data, len);
}

static void
on_done (CpUpstreamCall *call, gpointer user_data)
{
  ((Result *) user_data)->over = TRUE;
}

static void
on_failed (CpUpstreamCall *call, const GError *error, gboolean started, gpointer user_data)
{
  Result *r = user_data;

  r->over = r->failed = TRUE;
  r->started = started;
  r->error = g_strdup (error->message);
}

static const CpUpstreamCallbacks callbacks = { on_head, on_data, on_done, on_failed, NULL };

static gboolean
on_guard (gpointer user_data)
{
  g_error ("test-upstream: a call did not end within 10 s");
  return G_SOURCE_REMOVE;
}

/* Runs one call with @body (NULL: none; sent chunked when @chunked) and
 * waits for its end. */
static void
run_call (CpUpstreamPool *pool,
          guint16         port,
          const char     *body,
          gboolean        chunked,
          Result         *r)
{
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u", port);
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GError) error = NULL;
  gint64 length = body == NULL ? 0 : chunked ? -1 : (gint64) strlen (body);
  CpUpstreamCall *call;
  guint guard;

  memset (r, 0, sizeof *r);
  r->body = g_string_new (NULL);
  soup_message_headers_append (headers, "Content-Type", "application/proto");
  call = cp_upstream_call_start (pool, url, "POST", "/kv.v1.KVService/Get", headers, NULL, length,
                                 &callbacks, r, &error);
  g_assert_no_error (error);
  if (body != NULL)
    {
      /* Two pieces: the framing must hold across writes. */
      gsize half = strlen (body) / 2;
      g_autoptr(GBytes) a = g_bytes_new (body, half);
      g_autoptr(GBytes) b = g_bytes_new (body + half, strlen (body) - half);

      cp_upstream_call_write (call, a);
      cp_upstream_call_write (call, b);
      cp_upstream_call_end (call);
    }
  guard = g_timeout_add_seconds (10, on_guard, NULL);
  while (!r->over)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
}

static void
result_clear (Result *r)
{
  g_string_free (r->body, TRUE);
  g_free (r->error);
}

static void
test_pool_keep_alive (void)
{
  Server *s = server_new ();
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  Result r;

  for (int i = 0; i < 3; i++)
    g_ptr_array_add (s->responses, g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n#%d", i));
  for (int i = 0; i < 3; i++)
    {
      g_autofree char *expected = g_strdup_printf ("#%d", i);

      run_call (pool, s->port, "hello world", FALSE, &r);
      g_assert_false (r.failed);
      g_assert_cmpuint (r.status, ==, 200);
      g_assert_cmpstr (r.body->str, ==, expected);
      result_clear (&r);
    }
  /* One connection served the three calls. */
  g_assert_cmpuint (s->accepts, ==, 1);
  g_assert_nonnull (strstr (s->requests->str, "POST /kv.v1.KVService/Get HTTP/1.1\r\nHost: 127.0.0.1:"));
  g_assert_nonnull (strstr (s->requests->str, "Content-Length: 11\r\n\r\nhello world"));
  cp_upstream_pool_free (pool);
  server_free (s);
}

/* A callback that runs the pool's context itself (the router's callbacks
 * lead to an application's GTask callbacks, which may) while the rest of
 * the response arrives: the connection's source, which may recurse, is not
 * dispatched inside it, no callback is nested in another, the nested loop
 * does not spin on the readable socket, and the body comes after. */
typedef struct {
  Result r;
  gboolean in_head;
  guint iterations;
  guint nested_data;
} Nested;

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
on_head_nested (CpUpstreamCall *call, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  Nested *n = user_data;
  gboolean fired = FALSE;

  n->r.status = status;
  n->in_head = TRUE;
  g_timeout_add (100, set_flag, &fired);
  while (!fired)
    {
      g_main_context_iteration (NULL, TRUE);
      n->iterations++;
    }
  n->in_head = FALSE;
}

static void
on_data_nested (CpUpstreamCall *call, GBytes *chunk, gpointer user_data)
{
  Nested *n = user_data;

  if (n->in_head)
    n->nested_data++;
  on_data (call, chunk, &n->r);
}

static void
on_done_nested (CpUpstreamCall *call, gpointer user_data)
{
  on_done (call, &((Nested *) user_data)->r);
}

static void
on_failed_nested (CpUpstreamCall *call, const GError *error, gboolean started, gpointer user_data)
{
  on_failed (call, error, started, &((Nested *) user_data)->r);
}

static void
test_pool_nested_loop (void)
{
  static const CpUpstreamCallbacks nested_callbacks = {
    on_head_nested, on_data_nested, on_done_nested, on_failed_nested, NULL
  };
  Server *s = server_new ();
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u", s->port);
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GError) error = NULL;
  Nested n = { 0, };
  guint guard;

  g_ptr_array_add (s->responses, g_strdup ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"));
  s->late = "0123456789";
  n.r.body = g_string_new (NULL);
  g_assert_nonnull (cp_upstream_call_start (pool, url, "POST", "/kv.v1.KVService/Get", headers, NULL, 0,
                                            &nested_callbacks, &n, &error));
  g_assert_no_error (error);
  guard = g_timeout_add_seconds (10, on_guard, NULL);
  while (!n.r.over)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
  g_test_message ("nested loop: %u iterations in 100 ms", n.iterations);
  g_assert_false (n.r.failed);
  g_assert_cmpuint (n.r.status, ==, 200);
  g_assert_cmpstr (n.r.body->str, ==, "0123456789");
  g_assert_cmpuint (n.nested_data, ==, 0);
  g_assert_cmpuint (n.iterations, >=, 1);
  g_assert_cmpuint (n.iterations, <, 100);
  result_clear (&n.r);
  cp_upstream_pool_free (pool);
  server_free (s);
}

/* An IPv6 literal provider URL: connected to, and named in brackets in
 * the Host header. */
static void
test_pool_ipv6_host (void)
{
  Server *s = server_new ();
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  g_autofree char *url = g_strdup_printf ("http://[::1]:%u", s->port);
  g_autofree char *host = g_strdup_printf ("\r\nHost: [::1]:%u\r\n", s->port);
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GSocket) probe = g_socket_new (G_SOCKET_FAMILY_IPV6, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GError) error = NULL;
  Result r = { 0, };
  guint guard;

  if (probe == NULL)
    {
      g_test_skip ("no IPv6 on this machine");
      cp_upstream_pool_free (pool);
      server_free (s);
      return;
    }
  g_ptr_array_add (s->responses, g_strdup ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6"));
  r.body = g_string_new (NULL);
  g_assert_nonnull (cp_upstream_call_start (pool, url, "POST", "/x", headers, NULL, 0,
                                            &callbacks, &r, &error));
  g_assert_no_error (error);
  guard = g_timeout_add_seconds (10, on_guard, NULL);
  while (!r.over)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
  if (r.failed)
    g_test_skip (r.error);   /* ::1 not reachable here */
  else
    {
      g_assert_cmpstr (r.body->str, ==, "v6");
      g_assert_nonnull (strstr (s->requests->str, host));
    }
  result_clear (&r);
  cp_upstream_pool_free (pool);
  server_free (s);
}

static void
test_pool_chunked_request (void)
{
  Server *s = server_new ();
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  Result r;

  g_ptr_array_add (s->responses, g_strdup ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  run_call (pool, s->port, "streamed", TRUE, &r);
  g_assert_false (r.failed);
  g_assert_cmpstr (r.body->str, ==, "abc");
  g_assert_nonnull (strstr (s->requests->str, "Transfer-Encoding: chunked\r\n\r\n4\r\nstre\r\n4\r\named\r\n0\r\n\r\n"));
  result_clear (&r);
  cp_upstream_pool_free (pool);
  server_free (s);
}

/* Connection: close, and a server that closes after each answer: every
 * call gets a connection of its own and succeeds. */
static void
test_pool_connection_close (void)
{
  Server *s = server_new ();
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  Result r;

  s->close_after_answer = TRUE;
  for (int i = 0; i < 3; i++)
    g_ptr_array_add (s->responses, g_strdup ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"));
  for (int i = 0; i < 3; i++)
    {
      run_call (pool, s->port, "x", FALSE, &r);
      g_assert_false (r.failed);
      g_assert_cmpstr (r.body->str, ==, "ok");
      result_clear (&r);
    }
  g_assert_cmpuint (s->accepts, ==, 3);
  cp_upstream_pool_free (pool);
  server_free (s);
}

/* The provider drops its idle connection without saying so (no
 * Connection: close): the next call goes out again on a new one. */
static void
test_pool_stale_connection (void)
{
  Server *s = server_new ();
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  Result r;

  for (int i = 0; i < 2; i++)
    g_ptr_array_add (s->responses, g_strdup ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  run_call (pool, s->port, "one", FALSE, &r);
  g_assert_false (r.failed);
  result_clear (&r);
  /* Close the server side, and do not let the pool notice before the
   * next call starts (no main loop iteration in between). */
  server_drop_connections (s);
  run_call (pool, s->port, "two", FALSE, &r);
  g_assert_cmpstr (r.error, ==, NULL);
  g_assert_cmpstr (r.body->str, ==, "ok");
  result_clear (&r);
  g_assert_cmpuint (s->accepts, ==, 2);
  cp_upstream_pool_free (pool);
  server_free (s);
}

static void
test_pool_refused (void)
{
  Server *s = server_new ();
  guint16 port = s->port;
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  Result r;

  server_free (s);       /* nothing listens there any more */
  run_call (pool, port, "x", FALSE, &r);
  g_assert_true (r.failed);
  g_assert_false (r.started);
  result_clear (&r);
  cp_upstream_pool_free (pool);
}

static void
test_pool_malformed (void)
{
  Server *s = server_new ();
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  Result r;

  g_ptr_array_add (s->responses, g_strdup ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"));
  g_ptr_array_add (s->responses, g_strdup ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  run_call (pool, s->port, "x", FALSE, &r);
  g_assert_true (r.failed);
  g_assert_nonnull (strstr (r.error, "both Content-Length and Transfer-Encoding"));
  result_clear (&r);
  /* That connection is not reused: the next call opens another. */
  run_call (pool, s->port, "x", FALSE, &r);
  g_assert_false (r.failed);
  result_clear (&r);
  g_assert_cmpuint (s->accepts, ==, 2);
  cp_upstream_pool_free (pool);
  server_free (s);
}

static void
test_pool_bad_url (void)
{
  CpUpstreamPool *pool = cp_upstream_pool_new ();
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  const char *const urls[] = { "unix:/tmp/x.sock", "ftp://127.0.0.1:1", "http://", "not a url" };

  for (gsize i = 0; i < G_N_ELEMENTS (urls); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_null (cp_upstream_call_start (pool, urls[i], "POST", "/x", headers, NULL, 0,
                                             &callbacks, NULL, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    }
  cp_upstream_pool_free (pool);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/host/upstream/parser/forms", test_parser_forms);
  g_test_add_func ("/host/upstream/parser/errors", test_parser_errors);
  g_test_add_func ("/host/upstream/parser/limits", test_parser_limits);
  g_test_add_func ("/host/upstream/pool/keep-alive", test_pool_keep_alive);
  g_test_add_func ("/host/upstream/pool/chunked-request", test_pool_chunked_request);
  g_test_add_func ("/host/upstream/pool/connection-close", test_pool_connection_close);
  g_test_add_func ("/host/upstream/pool/stale-connection", test_pool_stale_connection);
  g_test_add_func ("/host/upstream/pool/refused", test_pool_refused);
  g_test_add_func ("/host/upstream/pool/malformed", test_pool_malformed);
  g_test_add_func ("/host/upstream/pool/bad-url", test_pool_bad_url);
  g_test_add_func ("/host/upstream/pool/nested-loop", test_pool_nested_loop);
  g_test_add_func ("/host/upstream/pool/ipv6-host", test_pool_ipv6_host);
  return g_test_run ();
}
