/* cp-http-local-private.h: the in-process transport, no socket at all
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The client side of a local exchange; cp_http_server_dispatch_local()
 * (cp-http-server-private.h, which includes this header) is its server
 * side. Implemented in cp-http-local.c.
 */
#pragma once

#include "cp-http-exchange-private.h"

G_BEGIN_DECLS

typedef struct {
  void (*response_head) (CpHttpExchange *exchange, guint status, SoupMessageHeaders *headers, gpointer user_data);
  void (*response_chunk)(CpHttpExchange *exchange, GBytes *chunk, gpointer user_data);
  void (*response_end)  (CpHttpExchange *exchange, gpointer user_data);
} CpHttpLocalCallbacks;

/* Creates a client-side exchange whose server side is dispatched by
 * cp_http_server_dispatch_local(). The client feeds the request body with
 * push_body()/end_body() and receives the response through @callbacks, in
 * the server's context. cancel() aborts it (the handler sees aborted). */
CpHttpExchange *cp_http_exchange_new_local   (const char         *method,
                                              const char         *path_and_query,
                                              SoupMessageHeaders *headers,
                                              const CpHttpLocalCallbacks *callbacks,
                                              gpointer            user_data,
                                              GDestroyNotify      destroy);
void            cp_http_exchange_local_push_body (CpHttpExchange *exchange, GBytes *chunk);
void            cp_http_exchange_local_end_body  (CpHttpExchange *exchange);
void            cp_http_exchange_local_cancel    (CpHttpExchange *exchange);
/* The trailers the handler set (cp_http_exchange_set_response_trailers()),
 * valid from response_end on; NULL when none (transfer none). */
SoupMessageHeaders *cp_http_exchange_local_get_response_trailers (CpHttpExchange *exchange);

G_END_DECLS
