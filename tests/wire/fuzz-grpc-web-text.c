/* fuzz-grpc-web-text.c: the base64 body of application/grpc-web-text, in pieces
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The first byte picks the piece size; what decodes must encode back to
 * text that decodes to the same bytes.
 */
#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-grpc-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(CpGrpcTextDecoder) decoder = NULL;
  g_autoptr(GByteArray) out = NULL;
  g_autoptr(GBytes) tail = NULL;
  g_autoptr(GError) error = NULL;
  gsize step;

  fuzz_set_up ();
  if (size < 1)
    return 0;
  step = (data[0] % 16) + 1;
  data++;
  size--;

  decoder = cp_grpc_text_decoder_new ();
  out = g_byte_array_new ();
  for (gsize i = 0; i < size; i += step)
    {
      g_autoptr(GBytes) piece = cp_grpc_text_decoder_push (decoder, (const char *) data + i,
                                                           MIN (step, size - i), &error);

      if (error != NULL)
        {
          g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
          return 0;
        }
      if (piece != NULL)
        g_byte_array_append (out, g_bytes_get_data (piece, NULL), g_bytes_get_size (piece));
    }
  if (!cp_grpc_text_decoder_finish (decoder, &tail, &error))
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      return 0;
    }
  if (tail != NULL)
    g_byte_array_append (out, g_bytes_get_data (tail, NULL), g_bytes_get_size (tail));
  g_assert_cmpuint (out->len, <=, size);

  {
    g_autofree char *text = g_base64_encode (out->data, out->len);
    g_autoptr(CpGrpcTextDecoder) again = cp_grpc_text_decoder_new ();
    g_autoptr(GBytes) whole = cp_grpc_text_decoder_push (again, text, strlen (text), NULL);
    g_autoptr(GBytes) rest = NULL;

    g_assert_true (cp_grpc_text_decoder_finish (again, &rest, NULL));
    g_assert_null (rest);
    if (out->len == 0)
      g_assert_null (whole);
    else
      g_assert_cmpmem (g_bytes_get_data (whole, NULL), g_bytes_get_size (whole), out->data, out->len);
  }
  return 0;
}
