/* cp-call-settings.c: the settings of one call — the channel's defaults
 * (codec, compression, timeout, receive limit) overridden by the call's
 * CpCallOptions — and the request encoding that follows from them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-call-settings-private.h"
#include "cp-call-options-private.h"
#include "cp-channel-private.h"
#include "cp-channel-util-private.h"
#include "cp-envelope-private.h"
#include "cp-metadata.h"
#include "cp-trace-private.h"

static void
copy_metadata (const char *name,
               const char *value,
               gpointer    user_data)
{
  if (cp_metadata_is_reserved (name))
    {
      g_debug ("Ignoring protocol header %s in call metadata", name);
      return;
    }
  soup_message_headers_append (user_data, name, value);
}

/* The call's client span: a child of the caller's own `traceparent`
 * (request metadata), else of the options' parent span, else of the
 * thread-default span (a server handler running); else a new trace when
 * the channel traces every call, except for the plugin system's own calls
 * (handshake, health checks: exempt), which would fill traces with noise. */
static void
trace_begin (CpCallSettings *settings,
             CpChannel      *channel,
             CpCallOptions  *options)
{
  const char *traceparent = soup_message_headers_get_one (settings->metadata, "traceparent");
  g_autoptr(CpSpanContext) given = NULL;
  CpSpanContext *parent;

  if (traceparent != NULL)
    given = cp_span_context_parse (traceparent,
                                   soup_message_headers_get_list (settings->metadata, "tracestate"));
  parent = given;
  if (parent == NULL && options != NULL)
    parent = cp_call_options_get_parent_span (options);
  if (parent == NULL)
    parent = cp_span_context_get_thread_default ();
  if (parent != NULL)
    settings->span = cp_span_context_new_child (parent);
  else if (cp_channel_get_tracing (channel) && !cp_call_options_get_circuit_breaker_exempt (options))
    settings->span = cp_span_context_new_root (TRUE);
  if (settings->span != NULL)
    settings->span_start = g_get_real_time ();
}

void
cp_call_settings_trace_end (CpCallSettings *settings,
                            CpChannel      *channel,
                            const char     *procedure,
                            const GError   *error)
{
  gboolean log;

  if (settings->trace_ended)
    return;
  settings->trace_ended = TRUE;
  log = cp_trace_log_enabled ();
  if (settings->span != NULL && cp_channel_wants_spans (channel))
    {
      g_autoptr(CpSpan) span = cp_span_new_internal (settings->span, procedure, CP_SPAN_KIND_CLIENT,
                                                     settings->span_start, g_get_real_time (),
                                                     error, cp_channel_get_peer (channel));

      cp_channel_emit_span_finished (channel, span);
    }
  if (log)
    cp_trace_log_call (CP_SPAN_KIND_CLIENT, procedure, error,
                       g_get_monotonic_time () - settings->start_time,
                       cp_channel_get_peer (channel), settings->span);
}

void
cp_call_settings_init (CpCallSettings *settings,
                       CpChannel      *channel,
                       CpCallOptions  *options,
                       gboolean        unary)
{
  /* Streams may stay open and quiet for as long as they are useful: only
   * unary calls get the channel's default timeout. */
  gint64 timeout_ms = unary ? cp_channel_get_timeout_ms (channel) : 0;
  gint64 now = g_get_monotonic_time ();

  memset (settings, 0, sizeof *settings);
  settings->codec = cp_channel_get_codec (channel);
  settings->protocol = cp_channel_get_protocol (channel);
  settings->compression = cp_channel_get_compression (channel);
  settings->max_receive_size = cp_channel_get_max_receive_size (channel);
  settings->metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);

  if (options != NULL)
    {
      gint64 t = cp_call_options_get_timeout_ms (options);

      if (t != 0)
        timeout_ms = t;
      if (cp_call_options_get_codec_is_set (options))
        settings->codec = cp_call_options_get_codec (options);
      if (cp_call_options_get_compression_is_set (options))
        settings->compression = cp_call_options_get_compression (options);
      /* GET is Connect's alone. */
      settings->use_get = cp_call_options_get_use_get (options) &&
                          settings->protocol == CP_PROTOCOL_CONNECT;
      settings->deadline = cp_call_options_get_deadline (options);
      soup_message_headers_foreach (cp_call_options_get_request_headers (options),
                                    copy_metadata, settings->metadata);
    }
  /* After the call's own: those of the same name win. */
  cp_channel_add_headers (channel, settings->metadata);
  settings->start_time = now;
  trace_begin (settings, channel, options);

  if (timeout_ms > 0)
    {
      gint64 d = (timeout_ms > (G_MAXINT64 - now) / 1000) ? G_MAXINT64 : now + timeout_ms * 1000;

      if (settings->deadline == 0 || d < settings->deadline)
        settings->deadline = d;
    }
}

void
cp_call_settings_clear (CpCallSettings *settings)
{
  cp_client_metrics_call_clear (&settings->metrics);
  g_clear_pointer (&settings->metadata, soup_message_headers_unref);
  g_clear_pointer (&settings->span, cp_span_context_unref);
}

