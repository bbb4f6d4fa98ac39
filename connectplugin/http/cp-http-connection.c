/* cp-http-connection.c: one HTTP/1.1 server connection on a non-blocking socket
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A connection owns a read buffer, a write queue and at most one current
 * exchange. Requests are dispatched strictly one after the other: bytes of
 * pipelined requests wait in the read buffer (read-ahead is bounded) until
 * the current response is finished and its request body consumed.
 *
 * Plain sockets are driven by one custom GSource per connection that polls
 * the fd (g_source_add_unix_fd, interest changed in place with
 * g_source_modify_unix_fd) and carries the connection's single deadline
 * (head / body / drain / idle / linger timeouts) as its ready time; no source is created
 * per request. That ready time (conn->ready_time: -1 never, 0 now, else a
 * monotonic deadline) is read by the source's prepare and check functions
 * rather than set with g_source_set_ready_time(), which in GLib 2.74 signals
 * the context's wakeup fd on every change: two system calls and an extra
 * loop iteration per request on a routed call. Connections are only touched
 * from their context's thread (docs/architecture.md), which runs prepare
 * again before it polls, so nothing needs waking. For the same reason the
 * source can recurse: GLib 2.74 blocks a non-recursive source around each
 * dispatch by removing and re-adding its fds, and each of those signals the
 * wakeup fd too. The connection blocks itself instead, and only when a
 * main loop run inside its own dispatch (a handler iterating the server's
 * context) dispatches it again: it then drops its fd interest until the
 * outer dispatch returns. TLS connections use that source for the deadline only, and
 * GPollable sources of the GTlsConnection's streams for I/O.
 *
 * Request heads are checked against RFC 9112's grammar (cp-http-syntax.c:
 * libsoup's parser skips malformed lines), then parsed by
 * soup_headers_parse_request(); framing rules (Content-Length /
 * Transfer-Encoding, smuggling) and chunk lines are checked there too.
 *
 * The write side (write queue, flushing, response heads, the exchange's
 * response calls) is in cp-http-response.c; the struct both files share is
 * in cp-http-connection-state-private.h. The state machine itself stays in
 * this file: reading, deadlines and the request/response cycle act on the
 * same few fields and must see each other's changes at once.
 *
 * States (conn->state):
 *   CONN_HANDSHAKING  TLS only, from cp_http_connection_new() until
 *                     handshake_done(); deadline HEAD, in the waiting queue.
 *   CONN_OPEN         requests are read and answered, one at a time.
 *   CONN_LINGER       the last response is out and the write side shut
 *                     (cp_http_conn_start_linger(), reached when
 *                     close_after_flush is set and the queue has drained):
 *                     input is read and dropped until EOF, LINGER_CAP bytes
 *                     or LINGER_US.
 *   CONN_CLOSED       cp_http_connection_close(): socket closed, source
 *                     destroyed; the struct lives on until its last ref.
 *   HANDSHAKING → OPEN (handshake done) → LINGER → CLOSED; any state →
 *   CLOSED on an I/O error, a deadline, a protocol error without a
 *   response to send, or the server closing.
 *
 * Within CONN_OPEN, the request cycle (conn_process()):
 *   ex == NULL        between requests: conn_parse_head() scans the buffer
 *                     (scan_pos / scan_lines resume the scan); deadline IDLE
 *                     when nothing is buffered, HEAD once bytes arrived.
 *   ex != NULL        a request is current; body (BodyState) walks NONE or
 *                     LENGTH, or CHUNK_SIZE → CHUNK_DATA → CHUNK_DATA_END
 *                     (→ CHUNK_SIZE ...) → TRAILERS, then DONE; deadline
 *                     BODY while the body is read. The response may finish
 *                     first (cp_http_conn_exchange_finished()): the rest of the
 *                     body is then drained (discard, drained, deadline
 *                     DRAIN) or, when large, the connection closed
 *                     (close_after_flush). When both sides are done,
 *                     conn_release_exchange() keeps the exchange as spare
 *                     and the cycle starts over.
 *
 * Flags and what sets/clears them:
 *   in_process        conn_process() is running (no re-entry: a nested
 *                     call sets pending_process instead).
 *   pending_process   more to process: set by cp_http_conn_schedule() (from the
 *                     handler's calls) and nested conn_process() calls;
 *                     cleared at each pass of conn_process(); the
 *                     connection source runs conn_process() when set.
 *   close_after_flush no further request: close (linger) once the write
 *                     queue is empty. Set (mostly through ex->close, at the
 *                     response head) by Connection: close, HTTP/1.0
 *                     without keep-alive, errors answered with a status,
 *                     cp_http_exchange_set_close(), EOF between requests.
 *   read_eof          the client shut its write side (never cleared).
 *   write_blocked     the socket took less than offered: wait for
 *                     G_IO_OUT (cleared when writable or on an I/O error).
 *   flush_pending     producer writes coalesced
 *                     (cp_http_conn_defer_flush()): the source flushes in
 *                     the next iteration.
 *   writable_check    the queue fell below CP_HTTP_LOW_WATER after the
 *                     exchange reported congestion: the source calls the
 *                     writable callback (not from inside a flush).
 *   io_error          a write failed inside a handler's call: the source
 *                     closes the connection with it.
 *   waiting           in the server's waiting queue (waiting_link): the
 *                     connection waits on its client (handshake, head,
 *                     body, idle, linger) and may be evicted at the
 *                     connection cap (conn_update_waiting()).
 *   discard           drain the request body instead of delivering it.
 * The source's ready time is the deadline (deadline_kind/deadline), or 0
 * (dispatch now) when pending_process or flush_pending is set.
 */
#include "cp-http-connection-private.h"
#include "cp-http-syntax-private.h"
#include "cp-http-connection-state-private.h"
#include "cp-http2-session-private.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#define READ_CHUNK        (16 * 1024)   /* initial read buffer */
#define READ_AHEAD        (64 * 1024)   /* buffered bytes of later requests */
#define LINGER_US         (1 * G_USEC_PER_SEC)
#define LINGER_CAP        (256 * 1024)

