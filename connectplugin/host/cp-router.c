/* cp-router.c: placeholder, replaced by its unit */
#include "cp-broker-private.h"
struct _CpRouter { CpBroker *broker; };
CpRouter *cp_router_new (CpBroker *broker) { CpRouter *r = g_new0 (CpRouter, 1); r->broker = broker; return r; }
void cp_router_free (CpRouter *router) { g_free (router); }
