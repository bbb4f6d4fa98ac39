/* cp-channel-exchange.c: one HTTP exchange made by a CpChannel — a
 * request sent and its response read back as head, body chunks and end —
 * over libsoup or, for an in-process channel, straight into the
 * CpRpcServer's CpHttpServer without a socket
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The unary call (cp-channel.c) and the stream objects each drive one
 * exchange. It is named an exchange, not a call: an RPC "call" is the
 * public cp_channel_call_*() API and the streams on top of this, while this
 * unit only moves HTTP bytes (in-process it is the client end of a
 * server-side CpHttpExchange), enforces the deadline and maps transport
 * failures to Connect codes.
 *
 * One state machine over both transports, which share the deadline,
 * cancellation, back-pressure and end handling, so it stays in one file.
 * Its flags, all in the owner context unless noted:
 *
 *   started          cp_channel_exchange_start() ran (sources attached)
 *   head_received    status and headers are known; head callback ran
 *   paused           the owner asked for back-pressure: no chunk callback
 *                    until resume (libsoup: no read; in-process: events
 *                    stay queued)
 *   read_pending     libsoup: an async read or a readable-source wait is
 *                    outstanding (it holds a reference)
 *   eof              the body ended by its framing (clean end)
 *   finished         exchange_finish() ran: sources gone, I/O aborted or
 *                    body stream closed, end callback delivered (unless
 *                    closed), user data released; nothing follows
 *   msg_finished     libsoup has unqueued the message and released its
 *                    connection (transport_busy() is FALSE from then on)
 *   connection_lost  hint that the server's close ended the body
 *   local_done       in-process, server context: the server ended the
 *                    response
 *   aborted          in-process, under lock: no more events are queued
 *
 * Moves: new → start (errors before sending end through a deferred idle,
 * never from inside start) → head → chunk* → end (eof, or error from the
 * transport, the deadline or cancellation). close() finishes at once
 * without the end callback.
 */
#include <string.h>

#include "cp-channel-exchange-private.h"
#include "cp-channel-private.h"
#include "cp-call-options-private.h"
#include "cp-error.h"
#include "cp-timeout-private.h"
#include "cp-http-exchange-private.h"
#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"

#define READ_CHUNK_SIZE  (64 * 1024)

typedef enum {
  LOCAL_HEAD,
  LOCAL_CHUNK,
  LOCAL_END,
} LocalEventKind;

typedef struct {
  LocalEventKind kind;
  guint status;
  SoupMessageHeaders *headers;
  GBytes *chunk;
} LocalEvent;

struct _CpChannelExchange
{
  gatomicrefcount ref_count;

  CpChannel *channel;
  GMainContext *context;
  char *method;
  char *path_and_query;
  SoupMessageHeaders *request_headers;
  GBytes *body;
  gint64 deadline;

  GCancellable *user_cancellable;
  gulong cancel_id;
  GCancellable *cancellable;     /* internal: aborts the I/O */
  GSource *cancel_source;
  GSource *timeout_source;
  GSource *deferred_source;
  GError *deferred_error;

  CpChannelExchangeCallbacks callbacks;
  gpointer user_data;
  GDestroyNotify destroy;

  gboolean started;
  gboolean finished;
  gboolean head_received;
  gboolean paused;
  gboolean read_pending;
  gboolean eof;
  gboolean connection_lost;      /* see body_connection_lost () */

  guint status;
  char *reason;
  SoupMessageHeaders *response_headers;

  /* SoupSession transport */
  SoupMessage *msg;
  gboolean msg_finished;         /* libsoup is done with msg and its connection */
  GInputStream *stream;
  GSource *read_source;          /* waiting for a pollable body stream */

  /* in-process transport */
  GMainContext *server_context;
  CpHttpExchange *local;         /* used in the server context only */
  gboolean local_done;           /* server context only */
  GMutex lock;                   /* protects the fields below */
  GQueue events;
  GSource *event_source;
  gboolean aborted;
};

/* A transport error as a Connect one: cancelled I/O is `canceled`, any
 * other failure `unavailable`. */
