/* secrets-reader.c: the plugin of seed scenario 2
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   HOST_URL=http://127.0.0.1:PORT secrets-reader [--secret NAME] [--listen ADDR]
 *
 * As soon as it is registered with its host, the plugin requests the host's
 * "secrets" capability (cp_server_request_capability_async()): the host's
 * broker answers a grant, and the returned channel calls the grant's
 * endpoint with the grant's bearer token. The plugin reads one secret
 * through it and reports the outcome as its health: HEALTHY with the reason
 * "read NAME through grant ...", or UNHEALTHY with the error, so the host
 * sees it without any extra service.
 */
#include <stdio.h>
#include <string.h>

#include "secrets.cp.h"

static char *secret_name = "db-password";

static void
on_secret (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  CpServer *server = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DemoGetSecretResponse) response =
    demo_secrets_call_get_secret_finish (DEMO_SECRETS (source), result, &error);
  g_autofree char *reason = NULL;

  if (response == NULL)
    {
      fprintf (stderr, "secrets-reader: GetSecret failed: %s\n", error->message);
      reason = g_strdup_printf ("GetSecret failed: %s", error->message);
      cp_server_set_health (server, CP_HEALTH_STATE_UNHEALTHY, reason, NULL);
      return;
    }
  fprintf (stderr, "secrets-reader: %s = %s\n", secret_name, demo_get_secret_response_get_value (response));
  reason = g_strdup_printf ("read %s (%zu characters) through the secrets capability",
                            secret_name, strlen (demo_get_secret_response_get_value (response)));
  cp_server_set_health (server, CP_HEALTH_STATE_HEALTHY, reason, NULL);
}

static void
on_grant (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  CpServer *server = CP_SERVER (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_server_request_capability_finish (server, result, &error);
  g_autoptr(DemoSecrets) secrets = NULL;
  g_autoptr(DemoGetSecretRequest) request = demo_get_secret_request_new ();
  g_autofree char *base_url = NULL;

  if (channel == NULL)
    {
      g_autofree char *reason = g_strdup_printf ("no secrets capability: %s", error->message);

      fprintf (stderr, "secrets-reader: %s\n", reason);
      cp_server_set_health (server, CP_HEALTH_STATE_UNHEALTHY, reason, NULL);
      return;
    }
  g_object_get (channel, "base-url", &base_url, NULL);
  fprintf (stderr, "secrets-reader: granted, endpoint %s\n", base_url);
  secrets = demo_secrets_proxy_new (channel);
  demo_get_secret_request_set_name (request, secret_name);
  demo_secrets_call_get_secret (secrets, request, NULL, NULL, on_secret, server);
}

static void
on_registered (CpServer   *server,
               GParamSpec *pspec,
               gpointer    user_data)
{
  static gboolean requested;

  if (!cp_server_get_host_registered (server) || requested)
    return;
  requested = TRUE;
  cp_server_request_capability_async (server, "secrets", "1.0.0", "read the database password",
                                      NULL, on_grant, NULL);
}

int
main (int argc, char **argv)
{
  g_autoptr(CpServer) server = cp_server_new ();

  for (int i = 1; i + 1 < argc; i++)
    if (g_str_equal (argv[i], "--secret"))
      {
        secret_name = argv[i + 1];
        for (int j = i; j + 2 <= argc; j++)
          argv[j] = argv[j + 2];
        argc -= 2;
        break;
      }

  /* It serves no service of its own: only the built-in ones (handshake,
   * health, PluginControl). */
  g_object_set (server, "self-id", "secrets-reader", "self-version", "1.0.0", NULL);
  /* Until the secret is read the plugin is not healthy. */
  cp_server_set_health (server, CP_HEALTH_STATE_DEGRADED, "waiting for the secrets capability", NULL);
  g_signal_connect (server, "notify::host-registered", G_CALLBACK (on_registered), NULL);
  return cp_server_run (server, argc, argv);
}
