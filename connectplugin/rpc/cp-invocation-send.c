/* cp-invocation-send.c: a CpInvocation's answer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Writes what the handler answers: a bare message or error JSON for unary
 * calls; the response headers, envelopes and an EndStream for streams. The
 * stream's send queue: cp_invocation_send_message() queues without
 * waiting (ended with resource_exhausted past max-send-queue-size),
 * cp_invocation_send_message_async() completes once the connection takes
 * more, through a light CpSendResult when it is not congested.
 */
#include "cp-invocation-state-private.h"

#include "cp-codec-private.h"
#include "cp-compression.h"
#include "cp-error-private.h"
#include "cp-metadata.h"

#include <string.h>

/* Completed sends delivered per dispatch of the send source (see
 * CpSendResult below). */
#define SEND_BATCH 128

/* ------------------------------------------------------------------ */
/* Fast completion of cp_invocation_send_message_async()                */

/* A producer awaiting each send (the GIO way) would cost a GTask, an idle
 * source and a main-loop iteration per message. When the message is queued
 * and the connection is not congested, the send completes with this light
 * GAsyncResult instead, delivered by one source per invocation that runs up
 * to SEND_BATCH callbacks per dispatch: a callback that sends again gets its
 * own callback later in the same dispatch, never from inside its _async
 * call. */
#define CP_TYPE_SEND_RESULT (cp_send_result_get_type ())
G_DECLARE_FINAL_TYPE (CpSendResult, cp_send_result, CP, SEND_RESULT, GObject)

struct _CpSendResult
{
  GObject parent_instance;

  CpInvocation *invocation;
  GCancellable *cancellable;
  GAsyncReadyCallback callback;
  gpointer user_data;
};

static void cp_send_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpSendResult, cp_send_result, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                      cp_send_result_iface_init))

static gpointer
cp_send_result_get_user_data (GAsyncResult *result)
{
  return CP_SEND_RESULT (result)->user_data;
}

static GObject *
cp_send_result_get_source_object (GAsyncResult *result)
{
  return g_object_ref (G_OBJECT (CP_SEND_RESULT (result)->invocation));
}

static gboolean
cp_send_result_is_tagged (GAsyncResult *result,
                          gpointer      source_tag)
{
  return source_tag == (gpointer) cp_invocation_send_message_async;
}

static void
cp_send_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_user_data = cp_send_result_get_user_data;
  iface->get_source_object = cp_send_result_get_source_object;
  iface->is_tagged = cp_send_result_is_tagged;
}

static void
cp_send_result_finalize (GObject *object)
{
  CpSendResult *self = CP_SEND_RESULT (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->invocation);
  G_OBJECT_CLASS (cp_send_result_parent_class)->finalize (object);
}

static void
cp_send_result_class_init (CpSendResultClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_send_result_finalize;
}

static void
cp_send_result_init (CpSendResult *self)
{
}

typedef struct {
  GSource source;
  CpInvocation *invocation;  /* weak: the invocation destroys the source */
} SendSource;

static gboolean
send_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  CpInvocation *self = g_object_ref (((SendSource *) source)->invocation);
  CpSendResult *result;

  for (guint i = 0; i < SEND_BATCH && (result = g_queue_pop_head (&self->send_done)) != NULL; i++)
    {
      if (result->callback != NULL)
        result->callback (G_OBJECT (self), G_ASYNC_RESULT (result), result->user_data);
      g_object_unref (result);
    }
  if (g_queue_is_empty (&self->send_done) && self->send_source != NULL)
    g_source_set_ready_time (self->send_source, -1);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs send_source_funcs = {
  NULL, NULL, send_source_dispatch, NULL, NULL, NULL,
};

/* Completes a successful send through the send source, if the caller runs
 * in the server's context (GTask would use the caller's thread-default
 * context). Returns FALSE when the caller must use a GTask. */
