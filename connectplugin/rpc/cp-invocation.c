/* cp-invocation.c: the server side of one RPC call: its lifecycle
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One CpInvocation per request that reached a registered method. It runs
 * docs/engine.md "Server checks" from 5 on (compression negotiation, protocol
 * version, timeout), reads and decodes the request body (unary POST or GET, streams), calls
 * the handler and writes its answer: a bare message or error JSON for unary
 * calls, envelopes and an EndStream for streams. Reading the request is in
 * cp-invocation-receive.c, writing the answer in cp-invocation-send.c
 * (cp-invocation-state-private.h lists who does what).
 *
 * Lifetime: the invocation holds itself (self_ref) until the handler has
 * been called or the call is over; after that the handler's own references
 * keep it. An invocation finalized without an answer answers `internal`.
 * Exchange callbacks reach it through a small shared link that is cleared on
 * finalize, so the exchange never holds the invocation alive.
 *
 * Interceptors: when the server has some, cp_invocation_dispatch() runs
 * the chain (a snapshot taken when the call was created) before the
 * handler; each decision may be synchronous or asynchronous (the engine's
 * self_ref keeps the call alive meanwhile). cp_invocation_mark_finished()
 * tells every interceptor that was asked, in reverse order, how the call
 * ended.
 */
#include "cp-invocation-state-private.h"

#include <string.h>

#include "cp-error-private.h"
#include "cp-memory-private.h"
#include "cp-server-interceptor-private.h"
#include "cp-timeout-private.h"

G_DEFINE_FINAL_TYPE (CpInvocation, cp_invocation, G_TYPE_OBJECT)

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static void
link_release (gpointer data)
{
  g_rc_box_release (data);
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

const char *
cp_invocation_query_lookup (CpInvocation *self,
                            const char   *name)
{
  GBytes *value;

  if (self->query == NULL)
    return NULL;
  value = g_hash_table_lookup (self->query, name);
  /* Values are NUL-terminated past their size (see cp-invocation-private.h). */
  return value ? g_bytes_get_data (value, NULL) : NULL;
}

/* Detaching a task drops its cancellable watch (see cp_invocation_watch_cancellable). */
void
cp_invocation_task_detach (GTask *task)
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
      cp_invocation_task_detach (task);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
      g_object_unref (task);
    }
  return G_SOURCE_REMOVE;
}

/* A pending task (held in one of our queues) completes with
 * G_IO_ERROR_CANCELLED when its cancellable fires. */
void
cp_invocation_watch_cancellable (GTask *task)
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

/* Tells the interceptors that were asked how the call ended, last first. */
static void
notify_completed (CpInvocation *self,
                  const GError *outcome)
{
  g_clear_object (&self->chain_request);
  for (guint i = self->n_intercepted; i > 0; i--)
    cp_server_interceptor_emit_completed (self->interceptors->pdata[i - 1], self, outcome);
}

/* The call's span goes to the span-finished handlers, and its log line
 * to the debug log, when either is wanted. */
static void
trace_finished (CpInvocation *self,
                const GError *outcome)
{
  const char *procedure = cp_method_info_get_procedure (self->info);
  g_autofree char *peer = cp_trace_peer_string (cp_http_exchange_get_remote_address (self->exchange));

  if (self->span != NULL && cp_rpc_server_get_tracing (self->server))
    {
      g_autoptr(CpSpan) span = cp_span_new_internal (self->span, procedure, CP_SPAN_KIND_SERVER,
                                                     self->span_start, g_get_real_time (),
                                                     outcome, peer);

      cp_rpc_server_emit_span_finished (self->server, span);
    }
  if (cp_trace_log_enabled ())
    {
      gint64 arrival = cp_http_exchange_get_arrival_time (self->exchange);

      cp_trace_log_call (CP_SPAN_KIND_SERVER, procedure, outcome,
                         arrival != 0 ? g_get_monotonic_time () - arrival : 0, peer, self->span);
    }
}

/* @outcome: the call's error (NULL on success); @by_engine: the engine,
 * not the handler, ended the call, and later operations of the handler
 * fail with @outcome. */
