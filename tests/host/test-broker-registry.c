/* test-broker-registry.c: the host's ServiceRegistry and PluginLifecycle
 * (connectplugin/host/cp-registry.c) with real plugin CpServers and raw
 * authenticated channels: registration, discovery, validation,
 * authentication, allow-lists, the registration cap, strategies, health,
 * watches and a watcher that never reads
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <connectplugin.h>
#include <string.h>
#include <sys/socket.h>

#include "cp-broker-private.h"
#include "cp-registry-private.h"
#include "cp-semver-private.h"
#include "cp-server-private.h"

typedef struct {
  CpServer *host;
  CpBroker *broker;
  char *host_url;
  GPtrArray *plugins;        /* CpServer* linked to the host */
} Fixture;

static void
wait_until (gboolean (*cond) (gpointer data),
            gpointer  data)
{
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (!cond (data))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);  /* hang guard */
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (500);
    }
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->host = cp_server_new ();
  f->broker = cp_broker_new (f->host);
  f->host_url = cp_server_listen (f->host, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  f->plugins = g_ptr_array_new_with_free_func (g_object_unref);
  cp_registry_set_seed (f->broker->registry, 42);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  for (guint i = 0; i < f->plugins->len; i++)
    cp_server_close (f->plugins->pdata[i]);
  g_ptr_array_unref (f->plugins);
  cp_server_close (f->host);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_finalize_object (f->broker);
  g_clear_object (&f->host);
  g_free (f->host_url);
}

/* ------------------------------------------------------------------ */
/* Calls on a raw channel, driven on this context                       */

static void
on_result (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
have_result (gpointer data)
{
  return *(GAsyncResult **) data != NULL;
}

/* A proxy speaking as @runtime_id / @token (either NULL: not sent). */
static CpServiceRegistry *
registry_proxy (Fixture    *f,
                const char *runtime_id,
                const char *token)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->host_url, &error);
  g_autofree char *bearer = token != NULL ? g_strdup_printf ("Bearer %s", token) : NULL;

  g_assert_no_error (error);
  if (runtime_id != NULL)
    cp_channel_set_header (channel, "X-Plugin-Runtime-ID", runtime_id);
  if (bearer != NULL)
    cp_channel_set_header (channel, "Authorization", bearer);
  return cp_service_registry_proxy_new (channel);
}

typedef struct {
  char *runtime_id;
  char *token;
  CpServiceRegistry *proxy;
} Identity;

static void
identity_free (Identity *id)
{
  g_free (id->runtime_id);
  g_free (id->token);
  g_clear_object (&id->proxy);
  g_free (id);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Identity, identity_free)

static Identity *
identity_new (Fixture    *f,
              const char *self_id)
{
  Identity *id = g_new0 (Identity, 1);

  cp_server_issue_runtime_identity (f->host, self_id, &id->runtime_id, &id->token);
  id->proxy = registry_proxy (f, id->runtime_id, id->token);
  return id;
}

static char *
do_register (CpServiceRegistry *proxy,
             const char        *type,
             const char        *version,
             const char        *path,
             GHashTable        *metadata,
             GError           **error)
{
  g_autoptr(CpRegisterServiceRequest) request = cp_register_service_request_new ();
  g_autoptr(CpRegisterServiceResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  cp_register_service_request_set_service_type (request, type);
  cp_register_service_request_set_version (request, version);
  cp_register_service_request_set_endpoint_path (request, path);
  if (metadata != NULL)
    cp_register_service_request_set_metadata (request, metadata);
  cp_service_registry_call_register_service (proxy, request, NULL, NULL, on_result, &result);
  wait_until (have_result, &result);
  response = cp_service_registry_call_register_service_finish (proxy, result, error);
  return response != NULL ? g_strdup (cp_register_service_response_get_registration_id (response)) : NULL;
}

static char *
register_ok (Identity   *id,
             const char *type,
             const char *version,
             GHashTable *metadata)
{
  g_autoptr(GError) error = NULL;
  char *reg = do_register (id->proxy, type, version, "/x.v1.Svc/", metadata, &error);

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (reg, "reg-"));
  return reg;
}

static gboolean
do_unregister (CpServiceRegistry *proxy,
               const char        *registration_id,
               GError           **error)
{
  g_autoptr(CpUnregisterServiceRequest) request = cp_unregister_service_request_new ();
  g_autoptr(CpUnregisterServiceResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  cp_unregister_service_request_set_registration_id (request, registration_id);
  cp_service_registry_call_unregister_service (proxy, request, NULL, NULL, on_result, &result);
  wait_until (have_result, &result);
  response = cp_service_registry_call_unregister_service_finish (proxy, result, error);
  return response != NULL;
}

static CpDiscoverServiceResponse *
do_discover (CpServiceRegistry *proxy,
             const char        *type,
             const char        *min_version,
             GError           **error)
{
  g_autoptr(CpDiscoverServiceRequest) request = cp_discover_service_request_new ();
  g_autoptr(GAsyncResult) result = NULL;

  cp_discover_service_request_set_service_type (request, type);
  if (min_version != NULL)
    cp_discover_service_request_set_min_version (request, min_version);
  cp_service_registry_call_discover_service (proxy, request, NULL, NULL, on_result, &result);
  wait_until (have_result, &result);
  return cp_service_registry_call_discover_service_finish (proxy, result, error);
}

/* The provider id DiscoverService picks. */
static char *
discover_id (Identity   *id,
             const char *type,
             const char *min_version)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpDiscoverServiceResponse) response = do_discover (id->proxy, type, min_version, &error);
  g_autoptr(CpServiceEndpoint) endpoint = NULL;

  g_assert_no_error (error);
  endpoint = cp_discover_service_response_get_endpoint (response);
  return g_strdup (cp_service_endpoint_get_provider_id (endpoint));
}

