/* cp-invocation.c: the server side of one RPC call
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One CpInvocation per request that reached a registered method. It runs
 * docs/engine.md "Server checks" from 5 on (compression negotiation, protocol
 * version, timeout), reads and decodes the request body (unary POST or GET, streams), calls
 * the handler and writes its answer: a bare message or error JSON for unary
 * calls, envelopes and an EndStream for streams.
 *
 * Lifetime: the invocation holds itself (self_ref) until the handler has
 * been called or the call is over; after that the handler's own references
 * keep it. An invocation finalized without an answer answers `internal`.
 * Exchange callbacks reach it through a small shared link that is cleared on
 * finalize, so the exchange never holds the invocation alive.
 *
 * Interceptors: when the server has some, dispatch() runs the chain (a
 * snapshot taken when the call was created) before the handler; each
 * decision may be synchronous or asynchronous (the engine's self_ref keeps
 * the call alive meanwhile). mark_finished() tells every interceptor that
 * was asked, in reverse order, how the call ended.
 */
#include "cp-invocation-private.h"

#include <string.h>

#include "cp-codec-private.h"
#include "cp-compression.h"
#include "cp-envelope.h"
#include "cp-error-private.h"
#include "cp-memory-private.h"
#include "cp-metadata.h"
#include "cp-rpc-server-private.h"
#include "cp-server-interceptor-private.h"
#include "cp-timeout-private.h"

/* Client/bidi streams: stop reading the socket when this many decoded
 * requests wait for cp_invocation_receive_async(). */
#define MAX_QUEUED_REQUESTS 4

/* Completed sends delivered per dispatch of the send source (see
 * CpSendResult below). */
#define SEND_BATCH 128

/* With no configured limit (max-receive-size 0), bodies and messages still
 * stop here: below what a GByteArray can hold, so that no size from the
 * network ever reaches a GLib abort. */
#define HARD_RECEIVE_LIMIT ((gsize) G_MAXINT32)

/* A binary message may take this many times the receive limit once
 * decoded (see cp_proto_prescan()). */
#define DECODED_SIZE_FACTOR 16

/* Request bodies from this size on leave freed memory worth giving back
 * to the system (cp_memory_trim_soon()). */
#define TRIM_AFTER_BYTES (1024 * 1024)

typedef struct {
  CpInvocation *invocation; /* weak: cleared when it is finalized */
} InvocationLink;

struct _CpInvocation
{
  GObject parent_instance;

  CpRpcServer *server;
  CpMethodInfo *info;
  CpMethodKind kind;
  CpMethodHandler handler;
  gpointer handler_data;
  CpHttpExchange *exchange;
  InvocationLink *link;

  CpCodec codec;
  char *content_type;
  gboolean is_get;
  GHashTable *query;

  SoupMessageHeaders *response_headers;   /* created on demand */
  SoupMessageHeaders *response_trailers;  /* created on demand */
  gint64 deadline;
  gint64 timeout_ms;
  GCancellable *cancellable;  /* created on demand */
  gboolean cancelled;
  GSource *deadline_source;

  CpCompression request_compression;
  CpCompression response_compression;
  gsize receive_limit;          /* max-receive-size, or HARD_RECEIVE_LIMIT */

  /* Request body. */
  GBytes *body_first;          /* unary POST: the body while it is one chunk */
  GByteArray *body;            /* unary POST: several chunks */
  gsize body_size;
  gsize received_bytes;        /* the whole body so far, streams included */
  CpEnvelopeReader *reader;    /* streams */
  guint n_requests;
  CpMessage *first_request;    /* server streams */
  GQueue received;             /* client/bidi streams: CpMessage* */
  GQueue receive_tasks;        /* GTask* waiting for a request */
  gboolean input_done;         /* all requests decoded (client/bidi) */
  gboolean body_done;          /* the exchange delivered the whole body */
  gboolean body_paused;
  gboolean reading_body;       /* unary POST body expected */
  gboolean close_on_answer;    /* bad stream: do not drain the rest */

  /* Response. */
  CpInvocation *self_ref;
  gboolean started;
  gboolean handler_answered;
  gboolean headers_sent;
  gboolean finished;
  GError *finish_error;        /* why the engine ended the call, if it did */
  GQueue send_tasks;           /* GTask* waiting for the exchange to drain */
  GQueue send_done;            /* CpSendResult* to deliver from send_source */
  GSource *send_source;        /* created on demand */
  gsize congested_bytes;       /* written since the exchange was last congested */

  /* Interceptors. */
  GPtrArray *interceptors;     /* the server's chain when the call came; NULL if none */
  guint n_intercepted;         /* interceptors asked so far (told the outcome) */
  CpMessage *chain_request;    /* the request, while the chain decides */
};

G_DEFINE_FINAL_TYPE (CpInvocation, cp_invocation, G_TYPE_OBJECT)

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
  if (context != cp_rpc_server_get_context (self->server) || !g_queue_is_empty (&self->send_tasks))
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

static void finish_with_error (CpInvocation *self, const GError *error, gboolean by_engine);

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static void
link_release (gpointer data)
{
  g_rc_box_release (data);
}

static gboolean
is_stream (CpInvocation *self)
{
  return self->kind != CP_METHOD_UNARY;
}

static gboolean
receives_stream (CpInvocation *self)
{
  return self->kind == CP_METHOD_CLIENT_STREAMING || self->kind == CP_METHOD_BIDI_STREAMING;
}

static gboolean
sends_stream (CpInvocation *self)
{
  return self->kind == CP_METHOD_SERVER_STREAMING || self->kind == CP_METHOD_BIDI_STREAMING;
}

static void
cancel_call (CpInvocation *self)
{
  self->cancelled = TRUE;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
}

static void
release_engine_ref (CpInvocation *self)
{
  /* May finalize self: callers hold their own reference. */
  g_clear_object (&self->self_ref);
}

static const char *
query_lookup (CpInvocation *self,
              const char   *name)
{
  GBytes *value;

  if (self->query == NULL)
    return NULL;
  value = g_hash_table_lookup (self->query, name);
  /* Values are NUL-terminated past their size (see the private header). */
  return value ? g_bytes_get_data (value, NULL) : NULL;
}