void
cp_invocation_mark_finished (CpInvocation *self,
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

  if (self->metrics != NULL)
    cp_metrics_method_finished (self->metrics, outcome != NULL ? cp_error_get_code (outcome) : 0,
                                g_get_monotonic_time () - self->metrics_start);

  if ((self->span != NULL && cp_rpc_server_get_tracing (self->server)) || cp_trace_log_enabled ())
    trace_finished (self, outcome);

  cp_invocation_complete_send_tasks (self, self->finish_error);
  cp_invocation_complete_receive_tasks (self);
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

/* ------------------------------------------------------------------ */
/* Running the handler                                                  */

static void run_chain (CpInvocation *self);

/* Calls made while the handler runs continue the call's trace. */
static void
call_handler (CpInvocation *self,
              CpMessage    *request)
{
  CpSpanContext *span = self->span;

  if (span == NULL)
    {
      self->handler (self, request, self->handler_data);
      return;
    }
  cp_span_context_push_thread_default (span);
  self->handler (self, request, self->handler_data);
  cp_span_context_pop_thread_default (span);
}

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
      cp_invocation_finish_with_error (self, connect_error, FALSE);
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
  call_handler (self, request);
  release_engine_ref (self);
}

void
cp_invocation_dispatch (CpInvocation *self,
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

  call_handler (self, request);
  release_engine_ref (self);
}

void
cp_invocation_engine_fail (CpInvocation *self,
                           GError       *error)
{
  cp_invocation_finish_with_error (self, error, TRUE);
  g_error_free (error);
  /* Stop a running handler; its later answers are ignored. */
  cancel_call (self);
  release_engine_ref (self);
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
  cp_invocation_mark_finished (self, canceled, TRUE);
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
  cp_invocation_complete_send_tasks (self, NULL);
}

static const CpHttpExchangeCallbacks exchange_callbacks = {
  .body_chunk = cp_invocation_on_body_chunk,
  .body_end = cp_invocation_on_body_end,
  .aborted = on_aborted,
  .writable = on_writable,
};

