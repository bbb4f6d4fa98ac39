/* cp-plugin-instance.c: one plugin known to a host's broker
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The broker keeps one CpPluginInstance per runtime id: a plugin that
 * handshook with the host under a self_id and then called it, or one that
 * the host added itself (cp_broker_add_plugin_async()). The instance
 * carries what the host knows of the plugin — identity, where it listens,
 * the health it last reported, what it provides and requires — and counts
 * the calls the router has in flight to it, so that removal and
 * replacement can drain them.
 */

#include "cp-plugin-instance-private.h"
#include "cp-host-private.h"

struct _CpPluginInstance
{
  GObject parent_instance;

  char *runtime_id;
  char *self_id;
  char *self_version;
  char *url;
  gboolean managed;
  CpHealthState health_state;
  char *health_reason;
  GStrv unavailable_dependencies;
  gboolean routable;
  guint n_inflight;
  GPtrArray *provides;
  GPtrArray *requires;
  GQueue drain_tasks;             /* GTask* waiting for n_inflight == 0 */
  GWeakRef replacement;
};

enum {
  PROP_0,
  PROP_RUNTIME_ID,
  PROP_SELF_ID,
  PROP_SELF_VERSION,
  PROP_URL,
  PROP_MANAGED,
  PROP_HEALTH_STATE,
  PROP_HEALTH_REASON,
  PROP_UNAVAILABLE_DEPENDENCIES,
  PROP_ROUTABLE,
  PROP_N_INFLIGHT,
  N_PROPS
};

