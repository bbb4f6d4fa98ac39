/* cp-rpc-server.h: the Connect server engine
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
#include "cp-method-info.h"
#include "cp-server-interceptor.h"

G_BEGIN_DECLS

#define CP_TYPE_RPC_SERVER (cp_rpc_server_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpRpcServer, cp_rpc_server, CP, RPC_SERVER, GObject)

/**
 * CpMethodHandler:
 * @invocation: the call; answer it with [method@ConnectPlugin.Invocation.return_message] and friends
 * @request: (nullable): the request for unary and server-streaming methods;
 *   %NULL for client and bidi streams (use [method@ConnectPlugin.Invocation.receive_async])
 * @user_data: (closure): data given to [method@ConnectPlugin.RpcServer.add_method]
 *
 * Runs in the server's [struct@GLib.MainContext] for every call of a method.
 */
typedef void (*CpMethodHandler) (CpInvocation *invocation,
                                 CpMessage    *request,
                                 gpointer      user_data);

CP_AVAILABLE_IN_ALL
CpRpcServer *cp_rpc_server_new          (void);
CP_AVAILABLE_IN_ALL
void         cp_rpc_server_add_method   (CpRpcServer     *server,
                                         CpMethodInfo    *info,
                                         CpMethodHandler  handler,
                                         gpointer         user_data,
                                         GDestroyNotify   destroy);
CP_AVAILABLE_IN_ALL
void         cp_rpc_server_add_interceptor (CpRpcServer         *server,
                                            CpServerInterceptor *interceptor);
CP_AVAILABLE_IN_ALL
char        *cp_rpc_server_listen       (CpRpcServer     *server,
                                         const char      *address,
                                         GError         **error);
CP_AVAILABLE_IN_ALL
const char * const *cp_rpc_server_get_urls (CpRpcServer  *server);
CP_AVAILABLE_IN_ALL
void         cp_rpc_server_close        (CpRpcServer     *server);
CP_AVAILABLE_IN_ALL
void         cp_rpc_server_shutdown_async  (CpRpcServer         *server,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean     cp_rpc_server_shutdown_finish (CpRpcServer         *server,
                                            GAsyncResult        *result,
                                            GError             **error);

G_END_DECLS
