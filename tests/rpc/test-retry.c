/* test-retry.c: CpRetryPolicy alone and on a CpChannel
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A real CpRpcServer (over TCP and in-process) fails its methods on demand
 * (the next N requests, or every request, possibly after a delay) and
 * counts the requests it sees; nothing listening and a scripted raw server
 * that drops connections give the transport failures. Timings are only
 * asserted from below (a backoff was waited); "at once" is proven by
 * backoffs of 25 s that the test would otherwise wait (the attempt counts
 * or the 10 s watchdogs then fail it); attempt counts and codes are exact.
 */
#include <string.h>
#include <glib/gstdio.h>
#include "client-test-util.h"
#include "raw-server.h"

#define KV_PROCEDURE_PUT_MANY "/kv.v1.KVService/PutMany"
/* A backoff no test waits for: if one were waited, the call would be
 * tried again (the attempt counts fail) or the wait outlast the 10 s
 * watchdog of test_wait_for (); it stays within the channel's default
 * 30 s timeout so that it is not refused for the deadline. */
#define LONG_BACKOFF_MS (25 * 1000)

/* ------------------------------------------------------------------------ */
/* The policy alone                                                          */

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              guint      *count)
{
  (*count)++;
}

static void
test_defaults (void)
{
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  g_auto(GStrv) names = NULL;
  g_autofree CpError *codes = NULL;
  gsize n = 0;
  guint max_attempts, initial, max_backoff, per_second;
  double multiplier, jitter, ratio;

  /* The wire contract's: 3 attempts, 100 ms doubling up to 10 s. */
  g_object_get (policy, "max-attempts", &max_attempts, "initial-backoff-ms", &initial,
                "backoff-multiplier", &multiplier, "max-backoff-ms", &max_backoff,
                "jitter", &jitter, "budget-ratio", &ratio,
                "budget-min-per-second", &per_second, "retryable-code-names", &names, NULL);
  g_assert_cmpuint (max_attempts, ==, 3);
  g_assert_cmpuint (initial, ==, 100);
  g_assert_cmpfloat (multiplier, ==, 2.0);
  g_assert_cmpuint (max_backoff, ==, 10000);
  g_assert_cmpfloat (jitter, ==, 0.2);
  g_assert_cmpfloat (ratio, ==, 0.2);
  g_assert_cmpuint (per_second, ==, 10);
  g_assert_cmpuint (g_strv_length (names), ==, 2);
  g_assert_cmpstr (names[0], ==, "resource_exhausted");
  g_assert_cmpstr (names[1], ==, "unavailable");

  codes = cp_retry_policy_get_retryable_codes (policy, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpint (codes[0], ==, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpint (codes[1], ==, CP_ERROR_UNAVAILABLE);
  g_assert_true (cp_retry_policy_is_retryable_code (policy, CP_ERROR_UNAVAILABLE));
  /* Unlike connect-plugin-go's, internal and unknown are not retried. */
  g_assert_false (cp_retry_policy_is_retryable_code (policy, CP_ERROR_INTERNAL));
  g_assert_false (cp_retry_policy_is_retryable_code (policy, CP_ERROR_UNKNOWN));
  g_assert_false (cp_retry_policy_is_retryable_code (policy, CP_ERROR_DEADLINE_EXCEEDED));

  /* 100, 200, 400, … capped at 10 s. */
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 1), ==, 100);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 2), ==, 200);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 3), ==, 400);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 7), ==, 6400);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 8), ==, 10000);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 1000), ==, 10000);
  g_assert_cmpuint (cp_retry_policy_get_n_retries (policy), ==, 0);
  g_assert_cmpuint (cp_retry_policy_get_n_throttled (policy), ==, 0);
}

