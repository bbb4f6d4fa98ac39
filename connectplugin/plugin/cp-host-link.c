/* cp-host-link.c: a CpServer's link to its host, the plugin side of the
 * platform (docs/wire-contract.md)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * With CpServer:host-url set (or $HOST_URL under cp_server_run()) and once
 * the server listens, the link runs these steps in the server's context,
 * as connect-plugin-go's Client.Connect and its example plugins do:
 *
 *   HANDSHAKE   HandshakeService.Handshake with self_id/self_version →
 *               runtime id and token (skipped in managed mode, where
 *               PluginIdentity.SetRuntimeIdentity gave them);
 *   REGISTER    ServiceRegistry.RegisterService per declared provide, with
 *               metadata base_url = where this server listens;
 *   HEALTH      PluginLifecycle.ReportHealth with the current health (and
 *               again on every cp_server_set_health()).
 *
 * A step failing with `unavailable` is retried (HOST_ATTEMPTS, backoff
 * from HOST_BACKOFF_MS doubling); any other failure ends the link with
 * CpServer::host-link-failed. Shutdown unregisters (bounded by
 * CpServer:host-timeout-ms). Every call carries X-Plugin-Runtime-ID and
 * Authorization: Bearer <runtime token>.
 *
 * The public calls at the end ask the host for channels: a capability
 * grant (renewed on a timer), a discovered service routed through the
 * host, and a watch of a service type (cp-service-watch.c).
 */
#include "cp-server-state-private.h"

#include <string.h>

#include "cp-error.h"
#include "cp-channel-private.h"
#include "cp-service-watch-private.h"
#include "connectplugin/protocol/broker.cp.h"
#include "connectplugin/protocol/registry.cp.h"

#define HOST_ATTEMPTS   5
#define HOST_BACKOFF_MS 100

typedef enum {
  STEP_HANDSHAKE,
  STEP_REGISTER,
  STEP_HEALTH,
  STEP_DONE,
} HostStep;

static void run_step (CpServer *self);

/* The link's calls do not keep the server alive: their callbacks get a
 * weak reference and do nothing once it is gone. */
static GWeakRef *
weak_new (CpServer *self)
{
  GWeakRef *weak = g_new (GWeakRef, 1);

  g_weak_ref_init (weak, self);
  return weak;
}

static CpServer *
weak_take (gpointer data)
{
  GWeakRef *weak = data;
  CpServer *self = g_weak_ref_get (weak);

  g_weak_ref_clear (weak);
  g_free (weak);
  return self;
}

static const char *
effective_self_id (CpServer *self)
{
  if (self->self_id != NULL)
    return self->self_id;
  return self->plugins->len > 0 ? cp_plugin_get_name (self->plugins->pdata[0]) : NULL;
}

static const char *
effective_self_version (CpServer *self)
{
  if (self->self_version != NULL)
    return self->self_version;
  return self->plugins->len > 0 ? cp_plugin_get_version (self->plugins->pdata[0]) : NULL;
}

/* host_url + @path (a relative endpoint), or @path when it is absolute. */
static char *
host_resolve (CpServer   *self,
              const char *path)
{
  g_autofree char *base = NULL;
  gsize len;

  if (g_uri_peek_scheme (path) != NULL)
    return g_strdup (path);
  base = g_strdup (self->host_url ? self->host_url : "");
  len = strlen (base);
  while (len > 0 && base[len - 1] == '/')
    base[--len] = '\0';
  return g_strconcat (base, path[0] == '/' ? "" : "/", path, NULL);
}

static void
set_runtime_headers (CpServer  *self,
                     CpChannel *channel)
{
  g_autofree char *bearer = g_strconcat ("Bearer ", self->runtime_token ? self->runtime_token : "", NULL);

  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", self->runtime_id);
  cp_channel_set_header (channel, "Authorization", self->runtime_token ? bearer : NULL);
}

/* A channel to the host for the link's calls. */
static CpChannel *
ensure_host_channel (CpServer  *self,
                     GError   **error)
{
  if (self->host_url == NULL || self->host_url[0] == '\0')
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                           "the server has no host URL");
      return NULL;
    }
  if (self->host_channel != NULL)
    {
      g_autofree char *base_url = NULL;

      /* SetRuntimeIdentity may have named another host. */
      g_object_get (self->host_channel, "base-url", &base_url, NULL);
      if (g_strcmp0 (base_url, self->host_url) != 0)
        g_clear_object (&self->host_channel);
    }
  if (self->host_channel == NULL)
    {
      self->host_channel = cp_channel_new (self->host_url, error);
      if (self->host_channel == NULL)
        return NULL;
      g_object_set (self->host_channel, "timeout-ms", (gint64) self->host_timeout_ms, NULL);
    }
  set_runtime_headers (self, self->host_channel);
  return self->host_channel;
}

