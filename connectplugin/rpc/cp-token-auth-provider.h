/* cp-token-auth-provider.h: bearer tokens and API keys checked on the server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-auth-provider.h"

G_BEGIN_DECLS

/**
 * CpAuthVerifyFunc:
 * @credential: the token or key the call presented (never empty)
 * @principal: (out) (transfer full) (nullable): the caller's principal,
 *   when the credential is valid
 * @user_data: (closure): data given with the function
 *
 * Checks a credential for a [class@ConnectPlugin.TokenAuthProvider]. Runs
 * in the server's [struct@GLib.MainContext] and must not block.
 *
 * Returns: %TRUE when @credential is valid
 */
typedef gboolean (*CpAuthVerifyFunc) (const char  *credential,
                                      char       **principal,
                                      gpointer     user_data);

#define CP_TYPE_TOKEN_AUTH_PROVIDER (cp_token_auth_provider_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpTokenAuthProvider, cp_token_auth_provider, CP, TOKEN_AUTH_PROVIDER, CpAuthProvider)

CP_AVAILABLE_IN_ALL
CpAuthProvider *cp_token_auth_provider_new_bearer      (void);
CP_AVAILABLE_IN_ALL
CpAuthProvider *cp_token_auth_provider_new_api_key     (const char          *header);
CP_AVAILABLE_IN_ALL
const char     *cp_token_auth_provider_get_header      (CpTokenAuthProvider *provider);
CP_AVAILABLE_IN_ALL
gboolean        cp_token_auth_provider_get_bearer_scheme (CpTokenAuthProvider *provider);
CP_AVAILABLE_IN_ALL
void            cp_token_auth_provider_add_token       (CpTokenAuthProvider *provider,
                                                        const char          *token,
                                                        const char          *principal);
CP_AVAILABLE_IN_ALL
gboolean        cp_token_auth_provider_remove_token    (CpTokenAuthProvider *provider,
                                                        const char          *token);
CP_AVAILABLE_IN_ALL
void            cp_token_auth_provider_set_verify_func (CpTokenAuthProvider *provider,
                                                        CpAuthVerifyFunc     func,
                                                        gpointer             user_data,
                                                        GDestroyNotify       destroy);

G_END_DECLS
