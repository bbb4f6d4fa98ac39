/* cp-request-stream-private.h: how the channel creates request streams
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-request-stream.h"
#include "cp-channel.h"

G_BEGIN_DECLS

CpRequestStream  *cp_request_stream_new_internal  (CpChannel     *channel,
                                                   const char    *procedure,
                                                   GType          response_type,
                                                   CpCallOptions *options);

G_END_DECLS
