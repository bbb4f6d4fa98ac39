/* cp-request-stream.c: sending side of a client-streaming call
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-request-stream-private.h"
#include "cp-response-stream-private.h"
#include "cp-call-options-private.h"
#include "cp-sync-private.h"
#include "cp-client-call-private.h"
#include "cp-call-settings-private.h"
#include "cp-channel-exchange-private.h"
#include "cp-channel-private.h"
#include "cp-channel-util-private.h"
#include "cp-stream-decoder-private.h"
#include "cp-error.h"

/**
 * CpRequestStream:
 *
 * The client side of a client-streaming call, made with
 * [method@ConnectPlugin.Channel.call_client_stream], or the request side of a half-duplex
 * bidirectional call, made with [method@ConnectPlugin.Channel.call_bidi_stream] (closed with
 * [method@ConnectPlugin.RequestStream.close_and_receive]).
 *
 * On a channel speaking HTTP/2 ([property@Channel:http-version]), a call
 * can be made full-duplex with [method@ConnectPlugin.RequestStream.start_duplex]:
 * messages are then sent as they are given, and responses arrive meanwhile.
 *
 * Otherwise client streams are half-duplex: [method@ConnectPlugin.RequestStream.send]
 * queues enveloped messages, and [method@ConnectPlugin.RequestStream.close_async] ends the
 * request body and waits for the single response message. The result is delivered in the
 * [struct@GLib.MainContext] that was the thread-default one when
 * [method@ConnectPlugin.RequestStream.close_async] was called.
 *
 * ## Streaming and back-pressure
 *
 * A small request body (up to 256 KiB of enveloped messages) is held until
 * [method@ConnectPlugin.RequestStream.close_async] and sent whole, with a
 * `Content-Length`. As it is held, a [class@RetryPolicy] may send it again
 * when an attempt failed before the response message arrived (for a method
 * that may be sent twice, or an attempt that never reached the server), and
 * the channel's and the call's [class@ClientInterceptor]s decide at close
 * time, before anything is sent, and are told the outcome.
 *
 * Once a client-streaming call's queued messages grow past 256 KiB, the
 * call starts: the interceptors decide then (at that send), and the request
 * body streams as it is written — with chunked transfer-encoding over
 * HTTP/1.1, as DATA frames under HTTP/2 flow control otherwise. From then
 * on [method@ConnectPlugin.RequestStream.send_async] completes (and
 * [method@ConnectPlugin.RequestStream.send] returns) only when the
 * transport has taken what was queued before, down to 256 KiB or the
 * message just given, whichever is larger: a writer that waits for each
 * send keeps the memory of the call bounded however much it uploads.
 * [property@ConnectPlugin.RequestStream:bytes-sent] tells how far the body
 * went. Such a streamed body is not kept, so the call is never retried; an
 * error that ends it early (the server answered, the deadline expired)
 * fails the waiting sends and is returned by
 * [method@ConnectPlugin.RequestStream.close_async]. Close (or cancel) a
 * stream that started streaming: until then the call waits for the rest of
 * its body, up to its deadline. In-process channels and half-duplex
 * bidirectional calls always hold the body. A full-duplex call (see above)
 * streams from its first message, with the same back-pressure on
 * [method@ConnectPlugin.RequestStream.send_async] and the same
 * [property@ConnectPlugin.RequestStream:bytes-sent].
 */
struct _CpRequestStream
{
  GObject parent_instance;

  CpChannel *channel;
  CpCallOptions *options;
  CpCallSettings settings;
  GType response_type;
  char *procedure;
  GByteArray *body;

  gboolean closing;
  gboolean cancelled;
  CpChannelExchange *exchange;
  CpChannelAdmission admission;  /* from the channel's circuit breaker */
  CpMethodKind kind;
  CpIdempotency idempotency;
  GBytes *request_body;          /* sent by every attempt */
  CpClientCall *call;            /* NULL when no interceptor applies */
  CpCallRetry retry;
  gboolean not_sent;             /* the last attempt never reached the server */
  CpStreamDecoder *decoder;
  GTask *task;
  CpMessage *response;
  guint n_messages;

  SoupMessageHeaders *response_headers;
  SoupMessageHeaders *response_trailers;
  gulong options_cancel_id;     /* the options' cancellable cancels the stream */
  GMainContext *context;        /* where it was made: close_sync () runs there */
  CpResponseStream *duplex;     /* start_duplex (): messages go straight to it */
  gboolean duplex_done;         /* the full-duplex call ended */

  /* The call is under way (interceptors, attempts, backoff) until
   * stream_complete (); in a streamed call that may be before close. */
  gboolean running;
  GCancellable *cancellable;    /* the call's: the close's, or call_cancellable */
  /* Streamed body (see the class doc): set once the queued body outgrew
   * STREAM_QUEUE_LIMIT; body then holds what the exchange did not get yet. */
  gboolean streaming;
  GCancellable *call_cancellable;  /* streamed: cancels the call's exchange */
  GCancellable *close_cancellable; /* streamed: the close's, connected to it */
  gulong close_cancel_id;
  gboolean done;                /* streamed: ended before close, outcome kept */
  GError *outcome;              /* ... its error (NULL: self->response) */
  GQueue sends;                 /* SendOp waiting for the transport */
  guint64 bytes_sent;
};

