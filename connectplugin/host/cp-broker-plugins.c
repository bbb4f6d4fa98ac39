/* cp-broker-plugins.c: adding, removing and replacing plugins while the host runs
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A unit of CpBroker (cp-broker-private.h). The host drives a running
 * plugin through its PluginIdentity and PluginControl services:
 *
 *   add      GetPluginInfo → required dependencies present → a runtime
 *            identity issued by the host → SetRuntimeIdentity (with the
 *            host's URL: the plugin registers and reports its health) →
 *            the first HEALTHY report (a signal, no polling) → routable;
 *   remove   not routable (new calls refused, discovery skips it) → the
 *            router's calls in flight drained → its registrations, grants
 *            and identity dropped → PluginControl.Shutdown;
 *   replace  add the new instance → the old one stops being routable and
 *            names the new one as its replacement, so calls addressed to
 *            the old runtime id go to the new one from then on, while the
 *            calls already in flight finish on the old → drain, drop and
 *            shut down the old.
 *
 * connect-plugin-go sleeps 5 s before a removal and 30 s for a drain; here
 * every wait is an event (a health report, the last call in flight ending)
 * bounded by add-timeout-ms and drain-timeout-ms.
 */
#include "cp-broker-private.h"

#include "cp-error.h"
#include "cp-semver-private.h"
#include "cp-automtls-private.h"
#include "cp-channel-private.h"
#include "cp-runtime-identity-private.h"
#include "connectplugin/protocol/identity.cp.h"
#include "connectplugin/protocol/control.cp.h"

typedef struct {
  CpBroker *broker;
  CpChannel *channel;
  CpPluginInstance *instance;   /* once the identity is issued */
  CpPluginInstance *replaces;   /* replace: the old instance */
  gulong health_handler;
  GSource *timeout;
  gboolean done;                /* the task has its result */
} AddData;

/* The instance's add while it waits (not a reference): a removal ends it. */
#define ADDING_KEY "cp-broker-adding"

/* The health handler and the timeout each hold a reference to the task
 * while the add waits; this drops both. */
static void
stop_waiting (AddData *add)
{
  if (add->instance != NULL)
    g_object_set_data (G_OBJECT (add->instance), ADDING_KEY, NULL);
  if (add->health_handler != 0)
    {
      g_signal_handler_disconnect (add->instance, add->health_handler);
      add->health_handler = 0;
    }
  if (add->timeout != NULL)
    {
      g_source_destroy (add->timeout);
      g_clear_pointer (&add->timeout, g_source_unref);
    }
}

static void
add_data_free (gpointer data)
{
  AddData *add = data;

  stop_waiting (add);
  g_clear_object (&add->instance);
  g_clear_object (&add->replaces);
  g_clear_object (&add->channel);
  g_object_unref (add->broker);
  g_free (add);
}

static CpChannel *
control_channel (const char  *url,
                 const char  *control_secret,
                 GError     **error)
{
  CpChannel *channel = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;

  /* A plugin launched here with AutoMTLS: its host's credentials, given at
   * construction (the channel's connections then never read the system
   * CA bundle). */
  if (cp_automtls_lookup (url, &certificate, &database))
    {
      channel = g_object_new (CP_TYPE_CHANNEL, "base-url", url, "tls-certificate", certificate,
                              "tls-database", database, NULL);
      if (cp_channel_get_setup_error (channel) != NULL)
        {
          g_propagate_error (error, g_error_copy (cp_channel_get_setup_error (channel)));
          g_clear_object (&channel);
        }
    }
  else
    channel = cp_channel_new (url, error);
  if (channel != NULL && control_secret != NULL && control_secret[0] != '\0')
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", control_secret, NULL);

      cp_channel_set_header (channel, "Authorization", bearer);
    }
  return channel;
}

/* A routable plugin other than @except declares @type at @min_version or
 * newer. Plugins that registered on their own declare nothing here, so the
 * registry is asked too. */
static gboolean
has_provider (CpBroker         *broker,
              CpPluginInstance *except,
              const char       *type,
              const char       *min_version)
{
  GHashTableIter iter;
  gpointer value;

  if (cp_registry_has_provider (broker->registry, type, min_version))
    return TRUE;
  g_hash_table_iter_init (&iter, broker->plugins_by_id);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      CpPluginInstance *instance = value;
      GPtrArray *provides = cp_plugin_instance_get_provides (instance);

      if (instance == except || !cp_plugin_instance_get_routable (instance) ||
          cp_plugin_instance_get_health_state (instance) == CP_HEALTH_STATE_UNHEALTHY ||
          provides == NULL)
        continue;
      for (guint i = 0; i < provides->len; i++)
        if (g_strcmp0 (cp_service_declaration_get_type_ (provides->pdata[i]), type) == 0 &&
            cp_semver_at_least (cp_service_declaration_get_version (provides->pdata[i]), min_version))
          return TRUE;
    }
  return FALSE;
}

