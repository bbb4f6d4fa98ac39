/* fuzz-gunzip.c: bounded gzip decompression (64 KiB limit)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "cp-compression.h"
#include "cp-error.h"

#define LIMIT (64 * 1024)

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) input = NULL;
  g_autoptr(GBytes) output = NULL;
  g_autoptr(GError) error = NULL;

  fuzz_set_up ();
  input = g_bytes_new (data, size);

  output = cp_decompress (CP_COMPRESSION_GZIP, input, LIMIT, &error);
  if (output == NULL)
    {
      g_assert_true (g_error_matches (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT) ||
                     g_error_matches (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED));
    }
  else
    {
      g_autoptr(GBytes) recompressed = NULL;
      g_autoptr(GBytes) back = NULL;

      g_assert_no_error (error);
      g_assert_cmpuint (g_bytes_get_size (output), <=, LIMIT);
      recompressed = cp_compress (CP_COMPRESSION_GZIP, output, &error);
      g_assert_no_error (error);
      back = cp_decompress (CP_COMPRESSION_GZIP, recompressed, LIMIT, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (back, output));
    }

  return 0;
}
