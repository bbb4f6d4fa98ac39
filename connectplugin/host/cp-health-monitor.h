/* cp-health-monitor.h: follows the health of a plugin server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-channel.h"
#include "connectplugin/protocol/handshake.cp.h"
#include "connectplugin/protocol/lifecycle.cp.h"
#include "connectplugin/protocol/health.cp.h"

G_BEGIN_DECLS

/**
 * CpHealthMode:
 * @CP_HEALTH_MODE_IDLE: not started, or stopped
 * @CP_HEALTH_MODE_WATCHING: following the `HealthService.Watch` stream
 * @CP_HEALTH_MODE_POLLING: calling `HealthService.Check` every interval
 *   (the server does not implement Watch, or its stream ended)
 *
 * How a [class@HealthMonitor] learns about changes.
 */
typedef enum {
  CP_HEALTH_MODE_IDLE,
  CP_HEALTH_MODE_WATCHING,
  CP_HEALTH_MODE_POLLING,
} CpHealthMode;

#define CP_TYPE_HEALTH_MONITOR (cp_health_monitor_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpHealthMonitor, cp_health_monitor, CP, HEALTH_MONITOR, GObject)

CP_AVAILABLE_IN_ALL
CpHealthMonitor *cp_health_monitor_new                (CpChannel       *channel,
                                                       const char      *service);
CP_AVAILABLE_IN_ALL
void             cp_health_monitor_start              (CpHealthMonitor *self);
CP_AVAILABLE_IN_ALL
void             cp_health_monitor_stop               (CpHealthMonitor *self);
CP_AVAILABLE_IN_ALL
CpChannel       *cp_health_monitor_get_channel        (CpHealthMonitor *self);
CP_AVAILABLE_IN_ALL
const char      *cp_health_monitor_get_service        (CpHealthMonitor *self);
CP_AVAILABLE_IN_ALL
CpServingStatus  cp_health_monitor_get_serving_status (CpHealthMonitor *self);
CP_AVAILABLE_IN_ALL
CpHealthState    cp_health_monitor_get_health_state   (CpHealthMonitor *self);
CP_AVAILABLE_IN_ALL
const char      *cp_health_monitor_get_reason         (CpHealthMonitor *self);
CP_AVAILABLE_IN_ALL
CpHealthMode     cp_health_monitor_get_mode           (CpHealthMonitor *self);

G_END_DECLS