static void conn_process      (CpHttpConnection *conn);
static void conn_handle       (CpHttpConnection *conn, GIOCondition revents);

static CpHttpConnection *
conn_ref (CpHttpConnection *conn)
{
  conn->ref_count++;
  return conn;
}

static void
conn_free_buffers (CpHttpConnection *conn)
{
  g_clear_pointer (&conn->rbuf, g_free);
  conn->rsize = conn->rstart = conn->rend = 0;
  g_queue_clear_full (&conn->wq, (GDestroyNotify) g_bytes_unref);
  conn->wq_offset = 0;
  if (conn->wtail != NULL)
    g_byte_array_set_size (conn->wtail, 0);
  conn->queued = 0;
}

void
cp_http_connection_unref (CpHttpConnection *conn)
{
  if (--conn->ref_count > 0)
    return;

  g_assert (conn->state == CONN_CLOSED);
  g_clear_pointer (&conn->h2, cp_http2_session_free);
  conn_free_buffers (conn);
  g_clear_pointer (&conn->wtail, g_byte_array_unref);
  if (conn->ex != NULL)
    {
      conn->ex->conn = NULL;
      g_clear_pointer (&conn->ex, cp_http_exchange_unref);
    }
  g_clear_pointer (&conn->spare, cp_http_exchange_unref);
  g_clear_object (&conn->remote);
  g_clear_object (&conn->tls);
  g_clear_object (&conn->cancellable);
  g_clear_object (&conn->socket);
  g_clear_error (&conn->io_error);
  g_main_context_unref (conn->context);
  g_free (conn);
}

/* ---- the connection source ---- */

static gboolean
conn_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  CpHttpConnection *conn = ((ConnSource *) source)->conn;
  GIOCondition revents = 0;

  if (conn->dispatching)
    {
      conn->reentered = TRUE;
      if (conn->fd_tag != NULL && conn->fd_events != 0)
        {
          g_source_modify_unix_fd (source, conn->fd_tag, 0);
          conn->fd_events = 0;
        }
      return G_SOURCE_CONTINUE;
    }
  if (conn->fd_tag != NULL)
    revents = g_source_query_unix_fd (source, conn->fd_tag);
  conn_ref (conn);
  conn->dispatching = TRUE;
  conn_handle (conn, revents);
  conn->dispatching = FALSE;
  if (conn->reentered)
    {
      conn->reentered = FALSE;
      if (conn->state != CONN_CLOSED)
        cp_http_conn_update_io (conn);    /* takes its fd interest back */
    }
  cp_http_connection_unref (conn);
  return G_SOURCE_CONTINUE;
}

static gboolean
conn_source_prepare (GSource *source,
                     int     *timeout)
{
  CpHttpConnection *conn = ((ConnSource *) source)->conn;
  gint64 now;

  if (conn->ready_time < 0 || conn->dispatching)
    {
      *timeout = -1;
      return FALSE;
    }
  now = conn->ready_time == 0 ? 0 : g_source_get_time (source);
  if (conn->ready_time <= now)
    {
      *timeout = 0;
      return TRUE;
    }
  /* Rounded up: waking before the deadline would only poll again. */
  *timeout = (int) MIN ((conn->ready_time - now + 999) / 1000, G_MAXINT);
  return FALSE;
}

static gboolean
conn_source_check (GSource *source)
{
  CpHttpConnection *conn = ((ConnSource *) source)->conn;

  if (conn->ready_time < 0 || conn->dispatching)
    return FALSE;
  return conn->ready_time == 0 || conn->ready_time <= g_source_get_time (source);
}

static GSourceFuncs conn_source_funcs = {
  conn_source_prepare, conn_source_check, conn_source_dispatch, NULL, NULL, NULL,
};

void
cp_http_conn_schedule (CpHttpConnection *conn)
{
  conn->pending_process = TRUE;
  if (!conn->in_process && conn->state != CONN_CLOSED)
    conn->ready_time = 0;     /* read by conn_source_prepare() */
}

void
cp_http_conn_set_deadline (CpHttpConnection *conn,
                           DeadlineKind      kind,
                           guint             timeout_ms)
{
  conn->deadline_kind = kind;
  conn->deadline = kind == DEADLINE_NONE ? -1 :
                   g_get_monotonic_time () + (gint64) timeout_ms * 1000;
}

/* Flushes from the connection source in the next iteration, so that the
 * writes of several producer callbacks go out in one system call. */
void
cp_http_conn_defer_flush (CpHttpConnection *conn)
{
  conn->flush_pending = TRUE;
  if (conn->source != NULL)
    conn->ready_time = 0;
}

/* ---- closing ---- */

void
cp_http_connection_close (CpHttpConnection *conn,
                          const GError     *error)
{
  CpHttpExchange *ex;

  if (conn->state == CONN_CLOSED)
    return;

  conn_ref (conn);
  conn->state = CONN_CLOSED;

  if (conn->h2 != NULL)
    {
      g_autoptr(GError) local_error = NULL;

      if (error == NULL)
        error = local_error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                   "Connection closed");
      cp_http2_session_abort_all (conn->h2, error);
    }
  ex = conn->ex;
  if (ex != NULL && !ex->finished && !ex->aborted)
    {
      g_autoptr(GError) local_error = NULL;

      if (error == NULL)
        error = local_error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                                   "Connection closed");
      cp_http_exchange_abort (ex, error);
    }
  if (conn->ex != NULL)
    {
      conn->ex->conn = NULL;
      /* breaks handler <-> exchange reference cycles of a finished exchange */
      cp_http_exchange_clear_callbacks (conn->ex);
    }

  if (conn->cancellable != NULL)
    g_cancellable_cancel (conn->cancellable);
  if (conn->tls_in_source != NULL)
    {
      g_source_destroy (conn->tls_in_source);
      g_clear_pointer (&conn->tls_in_source, g_source_unref);
    }
  if (conn->tls_out_source != NULL)
    {
      g_source_destroy (conn->tls_out_source);
      g_clear_pointer (&conn->tls_out_source, g_source_unref);
    }
  if (conn->source != NULL)
    {
      g_source_destroy (conn->source);
      g_clear_pointer (&conn->source, g_source_unref);
    }
  conn->fd_tag = NULL;
  if (conn->waiting)
    {
      cp_http_server_remove_waiting (conn->server, &conn->waiting_link);
      conn->waiting = FALSE;
    }
  /* No TLS close_notify: it could block; the peer sees a plain close. */
  g_socket_close (conn->socket, NULL);
  conn->fd = -1;      /* the number may be reused at once: EBADF, never another socket */
  conn_free_buffers (conn);

  cp_http_server_connection_closed (conn->server, conn);
  cp_http_connection_unref (conn);
}

