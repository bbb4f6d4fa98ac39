/* cp-server.c: serves plugins and the built-in plugin-system services
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connect-plugin-go's ServeConfig as a GObject. The built-in services follow
 * docs/wire-contract.md: HandshakeService (always), HealthService with
 * /healthz and /readyz (health-enabled), PluginControl and PluginIdentity
 * (opt-in). Plugins' skeletons are exported on the same CpRpcServer.
 */
#include "cp-server-private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "cp-error.h"
#include "cp-plugin-constants.h"
#include "cp-rpc-server-private.h"
#include "cp-health-server-private.h"
#include "cp-runtime-identity-private.h"

#define RUNTIME_TOKEN_TTL_US (24 * G_TIME_SPAN_HOUR)
/* Handshakes are unauthenticated: bound what they can make us remember. */
#define MAX_ISSUED_IDENTITIES 4096

typedef struct {
  char *self_id;
  char *token;
  gint64 expires;     /* monotonic µs */
} RuntimeIdentity;

struct _CpServer
{
  GObject parent_instance;

  CpRpcServer *rpc_server;
  CpHealthServer *health;
  GPtrArray *plugins;             /* CpPlugin* */

  char *listen_address;
  char *magic_cookie_key;
  char *magic_cookie_value;
  int core_protocol_version;
  int app_protocol_version;
  GHashTable *metadata;           /* char* → char* */
  guint shutdown_timeout_ms;
  gboolean health_enabled;
  gboolean plugin_control_enabled;
  gboolean plugin_control_set;    /* set explicitly (cp_server_run keeps it) */
  gboolean identity_enabled;
  char *control_secret;           /* PluginControl/PluginIdentity bearer */
  gboolean control_allow_unauthenticated;
  char *self_id;
  char *self_version;

  /* PluginControl.GetHealth */
  CpHealthState health_state;
  char *health_reason;
  GStrv unavailable_dependencies;

  /* PluginIdentity.SetRuntimeIdentity */
  char *runtime_id;
  char *runtime_token;
  char *host_url;

  GHashTable *issued;             /* runtime id → RuntimeIdentity* */

  gboolean started;
  gboolean serving;
  gboolean shutting_down;
  gboolean closed;
  GCancellable *drain_cancellable;
  GSource *drain_timeout;
  GError *shutdown_error;         /* why running calls were cut, if they were */
  GQueue shutdown_tasks;
};

enum {
  PROP_0,
  PROP_RPC_SERVER,
  PROP_LISTEN_ADDRESS,
  PROP_MAGIC_COOKIE_KEY,
  PROP_MAGIC_COOKIE_VALUE,
  PROP_CORE_PROTOCOL_VERSION,
  PROP_APP_PROTOCOL_VERSION,
  PROP_SERVER_METADATA,
  PROP_SHUTDOWN_TIMEOUT_MS,
  PROP_HEALTH_ENABLED,
  PROP_PLUGIN_CONTROL_ENABLED,
  PROP_IDENTITY_ENABLED,
  PROP_CONTROL_SECRET,
  PROP_CONTROL_ALLOW_UNAUTHENTICATED,
  PROP_SELF_ID,
  PROP_SELF_VERSION,
  PROP_SERVING,
  PROP_RUNTIME_ID,
  PROP_RUNTIME_TOKEN,
  PROP_HOST_URL,
  PROP_MAX_RECEIVE_SIZE,
  PROP_MAX_SEND_QUEUE_SIZE,
  N_PROPS
};

enum {
  SIGNAL_SHUTDOWN_REQUESTED,
  SIGNAL_CLOSED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (CpServer, cp_server, G_TYPE_OBJECT)

static void
runtime_identity_free (gpointer data)
{
  RuntimeIdentity *identity = data;

  g_free (identity->self_id);
  if (identity->token != NULL)
    explicit_bzero (identity->token, strlen (identity->token));
  g_free (identity->token);
  g_free (identity);
}

static const char *
effective_cookie_key (CpServer *self)
{
  return self->magic_cookie_key != NULL ? self->magic_cookie_key : CP_MAGIC_COOKIE_KEY;
}

static const char *
effective_cookie_value (CpServer *self)
{
  return self->magic_cookie_value != NULL ? self->magic_cookie_value : CP_MAGIC_COOKIE_VALUE;
}

static CpPlugin *
find_plugin (CpServer   *self,
             const char *name)
{
  for (guint i = 0; i < self->plugins->len; i++)
    if (g_strcmp0 (cp_plugin_get_name (self->plugins->pdata[i]), name) == 0)
      return self->plugins->pdata[i];
  return NULL;
}

static void
set_serving (CpServer *self,
             gboolean  serving)
{
  if (self->serving == serving)
    return;
  self->serving = serving;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVING]);
}

/* ------------------------------------------------------------------ */
/* HandshakeService                                                     */

static void
expire_identities (CpServer *self)
{
  GHashTableIter iter;
  gpointer value;
  gint64 now = g_get_monotonic_time ();

  g_hash_table_iter_init (&iter, self->issued);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((RuntimeIdentity *) value)->expires <= now)
      g_hash_table_iter_remove (&iter);

  /* Still full: forget the oldest identity (it fails later checks). */
  while (g_hash_table_size (self->issued) >= MAX_ISSUED_IDENTITIES)
    {
      gpointer key, oldest_key = NULL;
      gint64 oldest = G_MAXINT64;

      g_hash_table_iter_init (&iter, self->issued);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (((RuntimeIdentity *) value)->expires < oldest)
          {
            oldest = ((RuntimeIdentity *) value)->expires;
            oldest_key = key;
          }
      g_hash_table_remove (self->issued, oldest_key);
    }
}