/* Detaching a task drops its cancellable watch (see watch_cancellable). */
static void
task_detach (GTask *task)
{
  g_task_set_task_data (task, NULL, NULL);
}

static void
source_destroy_and_unref (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

static gboolean
task_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  GTask *task = user_data;
  CpInvocation *self = g_task_get_source_object (task);

  if (g_queue_remove (&self->receive_tasks, task) || g_queue_remove (&self->send_tasks, task))
    {
      task_detach (task);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
      g_object_unref (task);
    }
  return G_SOURCE_REMOVE;
}

/* A pending task (held in one of our queues) completes with
 * G_IO_ERROR_CANCELLED when its cancellable fires. */
static void
watch_cancellable (GTask *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);
  GSource *source;

  if (cancellable == NULL)
    return;
  source = g_cancellable_source_new (cancellable);
  g_source_set_callback (source, G_SOURCE_FUNC (task_cancelled_cb), task, NULL);
  g_source_attach (source, g_task_get_context (task));
  g_task_set_task_data (task, source, source_destroy_and_unref);
}

static void
complete_send_tasks (CpInvocation *self,
                     const GError *error)
{
  GTask *task;

  while ((task = g_queue_pop_head (&self->send_tasks)) != NULL)
    {
      task_detach (task);
      if (error)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

static void
complete_receive_tasks (CpInvocation *self)
{
  GTask *task;

  while (!g_queue_is_empty (&self->receive_tasks))
    {
      CpMessage *message = g_queue_pop_head (&self->received);

      if (message == NULL && !self->input_done && !self->finished)
        return; /* nothing to give yet */

      task = g_queue_pop_head (&self->receive_tasks);
      task_detach (task);
      if (message != NULL)
        g_task_return_pointer (task, message, g_object_unref);
      else if (self->finish_error != NULL)
        g_task_return_error (task, g_error_copy (self->finish_error));
      else if (self->finished && !self->input_done)
        g_task_return_new_error (task, CP_ERROR, CP_ERROR_CANCELED, "the call was already answered");
      else
        g_task_return_pointer (task, NULL, NULL);
      g_object_unref (task);
    }

  if (self->body_paused && self->received.length < MAX_QUEUED_REQUESTS && !self->finished)
    {
      self->body_paused = FALSE;
      cp_http_exchange_resume_body (self->exchange);
    }
}

/* Any decoding failure of request bytes is the caller's fault. */
static GError *
as_invalid_argument (GError *error)
{
  if (error->domain != CP_ERROR)
    {
      GError *wrapped = g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "%s", error->message);
      g_error_free (error);
      return wrapped;
    }
  return error;
}

static GError *
size_error (guint64 size,
            gsize   limit)
{
  return g_error_new (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                      "message size %" G_GUINT64_FORMAT " is larger than configured max %"
                      G_GSIZE_FORMAT, size, limit);
}

/* Decompresses (when @compressed) and checks the size limit. */
static GBytes *
inflate_payload (CpInvocation *self,
                 GBytes       *payload,
                 gboolean      compressed,
                 GError      **error)
{
  g_autoptr(GBytes) data = g_bytes_ref (payload);
  gsize max = self->receive_limit;

  if (g_bytes_get_size (data) > max)
    {
      g_propagate_error (error, size_error (g_bytes_get_size (data), max));
      return NULL;
    }

  if (compressed && g_bytes_get_size (data) > 0)
    {
      GError *local_error = NULL;
      GBytes *inflated = cp_decompress (self->request_compression, data, max, &local_error);

      if (inflated == NULL)
        {
          /* Bombs are resource_exhausted; any other failure is bad input. */
          if (!g_error_matches (local_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED))
            {
              GError *bad = g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                         "failed to decompress the message: %s",
                                         local_error->message);
              g_error_free (local_error);
              local_error = bad;
            }
          g_propagate_error (error, local_error);
          return NULL;
        }
      g_bytes_unref (data);
      data = inflated;
      if (g_bytes_get_size (data) > max)
        {
          g_propagate_error (error, size_error (g_bytes_get_size (data), max));
          return NULL;
        }
    }

  return g_steal_pointer (&data);
}

