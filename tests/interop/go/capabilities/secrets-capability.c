/* secrets-capability.c: a cp-host capability module (tests)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Loaded by `cp-host --capabilities-dir DIR`: offers the capability
 * "secrets" (secrets.v1.Secrets, examples/platform/secrets.proto) with the
 * one secret db-password = hunter2, as the Go stand-in's platform host does,
 * so that cp-go-platform-check can run its capability checks against our
 * host.
 */
#include <gmodule.h>

#include "secrets.cp.h"

G_MODULE_EXPORT gboolean cp_host_module_init (CpBroker *broker, GError **error);

static gboolean
on_get_secret (DemoSecrets          *secrets,
               CpInvocation         *invocation,
               DemoGetSecretRequest *request,
               gpointer              user_data)
{
  g_autoptr(DemoGetSecretResponse) response = NULL;

  if (g_strcmp0 (demo_get_secret_request_get_name (request), "db-password") != 0)
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND, "no secret named %s",
                                  demo_get_secret_request_get_name (request));
      return TRUE;
    }
  response = demo_get_secret_response_new ();
  demo_get_secret_response_set_value (response, "hunter2");
  demo_secrets_complete_get_secret (secrets, invocation, response);
  return TRUE;
}

G_MODULE_EXPORT gboolean
cp_host_module_init (CpBroker  *broker,
                     GError   **error)
{
  g_autoptr(DemoSecrets) secrets = demo_secrets_skeleton_new ();

  g_signal_connect (secrets, "handle-get-secret", G_CALLBACK (on_get_secret), NULL);
  cp_broker_add_capability (broker, "secrets", "1.0.0", CP_SKELETON (secrets));
  return TRUE;
}
