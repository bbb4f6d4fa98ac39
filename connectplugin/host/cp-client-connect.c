/* cp-client-connect.c: how a CpClient connects
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One unit of CpClient (see cp-client-private.h): an attempt runs
 * discovery → handshake (each endpoint in turn) → the first health report;
 * connect_async () callers wait on it, connect_sync () runs it in a private
 * context and moves what outlives it to the client's; a failure, the
 * plugin becoming unhealthy or the discovery's "changed" ends it.
 */
#include "cp-client-private.h"
#include "cp-call-options-private.h"
#include "cp-channel-private.h"
#include "cp-health-monitor-private.h"
#include "cp-host-enum-types.h"
#include "cp-in-process-discovery.h"
#include "cp-process-discovery.h"
#include "cp-rpc-server-private.h"
#include "cp-error.h"
#include "cp-host-private.h"
#include "cp-plugin-constants.h"
#include "cp-tls-private.h"

/* One connection attempt: stale callbacks (attempt != self->attempt) only
 * clean up. */
typedef struct {
  CpClient *self;     /* strong */
  guint attempt;
  GStrv urls;
  guint index;
  CpChannel *channel;
  GStrv all_plugins;  /* the second handshake of a client that named none */
  char *previous;     /* the URL in use when the attempt began */
  char *avoid;        /* a URL that stopped serving: tried only if alone */
} Attempt;

