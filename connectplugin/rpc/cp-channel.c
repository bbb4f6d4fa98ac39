/* cp-channel.c: the Connect client engine
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gio/gunixsocketaddress.h>

#include "cp-channel.h"
#include "cp-channel-private.h"
#include "cp-enum-types.h"
#include "cp-error.h"
#include "cp-error-private.h"
#include "cp-envelope-private.h"
#include "cp-compression.h"
#include "cp-metadata.h"
#include "cp-timeout-private.h"
#include "cp-http-exchange-private.h"
#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"

/* Cap on the body of a unary error response we are willing to buffer. */
#define ERROR_BODY_LIMIT (1024 * 1024)
#define READ_CHUNK_SIZE  (64 * 1024)
/* Defaults of CpChannel:timeout-ms (the wire contract's RPC timeout, as
 * CpClient's call-timeout-ms) and CpChannel:max-receive-size (as servers'). */
#define DEFAULT_TIMEOUT_MS       30000
#define DEFAULT_MAX_RECEIVE_SIZE (4 * 1024 * 1024)

/**
 * CpChannel:
 *
 * The client side of the Connect protocol: makes unary, server-streaming
 * and client-streaming calls to one server.
 *
 * A channel talks to a server given by a base URL: `http://host:port`,
 * `https://host:port` (optionally with a path prefix, e.g.
 * `http://host:port/api`) or `unix:/path/to/socket`; or, with
 * cp_channel_new_in_process(), to a [class@RpcServer] in the same process
 * without any socket.
 *
 * HTTP goes through one #SoupSession per channel, tuned for RPC: no
 * transparent content decoding (Connect compression is done by the
 * channel), up to 64 connections per host, and no inactivity timeouts (the
 * channel enforces each call's deadline itself, and streams may stay quiet
 * for a long time). Every request is marked %SOUP_MESSAGE_IDEMPOTENT so that
 * keep-alive connections are reused; as a consequence libsoup re-sends a
 * request once when the reused connection turns out to have been closed by
 * the server before any byte of the response arrived. Never more than once,
 * and never after a response has started: callers of methods with side
 * effects should keep the server's keep-alive timeout longer than the
 * client's (our server's default is) so that this does not happen.
 *
 * Threading: the channel follows connectplugin's actor model. The result of
 * an asynchronous call and the signals of a stream are delivered in the
 * #GMainContext that was the thread-default one when the call was made, on
 * that context's thread. A channel may be used from several threads, each
 * with its own thread-default context; configure it (properties) in the
 * thread that created it, before the first call.
 */
struct _CpChannel
{
  GObject parent_instance;

  char *base_url;
  char *http_base;       /* "http://host:port[/prefix]", no trailing '/' */
  CpRpcServer *server;   /* in-process */
  CpCodec codec;
  CpCompression compression;
  gint64 timeout_ms;
  guint64 max_receive_size;
  GTlsDatabase *tls_database;

  SoupSession *session;
  GMainContext *context; /* construction context; the server's for in-process */
  GError *setup_error;
};

G_DEFINE_FINAL_TYPE (CpChannel, cp_channel, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_BASE_URL,
  PROP_SERVER,
  PROP_CODEC,
  PROP_COMPRESSION,
  PROP_TIMEOUT_MS,
  PROP_MAX_RECEIVE_SIZE,
  PROP_TLS_DATABASE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static GError *
client_transport_error (const GError *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED, "the call was cancelled");
  if (error->domain == CP_ERROR)
    return g_error_copy (error);
  return g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE, "%s", error->message);
}

/* Gives a decoding/decompression error a Connect code (default @code). */
static GError *
ensure_cp_error (GError      *error,
                 CpError code)
{
  GError *ret;

  if (error->domain == CP_ERROR)
    return error;
  ret = g_error_new_literal (CP_ERROR, code, error->message);
  g_error_free (error);
  return ret;
}

/* Lower-cased media type without parameters; NULL when absent. */
static char *
media_type (SoupMessageHeaders *headers)
{
  const char *value = soup_message_headers_get_one (headers, "Content-Type");
  const char *semi;
  g_autofree char *type = NULL;

  if (value == NULL)
    return NULL;
  semi = strchr (value, ';');
  type = semi ? g_strndup (value, semi - value) : g_strdup (value);
  g_strstrip (type);
  return g_ascii_strdown (type, -1);
}

/* Reads a Content-Encoding-like header: absent/empty/identity → identity. */
static gboolean
parse_encoding (SoupMessageHeaders *headers,
                const char         *name,
                CpCompression      *out,
                GError            **error)
{
  const char *value = soup_message_headers_get_one (headers, name);
  g_autofree char *trimmed = NULL;

  *out = CP_COMPRESSION_IDENTITY;
  if (value == NULL)
    return TRUE;
  trimmed = g_strstrip (g_strdup (value));
  if (*trimmed == '\0' || g_ascii_strcasecmp (trimmed, "identity") == 0)
    return TRUE;
  if (!cp_compression_from_string (trimmed, out))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "unknown compression \"%s\" in the response", trimmed);
      return FALSE;
    }
  return TRUE;
}

static CpMessage *
decode_message (GType     type,
                CpCodec   codec,
                GBytes   *data,
                GError  **error)
{
  GError *local_error = NULL;
  CpMessage *message;

  if (g_bytes_get_size (data) == 0 && codec == CP_CODEC_PROTO)
    return cp_message_new (type);

  message = cp_message_new_from_bytes (type, codec, data, &local_error);
  if (message == NULL)
    {
      g_propagate_error (error, ensure_cp_error (local_error, CP_ERROR_INVALID_ARGUMENT));
      return NULL;
    }
  return message;
}

void
cp_client_error_set_metadata (GError             *error,
                              SoupMessageHeaders *headers,
                              SoupMessageHeaders *trailers)
{
  g_autoptr(SoupMessageHeaders) metadata = NULL;

  if (error == NULL || error->domain != CP_ERROR)
    return;
  if (headers == NULL && trailers == NULL)
    return;
  metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  cp_headers_copy_into (metadata, headers);
  cp_headers_copy_into (metadata, trailers);
  cp_error_set_metadata (error, metadata);
}

/* ------------------------------------------------------------------------ */
/* Settings                                                                  */

static void
copy_metadata (const char *name,
               const char *value,
               gpointer    user_data)
{
  if (cp_metadata_is_reserved (name))
    {
      g_debug ("Ignoring protocol header %s in call metadata", name);
      return;
    }
  soup_message_headers_append (user_data, name, value);
}

void
cp_call_settings_init (CpCallSettings *settings,
                       CpChannel      *channel,
                       CpCallOptions  *options,
                       gboolean        unary)
{
  /* Streams may stay open and quiet for as long as they are useful: only
   * unary calls get the channel's default timeout. */
  gint64 timeout_ms = unary ? channel->timeout_ms : 0;
  gint64 now = g_get_monotonic_time ();

  memset (settings, 0, sizeof *settings);
  settings->codec = channel->codec;
  settings->compression = channel->compression;
  settings->max_receive_size = channel->max_receive_size;
  settings->metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);

  if (options != NULL)
    {
      gint64 t = cp_call_options_get_timeout_ms (options);

      if (t != 0)
        timeout_ms = t;
      if (cp_call_options_get_codec_is_set (options))
        settings->codec = cp_call_options_get_codec (options);
      if (cp_call_options_get_compression_is_set (options))
        settings->compression = cp_call_options_get_compression (options);
      settings->use_get = cp_call_options_get_use_get (options);
      settings->deadline = cp_call_options_get_deadline (options);
      soup_message_headers_foreach (cp_call_options_get_request_headers (options),
                                    copy_metadata, settings->metadata);
    }

  if (timeout_ms > 0)
    {
      gint64 d = (timeout_ms > (G_MAXINT64 - now) / 1000) ? G_MAXINT64 : now + timeout_ms * 1000;

      if (settings->deadline == 0 || d < settings->deadline)
        settings->deadline = d;
    }
}

