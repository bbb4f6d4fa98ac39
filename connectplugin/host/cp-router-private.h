/* cp-router-private.h: the router unit's internals
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-broker-private.h"
#include "cp-router-path.h"

G_BEGIN_DECLS

/* TEST ONLY, temporary until the registry unit (cp-registry.c) is merged:
 * makes the router treat @runtime_id as a provider of @service_type at
 * @endpoint_path when cp_registry_lookup_endpoint_path() knows nothing.
 * NULL @endpoint_path removes it. Remove together with its table once
 * registrations exist. */
void          cp_router_test_set_endpoint (CpBroker   *broker,
                                           const char *service_type,
                                           const char *runtime_id,
                                           const char *endpoint_path);

G_END_DECLS
