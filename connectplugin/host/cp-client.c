/* cp-client.c: a host's connection to a plugin server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One unit, one state machine (CREATED → CONNECTING → CONNECTED → READY,
 * then RECONNECTING, FAILED or CLOSED; see CpClient:state): the connect sequence,
 * reconnects and dispensing all read and move that one state, so it stays
 * whole although it is a little over 1,500 lines with its property table.
 */
#include <string.h>

#include "cp-client.h"
#include "cp-health-monitor-private.h"
#include "cp-host-enum-types.h"
#include "cp-in-process-discovery.h"
#include "cp-process-discovery.h"
#include "cp-rpc-server-private.h"
#include "cp-static-discovery.h"
#include "cp-error.h"
#include "cp-host-private.h"
#include "cp-plugin-constants.h"

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
 * [method@ConnectPlugin.Client.close_async] stops everything, and asks the discovery to
 * shut down what it launched (a plugin process).
 */

#define DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define DEFAULT_HEALTH_TIMEOUT_MS    5000
#define DEFAULT_CALL_TIMEOUT_MS      30000
#define DEFAULT_HEALTH_INTERVAL_MS   30000

struct _CpClient
{
  GObject parent_instance;

  /* configuration */
  CpDiscovery *discovery;
  char *endpoint;
  GStrv plugins;
  char *cookie_key;
  char *cookie_value;
  int app_version;
  guint handshake_timeout_ms;
  guint health_timeout_ms;
  guint call_timeout_ms;
  guint health_interval_ms;
  gboolean health_check;
  gboolean auto_reconnect;
  gboolean shutdown_on_close;
  char *self_id;
  char *self_version;

  /* state */
  GMainContext *context;
  CpClientState state;
  GError *error;
  guint attempt;                /* generation of the current connection attempt */
  GCancellable *attempt_cancellable;
  GPtrArray *connect_waiters;   /* GTask */
  GSource *ready_timeout;
  gulong changed_id;
  /* cp_client_connect_sync() runs: the handshake is a sync call, and the
   * health monitor is left to it */
  gboolean sync_connect;
  GCancellable *sync_cancellable;

  char *url;
  CpChannel *channel;
  CpHandshakeResponse *response;
  GPtrArray *infos;             /* CpPluginInfo */
  CpHealthMonitor *monitor;
};

enum {
  PROP_0,
  PROP_DISCOVERY,
  PROP_ENDPOINT,
  PROP_PLUGINS,
  PROP_MAGIC_COOKIE_KEY,
  PROP_MAGIC_COOKIE_VALUE,
  PROP_APP_PROTOCOL_VERSION,
  PROP_HANDSHAKE_TIMEOUT_MS,
  PROP_HEALTH_TIMEOUT_MS,
  PROP_CALL_TIMEOUT_MS,
  PROP_HEALTH_INTERVAL_MS,
  PROP_HEALTH_CHECK,
  PROP_AUTO_RECONNECT,
  PROP_SHUTDOWN_ON_CLOSE,
  PROP_SELF_ID,
  PROP_SELF_VERSION,
  PROP_STATE,
  PROP_URL,
  PROP_CHANNEL,
  PROP_HEALTH_MONITOR,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (CpClient, cp_client, G_TYPE_OBJECT)

/* One connection attempt: stale callbacks (attempt != self->attempt) only
 * clean up. */
typedef struct {
  CpClient *self;     /* strong */
  guint attempt;
  GStrv urls;
  guint index;
  CpChannel *channel;
} Attempt;

static void
attempt_free (Attempt *a)
{
  g_clear_object (&a->self);
  g_clear_pointer (&a->urls, g_strfreev);
  g_clear_object (&a->channel);
  g_free (a);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Attempt, attempt_free)

static gboolean
attempt_is_current (Attempt *a)
{
  return a->attempt == a->self->attempt &&
         (a->self->state == CP_CLIENT_STATE_CONNECTING ||
          a->self->state == CP_CLIENT_STATE_RECONNECTING);
}

/* ---- state ---- */

static void
set_state (CpClient      *self,
           CpClientState  state)
{
  if (self->state == state)
    return;
  g_debug ("client: state %d → %d", self->state, state);
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
complete_waiters (CpClient     *self,
                  const GError *error)
{
  g_autoptr(GPtrArray) tasks = g_steal_pointer (&self->connect_waiters);

  self->connect_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);
      GSource *cancel_source = g_task_get_task_data (task);

      if (cancel_source != NULL)
        g_source_destroy (cancel_source);
      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
    }
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* Drops the connection (channel, monitor, handshake results). */
static void
teardown (CpClient *self)
{
  clear_source (&self->ready_timeout);
  if (self->monitor != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      cp_health_monitor_stop (self->monitor);
      g_clear_object (&self->monitor);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HEALTH_MONITOR]);
    }
  if (self->channel != NULL)
    {
      g_clear_object (&self->channel);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CHANNEL]);
    }
  g_clear_object (&self->response);
  g_clear_pointer (&self->infos, g_ptr_array_unref);
  if (self->url != NULL)
    {
      g_clear_pointer (&self->url, g_free);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_URL]);
    }
}