static void
conn_close_io_error (CpHttpConnection *conn,
                     GError           *error)
{
  cp_http_connection_close (conn, error);
}

gboolean
cp_http_connection_is_idle (CpHttpConnection *conn)
{
  if (conn->h2 != NULL)
    return conn->state == CONN_OPEN && cp_http2_session_is_idle (conn->h2) && conn->queued == 0;
  return conn->state == CONN_OPEN && conn->ex == NULL && conn->queued == 0;
}

/* Graceful shutdown of a busy connection: HTTP/2 says GOAWAY now (HTTP/1.1
 * closes after the current response). */
void
cp_http_connection_stop (CpHttpConnection *conn)
{
  if (conn->state == CONN_OPEN && conn->h2 != NULL)
    cp_http2_session_shutdown (conn->h2);
}

GSocketAddress *
cp_http_connection_get_remote_address (CpHttpConnection *conn)
{
  if (conn->remote == NULL && conn->socket != NULL && conn->state != CONN_CLOSED)
    conn->remote = g_socket_get_remote_address (conn->socket, NULL);
  return conn->remote;
}

GTlsCertificate *
cp_http_connection_get_peer_certificate (CpHttpConnection *conn)
{
  if (conn->tls == NULL || conn->tls_in == NULL)
    return NULL;
  return g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (conn->tls));
}

/* The response is out and the connection ends: rather than close at once,
 * which makes the kernel answer a client still sending (a request body we
 * did not read) with a reset that can destroy the response before the
 * client reads it, shut our write side and read and discard until EOF, a
 * byte cap or a timeout. Over TLS the discarded bytes go through the TLS
 * input stream (records must be decrypted to find the end); the write side
 * is shut on the socket, without a close_notify (sending one could block):
 * the client sees an unclean EOF after a response whose framing already
 * said where it ends. */
void
cp_http_conn_start_linger (CpHttpConnection *conn)
{
  if (conn->read_eof ||
      !g_socket_shutdown (conn->socket, FALSE, TRUE, NULL))
    {
      cp_http_connection_close (conn, NULL);
      return;
    }
  conn->state = CONN_LINGER;
  conn->lingered = 0;
  conn->deadline_kind = DEADLINE_LINGER;
  conn->deadline = g_get_monotonic_time () + LINGER_US;
  cp_http_conn_update_io (conn);
}

/* ---- reading ---- */

static gboolean
conn_want_read (CpHttpConnection *conn)
{
  if (conn->state == CONN_LINGER)
    return TRUE;
  if (conn->state != CONN_OPEN || conn->read_eof || conn->close_after_flush ||
      conn->io_error != NULL)
    return FALSE;
  if (conn->h2 != NULL)
    return cp_http2_session_want_read (conn->h2);
  if (conn->ex == NULL)
    return TRUE;
  if (conn->body != BODY_DONE)
    {
      CpHttpExchange *ex = conn->ex;

      if (conn->discard || ex->finished || ex->discard_body)
        return TRUE;
      return cp_http_exchange_can_deliver (ex);
    }
  /* Waiting for the response: read ahead a little (pipelining, and to
   * notice a client that goes away). */
  return conn->rend - conn->rstart < READ_AHEAD;
}

static gboolean
conn_make_room (CpHttpConnection *conn)
{
  gsize max;

  if (conn->rbuf == NULL)
    {
      conn->rsize = READ_CHUNK;
      conn->rbuf = g_malloc (conn->rsize);
      conn->rstart = conn->rend = 0;
      return TRUE;
    }
  if (conn->rstart == conn->rend)
    conn->rstart = conn->rend = 0;
  if (conn->rend < conn->rsize)
    return TRUE;
  if (conn->rstart > 0)
    {
      memmove (conn->rbuf, conn->rbuf + conn->rstart, conn->rend - conn->rstart);
      conn->rend -= conn->rstart;
      conn->rstart = 0;
      return TRUE;
    }
  /* A head (or read-ahead) larger than the buffer: grow, bounded. */
  max = MAX ((gsize) cp_http_server_get_max_head_size (conn->server) + 4, READ_AHEAD);
  if (conn->rsize >= max)
    return FALSE;
  conn->rsize = MIN (conn->rsize * 2, max);
  conn->rbuf = g_realloc (conn->rbuf, conn->rsize);
  return TRUE;
}

/* Returns bytes read, 0 at EOF, -1 when it would block, -2 on error (closed). */
static gssize
conn_read_some (CpHttpConnection *conn)
{
  g_autoptr(GError) error = NULL;
  gsize space = conn->rsize - conn->rend;
  gssize n;

  if (conn->tls_in == NULL)
    {
      n = cp_http_conn_socket_recv (conn, conn->rbuf + conn->rend, space, &error);
      if (n == -2)
        conn_close_io_error (conn, error);
      return n;
    }
  n = g_pollable_input_stream_read_nonblocking (conn->tls_in, conn->rbuf + conn->rend,
                                                space, NULL, &error);
  if (n >= 0)
    return n;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return -1;
  conn_close_io_error (conn, error);
  return -2;
}

