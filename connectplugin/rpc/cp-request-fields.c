/* cp-request-fields.c: the request header fields the engine reads, found
 * in one pass
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-request-fields-private.h"

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

      /* By length first: a compare only for a name of the right one. */
      switch (strlen (name))
        {
        case 11:
          if (g_ascii_strcasecmp (name, "traceparent") == 0)
            slot = &fields->traceparent;
          break;
        case 12:
          if (g_ascii_strcasecmp (name, "Content-Type") == 0)
            slot = &fields->content_type;
          else if (g_ascii_strcasecmp (name, "grpc-timeout") == 0)
            slot = &fields->grpc_timeout;
          break;
        case 13:
          if (g_ascii_strcasecmp (name, "grpc-encoding") == 0)
            slot = &fields->grpc_encoding;
          break;
        case 16:
          if (g_ascii_strcasecmp (name, "Content-Encoding") == 0)
            slot = &fields->content_encoding;
          break;
        case 18:
          if (g_ascii_strcasecmp (name, "Connect-Timeout-Ms") == 0)
            slot = &fields->connect_timeout_ms;
          break;
        case 24:
          if (g_ascii_strcasecmp (name, "Connect-Protocol-Version") == 0)
            slot = &fields->connect_protocol_version;
          else if (g_ascii_strcasecmp (name, "Connect-Content-Encoding") == 0)
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
