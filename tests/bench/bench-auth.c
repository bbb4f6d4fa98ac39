/* bench-auth.c: what bearer-token authentication costs a successful call,
 * against the same calls without, in one run
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread, one GMainContext; sequential unary Get calls (each started
 * once the previous one completed) to CpRpcServers through in-process
 * channels:
 *
 * - baseline: no interceptor on either side (what every call pays when
 *   authentication is not installed: nothing is added to that path);
 * - a CpAuthInterceptor with a bearer CpTokenAuthProvider holding 1 token,
 *   and a CpCredentialsInterceptor on the channel;
 * - the same with 100 tokens (every check compares against all of them).
 *
 * The variants are interleaved, best of five rounds each. Every call is
 * checked (a refused call counts as wrong). Prints a table; no timed
 * assertion.
 *   BUILD/tests/bench/bench-auth [--calls N] [--rounds N]
 */
#include <connectplugin.h>
#include <stdio.h>

#include "kv-test.h"
#include "bench-calls.h"

#define TOKEN "bench-token-0000000000000000000000000000000"

typedef struct {
  BenchCalls calls;
} Bench;

enum { PLAIN, AUTH_1, AUTH_100, N_VARIANTS };

static const char * const variant_names[N_VARIANTS] = {
  "baseline: no authentication",
  "bearer token, 1 token in the set (client and server interceptors)",
  "bearer token, 100 tokens in the set",
};

/* A server (with authentication when @n_tokens > 0) and a channel to it. */
static CpChannel *
make_channel (guint         n_tokens,
              CpRpcServer **server_out)
{
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  CpRpcServer *server = cp_rpc_server_new ();
  CpChannel *channel;

  cp_rpc_server_add_method (server, get, bench_handle_get, NULL, NULL);
  channel = cp_channel_new_in_process (server);
  if (n_tokens > 0)
    {
      g_autoptr(CpAuthInterceptor) auth = cp_auth_interceptor_new ();
      g_autoptr(CpAuthProvider) bearer = cp_token_auth_provider_new_bearer ();
      g_autoptr(CpCredentialsInterceptor) credentials = cp_credentials_interceptor_new_bearer (TOKEN);

      for (guint i = 1; i < n_tokens; i++)
        {
          g_autofree char *token = g_strdup_printf ("other-token-%u-0000000000000000000000000", i);

          cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (bearer), token, "other");
        }
      cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (bearer), TOKEN, "bench");
      cp_auth_interceptor_add_provider (auth, bearer);
      cp_rpc_server_add_interceptor (server, CP_SERVER_INTERCEPTOR (auth));
      cp_channel_add_interceptor (channel, CP_CLIENT_INTERCEPTOR (credentials));
    }
  *server_out = server;
  return channel;
}

int
main (int    argc,
      char **argv)
{
  guint calls = 20000;
  guint rounds = 5;
  static const guint n_tokens[N_VARIANTS] = { 0, 1, 100 };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  CpRpcServer *servers[N_VARIANTS];
  CpChannel *channels[N_VARIANTS];
  double best[N_VARIANTS];
  Bench bench = { 0 };
  GOptionEntry entries[] = {
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Calls per measure", "N" },
    { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "Interleaved rounds (the best counts)", "N" },
    { NULL }
  };

  context = g_option_context_new ("- the cost of bearer-token authentication");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || calls == 0 || rounds == 0)
    {
      g_printerr ("%s\n", error != NULL ? error->message : "--calls and --rounds must be positive");
      return 2;
    }
  kv_test_ensure_types ();
  bench.calls.request = kv_test_get_request ("hello");

  for (guint v = 0; v < N_VARIANTS; v++)
    {
      channels[v] = make_channel (n_tokens[v], &servers[v]);
      best[v] = G_MAXDOUBLE;
      bench_run_calls (&bench.calls, channels[v], calls / 10 + 1);  /* warm-up */
    }
  for (guint round = 0; round < rounds; round++)
    for (guint v = 0; v < N_VARIANTS; v++)
      best[v] = MIN (best[v], bench_run_calls (&bench.calls, channels[v], calls));

  printf ("| in-process, sequential unary Get | µs per call | calls/s | vs baseline |\n");
  printf ("|---|---|---|---|\n");
  for (guint v = 0; v < N_VARIANTS; v++)
    printf ("| %s | %.2f | %.0f | %.3f |\n", variant_names[v], best[v], 1e6 / best[v],
            best[v] / best[PLAIN]);
  printf ("calls answered wrongly: %u\n", bench.calls.n_bad);

  for (guint v = 0; v < N_VARIANTS; v++)
    {
      g_object_unref (channels[v]);
      cp_rpc_server_close (servers[v]);
    }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  for (guint v = 0; v < N_VARIANTS; v++)
    g_object_unref (servers[v]);
  g_clear_object (&bench.calls.request);
  /* Not a timing check: refused or failed calls fail. */
  return bench.calls.n_bad == 0 ? 0 : 1;
}