/* The connection failed, or the plugin went bad: state FAILED; pending
 * connects get @error. Takes @error. */
static void
fail (CpClient *self,
      GError   *error)
{
  g_object_ref (self);
  if (self->attempt_cancellable != NULL)
    {
      g_cancellable_cancel (self->attempt_cancellable);
      g_clear_object (&self->attempt_cancellable);
    }
  self->attempt++;
  teardown (self);
  g_clear_error (&self->error);
  self->error = error;
  g_debug ("client failed: %s", error->message);
  set_state (self, CP_CLIENT_STATE_FAILED);
  complete_waiters (self, error);
  g_object_unref (self);
}

static void
become_ready (CpClient *self)
{
  clear_source (&self->ready_timeout);
  g_clear_error (&self->error);
  set_state (self, CP_CLIENT_STATE_READY);
  complete_waiters (self, NULL);
}

/* ---- health ---- */

static void
health_changed_cb (CpHealthMonitor *monitor,
                   CpHealthState    health,
                   CpServingStatus  status,
                   gpointer         user_data)
{
  CpClient *self = user_data;
  const char *reason = cp_health_monitor_get_reason (monitor);

  switch (self->state)
    {
    case CP_CLIENT_STATE_CONNECTED:
      /* Waiting for the first good report; a plugin that is still starting
       * may say NOT_SERVING first (the ready timeout bounds the wait). */
      if (health == CP_HEALTH_STATE_HEALTHY || health == CP_HEALTH_STATE_DEGRADED)
        become_ready (self);
      else if (cp_health_monitor_get_mode (monitor) == CP_HEALTH_MODE_POLLING &&
               status == CP_SERVING_STATUS_UNSPECIFIED)
        /* The health stream broke before the first report. */
        fail (self, g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE, "plugin server %s: %s",
                                 self->url, reason != NULL ? reason : "unhealthy"));
      break;

    case CP_CLIENT_STATE_READY:
      if (health == CP_HEALTH_STATE_UNHEALTHY)
        fail (self, g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                 "plugin server %s became unhealthy: %s", self->url,
                                 reason != NULL ? reason : "no reason given"));
      break;

    default:
      break;
    }
}

/* No good health report came in time. */
static void
fail_not_ready (CpClient *self)
{
  const char *reason = self->monitor != NULL ? cp_health_monitor_get_reason (self->monitor) : NULL;

  fail (self, g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                           "plugin server %s did not report healthy within %u ms%s%s",
                           self->url, self->health_timeout_ms,
                           reason != NULL ? ": " : "", reason != NULL ? reason : ""));
}

static gboolean
ready_timeout_cb (gpointer user_data)
{
  CpClient *self = user_data;

  g_clear_pointer (&self->ready_timeout, g_source_unref);
  fail_not_ready (self);
  return G_SOURCE_REMOVE;
}

/* ---- handshake ---- */

static void try_url (Attempt *a);

static gboolean
plugin_info_matches (CpPluginInfo *info,
                     const char   *name)
{
  return g_strcmp0 (cp_plugin_info_get_name (info), name) == 0;
}

