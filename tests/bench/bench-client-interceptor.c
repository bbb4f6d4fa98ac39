/* bench-client-interceptor.c: what client interceptors and a retry policy
 * cost a successful call, against the same calls without, in one run
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread, one GMainContext; sequential unary Get calls (each started
 * once the previous one completed) to a CpRpcServer, in-process and over
 * HTTP (127.0.0.1, keep-alive), through cp_channel_call_async:
 *
 * - baseline: no interceptor, no retry policy;
 * - three no-op interceptors on the channel (a subclass whose intercept
 *   returns TRUE and whose completed does nothing): the figure this
 *   benchmark is for, target: at most 5 % slower;
 * - a retry policy (default settings, calls marked idempotent) that never
 *   has to retry;
 * - both;
 * - CpChannel:metrics-enabled on the baseline channel (every call counted:
 *   started, outcome, duration histogram, bytes), target: at least 0.95
 *   of the baseline's calls/s.
 *
 * The variants are interleaved, best of five rounds each (the machine's
 * noise is larger than what is measured). Every call is checked. Prints a
 * table and the ratios; no timed assertion.
 *   BUILD/tests/bench/bench-client-interceptor [--calls N]
 */
#include <connectplugin.h>
#include <stdio.h>

#include "kv-test.h"
#include "bench-calls.h"
#include "cp-client-metrics-private.h"

/* A no-op interceptor. */
typedef struct {
  CpClientInterceptor parent_instance;
} NoopInterceptor;

typedef struct {
  CpClientInterceptorClass parent_class;
} NoopInterceptorClass;

static GType noop_interceptor_get_type (void);
G_DEFINE_TYPE (NoopInterceptor, noop_interceptor, CP_TYPE_CLIENT_INTERCEPTOR)

static gboolean
noop_intercept (CpClientInterceptor  *self,
                CpClientCall         *call,
                GError              **error)
{
  return TRUE;
}

static void
noop_completed (CpClientInterceptor *self,
                CpClientCall        *call,
                const GError        *error)
{
}

static void
noop_interceptor_class_init (NoopInterceptorClass *klass)
{
  CP_CLIENT_INTERCEPTOR_CLASS (klass)->intercept = noop_intercept;
  CP_CLIENT_INTERCEPTOR_CLASS (klass)->completed = noop_completed;
}

static void
noop_interceptor_init (NoopInterceptor *self)
{
}

typedef struct {
  BenchCalls calls;
} Bench;

enum { PLAIN, INTERCEPTED, RETRY, BOTH, METRICS, N_VARIANTS };

static const char * const variant_names[N_VARIANTS] = {
  "baseline: no interceptor, no retry policy",
  "**three no-op interceptors** (target ≤ 5 % slower)",
  "a retry policy that never retries (idempotent calls)",
  "three no-op interceptors and the retry policy",
  "**metrics on** (CpChannel:metrics-enabled; target ≥ 0.95 of the calls/s)",
};

/* Best of @rounds interleaved runs of each variant, in µs per call. */
static void
measure (Bench     *bench,
         CpChannel *plain,
         CpChannel *intercepted,
         guint      calls,
         guint      rounds,
         double     best[N_VARIANTS])
{
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();

  for (guint v = 0; v < N_VARIANTS; v++)
    best[v] = G_MAXDOUBLE;
  /* Warm-up of every path. */
  bench_run_calls (&bench->calls, plain, calls / 10 + 1);
  bench_run_calls (&bench->calls, intercepted, calls / 10 + 1);
  for (guint round = 0; round < rounds; round++)
    {
      cp_channel_set_retry_policy (plain, NULL);
      cp_channel_set_retry_policy (intercepted, NULL);
      best[PLAIN] = MIN (best[PLAIN], bench_run_calls (&bench->calls, plain, calls));
      best[INTERCEPTED] = MIN (best[INTERCEPTED], bench_run_calls (&bench->calls, intercepted, calls));
      cp_channel_set_retry_policy (plain, policy);
      cp_channel_set_retry_policy (intercepted, policy);
      best[RETRY] = MIN (best[RETRY], bench_run_calls (&bench->calls, plain, calls));
      best[BOTH] = MIN (best[BOTH], bench_run_calls (&bench->calls, intercepted, calls));
      cp_channel_set_retry_policy (plain, NULL);
      /* The baseline again, right before metrics on: the first run of a
       * round is often the slowest (HTTP), which would flatter metrics. */
      best[PLAIN] = MIN (best[PLAIN], bench_run_calls (&bench->calls, plain, calls));
      g_object_set (plain, "metrics-enabled", TRUE, NULL);
      best[METRICS] = MIN (best[METRICS], bench_run_calls (&bench->calls, plain, calls));
      g_object_set (plain, "metrics-enabled", FALSE, NULL);
    }
  if (cp_retry_policy_get_n_retries (policy) != 0)
    bench->calls.n_bad++;
}

