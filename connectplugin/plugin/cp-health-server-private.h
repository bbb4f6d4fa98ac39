/* cp-health-server-private.h: connectplugin.health.v1.HealthService
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The status map behind a CpServer's HealthService (Check, Watch) and
 * `/readyz`: service name → CpServingStatus, "" being the whole server.
 */
#pragma once

#include "cp-rpc-server.h"
#include "cp-plugin-protos.h"

G_BEGIN_DECLS

#define CP_TYPE_HEALTH_SERVER (cp_health_server_get_type ())
G_DECLARE_FINAL_TYPE (CpHealthServer, cp_health_server, CP, HEALTH_SERVER, GObject)

CpHealthServer *cp_health_server_new        (void);
/* Serves Check and Watch on @server. */
void            cp_health_server_register   (CpHealthServer  *self,
                                             CpRpcServer     *server);
/* Sets a status and notifies the Watch streams of @service when it
 * changed. Ignored after cp_health_server_shutdown(). */
void            cp_health_server_set_status (CpHealthServer  *self,
                                             const char      *service,
                                             CpServingStatus  status);
/* SERVICE_UNKNOWN when @service is not in the map. */
CpServingStatus cp_health_server_get_status (CpHealthServer  *self,
                                             const char      *service);
/* Every status → NOT_SERVING, Watch streams told and ended; later Watch
 * calls get the current status and end at once. */
void            cp_health_server_shutdown   (CpHealthServer  *self);

G_END_DECLS