static void
set_registered (CpServer *self,
                gboolean  registered)
{
  if (self->host_registered == registered)
    return;
  self->host_registered = registered;
  g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_HOST_REGISTERED]);
}

static void
link_failed (CpServer     *self,
             const GError *error)
{
  g_message ("connectplugin: the link to host %s failed: %s", self->host_url, error->message);
  g_signal_emit (self, cp_server_signals[SIGNAL_HOST_LINK_FAILED], 0, error);
}

static gboolean
on_retry (gpointer user_data)
{
  CpServer *self = user_data;

  g_clear_pointer (&self->host_retry, g_source_unref);
  run_step (self);
  return G_SOURCE_REMOVE;
}

/* Ends a step: the next one, a retry of a transient failure, or the end. */
static void
step_done (CpServer *self,
           GError   *error)
{
  if (error == NULL)
    {
      self->host_attempt = 0;
      run_step (self);
      return;
    }
  if (g_error_matches (error, CP_ERROR, CP_ERROR_UNAVAILABLE) &&
      ++self->host_attempt < HOST_ATTEMPTS && !self->shutting_down &&
      !g_cancellable_is_cancelled (self->host_cancellable))
    {
      guint delay = HOST_BACKOFF_MS << (self->host_attempt - 1);

      g_debug ("connectplugin: host %s unavailable (%s), retrying in %u ms",
               self->host_url, error->message, delay);
      self->host_retry = g_timeout_source_new (delay);
      g_source_set_callback (self->host_retry, on_retry, self, NULL);
      g_source_set_static_name (self->host_retry, "[connectplugin] host link retry");
      g_source_attach (self->host_retry, cp_rpc_server_get_context (self->rpc_server));
      g_error_free (error);
      return;
    }
  self->host_step = STEP_DONE;
  if (cp_error_get_code (error) != CP_ERROR_CANCELED)
    link_failed (self, error);
  g_error_free (error);
}

static void
on_handshake (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(CpServer) self = weak_take (user_data);
  g_autoptr(CpHandshakeResponse) response = NULL;
  GError *error = NULL;
  const char *id, *token;

  if (self == NULL)
    return;
  response = cp_handshake_service_call_handshake_finish (CP_HANDSHAKE_SERVICE (source), result, &error);
  if (response == NULL)
    {
      step_done (self, error);
      return;
    }
  id = cp_handshake_response_get_runtime_id (response);
  token = cp_handshake_response_get_runtime_token (response);
  if (id[0] == '\0' || token[0] == '\0')
    {
      step_done (self, g_error_new (CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                                    "host %s assigned no runtime identity", self->host_url));
      return;
    }
  g_object_freeze_notify (G_OBJECT (self));
  g_free (self->runtime_id);
  self->runtime_id = g_strdup (id);
  g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_RUNTIME_ID]);
  g_free (self->runtime_token);
  self->runtime_token = g_strdup (token);
  g_object_notify_by_pspec (G_OBJECT (self), cp_server_properties[PROP_RUNTIME_TOKEN]);
  g_object_thaw_notify (G_OBJECT (self));
  set_runtime_headers (self, self->host_channel);
  self->host_step = STEP_REGISTER;
  step_done (self, NULL);
}

static void
send_handshake (CpServer *self)
{
  g_autoptr(CpHandshakeService) proxy = cp_handshake_service_proxy_new (self->host_channel);
  g_autoptr(CpHandshakeRequest) request = cp_handshake_request_new ();
  g_autoptr(GHashTable) metadata = g_hash_table_new (g_str_hash, g_str_equal);

  cp_handshake_request_set_core_protocol_version (request, CP_CORE_PROTOCOL_VERSION);
  cp_handshake_request_set_app_protocol_version (request, self->app_protocol_version);
  cp_handshake_request_set_magic_cookie_key (request, effective_cookie_key (self));
  cp_handshake_request_set_magic_cookie_value (request, effective_cookie_value (self));
  g_hash_table_insert (metadata, "client_version", CP_SERVER_VERSION);
  cp_handshake_request_set_client_metadata (request, metadata);
  cp_handshake_request_set_self_id (request, effective_self_id (self));
  cp_handshake_request_set_self_version (request, effective_self_version (self));
  cp_handshake_service_call_handshake (proxy, request, NULL, self->host_cancellable,
                                       on_handshake, weak_new (self));
}

