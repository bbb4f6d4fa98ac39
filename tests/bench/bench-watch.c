/* bench-watch.c: WatchService fan-out to 100 watchers, with the host's memory
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The host (CpServer + CpBroker) runs in a child process (this program with
 * --host) so that its VmRSS is the host's alone. This process opens 100
 * WatchService streams over HTTP, one CpChannel and one runtime identity
 * each (as 100 plugins would), then makes --changes registrations and
 * unregistrations of the watched type, alternately, one at a time, from a
 * provider identity. For each change it takes the time from sending the
 * request until the last of the 100 watchers has the change's event.
 * Every watcher must get exactly one event per change, in order, with the
 * state the change implies (available, then unavailable): the bench fails
 * otherwise. Then a burst: the same number of changes sent back to back
 * with up to --window of them not yet seen by every watcher, timed until
 * every watcher has every event (the window stays under the host's
 * per-watcher queue, so nothing is collapsed into a resync: the count must
 * be exact here too, and the host must report no resync).
 *
 *   BUILD/tests/bench/bench-watch [--watchers 100] [--changes 1000] [--window 32]
 */
#include <connectplugin.h>
#include <gio/gunixinputstream.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cp-broker-private.h"
#include "cp-registry-private.h"
#include "cp-server-private.h"

#define WATCHED_TYPE "bench.watched"
#define GUARD_US (20 * G_USEC_PER_SEC)

/* ------------------------------------------------------------------ */
/* The host (child process)                                             */

typedef struct {
  CpBroker *broker;
  GMainLoop *loop;
  GDataInputStream *in;
} HostSide;

static void read_command (HostSide *side);

static void
on_command (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  HostSide *side = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish (side->in, result, NULL, NULL);

  if (line == NULL)             /* the bench closed our stdin */
    {
      g_main_loop_quit (side->loop);
      return;
    }
  if (g_str_equal (line, "stats"))
    {
      printf ("watchers=%u resyncs=%u backlog=%u\n",
              cp_registry_get_n_watchers (side->broker->registry),
              cp_registry_get_n_resyncs (side->broker->registry),
              cp_registry_get_max_watch_backlog (side->broker->registry));
      fflush (stdout);
    }
  read_command (side);
}

static void
read_command (HostSide *side)
{
  g_data_input_stream_read_line_async (side->in, G_PRIORITY_DEFAULT, NULL, on_command, side);
}

