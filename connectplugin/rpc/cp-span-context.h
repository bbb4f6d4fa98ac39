/* cp-span-context.h: W3C Trace Context (traceparent, tracestate) of a span
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib-object.h>
#include "cp-version-macros.h"
#include "cp-types.h"

G_BEGIN_DECLS

#define CP_TYPE_SPAN_CONTEXT (cp_span_context_get_type ())

/* An immutable, reference-counted boxed type. */
CP_AVAILABLE_IN_ALL
GType          cp_span_context_get_type            (void) G_GNUC_CONST;
CP_AVAILABLE_IN_ALL
CpSpanContext *cp_span_context_ref                 (CpSpanContext       *context);
CP_AVAILABLE_IN_ALL
void           cp_span_context_unref               (CpSpanContext       *context);

CP_AVAILABLE_IN_ALL
CpSpanContext *cp_span_context_new_root            (gboolean             sampled);
CP_AVAILABLE_IN_ALL
CpSpanContext *cp_span_context_new_child           (const CpSpanContext *parent);
CP_AVAILABLE_IN_ALL
CpSpanContext *cp_span_context_parse               (const char          *traceparent,
                                                    const char          *tracestate);
CP_AVAILABLE_IN_ALL
char          *cp_span_context_to_traceparent      (const CpSpanContext *context);

CP_AVAILABLE_IN_ALL
const char    *cp_span_context_get_trace_id        (const CpSpanContext *context);
CP_AVAILABLE_IN_ALL
const guint8  *cp_span_context_get_trace_id_bytes  (const CpSpanContext *context,
                                                    gsize               *length);
CP_AVAILABLE_IN_ALL
const char    *cp_span_context_get_span_id         (const CpSpanContext *context);
CP_AVAILABLE_IN_ALL
const char    *cp_span_context_get_parent_span_id  (const CpSpanContext *context);
CP_AVAILABLE_IN_ALL
guint8         cp_span_context_get_flags           (const CpSpanContext *context);
CP_AVAILABLE_IN_ALL
gboolean       cp_span_context_is_sampled          (const CpSpanContext *context);
CP_AVAILABLE_IN_ALL
const char    *cp_span_context_get_tracestate      (const CpSpanContext *context);

/* The span that calls made from this thread now continue. */
CP_AVAILABLE_IN_ALL
void           cp_span_context_push_thread_default (CpSpanContext       *context);
CP_AVAILABLE_IN_ALL
void           cp_span_context_pop_thread_default  (CpSpanContext       *context);
CP_AVAILABLE_IN_ALL
CpSpanContext *cp_span_context_get_thread_default  (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpSpanContext, cp_span_context_unref)

G_END_DECLS
