/* cp-client-call-private.h: how the channel's call kinds create a
 * CpClientCall, run its interceptor chain and tell it the outcome
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-client-call.h"

G_BEGIN_DECLS

/* The end of the interceptors' decisions: @error (transfer full) when one
 * failed the call, @answer (transfer full) when one answered it, both NULL
 * when the call goes on. Called once, from cp_client_call_intercept () itself
 * when every decision was synchronous. */
typedef void (*CpClientCallDecided) (GObject   *owner,
                                     GError    *error,
                                     CpMessage *answer);

/* @request_headers: the call's user metadata, referenced (interceptors
 * change it in place); @request: nullable; @interceptors: transfer full,
 * not empty. */
CpClientCall *cp_client_call_new_internal          (CpChannel           *channel,
                                                    const char          *procedure,
                                                    CpMethodKind         kind,
                                                    CpMessage           *request,
                                                    SoupMessageHeaders  *request_headers,
                                                    gboolean             idempotent,
                                                    gint64               deadline,
                                                    GPtrArray           *interceptors);
/* Asks the interceptors in order, holding @owner until @decided. */
void          cp_client_call_intercept             (CpClientCall        *call,
                                                    GObject             *owner,
                                                    GCancellable        *cancellable,
                                                    CpClientCallDecided  decided);
void          cp_client_call_set_attempts          (CpClientCall        *call,
                                                    guint                attempts);
/* Of the last attempt (referenced, either may be NULL = none). */
void          cp_client_call_set_response_metadata (CpClientCall        *call,
                                                    SoupMessageHeaders  *headers,
                                                    SoupMessageHeaders  *trailers);
/* The outcome: tells the interceptors that were asked, last first. Once. */
void          cp_client_call_complete              (CpClientCall        *call,
                                                    const GError        *outcome,
                                                    CpMessage           *response);

G_END_DECLS
