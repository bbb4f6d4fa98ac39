/* bench-router.c: routed vs direct unary calls per second
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A KV provider (CpRpcServer) and a host (CpServer + CpBroker), each in a
 * thread of its own, and a client keeping --concurrency (16) Get calls in
 * flight over one CpChannel: first straight to the provider, then through
 * the host's router (/services/kv/{provider}/Get with the caller's runtime
 * identity). Prints one RESULT line per mode, and the ratio:
 *
 *   bench-router [--seconds 3] [--concurrency 16]
 *
 * The provider registers its service with the host's ServiceRegistry as a
 * plugin does (runtime identity issued by the host, base_url where it
 * listens) before the measurements.
 */
#include <connectplugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp-server-private.h"
#include "bench-thread.h"
#include "kv-test.h"

typedef struct {
  BenchThread t;
  char *url;
  /* host only */
  char *pid, *ptok, *cid, *ctok;
} Side;

static gboolean
on_get (KvKVService *kv, CpInvocation *invocation, KvGetRequest *request, gpointer data)
{
  g_autoptr(GBytes) value = g_bytes_new_static ("world", 5);
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static gpointer
provider_thread (gpointer data)
{
  Side *side = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpRpcServer) server = NULL;
  g_autoptr(KvKVService) kv = NULL;

  g_main_context_push_thread_default (side->t.context);
  server = cp_rpc_server_new ();
  kv = kv_kv_service_skeleton_new ();
  g_signal_connect (kv, "handle-get", G_CALLBACK (on_get), NULL);
  if (!cp_skeleton_export (CP_SKELETON (kv), server, &error) ||
      (side->url = cp_rpc_server_listen (server, "127.0.0.1:0", &error)) == NULL)
    g_error ("provider: %s", error->message);
  bench_thread_ready (&side->t);
  g_main_loop_run (side->t.loop);
  cp_rpc_server_close (server);
  g_main_context_pop_thread_default (side->t.context);
  return NULL;
}

static gpointer
host_thread (gpointer data)
{
  Side *side = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpServer) host = NULL;
  g_autoptr(CpBroker) broker = NULL;

  g_main_context_push_thread_default (side->t.context);
  host = cp_server_new ();
  broker = cp_broker_new (host);
  if ((side->url = cp_server_listen (host, "127.0.0.1:0", &error)) == NULL)
    g_error ("host: %s", error->message);
  cp_server_issue_runtime_identity (host, "kv-plugin", &side->pid, &side->ptok);
  cp_server_issue_runtime_identity (host, "app-plugin", &side->cid, &side->ctok);
  bench_thread_ready (&side->t);
  g_main_loop_run (side->t.loop);
  cp_server_close (host);
  g_main_context_pop_thread_default (side->t.context);
  return NULL;
}


static void
on_registered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpRegisterServiceResponse) response =
    cp_service_registry_call_register_service_finish (CP_SERVICE_REGISTRY (source), result, &error);

  if (response == NULL)
    g_error ("RegisterService: %s", error->message);
  *(gboolean *) user_data = TRUE;
}

/* The provider's registration, as its plugin would make it. */
static void
register_provider (Side *host, const char *provider_url)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (host->url, &error);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", host->ptok);
  g_autoptr(CpServiceRegistry) registry = NULL;
  g_autoptr(CpRegisterServiceRequest) request = cp_register_service_request_new ();
  g_autoptr(GHashTable) metadata = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean done = FALSE;

  g_assert_no_error (error);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", host->pid);
  cp_channel_set_header (channel, "Authorization", bearer);
  registry = cp_service_registry_proxy_new (channel);
  g_hash_table_insert (metadata, "base_url", (gpointer) provider_url);
  cp_register_service_request_set_service_type (request, "kv");
  cp_register_service_request_set_version (request, "1.0.0");
  cp_register_service_request_set_endpoint_path (request, "/kv.v1.KVService/");
  cp_register_service_request_set_metadata (request, metadata);
  cp_service_registry_call_register_service (registry, request, NULL, NULL, on_registered, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

/* ------------------------------------------------------------------ */

typedef struct {
  KvKVService *proxy;
  KvGetRequest *request;
  GMainLoop *loop;
  GArray *latencies;
  gint64 measure_start, end;
  guint warmup_left;
  guint in_flight;
  GError *error;
} Run;

typedef struct {
  Run *run;
  gint64 start;
} Call;

static void start_call (Run *run);

static void
on_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Call *call = user_data;
  Run *run = call->run;
  g_autoptr(KvGetResponse) response = kv_kv_service_call_get_finish (KV_KV_SERVICE (source), result,
                                                                   run->error ? NULL : &run->error);
  gint64 now = g_get_monotonic_time ();

  run->in_flight--;
  if (response != NULL && run->warmup_left == 0 && now <= run->end)
    {
      gint64 us = now - call->start;
      g_array_append_val (run->latencies, us);
    }
  else if (response != NULL && run->warmup_left > 0 && --run->warmup_left == 0)
    run->measure_start = now;
  g_free (call);
  if (run->error == NULL && now < run->end)
    start_call (run);
  else if (run->in_flight == 0)
    g_main_loop_quit (run->loop);
}

