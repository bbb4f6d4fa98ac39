/* cp-http-connection-private.h: internals shared by the HTTP transport files
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Not part of the engine contract (that is cp-http-server-private.h and
 * cp-http-exchange-private.h): this header is for the files of
 * connectplugin/http only.
 */
#pragma once

#include "cp-http-server-private.h"

G_BEGIN_DECLS

typedef struct _CpHttpConnection CpHttpConnection;

/* Above this many queued response bytes an exchange is congested; the
 * writable callback fires once the queue is back below the low mark. */
#define CP_HTTP_HIGH_WATER (256 * 1024)
#define CP_HTTP_LOW_WATER  (64 * 1024)

struct _CpHttpExchange
{
  int                ref_count;

  CpHttpServer      *server;       /* borrowed; the server outlives its exchanges' transport */
  CpHttpConnection  *conn;         /* borrowed; NULL for local exchanges or once detached */
  struct _CpHttp2Stream *h2;       /* an HTTP/2 stream (cp-http2-session.c); NULL once released */

  /* request */
  char              *method;
  char              *path;         /* owns the allocation; query points into it */
  const char        *query;
  SoupHTTPVersion    version;
  SoupMessageHeaders *request_headers;
  gint64             arrival_time;
  guint64            content_length; /* valid when !chunked_request */

  /* handler callbacks */
  CpHttpExchangeCallbacks callbacks;
  gpointer           user_data;
  GDestroyNotify     destroy;

  guint              has_callbacks : 1;
  guint              empty_body : 1;
  guint              chunked_request : 1;
  guint              connection_close : 1;      /* a Connection field has "close" */
  guint              connection_keep_alive : 1; /* … "keep-alive" */
  guint              has_expect : 1;            /* an Expect field came */
  guint              expect_continue : 1;
  guint              keep_alive : 1;       /* the client allows another request afterwards */
  guint              head_request : 1;
  guint              handler_returned : 1;
  guint              paused : 1;
  guint              body_ended : 1;       /* body_end delivered (or body discarded) */
  guint              response_started : 1;
  guint              chunked_response : 1;
  guint              response_has_body : 1;
  guint              finished : 1;
  guint              aborted : 1;
  guint              close : 1;           /* no further request on this connection */
  guint              discard_body : 1;    /* the handler takes no more body: drain it */
  guint              congestion_reported : 1;
  guint              counted_active : 1;

  /* local (in-process) exchanges */
  guint              local : 1;
  guint              local_body_ended : 1;
  guint              local_cancelled : 1;
  CpHttpLocalCallbacks local_callbacks;
  gpointer           local_user_data;
  GDestroyNotify     local_destroy;
  GQueue             local_body;            /* GBytes* pushed before they could be delivered */
  /* A local exchange relaying a connection's (cp_http_exchange_local_set_peer()) */
  GSocketAddress    *local_remote_address;
  GTlsCertificate   *local_peer_certificate;

  /* cp_http_exchange_set_response_trailers(): sent after the last chunk */
  SoupMessageHeaders *response_trailers;    /* nullable */
};

/* cp-http-exchange.c */
CpHttpExchange *cp_http_exchange_new_internal     (void);
void            cp_http_exchange_reset            (CpHttpExchange *exchange);
void            cp_http_exchange_clear_callbacks  (CpHttpExchange *exchange);
void            cp_http_exchange_abort            (CpHttpExchange *exchange,
                                                   const GError   *error);
void            cp_http_exchange_deliver_chunk    (CpHttpExchange *exchange,
                                                   GBytes         *chunk);
void            cp_http_exchange_deliver_end      (CpHttpExchange *exchange);
gboolean        cp_http_exchange_can_deliver      (CpHttpExchange *exchange);

/* cp-http-local.c: the in-process side of the exchange calls above */
void            cp_http_exchange_local_dispatched (CpHttpExchange *exchange);
void            cp_http_local_clear_callbacks     (CpHttpExchange *exchange);
void            cp_http_local_schedule_deliver    (CpHttpExchange *exchange);
void            cp_http_local_respond             (CpHttpExchange *exchange,
                                                   guint           status,
                                                   SoupMessageHeaders *headers,
                                                   GBytes         *body);