static CpMessage *
decode_request (CpInvocation *self,
                GBytes       *payload,
                gboolean      compressed,
                GError      **error)
{
  g_autoptr(GBytes) data = NULL;
  GError *local_error = NULL;
  CpMessage *message;

  data = inflate_payload (self, payload, compressed, error);
  if (data == NULL)
    return NULL;

  message = cp_message_new_from_bytes_bounded (cp_method_info_get_input_type (self->info),
                                               self->codec, data,
                                               self->receive_limit * DECODED_SIZE_FACTOR,
                                               &local_error);
  if (message == NULL)
    {
      GError *e = as_invalid_argument (local_error);

      /* The codec reports every malformed input as invalid_argument, and
       * a message too large once decoded as resource_exhausted. */
      if (e->domain == CP_ERROR && e->code != CP_ERROR_INVALID_ARGUMENT &&
          e->code != CP_ERROR_RESOURCE_EXHAUSTED)
        e->code = CP_ERROR_INVALID_ARGUMENT;
      g_propagate_error (error, e);
    }
  return message;
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

/* Tells the interceptors that were asked how the call ended, last first. */
static void
notify_completed (CpInvocation *self,
                  const GError *outcome)
{
  g_clear_object (&self->chain_request);
  for (guint i = self->n_intercepted; i > 0; i--)
    cp_server_interceptor_emit_completed (self->interceptors->pdata[i - 1], self, outcome);
}

/* @outcome: the call's error (NULL on success); @by_engine: the engine,
 * not the handler, ended the call, and later operations of the handler
 * fail with @outcome. */
static void
mark_finished (CpInvocation *self,
               const GError *outcome,
               gboolean      by_engine)
{
  g_assert (!self->finished);

  self->finished = TRUE;
  if (by_engine && outcome != NULL && self->finish_error == NULL)
    self->finish_error = g_error_copy (outcome);

  if (self->deadline_source != NULL)
    {
      g_source_destroy (self->deadline_source);
      g_clear_pointer (&self->deadline_source, g_source_unref);
    }

  complete_send_tasks (self, self->finish_error);
  complete_receive_tasks (self);
  g_clear_pointer (&self->reader, cp_envelope_reader_free);
  g_clear_pointer (&self->body, g_byte_array_unref);
  g_clear_pointer (&self->body_first, g_bytes_unref);
  if (self->received_bytes >= TRIM_AFTER_BYTES)
    cp_memory_trim_soon ();

  /* Before the server may complete a shutdown: every outcome is seen. */
  if (self->n_intercepted > 0)
    notify_completed (self, outcome);

  cp_rpc_server_invocation_finished (self->server);
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
  cp_http_exchange_respond (self->exchange,
                            cp_error_code_to_http_status (cp_error_get_code (error)),
                            headers, body);
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
  cp_http_exchange_respond (self->exchange, SOUP_STATUS_OK, headers, body);
  return TRUE;
}

static void
ensure_stream_headers (CpInvocation *self)
{
  g_autoptr(SoupMessageHeaders) headers = NULL;

  if (self->headers_sent)
    return;
  self->headers_sent = TRUE;

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  soup_message_headers_append (headers, "Content-Type", self->content_type);
  soup_message_headers_append (headers, "Connect-Accept-Encoding",
                               cp_rpc_server_get_accept_encoding (self->server));
  if (self->response_compression != CP_COMPRESSION_IDENTITY)
    soup_message_headers_append (headers, "Connect-Content-Encoding",
                                 cp_compression_to_string (self->response_compression));
  merge_metadata (headers, self->response_headers, NULL);

  cp_http_exchange_begin_response (self->exchange, SOUP_STATUS_OK, headers);
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
  cp_http_exchange_write (self->exchange, envelope);
  if (cp_http_exchange_is_congested (self->exchange))
    self->congested_bytes += g_bytes_get_size (envelope);
  return TRUE;
}

static void
end_stream (CpInvocation *self,
            const GError *error)
{
  g_autoptr(GBytes) payload = cp_end_stream_build (error, self->response_trailers);
  g_autoptr(GBytes) envelope = cp_envelope_encode (CP_ENVELOPE_FLAG_END_STREAM, payload);

  prepare_answer (self);
  ensure_stream_headers (self);
  cp_http_exchange_write (self->exchange, envelope);
  cp_http_exchange_end_response (self->exchange);
}

/* Ends the call with @error (already a CP_ERROR). @by_engine: the engine,
 * not the handler, decided (deadline, bad input, handler gone): later
 * operations of the handler fail with @error. */
static void
finish_with_error (CpInvocation *self,
                   const GError *error,
                   gboolean      by_engine)
{
  if (self->finished)
    return;

  if (is_stream (self))
    end_stream (self, error);
  else
    respond_unary_error (self, error);

  mark_finished (self, error, by_engine);
}

static void
finish_ok (CpInvocation *self)
{
  if (self->finished)
    return;
  end_stream (self, NULL);
  mark_finished (self, NULL, FALSE);
}

/* Answers with a single message (unary and client streams) or one last
 * message and a successful end (server and bidi streams). */
static void
finish_with_message (CpInvocation *self,
                     CpMessage    *message)
{
  g_autoptr(GError) error = NULL;

  if (self->finished)
    return;

  if (!is_stream (self))
    {
      if (respond_unary_message (self, message, &error))
        {
          mark_finished (self, NULL, FALSE);
          return;
        }
    }
  else if (write_stream_message (self, message, &error))
    {
      finish_ok (self);
      return;
    }

  {
    g_autoptr(GError) internal = g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                              "failed to encode the response: %s",
                                              error->message);
    finish_with_error (self, internal, FALSE);
  }
}

/* ------------------------------------------------------------------ */
/* Running the handler                                                  */

static void run_chain (CpInvocation *self);

/* An interceptor refused the call (with @error, or answered it itself). */
static void
chain_refused (CpInvocation        *self,
               CpServerInterceptor *interceptor,
               GError              *error)
{
  if (!self->finished)
    {
      g_autoptr(GError) connect_error = NULL;

      if (error != NULL)
        connect_error = cp_error_to_connect (error);
      else
        connect_error = g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                     "interceptor %s refused the call without an error",
                                     G_OBJECT_TYPE_NAME (interceptor));
      /* The call is answered: a late answer is the usual programming error. */
      self->handler_answered = TRUE;
      finish_with_error (self, connect_error, FALSE);
    }
  g_clear_error (&error);
  release_engine_ref (self);
}

static void
on_intercepted (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(CpInvocation) self = user_data;
  CpServerInterceptor *interceptor = CP_SERVER_INTERCEPTOR (source);
  GError *error = NULL;

  if (!cp_server_interceptor_intercept_finish (interceptor, result, &error))
    {
      chain_refused (self, interceptor, error);
      return;
    }
  run_chain (self);
}

/* Asks the interceptors from n_intercepted on, then runs the handler. */
static void
run_chain (CpInvocation *self)
{
  g_autoptr(CpMessage) request = NULL;

  while (!self->finished && self->n_intercepted < self->interceptors->len)
    {
      CpServerInterceptor *interceptor = self->interceptors->pdata[self->n_intercepted++];
      CpServerInterceptorClass *klass = CP_SERVER_INTERCEPTOR_GET_CLASS (interceptor);
      GError *error = NULL;

      if (cp_server_interceptor_is_async (interceptor))
        {
          cp_server_interceptor_intercept_async (interceptor, self, self->chain_request,
                                                 cp_invocation_get_cancellable (self),
                                                 on_intercepted, g_object_ref (self));
          return;
        }
      if (klass->intercept != NULL &&
          !klass->intercept (interceptor, self, self->chain_request, &error))
        {
          chain_refused (self, interceptor, error);
          return;
        }
    }

  /* Ended meanwhile: answered by an interceptor, deadline, client gone. */
  if (self->finished)
    {
      release_engine_ref (self);
      return;
    }

  request = g_steal_pointer (&self->chain_request);
  self->handler (self, request, self->handler_data);
  release_engine_ref (self);
}

static void
dispatch (CpInvocation *self,
          CpMessage    *request)
{
  g_autoptr(CpInvocation) hold = g_object_ref (self);

  if (self->finished)
    {
      release_engine_ref (self);
      return;
    }

  if (self->interceptors != NULL)
    {
      g_set_object (&self->chain_request, request);
      run_chain (self);
      return;
    }

  self->handler (self, request, self->handler_data);
  release_engine_ref (self);
}

