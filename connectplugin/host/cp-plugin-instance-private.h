/* cp-plugin-instance-private.h: what the broker's units change on a plugin
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-plugin-instance.h"

G_BEGIN_DECLS

CpPluginInstance *cp_plugin_instance_new          (const char        *runtime_id,
                                                   const char        *self_id);
void              cp_plugin_instance_set_self_version (CpPluginInstance *self,
                                                   const char        *version);
/* Where the plugin listens (its registration's `base_url`, or the URL the
 * host added it with). */
void              cp_plugin_instance_set_url      (CpPluginInstance  *self,
                                                   const char        *url);
void              cp_plugin_instance_set_managed  (CpPluginInstance  *self,
                                                   gboolean           managed);
/* A ReportHealth: updates the properties, emits ::health-changed when
 * anything changed. */
void              cp_plugin_instance_set_health   (CpPluginInstance  *self,
                                                   CpHealthState      state,
                                                   const char        *reason,
                                                   const char * const *unavailable_dependencies);
/* Whether the router sends new calls to the plugin (FALSE while it is being
 * removed or replaced). */
void              cp_plugin_instance_set_routable (CpPluginInstance  *self,
                                                   gboolean           routable);
/* CpServiceDeclaration* / CpServiceDependency* arrays (transfer none: the
 * instance takes a reference of the array). */
void              cp_plugin_instance_set_provides (CpPluginInstance  *self,
                                                   GPtrArray         *provides);
void              cp_plugin_instance_set_requires (CpPluginInstance  *self,
                                                   GPtrArray         *requires);

/* The instance that took over from this one (replace); NULL by default.
 * get: transfer full. */
void              cp_plugin_instance_set_replacement (CpPluginInstance *self,
                                                   CpPluginInstance  *replacement);
CpPluginInstance *cp_plugin_instance_get_replacement (CpPluginInstance *self);

/* The router brackets every call it forwards to the plugin with these. */
void              cp_plugin_instance_call_started  (CpPluginInstance *self);
void              cp_plugin_instance_call_finished (CpPluginInstance *self);
/* Completes when no forwarded call is in flight (at once if none is), or
 * with G_IO_ERROR_TIMED_OUT after @timeout_ms (0: no limit). */
void              cp_plugin_instance_drain_async  (CpPluginInstance   *self,
                                                   guint               timeout_ms,
                                                   GCancellable       *cancellable,
                                                   GAsyncReadyCallback callback,
                                                   gpointer            user_data);
gboolean          cp_plugin_instance_drain_finish (CpPluginInstance   *self,
                                                   GAsyncResult       *result,
                                                   GError            **error);

G_END_DECLS
