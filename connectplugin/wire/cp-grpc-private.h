/* cp-grpc-private.h: gRPC and gRPC-Web wire pieces (timeouts, status, trailers, text mode)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the gRPC protocols add to the Connect envelope framing
 * (cp-envelope-private.h; the 5-byte envelope is the same): the
 * grpc-timeout header, the status as grpc-status / grpc-message /
 * grpc-status-details-bin (a google.rpc.Status, base64), gRPC-Web's
 * trailers frame (flag 0x80, "name: value\r\n" lines) and the base64 body
 * of application/grpc-web-text. gRPC status codes are the Connect codes'
 * numbers (0 is OK).
 */
#pragma once

#include "cp-error.h"

G_BEGIN_DECLS

/* Envelope flag of gRPC-Web's trailers frame. */
#define CP_GRPC_FLAG_TRAILERS 0x80

/* Parses a grpc-timeout value: 1–8 ASCII digits and a unit (H M S m u n).
 * Sets *@out_us to the timeout in µs (rounded up), or to -1 when it is too
 * large to matter (hours beyond what a gint64 of µs holds: no deadline).
 * Anything else → FALSE with CP_ERROR_INVALID_ARGUMENT. */
gboolean  cp_grpc_timeout_parse         (const char          *value,
                                         gint64              *out_us,
                                         GError             **error);
/* Formats @us (≤ 0 gives "0n") in the finest unit that fits in 8 digits. */
char     *cp_grpc_timeout_format        (gint64               us);

/* grpc-message: bytes below ' ', above '~' and '%' as %XX. */
char     *cp_grpc_percent_encode        (const char          *message);
/* Decodes %XX; a '%' not followed by two hex digits → FALSE, CP_ERROR_INTERNAL. */
char     *cp_grpc_percent_decode        (const char          *value,
                                         GError             **error);

/* A google.rpc.Status in protobuf binary: code 1, message 2, details 3
 * (google.protobuf.Any: type_url 1 "type.googleapis.com/<name>", value 2).
 * @details: CpErrorDetail*, nullable. */
GBytes   *cp_grpc_status_encode         (guint                code,
                                         const char          *message,
                                         GPtrArray           *details);
/* Parses a google.rpc.Status; unknown fields are skipped. *@out_details
 * (CpErrorDetail*, never NULL on success) takes the Any whose type_url has
 * a '/'; others are skipped. Malformed → FALSE, CP_ERROR_INTERNAL. */
gboolean  cp_grpc_status_decode         (const guint8        *data,
                                         gsize                len,
                                         guint               *out_code,
                                         char               **out_message,
                                         GPtrArray          **out_details,
                                         GError             **error);

/* Appends the outcome to @trailers: grpc-status (0 when @error is NULL),
 * grpc-message (percent-encoded), grpc-status-details-bin when the error
 * has details, and the error's metadata minus reserved names. */
void      cp_grpc_error_to_trailers     (const GError        *error,
                                         SoupMessageHeaders  *trailers);
/* Reads the outcome from trailers (or the headers of a trailers-only
 * response). Returns TRUE with *@out_rpc_error NULL for status 0, or the
 * call's CP_ERROR error (details from grpc-status-details-bin preferred,
 * metadata: @trailers minus the grpc-* names); FALSE with @error
 * (CP_ERROR_INTERNAL / UNKNOWN) when grpc-status is missing or malformed. */
gboolean  cp_grpc_error_from_trailers   (SoupMessageHeaders  *trailers,
                                         GError             **out_rpc_error,
                                         GError             **error);

/* gRPC-Web trailers frame payload: "name: value\r\n" per value, names
 * lowercase. */
GBytes   *cp_grpc_web_trailers_encode   (SoupMessageHeaders  *trailers);
/* Parses a trailers frame payload into @trailers (names lowercased; lines
 * end in CRLF or LF; a missing final line end is accepted). A line without
 * ':' or a name/value libsoup would refuse → FALSE, CP_ERROR_INTERNAL. */
gboolean  cp_grpc_web_trailers_decode   (GBytes              *payload,
                                         SoupMessageHeaders  *trailers,
                                         GError             **error);

/* application/grpc-web-text: the binary stream in standard base64, in
 * arbitrary pieces; each piece may be padded (a peer encoding message by
 * message), so '=' may end any 4-character group. */
typedef struct _CpGrpcTextDecoder CpGrpcTextDecoder;

CpGrpcTextDecoder *cp_grpc_text_decoder_new    (void);
void               cp_grpc_text_decoder_free   (CpGrpcTextDecoder *decoder);
/* Decodes what @len bytes of @text complete (NULL when nothing yet, with
 * @error unset). Invalid characters or padding → NULL with
 * CP_ERROR_INVALID_ARGUMENT (the decoder stays failed). */
GBytes            *cp_grpc_text_decoder_push   (CpGrpcTextDecoder *decoder,
                                                const char        *text,
                                                gsize              len,
                                                GError           **error);
/* End of input: the unpadded tail (2 or 3 characters) is decoded into
 * *@out_tail (NULL when none); 1 leftover character → FALSE. */
gboolean           cp_grpc_text_decoder_finish (CpGrpcTextDecoder *decoder,
                                                GBytes           **out_tail,
                                                GError           **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpGrpcTextDecoder, cp_grpc_text_decoder_free)

G_END_DECLS
