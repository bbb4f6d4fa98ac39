/* test-plugin-host-link.c: a CpServer linked to a host — handshake,
 * registration, health reports, unregistration, capability grants,
 * discovery and watches — against a host fixture made of a CpServer
 * serving test ServiceRegistry / PluginLifecycle / CapabilityBroker
 * skeletons that record what the plugin sent (docs/wire-contract.md)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <connectplugin.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "cp-server-private.h"
#include "cp-channel-private.h"
#include "plugintest.cp.h"

#define SECRET "Zm9vYmFyLXNlY3JldC10b2tlbi0zMi1ieXRlcy1sb25n"
#define PROVIDER "pt-1234"

/* ------------------------------------------------------------------ */
/* A recording interceptor: "procedure|runtime id|authorization"        */

typedef struct {
  CpServerInterceptor parent_instance;
  GPtrArray *log;
} RecordInterceptor;

typedef CpServerInterceptorClass RecordInterceptorClass;

static GType record_interceptor_get_type (void);
G_DEFINE_TYPE (RecordInterceptor, record_interceptor, CP_TYPE_SERVER_INTERCEPTOR)

static gboolean
record_intercept (CpServerInterceptor  *interceptor,
                  CpInvocation         *invocation,
                  CpMessage            *request,
                  GError              **error)
{
  RecordInterceptor *self = (RecordInterceptor *) interceptor;
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);
  const char *id = soup_message_headers_get_one (headers, "X-Plugin-Runtime-ID");
  const char *auth = soup_message_headers_get_one (headers, "Authorization");

  g_ptr_array_add (self->log, g_strdup_printf ("%s|%s|%s", cp_invocation_get_procedure (invocation),
                                               id ? id : "-", auth ? auth : "-"));
  return TRUE;
}

static void
record_interceptor_class_init (RecordInterceptorClass *klass)
{
  klass->intercept = record_intercept;
}

static void
record_interceptor_init (RecordInterceptor *self)
{
}

/* ------------------------------------------------------------------ */
/* Fixture: a host, and a plugin server "pt" providing "slow"           */

typedef struct {
  CpServer *host;
  CpPlugin *host_plugin;
  CpServiceRegistry *registry;
  CpPluginLifecycle *lifecycle;
  CpCapabilityBroker *broker;
  RecordInterceptor *recorder;
  char *host_url;
  GPtrArray *log;            /* what the host saw, in order */
  GPtrArray *registered;     /* CpRegisterServiceRequest* */
  GPtrArray *unregistered;   /* char* registration ids */
  GPtrArray *health;         /* CpReportHealthRequest* */
  GPtrArray *held;           /* CpInvocation* kept unanswered */
  CpInvocation *watch;
  guint n_grants;
  guint max_grants;          /* later requests fail with unavailable */
  CpErrorCode register_error;
  gboolean hold_unregister;

  CpServer *plugin;
  CpPlugin *pt;
  PlugintestSlowService *slow;
  guint n_link_failed;
  GError *link_error;
  gboolean closed;
} Fixture;

static void
wait_until (gboolean (*cond) (Fixture *f),
            Fixture  *f)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (!cond (f))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);  /* hang guard */
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static gboolean
registered (Fixture *f)
{
  return cp_server_get_host_registered (f->plugin);
}

static gboolean
link_failed (Fixture *f)
{
  return f->n_link_failed > 0;
}

static gboolean
closed (Fixture *f)
{
  return f->closed;
}

static gboolean
two_health_reports (Fixture *f)
{
  return f->health->len >= 2;
}