static void
test_properties (void)
{
  static const CpError codes_in[] = { CP_ERROR_INTERNAL, CP_ERROR_UNAVAILABLE };
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  const char *names_in[] = { "aborted", NULL };
  g_auto(GStrv) names = NULL;
  g_autofree CpError *codes = NULL;
  guint n_codes_notify = 0, n_attempts_notify = 0;
  gsize n = 0;

  g_signal_connect (policy, "notify::retryable-code-names", G_CALLBACK (count_notify),
                    &n_codes_notify);
  g_signal_connect (policy, "notify::max-attempts", G_CALLBACK (count_notify),
                    &n_attempts_notify);

  cp_retry_policy_set_retryable_codes (policy, codes_in, G_N_ELEMENTS (codes_in));
  g_assert_cmpuint (n_codes_notify, ==, 1);
  cp_retry_policy_set_retryable_codes (policy, codes_in, G_N_ELEMENTS (codes_in));
  g_assert_cmpuint (n_codes_notify, ==, 1);
  g_object_get (policy, "retryable-code-names", &names, NULL);
  g_assert_cmpstr (names[0], ==, "internal");
  g_assert_cmpstr (names[1], ==, "unavailable");
  g_assert_null (names[2]);

  g_object_set (policy, "retryable-code-names", names_in, NULL);
  g_assert_cmpuint (n_codes_notify, ==, 2);
  codes = cp_retry_policy_get_retryable_codes (policy, &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpint (codes[0], ==, CP_ERROR_ABORTED);
  g_clear_pointer (&codes, g_free);

  cp_retry_policy_set_retryable_codes (policy, NULL, 0);
  g_assert_null (cp_retry_policy_get_retryable_codes (policy, &n));
  g_assert_cmpuint (n, ==, 0);

  cp_retry_policy_set_max_attempts (policy, 5);
  cp_retry_policy_set_max_attempts (policy, 5);
  g_assert_cmpuint (n_attempts_notify, ==, 1);
  cp_retry_policy_set_initial_backoff_ms (policy, 10);
  cp_retry_policy_set_backoff_multiplier (policy, 3.0);
  cp_retry_policy_set_max_backoff_ms (policy, 50);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 1), ==, 10);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 2), ==, 30);
  g_assert_cmpuint (cp_retry_policy_get_backoff_ms (policy, 3), ==, 50);
  cp_retry_policy_set_jitter (policy, 0.0);
  g_assert_cmpfloat (cp_retry_policy_get_jitter (policy), ==, 0.0);
  cp_retry_policy_set_budget_ratio (policy, 0.5);
  cp_retry_policy_set_budget_min_per_second (policy, 0);
  g_assert_cmpfloat (cp_retry_policy_get_budget_ratio (policy), ==, 0.5);
  g_assert_cmpuint (cp_retry_policy_get_budget_min_per_second (policy), ==, 0);
}

/* ------------------------------------------------------------------------ */
/* On a channel                                                              */

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  CpRetryPolicy *policy;
  char *url;

  /* The server's behaviour. */
  guint fail_next;          /* the next N requests fail ... */
  gboolean always_fail;     /* ... or every one */
  CpError fail_code;        /* with this code */
  guint fail_delay_ms;      /* answered after this long */
  gboolean message_first;   /* Watch: one message before failing */

  /* What it saw. */
  guint n_get;
  guint n_put;
  guint n_watch;
  guint n_put_many;

  /* What the policy said. */
  GArray *delays;           /* guint: the retrying signal's backoffs */
  GArray *attempts;         /* guint: the retrying signal's attempts */
} Fixture;

/* Whether this request fails (and counts it). */
static gboolean
should_fail (Fixture *f)
{
  if (f->always_fail)
    return TRUE;
  if (f->fail_next > 0)
    {
      f->fail_next--;
      return TRUE;
    }
  return FALSE;
}

typedef struct {
  CpInvocation *invocation;
  CpError code;
} Late;

static gboolean
fail_late (gpointer user_data)
{
  Late *late = user_data;

  cp_invocation_return_error (late->invocation, late->code, "failed late");
  g_object_unref (late->invocation);
  g_free (late);
  return G_SOURCE_REMOVE;
}

static void
fail (Fixture      *f,
      CpInvocation *invocation)
{
  Late *late;

  if (f->fail_delay_ms == 0)
    {
      cp_invocation_return_error (invocation, f->fail_code, "down");
      return;
    }
  late = g_new0 (Late, 1);
  late->invocation = g_object_ref (invocation);
  late->code = f->fail_code;
  g_timeout_add (f->fail_delay_ms, fail_late, late);
}

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  f->n_get++;
  if (should_fail (f))
    fail (f, invocation);
  else
    cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_put (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(KvPutResponse) response = kv_put_response_new ();

  f->n_put++;
  if (should_fail (f))
    fail (f, invocation);
  else
    cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "k", NULL);

  f->n_watch++;
  if (f->message_first)
    cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
  if (should_fail (f))
    {
      cp_invocation_return_error (invocation, f->fail_code, "down");
      return;
    }
  if (!f->message_first)
    cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
  cp_invocation_return_ok (invocation);
}

