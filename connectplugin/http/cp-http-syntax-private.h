/* cp-http-syntax-private.h: RFC 9112 message syntax, as the server reads it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For cp-http-connection.c (and its fuzzer): see cp-http-syntax.c.
 */
#pragma once

#include "cp-http-connection-private.h"

#include <string.h>

G_BEGIN_DECLS

/* Whether the field name @name, of length @len, is the literal @lit,
 * ignoring case: the exact spelling is tried first (libsoup gives its own
 * spelling of the names it knows, and clients mostly send those). */
#define CP_HTTP_NAME_IS(name, len, lit) \
  ((len) == sizeof (lit) - 1 && \
   (memcmp ((name), (lit), sizeof (lit) - 1) == 0 || g_ascii_strcasecmp ((name), (lit)) == 0))

/* Longest chunk-size line (with extensions) we accept. */
#define CP_HTTP_CHUNK_LINE_MAX 1024

/* @p..@len: the request line and the field lines, each with its line end.
 * Returns 0 or an error status; counts the Host fields in *n_host. */
guint    cp_http_check_head_syntax     (const guint8   *p,
                                        gsize           len,
                                        guint          *n_host);
/* Checks the framing headers of @ex's parsed head and sets its body framing
 * (chunked_request, content_length, empty_body) and what its Connection and
 * Expect fields say (connection_close, connection_keep_alive, has_expect);
 * returns 0 or an error status. */
guint    cp_http_check_framing         (CpHttpExchange *ex);
/* Returns 1 (a chunk of *size bytes follows the *line_len bytes of its
 * line), 0 (no complete line yet) or -1 (malformed or too long). */
int      cp_http_parse_chunk_size_line (const guint8   *p,
                                        gsize           avail,
                                        guint64        *size,
                                        gsize          *line_len);
/* A trailer field line (with its line end) must be a field line too. */
gboolean cp_http_check_trailer_line    (const guint8   *p,
                                        gsize           len);

G_END_DECLS