static gboolean
on_register (CpServiceRegistry        *registry,
             CpInvocation             *invocation,
             CpRegisterServiceRequest *request,
             Fixture                  *f)
{
  g_autoptr(CpRegisterServiceResponse) response = cp_register_service_response_new ();
  g_autofree char *id = g_strdup_printf ("reg-%016x", f->registered->len + 1);

  g_ptr_array_add (f->registered, g_object_ref (request));
  if (f->register_error != 0)
    {
      cp_invocation_return_error_literal (invocation, f->register_error, "not allowed");
      return TRUE;
    }
  cp_register_service_response_set_registration_id (response, id);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static gboolean
on_unregister (CpServiceRegistry          *registry,
               CpInvocation               *invocation,
               CpUnregisterServiceRequest *request,
               Fixture                    *f)
{
  g_autoptr(CpUnregisterServiceResponse) response = cp_unregister_service_response_new ();

  g_ptr_array_add (f->unregistered, g_strdup (cp_unregister_service_request_get_registration_id (request)));
  if (f->hold_unregister)
    {
      g_ptr_array_add (f->held, g_object_ref (invocation));
      return TRUE;
    }
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static CpServiceEndpoint *
endpoint_new (const char *type)
{
  CpServiceEndpoint *endpoint = cp_service_endpoint_new ();
  g_autofree char *url = g_strdup_printf ("/services/%s/" PROVIDER, type);

  cp_service_endpoint_set_provider_id (endpoint, PROVIDER);
  cp_service_endpoint_set_version (endpoint, "1.0.0");
  cp_service_endpoint_set_endpoint_url (endpoint, url);
  return endpoint;
}

static gboolean
on_discover (CpServiceRegistry        *registry,
             CpInvocation             *invocation,
             CpDiscoverServiceRequest *request,
             Fixture                  *f)
{
  g_autoptr(CpDiscoverServiceResponse) response = cp_discover_service_response_new ();
  g_autoptr(CpServiceEndpoint) endpoint = NULL;
  const char *type = cp_discover_service_request_get_service_type (request);

  if (g_str_equal (type, "missing"))
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_NOT_FOUND, "no provider");
      return TRUE;
    }
  endpoint = endpoint_new (type);
  cp_discover_service_response_set_endpoint (response, endpoint);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static void
send_watch_event (Fixture        *f,
                  CpServiceState  state)
{
  g_autoptr(CpWatchServiceEvent) event = cp_watch_service_event_new ();
  g_autoptr(CpServiceEndpoint) endpoint = endpoint_new ("slow");

  cp_watch_service_event_set_service_type (event, "slow");
  cp_watch_service_event_set_state (event, state);
  cp_watch_service_event_set_endpoint (event, endpoint);
  g_assert_true (cp_invocation_send_message (f->watch, CP_MESSAGE (event), NULL));
}

static gboolean
on_watch (CpServiceRegistry     *registry,
          CpInvocation          *invocation,
          CpWatchServiceRequest *request,
          Fixture               *f)
{
  g_assert_cmpstr (cp_watch_service_request_get_service_type (request), ==, "slow");
  f->watch = g_object_ref (invocation);
  send_watch_event (f, CP_SERVICE_STATE_AVAILABLE);
  return TRUE;
}

static gboolean
on_report_health (CpPluginLifecycle     *lifecycle,
                  CpInvocation          *invocation,
                  CpReportHealthRequest *request,
                  Fixture               *f)
{
  g_autoptr(CpReportHealthResponse) response = cp_report_health_response_new ();

  g_ptr_array_add (f->health, g_object_ref (request));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static gboolean
on_request_capability (CpCapabilityBroker         *broker,
                       CpInvocation               *invocation,
                       CpRequestCapabilityRequest *request,
                       Fixture                    *f)
{
  g_autoptr(CpRequestCapabilityResponse) response = cp_request_capability_response_new ();
  g_autoptr(CpCapabilityGrant) grant = cp_capability_grant_new ();
  g_autofree char *id = NULL;
  g_autofree char *token = NULL;
  g_autofree char *url = NULL;

  if (!g_str_equal (cp_request_capability_request_get_capability_type (request), "secrets"))
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_PERMISSION_DENIED, "not granted");
      return TRUE;
    }
  g_assert_cmpstr (cp_request_capability_request_get_min_version (request), ==, "1.0.0");
  if (f->max_grants > 0 && f->n_grants >= f->max_grants)
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_UNAVAILABLE, "no more");
      return TRUE;
    }
  f->n_grants++;
  id = g_strdup_printf ("GRANT%u", f->n_grants);
  token = g_strdup_printf ("token-%u", f->n_grants);
  url = g_strdup_printf ("%s/capabilities/secrets/%s", f->host_url, id);
  cp_capability_grant_set_grant_id (grant, id);
  cp_capability_grant_set_bearer_token (grant, token);
  cp_capability_grant_set_endpoint_url (grant, url);
  cp_capability_grant_set_capability_type (grant, "secrets");
  cp_capability_grant_set_version (grant, "1.0.0");
  cp_request_capability_response_set_grant (response, grant);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