static gboolean
complete_send_fast (CpInvocation        *self,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  GMainContext *context = g_main_context_get_thread_default ();
  CpSendResult *result;

  if (context == NULL)
    context = g_main_context_default ();
  if (context != cp_rpc_server_get_call_context (self->server, self->exchange) || !g_queue_is_empty (&self->send_tasks))
    return FALSE;

  if (self->send_source == NULL)
    {
      self->send_source = g_source_new (&send_source_funcs, sizeof (SendSource));
      ((SendSource *) self->send_source)->invocation = self;
      g_source_set_static_name (self->send_source, "[connectplugin] stream sends");
      g_source_attach (self->send_source, context);
    }

  result = g_object_new (CP_TYPE_SEND_RESULT, NULL);
  result->invocation = g_object_ref (self);
  result->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  result->callback = callback;
  result->user_data = user_data;
  if (g_queue_is_empty (&self->send_done))
    g_source_set_ready_time (self->send_source, 0);
  g_queue_push_tail (&self->send_done, result);
  return TRUE;
}

void
cp_invocation_complete_send_tasks (CpInvocation *self,
                                   const GError *error)
{
  GTask *task;

  while ((task = g_queue_pop_head (&self->send_tasks)) != NULL)
    {
      cp_invocation_task_detach (task);
      if (error)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

/* ------------------------------------------------------------------ */
/* Writing answers                                                      */

static void
merge_metadata (SoupMessageHeaders *dest,
                SoupMessageHeaders *src,
                const char         *prefix)
{
  if (src != NULL)
    cp_metadata_merge (dest, src, prefix);
}

static gboolean
headers_empty (SoupMessageHeaders *headers)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;

  if (headers == NULL)
    return TRUE;
  soup_message_headers_iter_init (&iter, headers);
  return !soup_message_headers_iter_next (&iter, &name, &value);
}

static SoupMessageHeaders *
new_unary_headers (CpInvocation *self)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

  /* Fresh header sets: append (replace would scan for duplicates). */
  soup_message_headers_append (headers, "Accept-Encoding",
                               cp_rpc_server_get_accept_encoding (self->server));
  if (self->is_get)
    soup_message_headers_append (headers, "Vary", "Accept-Encoding");
  return headers;
}

static void
prepare_answer (CpInvocation *self)
{
  /* The transport drains a moderate unread request body to keep the
   * connection; after a framing or size error there is no point. */
  if (self->close_on_answer && !self->body_done)
    cp_http_exchange_set_close (self->exchange);
}

static void
respond_unary_error (CpInvocation *self,
                     const GError *error)
{
  g_autoptr(SoupMessageHeaders) headers = new_unary_headers (self);
  g_autoptr(GBytes) body = cp_error_to_json (error);

  soup_message_headers_append (headers, "Content-Type", "application/json");
  merge_metadata (headers, cp_error_get_metadata (error), NULL);
  merge_metadata (headers, self->response_headers, NULL);
  merge_metadata (headers, self->response_trailers, "trailer-");

  prepare_answer (self);
  if (self->metrics != NULL)
    cp_metrics_add (self->metrics->response_bytes, g_bytes_get_size (body));
  cp_http_exchange_respond (self->exchange,
                            cp_error_code_to_http_status (cp_error_get_code (error)),
                            headers, body);
}

/* The head of an answer without metadata or compression is the same for
 * every call of a kind (a unary answer, a stream's head, a gRPC stream's
 * "grpc-status: 0" trailers) with the same protocol and content type: the
 * transports that only serialize a head (HTTP/1.1 and HTTP/2 connections)
 * share one per thread, which saves building and freeing header sets on
 * every call. An in-process caller gets the head object itself, so it gets
 * its own. */
#define SHARED_HEADS_MAX 16

typedef enum {
  HEAD_UNARY,
  HEAD_STREAM,
  HEAD_GRPC_OK_TRAILERS,
} HeadKind;

typedef struct {
  HeadKind kind;
  gboolean is_get;
  CpProtocol protocol;
  char *content_type;
  char *accept_encoding;
  SoupMessageHeaders *headers;
} SharedHead;

static void
shared_heads_free (gpointer data)
{
  GArray *heads = data;

  for (guint i = 0; i < heads->len; i++)
    {
      SharedHead *head = &g_array_index (heads, SharedHead, i);

      g_free (head->content_type);
      g_free (head->accept_encoding);
      soup_message_headers_unref (head->headers);
    }
  g_array_unref (heads);
}

static GPrivate shared_heads = G_PRIVATE_INIT (shared_heads_free);

static SoupMessageHeaders *new_stream_headers (CpInvocation *self);

