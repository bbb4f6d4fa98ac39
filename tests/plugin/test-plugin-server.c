/* test-plugin-server.c: CpPlugin and CpServer over real sockets
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <connectplugin.h>
#include <string.h>

#include "cp-plugin-constants.h"
#include "cp-plugin-protos.h"
#include "cp-plugin.h"
#include "cp-server-private.h"
#include "cp-http-exchange-private.h"
#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"
#include "plugintest.cp.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;
  *out = g_object_ref (result);
}

static GAsyncResult *
wait_for_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

/* With @authorization as the Authorization header when not NULL. */
static CpMessage *
call_auth (CpChannel   *channel,
           const char  *authorization,
           const char  *procedure,
           gpointer     request,
           GType        response_type,
           CpCodec      codec,
           GError     **error)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  GAsyncResult *result = NULL;
  CpMessage *response;

  cp_call_options_set_codec (options, codec);
  if (authorization != NULL)
    soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                  "Authorization", authorization);
  cp_channel_call_async (channel, procedure, CP_MESSAGE (request), response_type, options,
                         NULL, store_result, &result);
  response = cp_channel_call_finish (channel, wait_for_result (&result), error);
  g_object_unref (result);
  return response;
}

static CpMessage *
call (CpChannel   *channel,
      const char  *procedure,
      gpointer     request,
      GType        response_type,
      CpCodec      codec,
      GError     **error)
{
  return call_auth (channel, NULL, procedure, request, response_type, codec, error);
}

/* The fixture's control secret, shaped like a generated one. */
#define SECRET "Zm9vYmFyLXNlY3JldC10b2tlbi0zMi1ieXRlcy1sb25n"
#define BEARER "Bearer " SECRET

typedef struct {
  guint status;
  char *content_type;
  char *body;
} RawResponse;

static void
raw_response_clear (RawResponse *r)
{
  g_free (r->content_type);
  g_free (r->body);
}

/* A plain HTTP request with libsoup, outside the Connect client. */
static void
raw_request (const char  *url,
             const char  *method,
             const char  *path,
             const char  *content_type,
             GBytes      *body,
             RawResponse *out)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *uri = g_strconcat (url, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  gsize len;
  const char *bytes;

  if (body != NULL)
    soup_message_set_request_body_from_bytes (msg, content_type, body);
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, store_result, &result);
  data = soup_session_send_and_read_finish (session, wait_for_result (&result), &error);
  g_object_unref (result);
  g_assert_no_error (error);

  out->status = soup_message_get_status (msg);
  out->content_type = g_strdup (soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL));
  bytes = g_bytes_get_data (data, &len);
  out->body = g_strndup (bytes, len);
}

static CpHandshakeRequest *
handshake_request_new (void)
{
  CpHandshakeRequest *request = cp_handshake_request_new ();
  const char *requested[] = { "test", NULL };

  cp_handshake_request_set_core_protocol_version (request, 1);
  cp_handshake_request_set_app_protocol_version (request, 1);
  cp_handshake_request_set_magic_cookie_key (request, CP_MAGIC_COOKIE_KEY);
  cp_handshake_request_set_magic_cookie_value (request, CP_MAGIC_COOKIE_VALUE);
  cp_handshake_request_set_requested_plugins (request, requested);
  return request;
}

/* ------------------------------------------------------------------ */
/* Fixture: a server with plugin "test" (SlowService) on 127.0.0.1:0     */

typedef struct {
  CpServer *server;
  CpPlugin *plugin;
  PlugintestSlowService *skeleton;
  char *url;
  CpChannel *channel;
  gboolean hold;            /* keep Slow calls instead of answering */
  GPtrArray *held;          /* CpInvocation* */
  guint n_closed;
  guint n_shutdown_requested;
} Fixture;

