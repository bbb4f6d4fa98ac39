/* cp-circuit-breaker.h: fails calls fast while a server keeps failing
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"

G_BEGIN_DECLS

/**
 * CpCircuitState:
 * @CP_CIRCUIT_STATE_CLOSED: calls go through; consecutive failures are
 *   counted
 * @CP_CIRCUIT_STATE_OPEN: calls fail at once with `unavailable`, until the
 *   open timeout has passed
 * @CP_CIRCUIT_STATE_HALF_OPEN: a few probe calls go through; their
 *   successes close the circuit, a failure opens it again
 *
 * The states of a [class@CircuitBreaker].
 */
typedef enum {
  CP_CIRCUIT_STATE_CLOSED,
  CP_CIRCUIT_STATE_OPEN,
  CP_CIRCUIT_STATE_HALF_OPEN,
} CpCircuitState;

#define CP_TYPE_CIRCUIT_BREAKER (cp_circuit_breaker_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpCircuitBreaker, cp_circuit_breaker, CP, CIRCUIT_BREAKER, GObject)

/* Properties: failure-threshold (5), success-threshold (2),
 * open-timeout-ms (10000), state (read-only). Signal: state-changed. */
CP_AVAILABLE_IN_ALL
CpCircuitBreaker *cp_circuit_breaker_new                   (void);

CP_AVAILABLE_IN_ALL
guint             cp_circuit_breaker_get_failure_threshold (CpCircuitBreaker *breaker);
CP_AVAILABLE_IN_ALL
void              cp_circuit_breaker_set_failure_threshold (CpCircuitBreaker *breaker,
                                                            guint             threshold);
CP_AVAILABLE_IN_ALL
guint             cp_circuit_breaker_get_success_threshold (CpCircuitBreaker *breaker);
CP_AVAILABLE_IN_ALL
void              cp_circuit_breaker_set_success_threshold (CpCircuitBreaker *breaker,
                                                            guint             threshold);
CP_AVAILABLE_IN_ALL
guint             cp_circuit_breaker_get_open_timeout_ms   (CpCircuitBreaker *breaker);
CP_AVAILABLE_IN_ALL
void              cp_circuit_breaker_set_open_timeout_ms   (CpCircuitBreaker *breaker,
                                                            guint             timeout_ms);
CP_AVAILABLE_IN_ALL
CpCircuitState    cp_circuit_breaker_get_state             (CpCircuitBreaker *breaker);

CP_AVAILABLE_IN_ALL
gboolean          cp_circuit_breaker_allow                 (CpCircuitBreaker *breaker,
                                                            GError          **error);
CP_AVAILABLE_IN_ALL
void              cp_circuit_breaker_record                (CpCircuitBreaker *breaker,
                                                            const GError     *error);
CP_AVAILABLE_IN_ALL
gboolean          cp_circuit_breaker_is_failure            (const GError     *error);

CP_AVAILABLE_IN_ALL
void              cp_circuit_breaker_reset                 (CpCircuitBreaker *breaker);
CP_AVAILABLE_IN_ALL
void              cp_circuit_breaker_force_open            (CpCircuitBreaker *breaker);
CP_AVAILABLE_IN_ALL
void              cp_circuit_breaker_force_half_open       (CpCircuitBreaker *breaker);

G_END_DECLS