static void
handle_handshake (CpInvocation *invocation,
                  CpMessage    *message,
                  gpointer      user_data)
{
  CpServer *self = user_data;
  CpHandshakeRequest *request = CP_HANDSHAKE_REQUEST (message);
  g_autoptr(CpHandshakeResponse) response = NULL;
  g_autoptr(GPtrArray) infos = NULL;
  g_autoptr(GHashTable) metadata = NULL;
  g_auto(GStrv) requested = NULL;
  const char *self_id;
  GHashTableIter iter;
  gpointer key, value;

  /* The order of the checks is part of the contract: the first failure
   * answers. */
  if (g_strcmp0 (cp_handshake_request_get_magic_cookie_key (request), effective_cookie_key (self)) != 0 ||
      !cp_token_equal (cp_handshake_request_get_magic_cookie_value (request), effective_cookie_value (self)))
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_INVALID_ARGUMENT,
                                          "invalid magic cookie - this may not be a connect-plugin server");
      return;
    }
  if (cp_handshake_request_get_core_protocol_version (request) != self->core_protocol_version)
    {
      cp_invocation_return_error (invocation, CP_ERROR_INVALID_ARGUMENT,
                                  "unsupported core protocol version: %d (server supports: %d)",
                                  cp_handshake_request_get_core_protocol_version (request),
                                  self->core_protocol_version);
      return;
    }
  if (cp_handshake_request_get_app_protocol_version (request) != self->app_protocol_version)
    {
      cp_invocation_return_error (invocation, CP_ERROR_FAILED_PRECONDITION,
                                  "version mismatch: client=%d, server=%d",
                                  cp_handshake_request_get_app_protocol_version (request),
                                  self->app_protocol_version);
      return;
    }
  self_id = cp_handshake_request_get_self_id (request);
  if (self_id[0] != '\0' && !cp_self_id_is_valid (self_id))
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_INVALID_ARGUMENT,
                                          "invalid self_id: must be 1-128 characters matching "
                                          "^[a-zA-Z][a-zA-Z0-9_.-]*$");
      return;
    }

  response = cp_handshake_response_new ();
  cp_handshake_response_set_core_protocol_version (response, self->core_protocol_version);
  cp_handshake_response_set_app_protocol_version (response, self->app_protocol_version);

  /* Requested plugins we do not serve are left out: the client names them. */
  infos = g_ptr_array_new_with_free_func (g_object_unref);
  requested = cp_handshake_request_get_requested_plugins (request);
  for (guint i = 0; requested != NULL && requested[i] != NULL; i++)
    {
      CpPlugin *plugin = find_plugin (self, requested[i]);

      if (plugin != NULL)
        g_ptr_array_add (infos, cp_plugin_to_info (plugin));
    }
  cp_handshake_response_set_plugins (response, infos);

  /* As connect-plugin-go: server_version, which configured metadata may
   * override. */
  metadata = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_replace (metadata, (gpointer) "server_version", (gpointer) CP_SERVER_VERSION);
  g_hash_table_iter_init (&iter, self->metadata);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_replace (metadata, key, value);
  cp_handshake_response_set_server_metadata (response, metadata);

  if (self_id[0] != '\0')
    {
      RuntimeIdentity *identity = g_new0 (RuntimeIdentity, 1);
      g_autofree char *runtime_id = NULL;

      /* A fresh identity on every handshake (ids collide with p = 2^-16:
       * draw again). */
      expire_identities (self);
      do
        {
          g_free (runtime_id);
          runtime_id = cp_generate_runtime_id (self_id);
        }
      while (g_hash_table_contains (self->issued, runtime_id));

      identity->self_id = g_strdup (self_id);
      identity->token = cp_generate_token (32);
      identity->expires = g_get_monotonic_time () + RUNTIME_TOKEN_TTL_US;
      cp_handshake_response_set_runtime_id (response, runtime_id);
      cp_handshake_response_set_runtime_token (response, identity->token);
      g_hash_table_replace (self->issued, g_steal_pointer (&runtime_id), identity);
    }

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

/* ------------------------------------------------------------------ */
/* /healthz, /readyz                                                    */

static guint
handle_healthz (CpRpcServer  *rpc_server,
                const char  **text,
                gpointer      user_data)
{
  *text = "ok";
  return SOUP_STATUS_OK;
}

static guint
handle_readyz (CpRpcServer  *rpc_server,
               const char  **text,
               gpointer      user_data)
{
  CpServer *self = user_data;
  gboolean ready = self->serving &&
                   cp_health_server_get_status (self->health, "") == CP_SERVING_STATUS_SERVING;

  *text = ready ? "ready" : "not ready";
  return ready ? SOUP_STATUS_OK : SOUP_STATUS_SERVICE_UNAVAILABLE;
}

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

/* Takes the secret a launching host put in the environment, and removes it
 * there so that the plugin's own children do not inherit it. */
static void
take_control_secret_from_env (CpServer *self)
{
  const char *env = g_getenv (CP_CONTROL_SECRET_ENV);

  if (env == NULL)
    return;
  if (self->control_secret == NULL && env[0] != '\0')
    {
      self->control_secret = g_strdup (env);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONTROL_SECRET]);
    }
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

static void begin_drain           (CpServer            *self,
                                   guint                timeout_ms);
static void shutdown_with_timeout (CpServer            *self,
                                   guint                timeout_ms,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);

static gboolean
start_requested_shutdown (gpointer user_data)
{
  ShutdownRequestData *data = user_data;

  shutdown_with_timeout (data->server, data->timeout_ms, NULL, NULL, NULL);
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
  g_signal_emit (self, signals[SIGNAL_SHUTDOWN_REQUESTED], 0,
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
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNTIME_ID]);
    }
  if (g_strcmp0 (self->runtime_token, cp_set_runtime_identity_request_get_runtime_token (request)) != 0)
    {
      g_free (self->runtime_token);
      self->runtime_token = g_strdup (cp_set_runtime_identity_request_get_runtime_token (request));
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RUNTIME_TOKEN]);
    }
  if (g_strcmp0 (self->host_url, host_url) != 0)
    {
      g_free (self->host_url);
      self->host_url = g_strdup (host_url);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HOST_URL]);
    }
  g_object_thaw_notify (G_OBJECT (self));

  response = cp_set_runtime_identity_response_new ();
  cp_set_runtime_identity_response_set_acknowledged (response, TRUE);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

/* ------------------------------------------------------------------ */
/* Start: validation, registration                                      */

static void
add_builtin (CpServer        *self,
             const char      *procedure,
             CpMethodKind     kind,
             GType            input,
             GType            output,
             CpMethodHandler  handler)
{
  g_autoptr(CpMethodInfo) info = cp_method_info_new (procedure, kind, input, output);

  /* Unowned: the routes go with the engine, which dispose takes down. */
  cp_rpc_server_add_method (self->rpc_server, info, handler, self, NULL);
}

/* Service paths the server itself serves, with what serves them. */
static void
add_reserved_paths (CpServer   *self,
                    GHashTable *paths)
{
  g_hash_table_insert (paths, (gpointer) "/connectplugin.v1.HandshakeService/",
                       (gpointer) "the built-in HandshakeService");
  if (self->health_enabled)
    g_hash_table_insert (paths, (gpointer) "/connectplugin.health.v1.HealthService/",
                         (gpointer) "the built-in HealthService");
  if (self->plugin_control_enabled)
    g_hash_table_insert (paths, (gpointer) "/connectplugin.v1.PluginControl/",
                         (gpointer) "the built-in PluginControl service");
  if (self->identity_enabled)
    g_hash_table_insert (paths, (gpointer) "/connectplugin.v1.PluginIdentity/",
                         (gpointer) "the built-in PluginIdentity service");
}

static gboolean
validate_plugins (CpServer  *self,
                  GError   **error)
{
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) paths = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_autoptr(GHashTable) reserved = g_hash_table_new (g_str_hash, g_str_equal);

  add_reserved_paths (self, reserved);

  for (guint i = 0; i < self->plugins->len; i++)
    {
      CpPlugin *plugin = self->plugins->pdata[i];
      const char *name = cp_plugin_get_name (plugin);
      g_autoptr(GPtrArray) descriptors = NULL;

      if (!cp_plugin_validate (plugin, TRUE, error))
        return FALSE;
      if (!g_hash_table_add (names, (gpointer) name))
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "two plugins are named \"%s\"", name);
          return FALSE;
        }

      descriptors = cp_plugin_get_descriptors (plugin);
      for (guint j = 0; j < descriptors->len; j++)
        {
          const char *path = cp_service_descriptor_get_path (descriptors->pdata[j]);
          const char *owner;

          if ((owner = g_hash_table_lookup (reserved, path)) != NULL)
            {
              g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "plugin \"%s\": service path %s is already served by %s",
                           name, path, owner);
              return FALSE;
            }
          if ((owner = g_hash_table_lookup (paths, path)) != NULL)
            {
              g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "plugin \"%s\": service path %s is already served by plugin \"%s\"",
                           name, path, owner);
              return FALSE;
            }
          g_hash_table_insert (paths, (gpointer) path, g_strdup (name));
        }
    }
  return TRUE;
}