static void
fail_add (GTask  *task,
          GError *error)
{
  g_autoptr(GTask) keep = g_object_ref (task);
  AddData *add = g_task_get_task_data (task);

  stop_waiting (add);
  add->done = TRUE;
  if (add->instance != NULL)
    cp_broker_remove_instance (add->broker, add->instance);
  g_task_return_error (task, error);
}

static void drain_and_drop (CpBroker         *broker,
                            CpPluginInstance *instance,
                            GTask            *task);

static void
add_done (GTask *task)
{
  g_autoptr(GTask) keep = g_object_ref (task);
  AddData *add = g_task_get_task_data (task);

  stop_waiting (add);
  add->done = TRUE;
  cp_plugin_instance_set_routable (add->instance, TRUE);
  if (add->replaces != NULL)
    {
      /* The switch: from here on the old runtime id routes to the new
       * instance; the old one only finishes what it has. */
      cp_plugin_instance_set_replacement (add->replaces, add->instance);
      cp_plugin_instance_set_routable (add->replaces, FALSE);
      drain_and_drop (add->broker, add->replaces, NULL);
    }
  g_task_return_pointer (task, g_object_ref (add->instance), g_object_unref);
}

static void
on_add_health (CpPluginInstance *instance,
               CpHealthState     state,
               const char       *reason,
               gpointer          user_data)
{
  GTask *task = user_data;
  AddData *add = g_task_get_task_data (task);

  if (state == CP_HEALTH_STATE_HEALTHY && !add->done)
    add_done (task);
}

static gboolean
on_add_timeout (gpointer user_data)
{
  GTask *task = user_data;
  AddData *add = g_task_get_task_data (task);
  CpBroker *broker = add->broker;

  if (!add->done)
    fail_add (task, g_error_new (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                 "plugin %s did not report healthy within %u ms",
                                 cp_plugin_instance_get_runtime_id (add->instance),
                                 broker->add_timeout_ms));
  return G_SOURCE_REMOVE;
}

static void
on_identity_set (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AddData *add = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpSetRuntimeIdentityResponse) response =
    cp_plugin_identity_call_set_runtime_identity_finish (CP_PLUGIN_IDENTITY (source), result, &error);

  if (add->done)
    return;
  if (response == NULL)
    {
      g_prefix_error (&error, "SetRuntimeIdentity: ");
      fail_add (task, g_steal_pointer (&error));
      return;
    }
  if (cp_plugin_instance_get_health_state (add->instance) == CP_HEALTH_STATE_HEALTHY)
    add_done (task);
  /* else on_add_health completes it */
}

static void
assign_identity (GTask                   *task,
                 CpPluginIdentity        *identity,
                 CpGetPluginInfoResponse *info)
{
  AddData *add = g_task_get_task_data (task);
  CpBroker *broker = add->broker;
  g_autoptr(GPtrArray) provides = cp_get_plugin_info_response_get_provides (info);
  g_autoptr(GPtrArray) requires = cp_get_plugin_info_response_get_requires_ (info);
  g_autoptr(CpSetRuntimeIdentityRequest) request = cp_set_runtime_identity_request_new ();
  g_autofree char *runtime_id = NULL;
  g_autofree char *token = NULL;
  g_autofree char *url = NULL;

  cp_server_issue_runtime_identity (broker->server, cp_get_plugin_info_response_get_self_id (info),
                                    &runtime_id, &token);
  add->instance = cp_plugin_instance_new (runtime_id, cp_get_plugin_info_response_get_self_id (info));
  cp_plugin_instance_set_self_version (add->instance, cp_get_plugin_info_response_get_self_version (info));
  g_object_get (add->channel, "base-url", &url, NULL);
  cp_plugin_instance_set_url (add->instance, url);
  cp_plugin_instance_set_managed (add->instance, TRUE);
  cp_plugin_instance_set_provides (add->instance, provides);
  cp_plugin_instance_set_requires (add->instance, requires);
  cp_plugin_instance_set_routable (add->instance, FALSE);
  cp_broker_set_control_channel (broker, add->instance, add->channel);
  g_object_set_data (G_OBJECT (add->instance), ADDING_KEY, task);
  cp_broker_add_instance (broker, add->instance);
  if (add->done)
    return;                     /* removed by a plugin-added handler */

  add->health_handler = g_signal_connect_data (add->instance, "health-changed",
                                               G_CALLBACK (on_add_health), g_object_ref (task),
                                               (GClosureNotify) (void (*) (void)) g_object_unref, 0);
  add->timeout = g_timeout_source_new (broker->add_timeout_ms);
  g_source_set_callback (add->timeout, on_add_timeout, g_object_ref (task), g_object_unref);
  g_source_set_static_name (add->timeout, "[connectplugin] broker add timeout");
  g_source_attach (add->timeout, g_task_get_context (task));

  cp_set_runtime_identity_request_set_runtime_id (request, runtime_id);
  cp_set_runtime_identity_request_set_runtime_token (request, token);
  cp_set_runtime_identity_request_set_host_url (request, cp_broker_get_base_url (broker));
  cp_plugin_identity_call_set_runtime_identity (identity, request, NULL, g_task_get_cancellable (task),
                                                on_identity_set, g_object_ref (task));
}

