/* cp-client-interceptor.h: sees every call a CpChannel makes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-client-call.h"

G_BEGIN_DECLS

#define CP_TYPE_CLIENT_INTERCEPTOR (cp_client_interceptor_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (CpClientInterceptor, cp_client_interceptor, CP, CLIENT_INTERCEPTOR, GObject)

/**
 * CpClientInterceptorClass:
 * @parent_class: the parent class
 * @intercept: decides synchronously whether the call is sent: returns
 *   %TRUE to let it go on (after changing its request headers, if need
 *   be), or %FALSE with an error to fail the call with that error without
 *   sending it. An interceptor that answers a unary call itself
 *   ([method@ConnectPlugin.ClientCall.return_message]) stops the chain
 *   whatever it returns. The default implementation returns %TRUE. Used
 *   by the default @intercept_async; override this one when the decision
 *   needs no I/O.
 * @intercept_async: starts an asynchronous decision (a token to fetch or
 *   renew, a local quota shared with other processes). The default
 *   implementation calls @intercept; the engine calls @intercept directly,
 *   without a [class@Gio.Task], when @intercept_async is not overridden.
 * @intercept_finish: finishes @intercept_async, with the meaning of
 *   @intercept's return value and error.
 * @completed: class handler of [signal@ConnectPlugin.ClientInterceptor::completed].
 *
 * The virtual methods of [class@ConnectPlugin.ClientInterceptor]. Override either
 * @intercept or the @intercept_async / @intercept_finish pair, and
 * @completed to observe outcomes.
 */
struct _CpClientInterceptorClass
{
  GObjectClass parent_class;

  gboolean (*intercept)        (CpClientInterceptor  *self,
                                CpClientCall         *call,
                                GError              **error);
  void     (*intercept_async)  (CpClientInterceptor  *self,
                                CpClientCall         *call,
                                GCancellable         *cancellable,
                                GAsyncReadyCallback   callback,
                                gpointer              user_data);
  gboolean (*intercept_finish) (CpClientInterceptor  *self,
                                GAsyncResult         *result,
                                GError              **error);
  void     (*completed)        (CpClientInterceptor  *self,
                                CpClientCall         *call,
                                const GError         *error);

  /*< private >*/
  gpointer padding[8];
};

CP_AVAILABLE_IN_ALL
CpClientInterceptor *cp_client_interceptor_new              (void);
CP_AVAILABLE_IN_ALL
void                 cp_client_interceptor_intercept_async  (CpClientInterceptor  *self,
                                                             CpClientCall         *call,
                                                             GCancellable         *cancellable,
                                                             GAsyncReadyCallback   callback,
                                                             gpointer              user_data);
CP_AVAILABLE_IN_ALL
gboolean             cp_client_interceptor_intercept_finish (CpClientInterceptor  *self,
                                                             GAsyncResult         *result,
                                                             GError              **error);

G_END_DECLS
