/* test-host-health.c: CpHealthMonitor
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "host-test-util.h"

typedef struct {
  guint changes;
  guint n_degraded;
  CpHealthState last_health;
  CpServingStatus last_status;
} Changes;

static void
changed_cb (CpHealthMonitor *monitor,
            CpHealthState    health,
            CpServingStatus  status,
            Changes         *changes)
{
  changes->changes++;
  changes->last_health = health;
  changes->last_status = status;
  if (health == CP_HEALTH_STATE_DEGRADED)
    changes->n_degraded++;
  /* The properties already hold the new values. */
  g_assert_cmpint (cp_health_monitor_get_health_state (monitor), ==, health);
  g_assert_cmpint (cp_health_monitor_get_serving_status (monitor), ==, status);
}

static CpHealthMonitor *
monitor_for (CpRpcServer *rpc,
             guint        interval_ms,
             const char  *service)
{
  g_autoptr(CpChannel) channel = cp_channel_new_in_process (rpc);

  return g_object_new (CP_TYPE_HEALTH_MONITOR,
                       "channel", channel,
                       "service", service,
                       "interval-ms", interval_ms,
                       "timeout-ms", 2000,
                       NULL);
}

static void
test_watch (void)
{
  FakeServer *fake = fake_server_new ();
  g_autoptr(CpHealthMonitor) monitor = NULL;
  Changes changes = { 0 };

  fake_server_start (fake);
  monitor = monitor_for (fake->rpc, 60000, "");
  g_signal_connect (monitor, "changed", G_CALLBACK (changed_cb), &changes);
  g_assert_cmpint (cp_health_monitor_get_health_state (monitor), ==, CP_HEALTH_STATE_UNSPECIFIED);
  g_assert_cmpint (cp_health_monitor_get_mode (monitor), ==, CP_HEALTH_MODE_IDLE);

  cp_health_monitor_start (monitor);
  g_assert_cmpint (cp_health_monitor_get_mode (monitor), ==, CP_HEALTH_MODE_WATCHING);
  HOST_TEST_WAIT_UNTIL (changes.changes == 1);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_HEALTHY);
  g_assert_cmpint (changes.last_status, ==, CP_SERVING_STATUS_SERVING);
  /* Learnt from the stream: no Check was needed. */
  g_assert_cmpuint (fake->checks, ==, 0);

  fake_server_set_status (fake, CP_SERVING_STATUS_NOT_SERVING);
  HOST_TEST_WAIT_UNTIL (changes.changes == 2);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_UNHEALTHY);
  g_assert_cmpint (changes.last_status, ==, CP_SERVING_STATUS_NOT_SERVING);
  g_assert_nonnull (cp_health_monitor_get_reason (monitor));

  fake_server_set_status (fake, CP_SERVING_STATUS_SERVING);
  HOST_TEST_WAIT_UNTIL (changes.changes == 3);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_HEALTHY);
  g_assert_null (cp_health_monitor_get_reason (monitor));

  cp_health_monitor_stop (monitor);
  g_assert_cmpint (cp_health_monitor_get_mode (monitor), ==, CP_HEALTH_MODE_IDLE);
  fake_server_free (fake);
}

static void
test_poll_fallback (void)
{
  FakeServer *fake = fake_server_new ();
  g_autoptr(CpHealthMonitor) monitor = NULL;
  Changes changes = { 0 };

  fake->with_watch = FALSE;
  fake_server_start (fake);
  monitor = monitor_for (fake->rpc, 20, "");
  g_signal_connect (monitor, "changed", G_CALLBACK (changed_cb), &changes);
  cp_health_monitor_start (monitor);

  HOST_TEST_WAIT_UNTIL (changes.changes == 1);
  g_assert_cmpint (cp_health_monitor_get_mode (monitor), ==, CP_HEALTH_MODE_POLLING);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_HEALTHY);
  g_assert_cmpuint (fake->checks, >=, 1);

  /* Only Check can tell: the status is read, not just the socket reached. */
  fake->status = CP_SERVING_STATUS_NOT_SERVING;
  HOST_TEST_WAIT_UNTIL (changes.changes == 2);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_UNHEALTHY);
  g_assert_cmpint (changes.last_status, ==, CP_SERVING_STATUS_NOT_SERVING);

  cp_health_monitor_stop (monitor);
  fake_server_free (fake);
}

static void
test_no_health_service (void)
{
  FakeServer *fake = fake_server_new ();
  g_autoptr(CpHealthMonitor) monitor = NULL;
  Changes changes = { 0 };

  fake->with_watch = FALSE;
  fake->with_check = FALSE;
  fake_server_start (fake);
  monitor = monitor_for (fake->rpc, 60000, "");
  g_signal_connect (monitor, "changed", G_CALLBACK (changed_cb), &changes);
  cp_health_monitor_start (monitor);

  HOST_TEST_WAIT_UNTIL (changes.changes == 1);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_HEALTHY);
  g_assert_cmpint (changes.last_status, ==, CP_SERVING_STATUS_UNSPECIFIED);
  g_assert_cmpstr (cp_health_monitor_get_reason (monitor), ==, "the server has no health service");
  fake_server_free (fake);
}