void
cp_call_settings_clear (CpCallSettings *settings)
{
  g_clear_pointer (&settings->metadata, soup_message_headers_unref);
}

SoupMessageHeaders *
cp_call_settings_stream_headers (CpCallSettings *settings)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autofree char *content_type = g_strconcat ("application/connect+",
                                               cp_codec_to_string (settings->codec), NULL);

  soup_message_headers_append (headers, "Content-Type", content_type);
  soup_message_headers_append (headers, "Connect-Protocol-Version", "1");
  if (settings->compression != CP_COMPRESSION_IDENTITY)
    soup_message_headers_append (headers, "Connect-Content-Encoding",
                                 cp_compression_to_string (settings->compression));
  soup_message_headers_append (headers, "Connect-Accept-Encoding", "gzip");
  soup_message_headers_append (headers, "Accept-Encoding", "identity");
  cp_headers_copy_into (headers, settings->metadata);
  return headers;
}

gboolean
cp_call_settings_append_envelope (CpCallSettings *settings,
                                  CpMessage      *message,
                                  GByteArray     *out,
                                  GError        **error)
{
  g_autoptr(GBytes) payload = NULL;
  guint8 flags = 0;
  GError *local_error = NULL;

  payload = cp_message_serialize (message, settings->codec, &local_error);
  if (payload == NULL)
    {
      g_propagate_error (error, ensure_cp_error (local_error, CP_ERROR_INTERNAL));
      return FALSE;
    }
  if (settings->compression != CP_COMPRESSION_IDENTITY && g_bytes_get_size (payload) > 0)
    {
      g_autoptr(GBytes) compressed = cp_compress (settings->compression, payload, &local_error);

      if (compressed == NULL)
        {
          g_propagate_error (error, ensure_cp_error (local_error, CP_ERROR_INTERNAL));
          return FALSE;
        }
      g_bytes_unref (payload);
      payload = g_steal_pointer (&compressed);
      flags |= CP_ENVELOPE_FLAG_COMPRESSED;
    }
  cp_envelope_append (out, flags, payload);
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* CpClientCall: one HTTP exchange, over SoupSession or in-process           */

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

struct _CpClientCall
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

  CpClientCallCallbacks callbacks;
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

static void
local_event_free (LocalEvent *event)
{
  g_clear_pointer (&event->headers, soup_message_headers_unref);
  g_clear_pointer (&event->chunk, g_bytes_unref);
  g_free (event);
}

CpClientCall *
cp_client_call_new (CpChannel                   *channel,
                    const char                  *http_method,
                    const char                  *path_and_query,
                    SoupMessageHeaders          *headers,
                    GBytes                      *body,
                    gint64                       deadline,
                    GCancellable                *cancellable,
                    const CpClientCallCallbacks *callbacks,
                    gpointer                     user_data,
                    GDestroyNotify               destroy)
{
  CpClientCall *call = g_new0 (CpClientCall, 1);

  g_atomic_ref_count_init (&call->ref_count);
  call->channel = g_object_ref (channel);
  call->context = g_main_context_ref_thread_default ();
  call->method = g_strdup (http_method);
  call->path_and_query = g_strdup (path_and_query);
  call->request_headers = soup_message_headers_ref (headers);
  call->body = body ? g_bytes_ref (body) : NULL;
  call->deadline = deadline;
  call->user_cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  call->cancellable = g_cancellable_new ();
  call->callbacks = *callbacks;
  call->user_data = user_data;
  call->destroy = destroy;
  g_mutex_init (&call->lock);
  g_queue_init (&call->events);
  return call;
}

CpClientCall *
cp_client_call_ref (CpClientCall *call)
{
  g_atomic_ref_count_inc (&call->ref_count);
  return call;
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
cp_client_call_unref (CpClientCall *call)
{
  if (!g_atomic_ref_count_dec (&call->ref_count))
    return;

  /* Every async operation holds a reference, so nothing is pending here;
   * the exchange is only left when the server context went away. */
  g_clear_pointer (&call->local, cp_http_exchange_unref);
  g_queue_clear_full (&call->events, (GDestroyNotify) local_event_free);
  g_mutex_clear (&call->lock);
  if (call->destroy && call->user_data)
    call->destroy (call->user_data);
  g_clear_object (&call->stream);
  if (call->msg != NULL)
    g_signal_handlers_disconnect_by_data (call->msg, call);
  g_clear_object (&call->msg);
  g_clear_pointer (&call->response_headers, soup_message_headers_unref);
  g_free (call->reason);
  g_clear_error (&call->deferred_error);
  g_clear_object (&call->cancellable);
  g_clear_object (&call->user_cancellable);
  g_clear_pointer (&call->body, g_bytes_unref);
  g_clear_pointer (&call->request_headers, soup_message_headers_unref);
  g_free (call->path_and_query);
  g_free (call->method);
  g_clear_pointer (&call->server_context, g_main_context_unref);
  g_main_context_unref (call->context);
  g_object_unref (call->channel);
  g_free (call);
}

guint
cp_client_call_get_status (CpClientCall *call)
{
  return call->status;
}

const char *
cp_client_call_get_reason (CpClientCall *call)
{
  return call->reason;
}

SoupMessageHeaders *
cp_client_call_get_response_headers (CpClientCall *call)
{
  return call->response_headers;
}

gboolean
cp_client_call_get_connection_lost (CpClientCall *call)
{
  return call->connection_lost;
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
close_body_stream (CpClientCall *call)
{
  g_autoptr(GInputStream) stream = g_steal_pointer (&call->stream);

  destroy_source (&call->read_source);
  if (stream == NULL || g_input_stream_is_closed (stream))
    return;
  /* After EOF there is nothing left to read: closing cannot block, and
   * doing it now hands the connection back to the session before the next
   * call is queued (an asynchronous close takes two more iterations). */
  if (call->eof && !call->read_pending)
    {
      g_input_stream_close (stream, NULL, NULL);
      return;
    }
  g_input_stream_close_async (stream, G_PRIORITY_DEFAULT,
                              call->eof ? NULL : call->cancellable,
                              close_stream_done, NULL);
}

static gboolean
local_abort_in_server (gpointer user_data)
{
  CpClientCall *call = user_data;

  if (call->local != NULL)
    {
      if (!call->local_done)
        cp_http_exchange_local_cancel (call->local);
      g_clear_pointer (&call->local, cp_http_exchange_unref);
    }
  return G_SOURCE_REMOVE;
}

static void
invoke_in_server (CpClientCall *call,
                  GSourceFunc   func)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, cp_client_call_ref (call),
                         (GDestroyNotify) cp_client_call_unref);
  g_source_set_static_name (source, "[connectplugin] in-process call");
  g_source_attach (source, call->server_context);
  g_source_unref (source);
}

static void
abort_io (CpClientCall *call)
{
  g_cancellable_cancel (call->cancellable);
  if (call->read_source != NULL)
    {
      destroy_source (&call->read_source);
      call->read_pending = FALSE;
    }
  if (call->stream != NULL && !call->read_pending)
    close_body_stream (call);

  if (call->server_context != NULL)
    {
      g_mutex_lock (&call->lock);
      call->aborted = TRUE;
      g_queue_clear_full (&call->events, (GDestroyNotify) local_event_free);
      g_mutex_unlock (&call->lock);
      invoke_in_server (call, local_abort_in_server);
    }
}

/* Ends the call. @error: transfer full, NULL = clean end of body. */
static void
call_finish (CpClientCall *call,
             GError       *error,
             gboolean      notify)
{
  g_autoptr(CpClientCall) self_ref = NULL;
  gpointer user_data;
  GDestroyNotify destroy;

  if (call->finished)
    {
      g_clear_error (&error);
      return;
    }
  self_ref = cp_client_call_ref (call);
  call->finished = TRUE;

  destroy_source (&call->cancel_source);
  destroy_source (&call->timeout_source);
  destroy_source (&call->deferred_source);
  g_mutex_lock (&call->lock);
  if (call->event_source)
    g_source_destroy (call->event_source);
  g_clear_pointer (&call->event_source, g_source_unref);
  g_mutex_unlock (&call->lock);
  if (call->cancel_id != 0)
    {
      g_cancellable_disconnect (call->user_cancellable, call->cancel_id);
      call->cancel_id = 0;
    }

  if (error != NULL || !call->eof)
    abort_io (call);
  else
    close_body_stream (call);

  if (notify && call->callbacks.end)
    call->callbacks.end (call, error, call->user_data);
  g_clear_error (&error);

  user_data = g_steal_pointer (&call->user_data);
  destroy = g_steal_pointer (&call->destroy);
  if (destroy && user_data)
    destroy (user_data);
}

void
cp_client_call_close (CpClientCall *call)
{
  call_finish (call, g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED, "closed"), FALSE);
}

