/* cp-invocation-private.h: how CpRpcServer drives a CpInvocation
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-invocation.h"
#include "cp-rpc-server.h"
#include "cp-http-exchange-private.h"
#include "cp-metrics-private.h"
#include "cp-protocol.h"
#include "cp-request-fields-private.h"

G_BEGIN_DECLS

/* Creates the invocation for an exchange that passed routing, verb and
 * content-type checks (docs/engine.md, "Server checks" 1–4). @content_type is
 * the Content-Type of a successful response (the request's, echoed);
 * @query holds the unescaped GET parameters (char* → GBytes*, each value
 * NUL-terminated past its size), NULL for POST. */
CpInvocation *cp_invocation_new   (CpRpcServer     *server,
                                   CpMethodInfo    *info,
                                   CpMethodHandler  handler,
                                   gpointer         handler_data,
                                   CpHttpExchange  *exchange,
                                   CpCodec          codec,
                                   const char      *content_type,
                                   GHashTable      *query);

/* The call speaks gRPC or gRPC-Web (@text: application/grpc-web-text)
 * rather than Connect. Before cp_invocation_start(). */
void          cp_invocation_set_protocol (CpInvocation *invocation,
                                          CpProtocol    protocol,
                                          gboolean      text);

/* Counts the call into @metrics (CpRpcServer:metrics-enabled): started
 * now, its bytes and stream messages as they go, its code and duration
 * (from the arrival of the request head) when it ends. Before
 * cp_invocation_start(). */
void          cp_invocation_count_in (CpInvocation    *invocation,
                                      CpMetricsMethod *metrics);

/* Runs server checks 5–7 (docs/engine.md): negotiation, header checks, deadline, request body,
 * handler. The invocation keeps itself alive until the handler has been
 * called (the handler takes a reference if it answers later) or the call is
 * over. */
void          cp_invocation_start (CpInvocation    *invocation);
/* The same, with the request's header fields already found (by a caller
 * that needed some of them first). */
void          cp_invocation_start_with_fields (CpInvocation          *invocation,
                                               const CpRequestFields *fields);

G_END_DECLS
