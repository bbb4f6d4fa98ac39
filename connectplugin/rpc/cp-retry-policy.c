/* cp-retry-policy.c: when and how a failed call is tried again; the retry
 * budget of a channel; the retries of one call (cp-retry-policy-private.h)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-retry-policy-private.h"
#include "cp-error.h"

/**
 * CpRetryPolicy:
 *
 * Tries a failed call again, after a backoff, when that is safe and may
 * help: the transient failures of a server that is restarting or
 * overloaded.
 *
 * Give a policy to a [class@Channel] ([property@Channel:retry-policy]), a
 * [class@Client] ([property@Client:retry-policy], set on every channel it
 * connects with) or one call ([property@CallOptions:retry-policy], which
 * wins over the channel's). Calls without a policy are made once.
 *
 * A failed attempt is tried again when all of these hold:
 *
 * - fewer than [property@RetryPolicy:max-attempts] attempts were made (3
 *   by default, counting the first);
 * - the error's code is one of [property@RetryPolicy:retryable-code-names]
 *   (`unavailable` and `resource_exhausted` by default) **and** the call may
 *   be sent twice: its method is declared `idempotency_level =
 *   IDEMPOTENT` or `NO_SIDE_EFFECTS` (generated proxies know it from the
 *   proto), the call is marked [property@CallOptions:idempotent], or it is
 *   sent as HTTP GET ([property@CallOptions:use-get]); **or** the attempt
 *   provably never reached the server, whatever the method and the code:
 *   the connection could not be made (refused, no such socket, host or
 *   network unreachable, name not resolved), before any byte of the
 *   request was written;
 * - the call was not cancelled, and the backoff ends before the call's
 *   deadline: the deadline (from [property@CallOptions:timeout-ms],
 *   [property@CallOptions:deadline] or [property@Channel:timeout-ms])
 *   counts from the first attempt and is never extended; when it leaves
 *   no room for another attempt, the call fails with the last attempt's
 *   error;
 * - streams: no response message has arrived (a server or bidirectional
 *   stream that delivered a message is never tried again; client and
 *   bidirectional streams can be re-sent because their whole request body
 *   is buffered before it is sent, see [class@RequestStream]);
 * - the channel's retry budget allows one more retry (below).
 *
 * A call refused by the channel's [class@CircuitBreaker] is not tried
 * again: each attempt asks the breaker, and a refusal ends the call.
 *
 * The backoff before retry n (1 for the second attempt) is
 * [property@RetryPolicy:initial-backoff-ms] × [property@RetryPolicy:backoff-multiplier]^(n−1)
 * (100 ms, 200 ms, 400 ms, …), at most [property@RetryPolicy:max-backoff-ms]
 * (10 s), then spread by ±[property@RetryPolicy:jitter] (±20 %: a uniform
 * factor between 0.8 and 1.2, still at most the maximum) so that clients
 * failed by the same event do not come back together. The wait is a timer
 * source in the call's [struct@GLib.MainContext] (a blocking call's private
 * one), never a sleep; cancelling the call ends it at once with
 * %G_IO_ERROR_CANCELLED.
 *
 * The retry budget keeps a failing server from being flooded: over the
 * last 10 seconds, the retries a channel makes may not exceed the larger
 * of [property@RetryPolicy:budget-ratio] (0.2) times the calls made with a
 * retry policy and [property@RetryPolicy:budget-min-per-second] (10) per
 * second, that is 100 in 10 s; Finagle's retry budget, with the ratio and
 * the floor as a maximum instead of a sum. A retry refused by the budget
 * ends the call with its last error, and is counted in
 * [property@RetryPolicy:n-throttled]. The budget belongs to the channel:
 * one policy may serve several channels, each with a budget of its own.
 *
 * Unlike connect-plugin-go, whose retry interceptor also retries
 * `internal` and `unknown` errors of any method, a policy retries only the
 * codes it lists and only calls that may be sent twice: a server that
 * failed with `internal` may have done half the work. Add codes with
 * [method@ConnectPlugin.RetryPolicy.set_retryable_codes].
 *
 * Interceptors ([class@ClientInterceptor]) see one call whatever the
 * number of attempts: they run before the first and are told the final
 * outcome; [method@ConnectPlugin.ClientCall.get_attempts] says how many
 * attempts were made.
 *
 * Threading: like a [class@CircuitBreaker], a policy belongs to no main
 * context and may serve channels in any thread: its settings are guarded
 * by a lock (its counters too), and
 * [signal@ConnectPlugin.RetryPolicy::retrying] is emitted in the thread of
 * the call that is retried.
 */

