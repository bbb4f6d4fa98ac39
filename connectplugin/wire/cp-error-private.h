/* cp-error-private.h: Connect error JSON (unary bodies and EndStream)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-error.h"

G_BEGIN_DECLS

/* Turns any GError into a Connect error: CP_ERROR errors are copied;
 * G_IO_ERROR_CANCELLED -> canceled, G_IO_ERROR_TIMED_OUT -> deadline_exceeded,
 * anything else -> unknown with the same message. Never returns NULL. */
GError  *cp_error_to_connect          (const GError *error);

/* Error JSON (https://connectrpc.com/docs/protocol): {"code":..,"message":..,"details":[{"type","value"}]}.
 * value is standard base64, unpadded; "message" omitted when empty. */
GBytes  *cp_error_to_json             (const GError *error);
char    *cp_error_to_json_string      (const GError *error);

/* Reads a unary error body (https://connectrpc.com/docs/protocol). @http_status is the response status;
 * @body may be NULL or empty. Always returns a CP_ERROR error: the JSON code if
 * valid, otherwise the code from the HTTP status; message/details kept.
 * @reason_phrase (or, if NULL/empty, the standard phrase of @http_status) is
 * used as message when the body has none. The caller checks Content-Type and
 * decompresses first. Malformed details are skipped. */
GError  *cp_error_from_json           (GBytes       *body,
                                       guint         http_status,
                                       const char   *reason_phrase);

/* EndStream (https://connectrpc.com/docs/protocol): builds {"error":{...},"metadata":{"k":["v",..]}}.
 * @error and @trailers may be NULL; success without trailers gives "{}".
 * Error metadata (cp_error_get_metadata) is merged into "metadata" minus
 * protocol headers (cp_metadata_is_reserved, applied to @trailers too).
 * Keys are written lowercase, repeated headers grouped into one array. */
GBytes  *cp_end_stream_build          (const GError       *error,
                                       SoupMessageHeaders *trailers);

/* Parses an EndStream payload (https://connectrpc.com/docs/protocol). Fills @trailers (if not NULL) from
 * "metadata". Returns TRUE and sets *out_rpc_error to the stream's error (or
 * NULL on success); on invalid JSON/shape returns FALSE with an `internal`
 * error in @error (and @trailers untouched). Unknown/missing codes inside
 * "error" → unknown. The stream's error carries the parsed metadata as its
 * cp_error_get_metadata() (add the response headers yourself). Metadata
 * entries whose name/value libsoup would refuse are dropped. */
gboolean cp_end_stream_parse          (GBytes             *payload,
                                       SoupMessageHeaders *trailers,
                                       GError            **out_rpc_error,
                                       GError            **error);

G_END_DECLS
