/* cp-server-control.c: a CpServer's PluginControl and PluginIdentity
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The opt-in services a host uses to manage a running plugin: GetHealth and
 * Shutdown (PluginControl), GetPluginInfo and SetRuntimeIdentity
 * (PluginIdentity). Every call first passes the control secret check
 * (control_call_authorized()): "Authorization: Bearer <secret>" compared
 * in constant time, or refused as `unauthenticated`.
 */
#include "cp-server-state-private.h"

#include <string.h>

#include "cp-error.h"
#include "cp-runtime-identity-private.h"

/* ------------------------------------------------------------------ */
/* Control secret: PluginControl and PluginIdentity                     */

/* The credential of "Bearer <credential>" (scheme case-insensitive as in
 * RFC 9110 §11.1, then one or more spaces), or NULL. */
static const char *
bearer_credential (const char *authorization)
{
  const char *p;

  if (authorization == NULL || g_ascii_strncasecmp (authorization, "Bearer ", 7) != 0)
    return NULL;
  for (p = authorization + 7; *p == ' '; p++)
    ;
  return *p != '\0' ? p : NULL;
}

/* Whether the call may go on; otherwise it is answered `unauthenticated`
 * and nothing else happens. */
static gboolean
control_call_authorized (CpServer     *self,
                         CpInvocation *invocation)
{
  const char *authorization, *credential;

  if (self->control_secret == NULL)
    {
      if (self->control_allow_unauthenticated)
        return TRUE;
      cp_invocation_return_error_literal (invocation, CP_ERROR_UNAUTHENTICATED,
                                          "this plugin has no control secret (" CP_CONTROL_SECRET_ENV
                                          "): PluginControl and PluginIdentity are refused "
                                          "unless unauthenticated control is allowed "
                                          "(--insecure-control)");
      return FALSE;
    }

  /* All values joined: a second Authorization header makes it wrong. */
  authorization = soup_message_headers_get_list (cp_invocation_get_request_headers (invocation),
                                                 "Authorization");
  credential = bearer_credential (authorization);
  if (credential == NULL)
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_UNAUTHENTICATED,
                                          "PluginControl and PluginIdentity calls need "
                                          "\"Authorization: Bearer <control secret>\"");
      return FALSE;
    }
  /* Constant time in the secret's bytes and length. */
  if (!cp_token_equal (credential, self->control_secret))
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_UNAUTHENTICATED,
                                          "wrong control secret");
      return FALSE;
    }
  return TRUE;
}

/* The secret, when cp_server_stash_control_secret_from_env () took it out
 * of the environment before any CpServer existed. */
G_LOCK_DEFINE_STATIC (stashed_secret);
static char *stashed_secret;

void
cp_server_stash_control_secret_from_env (void)
{
  const char *env = g_getenv (CP_CONTROL_SECRET_ENV);

  if (env == NULL)
    return;
  G_LOCK (stashed_secret);
  g_free (stashed_secret);
  stashed_secret = g_strdup (env);
  G_UNLOCK (stashed_secret);
  g_unsetenv (CP_CONTROL_SECRET_ENV);
}

/* Takes the secret a launching host put in the environment, and removes it
 * there so that the plugin's own children do not inherit it. */
void
cp_server_take_control_secret_from_env (CpServer *self)
{
  g_autofree char *stashed = NULL;
  const char *env;

  G_LOCK (stashed_secret);
  stashed = g_steal_pointer (&stashed_secret);
  G_UNLOCK (stashed_secret);
  env = stashed != NULL ? stashed : g_getenv (CP_CONTROL_SECRET_ENV);
  if (env == NULL)
    return;
  if (self->control_secret == NULL && env[0] != '\0')
    {
      self->control_secret = g_strdup (env);
      g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_CONTROL_SECRET]);
    }
  if (stashed == NULL)
    g_unsetenv (CP_CONTROL_SECRET_ENV);
}

/* ------------------------------------------------------------------ */
/* PluginControl                                                        */

