/* cp-server-interceptor.h: sees every call a CpRpcServer serves
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-invocation.h"
#include "cp-message.h"

G_BEGIN_DECLS

#define CP_TYPE_SERVER_INTERCEPTOR (cp_server_interceptor_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (CpServerInterceptor, cp_server_interceptor, CP, SERVER_INTERCEPTOR, GObject)

/**
 * CpServerInterceptorClass:
 * @parent_class: the parent class
 * @intercept: decides synchronously whether the call goes on: returns
 *   %TRUE to let it proceed, or %FALSE with an error (a #CP_ERROR one, sent
 *   as is) to answer the call with that error instead of running the
 *   handler. The default implementation returns %TRUE. Used by the default
 *   @intercept_async; override this one when the decision needs no I/O.
 * @intercept_async: starts an asynchronous decision (for I/O: a token
 *   check against a remote service, a shared rate limiter). The default
 *   implementation calls @intercept; the engine calls @intercept directly,
 *   without a [class@Gio.Task], when @intercept_async is not overridden.
 * @intercept_finish: finishes @intercept_async, with the meaning of
 *   @intercept's return value and error.
 * @completed: class handler of [signal@ConnectPlugin.ServerInterceptor::completed].
 *
 * The virtual methods of [class@ConnectPlugin.ServerInterceptor]. Override either @intercept
 * or the @intercept_async / @intercept_finish pair, and @completed to
 * observe outcomes.
 */
struct _CpServerInterceptorClass
{
  GObjectClass parent_class;

  gboolean (*intercept)        (CpServerInterceptor  *self,
                                CpInvocation         *invocation,
                                CpMessage            *request,
                                GError              **error);
  void     (*intercept_async)  (CpServerInterceptor  *self,
                                CpInvocation         *invocation,
                                CpMessage            *request,
                                GCancellable         *cancellable,
                                GAsyncReadyCallback   callback,
                                gpointer              user_data);
  gboolean (*intercept_finish) (CpServerInterceptor  *self,
                                GAsyncResult         *result,
                                GError              **error);
  void     (*completed)        (CpServerInterceptor  *self,
                                CpInvocation         *invocation,
                                const GError         *error);

  /*< private >*/
  gpointer padding[8];
};

CP_AVAILABLE_IN_ALL
CpServerInterceptor *cp_server_interceptor_new              (void);
CP_AVAILABLE_IN_ALL
void                 cp_server_interceptor_intercept_async  (CpServerInterceptor  *self,
                                                             CpInvocation         *invocation,
                                                             CpMessage            *request,
                                                             GCancellable         *cancellable,
                                                             GAsyncReadyCallback   callback,
                                                             gpointer              user_data);
CP_AVAILABLE_IN_ALL
gboolean             cp_server_interceptor_intercept_finish (CpServerInterceptor  *self,
                                                             GAsyncResult         *result,
                                                             GError              **error);

G_END_DECLS
