/* fuzz-grpc-timeout.c: grpc-timeout parsing and formatting
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-grpc-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *value = NULL;
  g_autoptr(GError) error = NULL;
  gint64 us = -2;

  fuzz_set_up ();
  value = size > 0 ? g_strndup ((const char *) data, size) : g_strdup ("");

  if (cp_grpc_timeout_parse (value, &us, &error))
    {
      g_assert_no_error (error);
      g_assert_cmpint (us, >=, -1);
      if (us >= 0)
        {
          g_autofree char *formatted = cp_grpc_timeout_format (us);
          gint64 back = -2;

          /* Formatting rounds up, never down. */
          g_assert_true (cp_grpc_timeout_parse (formatted, &back, NULL));
          g_assert_cmpint (back, >=, us);
        }
    }
  else
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }
  return 0;
}
