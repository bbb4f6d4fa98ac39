/* cp-client.c: a host's connection to a plugin server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The object: properties, dispensing proxies, closing. Connecting is in
 * cp-client-connect.c (see cp-client-private.h).
 */
#include <string.h>

#include "cp-client-private.h"
#include "cp-call-options-private.h"
#include "cp-channel-private.h"
#include "cp-host-enum-types.h"
#include "cp-enum-types.h"
#include "cp-static-discovery.h"
#include "cp-error.h"
#include "cp-host-private.h"
#include "cp-sync-private.h"
#include "cp-plugin-constants.h"
#include "cp-rpc-server-private.h"
#include "cp-server.h"

/**
 * CpClient:
 *
 * A host's connection to a server of plugins: finds it through a
 * [iface@Discovery], negotiates with the handshake, follows its health and
 * dispenses typed proxies of the plugins' services.
 *
 * ```c
 * g_autoptr(CpClient) client = cp_client_new ("http://127.0.0.1:8080");
 * const char *plugins[] = { "kv", NULL };
 *
 * cp_client_set_plugins (client, plugins);
 * if (!cp_client_connect_sync (client, NULL, &error))
 *   …
 * kv = (KvKVService *) cp_client_dispense (client, "kv", KV_TYPE_KV_SERVICE_PROXY, &error);
 * ```
 *
 * The client's [property@Client:state] goes `CREATED → CONNECTING →
 * CONNECTED → READY`, and later to `FAILED` (the handshake failed, the
 * plugin became unhealthy or its health stream broke), `RECONNECTING`
 * ([method@ConnectPlugin.Client.connect_async] after a failure, or the discovery reported a
 * change) and `CLOSED`. Each change is notified.
 *
 * The handshake sends core protocol version 1, the
 * [property@Client:app-protocol-version], the magic cookie, the requested
 * plugins, `client_version` metadata and the optional self id/version.
 * The server's errors keep their Connect codes (a wrong cookie or core
 * version: `invalid_argument`; a wrong app version: `failed_precondition`);
 * a requested plugin that the server does not serve fails the connection
 * with `not_found` naming the plugin.
 *
 * Once connected, a [class@HealthMonitor] follows the server's health: the
 * client is ready after the first healthy report (or at once when
 * [property@Client:health-check] is off), and fails when the plugin
 * becomes unhealthy.
 *
 * Graceful shutdown: when the plugin in use reports `NOT_SERVING`, or
 * the discovery stops offering it (a Kubernetes endpoint turning not
 * ready), the client sends it no new call: the proxies it dispensed fail
 * new calls at once with `unavailable` while the calls already running
 * finish on the old connection; the client then connects to another
 * endpoint the discovery offers, if any, and the proxies follow it.
 *
 * With a [property@Client:circuit-breaker], the calls made through the
 * client's channel (the proxies it dispenses) fail at once while the
 * plugin keeps failing, and the health reports move the breaker too: an
 * unhealthy report opens it at once, a `SERVING` report makes an open
 * circuit half-open.
 *
 * A [property@Client:retry-policy] and interceptors
 * ([method@ConnectPlugin.Client.add_interceptor]) apply the same way to the
 * calls of every proxy the client dispenses, across reconnects: the
 * client's interceptors first, then the channel's own, then the call's;
 * retries inside them, the circuit breaker inside the retries.
 *
 * A client is a [iface@Gio.Initable] and a [iface@Gio.AsyncInitable]:
 * initializing it connects, so `g_async_initable_new_async (CP_TYPE_CLIENT,
 * …, "discovery", discovery, NULL)` gives a ready client, as
 * [class@Gio.DBusProxy] does for a proxy.
 * [method@ConnectPlugin.Client.get_plugin_model] lists the plugins of the
 * connection as a [iface@Gio.ListModel].
 *
 * [method@ConnectPlugin.Client.close_async] stops everything, and asks the discovery to
 * shut down what it launched (a plugin process).
 */

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_HEALTH_TIMEOUT_MS    5000
#define DEFAULT_CALL_TIMEOUT_MS      30000
#define DEFAULT_HEALTH_INTERVAL_MS   30000

static GParamSpec *properties[N_PROPS];

static void cp_client_initable_iface_init       (GInitableIface      *iface);
static void cp_client_async_initable_iface_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpClient, cp_client, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      cp_client_initable_iface_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE,
                                                      cp_client_async_initable_iface_init))

/* GInitable and GAsyncInitable: initializing is connecting, so that
 * g_initable_new () / g_async_initable_new_async () (with the
 * "discovery" property) give a ready client, as GDBusProxy gives a
 * proxy. */
static gboolean
cp_client_initable_init (GInitable     *initable,
                         GCancellable  *cancellable,
                         GError       **error)
{
  return cp_client_connect_sync (CP_CLIENT (initable), cancellable, error);
}

static void
cp_client_initable_iface_init (GInitableIface *iface)
{
  iface->init = cp_client_initable_init;
}

static void
cp_client_async_initable_init_async (GAsyncInitable      *initable,
                                     int                  io_priority,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  cp_client_connect_async (CP_CLIENT (initable), cancellable, callback, user_data);
}

static gboolean
cp_client_async_initable_init_finish (GAsyncInitable  *initable,
                                      GAsyncResult    *result,
                                      GError         **error)
{
  return cp_client_connect_finish (CP_CLIENT (initable), result, error);
}

static void
cp_client_async_initable_iface_init (GAsyncInitableIface *iface)
{
  iface->init_async = cp_client_async_initable_init_async;
  iface->init_finish = cp_client_async_initable_init_finish;
}

void
cp_client_notify (CpClient *self,
                  guint     prop_id)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

/* "kv.v1.KVService" and "/kv.v1.KVService/" name the same service. */
static gboolean
service_matches (const char *path,
                 const char *full_name)
{
  gsize len;

  if (path == NULL)
    return FALSE;
  while (*path == '/')
    path++;
  len = strlen (path);
  while (len > 0 && path[len - 1] == '/')
    len--;
  return len > 0 && strlen (full_name) == len && strncmp (path, full_name, len) == 0;
}