/* ns per call of what metrics add to a call, alone (begin, bytes, end):
 * a figure the machine's load hardly moves, unlike the ratios. */
static double
metrics_bookkeeping_ns (void)
{
  CpClientMetrics *metrics = cp_client_metrics_new ("bench");
  const guint n = 1000000;
  double best = G_MAXDOUBLE;

  for (guint round = 0; round < 5; round++)
    {
      gint64 start = g_get_monotonic_time ();

      for (guint i = 0; i < n; i++)
        {
          CpClientMetricsCall call;

          cp_client_metrics_call_begin (&call, metrics, KV_PROCEDURE_GET, FALSE);
          cp_client_metrics_call_add_bytes (&call, TRUE, 9);
          cp_client_metrics_call_add_bytes (&call, FALSE, 12);
          cp_client_metrics_call_end (&call, NULL);
        }
      best = MIN (best, (double) (g_get_monotonic_time () - start) * 1000.0 / n);
    }
  cp_client_metrics_unref (metrics);
  return best;
}

static void
print_table (const char *transport,
             double      best[N_VARIANTS])
{
  printf ("| %s, sequential unary Get | µs per call | calls/s | vs baseline |\n", transport);
  printf ("|---|---|---|---|\n");
  for (guint v = 0; v < N_VARIANTS; v++)
    printf ("| %s | %.2f | %.0f | %.3f |\n", variant_names[v], best[v], 1e6 / best[v],
            best[v] / best[PLAIN]);
  printf ("\n");
}

static CpChannel *
with_interceptors (CpChannel *channel)
{
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(CpClientInterceptor) noop = g_object_new (noop_interceptor_get_type (), NULL);

      cp_channel_add_interceptor (channel, noop);
    }
  return channel;
}

int
main (int    argc,
      char **argv)
{
  guint calls = 20000;
  guint rounds = 5;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMethodInfo) get = NULL;
  g_autoptr(CpRpcServer) server = NULL;
  g_autofree char *url = NULL;
  double local[N_VARIANTS], http[N_VARIANTS];
  Bench bench = { 0 };
  GOptionEntry entries[] = {
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Calls per measure (HTTP: a quarter)", "N" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Interleaved rounds (the best counts)", "N" },
    { NULL }
  };

  context = g_option_context_new ("- the cost of client interceptors and retries");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || calls == 0 || rounds == 0)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--calls and --rounds must be positive");
      return 2;
    }
  kv_test_ensure_types ();

  server = cp_rpc_server_new ();
  get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY, KV_TYPE_GET_REQUEST,
                            KV_TYPE_GET_RESPONSE);
  cp_rpc_server_add_method (server, get, bench_handle_get, NULL, NULL);
  url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
  if (url == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  bench.calls.request = kv_test_get_request ("hello");
  bench.calls.options = cp_call_options_new ();
  cp_call_options_set_idempotent (bench.calls.options, TRUE);

  {
    g_autoptr(CpChannel) plain = cp_channel_new_in_process (server);
    g_autoptr(CpChannel) intercepted = with_interceptors (cp_channel_new_in_process (server));

    measure (&bench, plain, intercepted, calls, rounds, local);
  }
  {
    g_autoptr(CpChannel) plain = cp_channel_new (url, NULL);
    g_autoptr(CpChannel) intercepted = with_interceptors (cp_channel_new (url, NULL));

    measure (&bench, plain, intercepted, calls / 4 + 1, rounds, http);
  }

  print_table ("in-process", local);
  print_table ("HTTP (127.0.0.1, keep-alive)", http);
  printf ("three no-op interceptors / none: in-process %.3f, HTTP %.3f (target ≤ 1.05)\n",
          local[INTERCEPTED] / local[PLAIN], http[INTERCEPTED] / http[PLAIN]);
  printf ("metrics off / on, calls/s on ÷ off: in-process %.3f, HTTP %.3f (target ≥ 0.95)\n",
          local[PLAIN] / local[METRICS], http[PLAIN] / http[METRICS]);
  {
    double ns = metrics_bookkeeping_ns ();

    printf ("metrics bookkeeping alone: %.0f ns per call (%.2f %% of an in-process call, "
            "%.3f %% of an HTTP one)\n", ns, ns / 10.0 / local[PLAIN], ns / 10.0 / http[PLAIN]);
  }
  printf ("calls answered wrongly: %u\n", bench.calls.n_bad);

  g_clear_object (&bench.calls.request);
  g_clear_object (&bench.calls.options);
  cp_rpc_server_close (server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  /* Not a timing check: failed calls (or retries) fail. */
  return bench.calls.n_bad == 0 ? 0 : 1;
}