static gboolean
deadline_cb (gpointer user_data)
{
  g_autoptr(CpInvocation) self = g_object_ref (user_data);

  g_clear_pointer (&self->deadline_source, g_source_unref);
  if (!self->finished)
    cp_invocation_engine_fail (self, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
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

/* gRPC and gRPC-Web: grpc-encoding, grpc-accept-encoding, grpc-timeout. */
static GError *
check_grpc_request (CpInvocation       *self,
                    SoupMessageHeaders *headers)
{
  const char *timeout;
  GError *error = NULL;

  if (!negotiate_compression (self, self->fields->grpc_encoding,
                              self->fields->n_grpc_accept_encoding > 1
                                ? soup_message_headers_get_list (headers, "grpc-accept-encoding")
                                : self->fields->grpc_accept_encoding,
                              &error))
    return error;

  timeout = self->fields->grpc_timeout;
  if (timeout != NULL)
    {
      gint64 us = 0;

      if (!cp_grpc_timeout_parse (timeout, &us, &error))
        return error;
      if (us >= 0)
        {
          self->timeout_ms = (us + 999) / 1000;
          self->deadline = cp_http_exchange_get_arrival_time (self->exchange) + us;
        }
    }
  return NULL;
}

static GError *
check_request (CpInvocation *self)
{
  SoupMessageHeaders *headers = cp_http_exchange_get_request_headers (self->exchange);
  gboolean require = cp_rpc_server_get_require_protocol_header (self->server);
  const char *used, *accept, *version, *timeout;
  GError *error = NULL;

  if (self->protocol != CP_PROTOCOL_CONNECT)
    return check_grpc_request (self, headers);

  /* Compression. */
  if (self->is_get)
    used = cp_invocation_query_lookup (self, "compression");
  else if (is_stream (self))
    used = self->fields->connect_content_encoding;
  else
    used = self->fields->content_encoding;
  /* A list field that came once is its value; else the joined list. */
  if (is_stream (self))
    accept = self->fields->n_connect_accept_encoding > 1
               ? soup_message_headers_get_list (headers, "Connect-Accept-Encoding")
               : self->fields->connect_accept_encoding;
  else
    accept = self->fields->n_accept_encoding > 1
               ? soup_message_headers_get_list (headers, "Accept-Encoding")
               : self->fields->accept_encoding;
  if (!negotiate_compression (self, used, accept, &error))
    return error;

  /* Protocol version. */
  if (self->is_get)
    {
      version = cp_invocation_query_lookup (self, "connect");
      if (version != NULL ? strcmp (version, "v1") != 0 : require)
        return g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                            "connect must be \"v1\": got \"%s\"", version ? version : "");
      if (g_hash_table_lookup (self->query, "message") == NULL)
        return g_error_new_literal (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                    "missing message query parameter");
    }
  else
    {
      version = self->fields->connect_protocol_version;
      if (version != NULL && strcmp (version, "1") != 0)
        return g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                            "connect-protocol-version must be \"1\": got \"%s\"", version);
      if (version == NULL && require && !is_stream (self))
        return g_error_new_literal (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                    "missing required header: set Connect-Protocol-Version to \"1\"");
    }

  /* Timeout: the deadline counts from the arrival of the request head. */
  timeout = self->fields->connect_timeout_ms;
  if (timeout != NULL)
    {
      gint64 ms = 0;

      if (!cp_timeout_parse (timeout, &ms, &error))
        return cp_invocation_as_invalid_argument (error);
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

  if (enveloped (self) || self->is_get || self->body_done ||
      soup_message_headers_get_encoding (headers) != SOUP_ENCODING_CONTENT_LENGTH)
    return NULL;
  declared = soup_message_headers_get_content_length (headers);
  if (declared <= 0 || (guint64) declared <= self->receive_limit)
    return NULL;
  self->close_on_answer = TRUE;
  return cp_invocation_size_error ((guint64) declared, self->receive_limit);
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
  g_source_attach (self->deadline_source, cp_rpc_server_get_call_context (self->server, self->exchange));
}

/* The server span: the caller's trace continued, or a new one when
 * tracing is on. Costs one header lookup when neither. */
static void
trace_start (CpInvocation *self)
{
  gint64 arrival;

  self->span = cp_trace_server_span_from (self->fields->traceparent,
                                          cp_http_exchange_get_request_headers (self->exchange),
                                          cp_rpc_server_get_tracing (self->server));
  if (self->span == NULL)
    return;
  self->span_start = g_get_real_time ();
  arrival = cp_http_exchange_get_arrival_time (self->exchange);
  if (arrival != 0)
    self->span_start -= g_get_monotonic_time () - arrival;
}

void
cp_invocation_start (CpInvocation *self)
{
  CpRequestFields fields;

  g_return_if_fail (CP_IS_INVOCATION (self));
  cp_request_fields_scan (&fields, cp_http_exchange_get_request_headers (self->exchange));
  cp_invocation_start_with_fields (self, &fields);
}

void
cp_invocation_start_with_fields (CpInvocation          *self,
                                 const CpRequestFields *fields)
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

  /* The fields point into the request's headers, which nobody else has
   * seen yet: used by the checks below, forgotten before the handler. */
  self->fields = fields;
  trace_start (self);
  error = check_request (self);
  self->fields = NULL;
  if (error == NULL)
    error = check_declared_length (self);
  if (error != NULL)
    {
      cp_invocation_engine_fail (self, error);
      return;
    }

  start_deadline (self);

  switch (self->kind)
    {
    case CP_METHOD_UNARY:
      if (self->protocol != CP_PROTOCOL_CONNECT)
        {
          /* A stream of one request, as a server stream's. */
          self->reader = cp_envelope_reader_new (self->receive_limit);
          if (self->body_done)
            cp_invocation_stream_input_end (self);
        }
      else if (self->is_get)
        cp_invocation_process_get (self);
      else if (self->body_done)
        {
          g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
          cp_invocation_process_unary_payload (self, empty);
        }
      else
        self->reading_body = TRUE;
      break;

    case CP_METHOD_SERVER_STREAMING:
      self->reader = cp_envelope_reader_new (self->receive_limit);
      if (self->body_done)
        cp_invocation_stream_input_end (self);
      break;

    case CP_METHOD_CLIENT_STREAMING:
    case CP_METHOD_BIDI_STREAMING:
      self->reader = cp_envelope_reader_new (self->receive_limit);
      if (self->body_done)
        self->input_done = TRUE;
      cp_invocation_dispatch (self, NULL);
      break;

    default:
      g_assert_not_reached ();
    }
}

