/* fuzz-timeout.c: Connect-Timeout-Ms parsing
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-timeout-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *value = NULL;
  g_autoptr(GError) error = NULL;
  gint64 ms = -1;

  fuzz_set_up ();
  value = size > 0 ? g_strndup ((const char *) data, size) : g_strdup ("");

  if (cp_timeout_parse (value, &ms, &error))
    {
      g_autofree char *formatted = cp_timeout_format (ms);
      gint64 back = -1;

      g_assert_no_error (error);
      g_assert_cmpint (ms, >=, 0);
      g_assert_cmpint (ms, <=, G_GINT64_CONSTANT (9999999999));
      g_assert_nonnull (formatted);
      g_assert_true (cp_timeout_parse (formatted, &back, NULL));
      g_assert_cmpint (back, ==, ms);
    }
  else
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }

  return 0;
}