/* The bound of the request body held by a client stream: up to it the
 * body is sent whole at close; past it the call streams, and sends wait
 * while more than this much (or the one message, when larger) is queued. */
#define STREAM_QUEUE_LIMIT (256 * 1024)

enum {
  PROP_0,
  PROP_BYTES_SENT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

typedef struct {
  CpRequestStream *stream;
  GTask *task;
  gsize threshold;              /* complete once at most this much is queued */
  GSource *cancel_source;
} SendOp;

G_DEFINE_FINAL_TYPE (CpRequestStream, cp_request_stream, G_TYPE_OBJECT)

static void
cp_request_stream_finalize (GObject *object)
{
  CpRequestStream *self = CP_REQUEST_STREAM (object);

  g_assert (self->task == NULL);
  g_assert (g_queue_is_empty (&self->sends));
  if (self->close_cancel_id != 0)
    g_cancellable_disconnect (self->close_cancellable, self->close_cancel_id);
  g_clear_object (&self->close_cancellable);
  g_clear_object (&self->call_cancellable);
  g_clear_error (&self->outcome);
  cp_call_options_disconnect_cancel (self->options, self->options_cancel_id);
  g_clear_pointer (&self->context, g_main_context_unref);
  if (self->duplex != NULL)
    cp_response_stream_set_request_progress_internal (self->duplex, NULL, NULL);
  g_clear_object (&self->duplex);
  g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
  cp_channel_admission_clear (&self->admission);
  cp_call_retry_clear (&self->retry);
  g_clear_pointer (&self->call, cp_client_call_unref);
  g_clear_pointer (&self->request_body, g_bytes_unref);
  g_clear_pointer (&self->decoder, cp_stream_decoder_free);
  g_clear_object (&self->response);
  g_clear_pointer (&self->body, g_byte_array_unref);
  g_free (self->procedure);
  cp_call_settings_clear (&self->settings);
  g_clear_object (&self->options);
  g_clear_object (&self->channel);
  g_clear_pointer (&self->response_headers, soup_message_headers_unref);
  g_clear_pointer (&self->response_trailers, soup_message_headers_unref);

  G_OBJECT_CLASS (cp_request_stream_parent_class)->finalize (object);
}

static void
cp_request_stream_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  CpRequestStream *self = CP_REQUEST_STREAM (object);

