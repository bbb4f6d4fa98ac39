/* cp-client-metrics-private.h: a client's counters and histograms (one plugin's calls), in the Prometheus text format
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One CpClientMetrics per CpChannel with CpChannel:metrics-enabled, or per
 * CpClient with CpClient:metrics-enabled (then shared by every channel the
 * client connects, so the series survive reconnects). It has one
 * CpClientMetricsMethod per procedure called so far, made at its first
 * call and kept as long as the CpClientMetrics.
 *
 * Threads: unlike a server's CpMetrics, a channel is called from several
 * threads at once (blocking calls from worker threads, each thread with its
 * own context, see docs/architecture.md), and a call may end in another
 * thread than the one that scrapes. So the procedure table is under a
 * mutex (taken to find a series, except when a call is to the same
 * procedure as the last lookup: that series is kept in an atomic
 * pointer, and series live as long as their CpClientMetrics), the counters are
 * updated with relaxed atomic additions and read with atomic loads (a
 * scrape may see a call counted as started and not yet ended, never a torn
 * number), and the object is reference-counted atomically.
 *
 * cp_client_metrics_render() writes the client families of any number of
 * CpClientMetrics family by family, so that an exposition covering several
 * plugins declares each family once; docs/engine.md ("Metrics") lists the
 * names and labels.
 */
#pragma once

#include <glib.h>

#include "cp-circuit-breaker.h"
#include "cp-metrics-private.h"

G_BEGIN_DECLS

typedef struct _CpClientMetrics CpClientMetrics;

typedef struct {
  CpMetricsMethod counts;   /* messages_sent: request messages of streams */
  guint64 retries;          /* retries made (attempts after the first) */
  guint64 throttled;        /* retries the channel's budget refused */
} CpClientMetricsMethod;

/* One call's counting: zero-initialised = not counted. */
typedef struct {
  CpClientMetrics       *metrics;   /* referenced until the end */
  CpClientMetricsMethod *method;
  gint64                 start;     /* monotonic µs */
} CpClientMetricsCall;

/* @plugin: the `plugin` label (NULL = ""). */
CpClientMetrics *cp_client_metrics_new        (const char      *plugin);
CpClientMetrics *cp_client_metrics_ref        (CpClientMetrics *metrics);
void             cp_client_metrics_unref      (CpClientMetrics *metrics);
void             cp_client_metrics_set_plugin (CpClientMetrics *metrics,
                                               const char      *plugin);

/* The plugin's health for connectplugin_client_plugin_health: 0 none
 * reported (no series), 1 healthy, 2 degraded, 3 unhealthy (the numbers of
 * the protocol's HealthState). */
void             cp_client_metrics_set_health (CpClientMetrics *metrics,
                                               int              health);
/* The breaker whose state is exposed (nullable). */
void             cp_client_metrics_set_circuit_breaker (CpClientMetrics  *metrics,
                                                        CpCircuitBreaker *breaker);

/* The series of @procedure, made on first use; transfer none, valid as
 * long as @metrics. Thread-safe. */
CpClientMetricsMethod *cp_client_metrics_get_method (CpClientMetrics *metrics,
                                                     const char      *procedure,
                                                     gboolean         stream);

/* A call starts (@metrics nullable: then nothing is counted). */
void             cp_client_metrics_call_begin (CpClientMetricsCall *call,
                                               CpClientMetrics     *metrics,
                                               const char          *procedure,
                                               gboolean             stream);
/* The call ended with @error (NULL: ok); once, then @call is cleared. */
void             cp_client_metrics_call_end   (CpClientMetricsCall *call,
                                               const GError        *error);
/* A call dropped without an outcome counts as canceled. */
void             cp_client_metrics_call_clear (CpClientMetricsCall *call);

#define cp_client_metrics_add(field, n) \
  ((void) __atomic_fetch_add (&(field), (guint64) (n), __ATOMIC_RELAXED))

/* Counts @n request (@sent) or response bytes of @call, if counted. */
static inline void
cp_client_metrics_call_add_bytes (CpClientMetricsCall *call,
                                  gboolean             sent,
                                  gsize                n)
{
  if (call->method == NULL)
    return;
  if (sent)
    cp_client_metrics_add (call->method->counts.request_bytes, n);
  else
    cp_client_metrics_add (call->method->counts.response_bytes, n);
}

/* Counts @n stream messages sent (requests) or received. */
static inline void
cp_client_metrics_call_add_messages (CpClientMetricsCall *call,
                                     gboolean             sent,
                                     guint                n)
{
  if (call->method == NULL)
    return;
  if (sent)
    cp_client_metrics_add (call->method->counts.messages_sent, n);
  else
    cp_client_metrics_add (call->method->counts.messages_received, n);
}

/* Appends the client families of @sources (CpClientMetrics*), each
 * family declared once. */
void             cp_client_metrics_render     (GString         *out,
                                               GPtrArray       *sources);

G_END_DECLS
