/* cp-retry-policy.h: when and how a failed call is tried again
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-error.h"

G_BEGIN_DECLS

#define CP_TYPE_RETRY_POLICY (cp_retry_policy_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpRetryPolicy, cp_retry_policy, CP, RETRY_POLICY, GObject)

/* Properties: max-attempts (3), initial-backoff-ms (100),
 * backoff-multiplier (2.0), max-backoff-ms (10000), jitter (0.2),
 * retryable-code-names (GStrv: unavailable, resource_exhausted),
 * budget-ratio (0.2), budget-min-per-second (10), n-retries and
 * n-throttled (read-only counters). Signal: retrying. */
CP_AVAILABLE_IN_ALL
CpRetryPolicy *cp_retry_policy_new                       (void);

CP_AVAILABLE_IN_ALL
guint          cp_retry_policy_get_max_attempts          (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_max_attempts          (CpRetryPolicy *policy,
                                                          guint          max_attempts);
CP_AVAILABLE_IN_ALL
guint          cp_retry_policy_get_initial_backoff_ms    (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_initial_backoff_ms    (CpRetryPolicy *policy,
                                                          guint          backoff_ms);
CP_AVAILABLE_IN_ALL
double         cp_retry_policy_get_backoff_multiplier    (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_backoff_multiplier    (CpRetryPolicy *policy,
                                                          double         multiplier);
CP_AVAILABLE_IN_ALL
guint          cp_retry_policy_get_max_backoff_ms        (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_max_backoff_ms        (CpRetryPolicy *policy,
                                                          guint          backoff_ms);
CP_AVAILABLE_IN_ALL
double         cp_retry_policy_get_jitter                (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_jitter                (CpRetryPolicy *policy,
                                                          double         jitter);

CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_retryable_codes       (CpRetryPolicy *policy,
                                                          const CpError *codes,
                                                          gsize          n_codes);
CP_AVAILABLE_IN_ALL
CpError       *cp_retry_policy_get_retryable_codes       (CpRetryPolicy *policy,
                                                          gsize         *n_codes);
CP_AVAILABLE_IN_ALL
gboolean       cp_retry_policy_is_retryable_code         (CpRetryPolicy *policy,
                                                          CpError        code);

CP_AVAILABLE_IN_ALL
double         cp_retry_policy_get_budget_ratio          (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_budget_ratio          (CpRetryPolicy *policy,
                                                          double         ratio);
CP_AVAILABLE_IN_ALL
guint          cp_retry_policy_get_budget_min_per_second (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
void           cp_retry_policy_set_budget_min_per_second (CpRetryPolicy *policy,
                                                          guint          per_second);

CP_AVAILABLE_IN_ALL
guint          cp_retry_policy_get_backoff_ms            (CpRetryPolicy *policy,
                                                          guint          retry);

CP_AVAILABLE_IN_ALL
guint64        cp_retry_policy_get_n_retries             (CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
guint64        cp_retry_policy_get_n_throttled           (CpRetryPolicy *policy);

G_END_DECLS
