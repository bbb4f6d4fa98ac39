/* fuzz-line-reader.c: the watch streams' line reader (cp-line-reader.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The first byte is the line bound (1..256); the rest is the stream, read
 * line by line until its end or an error. Every line returned is within
 * the bound, holds no "\n", and the lines with their newlines are the
 * stream's bytes in order; an error is `resource_exhausted` and only for a
 * line longer than the bound.
 */
#include <gio/gio.h>
#include <stdint.h>
#include <string.h>

#include "cp-line-reader-private.h"
#include "cp-error.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
got_line (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GInputStream) base = NULL;
  g_autoptr(CpLineReader) reader = NULL;
  gsize max, pos = 1;

  if (size < 1)
    return 0;
  max = (data[0] % 256) + 1;
  base = g_memory_input_stream_new_from_data (data + 1, size - 1, NULL);
  reader = cp_line_reader_new (base, max);
  for (;;)
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *line = NULL;
      gsize len = 0;

      cp_line_reader_read_line_async (reader, NULL, got_line, &result);
      while (result == NULL)
        g_main_context_iteration (NULL, TRUE);
      line = cp_line_reader_read_line_finish (reader, result, &len, &error);
      if (error != NULL)
        {
          g_assert_true (g_error_matches (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED));
          g_assert_null (line);
          /* the line under way is longer than the bound */
          g_assert_cmpuint (size - pos, >, max);
          break;
        }
      if (line == NULL)
        {
          g_assert_cmpuint (pos, ==, size);   /* the end: every byte was returned */
          break;
        }
      g_assert_cmpuint (len, <=, max);
      g_assert_null (memchr (line, '\n', len));
      g_assert_true (pos + len <= size);
      g_assert_true (memcmp (line, data + pos, len) == 0);
      pos += len;
      if (pos < size && data[pos] == '\r')
        pos++;                               /* the "\r" before a "\n" */
      if (pos < size)
        {
          g_assert_cmpint (data[pos], ==, '\n');
          pos++;
        }
    }
  return 0;
}
