/* test-broker-capabilities.c: the capability broker of CpBroker — a host
 * (CpServer + CpBroker, in a thread of its own) offering the secrets
 * capability of examples/platform, real plugin servers (host-url +
 * self-id) asking it for grants, and raw HTTP probes of every refusal
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <connectplugin.h>
#include <string.h>

#include "cp-broker-capabilities-private.h"
#include "connectplugin/protocol/broker.cp.h"
#include "connectplugin/protocol/handshake.cp.h"
#include "secrets.cp.h"

#define TIMEOUT_US (20 * G_USEC_PER_SEC)

/* ------------------------------------------------------------------ */
/* The secrets capability: "<name>=value for <caller runtime id>"        */

typedef struct {
  char *last_authorization;          /* what the capability saw */
  guint n_calls;
} SecretsState;

static gboolean
on_get_secret (SecretsSecrets          *skeleton,
               CpInvocation            *invocation,
               SecretsGetSecretRequest *request,
               SecretsState            *state)
{
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);
  const char *caller = soup_message_headers_get_one (headers, "X-Plugin-Runtime-ID");
  const char *auth = soup_message_headers_get_one (headers, "Authorization");
  g_autoptr(SecretsGetSecretResponse) response = secrets_get_secret_response_new ();
  g_autofree char *value = g_strdup_printf ("%s=value for %s",
                                            secrets_get_secret_request_get_name (request),
                                            caller ? caller : "-");

  state->n_calls++;
  g_free (state->last_authorization);
  state->last_authorization = g_strdup (auth ? auth : "-");
  secrets_get_secret_response_set_value (response, value);
  secrets_secrets_complete_get_secret (skeleton, invocation, response);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Fixture: the host in a thread, plugins and probes in the main thread  */

typedef struct {
  GThread *thread;
  GMainContext *context;
  gint ready;
  gint stop;

  CpServer *host;
  CpBroker *broker;
  SecretsSecrets *secrets;
  SecretsSecrets *keys;              /* a second capability, type "keys" */
  SecretsState secrets_state;
  char *host_url;

  GPtrArray *plugins;                /* CpServer* */
  SoupSession *session;
} Fixture;

static void
host_start (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  f->host = cp_server_new ();
  f->broker = cp_broker_new (f->host);
  f->secrets = secrets_secrets_skeleton_new ();
  g_signal_connect (f->secrets, "handle-get-secret", G_CALLBACK (on_get_secret), &f->secrets_state);
  f->keys = secrets_secrets_skeleton_new ();
  g_signal_connect (f->keys, "handle-get-secret", G_CALLBACK (on_get_secret), &f->secrets_state);
  cp_broker_add_capability (f->broker, "secrets", "1.10.0", CP_SKELETON (f->secrets));
  cp_broker_add_capability (f->broker, "keys", "2.0.0", CP_SKELETON (f->keys));
  f->host_url = cp_server_listen (f->host, "127.0.0.1:0", &error);
  g_assert_no_error (error);
}

static void
host_stop (Fixture *f)
{
  cp_server_close (f->host);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_clear_object (&f->broker);
  g_clear_object (&f->host);
  g_clear_object (&f->secrets);
  g_clear_object (&f->keys);
}

static gpointer
host_thread (gpointer data)
{
  Fixture *f = data;

  g_main_context_push_thread_default (f->context);
  host_start (f);
  g_atomic_int_set (&f->ready, 1);
  while (!g_atomic_int_get (&f->stop))
    g_main_context_iteration (f->context, TRUE);
  host_stop (f);
  g_main_context_pop_thread_default (f->context);
  return NULL;
}

/* Runs @func (f, data) in the host's thread and waits for it. */
typedef struct {
  Fixture *f;
  void (*func) (Fixture *f, gpointer data);
  gpointer data;
  gint done;
} HostCall;

static gboolean
host_call_run (gpointer user_data)
{
  HostCall *call = user_data;

  call->func (call->f, call->data);
  g_atomic_int_set (&call->done, 1);
  return G_SOURCE_REMOVE;
}

static void
in_host (Fixture  *f,
         void    (*func) (Fixture *f, gpointer data),
         gpointer  data)
{
  HostCall call = { f, func, data, 0 };
  gint64 end = g_get_monotonic_time () + TIMEOUT_US;

  g_main_context_invoke (f->context, host_call_run, &call);
  while (!g_atomic_int_get (&call.done))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);  /* hang guard */
      g_usleep (500);
    }
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  f->context = g_main_context_new ();
  f->thread = g_thread_new ("host", host_thread, f);
  while (!g_atomic_int_get (&f->ready))
    g_usleep (1000);
  f->plugins = g_ptr_array_new ();
  f->session = soup_session_new ();
}

