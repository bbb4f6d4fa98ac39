/* cp-h2-connection.c: a channel's HTTP/2 client on libnghttp2: one
 * connection multiplexing the exchanges of every thread, driven by a
 * thread of its own
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A channel with CpChannel:http-version 2 makes one CpH2Client at its first
 * call. The client runs a GMainContext in a thread of its own, where all of
 * nghttp2 and the socket live: exchanges are made in any context (a
 * blocking call iterates a context of its own, an application may call
 * from several threads), so the connection cannot belong to one of them
 * without the deadlock libsoup 3.2 has when a call waits for a connection
 * that another context is opening. Exchanges hand commands to the thread
 * (submit, kick, cancel) under the client's lock; the thread queues the
 * response's head, chunks and end back to each exchange's owner context
 * (cp-channel-exchange-h2.c).
 *
 * The connection is opened at the first submit: h2c with prior knowledge
 * for `http://` and `unix:`, TLS with ALPN for `https://` (the channel's
 * tls-database and tls-certificate, as its SoupSession gets them; when the
 * server does not pick `h2`, every exchange of the channel goes to libsoup
 * instead). After GOAWAY or a close, the next submit opens a new one; a
 * connection that received GOAWAY lives on until its streams end.
 *
 * Flow control: the response body is given back to the window
 * (nghttp2_session_consume) as it is queued, unless its exchange is paused
 * (then when it resumes); the request body is read from the exchange's
 * queue, the data provider deferred while the queue is empty.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#include "cp-h2-connection-private.h"
#include "cp-channel-exchange-impl-private.h"
#include "cp-error.h"

#define READ_BUFFER_SIZE     (16 * 1024)
#define STREAM_WINDOW_SIZE   (1024 * 1024)
#define CONNECTION_WINDOW    (16 * 1024 * 1024)
#define GATHER_SIZE          (16 * 1024)

typedef enum {
  CMD_SUBMIT,
  CMD_KICK,
  CMD_CANCEL,
} CmdKind;

typedef struct {
  CmdKind kind;
  CpChannelExchange *exchange;
} Cmd;

typedef struct _H2Conn H2Conn;

struct _CpH2Client
{
  CpChannel *channel;            /* not referenced: it owns the client */
  GSocketConnectable *connectable;
  gboolean direct;
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  guint n_connects;              /* atomic */

  GMutex lock;                   /* protects the fields below */
  GQueue commands;
  GSource *wake_source;
  gboolean free_in_thread;       /* freed from its own thread */

  /* The client's thread only. */
  H2Conn *conn;                  /* where new streams go; NULL = none yet */
  GList *draining;               /* H2Conn after GOAWAY, streams left */
  gboolean h1_only;              /* a TLS server did not pick h2 */
  char *base;                    /* the base URL parsed into: */
  char *scheme;
  char *authority;
  char *prefix;                  /* path prefix, no trailing '/' */
};

typedef enum {
  CONN_CONNECTING,
  CONN_READY,
  CONN_CLOSED,
} ConnState;

struct _H2Conn
{
  CpH2Client *client;
  ConnState state;
  gboolean connecting;           /* the connect is under way: it frees */
  gboolean going_away;
  char *key;                     /* scheme://authority */
  GCancellable *cancellable;
  GSocketConnection *socket_conn;
  GIOStream *io;                 /* socket_conn or its TLS connection */
  GPollableInputStream *in;
  GPollableOutputStream *out;
  nghttp2_session *session;
  GSource *read_source;
  GSource *write_source;
  const guint8 *wbuf;            /* unwritten: in gather, or nghttp2's own */
  gsize wlen;
  GByteArray *gather;            /* frames serialized for one write */
  GQueue waiting;                /* exchanges (referenced) until ready */
  GHashTable *streams;           /* H2Stream* set */
};

typedef struct {
  CpChannelExchange *exchange;   /* referenced */
  H2Conn *conn;
  gint32 id;
  guint status;
  SoupMessageHeaders *headers;
  SoupMessageHeaders *trailers;
  gboolean head_pushed;
  gboolean deferred;             /* the data provider said DEFERRED */
  gboolean has_body;
} H2Stream;

static void conn_flush (H2Conn *conn);
static void conn_free (H2Conn *conn);
static void conn_close (H2Conn *conn, const GError *error);

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */

static void
stream_free (H2Stream *stream)
{
  if (stream->exchange != NULL)
    {
      stream->exchange->h2_stream = NULL;
      stream->exchange->h2_stream_id = 0;
      cp_channel_exchange_unref (stream->exchange);
    }
  g_clear_pointer (&stream->headers, soup_message_headers_unref);
  g_clear_pointer (&stream->trailers, soup_message_headers_unref);
  g_free (stream);
}

/* The HTTP/2 error code of a RST_STREAM as the call's error, as gRPC and
 * connect-go map them. */
static GError *
rst_error (guint32 code)
{
  switch (code)
    {
    case NGHTTP2_REFUSED_STREAM:
      return g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE, "the server refused the stream");
    case NGHTTP2_CANCEL:
      return g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED, "the server cancelled the stream");
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return g_error_new_literal (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                                  "the server reset the stream: ENHANCE_YOUR_CALM");
    case NGHTTP2_INADEQUATE_SECURITY:
      return g_error_new_literal (CP_ERROR, CP_ERROR_PERMISSION_DENIED,
                                  "the server reset the stream: INADEQUATE_SECURITY");
    default:
      return g_error_new (CP_ERROR, CP_ERROR_INTERNAL, "the stream was reset: %s",
                          nghttp2_http2_strerror (code));
    }
}

