/* cp-span.c: a finished span (one call, client or server side), for exporters
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-trace-private.h"
#include "cp-error.h"

/**
 * CpSpan:
 *
 * One finished call as a tracing system records it: its
 * [struct@ConnectPlugin.SpanContext] (trace id, span id, parent span id),
 * its name (the procedure, `/kv.v1.KVService/Get`), its kind, its start and
 * end (wall-clock microseconds, g_get_real_time()), its status and its
 * peer.
 *
 * Spans are handed to [signal@ConnectPlugin.RpcServer::span-finished] and
 * [signal@ConnectPlugin.Channel::span-finished], from which an application
 * exports them to whatever it uses (OTLP, Zipkin, a log). A span is
 * immutable and reference counted.
 */
struct _CpSpan
{
  gatomicrefcount ref_count;

  CpSpanContext *context;
  char *name;
  CpSpanKind kind;
  gint64 start_time;
  gint64 end_time;
  guint status_code;
  char *status_message;
  char *peer;
};

G_DEFINE_BOXED_TYPE (CpSpan, cp_span, cp_span_ref, cp_span_unref)

CpSpan *
cp_span_new_internal (CpSpanContext *context,
                      const char    *name,
                      CpSpanKind     kind,
                      gint64         start_time,
                      gint64         end_time,
                      const GError  *outcome,
                      const char    *peer)
{
  CpSpan *self = g_new0 (CpSpan, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->context = cp_span_context_ref (context);
  self->name = g_strdup (name);
  self->kind = kind;
  self->start_time = start_time;
  self->end_time = end_time;
  if (outcome != NULL)
    {
      self->status_code = cp_error_get_code (outcome);
      self->status_message = g_strdup (outcome->message);
    }
  self->peer = g_strdup (peer);
  return self;
}

/**
 * cp_span_ref:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Acquires a reference on @span.
 *
 * Returns: (transfer full): @span
 */
CpSpan *
cp_span_ref (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, NULL);

  g_atomic_ref_count_inc (&span->ref_count);
  return span;
}

/**
 * cp_span_unref:
 * @span: (transfer full): a [struct@ConnectPlugin.Span]
 *
 * Releases a reference on @span.
 */
void
cp_span_unref (CpSpan *span)
{
  g_return_if_fail (span != NULL);

  if (!g_atomic_ref_count_dec (&span->ref_count))
    return;
  cp_span_context_unref (span->context);
  g_free (span->name);
  g_free (span->status_message);
  g_free (span->peer);
  g_free (span);
}

/**
 * cp_span_get_context:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets the identity of the span: trace id, span id, parent span id.
 *
 * Returns: (transfer none): the span context
 */
CpSpanContext *
cp_span_get_context (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, NULL);
  return span->context;
}

/**
 * cp_span_get_name:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets the name of the span: the procedure, e.g. `/kv.v1.KVService/Get`.
 *
 * Returns: (transfer none): the name
 */
const char *
cp_span_get_name (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, NULL);
  return span->name;
}

/**
 * cp_span_get_kind:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets which side of the call the span measured.
 *
 * Returns: the kind
 */
CpSpanKind
cp_span_get_kind (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, CP_SPAN_KIND_SERVER);
  return span->kind;
}

/**
 * cp_span_get_start_time:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets when the call started (the server: when its request head arrived),
 * in wall-clock microseconds since the epoch (g_get_real_time()).
 *
 * Returns: the start time
 */
gint64
cp_span_get_start_time (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, 0);
  return span->start_time;
}

/**
 * cp_span_get_end_time:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets when the call ended, in wall-clock microseconds since the epoch.
 *
 * Returns: the end time
 */
gint64
cp_span_get_end_time (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, 0);
  return span->end_time;
}

/**
 * cp_span_get_status_code:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets how the call ended: 0 for success, else its Connect code
 * ([error@ConnectPlugin.Error], `canceled` for a call the client
 * cancelled).
 *
 * Returns: 0 or a [error@ConnectPlugin.Error] value
 */
guint
cp_span_get_status_code (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, 0);
  return span->status_code;
}

/**
 * cp_span_get_status_message:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets the error message of a call that failed.
 *
 * Returns: (transfer none) (nullable): the message, or %NULL on success
 */
const char *
cp_span_get_status_message (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, NULL);
  return span->status_message;
}

/**
 * cp_span_get_peer:
 * @span: a [struct@ConnectPlugin.Span]
 *
 * Gets the other side of the call: for a server span the client's address
 * (`host:port`), for a client span the server's URL.
 *
 * Returns: (transfer none) (nullable): the peer, or %NULL when unknown
 *   (in-process calls)
 */
const char *
cp_span_get_peer (CpSpan *span)
{
  g_return_val_if_fail (span != NULL, NULL);
  return span->peer;
}
