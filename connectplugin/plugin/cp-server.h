/* cp-server.h: serves plugins and the built-in plugin-system services
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-plugin.h"
#include "cp-rpc-server.h"
#include "cp-channel.h"
#include "cp-service-watch.h"
#include "connectplugin/protocol/lifecycle.cp.h"
#include "connectplugin/protocol/health.cp.h"

G_BEGIN_DECLS

#define CP_TYPE_SERVER (cp_server_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpServer, cp_server, CP, SERVER, GObject)

CP_AVAILABLE_IN_ALL
CpServer        *cp_server_new                (void);
CP_AVAILABLE_IN_ALL
void             cp_server_add_plugin         (CpServer            *server,
                                               CpPlugin            *plugin);
CP_AVAILABLE_IN_ALL
GPtrArray       *cp_server_get_plugins        (CpServer            *server);
CP_AVAILABLE_IN_ALL
void             cp_server_set_metadata       (CpServer            *server,
                                               const char          *key,
                                               const char          *value);
CP_AVAILABLE_IN_ALL
CpRpcServer     *cp_server_get_rpc_server     (CpServer            *server);
CP_AVAILABLE_IN_ALL
void             cp_server_add_interceptor    (CpServer            *server,
                                               CpServerInterceptor *interceptor);

CP_AVAILABLE_IN_ALL
gboolean         cp_server_start              (CpServer            *server,
                                               GError             **error);
CP_AVAILABLE_IN_ALL
char            *cp_server_listen             (CpServer            *server,
                                               const char          *address,
                                               GError             **error);
CP_AVAILABLE_IN_ALL
const char      *cp_server_get_url            (CpServer            *server);
CP_AVAILABLE_IN_ALL
gboolean         cp_server_get_serving        (CpServer            *server);

CP_AVAILABLE_IN_ALL
void             cp_server_set_serving_status (CpServer            *server,
                                               const char          *service,
                                               CpServingStatus      status);
CP_AVAILABLE_IN_ALL
CpServingStatus  cp_server_get_serving_status (CpServer            *server,
                                               const char          *service);
CP_AVAILABLE_IN_ALL
void             cp_server_set_health         (CpServer            *server,
                                               CpHealthState        state,
                                               const char          *reason,
                                               const char * const  *unavailable_dependencies);

CP_AVAILABLE_IN_ALL
const char      *cp_server_get_runtime_id     (CpServer            *server);
CP_AVAILABLE_IN_ALL
const char      *cp_server_get_runtime_token  (CpServer            *server);
CP_AVAILABLE_IN_ALL
const char      *cp_server_get_host_url       (CpServer            *server);
CP_AVAILABLE_IN_ALL
gboolean         cp_server_get_host_registered (CpServer           *server);

CP_AVAILABLE_IN_ALL
void             cp_server_request_capability_async  (CpServer            *server,
                                                      const char          *capability_type,
                                                      const char          *min_version,
                                                      const char          *reason,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpChannel       *cp_server_request_capability_finish (CpServer            *server,
                                                      GAsyncResult        *result,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
CpChannel       *cp_server_request_capability_sync   (CpServer            *server,
                                                      const char          *capability_type,
                                                      const char          *min_version,
                                                      const char          *reason,
                                                      GCancellable        *cancellable,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
void             cp_server_discover_service_async    (CpServer            *server,
                                                      const char          *service_type,
                                                      const char          *min_version,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpChannel       *cp_server_discover_service_finish   (CpServer            *server,
                                                      GAsyncResult        *result,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
CpChannel       *cp_server_discover_service_sync     (CpServer            *server,
                                                      const char          *service_type,
                                                      const char          *min_version,
                                                      GCancellable        *cancellable,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
CpServiceWatch  *cp_server_watch_service             (CpServer            *server,
                                                      const char          *service_type,
                                                      GError             **error);

CP_AVAILABLE_IN_ALL
void             cp_server_shutdown_async     (CpServer            *server,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean         cp_server_shutdown_finish    (CpServer            *server,
                                               GAsyncResult        *result,
                                               GError             **error);
CP_AVAILABLE_IN_ALL
gboolean         cp_server_shutdown_sync      (CpServer            *server,
                                               GCancellable        *cancellable,
                                               GError             **error);
CP_AVAILABLE_IN_ALL
void             cp_server_close              (CpServer            *server);

CP_AVAILABLE_IN_ALL
gboolean         cp_server_set_tls_files      (CpServer            *server,
                                               const char          *cert_pem,
                                               const char          *key_pem,
                                               const char          *ca_pem,
                                               GError             **error);
CP_AVAILABLE_IN_ALL
void             cp_server_bind_application   (CpServer            *server,
                                               GApplication        *application);
CP_AVAILABLE_IN_ALL
int              cp_server_run                (CpServer            *server,
                                               int                  argc,
                                               char               **argv);

G_END_DECLS
