/* fuzz-grpc-web-trailers.c: gRPC-Web trailers frames and the status they carry
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-grpc-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(SoupMessageHeaders) trailers = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) rpc = NULL;

  fuzz_set_up ();
  payload = g_bytes_new (data, size);
  trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  if (!cp_grpc_web_trailers_decode (payload, trailers, &error))
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
      return 0;
    }

  /* What parsed encodes and parses back the same. */
  {
    g_autoptr(GBytes) encoded = cp_grpc_web_trailers_encode (trailers);
    g_autoptr(SoupMessageHeaders) again = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
    g_autoptr(GBytes) encoded_again = NULL;

    g_assert_true (cp_grpc_web_trailers_decode (encoded, again, NULL));
    encoded_again = cp_grpc_web_trailers_encode (again);
    g_assert_true (g_bytes_equal (encoded, encoded_again));
  }

  if (cp_grpc_error_from_trailers (trailers, &rpc, &error))
    {
      g_assert_no_error (error);
      if (rpc != NULL)
        {
          g_assert_true (rpc->domain == CP_ERROR);
          g_assert_cmpint (rpc->code, >=, 1);
          g_assert_cmpint (rpc->code, <=, 16);
        }
    }
  else
    g_assert_true (g_error_matches (error, CP_ERROR, CP_ERROR_INTERNAL) ||
                   g_error_matches (error, CP_ERROR, CP_ERROR_UNKNOWN));
  return 0;
}