static void
assert_error (const GError *error,
              CpError       code,
              const char   *message)
{
  g_assert_error (error, CP_ERROR, (gint) code);
  if (message != NULL)
    g_assert_cmpstr (error->message, ==, message);
}

static GHashTable *
metadata_new (const char *key,
              ...)
{
  GHashTable *metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  va_list args;

  va_start (args, key);
  for (; key != NULL; key = va_arg (args, const char *))
    g_hash_table_insert (metadata, g_strdup (key), g_strdup (va_arg (args, const char *)));
  va_end (args);
  return metadata;
}

/* ------------------------------------------------------------------ */
/* Real plugins                                                         */

static gboolean
plugin_registered (gpointer data)
{
  return cp_server_get_host_registered (data);
}

/* A plugin server @self_id providing @type @version, linked to the host. */
static CpServer *
plugin_start (Fixture    *f,
              const char *self_id,
              const char *type,
              const char *version)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpPlugin) plugin = cp_plugin_new (self_id, "1.0.0");
  CpServer *server = cp_server_new ();
  g_autoptr(CpPluginLifecycle) service = cp_plugin_lifecycle_skeleton_new ();  /* any service */
  g_autofree char *url = NULL;

  cp_plugin_add_service (plugin, CP_SKELETON (service));
  if (type != NULL)
    cp_plugin_add_provides (plugin, type, version, "/x.v1.Svc/");
  cp_server_add_plugin (server, plugin);
  g_object_set (server, "self-id", self_id, "host-url", f->host_url, NULL);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  wait_until (plugin_registered, server);
  g_ptr_array_add (f->plugins, server);
  return server;
}

static CpPluginInstance *
instance_of (Fixture  *f,
             CpServer *plugin)
{
  CpPluginInstance *instance = cp_broker_lookup_plugin (f->broker, cp_server_get_runtime_id (plugin));

  g_assert_nonnull (instance);
  return instance;
}

static CpPluginInstance *
instance_of_id (Fixture    *f,
                const char *runtime_id)
{
  CpPluginInstance *instance = cp_broker_lookup_plugin (f->broker, runtime_id);

  g_assert_nonnull (instance);
  return instance;
}

typedef struct {
  CpPluginInstance *instance;
  CpHealthState state;
} HealthWait;

static gboolean
health_is (gpointer data)
{
  HealthWait *w = data;

  return cp_plugin_instance_get_health_state (w->instance) == w->state;
}