#define DEFAULT_MAX_ATTEMPTS           3
#define DEFAULT_INITIAL_BACKOFF_MS     100
#define DEFAULT_BACKOFF_MULTIPLIER     2.0
#define DEFAULT_MAX_BACKOFF_MS         10000
#define DEFAULT_JITTER                 0.2
#define DEFAULT_BUDGET_RATIO           0.2
#define DEFAULT_BUDGET_MIN_PER_SECOND  10

#define CODE_BIT(code) (1u << (guint) (code))
#define DEFAULT_RETRYABLE_CODES (CODE_BIT (CP_ERROR_UNAVAILABLE) | \
                                 CODE_BIT (CP_ERROR_RESOURCE_EXHAUSTED))

struct _CpRetryPolicy
{
  GObject parent_instance;

  GMutex lock;
  guint max_attempts;
  guint initial_backoff_ms;
  double backoff_multiplier;
  guint max_backoff_ms;
  double jitter;
  guint32 retryable;            /* CODE_BIT of each retryable CpError */
  double budget_ratio;
  guint budget_min_per_second;

  guint64 n_retries;            /* under the lock too */
  guint64 n_throttled;
};

G_DEFINE_FINAL_TYPE (CpRetryPolicy, cp_retry_policy, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_MAX_ATTEMPTS,
  PROP_INITIAL_BACKOFF_MS,
  PROP_BACKOFF_MULTIPLIER,
  PROP_MAX_BACKOFF_MS,
  PROP_JITTER,
  PROP_RETRYABLE_CODE_NAMES,
  PROP_BUDGET_RATIO,
  PROP_BUDGET_MIN_PER_SECOND,
  PROP_N_RETRIES,
  PROP_N_THROTTLED,
  N_PROPS
};

enum {
  SIGNAL_RETRYING,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* ------------------------------------------------------------------------ */
/* Settings                                                                  */

static void
set_uint (CpRetryPolicy *self,
          guint         *field,
          guint          value,
          guint          prop_id)
{
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = *field != value;
  *field = value;
  g_mutex_unlock (&self->lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

static guint
get_uint (CpRetryPolicy *self,
          guint         *field)
{
  guint value;

  g_mutex_lock (&self->lock);
  value = *field;
  g_mutex_unlock (&self->lock);
  return value;
}

static void
set_double (CpRetryPolicy *self,
            double        *field,
            double         value,
            guint          prop_id)
{
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = *field != value;
  *field = value;
  g_mutex_unlock (&self->lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

static double
get_double (CpRetryPolicy *self,
            double        *field)
{
  double value;

  g_mutex_lock (&self->lock);
  value = *field;
  g_mutex_unlock (&self->lock);
  return value;
}

/**
 * cp_retry_policy_get_max_attempts:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:max-attempts].
 *
 * Returns: the most attempts a call makes, the first one included
 */
guint
cp_retry_policy_get_max_attempts (CpRetryPolicy *policy)
{
  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 1);

  return get_uint (policy, &policy->max_attempts);
}

/**
 * cp_retry_policy_set_max_attempts:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @max_attempts: the most attempts a call makes, the first one included
 *   (at least 1; 1 never retries)
 *
 * Sets [property@RetryPolicy:max-attempts].
 */
void
cp_retry_policy_set_max_attempts (CpRetryPolicy *policy,
                                  guint          max_attempts)
{
  g_return_if_fail (CP_IS_RETRY_POLICY (policy));
  g_return_if_fail (max_attempts >= 1);

  set_uint (policy, &policy->max_attempts, max_attempts, PROP_MAX_ATTEMPTS);
}

/**
 * cp_retry_policy_get_initial_backoff_ms:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:initial-backoff-ms].
 *
 * Returns: the backoff before the first retry, in milliseconds
 */
guint
cp_retry_policy_get_initial_backoff_ms (CpRetryPolicy *policy)
{
  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0);

  return get_uint (policy, &policy->initial_backoff_ms);
}

/**
 * cp_retry_policy_set_initial_backoff_ms:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @backoff_ms: the backoff before the first retry, in milliseconds
 *
 * Sets [property@RetryPolicy:initial-backoff-ms].
 */
void
cp_retry_policy_set_initial_backoff_ms (CpRetryPolicy *policy,
                                        guint          backoff_ms)
{
  g_return_if_fail (CP_IS_RETRY_POLICY (policy));

  set_uint (policy, &policy->initial_backoff_ms, backoff_ms, PROP_INITIAL_BACKOFF_MS);
}

/**
 * cp_retry_policy_get_backoff_multiplier:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:backoff-multiplier].
 *
 * Returns: the factor between the backoffs of two retries in a row
 */
double
cp_retry_policy_get_backoff_multiplier (CpRetryPolicy *policy)
{
  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 1.0);

  return get_double (policy, &policy->backoff_multiplier);
}

/**
 * cp_retry_policy_set_backoff_multiplier:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @multiplier: the factor between the backoffs of two retries in a row
 *   (at least 1.0)
 *
 * Sets [property@RetryPolicy:backoff-multiplier].
 */
void
cp_retry_policy_set_backoff_multiplier (CpRetryPolicy *policy,
                                        double         multiplier)
{
  g_return_if_fail (CP_IS_RETRY_POLICY (policy));
  g_return_if_fail (multiplier >= 1.0 && multiplier <= 1000.0);

  set_double (policy, &policy->backoff_multiplier, multiplier, PROP_BACKOFF_MULTIPLIER);
}

/**
 * cp_retry_policy_get_max_backoff_ms:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:max-backoff-ms].
 *
 * Returns: the longest backoff, in milliseconds
 */
guint
cp_retry_policy_get_max_backoff_ms (CpRetryPolicy *policy)
{
  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0);

  return get_uint (policy, &policy->max_backoff_ms);
}

/**
 * cp_retry_policy_set_max_backoff_ms:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @backoff_ms: the longest backoff, in milliseconds, jitter included
 *
 * Sets [property@RetryPolicy:max-backoff-ms].
 */
void
cp_retry_policy_set_max_backoff_ms (CpRetryPolicy *policy,
                                    guint          backoff_ms)
{
  g_return_if_fail (CP_IS_RETRY_POLICY (policy));

  set_uint (policy, &policy->max_backoff_ms, backoff_ms, PROP_MAX_BACKOFF_MS);
}

/**
 * cp_retry_policy_get_jitter:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:jitter].
 *
 * Returns: how far a backoff is spread, as a fraction of it
 */
double
cp_retry_policy_get_jitter (CpRetryPolicy *policy)
{
  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0.0);

