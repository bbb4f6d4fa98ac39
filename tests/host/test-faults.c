/* test-faults.c: a CpClient with a circuit breaker against plugin
 * processes that misbehave (issue 15's fault tests)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>

#include "host-test-util.h"

#define SAY "/hosttest.v1.EchoService/Say"

static CpProcessDiscovery *
fake_plugin_discovery_new (const char *mode)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, mode, NULL };

  return g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "name", mode,
                       "restart-policy", CP_RESTART_NEVER, NULL);
}

static CpClient *
fake_plugin_client_new (CpProcessDiscovery *discovery)
{
  CpClient *client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  const char *plugins[] = { "echo", NULL };

  cp_client_set_plugins (client, plugins);
  g_object_set (client, "auto-reconnect", FALSE, NULL);
  return client;
}

/* A unary Say with a deadline of @timeout_ms; the error, or NULL. */
static GError *
say (CpChannel *channel,
     gint64     timeout_ms)
{
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpMessage) response = NULL;
  GError *error = NULL;

  hosttest_say_request_set_text (request, "hello");
  cp_call_options_set_timeout_ms (options, timeout_ms);
  response = cp_channel_call_sync (channel, SAY, CP_MESSAGE (request),
                                   HOSTTEST_TYPE_SAY_RESPONSE, options, NULL, &error);
  g_assert_true ((response == NULL) == (error != NULL));
  return error;
}

static void
count_transition (CpCircuitBreaker *breaker,
                  CpCircuitState    old_state,
                  CpCircuitState    new_state,
                  guint            *opened)
{
  if (new_state == CP_CIRCUIT_STATE_OPEN)
    (*opened)++;
}

/* A plugin stopped with SIGSTOP still accepts connections but answers
 * nothing: each call ends at its deadline, the fifth failure opens the
 * circuit, the calls after it fail at once without waiting for their
 * deadline, and the health monitor reports the plugin unhealthy. */
static void
test_stopped_plugin (void)
{
  g_autoptr(CpProcessDiscovery) discovery = fake_plugin_discovery_new ("serve");
  g_autoptr(CpClient) client = fake_plugin_client_new (discovery);
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpHealthMonitor) monitor = NULL;
  g_autoptr(GError) error = NULL;
  guint opened = 0;
  GPid pid;

  /* A health timeout the five deadlines fit in: the calls, not the health
   * report, open the circuit here. */
  g_object_set (client, "health-interval-ms", 100, "health-timeout-ms", 1000,
                "circuit-breaker", breaker, NULL);
  g_signal_connect (breaker, "state-changed", G_CALLBACK (count_transition), &opened);
  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  channel = g_object_ref (cp_client_get_channel (client));
  monitor = g_object_ref (cp_client_get_health_monitor (client));
  g_clear_error (&error);
  error = say (channel, 2000);
  g_assert_no_error (error);

  pid = cp_process_discovery_get_pid (discovery);
  g_assert_cmpint (kill (pid, SIGSTOP), ==, 0);

  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GError) failed = say (channel, 50);

      g_assert_error (failed, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
    }
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_OPEN);
  g_assert_cmpuint (opened, ==, 1);

  /* Open: the breaker refuses the call before any socket activity (the
   * frozen plugin could only have let it end at its deadline). */
  {
    g_autoptr(GError) refused = say (channel, 10000);

    g_assert_error (refused, CP_ERROR, CP_ERROR_UNAVAILABLE);
    g_assert_nonnull (strstr (refused->message, "circuit breaker is open"));
  }

  /* The health monitor notices too: the client fails as unhealthy. */
  HOST_TEST_WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  g_assert_cmpint (cp_health_monitor_get_health_state (monitor), ==, CP_HEALTH_STATE_UNHEALTHY);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_OPEN);

  kill (pid, SIGKILL);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) == CP_PROCESS_STATE_EXITED);
}

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Lets the thread-default context (where the client reconnects, the
 * health monitor reports and the discovery restarts the plugin) run for
 * @ms. */
