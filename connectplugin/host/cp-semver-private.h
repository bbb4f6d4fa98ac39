/* cp-semver-private.h: semantic versions, as the platform compares them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when @version is MAJOR.MINOR.PATCH with an optional -PRERELEASE
 * (connect-plugin-go's ^[0-9]+\.[0-9]+\.[0-9]+(-[a-zA-Z0-9.-]+)?$), at
 * most 64 bytes. */
gboolean cp_semver_is_valid (const char *version);
/* Orders two valid versions as semver 2.0.0 does: numbers numerically, a
 * prerelease below its release, prerelease identifiers numerically when
 * both are numeric, else in ASCII order, numeric ones below the others. An
 * invalid version orders below every valid one. */
int      cp_semver_compare  (const char *a,
                             const char *b);
/* TRUE when @version satisfies @min_version (NULL or "" = any). */
gboolean cp_semver_at_least (const char *version,
                             const char *min_version);

G_END_DECLS