/* Answers a routed or capability Ping with its procedure. */
static void
handle_ping (CpInvocation *invocation,
             CpMessage    *request,
             gpointer      user_data)
{
  g_autoptr(PlugintestSlowResponse) response = plugintest_slow_response_new ();

  plugintest_slow_response_set_text (response, cp_invocation_get_procedure (invocation));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
host_add_ping (Fixture    *f,
               const char *procedure)
{
  g_autoptr(CpMethodInfo) info = cp_method_info_new (procedure, CP_METHOD_UNARY,
                                                     PLUGINTEST_TYPE_SLOW_REQUEST,
                                                     PLUGINTEST_TYPE_SLOW_RESPONSE);

  cp_rpc_server_add_method (cp_server_get_rpc_server (f->host), info, handle_ping, NULL, NULL);
}

static void
host_setup (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  f->log = g_ptr_array_new_with_free_func (g_free);
  f->registered = g_ptr_array_new_with_free_func (g_object_unref);
  f->unregistered = g_ptr_array_new_with_free_func (g_free);
  f->health = g_ptr_array_new_with_free_func (g_object_unref);
  f->held = g_ptr_array_new_with_free_func (g_object_unref);

  f->host = cp_server_new ();
  f->recorder = g_object_new (record_interceptor_get_type (), NULL);
  f->recorder->log = f->log;
  cp_server_add_interceptor (f->host, CP_SERVER_INTERCEPTOR (f->recorder));
  f->host_plugin = cp_plugin_new ("host", "1.0.0");
  f->registry = cp_service_registry_skeleton_new ();
  f->lifecycle = cp_plugin_lifecycle_skeleton_new ();
  f->broker = cp_capability_broker_skeleton_new ();
  g_signal_connect (f->registry, "handle-register-service", G_CALLBACK (on_register), f);
  g_signal_connect (f->registry, "handle-unregister-service", G_CALLBACK (on_unregister), f);
  g_signal_connect (f->registry, "handle-discover-service", G_CALLBACK (on_discover), f);
  g_signal_connect (f->registry, "handle-watch-service", G_CALLBACK (on_watch), f);
  g_signal_connect (f->lifecycle, "handle-report-health", G_CALLBACK (on_report_health), f);
  g_signal_connect (f->broker, "handle-request-capability", G_CALLBACK (on_request_capability), f);
  cp_plugin_add_service (f->host_plugin, CP_SKELETON (f->registry));
  cp_plugin_add_service (f->host_plugin, CP_SKELETON (f->lifecycle));
  cp_plugin_add_service (f->host_plugin, CP_SKELETON (f->broker));
  cp_server_add_plugin (f->host, f->host_plugin);
  /* What the host's router and capability dispatch would serve. */
  host_add_ping (f, "/services/slow/" PROVIDER "/Ping");
  host_add_ping (f, "/capabilities/secrets/GRANT1/plugintest.v1.OtherService/Ping");
  host_add_ping (f, "/capabilities/secrets/GRANT2/plugintest.v1.OtherService/Ping");
  f->host_url = cp_server_listen (f->host, "127.0.0.1:0", &error);
  g_assert_no_error (error);
}

static void
on_link_failed (CpServer     *server,
                const GError *error,
                Fixture      *f)
{
  f->n_link_failed++;
  g_clear_error (&f->link_error);
  f->link_error = g_error_copy (error);
}

static void
on_plugin_closed (CpServer *server,
                  Fixture  *f)
{
  f->closed = TRUE;
}

static void
plugin_setup (Fixture *f)
{
  f->plugin = cp_server_new ();
  f->pt = cp_plugin_new ("pt", "2.0.0");
  f->slow = PLUGINTEST_SLOW_SERVICE (plugintest_slow_service_skeleton_new ());
  cp_plugin_add_service (f->pt, CP_SKELETON (f->slow));
  cp_plugin_add_provides (f->pt, "slow", "1.0.0", "/plugintest.v1.SlowService/");
  cp_plugin_add_provides (f->pt, "slow-admin", "1.1.0", "/plugintest.v1.SlowService/");
  cp_server_add_plugin (f->plugin, f->pt);
  g_object_set (f->plugin, "self-id", "Pt-Plugin", "self-version", "2.0.1", NULL);
  g_signal_connect (f->plugin, "host-link-failed", G_CALLBACK (on_link_failed), f);
  g_signal_connect (f->plugin, "closed", G_CALLBACK (on_plugin_closed), f);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  host_setup (f);
  plugin_setup (f);
}

static void
host_teardown (Fixture *f)
{
  if (f->watch != NULL)
    cp_invocation_return_ok (f->watch);
  g_clear_object (&f->watch);
  for (guint i = 0; i < f->held->len; i++)
    cp_invocation_return_ok (f->held->pdata[i]);
  cp_server_close (f->host);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->host);
  g_clear_object (&f->host_plugin);
  g_clear_object (&f->registry);
  g_clear_object (&f->lifecycle);
  g_clear_object (&f->broker);
  g_clear_object (&f->recorder);
  g_clear_object (&f->pt);
  g_clear_object (&f->slow);
  g_clear_error (&f->link_error);
  g_ptr_array_unref (f->log);
  g_ptr_array_unref (f->registered);
  g_ptr_array_unref (f->unregistered);
  g_ptr_array_unref (f->health);
  g_ptr_array_unref (f->held);
  g_free (f->host_url);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  cp_server_close (f->plugin);
  g_assert_finalize_object (f->plugin);
  host_teardown (f);
}

/* The host in a thread of its own, for the blocking (_sync) requests. */
typedef struct {
  Fixture fixture;
  GThread *thread;
  GMainContext *context;
  gint ready;
  gint stop;
} ThreadedFixture;