static void
engine_fail (CpInvocation *self,
             GError       *error)
{
  finish_with_error (self, error, TRUE);
  g_error_free (error);
  /* Stop a running handler; its later answers are ignored. */
  cancel_call (self);
  release_engine_ref (self);
}

static void
process_unary_payload (CpInvocation *self,
                       GBytes       *data)
{
  GError *error = NULL;
  g_autoptr(CpMessage) request = NULL;

  request = decode_request (self, data,
                            self->request_compression != CP_COMPRESSION_IDENTITY,
                            &error);
  if (request == NULL)
    {
      engine_fail (self, error);
      return;
    }
  dispatch (self, request);
}

static void
process_get (CpInvocation *self)
{
  GBytes *message = g_hash_table_lookup (self->query, "message");
  const char *base64 = query_lookup (self, "base64");
  g_autoptr(GBytes) data = NULL;

  if (g_strcmp0 (base64, "1") == 0)
    {
      g_autofree char *text = g_strdup (g_bytes_get_data (message, NULL));
      GError *error = NULL;

      /* A raw '+' of the standard alphabet arrives as a space. */
      g_strdelimit (text, " ", '+');
      data = cp_base64_decode_liberal (text, -1, &error);
      if (data == NULL)
        {
          engine_fail (self, as_invalid_argument (error));
          return;
        }
    }
  else
    data = g_bytes_ref (message);

  process_unary_payload (self, data);
}

/* Decodes every complete envelope buffered in the reader. Returns FALSE
 * when the call was ended. */
static gboolean
process_envelopes (CpInvocation *self)
{
  guint8 flags;
  GBytes *payload_raw;
  GError *error = NULL;

  while (self->reader != NULL && !self->input_done &&
         cp_envelope_reader_next (self->reader, &flags, &payload_raw, &error))
    {
      g_autoptr(GBytes) payload = payload_raw;
      CpMessage *message;

      if (flags & CP_ENVELOPE_FLAG_END_STREAM)
        {
          /* Forbidden on requests but tolerated as the last frame (https://connectrpc.com/docs/protocol). */
          self->input_done = TRUE;
          break;
        }

      if ((flags & CP_ENVELOPE_FLAG_COMPRESSED) &&
          self->request_compression == CP_COMPRESSION_IDENTITY)
        {
          engine_fail (self, g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                          "protocol error: received compressed message "
                                          "without Connect-Content-Encoding"));
          return FALSE;
        }

      message = decode_request (self, payload, (flags & CP_ENVELOPE_FLAG_COMPRESSED) != 0, &error);
      if (message == NULL)
        {
          engine_fail (self, error);
          return FALSE;
        }

      self->n_requests++;
      if (self->kind == CP_METHOD_SERVER_STREAMING)
        {
          if (self->n_requests > 1)
            {
              g_object_unref (message);
              engine_fail (self, g_error_new (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                              "protocol error: server streaming %s received "
                                              "more than one request message",
                                              cp_method_info_get_procedure (self->info)));
              return FALSE;
            }
          self->first_request = message;
        }
      else
        {
          g_queue_push_tail (&self->received, message);
          if (self->received.length >= MAX_QUEUED_REQUESTS && !self->body_paused)
            {
              self->body_paused = TRUE;
              cp_http_exchange_pause_body (self->exchange);
            }
        }
    }

  if (error != NULL)
    {
      engine_fail (self, error);
      return FALSE;
    }

  if (receives_stream (self))
    complete_receive_tasks (self);
  return TRUE;
}

static void
stream_input_end (CpInvocation *self)
{
  GError *error = NULL;

  if (!self->input_done && self->reader != NULL &&
      !cp_envelope_reader_finish (self->reader, &error))
    {
      engine_fail (self, error);
      return;
    }
  self->input_done = TRUE;

  if (self->kind == CP_METHOD_SERVER_STREAMING)
    {
      g_autoptr(CpMessage) request = g_steal_pointer (&self->first_request);

      if (request == NULL)
        {
          engine_fail (self, g_error_new (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                          "protocol error: server streaming %s received "
                                          "no request message",
                                          cp_method_info_get_procedure (self->info)));
          return;
        }
      dispatch (self, request);
    }
  else
    complete_receive_tasks (self);
}

/* ------------------------------------------------------------------ */
/* Exchange callbacks                                                   */

static void
on_body_chunk (CpHttpExchange *exchange,
               GBytes         *chunk,
               gpointer        user_data)
{
  InvocationLink *link = user_data;
  g_autoptr(CpInvocation) self = link->invocation ? g_object_ref (link->invocation) : NULL;

  if (self == NULL || self->finished)
    return;

  self->received_bytes += g_bytes_get_size (chunk);
  if (!is_stream (self))
    {
      if (!self->reading_body)
        return;
      /* Checked before adding: body_size stays <= receive_limit. */
      if (g_bytes_get_size (chunk) > self->receive_limit - self->body_size)
        {
          self->close_on_answer = TRUE;
          engine_fail (self, size_error ((guint64) self->body_size + g_bytes_get_size (chunk),
                                         self->receive_limit));
          return;
        }
      self->body_size += g_bytes_get_size (chunk);
      /* Zero copy while the body is a single chunk. */
      if (self->body == NULL && self->body_first == NULL)
        self->body_first = g_bytes_ref (chunk);
      else
        {
          if (self->body == NULL)
            {
              g_autoptr(GBytes) first = g_steal_pointer (&self->body_first);
              self->body = g_byte_array_sized_new (self->body_size);
              g_byte_array_append (self->body, g_bytes_get_data (first, NULL),
                                   g_bytes_get_size (first));
            }
          g_byte_array_append (self->body, g_bytes_get_data (chunk, NULL),
                               g_bytes_get_size (chunk));
        }
      return;
    }

  if (self->reader == NULL || self->input_done)
    return;
  cp_envelope_reader_push (self->reader, chunk);
  /* Any error in there is about framing, size or encoding of the stream. */
  self->close_on_answer = TRUE;
  process_envelopes (self);
  self->close_on_answer = FALSE;
}