void
cp_client_call_cancel (CpClientCall *call)
{
  g_cancellable_cancel (call->cancellable);
}

static gboolean
on_deferred (gpointer user_data)
{
  CpClientCall *call = user_data;

  g_clear_pointer (&call->deferred_source, g_source_unref);
  call_finish (call, g_steal_pointer (&call->deferred_error), TRUE);
  return G_SOURCE_REMOVE;
}

static void
finish_later (CpClientCall *call,
              GError       *error)
{
  if (call->deferred_source != NULL)
    {
      g_error_free (error);
      return;
    }
  call->deferred_error = error;
  call->deferred_source = g_idle_source_new ();
  g_source_set_callback (call->deferred_source, on_deferred,
                         cp_client_call_ref (call), (GDestroyNotify) cp_client_call_unref);
  g_source_set_static_name (call->deferred_source, "[connectplugin] call end");
  g_source_attach (call->deferred_source, call->context);
}

static gboolean
on_timeout (gpointer user_data)
{
  CpClientCall *call = user_data;

  g_clear_pointer (&call->timeout_source, g_source_unref);
  call_finish (call, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                          "the call's deadline expired"), TRUE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  CpClientCall *call = user_data;

  g_clear_pointer (&call->cancel_source, g_source_unref);
  call_finish (call, g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED,
                                          "the call was cancelled"), TRUE);
  return G_SOURCE_REMOVE;
}

/* Any thread: forwards the caller's cancellation to the internal
 * cancellable; the call notices it in its own context. */
static void
on_user_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  CpClientCall *call = user_data;

  g_cancellable_cancel (call->cancellable);
}

/* ---- SoupSession transport ---- */

static void read_next (CpClientCall *call);

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
body_connection_lost (CpClientCall *call)
{
  GInputStream *stream = call->stream;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  GParamSpec *pspec;
  GInputVector vector;
  gint flags = G_SOCKET_MSG_PEEK;
  guint8 byte;
  gssize n;

  if (stream == NULL || call->response_headers == NULL ||
      soup_message_headers_get_encoding (call->response_headers) != SOUP_ENCODING_CHUNKED ||
      soup_message_headers_header_contains (call->response_headers, "Connection", "close"))
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
body_ended (CpClientCall *call)
{
  call->eof = TRUE;
  call->connection_lost = body_connection_lost (call);
  call_finish (call, NULL, TRUE);
}

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(CpClientCall) call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  call->read_pending = FALSE;
  if (call->finished)
    {
      close_body_stream (call);
      return;
    }
  if (bytes == NULL)
    {
      call_finish (call, client_transport_error (error), TRUE);
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    {
      body_ended (call);
      return;
    }
  if (call->callbacks.chunk)
    call->callbacks.chunk (call, bytes, call->user_data);
  if (!call->finished && !call->paused)
    read_next (call);
}

static gboolean
on_readable (GObject  *stream,
             gpointer  user_data)
{
  CpClientCall *call = user_data;

  g_clear_pointer (&call->read_source, g_source_unref);
  call->read_pending = FALSE;
  if (call->finished)
    close_body_stream (call);
  else if (!call->paused)
    read_next (call);
  /* Removing the source drops its reference to the call: last. */
  return G_SOURCE_REMOVE;
}

/* @now: also fire in the next iteration, readable or not. */
static void
wait_readable (CpClientCall *call,
               gboolean      now)
{
  call->read_pending = TRUE;
  call->read_source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (call->stream), NULL);
  g_source_set_callback (call->read_source, G_SOURCE_FUNC (on_readable),
                         cp_client_call_ref (call), (GDestroyNotify) cp_client_call_unref);
  g_source_set_static_name (call->read_source, "[connectplugin] response body");
  if (now)
    g_source_set_ready_time (call->read_source, 0);
  g_source_attach (call->read_source, call->context);
}

/* Reads what a pollable body stream (libsoup's HTTP/1 bodies) holds now,
 * without a GTask and a main-loop iteration per read; waits for more with
 * a pollable source. */
static void
read_available (CpClientCall *call)
{
  g_autoptr(CpClientCall) hold = cp_client_call_ref (call);
  GPollableInputStream *pollable = G_POLLABLE_INPUT_STREAM (call->stream);
  guint8 buffer[16 * 1024];

  while (!call->finished && !call->paused && call->stream != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) bytes = NULL;
      gssize n;

      n = g_pollable_input_stream_read_nonblocking (pollable, buffer, sizeof buffer,
                                                    call->cancellable, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          wait_readable (call, FALSE);
          return;
        }
      if (n < 0)
        {
          call_finish (call, client_transport_error (error), TRUE);
          return;
        }
      if (n == 0)
        {
          body_ended (call);
          return;
        }
      bytes = g_bytes_new (buffer, n);
      if (call->callbacks.chunk)
        call->callbacks.chunk (call, bytes, call->user_data);
    }
}

/* @in_loop: called from a callback of the call's own I/O, so chunks may
 * be delivered right away; otherwise (resume) they wait for the loop. */
static void
read_next_full (CpClientCall *call,
                gboolean      in_loop)
{
  if (call->read_pending || call->stream == NULL)
    return;
  if (G_IS_POLLABLE_INPUT_STREAM (call->stream) &&
      g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (call->stream)))
    {
      if (in_loop)
        read_available (call);
      else
        wait_readable (call, TRUE);
      return;
    }
  call->read_pending = TRUE;
  g_input_stream_read_bytes_async (call->stream, READ_CHUNK_SIZE, G_PRIORITY_DEFAULT,
                                   call->cancellable, on_read, cp_client_call_ref (call));
}

static void
read_next (CpClientCall *call)
{
  read_next_full (call, TRUE);
}

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(CpClientCall) call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;

  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (call->finished)
    {
      call->stream = g_steal_pointer (&stream);
      close_body_stream (call);
      return;
    }
  if (stream == NULL)
    {
      call_finish (call, client_transport_error (error), TRUE);
      return;
    }

  call->stream = g_steal_pointer (&stream);
  call->status = soup_message_get_status (call->msg);
  call->reason = g_strdup (soup_message_get_reason_phrase (call->msg));
  call->response_headers = soup_message_headers_ref (soup_message_get_response_headers (call->msg));
  call->head_received = TRUE;
  if (call->callbacks.head)
    call->callbacks.head (call, call->user_data);
  if (!call->finished && !call->paused)
    read_next (call);
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
  CpClientCall *call = user_data;

  call->msg_finished = TRUE;
}

/* Whether libsoup still holds the exchange (and its connection): after
 * the body ended or was aborted, it finishes the message from a source of
 * the call's context, in a later iteration. */
static gboolean
cp_client_call_transport_busy (CpClientCall *call)
{
  return call->msg != NULL && !call->msg_finished;
}