/**
 * cp_client_dispense:
 * @client: a [class@ConnectPlugin.Client]
 * @plugin_name: the name of a plugin the server serves
 * @proxy_type: the generated proxy class of one of its services (a
 *   [class@ConnectPlugin.Proxy] subclass)
 * @error: return location for a [struct@GLib.Error]
 *
 * Makes a proxy of @proxy_type on the client's channel, to call
 * @plugin_name. Errors: `failed_precondition` when the client is not
 * ready, `not_found` when the server does not serve @plugin_name, or the
 * plugin declares services and @proxy_type's is not among them.
 *
 * The proxy follows the client: when it reconnects (a launched plugin
 * restarted on another port, another endpoint), the client moves the
 * proxies it dispensed to the new channel
 * ([property@ConnectPlugin.Proxy:channel]), so they can be kept.
 * Calls made while the client is between two connections go to the old
 * channel and fail, as they would without a client; after the plugin
 * reported `NOT_SERVING` or was withdrawn by the discovery, they fail at
 * once with `unavailable` without reaching it (calls already running
 * finish).
 *
 * Returns: (transfer full): a new proxy of type @proxy_type, or %NULL
 */
CpProxy *
cp_client_dispense (CpClient    *client,
                    const char  *plugin_name,
                    GType        proxy_type,
                    GError     **error)
{
  CpPluginInfo *info;
  CpProxy *proxy;

  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);
  g_return_val_if_fail (plugin_name != NULL, NULL);
  g_return_val_if_fail (g_type_is_a (proxy_type, CP_TYPE_PROXY), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (client->state != CP_CLIENT_STATE_READY || client->channel == NULL)
    {
      g_autoptr(GEnumClass) klass = g_type_class_ref (CP_TYPE_CLIENT_STATE);

      g_set_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                   "cannot dispense plugin “%s”: the client is not ready (%s)", plugin_name,
                   g_enum_get_value (klass, client->state)->value_nick);
      return NULL;
    }
  info = cp_client_get_plugin_info (client, plugin_name);
  if (info == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND,
                   "plugin “%s” is not served by %s (it was not requested, or the server "
                   "does not serve it)", plugin_name, client->url);
      return NULL;
    }

  proxy = g_object_new (proxy_type, "channel", client->channel, NULL);

  /* When the plugin says what it serves, the proxy must be one of them. */
  {
    CpServiceDescriptor *descriptor = cp_proxy_get_descriptor (proxy);
    const char *full_name = descriptor != NULL ? cp_service_descriptor_get_full_name (descriptor) : NULL;
    const char *service_path = cp_plugin_info_get_service_path (info);
    g_autoptr(GPtrArray) provides = cp_plugin_info_get_provides (info);
    gboolean declared = service_path != NULL && *service_path != '\0';
    gboolean ok = full_name == NULL || service_matches (service_path, full_name);

    for (guint i = 0; provides != NULL && i < provides->len; i++)
      {
        const char *path = cp_service_declaration_get_path (g_ptr_array_index (provides, i));

        if (path != NULL && *path != '\0')
          declared = TRUE;
        if (full_name != NULL && service_matches (path, full_name))
          ok = TRUE;
      }
    if (declared && !ok)
      {
        g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND,
                     "plugin “%s” does not serve %s (it serves %s)", plugin_name,
                     full_name, service_path);
        g_object_unref (proxy);
        return NULL;
      }
  }
  cp_client_track_proxy (client, proxy);
  return proxy;
}

/* Remembers @proxy (weakly), to move it to each new channel. */
void
cp_client_track_proxy (CpClient *self,
                       CpProxy  *proxy)
{
  GWeakRef *ref;

  if (self->dispensed == NULL)
    self->dispensed = g_ptr_array_new_with_free_func (cp_client_weak_ref_free);
  /* Forget the proxies gone since. */
  for (guint i = self->dispensed->len; i > 0; i--)
    {
      g_autoptr(GObject) alive = g_weak_ref_get (self->dispensed->pdata[i - 1]);

      if (alive == NULL)
        g_ptr_array_remove_index_fast (self->dispensed, i - 1);
    }
  ref = g_new0 (GWeakRef, 1);
  g_weak_ref_init (ref, proxy);
  g_ptr_array_add (self->dispensed, ref);
}

