/* cp-metadata-private.h: header name/value validation
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when @name is a non-empty HTTP token (RFC 9110 tchar), i.e. safe to
 * pass to soup_message_headers_append() (which treats bad names as a
 * programming error). Use before appending names that came from the
 * network, e.g. EndStream metadata keys. */
gboolean cp_metadata_is_valid_name  (const char *name);

/* TRUE when @value has no CR, LF or NUL in its first @len bytes (-1 =
 * NUL-terminated), i.e. safe to pass to soup_message_headers_append(). */
gboolean cp_metadata_is_valid_value (const char *value,
                                     gssize      len);

G_END_DECLS
