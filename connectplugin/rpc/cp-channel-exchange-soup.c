/* cp-channel-exchange-soup.c: the libsoup transport of CpChannelExchange
 * (see cp-channel-exchange.c): sends the request on the channel's
 * SoupSession and reads the response body, without a main-loop iteration
 * per read where the body stream is pollable
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-channel-exchange-impl-private.h"
#include "cp-channel-private.h"
#include "cp-error.h"

#define READ_CHUNK_SIZE  (64 * 1024)

/* A transport error as the call's: cancelled I/O stays
 * G_IO_ERROR_CANCELLED (the caller cancelled, as in GIO), any other failure
 * is `unavailable`. */
GError *
cp_channel_exchange_transport_error (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the call was cancelled");
  if (error->domain == CP_ERROR)
    return g_error_copy (error);
  return g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE, "%s", error->message);
}

/* Whether @error is GSocketClient's failure to make a connection (connect()
 * or name resolution): libsoup reports it from soup_session_send_finish ()
 * before any byte of the request was written. Not a TLS handshake error
 * (the server's TCP stack was reached), not an I/O error on a reused
 * connection (a request may have been written). */
gboolean
cp_channel_exchange_is_connect_error (const GError *error)
{
  if (error->domain == G_RESOLVER_ERROR)
    return TRUE;
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE) ||
         /* a unix socket path without a socket */
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

static void
close_stream_done (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
}

/* Closes the body stream: after EOF this lets libsoup reuse the
 * connection; otherwise (cancelled cancellable) it aborts the exchange and
 * libsoup drops the connection. An unclosed stream would be closed by its
 * finalizer, which reads the rest of the body synchronously. */
static void
close_body_stream (CpChannelExchange *self)
{
  g_autoptr(GInputStream) stream = g_steal_pointer (&self->stream);

  cp_channel_exchange_destroy_source (&self->read_source);
  if (stream == NULL || g_input_stream_is_closed (stream))
    return;
  /* After EOF there is nothing left to read: closing cannot block, and
   * doing it now hands the connection back to the session before the next
   * call is queued (an asynchronous close takes two more iterations). */
  if (self->eof && !self->read_pending)
    {
      g_input_stream_close (stream, NULL, NULL);
      return;
    }
  g_input_stream_close_async (stream, G_PRIORITY_DEFAULT,
                              self->eof ? NULL : self->cancellable,
                              close_stream_done, NULL);
}

static void read_next (CpChannelExchange *self);

/* libsoup 3.2.3 reports a chunked body cut at a chunk boundary (the
 * connection lost before the terminating zero-size chunk) as a normal end
 * of body: in http1/soup-body-input-stream.c the CHUNK_SIZE state returns
 * the 0 of soup_filter_input_stream_read_line() as EOF, while a cut inside
 * a chunk gives G_IO_ERROR_PARTIAL_INPUT. No public signal, property or
 * metric (response_body_bytes_received includes an unknown amount of
 * chunk framing) tells the two ends apart. The socket does: after the
 * zero-size chunk of a keep-alive response the connection is still open
 * with nothing to read; after a cut, the server's FIN (or RST) is what
 * ended the body, so the socket is readable and a peek returns 0 or an
 * error. Responses announcing "Connection: close" are left out: their
 * server may close right after a complete body. So this is only a hint,
 * used to choose the error of a stream whose body lacks EndStream
 * (`unavailable`, as connect-go maps a lost connection, rather than
 * `internal`), never to fail a call that decoded fine.
 *
 * The socket is found under libsoup's body streams (GFilterInputStreams
 * down to the connection's GSocketInputStream, whose "socket" property is
 * readable). Over TLS (AutoMTLS of launched plugins, for one) the bottom
 * stream is the GTlsConnection's, without a socket: tls_stream_lost ()
 * asks it instead. Must run before the body stream is closed (which hands
 * the connection back to the session). */
/* The bottom stream of a TLS connection: no peek there, but after a
 * complete keep-alive response it is idle (not readable: FALSE, nothing
 * read), while after a cut it reads the end (0) or an error (the peer
 * closed without close_notify). An HTTP/1.1 server sends nothing unasked,
 * so the one byte read cannot be a response's. */
static gboolean
tls_stream_lost (GInputStream *stream)
{
  GPollableInputStream *pollable;
  g_autoptr(GError) error = NULL;
  guint8 byte;
  gssize n;

  if (!G_IS_POLLABLE_INPUT_STREAM (stream))
    return FALSE;
  pollable = G_POLLABLE_INPUT_STREAM (stream);
  if (!g_pollable_input_stream_can_poll (pollable) ||
      !g_pollable_input_stream_is_readable (pollable))
    return FALSE;
  n = g_pollable_input_stream_read_nonblocking (pollable, &byte, 1, NULL, &error);
  if (n < 0)
    return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  return n == 0;
}