static void
on_plugin_info (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AddData *add = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpGetPluginInfoResponse) info =
    cp_plugin_identity_call_get_plugin_info_finish (CP_PLUGIN_IDENTITY (source), result, &error);
  g_autoptr(GPtrArray) requires = NULL;
  const char *self_id;

  if (info == NULL)
    {
      g_prefix_error (&error, "GetPluginInfo: ");
      fail_add (task, g_steal_pointer (&error));
      return;
    }
  self_id = cp_get_plugin_info_response_get_self_id (info);
  if (!cp_self_id_is_valid (self_id))
    {
      fail_add (task, g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                   "the plugin's self_id \"%s\" is not valid", self_id));
      return;
    }
  requires = cp_get_plugin_info_response_get_requires_ (info);
  for (guint i = 0; i < requires->len; i++)
    {
      CpServiceDependency *dep = requires->pdata[i];

      if (cp_service_dependency_get_required_for_startup (dep) &&
          !has_provider (add->broker, add->replaces, cp_service_dependency_get_type_ (dep),
                         cp_service_dependency_get_min_version (dep)))
        {
          fail_add (task, g_error_new (CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                                       "plugin %s requires service \"%s\" (>= %s), which no plugin provides",
                                       self_id, cp_service_dependency_get_type_ (dep),
                                       cp_service_dependency_get_min_version (dep)));
          return;
        }
    }
  assign_identity (task, CP_PLUGIN_IDENTITY (source), info);
}

static void
start_add (CpBroker         *broker,
           const char       *url,
           const char       *control_secret,
           CpPluginInstance *replaces,
           GTask            *task)
{
  AddData *add = g_new0 (AddData, 1);
  g_autoptr(CpPluginIdentity) identity = NULL;
  g_autoptr(CpGetPluginInfoRequest) request = cp_get_plugin_info_request_new ();
  GError *error = NULL;

  add->broker = g_object_ref (broker);
  add->replaces = replaces != NULL ? g_object_ref (replaces) : NULL;
  g_task_set_task_data (task, add, add_data_free);
  if (cp_broker_get_base_url (broker) == NULL)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                               "the host does not listen yet: it has no URL to give the plugin");
      return;
    }
  add->channel = control_channel (url, control_secret, &error);
  if (add->channel == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  identity = cp_plugin_identity_proxy_new (add->channel);
  cp_plugin_identity_call_get_plugin_info (identity, request, NULL, g_task_get_cancellable (task),
                                           on_plugin_info, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* Removal                                                              */

static void
on_shutdown_sent (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpShutdownResponse) response =
    cp_plugin_control_call_shutdown_finish (CP_PLUGIN_CONTROL (source), result, &error);

  /* The plugin is already out of the platform: a failed Shutdown (it
   * exited already, or refuses) does not undo that. */
  if (response == NULL)
    g_debug ("broker: Shutdown of a removed plugin: %s", error->message);
  if (task != NULL && !g_task_get_completed (task))
    g_task_return_boolean (task, TRUE);
}

static void
on_drained (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;     /* NULL for a replaced instance */
  CpPluginInstance *instance = CP_PLUGIN_INSTANCE (source);
  CpBroker *broker = task != NULL ? g_task_get_source_object (task)
                                  : g_object_get_data (G_OBJECT (instance), "cp-broker");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpShutdownRequest) request = cp_shutdown_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(CpPluginControl) control = NULL;

  if (!cp_plugin_instance_drain_finish (instance, result, &error))
    g_debug ("broker: %s: %s; removing it anyway",
             cp_plugin_instance_get_runtime_id (instance), error->message);
  if (broker == NULL)
    return;
  channel = cp_broker_steal_control_channel (broker, instance);
  cp_broker_remove_instance (broker, instance);
  if (channel == NULL)
    {
      if (task != NULL)
        g_task_return_boolean (task, TRUE);
      return;
    }
  control = cp_plugin_control_proxy_new (channel);
  cp_shutdown_request_set_grace_period_seconds (request, 30);
  cp_shutdown_request_set_reason (request, "removed by the host");
  cp_call_options_set_timeout_ms (options, 5000);
  cp_plugin_control_call_shutdown (control, request, options, NULL, on_shutdown_sent,
                                   g_steal_pointer (&task));
}

