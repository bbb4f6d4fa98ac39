/* cp-discovery.c: how a host finds the plugins it talks to
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-discovery.h"

/**
 * CpDiscovery:
 *
 * A source of plugin endpoints for [class@Client].
 *
 * A discovery back-end turns "the plugins I want" into URLs of servers
 * that serve them: [class@StaticDiscovery] knows a fixed list,
 * [class@ProcessDiscovery] launches a plugin executable and reads the
 * address it announces, [class@InProcessDiscovery] reaches a server in the
 * same process without a socket. Back-ends emit [signal@Discovery::changed]
 * when what they would answer changes (a new address, a plugin that went
 * away), and the client then discovers again.
 *
 * Like every connectplugin object, a discovery belongs to the
 * [struct@GLib.MainContext] it was created in: results and signals are delivered
 * there.
 */

G_DEFINE_INTERFACE (CpDiscovery, cp_discovery, G_TYPE_OBJECT)

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static CpChannel *
cp_discovery_real_create_channel (CpDiscovery  *discovery,
                                  const char   *url,
                                  GError      **error)
{
  return cp_channel_new (url, error);
}

static void
cp_discovery_real_shutdown_async (CpDiscovery         *discovery,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (discovery, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_discovery_real_shutdown_async);
  g_task_return_boolean (task, TRUE);
}

static gboolean
cp_discovery_real_shutdown_finish (CpDiscovery   *discovery,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
cp_discovery_default_init (CpDiscoveryInterface *iface)
{
  iface->create_channel = cp_discovery_real_create_channel;
  iface->shutdown_async = cp_discovery_real_shutdown_async;
  iface->shutdown_finish = cp_discovery_real_shutdown_finish;

  /**
   * CpDiscovery::changed:
   * @discovery: the discovery
   *
   * What the discovery would answer has changed: an endpoint appeared,
   * moved or went away (a launched plugin exited or was restarted).
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_INTERFACE (iface),
                  G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
}

/**
 * cp_discovery_discover_async: (virtual discover_async)
 * @discovery: a [iface@ConnectPlugin.Discovery]
 * @plugins: (array zero-terminated=1) (nullable): names of the plugins wanted;
 *   %NULL for any
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when the endpoints are known
 * @user_data: (closure): data for @callback
 *
 * Finds the endpoints serving @plugins. A back-end that launches plugins
 * starts them here if they are not running.
 */
void
cp_discovery_discover_async (CpDiscovery         *discovery,
                             const char * const  *plugins,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (CP_IS_DISCOVERY (discovery));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  CP_DISCOVERY_GET_IFACE (discovery)->discover_async (discovery, plugins, cancellable,
                                                      callback, user_data);
}

/**
 * cp_discovery_discover_finish: (virtual discover_finish)
 * @discovery: a [iface@ConnectPlugin.Discovery]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Discovery.discover_async].
 *
 * Returns: (transfer full) (array zero-terminated=1): the endpoint URLs,
 *   best first (at least one), or %NULL on error
 */
char **
cp_discovery_discover_finish (CpDiscovery   *discovery,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (CP_IS_DISCOVERY (discovery), NULL);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return CP_DISCOVERY_GET_IFACE (discovery)->discover_finish (discovery, result, error);
}

/**
 * cp_discovery_create_channel: (virtual create_channel)
 * @discovery: a [iface@ConnectPlugin.Discovery]
 * @url: one of the URLs returned by [method@ConnectPlugin.Discovery.discover_finish]
 * @error: return location for a [struct@GLib.Error]
 *
 * Makes the channel a client uses to talk to @url.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Channel], or %NULL on error
 */
CpChannel *
cp_discovery_create_channel (CpDiscovery  *discovery,
                             const char   *url,
                             GError      **error)
{
  g_return_val_if_fail (CP_IS_DISCOVERY (discovery), NULL);
  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return CP_DISCOVERY_GET_IFACE (discovery)->create_channel (discovery, url, error);
}

/**
 * cp_discovery_shutdown_async: (virtual shutdown_async)
 * @discovery: a [iface@ConnectPlugin.Discovery]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when done
 * @user_data: (closure): data for @callback
 *
 * Asks what the discovery started (for [class@ProcessDiscovery], the
 * plugin process) to shut down. Back-ends that start nothing complete at
 * once.
 */
void
cp_discovery_shutdown_async (CpDiscovery         *discovery,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (CP_IS_DISCOVERY (discovery));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  CP_DISCOVERY_GET_IFACE (discovery)->shutdown_async (discovery, cancellable,
                                                      callback, user_data);
}

/**
 * cp_discovery_shutdown_finish: (virtual shutdown_finish)
 * @discovery: a [iface@ConnectPlugin.Discovery]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Discovery.shutdown_async].
 *
 * Returns: %TRUE when everything the discovery started is gone
 */
gboolean
cp_discovery_shutdown_finish (CpDiscovery   *discovery,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (CP_IS_DISCOVERY (discovery), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return CP_DISCOVERY_GET_IFACE (discovery)->shutdown_finish (discovery, result, error);
}

/**
 * cp_discovery_emit_changed:
 * @discovery: a [iface@ConnectPlugin.Discovery]
 *
 * Emits [signal@Discovery::changed]. For implementations.
 */
void
cp_discovery_emit_changed (CpDiscovery *discovery)
{
  g_return_if_fail (CP_IS_DISCOVERY (discovery));

  g_signal_emit (discovery, signals[SIGNAL_CHANGED], 0);
}