void
cp_invocation_set_protocol (CpInvocation *self,
                            CpProtocol    protocol,
                            gboolean      text)
{
  g_return_if_fail (CP_IS_INVOCATION (self));
  g_return_if_fail (!self->started);

  self->protocol = protocol;
  self->grpc_text = text;
  if (text)
    self->text_decoder = cp_grpc_text_decoder_new ();
}

void
cp_invocation_count_in (CpInvocation    *self,
                        CpMetricsMethod *metrics)
{
  g_return_if_fail (CP_IS_INVOCATION (self));
  g_return_if_fail (!self->started);

  self->metrics = metrics;
  self->metrics_start = cp_http_exchange_get_arrival_time (self->exchange);
  if (self->metrics_start == 0)
    self->metrics_start = g_get_monotonic_time ();
  cp_metrics_add (metrics->started, 1);
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
  /* The two usual types without a copy. */
  if (g_strcmp0 (content_type, "application/proto") == 0)
    self->content_type = "application/proto";
  else if (g_strcmp0 (content_type, "application/json") == 0)
    self->content_type = "application/json";
  else
    self->content_type = self->content_type_owned = g_strdup (content_type);
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
      cp_invocation_finish_with_error (self, error, TRUE);
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
  g_clear_pointer (&self->text_decoder, cp_grpc_text_decoder_free);
  g_clear_pointer (&self->body, g_byte_array_unref);
  g_clear_pointer (&self->body_first, g_bytes_unref);
  g_clear_object (&self->first_request);
  g_queue_clear_full (&self->received, g_object_unref);
  g_clear_error (&self->finish_error);
  g_clear_pointer (&self->response_headers, soup_message_headers_unref);
  g_clear_pointer (&self->response_trailers, soup_message_headers_unref);
  g_clear_pointer (&self->query, g_hash_table_unref);
  self->content_type = NULL;
  g_clear_pointer (&self->content_type_owned, g_free);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->exchange, cp_http_exchange_unref);
  g_clear_pointer (&self->info, cp_method_info_unref);
  g_clear_object (&self->chain_request);
  g_clear_pointer (&self->interceptors, g_ptr_array_unref);
  g_clear_pointer (&self->span, cp_span_context_unref);
  g_clear_pointer (&self->principal, g_free);
  g_clear_pointer (&self->auth_scheme, g_free);
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
 * The server side of one RPC call, handed to a [callback@ConnectPlugin.MethodHandler].
 *
 * The handler reads the request metadata, then answers exactly once, now or
 * later: [method@ConnectPlugin.Invocation.return_message], [method@ConnectPlugin.Invocation.return_error],
 * [method@ConnectPlugin.Invocation.return_gerror], [method@ConnectPlugin.Invocation.take_error] or
 * [method@ConnectPlugin.Invocation.return_ok]. A handler that answers later keeps a
 * reference (g_object_ref()) until then; an invocation released without an
 * answer answers `internal` ("handler did not answer"). Answering twice is a
 * programming error.
 *
 * Server-streaming and bidi handlers send messages with
 * [method@ConnectPlugin.Invocation.send_message] or, honouring back-pressure from a slow
 * client, [method@ConnectPlugin.Invocation.send_message_async], then end the stream with
 * [method@ConnectPlugin.Invocation.return_ok] or an error. Client-streaming and bidi handlers
 * read requests with [method@ConnectPlugin.Invocation.receive_async].
 *
 * When the client goes away or the deadline passes, the invocation's
 * [class@Gio.Cancellable] ([method@ConnectPlugin.Invocation.get_cancellable]) is cancelled; answers
 * given after that are ignored.
 *
 * Before the handler runs, the server's interceptors ([class@ConnectPlugin.ServerInterceptor])
 * see the invocation: they may add response headers and trailers, record
 * the authenticated caller ([method@ConnectPlugin.Invocation.set_principal],
 * as [class@ConnectPlugin.AuthInterceptor] does), or answer it themselves,
 * in which case the handler is not called.
 *
 * All functions must be called in the [struct@GLib.MainContext] of the server.
 */

