/* cp-health-monitor-private.h: what CpClient tells its health monitor
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-health-monitor.h"
#include "cp-message.h"

G_BEGIN_DECLS

/* Applies the outcome of a Check call made by someone else (CpClient's
 * cp_client_connect_sync() asks Check for the first report, in its private
 * context, while the monitor's Watch waits in the client's): @response, or
 * @error (not_found: the service is unknown; unimplemented: the server has
 * no Check, which says nothing against it). */
void cp_health_monitor_apply_check (CpHealthMonitor *self,
                                    CpMessage       *response,
                                    const GError    *error);

G_END_DECLS
