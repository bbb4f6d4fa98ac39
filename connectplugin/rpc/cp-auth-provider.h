/* cp-auth-provider.h: one way of authenticating the caller of a call
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-invocation.h"

G_BEGIN_DECLS

/**
 * CpAuthResult:
 * @CP_AUTH_RESULT_SKIP: the call carries no credential of this provider's
 *   kind (its header is absent, or of another scheme): the next provider
 *   is asked
 * @CP_AUTH_RESULT_ACCEPT: the credential is valid; the provider named the
 *   principal, and no further provider is asked
 * @CP_AUTH_RESULT_REJECT: the call carries a credential of this provider's
 *   kind and it is not valid: the call is answered `unauthenticated` at
 *   once, whatever later providers would say
 *
 * What a [class@ConnectPlugin.AuthProvider] decides about a call.
 */
typedef enum {
  CP_AUTH_RESULT_SKIP,
  CP_AUTH_RESULT_ACCEPT,
  CP_AUTH_RESULT_REJECT,
} CpAuthResult;

#define CP_TYPE_AUTH_PROVIDER (cp_auth_provider_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (CpAuthProvider, cp_auth_provider, CP, AUTH_PROVIDER, GObject)

/**
 * CpAuthProviderClass:
 * @parent_class: the parent class
 * @authenticate: looks at the call's request headers
 *   ([method@ConnectPlugin.Invocation.get_request_headers]) and decides:
 *   %CP_AUTH_RESULT_ACCEPT with @principal set, %CP_AUTH_RESULT_REJECT
 *   (optionally with a #CP_ERROR error, sent as is; never put the
 *   credential in its message; an error set with any result rejects), or
 *   %CP_AUTH_RESULT_SKIP. Runs in the
 *   server's [struct@GLib.MainContext] for every call the
 *   [class@ConnectPlugin.AuthInterceptor] asks it about, so it must not
 *   block. The default implementation skips.
 *
 * The virtual methods of [class@ConnectPlugin.AuthProvider].
 */
struct _CpAuthProviderClass
{
  GObjectClass parent_class;

  CpAuthResult (*authenticate) (CpAuthProvider  *provider,
                                CpInvocation    *invocation,
                                char           **principal,
                                GError         **error);

  /*< private >*/
  gpointer padding[8];
};

CP_AVAILABLE_IN_ALL
const char   *cp_auth_provider_get_scheme  (CpAuthProvider  *provider);
CP_AVAILABLE_IN_ALL
CpAuthResult  cp_auth_provider_authenticate (CpAuthProvider  *provider,
                                             CpInvocation    *invocation,
                                             char           **principal,
                                             GError         **error);

G_END_DECLS
