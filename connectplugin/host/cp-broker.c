/* cp-broker.c: the host side of the plugin platform
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The object, its properties, the list of plugins and the authentication
 * of plugin calls. The services live in their own units (see
 * cp-broker-private.h).
 */

#include "cp-broker-private.h"

#include <string.h>

#include "cp-error.h"

#define DEFAULT_GRANT_TTL_SECONDS 3600
#define DEFAULT_MAX_REGISTRATIONS 100
#define DEFAULT_ROUTE_TIMEOUT_MS 30000
#define DEFAULT_MAX_WATCH_QUEUE 64
#define DEFAULT_ADD_TIMEOUT_MS 30000
#define MAX_ALIASES 1024
#define DEFAULT_DRAIN_TIMEOUT_MS 30000

enum {
  PROP_0,
  PROP_SERVER,
  PROP_BASE_URL,
  PROP_GRANT_TTL_SECONDS,
  PROP_MAX_REGISTRATIONS_PER_PLUGIN,
  PROP_ROUTE_TIMEOUT_MS,
  PROP_RATE_LIMIT_RPS,
  PROP_RATE_LIMIT_BURST,
  PROP_MAX_WATCH_QUEUE,
  PROP_ADD_TIMEOUT_MS,
  PROP_DRAIN_TIMEOUT_MS,
  PROP_PROTECT_DEPENDENTS,
  N_PROPS
};

enum {
  SIGNAL_PLUGIN_ADDED,
  SIGNAL_PLUGIN_REMOVING,
  SIGNAL_PLUGIN_REMOVED,
  SIGNAL_PLUGIN_HEALTH_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (CpBroker, cp_broker, G_TYPE_OBJECT)

static void
cp_broker_constructed (GObject *object)
{
  CpBroker *self = CP_BROKER (object);

  G_OBJECT_CLASS (cp_broker_parent_class)->constructed (object);

  g_return_if_fail (CP_IS_SERVER (self->server));
  self->rpc_server = g_object_ref (cp_server_get_rpc_server (self->server));
  self->limiter = cp_rate_limiter_new (self);
  self->registry = cp_registry_new (self);
  self->capabilities = cp_broker_capabilities_new (self);
  self->router = cp_router_new (self);
}

static void
cp_broker_dispose (GObject *object)
{
  CpBroker *self = CP_BROKER (object);

  g_clear_pointer (&self->router, cp_router_free);
  g_clear_pointer (&self->capabilities, cp_broker_capabilities_free);
  g_clear_pointer (&self->registry, cp_registry_free);
  g_clear_pointer (&self->limiter, cp_rate_limiter_free);
  if (self->plugins != NULL)
    g_list_store_remove_all (self->plugins);
  g_clear_pointer (&self->plugins_by_id, g_hash_table_unref);
  g_clear_pointer (&self->controls, g_hash_table_unref);
  g_clear_pointer (&self->aliases, g_hash_table_unref);
  g_clear_object (&self->graph);
  g_clear_object (&self->rpc_server);
  g_clear_object (&self->server);
  G_OBJECT_CLASS (cp_broker_parent_class)->dispose (object);
}

static void
cp_broker_finalize (GObject *object)
{
  CpBroker *self = CP_BROKER (object);

  g_clear_object (&self->plugins);
  g_free (self->base_url);
  g_main_context_unref (self->context);
  G_OBJECT_CLASS (cp_broker_parent_class)->finalize (object);
}

static void
cp_broker_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  CpBroker *self = CP_BROKER (object);