static void
start_soup (CpClientCall *call)
{
  g_autofree char *uri = g_strconcat (call->channel->http_base, call->path_and_query, NULL);

  call->msg = soup_message_new (call->method, uri);
  if (call->msg == NULL)
    {
      finish_later (call, g_error_new (CP_ERROR, CP_ERROR_INTERNAL, "invalid URL %s", uri));
      return;
    }
  soup_message_add_flags (call->msg, SOUP_MESSAGE_NO_REDIRECT | SOUP_MESSAGE_IDEMPOTENT);
  g_signal_connect (call->msg, "finished", G_CALLBACK (on_msg_finished), call);
  soup_message_headers_foreach (call->request_headers, copy_request_header,
                                soup_message_get_request_headers (call->msg));
  if (call->body != NULL)
    soup_message_set_request_body_from_bytes (call->msg,
                                              soup_message_headers_get_one (call->request_headers,
                                                                            "Content-Type"),
                                              call->body);

  soup_session_send_async (call->channel->session, call->msg, G_PRIORITY_DEFAULT,
                           call->cancellable, on_sent, cp_client_call_ref (call));
}

/* ---- in-process transport ---- */

static void
handle_local_event (CpClientCall *call,
                    LocalEvent   *event)
{
  switch (event->kind)
    {
    case LOCAL_HEAD:
      call->status = event->status;
      call->reason = g_strdup (soup_status_get_phrase (event->status));
      call->response_headers = g_steal_pointer (&event->headers);
      call->head_received = TRUE;
      if (call->callbacks.head)
        call->callbacks.head (call, call->user_data);
      break;
    case LOCAL_CHUNK:
      if (call->callbacks.chunk)
        call->callbacks.chunk (call, event->chunk, call->user_data);
      break;
    case LOCAL_END:
      if (!call->head_received)
        {
          call_finish (call, g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                  "the server ended the exchange without a response"),
                       TRUE);
          break;
        }
      call->eof = TRUE;
      call_finish (call, NULL, TRUE);
      break;
    }
}

static gboolean
on_local_events (gpointer user_data)
{
  CpClientCall *call = user_data;

  g_mutex_lock (&call->lock);
  g_clear_pointer (&call->event_source, g_source_unref);
  g_mutex_unlock (&call->lock);

  while (!call->finished && !call->paused)
    {
      LocalEvent *event;

      g_mutex_lock (&call->lock);
      event = g_queue_pop_head (&call->events);
      g_mutex_unlock (&call->lock);
      if (event == NULL)
        break;
      handle_local_event (call, event);
      local_event_free (event);
    }
  return G_SOURCE_REMOVE;
}

/* With call->lock held. */
static void
schedule_local_events_locked (CpClientCall *call)
{
  if (call->event_source != NULL || call->aborted)
    return;
  call->event_source = g_idle_source_new ();
  g_source_set_callback (call->event_source, on_local_events,
                         cp_client_call_ref (call), (GDestroyNotify) cp_client_call_unref);
  g_source_set_static_name (call->event_source, "[connectplugin] in-process response");
  g_source_attach (call->event_source, call->context);
}

static void
push_local_event (CpClientCall *call,
                  LocalEvent   *event)
{
  g_mutex_lock (&call->lock);
  if (call->aborted)
    local_event_free (event);
  else
    {
      g_queue_push_tail (&call->events, event);
      schedule_local_events_locked (call);
    }
  g_mutex_unlock (&call->lock);
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
  CpClientCall *call = user_data;
  LocalEvent *event = g_new0 (LocalEvent, 1);

  call->local_done = TRUE;
  event->kind = LOCAL_END;
  push_local_event (call, event);
  /* Drop our reference to the exchange later, not inside its callback. */
  invoke_in_server (call, local_abort_in_server);
}

static const CpHttpLocalCallbacks local_callbacks = {
  local_response_head,
  local_response_chunk,
  local_response_end,
};

static gboolean
local_dispatch_in_server (gpointer user_data)
{
  CpClientCall *call = user_data;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  gboolean aborted;

  g_mutex_lock (&call->lock);
  aborted = call->aborted;
  g_mutex_unlock (&call->lock);
  if (aborted)
    return G_SOURCE_REMOVE;

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  cp_headers_copy_into (headers, call->request_headers);
  /* What an HTTP/1.1 parser would see: no body (GET) = Content-Length 0. */
  soup_message_headers_set_content_length (headers, call->body ? g_bytes_get_size (call->body) : 0);

  call->local = cp_http_exchange_new_local (call->method, call->path_and_query, headers,
                                            &local_callbacks, cp_client_call_ref (call),
                                            (GDestroyNotify) cp_client_call_unref);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (call->channel->server),
                                 call->local);
  /* The handler may have finished (and local_abort_in_server been queued). */
  if (call->local != NULL && !call->local_done)
    {
      if (call->body != NULL && g_bytes_get_size (call->body) > 0)
        cp_http_exchange_local_push_body (call->local, call->body);
      cp_http_exchange_local_end_body (call->local);
    }
  return G_SOURCE_REMOVE;
}

static void
start_local (CpClientCall *call)
{
  call->server_context = g_main_context_ref (call->channel->context);
  invoke_in_server (call, local_dispatch_in_server);
}

void
cp_client_call_start (CpClientCall *call)
{
  g_return_if_fail (!call->started);
  call->started = TRUE;

  if (call->channel->setup_error != NULL)
    {
      finish_later (call, g_error_copy (call->channel->setup_error));
      return;
    }
  if (g_cancellable_is_cancelled (call->user_cancellable))
    {
      finish_later (call, g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED,
                                               "the call was cancelled"));
      return;
    }
  if (call->deadline > 0)
    {
      gint64 remaining_us = call->deadline - g_get_monotonic_time ();
      gint64 remaining_ms;
      g_autofree char *value = NULL;

      if (remaining_us <= 0)
        {
          finish_later (call, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                                   "the call's deadline expired before it was sent"));
          return;
        }
      remaining_ms = (remaining_us + 999) / 1000;
      value = cp_timeout_format (remaining_ms);
      if (value != NULL)
        soup_message_headers_replace (call->request_headers, "Connect-Timeout-Ms", value);
      call->timeout_source = g_timeout_source_new ((guint) MIN (remaining_ms, G_MAXUINT));
      g_source_set_callback (call->timeout_source, on_timeout,
                             cp_client_call_ref (call), (GDestroyNotify) cp_client_call_unref);
      g_source_set_static_name (call->timeout_source, "[connectplugin] call deadline");
      g_source_attach (call->timeout_source, call->context);
    }

  call->cancel_source = g_cancellable_source_new (call->cancellable);
  g_source_set_callback (call->cancel_source, G_SOURCE_FUNC (on_cancelled),
                         cp_client_call_ref (call), (GDestroyNotify) cp_client_call_unref);
  g_source_set_static_name (call->cancel_source, "[connectplugin] call cancelled");
  g_source_attach (call->cancel_source, call->context);
  if (call->user_cancellable != NULL)
    call->cancel_id = g_cancellable_connect (call->user_cancellable,
                                             G_CALLBACK (on_user_cancelled), call, NULL);

  if (call->channel->server != NULL)
    start_local (call);
  else
    start_soup (call);
}

void
cp_client_call_pause (CpClientCall *call)
{
  call->paused = TRUE;
}

void
cp_client_call_resume (CpClientCall *call)
{
  if (!call->paused)
    return;
  call->paused = FALSE;
  if (call->finished)
    return;
  if (call->server_context != NULL)
    {
      g_mutex_lock (&call->lock);
      if (!g_queue_is_empty (&call->events))
        schedule_local_events_locked (call);
      g_mutex_unlock (&call->lock);
    }
  else if (call->head_received)
    read_next_full (call, FALSE);
}

/* ------------------------------------------------------------------------ */
/* Streaming response decoder                                                */

