/* cp-etcd-discovery.h: plugin endpoints registered in etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "cp-discovery.h"

G_BEGIN_DECLS

/**
 * CP_ETCD_DEFAULT_PREFIX:
 *
 * The key prefix under which plugins are registered in etcd unless told
 * otherwise: `/connectplugin/plugins/`.
 */
#define CP_ETCD_DEFAULT_PREFIX "/connectplugin/plugins/"

#define CP_TYPE_ETCD_DISCOVERY (cp_etcd_discovery_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpEtcdDiscovery, cp_etcd_discovery, CP, ETCD_DISCOVERY, GObject)

CP_AVAILABLE_IN_ALL
CpEtcdDiscovery     *cp_etcd_discovery_new             (const char * const *endpoints,
                                                        const char         *prefix);
CP_AVAILABLE_IN_ALL
const char * const  *cp_etcd_discovery_get_endpoints   (CpEtcdDiscovery    *self);
CP_AVAILABLE_IN_ALL
const char          *cp_etcd_discovery_get_prefix      (CpEtcdDiscovery    *self);
CP_AVAILABLE_IN_ALL
const char          *cp_etcd_discovery_get_plugin_name (CpEtcdDiscovery    *self);
CP_AVAILABLE_IN_ALL
void                 cp_etcd_discovery_set_plugin_name (CpEtcdDiscovery    *self,
                                                        const char         *plugin_name);
CP_AVAILABLE_IN_ALL
char               **cp_etcd_discovery_get_urls        (CpEtcdDiscovery    *self);
CP_AVAILABLE_IN_ALL
gint64               cp_etcd_discovery_get_revision    (CpEtcdDiscovery    *self);

G_END_DECLS
