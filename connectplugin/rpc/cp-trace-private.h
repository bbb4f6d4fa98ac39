/* cp-trace-private.h: what the engines do for tracing and per-call logs
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-span.h"

G_BEGIN_DECLS

/* Makes a finished span (transfer full): @context referenced, strings
 * copied; @outcome NULL for OK. */
CpSpan        *cp_span_new_internal       (CpSpanContext *context,
                                           const char    *name,
                                           CpSpanKind     kind,
                                           gint64         start_time,
                                           gint64         end_time,
                                           const GError  *outcome,
                                           const char    *peer);

/* The server span of a call whose request has @headers (transfer full):
 * a child of the caller's `traceparent` when valid, else a new trace when
 * @tracing, else NULL (nothing parsed when there is no header). */
CpSpanContext *cp_trace_server_span       (SoupMessageHeaders *headers,
                                           gboolean            tracing);
/* The same with the `traceparent` value already found in @headers. */
CpSpanContext *cp_trace_server_span_from  (const char         *traceparent,
                                           SoupMessageHeaders *headers,
                                           gboolean            tracing);

/* Whether per-call log lines would be written: debug messages of our log
 * domain wanted, by g_log_set_debug_enabled () or by G_MESSAGES_DEBUG as it
 * was at the first call. Cheap enough for every call. */
gboolean       cp_trace_log_enabled       (void);

/* One debug log line for a finished call, with the structured fields
 * CP_METHOD, CP_CODE, CP_DURATION_US, CP_PEER, CP_TRACE_ID, CP_SIDE.
 * Call only when cp_trace_log_enabled (). */
void           cp_trace_log_call          (CpSpanKind     kind,
                                           const char    *procedure,
                                           const GError  *outcome,
                                           gint64         duration_us,
                                           const char    *peer,
                                           CpSpanContext *context);

/* "host:port" (or the unix path) of @address; NULL when @address is. */
char          *cp_trace_peer_string       (GSocketAddress *address);

G_END_DECLS