/* Checks the answer; on success the client is connected. */
static gboolean
accept_response (CpClient             *self,
                 const char           *url,
                 CpHandshakeResponse  *response,
                 GError              **error)
{
  g_autoptr(GPtrArray) infos = cp_handshake_response_get_plugins (response);
  int core = cp_handshake_response_get_core_protocol_version (response);
  int app = cp_handshake_response_get_app_protocol_version (response);

  if (core != CP_CORE_PROTOCOL_VERSION)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                   "plugin server %s speaks core protocol version %d, not %d",
                   url, core, CP_CORE_PROTOCOL_VERSION);
      return FALSE;
    }
  if (app != self->app_version)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                   "plugin server %s speaks app protocol version %d, not %d",
                   url, app, self->app_version);
      return FALSE;
    }
  for (guint i = 0; self->plugins != NULL && self->plugins[i] != NULL; i++)
    {
      gboolean found = FALSE;

      for (guint j = 0; j < infos->len && !found; j++)
        found = plugin_info_matches (g_ptr_array_index (infos, j), self->plugins[i]);
      if (!found)
        {
          g_autoptr(GString) served = g_string_new (NULL);

          for (guint j = 0; j < infos->len; j++)
            g_string_append_printf (served, "%s“%s”", j > 0 ? ", " : "",
                                    cp_plugin_info_get_name (g_ptr_array_index (infos, j)));
          g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND,
                       "plugin “%s” is not served by %s (it serves %s)",
                       self->plugins[i], url, served->len > 0 ? served->str : "none of them");
          return FALSE;
        }
    }

  self->response = g_object_ref (response);
  self->infos = g_steal_pointer (&infos);
  return TRUE;
}

static void start_monitor (CpClient *self);

static void
connected (CpClient  *self,
           Attempt   *a)
{
  self->channel = g_steal_pointer (&a->channel);
  self->url = g_strdup (a->urls[a->index]);
  g_clear_object (&self->attempt_cancellable);
  g_object_freeze_notify (G_OBJECT (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CHANNEL]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_URL]);
  g_object_thaw_notify (G_OBJECT (self));
  set_state (self, CP_CLIENT_STATE_CONNECTED);
  if (self->state != CP_CLIENT_STATE_CONNECTED)
    return;   /* a notify handler closed us */

  if (!self->health_check)
    {
      become_ready (self);
      return;
    }
  if (!self->sync_connect)
    start_monitor (self);
}

/* Starts the health monitor, whose first good report makes a connected
 * client ready, in the client's context. */
static void
start_monitor (CpClient *self)
{
  g_main_context_push_thread_default (self->context);
  self->monitor = g_object_new (CP_TYPE_HEALTH_MONITOR,
                                "channel", self->channel,
                                "interval-ms", self->health_interval_ms,
                                "timeout-ms", self->health_timeout_ms,
                                NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HEALTH_MONITOR]);
  g_signal_connect (self->monitor, "changed", G_CALLBACK (health_changed_cb), self);
  self->ready_timeout = g_timeout_source_new (MAX (self->health_timeout_ms, 1));
  g_source_set_callback (self->ready_timeout, ready_timeout_cb, self, NULL);
  g_source_set_static_name (self->ready_timeout, "[connectplugin] client ready timeout");
  g_source_attach (self->ready_timeout, self->context);
  cp_health_monitor_start (self->monitor);
  g_main_context_pop_thread_default (self->context);
}

/* The handshake's answer, or its error. Takes all three. */
static void
handshake_done (Attempt   *attempt,
                CpMessage *answer,
                GError    *call_error)
{
  g_autoptr(Attempt) a = attempt;
  CpClient *self = a->self;
  g_autoptr(GError) error = call_error;
  g_autoptr(CpMessage) response = answer;
  const char *url = a->urls[a->index];

  if (!attempt_is_current (a))
    return;

  if (response == NULL)
    {
      gboolean transport = g_error_matches (error, CP_ERROR, CP_ERROR_UNAVAILABLE) ||
                           g_error_matches (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);

      if (transport && a->urls[a->index + 1] != NULL)
        {
          g_debug ("handshake with %s failed (%s), trying the next endpoint",
                   url, error->message);
          a->index++;
          try_url (g_steal_pointer (&a));
          return;
        }
      if (error->domain == CP_ERROR &&
          (error->code == CP_ERROR_UNIMPLEMENTED || error->code == CP_ERROR_UNKNOWN ||
           error->code == CP_ERROR_INTERNAL))
        g_prefix_error (&error, "%s does not look like a connectplugin server "
                        "(its handshake failed): ", url);
      else
        g_prefix_error (&error, "handshake with %s failed: ", url);
      fail (self, g_steal_pointer (&error));
      return;
    }

  if (!accept_response (self, url, CP_HANDSHAKE_RESPONSE (response), &error))
    {
      fail (self, g_steal_pointer (&error));
      return;
    }
  connected (self, a);
}

