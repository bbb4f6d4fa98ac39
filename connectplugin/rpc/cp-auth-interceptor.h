/* cp-auth-interceptor.h: authenticates the calls a server serves
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
#include "cp-server-interceptor.h"

G_BEGIN_DECLS

#define CP_TYPE_AUTH_INTERCEPTOR (cp_auth_interceptor_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpAuthInterceptor, cp_auth_interceptor, CP, AUTH_INTERCEPTOR, CpServerInterceptor)

CP_AVAILABLE_IN_ALL
CpAuthInterceptor *cp_auth_interceptor_new                   (void);
CP_AVAILABLE_IN_ALL
void               cp_auth_interceptor_add_provider          (CpAuthInterceptor *interceptor,
                                                              CpAuthProvider    *provider);
CP_AVAILABLE_IN_ALL
void               cp_auth_interceptor_add_public_procedure  (CpAuthInterceptor *interceptor,
                                                              const char        *pattern);
CP_AVAILABLE_IN_ALL
gboolean           cp_auth_interceptor_is_public             (CpAuthInterceptor *interceptor,
                                                              const char        *procedure);
CP_AVAILABLE_IN_ALL
void               cp_auth_interceptor_set_allow_anonymous   (CpAuthInterceptor *interceptor,
                                                              gboolean           allow_anonymous);
CP_AVAILABLE_IN_ALL
gboolean           cp_auth_interceptor_get_allow_anonymous   (CpAuthInterceptor *interceptor);

G_END_DECLS
