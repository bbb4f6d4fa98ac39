/* cp-server.c: serves plugins and the built-in plugin-system services
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connect-plugin-go's ServeConfig as a GObject. The built-in services follow
 * docs/wire-contract.md: HandshakeService (always, cp-server-handshake.c),
 * HealthService with /healthz and /readyz (health-enabled, here and in
 * cp-health-server.c), PluginControl and PluginIdentity (opt-in,
 * cp-server-control.c). Plugins' skeletons are exported on the same
 * CpRpcServer. Shutdown is in cp-server-shutdown.c, cp_server_run() in
 * cp-server-run.c.
 */
#include "cp-server-state-private.h"

#include <string.h>

#include "cp-error.h"

GParamSpec *cp_server_properties[N_PROPS];
guint cp_server_signals[N_SIGNALS];

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

void
cp_server_set_serving (CpServer *self,
                       gboolean  serving)
{
  if (self->serving == serving)
    return;
  self->serving = serving;
  g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_SERVING]);
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
/* /metrics (CpServer:metrics-enabled)                                  */

/* The plugin's own gauges, after the engine's families. */
static void
collect_plugin_metrics (GString  *out,
                        gpointer  user_data)
{
  static const struct {
    CpHealthState state;
    const char *label;
  } states[] = {
    { CP_HEALTH_STATE_HEALTHY, "healthy" },
    { CP_HEALTH_STATE_DEGRADED, "degraded" },
    { CP_HEALTH_STATE_UNHEALTHY, "unhealthy" },
  };
  CpServer *self = user_data;
  gboolean ready = self->serving &&
                   cp_health_server_get_status (self->health, "") == CP_SERVING_STATUS_SERVING;

  cp_metrics_write_family (out, "connectplugin_plugin_health", "gauge",
                           "The health the plugin reports (PluginControl.GetHealth): 1 for "
                           "the current state, 0 for the others.");
  for (guint i = 0; i < G_N_ELEMENTS (states); i++)
    g_string_append_printf (out, "connectplugin_plugin_health{state=\"%s\"} %d\n",
                            states[i].label, self->health_state == states[i].state);
  cp_metrics_write_family (out, "connectplugin_plugin_ready", "gauge",
                           "1 when the server is serving and its overall health status is "
                           "SERVING (what /readyz answers with 200), else 0.");
  g_string_append_printf (out, "connectplugin_plugin_ready %d\n", ready);
}

static void
start_metrics (CpServer *self)
{
  CpMetrics *metrics;

  g_object_set (self->rpc_server, "metrics-enabled", TRUE, NULL);
  metrics = cp_rpc_server_get_metrics (self->rpc_server);
  /* Unowned: the engine drops its collectors when it is disposed, which
   * our dispose does. */
  cp_metrics_add_collector (metrics, collect_plugin_metrics, self, NULL);
}

/* ------------------------------------------------------------------ */
/* Start: validation, registration                                      */