  switch (prop_id)
    {
    case PROP_BYTES_SENT:
      g_value_set_uint64 (value, self->bytes_sent);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_request_stream_class_init (CpRequestStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cp_request_stream_finalize;
  object_class->get_property = cp_request_stream_get_property;

  /**
   * CpRequestStream:bytes-sent: (getter get_bytes_sent)
   *
   * How many bytes of the request body (enveloped messages, before any
   * transport framing) the transport has taken: written to the
   * connection, or to its bounded buffers. A streamed body (see the class
   * documentation) counts up while it is sent, with a notification
   * (in the stream's [struct@GLib.MainContext]) each time the transport
   * took more — a progress report for uploads; a body sent whole jumps to
   * its size when the response arrives.
   */
  properties[PROP_BYTES_SENT] =
    g_param_spec_uint64 ("bytes-sent", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
set_bytes_sent (CpRequestStream *self,
                guint64          bytes_sent)
{
  if (self->bytes_sent == bytes_sent)
    return;
  self->bytes_sent = bytes_sent;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BYTES_SENT]);
}

/* A streamed body: bytes-sent as the transport counts it now (the
 * progress callback comes later). */
static void
refresh_bytes_sent (CpRequestStream *self)
{
  if (self->duplex != NULL)
    set_bytes_sent (self, cp_response_stream_get_request_sent_internal (self->duplex));
  else if (self->streaming && self->exchange != NULL)
    set_bytes_sent (self, cp_channel_exchange_get_body_sent (self->exchange));
}

/* Whether a send may have to wait for the transport: the body streams
 * (a full-duplex call, or a client stream past the held size) and the
 * call goes on. */
static gboolean
stream_waits (CpRequestStream *self)
{
  if (self->duplex != NULL)
    return !self->duplex_done;
  return self->streaming && self->running;
}

/* Bytes given to send () and not taken by the transport yet. */
static gsize
stream_pending (CpRequestStream *self)
{
  gsize pending = self->body != NULL ? self->body->len : 0;

  if (self->duplex != NULL)
    return cp_response_stream_get_request_queued_internal (self->duplex);

  if (self->exchange != NULL && self->streaming)
    pending += cp_channel_exchange_get_body_queued (self->exchange);
  return pending;
}

static void
send_op_free (SendOp *op)
{
  if (op->cancel_source != NULL)
    {
      g_source_destroy (op->cancel_source);
      g_source_unref (op->cancel_source);
    }
  g_clear_object (&op->task);
  g_free (op);
}

/* Completes the waiting sends the transport made room for; all of them
 * when the call ended (@error: NULL = it succeeded). */
static void
complete_sends (CpRequestStream *self,
                gboolean         ended,
                const GError    *error)
{
  SendOp *op;

  while ((op = g_queue_peek_head (&self->sends)) != NULL)
    {
      g_autoptr(GTask) task = NULL;

      if (!ended && stream_pending (self) > op->threshold)
        break;
      g_queue_pop_head (&self->sends);
      refresh_bytes_sent (self);
      task = g_steal_pointer (&op->task);
      send_op_free (op);
      if (ended && error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
    }
}

static void
cp_request_stream_init (CpRequestStream *self)
{
  self->body = g_byte_array_new ();
  self->response_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  self->response_trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
}

CpRequestStream *
cp_request_stream_new_internal (CpChannel     *channel,
                                const char    *procedure,
                                CpMethodKind   kind,
                                GType          response_type,
                                CpCallOptions *options,
                                CpIdempotency  idempotency)
{
  CpRequestStream *self = g_object_new (CP_TYPE_REQUEST_STREAM, NULL);

  self->kind = kind;
  self->idempotency = idempotency;

  self->channel = g_object_ref (channel);
  self->options = options ? g_object_ref (options) : NULL;
  self->response_type = response_type;
  self->procedure = g_strdup (procedure);
  cp_call_settings_init (&self->settings, channel, options, FALSE);
  self->decoder = cp_stream_decoder_new (response_type, self->settings.codec,
                                         self->settings.protocol,
                                         self->settings.max_receive_size);
  self->context = g_main_context_ref_thread_default ();
  self->options_cancel_id = cp_call_options_connect_cancel (options, G_OBJECT (self), self->context,
                                                            (void (*) (gpointer)) cp_request_stream_cancel);
  return self;
}

/* Completes the close task (@error: transfer full, NULL = use the
 * response). */
static void
stream_complete (CpRequestStream *self,
                 GError          *error)
{
  g_autoptr(GTask) task = NULL;

  if (!self->running)
    {
      g_clear_error (&error);
      return;
    }
  self->running = FALSE;
  self->cancellable = NULL;
  task = g_steal_pointer (&self->task);
  if (self->close_cancel_id != 0)
    {
      g_cancellable_disconnect (self->close_cancellable, self->close_cancel_id);
      self->close_cancel_id = 0;
    }
  cp_call_retry_stop_wait (&self->retry);
  if (self->exchange != NULL)
    {
      cp_channel_exchange_close (self->exchange);
      g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
    }

  soup_message_headers_clear (self->response_trailers);
  cp_headers_copy_into (self->response_trailers, cp_stream_decoder_get_trailers (self->decoder));
  if (self->options != NULL)
    cp_call_options_set_response (self->options, self->response_headers, self->response_trailers);

  cp_channel_admission_settle (&self->admission, error);
  if (error != NULL)
    cp_channel_error_set_metadata (error, self->response_headers, self->response_trailers);
  cp_call_settings_end (&self->settings, error);
  cp_call_settings_trace_end (&self->settings, self->channel, self->procedure, error);
  if (self->call != NULL)
    {
      cp_client_call_set_attempts (self->call, self->retry.attempts);
      cp_client_call_set_response_metadata (self->call, self->response_headers,
                                            self->response_trailers);
      cp_client_call_complete (self->call, error, error == NULL ? self->response : NULL);
    }
  complete_sends (self, TRUE, error);
  if (task == NULL)
    {
      /* A streamed call that ended before close: close_async () returns it. */
      self->done = TRUE;
      self->outcome = error;
    }
  else if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&self->response), g_object_unref);
}

static void request_attempt (CpRequestStream *self);

static void
request_backoff_over (GObject  *owner,
                      gboolean  cancelled)
{
  CpRequestStream *self = CP_REQUEST_STREAM (owner);

  if (!self->running)
    return;
  if (cancelled || self->cancelled)
    stream_complete (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                "the call was cancelled"));
  else
    request_attempt (self);
}

/* The attempt under way failed with @error (transfer full): tries again
 * after a backoff when the call's retry policy says so, else completes. */
static void
attempt_fail (CpRequestStream *self,
              GError          *error)
{
  guint delay_ms;

  if (!self->running || self->cancelled || self->streaming ||
      g_cancellable_is_cancelled (self->cancellable) ||
      !cp_call_retry_decide (&self->retry, self->procedure, error, self->not_sent,
                             self->n_messages > 0, &delay_ms))
    {
      stream_complete (self, error);
      return;
    }
  g_debug ("%s: attempt %u failed (%s), retrying in %u ms", self->procedure,
           self->retry.attempts, error->message, delay_ms);
  if (self->exchange != NULL)
    {
      cp_channel_exchange_close (self->exchange);
      g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
    }
  cp_channel_admission_settle (&self->admission, error);
  g_error_free (error);
  cp_call_retry_wait (&self->retry, g_task_get_context (self->task), delay_ms,
                      self->cancellable, request_backoff_over, G_OBJECT (self));
}

static void
on_head (CpChannelExchange *exchange,
         gpointer           user_data)
{
  CpRequestStream *self = user_data;
  GError *error = NULL;

  /* Over HTTP/1.1 the response comes after the whole body; a body sent
   * whole was taken by then. */
  if (!self->streaming && self->request_body != NULL)
    set_bytes_sent (self, g_bytes_get_size (self->request_body));
  if (!cp_stream_decoder_exchange_head (self->decoder, exchange, self->response_headers, &error))
    attempt_fail (self, error);
}

