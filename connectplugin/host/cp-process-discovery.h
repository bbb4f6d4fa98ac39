/* cp-process-discovery.h: plugins launched as child processes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "cp-discovery.h"

G_BEGIN_DECLS

/**
 * CpProcessState:
 * @CP_PROCESS_STATE_STOPPED: not started yet, or stopped on request
 * @CP_PROCESS_STATE_STARTING: launched, waiting for the address announcement
 * @CP_PROCESS_STATE_RUNNING: the plugin announced its address (or the
 *   discovery re-attached to a running plugin)
 * @CP_PROCESS_STATE_STOPPING: shutting down on request
 * @CP_PROCESS_STATE_EXITED: the process ended (or failed to start) without
 *   being asked to
 * @CP_PROCESS_STATE_RESTARTING: waiting (backoff) before launching again
 *
 * The life cycle of a plugin process seen by [class@ProcessDiscovery].
 */
typedef enum {
  CP_PROCESS_STATE_STOPPED,
  CP_PROCESS_STATE_STARTING,
  CP_PROCESS_STATE_RUNNING,
  CP_PROCESS_STATE_STOPPING,
  CP_PROCESS_STATE_EXITED,
  CP_PROCESS_STATE_RESTARTING,
} CpProcessState;

/**
 * CpRestartPolicy:
 * @CP_RESTART_NEVER: a plugin that exits stays down
 * @CP_RESTART_ON_FAILURE: restart after a crash, a non-zero exit status or
 *   a failed start
 * @CP_RESTART_ALWAYS: restart whenever the plugin exits without being asked to
 *
 * What [class@ProcessDiscovery] does when its plugin process exits.
 */
typedef enum {
  CP_RESTART_NEVER,
  CP_RESTART_ON_FAILURE,
  CP_RESTART_ALWAYS,
} CpRestartPolicy;

/**
 * CpListenMode:
 * @CP_LISTEN_TCP: the plugin listens on `127.0.0.1`, on a port it picks
 * @CP_LISTEN_UNIX: the plugin listens on a unix socket in a private (0700)
 *   temporary directory
 *
 * Where a launched plugin is told to listen.
 */
typedef enum {
  CP_LISTEN_TCP,
  CP_LISTEN_UNIX,
} CpListenMode;

/**
 * CpStartupMode:
 * @CP_STARTUP_MODE_STDOUT_LINE: the plugin listens where
 *   `CONNECTPLUGIN_LISTEN` says and prints the URL it serves as the first
 *   line of its standard output (connectplugin's plugins)
 * @CP_STARTUP_MODE_PORT: the plugin prints nothing: the discovery picks a
 *   free TCP port, passes it in the environment variable `PORT` (and
 *   [property@ProcessDiscovery:host-url] in `HOST_URL`), and the plugin
 *   serves `http://127.0.0.1:PORT` once the port accepts a connection
 *   (connect-plugin-go's plugins)
 *
 * How [class@ProcessDiscovery] learns that a launched plugin serves, and
 * where.
 */
typedef enum {
  CP_STARTUP_MODE_STDOUT_LINE,
  CP_STARTUP_MODE_PORT,
} CpStartupMode;

#define CP_TYPE_PROCESS_DISCOVERY (cp_process_discovery_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpProcessDiscovery, cp_process_discovery, CP, PROCESS_DISCOVERY, GObject)

CP_AVAILABLE_IN_ALL
CpProcessDiscovery *cp_process_discovery_new          (const char * const  *argv);
CP_AVAILABLE_IN_ALL
CpProcessDiscovery *cp_process_discovery_new_attach   (const char          *url);

CP_AVAILABLE_IN_ALL
void                cp_process_discovery_start_async  (CpProcessDiscovery  *self,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
CP_AVAILABLE_IN_ALL
char               *cp_process_discovery_start_finish (CpProcessDiscovery  *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);
CP_AVAILABLE_IN_ALL
void                cp_process_discovery_stop_async   (CpProcessDiscovery  *self,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean            cp_process_discovery_stop_finish  (CpProcessDiscovery  *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);

CP_AVAILABLE_IN_ALL
const char         *cp_process_discovery_get_name     (CpProcessDiscovery  *self);
CP_AVAILABLE_IN_ALL
CpProcessState      cp_process_discovery_get_state    (CpProcessDiscovery  *self);
CP_AVAILABLE_IN_ALL
const char         *cp_process_discovery_get_url      (CpProcessDiscovery  *self);
CP_AVAILABLE_IN_ALL
GPid                cp_process_discovery_get_pid      (CpProcessDiscovery  *self);
CP_AVAILABLE_IN_ALL
guint               cp_process_discovery_get_restart_count (CpProcessDiscovery *self);
CP_AVAILABLE_IN_ALL
GLogLevelFlags      cp_process_discovery_get_output_log_level (CpProcessDiscovery *self);
CP_AVAILABLE_IN_ALL
void                cp_process_discovery_set_output_log_level (CpProcessDiscovery *self,
                                                               GLogLevelFlags      level);

G_END_DECLS
