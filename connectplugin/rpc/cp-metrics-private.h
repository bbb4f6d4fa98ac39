/* cp-metrics-private.h: a server's counters and histograms, in the Prometheus text format
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One CpMetrics per CpRpcServer, made when CpRpcServer:metrics-enabled is
 * first set and kept until the server is finalized (running calls keep
 * pointers into it). It has one CpMetricsMethod per procedure called so far,
 * made at the method's first call and cached on the server's route, so that
 * a call costs a few increments and no allocation or lookup. The counters
 * are changed and read with relaxed atomics (cp_metrics_add() and
 * cp_metrics_get()): with CpRpcServer:n-workers > 1 the calls of one method
 * count into its series from several worker threads at once. The methods'
 * table is changed and rendered under the server's lock.
 *
 * cp_metrics_render() writes the Prometheus text exposition format 0.0.4;
 * docs/engine.md ("Metrics") lists the names and labels.
 */
#pragma once

#include <glib.h>
#include "cp-error.h"

G_BEGIN_DECLS

/* Upper bounds of the call duration histogram, in µs (the last bucket,
 * +Inf, is implicit): Prometheus's default buckets (5 ms to 10 s) and three
 * finer ones below, where a local RPC lands. */
#define CP_METRICS_N_BUCKETS 14
/* Outcomes: 0 is "ok", 1–16 the Connect codes (CpError). */
#define CP_METRICS_N_CODES 17

typedef struct _CpMetrics CpMetrics;

typedef struct {
  guint64 started;
  guint64 handled[CP_METRICS_N_CODES];
  guint64 buckets[CP_METRICS_N_BUCKETS + 1];   /* per bucket, not cumulative; last: +Inf */
  guint64 duration_sum_us;
  guint64 request_bytes;                        /* request bodies, as received */
  guint64 response_bytes;                       /* response bodies, as sent */
  guint64 messages_received;                    /* stream calls' request messages */
  guint64 messages_sent;                        /* stream calls' response messages */
  gboolean stream;                              /* a streaming method: messages are written */
  /* Label values, escaped for the exposition. */
  char *service_label;
  char *method_label;
} CpMetricsMethod;

/* Appends text to the exposition, after the server's own families. */
typedef void (*CpMetricsCollector) (GString  *out,
                                    gpointer  user_data);

CpMetrics       *cp_metrics_new              (void);
void             cp_metrics_free             (CpMetrics          *metrics);

/* The series of @procedure ("/pkg.Service/Method"), made on first use;
 * @stream: a streaming method (its messages are exposed). Transfer none,
 * valid as long as @metrics. */
CpMetricsMethod *cp_metrics_get_method       (CpMetrics          *metrics,
                                              const char         *procedure,
                                              gboolean            stream);

/* Adds a collector; @destroy frees @user_data in
 * cp_metrics_clear_collectors() or cp_metrics_free(). */
void             cp_metrics_add_collector    (CpMetrics          *metrics,
                                              CpMetricsCollector  collector,
                                              gpointer            user_data,
                                              GDestroyNotify      destroy);
void             cp_metrics_clear_collectors (CpMetrics          *metrics);

/* The whole exposition (transfer none: valid until the next render or
 * cp_metrics_free()). */
const char      *cp_metrics_render           (CpMetrics          *metrics);

/* Exposition helpers for collectors: a family's `# HELP` and `# TYPE`
 * lines (@help is escaped), and a label value escaped per the format
 * (backslash, double quote and line feed; invalid UTF-8 replaced). */
void             cp_metrics_write_family     (GString            *out,
                                              const char         *name,
                                              const char         *type,
                                              const char         *help);
void             cp_metrics_append_label_value (GString          *out,
                                                const char       *value);

/* A counter of a CpMetricsMethod, from any thread. */
#define cp_metrics_add(counter, n) ((void) __atomic_fetch_add (&(counter), (n), __ATOMIC_RELAXED))
#define cp_metrics_get(counter)    __atomic_load_n (&(counter), __ATOMIC_RELAXED)

/* The call duration bucket of @duration_us. */
static inline guint
cp_metrics_bucket_index (gint64 duration_us)
{
  static const gint64 bounds_us[CP_METRICS_N_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
  };
  guint i;

  for (i = 0; i < CP_METRICS_N_BUCKETS; i++)
    if (duration_us <= bounds_us[i])
      break;
  return i;
}

/* A call of @method ended with @code (0 for success) after @duration_us. */
static inline void
cp_metrics_method_finished (CpMetricsMethod *method,
                            CpError          code,
                            gint64           duration_us)
{
  guint index = (guint) code < CP_METRICS_N_CODES ? (guint) code : CP_ERROR_UNKNOWN;

  if (duration_us < 0)
    duration_us = 0;
  cp_metrics_add (method->handled[index], 1);
  cp_metrics_add (method->buckets[cp_metrics_bucket_index (duration_us)], 1);
  cp_metrics_add (method->duration_sum_us, (guint64) duration_us);
}

G_END_DECLS