static int
run_host (guint n_identities)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpServer) server = cp_server_new ();
  g_autoptr(CpBroker) broker = cp_broker_new (server);
  g_autoptr(GInputStream) stdin_stream = g_unix_input_stream_new (0, FALSE);
  g_autofree char *url = NULL;
  HostSide side = { 0 };

  url = cp_server_listen (server, "127.0.0.1:0", &error);
  if (url == NULL)
    g_error ("host: %s", error->message);
  printf ("%s\n", url);
  for (guint i = 0; i < n_identities; i++)
    {
      g_autofree char *self_id = g_strdup_printf ("bench%u", i);
      g_autofree char *id = NULL, *token = NULL;

      cp_server_issue_runtime_identity (server, self_id, &id, &token);
      printf ("%s %s\n", id, token);
    }
  fflush (stdout);
  side.broker = broker;
  side.loop = g_main_loop_new (NULL, FALSE);
  side.in = g_data_input_stream_new (stdin_stream);
  read_command (&side);
  g_main_loop_run (side.loop);
  cp_server_close (server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_object_unref (side.in);
  g_main_loop_unref (side.loop);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The watchers (this process)                                          */

typedef struct {
  guint n_watchers;
  guint expected;               /* events each watcher must have had, initial state included */
  guint n_reached;              /* watchers at @expected (sequential phase) */
  guint n_complete;             /* watchers with every burst event */
  guint burst_target;
  guint checked;                /* changes whose state is checked (the sequential ones) */
  gint64 *sent_at;              /* per change: when its request left */
  gint64 *all_at;               /* per change: when its last watcher had it */
  guint *n_have;                /* per change: watchers that have it */
  guint64 delivered;            /* events after the initial state */
} Bench;

typedef struct {
  Bench *bench;
  guint index;
  CpChannel *channel;
  CpServiceRegistry *proxy;
  CpResponseStream *stream;
  guint events;
} Watcher;

static CpChannel *
channel_for (const char *url,
             const char *id,
             const char *token)
{
  g_autoptr(GError) error = NULL;
  CpChannel *channel = cp_channel_new (url, &error);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", token);

  if (channel == NULL)
    g_error ("channel: %s", error->message);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", id);
  cp_channel_set_header (channel, "Authorization", bearer);
  return channel;
}

/* Change k (1-based) is a registration when odd: the service is then
 * available; unavailable after an unregistration and initially. */
static CpServiceState
state_after (guint change)
{
  return change % 2 == 1 ? CP_SERVICE_STATE_AVAILABLE : CP_SERVICE_STATE_UNAVAILABLE;
}

static void
on_watch_message (CpResponseStream *stream,
                  CpMessage        *message,
                  gpointer          user_data)
{
  Watcher *w = user_data;
  Bench *bench = w->bench;
  gint64 now = g_get_monotonic_time ();
  guint change = w->events;     /* this event's change; 0: the initial state */
  CpServiceState state = cp_watch_service_event_get_state (CP_WATCH_SERVICE_EVENT (message));

  w->events++;
  if (w->events > bench->expected)
    g_error ("watcher %u: event %u before its change was made", w->index, w->events);
  /* In the burst the host may take a registration before the previous
   * unregistration (separate connections): only the count is checked. */
  if (change <= bench->checked && state != state_after (change))
    g_error ("watcher %u: event %u has state %d, expected %d", w->index, w->events,
             (int) state, (int) state_after (change));
  if (change == 0)
    {
      bench->n_reached++;
      return;
    }
  bench->delivered++;
  if (++bench->n_have[change] == bench->n_watchers)
    bench->all_at[change] = now;
  if (w->events == bench->expected)
    bench->n_reached++;
  if (bench->burst_target > 0 && w->events == bench->burst_target)
    bench->n_complete++;
}

static void
on_watch_closed (CpResponseStream *stream,
                 const GError     *error,
                 gpointer          user_data)
{
  Watcher *w = user_data;

  g_error ("watcher %u: stream closed: %s", w->index, error != NULL ? error->message : "(no error)");
}

static void
wait_until (gboolean (*done) (gpointer), gpointer data, const char *what)
{
  gint64 end = g_get_monotonic_time () + GUARD_US;

  while (!done (data))
    {
      if (g_get_monotonic_time () > end)
        g_error ("timed out waiting for %s", what);
      g_main_context_iteration (NULL, TRUE);
    }
}

static gboolean
all_reached (gpointer data)
{
  Bench *bench = data;
  return bench->n_reached == bench->n_watchers;
}

static gboolean
all_complete (gpointer data)
{
  Bench *bench = data;
  return bench->n_complete == bench->n_watchers;
}

/* ---- the provider's changes ---- */

typedef struct {
  CpServiceRegistry *proxy;
  GQueue ids;                   /* registration ids, oldest first */
  guint in_flight;
  gboolean failed;
} Provider;

static void
on_registered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Provider *provider = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpRegisterServiceResponse) response =
    cp_service_registry_call_register_service_finish (CP_SERVICE_REGISTRY (source), result, &error);

  if (response == NULL)
    g_error ("RegisterService: %s", error->message);
  g_queue_push_tail (&provider->ids, g_strdup (cp_register_service_response_get_registration_id (response)));
  provider->in_flight--;
}

static void
on_unregistered (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Provider *provider = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpUnregisterServiceResponse) response =
    cp_service_registry_call_unregister_service_finish (CP_SERVICE_REGISTRY (source), result, &error);

  if (response == NULL)
    g_error ("UnregisterService: %s", error->message);
  provider->in_flight--;
}

static void
provider_register (Provider *provider)
{
  g_autoptr(CpRegisterServiceRequest) request = cp_register_service_request_new ();

  cp_register_service_request_set_service_type (request, WATCHED_TYPE);
  cp_register_service_request_set_version (request, "1.0.0");
  cp_register_service_request_set_endpoint_path (request, "/bench.v1.Watched/");
  provider->in_flight++;
  cp_service_registry_call_register_service (provider->proxy, request, NULL, NULL,
                                             on_registered, provider);
}