static SoupMessageHeaders *
new_head (CpInvocation *self,
          HeadKind      kind)
{
  SoupMessageHeaders *headers;

  switch (kind)
    {
    case HEAD_UNARY:
      headers = new_unary_headers (self);
      soup_message_headers_append (headers, "Content-Type", self->content_type);
      return headers;
    case HEAD_STREAM:
      return new_stream_headers (self);
    case HEAD_GRPC_OK_TRAILERS:
    default:
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      cp_grpc_error_to_trailers (NULL, headers);
      return headers;
    }
}

/* (transfer full): the head of @kind for @self's answer, which must carry
 * no metadata and no compression. */
static SoupMessageHeaders *
shared_head (CpInvocation *self,
             HeadKind      kind)
{
  const char *accept_encoding = cp_rpc_server_get_accept_encoding (self->server);
  GArray *heads = NULL;
  SharedHead head;
  SoupMessageHeaders *headers;

  if (!cp_http_exchange_is_local (self->exchange))
    {
      heads = g_private_get (&shared_heads);
      if (heads == NULL)
        {
          heads = g_array_new (FALSE, FALSE, sizeof (SharedHead));
          g_private_set (&shared_heads, heads);
        }
      for (guint i = 0; i < heads->len; i++)
        {
          SharedHead *h = &g_array_index (heads, SharedHead, i);

          if (h->kind == kind && h->is_get == self->is_get && h->protocol == self->protocol &&
              strcmp (h->content_type, self->content_type) == 0 &&
              strcmp (h->accept_encoding, accept_encoding) == 0)
            return soup_message_headers_ref (h->headers);
        }
    }

  headers = new_head (self, kind);
  if (heads != NULL && heads->len < SHARED_HEADS_MAX)
    {
      head.kind = kind;
      head.is_get = self->is_get;
      head.protocol = self->protocol;
      head.content_type = g_strdup (self->content_type);
      head.accept_encoding = g_strdup (accept_encoding);
      head.headers = soup_message_headers_ref (headers);
      g_array_append_val (heads, head);
    }
  return headers;
}

static gboolean
respond_unary_message (CpInvocation *self,
                       CpMessage    *message,
                       GError      **error)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) body = NULL;

  body = cp_message_serialize (message, self->codec, error);
  if (body == NULL)
    return FALSE;

  if (headers_empty (self->response_headers) && headers_empty (self->response_trailers) &&
      (self->response_compression == CP_COMPRESSION_IDENTITY || g_bytes_get_size (body) == 0 ||
       g_bytes_get_size (body) < cp_rpc_server_get_compress_min_bytes (self->server)))
    {
      headers = shared_head (self, HEAD_UNARY);
      prepare_answer (self);
      if (self->metrics != NULL)
        cp_metrics_add (self->metrics->response_bytes, g_bytes_get_size (body));
      cp_http_exchange_respond (self->exchange, SOUP_STATUS_OK, headers, body);
      return TRUE;
    }

  headers = new_unary_headers (self);
  soup_message_headers_append (headers, "Content-Type", self->content_type);

  if (self->response_compression != CP_COMPRESSION_IDENTITY &&
      g_bytes_get_size (body) > 0 &&
      g_bytes_get_size (body) >= cp_rpc_server_get_compress_min_bytes (self->server))
    {
      GBytes *compressed = cp_compress (self->response_compression, body, error);

      if (compressed == NULL)
        return FALSE;
      g_bytes_unref (body);
      body = compressed;
      soup_message_headers_append (headers, "Content-Encoding",
                                   cp_compression_to_string (self->response_compression));
    }

  merge_metadata (headers, self->response_headers, NULL);
  merge_metadata (headers, self->response_trailers, "trailer-");

  prepare_answer (self);
  if (self->metrics != NULL)
    cp_metrics_add (self->metrics->response_bytes, g_bytes_get_size (body));
  cp_http_exchange_respond (self->exchange, SOUP_STATUS_OK, headers, body);
  return TRUE;
}

/* The head of an enveloped answer: Content-Type echoed, the protocol's
 * compression headers. */