static void
run_for_ms (guint ms)
{
  gboolean done = FALSE;

  g_timeout_add (ms, set_flag, &done);
  host_test_wait_flag (&done);
}

static void
closed_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_client_close_finish (CP_CLIENT (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* Closes @client, which shuts its launched plugin down. */
static void
close_client (CpClient *client)
{
  gboolean closed = FALSE;

  cp_client_close_async (client, NULL, closed_cb, &closed);
  host_test_wait_flag (&closed);
}

typedef struct {
  guint calls;        /* calls completed, as the interceptor saw them */
  guint attempts;     /* their attempts, summed */
} CallCount;

static void
count_attempts (CpClientInterceptor *interceptor,
                CpClientCall        *call,
                const GError        *error,
                CallCount           *count)
{
  count->calls++;
  count->attempts += cp_client_call_get_attempts (call);
}

/* Each launch of the plugin (a new pid). The discovery's restart count is
 * no measure here: a client that reconnects starts the plugin itself,
 * which begins a new count. */
static void
count_launches (CpProcessDiscovery *discovery,
                GParamSpec         *pspec,
                guint              *launches)
{
  if (cp_process_discovery_get_pid (discovery) > 0)
    (*launches)++;
}

static void
count_channels (CpClient   *client,
                GParamSpec *pspec,
                guint      *channels)
{
  if (cp_client_get_channel (client) != NULL)
    (*channels)++;
}

/* One Say through a proxy the client dispensed, as an application makes
 * it: the proxy follows the client to each new channel. *error is set when
 * the call failed. */
static void
say_through (CpProxy  *proxy,
             GError  **error)
{
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(HosttestSayResponse) response = NULL;

  hosttest_say_request_set_text (request, "hello");
  cp_call_options_set_timeout_ms (options, 5000);
  response = hosttest_echo_service_call_say_sync (HOSTTEST_ECHO_SERVICE (proxy), request,
                                                  options, NULL, error);
  g_assert_true ((response == NULL) == (*error != NULL));
}

/* A plugin in a crash loop: each Say kills it (while a file exists), the
 * discovery restarts it, the client reconnects, and the next Say kills it
 * again. Behind a retry policy and a circuit breaker: every call fails
 * with unavailable, the circuit opens and then refuses calls without
 * trying them, the retries stay within the channel budgets, and once the
 * plugin stops crashing the calls succeed again and the circuit closes.
 * The calls go through one proxy, dispensed before the first crash, which
 * follows the client to each restarted instance. */
static void
test_crash_loop (void)
{
  g_autofree char *dir = g_dir_make_tmp ("cp-faults-XXXXXX", NULL);
  g_autofree char *crash_file = g_build_filename (dir, "crash", NULL);
  g_autofree char *env_crash = g_strconcat ("FAKE_PLUGIN_CRASH_FILE=", crash_file, NULL);
  const char *argv[] = { FAKE_PLUGIN_PATH, "crash-on-file", NULL };
  const char *env[] = { env_crash, NULL };
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  g_autoptr(CpClientInterceptor) observer = cp_client_interceptor_new ();
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "echo", NULL };
  CallCount count = { 0, 0 };
  g_autoptr(CpProxy) proxy = NULL;
  guint opened = 0, channels = 0, refused_open = 0, launches = 0, i;
  const double ratio = 0.5;

  g_assert_nonnull (dir);
  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "environment", env,
                            "name", "crash-loop", "restart-policy", CP_RESTART_ON_FAILURE,
                            "max-restarts", -1, "restart-delay-ms", 20,
                            "max-restart-delay-ms", 100, NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);
  /* Retries: short backoffs, and a budget with no floor, so the ratio
   * alone bounds them. */
  g_object_set (policy, "initial-backoff-ms", 10, "max-backoff-ms", 50,
                "budget-ratio", ratio, "budget-min-per-second", 0, NULL);
  g_object_set (breaker, "failure-threshold", 3, "success-threshold", 2,
                "open-timeout-ms", 200, NULL);
  g_object_set (client, "health-interval-ms", 100, "health-timeout-ms", 1000,
                "circuit-breaker", breaker, "retry-policy", policy, NULL);
  g_signal_connect (observer, "completed", G_CALLBACK (count_attempts), &count);
  cp_client_add_interceptor (client, observer);
  g_signal_connect (breaker, "state-changed", G_CALLBACK (count_transition), &opened);
  g_signal_connect (client, "notify::channel", G_CALLBACK (count_channels), &channels);
  g_signal_connect (discovery, "notify::pid", G_CALLBACK (count_launches), &launches);

  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);
  channels = 1;
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  say_through (proxy, &error);
  g_assert_no_error (error);

  /* The crash loop: 40 calls, a few ms apart. */
  g_assert_true (g_file_set_contents (crash_file, "", 0, NULL));
  for (i = 0; i < 40; i++)
    {
      g_autoptr(GError) failed = NULL;

      say_through (proxy, &failed);
      g_assert_error (failed, CP_ERROR, CP_ERROR_UNAVAILABLE);
      if (strstr (failed->message, "circuit breaker is open") != NULL)
        refused_open++;
      run_for_ms (20);
    }
  g_test_message ("crash loop: %u calls, %u refused by the open circuit, %u openings, "
                  "%u launches, %u channels, %" G_GUINT64_FORMAT " retries, %"
                  G_GUINT64_FORMAT " throttled", i, refused_open, opened,
                  launches, channels,
                  cp_retry_policy_get_n_retries (policy),
                  cp_retry_policy_get_n_throttled (policy));
  g_assert_cmpuint (launches, >=, 2);
  g_assert_cmpuint (opened, >=, 1);
  g_assert_cmpuint (refused_open, >=, 1);
  /* Every call failed, each after at least one attempt, and the attempts
   * beyond the first are exactly the retries the policy counted. */
  g_assert_cmpuint (count.calls, ==, 40 + 1);
  g_assert_cmpuint (count.attempts - count.calls, ==, cp_retry_policy_get_n_retries (policy));
  /* The budget: per channel at most ratio × its calls (+ the one retry
   * the comparison lets through); channels are new after each reconnect. */
  g_assert_cmpfloat (cp_retry_policy_get_n_retries (policy), <=, ratio * count.calls + channels);

  /* The plugin stops crashing: calls succeed again (after the circuit
   * lets a probe through), and two successes close it. */
  g_assert_cmpint (g_unlink (crash_file), ==, 0);
  {
    gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

    for (;;)
      {
        g_autoptr(GError) failed = NULL;

        say_through (proxy, &failed);
        if (failed == NULL)
          break;
        if (g_get_monotonic_time () > end)
          g_error ("the plugin did not come back: %s", failed->message);
        run_for_ms (20);
      }
  }
  say_through (proxy, &error);
  g_assert_no_error (error);
  /* The proxy dispensed before the first crash calls the plugin's latest
   * instance: it followed the client across every reconnect. */
  g_assert_true (cp_proxy_get_channel (proxy) == cp_client_get_channel (client));
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, CP_CIRCUIT_STATE_CLOSED);

  close_client (client);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) != CP_PROCESS_STATE_RUNNING);
  g_rmdir (dir);
}