static void
attempt_free (Attempt *a)
{
  g_clear_object (&a->self);
  g_clear_pointer (&a->urls, g_strfreev);
  g_clear_object (&a->channel);
  g_clear_pointer (&a->all_plugins, g_strfreev);
  g_free (a->previous);
  g_free (a->avoid);
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

void
cp_client_set_state (CpClient      *self,
           CpClientState  state)
{
  if (self->state == state)
    return;
  g_debug ("client: state %d → %d", self->state, state);
  self->state = state;
  cp_client_notify (self, PROP_STATE);
}

void
cp_client_complete_waiters (CpClient     *self,
                  const GError *error)
{
  g_autoptr(GPtrArray) tasks = cp_host_waiters_take (&self->connect_waiters);

  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);

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
void
cp_client_teardown (CpClient *self)
{
  clear_source (&self->ready_timeout);
  if (self->monitor != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      cp_health_monitor_stop (self->monitor);
      g_clear_object (&self->monitor);
      cp_client_notify (self, PROP_HEALTH_MONITOR);
    }
  if (self->channel != NULL)
    {
      g_clear_object (&self->channel);
      cp_client_notify (self, PROP_CHANNEL);
    }
  g_clear_object (&self->response);
  g_clear_pointer (&self->infos, g_ptr_array_unref);
  if (self->plugin_model != NULL)
    g_list_store_remove_all (self->plugin_model);
  if (self->url != NULL)
    {
      g_clear_pointer (&self->url, g_free);
      cp_client_notify (self, PROP_URL);
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
  cp_client_teardown (self);
  g_clear_error (&self->error);
  self->error = error;
  g_debug ("client failed: %s", error->message);
  cp_client_set_state (self, CP_CLIENT_STATE_FAILED);
  cp_client_complete_waiters (self, error);
  g_object_unref (self);
}

static void
become_ready (CpClient *self)
{
  clear_source (&self->ready_timeout);
  g_clear_error (&self->error);
  cp_client_set_state (self, CP_CLIENT_STATE_READY);
  cp_client_complete_waiters (self, NULL);
}

/* ---- graceful shutdown ---- */

/* The endpoint in use takes no new calls (its health says NOT_SERVING, or
 * the discovery withdrew it): the proxies dispensed move to a channel
 * whose circuit breaker stays open, so that new calls fail at once with
 * `unavailable` instead of reaching it, while calls under way keep their
 * own reference to the old channel and finish. The next connection moves
 * the proxies on (cp_client_move_proxies ()). The parked channel is never
 * dialled. */
static void
park_proxies (CpClient *self)
{
  g_autoptr(CpChannel) parked = NULL;
  g_autoptr(CpCircuitBreaker) breaker = NULL;

  if (self->dispensed == NULL || self->dispensed->len == 0)
    return;
  g_main_context_push_thread_default (self->context);
  parked = cp_channel_new ("http://127.0.0.1:1", NULL);
  g_main_context_pop_thread_default (self->context);
  if (parked == NULL)
    return;
  breaker = cp_circuit_breaker_new ();
  cp_circuit_breaker_set_open_timeout_ms (breaker, G_MAXUINT);
  cp_circuit_breaker_force_open (breaker);
  cp_channel_set_circuit_breaker (parked, breaker);
  /* The client's interceptors still see the calls refused. */
  cp_channel_set_client_interceptors (parked, self->interceptors);
  for (guint i = 0; i < self->dispensed->len; i++)
    {
      g_autoptr(CpProxy) proxy = g_weak_ref_get (self->dispensed->pdata[i]);

      if (proxy != NULL)
        cp_proxy_set_channel (proxy, parked);
    }
}

static void begin_connect_full (CpClient      *self,
                                CpClientState  state,
                                gboolean       by_caller,
                                const char    *avoid);

/* After a plugin stopped serving: asks the discovery whether another
 * endpoint serves, and connects to it. */
typedef struct {
  CpClient *self;   /* strong */
  guint attempt;
  char *draining;
} Failover;

static void
failover_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Failover *f = user_data;
  g_auto(GStrv) urls = cp_discovery_discover_finish (CP_DISCOVERY (source), result, NULL);
  gboolean other = FALSE;

  for (guint i = 0; urls != NULL && urls[i] != NULL; i++)
    other |= g_strcmp0 (urls[i], f->draining) != 0;
  if (other && f->self->attempt == f->attempt &&
      f->self->state == CP_CLIENT_STATE_FAILED && f->self->auto_reconnect)
    begin_connect_full (f->self, CP_CLIENT_STATE_RECONNECTING, FALSE, f->draining);
  g_object_unref (f->self);
  g_free (f->draining);
  g_free (f);
}

/* Not for a launched plugin (asking its discovery may launch it again):
 * it is the only endpoint anyway. */
static void
start_failover (CpClient   *self,
                const char *draining)
{
  Failover *f;

  if (!self->auto_reconnect || CP_IS_PROCESS_DISCOVERY (self->discovery) ||
      CP_IS_IN_PROCESS_DISCOVERY (self->discovery))
    return;
  f = g_new0 (Failover, 1);
  f->self = g_object_ref (self);
  f->attempt = self->attempt;
  f->draining = g_strdup (draining);
  cp_discovery_discover_async (self->discovery, (const char * const *) self->plugins,
                               NULL, failover_cb, f);
}

/* ---- health ---- */

static void
health_changed_cb (CpHealthMonitor *monitor,
                   CpHealthState    health,
                   CpServingStatus  status,
                   gpointer         user_data)
{
  CpClient *self = user_data;
  g_autoptr(CpClient) hold = g_object_ref (self);
  const char *reason = cp_health_monitor_get_reason (monitor);

  if (self->metrics != NULL)
    cp_client_metrics_set_health (self->metrics, health);
  /* The health reports move the circuit breaker before the calls find out
   * (handlers of its signals run here, in the client's context). */
  if (self->circuit_breaker != NULL)
    {
      if (health == CP_HEALTH_STATE_UNHEALTHY)
        cp_circuit_breaker_force_open (self->circuit_breaker);
      else if (status == CP_SERVING_STATUS_SERVING)
        cp_circuit_breaker_force_half_open (self->circuit_breaker);
    }

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
        {
          g_autofree char *url = g_strdup (self->url);

          /* Graceful shutdown: new calls stop, calls under way finish. */
          park_proxies (self);
          fail (self, g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                   "plugin server %s became unhealthy: %s", url,
                                   reason != NULL ? reason : "no reason given"));
          start_failover (self, url);
        }
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
  if (self->plugin_model != NULL)
    g_list_store_splice (self->plugin_model, 0,
                         g_list_model_get_n_items (G_LIST_MODEL (self->plugin_model)),
                         self->infos->pdata, self->infos->len);
  return TRUE;
}

static void start_monitor (CpClient *self);