static gpointer
host_thread (gpointer data)
{
  ThreadedFixture *t = data;

  g_main_context_push_thread_default (t->context);
  host_setup (&t->fixture);
  g_atomic_int_set (&t->ready, 1);
  while (!g_atomic_int_get (&t->stop))
    g_main_context_iteration (t->context, TRUE);
  host_teardown (&t->fixture);
  g_main_context_pop_thread_default (t->context);
  return NULL;
}

static void
threaded_setup (ThreadedFixture *t,
                gconstpointer    data)
{
  t->context = g_main_context_new ();
  t->thread = g_thread_new ("host", host_thread, t);
  while (!g_atomic_int_get (&t->ready))
    g_usleep (1000);
  plugin_setup (&t->fixture);
}

static gboolean
wake (gpointer data)
{
  return G_SOURCE_REMOVE;
}

static void
threaded_teardown (ThreadedFixture *t,
                   gconstpointer    data)
{
  cp_server_close (t->fixture.plugin);
  g_assert_finalize_object (t->fixture.plugin);
  g_atomic_int_set (&t->stop, 1);
  g_main_context_invoke (t->context, wake, NULL);
  g_thread_join (t->thread);
  g_main_context_unref (t->context);
}

static void
plugin_listen (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = cp_server_listen (f->plugin, "127.0.0.1:0", &error);

  g_assert_no_error (error);
}

/* The procedures the host saw, with the runtime headers: "-" when absent. */
static void
assert_log (Fixture    *f,
            guint       index,
            const char *procedure,
            gboolean    runtime_headers)
{
  g_autofree char *expected = NULL;

  g_assert_cmpuint (index, <, f->log->len);
  if (runtime_headers)
    expected = g_strdup_printf ("%s|%s|Bearer %s", procedure, cp_server_get_runtime_id (f->plugin),
                                cp_server_get_runtime_token (f->plugin));
  else
    expected = g_strdup_printf ("%s|-|-", procedure);
  g_assert_cmpstr (f->log->pdata[index], ==, expected);
}

#define P_HANDSHAKE  "/connectplugin.v1.HandshakeService/Handshake"
#define P_REGISTER   "/connectplugin.v1.ServiceRegistry/RegisterService"
#define P_UNREGISTER "/connectplugin.v1.ServiceRegistry/UnregisterService"
#define P_HEALTH     "/connectplugin.v1.PluginLifecycle/ReportHealth"

static void
on_shutdown_done (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_server_shutdown_finish (CP_SERVER (source), result, &error));
  g_assert_no_error (error);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

/* handshake → register each provide → report health; health changes are
 * reported; shutdown unregisters before the server stops. */
static void
test_register_lifecycle (Fixture       *f,
                         gconstpointer  data)
{
  CpRegisterServiceRequest *reg;
  CpReportHealthRequest *health;
  g_autoptr(GHashTable) metadata = NULL;
  const char *deps[] = { "logger", NULL };

  g_object_set (f->plugin, "host-url", f->host_url, NULL);
  plugin_listen (f);
  wait_until (registered, f);
  g_assert_cmpuint (f->n_link_failed, ==, 0);

  /* The identity the host issued. */
  g_assert_true (g_str_has_prefix (cp_server_get_runtime_id (f->plugin), "pt-plugin-"));
  g_assert_true (cp_server_check_runtime_token (f->host, cp_server_get_runtime_id (f->plugin),
                                                cp_server_get_runtime_token (f->plugin)));
  g_assert_cmpstr (cp_server_lookup_runtime_self_id (f->host, cp_server_get_runtime_id (f->plugin)),
                   ==, "Pt-Plugin");

  g_assert_cmpuint (f->log->len, ==, 4);
  assert_log (f, 0, P_HANDSHAKE, FALSE);
  assert_log (f, 1, P_REGISTER, TRUE);
  assert_log (f, 2, P_REGISTER, TRUE);
  assert_log (f, 3, P_HEALTH, TRUE);

  g_assert_cmpuint (f->registered->len, ==, 2);
  reg = f->registered->pdata[0];
  g_assert_cmpstr (cp_register_service_request_get_service_type (reg), ==, "slow");
  g_assert_cmpstr (cp_register_service_request_get_version (reg), ==, "1.0.0");
  g_assert_cmpstr (cp_register_service_request_get_endpoint_path (reg), ==, "/plugintest.v1.SlowService/");
  metadata = cp_register_service_request_get_metadata (reg);
  g_assert_cmpstr (g_hash_table_lookup (metadata, "base_url"), ==, cp_server_get_url (f->plugin));
  reg = f->registered->pdata[1];
  g_assert_cmpstr (cp_register_service_request_get_service_type (reg), ==, "slow-admin");
  g_assert_cmpstr (cp_register_service_request_get_version (reg), ==, "1.1.0");

  g_assert_cmpuint (f->health->len, ==, 1);
  g_assert_cmpint (cp_report_health_request_get_state (f->health->pdata[0]), ==, CP_HEALTH_STATE_HEALTHY);

  /* A change is reported as it happens. */
  cp_server_set_health (f->plugin, CP_HEALTH_STATE_DEGRADED, "no logger", deps);
  wait_until (two_health_reports, f);
  health = f->health->pdata[1];
  g_assert_cmpint (cp_report_health_request_get_state (health), ==, CP_HEALTH_STATE_DEGRADED);
  g_assert_cmpstr (cp_report_health_request_get_reason (health), ==, "no logger");
  assert_log (f, 4, P_HEALTH, TRUE);

  /* Shutdown: both registrations go, before the server closes. */
  cp_server_shutdown_async (f->plugin, NULL, on_shutdown_done, f);
  wait_until (closed, f);
  g_assert_cmpuint (f->unregistered->len, ==, 2);
  g_assert_cmpstr (f->unregistered->pdata[0], ==, "reg-0000000000000001");
  g_assert_cmpstr (f->unregistered->pdata[1], ==, "reg-0000000000000002");
  assert_log (f, 5, P_UNREGISTER, TRUE);
  assert_log (f, 6, P_UNREGISTER, TRUE);
  g_assert_false (cp_server_get_host_registered (f->plugin));
}

