/* bench-automtls.c: what AutoMTLS costs a launched plugin
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   bench-automtls --plugin PATH/kv-plugin [--runs 15] [--seconds 3] [--concurrency 16]
 *
 * With the example KV plugin, launched by a CpProcessDiscovery over TCP,
 * alternately with CpProcessDiscovery:auto-mtls TRUE and FALSE:
 *
 * - launch → first answer: from creating the discovery to the first
 *   answered Get on a channel from cp_discovery_create_channel () (spawn,
 *   announcement, TLS handshake when on, one call); median of --runs each,
 *   the plugin stopped (not timed) before the next; also the median time
 *   cp_process_discovery_start_async () alone took (certificate generation
 *   is in it);
 * - unary Get throughput: --concurrency calls kept in flight on one
 *   channel for --seconds, against one plugin of each kind.
 *
 * Prints a table and one "RESULT k=v …" line; it reports, it does not
 * judge. Exits non-zero only when something could not run.
 */
#include <connectplugin.h>

#include <stdio.h>
#include <stdlib.h>

#include "kv.cp.h"

static GLogWriterOutput
log_writer (GLogLevelFlags   level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "CP_PLUGIN") == 0)
      return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *result;
}

G_GNUC_NORETURN static void
die (const char   *what,
     const GError *error)
{
  g_printerr ("bench-automtls: %s: %s\n", what, error != NULL ? error->message : "failed");
  exit (1);
}

static int
compare_double (gconstpointer a,
                gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
median_of (GArray *values)
{
  guint n = values->len;

  g_array_sort (values, compare_double);
  return n % 2 ? g_array_index (values, double, n / 2)
               : (g_array_index (values, double, n / 2 - 1) + g_array_index (values, double, n / 2)) / 2;
}

static CpProcessDiscovery *
launch (const char *plugin,
        gboolean    auto_mtls,
        char      **url,
        double     *start_ms)
{
  const char *argv[] = { plugin, NULL };
  gint64 t0 = g_get_monotonic_time ();
  CpProcessDiscovery *discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv,
                                                "name", "kv", "auto-mtls", auto_mtls, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  cp_process_discovery_start_async (discovery, NULL, store_result, &result);
  *url = cp_process_discovery_start_finish (discovery, wait_for (&result), &error);
  if (*url == NULL)
    die ("launch", error);
  if (g_str_has_prefix (*url, "https://") != auto_mtls)
    die ("launch", NULL);
  *start_ms = (g_get_monotonic_time () - t0) / 1000.0;
  return discovery;
}

static void
get (CpChannel *channel)
{
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", "absent", NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  cp_channel_call_async (channel, "/kv.v1.KVService/Get", CP_MESSAGE (request),
                         KV_TYPE_GET_RESPONSE, NULL, NULL, store_result, &result);
  response = cp_channel_call_finish (channel, wait_for (&result), &error);
  if (response == NULL)
    die ("Get", error);
}

static void
stop (CpProcessDiscovery *discovery)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_process_discovery_stop_async (discovery, NULL, store_result, &result);
  cp_process_discovery_stop_finish (discovery, wait_for (&result), NULL);
}

/* ---- throughput: @concurrency calls in flight ---- */

typedef struct {
  CpChannel *channel;
  KvGetRequest *request;
  gint64 end;
  guint64 done;
  guint in_flight;
} Load;

static void issue (Load *load);

static void
load_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Load *load = user_data;
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  response = cp_channel_call_finish (load->channel, result, &error);
  if (response == NULL)
    die ("Get under load", error);
  load->done++;
  load->in_flight--;
  if (g_get_monotonic_time () < load->end)
    issue (load);
}

static void
issue (Load *load)
{
  load->in_flight++;
  cp_channel_call_async (load->channel, "/kv.v1.KVService/Get", CP_MESSAGE (load->request),
                         KV_TYPE_GET_RESPONSE, NULL, NULL, load_cb, load);
}