static void
handshake_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GError *error = NULL;
  CpMessage *response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);

  handshake_done (user_data, response, error);
}

static void
try_url (Attempt *a)
{
  CpClient *self = a->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpHandshakeRequest) request = cp_handshake_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GHashTable) metadata = g_hash_table_new (g_str_hash, g_str_equal);
  const char *url = a->urls[a->index];

  g_clear_object (&a->channel);
  /* The channel outlives this attempt, and belongs to the client's context
   * (libsoup's session keeps the one it was made in). */
  g_main_context_push_thread_default (self->context);
  a->channel = cp_discovery_create_channel (self->discovery, url, &error);
  g_main_context_pop_thread_default (self->context);
  if (a->channel == NULL)
    {
      g_prefix_error (&error, "cannot reach %s: ", url);
      fail (self, g_steal_pointer (&error));
      attempt_free (a);
      return;
    }
  g_object_set (a->channel, "timeout-ms", (gint64) self->call_timeout_ms, NULL);

  cp_handshake_request_set_core_protocol_version (request, CP_CORE_PROTOCOL_VERSION);
  cp_handshake_request_set_app_protocol_version (request, self->app_version);
  cp_handshake_request_set_magic_cookie_key (request, self->cookie_key);
  cp_handshake_request_set_magic_cookie_value (request, self->cookie_value);
  cp_handshake_request_set_requested_plugins (request, (const char * const *) self->plugins);
  g_hash_table_insert (metadata, (gpointer) "client_version", (gpointer) CP_CLIENT_VERSION);
  cp_handshake_request_set_client_metadata (request, metadata);
  if (self->self_id != NULL)
    cp_handshake_request_set_self_id (request, self->self_id);
  if (self->self_version != NULL)
    cp_handshake_request_set_self_version (request, self->self_version);

  cp_call_options_set_timeout_ms (options, self->handshake_timeout_ms > 0
                                             ? (gint64) self->handshake_timeout_ms : -1);
  if (self->sync_connect)
    {
      /* cp_channel_call_sync() returns once libsoup let go of the message,
       * so nothing of it is left behind in cp_client_connect_sync()'s
       * private context. */
      GError *call_error = NULL;
      CpMessage *response = cp_channel_call_sync (a->channel, CP_PROCEDURE_HANDSHAKE,
                                                  CP_MESSAGE (request),
                                                  CP_TYPE_HANDSHAKE_RESPONSE, options,
                                                  self->sync_cancellable, &call_error);

      handshake_done (a, response, call_error);
      return;
    }
  cp_channel_call_async (a->channel, CP_PROCEDURE_HANDSHAKE, CP_MESSAGE (request),
                         CP_TYPE_HANDSHAKE_RESPONSE, options, self->attempt_cancellable,
                         handshake_cb, a);
}

static void
discover_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(Attempt) a = user_data;
  g_autoptr(GError) error = NULL;

  a->urls = cp_discovery_discover_finish (CP_DISCOVERY (source), result, &error);
  if (!attempt_is_current (a))
    return;
  if (a->urls == NULL || a->urls[0] == NULL)
    {
      if (error == NULL)
        error = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE, "no plugin endpoint found");
      else if (error->domain != CP_ERROR)
        {
          GError *e = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                   "plugin discovery failed: %s", error->message);
          g_clear_error (&error);
          error = e;
        }
      fail (a->self, g_steal_pointer (&error));
      return;
    }
  try_url (g_steal_pointer (&a));
}

static void
begin_connect (CpClient      *self,
               CpClientState  state)
{
  Attempt *a;

  if (self->attempt_cancellable != NULL)
    g_cancellable_cancel (self->attempt_cancellable);
  g_clear_object (&self->attempt_cancellable);
  teardown (self);

  self->attempt++;
  self->attempt_cancellable = g_cancellable_new ();
  set_state (self, state);
  if (self->state != state)
    return;   /* a notify handler changed it */

  a = g_new0 (Attempt, 1);
  a->self = g_object_ref (self);
  a->attempt = self->attempt;
  cp_discovery_discover_async (self->discovery, (const char * const *) self->plugins,
                               self->attempt_cancellable, discover_cb, a);
}

