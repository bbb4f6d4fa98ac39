/* cp-channel-private.h: what the channel's units read from a CpChannel
 * (its configuration and transport), beyond its public API
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The client engine's units, and the private headers each one includes
 * besides its own (no cycle; the exchange and the settings read the
 * channel through this header, which includes none of the others but
 * cp-retry-policy-private.h, a leaf but for cp-client-metrics-private.h):
 *
 *   cp-channel.c            CpChannel, what wraps    → request and response
 *                           calls, stream entries      stream, circuit
 *                                                      breaker
 *   cp-channel-unary.c      unary calls              → exchange, settings,
 *                                                      util, client call,
 *                                                      retry (through
 *                                                      settings)
 *   cp-request-stream.c     client/bidi streaming    → response stream,
 *                                                      exchange, settings,
 *                                                      stream decoder, util,
 *                                                      this one (admission)
 *   cp-response-stream.c    server streaming         → exchange, settings,
 *                                                      stream decoder, util,
 *                                                      this one (admission)
 *   cp-stream-decoder.c     Connect streaming bodies → exchange, util
 *   cp-call-settings.c      settings of one call,    → this one, util,
 *                           what wraps it              client call, retry
 *   cp-channel-exchange.c   one HTTP exchange: core  → this one, exchange-impl
 *   cp-channel-exchange-soup.c, -local.c, -h2.c: its transports (the same;
 *                           -h2.c also cp-h2-connection-private.h)
 *   cp-h2-connection.c      a channel's HTTP/2      → this one, exchange-impl
 *                           connection and thread
 *   cp-channel-util.c       response checks, errors  → (none)
 *   cp-call-options.c       CpCallOptions            → (none)
 *   cp-circuit-breaker.c    CpCircuitBreaker         → (none)
 *   cp-retry-policy.c       CpRetryPolicy, the retry → client metrics
 *                           budget, one call's retries
 *   cp-client-metrics.c     the calls' counters      → (none)
 *                           (CpChannel:metrics-enabled)
 *   cp-client-call.c        CpClientCall, the chain  → client interceptor
 *   cp-client-interceptor.c CpClientInterceptor      → (none)
 *
 * (cp-call-options-private.h, for cp_headers_copy_into(), is left out.)
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-channel.h"
#include "cp-retry-policy-private.h"

G_BEGIN_DECLS

/* Configuration (the properties' values). */
CpCodec        cp_channel_get_codec            (CpChannel *channel);
CpCompression  cp_channel_get_compression      (CpChannel *channel);
gint64         cp_channel_get_timeout_ms       (CpChannel *channel);
guint64        cp_channel_get_max_receive_size (CpChannel *channel);

/* CpChannel:method-only-paths. */
gboolean       cp_channel_get_method_only_paths (CpChannel *channel);
/* Appends the channel's headers (cp_channel_set_header()) that @headers
 * does not have yet; thread-safe. */
void           cp_channel_add_headers          (CpChannel          *channel,
                                                SoupMessageHeaders *headers);

/* Transport. The in-process server, or NULL for HTTP. */
CpRpcServer   *cp_channel_get_server           (CpChannel *channel);
/* The construction context; for an in-process channel the server's. */
GMainContext  *cp_channel_get_context          (CpChannel *channel);
/* HTTP only: the session, and "http://host:port[/prefix]" without a
 * trailing '/'. */
SoupSession   *cp_channel_get_session          (CpChannel *channel);
/* The session of cp_channel_call_sync (): its own connection pool. libsoup
 * 3.2 makes a message wait for a connection that the same thread is
 * opening in another context (in case it becomes HTTP/2), so a blocking
 * call sharing the pool with the asynchronous calls of a context it blocks
 * waited for that context, that is until its deadline. */
SoupSession   *cp_channel_get_sync_session     (CpChannel *channel);
GTlsCertificate *cp_channel_get_tls_certificate (CpChannel *channel);
GTlsDatabase  *cp_channel_get_tls_database     (CpChannel *channel);
/* CpChannel:http-version is 2 (and the channel speaks HTTP): the HTTP/2
 * client of its calls (cp-h2-connection-private.h), made on first use;
 * NULL otherwise. Thread-safe; valid as long as the channel. */
typedef struct _CpH2Client CpH2Client;
CpH2Client    *cp_channel_get_h2_client        (CpChannel *channel);
char          *cp_channel_dup_http_base        (CpChannel *channel);
/* The base URL libsoup is given: the http base, but http:// where the
 * channel makes its TLS connections itself (cp-tls-proxy-private.h). */