static void
handle_put_many (CpInvocation *invocation,
                 CpMessage    *request,
                 gpointer      user_data)
{
  Fixture *f = user_data;

  f->n_put_many++;
  if (should_fail (f))
    {
      cp_invocation_return_error (invocation, f->fail_code, "down");
      return;
    }
  test_receive_all_then_found (invocation);
}

static void
on_retrying (CpRetryPolicy *policy,
             const char    *procedure,
             guint          attempt,
             guint          delay_ms,
             const GError  *error,
             Fixture       *f)
{
  g_assert_nonnull (procedure);
  g_assert_nonnull (error);
  g_array_append_val (f->attempts, attempt);
  g_array_append_val (f->delays, delay_ms);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  struct {
    const char *procedure;
    CpMethodKind kind;
    GType in, out;
    CpMethodHandler handler;
  } methods[] = {
    { KV_PROCEDURE_GET, CP_METHOD_UNARY, KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE, handle_get },
    { KV_PROCEDURE_PUT, CP_METHOD_UNARY, KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE, handle_put },
    { KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING, KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT,
      handle_watch },
    { KV_PROCEDURE_PUT_MANY, CP_METHOD_CLIENT_STREAMING, KV_TYPE_PUT_REQUEST,
      KV_TYPE_GET_RESPONSE, handle_put_many },
  };
  g_autoptr(GError) error = NULL;

  memset (f, 0, sizeof *f);
  f->fail_code = CP_ERROR_UNAVAILABLE;
  f->delays = g_array_new (FALSE, FALSE, sizeof (guint));
  f->attempts = g_array_new (FALSE, FALSE, sizeof (guint));
  f->server = cp_rpc_server_new ();
  for (gsize i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(CpMethodInfo) info = cp_method_info_new (methods[i].procedure, methods[i].kind,
                                                         methods[i].in, methods[i].out);

      cp_rpc_server_add_method (f->server, info, methods[i].handler, f, NULL);
    }

  if (g_str_equal (data, "in-process"))
    f->channel = cp_channel_new_in_process (f->server);
  else
    {
      f->url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
      g_assert_no_error (error);
      f->channel = cp_channel_new (f->url, &error);
      g_assert_no_error (error);
    }
  /* Small exact backoffs: 20 ms, 40 ms. */
  f->policy = cp_retry_policy_new ();
  cp_retry_policy_set_initial_backoff_ms (f->policy, 20);
  cp_retry_policy_set_jitter (f->policy, 0.0);
  g_signal_connect (f->policy, "retrying", G_CALLBACK (on_retrying), f);
  cp_channel_set_retry_policy (f->channel, f->policy);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  cp_rpc_server_close (f->server);
  /* Answers still scheduled by fail_late (). */
  {
    gint64 end = g_get_monotonic_time () + (f->fail_delay_ms + 50) * 1000;

    while (g_get_monotonic_time () < end)
      g_main_context_iteration (NULL, FALSE);
  }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->server);
  g_signal_handlers_disconnect_by_data (f->policy, f);
  g_clear_object (&f->policy);
  g_array_unref (f->delays);
  g_array_unref (f->attempts);
  g_free (f->url);
}

/* A unary call of @procedure (Get or Put), asynchronously. */
static CpMessage *
call (Fixture        *f,
      const char     *procedure,
      CpCallOptions  *options,
      GCancellable   *cancellable,
      GError        **error)
{
  g_autoptr(CpMessage) request = NULL;
  GType response_type;

  if (g_str_equal (procedure, KV_PROCEDURE_GET))
    {
      request = CP_MESSAGE (kv_test_get_request ("k"));
      response_type = KV_TYPE_GET_RESPONSE;
    }
  else
    {
      request = CP_MESSAGE (kv_test_put_request ("k", NULL));
      response_type = KV_TYPE_PUT_RESPONSE;
    }
  return test_call_unary (f->channel, procedure, request, response_type, options, cancellable,
                          error);
}

static CpCallOptions *
idempotent_options (void)
{
  CpCallOptions *options = cp_call_options_new ();

  cp_call_options_set_idempotent (options, TRUE);
  return options;
}

static guint
n_retries (Fixture *f)
{
  return (guint) cp_retry_policy_get_n_retries (f->policy);
}