/* Ends @stream's exchange (unless already ended) and forgets the stream. */
static void
stream_end (H2Stream *stream,
            GError   *error,
            gboolean  not_sent,
            gboolean  connection_lost)
{
  CpChannelExchange *exchange = stream->exchange;

  if (error == NULL && !stream->head_pushed)
    error = g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                 "the server ended the stream without a response");
  cp_channel_exchange_h2_push_end (exchange, error, stream->trailers, not_sent, connection_lost);
  g_hash_table_remove (stream->conn->streams, stream);
}

/* ------------------------------------------------------------------------ */
/* nghttp2 callbacks                                                         */

static int
on_begin_headers (nghttp2_session     *session,
                  const nghttp2_frame *frame,
                  void                *user_data)
{
  H2Stream *stream = nghttp2_session_get_stream_user_data (session, frame->hd.stream_id);

  if (frame->hd.type != NGHTTP2_HEADERS || stream == NULL)
    return 0;
  if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && stream->head_pushed)
    {
      g_clear_pointer (&stream->trailers, soup_message_headers_unref);
      stream->trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    }
  else
    {
      g_clear_pointer (&stream->headers, soup_message_headers_unref);
      stream->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      stream->status = 0;
    }
  return 0;
}

static int
on_header (nghttp2_session     *session,
           const nghttp2_frame *frame,
           const uint8_t       *name,
           size_t               namelen,
           const uint8_t       *value,
           size_t               valuelen,
           uint8_t              flags,
           void                *user_data)
{
  H2Stream *stream = nghttp2_session_get_stream_user_data (session, frame->hd.stream_id);
  g_autofree char *n = NULL;
  g_autofree char *v = NULL;

  if (frame->hd.type != NGHTTP2_HEADERS || stream == NULL)
    return 0;
  /* nghttp2 checked the names and values (no NUL, CR, LF). */
  if (namelen == strlen (":status") && memcmp (name, ":status", namelen) == 0)
    {
      guint64 status = 0;
      g_autofree char *text = g_strndup ((const char *) value, valuelen);

      if (!g_ascii_string_to_unsigned (text, 10, 100, 999, &status, NULL))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      stream->status = (guint) status;
      return 0;
    }
  if (namelen > 0 && name[0] == ':')
    return 0;
  n = g_strndup ((const char *) name, namelen);
  v = g_strndup ((const char *) value, valuelen);
  soup_message_headers_append (stream->trailers != NULL ? stream->trailers : stream->headers, n, v);
  return 0;
}

static int
on_frame_recv (nghttp2_session     *session,
               const nghttp2_frame *frame,
               void                *user_data)
{
  H2Conn *conn = user_data;
  H2Stream *stream;

  if (frame->hd.type == NGHTTP2_GOAWAY)
    {
      conn->going_away = TRUE;
      if (conn->client->conn == conn)
        {
          conn->client->conn = NULL;
          conn->client->draining = g_list_prepend (conn->client->draining, conn);
        }
      return 0;
    }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  stream = nghttp2_session_get_stream_user_data (session, frame->hd.stream_id);
  if (stream == NULL)
    return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && !stream->head_pushed && stream->headers != NULL)
    {
      if (stream->status >= 100 && stream->status < 200)
        {
          g_clear_pointer (&stream->headers, soup_message_headers_unref);
          return 0;
        }
      stream->head_pushed = TRUE;
      cp_channel_exchange_h2_push_head (stream->exchange, stream->status, stream->headers);
    }
  /* The response is complete while the request body is still being sent
   * (a server answering a streamed upload early, RFC 9113 section 8.1):
   * the exchange ends now rather than once the body was sent, and the rest
   * of the body is not sent (RST_STREAM NO_ERROR, queued before any DATA
   * frame of the stream). */
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
      !nghttp2_session_get_stream_local_close (session, frame->hd.stream_id))
    {
      nghttp2_session_set_stream_user_data (session, frame->hd.stream_id, NULL);
      stream_end (stream, NULL, FALSE, FALSE);
      nghttp2_submit_rst_stream (session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                 NGHTTP2_NO_ERROR);
    }
  return 0;
}

static int
on_data_chunk_recv (nghttp2_session *session,
                    uint8_t          flags,
                    int32_t          stream_id,
                    const uint8_t   *data,
                    size_t           len,
                    void            *user_data)
{
  H2Stream *stream = nghttp2_session_get_stream_user_data (session, stream_id);

  if (stream == NULL || !stream->head_pushed)
    {
      nghttp2_session_consume_connection (session, len);
      return 0;
    }
  if (cp_channel_exchange_h2_push_chunk (stream->exchange, data, len))
    nghttp2_session_consume (session, stream_id, len);
  return 0;
}

static int
on_stream_close (nghttp2_session *session,
                 int32_t          stream_id,
                 uint32_t         error_code,
                 void            *user_data)
{
  H2Stream *stream = nghttp2_session_get_stream_user_data (session, stream_id);

  if (stream == NULL)
    return 0;
  nghttp2_session_set_stream_user_data (session, stream_id, NULL);
  if (error_code == NGHTTP2_NO_ERROR)
    stream_end (stream, NULL, FALSE, FALSE);
  else
    stream_end (stream, rst_error (error_code), error_code == NGHTTP2_REFUSED_STREAM, FALSE);
  return 0;
}