static GError *
transport_error (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED, "the call was cancelled");
  if (error->domain == CP_ERROR)
    return g_error_copy (error);
  return g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE, "%s", error->message);
}

static void
local_event_free (LocalEvent *event)
{
  g_clear_pointer (&event->headers, soup_message_headers_unref);
  g_clear_pointer (&event->chunk, g_bytes_unref);
  g_free (event);
}

CpChannelExchange *
cp_channel_exchange_new (CpChannel                        *channel,
                         const char                       *http_method,
                         const char                       *path_and_query,
                         SoupMessageHeaders               *headers,
                         GBytes                           *body,
                         gint64                            deadline,
                         GCancellable                     *cancellable,
                         const CpChannelExchangeCallbacks *callbacks,
                         gpointer                          user_data,
                         GDestroyNotify                    destroy)
{
  CpChannelExchange *self = g_new0 (CpChannelExchange, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->channel = g_object_ref (channel);
  self->context = g_main_context_ref_thread_default ();
  self->method = g_strdup (http_method);
  self->path_and_query = g_strdup (path_and_query);
  self->request_headers = soup_message_headers_ref (headers);
  self->body = body ? g_bytes_ref (body) : NULL;
  self->deadline = deadline;
  self->user_cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  self->cancellable = g_cancellable_new ();
  self->callbacks = *callbacks;
  self->user_data = user_data;
  self->destroy = destroy;
  g_mutex_init (&self->lock);
  g_queue_init (&self->events);
  return self;
}

CpChannelExchange *
cp_channel_exchange_ref (CpChannelExchange *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

static void
destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

void
cp_channel_exchange_unref (CpChannelExchange *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  /* Every async operation holds a reference, so nothing is pending here;
   * the exchange is only left when the server context went away. */
  g_clear_pointer (&self->local, cp_http_exchange_unref);
  g_queue_clear_full (&self->events, (GDestroyNotify) local_event_free);
  g_mutex_clear (&self->lock);
  if (self->destroy && self->user_data)
    self->destroy (self->user_data);
  g_clear_object (&self->stream);
  if (self->msg != NULL)
    g_signal_handlers_disconnect_by_data (self->msg, self);
  g_clear_object (&self->msg);
  g_clear_pointer (&self->response_headers, soup_message_headers_unref);
  g_free (self->reason);
  g_clear_error (&self->deferred_error);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->user_cancellable);
  g_clear_pointer (&self->body, g_bytes_unref);
  g_clear_pointer (&self->request_headers, soup_message_headers_unref);
  g_free (self->path_and_query);
  g_free (self->method);
  g_clear_pointer (&self->server_context, g_main_context_unref);
  g_main_context_unref (self->context);
  g_object_unref (self->channel);
  g_free (self);
}

guint
cp_channel_exchange_get_status (CpChannelExchange *self)
{
  return self->status;
}

const char *
cp_channel_exchange_get_reason (CpChannelExchange *self)
{
  return self->reason;
}

SoupMessageHeaders *
cp_channel_exchange_get_response_headers (CpChannelExchange *self)
{
  return self->response_headers;
}

gboolean
cp_channel_exchange_get_connection_lost (CpChannelExchange *self)
{
  return self->connection_lost;
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

  destroy_source (&self->read_source);
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

static gboolean
local_abort_in_server (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  if (self->local != NULL)
    {
      if (!self->local_done)
        cp_http_exchange_local_cancel (self->local);
      g_clear_pointer (&self->local, cp_http_exchange_unref);
    }
  return G_SOURCE_REMOVE;
}

static void
invoke_in_server (CpChannelExchange *self,
                  GSourceFunc        func)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, cp_channel_exchange_ref (self),
                         (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (source, "[connectplugin] in-process call");
  g_source_attach (source, self->server_context);
  g_source_unref (source);
}

static void
abort_io (CpChannelExchange *self)
{
  g_cancellable_cancel (self->cancellable);
  if (self->read_source != NULL)
    {
      destroy_source (&self->read_source);
      self->read_pending = FALSE;
    }
  if (self->stream != NULL && !self->read_pending)
    close_body_stream (self);

  if (self->server_context != NULL)
    {
      g_mutex_lock (&self->lock);
      self->aborted = TRUE;
      g_queue_clear_full (&self->events, (GDestroyNotify) local_event_free);
      g_mutex_unlock (&self->lock);
      invoke_in_server (self, local_abort_in_server);
    }
}

/* Ends the exchange. @error: transfer full, NULL = clean end of body. */
static void
exchange_finish (CpChannelExchange *self,
                 GError            *error,
                 gboolean           notify)
{
  g_autoptr(CpChannelExchange) self_ref = NULL;
  gpointer user_data;
  GDestroyNotify destroy;

  if (self->finished)
    {
      g_clear_error (&error);
      return;
    }
  self_ref = cp_channel_exchange_ref (self);
  self->finished = TRUE;

  destroy_source (&self->cancel_source);
  destroy_source (&self->timeout_source);
  destroy_source (&self->deferred_source);
  g_mutex_lock (&self->lock);
  if (self->event_source)
    g_source_destroy (self->event_source);
  g_clear_pointer (&self->event_source, g_source_unref);
  g_mutex_unlock (&self->lock);
  if (self->cancel_id != 0)
    {
      g_cancellable_disconnect (self->user_cancellable, self->cancel_id);
      self->cancel_id = 0;
    }

  if (error != NULL || !self->eof)
    abort_io (self);
  else
    close_body_stream (self);

  if (notify && self->callbacks.end)
    self->callbacks.end (self, error, self->user_data);
  g_clear_error (&error);

  user_data = g_steal_pointer (&self->user_data);
  destroy = g_steal_pointer (&self->destroy);
  if (destroy && user_data)
    destroy (user_data);
}

void
cp_channel_exchange_close (CpChannelExchange *self)
{
  exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED, "closed"), FALSE);
}

