/* cp-rpc-server-private.h: what the rest of the library sees of CpRpcServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-rpc-server.h"
#include "cp-compression.h"
#include "cp-http-server-private.h"

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
/* The context handlers run in (thread-default when the server was made). */
GMainContext *cp_rpc_server_get_context          (CpRpcServer    *server);
/* Every invocation calls this exactly once, when its response is complete or
 * it was dropped (client gone). */
void          cp_rpc_server_invocation_finished  (CpRpcServer    *server);

G_END_DECLS