static ssize_t
read_request_body (nghttp2_session     *session,
                   int32_t              stream_id,
                   uint8_t             *buf,
                   size_t               length,
                   uint32_t            *data_flags,
                   nghttp2_data_source *source,
                   void                *user_data)
{
  /* Not source->ptr: a stream whose response ended early (on_frame_recv ())
   * is freed while its RST_STREAM is queued. */
  H2Stream *stream = nghttp2_session_get_stream_user_data (session, stream_id);
  gboolean eof = FALSE;
  gssize n;

  if (stream == NULL)
    return NGHTTP2_ERR_DEFERRED;
  n = cp_channel_exchange_h2_read_body (stream->exchange, buf, length, &eof);

  if (n < 0)
    {
      stream->deferred = TRUE;
      return NGHTTP2_ERR_DEFERRED;
    }
  if (eof)
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return n;
}

static nghttp2_session_callbacks *
get_callbacks (void)
{
  static nghttp2_session_callbacks *callbacks;

  if (g_once_init_enter (&callbacks))
    {
      nghttp2_session_callbacks *cbs;

      nghttp2_session_callbacks_new (&cbs);
      nghttp2_session_callbacks_set_on_begin_headers_callback (cbs, on_begin_headers);
      nghttp2_session_callbacks_set_on_header_callback (cbs, on_header);
      nghttp2_session_callbacks_set_on_frame_recv_callback (cbs, on_frame_recv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback (cbs, on_data_chunk_recv);
      nghttp2_session_callbacks_set_on_stream_close_callback (cbs, on_stream_close);
      g_once_init_leave (&callbacks, cbs);
    }
  return callbacks;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

/* Request headers that HTTP/2 forbids (RFC 9113 §8.2.2) or that the
 * pseudo-headers carry; TE only with "trailers", which gRPC sends. */
static gboolean
skip_header (const char *name,
             const char *value)
{
  static const char * const skipped[] = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding",
    "upgrade", "host", "te", "content-length",
  };

  if (g_ascii_strcasecmp (name, "te") == 0)
    return g_ascii_strcasecmp (value, "trailers") != 0;
  for (gsize i = 0; i < G_N_ELEMENTS (skipped); i++)
    if (g_ascii_strcasecmp (name, skipped[i]) == 0)
      return TRUE;
  return FALSE;
}

static void
nv_add (GArray     *nva,
        GPtrArray  *strings,
        const char *name,
        const char *value)
{
  nghttp2_nv nv = { 0 };

  nv.name = (uint8_t *) name;
  nv.namelen = strlen (name);
  nv.value = (uint8_t *) value;
  nv.valuelen = strlen (value);
  nv.flags = NGHTTP2_NV_FLAG_NONE;
  g_array_append_val (nva, nv);
}

/* Opens @exchange's stream on the ready @conn. */
static void
conn_open_stream (H2Conn            *conn,
                  CpChannelExchange *exchange)
{
  CpH2Client *client = conn->client;
  g_autoptr(GArray) nva = g_array_sized_new (FALSE, FALSE, sizeof (nghttp2_nv), 16);
  g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *path = g_strconcat (client->prefix, exchange->path_and_query, NULL);
  g_autofree char *length = NULL;
  SoupMessageHeadersIter iter;
  const char *name, *value;
  nghttp2_data_provider provider;
  H2Stream *stream;
  gboolean has_body;
  gint32 id;

  g_mutex_lock (&exchange->lock);
  has_body = exchange->request_streaming || !g_queue_is_empty (&exchange->h2_out);
  if (exchange->aborted)
    {
      g_mutex_unlock (&exchange->lock);
      cp_channel_exchange_unref (exchange);
      return;
    }
  g_mutex_unlock (&exchange->lock);

  nv_add (nva, strings, ":method", exchange->method);
  nv_add (nva, strings, ":scheme", client->scheme);
  nv_add (nva, strings, ":authority", client->authority);
  nv_add (nva, strings, ":path", path);
  if (!exchange->request_streaming && exchange->body != NULL)
    {
      length = g_strdup_printf ("%" G_GSIZE_FORMAT, g_bytes_get_size (exchange->body));
      nv_add (nva, strings, "content-length", length);
    }
  soup_message_headers_iter_init (&iter, exchange->request_headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      char *lower;

      if (skip_header (name, value))
        continue;
      lower = g_ascii_strdown (name, -1);
      g_ptr_array_add (strings, lower);
      nv_add (nva, strings, lower, value);
    }
  if (soup_message_headers_get_one (exchange->request_headers, "User-Agent") == NULL)
    nv_add (nva, strings, "user-agent", "connectplugin/0.1");

  stream = g_new0 (H2Stream, 1);
  stream->exchange = exchange;   /* takes the reference */
  stream->conn = conn;
  stream->has_body = has_body;
  provider.source.ptr = stream;
  provider.read_callback = read_request_body;
  id = nghttp2_submit_request (conn->session, NULL, (nghttp2_nv *) nva->data, nva->len,
                               has_body ? &provider : NULL, stream);
  if (id < 0)
    {
      cp_channel_exchange_h2_push_end (exchange,
                                       g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                    "cannot open an HTTP/2 stream: %s",
                                                    nghttp2_strerror (id)),
                                       NULL, TRUE, FALSE);
      stream_free (stream);
      return;
    }
  stream->id = id;
  exchange->h2_stream_id = id;
  exchange->h2_stream = stream;
  g_hash_table_add (conn->streams, stream);
}

