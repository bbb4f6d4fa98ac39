/* cp-router-path.h: the router's path parser (pure, fuzzed)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CP_ROUTER_PREFIX "/services/"

/* Splits @path (the request path without its query, as received: still
 * percent-encoded) of `/services/{type}/{provider_runtime_id}/{Method}`.
 * Returns FALSE for anything else: missing or empty segments, extra
 * segments, `.`/`..`, any `%` (encoded slashes or dots are never
 * decoded), and characters outside the sets: type and runtime id start
 * with a letter or digit and go on with letters, digits, `_`, `.`, `-`
 * (no `..`, at most 128 characters); the method is a proto identifier (a
 * letter, then letters, digits, `_`; at most 128). On success the three
 * out strings are newly allocated. */
gboolean cp_router_parse_path (const char  *path,
                               char       **service_type,
                               char       **runtime_id,
                               char       **method);

G_END_DECLS
