/* cp-response-stream.c: messages arriving from a server-streaming call
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-response-stream-private.h"
#include "cp-call-options-private.h"
#include "cp-client-call-private.h"
#include "cp-call-settings-private.h"
#include "cp-channel-exchange-private.h"
#include "cp-channel-private.h"
#include "cp-channel-util-private.h"
#include "cp-stream-decoder-private.h"
#include "cp-error.h"

/**
 * CpResponseStream:
 *
 * The client side of a server-streaming call, made with
 * [method@ConnectPlugin.Channel.call_server_stream].
 *
 * The stream emits [signal@ResponseStream::headers] once the response
 * headers arrived, [signal@ResponseStream::message] for each response
 * message and finally [signal@ResponseStream::closed], always in the
 * [struct@GLib.MainContext] that was the thread-default one when the call was made.
 *
 * The request is sent from an idle callback of that context, so connect the
 * signals right after creating the stream; or call
 * [method@ConnectPlugin.ResponseStream.start] explicitly.
 *
 * [method@ConnectPlugin.ResponseStream.pause] stops delivering messages and stops reading
 * the response body (so the server is eventually slowed down by TCP flow
 * control) until [method@ConnectPlugin.ResponseStream.resume]. The deadline keeps running
 * while paused.
 *
 * The channel's and the call's [class@ClientInterceptor]s decide when the
 * request is about to be sent, and are told the status the stream closes
 * with. With a [class@RetryPolicy], a stream that failed before any
 * message arrived may be sent again after a backoff (when its method may
 * be sent twice, or it never reached the server); it is never sent again
 * once [signal@ResponseStream::message] was emitted. Each attempt that
 * gets a response emits [signal@ResponseStream::headers], so the signal
 * may come again, before any message, after a failed attempt; `closed`
 * is emitted once, with the final status.
 */
struct _CpResponseStream
{
  GObject parent_instance;

  CpChannel *channel;
  GMainContext *context;
  CpCallOptions *options;
  gulong options_cancel_id;      /* the options' cancellable cancels the stream */
  CpCallSettings settings;
  GType response_type;
  char *procedure;
  GBytes *body;
  GError *setup_error;

  CpChannelExchange *exchange;
  CpChannelAdmission admission;  /* from the channel's circuit breaker */
  CpMethodKind kind;
  CpClientCall *call;            /* NULL when no interceptor applies */
  GCancellable *cancellable;     /* given to the interceptors' decisions */
  CpCallRetry retry;
  guint n_received;              /* messages emitted */
  gboolean not_sent;             /* the last attempt never reached the server */
  CpStreamDecoder *decoder;
  GSource *start_source;
  GSource *process_source;
  GError *pending_close;   /* set when closing has been decided */

  gboolean started;
  gboolean paused;
  gboolean body_ended;
  gboolean connection_lost; /* the body ended because the server closed */
  gboolean closed;

  SoupMessageHeaders *response_headers;
  SoupMessageHeaders *response_trailers;

  /* Full duplex (HTTP/2): the request body is written as it comes; what
   * comes before the exchange exists waits here. */
  gboolean duplex;
  gboolean duplex_ended;
  GQueue duplex_out;             /* GBytes */
  gsize duplex_out_size;         /* their bytes */
  CpResponseStreamRequestFunc request_progress;   /* the request stream's */
  gpointer request_progress_data;
};

G_DEFINE_FINAL_TYPE (CpResponseStream, cp_response_stream, G_TYPE_OBJECT)

