/* cp-call-options.h: per-call settings, and what a call brought back
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <libsoup/soup.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-codec.h"
#include "cp-compression.h"
#include "cp-client-interceptor.h"
#include "cp-retry-policy.h"
#include "cp-span-context.h"

G_BEGIN_DECLS

#define CP_TYPE_CALL_OPTIONS (cp_call_options_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpCallOptions, cp_call_options, CP, CALL_OPTIONS, GObject)

/* Properties: timeout-ms (gint64, 0 = channel default, -1 = none),
 * deadline (gint64, monotonic µs, 0 = none), codec,
 * compression, use-get (gboolean), request-headers (SoupMessageHeaders,
 * read-only, add to it), response-headers / response-trailers (filled in
 * when the call completes), idempotent (gboolean), retry-policy
 * (CpRetryPolicy, NULL = the channel's). */
CP_AVAILABLE_IN_ALL
CpCallOptions      *cp_call_options_new                   (void);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_timeout_ms        (CpCallOptions *options,
                                                           gint64         timeout_ms);
CP_AVAILABLE_IN_ALL
gint64              cp_call_options_get_timeout_ms        (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_deadline          (CpCallOptions *options,
                                                           gint64         deadline);
CP_AVAILABLE_IN_ALL
gint64              cp_call_options_get_deadline          (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_codec             (CpCallOptions *options,
                                                           CpCodec        codec);
CP_AVAILABLE_IN_ALL
CpCodec             cp_call_options_get_codec             (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_compression       (CpCallOptions *options,
                                                           CpCompression  compression);
CP_AVAILABLE_IN_ALL
CpCompression       cp_call_options_get_compression       (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_use_get           (CpCallOptions *options,
                                                           gboolean       use_get);
CP_AVAILABLE_IN_ALL
gboolean            cp_call_options_get_use_get           (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_idempotent        (CpCallOptions *options,
                                                           gboolean       idempotent);
CP_AVAILABLE_IN_ALL
gboolean            cp_call_options_get_idempotent        (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_retry_policy      (CpCallOptions *options,
                                                           CpRetryPolicy *policy);
CP_AVAILABLE_IN_ALL
CpRetryPolicy      *cp_call_options_get_retry_policy      (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_add_interceptor       (CpCallOptions       *options,
                                                           CpClientInterceptor *interceptor);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_call_options_get_request_headers   (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_call_options_get_response_headers  (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_call_options_get_response_trailers (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_parent_span       (CpCallOptions *options,
                                                           CpSpanContext *parent);
CP_AVAILABLE_IN_ALL
CpSpanContext      *cp_call_options_get_parent_span       (CpCallOptions *options);
CP_AVAILABLE_IN_ALL
void                cp_call_options_set_cancellable       (CpCallOptions *options,
                                                           GCancellable  *cancellable);
CP_AVAILABLE_IN_ALL
GCancellable       *cp_call_options_get_cancellable       (CpCallOptions *options);

G_END_DECLS