enum {
  SIGNAL_HEALTH_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (CpPluginInstance, cp_plugin_instance, G_TYPE_OBJECT)

static void
complete_drain_tasks (CpPluginInstance *self)
{
  GTask *task;

  while ((task = g_queue_pop_head (&self->drain_tasks)) != NULL)
    {
      if (!g_task_get_completed (task))
        g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

static void
cp_plugin_instance_dispose (GObject *object)
{
  CpPluginInstance *self = CP_PLUGIN_INSTANCE (object);

  complete_drain_tasks (self);
  G_OBJECT_CLASS (cp_plugin_instance_parent_class)->dispose (object);
}

static void
cp_plugin_instance_finalize (GObject *object)
{
  CpPluginInstance *self = CP_PLUGIN_INSTANCE (object);

  g_free (self->runtime_id);
  g_free (self->self_id);
  g_free (self->self_version);
  g_free (self->url);
  g_free (self->health_reason);
  g_strfreev (self->unavailable_dependencies);
  g_clear_pointer (&self->provides, g_ptr_array_unref);
  g_clear_pointer (&self->requires, g_ptr_array_unref);
  g_weak_ref_clear (&self->replacement);
  G_OBJECT_CLASS (cp_plugin_instance_parent_class)->finalize (object);
}

static void
cp_plugin_instance_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  CpPluginInstance *self = CP_PLUGIN_INSTANCE (object);

  switch (prop_id)
    {
    case PROP_RUNTIME_ID:
      g_value_set_string (value, self->runtime_id);
      break;
    case PROP_SELF_ID:
      g_value_set_string (value, self->self_id);
      break;
    case PROP_SELF_VERSION:
      g_value_set_string (value, self->self_version);
      break;
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    case PROP_MANAGED:
      g_value_set_boolean (value, self->managed);
      break;
    case PROP_HEALTH_STATE:
      g_value_set_enum (value, self->health_state);
      break;
    case PROP_HEALTH_REASON:
      g_value_set_string (value, self->health_reason);
      break;
    case PROP_UNAVAILABLE_DEPENDENCIES:
      g_value_set_boxed (value, self->unavailable_dependencies);
      break;
    case PROP_ROUTABLE:
      g_value_set_boolean (value, self->routable);
      break;
    case PROP_N_INFLIGHT:
      g_value_set_uint (value, self->n_inflight);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_plugin_instance_class_init (CpPluginInstanceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = cp_plugin_instance_dispose;
  object_class->finalize = cp_plugin_instance_finalize;
  object_class->get_property = cp_plugin_instance_get_property;

  /**
   * CpPluginInstance:runtime-id:
   *
   * The runtime id the host issued to the plugin (`cache-plugin-3fa0`):
   * its `X-Plugin-Runtime-ID`.
   */
  properties[PROP_RUNTIME_ID] =
    g_param_spec_string ("runtime-id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * CpPluginInstance:self-id:
   *
   * The identity the plugin declared (its handshake's `self_id`).
   */
  properties[PROP_SELF_ID] =
    g_param_spec_string ("self-id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * CpPluginInstance:self-version:
   *
   * The version the plugin declared, or %NULL.
   */
  properties[PROP_SELF_VERSION] =
    g_param_spec_string ("self-version", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * CpPluginInstance:url:
   *
   * Where the plugin listens (`http://127.0.0.1:41234`): the URL the host
   * added it with, or the `base_url` of its registration; %NULL while
   * unknown.
   */
  properties[PROP_URL] =
    g_param_spec_string ("url", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * CpPluginInstance:managed:
   *
   * %TRUE when the host added the plugin itself (and assigned its
   * identity with `PluginIdentity.SetRuntimeIdentity`), %FALSE when the
   * plugin came to the host on its own (`HOST_URL`).
   */
  properties[PROP_MANAGED] =
    g_param_spec_boolean ("managed", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * CpPluginInstance:health-state:
   *
   * The health the plugin last reported with `PluginLifecycle.ReportHealth`;
   * %CP_HEALTH_STATE_UNSPECIFIED until it reports. Calls are routed to
   * healthy, degraded and not-yet-reporting plugins, never to unhealthy
   * ones.
   */
  properties[PROP_HEALTH_STATE] =
    g_param_spec_enum ("health-state", NULL, NULL, CP_TYPE_HEALTH_STATE,
                       CP_HEALTH_STATE_UNSPECIFIED,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * CpPluginInstance:health-reason:
   *
   * The reason given with the last health report, or %NULL.
   */
  properties[PROP_HEALTH_REASON] =
    g_param_spec_string ("health-reason", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * CpPluginInstance:unavailable-dependencies:
   *
   * The service types the plugin reported as missing, or %NULL.
   */
  properties[PROP_UNAVAILABLE_DEPENDENCIES] =
    g_param_spec_boxed ("unavailable-dependencies", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * CpPluginInstance:routable:
   *
   * Whether the host's router sends new calls to the plugin: %FALSE while
   * it is being added (until healthy), removed or replaced.
   */
  properties[PROP_ROUTABLE] =
    g_param_spec_boolean ("routable", NULL, NULL, TRUE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  /**
   * CpPluginInstance:n-inflight:
   *
   * How many calls the router is forwarding to the plugin right now.
   */
  properties[PROP_N_INFLIGHT] =
    g_param_spec_uint ("n-inflight", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpPluginInstance::health-changed:
   * @self: the plugin
   * @state: the new [enum@ConnectPlugin.HealthState]
   * @reason: (nullable): the reason given with it
   *
   * Emitted when a health report changes the plugin's state, reason or
   * unavailable dependencies (repeats of the same report are not emitted).
   */
  signals[SIGNAL_HEALTH_CHANGED] =
    g_signal_new ("health-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, CP_TYPE_HEALTH_STATE, G_TYPE_STRING);
}

static void
cp_plugin_instance_init (CpPluginInstance *self)
{
  self->routable = TRUE;
  g_queue_init (&self->drain_tasks);
  g_weak_ref_init (&self->replacement, NULL);
}

/**
 * CpPluginInstance:
 *
 * One plugin known to a host's [class@ConnectPlugin.Broker]: its identity,
 * where it listens, the health it reports, what it provides and requires,
 * and the calls the host's router has in flight to it.
 *
 * Instances are made by the broker; [method@ConnectPlugin.Broker.get_plugins]
 * lists them as a [iface@Gio.ListModel]. Like every connectplugin object an
 * instance belongs to the [struct@GLib.MainContext] of its broker.
 */

CpPluginInstance *
cp_plugin_instance_new (const char *runtime_id,
                        const char *self_id)
{
  CpPluginInstance *self;

  g_return_val_if_fail (runtime_id != NULL, NULL);

  self = g_object_new (CP_TYPE_PLUGIN_INSTANCE, NULL);
  self->runtime_id = g_strdup (runtime_id);
  self->self_id = g_strdup (self_id);
  return self;
}

static void
replace_string (CpPluginInstance *self,
                char            **field,
                const char       *value,
                guint             prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return;
  g_free (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

void
cp_plugin_instance_set_self_version (CpPluginInstance *self,
                                     const char       *version)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));
  replace_string (self, &self->self_version, version, PROP_SELF_VERSION);
}

void
cp_plugin_instance_set_url (CpPluginInstance *self,
                            const char       *url)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));
  replace_string (self, &self->url, url, PROP_URL);
}

void
cp_plugin_instance_set_managed (CpPluginInstance *self,
                                gboolean          managed)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));

  managed = !!managed;
  if (self->managed == managed)
    return;
  self->managed = managed;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MANAGED]);
}

void
cp_plugin_instance_set_health (CpPluginInstance   *self,
                               CpHealthState       state,
                               const char         *reason,
                               const char * const *unavailable_dependencies)
{
  gboolean changed = FALSE;

  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));

  if (reason != NULL && reason[0] == '\0')
    reason = NULL;
  if (unavailable_dependencies != NULL && unavailable_dependencies[0] == NULL)
    unavailable_dependencies = NULL;

  g_object_freeze_notify (G_OBJECT (self));
  if (self->health_state != state)
    {
      self->health_state = state;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HEALTH_STATE]);
      changed = TRUE;
    }
  if (g_strcmp0 (self->health_reason, reason) != 0)
    {
      replace_string (self, &self->health_reason, reason, PROP_HEALTH_REASON);
      changed = TRUE;
    }
  if (cp_host_strv_replace (&self->unavailable_dependencies, unavailable_dependencies))
    {
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UNAVAILABLE_DEPENDENCIES]);
      changed = TRUE;
    }
  g_object_thaw_notify (G_OBJECT (self));

  if (changed)
    g_signal_emit (self, signals[SIGNAL_HEALTH_CHANGED], 0, self->health_state, self->health_reason);
}

void
cp_plugin_instance_set_routable (CpPluginInstance *self,
                                 gboolean          routable)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));

  routable = !!routable;
  if (self->routable == routable)
    return;
  self->routable = routable;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ROUTABLE]);
}

