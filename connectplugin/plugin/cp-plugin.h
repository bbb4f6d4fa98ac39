/* cp-plugin.h: a plugin: name, version, services, provides and requires
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-service-descriptor.h"
#include "cp-skeleton.h"
#include "connectplugin/protocol/handshake.cp.h"

G_BEGIN_DECLS

#define CP_TYPE_PLUGIN (cp_plugin_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpPlugin, cp_plugin, CP, PLUGIN, GObject)

CP_AVAILABLE_IN_ALL
CpPlugin            *cp_plugin_new                    (const char          *name,
                                                       const char          *version);
CP_AVAILABLE_IN_ALL
const char          *cp_plugin_get_name               (CpPlugin            *plugin);
CP_AVAILABLE_IN_ALL
const char          *cp_plugin_get_version            (CpPlugin            *plugin);

CP_AVAILABLE_IN_ALL
void                 cp_plugin_add_service            (CpPlugin            *plugin,
                                                       CpSkeleton          *implementation);
CP_AVAILABLE_IN_ALL
void                 cp_plugin_add_service_descriptor (CpPlugin            *plugin,
                                                       CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
GPtrArray           *cp_plugin_get_descriptors        (CpPlugin            *plugin);
CP_AVAILABLE_IN_ALL
CpServiceDescriptor *cp_plugin_lookup_descriptor      (CpPlugin            *plugin,
                                                       const char          *service_name);
CP_AVAILABLE_IN_ALL
CpSkeleton          *cp_plugin_get_implementation     (CpPlugin            *plugin,
                                                       CpServiceDescriptor *descriptor);
CP_AVAILABLE_IN_ALL
const char          *cp_plugin_get_service_path       (CpPlugin            *plugin);

CP_AVAILABLE_IN_ALL
void                 cp_plugin_add_provides           (CpPlugin            *plugin,
                                                       const char          *type,
                                                       const char          *version,
                                                       const char          *path);
CP_AVAILABLE_IN_ALL
void                 cp_plugin_add_requires           (CpPlugin            *plugin,
                                                       const char          *type,
                                                       const char          *min_version,
                                                       gboolean             required_for_startup,
                                                       gboolean             watch_for_changes);
CP_AVAILABLE_IN_ALL
GPtrArray           *cp_plugin_get_provides           (CpPlugin            *plugin);
CP_AVAILABLE_IN_ALL
GPtrArray           *cp_plugin_get_requires           (CpPlugin            *plugin);

CP_AVAILABLE_IN_ALL
CpPluginInfo        *cp_plugin_to_info                (CpPlugin            *plugin);
CP_AVAILABLE_IN_ALL
gboolean             cp_plugin_validate               (CpPlugin            *plugin,
                                                       gboolean             need_implementations,
                                                       GError             **error);

G_END_DECLS