enum {
  SIGNAL_HEADERS,
  SIGNAL_MESSAGE,
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
cp_response_stream_dispose (GObject *object)
{
  CpResponseStream *self = CP_RESPONSE_STREAM (object);

  destroy_source (&self->start_source);
  destroy_source (&self->process_source);
  if (self->exchange != NULL)
    {
      cp_channel_exchange_close (self->exchange);
      g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
    }
  cp_channel_admission_clear (&self->admission);
  cp_call_retry_stop_wait (&self->retry);

  G_OBJECT_CLASS (cp_response_stream_parent_class)->dispose (object);
}

static void
cp_response_stream_finalize (GObject *object)
{
  CpResponseStream *self = CP_RESPONSE_STREAM (object);

  cp_call_options_disconnect_cancel (self->options, self->options_cancel_id);
  g_clear_pointer (&self->decoder, cp_stream_decoder_free);
  cp_call_retry_clear (&self->retry);
  g_clear_pointer (&self->call, cp_client_call_unref);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->setup_error);
  g_clear_error (&self->pending_close);
  g_clear_pointer (&self->body, g_bytes_unref);
  g_queue_clear_full (&self->duplex_out, (GDestroyNotify) g_bytes_unref);
  g_free (self->procedure);
  cp_call_settings_clear (&self->settings);
  g_clear_object (&self->options);
  g_clear_pointer (&self->response_headers, soup_message_headers_unref);
  g_clear_pointer (&self->response_trailers, soup_message_headers_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_object (&self->channel);

  G_OBJECT_CLASS (cp_response_stream_parent_class)->finalize (object);
}

static void
cp_response_stream_class_init (CpResponseStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = cp_response_stream_dispose;
  object_class->finalize = cp_response_stream_finalize;

  /**
   * CpResponseStream::headers:
   * @stream: the stream
   * @headers: the response headers (leading metadata)
   *
   * Emitted once, when the response headers of a successful (HTTP 200)
   * response arrived, before any message. When a [class@RetryPolicy]
   * tries the call again after a failure that came before any message, it
   * is emitted again with the headers of the new attempt.
   */
  signals[SIGNAL_HEADERS] =
    g_signal_new ("headers", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, SOUP_TYPE_MESSAGE_HEADERS | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * CpResponseStream::message:
   * @stream: the stream
   * @message: one response message, of the call's response type
   *
   * Emitted for each response message, in order.
   */
  signals[SIGNAL_MESSAGE] =
    g_signal_new ("message", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, CP_TYPE_MESSAGE);

  /**
   * CpResponseStream::closed:
   * @stream: the stream
   * @error: (nullable): %NULL when the call succeeded, otherwise the error
   *   (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED) that ended it
   *
   * Emitted once when the call is over; no signal follows. The trailers
   * are available from [method@ConnectPlugin.ResponseStream.get_response_trailers].
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_response_stream_init (CpResponseStream *self)
{
  self->response_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  self->response_trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
}

/* Ends the stream and emits closed (@error: transfer full, nullable). */
static void
stream_close (CpResponseStream *self,
              GError           *error)
{
  g_autoptr(CpResponseStream) self_ref = g_object_ref (self);
  g_autoptr(GError) owned = error;

  if (self->closed)
    return;
  self->closed = TRUE;

  destroy_source (&self->start_source);
  destroy_source (&self->process_source);
  cp_call_retry_stop_wait (&self->retry);
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  if (self->exchange != NULL)
    {
      cp_channel_exchange_close (self->exchange);
      g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
    }
  if (self->decoder != NULL)
    {
      soup_message_headers_clear (self->response_trailers);
      cp_headers_copy_into (self->response_trailers,
                            cp_stream_decoder_get_trailers (self->decoder));
    }
  if (self->options != NULL)
    cp_call_options_set_response (self->options, self->response_headers, self->response_trailers);
  cp_channel_error_set_metadata (owned, self->response_headers, self->response_trailers);
  cp_channel_admission_settle (&self->admission, owned);
  cp_call_settings_end (&self->settings, owned);
  cp_call_settings_trace_end (&self->settings, self->channel, self->procedure, owned);
  if (self->call != NULL)
    {
      cp_client_call_set_attempts (self->call, self->retry.attempts);
      cp_client_call_set_response_metadata (self->call, self->response_headers,
                                            self->response_trailers);
      cp_client_call_complete (self->call, owned, NULL);
    }

  if (self->request_progress != NULL)
    self->request_progress (self->request_progress_data, TRUE, owned);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0, owned);
}

static void stream_attempt (CpResponseStream *self);

static void
stream_backoff_over (GObject  *owner,
                     gboolean  cancelled)
{
  CpResponseStream *self = CP_RESPONSE_STREAM (owner);

  if (!self->closed)
    stream_attempt (self);
}

/* The attempt under way failed with @error (transfer full): tries again
 * after a backoff when the call's retry policy says so, else closes. */
static void
stream_fail (CpResponseStream *self,
             GError           *error)
{
  guint delay_ms;

  if (self->closed || self->pending_close != NULL ||
      !cp_call_retry_decide (&self->retry, self->procedure, error, self->not_sent,
                             self->n_received > 0, &delay_ms))
    {
      stream_close (self, error);
      return;
    }
  g_debug ("%s: attempt %u failed (%s), retrying in %u ms", self->procedure,
           self->retry.attempts, error->message, delay_ms);
  if (self->exchange != NULL)
    {
      cp_channel_exchange_close (self->exchange);
      g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
    }
  destroy_source (&self->process_source);
  cp_channel_admission_settle (&self->admission, error);
  g_error_free (error);
  cp_call_retry_wait (&self->retry, self->context, delay_ms, NULL, stream_backoff_over,
                      G_OBJECT (self));
}

/* Delivers decoded messages while not paused; closes at the end. */
static void
stream_process (CpResponseStream *self)
{
  g_autoptr(CpResponseStream) self_ref = g_object_ref (self);

  while (!self->closed && !self->paused)
    {
      g_autoptr(CpMessage) message = NULL;
      GError *error = NULL;

      if (self->pending_close != NULL)
        {
          stream_close (self, g_steal_pointer (&self->pending_close));
          return;
        }
      if (cp_stream_decoder_next (self->decoder, &message, &error))
        {
          self->n_received++;
          cp_client_metrics_call_add_messages (&self->settings.metrics, FALSE, 1);
          g_signal_emit (self, signals[SIGNAL_MESSAGE], 0, message);
          continue;
        }
      if (error != NULL)
        {
          stream_fail (self, error);
          return;
        }
      if (self->body_ended)
        {
          if (cp_stream_decoder_finish (self->decoder, &error))
            stream_close (self, NULL);
          else if (self->connection_lost && !cp_stream_decoder_has_end_stream (self->decoder))
            {
              /* Cut off, not a server that forgot EndStream (`internal`). */
              g_error_free (error);
              stream_fail (self, g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                              "the server closed the connection "
                                              "before the end of the stream"));
            }
          else
            stream_fail (self, error);
        }
      return;
    }
}

static void
on_head (CpChannelExchange *exchange,
         gpointer           user_data)
{
  CpResponseStream *self = user_data;
  GError *error = NULL;

  if (!cp_stream_decoder_exchange_head (self->decoder, exchange, self->response_headers, &error))
    {
      stream_fail (self, error);
      return;
    }
  g_signal_emit (self, signals[SIGNAL_HEADERS], 0, self->response_headers);
}

static void
on_chunk (CpChannelExchange *exchange,
          GBytes            *chunk,
          gpointer           user_data)
{
  CpResponseStream *self = user_data;

  cp_client_metrics_call_add_bytes (&self->settings.metrics, FALSE, g_bytes_get_size (chunk));
  cp_stream_decoder_push (self->decoder, chunk);
  stream_process (self);
}

static void
on_end (CpChannelExchange *exchange,
        const GError      *error,
        gpointer           user_data)
{
  CpResponseStream *self = user_data;

  self->connection_lost = cp_channel_exchange_get_connection_lost (exchange);
  self->not_sent = cp_channel_exchange_get_not_sent (exchange);
  if (error == NULL)
    cp_stream_decoder_set_http_trailers (self->decoder,
                                         cp_channel_exchange_get_response_trailers (exchange));
  g_clear_pointer (&self->exchange, cp_channel_exchange_unref);
  if (error != NULL)
    {
      stream_fail (self, g_error_copy (error));
      return;
    }
  self->body_ended = TRUE;
  stream_process (self);
}

/* Full duplex: the transport took more of the request body. */
static void
on_progress (CpChannelExchange *exchange,
             gpointer           user_data)
{
  CpResponseStream *self = user_data;

  if (self->request_progress != NULL)
    self->request_progress (self->request_progress_data, FALSE, NULL);
}

static const CpChannelExchangeCallbacks stream_callbacks = {
  on_head,
  on_chunk,
  on_end,
  on_progress,
};

static gboolean
on_start_idle (gpointer user_data)
{
  CpResponseStream *self = user_data;

  g_clear_pointer (&self->start_source, g_source_unref);
  cp_response_stream_start (self);
  return G_SOURCE_REMOVE;
}

static gboolean
on_process_idle (gpointer user_data)
{
  CpResponseStream *self = user_data;

  g_clear_pointer (&self->process_source, g_source_unref);
  stream_process (self);
  return G_SOURCE_REMOVE;
}

static void
schedule (CpResponseStream *self,
          GSource         **slot,
          GSourceFunc       func,
          const char       *name)
{
  if (*slot != NULL)
    return;
  *slot = g_idle_source_new ();
  g_source_set_callback (*slot, func, self, NULL);
  g_source_set_static_name (*slot, name);
  g_source_attach (*slot, self->context);
}

CpResponseStream *
cp_response_stream_new_internal (CpChannel     *channel,
                                 const char    *procedure,
                                 CpMessage     *request,
                                 GType          response_type,
                                 CpCallOptions *options,
                                 CpIdempotency  idempotency)
{
  CpResponseStream *self = g_object_new (CP_TYPE_RESPONSE_STREAM, NULL);
  g_autoptr(GByteArray) body = g_byte_array_new ();

  self->channel = g_object_ref (channel);
  self->context = g_main_context_ref_thread_default ();
  self->options = options ? g_object_ref (options) : NULL;
  self->response_type = response_type;
  self->procedure = g_strdup (procedure);
  self->kind = CP_METHOD_SERVER_STREAMING;
  cp_call_settings_init (&self->settings, channel, options, FALSE);
  self->call = cp_call_settings_wrap (&self->settings, channel, options, procedure, self->kind,
                                      idempotency, request, &self->retry);
  self->decoder = cp_stream_decoder_new (response_type, self->settings.codec,
                                         self->settings.protocol,
                                         self->settings.max_receive_size);
  if (options != NULL)
    cp_call_options_set_response (options, NULL, NULL);

  if (cp_call_settings_append_envelope (&self->settings, request, body, &self->setup_error))
    {
      self->body = g_byte_array_free_to_bytes (g_steal_pointer (&body));
      cp_client_metrics_call_add_messages (&self->settings.metrics, TRUE, 1);
    }

  schedule (self, &self->start_source, on_start_idle, "[connectplugin] stream start");
  /* After the start is scheduled: already cancelled, it is undone now. */
  self->options_cancel_id = cp_call_options_connect_cancel (options, G_OBJECT (self), self->context,
                                                            (void (*) (gpointer)) cp_response_stream_cancel);
  return self;
}

CpResponseStream *
cp_response_stream_new_for_body_internal (CpChannel     *channel,
                                          const char    *procedure,
                                          GBytes        *body,
                                          GError        *error,
                                          CpMethodKind   kind,
                                          CpIdempotency  idempotency,
                                          GType          response_type,
                                          CpCallOptions *options,
                                          gint64         deadline,
                                          guint          n_messages)
{
  CpResponseStream *self = g_object_new (CP_TYPE_RESPONSE_STREAM, NULL);

  self->channel = g_object_ref (channel);
  self->context = g_main_context_ref_thread_default ();
  self->options = options ? g_object_ref (options) : NULL;
  self->response_type = response_type;
  self->procedure = g_strdup (procedure);
  cp_call_settings_init (&self->settings, channel, options, FALSE);
  /* The deadline of a half-duplex call counts from its creation. */
  self->settings.deadline = deadline;
  self->kind = kind;
  /* The request stream's messages, counted as the call's (metrics). */
  self->settings.n_envelopes = n_messages;
  self->call = cp_call_settings_wrap (&self->settings, channel, options, procedure, kind,
                                      idempotency, NULL, &self->retry);
  self->decoder = cp_stream_decoder_new (response_type, self->settings.codec,
                                         self->settings.protocol,
                                         self->settings.max_receive_size);
  if (options != NULL)
    cp_call_options_set_response (options, NULL, NULL);

  if (error != NULL)
    self->setup_error = error;
  else
    self->body = body != NULL ? g_bytes_ref (body) : g_bytes_new (NULL, 0);

  schedule (self, &self->start_source, on_start_idle, "[connectplugin] stream start");
  /* After the start is scheduled: already cancelled, it is undone now. */
  self->options_cancel_id = cp_call_options_connect_cancel (options, G_OBJECT (self), self->context,
                                                            (void (*) (gpointer)) cp_response_stream_cancel);
  return self;
}

/* One attempt: the breaker, then the exchange. */
static void
stream_attempt (CpResponseStream *self)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  GError *error = NULL;

