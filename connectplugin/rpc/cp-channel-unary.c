/* cp-channel-unary.c: the unary calls of a CpChannel (asynchronous and
 * blocking): the interceptor chain, the attempts and their retries, one
 * HTTP exchange per attempt
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A call runs: call_start () (settings, what wraps it) → the interceptors'
 * decisions (cp_client_call_intercept (), when some apply) → attempts:
 * unary_attempt () asks the circuit breaker, encodes the request once and
 * starts an exchange; unary_complete () turns its response into a message
 * or an error; unary_attempt_end () tells the breaker and either waits the
 * backoff (cp_call_retry_wait ()) before the next attempt or ends the call
 * (unary_finish (): the interceptors are told, then the task returns).
 */
#include <string.h>

#include "cp-channel.h"
#include "cp-channel-private.h"
#include "cp-call-options-private.h"
#include "cp-call-settings-private.h"
#include "cp-channel-exchange-private.h"
#include "cp-channel-util-private.h"
#include "cp-error.h"
#include "cp-error-private.h"
#include "cp-base64-private.h"
#include "cp-compression.h"
#include "cp-metadata.h"
#include "cp-envelope-private.h"
#include "cp-grpc-private.h"

/* Cap on the body of a unary error response we are willing to buffer. */
#define ERROR_BODY_LIMIT (1024 * 1024)

typedef struct {
  CpChannel *channel;
  CpCallOptions *options;
  CpCallSettings settings;
  GType response_type;
  char *procedure;
  CpMessage *request;           /* until encoded */
  gboolean sync;

  /* The request, encoded before the first attempt is sent. */
  char *path;
  GBytes *payload;              /* NULL for GET */
  SoupMessageHeaders *headers;

  /* The attempt under way. */
  CpChannelExchange *exchange;
  GByteArray *body;
  gsize body_limit;
  gboolean body_truncated;
  CpCompression response_encoding;
  CpChannelAdmission admission;
  /* Earlier attempts' exchanges, which libsoup may still hold (sync). */
  GPtrArray *spent;

  /* What wraps the attempts. */
  CpClientCall *call;           /* NULL when no interceptor applies */
  CpCallRetry retry;
} UnaryData;

static void
unary_data_free (UnaryData *data)
{
  cp_channel_admission_clear (&data->admission);
  cp_call_retry_clear (&data->retry);
  g_clear_pointer (&data->call, cp_client_call_unref);
  g_clear_object (&data->options);
  g_clear_object (&data->request);
  cp_call_settings_clear (&data->settings);
  g_clear_pointer (&data->exchange, cp_channel_exchange_unref);
  g_clear_pointer (&data->spent, g_ptr_array_unref);
  g_clear_pointer (&data->body, g_byte_array_unref);
  g_clear_pointer (&data->payload, g_bytes_unref);
  g_clear_pointer (&data->headers, soup_message_headers_unref);
  g_free (data->path);
  g_free (data->procedure);
  g_clear_object (&data->channel);
  g_free (data);
}

/* Ends the call: the interceptors are told, then the caller.
 * @message, @error: transfer full, one of them set. */
static void
unary_finish (GTask     *task,
              CpMessage *message,
              GError    *error)
{
  UnaryData *data = g_task_get_task_data (task);

  cp_call_retry_stop_wait (&data->retry);
  cp_call_settings_end (&data->settings, error);
  cp_call_settings_trace_end (&data->settings, data->channel, data->procedure, error);
  if (data->call != NULL)
    {
      cp_client_call_set_attempts (data->call, data->retry.attempts);
      cp_client_call_complete (data->call, error, message);
    }
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, message, g_object_unref);
}

static void unary_attempt (GTask *task);
static CpMessage *grpc_web_decode (UnaryData          *data,
                                   SoupMessageHeaders *response,
                                   GBytes             *body,
                                   SoupMessageHeaders *http_trailers,
                                   SoupMessageHeaders *trailers,
                                   GError            **error);

static void
unary_backoff_over (GObject  *owner,
                    gboolean  cancelled)
{
  GTask *task = G_TASK (owner);

  if (cancelled)
    unary_finish (task, NULL, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                   "the call was cancelled"));
  else
    unary_attempt (task);
}