static void
handle_get_health (CpInvocation *invocation,
                   CpMessage    *request,
                   gpointer      user_data)
{
  CpServer *self = user_data;
  g_autoptr(CpGetHealthResponse) response = NULL;

  if (!control_call_authorized (self, invocation))
    return;
  response = cp_get_health_response_new ();
  cp_get_health_response_set_state (response, self->health_state);
  cp_get_health_response_set_reason (response, self->health_reason);
  cp_get_health_response_set_unavailable_dependencies (response,
                                                       (const char * const *) self->unavailable_dependencies);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

typedef struct {
  CpServer *server;
  guint timeout_ms;
} ShutdownRequestData;

static gboolean
start_requested_shutdown (gpointer user_data)
{
  ShutdownRequestData *data = user_data;

  cp_server_shutdown_with_timeout (data->server, data->timeout_ms, NULL, NULL, NULL);
  return G_SOURCE_REMOVE;
}

static void
shutdown_request_data_free (gpointer user_data)
{
  ShutdownRequestData *data = user_data;

  g_object_unref (data->server);
  g_free (data);
}

static void
handle_shutdown (CpInvocation *invocation,
                 CpMessage    *message,
                 gpointer      user_data)
{
  CpServer *self = user_data;
  CpShutdownRequest *request = CP_SHUTDOWN_REQUEST (message);
  g_autoptr(CpShutdownResponse) response = NULL;
  int grace = cp_shutdown_request_get_grace_period_seconds (request);
  ShutdownRequestData *data;
  GSource *source;

  if (!control_call_authorized (self, invocation))
    return;
  response = cp_shutdown_response_new ();
  g_signal_emit (self, cp_server_signals[SIGNAL_SHUTDOWN_REQUESTED], 0,
                 grace, cp_shutdown_request_get_reason (request));

  cp_shutdown_response_set_acknowledged (response, TRUE);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));

  /* Begin after this answer is on its way (it is an in-flight call the
   * drain waits for). */
  data = g_new0 (ShutdownRequestData, 1);
  data->server = g_object_ref (self);
  data->timeout_ms = grace > 0 ? (guint) MIN ((gint64) grace * 1000, G_MAXUINT)
                               : self->shutdown_timeout_ms;
  source = g_idle_source_new ();
  g_source_set_callback (source, start_requested_shutdown, data, shutdown_request_data_free);
  g_source_attach (source, cp_rpc_server_get_context (self->rpc_server));
  g_source_unref (source);
}

/* ------------------------------------------------------------------ */
/* PluginIdentity                                                       */

static GPtrArray *
collect_declarations (CpServer *self,
                      gboolean  provides)
{
  GPtrArray *all = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < self->plugins->len; i++)
    {
      g_autoptr(GPtrArray) some = provides ? cp_plugin_get_provides (self->plugins->pdata[i])
                                           : cp_plugin_get_requires (self->plugins->pdata[i]);

      for (guint j = 0; j < some->len; j++)
        g_ptr_array_add (all, g_object_ref (some->pdata[j]));
    }
  return all;
}