  cp_call_retry_begin_attempt (&self->retry);
  /* gRPC needs HTTP trailers: only the HTTP/2 transport gives them. */
  if (!cp_channel_protocol_usable (self->channel, self->settings.protocol, &error))
    {
      stream_close (self, error);
      return;
    }
  /* A refusal of the circuit breaker is never retried. */
  if (!cp_channel_admit (self->channel, self->options, &self->admission, &error))
    {
      stream_close (self, error);
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
      soup_message_headers_clear (self->response_trailers);
      self->body_ended = FALSE;
      self->connection_lost = FALSE;
      self->not_sent = FALSE;
    }

  headers = cp_call_settings_stream_headers (&self->settings);
  self->exchange = cp_channel_exchange_new (self->channel, "POST", self->procedure,
                                            headers, self->body, self->settings.deadline,
                                            NULL, &stream_callbacks,
                                            g_object_ref (self), g_object_unref);
  if (self->paused)
    cp_channel_exchange_pause (self->exchange);
  if (self->duplex)
    {
      GBytes *chunk;

      cp_channel_exchange_set_request_streaming (self->exchange);
      while ((chunk = g_queue_pop_head (&self->duplex_out)) != NULL)
        {
          cp_channel_exchange_write_body (self->exchange, chunk);
          g_bytes_unref (chunk);
        }
      self->duplex_out_size = 0;
      if (self->duplex_ended)
        cp_channel_exchange_end_body (self->exchange);
    }
  if (self->body != NULL)
    cp_client_metrics_call_add_bytes (&self->settings.metrics, TRUE, g_bytes_get_size (self->body));
  cp_channel_exchange_start (self->exchange);
}

