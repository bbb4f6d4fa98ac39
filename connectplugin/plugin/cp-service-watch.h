/* cp-service-watch.h: a plugin's watch of a service type at its host
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "connectplugin/protocol/registry.cp.h"

G_BEGIN_DECLS

#define CP_TYPE_SERVICE_WATCH (cp_service_watch_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpServiceWatch, cp_service_watch, CP, SERVICE_WATCH, GObject)

CP_AVAILABLE_IN_ALL
const char        *cp_service_watch_get_service_type (CpServiceWatch *watch);
CP_AVAILABLE_IN_ALL
CpServiceState     cp_service_watch_get_state        (CpServiceWatch *watch);
CP_AVAILABLE_IN_ALL
CpServiceEndpoint *cp_service_watch_get_endpoint     (CpServiceWatch *watch);
CP_AVAILABLE_IN_ALL
gboolean           cp_service_watch_get_active       (CpServiceWatch *watch);
CP_AVAILABLE_IN_ALL
void               cp_service_watch_cancel           (CpServiceWatch *watch);

G_END_DECLS
