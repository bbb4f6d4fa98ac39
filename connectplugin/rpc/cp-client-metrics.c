/* cp-client-metrics.c: a client's counters and histograms, in the Prometheus text format
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The calls of the channel's units (cp-channel-unary.c, the stream objects)
 * count into a CpClientMetricsMethod through CpClientMetricsCall; the
 * retries are counted by cp_call_retry_decide (). This file makes the
 * series and writes them; see cp-client-metrics-private.h for the
 * threading rules.
 */
#include "cp-client-metrics-private.h"
#include "cp-circuit-breaker-private.h"

#include <string.h>

struct _CpClientMetrics
{
  gint ref_count;
  GMutex lock;
  GHashTable *by_procedure;   /* procedure → Series* (owned by series) */
  GPtrArray *series;          /* Series*, in order of first call; only grows */
  char *plugin_label;         /* escaped; under the lock */
  int health;                 /* atomic; 0 = none */
  CpCircuitBreaker *breaker;  /* under the lock */
  gpointer last;              /* Series*, atomic: the last one looked up */
};

typedef struct {
  CpClientMetricsMethod m;
  char *procedure;
  char *labels;               /* service="…",method="…" (the plugin is added when written) */
} Series;

#define load(field) __atomic_load_n (&(field), __ATOMIC_RELAXED)

