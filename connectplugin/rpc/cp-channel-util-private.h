/* cp-channel-util-private.h: response checks and error helpers shared by
 * the channel's units (unary calls, call settings, stream decoder)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-codec.h"
#include "cp-compression.h"
#include "cp-error.h"
#include "cp-message.h"
#include "cp-channel.h"

G_BEGIN_DECLS

/* Gives a decoding/decompression error (transfer full) a Connect code
 * (@code unless it already is a CP_ERROR); returns it (transfer full). */
GError     *cp_channel_ensure_cp_error  (GError             *error,
                                         CpError             code);
/* Lower-cased media type of Content-Type without parameters; NULL when
 * absent. */
char       *cp_channel_media_type       (SoupMessageHeaders *headers);
/* Reads a Content-Encoding-like header: absent/empty/identity → identity;
 * an unknown one is `internal`. */
gboolean    cp_channel_parse_encoding   (SoupMessageHeaders *headers,
                                         const char         *name,
                                         CpCompression      *out,
                                         GError            **error);
/* Decodes one response message (an empty proto payload is the empty
 * message); errors are `invalid_argument` unless already Connect ones. */
CpMessage  *cp_channel_decode_message   (GType               type,
                                         CpCodec             codec,
                                         GBytes             *data,
                                         GError            **error);
/* Error metadata = headers ∪ trailers; sets them on a CP_ERROR error. */
void        cp_channel_error_set_metadata (GError             *error,
                                           SoupMessageHeaders *headers,
                                           SoupMessageHeaders *trailers);
/* Whether @channel can make calls in @protocol: gRPC needs the HTTP
 * trailers that only the HTTP/2 transport gives (CpChannel:http-version);
 * otherwise FALSE with `unimplemented`. */
gboolean    cp_channel_protocol_usable  (CpChannel          *channel,
                                         CpProtocol          protocol,
                                         GError            **error);

G_END_DECLS