static void
provider_unregister (Provider *provider)
{
  g_autoptr(CpUnregisterServiceRequest) request = cp_unregister_service_request_new ();
  g_autofree char *id = g_queue_pop_head (&provider->ids);

  g_assert (id != NULL);
  cp_unregister_service_request_set_registration_id (request, id);
  provider->in_flight++;
  cp_service_registry_call_unregister_service (provider->proxy, request, NULL, NULL,
                                               on_unregistered, provider);
}

static gboolean
provider_idle (gpointer data)
{
  return ((Provider *) data)->in_flight == 0;
}

/* ---- the host's side, seen from here ---- */

typedef struct {
  GSubprocess *process;
  GDataInputStream *out;
  GOutputStream *in;
  char *url;
  char **ids, **tokens;
} Host;

static char *
host_line (Host *host)
{
  g_autoptr(GError) error = NULL;
  char *line = g_data_input_stream_read_line (host->out, NULL, NULL, &error);

  if (line == NULL)
    g_error ("host: no output%s%s", error ? ": " : "", error ? error->message : "");
  return line;
}

/* "watchers=N resyncs=N backlog=N" from the host. */
static char *
host_stats (Host *host)
{
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all (host->in, "stats\n", 6, NULL, NULL, &error))
    g_error ("host: %s", error->message);
  return host_line (host);
}

/* VmRSS or VmHWM of the host process, KiB. */
static long
host_kib (Host       *host,
          const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/status", g_subprocess_get_identifier (host->process));
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents (path, &status, NULL, NULL))
    g_error ("cannot read %s", path);
  line = strstr (status, field);
  if (line == NULL)
    g_error ("no %s in %s", field, path);
  return atol (line + strlen (field) + 1);
}

static int
cmp_i64 (gconstpointer a,
         gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return x < y ? -1 : x > y;
}

static double
ms (gint64 us)
{
  return us / 1000.0;
}

