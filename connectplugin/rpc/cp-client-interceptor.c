/* cp-client-interceptor.c: sees every call a CpChannel makes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The base class only: the chain itself (order, decisions, outcomes) is run
 * by CpClientCall (cp-client-call.c), which the call kinds of the channel
 * create when interceptors apply.
 */
#include "cp-client-interceptor-private.h"

#include "cp-error.h"

enum {
  SIGNAL_COMPLETED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (CpClientInterceptor, cp_client_interceptor, G_TYPE_OBJECT)

static gboolean
cp_client_interceptor_real_intercept (CpClientInterceptor  *self,
                                      CpClientCall         *call,
                                      GError              **error)
{
  return TRUE;
}

static void
cp_client_interceptor_real_intercept_async (CpClientInterceptor *self,
                                            CpClientCall        *call,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data)
{
  CpClientInterceptorClass *klass = CP_CLIENT_INTERCEPTOR_GET_CLASS (self);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, cp_client_interceptor_real_intercept_async);
  if (klass->intercept == NULL || klass->intercept (self, call, &error))
    g_task_return_boolean (task, TRUE);
  else if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, FALSE);
}

static gboolean
cp_client_interceptor_real_intercept_finish (CpClientInterceptor  *self,
                                             GAsyncResult         *result,
                                             GError              **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
cp_client_interceptor_class_init (CpClientInterceptorClass *klass)
{
  klass->intercept = cp_client_interceptor_real_intercept;
  klass->intercept_async = cp_client_interceptor_real_intercept_async;
  klass->intercept_finish = cp_client_interceptor_real_intercept_finish;

  /**
   * CpClientInterceptor::completed:
   * @self: the interceptor
   * @call: the call, over: its response headers, trailers, response (a
   *   successful unary or client-streaming call), attempts and duration
   *   are known
   * @error: (nullable): %NULL when the call succeeded; otherwise the error
   *   it failed with, as the caller gets it (a #CP_ERROR error, or
   *   %G_IO_ERROR_CANCELLED when the caller cancelled it)
   *
   * Emitted once when a call whose decision this interceptor was asked for
   * is over, whoever ended it: the server, an interceptor that failed or
   * answered it, the circuit breaker, the deadline or the caller. After
   * retries, only the final outcome is told. Interceptors are told in the
   * reverse order of the chain, before the caller gets the result (before
   * the stream's [signal@ResponseStream::closed]). For logging and
   * metrics; the call can no longer be changed.
   */
  signals[SIGNAL_COMPLETED] =
    g_signal_new ("completed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (CpClientInterceptorClass, completed),
                  NULL, NULL, NULL,
                  G_TYPE_NONE, 2,
                  CP_TYPE_CLIENT_CALL,
                  G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_client_interceptor_init (CpClientInterceptor *self)
{
}

/**
 * CpClientInterceptor:
 *
 * Sees every call a [class@ConnectPlugin.Channel] makes before it is sent,
 * and its outcome when it is over: the place for credentials, client-side
 * quotas, answers from a local cache, logging and metrics.
 *
 * Add interceptors to a channel ([method@ConnectPlugin.Channel.add_interceptor]),
 * to a [class@ConnectPlugin.Client] ([method@ConnectPlugin.Client.add_interceptor],
 * which puts them on every channel it connects with, so on every proxy it
 * dispenses, across reconnects) or to one call
 * ([method@ConnectPlugin.CallOptions.add_interceptor]). They form one chain,
 * in this order: the client's, then the channel's own, each in the order
 * they were added, then the call's. Each one wraps the ones after it: it
 * decides before them, and is told the outcome after them.
 *
 * Each interceptor sees the call as a [struct@ConnectPlugin.ClientCall]:
 * procedure, method kind, request message (unary and server-streaming
 * calls), request headers — which it may change: they are sent as they
 * are after the last interceptor — and deadline. It decides, in the
 * [struct@GLib.MainContext] the call was made in:
 *
 * - to let the call go on (return %TRUE): the next interceptor decides,
 *   then the request is sent;
 * - to fail it (return %FALSE with an error): the call fails with that
 *   error (a #CP_ERROR one is given as is, %G_IO_ERROR_CANCELLED too, any
 *   other error becomes `unknown`) and nothing is sent;
 * - to answer a unary call itself, with
 *   [method@ConnectPlugin.ClientCall.return_message]: the caller gets that
 *   response and nothing is sent.
 *
 * Unary calls are intercepted when they are made; server streams when
 * their request is sent ([method@ConnectPlugin.ResponseStream.start]);
 * client and bidirectional streams when they are closed
 * ([method@ConnectPlugin.RequestStream.close_async],
 * [method@ConnectPlugin.RequestStream.close_and_receive]), as nothing is sent
 * before. The chain runs before the retries of the call's
 * [class@RetryPolicy] and before the [class@CircuitBreaker]: an interceptor
 * sees one logical call, however many attempts it takes
 * ([method@ConnectPlugin.ClientCall.get_attempts]), and is told its final
 * outcome; a call it fails or answers never reaches the breaker.
 *
 * Decisions that need I/O override
 * [struct@ConnectPlugin.ClientInterceptorClass].intercept_async and
 * [struct@ConnectPlugin.ClientInterceptorClass].intercept_finish; the call
 * waits. Its deadline keeps running meanwhile (a call whose deadline passed
 * fails with `deadline_exceeded` when it is sent), and cancelling the call
 * cancels the cancellable the interceptor is given. Simple decisions
 * override [struct@ConnectPlugin.ClientInterceptorClass].intercept, which the
 * engine calls directly.
 *
 * Every interceptor whose decision was asked is told the outcome through
 * the [signal@ConnectPlugin.ClientInterceptor::completed] signal (and class
 * handler), in the reverse order of the chain, with the response headers
 * and trailers, the number of attempts and the duration in the call.
 *
 * The calls a [class@Client] makes about the server itself (the
 * handshake, health checks and watches, plugin control) are not
 * intercepted by the client's and the channel's interceptors; their own
 * call options may still carry some.
 *
 * As [class@ServerInterceptor], a derivable class rather than a
 * #GInterface: a subclass — in C, Vala or Python (`do_intercept`,
 * `do_completed`) — overrides only what it needs, and the base class can be
 * instantiated ([ctor@ConnectPlugin.ClientInterceptor.new]) to observe
 * outcomes through the signal alone.
 */

/**
 * CpClientInterceptorClass::intercept:
 * @self: a [class@ConnectPlugin.ClientInterceptor]
 * @call: the call, not sent yet
 * @error: return location for a [struct@GLib.Error]
 *
 * Decides synchronously whether @call is sent.
 *
 * Returns: %TRUE to let the call go on; %FALSE with @error set to fail it
 *   with @error instead
 */

/**
 * CpClientInterceptorClass::completed:
 * @self: a [class@ConnectPlugin.ClientInterceptor]
 * @call: the call, over
 * @error: (nullable): %NULL when the call succeeded, otherwise its error
 *
 * Class handler of [signal@ConnectPlugin.ClientInterceptor::completed].
 */

/**
 * cp_client_interceptor_new:
 *
 * Creates an interceptor that lets every call go on; connect to
 * [signal@ConnectPlugin.ClientInterceptor::completed] to observe outcomes
 * without subclassing.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.ClientInterceptor]
 */
CpClientInterceptor *
cp_client_interceptor_new (void)
{
  return g_object_new (CP_TYPE_CLIENT_INTERCEPTOR, NULL);
}

/**
 * cp_client_interceptor_intercept_async:
 * @self: a [class@ConnectPlugin.ClientInterceptor]
 * @call: the call
 * @cancellable: (nullable): a [class@Gio.Cancellable]; the engine passes
 *   one that fires when the call is cancelled
 * @callback: (scope async): called with the decision
 * @user_data: (closure): data for @callback
 *
 * Asks @self whether @call may be sent. The engine calls this for each
 * call; call it yourself only to compose interceptors.
 */
void
cp_client_interceptor_intercept_async (CpClientInterceptor *self,
                                       CpClientCall        *call,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_return_if_fail (CP_IS_CLIENT_INTERCEPTOR (self));
  g_return_if_fail (call != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  CP_CLIENT_INTERCEPTOR_GET_CLASS (self)->intercept_async (self, call, cancellable,
                                                           callback, user_data);
}

/**
 * cp_client_interceptor_intercept_finish:
 * @self: a [class@ConnectPlugin.ClientInterceptor]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.ClientInterceptor.intercept_async].
 *
 * Returns: %TRUE when the call may go on; %FALSE with @error set when
 *   @self fails it (@error is the call's error)
 */
gboolean
cp_client_interceptor_intercept_finish (CpClientInterceptor  *self,
                                        GAsyncResult         *result,
                                        GError              **error)
{
  g_return_val_if_fail (CP_IS_CLIENT_INTERCEPTOR (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return CP_CLIENT_INTERCEPTOR_GET_CLASS (self)->intercept_finish (self, result, error);
}

/* Library-internal (cp-client-interceptor-private.h). */
gboolean
cp_client_interceptor_is_async (CpClientInterceptor *self)
{
  return CP_CLIENT_INTERCEPTOR_GET_CLASS (self)->intercept_async !=
         cp_client_interceptor_real_intercept_async;
}

/* Library-internal (cp-client-interceptor-private.h). */
void
cp_client_interceptor_emit_completed (CpClientInterceptor *self,
                                      CpClientCall        *call,
                                      const GError        *error)
{
  CpClientInterceptorClass *klass;

  /* The class handler alone, without the signal machinery, when nobody
   * listens: the common case of a subclass, on every call. */
  if (g_signal_has_handler_pending (self, signals[SIGNAL_COMPLETED], 0, FALSE))
    {
      g_signal_emit (self, signals[SIGNAL_COMPLETED], 0, call, error);
      return;
    }
  klass = CP_CLIENT_INTERCEPTOR_GET_CLASS (self);
  if (klass->completed != NULL)
    klass->completed (self, call, error);
}
