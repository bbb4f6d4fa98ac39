/* cp-http-response.c: the write side of a server connection
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The connection's write queue (GBytes of the handler, small pieces copied
 * into one tail buffer), flushing it with vectored non-blocking writes,
 * the response head (status line, the handler's headers, the framing
 * headers we add) and the exchange's response calls (respond, begin,
 * write, end) with their back-pressure. The state machine that decides
 * when to read and when to close is in cp-http-connection.c.
 */
#include "cp-http-connection-state-private.h"
#include "cp-http2-session-private.h"
#include "cp-http-syntax-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define COPY_MAX          (16 * 1024)   /* smaller response pieces are copied into the tail */
#define MAX_VECTORS       16
/* Stream writes made outside the connection's own processing (a producer's
 * callback) are coalesced: flushed at once only above this many queued
 * bytes, otherwise by the connection source in the next iteration. */
#define FLUSH_NOW         (32 * 1024)

/* ---- write queue ---- */

/* What recv () or sendmsg () on a plain connection's descriptor gave, in
 * the connection's terms: bytes moved (0 at EOF for a read), -1 when it
 * would block, -2 on error (@error set). GSocket's calls read the clock
 * twice each and make a GError for every "would block"; the socket is
 * non-blocking, as GSocket makes every socket. */
static gssize
socket_result (gssize       n,
               const char  *doing,
               GError     **error)
{
  int saved_errno = errno;

  if (n >= 0)
    return n;
  if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)
    return -1;
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "Error %s: %s", doing, g_strerror (saved_errno));
  return -2;
}

