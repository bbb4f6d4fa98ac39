/* cp-secret-private.h: comparing secrets without leaking them through timing
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared by every layer that checks a credential: the auth interceptor
 * (rpc), the handshake's cookie and runtime token (plugin), the control
 * secret and the broker's grant tokens (host). No comparison exits early:
 * the time depends on the lengths given, never on where the inputs differ.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Constant-time comparison of two strings; the time depends only on the
 * length of @b (the expected value), not on @a's length or content. NULL
 * never matches. */
gboolean  cp_token_equal   (const char   *a,
                            const char   *b);
/* Constant-time comparison of @len bytes. */
gboolean  cp_secret_equal  (const guint8 *a,
                            const guint8 *b,
                            gsize         len);

G_END_DECLS