/* ------------------------------------------------------------------------ */
/* Connection I/O                                                            */

static gboolean on_readable (GObject *pollable, gpointer user_data);
static gboolean on_writable (GObject *pollable, gpointer user_data);

static gboolean
on_socket_readable (GSocket      *socket,
                    GIOCondition  condition,
                    gpointer      user_data)
{
  return on_readable (NULL, user_data);
}

/* A plain connection (h2c, unix socket) is read through a socket source
 * that may recurse. GLib 2.74 blocks a non-recursive source around its
 * dispatch by removing and re-adding its fd, each time signalling the
 * context's wakeup fd, and a GPollable source does it again for its child
 * source: several system calls per response read, on the path of every
 * call. Nothing ever iterates the client's context from inside its own
 * dispatch (exchanges are answered in their owners' contexts), so the
 * source is never dispatched within itself. Over TLS the stream may hold
 * decrypted bytes the socket does not show: the pollable source stays. */
static void
conn_watch_read (H2Conn *conn)
{
  if (conn->read_source != NULL)
    return;
  if (G_IS_SOCKET_CONNECTION (conn->io))
    {
      GSocket *socket = g_socket_connection_get_socket (G_SOCKET_CONNECTION (conn->io));

      conn->read_source = g_socket_create_source (socket, G_IO_IN, NULL);
      g_source_set_callback (conn->read_source, G_SOURCE_FUNC (on_socket_readable), conn, NULL);
      g_source_set_can_recurse (conn->read_source, TRUE);
    }
  else
    {
      conn->read_source = g_pollable_input_stream_create_source (conn->in, NULL);
      g_source_set_callback (conn->read_source, G_SOURCE_FUNC (on_readable), conn, NULL);
    }
  g_source_set_static_name (conn->read_source, "[connectplugin] HTTP/2 read");
  g_source_attach (conn->read_source, conn->client->context);
}

static void
conn_fail (H2Conn     *conn,
           const char *what,
           GError     *error)
{
  g_autoptr(GError) wrapped = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE, "HTTP/2 connection %s: %s",
                                           what, error ? error->message : "closed by the server");

  g_clear_error (&error);
  conn_close (conn, wrapped);
}

/* Serializes what nghttp2 has to send into one buffer (wbuf, wlen), so a
 * call's HEADERS and DATA, or a response's WINDOW_UPDATE and the next
 * request, leave in one write and wake the server once: nghttp2 hands out
 * one frame at a time, each valid only until the next call. Stops past
 * GATHER_SIZE; a frame that large on its own is written from nghttp2's
 * buffer, not copied. The copy this costs is bounded: frames below 16 KiB
 * (a call's headers, a small message), and a large DATA frame only when a
 * small frame is already waiting, such as the HEADERS before a stream's
 * first DATA; a memcpy of that size costs less than the system call and the
 * server wake-up it saves. FALSE: nghttp2 failed and @conn is closed. */
static gboolean
conn_gather (H2Conn *conn)
{
  if (conn->gather == NULL)
    conn->gather = g_byte_array_sized_new (GATHER_SIZE);
  g_byte_array_set_size (conn->gather, 0);
  while (conn->gather->len < GATHER_SIZE)
    {
      const guint8 *data;
      gssize n = nghttp2_session_mem_send (conn->session, &data);

      if (n < 0)
        {
          conn_fail (conn, "failed", g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                                          nghttp2_strerror ((int) n)));
          return FALSE;
        }
      if (n == 0)
        break;
      if (conn->gather->len == 0 && n >= GATHER_SIZE)
        {
          conn->wbuf = data;
          conn->wlen = n;
          return TRUE;
        }
      g_byte_array_append (conn->gather, data, n);
    }
  conn->wbuf = conn->gather->data;
  conn->wlen = conn->gather->len;
  return TRUE;
}

/* Writes what nghttp2 has to send; waits for the socket when it is full.
 * May close (and free) @conn: callers return right after. */
static void
conn_flush (H2Conn *conn)
{
  if (conn->state != CONN_READY)
    return;
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      if (conn->wlen == 0 && !conn_gather (conn))
        return;
      if (conn->wlen == 0)
        break;
      n = g_pollable_output_stream_write_nonblocking (conn->out, conn->wbuf, conn->wlen, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (conn->write_source == NULL)
            {
              conn->write_source = g_pollable_output_stream_create_source (conn->out, NULL);
              g_source_set_callback (conn->write_source, G_SOURCE_FUNC (on_writable), conn, NULL);
              g_source_set_static_name (conn->write_source, "[connectplugin] HTTP/2 write");
              g_source_attach (conn->write_source, conn->client->context);
            }
          return;
        }
      if (n < 0)
        {
          conn_fail (conn, "lost", g_steal_pointer (&error));
          return;
        }
      conn->wbuf += n;
      conn->wlen -= n;
    }
  /* A connection that got GOAWAY and has no stream left is done. */
  if (conn->going_away && g_hash_table_size (conn->streams) == 0 &&
      !nghttp2_session_want_write (conn->session))
    conn_close (conn, NULL);
  else if (!nghttp2_session_want_read (conn->session) && !nghttp2_session_want_write (conn->session))
    conn_fail (conn, "closed", NULL);
}

