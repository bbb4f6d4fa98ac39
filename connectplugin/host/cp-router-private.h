/* cp-router-private.h: the router unit's internals
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-broker-private.h"
#include "cp-router-path.h"

G_BEGIN_DECLS

/* A call another host forwarded to this one's router (CpEtcdRegistry's
 * peer listener, after it checked the peer's certificate): routed like a
 * plugin's call to a provider of this host only, never forwarded again.
 * @peer names the calling host (its certificate's identity), for the rate
 * limiter and the logs. */
void cp_router_handle_forwarded (CpRouter        *router,
                                 CpHttpExchange  *exchange,
                                 const char      *peer);
/* The client certificate and CAs of calls forwarded to other hosts. */
void cp_router_set_peer_tls     (CpRouter        *router,
                                 GTlsCertificate *certificate,
                                 GTlsDatabase    *database);

G_END_DECLS
