/* cp-broker-capabilities-private.h: what tests see of the capability broker
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-broker-private.h"

G_BEGIN_DECLS

/* Grants kept per plugin; a request past it drops that plugin's oldest. */
#define CP_BROKER_MAX_GRANTS_PER_PLUGIN 32

/* Moves the broker's grant clock @seconds ahead (tests of expiry). */
void   cp_broker_capabilities_advance_clock (CpBrokerCapabilities *caps,
                                             gint64                seconds);
/* How many grants are held (expired ones not swept yet included). */
guint  cp_broker_capabilities_get_n_grants  (CpBrokerCapabilities *caps);

G_END_DECLS
