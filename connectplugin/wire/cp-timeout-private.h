/* cp-timeout-private.h: Connect-Timeout-Ms
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Parses a Connect-Timeout-Ms value: 1–10 ASCII digits (0 = already
 * expired). Anything else → FALSE with CP_ERROR_INVALID_ARGUMENT. */
gboolean cp_timeout_parse  (const char *value,
                            gint64     *out_ms,
                            GError    **error);

/* Formats @ms (> 0) as a header value; NULL when it needs more than 10
 * digits (the header is then omitted). */
char    *cp_timeout_format (gint64      ms);

G_END_DECLS
