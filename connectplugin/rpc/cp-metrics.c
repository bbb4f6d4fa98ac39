/* cp-metrics.c: a server's counters and histograms, in the Prometheus text format
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The series of each procedure (CpMetricsMethod) are counted by the engine
 * (cp-rpc-server.c starts a call, cp-invocation*.c counts its bytes,
 * messages and end); this file makes them and writes the exposition:
 * https://prometheus.io/docs/instrumenting/exposition_formats/ (text format
 * 0.0.4). Families are written even when they have no sample yet, so that
 * a scraper sees every name from the first scrape.
 */
#include "cp-metrics-private.h"

#include <string.h>

typedef struct {
  CpMetricsCollector collector;
  gpointer user_data;
  GDestroyNotify destroy;
} Collector;

struct _CpMetrics
{
  GHashTable *by_procedure;   /* procedure → CpMetricsMethod* (owned by methods) */
  GPtrArray *methods;         /* CpMetricsMethod*, in order of first call */
  GArray *collectors;         /* Collector */
  GString *text;              /* the last exposition */
};

/* The `le` labels of the duration buckets (cp_metrics_bucket_index()). */
static const char * const bucket_labels[CP_METRICS_N_BUCKETS + 1] = {
  "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
  "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
};

static void
method_free (gpointer data)
{
  CpMetricsMethod *method = data;

  g_free (method->service_label);
  g_free (method->method_label);
  g_free (method);
}

CpMetrics *
cp_metrics_new (void)
{
  CpMetrics *metrics = g_new0 (CpMetrics, 1);

  metrics->by_procedure = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  metrics->methods = g_ptr_array_new_with_free_func (method_free);
  metrics->collectors = g_array_new (FALSE, FALSE, sizeof (Collector));
  metrics->text = g_string_new (NULL);
  return metrics;
}

void
cp_metrics_clear_collectors (CpMetrics *metrics)
{
  g_return_if_fail (metrics != NULL);

  /* Taken out first: a destroy notify may not see itself still listed. */
  while (metrics->collectors->len > 0)
    {
      Collector c = g_array_index (metrics->collectors, Collector, metrics->collectors->len - 1);

      g_array_set_size (metrics->collectors, metrics->collectors->len - 1);
      if (c.destroy != NULL)
        c.destroy (c.user_data);
    }
}

void
cp_metrics_free (CpMetrics *metrics)
{
  if (metrics == NULL)
    return;
  cp_metrics_clear_collectors (metrics);
  g_array_unref (metrics->collectors);
  g_hash_table_unref (metrics->by_procedure);
  g_ptr_array_unref (metrics->methods);
  g_string_free (metrics->text, TRUE);
  g_free (metrics);
}

void
cp_metrics_append_label_value (GString    *out,
                               const char *value)
{
  g_autofree char *valid = NULL;

  if (!g_utf8_validate (value, -1, NULL))
    value = valid = g_utf8_make_valid (value, -1);
  for (const char *p = value; *p != '\0'; p++)
    switch (*p)
      {
      case '\\':
        g_string_append (out, "\\\\");
        break;
      case '"':
        g_string_append (out, "\\\"");
        break;
      case '\n':
        g_string_append (out, "\\n");
        break;
      default:
        g_string_append_c (out, *p);
      }
}

void
cp_metrics_write_family (GString    *out,
                         const char *name,
                         const char *type,
                         const char *help)
{
  g_string_append_printf (out, "# HELP %s ", name);
  /* In HELP text only backslash and line feed are escaped. */
  for (const char *p = help; *p != '\0'; p++)
    if (*p == '\\')
      g_string_append (out, "\\\\");
    else if (*p == '\n')
      g_string_append (out, "\\n");
    else
      g_string_append_c (out, *p);
  g_string_append_printf (out, "\n# TYPE %s %s\n", name, type);
}

static char *
escape_label_value (const char *value)
{
  GString *out = g_string_new (NULL);

  cp_metrics_append_label_value (out, value);
  return g_string_free (out, FALSE);
}