static void
mark_all_serving (CpServer *self)
{
  cp_health_server_set_status (self->health, "", CP_SERVING_STATUS_SERVING);
  for (guint i = 0; i < self->plugins->len; i++)
    {
      g_autoptr(GPtrArray) descriptors = cp_plugin_get_descriptors (self->plugins->pdata[i]);

      /* connect-plugin-go keys health by plugin name too (its hosts ask
       * Check("kv")); we answer both the name and each service. */
      cp_health_server_set_status (self->health, cp_plugin_get_name (self->plugins->pdata[i]),
                                   CP_SERVING_STATUS_SERVING);
      for (guint j = 0; j < descriptors->len; j++)
        cp_health_server_set_status (self->health,
                                     cp_service_descriptor_get_full_name (descriptors->pdata[j]),
                                     CP_SERVING_STATUS_SERVING);
    }
  set_serving (self, TRUE);
}

/* ------------------------------------------------------------------ */
/* Shutdown                                                             */

static void
finish_close (CpServer *self)
{
  GTask *task;

  if (self->drain_timeout != NULL)
    {
      g_source_destroy (self->drain_timeout);
      g_clear_pointer (&self->drain_timeout, g_source_unref);
    }

  if (!self->closed)
    {
      self->closed = TRUE;
      self->shutting_down = TRUE;
      cp_health_server_shutdown (self->health);
      set_serving (self, FALSE);
      cp_rpc_server_close (self->rpc_server);
      g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
    }

  while ((task = g_queue_pop_head (&self->shutdown_tasks)) != NULL)
    {
      g_task_set_task_data (task, NULL, NULL);
      if (self->shutdown_error != NULL)
        g_task_return_error (task, g_error_copy (self->shutdown_error));
      else
        g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

static void
set_shutdown_error (CpServer   *self,
                    gint        code,
                    const char *message)
{
  if (self->shutdown_error == NULL)
    self->shutdown_error = g_error_new_literal (G_IO_ERROR, code, message);
}

static void
on_drained (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(CpServer) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!cp_rpc_server_shutdown_finish (CP_RPC_SERVER (source), result, &error))
    g_debug ("CpServer: drain stopped: %s", error->message);
  finish_close (self);
}

static gboolean
on_drain_timeout (gpointer user_data)
{
  CpServer *self = user_data;

  g_clear_pointer (&self->drain_timeout, g_source_unref);
  set_shutdown_error (self, G_IO_ERROR_TIMED_OUT,
                      "graceful shutdown timed out: calls still running were cut");
  g_cancellable_cancel (self->drain_cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_shutdown_task_cancelled (GCancellable *cancellable,
                            gpointer      user_data)
{
  /* The caller does not want to wait: close at once. */
  CpServer *self = user_data;

  set_shutdown_error (self, G_IO_ERROR_CANCELLED, "Operation was cancelled");
  if (self->drain_cancellable != NULL)
    g_cancellable_cancel (self->drain_cancellable);
}

typedef struct {
  GCancellable *cancellable;
  gulong handler_id;
} TaskCancelWatch;

static void
task_cancel_watch_free (gpointer data)
{
  TaskCancelWatch *watch = data;

  g_cancellable_disconnect (watch->cancellable, watch->handler_id);
  g_object_unref (watch->cancellable);
  g_free (watch);
}

static void
shutdown_with_timeout (CpServer            *self,
                       guint                timeout_ms,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_server_shutdown_async);

  if (self->closed)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  g_queue_push_tail (&self->shutdown_tasks, task);

  if (!self->shutting_down)
    begin_drain (self, timeout_ms);

  if (cancellable != NULL)
    {
      TaskCancelWatch *watch = g_new0 (TaskCancelWatch, 1);

      watch->cancellable = g_object_ref (cancellable);
      watch->handler_id = g_cancellable_connect (cancellable,
                                                 G_CALLBACK (on_shutdown_task_cancelled),
                                                 self, NULL);
      g_task_set_task_data (task, watch, task_cancel_watch_free);
    }
}

static void
begin_drain (CpServer *self,
             guint     timeout_ms)
{
  /* 1. Health: NOT_SERVING everywhere; Watch streams hear it and end. */
  self->shutting_down = TRUE;
  set_serving (self, FALSE);
  cp_health_server_shutdown (self->health);

  /* 2.–3. Stop accepting, drain in-flight calls up to the timeout. */
  self->drain_cancellable = g_cancellable_new ();
  if (timeout_ms > 0)
    {
      self->drain_timeout = g_timeout_source_new (timeout_ms);
      g_source_set_callback (self->drain_timeout, on_drain_timeout, self, NULL);
      g_source_attach (self->drain_timeout, cp_rpc_server_get_context (self->rpc_server));
    }
  cp_rpc_server_shutdown_async (self->rpc_server, self->drain_cancellable,
                                on_drained, g_object_ref (self));
}

/* ------------------------------------------------------------------ */
/* GObject                                                              */

static void
cp_server_dispose (GObject *object)
{
  CpServer *self = CP_SERVER (object);

  if (self->drain_timeout != NULL)
    {
      g_source_destroy (self->drain_timeout);
      g_clear_pointer (&self->drain_timeout, g_source_unref);
    }
  if (self->rpc_server != NULL && !self->closed)
    {
      self->closed = TRUE;
      cp_health_server_shutdown (self->health);
      cp_rpc_server_close (self->rpc_server);
    }
  /* The engine's routes point at us without a reference: take them down
   * with us (someone may still hold the engine, e.g. an in-process channel). */
  if (self->rpc_server != NULL)
    g_object_run_dispose (G_OBJECT (self->rpc_server));

  G_OBJECT_CLASS (cp_server_parent_class)->dispose (object);
}

static void
cp_server_finalize (GObject *object)
{
  CpServer *self = CP_SERVER (object);

  g_clear_object (&self->rpc_server);
  g_clear_object (&self->health);
  g_clear_object (&self->drain_cancellable);
  g_clear_error (&self->shutdown_error);
  g_ptr_array_unref (self->plugins);
  g_hash_table_unref (self->metadata);
  g_hash_table_unref (self->issued);
  g_free (self->listen_address);
  g_free (self->magic_cookie_key);
  g_free (self->magic_cookie_value);
  g_free (self->self_id);
  g_free (self->self_version);
  if (self->control_secret != NULL)
    explicit_bzero (self->control_secret, strlen (self->control_secret));
  g_free (self->control_secret);
  g_free (self->health_reason);
  g_strfreev (self->unavailable_dependencies);
  g_free (self->runtime_id);
  g_free (self->runtime_token);
  g_free (self->host_url);

  G_OBJECT_CLASS (cp_server_parent_class)->finalize (object);
}

static void
replace_string (char       **field,
                const GValue *value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
}

static void
cp_server_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  CpServer *self = CP_SERVER (object);

  switch (prop_id)
    {
    case PROP_RPC_SERVER:
      g_value_set_object (value, self->rpc_server);
      break;
    case PROP_LISTEN_ADDRESS:
      g_value_set_string (value, self->listen_address);
      break;
    case PROP_MAGIC_COOKIE_KEY:
      g_value_set_string (value, effective_cookie_key (self));
      break;
    case PROP_MAGIC_COOKIE_VALUE:
      g_value_set_string (value, effective_cookie_value (self));
      break;
    case PROP_CORE_PROTOCOL_VERSION:
      g_value_set_int (value, self->core_protocol_version);
      break;
    case PROP_APP_PROTOCOL_VERSION:
      g_value_set_int (value, self->app_protocol_version);
      break;
    case PROP_SERVER_METADATA:
      g_value_set_boxed (value, self->metadata);
      break;
    case PROP_SHUTDOWN_TIMEOUT_MS:
      g_value_set_uint (value, self->shutdown_timeout_ms);
      break;
    case PROP_HEALTH_ENABLED:
      g_value_set_boolean (value, self->health_enabled);
      break;
    case PROP_PLUGIN_CONTROL_ENABLED:
      g_value_set_boolean (value, self->plugin_control_enabled);
      break;
    case PROP_IDENTITY_ENABLED:
      g_value_set_boolean (value, self->identity_enabled);
      break;
    case PROP_CONTROL_SECRET:
      g_value_set_string (value, self->control_secret);
      break;
    case PROP_CONTROL_ALLOW_UNAUTHENTICATED:
      g_value_set_boolean (value, self->control_allow_unauthenticated);
      break;
    case PROP_SELF_ID:
      g_value_set_string (value, self->self_id);
      break;
    case PROP_SELF_VERSION:
      g_value_set_string (value, self->self_version);
      break;
    case PROP_SERVING:
      g_value_set_boolean (value, self->serving);
      break;
    case PROP_RUNTIME_ID:
      g_value_set_string (value, self->runtime_id);
      break;
    case PROP_RUNTIME_TOKEN:
      g_value_set_string (value, self->runtime_token);
      break;
    case PROP_HOST_URL:
      g_value_set_string (value, self->host_url);
      break;
    case PROP_MAX_RECEIVE_SIZE:
      g_object_get_property (G_OBJECT (self->rpc_server), "max-receive-size", value);
      break;
    case PROP_MAX_SEND_QUEUE_SIZE:
      g_object_get_property (G_OBJECT (self->rpc_server), "max-send-queue-size", value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
set_control_secret (CpServer   *self,
                    const char *secret)
{
  if (secret != NULL && secret[0] == '\0')
    secret = NULL;
  if (g_strcmp0 (self->control_secret, secret) == 0)
    return;
  if (self->control_secret != NULL)
    explicit_bzero (self->control_secret, strlen (self->control_secret));
  g_free (self->control_secret);
  self->control_secret = g_strdup (secret);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONTROL_SECRET]);
}

static void
cp_server_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  CpServer *self = CP_SERVER (object);

  switch (prop_id)
    {
    case PROP_LISTEN_ADDRESS:
      replace_string (&self->listen_address, value);
      break;
    case PROP_MAGIC_COOKIE_KEY:
      replace_string (&self->magic_cookie_key, value);
      break;
    case PROP_MAGIC_COOKIE_VALUE:
      replace_string (&self->magic_cookie_value, value);
      break;
    case PROP_CORE_PROTOCOL_VERSION:
      self->core_protocol_version = g_value_get_int (value);
      break;
    case PROP_APP_PROTOCOL_VERSION:
      self->app_protocol_version = g_value_get_int (value);
      break;
    case PROP_SERVER_METADATA:
      {
        GHashTable *table = g_value_get_boxed (value);
        GHashTableIter iter;
        gpointer k, v;

        g_hash_table_remove_all (self->metadata);
        if (table != NULL)
          {
            g_hash_table_iter_init (&iter, table);
            while (g_hash_table_iter_next (&iter, &k, &v))
              g_hash_table_replace (self->metadata, g_strdup (k), g_strdup (v));
          }
      }
      break;
    case PROP_SHUTDOWN_TIMEOUT_MS:
      self->shutdown_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_HEALTH_ENABLED:
      self->health_enabled = g_value_get_boolean (value);
      break;
    case PROP_PLUGIN_CONTROL_ENABLED:
      self->plugin_control_enabled = g_value_get_boolean (value);
      self->plugin_control_set = TRUE;
      break;
    case PROP_IDENTITY_ENABLED:
      self->identity_enabled = g_value_get_boolean (value);
      break;
    case PROP_CONTROL_SECRET:
      set_control_secret (self, g_value_get_string (value));
      break;
    case PROP_CONTROL_ALLOW_UNAUTHENTICATED:
      self->control_allow_unauthenticated = g_value_get_boolean (value);
      break;
    case PROP_SELF_ID:
      replace_string (&self->self_id, value);
      break;
    case PROP_SELF_VERSION:
      replace_string (&self->self_version, value);
      break;
    case PROP_MAX_RECEIVE_SIZE:
      g_object_set_property (G_OBJECT (self->rpc_server), "max-receive-size", value);
      break;
    case PROP_MAX_SEND_QUEUE_SIZE:
      g_object_set_property (G_OBJECT (self->rpc_server), "max-send-queue-size", value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_server_class_init (CpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;
  const GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = cp_server_dispose;
  object_class->finalize = cp_server_finalize;
  object_class->get_property = cp_server_get_property;
  object_class->set_property = cp_server_set_property;

  /**
   * CpServer:rpc-server:
   *
   * The Connect engine under the server; give it to
   * cp_channel_new_in_process() for an in-process client.
   */
  properties[PROP_RPC_SERVER] =
    g_param_spec_object ("rpc-server", NULL, NULL, CP_TYPE_RPC_SERVER, ro);

  /**
   * CpServer:listen-address:
   *
   * Where cp_server_listen() listens when given no address, and
   * cp_server_run() when neither `--listen` nor the environment says:
   * `HOST:PORT` (port 0 picks a free port) or `unix:/path`. Default
   * `127.0.0.1:0`.
   */
  properties[PROP_LISTEN_ADDRESS] =
    g_param_spec_string ("listen-address", NULL, NULL, NULL, rw);

  /**
   * CpServer:magic-cookie-key:
   *
   * The magic cookie key clients must present. Default
   * %CP_MAGIC_COOKIE_KEY.
   */
  properties[PROP_MAGIC_COOKIE_KEY] =
    g_param_spec_string ("magic-cookie-key", NULL, NULL, CP_MAGIC_COOKIE_KEY, rw);

  /**
   * CpServer:magic-cookie-value:
   *
   * The magic cookie value clients must present. Default
   * %CP_MAGIC_COOKIE_VALUE.
   */
  properties[PROP_MAGIC_COOKIE_VALUE] =
    g_param_spec_string ("magic-cookie-value", NULL, NULL, CP_MAGIC_COOKIE_VALUE, rw);

  /**
   * CpServer:core-protocol-version:
   *
   * The core protocol version (%CP_CORE_PROTOCOL_VERSION); clients with
   * another one fail the handshake with `invalid_argument`.
   */
  properties[PROP_CORE_PROTOCOL_VERSION] =
    g_param_spec_int ("core-protocol-version", NULL, NULL,
                      0, G_MAXINT32, CP_CORE_PROTOCOL_VERSION, rw);

  /**
   * CpServer:app-protocol-version:
   *
   * The application protocol version; clients with another one fail the
   * handshake with `failed_precondition`.
   */
  properties[PROP_APP_PROTOCOL_VERSION] =
    g_param_spec_int ("app-protocol-version", NULL, NULL,
                      0, G_MAXINT32, CP_DEFAULT_APP_PROTOCOL_VERSION, rw);

  /**
   * CpServer:server-metadata: (type GLib.HashTable(utf8,utf8))
   *
   * Extra `server_metadata` of the handshake. The server always adds
   * `server_version` (%CP_SERVER_VERSION) unless this sets it.
   */
  properties[PROP_SERVER_METADATA] =
    g_param_spec_boxed ("server-metadata", NULL, NULL, G_TYPE_HASH_TABLE, rw);

  /**
   * CpServer:shutdown-timeout-ms:
   *
   * How long a graceful shutdown waits for running calls and streams
   * before closing them; 0 waits without limit. Default 30 s.
   */
  properties[PROP_SHUTDOWN_TIMEOUT_MS] =
    g_param_spec_uint ("shutdown-timeout-ms", NULL, NULL,
                       0, G_MAXUINT, CP_DEFAULT_SHUTDOWN_TIMEOUT_MS, rw);

  /**
   * CpServer:health-enabled:
   *
   * Whether the server serves `connectplugin.health.v1.HealthService`,
   * `/healthz` and `/readyz`. Default %TRUE. Read when the server starts.
   */
  properties[PROP_HEALTH_ENABLED] =
    g_param_spec_boolean ("health-enabled", NULL, NULL, TRUE, rw);

  /**
   * CpServer:plugin-control-enabled:
   *
   * Whether the server serves `connectplugin.v1.PluginControl`
   * (GetHealth, Shutdown). Default %FALSE, but cp_server_run() turns it on
   * unless it was set explicitly. Read when the server starts.
   */
  properties[PROP_PLUGIN_CONTROL_ENABLED] =
    g_param_spec_boolean ("plugin-control-enabled", NULL, NULL, FALSE, rw);

  /**
   * CpServer:identity-enabled:
   *
   * Whether the server serves `connectplugin.v1.PluginIdentity`
   * (GetPluginInfo, SetRuntimeIdentity). Default %FALSE. Read when the
   * server starts.
   */
  properties[PROP_IDENTITY_ENABLED] =
    g_param_spec_boolean ("identity-enabled", NULL, NULL, FALSE, rw);

  /**
   * CpServer:control-secret:
   *
   * The secret that every PluginControl and PluginIdentity call must carry
   * as `Authorization: Bearer SECRET` (the scheme's case does not matter,
   * the secret is compared in constant time). Calls without it, or with
   * another one, are answered `unauthenticated` and change nothing.
   *
   * A host that launches a plugin generates one and passes it in the
   * environment variable %CP_CONTROL_SECRET_ENV; the server takes it from
   * there when it starts (unless this property is set) and removes the
   * variable, so that the plugin's children do not inherit it. %NULL or
   * `""`: no secret, and PluginControl and PluginIdentity are refused
   * unless #CpServer:control-allow-unauthenticated is set. The handshake
   * and the health service never need it.
   */
  properties[PROP_CONTROL_SECRET] =
    g_param_spec_string ("control-secret", NULL, NULL, NULL, rw);

  /**
   * CpServer:control-allow-unauthenticated:
   *
   * Whether a server without #CpServer:control-secret serves PluginControl
   * and PluginIdentity to anyone who can reach it (cp_server_run():
   * `--insecure-control`), for hosts that cannot send a secret. Without
   * effect when the server has a secret. Default %FALSE.
   */
  properties[PROP_CONTROL_ALLOW_UNAUTHENTICATED] =
    g_param_spec_boolean ("control-allow-unauthenticated", NULL, NULL, FALSE, rw);

  /**
   * CpServer:self-id:
   *
   * The `self_id` PluginIdentity reports; %NULL for the first plugin's name.
   */
  properties[PROP_SELF_ID] =
    g_param_spec_string ("self-id", NULL, NULL, NULL, rw);

  /**
   * CpServer:self-version:
   *
   * The `self_version` PluginIdentity reports; %NULL for the first
   * plugin's version.
   */
  properties[PROP_SELF_VERSION] =
    g_param_spec_string ("self-version", NULL, NULL, NULL, rw);

  /**
   * CpServer:serving:
   *
   * Whether the server is serving: %TRUE from cp_server_start() until a
   * shutdown begins.
   */
  properties[PROP_SERVING] =
    g_param_spec_boolean ("serving", NULL, NULL, FALSE, ro);

  /**
   * CpServer:runtime-id:
   *
   * The runtime id a host assigned with PluginIdentity.SetRuntimeIdentity.
   */
  properties[PROP_RUNTIME_ID] =
    g_param_spec_string ("runtime-id", NULL, NULL, NULL, ro);

  /**
   * CpServer:runtime-token:
   *
   * The runtime token a host assigned with
   * PluginIdentity.SetRuntimeIdentity (a secret).
   */
  properties[PROP_RUNTIME_TOKEN] =
    g_param_spec_string ("runtime-token", NULL, NULL, NULL, ro);

  /**
   * CpServer:host-url:
   *
   * The host URL given with PluginIdentity.SetRuntimeIdentity.
   */
  properties[PROP_HOST_URL] =
    g_param_spec_string ("host-url", NULL, NULL, NULL, ro);

  /**
   * CpServer:max-receive-size:
   *
   * The largest request message accepted, in bytes: the
   * #CpRpcServer:max-receive-size of #CpServer:rpc-server (default 4 MiB;
   * larger requests fail with `resource_exhausted`).
   */
  properties[PROP_MAX_RECEIVE_SIZE] =
    g_param_spec_uint ("max-receive-size", NULL, NULL, 0, G_MAXUINT, 4 * 1024 * 1024,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpServer:max-send-queue-size:
   *
   * How many response bytes a stream may queue for a client that does not
   * read them: the #CpRpcServer:max-send-queue-size of
   * #CpServer:rpc-server (default 4 MiB).
   */
  properties[PROP_MAX_SEND_QUEUE_SIZE] =
    g_param_spec_uint ("max-send-queue-size", NULL, NULL, 0, G_MAXUINT, 4 * 1024 * 1024,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpServer::shutdown-requested:
   * @server: the server
   * @grace_period_seconds: the grace period the host asked for (0: the
   *   server's own timeout)
   * @reason: the reason given
   *
   * Emitted when a host asks the server to stop through
   * PluginControl.Shutdown; a graceful shutdown follows.
   */
  signals[SIGNAL_SHUTDOWN_REQUESTED] =
    g_signal_new ("shutdown-requested", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_STRING);

  /**
   * CpServer::closed:
   * @server: the server
   *
   * Emitted once, when the server has stopped (after a graceful shutdown
   * or cp_server_close()).
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
cp_server_init (CpServer *self)
{
  self->rpc_server = cp_rpc_server_new ();
  self->health = cp_health_server_new ();
  self->plugins = g_ptr_array_new_with_free_func (g_object_unref);
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->issued = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, runtime_identity_free);
  self->core_protocol_version = CP_CORE_PROTOCOL_VERSION;
  self->app_protocol_version = CP_DEFAULT_APP_PROTOCOL_VERSION;
  self->shutdown_timeout_ms = CP_DEFAULT_SHUTDOWN_TIMEOUT_MS;
  self->health_enabled = TRUE;
  self->health_state = CP_HEALTH_STATE_HEALTHY;
  g_queue_init (&self->shutdown_tasks);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

/**
 * CpServer:
 *
 * Serves plugins: connect-plugin-go's `ServeConfig` as a GObject.
 *
 * Next to the plugins' services (their generated skeletons), a server
 * answers the `connectplugin.v1.HandshakeService`, and, by default, the
 * `connectplugin.health.v1.HealthService` with `/healthz` and `/readyz`;
 * `connectplugin.v1.PluginControl` and `PluginIdentity` are opt-in, and
 * need the bearer secret of #CpServer:control-secret.
 *
 * |[<!-- language="C" -->
 * g_autoptr(CpServer) server = cp_server_new ();
 * g_autoptr(CpPlugin) plugin = cp_plugin_new ("kv", "1.0.0");
 *
 * cp_plugin_add_service (plugin, CP_SKELETON (kv_skeleton));
 * cp_server_add_plugin (server, plugin);
 * return cp_server_run (server, argc, argv);
 * ]|
 *
 * All of its handlers and signals run in the #GMainContext that was the
 * thread-default one when the server was created.
 *
 * Interceptors (cp_server_add_interceptor()) see every RPC call, the
 * built-in services' included: an authenticating interceptor lets the
 * handshake through by its procedure (cp_invocation_get_procedure()) if
 * hosts authenticate after it.
 */

/**
 * cp_server_new:
 *
 * Creates a server with no plugins.
 *
 * Returns: (transfer full): a new #CpServer
 */
CpServer *
cp_server_new (void)
{
  return g_object_new (CP_TYPE_SERVER, NULL);
}

/**
 * cp_server_add_plugin:
 * @server: a #CpServer
 * @plugin: a plugin whose services all have implementations
 *
 * Adds a plugin to serve. Plugins are checked when the server starts
 * (cp_server_start()): duplicate names, two services at one path, services
 * without implementation are errors.
 */
void
cp_server_add_plugin (CpServer *server,
                      CpPlugin *plugin)
{
  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (CP_IS_PLUGIN (plugin));
  g_return_if_fail (!server->started);

  g_ptr_array_add (server->plugins, g_object_ref (plugin));
}

/**
 * cp_server_get_plugins:
 * @server: a #CpServer
 *
 * Gets the plugins added to @server.
 *
 * Returns: (transfer container) (element-type CpPlugin): the plugins
 */
GPtrArray *
cp_server_get_plugins (CpServer *server)
{
  GPtrArray *plugins;

  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  plugins = g_ptr_array_new_full (server->plugins->len, g_object_unref);
  for (guint i = 0; i < server->plugins->len; i++)
    g_ptr_array_add (plugins, g_object_ref (server->plugins->pdata[i]));
  return plugins;
}

/**
 * cp_server_set_metadata:
 * @server: a #CpServer
 * @key: a metadata key
 * @value: (nullable): its value; %NULL removes it
 *
 * Sets one entry of the handshake's `server_metadata` (see
 * #CpServer:server-metadata).
 */
void
cp_server_set_metadata (CpServer   *server,
                        const char *key,
                        const char *value)
{
  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (key != NULL);

  if (value == NULL)
    g_hash_table_remove (server->metadata, key);
  else
    g_hash_table_replace (server->metadata, g_strdup (key), g_strdup (value));
  g_object_notify_by_pspec (G_OBJECT (server), properties[PROP_SERVER_METADATA]);
}

/**
 * cp_server_get_rpc_server:
 * @server: a #CpServer
 *
 * Gets the Connect engine under @server, e.g. for
 * cp_channel_new_in_process() or to add methods of its own.
 *
 * Returns: (transfer none): the #CpRpcServer
 */
CpRpcServer *
cp_server_get_rpc_server (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  return server->rpc_server;
}

/**
 * cp_server_add_interceptor:
 * @server: a #CpServer
 * @interceptor: the interceptor
 *
 * Appends @interceptor to the chain of the server's engine
 * (cp_rpc_server_add_interceptor()): it sees every RPC call before its
 * handler, in the order interceptors were added — the plugins' methods and
 * the built-in ones (handshake, health `Check` and `Watch`, PluginControl,
 * PluginIdentity) alike. The plain HTTP probes `/healthz` and `/readyz`
 * are not RPC calls and are not intercepted. Add interceptors before
 * serving: calls already running keep the chain they started with.
 */
void
cp_server_add_interceptor (CpServer            *server,
                           CpServerInterceptor *interceptor)
{
  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (CP_IS_SERVER_INTERCEPTOR (interceptor));

  cp_rpc_server_add_interceptor (server->rpc_server, interceptor);
}

/**
 * cp_server_start:
 * @server: a #CpServer
 * @error: return location for a #GError
 *
 * Checks the plugins, registers the built-in services and the plugins'
 * skeletons, and marks the server and every plugin service SERVING,
 * without listening: enough for an in-process client on
 * #CpServer:rpc-server. cp_server_listen() calls it. Does nothing when the
 * server was started already.
 *
 * Errors (%CP_ERROR): `invalid_argument` for duplicate plugin names and
 * service path conflicts, `unimplemented` for a service without
 * implementation, `failed_precondition` after a shutdown.
 *
 * Returns: %TRUE on success
 */
gboolean
cp_server_start (CpServer  *server,
                 GError   **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (server->shutting_down || server->closed)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                           "the server was shut down");
      return FALSE;
    }
  if (server->started)
    return TRUE;

  if (!validate_plugins (server, error))
    return FALSE;

  take_control_secret_from_env (server);
  add_builtin (server, CP_PROCEDURE_HANDSHAKE, CP_METHOD_UNARY,
               CP_TYPE_HANDSHAKE_REQUEST, CP_TYPE_HANDSHAKE_RESPONSE, handle_handshake);
  if (server->health_enabled)
    {
      cp_health_server_register (server->health, server->rpc_server);
      cp_rpc_server_add_plain_handler (server->rpc_server, CP_HEALTHZ_PATH,
                                       handle_healthz, NULL, NULL);
      cp_rpc_server_add_plain_handler (server->rpc_server, CP_READYZ_PATH,
                                       handle_readyz, server, NULL);
    }
  if (server->plugin_control_enabled)
    {
      add_builtin (server, CP_PROCEDURE_CONTROL_GET_HEALTH, CP_METHOD_UNARY,
                   CP_TYPE_GET_HEALTH_REQUEST, CP_TYPE_GET_HEALTH_RESPONSE, handle_get_health);
      add_builtin (server, CP_PROCEDURE_CONTROL_SHUTDOWN, CP_METHOD_UNARY,
                   CP_TYPE_SHUTDOWN_REQUEST, CP_TYPE_SHUTDOWN_RESPONSE, handle_shutdown);
    }
  if (server->identity_enabled)
    {
      add_builtin (server, CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO, CP_METHOD_UNARY,
                   CP_TYPE_GET_PLUGIN_INFO_REQUEST, CP_TYPE_GET_PLUGIN_INFO_RESPONSE,
                   handle_get_plugin_info);
      add_builtin (server, CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY, CP_METHOD_UNARY,
                   CP_TYPE_SET_RUNTIME_IDENTITY_REQUEST, CP_TYPE_SET_RUNTIME_IDENTITY_RESPONSE,
                   handle_set_runtime_identity);
    }

  for (guint i = 0; i < server->plugins->len; i++)
    {
      CpPlugin *plugin = server->plugins->pdata[i];
      g_autoptr(GPtrArray) descriptors = cp_plugin_get_descriptors (plugin);

      for (guint j = 0; j < descriptors->len; j++)
        {
          CpSkeleton *skeleton = cp_plugin_get_implementation (plugin, descriptors->pdata[j]);

          if (!cp_skeleton_export (skeleton, server->rpc_server, error))
            {
              g_prefix_error (error, "plugin \"%s\": ", cp_plugin_get_name (plugin));
              return FALSE;
            }
        }
    }

  server->started = TRUE;
  mark_all_serving (server);
  return TRUE;
}

/**
 * cp_server_listen:
 * @server: a #CpServer
 * @address: (nullable): `HOST:PORT` (port 0 picks a free port) or
 *   `unix:/path`; %NULL for #CpServer:listen-address
 * @error: return location for a #GError
 *
 * Starts the server (cp_server_start()) if needed and serves on @address.
 * May be called several times (e.g. TCP and a unix socket).
 *
 * Returns: (transfer full): the URL served (`http://127.0.0.1:41234`,
 *   `unix:/path`), or %NULL on error
 */
char *
cp_server_listen (CpServer    *server,
                  const char  *address,
                  GError     **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (address == NULL)
    address = server->listen_address != NULL ? server->listen_address : "127.0.0.1:0";

  if (!cp_server_start (server, error))
    return NULL;
  return cp_rpc_server_listen (server->rpc_server, address, error);
}

/**
 * cp_server_get_url:
 * @server: a #CpServer
 *
 * Gets the URL of the first address the server listens on.
 *
 * Returns: (transfer none) (nullable): the URL, or %NULL before
 *   cp_server_listen()
 */
const char *
cp_server_get_url (CpServer *server)
{
  const char * const *urls;

  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  urls = cp_rpc_server_get_urls (server->rpc_server);
  return urls != NULL ? urls[0] : NULL;
}

/**
 * cp_server_get_serving:
 * @server: a #CpServer
 *
 * Gets #CpServer:serving.
 *
 * Returns: whether the server is serving
 */
gboolean
cp_server_get_serving (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);
  return server->serving;
}

/**
 * cp_server_set_serving_status:
 * @server: a #CpServer
 * @service: a service name (`kv.v1.KVService`), or `""` for the whole server
 * @status: its status
 *
 * Sets a status of the health service; `Watch` streams of @service hear of
 * a change. `/readyz` follows the status of `""`. Ignored once a shutdown
 * has begun (everything is NOT_SERVING then).
 */
void
cp_server_set_serving_status (CpServer        *server,
                              const char      *service,
                              CpServingStatus  status)
{
  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (service != NULL);

  cp_health_server_set_status (server->health, service, status);
}

/**
 * cp_server_get_serving_status:
 * @server: a #CpServer
 * @service: a service name, or `""` for the whole server
 *
 * Gets a status of the health service.
 *
 * Returns: the status; %CP_SERVING_STATUS_SERVICE_UNKNOWN for names the
 *   health service does not know
 */
CpServingStatus
cp_server_get_serving_status (CpServer   *server,
                              const char *service)
{
  g_return_val_if_fail (CP_IS_SERVER (server), CP_SERVING_STATUS_SERVICE_UNKNOWN);
  g_return_val_if_fail (service != NULL, CP_SERVING_STATUS_SERVICE_UNKNOWN);

  return cp_health_server_get_status (server->health, service);
}

/**
 * cp_server_set_health:
 * @server: a #CpServer
 * @state: the plugin's own health
 * @reason: (nullable): why, for degraded and unhealthy states
 * @unavailable_dependencies: (nullable) (array zero-terminated=1): the
 *   services the plugin misses
 *
 * Sets what PluginControl.GetHealth answers. Default: healthy.
 */
void
cp_server_set_health (CpServer           *server,
                      CpHealthState       state,
                      const char         *reason,
                      const char * const *unavailable_dependencies)
{
  g_return_if_fail (CP_IS_SERVER (server));

  server->health_state = state;
  g_free (server->health_reason);
  server->health_reason = g_strdup (reason);
  g_strfreev (server->unavailable_dependencies);
  server->unavailable_dependencies = g_strdupv ((GStrv) unavailable_dependencies);
}

/**
 * cp_server_get_runtime_id:
 * @server: a #CpServer
 *
 * Gets #CpServer:runtime-id.
 *
 * Returns: (transfer none) (nullable): the runtime id a host assigned
 */
const char *
cp_server_get_runtime_id (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  return server->runtime_id;
}

/**
 * cp_server_get_runtime_token:
 * @server: a #CpServer
 *
 * Gets #CpServer:runtime-token.
 *
 * Returns: (transfer none) (nullable): the runtime token a host assigned
 */
const char *
cp_server_get_runtime_token (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  return server->runtime_token;
}

/**
 * cp_server_get_host_url:
 * @server: a #CpServer
 *
 * Gets #CpServer:host-url.
 *
 * Returns: (transfer none) (nullable): the host URL a host gave
 */
const char *
cp_server_get_host_url (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  return server->host_url;
}

/**
 * cp_server_shutdown_async:
 * @server: a #CpServer
 * @cancellable: (nullable): cancel to stop waiting and close at once
 * @callback: (scope async): called when the server has stopped
 * @user_data: (closure): data for @callback
 *
 * Stops @server gracefully: every health status becomes NOT_SERVING (Watch
 * streams hear it and end), the server stops accepting connections, running
 * calls and streams may finish for up to #CpServer:shutdown-timeout-ms,
 * then everything is closed and #CpServer::closed is emitted.
 */
void
cp_server_shutdown_async (CpServer            *server,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  shutdown_with_timeout (server, server->shutdown_timeout_ms, cancellable, callback, user_data);
}

/**
 * cp_server_shutdown_finish:
 * @server: a #CpServer
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes cp_server_shutdown_async(). The server is closed either way.
 *
 * Returns: %TRUE when every running call finished in time; %FALSE with
 *   %G_IO_ERROR_TIMED_OUT when some had to be cut
 */
gboolean
cp_server_shutdown_finish (CpServer      *server,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, server), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * cp_server_close:
 * @server: a #CpServer
 *
 * Stops @server at once: health NOT_SERVING, every connection closed,
 * running calls cancelled. Emits #CpServer::closed (once).
 */
void
cp_server_close (CpServer *server)
{
  g_return_if_fail (CP_IS_SERVER (server));

  if (!g_queue_is_empty (&server->shutdown_tasks))
    set_shutdown_error (server, G_IO_ERROR_CLOSED,
                        "the server was closed before running calls finished");
  finish_close (server);
}

/* ------------------------------------------------------------------ */
/* cp_server_run                                                        */

typedef struct {
  CpServer *server;
  GMainLoop *loop;
  guint n_signals;
} RunState;

static gboolean
on_unix_signal (gpointer user_data)
{
  RunState *state = user_data;

  /* First signal: graceful; second: now. */
  if (state->n_signals++ == 0)
    cp_server_shutdown_async (state->server, NULL, NULL, NULL);
  else
    cp_server_close (state->server);
  return G_SOURCE_CONTINUE;
}

static void
on_run_closed (CpServer *server,
               gpointer  user_data)
{
  RunState *state = user_data;

  g_main_loop_quit (state->loop);
}

static char *
pick_listen_address (CpServer   *self,
                     const char *option)
{
  const char *env;

  if (option != NULL && option[0] != '\0')
    return g_strdup (option);
  env = g_getenv (CP_LISTEN_ENV);
  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  env = g_getenv ("PORT");
  if (env != NULL && env[0] != '\0')
    return g_strdup_printf ("127.0.0.1:%s", env);
  if (self->listen_address != NULL)
    return g_strdup (self->listen_address);
  return g_strdup ("127.0.0.1:0");
}

/**
 * cp_server_run:
 * @server: a #CpServer
 * @argc: the program's argument count
 * @argv: (array length=argc) (nullable): the program's arguments
 *
 * Runs a plugin executable: the whole of its `main ()` after the plugins
 * have been added. It takes the address to listen on from `--listen ADDR`,
 * else the environment variable `CONNECTPLUGIN_LISTEN`, else `PORT`
 * (`127.0.0.1:$PORT`), else #CpServer:listen-address, else `127.0.0.1:0`;
 * listens; prints the URL it serves as the first line of standard output;
 * and runs the thread-default main loop until the server stops. `SIGTERM`
 * and `SIGINT` start a graceful shutdown (a second one closes at once), so
 * does PluginControl.Shutdown, which this function enables unless
 * #CpServer:plugin-control-enabled was set explicitly.
 *
 * PluginControl and PluginIdentity calls must carry the secret that the
 * launching host gave in the environment variable `CONNECTPLUGIN_CONTROL_SECRET`
 * (see #CpServer:control-secret); a plugin started without one refuses
 * them, unless it is run with `--insecure-control`
 * (#CpServer:control-allow-unauthenticated), for hosts that cannot send a
 * secret.
 *
 * Returns: the exit status for `main ()`: 0 after a clean shutdown, 1 on
 *   errors (reported on standard error), 2 for bad arguments
 */
int
cp_server_run (CpServer  *server,
               int        argc,
               char     **argv)
{
  g_autofree char *listen_option = NULL;
  g_autofree char *address = NULL;
  g_autofree char *url = NULL;
  gboolean insecure_control = FALSE;
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainContext) context = NULL;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen_option,
      "Where to listen: HOST:PORT or unix:PATH", "ADDR" },
    { "insecure-control", 0, 0, G_OPTION_ARG_NONE, &insecure_control,
      "Without " CP_CONTROL_SECRET_ENV ", serve PluginControl and PluginIdentity "
      "to anyone who can connect", NULL },
    G_OPTION_ENTRY_NULL
  };
  RunState state = { server, NULL, 0 };
  GSource *sigterm_source, *sigint_source;
  gulong closed_id;

  g_return_val_if_fail (CP_IS_SERVER (server), 1);

  /* Parse a copy: the caller's argv stays as it was. */
  args = g_new0 (char *, (gsize) MAX (argc, 0) + 1);
  for (int i = 0; argv != NULL && i < argc; i++)
    args[i] = g_strdup (argv[i]);
  options = g_option_context_new ("- connectplugin plugin");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse_strv (options, &args, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  if (!server->plugin_control_set)
    server->plugin_control_enabled = TRUE;
  if (insecure_control)
    g_object_set (server, "control-allow-unauthenticated", TRUE, NULL);

  /* Signals are caught from before the address is announced: a host may
   * send SIGTERM as soon as it has read it. */
  context = g_main_context_ref_thread_default ();
  state.loop = g_main_loop_new (context, FALSE);
  closed_id = g_signal_connect (server, "closed", G_CALLBACK (on_run_closed), &state);
  sigterm_source = g_unix_signal_source_new (SIGTERM);
  g_source_set_callback (sigterm_source, on_unix_signal, &state, NULL);
  g_source_attach (sigterm_source, context);
  sigint_source = g_unix_signal_source_new (SIGINT);
  g_source_set_callback (sigint_source, on_unix_signal, &state, NULL);
  g_source_attach (sigint_source, context);

  address = pick_listen_address (server, listen_option);
  url = cp_server_listen (server, address, &error);
  if (url == NULL)
    g_printerr ("cannot serve on %s: %s\n", address, error->message);
  else
    {
      /* The first line of stdout: the host reads it to find us. */
      fprintf (stdout, "%s\n", url);
      fflush (stdout);

      if (!server->closed)
        g_main_loop_run (state.loop);
    }

  g_source_destroy (sigterm_source);
  g_source_unref (sigterm_source);
  g_source_destroy (sigint_source);
  g_source_unref (sigint_source);
  g_signal_handler_disconnect (server, closed_id);
  g_main_loop_unref (state.loop);

  if (url == NULL)
    return 1;
  if (g_str_has_prefix (url, "unix:"))
    (void) g_unlink (url + strlen ("unix:"));
  return 0;
}

/* ------------------------------------------------------------------ */
/* Private API                                                          */

gboolean
cp_server_check_runtime_token (CpServer   *server,
                               const char *runtime_id,
                               const char *token)
{
  RuntimeIdentity *identity;

  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);

  if (runtime_id == NULL || token == NULL)
    return FALSE;
  identity = g_hash_table_lookup (server->issued, runtime_id);
  if (identity == NULL || identity->expires <= g_get_monotonic_time ())
    return FALSE;
  return cp_token_equal (token, identity->token);
}

const char *
cp_server_lookup_runtime_self_id (CpServer   *server,
                                  const char *runtime_id)
{
  RuntimeIdentity *identity;

  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  identity = runtime_id != NULL ? g_hash_table_lookup (server->issued, runtime_id) : NULL;
  return identity != NULL ? identity->self_id : NULL;
}
