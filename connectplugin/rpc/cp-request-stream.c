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
 * queues enveloped messages, and [method@ConnectPlugin.RequestStream.close_async] sends the
 * whole request body (with a `Content-Length`) and waits for the single
 * response message. The result is delivered in the [struct@GLib.MainContext] that was
 * the thread-default one when [method@ConnectPlugin.RequestStream.close_async] was called.
 *
 * As the whole request body is buffered before it is sent, a
 * [class@RetryPolicy] may send it again when an attempt failed before the
 * response message arrived (for a method that may be sent twice, or an
 * attempt that never reached the server). The channel's and the call's
 * [class@ClientInterceptor]s decide at close time, before anything is
 * sent, and are told the outcome.
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
};

G_DEFINE_FINAL_TYPE (CpRequestStream, cp_request_stream, G_TYPE_OBJECT)

static void
cp_request_stream_finalize (GObject *object)
{
  CpRequestStream *self = CP_REQUEST_STREAM (object);

  g_assert (self->task == NULL);
  cp_call_options_disconnect_cancel (self->options, self->options_cancel_id);
  g_clear_pointer (&self->context, g_main_context_unref);
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
cp_request_stream_class_init (CpRequestStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cp_request_stream_finalize;
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
  g_autoptr(GTask) task = g_steal_pointer (&self->task);

  if (task == NULL)
    {
      g_clear_error (&error);
      return;
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
  if (error != NULL)
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

  if (self->task == NULL)
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

  if (self->task == NULL || self->cancelled ||
      g_cancellable_is_cancelled (g_task_get_cancellable (self->task)) ||
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
                      g_task_get_cancellable (self->task), request_backoff_over,
                      G_OBJECT (self));
}

static void
on_head (CpChannelExchange *exchange,
         gpointer           user_data)
{
  CpRequestStream *self = user_data;
  GError *error = NULL;

  if (!cp_stream_decoder_exchange_head (self->decoder, exchange, self->response_headers, &error))
    attempt_fail (self, error);
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
};

/**
 * cp_request_stream_send:
 * @stream: a [class@ConnectPlugin.RequestStream]
 * @message: a request message
 * @error: return location for a [struct@GLib.Error]
 *
 * Queues @message; it is sent by [method@ConnectPlugin.RequestStream.close_async].
 *
 * Returns: %TRUE on success; %FALSE (`failed_precondition`) after the
 *   stream was closed or cancelled, or when @message cannot be encoded
 */
gboolean
cp_request_stream_send (CpRequestStream  *stream,
                        CpMessage        *message,
                        GError          **error)
{
  g_return_val_if_fail (CP_IS_REQUEST_STREAM (stream), FALSE);
  g_return_val_if_fail (CP_IS_MESSAGE (message), FALSE);

  if (stream->closing || stream->cancelled)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                           "the request stream is closed");
      return FALSE;
    }
  if (stream->duplex != NULL)
    {
      g_autoptr(GByteArray) envelope = g_byte_array_new ();
      g_autoptr(GBytes) bytes = NULL;

      if (!cp_call_settings_append_envelope (&stream->settings, message, envelope, error))
        return FALSE;
      bytes = g_byte_array_free_to_bytes (g_steal_pointer (&envelope));
      cp_response_stream_write_internal (stream->duplex, bytes);
      return TRUE;
    }
  return cp_call_settings_append_envelope (&stream->settings, message, stream->body, error);
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
  self->exchange = cp_channel_exchange_new (self->channel, "POST", self->procedure,
                                            headers, self->request_body, self->settings.deadline,
                                            g_task_get_cancellable (self->task), &stream_callbacks,
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
  if (self->task == NULL)
    g_clear_error (&error);
  else if (error != NULL)
    stream_complete (self, error);
  else if (self->cancelled || g_cancellable_is_cancelled (g_task_get_cancellable (self->task)))
    stream_complete (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                "the call was cancelled"));
  else
    request_attempt (self);
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
 * This is when the interceptors decide, then the channel's
 * [property@Channel:circuit-breaker] is asked (by each attempt): when it
 * refuses the call, it fails with `unavailable` ("circuit breaker is
 * open") without sending anything.
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
  if (stream->cancelled)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "the call was cancelled");
      return;
    }

  stream->task = g_steal_pointer (&task);
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
