/* cp-in-process-discovery.c: plugins served in the host's own process
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-in-process-discovery.h"
#include "cp-error.h"
#include "cp-runtime-identity-private.h"

/**
 * CpInProcessDiscovery:
 *
 * A [iface@Discovery] for plugins served by a server in the host's own
 * process: the channels it makes ([ctor@ConnectPlugin.Channel.new_in_process]) hand every
 * request to the server's handlers directly, with no socket at all. The
 * URL it answers is [const@ConnectPlugin.IN_PROCESS_URL].
 *
 * Useful for tests, and for plugins linked into the host that should still
 * be called through the same typed proxies as out-of-process ones.
 *
 * Made for a [class@Server] ([ctor@ConnectPlugin.InProcessDiscovery.new_for_server]), the
 * discovery starts it ([method@ConnectPlugin.Server.start]: services registered, nothing
 * listening) when first asked, and gives it a control secret (see
 * [property@Server:control-secret]) unless it has one or serves PluginControl
 * and PluginIdentity without: calls to those go through
 * [method@ConnectPlugin.Client.new_control_call_options].
 */
struct _CpInProcessDiscovery
{
  GObject parent_instance;

  CpRpcServer *server;
  CpServer *plugin_server;
};

enum {
  PROP_0,
  PROP_SERVER,
  PROP_PLUGIN_SERVER,
  PROP_CONTROL_SECRET,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void cp_in_process_discovery_iface_init (CpDiscoveryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpInProcessDiscovery, cp_in_process_discovery, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (CP_TYPE_DISCOVERY,
                                                      cp_in_process_discovery_iface_init))

/* As a launching host does: the server gets a secret of its own. */
static void
ensure_control_secret (CpServer *server)
{
  g_autofree char *secret = NULL;
  gboolean insecure = FALSE;

  g_object_get (server, "control-secret", &secret,
                "control-allow-unauthenticated", &insecure, NULL);
  if (secret == NULL && !insecure)
    {
      secret = cp_generate_token (32);
      g_object_set (server, "control-secret", secret, NULL);
      explicit_bzero (secret, strlen (secret));
    }
}

static void
cp_in_process_discovery_discover_async (CpDiscovery         *discovery,
                                        const char * const  *plugins,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  CpInProcessDiscovery *self = CP_IN_PROCESS_DISCOVERY (discovery);
  g_autoptr(GTask) task = g_task_new (discovery, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  char **urls;

  g_task_set_source_tag (task, cp_in_process_discovery_discover_async);
  if (self->plugin_server != NULL)
    ensure_control_secret (self->plugin_server);
  if (self->plugin_server != NULL && !cp_server_start (self->plugin_server, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  urls = g_new0 (char *, 2);
  urls[0] = g_strdup (CP_IN_PROCESS_URL);
  g_task_return_pointer (task, urls, (GDestroyNotify) g_strfreev);
}

static char **
cp_in_process_discovery_discover_finish (CpDiscovery   *discovery,
                                         GAsyncResult  *result,
                                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, discovery), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static CpChannel *
cp_in_process_discovery_create_channel (CpDiscovery  *discovery,
                                        const char   *url,
                                        GError      **error)
{
  CpInProcessDiscovery *self = CP_IN_PROCESS_DISCOVERY (discovery);

  if (g_strcmp0 (url, CP_IN_PROCESS_URL) != 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "“%s” is not an in-process endpoint", url);
      return NULL;
    }
  return cp_channel_new_in_process (self->server);
}

static void
cp_in_process_discovery_iface_init (CpDiscoveryInterface *iface)
{
  iface->discover_async = cp_in_process_discovery_discover_async;
  iface->discover_finish = cp_in_process_discovery_discover_finish;
  iface->create_channel = cp_in_process_discovery_create_channel;
}

static void
cp_in_process_discovery_dispose (GObject *object)
{
  CpInProcessDiscovery *self = CP_IN_PROCESS_DISCOVERY (object);

  g_clear_object (&self->server);
  g_clear_object (&self->plugin_server);

  G_OBJECT_CLASS (cp_in_process_discovery_parent_class)->dispose (object);
}

static void
cp_in_process_discovery_get_property (GObject    *object,
                                      guint       prop_id,
                                      GValue     *value,
                                      GParamSpec *pspec)
{
  CpInProcessDiscovery *self = CP_IN_PROCESS_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_SERVER:
      g_value_set_object (value, self->server);
      break;
    case PROP_PLUGIN_SERVER:
      g_value_set_object (value, self->plugin_server);
      break;
    case PROP_CONTROL_SECRET:
      if (self->plugin_server != NULL)
        g_object_get_property (G_OBJECT (self->plugin_server), "control-secret", value);
      else
        g_value_set_string (value, NULL);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_in_process_discovery_set_property (GObject      *object,
                                      guint         prop_id,
                                      const GValue *value,
                                      GParamSpec   *pspec)
{
  CpInProcessDiscovery *self = CP_IN_PROCESS_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_SERVER:
      if (g_value_get_object (value) != NULL)
        g_set_object (&self->server, g_value_get_object (value));
      break;
    case PROP_PLUGIN_SERVER:
      self->plugin_server = g_value_dup_object (value);
      if (self->plugin_server != NULL)
        g_set_object (&self->server, cp_server_get_rpc_server (self->plugin_server));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_in_process_discovery_constructed (GObject *object)
{
  CpInProcessDiscovery *self = CP_IN_PROCESS_DISCOVERY (object);

  G_OBJECT_CLASS (cp_in_process_discovery_parent_class)->constructed (object);

  if (self->server == NULL)
    g_critical ("CpInProcessDiscovery needs a server or a plugin server");
}

static void
cp_in_process_discovery_class_init (CpInProcessDiscoveryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = cp_in_process_discovery_dispose;
  object_class->constructed = cp_in_process_discovery_constructed;
  object_class->get_property = cp_in_process_discovery_get_property;
  object_class->set_property = cp_in_process_discovery_set_property;

  /**
   * CpInProcessDiscovery:server:
   *
   * The server whose plugins are reached (the [class@ConnectPlugin.RpcServer] under a
   * plugin server).
   */
  properties[PROP_SERVER] =
    g_param_spec_object ("server", NULL, NULL, CP_TYPE_RPC_SERVER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * CpInProcessDiscovery:plugin-server:
   *
   * The plugin server whose plugins are reached; it is started (without
   * listening) when first discovered.
   */
  properties[PROP_PLUGIN_SERVER] =
    g_param_spec_object ("plugin-server", NULL, NULL, CP_TYPE_SERVER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS);

  /**
   * CpInProcessDiscovery:control-secret:
   *
   * The [property@Server:control-secret] of the plugin server (%NULL
   * without one), which the discovery sets when first asked unless the
   * server has a secret or serves PluginControl and PluginIdentity without.
   */
  properties[PROP_CONTROL_SECRET] =
    g_param_spec_string ("control-secret", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_in_process_discovery_init (CpInProcessDiscovery *self)
{
}

/**
 * cp_in_process_discovery_new:
 * @server: the server serving the plugins, in this process
 *
 * Creates a discovery that reaches @server in this process, without sockets.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.InProcessDiscovery]
 */
CpInProcessDiscovery *
cp_in_process_discovery_new (CpRpcServer *server)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), NULL);

  return g_object_new (CP_TYPE_IN_PROCESS_DISCOVERY, "server", server, NULL);
}

/**
 * cp_in_process_discovery_new_for_server:
 * @server: the plugin server, in this process
 *
 * Creates a discovery that reaches the plugin server @server in this process, without sockets.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.InProcessDiscovery] for the plugins of
 *   @server, which it starts (without listening) when first asked
 */
CpInProcessDiscovery *
cp_in_process_discovery_new_for_server (CpServer *server)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  return g_object_new (CP_TYPE_IN_PROCESS_DISCOVERY, "plugin-server", server, NULL);
}

/**
 * cp_in_process_discovery_get_plugin_server:
 * @self: a [class@ConnectPlugin.InProcessDiscovery]
 *
 * Gets the plugin server this discovery reaches, if it was made for one.
 *
 * Returns: (transfer none) (nullable): the plugin server, when the
 *   discovery was made for one
 */
CpServer *
cp_in_process_discovery_get_plugin_server (CpInProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_IN_PROCESS_DISCOVERY (self), NULL);

  return self->plugin_server;
}

/**
 * cp_in_process_discovery_get_server:
 * @self: a [class@ConnectPlugin.InProcessDiscovery]
 *
 * Gets the RPC server this discovery reaches.
 *
 * Returns: (transfer none): the server
 */
CpRpcServer *
cp_in_process_discovery_get_server (CpInProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_IN_PROCESS_DISCOVERY (self), NULL);

  return self->server;
}