SoupMessageHeaders *
cp_call_settings_stream_headers (CpCallSettings *settings)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autofree char *content_type = NULL;

  if (settings->protocol != CP_PROTOCOL_CONNECT)
    {
      /* gRPC and gRPC-Web: the same envelopes; grpc-timeout is added at
       * send time too. */
      gboolean web = settings->protocol == CP_PROTOCOL_GRPC_WEB;

      content_type = g_strconcat (web ? "application/grpc-web+" : "application/grpc+",
                                  cp_codec_to_string (settings->codec), NULL);
      soup_message_headers_append (headers, "Content-Type", content_type);
      soup_message_headers_append (headers, web ? "X-Grpc-Web" : "TE", web ? "1" : "trailers");
      if (settings->compression != CP_COMPRESSION_IDENTITY)
        soup_message_headers_append (headers, "grpc-encoding",
                                     cp_compression_to_string (settings->compression));
      soup_message_headers_append (headers, "grpc-accept-encoding", "gzip");
      soup_message_headers_append (headers, "Accept-Encoding", "identity");
      cp_call_settings_copy_metadata (settings, headers);
      return headers;
    }
  content_type = g_strconcat ("application/connect+", cp_codec_to_string (settings->codec), NULL);
  soup_message_headers_append (headers, "Content-Type", content_type);
  soup_message_headers_append (headers, "Connect-Protocol-Version", "1");
  if (settings->compression != CP_COMPRESSION_IDENTITY)
    soup_message_headers_append (headers, "Connect-Content-Encoding",
                                 cp_compression_to_string (settings->compression));
  soup_message_headers_append (headers, "Connect-Accept-Encoding", "gzip");
  soup_message_headers_append (headers, "Accept-Encoding", "identity");
  cp_call_settings_copy_metadata (settings, headers);
  return headers;
}

static void
copy_metadata_checked (const char *name,
                       const char *value,
                       gpointer    user_data)
{
  if (!cp_metadata_is_reserved (name))
    soup_message_headers_append (user_data, name, value);
  else
    g_debug ("Ignoring protocol header %s in call metadata", name);
}

void
cp_call_settings_copy_metadata (CpCallSettings     *settings,
                                SoupMessageHeaders *headers)
{
  soup_message_headers_foreach (settings->metadata, copy_metadata_checked, headers);
  if (settings->span != NULL)
    {
      g_autofree char *traceparent = cp_span_context_to_traceparent (settings->span);
      const char *tracestate = cp_span_context_get_tracestate (settings->span);

      soup_message_headers_replace (headers, "traceparent", traceparent);
      if (tracestate != NULL)
        soup_message_headers_replace (headers, "tracestate", tracestate);
      else
        soup_message_headers_remove (headers, "tracestate");
    }
}

CpClientCall *
cp_call_settings_wrap (CpCallSettings *settings,
                       CpChannel      *channel,
                       CpCallOptions  *options,
                       const char     *procedure,
                       CpMethodKind    kind,
                       CpIdempotency   idempotency,
                       CpMessage      *request,
                       CpCallRetry    *retry)
{
  gboolean exempt = cp_call_options_get_circuit_breaker_exempt (options);
  CpRetryPolicy *policy = options != NULL ? cp_call_options_get_retry_policy (options) : NULL;
  gboolean safe = idempotency != CP_IDEMPOTENCY_UNKNOWN ||
                  (options != NULL && cp_call_options_get_idempotent (options)) ||
                  (kind == CP_METHOD_UNARY && settings->use_get);
  GPtrArray *chain;

  if (policy != NULL)
    g_object_ref (policy);
  else if (!exempt)
    policy = cp_channel_dup_retry_policy (channel);
  cp_call_retry_init (retry, policy, cp_channel_get_retry_budget (channel), safe,
                      settings->deadline);
  if (G_UNLIKELY (!exempt && cp_channel_get_metrics (channel) != NULL))
    {
      cp_client_metrics_call_begin (&settings->metrics, cp_channel_get_metrics (channel),
                                    procedure, kind != CP_METHOD_UNARY);
      cp_client_metrics_call_add_messages (&settings->metrics, TRUE, settings->n_envelopes);
      retry->metrics = settings->metrics.method;
    }

  chain = cp_channel_collect_interceptors (channel, options, exempt);
  if (chain == NULL)
    return NULL;
  return cp_client_call_new_internal (channel, procedure, kind, request, settings->metadata,
                                      safe, settings->deadline, chain);
}

gboolean
cp_call_settings_append_envelope (CpCallSettings  *settings,
                                  CpMessage       *message,
                                  GByteArray      *out,
                                  GError         **error)
{
  g_autoptr(GBytes) payload = NULL;
  guint8 flags = 0;
  GError *local_error = NULL;

  payload = cp_message_serialize (message, settings->codec, &local_error);
  if (payload == NULL)
    {
      g_propagate_error (error, cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL));
      return FALSE;
    }
  if (settings->compression != CP_COMPRESSION_IDENTITY && g_bytes_get_size (payload) > 0)
    {
      g_autoptr(GBytes) compressed = cp_compress (settings->compression, payload, &local_error);

      if (compressed == NULL)
        {
          g_propagate_error (error, cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL));
          return FALSE;
        }
      g_bytes_unref (payload);
      payload = g_steal_pointer (&compressed);
      flags |= CP_ENVELOPE_FLAG_COMPRESSED;
    }
  cp_envelope_append (out, flags, payload);
  settings->n_envelopes++;
  return TRUE;
}