void
cp_channel_exchange_cancel (CpChannelExchange *self)
{
  g_cancellable_cancel (self->cancellable);
}

static gboolean
on_deferred (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_clear_pointer (&self->deferred_source, g_source_unref);
  exchange_finish (self, g_steal_pointer (&self->deferred_error), TRUE);
  return G_SOURCE_REMOVE;
}

static void
finish_later (CpChannelExchange *self,
              GError            *error)
{
  if (self->deferred_source != NULL)
    {
      g_error_free (error);
      return;
    }
  self->deferred_error = error;
  self->deferred_source = g_idle_source_new ();
  g_source_set_callback (self->deferred_source, on_deferred,
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->deferred_source, "[connectplugin] call end");
  g_source_attach (self->deferred_source, self->context);
}

static gboolean
on_timeout (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_clear_pointer (&self->timeout_source, g_source_unref);
  exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                              "the call's deadline expired"), TRUE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  CpChannelExchange *self = user_data;

  g_clear_pointer (&self->cancel_source, g_source_unref);
  exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED,
                                              "the call was cancelled"), TRUE);
  return G_SOURCE_REMOVE;
}

/* Any thread: forwards the caller's cancellation to the internal
 * cancellable; the call notices it in its own context. */
static void
on_user_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  CpChannelExchange *self = user_data;

  g_cancellable_cancel (self->cancellable);
}

/* ------------------------------------------------------------------------ */
/* libsoup transport                                                         */

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
 * readable); over TLS the bottom stream has no socket and the answer is
 * FALSE. Must run before the body stream is closed (which hands the
 * connection back to the session). */
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
    return FALSE;
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
  exchange_finish (self, NULL, TRUE);
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
      exchange_finish (self, transport_error (error), TRUE);
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
          exchange_finish (self, transport_error (error), TRUE);
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

