/* bench-circuit-breaker.c: what an open circuit costs a failing call, next
 * to baselines measured in the same run
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread, one GMainContext; calls one at a time (each started once the
 * previous one completed, the main context iterated until its callback):
 *
 * - allow + record of a closed CpCircuitBreaker, by hand (its lock);
 * - an empty GTask round trip (g_task_new, g_task_return_pointer, the idle
 *   dispatch of the callback): the floor of any GIO-style async failure;
 * - a unary cp_channel_call_async on a channel whose breaker is open: the
 *   figure this benchmark is for (target: at most 5 µs per call);
 * - the same through cp_channel_call_sync (it makes a private main
 *   context per call);
 * - a successful in-process unary Get, without a breaker and through a
 *   closed one (what the breaker adds to calls that go through; best of
 *   three interleaved runs each).
 *
 * Every failing call is checked ("circuit breaker is open") and the server
 * must have seen none of them. Prints a table; no timed assertion.
 *   BUILD/tests/bench/bench-circuit-breaker [--calls N]
 */
#include <connectplugin.h>
#include <stdio.h>
#include <string.h>

#include "kv-test.h"

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  KvGetRequest *request;
  guint n_served;
  gboolean done;
  gboolean expect_open;
  guint n_bad;
} Bench;

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Bench *bench = user_data;
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  bench->n_served++;
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Bench *bench = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);

  if (bench->expect_open
      ? !g_error_matches (error, CP_ERROR, CP_ERROR_UNAVAILABLE) ||
        strcmp (error->message, "circuit breaker is open") != 0
      : response == NULL)
    bench->n_bad++;
  bench->done = TRUE;
}

static void
task_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Bench *bench = user_data;
  g_autoptr(GError) error = NULL;

  g_task_propagate_pointer (G_TASK (result), &error);
  bench->done = TRUE;
}

/* µs per call of @n sequential asynchronous unary calls. */
static double
run_async_calls (Bench *bench,
                 guint  n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      bench->done = FALSE;
      cp_channel_call_async (bench->channel, KV_PROCEDURE_GET, CP_MESSAGE (bench->request),
                             KV_TYPE_GET_RESPONSE, NULL, NULL, call_done, bench);
      while (!bench->done)
        g_main_context_iteration (NULL, TRUE);
    }
  return (double) (g_get_monotonic_time () - start) / n;
}

static double
run_sync_calls (Bench *bench,
                guint  n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response =
        cp_channel_call_sync (bench->channel, KV_PROCEDURE_GET, CP_MESSAGE (bench->request),
                              KV_TYPE_GET_RESPONSE, NULL, NULL, &error);

      if (response != NULL || !g_error_matches (error, CP_ERROR, CP_ERROR_UNAVAILABLE))
        bench->n_bad++;
    }
  return (double) (g_get_monotonic_time () - start) / n;
}

static double
run_tasks (Bench *bench,
           guint  n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GTask) task = g_task_new (bench->channel, NULL, task_done, bench);

      bench->done = FALSE;
      g_task_return_pointer (task, NULL, NULL);
      g_clear_object (&task);
      while (!bench->done)
        g_main_context_iteration (NULL, TRUE);
    }
  return (double) (g_get_monotonic_time () - start) / n;
}

static double
run_allow_record (CpCircuitBreaker *breaker,
                  guint             n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    if (cp_circuit_breaker_allow (breaker, NULL))
      cp_circuit_breaker_record (breaker, NULL);
  return (double) (g_get_monotonic_time () - start) * 1000.0 / n;
}

int
main (int    argc,
      char **argv)
{
  guint calls = 200000;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMethodInfo) get = NULL;
  g_autoptr(CpCircuitBreaker) breaker = NULL;
  Bench bench = { 0 };
  double allow_ns, task_us, open_us, open_sync_us, plain_us, closed_us;
  guint ok_calls;
  GOptionEntry entries[] = {
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Failing calls per measure (successful ones: a quarter)", "N" },
    { NULL }
  };

  context = g_option_context_new ("- the cost of failing a call on an open circuit");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || calls == 0)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--calls must be positive");
      return 2;
    }
  kv_test_ensure_types ();
  ok_calls = MAX (calls / 4, 1);

  bench.server = cp_rpc_server_new ();
  get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY, KV_TYPE_GET_REQUEST,
                            KV_TYPE_GET_RESPONSE);
  cp_rpc_server_add_method (bench.server, get, handle_get, &bench, NULL);
  bench.channel = cp_channel_new_in_process (bench.server);
  bench.request = kv_test_get_request ("hello");
  breaker = cp_circuit_breaker_new ();

  /* Warm-up of every path (types, allocator, caches). */
  run_allow_record (breaker, calls / 10 + 1);
  run_tasks (&bench, calls / 10 + 1);
  run_async_calls (&bench, ok_calls / 10 + 1);

  allow_ns = run_allow_record (breaker, calls * 10);
  task_us = run_tasks (&bench, calls);

  /* Interleaved, the best of three each: the machine's noise is larger
   * than what a closed breaker adds. */
  plain_us = closed_us = G_MAXDOUBLE;
  for (guint round = 0; round < 3; round++)
    {
      cp_channel_set_circuit_breaker (bench.channel, NULL);
      plain_us = MIN (plain_us, run_async_calls (&bench, ok_calls / 3 + 1));
      cp_channel_set_circuit_breaker (bench.channel, breaker);
      closed_us = MIN (closed_us, run_async_calls (&bench, ok_calls / 3 + 1));
    }

  /* Open, for longer than the run. */
  cp_circuit_breaker_set_open_timeout_ms (breaker, G_MAXUINT);
  cp_circuit_breaker_force_open (breaker);
  bench.n_served = 0;
  bench.expect_open = TRUE;
  run_async_calls (&bench, calls / 10 + 1);
  open_us = run_async_calls (&bench, calls);
  open_sync_us = run_sync_calls (&bench, calls / 4 + 1);

  printf ("| circuit breaker benchmark (one thread, calls one at a time) | per call |\n");
  printf ("|---|---|\n");
  printf ("| allow + record by hand, closed breaker | %.0f ns |\n", allow_ns);
  printf ("| baseline: empty GTask round trip (new, return, idle dispatch) | %.2f µs |\n", task_us);
  printf ("| **unary call failed by an open circuit** (cp_channel_call_async; target ≤ 5 µs) | **%.2f µs** |\n",
          open_us);
  printf ("| unary call failed by an open circuit, cp_channel_call_sync | %.2f µs |\n", open_sync_us);
  printf ("| baseline: successful in-process unary Get, no breaker | %.2f µs |\n", plain_us);
  printf ("| successful in-process unary Get through a closed breaker | %.2f µs |\n", closed_us);
  printf ("\nopen-circuit calls: %u async + %u sync, %u answered wrongly, %u reached the server\n",
          calls, calls / 4 + 1, bench.n_bad, bench.n_served);

  g_clear_object (&bench.request);
  g_clear_object (&bench.channel);
  cp_rpc_server_close (bench.server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&bench.server);
  /* Not a timing check: wrong answers, or calls that got through, fail. */
  return bench.n_bad == 0 && bench.n_served == 0 ? 0 : 1;
}