static double
throughput (CpChannel *channel,
            guint      concurrency,
            double     seconds)
{
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", "absent", NULL);
  Load load = { channel, request, 0, 0, 0 };
  gint64 t0;

  /* Warm-up: the connections. */
  load.end = g_get_monotonic_time () + G_USEC_PER_SEC / 4;
  for (guint i = 0; i < concurrency; i++)
    issue (&load);
  while (load.in_flight > 0)
    g_main_context_iteration (NULL, TRUE);

  load.done = 0;
  t0 = g_get_monotonic_time ();
  load.end = t0 + (gint64) (seconds * G_USEC_PER_SEC);
  for (guint i = 0; i < concurrency; i++)
    issue (&load);
  while (load.in_flight > 0)
    g_main_context_iteration (NULL, TRUE);
  return load.done / ((g_get_monotonic_time () - t0) / (double) G_USEC_PER_SEC);
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *plugin = NULL;
  int runs = 15, concurrency = 16;
  double seconds = 3;
  GOptionEntry entries[] = {
    { "plugin", 0, 0, G_OPTION_ARG_FILENAME, &plugin, "The KV plugin executable", "PATH" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "Launches of each kind (15)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "Load duration (3)", "S" },
    { "concurrency", 0, 0, G_OPTION_ARG_INT, &concurrency, "Calls in flight (16)", "N" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- AutoMTLS costs");
  g_autoptr(GError) error = NULL;
  GArray *first[2], *started[2];
  double rps[2], first_ms[2], start_ms[2];

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || plugin == NULL ||
      runs < 1 || concurrency < 1)
    {
      g_printerr ("usage: bench-automtls --plugin PATH/kv-plugin [--runs N] [--seconds S] "
                  "[--concurrency N]\n");
      return 2;
    }
  g_log_set_writer_func (log_writer, NULL, NULL);
  for (int on = 0; on < 2; on++)
    {
      first[on] = g_array_new (FALSE, FALSE, sizeof (double));
      started[on] = g_array_new (FALSE, FALSE, sizeof (double));
    }

  for (int r = 0; r < runs; r++)
    for (int on = 0; on < 2; on++)
      {
        gint64 t0 = g_get_monotonic_time ();
        g_autofree char *url = NULL;
        double start;
        g_autoptr(CpProcessDiscovery) discovery = launch (plugin, on, &url, &start);
        g_autoptr(CpChannel) channel = cp_discovery_create_channel (CP_DISCOVERY (discovery), url,
                                                                    &error);
        double total;

        if (channel == NULL)
          die ("channel", error);
        get (channel);
        total = (g_get_monotonic_time () - t0) / 1000.0;
        g_array_append_val (first[on], total);
        g_array_append_val (started[on], start);
        stop (discovery);
      }

  for (int on = 0; on < 2; on++)
    {
      g_autofree char *url = NULL;
      double start;
      g_autoptr(CpProcessDiscovery) discovery = launch (plugin, on, &url, &start);
      g_autoptr(CpChannel) channel = cp_discovery_create_channel (CP_DISCOVERY (discovery), url,
                                                                  &error);

      if (channel == NULL)
        die ("channel", error);
      rps[on] = throughput (channel, (guint) concurrency, seconds);
      stop (discovery);
      first_ms[on] = median_of (first[on]);
      start_ms[on] = median_of (started[on]);
      g_array_unref (first[on]);
      g_array_unref (started[on]);
    }

  printf ("AutoMTLS (kv-plugin over TCP, %d launches each, %d calls in flight for %.1f s)\n",
          runs, concurrency, seconds);
  printf ("%-34s %12s %12s %12s\n", "", "plaintext", "AutoMTLS", "difference");
  printf ("%-34s %9.2f ms %9.2f ms %+9.2f ms   (target <= +3 ms)\n",
          "launch -> first answered Get", first_ms[0], first_ms[1], first_ms[1] - first_ms[0]);
  printf ("%-34s %9.2f ms %9.2f ms %+9.2f ms\n",
          "  of which start_async", start_ms[0], start_ms[1], start_ms[1] - start_ms[0]);
  printf ("%-34s %9.0f /s %9.0f /s %9.2fx      (target >= 0.7x)\n",
          "unary Get, one channel", rps[0], rps[1], rps[1] / rps[0]);
  printf ("RESULT first_plain_ms=%.2f first_mtls_ms=%.2f start_plain_ms=%.2f start_mtls_ms=%.2f "
          "rps_plain=%.0f rps_mtls=%.0f ratio=%.2f\n",
          first_ms[0], first_ms[1], start_ms[0], start_ms[1], rps[0], rps[1], rps[1] / rps[0]);
  return 0;
}