/* @in_loop: called from a callback of the call's own I/O, so chunks may
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
      exchange_finish (self, transport_error (error), TRUE);
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

static void
start_soup (CpChannelExchange *self)
{
  g_autofree char *uri = g_strconcat (cp_channel_get_http_base (self->channel), self->path_and_query, NULL);

  self->msg = soup_message_new (self->method, uri);
  if (self->msg == NULL)
    {
      finish_later (self, g_error_new (CP_ERROR, CP_ERROR_INTERNAL, "invalid URL %s", uri));
      return;
    }
  soup_message_add_flags (self->msg, SOUP_MESSAGE_NO_REDIRECT | SOUP_MESSAGE_IDEMPOTENT);
  g_signal_connect (self->msg, "finished", G_CALLBACK (on_msg_finished), self);
  soup_message_headers_foreach (self->request_headers, copy_request_header,
                                soup_message_get_request_headers (self->msg));
  if (self->body != NULL)
    soup_message_set_request_body_from_bytes (self->msg,
                                              soup_message_headers_get_one (self->request_headers,
                                                                            "Content-Type"),
                                              self->body);

  soup_session_send_async (cp_channel_get_session (self->channel), self->msg,
                           G_PRIORITY_DEFAULT, self->cancellable, on_sent,
                           cp_channel_exchange_ref (self));
}

/* ------------------------------------------------------------------------ */
/* In-process transport                                                      */

static void
handle_local_event (CpChannelExchange *self,
                    LocalEvent        *event)
{
  switch (event->kind)
    {
    case LOCAL_HEAD:
      self->status = event->status;
      self->reason = g_strdup (soup_status_get_phrase (event->status));
      self->response_headers = g_steal_pointer (&event->headers);
      self->head_received = TRUE;
      if (self->callbacks.head)
        self->callbacks.head (self, self->user_data);
      break;
    case LOCAL_CHUNK:
      if (self->callbacks.chunk)
        self->callbacks.chunk (self, event->chunk, self->user_data);
      break;
    case LOCAL_END:
      if (!self->head_received)
        {
          exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                      "the server ended the exchange without a response"),
                           TRUE);
          break;
        }
      self->eof = TRUE;
      exchange_finish (self, NULL, TRUE);
      break;
    }
}

static gboolean
on_local_events (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->event_source, g_source_unref);
  g_mutex_unlock (&self->lock);

  while (!self->finished && !self->paused)
    {
      LocalEvent *event;

      g_mutex_lock (&self->lock);
      event = g_queue_pop_head (&self->events);
      g_mutex_unlock (&self->lock);
      if (event == NULL)
        break;
      handle_local_event (self, event);
      local_event_free (event);
    }
  return G_SOURCE_REMOVE;
}

/* With self->lock held. */
static void
schedule_local_events_locked (CpChannelExchange *self)
{
  if (self->event_source != NULL || self->aborted)
    return;
  self->event_source = g_idle_source_new ();
  g_source_set_callback (self->event_source, on_local_events,
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->event_source, "[connectplugin] in-process response");
  g_source_attach (self->event_source, self->context);
}

static void
push_local_event (CpChannelExchange *self,
                  LocalEvent        *event)
{
  g_mutex_lock (&self->lock);
  if (self->aborted)
    local_event_free (event);
  else
    {
      g_queue_push_tail (&self->events, event);
      schedule_local_events_locked (self);
    }
  g_mutex_unlock (&self->lock);
}

static void
local_response_head (CpHttpExchange     *exchange,
                     guint               status,
                     SoupMessageHeaders *headers,
                     gpointer            user_data)
{
  LocalEvent *event = g_new0 (LocalEvent, 1);

  event->kind = LOCAL_HEAD;
  event->status = status;
  event->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  cp_headers_copy_into (event->headers, headers);
  push_local_event (user_data, event);
}

static void
local_response_chunk (CpHttpExchange *exchange,
                      GBytes         *chunk,
                      gpointer        user_data)
{
  LocalEvent *event;

  if (chunk == NULL || g_bytes_get_size (chunk) == 0)
    return;
  event = g_new0 (LocalEvent, 1);
  event->kind = LOCAL_CHUNK;
  event->chunk = g_bytes_ref (chunk);
  push_local_event (user_data, event);
}

static void
local_response_end (CpHttpExchange *exchange,
                    gpointer        user_data)
{
  CpChannelExchange *self = user_data;
  LocalEvent *event = g_new0 (LocalEvent, 1);

  self->local_done = TRUE;
  event->kind = LOCAL_END;
  push_local_event (self, event);
  /* Drop our reference to the exchange later, not inside its callback. */
  invoke_in_server (self, local_abort_in_server);
}

