/* test-drain.c: graceful shutdown seen from CpClient
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A plugin whose health turns NOT_SERVING is dropped: the client sends no
 * new call to it (they go to another endpoint the discovery knows, or fail
 * with unavailable), while the calls already running on it finish.
 */
#include <connectplugin.h>
#include "drain-plugin.h"

#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    gint64 _end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC; \
    while (!(cond)) \
      { \
        if (g_get_monotonic_time () > _end) \
          g_error ("timed out waiting for %s", #cond); \
        g_main_context_iteration (NULL, TRUE); \
      } \
  } G_STMT_END

static gboolean
tick_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

static CpClient *
connect_to (const char * const *urls)
{
  g_autoptr(CpStaticDiscovery) discovery = cp_static_discovery_new (urls);
  CpClient *client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  g_autoptr(GError) error = NULL;

  g_assert_true (drain_connect (client, &error));
  g_assert_no_error (error);
  return client;
}

/* Two endpoints: A stops serving with a call under way; the client moves
 * to B, new calls go there, and the call on A completes. */
static void
test_moves_to_other (void)
{
  DrainPlugin *a = drain_plugin_new ("A");
  DrainPlugin *b = drain_plugin_new ("B");
  const char *urls[] = { a->url, b->url, NULL };
  g_autoptr(CpClient) client = connect_to (urls);
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) slow_error = NULL;
  g_autofree char *answer = NULL;
  g_autofree char *slow_answer = NULL;
  gboolean slow_done = FALSE;
  guint ticker = g_timeout_add (20, tick_cb, NULL);

  g_assert_cmpstr (cp_client_get_url (client), ==, a->url);
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  drain_say_start (proxy, "slow", &slow_done, &slow_answer, &slow_error);
  WAIT_UNTIL (a->held->len == 1);

  cp_server_set_serving_status (a->server, "", CP_SERVING_STATUS_NOT_SERVING);
  WAIT_UNTIL (g_strcmp0 (cp_client_get_url (client), b->url) == 0 &&
              cp_client_get_state (client) == CP_CLIENT_STATE_READY);

  answer = drain_say (proxy, "hi", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (answer, ==, "B:hi");
  g_assert_cmpuint (a->calls, ==, 1);
  g_assert_false (slow_done);

  drain_plugin_release (a);
  WAIT_UNTIL (slow_done);
  g_assert_no_error (slow_error);
  g_assert_cmpstr (slow_answer, ==, "A:slow");

  g_source_remove (ticker);
    drain_plugin_free (a);
  drain_plugin_free (b);
}

/* The only endpoint stops serving: new calls fail with unavailable without
 * reaching it; the call under way completes. */
static void
test_alone (void)
{
  DrainPlugin *a = drain_plugin_new ("A");
  const char *urls[] = { a->url, NULL };
  g_autoptr(CpClient) client = connect_to (urls);
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) slow_error = NULL;
  g_autofree char *answer = NULL;
  g_autofree char *slow_answer = NULL;
  gboolean slow_done = FALSE;
  guint ticker = g_timeout_add (20, tick_cb, NULL);

  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  answer = drain_say (proxy, "hi", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (answer, ==, "A:hi");
  g_clear_pointer (&answer, g_free);
  drain_say_start (proxy, "slow", &slow_done, &slow_answer, &slow_error);
  WAIT_UNTIL (a->held->len == 1);

  cp_server_set_serving_status (a->server, "", CP_SERVING_STATUS_NOT_SERVING);
  WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  g_assert_error (cp_client_get_error (client), CP_ERROR, CP_ERROR_UNAVAILABLE);

  answer = drain_say (proxy, "hi", &error);
  g_assert_null (answer);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpuint (a->calls, ==, 2);

  drain_plugin_release (a);
  WAIT_UNTIL (slow_done);
  g_assert_no_error (slow_error);
  g_assert_cmpstr (slow_answer, ==, "A:slow");

  /* Serving again, a new connect brings the proxy back. */
  cp_server_set_serving_status (a->server, "", CP_SERVING_STATUS_SERVING);
  g_assert_true (drain_connect (client, &error));
  g_assert_no_error (error);
  answer = drain_say (proxy, "again", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (answer, ==, "A:again");

  g_source_remove (ticker);
    drain_plugin_free (a);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/drain/moves-to-other", test_moves_to_other);
  g_test_add_func ("/drain/alone", test_alone);
  return g_test_run ();
}