/* An attempt is over: @message or @error (transfer full). */
static void
unary_attempt_end (GTask     *task,
                   CpMessage *message,
                   GError    *error)
{
  UnaryData *data = g_task_get_task_data (task);
  gboolean not_sent;
  guint delay_ms;

  cp_channel_admission_settle (&data->admission, error);
  if (error == NULL)
    {
      unary_finish (task, message, NULL);
      return;
    }
  not_sent = data->exchange != NULL && cp_channel_exchange_get_not_sent (data->exchange);
  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)) ||
      !cp_call_retry_decide (&data->retry, data->procedure, error, not_sent, FALSE, &delay_ms))
    {
      unary_finish (task, NULL, error);
      return;
    }
  g_debug ("%s: attempt %u failed (%s), retrying in %u ms", data->procedure,
           data->retry.attempts, error->message, delay_ms);
  g_error_free (error);
  if (data->exchange != NULL)
    {
      if (data->sync && cp_channel_exchange_transport_busy (data->exchange))
        {
          if (data->spent == NULL)
            data->spent = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_channel_exchange_unref);
          g_ptr_array_add (data->spent, g_steal_pointer (&data->exchange));
        }
      else
        g_clear_pointer (&data->exchange, cp_channel_exchange_unref);
    }
  cp_call_retry_wait (&data->retry, g_task_get_context (task), delay_ms,
                      g_task_get_cancellable (task), unary_backoff_over, G_OBJECT (task));
}

/* Completes the attempt: @error (transfer full) is a transport error, or
 * NULL to decode the received response. */
static void
unary_complete (GTask  *task,
                GError *error)
{
  UnaryData *data = g_task_get_task_data (task);
  CpChannelExchange *exchange = data->exchange;
  SoupMessageHeaders *response = cp_channel_exchange_get_response_headers (exchange);
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = NULL;
  g_autoptr(GBytes) body = NULL;
  guint status = cp_channel_exchange_get_status (exchange);
  CpMessage *message = NULL;

  if (data->settings.protocol != CP_PROTOCOL_CONNECT && response != NULL)
    {
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      cp_metadata_merge (headers, response, NULL);
      if (error == NULL && status == SOUP_STATUS_OK)
        {
          g_autoptr(GBytes) web_body = g_byte_array_free_to_bytes (g_steal_pointer (&data->body));

          message = grpc_web_decode (data, response, web_body,
                                     cp_channel_exchange_get_response_trailers (exchange),
                                     trailers, &error);
        }
      else if (error == NULL)
        error = g_error_new (CP_ERROR, cp_error_code_from_http_status (status),
                             "HTTP status %u %s", status, cp_channel_exchange_get_reason (exchange) ?: "");
      if (data->options != NULL)
        cp_call_options_set_response (data->options, headers, trailers);
      if (data->call != NULL)
        cp_client_call_set_response_metadata (data->call, headers, trailers);
      /* A cancellation stays G_IO_ERROR_CANCELLED, as for Connect. */
      if (error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          error = cp_channel_ensure_cp_error (error, CP_ERROR_INTERNAL);
          cp_channel_error_set_metadata (error, headers, trailers);
        }
      unary_attempt_end (task, message, error);
      return;
    }

  if (response != NULL)
    {
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      cp_metadata_split_trailers (response, headers, trailers);
    }
  if (data->options != NULL)
    cp_call_options_set_response (data->options, headers, trailers);
  if (data->call != NULL)
    cp_client_call_set_response_metadata (data->call, headers, trailers);

  if (error == NULL)
    body = g_byte_array_free_to_bytes (g_steal_pointer (&data->body));

  if (error == NULL && status != SOUP_STATUS_OK)
    {
      g_autofree char *type = cp_channel_media_type (response);
      CpCompression encoding = CP_COMPRESSION_IDENTITY;
      g_autoptr(GBytes) json = NULL;

      if (!data->body_truncated &&
          g_strcmp0 (type, "application/json") == 0 &&
          cp_channel_parse_encoding (response, "Content-Encoding", &encoding, &error))
        {
          if (encoding != CP_COMPRESSION_IDENTITY && g_bytes_get_size (body) > 0)
            json = cp_decompress (encoding, body, ERROR_BODY_LIMIT, NULL);
          else
            json = g_bytes_ref (body);
        }
      if (error == NULL)
        error = cp_error_from_json (json, status, cp_channel_exchange_get_reason (exchange));
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
            error = cp_channel_ensure_cp_error (error, CP_ERROR_INVALID_ARGUMENT);
        }
      if (error == NULL)
        message = cp_channel_decode_message (data->response_type, data->settings.codec, body, &error);
    }

  if (error != NULL)
    cp_channel_error_set_metadata (error, headers, trailers);
  unary_attempt_end (task, message, error);
}

