/* cp-http-exchange-private.h: one HTTP request/response, as the engine sees it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The handler API of our HTTP server transport. It knows nothing of sockets:
 * the HTTP/1.1 connection code, the HTTP/2 streams of a connection
 * (cp-http2-session-private.h) and the in-process (local) transport
 * (cp-http-local-private.h) all produce CpHttpExchange objects, so
 * handlers see exactly the same calls.
 *
 * Threading: an exchange belongs to the GMainContext of the server that
 * produced it; every callback runs there and every function must be called
 * there.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _CpHttpExchange CpHttpExchange;

typedef struct {
  /* A piece of the request body (de-chunked). Never called after body_end. */
  void (*body_chunk) (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data);
  /* The request body is complete. */
  void (*body_end)   (CpHttpExchange *exchange, gpointer user_data);
  /* The exchange can no longer complete: peer closed/reset, protocol error,
   * server shutting down. No other callback follows. @error is in the
   * G_IO_ERROR domain: CONNECTION_CLOSED (peer went away, also mid-body),
   * INVALID_DATA (malformed body framing), TIMED_OUT, CLOSED (server
   * closed), CANCELLED (local exchange cancelled), or the socket's error. */
  void (*aborted)    (CpHttpExchange *exchange, const GError *error, gpointer user_data);
  /* The response write queue fell below the low-water mark after
   * cp_http_exchange_is_congested() had returned TRUE. */
  void (*writable)   (CpHttpExchange *exchange, gpointer user_data);
} CpHttpExchangeCallbacks;

CpHttpExchange     *cp_http_exchange_ref              (CpHttpExchange *exchange);
void                cp_http_exchange_unref            (CpHttpExchange *exchange);

/* Request side */
const char         *cp_http_exchange_get_method       (CpHttpExchange *exchange);
const char         *cp_http_exchange_get_path         (CpHttpExchange *exchange); /* without query */
const char         *cp_http_exchange_get_query        (CpHttpExchange *exchange); /* raw, nullable */
SoupMessageHeaders *cp_http_exchange_get_request_headers (CpHttpExchange *exchange);
GSocketAddress     *cp_http_exchange_get_remote_address  (CpHttpExchange *exchange); /* nullable */
/* The verified TLS client certificate (nullable; NULL for plaintext and local exchanges). */
GTlsCertificate    *cp_http_exchange_get_peer_certificate (CpHttpExchange *exchange);
gint64              cp_http_exchange_get_arrival_time (CpHttpExchange *exchange); /* g_get_monotonic_time() when the head arrived */
/* TRUE when the request announced no body or Content-Length: 0. */
gboolean            cp_http_exchange_has_empty_body   (CpHttpExchange *exchange);

/* Install body/abort callbacks. Body delivery starts after the handler
 * returns (and after "100 Continue" when the client asked for it).
 * Callbacks are never invoked from inside a cp_http_exchange_* call.
 * Once the response is finished, no more body callbacks are made (the
 * unread rest of the body is drained). @destroy runs when the transport is
 * done with the exchange (after it finished, from the main loop), right
 * after aborted, or at finalization, so @user_data may hold a reference
 * to the exchange without creating a leak. */
void                cp_http_exchange_set_callbacks    (CpHttpExchange *exchange,
                                                       const CpHttpExchangeCallbacks *callbacks,
                                                       gpointer        user_data,
                                                       GDestroyNotify  destroy);
/* Back-pressure on the request body: stop/restart reading the socket. */
void                cp_http_exchange_pause_body       (CpHttpExchange *exchange);
void                cp_http_exchange_resume_body      (CpHttpExchange *exchange);

/* Response side: either respond() once, or begin_response() + write()* +
 * end_response(). The transport adds Date-free minimal framing headers
 * (Content-Length or Transfer-Encoding: chunked, Connection); on a
 * connection, the framing headers of @headers are left out (those for
 * which cp_http_is_framing_header() is TRUE). */
gboolean            cp_http_is_framing_header         (const char     *name);
void                cp_http_exchange_respond          (CpHttpExchange *exchange,
                                                       guint           status,
                                                       SoupMessageHeaders *headers, /* nullable, transfer none */
                                                       GBytes         *body);       /* nullable */
void                cp_http_exchange_begin_response   (CpHttpExchange *exchange,
                                                       guint           status,
                                                       SoupMessageHeaders *headers);
void                cp_http_exchange_write            (CpHttpExchange *exchange,
                                                       GBytes         *chunk);
/* TRUE when queued response bytes exceed the high-water mark: producers
 * should wait for the writable callback. */
gboolean            cp_http_exchange_is_congested     (CpHttpExchange *exchange);
void                cp_http_exchange_end_response     (CpHttpExchange *exchange);
/* Close the connection after this response (no keep-alive); also discards
 * any unread request body. */
void                cp_http_exchange_set_close        (CpHttpExchange *exchange);
gboolean            cp_http_exchange_is_finished      (CpHttpExchange *exchange);
/* Ends a begun response as a failure (@reason is logged): on a connection
 * the connection is closed without the end of the body, so the client
 * sees a reset rather than a clean end; in-process, the response ends and
 * the exchange is marked close. Nothing once the exchange is finished. */
void                cp_http_exchange_fail_response    (CpHttpExchange *exchange,
                                                       const char     *reason);
/* Trailer fields of a begun response (gRPC's status), sent with its end:
 * over HTTP/1.1 as the trailer section of the chunked body, in-process
 * handed to the client (cp_http_exchange_local_get_response_trailers()).
 * Call before end_response(); @trailers is kept (a reference is taken), so
 * neither side may change it afterwards: the response may share one set
 * of trailers with others. Ignored for HTTP/1.0, which has no trailers. */
void                cp_http_exchange_set_response_trailers (CpHttpExchange     *exchange,
                                                            SoupMessageHeaders *trailers);
/* The request's HTTP version (SOUP_HTTP_1_1 for in-process exchanges). */
SoupHTTPVersion     cp_http_exchange_get_http_version (CpHttpExchange *exchange);
/* TRUE for an exchange of the in-process transport: its response headers
 * reach the caller as given (no framing headers left out). */
gboolean            cp_http_exchange_is_local         (CpHttpExchange *exchange);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpHttpExchange, cp_http_exchange_unref)

G_END_DECLS