  return get_double (policy, &policy->jitter);
}

/**
 * cp_retry_policy_set_jitter:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @jitter: how far a backoff is spread, as a fraction of it, between 0.0
 *   (exact backoffs) and 1.0 (anything between 0 and twice the backoff)
 *
 * Sets [property@RetryPolicy:jitter].
 */
void
cp_retry_policy_set_jitter (CpRetryPolicy *policy,
                            double         jitter)
{
  g_return_if_fail (CP_IS_RETRY_POLICY (policy));
  g_return_if_fail (jitter >= 0.0 && jitter <= 1.0);

  set_double (policy, &policy->jitter, jitter, PROP_JITTER);
}

static gboolean
code_is_valid (CpError code)
{
  return code >= CP_ERROR_CANCELED && code <= CP_ERROR_UNAUTHENTICATED;
}

static void
set_retryable (CpRetryPolicy *self,
               guint32        retryable)
{
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = self->retryable != retryable;
  self->retryable = retryable;
  g_mutex_unlock (&self->lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RETRYABLE_CODE_NAMES]);
}

/**
 * cp_retry_policy_set_retryable_codes:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @codes: (array length=n_codes) (nullable): the Connect codes whose
 *   failures may be tried again
 * @n_codes: the number of @codes
 *
 * Sets [property@RetryPolicy:retryable-code-names], replacing the codes set
 * before (`unavailable` and `resource_exhausted` by default). An empty
 * list retries only the attempts that never reached the server. Only the
 * calls that may be sent twice are retried for these codes, whatever they
 * are.
 */
void
cp_retry_policy_set_retryable_codes (CpRetryPolicy *policy,
                                     const CpError *codes,
                                     gsize          n_codes)
{
  guint32 retryable = 0;

  g_return_if_fail (CP_IS_RETRY_POLICY (policy));
  g_return_if_fail (codes != NULL || n_codes == 0);

  for (gsize i = 0; i < n_codes; i++)
    {
      g_return_if_fail (code_is_valid (codes[i]));
      retryable |= CODE_BIT (codes[i]);
    }
  set_retryable (policy, retryable);
}

/**
 * cp_retry_policy_get_retryable_codes:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @n_codes: (out): return location for the number of codes
 *
 * Gets [property@RetryPolicy:retryable-code-names], in increasing order.
 *
 * Returns: (array length=n_codes) (transfer full) (nullable): the codes
 *   whose failures may be tried again; %NULL when there are none
 */
