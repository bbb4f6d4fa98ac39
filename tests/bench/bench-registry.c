/* bench-registry.c: the host's service registry (connectplugin/host/cp-registry.c):
 * DiscoverService calls/s over HTTP (16 concurrent callers), 10,000
 * registrations (time and host memory), then Discover among them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The host (CpServer + CpBroker) runs in a thread of its own; the callers
 * drive async calls from the main thread.
 *   BUILD/tests/bench/bench-registry [--seconds N]
 * With --serve, only the host runs (one provider of "one" registered) and
 * prints its URL, a runtime id and token, for wrk and discover.lua:
 *   CP_ID=… CP_TOKEN=… wrk -t2 -c16 -d5s -s tests/bench/discover.lua URL
 */
#include <connectplugin.h>
#include <stdio.h>
#include <string.h>

#include "cp-broker-private.h"
#include "cp-server-private.h"

#define N_CALLERS 16
#define N_REGISTRATIONS 10000
#define N_PLUGINS 100

typedef struct {
  GMainContext *context;
  CpServer *server;
  CpBroker *broker;
  char *url;
  gint ready, stop;
  /* Identities issued in the host thread. */
  char *ids[N_PLUGINS + 1];
  char *tokens[N_PLUGINS + 1];
} Host;

static gpointer
host_thread (gpointer data)
{
  Host *host = data;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (host->context);
  host->server = cp_server_new ();
  host->broker = cp_broker_new (host->server);
  g_object_set (host->broker, "max-registrations-per-plugin", N_REGISTRATIONS, NULL);
  host->url = cp_server_listen (host->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  for (guint i = 0; i <= N_PLUGINS; i++)
    {
      g_autofree char *self_id = g_strdup_printf ("bench%u", i);

      cp_server_issue_runtime_identity (host->server, self_id, &host->ids[i], &host->tokens[i]);
    }
  g_atomic_int_set (&host->ready, 1);
  while (!g_atomic_int_get (&host->stop))
    g_main_context_iteration (host->context, TRUE);
  cp_server_close (host->server);
  while (g_main_context_iteration (host->context, FALSE))
    ;
  g_clear_object (&host->broker);
  g_clear_object (&host->server);
  g_main_context_pop_thread_default (host->context);
  return NULL;
}

static CpServiceRegistry *
proxy_for (Host *host,
           guint i)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (host->url, &error);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", host->tokens[i]);

  g_assert_no_error (error);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", host->ids[i]);
  cp_channel_set_header (channel, "Authorization", bearer);
  return cp_service_registry_proxy_new (channel);
}

static guint64 n_done;
static gint64 end_time;
static guint n_running;

typedef struct {
  CpServiceRegistry *proxy;
  CpDiscoverServiceRequest *request;
} Caller;

static void call_next (Caller *caller);

static void
on_discovered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpDiscoverServiceResponse) response =
    cp_service_registry_call_discover_service_finish (CP_SERVICE_REGISTRY (source), result, &error);

  g_assert_no_error (error);
  n_done++;
  call_next (user_data);
}

static void
call_next (Caller *caller)
{
  if (g_get_monotonic_time () >= end_time)
    {
      n_running--;
      return;
    }
  cp_service_registry_call_discover_service (caller->proxy, caller->request, NULL, NULL,
                                             on_discovered, caller);
}

static double
discover_rate (Host       *host,
               const char *type,
               double      seconds)
{
  Caller callers[N_CALLERS];
  gint64 start;

  n_done = 0;
  for (guint i = 0; i < N_CALLERS; i++)
    {
      callers[i].proxy = proxy_for (host, N_PLUGINS);
      callers[i].request = cp_discover_service_request_new ();
      cp_discover_service_request_set_service_type (callers[i].request, type);
    }
  start = g_get_monotonic_time ();
  end_time = start + (gint64) (seconds * G_USEC_PER_SEC);
  n_running = N_CALLERS;
  for (guint i = 0; i < N_CALLERS; i++)
    call_next (&callers[i]);
  while (n_running > 0)
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < N_CALLERS; i++)
    {
      g_object_unref (callers[i].proxy);
      g_object_unref (callers[i].request);
    }
  return n_done / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
}

static guint n_registered;

