/* cp-etcd-registry.h: the broker's service registry shared by several hosts through etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-broker.h"

G_BEGIN_DECLS

/**
 * CP_ETCD_REGISTRY_DEFAULT_PREFIX:
 *
 * The key prefix of [class@ConnectPlugin.EtcdRegistry] unless told
 * otherwise: `/connectplugin/`, so providers are written under
 * `/connectplugin/services/TYPE/REG_ID`.
 */
#define CP_ETCD_REGISTRY_DEFAULT_PREFIX "/connectplugin/"

#define CP_TYPE_ETCD_REGISTRY (cp_etcd_registry_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpEtcdRegistry, cp_etcd_registry, CP, ETCD_REGISTRY, GObject)

CP_AVAILABLE_IN_ALL
CpEtcdRegistry     *cp_etcd_registry_new               (CpBroker            *broker,
                                                        const char * const  *endpoints);
CP_AVAILABLE_IN_ALL
CpBroker           *cp_etcd_registry_get_broker        (CpEtcdRegistry      *self);
CP_AVAILABLE_IN_ALL
const char         *cp_etcd_registry_get_host_id       (CpEtcdRegistry      *self);
CP_AVAILABLE_IN_ALL
const char         *cp_etcd_registry_get_peer_url      (CpEtcdRegistry      *self);
CP_AVAILABLE_IN_ALL
gboolean            cp_etcd_registry_get_registered    (CpEtcdRegistry      *self);
CP_AVAILABLE_IN_ALL
gboolean            cp_etcd_registry_set_tls_files     (CpEtcdRegistry      *self,
                                                        const char          *cert_file,
                                                        const char          *key_file,
                                                        const char          *ca_file,
                                                        GError             **error);
CP_AVAILABLE_IN_ALL
void                cp_etcd_registry_set_trusted_peers (CpEtcdRegistry      *self,
                                                        const char * const  *identities);

CP_AVAILABLE_IN_ALL
void                cp_etcd_registry_start_async       (CpEtcdRegistry      *self,
                                                        const char          *listen_address,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean            cp_etcd_registry_start_finish      (CpEtcdRegistry      *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);
CP_AVAILABLE_IN_ALL
void                cp_etcd_registry_stop_async        (CpEtcdRegistry      *self,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean            cp_etcd_registry_stop_finish       (CpEtcdRegistry      *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);

G_END_DECLS