/* A streamed body: the transport took more of it. */
static void
on_progress (CpChannelExchange *exchange,
             gpointer           user_data)
{
  CpRequestStream *self = user_data;
  g_autoptr(CpRequestStream) hold = g_object_ref (self);

  set_bytes_sent (self, cp_channel_exchange_get_body_sent (exchange));
  complete_sends (self, FALSE, NULL);
}

static void
on_chunk (CpChannelExchange *exchange,
          GBytes            *chunk,
          gpointer           user_data)
{
  CpRequestStream *self = user_data;

  cp_client_metrics_call_add_bytes (&self->settings.metrics, FALSE, g_bytes_get_size (chunk));
  cp_stream_decoder_push (self->decoder, chunk);
  for (;;)
    {
      g_autoptr(CpMessage) message = NULL;
      GError *error = NULL;

      if (!cp_stream_decoder_next (self->decoder, &message, &error))
        {
          if (error != NULL)
            attempt_fail (self, error);
          return;
        }
      if (++self->n_messages > 1)
        {
          stream_complete (self, g_error_new_literal (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                                      "a client-streaming call returned more than one message"));
          return;
        }
      cp_client_metrics_call_add_messages (&self->settings.metrics, FALSE, 1);
      self->response = g_steal_pointer (&message);
    }
}

static void
on_end (CpChannelExchange *exchange,
        const GError      *error,
        gpointer           user_data)
{
  CpRequestStream *self = user_data;
  GError *stream_error = NULL;

  self->not_sent = cp_channel_exchange_get_not_sent (exchange);
  if (self->streaming)
    set_bytes_sent (self, cp_channel_exchange_get_body_sent (exchange));
  if (error == NULL)
    cp_stream_decoder_set_http_trailers (self->decoder,
                                         cp_channel_exchange_get_response_trailers (exchange));
  g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
  if (error != NULL)
    attempt_fail (self, g_error_copy (error));
  else if (!cp_stream_decoder_finish (self->decoder, &stream_error))
    attempt_fail (self, stream_error);
  else if (self->n_messages != 1)
    stream_complete (self, g_error_new_literal (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                                "a client-streaming call returned no message"));
  else
    stream_complete (self, NULL);
}

static const CpChannelExchangeCallbacks stream_callbacks = {
  on_head,
  on_chunk,
  on_end,
  on_progress,
};

static void stream_start (CpRequestStream *self);

/* Envelopes @message and queues it (or hands it to the full-duplex call, or
 * to the exchange of a streamed one); starts streaming once the held body
 * outgrew STREAM_QUEUE_LIMIT. *@size: the enveloped size (0 when nothing
 * waits for the transport). */
static gboolean
stream_queue_message (CpRequestStream  *stream,
                      CpMessage        *message,
                      gsize            *size,
                      GError          **error)
{
  g_autoptr(GByteArray) envelope = NULL;
  g_autoptr(GBytes) bytes = NULL;

  *size = 0;
  if (stream->closing || stream->cancelled)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                           "the request stream is closed");
      return FALSE;
    }
  if (stream->done)
    {
      if (stream->outcome != NULL)
        g_propagate_error (error, g_error_copy (stream->outcome));
      else
        g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                             "the call already ended");
      return FALSE;
    }
  if (stream->duplex != NULL)
    {
      envelope = g_byte_array_new ();
      if (!cp_call_settings_append_envelope (&stream->settings, message, envelope, error))
        return FALSE;
      bytes = g_byte_array_free_to_bytes (g_steal_pointer (&envelope));
      *size = g_bytes_get_size (bytes);
      cp_response_stream_write_internal (stream->duplex, bytes);
      return TRUE;
    }
  if (!stream->streaming || stream->exchange == NULL)
    {
      guint before = stream->body->len;

      if (!cp_call_settings_append_envelope (&stream->settings, message, stream->body, error))
        return FALSE;
      *size = stream->body->len - before;
      if (!stream->streaming && stream->kind == CP_METHOD_CLIENT_STREAMING &&
          stream->body->len > STREAM_QUEUE_LIMIT &&
          cp_channel_exchange_channel_streams_body (stream->channel))
        stream_start (stream);
      return TRUE;
    }
  envelope = g_byte_array_new ();
  if (!cp_call_settings_append_envelope (&stream->settings, message, envelope, error))
    return FALSE;
  *size = envelope->len;
  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&envelope));
  cp_client_metrics_call_add_bytes (&stream->settings.metrics, TRUE, g_bytes_get_size (bytes));
  cp_channel_exchange_write_body (stream->exchange, bytes);
  return TRUE;
}

static gboolean
send_op_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  SendOp *op = user_data;
  CpRequestStream *self = op->stream;
  g_autoptr(GTask) task = g_steal_pointer (&op->task);

  g_queue_remove (&self->sends, op);
  send_op_free (op);
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           "the send was cancelled (the message stays queued)");
  return G_SOURCE_REMOVE;
}

/* Completes @task now when at most @threshold bytes wait for the
 * transport, else once the transport took enough. */