CpError *
cp_retry_policy_get_retryable_codes (CpRetryPolicy *policy,
                                     gsize         *n_codes)
{
  guint32 retryable;
  CpError *codes;
  gsize n = 0;

  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), NULL);
  g_return_val_if_fail (n_codes != NULL, NULL);

  g_mutex_lock (&policy->lock);
  retryable = policy->retryable;
  g_mutex_unlock (&policy->lock);

  *n_codes = 0;
  if (retryable == 0)
    return NULL;
  codes = g_new (CpError, CP_ERROR_UNAUTHENTICATED);
  for (CpError code = CP_ERROR_CANCELED; code <= CP_ERROR_UNAUTHENTICATED; code++)
    if (retryable & CODE_BIT (code))
      codes[n++] = code;
  *n_codes = n;
  return codes;
}

/**
 * cp_retry_policy_is_retryable_code:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @code: a Connect code
 *
 * Whether @code is one of [property@RetryPolicy:retryable-code-names].
 *
 * Returns: %TRUE when failures with @code may be tried again
 */
gboolean
cp_retry_policy_is_retryable_code (CpRetryPolicy *policy,
                                   CpError        code)
{
  gboolean retryable;

  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), FALSE);

  if (!code_is_valid (code))
    return FALSE;
  g_mutex_lock (&policy->lock);
  retryable = (policy->retryable & CODE_BIT (code)) != 0;
  g_mutex_unlock (&policy->lock);
  return retryable;
}

/**
 * cp_retry_policy_get_budget_ratio:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:budget-ratio].
 *
 * Returns: the retries a channel may make per call made, over 10 s
 */
double
cp_retry_policy_get_budget_ratio (CpRetryPolicy *policy)
{
  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0.0);

  return get_double (policy, &policy->budget_ratio);
}

/**
 * cp_retry_policy_set_budget_ratio:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @ratio: the retries a channel may make per call made, over the last
 *   10 s (0.2: retries add at most 20 % to the calls)
 *
 * Sets [property@RetryPolicy:budget-ratio].
 */
void
cp_retry_policy_set_budget_ratio (CpRetryPolicy *policy,
                                  double         ratio)
{
  g_return_if_fail (CP_IS_RETRY_POLICY (policy));
  g_return_if_fail (ratio >= 0.0 && ratio <= 1000.0);

  set_double (policy, &policy->budget_ratio, ratio, PROP_BUDGET_RATIO);
}

/**
 * cp_retry_policy_get_budget_min_per_second:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:budget-min-per-second].
 *
 * Returns: the retries per second a channel may always make
 */
guint
cp_retry_policy_get_budget_min_per_second (CpRetryPolicy *policy)
{
  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0);

  return get_uint (policy, &policy->budget_min_per_second);
}

/**
 * cp_retry_policy_set_budget_min_per_second:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @per_second: the retries per second a channel may make whatever the
 *   number of calls (10 a second: 100 over the budget's 10 s)
 *
 * Sets [property@RetryPolicy:budget-min-per-second].
 */
void
cp_retry_policy_set_budget_min_per_second (CpRetryPolicy *policy,
                                           guint          per_second)
{
  g_return_if_fail (CP_IS_RETRY_POLICY (policy));

  set_uint (policy, &policy->budget_min_per_second, per_second, PROP_BUDGET_MIN_PER_SECOND);
}

/**
 * cp_retry_policy_get_backoff_ms:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 * @retry: the retry, from 1 (the wait before the second attempt)
 *
 * Computes the backoff before retry @retry, before jitter:
 * [property@RetryPolicy:initial-backoff-ms] ×
 * [property@RetryPolicy:backoff-multiplier]^(@retry − 1), at most
 * [property@RetryPolicy:max-backoff-ms].
 *
 * Returns: the backoff in milliseconds
 */
guint
cp_retry_policy_get_backoff_ms (CpRetryPolicy *policy,
                                guint          retry)
{
  double backoff;
  guint max;

  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0);
  g_return_val_if_fail (retry >= 1, 0);

  g_mutex_lock (&policy->lock);
  max = policy->max_backoff_ms;
  backoff = policy->initial_backoff_ms;
  /* multiplier^(retry - 1), stopping at the maximum. */
  for (guint i = 1; i < retry && backoff < max; i++)
    backoff *= policy->backoff_multiplier;
  g_mutex_unlock (&policy->lock);
  return backoff >= max ? max : (guint) backoff;
}

/**
 * cp_retry_policy_get_n_retries:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:n-retries].
 *
 * Returns: how many retries calls made under @policy so far
 */
guint64
cp_retry_policy_get_n_retries (CpRetryPolicy *policy)
{
  guint64 n;

  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0);

  g_mutex_lock (&policy->lock);
  n = policy->n_retries;
  g_mutex_unlock (&policy->lock);
  return n;
}

