/* cp-server-interceptor.c: sees every call a CpRpcServer serves
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The base class only: the chain itself (order, decisions, outcomes) is run
 * by CpInvocation, which owns the call's state.
 */
#include "cp-server-interceptor-private.h"

#include "cp-error.h"

enum {
  SIGNAL_COMPLETED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (CpServerInterceptor, cp_server_interceptor, G_TYPE_OBJECT)

static gboolean
cp_server_interceptor_real_intercept (CpServerInterceptor  *self,
                                      CpInvocation         *invocation,
                                      CpMessage            *request,
                                      GError              **error)
{
  return TRUE;
}

static void
cp_server_interceptor_real_intercept_async (CpServerInterceptor *self,
                                            CpInvocation        *invocation,
                                            CpMessage           *request,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data)
{
  CpServerInterceptorClass *klass = CP_SERVER_INTERCEPTOR_GET_CLASS (self);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, cp_server_interceptor_real_intercept_async);
  if (klass->intercept == NULL || klass->intercept (self, invocation, request, &error))
    g_task_return_boolean (task, TRUE);
  else if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, FALSE);
}

static gboolean
cp_server_interceptor_real_intercept_finish (CpServerInterceptor  *self,
                                             GAsyncResult         *result,
                                             GError              **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
cp_server_interceptor_class_init (CpServerInterceptorClass *klass)
{
  klass->intercept = cp_server_interceptor_real_intercept;
  klass->intercept_async = cp_server_interceptor_real_intercept_async;
  klass->intercept_finish = cp_server_interceptor_real_intercept_finish;

  /**
   * CpServerInterceptor::completed:
   * @self: the interceptor
   * @invocation: the call, answered (its response headers and trailers
   *   were sent)
   * @error: (nullable): %NULL when the call succeeded; otherwise a
   *   #CP_ERROR error whose code is the call's status, e.g.
   *   %CP_ERROR_DEADLINE_EXCEEDED, or %CP_ERROR_CANCELED when the client
   *   went away
   *
   * Emitted once when a call that this interceptor intercepted is over,
   * whoever ended it: the handler, an interceptor that refused it, the
   * deadline, bad input or the client. Interceptors are told in the
   * reverse order of the chain. For logging and metrics; the call can no
   * longer be changed.
   */
  signals[SIGNAL_COMPLETED] =
    g_signal_new ("completed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  G_STRUCT_OFFSET (CpServerInterceptorClass, completed),
                  NULL, NULL, NULL,
                  G_TYPE_NONE, 2,
                  CP_TYPE_INVOCATION,
                  G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_server_interceptor_init (CpServerInterceptor *self)
{
}

/**
 * CpServerInterceptor:
 *
 * Sees every RPC call of a [class@ConnectPlugin.RpcServer] before its handler runs, and its
 * outcome when it is over: the place for authentication, rate limiting,
 * logging and metrics.
 *
 * Add interceptors with [method@ConnectPlugin.RpcServer.add_interceptor] (or
 * [method@ConnectPlugin.Server.add_interceptor], whose built-in services — handshake,
 * health, control, identity — are intercepted like the plugins' own). They
 * form a chain run in registration order, in the server's [struct@GLib.MainContext],
 * once the request is decoded (unary and server-streaming methods) or the
 * request headers are in (client and bidi streams, whose @request is
 * %NULL). Each interceptor sees the [class@ConnectPlugin.Invocation]: procedure, method info,
 * request headers, peer address, deadline; it may add response headers and
 * trailers there ([method@ConnectPlugin.Invocation.get_response_headers],
 * [method@ConnectPlugin.Invocation.get_response_trailers]), which are sent with the answer
 * whatever it is.
 *
 * An interceptor decides:
 *
 * - to let the call proceed (return %TRUE): the next interceptor, then the
 *   handler, runs;
 * - to refuse it (return %FALSE with an error, e.g.
 *   %CP_ERROR_UNAUTHENTICATED or %CP_ERROR_RESOURCE_EXHAUSTED): the call is
 *   answered with that error (an error body for unary calls, an EndStream
 *   for streams), and neither later interceptors nor the handler run. An
 *   interceptor may also answer the invocation itself
 *   ([method@ConnectPlugin.Invocation.return_error], even [method@ConnectPlugin.Invocation.return_message]):
 *   the chain stops there as well.
 *
 * Decisions that need I/O override [struct@ConnectPlugin.ServerInterceptorClass].intercept_async
 * and [struct@ConnectPlugin.ServerInterceptorClass].intercept_finish; the call waits (its
 * deadline still runs: if it passes, or the client goes away, the call ends
 * and the handler is not run, whatever the decision). Simple ones override
 * [struct@ConnectPlugin.ServerInterceptorClass].intercept, which the engine calls directly.
 *
 * Every interceptor whose decision was asked is told the outcome, through
 * the [signal@ConnectPlugin.ServerInterceptor::completed] signal (and class handler), in the
 * reverse order of the chain. Calls refused by the engine before they
 * reach the chain (malformed requests, unknown compression, a request body
 * that does not decode) are not intercepted.
 *
 * Why a derivable class rather than a #GInterface: an interceptor is a
 * small object of its own (a token checker, a rate limiter), not a role an
 * existing object takes on; a class gives every virtual method a default
 * (proceed, synchronous decision, nothing to observe), so a subclass — in
 * C, Vala or Python (`do_intercept`) — overrides only what it needs; the
 * base class can be instantiated ([ctor@ConnectPlugin.ServerInterceptor.new]) to observe
 * outcomes through the signal alone; and virtual methods can be added
 * later in the reserved padding without breaking subclasses.
 */

/**
 * CpServerInterceptorClass::intercept:
 * @self: a [class@ConnectPlugin.ServerInterceptor]
 * @invocation: the call
 * @request: (nullable): the decoded request of a unary or server-streaming
 *   call; %NULL for client and bidi streams
 * @error: return location for a [struct@GLib.Error]
 *
 * Decides synchronously whether @invocation proceeds.
 *
 * Returns: %TRUE to let the call proceed; %FALSE with @error set to answer
 *   it with @error instead
 */

/**
 * CpServerInterceptorClass::completed:
 * @self: a [class@ConnectPlugin.ServerInterceptor]
 * @invocation: the call, answered
 * @error: (nullable): %NULL when the call succeeded, otherwise its
 *   #CP_ERROR error
 *
 * Class handler of [signal@ConnectPlugin.ServerInterceptor::completed].
 */

/**
 * cp_server_interceptor_new:
 *
 * Creates an interceptor that lets every call proceed; connect to
 * [signal@ConnectPlugin.ServerInterceptor::completed] to observe outcomes without subclassing.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.ServerInterceptor]
 */
CpServerInterceptor *
cp_server_interceptor_new (void)
{
  return g_object_new (CP_TYPE_SERVER_INTERCEPTOR, NULL);
}

/**
 * cp_server_interceptor_intercept_async:
 * @self: a [class@ConnectPlugin.ServerInterceptor]
 * @invocation: the call
 * @request: (nullable): the decoded request of a unary or server-streaming
 *   call; %NULL for client and bidi streams
 * @cancellable: (nullable): a [class@Gio.Cancellable]; the engine passes the
 *   invocation's, cancelled when the deadline passes or the client goes away
 * @callback: (scope async): called with the decision
 * @user_data: (closure): data for @callback
 *
 * Asks @self whether @invocation may proceed. The engine calls this for
 * each call; call it yourself only to compose interceptors.
 */
void
cp_server_interceptor_intercept_async (CpServerInterceptor *self,
                                       CpInvocation        *invocation,
                                       CpMessage           *request,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_return_if_fail (CP_IS_SERVER_INTERCEPTOR (self));
  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (request == NULL || CP_IS_MESSAGE (request));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  CP_SERVER_INTERCEPTOR_GET_CLASS (self)->intercept_async (self, invocation, request,
                                                           cancellable, callback, user_data);
}

/**
 * cp_server_interceptor_intercept_finish:
 * @self: a [class@ConnectPlugin.ServerInterceptor]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.ServerInterceptor.intercept_async].
 *
 * Returns: %TRUE when the call may proceed; %FALSE with @error set when
 *   @self refuses it (@error is the answer)
 */
gboolean
cp_server_interceptor_intercept_finish (CpServerInterceptor  *self,
                                        GAsyncResult         *result,
                                        GError              **error)
{
  g_return_val_if_fail (CP_IS_SERVER_INTERCEPTOR (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return CP_SERVER_INTERCEPTOR_GET_CLASS (self)->intercept_finish (self, result, error);
}

/* Library-internal (cp-server-interceptor-private.h). */
gboolean
cp_server_interceptor_is_async (CpServerInterceptor *self)
{
  return CP_SERVER_INTERCEPTOR_GET_CLASS (self)->intercept_async !=
         cp_server_interceptor_real_intercept_async;
}

/* Library-internal (cp-server-interceptor-private.h). */
void
cp_server_interceptor_emit_completed (CpServerInterceptor *self,
                                      CpInvocation        *invocation,
                                      const GError        *error)
{
  g_signal_emit (self, signals[SIGNAL_COMPLETED], 0, invocation, error);
}
