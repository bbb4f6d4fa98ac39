/* cp-channel-exchange-private.h: one HTTP exchange made by a channel,
 * over libsoup or in-process (see cp-channel-exchange.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-channel.h"

G_BEGIN_DECLS

typedef struct _CpChannelExchange CpChannelExchange;

typedef struct {
  /* Status and headers arrived (cp_channel_exchange_get_status() etc.). */
  void (*head)  (CpChannelExchange *exchange, gpointer user_data);
  /* A piece of the response body. */
  void (*chunk) (CpChannelExchange *exchange, GBytes *chunk, gpointer user_data);
  /* The last callback: @error NULL = body complete; otherwise a CP_ERROR
   * (canceled, deadline_exceeded, unavailable for transport failures). */
  void (*end)   (CpChannelExchange *exchange, const GError *error, gpointer user_data);
  /* Optional, streamed request bodies: the transport took bytes of the
   * body (cp_channel_exchange_get_body_queued () went down). Coalesced:
   * one call may stand for many takes. */
  void (*progress) (CpChannelExchange *exchange, gpointer user_data);
} CpChannelExchangeCallbacks;

/* The owner context is the thread-default one at creation: every callback
 * runs there, from the main loop (never from inside a cp_channel_exchange_*
 * function). @headers and @body are referenced. @user_data is released with
 * @destroy once no callback can follow. */
CpChannelExchange  *cp_channel_exchange_new    (CpChannel                        *channel,
                                                const char                       *http_method,
                                                const char                       *path_and_query,
                                                SoupMessageHeaders               *headers,
                                                GBytes                           *body,
                                                gint64                            deadline,
                                                GCancellable                     *cancellable,
                                                const CpChannelExchangeCallbacks *callbacks,
                                                gpointer                          user_data,
                                                GDestroyNotify                    destroy);
CpChannelExchange  *cp_channel_exchange_ref    (CpChannelExchange *exchange);
void                cp_channel_exchange_unref  (CpChannelExchange *exchange);
/* Before start: the exchange is a blocking call's, sent on the channel's
 * connection pool for those (see cp_channel_get_sync_session ()). */
void                cp_channel_exchange_set_sync_pool (CpChannelExchange *exchange);
/* Sends the request (after checking cancellation and the deadline, which
 * adds Connect-Timeout-Ms). */
void                cp_channel_exchange_start  (CpChannelExchange *exchange);
/* Back-pressure: stop/restart reading the response body. */
void                cp_channel_exchange_pause  (CpChannelExchange *exchange);
void                cp_channel_exchange_resume (CpChannelExchange *exchange);
/* Ends with G_IO_ERROR_CANCELLED (end callback follows from the main loop). */
void                cp_channel_exchange_cancel (CpChannelExchange *exchange);
/* Stops now and aborts the exchange: no callback follows. */
void                cp_channel_exchange_close  (CpChannelExchange *exchange);
guint               cp_channel_exchange_get_status           (CpChannelExchange *exchange);
const char         *cp_channel_exchange_get_reason           (CpChannelExchange *exchange);
SoupMessageHeaders *cp_channel_exchange_get_response_headers (CpChannelExchange *exchange);
/* The response's HTTP trailers (HTTP/2), or NULL: NULL until the body
 * ended, and over HTTP/1.1 and in-process. */
SoupMessageHeaders *cp_channel_exchange_get_response_trailers (CpChannelExchange *exchange);
/* Whether the channel's exchanges can stream their request body while the
 * response arrives (HTTP/2). */
gboolean            cp_channel_exchange_channel_full_duplex  (CpChannel *channel);
/* Whether the channel's exchanges can stream their request body as it is
 * written (HTTP/2, or HTTP/1.1 with chunked transfer-encoding through
 * libsoup): every channel but an in-process one. Then
 * set_request_streaming () may be used. */
gboolean            cp_channel_exchange_channel_streams_body (CpChannel *channel);
/* Before start, instead of a body: the request body is written with
 * write_body () (before or after start) and ended with end_body ();
 * response callbacks may arrive meanwhile (over HTTP/1.1 libsoup reads the
 * response only once the body was sent). Not in-process. */
void                cp_channel_exchange_set_request_streaming (CpChannelExchange *exchange);
/* The same for a half-duplex call (client streaming): the response is only
 * awaited once the body ended, so over HTTP/1.1 too (a TLS server that
 * does not pick h2 included). */
void                cp_channel_exchange_set_request_half_duplex (CpChannelExchange *exchange);
void                cp_channel_exchange_write_body (CpChannelExchange *exchange,
                                                    GBytes            *chunk);
void                cp_channel_exchange_end_body   (CpChannelExchange *exchange);
/* A streamed body: bytes written and not taken by the transport yet, and
 * bytes taken so far (sent, or in the transport's own bounded buffers). */
gsize               cp_channel_exchange_get_body_queued (CpChannelExchange *exchange);
guint64             cp_channel_exchange_get_body_sent   (CpChannelExchange *exchange);
/* TRUE when the response body ended because the server closed the
 * connection rather than by its own framing (see body_connection_lost ()
 * in cp-channel-exchange-soup.c): a stream cut off that way is `unavailable`. */
gboolean            cp_channel_exchange_get_connection_lost  (CpChannelExchange *exchange);
/* TRUE when the exchange failed because no connection to the server could
 * be made (refused, no such socket, host or network unreachable, name not
 * resolved): no byte of the request was written, so the request may be
 * sent again whatever its method. Always FALSE in-process. */
gboolean            cp_channel_exchange_get_not_sent         (CpChannelExchange *exchange);
/* Whether libsoup still holds the exchange (and its connection): after the
 * body ended or was aborted, it finishes the message from a source of the
 * exchange's context, in a later iteration. Always FALSE in-process. */
gboolean            cp_channel_exchange_transport_busy       (CpChannelExchange *exchange);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpChannelExchange, cp_channel_exchange_unref)

G_END_DECLS