gssize
cp_http_conn_socket_recv (CpHttpConnection *conn,
                          void             *buf,
                          gsize             len,
                          GError          **error)
{
  gssize n;

  do
    n = recv (conn->fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  return socket_result (n, "receiving data", error);
}

gssize
cp_http_conn_socket_send (CpHttpConnection    *conn,
                          const GOutputVector *vectors,
                          guint                n_vectors,
                          GError             **error)
{
  struct iovec iov[n_vectors > 0 ? n_vectors : 1];
  struct msghdr msg = { 0 };
  gssize n;

  for (guint i = 0; i < n_vectors; i++)
    {
      iov[i].iov_base = (void *) vectors[i].buffer;
      iov[i].iov_len = vectors[i].size;
    }
  msg.msg_iov = iov;
  msg.msg_iovlen = n_vectors;
  do
    n = sendmsg (conn->fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return socket_result (n, "sending message", error);
}

void
cp_http_conn_queue_copy (CpHttpConnection *conn,
                         const void       *data,
                         gsize             len)
{
  g_byte_array_append (conn->wtail, data, len);
  conn->queued += len;
}

static void
queue_str (CpHttpConnection *conn,
           const char       *str)
{
  cp_http_conn_queue_copy (conn, str, strlen (str));
}

static void
queue_bytes (CpHttpConnection *conn,
             GBytes           *bytes)
{
  gsize size = g_bytes_get_size (bytes);

  if (size <= COPY_MAX)
    {
      cp_http_conn_queue_copy (conn, g_bytes_get_data (bytes, NULL), size);
      return;
    }
  if (conn->wtail->len > 0)
    {
      g_queue_push_tail (&conn->wq, g_bytes_new (conn->wtail->data, conn->wtail->len));
      g_byte_array_set_size (conn->wtail, 0);
    }
  g_queue_push_tail (&conn->wq, g_bytes_ref (bytes));
  conn->queued += size;
}

static void
queue_consume (CpHttpConnection *conn,
               gsize             n)
{
  conn->queued -= n;
  while (n > 0)
    {
      GBytes *head = g_queue_peek_head (&conn->wq);

      if (head != NULL)
        {
          gsize left = g_bytes_get_size (head) - conn->wq_offset;

          if (n < left)
            {
              conn->wq_offset += n;
              return;
            }
          n -= left;
          conn->wq_offset = 0;
          g_bytes_unref (g_queue_pop_head (&conn->wq));
          continue;
        }
      if (n >= conn->wtail->len)
        g_byte_array_set_size (conn->wtail, 0);
      else
        g_byte_array_remove_range (conn->wtail, 0, n);
      return;
    }
}

/* A write failed. Flushes happen inside the handler's own calls
 * (respond, write...), so the close (and the aborted callback) is left to
 * the connection's source rather than done here. */
static void
conn_fail_io (CpHttpConnection *conn,
              GError           *error)
{
  if (conn->io_error == NULL)
    conn->io_error = error;
  else
    g_error_free (error);
  conn->write_blocked = FALSE;
  cp_http_conn_schedule (conn);
}

/* Writes as much of the queue as the socket takes now. */
void
cp_http_conn_flush (CpHttpConnection *conn)
{
  conn->flush_pending = FALSE;
  while (conn->queued > 0 && !conn->write_blocked && conn->io_error == NULL &&
         (conn->state == CONN_OPEN))
    {
      GOutputVector vectors[MAX_VECTORS];
      guint n = 0;
      gsize written = 0;
      g_autoptr(GError) error = NULL;

      for (GList *l = conn->wq.head; l != NULL && n < MAX_VECTORS - 1; l = l->next)
        {
          gsize size;
          const guint8 *data = g_bytes_get_data (l->data, &size);
          gsize offset = (l == conn->wq.head) ? conn->wq_offset : 0;

          vectors[n].buffer = data + offset;
          vectors[n].size = size - offset;
          n++;
        }
      if (n < MAX_VECTORS && conn->wtail->len > 0 &&
          n == conn->wq.length)
        {
          vectors[n].buffer = conn->wtail->data;
          vectors[n].size = conn->wtail->len;
          n++;
        }

      if (conn->tls_out != NULL)
        {
          GPollableReturn ret =
            g_pollable_output_stream_writev_nonblocking (conn->tls_out, vectors, n,
                                                         &written, NULL, &error);
          if (ret == G_POLLABLE_RETURN_WOULD_BLOCK)
            {
              conn->write_blocked = TRUE;
              break;
            }
          if (ret == G_POLLABLE_RETURN_FAILED)
            {
              conn_fail_io (conn, g_steal_pointer (&error));
              return;
            }
        }
      else
        {
          gssize r = cp_http_conn_socket_send (conn, vectors, n, &error);

          if (r == -1)
            {
              conn->write_blocked = TRUE;
              break;
            }
          if (r < 0)
            {
              conn_fail_io (conn, g_steal_pointer (&error));
              return;
            }
          written = r;
        }
      queue_consume (conn, written);
    }

  if (conn->state != CONN_OPEN || conn->io_error != NULL)
    return;
  /* A flush started outside the connection's own event handling (an idle or
   * timer callback of a producer) must arm the write watch itself. */
  if (conn->write_blocked)
    cp_http_conn_update_io (conn);
  if (conn->h2 != NULL && conn->queued < CP_HTTP_LOW_WATER &&
      cp_http2_session_want_write (conn->h2))
    cp_http_conn_schedule (conn);      /* the session has more frames for us */
  if (conn->queued < CP_HTTP_LOW_WATER && conn->ex != NULL &&
      conn->ex->congestion_reported)
    {
      conn->writable_check = TRUE;
      cp_http_conn_schedule (conn);
    }
  if (conn->queued == 0 && conn->close_after_flush)
    cp_http_conn_start_linger (conn);
}

/* ---- responses ---- */

static gboolean
status_has_body (guint status)
{
  return !(status < 200 || status == SOUP_STATUS_NO_CONTENT || status == SOUP_STATUS_NOT_MODIFIED);
}

static const char *
status_phrase (guint status)
{
  if (status == STATUS_HEADER_FIELDS_TOO_LARGE)
    return "Request Header Fields Too Large";
  return soup_status_get_phrase (status);
}

static void
queue_status_line (CpHttpConnection *conn,
                   guint             status)
{
  char line[96];
  int len;

  if (status == 200)
    {
      cp_http_conn_queue_copy (conn, "HTTP/1.1 200 OK\r\n", 17);
      return;
    }
  len = g_snprintf (line, sizeof line, "HTTP/1.1 %u %s\r\n", status,
                    status_phrase (status));
  cp_http_conn_queue_copy (conn, line, MIN ((gsize) len, sizeof line - 1));
}

/* Sends a transport-generated error response and closes afterwards. */
void
cp_http_conn_fail (CpHttpConnection *conn,
                   guint             status)
{
  CpHttpExchange *ex = conn->ex;

  if (ex != NULL)
    {
      g_autoptr(GError) error =
        g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                     "Malformed request: %u %s", status, status_phrase (status));

      if (ex->response_started || ex->finished)
        {
          /* Too late for an error response on this connection. */
          cp_http_connection_close (conn, error);
          return;
        }
      cp_http_exchange_abort (ex, error);
    }
  if (conn->state != CONN_OPEN)
    return;
  queue_status_line (conn, status);
  queue_str (conn, "Connection: close\r\nContent-Length: 0\r\n\r\n");
  conn->close_after_flush = TRUE;
}

/* Content-Length, Transfer-Encoding, Connection, Keep-Alive: what
 * queue_head() writes itself. */
gboolean
cp_http_is_framing_header (const char *name)
{
  gsize len = strlen (name);

  switch (len)
    {
    case 10:
      return CP_HTTP_NAME_IS (name, len, "Connection") || CP_HTTP_NAME_IS (name, len, "Keep-Alive");
    case 14:
      return CP_HTTP_NAME_IS (name, len, "Content-Length");
    case 17:
      return CP_HTTP_NAME_IS (name, len, "Transfer-Encoding");
    default:
      return FALSE;
    }
}

/* A response head is written in pieces (a dozen for a small one): they are
 * gathered here and queued at once. */
typedef struct {
  CpHttpConnection *conn;
  gsize len;
  char buf[1024];
} HeadWriter;

static void
head_flush (HeadWriter *w)
{
  if (w->len > 0)
    cp_http_conn_queue_copy (w->conn, w->buf, w->len);
  w->len = 0;
}

static inline void
head_put (HeadWriter *w,
          const char *data,
          gsize       len)
{
  if (G_UNLIKELY (w->len + len > sizeof w->buf))
    {
      head_flush (w);
      if (len > sizeof w->buf)
        {
          cp_http_conn_queue_copy (w->conn, data, len);
          return;
        }
    }
  memcpy (w->buf + w->len, data, len);
  w->len += len;
}

#define HEAD_PUT_LITERAL(w, lit) head_put ((w), (lit), sizeof (lit) - 1)

static void
queue_head (CpHttpConnection   *conn,
            CpHttpExchange     *ex,
            guint               status,
            SoupMessageHeaders *headers,
            gint64              content_length)  /* -1: streamed */
{
  /* Decide now whether this connection ends with this response. Only a
   * client still waiting for 100 Continue loses the rest of its body; for
   * the other reasons (HTTP/1.0, Connection: close, stopping) a streaming
   * handler still reads the body to its end. */
  if (ex->expect_continue && !ex->handler_returned && conn->body != BODY_DONE)
    ex->close = ex->discard_body = TRUE;
  if (!ex->keep_alive || cp_http_server_is_stopping (conn->server) ||
      (content_length < 0 && ex->version == SOUP_HTTP_1_0) ||
      (conn->read_eof && conn->rend == conn->rstart))
    ex->close = TRUE;

  {
    HeadWriter w;

    w.conn = conn;
    w.len = 0;
    if (status == 200)
      HEAD_PUT_LITERAL (&w, "HTTP/1.1 200 OK\r\n");
    else
      queue_status_line (conn, status);   /* the writer is still empty */
    if (headers != NULL)
      {
        SoupMessageHeadersIter iter;
        const char *name, *value;

        soup_message_headers_iter_init (&iter, headers);
        while (soup_message_headers_iter_next (&iter, &name, &value))
          {
            if (cp_http_is_framing_header (name))
              continue;
            head_put (&w, name, strlen (name));
            HEAD_PUT_LITERAL (&w, ": ");
            head_put (&w, value, strlen (value));
            HEAD_PUT_LITERAL (&w, "\r\n");
          }
      }
    if (ex->close)
      HEAD_PUT_LITERAL (&w, "Connection: close\r\n");
    else if (ex->version == SOUP_HTTP_1_0)
      HEAD_PUT_LITERAL (&w, "Connection: keep-alive\r\n");

    if (!status_has_body (status))
      ;
    else if (content_length >= 0)
      {
        char digits[24];
        int i = sizeof digits;
        guint64 v = (guint64) content_length;

        do
          {
            digits[--i] = '0' + v % 10;
            v /= 10;
          }
        while (v > 0);
        HEAD_PUT_LITERAL (&w, "Content-Length: ");
        head_put (&w, digits + i, sizeof digits - i);
        HEAD_PUT_LITERAL (&w, "\r\n");
      }
    else if (ex->version != SOUP_HTTP_1_0)
      HEAD_PUT_LITERAL (&w, "Transfer-Encoding: chunked\r\n");
    HEAD_PUT_LITERAL (&w, "\r\n");
    head_flush (&w);
  }
}

/* The response is complete: decide what happens to the connection, and let
 * the process loop move on to the next request. */
void
cp_http_conn_exchange_finished (CpHttpConnection *conn,
                                CpHttpExchange   *ex)
{
  ex->finished = TRUE;
  cp_http_server_exchange_done (conn->server, ex);

  if (ex->close)
    conn->close_after_flush = TRUE;
  else if (conn->body != BODY_DONE)
    {
      /* Drain the rest of the body, unless it is known to be large, for
       * at most body-timeout-ms in all. */
      conn->discard = TRUE;
      if (conn->body == BODY_LENGTH && conn->body_remaining > DRAIN_CAP)
        conn->close_after_flush = TRUE;
      else
        cp_http_conn_set_deadline (conn, DEADLINE_DRAIN, cp_http_server_get_body_timeout_ms (conn->server));
    }

  if (!conn->in_process)
    cp_http_conn_flush (conn);
  cp_http_conn_schedule (conn);
}

void
cp_http_connection_respond (CpHttpConnection   *conn,
                            CpHttpExchange     *ex,
                            guint               status,
                            SoupMessageHeaders *headers,
                            GBytes             *body)
{
  gsize size = body != NULL ? g_bytes_get_size (body) : 0;

  if (conn->state != CONN_OPEN)
    return;
  queue_head (conn, ex, status, headers, size);
  if (size > 0 && !ex->head_request && status_has_body (status))
    queue_bytes (conn, body);
  cp_http_conn_exchange_finished (conn, ex);
}

void
cp_http_connection_begin_response (CpHttpConnection   *conn,
                                   CpHttpExchange     *ex,
                                   guint               status,
                                   SoupMessageHeaders *headers)
{
  if (conn->state != CONN_OPEN)
    return;
  queue_head (conn, ex, status, headers, -1);
  ex->response_has_body = !ex->head_request && status_has_body (status);
  /* Outside the process loop (a response that a callback, such as the
   * router's, produces): the head goes out at the next iteration, with
   * what is written meanwhile, or with the end of the response if it
   * comes first. */
  if (!conn->in_process)
    cp_http_conn_defer_flush (conn);
}

void
cp_http_connection_write (CpHttpConnection *conn,
                          CpHttpExchange   *ex,
                          GBytes           *chunk)
{
  if (conn->state != CONN_OPEN || !ex->response_has_body)
    return;
  if (ex->version != SOUP_HTTP_1_0)
    {
      static const char hex[] = "0123456789abcdef";
      char line[2 * sizeof (gsize) + 2];
      gsize size = g_bytes_get_size (chunk);
      gsize i = sizeof line - 2;

      line[sizeof line - 2] = '\r';
      line[sizeof line - 1] = '\n';
      do
        {
          line[--i] = hex[size & 0xf];
          size >>= 4;
        }
      while (size > 0);
      cp_http_conn_queue_copy (conn, line + i, sizeof line - i);
      queue_bytes (conn, chunk);
      cp_http_conn_queue_copy (conn, "\r\n", 2);
    }
  else
    queue_bytes (conn, chunk);
  if (conn->in_process)
    return;
  if (conn->queued >= FLUSH_NOW)
    cp_http_conn_flush (conn);
  else
    cp_http_conn_defer_flush (conn);
}

/* The last chunk and the trailer section (RFC 9112 7.1.2); names and
 * values that could break the framing are left out. */
static void
queue_trailer_section (CpHttpConnection   *conn,
                       SoupMessageHeaders *trailers)
{
  GString *out = g_string_new ("0\r\n");
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, trailers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      if (strpbrk (name, "\r\n: ") != NULL || strpbrk (value, "\r\n") != NULL ||
          cp_http_is_framing_header (name))
        continue;
      g_string_append_printf (out, "%s: %s\r\n", name, value);
    }
  g_string_append (out, "\r\n");
  cp_http_conn_queue_copy (conn, out->str, out->len);
  g_string_free (out, TRUE);
}

void
cp_http_connection_end_response (CpHttpConnection *conn,
                                 CpHttpExchange   *ex)
{
  if (conn->state != CONN_OPEN)
    return;
  if (ex->response_has_body && ex->version != SOUP_HTTP_1_0)
    {
      if (ex->response_trailers == NULL)
        cp_http_conn_queue_copy (conn, "0\r\n\r\n", 5);
      else
        queue_trailer_section (conn, ex->response_trailers);
    }
  cp_http_conn_exchange_finished (conn, ex);
}

gboolean
cp_http_connection_is_congested (CpHttpConnection *conn)
{
  return conn->state == CONN_OPEN && conn->queued > CP_HTTP_HIGH_WATER;
}

void
cp_http_connection_body_flow (CpHttpConnection *conn)
{
  if (conn->state != CONN_OPEN)
    return;
  cp_http_conn_schedule (conn);
}