static void
plugin_set_health (Fixture       *f,
                   CpServer      *plugin,
                   CpHealthState  state)
{
  HealthWait w = { instance_of (f, plugin), state };

  cp_server_set_health (plugin, state, "test", NULL);
  wait_until (health_is, &w);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

/* Two real plugins register "cache"; a consumer discovers by min_version
 * (semver), health, and the plugin leaving. */
static void
test_register_discover (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(Identity) consumer = identity_new (f, "consumer");
  g_autoptr(CpDiscoverServiceResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  CpServer *a = plugin_start (f, "cache-a", "cache", "1.9.0");
  CpServer *b = plugin_start (f, "cache-b", "cache", "1.10.0");
  const char *a_id = cp_server_get_runtime_id (a), *b_id = cp_server_get_runtime_id (b);
  g_autoptr(CpServiceEndpoint) endpoint = NULL;
  g_autoptr(GHashTable) metadata = NULL;
  g_autofree char *url = NULL, *picked = NULL;

  /* The registration's base_url is where the router reaches the plugin. */
  g_assert_cmpstr (cp_plugin_instance_get_url (instance_of (f, a)), ==, cp_server_get_url (a));
  g_assert_cmpstr (cp_registry_lookup_endpoint_path (f->broker->registry, "cache", a_id), ==, "/x.v1.Svc/");
  g_assert_null (cp_registry_lookup_endpoint_path (f->broker->registry, "logger", a_id));

  response = do_discover (consumer->proxy, "cache", NULL, &error);
  g_assert_no_error (error);
  endpoint = cp_discover_service_response_get_endpoint (response);
  url = g_strdup_printf ("/services/cache/%s", a_id);
  g_assert_cmpstr (cp_service_endpoint_get_provider_id (endpoint), ==, a_id);
  g_assert_cmpstr (cp_service_endpoint_get_version (endpoint), ==, "1.9.0");
  g_assert_cmpstr (cp_service_endpoint_get_endpoint_url (endpoint), ==, url);
  metadata = cp_service_endpoint_get_metadata (endpoint);
  g_assert_cmpstr (g_hash_table_lookup (metadata, "base_url"),
                   ==, cp_server_get_url (a));
  g_assert_false (cp_discover_service_response_get_single_provider (response));

  /* "1.10.0" >= "1.10.0" > "1.9.0" as semver (not as strings). */
  picked = discover_id (consumer, "cache", "1.10.0");
  g_assert_cmpstr (picked, ==, b_id);
  g_clear_object (&response);
  response = do_discover (consumer->proxy, "cache", "2.0.0", &error);
  assert_error (error, CP_ERROR_NOT_FOUND, "no compatible providers for service \"cache\" (min version: 2.0.0)");
  g_clear_error (&error);
  response = do_discover (consumer->proxy, "cache", "2.0", &error);
  assert_error (error, CP_ERROR_INVALID_ARGUMENT, "version \"2.0\" must be semantic version (e.g., 1.0.0, 2.1.3-beta)");
  g_clear_error (&error);
  response = do_discover (consumer->proxy, "nothing", NULL, &error);
  assert_error (error, CP_ERROR_NOT_FOUND, "no providers for service \"nothing\"");
  g_clear_error (&error);

  /* Unhealthy (ReportHealth from the plugin) is skipped, degraded served. */
  plugin_set_health (f, a, CP_HEALTH_STATE_UNHEALTHY);
  g_clear_pointer (&picked, g_free);
  picked = discover_id (consumer, "cache", NULL);
  g_assert_cmpstr (picked, ==, b_id);
  plugin_set_health (f, b, CP_HEALTH_STATE_UNHEALTHY);
  response = do_discover (consumer->proxy, "cache", NULL, &error);
  assert_error (error, CP_ERROR_NOT_FOUND, "no available providers for service \"cache\" (all unhealthy)");
  g_clear_error (&error);
  plugin_set_health (f, a, CP_HEALTH_STATE_DEGRADED);
  g_clear_pointer (&picked, g_free);
  picked = discover_id (consumer, "cache", NULL);
  g_assert_cmpstr (picked, ==, a_id);

  /* The plugin side's discovery gets a channel through the router. */
  cp_server_discover_service_async (b, "cache", "1.0.0", NULL, on_result, &result);
  wait_until (have_result, &result);
  channel = cp_server_discover_service_finish (b, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (channel);

  /* A plugin that goes loses its registrations. */
  cp_broker_remove_instance (f->broker, instance_of (f, a));
  g_assert_null (cp_registry_lookup_endpoint_path (f->broker->registry, "cache", a_id));
  response = do_discover (consumer->proxy, "cache", NULL, &error);
  assert_error (error, CP_ERROR_NOT_FOUND, "no available providers for service \"cache\" (all unhealthy)");
}

typedef struct {
  const char *type, *version, *path;
  const char *key, *value;
  const char *message;
} Invalid;

/* Every validation refusal, with the original's message. */
static void
test_validation (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(Identity) id = identity_new (f, "validator");
  g_autofree char *long_type = g_strnfill (129, 'a');
  g_autofree char *long_pre = g_strnfill (59, 'b');
  g_autofree char *long_version = g_strdup_printf ("1.0.0-%s", long_pre);  /* 65 bytes */
  g_autofree char *long_tail = g_strnfill (256, 'p');
  g_autofree char *long_path = g_strdup_printf ("/%s", long_tail);          /* 257 bytes */
  g_autofree char *max_type = g_strnfill (128, 't');
  g_autofree char *long_key = g_strnfill (257, 'k');
  g_autofree char *long_value = g_strnfill (4097, 'v');
  g_autofree char *m_type = NULL, *m_version = NULL, *m_path = NULL, *m_key = NULL, *m_value = NULL;
  g_autoptr(GHashTable) many = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reg = NULL;

  m_type = g_strdup_printf ("service type too long: 129 bytes (max: 128)");
  m_version = g_strdup_printf ("version too long: 65 bytes (max: 64)");
  m_path = g_strdup_printf ("endpoint path too long: 257 bytes (max: 256)");
  m_key = g_strdup_printf ("metadata key too long: 257 bytes (max: 256)");
  m_value = g_strdup_printf ("metadata value for key \"k\" too long: 4097 bytes (max: 4096)");

  {
    const Invalid cases[] = {
      { "", "1.0.0", "/a", NULL, NULL, "service type cannot be empty" },
      { long_type, "1.0.0", "/a", NULL, NULL, m_type },
      { "9cache", "1.0.0", "/a", NULL, NULL,
        "service type \"9cache\" contains invalid characters (must match: ^[a-zA-Z][a-zA-Z0-9_.\\-]*$)" },
      { "ca/che", "1.0.0", "/a", NULL, NULL,
        "service type \"ca/che\" contains invalid characters (must match: ^[a-zA-Z][a-zA-Z0-9_.\\-]*$)" },
      { "a..b", "1.0.0", "/a", NULL, NULL, "service type contains path traversal characters: a..b" },
      { "cache", "", "/a", NULL, NULL, "version cannot be empty" },
      { "cache", long_version, "/a", NULL, NULL, m_version },
      { "cache", "1.0", "/a", NULL, NULL, "version \"1.0\" must be semantic version (e.g., 1.0.0, 2.1.3-beta)" },
      { "cache", "v1.0.0", "/a", NULL, NULL, "version \"v1.0.0\" must be semantic version (e.g., 1.0.0, 2.1.3-beta)" },
      { "cache", "1.0.0-", "/a", NULL, NULL, "version \"1.0.0-\" must be semantic version (e.g., 1.0.0, 2.1.3-beta)" },
      { "cache", "1.0.0+b", "/a", NULL, NULL, "version \"1.0.0+b\" must be semantic version (e.g., 1.0.0, 2.1.3-beta)" },
      { "cache", "1.0.0", "", NULL, NULL, "endpoint path cannot be empty" },
      { "cache", "1.0.0", "a/b", NULL, NULL, "endpoint path must start with /: a/b" },
      { "cache", "1.0.0", long_path, NULL, NULL, m_path },
      { "cache", "1.0.0", "/a", long_key, "v", m_key },
      { "cache", "1.0.0", "/a", "1key", "v",
        "metadata key \"1key\" contains invalid characters (must match: ^[a-zA-Z][a-zA-Z0-9_.\\-]*$)" },
      { "cache", "1.0.0", "/a", "k", long_value, m_value },
      { "cache", "1.0.0", "/a", "base_url", "file:///etc/passwd",
        "metadata base_url must be an absolute http or https URL" },
      { "cache", "1.0.0", "/a", "base_url", "not a url",
        "metadata base_url must be an absolute http or https URL" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autoptr(GHashTable) metadata = cases[i].key != NULL ? metadata_new (cases[i].key, cases[i].value, NULL) : NULL;
        g_autofree char *got = do_register (id->proxy, cases[i].type, cases[i].version, cases[i].path,
                                            metadata, &error);

        g_test_message ("case %u", i);
        g_assert_null (got);
        assert_error (error, CP_ERROR_INVALID_ARGUMENT, cases[i].message);
        g_clear_error (&error);
      }
  }

  many = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < 101; i++)
    g_hash_table_insert (many, g_strdup_printf ("k%u", i), g_strdup ("v"));
  reg = do_register (id->proxy, "cache", "1.0.0", "/a", many, &error);
  assert_error (error, CP_ERROR_INVALID_ARGUMENT, "too many metadata entries: 101 (max: 100)");
  g_clear_error (&error);

  /* At the limits: accepted. */
  g_hash_table_remove (many, "k100");
  g_hash_table_replace (many, g_strnfill (256, 'k'), g_strnfill (4096, 'v'));
  g_hash_table_remove (many, "k99");
  long_path[256] = '\0';
  reg = do_register (id->proxy, max_type, "1.2.3-rc.1-x.y", long_path, many, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (reg, "reg-"));
  g_assert_cmpuint (strlen (reg), ==, 4 + 16);
}

static CpError
report_health_code (Fixture       *f,
                    const char    *runtime_id,
                    const char    *token,
                    CpHealthState  state)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->host_url, &error);
  g_autoptr(CpPluginLifecycle) lifecycle = NULL;
  g_autoptr(CpReportHealthRequest) request = cp_report_health_request_new ();
  g_autoptr(CpReportHealthResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *bearer = token != NULL ? g_strdup_printf ("Bearer %s", token) : NULL;

  if (runtime_id != NULL)
    cp_channel_set_header (channel, "X-Plugin-Runtime-ID", runtime_id);
  if (bearer != NULL)
    cp_channel_set_header (channel, "Authorization", bearer);
  lifecycle = cp_plugin_lifecycle_proxy_new (channel);
  cp_report_health_request_set_state (request, state);
  cp_plugin_lifecycle_call_report_health (lifecycle, request, NULL, NULL, on_result, &result);
  wait_until (have_result, &result);
  response = cp_plugin_lifecycle_call_report_health_finish (lifecycle, result, &error);
  return response != NULL ? 0 : error->code;
}

/* Each of the five calls refuses a caller without a valid identity. */
static void
assert_refused (Fixture    *f,
                const char *runtime_id,
                const char *token,
                const char *message)
{
  g_autoptr(CpServiceRegistry) proxy = registry_proxy (f, runtime_id, token);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpDiscoverServiceResponse) response = NULL;
  g_autofree char *reg = do_register (proxy, "cache", "1.0.0", "/a", NULL, &error);

  assert_error (error, CP_ERROR_UNAUTHENTICATED, message);
  g_clear_error (&error);
  g_assert_false (do_unregister (proxy, "reg-0000000000000000", &error));
  assert_error (error, CP_ERROR_UNAUTHENTICATED, message);
  g_clear_error (&error);
  response = do_discover (proxy, "cache", NULL, &error);
  assert_error (error, CP_ERROR_UNAUTHENTICATED, message);
  g_assert_cmpint (report_health_code (f, runtime_id, token, CP_HEALTH_STATE_UNHEALTHY), ==,
                   CP_ERROR_UNAUTHENTICATED);
}

/* Forged, near-miss, revoked tokens; A's token with B's id; no headers. */
static void
test_authentication (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(Identity) a = identity_new (f, "plugin-a");
  g_autoptr(Identity) b = identity_new (f, "plugin-b");
  g_autoptr(Identity) gone = identity_new (f, "plugin-c");
  g_autofree char *near = g_strdup (a->token);
  g_autofree char *reg = NULL;
  const char *bad = "invalid or expired runtime token";

  near[strlen (near) - 1] = near[strlen (near) - 1] == 'A' ? 'B' : 'A';
  assert_refused (f, NULL, NULL, "X-Plugin-Runtime-ID header required");
  assert_refused (f, a->runtime_id, NULL, "Authorization: Bearer <token> required");
  assert_refused (f, a->runtime_id, "forged-token", bad);
  assert_refused (f, a->runtime_id, near, bad);
  assert_refused (f, a->runtime_id, "", "Authorization: Bearer <token> required");  /* "Bearer " trimmed */
  assert_refused (f, b->runtime_id, a->token, bad);
  assert_refused (f, "nobody-0000", a->token, bad);
  /* A revoked identity (expired, or its plugin removed). */
  cp_server_revoke_runtime_identity (f->host, gone->runtime_id);
  assert_refused (f, gone->runtime_id, gone->token, bad);
  /* Nothing was registered or reported by any of them. */
  g_assert_null (cp_broker_lookup_plugin (f->broker, b->runtime_id));
  reg = register_ok (a, "cache", "1.0.0", NULL);
  g_assert_cmpint (cp_plugin_instance_get_health_state (instance_of_id (f, a->runtime_id)), ==,
                   CP_HEALTH_STATE_UNSPECIFIED);

  /* ReportHealth: an unknown state number is refused, a known one set. */
  g_assert_cmpint (report_health_code (f, a->runtime_id, a->token, 7), ==, CP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpint (cp_plugin_instance_get_health_state (instance_of_id (f, a->runtime_id)), ==,
                   CP_HEALTH_STATE_UNSPECIFIED);
  g_assert_cmpint (report_health_code (f, a->runtime_id, a->token, CP_HEALTH_STATE_DEGRADED), ==, 0);
  g_assert_cmpint (cp_plugin_instance_get_health_state (instance_of_id (f, a->runtime_id)), ==,
                   CP_HEALTH_STATE_DEGRADED);
}

/* cp_broker_allow_service per self id; a plugin's declared provides. */
static void
test_allow_list (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(Identity) restricted = identity_new (f, "restricted");
  g_autoptr(Identity) free_id = identity_new (f, "free");
  g_autoptr(Identity) declared = identity_new (f, "declared");
  g_autoptr(GPtrArray) provides = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(CpServiceDeclaration) decl = cp_service_declaration_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *reg = NULL, *message = NULL, *reg2 = NULL, *reg3 = NULL;

  cp_broker_allow_service (f->broker, "restricted", "logger");
  reg = do_register (restricted->proxy, "cache", "1.0.0", "/a", NULL, &error);
  message = g_strdup_printf ("plugin %s not authorized to register service type cache", restricted->runtime_id);
  assert_error (error, CP_ERROR_PERMISSION_DENIED, message);
  g_clear_error (&error);
  reg = register_ok (restricted, "logger", "1.0.0", NULL);
  reg2 = register_ok (free_id, "cache", "1.0.0", NULL);

  /* Declared provides restrict too (the instance knows them once added). */
  reg3 = register_ok (declared, "logger", "1.0.0", NULL);
  cp_service_declaration_set_type_ (decl, "cache");
  cp_service_declaration_set_version (decl, "1.0.0");
  g_ptr_array_add (provides, g_object_ref (decl));
  cp_plugin_instance_set_provides (instance_of_id (f, declared->runtime_id), provides);
  g_clear_pointer (&reg3, g_free);
  reg3 = do_register (declared->proxy, "logger", "1.0.0", "/a", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  reg3 = register_ok (declared, "cache", "1.0.0", NULL);
}

/* Flooding: the cap per plugin, other plugins unaffected; unregistering
 * only one's own registrations. */
static void
test_cap_and_unregister (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(Identity) a = identity_new (f, "flooder");
  g_autoptr(Identity) b = identity_new (f, "other");
  g_autoptr(GPtrArray) regs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *refused = NULL, *message = NULL, *b_reg = NULL, *again = NULL;

  g_object_set (f->broker, "max-registrations-per-plugin", 5, NULL);
  for (guint i = 0; i < 5; i++)
    g_ptr_array_add (regs, register_ok (a, "cache", "1.0.0", NULL));
  refused = do_register (a->proxy, "cache", "1.0.0", "/a", NULL, &error);
  message = g_strdup_printf ("plugin %s has reached its limit of 5 registrations", a->runtime_id);
  assert_error (error, CP_ERROR_RESOURCE_EXHAUSTED, message);
  g_clear_error (&error);
  b_reg = register_ok (b, "cache", "1.0.0", NULL);

  /* B cannot unregister A's, and learns nothing about it. */
  g_assert_false (do_unregister (b->proxy, regs->pdata[0], &error));
  g_clear_pointer (&message, g_free);
  message = g_strdup_printf ("registration not found: %s", (char *) regs->pdata[0]);
  assert_error (error, CP_ERROR_NOT_FOUND, message);
  g_clear_error (&error);
  g_assert_false (do_unregister (a->proxy, "reg-ffffffffffffffff", &error));
  assert_error (error, CP_ERROR_NOT_FOUND, "registration not found: reg-ffffffffffffffff");
  g_clear_error (&error);

  /* A's own: gone, and the slot is free again; twice is not_found. */
  g_assert_true (do_unregister (a->proxy, regs->pdata[0], &error));
  g_assert_no_error (error);
  g_assert_false (do_unregister (a->proxy, regs->pdata[0], &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_clear_error (&error);
  again = register_ok (a, "cache", "1.0.0", NULL);
}

/* Semver precedence (semver.org §11), as the registry compares min_version. */
static void
test_semver (void)
{
  /* Each strictly lower than the next. */
  const char *ordered[] = {
    "0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
    "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0",
    "1.10.0", "2.0.0", "10.0.0", "4294967296.0.0",
  };

  for (guint i = 0; i < G_N_ELEMENTS (ordered); i++)
    {
      g_assert_true (cp_registry_validate_version (ordered[i], NULL));
      g_assert_cmpint (cp_semver_compare (ordered[i], ordered[i]), ==, 0);
      for (guint j = i + 1; j < G_N_ELEMENTS (ordered); j++)
        {
          g_assert_cmpint (cp_semver_compare (ordered[i], ordered[j]), <, 0);
          g_assert_cmpint (cp_semver_compare (ordered[j], ordered[i]), >, 0);
        }
    }
  g_assert_cmpint (cp_semver_compare ("01.2.3", "1.2.3"), ==, 0);
  g_assert_cmpint (cp_semver_compare ("1.0.0-rc.01", "1.0.0-rc.1"), ==, 0);
}

/* Three providers under raw identities, in registration order. */
static void
three_providers (Fixture   *f,
                 Identity **ids,
                 const char *weights[3])
{
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *self_id = g_strdup_printf ("p%u", i);
      g_autoptr(GHashTable) metadata = weights[i] != NULL ? metadata_new ("weight", weights[i], NULL) : NULL;
      g_autofree char *reg = NULL;

      ids[i] = identity_new (f, self_id);
      reg = register_ok (ids[i], "svc", "1.0.0", metadata);
    }
}

static guint
index_of (Identity  **ids,
          const char *runtime_id)
{
  for (guint i = 0; i < 3; i++)
    if (g_str_equal (ids[i]->runtime_id, runtime_id))
      return i;
  g_assert_not_reached ();
}

static void
test_strategies (Fixture       *f,
                 gconstpointer  data)
{
  Identity *ids[3];
  const char *weights[3] = { NULL, "3", "junk" };  /* 1, 3, 1 */
  g_autoptr(Identity) consumer = identity_new (f, "consumer");
  guint counts[3] = { 0 };

  three_providers (f, ids, weights);

  /* first (the default) */
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *id = discover_id (consumer, "svc", NULL);
      g_assert_cmpstr (id, ==, ids[0]->runtime_id);
    }

  /* round-robin: each in turn, in registration order */
  cp_broker_set_selection_strategy (f->broker, "svc", CP_SELECTION_ROUND_ROBIN);
  for (guint i = 0; i < 7; i++)
    {
      g_autofree char *id = discover_id (consumer, "svc", NULL);
      g_assert_cmpuint (index_of (ids, id), ==, i % 3);
    }

  /* weighted 1:3:1 over 2000 draws (fixed seed) */
  cp_broker_set_selection_strategy (f->broker, "svc", CP_SELECTION_WEIGHTED);
  for (guint i = 0; i < 2000; i++)
    {
      g_autofree char *id = discover_id (consumer, "svc", NULL);
      counts[index_of (ids, id)]++;
    }
  g_test_message ("weighted: %u %u %u", counts[0], counts[1], counts[2]);
  g_assert_cmpuint (counts[1], >, 1000);          /* expected 1200 */
  g_assert_cmpuint (counts[1], <, 1400);
  g_assert_cmpuint (counts[0], >, 250);           /* expected 400 */
  g_assert_cmpuint (counts[2], >, 250);

  /* random: every provider drawn; unhealthy and unroutable never. */
  cp_broker_set_selection_strategy (f->broker, "svc", CP_SELECTION_RANDOM);
  cp_plugin_instance_set_health (instance_of_id (f, ids[1]->runtime_id), CP_HEALTH_STATE_UNHEALTHY, "x", NULL);
  cp_plugin_instance_set_routable (instance_of_id (f, ids[2]->runtime_id), FALSE);
  memset (counts, 0, sizeof counts);
  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *id = discover_id (consumer, "svc", NULL);
      counts[index_of (ids, id)]++;
    }
  g_assert_cmpuint (counts[0], ==, 200);
  cp_plugin_instance_set_routable (instance_of_id (f, ids[2]->runtime_id), TRUE);
  memset (counts, 0, sizeof counts);
  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *id = discover_id (consumer, "svc", NULL);
      counts[index_of (ids, id)]++;
    }
  g_assert_cmpuint (counts[1], ==, 0);
  g_assert_cmpuint (counts[0], >, 0);
  g_assert_cmpuint (counts[2], >, 0);
  for (guint i = 0; i < 3; i++)
    identity_free (ids[i]);
}

/* ------------------------------------------------------------------ */
/* Watches                                                              */

static void
on_watch_changed (CpServiceWatch    *watch,
                  CpServiceState     state,
                  CpServiceEndpoint *endpoint,
                  GPtrArray         *events)
{
  g_ptr_array_add (events, g_strdup_printf ("%d|%s", state,
                                            endpoint != NULL ? cp_service_endpoint_get_provider_id (endpoint) : "-"));
}

typedef struct {
  GPtrArray *events;
  guint n;
  char *last;
} EventWait;

static gboolean
event_arrived (gpointer data)
{
  EventWait *w = data;

  return w->events->len >= w->n;
}

/* Waits for event number @n (1-based) and checks it is @state|@provider. */
static void
expect_event (GPtrArray      *events,
              guint           n,
              CpServiceState  state,
              const char     *provider)
{
  EventWait w = { events, n, NULL };
  g_autofree char *expected = g_strdup_printf ("%d|%s", state, provider != NULL ? provider : "-");

  wait_until (event_arrived, &w);
  g_assert_cmpstr (events->pdata[n - 1], ==, expected);
}

static gboolean
n_watchers_is (gpointer data)
{
  Fixture *f = ((gpointer *) data)[0];
  guint n = GPOINTER_TO_UINT (((gpointer *) data)[1]);

  return cp_registry_get_n_watchers (f->broker->registry) == n;
}

static void
wait_n_watchers (Fixture *f,
                 guint    n)
{
  gpointer data[2] = { f, GUINT_TO_POINTER (n) };

  wait_until (n_watchers_is, data);
}

static void
on_watch_closed (CpServiceWatch *watch,
                 const GError   *error,
                 GError        **out)
{
  *out = error != NULL ? g_error_copy (error) : g_error_new_literal (CP_ERROR, CP_ERROR_UNKNOWN, "clean end");
}

static gboolean
watch_closed (gpointer data)
{
  return *(GError **) data != NULL;
}

/* The current state first, then one event per change: registration,
 * health (degraded, unhealthy), the plugin leaving. */
static void
test_watch (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CpServiceWatch) watch = NULL;
  g_autoptr(Identity) a = identity_new (f, "watched-a");
  g_autoptr(Identity) b = identity_new (f, "watched-b");
  g_autoptr(GError) error = NULL;
  g_autofree char *reg_a = NULL, *reg_b = NULL;
  CpServer *consumer = plugin_start (f, "consumer", NULL, NULL);
  CpPluginInstance *ia, *ib;
  GError *closed_error = NULL;

  watch = cp_server_watch_service (consumer, "cache", &error);
  g_assert_no_error (error);
  g_signal_connect (watch, "changed", G_CALLBACK (on_watch_changed), events);
  expect_event (events, 1, CP_SERVICE_STATE_UNAVAILABLE, NULL);

  reg_a = register_ok (a, "cache", "1.0.0", NULL);
  expect_event (events, 2, CP_SERVICE_STATE_AVAILABLE, a->runtime_id);
  ia = instance_of_id (f, a->runtime_id);
  cp_plugin_instance_set_health (ia, CP_HEALTH_STATE_DEGRADED, "slow disk", NULL);
  expect_event (events, 3, CP_SERVICE_STATE_DEGRADED, a->runtime_id);
  reg_b = register_ok (b, "cache", "1.0.0", NULL);
  expect_event (events, 4, CP_SERVICE_STATE_DEGRADED, a->runtime_id);  /* A is still first */
  ib = instance_of_id (f, b->runtime_id);
  cp_plugin_instance_set_health (ia, CP_HEALTH_STATE_UNHEALTHY, "down", NULL);
  expect_event (events, 5, CP_SERVICE_STATE_AVAILABLE, b->runtime_id);
  g_assert_true (do_unregister (b->proxy, reg_b, &error));
  expect_event (events, 6, CP_SERVICE_STATE_UNAVAILABLE, NULL);       /* A unhealthy */
  cp_plugin_instance_set_health (ia, CP_HEALTH_STATE_HEALTHY, NULL, NULL);
  expect_event (events, 7, CP_SERVICE_STATE_AVAILABLE, a->runtime_id);
  /* Being removed (not routable), then gone. */
  cp_plugin_instance_set_routable (ia, FALSE);
  expect_event (events, 8, CP_SERVICE_STATE_UNAVAILABLE, NULL);
  cp_plugin_instance_set_routable (ia, TRUE);
  expect_event (events, 9, CP_SERVICE_STATE_AVAILABLE, a->runtime_id);
  cp_broker_remove_instance (f->broker, ia);
  expect_event (events, 10, CP_SERVICE_STATE_UNAVAILABLE, NULL);
  (void) ib;

  /* Cancel ends the watch on the host too. */
  g_assert_cmpuint (cp_registry_get_n_watchers (f->broker->registry), ==, 1);
  cp_service_watch_cancel (watch);
  wait_n_watchers (f, 0);

  /* A type that could never be registered is refused. */
  g_clear_object (&watch);
  watch = cp_server_watch_service (consumer, "bad/type", &error);
  g_assert_no_error (error);
  g_signal_connect (watch, "closed", G_CALLBACK (on_watch_closed), &closed_error);
  wait_until (watch_closed, &closed_error);
  g_assert_error (closed_error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpuint (cp_registry_get_n_watchers (f->broker->registry), ==, 0);
  g_clear_error (&closed_error);
}

/* A WatchService call on a plain socket that never reads its answer (a
 * small receive buffer so the host's side congests quickly). */
static GSocket *
raw_watch (Fixture    *f,
           Identity   *id,
           const char *type)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = g_uri_parse (f->host_url, G_URI_FLAGS_NONE, &error);
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *body = g_strdup_printf ("{\"serviceType\":\"%s\"}", type);
  g_autofree char *head = NULL;
  GSocket *socket;
  guint32 len = strlen (body);
  guint8 prefix[5] = { 0, len >> 24, len >> 16, len >> 8, len };

  g_assert_no_error (error);
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, 4096, &error));
  address = g_inet_socket_address_new_from_string ("127.0.0.1", g_uri_get_port (uri));
  g_assert_true (g_socket_connect (socket, address, NULL, &error));
  head = g_strdup_printf ("POST /connectplugin.v1.ServiceRegistry/WatchService HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\nContent-Type: application/connect+json\r\n"
                          "Connect-Protocol-Version: 1\r\nX-Plugin-Runtime-ID: %s\r\n"
                          "Authorization: Bearer %s\r\nContent-Length: %u\r\n\r\n",
                          id->runtime_id, id->token, 5 + len);
  g_assert_cmpint (g_socket_send (socket, head, strlen (head), NULL, &error), ==, strlen (head));
  g_assert_cmpint (g_socket_send (socket, (char *) prefix, 5, NULL, &error), ==, 5);
  g_assert_cmpint (g_socket_send (socket, body, len, NULL, &error), ==, len);
  return socket;
}

