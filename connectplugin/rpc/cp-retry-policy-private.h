/* cp-retry-policy-private.h: a channel's retry budget, and the retries of
 * one call as the channel's units drive them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "cp-retry-policy.h"
#include "cp-client-metrics-private.h"

G_BEGIN_DECLS

/* The window over which a channel's retry budget counts: 10 one-second
 * slots. */
#define CP_RETRY_BUDGET_WINDOW_S 10

/* A channel's retry budget (cp_channel_get_retry_budget ()): the calls
 * made with a retry policy and the retries made, per second, over the
 * last CP_RETRY_BUDGET_WINDOW_S seconds. Thread-safe. */
typedef struct {
  GMutex lock;
  gint64 second;                               /* of the newest slot */
  guint  calls[CP_RETRY_BUDGET_WINDOW_S];      /* indexed by second % window */
  guint  retries[CP_RETRY_BUDGET_WINDOW_S];
} CpRetryBudget;

void      cp_retry_budget_init         (CpRetryBudget *budget);
void      cp_retry_budget_clear        (CpRetryBudget *budget);
/* A call made with a retry policy starts (its first attempt). */
void      cp_retry_budget_record_call  (CpRetryBudget *budget);
/* Takes one retry from the budget: FALSE (nothing taken) when the retries
 * of the window already reach MAX (@ratio × its calls, @min_per_second ×
 * its seconds). */
gboolean  cp_retry_budget_withdraw     (CpRetryBudget *budget,
                                        double         ratio,
                                        guint          min_per_second);

/* Called when a backoff wait ends: @cancelled when the call's cancellable
 * fired (or cp_call_retry_wait () was given a 0 delay to end it). */
typedef void (*CpCallRetryFunc) (GObject  *owner,
                                 gboolean  cancelled);

/* The retries of one logical call. Zero-initialised: no policy, one
 * attempt. */
typedef struct {
  CpRetryPolicy  *policy;        /* NULL: a single attempt */
  CpRetryBudget  *budget;        /* the channel's; the call holds the channel */
  gboolean        retry_safe;    /* idempotent, or without side effects */
  gint64          deadline;      /* monotonic µs, 0 = none */
  guint           attempts;      /* attempts begun so far */
  CpClientMetricsMethod *metrics; /* counts retries and refusals; NULL = off */

  /* A backoff wait under way. */
  GSource        *timer;
  GSource        *cancel_source;
  GObject        *owner;         /* held while waiting */
  CpCallRetryFunc func;
} CpCallRetry;

/* @policy: transfer full, nullable. */
void      cp_call_retry_init           (CpCallRetry     *retry,
                                        CpRetryPolicy   *policy,
                                        CpRetryBudget   *budget,
                                        gboolean         retry_safe,
                                        gint64           deadline);
/* Before each attempt (the first is recorded in the budget). */
void      cp_call_retry_begin_attempt  (CpCallRetry     *retry);
/* The attempt failed with @error. @not_sent: it provably never reached the
 * server (cp_channel_exchange_get_not_sent ()); @received: a response
 * message arrived (a stream is then never tried again). TRUE, with the
 * backoff in @delay_ms, when the call is to be tried again: the retry is
 * counted (policy's n-retries, the budget) and announced (retrying). */
gboolean  cp_call_retry_decide         (CpCallRetry     *retry,
                                        const char      *procedure,
                                        const GError    *error,
                                        gboolean         not_sent,
                                        gboolean         received,
                                        guint           *delay_ms);
/* Waits @delay_ms (a timer source in @context), holding @owner, then
 * calls @func (owner, FALSE); when @cancellable (nullable) fires first,
 * @func (owner, TRUE) from @context instead. */
void      cp_call_retry_wait           (CpCallRetry     *retry,
                                        GMainContext    *context,
                                        guint            delay_ms,
                                        GCancellable    *cancellable,
                                        CpCallRetryFunc  func,
                                        GObject         *owner);
gboolean  cp_call_retry_is_waiting     (CpCallRetry     *retry);
/* Ends a wait without calling its function. */
void      cp_call_retry_stop_wait      (CpCallRetry     *retry);
void      cp_call_retry_clear          (CpCallRetry     *retry);

G_END_DECLS
