/* cp-client.h: a host's connection to a plugin server
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
#include "cp-proxy.h"
#include "cp-discovery.h"
#include "cp-health-monitor.h"
#include "connectplugin/protocol/handshake.cp.h"
#include "connectplugin/protocol/health.cp.h"

G_BEGIN_DECLS

/**
 * CP_CLIENT_VERSION:
 *
 * The `client_version` a [class@ConnectPlugin.Client] sends in its handshake metadata.
 */
#define CP_CLIENT_VERSION "0.1.0"

/**
 * CpClientState:
 * @CP_CLIENT_STATE_CREATED: not connected yet
 * @CP_CLIENT_STATE_CONNECTING: discovering and handshaking
 * @CP_CLIENT_STATE_CONNECTED: handshake done, waiting for the first health report
 * @CP_CLIENT_STATE_READY: the plugins can be dispensed and called
 * @CP_CLIENT_STATE_RECONNECTING: connecting again after a failure or a
 *   change of the discovery
 * @CP_CLIENT_STATE_FAILED: the connection failed or the plugin went bad
 *   (see [method@ConnectPlugin.Client.get_error]); [method@ConnectPlugin.Client.connect_async] tries again
 * @CP_CLIENT_STATE_CLOSED: closed for good
 *
 * The states of a [class@Client].
 */
typedef enum {
  CP_CLIENT_STATE_CREATED,
  CP_CLIENT_STATE_CONNECTING,
  CP_CLIENT_STATE_CONNECTED,
  CP_CLIENT_STATE_READY,
  CP_CLIENT_STATE_RECONNECTING,
  CP_CLIENT_STATE_FAILED,
  CP_CLIENT_STATE_CLOSED,
} CpClientState;

#define CP_TYPE_CLIENT (cp_client_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpClient, cp_client, CP, CLIENT, GObject)

CP_AVAILABLE_IN_ALL
CpClient        *cp_client_new                (const char           *endpoint);
CP_AVAILABLE_IN_ALL
CpClient        *cp_client_new_for_discovery  (CpDiscovery          *discovery);

CP_AVAILABLE_IN_ALL
void             cp_client_set_plugins        (CpClient             *client,
                                               const char * const   *plugins);
CP_AVAILABLE_IN_ALL
const char * const *cp_client_get_plugins     (CpClient             *client);

CP_AVAILABLE_IN_ALL
void             cp_client_connect_async      (CpClient             *client,
                                               GCancellable         *cancellable,
                                               GAsyncReadyCallback   callback,
                                               gpointer              user_data);
CP_AVAILABLE_IN_ALL
gboolean         cp_client_connect_finish     (CpClient             *client,
                                               GAsyncResult         *result,
                                               GError              **error);
CP_AVAILABLE_IN_ALL
gboolean         cp_client_connect_sync       (CpClient             *client,
                                               GCancellable         *cancellable,
                                               GError              **error);

CP_AVAILABLE_IN_ALL
CpProxy         *cp_client_dispense           (CpClient             *client,
                                               const char           *plugin_name,
                                               GType                 proxy_type,
                                               GError              **error);

CP_AVAILABLE_IN_ALL
void             cp_client_close_async        (CpClient             *client,
                                               GCancellable         *cancellable,
                                               GAsyncReadyCallback   callback,
                                               gpointer              user_data);
CP_AVAILABLE_IN_ALL
gboolean         cp_client_close_finish       (CpClient             *client,
                                               GAsyncResult         *result,
                                               GError              **error);
CP_AVAILABLE_IN_ALL
gboolean         cp_client_close_sync         (CpClient             *client,
                                               GCancellable         *cancellable,
                                               GError              **error);

CP_AVAILABLE_IN_ALL
CpClientState    cp_client_get_state          (CpClient             *client);
CP_AVAILABLE_IN_ALL
const GError    *cp_client_get_error          (CpClient             *client);
CP_AVAILABLE_IN_ALL
CpDiscovery     *cp_client_get_discovery      (CpClient             *client);
CP_AVAILABLE_IN_ALL
const char      *cp_client_get_url            (CpClient             *client);
CP_AVAILABLE_IN_ALL
CpChannel       *cp_client_get_channel        (CpClient             *client);
CP_AVAILABLE_IN_ALL
CpHealthMonitor *cp_client_get_health_monitor (CpClient             *client);
CP_AVAILABLE_IN_ALL
CpHandshakeResponse *cp_client_get_handshake_response (CpClient     *client);
CP_AVAILABLE_IN_ALL
GPtrArray       *cp_client_get_plugin_infos   (CpClient             *client);
CP_AVAILABLE_IN_ALL
GListModel      *cp_client_get_plugin_model   (CpClient             *client);
CP_AVAILABLE_IN_ALL
CpPluginInfo    *cp_client_get_plugin_info    (CpClient             *client,
                                               const char           *plugin_name);
CP_AVAILABLE_IN_ALL
CpCallOptions   *cp_client_new_control_call_options (CpClient       *client);

CP_AVAILABLE_IN_ALL
void              cp_client_set_circuit_breaker (CpClient         *client,
                                                 CpCircuitBreaker *breaker);
CP_AVAILABLE_IN_ALL
CpCircuitBreaker *cp_client_get_circuit_breaker (CpClient         *client);

CP_AVAILABLE_IN_ALL
void              cp_client_set_retry_policy    (CpClient         *client,
                                                 CpRetryPolicy    *policy);
CP_AVAILABLE_IN_ALL
CpRetryPolicy    *cp_client_get_retry_policy    (CpClient         *client);
CP_AVAILABLE_IN_ALL
void              cp_client_add_interceptor     (CpClient            *client,
                                                 CpClientInterceptor *interceptor);

CP_AVAILABLE_IN_ALL
gboolean          cp_client_set_tls_files       (CpClient            *client,
                                                 const char          *cert_pem,
                                                 const char          *key_pem,
                                                 const char          *ca_pem,
                                                 GError             **error);

CP_AVAILABLE_IN_ALL
char             *cp_client_render_metrics      (CpClient            *client);
CP_AVAILABLE_IN_ALL
void              cp_client_add_metrics_to_server (CpClient          *client,
                                                   CpServer          *server);

G_END_DECLS
