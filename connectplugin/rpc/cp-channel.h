/* cp-channel.h: the Connect client engine
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-call-options.h"
#include "cp-circuit-breaker.h"
#include "cp-client-interceptor.h"
#include "cp-retry-policy.h"
#include "cp-message.h"
#include "cp-rpc-server.h"
#include "cp-response-stream.h"
#include "cp-request-stream.h"
#include "cp-protocol.h"

G_BEGIN_DECLS

/**
 * CpHttpVersion:
 * @CP_HTTP_VERSION_DEFAULT: what connect-plugin-go's client speaks:
 *   HTTP/1.1 for `http://` and `unix:` URLs, libsoup's choice (HTTP/1.1, or
 *   HTTP/2 when the server picks it in ALPN) for `https://`
 * @CP_HTTP_VERSION_HTTP_1_1: HTTP/1.1 through libsoup
 * @CP_HTTP_VERSION_HTTP_2: HTTP/2 on one multiplexed connection: with prior
 *   knowledge (h2c) for `http://` and `unix:` URLs, negotiated in ALPN for
 *   `https://` (HTTP/1.1 when the server does not pick `h2`)
 *
 * The HTTP version a [class@Channel] speaks ([property@Channel:http-version]).
 */
typedef enum {
  CP_HTTP_VERSION_DEFAULT,
  CP_HTTP_VERSION_HTTP_1_1,
  CP_HTTP_VERSION_HTTP_2,
} CpHttpVersion;

#define CP_TYPE_CHANNEL (cp_channel_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpChannel, cp_channel, CP, CHANNEL, GObject)

/* Properties: base-url (construct-only: "http://h:p", "https://h:p",
 * "unix:/path"), server (construct-only CpRpcServer, in-process), codec,
 * compression, timeout-ms (default for unary calls, 30 s; 0 = none),
 * max-receive-size (4 MiB; 0 = none),
 * tls-database, method-only-paths, circuit-breaker (CpCircuitBreaker, NULL
 * = none) and retry-policy (CpRetryPolicy, NULL = none), both settable at
 * any time, from any thread, http-version (CpHttpVersion). */
CP_AVAILABLE_IN_ALL
CpChannel  *cp_channel_new              (const char          *base_url,
                                         GError             **error);
CP_AVAILABLE_IN_ALL
CpChannel  *cp_channel_new_in_process   (CpRpcServer         *server);

CP_AVAILABLE_IN_ALL
void        cp_channel_set_header       (CpChannel           *channel,
                                         const char          *name,
                                         const char          *value);

CP_AVAILABLE_IN_ALL
void              cp_channel_set_circuit_breaker (CpChannel        *channel,
                                                  CpCircuitBreaker *breaker);
CP_AVAILABLE_IN_ALL
CpCircuitBreaker *cp_channel_get_circuit_breaker (CpChannel        *channel);

CP_AVAILABLE_IN_ALL
void              cp_channel_set_retry_policy    (CpChannel        *channel,
                                                  CpRetryPolicy    *policy);
CP_AVAILABLE_IN_ALL
CpRetryPolicy    *cp_channel_get_retry_policy    (CpChannel        *channel);
CP_AVAILABLE_IN_ALL
void              cp_channel_add_interceptor     (CpChannel           *channel,
                                                  CpClientInterceptor *interceptor);

CP_AVAILABLE_IN_ALL
void        cp_channel_call_async       (CpChannel           *channel,
                                         const char          *procedure,
                                         CpMessage           *request,
                                         GType                response_type,
                                         CpCallOptions       *options,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpMessage  *cp_channel_call_finish      (CpChannel           *channel,
                                         GAsyncResult        *result,
                                         GError             **error);
CP_AVAILABLE_IN_ALL
CpMessage  *cp_channel_call_sync        (CpChannel           *channel,
                                         const char          *procedure,
                                         CpMessage           *request,
                                         GType                response_type,
                                         CpCallOptions       *options,
                                         GCancellable        *cancellable,
                                         GError             **error);

CP_AVAILABLE_IN_ALL
CpResponseStream *cp_channel_call_server_stream (CpChannel     *channel,
                                                 const char    *procedure,
                                                 CpMessage     *request,
                                                 GType          response_type,
                                                 CpCallOptions *options);
CP_AVAILABLE_IN_ALL
CpRequestStream  *cp_channel_call_client_stream (CpChannel     *channel,
                                                 const char    *procedure,
                                                 GType          response_type,
                                                 CpCallOptions *options);
CP_AVAILABLE_IN_ALL
CpRequestStream  *cp_channel_call_bidi_stream   (CpChannel     *channel,
                                                 const char    *procedure,
                                                 GType          response_type,
                                                 CpCallOptions *options);

CP_AVAILABLE_IN_ALL
char             *cp_channel_render_metrics     (CpChannel     *channel);

CP_AVAILABLE_IN_ALL
void              cp_channel_set_http_version   (CpChannel     *channel,
                                                 CpHttpVersion  version);
CP_AVAILABLE_IN_ALL
CpHttpVersion     cp_channel_get_http_version   (CpChannel     *channel);

CP_AVAILABLE_IN_ALL
void              cp_channel_set_protocol       (CpChannel     *channel,
                                                 CpProtocol     protocol);
CP_AVAILABLE_IN_ALL
CpProtocol        cp_channel_get_protocol       (CpChannel     *channel);

G_END_DECLS