/* A plugin is listed, and can be removed, from the moment its identity is
 * issued: a removal before it reported healthy ends its add (which would
 * otherwise wait for a health report its revoked identity cannot make,
 * until add-timeout-ms, or make a removed plugin routable). */
static void
abort_add (CpPluginInstance *instance)
{
  GTask *task = g_object_get_data (G_OBJECT (instance), ADDING_KEY);
  AddData *add;

  if (task == NULL)
    return;
  g_object_ref (task);
  add = g_task_get_task_data (task);
  stop_waiting (add);
  add->done = TRUE;
  g_task_return_new_error (task, CP_ERROR, CP_ERROR_ABORTED,
                           "plugin %s was removed while it was being added",
                           cp_plugin_instance_get_runtime_id (instance));
  g_object_unref (task);
}

static void
drain_and_drop (CpBroker         *broker,
                CpPluginInstance *instance,
                GTask            *task)
{
  abort_add (instance);
  cp_plugin_instance_set_routable (instance, FALSE);
  g_object_set_data_full (G_OBJECT (instance), "cp-broker", g_object_ref (broker), g_object_unref);
  cp_plugin_instance_drain_async (instance, broker->drain_timeout_ms, NULL, on_drained,
                                  task != NULL ? g_object_ref (task) : NULL);
}

/* FALSE, and @task answered `not_found`, when @plugin is not the broker's. */
static gboolean
in_platform (CpBroker         *broker,
             CpPluginInstance *plugin,
             GTask            *task)
{
  if (cp_broker_lookup_plugin (broker, cp_plugin_instance_get_runtime_id (plugin)) == plugin)
    return TRUE;
  g_task_return_new_error (task, CP_ERROR, CP_ERROR_NOT_FOUND, "plugin %s is not in the platform",
                           cp_plugin_instance_get_runtime_id (plugin));
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

/**
 * cp_broker_add_plugin_async:
 * @broker: a [class@ConnectPlugin.Broker]
 * @url: where the plugin serves (`http://127.0.0.1:41234`); it must serve
 *   `PluginIdentity` (a [class@ConnectPlugin.Server] with
 *   [property@ConnectPlugin.Server:identity-enabled])
 * @control_secret: (nullable): the plugin's control secret (sent as
 *   `Authorization: Bearer` to `PluginIdentity` and `PluginControl`), as
 *   [property@ConnectPlugin.ProcessDiscovery:control-secret] has it for a
 *   plugin the host launched
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: called when the plugin is routable, or adding it failed
 * @user_data: data for @callback
 *
 * Adds a running plugin to the platform: asks it what it is
 * (`GetPluginInfo`), checks that the services it requires for start-up are
 * provided, gives it a runtime identity (`SetRuntimeIdentity`, with the
 * host's URL, so that it registers its services and reports its health),
 * and waits for it to report healthy (at most
 * [property@ConnectPlugin.Broker:add-timeout-ms]). The plugin is in
 * [method@ConnectPlugin.Broker.get_plugins] from the moment its identity is
 * issued, and routable once healthy.
 */
void
cp_broker_add_plugin_async (CpBroker            *broker,
                            const char          *url,
                            const char          *control_secret,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (url != NULL);

  task = g_task_new (broker, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_broker_add_plugin_async);
  start_add (broker, url, control_secret, NULL, task);
}

/**
 * cp_broker_add_plugin_finish:
 * @broker: a [class@ConnectPlugin.Broker]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]: `failed_precondition`
 *   when a required service is missing, `deadline_exceeded` when the plugin
 *   did not report healthy in time, `aborted` when it was removed before
 *   (see [method@ConnectPlugin.Broker.remove_plugin_async]), or the plugin's
 *   own error
 *
 * Finishes [method@ConnectPlugin.Broker.add_plugin_async].
 *
 * Returns: (transfer full): the new plugin, or %NULL on error
 */
CpPluginInstance *
cp_broker_add_plugin_finish (CpBroker      *broker,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, broker), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * cp_broker_remove_plugin_async:
 * @broker: a [class@ConnectPlugin.Broker]
 * @plugin: the plugin to remove
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: called when the plugin is out of the platform
 * @user_data: data for @callback
 *
 * Removes a plugin. First the impact check: what the removal breaks is
 * computed from the [method@ConnectPlugin.Broker.get_dependency_graph];
 * when other plugins need the plugin and
 * [property@ConnectPlugin.Broker:protect-dependents] is set, the removal
 * is refused (`failed_precondition`, naming them); otherwise
 * [signal@ConnectPlugin.Broker::plugin-removing] reports the impact. Then
 * the router stops sending the plugin new calls and discovery
 * stops offering it, the calls in flight through the router finish (at
 * most [property@ConnectPlugin.Broker:drain-timeout-ms]), its
 * registrations, grants and identity are dropped, and a plugin the host
 * added itself is asked to shut down (`PluginControl.Shutdown`).
 *
 * A plugin whose [method@ConnectPlugin.Broker.add_plugin_async] has not
 * finished yet (it is listed from the moment its identity is issued) can be
 * removed too: that add then fails with `aborted`.
 */
void
cp_broker_remove_plugin_async (CpBroker            *broker,
                               CpPluginInstance    *plugin,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(CpDependencyImpact) impact = NULL;
  const char * const *affected;
  const char *runtime_id;

  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (plugin));

  task = g_task_new (broker, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_broker_remove_plugin_async);
  if (!in_platform (broker, plugin, task))
    return;
  runtime_id = cp_plugin_instance_get_runtime_id (plugin);
  /* The impact check, before anything changes. */
  if (cp_dependency_graph_has_plugin (broker->graph, runtime_id))
    impact = cp_dependency_graph_analyze_impact (broker->graph, runtime_id);
  affected = impact != NULL ? cp_dependency_impact_get_affected_plugins (impact) : NULL;
  if (affected != NULL && affected[0] != NULL)
    {
      g_autofree char *plugins = g_strjoinv (", ", (char **) affected);
      g_autofree char *services = NULL;
      const char * const *lost = cp_dependency_impact_get_unavailable_services (impact);

      services = lost[0] != NULL ? g_strjoinv (", ", (char **) lost) : g_strdup ("none");
      if (broker->protect_dependents)
        {
          g_task_return_new_error (task, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                                   "removing plugin %s would stop %s, which require what it "
                                   "provides (services left without a provider: %s)",
                                   runtime_id, plugins, services);
          return;
        }
      g_debug ("removing plugin %s stops %s (services left without a provider: %s)",
               runtime_id, plugins, services);
    }
  cp_broker_plugin_removing (broker, plugin, impact);
  drain_and_drop (broker, plugin, task);
}

