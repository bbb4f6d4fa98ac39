/* logger-plugin.c: the "logger" service of seed scenario 3
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   HOST_URL=http://127.0.0.1:PORT logger-plugin [--listen ADDR]
 *
 * A plugin (cp_server_run()) that provides logger.v1.Logger, registered with
 * its host as the service type "logger" (endpoint path /logger.v1.Logger/).
 * Other plugins reach it only through the host's router. Each Log call is
 * logged with g_debug () (G_MESSAGES_DEBUG=logger-plugin shows them; a host
 * forwards the plugin's GLib records to its own log at their level).
 *
 * Started without HOST_URL it waits for a host to add it
 * (cp_broker_add_plugin_async(): PluginIdentity, behind the control secret
 * its launcher gave it), as dynamic-host does.
 */
#define G_LOG_DOMAIN "logger-plugin"

#include "logger.cp.h"

static gboolean
on_log (DemoLogger     *logger,
        CpInvocation   *invocation,
        DemoLogRequest *request,
        gpointer        user_data)
{
  g_autoptr(DemoLogResponse) response = demo_log_response_new ();

  g_debug ("[%s] %s", demo_log_request_get_level (request), demo_log_request_get_message (request));
  demo_logger_complete_log (logger, invocation, response);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(DemoLogger) logger = demo_logger_skeleton_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("logger", "1.0.0");
  g_autoptr(CpServer) server = cp_server_new ();

  g_signal_connect (logger, "handle-log", G_CALLBACK (on_log), NULL);
  cp_plugin_add_service (plugin, CP_SKELETON (logger));
  cp_plugin_add_provides (plugin, "logger", "1.0.0", "/logger.v1.Logger/");
  cp_server_add_plugin (server, plugin);
  g_object_set (server, "self-id", "logger-plugin", "self-version", "1.0.0",
                "identity-enabled", TRUE, NULL);
  return cp_server_run (server, argc, argv);
}
