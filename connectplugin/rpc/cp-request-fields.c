/* cp-request-fields.c: the request header fields the engine reads, found
 * in one pass
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-request-fields-private.h"
#include "cp-http-syntax-private.h"

#include <string.h>

void
cp_request_fields_scan (CpRequestFields    *fields,
                        SoupMessageHeaders *headers)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;

  memset (fields, 0, sizeof *fields);
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      const char **slot = NULL;
      gsize len = strlen (name);

      /* By length first: a compare only for a name of the right one. */
      switch (len)
        {
        case 11:
          if (CP_HTTP_NAME_IS (name, len, "traceparent"))
            slot = &fields->traceparent;
          break;
        case 12:
          if (CP_HTTP_NAME_IS (name, len, "Content-Type"))
            slot = &fields->content_type;
          else if (CP_HTTP_NAME_IS (name, len, "grpc-timeout"))
            slot = &fields->grpc_timeout;
          break;
        case 13:
          if (CP_HTTP_NAME_IS (name, len, "grpc-encoding"))
            slot = &fields->grpc_encoding;
          break;
        case 15:
          if (CP_HTTP_NAME_IS (name, len, "Accept-Encoding"))
            {
              slot = &fields->accept_encoding;
              fields->n_accept_encoding++;
            }
          break;
        case 16:
          if (CP_HTTP_NAME_IS (name, len, "Content-Encoding"))
            slot = &fields->content_encoding;
          break;
        case 18:
          if (CP_HTTP_NAME_IS (name, len, "Connect-Timeout-Ms"))
            slot = &fields->connect_timeout_ms;
          break;
        case 20:
          if (CP_HTTP_NAME_IS (name, len, "grpc-accept-encoding"))
            {
              slot = &fields->grpc_accept_encoding;
              fields->n_grpc_accept_encoding++;
            }
          break;
        case 23:
          if (CP_HTTP_NAME_IS (name, len, "Connect-Accept-Encoding"))
            {
              slot = &fields->connect_accept_encoding;
              fields->n_connect_accept_encoding++;
            }
          break;
        case 24:
          if (CP_HTTP_NAME_IS (name, len, "Connect-Protocol-Version"))
            slot = &fields->connect_protocol_version;
          else if (CP_HTTP_NAME_IS (name, len, "Connect-Content-Encoding"))
            slot = &fields->connect_content_encoding;
          break;
        default:
          break;
        }
      /* The last one wins, as with soup_message_headers_get_one (). */
      if (slot != NULL)
        *slot = value;
    }
}
