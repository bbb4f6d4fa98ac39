/* fuzz-error-json.c: the unary error JSON reader
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Any body under any status gives a CP_ERROR with a UTF-8 message, and what
 * was read survives a write/read round trip.
 */
#include "fuzz-common.h"
#include "cp-error.h"
#include "cp-error-private.h"

static const guint statuses[] = { 400, 401, 403, 404, 409, 429, 500, 503, 504, 800 };

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) body = NULL;

  fuzz_set_up ();
  body = g_bytes_new (data, size);

  for (gsize i = 0; i < G_N_ELEMENTS (statuses); i++)
    {
      g_autoptr(GError) error = cp_error_from_json (body, statuses[i], i % 2 ? "Reason" : NULL);
      g_autoptr(GBytes) json = NULL;
      g_autoptr(GError) again = NULL;
      GPtrArray *details, *details_again;

      g_assert_nonnull (error);
      g_assert_true (error->domain == CP_ERROR);
      g_assert_cmpint (error->code, >=, CP_ERROR_CANCELED);
      g_assert_cmpint (error->code, <=, CP_ERROR_UNAUTHENTICATED);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));

      json = cp_error_to_json (error);
      again = cp_error_from_json (json, 999, "x");
      g_assert_cmpint (again->code, ==, error->code);
      if (error->message[0] != '\0')
        g_assert_cmpstr (again->message, ==, error->message);

      details = cp_error_get_details (error);
      details_again = cp_error_get_details (again);
      g_assert_cmpuint (details->len, ==, details_again->len);
      for (guint j = 0; j < details->len; j++)
        {
          CpErrorDetail *a = g_ptr_array_index (details, j);
          CpErrorDetail *b = g_ptr_array_index (details_again, j);

          g_assert_cmpstr (cp_error_detail_get_type_name (a), ==, cp_error_detail_get_type_name (b));
          g_assert_true (g_bytes_equal (cp_error_detail_get_value (a), cp_error_detail_get_value (b)));
        }
    }

  return 0;
}
