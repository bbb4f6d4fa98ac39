/* cp-metadata.h: Connect metadata (headers, -bin values, reserved names)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <libsoup/soup.h>
#include "cp-version-macros.h"
#include "cp-types.h"

G_BEGIN_DECLS

CP_AVAILABLE_IN_ALL
gboolean  cp_metadata_is_reserved     (const char         *name);
CP_AVAILABLE_IN_ALL
gboolean  cp_metadata_is_binary_key   (const char         *name);
CP_AVAILABLE_IN_ALL
void      cp_metadata_append_binary   (SoupMessageHeaders *headers,
                                       const char         *name,
                                       GBytes             *value);
CP_AVAILABLE_IN_ALL
GPtrArray *cp_metadata_get_binary     (SoupMessageHeaders *headers,
                                       const char         *name,
                                       GError            **error);
CP_AVAILABLE_IN_ALL
char    **cp_metadata_get_values      (SoupMessageHeaders *headers,
                                       const char         *name);
CP_AVAILABLE_IN_ALL
void      cp_metadata_merge           (SoupMessageHeaders *dest,
                                       SoupMessageHeaders *src,
                                       const char         *prefix);
CP_AVAILABLE_IN_ALL
void      cp_metadata_split_trailers  (SoupMessageHeaders *response,
                                       SoupMessageHeaders *headers,
                                       SoupMessageHeaders *trailers);

G_END_DECLS