static void
on_body_end (CpHttpExchange *exchange,
             gpointer        user_data)
{
  InvocationLink *link = user_data;
  g_autoptr(CpInvocation) self = link->invocation ? g_object_ref (link->invocation) : NULL;

  if (self == NULL || self->body_done)
    return;
  self->body_done = TRUE;
  if (self->finished)
    return;

  if (!is_stream (self))
    {
      g_autoptr(GBytes) data = NULL;

      if (!self->reading_body)
        return; /* GET, or an empty body already processed */
      self->reading_body = FALSE;
      if (self->body != NULL)
        data = g_byte_array_free_to_bytes (g_steal_pointer (&self->body));
      else if (self->body_first != NULL)
        data = g_steal_pointer (&self->body_first);
      else
        data = g_bytes_new (NULL, 0);
      process_unary_payload (self, data);
      return;
    }

  stream_input_end (self);
}

static void
on_aborted (CpHttpExchange *exchange,
            const GError   *error,
            gpointer        user_data)
{
  InvocationLink *link = user_data;
  g_autoptr(CpInvocation) self = link->invocation ? g_object_ref (link->invocation) : NULL;
  g_autoptr(GError) canceled = NULL;

  if (self == NULL)
    return;
  self->body_done = TRUE;
  if (self->finished)
    return;

  /* The client is gone: nothing can be answered; stop the handler. */
  canceled = g_error_new (CP_ERROR, CP_ERROR_CANCELED, "the client went away%s%s",
                          error ? ": " : "", error ? error->message : "");
  mark_finished (self, canceled, TRUE);
  cancel_call (self);
  release_engine_ref (self);
}

static void
on_writable (CpHttpExchange *exchange,
             gpointer        user_data)
{
  InvocationLink *link = user_data;
  g_autoptr(CpInvocation) self = link->invocation ? g_object_ref (link->invocation) : NULL;

  if (self == NULL || cp_http_exchange_is_congested (exchange))
    return;
  self->congested_bytes = 0;
  complete_send_tasks (self, NULL);
}

static const CpHttpExchangeCallbacks exchange_callbacks = {
  .body_chunk = on_body_chunk,
  .body_end = on_body_end,
  .aborted = on_aborted,
  .writable = on_writable,
};

static gboolean
deadline_cb (gpointer user_data)
{
  g_autoptr(CpInvocation) self = g_object_ref (user_data);

  g_clear_pointer (&self->deadline_source, g_source_unref);
  if (!self->finished)
    engine_fail (self, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                            "the operation timed out"));
  else
    cancel_call (self);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------ */
/* Starting: server checks 5–7 (docs/engine.md)                        */

static gboolean
accept_list_pick (CpInvocation *self,
                  const char   *accept,
                  CpCompression *out)
{
  g_auto(GStrv) names = NULL;

  if (accept == NULL)
    return FALSE;
  names = g_strsplit_set (accept, ", ", -1);
  for (guint i = 0; names[i] != NULL; i++)
    {
      char *semicolon = strchr (names[i], ';');
      CpCompression compression;

      if (semicolon != NULL)
        *semicolon = '\0';
      if (names[i][0] == '\0')
        continue;
      if (cp_compression_from_string (names[i], &compression) &&
          cp_rpc_server_supports_compression (self->server, compression))
        {
          *out = compression;
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
negotiate_compression (CpInvocation *self,
                       const char   *used,
                       const char   *accept,
                       GError      **error)
{
  CpCompression compression = CP_COMPRESSION_IDENTITY;

  if (used != NULL && used[0] != '\0' &&
      (!cp_compression_from_string (used, &compression) ||
       !cp_rpc_server_supports_compression (self->server, compression)))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                   "unknown compression \"%s\": supported encodings are %s",
                   used, cp_rpc_server_get_accept_encoding (self->server));
      return FALSE;
    }

  self->request_compression = compression;
  if (compression != CP_COMPRESSION_IDENTITY)
    self->response_compression = compression;
  else if (!accept_list_pick (self, accept, &self->response_compression))
    self->response_compression = CP_COMPRESSION_IDENTITY;
  return TRUE;
}

static GError *
check_request (CpInvocation *self)
{
  SoupMessageHeaders *headers = cp_http_exchange_get_request_headers (self->exchange);
  gboolean require = cp_rpc_server_get_require_protocol_header (self->server);
  const char *used, *accept, *version, *timeout;
  GError *error = NULL;

  /* Compression. */
  if (self->is_get)
    used = query_lookup (self, "compression");
  else if (is_stream (self))
    used = soup_message_headers_get_one (headers, "Connect-Content-Encoding");
  else
    used = soup_message_headers_get_one (headers, "Content-Encoding");
  accept = soup_message_headers_get_list (headers, is_stream (self) ? "Connect-Accept-Encoding"
                                                                    : "Accept-Encoding");
  if (!negotiate_compression (self, used, accept, &error))
    return error;

  /* Protocol version. */
  if (self->is_get)
    {
      version = query_lookup (self, "connect");
      if (version != NULL ? strcmp (version, "v1") != 0 : require)
        return g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                            "connect must be \"v1\": got \"%s\"", version ? version : "");
      if (g_hash_table_lookup (self->query, "message") == NULL)
        return g_error_new_literal (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                    "missing message query parameter");
    }
  else
    {
      version = soup_message_headers_get_one (headers, "Connect-Protocol-Version");
      if (version != NULL && strcmp (version, "1") != 0)
        return g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                            "connect-protocol-version must be \"1\": got \"%s\"", version);
      if (version == NULL && require && !is_stream (self))
        return g_error_new_literal (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                    "missing required header: set Connect-Protocol-Version to \"1\"");
    }

  /* Timeout: the deadline counts from the arrival of the request head. */
  timeout = soup_message_headers_get_one (headers, "Connect-Timeout-Ms");
  if (timeout != NULL)
    {
      gint64 ms = 0;

      if (!cp_timeout_parse (timeout, &ms, &error))
        return as_invalid_argument (error);
      self->timeout_ms = ms;
      self->deadline = cp_http_exchange_get_arrival_time (self->exchange) + ms * 1000;
    }

  return NULL;
}

/* A unary body declared larger than the limit is refused before any of it
 * is read, and the connection closed rather than drained. */
