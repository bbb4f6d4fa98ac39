/* cp-response-stream-private.h: how the channel creates response streams
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-response-stream.h"
#include "cp-channel.h"
#include "cp-method-info.h"

G_BEGIN_DECLS

CpResponseStream *cp_response_stream_new_internal (CpChannel     *channel,
                                                   const char    *procedure,
                                                   CpMessage     *request,
                                                   GType          response_type,
                                                   CpCallOptions *options,
                                                   CpIdempotency  idempotency);
/* The response side of a half-duplex call (@kind: client or bidi) whose
 * request body is @body (referenced; NULL = empty), or that fails with
 * @error (transfer full, nullable) once started. @deadline (monotonic µs,
 * 0 = none) replaces the one @options would give. @idempotency: the
 * method's (CP_IDEMPOTENCY_UNKNOWN when not known). */
CpResponseStream *cp_response_stream_new_for_body_internal (CpChannel     *channel,
                                                            const char    *procedure,
                                                            GBytes        *body,
                                                            GError        *error,
                                                            CpMethodKind   kind,
                                                            CpIdempotency  idempotency,
                                                            GType          response_type,
                                                            CpCallOptions *options,
                                                            gint64         deadline,
                                                            guint          n_messages);
/* Right after new_for_body_internal () (no body, no error), before start:
 * a full-duplex call (HTTP/2) whose request body is written with
 * write_internal () and ended with end_request_internal (), before or
 * after the exchange starts. A single attempt (no retry). */
void              cp_response_stream_make_duplex_internal (CpResponseStream *stream);
void              cp_response_stream_write_internal       (CpResponseStream *stream,
                                                           GBytes           *chunk);
void              cp_response_stream_end_request_internal (CpResponseStream *stream);
/* Full duplex: request bytes written and not taken by the transport yet
 * (held before the exchange starts included), and bytes taken. */
gsize             cp_response_stream_get_request_queued_internal (CpResponseStream *stream);
guint64           cp_response_stream_get_request_sent_internal   (CpResponseStream *stream);
/* Full duplex: @func is called when the transport took more of the request
 * body (@ended FALSE, coalesced), and once when the call ended (@ended
 * TRUE, @error NULL on success). NULL to stop. */
typedef void (*CpResponseStreamRequestFunc) (gpointer      data,
                                             gboolean      ended,
                                             const GError *error);
void              cp_response_stream_set_request_progress_internal (CpResponseStream            *stream,
                                                                    CpResponseStreamRequestFunc  func,
                                                                    gpointer                     data);

G_END_DECLS