static SoupMessageHeaders *
new_stream_headers (CpInvocation *self)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  gboolean grpc = self->protocol != CP_PROTOCOL_CONNECT;

  soup_message_headers_append (headers, "Content-Type", self->content_type);
  soup_message_headers_append (headers, grpc ? "grpc-accept-encoding" : "Connect-Accept-Encoding",
                               cp_rpc_server_get_accept_encoding (self->server));
  if (self->response_compression != CP_COMPRESSION_IDENTITY)
    soup_message_headers_append (headers, grpc ? "grpc-encoding" : "Connect-Content-Encoding",
                                 cp_compression_to_string (self->response_compression));
  return headers;
}

static void
ensure_stream_headers (CpInvocation *self)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;

  if (self->headers_sent)
    return;
  self->headers_sent = TRUE;

  if (headers_empty (self->response_headers) && self->response_compression == CP_COMPRESSION_IDENTITY)
    headers = shared_head (self, HEAD_STREAM);
  else
    {
      headers = new_stream_headers (self);
      merge_metadata (headers, self->response_headers, NULL);
    }

  cp_http_exchange_begin_response (self->exchange, SOUP_STATUS_OK, headers);
}

/* Writes response body bytes: as they are, or in base64 for
 * application/grpc-web-text (each write padded on its own). */
static void
write_body (CpInvocation *self,
            GBytes       *bytes)
{
  gsize size;
  const guint8 *data;
  char *text;

  if (G_LIKELY (!self->grpc_text))
    {
      cp_http_exchange_write (self->exchange, bytes);
      return;
    }
  data = g_bytes_get_data (bytes, &size);
  text = g_base64_encode (data, size);
  {
    g_autoptr(GBytes) encoded = g_bytes_new_take (text, strlen (text));
    cp_http_exchange_write (self->exchange, encoded);
  }
}

static gboolean
write_stream_message (CpInvocation *self,
                      CpMessage    *message,
                      GError      **error)
{
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) envelope = NULL;
  guint8 flags = 0;

  payload = cp_message_serialize (message, self->codec, error);
  if (payload == NULL)
    return FALSE;

  if (self->response_compression != CP_COMPRESSION_IDENTITY &&
      g_bytes_get_size (payload) > 0 &&
      g_bytes_get_size (payload) >= cp_rpc_server_get_compress_min_bytes (self->server))
    {
      GBytes *compressed = cp_compress (self->response_compression, payload, error);

      if (compressed == NULL)
        return FALSE;
      g_bytes_unref (payload);
      payload = compressed;
      flags |= CP_ENVELOPE_FLAG_COMPRESSED;
    }

  ensure_stream_headers (self);
  envelope = cp_envelope_encode (flags, payload);
  if (self->metrics != NULL)
    {
      cp_metrics_add (self->metrics->response_bytes, g_bytes_get_size (envelope));
      cp_metrics_add (self->metrics->messages_sent, 1);
    }
  write_body (self, envelope);
  if (cp_http_exchange_is_congested (self->exchange))
    self->congested_bytes += g_bytes_get_size (envelope);
  return TRUE;
}

/* gRPC and gRPC-Web: the status and the trailers. With an error and
 * nothing sent yet (no message, no leading metadata), a "trailers-only"
 * answer: the status in the response head, no body. Otherwise gRPC-Web
 * ends the body with a trailers frame, gRPC with HTTP trailers. */
static void
end_grpc_stream (CpInvocation *self,
                 const GError *error)
{
  g_autoptr(SoupMessageHeaders) trailers = NULL;

  if (error == NULL && headers_empty (self->response_trailers))
    trailers = shared_head (self, HEAD_GRPC_OK_TRAILERS);
  else
    {
      trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      merge_metadata (trailers, self->response_trailers, NULL);
      cp_grpc_error_to_trailers (error, trailers);
    }
  prepare_answer (self);

  if (!self->headers_sent && error != NULL && headers_empty (self->response_headers))
    {
      g_autoptr(SoupMessageHeaders) headers = new_stream_headers (self);
      SoupMessageHeadersIter iter;
      const char *name, *value;

      self->headers_sent = TRUE;
      soup_message_headers_iter_init (&iter, trailers);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        soup_message_headers_append (headers, name, value);
      cp_http_exchange_respond (self->exchange, SOUP_STATUS_OK, headers, NULL);
      return;
    }

  ensure_stream_headers (self);
  if (self->protocol == CP_PROTOCOL_GRPC_WEB)
    {
      g_autoptr(GBytes) payload = cp_grpc_web_trailers_encode (trailers);
      g_autoptr(GBytes) envelope = cp_envelope_encode (CP_GRPC_FLAG_TRAILERS, payload);

      if (self->metrics != NULL)
        cp_metrics_add (self->metrics->response_bytes, g_bytes_get_size (envelope));
      write_body (self, envelope);
    }
  else
    cp_http_exchange_set_response_trailers (self->exchange, trailers);
  cp_http_exchange_end_response (self->exchange);
}