static gboolean
body_connection_lost (CpChannelExchange *self)
{
  GInputStream *stream = self->stream;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  GParamSpec *pspec;
  GInputVector vector;
  gint flags = G_SOCKET_MSG_PEEK;
  guint8 byte;
  gssize n;

  if (stream == NULL || self->response_headers == NULL ||
      soup_message_headers_get_encoding (self->response_headers) != SOUP_ENCODING_CHUNKED ||
      soup_message_headers_header_contains (self->response_headers, "Connection", "close"))
    return FALSE;
  while (G_IS_FILTER_INPUT_STREAM (stream))
    stream = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (stream), "socket");
  if (pspec == NULL || !(pspec->flags & G_PARAM_READABLE) ||
      !g_type_is_a (pspec->value_type, G_TYPE_SOCKET))
    return tls_stream_lost (stream);
  g_object_get (stream, "socket", &socket, NULL);
  if (socket == NULL || g_socket_is_closed (socket))
    return FALSE;
  /* Not readable: open and idle (and a peek could block on a blocking
   * socket). */
  if (g_socket_condition_check (socket, G_IO_IN | G_IO_HUP | G_IO_ERR) == 0)
    return FALSE;
  vector.buffer = &byte;
  vector.size = 1;
  n = g_socket_receive_message (socket, NULL, &vector, 1, NULL, NULL, &flags, NULL, &error);
  if (n < 0)
    return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  return n == 0;
}

/* The body stream reported its end (before it is closed). */
static void
body_ended (CpChannelExchange *self)
{
  self->eof = TRUE;
  self->connection_lost = body_connection_lost (self);
  cp_channel_exchange_finish (self, NULL, TRUE);
}

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(CpChannelExchange) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  self->read_pending = FALSE;
  if (self->finished)
    {
      close_body_stream (self);
      return;
    }
  if (bytes == NULL)
    {
      cp_channel_exchange_finish (self, cp_channel_exchange_transport_error (error), TRUE);
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    {
      body_ended (self);
      return;
    }
  if (self->callbacks.chunk)
    self->callbacks.chunk (self, bytes, self->user_data);
  if (!self->finished && !self->paused)
    read_next (self);
}

static gboolean
on_readable (GObject  *stream,
             gpointer  user_data)
{
  CpChannelExchange *self = user_data;

  g_clear_pointer (&self->read_source, g_source_unref);
  self->read_pending = FALSE;
  if (self->finished)
    close_body_stream (self);
  else if (!self->paused)
    read_next (self);
  /* Removing the source drops its reference to the exchange: last. */
  return G_SOURCE_REMOVE;
}

/* @now: also fire in the next iteration, readable or not. */
static void
wait_readable (CpChannelExchange *self,
               gboolean           now)
{
  self->read_pending = TRUE;
  self->read_source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->stream), NULL);
  g_source_set_callback (self->read_source, G_SOURCE_FUNC (on_readable),
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->read_source, "[connectplugin] response body");
  if (now)
    g_source_set_ready_time (self->read_source, 0);
  g_source_attach (self->read_source, self->context);
}

/* Reads what a pollable body stream (libsoup's HTTP/1 bodies) holds now,
 * without a GTask and a main-loop iteration per read; waits for more with
 * a pollable source. */
static void
read_available (CpChannelExchange *self)
{
  g_autoptr(CpChannelExchange) hold = cp_channel_exchange_ref (self);
  GPollableInputStream *pollable = G_POLLABLE_INPUT_STREAM (self->stream);
  guint8 buffer[16 * 1024];

  while (!self->finished && !self->paused && self->stream != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) bytes = NULL;
      gssize n;

      n = g_pollable_input_stream_read_nonblocking (pollable, buffer, sizeof buffer,
                                                    self->cancellable, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          wait_readable (self, FALSE);
          return;
        }
      if (n < 0)
        {
          cp_channel_exchange_finish (self, cp_channel_exchange_transport_error (error), TRUE);
          return;
        }
      if (n == 0)
        {
          body_ended (self);
          return;
        }
      bytes = g_bytes_new (buffer, n);
      if (self->callbacks.chunk)
        self->callbacks.chunk (self, bytes, self->user_data);
    }
}

/* @in_loop: called from a callback of the exchange's own I/O, so chunks may
 * be delivered right away; otherwise (resume) they wait for the loop. */