void
cp_server_add_builtin (CpServer        *self,
                       const char      *procedure,
                       CpMethodKind     kind,
                       GType            input,
                       GType            output,
                       CpMethodHandler  handler)
{
  g_autoptr(CpMethodInfo) info = cp_method_info_new (procedure, kind, input, output);

  /* Unowned: the routes go with the engine, which dispose takes down. */
  cp_rpc_server_add_home_method (self->rpc_server, info, handler, self, NULL);
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
  cp_server_set_serving (self, TRUE);
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
  cp_server_host_link_stop (self);
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
  g_clear_object (&self->host_channel);
  g_clear_object (&self->host_cancellable);
  g_clear_pointer (&self->host_provides, g_ptr_array_unref);
  g_clear_pointer (&self->registrations, g_ptr_array_unref);

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
    case PROP_TLS_CERTIFICATE:
      g_object_get_property (G_OBJECT (self->rpc_server), "tls-certificate", value);
      break;
    case PROP_TLS_DATABASE:
      g_object_get_property (G_OBJECT (self->rpc_server), "tls-database", value);
      break;
    case PROP_TLS_AUTHENTICATION_MODE:
      g_object_get_property (G_OBJECT (self->rpc_server), "tls-authentication-mode", value);
      break;
    case PROP_HOST_REGISTERED:
      g_value_set_boolean (value, self->host_registered);
      break;
    case PROP_HOST_TIMEOUT_MS:
      g_value_set_uint (value, self->host_timeout_ms);
      break;
    case PROP_GRANT_RENEW_INTERVAL_MS:
      g_value_set_uint (value, self->grant_renew_interval_ms);
      break;
    case PROP_MAX_SEND_QUEUE_SIZE:
      g_object_get_property (G_OBJECT (self->rpc_server), "max-send-queue-size", value);
      break;
    case PROP_N_WORKERS:
      g_object_get_property (G_OBJECT (self->rpc_server), "n-workers", value);
      break;
    case PROP_METRICS_ENABLED:
      g_value_set_boolean (value, self->metrics_enabled);
      break;
    case PROP_REFLECTION_ENABLED:
      g_value_set_boolean (value, self->reflection_enabled);
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
  g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_CONTROL_SECRET]);
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
    case PROP_TLS_CERTIFICATE:
      g_object_set_property (G_OBJECT (self->rpc_server), "tls-certificate", value);
      break;
    case PROP_TLS_DATABASE:
      g_object_set_property (G_OBJECT (self->rpc_server), "tls-database", value);
      break;
    case PROP_TLS_AUTHENTICATION_MODE:
      g_object_set_property (G_OBJECT (self->rpc_server), "tls-authentication-mode", value);
      break;
    case PROP_HOST_URL:
      if (g_strcmp0 (self->host_url, g_value_get_string (value)) != 0)
        {
          replace_string (&self->host_url, value);
          g_clear_object (&self->host_channel);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_HOST_TIMEOUT_MS:
      self->host_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_GRANT_RENEW_INTERVAL_MS:
      self->grant_renew_interval_ms = g_value_get_uint (value);
      break;
    case PROP_MAX_SEND_QUEUE_SIZE:
      g_object_set_property (G_OBJECT (self->rpc_server), "max-send-queue-size", value);
      break;
    case PROP_N_WORKERS:
      g_object_set_property (G_OBJECT (self->rpc_server), "n-workers", value);
      break;
    case PROP_METRICS_ENABLED:
      if (self->metrics_enabled != g_value_get_boolean (value))
        {
          self->metrics_enabled = g_value_get_boolean (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_REFLECTION_ENABLED:
      if (self->reflection_enabled != g_value_get_boolean (value))
        {
          self->reflection_enabled = g_value_get_boolean (value);
          g_object_notify_by_pspec (object, pspec);
        }
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
   * [ctor@ConnectPlugin.Channel.new_in_process] for an in-process client.
   */
  cp_server_properties[PROP_RPC_SERVER] =
    g_param_spec_object ("rpc-server", NULL, NULL, CP_TYPE_RPC_SERVER, ro);

  /**
   * CpServer:listen-address:
   *
   * Where [method@ConnectPlugin.Server.listen] listens when given no address, and
   * [method@ConnectPlugin.Server.run] when neither `--listen` nor the environment says:
   * `HOST:PORT` (port 0 picks a free port) or `unix:/path`. Default
   * `127.0.0.1:0`.
   */
  cp_server_properties[PROP_LISTEN_ADDRESS] =
    g_param_spec_string ("listen-address", NULL, NULL, NULL, rw);

  /**
   * CpServer:magic-cookie-key:
   *
   * The magic cookie key clients must present. Default
   * [const@ConnectPlugin.MAGIC_COOKIE_KEY].
   */
  cp_server_properties[PROP_MAGIC_COOKIE_KEY] =
    g_param_spec_string ("magic-cookie-key", NULL, NULL, CP_MAGIC_COOKIE_KEY, rw);

  /**
   * CpServer:magic-cookie-value:
   *
   * The magic cookie value clients must present. Default
   * [const@ConnectPlugin.MAGIC_COOKIE_VALUE].
   */
  cp_server_properties[PROP_MAGIC_COOKIE_VALUE] =
    g_param_spec_string ("magic-cookie-value", NULL, NULL, CP_MAGIC_COOKIE_VALUE, rw);

  /**
   * CpServer:core-protocol-version:
   *
   * The core protocol version ([const@ConnectPlugin.CORE_PROTOCOL_VERSION]); clients with
   * another one fail the handshake with `invalid_argument`.
   */
  cp_server_properties[PROP_CORE_PROTOCOL_VERSION] =
    g_param_spec_int ("core-protocol-version", NULL, NULL,
                      0, G_MAXINT32, CP_CORE_PROTOCOL_VERSION, rw);

  /**
   * CpServer:app-protocol-version:
   *
   * The application protocol version; clients with another one fail the
   * handshake with `failed_precondition`.
   */
  cp_server_properties[PROP_APP_PROTOCOL_VERSION] =
    g_param_spec_int ("app-protocol-version", NULL, NULL,
                      0, G_MAXINT32, CP_DEFAULT_APP_PROTOCOL_VERSION, rw);

  /**
   * CpServer:server-metadata: (type GLib.HashTable(utf8,utf8))
   *
   * Extra `server_metadata` of the handshake. The server always adds
   * `server_version` ([const@ConnectPlugin.SERVER_VERSION]) unless this sets it.
   */
  cp_server_properties[PROP_SERVER_METADATA] =
    g_param_spec_boxed ("server-metadata", NULL, NULL, G_TYPE_HASH_TABLE, rw);

  /**
   * CpServer:shutdown-timeout-ms:
   *
   * How long a graceful shutdown waits for running calls and streams
   * before closing them; 0 waits without limit. Default 30 s.
   */
  cp_server_properties[PROP_SHUTDOWN_TIMEOUT_MS] =
    g_param_spec_uint ("shutdown-timeout-ms", NULL, NULL,
                       0, G_MAXUINT, CP_DEFAULT_SHUTDOWN_TIMEOUT_MS, rw);

  /**
   * CpServer:health-enabled:
   *
   * Whether the server serves `connectplugin.health.v1.HealthService`,
   * `/healthz` and `/readyz`. Default %TRUE. Read when the server starts.
   */
  cp_server_properties[PROP_HEALTH_ENABLED] =
    g_param_spec_boolean ("health-enabled", NULL, NULL, TRUE, rw);

  /**
   * CpServer:plugin-control-enabled:
   *
   * Whether the server serves `connectplugin.v1.PluginControl`
   * (GetHealth, Shutdown). Default %FALSE, but [method@ConnectPlugin.Server.run] turns it on
   * unless it was set explicitly. Read when the server starts.
   */
  cp_server_properties[PROP_PLUGIN_CONTROL_ENABLED] =
    g_param_spec_boolean ("plugin-control-enabled", NULL, NULL, FALSE, rw);

  /**
   * CpServer:identity-enabled:
   *
   * Whether the server serves `connectplugin.v1.PluginIdentity`
   * (GetPluginInfo, SetRuntimeIdentity). Default %FALSE. Read when the
   * server starts.
   */
  cp_server_properties[PROP_IDENTITY_ENABLED] =
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
   * environment variable [const@ConnectPlugin.CONTROL_SECRET_ENV]; the server takes it from
   * there when it starts (unless this property is set) and removes the
   * variable, so that the plugin's children do not inherit it. %NULL or
   * `""`: no secret, and PluginControl and PluginIdentity are refused
   * unless [property@ConnectPlugin.Server:control-allow-unauthenticated] is set. The handshake
   * and the health service never need it.
   */
  cp_server_properties[PROP_CONTROL_SECRET] =
    g_param_spec_string ("control-secret", NULL, NULL, NULL, rw);

  /**
   * CpServer:control-allow-unauthenticated:
   *
   * Whether a server without [property@ConnectPlugin.Server:control-secret] serves PluginControl
   * and PluginIdentity to anyone who can reach it ([method@ConnectPlugin.Server.run]:
   * `--insecure-control`), for hosts that cannot send a secret. Without
   * effect when the server has a secret. Default %FALSE.
   */
  cp_server_properties[PROP_CONTROL_ALLOW_UNAUTHENTICATED] =
    g_param_spec_boolean ("control-allow-unauthenticated", NULL, NULL, FALSE, rw);

  /**
   * CpServer:self-id:
   *
   * The `self_id` PluginIdentity reports; %NULL for the first plugin's name.
   */
  cp_server_properties[PROP_SELF_ID] =
    g_param_spec_string ("self-id", NULL, NULL, NULL, rw);

  /**
   * CpServer:self-version:
   *
   * The `self_version` PluginIdentity reports; %NULL for the first
   * plugin's version.
   */
  cp_server_properties[PROP_SELF_VERSION] =
    g_param_spec_string ("self-version", NULL, NULL, NULL, rw);

  /**
   * CpServer:serving:
   *
   * Whether the server is serving: %TRUE from [method@ConnectPlugin.Server.start] until a
   * shutdown begins.
   */
  cp_server_properties[PROP_SERVING] =
    g_param_spec_boolean ("serving", NULL, NULL, FALSE, ro);

  /**
   * CpServer:runtime-id:
   *
   * The runtime id a host assigned: with PluginIdentity.SetRuntimeIdentity,
   * or in answer to the server's own handshake with
   * [property@ConnectPlugin.Server:host-url].
   */
  cp_server_properties[PROP_RUNTIME_ID] =
    g_param_spec_string ("runtime-id", NULL, NULL, NULL, ro);

  /**
   * CpServer:runtime-token:
   *
   * The runtime token a host assigned with
   * PluginIdentity.SetRuntimeIdentity or the server's own handshake (a
   * secret).
   */
  cp_server_properties[PROP_RUNTIME_TOKEN] =
    g_param_spec_string ("runtime-token", NULL, NULL, NULL, ro);

  /**
   * CpServer:host-url:
   *
   * The URL of the plugin host this server links to: set it (or the
   * `HOST_URL` environment variable read by [method@ConnectPlugin.Server.run],
   * connect-plugin-go's convention) before the server listens, or let a
   * host give it with PluginIdentity.SetRuntimeIdentity (managed mode).
   *
   * Once the server listens with a host URL and a self id
   * ([property@ConnectPlugin.Server:self-id], else the first plugin's name), it
   * handshakes with the host for a runtime identity, registers every
   * service its plugins provide ([method@ConnectPlugin.Plugin.add_provides])
   * with the metadata `base_url` = [method@ConnectPlugin.Server.get_url],
   * reports its health ([method@ConnectPlugin.Server.set_health], and again on
   * every change) and unregisters when it shuts down. In managed mode the
   * identity given is used and there is no handshake. Calls to the host
   * carry `X-Plugin-Runtime-ID` and `Authorization: Bearer <runtime
   * token>`; [property@ConnectPlugin.Server:host-registered] and
   * [signal@ConnectPlugin.Server::host-link-failed] tell how it went.
   */
  cp_server_properties[PROP_HOST_URL] =
    g_param_spec_string ("host-url", NULL, NULL, NULL, rw);

  /**
   * CpServer:host-registered:
   *
   * Whether the server is registered with its host: %TRUE once every
   * provided service is registered and the health reported, %FALSE again
   * when the server shuts down. See [property@ConnectPlugin.Server:host-url].
   */
  cp_server_properties[PROP_HOST_REGISTERED] =
    g_param_spec_boolean ("host-registered", NULL, NULL, FALSE, ro);

  /**
   * CpServer:host-timeout-ms:
   *
   * The timeout of each call to the host in milliseconds (handshake,
   * registration, health reports, discovery, capability requests, and the
   * unregistration at shutdown, which a host that is gone therefore
   * delays by at most this much). By default 10000 (10 s, the handshake
   * timeout of the wire contract). A host that is unavailable is tried
   * up to 5 times, 100 ms apart doubling, before the link fails.
   */
  cp_server_properties[PROP_HOST_TIMEOUT_MS] =
    g_param_spec_uint ("host-timeout-ms", NULL, NULL, 1, G_MAXUINT, 10000, rw);

  /**
   * CpServer:grant-renew-interval-ms:
   *
   * How often a capability grant
   * ([method@ConnectPlugin.Server.request_capability_async]) is renewed, in
   * milliseconds; 0 never renews. By default 3000000 (50 minutes): a
   * grant message carries no expiry, and hosts keep a grant for one hour
   * by default. Applies to grants requested after it is set.
   */
  cp_server_properties[PROP_GRANT_RENEW_INTERVAL_MS] =
    g_param_spec_uint ("grant-renew-interval-ms", NULL, NULL, 0, G_MAXUINT, 50 * 60 * 1000, rw);

  /**
   * CpServer:max-receive-size:
   *
   * The largest request message accepted, in bytes: the
   * [property@ConnectPlugin.RpcServer:max-receive-size] of [property@ConnectPlugin.Server:rpc-server] (default 4 MiB;
   * larger requests fail with `resource_exhausted`).
   */
  cp_server_properties[PROP_MAX_RECEIVE_SIZE] =
    g_param_spec_uint ("max-receive-size", NULL, NULL, 0, G_MAXUINT, 4 * 1024 * 1024,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpServer:max-send-queue-size:
   *
   * How many response bytes a stream may queue for a client that does not
   * read them: the [property@ConnectPlugin.RpcServer:max-send-queue-size] of
   * [property@ConnectPlugin.Server:rpc-server] (default 4 MiB).
   */
  cp_server_properties[PROP_MAX_SEND_QUEUE_SIZE] =
    g_param_spec_uint ("max-send-queue-size", NULL, NULL, 0, G_MAXUINT, 4 * 1024 * 1024,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpServer:n-workers:
   *
   * How many worker threads serve the connections: the
   * [property@ConnectPlugin.RpcServer:n-workers] of its engine (`--workers`
   * of [method@ConnectPlugin.Server.run]). Default 1, right for a plugin:
   * small and predictable, every handler in the server's context. With
   * more, the plugins' handlers are called concurrently on the worker
   * threads, each call in its worker's [struct@GLib.MainContext], and
   * must be thread-safe; 0 means one per CPU. Set it before the server
   * listens.
   *
   * The built-in services (handshake, health, PluginControl,
   * PluginIdentity, reflection), `/healthz` and `/readyz` and the
   * server's signals stay in the server's own context: their calls are
   * relayed there from the worker that received them.
   */
  cp_server_properties[PROP_N_WORKERS] =
    g_param_spec_uint ("n-workers", NULL, NULL, 0, 1024, 1,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpServer:tls-certificate:
   *
   * The server's certificate, with its private key: when set before the
   * server listens, TCP listeners speak TLS and the URL is `https://`
   * ([property@ConnectPlugin.RpcServer:tls-certificate]; from files:
   * [method@ConnectPlugin.Server.set_tls_files], `--tls-cert` and
   * `--tls-key` of [method@ConnectPlugin.Server.run]).
   */
  cp_server_properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpServer:tls-database:
   *
   * The CAs that client certificates must chain to
   * ([property@ConnectPlugin.RpcServer:tls-database]; `--tls-ca`).
   */
  cp_server_properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpServer:tls-authentication-mode:
   *
   * Whether clients must present a certificate valid for
   * [property@ConnectPlugin.Server:tls-database] (mutual TLS;
   * [property@ConnectPlugin.RpcServer:tls-authentication-mode];
   * `--tls-require-client-cert` sets %G_TLS_AUTHENTICATION_REQUIRED).
   */
  cp_server_properties[PROP_TLS_AUTHENTICATION_MODE] =
    g_param_spec_enum ("tls-authentication-mode", NULL, NULL,
                       G_TYPE_TLS_AUTHENTICATION_MODE, G_TLS_AUTHENTICATION_NONE,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpServer:metrics-enabled:
   *
   * Whether the server counts its calls and serves `/metrics` in the
   * Prometheus text format ([method@ConnectPlugin.Server.run]: `--metrics`).
   * Default %FALSE: `/metrics` is then `404` and calls cost nothing more.
   * Read when the server starts ([method@ConnectPlugin.Server.start]).
   *
   * It turns on [property@ConnectPlugin.RpcServer:metrics-enabled] of
   * [property@ConnectPlugin.Server:rpc-server] (the calls of every
   * service, built-in ones included, and the connections; see there) and
   * adds the plugin's own gauges: `connectplugin_plugin_health{state}`
   * (1 for the health set with [method@ConnectPlugin.Server.set_health])
   * and `connectplugin_plugin_ready` (what `/readyz` says). Like `/healthz`,
   * `/metrics` is plain HTTP: interceptors do not see it, and anyone who
   * can connect may read it.
   */
  cp_server_properties[PROP_METRICS_ENABLED] =
    g_param_spec_boolean ("metrics-enabled", NULL, NULL, FALSE, rw);

  /**
   * CpServer:reflection-enabled:
   *
   * Whether the server answers gRPC server reflection
   * (`grpc.reflection.v1.ServerReflection/ServerReflectionInfo`, and the
   * same under `grpc.reflection.v1alpha`), over Connect like any method:
   * it lists the plugins' services and answers with the descriptors of
   * their `.proto` files, which the generated code compiles in
   * ([method@ConnectPlugin.ServiceDescriptor.get_file_descriptor_set]), so
   * that tools need no schema file. Off by default (it tells whoever can
   * connect what the server serves); `--reflection` with
   * [method@ConnectPlugin.Server.run]. Read when the server starts.
   */
  cp_server_properties[PROP_REFLECTION_ENABLED] =
    g_param_spec_boolean ("reflection-enabled", NULL, NULL, FALSE, rw);

  g_object_class_install_properties (object_class, N_PROPS, cp_server_properties);

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
  cp_server_signals[SIGNAL_SHUTDOWN_REQUESTED] =
    g_signal_new ("shutdown-requested", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_STRING);

  /**
   * CpServer::closed:
   * @server: the server
   *
   * Emitted once, when the server has stopped (after a graceful shutdown
   * or [method@ConnectPlugin.Server.close]).
   */
  cp_server_signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * CpServer::host-link-failed:
   * @server: the server
   * @error: what failed (domain %CP_ERROR; the host's error when it
   *   answered one)
   *
   * Emitted when linking to the host
   * ([property@ConnectPlugin.Server:host-url]) fails: the handshake or a
   * registration failed (after retries while the host was unavailable), or
   * a later health report did. The server keeps serving.
   */
  cp_server_signals[SIGNAL_HOST_LINK_FAILED] =
    g_signal_new ("host-link-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * CpServer::span-finished:
   * @server: the server
   * @span: the finished server span of a call
   *
   * [signal@ConnectPlugin.RpcServer::span-finished] of the server's engine,
   * for every call it serves (the plugins' and the built-in ones): export
   * spans to a tracing system from here. As there, connecting a handler
   * turns tracing on (docs/engine.md, "Tracing").
   */
  cp_server_signals[SIGNAL_SPAN_FINISHED] =
    g_signal_new ("span-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, CP_TYPE_SPAN | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_server_init (CpServer *self)
{
  self->rpc_server = cp_rpc_server_new ();
  cp_rpc_server_set_span_forward (self->rpc_server, G_OBJECT (self),
                                  cp_server_signals[SIGNAL_SPAN_FINISHED]);
  self->health = cp_health_server_new ();
  self->plugins = g_ptr_array_new_with_free_func (g_object_unref);
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->issued = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, runtime_identity_free);
  self->core_protocol_version = CP_CORE_PROTOCOL_VERSION;
  self->app_protocol_version = CP_DEFAULT_APP_PROTOCOL_VERSION;
  self->shutdown_timeout_ms = CP_DEFAULT_SHUTDOWN_TIMEOUT_MS;
  self->health_enabled = TRUE;
  self->health_state = CP_HEALTH_STATE_HEALTHY;
  self->host_timeout_ms = 10000;
  self->grant_renew_interval_ms = 50 * 60 * 1000;
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
 * need the bearer secret of [property@ConnectPlugin.Server:control-secret].
 * Prometheus metrics at `/metrics` are opt-in too
 * ([property@ConnectPlugin.Server:metrics-enabled]).
 *
 * |[<!-- language="C" -->
 * g_autoptr(CpServer) server = [ctor@ConnectPlugin.Server.new];
 * g_autoptr(CpPlugin) plugin = cp_plugin_new ("kv", "1.0.0");
 *
 * cp_plugin_add_service (plugin, CP_SKELETON (kv_skeleton));
 * cp_server_add_plugin (server, plugin);
 * return cp_server_run (server, argc, argv);
 * ]|
 *
 * All of its handlers and signals run in the [struct@GLib.MainContext] that was the
 * thread-default one when the server was created, unless
 * [property@ConnectPlugin.Server:n-workers] is more than 1: then the
 * plugins' handlers (and interceptors) are called concurrently on worker
 * threads, each call in its worker's context, and must be thread-safe.
 *
 * Interceptors ([method@ConnectPlugin.Server.add_interceptor]) see every RPC call, the
 * built-in services' included: an authenticating interceptor lets the
 * handshake through by its procedure ([method@ConnectPlugin.Invocation.get_procedure]) if
 * hosts authenticate after it.
 */

/**
 * cp_server_new:
 *
 * Creates a server with no plugins.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Server]
 */
CpServer *
cp_server_new (void)
{
  return g_object_new (CP_TYPE_SERVER, NULL);
}

/**
 * cp_server_add_plugin:
 * @server: a [class@ConnectPlugin.Server]
 * @plugin: a plugin whose services all have implementations
 *
 * Adds a plugin to serve. Plugins are checked when the server starts
 * ([method@ConnectPlugin.Server.start]): duplicate names, two services at one path, services
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
 * @server: a [class@ConnectPlugin.Server]
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
 * @server: a [class@ConnectPlugin.Server]
 * @key: a metadata key
 * @value: (nullable): its value; %NULL removes it
 *
 * Sets one entry of the handshake's `server_metadata` (see
 * [property@ConnectPlugin.Server:server-metadata]).
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
  g_object_notify_by_pspec (G_OBJECT (server), cp_server_properties[PROP_SERVER_METADATA]);
}

/**
 * cp_server_get_rpc_server:
 * @server: a [class@ConnectPlugin.Server]
 *
 * Gets the Connect engine under @server, e.g. for
 * [ctor@ConnectPlugin.Channel.new_in_process] or to add methods of its own.
 *
 * Returns: (transfer none): the [class@ConnectPlugin.RpcServer]
 */
CpRpcServer *
cp_server_get_rpc_server (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  return server->rpc_server;
}

/**
 * cp_server_add_interceptor:
 * @server: a [class@ConnectPlugin.Server]
 * @interceptor: the interceptor
 *
 * Appends @interceptor to the chain of the server's engine
 * ([method@ConnectPlugin.RpcServer.add_interceptor]): it sees every RPC call before its
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
 * @server: a [class@ConnectPlugin.Server]
 * @error: return location for a [struct@GLib.Error]
 *
 * Checks the plugins, registers the built-in services and the plugins'
 * skeletons, and marks the server and every plugin service SERVING,
 * without listening: enough for an in-process client on
 * [property@ConnectPlugin.Server:rpc-server]. [method@ConnectPlugin.Server.listen] calls it. Does nothing when the
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

  cp_server_take_control_secret_from_env (server);
  cp_server_register_handshake (server);
  if (server->health_enabled)
    {
      cp_health_server_register (server->health, server->rpc_server);
      cp_rpc_server_add_plain_handler (server->rpc_server, CP_HEALTHZ_PATH,
                                       handle_healthz, NULL, NULL);
      cp_rpc_server_add_plain_handler (server->rpc_server, CP_READYZ_PATH,
                                       handle_readyz, server, NULL);
    }
  cp_server_register_control (server);
  if (server->metrics_enabled)
    start_metrics (server);
  if (server->reflection_enabled)
    cp_server_register_reflection (server);

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
 * @server: a [class@ConnectPlugin.Server]
 * @address: (nullable): `HOST:PORT` (port 0 picks a free port) or
 *   `unix:/path`; %NULL for [property@ConnectPlugin.Server:listen-address]
 * @error: return location for a [struct@GLib.Error]
 *
 * Starts the server ([method@ConnectPlugin.Server.start]) if needed and serves on @address.
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

  g_autofree char *url = NULL;

  if (!cp_server_start (server, error))
    return NULL;
  url = cp_rpc_server_listen (server->rpc_server, address, error);
  if (url != NULL)
    cp_server_host_link_start (server, FALSE);
  return g_steal_pointer (&url);
}

/**
 * cp_server_get_url:
 * @server: a [class@ConnectPlugin.Server]
 *
 * Gets the URL of the first address the server listens on.
 *
 * Returns: (transfer none) (nullable): the URL, or %NULL before
 *   [method@ConnectPlugin.Server.listen]
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
 * @server: a [class@ConnectPlugin.Server]
 *
 * Gets [property@ConnectPlugin.Server:serving].
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
 * @server: a [class@ConnectPlugin.Server]
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
 * @server: a [class@ConnectPlugin.Server]
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
 * @server: a [class@ConnectPlugin.Server]
 * @state: the plugin's own health
 * @reason: (nullable): why, for degraded and unhealthy states
 * @unavailable_dependencies: (nullable) (array zero-terminated=1): the
 *   services the plugin misses
 *
 * Sets what PluginControl.GetHealth answers, and reports it to the host
 * (PluginLifecycle.ReportHealth) when the server is registered with one
 * ([property@ConnectPlugin.Server:host-url]). Default: healthy.
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
  cp_server_host_report_health (server);
}

/**
 * cp_server_get_runtime_id:
 * @server: a [class@ConnectPlugin.Server]
 *
 * Gets [property@ConnectPlugin.Server:runtime-id].
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
 * @server: a [class@ConnectPlugin.Server]
 *
 * Gets [property@ConnectPlugin.Server:runtime-token].
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
 * @server: a [class@ConnectPlugin.Server]
 *
 * Gets [property@ConnectPlugin.Server:host-url].
 *
 * Returns: (transfer none) (nullable): the host URL
 */
const char *
cp_server_get_host_url (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  return server->host_url;
}

/**
 * cp_server_get_host_registered:
 * @server: a [class@ConnectPlugin.Server]
 *
 * Gets [property@ConnectPlugin.Server:host-registered].
 *
 * Returns: whether the server is registered with its host
 */
gboolean
cp_server_get_host_registered (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);
  return server->host_registered;
}
