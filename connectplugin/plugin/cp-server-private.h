/* cp-server-private.h: what the rest of the library sees of CpServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-server.h"

G_BEGIN_DECLS

/* Runtime identities issued by this server's handshakes (self_id present):
 * TRUE when @token is the live (unexpired, 24 h TTL) token of @runtime_id.
 * Constant-time comparison. For the host's broker and router. */
gboolean  cp_server_check_runtime_token (CpServer   *server,
                                         const char *runtime_id,
                                         const char *token);
/* The self_id a runtime id was issued to (transfer none), or NULL. */
const char *cp_server_lookup_runtime_self_id (CpServer   *server,
                                              const char *runtime_id);

G_END_DECLS