CpMetricsMethod *
cp_metrics_get_method (CpMetrics  *metrics,
                       const char *procedure,
                       gboolean    stream)
{
  CpMetricsMethod *method;
  const char *slash;
  g_autofree char *service = NULL;

  g_return_val_if_fail (metrics != NULL, NULL);
  g_return_val_if_fail (procedure != NULL, NULL);

  method = g_hash_table_lookup (metrics->by_procedure, procedure);
  if (method != NULL)
    {
      /* A method replaced by a streaming one at the same path. */
      method->stream |= stream;
      return method;
    }

  /* "/pkg.Service/Method": service "pkg.Service", method "Method"; a
   * procedure of another shape is all method. */
  method = g_new0 (CpMetricsMethod, 1);
  method->stream = stream;
  slash = strrchr (procedure, '/');
  if (procedure[0] == '/' && slash != NULL && slash != procedure)
    {
      service = g_strndup (procedure + 1, slash - procedure - 1);
      method->service_label = escape_label_value (service);
      method->method_label = escape_label_value (slash + 1);
    }
  else
    {
      method->service_label = g_strdup ("");
      method->method_label = escape_label_value (procedure);
    }
  g_hash_table_insert (metrics->by_procedure, g_strdup (procedure), method);
  g_ptr_array_add (metrics->methods, method);
  return method;
}

void
cp_metrics_add_collector (CpMetrics          *metrics,
                          CpMetricsCollector  collector,
                          gpointer            user_data,
                          GDestroyNotify      destroy)
{
  Collector c = { collector, user_data, destroy };

  g_return_if_fail (metrics != NULL);
  g_return_if_fail (collector != NULL);

  g_array_append_val (metrics->collectors, c);
}

/* ------------------------------------------------------------------ */
/* Exposition                                                           */

static void
append_labels (GString         *out,
               CpMetricsMethod *method)
{
  g_string_append (out, "{service=\"");
  g_string_append (out, method->service_label);
  g_string_append (out, "\",method=\"");
  g_string_append (out, method->method_label);
  g_string_append_c (out, '"');
}

/* NAME{service="…",method="…"} VALUE */
static void
append_sample (GString         *out,
               const char      *name,
               CpMetricsMethod *method,
               guint64          value)
{
  g_string_append (out, name);
  append_labels (out, method);
  g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", value);
}

/* A family with one sample per method, from the field at @offset. */
static void
write_method_counter (CpMetrics  *metrics,
                      const char *name,
                      const char *help,
                      gsize       offset)
{
  GString *out = metrics->text;

  cp_metrics_write_family (out, name, "counter", help);
  for (guint i = 0; i < metrics->methods->len; i++)
    {
      CpMetricsMethod *method = metrics->methods->pdata[i];

      append_sample (out, name, method, cp_metrics_get (G_STRUCT_MEMBER (guint64, method, offset)));
    }
}

static guint64
method_handled (CpMetricsMethod *method)
{
  guint64 handled = 0;

  for (guint c = 0; c < CP_METRICS_N_CODES; c++)
    handled += cp_metrics_get (method->handled[c]);
  return handled;
}

static void
write_calls (CpMetrics *metrics)
{
  GString *out = metrics->text;

  write_method_counter (metrics, "connectplugin_server_calls_started_total",
                        "RPC calls the server started (requests that passed routing, "
                        "verb and content-type checks).",
                        G_STRUCT_OFFSET (CpMetricsMethod, started));

  cp_metrics_write_family (out, "connectplugin_server_calls_total", "counter",
                           "RPC calls the server completed, by Connect code (ok for success).");
  for (guint i = 0; i < metrics->methods->len; i++)
    {
      CpMetricsMethod *method = metrics->methods->pdata[i];

      for (guint c = 0; c < CP_METRICS_N_CODES; c++)
        {
          guint64 handled = cp_metrics_get (method->handled[c]);

          if (handled == 0)
            continue;
          g_string_append (out, "connectplugin_server_calls_total");
          append_labels (out, method);
          g_string_append_printf (out, ",code=\"%s\"} %" G_GUINT64_FORMAT "\n",
                                  c == 0 ? "ok" : cp_error_code_to_string (c),
                                  handled);
        }
    }

  cp_metrics_write_family (out, "connectplugin_server_calls_in_flight", "gauge",
                           "RPC calls the server has started and not completed.");
  for (guint i = 0; i < metrics->methods->len; i++)
    {
      CpMetricsMethod *method = metrics->methods->pdata[i];
      guint64 handled = method_handled (method);
      guint64 started = cp_metrics_get (method->started);

      append_sample (out, "connectplugin_server_calls_in_flight", method,
                     started > handled ? started - handled : 0);
    }
}