static gboolean
on_writable (GObject  *pollable,
             gpointer  user_data)
{
  H2Conn *conn = user_data;

  g_clear_pointer (&conn->write_source, g_source_unref);
  conn_flush (conn);
  return G_SOURCE_REMOVE;
}

static gboolean
on_readable (GObject  *pollable,
             gpointer  user_data)
{
  H2Conn *conn = user_data;
  guint8 buffer[READ_BUFFER_SIZE];

  for (int i = 0; i < 4; i++)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_pollable_input_stream_read_nonblocking (conn->in, buffer, sizeof buffer, NULL, &error);
      gssize fed;

      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        break;
      if (n <= 0)
        {
          g_clear_pointer (&conn->read_source, g_source_unref);
          conn_fail (conn, "lost", g_steal_pointer (&error));
          return G_SOURCE_REMOVE;
        }
      fed = nghttp2_session_mem_recv (conn->session, buffer, n);
      if (fed < 0)
        {
          g_clear_pointer (&conn->read_source, g_source_unref);
          conn_fail (conn, "failed", g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                                          nghttp2_strerror ((int) fed)));
          return G_SOURCE_REMOVE;
        }
      if (n < (gssize) sizeof buffer)
        break;
    }
  conn_flush (conn);   /* may free conn: the source is then destroyed */
  return G_SOURCE_CONTINUE;
}

/* Ends every exchange of @conn with @error (NULL: nothing left to end)
 * and frees it. */
static void
conn_close (H2Conn       *conn,
            const GError *error)
{
  CpH2Client *client = conn->client;
  CpChannelExchange *exchange;
  GHashTableIter iter;
  H2Stream *stream;

  if (client->conn == conn)
    client->conn = NULL;
  client->draining = g_list_remove (client->draining, conn);
  conn->state = CONN_CLOSED;
  g_cancellable_cancel (conn->cancellable);
  cp_channel_exchange_destroy_source (&conn->read_source);
  cp_channel_exchange_destroy_source (&conn->write_source);

  while ((exchange = g_queue_pop_head (&conn->waiting)) != NULL)
    {
      cp_channel_exchange_h2_push_end (exchange,
                                       error ? g_error_copy (error)
                                             : g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                                    "HTTP/2 connection closed"),
                                       NULL, TRUE, FALSE);
      cp_channel_exchange_unref (exchange);
    }
  g_hash_table_iter_init (&iter, conn->streams);
  while (g_hash_table_iter_next (&iter, (gpointer *) &stream, NULL))
    {
      cp_channel_exchange_h2_push_end (stream->exchange,
                                       error ? g_error_copy (error)
                                             : g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                                    "HTTP/2 connection closed"),
                                       stream->trailers, FALSE, TRUE);
      g_hash_table_iter_remove (&iter);
    }
  g_clear_pointer (&conn->session, nghttp2_session_del);
  if (!conn->connecting)
    conn_free (conn);
}

static void
conn_free (H2Conn *conn)
{
  if (conn->io != NULL)
    g_io_stream_close (conn->io, NULL, NULL);
  if (conn->socket_conn != NULL && G_IO_STREAM (conn->socket_conn) != conn->io)
    g_io_stream_close (G_IO_STREAM (conn->socket_conn), NULL, NULL);
  g_clear_object (&conn->io);
  g_clear_object (&conn->socket_conn);
  g_clear_object (&conn->cancellable);
  g_hash_table_unref (conn->streams);
  g_clear_pointer (&conn->gather, g_byte_array_unref);
  g_free (conn->key);
  g_free (conn);
}

static void
conn_ready (H2Conn *conn)
{
  nghttp2_settings_entry settings[] = {
    { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
    { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000 },
    { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW_SIZE },
  };
  nghttp2_option *option;
  CpChannelExchange *exchange;

  nghttp2_option_new (&option);
  nghttp2_option_set_no_auto_window_update (option, 1);
  nghttp2_session_client_new2 (&conn->session, get_callbacks (), conn, option);
  nghttp2_option_del (option);
  nghttp2_submit_settings (conn->session, NGHTTP2_FLAG_NONE, settings, G_N_ELEMENTS (settings));
  nghttp2_session_set_local_window_size (conn->session, NGHTTP2_FLAG_NONE, 0, CONNECTION_WINDOW);
  conn->state = CONN_READY;
  conn->in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (conn->io));
  conn->out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (conn->io));
  while ((exchange = g_queue_pop_head (&conn->waiting)) != NULL)
    conn_open_stream (conn, exchange);
  conn_watch_read (conn);
  conn_flush (conn);
}

/* The TLS server did not pick h2: this and every later exchange of the
 * channel go to libsoup. */
static void
conn_fall_back (H2Conn *conn)
{
  CpChannelExchange *exchange;

  conn->client->h1_only = TRUE;
  while ((exchange = g_queue_pop_head (&conn->waiting)) != NULL)
    {
      cp_channel_exchange_h2_push_fallback (exchange);
      cp_channel_exchange_unref (exchange);
    }
  conn_close (conn, NULL);
}

