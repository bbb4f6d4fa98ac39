/* cp-client-call.c: one call as client interceptors see it, and the run of
 * its interceptor chain (decisions in order, outcomes in reverse)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-client-call-private.h"
#include "cp-client-interceptor-private.h"
#include "cp-channel.h"
#include "cp-error.h"
#include "cp-error-private.h"

/**
 * CpClientCall:
 *
 * One call made through a [class@Channel], as the
 * [class@ClientInterceptor]s see it: what is called and with what, and,
 * once it is over, what came back.
 *
 * Before the request is sent (in
 * [vfunc@ConnectPlugin.ClientInterceptor.intercept]) an interceptor may
 * change [method@ConnectPlugin.ClientCall.get_request_headers] — the
 * metadata of the call's [class@CallOptions] merged with the channel's
 * headers — and answer a unary call with
 * [method@ConnectPlugin.ClientCall.return_message]. In
 * [signal@ConnectPlugin.ClientInterceptor::completed] it reads the response
 * headers and trailers of the last attempt, the response of a successful
 * unary or client-streaming call, the number of attempts and the duration.
 *
 * A call describes one logical call, whatever the number of attempts its
 * [class@RetryPolicy] makes; it is created only for calls that some
 * interceptor sees, and used in the [struct@GLib.MainContext] the call was
 * made in. It is a reference-counted boxed type rather than a GObject:
 * one is made for each intercepted call, and a GObject's construction
 * would cost more than three interceptors that do nothing.
 */
struct _CpClientCall
{
  gatomicrefcount ref_count;

  CpChannel *channel;
  char *procedure;
  CpMethodKind kind;
  CpMessage *request;
  SoupMessageHeaders *request_headers;
  gboolean idempotent;
  gint64 start_time;
  gint64 deadline;
  gint64 end_time;              /* 0 until completed */
  guint attempts;
  SoupMessageHeaders *response_headers;   /* NULL: none (yet) */
  SoupMessageHeaders *response_trailers;
  CpMessage *response;
  gboolean answered;            /* return_message () was called */
  gboolean completed;

  /* The chain. */
  GPtrArray *interceptors;      /* CpClientInterceptor */
  guint n_asked;
  GObject *owner;               /* held while deciding */
  CpClientCallDecided decided;
  GCancellable *cancellable;
};

G_DEFINE_BOXED_TYPE (CpClientCall, cp_client_call, cp_client_call_ref, cp_client_call_unref)

/**
 * cp_client_call_ref:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Acquires a reference on @call.
 *
 * Returns: (transfer full): @call
 */
CpClientCall *
cp_client_call_ref (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  g_atomic_ref_count_inc (&call->ref_count);
  return call;
}

/**
 * cp_client_call_unref:
 * @call: (transfer full): a [struct@ConnectPlugin.ClientCall]
 *
 * Releases a reference on @call, freeing it when the last one is gone.
 */
void
cp_client_call_unref (CpClientCall *call)
{
  g_return_if_fail (call != NULL);

  if (!g_atomic_ref_count_dec (&call->ref_count))
    return;

  g_assert (call->owner == NULL);
  g_clear_object (&call->channel);
  g_free (call->procedure);
  g_clear_object (&call->request);
  g_clear_pointer (&call->request_headers, soup_message_headers_unref);
  g_clear_pointer (&call->response_headers, soup_message_headers_unref);
  g_clear_pointer (&call->response_trailers, soup_message_headers_unref);
  g_clear_object (&call->response);
  g_clear_pointer (&call->interceptors, g_ptr_array_unref);
  g_clear_object (&call->cancellable);
  g_free (call);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */

/**
 * cp_client_call_get_channel:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the channel the call is made on.
 *
 * Returns: (transfer none): the channel
 */
CpChannel *
cp_client_call_get_channel (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  return call->channel;
}

/**
 * cp_client_call_get_procedure:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the procedure called, e.g. `/kv.v1.KVService/Get`.
 *
 * Returns: (transfer none): the procedure
 */
const char *
cp_client_call_get_procedure (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  return call->procedure;
}

/**
 * cp_client_call_get_method_kind:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the kind of the call.
 *
 * Returns: the [enum@ConnectPlugin.MethodKind]
 */
CpMethodKind
cp_client_call_get_method_kind (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, CP_METHOD_UNARY);

  return call->kind;
}

/**
 * cp_client_call_get_request:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the request message of a unary or server-streaming call. Do not
 * change it: it may already be encoded.
 *
 * Returns: (transfer none) (nullable): the request, or %NULL for client
 *   and bidirectional streams
 */
CpMessage *
cp_client_call_get_request (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  return call->request;
}