/* Reads and discards what the client still sends after the response. */
static void
conn_linger_read (CpHttpConnection *conn)
{
  guint8 scratch[16 * 1024];

  /* A TLS stream may hold decrypted bytes that no poll of the socket
   * reports: read until it would block (bounded per event). */
  for (guint i = 0; i < 8; i++)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      if (conn->tls_in != NULL)
        {
          n = g_pollable_input_stream_read_nonblocking (conn->tls_in, scratch, sizeof scratch,
                                                        NULL, &error);
          if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            return;
        }
      else
        {
          n = cp_http_conn_socket_recv (conn, scratch, sizeof scratch, &error);
          if (n == -1)
            return;
        }
      if (n <= 0)
        {
          /* EOF (TLS: close_notify or not) or an error: the client is done */
          cp_http_connection_close (conn, NULL);
          return;
        }
      conn->lingered += n;
      if (conn->lingered > LINGER_CAP)
        {
          cp_http_connection_close (conn, NULL);
          return;
        }
      if (conn->tls_in == NULL && (gsize) n < sizeof scratch)
        return;  /* the socket is drained; poll says when there is more */
    }
}

static void
conn_on_eof (CpHttpConnection *conn)
{
  CpHttpExchange *ex = conn->ex;

  conn->read_eof = TRUE;
  if (ex != NULL && !ex->finished && !ex->aborted &&
      (conn->body != BODY_DONE || conn->rend == conn->rstart))
    {
      g_autoptr(GError) error =
        g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                             conn->body != BODY_DONE ?
                             "The client closed the connection in the middle of the request body" :
                             "The client closed the connection");
      cp_http_connection_close (conn, error);
      return;
    }
  /* Otherwise finish what is buffered; conn_process closes when done. */
  cp_http_conn_schedule (conn);
}

/* The client sent something: renew the body deadline, and move the
 * connection to the end of the eviction queue. */
static void
conn_note_progress (CpHttpConnection *conn)
{
  if (conn->deadline_kind == DEADLINE_BODY)
    cp_http_conn_set_deadline (conn, DEADLINE_BODY, cp_http_server_get_body_timeout_ms (conn->server));
  if (conn->waiting)
    cp_http_server_touch_waiting (conn->server, &conn->waiting_link, TRUE);
}

static void
conn_read (CpHttpConnection *conn)
{
  for (guint i = 0; i < 8; i++)
    {
      gsize space;
      gssize n;

      if (!conn_want_read (conn) || !conn_make_room (conn))
        return;
      space = conn->rsize - conn->rend;
      n = conn_read_some (conn);
      if (n == -2 || n == -1)
        return;
      if (n == 0)
        {
          conn_on_eof (conn);
          return;
        }
      conn->rend += n;
      conn_note_progress (conn);
      conn_process (conn);
      if (conn->tls_in == NULL && (gsize) n < space)
        return;  /* the socket is drained; poll says when there is more */
    }
}

/* ---- request heads ---- */

static CpHttpExchange *
conn_take_exchange (CpHttpConnection *conn)
{
  if (conn->spare != NULL)
    return g_steal_pointer (&conn->spare);
  return cp_http_exchange_new_internal ();
}

static void
conn_release_exchange (CpHttpConnection *conn)
{
  CpHttpExchange *ex = g_steal_pointer (&conn->ex);

  conn->body = BODY_NONE;
  conn->discard = FALSE;
  conn->drained = 0;
  conn->trailer_bytes = 0;
  ex->conn = NULL;
  cp_http_exchange_clear_callbacks (ex);
  if (ex->ref_count == 1 && conn->spare == NULL)
    {
      cp_http_exchange_reset (ex);
      conn->spare = ex;
    }
  else
    cp_http_exchange_unref (ex);
  cp_http_conn_set_deadline (conn, DEADLINE_IDLE, cp_http_server_get_idle_timeout_ms (conn->server));
}

