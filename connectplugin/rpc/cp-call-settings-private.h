/* cp-call-settings-private.h: the settings of one call (channel defaults
 * overridden by CpCallOptions) and how a call's request is encoded
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-channel.h"
#include "cp-call-options.h"
#include "cp-client-call-private.h"
#include "cp-retry-policy-private.h"

G_BEGIN_DECLS

typedef struct {
  CpCodec             codec;
  CpProtocol          protocol;         /* CpChannel:protocol */
  CpCompression       compression;      /* of request messages */
  gint64              deadline;         /* monotonic µs; 0 = none */
  gsize               max_receive_size; /* 0 = unlimited */
  gboolean            use_get;
  SoupMessageHeaders *metadata;         /* user request headers; owned */
  guint               n_envelopes;      /* messages appended (stream requests) */
  CpClientMetricsCall metrics;          /* the call's counting, from wrap to end */
  /* Tracing: the call's client span (NULL: no trace sent), when it began
   * (monotonic and real µs), whether it was reported. */
  CpSpanContext      *span;
  gint64              start_time;
  gint64              span_start;
  gboolean            trace_ended;
} CpCallSettings;

/* @unary: whether the channel's default timeout applies (streams get no
 * default deadline). */
void      cp_call_settings_init       (CpCallSettings *settings,
                                       CpChannel      *channel,
                                       CpCallOptions  *options,
                                       gboolean        unary);
void      cp_call_settings_clear      (CpCallSettings *settings);

/* Request headers of a streaming call (Content-Type application/connect+X,
 * Connect-Protocol-Version, Connect-(Accept-)Content-Encoding,
 * Accept-Encoding: identity, user metadata; gRPC and gRPC-Web:
 * application/grpc[-web]+X, TE: trailers or X-Grpc-Web: 1,
 * grpc-(accept-)encoding). Connect-Timeout-Ms or grpc-timeout is added at
 * send time by the exchange (cp_channel_exchange_start()). */
SoupMessageHeaders *cp_call_settings_stream_headers (CpCallSettings *settings);

/* Appends the call's metadata to @headers, leaving out protocol headers
 * (an interceptor may have added some since cp_call_settings_init ()),
 * and the call's `traceparent` / `tracestate` when it has a span. */
void      cp_call_settings_copy_metadata (CpCallSettings     *settings,
                                          SoupMessageHeaders *headers);

/* The call's outcome for the channel's metrics (CpChannel:metrics-enabled),
 * once: @error NULL for success. Nothing when the call is not counted. */
#define cp_call_settings_end(settings, error) \
  cp_client_metrics_call_end (&(settings)->metrics, (error))

/* The call is over (@error NULL for success): its client span goes to the
 * channel's span-finished handlers and its log line to the debug log,
 * when wanted. Once; later calls do nothing. */
void      cp_call_settings_trace_end  (CpCallSettings *settings,
                                       CpChannel      *channel,
                                       const char     *procedure,
                                       const GError   *error);

/* What wraps the attempts of a call (see cp-channel-private.h): @retry
 * gets the call's retry policy (the options', else the channel's unless
 * the call is exempt, cp_call_options_set_circuit_breaker_exempt ()) and
 * whether the call may be sent twice (@idempotency of its method, the
 * options' idempotent flag, or GET); and when an interceptor applies (the
 * channel's unless exempt, then the options'), the CpClientCall that runs
 * them is returned (transfer full; NULL when none). @request: nullable,
 * for interceptors to see. The call starts counting in the channel's
 * metrics here (exempt calls are not counted), with the messages appended
 * so far; cp_call_settings_end () or cp_call_settings_clear () ends it. */
CpClientCall *cp_call_settings_wrap   (CpCallSettings *settings,
                                       CpChannel      *channel,
                                       CpCallOptions  *options,
                                       const char     *procedure,
                                       CpMethodKind    kind,
                                       CpIdempotency   idempotency,
                                       CpMessage      *request,
                                       CpCallRetry    *retry);

/* Serializes @message as one envelope (compressed per settings) and appends
 * it to @out. */
gboolean  cp_call_settings_append_envelope (CpCallSettings *settings,
                                            CpMessage      *message,
                                            GByteArray     *out,
                                            GError        **error);

G_END_DECLS