static void
on_registered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(CpServer) self = weak_take (user_data);
  g_autoptr(CpRegisterServiceResponse) response = NULL;
  GError *error = NULL;

  if (self == NULL)
    return;
  response = cp_service_registry_call_register_service_finish (CP_SERVICE_REGISTRY (source),
                                                               result, &error);
  if (response != NULL)
    {
      g_ptr_array_add (self->registrations,
                       g_strdup (cp_register_service_response_get_registration_id (response)));
      self->host_provide_index++;
    }
  step_done (self, error);
}

static void
send_register (CpServer *self)
{
  g_autoptr(CpServiceRegistry) proxy = NULL;
  g_autoptr(CpRegisterServiceRequest) request = NULL;
  g_autoptr(GHashTable) metadata = NULL;
  CpServiceDeclaration *provide;

  if (self->host_provides == NULL)
    {
      self->host_provides = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < self->plugins->len; i++)
        {
          g_autoptr(GPtrArray) provides = cp_plugin_get_provides (self->plugins->pdata[i]);

          for (guint j = 0; j < provides->len; j++)
            g_ptr_array_add (self->host_provides, g_object_ref (provides->pdata[j]));
        }
    }
  if (self->host_provide_index >= self->host_provides->len)
    {
      self->host_step = STEP_HEALTH;
      run_step (self);
      return;
    }

  provide = self->host_provides->pdata[self->host_provide_index];
  proxy = cp_service_registry_proxy_new (self->host_channel);
  request = cp_register_service_request_new ();
  metadata = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (metadata, "base_url", (gpointer) cp_server_get_url (self));
  cp_register_service_request_set_service_type (request, cp_service_declaration_get_type_ (provide));
  cp_register_service_request_set_version (request, cp_service_declaration_get_version (provide));
  cp_register_service_request_set_endpoint_path (request, cp_service_declaration_get_path (provide));
  cp_register_service_request_set_metadata (request, metadata);
  cp_service_registry_call_register_service (proxy, request, NULL, self->host_cancellable,
                                             on_registered, weak_new (self));
}

