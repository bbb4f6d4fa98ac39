/* cp-request-stream-private.h: how the channel creates request streams
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-request-stream.h"
#include "cp-channel.h"
#include "cp-method-info.h"

G_BEGIN_DECLS

/* @kind: client or bidi streaming; @idempotency: the method's
 * (CP_IDEMPOTENCY_UNKNOWN when not known). */
CpRequestStream  *cp_request_stream_new_internal  (CpChannel     *channel,
                                                   const char    *procedure,
                                                   CpMethodKind   kind,
                                                   GType          response_type,
                                                   CpCallOptions *options,
                                                   CpIdempotency  idempotency);

G_END_DECLS
