/* cp-static-discovery.h: a fixed list of plugin endpoints
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "cp-discovery.h"

G_BEGIN_DECLS

#define CP_TYPE_STATIC_DISCOVERY (cp_static_discovery_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (CpStaticDiscovery, cp_static_discovery, CP, STATIC_DISCOVERY, GObject)

CP_AVAILABLE_IN_ALL
CpStaticDiscovery   *cp_static_discovery_new      (const char * const *urls);
CP_AVAILABLE_IN_ALL
const char * const  *cp_static_discovery_get_urls (CpStaticDiscovery  *self);
CP_AVAILABLE_IN_ALL
void                 cp_static_discovery_set_urls (CpStaticDiscovery  *self,
                                                   const char * const *urls);

G_END_DECLS
