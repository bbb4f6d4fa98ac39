/* cp-channel-private.h: the client engine's internals, shared by the
 * channel and its stream objects
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-channel.h"
#include "cp-call-options.h"
#include "cp-response-stream.h"
#include "cp-request-stream.h"

G_BEGIN_DECLS

/* ---- cp-call-options.c ---- */

gboolean  cp_call_options_get_codec_is_set       (CpCallOptions      *options);
gboolean  cp_call_options_get_compression_is_set (CpCallOptions      *options);
/* Replaces the response headers/trailers (copies; either may be NULL). */
void      cp_call_options_set_response           (CpCallOptions      *options,
                                                  SoupMessageHeaders *headers,
                                                  SoupMessageHeaders *trailers);
void      cp_headers_copy_into                   (SoupMessageHeaders *dest,
                                                  SoupMessageHeaders *src);

/* ---- cp-channel.c: settings of one call ---- */

typedef struct {
  CpCodec             codec;
  CpCompression       compression;      /* of request messages */
  gint64              deadline;         /* monotonic µs; 0 = none */
  gsize               max_receive_size; /* 0 = unlimited */
  gboolean            use_get;
  SoupMessageHeaders *metadata;         /* user request headers; owned */
} CpCallSettings;

/* @unary: whether the channel's default timeout applies (streams get no
 * default deadline). */
void      cp_call_settings_init       (CpCallSettings *settings,
                                       CpChannel      *channel,
                                       CpCallOptions  *options,
                                       gboolean        unary);
void      cp_call_settings_clear      (CpCallSettings *settings);

/* Request headers of a streaming call (Content-Type application/connect+X,
 * Connect-Protocol-Version, Connect-(Accept-)Content-Encoding,
 * Accept-Encoding: identity, user metadata). Connect-Timeout-Ms is added at
 * send time by the client call. */
SoupMessageHeaders *cp_call_settings_stream_headers (CpCallSettings *settings);

/* Serializes @message as one envelope (compressed per settings) and appends
 * it to @out. */
gboolean  cp_call_settings_append_envelope (CpCallSettings *settings,
                                            CpMessage      *message,
                                            GByteArray     *out,
                                            GError        **error);

/* ---- cp-channel.c: one HTTP exchange seen from the client ---- */

typedef struct _CpClientCall CpClientCall;

typedef struct {
  /* Status and headers arrived (cp_client_call_get_status() etc.). */
  void (*head)  (CpClientCall *call, gpointer user_data);
  /* A piece of the response body. */
  void (*chunk) (CpClientCall *call, GBytes *chunk, gpointer user_data);
  /* The last callback: @error NULL = body complete; otherwise a CP_ERROR
   * (canceled, deadline_exceeded, unavailable for transport failures). */
  void (*end)   (CpClientCall *call, const GError *error, gpointer user_data);
} CpClientCallCallbacks;

/* TRUE when the response body ended because the server closed the
 * connection rather than by its own framing (see body_connection_lost ()
 * in cp-channel.c): a stream cut off that way is `unavailable`. */
gboolean cp_client_call_get_connection_lost (CpClientCall *call);

/* The owner context is the thread-default one at creation: every callback
 * runs there, from the main loop (never from inside a cp_client_call_*
 * function). @headers and @body are referenced. @user_data is released with
 * @destroy once no callback can follow. */
CpClientCall       *cp_client_call_new      (CpChannel                   *channel,
                                             const char                  *http_method,
                                             const char                  *path_and_query,
                                             SoupMessageHeaders          *headers,
                                             GBytes                      *body,
                                             gint64                       deadline,
                                             GCancellable                *cancellable,
                                             const CpClientCallCallbacks *callbacks,
                                             gpointer                     user_data,
                                             GDestroyNotify               destroy);
CpClientCall       *cp_client_call_ref      (CpClientCall *call);
void                cp_client_call_unref    (CpClientCall *call);
/* Sends the request (after checking cancellation and the deadline, which
 * adds Connect-Timeout-Ms). */
void                cp_client_call_start    (CpClientCall *call);
/* Back-pressure: stop/restart reading the response body. */
void                cp_client_call_pause    (CpClientCall *call);
void                cp_client_call_resume   (CpClientCall *call);
/* Ends with `canceled` (end callback follows from the main loop). */
void                cp_client_call_cancel   (CpClientCall *call);
/* Stops now and aborts the exchange: no callback follows. */
void                cp_client_call_close    (CpClientCall *call);
guint               cp_client_call_get_status  (CpClientCall *call);
const char         *cp_client_call_get_reason  (CpClientCall *call);
SoupMessageHeaders *cp_client_call_get_response_headers (CpClientCall *call);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpClientCall, cp_client_call_unref)

/* ---- cp-channel.c: Connect streaming response decoding ---- */

typedef struct _CpStreamDecoder CpStreamDecoder;

CpStreamDecoder *cp_stream_decoder_new      (GType             response_type,
                                             CpCodec           codec,
                                             gsize             max_receive_size);
void             cp_stream_decoder_free     (CpStreamDecoder  *decoder);
/* Validates status, Content-Type and Connect-Content-Encoding (docs/engine.md, "Client checks"). */
gboolean         cp_stream_decoder_head     (CpStreamDecoder  *decoder,
                                             guint             status,
                                             const char       *reason,
                                             SoupMessageHeaders *headers,
                                             GError          **error);
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
gboolean         cp_stream_decoder_has_end_stream (CpStreamDecoder *decoder);
SoupMessageHeaders *cp_stream_decoder_get_trailers (CpStreamDecoder *decoder);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpStreamDecoder, cp_stream_decoder_free)

/* Error metadata = headers ∪ trailers; sets them on a CP_ERROR error. */
void             cp_client_error_set_metadata (GError             *error,
                                               SoupMessageHeaders *headers,
                                               SoupMessageHeaders *trailers);

/* ---- constructors of the stream objects (cp-response-stream.c,
 * cp-request-stream.c) ---- */

CpResponseStream *cp_response_stream_new_internal (CpChannel     *channel,
                                                   const char    *procedure,
                                                   CpMessage     *request,
                                                   GType          response_type,
                                                   CpCallOptions *options);
/* The response side of a half-duplex call whose request body is @body
 * (referenced; NULL = empty), or that fails with @error (transfer full,
 * nullable) once started. @deadline (monotonic µs, 0 = none) replaces the
 * one @options would give. */
CpResponseStream *cp_response_stream_new_for_body_internal (CpChannel     *channel,
                                                            const char    *procedure,
                                                            GBytes        *body,
                                                            GError        *error,
                                                            GType          response_type,
                                                            CpCallOptions *options,
                                                            gint64         deadline);
CpRequestStream  *cp_request_stream_new_internal  (CpChannel     *channel,
                                                   const char    *procedure,
                                                   GType          response_type,
                                                   CpCallOptions *options);

G_END_DECLS