/* Returns TRUE when a request was dispatched. */
static gboolean
conn_parse_head (CpHttpConnection *conn)
{
  guint8 *p;
  gsize avail, head_len = 0, parse_len = 0;
  guint max_head = cp_http_server_get_max_head_size (conn->server);
  guint max_count = cp_http_server_get_max_header_count (conn->server);
  CpHttpExchange *ex;
  char *method = NULL, *path = NULL, *query;
  SoupHTTPVersion version = SOUP_HTTP_1_1;
  guint status, n_host = 0;

  /* RFC 9112 §2.2: ignore empty lines before a request line. */
  while (conn->rstart < conn->rend &&
         (conn->rbuf[conn->rstart] == '\r' || conn->rbuf[conn->rstart] == '\n') &&
         conn->scan_pos == 0)
    conn->rstart++;

  p = conn->rbuf + conn->rstart;
  avail = conn->rend - conn->rstart;
  if (avail == 0)
    return FALSE;

  /* HTTP/2 with prior knowledge: the client preface as the first bytes. */
  if (!conn->preface_checked)
    {
      gsize n = MIN (avail, CP_HTTP2_PREFACE_LEN);

      if (memcmp (p, CP_HTTP2_PREFACE, n) != 0)
        conn->preface_checked = TRUE;
      else if (n < CP_HTTP2_PREFACE_LEN)
        return FALSE;   /* wait for the rest of it */
      else
        {
          conn->preface_checked = TRUE;
          conn->h2 = cp_http2_session_new (conn);
          cp_http_conn_schedule (conn);
          return FALSE;
        }
    }

  if (conn->deadline_kind != DEADLINE_HEAD)
    cp_http_conn_set_deadline (conn, DEADLINE_HEAD, cp_http_server_get_head_timeout_ms (conn->server));

  while (conn->scan_pos < avail)
    {
      guint8 *nl = memchr (p + conn->scan_pos, '\n', avail - conn->scan_pos);
      gsize i;

      if (nl == NULL)
        {
          conn->scan_pos = avail;
          break;
        }
      i = nl - p;
      if (i + 1 >= avail)
        {
          conn->scan_pos = i;
          break;
        }
      if (p[i + 1] == '\n')
        {
          head_len = i + 2;
          parse_len = i + 1;
          break;
        }
      if (p[i + 1] == '\r')
        {
          if (i + 2 >= avail)
            {
              conn->scan_pos = i;
              break;
            }
          if (p[i + 2] == '\n')
            {
              head_len = i + 3;
              parse_len = i + 1;
              break;
            }
        }
      conn->scan_lines++;
      conn->scan_pos = i + 1;
      /* scan_lines complete lines, the request line among them, and more follow */
      if (conn->scan_lines > max_count)
        {
          cp_http_conn_fail (conn, STATUS_HEADER_FIELDS_TOO_LARGE);
          return FALSE;
        }
    }

  if (head_len == 0)
    {
      if (avail > max_head)
        cp_http_conn_fail (conn, STATUS_HEADER_FIELDS_TOO_LARGE);
      return FALSE;
    }
  conn->scan_pos = 0;
  conn->scan_lines = 0;
  if (head_len > max_head)
    {
      cp_http_conn_fail (conn, STATUS_HEADER_FIELDS_TOO_LARGE);
      return FALSE;
    }

  ex = conn_take_exchange (conn);
  status = cp_http_check_head_syntax (p, parse_len, &n_host);
  if (status == 0)
    status = soup_headers_parse_request ((const char *) p, parse_len, ex->request_headers,
                                         &method, &path, &version);
  /* RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in 1.0 */
  if (status == SOUP_STATUS_OK && (n_host > 1 || (n_host == 0 && version == SOUP_HTTP_1_1)))
    status = SOUP_STATUS_BAD_REQUEST;
  if (status == SOUP_STATUS_OK)
    {
      ex->version = version;
      status = cp_http_check_framing (ex);
      if (status == 0)
        status = SOUP_STATUS_OK;
    }
  if (status != SOUP_STATUS_OK)
    {
      g_free (method);
      g_free (path);
      soup_message_headers_clear (ex->request_headers);
      conn->spare = ex;
      cp_http_conn_fail (conn, status);
      return FALSE;
    }

  conn->rstart += head_len;
  ex->method = method;
  ex->path = path;
  query = strchr (path, '?');
  if (query != NULL)
    {
      *query = '\0';
      ex->query = query + 1;
    }
  ex->arrival_time = g_get_monotonic_time ();
  ex->head_request = strcmp (method, "HEAD") == 0;
  /* Connection and Expect were read by cp_http_check_framing (). */
  if (version == SOUP_HTTP_1_0)
    ex->keep_alive = ex->connection_keep_alive;
  else
    ex->keep_alive = !ex->connection_close;
  ex->expect_continue = version == SOUP_HTTP_1_1 && !ex->empty_body && ex->has_expect &&
    (soup_message_headers_get_expectations (ex->request_headers) & SOUP_EXPECTATION_CONTINUE) != 0;

  if (ex->chunked_request)
    conn->body = BODY_CHUNK_SIZE;
  else if (ex->content_length > 0)
    {
      conn->body = BODY_LENGTH;
      conn->body_remaining = ex->content_length;
    }
  else
    conn->body = BODY_DONE;

  ex->conn = conn;
  conn->ex = ex;
  cp_http_conn_set_deadline (conn, DEADLINE_NONE, 0);

  cp_http_server_invoke_handler (conn->server, ex);
  ex->handler_returned = TRUE;

  if (conn->state == CONN_OPEN && conn->ex == ex && !ex->aborted &&
      ex->expect_continue && !ex->response_started && conn->body != BODY_DONE)
    cp_http_conn_queue_copy (conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  return TRUE;
}

/* ---- request bodies ---- */

static void
conn_body_error (CpHttpConnection *conn)
{
  cp_http_conn_fail (conn, SOUP_STATUS_BAD_REQUEST);
}

/* Parses a chunk-size line; returns 1 done, 0 need more, -1 error. */
static int
parse_chunk_size (CpHttpConnection *conn)
{
  guint64 size;
  gsize line_len;
  int ret = cp_http_parse_chunk_size_line (conn->rbuf + conn->rstart, conn->rend - conn->rstart,
                                           &size, &line_len);

  if (ret <= 0)
    return ret;
  conn->rstart += line_len;
  if (size == 0)
    conn->body = BODY_TRAILERS;
  else
    {
      conn->body = BODY_CHUNK_DATA;
      conn->body_remaining = size;
    }
  return 1;
}

/* Moves body bytes from the buffer to the handler (or drops them). Returns
 * TRUE when the whole body has been consumed. */
static gboolean
conn_advance_body (CpHttpConnection *conn)
{
  CpHttpExchange *ex = conn->ex;

  while (conn->state == CONN_OPEN && conn->ex == ex && !conn->close_after_flush)
    {
      gboolean deliver = !conn->discard && !ex->finished && !ex->aborted && !ex->discard_body;
      gsize avail = conn->rend - conn->rstart;

      if (conn->body == BODY_DONE)
        {
          if (!ex->body_ended)
            {
              if (!deliver)
                ex->body_ended = TRUE;
              else if (cp_http_exchange_can_deliver (ex))
                {
                  cp_http_exchange_deliver_end (ex);
                  continue;
                }
              else
                return FALSE;
            }
          return TRUE;
        }

      if (deliver && !cp_http_exchange_can_deliver (ex))
        return FALSE;

      switch (conn->body)
        {
        case BODY_LENGTH:
        case BODY_CHUNK_DATA:
          {
            gsize n;

            if (avail == 0)
              return FALSE;
            n = MIN (avail, conn->body_remaining);
            conn->body_remaining -= n;
            if (conn->body_remaining == 0)
              conn->body = conn->body == BODY_LENGTH ? BODY_DONE : BODY_CHUNK_DATA_END;
            if (deliver)
              {
                g_autoptr(GBytes) chunk = g_bytes_new (conn->rbuf + conn->rstart, n);

                conn->rstart += n;
                cp_http_exchange_deliver_chunk (ex, chunk);
              }
            else
              {
                conn->rstart += n;
                conn->drained += n;
                if (conn->drained > DRAIN_CAP && !ex->aborted)
                  {
                    conn->close_after_flush = TRUE;
                    return FALSE;
                  }
              }
          }
          break;

        case BODY_CHUNK_SIZE:
          {
            int r = parse_chunk_size (conn);

            if (r < 0)
              {
                conn_body_error (conn);
                return FALSE;
              }
            if (r == 0)
              return FALSE;
          }
          break;

        case BODY_CHUNK_DATA_END:
          if (avail == 0)
            return FALSE;
          if (conn->rbuf[conn->rstart] == '\n')
            conn->rstart += 1;
          else if (avail < 2)
            return FALSE;
          else if (conn->rbuf[conn->rstart] == '\r' && conn->rbuf[conn->rstart + 1] == '\n')
            conn->rstart += 2;
          else
            {
              conn_body_error (conn);
              return FALSE;
            }
          conn->body = BODY_CHUNK_SIZE;
          break;

        case BODY_TRAILERS:
          {
            const guint8 *p = conn->rbuf + conn->rstart;
            const guint8 *nl = memchr (p, '\n', avail);
            gsize line;

            if (nl == NULL)
              {
                if (conn->trailer_bytes + avail > cp_http_server_get_max_head_size (conn->server))
                  {
                    conn_body_error (conn);
                    return FALSE;
                  }
                return FALSE;
              }
            line = nl - p + 1;
            conn->rstart += line;
            conn->trailer_bytes += line;
            if (line == 1 || (line == 2 && p[0] == '\r'))
              conn->body = BODY_DONE;
            else if (conn->trailer_bytes > cp_http_server_get_max_head_size (conn->server) ||
                     !cp_http_check_trailer_line (p, line))
              {
                conn_body_error (conn);
                return FALSE;
              }
          }
          break;

        case BODY_NONE:
        case BODY_DONE:
        default:
          g_assert_not_reached ();
        }
    }
  return FALSE;
}

/* TRUE when buffered body bytes wait for the handler to take them (it
 * paused), rather than the body waiting for more bytes from the client. */
static gboolean
conn_body_waits_for_handler (CpHttpConnection *conn)
{
  CpHttpExchange *ex = conn->ex;
  gboolean deliver = !conn->discard && !ex->finished && !ex->aborted && !ex->discard_body;

  return deliver && !cp_http_exchange_can_deliver (ex);
}

/* ---- the process loop ---- */

static void
conn_process (CpHttpConnection *conn)
{
  if (conn->in_process)
    {
      conn->pending_process = TRUE;
      return;
    }

  conn_ref (conn);
  conn->in_process = TRUE;
  do
    {
      conn->pending_process = FALSE;
      if (conn->h2 != NULL && conn->state == CONN_OPEN && conn->io_error == NULL)
        cp_http2_session_process (conn->h2);
      while (conn->h2 == NULL && conn->state == CONN_OPEN && !conn->close_after_flush &&
             conn->io_error == NULL)
        {
          if (conn->ex == NULL)
            {
              if (!conn_parse_head (conn))
                break;
              continue;
            }
          if (!conn_advance_body (conn))
            break;
          if (conn->ex->finished || conn->ex->aborted)
            {
              conn_release_exchange (conn);
              continue;
            }
          break;
        }

      if (conn->state == CONN_OPEN && conn->read_eof)
        {
          if (conn->h2 != NULL)
            {
              /* The client is gone: streams it left open cannot complete. */
              if (!cp_http2_session_is_idle (conn->h2))
                cp_http_connection_close (conn, NULL);
              else
                conn->close_after_flush = TRUE;
            }
          else if (conn->ex == NULL)
            conn->close_after_flush = TRUE;
          else if (conn->body != BODY_DONE && !conn_body_waits_for_handler (conn))
            {
              /* The rest of the body will never come: whether it was being
               * delivered or drained after an early response, end here (a
               * queued response is flushed first). */
              if (conn->ex->finished || conn->ex->aborted)
                conn->close_after_flush = TRUE;
              else
                {
                  g_autoptr(GError) error =
                    g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                         "The client closed the connection in the middle of the request body");
                  cp_http_connection_close (conn, error);
                }
            }
        }
    }
  while (conn->pending_process && conn->state == CONN_OPEN && !conn->close_after_flush);
  conn->in_process = FALSE;

  if (conn->state == CONN_OPEN)
    cp_http_conn_flush (conn);
  cp_http_conn_update_io (conn);
  cp_http_connection_unref (conn);
}

