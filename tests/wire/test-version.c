/* test-version.c: CP_CHECK_VERSION and the run-time version functions
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-version-macros.h"

/* Compile time: this build is 0.1.x (meson.build's project version). */
#if !CP_CHECK_VERSION (0, 1, 0)
#error "CP_CHECK_VERSION (0, 1, 0) must hold in 0.1"
#endif
#if CP_CHECK_VERSION (0, 2, 0) || CP_CHECK_VERSION (1, 0, 0)
#error "CP_CHECK_VERSION must not claim a later version"
#endif
#if CP_VERSION_CUR_STABLE != CP_VERSION_0_1 || CP_VERSION_MIN_REQUIRED != CP_VERSION_0_1
#error "the current stable version of 0.1 is CP_VERSION_0_1"
#endif

static void
test_run_time (void)
{
  g_assert_cmpuint (cp_get_major_version (), ==, CP_MAJOR_VERSION);
  g_assert_cmpuint (cp_get_minor_version (), ==, CP_MINOR_VERSION);
  g_assert_cmpuint (cp_get_micro_version (), ==, CP_MICRO_VERSION);

  g_assert_null (cp_check_version (CP_MAJOR_VERSION, CP_MINOR_VERSION, CP_MICRO_VERSION));
  g_assert_null (cp_check_version (CP_MAJOR_VERSION, 0, 0));
  g_assert_nonnull (cp_check_version (CP_MAJOR_VERSION, CP_MINOR_VERSION + 1, 0));
  g_assert_nonnull (cp_check_version (CP_MAJOR_VERSION, CP_MINOR_VERSION, CP_MICRO_VERSION + 1));
  g_assert_nonnull (cp_check_version (CP_MAJOR_VERSION + 1, 0, 0));
  if (CP_MAJOR_VERSION > 0)
    g_assert_nonnull (cp_check_version (CP_MAJOR_VERSION - 1, 0, 0));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/version/run-time", test_run_time);
  return g_test_run ();
}