void
cp_plugin_instance_set_provides (CpPluginInstance *self,
                                 GPtrArray        *provides)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));

  if (provides != NULL)
    g_ptr_array_ref (provides);
  g_clear_pointer (&self->provides, g_ptr_array_unref);
  self->provides = provides;
}

void
cp_plugin_instance_set_requires (CpPluginInstance *self,
                                 GPtrArray        *requires)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));

  if (requires != NULL)
    g_ptr_array_ref (requires);
  g_clear_pointer (&self->requires, g_ptr_array_unref);
  self->requires = requires;
}

void
cp_plugin_instance_set_replacement (CpPluginInstance *self,
                                    CpPluginInstance *replacement)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));
  g_weak_ref_set (&self->replacement, replacement);
}

CpPluginInstance *
cp_plugin_instance_get_replacement (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return g_weak_ref_get (&self->replacement);
}

void
cp_plugin_instance_call_started (CpPluginInstance *self)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));

  self->n_inflight++;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_INFLIGHT]);
}

void
cp_plugin_instance_call_finished (CpPluginInstance *self)
{
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));
  g_return_if_fail (self->n_inflight > 0);

  self->n_inflight--;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_INFLIGHT]);
  if (self->n_inflight == 0)
    complete_drain_tasks (self);
}

static gboolean
on_drain_timeout (gpointer user_data)
{
  GTask *task = user_data;

  if (!g_task_get_completed (task))
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                             "calls still in flight after the drain timeout");
  return G_SOURCE_REMOVE;
}

static void
on_drain_cancelled (GCancellable *cancellable,
                    gpointer      user_data)
{
  GTask *task = user_data;

  if (!g_task_get_completed (task))
    g_task_return_error_if_cancelled (task);
}