/* ---- I/O readiness ---- */

static gboolean
tls_in_ready (GObject  *stream,
              gpointer  user_data)
{
  conn_handle (user_data, G_IO_IN);
  return G_SOURCE_CONTINUE;
}

static gboolean
tls_out_ready (GObject  *stream,
               gpointer  user_data)
{
  conn_handle (user_data, G_IO_OUT);
  return G_SOURCE_CONTINUE;
}

/* While the server is ready for request body bytes, the client must send
 * one at least every body-timeout-ms; a paused handler stops the clock. */
static void
conn_update_body_deadline (CpHttpConnection *conn,
                           gboolean          want_read)
{
  gboolean awaits_body = conn->state == CONN_OPEN && conn->ex != NULL &&
                         conn->body != BODY_DONE && want_read;

  if (conn->h2 != NULL)
    return;   /* the session keeps its own deadline */

  if (awaits_body && conn->deadline_kind == DEADLINE_NONE)
    cp_http_conn_set_deadline (conn, DEADLINE_BODY, cp_http_server_get_body_timeout_ms (conn->server));
  else if (!awaits_body && conn->deadline_kind == DEADLINE_BODY)
    cp_http_conn_set_deadline (conn, DEADLINE_NONE, 0);
}

/* Keeps the server's queue of connections that wait on their client (the
 * eviction candidates at the connection cap) up to date. */