struct _CpStreamDecoder
{
  GType response_type;
  CpCodec codec;
  gsize max_receive_size;
  CpEnvelopeReader *reader;
  CpCompression encoding;
  gboolean end_seen;
  GError *rpc_error;
  GError *failed;
  SoupMessageHeaders *trailers;
};

CpStreamDecoder *
cp_stream_decoder_new (GType   response_type,
                       CpCodec codec,
                       gsize   max_receive_size)
{
  CpStreamDecoder *decoder = g_new0 (CpStreamDecoder, 1);

  decoder->response_type = response_type;
  decoder->codec = codec;
  decoder->max_receive_size = max_receive_size;
  decoder->reader = cp_envelope_reader_new (max_receive_size);
  decoder->trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return decoder;
}

void
cp_stream_decoder_free (CpStreamDecoder *decoder)
{
  cp_envelope_reader_free (decoder->reader);
  g_clear_error (&decoder->rpc_error);
  g_clear_error (&decoder->failed);
  soup_message_headers_unref (decoder->trailers);
  g_free (decoder);
}

gboolean
cp_stream_decoder_head (CpStreamDecoder    *decoder,
                        guint               status,
                        const char         *reason,
                        SoupMessageHeaders *headers,
                        GError            **error)
{
  g_autofree char *type = NULL;
  const char *codec_name;

  if (status != SOUP_STATUS_OK)
    {
      g_set_error (error, CP_ERROR, cp_error_code_from_http_status (status),
                   "HTTP %u %s", status, reason ? reason : "");
      return FALSE;
    }
  type = media_type (headers);
  if (type == NULL || !g_str_has_prefix (type, "application/connect+"))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNKNOWN,
                   "unexpected response content type \"%s\"", type ? type : "");
      return FALSE;
    }
  codec_name = type + strlen ("application/connect+");
  if (g_strcmp0 (codec_name, cp_codec_to_string (decoder->codec)) != 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "response codec \"%s\" does not match the request's \"%s\"",
                   codec_name, cp_codec_to_string (decoder->codec));
      return FALSE;
    }
  return parse_encoding (headers, "Connect-Content-Encoding", &decoder->encoding, error);
}

void
cp_stream_decoder_push (CpStreamDecoder *decoder,
                        GBytes          *chunk)
{
  if (decoder->end_seen && g_bytes_get_size (chunk) > 0)
    {
      if (decoder->failed == NULL)
        decoder->failed = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                               "the response continued after EndStream");
      return;
    }
  cp_envelope_reader_push (decoder->reader, chunk);
}

gboolean
cp_stream_decoder_next (CpStreamDecoder  *decoder,
                        CpMessage       **message,
                        GError          **error)
{
  for (;;)
    {
      g_autoptr(GBytes) payload = NULL;
      guint8 flags = 0;
      GError *local_error = NULL;

      if (decoder->failed != NULL)
        {
          g_propagate_error (error, g_error_copy (decoder->failed));
          return FALSE;
        }
      if (!cp_envelope_reader_next (decoder->reader, &flags, &payload, &local_error))
        {
          if (local_error != NULL)
            {
              decoder->failed = ensure_cp_error (local_error, CP_ERROR_INTERNAL);
              continue;
            }
          return FALSE;
        }
      if (decoder->end_seen)
        {
          decoder->failed = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                                 "the response continued after EndStream");
          continue;
        }
      if (flags & CP_ENVELOPE_FLAG_COMPRESSED)
        {
          if (decoder->encoding == CP_COMPRESSION_IDENTITY)
            {
              decoder->failed = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                                     "compressed message without a negotiated encoding");
              continue;
            }
          if (g_bytes_get_size (payload) > 0)
            {
              GBytes *plain = cp_decompress (decoder->encoding, payload,
                                             decoder->max_receive_size, &local_error);

              if (plain == NULL)
                {
                  decoder->failed = ensure_cp_error (local_error, CP_ERROR_INVALID_ARGUMENT);
                  continue;
                }
              g_bytes_unref (payload);
              payload = plain;
            }
        }
      if (flags & CP_ENVELOPE_FLAG_END_STREAM)
        {
          if (!cp_end_stream_parse (payload, decoder->trailers, &decoder->rpc_error, &local_error))
            {
              decoder->failed = ensure_cp_error (local_error, CP_ERROR_INTERNAL);
              continue;
            }
          decoder->end_seen = TRUE;
          continue;
        }

      *message = decode_message (decoder->response_type, decoder->codec, payload, &local_error);
      if (*message == NULL)
        {
          decoder->failed = local_error;
          continue;
        }
      return TRUE;
    }
}

gboolean
cp_stream_decoder_finish (CpStreamDecoder  *decoder,
                          GError          **error)
{
  if (decoder->failed != NULL)
    {
      g_propagate_error (error, g_error_copy (decoder->failed));
      return FALSE;
    }
  if (!decoder->end_seen)
    {
      if (cp_envelope_reader_get_pending (decoder->reader) > 0)
        {
          GError *local_error = NULL;

          if (!cp_envelope_reader_finish (decoder->reader, &local_error))
            {
              g_propagate_error (error, ensure_cp_error (local_error, CP_ERROR_INTERNAL));
              return FALSE;
            }
        }
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "the response ended without an EndStream message");
      return FALSE;
    }
  if (cp_envelope_reader_get_pending (decoder->reader) > 0)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "the response continued after EndStream");
      return FALSE;
    }
  if (decoder->rpc_error != NULL)
    {
      g_propagate_error (error, g_error_copy (decoder->rpc_error));
      return FALSE;
    }
  return TRUE;
}

gboolean
cp_stream_decoder_has_end_stream (CpStreamDecoder *decoder)
{
  return decoder->end_seen;
}

SoupMessageHeaders *
cp_stream_decoder_get_trailers (CpStreamDecoder *decoder)
{
  return decoder->trailers;
}

/* ------------------------------------------------------------------------ */
/* Unary calls                                                               */

typedef struct {
  CpCallOptions *options;
  CpCallSettings settings;
  GType response_type;
  CpClientCall *call;
  GByteArray *body;
  gsize body_limit;
  gboolean body_truncated;
  CpCompression response_encoding;
} UnaryData;

static void
unary_data_free (UnaryData *data)
{
  g_clear_object (&data->options);
  cp_call_settings_clear (&data->settings);
  g_clear_pointer (&data->call, cp_client_call_unref);
  g_clear_pointer (&data->body, g_byte_array_unref);
  g_free (data);
}

/* Completes the task: @error (transfer full) is a transport error, or NULL
 * to decode the received response. */
static void
unary_complete (GTask  *task,
                GError *error)
{
  UnaryData *data = g_task_get_task_data (task);
  CpClientCall *call = data->call;
  SoupMessageHeaders *response = cp_client_call_get_response_headers (call);
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = NULL;
  g_autoptr(GBytes) body = NULL;
  guint status = cp_client_call_get_status (call);
  CpMessage *message = NULL;

  if (response != NULL)
    {
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      cp_metadata_split_trailers (response, headers, trailers);
    }
  if (data->options != NULL)
    cp_call_options_set_response (data->options, headers, trailers);

  if (error == NULL)
    body = g_byte_array_free_to_bytes (g_steal_pointer (&data->body));

  if (error == NULL && status != SOUP_STATUS_OK)
    {
      g_autofree char *type = media_type (response);
      CpCompression encoding = CP_COMPRESSION_IDENTITY;
      g_autoptr(GBytes) json = NULL;

      if (!data->body_truncated &&
          g_strcmp0 (type, "application/json") == 0 &&
          parse_encoding (response, "Content-Encoding", &encoding, &error))
        {
          if (encoding != CP_COMPRESSION_IDENTITY && g_bytes_get_size (body) > 0)
            json = cp_decompress (encoding, body, ERROR_BODY_LIMIT, NULL);
          else
            json = g_bytes_ref (body);
        }
      if (error == NULL)
        error = cp_error_from_json (json, status, cp_client_call_get_reason (call));
    }
  else if (error == NULL)
    {
      if (data->response_encoding != CP_COMPRESSION_IDENTITY && g_bytes_get_size (body) > 0)
        {
          GBytes *plain = cp_decompress (data->response_encoding, body,
                                         data->settings.max_receive_size, &error);

          if (plain != NULL)
            {
              g_bytes_unref (body);
              body = plain;
            }
          else
            error = ensure_cp_error (error, CP_ERROR_INVALID_ARGUMENT);
        }
      if (error == NULL)
        message = decode_message (data->response_type, data->settings.codec, body, &error);
    }

  if (error != NULL)
    {
      cp_client_error_set_metadata (error, headers, trailers);
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, message, g_object_unref);
}

