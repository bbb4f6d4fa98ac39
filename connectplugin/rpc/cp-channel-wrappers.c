/* cp-channel-wrappers.c: what wraps each call of a CpChannel: the
 * interceptor chains, the retry policy and budget, and admission by the
 * circuit breaker (the order is in CpChannel's documentation, cp-channel.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-channel-state-private.h"
#include "cp-call-options-private.h"
#include "cp-circuit-breaker-private.h"
#include "cp-retry-policy-private.h"

/**
 * cp_channel_set_circuit_breaker:
 * @channel: a [class@ConnectPlugin.Channel]
 * @breaker: (nullable): a [class@ConnectPlugin.CircuitBreaker], or %NULL for none
 *
 * Sets [property@Channel:circuit-breaker]: the calls made from now on ask
 * @breaker before they send anything and tell it their outcome. May be
 * called at any time, from any thread.
 */
void
cp_channel_set_circuit_breaker (CpChannel        *channel,
                                CpCircuitBreaker *breaker)
{
  CpCircuitBreaker *old;

  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (breaker == NULL || CP_IS_CIRCUIT_BREAKER (breaker));

  g_mutex_lock (&channel->headers_lock);
  old = channel->circuit_breaker;
  channel->circuit_breaker = breaker != NULL ? g_object_ref (breaker) : NULL;
  g_mutex_unlock (&channel->headers_lock);
  if (old != breaker)
    g_object_notify (G_OBJECT (channel), "circuit-breaker");
  g_clear_object (&old);
}

/**
 * cp_channel_get_circuit_breaker:
 * @channel: a [class@ConnectPlugin.Channel]
 *
 * Gets [property@Channel:circuit-breaker]. When another thread may
 * replace it meanwhile, read the property instead (it gives a reference).
 *
 * Returns: (transfer none) (nullable): the channel's circuit breaker
 */
CpCircuitBreaker *
cp_channel_get_circuit_breaker (CpChannel *channel)
{
  CpCircuitBreaker *breaker;

  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  g_mutex_lock (&channel->headers_lock);
  breaker = channel->circuit_breaker;
  g_mutex_unlock (&channel->headers_lock);
  return breaker;
}

/**
 * cp_channel_set_retry_policy:
 * @channel: a [class@ConnectPlugin.Channel]
 * @policy: (nullable): a [class@ConnectPlugin.RetryPolicy], or %NULL for none
 *
 * Sets [property@Channel:retry-policy]: the calls made from now on may be
 * tried again as @policy says. May be called at any time, from any
 * thread.
 */
void
cp_channel_set_retry_policy (CpChannel     *channel,
                             CpRetryPolicy *policy)
{
  CpRetryPolicy *old;

  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (policy == NULL || CP_IS_RETRY_POLICY (policy));

  g_mutex_lock (&channel->headers_lock);
  old = channel->retry_policy;
  channel->retry_policy = policy != NULL ? g_object_ref (policy) : NULL;
  g_mutex_unlock (&channel->headers_lock);
  if (old != policy)
    g_object_notify (G_OBJECT (channel), "retry-policy");
  g_clear_object (&old);
}

/**
 * cp_channel_get_retry_policy:
 * @channel: a [class@ConnectPlugin.Channel]
 *
 * Gets [property@Channel:retry-policy]. When another thread may replace
 * it meanwhile, read the property instead (it gives a reference).
 *
 * Returns: (transfer none) (nullable): the channel's retry policy
 */
CpRetryPolicy *
cp_channel_get_retry_policy (CpChannel *channel)
{
  CpRetryPolicy *policy;

  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  g_mutex_lock (&channel->headers_lock);
  policy = channel->retry_policy;
  g_mutex_unlock (&channel->headers_lock);
  return policy;
}

/* A copy of @chain (NULL = empty) with @extra (nullable) appended. */
static GPtrArray *
chain_append (GPtrArray           *chain,
              CpClientInterceptor *extra)
{
  GPtrArray *copy = g_ptr_array_new_full ((chain != NULL ? chain->len : 0) + 1, g_object_unref);

  for (guint i = 0; chain != NULL && i < chain->len; i++)
    g_ptr_array_add (copy, g_object_ref (chain->pdata[i]));
  if (extra != NULL)
    g_ptr_array_add (copy, g_object_ref (extra));
  return copy;
}

/**
 * cp_channel_add_interceptor:
 * @channel: a [class@ConnectPlugin.Channel]
 * @interceptor: a [class@ConnectPlugin.ClientInterceptor]
 *
 * Appends @interceptor to the channel's own interceptors, which see every
 * call made through the channel from now on: after those of the
 * [class@Client] the channel belongs to (if any), in the order they were
 * added, and before those of each call's [class@CallOptions]. See
 * [class@ClientInterceptor] for what they may do. May be called at any
 * time, from any thread; calls under way keep the chain they started with.
 */