void
cp_client_weak_ref_free (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

/* Moves the proxies dispensed so far to the client's (new) channel. */
void
cp_client_move_proxies (CpClient *self)
{
  for (guint i = 0; self->dispensed != NULL && i < self->dispensed->len; i++)
    {
      g_autoptr(CpProxy) proxy = g_weak_ref_get (self->dispensed->pdata[i]);

      if (proxy != NULL)
        cp_proxy_set_channel (proxy, self->channel);
    }
}

static void
close_shutdown_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (cp_discovery_shutdown_finish (CP_DISCOVERY (source), result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * cp_client_close_async:
 * @client: a [class@ConnectPlugin.Client]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when closed
 * @user_data: (closure): data for @callback
 *
 * Closes the client for good (state `CLOSED`): pending connects fail with
 * `canceled`, health monitoring stops, and, with
 * [property@Client:shutdown-on-close], the discovery is asked to shut
 * down what it launched (a plugin process: `PluginControl.Shutdown`, then
 * signals). Proxies dispensed earlier keep their channel but the plugin
 * may be gone. The client is closed even when the shutdown reports an
 * error (e.g. a re-attached plugin without PluginControl).
 */
void
cp_client_close_async (CpClient            *client,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  GTask *task;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (CP_IS_CLIENT (client));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (client, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_client_close_async);

  if (client->state == CP_CLIENT_STATE_CLOSED)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  if (client->attempt_cancellable != NULL)
    {
      g_cancellable_cancel (client->attempt_cancellable);
      g_clear_object (&client->attempt_cancellable);
    }
  client->attempt++;
  cp_client_teardown (client);
  cp_client_set_state (client, CP_CLIENT_STATE_CLOSED);
  error = g_error_new (CP_ERROR, CP_ERROR_CANCELED, "the client was closed");
  cp_client_complete_waiters (client, error);

  if (client->shutdown_on_close)
    cp_discovery_shutdown_async (client->discovery, cancellable, close_shutdown_cb, task);
  else
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

/**
 * cp_client_close_finish:
 * @client: a [class@ConnectPlugin.Client]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Client.close_async].
 *
 * Returns: %TRUE when everything is shut down
 */
gboolean
cp_client_close_finish (CpClient      *client,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

typedef struct {
  CpClient *client;
  GCancellable *cancellable;
} CloseSync;

static void
start_close (gpointer             data,
             GAsyncReadyCallback  callback,
             gpointer             callback_data)
{
  CloseSync *sync = data;

  cp_client_close_async (sync->client, sync->cancellable, callback, callback_data);
}

/**
 * cp_client_close_sync:
 * @client: a [class@ConnectPlugin.Client]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error]
 *
 * The blocking form of [method@ConnectPlugin.Client.close_async]: returns
 * once the client is closed and what its discovery launched is shut down.
 * The client's [struct@GLib.MainContext] keeps running meanwhile: this
 * thread iterates it when it may (it runs it, or no thread does); else the
 * close runs there and this thread waits.
 *
 * Returns: %TRUE when the shutdown of what was launched succeeded (the
 *   client is closed either way)
 */
gboolean
cp_client_close_sync (CpClient      *client,
                      GCancellable  *cancellable,
                      GError       **error)
{
  CloseSync sync = { client, cancellable };
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (CP_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);

  result = cp_run_sync (client->context, start_close, &sync);
  return cp_client_close_finish (client, result, error);
}

/* ---- GObject ---- */

static void
cp_client_constructed (GObject *object)
{
  CpClient *self = CP_CLIENT (object);

  G_OBJECT_CLASS (cp_client_parent_class)->constructed (object);

  if (self->discovery == NULL)
    {
      const char *urls[] = { self->endpoint, NULL };

      if (self->endpoint == NULL)
        g_critical ("CpClient needs a discovery or an endpoint");
      self->discovery = CP_DISCOVERY (cp_static_discovery_new (self->endpoint != NULL ? urls : NULL));
    }
  self->changed_id = g_signal_connect (self->discovery, "changed",
                                       G_CALLBACK (cp_client_discovery_changed_cb), self);
}

static void
cp_client_dispose (GObject *object)
{
  CpClient *self = CP_CLIENT (object);

  if (self->attempt_cancellable != NULL)
    {
      g_cancellable_cancel (self->attempt_cancellable);
      g_clear_object (&self->attempt_cancellable);
    }
  cp_client_teardown (self);
  if (self->discovery != NULL)
    {
      g_clear_signal_handler (&self->changed_id, self->discovery);
      g_clear_object (&self->discovery);
    }

  G_OBJECT_CLASS (cp_client_parent_class)->dispose (object);
}

static void
cp_client_finalize (GObject *object)
{
  CpClient *self = CP_CLIENT (object);

  g_clear_pointer (&self->endpoint, g_free);
  g_clear_pointer (&self->plugins, g_strfreev);
  g_clear_pointer (&self->cookie_key, g_free);
  g_clear_pointer (&self->cookie_value, g_free);
  g_clear_pointer (&self->self_id, g_free);
  g_clear_pointer (&self->self_version, g_free);
  g_clear_object (&self->circuit_breaker);
  g_clear_object (&self->retry_policy);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_database);
  g_clear_pointer (&self->interceptors, g_ptr_array_unref);
  g_clear_pointer (&self->dispensed, g_ptr_array_unref);
  g_clear_object (&self->plugin_model);
  g_clear_pointer (&self->metrics, cp_client_metrics_unref);
  g_clear_pointer (&self->metrics_label, g_free);
  g_clear_pointer (&self->connect_waiters, g_ptr_array_unref);
  g_clear_error (&self->error);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (cp_client_parent_class)->finalize (object);
}

static void
cp_client_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  CpClient *self = CP_CLIENT (object);

  switch (prop_id)
    {
    case PROP_DISCOVERY:
      g_value_set_object (value, self->discovery);
      break;
    case PROP_ENDPOINT:
      g_value_set_string (value, self->endpoint);
      break;
    case PROP_PLUGINS:
      g_value_set_boxed (value, self->plugins);
      break;
    case PROP_MAGIC_COOKIE_KEY:
      g_value_set_string (value, self->cookie_key);
      break;
    case PROP_MAGIC_COOKIE_VALUE:
      g_value_set_string (value, self->cookie_value);
      break;
    case PROP_APP_PROTOCOL_VERSION:
      g_value_set_int (value, self->app_version);
      break;
    case PROP_HANDSHAKE_TIMEOUT_MS:
      g_value_set_uint (value, self->handshake_timeout_ms);
      break;
    case PROP_HEALTH_TIMEOUT_MS:
      g_value_set_uint (value, self->health_timeout_ms);
      break;
    case PROP_CALL_TIMEOUT_MS:
      g_value_set_uint (value, self->call_timeout_ms);
      break;
    case PROP_HEALTH_INTERVAL_MS:
      g_value_set_uint (value, self->health_interval_ms);
      break;
    case PROP_HEALTH_CHECK:
      g_value_set_boolean (value, self->health_check);
      break;
    case PROP_AUTO_RECONNECT:
      g_value_set_boolean (value, self->auto_reconnect);
      break;
    case PROP_SHUTDOWN_ON_CLOSE:
      g_value_set_boolean (value, self->shutdown_on_close);
      break;
    case PROP_SELF_ID:
      g_value_set_string (value, self->self_id);
      break;
    case PROP_SELF_VERSION:
      g_value_set_string (value, self->self_version);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    case PROP_CHANNEL:
      g_value_set_object (value, self->channel);
      break;
    case PROP_HEALTH_MONITOR:
      g_value_set_object (value, self->monitor);
      break;
    case PROP_CIRCUIT_BREAKER:
      g_value_set_object (value, self->circuit_breaker);
      break;
    case PROP_RETRY_POLICY:
      g_value_set_object (value, self->retry_policy);
      break;
    case PROP_METRICS_ENABLED:
      g_value_set_boolean (value, self->metrics_enabled);
      break;
    case PROP_METRICS_LABEL:
      g_value_set_string (value, self->metrics_label);
      break;
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;
    case PROP_HTTP_VERSION:
      g_value_set_enum (value, self->http_version);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* ------------------------------------------------------------------ */
/* Metrics (CpClient:metrics-enabled)                                   */

void
cp_client_update_metrics_label (CpClient *self)
{
  const char *label = self->metrics_label;

  if (self->metrics == NULL)
    return;
  if (label == NULL && self->plugins != NULL && self->plugins[0] != NULL)
    label = self->plugins[0];
  if (label == NULL)
    label = self->endpoint != NULL ? self->endpoint : self->url;
  cp_client_metrics_set_plugin (self->metrics, label);
}

static void
set_metrics_enabled (CpClient *self,
                     gboolean  enabled)
{
  if (self->metrics_enabled == enabled)
    return;
  self->metrics_enabled = enabled;
  if (enabled && self->metrics == NULL)
    {
      self->metrics = cp_client_metrics_new (NULL);
      cp_client_update_metrics_label (self);
      cp_client_metrics_set_circuit_breaker (self->metrics, self->circuit_breaker);
      if (self->monitor != NULL)
        cp_client_metrics_set_health (self->metrics,
                                      cp_health_monitor_get_health_state (self->monitor));
    }
  if (self->channel != NULL)
    cp_channel_set_client_metrics (self->channel, enabled ? self->metrics : NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_METRICS_ENABLED]);
}

/**
 * cp_client_render_metrics:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Writes the client's series (see [property@Client:metrics-enabled]) in
 * the Prometheus text exposition format 0.0.4, for an application that
 * serves its metrics its own way. Every client family is declared, even
 * without samples.
 *
 * Returns: (transfer full): the exposition
 */
char *
cp_client_render_metrics (CpClient *client)
{
  g_autoptr(GPtrArray) sources = g_ptr_array_new ();
  GString *out = g_string_new (NULL);

  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  if (client->metrics != NULL)
    g_ptr_array_add (sources, client->metrics);
  cp_client_metrics_render (out, sources);
  return g_string_free (out, FALSE);
}

#define SOURCES_KEY "cp-client-metrics-sources"

/* The clients' families, after the server's own (unowned @user_data: the
 * server's object data, freed after its collectors are dropped). */
static void
collect_clients (GString  *out,
                 gpointer  user_data)
{
  cp_client_metrics_render (out, user_data);
}

/**
 * cp_client_add_metrics_to_server:
 * @client: a [class@ConnectPlugin.Client]
 * @server: the host's [class@ConnectPlugin.Server]
 *
 * Serves the client's metrics at the `/metrics` of @server, next to the
 * server's own: turns on [property@Client:metrics-enabled] and
 * [property@ConnectPlugin.Server:metrics-enabled] (and the metrics of its
 * [class@RpcServer] at once). Any number of clients may be added to one
 * server: their series are written family by family, each family declared
 * once, told apart by their `plugin` label ([property@Client:metrics-label]).
 * The server keeps the client's series (not the client) until it is
 * finalized. Call it in the server's thread; adding a client twice does
 * nothing.
 */
void
cp_client_add_metrics_to_server (CpClient *client,
                                 CpServer *server)
{
  CpRpcServer *rpc;
  GPtrArray *sources;

  g_return_if_fail (CP_IS_CLIENT (client));
  g_return_if_fail (CP_IS_SERVER (server));

  set_metrics_enabled (client, TRUE);
  g_object_set (server, "metrics-enabled", TRUE, NULL);
  rpc = cp_server_get_rpc_server (server);
  g_object_set (rpc, "metrics-enabled", TRUE, NULL);

  sources = g_object_get_data (G_OBJECT (rpc), SOURCES_KEY);
  if (sources == NULL)
    {
      sources = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_client_metrics_unref);
      g_object_set_data_full (G_OBJECT (rpc), SOURCES_KEY, sources,
                              (GDestroyNotify) g_ptr_array_unref);
      cp_metrics_add_collector (cp_rpc_server_get_metrics (rpc), collect_clients, sources, NULL);
    }
  if (!g_ptr_array_find (sources, client->metrics, NULL))
    g_ptr_array_add (sources, cp_client_metrics_ref (client->metrics));
}

static void
set_string (char       **field,
            const GValue *value,
            const char   *fallback)
{
  g_free (*field);
  *field = g_strdup (g_value_get_string (value) != NULL ? g_value_get_string (value) : fallback);
}

static void
cp_client_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  CpClient *self = CP_CLIENT (object);

  switch (prop_id)
    {
    case PROP_DISCOVERY:
      self->discovery = g_value_dup_object (value);
      break;
    case PROP_ENDPOINT:
      set_string (&self->endpoint, value, NULL);
      break;
    case PROP_PLUGINS:
      cp_client_set_plugins (self, g_value_get_boxed (value));
      break;
    case PROP_MAGIC_COOKIE_KEY:
      set_string (&self->cookie_key, value, CP_MAGIC_COOKIE_KEY);
      break;
    case PROP_MAGIC_COOKIE_VALUE:
      set_string (&self->cookie_value, value, CP_MAGIC_COOKIE_VALUE);
      break;
    case PROP_APP_PROTOCOL_VERSION:
      self->app_version = g_value_get_int (value);
      break;
    case PROP_HANDSHAKE_TIMEOUT_MS:
      self->handshake_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_HEALTH_TIMEOUT_MS:
      self->health_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_CALL_TIMEOUT_MS:
      self->call_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_HEALTH_INTERVAL_MS:
      self->health_interval_ms = g_value_get_uint (value);
      break;
    case PROP_HEALTH_CHECK:
      self->health_check = g_value_get_boolean (value);
      break;
    case PROP_AUTO_RECONNECT:
      self->auto_reconnect = g_value_get_boolean (value);
      break;
    case PROP_SHUTDOWN_ON_CLOSE:
      self->shutdown_on_close = g_value_get_boolean (value);
      break;
    case PROP_SELF_ID:
      set_string (&self->self_id, value, NULL);
      break;
    case PROP_SELF_VERSION:
      set_string (&self->self_version, value, NULL);
      break;
    case PROP_CIRCUIT_BREAKER:
      cp_client_set_circuit_breaker (self, g_value_get_object (value));
      break;
    case PROP_RETRY_POLICY:
      cp_client_set_retry_policy (self, g_value_get_object (value));
      break;
    case PROP_METRICS_ENABLED:
      set_metrics_enabled (self, g_value_get_boolean (value));
      break;
    case PROP_METRICS_LABEL:
      if (g_strcmp0 (self->metrics_label, g_value_get_string (value)) != 0)
        {
          set_string (&self->metrics_label, value, NULL);
          cp_client_update_metrics_label (self);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_TLS_CERTIFICATE:
      g_set_object (&self->tls_certificate, g_value_get_object (value));
      break;
    case PROP_TLS_DATABASE:
      g_set_object (&self->tls_database, g_value_get_object (value));
      break;
    case PROP_HTTP_VERSION:
      self->http_version = g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_client_class_init (CpClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  GParamFlags settable = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS;
  GParamFlags readable = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->constructed = cp_client_constructed;
  object_class->dispose = cp_client_dispose;
  object_class->finalize = cp_client_finalize;
  object_class->get_property = cp_client_get_property;
  object_class->set_property = cp_client_set_property;

  /**
   * CpClient:discovery:
   *
   * Where the server is found. Without one, a [class@StaticDiscovery] of
   * [property@Client:endpoint] is made.
   */
  properties[PROP_DISCOVERY] =
    g_param_spec_object ("discovery", NULL, NULL, CP_TYPE_DISCOVERY, construct);

  /**
   * CpClient:endpoint:
   *
   * The URL of the server (`http://host:port`, `unix:/path`), when no
   * [property@Client:discovery] is given.
   */
  properties[PROP_ENDPOINT] =
    g_param_spec_string ("endpoint", NULL, NULL, NULL, construct);

  /**
   * CpClient:plugins:
   *
   * The names of the plugins wanted (requested in the handshake; each must
   * be served). Takes effect at the next connect.
   *
   * None (the default) means all the server offers: a connectplugin
   * server names them in its handshake metadata, and the client asks for
   * them in a second handshake; a server that does not (connect-plugin-go's)
   * leaves the client connected with none, as its own clients are.
   */
  properties[PROP_PLUGINS] =
    g_param_spec_boxed ("plugins", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpClient:magic-cookie-key:
   *
   * The magic cookie's key ([const@ConnectPlugin.MAGIC_COOKIE_KEY] by default).
   */
  properties[PROP_MAGIC_COOKIE_KEY] =
    g_param_spec_string ("magic-cookie-key", NULL, NULL, CP_MAGIC_COOKIE_KEY, settable);

  /**
   * CpClient:magic-cookie-value:
   *
   * The magic cookie's value ([const@ConnectPlugin.MAGIC_COOKIE_VALUE] by default).
   */
  properties[PROP_MAGIC_COOKIE_VALUE] =
    g_param_spec_string ("magic-cookie-value", NULL, NULL, CP_MAGIC_COOKIE_VALUE, settable);

  /**
   * CpClient:app-protocol-version:
   *
   * The application protocol version; the server must speak exactly this one.
   */
  properties[PROP_APP_PROTOCOL_VERSION] =
    g_param_spec_int ("app-protocol-version", NULL, NULL, 0, G_MAXINT,
                      CP_DEFAULT_APP_PROTOCOL_VERSION, settable);

  /**
   * CpClient:handshake-timeout-ms:
   *
   * The deadline of the handshake call; 0 for none.
   */
  properties[PROP_HANDSHAKE_TIMEOUT_MS] =
    g_param_spec_uint ("handshake-timeout-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_HANDSHAKE_TIMEOUT_MS, settable);

  /**
   * CpClient:health-timeout-ms:
   *
   * The deadline of each health check, and how long a connected server
   * has to report healthy.
   */
  properties[PROP_HEALTH_TIMEOUT_MS] =
    g_param_spec_uint ("health-timeout-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_HEALTH_TIMEOUT_MS, settable);

  /**
   * CpClient:call-timeout-ms:
   *
   * The default deadline of unary calls made through the client's channel
   * (and the proxies it dispenses); 0 for none. Streaming calls get no
   * default deadline: a quiet stream (a `Watch`) may stay open for as long
   * as it is useful; give one a deadline with [property@CallOptions:timeout-ms].
   */
  properties[PROP_CALL_TIMEOUT_MS] =
    g_param_spec_uint ("call-timeout-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_CALL_TIMEOUT_MS, settable);

  /**
   * CpClient:health-interval-ms:
   *
   * The time between two health checks.
   */
  properties[PROP_HEALTH_INTERVAL_MS] =
    g_param_spec_uint ("health-interval-ms", NULL, NULL, 1, G_MAXUINT,
                       DEFAULT_HEALTH_INTERVAL_MS, settable);

  /**
   * CpClient:health-check:
   *
   * Whether the server's health is followed (and awaited before `READY`).
   */
  properties[PROP_HEALTH_CHECK] =
    g_param_spec_boolean ("health-check", NULL, NULL, TRUE, settable);

  /**
   * CpClient:auto-reconnect:
   *
   * Whether the client connects again by itself when its discovery
   * reports a change (e.g. a launched plugin was restarted).
   */
  properties[PROP_AUTO_RECONNECT] =
    g_param_spec_boolean ("auto-reconnect", NULL, NULL, TRUE, settable);

  /**
   * CpClient:shutdown-on-close:
   *
   * Whether closing the client asks the discovery to shut down what it
   * launched.
   */
  properties[PROP_SHUTDOWN_ON_CLOSE] =
    g_param_spec_boolean ("shutdown-on-close", NULL, NULL, TRUE, settable);

  /**
   * CpClient:self-id:
   *
   * The host's own id, sent in the handshake (the server then issues a
   * runtime identity); %NULL for none.
   */
  properties[PROP_SELF_ID] =
    g_param_spec_string ("self-id", NULL, NULL, NULL, settable);

  /**
   * CpClient:self-version:
   *
   * The host's own version, sent in the handshake.
   */
  properties[PROP_SELF_VERSION] =
    g_param_spec_string ("self-version", NULL, NULL, NULL, settable);

  /**
   * CpClient:state:
   *
   * Where the client is in its life cycle.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, CP_TYPE_CLIENT_STATE,
                       CP_CLIENT_STATE_CREATED, readable);

  /**
   * CpClient:url:
   *
   * The URL of the server connected to, or %NULL.
   */
  properties[PROP_URL] =
    g_param_spec_string ("url", NULL, NULL, NULL, readable);

  /**
   * CpClient:channel:
   *
   * The channel to the connected server, or %NULL.
   */
  properties[PROP_CHANNEL] =
    g_param_spec_object ("channel", NULL, NULL, CP_TYPE_CHANNEL, readable);

  /**
   * CpClient:health-monitor:
   *
   * The health monitor of the connected server, or %NULL.
   */
  properties[PROP_HEALTH_MONITOR] =
    g_param_spec_object ("health-monitor", NULL, NULL, CP_TYPE_HEALTH_MONITOR, readable);

  /**
   * CpClient:circuit-breaker:
   *
   * The [class@CircuitBreaker] of the calls made through the client's
   * channel, and so through the proxies it dispenses; %NULL (the default)
   * for none, as in connect-plugin-go, where the breaker is an interceptor
   * one adds.
   *
   * The client sets it as the [property@Channel:circuit-breaker] of every
   * channel it connects with, so one breaker follows the plugin across
   * reconnects (and proxies dispensed before a reconnect keep using it).
   * The client's own calls about the server — the handshake, the health
   * monitor's `Check` and `Watch`, calls with
   * [method@ConnectPlugin.Client.new_control_call_options] — are neither
   * stopped nor counted by it.
   *
   * The health reports drive it besides the calls' outcomes: when the
   * [class@HealthMonitor] reports the plugin unhealthy (`NOT_SERVING`, an
   * unknown service, a health stream that broke) the circuit opens at once
   * ([method@ConnectPlugin.CircuitBreaker.force_open]); when it reports
   * `SERVING`, an open circuit becomes half-open
   * ([method@ConnectPlugin.CircuitBreaker.force_half_open]) and probe
   * calls decide. The breaker's signals for these transitions are emitted
   * where the report is handled: in the client's context, or in the thread
   * of [method@ConnectPlugin.Client.connect_sync] while it waits for the
   * first report.
   *
   * Setting it while connected applies to the current channel at once.
   */
  properties[PROP_CIRCUIT_BREAKER] =
    g_param_spec_object ("circuit-breaker", NULL, NULL, CP_TYPE_CIRCUIT_BREAKER,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpClient:retry-policy:
   *
   * The [class@RetryPolicy] of the calls made through the client's
   * channel, and so through the proxies it dispenses; %NULL (the default)
   * for none.
   *
   * The client sets it as the [property@Channel:retry-policy] of every
   * channel it connects with, so it follows the plugin across reconnects.
   * The generated proxies know which methods are declared `IDEMPOTENT` or
   * `NO_SIDE_EFFECTS`: only those are retried for their error codes; any
   * call is retried when it never reached the plugin (the connection was
   * refused, as while a plugin process restarts). The client's own calls
   * about the server (handshake, health, plugin control) are not retried.
   *
   * Each attempt asks the [property@Client:circuit-breaker]; a refusal is
   * not retried. Setting it while connected applies to the current channel
   * at once.
   */
  properties[PROP_RETRY_POLICY] =
    g_param_spec_object ("retry-policy", NULL, NULL, CP_TYPE_RETRY_POLICY,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpClient:metrics-enabled:
   *
   * Whether the client's calls are counted for Prometheus: it turns on
   * [property@Channel:metrics-enabled] of every channel it connects with,
   * sharing one set of series so that they survive reconnects, and adds
   * per-plugin gauges: the health its [class@HealthMonitor] last reported
   * and the state of its [property@Client:circuit-breaker]. The client's
   * own calls about the server (handshake, health, plugin control) are
   * not counted. Every series carries a `plugin` label
   * ([property@Client:metrics-label]).
   *
   * Read them with [method@ConnectPlugin.Client.render_metrics], or serve
   * them at a server's `/metrics` with
   * [method@ConnectPlugin.Client.add_metrics_to_server]. Default %FALSE.
   */
  properties[PROP_METRICS_ENABLED] =
    g_param_spec_boolean ("metrics-enabled", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpClient:metrics-label:
   *
   * The value of the `plugin` label of the client's series. %NULL (the
   * default) stands for the first name of [property@Client:plugins], else
   * the endpoint, else the URL connected to. Give each client exposed by
   * one server a distinct label.
   */
  properties[PROP_METRICS_LABEL] =
    g_param_spec_string ("metrics-label", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpClient:tls-certificate:
   *
   * The client certificate, with its private key, that every channel the
   * client connects with presents to `https://` plugins asking for one
   * (mutual TLS, [property@ConnectPlugin.Channel:tls-certificate]). Set it
   * before connecting; reconnects keep it. From files:
   * [method@ConnectPlugin.Client.set_tls_files].
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpClient:tls-database:
   *
   * The CAs that `https://` plugins' certificates are verified against, on
   * every channel the client connects with
   * ([property@ConnectPlugin.Channel:tls-database]); %NULL for the
   * system's default.
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpClient:http-version:
   *
   * The HTTP version of every channel the client connects with
   * ([property@ConnectPlugin.Channel:http-version]); by default what
   * connect-plugin-go speaks. Set it before connecting.
   */
  properties[PROP_HTTP_VERSION] =
    g_param_spec_enum ("http-version", NULL, NULL, CP_TYPE_HTTP_VERSION, CP_HTTP_VERSION_DEFAULT,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_client_init (CpClient *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->connect_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  self->cookie_key = g_strdup (CP_MAGIC_COOKIE_KEY);
  self->cookie_value = g_strdup (CP_MAGIC_COOKIE_VALUE);
  self->app_version = CP_DEFAULT_APP_PROTOCOL_VERSION;
  self->handshake_timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS;
  self->health_timeout_ms = DEFAULT_HEALTH_TIMEOUT_MS;
  self->call_timeout_ms = DEFAULT_CALL_TIMEOUT_MS;
  self->health_interval_ms = DEFAULT_HEALTH_INTERVAL_MS;
  self->health_check = TRUE;
  self->auto_reconnect = TRUE;
  self->shutdown_on_close = TRUE;
}

/**
 * cp_client_new:
 * @endpoint: the URL of the server (`http://host:port`, `unix:/path`)
 *
 * Creates a client for a plugin server at @endpoint.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Client] for the server at @endpoint
 */
CpClient *
cp_client_new (const char *endpoint)
{
  g_return_val_if_fail (endpoint != NULL, NULL);

  return g_object_new (CP_TYPE_CLIENT, "endpoint", endpoint, NULL);
}

/**
 * cp_client_new_for_discovery:
 * @discovery: where to find the server
 *
 * Creates a client that finds its plugin server through @discovery.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Client] using @discovery
 */
CpClient *
cp_client_new_for_discovery (CpDiscovery *discovery)
{
  g_return_val_if_fail (CP_IS_DISCOVERY (discovery), NULL);

  return g_object_new (CP_TYPE_CLIENT, "discovery", discovery, NULL);
}

/**
 * cp_client_set_plugins:
 * @client: a [class@ConnectPlugin.Client]
 * @plugins: (array zero-terminated=1) (nullable): the names of the plugins wanted
 *
 * Sets [property@Client:plugins].
 */
void
cp_client_set_plugins (CpClient           *client,
                       const char * const *plugins)
{
  g_return_if_fail (CP_IS_CLIENT (client));

  if (cp_host_strv_replace (&client->plugins, plugins))
    g_object_notify_by_pspec (G_OBJECT (client), properties[PROP_PLUGINS]);
}

/**
 * cp_client_get_plugins:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the names of the plugins the client asks for.
 *
 * Returns: (transfer none) (array zero-terminated=1) (nullable): the names
 *   of the plugins wanted
 */
const char * const *
cp_client_get_plugins (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return (const char * const *) client->plugins;
}

/**
 * cp_client_get_state:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the client's connection state.
 *
 * Returns: the client's state
 */
CpClientState
cp_client_get_state (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), CP_CLIENT_STATE_CREATED);

  return client->state;
}

/**
 * cp_client_get_error:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the error that made the client fail, if it did.
 *
 * Returns: (transfer none) (nullable): why the client is in state `FAILED`
 */
const GError *
cp_client_get_error (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->error;
}

/**
 * cp_client_get_discovery:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the discovery the client finds its server through.
 *
 * Returns: (transfer none): the discovery
 */
CpDiscovery *
cp_client_get_discovery (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->discovery;
}

/**
 * cp_client_get_url:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the URL of the server the client is connected to.
 *
 * Returns: (transfer none) (nullable): the URL of the connected server
 */
const char *
cp_client_get_url (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->url;
}

/**
 * cp_client_get_channel:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the channel to the server, once connected.
 *
 * Returns: (transfer none) (nullable): the channel to the connected server
 */
CpChannel *
cp_client_get_channel (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->channel;
}

/**
 * cp_client_get_health_monitor:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the monitor following the server's health, once connected.
 *
 * Returns: (transfer none) (nullable): the health monitor of the connected
 *   server
 */
CpHealthMonitor *
cp_client_get_health_monitor (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->monitor;
}

/**
 * cp_client_get_handshake_response:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets the server's answer to the last handshake.
 *
 * Returns: (transfer none) (nullable): the server's handshake answer
 *   (plugins, server metadata, runtime identity)
 */
CpHandshakeResponse *
cp_client_get_handshake_response (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->response;
}

/**
 * cp_client_get_plugin_infos:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets what the server said about the requested plugins in the handshake.
 *
 * Returns: (transfer none) (element-type CpPluginInfo) (nullable): the
 *   plugins the server announced in the handshake
 */
GPtrArray *
cp_client_get_plugin_infos (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->infos;
}

/**
 * cp_client_get_plugin_model:
 * @client: a [class@ConnectPlugin.Client]
 *
 * The plugins of the connection as a [iface@Gio.ListModel] of
 * [class@ConnectPlugin.PluginInfo], for list widgets and bindings: filled
 * when a handshake succeeds, emptied when the connection goes, changed
 * (`items-changed`) in the client's context.
 *
 * Returns: (transfer none): the model, for as long as @client lives
 */
GListModel *
cp_client_get_plugin_model (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  if (client->plugin_model == NULL)
    {
      client->plugin_model = g_list_store_new (CP_TYPE_PLUGIN_INFO);
      if (client->infos != NULL)
        g_list_store_splice (client->plugin_model, 0, 0, client->infos->pdata, client->infos->len);
    }
  return G_LIST_MODEL (client->plugin_model);
}

/**
 * cp_client_get_plugin_info:
 * @client: a [class@ConnectPlugin.Client]
 * @plugin_name: a plugin name
 *
 * Gets what the server said about the plugin @plugin_name in the handshake.
 *
 * Returns: (transfer none) (nullable): what the server announced about
 *   @plugin_name
 */
CpPluginInfo *
cp_client_get_plugin_info (CpClient   *client,
                           const char *plugin_name)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);
  g_return_val_if_fail (plugin_name != NULL, NULL);

  for (guint i = 0; client->infos != NULL && i < client->infos->len; i++)
    if (g_strcmp0 (cp_plugin_info_get_name (g_ptr_array_index (client->infos, i)), plugin_name) == 0)
      return g_ptr_array_index (client->infos, i);
  return NULL;
}

/**
 * cp_client_new_control_call_options:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Makes call options for the host's own `connectplugin.v1.PluginControl`
 * and `PluginIdentity` calls on [method@ConnectPlugin.Client.get_channel]: they carry the
 * plugin's control secret as `Authorization: Bearer SECRET` (see
 * [property@Server:control-secret]), taken from the discovery's
 * `control-secret` property ([property@ProcessDiscovery:control-secret],
 * [property@StaticDiscovery:control-secret],
 * [property@InProcessDiscovery:control-secret]; a discovery of one's own
 * may have one too). Without a secret the options carry no header.
 * Do not use them for the plugins' own services: the secret is for the
 * plugin alone. Calls made with them pass the
 * [property@Client:circuit-breaker] whatever its state, and are not
 * counted by it; the [property@Client:retry-policy] and the client's and
 * channel's interceptors leave them alone too (interceptors added to the
 * options themselves still apply).
 *
 * Returns: (transfer full): new call options
 */
CpCallOptions *
cp_client_new_control_call_options (CpClient *client)
{
  CpCallOptions *options;
  GParamSpec *pspec;
  g_autofree char *secret = NULL;

  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  options = cp_call_options_new ();
  cp_call_options_set_circuit_breaker_exempt (options, TRUE);
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (client->discovery), "control-secret");
  if (pspec != NULL && pspec->value_type == G_TYPE_STRING && (pspec->flags & G_PARAM_READABLE))
    g_object_get (client->discovery, "control-secret", &secret, NULL);
  if (secret != NULL && secret[0] != '\0')
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", secret, NULL);

      soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                    "Authorization", bearer);
      explicit_bzero (bearer, strlen (bearer));
      explicit_bzero (secret, strlen (secret));
    }
  return options;
}

/**
 * cp_client_set_circuit_breaker:
 * @client: a [class@ConnectPlugin.Client]
 * @breaker: (nullable): a [class@ConnectPlugin.CircuitBreaker], or %NULL for none
 *
 * Sets [property@Client:circuit-breaker], also on the channel of the
 * current connection.
 */
void
cp_client_set_circuit_breaker (CpClient         *client,
                               CpCircuitBreaker *breaker)
{
  g_return_if_fail (CP_IS_CLIENT (client));
  g_return_if_fail (breaker == NULL || CP_IS_CIRCUIT_BREAKER (breaker));

  if (!g_set_object (&client->circuit_breaker, breaker))
    return;
  if (client->channel != NULL)
    cp_channel_set_circuit_breaker (client->channel, breaker);
  if (client->metrics != NULL)
    cp_client_metrics_set_circuit_breaker (client->metrics, breaker);
  g_object_notify_by_pspec (G_OBJECT (client), properties[PROP_CIRCUIT_BREAKER]);
}

/**
 * cp_client_set_retry_policy:
 * @client: a [class@ConnectPlugin.Client]
 * @policy: (nullable): a [class@ConnectPlugin.RetryPolicy], or %NULL for none
 *
 * Sets [property@Client:retry-policy], also on the channel of the current
 * connection.
 */
void
cp_client_set_retry_policy (CpClient      *client,
                            CpRetryPolicy *policy)
{
  g_return_if_fail (CP_IS_CLIENT (client));
  g_return_if_fail (policy == NULL || CP_IS_RETRY_POLICY (policy));

  if (!g_set_object (&client->retry_policy, policy))
    return;
  if (client->channel != NULL)
    cp_channel_set_retry_policy (client->channel, policy);
  g_object_notify_by_pspec (G_OBJECT (client), properties[PROP_RETRY_POLICY]);
}

/**
 * cp_client_get_retry_policy:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets [property@Client:retry-policy].
 *
 * Returns: (transfer none) (nullable): the client's retry policy
 */
CpRetryPolicy *
cp_client_get_retry_policy (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->retry_policy;
}

/**
 * cp_client_add_interceptor:
 * @client: a [class@ConnectPlugin.Client]
 * @interceptor: a [class@ConnectPlugin.ClientInterceptor]
 *
 * Appends @interceptor to the client's interceptors, which see every call
 * made through the client's channel — the calls of the proxies it
 * dispenses — from now on, across reconnects: the client's come first, in
 * the order they were added, before the channel's own
 * ([method@ConnectPlugin.Channel.add_interceptor]) and the call's
 * ([method@ConnectPlugin.CallOptions.add_interceptor]). The client's own
 * calls about the server (handshake, health checks and watches, plugin
 * control) are not intercepted. Applies to the current connection at once.
 */
void
cp_client_add_interceptor (CpClient            *client,
                           CpClientInterceptor *interceptor)
{
  g_return_if_fail (CP_IS_CLIENT (client));
  g_return_if_fail (CP_IS_CLIENT_INTERCEPTOR (interceptor));

  if (client->interceptors == NULL)
    client->interceptors = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (client->interceptors, g_object_ref (interceptor));
  if (client->channel != NULL)
    cp_channel_set_client_interceptors (client->channel, client->interceptors);
}

/**
 * cp_client_get_circuit_breaker:
 * @client: a [class@ConnectPlugin.Client]
 *
 * Gets [property@Client:circuit-breaker].
 *
 * Returns: (transfer none) (nullable): the client's circuit breaker
 */
CpCircuitBreaker *
cp_client_get_circuit_breaker (CpClient *client)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), NULL);

  return client->circuit_breaker;
}