static gboolean
wake (gpointer data)
{
  return G_SOURCE_REMOVE;
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  for (guint i = 0; i < f->plugins->len; i++)
    {
      cp_server_close (f->plugins->pdata[i]);
      g_assert_finalize_object (f->plugins->pdata[i]);
    }
  g_ptr_array_unref (f->plugins);
  g_clear_object (&f->session);
  g_atomic_int_set (&f->stop, 1);
  g_main_context_invoke (f->context, wake, NULL);
  g_thread_join (f->thread);
  g_main_context_unref (f->context);
  g_free (f->secrets_state.last_authorization);
  g_free (f->host_url);
}

/* A real plugin server linked to the host under @self_id; returns once
 * the host's handshake gave it a runtime identity. */
static CpServer *
plugin_new (Fixture    *f,
            const char *self_id)
{
  CpServer *plugin = cp_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  gint64 end = g_get_monotonic_time () + TIMEOUT_US;

  g_object_set (plugin, "self-id", self_id, "self-version", "1.0.0",
                "host-url", f->host_url, NULL);
  url = cp_server_listen (plugin, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  while (cp_server_get_runtime_id (plugin) == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, end);  /* hang guard */
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
  g_ptr_array_add (f->plugins, plugin);
  return plugin;
}

/* ------------------------------------------------------------------ */
/* Raw HTTP                                                             */

typedef struct {
  guint status;
  char *body;
} Reply;

static void
reply_clear (Reply *reply)
{
  g_clear_pointer (&reply->body, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Reply, reply_clear)

/* POSTs a JSON Connect unary request; @headers: name, value, …, NULL. */
static Reply
post (Fixture    *f,
      const char *path,
      const char *json,
      ...)
{
  g_autofree char *uri = g_strconcat (f->host_url, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", uri);
  g_autoptr(GBytes) request = g_bytes_new (json, strlen (json));
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  Reply reply = { 0, NULL };
  const char *name;
  va_list args;

  g_assert_nonnull (msg);
  soup_message_set_request_body_from_bytes (msg, "application/json", request);
  soup_message_headers_replace (soup_message_get_request_headers (msg),
                                "Connect-Protocol-Version", "1");
  va_start (args, json);
  while ((name = va_arg (args, const char *)) != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg), name,
                                  va_arg (args, const char *));
  va_end (args);
  body = soup_session_send_and_read (f->session, msg, NULL, &error);
  g_assert_no_error (error);
  reply.status = soup_message_get_status (msg);
  reply.body = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  return reply;
}

static void
assert_reply (const Reply *reply,
              guint        status,
              const char  *text)
{
  if (reply->status != status || strstr (reply->body, text) == NULL)
    g_error ("expected %u with \"%s\", got %u: %s", status, text, reply->status, reply->body);
}

/* The status of a POST of @path sent byte for byte (libsoup would
 * normalise dot segments and spaces away); 0 when the server closed
 * without answering. */
static guint
raw_post_status (Fixture    *f,
                 const char *path,
                 const char *authorization)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = g_uri_parse (f->host_url, G_URI_FLAGS_NONE, &error);
  g_autofree char *request = NULL;
  char buf[256] = { 0 };
  gsize n = 0;
  guint status = 0;

  g_assert_no_error (error);
  connection = g_socket_client_connect_to_host (client, g_uri_get_host (uri), g_uri_get_port (uri),
                                                NULL, &error);
  g_assert_no_error (error);
  request = g_strdup_printf ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                             "Content-Type: application/json\r\nContent-Length: 2\r\n"
                             "Connection: close\r\n\r\n{}", path, authorization);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                             request, strlen (request), NULL, NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                           buf, sizeof buf - 1, &n, NULL, NULL);
  if (g_str_has_prefix (buf, "HTTP/1.1 "))
    status = (guint) g_ascii_strtoull (buf + strlen ("HTTP/1.1 "), NULL, 10);
  return status;
}

/* The identity headers of @plugin (or forged ones). */
#define AUTH(plugin) "X-Plugin-Runtime-ID", cp_server_get_runtime_id (plugin), \
  "Authorization", bearer_of (plugin)

static const char *
bearer_of (CpServer *plugin)
{
  g_autofree char *bearer = g_strconcat ("Bearer ", cp_server_get_runtime_token (plugin), NULL);

  /* Kept alive with the plugin. */
  g_object_set_data_full (G_OBJECT (plugin), "test-bearer", g_strdup (bearer), g_free);
  return g_object_get_data (G_OBJECT (plugin), "test-bearer");
}

#define RC "/connectplugin.v1.CapabilityBroker/RequestCapability"