/* A gRPC or gRPC-Web answer: the message and the status (gRPC-Web: from
 * the trailers frame; gRPC: from the HTTP trailers, @http_trailers; both:
 * from the head of a "trailers-only" answer with no body). Fills
 * @trailers; returns the message, or NULL with @error. */
static CpMessage *
grpc_web_decode (UnaryData          *data,
                 SoupMessageHeaders *response,
                 GBytes             *body,
                 SoupMessageHeaders *http_trailers,
                 SoupMessageHeaders *trailers,
                 GError            **error)
{
  gsize size, pos = 0;
  const guint8 *bytes = g_bytes_get_data (body, &size);
  g_autoptr(CpMessage) message = NULL;
  gboolean have_trailers = FALSE;
  GError *rpc = NULL;

  if (data->settings.protocol == CP_PROTOCOL_GRPC && http_trailers != NULL &&
      soup_message_headers_get_one (http_trailers, "grpc-status") != NULL)
    {
      SoupMessageHeadersIter iter;
      const char *name, *value;

      soup_message_headers_iter_init (&iter, http_trailers);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        soup_message_headers_append (trailers, name, value);
      have_trailers = TRUE;
    }
  else if (size == 0)
    {
      static const char * const status_names[] = {
        "grpc-status", "grpc-message", "grpc-status-details-bin",
      };

      /* Trailers-only: the head is the trailers. */
      cp_metadata_merge (trailers, response, NULL);
      for (gsize i = 0; i < G_N_ELEMENTS (status_names); i++)
        {
          const char *value = soup_message_headers_get_one (response, status_names[i]);

          if (value != NULL)
            soup_message_headers_replace (trailers, status_names[i], value);
        }
      have_trailers = TRUE;
    }
  while (pos < size && (!have_trailers || data->settings.protocol == CP_PROTOCOL_GRPC))
    {
      guint32 len;
      g_autoptr(GBytes) payload = NULL;

      if (size - pos < CP_ENVELOPE_HEADER_SIZE ||
          (len = (guint32) bytes[pos + 1] << 24 | (guint32) bytes[pos + 2] << 16 |
                 (guint32) bytes[pos + 3] << 8 | bytes[pos + 4]) > size - pos - CP_ENVELOPE_HEADER_SIZE)
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                               "protocol error: truncated gRPC-Web envelope");
          return NULL;
        }
      payload = g_bytes_new_from_bytes (body, pos + CP_ENVELOPE_HEADER_SIZE, len);
      if ((bytes[pos] & CP_GRPC_FLAG_TRAILERS) && data->settings.protocol == CP_PROTOCOL_GRPC)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "protocol error: invalid envelope flags 0x%02x", bytes[pos]);
          return NULL;
        }
      if (bytes[pos] & CP_ENVELOPE_FLAG_COMPRESSED)
        {
          GBytes *plain;

          /* Messages and gRPC-Web's trailers frame alike. */
          if (data->response_encoding == CP_COMPRESSION_IDENTITY)
            {
              g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                                   "protocol error: compressed message without a negotiated encoding");
              return NULL;
            }
          if (g_bytes_get_size (payload) > 0)
            {
              plain = cp_decompress (data->response_encoding, payload,
                                     data->settings.max_receive_size, error);
              if (plain == NULL)
                return NULL;
              g_bytes_unref (payload);
              payload = plain;
            }
        }
      if (bytes[pos] & CP_GRPC_FLAG_TRAILERS)
        {
          if (!cp_grpc_web_trailers_decode (payload, trailers, error))
            return NULL;
          have_trailers = TRUE;
        }
      else if (message != NULL)
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                               "protocol error: unary response has more than one message");
          return NULL;
        }
      else
        {
          message = cp_channel_decode_message (data->response_type, data->settings.codec, payload, error);
          if (message == NULL)
            return NULL;
        }
      pos += CP_ENVELOPE_HEADER_SIZE + len;
    }
  if (!have_trailers)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           data->settings.protocol == CP_PROTOCOL_GRPC
                           ? "protocol error: no grpc-status in the trailers"
                           : "protocol error: gRPC-Web response without trailers");
      return NULL;
    }
  if (!cp_grpc_error_from_trailers (trailers, &rpc, error))
    return NULL;
  if (rpc != NULL)
    {
      g_propagate_error (error, rpc);
      return NULL;
    }
  if (message == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                           "protocol error: unary response has zero messages");
      return NULL;
    }
  return g_steal_pointer (&message);
}