/* The interceptors decided (cp_client_call_intercept ()). */
static void
stream_decided (GObject   *owner,
                GError    *error,
                CpMessage *answer)
{
  CpResponseStream *self = CP_RESPONSE_STREAM (owner);

  g_clear_object (&answer);   /* unary calls only */
  if (self->closed)
    g_clear_error (&error);
  else if (error != NULL)
    stream_close (self, error);
  else
    stream_attempt (self);
}

/**
 * cp_response_stream_start:
 * @stream: a [class@ConnectPlugin.ResponseStream]
 *
 * Sends the request now instead of from the idle callback scheduled at
 * creation. Call it in the context the stream was created in. Does
 * nothing if the call has started already.
 *
 * This is when the interceptors decide (an asynchronous decision delays
 * the request), then the channel's [property@Channel:circuit-breaker] is
 * asked: when it refuses the call, the stream closes with `unavailable`
 * ("circuit breaker is open") without sending anything.
 */
void
cp_response_stream_start (CpResponseStream *stream)
{
  g_return_if_fail (CP_IS_RESPONSE_STREAM (stream));

  if (stream->started || stream->closed)
    return;
  stream->started = TRUE;
  destroy_source (&stream->start_source);

  if (stream->setup_error != NULL)
    {
      stream_close (stream, g_steal_pointer (&stream->setup_error));
      return;
    }
  if (stream->call != NULL)
    {
      stream->cancellable = g_cancellable_new ();
      cp_client_call_intercept (stream->call, G_OBJECT (stream), stream->cancellable,
                                stream_decided);
      return;
    }
  stream_attempt (stream);
}

