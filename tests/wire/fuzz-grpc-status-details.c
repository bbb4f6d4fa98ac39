/* fuzz-grpc-status-details.c: grpc-status-details-bin (a google.rpc.Status)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Raw protobuf bytes through cp_grpc_status_decode(); what decodes encodes
 * and decodes back to the same code, message and details.
 */
#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-grpc-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *message = NULL;
  g_autoptr(GPtrArray) details = NULL;
  g_autoptr(GError) error = NULL;
  guint code = 0;

  fuzz_set_up ();
  if (!cp_grpc_status_decode (data, size, &code, &message, &details, &error))
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
      return 0;
    }
  g_assert_nonnull (details);

  {
    g_autoptr(GBytes) encoded = cp_grpc_status_encode (code, message, details);
    g_autofree char *message2 = NULL;
    g_autoptr(GPtrArray) details2 = NULL;
    guint code2 = 0;

    g_assert_true (cp_grpc_status_decode (g_bytes_get_data (encoded, NULL), g_bytes_get_size (encoded),
                                          &code2, &message2, &details2, NULL));
    g_assert_cmpuint (code2, ==, code);
    g_assert_cmpstr (message2 ? message2 : "", ==, message ? message : "");
    g_assert_cmpuint (details2->len, ==, details->len);
  }
  return 0;
}
