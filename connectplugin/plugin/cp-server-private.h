/* cp-server-private.h: what the rest of the library sees of CpServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-server.h"
#include "connectplugin/protocol/handshake.cp.h"

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

/* Issues a runtime identity for @self_id as a handshake with a self_id
 * does (same formats, same 24 h TTL, checked by
 * cp_server_check_runtime_token()): for a host that assigns identities
 * itself (PluginIdentity.SetRuntimeIdentity). */
void      cp_server_issue_runtime_identity (CpServer    *server,
                                            const char  *self_id,
                                            char       **runtime_id,
                                            char       **token);
/* Forgets @runtime_id: its token no longer authenticates. */
void      cp_server_revoke_runtime_identity (CpServer   *server,
                                             const char *runtime_id);

/* Called at the end of every successful handshake, before the answer is
 * sent, to add what the server's owner offers (the host's broker fills
 * host_capabilities). One hook; NULL removes it. The hook's data must
 * outlive the server or be removed first. */
typedef void (*CpServerHandshakeHook) (CpServer            *server,
                                       CpHandshakeRequest  *request,
                                       CpHandshakeResponse *response,
                                       gpointer             user_data);
void      cp_server_set_handshake_hook (CpServer             *server,
                                        CpServerHandshakeHook hook,
                                        gpointer              user_data);

G_END_DECLS