/* Validates a 200 response head; FALSE with error when unusable. */
static gboolean
unary_check_head (UnaryData          *data,
                  SoupMessageHeaders *headers,
                  GError            **error)
{
  g_autofree char *type = media_type (headers);
  const char *codec_name = cp_codec_to_string (data->settings.codec);

  if (type == NULL || !g_str_has_prefix (type, "application/"))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNKNOWN,
                   "unexpected response content type \"%s\"", type ? type : "");
      return FALSE;
    }
  if (g_strcmp0 (type + strlen ("application/"), codec_name) != 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "response content type \"%s\" does not match the request codec \"%s\"",
                   type, codec_name);
      return FALSE;
    }
  return parse_encoding (headers, "Content-Encoding", &data->response_encoding, error);
}

static void
unary_on_head (CpClientCall *call,
               gpointer      user_data)
{
  GTask *task = user_data;
  UnaryData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (cp_client_call_get_status (call) == SOUP_STATUS_OK)
    {
      data->body_limit = data->settings.max_receive_size;
      if (!unary_check_head (data, cp_client_call_get_response_headers (call), &error))
        {
          g_autoptr(GTask) keep = g_object_ref (task);

          cp_client_call_close (call);
          unary_complete (keep, error);
        }
    }
  else
    data->body_limit = ERROR_BODY_LIMIT;
}

static void
unary_on_chunk (CpClientCall *call,
                GBytes       *chunk,
                gpointer      user_data)
{
  GTask *task = user_data;
  UnaryData *data = g_task_get_task_data (task);
  gsize size = g_bytes_get_size (chunk);

  if (data->body_limit > 0 && data->body->len + size > data->body_limit)
    {
      g_autoptr(GTask) keep = g_object_ref (task);

      cp_client_call_close (call);
      if (cp_client_call_get_status (call) == SOUP_STATUS_OK)
        unary_complete (keep, g_error_new (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                                           "the response message is larger than the limit of %"
                                           G_GSIZE_FORMAT " bytes", data->body_limit));
      else
        {
          data->body_truncated = TRUE;
          unary_complete (keep, NULL);
        }
      return;
    }
  g_byte_array_append (data->body, g_bytes_get_data (chunk, NULL), size);
}

static void
unary_on_end (CpClientCall *call,
              const GError *error,
              gpointer      user_data)
{
  unary_complete (user_data, error ? g_error_copy (error) : NULL);
}

static const CpClientCallCallbacks unary_callbacks = {
  unary_on_head,
  unary_on_chunk,
  unary_on_end,
};

static char *
base64_url_unpadded (GBytes *data)
{
  gsize len;
  const guint8 *bytes = g_bytes_get_data (data, &len);
  char *text = g_base64_encode (bytes, len);
  char *p;

  for (p = text; *p; p++)
    {
      if (*p == '+')
        *p = '-';
      else if (*p == '/')
        *p = '_';
      else if (*p == '=')
        {
          *p = '\0';
          break;
        }
    }
  return text;
}

/* ?connect=v1&base64=1&compression=gzip&encoding=proto&message=... */
static char *
build_get_query (CpCallSettings *settings,
                 GBytes         *payload,
                 gboolean        compressed)
{
  GString *query = g_string_new ("?connect=v1");
  gboolean binary = settings->codec != CP_CODEC_JSON || compressed;

  if (binary)
    g_string_append (query, "&base64=1");
  if (compressed)
    g_string_append_printf (query, "&compression=%s",
                            cp_compression_to_string (settings->compression));
  g_string_append_printf (query, "&encoding=%s", cp_codec_to_string (settings->codec));
  g_string_append (query, "&message=");
  if (binary)
    {
      g_autofree char *text = base64_url_unpadded (payload);

      g_string_append (query, text);
    }
  else
    {
      gsize len;
      const char *data = g_bytes_get_data (payload, &len);
      g_autofree char *text = g_strndup (data, len);
      g_autofree char *escaped = g_uri_escape_string (text, NULL, FALSE);

      g_string_append (query, escaped);
    }
  return g_string_free (query, FALSE);
}

/**
 * cp_channel_call_async:
 * @channel: a #CpChannel
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Get`
 * @request: the request message
 * @response_type: the #GType of the response message (a #CpMessage subclass)
 * @options: (nullable): per-call options; their response headers and
 *   trailers are filled in when the call completes
 * @cancellable: (nullable): a #GCancellable; cancelling fails the call with
 *   `canceled` and aborts its HTTP exchange
 * @callback: (scope async): called when the call completes, in the
 *   thread-default main context of the caller
 * @user_data: (closure): data for @callback
 *
 * Makes a unary call. The deadline (from @options or the channel's
 * [property@Channel:timeout-ms], 30 s unless set) is enforced locally and
 * sent as `Connect-Timeout-Ms`.
 */
void
cp_channel_call_async (CpChannel           *channel,
                       const char          *procedure,
                       CpMessage           *request,
                       GType                response_type,
                       CpCallOptions       *options,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autofree char *path = NULL;
  g_autofree char *content_type = NULL;
  GError *error = NULL;
  UnaryData *data;
  gboolean compressed = FALSE;
  gboolean use_get;

  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (procedure != NULL && procedure[0] == '/');
  g_return_if_fail (CP_IS_MESSAGE (request));
  g_return_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE));
  g_return_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (channel, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_channel_call_async);
  g_task_set_name (task, "[connectplugin] unary call");
  /* Cancellation is reported as CP_ERROR_CANCELED by the call itself. */
  g_task_set_check_cancellable (task, FALSE);
  data = g_new0 (UnaryData, 1);
  data->options = options ? g_object_ref (options) : NULL;
  data->response_type = response_type;
  data->body = g_byte_array_new ();
  cp_call_settings_init (&data->settings, channel, options, TRUE);
  g_task_set_task_data (task, data, (GDestroyNotify) unary_data_free);

  if (options != NULL)
    cp_call_options_set_response (options, NULL, NULL);

  payload = cp_message_serialize (request, data->settings.codec, &error);
  if (payload == NULL)
    {
      g_task_return_error (task, ensure_cp_error (error, CP_ERROR_INTERNAL));
      return;
    }
  /* Even an empty message is compressed: a server may insist on the
   * negotiated encoding (the conformance suite's reference server does). */
  if (data->settings.compression != CP_COMPRESSION_IDENTITY)
    {
      GBytes *c = cp_compress (data->settings.compression, payload, &error);

      if (c == NULL)
        {
          g_task_return_error (task, ensure_cp_error (error, CP_ERROR_INTERNAL));
          return;
        }
      g_bytes_unref (payload);
      payload = c;
      compressed = TRUE;
    }

  use_get = data->settings.use_get;
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  if (use_get)
    {
      g_autofree char *query = build_get_query (&data->settings, payload, compressed);

      path = g_strconcat (procedure, query, NULL);
    }
  else
    {
      path = g_strdup (procedure);
      content_type = g_strconcat ("application/", cp_codec_to_string (data->settings.codec), NULL);
      soup_message_headers_append (headers, "Content-Type", content_type);
      soup_message_headers_append (headers, "Connect-Protocol-Version", "1");
      if (compressed)
        soup_message_headers_append (headers, "Content-Encoding",
                                     cp_compression_to_string (data->settings.compression));
    }
  soup_message_headers_append (headers, "Accept-Encoding", "gzip");
  cp_headers_copy_into (headers, data->settings.metadata);

  data->call = cp_client_call_new (channel, use_get ? "GET" : "POST", path, headers,
                                   use_get ? NULL : payload, data->settings.deadline,
                                   cancellable, &unary_callbacks,
                                   g_object_ref (task), g_object_unref);
  cp_client_call_start (data->call);
}