void
cp_plugin_instance_drain_async (CpPluginInstance   *self,
                                guint               timeout_ms,
                                GCancellable       *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer            user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_plugin_instance_drain_async);
  if (self->n_inflight == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (timeout_ms > 0)
    {
      g_autoptr(GSource) source = g_timeout_source_new (timeout_ms);

      g_source_set_callback (source, on_drain_timeout, g_object_ref (task), g_object_unref);
      g_source_set_static_name (source, "[connectplugin] plugin drain timeout");
      g_source_attach (source, g_task_get_context (task));
      /* Destroyed with the task: the source holds the task only while
       * attached, and is removed when the task completes below. */
      g_object_set_data_full (G_OBJECT (task), "cp-drain-timeout",
                              g_steal_pointer (&source), (GDestroyNotify) g_source_destroy);
    }
  if (cancellable != NULL)
    g_cancellable_connect (cancellable, G_CALLBACK (on_drain_cancelled),
                           g_object_ref (task), g_object_unref);
  g_queue_push_tail (&self->drain_tasks, g_steal_pointer (&task));
}

gboolean
cp_plugin_instance_drain_finish (CpPluginInstance *self,
                                 GAsyncResult     *result,
                                 GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * cp_plugin_instance_get_runtime_id:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the runtime id the host issued to the plugin.
 *
 * Returns: the plugin's runtime id
 */
const char *
cp_plugin_instance_get_runtime_id (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return self->runtime_id;
}

/**
 * cp_plugin_instance_get_self_id:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the identity the plugin declared.
 *
 * Returns: (nullable): the identity the plugin declared
 */
const char *
cp_plugin_instance_get_self_id (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return self->self_id;
}

/**
 * cp_plugin_instance_get_self_version:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the version the plugin declared.
 *
 * Returns: (nullable): the version the plugin declared
 */
const char *
cp_plugin_instance_get_self_version (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return self->self_version;
}

/**
 * cp_plugin_instance_get_url:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets where the plugin listens.
 *
 * Returns: (nullable): where the plugin listens, if known
 */
const char *
cp_plugin_instance_get_url (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return self->url;
}

/**
 * cp_plugin_instance_get_managed:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets whether the host added the plugin itself.
 *
 * Returns: whether the host added the plugin itself
 */
gboolean
cp_plugin_instance_get_managed (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), FALSE);
  return self->managed;
}

/**
 * cp_plugin_instance_get_health_state:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the health the plugin last reported.
 *
 * Returns: the health the plugin last reported
 */
CpHealthState
cp_plugin_instance_get_health_state (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), CP_HEALTH_STATE_UNSPECIFIED);
  return self->health_state;
}

/**
 * cp_plugin_instance_get_health_reason:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the reason the plugin gave with its last health report.
 *
 * Returns: (nullable): the reason of the last health report
 */
const char *
cp_plugin_instance_get_health_reason (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return self->health_reason;
}

/**
 * cp_plugin_instance_get_unavailable_dependencies:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the service types the plugin reported as missing.
 *
 * Returns: (nullable) (array zero-terminated=1) (transfer none): the
 *   service types the plugin reported as missing
 */
const char * const *
cp_plugin_instance_get_unavailable_dependencies (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return (const char * const *) self->unavailable_dependencies;
}

/**
 * cp_plugin_instance_get_routable:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets whether the router sends new calls to the plugin.
 *
 * Returns: whether the router sends new calls to the plugin
 */
gboolean
cp_plugin_instance_get_routable (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), FALSE);
  return self->routable;
}

/**
 * cp_plugin_instance_get_n_inflight:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets how many calls the router is forwarding to the plugin.
 *
 * Returns: the number of calls the router is forwarding to the plugin
 */
guint
cp_plugin_instance_get_n_inflight (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), 0);
  return self->n_inflight;
}

/**
 * cp_plugin_instance_get_provides:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the services the plugin declared it provides.
 *
 * Returns: (nullable) (transfer none) (element-type ConnectPlugin.ServiceDeclaration):
 *   the services the plugin declared it provides, if known
 */
GPtrArray *
cp_plugin_instance_get_provides (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return self->provides;
}

/**
 * cp_plugin_instance_get_requires:
 * @self: a [class@ConnectPlugin.PluginInstance]
 *
 * Gets the services the plugin declared it requires.
 *
 * Returns: (nullable) (transfer none) (element-type ConnectPlugin.ServiceDependency):
 *   the services the plugin declared it requires, if known
 */
GPtrArray *
cp_plugin_instance_get_requires (CpPluginInstance *self)
{
  g_return_val_if_fail (CP_IS_PLUGIN_INSTANCE (self), NULL);
  return self->requires;
}