typedef struct {
  guint retries;
  gint64 timeouts[16];      /* each failed attempt's Connect-Timeout-Ms, as the plugin saw it */
  guint delays[16];         /* the backoff before each retry */
} SlowAttempts;

static void
record_retry (CpRetryPolicy *policy,
              const char    *procedure,
              guint          attempt,
              guint          delay_ms,
              const GError  *error,
              SlowAttempts  *slow)
{
  const char *timeout = strstr (error->message, "timeout=");

  g_assert_nonnull (timeout);
  g_assert_cmpuint (slow->retries, <, G_N_ELEMENTS (slow->timeouts));
  slow->timeouts[slow->retries] = g_ascii_strtoll (timeout + strlen ("timeout="), NULL, 10);
  slow->delays[slow->retries] = delay_ms;
  slow->retries++;
}

static void
record_deadline (CpClientInterceptor *interceptor,
                 CpClientCall        *call,
                 const GError        *error,
                 gint64              *deadline_after_start)
{
  *deadline_after_start = cp_client_call_get_deadline (call) - cp_client_call_get_start_time (call);
}

/* A plugin that fails each call with unavailable after 150 ms, behind a
 * retry policy with many attempts and a caller's deadline of 1 s: each
 * attempt is sent with what is left of that deadline (so the plugin sees
 * ever smaller timeouts, each smaller than the last by at least the
 * previous attempt's 150 ms and the backoff), no retry is made when no
 * time is left, and the call ends with the deadline or the last error.
 * Load can only make the timeouts smaller, so these checks hold on a busy
 * machine. */