/**
 * cp_client_call_get_request_headers:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the request metadata: the headers of the call's
 * [class@ConnectPlugin.CallOptions] and those of the channel
 * ([method@ConnectPlugin.Channel.set_header]). An interceptor may add,
 * replace and remove headers here until its decision; the request is sent
 * with them as they are after the last interceptor (protocol headers,
 * [func@ConnectPlugin.metadata_is_reserved], are left out), and every
 * attempt of the call sends the same.
 *
 * Returns: (transfer none): the request headers
 */
SoupMessageHeaders *
cp_client_call_get_request_headers (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  return call->request_headers;
}

/**
 * cp_client_call_get_idempotent:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Whether the call may be sent twice: its method is declared
 * `IDEMPOTENT` or `NO_SIDE_EFFECTS`, or the call was marked
 * [property@CallOptions:idempotent] or sent as HTTP GET. Only such calls
 * are retried for their error codes (see [class@RetryPolicy]).
 *
 * Returns: %TRUE when the call may be sent twice
 */
gboolean
cp_client_call_get_idempotent (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, FALSE);

  return call->idempotent;
}

/**
 * cp_client_call_get_start_time:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets when the call was made (for streams: created).
 *
 * Returns: a g_get_monotonic_time() value, in microseconds
 */
gint64
cp_client_call_get_start_time (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, 0);

  return call->start_time;
}

/**
 * cp_client_call_get_deadline:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the call's deadline, which counts from the first attempt (a retry
 * never extends it).
 *
 * Returns: a g_get_monotonic_time() value in microseconds, 0 for none
 */
gint64
cp_client_call_get_deadline (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, 0);

  return call->deadline;
}

/**
 * cp_client_call_get_duration:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets how long the call took, from
 * [method@ConnectPlugin.ClientCall.get_start_time] to its outcome, backoffs
 * between attempts included; while it is under way, how long it has taken
 * so far.
 *
 * Returns: the duration in microseconds
 */
gint64
cp_client_call_get_duration (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, 0);

  return (call->completed ? call->end_time : g_get_monotonic_time ()) - call->start_time;
}

/**
 * cp_client_call_get_attempts:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets how many attempts were made: 0 while the interceptors decide, and
 * for a call an interceptor failed or answered; then 1, plus the retries
 * of the call's [class@RetryPolicy]. An attempt refused by the circuit
 * breaker counts.
 *
 * Returns: the number of attempts
 */
guint
cp_client_call_get_attempts (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, 0);

  return call->attempts;
}

/**
 * cp_client_call_get_response_headers:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the response headers (leading metadata) of the last attempt,
 * without the `Trailer-` prefixed ones of a unary call.
 *
 * Returns: (transfer none): the response headers; empty until the call is
 *   over, and when no response arrived
 */
SoupMessageHeaders *
cp_client_call_get_response_headers (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  if (call->response_headers == NULL)
    call->response_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return call->response_headers;
}

/**
 * cp_client_call_get_response_trailers:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the trailing metadata of the last attempt (unary: the `Trailer-`
 * headers without their prefix; streams: the EndStream metadata).
 *
 * Returns: (transfer none): the response trailers; empty until the call
 *   is over
 */
SoupMessageHeaders *
cp_client_call_get_response_trailers (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  if (call->response_trailers == NULL)
    call->response_trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return call->response_trailers;
}

/**
 * cp_client_call_get_response:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Gets the response of the call: the answer given with
 * [method@ConnectPlugin.ClientCall.return_message], or, once a unary or
 * client-streaming call succeeded, the server's response.
 *
 * Returns: (transfer none) (nullable): the response message
 */
CpMessage *
cp_client_call_get_response (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, NULL);

  return call->response;
}

/**
 * cp_client_call_is_completed:
 * @call: a [struct@ConnectPlugin.ClientCall]
 *
 * Whether the call is over (its interceptors are being or were told).
 *
 * Returns: %TRUE once the call has an outcome
 */
gboolean
cp_client_call_is_completed (CpClientCall *call)
{
  g_return_val_if_fail (call != NULL, FALSE);

  return call->completed;
}

/**
 * cp_client_call_return_message:
 * @call: a [struct@ConnectPlugin.ClientCall] of a unary call
 * @response: the response, of the call's response type
 *
 * Answers a unary call from an interceptor, during its decision: nothing
 * is sent, the later interceptors are not asked, and the caller gets
 * @response (the same object) as if the server had sent it, with empty
 * response headers and trailers. Every interceptor asked so far is told
 * the outcome (a success).
 */
void
cp_client_call_return_message (CpClientCall *call,
                               CpMessage    *response)
{
  g_return_if_fail (call != NULL);
  g_return_if_fail (CP_IS_MESSAGE (response));
  g_return_if_fail (call->kind == CP_METHOD_UNARY);
  g_return_if_fail (call->owner != NULL && !call->answered);

  call->answered = TRUE;
  g_set_object (&call->response, response);
}

/* ------------------------------------------------------------------------ */
/* The chain (cp-client-call-private.h)                                      */