static void
on_connected (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  H2Conn *conn = user_data;
  g_autoptr(GError) error = NULL;
  GSocketConnection *socket_conn;
  GIOStream *io;

  socket_conn = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  conn->connecting = FALSE;
  if (conn->state == CONN_CLOSED)
    {
      /* Closed while connecting (the client shut down). */
      conn->socket_conn = socket_conn;
      conn_free (conn);
      return;
    }
  if (socket_conn == NULL)
    {
      g_autoptr(GError) call_error = cp_channel_exchange_transport_error (error);
      CpChannelExchange *exchange;
      gboolean not_sent = cp_channel_exchange_is_connect_error (error);

      while ((exchange = g_queue_pop_head (&conn->waiting)) != NULL)
        {
          cp_channel_exchange_h2_push_end (exchange, g_error_copy (call_error), NULL, not_sent, FALSE);
          cp_channel_exchange_unref (exchange);
        }
      conn_close (conn, call_error);
      return;
    }
  conn->socket_conn = socket_conn;
  io = G_IO_STREAM (socket_conn);
  if (G_IS_TCP_WRAPPER_CONNECTION (socket_conn))
    io = g_tcp_wrapper_connection_get_base_io_stream (G_TCP_WRAPPER_CONNECTION (socket_conn));
  conn->io = g_object_ref (io);
  if (G_IS_TLS_CONNECTION (io) &&
      g_strcmp0 (g_tls_connection_get_negotiated_protocol (G_TLS_CONNECTION (io)), "h2") != 0)
    {
      conn_fall_back (conn);
      return;
    }
  {
    g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address (socket_conn, NULL);

    if (G_IS_INET_SOCKET_ADDRESS (remote))
      g_socket_set_option (g_socket_connection_get_socket (socket_conn), IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  }
  conn_ready (conn);
}

/* TLS: the channel's database and client certificate, ALPN h2. */
static void
on_client_event (GSocketClient      *socket_client,
                 GSocketClientEvent  event,
                 GSocketConnectable *connectable,
                 GIOStream          *connection,
                 gpointer            user_data)
{
  CpH2Client *client = user_data;
  const char * const protocols[] = { "h2", "http/1.1", NULL };
  GTlsDatabase *database = cp_channel_get_tls_database (client->channel);
  GTlsCertificate *certificate = cp_channel_get_tls_certificate (client->channel);

  if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING || !G_IS_TLS_CLIENT_CONNECTION (connection))
    return;
  g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (connection), protocols);
  if (database != NULL)
    g_tls_connection_set_database (G_TLS_CONNECTION (connection), database);
  if (certificate != NULL)
    g_tls_connection_set_certificate (G_TLS_CONNECTION (connection), certificate);
}

static H2Conn *
conn_new (CpH2Client *client)
{
  H2Conn *conn = g_new0 (H2Conn, 1);
  g_autoptr(GSocketClient) socket_client = g_socket_client_new ();
  g_autoptr(GSocketConnectable) connectable = NULL;
  gboolean tls = g_strcmp0 (client->scheme, "https") == 0;

  conn->client = client;
  conn->state = CONN_CONNECTING;
  conn->key = g_strconcat (client->scheme, "://", client->authority, NULL);
  conn->cancellable = g_cancellable_new ();
  conn->streams = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) stream_free, NULL);
  g_queue_init (&conn->waiting);
  g_atomic_int_inc (&client->n_connects);

  if (client->connectable != NULL)
    connectable = g_object_ref (client->connectable);
  else
    connectable = g_network_address_parse_uri (client->base, tls ? 443 : 80, NULL);
  /* h2c cannot go through an HTTP proxy; nor do we send TLS through one.
   * (A resolver answering "direct" rather than enable-proxy FALSE: GLib
   * 2.74 leaks the address of every connection made without a proxy
   * enumerator.) */
  g_autoptr(GProxyResolver) direct = g_simple_proxy_resolver_new (NULL, NULL);
  g_socket_client_set_proxy_resolver (socket_client, direct);
  if (tls)
    {
      g_socket_client_set_tls (socket_client, TRUE);
      g_signal_connect (socket_client, "event", G_CALLBACK (on_client_event), client);
    }
  if (connectable == NULL)
    {
      g_autoptr(GError) error = g_error_new (CP_ERROR, CP_ERROR_INTERNAL, "invalid URL %s", client->base);

      conn_close (conn, error);
      return NULL;
    }
  conn->connecting = TRUE;
  g_socket_client_connect_async (socket_client, connectable, conn->cancellable, on_connected, conn);
  return conn;
}

/* ------------------------------------------------------------------------ */
/* Commands (the client's thread)                                            */

/* Parses the channel's base URL when it changed (cp_channel_rebase ()). */
static gboolean
client_update_base (CpH2Client *client)
{
  g_autofree char *base = cp_channel_dup_http_base (client->channel);
  g_autoptr(GUri) uri = NULL;
  gsize len;

  if (g_strcmp0 (base, client->base) == 0)
    return TRUE;
  uri = g_uri_parse (base, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL)
    return FALSE;
  g_free (client->base);
  g_free (client->scheme);
  g_free (client->authority);
  g_free (client->prefix);
  client->base = g_steal_pointer (&base);
  client->scheme = g_strdup (g_uri_get_scheme (uri));
  if (g_uri_get_port (uri) > 0)
    client->authority = g_strdup_printf (strchr (g_uri_get_host (uri), ':') ? "[%s]:%d" : "%s:%d",
                                         g_uri_get_host (uri), g_uri_get_port (uri));
  else
    client->authority = g_strdup (g_uri_get_host (uri));
  client->prefix = g_strdup (g_uri_get_path (uri));
  len = strlen (client->prefix);
  while (len > 0 && client->prefix[len - 1] == '/')
    client->prefix[--len] = '\0';
  return TRUE;
}

