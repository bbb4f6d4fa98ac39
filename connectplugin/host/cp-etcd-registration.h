/* cp-etcd-registration.h: a plugin endpoint registered in etcd under a lease
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"

G_BEGIN_DECLS

#define CP_TYPE_ETCD_REGISTRATION (cp_etcd_registration_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpEtcdRegistration, cp_etcd_registration, CP, ETCD_REGISTRATION, GObject)

CP_AVAILABLE_IN_ALL
CpEtcdRegistration *cp_etcd_registration_new             (const char * const  *endpoints,
                                                          const char          *prefix,
                                                          const char          *name,
                                                          const char          *url);
CP_AVAILABLE_IN_ALL
void                cp_etcd_registration_set_metadata    (CpEtcdRegistration  *self,
                                                          const char          *key,
                                                          const char          *value);
CP_AVAILABLE_IN_ALL
void                cp_etcd_registration_register_async  (CpEtcdRegistration  *self,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean            cp_etcd_registration_register_finish (CpEtcdRegistration  *self,
                                                          GAsyncResult        *result,
                                                          GError             **error);
CP_AVAILABLE_IN_ALL
void                cp_etcd_registration_revoke_async    (CpEtcdRegistration  *self,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean            cp_etcd_registration_revoke_finish   (CpEtcdRegistration  *self,
                                                          GAsyncResult        *result,
                                                          GError             **error);
CP_AVAILABLE_IN_ALL
const char         *cp_etcd_registration_get_key         (CpEtcdRegistration  *self);
CP_AVAILABLE_IN_ALL
gint64              cp_etcd_registration_get_lease       (CpEtcdRegistration  *self);
CP_AVAILABLE_IN_ALL
gboolean            cp_etcd_registration_get_registered  (CpEtcdRegistration  *self);

G_END_DECLS