static void
test_unknown_service (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpHealthMonitor) monitor = NULL;
  g_autoptr(GError) error = NULL;
  Changes changes = { 0 };

  g_assert_true (cp_server_start (server, &error));
  g_assert_no_error (error);
  monitor = monitor_for (cp_server_get_rpc_server (server), 60000, "no.such.Service");
  g_signal_connect (monitor, "changed", G_CALLBACK (changed_cb), &changes);
  cp_health_monitor_start (monitor);

  HOST_TEST_WAIT_UNTIL (changes.changes == 1);
  g_assert_cmpint (changes.last_status, ==, CP_SERVING_STATUS_SERVICE_UNKNOWN);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_UNHEALTHY);
  cp_server_close (server);
}

static void
test_per_service (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(CpHealthMonitor) monitor = NULL;
  g_autoptr(GError) error = NULL;
  Changes changes = { 0 };

  g_assert_true (cp_server_start (server, &error));
  monitor = monitor_for (cp_server_get_rpc_server (server), 60000, "hosttest.v1.EchoService");
  g_signal_connect (monitor, "changed", G_CALLBACK (changed_cb), &changes);
  cp_health_monitor_start (monitor);
  HOST_TEST_WAIT_UNTIL (changes.changes == 1);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_HEALTHY);

  cp_server_set_serving_status (server, "hosttest.v1.EchoService", CP_SERVING_STATUS_NOT_SERVING);
  HOST_TEST_WAIT_UNTIL (changes.changes == 2);
  g_assert_cmpint (changes.last_status, ==, CP_SERVING_STATUS_NOT_SERVING);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_UNHEALTHY);
  cp_server_close (server);
}

static void
test_stream_ends (void)
{
  FakeServer *fake = fake_server_new ();
  g_autoptr(CpHealthMonitor) monitor = NULL;
  Changes changes = { 0 };

  fake_server_start (fake);
  monitor = monitor_for (fake->rpc, 60000, "");
  g_signal_connect (monitor, "changed", G_CALLBACK (changed_cb), &changes);
  cp_health_monitor_start (monitor);
  HOST_TEST_WAIT_UNTIL (changes.changes == 1);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_HEALTHY);

  /* The server ends the Watch (as at shutdown). */
  HOST_TEST_WAIT_UNTIL (fake->watchers->len == 1);
  cp_invocation_return_ok (g_ptr_array_index (fake->watchers, 0));
  g_ptr_array_set_size (fake->watchers, 0);
  HOST_TEST_WAIT_UNTIL (changes.changes == 2);
  g_assert_cmpint (changes.last_health, ==, CP_HEALTH_STATE_UNHEALTHY);
  g_assert_cmpint (cp_health_monitor_get_mode (monitor), ==, CP_HEALTH_MODE_POLLING);
  g_assert_cmpstr (cp_health_monitor_get_reason (monitor), ==, "the server ended the health stream");
  fake_server_free (fake);
}

static gboolean
hold_connection (GSocketService    *service,
                 GSocketConnection *connection,
                 GObject           *source,
                 GPtrArray         *held)
{
  g_ptr_array_add (held, g_object_ref (connection));
  return TRUE;
}

static void
test_check_failures (void)
{
  /* A server that never answers Check: degraded, then unhealthy. */
  g_autoptr(GSocketService) service = g_socket_service_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpHealthMonitor) monitor = NULL;
  g_autofree char *url = NULL;
  GPtrArray *held = g_ptr_array_new_with_free_func (g_object_unref);
  Changes changes = { 0 };

  /* Accepts connections and never answers (keeps them open). */
  g_assert_true (g_socket_listener_add_address (G_SOCKET_LISTENER (service), any,
                                                G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                                NULL, &bound, &error));
  g_signal_connect (service, "incoming", G_CALLBACK (hold_connection), held);
  url = g_strdup_printf ("http://127.0.0.1:%u",
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  monitor = g_object_new (CP_TYPE_HEALTH_MONITOR, "channel", channel,
                          "interval-ms", 20, "timeout-ms", 50, "failure-threshold", 2, NULL);
  g_signal_connect (monitor, "changed", G_CALLBACK (changed_cb), &changes);
  cp_health_monitor_start (monitor);

  HOST_TEST_WAIT_UNTIL (changes.last_health == CP_HEALTH_STATE_UNHEALTHY);
  /* One failure (below the threshold of 2) degrades, the second condemns. */
  g_assert_cmpuint (changes.n_degraded, ==, 1);
  g_assert_cmpuint (changes.changes, ==, 2);
  g_assert_nonnull (strstr (cp_health_monitor_get_reason (monitor), "health check failed"));

  cp_health_monitor_stop (monitor);
  g_socket_service_stop (service);
  g_ptr_array_unref (held);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* Wakes the main loop now and then, so waits re-check their condition. */
  host_test_add_ticker ();

  g_test_add_func ("/host/health/watch", test_watch);
  g_test_add_func ("/host/health/poll-fallback", test_poll_fallback);
  g_test_add_func ("/host/health/no-health-service", test_no_health_service);
  g_test_add_func ("/host/health/unknown-service", test_unknown_service);
  g_test_add_func ("/host/health/per-service", test_per_service);
  g_test_add_func ("/host/health/stream-ends", test_stream_ends);
  g_test_add_func ("/host/health/check-failures", test_check_failures);

  return g_test_run ();
}