static void
start_call (Run *run)
{
  Call *call = g_new0 (Call, 1);

  call->run = run;
  call->start = g_get_monotonic_time ();
  run->in_flight++;
  kv_kv_service_call_get (run->proxy, run->request, NULL, NULL, on_done, call);
}

static int
cmp_i64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

static double
measure (const char *mode, CpChannel *channel, guint seconds, guint concurrency, gint64 *p50)
{
  Run run = { 0 };
  double rate;

  run.proxy = kv_kv_service_proxy_new (channel);
  run.request = kv_test_get_request ("hello");
  run.loop = g_main_loop_new (NULL, FALSE);
  run.latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  run.warmup_left = 200;
  run.measure_start = g_get_monotonic_time ();
  run.end = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;
  for (guint i = 0; i < concurrency; i++)
    start_call (&run);
  g_main_loop_run (run.loop);
  if (run.error != NULL)
    g_error ("%s: %s", mode, run.error->message);
  g_array_sort (run.latencies, cmp_i64);
  *p50 = run.latencies->len ? g_array_index (run.latencies, gint64, run.latencies->len / 2) : 0;
  rate = run.latencies->len / ((run.end - run.measure_start) / (double) G_USEC_PER_SEC);
  printf ("RESULT mode=%s concurrency=%u calls=%u calls_per_s=%.0f p50_us=%" G_GINT64_FORMAT "\n",
          mode, concurrency, run.latencies->len, rate, *p50);
  g_array_unref (run.latencies);
  g_object_unref (run.request);
  g_object_unref (run.proxy);
  g_main_loop_unref (run.loop);
  return rate;
}

int
main (int argc, char **argv)
{
  int seconds = 3, concurrency = 16;
  GOptionEntry entries[] = {
    { "seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "seconds per mode", "N" },
    { "concurrency", 0, 0, G_OPTION_ARG_INT, &concurrency, "calls in flight", "N" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- routed vs direct unary calls");
  g_autoptr(GError) error = NULL;
  Side provider = { 0 }, host = { 0 };
  g_autoptr(CpChannel) direct = NULL, routed = NULL;
  g_autofree char *base = NULL, *bearer = NULL;
  double direct_rate, routed_rate;
  gint64 direct_p50, routed_p50;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    g_error ("%s", error->message);

  bench_thread_start (&provider.t, "provider", provider_thread, &provider);
  bench_thread_start (&host.t, "host", host_thread, &host);
  register_provider (&host, provider.url);

  direct = cp_channel_new (provider.url, &error);
  g_assert_no_error (error);
  base = g_strdup_printf ("%s/services/kv/%s", host.url, host.pid);
  routed = cp_channel_new (base, &error);
  g_assert_no_error (error);
  g_object_set (routed, "method-only-paths", TRUE, NULL);
  bearer = g_strdup_printf ("Bearer %s", host.ctok);
  cp_channel_set_header (routed, "X-Plugin-Runtime-ID", host.cid);
  cp_channel_set_header (routed, "Authorization", bearer);

  direct_rate = measure ("direct", direct, seconds, concurrency, &direct_p50);
  routed_rate = measure ("routed", routed, seconds, concurrency, &routed_p50);
  printf ("RATIO routed/direct=%.2f added_p50_us=%" G_GINT64_FORMAT "\n",
          routed_rate / direct_rate, routed_p50 - direct_p50);

  g_clear_object (&direct);
  g_clear_object (&routed);
  bench_thread_stop (&host.t);
  bench_thread_stop (&provider.t);
  g_free (provider.url);
  g_free (host.url);
  g_free (host.pid);
  g_free (host.ptok);
  g_free (host.cid);
  g_free (host.ctok);
  return 0;
}
