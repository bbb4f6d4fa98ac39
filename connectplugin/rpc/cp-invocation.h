/* cp-invocation.h: the server side of one RPC call
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
#include "cp-codec.h"
#include "cp-error.h"
#include "cp-message.h"
#include "cp-method-info.h"

G_BEGIN_DECLS

#define CP_TYPE_INVOCATION (cp_invocation_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpInvocation, cp_invocation, CP, INVOCATION, GObject)

CP_AVAILABLE_IN_ALL
CpMethodInfo       *cp_invocation_get_method_info      (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
const char         *cp_invocation_get_procedure        (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
CpCodec             cp_invocation_get_codec            (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_invocation_get_request_headers  (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_invocation_get_response_headers (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_invocation_get_response_trailers (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
gint64              cp_invocation_get_deadline         (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
gint64              cp_invocation_get_timeout_ms       (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
GCancellable       *cp_invocation_get_cancellable      (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
const char         *cp_invocation_get_http_method      (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
GSocketAddress     *cp_invocation_get_remote_address   (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
GTlsCertificate    *cp_invocation_get_peer_certificate (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
const char         *cp_invocation_get_peer_identity    (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
CpSpanContext      *cp_invocation_get_span_context     (CpInvocation *invocation);

/* Authentication. */
CP_AVAILABLE_IN_ALL
const char         *cp_invocation_get_principal        (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
const char         *cp_invocation_get_auth_scheme      (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
void                cp_invocation_set_principal        (CpInvocation *invocation,
                                                        const char   *principal,
                                                        const char   *scheme);

/* Answers (exactly once). */
CP_AVAILABLE_IN_ALL
void                cp_invocation_return_message       (CpInvocation *invocation,
                                                        CpMessage    *response);
CP_AVAILABLE_IN_ALL
void                cp_invocation_return_error         (CpInvocation *invocation,
                                                        CpError       code,
                                                        const char   *format,
                                                        ...) G_GNUC_PRINTF (3, 4);
CP_AVAILABLE_IN_ALL
void                cp_invocation_return_error_literal (CpInvocation *invocation,
                                                        CpError       code,
                                                        const char   *message);
CP_AVAILABLE_IN_ALL
void                cp_invocation_return_gerror        (CpInvocation *invocation,
                                                        const GError *error);
CP_AVAILABLE_IN_ALL
void                cp_invocation_take_error           (CpInvocation *invocation,
                                                        GError       *error);
CP_AVAILABLE_IN_ALL
void                cp_invocation_return_ok            (CpInvocation *invocation);

/* Streaming responses (server and bidi streams). */
CP_AVAILABLE_IN_ALL
void                cp_invocation_send_headers         (CpInvocation *invocation);
CP_AVAILABLE_IN_ALL
gboolean            cp_invocation_send_message         (CpInvocation *invocation,
                                                        CpMessage    *message,
                                                        GError      **error);
CP_AVAILABLE_IN_ALL
void                cp_invocation_send_message_async   (CpInvocation        *invocation,
                                                        CpMessage           *message,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean            cp_invocation_send_message_finish  (CpInvocation  *invocation,
                                                        GAsyncResult  *result,
                                                        GError       **error);

/* Streaming requests (client and bidi streams). */
CP_AVAILABLE_IN_ALL
void                cp_invocation_receive_async        (CpInvocation        *invocation,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpMessage          *cp_invocation_receive_finish       (CpInvocation  *invocation,
                                                        GAsyncResult  *result,
                                                        GError       **error);

G_END_DECLS