static void
test_slow_plugin (void)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, "slow", NULL };
  const char *env[] = { "FAKE_PLUGIN_SLOW_MS=150", NULL };
  const gint64 timeout_ms = 1000, slow_ms = 150;
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();
  g_autoptr(CpClientInterceptor) observer = cp_client_interceptor_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;
  const char *plugins[] = { "echo", NULL };
  SlowAttempts slow = { 0 };
  gint64 deadline_after_start = 0, left;

  discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, "environment", env,
                            "name", "slow", "restart-policy", CP_RESTART_NEVER, NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);
  g_object_set (policy, "max-attempts", 10, "initial-backoff-ms", 50,
                "backoff-multiplier", 1.5, NULL);
  g_object_set (client, "retry-policy", policy, NULL);
  g_signal_connect (policy, "retrying", G_CALLBACK (record_retry), &slow);
  g_signal_connect (observer, "completed", G_CALLBACK (record_deadline), &deadline_after_start);
  cp_client_add_interceptor (client, observer);
  g_assert_true (cp_client_connect_sync (client, NULL, &error));
  g_assert_no_error (error);

  hosttest_say_request_set_text (request, "hello");
  cp_call_options_set_timeout_ms (options, timeout_ms);
  cp_call_options_set_idempotent (options, TRUE);
  response = cp_channel_call_sync (cp_client_get_channel (client), SAY, CP_MESSAGE (request),
                                   HOSTTEST_TYPE_SAY_RESPONSE, options, NULL, &error);
  g_assert_null (response);
  g_test_message ("%u retries; last error: %s", slow.retries, error->message);
  g_assert_true (g_error_matches (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED) ||
                 g_error_matches (error, CP_ERROR, CP_ERROR_UNAVAILABLE));

  /* The caller's deadline is the call's, whatever the attempts (the
   * channel reads the clock for it a moment before the start time). */
  g_assert_cmpint (deadline_after_start, >, 0);
  g_assert_cmpint (deadline_after_start, <=, timeout_ms * 1000);
  /* Retried, but never more often than the deadline allows. */
  g_assert_cmpuint (slow.retries, >=, 1);
  g_assert_cmpuint (slow.retries, <=, timeout_ms / (slow_ms + 50 * 0.8));
  /* What each attempt was given: at most what was left. The first at most
   * the whole deadline; each next one at most the previous minus the
   * previous attempt's time at the plugin and the backoff (+1 ms for
   * rounding up to whole milliseconds). */
  left = timeout_ms;
  for (guint i = 0; i < slow.retries; i++)
    {
      g_test_message ("attempt %u: timeout %" G_GINT64_FORMAT " ms, then %u ms backoff",
                      i + 1, slow.timeouts[i], slow.delays[i]);
      g_assert_cmpint (slow.timeouts[i], >, 0);
      g_assert_cmpint (slow.timeouts[i], <=, left + 1);
      left = slow.timeouts[i] - slow_ms - slow.delays[i];
      g_assert_cmpint (left, >, 0);
    }

  close_client (client);
  HOST_TEST_WAIT_UNTIL (cp_process_discovery_get_state (discovery) != CP_PROCESS_STATE_RUNNING);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/host/faults/stopped-plugin", test_stopped_plugin);
  g_test_add_func ("/host/faults/crash-loop", test_crash_loop);
  g_test_add_func ("/host/faults/slow-plugin", test_slow_plugin);

  return g_test_run ();
}