static void
stream_wait_room (CpRequestStream *self,
                  GTask           *task,
                  gsize            threshold)
{
  SendOp *op;

  if (!stream_waits (self) || stream_pending (self) <= threshold)
    {
      refresh_bytes_sent (self);
      g_task_return_boolean (task, TRUE);
      return;
    }
  op = g_new0 (SendOp, 1);
  op->stream = self;
  op->task = g_object_ref (task);
  op->threshold = threshold;
  if (g_task_get_cancellable (task) != NULL)
    {
      op->cancel_source = g_cancellable_source_new (g_task_get_cancellable (task));
      g_source_set_callback (op->cancel_source, G_SOURCE_FUNC (send_op_cancelled), op, NULL);
      g_source_set_static_name (op->cancel_source, "[connectplugin] send cancelled");
      g_source_attach (op->cancel_source, g_task_get_context (task));
    }
  g_queue_push_tail (&self->sends, op);
}

/**
 * cp_request_stream_send_async:
 * @stream: a [class@ConnectPlugin.RequestStream]
 * @message: a request message
 * @cancellable: (nullable): a [class@Gio.Cancellable]: stops the wait
 *   (the message stays queued)
 * @callback: (scope async): called once the transport can take more, in the
 *   thread-default main context of the caller
 * @user_data: (closure): data for @callback
 *
 * Queues @message, and completes once the transport can take more: at
 * once while the call holds its body (up to 256 KiB), else once the
 * transport has taken what was queued before this message, down to
 * 256 KiB or this message, whichever is larger (see the class
 * documentation). Waiting for each send before the next keeps the memory
 * of an upload bounded.
 */
void
cp_request_stream_send_async (CpRequestStream     *stream,
                              CpMessage           *message,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  gsize size;

  g_return_if_fail (CP_IS_REQUEST_STREAM (stream));
  g_return_if_fail (CP_IS_MESSAGE (message));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (stream, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_request_stream_send_async);
  g_task_set_name (task, "[connectplugin] client stream send");
  if (!stream_queue_message (stream, message, &size, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  stream_wait_room (stream, task, MAX (STREAM_QUEUE_LIMIT, size));
}

/**
 * cp_request_stream_send_finish:
 * @stream: a [class@ConnectPlugin.RequestStream]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.RequestStream.send_async].
 *
 * Returns: %TRUE when the message was queued and the transport can take
 *   more; %FALSE with `failed_precondition` after the stream was closed or
 *   cancelled, or when the message cannot be encoded, with
 *   %G_IO_ERROR_CANCELLED when @cancellable stopped the wait, or with the
 *   call's error when a streamed call ended early
 */
gboolean
cp_request_stream_send_finish (CpRequestStream  *stream,
                               GAsyncResult     *result,
                               GError          **error)
{
  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

typedef struct {
  CpRequestStream *stream;
  gsize threshold;
} WaitSync;

static void
start_wait (gpointer             data,
            GAsyncReadyCallback  callback,
            gpointer             callback_data)
{
  WaitSync *sync = data;
  g_autoptr(GTask) task = g_task_new (sync->stream, NULL, callback, callback_data);

  g_task_set_source_tag (task, cp_request_stream_send);
  stream_wait_room (sync->stream, task, sync->threshold);
}

/**
 * cp_request_stream_send:
 * @stream: a [class@ConnectPlugin.RequestStream]
 * @message: a request message
 * @error: return location for a [struct@GLib.Error]
 *
 * Queues @message: the blocking form of
 * [method@ConnectPlugin.RequestStream.send_async]. While the call holds its
 * body it returns at once; once the body streams, it blocks until the
 * transport can take more, the [struct@GLib.MainContext] the stream was
 * made in running meanwhile as for
 * [method@ConnectPlugin.RequestStream.close_sync].
 *
 * Returns: %TRUE on success; %FALSE (`failed_precondition`) after the
 *   stream was closed or cancelled, or when @message cannot be encoded, or
 *   the call's error when a streamed call ended early
 */
gboolean
cp_request_stream_send (CpRequestStream  *stream,
                        CpMessage        *message,
                        GError          **error)
{
  WaitSync sync = { stream, 0 };
  g_autoptr(GAsyncResult) result = NULL;
  gsize size;

  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), FALSE);
  g_return_val_if_fail (CP_IS_MESSAGE (message), FALSE);

  if (!stream_queue_message (stream, message, &size, error))
    return FALSE;
  sync.threshold = MAX (STREAM_QUEUE_LIMIT, size);
  if (!stream_waits (stream) || stream_pending (stream) <= sync.threshold)
    {
      refresh_bytes_sent (stream);
      return TRUE;
    }
  result = cp_run_sync (stream->context, start_wait, &sync);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * cp_request_stream_get_bytes_sent: (get-property bytes-sent)
 * @stream: a [class@ConnectPlugin.RequestStream]
 *
 * Gets [property@ConnectPlugin.RequestStream:bytes-sent].
 *
 * Returns: the bytes of the request body the transport took so far
 */
guint64
cp_request_stream_get_bytes_sent (CpRequestStream *stream)
{
  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), 0);

  return stream->bytes_sent;
}