static void
discovery_changed_cb (CpDiscovery *discovery,
                      gpointer     user_data)
{
  CpClient *self = user_data;

  if (!self->auto_reconnect)
    return;
  if (self->state == CP_CLIENT_STATE_READY ||
      self->state == CP_CLIENT_STATE_CONNECTED ||
      self->state == CP_CLIENT_STATE_FAILED)
    begin_connect (self, CP_CLIENT_STATE_RECONNECTING);
}

/* ---- public API ---- */

/* A connect_async () caller whose cancellable fired: its wait ends (the
 * attempt goes on for the others). */
static gboolean
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = g_object_ref (user_data);
  CpClient *self = g_task_get_source_object (task);

  if (g_ptr_array_remove (self->connect_waiters, task))
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                             "the connection wait was cancelled");
  return G_SOURCE_REMOVE;
}

static void
destroy_cancel_source (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

static void
add_waiter (CpClient *self,
            GTask    *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (cancellable != NULL)
    {
      GSource *source = g_cancellable_source_new (cancellable);

      g_task_set_task_data (task, source, destroy_cancel_source);
      g_task_attach_source (task, source, (GSourceFunc) (void (*) (void)) waiter_cancelled_cb);
    }
  g_ptr_array_add (self->connect_waiters, g_object_ref (task));
}

/**
 * cp_client_connect_async:
 * @client: a [class@ConnectPlugin.Client]
 * @cancellable: (nullable): a [class@Gio.Cancellable] (ends this caller's wait
 *   with %G_IO_ERROR_CANCELLED; the connection attempt goes on for the others)
 * @callback: (scope async): called when the client is ready or failed
 * @user_data: (closure): data for @callback
 *
 * Connects: discovers the server, handshakes and waits for its first
 * health report. Idempotent: when ready, completes at once; while
 * connecting, joins the attempt under way; after a failure, connects again
 * (state `RECONNECTING`, with a new handshake).
 */
void
cp_client_connect_async (CpClient            *client,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_CLIENT (client));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (client, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_client_connect_async);
  if (g_task_return_error_if_cancelled (task))
    return;

  switch (client->state)
    {
    case CP_CLIENT_STATE_READY:
      g_task_return_boolean (task, TRUE);
      return;
    case CP_CLIENT_STATE_CLOSED:
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                               "the client is closed");
      return;
    case CP_CLIENT_STATE_CONNECTING:
    case CP_CLIENT_STATE_RECONNECTING:
    case CP_CLIENT_STATE_CONNECTED:
      add_waiter (client, task);
      return;
    case CP_CLIENT_STATE_CREATED:
      add_waiter (client, task);
      begin_connect (client, CP_CLIENT_STATE_CONNECTING);
      return;
    case CP_CLIENT_STATE_FAILED:
    default:
      add_waiter (client, task);
      begin_connect (client, CP_CLIENT_STATE_RECONNECTING);
      return;
    }
}

/**
 * cp_client_connect_finish:
 * @client: a [class@ConnectPlugin.Client]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Client.connect_async].
 *
 * Returns: %TRUE when the client is ready
 */
gboolean
cp_client_connect_finish (CpClient      *client,
                          GAsyncResult  *result,
                          GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The context a blocking connect runs: a private one; or, for an
 * in-process server this thread serves, the server's, so that it can
 * answer (as cp_channel_call_sync () does). Acquired. */
static GMainContext *
sync_context_new (CpClient *self)
{
  GMainContext *context = NULL;

  if (CP_IS_IN_PROCESS_DISCOVERY (self->discovery))
    {
      CpRpcServer *server = cp_in_process_discovery_get_server (CP_IN_PROCESS_DISCOVERY (self->discovery));
      GMainContext *server_context = server != NULL ? cp_rpc_server_get_context (server) : NULL;
      g_autoptr(GMainContext) thread_default = g_main_context_ref_thread_default ();

      if (server_context != NULL &&
          (g_main_context_is_owner (server_context) || server_context == thread_default) &&
          g_main_context_acquire (server_context))
        context = g_main_context_ref (server_context);
    }
  if (context == NULL)
    {
      context = g_main_context_new ();
      g_main_context_acquire (context);
    }
  return context;
}

static gboolean
sync_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  CpClient *self = user_data;

  if (self->state == CP_CLIENT_STATE_CONNECTING || self->state == CP_CLIENT_STATE_RECONNECTING)
    fail (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the connection was cancelled"));
  return G_SOURCE_REMOVE;
}

static gboolean
sync_wake_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Waits @ms in @context, or until @cancellable fires. */
static void
sync_sleep (GMainContext *context,
            guint         ms,
            GCancellable *cancellable)
{
  gboolean woken = FALSE;
  GSource *timer = g_timeout_source_new (ms);
  GSource *cancel = g_cancellable_source_new (cancellable);

  g_source_set_callback (timer, sync_wake_cb, &woken, NULL);
  g_source_set_static_name (timer, "[connectplugin] connect_sync health wait");
  g_source_attach (timer, context);
  g_source_set_callback (cancel, (GSourceFunc) (void (*) (void)) sync_wake_cb, &woken, NULL);
  g_source_attach (cancel, context);
  while (!woken)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timer);
  g_source_unref (timer);
  g_source_destroy (cancel);
  g_source_unref (cancel);
}