void            cp_http_local_begin_response      (CpHttpExchange *exchange,
                                                   guint           status,
                                                   SoupMessageHeaders *headers);
void            cp_http_local_write               (CpHttpExchange *exchange,
                                                   GBytes         *chunk);
void            cp_http_local_end_response        (CpHttpExchange *exchange);

/* cp-http-connection.c */
CpHttpConnection *cp_http_connection_new          (CpHttpServer *server,
                                                   GSocket      *socket,
                                                   GTlsCertificate *certificate);
void            cp_http_connection_unref          (CpHttpConnection *conn);
/* Aborts the current exchange with @error (if any) and closes the socket. */
void            cp_http_connection_close          (CpHttpConnection *conn,
                                                   const GError     *error);
gboolean        cp_http_connection_is_idle        (CpHttpConnection *conn);
/* The server stops accepting: an HTTP/2 connection sends GOAWAY. */
void            cp_http_connection_stop           (CpHttpConnection *conn);
GSocketAddress *cp_http_connection_get_remote_address (CpHttpConnection *conn);
/* The client certificate the TLS handshake verified, or NULL. */
GTlsCertificate *cp_http_connection_get_peer_certificate (CpHttpConnection *conn);

void            cp_http_connection_respond        (CpHttpConnection *conn,
                                                   CpHttpExchange   *exchange,
                                                   guint             status,
                                                   SoupMessageHeaders *headers,
                                                   GBytes           *body);
void            cp_http_connection_begin_response (CpHttpConnection *conn,
                                                   CpHttpExchange   *exchange,
                                                   guint             status,
                                                   SoupMessageHeaders *headers);
void            cp_http_connection_write          (CpHttpConnection *conn,
                                                   CpHttpExchange   *exchange,
                                                   GBytes           *chunk);
void            cp_http_connection_end_response   (CpHttpConnection *conn,
                                                   CpHttpExchange   *exchange);
gboolean        cp_http_connection_is_congested   (CpHttpConnection *conn);
void            cp_http_connection_body_flow      (CpHttpConnection *conn);

/* cp-http-server.c */
GMainContext   *cp_http_server_get_context        (CpHttpServer *server);
guint           cp_http_server_get_max_head_size  (CpHttpServer *server);
guint           cp_http_server_get_max_header_count (CpHttpServer *server);
guint           cp_http_server_get_head_timeout_ms (CpHttpServer *server);
GTlsDatabase   *cp_http_server_get_tls_database   (CpHttpServer *server);
GTlsAuthenticationMode cp_http_server_get_tls_authentication_mode (CpHttpServer *server);
guint           cp_http_server_get_idle_timeout_ms (CpHttpServer *server);
guint           cp_http_server_get_body_timeout_ms (CpHttpServer *server);
/* The server's queue of connections waiting on their client (reading a head
 * or a body, keep-alive idle, lingering, TLS handshake), least recently
 * active first. @link (data: the connection) is owned by the connection;
 * touch appends it, or moves it to the end when @linked. */
void            cp_http_server_touch_waiting      (CpHttpServer *server,
                                                   GList        *link,
                                                   gboolean      linked);
void            cp_http_server_remove_waiting     (CpHttpServer *server,
                                                   GList        *link);
gboolean        cp_http_server_is_stopping        (CpHttpServer *server);
void            cp_http_server_invoke_handler     (CpHttpServer   *server,
                                                   CpHttpExchange *exchange);
void            cp_http_server_exchange_done      (CpHttpServer   *server,
                                                   CpHttpExchange *exchange);
/* Serves an already-connected socket (tests, fuzzing, socket activation). */
void            cp_http_server_accept_socket      (CpHttpServer *server,
                                                   GSocket      *socket,
                                                   gboolean      tls);
void            cp_http_server_connection_closed  (CpHttpServer     *server,
                                                   CpHttpConnection *conn);

G_END_DECLS