static void
read_next_full (CpChannelExchange *self,
                gboolean           in_loop)
{
  if (self->read_pending || self->stream == NULL)
    return;
  if (G_IS_POLLABLE_INPUT_STREAM (self->stream) &&
      g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (self->stream)))
    {
      if (in_loop)
        read_available (self);
      else
        wait_readable (self, TRUE);
      return;
    }
  self->read_pending = TRUE;
  g_input_stream_read_bytes_async (self->stream, READ_CHUNK_SIZE, G_PRIORITY_DEFAULT,
                                   self->cancellable, on_read, cp_channel_exchange_ref (self));
}

static void
read_next (CpChannelExchange *self)
{
  read_next_full (self, TRUE);
}

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(CpChannelExchange) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;

  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (self->finished)
    {
      self->stream = g_steal_pointer (&stream);
      close_body_stream (self);
      return;
    }
  if (stream == NULL)
    {
      self->not_sent = cp_channel_exchange_is_connect_error (error);
      cp_channel_exchange_finish (self, cp_channel_exchange_transport_error (error), TRUE);
      return;
    }

  self->stream = g_steal_pointer (&stream);
  self->status = soup_message_get_status (self->msg);
  self->reason = g_strdup (soup_message_get_reason_phrase (self->msg));
  self->response_headers = soup_message_headers_ref (soup_message_get_response_headers (self->msg));
  self->head_received = TRUE;
  if (self->callbacks.head)
    self->callbacks.head (self, self->user_data);
  if (!self->finished && !self->paused)
    read_next (self);
}

static void
copy_request_header (const char *name,
                     const char *value,
                     gpointer    user_data)
{
  if (g_ascii_strcasecmp (name, "Content-Type") != 0)
    soup_message_headers_append (user_data, name, value);
}

/* libsoup's "finished": the message has left the session's queue, and
 * its connection is back in the pool (idle) or closed. */
static void
on_msg_finished (SoupMessage *msg,
                 gpointer     user_data)
{
  CpChannelExchange *self = user_data;

  self->msg_finished = TRUE;
}

gboolean
cp_channel_exchange_transport_busy (CpChannelExchange *self)
{
  return self->msg != NULL && !self->msg_finished;
}


/* ---- a streamed request body ----
 *
 * CpBodyInputStream is the request body libsoup sends with chunked
 * transfer-encoding when the exchange streams its body
 * (cp_channel_exchange_set_request_half_duplex ()): a GPollableInputStream
 * over the exchange's queue of written bytes (h2_out, shared with the
 * HTTP/2 transport), so libsoup's asynchronous splice reads it from the
 * exchange's context without a thread, and waits (pollable source) while
 * nothing is queued. Reads take the bytes out of the queue, which is how
 * the writer learns that the transport can take more (progress callback).
 * The stream does not reference the exchange (which holds the message that
 * holds the stream): the exchange detaches it when it aborts or goes away,
 * and reads then fail. Thread-safe: the wake comes from the owner context,
 * reads from libsoup's. */

#define CP_TYPE_BODY_INPUT_STREAM (cp_body_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (CpBodyInputStream, cp_body_input_stream, CP, BODY_INPUT_STREAM, GInputStream)

struct _CpBodyInputStream
{
  GInputStream parent_instance;

  GMutex lock;                   /* taken before the exchange's */
  GCond cond;                    /* blocking reads wait on it */
  CpChannelExchange *exchange;   /* not referenced; NULL once detached */
  GPtrArray *sources;            /* pollable sources waiting (not referenced) */
};

static void cp_body_input_stream_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpBodyInputStream, cp_body_input_stream, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      cp_body_input_stream_pollable_init))

typedef struct {
  GSource source;
  CpBodyInputStream *stream;     /* referenced */
} BodySource;

static gboolean
body_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  BodySource *body_source = (BodySource *) source;

  g_source_set_ready_time (source, -1);
  if (callback == NULL)
    return G_SOURCE_CONTINUE;
  return ((GPollableSourceFunc) (void (*) (void)) callback) (G_OBJECT (body_source->stream),
                                                             user_data);
}

static void
body_source_finalize (GSource *source)
{
  BodySource *body_source = (BodySource *) source;

  g_mutex_lock (&body_source->stream->lock);
  g_ptr_array_remove_fast (body_source->stream->sources, source);
  g_mutex_unlock (&body_source->stream->lock);
  g_object_unref (body_source->stream);
}

static GSourceFuncs body_source_funcs = {
  NULL, NULL, body_source_dispatch, body_source_finalize, NULL, NULL,
};