/* One attempt: the breaker, then the exchange. */
static void
request_attempt (CpRequestStream *self)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  GError *error = NULL;

  cp_call_retry_begin_attempt (&self->retry);
  /* gRPC needs HTTP trailers: only the HTTP/2 transport gives them. */
  if (!cp_channel_protocol_usable (self->channel, self->settings.protocol, &error))
    {
      stream_complete (self, error);
      return;
    }
  /* A refusal of the circuit breaker is never retried. */
  if (!cp_channel_admit (self->channel, self->options, &self->admission, &error))
    {
      stream_complete (self, error);
      return;
    }
  if (self->retry.attempts > 1)
    {
      /* What the failed attempt left. */
      cp_stream_decoder_free (self->decoder);
      self->decoder = cp_stream_decoder_new (self->response_type, self->settings.codec,
                                             self->settings.protocol,
                                             self->settings.max_receive_size);
      soup_message_headers_clear (self->response_headers);
      g_clear_object (&self->response);
      self->n_messages = 0;
      self->not_sent = FALSE;
    }
  headers = cp_call_settings_stream_headers (&self->settings);
  if (self->streaming)
    {
      g_autoptr(GBytes) held = g_byte_array_free_to_bytes (g_steal_pointer (&self->body));

      self->body = g_byte_array_new ();
      self->exchange = cp_channel_exchange_new (self->channel, "POST", self->procedure,
                                                headers, NULL, self->settings.deadline,
                                                self->cancellable, &stream_callbacks,
                                                g_object_ref (self), g_object_unref);
      cp_channel_exchange_set_request_half_duplex (self->exchange);
      cp_channel_exchange_start (self->exchange);
      cp_client_metrics_call_add_bytes (&self->settings.metrics, TRUE, g_bytes_get_size (held));
      if (g_bytes_get_size (held) > 0)
        cp_channel_exchange_write_body (self->exchange, held);
      if (self->closing)
        cp_channel_exchange_end_body (self->exchange);
      return;
    }
  self->exchange = cp_channel_exchange_new (self->channel, "POST", self->procedure,
                                            headers, self->request_body, self->settings.deadline,
                                            self->cancellable, &stream_callbacks,
                                            g_object_ref (self), g_object_unref);
  cp_client_metrics_call_add_bytes (&self->settings.metrics, TRUE,
                                    g_bytes_get_size (self->request_body));
  cp_channel_exchange_start (self->exchange);
}

/* The interceptors decided (cp_client_call_intercept ()). */
static void
request_decided (GObject   *owner,
                 GError    *error,
                 CpMessage *answer)
{
  CpRequestStream *self = CP_REQUEST_STREAM (owner);

  g_clear_object (&answer);   /* unary calls only */
  if (!self->running)
    g_clear_error (&error);
  else if (error != NULL)
    stream_complete (self, error);
  else if (self->cancelled || g_cancellable_is_cancelled (self->cancellable))
    stream_complete (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                "the call was cancelled"));
  else
    request_attempt (self);
}

/* The held body outgrew STREAM_QUEUE_LIMIT: the call starts, its body
 * streamed from now on (the interceptors decide first). */
static void
stream_start (CpRequestStream *self)
{
  self->streaming = TRUE;
  self->running = TRUE;
  self->call_cancellable = g_cancellable_new ();
  self->cancellable = self->call_cancellable;
  if (self->options != NULL)
    cp_call_options_set_response (self->options, NULL, NULL);
  self->call = cp_call_settings_wrap (&self->settings, self->channel, self->options,
                                      self->procedure, self->kind, self->idempotency,
                                      NULL, &self->retry);
  if (self->call != NULL)
    cp_client_call_intercept (self->call, G_OBJECT (self), self->call_cancellable,
                              request_decided);
  else
    request_attempt (self);
}

/* Any thread: the close's cancellable cancels a streamed call. */
static void
on_close_cancelled (GCancellable *cancellable,
                    gpointer      user_data)
{
  g_cancellable_cancel (user_data);
}

/**
 * cp_request_stream_close_async:
 * @stream: a [class@ConnectPlugin.RequestStream]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called with the response, in the thread-default
 *   main context of the caller
 * @user_data: (closure): data for @callback
 *
 * Ends the request stream: sends every queued message and waits for the
 * server's single response message. Call it once.
 *
 * For a body held until now this is when the interceptors decide, then the
 * channel's [property@Channel:circuit-breaker] is asked (by each attempt):
 * when it refuses the call, it fails with `unavailable` ("circuit breaker
 * is open") without sending anything. A streamed call (see the class
 * documentation) started earlier: its body ends now.
 */