static void
record_attempts (CpClientInterceptor *interceptor,
                 CpClientCall        *client_call,
                 const GError        *error,
                 guint               *attempts)
{
  *attempts = cp_client_call_get_attempts (client_call);
}

static void
test_unavailable_then_success (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(CpClientInterceptor) observer = cp_client_interceptor_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  guint attempts = 0;
  gint64 start;

  g_signal_connect (observer, "completed", G_CALLBACK (record_attempts), &attempts);
  cp_channel_add_interceptor (f->channel, observer);
  f->fail_next = 2;
  start = g_get_monotonic_time ();
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (response));
  /* Three attempts, after backoffs of 20 and 40 ms. */
  g_assert_cmpuint (f->n_get, ==, 3);
  g_assert_cmpuint (n_retries (f), ==, 2);
  g_assert_cmpuint (attempts, ==, 3);
  g_assert_cmpuint (f->attempts->len, ==, 2);
  g_assert_cmpuint (g_array_index (f->attempts, guint, 0), ==, 2);
  g_assert_cmpuint (g_array_index (f->attempts, guint, 1), ==, 3);
  g_assert_cmpuint (g_array_index (f->delays, guint, 0), ==, 20);
  g_assert_cmpuint (g_array_index (f->delays, guint, 1), ==, 40);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 60 * 1000);
  g_clear_object (&response);

  /* resource_exhausted too; max-attempts bounds the attempts: the last
   * error is the call's. */
  f->fail_next = 5;
  f->fail_code = CP_ERROR_RESOURCE_EXHAUSTED;
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpuint (f->n_get, ==, 6);
  g_assert_cmpuint (attempts, ==, 3);
  g_assert_cmpuint (n_retries (f), ==, 4);
  g_clear_error (&error);

  /* A blocking call: its backoff runs in its private context. */
  f->fail_next = 1;
  f->fail_code = CP_ERROR_UNAVAILABLE;
  if (g_str_equal (data, "in-process"))
    {
      g_autoptr(KvGetRequest) request = kv_test_get_request ("k");

      response = cp_channel_call_sync (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                       KV_TYPE_GET_RESPONSE, options, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (f->n_get, ==, 8);
      g_assert_cmpuint (attempts, ==, 2);
    }
}

typedef struct {
  gboolean done;
  GAsyncResult *result;
} ProxyRun;

static void
proxy_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  ProxyRun *run = user_data;

  run->result = g_object_ref (result);
  run->done = TRUE;
}