/* gRPC-Web: application/grpc-web[+codec] (no suffix: proto), the
 * messages' encoding in grpc-encoding. */
static gboolean
grpc_web_check_head (UnaryData          *data,
                     const char         *type,
                     SoupMessageHeaders *headers,
                     GError            **error)
{
  const char *codec_name = cp_codec_to_string (data->settings.codec);
  const char *prefix = data->settings.protocol == CP_PROTOCOL_GRPC ? "application/grpc"
                                                                   : "application/grpc-web";
  const char *suffix;

  if (type == NULL || !g_str_has_prefix (type, prefix))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNKNOWN,
                   "unexpected response content type \"%s\"", type ? type : "");
      return FALSE;
    }
  suffix = type + strlen (prefix);
  if (suffix[0] == '\0' ? data->settings.codec != CP_CODEC_PROTO
                        : (suffix[0] != '+' || strcmp (suffix + 1, codec_name) != 0))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "response content type \"%s\" does not match the request codec \"%s\"",
                   type, codec_name);
      return FALSE;
    }
  return cp_channel_parse_encoding (headers, "grpc-encoding", &data->response_encoding, error);
}

/* Validates a 200 response head; FALSE with error when unusable. */
static gboolean
unary_check_head (UnaryData          *data,
                  SoupMessageHeaders *headers,
                  GError            **error)
{
  g_autofree char *type = cp_channel_media_type (headers);
  const char *codec_name = cp_codec_to_string (data->settings.codec);

  if (data->settings.protocol != CP_PROTOCOL_CONNECT)
    return grpc_web_check_head (data, type, headers, error);
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
  return cp_channel_parse_encoding (headers, "Content-Encoding", &data->response_encoding, error);
}

static void
unary_on_head (CpChannelExchange *exchange,
               gpointer           user_data)
{
  GTask *task = user_data;
  UnaryData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (cp_channel_exchange_get_status (exchange) == SOUP_STATUS_OK)
    {
      data->body_limit = data->settings.max_receive_size;
      if (!unary_check_head (data, cp_channel_exchange_get_response_headers (exchange), &error))
        {
          g_autoptr(GTask) keep = g_object_ref (task);

          cp_channel_exchange_close (exchange);
          unary_complete (keep, error);
        }
    }
  else
    data->body_limit = ERROR_BODY_LIMIT;
}

