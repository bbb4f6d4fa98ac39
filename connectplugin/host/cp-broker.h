/* cp-broker.h: the host side of the plugin platform
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-server.h"
#include "cp-skeleton.h"
#include "cp-plugin-instance.h"

G_BEGIN_DECLS

/**
 * CpSelectionStrategy:
 * @CP_SELECTION_FIRST: the first available provider (in registration order)
 * @CP_SELECTION_ROUND_ROBIN: each available provider in turn
 * @CP_SELECTION_RANDOM: a provider drawn at random
 * @CP_SELECTION_WEIGHTED: a provider drawn at random in proportion to the
 *   integer in its registration metadata `weight` (1 when absent or invalid)
 *
 * How the host's service registry picks one provider when several serve a
 * service type.
 */
typedef enum {
  CP_SELECTION_FIRST,
  CP_SELECTION_ROUND_ROBIN,
  CP_SELECTION_RANDOM,
  CP_SELECTION_WEIGHTED,
} CpSelectionStrategy;

#define CP_TYPE_BROKER (cp_broker_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpBroker, cp_broker, CP, BROKER, GObject)

CP_AVAILABLE_IN_ALL
CpBroker         *cp_broker_new                    (CpServer            *server);
CP_AVAILABLE_IN_ALL
CpServer         *cp_broker_get_server             (CpBroker            *broker);
CP_AVAILABLE_IN_ALL
GListModel       *cp_broker_get_plugins            (CpBroker            *broker);
CP_AVAILABLE_IN_ALL
CpPluginInstance *cp_broker_lookup_plugin          (CpBroker            *broker,
                                                    const char          *runtime_id);

CP_AVAILABLE_IN_ALL
void              cp_broker_add_capability         (CpBroker            *broker,
                                                    const char          *capability_type,
                                                    const char          *version,
                                                    CpSkeleton          *skeleton);
CP_AVAILABLE_IN_ALL
void              cp_broker_remove_capability      (CpBroker            *broker,
                                                    const char          *capability_type);
CP_AVAILABLE_IN_ALL
void              cp_broker_allow_capability       (CpBroker            *broker,
                                                    const char          *self_id,
                                                    const char          *capability_type);

CP_AVAILABLE_IN_ALL
void              cp_broker_allow_service          (CpBroker            *broker,
                                                    const char          *self_id,
                                                    const char          *service_type);
CP_AVAILABLE_IN_ALL
void              cp_broker_set_selection_strategy (CpBroker            *broker,
                                                    const char          *service_type,
                                                    CpSelectionStrategy  strategy);

CP_AVAILABLE_IN_ALL
void              cp_broker_add_plugin_async       (CpBroker            *broker,
                                                    const char          *url,
                                                    const char          *control_secret,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpPluginInstance *cp_broker_add_plugin_finish      (CpBroker            *broker,
                                                    GAsyncResult        *result,
                                                    GError             **error);
CP_AVAILABLE_IN_ALL
void              cp_broker_remove_plugin_async    (CpBroker            *broker,
                                                    CpPluginInstance    *plugin,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean          cp_broker_remove_plugin_finish   (CpBroker            *broker,
                                                    GAsyncResult        *result,
                                                    GError             **error);
CP_AVAILABLE_IN_ALL
void              cp_broker_replace_plugin_async   (CpBroker            *broker,
                                                    CpPluginInstance    *plugin,
                                                    const char          *url,
                                                    const char          *control_secret,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpPluginInstance *cp_broker_replace_plugin_finish  (CpBroker            *broker,
                                                    GAsyncResult        *result,
                                                    GError             **error);

G_END_DECLS
