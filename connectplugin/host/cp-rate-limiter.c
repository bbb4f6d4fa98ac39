/* cp-rate-limiter.c: placeholder, replaced by its unit */
#include "cp-broker-private.h"
struct _CpRateLimiter { CpBroker *broker; };
CpRateLimiter *cp_rate_limiter_new (CpBroker *broker) { CpRateLimiter *l = g_new0 (CpRateLimiter, 1); l->broker = broker; return l; }
gboolean cp_rate_limiter_allow (CpRateLimiter *limiter, const char *key) { return TRUE; }
void cp_rate_limiter_free (CpRateLimiter *limiter) { g_free (limiter); }