static void
unary_on_chunk (CpChannelExchange *exchange,
                GBytes            *chunk,
                gpointer           user_data)
{
  GTask *task = user_data;
  UnaryData *data = g_task_get_task_data (task);
  gsize size = g_bytes_get_size (chunk);

  cp_client_metrics_call_add_bytes (&data->settings.metrics, FALSE, size);
  if (data->body_limit > 0 && data->body->len + size > data->body_limit)
    {
      g_autoptr(GTask) keep = g_object_ref (task);

      cp_channel_exchange_close (exchange);
      if (cp_channel_exchange_get_status (exchange) == SOUP_STATUS_OK)
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
unary_on_end (CpChannelExchange *exchange,
              const GError      *error,
              gpointer           user_data)
{
  unary_complete (user_data, error ? g_error_copy (error) : NULL);
}

static const CpChannelExchangeCallbacks unary_callbacks = {
  unary_on_head,
  unary_on_chunk,
  unary_on_end,
};

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
      gsize len;
      const guint8 *bytes = g_bytes_get_data (payload, &len);
      g_autofree char *text = cp_base64_url_encode_unpadded (bytes, len);

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

/* Encodes the request (once: every attempt sends the same): its path,
 * body and headers, with the metadata as the interceptors left it. */
static gboolean
unary_encode (UnaryData  *data,
              GError    **error)
{
  g_autoptr(GBytes) payload = NULL;
  GError *local_error = NULL;
  gboolean compressed = FALSE;

  /* gRPC needs HTTP trailers: only the HTTP/2 transport gives them. */
  if (!cp_channel_protocol_usable (data->channel, data->settings.protocol, error))
    return FALSE;
  payload = cp_message_serialize (data->request, data->settings.codec, &local_error);
  if (payload == NULL)
    {
      g_propagate_error (error, cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL));
      return FALSE;
    }
  g_clear_object (&data->request);
  /* Even an empty message is compressed: a server may insist on the
   * negotiated encoding (the conformance suite's reference server does). */
  if (data->settings.compression != CP_COMPRESSION_IDENTITY)
    {
      GBytes *c = cp_compress (data->settings.compression, payload, &local_error);

      if (c == NULL)
        {
          g_propagate_error (error, cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL));
          return FALSE;
        }
      g_bytes_unref (payload);
      payload = c;
      compressed = TRUE;
    }

  data->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  if (data->settings.protocol != CP_PROTOCOL_CONNECT)
    {
      gboolean web = data->settings.protocol == CP_PROTOCOL_GRPC_WEB;
      g_autofree char *content_type = g_strconcat (web ? "application/grpc-web+" : "application/grpc+",
                                                   cp_codec_to_string (data->settings.codec), NULL);

      /* A stream of one envelope. */
      data->path = g_strdup (data->procedure);
      data->payload = cp_envelope_encode (compressed ? CP_ENVELOPE_FLAG_COMPRESSED : 0, payload);
      soup_message_headers_append (data->headers, "Content-Type", content_type);
      soup_message_headers_append (data->headers, web ? "X-Grpc-Web" : "TE", web ? "1" : "trailers");
      soup_message_headers_append (data->headers, "grpc-accept-encoding", "gzip");
      if (compressed)
        soup_message_headers_append (data->headers, "grpc-encoding",
                                     cp_compression_to_string (data->settings.compression));
      soup_message_headers_append (data->headers, "Accept-Encoding", "identity");
      cp_call_settings_copy_metadata (&data->settings, data->headers);
      return TRUE;
    }
  if (data->settings.use_get)
    {
      g_autofree char *query = build_get_query (&data->settings, payload, compressed);

      data->path = g_strconcat (data->procedure, query, NULL);
    }
  else
    {
      g_autofree char *content_type = g_strconcat ("application/",
                                                   cp_codec_to_string (data->settings.codec), NULL);

      data->path = g_strdup (data->procedure);
      data->payload = g_steal_pointer (&payload);
      soup_message_headers_append (data->headers, "Content-Type", content_type);
      soup_message_headers_append (data->headers, "Connect-Protocol-Version", "1");
      if (compressed)
        soup_message_headers_append (data->headers, "Content-Encoding",
                                     cp_compression_to_string (data->settings.compression));
    }
  soup_message_headers_append (data->headers, "Accept-Encoding", "gzip");
  cp_call_settings_copy_metadata (&data->settings, data->headers);
  return TRUE;
}

