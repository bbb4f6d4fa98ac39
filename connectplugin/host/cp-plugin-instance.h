/* cp-plugin-instance.h: one plugin known to a host's broker
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "connectplugin/protocol/handshake.cp.h"
#include "connectplugin/protocol/lifecycle.cp.h"

G_BEGIN_DECLS

#define CP_TYPE_PLUGIN_INSTANCE (cp_plugin_instance_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpPluginInstance, cp_plugin_instance, CP, PLUGIN_INSTANCE, GObject)

CP_AVAILABLE_IN_ALL
const char         *cp_plugin_instance_get_runtime_id   (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
const char         *cp_plugin_instance_get_self_id      (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
const char         *cp_plugin_instance_get_self_version (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
const char         *cp_plugin_instance_get_url          (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
gboolean            cp_plugin_instance_get_managed      (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
CpHealthState       cp_plugin_instance_get_health_state (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
const char         *cp_plugin_instance_get_health_reason (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
const char * const *cp_plugin_instance_get_unavailable_dependencies (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
gboolean            cp_plugin_instance_get_routable     (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
guint               cp_plugin_instance_get_n_inflight   (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
GPtrArray          *cp_plugin_instance_get_provides     (CpPluginInstance *self);
CP_AVAILABLE_IN_ALL
GPtrArray          *cp_plugin_instance_get_requires     (CpPluginInstance *self);

G_END_DECLS