static gboolean
on_handle_slow (PlugintestSlowService *object,
                CpInvocation          *invocation,
                PlugintestSlowRequest *request,
                gpointer               user_data)
{
  Fixture *f = user_data;
  g_autoptr(PlugintestSlowResponse) response = NULL;

  if (f->hold)
    {
      g_ptr_array_add (f->held, g_object_ref (invocation));
      return TRUE;
    }
  response = plugintest_slow_response_new ();
  plugintest_slow_response_set_text (response, plugintest_slow_request_get_text (request));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static void
on_closed (CpServer *server,
           gpointer  user_data)
{
  Fixture *f = user_data;
  f->n_closed++;
}

static void
on_shutdown_requested (CpServer   *server,
                       int         grace,
                       const char *reason,
                       gpointer    user_data)
{
  Fixture *f = user_data;
  f->n_shutdown_requested++;
  g_assert_cmpstr (reason, ==, "test over");
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->held = g_ptr_array_new_with_free_func (g_object_unref);
  f->server = cp_server_new ();
  g_object_set (f->server,
                "plugin-control-enabled", TRUE,
                "identity-enabled", TRUE,
                "control-secret", SECRET,
                NULL);
  cp_server_set_metadata (f->server, "team", "plugins");
  g_signal_connect (f->server, "closed", G_CALLBACK (on_closed), f);
  g_signal_connect (f->server, "shutdown-requested", G_CALLBACK (on_shutdown_requested), f);

  f->plugin = cp_plugin_new ("test", "1.2.3");
  f->skeleton = PLUGINTEST_SLOW_SERVICE (plugintest_slow_service_skeleton_new ());
  g_signal_connect (f->skeleton, "handle-slow", G_CALLBACK (on_handle_slow), f);
  cp_plugin_add_service (f->plugin, CP_SKELETON (f->skeleton));
  cp_plugin_add_provides (f->plugin, "slow", "1.0.0", "/plugintest.v1.SlowService/");
  cp_plugin_add_requires (f->plugin, "logger", "1.0.0", TRUE, FALSE);
  cp_server_add_plugin (f->server, f->plugin);

  f->url = cp_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (f->url, "http://127.0.0.1:"));
  f->channel = cp_channel_new (f->url, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_ptr_array_unref (f->held);
  cp_server_close (f->server);
  g_clear_object (&f->channel);
  g_clear_object (&f->plugin);
  g_clear_object (&f->skeleton);
  g_assert_finalize_object (f->server);
  g_free (f->url);
  /* Let the transport finish what it was doing. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ------------------------------------------------------------------ */
/* Handshake                                                            */

static void
check_handshake_ok (Fixture *f,
                    CpCodec  codec)
{
  g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
  g_autoptr(CpHandshakeResponse) response = NULL;
  g_autoptr(GPtrArray) plugins = NULL;
  g_autoptr(GHashTable) metadata = NULL;
  g_autoptr(GError) error = NULL;
  const char *requested[] = { "test", "missing", NULL };
  CpPluginInfo *info;
  g_autoptr(GPtrArray) provides = NULL;
  g_autoptr(GPtrArray) requires = NULL;

  cp_handshake_request_set_requested_plugins (request, requested);
  response = CP_HANDSHAKE_RESPONSE (call (f->channel, CP_PROCEDURE_HANDSHAKE, request,
                                          CP_TYPE_HANDSHAKE_RESPONSE, codec, &error));
  g_assert_no_error (error);

  g_assert_cmpint (cp_handshake_response_get_core_protocol_version (response), ==, 1);
  g_assert_cmpint (cp_handshake_response_get_app_protocol_version (response), ==, 1);

  /* "missing" is left out; the handshake still succeeds. */
  plugins = cp_handshake_response_get_plugins (response);
  g_assert_cmpuint (plugins->len, ==, 1);
  info = plugins->pdata[0];
  g_assert_cmpstr (cp_plugin_info_get_name (info), ==, "test");
  g_assert_cmpstr (cp_plugin_info_get_version (info), ==, "1.2.3");
  g_assert_cmpstr (cp_plugin_info_get_service_path (info), ==, "plugintest.v1.SlowService");
  provides = cp_plugin_info_get_provides (info);
  g_assert_cmpuint (provides->len, ==, 1);
  g_assert_cmpstr (cp_service_declaration_get_type_ (provides->pdata[0]), ==, "slow");
  g_assert_cmpstr (cp_service_declaration_get_path (provides->pdata[0]), ==, "/plugintest.v1.SlowService/");
  requires = cp_plugin_info_get_requires_ (info);
  g_assert_cmpuint (requires->len, ==, 1);
  g_assert_cmpstr (cp_service_dependency_get_type_ (requires->pdata[0]), ==, "logger");
  g_assert_true (cp_service_dependency_get_required_for_startup (requires->pdata[0]));

  metadata = cp_handshake_response_get_server_metadata (response);
  g_assert_cmpstr (g_hash_table_lookup (metadata, "server_version"), ==, CP_SERVER_VERSION);
  g_assert_cmpstr (g_hash_table_lookup (metadata, "team"), ==, "plugins");
  /* Ours alone: the names of every plugin served. */
  g_assert_cmpstr (g_hash_table_lookup (metadata, "plugins"), ==, "test");

  /* No self_id: no runtime identity. */
  g_assert_cmpstr (cp_handshake_response_get_runtime_id (response), ==, "");
  g_assert_cmpstr (cp_handshake_response_get_runtime_token (response), ==, "");
}

static void
test_handshake_binary (Fixture *f, gconstpointer data)
{
  check_handshake_ok (f, CP_CODEC_PROTO);
}

static void
test_handshake_json (Fixture *f, gconstpointer data)
{
  check_handshake_ok (f, CP_CODEC_JSON);
}

static void
test_handshake_no_plugins (Fixture *f, gconstpointer data)
{
  g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
  g_autoptr(CpHandshakeResponse) response = NULL;
  g_autoptr(GPtrArray) plugins = NULL;
  g_autoptr(GError) error = NULL;

  cp_handshake_request_set_requested_plugins (request, NULL);
  response = CP_HANDSHAKE_RESPONSE (call (f->channel, CP_PROCEDURE_HANDSHAKE, request,
                                          CP_TYPE_HANDSHAKE_RESPONSE, CP_CODEC_PROTO, &error));
  g_assert_no_error (error);
  plugins = cp_handshake_response_get_plugins (response);
  g_assert_cmpuint (plugins->len, ==, 0);
}

static void
expect_handshake_error (Fixture            *f,
                        CpHandshakeRequest *request,
                        CpError             code,
                        const char         *message_part)
{
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  response = call (f->channel, CP_PROCEDURE_HANDSHAKE, request,
                   CP_TYPE_HANDSHAKE_RESPONSE, CP_CODEC_PROTO, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, (gint) code);
  g_assert_nonnull (strstr (error->message, message_part));
}

static void
test_handshake_bad_cookie (Fixture *f, gconstpointer data)
{
  g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
  g_autoptr(GBytes) body = NULL;
  RawResponse raw = { 0 };

  cp_handshake_request_set_magic_cookie_key (request, "WRONG");
  expect_handshake_error (f, request, CP_ERROR_INVALID_ARGUMENT, "magic cookie");

  cp_handshake_request_set_magic_cookie_key (request, CP_MAGIC_COOKIE_KEY);
  cp_handshake_request_set_magic_cookie_value (request, "wrong");
  expect_handshake_error (f, request, CP_ERROR_INVALID_ARGUMENT, "magic cookie");

  /* The cookie is checked first: a bad app version does not hide it. */
  cp_handshake_request_set_app_protocol_version (request, 7);
  expect_handshake_error (f, request, CP_ERROR_INVALID_ARGUMENT, "magic cookie");

  /* A binary request gets the Connect JSON error body. */
  body = cp_message_serialize (CP_MESSAGE (request), CP_CODEC_PROTO, NULL);
  raw_request (f->url, "POST", CP_PROCEDURE_HANDSHAKE, "application/proto", body, &raw);
  g_assert_cmpuint (raw.status, ==, 400);
  g_assert_cmpstr (raw.content_type, ==, "application/json");
  g_assert_nonnull (strstr (raw.body, "\"code\":\"invalid_argument\""));
  g_assert_nonnull (strstr (raw.body, "magic cookie"));
  raw_response_clear (&raw);
}

static void
test_handshake_core_version (Fixture *f, gconstpointer data)
{
  g_autoptr(CpHandshakeRequest) request = handshake_request_new ();

  cp_handshake_request_set_core_protocol_version (request, 2);
  expect_handshake_error (f, request, CP_ERROR_INVALID_ARGUMENT, "core protocol version");
  /* Before the app version. */
  cp_handshake_request_set_app_protocol_version (request, 9);
  expect_handshake_error (f, request, CP_ERROR_INVALID_ARGUMENT, "core protocol version");
}

static void
test_handshake_app_version (Fixture *f, gconstpointer data)
{
  g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
  g_autoptr(GBytes) body = NULL;
  RawResponse raw = { 0 };

  cp_handshake_request_set_app_protocol_version (request, 2);
  expect_handshake_error (f, request, CP_ERROR_FAILED_PRECONDITION, "version mismatch");
  /* Before self_id. */
  cp_handshake_request_set_self_id (request, "9bad");
  expect_handshake_error (f, request, CP_ERROR_FAILED_PRECONDITION, "version mismatch");

  body = cp_message_serialize (CP_MESSAGE (request), CP_CODEC_PROTO, NULL);
  raw_request (f->url, "POST", CP_PROCEDURE_HANDSHAKE, "application/proto", body, &raw);
  g_assert_cmpuint (raw.status, ==, 400);
  g_assert_cmpstr (raw.content_type, ==, "application/json");
  g_assert_nonnull (strstr (raw.body, "\"code\":\"failed_precondition\""));
  raw_response_clear (&raw);
}

static void
test_handshake_bad_self_id (Fixture *f, gconstpointer data)
{
  const char *bad[] = { "9lives", "-x", "a b", "a/b", "caf\xc3\xa9", NULL };
  g_autofree char *long_id = g_strnfill (129, 'a');

  for (guint i = 0; bad[i] != NULL; i++)
    {
      g_autoptr(CpHandshakeRequest) request = handshake_request_new ();

      cp_handshake_request_set_self_id (request, bad[i]);
      expect_handshake_error (f, request, CP_ERROR_INVALID_ARGUMENT, "self_id");
    }

  {
    g_autoptr(CpHandshakeRequest) request = handshake_request_new ();

    cp_handshake_request_set_self_id (request, long_id);
    expect_handshake_error (f, request, CP_ERROR_INVALID_ARGUMENT, "self_id");
  }
}

static gboolean
is_base64url_padded_token (const char *token)
{
  if (strlen (token) != 44 || token[43] != '=')
    return FALSE;
  for (guint i = 0; i < 43; i++)
    if (!g_ascii_isalnum (token[i]) && token[i] != '-' && token[i] != '_')
      return FALSE;
  return TRUE;
}

static void
test_handshake_self_id (Fixture *f, gconstpointer data)
{
  g_autoptr(GRegex) id_format = g_regex_new ("^cache-plugin\\.v2-[0-9a-f]{4}$", 0, 0, NULL);
  g_autofree char *first_token = NULL;
  g_autofree char *first_id = NULL;
  g_autofree char *max_id = g_strnfill (128, 'Z');

  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
      g_autoptr(CpHandshakeResponse) response = NULL;
      g_autoptr(GError) error = NULL;
      const char *runtime_id, *token;
      gsize len;
      g_autofree guchar *decoded = NULL;

      cp_handshake_request_set_self_id (request, "Cache-Plugin.v2");
      cp_handshake_request_set_self_version (request, "2.0.0");
      response = CP_HANDSHAKE_RESPONSE (call (f->channel, CP_PROCEDURE_HANDSHAKE, request,
                                              CP_TYPE_HANDSHAKE_RESPONSE, CP_CODEC_PROTO, &error));
      g_assert_no_error (error);

      runtime_id = cp_handshake_response_get_runtime_id (response);
      token = cp_handshake_response_get_runtime_token (response);
      g_assert_true (g_regex_match (id_format, runtime_id, 0, NULL));
      g_assert_true (is_base64url_padded_token (token));
      {
        g_autofree char *std = g_strdup (token);
        g_strdelimit (std, "-", '+');
        g_strdelimit (std, "_", '/');
        decoded = g_base64_decode (std, &len);
        g_assert_cmpuint (len, ==, 32);
      }

      /* The server knows what it issued. */
      g_assert_true (cp_server_check_runtime_token (f->server, runtime_id, token));
      g_assert_false (cp_server_check_runtime_token (f->server, runtime_id, "x"));
      g_assert_cmpstr (cp_server_lookup_runtime_self_id (f->server, runtime_id), ==, "Cache-Plugin.v2");

      if (round == 0)
        {
          first_token = g_strdup (token);
          first_id = g_strdup (runtime_id);
        }
      else
        /* A fresh identity on every handshake. */
        g_assert_cmpstr (first_token, !=, token);
    }

  /* 128 characters is the limit, inclusive. */
  {
    g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
    g_autoptr(CpMessage) response = NULL;
    g_autoptr(GError) error = NULL;

    cp_handshake_request_set_self_id (request, max_id);
    response = call (f->channel, CP_PROCEDURE_HANDSHAKE, request,
                     CP_TYPE_HANDSHAKE_RESPONSE, CP_CODEC_PROTO, &error);
    g_assert_no_error (error);
    g_assert_true (g_str_has_prefix (cp_handshake_response_get_runtime_id (CP_HANDSHAKE_RESPONSE (response)),
                                     "zzzz"));
  }
}

/* ------------------------------------------------------------------ */
/* Health                                                               */

static CpServingStatus
check_status (Fixture     *f,
              const char  *service,
              GError     **error)
{
  g_autoptr(CpHealthCheckRequest) request = cp_health_check_request_new ();
  g_autoptr(CpMessage) response = NULL;

  cp_health_check_request_set_service (request, service);
  response = call (f->channel, CP_PROCEDURE_HEALTH_CHECK, request,
                   CP_TYPE_HEALTH_CHECK_RESPONSE, CP_CODEC_PROTO, error);
  if (response == NULL)
    return CP_SERVING_STATUS_UNSPECIFIED;
  return cp_health_check_response_get_status (CP_HEALTH_CHECK_RESPONSE (response));
}

static void
test_health_check (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (check_status (f, "", &error), ==, CP_SERVING_STATUS_SERVING);
  g_assert_no_error (error);
  g_assert_cmpint (check_status (f, "plugintest.v1.SlowService", &error), ==, CP_SERVING_STATUS_SERVING);
  g_assert_no_error (error);
  /* by plugin name, as connect-plugin-go's hosts ask */
  g_assert_cmpint (check_status (f, "test", &error), ==, CP_SERVING_STATUS_SERVING);
  g_assert_no_error (error);

  check_status (f, "nope.v1.Nothing", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_clear_error (&error);

  cp_server_set_serving_status (f->server, "plugintest.v1.SlowService", CP_SERVING_STATUS_NOT_SERVING);
  g_assert_cmpint (check_status (f, "plugintest.v1.SlowService", &error), ==, CP_SERVING_STATUS_NOT_SERVING);
  g_assert_no_error (error);
}

typedef struct {
  GArray *statuses;   /* CpServingStatus */
  gboolean closed;
  GError *error;
} WatchLog;

static void
on_watch_message (CpResponseStream *stream,
                  CpMessage        *message,
                  gpointer          user_data)
{
  WatchLog *log = user_data;
  CpServingStatus status = cp_health_check_response_get_status (CP_HEALTH_CHECK_RESPONSE (message));

  g_array_append_val (log->statuses, status);
}

static void
on_watch_closed (CpResponseStream *stream,
                 const GError     *error,
                 gpointer          user_data)
{
  WatchLog *log = user_data;

  log->closed = TRUE;
  log->error = error != NULL ? g_error_copy (error) : NULL;
}

static CpResponseStream *
start_watch (Fixture    *f,
             const char *service,
             WatchLog   *log)
{
  g_autoptr(CpHealthCheckRequest) request = cp_health_check_request_new ();
  CpResponseStream *stream;

  log->statuses = g_array_new (FALSE, FALSE, sizeof (CpServingStatus));
  cp_health_check_request_set_service (request, service);
  stream = cp_channel_call_server_stream (f->channel, CP_PROCEDURE_HEALTH_WATCH, CP_MESSAGE (request),
                                          CP_TYPE_HEALTH_CHECK_RESPONSE, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_watch_message), log);
  g_signal_connect (stream, "closed", G_CALLBACK (on_watch_closed), log);
  cp_response_stream_start (stream);
  return stream;
}

static void
wait_for_count (WatchLog *log,
                guint     n)
{
  while (log->statuses->len < n && !log->closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (log->statuses->len, >=, n);
}

#define STATUS_AT(log, i) g_array_index ((log)->statuses, CpServingStatus, (i))

static void
test_health_watch (Fixture *f, gconstpointer data)
{
  WatchLog all = { 0 }, unknown = { 0 };
  g_autoptr(CpResponseStream) s1 = start_watch (f, "", &all);
  g_autoptr(CpResponseStream) s2 = start_watch (f, "later.v1.Service", &unknown);
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;

  /* The current status at once. */
  wait_for_count (&all, 1);
  g_assert_cmpint (STATUS_AT (&all, 0), ==, CP_SERVING_STATUS_SERVING);
  wait_for_count (&unknown, 1);
  g_assert_cmpint (STATUS_AT (&unknown, 0), ==, CP_SERVING_STATUS_SERVICE_UNKNOWN);

  /* Changes only: the duplicate NOT_SERVING is not sent. */
  cp_server_set_serving_status (f->server, "", CP_SERVING_STATUS_NOT_SERVING);
  cp_server_set_serving_status (f->server, "", CP_SERVING_STATUS_NOT_SERVING);
  cp_server_set_serving_status (f->server, "", CP_SERVING_STATUS_SERVING);
  wait_for_count (&all, 3);
  g_assert_cmpint (STATUS_AT (&all, 1), ==, CP_SERVING_STATUS_NOT_SERVING);
  g_assert_cmpint (STATUS_AT (&all, 2), ==, CP_SERVING_STATUS_SERVING);

  /* A name that appears later. */
  cp_server_set_serving_status (f->server, "later.v1.Service", CP_SERVING_STATUS_SERVING);
  wait_for_count (&unknown, 2);
  g_assert_cmpint (STATUS_AT (&unknown, 1), ==, CP_SERVING_STATUS_SERVING);

  /* Streams stay open... */
  g_assert_false (all.closed);
  g_assert_false (unknown.closed);

  /* ...until the server shuts down: NOT_SERVING, then a clean end. */
  cp_server_shutdown_async (f->server, NULL, store_result, &result);
  g_assert_true (cp_server_shutdown_finish (f->server, wait_for_result (&result), &error));
  g_assert_no_error (error);
  g_object_unref (result);
  while (!all.closed || !unknown.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (all.statuses->len, ==, 4);
  g_assert_cmpint (STATUS_AT (&all, 3), ==, CP_SERVING_STATUS_NOT_SERVING);
  g_assert_no_error (all.error);
  g_assert_cmpuint (unknown.statuses->len, ==, 3);
  g_assert_cmpint (STATUS_AT (&unknown, 2), ==, CP_SERVING_STATUS_NOT_SERVING);
  g_assert_no_error (unknown.error);
  g_assert_cmpuint (f->n_closed, ==, 1);

  g_array_unref (all.statuses);
  g_array_unref (unknown.statuses);
}

static void
test_health_watch_client_gone (Fixture *f, gconstpointer data)
{
  WatchLog log = { 0 };
  CpResponseStream *stream = start_watch (f, "", &log);

  wait_for_count (&log, 1);
  cp_response_stream_cancel (stream);
  g_object_unref (stream);
  /* The server forgets the stream; changes after that go nowhere. */
  for (guint i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  cp_server_set_serving_status (f->server, "", CP_SERVING_STATUS_NOT_SERVING);
  g_assert_cmpuint (log.statuses->len, ==, 1);
  g_array_unref (log.statuses);
  g_clear_error (&log.error);
}

/* ------------------------------------------------------------------ */
/* /healthz, /readyz                                                    */

typedef struct {
  guint status;
  GString *body;
  gboolean done;
} LocalResponse;

static void
local_head (CpHttpExchange *exchange, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  ((LocalResponse *) user_data)->status = status;
}

static void
local_chunk (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data)
{
  gsize len;
  const char *data = g_bytes_get_data (chunk, &len);
  g_string_append_len (((LocalResponse *) user_data)->body, data, len);
}

static void
local_end (CpHttpExchange *exchange, gpointer user_data)
{
  ((LocalResponse *) user_data)->done = TRUE;
}

/* The same probe through the in-process transport (works after the
 * listeners are gone). */
static void
local_get (CpServer      *server,
           const char    *path,
           LocalResponse *out)
{
  static const CpHttpLocalCallbacks callbacks = { local_head, local_chunk, local_end };
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  CpHttpExchange *exchange;

  out->body = g_string_new (NULL);
  exchange = cp_http_exchange_new_local ("GET", path, headers, &callbacks, out, NULL);
  cp_http_exchange_local_end_body (exchange);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (cp_server_get_rpc_server (server)),
                                 exchange);
  while (!out->done)
    g_main_context_iteration (NULL, TRUE);
  cp_http_exchange_unref (exchange);
}

static void
test_http_probes (Fixture *f, gconstpointer data)
{
  RawResponse raw = { 0 };
  LocalResponse local = { 0 };
  GAsyncResult *result = NULL;

  raw_request (f->url, "GET", "/healthz", NULL, NULL, &raw);
  g_assert_cmpuint (raw.status, ==, 200);
  g_assert_cmpstr (raw.body, ==, "ok");
  raw_response_clear (&raw);

  raw_request (f->url, "GET", "/readyz", NULL, NULL, &raw);
  g_assert_cmpuint (raw.status, ==, 200);
  g_assert_cmpstr (raw.body, ==, "ready");
  raw_response_clear (&raw);

  /* Readiness follows the whole server's status. */
  cp_server_set_serving_status (f->server, "", CP_SERVING_STATUS_NOT_SERVING);
  raw_request (f->url, "GET", "/readyz", NULL, NULL, &raw);
  g_assert_cmpuint (raw.status, ==, 503);
  g_assert_cmpstr (raw.body, ==, "not ready");
  raw_response_clear (&raw);
  cp_server_set_serving_status (f->server, "", CP_SERVING_STATUS_SERVING);

  /* After shutdown: not ready, still alive. */
  cp_server_shutdown_async (f->server, NULL, store_result, &result);
  g_assert_true (cp_server_shutdown_finish (f->server, wait_for_result (&result), NULL));
  g_object_unref (result);

  local_get (f->server, "/readyz", &local);
  g_assert_cmpuint (local.status, ==, 503);
  g_assert_cmpstr (local.body->str, ==, "not ready");
  g_string_free (local.body, TRUE);
  memset (&local, 0, sizeof local);
  local_get (f->server, "/healthz", &local);
  g_assert_cmpuint (local.status, ==, 200);
  g_assert_cmpstr (local.body->str, ==, "ok");
  g_string_free (local.body, TRUE);
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */

static void
assert_start_fails (CpServer   *server,
                    CpError     code,
                    const char *message_part)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = cp_server_listen (server, "127.0.0.1:0", &error);

  g_assert_null (url);
  g_assert_error (error, CP_ERROR, (gint) code);
  g_assert_nonnull (strstr (error->message, message_part));
  /* Nothing listens. */
  g_assert_null (cp_server_get_url (server));
  g_assert_false (cp_server_get_serving (server));
}

static CpPlugin *
slow_plugin (const char *name)
{
  CpPlugin *plugin = cp_plugin_new (name, "1.0.0");
  g_autoptr(CpSkeleton) skeleton = CP_SKELETON (plugintest_slow_service_skeleton_new ());

  cp_plugin_add_service (plugin, skeleton);
  return plugin;
}

static void
test_validation (void)
{
  {
    g_autoptr(CpServer) server = cp_server_new ();
    g_autoptr(CpPlugin) a = slow_plugin ("same");
    g_autoptr(CpPlugin) b = cp_plugin_new ("same", "2.0.0");
    g_autoptr(CpSkeleton) other = CP_SKELETON (plugintest_other_service_skeleton_new ());

    cp_plugin_add_service (b, other);
    cp_server_add_plugin (server, a);
    cp_server_add_plugin (server, b);
    assert_start_fails (server, CP_ERROR_INVALID_ARGUMENT, "two plugins are named \"same\"");
  }
  {
    g_autoptr(CpServer) server = cp_server_new ();
    g_autoptr(CpPlugin) a = slow_plugin ("a");
    g_autoptr(CpPlugin) b = slow_plugin ("b");

    cp_server_add_plugin (server, a);
    cp_server_add_plugin (server, b);
    assert_start_fails (server, CP_ERROR_INVALID_ARGUMENT,
                        "/plugintest.v1.SlowService/ is already served by plugin \"a\"");
  }
  {
    /* A plugin may not take a built-in service's path. */
    g_autoptr(CpServer) server = cp_server_new ();
    g_autoptr(CpPlugin) a = cp_plugin_new ("fake", "1");
    g_autoptr(CpSkeleton) skeleton = CP_SKELETON (cp_handshake_service_skeleton_new ());

    cp_plugin_add_service (a, skeleton);
    cp_server_add_plugin (server, a);
    assert_start_fails (server, CP_ERROR_INVALID_ARGUMENT, "built-in HandshakeService");
  }
  {
    g_autoptr(CpServer) server = cp_server_new ();
    g_autoptr(CpPlugin) a = cp_plugin_new ("empty", "1");

    cp_plugin_add_service_descriptor (a, plugintest_slow_service_get_descriptor ());
    cp_server_add_plugin (server, a);
    assert_start_fails (server, CP_ERROR_UNIMPLEMENTED,
                        "service plugintest.v1.SlowService has no implementation");
  }
  {
    g_autoptr(CpServer) server = cp_server_new ();
    g_autoptr(CpPlugin) a = cp_plugin_new ("nothing", "1");

    cp_server_add_plugin (server, a);
    assert_start_fails (server, CP_ERROR_UNIMPLEMENTED, "serves no service");
  }
  {
    g_autoptr(CpPlugin) a = slow_plugin ("twice");
    g_autoptr(CpSkeleton) again = CP_SKELETON (plugintest_slow_service_skeleton_new ());
    g_autoptr(GError) error = NULL;

    cp_plugin_add_service (a, again);
    g_assert_false (cp_plugin_validate (a, TRUE, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "added twice"));
  }
}

static void
test_plugin_descriptors (void)
{
  g_autoptr(CpPlugin) host_side = cp_plugin_new ("test", NULL);
  g_autoptr(GPtrArray) provides = NULL;
  g_autoptr(CpSkeleton) skeleton = CP_SKELETON (plugintest_slow_service_skeleton_new ());
  g_autoptr(GError) error = NULL;
  CpServiceDescriptor *d = plugintest_slow_service_get_descriptor ();

  /* A host-side plugin: descriptors only, valid without implementations. */
  cp_plugin_add_service_descriptor (host_side, d);
  g_assert_true (cp_plugin_validate (host_side, FALSE, &error));
  g_assert_no_error (error);
  g_assert_true (cp_plugin_lookup_descriptor (host_side, "plugintest.v1.SlowService") == d);
  g_assert_true (cp_plugin_lookup_descriptor (host_side, "/plugintest.v1.SlowService/") == d);
  g_assert_null (cp_plugin_lookup_descriptor (host_side, "plugintest.v1.OtherService"));
  g_assert_null (cp_plugin_get_implementation (host_side, d));
  g_assert_false (cp_plugin_validate (host_side, TRUE, NULL));

  /* Adding the implementation completes the same entry. */
  cp_plugin_add_service (host_side, skeleton);
  g_assert_true (cp_plugin_get_implementation (host_side, d) == skeleton);
  g_assert_true (cp_plugin_validate (host_side, TRUE, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (cp_plugin_get_service_path (host_side), ==, "plugintest.v1.SlowService");

  /* provides[].path goes out as given: it is the endpoint path the plugin
   * registers with its host (connect-plugin-go's examples write
   * "/pkg.Service/"). */
  cp_plugin_add_provides (host_side, "a", NULL, "/plugintest.v1.SlowService/");
  cp_plugin_add_provides (host_side, "b", NULL, "plugintest.v1.SlowService");
  cp_plugin_add_provides (host_side, "c", NULL, "/services/slow/");
  cp_plugin_add_provides (host_side, "d", NULL, NULL);
  provides = cp_plugin_get_provides (host_side);
  g_assert_cmpuint (provides->len, ==, 4);
  g_assert_cmpstr (cp_service_declaration_get_path (provides->pdata[0]), ==, "/plugintest.v1.SlowService/");
  g_assert_cmpstr (cp_service_declaration_get_path (provides->pdata[1]), ==, "plugintest.v1.SlowService");
  g_assert_cmpstr (cp_service_declaration_get_path (provides->pdata[2]), ==, "/services/slow/");
  g_assert_cmpstr (cp_service_declaration_get_path (provides->pdata[3]), ==, "");
}

/* ------------------------------------------------------------------ */
/* Graceful shutdown                                                    */

static void
test_shutdown_in_flight (Fixture *f, gconstpointer data)
{
  g_autoptr(PlugintestSlowRequest) request = plugintest_slow_request_new ();
  g_autoptr(PlugintestSlowResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  GAsyncResult *call_result = NULL, *shutdown_result = NULL;
  g_autoptr(CpChannel) late = NULL;
  g_autoptr(CpMessage) refused = NULL;

  f->hold = TRUE;
  plugintest_slow_request_set_text (request, "drain me");
  cp_channel_call_async (f->channel, "/plugintest.v1.SlowService/Slow", CP_MESSAGE (request),
                         PLUGINTEST_TYPE_SLOW_RESPONSE, options, NULL, store_result, &call_result);
  while (f->held->len == 0)
    g_main_context_iteration (NULL, TRUE);

  cp_server_shutdown_async (f->server, NULL, store_result, &shutdown_result);
  g_assert_false (cp_server_get_serving (f->server));
  g_assert_cmpint (cp_server_get_serving_status (f->server, ""), ==, CP_SERVING_STATUS_NOT_SERVING);

  /* The drain waits for the accepted call. */
  for (guint i = 0; i < 20; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_null (shutdown_result);
  g_assert_null (call_result);
  g_assert_cmpuint (f->n_closed, ==, 0);

  /* New connections are refused meanwhile. */
  late = cp_channel_new (f->url, &error);
  g_assert_no_error (error);
  refused = call (late, "/plugintest.v1.SlowService/Slow", request,
                  PLUGINTEST_TYPE_SLOW_RESPONSE, CP_CODEC_PROTO, &error);
  g_assert_null (refused);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);

  /* Answer it: the call completes, then the shutdown. */
  {
    g_autoptr(PlugintestSlowResponse) answer = plugintest_slow_response_new ();

    plugintest_slow_response_set_text (answer, "drained");
    cp_invocation_return_message (f->held->pdata[0], CP_MESSAGE (answer));
  }
  response = PLUGINTEST_SLOW_RESPONSE (cp_channel_call_finish (f->channel, wait_for_result (&call_result), &error));
  g_assert_no_error (error);
  g_assert_cmpstr (plugintest_slow_response_get_text (response), ==, "drained");
  g_assert_true (cp_server_shutdown_finish (f->server, wait_for_result (&shutdown_result), &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f->n_closed, ==, 1);
  g_object_unref (call_result);
  g_object_unref (shutdown_result);
}

static void
test_shutdown_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr(PlugintestSlowRequest) request = plugintest_slow_request_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) call_error = NULL;
  g_autoptr(CpMessage) response = NULL;
  GAsyncResult *call_result = NULL, *shutdown_result = NULL;

  f->hold = TRUE;
  g_object_set (f->server, "shutdown-timeout-ms", 50, NULL);
  cp_channel_call_async (f->channel, "/plugintest.v1.SlowService/Slow", CP_MESSAGE (request),
                         PLUGINTEST_TYPE_SLOW_RESPONSE, NULL, NULL, store_result, &call_result);
  while (f->held->len == 0)
    g_main_context_iteration (NULL, TRUE);

  /* A call that never ends is cut when the timeout passes. */
  cp_server_shutdown_async (f->server, NULL, store_result, &shutdown_result);
  g_assert_false (cp_server_shutdown_finish (f->server, wait_for_result (&shutdown_result), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpuint (f->n_closed, ==, 1);

  response = cp_channel_call_finish (f->channel, wait_for_result (&call_result), &call_error);
  g_assert_null (response);
  g_assert_nonnull (call_error);
  g_object_unref (call_result);
  g_object_unref (shutdown_result);
}

/* ------------------------------------------------------------------ */
/* PluginControl, PluginIdentity                                        */

static void
test_control (Fixture *f, gconstpointer data)
{
  g_autoptr(CpGetHealthRequest) health_request = cp_get_health_request_new ();
  g_autoptr(CpShutdownRequest) shutdown_request = cp_shutdown_request_new ();
  g_autoptr(CpGetHealthResponse) health = NULL;
  g_autoptr(CpShutdownResponse) ack = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) missing = NULL;
  const char *deps[] = { "logger", NULL };

  health = CP_GET_HEALTH_RESPONSE (call_auth (f->channel, BEARER, CP_PROCEDURE_CONTROL_GET_HEALTH, health_request,
                                         CP_TYPE_GET_HEALTH_RESPONSE, CP_CODEC_PROTO, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cp_get_health_response_get_state (health), ==, CP_HEALTH_STATE_HEALTHY);
  g_clear_object (&health);

  cp_server_set_health (f->server, CP_HEALTH_STATE_DEGRADED, "logger is gone", deps);
  health = CP_GET_HEALTH_RESPONSE (call_auth (f->channel, BEARER, CP_PROCEDURE_CONTROL_GET_HEALTH, health_request,
                                         CP_TYPE_GET_HEALTH_RESPONSE, CP_CODEC_JSON, &error));
  g_assert_no_error (error);
  g_assert_cmpint (cp_get_health_response_get_state (health), ==, CP_HEALTH_STATE_DEGRADED);
  g_assert_cmpstr (cp_get_health_response_get_reason (health), ==, "logger is gone");
  missing = cp_get_health_response_get_unavailable_dependencies (health);
  g_assert_cmpstrv (missing, deps);

  /* Shutdown: acknowledged, then a graceful shutdown. */
  cp_shutdown_request_set_reason (shutdown_request, "test over");
  ack = CP_SHUTDOWN_RESPONSE (call_auth (f->channel, BEARER, CP_PROCEDURE_CONTROL_SHUTDOWN, shutdown_request,
                                    CP_TYPE_SHUTDOWN_RESPONSE, CP_CODEC_PROTO, &error));
  g_assert_no_error (error);
  g_assert_true (cp_shutdown_response_get_acknowledged (ack));
  g_assert_cmpuint (f->n_shutdown_requested, ==, 1);
  while (f->n_closed == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (cp_server_get_serving (f->server));
}

static void
test_control_disabled (void)
{
  g_autoptr(CpServer) server = cp_server_new ();
  g_autoptr(CpPlugin) plugin = slow_plugin ("plain");
  g_autoptr(CpGetHealthRequest) request = cp_get_health_request_new ();
  g_autoptr(CpGetPluginInfoRequest) info_request = cp_get_plugin_info_request_new ();
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  /* Off by default: only the handshake and health are served. In process. */
  cp_server_add_plugin (server, plugin);
  g_assert_true (cp_server_start (server, &error));
  g_assert_no_error (error);
  g_assert_true (cp_server_get_serving (server));
  channel = cp_channel_new_in_process (cp_server_get_rpc_server (server));

  response = call (channel, CP_PROCEDURE_CONTROL_GET_HEALTH, request,
                   CP_TYPE_GET_HEALTH_RESPONSE, CP_CODEC_PROTO, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);
  response = call (channel, CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO, info_request,
                   CP_TYPE_GET_PLUGIN_INFO_RESPONSE, CP_CODEC_PROTO, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  g_clear_error (&error);

  {
    g_autoptr(CpHandshakeRequest) hs = handshake_request_new ();
    g_autoptr(GPtrArray) plugins = NULL;
    const char *requested[] = { "plain", NULL };

    cp_handshake_request_set_requested_plugins (hs, requested);
    response = call (channel, CP_PROCEDURE_HANDSHAKE, hs, CP_TYPE_HANDSHAKE_RESPONSE,
                     CP_CODEC_PROTO, &error);
    g_assert_no_error (error);
    plugins = cp_handshake_response_get_plugins (CP_HANDSHAKE_RESPONSE (response));
    g_assert_cmpuint (plugins->len, ==, 1);
  }
  cp_server_close (server);
}

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  (*(guint *) user_data)++;
}

static void
test_identity (Fixture *f, gconstpointer data)
{
  g_autoptr(CpGetPluginInfoRequest) info_request = cp_get_plugin_info_request_new ();
  g_autoptr(CpGetPluginInfoResponse) info = NULL;
  g_autoptr(CpSetRuntimeIdentityRequest) set = cp_set_runtime_identity_request_new ();
  g_autoptr(CpSetRuntimeIdentityResponse) ack = NULL;
  g_autoptr(CpMessage) refused = NULL;
  g_autoptr(GPtrArray) provides = NULL;
  g_autoptr(GHashTable) metadata = NULL;
  g_autoptr(GError) error = NULL;
  guint n_notify = 0;

  info = CP_GET_PLUGIN_INFO_RESPONSE (call_auth (f->channel, BEARER, CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO, info_request,
                                            CP_TYPE_GET_PLUGIN_INFO_RESPONSE, CP_CODEC_PROTO, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (cp_get_plugin_info_response_get_self_id (info), ==, "test");
  g_assert_cmpstr (cp_get_plugin_info_response_get_self_version (info), ==, "1.2.3");
  provides = cp_get_plugin_info_response_get_provides (info);
  g_assert_cmpuint (provides->len, ==, 1);
  g_assert_cmpstr (cp_service_declaration_get_path (provides->pdata[0]), ==, "/plugintest.v1.SlowService/");
  metadata = cp_get_plugin_info_response_get_metadata (info);
  g_assert_cmpstr (g_hash_table_lookup (metadata, "team"), ==, "plugins");

  g_signal_connect (f->server, "notify::runtime-id", G_CALLBACK (count_notify), &n_notify);

  cp_set_runtime_identity_request_set_runtime_id (set, "test-ab12");
  cp_set_runtime_identity_request_set_runtime_token (set, "secret");
  cp_set_runtime_identity_request_set_host_url (set, "http://127.0.0.1:9999");
  ack = CP_SET_RUNTIME_IDENTITY_RESPONSE (call_auth (f->channel, BEARER, CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY, set,
                                                CP_TYPE_SET_RUNTIME_IDENTITY_RESPONSE, CP_CODEC_PROTO, &error));
  g_assert_no_error (error);
  g_assert_true (cp_set_runtime_identity_response_get_acknowledged (ack));
  g_assert_cmpstr (cp_server_get_runtime_id (f->server), ==, "test-ab12");
  g_assert_cmpstr (cp_server_get_runtime_token (f->server), ==, "secret");
  g_assert_cmpstr (cp_server_get_host_url (f->server), ==, "http://127.0.0.1:9999");
  g_assert_cmpuint (n_notify, ==, 1);

  /* An empty runtime id is refused and changes nothing. */
  cp_set_runtime_identity_request_set_runtime_id (set, "");
  refused = call_auth (f->channel, BEARER, CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY, set,
                  CP_TYPE_SET_RUNTIME_IDENTITY_RESPONSE, CP_CODEC_PROTO, &error);
  g_assert_null (refused);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (cp_server_get_runtime_id (f->server), ==, "test-ab12");
  g_signal_handlers_disconnect_matched (f->server, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, &n_notify);
}

/* ------------------------------------------------------------------ */
/* Control secret (issue 12, items 7 and 8)                            */

/* Calls each PluginControl and PluginIdentity method with @authorization
 * (NULL: no header); returns how many succeeded, checks that the others
 * failed with `unauthenticated`. */
static guint
call_control_methods (CpChannel  *channel,
                      const char *authorization)
{
  g_autoptr(CpGetHealthRequest) health = cp_get_health_request_new ();
  g_autoptr(CpGetPluginInfoRequest) info = cp_get_plugin_info_request_new ();
  g_autoptr(CpSetRuntimeIdentityRequest) identity = cp_set_runtime_identity_request_new ();
  g_autoptr(CpShutdownRequest) shutdown = cp_shutdown_request_new ();
  struct { const char *procedure; gpointer request; GType type; } calls[] = {
    { CP_PROCEDURE_CONTROL_GET_HEALTH, health, CP_TYPE_GET_HEALTH_RESPONSE },
    { CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO, info, CP_TYPE_GET_PLUGIN_INFO_RESPONSE },
    { CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY, identity, CP_TYPE_SET_RUNTIME_IDENTITY_RESPONSE },
    /* Last: when it succeeds, the server goes away. */
    { CP_PROCEDURE_CONTROL_SHUTDOWN, shutdown, CP_TYPE_SHUTDOWN_RESPONSE },
  };
  guint ok = 0;

  cp_set_runtime_identity_request_set_runtime_id (identity, "test-ab12");
  cp_set_runtime_identity_request_set_runtime_token (identity, "token");
  cp_shutdown_request_set_reason (shutdown, "test over");
  for (gsize i = 0; i < G_N_ELEMENTS (calls); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response = call_auth (channel, authorization, calls[i].procedure,
                                                 calls[i].request, calls[i].type,
                                                 CP_CODEC_PROTO, &error);

      if (response != NULL)
        ok++;
      else
        {
          g_test_message ("%s with %s: %s", calls[i].procedure,
                          authorization ? authorization : "(none)", error->message);
          g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
        }
    }
  return ok;
}

static void
assert_nothing_changed (Fixture *f)
{
  g_assert_cmpuint (f->n_shutdown_requested, ==, 0);
  g_assert_cmpuint (f->n_closed, ==, 0);
  g_assert_true (cp_server_get_serving (f->server));
  g_assert_null (cp_server_get_runtime_id (f->server));
  g_assert_null (cp_server_get_runtime_token (f->server));
}

static void
test_control_refuses_bad_secrets (Fixture *f, gconstpointer data)
{
  const char *last_changed = "Bearer " "Zm9vYmFyLXNlY3JldC10b2tlbi0zMi1ieXRlcy1sb25h";
  const char *first_changed = "Bearer " "am9vYmFyLXNlY3JldC10b2tlbi0zMi1ieXRlcy1sb25n";
  const char *shorter = "Bearer " "Zm9vYmFyLXNlY3JldC10b2tlbi0zMi1ieXRlcy1sb25";
  const char *longer = BEARER "g";
  const char *bad[] = {
    NULL, "", last_changed, first_changed, shorter, longer,
    "Basic " SECRET, SECRET, "Bearer" SECRET, "Bearer ", "Bearer",
    "Token " SECRET, "Bearer " SECRET SECRET,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_cmpuint (call_control_methods (f->channel, bad[i]), ==, 0);
      assert_nothing_changed (f);
    }

  /* Two headers, both right: refused (their values are joined). */
  {
    g_autoptr(CpCallOptions) options = cp_call_options_new ();
    g_autoptr(CpGetHealthRequest) request = cp_get_health_request_new ();
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(CpMessage) response = NULL;
    g_autoptr(GError) error = NULL;
    SoupMessageHeaders *headers = cp_call_options_get_request_headers (options);

    soup_message_headers_append (headers, "Authorization", BEARER);
    soup_message_headers_append (headers, "Authorization", BEARER);
    cp_channel_call_async (f->channel, CP_PROCEDURE_CONTROL_GET_HEALTH, CP_MESSAGE (request),
                           CP_TYPE_GET_HEALTH_RESPONSE, options, NULL, store_result, &result);
    response = cp_channel_call_finish (f->channel, wait_for_result (&result), &error);
    g_assert_null (response);
    g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  }

  /* The scheme is case-insensitive (RFC 9110 §11.1); the secret is not. */
  g_assert_cmpuint (call_control_methods (f->channel, "bearer " SECRET), ==, 4);
  g_assert_cmpstr (cp_server_get_runtime_id (f->server), ==, "test-ab12");
  g_assert_cmpuint (f->n_shutdown_requested, ==, 1);
  while (f->n_closed == 0)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_control_right_secret (Fixture *f, gconstpointer data)
{
  g_assert_cmpuint (call_control_methods (f->channel, BEARER), ==, 4);
  g_assert_cmpuint (f->n_shutdown_requested, ==, 1);
  while (f->n_closed == 0)
    g_main_context_iteration (NULL, TRUE);
}

static void
test_control_raw_shutdown (Fixture *f, gconstpointer data)
{
  g_autoptr(GBytes) body = g_bytes_new_static ("{}", 2);
  RawResponse raw = { 0 };

  /* What anyone on the machine could send: refused, and the plugin stays. */
  raw_request (f->url, "POST", CP_PROCEDURE_CONTROL_SHUTDOWN, "application/json", body, &raw);
  g_assert_cmpuint (raw.status, ==, 401);
  g_assert_nonnull (strstr (raw.body, "\"unauthenticated\""));
  raw_response_clear (&raw);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  assert_nothing_changed (f);
}

static CpServer *
control_server_new (CpChannel **channel)
{
  CpServer *server = cp_server_new ();
  g_autoptr(CpPlugin) plugin = slow_plugin ("plain");

  g_object_set (server, "plugin-control-enabled", TRUE, "identity-enabled", TRUE, NULL);
  cp_server_add_plugin (server, plugin);
  *channel = cp_channel_new_in_process (cp_server_get_rpc_server (server));
  return server;
}

static void
test_control_without_secret (void)
{
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpServer) server = control_server_new (&channel);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpGetHealthRequest) request = cp_get_health_request_new ();
  g_autoptr(CpMessage) response = NULL;

  /* No secret, no opt-in: nothing is served, whatever is presented. */
  g_unsetenv (CP_CONTROL_SECRET_ENV);
  g_assert_true (cp_server_start (server, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (call_control_methods (channel, NULL), ==, 0);
  g_assert_cmpuint (call_control_methods (channel, "Bearer "), ==, 0);
  g_assert_cmpuint (call_control_methods (channel, "Bearer anything"), ==, 0);
  response = call (channel, CP_PROCEDURE_CONTROL_GET_HEALTH, request,
                   CP_TYPE_GET_HEALTH_RESPONSE, CP_CODEC_PROTO, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_assert_nonnull (strstr (error->message, CP_CONTROL_SECRET_ENV));
  g_assert_true (cp_server_get_serving (server));
  g_clear_error (&error);

  /* An empty secret is no secret. */
  g_object_set (server, "control-secret", "", NULL);
  g_assert_cmpuint (call_control_methods (channel, "Bearer "), ==, 0);

  /* The explicit opt-in serves them without credentials. */
  g_object_set (server, "control-allow-unauthenticated", TRUE, NULL);
  g_assert_cmpuint (call_control_methods (channel, NULL), ==, 4);
  cp_server_close (server);
}

static void
test_control_opt_in_keeps_secret (void)
{
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpServer) server = control_server_new (&channel);
  g_autoptr(GError) error = NULL;

  /* With a secret, the opt-in changes nothing. */
  g_object_set (server, "control-secret", SECRET, "control-allow-unauthenticated", TRUE, NULL);
  g_assert_true (cp_server_start (server, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (call_control_methods (channel, NULL), ==, 0);
  g_assert_cmpuint (call_control_methods (channel, "Bearer wrong"), ==, 0);
  g_assert_cmpuint (call_control_methods (channel, BEARER), ==, 4);
  cp_server_close (server);
}

static void
test_control_secret_from_env (void)
{
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpServer) server = control_server_new (&channel);
  g_autoptr(GError) error = NULL;
  g_autofree char *secret = NULL;

  /* A launching host's secret: taken at start, gone from the environment. */
  g_setenv (CP_CONTROL_SECRET_ENV, SECRET, TRUE);
  g_assert_true (cp_server_start (server, &error));
  g_assert_no_error (error);
  g_assert_null (g_getenv (CP_CONTROL_SECRET_ENV));
  g_object_get (server, "control-secret", &secret, NULL);
  g_assert_cmpstr (secret, ==, SECRET);
  g_assert_cmpuint (call_control_methods (channel, NULL), ==, 0);
  g_assert_cmpuint (call_control_methods (channel, BEARER), ==, 4);
  cp_server_close (server);
}

/* ------------------------------------------------------------------ */
/* Interceptors                                                         */

/* Refuses SlowService calls without "Authorization: Bearer good"; lets the
 * built-in services through (they are intercepted too). */
#define TEST_TYPE_AUTH_INTERCEPTOR (test_auth_interceptor_get_type ())
G_DECLARE_FINAL_TYPE (TestAuthInterceptor, test_auth_interceptor, TEST, AUTH_INTERCEPTOR, CpServerInterceptor)

struct _TestAuthInterceptor
{
  CpServerInterceptor parent_instance;
  GString *seen;   /* procedures intercepted, "," separated */
};

G_DEFINE_FINAL_TYPE (TestAuthInterceptor, test_auth_interceptor, CP_TYPE_SERVER_INTERCEPTOR)

static gboolean
test_auth_interceptor_intercept (CpServerInterceptor  *interceptor,
                                 CpInvocation         *invocation,
                                 CpMessage            *request,
                                 GError              **error)
{
  TestAuthInterceptor *self = TEST_AUTH_INTERCEPTOR (interceptor);
  const char *procedure = cp_invocation_get_procedure (invocation);
  const char *auth = soup_message_headers_get_one (cp_invocation_get_request_headers (invocation),
                                                   "Authorization");

  g_string_append_printf (self->seen, "%s,", procedure);
  if (g_str_has_prefix (procedure, "/plugintest.v1.SlowService/") &&
      g_strcmp0 (auth, "Bearer good") != 0)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED, "who are you?");
      return FALSE;
    }
  return TRUE;
}

static void
test_auth_interceptor_finalize (GObject *object)
{
  g_string_free (TEST_AUTH_INTERCEPTOR (object)->seen, TRUE);
  G_OBJECT_CLASS (test_auth_interceptor_parent_class)->finalize (object);
}

static void
test_auth_interceptor_class_init (TestAuthInterceptorClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = test_auth_interceptor_finalize;
  CP_SERVER_INTERCEPTOR_CLASS (klass)->intercept = test_auth_interceptor_intercept;
}

static void
test_auth_interceptor_init (TestAuthInterceptor *self)
{
  self->seen = g_string_new (NULL);
}

static void
on_call_completed (CpServerInterceptor *observer,
                   CpInvocation        *invocation,
                   const GError        *error,
                   gpointer             user_data)
{
  GString *outcomes = user_data;

  g_string_append_printf (outcomes, "%s:%s,", cp_invocation_get_procedure (invocation),
                          error ? cp_error_code_to_string (error->code) : "ok");
}

static CpMessage *
call_slow (Fixture     *f,
           const char  *authorization,
           GError     **error)
{
  g_autoptr(PlugintestSlowRequest) request = plugintest_slow_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  GAsyncResult *result = NULL;
  CpMessage *response;

  plugintest_slow_request_set_text (request, "hi");
  if (authorization != NULL)
    soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                  "Authorization", authorization);
  cp_channel_call_async (f->channel, "/plugintest.v1.SlowService/Slow", CP_MESSAGE (request),
                         PLUGINTEST_TYPE_SLOW_RESPONSE, options, NULL, store_result, &result);
  response = cp_channel_call_finish (f->channel, wait_for_result (&result), error);
  g_object_unref (result);
  return response;
}

static void
test_interceptors (Fixture *f, gconstpointer data)
{
  g_autoptr(TestAuthInterceptor) auth = g_object_new (TEST_TYPE_AUTH_INTERCEPTOR, NULL);
  g_autoptr(CpServerInterceptor) observer = cp_server_interceptor_new ();
  g_autoptr(GString) outcomes = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  g_autofree char *expected = NULL;
  RawResponse raw = { 0 };

  /* Chain: observer first, so that it sees the refusals too. */
  g_signal_connect (observer, "completed", G_CALLBACK (on_call_completed), outcomes);
  cp_server_add_interceptor (f->server, observer);
  cp_server_add_interceptor (f->server, CP_SERVER_INTERCEPTOR (auth));

  /* Built-in services are intercepted, and pass. */
  {
    g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
    g_autoptr(CpMessage) handshake = call (f->channel, CP_PROCEDURE_HANDSHAKE, request,
                                           CP_TYPE_HANDSHAKE_RESPONSE, CP_CODEC_PROTO, &error);
    g_assert_no_error (error);
    g_assert_nonnull (handshake);
  }
  g_assert_cmpint (check_status (f, "", &error), ==, CP_SERVING_STATUS_SERVING);
  g_assert_no_error (error);

  /* A plugin method without credentials: refused before the handler. */
  f->hold = TRUE;
  response = call_slow (f, NULL, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_assert_cmpstr (error->message, ==, "who are you?");
  g_assert_cmpuint (f->held->len, ==, 0);
  g_clear_error (&error);

  /* With them, the handler answers. */
  f->hold = FALSE;
  response = call_slow (f, "Bearer good", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (plugintest_slow_response_get_text (PLUGINTEST_SLOW_RESPONSE (response)), ==, "hi");

  /* Plain HTTP probes are not RPC calls: not intercepted. */
  raw_request (f->url, "GET", CP_HEALTHZ_PATH, NULL, NULL, &raw);
  g_assert_cmpuint (raw.status, ==, 200);
  raw_response_clear (&raw);

  g_assert_cmpstr (auth->seen->str, ==,
                   CP_PROCEDURE_HANDSHAKE "," CP_PROCEDURE_HEALTH_CHECK ","
                   "/plugintest.v1.SlowService/Slow,/plugintest.v1.SlowService/Slow,");
  expected = g_strconcat (CP_PROCEDURE_HANDSHAKE ":ok,", CP_PROCEDURE_HEALTH_CHECK ":ok,",
                          "/plugintest.v1.SlowService/Slow:unauthenticated,",
                          "/plugintest.v1.SlowService/Slow:ok,", NULL);
  g_assert_cmpstr (outcomes->str, ==, expected);
}

/* The library's CpAuthInterceptor on a CpServer, as docs/engine.md
 * "Authentication" installs it: the handshake and health checks public,
 * the plugin's methods behind a bearer token. */
static void
test_auth_interceptor (Fixture *f, gconstpointer data)
{
  g_autoptr(CpAuthInterceptor) auth = cp_auth_interceptor_new ();
  g_autoptr(CpAuthProvider) bearer = cp_token_auth_provider_new_bearer ();
  g_autoptr(PlugintestSlowResponse) answer = plugintest_slow_response_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (bearer), "good", "host-1");
  cp_auth_interceptor_add_provider (auth, bearer);
  cp_auth_interceptor_add_public_procedure (auth, CP_PROCEDURE_HANDSHAKE);
  cp_auth_interceptor_add_public_procedure (auth, "/connectplugin.health.v1.HealthService/" "*");
  cp_server_add_interceptor (f->server, CP_SERVER_INTERCEPTOR (auth));

  {
    g_autoptr(CpHandshakeRequest) request = handshake_request_new ();
    g_autoptr(CpMessage) handshake = call (f->channel, CP_PROCEDURE_HANDSHAKE, request,
                                           CP_TYPE_HANDSHAKE_RESPONSE, CP_CODEC_PROTO, &error);
    g_assert_no_error (error);
    g_assert_nonnull (handshake);
  }
  g_assert_cmpint (check_status (f, "", &error), ==, CP_SERVING_STATUS_SERVING);
  g_assert_no_error (error);

  f->hold = TRUE;
  response = call_slow (f, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);
  response = call_slow (f, "Bearer bad", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_assert_null (strstr (error->message, "bad"));
  g_clear_error (&error);
  g_assert_cmpuint (f->held->len, ==, 0);

  /* The handler sees the principal (answered from the held invocation). */
  {
    g_autoptr(PlugintestSlowRequest) request = plugintest_slow_request_new ();
    g_autoptr(CpCallOptions) options = cp_call_options_new ();
    GAsyncResult *result = NULL;

    plugintest_slow_request_set_text (request, "hi");
    soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                  "Authorization", "Bearer good");
    cp_channel_call_async (f->channel, "/plugintest.v1.SlowService/Slow", CP_MESSAGE (request),
                           PLUGINTEST_TYPE_SLOW_RESPONSE, options, NULL, store_result, &result);
    while (f->held->len == 0)
      g_main_context_iteration (NULL, TRUE);
    g_assert_cmpstr (cp_invocation_get_principal (f->held->pdata[0]), ==, "host-1");
    g_assert_cmpstr (cp_invocation_get_auth_scheme (f->held->pdata[0]), ==, "bearer");
    plugintest_slow_response_set_text (answer, "ok");
    cp_invocation_return_message (f->held->pdata[0], CP_MESSAGE (answer));
    response = cp_channel_call_finish (f->channel, wait_for_result (&result), &error);
    g_object_unref (result);
    g_assert_no_error (error);
    g_assert_nonnull (response);
  }
}

/* CpServer forwards the engine's limits (finite by default). */
/* The issued identities are bounded (4,096): past that the oldest goes
 * (its token fails from then on), the newest ones stay valid. */
static void
test_identity_cap (void)
{
  g_autoptr(CpServer) server = cp_server_new ();
  g_autofree char *first_id = NULL, *first_token = NULL;
  g_autofree char *second_id = NULL, *second_token = NULL;
  g_autofree char *last_id = NULL, *last_token = NULL;
  const guint cap = 4096;

  gint64 issued;

  cp_server_issue_runtime_identity (server, "first", &first_id, &first_token);
  /* Age is by expiry time, in microseconds: the first must be the oldest. */
  issued = g_get_monotonic_time ();
  while (g_get_monotonic_time () == issued)
    ;
  cp_server_issue_runtime_identity (server, "second", &second_id, &second_token);
  for (guint i = 2; i < cap; i++)
    cp_server_issue_runtime_identity (server, "flood", NULL, NULL);
  /* At the cap: both still valid. */
  g_assert_true (cp_server_check_runtime_token (server, first_id, first_token));
  g_assert_true (cp_server_check_runtime_token (server, second_id, second_token));
  /* One more: only the oldest went. */
  cp_server_issue_runtime_identity (server, "last", &last_id, &last_token);
  g_assert_false (cp_server_check_runtime_token (server, first_id, first_token));
  g_assert_true (cp_server_check_runtime_token (server, second_id, second_token));
  g_assert_true (cp_server_check_runtime_token (server, last_id, last_token));
}

static void
test_engine_limits (void)
{
  g_autoptr(CpServer) server = cp_server_new ();
  CpRpcServer *rpc = cp_server_get_rpc_server (server);
  guint value = 0;

  g_object_get (server, "max-receive-size", &value, NULL);
  g_assert_cmpuint (value, ==, 4 * 1024 * 1024);
  g_object_get (server, "max-send-queue-size", &value, NULL);
  g_assert_cmpuint (value, ==, 4 * 1024 * 1024);

  g_object_set (server, "max-receive-size", 1000, "max-send-queue-size", 2000, NULL);
  g_object_get (rpc, "max-receive-size", &value, NULL);
  g_assert_cmpuint (value, ==, 1000);
  g_object_get (rpc, "max-send-queue-size", &value, NULL);
  g_assert_cmpuint (value, ==, 2000);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/plugin/handshake/binary", test_handshake_binary);
  ADD ("/plugin/handshake/json", test_handshake_json);
  ADD ("/plugin/handshake/no-plugins", test_handshake_no_plugins);
  ADD ("/plugin/handshake/bad-cookie", test_handshake_bad_cookie);
  ADD ("/plugin/handshake/core-version", test_handshake_core_version);
  ADD ("/plugin/handshake/app-version", test_handshake_app_version);
  ADD ("/plugin/handshake/bad-self-id", test_handshake_bad_self_id);
  ADD ("/plugin/handshake/self-id", test_handshake_self_id);
  ADD ("/plugin/health/check", test_health_check);
  ADD ("/plugin/health/watch", test_health_watch);
  ADD ("/plugin/health/watch-client-gone", test_health_watch_client_gone);
  ADD ("/plugin/http/probes", test_http_probes);
  ADD ("/plugin/shutdown/in-flight", test_shutdown_in_flight);
  ADD ("/plugin/shutdown/timeout", test_shutdown_timeout);
  ADD ("/plugin/control/get-health-and-shutdown", test_control);
  ADD ("/plugin/identity", test_identity);
  ADD ("/plugin/control/auth/refuses-bad-secrets", test_control_refuses_bad_secrets);
  ADD ("/plugin/control/auth/right-secret", test_control_right_secret);
  ADD ("/plugin/control/auth/raw-shutdown", test_control_raw_shutdown);
  ADD ("/plugin/interceptors", test_interceptors);
  ADD ("/plugin/auth-interceptor", test_auth_interceptor);
#undef ADD
  g_test_add_func ("/plugin/control/disabled", test_control_disabled);
  g_test_add_func ("/plugin/control/auth/without-secret", test_control_without_secret);
  g_test_add_func ("/plugin/control/auth/opt-in-keeps-secret", test_control_opt_in_keeps_secret);
  g_test_add_func ("/plugin/control/auth/secret-from-env", test_control_secret_from_env);
  g_test_add_func ("/plugin/validation", test_validation);
  g_test_add_func ("/plugin/plugin/descriptors", test_plugin_descriptors);
  g_test_add_func ("/plugin/server/engine-limits", test_engine_limits);
  g_test_add_func ("/plugin/identity/cap", test_identity_cap);

  return g_test_run ();
}