/**
 * cp_retry_policy_get_n_throttled:
 * @policy: a [class@ConnectPlugin.RetryPolicy]
 *
 * Gets [property@RetryPolicy:n-throttled].
 *
 * Returns: how many retries the budget refused so far
 */
guint64
cp_retry_policy_get_n_throttled (CpRetryPolicy *policy)
{
  guint64 n;

  g_return_val_if_fail (CP_IS_RETRY_POLICY (policy), 0);

  g_mutex_lock (&policy->lock);
  n = policy->n_throttled;
  g_mutex_unlock (&policy->lock);
  return n;
}

/* ------------------------------------------------------------------------ */
/* The budget of a channel                                                   */

void
cp_retry_budget_init (CpRetryBudget *budget)
{
  memset (budget, 0, sizeof *budget);
  g_mutex_init (&budget->lock);
}

void
cp_retry_budget_clear (CpRetryBudget *budget)
{
  g_mutex_clear (&budget->lock);
}

/* Under the lock: moves the window to the current second, emptying the
 * slots of the seconds that passed. */
static void
budget_advance (CpRetryBudget *budget)
{
  gint64 now = g_get_monotonic_time () / G_USEC_PER_SEC;
  gint64 gap = now - budget->second;

  if (gap <= 0)
    return;
  if (gap >= CP_RETRY_BUDGET_WINDOW_S)
    {
      memset (budget->calls, 0, sizeof budget->calls);
      memset (budget->retries, 0, sizeof budget->retries);
    }
  else
    for (gint64 s = budget->second + 1; s <= now; s++)
      {
        budget->calls[s % CP_RETRY_BUDGET_WINDOW_S] = 0;
        budget->retries[s % CP_RETRY_BUDGET_WINDOW_S] = 0;
      }
  budget->second = now;
}

void
cp_retry_budget_record_call (CpRetryBudget *budget)
{
  g_mutex_lock (&budget->lock);
  budget_advance (budget);
  budget->calls[budget->second % CP_RETRY_BUDGET_WINDOW_S]++;
  g_mutex_unlock (&budget->lock);
}

