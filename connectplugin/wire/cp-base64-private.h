/* cp-base64-private.h: base64 as Connect and proto3 JSON use it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Output follows what the peer expects: Connect wants unpadded base64 for
 * binary ("-Bin") metadata values and error detail values
 * (https://connectrpc.com/docs/protocol), URL-safe and unpadded for the
 * message of a GET request; proto3 JSON `bytes` fields are plain padded
 * g_base64_encode(). Input is taken as protobuf-go and connect-go take it:
 * the standard or the URL-safe alphabet (not both in one text), padded
 * ('=' up to a multiple of four) or not. Anything else is refused: other
 * characters (whitespace too), a stray or surplus '=', a length that leaves
 * a single character in the last group.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Standard alphabet, no '=' padding. @data may be NULL when @len is 0. */
char    *cp_base64_encode_unpadded     (const guint8 *data,
                                        gsize         len);

/* URL-safe alphabet ('-', '_'), no '=' padding. */
char    *cp_base64_url_encode_unpadded (const guint8 *data,
                                        gsize         len);

/* Decodes the first @len bytes of @text (see the top of this file for what
 * is accepted). On success *@out_data is a g_malloc'd buffer of *@out_len
 * bytes, or NULL when the text decodes to nothing. Failure →
 * CP_ERROR_INVALID_ARGUMENT. */
gboolean cp_base64_decode              (const char   *text,
                                        gsize         len,
                                        guint8      **out_data,
                                        gsize        *out_len,
                                        GError      **error);

/* cp_base64_decode() into a GBytes; @len -1 = NUL-terminated. */
GBytes  *cp_base64_decode_liberal      (const char   *text,
                                        gssize        len,
                                        GError      **error);

G_END_DECLS
