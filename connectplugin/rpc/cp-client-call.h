/* cp-client-call.h: one call as client interceptors see it
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
#include "cp-message.h"
#include "cp-method-info.h"

G_BEGIN_DECLS

#define CP_TYPE_CLIENT_CALL (cp_client_call_get_type ())

/* A reference-counted boxed type (a GObject would cost each intercepted
 * call more than the interceptors do). */
CP_AVAILABLE_IN_ALL
GType               cp_client_call_get_type              (void) G_GNUC_CONST;
CP_AVAILABLE_IN_ALL
CpClientCall       *cp_client_call_ref                   (CpClientCall *call);
CP_AVAILABLE_IN_ALL
void                cp_client_call_unref                 (CpClientCall *call);

CP_AVAILABLE_IN_ALL
CpChannel          *cp_client_call_get_channel           (CpClientCall *call);
CP_AVAILABLE_IN_ALL
const char         *cp_client_call_get_procedure         (CpClientCall *call);
CP_AVAILABLE_IN_ALL
CpMethodKind        cp_client_call_get_method_kind       (CpClientCall *call);
CP_AVAILABLE_IN_ALL
CpMessage          *cp_client_call_get_request           (CpClientCall *call);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_client_call_get_request_headers   (CpClientCall *call);
CP_AVAILABLE_IN_ALL
gboolean            cp_client_call_get_idempotent        (CpClientCall *call);
CP_AVAILABLE_IN_ALL
gint64              cp_client_call_get_start_time        (CpClientCall *call);
CP_AVAILABLE_IN_ALL
gint64              cp_client_call_get_deadline          (CpClientCall *call);
CP_AVAILABLE_IN_ALL
gint64              cp_client_call_get_duration          (CpClientCall *call);
CP_AVAILABLE_IN_ALL
guint               cp_client_call_get_attempts          (CpClientCall *call);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_client_call_get_response_headers  (CpClientCall *call);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_client_call_get_response_trailers (CpClientCall *call);
CP_AVAILABLE_IN_ALL
CpMessage          *cp_client_call_get_response          (CpClientCall *call);
CP_AVAILABLE_IN_ALL
gboolean            cp_client_call_is_completed          (CpClientCall *call);

CP_AVAILABLE_IN_ALL
void                cp_client_call_return_message        (CpClientCall *call,
                                                          CpMessage    *response);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpClientCall, cp_client_call_unref)

G_END_DECLS
