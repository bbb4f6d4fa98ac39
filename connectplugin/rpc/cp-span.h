/* cp-span.h: a finished span (one call, client or server side), for exporters
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-span-context.h"

G_BEGIN_DECLS

/**
 * CpSpanKind:
 * @CP_SPAN_KIND_SERVER: a call as the server handled it
 * @CP_SPAN_KIND_CLIENT: a call as the client made it (all its attempts)
 * @CP_SPAN_KIND_ROUTER: a call the host's router forwarded to a plugin
 *
 * What a [struct@ConnectPlugin.Span] measured (OpenTelemetry's span kinds:
 * a router span is a server span that is also a client).
 */
typedef enum {
  CP_SPAN_KIND_SERVER,
  CP_SPAN_KIND_CLIENT,
  CP_SPAN_KIND_ROUTER,
} CpSpanKind;

#define CP_TYPE_SPAN (cp_span_get_type ())

/* A reference-counted, immutable boxed type. */
CP_AVAILABLE_IN_ALL
GType          cp_span_get_type            (void) G_GNUC_CONST;
CP_AVAILABLE_IN_ALL
CpSpan        *cp_span_ref                 (CpSpan *span);
CP_AVAILABLE_IN_ALL
void           cp_span_unref               (CpSpan *span);

CP_AVAILABLE_IN_ALL
CpSpanContext *cp_span_get_context         (CpSpan *span);
CP_AVAILABLE_IN_ALL
const char    *cp_span_get_name            (CpSpan *span);
CP_AVAILABLE_IN_ALL
CpSpanKind     cp_span_get_kind            (CpSpan *span);
CP_AVAILABLE_IN_ALL
gint64         cp_span_get_start_time      (CpSpan *span);
CP_AVAILABLE_IN_ALL
gint64         cp_span_get_end_time        (CpSpan *span);
CP_AVAILABLE_IN_ALL
guint          cp_span_get_status_code     (CpSpan *span);
CP_AVAILABLE_IN_ALL
const char    *cp_span_get_status_message  (CpSpan *span);
CP_AVAILABLE_IN_ALL
const char    *cp_span_get_peer            (CpSpan *span);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpan, cp_span_unref)

G_END_DECLS
