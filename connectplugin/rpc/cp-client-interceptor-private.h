/* cp-client-interceptor-private.h: how CpClientCall drives an interceptor chain
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-client-interceptor.h"

G_BEGIN_DECLS

/* TRUE when @self overrides intercept_async (the decision must go through
 * the async pair); FALSE when klass->intercept can be called directly. */
gboolean  cp_client_interceptor_is_async       (CpClientInterceptor *self);
/* Emits CpClientInterceptor::completed (calls the class handler directly
 * when no handler is connected). */
void      cp_client_interceptor_emit_completed (CpClientInterceptor *self,
                                                CpClientCall        *call,
                                                const GError        *error);

G_END_DECLS