/* One attempt: the breaker, then the exchange. */
static void
unary_attempt (GTask *task)
{
  UnaryData *data = g_task_get_task_data (task);
  GError *error = NULL;

  cp_call_retry_begin_attempt (&data->retry);
  /* An open circuit fails the call before any work; never retried. */
  if (!cp_channel_admit (data->channel, data->options, &data->admission, &error) ||
      (data->headers == NULL && !unary_encode (data, &error)))
    {
      unary_finish (task, NULL, error);
      return;
    }

  if (data->body == NULL)
    data->body = g_byte_array_new ();
  else
    g_byte_array_set_size (data->body, 0);
  data->body_limit = 0;
  data->body_truncated = FALSE;
  data->response_encoding = CP_COMPRESSION_IDENTITY;
  data->exchange = cp_channel_exchange_new (data->channel, data->settings.use_get ? "GET" : "POST",
                                            data->path, data->headers, data->payload,
                                            data->settings.deadline, g_task_get_cancellable (task),
                                            &unary_callbacks, g_object_ref (task), g_object_unref);
  if (data->sync)
    cp_channel_exchange_set_sync_pool (data->exchange);
  if (data->payload != NULL)
    cp_client_metrics_call_add_bytes (&data->settings.metrics, TRUE,
                                      g_bytes_get_size (data->payload));
  cp_channel_exchange_start (data->exchange);
}

/* The interceptors decided (cp_client_call_intercept ()). */
static void
unary_decided (GObject   *owner,
               GError    *error,
               CpMessage *answer)
{
  GTask *task = G_TASK (owner);

  if (error != NULL || answer != NULL)
    unary_finish (task, answer, error);
  else if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    unary_finish (task, NULL, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                   "the call was cancelled"));
  else
    unary_attempt (task);
}

static void
call_start (CpChannel           *channel,
            const char          *procedure,
            CpMessage           *request,
            GType                response_type,
            CpCallOptions       *options,
            CpIdempotency        idempotency,
            GCancellable        *cancellable,
            gboolean             sync,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  UnaryData *data;

  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (procedure != NULL && procedure[0] == '/');
  g_return_if_fail (CP_IS_MESSAGE (request));
  g_return_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE));
  g_return_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (channel, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_channel_call_async);
  g_task_set_name (task, "[connectplugin] unary call");
  /* Cancellation is reported (G_IO_ERROR_CANCELLED) by the call itself. */
  g_task_set_check_cancellable (task, FALSE);
  data = g_new0 (UnaryData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) unary_data_free);
  if (options != NULL)
    cp_call_options_set_response (options, NULL, NULL);
  data->channel = g_object_ref (channel);
  data->options = options ? g_object_ref (options) : NULL;
  data->response_type = response_type;
  data->procedure = g_strdup (procedure);
  data->request = g_object_ref (request);
  data->sync = sync;
  /* The deadline counts from now, whatever the attempts. */
  cp_call_settings_init (&data->settings, channel, options, TRUE);
  data->call = cp_call_settings_wrap (&data->settings, channel, options, procedure,
                                      CP_METHOD_UNARY, idempotency, request, &data->retry);

  if (data->call != NULL)
    cp_client_call_intercept (data->call, G_OBJECT (task), cancellable, unary_decided);
  else
    unary_attempt (task);
}

/**
 * cp_channel_call_async:
 * @channel: a [class@ConnectPlugin.Channel]
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Get`
 * @request: the request message
 * @response_type: the [alias@GObject.Type] of the response message (a [class@ConnectPlugin.Message] subclass)
 * @options: (nullable): per-call options; their response headers and
 *   trailers are filled in when the call completes
 * @cancellable: (nullable): a [class@Gio.Cancellable]; cancelling fails the call with
 *   %G_IO_ERROR_CANCELLED and aborts its HTTP exchange
 * @callback: (scope async): called when the call completes, in the
 *   thread-default main context of the caller
 * @user_data: (closure): data for @callback
 *
 * Makes a unary call. The deadline (from @options or the channel's
 * [property@Channel:timeout-ms], 30 s unless set) is enforced locally and
 * sent as `Connect-Timeout-Ms`.
 *
 * The call first goes through the interceptors of the channel and of
 * @options ([class@ClientInterceptor]), which may fail or answer it
 * without sending anything. With a [class@RetryPolicy] (the channel's, or
 * @options'), a failed attempt may be made again after a backoff, within
 * the deadline; the method is not known here, so only the attempts that
 * never reached the server are retried unless @options are marked
 * [property@CallOptions:idempotent] (generated proxies know their
 * methods).
 *
 * When the channel's [property@Channel:circuit-breaker] is open, the call
 * fails with `unavailable` ("circuit breaker is open") without sending
 * anything; @callback is still called from the main loop, never from
 * within this function. Otherwise the breaker hears the outcome of each
 * attempt.
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
  call_start (channel, procedure, request, response_type, options, CP_IDEMPOTENCY_UNKNOWN,
              cancellable, FALSE, callback, user_data);
}

void
cp_channel_call_method_async (CpChannel           *channel,
                              CpMethodInfo        *info,
                              CpMessage           *request,
                              CpCallOptions       *options,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  call_start (channel, cp_method_info_get_procedure (info), request,
              cp_method_info_get_output_type (info), options, cp_method_info_get_idempotency (info),
              cancellable, FALSE, callback, user_data);
}

/**
 * cp_channel_call_finish:
 * @channel: a [class@ConnectPlugin.Channel]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * Finishes a call started with [method@ConnectPlugin.Channel.call_async].
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

/* Whether libsoup still holds an exchange of the call (its last attempt's,
 * or an earlier one's). */
