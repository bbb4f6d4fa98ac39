/* cp-rate-limiter-private.h: the rate limiter unit's test hooks
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-broker-private.h"

G_BEGIN_DECLS

/* At most this many buckets are kept; idle ones go first. */
#define CP_RATE_LIMITER_MAX_BUCKETS 4096

/* How many keys have a bucket now (tests). */
guint cp_rate_limiter_get_n_buckets (CpRateLimiter *limiter);

G_END_DECLS