/* A watcher that never reads: its queue stays within max-watch-queue
 * (collapsed to resyncs), the other watcher still gets every change, and
 * the stuck one is dropped when its connection goes. */
static void
test_watch_slow_reader (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(CpServiceWatch) watch = NULL;
  g_autoptr(Identity) provider = identity_new (f, "big-provider");
  g_autoptr(Identity) slow = identity_new (f, "slow-watcher");
  g_autoptr(GHashTable) metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reg = NULL;
  CpServer *consumer = plugin_start (f, "consumer", NULL, NULL);
  CpPluginInstance *instance;
  guint max_backlog = 0;
  const guint n_changes = 100;

  g_object_set (f->broker, "max-watch-queue", 4, NULL);
  /* Big events (~80 KB each): the socket fills after a few. */
  for (guint i = 0; i < 20; i++)
    g_hash_table_insert (metadata, g_strdup_printf ("k%u", i), g_strnfill (4000, 'x'));
  reg = register_ok (provider, "big", "1.0.0", metadata);
  instance = instance_of_id (f, provider->runtime_id);

  socket = raw_watch (f, slow, "big");
  watch = cp_server_watch_service (consumer, "big", &error);
  g_assert_no_error (error);
  g_signal_connect (watch, "changed", G_CALLBACK (on_watch_changed), events);
  wait_n_watchers (f, 2);
  expect_event (events, 1, CP_SERVICE_STATE_AVAILABLE, provider->runtime_id);

  for (guint i = 0; i < n_changes; i++)
    {
      cp_plugin_instance_set_health (instance, i % 2 == 0 ? CP_HEALTH_STATE_DEGRADED : CP_HEALTH_STATE_HEALTHY,
                                     NULL, NULL);
      for (guint j = 0; j < 20; j++)
        g_main_context_iteration (NULL, FALSE);
      max_backlog = MAX (max_backlog, cp_registry_get_max_watch_backlog (f->broker->registry));
    }
  g_test_message ("max backlog %u, resyncs %u, fast watcher got %u events", max_backlog,
                  cp_registry_get_n_resyncs (f->broker->registry), events->len);
  g_assert_cmpuint (max_backlog, <=, 4);
  g_assert_cmpuint (cp_registry_get_n_resyncs (f->broker->registry), >, 0);

  /* The reading watcher saw every change (health alternated, ending healthy). */
  expect_event (events, 1 + n_changes, CP_SERVICE_STATE_AVAILABLE, provider->runtime_id);
  expect_event (events, n_changes, CP_SERVICE_STATE_DEGRADED, provider->runtime_id);

  /* Its connection gone, the stuck watcher is dropped. */
  g_socket_close (socket, NULL);
  wait_n_watchers (f, 1);
  cp_service_watch_cancel (watch);
  wait_n_watchers (f, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func) \
  g_test_add ("/broker-registry/" name, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("register-discover", test_register_discover);
  ADD ("validation", test_validation);
  ADD ("authentication", test_authentication);
  ADD ("allow-list", test_allow_list);
  ADD ("cap-and-unregister", test_cap_and_unregister);
  ADD ("strategies", test_strategies);
  ADD ("watch", test_watch);
  ADD ("watch-slow-reader", test_watch_slow_reader);
#undef ADD
  g_test_add_func ("/broker-registry/semver", test_semver);
  return g_test_run ();
}
