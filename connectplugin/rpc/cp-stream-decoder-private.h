/* cp-stream-decoder-private.h: decoding of a streaming response in
 * Connect, gRPC or gRPC-Web (head checks, enveloped messages, the outcome:
 * EndStream, trailers frame or HTTP trailers)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-codec.h"
#include "cp-message.h"
#include "cp-protocol.h"
#include "cp-channel-exchange-private.h"

G_BEGIN_DECLS

typedef struct _CpStreamDecoder CpStreamDecoder;

CpStreamDecoder *cp_stream_decoder_new      (GType             response_type,
                                             CpCodec           codec,
                                             CpProtocol        protocol,
                                             gsize             max_receive_size);
void             cp_stream_decoder_free     (CpStreamDecoder  *decoder);
/* Validates status, Content-Type and Connect-Content-Encoding (docs/engine.md,
 * "Client checks"); gRPC: Content-Type and grpc-encoding, and a head with
 * grpc-status is a trailers-only response (its outcome is taken). */
gboolean         cp_stream_decoder_head     (CpStreamDecoder  *decoder,
                                             guint             status,
                                             const char       *reason,
                                             SoupMessageHeaders *headers,
                                             GError          **error);
/* The head callback of both stream objects: copies the response headers of
 * @exchange into @headers_out, then validates the head as
 * cp_stream_decoder_head() does. */
gboolean         cp_stream_decoder_exchange_head (CpStreamDecoder    *decoder,
                                                  CpChannelExchange  *exchange,
                                                  SoupMessageHeaders *headers_out,
                                                  GError            **error);
void             cp_stream_decoder_push     (CpStreamDecoder  *decoder,
                                             GBytes           *chunk);
/* TRUE with *message set: one message. FALSE without error: more bytes
 * needed (or EndStream seen, waiting for the end of the body). FALSE with
 * error: protocol error, the call is over. */
gboolean         cp_stream_decoder_next     (CpStreamDecoder  *decoder,
                                             CpMessage       **message,
                                             GError          **error);
/* At the end of the body: TRUE when the stream succeeded; FALSE with the
 * stream's error (EndStream error, missing EndStream, truncation). */
gboolean         cp_stream_decoder_finish   (CpStreamDecoder  *decoder,
                                             GError          **error);
/* gRPC: the response's HTTP trailers (nullable: none came) once the body
 * ended, before cp_stream_decoder_finish(); they hold the outcome. Nothing
 * for the other protocols. */
void             cp_stream_decoder_set_http_trailers (CpStreamDecoder    *decoder,
                                                      SoupMessageHeaders *trailers);
/* Whether the outcome arrived (EndStream, trailers frame or trailers). */
gboolean         cp_stream_decoder_has_end_stream (CpStreamDecoder *decoder);
SoupMessageHeaders *cp_stream_decoder_get_trailers (CpStreamDecoder *decoder);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpStreamDecoder, cp_stream_decoder_free)

G_END_DECLS