/**
 * cp_broker_remove_plugin_finish:
 * @broker: a [class@ConnectPlugin.Broker]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Broker.remove_plugin_async].
 *
 * Returns: %TRUE when the plugin was removed
 */
gboolean
cp_broker_remove_plugin_finish (CpBroker      *broker,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, broker), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * cp_broker_replace_plugin_async:
 * @broker: a [class@ConnectPlugin.Broker]
 * @plugin: the plugin to replace
 * @url: where the new instance serves
 * @control_secret: (nullable): the new instance's control secret
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: called when the new instance serves every new call
 * @user_data: data for @callback
 *
 * Replaces a plugin with a new instance (a new version, say) without
 * losing a call: the new instance is added as by
 * [method@ConnectPlugin.Broker.add_plugin_async]; once it is healthy,
 * every new call — through discovery, and also calls addressed to the old
 * instance's runtime id — goes to it, while the calls in flight finish on
 * the old one, which is then removed as by
 * [method@ConnectPlugin.Broker.remove_plugin_async]. If the new instance
 * fails to start, the old one keeps serving.
 */
void
cp_broker_replace_plugin_async (CpBroker            *broker,
                                CpPluginInstance    *plugin,
                                const char          *url,
                                const char          *control_secret,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (CP_IS_PLUGIN_INSTANCE (plugin));
  g_return_if_fail (url != NULL);

  task = g_task_new (broker, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_broker_replace_plugin_async);
  if (!in_platform (broker, plugin, task))
    return;
  start_add (broker, url, control_secret, plugin, task);
}

/**
 * cp_broker_replace_plugin_finish:
 * @broker: a [class@ConnectPlugin.Broker]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Broker.replace_plugin_async].
 *
 * Returns: (transfer full): the new instance, or %NULL on error (the old
 *   one then still serves)
 */
CpPluginInstance *
cp_broker_replace_plugin_finish (CpBroker      *broker,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, broker), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