static GError *
check_declared_length (CpInvocation *self)
{
  SoupMessageHeaders *headers = cp_http_exchange_get_request_headers (self->exchange);
  goffset declared;

  if (is_stream (self) || self->is_get || self->body_done ||
      soup_message_headers_get_encoding (headers) != SOUP_ENCODING_CONTENT_LENGTH)
    return NULL;
  declared = soup_message_headers_get_content_length (headers);
  if (declared <= 0 || (guint64) declared <= self->receive_limit)
    return NULL;
  self->close_on_answer = TRUE;
  return size_error ((guint64) declared, self->receive_limit);
}

static void
start_deadline (CpInvocation *self)
{
  gint64 remaining_us;

  if (self->deadline == G_MAXINT64)
    return;
  remaining_us = MAX (self->deadline - g_get_monotonic_time (), 0);
  self->deadline_source = g_timeout_source_new ((guint) MIN ((remaining_us + 999) / 1000, G_MAXUINT));
  g_source_set_callback (self->deadline_source, deadline_cb, self, NULL);
  g_source_set_priority (self->deadline_source, G_PRIORITY_DEFAULT);
  g_source_attach (self->deadline_source, cp_rpc_server_get_context (self->server));
}

void
cp_invocation_start (CpInvocation *self)
{
  g_autoptr(CpInvocation) hold = NULL;
  GError *error;

  g_return_if_fail (CP_IS_INVOCATION (self));
  g_return_if_fail (!self->started);

  hold = g_object_ref (self);
  self->started = TRUE;
  self->self_ref = g_object_ref (self);
  self->receive_limit = cp_rpc_server_get_max_receive_size (self->server);
  if (self->receive_limit == 0 || self->receive_limit > HARD_RECEIVE_LIMIT)
    self->receive_limit = HARD_RECEIVE_LIMIT;
  self->body_done = self->is_get || cp_http_exchange_has_empty_body (self->exchange);

  cp_http_exchange_set_callbacks (self->exchange, &exchange_callbacks,
                                  g_rc_box_acquire (self->link), link_release);

  error = check_request (self);
  if (error == NULL)
    error = check_declared_length (self);
  if (error != NULL)
    {
      engine_fail (self, error);
      return;
    }

  start_deadline (self);

  switch (self->kind)
    {
    case CP_METHOD_UNARY:
      if (self->is_get)
        process_get (self);
      else if (self->body_done)
        {
          g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
          process_unary_payload (self, empty);
        }
      else
        self->reading_body = TRUE;
      break;

    case CP_METHOD_SERVER_STREAMING:
      self->reader = cp_envelope_reader_new (self->receive_limit);
      if (self->body_done)
        stream_input_end (self);
      break;

    case CP_METHOD_CLIENT_STREAMING:
    case CP_METHOD_BIDI_STREAMING:
      self->reader = cp_envelope_reader_new (self->receive_limit);
      if (self->body_done)
        self->input_done = TRUE;
      dispatch (self, NULL);
      break;

    default:
      g_assert_not_reached ();
    }
}

CpInvocation *
cp_invocation_new (CpRpcServer     *server,
                   CpMethodInfo    *info,
                   CpMethodHandler  handler,
                   gpointer         handler_data,
                   CpHttpExchange  *exchange,
                   CpCodec          codec,
                   const char      *content_type,
                   GHashTable      *query)
{
  CpInvocation *self = g_object_new (CP_TYPE_INVOCATION, NULL);

  self->server = g_object_ref (server);
  self->info = cp_method_info_ref (info);
  self->kind = cp_method_info_get_kind (info);
  self->handler = handler;
  self->handler_data = handler_data;
  self->exchange = cp_http_exchange_ref (exchange);
  self->codec = codec;
  self->content_type = g_strdup (content_type);
  self->is_get = query != NULL;
  self->query = query ? g_hash_table_ref (query) : NULL;
  if (cp_rpc_server_get_interceptor_chain (server) != NULL)
    self->interceptors = g_ptr_array_ref (cp_rpc_server_get_interceptor_chain (server));

  return self;
}

/* ------------------------------------------------------------------ */
/* GObject                                                              */

/* Answering happens in dispose, not finalize: interceptors are told the
 * outcome with the invocation, which must still be a live object then. */
static void
cp_invocation_dispose (GObject *object)
{
  CpInvocation *self = CP_INVOCATION (object);

  if (self->started && !self->finished)
    {
      g_autoptr(GError) error = g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                             "handler did not answer");
      finish_with_error (self, error, TRUE);
    }

  G_OBJECT_CLASS (cp_invocation_parent_class)->dispose (object);
}

static void
cp_invocation_finalize (GObject *object)
{
  CpInvocation *self = CP_INVOCATION (object);

  self->link->invocation = NULL;
  g_rc_box_release (self->link);

  if (self->deadline_source != NULL)
    {
      g_source_destroy (self->deadline_source);
      g_source_unref (self->deadline_source);
    }
  if (self->send_source != NULL)
    {
      g_source_destroy (self->send_source);
      g_clear_pointer (&self->send_source, g_source_unref);
    }
  g_clear_pointer (&self->reader, cp_envelope_reader_free);
  g_clear_pointer (&self->body, g_byte_array_unref);
  g_clear_pointer (&self->body_first, g_bytes_unref);
  g_clear_object (&self->first_request);
  g_queue_clear_full (&self->received, g_object_unref);
  g_clear_error (&self->finish_error);
  g_clear_pointer (&self->response_headers, soup_message_headers_unref);
  g_clear_pointer (&self->response_trailers, soup_message_headers_unref);
  g_clear_pointer (&self->query, g_hash_table_unref);
  g_clear_pointer (&self->content_type, g_free);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->exchange, cp_http_exchange_unref);
  g_clear_pointer (&self->info, cp_method_info_unref);
  g_clear_object (&self->chain_request);
  g_clear_pointer (&self->interceptors, g_ptr_array_unref);
  g_clear_object (&self->server);

  G_OBJECT_CLASS (cp_invocation_parent_class)->finalize (object);
}

static void
cp_invocation_class_init (CpInvocationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = cp_invocation_dispose;
  object_class->finalize = cp_invocation_finalize;
}

