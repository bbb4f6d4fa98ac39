/* bench-client.c: our client's sequential unary calls per second
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Sequential kv.v1.KVService/Get calls through CpChannel (each call starts
 * when the previous one completed, GIO async style on a GMainLoop) against
 * bench-kv-server, usually over a unix socket:
 *
 *   bench-client --url unix:/path/kv.sock [--seconds 3] [--http2]
 *
 * --http2: over HTTP/2 (h2c, CpChannel:http-version), else HTTP/1.1.
 * --compare: both, alternating (two runs each, a fresh channel per run),
 * then a "RATIO http1_calls_per_s=… http2_calls_per_s=… http2_over_http1=…"
 * line from the best run of each.
 *
 * Every answer is checked (found, value "world"). Prints one
 * "RESULT calls=… seconds=… calls_per_s=… p50_us=… p99_us=…" line.
 */
#include <connectplugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv-test.h"

typedef struct {
  CpChannel    *channel;
  KvGetRequest *request;
  GMainLoop    *loop;
  GArray       *latencies;   /* gint64 µs of measured calls */
  guint         warmup_left;
  gint64        call_start;
  gint64        measure_start;
  gint64        measure_end;
  gint64        deadline;
  GError       *error;
} Bench;

static void start_call (Bench *bench);

static void
on_call_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Bench *bench = user_data;
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GBytes) value = NULL;
  gint64 now = g_get_monotonic_time ();

  response = cp_channel_call_finish (CP_CHANNEL (source), result, &bench->error);
  if (response == NULL)
    {
      g_main_loop_quit (bench->loop);
      return;
    }
  if (!KV_IS_GET_RESPONSE (response) ||
      !kv_get_response_get_found (KV_GET_RESPONSE (response)) ||
      (value = kv_get_response_get_value (KV_GET_RESPONSE (response))) == NULL ||
      g_bytes_get_size (value) != 5 ||
      memcmp (g_bytes_get_data (value, NULL), "world", 5) != 0)
    {
      bench->error = g_error_new (CP_ERROR, CP_ERROR_INTERNAL, "unexpected Get response");
      g_main_loop_quit (bench->loop);
      return;
    }

  if (bench->warmup_left > 0)
    {
      if (--bench->warmup_left == 0)
        {
          bench->measure_start = now;
          bench->deadline += now;
        }
    }
  else
    {
      gint64 us = now - bench->call_start;
      g_array_append_val (bench->latencies, us);
      if (now >= bench->deadline)
        {
          bench->measure_end = now;
          g_main_loop_quit (bench->loop);
          return;
        }
    }
  start_call (bench);
}

static void
start_call (Bench *bench)
{
  bench->call_start = g_get_monotonic_time ();
  cp_channel_call_async (bench->channel, KV_PROCEDURE_GET, CP_MESSAGE (bench->request),
                         KV_TYPE_GET_RESPONSE, NULL, NULL, on_call_done, bench);
}

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

/* One measuring run on a fresh channel: prints its RESULT line and
 * returns the calls per second, or -1 on failure. */
static gdouble
measure (const char *url,
         gboolean    http2,
         gdouble     seconds)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvGetRequest) request = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GArray) latencies = g_array_new (FALSE, FALSE, sizeof (gint64));
  Bench bench = { 0 };
  gdouble elapsed;
  gint64 *lat;
  guint n;

  channel = cp_channel_new (url, &error);
  if (channel == NULL)
    {
      g_printerr ("bench-client: %s\n", error->message);
      return -1;
    }
  if (http2)
    cp_channel_set_http_version (channel, CP_HTTP_VERSION_HTTP_2);
  request = kv_test_get_request ("hello");
  loop = g_main_loop_new (NULL, FALSE);

  bench.channel = channel;
  bench.request = request;
  bench.loop = loop;
  bench.latencies = latencies;
  bench.warmup_left = 500;
  bench.deadline = (gint64) (seconds * G_USEC_PER_SEC);
  start_call (&bench);
  g_main_loop_run (loop);

  if (bench.error != NULL)
    {
      g_printerr ("bench-client: call %u failed: %s\n", latencies->len, bench.error->message);
      g_error_free (bench.error);
      return -1;
    }

  n = latencies->len;
  if (n == 0)
    {
      g_printerr ("bench-client: no call completed in the measuring window\n");
      return -1;
    }
  lat = (gint64 *) (gpointer) latencies->data;
  qsort (lat, n, sizeof (gint64), compare_gint64);
  elapsed = (gdouble) (bench.measure_end - bench.measure_start) / G_USEC_PER_SEC;
  printf ("RESULT calls=%u seconds=%.3f calls_per_s=%.0f p50_us=%" G_GINT64_FORMAT
          " p99_us=%" G_GINT64_FORMAT "\n",
          n, elapsed, n / elapsed, lat[n / 2], lat[(gsize) n * 99 / 100]);
  return n / elapsed;
}

int
main (int argc, char **argv)
{
  g_autofree char *url = NULL;
  gdouble seconds = 3.0;
  gboolean http2 = FALSE;
  gboolean compare = FALSE;
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  gdouble h1 = 0, h2 = 0;
  GOptionEntry entries[] = {
    { "url", 0, 0, G_OPTION_ARG_STRING, &url, "Server URL (http://H:P or unix:/path)", "URL" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "How long to measure", "S" },
    { "http2", 0, 0, G_OPTION_ARG_NONE, &http2, "Speak HTTP/2 (h2c)", NULL },
    { "compare", 0, 0, G_OPTION_ARG_NONE, &compare,
      "HTTP/1.1 then HTTP/2, twice each, alternating; print the ratio of the best runs", NULL },
    { NULL }
  };

  options = g_option_context_new ("- sequential unary calls through CpChannel");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || url == NULL)
    {
      g_printerr ("%s\n", error ? error->message : "--url is required");
      return 2;
    }
  kv_test_ensure_types ();

  if (!compare)
    return measure (url, http2, seconds) < 0 ? 1 : 0;
  for (int round = 0; round < 2; round++)
    {
      gdouble r1, r2;

      printf ("HTTP/1.1 ");
      if ((r1 = measure (url, FALSE, seconds)) < 0)
        return 1;
      printf ("HTTP/2   ");
      if ((r2 = measure (url, TRUE, seconds)) < 0)
        return 1;
      h1 = MAX (h1, r1);
      h2 = MAX (h2, r2);
    }
  printf ("RATIO http1_calls_per_s=%.0f http2_calls_per_s=%.0f http2_over_http1=%.2f\n",
          h1, h2, h2 / h1);
  return 0;
}
