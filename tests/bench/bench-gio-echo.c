/* bench-gio-echo.c: the ceiling of our server design
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A minimal HTTP/1.1 keep-alive echo server written directly on GIO, the way
 * our server transport is built (docs/architecture.md, "The server transport"):
 * non-blocking GSockets polled by g_socket_create_source() on one
 * GMainContext, request heads parsed by soup_headers_parse_request() into a
 * reused SoupMessageHeaders, Content-Length bodies, every request answered
 * with 200 application/proto echoing its body. Pipelined requests are
 * answered in order, with one send() per batch.
 *
 *   bench-gio-echo [--listen 127.0.0.1:0] [--can-recurse]
 *
 * Prints the URL it serves ("http://127.0.0.1:PORT") as the first stdout
 * line; runs until SIGINT/SIGTERM.
 */
#include <gio/gio.h>
#include <glib-unix.h>
#include <libsoup/soup.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define READ_CHUNK     (16 * 1024)
#define MAX_HEAD_SIZE  (64 * 1024)
#define MAX_BODY_SIZE  (4 * 1024 * 1024)

typedef struct {
  GSocket            *socket;
  GSource            *source;      /* G_IO_IN while reading, G_IO_OUT while flushing */
  GByteArray         *in;
  gsize               in_off;      /* bytes of @in already consumed */
  GByteArray         *out;
  gsize               out_off;     /* bytes of @out already sent */
  SoupMessageHeaders *headers;     /* reused for every request head */
  gboolean            close_after; /* close once @out is flushed */
} Conn;

static GMainContext *main_context;
static gboolean can_recurse;

static void conn_watch (Conn *conn, GIOCondition condition);

static void
conn_free (Conn *conn)
{
  if (conn->source != NULL)
    {
      g_source_destroy (conn->source);
      g_source_unref (conn->source);
    }
  g_socket_close (conn->socket, NULL);
  g_object_unref (conn->socket);
  g_byte_array_unref (conn->in);
  g_byte_array_unref (conn->out);
  soup_message_headers_unref (conn->headers);
  g_free (conn);
}

static void
append_response (Conn         *conn,
                 guint         status,
                 const guint8 *body,
                 gsize         body_len)
{
  char head[160];
  int n;

  n = g_snprintf (head, sizeof head,
                  "HTTP/1.1 %u %s\r\n"
                  "Content-Type: application/proto\r\n"
                  "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                  "%s"
                  "\r\n",
                  status, soup_status_get_phrase (status), body_len,
                  conn->close_after ? "Connection: close\r\n" : "");
  g_byte_array_append (conn->out, (const guint8 *) head, n);
  if (body_len > 0)
    g_byte_array_append (conn->out, body, body_len);
}

/* Answers every complete request in the read buffer. Returns FALSE when the
 * connection must close once the output is flushed. */