static void
conn_update_waiting (CpHttpConnection *conn,
                     gboolean          want_read)
{
  gboolean waiting;

  if (conn->state == CONN_LINGER)
    waiting = TRUE;
  else if (conn->h2 != NULL)
    waiting = conn->state == CONN_OPEN && want_read && conn->queued == 0 &&
              cp_http2_session_is_idle (conn->h2);
  else
    waiting = conn->state == CONN_OPEN && want_read && conn->queued == 0 &&
              (conn->ex == NULL || conn->body != BODY_DONE);
  if (waiting == conn->waiting)
    return;
  if (waiting)
    cp_http_server_touch_waiting (conn->server, &conn->waiting_link, FALSE);
  else
    cp_http_server_remove_waiting (conn->server, &conn->waiting_link);
  conn->waiting = waiting;
}

void
cp_http_conn_update_io (CpHttpConnection *conn)
{
  gboolean want_read, want_write;
  gint64 ready_time;

  if (conn->state == CONN_CLOSED || conn->state == CONN_HANDSHAKING)
    return;

  want_read = conn_want_read (conn);
  want_write = conn->write_blocked;
  conn_update_body_deadline (conn, want_read);
  conn_update_waiting (conn, want_read);

  if (conn->fd_tag != NULL)
    {
      GIOCondition events = (want_read ? G_IO_IN : 0) | (want_write ? G_IO_OUT : 0);

      if (conn->reentered)
        events = 0;               /* until the outer dispatch returns */
      if (events != conn->fd_events)
        {
          g_source_modify_unix_fd (conn->source, conn->fd_tag, events);
          conn->fd_events = events;
        }
    }
  else if (conn->tls_in != NULL)
    {
      if (want_read && conn->tls_in_source == NULL)
        {
          conn->tls_in_source = g_pollable_input_stream_create_source (conn->tls_in, NULL);
          g_source_set_callback (conn->tls_in_source, G_SOURCE_FUNC (tls_in_ready), conn, NULL);
          g_source_set_static_name (conn->tls_in_source, "[connectplugin] tls read");
          g_source_attach (conn->tls_in_source, conn->context);
        }
      else if (!want_read && conn->tls_in_source != NULL)
        {
          g_source_destroy (conn->tls_in_source);
          g_clear_pointer (&conn->tls_in_source, g_source_unref);
        }
      if (want_write && conn->tls_out_source == NULL)
        {
          conn->tls_out_source = g_pollable_output_stream_create_source (conn->tls_out, NULL);
          g_source_set_callback (conn->tls_out_source, G_SOURCE_FUNC (tls_out_ready), conn, NULL);
          g_source_set_static_name (conn->tls_out_source, "[connectplugin] tls write");
          g_source_attach (conn->tls_out_source, conn->context);
        }
      else if (!want_write && conn->tls_out_source != NULL)
        {
          g_source_destroy (conn->tls_out_source);
          g_clear_pointer (&conn->tls_out_source, g_source_unref);
        }
    }

  if (conn->state == CONN_OPEN &&
      (conn->pending_process || conn->writable_check || conn->io_error != NULL ||
       (conn->flush_pending && conn->queued > 0 && !conn->write_blocked)))
    ready_time = 0;
  else if (conn->deadline_kind != DEADLINE_NONE)
    ready_time = conn->deadline;
  else
    ready_time = -1;
  conn->ready_time = ready_time;
}

static void
conn_handle (CpHttpConnection *conn,
             GIOCondition      revents)
{
  if (conn->state == CONN_CLOSED)
    return;

  conn_ref (conn);

  if (conn->io_error != NULL && conn->state != CONN_CLOSED)
    {
      g_autoptr(GError) error = g_steal_pointer (&conn->io_error);

      cp_http_connection_close (conn, error);
      cp_http_connection_unref (conn);
      return;
    }

  if ((revents & (G_IO_OUT | G_IO_ERR | G_IO_HUP)) && conn->write_blocked)
    {
      conn->write_blocked = FALSE;
      cp_http_conn_flush (conn);
    }
  else if (conn->flush_pending && conn->state == CONN_OPEN)
    cp_http_conn_flush (conn);

  if (conn->state == CONN_LINGER)
    {
      if (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR))
        conn_linger_read (conn);
    }
  else if (conn->state == CONN_OPEN && (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)))
    {
      if (conn_want_read (conn))
        conn_read (conn);
      else if (revents & (G_IO_HUP | G_IO_ERR))
        {
          /* The peer is gone (or reset) while we were not reading. */
          g_autoptr(GError) error =
            g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                 "The client closed the connection");
          cp_http_connection_close (conn, error);
        }
    }

  if (conn->state != CONN_CLOSED)
    {
      gint64 now = g_get_monotonic_time ();

      if (conn->deadline_kind != DEADLINE_NONE && now >= conn->deadline &&
          conn->h2 != NULL && conn->state == CONN_OPEN && cp_http2_session_timeout (conn->h2))
        ;   /* slow streams reset, or an idle connection told GOAWAY */
      else if (conn->deadline_kind != DEADLINE_NONE && now >= conn->deadline)
        {
          g_autoptr(GError) error =
            g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                 "Timed out waiting for the client");
          cp_http_connection_close (conn, error);
        }
    }

  if (conn->state == CONN_OPEN && conn->pending_process)
    conn_process (conn);

  if (conn->state == CONN_OPEN && conn->writable_check)
    {
      CpHttpExchange *ex = conn->ex;

      conn->writable_check = FALSE;
      if (ex != NULL && ex->congestion_reported && !ex->finished && !ex->aborted &&
          conn->queued < CP_HTTP_LOW_WATER)
        {
          ex->congestion_reported = FALSE;
          if (ex->has_callbacks && ex->callbacks.writable != NULL)
            {
              cp_http_exchange_ref (ex);
              ex->callbacks.writable (ex, ex->user_data);
              cp_http_exchange_unref (ex);
            }
          if (conn->state == CONN_OPEN && !conn->in_process)
            cp_http_conn_flush (conn);
        }
    }

  cp_http_conn_update_io (conn);
  cp_http_connection_unref (conn);
}

