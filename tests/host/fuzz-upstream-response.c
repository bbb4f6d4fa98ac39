/* fuzz-upstream-response.c: the router's HTTP/1.1 response parser
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The first byte picks how the rest is cut into pieces (as reads from a
 * socket would cut it), then EOF. Whatever the bytes, the parser must
 * end in exactly one of: a complete response, an error, or waiting for
 * more; body bytes are never more than the input, never appear before
 * the head, and nothing follows DONE or ERROR.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "cp-upstream-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  CpUpstreamParser parser;
  GByteArray *buffer = g_byte_array_new ();
  gsize piece, offset = 1, body_total = 0;
  gboolean head = FALSE, over = FALSE;

  if (size == 0)
    {
      g_byte_array_unref (buffer);
      return 0;
    }
  piece = (data[0] % 64) + 1;
  cp_upstream_parser_init (&parser, (data[0] & 0x80) != 0);

  while (!over)
    {
      gboolean eof = offset >= size;
      gsize n = MIN (piece, size - offset);

      g_byte_array_append (buffer, data + offset, n);
      offset += n;
      for (;;)
        {
          g_autoptr(GError) error = NULL;
          const guint8 *body;
          gsize consumed, body_len;
          CpUpstreamEvent event = cp_upstream_parser_feed (&parser, buffer->data, buffer->len,
                                                           eof, &consumed, &body, &body_len,
                                                           &error);

          g_assert_cmpuint (consumed, <=, buffer->len);
          if (event == CP_UPSTREAM_DATA)
            {
              g_assert_true (head);
              g_assert_true (body >= buffer->data && body + body_len <= buffer->data + buffer->len);
              body_total += body_len;
            }
          else
            g_assert_cmpuint (body_len, ==, 0);
          g_byte_array_remove_range (buffer, 0, consumed);
          if (event == CP_UPSTREAM_HEAD)
            {
              g_assert_false (head);
              g_assert_cmpuint (parser.status, >=, 200);
              g_assert_cmpuint (parser.status, <=, 999);
              head = TRUE;
            }
          else if (event == CP_UPSTREAM_DONE)
            {
              g_assert_true (head);
              over = TRUE;
              break;
            }
          else if (event == CP_UPSTREAM_ERROR)
            {
              g_assert_nonnull (error);
              over = TRUE;
              break;
            }
          else if (event == CP_UPSTREAM_NEED_MORE && consumed == 0)
            {
              /* At EOF the parser must decide, except that it may still
               * wait inside a body that ends at EOF (never reached). */
              g_assert_false (eof && buffer->len == 0 && !cp_upstream_parser_reads_until_close (&parser));
              break;
            }
        }
      if (eof)
        break;
    }
  g_assert_cmpuint (body_total, <=, size);
  cp_upstream_parser_clear (&parser);
  g_byte_array_unref (buffer);
  return 0;
}