static void
on_registered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpRegisterServiceResponse) response =
    cp_service_registry_call_register_service_finish (CP_SERVICE_REGISTRY (source), result, &error);

  g_assert_no_error (error);
  n_registered++;
}

static void
register_one (CpServiceRegistry *proxy)
{
  g_autoptr(CpRegisterServiceRequest) request = cp_register_service_request_new ();

  cp_register_service_request_set_service_type (request, "one");
  cp_register_service_request_set_version (request, "1.0.0");
  cp_register_service_request_set_endpoint_path (request, "/one.v1.One/");
  cp_service_registry_call_register_service (proxy, request, NULL, NULL, on_registered, NULL);
  while (n_registered < 1)
    g_main_context_iteration (NULL, TRUE);
  n_registered = 0;
}

static long
rss_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  line = strstr (status, "VmRSS:");
  return line != NULL ? atol (line + 6) : -1;
}

int
main (int   argc,
      char *argv[])
{
  Host host = { 0 };
  GThread *thread;
  CpServiceRegistry *proxies[N_PLUGINS];
  double seconds = 3, rate_one, rate_many;
  gint64 start;
  long rss_before, rss_after;
  double register_s;

  if (argc == 2 && g_str_equal (argv[1], "--serve"))
    {
      host.context = g_main_context_new ();
      thread = g_thread_new ("host", host_thread, &host);
      while (!g_atomic_int_get (&host.ready))
        g_usleep (1000);
      proxies[0] = proxy_for (&host, 0);
      register_one (proxies[0]);
      printf ("%s %s %s\n", host.url, host.ids[N_PLUGINS], host.tokens[N_PLUGINS]);
      fflush (stdout);
      g_thread_join (thread);
      return 0;
    }
  if (argc == 3 && g_str_equal (argv[1], "--seconds"))
    seconds = g_ascii_strtod (argv[2], NULL);
  host.context = g_main_context_new ();
  thread = g_thread_new ("host", host_thread, &host);
  while (!g_atomic_int_get (&host.ready))
    g_usleep (1000);

  /* One provider: Discover calls/s. */
  proxies[0] = proxy_for (&host, 0);
  register_one (proxies[0]);
  rate_one = discover_rate (&host, "one", seconds);

  /* 10,000 registrations of "many" from 100 plugins, 100 each. */
  for (guint i = 1; i < N_PLUGINS; i++)
    proxies[i] = proxy_for (&host, i);
  rss_before = rss_kib ();
  n_registered = 0;
  start = g_get_monotonic_time ();
  for (guint i = 0; i < N_REGISTRATIONS; i++)
    {
      g_autoptr(CpRegisterServiceRequest) request = cp_register_service_request_new ();
      g_autofree char *version = g_strdup_printf ("1.%u.0", i);

      cp_register_service_request_set_service_type (request, "many");
      cp_register_service_request_set_version (request, version);
      cp_register_service_request_set_endpoint_path (request, "/many.v1.Many/");
      cp_service_registry_call_register_service (proxies[i % N_PLUGINS], request, NULL, NULL,
                                                 on_registered, NULL);
      /* At most 64 in flight. */
      while (i + 1 - n_registered >= 64)
        g_main_context_iteration (NULL, TRUE);
    }
  while (n_registered < N_REGISTRATIONS)
    g_main_context_iteration (NULL, TRUE);
  register_s = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  rss_after = rss_kib ();
  rate_many = discover_rate (&host, "many", seconds);

  printf ("| registry benchmark | value |\n|---|---|\n");
  printf ("| Discover, 1 provider, %d callers | %.0f calls/s |\n", N_CALLERS, rate_one);
  printf ("| 10,000 registrations (100 plugins, 64 in flight) | %.2f s (%.0f/s) |\n",
          register_s, N_REGISTRATIONS / register_s);
  printf ("| process RSS growth for 10,000 registrations | %ld KiB |\n", rss_after - rss_before);
  printf ("| Discover, 10,000 providers (first), %d callers | %.0f calls/s |\n", N_CALLERS, rate_many);

  for (guint i = 0; i < N_PLUGINS; i++)
    g_object_unref (proxies[i]);
  g_atomic_int_set (&host.stop, 1);
  g_main_context_wakeup (host.context);
  g_thread_join (thread);
  g_main_context_unref (host.context);
  return 0;
}