/**
 * cp_channel_call_finish:
 * @channel: a #CpChannel
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError (domain %CP_ERROR)
 *
 * Finishes a call started with cp_channel_call_async().
 *
 * Returns: (transfer full): the response message, or %NULL on error
 */
CpMessage *
cp_channel_call_finish (CpChannel     *channel,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (g_task_is_valid (result, channel), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct {
  GAsyncResult *result;
  gboolean done;
  gboolean guard_expired;
} SyncData;

/* Bound on the wait for libsoup to let go of a finished call: normally one
 * iteration. libsoup 3.2 does not finish a cancelled message still queued
 * for a connection slot (all max-conns-per-host busy) until a slot frees;
 * such a message holds no connection, so the call need not wait for it. */
#define SYNC_RELEASE_GUARD_MS 1000

static void
sync_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  SyncData *data = user_data;

  data->result = g_object_ref (result);
  data->done = TRUE;
}

static gboolean
on_sync_release_guard (gpointer user_data)
{
  SyncData *data = user_data;

  data->guard_expired = TRUE;
  return G_SOURCE_REMOVE;
}

/* libsoup 3.2 finishes an asynchronous message (unqueues it and hands its
 * connection back to the pool) from the session's queue source in the
 * context the message was sent from, an iteration after its body was
 * closed; no other context ever does (soup-session.c, async_run_queue()
 * only collects the items of the thread-default context). The result of a
 * call comes first, so a sync call keeps running its private context until
 * then: leaving earlier strands the connection "in use" for good, and once
 * max-conns-per-host of them are stranded the next call waits for ever. */
static void
sync_wait_released (GMainContext *context,
                    SyncData     *data)
{
  UnaryData *unary = g_task_get_task_data (G_TASK (data->result));
  GSource *guard;

  if (unary->call == NULL || !cp_client_call_transport_busy (unary->call))
    return;
  guard = g_timeout_source_new (SYNC_RELEASE_GUARD_MS);
  g_source_set_callback (guard, on_sync_release_guard, data, NULL);
  g_source_set_static_name (guard, "[connectplugin] sync call release guard");
  g_source_attach (guard, context);
  while (cp_client_call_transport_busy (unary->call) && !data->guard_expired)
    g_main_context_iteration (context, TRUE);
  if (data->guard_expired)
    g_debug ("libsoup did not release a finished sync call in %d ms", SYNC_RELEASE_GUARD_MS);
  g_source_destroy (guard);
  g_source_unref (guard);
}

/* Whether @context is this thread's: owned by it, or its thread-default. */
static gboolean
server_context_is_ours (GMainContext *context)
{
  g_autoptr(GMainContext) thread_default = g_main_context_ref_thread_default ();

  return g_main_context_is_owner (context) || thread_default == context;
}

/**
 * cp_channel_call_sync:
 * @channel: a #CpChannel
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Get`
 * @request: the request message
 * @response_type: the #GType of the response message
 * @options: (nullable): per-call options
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError (domain %CP_ERROR)
 *
 * Makes a unary call and blocks until it completes, running a main context
 * of its own meanwhile (as GIO's synchronous calls do), so no other source
 * of the caller's context is dispatched. No main loop needs to run: when
 * the call returns, its HTTP connection is back in the channel's pool, so
 * a loop of sync calls keeps reusing one connection.
 *
 * For an in-process channel whose server runs in the calling thread's
 * context, that context is iterated instead so that the server can answer.
 *
 * Returns: (transfer full): the response message, or %NULL on error
 */
CpMessage *
cp_channel_call_sync (CpChannel      *channel,
                      const char     *procedure,
                      CpMessage      *request,
                      GType           response_type,
                      CpCallOptions  *options,
                      GCancellable   *cancellable,
                      GError        **error)
{
  g_autoptr(GMainContext) context = NULL;
  SyncData data = { NULL, FALSE, FALSE };
  CpMessage *message;

  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  if (channel->server != NULL && server_context_is_ours (channel->context) &&
      g_main_context_acquire (channel->context))
    context = g_main_context_ref (channel->context);
  else
    {
      context = g_main_context_new ();
      g_main_context_acquire (context);
    }

  g_main_context_push_thread_default (context);
  cp_channel_call_async (channel, procedure, request, response_type, options,
                         cancellable, sync_done, &data);
  while (!data.done)
    g_main_context_iteration (context, TRUE);
  sync_wait_released (context, &data);
  g_main_context_pop_thread_default (context);
  g_main_context_release (context);

  message = cp_channel_call_finish (channel, data.result, error);
  g_object_unref (data.result);
  return message;
}

/**
 * cp_channel_call_server_stream:
 * @channel: a #CpChannel
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Watch`
 * @request: the request message
 * @response_type: the #GType of the response messages
 * @options: (nullable): per-call options (use-get is ignored)
 *
 * Starts a server-streaming call. Connect to the stream's signals; the
 * request is sent when control returns to the main loop of the current
 * thread-default context (or at cp_response_stream_start()), and the
 * signals are emitted in that context.
 *
 * Returns: (transfer full): the response stream
 */
CpResponseStream *
cp_channel_call_server_stream (CpChannel     *channel,
                               const char    *procedure,
                               CpMessage     *request,
                               GType          response_type,
                               CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (procedure != NULL && procedure[0] == '/', NULL);
  g_return_val_if_fail (CP_IS_MESSAGE (request), NULL);
  g_return_val_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE), NULL);
  g_return_val_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options), NULL);

  return cp_response_stream_new_internal (channel, procedure, request, response_type, options);
}

/**
 * cp_channel_call_client_stream:
 * @channel: a #CpChannel
 * @procedure: the procedure
 * @response_type: the #GType of the response message
 * @options: (nullable): per-call options (use-get is ignored)
 *
 * Starts a client-streaming call (half-duplex over HTTP/1.1): queue
 * messages with cp_request_stream_send(), then cp_request_stream_close_async()
 * sends them and returns the response. The deadline counts from now.
 *
 * Returns: (transfer full): the request stream
 */
CpRequestStream *
cp_channel_call_client_stream (CpChannel     *channel,
                               const char    *procedure,
                               GType          response_type,
                               CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (procedure != NULL && procedure[0] == '/', NULL);
  g_return_val_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE), NULL);
  g_return_val_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options), NULL);

  return cp_request_stream_new_internal (channel, procedure, response_type, options);
}

/**
 * cp_channel_call_bidi_stream:
 * @channel: a #CpChannel
 * @procedure: the procedure
 * @response_type: the #GType of the response messages
 * @options: (nullable): per-call options (use-get is ignored)
 *
 * Starts a bidirectional-streaming call, half-duplex as HTTP/1.1 allows:
 * queue messages with cp_request_stream_send(), then
 * cp_request_stream_close_and_receive() sends them and returns the
 * #CpResponseStream carrying the responses. The deadline counts from now.
 *
 * Returns: (transfer full): the request stream
 */
CpRequestStream *
cp_channel_call_bidi_stream (CpChannel     *channel,
                             const char    *procedure,
                             GType          response_type,
                             CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (procedure != NULL && procedure[0] == '/', NULL);
  g_return_val_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE), NULL);
  g_return_val_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options), NULL);

  return cp_request_stream_new_internal (channel, procedure, response_type, options);
}

/* ------------------------------------------------------------------------ */
/* The channel object                                                        */

