/* bench-trace.c: what tracing and per-call log lines cost a unary call,
 * against the same calls without, in one run
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread, one GMainContext; sequential unary Get calls to a
 * CpRpcServer, in-process and over HTTP (127.0.0.1, keep-alive):
 *
 * - off: no span-finished handler, CpChannel:tracing off, no
 *   G_MESSAGES_DEBUG (the default; what every call pays);
 * - traced: CpChannel:tracing on and span-finished handlers on the channel
 *   and the server (each call starts a trace, sends a traceparent, and
 *   two spans are made and handed over);
 * - logged: g_log_set_debug_enabled (TRUE), lines given to a writer
 *   function that drops them (the cost of building them).
 *
 * Interleaved, best of five rounds. Every call is checked. Prints a table
 * and the ratios; no timed assertion.
 *   BUILD/tests/bench/bench-trace [--calls N] [--rounds N]
 */
#include <connectplugin.h>
#include <stdio.h>

#include "kv-test.h"
#include "bench-calls.h"

typedef struct {
  BenchCalls calls;
  guint n_spans;
} Bench;

static void
on_span (GObject *source,
         CpSpan  *span,
         Bench   *bench)
{
  bench->n_spans++;
}

static GLogWriterOutput
drop_writer (GLogLevelFlags   level,
             const GLogField *fields,
             gsize            n_fields,
             gpointer         user_data)
{
  if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

enum { OFF, TRACED, LOGGED, N_VARIANTS };

static const char * const variant_names[N_VARIANTS] = {
  "off (default): no handler, no tracing, no debug output",
  "traced: new trace per call, spans to handlers on both sides",
  "logged: debug output on, lines dropped by the writer",
};

static void
measure (Bench       *bench,
         CpRpcServer *server,
         CpChannel   *channel,
         guint        calls,
         guint        rounds,
         double       best[N_VARIANTS])
{
  gulong server_id, channel_id;

  for (guint v = 0; v < N_VARIANTS; v++)
    best[v] = G_MAXDOUBLE;
  bench_run_calls (&bench->calls, channel, calls / 10 + 1);
  for (guint round = 0; round < rounds; round++)
    {
      double t;

      /* (MIN () evaluates its arguments twice.) */
      t = bench_run_calls (&bench->calls, channel, calls);
      best[OFF] = MIN (best[OFF], t);

      server_id = g_signal_connect (server, "span-finished", G_CALLBACK (on_span), bench);
      channel_id = g_signal_connect (channel, "span-finished", G_CALLBACK (on_span), bench);
      g_object_set (channel, "tracing", TRUE, NULL);
      t = bench_run_calls (&bench->calls, channel, calls);
      best[TRACED] = MIN (best[TRACED], t);
      g_object_set (channel, "tracing", FALSE, NULL);
      g_signal_handler_disconnect (server, server_id);
      g_signal_handler_disconnect (channel, channel_id);

      g_log_set_debug_enabled (TRUE);
      t = bench_run_calls (&bench->calls, channel, calls);
      best[LOGGED] = MIN (best[LOGGED], t);
      g_log_set_debug_enabled (FALSE);
    }
}

static void
print_table (const char *transport,
             double      best[N_VARIANTS])
{
  printf ("| %s, sequential unary Get | µs per call | calls/s | vs off |\n", transport);
  printf ("|---|---|---|---|\n");
  for (guint v = 0; v < N_VARIANTS; v++)
    printf ("| %s | %.2f | %.0f | %.3f |\n", variant_names[v], best[v], 1e6 / best[v],
            best[v] / best[OFF]);
  printf ("\n");
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
  guint expected_spans;
  GOptionEntry entries[] = {
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Calls per measure (HTTP: a quarter)", "N" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Interleaved rounds (the best counts)", "N" },
    { NULL }
  };

  context = g_option_context_new ("- the cost of tracing and per-call log lines");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || calls == 0 || rounds == 0)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--calls and --rounds must be positive");
      return 2;
    }
  kv_test_ensure_types ();
  g_unsetenv ("G_MESSAGES_DEBUG");
  g_log_set_writer_func (drop_writer, NULL, NULL);

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

  {
    g_autoptr(CpChannel) channel = cp_channel_new_in_process (server);

    measure (&bench, server, channel, calls, rounds, local);
  }
  {
    g_autoptr(CpChannel) channel = cp_channel_new (url, NULL);

    measure (&bench, server, channel, calls / 4 + 1, rounds, http);
  }

  print_table ("in-process", local);
  print_table ("HTTP (127.0.0.1, keep-alive)", http);
  printf ("traced / off: in-process %.3f, HTTP %.3f; logged / off: in-process %.3f, HTTP %.3f\n",
          local[TRACED] / local[OFF], http[TRACED] / http[OFF],
          local[LOGGED] / local[OFF], http[LOGGED] / http[OFF]);
  /* Two spans (client and server) per traced call. */
  expected_spans = 2 * rounds * (calls + calls / 4 + 1);
  printf ("calls answered wrongly: %u; spans: %u (expected %u)\n", bench.calls.n_bad, bench.n_spans,
          expected_spans);

  g_clear_object (&bench.calls.request);
  cp_rpc_server_close (server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  /* Not a timing check: failed calls or missing spans fail. */
  return bench.calls.n_bad == 0 && bench.n_spans == expected_spans ? 0 : 1;
}
