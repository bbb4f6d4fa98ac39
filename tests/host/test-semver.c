/* test-semver.c: version ordering of the platform (cp-semver.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-semver-private.h"

static void
test_valid (void)
{
  static const struct { const char *v; gboolean ok; } cases[] = {
    { "1.0.0", TRUE }, { "0.0.0", TRUE }, { "10.20.30", TRUE }, { "1.0.0-rc.1", TRUE },
    { "2.1.3-beta", TRUE }, { "1.0.0-a-b.c", TRUE },
    { NULL, FALSE }, { "", FALSE }, { "1", FALSE }, { "1.0", FALSE }, { "1.0.0.0", FALSE },
    { "v1.0.0", FALSE }, { "1.0.0-", FALSE }, { "1.0.0+build", FALSE }, { "1.0.0-rc_1", FALSE },
    { "a.b.c", FALSE }, { "1..0", FALSE }, { "99999999999999999999.0.0", FALSE },
    { "1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("%s", cases[i].v ? cases[i].v : "(null)");
      g_assert_cmpint (cp_semver_is_valid (cases[i].v), ==, cases[i].ok);
    }
}

static void
test_order (void)
{
  /* Ascending, as semver.org's precedence example, plus numeric fields. */
  static const char *ordered[] = {
    "0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
    "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0",
    "2.0.0", "9.0.0", "10.0.0",
  };

  for (guint i = 0; i < G_N_ELEMENTS (ordered); i++)
    for (guint j = 0; j < G_N_ELEMENTS (ordered); j++)
      {
        int expected = i < j ? -1 : i > j ? 1 : 0;

        g_test_message ("%s vs %s", ordered[i], ordered[j]);
        g_assert_cmpint (cp_semver_compare (ordered[i], ordered[j]), ==, expected);
      }
  /* Leading zeros in numeric prerelease identifiers do not change order. */
  g_assert_cmpint (cp_semver_compare ("1.0.0-rc.01", "1.0.0-rc.1"), ==, 0);
  /* Invalid versions sort below valid ones. */
  g_assert_cmpint (cp_semver_compare ("junk", "0.0.0"), <, 0);
}

static void
test_at_least (void)
{
  g_assert_true (cp_semver_at_least ("10.0.0", "9.0.0"));      /* "10" < "9" as strings */
  g_assert_false (cp_semver_at_least ("1.0.0-rc.1", "1.0.0"));
  g_assert_true (cp_semver_at_least ("1.0.0", NULL));
  g_assert_true (cp_semver_at_least ("1.0.0", ""));
  g_assert_false (cp_semver_at_least ("garbage", "0.0.1"));
  g_assert_true (cp_semver_at_least ("1.2.3", "1.2.3"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/host/semver/valid", test_valid);
  g_test_add_func ("/host/semver/order", test_order);
  g_test_add_func ("/host/semver/at-least", test_at_least);
  return g_test_run ();
}
