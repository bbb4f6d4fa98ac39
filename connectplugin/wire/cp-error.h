/* cp-error.h: the Connect error model as a GError domain
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include <libsoup/soup.h>
#include "cp-version-macros.h"
#include "cp-types.h"

G_BEGIN_DECLS

/**
 * CP_ERROR:
 *
 * Error domain for Connect RPC errors. Errors in this domain carry a
 * [error@ConnectPlugin.Error] code; they may also carry details and metadata, see
 * [func@ConnectPlugin.Error.get_details] and [func@ConnectPlugin.Error.get_metadata].
 *
 * A call that the caller cancelled (through its [class@Gio.Cancellable] or a
 * stream's `cancel` method) fails with %G_IO_ERROR_CANCELLED, as GIO calls
 * do; %CP_ERROR_CANCELED means that the server answered `canceled`. Use
 * [func@ConnectPlugin.Error.get_code] to get a Connect code for either.
 */
#define CP_ERROR (cp_error_quark ())

/**
 * CpError:
 * @CP_ERROR_CANCELED: `canceled`: the server reports the operation as cancelled
 *   (a call cancelled locally fails with %G_IO_ERROR_CANCELLED instead)
 * @CP_ERROR_UNKNOWN: `unknown`
 * @CP_ERROR_INVALID_ARGUMENT: `invalid_argument`
 * @CP_ERROR_DEADLINE_EXCEEDED: `deadline_exceeded`
 * @CP_ERROR_NOT_FOUND: `not_found`
 * @CP_ERROR_ALREADY_EXISTS: `already_exists`
 * @CP_ERROR_PERMISSION_DENIED: `permission_denied`
 * @CP_ERROR_RESOURCE_EXHAUSTED: `resource_exhausted`
 * @CP_ERROR_FAILED_PRECONDITION: `failed_precondition`
 * @CP_ERROR_ABORTED: `aborted`
 * @CP_ERROR_OUT_OF_RANGE: `out_of_range`
 * @CP_ERROR_UNIMPLEMENTED: `unimplemented`
 * @CP_ERROR_INTERNAL: `internal`
 * @CP_ERROR_UNAVAILABLE: `unavailable`
 * @CP_ERROR_DATA_LOSS: `data_loss`
 * @CP_ERROR_UNAUTHENTICATED: `unauthenticated`
 *
 * The sixteen Connect error codes. The numeric values are the gRPC status
 * numbers.
 */
typedef enum {
  CP_ERROR_CANCELED = 1,
  CP_ERROR_UNKNOWN = 2,
  CP_ERROR_INVALID_ARGUMENT = 3,
  CP_ERROR_DEADLINE_EXCEEDED = 4,
  CP_ERROR_NOT_FOUND = 5,
  CP_ERROR_ALREADY_EXISTS = 6,
  CP_ERROR_PERMISSION_DENIED = 7,
  CP_ERROR_RESOURCE_EXHAUSTED = 8,
  CP_ERROR_FAILED_PRECONDITION = 9,
  CP_ERROR_ABORTED = 10,
  CP_ERROR_OUT_OF_RANGE = 11,
  CP_ERROR_UNIMPLEMENTED = 12,
  CP_ERROR_INTERNAL = 13,
  CP_ERROR_UNAVAILABLE = 14,
  CP_ERROR_DATA_LOSS = 15,
  CP_ERROR_UNAUTHENTICATED = 16,
} CpError;

/* CpErrorCode: the C name used across the library for a CpError value. */
#ifndef __GI_SCANNER__
typedef CpError CpErrorCode;
#endif

CP_AVAILABLE_IN_ALL
GQuark       cp_error_quark                 (void);

CP_AVAILABLE_IN_ALL
const char  *cp_error_code_to_string        (CpError      code);
CP_AVAILABLE_IN_ALL
gboolean     cp_error_code_from_string      (const char  *name,
                                             CpError     *out_code);
CP_AVAILABLE_IN_ALL
guint        cp_error_code_to_http_status   (CpError      code);
CP_AVAILABLE_IN_ALL
CpError      cp_error_code_from_http_status (guint        http_status);

CP_AVAILABLE_IN_ALL
CpError      cp_error_get_code              (const GError *error);

#define CP_TYPE_ERROR_DETAIL (cp_error_detail_get_type ())

/**
 * CpErrorDetail:
 *
 * One entry of a Connect error's `details`: a protobuf message given by its
 * fully-qualified type name (without `type.googleapis.com/`) and its binary
 * encoding.
 */
typedef struct _CpErrorDetail CpErrorDetail;

CP_AVAILABLE_IN_ALL
GType           cp_error_detail_get_type      (void) G_GNUC_CONST;
CP_AVAILABLE_IN_ALL
CpErrorDetail  *cp_error_detail_new           (const char    *type_name,
                                               GBytes        *value);
CP_AVAILABLE_IN_ALL
CpErrorDetail  *cp_error_detail_ref           (CpErrorDetail *detail);
CP_AVAILABLE_IN_ALL
void            cp_error_detail_unref         (CpErrorDetail *detail);
CP_AVAILABLE_IN_ALL
const char     *cp_error_detail_get_type_name (CpErrorDetail *detail);
CP_AVAILABLE_IN_ALL
GBytes         *cp_error_detail_get_value     (CpErrorDetail *detail);

CP_AVAILABLE_IN_ALL
void            cp_error_add_detail           (GError        *error,
                                               CpErrorDetail *detail);
CP_AVAILABLE_IN_ALL
GPtrArray      *cp_error_get_details          (const GError  *error);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_error_get_metadata     (const GError  *error);
CP_AVAILABLE_IN_ALL
void            cp_error_set_metadata         (GError        *error,
                                               SoupMessageHeaders *metadata);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpErrorDetail, cp_error_detail_unref)

G_END_DECLS