void
cp_request_stream_close_async (CpRequestStream     *stream,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_REQUEST_STREAM (stream));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (stream, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_request_stream_close_async);
  g_task_set_name (task, "[connectplugin] client stream");
  /* Cancellation is reported (G_IO_ERROR_CANCELLED) by the call itself. */
  g_task_set_check_cancellable (task, FALSE);

  if (stream->closing)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                               "the request stream is already closed");
      return;
    }
  stream->closing = TRUE;
  if (stream->options != NULL)
    cp_call_options_set_response (stream->options, NULL, NULL);
  if (stream->streaming)
    {
      if (stream->done)
        {
          if (stream->outcome != NULL)
            g_task_return_error (task, g_steal_pointer (&stream->outcome));
          else
            g_task_return_pointer (task, g_steal_pointer (&stream->response), g_object_unref);
          return;
        }
      stream->task = g_steal_pointer (&task);
      if (cancellable != NULL)
        {
          stream->close_cancellable = g_object_ref (cancellable);
          stream->close_cancel_id = g_cancellable_connect (cancellable,
                                                           G_CALLBACK (on_close_cancelled),
                                                           g_object_ref (stream->call_cancellable),
                                                           g_object_unref);
        }
      if (stream->exchange != NULL)
        cp_channel_exchange_end_body (stream->exchange);
      return;
    }
  if (stream->cancelled)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "the call was cancelled");
      return;
    }

  stream->task = g_steal_pointer (&task);
  stream->running = TRUE;
  stream->cancellable = cancellable;
  stream->request_body = g_byte_array_free_to_bytes (g_steal_pointer (&stream->body));
  stream->call = cp_call_settings_wrap (&stream->settings, stream->channel, stream->options,
                                        stream->procedure, stream->kind, stream->idempotency,
                                        NULL, &stream->retry);
  if (stream->call != NULL)
    cp_client_call_intercept (stream->call, G_OBJECT (stream), cancellable, request_decided);
  else
    request_attempt (stream);
}

/**
 * cp_request_stream_close_finish:
 * @stream: a [class@ConnectPlugin.RequestStream]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * Finishes [method@ConnectPlugin.RequestStream.close_async].
 *
 * Returns: (transfer full): the response message, or %NULL on error
 */
CpMessage *
cp_request_stream_close_finish (CpRequestStream  *stream,
                                GAsyncResult     *result,
                                GError          **error)
{
  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), NULL);
  g_return_val_if_fail (g_task_is_valid (result, stream), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct {
  CpRequestStream *stream;
  GCancellable *cancellable;
} CloseSync;

static void
start_close (gpointer             data,
             GAsyncReadyCallback  callback,
             gpointer             callback_data)
{
  CloseSync *sync = data;

  cp_request_stream_close_async (sync->stream, sync->cancellable, callback, callback_data);
}

/**
 * cp_request_stream_close_sync:
 * @stream: a [class@ConnectPlugin.RequestStream] of a client-streaming call
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * The blocking form of [method@ConnectPlugin.RequestStream.close_async]:
 * sends what was queued and waits for the response. The
 * [struct@GLib.MainContext] the stream was made in keeps running meanwhile:
 * this thread iterates it when it may (it is the thread that runs it, or no
 * thread does; a server this thread serves then answers too); else the
 * close runs there and this thread waits.
 *
 * Returns: (transfer full): the response, or %NULL on error
 */
CpMessage *
cp_request_stream_close_sync (CpRequestStream  *stream,
                              GCancellable     *cancellable,
                              GError          **error)
{
  CloseSync sync = { stream, cancellable };
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);

  result = cp_run_sync (stream->context, start_close, &sync);
  return cp_request_stream_close_finish (stream, result, error);
}

/**
 * cp_request_stream_close_and_receive:
 * @stream: a [class@ConnectPlugin.RequestStream]
 *
 * Ends the request stream of a half-duplex bidirectional call (made with
 * [method@ConnectPlugin.Channel.call_bidi_stream]): sends every queued message, and returns
 * the stream on which the responses arrive. Connect to its signals right
 * away; the request is sent when control returns to the main loop of the
 * thread-default main context (or at [method@ConnectPlugin.ResponseStream.start]), and the
 * signals are emitted in that context. Also usable for client-streaming
 * calls (the response stream then carries the single response).
 *
 * The call's deadline still counts from the creation of @stream. Cancel the
 * call from now on with [method@ConnectPlugin.ResponseStream.cancel]. If @stream was already
 * closed or cancelled, the returned stream closes with
 * `failed_precondition` or %G_IO_ERROR_CANCELLED without sending anything. Call it
 * once, instead of [method@ConnectPlugin.RequestStream.close_async].
 *
 * Returns: (transfer full): the response stream
 */
CpResponseStream *
cp_request_stream_close_and_receive (CpRequestStream *stream)
{
  g_autoptr(GBytes) body = NULL;
  GError *error = NULL;

  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), NULL);

  if (stream->closing)
    error = g_error_new_literal (CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                                 "the request stream is already closed");
  else if (stream->cancelled)
    error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the call was cancelled");
  else if (stream->streaming)
    error = g_error_new_literal (CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                                 "the request body is streaming: end it with close_async ()");
  else
    body = g_byte_array_free_to_bytes (g_steal_pointer (&stream->body));
  stream->closing = TRUE;

  return cp_response_stream_new_for_body_internal (stream->channel, stream->procedure, body,
                                                   error, stream->kind, stream->idempotency,
                                                   stream->response_type,
                                                   stream->options, stream->settings.deadline,
                                                   stream->settings.n_envelopes);
}

/**
 * cp_request_stream_cancel:
 * @stream: a [class@ConnectPlugin.RequestStream]
 *
 * Cancels the call: a pending [method@ConnectPlugin.RequestStream.close_async] fails with
 * %G_IO_ERROR_CANCELLED (its HTTP exchange is aborted); before it, the
 * stream refuses further messages and closing fails with
 * %G_IO_ERROR_CANCELLED.
 */