static void
client_submit (CpH2Client        *client,
               CpChannelExchange *exchange)
{
  g_autofree char *key = NULL;

  if (client->h1_only)
    {
      cp_channel_exchange_h2_push_fallback (exchange);
      cp_channel_exchange_unref (exchange);
      return;
    }
  if (!client_update_base (client))
    {
      cp_channel_exchange_h2_push_end (exchange, g_error_new (CP_ERROR, CP_ERROR_INTERNAL, "invalid URL"),
                                       NULL, TRUE, FALSE);
      cp_channel_exchange_unref (exchange);
      return;
    }
  key = g_strconcat (client->scheme, "://", client->authority, NULL);
  if (client->conn != NULL && g_strcmp0 (client->conn->key, key) != 0)
    {
      /* Rebased: the old connection finishes its streams. */
      client->conn->going_away = TRUE;
      client->draining = g_list_prepend (client->draining, client->conn);
      client->conn = NULL;
    }
  if (client->conn == NULL)
    client->conn = conn_new (client);
  if (client->conn == NULL)
    {
      cp_channel_exchange_h2_push_end (exchange, g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                              "cannot connect to %s", key),
                                       NULL, TRUE, FALSE);
      cp_channel_exchange_unref (exchange);
      return;
    }
  if (client->conn->state == CONN_CONNECTING)
    g_queue_push_tail (&client->conn->waiting, exchange);
  else
    conn_open_stream (client->conn, exchange);
}

/* Queued request body or a resumed consumer. */
static void
client_kick (CpH2Client        *client,
             CpChannelExchange *exchange)
{
  H2Stream *stream = exchange->h2_stream;
  gsize unconsumed;

  if (stream == NULL || stream->conn->session == NULL)
    return;
  if (stream->deferred)
    {
      stream->deferred = FALSE;
      nghttp2_session_resume_data (stream->conn->session, stream->id);
    }
  g_mutex_lock (&exchange->lock);
  unconsumed = exchange->h2_hold ? 0 : exchange->h2_unconsumed;
  exchange->h2_unconsumed -= unconsumed;
  g_mutex_unlock (&exchange->lock);
  if (unconsumed > 0)
    nghttp2_session_consume (stream->conn->session, stream->id, unconsumed);
}

static void
client_cancel (CpH2Client        *client,
               CpChannelExchange *exchange)
{
  H2Stream *stream = exchange->h2_stream;

  if (client->conn != NULL && g_queue_remove (&client->conn->waiting, exchange))
    {
      cp_channel_exchange_unref (exchange);
      return;
    }
  if (stream == NULL || stream->conn->session == NULL)
    return;
  nghttp2_submit_rst_stream (stream->conn->session, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_CANCEL);
}

static gboolean
on_wake (gpointer user_data)
{
  CpH2Client *client = user_data;
  GQueue commands = G_QUEUE_INIT;
  GHashTable *touched = NULL;
  Cmd *cmd;

  g_mutex_lock (&client->lock);
  commands = client->commands;
  g_queue_init (&client->commands);
  g_clear_pointer (&client->wake_source, g_source_unref);
  g_mutex_unlock (&client->lock);

  while ((cmd = g_queue_pop_head (&commands)) != NULL)
    {
      H2Stream *stream;

      switch (cmd->kind)
        {
        case CMD_SUBMIT:
          client_submit (client, cmd->exchange);   /* takes the reference */
          cmd->exchange = NULL;
          break;
        case CMD_KICK:
          client_kick (client, cmd->exchange);
          break;
        case CMD_CANCEL:
          client_cancel (client, cmd->exchange);
          break;
        }
      if (cmd->exchange != NULL && (stream = cmd->exchange->h2_stream) != NULL)
        {
          if (touched == NULL)
            touched = g_hash_table_new (NULL, NULL);
          g_hash_table_add (touched, stream->conn);
        }
      g_clear_pointer (&cmd->exchange, cp_channel_exchange_unref);
      g_free (cmd);
    }
  /* Flush every connection that may have something to send. */
  if (client->conn != NULL)
    conn_flush (client->conn);
  if (touched != NULL)
    {
      GHashTableIter iter;
      H2Conn *conn;

      g_hash_table_iter_init (&iter, touched);
      while (g_hash_table_iter_next (&iter, (gpointer *) &conn, NULL))
        if (conn != client->conn && g_list_find (client->draining, conn) != NULL)
          conn_flush (conn);
      g_hash_table_unref (touched);
    }
  return G_SOURCE_REMOVE;
}

static void
client_post (CpH2Client        *client,
             CmdKind            kind,
             CpChannelExchange *exchange)
{
  Cmd *cmd = g_new0 (Cmd, 1);

  cmd->kind = kind;
  cmd->exchange = cp_channel_exchange_ref (exchange);
  g_mutex_lock (&client->lock);
  g_queue_push_tail (&client->commands, cmd);
  if (client->wake_source == NULL)
    {
      client->wake_source = g_idle_source_new ();
      g_source_set_priority (client->wake_source, G_PRIORITY_DEFAULT);
      g_source_set_callback (client->wake_source, on_wake, client, NULL);
      g_source_set_static_name (client->wake_source, "[connectplugin] HTTP/2 commands");
      g_source_attach (client->wake_source, client->context);
    }
  g_mutex_unlock (&client->lock);
}