#define SYNC_CHECK_FIRST_DELAY_MS 20
#define SYNC_CHECK_MAX_DELAY_MS   500

/* A connected client waits for its first good health report: its monitor
 * runs in the client's context, which is not iterated here, so Check is
 * asked (blocking) until the answer is good or the health timeout is over. */
static void
sync_wait_healthy (CpClient     *self,
                   GMainContext *context,
                   GCancellable *cancellable)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) self->health_timeout_ms * 1000;
  guint delay_ms = SYNC_CHECK_FIRST_DELAY_MS;
  gboolean first = TRUE;

  start_monitor (self);
  while (self->state == CP_CLIENT_STATE_CONNECTED)
    {
      g_autoptr(CpHealthCheckRequest) request = cp_health_check_request_new ();
      g_autoptr(CpCallOptions) options = cp_call_options_new ();
      g_autoptr(CpMessage) response = NULL;
      g_autoptr(GError) error = NULL;
      gint64 left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      g_autoptr(CpChannel) channel = g_object_ref (self->channel);

      if (left_ms <= 0 && !first)
        {
          fail_not_ready (self);
          return;
        }
      first = FALSE;
      cp_health_check_request_set_service (request, cp_health_monitor_get_service (self->monitor));
      cp_call_options_set_timeout_ms (options, MAX (left_ms, 1));
      response = cp_channel_call_sync (channel, CP_PROCEDURE_HEALTH_CHECK, CP_MESSAGE (request),
                                       CP_TYPE_HEALTH_CHECK_RESPONSE, options, cancellable, &error);
      if (self->state != CP_CLIENT_STATE_CONNECTED)
        return;   /* closed meanwhile (from another context's callback) */
      if (g_cancellable_is_cancelled (cancellable))
        {
          fail (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the connection was cancelled"));
          return;
        }
      if (response == NULL && !g_error_matches (error, CP_ERROR, CP_ERROR_NOT_FOUND) &&
          !g_error_matches (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED))
        {
          fail (self, g_error_new (error->domain, error->code,
                                   "plugin server %s: health check failed: %s",
                                   self->url, error->message));
          return;
        }
      /* A good report makes the client ready (health_changed_cb ()). */
      cp_health_monitor_apply_check (self->monitor, response, error);
      if (self->state != CP_CLIENT_STATE_CONNECTED)
        return;
      left_ms = (deadline - g_get_monotonic_time ()) / 1000;
      sync_sleep (context, (guint) CLAMP (left_ms, 0, (gint64) delay_ms), cancellable);
      delay_ms = MIN (delay_ms * 2, SYNC_CHECK_MAX_DELAY_MS);
    }
}