/* The `le` labels of the duration buckets (cp_metrics_bucket_index()). */
static const char * const bucket_labels[CP_METRICS_N_BUCKETS + 1] = {
  "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
  "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

static void
series_free (gpointer data)
{
  Series *s = data;

  g_free (s->procedure);
  g_free (s->labels);
  g_free (s);
}

static char *
escape (const char *value)
{
  GString *out = g_string_new (NULL);

  cp_metrics_append_label_value (out, value != NULL ? value : "");
  return g_string_free (out, FALSE);
}

CpClientMetrics *
cp_client_metrics_new (const char *plugin)
{
  CpClientMetrics *metrics = g_new0 (CpClientMetrics, 1);

  metrics->ref_count = 1;
  g_mutex_init (&metrics->lock);
  metrics->by_procedure = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  metrics->series = g_ptr_array_new_with_free_func (series_free);
  metrics->plugin_label = escape (plugin);
  return metrics;
}

CpClientMetrics *
cp_client_metrics_ref (CpClientMetrics *metrics)
{
  g_return_val_if_fail (metrics != NULL, NULL);

  g_atomic_int_inc (&metrics->ref_count);
  return metrics;
}

void
cp_client_metrics_unref (CpClientMetrics *metrics)
{
  if (metrics == NULL || !g_atomic_int_dec_and_test (&metrics->ref_count))
    return;
  g_hash_table_unref (metrics->by_procedure);
  g_ptr_array_unref (metrics->series);
  g_clear_object (&metrics->breaker);
  g_free (metrics->plugin_label);
  g_mutex_clear (&metrics->lock);
  g_free (metrics);
}

void
cp_client_metrics_set_plugin (CpClientMetrics *metrics,
                              const char      *plugin)
{
  char *label = escape (plugin);

  g_mutex_lock (&metrics->lock);
  g_free (metrics->plugin_label);
  metrics->plugin_label = label;
  g_mutex_unlock (&metrics->lock);
}

void
cp_client_metrics_set_health (CpClientMetrics *metrics,
                              int              health)
{
  g_atomic_int_set (&metrics->health, health >= 1 && health <= 3 ? health : 0);
}

void
cp_client_metrics_set_circuit_breaker (CpClientMetrics  *metrics,
                                       CpCircuitBreaker *breaker)
{
  g_mutex_lock (&metrics->lock);
  g_set_object (&metrics->breaker, breaker);
  g_mutex_unlock (&metrics->lock);
}

CpClientMetricsMethod *
cp_client_metrics_get_method (CpClientMetrics *metrics,
                              const char      *procedure,
                              gboolean         stream)
{
  Series *s = g_atomic_pointer_get (&metrics->last);

  /* Calls in a row to one procedure skip the lock: a series, once made,
   * lives as long as @metrics. */
  if (s != NULL && strcmp (s->procedure, procedure) == 0 &&
      (!stream || load (s->m.counts.stream)))
    return &s->m;

  g_mutex_lock (&metrics->lock);
  s = g_hash_table_lookup (metrics->by_procedure, procedure);
  if (s == NULL)
    {
      const char *slash = strrchr (procedure, '/');
      g_autofree char *service = NULL;
      g_autofree char *service_label = NULL;
      g_autofree char *method_label = NULL;

      /* "/pkg.Service/Method" as the server splits it. */
      if (procedure[0] == '/' && slash != NULL && slash != procedure)
        {
          service = g_strndup (procedure + 1, slash - procedure - 1);
          service_label = escape (service);
          method_label = escape (slash + 1);
        }
      else
        {
          service_label = g_strdup ("");
          method_label = escape (procedure);
        }
      s = g_new0 (Series, 1);
      s->procedure = g_strdup (procedure);
      s->labels = g_strdup_printf ("service=\"%s\",method=\"%s\"", service_label, method_label);
      g_hash_table_insert (metrics->by_procedure, g_strdup (procedure), s);
      g_ptr_array_add (metrics->series, s);
    }
  /* Written before any reader can see the series as a stream's. */
  if (stream && !load (s->m.counts.stream))
    __atomic_store_n (&s->m.counts.stream, TRUE, __ATOMIC_RELAXED);
  g_atomic_pointer_set (&metrics->last, s);
  g_mutex_unlock (&metrics->lock);
  return &s->m;
}

void
cp_client_metrics_call_begin (CpClientMetricsCall *call,
                              CpClientMetrics     *metrics,
                              const char          *procedure,
                              gboolean             stream)
{
  memset (call, 0, sizeof *call);
  if (G_LIKELY (metrics == NULL))
    return;
  call->metrics = cp_client_metrics_ref (metrics);
  call->method = cp_client_metrics_get_method (metrics, procedure, stream);
  call->start = g_get_monotonic_time ();
  cp_client_metrics_add (call->method->counts.started, 1);
}

void
cp_client_metrics_call_end (CpClientMetricsCall *call,
                            const GError        *error)
{
  CpMetricsMethod *m;
  guint code;
  gint64 duration_us;

  if (call->method == NULL)
    return;
  m = &call->method->counts;
  code = error != NULL ? (guint) cp_error_get_code (error) : 0;
  if (code >= CP_METRICS_N_CODES)
    code = CP_ERROR_UNKNOWN;
  duration_us = MAX (g_get_monotonic_time () - call->start, 0);
  /* The duration first: a scrape that sees the call ended sees it in the
   * histogram too. */
  cp_client_metrics_add (m->buckets[cp_metrics_bucket_index (duration_us)], 1);
  cp_client_metrics_add (m->duration_sum_us, duration_us);
  cp_client_metrics_add (m->handled[code], 1);
  call->method = NULL;
  g_clear_pointer (&call->metrics, cp_client_metrics_unref);
}

void
cp_client_metrics_call_clear (CpClientMetricsCall *call)
{
  if (call->method != NULL)
    {
      GError cancelled = { G_IO_ERROR, G_IO_ERROR_CANCELLED, (char *) "dropped" };

      cp_client_metrics_call_end (call, &cancelled);
    }
  g_clear_pointer (&call->metrics, cp_client_metrics_unref);
}

/* ------------------------------------------------------------------ */
/* Exposition: family by family, all sources in each                  */

/* Calls @func for each series of each source, with the source locked
 * (its plugin label stable); @prefix: `plugin="…",service=…,method=…`. */
typedef void (*SeriesFunc) (GString *out, const char *name, const char *prefix,
                            CpClientMetricsMethod *m, gpointer data);

static void
foreach_series (GString    *out,
                GPtrArray  *sources,
                const char *name,
                SeriesFunc  func,
                gpointer    data)
{
  g_autoptr(GString) prefix = g_string_new (NULL);

  for (guint i = 0; i < sources->len; i++)
    {
      CpClientMetrics *metrics = sources->pdata[i];

      g_mutex_lock (&metrics->lock);
      for (guint j = 0; j < metrics->series->len; j++)
        {
          Series *s = metrics->series->pdata[j];

          g_string_printf (prefix, "plugin=\"%s\",%s", metrics->plugin_label, s->labels);
          func (out, name, prefix->str, &s->m, data);
        }
      g_mutex_unlock (&metrics->lock);
    }
}

static void
write_field (GString *out, const char *name, const char *prefix,
             CpClientMetricsMethod *m, gpointer data)
{
  g_string_append_printf (out, "%s{%s} %" G_GUINT64_FORMAT "\n", name, prefix,
                          load (G_STRUCT_MEMBER (guint64, m, GPOINTER_TO_SIZE (data))));
}

static void
write_codes (GString *out, const char *name, const char *prefix,
             CpClientMetricsMethod *m, gpointer data)
{
  for (guint c = 0; c < CP_METRICS_N_CODES; c++)
    {
      guint64 n = load (m->counts.handled[c]);

      if (n > 0)
        g_string_append_printf (out, "%s{%s,code=\"%s\"} %" G_GUINT64_FORMAT "\n", name, prefix,
                                c == 0 ? "ok" : cp_error_code_to_string (c), n);
    }
}

static void
write_in_flight (GString *out, const char *name, const char *prefix,
                 CpClientMetricsMethod *m, gpointer data)
{
  guint64 handled = 0;
  guint64 started;

  for (guint c = 0; c < CP_METRICS_N_CODES; c++)
    handled += load (m->counts.handled[c]);
  /* Read after the ends: never below the calls really under way. */
  started = load (m->counts.started);
  g_string_append_printf (out, "%s{%s} %" G_GUINT64_FORMAT "\n", name, prefix,
                          started > handled ? started - handled : 0);
}

static void
write_histogram (GString *out, const char *name, const char *prefix,
                 CpClientMetricsMethod *m, gpointer data)
{
  guint64 cumulative = 0;
  guint64 sum_us = load (m->counts.duration_sum_us);

  for (guint b = 0; b <= CP_METRICS_N_BUCKETS; b++)
    {
      cumulative += load (m->counts.buckets[b]);
      g_string_append_printf (out, "%s_bucket{%s,le=\"%s\"} %" G_GUINT64_FORMAT "\n",
                              name, prefix, bucket_labels[b], cumulative);
    }
  g_string_append_printf (out, "%s_sum{%s} %" G_GUINT64_FORMAT ".%06u\n", name, prefix,
                          sum_us / G_USEC_PER_SEC, (guint) (sum_us % G_USEC_PER_SEC));
  g_string_append_printf (out, "%s_count{%s} %" G_GUINT64_FORMAT "\n", name, prefix,
                          cumulative);
}

static void
write_messages (GString *out, const char *name, const char *prefix,
                CpClientMetricsMethod *m, gpointer data)
{
  if (!load (m->counts.stream))
    return;
  g_string_append_printf (out, "%s{%s,direction=\"sent\"} %" G_GUINT64_FORMAT "\n",
                          name, prefix, load (m->counts.messages_sent));
  g_string_append_printf (out, "%s{%s,direction=\"received\"} %" G_GUINT64_FORMAT "\n",
                          name, prefix, load (m->counts.messages_received));
}

static void
write_counter (GString    *out,
               GPtrArray  *sources,
               const char *name,
               const char *help,
               gsize       offset)
{
  cp_metrics_write_family (out, name, "counter", help);
  foreach_series (out, sources, name, write_field, GSIZE_TO_POINTER (offset));
}

/* The per-plugin gauges: health and circuit state. */
static void
write_plugin_states (GString   *out,
                     GPtrArray *sources)
{
  static const char * const health_states[] = { "healthy", "degraded", "unhealthy" };
  static const char * const circuit_states[] = { "closed", "open", "half_open" };

  cp_metrics_write_family (out, "connectplugin_client_plugin_health", "gauge",
                           "The plugin's health as the client's health monitor last saw "
                           "it: 1 for the current state, 0 for the others.");
  for (guint i = 0; i < sources->len; i++)
    {
      CpClientMetrics *metrics = sources->pdata[i];
      int health = g_atomic_int_get (&metrics->health);

      if (health == 0)
        continue;
      g_mutex_lock (&metrics->lock);
      for (guint s = 0; s < G_N_ELEMENTS (health_states); s++)
        g_string_append_printf (out, "connectplugin_client_plugin_health{plugin=\"%s\","
                                "state=\"%s\"} %d\n", metrics->plugin_label, health_states[s],
                                health == (int) s + 1);
      g_mutex_unlock (&metrics->lock);
    }

  cp_metrics_write_family (out, "connectplugin_client_circuit_state", "gauge",
                           "The state of the client's circuit breaker: 1 for the current "
                           "state, 0 for the others.");
  for (guint i = 0; i < sources->len; i++)
    {
      CpClientMetrics *metrics = sources->pdata[i];

      g_mutex_lock (&metrics->lock);
      if (metrics->breaker != NULL)
        {
          CpCircuitState state = cp_circuit_breaker_get_state (metrics->breaker);

          for (guint s = 0; s < G_N_ELEMENTS (circuit_states); s++)
            g_string_append_printf (out, "connectplugin_client_circuit_state{plugin=\"%s\","
                                    "state=\"%s\"} %d\n", metrics->plugin_label,
                                    circuit_states[s], state == (CpCircuitState) s);
        }
      g_mutex_unlock (&metrics->lock);
    }

  cp_metrics_write_family (out, "connectplugin_client_circuit_opened_total", "counter",
                           "Times the client's circuit breaker opened.");
  for (guint i = 0; i < sources->len; i++)
    {
      CpClientMetrics *metrics = sources->pdata[i];

      g_mutex_lock (&metrics->lock);
      if (metrics->breaker != NULL)
        g_string_append_printf (out, "connectplugin_client_circuit_opened_total{plugin=\"%s\"} %"
                                G_GUINT64_FORMAT "\n", metrics->plugin_label,
                                cp_circuit_breaker_get_n_opened (metrics->breaker));
      g_mutex_unlock (&metrics->lock);
    }
}

void
cp_client_metrics_render (GString   *out,
                          GPtrArray *sources)
{
  static const char duration[] = "connectplugin_client_call_duration_seconds";

  g_return_if_fail (out != NULL && sources != NULL);

  write_counter (out, sources, "connectplugin_client_calls_started_total",
                 "RPC calls the client started (one per logical call, whatever its "
                 "attempts).", G_STRUCT_OFFSET (CpClientMetricsMethod, counts.started));

  cp_metrics_write_family (out, "connectplugin_client_calls_total", "counter",
                           "RPC calls the client completed, by Connect code (ok for success).");
  foreach_series (out, sources, "connectplugin_client_calls_total", write_codes, NULL);

  cp_metrics_write_family (out, "connectplugin_client_calls_in_flight", "gauge",
                           "RPC calls the client has started and not completed.");
  foreach_series (out, sources, "connectplugin_client_calls_in_flight", write_in_flight, NULL);

  cp_metrics_write_family (out, duration, "histogram",
                           "Time from the start of a client call (before its interceptors) "
                           "to its outcome, all attempts included, in seconds.");
  foreach_series (out, sources, duration, write_histogram, NULL);

  write_counter (out, sources, "connectplugin_client_request_bytes_total",
                 "Request body bytes the client sent, as sent (compressed when "
                 "compressed), every attempt counted.",
                 G_STRUCT_OFFSET (CpClientMetricsMethod, counts.request_bytes));
  write_counter (out, sources, "connectplugin_client_response_bytes_total",
                 "Response body bytes the client received, as received.",
                 G_STRUCT_OFFSET (CpClientMetricsMethod, counts.response_bytes));

  cp_metrics_write_family (out, "connectplugin_client_stream_messages_total", "counter",
                           "Messages of streaming calls, sent (requests) and received "
                           "(responses, without the end of stream).");
  foreach_series (out, sources, "connectplugin_client_stream_messages_total", write_messages,
                  NULL);

  write_counter (out, sources, "connectplugin_client_retries_total",
                 "Retries the client's retry policy made (attempts after the first).",
                 G_STRUCT_OFFSET (CpClientMetricsMethod, retries));
  write_counter (out, sources, "connectplugin_client_retries_throttled_total",
                 "Retries the channel's retry budget refused.",
                 G_STRUCT_OFFSET (CpClientMetricsMethod, throttled));

  write_plugin_states (out, sources);
}
