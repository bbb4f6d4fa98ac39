/* cp-request-stream.h: sending side of a client-streaming call
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
#include "cp-response-stream.h"

G_BEGIN_DECLS

#define CP_TYPE_REQUEST_STREAM (cp_request_stream_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpRequestStream, cp_request_stream, CP, REQUEST_STREAM, GObject)

CP_AVAILABLE_IN_ALL
gboolean            cp_request_stream_send           (CpRequestStream     *stream,
                                                      CpMessage           *message,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
void                cp_request_stream_send_async     (CpRequestStream     *stream,
                                                      CpMessage           *message,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
CP_AVAILABLE_IN_ALL
gboolean            cp_request_stream_send_finish    (CpRequestStream     *stream,
                                                      GAsyncResult        *result,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
guint64             cp_request_stream_get_bytes_sent (CpRequestStream     *stream);
CP_AVAILABLE_IN_ALL
void                cp_request_stream_close_async    (CpRequestStream     *stream,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpMessage          *cp_request_stream_close_sync     (CpRequestStream     *stream,
                                                      GCancellable        *cancellable,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
CpMessage          *cp_request_stream_close_finish   (CpRequestStream     *stream,
                                                      GAsyncResult        *result,
                                                      GError             **error);
CP_AVAILABLE_IN_ALL
CpResponseStream   *cp_request_stream_close_and_receive (CpRequestStream *stream);
CP_AVAILABLE_IN_ALL
CpResponseStream   *cp_request_stream_start_duplex      (CpRequestStream *stream);
CP_AVAILABLE_IN_ALL
void                cp_request_stream_close_send        (CpRequestStream *stream);
CP_AVAILABLE_IN_ALL
void                cp_request_stream_cancel         (CpRequestStream     *stream);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_request_stream_get_response_headers  (CpRequestStream *stream);
CP_AVAILABLE_IN_ALL
SoupMessageHeaders *cp_request_stream_get_response_trailers (CpRequestStream *stream);

G_END_DECLS
