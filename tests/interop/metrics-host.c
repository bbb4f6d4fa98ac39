/* metrics-host.c: a host exposing two clients' metrics at its /metrics, for test-prometheus.py
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   metrics-host PLUGIN-URL-1 PLUGIN-URL-2
 *
 * Connects a CpClient (CpClient:metrics-enabled, with a circuit breaker and
 * a retry policy) to each kv plugin, makes known calls through each (three
 * Gets and a Get of a missing key through the first, one Get through the
 * second), starts a CpServer of its own on 127.0.0.1:0 with both clients
 * added to its /metrics (cp_client_add_metrics_to_server ()), prints its
 * URL as the first line of standard output and serves until SIGTERM.
 */
#include <glib-unix.h>
#include <stdio.h>

#include <connectplugin.h>
#include "kv-test.h"

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!cp_client_connect_finish (CP_CLIENT (source), result, &error))
    g_error ("connecting to %s: %s", cp_client_get_url (CP_CLIENT (source)), error->message);
  (*(guint *) user_data)--;
}

static void
called_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);

  /* Both answers count: found or not, the call completed. */
  if (response == NULL)
    g_error ("Get: %s", error->message);
  (*(guint *) user_data)--;
}

static void
get (CpClient   *client,
     const char *key,
     guint      *pending)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);

  (*pending)++;
  cp_channel_call_async (cp_client_get_channel (client), KV_PROCEDURE_GET, CP_MESSAGE (request),
                         KV_TYPE_GET_RESPONSE, NULL, NULL, called_cb, pending);
}

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr(CpServer) host = cp_server_new ();
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  CpClient *clients[2];
  guint pending = 0;

  if (argc != 3)
    {
      fprintf (stderr, "usage: metrics-host PLUGIN-URL-1 PLUGIN-URL-2\n");
      return 2;
    }
  kv_test_ensure_types ();

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *label = g_strdup_printf ("kv-%u", i + 1);
      g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
      g_autoptr(CpRetryPolicy) policy = cp_retry_policy_new ();

      clients[i] = g_object_new (CP_TYPE_CLIENT, "endpoint", argv[i + 1],
                                 "metrics-label", label, "metrics-enabled", TRUE,
                                 "circuit-breaker", breaker, "retry-policy", policy, NULL);
      cp_client_add_metrics_to_server (clients[i], host);
      pending++;
      cp_client_connect_async (clients[i], NULL, connected_cb, &pending);
    }
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);

  for (guint i = 0; i < 3; i++)
    get (clients[0], "hello", &pending);
  get (clients[0], "missing", &pending);
  get (clients[1], "hello", &pending);
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);

  if (!cp_server_start (host, &error) ||
      (url = cp_server_listen (host, "127.0.0.1:0", &error)) == NULL)
    g_error ("host server: %s", error->message);
  printf ("%s\n", url);
  fflush (stdout);

  g_unix_signal_add (SIGTERM, quit_cb, loop);
  g_unix_signal_add (SIGINT, quit_cb, loop);
  g_main_loop_run (loop);

  cp_server_close (host);
  for (guint i = 0; i < 2; i++)
    g_object_unref (clients[i]);
  return 0;
}