void
cp_request_stream_cancel (CpRequestStream *stream)
{
  g_return_if_fail (CP_IS_REQUEST_STREAM (stream));

  stream->cancelled = TRUE;
  if (stream->call_cancellable != NULL)
    g_cancellable_cancel (stream->call_cancellable);
  if (stream->duplex != NULL)
    cp_response_stream_cancel (stream->duplex);
  else if (stream->exchange != NULL)
    cp_channel_exchange_cancel (stream->exchange);
  else if (cp_call_retry_is_waiting (&stream->retry))
    {
      /* Waiting before a retry: it ends now, from the main loop. */
      cp_call_retry_stop_wait (&stream->retry);
      cp_call_retry_wait (&stream->retry, g_task_get_context (stream->task), 0, NULL,
                          request_backoff_over, G_OBJECT (stream));
    }
}

/**
 * cp_request_stream_get_response_headers:
 * @stream: a [class@ConnectPlugin.RequestStream]
 *
 * Gets the response headers, once they arrived.
 *
 * Returns: (transfer none): the response headers; empty until the
 *   response arrived
 */
SoupMessageHeaders *
cp_request_stream_get_response_headers (CpRequestStream *stream)
{
  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), NULL);

  return stream->response_headers;
}

/**
 * cp_request_stream_get_response_trailers:
 * @stream: a [class@ConnectPlugin.RequestStream]
 *
 * Gets the response trailers, once the call ended.
 *
 * Returns: (transfer none): the trailers (EndStream metadata); empty until
 *   the call completed
 */
SoupMessageHeaders *
cp_request_stream_get_response_trailers (CpRequestStream *stream)
{
  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), NULL);

  return stream->response_trailers;
}

/* Full duplex: the transport took more of the body, or the call ended. */
static void
on_duplex_progress (gpointer      data,
                    gboolean      ended,
                    const GError *error)
{
  CpRequestStream *self = data;
  g_autoptr(CpRequestStream) hold = g_object_ref (self);

  refresh_bytes_sent (self);
  if (ended)
    self->duplex_done = TRUE;
  complete_sends (self, ended, error);
}

/**
 * cp_request_stream_start_duplex:
 * @stream: a [class@ConnectPlugin.RequestStream] of a bidirectional (or
 *   client-streaming) call
 *
 * Makes the call full-duplex: the request is sent now, every message
 * queued so far and each one given to [method@ConnectPlugin.RequestStream.send]
 * from now on goes out at once, and the responses arrive on the returned
 * stream while the request is still open. End the request with
 * [method@ConnectPlugin.RequestStream.close_send]. Connect to the returned
 * stream's signals right away; they are emitted in the thread-default
 * main context, as for [method@ConnectPlugin.RequestStream.close_and_receive].
 *
 * This needs a channel speaking HTTP/2 ([property@Channel:http-version]);
 * on any other channel (HTTP/1.1, in-process) the returned stream closes
 * with `unimplemented` without sending anything. A full-duplex call is
 * never retried. Call it once, instead of
 * [method@ConnectPlugin.RequestStream.close_and_receive] or
 * [method@ConnectPlugin.RequestStream.close_async].
 *
 * Returns: (transfer full): the response stream
 */
CpResponseStream *
cp_request_stream_start_duplex (CpRequestStream *stream)
{
  g_autoptr(GBytes) queued = NULL;
  GError *error = NULL;
  CpResponseStream *responses;

  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), NULL);

  if (stream->closing)
    error = g_error_new_literal (CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                                 "the request stream is already closed");
  else if (stream->cancelled)
    error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the call was cancelled");
  else if (stream->streaming)
    error = g_error_new_literal (CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                                 "the request body is streaming: end it with close_async ()");
  else if (!cp_channel_exchange_channel_full_duplex (stream->channel))
    error = g_error_new_literal (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                 "full-duplex calls need a channel speaking HTTP/2");
  queued = g_byte_array_free_to_bytes (g_steal_pointer (&stream->body));
  stream->body = g_byte_array_new ();

  responses = cp_response_stream_new_for_body_internal (stream->channel, stream->procedure, NULL,
                                                        error, stream->kind, stream->idempotency,
                                                        stream->response_type,
                                                        stream->options, stream->settings.deadline,
                                                        stream->settings.n_envelopes);
  if (error != NULL)
    {
      stream->closing = TRUE;
      return responses;
    }
  cp_response_stream_make_duplex_internal (responses);
  if (g_bytes_get_size (queued) > 0)
    cp_response_stream_write_internal (responses, queued);
  stream->duplex = g_object_ref (responses);
  cp_response_stream_set_request_progress_internal (responses, on_duplex_progress, stream);
  return responses;
}

/**
 * cp_request_stream_close_send:
 * @stream: a [class@ConnectPlugin.RequestStream] made full-duplex with
 *   [method@ConnectPlugin.RequestStream.start_duplex]
 *
 * Ends the request of a full-duplex call: the server sees the end of the
 * request stream; responses keep arriving on the response stream until the
 * server ends the call. Later [method@ConnectPlugin.RequestStream.send]
 * calls fail with `failed_precondition`.
 */
void
cp_request_stream_close_send (CpRequestStream *stream)
{
  g_return_if_fail (CP_IS_REQUEST_STREAM (stream));
  g_return_if_fail (stream->duplex != NULL);

  if (stream->closing)
    return;
  stream->closing = TRUE;
  cp_response_stream_end_request_internal (stream->duplex);
}
