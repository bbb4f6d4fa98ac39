/* cp-version-macros.h: symbol visibility, versions and deprecations
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * As GLib's gversionmacros.h: a program may define CP_VERSION_MIN_REQUIRED
 * (deprecations since that version warn) and CP_VERSION_MAX_ALLOWED (API
 * added after that version warns) before including <connectplugin.h>, each
 * to a CP_VERSION_X_Y value. CP_DISABLE_DEPRECATION_WARNINGS silences the
 * deprecation warnings altogether.
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib.h>
#include "cp-version.h"

#ifndef _CP_EXTERN
# define _CP_EXTERN __attribute__((visibility ("default"))) extern
#endif

/**
 * CP_ENCODE_VERSION:
 * @major: a major version
 * @minor: a minor version
 *
 * Encodes a version for CP_VERSION_MIN_REQUIRED and CP_VERSION_MAX_ALLOWED.
 */
#define CP_ENCODE_VERSION(major,minor) ((major) << 16 | (minor) << 8)

/**
 * CP_VERSION_0_1:
 *
 * The version 0.1, for CP_VERSION_MIN_REQUIRED and CP_VERSION_MAX_ALLOWED.
 */
#define CP_VERSION_0_1 (CP_ENCODE_VERSION (0, 1))

/**
 * CP_VERSION_0_2:
 *
 * The version 0.2 (the next one), for CP_VERSION_MIN_REQUIRED and
 * CP_VERSION_MAX_ALLOWED.
 */
#define CP_VERSION_0_2 (CP_ENCODE_VERSION (0, 2))

/**
 * CP_VERSION_CUR_STABLE:
 *
 * The version compiled against, encoded.
 */
#define CP_VERSION_CUR_STABLE (CP_ENCODE_VERSION (CP_MAJOR_VERSION, CP_MINOR_VERSION))

#ifndef CP_VERSION_MIN_REQUIRED
# define CP_VERSION_MIN_REQUIRED (CP_VERSION_CUR_STABLE)
#endif
#ifndef CP_VERSION_MAX_ALLOWED
# define CP_VERSION_MAX_ALLOWED (CP_VERSION_CUR_STABLE)
#endif

#if CP_VERSION_MAX_ALLOWED < CP_VERSION_MIN_REQUIRED
# error "CP_VERSION_MAX_ALLOWED must be >= CP_VERSION_MIN_REQUIRED"
#endif
#if CP_VERSION_MIN_REQUIRED < CP_VERSION_0_1
# error "CP_VERSION_MIN_REQUIRED must be >= CP_VERSION_0_1"
#endif

#define CP_AVAILABLE_IN_ALL _CP_EXTERN

/**
 * CP_DEPRECATED_FOR:
 * @f: the replacement
 *
 * Declares a symbol deprecated in favour of @f (warns unless
 * CP_DISABLE_DEPRECATION_WARNINGS is defined).
 */

/**
 * CP_UNAVAILABLE:
 * @maj: the major version that added the symbol
 * @min: the minor version that added the symbol
 *
 * Declares a symbol added after CP_VERSION_MAX_ALLOWED (warns when used).
 */

/**
 * CP_DEPRECATED_IN_0_1_FOR:
 * @f: the replacement
 *
 * Declares a symbol deprecated in 0.1 in favour of @f: it warns when
 * CP_VERSION_MIN_REQUIRED is 0.1 or later.
 */

/**
 * CP_DEPRECATED_IN_0_2_FOR:
 * @f: the replacement
 *
 * Declares a symbol deprecated in 0.2 in favour of @f: it warns when
 * CP_VERSION_MIN_REQUIRED is 0.2 or later.
 */

#if defined(CP_DISABLE_DEPRECATION_WARNINGS) || defined(CONNECTPLUGIN_COMPILATION)
# define CP_DEPRECATED _CP_EXTERN
# define CP_DEPRECATED_FOR(f) _CP_EXTERN
# define CP_UNAVAILABLE(maj,min) _CP_EXTERN
#else
# define CP_DEPRECATED G_DEPRECATED _CP_EXTERN
# define CP_DEPRECATED_FOR(f) G_DEPRECATED_FOR (f) _CP_EXTERN
# define CP_UNAVAILABLE(maj,min) G_UNAVAILABLE (maj, min) _CP_EXTERN
#endif

/* 0.1: the first release. */
#define CP_AVAILABLE_IN_0_1 _CP_EXTERN
#if CP_VERSION_MIN_REQUIRED >= CP_VERSION_0_1
# define CP_DEPRECATED_IN_0_1 CP_DEPRECATED
# define CP_DEPRECATED_IN_0_1_FOR(f) CP_DEPRECATED_FOR (f)
#else
# define CP_DEPRECATED_IN_0_1 _CP_EXTERN
# define CP_DEPRECATED_IN_0_1_FOR(f) _CP_EXTERN
#endif

/* 0.2: what comes next. */
#if CP_VERSION_MAX_ALLOWED < CP_VERSION_0_2
# define CP_AVAILABLE_IN_0_2 CP_UNAVAILABLE (0, 2)
#else
# define CP_AVAILABLE_IN_0_2 _CP_EXTERN
#endif
#if CP_VERSION_MIN_REQUIRED >= CP_VERSION_0_2
# define CP_DEPRECATED_IN_0_2 CP_DEPRECATED
# define CP_DEPRECATED_IN_0_2_FOR(f) CP_DEPRECATED_FOR (f)
#else
# define CP_DEPRECATED_IN_0_2 _CP_EXTERN
# define CP_DEPRECATED_IN_0_2_FOR(f) _CP_EXTERN
#endif

/* The run-time version (cp-version.c). */
CP_AVAILABLE_IN_ALL
guint       cp_get_major_version (void);
CP_AVAILABLE_IN_ALL
guint       cp_get_minor_version (void);
CP_AVAILABLE_IN_ALL
guint       cp_get_micro_version (void);
CP_AVAILABLE_IN_ALL
const char *cp_check_version     (guint major,
                                  guint minor,
                                  guint micro);