char          *cp_channel_dup_soup_base        (CpChannel *channel);
/* Points an HTTP channel at another http(s) base URL (a renewed capability
 * grant's endpoint) for the calls made from now on; thread-safe. */
gboolean       cp_channel_rebase               (CpChannel   *channel,
                                                const char  *base_url,
                                                GError     **error);
/* Why the channel cannot make calls (an invalid base URL), or NULL. */
const GError  *cp_channel_get_setup_error      (CpChannel *channel);

/* The circuit breaker (transfer full), or NULL; thread-safe. */
CpCircuitBreaker *cp_channel_dup_circuit_breaker (CpChannel *channel);

/* A call let through the channel's circuit breaker, until its outcome is
 * told. Zero-initialised: no breaker (none, or an exempt call). */
typedef struct {
  CpCircuitBreaker *breaker;
  guint64           ticket;
} CpChannelAdmission;

/* Before a call sends anything: asks the channel's breaker, unless @options
 * exempt the call (cp_call_options_set_circuit_breaker_exempt ()). FALSE
 * with @error (`unavailable`) when the call must fail at once. */
gboolean       cp_channel_admit                (CpChannel           *channel,
                                                CpCallOptions       *options,
                                                CpChannelAdmission  *admission,
                                                GError             **error);
/* The call's outcome (NULL = success), once; then @admission is empty. */
void           cp_channel_admission_settle     (CpChannelAdmission  *admission,
                                                const GError        *outcome);
/* A call dropped without an outcome; nothing when already settled. */
void           cp_channel_admission_clear      (CpChannelAdmission  *admission);

/* The metrics calls count into (CpChannel:metrics-enabled), or NULL when
 * off: transfer none, valid as long as the channel (a call takes its own
 * reference). Thread-safe, one atomic read. */
CpClientMetrics *cp_channel_get_metrics        (CpChannel           *channel);
/* A CpClient's metrics (shared by the channels it connects, so the series
 * survive reconnects): set before the first call; NULL turns counting
 * off. Thread-safe. */
void           cp_channel_set_client_metrics   (CpChannel           *channel,
                                                CpClientMetrics     *metrics);

/* CpChannel:tracing (thread-safe): calls without a parent span start a
 * trace. */
gboolean       cp_channel_get_tracing          (CpChannel           *channel);
/* Whether a CpChannel::span-finished handler is connected. */
gboolean       cp_channel_wants_spans          (CpChannel           *channel);
void           cp_channel_emit_span_finished   (CpChannel           *channel,
                                                CpSpan              *span);
/* The base URL, "in-process" for an in-process channel (thread-safe:
 * set at construction). */
const char    *cp_channel_get_peer             (CpChannel           *channel);

/* The retry policy (transfer full), or NULL; thread-safe. */
CpRetryPolicy *cp_channel_dup_retry_policy     (CpChannel           *channel);
/* The retry budget all the channel's calls share (thread-safe). */
CpRetryBudget *cp_channel_get_retry_budget     (CpChannel           *channel);
/* A CpClient's interceptors (copied; NULL or empty = none): they come
 * before the channel's own. Thread-safe. */
void           cp_channel_set_client_interceptors (CpChannel        *channel,
                                                   GPtrArray        *interceptors);
/* The interceptor chain of a call: the client's and the channel's own
 * (unless @exempt), then @options'. Transfer full; NULL when empty.
 * Thread-safe. */
GPtrArray     *cp_channel_collect_interceptors (CpChannel           *channel,
                                                CpCallOptions       *options,
                                                gboolean             exempt);

/* The calls of a method whose description is known (CpProxy's): as the
 * public entry points with @info's procedure and output type, and its
 * idempotency level, which lets a retry policy retry it for its codes.
 * The results finish with cp_channel_call_finish () and the streams'
 * usual functions. */
void           cp_channel_call_method_async    (CpChannel           *channel,
                                                CpMethodInfo        *info,
                                                CpMessage           *request,
                                                CpCallOptions       *options,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
CpMessage     *cp_channel_call_method_sync     (CpChannel           *channel,
                                                CpMethodInfo        *info,
                                                CpMessage           *request,
                                                CpCallOptions       *options,
                                                GCancellable        *cancellable,
                                                GError             **error);
CpResponseStream *cp_channel_call_method_server_stream  (CpChannel     *channel,
                                                         CpMethodInfo  *info,
                                                         CpMessage     *request,
                                                         CpCallOptions *options);
/* A client- or bidi-streaming method (@info's kind). */
CpRequestStream  *cp_channel_call_method_request_stream (CpChannel     *channel,
                                                         CpMethodInfo  *info,
                                                         CpCallOptions *options);

G_END_DECLS
