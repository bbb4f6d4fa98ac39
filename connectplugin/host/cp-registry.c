/* cp-registry.c: placeholder, replaced by its unit */
#include "cp-broker-private.h"
struct _CpRegistry { CpBroker *broker; };
CpRegistry *cp_registry_new (CpBroker *broker) { CpRegistry *r = g_new0 (CpRegistry, 1); r->broker = broker; return r; }
void cp_registry_plugin_gone (CpRegistry *registry, CpPluginInstance *instance) {}
void cp_registry_health_changed (CpRegistry *registry, CpPluginInstance *instance) {}
const char *cp_registry_lookup_endpoint_path (CpRegistry *registry, const char *service_type, const char *runtime_id) { return NULL; }
void cp_registry_free (CpRegistry *registry) { g_free (registry); }
void cp_broker_allow_service (CpBroker *broker, const char *self_id, const char *service_type) { g_return_if_reached (); }
void cp_broker_set_selection_strategy (CpBroker *broker, const char *service_type, CpSelectionStrategy strategy) { g_return_if_reached (); }
gboolean cp_registry_has_provider (CpRegistry *registry, const char *service_type, const char *min_version) { return FALSE; }
