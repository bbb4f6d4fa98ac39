/* test-timeout.c: Connect-Timeout-Ms parsing and formatting
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-error.h"
#include "cp-timeout-private.h"

static void
test_parse_valid (void)
{
  static const struct { const char *text; gint64 ms; } cases[] = {
    { "0", 0 },
    { "1", 1 },
    { "2000", 2000 },
    { "0000000200", 200 },
    { "9999999999", G_GINT64_CONSTANT (9999999999) },
    { "4294967296", G_GINT64_CONSTANT (4294967296) },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 ms = -1;

      g_assert_true (cp_timeout_parse (cases[i].text, &ms, &error));
      g_assert_no_error (error);
      g_assert_cmpint (ms, ==, cases[i].ms);
    }
}

static void
test_parse_invalid (void)
{
  static const char * const cases[] = {
    "", " ", "abc", "-5", "+5", " 5", "5 ", "5s", "1.5", "0x10", "12345678901",
    "99999999999999999999", "\xd9\xa3", "5\n", "1e3",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 ms = 42;

      g_test_message ("'%s'", cases[i]);
      g_assert_false (cp_timeout_parse (cases[i], &ms, &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      g_assert_cmpint (ms, ==, 42);
    }

  {
    g_autoptr(GError) error = NULL;

    g_assert_false (cp_timeout_parse (NULL, NULL, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  }
}

static void
test_format (void)
{
  g_autofree char *a = cp_timeout_format (1);
  g_autofree char *b = cp_timeout_format (2000);
  g_autofree char *c = cp_timeout_format (G_GINT64_CONSTANT (9999999999));
  g_autofree char *d = cp_timeout_format (G_GINT64_CONSTANT (10000000000));
  g_autofree char *e = cp_timeout_format (G_MAXINT64);
  g_autofree char *f = cp_timeout_format (0);
  g_autofree char *g = cp_timeout_format (-7);

  g_assert_cmpstr (a, ==, "1");
  g_assert_cmpstr (b, ==, "2000");
  g_assert_cmpstr (c, ==, "9999999999");
  g_assert_null (d);
  g_assert_null (e);
  g_assert_cmpstr (f, ==, "0");
  g_assert_cmpstr (g, ==, "0");
}

static void
test_round_trip (void)
{
  for (gint64 ms = 1; ms <= G_GINT64_CONSTANT (9999999999); ms = ms * 3 + 1)
    {
      g_autofree char *text = cp_timeout_format (ms);
      gint64 back = 0;

      g_assert_nonnull (text);
      g_assert_true (cp_timeout_parse (text, &back, NULL));
      g_assert_cmpint (back, ==, ms);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/timeout/parse-valid", test_parse_valid);
  g_test_add_func ("/wire/timeout/parse-invalid", test_parse_invalid);
  g_test_add_func ("/wire/timeout/format", test_format);
  g_test_add_func ("/wire/timeout/round-trip", test_round_trip);

  return g_test_run ();
}
