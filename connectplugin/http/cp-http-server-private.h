/* cp-http-server-private.h: our HTTP/1.1 server transport on GIO sockets
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Non-blocking sockets on the GMainContext that was thread-default when the
 * server was created: listeners polled by g_socket_create_source(), each
 * connection by its own GSource (see cp-http-connection.c); request heads
 * parsed by soup_headers_parse_request(). See docs/architecture.md, "The
 * server transport".
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>
#include "cp-http-exchange-private.h"
#include "cp-http-local-private.h"

G_BEGIN_DECLS

#define CP_TYPE_HTTP_SERVER (cp_http_server_get_type ())
G_DECLARE_FINAL_TYPE (CpHttpServer, cp_http_server, CP, HTTP_SERVER, GObject)

/* Called in the server's context when a request head has been parsed. The
 * handler must eventually respond (now or later) on the exchange; it takes
 * its own reference if it keeps it past the call. */
typedef void (*CpHttpHandler) (CpHttpServer   *server,
                               CpHttpExchange *exchange,
                               gpointer        user_data);

/* Properties (all also settable with g_object_set):
 *   max-head-size      guint  default 64 KiB   → 431 and close
 *   max-header-count   guint  default 100      → 431 and close
 *   head-timeout-ms    guint  default 10000    (slowloris: time to receive a whole head)
 *   idle-timeout-ms    guint  default 120000   (keep-alive idle; longer than SoupSession's 60 s)
 *   body-timeout-ms    guint  default 60000    (like nginx's client_body_timeout: the longest
 *                      wait for the next request body byte while the server is ready for it;
 *                      time a handler keeps the body paused does not count. Expiry closes the
 *                      connection and aborts the exchange with G_IO_ERROR_TIMED_OUT, so a
 *                      client stream that stays quiet longer is cut. It also bounds, in
 *                      total, draining an unread body after an early response.)
 *   max-connections    guint  default 10000    (at the cap, and when accept() runs out of
 *                      descriptors, the connection that has waited longest on its client —
 *                      in a head, a body, keep-alive idle, lingering or a TLS handshake — is
 *                      closed to admit the newcomer; connections busy on the server side
 *                      (a handler working, a response being sent) are never evicted, and
 *                      the newcomer is refused only when all of them are)
 *   tls-certificate    GTlsCertificate*        (when set, TCP listeners speak TLS)
 *   tls-database       GTlsDatabase*           (verifies client certificates; NULL = the
 *                      system default database)
 *   tls-authentication-mode GTlsAuthenticationMode default NONE (REQUESTED: ask for a client
 *                      certificate; REQUIRED: a client without a certificate valid for
 *                      tls-database fails the handshake)
 *   n-workers          guint  default 1        (> 1: the first listen starts that many worker
 *                      threads, each a GMainContext with a worker server of its own, copying
 *                      the properties above (max-connections shared out among them); the
 *                      listeners stay here and hand accepted sockets to the workers in turn,
 *                      so the handler runs in a worker's context with the worker's server.
 *                      Set before listening; 0 and 1 mean no threads. Stop and close act on
 *                      every worker and wait for it; close ends and joins the threads.)
 */
CpHttpServer *cp_http_server_new          (void);
void          cp_http_server_set_handler  (CpHttpServer   *server,
                                           CpHttpHandler   handler,
                                           gpointer        user_data,
                                           GDestroyNotify  destroy);

/* Address forms: "HOST:PORT" (port 0 = ephemeral; "[::1]:0" for IPv6),
 * "unix:/path/to/socket". Returns the URL it serves: "http://127.0.0.1:41234"
 * (https when a TLS certificate is set) or "unix:/path". */
char         *cp_http_server_listen       (CpHttpServer   *server,
                                           const char     *address,
                                           GError        **error);
/* TRUE, before the first listen: TLS credentials are on their way. TCP
 * listeners then speak TLS (https:// URLs) though tls-certificate is not
 * set yet, and the sockets they accept wait, unread, in the acceptor (at
 * most max-connections of them). FALSE, once tls-certificate (and
 * tls-database, tls-authentication-mode) are set: the waiting sockets
 * become TLS connections (the workers take the TLS settings first); or,
 * when tls-certificate is still unset or the server stopped, are closed.
 * Stopping closes them too. In the server's context. */
void          cp_http_server_set_tls_pending (CpHttpServer *server,
                                              gboolean      pending);
/* (transfer none): URLs of all listeners, NULL-terminated. */
const char * const *cp_http_server_get_urls (CpHttpServer *server);

/* Runs a local exchange (cp_http_exchange_new_local) through the handler. */
void          cp_http_server_dispatch_local (CpHttpServer   *server,
                                             CpHttpExchange *exchange);

/* Stop accepting; close idle connections; in-flight exchanges continue. */
void          cp_http_server_stop_accepting (CpHttpServer *server);
/* Close everything now; in-flight exchanges see aborted. */
void          cp_http_server_close          (CpHttpServer *server);
guint         cp_http_server_get_n_connections (CpHttpServer *server);
/* Connections accepted since the server was made (open or closed since). */
guint64       cp_http_server_get_n_accepted (CpHttpServer *server);
guint         cp_http_server_get_n_active_exchanges (CpHttpServer *server);
/* The counts above add up the workers' and may be called from any thread. */
/* Worker threads running (0 without n-workers > 1 or before listening). */
guint         cp_http_server_get_n_running_workers (CpHttpServer *server);

/* Gives the local exchange @exchange the remote address and TLS client
 * certificate of the connection it relays (both nullable, referenced). */
void          cp_http_exchange_local_set_peer (CpHttpExchange  *exchange,
                                               GSocketAddress  *remote_address,
                                               GTlsCertificate *peer_certificate);

/* The context @exchange belongs to: its server's (a worker's with
 * n-workers > 1); NULL for a local exchange not yet dispatched. */
GMainContext *cp_http_exchange_get_context (CpHttpExchange *exchange);

G_END_DECLS
