/* fuzz-descriptor-set.c: cp_descriptor_set_read () on arbitrary bytes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Server reflection reads the FileDescriptorSets compiled into generated
 * code; whatever the bytes, the reader must return files or an error,
 * never crash, and what it returns must hold together: every file has a
 * name, its bytes lie within the input, its names are valid UTF-8.
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "cp-descriptor-set-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) files = cp_descriptor_set_read (bytes, &error);
  gsize total = 0;

  if (files == NULL)
    {
      g_assert_nonnull (error);
      return 0;
    }
  g_assert_no_error (error);
  for (guint i = 0; i < files->len; i++)
    {
      CpDescriptorFile *file = files->pdata[i];

      g_assert_nonnull (file->name);
      g_assert_true (g_utf8_validate (file->name, -1, NULL));
      total += g_bytes_get_size (file->bytes);
      for (guint j = 0; j < file->symbols->len; j++)
        g_assert_true (g_utf8_validate (file->symbols->pdata[j], -1, NULL));
      for (guint j = 0; j < file->imports->len; j++)
        g_assert_true (g_utf8_validate (file->imports->pdata[j], -1, NULL));
    }
  g_assert_cmpuint (total, <=, size);
  return 0;
}