/**
 * cp_invocation_get_method_info:
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
 *
 * Gets the codec of the call (the request's, also used for the response).
 *
 * Returns: the [enum@ConnectPlugin.Codec]
 */
CpCodec
cp_invocation_get_codec (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), CP_CODEC_PROTO);
  return invocation->codec;
}

/**
 * cp_invocation_get_request_headers:
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
 *
 * Gets a [class@Gio.Cancellable] that is cancelled when the call can no longer be
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
 * @invocation: a [class@ConnectPlugin.Invocation]
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
 * @invocation: a [class@ConnectPlugin.Invocation]
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

/**
 * cp_invocation_get_peer_certificate:
 * @invocation: a [class@ConnectPlugin.Invocation]
 *
 * Gets the certificate the client presented in the TLS handshake and that
 * the server verified against its
 * [property@ConnectPlugin.RpcServer:tls-database] (mutual TLS, see
 * [property@ConnectPlugin.RpcServer:tls-authentication-mode]).
 *
 * Returns: (transfer none) (nullable): the client's certificate, or %NULL
 *   for plaintext connections, clients without a certificate and
 *   in-process calls
 */
GTlsCertificate *
cp_invocation_get_peer_certificate (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return cp_http_exchange_get_peer_certificate (invocation->exchange);
}

static char *
peer_identity_of (GTlsCertificate *certificate)
{
  g_autofree char *subject = NULL;
  g_autoptr(GPtrArray) dns_names = NULL;
  g_autoptr(GPtrArray) ip_addresses = NULL;

  g_object_get (certificate, "subject-name", &subject, "dns-names", &dns_names,
                "ip-addresses", &ip_addresses, NULL);
  if (subject != NULL && subject[0] != '\0')
    return g_steal_pointer (&subject);
  if (dns_names != NULL && dns_names->len > 0)
    {
      gsize len;
      const char *name = g_bytes_get_data (g_ptr_array_index (dns_names, 0), &len);
      return g_strndup (name, len);
    }
  if (ip_addresses != NULL && ip_addresses->len > 0)
    return g_inet_address_to_string (g_ptr_array_index (ip_addresses, 0));
  return NULL;
}

/**
 * cp_invocation_get_peer_identity:
 * @invocation: a [class@ConnectPlugin.Invocation]
 *
 * Gets a printable identity of the verified TLS client (see
 * [method@ConnectPlugin.Invocation.get_peer_certificate]), for
 * authorization interceptors and logs: the certificate's subject
 * distinguished name as GnuTLS prints it (for example
 * `CN=billing,O=Example`); when the subject is empty, the first DNS
 * subject alternative name, else the first IP address one.
 *
 * Returns: (transfer none) (nullable): the identity, or %NULL when there is
 *   no client certificate
 */
const char *
cp_invocation_get_peer_identity (CpInvocation *invocation)
{
  static GQuark quark;
  GTlsCertificate *certificate;
  char *identity;

  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  certificate = cp_invocation_get_peer_certificate (invocation);
  if (certificate == NULL)
    return NULL;
  if (quark == 0)
    quark = g_quark_from_static_string ("cp-invocation-peer-identity");
  identity = g_object_get_qdata (G_OBJECT (invocation), quark);
  if (identity == NULL)
    {
      identity = peer_identity_of (certificate);
      g_object_set_qdata_full (G_OBJECT (invocation), quark, identity, g_free);
    }
  return identity;
}