static void
on_identity_set (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(CpSetRuntimeIdentityResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  gboolean *done = user_data;

  response = cp_plugin_identity_call_set_runtime_identity_finish (CP_PLUGIN_IDENTITY (source),
                                                                   result, &error);
  g_assert_no_error (error);
  *done = TRUE;
}

/* Managed mode: SetRuntimeIdentity with a host_url → register with that
 * identity, no handshake. */
static void
test_managed (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpPluginIdentity) identity = NULL;
  g_autoptr(CpSetRuntimeIdentityRequest) request = cp_set_runtime_identity_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = NULL;
  gboolean done = FALSE;

  g_object_set (f->plugin, "identity-enabled", TRUE, "control-secret", SECRET, NULL);
  plugin_listen (f);
  g_assert_cmpuint (f->log->len, ==, 0);  /* no host yet */

  channel = cp_channel_new (cp_server_get_url (f->plugin), &error);
  g_assert_no_error (error);
  identity = cp_plugin_identity_proxy_new (channel);
  cp_set_runtime_identity_request_set_runtime_id (request, "pt-managed-0001");
  cp_set_runtime_identity_request_set_runtime_token (request, "managed-token");
  cp_set_runtime_identity_request_set_host_url (request, f->host_url);
  soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                "Authorization", "Bearer " SECRET);
  cp_plugin_identity_call_set_runtime_identity (identity, request, options, NULL, on_identity_set, &done);
  wait_until (registered, f);
  g_assert_true (done);

  g_assert_cmpstr (cp_server_get_host_url (f->plugin), ==, f->host_url);
  g_assert_cmpuint (f->log->len, ==, 3);
  expected = g_strdup_printf ("%s|pt-managed-0001|Bearer managed-token", P_REGISTER);
  g_assert_cmpstr (f->log->pdata[0], ==, expected);
  assert_log (f, 1, P_REGISTER, TRUE);
  assert_log (f, 2, P_HEALTH, TRUE);
}

/* A host that is not there: retried, then host-link-failed (unavailable),
 * and the server serves on; its shutdown is not delayed. */