gboolean
cp_retry_budget_withdraw (CpRetryBudget *budget,
                          double         ratio,
                          guint          min_per_second)
{
  guint64 calls = 0, retries = 0;
  double allowed;
  gboolean ok;

  g_mutex_lock (&budget->lock);
  budget_advance (budget);
  for (guint i = 0; i < CP_RETRY_BUDGET_WINDOW_S; i++)
    {
      calls += budget->calls[i];
      retries += budget->retries[i];
    }
  allowed = MAX (ratio * calls, (double) min_per_second * CP_RETRY_BUDGET_WINDOW_S);
  ok = (double) (retries + 1) <= allowed;
  if (ok)
    budget->retries[budget->second % CP_RETRY_BUDGET_WINDOW_S]++;
  g_mutex_unlock (&budget->lock);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* The retries of one call                                                   */

void
cp_call_retry_init (CpCallRetry   *retry,
                    CpRetryPolicy *policy,
                    CpRetryBudget *budget,
                    gboolean       retry_safe,
                    gint64         deadline)
{
  memset (retry, 0, sizeof *retry);
  retry->policy = policy;
  retry->budget = budget;
  retry->retry_safe = retry_safe;
  retry->deadline = deadline;
}

void
cp_call_retry_begin_attempt (CpCallRetry *retry)
{
  if (++retry->attempts == 1 && retry->policy != NULL)
    cp_retry_budget_record_call (retry->budget);
}

/* The jittered backoff before retry @n. */
static guint
backoff_with_jitter (CpRetryPolicy *policy,
                     guint          n)
{
  double base = cp_retry_policy_get_backoff_ms (policy, n);
  double jitter = cp_retry_policy_get_jitter (policy);
  double max = cp_retry_policy_get_max_backoff_ms (policy);
  double delay = base;

  if (jitter > 0.0 && base > 0.0)
    delay = base * g_random_double_range (1.0 - jitter, 1.0 + jitter);
  return (guint) CLAMP (delay, 0.0, max);
}

gboolean
cp_call_retry_decide (CpCallRetry  *retry,
                      const char   *procedure,
                      const GError *error,
                      gboolean      not_sent,
                      gboolean      received,
                      guint        *delay_ms)
{
  CpRetryPolicy *policy = retry->policy;
  double ratio;
  guint per_second;
  guint delay;

  if (policy == NULL || error == NULL || received ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
      retry->attempts >= cp_retry_policy_get_max_attempts (policy))
    return FALSE;
  if (!not_sent &&
      (!retry->retry_safe || error->domain != CP_ERROR ||
       !cp_retry_policy_is_retryable_code (policy, error->code)))
    return FALSE;

  delay = backoff_with_jitter (policy, retry->attempts);
  /* No wait past the deadline: the last error is the call's. */
  if (retry->deadline > 0 &&
      g_get_monotonic_time () + (gint64) delay * 1000 >= retry->deadline)
    return FALSE;

  g_mutex_lock (&policy->lock);
  ratio = policy->budget_ratio;
  per_second = policy->budget_min_per_second;
  g_mutex_unlock (&policy->lock);
  if (!cp_retry_budget_withdraw (retry->budget, ratio, per_second))
    {
      g_mutex_lock (&policy->lock);
      policy->n_throttled++;
      g_mutex_unlock (&policy->lock);
      if (retry->metrics != NULL)
        cp_client_metrics_add (retry->metrics->throttled, 1);
      g_debug ("%s: retry budget exhausted, not retrying after: %s", procedure, error->message);
      return FALSE;
    }

  g_mutex_lock (&policy->lock);
  policy->n_retries++;
  g_mutex_unlock (&policy->lock);
  if (retry->metrics != NULL)
    cp_client_metrics_add (retry->metrics->retries, 1);
  g_signal_emit (policy, signals[SIGNAL_RETRYING], 0, procedure, retry->attempts + 1, delay, error);
  *delay_ms = delay;
  return TRUE;
}

static void
wait_over (CpCallRetry *retry,
           gboolean     cancelled)
{
  GObject *owner = g_steal_pointer (&retry->owner);
  CpCallRetryFunc func = retry->func;

  cp_call_retry_stop_wait (retry);
  func (owner, cancelled);
  g_object_unref (owner);
}

static gboolean
on_backoff_over (gpointer user_data)
{
  wait_over (user_data, FALSE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_backoff_cancelled (GCancellable *cancellable,
                      gpointer      user_data)
{
  wait_over (user_data, TRUE);
  return G_SOURCE_REMOVE;
}

void
cp_call_retry_wait (CpCallRetry     *retry,
                    GMainContext    *context,
                    guint            delay_ms,
                    GCancellable    *cancellable,
                    CpCallRetryFunc  func,
                    GObject         *owner)
{
  g_assert (retry->owner == NULL);

  retry->owner = g_object_ref (owner);
  retry->func = func;
  retry->timer = g_timeout_source_new (delay_ms);
  g_source_set_callback (retry->timer, on_backoff_over, retry, NULL);
  g_source_set_static_name (retry->timer, "[connectplugin] retry backoff");
  g_source_attach (retry->timer, context);
  if (cancellable != NULL)
    {
      retry->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (retry->cancel_source, G_SOURCE_FUNC (on_backoff_cancelled),
                             retry, NULL);
      g_source_set_static_name (retry->cancel_source, "[connectplugin] retry cancelled");
      g_source_attach (retry->cancel_source, context);
    }
}

gboolean
cp_call_retry_is_waiting (CpCallRetry *retry)
{
  return retry->timer != NULL;
}

static void
destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

void
cp_call_retry_stop_wait (CpCallRetry *retry)
{
  GObject *owner = g_steal_pointer (&retry->owner);

  destroy_source (&retry->timer);
  destroy_source (&retry->cancel_source);
  retry->func = NULL;
  g_clear_object (&owner);
}

void
cp_call_retry_clear (CpCallRetry *retry)
{
  cp_call_retry_stop_wait (retry);
  g_clear_object (&retry->policy);
}

/* ------------------------------------------------------------------------ */
/* The object                                                                */

static void
cp_retry_policy_finalize (GObject *object)
{
  CpRetryPolicy *self = CP_RETRY_POLICY (object);

  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (cp_retry_policy_parent_class)->finalize (object);
}

static GStrv
dup_code_names (CpRetryPolicy *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  gsize n = 0;
  g_autofree CpError *codes = cp_retry_policy_get_retryable_codes (self, &n);

  for (gsize i = 0; i < n; i++)
    g_strv_builder_add (builder, cp_error_code_to_string (codes[i]));
  return g_strv_builder_end (builder);
}

static void
set_code_names (CpRetryPolicy      *self,
                const char * const *names)
{
  guint32 retryable = 0;

  for (gsize i = 0; names != NULL && names[i] != NULL; i++)
    {
      CpError code;

      if (!cp_error_code_from_string (names[i], &code) || !code_is_valid (code))
        {
          g_critical ("CpRetryPolicy:retryable-code-names: \"%s\" is not a Connect code", names[i]);
          return;
        }
      retryable |= CODE_BIT (code);
    }
  set_retryable (self, retryable);
}

static void
cp_retry_policy_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  CpRetryPolicy *self = CP_RETRY_POLICY (object);

  switch (prop_id)
    {
    case PROP_MAX_ATTEMPTS:
      g_value_set_uint (value, cp_retry_policy_get_max_attempts (self));
      break;
    case PROP_INITIAL_BACKOFF_MS:
      g_value_set_uint (value, cp_retry_policy_get_initial_backoff_ms (self));
      break;
    case PROP_BACKOFF_MULTIPLIER:
      g_value_set_double (value, cp_retry_policy_get_backoff_multiplier (self));
      break;
    case PROP_MAX_BACKOFF_MS:
      g_value_set_uint (value, cp_retry_policy_get_max_backoff_ms (self));
      break;
    case PROP_JITTER:
      g_value_set_double (value, cp_retry_policy_get_jitter (self));
      break;
    case PROP_RETRYABLE_CODE_NAMES:
      g_value_take_boxed (value, dup_code_names (self));
      break;
    case PROP_BUDGET_RATIO:
      g_value_set_double (value, cp_retry_policy_get_budget_ratio (self));
      break;
    case PROP_BUDGET_MIN_PER_SECOND:
      g_value_set_uint (value, cp_retry_policy_get_budget_min_per_second (self));
      break;
    case PROP_N_RETRIES:
      g_value_set_uint64 (value, cp_retry_policy_get_n_retries (self));
      break;
    case PROP_N_THROTTLED:
      g_value_set_uint64 (value, cp_retry_policy_get_n_throttled (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_retry_policy_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  CpRetryPolicy *self = CP_RETRY_POLICY (object);

  switch (prop_id)
    {
    case PROP_MAX_ATTEMPTS:
      cp_retry_policy_set_max_attempts (self, g_value_get_uint (value));
      break;
    case PROP_INITIAL_BACKOFF_MS:
      cp_retry_policy_set_initial_backoff_ms (self, g_value_get_uint (value));
      break;
    case PROP_BACKOFF_MULTIPLIER:
      cp_retry_policy_set_backoff_multiplier (self, g_value_get_double (value));
      break;
    case PROP_MAX_BACKOFF_MS:
      cp_retry_policy_set_max_backoff_ms (self, g_value_get_uint (value));
      break;
    case PROP_JITTER:
      cp_retry_policy_set_jitter (self, g_value_get_double (value));
      break;
    case PROP_RETRYABLE_CODE_NAMES:
      set_code_names (self, g_value_get_boxed (value));
      break;
    case PROP_BUDGET_RATIO:
      cp_retry_policy_set_budget_ratio (self, g_value_get_double (value));
      break;
    case PROP_BUDGET_MIN_PER_SECOND:
      cp_retry_policy_set_budget_min_per_second (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_retry_policy_class_init (CpRetryPolicyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags settable = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  GParamFlags counter = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = cp_retry_policy_finalize;
  object_class->get_property = cp_retry_policy_get_property;
  object_class->set_property = cp_retry_policy_set_property;

  /**
   * CpRetryPolicy:max-attempts:
   *
   * The most attempts a call makes, the first one included; 3 by default
   * (the wire contract's). 1 never retries.
   */
  properties[PROP_MAX_ATTEMPTS] =
    g_param_spec_uint ("max-attempts", NULL, NULL, 1, G_MAXUINT, DEFAULT_MAX_ATTEMPTS, settable);

  /**
   * CpRetryPolicy:initial-backoff-ms:
   *
   * The backoff before the first retry, in milliseconds (before jitter);
   * 100 by default.
   */
  properties[PROP_INITIAL_BACKOFF_MS] =
    g_param_spec_uint ("initial-backoff-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_INITIAL_BACKOFF_MS, settable);

  /**
   * CpRetryPolicy:backoff-multiplier:
   *
   * The factor between the backoffs of two retries in a row; 2.0 by
   * default (the backoff doubles).
   */
  properties[PROP_BACKOFF_MULTIPLIER] =
    g_param_spec_double ("backoff-multiplier", NULL, NULL, 1.0, 1000.0,
                         DEFAULT_BACKOFF_MULTIPLIER, settable);

  /**
   * CpRetryPolicy:max-backoff-ms:
   *
   * The longest backoff, in milliseconds, jitter included; 10000 (10 s) by
   * default.
   */
  properties[PROP_MAX_BACKOFF_MS] =
    g_param_spec_uint ("max-backoff-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_MAX_BACKOFF_MS, settable);

  /**
   * CpRetryPolicy:jitter:
   *
   * How far each backoff is spread at random, as a fraction of it: 0.2
   * (the default) waits between 0.8 and 1.2 times the backoff, uniformly;
   * 0.0 waits exactly the backoff. The result never exceeds
   * [property@RetryPolicy:max-backoff-ms].
   */
  properties[PROP_JITTER] =
    g_param_spec_double ("jitter", NULL, NULL, 0.0, 1.0, DEFAULT_JITTER, settable);

  /**
   * CpRetryPolicy:retryable-code-names:
   *
   * The Connect codes, by name (`unavailable`, `resource_exhausted`, the
   * default), whose failures may be tried again when the call may be sent
   * twice; the same list as
   * [method@ConnectPlugin.RetryPolicy.set_retryable_codes] and
   * [method@ConnectPlugin.RetryPolicy.get_retryable_codes] take and give as
   * [error@ConnectPlugin.Error] values.
   */
  properties[PROP_RETRYABLE_CODE_NAMES] =
    g_param_spec_boxed ("retryable-code-names", NULL, NULL, G_TYPE_STRV, settable);

  /**
   * CpRetryPolicy:budget-ratio:
   *
   * The retries a channel may make per call made with a retry policy, over
   * the last 10 s; 0.2 by default (retries add at most 20 % to the calls).
   * The budget allows the larger of this and
   * [property@RetryPolicy:budget-min-per-second].
   */
  properties[PROP_BUDGET_RATIO] =
    g_param_spec_double ("budget-ratio", NULL, NULL, 0.0, 1000.0, DEFAULT_BUDGET_RATIO, settable);

  /**
   * CpRetryPolicy:budget-min-per-second:
   *
   * The retries per second a channel may make whatever the number of its
   * calls, averaged over the budget's 10 s; 10 by default (100 retries in
   * 10 s). 0 leaves the ratio alone.
   */
  properties[PROP_BUDGET_MIN_PER_SECOND] =
    g_param_spec_uint ("budget-min-per-second", NULL, NULL, 0, G_MAXUINT / 100,
                       DEFAULT_BUDGET_MIN_PER_SECOND, settable);

  /**
   * CpRetryPolicy:n-retries:
   *
   * How many retries the calls made under this policy made so far, on all
   * channels; for metrics. Not notified.
   */
  properties[PROP_N_RETRIES] =
    g_param_spec_uint64 ("n-retries", NULL, NULL, 0, G_MAXUINT64, 0, counter);

  /**
   * CpRetryPolicy:n-throttled:
   *
   * How many retries a channel's retry budget refused so far (the call
   * then failed with its last error); for metrics. Not notified.
   */
  properties[PROP_N_THROTTLED] =
    g_param_spec_uint64 ("n-throttled", NULL, NULL, 0, G_MAXUINT64, 0, counter);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpRetryPolicy::retrying:
   * @policy: the policy
   * @procedure: the procedure of the call, e.g. `/kv.v1.KVService/Get`
   * @attempt: the attempt about to be made, from 2
   * @delay_ms: the backoff before it, in milliseconds
   * @error: the error the previous attempt failed with
   *
   * Emitted when a call is going to be tried again, before the backoff,
   * in the thread (and main context) of the call. For logs and metrics.
   */
  signals[SIGNAL_RETRYING] =
    g_signal_new ("retrying", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 4,
                  G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
                  G_TYPE_UINT, G_TYPE_UINT,
                  G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_retry_policy_init (CpRetryPolicy *self)
{
  g_mutex_init (&self->lock);
  self->max_attempts = DEFAULT_MAX_ATTEMPTS;
  self->initial_backoff_ms = DEFAULT_INITIAL_BACKOFF_MS;
  self->backoff_multiplier = DEFAULT_BACKOFF_MULTIPLIER;
  self->max_backoff_ms = DEFAULT_MAX_BACKOFF_MS;
  self->jitter = DEFAULT_JITTER;
  self->retryable = DEFAULT_RETRYABLE_CODES;
  self->budget_ratio = DEFAULT_BUDGET_RATIO;
  self->budget_min_per_second = DEFAULT_BUDGET_MIN_PER_SECOND;
}

/**
 * cp_retry_policy_new:
 *
 * Creates a retry policy with the wire contract's defaults: at most 3
 * attempts, backoffs of 100 ms doubling up to 10 s (±20 % jitter),
 * `unavailable` and `resource_exhausted` retried for the methods that may
 * be sent twice, and a budget of 20 % of the calls (at least 10 retries a
 * second) per channel.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.RetryPolicy]
 */
CpRetryPolicy *
cp_retry_policy_new (void)
{
  return g_object_new (CP_TYPE_RETRY_POLICY, NULL);
}