/* With self->lock held. */
static gboolean
body_readable_locked (CpBodyInputStream *self)
{
  gboolean readable;

  if (self->exchange == NULL)
    return TRUE;
  g_mutex_lock (&self->exchange->lock);
  readable = !g_queue_is_empty (&self->exchange->h2_out) || self->exchange->h2_out_ended;
  g_mutex_unlock (&self->exchange->lock);
  return readable;
}

/* Any thread: bytes or the end were queued, or the exchange went away. */
static void
body_stream_wake (CpBodyInputStream *self)
{
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->sources->len; i++)
    g_source_set_ready_time (g_ptr_array_index (self->sources, i), 0);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
body_stream_detach (CpBodyInputStream *self)
{
  g_mutex_lock (&self->lock);
  self->exchange = NULL;
  g_mutex_unlock (&self->lock);
  body_stream_wake (self);
}

static gssize
body_read_nonblocking (GPollableInputStream  *pollable,
                       void                  *buffer,
                       gsize                  count,
                       GError               **error)
{
  CpBodyInputStream *self = CP_BODY_INPUT_STREAM (pollable);
  gboolean eof = FALSE;
  gssize n;

  g_mutex_lock (&self->lock);
  if (self->exchange == NULL)
    {
      g_mutex_unlock (&self->lock);
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "the call ended");
      return -1;
    }
  n = cp_channel_exchange_h2_read_body (self->exchange, buffer, count, &eof);
  g_mutex_unlock (&self->lock);
  if (n < 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, "no request body queued yet");
      return -1;
    }
  return n;
}

static gboolean
body_is_readable (GPollableInputStream *pollable)
{
  CpBodyInputStream *self = CP_BODY_INPUT_STREAM (pollable);
  gboolean readable;

  g_mutex_lock (&self->lock);
  readable = body_readable_locked (self);
  g_mutex_unlock (&self->lock);
  return readable;
}

static gboolean
body_can_poll (GPollableInputStream *pollable)
{
  return TRUE;
}

static GSource *
body_create_source (GPollableInputStream *pollable,
                    GCancellable         *cancellable)
{
  CpBodyInputStream *self = CP_BODY_INPUT_STREAM (pollable);
  GSource *source = g_source_new (&body_source_funcs, sizeof (BodySource));

  g_source_set_static_name (source, "[connectplugin] request body");
  ((BodySource *) source)->stream = g_object_ref (self);
  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->sources, source);
  if (body_readable_locked (self))
    g_source_set_ready_time (source, 0);
  g_mutex_unlock (&self->lock);
  if (cancellable != NULL)
    {
      g_autoptr(GSource) cancel = g_cancellable_source_new (cancellable);

      g_source_set_dummy_callback (cancel);
      g_source_add_child_source (source, cancel);
    }
  return source;
}

/* Blocking reads (libsoup's are asynchronous; this is for completeness):
 * wait for the wake, checking @cancellable now and then. */
static gssize
body_read (GInputStream  *stream,
           void          *buffer,
           gsize          count,
           GCancellable  *cancellable,
           GError       **error)
{
  CpBodyInputStream *self = CP_BODY_INPUT_STREAM (stream);

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      gssize n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return -1;
      n = body_read_nonblocking (G_POLLABLE_INPUT_STREAM (self), buffer, count, &local_error);
      if (n >= 0 || !g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (n < 0)
            g_propagate_error (error, g_steal_pointer (&local_error));
          return n;
        }
      g_mutex_lock (&self->lock);
      if (!body_readable_locked (self))
        g_cond_wait_until (&self->cond, &self->lock, g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND);
      g_mutex_unlock (&self->lock);
    }
}

static gboolean
body_close (GInputStream  *stream,
            GCancellable  *cancellable,
            GError       **error)
{
  return TRUE;
}

static void
cp_body_input_stream_finalize (GObject *object)
{
  CpBodyInputStream *self = CP_BODY_INPUT_STREAM (object);

  g_ptr_array_unref (self->sources);
  g_cond_clear (&self->cond);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (cp_body_input_stream_parent_class)->finalize (object);
}

static void
cp_body_input_stream_class_init (CpBodyInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = cp_body_input_stream_finalize;
  stream_class->read_fn = body_read;
  stream_class->close_fn = body_close;
}

static void
cp_body_input_stream_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = body_can_poll;
  iface->is_readable = body_is_readable;
  iface->create_source = body_create_source;
  iface->read_nonblocking = body_read_nonblocking;
}

static void
cp_body_input_stream_init (CpBodyInputStream *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->sources = g_ptr_array_new ();
}

static GInputStream *
cp_body_input_stream_new (CpChannelExchange *exchange)
{
  CpBodyInputStream *self = g_object_new (CP_TYPE_BODY_INPUT_STREAM, NULL);

  self->exchange = exchange;
  return G_INPUT_STREAM (self);
}

