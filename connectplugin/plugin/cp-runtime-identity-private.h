/* cp-runtime-identity-private.h: ids and tokens of the plugin system
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Formats from docs/wire-contract.md "Ids and tokens"; shared by
 * CpServer (handshake) and the host side (broker, grants, registry).
 */
#pragma once

#include <glib.h>
#include "cp-secret-private.h"

G_BEGIN_DECLS

/* Fills @buf with @len bytes from /dev/urandom. */
gboolean  cp_random_bytes          (guint8     *buf,
                                    gsize       len,
                                    GError    **error);
/* @n_bytes random bytes, base64url WITH '=' padding: 32 bytes → 44 chars
 * (runtime and grant bearer tokens), 16 bytes → 24 chars (grant ids). */
char     *cp_generate_token        (gsize       n_bytes);
/* lowercase(@self_id) + "-" + 4 lowercase hex chars. */
char     *cp_generate_runtime_id   (const char *self_id);
/* Exactly "reg-" + 16 lowercase hex chars (8 random bytes), the
 * registration id format of the coming service registry; kept for it. */
char     *cp_generate_registration_id (void);
/* 1–128 chars matching ^[a-zA-Z][a-zA-Z0-9_.\-]*$ */
gboolean  cp_self_id_is_valid      (const char *self_id);
/* cp_token_equal (), the constant-time comparison, lives in the wire
 * layer (cp-secret-private.h) so that the rpc auth interceptor shares it. */

G_END_DECLS
