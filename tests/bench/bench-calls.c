/* bench-calls.c: sequential unary KV Gets, the loop several benchmarks time
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench-calls.h"

void
bench_handle_get (CpInvocation *invocation,
                  CpMessage    *request,
                  gpointer      user_data)
{
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  BenchCalls *calls = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);

  if (response == NULL)
    calls->n_bad++;
  calls->done = TRUE;
}

double
bench_run_calls (BenchCalls *calls,
                 CpChannel  *channel,
                 guint       n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      calls->done = FALSE;
      cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (calls->request),
                             KV_TYPE_GET_RESPONSE, calls->options, NULL, call_done, calls);
      while (!calls->done)
        g_main_context_iteration (NULL, TRUE);
    }
  return (double) (g_get_monotonic_time () - start) / n;
}