/* ---- TLS handshake ---- */

static void
handshake_done (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  CpHttpConnection *conn = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error))
    {
      if (conn->state != CONN_CLOSED)
        {
          g_debug ("TLS handshake failed: %s", error->message);
          cp_http_connection_close (conn, error);
        }
      cp_http_connection_unref (conn);
      return;
    }
  if (conn->state == CONN_HANDSHAKING)
    {
      conn->tls_in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (conn->tls));
      conn->tls_out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (conn->tls));
      conn->state = CONN_OPEN;
      if (g_strcmp0 (g_tls_connection_get_negotiated_protocol (G_TLS_CONNECTION (conn->tls)),
                     "h2") == 0)
        {
          conn->preface_checked = TRUE;
          conn->h2 = cp_http2_session_new (conn);
          cp_http2_session_process (conn->h2);   /* our SETTINGS go first */
          cp_http_conn_flush (conn);
        }
      cp_http_conn_update_io (conn);
    }
  cp_http_connection_unref (conn);
}

/* ---- creation ---- */

/* glib-networking leaves a client certificate's fate to this signal on a
 * server connection (a certificate is refused when nobody accepts it): take
 * it exactly when it verified against the database. */
static gboolean
accept_client_certificate (GTlsConnection       *tls,
                           GTlsCertificate      *certificate,
                           GTlsCertificateFlags  errors,
                           gpointer              user_data)
{
  if (errors != 0)
    g_debug ("refusing a TLS client certificate (flags 0x%x)", (guint) errors);
  return errors == 0;
}

CpHttpConnection *
cp_http_connection_new (CpHttpServer    *server,
                        GSocket         *socket,
                        GTlsCertificate *certificate)
{
  CpHttpConnection *conn = g_new0 (CpHttpConnection, 1);
  GSource *source;

  conn->ref_count = 1;
  conn->server = server;
  conn->context = g_main_context_ref (cp_http_server_get_context (server));
  conn->socket = g_object_ref (socket);
  conn->fd = g_socket_get_fd (socket);
  conn->wtail = g_byte_array_sized_new (4096);
  g_queue_init (&conn->wq);
  conn->ready_time = -1;
  conn->body = BODY_NONE;
  conn->waiting_link.data = conn;
  conn->is_unix = g_socket_get_family (socket) == G_SOCKET_FAMILY_UNIX;

  g_socket_set_blocking (socket, FALSE);
  if (!conn->is_unix)
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);

  if (certificate != NULL)
    {
      g_autoptr(GSocketConnection) base = g_socket_connection_factory_create_connection (socket);
      g_autoptr(GError) error = NULL;
      GTlsDatabase *database = cp_http_server_get_tls_database (server);
      GType type = g_tls_backend_get_server_connection_type (g_tls_backend_get_default ());

      /* The database is given at construction: set afterwards, glib-networking
       * would first load the system's CAs for the connection (tens of ms). */
      if (database != NULL)
        conn->tls = g_initable_new (type, NULL, &error, "base-io-stream", base,
                                    "certificate", certificate, "database", database, NULL);
      else
        conn->tls = g_tls_server_connection_new (G_IO_STREAM (base), certificate, &error);
      if (conn->tls == NULL)
        {
          g_warning ("Cannot create a TLS server connection: %s", error->message);
          conn->state = CONN_CLOSED;
          g_socket_close (socket, NULL);
          cp_http_connection_unref (conn);
          return NULL;
        }
      g_object_set (conn->tls, "authentication-mode",
                    cp_http_server_get_tls_authentication_mode (server), NULL);
      {
        static const char * const alpn[] = { "h2", "http/1.1", NULL };

        g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (conn->tls), alpn);
      }
      g_signal_connect (conn->tls, "accept-certificate",
                        G_CALLBACK (accept_client_certificate), NULL);
    }

  source = g_source_new (&conn_source_funcs, sizeof (ConnSource));
  ((ConnSource *) source)->conn = conn;
  g_source_set_static_name (source, "[connectplugin] http connection");
  g_source_set_can_recurse (source, TRUE);   /* see the top of this file */
  conn->source = source;
  cp_http_conn_set_deadline (conn, DEADLINE_HEAD, cp_http_server_get_head_timeout_ms (server));

  if (conn->tls == NULL)
    {
      conn->state = CONN_OPEN;
      conn->fd_events = G_IO_IN;
      conn->fd_tag = g_source_add_unix_fd (source, g_socket_get_fd (socket), G_IO_IN);
      g_source_attach (source, conn->context);
      cp_http_conn_update_io (conn);
      return conn;
    }

  conn->state = CONN_HANDSHAKING;
  conn->waiting = TRUE;
  cp_http_server_touch_waiting (server, &conn->waiting_link, FALSE);
  conn->ready_time = conn->deadline;
  g_source_attach (source, conn->context);
  conn->cancellable = g_cancellable_new ();
  g_main_context_push_thread_default (conn->context);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (conn->tls), G_PRIORITY_DEFAULT,
                                    conn->cancellable, handshake_done, conn_ref (conn));
  g_main_context_pop_thread_default (conn->context);
  return conn;
}