static const CpHttpLocalCallbacks local_callbacks = {
  local_response_head,
  local_response_chunk,
  local_response_end,
};

static gboolean
local_dispatch_in_server (gpointer user_data)
{
  CpChannelExchange *self = user_data;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  CpRpcServer *server;
  gboolean aborted;

  g_mutex_lock (&self->lock);
  aborted = self->aborted;
  g_mutex_unlock (&self->lock);
  if (aborted)
    return G_SOURCE_REMOVE;

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  cp_headers_copy_into (headers, self->request_headers);
  /* What an HTTP/1.1 parser would see: no body (GET) = Content-Length 0. */
  soup_message_headers_set_content_length (headers, self->body ? g_bytes_get_size (self->body) : 0);

  self->local = cp_http_exchange_new_local (self->method, self->path_and_query, headers,
                                            &local_callbacks, cp_channel_exchange_ref (self),
                                            (GDestroyNotify) cp_channel_exchange_unref);
  server = cp_channel_get_server (self->channel);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (server), self->local);
  /* The handler may have finished (and local_abort_in_server been queued). */
  if (self->local != NULL && !self->local_done)
    {
      if (self->body != NULL && g_bytes_get_size (self->body) > 0)
        cp_http_exchange_local_push_body (self->local, self->body);
      cp_http_exchange_local_end_body (self->local);
    }
  return G_SOURCE_REMOVE;
}

static void
start_local (CpChannelExchange *self)
{
  self->server_context = g_main_context_ref (cp_channel_get_context (self->channel));
  invoke_in_server (self, local_dispatch_in_server);
}

void
cp_channel_exchange_start (CpChannelExchange *self)
{
  g_return_if_fail (!self->started);
  self->started = TRUE;

  if (cp_channel_get_setup_error (self->channel) != NULL)
    {
      finish_later (self, g_error_copy (cp_channel_get_setup_error (self->channel)));
      return;
    }
  if (g_cancellable_is_cancelled (self->user_cancellable))
    {
      finish_later (self, g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED,
                                               "the call was cancelled"));
      return;
    }
  if (self->deadline > 0)
    {
      gint64 remaining_us = self->deadline - g_get_monotonic_time ();
      gint64 remaining_ms;
      g_autofree char *value = NULL;

      if (remaining_us <= 0)
        {
          finish_later (self, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                                   "the call's deadline expired before it was sent"));
          return;
        }
      remaining_ms = (remaining_us + 999) / 1000;
      value = cp_timeout_format (remaining_ms);
      if (value != NULL)
        soup_message_headers_replace (self->request_headers, "Connect-Timeout-Ms", value);
      self->timeout_source = g_timeout_source_new ((guint) MIN (remaining_ms, G_MAXUINT));
      g_source_set_callback (self->timeout_source, on_timeout,
                             cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
      g_source_set_static_name (self->timeout_source, "[connectplugin] call deadline");
      g_source_attach (self->timeout_source, self->context);
    }

  self->cancel_source = g_cancellable_source_new (self->cancellable);
  g_source_set_callback (self->cancel_source, G_SOURCE_FUNC (on_cancelled),
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->cancel_source, "[connectplugin] call cancelled");
  g_source_attach (self->cancel_source, self->context);
  if (self->user_cancellable != NULL)
    self->cancel_id = g_cancellable_connect (self->user_cancellable,
                                             G_CALLBACK (on_user_cancelled), self, NULL);

  if (cp_channel_get_server (self->channel) != NULL)
    start_local (self);
  else
    start_soup (self);
}

void
cp_channel_exchange_pause (CpChannelExchange *self)
{
  self->paused = TRUE;
}

void
cp_channel_exchange_resume (CpChannelExchange *self)
{
  if (!self->paused)
    return;
  self->paused = FALSE;
  if (self->finished)
    return;
  if (self->server_context != NULL)
    {
      g_mutex_lock (&self->lock);
      if (!g_queue_is_empty (&self->events))
        schedule_local_events_locked (self);
      g_mutex_unlock (&self->lock);
    }
  else if (self->head_received)
    read_next_full (self, FALSE);
}
