/* cp-rate-limiter.c: token buckets for host APIs and the router
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One bucket per key (runtime id, else peer address), holding up to
 * rate-limit-burst tokens refilled at rate-limit-rps; both properties are
 * read at every call, so they can change while the host runs. A bucket
 * idle long enough to be full again is the same as no bucket: those are
 * swept lazily, and the table never holds more than
 * CP_RATE_LIMITER_MAX_BUCKETS (the least recently used goes).
 * Host RPCs (`/connectplugin.v1.*`) are limited by an interceptor
 * answering `resource_exhausted`; the router answers 429 itself.
 */
#include "cp-rate-limiter-private.h"

#include <string.h>

#include "cp-error.h"

typedef struct {
  double tokens;
  gint64 last;                  /* µs, monotonic */
} Bucket;

/* ------------------------------------------------------------------ */

typedef struct {
  CpServerInterceptor parent_instance;
  CpRateLimiter *limiter;       /* NULL once the broker is gone */
  CpServer *server;             /* unowned, for token checks */
} CpRateLimitInterceptor;

typedef CpServerInterceptorClass CpRateLimitInterceptorClass;

static GType cp_rate_limit_interceptor_get_type (void);
G_DEFINE_FINAL_TYPE (CpRateLimitInterceptor, cp_rate_limit_interceptor, CP_TYPE_SERVER_INTERCEPTOR)

struct _CpRateLimiter
{
  CpBroker *broker;
  GHashTable *buckets;          /* key → Bucket* */
  gint64 last_sweep;
  CpRateLimitInterceptor *interceptor;
};

static char *
invocation_key (CpRateLimitInterceptor *self,
                CpInvocation           *invocation)
{
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);
  const char *id = soup_message_headers_get_one (headers, "X-Plugin-Runtime-ID");
  const char *auth = soup_message_headers_get_one (headers, "Authorization");
  GSocketAddress *address;

  /* Only a proven identity gets its own bucket: anyone can send a header. */
  if (id != NULL && auth != NULL && g_str_has_prefix (auth, "Bearer ") &&
      cp_server_check_runtime_token (self->server, id, auth + strlen ("Bearer ")))
    return g_strconcat ("id:", id, NULL);
  address = cp_invocation_get_remote_address (invocation);
  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
      return g_strconcat ("ip:", ip, NULL);
    }
  return g_strdup ("ip:local");
}

static gboolean
cp_rate_limit_interceptor_intercept (CpServerInterceptor  *interceptor,
                                     CpInvocation         *invocation,
                                     CpMessage            *request,
                                     GError              **error)
{
  CpRateLimitInterceptor *self = (CpRateLimitInterceptor *) interceptor;
  g_autofree char *key = NULL;

  if (self->limiter == NULL || self->limiter->broker->rate_limit_rps <= 0 ||
      !g_str_has_prefix (cp_invocation_get_procedure (invocation), "/connectplugin.v1."))
    return TRUE;
  key = invocation_key (self, invocation);
  if (cp_rate_limiter_allow (self->limiter, key))
    return TRUE;
  g_set_error_literal (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED, "rate limit exceeded");
  return FALSE;
}

static void
cp_rate_limit_interceptor_class_init (CpRateLimitInterceptorClass *klass)
{
  klass->intercept = cp_rate_limit_interceptor_intercept;
}

static void
cp_rate_limit_interceptor_init (CpRateLimitInterceptor *self)
{
}

/* ------------------------------------------------------------------ */

CpRateLimiter *
cp_rate_limiter_new (CpBroker *broker)
{
  CpRateLimiter *limiter = g_new0 (CpRateLimiter, 1);

  limiter->broker = broker;
  limiter->buckets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  limiter->interceptor = g_object_new (cp_rate_limit_interceptor_get_type (), NULL);
  limiter->interceptor->limiter = limiter;
  limiter->interceptor->server = broker->server;
  cp_rpc_server_add_interceptor (broker->rpc_server, CP_SERVER_INTERCEPTOR (limiter->interceptor));
  return limiter;
}

/* Drops buckets idle for at least @full_us (full again), and when still at
 * the cap, the least recently used one. */
static void
sweep (CpRateLimiter *limiter,
       gint64         now,
       gint64         full_us)
{
  GHashTableIter iter;
  Bucket *bucket, *oldest = NULL;
  const char *oldest_key = NULL, *key;

  limiter->last_sweep = now;
  g_hash_table_iter_init (&iter, limiter->buckets);
  while (g_hash_table_iter_next (&iter, (gpointer *) &key, (gpointer *) &bucket))
    if (now - bucket->last >= full_us)
      g_hash_table_iter_remove (&iter);
  if (g_hash_table_size (limiter->buckets) < CP_RATE_LIMITER_MAX_BUCKETS)
    return;
  g_hash_table_iter_init (&iter, limiter->buckets);
  while (g_hash_table_iter_next (&iter, (gpointer *) &key, (gpointer *) &bucket))
    if (oldest == NULL || bucket->last < oldest->last)
      {
        oldest = bucket;
        oldest_key = key;
      }
  g_hash_table_remove (limiter->buckets, oldest_key);
}

gboolean
cp_rate_limiter_allow (CpRateLimiter *limiter,
                       const char    *key)
{
  double rps = limiter->broker->rate_limit_rps;
  double burst = limiter->broker->rate_limit_burst > 0 ? limiter->broker->rate_limit_burst
                                                        : MAX ((double) (gint64) (rps + 0.999999), 1.0);
  gint64 now = g_get_monotonic_time ();
  gint64 full_us;
  Bucket *bucket;

  if (rps <= 0 || key == NULL)
    return TRUE;
  full_us = (gint64) (burst / rps * G_USEC_PER_SEC) + 1;
  if (now - limiter->last_sweep >= MIN (full_us, G_USEC_PER_SEC) ||
      g_hash_table_size (limiter->buckets) >= CP_RATE_LIMITER_MAX_BUCKETS)
    sweep (limiter, now, full_us);

  bucket = g_hash_table_lookup (limiter->buckets, key);
  if (bucket == NULL)
    {
      bucket = g_new0 (Bucket, 1);
      bucket->tokens = burst;
      bucket->last = now;
      g_hash_table_insert (limiter->buckets, g_strdup (key), bucket);
    }
  bucket->tokens = MIN (burst, bucket->tokens + (now - bucket->last) * rps / G_USEC_PER_SEC);
  bucket->last = now;
  if (bucket->tokens < 1.0)
    return FALSE;
  bucket->tokens -= 1.0;
  return TRUE;
}

guint
cp_rate_limiter_get_n_buckets (CpRateLimiter *limiter)
{
  return g_hash_table_size (limiter->buckets);
}

void
cp_rate_limiter_free (CpRateLimiter *limiter)
{
  limiter->interceptor->limiter = NULL;
  g_object_unref (limiter->interceptor);
  g_hash_table_unref (limiter->buckets);
  g_free (limiter);
}