static void
connected (CpClient  *self,
           Attempt   *a)
{
  self->channel = g_steal_pointer (&a->channel);
  /* The same breaker, retry policy and interceptors across reconnects. */
  if (self->circuit_breaker != NULL)
    cp_channel_set_circuit_breaker (self->channel, self->circuit_breaker);
  if (self->retry_policy != NULL)
    cp_channel_set_retry_policy (self->channel, self->retry_policy);
  cp_channel_set_client_interceptors (self->channel, self->interceptors);
  self->url = g_strdup (a->urls[a->index]);
  /* The same metrics too, so the series survive reconnects. */
  if (self->metrics_enabled)
    {
      cp_client_update_metrics_label (self);
      cp_channel_set_client_metrics (self->channel, self->metrics);
    }
  g_clear_object (&self->attempt_cancellable);
  /* Proxies dispensed before follow, as a GDBusProxy follows its name. */
  cp_client_move_proxies (self);
  g_object_freeze_notify (G_OBJECT (self));
  cp_client_notify (self, PROP_CHANNEL);
  cp_client_notify (self, PROP_URL);
  g_object_thaw_notify (G_OBJECT (self));
  cp_client_set_state (self, CP_CLIENT_STATE_CONNECTED);
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
  cp_client_notify (self, PROP_HEALTH_MONITOR);
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

  if (a->all_plugins == NULL && (self->plugins == NULL || self->plugins[0] == NULL))
    {
      /* A client that named no plugin wants all the server has: a
       * connectplugin server names them in its metadata; ask again for
       * them (connect-plugin-go's servers do not: none then, as there). */
      g_autoptr(GPtrArray) infos = cp_handshake_response_get_plugins (CP_HANDSHAKE_RESPONSE (response));
      g_autoptr(GHashTable) metadata =
        cp_handshake_response_get_server_metadata (CP_HANDSHAKE_RESPONSE (response));
      const char *names = metadata != NULL ? g_hash_table_lookup (metadata, "plugins") : NULL;

      if (infos->len == 0 && names != NULL && *names != '\0')
        {
          a->all_plugins = g_strsplit (names, ",", -1);
          try_url (g_steal_pointer (&a));
          return;
        }
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
  if (self->tls_database != NULL)
    g_object_set (a->channel, "tls-database", self->tls_database, NULL);
  if (self->tls_certificate != NULL)
    g_object_set (a->channel, "tls-certificate", self->tls_certificate, NULL);
  if (self->http_version != CP_HTTP_VERSION_DEFAULT)
    cp_channel_set_http_version (a->channel, self->http_version);

  cp_handshake_request_set_core_protocol_version (request, CP_CORE_PROTOCOL_VERSION);
  cp_handshake_request_set_app_protocol_version (request, self->app_version);
  cp_handshake_request_set_magic_cookie_key (request, self->cookie_key);
  cp_handshake_request_set_magic_cookie_value (request, self->cookie_value);
  cp_handshake_request_set_requested_plugins (request, (const char * const *)
                                             (a->all_plugins != NULL ? a->all_plugins : self->plugins));
  g_hash_table_insert (metadata, (gpointer) "client_version", (gpointer) CP_CLIENT_VERSION);
  cp_handshake_request_set_client_metadata (request, metadata);
  if (self->self_id != NULL)
    cp_handshake_request_set_self_id (request, self->self_id);
  if (self->self_version != NULL)
    cp_handshake_request_set_self_version (request, self->self_version);

  cp_call_options_set_timeout_ms (options, self->handshake_timeout_ms > 0
                                             ? (gint64) self->handshake_timeout_ms : -1);
  cp_call_options_set_circuit_breaker_exempt (options, TRUE);
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
  /* The endpoint in use was withdrawn: no new calls to it from now on.
   * (A launched plugin that moved crashed; its calls fail anyway.) */
  if (a->previous != NULL && !CP_IS_PROCESS_DISCOVERY (a->self->discovery) &&
      (a->urls == NULL || !g_strv_contains ((const char * const *) a->urls, a->previous)))
    park_proxies (a->self);
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
  /* An endpoint that stopped serving goes only if no other is known. */
  if (a->avoid != NULL && g_strv_contains ((const char * const *) a->urls, a->avoid) &&
      g_strv_length (a->urls) > 1)
    {
      GStrvBuilder *builder = g_strv_builder_new ();

      for (guint i = 0; a->urls[i] != NULL; i++)
        if (strcmp (a->urls[i], a->avoid) != 0)
          g_strv_builder_add (builder, a->urls[i]);
      g_strfreev (a->urls);
      a->urls = g_strv_builder_end (builder);
      g_strv_builder_unref (builder);
    }
  try_url (g_steal_pointer (&a));
}

static void
begin_connect_full (CpClient      *self,
                    CpClientState  state,
                    gboolean       by_caller,
                    const char    *avoid)
{
  Attempt *a;
  g_autofree char *previous = g_strdup (self->url);

  self->attempt_by_caller = by_caller;
  if (self->attempt_cancellable != NULL)
    g_cancellable_cancel (self->attempt_cancellable);
  g_clear_object (&self->attempt_cancellable);
  cp_client_teardown (self);

  self->attempt++;
  self->attempt_cancellable = g_cancellable_new ();
  cp_client_set_state (self, state);
  if (self->state != state)
    return;   /* a notify handler changed it */

  a = g_new0 (Attempt, 1);
  a->self = g_object_ref (self);
  a->attempt = self->attempt;
  a->previous = g_steal_pointer (&previous);
  a->avoid = g_strdup (avoid);
  cp_discovery_discover_async (self->discovery, (const char * const *) self->plugins,
                               self->attempt_cancellable, discover_cb, a);
}

static void
begin_connect (CpClient      *self,
               CpClientState  state,
               gboolean       by_caller)
{
  begin_connect_full (self, state, by_caller, NULL);
}

void
cp_client_discovery_changed_cb (CpDiscovery *discovery,
                      gpointer     user_data)
{
  CpClient *self = user_data;

  if (!self->auto_reconnect)
    return;
  if (self->state == CP_CLIENT_STATE_READY ||
      self->state == CP_CLIENT_STATE_CONNECTED ||
      self->state == CP_CLIENT_STATE_FAILED)
    begin_connect (self, CP_CLIENT_STATE_RECONNECTING, FALSE);
}

/* An attempt that a caller ended: state FAILED with G_IO_ERROR_CANCELLED,
 * and a plugin process launched for it is stopped (a new attempt launches
 * it again), so that nothing runs that no one is using. */
static void
end_cancelled (CpClient *self)
{
  fail (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "the connection was cancelled"));
  if (CP_IS_PROCESS_DISCOVERY (self->discovery))
    cp_process_discovery_stop_async (CP_PROCESS_DISCOVERY (self->discovery), NULL, NULL, NULL);
}