/**
 * cp_invocation_set_principal:
 * @invocation: a [class@ConnectPlugin.Invocation]
 * @principal: (nullable): who the caller is (a user name, a service
 *   account, a key id), or %NULL to forget it
 * @scheme: (nullable): how the caller proved it: `bearer`, `api-key`, or
 *   a name of the authenticating interceptor's choosing
 *
 * Records the authenticated caller of the call, for the handler to read
 * with [method@ConnectPlugin.Invocation.get_principal]. A
 * [class@ConnectPlugin.AuthInterceptor] calls it when one of its providers
 * accepts the call; a custom [class@ConnectPlugin.ServerInterceptor] that
 * authenticates may call it too, before the handler runs. Never put the
 * credential itself here.
 */
void
cp_invocation_set_principal (CpInvocation *invocation,
                             const char   *principal,
                             const char   *scheme)
{
  g_return_if_fail (CP_IS_INVOCATION (invocation));

  g_free (invocation->principal);
  invocation->principal = g_strdup (principal);
  g_free (invocation->auth_scheme);
  invocation->auth_scheme = principal != NULL ? g_strdup (scheme) : NULL;
}

/**
 * cp_invocation_get_principal:
 * @invocation: a [class@ConnectPlugin.Invocation]
 *
 * Gets the authenticated caller, as an interceptor recorded it with
 * [method@ConnectPlugin.Invocation.set_principal].
 *
 * Returns: (transfer none) (nullable): the principal, or %NULL when no
 *   interceptor authenticated the call (no authentication installed, a
 *   public procedure, an anonymous call)
 */
const char *
cp_invocation_get_principal (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return invocation->principal;
}

/**
 * cp_invocation_get_auth_scheme:
 * @invocation: a [class@ConnectPlugin.Invocation]
 *
 * Gets how the caller was authenticated: `bearer`, `api-key`, or the
 * scheme a custom provider or interceptor gave.
 *
 * Returns: (transfer none) (nullable): the scheme, or %NULL when there is
 *   no principal
 */
const char *
cp_invocation_get_auth_scheme (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return invocation->auth_scheme;
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
 * @invocation: (transfer none): a [class@ConnectPlugin.Invocation]
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
  cp_invocation_finish_with_message (invocation, response);
}

/**
 * cp_invocation_return_error:
 * @invocation: (transfer none): a [class@ConnectPlugin.Invocation]
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
 * @invocation: (transfer none): a [class@ConnectPlugin.Invocation]
 * @code: the Connect error code
 * @message: the error message
 *
 * Answers the call with an error; like [method@ConnectPlugin.Invocation.return_error]
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
 * @invocation: (transfer none): a [class@ConnectPlugin.Invocation]
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
 * @invocation: (transfer none): a [class@ConnectPlugin.Invocation]
 * @error: (transfer full): the error
 *
 * Like [method@ConnectPlugin.Invocation.return_gerror], but takes ownership of @error.
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
  cp_invocation_finish_with_error (invocation, connect_error, FALSE);
}

/**
 * cp_invocation_return_ok:
 * @invocation: (transfer none): a [class@ConnectPlugin.Invocation]
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
    cp_invocation_finish_ok (invocation);
  else
    {
      g_autoptr(CpMessage) empty =
        cp_message_new (cp_method_info_get_output_type (invocation->info));
      cp_invocation_finish_with_message (invocation, empty);
    }
}

/**
 * cp_invocation_get_span_context:
 * @invocation: a [class@ConnectPlugin.Invocation]
 *
 * Gets the server span of the call (W3C Trace Context): the same trace as
 * the caller's `traceparent`, a new span id, the caller's span as parent.
 * Without a valid `traceparent`, the call starts a new trace when tracing
 * is on ([signal@ConnectPlugin.RpcServer::span-finished] has a handler)
 * and has no span otherwise.
 *
 * Calls made through a [class@Channel] while the handler runs (its
 * synchronous part) continue this span by themselves (it is the
 * thread-default span, [func@ConnectPlugin.SpanContext.get_thread_default]).
 * Calls made later, from a callback, must be given it:
 * [method@ConnectPlugin.CallOptions.set_parent_span], or
 * [method@ConnectPlugin.SpanContext.push_thread_default] around them.
 *
 * Returns: (transfer none) (nullable): the span context, or %NULL
 */
CpSpanContext *
cp_invocation_get_span_context (CpInvocation *invocation)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  return invocation->span;
}
