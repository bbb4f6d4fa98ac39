/* cp-discovery.h: how a host finds the plugins it talks to
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

G_BEGIN_DECLS

#define CP_TYPE_DISCOVERY (cp_discovery_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (CpDiscovery, cp_discovery, CP, DISCOVERY, GObject)

/**
 * CpDiscoveryInterface:
 * @g_iface: the parent interface
 * @discover_async: starts finding the endpoints serving a set of plugins
 * @discover_finish: finishes @discover_async: the endpoint URLs, best first
 * @create_channel: makes the channel for one of the URLs; the default
 *   makes a [class@ConnectPlugin.Channel] from the URL with [ctor@ConnectPlugin.Channel.new]
 * @shutdown_async: asks what this discovery started (a launched plugin
 *   process) to go away; the default does nothing
 * @shutdown_finish: finishes @shutdown_async
 *
 * The virtual methods of a discovery back-end.
 */
struct _CpDiscoveryInterface
{
  GTypeInterface g_iface;

  void       (*discover_async)  (CpDiscovery          *discovery,
                                 const char * const   *plugins,
                                 GCancellable         *cancellable,
                                 GAsyncReadyCallback   callback,
                                 gpointer              user_data);
  char     **(*discover_finish) (CpDiscovery          *discovery,
                                 GAsyncResult         *result,
                                 GError              **error);
  CpChannel *(*create_channel)  (CpDiscovery          *discovery,
                                 const char           *url,
                                 GError              **error);
  void       (*shutdown_async)  (CpDiscovery          *discovery,
                                 GCancellable         *cancellable,
                                 GAsyncReadyCallback   callback,
                                 gpointer              user_data);
  gboolean   (*shutdown_finish) (CpDiscovery          *discovery,
                                 GAsyncResult         *result,
                                 GError              **error);

  /*< private >*/
  gpointer padding[8];
};

CP_AVAILABLE_IN_ALL
void        cp_discovery_discover_async  (CpDiscovery          *discovery,
                                          const char * const   *plugins,
                                          GCancellable         *cancellable,
                                          GAsyncReadyCallback   callback,
                                          gpointer              user_data);
CP_AVAILABLE_IN_ALL
char      **cp_discovery_discover_finish (CpDiscovery          *discovery,
                                          GAsyncResult         *result,
                                          GError              **error);
CP_AVAILABLE_IN_ALL
CpChannel  *cp_discovery_create_channel  (CpDiscovery          *discovery,
                                          const char           *url,
                                          GError              **error);
CP_AVAILABLE_IN_ALL
void        cp_discovery_shutdown_async  (CpDiscovery          *discovery,
                                          GCancellable         *cancellable,
                                          GAsyncReadyCallback   callback,
                                          gpointer              user_data);
CP_AVAILABLE_IN_ALL
gboolean    cp_discovery_shutdown_finish (CpDiscovery          *discovery,
                                          GAsyncResult         *result,
                                          GError              **error);
CP_AVAILABLE_IN_ALL
void        cp_discovery_emit_changed    (CpDiscovery          *discovery);

G_END_DECLS
