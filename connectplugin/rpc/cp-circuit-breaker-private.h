/* cp-circuit-breaker-private.h: how the channel asks a CpCircuitBreaker
 * to let a call through and tells it the call's outcome
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-circuit-breaker.h"

G_BEGIN_DECLS

/* Lets a call through (see cp_circuit_breaker_allow()) and returns its
 * ticket, never 0: the period of the state it was let through in. 0 with
 * @error (`unavailable`) when the circuit refuses it. */
guint64   cp_circuit_breaker_admit   (CpCircuitBreaker *breaker,
                                      GError          **error);
/* The outcome of the call of @ticket: NULL for a success, else its error
 * (cp_circuit_breaker_is_failure() decides; a cancelled call counts for
 * nothing but gives its probe slot back). An outcome counts only in the
 * period of the state its call was let through in: that of a call let
 * through before the last transition is ignored (the probe slots of a
 * period end with it). */
void      cp_circuit_breaker_settle  (CpCircuitBreaker *breaker,
                                      guint64           ticket,
                                      const GError     *error);
/* The call of @ticket ended without an outcome (dropped before it was
 * sent): gives its probe slot back, counts for nothing. */
void      cp_circuit_breaker_abandon (CpCircuitBreaker *breaker,
                                      guint64           ticket);
/* How many times the circuit opened (CpClient's metrics). */
guint64   cp_circuit_breaker_get_n_opened (CpCircuitBreaker *breaker);

G_END_DECLS