/**
 * cp_response_stream_pause:
 * @stream: a [class@ConnectPlugin.ResponseStream]
 *
 * Stops emitting [signal@ResponseStream::message] and stops reading the
 * response, until [method@ConnectPlugin.ResponseStream.resume]. May be called from a signal
 * handler: no message is emitted after it returns.
 */
void
cp_response_stream_pause (CpResponseStream *stream)
{
  g_return_if_fail (CP_IS_RESPONSE_STREAM (stream));

  if (stream->paused)
    return;
  stream->paused = TRUE;
  destroy_source (&stream->process_source);
  if (stream->exchange != NULL)
    cp_channel_exchange_pause (stream->exchange);
}

/**
 * cp_response_stream_resume:
 * @stream: a [class@ConnectPlugin.ResponseStream]
 *
 * Undoes [method@ConnectPlugin.ResponseStream.pause]. Messages received meanwhile are
 * emitted from the main loop, not from within this function.
 */
void
cp_response_stream_resume (CpResponseStream *stream)
{
  g_return_if_fail (CP_IS_RESPONSE_STREAM (stream));

  if (!stream->paused)
    return;
  stream->paused = FALSE;
  if (stream->closed)
    return;
  if (stream->exchange != NULL)
    cp_channel_exchange_resume (stream->exchange);
  if (stream->started)
    schedule (stream, &stream->process_source, on_process_idle, "[connectplugin] stream resume");
}