void
cp_channel_exchange_soup_body_wake (CpChannelExchange *self)
{
  if (self->body_stream != NULL)
    body_stream_wake (CP_BODY_INPUT_STREAM (self->body_stream));
}

static void
detach_body_stream (CpChannelExchange *self)
{
  if (self->body_stream != NULL)
    body_stream_detach (CP_BODY_INPUT_STREAM (self->body_stream));
}

/* libsoup carries HTTP/1.1 only: HTTP/2 is our own transport
 * (cp-channel-exchange-h2.c, CpChannel:http-version). libsoup 3.2 offers h2
 * by ALPN and has no public way to stop it (soup_message_set_force_http1 ()
 * came in 3.4); its HTTP/2 loses error answers and trips its own checks
 * against servers that take h2. Its TLS connection is handed to us before
 * the handshake, so we narrow the offer there. */
static void
on_network_event (SoupMessage        *msg,
                  GSocketClientEvent  event,
                  GIOStream          *connection,
                  gpointer            user_data)
{
  static const char * const http1[] = { "http/1.1", NULL };

  if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING && G_IS_TLS_CONNECTION (connection))
    g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (connection), http1);
}

void
cp_channel_exchange_soup_start (CpChannelExchange *self)
{
  g_autofree char *base = cp_channel_dup_soup_base (self->channel);
  g_autofree char *uri = g_strconcat (base, self->path_and_query, NULL);

  self->msg = soup_message_new (self->method, uri);
  if (self->msg == NULL)
    {
      cp_channel_exchange_finish_later (self, g_error_new (CP_ERROR, CP_ERROR_INTERNAL, "invalid URL %s", uri));
      return;
    }
  /* IDEMPOTENT lets libsoup reuse keep-alive connections, and re-send a
   * request whose reused connection turned out closed: not a streamed body,
   * whose bytes are gone once read, so it gets a connection of its own. */
  soup_message_add_flags (self->msg, SOUP_MESSAGE_NO_REDIRECT);
  if (!self->request_streaming)
    soup_message_add_flags (self->msg, SOUP_MESSAGE_IDEMPOTENT);
  g_signal_connect (self->msg, "network-event", G_CALLBACK (on_network_event), NULL);
  if (cp_channel_get_tls_certificate (self->channel) != NULL)
    soup_message_set_tls_client_certificate (self->msg,
                                             cp_channel_get_tls_certificate (self->channel));
  g_signal_connect (self->msg, "finished", G_CALLBACK (on_msg_finished), self);
  soup_message_headers_foreach (self->request_headers, copy_request_header,
                                soup_message_get_request_headers (self->msg));
  if (self->request_streaming)
    {
      SoupMessageHeaders *request_headers = soup_message_get_request_headers (self->msg);

      self->body_stream = cp_body_input_stream_new (self);
      soup_message_set_request_body (self->msg,
                                     soup_message_headers_get_one (self->request_headers,
                                                                   "Content-Type"),
                                     self->body_stream, -1);
      soup_message_headers_set_encoding (request_headers, SOUP_ENCODING_CHUNKED);
    }
  else if (self->body != NULL)
    soup_message_set_request_body_from_bytes (self->msg,
                                              soup_message_headers_get_one (self->request_headers,
                                                                            "Content-Type"),
                                              self->body);

  soup_session_send_async (self->sync_pool ? cp_channel_get_sync_session (self->channel)
                                            : cp_channel_get_session (self->channel),
                           self->msg,
                           G_PRIORITY_DEFAULT, self->cancellable, on_sent,
                           cp_channel_exchange_ref (self));
}

void
cp_channel_exchange_soup_abort (CpChannelExchange *self)
{
  detach_body_stream (self);
  if (self->read_source != NULL)
    {
      cp_channel_exchange_destroy_source (&self->read_source);
      self->read_pending = FALSE;
    }
  if (self->stream != NULL && !self->read_pending)
    close_body_stream (self);
}

void
cp_channel_exchange_soup_end (CpChannelExchange *self)
{
  close_body_stream (self);
}

void
cp_channel_exchange_soup_resume (CpChannelExchange *self)
{
  read_next_full (self, FALSE);
}

void
cp_channel_exchange_soup_clear (CpChannelExchange *self)
{
  detach_body_stream (self);
  g_clear_object (&self->body_stream);
  g_clear_object (&self->stream);
  if (self->msg != NULL)
    g_signal_handlers_disconnect_by_data (self->msg, self);
  g_clear_object (&self->msg);
}
