/* fuzz-end-stream.c: the EndStream reader
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Either a clean result or an `internal` error; a parsed EndStream survives
 * a build/parse round trip.
 */
#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-error-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(SoupMessageHeaders) trailers = NULL;
  g_autoptr(GError) rpc_error = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) rebuilt = NULL;
  g_autoptr(SoupMessageHeaders) trailers_again = NULL;
  g_autoptr(GError) rpc_error_again = NULL;
  g_autoptr(GError) error_again = NULL;

  fuzz_set_up ();
  payload = g_bytes_new (data, size);
  trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

  if (!cp_end_stream_parse (payload, trailers, &rpc_error, &error))
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
      g_assert_null (rpc_error);
      return 0;
    }
  g_assert_no_error (error);

  rebuilt = cp_end_stream_build (rpc_error, trailers);
  trailers_again = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_assert_true (cp_end_stream_parse (rebuilt, trailers_again, &rpc_error_again, &error_again));
  g_assert_no_error (error_again);

  if (rpc_error == NULL)
    g_assert_null (rpc_error_again);
  else
    {
      g_assert_true (rpc_error->domain == CP_ERROR);
      g_assert_true (g_utf8_validate (rpc_error->message, -1, NULL));
      g_assert_nonnull (rpc_error_again);
      g_assert_cmpint (rpc_error_again->code, ==, rpc_error->code);
      g_assert_cmpstr (rpc_error_again->message, ==, rpc_error->message);
      g_assert_cmpuint (cp_error_get_details (rpc_error_again)->len, ==,
                        cp_error_get_details (rpc_error)->len);
    }

  return 0;
}