static gboolean
process_input (Conn *conn)
{
  while (!conn->close_after)
    {
      const char *start = (const char *) conn->in->data + conn->in_off;
      gsize avail = conn->in->len - conn->in_off;
      const char *end;
      gsize head_len;
      goffset content_length;
      g_autofree char *method = NULL;
      g_autofree char *path = NULL;
      SoupHTTPVersion version;
      guint status;

      if (avail == 0)
        break;
      end = memmem (start, avail, "\r\n\r\n", 4);
      if (end == NULL)
        {
          if (avail > MAX_HEAD_SIZE)
            {
              conn->close_after = TRUE;
              append_response (conn, SOUP_STATUS_BAD_REQUEST, NULL, 0);
            }
          break;
        }
      head_len = (gsize) (end - start) + 4;

      soup_message_headers_clear (conn->headers);
      status = soup_headers_parse_request (start, (int) head_len, conn->headers,
                                           &method, &path, &version);
      if (status != SOUP_STATUS_OK)
        {
          conn->close_after = TRUE;
          append_response (conn, status, NULL, 0);
          break;
        }
      if (soup_message_headers_get_encoding (conn->headers) == SOUP_ENCODING_CHUNKED)
        {
          /* Not needed for the benchmark: the load generator sends lengths. */
          conn->close_after = TRUE;
          append_response (conn, SOUP_STATUS_LENGTH_REQUIRED, NULL, 0);
          break;
        }
      content_length = soup_message_headers_get_content_length (conn->headers);
      if (content_length < 0 || content_length > MAX_BODY_SIZE)
        {
          conn->close_after = TRUE;
          append_response (conn, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, 0);
          break;
        }
      if (avail - head_len < (gsize) content_length)
        break;  /* wait for the rest of the body */

      if (version == SOUP_HTTP_1_0 ||
          soup_message_headers_header_contains (conn->headers, "Connection", "close"))
        conn->close_after = TRUE;

      append_response (conn, SOUP_STATUS_OK,
                       (const guint8 *) start + head_len, (gsize) content_length);
      conn->in_off += head_len + (gsize) content_length;
    }

  /* Compact the read buffer. */
  if (conn->in_off == conn->in->len)
    {
      g_byte_array_set_size (conn->in, 0);
      conn->in_off = 0;
    }
  else if (conn->in_off > READ_CHUNK)
    {
      g_byte_array_remove_range (conn->in, 0, (guint) conn->in_off);
      conn->in_off = 0;
    }

  return !conn->close_after;
}

/* Sends what it can. Returns FALSE on a socket error. */
static gboolean
flush_output (Conn     *conn,
              gboolean *done)
{
  *done = TRUE;
  while (conn->out_off < conn->out->len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (conn->socket,
                                (const char *) conn->out->data + conn->out_off,
                                conn->out->len - conn->out_off, NULL, &error);
      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              *done = FALSE;
              return TRUE;
            }
          return FALSE;
        }
      conn->out_off += (gsize) n;
    }
  g_byte_array_set_size (conn->out, 0);
  conn->out_off = 0;
  return TRUE;
}

/* After input was processed: flush, then read on or wait for writability. */
static gboolean
conn_after_input (Conn *conn)
{
  gboolean done;

  if (!flush_output (conn, &done))
    {
      conn_free (conn);
      return G_SOURCE_REMOVE;
    }
  if (!done)
    {
      conn_watch (conn, G_IO_OUT);
      return G_SOURCE_REMOVE;
    }
  if (conn->close_after)
    {
      conn_free (conn);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_readable (GSocket      *socket,
             GIOCondition  condition,
             gpointer      user_data)
{
  Conn *conn = user_data;
  g_autoptr(GError) error = NULL;
  guint old_len = conn->in->len;
  gssize n;

  g_byte_array_set_size (conn->in, old_len + READ_CHUNK);
  n = g_socket_receive (socket, (char *) conn->in->data + old_len, READ_CHUNK, NULL, &error);
  if (n <= 0)
    {
      g_byte_array_set_size (conn->in, old_len);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        return G_SOURCE_CONTINUE;
      /* EOF or error: drop the connection. */
      g_clear_pointer (&conn->source, g_source_unref);
      conn_free (conn);
      return G_SOURCE_REMOVE;
    }
  g_byte_array_set_size (conn->in, old_len + (guint) n);

  process_input (conn);
  if (conn_after_input (conn) == G_SOURCE_REMOVE)
    return G_SOURCE_REMOVE;
  return G_SOURCE_CONTINUE;
}

static gboolean
on_writable (GSocket      *socket,
             GIOCondition  condition,
             gpointer      user_data)
{
  Conn *conn = user_data;
  gboolean done;

  if (!flush_output (conn, &done))
    {
      g_clear_pointer (&conn->source, g_source_unref);
      conn_free (conn);
      return G_SOURCE_REMOVE;
    }
  if (!done)
    return G_SOURCE_CONTINUE;
  if (conn->close_after)
    {
      g_clear_pointer (&conn->source, g_source_unref);
      conn_free (conn);
      return G_SOURCE_REMOVE;
    }

  /* Flushed: answer any pipelined requests already buffered, read on. */
  conn_watch (conn, G_IO_IN);
  process_input (conn);
  conn_after_input (conn);
  return G_SOURCE_REMOVE;
}

static void
conn_watch (Conn         *conn,
            GIOCondition  condition)
{
  if (conn->source != NULL)
    {
      g_source_destroy (conn->source);
      g_source_unref (conn->source);
    }
  conn->source = g_socket_create_source (conn->socket, condition, NULL);
  if (condition & G_IO_IN)
    g_source_set_callback (conn->source, G_SOURCE_FUNC (on_readable), conn, NULL);
  else
    g_source_set_callback (conn->source, G_SOURCE_FUNC (on_writable), conn, NULL);
  /* GLib 2.74 blocks a non-recursive source around its dispatch, removing
   * and re-adding its fds, and each of those wakes the context (an eventfd
   * write): two syscalls per dispatch that --can-recurse avoids. */
  if (can_recurse)
    g_source_set_can_recurse (conn->source, TRUE);
  g_source_attach (conn->source, main_context);
}

static gboolean
on_accept (GSocket      *listener,
           GIOCondition  condition,
           gpointer      user_data)
{
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      GSocket *socket = g_socket_accept (listener, NULL, &error);
      Conn *conn;

      if (socket == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            g_printerr ("accept: %s\n", error->message);
          return G_SOURCE_CONTINUE;
        }
      g_socket_set_blocking (socket, FALSE);
      g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);

      conn = g_new0 (Conn, 1);
      conn->socket = socket;
      conn->in = g_byte_array_sized_new (READ_CHUNK);
      conn->out = g_byte_array_sized_new (READ_CHUNK);
      conn->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
      conn_watch (conn, G_IO_IN);
    }
}