/* The last connect_async () caller waiting cancelled. */
static void
all_waiters_cancelled (GObject *owner)
{
  CpClient *self = CP_CLIENT (owner);

  if (self->attempt_by_caller &&
      (self->state == CP_CLIENT_STATE_CONNECTING || self->state == CP_CLIENT_STATE_RECONNECTING ||
       self->state == CP_CLIENT_STATE_CONNECTED))
    end_cancelled (self);
}

/* ---- public API ---- */

/**
 * cp_client_connect_async:
 * @client: a [class@ConnectPlugin.Client]
 * @cancellable: (nullable): a [class@Gio.Cancellable] (ends this caller's wait
 *   with %G_IO_ERROR_CANCELLED; see below for the attempt)
 * @callback: (scope async): called when the client is ready or failed
 * @user_data: (closure): data for @callback
 *
 * Connects: discovers the server, handshakes and waits for its first
 * health report. Idempotent: when ready, completes at once; while
 * connecting, joins the attempt under way; after a failure, connects again
 * (state `RECONNECTING`, with a new handshake).
 *
 * Cancelling @cancellable ends this caller's wait at once. The attempt goes
 * on while others wait for it. When no one is left waiting and the attempt
 * was started by this function (not by an automatic reconnection), it
 * ends: the client is `FAILED`, [method@ConnectPlugin.Client.get_error]
 * gives %G_IO_ERROR_CANCELLED, nothing of the connection is kept,
 * and a plugin process that a [class@ConnectPlugin.ProcessDiscovery]
 * launched is stopped (gracefully, as by
 * [method@ConnectPlugin.ProcessDiscovery.stop_async]). Connecting again
 * launches it anew.
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
      cp_host_waiters_add (&client->connect_waiters, task, all_waiters_cancelled);
      return;
    case CP_CLIENT_STATE_CREATED:
      cp_host_waiters_add (&client->connect_waiters, task, all_waiters_cancelled);
      begin_connect (client, CP_CLIENT_STATE_CONNECTING, TRUE);
      return;
    case CP_CLIENT_STATE_FAILED:
    default:
      cp_host_waiters_add (&client->connect_waiters, task, all_waiters_cancelled);
      begin_connect (client, CP_CLIENT_STATE_RECONNECTING, TRUE);
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

/* The caller's cancellable may be cancelled from another thread. GLib
 * 2.74's GCancellableSource can leak when it is disposed while another
 * thread is still emitting "cancelled", so the sources and calls of
 * connect_sync () watch a cancellable of their own, cancelled in the
 * private context's thread when the caller's fires. */