static void
handle_get_plugin_info (CpInvocation *invocation,
                        CpMessage    *request,
                        gpointer      user_data)
{
  CpServer *self = user_data;
  g_autoptr(CpGetPluginInfoResponse) response = NULL;
  g_autoptr(GPtrArray) provides = NULL;
  g_autoptr(GPtrArray) requires = NULL;
  CpPlugin *first = self->plugins->len > 0 ? self->plugins->pdata[0] : NULL;
  const char *self_id = self->self_id;
  const char *self_version = self->self_version;

  if (!control_call_authorized (self, invocation))
    return;
  response = cp_get_plugin_info_response_new ();
  provides = collect_declarations (self, TRUE);
  requires = collect_declarations (self, FALSE);
  if (self_id == NULL && first != NULL)
    self_id = cp_plugin_get_name (first);
  if (self_version == NULL && first != NULL)
    self_version = cp_plugin_get_version (first);

  cp_get_plugin_info_response_set_self_id (response, self_id);
  cp_get_plugin_info_response_set_self_version (response, self_version);
  cp_get_plugin_info_response_set_provides (response, provides);
  cp_get_plugin_info_response_set_requires_ (response, requires);
  cp_get_plugin_info_response_set_metadata (response, self->metadata);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_set_runtime_identity (CpInvocation *invocation,
                             CpMessage    *message,
                             gpointer      user_data)
{
  CpServer *self = user_data;
  CpSetRuntimeIdentityRequest *request = CP_SET_RUNTIME_IDENTITY_REQUEST (message);
  g_autoptr(CpSetRuntimeIdentityResponse) response = NULL;
  const char *runtime_id = cp_set_runtime_identity_request_get_runtime_id (request);
  const char *host_url = cp_set_runtime_identity_request_get_host_url (request);

  if (!control_call_authorized (self, invocation))
    return;
  if (runtime_id[0] == '\0')
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_INVALID_ARGUMENT,
                                          "runtime_id is required");
      return;
    }
  if (host_url[0] != '\0')
    {
      g_autoptr(GUri) uri = g_uri_parse (host_url, G_URI_FLAGS_NONE, NULL);

      if (uri == NULL && !g_str_has_prefix (host_url, "unix:"))
        {
          cp_invocation_return_error (invocation, CP_ERROR_INVALID_ARGUMENT,
                                      "host_url is not a URL: \"%s\"", host_url);
          return;
        }
    }

  g_object_freeze_notify (G_OBJECT (self));
  if (g_strcmp0 (self->runtime_id, runtime_id) != 0)
    {
      g_free (self->runtime_id);
      self->runtime_id = g_strdup (runtime_id);
      g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_RUNTIME_ID]);
    }
  if (g_strcmp0 (self->runtime_token, cp_set_runtime_identity_request_get_runtime_token (request)) != 0)
    {
      g_free (self->runtime_token);
      self->runtime_token = g_strdup (cp_set_runtime_identity_request_get_runtime_token (request));
      g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_RUNTIME_TOKEN]);
    }
  if (g_strcmp0 (self->host_url, host_url) != 0)
    {
      g_free (self->host_url);
      self->host_url = g_strdup (host_url);
      g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_HOST_URL]);
    }
  g_object_thaw_notify (G_OBJECT (self));

  response = cp_set_runtime_identity_response_new ();
  cp_set_runtime_identity_response_set_acknowledged (response, TRUE);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  /* Managed mode: register with the identity given (no handshake). */
  cp_server_host_link_start (self, TRUE);
}

/* ------------------------------------------------------------------ */
/* Registration                                                         */

void
cp_server_register_control (CpServer *server)
{
  if (server->plugin_control_enabled)
    {
      cp_server_add_builtin (server, CP_PROCEDURE_CONTROL_GET_HEALTH, CP_METHOD_UNARY,
                             CP_TYPE_GET_HEALTH_REQUEST, CP_TYPE_GET_HEALTH_RESPONSE, handle_get_health);
      cp_server_add_builtin (server, CP_PROCEDURE_CONTROL_SHUTDOWN, CP_METHOD_UNARY,
                             CP_TYPE_SHUTDOWN_REQUEST, CP_TYPE_SHUTDOWN_RESPONSE, handle_shutdown);
    }
  if (server->identity_enabled)
    {
      cp_server_add_builtin (server, CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO, CP_METHOD_UNARY,
                             CP_TYPE_GET_PLUGIN_INFO_REQUEST, CP_TYPE_GET_PLUGIN_INFO_RESPONSE,
                             handle_get_plugin_info);
      cp_server_add_builtin (server, CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY, CP_METHOD_UNARY,
                             CP_TYPE_SET_RUNTIME_IDENTITY_REQUEST, CP_TYPE_SET_RUNTIME_IDENTITY_RESPONSE,
                             handle_set_runtime_identity);
    }
}
