/* cp-h2-connection-private.h: a channel's HTTP/2 client: one connection
 * (h2c or TLS with ALPN h2) multiplexing the exchanges of every thread,
 * driven by a thread of its own (see cp-h2-connection.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "cp-channel-exchange-private.h"
#include "cp-channel-private.h"

G_BEGIN_DECLS

/* @connectable: a unix socket address, or NULL to connect to the host of
 * the channel's base URL; @direct: never through a proxy. The client reads
 * the channel's base URL and TLS settings when it connects; the channel
 * owns it (cp_h2_client_free () from its finalize). */
CpH2Client *cp_h2_client_new    (CpChannel          *channel,
                                 GSocketConnectable *connectable,
                                 gboolean            direct);
void        cp_h2_client_free   (CpH2Client         *client);

/* Any thread. Opens a stream for @exchange (referenced until its end
 * event was queued), connecting first when needed. */
void        cp_h2_client_submit (CpH2Client         *client,
                                 CpChannelExchange  *exchange);
/* Any thread: @exchange queued request body, or may take more response
 * body (resumed): the connection thread looks at it again. */
void        cp_h2_client_kick   (CpH2Client         *client,
                                 CpChannelExchange  *exchange);
/* Any thread: resets @exchange's stream (RST_STREAM CANCEL). */
void        cp_h2_client_cancel (CpH2Client         *client,
                                 CpChannelExchange  *exchange);
/* Fuzz targets: @data as the server's bytes on a connection with one
 * stream for @exchange (not started); see cp-h2-connection.c. */
void        cp_h2_fuzz_server_bytes (CpChannelExchange *exchange,
                                     const guint8      *data,
                                     gsize              size);
/* Tests: how many connections the client has opened so far. */
guint       cp_h2_client_get_n_connects (CpH2Client *client);

G_END_DECLS
