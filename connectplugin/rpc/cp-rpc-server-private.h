/* cp-rpc-server-private.h: what the rest of the library sees of CpRpcServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-rpc-server.h"
#include "cp-compression.h"
#include "cp-http-server-private.h"
#include "cp-metrics-private.h"
#include "cp-span.h"

G_BEGIN_DECLS

/* The HTTP transport under @server (transfer none), e.g. for the in-process
 * client: cp_http_exchange_new_local() + cp_http_server_dispatch_local(). */
CpHttpServer *cp_rpc_server_get_http_server      (CpRpcServer    *server);

/* Used by CpInvocation. */
gboolean      cp_rpc_server_supports_compression (CpRpcServer    *server,
                                                  CpCompression   compression);
/* Comma-separated supported non-identity encodings ("gzip"), or "identity". */
const char   *cp_rpc_server_get_accept_encoding  (CpRpcServer    *server);
guint         cp_rpc_server_get_max_receive_size (CpRpcServer    *server);
guint         cp_rpc_server_get_max_send_queue_size (CpRpcServer *server);
guint         cp_rpc_server_get_compress_min_bytes (CpRpcServer  *server);
gboolean      cp_rpc_server_get_require_protocol_header (CpRpcServer *server);
/* The server's own context (thread-default when the server was made):
 * in-process calls, shutdown. With CpRpcServer:n-workers > 1, calls that
 * came over a connection run in their worker's context instead. */
GMainContext *cp_rpc_server_get_context          (CpRpcServer    *server);
/* The context the call on @exchange runs in: the exchange's (a worker's
 * with n-workers > 1), else the server's. */
GMainContext *cp_rpc_server_get_call_context     (CpRpcServer    *server,
                                                  CpHttpExchange *exchange);
/* Every invocation calls this exactly once, when its response is complete or
 * it was dropped (client gone); from any thread. */
void          cp_rpc_server_invocation_finished  (CpRpcServer    *server);

/* cp_rpc_server_add_method() for a method whose handler expects the
 * server's own context (CpServer's built-in services): with
 * CpRpcServer:n-workers > 1, its calls that reach a worker are relayed to
 * that context and served there as in-process calls (with the connection's
 * remote address and client certificate). Plain paths (but /metrics) and
 * prefix handlers are always served that way. */
void          cp_rpc_server_add_home_method      (CpRpcServer     *server,
                                                  CpMethodInfo    *info,
                                                  CpMethodHandler  handler,
                                                  gpointer         user_data,
                                                  GDestroyNotify   destroy);

/* In a worker's context: serves @exchange (a request for a home route) in
 * the server's own context and writes the answer on @exchange
 * (cp-rpc-relay.c). */
void          cp_rpc_server_relay_home           (CpRpcServer    *server,
                                                  CpHttpExchange *exchange);

/* Answers a plain HTTP request for a path given to
 * cp_rpc_server_add_plain_handler(), in the server's #GMainContext: returns
 * the HTTP status and sets *@text to a short body (transfer none, copied
 * at once; NULL for none). */
typedef guint (*CpRpcPlainHandler) (CpRpcServer  *server,
                                    const char  **text,
                                    gpointer      user_data);

/* Serves @path (exact, any verb, query ignored) next to the RPC methods,
 * which take precedence; a handler already at @path is replaced. The
 * engine writes the answer: text/plain, Cache-Control: no-store, no body
 * for HEAD, and the connection closes when the request had an (unread)
 * body. @destroy frees @user_data when the path is replaced or the server
 * is disposed. */
void          cp_rpc_server_add_plain_handler    (CpRpcServer       *server,
                                                  const char        *path,
                                                  CpRpcPlainHandler  handler,
                                                  gpointer           user_data,
                                                  GDestroyNotify     destroy);

/* Hands every request whose path starts with @prefix (and matches no
 * method or plain path) to @handler, which owns the exchange from then on
 * and must answer it. The longest matching prefix wins; a handler already
 * registered for @prefix is replaced. For the host's router
 * (`/services/`) and capability endpoints (`/capabilities/`). Runs in the
 * server's context. */
typedef void (*CpRpcExchangeHandler) (CpRpcServer    *server,
                                      CpHttpExchange *exchange,
                                      gpointer        user_data);
void          cp_rpc_server_add_prefix_handler   (CpRpcServer          *server,
                                                  const char           *prefix,
                                                  CpRpcExchangeHandler  handler,
                                                  gpointer              user_data,
                                                  GDestroyNotify        destroy);
void          cp_rpc_server_remove_prefix_handler (CpRpcServer         *server,
                                                  const char           *prefix);

/* Serves @exchange (from any server's transport) as a call of @server's
 * method at @procedure ("/pkg.Service/Method"), with @server's interceptors,
 * limits and context: how the broker dispatches a capability call
 * in-process to the capability's own (never listening) CpRpcServer.
 * FALSE (and the exchange untouched) when @server has no such method. */
gboolean      cp_rpc_server_dispatch             (CpRpcServer    *server,
                                                  CpHttpExchange *exchange,
                                                  const char     *procedure);

/* Answers @exchange with @status and a `text/plain` body of @text (or the
 * status phrase) and a newline; no body for HEAD; closes the connection
 * when the request body was not read. */
void          cp_rpc_server_respond_plain        (CpHttpExchange *exchange,
                                                  guint           status,
                                                  const char     *text);

/* The server's counters (CpRpcServer:metrics-enabled), e.g. to add a
 * collector: NULL until metrics were first enabled; transfer none, kept
 * until the server is finalized. Collectors are dropped when the server
 * is disposed. */
CpMetrics    *cp_rpc_server_get_metrics          (CpRpcServer    *server);

/* The interceptors, in order, as an immutable snapshot (a new array is made
 * when one is added, so a call keeps the chain it started with): transfer
 * none, NULL when there are none. */
GPtrArray    *cp_rpc_server_get_interceptor_chain (CpRpcServer   *server);

/* Tracing is on when a CpRpcServer::span-finished handler is connected:
 * calls without a traceparent then start a trace. */
gboolean      cp_rpc_server_get_tracing          (CpRpcServer    *server);
/* Also emits @signal_id (a span-finished with a CpSpan) on @target (weak;
 * NULL: none), and counts its handlers as wanting spans: the
 * CpServer that owns the engine. In the server's context. */
void          cp_rpc_server_set_span_forward     (CpRpcServer    *server,
                                                  GObject        *target,
                                                  guint           signal_id);
void          cp_rpc_server_emit_span_finished   (CpRpcServer    *server,
                                                  CpSpan         *span);

G_END_DECLS