static gboolean
setup_http (CpChannel  *self,
            GError    **error)
{
  g_autoptr(GSocketConnectable) connectable = NULL;
  const char *url = self->base_url;

  if (url == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "a channel needs a base-url or a server");
      return FALSE;
    }

  if (g_str_has_prefix (url, "unix:"))
    {
      const char *path = url + strlen ("unix:");

      if (*path == '\0')
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "invalid URL \"%s\"", url);
          return FALSE;
        }
      connectable = G_SOCKET_CONNECTABLE (g_unix_socket_address_new (path));
      self->http_base = g_strdup ("http://localhost");
    }
  else
    {
      g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
      const char *scheme = uri ? g_uri_get_scheme (uri) : NULL;
      gsize len;

      if (uri == NULL ||
          (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0) ||
          g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' ||
          g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "invalid URL \"%s\"", url);
          return FALSE;
        }
      self->http_base = g_strdup (url);
      len = strlen (self->http_base);
      while (len > 0 && self->http_base[len - 1] == '/')
        self->http_base[--len] = '\0';
    }

  self->session = g_object_new (SOUP_TYPE_SESSION,
                                "max-conns-per-host", 64,
                                "max-conns", 128,
                                "timeout", 0,
                                "idle-timeout", 0,
                                "user-agent", "connectplugin/0.1",
                                "remote-connectable", connectable,
                                "tls-database", self->tls_database,
                                NULL);
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_CONTENT_DECODER);
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_AUTH_MANAGER);
  return TRUE;
}

static void
cp_channel_constructed (GObject *object)
{
  CpChannel *self = CP_CHANNEL (object);

  G_OBJECT_CLASS (cp_channel_parent_class)->constructed (object);

  self->context = g_main_context_ref_thread_default ();
  if (self->server == NULL)
    setup_http (self, &self->setup_error);
}

static void
cp_channel_finalize (GObject *object)
{
  CpChannel *self = CP_CHANNEL (object);

  g_clear_object (&self->session);
  g_clear_object (&self->server);
  g_clear_object (&self->tls_database);
  g_clear_error (&self->setup_error);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->base_url);
  g_free (self->http_base);

  G_OBJECT_CLASS (cp_channel_parent_class)->finalize (object);
}

static void
cp_channel_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  CpChannel *self = CP_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_BASE_URL:
      g_value_set_string (value, self->base_url);
      break;
    case PROP_SERVER:
      g_value_set_object (value, self->server);
      break;
    case PROP_CODEC:
      g_value_set_enum (value, self->codec);
      break;
    case PROP_COMPRESSION:
      g_value_set_enum (value, self->compression);
      break;
    case PROP_TIMEOUT_MS:
      g_value_set_int64 (value, self->timeout_ms);
      break;
    case PROP_MAX_RECEIVE_SIZE:
      g_value_set_uint64 (value, self->max_receive_size);
      break;
    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_channel_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  CpChannel *self = CP_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_BASE_URL:
      self->base_url = g_value_dup_string (value);
      break;
    case PROP_SERVER:
      self->server = g_value_dup_object (value);
      break;
    case PROP_CODEC:
      self->codec = g_value_get_enum (value);
      break;
    case PROP_COMPRESSION:
      self->compression = g_value_get_enum (value);
      break;
    case PROP_TIMEOUT_MS:
      self->timeout_ms = g_value_get_int64 (value);
      break;
    case PROP_MAX_RECEIVE_SIZE:
      self->max_receive_size = g_value_get_uint64 (value);
      break;
    case PROP_TLS_DATABASE:
      g_set_object (&self->tls_database, g_value_get_object (value));
      if (self->session != NULL)
        soup_session_set_tls_database (self->session, self->tls_database);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_channel_class_init (CpChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_channel_constructed;
  object_class->finalize = cp_channel_finalize;
  object_class->get_property = cp_channel_get_property;
  object_class->set_property = cp_channel_set_property;

  /**
   * CpChannel:base-url:
   *
   * Where the server is: `http://host:port`, `https://host:port` (each
   * optionally followed by a path prefix) or `unix:/path/to/socket`.
   */
  properties[PROP_BASE_URL] =
    g_param_spec_string ("base-url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:server:
   *
   * The in-process server this channel calls without any socket; see
   * cp_channel_new_in_process().
   */
  properties[PROP_SERVER] =
    g_param_spec_object ("server", NULL, NULL, CP_TYPE_RPC_SERVER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:codec:
   *
   * The default codec of calls.
   */
  properties[PROP_CODEC] =
    g_param_spec_enum ("codec", NULL, NULL, CP_TYPE_CODEC, CP_CODEC_PROTO,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:compression:
   *
   * The default compression of request messages. gzip-compressed
   * responses are always accepted.
   */
  properties[PROP_COMPRESSION] =
    g_param_spec_enum ("compression", NULL, NULL, CP_TYPE_COMPRESSION, CP_COMPRESSION_IDENTITY,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:timeout-ms:
   *
   * The default timeout of unary calls in milliseconds, 0 for none; by
   * default 30000 (30 s), the RPC timeout of the wire contract. A call
   * whose deadline passes fails with `deadline_exceeded`.
   *
   * Streaming calls (server, client and bidirectional) get no default
   * timeout: they may rightly stay open and quiet for a long time. Give
   * one a deadline with [property@CallOptions:timeout-ms].
   */
  properties[PROP_TIMEOUT_MS] =
    g_param_spec_int64 ("timeout-ms", NULL, NULL, 0, G_MAXINT64, DEFAULT_TIMEOUT_MS,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:max-receive-size:
   *
   * The largest response message accepted, in bytes (after
   * decompression, which stops as soon as the output passes it); 0 for no
   * limit. By default 4194304 (4 MiB), as servers. Larger messages fail
   * the call with `resource_exhausted`.
   */
  properties[PROP_MAX_RECEIVE_SIZE] =
    g_param_spec_uint64 ("max-receive-size", NULL, NULL, 0, G_MAXUINT32,
                         DEFAULT_MAX_RECEIVE_SIZE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:tls-database:
   *
   * The #GTlsDatabase used to verify `https://` servers; %NULL for the
   * system's default.
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_channel_init (CpChannel *self)
{
  self->codec = CP_CODEC_PROTO;
  self->compression = CP_COMPRESSION_IDENTITY;
  self->timeout_ms = DEFAULT_TIMEOUT_MS;
  self->max_receive_size = DEFAULT_MAX_RECEIVE_SIZE;
}

/**
 * cp_channel_new:
 * @base_url: the server's URL: `http://host:port`, `https://host:port` or
 *   `unix:/path/to/socket`
 * @error: return location for a #GError
 *
 * Creates a channel to the server at @base_url. Nothing is connected yet.
 *
 * Returns: (transfer full): a new #CpChannel, or %NULL if @base_url is
 *   invalid
 */
CpChannel *
cp_channel_new (const char  *base_url,
                GError     **error)
{
  g_autoptr(CpChannel) channel = NULL;

  g_return_val_if_fail (base_url != NULL, NULL);

  channel = g_object_new (CP_TYPE_CHANNEL, "base-url", base_url, NULL);
  if (channel->setup_error != NULL)
    {
      g_propagate_error (error, g_error_copy (channel->setup_error));
      return NULL;
    }
  return g_steal_pointer (&channel);
}

/**
 * cp_channel_new_in_process:
 * @server: a #CpRpcServer
 *
 * Creates a channel that calls @server directly, without sockets or HTTP
 * parsing: requests are handed to the server as in-process exchanges.
 * Create the channel in the #GMainContext the server runs in (its
 * thread-default one when it was created); calls may then be made from any
 * context, and results come back where each call was made.
 *
 * Returns: (transfer full): a new #CpChannel
 */
CpChannel *
cp_channel_new_in_process (CpRpcServer *server)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), NULL);

  return g_object_new (CP_TYPE_CHANNEL, "server", server, NULL);
}
