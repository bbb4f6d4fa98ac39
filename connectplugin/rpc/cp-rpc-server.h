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
 * @invocation: the call; answer it with cp_invocation_return_message() and friends
 * @request: (nullable): the request for unary and server-streaming methods;
 *   %NULL for client and bidi streams (use cp_invocation_receive_async())
 * @user_data: (closure): data given to cp_rpc_server_add_method()
 *
 * Runs in the server's #GMainContext for every call of a method.
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


#ifdef CONNECTPLUGIN_COMPILATION
/* Library-internal (not exported): plain HTTP paths such as `/healthz`,
 * served next to the RPC methods and answered through the exchange API of
 * cp-http-exchange-private.h. */
typedef struct _CpHttpExchange CpHttpExchange;

/**
 * CpRpcHttpHandler: (skip)
 * @server: the server
 * @exchange: the request; answer it with cp_http_exchange_respond()
 * @user_data: data given to cp_rpc_server_add_http_handler()
 *
 * Answers a plain HTTP request, in the server's #GMainContext.
 */
typedef void (*CpRpcHttpHandler) (CpRpcServer    *server,
                                  CpHttpExchange *exchange,
                                  gpointer        user_data);

void         cp_rpc_server_add_http_handler (CpRpcServer      *server,
                                             const char       *path,
                                             CpRpcHttpHandler  handler,
                                             gpointer          user_data,
                                             GDestroyNotify    destroy);

/* The interceptors, in order, as an immutable snapshot (a new array is made
 * when one is added, so a call keeps the chain it started with): transfer
 * none, NULL when there are none. */
GPtrArray   *cp_rpc_server_get_interceptor_chain (CpRpcServer  *server);
#endif

G_END_DECLS