static gboolean
sync_forward_cancel_cb (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

typedef struct {
  GMainContext *context;
  GCancellable *internal;
} SyncForward;

static void
sync_forward_free (gpointer data)
{
  SyncForward *forward = data;

  g_main_context_unref (forward->context);
  g_object_unref (forward->internal);
  g_free (forward);
}

/* Runs in the thread that cancels the caller's cancellable. */
static void
sync_caller_cancelled_cb (GCancellable *cancellable,
                          gpointer      user_data)
{
  SyncForward *forward = user_data;

  g_main_context_invoke_full (forward->context, G_PRIORITY_DEFAULT, sync_forward_cancel_cb,
                              g_object_ref (forward->internal), g_object_unref);
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
      cp_call_options_set_circuit_breaker_exempt (options, TRUE);
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
 * %G_IO_ERROR_CANCELLED) and stops a plugin process launched for it, as
 * with [method@ConnectPlugin.Client.connect_async].
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
  g_autoptr(GCancellable) internal = NULL;
  GSource *cancel_source;
  gulong forward_id = 0;

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
  internal = g_cancellable_new ();
  if (cancellable != NULL)
    {
      SyncForward *forward = g_new0 (SyncForward, 1);

      forward->context = g_main_context_ref (context);
      forward->internal = g_object_ref (internal);
      forward_id = g_cancellable_connect (cancellable, G_CALLBACK (sync_caller_cancelled_cb),
                                          forward, sync_forward_free);
    }
  cancel_source = g_cancellable_source_new (internal);
  g_source_set_callback (cancel_source, (GSourceFunc) (void (*) (void)) sync_cancelled_cb,
                         self, NULL);
  g_source_attach (cancel_source, context);

  /* Discovery and handshake, in @context. */
  self->sync_connect = TRUE;
  g_set_object (&self->sync_cancellable, internal);
  begin_connect (self, self->state == CP_CLIENT_STATE_CREATED ? CP_CLIENT_STATE_CONNECTING
                                                               : CP_CLIENT_STATE_RECONNECTING,
                 TRUE);
  while (self->state == CP_CLIENT_STATE_CONNECTING || self->state == CP_CLIENT_STATE_RECONNECTING)
    g_main_context_iteration (context, TRUE);
  self->sync_connect = FALSE;
  g_clear_object (&self->sync_cancellable);

  /* A launched plugin goes on in the client's context: its output, its
   * exit (also after a failure: a start-up timeout still has to end it). */
  if (CP_IS_PROCESS_DISCOVERY (self->discovery))
    cp_process_discovery_move_launch (CP_PROCESS_DISCOVERY (self->discovery), context, self->context);

  if (self->state == CP_CLIENT_STATE_CONNECTED)
    sync_wait_healthy (self, context, internal);

  /* Waits for a "cancelled" handler running in another thread. */
  g_cancellable_disconnect (cancellable, forward_id);
  g_source_destroy (cancel_source);
  g_source_unref (cancel_source);
  /* What was cancelled or completed in @context finishes here (the
   * discovery's result, a cancelled exit wait). */
  for (guint i = 0; i < 100 && g_main_context_pending (context); i++)
    g_main_context_iteration (context, FALSE);
  g_main_context_pop_thread_default (context);
  g_main_context_release (context);

  /* Cancelled: a plugin launched for the attempt does not run on unused
   * (its launch is in the client's context by now). */
  if (self->state == CP_CLIENT_STATE_FAILED && g_cancellable_is_cancelled (internal) &&
      CP_IS_PROCESS_DISCOVERY (self->discovery))
    cp_process_discovery_stop_async (CP_PROCESS_DISCOVERY (self->discovery), NULL, NULL, NULL);

  switch (self->state)
    {
    case CP_CLIENT_STATE_READY:
      return TRUE;
    case CP_CLIENT_STATE_FAILED:
      if (g_cancellable_set_error_if_cancelled (cancellable, error) ||
          g_cancellable_set_error_if_cancelled (internal, error))
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


/**
 * cp_client_set_tls_files:
 * @client: a [class@ConnectPlugin.Client]
 * @cert_pem: (type filename) (nullable): the client certificate (PEM; it
 *   may hold the key when @key_pem is %NULL)
 * @key_pem: (type filename) (nullable): its private key (PEM)
 * @ca_pem: (type filename) (nullable): the CAs that plugins' server
 *   certificates are verified against (PEM)
 * @error: return location for a #GError
 *
 * Loads TLS settings from files, now, into
 * [property@ConnectPlugin.Client:tls-certificate] and
 * [property@ConnectPlugin.Client:tls-database]; arguments left %NULL leave
 * their property as it is. Call it before connecting.
 *
 * Returns: %TRUE, or %FALSE with @error set (unreadable or malformed files,
 *   a key without a certificate) and the client unchanged
 */
gboolean
cp_client_set_tls_files (CpClient    *client,
                         const char  *cert_pem,
                         const char  *key_pem,
                         const char  *ca_pem,
                         GError     **error)
{
  g_return_val_if_fail (CP_IS_CLIENT (client), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return cp_tls_set_files (G_OBJECT (client), cert_pem, key_pem, ca_pem, error);
}
