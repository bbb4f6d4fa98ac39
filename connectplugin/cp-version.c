/* cp-version.c: the version of the connectplugin library loaded at run time
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-version-macros.h"

/**
 * cp_get_major_version:
 *
 * The major version of the library loaded at run time, which may differ
 * from [const@ConnectPlugin.MAJOR_VERSION], the one the program was
 * compiled against.
 *
 * Returns: the major version
 */
guint
cp_get_major_version (void)
{
  return CP_MAJOR_VERSION;
}

/**
 * cp_get_minor_version:
 *
 * The minor version of the library loaded at run time.
 *
 * Returns: the minor version
 */
guint
cp_get_minor_version (void)
{
  return CP_MINOR_VERSION;
}

/**
 * cp_get_micro_version:
 *
 * The micro version of the library loaded at run time.
 *
 * Returns: the micro version
 */
guint
cp_get_micro_version (void)
{
  return CP_MICRO_VERSION;
}

/**
 * cp_check_version:
 * @major: the major version required
 * @minor: the minor version required
 * @micro: the micro version required
 *
 * Whether the library loaded at run time is @major.@minor.@micro or a
 * newer version with the same major version (the same API, perhaps more of
 * it), as [func@GLib.check_version] for GLib.
 *
 * Returns: (transfer none) (nullable): %NULL when it is, else a string
 *   saying why not (owned by the library)
 */
const char *
cp_check_version (guint major,
                  guint minor,
                  guint micro)
{
  if (major != CP_MAJOR_VERSION)
    return major > CP_MAJOR_VERSION ? "connectplugin version too old (major mismatch)"
                                    : "connectplugin version too new (major mismatch)";
  if (minor > CP_MINOR_VERSION ||
      (minor == CP_MINOR_VERSION && micro > CP_MICRO_VERSION))
    return "connectplugin version too old (minor or micro mismatch)";
  return NULL;
}