void
cp_channel_add_interceptor (CpChannel           *channel,
                            CpClientInterceptor *interceptor)
{
  GPtrArray *chain;

  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (CP_IS_CLIENT_INTERCEPTOR (interceptor));

  g_mutex_lock (&channel->headers_lock);
  chain = chain_append (channel->interceptors, interceptor);
  g_clear_pointer (&channel->interceptors, g_ptr_array_unref);
  channel->interceptors = chain;
  g_mutex_unlock (&channel->headers_lock);
}

/* ------------------------------------------------------------------------ */
/* For the channel's other units (cp-channel-private.h)                      */

CpRetryPolicy *
cp_channel_dup_retry_policy (CpChannel *channel)
{
  CpRetryPolicy *policy;

  g_mutex_lock (&channel->headers_lock);
  policy = channel->retry_policy != NULL ? g_object_ref (channel->retry_policy) : NULL;
  g_mutex_unlock (&channel->headers_lock);
  return policy;
}

CpRetryBudget *
cp_channel_get_retry_budget (CpChannel *channel)
{
  return &channel->retry_budget;
}

void
cp_channel_set_client_interceptors (CpChannel *channel,
                                    GPtrArray *interceptors)
{
  GPtrArray *chain = NULL;

  if (interceptors != NULL && interceptors->len > 0)
    chain = chain_append (interceptors, NULL);
  g_mutex_lock (&channel->headers_lock);
  g_clear_pointer (&channel->client_interceptors, g_ptr_array_unref);
  channel->client_interceptors = chain;
  g_mutex_unlock (&channel->headers_lock);
}

static void
add_all (GPtrArray *chain,
         GPtrArray *interceptors)
{
  for (guint i = 0; interceptors != NULL && i < interceptors->len; i++)
    g_ptr_array_add (chain, g_object_ref (interceptors->pdata[i]));
}

GPtrArray *
cp_channel_collect_interceptors (CpChannel     *channel,
                                 CpCallOptions *options,
                                 gboolean       exempt)
{
  GPtrArray *parts[3] = { NULL, NULL, cp_call_options_get_interceptors (options) };
  GPtrArray *chain = NULL;
  guint n_parts = 0;

  g_mutex_lock (&channel->headers_lock);
  if (!exempt)
    {
      parts[0] = channel->client_interceptors;
      parts[1] = channel->interceptors;
    }
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    if (parts[i] != NULL)
      {
        n_parts++;
        chain = parts[i];
      }
  /* The arrays are never changed (replaced instead): one alone is shared,
   * as most chains are. */
  if (n_parts == 1)
    chain = g_ptr_array_ref (chain);
  else if (n_parts > 1)
    {
      chain = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
        add_all (chain, parts[i]);
    }
  g_mutex_unlock (&channel->headers_lock);
  return chain;
}

CpCircuitBreaker *
cp_channel_dup_circuit_breaker (CpChannel *channel)
{
  CpCircuitBreaker *breaker;

  g_mutex_lock (&channel->headers_lock);
  breaker = channel->circuit_breaker != NULL ? g_object_ref (channel->circuit_breaker) : NULL;
  g_mutex_unlock (&channel->headers_lock);
  return breaker;
}

gboolean
cp_channel_admit (CpChannel           *channel,
                  CpCallOptions       *options,
                  CpChannelAdmission  *admission,
                  GError             **error)
{
  g_autoptr(CpCircuitBreaker) breaker = NULL;

  g_assert (admission->breaker == NULL);
  if (cp_call_options_get_circuit_breaker_exempt (options))
    return TRUE;
  breaker = cp_channel_dup_circuit_breaker (channel);
  if (breaker == NULL)
    return TRUE;
  admission->ticket = cp_circuit_breaker_admit (breaker, error);
  if (admission->ticket == 0)
    return FALSE;
  admission->breaker = g_steal_pointer (&breaker);
  return TRUE;
}

void
cp_channel_admission_settle (CpChannelAdmission *admission,
                             const GError       *outcome)
{
  g_autoptr(CpCircuitBreaker) breaker = g_steal_pointer (&admission->breaker);

  if (breaker != NULL)
    cp_circuit_breaker_settle (breaker, admission->ticket, outcome);
}

void
cp_channel_admission_clear (CpChannelAdmission *admission)
{
  g_autoptr(CpCircuitBreaker) breaker = g_steal_pointer (&admission->breaker);

  if (breaker != NULL)
    cp_circuit_breaker_abandon (breaker, admission->ticket);
}