static GSocket *
listen_on (const char  *address,
           char       **url,
           GError     **error)
{
  g_autoptr(GSocketConnectable) connectable = NULL;
  g_autoptr(GSocketAddressEnumerator) enumerator = NULL;
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autofree char *host = NULL;

  connectable = g_network_address_parse (address, 0, error);
  if (connectable == NULL)
    return NULL;
  enumerator = g_socket_connectable_enumerate (connectable);
  addr = g_socket_address_enumerator_next (enumerator, NULL, error);
  if (addr == NULL)
    return NULL;

  socket = g_socket_new (g_socket_address_get_family (addr), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_listen_backlog (socket, 1024);
  if (!g_socket_bind (socket, addr, TRUE, error) || !g_socket_listen (socket, error))
    return NULL;

  bound = g_socket_get_local_address (socket, error);
  if (bound == NULL)
    return NULL;
  host = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (bound)));
  *url = g_strdup_printf (strchr (host, ':') ? "http://[%s]:%u" : "http://%s:%u", host,
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  return g_steal_pointer (&socket);
}

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *listen_address = NULL;
  g_autofree char *url = NULL;
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) listener = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GSource) accept_source = NULL;
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen_address, "Address to listen on", "HOST:PORT" },
    { "can-recurse", 0, 0, G_OPTION_ARG_NONE, &can_recurse,
      "Make connection sources recursive (no block/unblock wake-ups per dispatch)", NULL },
    { NULL }
  };

  options = g_option_context_new ("- HTTP/1.1 echo server on bare GIO sockets");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  signal (SIGPIPE, SIG_IGN);

  main_context = g_main_context_default ();
  listener = listen_on (listen_address ? listen_address : "127.0.0.1:0", &url, &error);
  if (listener == NULL)
    {
      g_printerr ("listen: %s\n", error->message);
      return 1;
    }

  loop = g_main_loop_new (main_context, FALSE);
  accept_source = g_socket_create_source (listener, G_IO_IN, NULL);
  g_source_set_callback (accept_source, G_SOURCE_FUNC (on_accept), NULL, NULL);
  g_source_attach (accept_source, main_context);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);

  printf ("%s\n", url);
  fflush (stdout);
  g_main_loop_run (loop);

  g_source_destroy (accept_source);
  return 0;
}