static gboolean
unary_transport_busy (UnaryData *unary)
{
  if (unary->exchange != NULL && cp_channel_exchange_transport_busy (unary->exchange))
    return TRUE;
  for (guint i = 0; unary->spent != NULL && i < unary->spent->len; i++)
    if (cp_channel_exchange_transport_busy (unary->spent->pdata[i]))
      return TRUE;
  return FALSE;
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

  if (!unary_transport_busy (unary))
    return;
  guard = g_timeout_source_new (SYNC_RELEASE_GUARD_MS);
  g_source_set_callback (guard, on_sync_release_guard, data, NULL);
  g_source_set_static_name (guard, "[connectplugin] sync call release guard");
  g_source_attach (guard, context);
  while (unary_transport_busy (unary) && !data->guard_expired)
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

static CpMessage *
call_sync (CpChannel      *channel,
           const char     *procedure,
           CpMessage      *request,
           GType           response_type,
           CpCallOptions  *options,
           CpIdempotency   idempotency,
           GCancellable   *cancellable,
           GError        **error)
{
  g_autoptr(GMainContext) context = NULL;
  GMainContext *server_context = cp_channel_get_context (channel);
  SyncData data = { NULL, FALSE, FALSE };
  CpMessage *message;

  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  if (cp_channel_get_server (channel) != NULL && server_context_is_ours (server_context) &&
      g_main_context_acquire (server_context))
    context = g_main_context_ref (server_context);
  else
    {
      context = g_main_context_new ();
      g_main_context_acquire (context);
    }

  /* Backoff timers, like everything else of the call, run in @context. */
  g_main_context_push_thread_default (context);
  call_start (channel, procedure, request, response_type, options, idempotency, cancellable,
              TRUE, sync_done, &data);
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
 * cp_channel_call_sync:
 * @channel: a [class@ConnectPlugin.Channel]
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Get`
 * @request: the request message
 * @response_type: the [alias@GObject.Type] of the response message
 * @options: (nullable): per-call options
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * Makes a unary call and blocks until it completes, running a main context
 * of its own meanwhile (as GIO's synchronous calls do), so no other source
 * of the caller's context is dispatched. No main loop needs to run: when
 * the call returns, its HTTP connection is back in the channel's pool, so
 * a loop of sync calls keeps reusing one connection. Blocking calls have a
 * pool of their own: they never wait for a connection that an asynchronous
 * call of the context it blocks is opening.
 *
 * Interceptors, retries and the circuit breaker apply as for
 * [method@ConnectPlugin.Channel.call_async]; interceptors and the backoff
 * between attempts run in the private context (the backoff is a timer
 * source there, not a sleep, so @cancellable ends it at once).
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
  return call_sync (channel, procedure, request, response_type, options,
                    CP_IDEMPOTENCY_UNKNOWN, cancellable, error);
}

CpMessage *
cp_channel_call_method_sync (CpChannel      *channel,
                             CpMethodInfo   *info,
                             CpMessage      *request,
                             CpCallOptions  *options,
                             GCancellable   *cancellable,
                             GError        **error)
{
  return call_sync (channel, cp_method_info_get_procedure (info), request,
                    cp_method_info_get_output_type (info), options,
                    cp_method_info_get_idempotency (info), cancellable, error);
}
