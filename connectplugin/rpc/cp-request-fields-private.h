/* cp-request-fields-private.h: the request header fields the engine reads,
 * found in one pass
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

/* The values (NULL when absent; the last one when repeated, as
 * soup_message_headers_get_one () answers) of the fields a call's start
 * reads. They point into the headers: valid while those are unchanged. */
typedef struct {
  const char *content_type;
  const char *content_encoding;
  const char *connect_content_encoding;
  const char *connect_protocol_version;
  const char *connect_timeout_ms;
  const char *grpc_encoding;
  const char *grpc_timeout;
  const char *traceparent;
  /* List fields: the value when the field came once (how many times it
   * came in n_*; more than once, read the joined list from the headers). */
  const char *accept_encoding;
  const char *connect_accept_encoding;
  const char *grpc_accept_encoding;
  guint n_accept_encoding;
  guint n_connect_accept_encoding;
  guint n_grpc_accept_encoding;
} CpRequestFields;

/* One walk of @headers instead of a lookup by name for each field (which
 * for names libsoup does not know compares every such header). */
void cp_request_fields_scan (CpRequestFields    *fields,
                             SoupMessageHeaders *headers);

G_END_DECLS