static void
on_health_reported (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(CpServer) self = weak_take (user_data);
  g_autoptr(CpReportHealthResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  gboolean first;

  if (self == NULL)
    return;
  first = self->host_step == STEP_HEALTH;
  response = cp_plugin_lifecycle_call_report_health_finish (CP_PLUGIN_LIFECYCLE (source),
                                                            result, &error);
  self->health_report_busy = FALSE;
  if (first)
    {
      if (response != NULL)
        {
          self->host_step = STEP_DONE;
          set_registered (self, TRUE);
        }
      step_done (self, g_steal_pointer (&error));
    }
  else if (response == NULL && cp_error_get_code (error) != CP_ERROR_CANCELED)
    link_failed (self, error);
  /* A change that came while this report was on its way. */
  if (self->health_report_dirty && self->host_registered)
    cp_server_host_report_health (self);
}

static void
send_health (CpServer *self)
{
  g_autoptr(CpPluginLifecycle) proxy = cp_plugin_lifecycle_proxy_new (self->host_channel);
  g_autoptr(CpReportHealthRequest) request = cp_report_health_request_new ();

  cp_report_health_request_set_state (request, self->health_state);
  cp_report_health_request_set_reason (request, self->health_reason);
  cp_report_health_request_set_unavailable_dependencies (request,
                                                         (const char * const *) self->unavailable_dependencies);
  self->health_report_busy = TRUE;
  self->health_report_dirty = FALSE;
  cp_plugin_lifecycle_call_report_health (proxy, request, NULL, self->host_cancellable,
                                          on_health_reported, weak_new (self));
}

static void
run_step (CpServer *self)
{
  if (self->shutting_down)
    return;
  switch ((HostStep) self->host_step)
    {
    case STEP_HANDSHAKE:
      send_handshake (self);
      break;
    case STEP_REGISTER:
      send_register (self);
      break;
    case STEP_HEALTH:
      send_health (self);
      break;
    case STEP_DONE:
      break;
    }
}

void
cp_server_host_link_start (CpServer *self,
                           gboolean  managed)
{
  g_autoptr(GError) error = NULL;

  if (self->host_url == NULL || self->host_url[0] == '\0' || self->host_link_started ||
      self->shutting_down || cp_server_get_url (self) == NULL)
    return;
  if (!managed && effective_self_id (self) == NULL)
    return;
  if (managed && self->runtime_id == NULL)
    return;

  self->host_link_started = TRUE;
  if (ensure_host_channel (self, &error) == NULL)
    {
      link_failed (self, error);
      return;
    }
  if (self->host_cancellable == NULL)
    self->host_cancellable = g_cancellable_new ();
  if (self->registrations == NULL)
    self->registrations = g_ptr_array_new_with_free_func (g_free);
  self->host_attempt = 0;
  self->host_step = managed ? STEP_REGISTER : STEP_HANDSHAKE;
  run_step (self);
}

void
cp_server_host_report_health (CpServer *self)
{
  /* Also while the first report is on its way: sent again after it. */
  if (self->health_report_busy)
    {
      self->health_report_dirty = TRUE;
      return;
    }
  if (!self->host_registered || self->shutting_down)
    return;
  send_health (self);
}

void
cp_server_host_link_stop (CpServer *self)
{
  if (self->host_retry != NULL)
    {
      g_source_destroy (self->host_retry);
      g_clear_pointer (&self->host_retry, g_source_unref);
    }
  if (self->host_cancellable != NULL)
    g_cancellable_cancel (self->host_cancellable);
}

/* ------------------------------------------------------------------ */
/* Unregistering                                                        */

static void
on_unregistered (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(CpUnregisterServiceResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  guint *pending = g_task_get_task_data (task);

  response = cp_service_registry_call_unregister_service_finish (CP_SERVICE_REGISTRY (source),
                                                                 result, &error);
  if (response == NULL)
    g_debug ("connectplugin: unregistering from host failed: %s", error->message);
  if (--*pending == 0)
    g_task_return_boolean (task, TRUE);
}

gboolean
cp_server_host_unregister_async (CpServer           *self,
                                 GAsyncReadyCallback callback,
                                 gpointer            user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(CpServiceRegistry) proxy = NULL;
  guint *pending;

  cp_server_host_link_stop (self);
  set_registered (self, FALSE);
  if (self->registrations == NULL || self->registrations->len == 0 || self->host_channel == NULL)
    return FALSE;

  /* Without a callback (close) nothing waits: the calls need not keep
   * the server alive, their proxy holds the channel. */
  task = g_task_new (callback ? self : NULL, NULL, callback, user_data);
  g_task_set_source_tag (task, cp_server_host_unregister_async);
  pending = g_new0 (guint, 1);
  g_task_set_task_data (task, pending, g_free);

  /* Not on host_cancellable (cancelled above); each call is bounded by
   * the channel's timeout-ms, host-timeout-ms. */
  proxy = cp_service_registry_proxy_new (self->host_channel);
  *pending = self->registrations->len;
  for (guint i = 0; i < self->registrations->len; i++)
    {
      g_autoptr(CpUnregisterServiceRequest) request = cp_unregister_service_request_new ();

      cp_unregister_service_request_set_registration_id (request, self->registrations->pdata[i]);
      cp_service_registry_call_unregister_service (proxy, request, NULL, NULL,
                                                   on_unregistered, g_object_ref (task));
    }
  g_ptr_array_set_size (self->registrations, 0);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Running an async call to completion (the _sync variants)             */

typedef struct {
  GAsyncResult *result;
} SyncRun;

static void
sync_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  SyncRun *run = user_data;

  run->result = g_object_ref (result);
}

static GMainContext *
sync_begin (void)
{
  GMainContext *context = g_main_context_new ();

  g_main_context_push_thread_default (context);
  return context;
}

static void
sync_end (GMainContext *context,
          SyncRun      *run)
{
  while (run->result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
}

/* ------------------------------------------------------------------ */
/* Capability grants                                                    */

/* Shared (atomic refcount) by the channel's data and the timer, so that a
 * channel dropped in another thread cannot free it under a running timer
 * callback. endpoint_url is only touched in the server's context. */
typedef struct {
  GWeakRef server;
  GWeakRef channel;
  char *capability_type;
  char *min_version;
  char *reason;
  char *endpoint_url;
  GSource *timer;
} GrantRenewal;

static void
grant_renewal_clear (gpointer data)
{
  GrantRenewal *renewal = data;

  g_clear_pointer (&renewal->timer, g_source_unref);
  g_weak_ref_clear (&renewal->server);
  g_weak_ref_clear (&renewal->channel);
  g_free (renewal->capability_type);
  g_free (renewal->min_version);
  g_free (renewal->reason);
  g_free (renewal->endpoint_url);
}

static void
grant_renewal_release (gpointer data)
{
  g_atomic_rc_box_release_full (data, grant_renewal_clear);
}

/* The channel's reference: its timer stops with it. */
static void
grant_renewal_detach (gpointer data)
{
  GrantRenewal *renewal = data;

  if (renewal->timer != NULL)
    g_source_destroy (renewal->timer);
  grant_renewal_release (renewal);
}

static void
request_grant (CpServer            *self,
               const char          *capability_type,
               const char          *min_version,
               const char          *reason,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             user_data)
{
  g_autoptr(CpCapabilityBroker) proxy = NULL;
  g_autoptr(CpRequestCapabilityRequest) request = cp_request_capability_request_new ();

  proxy = cp_capability_broker_proxy_new (self->host_channel);
  cp_request_capability_request_set_capability_type (request, capability_type);
  cp_request_capability_request_set_min_version (request, min_version);
  cp_request_capability_request_set_reason (request, reason);
  cp_capability_broker_call_request_capability (proxy, request, NULL, cancellable, callback, user_data);
}

/* The grant of a response (transfer full), checked; NULL with @error
 * otherwise. */
static CpCapabilityGrant *
response_grant (CpRequestCapabilityResponse *response,
                GError                     **error)
{
  g_autoptr(CpCapabilityGrant) grant = cp_request_capability_response_get_grant (response);

  if (grant == NULL || cp_capability_grant_get_endpoint_url (grant)[0] == '\0' ||
      cp_capability_grant_get_bearer_token (grant)[0] == '\0')
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "the host answered a capability request without a usable grant");
      return NULL;
    }
  return g_steal_pointer (&grant);
}

static void
set_grant_token (CpChannel         *channel,
                 CpCapabilityGrant *grant)
{
  g_autofree char *bearer = g_strconcat ("Bearer ", cp_capability_grant_get_bearer_token (grant), NULL);

  cp_channel_set_header (channel, "Authorization", bearer);
}

static void
on_grant_renewed (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(CpChannel) channel = user_data;
  GrantRenewal *renewal = g_object_get_data (G_OBJECT (channel), "cp-grant-renewal");
  g_autoptr(CpServer) self = renewal ? g_weak_ref_get (&renewal->server) : NULL;
  g_autoptr(CpRequestCapabilityResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autoptr(CpCapabilityGrant) grant = NULL;

  response = cp_capability_broker_call_request_capability_finish (CP_CAPABILITY_BROKER (source),
                                                                  result, &error);
  if (response != NULL)
    grant = response_grant (response, &error);
  if (grant == NULL || renewal == NULL || self == NULL)
    {
      /* The old grant stays until it expires; the timer tries again. */
      if (error != NULL && cp_error_get_code (error) != CP_ERROR_CANCELED)
        g_message ("connectplugin: renewing the %s capability grant failed: %s",
                   renewal ? renewal->capability_type : "?", error->message);
      return;
    }
  url = host_resolve (self, cp_capability_grant_get_endpoint_url (grant));
  if (g_strcmp0 (url, renewal->endpoint_url) != 0)
    {
      if (!cp_channel_rebase (channel, url, &error))
        {
          g_message ("connectplugin: a renewed grant is unusable: %s", error->message);
          return;
        }
      g_free (renewal->endpoint_url);
      renewal->endpoint_url = g_steal_pointer (&url);
    }
  set_grant_token (channel, grant);
  g_debug ("connectplugin: renewed the %s capability grant", renewal->capability_type);
}

static gboolean
on_grant_timer (gpointer user_data)
{
  GrantRenewal *renewal = user_data;
  g_autoptr(CpServer) self = g_weak_ref_get (&renewal->server);
  g_autoptr(CpChannel) channel = g_weak_ref_get (&renewal->channel);

  if (self == NULL || channel == NULL || self->closed)
    return G_SOURCE_CONTINUE;
  if (self->host_channel == NULL)
    return G_SOURCE_CONTINUE;
  request_grant (self, renewal->capability_type, renewal->min_version, renewal->reason,
                 self->host_cancellable, on_grant_renewed, g_object_ref (channel));
  return G_SOURCE_CONTINUE;
}

static CpChannel *
grant_channel_new (CpServer          *self,
                   CpCapabilityGrant *grant,
                   const char        *min_version,
                   const char        *reason,
                   GError           **error)
{
  g_autofree char *url = host_resolve (self, cp_capability_grant_get_endpoint_url (grant));
  g_autoptr(CpChannel) channel = cp_channel_new (url, error);
  GrantRenewal *renewal;

  if (channel == NULL)
    return NULL;
  set_grant_token (channel, grant);
  renewal = g_atomic_rc_box_new0 (GrantRenewal);
  g_weak_ref_init (&renewal->server, self);
  g_weak_ref_init (&renewal->channel, channel);
  renewal->capability_type = g_strdup (cp_capability_grant_get_capability_type (grant));
  renewal->min_version = g_strdup (min_version);
  renewal->reason = g_strdup (reason);
  renewal->endpoint_url = g_steal_pointer (&url);
  if (self->grant_renew_interval_ms > 0)
    {
      renewal->timer = g_timeout_source_new (self->grant_renew_interval_ms);
      g_source_set_callback (renewal->timer, on_grant_timer,
                             g_atomic_rc_box_acquire (renewal), grant_renewal_release);
      g_source_set_static_name (renewal->timer, "[connectplugin] capability grant renewal");
      g_source_attach (renewal->timer, cp_rpc_server_get_context (self->rpc_server));
    }
  g_object_set_data_full (G_OBJECT (channel), "cp-grant-renewal", renewal, grant_renewal_detach);
  return g_steal_pointer (&channel);
}

typedef struct {
  char *capability_type;
  char *min_version;
  char *reason;
} GrantRequest;

static void
grant_request_free (gpointer data)
{
  GrantRequest *request = data;

  g_free (request->capability_type);
  g_free (request->min_version);
  g_free (request->reason);
  g_free (request);
}

static void
on_grant (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CpServer *self = g_task_get_source_object (task);
  GrantRequest *request = g_task_get_task_data (task);
  g_autoptr(CpRequestCapabilityResponse) response = NULL;
  g_autoptr(CpCapabilityGrant) grant = NULL;
  CpChannel *channel = NULL;
  GError *error = NULL;

  response = cp_capability_broker_call_request_capability_finish (CP_CAPABILITY_BROKER (source),
                                                                  result, &error);
  if (response != NULL)
    grant = response_grant (response, &error);
  if (grant != NULL)
    {
      /* Renewals ask for the same type as the first request. */
      if (cp_capability_grant_get_capability_type (grant)[0] == '\0')
        cp_capability_grant_set_capability_type (grant, request->capability_type);
      channel = grant_channel_new (self, grant, request->min_version, request->reason, &error);
    }
  if (channel != NULL)
    g_task_return_pointer (task, channel, g_object_unref);
  else
    g_task_return_error (task, error);
}

/* The runtime identity every host call needs. */
static gboolean
check_identity (CpServer  *self,
                GError   **error)
{
  if (self->runtime_id == NULL || self->runtime_token == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                           "the server has no runtime identity from a host yet");
      return FALSE;
    }
  return ensure_host_channel (self, error) != NULL;
}

/**
 * cp_server_request_capability_async:
 * @server: a [class@ConnectPlugin.Server]
 * @capability_type: the capability, e.g. `secrets`
 * @min_version: (nullable): the lowest acceptable version, e.g. `1.0.0`
 * @reason: (nullable): why the plugin needs it, for the host's records
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when the host has answered, in the
 *   thread-default main context of the caller
 * @user_data: (closure): data for @callback
 *
 * Asks the host (`CapabilityBroker.RequestCapability` at
 * [property@ConnectPlugin.Server:host-url], with the server's runtime id and
 * token) for a capability, and makes a [class@ConnectPlugin.Channel] bound to
 * the grant: its base URL is the grant's `endpoint_url`
 * (`HOST/capabilities/{type}/{grant_id}`; a relative one is put after the
 * host URL) and every call on it carries `Authorization: Bearer <grant
 * token>`. Dispense the capability's generated proxy on it.
 *
 * The grant is renewed every
 * [property@ConnectPlugin.Server:grant-renew-interval-ms] (50 minutes by
 * default, before the host's default grant lifetime of one hour runs out;
 * the grant message carries no expiry) for as long as the channel and the
 * server live: the channel then points at the new grant and carries its
 * token, also for calls made from other threads.
 *
 * The server needs a runtime identity: from its own handshake with the host
 * ([property@ConnectPlugin.Server:host-registered] turns %TRUE) or given by the
 * host (PluginIdentity.SetRuntimeIdentity); without one the call fails with
 * `failed_precondition`. The host's refusal (e.g. `permission_denied`,
 * `not_found`) is passed on.
 */
void
cp_server_request_capability_async (CpServer            *server,
                                    const char          *capability_type,
                                    const char          *min_version,
                                    const char          *reason,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GrantRequest *request;
  GError *error = NULL;

  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (capability_type != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (server, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_server_request_capability_async);
  request = g_new0 (GrantRequest, 1);
  request->capability_type = g_strdup (capability_type);
  request->min_version = g_strdup (min_version);
  request->reason = g_strdup (reason);
  g_task_set_task_data (task, request, grant_request_free);
  if (!check_identity (server, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  request_grant (server, capability_type, min_version, reason, cancellable,
                 on_grant, g_steal_pointer (&task));
}

/**
 * cp_server_request_capability_finish:
 * @server: a [class@ConnectPlugin.Server]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR)
 *
 * Finishes [method@ConnectPlugin.Server.request_capability_async].
 *
 * Returns: (transfer full): a channel bound to the grant, or %NULL on error
 */
CpChannel *
cp_server_request_capability_finish (CpServer      *server,
                                     GAsyncResult  *result,
                                     GError       **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  g_return_val_if_fail (g_task_is_valid (result, server), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * cp_server_request_capability_sync:
 * @server: a [class@ConnectPlugin.Server]
 * @capability_type: the capability, e.g. `secrets`
 * @min_version: (nullable): the lowest acceptable version
 * @reason: (nullable): why the plugin needs it
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR)
 *
 * The blocking form of [method@ConnectPlugin.Server.request_capability_async]:
 * runs a main context of its own until the host answers. The grant's
 * renewal timer runs in the server's context.
 *
 * Returns: (transfer full): a channel bound to the grant, or %NULL on error
 */
CpChannel *
cp_server_request_capability_sync (CpServer      *server,
                                   const char    *capability_type,
                                   const char    *min_version,
                                   const char    *reason,
                                   GCancellable  *cancellable,
                                   GError       **error)
{
  SyncRun run = { NULL };
  GMainContext *context;
  CpChannel *channel;

  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  context = sync_begin ();
  cp_server_request_capability_async (server, capability_type, min_version, reason,
                                      cancellable, sync_done, &run);
  sync_end (context, &run);
  channel = cp_server_request_capability_finish (server, run.result, error);
  g_object_unref (run.result);
  return channel;
}

/* ------------------------------------------------------------------ */
/* Discovery                                                            */

static void
on_discovered (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CpServer *self = g_task_get_source_object (task);
  g_autoptr(CpDiscoverServiceResponse) response = NULL;
  g_autofree char *url = NULL;
  g_autoptr(CpServiceEndpoint) endpoint = NULL;
  CpChannel *channel;
  GError *error = NULL;

  response = cp_service_registry_call_discover_service_finish (CP_SERVICE_REGISTRY (source),
                                                               result, &error);
  if (response != NULL)
    endpoint = cp_discover_service_response_get_endpoint (response);
  if (response != NULL && (endpoint == NULL || cp_service_endpoint_get_endpoint_url (endpoint)[0] == '\0'))
    error = g_error_new_literal (CP_ERROR, CP_ERROR_NOT_FOUND,
                                 "the host answered a discovery without an endpoint");
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  url = host_resolve (self, cp_service_endpoint_get_endpoint_url (endpoint));
  channel = cp_channel_new (url, &error);
  if (channel == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_object_set (channel, "method-only-paths", TRUE, NULL);
  set_runtime_headers (self, channel);
  g_task_return_pointer (task, channel, g_object_unref);
}

/**
 * cp_server_discover_service_async:
 * @server: a [class@ConnectPlugin.Server]
 * @service_type: the service type, e.g. `logger`
 * @min_version: (nullable): the lowest acceptable version, e.g. `1.0.0`
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when the host has answered, in the
 *   thread-default main context of the caller
 * @user_data: (closure): data for @callback
 *
 * Asks the host (`ServiceRegistry.DiscoverService`) for a provider of
 * @service_type and makes a [class@ConnectPlugin.Channel] that calls it
 * through the host's router: its base URL is the host URL followed by the
 * endpoint's `/services/{type}/{provider_runtime_id}`,
 * [property@ConnectPlugin.Channel:method-only-paths] is set (the router
 * expects `/{Method}` after it), and every call carries the server's
 * `X-Plugin-Runtime-ID` and `Authorization: Bearer <runtime token>`.
 * Dispense the service's generated proxy on it, as a host does
 * (`kv_kv_service_proxy_new (channel)`).
 *
 * The provider is chosen once, by the host; discover again (or follow a
 * [method@ConnectPlugin.Server.watch_service]) to move to another. Fails with
 * `failed_precondition` without a runtime identity, and with the host's
 * error (`not_found` when no provider qualifies).
 */
void
cp_server_discover_service_async (CpServer            *server,
                                  const char          *service_type,
                                  const char          *min_version,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(CpServiceRegistry) proxy = NULL;
  g_autoptr(CpDiscoverServiceRequest) request = NULL;
  GError *error = NULL;

  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (service_type != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (server, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_server_discover_service_async);
  if (!check_identity (server, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  proxy = cp_service_registry_proxy_new (server->host_channel);
  request = cp_discover_service_request_new ();
  cp_discover_service_request_set_service_type (request, service_type);
  cp_discover_service_request_set_min_version (request, min_version);
  cp_service_registry_call_discover_service (proxy, request, NULL, cancellable,
                                             on_discovered, g_steal_pointer (&task));
}

/**
 * cp_server_discover_service_finish:
 * @server: a [class@ConnectPlugin.Server]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR)
 *
 * Finishes [method@ConnectPlugin.Server.discover_service_async].
 *
 * Returns: (transfer full): a channel routed through the host to the
 *   provider, or %NULL on error
 */
CpChannel *
cp_server_discover_service_finish (CpServer      *server,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  g_return_val_if_fail (g_task_is_valid (result, server), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * cp_server_discover_service_sync:
 * @server: a [class@ConnectPlugin.Server]
 * @service_type: the service type, e.g. `logger`
 * @min_version: (nullable): the lowest acceptable version
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR)
 *
 * The blocking form of [method@ConnectPlugin.Server.discover_service_async]:
 * runs a main context of its own until the host answers.
 *
 * Returns: (transfer full): a channel routed through the host to the
 *   provider, or %NULL on error
 */
CpChannel *
cp_server_discover_service_sync (CpServer      *server,
                                 const char    *service_type,
                                 const char    *min_version,
                                 GCancellable  *cancellable,
                                 GError       **error)
{
  SyncRun run = { NULL };
  GMainContext *context;
  CpChannel *channel;

  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  context = sync_begin ();
  cp_server_discover_service_async (server, service_type, min_version, cancellable,
                                    sync_done, &run);
  sync_end (context, &run);
  channel = cp_server_discover_service_finish (server, run.result, error);
  g_object_unref (run.result);
  return channel;
}

/* ------------------------------------------------------------------ */
/* Watching                                                             */

/**
 * cp_server_watch_service:
 * @server: a [class@ConnectPlugin.Server]
 * @service_type: the service type, e.g. `logger`
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR)
 *
 * Follows the providers of @service_type at the host
 * (`ServiceRegistry.WatchService`, a server stream with the server's
 * runtime id and token): the returned [class@ConnectPlugin.ServiceWatch]
 * emits [signal@ConnectPlugin.ServiceWatch::changed] for the current state
 * and for every change, in the thread-default main context of the caller,
 * until it is cancelled or disposed.
 *
 * Fails with `failed_precondition` when the server has no runtime
 * identity from a host yet.
 *
 * Returns: (transfer full): the watch, or %NULL on error
 */
CpServiceWatch *
cp_server_watch_service (CpServer    *server,
                         const char  *service_type,
                         GError     **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), NULL);
  g_return_val_if_fail (service_type != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_identity (server, error))
    return NULL;
  return cp_service_watch_new_internal (server->host_channel, service_type);
}
