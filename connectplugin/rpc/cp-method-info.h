/* cp-method-info.h: describes one RPC method
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

/**
 * CpMethodKind:
 * @CP_METHOD_UNARY: one request, one response
 * @CP_METHOD_CLIENT_STREAMING: a stream of requests, one response
 * @CP_METHOD_SERVER_STREAMING: one request, a stream of responses
 * @CP_METHOD_BIDI_STREAMING: streams both ways
 *
 * The four kinds of RPC.
 */
typedef enum {
  CP_METHOD_UNARY,
  CP_METHOD_CLIENT_STREAMING,
  CP_METHOD_SERVER_STREAMING,
  CP_METHOD_BIDI_STREAMING,
} CpMethodKind;

/**
 * CpIdempotency:
 * @CP_IDEMPOTENCY_UNKNOWN: the default
 * @CP_IDEMPOTENCY_NO_SIDE_EFFECTS: may be called with HTTP GET
 * @CP_IDEMPOTENCY_IDEMPOTENT: may be retried
 *
 * A method's `idempotency_level` option.
 */
typedef enum {
  CP_IDEMPOTENCY_UNKNOWN,
  CP_IDEMPOTENCY_NO_SIDE_EFFECTS,
  CP_IDEMPOTENCY_IDEMPOTENT,
} CpIdempotency;

#define CP_TYPE_METHOD_INFO (cp_method_info_get_type ())

typedef struct _CpMethodInfo CpMethodInfo;

CP_AVAILABLE_IN_ALL
GType          cp_method_info_get_type        (void) G_GNUC_CONST;
CP_AVAILABLE_IN_ALL
CpMethodInfo  *cp_method_info_new             (const char    *procedure,
                                               CpMethodKind   kind,
                                               GType          input_type,
                                               GType          output_type);
CP_AVAILABLE_IN_ALL
CpMethodInfo  *cp_method_info_ref             (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
void           cp_method_info_unref           (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
const char    *cp_method_info_get_procedure   (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
const char    *cp_method_info_get_service_name (CpMethodInfo *info);
CP_AVAILABLE_IN_ALL
const char    *cp_method_info_get_method_name (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
CpMethodKind   cp_method_info_get_kind        (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
GType          cp_method_info_get_input_type  (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
GType          cp_method_info_get_output_type (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
CpIdempotency  cp_method_info_get_idempotency (CpMethodInfo  *info);
CP_AVAILABLE_IN_ALL
void           cp_method_info_set_idempotency (CpMethodInfo  *info,
                                               CpIdempotency  idempotency);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpMethodInfo, cp_method_info_unref)

G_END_DECLS