/* A grant for @plugin, asked through the generated proxy. */
static CpCapabilityGrant *
grant_for (Fixture    *f,
           CpServer   *plugin,
           const char *type)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->host_url, &error);
  g_autoptr(CpCapabilityBroker) proxy = NULL;
  g_autoptr(CpRequestCapabilityRequest) request = cp_request_capability_request_new ();
  g_autoptr(CpRequestCapabilityResponse) response = NULL;

  g_assert_no_error (error);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", cp_server_get_runtime_id (plugin));
  cp_channel_set_header (channel, "Authorization", bearer_of (plugin));
  proxy = cp_capability_broker_proxy_new (channel);
  cp_request_capability_request_set_capability_type (request, type);
  response = cp_capability_broker_call_request_capability_sync (proxy, request, NULL, NULL, &error);
  g_assert_no_error (error);
  return cp_request_capability_response_get_grant (response);
}

/* A GetSecret call at @type / @grant_id with @authorization (NULL: none). */
static Reply
call_capability (Fixture    *f,
                 const char *type,
                 const char *grant_id,
                 const char *authorization)
{
  g_autofree char *path = g_strdup_printf ("/capabilities/%s/%s/secrets.v1.Secrets/GetSecret",
                                           type, grant_id);

  if (authorization == NULL)
    return post (f, path, "{\"name\":\"db\"}", NULL);
  return post (f, path, "{\"name\":\"db\"}", "Authorization", authorization, NULL);
}