static void
test_not_idempotent (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  /* A method not known to be idempotent: one attempt. */
  f->fail_next = 1;
  response = call (f, KV_PROCEDURE_GET, NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpuint (f->n_get, ==, 1);
  g_assert_cmpuint (n_retries (f), ==, 0);

  /* Idempotent, but a code that is not retryable (internal: the server
   * may have done half the work). */
  f->fail_next = 1;
  f->fail_code = CP_ERROR_INTERNAL;
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  g_clear_error (&error);
  g_assert_cmpuint (f->n_get, ==, 2);
  g_assert_cmpuint (n_retries (f), ==, 0);

  /* Through a generated proxy, the proto decides: Get is NO_SIDE_EFFECTS
   * (retried), Put has no idempotency level (not retried). */
  f->fail_code = CP_ERROR_UNAVAILABLE;
  {
    g_autoptr(KvKVService) proxy = kv_kv_service_proxy_new (f->channel);
    g_autoptr(KvGetRequest) get = kv_test_get_request ("k");
    g_autoptr(KvPutRequest) put = kv_test_put_request ("k", NULL);
    g_autoptr(KvGetResponse) got = NULL;
    g_autoptr(KvPutResponse) putted = NULL;
    ProxyRun run = { FALSE, NULL };

    f->fail_next = 1;
    kv_kv_service_call_get (proxy, get, NULL, NULL, proxy_done, &run);
    test_wait_for (&run.done);
    got = kv_kv_service_call_get_finish (proxy, run.result, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (f->n_get, ==, 4);
    g_clear_object (&run.result);

    run.done = FALSE;
    f->fail_next = 1;
    kv_kv_service_call_put (proxy, put, NULL, NULL, proxy_done, &run);
    test_wait_for (&run.done);
    putted = kv_kv_service_call_put_finish (proxy, run.result, &error);
    g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
    g_clear_error (&error);
    g_assert_cmpuint (f->n_put, ==, 1);
    g_assert_cmpuint (n_retries (f), ==, 1);
    g_clear_object (&run.result);

    /* Blocking calls of the proxy know it too. */
    if (g_str_equal (data, "in-process"))
      {
        g_clear_object (&got);
        f->fail_next = 1;
        got = kv_kv_service_call_get_sync (proxy, get, NULL, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpuint (f->n_get, ==, 6);
        g_assert_cmpuint (n_retries (f), ==, 2);
      }
  }
}

/* A URL where nothing listens: a port bound, then closed. */
static char *
refused_url (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  guint port;

  g_assert_true (g_socket_bind (socket, any, FALSE, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (socket, NULL);
  return g_strdup_printf ("http://127.0.0.1:%u", port);
}

static void
assert_refused_retried (CpChannel     *channel,
                        CpRetryPolicy *policy)
{
  g_autoptr(KvPutRequest) request = kv_test_put_request ("k", NULL);
  g_autoptr(CpClientInterceptor) observer = cp_client_interceptor_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  guint64 before = cp_retry_policy_get_n_retries (policy);
  guint attempts = 0;

  g_signal_connect (observer, "completed", G_CALLBACK (record_attempts), &attempts);
  cp_channel_add_interceptor (channel, observer);
  cp_channel_set_retry_policy (channel, policy);
  /* Put: not idempotent; retried because it never reached a server. */
  response = test_call_unary (channel, KV_PROCEDURE_PUT, CP_MESSAGE (request),
                              KV_TYPE_PUT_RESPONSE, NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (attempts, ==, 3);
  g_assert_cmpuint (cp_retry_policy_get_n_retries (policy) - before, ==, 2);
}

static void
test_refused (void)
{
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  g_autofree char *url = refused_url ();
  g_autofree char *dir = g_dir_make_tmp ("cp-retry-XXXXXX", NULL);
  g_autofree char *unix_url = g_strconcat ("unix:", dir, "/none.sock", NULL);
  g_autoptr(GError) error = NULL;

  cp_retry_policy_set_initial_backoff_ms (policy, 1);
  {
    g_autoptr(CpChannel) channel = cp_channel_new (url, &error);

    g_assert_no_error (error);
    assert_refused_retried (channel, policy);
  }
  {
    g_autoptr(CpChannel) channel = cp_channel_new (unix_url, &error);

    g_assert_no_error (error);
    assert_refused_retried (channel, policy);
  }
  g_rmdir (dir);
}

/* A server that reads the request and closes without answering: the
 * request may have been processed, so only idempotent calls are retried. */
static void
test_reset (void)
{
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GBytes) nothing = g_bytes_new (NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpMessage) response = NULL;
  RawServer *raw = raw_server_new ();

  raw_server_set_response (raw, nothing, RAW_AFTER_CLOSE);
  cp_retry_policy_set_initial_backoff_ms (policy, 1);
  channel = cp_channel_new (raw_server_get_url (raw), &error);
  g_assert_no_error (error);
  cp_channel_set_retry_policy (channel, policy);

  response = test_call_unary (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpuint (raw_server_get_n_requests (raw), ==, 1);
  g_assert_cmpuint (cp_retry_policy_get_n_retries (policy), ==, 0);

  response = test_call_unary (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                              KV_TYPE_GET_RESPONSE, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (raw_server_get_n_requests (raw), ==, 4);
  g_assert_cmpuint (cp_retry_policy_get_n_retries (policy), ==, 2);

  g_clear_object (&channel);
  raw_server_free (raw);
}

static void
test_budget (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();

  /* 10 retries per 10 s, whatever the calls. */
  cp_retry_policy_set_budget_ratio (f->policy, 0.0);
  cp_retry_policy_set_budget_min_per_second (f->policy, 1);
  cp_retry_policy_set_initial_backoff_ms (f->policy, 0);
  f->always_fail = TRUE;
  for (guint i = 0; i < 7; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response = call (f, KV_PROCEDURE_GET, options, NULL, &error);

      g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
    }
  /* Five calls of 3 attempts spend the 10 retries; the next two are made
   * once each. */
  g_assert_cmpuint (n_retries (f), ==, 10);
  g_assert_cmpuint (cp_retry_policy_get_n_throttled (f->policy), ==, 2);
  g_assert_cmpuint (f->n_get, ==, 5 * 3 + 2);

  /* The budget is the channel's: another channel, same policy, has its own. */
  if (f->url != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpChannel) other = cp_channel_new (f->url, &error);
      g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
      g_autoptr(CpMessage) response = NULL;

      g_assert_no_error (error);
      cp_channel_set_retry_policy (other, f->policy);
      response = test_call_unary (other, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                  KV_TYPE_GET_RESPONSE, options, NULL, &error);
      g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
      g_assert_cmpuint (n_retries (f), ==, 12);
    }
}

static void
test_deadline (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(CpClientInterceptor) observer = cp_client_interceptor_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  guint attempts = 0;
  gint64 start, elapsed;

  g_signal_connect (observer, "completed", G_CALLBACK (record_attempts), &attempts);
  cp_channel_add_interceptor (f->channel, observer);
  f->always_fail = TRUE;
  f->fail_delay_ms = 100;

  /* A backoff that would end past the deadline is not waited: the call
   * fails at once with the attempt's error (a 25 s backoff). */
  cp_retry_policy_set_max_backoff_ms (f->policy, LONG_BACKOFF_MS);
  cp_retry_policy_set_initial_backoff_ms (f->policy, LONG_BACKOFF_MS);
  cp_call_options_set_timeout_ms (options, 300);
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpuint (attempts, ==, 1);

  /* Short backoffs: attempts until the deadline, counted from the first;
   * the call ends with it (or with the last attempt's error if no backoff
   * fits), never later. */
  cp_retry_policy_set_initial_backoff_ms (f->policy, 10);
  cp_retry_policy_set_backoff_multiplier (f->policy, 1.0);
  cp_retry_policy_set_max_attempts (f->policy, 100);
  cp_call_options_set_timeout_ms (options, 350);
  start = g_get_monotonic_time ();
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  elapsed = g_get_monotonic_time () - start;
  g_assert_true (g_error_matches (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED) ||
                 g_error_matches (error, CP_ERROR, CP_ERROR_UNAVAILABLE));
  g_assert_cmpuint (attempts, >=, 2);
  g_assert_cmpuint (attempts, <=, 4);
  g_assert_cmpint (elapsed, >=, 200 * 1000);
}

typedef struct {
  GCancellable *cancellable;
  gint64 cancelled_at;
} Canceller;

static gboolean
cancel_now (gpointer user_data)
{
  Canceller *c = user_data;

  c->cancelled_at = g_get_monotonic_time ();
  g_cancellable_cancel (c->cancellable);
  return G_SOURCE_REMOVE;
}

/* On the first retry: cancel 30 ms into its (25 s) backoff. */
static void
cancel_soon (CpRetryPolicy *policy,
             const char    *procedure,
             guint          attempt,
             guint          delay_ms,
             const GError  *error,
             Canceller     *c)
{
  g_assert_cmpuint (delay_ms, ==, LONG_BACKOFF_MS);
  g_timeout_add (30, cancel_now, c);
}

static void
test_cancel (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  Canceller c = { cancellable, 0 };

  cp_retry_policy_set_max_backoff_ms (f->policy, LONG_BACKOFF_MS);
  cp_retry_policy_set_initial_backoff_ms (f->policy, LONG_BACKOFF_MS);
  g_signal_connect (f->policy, "retrying", G_CALLBACK (cancel_soon), &c);
  f->always_fail = TRUE;

  response = call (f, KV_PROCEDURE_GET, options, cancellable, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (c.cancelled_at, >, 0);
  g_assert_cmpuint (f->n_get, ==, 1);

  /* A blocking call (in-process: its server is served meanwhile). */
  if (g_str_equal (data, "in-process"))
    {
      g_autoptr(KvGetRequest) request = kv_test_get_request ("k");

      g_cancellable_reset (cancellable);
      c.cancelled_at = 0;
      response = cp_channel_call_sync (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                       KV_TYPE_GET_RESPONSE, options, cancellable, &error);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_cmpint (c.cancelled_at, >, 0);
      g_assert_cmpuint (f->n_get, ==, 2);
    }
  g_signal_handlers_disconnect_by_data (f->policy, &c);
}

typedef struct {
  guint n_headers;
  GPtrArray *messages;
  GError *error;
  gboolean closed;
} Watch;

static void
watch_headers (CpResponseStream   *stream,
               SoupMessageHeaders *headers,
               Watch              *w)
{
  w->n_headers++;
}

static void
watch_message (CpResponseStream *stream,
               CpMessage        *message,
               Watch            *w)
{
  g_ptr_array_add (w->messages, g_object_ref (message));
}

static void
watch_closed (CpResponseStream *stream,
              const GError     *error,
              Watch            *w)
{
  g_assert_false (w->closed);
  w->closed = TRUE;
  w->error = error != NULL ? g_error_copy (error) : NULL;
}

static void
watch (Fixture          *f,
       CpCallOptions    *options,
       CpResponseStream *stream,
       Watch            *w)
{
  memset (w, 0, sizeof *w);
  w->messages = g_ptr_array_new_with_free_func (g_object_unref);
  g_signal_connect (stream, "headers", G_CALLBACK (watch_headers), w);
  g_signal_connect (stream, "message", G_CALLBACK (watch_message), w);
  g_signal_connect (stream, "closed", G_CALLBACK (watch_closed), w);
  test_wait_for (&w->closed);
  g_object_unref (stream);
}

static void
watch_clear (Watch *w)
{
  g_ptr_array_unref (w->messages);
  g_clear_error (&w->error);
}

static void
test_server_stream (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(KvWatchRequest) request = kv_test_watch_request ("");
  Watch w;

  /* Failed before any message: tried again; headers once per attempt. */
  f->fail_next = 1;
  watch (f, options, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                    CP_MESSAGE (request), KV_TYPE_WATCH_EVENT,
                                                    options), &w);
  g_assert_no_error (w.error);
  g_assert_cmpuint (w.messages->len, ==, 1);
  g_assert_cmpuint (w.n_headers, ==, 2);
  g_assert_cmpuint (f->n_watch, ==, 2);
  g_assert_cmpuint (n_retries (f), ==, 1);
  watch_clear (&w);

  /* Failed after a message: never again. */
  f->fail_next = 1;
  f->message_first = TRUE;
  watch (f, options, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                    CP_MESSAGE (request), KV_TYPE_WATCH_EVENT,
                                                    options), &w);
  g_assert_error (w.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (w.messages->len, ==, 1);
  g_assert_cmpuint (f->n_watch, ==, 3);
  g_assert_cmpuint (n_retries (f), ==, 1);
  watch_clear (&w);

  /* Not idempotent: not tried again. */
  f->fail_next = 1;
  f->message_first = FALSE;
  watch (f, NULL, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                 CP_MESSAGE (request), KV_TYPE_WATCH_EVENT,
                                                 NULL), &w);
  g_assert_error (w.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f->n_watch, ==, 4);
  watch_clear (&w);

  /* Cancelled during the backoff: closed at once. */
  cp_retry_policy_set_max_backoff_ms (f->policy, LONG_BACKOFF_MS);
  cp_retry_policy_set_initial_backoff_ms (f->policy, LONG_BACKOFF_MS);
  f->fail_next = 1;
  {
    CpResponseStream *stream = cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                              CP_MESSAGE (request),
                                                              KV_TYPE_WATCH_EVENT, options);
    g_object_ref (stream);
    memset (&w, 0, sizeof w);
    w.messages = g_ptr_array_new_with_free_func (g_object_unref);
    g_signal_connect (stream, "closed", G_CALLBACK (watch_closed), &w);
    while (f->attempts->len < 2)
      g_main_context_iteration (NULL, TRUE);
    cp_response_stream_cancel (stream);
    test_wait_for (&w.closed);
    g_assert_error (w.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpuint (f->n_watch, ==, 5);
    g_object_unref (stream);
    g_object_unref (stream);
    watch_clear (&w);
  }
}

static CpRequestStream *
put_many_stream (Fixture       *f,
                 CpCallOptions *options)
{
  g_autoptr(GBytes) value = g_bytes_new_static ("v", 1);
  g_autoptr(KvPutRequest) put = kv_test_put_request ("k", value);
  g_autoptr(GError) error = NULL;
  CpRequestStream *stream = cp_channel_call_client_stream (f->channel, KV_PROCEDURE_PUT_MANY,
                                                           KV_TYPE_GET_RESPONSE, options);

  g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (put), &error));
  g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (put), &error));
  g_assert_no_error (error);
  return stream;
}

static void
test_client_stream_retry (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();

  /* The whole request body is buffered: it is sent again. */
  f->fail_next = 1;
  {
    g_autoptr(CpRequestStream) stream = put_many_stream (f, options);
    g_autoptr(GError) error = NULL;
    g_autoptr(CpMessage) response = test_client_stream (stream, &error);

    g_assert_no_error (error);
    g_assert_true (KV_IS_GET_RESPONSE (response));
    g_assert_cmpuint (f->n_put_many, ==, 2);
  }
  /* Half-duplex through close_and_receive, the same. */
  f->fail_next = 1;
  {
    g_autoptr(CpRequestStream) stream = put_many_stream (f, options);
    Watch w;

    watch (f, options, cp_request_stream_close_and_receive (stream), &w);
    g_assert_no_error (w.error);
    g_assert_cmpuint (w.messages->len, ==, 1);
    g_assert_cmpuint (f->n_put_many, ==, 4);
    watch_clear (&w);
  }
  /* Not idempotent: once. */
  f->fail_next = 1;
  {
    g_autoptr(CpRequestStream) stream = put_many_stream (f, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CpMessage) response = test_client_stream (stream, &error);

    g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
    g_assert_cmpuint (f->n_put_many, ==, 5);
  }
  g_assert_cmpuint (n_retries (f), ==, 2);
}

static void
test_breaker (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  /* Each attempt asks the breaker: the second finds it open (one failure
   * opens it), and its refusal is not retried. */
  cp_circuit_breaker_set_failure_threshold (breaker, 1);
  cp_channel_set_circuit_breaker (f->channel, breaker);
  f->always_fail = TRUE;
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (error->message, ==, "circuit breaker is open");
  g_assert_cmpuint (f->n_get, ==, 1);
  g_assert_cmpuint (n_retries (f), ==, 1);
  g_clear_error (&error);

  /* Open from the start: one refusal, no retry. */
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f->n_get, ==, 1);
  g_assert_cmpuint (n_retries (f), ==, 1);
}