int
main (int   argc,
      char *argv[])
{
  int n_watchers = 100, n_changes = 1000, window = 32, host_identities = 0;
  GOptionEntry entries[] = {
    { "watchers", 0, 0, G_OPTION_ARG_INT, &n_watchers, "watchers (streams)", "N" },
    { "changes", 0, 0, G_OPTION_ARG_INT, &n_changes, "registrations + unregistrations (even)", "N" },
    { "window", 0, 0, G_OPTION_ARG_INT, &window, "changes in flight in the burst", "N" },
    { "host", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &host_identities, "run the host", "IDENTITIES" },
    { NULL }
  };
  g_autoptr(GOptionContext) options = g_option_context_new ("- WatchService fan-out");
  g_autoptr(GError) error = NULL;
  g_autofree char *self = NULL, *count = NULL, *stats_idle = NULL, *stats_seq = NULL, *stats_burst = NULL;
  g_autoptr(GArray) latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) burst_latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  Host host = { 0 };
  Bench bench = { 0 };
  Provider provider = { 0 };
  Watcher *watchers;
  long rss_before, rss_idle, rss_seq, rss_burst, hwm;
  gint64 burst_start, burst_us, open_start, open_us;
  guint64 expected_events;

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    g_error ("%s", error->message);
  if (host_identities > 0)
    return run_host ((guint) host_identities);
  if (n_watchers < 1 || n_changes < 2 || n_changes % 2 != 0 || window < 1 || window >= 64)
    g_error ("need --watchers >= 1, an even --changes >= 2 and 1 <= --window < 64 (the host's watch queue)");

  /* The host, in a process of its own: identity 0 is the provider. */
  self = g_file_read_link ("/proc/self/exe", &error);
  g_assert_no_error (error);
  count = g_strdup_printf ("%d", n_watchers + 1);
  host.process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                   &error, self, "--host", count, NULL);
  g_assert_no_error (error);
  host.out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (host.process));
  host.in = g_subprocess_get_stdin_pipe (host.process);
  host.url = host_line (&host);
  host.ids = g_new0 (char *, n_watchers + 2);
  host.tokens = g_new0 (char *, n_watchers + 2);
  for (int i = 0; i <= n_watchers; i++)
    {
      g_autofree char *line = host_line (&host);
      g_auto(GStrv) parts = g_strsplit (line, " ", 2);

      g_assert (g_strv_length (parts) == 2);
      host.ids[i] = g_strdup (parts[0]);
      host.tokens[i] = g_strdup (parts[1]);
    }

  bench.n_watchers = n_watchers;
  bench.checked = n_changes;
  bench.sent_at = g_new0 (gint64, 2 * n_changes + 1);
  bench.all_at = g_new0 (gint64, 2 * n_changes + 1);
  bench.n_have = g_new0 (guint, 2 * n_changes + 1);
  {
    g_autoptr(CpChannel) channel = channel_for (host.url, host.ids[0], host.tokens[0]);

    provider.proxy = cp_service_registry_proxy_new (channel);
  }
  g_queue_init (&provider.ids);
  /* Warm-up (no watchers yet): the host's first calls allocate what any
   * call needs, which is not the watchers' cost. */
  provider_register (&provider);
  wait_until (provider_idle, &provider, "the warm-up registration");
  provider_unregister (&provider);
  wait_until (provider_idle, &provider, "the warm-up unregistration");
  rss_before = host_kib (&host, "VmRSS:");

  /* The watchers: each has the current state (unavailable) first. */
  watchers = g_new0 (Watcher, n_watchers);
  bench.expected = 1;
  open_start = g_get_monotonic_time ();
  for (int i = 0; i < n_watchers; i++)
    {
      Watcher *w = &watchers[i];
      g_autoptr(CpWatchServiceRequest) request = cp_watch_service_request_new ();

      w->bench = &bench;
      w->index = i;
      w->channel = channel_for (host.url, host.ids[i + 1], host.tokens[i + 1]);
      w->proxy = cp_service_registry_proxy_new (w->channel);
      cp_watch_service_request_set_service_type (request, WATCHED_TYPE);
      w->stream = cp_service_registry_call_watch_service (w->proxy, request, NULL);
      g_signal_connect (w->stream, "message", G_CALLBACK (on_watch_message), w);
      g_signal_connect (w->stream, "closed", G_CALLBACK (on_watch_closed), w);
    }
  wait_until (all_reached, &bench, "every watcher's initial state");
  open_us = g_get_monotonic_time () - open_start;
  rss_idle = host_kib (&host, "VmRSS:");
  stats_idle = host_stats (&host);

  /* Sequential: one change at a time, each until all watchers have it. */
  for (int k = 1; k <= n_changes; k++)
    {
      bench.expected = k + 1;
      bench.n_reached = 0;
      bench.sent_at[k] = g_get_monotonic_time ();
      if (state_after (k) == CP_SERVICE_STATE_AVAILABLE)
        provider_register (&provider);
      else
        provider_unregister (&provider);
      wait_until (all_reached, &bench, "every watcher's event");
      wait_until (provider_idle, &provider, "the provider's call");
    }
  for (int k = 1; k <= n_changes; k++)
    {
      gint64 us = bench.all_at[k] - bench.sent_at[k];

      g_array_append_val (latencies, us);
    }
  g_array_sort (latencies, cmp_i64);
  rss_seq = host_kib (&host, "VmRSS:");
  stats_seq = host_stats (&host);

  /* Burst: n_changes more, up to @window of them not yet seen by every
   * watcher. Registrations and unregistrations still alternate: the
   * unregistration of a registration is sent once its answer (the id)
   * is back. */
  bench.expected = 2 * n_changes + 1;
  bench.burst_target = 2 * n_changes + 1;
  bench.n_complete = 0;
  burst_start = g_get_monotonic_time ();
  {
    gint64 end = burst_start + GUARD_US;
    int next = n_changes + 1, lowest = n_changes + 1;

    while (!all_complete (&bench))
      {
        while (lowest < next && bench.n_have[lowest] == (guint) n_watchers)
          lowest++;
        if (next <= 2 * n_changes && next - lowest < window &&
            (state_after (next) == CP_SERVICE_STATE_AVAILABLE || !g_queue_is_empty (&provider.ids)))
          {
            bench.sent_at[next] = g_get_monotonic_time ();
            if (state_after (next) == CP_SERVICE_STATE_AVAILABLE)
              provider_register (&provider);
            else
              provider_unregister (&provider);
            next++;
            continue;
          }
        if (g_get_monotonic_time () > end)
          g_error ("timed out in the burst (%d of %d sent)", next - n_changes - 1, n_changes);
        g_main_context_iteration (NULL, TRUE);
      }
  }
  burst_us = g_get_monotonic_time () - burst_start;
  for (int k = n_changes + 1; k <= 2 * n_changes; k++)
    {
      gint64 us = bench.all_at[k] - bench.sent_at[k];

      g_array_append_val (burst_latencies, us);
    }
  g_array_sort (burst_latencies, cmp_i64);
  wait_until (provider_idle, &provider, "the provider's calls");
  rss_burst = host_kib (&host, "VmRSS:");
  hwm = host_kib (&host, "VmHWM:");
  stats_burst = host_stats (&host);

  expected_events = (guint64) n_watchers * 2 * n_changes;
  printf ("| WatchService fan-out, %d watchers, host in its own process | value |\n|---|---|\n",
          n_watchers);
  printf ("| %d watch streams opened, initial state at all | %.1f ms |\n", n_watchers, ms (open_us));
  printf ("| host RSS before the watchers | %ld KiB |\n", rss_before);
  printf ("| host RSS, %d watchers idle | %ld KiB (+%ld KiB, %.1f KiB per watcher) |\n",
          n_watchers, rss_idle, rss_idle - rss_before, (rss_idle - rss_before) / (double) n_watchers);
  printf ("| host RSS after %d changes one at a time | %ld KiB |\n", n_changes, rss_seq);
  printf ("| host RSS after %d more in a burst (window %d) | %ld KiB (peak VmHWM %ld KiB) |\n",
          n_changes, window, rss_burst, hwm);
  printf ("| change -> all %d watchers have it, one at a time: p50 / p99 / max | %.2f / %.2f / %.2f ms |\n",
          n_watchers, ms (g_array_index (latencies, gint64, latencies->len / 2)),
          ms (g_array_index (latencies, gint64, (latencies->len * 99) / 100)),
          ms (g_array_index (latencies, gint64, latencies->len - 1)));
  printf ("| burst: %d changes -> all %d watchers have all | %.1f ms (%.0f events/s delivered) |\n",
          n_changes, n_watchers, ms (burst_us),
          (double) n_watchers * n_changes / (burst_us / (double) G_USEC_PER_SEC));
  printf ("| burst: k-th change sent -> all %d watchers have their k-th event: p50 / p99 / max | %.2f / %.2f / %.2f ms |\n",
          n_watchers, ms (g_array_index (burst_latencies, gint64, burst_latencies->len / 2)),
          ms (g_array_index (burst_latencies, gint64, (burst_latencies->len * 99) / 100)),
          ms (g_array_index (burst_latencies, gint64, burst_latencies->len - 1)));
  printf ("| events delivered (after the initial state) | %" G_GUINT64_FORMAT " of %d x %d = %" G_GUINT64_FORMAT " |\n",
          bench.delivered, n_watchers, 2 * n_changes, expected_events);
  printf ("| host registry: idle / after one at a time / after burst | %s / %s / %s |\n",
          stats_idle, stats_seq, stats_burst);
  fflush (stdout);

  if (bench.delivered != expected_events)
    {
      fprintf (stderr, "FAIL: %" G_GUINT64_FORMAT " events delivered, expected %" G_GUINT64_FORMAT "\n",
               bench.delivered, expected_events);
      return 1;
    }
  if (strstr (stats_burst, " resyncs=0 ") == NULL)
    {
      fprintf (stderr, "FAIL: the host collapsed a watcher's queue (%s)\n", stats_burst);
      return 1;
    }

  for (int i = 0; i < n_watchers; i++)
    {
      g_signal_handlers_disconnect_by_data (watchers[i].stream, &watchers[i]);
      cp_response_stream_cancel (watchers[i].stream);
      g_object_unref (watchers[i].stream);
      g_object_unref (watchers[i].proxy);
      g_object_unref (watchers[i].channel);
    }
  g_free (watchers);
  g_object_unref (provider.proxy);
  g_queue_clear_full (&provider.ids, g_free);
  g_output_stream_close (host.in, NULL, NULL);
  if (!g_subprocess_wait_check (host.process, NULL, &error))
    g_error ("host: %s", error->message);
  g_object_unref (host.out);
  g_object_unref (host.process);
  g_strfreev (host.ids);
  g_strfreev (host.tokens);
  g_free (host.url);
  g_free (bench.sent_at);
  g_free (bench.all_at);
  g_free (bench.n_have);
  return 0;
}