static char *
bearer (CpCapabilityGrant *grant)
{
  return g_strconcat ("Bearer ", cp_capability_grant_get_bearer_token (grant), NULL);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */

/* The plugin side end to end: cp_server_request_capability_sync() →
 * a channel at the grant's endpoint → GetSecret dispatched in-process. */
static void
test_request_and_call (Fixture       *f,
                       gconstpointer  data)
{
  CpServer *plugin = plugin_new (f, "app-plugin");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(SecretsSecrets) proxy = NULL;
  g_autoptr(SecretsGetSecretRequest) request = secrets_get_secret_request_new ();
  g_autoptr(SecretsGetSecretResponse) response = NULL;
  g_autofree char *base_url = NULL;
  g_autofree char *prefix = g_strdup_printf ("%s/capabilities/secrets/", f->host_url);
  g_autofree char *expected = NULL;

  channel = cp_server_request_capability_sync (plugin, "secrets", "1.2.0", "tests", NULL, &error);
  g_assert_no_error (error);
  g_object_get (channel, "base-url", &base_url, NULL);
  g_assert_true (g_str_has_prefix (base_url, prefix));
  g_assert_cmpuint (strlen (base_url + strlen (prefix)), ==, 24);  /* the grant id */

  proxy = secrets_secrets_proxy_new (channel);
  secrets_get_secret_request_set_name (request, "db");
  response = secrets_secrets_call_get_secret_sync (proxy, request, NULL, NULL, &error);
  g_assert_no_error (error);
  expected = g_strdup_printf ("db=value for %s", cp_server_get_runtime_id (plugin));
  g_assert_cmpstr (secrets_get_secret_response_get_value (response), ==, expected);
  /* The grant's token stops at the broker. */
  g_assert_cmpstr (f->secrets_state.last_authorization, ==, "-");
}

/* The grant's fields: formats of docs/wire-contract.md. */
static void
test_grant_format (Fixture       *f,
                   gconstpointer  data)
{
  CpServer *plugin = plugin_new (f, "app-plugin");
  g_autoptr(CpCapabilityGrant) grant = grant_for (f, plugin, "secrets");
  g_autoptr(CpCapabilityGrant) second = grant_for (f, plugin, "secrets");
  g_autofree char *url = g_strdup_printf ("%s/capabilities/secrets/%s", f->host_url,
                                          cp_capability_grant_get_grant_id (grant));
  gsize len;
  g_autofree guchar *raw = NULL;
  g_autofree char *std = NULL;

  g_assert_cmpuint (strlen (cp_capability_grant_get_grant_id (grant)), ==, 24);
  g_assert_cmpuint (strlen (cp_capability_grant_get_bearer_token (grant)), ==, 44);
  g_assert_true (g_str_has_suffix (cp_capability_grant_get_grant_id (grant), "=="));
  g_assert_true (g_str_has_suffix (cp_capability_grant_get_bearer_token (grant), "="));
  /* base64url: decodes to 32 bytes once mapped to the standard alphabet. */
  std = g_strdup (cp_capability_grant_get_bearer_token (grant));
  g_strdelimit (std, "-", '+');
  g_strdelimit (std, "_", '/');
  raw = g_base64_decode (std, &len);
  g_assert_cmpuint (len, ==, 32);
  g_assert_cmpstr (cp_capability_grant_get_endpoint_url (grant), ==, url);
  g_assert_cmpstr (cp_capability_grant_get_capability_type (grant), ==, "secrets");
  g_assert_cmpstr (cp_capability_grant_get_version (grant), ==, "1.10.0");
  /* Every request gets a grant of its own. */
  g_assert_cmpstr (cp_capability_grant_get_grant_id (grant), !=,
                   cp_capability_grant_get_grant_id (second));
  g_assert_cmpstr (cp_capability_grant_get_bearer_token (grant), !=,
                   cp_capability_grant_get_bearer_token (second));
}

/* HandshakeResponse.host_capabilities lists every capability, by type,
 * at <host>/broker (connect-plugin-go's ListCapabilities). */
static void
test_handshake_capabilities (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (f->host_url, &error);
  g_autoptr(CpHandshakeService) proxy = NULL;
  g_autoptr(CpHandshakeRequest) request = cp_handshake_request_new ();
  g_autoptr(CpHandshakeResponse) response = NULL;
  g_autoptr(GPtrArray) caps = NULL;
  g_autofree char *endpoint = g_strconcat (f->host_url, "/broker", NULL);

  g_assert_no_error (error);
  proxy = cp_handshake_service_proxy_new (channel);
  cp_handshake_request_set_core_protocol_version (request, 1);
  cp_handshake_request_set_app_protocol_version (request, 1);
  cp_handshake_request_set_magic_cookie_key (request, CP_MAGIC_COOKIE_KEY);
  cp_handshake_request_set_magic_cookie_value (request, CP_MAGIC_COOKIE_VALUE);
  cp_handshake_request_set_self_id (request, "probe");
  response = cp_handshake_service_call_handshake_sync (proxy, request, NULL, NULL, &error);
  g_assert_no_error (error);
  caps = cp_handshake_response_get_host_capabilities (response);
  g_assert_cmpuint (caps->len, ==, 2);
  g_assert_cmpstr (cp_capability_get_type_ (caps->pdata[0]), ==, "keys");
  g_assert_cmpstr (cp_capability_get_version (caps->pdata[0]), ==, "2.0.0");
  g_assert_cmpstr (cp_capability_get_endpoint (caps->pdata[0]), ==, endpoint);
  g_assert_cmpstr (cp_capability_get_type_ (caps->pdata[1]), ==, "secrets");
  g_assert_cmpstr (cp_capability_get_version (caps->pdata[1]), ==, "1.10.0");
  g_assert_cmpstr (cp_capability_get_endpoint (caps->pdata[1]), ==, endpoint);
}

/* RequestCapability at both paths, and who is refused there. */
static void
test_request_paths (Fixture       *f,
                    gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  CpServer *b = plugin_new (f, "other-plugin");
  const char *paths[] = { RC, "/broker" RC };
  const char *json = "{\"capabilityType\":\"secrets\"}";

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_auto(Reply) ok = post (f, paths[i], json, AUTH (a), NULL);
      g_auto(Reply) anonymous = post (f, paths[i], json, NULL);
      g_auto(Reply) no_token = post (f, paths[i], json,
                                     "X-Plugin-Runtime-ID", cp_server_get_runtime_id (a), NULL);
      g_auto(Reply) no_id = post (f, paths[i], json, "Authorization", bearer_of (a), NULL);
      /* A's token with B's runtime id, and a forged token. */
      g_auto(Reply) swapped = post (f, paths[i], json,
                                    "X-Plugin-Runtime-ID", cp_server_get_runtime_id (b),
                                    "Authorization", bearer_of (a), NULL);
      g_auto(Reply) forged = post (f, paths[i], json,
                                   "X-Plugin-Runtime-ID", cp_server_get_runtime_id (a),
                                   "Authorization", "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL);

      assert_reply (&ok, 200, "\"grantId\"");
      assert_reply (&ok, 200, "/capabilities/secrets/");
      assert_reply (&anonymous, 401, "\"unauthenticated\"");
      assert_reply (&no_token, 401, "\"unauthenticated\"");
      assert_reply (&no_id, 401, "\"unauthenticated\"");
      assert_reply (&swapped, 401, "\"unauthenticated\"");
      assert_reply (&forged, 401, "\"unauthenticated\"");
    }

  /* Only the CapabilityBroker lives under /broker/. */
  {
    g_auto(Reply) other = post (f, "/broker/connectplugin.v1.ServiceRegistry/DiscoverService",
                                "{}", AUTH (a), NULL);
    g_auto(Reply) unknown = post (f, "/broker/connectplugin.v1.CapabilityBroker/Nope",
                                  "{}", AUTH (a), NULL);
    g_auto(Reply) bare = post (f, "/broker/", "{}", AUTH (a), NULL);

    assert_reply (&other, 404, "");
    assert_reply (&unknown, 404, "");
    assert_reply (&bare, 404, "");
  }
}

/* What a known plugin may not get: unknown type, too new a min_version,
 * invalid arguments, outside its allow-list. */
static void
allow_keys (Fixture *f,
            gpointer data)
{
  cp_broker_allow_capability (f->broker, "app-plugin", "keys");
}

static void
test_request_refusals (Fixture       *f,
                       gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  CpServer *b = plugin_new (f, "other-plugin");

  {
    g_auto(Reply) unknown = post (f, RC, "{\"capabilityType\":\"nosuch\"}", AUTH (a), NULL);
    /* 1.10.0 is newer than 1.9.0 (semver, not string order). */
    g_auto(Reply) semver = post (f, RC, "{\"capabilityType\":\"secrets\",\"minVersion\":\"1.9.0\"}",
                                 AUTH (a), NULL);
    g_auto(Reply) exact = post (f, RC, "{\"capabilityType\":\"secrets\",\"minVersion\":\"1.10.0\"}",
                                AUTH (a), NULL);
    g_auto(Reply) too_new = post (f, RC, "{\"capabilityType\":\"secrets\",\"minVersion\":\"1.10.1\"}",
                                  AUTH (a), NULL);
    g_auto(Reply) pre = post (f, RC, "{\"capabilityType\":\"secrets\",\"minVersion\":\"1.10.0-rc.1\"}",
                              AUTH (a), NULL);
    g_auto(Reply) bad_version = post (f, RC, "{\"capabilityType\":\"secrets\",\"minVersion\":\"1.x\"}",
                                      AUTH (a), NULL);
    g_auto(Reply) v_version = post (f, RC, "{\"capabilityType\":\"secrets\",\"minVersion\":\"v1.0.0\"}",
                                    AUTH (a), NULL);
    g_auto(Reply) no_type = post (f, RC, "{}", AUTH (a), NULL);

    assert_reply (&unknown, 404, "\"not_found\"");
    assert_reply (&unknown, 404, "capability \\\"nosuch\\\" not available");
    assert_reply (&semver, 200, "\"grantId\"");
    assert_reply (&exact, 200, "\"grantId\"");
    assert_reply (&too_new, 404, "\"not_found\"");
    assert_reply (&pre, 200, "\"grantId\"");
    assert_reply (&bad_version, 400, "\"invalid_argument\"");
    assert_reply (&v_version, 400, "\"invalid_argument\"");  /* as cp-semver: no "v" */
    assert_reply (&no_type, 400, "\"invalid_argument\"");
  }

  /* app-plugin gets an allow-list: keys only. other-plugin has none. */
  in_host (f, allow_keys, NULL);
  {
    g_auto(Reply) denied = post (f, RC, "{\"capabilityType\":\"secrets\"}", AUTH (a), NULL);
    g_auto(Reply) allowed = post (f, RC, "{\"capabilityType\":\"keys\"}", AUTH (a), NULL);
    g_auto(Reply) other = post (f, RC, "{\"capabilityType\":\"secrets\"}", AUTH (b), NULL);

    assert_reply (&denied, 403, "\"permission_denied\"");
    assert_reply (&allowed, 200, "\"grantId\"");
    assert_reply (&other, 200, "\"grantId\"");
  }
}

/* Every refusal of /capabilities/{type}/{grant_id}/{Service}/{Method}. */
static void
test_capability_path_refusals (Fixture       *f,
                               gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  g_autoptr(CpCapabilityGrant) grant = grant_for (f, a, "secrets");
  g_autoptr(CpCapabilityGrant) keys = grant_for (f, a, "keys");
  const char *id = cp_capability_grant_get_grant_id (grant);
  const char *token = cp_capability_grant_get_bearer_token (grant);
  g_autofree char *good = bearer (grant);
  g_autofree char *keys_bearer = bearer (keys);
  g_autofree char *truncated = g_strndup (good, strlen (good) - 1);
  g_autofree char *longer = g_strconcat (good, "A", NULL);
  g_autofree char *flipped = g_strdup (good);
  g_autofree char *bare = g_strdup (token);
  g_autofree char *lower = g_strdup_printf ("bearer %s", token);
  const char *malformed[] = {
    "/capabilities/secrets/GRANT",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets/GetSecret/more",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets/GetSecret/",
    "/capabilities/secrets/GRANT//GetSecret",
    "/capabilities/secrets/GRANT/../GetSecret",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets/..",
    "/capabilities/../GRANT/secrets.v1.Secrets/GetSecret",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets%2FGetSecret/x",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets%2FGetSecret",
    "/capabilities/sec%72ets/GRANT/secrets.v1.Secrets/GetSecret",
    "/capabilities//GRANT/secrets.v1.Secrets/GetSecret",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets/Get Secret",
    "/capabilities/secrets/GRANT/secrets.v1.Secrets/GetSecret\x01",
  };

  /* Near misses: one character changed (first and last). */
  flipped[strlen ("Bearer ")] = flipped[strlen ("Bearer ")] == 'A' ? 'B' : 'A';
  {
    g_auto(Reply) ok = call_capability (f, "secrets", id, good);
    g_autofree char *expected = g_strdup_printf ("db=value for %s", cp_server_get_runtime_id (a));

    assert_reply (&ok, 200, expected);
  }

  for (guint i = 0; i < G_N_ELEMENTS (malformed); i++)
    {
      g_auto(GStrv) pieces = g_strsplit (malformed[i], "GRANT", 2);
      g_autofree char *path = g_strjoinv (id, pieces);
      guint status = raw_post_status (f, path, good);

      if (status != 400)
        g_error ("%s: expected 400, got %u", path, status);
    }

  {
    g_auto(Reply) none = call_capability (f, "secrets", id, NULL);
    g_auto(Reply) basic = call_capability (f, "secrets", id, "Basic dXNlcjpwYXNz");
    g_auto(Reply) no_scheme = call_capability (f, "secrets", id, bare);
    g_auto(Reply) lower_scheme = call_capability (f, "secrets", id, lower);
    g_auto(Reply) empty = call_capability (f, "secrets", id, "Bearer ");
    g_auto(Reply) near_last = call_capability (f, "secrets", id, truncated);
    g_auto(Reply) near_long = call_capability (f, "secrets", id, longer);
    g_auto(Reply) near_first = call_capability (f, "secrets", id, flipped);
    /* Another grant's token, a runtime token, an unknown grant id. */
    g_auto(Reply) other_token = call_capability (f, "secrets", id, keys_bearer);
    g_auto(Reply) runtime_token = call_capability (f, "secrets", id, bearer_of (a));
    g_auto(Reply) unknown_grant = call_capability (f, "secrets", "AAAAAAAAAAAAAAAAAAAAAA==", good);

    assert_reply (&none, 401, "missing or invalid authorization header");
    assert_reply (&basic, 401, "missing or invalid authorization header");
    assert_reply (&no_scheme, 401, "missing or invalid authorization header");
    assert_reply (&lower_scheme, 401, "missing or invalid authorization header");
    assert_reply (&empty, 401, "missing or invalid authorization header");  /* "Bearer" once trimmed */
    assert_reply (&near_last, 401, "invalid token");
    assert_reply (&near_long, 401, "invalid token");
    assert_reply (&near_first, 401, "invalid token");
    assert_reply (&other_token, 401, "invalid token");
    assert_reply (&runtime_token, 401, "invalid token");
    assert_reply (&unknown_grant, 401, "invalid grant ID");
  }

  /* A secrets grant on the keys capability's path, and the other way. */
  {
    g_auto(Reply) cross = call_capability (f, "keys", id, good);
    g_auto(Reply) cross_back = call_capability (f, "secrets",
                                                cp_capability_grant_get_grant_id (keys),
                                                keys_bearer);
    g_auto(Reply) own = call_capability (f, "keys", cp_capability_grant_get_grant_id (keys),
                                         keys_bearer);

    assert_reply (&cross, 403, "grant is not for this capability");
    assert_reply (&cross_back, 403, "grant is not for this capability");
    assert_reply (&own, 200, "db=value");
  }

  /* Unknown capability, service or method. */
  {
    g_autofree char *bad_service = g_strdup_printf ("/capabilities/secrets/%s/secrets.v1.Nope/GetSecret", id);
    g_autofree char *bad_method = g_strdup_printf ("/capabilities/secrets/%s/secrets.v1.Secrets/Nope", id);
    g_auto(Reply) unknown_type = call_capability (f, "nosuch", id, good);
    g_auto(Reply) service = post (f, bad_service, "{}", "Authorization", good, NULL);
    g_auto(Reply) method = post (f, bad_method, "{}", "Authorization", good, NULL);

    assert_reply (&unknown_type, 404, "capability not available");
    assert_reply (&service, 404, "unknown capability method");
    assert_reply (&method, 404, "unknown capability method");
  }

  /* After all that, the grant still works. */
  {
    g_auto(Reply) ok = call_capability (f, "secrets", id, good);

    assert_reply (&ok, 200, "db=value");
  }
}

static void
advance (Fixture *f,
         gpointer data)
{
  cp_broker_capabilities_advance_clock (f->broker->capabilities, GPOINTER_TO_INT (data));
}

static void
set_ttl (Fixture *f,
         gpointer data)
{
  g_object_set (f->broker, "grant-ttl-seconds", GPOINTER_TO_UINT (data), NULL);
}

static void
count_grants (Fixture *f,
              gpointer data)
{
  *(guint *) data = cp_broker_capabilities_get_n_grants (f->broker->capabilities);
}

static guint
n_grants (Fixture *f)
{
  guint n = 0;

  in_host (f, count_grants, &n);
  return n;
}

/* A grant lives grant-ttl-seconds (on the broker's clock, moved ahead
 * here): then 401 "grant expired" once, and it is gone. */
static void
test_expiry (Fixture       *f,
             gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  g_autoptr(CpCapabilityGrant) grant = NULL;
  g_autofree char *good = NULL;
  const char *id;
  guint n;

  in_host (f, set_ttl, GUINT_TO_POINTER (100));
  grant = grant_for (f, a, "secrets");
  id = cp_capability_grant_get_grant_id (grant);
  good = bearer (grant);
  in_host (f, advance, GINT_TO_POINTER (99));
  {
    g_auto(Reply) ok = call_capability (f, "secrets", id, good);

    assert_reply (&ok, 200, "db=value");
  }
  n = n_grants (f);
  in_host (f, advance, GINT_TO_POINTER (1));
  {
    g_auto(Reply) expired = call_capability (f, "secrets", id, good);
    g_auto(Reply) gone = call_capability (f, "secrets", id, good);

    assert_reply (&expired, 401, "grant expired");
    assert_reply (&gone, 401, "invalid grant ID");
  }
  g_assert_cmpuint (n_grants (f), ==, n - 1);

  /* The default TTL is an hour. */
  in_host (f, set_ttl, GUINT_TO_POINTER (3600));
  g_clear_object (&grant);
  grant = grant_for (f, a, "secrets");
  g_clear_pointer (&good, g_free);
  good = bearer (grant);
  in_host (f, advance, GINT_TO_POINTER (3599));
  {
    g_auto(Reply) ok = call_capability (f, "secrets", cp_capability_grant_get_grant_id (grant), good);

    assert_reply (&ok, 200, "db=value");
  }
  in_host (f, advance, GINT_TO_POINTER (1));
  {
    g_auto(Reply) expired = call_capability (f, "secrets", cp_capability_grant_get_grant_id (grant), good);

    assert_reply (&expired, 401, "grant expired");
  }
}

/* The table stays bounded: a flood of requests keeps the newest
 * CP_BROKER_MAX_GRANTS_PER_PLUGIN grants of a plugin, and expired grants
 * of anyone are swept at the next request. */
static void
test_bounded (Fixture       *f,
              gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  CpServer *b = plugin_new (f, "other-plugin");
  g_autoptr(CpCapabilityGrant) first = grant_for (f, a, "secrets");
  g_autoptr(CpCapabilityGrant) last = NULL;
  g_autofree char *first_bearer = bearer (first);

  for (guint i = 0; i < CP_BROKER_MAX_GRANTS_PER_PLUGIN + 8; i++)
    {
      g_clear_object (&last);
      last = grant_for (f, a, "secrets");
    }
  g_assert_cmpuint (n_grants (f), ==, CP_BROKER_MAX_GRANTS_PER_PLUGIN);
  {
    g_autofree char *last_bearer = bearer (last);
    g_auto(Reply) dropped = call_capability (f, "secrets", cp_capability_grant_get_grant_id (first),
                                             first_bearer);
    g_auto(Reply) kept = call_capability (f, "secrets", cp_capability_grant_get_grant_id (last),
                                          last_bearer);

    assert_reply (&dropped, 401, "invalid grant ID");
    assert_reply (&kept, 200, "db=value");
  }

  in_host (f, advance, GINT_TO_POINTER (3600));
  g_clear_object (&last);
  last = grant_for (f, b, "secrets");
  g_assert_cmpuint (n_grants (f), ==, 1);
}

typedef struct {
  const char *runtime_id;
  gboolean found;
} RemoveData;

static void
remove_plugin (Fixture *f,
               gpointer data)
{
  RemoveData *remove = data;
  CpPluginInstance *instance = cp_broker_lookup_plugin (f->broker, remove->runtime_id);

  remove->found = instance != NULL;
  if (instance != NULL)
    cp_broker_remove_instance (f->broker, instance);
}

/* Plugin A goes: its grants are revoked, B's still work. */
static void
test_plugin_gone (Fixture       *f,
                  gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  CpServer *b = plugin_new (f, "other-plugin");
  g_autoptr(CpCapabilityGrant) grant_a = grant_for (f, a, "secrets");
  g_autoptr(CpCapabilityGrant) grant_b = grant_for (f, b, "secrets");
  g_autofree char *bearer_a = bearer (grant_a);
  g_autofree char *bearer_b = bearer (grant_b);
  RemoveData remove = { cp_server_get_runtime_id (a), FALSE };

  {
    g_auto(Reply) ok = call_capability (f, "secrets", cp_capability_grant_get_grant_id (grant_a),
                                        bearer_a);

    assert_reply (&ok, 200, "db=value");
  }
  in_host (f, remove_plugin, &remove);
  g_assert_true (remove.found);
  {
    g_auto(Reply) revoked = call_capability (f, "secrets", cp_capability_grant_get_grant_id (grant_a),
                                             bearer_a);
    g_auto(Reply) other = call_capability (f, "secrets", cp_capability_grant_get_grant_id (grant_b),
                                           bearer_b);
    /* Its runtime identity is gone too: no new grant. */
    g_auto(Reply) again = post (f, RC, "{\"capabilityType\":\"secrets\"}", AUTH (a), NULL);

    assert_reply (&revoked, 401, "invalid grant ID");
    assert_reply (&other, 200, "db=value");
    assert_reply (&again, 401, "\"unauthenticated\"");
  }
}

static void
remove_secrets (Fixture *f,
                gpointer data)
{
  cp_broker_remove_capability (f->broker, "secrets");
  cp_broker_remove_capability (f->broker, "never-offered");
}

/* A capability withdrawn: its grants and endpoints are gone. */
static void
test_remove_capability (Fixture       *f,
                        gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  g_autoptr(CpCapabilityGrant) grant = grant_for (f, a, "secrets");
  g_autoptr(CpCapabilityGrant) keys = grant_for (f, a, "keys");
  g_autofree char *good = bearer (grant);
  g_autofree char *keys_bearer = bearer (keys);

  in_host (f, remove_secrets, NULL);
  {
    g_auto(Reply) call = call_capability (f, "secrets", cp_capability_grant_get_grant_id (grant), good);
    g_auto(Reply) request = post (f, RC, "{\"capabilityType\":\"secrets\"}", AUTH (a), NULL);
    g_auto(Reply) other = call_capability (f, "keys", cp_capability_grant_get_grant_id (keys),
                                           keys_bearer);

    assert_reply (&call, 404, "capability not available");
    assert_reply (&request, 404, "\"not_found\"");
    assert_reply (&other, 200, "db=value");
  }
  g_assert_cmpuint (n_grants (f), ==, 1);
}

static void
set_rate_limit (Fixture *f,
                gpointer data)
{
  g_object_set (f->broker, "rate-limit-rps", 0.001, "rate-limit-burst", 3, NULL);
}

/* With CpBroker:rate-limit-rps, capability calls are counted in the
 * plugin's bucket (id:<runtime id>): past the burst, 429. */
static void
test_rate_limit (Fixture       *f,
                 gconstpointer  data)
{
  CpServer *a = plugin_new (f, "app-plugin");
  g_autoptr(CpCapabilityGrant) grant = grant_for (f, a, "secrets");
  g_autofree char *good = bearer (grant);
  const char *id = cp_capability_grant_get_grant_id (grant);

  in_host (f, set_rate_limit, NULL);
  for (guint i = 0; i < 3; i++)
    {
      g_auto(Reply) ok = call_capability (f, "secrets", id, good);

      assert_reply (&ok, 200, "db=value");
    }
  {
    g_auto(Reply) limited = call_capability (f, "secrets", id, good);
    g_auto(Reply) request = post (f, RC, "{\"capabilityType\":\"secrets\"}", AUTH (a), NULL);

    assert_reply (&limited, 429, "rate limit exceeded");
    assert_reply (&request, 429, "\"resource_exhausted\"");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/host/broker-capabilities/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("request-and-call", test_request_and_call);
  ADD ("grant-format", test_grant_format);
  ADD ("handshake-capabilities", test_handshake_capabilities);
  ADD ("request-paths", test_request_paths);
  ADD ("request-refusals", test_request_refusals);
  ADD ("capability-path-refusals", test_capability_path_refusals);
  ADD ("expiry", test_expiry);
  ADD ("bounded", test_bounded);
  ADD ("plugin-gone", test_plugin_gone);
  ADD ("remove-capability", test_remove_capability);
  ADD ("rate-limit", test_rate_limit);

  return g_test_run ();
}