void
cp_h2_client_submit (CpH2Client        *client,
                     CpChannelExchange *exchange)
{
  client_post (client, CMD_SUBMIT, exchange);
}

void
cp_h2_client_kick (CpH2Client        *client,
                   CpChannelExchange *exchange)
{
  client_post (client, CMD_KICK, exchange);
}

void
cp_h2_client_cancel (CpH2Client        *client,
                     CpChannelExchange *exchange)
{
  client_post (client, CMD_CANCEL, exchange);
}

guint
cp_h2_client_get_n_connects (CpH2Client *client)
{
  return g_atomic_int_get (&client->n_connects);
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */

static void
client_free_memory (CpH2Client *client)
{
  g_clear_object (&client->connectable);
  g_main_loop_unref (client->loop);
  g_main_context_unref (client->context);
  g_mutex_clear (&client->lock);
  g_free (client->base);
  g_free (client->scheme);
  g_free (client->authority);
  g_free (client->prefix);
  g_free (client);
}

static gpointer
client_thread (gpointer user_data)
{
  CpH2Client *client = user_data;
  gboolean free_here;
  Cmd *cmd;

  g_main_context_push_thread_default (client->context);
  g_main_loop_run (client->loop);

  /* Shut down: the channel is gone, so are its exchanges' callers. */
  while (client->draining != NULL)
    conn_close (client->draining->data, NULL);
  if (client->conn != NULL)
    conn_close (client->conn, NULL);
  g_mutex_lock (&client->lock);
  cp_channel_exchange_destroy_source (&client->wake_source);
  while ((cmd = g_queue_pop_head (&client->commands)) != NULL)
    {
      cp_channel_exchange_unref (cmd->exchange);
      g_free (cmd);
    }
  free_here = client->free_in_thread;
  g_mutex_unlock (&client->lock);
  /* Let pending connects and closes finish. */
  while (g_main_context_pending (client->context))
    g_main_context_iteration (client->context, FALSE);
  g_main_context_pop_thread_default (client->context);
  if (free_here)
    client_free_memory (client);
  return NULL;
}

CpH2Client *
cp_h2_client_new (CpChannel          *channel,
                  GSocketConnectable *connectable,
                  gboolean            direct)
{
  CpH2Client *client = g_new0 (CpH2Client, 1);

  client->channel = channel;
  client->connectable = connectable ? g_object_ref (connectable) : NULL;
  client->direct = direct;
  client->context = g_main_context_new ();
  client->loop = g_main_loop_new (client->context, FALSE);
  g_mutex_init (&client->lock);
  g_queue_init (&client->commands);
  client->thread = g_thread_new ("cp-h2-client", client_thread, client);
  return client;
}

static gboolean
quit_loop (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

void
cp_h2_client_free (CpH2Client *client)
{
  GSource *source = g_idle_source_new ();

  g_source_set_callback (source, quit_loop, g_main_loop_ref (client->loop),
                         (GDestroyNotify) g_main_loop_unref);
  g_source_attach (source, client->context);
  g_source_unref (source);
  if (g_thread_self () == client->thread)
    {
      /* The last reference to the channel went with an exchange the
       * thread released: it frees the client once its loop returns. */
      g_mutex_lock (&client->lock);
      client->free_in_thread = TRUE;
      g_mutex_unlock (&client->lock);
      g_thread_unref (client->thread);
      return;
    }
  g_thread_join (client->thread);
  client_free_memory (client);
}

/* ------------------------------------------------------------------------ */
/* Fuzzing                                                                   */

/* The server half of one connection as @data, without a socket or a
 * thread: a session with the callbacks above opens one stream for
 * @exchange (not started, owned by the caller), reads @data as the
 * server's bytes, then the connection closes. The exchange's queued events
 * say what came out (cp_channel_exchange_h2_*). */
void
cp_h2_fuzz_server_bytes (CpChannelExchange *exchange,
                         const guint8      *data,
                         gsize              size)
{
  CpH2Client client = { 0 };
  H2Conn *conn = g_new0 (H2Conn, 1);
  nghttp2_option *option;
  const guint8 *out;

  client.scheme = (char *) "http";
  client.authority = (char *) "fuzz";
  client.prefix = (char *) "";
  conn->client = &client;
  conn->key = g_strdup ("http://fuzz");
  conn->cancellable = g_cancellable_new ();
  conn->streams = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) stream_free, NULL);
  g_queue_init (&conn->waiting);
  client.conn = conn;
  nghttp2_option_new (&option);
  nghttp2_option_set_no_auto_window_update (option, 1);
  nghttp2_session_client_new2 (&conn->session, get_callbacks (), conn, option);
  nghttp2_option_del (option);
  conn->state = CONN_READY;
  conn_open_stream (conn, cp_channel_exchange_ref (exchange));
  while (nghttp2_session_mem_send (conn->session, &out) > 0)
    ;
  if (conn->session != NULL && nghttp2_session_mem_recv (conn->session, data, size) >= 0)
    while (nghttp2_session_mem_send (conn->session, &out) > 0)
      ;
  conn_close (conn, NULL);
}
