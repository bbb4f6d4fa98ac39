/* cp-dependency-graph.h: plugins' provides/requires as a start-up order and impact analysis
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"

G_BEGIN_DECLS

#define CP_TYPE_DEPENDENCY_GRAPH (cp_dependency_graph_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpDependencyGraph, cp_dependency_graph, CP, DEPENDENCY_GRAPH, GObject)

#define CP_TYPE_DEPENDENCY_IMPACT (cp_dependency_impact_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpDependencyImpact, cp_dependency_impact, CP, DEPENDENCY_IMPACT, GObject)

CP_AVAILABLE_IN_ALL
CpDependencyGraph  *cp_dependency_graph_new              (void);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_add_plugin       (CpDependencyGraph *self,
                                                          const char        *runtime_id,
                                                          const char        *self_id,
                                                          GError           **error);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_add_provides     (CpDependencyGraph *self,
                                                          const char        *runtime_id,
                                                          const char        *service_type,
                                                          const char        *version,
                                                          GError           **error);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_add_requires     (CpDependencyGraph *self,
                                                          const char        *runtime_id,
                                                          const char        *service_type,
                                                          const char        *min_version,
                                                          gboolean           required_for_startup,
                                                          GError           **error);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_add_declared     (CpDependencyGraph *self,
                                                          const char        *runtime_id,
                                                          const char        *self_id,
                                                          GPtrArray         *provides,
                                                          GPtrArray         *requires,
                                                          GError           **error);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_remove_plugin    (CpDependencyGraph *self,
                                                          const char        *runtime_id);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_has_plugin       (CpDependencyGraph *self,
                                                          const char        *runtime_id);
CP_AVAILABLE_IN_ALL
const char         *cp_dependency_graph_get_self_id      (CpDependencyGraph *self,
                                                          const char        *runtime_id);
CP_AVAILABLE_IN_ALL
char              **cp_dependency_graph_dup_plugins      (CpDependencyGraph *self);
CP_AVAILABLE_IN_ALL
char              **cp_dependency_graph_dup_providers    (CpDependencyGraph *self,
                                                          const char        *service_type,
                                                          const char        *min_version);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_has_service      (CpDependencyGraph *self,
                                                          const char        *service_type,
                                                          const char        *min_version);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_graph_check_plugin     (CpDependencyGraph *self,
                                                          const char        *runtime_id,
                                                          char            ***unavailable,
                                                          GError           **error);
CP_AVAILABLE_IN_ALL
char              **cp_dependency_graph_dup_startup_order (CpDependencyGraph *self,
                                                          GError           **error);
CP_AVAILABLE_IN_ALL
char              **cp_dependency_graph_dup_cycle        (CpDependencyGraph *self);
CP_AVAILABLE_IN_ALL
CpDependencyImpact *cp_dependency_graph_analyze_impact   (CpDependencyGraph *self,
                                                          const char        *runtime_id);
CP_AVAILABLE_IN_ALL
int                 cp_dependency_graph_compare_versions (const char        *a,
                                                          const char        *b);

CP_AVAILABLE_IN_ALL
const char         *cp_dependency_impact_get_target      (CpDependencyImpact *self);
CP_AVAILABLE_IN_ALL
const char * const *cp_dependency_impact_get_affected_plugins (CpDependencyImpact *self);
CP_AVAILABLE_IN_ALL
const char * const *cp_dependency_impact_get_directly_affected_plugins (CpDependencyImpact *self);
CP_AVAILABLE_IN_ALL
const char * const *cp_dependency_impact_get_degraded_plugins (CpDependencyImpact *self);
CP_AVAILABLE_IN_ALL
const char * const *cp_dependency_impact_get_rebound_plugins (CpDependencyImpact *self);
CP_AVAILABLE_IN_ALL
const char * const *cp_dependency_impact_get_services    (CpDependencyImpact *self);
CP_AVAILABLE_IN_ALL
const char * const *cp_dependency_impact_get_unavailable_services (CpDependencyImpact *self);
CP_AVAILABLE_IN_ALL
gboolean            cp_dependency_impact_has_alternative (CpDependencyImpact *self,
                                                          const char         *service_type);
CP_AVAILABLE_IN_ALL
char              **cp_dependency_impact_dup_alternatives (CpDependencyImpact *self,
                                                          const char         *service_type);

G_END_DECLS
