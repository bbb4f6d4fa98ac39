/* cp-in-process-discovery.h: plugins served in the host's own process
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "cp-types.h"
#include "cp-discovery.h"
#include "cp-server.h"

G_BEGIN_DECLS

/**
 * CP_IN_PROCESS_URL:
 *
 * The URL [class@InProcessDiscovery] answers: it names no socket.
 */
#define CP_IN_PROCESS_URL "inprocess:"

#define CP_TYPE_IN_PROCESS_DISCOVERY (cp_in_process_discovery_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpInProcessDiscovery, cp_in_process_discovery, CP, IN_PROCESS_DISCOVERY, GObject)

CP_AVAILABLE_IN_ALL
CpInProcessDiscovery *cp_in_process_discovery_new        (CpRpcServer          *server);
CP_AVAILABLE_IN_ALL
CpInProcessDiscovery *cp_in_process_discovery_new_for_server (CpServer         *server);
CP_AVAILABLE_IN_ALL
CpRpcServer          *cp_in_process_discovery_get_server (CpInProcessDiscovery *self);
CP_AVAILABLE_IN_ALL
CpServer             *cp_in_process_discovery_get_plugin_server (CpInProcessDiscovery *self);

G_END_DECLS
