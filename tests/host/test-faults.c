/* test-faults.c: a CpClient with a circuit breaker against plugin
 * processes that misbehave (issue 15's fault tests)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>

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

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/host/faults/stopped-plugin", test_stopped_plugin);

  return g_test_run ();
}
