/* cp-log.h: asking cheaply whether debug messages would be shown
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib.h>
#include "cp-version-macros.h"

G_BEGIN_DECLS

CP_AVAILABLE_IN_ALL
gboolean cp_log_debug_enabled (const char *log_domain);

G_END_DECLS
