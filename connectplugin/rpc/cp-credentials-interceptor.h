/* cp-credentials-interceptor.h: puts a bearer token or an API key on every call
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-client-interceptor.h"

G_BEGIN_DECLS

/**
 * CpCredentialsFunc:
 * @call: the call about to be sent
 * @user_data: (closure): data given with the function
 *
 * Gives the current token or key of a
 * [class@ConnectPlugin.CredentialsInterceptor], for credentials that rotate.
 * Runs in the [struct@GLib.MainContext] of the call, for every call, and
 * must not block.
 *
 * Returns: (transfer full) (nullable): the credential, or %NULL to send the
 *   call without one
 */
typedef char * (*CpCredentialsFunc) (CpClientCall *call,
                                     gpointer      user_data);

#define CP_TYPE_CREDENTIALS_INTERCEPTOR (cp_credentials_interceptor_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpCredentialsInterceptor, cp_credentials_interceptor, CP, CREDENTIALS_INTERCEPTOR, CpClientInterceptor)

CP_AVAILABLE_IN_ALL
CpCredentialsInterceptor *cp_credentials_interceptor_new_bearer      (const char               *token);
CP_AVAILABLE_IN_ALL
CpCredentialsInterceptor *cp_credentials_interceptor_new_api_key     (const char               *header,
                                                                      const char               *key);
CP_AVAILABLE_IN_ALL
const char               *cp_credentials_interceptor_get_header      (CpCredentialsInterceptor *interceptor);
CP_AVAILABLE_IN_ALL
void                      cp_credentials_interceptor_set_token       (CpCredentialsInterceptor *interceptor,
                                                                      const char               *token);
CP_AVAILABLE_IN_ALL
void                      cp_credentials_interceptor_set_token_func  (CpCredentialsInterceptor *interceptor,
                                                                      CpCredentialsFunc         func,
                                                                      gpointer                  user_data,
                                                                      GDestroyNotify            destroy);

G_END_DECLS
