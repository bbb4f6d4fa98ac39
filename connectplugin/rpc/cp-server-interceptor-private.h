/* cp-server-interceptor-private.h: how CpInvocation drives an interceptor chain
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-server-interceptor.h"

G_BEGIN_DECLS

/* TRUE when @self overrides intercept_async (the decision must go through
 * the async pair); FALSE when klass->intercept can be called directly. */
gboolean             cp_server_interceptor_is_async         (CpServerInterceptor  *self);
/* Emits CpServerInterceptor::completed. */
void                 cp_server_interceptor_emit_completed   (CpServerInterceptor  *self,
                                                             CpInvocation         *invocation,
                                                             const GError         *error);

G_END_DECLS