static void
write_durations (CpMetrics *metrics)
{
  static const char name[] = "connectplugin_server_call_duration_seconds";
  GString *out = metrics->text;

  cp_metrics_write_family (out, name, "histogram",
                           "Time from the arrival of a call's request head to the end of "
                           "its response, in seconds.");
  for (guint i = 0; i < metrics->methods->len; i++)
    {
      CpMetricsMethod *method = metrics->methods->pdata[i];
      guint64 cumulative = 0;
      guint64 sum_us = cp_metrics_get (method->duration_sum_us);

      for (guint b = 0; b <= CP_METRICS_N_BUCKETS; b++)
        {
          cumulative += cp_metrics_get (method->buckets[b]);
          g_string_append_printf (out, "%s_bucket", name);
          append_labels (out, method);
          g_string_append_printf (out, ",le=\"%s\"} %" G_GUINT64_FORMAT "\n",
                                  bucket_labels[b], cumulative);
        }
      g_string_append_printf (out, "%s_sum", name);
      append_labels (out, method);
      g_string_append_printf (out, "} %" G_GUINT64_FORMAT ".%06u\n",
                              sum_us / G_USEC_PER_SEC,
                              (guint) (sum_us % G_USEC_PER_SEC));
      g_string_append_printf (out, "%s_count", name);
      append_labels (out, method);
      g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", cumulative);
    }
}

static void
write_messages (CpMetrics *metrics)
{
  static const char name[] = "connectplugin_server_stream_messages_total";
  GString *out = metrics->text;

  cp_metrics_write_family (out, name, "counter",
                           "Messages of streaming calls, received (requests) and sent "
                           "(responses, without the end of stream).");
  for (guint i = 0; i < metrics->methods->len; i++)
    {
      CpMetricsMethod *method = metrics->methods->pdata[i];

      if (!method->stream)
        continue;
      g_string_append (out, name);
      append_labels (out, method);
      g_string_append_printf (out, ",direction=\"received\"} %" G_GUINT64_FORMAT "\n",
                              cp_metrics_get (method->messages_received));
      g_string_append (out, name);
      append_labels (out, method);
      g_string_append_printf (out, ",direction=\"sent\"} %" G_GUINT64_FORMAT "\n",
                              cp_metrics_get (method->messages_sent));
    }
}

const char *
cp_metrics_render (CpMetrics *metrics)
{
  g_return_val_if_fail (metrics != NULL, NULL);

  g_string_truncate (metrics->text, 0);
  write_calls (metrics);
  write_durations (metrics);
  write_method_counter (metrics, "connectplugin_server_request_bytes_total",
                        "Request body bytes the server received for RPC calls, as sent "
                        "(compressed when the client compressed).",
                        G_STRUCT_OFFSET (CpMetricsMethod, request_bytes));
  write_method_counter (metrics, "connectplugin_server_response_bytes_total",
                        "Response body bytes the server sent for RPC calls, as sent "
                        "(compressed when the server compressed).",
                        G_STRUCT_OFFSET (CpMetricsMethod, response_bytes));
  write_messages (metrics);

  for (guint i = 0; i < metrics->collectors->len; i++)
    {
      Collector *c = &g_array_index (metrics->collectors, Collector, i);

      c->collector (metrics->text, c->user_data);
    }
  return metrics->text->str;
}