CpClientCall *
cp_client_call_new_internal (CpChannel          *channel,
                             const char         *procedure,
                             CpMethodKind        kind,
                             CpMessage          *request,
                             SoupMessageHeaders *request_headers,
                             gboolean            idempotent,
                             gint64              deadline,
                             GPtrArray          *interceptors)
{
  CpClientCall *self = g_new0 (CpClientCall, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->channel = g_object_ref (channel);
  self->procedure = g_strdup (procedure);
  self->kind = kind;
  self->request = request != NULL ? g_object_ref (request) : NULL;
  self->request_headers = soup_message_headers_ref (request_headers);
  self->idempotent = idempotent;
  self->deadline = deadline;
  self->start_time = g_get_monotonic_time ();
  self->interceptors = interceptors;
  return self;
}

/* Ends the decisions (@error, @answer: transfer full). */
static void
decided (CpClientCall *self,
         GError       *error,
         CpMessage    *answer)
{
  GObject *owner = g_steal_pointer (&self->owner);
  CpClientCallDecided func = self->decided;

  self->decided = NULL;
  g_clear_object (&self->cancellable);
  func (owner, error, answer);
  g_object_unref (owner);
}

/* An interceptor's decision: @ok, or @error (transfer full). FALSE when
 * the chain stops there (decided () was called). */
static gboolean
take_decision (CpClientCall        *self,
               CpClientInterceptor *interceptor,
               gboolean             ok,
               GError              *error)
{
  if (!ok)
    {
      if (error == NULL && self->answered)
        {
          decided (self, NULL, g_object_ref (self->response));
          return FALSE;
        }
      if (error == NULL)
        error = g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                             "interceptor %s failed the call without an error",
                             G_OBJECT_TYPE_NAME (interceptor));
      else if (error->domain != CP_ERROR &&
               !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          GError *connect_error = cp_error_to_connect (error);

          g_error_free (error);
          error = connect_error;
        }
      decided (self, error, NULL);
      return FALSE;
    }
  g_clear_error (&error);
  if (self->answered)
    {
      decided (self, NULL, g_object_ref (self->response));
      return FALSE;
    }
  return TRUE;
}

static void run_chain (CpClientCall *self);

static void
on_intercepted (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(CpClientCall) self = user_data;   /* a reference */
  CpClientInterceptor *interceptor = CP_CLIENT_INTERCEPTOR (source);
  GError *error = NULL;
  gboolean ok = cp_client_interceptor_intercept_finish (interceptor, result, &error);

  if (take_decision (self, interceptor, ok, error))
    run_chain (self);
}

static void
run_chain (CpClientCall *self)
{
  while (self->n_asked < self->interceptors->len)
    {
      CpClientInterceptor *interceptor = self->interceptors->pdata[self->n_asked++];
      CpClientInterceptorClass *klass = CP_CLIENT_INTERCEPTOR_GET_CLASS (interceptor);
      GError *error = NULL;
      gboolean ok = TRUE;

      if (cp_client_interceptor_is_async (interceptor))
        {
          cp_client_interceptor_intercept_async (interceptor, self, self->cancellable,
                                                 on_intercepted, cp_client_call_ref (self));
          return;
        }
      if (klass->intercept != NULL)
        ok = klass->intercept (interceptor, self, &error);
      if (!take_decision (self, interceptor, ok, error))
        return;
    }
  decided (self, NULL, NULL);
}

void
cp_client_call_intercept (CpClientCall        *call,
                          GObject             *owner,
                          GCancellable        *cancellable,
                          CpClientCallDecided  func)
{
  g_assert (call->owner == NULL && call->n_asked == 0);

  call->owner = g_object_ref (owner);
  call->decided = func;
  call->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  run_chain (call);
}

void
cp_client_call_set_attempts (CpClientCall *call,
                             guint         attempts)
{
  call->attempts = attempts;
}

static void
replace_headers (SoupMessageHeaders **field,
                 SoupMessageHeaders  *headers)
{
  if (headers != NULL)
    soup_message_headers_ref (headers);
  g_clear_pointer (field, soup_message_headers_unref);
  *field = headers;
}

void
cp_client_call_set_response_metadata (CpClientCall       *call,
                                      SoupMessageHeaders *headers,
                                      SoupMessageHeaders *trailers)
{
  replace_headers (&call->response_headers, headers);
  replace_headers (&call->response_trailers, trailers);
}

void
cp_client_call_complete (CpClientCall *call,
                         const GError *outcome,
                         CpMessage    *response)
{
  g_autoptr(CpClientCall) hold = cp_client_call_ref (call);

  g_return_if_fail (!call->completed);

  call->completed = TRUE;
  call->end_time = g_get_monotonic_time ();
  if (response != NULL)
    g_set_object (&call->response, response);
  for (guint i = call->n_asked; i > 0; i--)
    cp_client_interceptor_emit_completed (call->interceptors->pdata[i - 1], call, outcome);
}