static void
end_stream (CpInvocation *self,
            const GError *error)
{
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) envelope = NULL;

  if (self->protocol != CP_PROTOCOL_CONNECT)
    {
      end_grpc_stream (self, error);
      return;
    }
  payload = cp_end_stream_build (error, self->response_trailers);
  envelope = cp_envelope_encode (CP_ENVELOPE_FLAG_END_STREAM, payload);
  prepare_answer (self);
  ensure_stream_headers (self);
  if (self->metrics != NULL)
    cp_metrics_add (self->metrics->response_bytes, g_bytes_get_size (envelope));
  cp_http_exchange_write (self->exchange, envelope);
  cp_http_exchange_end_response (self->exchange);
}

/* Ends the call with @error (already a CP_ERROR). @by_engine: the engine,
 * not the handler, decided (deadline, bad input, handler gone): later
 * operations of the handler fail with @error. */
void
cp_invocation_finish_with_error (CpInvocation *self,
                                 const GError *error,
                                 gboolean      by_engine)
{
  if (self->finished)
    return;

  if (enveloped (self))
    end_stream (self, error);
  else
    respond_unary_error (self, error);

  cp_invocation_mark_finished (self, error, by_engine);
}

void
cp_invocation_finish_ok (CpInvocation *self)
{
  if (self->finished)
    return;
  end_stream (self, NULL);
  cp_invocation_mark_finished (self, NULL, FALSE);
}

/* Answers with a single message (unary and client streams) or one last
 * message and a successful end (server and bidi streams). */
void
cp_invocation_finish_with_message (CpInvocation *self,
                                   CpMessage    *message)
{
  g_autoptr(GError) error = NULL;

  if (self->finished)
    return;

  if (!enveloped (self))
    {
      if (respond_unary_message (self, message, &error))
        {
          cp_invocation_mark_finished (self, NULL, FALSE);
          return;
        }
    }
  else if (write_stream_message (self, message, &error))
    {
      cp_invocation_finish_ok (self);
      return;
    }

  {
    g_autoptr(GError) internal = g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                              "failed to encode the response: %s",
                                              error->message);
    cp_invocation_finish_with_error (self, internal, FALSE);
  }
}

static gboolean
check_can_send (CpInvocation *self,
                GError      **error)
{
  if (self->finished)
    {
      if (self->finish_error != NULL)
        g_propagate_error (error, g_error_copy (self->finish_error));
      else
        g_set_error_literal (error, CP_ERROR, CP_ERROR_CANCELED, "the call is over");
      return FALSE;
    }
  return TRUE;
}

/* A client that does not read must not grow the server without bound:
 * past max-send-queue-size bytes queued beyond the congestion mark, the
 * stream ends with resource_exhausted and the connection closes. */
static gboolean
check_send_queue (CpInvocation *self,
                  GError      **error)
{
  guint max = cp_rpc_server_get_max_send_queue_size (self->server);

  if (max == 0 || self->congested_bytes <= max || self->finished)
    return TRUE;
  cp_http_exchange_set_close (self->exchange);
  cp_invocation_engine_fail (self,
                             g_error_new (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                                          "the client does not read the stream: more than %u "
                                          "bytes wait to be sent", max));
  return check_can_send (self, error);
}

/**
 * cp_invocation_send_headers:
 * @invocation: a [class@ConnectPlugin.Invocation] of a server-streaming or bidi method
 *
 * Sends the response headers of a stream now, with the leading metadata set
 * so far in [method@ConnectPlugin.Invocation.get_response_headers], instead of with the first
 * message. A client learns that its stream was accepted before any message
 * exists (a watch of changes that may not come for a long time, say). Does
 * nothing when the headers were already sent or the call is over.
 */
void
cp_invocation_send_headers (CpInvocation *invocation)
{
  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (sends_stream (invocation));

  if (invocation->finished || invocation->handler_answered)
    return;
  ensure_stream_headers (invocation);
}

