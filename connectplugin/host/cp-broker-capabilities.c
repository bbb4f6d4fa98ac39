/* cp-broker-capabilities.c: placeholder, replaced by its unit */
#include "cp-broker-private.h"
struct _CpBrokerCapabilities { CpBroker *broker; };
CpBrokerCapabilities *cp_broker_capabilities_new (CpBroker *broker) { CpBrokerCapabilities *c = g_new0 (CpBrokerCapabilities, 1); c->broker = broker; return c; }
void cp_broker_capabilities_plugin_gone (CpBrokerCapabilities *caps, CpPluginInstance *instance) {}
void cp_broker_capabilities_free (CpBrokerCapabilities *caps) { g_free (caps); }
void cp_broker_add_capability (CpBroker *broker, const char *capability_type, const char *version, CpSkeleton *skeleton) { g_return_if_reached (); }
void cp_broker_remove_capability (CpBroker *broker, const char *capability_type) { g_return_if_reached (); }
void cp_broker_allow_capability (CpBroker *broker, const char *self_id, const char *capability_type) { g_return_if_reached (); }
