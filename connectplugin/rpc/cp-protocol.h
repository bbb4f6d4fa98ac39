/* cp-protocol.h: the RPC protocols a server answers and a channel speaks
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"

G_BEGIN_DECLS

/**
 * CpProtocol:
 * @CP_PROTOCOL_CONNECT: the Connect protocol (`application/proto`,
 *   `application/connect+proto`, GET for side-effect-free methods)
 * @CP_PROTOCOL_GRPC: gRPC (`application/grpc`): every call a stream of
 *   envelopes, the status in HTTP trailers; needs HTTP/2 on the client side
 *   (every kind of call, full-duplex included)
 * @CP_PROTOCOL_GRPC_WEB: gRPC-Web (`application/grpc-web`): gRPC with the
 *   status in a trailers frame at the end of the body, over HTTP/1.1 or
 *   HTTP/2
 *
 * An RPC protocol. A [class@RpcServer] answers all three on the same
 * methods (the request's Content-Type picks one); a [class@Channel] speaks
 * the one of its [property@Channel:protocol].
 */
typedef enum {
  CP_PROTOCOL_CONNECT,
  CP_PROTOCOL_GRPC,
  CP_PROTOCOL_GRPC_WEB,
} CpProtocol;

G_END_DECLS