/**
 * cp_invocation_send_message:
 * @invocation: a [class@ConnectPlugin.Invocation] of a server-streaming or bidi method
 * @message: the message to send, an instance of the method's output type
 * @error: return location for a [struct@GLib.Error]
 *
 * Queues @message on the response stream, without waiting: a fast producer
 * facing a slow client grows the write queue; see
 * [method@ConnectPlugin.Invocation.send_message_async] for back-pressure. The response
 * headers are sent with the first message.
 *
 * Returns: %TRUE on success; %FALSE when the call is over (client gone,
 *   deadline passed) or @message could not be encoded
 */
gboolean
cp_invocation_send_message (CpInvocation *invocation,
                            CpMessage    *message,
                            GError      **error)
{
  g_autoptr(CpInvocation) hold = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (CP_IS_INVOCATION (invocation), FALSE);
  g_return_val_if_fail (CP_IS_MESSAGE (message), FALSE);
  g_return_val_if_fail (sends_stream (invocation), FALSE);
  g_return_val_if_fail (!invocation->handler_answered, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_can_send (invocation, error))
    return FALSE;

  hold = g_object_ref (invocation);
  if (!write_stream_message (invocation, message, &local_error))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "failed to encode the message: %s",
                   local_error->message);
      return FALSE;
    }
  return check_send_queue (invocation, error);
}

/**
 * cp_invocation_send_message_async:
 * @invocation: a [class@ConnectPlugin.Invocation] of a server-streaming or bidi method
 * @message: the message to send, an instance of the method's output type
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when the message is queued and the
 *   connection can take more
 * @user_data: (closure): data for @callback
 *
 * Queues @message on the response stream and completes once the
 * connection's write queue is below its high-water mark, so a producer that
 * waits for each send never buffers more than about one message beyond that
 * mark for a slow client.
 */
void
cp_invocation_send_message_async (CpInvocation        *invocation,
                                  CpMessage           *message,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;

  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (CP_IS_MESSAGE (message));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  g_return_if_fail (sends_stream (invocation));

  if (!invocation->handler_answered &&
      (cancellable == NULL || !g_cancellable_is_cancelled (cancellable)) &&
      check_can_send (invocation, NULL))
    {
      if (!cp_invocation_send_message (invocation, message, &error))
        {
          task = g_task_new (invocation, cancellable, callback, user_data);
          g_task_set_source_tag (task, cp_invocation_send_message_async);
          g_task_return_error (task, error);
          return;
        }
      if (!invocation->finished && cp_http_exchange_is_congested (invocation->exchange))
        {
          task = g_task_new (invocation, cancellable, callback, user_data);
          g_task_set_source_tag (task, cp_invocation_send_message_async);
          cp_invocation_watch_cancellable (task);
          g_queue_push_tail (&invocation->send_tasks, g_steal_pointer (&task));
          return;
        }
      if (complete_send_fast (invocation, cancellable, callback, user_data))
        return;
      task = g_task_new (invocation, cancellable, callback, user_data);
      g_task_set_source_tag (task, cp_invocation_send_message_async);
      g_task_return_boolean (task, TRUE);
      return;
    }

  task = g_task_new (invocation, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_invocation_send_message_async);
  if (invocation->handler_answered)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_INTERNAL, "the call was already answered");
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  if (!cp_invocation_send_message (invocation, message, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * cp_invocation_send_message_finish:
 * @invocation: a [class@ConnectPlugin.Invocation]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Invocation.send_message_async].
 *
 * Returns: %TRUE on success; %FALSE when the call ended (client gone,
 *   deadline passed) or @cancellable was cancelled
 */
gboolean
cp_invocation_send_message_finish (CpInvocation  *invocation,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), FALSE);

  if (CP_IS_SEND_RESULT (result))
    {
      CpSendResult *send_result = CP_SEND_RESULT (result);

      g_return_val_if_fail (send_result->invocation == invocation, FALSE);
      /* As a GTask would: a cancellation before finish wins. */
      if (g_cancellable_set_error_if_cancelled (send_result->cancellable, error))
        return FALSE;
      return TRUE;
    }

  g_return_val_if_fail (g_task_is_valid (result, invocation), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == cp_invocation_send_message_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