static void
test_per_call (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = idempotent_options ();
  g_autoptr(CpRetryPolicy) once = cp_retry_policy_new ();
  g_autoptr(CpRetryPolicy) got = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  guint notified = 0;

  g_object_get (f->channel, "retry-policy", &got, NULL);
  g_assert_true (got == f->policy);
  g_signal_connect (f->channel, "notify::retry-policy", G_CALLBACK (count_notify), &notified);
  cp_channel_set_retry_policy (f->channel, f->policy);
  g_assert_cmpuint (notified, ==, 0);

  /* The call's policy replaces the channel's. */
  cp_retry_policy_set_max_attempts (once, 1);
  g_object_set (options, "retry-policy", once, NULL);
  g_assert_true (cp_call_options_get_retry_policy (options) == once);
  f->fail_next = 1;
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpuint (f->n_get, ==, 1);

  /* No policy on the channel: one attempt. */
  cp_call_options_set_retry_policy (options, NULL);
  cp_channel_set_retry_policy (f->channel, NULL);
  g_assert_cmpuint (notified, ==, 1);
  f->fail_next = 1;
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpuint (f->n_get, ==, 2);

  /* Only the call's. */
  cp_call_options_set_retry_policy (options, f->policy);
  f->fail_next = 1;
  response = call (f, KV_PROCEDURE_GET, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_get, ==, 4);
}