static void
cp_invocation_init (CpInvocation *self)
{
  self->link = g_rc_box_new0 (InvocationLink);
  self->link->invocation = self;
  self->deadline = G_MAXINT64;
  self->timeout_ms = -1;
  g_queue_init (&self->received);
  g_queue_init (&self->receive_tasks);
  g_queue_init (&self->send_tasks);
  g_queue_init (&self->send_done);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

/**
 * CpInvocation:
 *
 * The server side of one RPC call, handed to a #CpMethodHandler.
 *
 * The handler reads the request metadata, then answers exactly once, now or
 * later: cp_invocation_return_message(), cp_invocation_return_error(),
 * cp_invocation_return_gerror(), cp_invocation_take_error() or
 * cp_invocation_return_ok(). A handler that answers later keeps a
 * reference (g_object_ref()) until then; an invocation released without an
 * answer answers `internal` ("handler did not answer"). Answering twice is a
 * programming error.
 *
 * Server-streaming and bidi handlers send messages with
 * cp_invocation_send_message() or, honouring back-pressure from a slow
 * client, cp_invocation_send_message_async(), then end the stream with
 * cp_invocation_return_ok() or an error. Client-streaming and bidi handlers
 * read requests with cp_invocation_receive_async().
 *
 * When the client goes away or the deadline passes, the invocation's
 * #GCancellable (cp_invocation_get_cancellable()) is cancelled; answers
 * given after that are ignored.
 *
 * Before the handler runs, the server's interceptors (#CpServerInterceptor)
 * see the invocation: they may add response headers and trailers, or
 * answer it themselves, in which case the handler is not called.
 *
 * All functions must be called in the #GMainContext of the server.
 */

/**
 * cp_invocation_get_method_info:
 * @invocation: a #CpInvocation
 *
 * Gets the description of the called method.
 *
 * Returns: (transfer none): the method info
 */
CpMethodInfo *
cp_invocation_get_method_info (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return invocation->info;
}

/**
 * cp_invocation_get_procedure:
 * @invocation: a #CpInvocation
 *
 * Gets the called procedure, e.g. `/kv.v1.KVService/Get`.
 *
 * Returns: (transfer none): the procedure name
 */
const char *
cp_invocation_get_procedure (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return cp_method_info_get_procedure (invocation->info);
}

/**
 * cp_invocation_get_codec:
 * @invocation: a #CpInvocation
 *
 * Gets the codec of the call (the request's, also used for the response).
 *
 * Returns: the #CpCodec
 */
CpCodec
cp_invocation_get_codec (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), CP_CODEC_PROTO);
  return invocation->codec;
}

/**
 * cp_invocation_get_request_headers:
 * @invocation: a #CpInvocation
 *
 * Gets the HTTP request headers, which carry the client's metadata.
 *
 * Returns: (transfer none): the request headers
 */
SoupMessageHeaders *
cp_invocation_get_request_headers (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return cp_http_exchange_get_request_headers (invocation->exchange);
}

/**
 * cp_invocation_get_response_headers:
 * @invocation: a #CpInvocation
 *
 * Gets the response headers (leading metadata) to fill before answering,
 * or, for streams, before the first message is sent. Protocol headers
 * (Content-Type, `Connect-*`, ...) set here are ignored.
 *
 * Returns: (transfer none): the response headers
 */
SoupMessageHeaders *
cp_invocation_get_response_headers (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  if (invocation->response_headers == NULL)
    invocation->response_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return invocation->response_headers;
}

/**
 * cp_invocation_get_response_trailers:
 * @invocation: a #CpInvocation
 *
 * Gets the response trailers (trailing metadata) to fill before answering.
 * Unary calls send them as `Trailer-` prefixed headers, streams in the
 * EndStream message.
 *
 * Returns: (transfer none): the response trailers
 */
SoupMessageHeaders *
cp_invocation_get_response_trailers (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  if (invocation->response_trailers == NULL)
    invocation->response_trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return invocation->response_trailers;
}

/**
 * cp_invocation_get_deadline:
 * @invocation: a #CpInvocation
 *
 * Gets the deadline of the call, in the time base of g_get_monotonic_time():
 * the arrival of the request plus the client's `Connect-Timeout-Ms`. When
 * it passes, the call ends with `deadline_exceeded` and the cancellable is
 * cancelled.
 *
 * Returns: the deadline in microseconds, or %G_MAXINT64 when there is none
 */
gint64
cp_invocation_get_deadline (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), G_MAXINT64);
  return invocation->deadline;
}

/**
 * cp_invocation_get_timeout_ms:
 * @invocation: a #CpInvocation
 *
 * Gets the timeout the client gave (`Connect-Timeout-Ms`), that is the time
 * that remained when the request arrived.
 *
 * Returns: the timeout in milliseconds, or -1 when there is none
 */
gint64
cp_invocation_get_timeout_ms (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), -1);
  return invocation->timeout_ms;
}

/**
 * cp_invocation_get_cancellable:
 * @invocation: a #CpInvocation
 *
 * Gets a #GCancellable that is cancelled when the call can no longer be
 * answered usefully: the client went away, the deadline passed, or the
 * engine ended the call because of bad input. Pass it to the operations the
 * handler starts.
 *
 * Returns: (transfer none): the cancellable
 */
GCancellable *
cp_invocation_get_cancellable (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  if (invocation->cancellable == NULL)
    {
      invocation->cancellable = g_cancellable_new ();
      if (invocation->cancelled)
        g_cancellable_cancel (invocation->cancellable);
    }
  return invocation->cancellable;
}

/**
 * cp_invocation_get_http_method:
 * @invocation: a #CpInvocation
 *
 * Gets the HTTP method of the request: `POST`, or `GET` for unary methods
 * without side effects called with HTTP GET.
 *
 * Returns: (transfer none): the HTTP method
 */
const char *
cp_invocation_get_http_method (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return cp_http_exchange_get_method (invocation->exchange);
}

/**
 * cp_invocation_get_remote_address:
 * @invocation: a #CpInvocation
 *
 * Gets the address of the client.
 *
 * Returns: (transfer none) (nullable): the client's address, or %NULL when
 *   unknown (in-process calls)
 */
GSocketAddress *
cp_invocation_get_remote_address (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return cp_http_exchange_get_remote_address (invocation->exchange);
}

static gboolean
begin_answer (CpInvocation *self)
{
  if (self->handler_answered)
    {
      g_critical ("The invocation of %s was already answered",
                  cp_method_info_get_procedure (self->info));
      return FALSE;
    }
  self->handler_answered = TRUE;
  return TRUE;
}