/**
 * cp_response_stream_cancel:
 * @stream: a [class@ConnectPlugin.ResponseStream]
 *
 * Cancels the call: the HTTP exchange is aborted (its connection closed)
 * and [signal@ResponseStream::closed] is emitted with %G_IO_ERROR_CANCELLED from the
 * main loop. Does nothing when the stream is already closed.
 */
void
cp_response_stream_cancel (CpResponseStream *stream)
{
  g_return_if_fail (CP_IS_RESPONSE_STREAM (stream));

  if (stream->closed || stream->pending_close != NULL)
    return;
  stream->started = TRUE;
  destroy_source (&stream->start_source);
  if (stream->exchange != NULL)
    {
      cp_channel_exchange_close (stream->exchange);
      g_clear_pointer (&stream->exchange, cp_channel_exchange_unref);
    }
  stream->pending_close = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                               "the call was cancelled");
  /* Delivered even while paused: a cancelled stream always closes. */
  stream->paused = FALSE;
  schedule (stream, &stream->process_source, on_process_idle, "[connectplugin] stream cancel");
}

/**
 * cp_response_stream_is_closed:
 * @stream: a [class@ConnectPlugin.ResponseStream]
 *
 * Whether the stream has ended (its [signal@ConnectPlugin.ResponseStream::closed] signal was emitted).
 *
 * Returns: %TRUE once [signal@ResponseStream::closed] has been emitted
 */
gboolean
cp_response_stream_is_closed (CpResponseStream *stream)
{
  g_return_val_if_fail (CP_IS_RESPONSE_STREAM (stream), FALSE);

  return stream->closed;
}

/**
 * cp_response_stream_get_response_headers:
 * @stream: a [class@ConnectPlugin.ResponseStream]
 *
 * Gets the response headers, once they arrived.
 *
 * Returns: (transfer none): the response headers; empty until
 *   [signal@ResponseStream::headers]
 */
SoupMessageHeaders *
cp_response_stream_get_response_headers (CpResponseStream *stream)
{
  g_return_val_if_fail (CP_IS_RESPONSE_STREAM (stream), NULL);

  return stream->response_headers;
}

/**
 * cp_response_stream_get_response_trailers:
 * @stream: a [class@ConnectPlugin.ResponseStream]
 *
 * Gets the response trailers, once the stream ended.
 *
 * Returns: (transfer none): the trailers (EndStream metadata); empty until
 *   [signal@ResponseStream::closed]
 */
SoupMessageHeaders *
cp_response_stream_get_response_trailers (CpResponseStream *stream)
{
  g_return_val_if_fail (CP_IS_RESPONSE_STREAM (stream), NULL);

  return stream->response_trailers;
}

void
cp_response_stream_make_duplex_internal (CpResponseStream *self)
{
  g_return_if_fail (!self->started);

  self->duplex = TRUE;
  g_clear_pointer (&self->body, g_bytes_unref);
  /* The request body is not kept: a single attempt. */
  g_clear_object (&self->retry.policy);
}

void
cp_response_stream_write_internal (CpResponseStream *self,
                                   GBytes           *chunk)
{
  g_return_if_fail (self->duplex && !self->duplex_ended);

  cp_client_metrics_call_add_bytes (&self->settings.metrics, TRUE, g_bytes_get_size (chunk));
  if (self->exchange != NULL)
    cp_channel_exchange_write_body (self->exchange, chunk);
  else
    {
      g_queue_push_tail (&self->duplex_out, g_bytes_ref (chunk));
      self->duplex_out_size += g_bytes_get_size (chunk);
    }
}

gsize
cp_response_stream_get_request_queued_internal (CpResponseStream *self)
{
  gsize queued = self->duplex_out_size;

  if (self->exchange != NULL)
    queued += cp_channel_exchange_get_body_queued (self->exchange);
  return queued;
}

guint64
cp_response_stream_get_request_sent_internal (CpResponseStream *self)
{
  return self->exchange != NULL ? cp_channel_exchange_get_body_sent (self->exchange) : 0;
}

void
cp_response_stream_set_request_progress_internal (CpResponseStream            *self,
                                                  CpResponseStreamRequestFunc  func,
                                                  gpointer                     data)
{
  self->request_progress = func;
  self->request_progress_data = data;
}

void
cp_response_stream_end_request_internal (CpResponseStream *self)
{
  g_return_if_fail (self->duplex);

  if (self->duplex_ended)
    return;
  self->duplex_ended = TRUE;
  if (self->exchange != NULL)
    cp_channel_exchange_end_body (self->exchange);
}