int
main (int    argc,
      char **argv)
{
  static const char *transports[] = { "tcp", "in-process" };
  static const struct {
    const char *name;
    void (*func) (Fixture *, gconstpointer);
  } channel_tests[] = {
    { "unavailable-then-success", test_unavailable_then_success },
    { "not-idempotent", test_not_idempotent },
    { "budget", test_budget },
    { "deadline", test_deadline },
    { "cancel", test_cancel },
    { "server-stream", test_server_stream },
    { "client-stream", test_client_stream_retry },
    { "breaker", test_breaker },
    { "per-call", test_per_call },
  };

  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  g_test_add_func ("/rpc/retry/policy/defaults", test_defaults);
  g_test_add_func ("/rpc/retry/policy/properties", test_properties);
  g_test_add_func ("/rpc/retry/refused", test_refused);
  g_test_add_func ("/rpc/retry/reset", test_reset);
  for (gsize t = 0; t < G_N_ELEMENTS (transports); t++)
    for (gsize i = 0; i < G_N_ELEMENTS (channel_tests); i++)
      {
        g_autofree char *path = g_strdup_printf ("/rpc/retry/%s/%s",
                                                 channel_tests[i].name, transports[t]);

        g_test_add (path, Fixture, transports[t], fixture_setup, channel_tests[i].func,
                    fixture_teardown);
      }

  return g_test_run ();
}