/**
 * cp_invocation_return_message:
 * @invocation: (transfer none): a #CpInvocation
 * @response: the response, an instance of the method's output type
 *
 * Answers the call with @response: for unary and client-streaming methods,
 * the response; for server-streaming and bidi methods, a last message
 * followed by a successful end of stream.
 */
void
cp_invocation_return_message (CpInvocation *invocation,
                              CpMessage    *response)
{
  g_autoptr(CpInvocation) hold = NULL;

  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (CP_IS_MESSAGE (response));
  g_return_if_fail (g_type_is_a (G_OBJECT_TYPE (response),
                                 cp_method_info_get_output_type (invocation->info)));

  if (!begin_answer (invocation))
    return;
  hold = g_object_ref (invocation);
  finish_with_message (invocation, response);
}

/**
 * cp_invocation_return_error:
 * @invocation: (transfer none): a #CpInvocation
 * @code: the Connect error code
 * @format: printf()-style format of the error message
 * @...: arguments for @format
 *
 * Answers the call with an error.
 */
void
cp_invocation_return_error (CpInvocation *invocation,
                            CpError       code,
                            const char   *format,
                            ...)
{
  GError *error;
  va_list args;

  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (format != NULL);

  va_start (args, format);
  error = g_error_new_valist (CP_ERROR, code, format, args);
  va_end (args);
  cp_invocation_take_error (invocation, error);
}

/**
 * cp_invocation_return_error_literal:
 * @invocation: (transfer none): a #CpInvocation
 * @code: the Connect error code
 * @message: the error message
 *
 * Answers the call with an error; like cp_invocation_return_error()
 * without printf()-style formatting.
 */
void
cp_invocation_return_error_literal (CpInvocation *invocation,
                                    CpError       code,
                                    const char   *message)
{
  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (message != NULL);

  cp_invocation_take_error (invocation, g_error_new_literal (CP_ERROR, code, message));
}

/**
 * cp_invocation_return_gerror:
 * @invocation: (transfer none): a #CpInvocation
 * @error: the error
 *
 * Answers the call with a copy of @error. A #CP_ERROR error is sent as is,
 * with its details and metadata; other errors are mapped
 * (%G_IO_ERROR_CANCELLED to `canceled`, %G_IO_ERROR_TIMED_OUT to
 * `deadline_exceeded`, anything else to `unknown` keeping the message).
 */
void
cp_invocation_return_gerror (CpInvocation *invocation,
                             const GError *error)
{
  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (error != NULL);

  cp_invocation_take_error (invocation, g_error_copy (error));
}

/**
 * cp_invocation_take_error: (skip)
 * @invocation: (transfer none): a #CpInvocation
 * @error: (transfer full): the error
 *
 * Like cp_invocation_return_gerror(), but takes ownership of @error.
 */
void
cp_invocation_take_error (CpInvocation *invocation,
                          GError       *error)
{
  g_autoptr(CpInvocation) hold = NULL;
  g_autoptr(GError) connect_error = NULL;

  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (error != NULL);

  connect_error = cp_error_to_connect (error);
  g_error_free (error);

  if (!begin_answer (invocation))
    return;
  hold = g_object_ref (invocation);
  finish_with_error (invocation, connect_error, FALSE);
}

/**
 * cp_invocation_return_ok:
 * @invocation: (transfer none): a #CpInvocation
 *
 * Ends a server-streaming or bidi call successfully. For unary and
 * client-streaming methods, answers with a default (empty) instance of the
 * output type.
 */
void
cp_invocation_return_ok (CpInvocation *invocation)
{
  g_autoptr(CpInvocation) hold = NULL;

  g_return_if_fail (CP_IS_INVOCATION (invocation));

  if (!begin_answer (invocation))
    return;
  hold = g_object_ref (invocation);

  if (sends_stream (invocation))
    finish_ok (invocation);
  else
    {
      g_autoptr(CpMessage) empty =
        cp_message_new (cp_method_info_get_output_type (invocation->info));
      finish_with_message (invocation, empty);
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
  engine_fail (self, g_error_new (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                                  "the client does not read the stream: more than %u bytes "
                                  "wait to be sent", max));
  return check_can_send (self, error);
}

/**
 * cp_invocation_send_headers:
 * @invocation: a #CpInvocation of a server-streaming or bidi method
 *
 * Sends the response headers of a stream now, with the leading metadata set
 * so far in cp_invocation_get_response_headers(), instead of with the first
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
 * @invocation: a #CpInvocation of a server-streaming or bidi method
 * @message: the message to send, an instance of the method's output type
 * @error: return location for a #GError
 *
 * Queues @message on the response stream, without waiting: a fast producer
 * facing a slow client grows the write queue; see
 * cp_invocation_send_message_async() for back-pressure. The response
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
 * @invocation: a #CpInvocation of a server-streaming or bidi method
 * @message: the message to send, an instance of the method's output type
 * @cancellable: (nullable): a #GCancellable
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
          watch_cancellable (task);
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
 * @invocation: a #CpInvocation
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes cp_invocation_send_message_async().
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

/**
 * cp_invocation_receive_async:
 * @invocation: a #CpInvocation of a client-streaming or bidi method
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the next request
 * @user_data: (closure): data for @callback
 *
 * Receives the next request message of the stream, in order. At the end of
 * the stream cp_invocation_receive_finish() returns %NULL without error.
 */
void
cp_invocation_receive_async (CpInvocation        *invocation,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  g_return_if_fail (receives_stream (invocation));

  task = g_task_new (invocation, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_invocation_receive_async);

  if (g_task_return_error_if_cancelled (task))
    return;

  watch_cancellable (task);
  g_queue_push_tail (&invocation->receive_tasks, g_steal_pointer (&task));
  complete_receive_tasks (invocation);
}

/**
 * cp_invocation_receive_finish:
 * @invocation: a #CpInvocation
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes cp_invocation_receive_async().
 *
 * Returns: (transfer full) (nullable): the next request, or %NULL at the end
 *   of the stream (@error unset) or on error (the call ended or
 *   @cancellable was cancelled)
 */
CpMessage *
cp_invocation_receive_finish (CpInvocation  *invocation,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  g_return_val_if_fail (g_task_is_valid (result, invocation), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == cp_invocation_receive_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
