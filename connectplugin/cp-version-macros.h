/* cp-version-macros.h: symbol visibility for connectplugin
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib.h>

#ifndef _CP_EXTERN
# define _CP_EXTERN __attribute__((visibility ("default"))) extern
#endif

#define CP_AVAILABLE_IN_ALL _CP_EXTERN