  switch (prop_id)
    {
    case PROP_SERVER:
      g_value_set_object (value, self->server);
      break;
    case PROP_BASE_URL:
      g_value_set_string (value, self->base_url);
      break;
    case PROP_GRANT_TTL_SECONDS:
      g_value_set_uint (value, self->grant_ttl_seconds);
      break;
    case PROP_MAX_REGISTRATIONS_PER_PLUGIN:
      g_value_set_uint (value, self->max_registrations_per_plugin);
      break;
    case PROP_ROUTE_TIMEOUT_MS:
      g_value_set_uint (value, self->route_timeout_ms);
      break;
    case PROP_RATE_LIMIT_RPS:
      g_value_set_double (value, self->rate_limit_rps);
      break;
    case PROP_RATE_LIMIT_BURST:
      g_value_set_uint (value, self->rate_limit_burst);
      break;
    case PROP_MAX_WATCH_QUEUE:
      g_value_set_uint (value, self->max_watch_queue);
      break;
    case PROP_ADD_TIMEOUT_MS:
      g_value_set_uint (value, self->add_timeout_ms);
      break;
    case PROP_DRAIN_TIMEOUT_MS:
      g_value_set_uint (value, self->drain_timeout_ms);
      break;
    case PROP_PROTECT_DEPENDENTS:
      g_value_set_boolean (value, self->protect_dependents);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_broker_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  CpBroker *self = CP_BROKER (object);

  switch (prop_id)
    {
    case PROP_SERVER:
      self->server = g_value_dup_object (value);
      break;
    case PROP_BASE_URL:
      g_free (self->base_url);
      self->base_url = g_value_dup_string (value);
      /* Without the trailing slash: paths are appended. */
      if (self->base_url != NULL && g_str_has_suffix (self->base_url, "/"))
        self->base_url[strlen (self->base_url) - 1] = '\0';
      break;
    case PROP_GRANT_TTL_SECONDS:
      self->grant_ttl_seconds = g_value_get_uint (value);
      break;
    case PROP_MAX_REGISTRATIONS_PER_PLUGIN:
      self->max_registrations_per_plugin = g_value_get_uint (value);
      break;
    case PROP_ROUTE_TIMEOUT_MS:
      self->route_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_RATE_LIMIT_RPS:
      self->rate_limit_rps = g_value_get_double (value);
      break;
    case PROP_RATE_LIMIT_BURST:
      self->rate_limit_burst = g_value_get_uint (value);
      break;
    case PROP_MAX_WATCH_QUEUE:
      self->max_watch_queue = g_value_get_uint (value);
      break;
    case PROP_ADD_TIMEOUT_MS:
      self->add_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_DRAIN_TIMEOUT_MS:
      self->drain_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_PROTECT_DEPENDENTS:
      self->protect_dependents = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_broker_class_init (CpBrokerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_broker_constructed;
  object_class->dispose = cp_broker_dispose;
  object_class->finalize = cp_broker_finalize;
  object_class->get_property = cp_broker_get_property;
  object_class->set_property = cp_broker_set_property;

  /**
   * CpBroker:server:
   *
   * The host's [class@ConnectPlugin.Server]: the broker serves its services
   * and paths there.
   */
  properties[PROP_SERVER] =
    g_param_spec_object ("server", NULL, NULL, CP_TYPE_SERVER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:base-url:
   *
   * The URL plugins reach the host at, used in capability endpoints and
   * grants (`<base-url>/capabilities/…`). %NULL (the default): the first
   * URL the server listens on.
   */
  properties[PROP_BASE_URL] =
    g_param_spec_string ("base-url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:grant-ttl-seconds:
   *
   * How long a capability grant stays valid, in seconds (1 hour by
   * default, as connect-plugin-go).
   */
  properties[PROP_GRANT_TTL_SECONDS] =
    g_param_spec_uint ("grant-ttl-seconds", NULL, NULL, 1, G_MAXUINT32,
                       DEFAULT_GRANT_TTL_SECONDS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:max-registrations-per-plugin:
   *
   * How many services one plugin may have registered at once; more are
   * refused with `resource_exhausted`.
   */
  properties[PROP_MAX_REGISTRATIONS_PER_PLUGIN] =
    g_param_spec_uint ("max-registrations-per-plugin", NULL, NULL, 1, G_MAXUINT32,
                       DEFAULT_MAX_REGISTRATIONS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:route-timeout-ms:
   *
   * The longest a call routed through `/services/` may take when the
   * caller sets no deadline of its own, in milliseconds (30 s, as
   * connect-plugin-go's router). 0: no limit.
   */
  properties[PROP_ROUTE_TIMEOUT_MS] =
    g_param_spec_uint ("route-timeout-ms", NULL, NULL, 0, G_MAXUINT32,
                       DEFAULT_ROUTE_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:rate-limit-rps:
   *
   * Calls per second each plugin (by runtime id; anonymous callers by
   * peer address) may make to the host's services and router, refilled
   * continuously. 0 (the default): no limit.
   */
  properties[PROP_RATE_LIMIT_RPS] =
    g_param_spec_double ("rate-limit-rps", NULL, NULL, 0, G_MAXDOUBLE, 0,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:rate-limit-burst:
   *
   * How many calls a caller may make at once above
   * [property@ConnectPlugin.Broker:rate-limit-rps] (the bucket size); 0: the rate,
   * rounded up.
   */
  properties[PROP_RATE_LIMIT_BURST] =
    g_param_spec_uint ("rate-limit-burst", NULL, NULL, 0, G_MAXUINT32, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:max-watch-queue:
   *
   * How many `WatchService` events are kept for a watcher that does not
   * read; past that its queue is replaced by one event with the current
   * state (a resync), so memory stays bounded.
   */
  properties[PROP_MAX_WATCH_QUEUE] =
    g_param_spec_uint ("max-watch-queue", NULL, NULL, 1, G_MAXUINT32,
                       DEFAULT_MAX_WATCH_QUEUE,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpBroker:add-timeout-ms:
   *
   * How long [method@ConnectPlugin.Broker.add_plugin_async] (and a
   * replacement) waits for the plugin's first healthy report, in
   * milliseconds.
   */
  properties[PROP_ADD_TIMEOUT_MS] =
    g_param_spec_uint ("add-timeout-ms", NULL, NULL, 1, G_MAXUINT32, DEFAULT_ADD_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:drain-timeout-ms:
   *
   * How long a removal (or the end of a replacement) waits for the calls
   * the router has in flight to the plugin, in milliseconds; 0: no limit.
   */
  properties[PROP_DRAIN_TIMEOUT_MS] =
    g_param_spec_uint ("drain-timeout-ms", NULL, NULL, 0, G_MAXUINT32, DEFAULT_DRAIN_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /**
   * CpBroker:protect-dependents:
   *
   * Whether [method@ConnectPlugin.Broker.remove_plugin_async] refuses, with
   * `failed_precondition`, to remove a plugin that other plugins need: one
   * whose removal leaves a plugin without a `required_for_startup`
   * dependency that no other plugin provides (the
   * [method@ConnectPlugin.DependencyImpact.get_affected_plugins] of the
   * removal). %FALSE (the default, as connect-plugin-go does): the removal
   * goes ahead; [signal@ConnectPlugin.Broker::plugin-removing] tells what
   * it breaks.
   */
  properties[PROP_PROTECT_DEPENDENTS] =
    g_param_spec_boolean ("protect-dependents", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpBroker::plugin-added:
   * @broker: the broker
   * @plugin: the new [class@ConnectPlugin.PluginInstance]
   *
   * A plugin joined the host: it was added by the host, or it called the
   * host for the first time with the identity its handshake gave it.
   */
  signals[SIGNAL_PLUGIN_ADDED] =
    g_signal_new ("plugin-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, CP_TYPE_PLUGIN_INSTANCE);
  /**
   * CpBroker::plugin-removing:
   * @broker: the broker
   * @plugin: the [class@ConnectPlugin.PluginInstance] about to be removed
   * @impact: (nullable): what its removal breaks, from the
   *   [method@ConnectPlugin.Broker.get_dependency_graph]; %NULL when the
   *   plugin declared nothing there (it was not added by the host)
   *
   * [method@ConnectPlugin.Broker.remove_plugin_async] checked the impact of
   * a removal and goes ahead: the plugin still routes calls when this is
   * emitted, and stops right after. Not emitted for a removal that
   * [property@ConnectPlugin.Broker:protect-dependents] refused, nor for
   * the old instance of a replacement (its services stay provided).
   */
  signals[SIGNAL_PLUGIN_REMOVING] =
    g_signal_new ("plugin-removing", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, CP_TYPE_PLUGIN_INSTANCE,
                  CP_TYPE_DEPENDENCY_IMPACT);
  /**
   * CpBroker::plugin-removed:
   * @broker: the broker
   * @plugin: the [class@ConnectPlugin.PluginInstance] that left
   *
   * A plugin left the host; its registrations and grants are gone.
   */
  signals[SIGNAL_PLUGIN_REMOVED] =
    g_signal_new ("plugin-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, CP_TYPE_PLUGIN_INSTANCE);
  /**
   * CpBroker::plugin-health-changed:
   * @broker: the broker
   * @plugin: the [class@ConnectPlugin.PluginInstance] that reported
   *
   * A plugin's reported health changed (see
   * [signal@ConnectPlugin.PluginInstance::health-changed]).
   */
  signals[SIGNAL_PLUGIN_HEALTH_CHANGED] =
    g_signal_new ("plugin-health-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, CP_TYPE_PLUGIN_INSTANCE);
}

static void
cp_broker_init (CpBroker *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->plugins = g_list_store_new (CP_TYPE_PLUGIN_INSTANCE);
  self->plugins_by_id = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->grant_ttl_seconds = DEFAULT_GRANT_TTL_SECONDS;
  self->max_registrations_per_plugin = DEFAULT_MAX_REGISTRATIONS;
  self->route_timeout_ms = DEFAULT_ROUTE_TIMEOUT_MS;
  self->max_watch_queue = DEFAULT_MAX_WATCH_QUEUE;
  self->add_timeout_ms = DEFAULT_ADD_TIMEOUT_MS;
  self->drain_timeout_ms = DEFAULT_DRAIN_TIMEOUT_MS;
  self->graph = cp_dependency_graph_new ();
  self->aliases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->controls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
}

/* ------------------------------------------------------------------ */
/* For the units                                                        */

const char *
cp_broker_get_base_url (CpBroker *broker)
{
  if (broker->base_url == NULL)
    {
      const char *url = cp_server_get_url (broker->server);

      if (url == NULL)
        return NULL;
      broker->base_url = g_strdup (url);
      if (g_str_has_suffix (broker->base_url, "/"))
        broker->base_url[strlen (broker->base_url) - 1] = '\0';
    }
  return broker->base_url;
}

CpPluginInstance *
cp_broker_authenticate (CpBroker           *broker,
                        SoupMessageHeaders *headers,
                        GError            **error)
{
  const char *runtime_id, *authorization, *self_id;
  CpPluginInstance *instance;
  g_autoptr(CpPluginInstance) created = NULL;

  runtime_id = soup_message_headers_get_one (headers, "X-Plugin-Runtime-ID");
  if (runtime_id == NULL || runtime_id[0] == '\0')
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED,
                           "X-Plugin-Runtime-ID header required");
      return NULL;
    }
  authorization = soup_message_headers_get_one (headers, "Authorization");
  if (authorization == NULL || !g_str_has_prefix (authorization, "Bearer "))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED,
                           "Authorization: Bearer <token> required");
      return NULL;
    }
  if (!cp_server_check_runtime_token (broker->server, runtime_id,
                                      authorization + strlen ("Bearer ")))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED,
                           "invalid or expired runtime token");
      return NULL;
    }

  instance = g_hash_table_lookup (broker->plugins_by_id, runtime_id);
  if (instance != NULL)
    return instance;

  /* First call of a plugin that handshook with us on its own. */
  self_id = cp_server_lookup_runtime_self_id (broker->server, runtime_id);
  created = cp_plugin_instance_new (runtime_id, self_id);
  cp_broker_add_instance (broker, created);
  return created;
}

static void
on_instance_health_changed (CpPluginInstance *instance,
                            CpHealthState     state,
                            const char       *reason,
                            gpointer          user_data)
{
  cp_broker_health_changed (CP_BROKER (user_data), instance);
}

void
cp_broker_add_instance (CpBroker         *broker,
                        CpPluginInstance *instance)
{
  const char *runtime_id = cp_plugin_instance_get_runtime_id (instance);

  g_return_if_fail (!g_hash_table_contains (broker->plugins_by_id, runtime_id));

  g_hash_table_replace (broker->plugins_by_id, g_strdup (runtime_id), g_object_ref (instance));
  if (cp_plugin_instance_get_provides (instance) != NULL || cp_plugin_instance_get_requires (instance) != NULL)
    {
      g_autoptr(GError) error = NULL;

      if (!cp_dependency_graph_add_declared (broker->graph, runtime_id,
                                             cp_plugin_instance_get_self_id (instance),
                                             cp_plugin_instance_get_provides (instance),
                                             cp_plugin_instance_get_requires (instance), &error))
        g_debug ("broker: %s is not in the dependency graph: %s", runtime_id, error->message);
    }
  g_signal_connect_object (instance, "health-changed",
                           G_CALLBACK (on_instance_health_changed), broker, 0);
  g_list_store_append (broker->plugins, instance);
  g_signal_emit (broker, signals[SIGNAL_PLUGIN_ADDED], 0, instance);
}

void
cp_broker_remove_instance (CpBroker         *broker,
                           CpPluginInstance *instance)
{
  g_autoptr(CpPluginInstance) keep = g_object_ref (instance);
  const char *runtime_id = cp_plugin_instance_get_runtime_id (instance);
  guint position;

  if (!g_hash_table_contains (broker->plugins_by_id, runtime_id))
    return;
  cp_plugin_instance_set_routable (instance, FALSE);
  if (broker->registry != NULL)
    cp_registry_plugin_gone (broker->registry, instance);
  if (broker->capabilities != NULL)
    cp_broker_capabilities_plugin_gone (broker->capabilities, instance);
  cp_server_revoke_runtime_identity (broker->server, runtime_id);
  g_hash_table_remove (broker->controls, runtime_id);
  {
    g_autoptr(CpPluginInstance) replacement = cp_plugin_instance_get_replacement (instance);

    /* Callers that discovered the replaced plugin keep its runtime id in
     * their URLs: it keeps leading to the replacement (a bounded table). */
    if (replacement != NULL)
      {
        if (g_hash_table_size (broker->aliases) >= MAX_ALIASES)
          g_hash_table_remove_all (broker->aliases);
        g_hash_table_replace (broker->aliases, g_strdup (runtime_id),
                              g_strdup (cp_plugin_instance_get_runtime_id (replacement)));
      }
  }
  if (cp_dependency_graph_has_plugin (broker->graph, runtime_id))
    cp_dependency_graph_remove_plugin (broker->graph, runtime_id);
  g_signal_handlers_disconnect_by_func (instance, on_instance_health_changed, broker);
  g_hash_table_remove (broker->plugins_by_id, runtime_id);
  if (g_list_store_find (broker->plugins, instance, &position))
    g_list_store_remove (broker->plugins, position);
  g_signal_emit (broker, signals[SIGNAL_PLUGIN_REMOVED], 0, instance);
}

void
cp_broker_plugin_removing (CpBroker           *broker,
                           CpPluginInstance   *instance,
                           CpDependencyImpact *impact)
{
  g_signal_emit (broker, signals[SIGNAL_PLUGIN_REMOVING], 0, instance, impact);
}

void
cp_broker_health_changed (CpBroker         *broker,
                          CpPluginInstance *instance)
{
  if (broker->registry != NULL)
    cp_registry_health_changed (broker->registry, instance);
  g_signal_emit (broker, signals[SIGNAL_PLUGIN_HEALTH_CHANGED], 0, instance);
}

void
cp_broker_set_control_channel (CpBroker         *broker,
                               CpPluginInstance *instance,
                               CpChannel        *channel)
{
  g_hash_table_replace (broker->controls, g_strdup (cp_plugin_instance_get_runtime_id (instance)),
                        g_object_ref (channel));
}

CpChannel *
cp_broker_steal_control_channel (CpBroker         *broker,
                                 CpPluginInstance *instance)
{
  gpointer key = NULL, channel = NULL;

  if (broker->controls == NULL ||
      !g_hash_table_steal_extended (broker->controls, cp_plugin_instance_get_runtime_id (instance),
                                    &key, &channel))
    return NULL;
  g_free (key);
  return channel;
}

CpPluginInstance *
cp_broker_route_target (CpBroker   *broker,
                        const char *runtime_id)
{
  CpPluginInstance *instance;

  if (broker->plugins_by_id == NULL)
    return NULL;
  instance = g_hash_table_lookup (broker->plugins_by_id, runtime_id);
  /* A replaced plugin that has left: its replacement (which may itself
   * have been replaced since). */
  for (guint hops = 0; instance == NULL && runtime_id != NULL && hops < 8; hops++)
    {
      runtime_id = g_hash_table_lookup (broker->aliases, runtime_id);
      if (runtime_id != NULL)
        instance = g_hash_table_lookup (broker->plugins_by_id, runtime_id);
    }
  /* Follow replacements (a replaced plugin may have been replaced again),
   * as long as the replacement is still in the platform. */
  for (guint hops = 0; instance != NULL && !cp_plugin_instance_get_routable (instance) && hops < 8; hops++)
    {
      g_autoptr(CpPluginInstance) next = cp_plugin_instance_get_replacement (instance);

      if (next == NULL ||
          g_hash_table_lookup (broker->plugins_by_id, cp_plugin_instance_get_runtime_id (next)) != next)
        break;
      instance = next;
    }
  return instance;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

/**
 * CpBroker:
 *
 * The host side of the plugin platform, attached to the host's
 * [class@ConnectPlugin.Server]: the capability broker
 * (`connectplugin.v1.CapabilityBroker` and the `/capabilities/…` endpoints
 * of its grants), the service registry (`connectplugin.v1.ServiceRegistry`),
 * plugin health reports (`connectplugin.v1.PluginLifecycle`) and the
 * router of plugin-to-plugin calls (`/services/…`).
 *
 * Every plugin call to these is authenticated by the runtime identity the
 * host issued (`X-Plugin-Runtime-ID` and `Authorization: Bearer`); the
 * plugins the broker knows are listed by
 * [method@ConnectPlugin.Broker.get_plugins].
 */

/**
 * cp_broker_new:
 * @server: the host's server (not started yet, or started: the broker's
 *   services are added to it either way)
 *
 * Creates a broker serving on @server, bound to the thread-default
 * [struct@GLib.MainContext], which must be @server's.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Broker]
 */
CpBroker *
cp_broker_new (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  return g_object_new (CP_TYPE_BROKER, "server", server, NULL);
}

/**
 * cp_broker_get_server:
 * @broker: a [class@ConnectPlugin.Broker]
 *
 * Gets the host's server the broker serves on.
 *
 * Returns: (transfer none): the host's server
 */
CpServer *
cp_broker_get_server (CpBroker *broker)
{
  g_return_val_if_fail (CP_IS_BROKER (broker), NULL);
  return broker->server;
}

/**
 * cp_broker_get_plugins:
 * @broker: a [class@ConnectPlugin.Broker]
 *
 * The plugins the host knows, in order of arrival, as a list model a
 * `GtkListView` can bind to.
 *
 * Returns: (transfer none): a [iface@Gio.ListModel] of
 *   [class@ConnectPlugin.PluginInstance]
 */
GListModel *
cp_broker_get_plugins (CpBroker *broker)
{
  g_return_val_if_fail (CP_IS_BROKER (broker), NULL);
  return G_LIST_MODEL (broker->plugins);
}

/**
 * cp_broker_lookup_plugin:
 * @broker: a [class@ConnectPlugin.Broker]
 * @runtime_id: a runtime id
 *
 * Finds a plugin by its runtime id.
 *
 * Returns: (transfer none) (nullable): the plugin with @runtime_id
 */
CpPluginInstance *
cp_broker_lookup_plugin (CpBroker   *broker,
                         const char *runtime_id)
{
  g_return_val_if_fail (CP_IS_BROKER (broker), NULL);
  g_return_val_if_fail (runtime_id != NULL, NULL);

  return broker->plugins_by_id != NULL ? g_hash_table_lookup (broker->plugins_by_id, runtime_id) : NULL;
}

/**
 * cp_broker_get_dependency_graph:
 * @broker: a [class@ConnectPlugin.Broker]
 *
 * Gets the graph of what the plugins the host added declared they provide
 * and require (from their `GetPluginInfo`), kept up to date as plugins come
 * and go: ask it for a start-up order, or for the impact of removing a
 * plugin ([method@ConnectPlugin.DependencyGraph.analyze_impact]) before
 * calling [method@ConnectPlugin.Broker.remove_plugin_async].
 *
 * Returns: (transfer none): the dependency graph
 */
CpDependencyGraph *
cp_broker_get_dependency_graph (CpBroker *broker)
{
  g_return_val_if_fail (CP_IS_BROKER (broker), NULL);
  return broker->graph;
}
