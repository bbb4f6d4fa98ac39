/* cp-kubernetes-discovery.h: plugin endpoints from a Kubernetes service's EndpointSlices
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "cp-discovery.h"

G_BEGIN_DECLS

#define CP_TYPE_KUBERNETES_DISCOVERY (cp_kubernetes_discovery_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpKubernetesDiscovery, cp_kubernetes_discovery, CP, KUBERNETES_DISCOVERY, GObject)

CP_AVAILABLE_IN_ALL
CpKubernetesDiscovery *cp_kubernetes_discovery_new_in_cluster     (const char  *service,
                                                                   const char  *namespace,
                                                                   const char  *port_name,
                                                                   GError     **error);
CP_AVAILABLE_IN_ALL
CpKubernetesDiscovery *cp_kubernetes_discovery_new_from_kubeconfig (const char  *path,
                                                                    const char  *context,
                                                                    const char  *service,
                                                                    const char  *namespace,
                                                                    const char  *port_name,
                                                                    GError     **error);
CP_AVAILABLE_IN_ALL
const char            *cp_kubernetes_discovery_get_service        (CpKubernetesDiscovery *self);
CP_AVAILABLE_IN_ALL
const char            *cp_kubernetes_discovery_get_namespace      (CpKubernetesDiscovery *self);
CP_AVAILABLE_IN_ALL
const char            *cp_kubernetes_discovery_get_port_name      (CpKubernetesDiscovery *self);
CP_AVAILABLE_IN_ALL
const char            *cp_kubernetes_discovery_get_server         (CpKubernetesDiscovery *self);
CP_AVAILABLE_IN_ALL
char                 **cp_kubernetes_discovery_dup_ready_urls     (CpKubernetesDiscovery *self);

G_END_DECLS
