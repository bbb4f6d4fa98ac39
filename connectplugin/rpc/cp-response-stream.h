/* cp-response-stream.h: messages arriving from a server-streaming call
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

G_BEGIN_DECLS

#define CP_TYPE_RESPONSE_STREAM (cp_response_stream_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpResponseStream, cp_response_stream, CP, RESPONSE_STREAM, GObject)

/* Signals (in the context the call was started in):
 *   headers (SoupMessageHeaders *headers)  — the response headers arrived
 *   message (CpMessage *message)           — one response message
 *   closed  (GError *error)                — the end; error NULL on success
 * The call starts when the first signal handler is connected and control
 * returns to the main loop (or at cp_response_stream_start()). */
CP_AVAILABLE_IN_ALL
void                cp_response_stream_start             (CpResponseStream *stream);
CP_AVAILABLE_IN_ALL
void                cp_response_stream_pause             (CpResponseStream *stream);
CP_AVAILABLE_IN_ALL
void                cp_response_stream_resume            (CpResponseStream *stream);
CP_AVAILABLE_IN_ALL
void                cp_response_stream_cancel            (CpResponseStream *stream);
CP_AVAILABLE_IN_ALL
gboolean            cp_response_stream_is_closed         (CpResponseStream *stream);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_response_stream_get_response_headers  (CpResponseStream *stream);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_response_stream_get_response_trailers (CpResponseStream *stream);

G_END_DECLS