static void
test_host_down (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autofree char *url = NULL;

  /* A port that refuses: bound, never listening. */
  g_assert_true (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  url = g_strdup_printf ("http://127.0.0.1:%u",
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  g_object_set (f->plugin, "host-url", url, NULL);
  plugin_listen (f);
  wait_until (link_failed, f);
  g_assert_error (f->link_error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_false (cp_server_get_host_registered (f->plugin));
  g_assert_null (cp_server_get_runtime_id (f->plugin));
  g_assert_true (cp_server_get_serving (f->plugin));

  cp_server_shutdown_async (f->plugin, NULL, on_shutdown_done, f);
  wait_until (closed, f);
}

/* The host refuses a registration: reported at once, not retried. */
static void
test_host_error (Fixture       *f,
                 gconstpointer  data)
{
  f->register_error = CP_ERROR_PERMISSION_DENIED;
  g_object_set (f->plugin, "host-url", f->host_url, NULL);
  plugin_listen (f);
  wait_until (link_failed, f);
  g_assert_error (f->link_error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_cmpuint (f->registered->len, ==, 1);
  g_assert_cmpuint (f->health->len, ==, 0);
  g_assert_false (cp_server_get_host_registered (f->plugin));
}

/* A host that never answers UnregisterService delays a shutdown by no
 * more than host-timeout-ms. */
static void
test_shutdown_host_hangs (Fixture       *f,
                          gconstpointer  data)
{
  f->hold_unregister = TRUE;
  g_object_set (f->plugin, "host-url", f->host_url, "host-timeout-ms", 200, NULL);
  plugin_listen (f);
  wait_until (registered, f);
  cp_server_shutdown_async (f->plugin, NULL, on_shutdown_done, f);
  wait_until (closed, f);
  g_assert_cmpuint (f->unregistered->len, ==, 2);
}

/* No host identity: failed_precondition, for every host request. */
static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  while (*slot == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  return *slot;
}

static void
test_no_identity (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpServiceWatch) watch = NULL;
  g_autoptr(GError) error = NULL;

  plugin_listen (f);
  cp_server_request_capability_async (f->plugin, "secrets", "1.0.0", NULL, NULL, store_result, &result);
  channel = cp_server_request_capability_finish (f->plugin, wait_result (&result), &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_null (channel);
  g_clear_error (&error);
  g_clear_object (&result);
  cp_server_discover_service_async (f->plugin, "slow", NULL, NULL, store_result, &result);
  channel = cp_server_discover_service_finish (f->plugin, wait_result (&result), &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_clear_error (&error);
  watch = cp_server_watch_service (f->plugin, "slow", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_null (watch);
  g_assert_cmpuint (f->log->len, ==, 0);
}

static char *
ping (CpChannel *channel,
      GError   **error)
{
  g_autoptr(PlugintestOtherService) proxy = plugintest_other_service_proxy_new (channel);
  g_autoptr(PlugintestSlowRequest) request = plugintest_slow_request_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(PlugintestSlowResponse) response = NULL;

  plugintest_other_service_call_ping (proxy, request, NULL, NULL, store_result, &result);
  response = plugintest_other_service_call_ping_finish (proxy, wait_result (&result), error);
  return response ? g_strdup (plugintest_slow_response_get_text (response)) : NULL;
}

static const char *
last_log (Fixture *f)
{
  g_assert_cmpuint (f->log->len, >, 0);
  return f->log->pdata[f->log->len - 1];
}

static CpChannel *
request_capability (Fixture     *f,
                    const char  *type,
                    GError     **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_server_request_capability_async (f->plugin, type, "1.0.0", "tests", NULL, store_result, &result);
  return cp_server_request_capability_finish (f->plugin, wait_result (&result), error);
}

static gboolean
on_grant_2 (Fixture *f)
{
  return f->n_grants >= 2;
}

/* request_capability: a channel at the grant's endpoint with its token;
 * renewed on the timer, the channel follows the new grant. */
static void
test_capability (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpChannel) denied = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *base_url = NULL;
  g_autofree char *expected = NULL;
  gint64 end;

  f->max_grants = 2;
  g_object_set (f->plugin, "host-url", f->host_url, "grant-renew-interval-ms", 50, NULL);
  plugin_listen (f);
  wait_until (registered, f);

  denied = request_capability (f, "other", &error);
  g_assert_null (denied);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);

  channel = request_capability (f, "secrets", &error);
  g_assert_no_error (error);
  expected = g_strdup_printf ("/connectplugin.v1.CapabilityBroker/RequestCapability|%s|Bearer %s",
                              cp_server_get_runtime_id (f->plugin), cp_server_get_runtime_token (f->plugin));
  g_assert_cmpstr (last_log (f), ==, expected);
  g_object_get (channel, "base-url", &base_url, NULL);
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("%s/capabilities/secrets/GRANT1", f->host_url);
  g_assert_cmpstr (base_url, ==, expected);

  /* Before any renewal (50 ms: checked, not assumed). */
  text = ping (channel, &error);
  g_assert_no_error (error);
  if (f->n_grants == 1)
    {
      g_assert_cmpstr (text, ==, "/capabilities/secrets/GRANT1/plugintest.v1.OtherService/Ping");
      g_assert_cmpstr (last_log (f), ==,
                       "/capabilities/secrets/GRANT1/plugintest.v1.OtherService/Ping|-|Bearer token-1");
    }

  /* Renewed: the same channel now uses grant 2 and its token (later
   * renewals fail; the channel keeps the grant it has). */
  wait_until (on_grant_2, f);
  end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autofree char *base = cp_channel_dup_http_base (channel);

      if (g_str_has_suffix (base, "/GRANT2"))
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_clear_pointer (&text, g_free);
  text = ping (channel, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "/capabilities/secrets/GRANT2/plugintest.v1.OtherService/Ping");
  g_assert_cmpstr (last_log (f), ==,
                   "/capabilities/secrets/GRANT2/plugintest.v1.OtherService/Ping|-|Bearer token-2");
}

/* discover_service: a channel routed through the host, method-only paths
 * and the runtime headers. */
static void
test_discover (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *base_url = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *text = NULL;
  gboolean method_only = FALSE;

  g_object_set (f->plugin, "host-url", f->host_url, NULL);
  plugin_listen (f);
  wait_until (registered, f);

  cp_server_discover_service_async (f->plugin, "missing", NULL, NULL, store_result, &result);
  channel = cp_server_discover_service_finish (f->plugin, wait_result (&result), &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_clear_object (&result);

  cp_server_discover_service_async (f->plugin, "slow", "1.0.0", NULL, store_result, &result);
  channel = cp_server_discover_service_finish (f->plugin, wait_result (&result), &error);
  g_assert_no_error (error);
  g_object_get (channel, "base-url", &base_url, "method-only-paths", &method_only, NULL);
  expected = g_strdup_printf ("%s/services/slow/" PROVIDER, f->host_url);
  g_assert_cmpstr (base_url, ==, expected);
  g_assert_true (method_only);

  /* A generated proxy on it calls HOST/services/slow/PROVIDER/Ping. */
  text = ping (channel, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "/services/slow/" PROVIDER "/Ping");
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("/services/slow/" PROVIDER "/Ping|%s|Bearer %s",
                              cp_server_get_runtime_id (f->plugin), cp_server_get_runtime_token (f->plugin));
  g_assert_cmpstr (last_log (f), ==, expected);
}

typedef struct {
  guint n;
  CpServiceState state;
  char *provider;
} Changes;

static void
on_changed (CpServiceWatch    *watch,
            CpServiceState     state,
            CpServiceEndpoint *endpoint,
            Changes           *changes)
{
  changes->n++;
  changes->state = state;
  g_free (changes->provider);
  changes->provider = g_strdup (endpoint ? cp_service_endpoint_get_provider_id (endpoint) : NULL);
}

/* watch_service: changed per event, properties follow, cancel stops. */
static void
test_watch (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(CpServiceWatch) watch = NULL;
  g_autoptr(GError) error = NULL;
  Changes changes = { 0, 0, NULL };
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_object_set (f->plugin, "host-url", f->host_url, NULL);
  plugin_listen (f);
  wait_until (registered, f);

  watch = cp_server_watch_service (f->plugin, "slow", &error);
  g_assert_no_error (error);
  g_signal_connect (watch, "changed", G_CALLBACK (on_changed), &changes);
  g_assert_cmpstr (cp_service_watch_get_service_type (watch), ==, "slow");
  g_assert_true (cp_service_watch_get_active (watch));
  while (changes.n < 1)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_assert_cmpint (changes.state, ==, CP_SERVICE_STATE_AVAILABLE);
  g_assert_cmpstr (changes.provider, ==, PROVIDER);
  g_assert_cmpint (cp_service_watch_get_state (watch), ==, CP_SERVICE_STATE_AVAILABLE);
  g_assert_cmpstr (cp_service_endpoint_get_endpoint_url (cp_service_watch_get_endpoint (watch)),
                   ==, "/services/slow/" PROVIDER);
  g_assert_true (g_str_has_prefix (last_log (f), "/connectplugin.v1.ServiceRegistry/WatchService|pt-plugin-"));

  send_watch_event (f, CP_SERVICE_STATE_UNAVAILABLE);
  while (changes.n < 2)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_assert_cmpint (cp_service_watch_get_state (watch), ==, CP_SERVICE_STATE_UNAVAILABLE);

  cp_service_watch_cancel (watch);
  g_assert_false (cp_service_watch_get_active (watch));
  /* The host's stream sees the client go away; nothing more arrives. */
  while (!g_cancellable_is_cancelled (cp_invocation_get_cancellable (f->watch)))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_assert_cmpuint (changes.n, ==, 2);
  g_free (changes.provider);
}

static void
on_watch_closed (CpServiceWatch *watch,
                 const GError   *error,
                 guint          *n_closed)
{
  g_assert_no_error (error);
  (*n_closed)++;
}

static gboolean
watch_started (Fixture *f)
{
  return f->watch != NULL;
}

/* The host ends the stream: closed (no error), active FALSE, once. */
static void
test_watch_host_ends (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(CpServiceWatch) watch = NULL;
  g_autoptr(GError) error = NULL;
  guint n_closed = 0;
  gint64 end = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_object_set (f->plugin, "host-url", f->host_url, NULL);
  plugin_listen (f);
  wait_until (registered, f);
  watch = cp_server_watch_service (f->plugin, "slow", &error);
  g_assert_no_error (error);
  g_signal_connect (watch, "closed", G_CALLBACK (on_watch_closed), &n_closed);
  wait_until (watch_started, f);
  cp_invocation_return_ok (f->watch);
  g_clear_object (&f->watch);
  while (n_closed == 0)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_assert_false (cp_service_watch_get_active (watch));
  g_assert_cmpint (cp_service_watch_get_state (watch), ==, CP_SERVICE_STATE_AVAILABLE);
  cp_service_watch_cancel (watch);  /* harmless after the end */
  g_assert_cmpuint (n_closed, ==, 1);
}

/* The _sync forms block the calling thread (its own main context runs);
 * the host answers from its thread. */
static void
test_sync_requests (ThreadedFixture *t,
                    gconstpointer    data)
{
  Fixture *f = &t->fixture;
  g_autoptr(CpChannel) grant = NULL;
  g_autoptr(CpChannel) routed = NULL;
  g_autoptr(CpChannel) missing = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *grant_url = NULL;
  g_autofree char *routed_url = NULL;
  g_autofree char *expected = NULL;
  gboolean method_only = FALSE;

  /* No identity yet: refused at once, nothing sent. */
  grant = cp_server_request_capability_sync (f->plugin, "secrets", "1.0.0", NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_null (grant);
  g_clear_error (&error);

  g_object_set (f->plugin, "host-url", f->host_url, NULL);
  plugin_listen (f);
  wait_until (registered, f);

  grant = cp_server_request_capability_sync (f->plugin, "secrets", "1.0.0", "tests", NULL, &error);
  g_assert_no_error (error);
  g_object_get (grant, "base-url", &grant_url, NULL);
  expected = g_strdup_printf ("%s/capabilities/secrets/GRANT1", f->host_url);
  g_assert_cmpstr (grant_url, ==, expected);

  routed = cp_server_discover_service_sync (f->plugin, "slow", "1.0.0", NULL, &error);
  g_assert_no_error (error);
  g_object_get (routed, "base-url", &routed_url, "method-only-paths", &method_only, NULL);
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("%s/services/slow/" PROVIDER, f->host_url);
  g_assert_cmpstr (routed_url, ==, expected);
  g_assert_true (method_only);

  missing = cp_server_discover_service_sync (f->plugin, "missing", NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_null (missing);
}

static void
on_registered_stop (CpServer   *server,
                    GParamSpec *pspec,
                    Fixture    *f)
{
  if (cp_server_get_host_registered (server))
    cp_server_shutdown_async (server, NULL, on_shutdown_done, f);
}

static gboolean
on_run_guard (gpointer user_data)
{
  Fixture *f = user_data;

  cp_server_close (f->plugin);  /* a hang guard: the assertions fail */
  return G_SOURCE_REMOVE;
}

/* cp_server_run() takes the host URL from $HOST_URL (connect-plugin-go's
 * convention): it registers, and unregisters when it stops. */
static void
test_run_host_url (Fixture       *f,
                   gconstpointer  data)
{
  char *argv[] = { (char *) "pt-plugin", NULL };
  int saved_stdout, devnull, status;
  guint guard;

  g_setenv ("HOST_URL", f->host_url, TRUE);
  g_setenv ("CONNECTPLUGIN_LISTEN", "127.0.0.1:0", TRUE);
  g_signal_connect (f->plugin, "notify::host-registered", G_CALLBACK (on_registered_stop), f);
  /* The URL line cp_server_run() prints must not reach the TAP stream. */
  fflush (stdout);
  saved_stdout = dup (STDOUT_FILENO);
  devnull = open ("/dev/null", O_WRONLY);
  dup2 (devnull, STDOUT_FILENO);
  guard = g_timeout_add_seconds (10, on_run_guard, f);
  status = cp_server_run (f->plugin, 1, argv);
  g_source_remove (guard);
  fflush (stdout);
  dup2 (saved_stdout, STDOUT_FILENO);
  close (saved_stdout);
  close (devnull);
  g_unsetenv ("HOST_URL");
  g_unsetenv ("CONNECTPLUGIN_LISTEN");

  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (cp_server_get_host_url (f->plugin), ==, f->host_url);
  g_assert_cmpuint (f->registered->len, ==, 2);
  g_assert_cmpuint (f->unregistered->len, ==, 2);
  assert_log (f, 0, P_HANDSHAKE, FALSE);
  assert_log (f, 3, P_HEALTH, TRUE);
  assert_log (f, 4, P_UNREGISTER, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/plugin/host-link/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("register-lifecycle", test_register_lifecycle);
  ADD ("managed", test_managed);
  ADD ("host-down", test_host_down);
  ADD ("host-error", test_host_error);
  ADD ("shutdown-host-hangs", test_shutdown_host_hangs);
  ADD ("no-identity", test_no_identity);
  ADD ("capability", test_capability);
  ADD ("discover", test_discover);
  ADD ("watch", test_watch);
  ADD ("run-host-url", test_run_host_url);
  ADD ("watch-host-ends", test_watch_host_ends);
  g_test_add ("/plugin/host-link/sync-requests", ThreadedFixture, NULL,
              threaded_setup, test_sync_requests, threaded_teardown);
#undef ADD

  return g_test_run ();
}