/**
 * cp_client_connect_sync:
 * @client: a [class@ConnectPlugin.Client]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error]
 *
 * Connects, blocking: discovers the server, handshakes and waits for a good
 * health report. Returns %TRUE at once when the client is ready. After a
 * failure it connects again (state `RECONNECTING`).
 *
 * As GIO's synchronous calls do, it runs a private [struct@GLib.MainContext]
 * while it waits, so no other source of the caller's context is dispatched
 * meanwhile. (For a [class@ConnectPlugin.InProcessDiscovery] whose server
 * this thread serves, the server's context is iterated instead, so that the
 * server can answer.) What the connection leaves running goes on in the
 * client's context: the health monitor's `Watch` stream, and a launched
 * plugin's output and exit watch, which are moved there before it returns.
 * It asks the health `Check` method for the first report, again until the
 * answer is good or [property@ConnectPlugin.Client:health-timeout-ms] is over.
 *
 * While an attempt started by [method@ConnectPlugin.Client.connect_async] is
 * under way, it fails with %CP_ERROR_FAILED_PRECONDITION: wait for that one
 * asynchronously. Cancelling @cancellable ends the attempt (state `FAILED`,
 * %G_IO_ERROR_CANCELLED).
 *
 * Returns: %TRUE when the client is ready
 */
gboolean
cp_client_connect_sync (CpClient      *client,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(CpClient) self = NULL;
  GSource *cancel_source = NULL;

  g_return_val_if_fail (CP_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);

  switch (client->state)
    {
    case CP_CLIENT_STATE_READY:
      return TRUE;
    case CP_CLIENT_STATE_CLOSED:
      g_set_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION, "the client is closed");
      return FALSE;
    case CP_CLIENT_STATE_CONNECTING:
    case CP_CLIENT_STATE_RECONNECTING:
    case CP_CLIENT_STATE_CONNECTED:
      g_set_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                   "a connection attempt started by cp_client_connect_async() is under way; "
                   "wait for it with cp_client_connect_async()");
      return FALSE;
    default:
      break;
    }
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  self = g_object_ref (client);
  context = sync_context_new (self);
  g_main_context_push_thread_default (context);
  if (cancellable != NULL)
    {
      cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (cancel_source, (GSourceFunc) (void (*) (void)) sync_cancelled_cb,
                             self, NULL);
      g_source_attach (cancel_source, context);
    }

  /* Discovery and handshake, in @context. */
  self->sync_connect = TRUE;
  g_set_object (&self->sync_cancellable, cancellable);
  begin_connect (self, self->state == CP_CLIENT_STATE_CREATED ? CP_CLIENT_STATE_CONNECTING
                                                               : CP_CLIENT_STATE_RECONNECTING);
  while (self->state == CP_CLIENT_STATE_CONNECTING || self->state == CP_CLIENT_STATE_RECONNECTING)
    g_main_context_iteration (context, TRUE);
  self->sync_connect = FALSE;
  g_clear_object (&self->sync_cancellable);

  /* A launched plugin goes on in the client's context: its output, its
   * exit (also after a failure: a start-up timeout still has to end it). */
  if (CP_IS_PROCESS_DISCOVERY (self->discovery))
    cp_process_discovery_move_launch (CP_PROCESS_DISCOVERY (self->discovery), context, self->context);

  if (self->state == CP_CLIENT_STATE_CONNECTED)
    sync_wait_healthy (self, context, cancellable);

  if (cancel_source != NULL)
    {
      g_source_destroy (cancel_source);
      g_source_unref (cancel_source);
    }
  /* What was cancelled or completed in @context finishes here (the
   * discovery's result, a cancelled exit wait). */
  for (guint i = 0; i < 100 && g_main_context_pending (context); i++)
    g_main_context_iteration (context, FALSE);
  g_main_context_pop_thread_default (context);
  g_main_context_release (context);

  switch (self->state)
    {
    case CP_CLIENT_STATE_READY:
      return TRUE;
    case CP_CLIENT_STATE_FAILED:
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      if (error != NULL)
        *error = g_error_copy (self->error);
      return FALSE;
    default:
      /* Closed meanwhile, or a notify handler changed the state. */
      g_set_error (error, CP_ERROR, CP_ERROR_ABORTED,
                   "the connection was interrupted (the client is %s)",
                   self->state == CP_CLIENT_STATE_CLOSED ? "closed" : "no longer connecting");
      return FALSE;
    }
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
  return proxy;
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
  teardown (client);
  set_state (client, CP_CLIENT_STATE_CLOSED);
  error = g_error_new (CP_ERROR, CP_ERROR_CANCELED, "the client was closed");
  complete_waiters (client, error);

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
                                       G_CALLBACK (discovery_changed_cb), self);
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
  teardown (self);
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
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
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
    if (plugin_info_matches (g_ptr_array_index (client->infos, i), plugin_name))
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
 * plugin alone.
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
