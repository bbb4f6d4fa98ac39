/* cp-channel-private.h: what the channel's units read from a CpChannel
 * (its configuration and transport), beyond its public API
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The client engine's units and who uses whom (private headers, no cycle):
 *
 *   cp-channel.c          CpChannel, unary calls      → streams, exchange, settings
 *   cp-request-stream.c   client/bidi streaming       → response stream, exchange,
 *                                                       settings, stream decoder
 *   cp-response-stream.c  server streaming            → exchange, settings, decoder
 *   cp-stream-decoder.c   Connect streaming bodies    → exchange (head only), util
 *   cp-call-settings.c    settings of one call        → this header, util
 *   cp-channel-exchange.c one HTTP exchange           → this header
 *   cp-channel-util.c     response checks and errors  → (nothing of the above)
 */
#pragma once

#include "cp-channel.h"

G_BEGIN_DECLS

/* Configuration (the properties' values). */
CpCodec        cp_channel_get_codec            (CpChannel *channel);
CpCompression  cp_channel_get_compression      (CpChannel *channel);
gint64         cp_channel_get_timeout_ms       (CpChannel *channel);
guint64        cp_channel_get_max_receive_size (CpChannel *channel);

/* Transport. The in-process server, or NULL for HTTP. */
CpRpcServer   *cp_channel_get_server           (CpChannel *channel);
/* The construction context; for an in-process channel the server's. */
GMainContext  *cp_channel_get_context          (CpChannel *channel);
/* HTTP only: the session, and "http://host:port[/prefix]" without a
 * trailing '/'. */
SoupSession   *cp_channel_get_session          (CpChannel *channel);
const char    *cp_channel_get_http_base        (CpChannel *channel);
/* Why the channel cannot make calls (an invalid base URL), or NULL. */
const GError  *cp_channel_get_setup_error      (CpChannel *channel);

G_END_DECLS
