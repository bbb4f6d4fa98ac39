/* cpctl.c: the command line of connectplugin servers (as gdbus call is D-Bus's)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   cpctl [OPTION…] plugins URL [PLUGIN…]
 *   cpctl [OPTION…] health URL [SERVICE]
 *   cpctl [OPTION…] describe URL [SERVICE]
 *   cpctl [OPTION…] call URL SERVICE/METHOD [JSON | -]
 *   cpctl [OPTION…] launch EXECUTABLE [ARG…] -- COMMAND [ARG…]
 *
 * Built on the public API only. `plugins` and `health` use the generated
 * proxies of the library's own protocol; `call` needs no schema: it speaks
 * Connect's JSON codecs (application/json for unary calls,
 * application/connect+json for streams) and passes the JSON through, so any
 * method of any server can be called; `describe` asks the server's gRPC
 * reflection (CpServer:reflection-enabled) the same way. data/cpctl.1 is
 * the manual.
 */
#include <stdio.h>
#include <string.h>
#include <glib/gprintf.h>
#include <gio/gunixsocketaddress.h>
#include <json-glib/json-glib.h>
#include <connectplugin.h>

#include "cpctl-describe.h"

#define EXIT_RPC_ERROR 1
#define EXIT_USAGE 2

static char **opt_headers;
static gint64 opt_timeout_ms;
static char *opt_cacert;
static char *opt_cert;
static char *opt_key;
static GTlsCertificate *client_certificate;   /* loaded from opt_cert/opt_key */
static gboolean opt_json;
static gboolean opt_watch;
static char *opt_kind;

static const GOptionEntry entries[] = {
  { "header", 'H', 0, G_OPTION_ARG_STRING_ARRAY, &opt_headers,
    "Add a request header (\"Name: value\"; repeatable)", "HEADER" },
  { "timeout-ms", 't', 0, G_OPTION_ARG_INT64, &opt_timeout_ms,
    "Deadline of each call, in milliseconds (Connect-Timeout-Ms)", "MS" },
  { "cacert", 0, 0, G_OPTION_ARG_FILENAME, &opt_cacert,
    "Trust the CA certificates of FILE (PEM) for https:// URLs", "FILE" },
  { "cert", 0, 0, G_OPTION_ARG_FILENAME, &opt_cert,
    "Present the client certificate of FILE (PEM) to https:// servers (mutual TLS)", "FILE" },
  { "key", 0, 0, G_OPTION_ARG_FILENAME, &opt_key,
    "The private key of --cert (PEM; default: in the --cert file)", "FILE" },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json,
    "plugins, health: print the responses as JSON", NULL },
  { "watch", 'w', 0, G_OPTION_ARG_NONE, &opt_watch,
    "health: follow the status (grpc.health.v1 Watch) until interrupted", NULL },
  { "kind", 'k', 0, G_OPTION_ARG_STRING, &opt_kind,
    "call: unary or stream (default: unary for one request message, "
    "falling back to a stream when the method is one)", "KIND" },
  G_OPTION_ENTRY_NULL
};

static int run_command (int argc, char **argv);

static int
usage_error (const char *format,
             ...) G_GNUC_PRINTF (1, 2);

static int
usage_error (const char *format,
             ...)
{
  va_list args;

  va_start (args, format);
  g_printerr ("cpctl: ");
  g_vfprintf (stderr, format, args);
  g_printerr ("\nTry \"cpctl --help\".\n");
  va_end (args);
  return EXIT_USAGE;
}

static int
rpc_error (const GError *error)
{
  if (error->domain == CP_ERROR)
    g_printerr ("cpctl: %s: %s\n", cp_error_code_to_string (error->code), error->message);
  else
    g_printerr ("cpctl: %s\n", error->message);
  return EXIT_RPC_ERROR;
}

/* ---- what every command needs ---- */

static GTlsDatabase *
tls_database (GError **error)
{
  if (opt_cacert == NULL)
    return NULL;
  return g_tls_file_database_new (opt_cacert, error);
}

/* --cert/--key, loaded once: FALSE with @error when given but unusable. */
static gboolean
load_client_certificate (GError **error)
{
  if (client_certificate != NULL)
    return TRUE;
  if (opt_key != NULL && opt_cert == NULL)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--key needs --cert");
      return FALSE;
    }
  if (opt_cert == NULL)
    return TRUE;
  client_certificate = opt_key != NULL
                       ? g_tls_certificate_new_from_files (opt_cert, opt_key, error)
                       : g_tls_certificate_new_from_file (opt_cert, error);
  return client_certificate != NULL;
}

/* Appends the --header values to @headers ("Name: value", both trimmed). */
static gboolean
add_headers (SoupMessageHeaders  *headers,
             GError             **error)
{
  for (char **h = opt_headers; h != NULL && *h != NULL; h++)
    {
      const char *colon = strchr (*h, ':');
      g_autofree char *name = NULL;
      g_autofree char *value = NULL;

      if (colon == NULL || colon == *h)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "header \"%s\" is not \"Name: value\"", *h);
          return FALSE;
        }
      name = g_strstrip (g_strndup (*h, (gsize) (colon - *h)));
      value = g_strstrip (g_strdup (colon + 1));
      soup_message_headers_append (headers, name, value);
    }
  return TRUE;
}

/* The plugin `launch` started: its URL is reached through its discovery
 * (AutoMTLS: the host's certificate, pinned to the plugin's CA). */
static CpProcessDiscovery *launched_discovery;

static CpChannel *
channel_new (const char  *url,
             GError     **error)
{
  g_autoptr(GTlsDatabase) database = tls_database (error);
  CpChannel *channel;

  if (opt_cacert != NULL && database == NULL)
    return NULL;
  if (!load_client_certificate (error))
    return NULL;
  if (launched_discovery != NULL &&
      g_strcmp0 (url, cp_process_discovery_get_url (launched_discovery)) == 0)
    channel = cp_discovery_create_channel (CP_DISCOVERY (launched_discovery), url, error);
  else
    channel = cp_channel_new (url, error);
  if (channel != NULL && database != NULL)
    g_object_set (channel, "tls-database", database, NULL);
  if (channel != NULL && client_certificate != NULL)
    g_object_set (channel, "tls-certificate", client_certificate, NULL);
  return channel;
}

static CpCallOptions *
call_options_new (GError **error)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();

  if (opt_timeout_ms > 0)
    cp_call_options_set_timeout_ms (options, opt_timeout_ms);
  if (!add_headers (cp_call_options_get_request_headers (options), error))
    return NULL;
  return g_steal_pointer (&options);
}

/* ---- plugins ---- */

static void
print_strings (const char *label,
               GPtrArray  *values,
               const char *(*get) (gpointer))
{
  if (values == NULL || values->len == 0)
    return;
  g_print ("    %s:", label);
  for (guint i = 0; i < values->len; i++)
    g_print ("%s %s", i > 0 ? "," : "", get (values->pdata[i]));
  g_print ("\n");
}

static const char *
declaration_type (gpointer declaration)
{
  return cp_service_declaration_get_type_ (declaration);
}

static const char *
dependency_type (gpointer dependency)
{
  return cp_service_dependency_get_type_ (dependency);
}

static int
cmd_plugins (int    argc,
             char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpHandshakeService) proxy = NULL;
  g_autoptr(CpHandshakeRequest) request = cp_handshake_request_new ();
  g_autoptr(CpHandshakeResponse) response = NULL;
  g_autoptr(CpCallOptions) options = NULL;
  GPtrArray *plugins, *capabilities;

  if (argc < 2)
    return usage_error ("plugins takes the server's URL, and optionally plugin names");
  if ((options = call_options_new (&error)) == NULL)
    return usage_error ("%s", error->message);
  if ((channel = channel_new (argv[1], &error)) == NULL)
    return rpc_error (error);
  proxy = cp_handshake_service_proxy_new (channel);
  cp_handshake_request_set_core_protocol_version (request, CP_CORE_PROTOCOL_VERSION);
  cp_handshake_request_set_app_protocol_version (request, 1);
  cp_handshake_request_set_magic_cookie_key (request, CP_MAGIC_COOKIE_KEY);
  cp_handshake_request_set_magic_cookie_value (request, CP_MAGIC_COOKIE_VALUE);
  if (argc > 2)
    cp_handshake_request_set_requested_plugins (request, (const char * const *) argv + 2);
  response = cp_handshake_service_call_handshake_sync (proxy, request, options, NULL, &error);
  if (response == NULL)
    return rpc_error (error);
  if (argc == 2)
    {
      /* The plugins are listed only when asked for by name: a connectplugin
       * server says their names in its metadata. */
      g_autoptr(GHashTable) metadata = cp_handshake_response_get_server_metadata (response);
      const char *names = metadata ? g_hash_table_lookup (metadata, "plugins") : NULL;

      if (names != NULL && *names != '\0')
        {
          g_auto(GStrv) requested = g_strsplit (names, ",", -1);

          cp_handshake_request_set_requested_plugins (request, (const char * const *) requested);
          g_clear_object (&response);
          response = cp_handshake_service_call_handshake_sync (proxy, request, options, NULL, &error);
          if (response == NULL)
            return rpc_error (error);
        }
    }

  if (opt_json)
    {
      g_autofree char *json = cp_message_to_json (CP_MESSAGE (response));

      g_print ("%s\n", json);
      return 0;
    }
  g_print ("protocol %d, application protocol %d\n",
           cp_handshake_response_get_core_protocol_version (response),
           cp_handshake_response_get_app_protocol_version (response));
  plugins = cp_handshake_response_get_plugins (response);
  for (guint i = 0; plugins != NULL && i < plugins->len; i++)
    {
      CpPluginInfo *info = plugins->pdata[i];
      g_autoptr(GPtrArray) provides = cp_plugin_info_get_provides (info);
      g_autoptr(GPtrArray) requires = cp_plugin_info_get_requires_ (info);

      g_print ("%s %s\n", cp_plugin_info_get_name (info), cp_plugin_info_get_version (info));
      if (*cp_plugin_info_get_service_path (info) != '\0')
        g_print ("    path: %s\n", cp_plugin_info_get_service_path (info));
      print_strings ("provides", provides, declaration_type);
      print_strings ("requires", requires, dependency_type);
    }
  capabilities = cp_handshake_response_get_host_capabilities (response);
  for (guint i = 0; capabilities != NULL && i < capabilities->len; i++)
    {
      CpCapability *capability = capabilities->pdata[i];

      g_print ("capability %s %s at %s\n", cp_capability_get_type_ (capability),
               cp_capability_get_version (capability), cp_capability_get_endpoint (capability));
    }
  if (plugins != NULL)
    g_ptr_array_unref (plugins);
  if (capabilities != NULL)
    g_ptr_array_unref (capabilities);
  return 0;
}

/* ---- health ---- */

static const char *
status_name (CpServingStatus status)
{
  switch (status)
    {
    case CP_SERVING_STATUS_SERVING: return "SERVING";
    case CP_SERVING_STATUS_NOT_SERVING: return "NOT_SERVING";
    case CP_SERVING_STATUS_SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
    case CP_SERVING_STATUS_UNSPECIFIED:
    default: return "UNKNOWN";
    }
}

static void
print_health (CpHealthCheckResponse *response)
{
  if (opt_json)
    {
      g_autofree char *json = cp_message_to_json (CP_MESSAGE (response));

      g_print ("%s\n", json);
    }
  else
    g_print ("%s\n", status_name (cp_health_check_response_get_status (response)));
}

typedef struct {
  GMainLoop *loop;
  GError *error;
} Watch;

static void
watch_message (CpResponseStream *stream,
               CpMessage        *message,
               Watch            *watch)
{
  print_health (CP_HEALTH_CHECK_RESPONSE (message));
}

static void
watch_closed (CpResponseStream *stream,
              const GError     *error,
              Watch            *watch)
{
  if (error != NULL)
    watch->error = g_error_copy (error);
  g_main_loop_quit (watch->loop);
}

static int
cmd_health (int    argc,
            char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpHealthService) proxy = NULL;
  g_autoptr(CpHealthCheckRequest) request = cp_health_check_request_new ();
  g_autoptr(CpCallOptions) options = NULL;

  if (argc < 2 || argc > 3)
    return usage_error ("health takes the server's URL and optionally a service name");
  if ((options = call_options_new (&error)) == NULL)
    return usage_error ("%s", error->message);
  if ((channel = channel_new (argv[1], &error)) == NULL)
    return rpc_error (error);
  proxy = cp_health_service_proxy_new (channel);
  cp_health_check_request_set_service (request, argc == 3 ? argv[2] : "");

  if (opt_watch)
    {
      Watch watch = { g_main_loop_new (NULL, FALSE), NULL };
      g_autoptr(CpResponseStream) stream = NULL;

      /* A watch has no deadline. */
      cp_call_options_set_timeout_ms (options, 0);
      stream = cp_health_service_call_watch (proxy, request, options);
      g_signal_connect (stream, "message", G_CALLBACK (watch_message), &watch);
      g_signal_connect (stream, "closed", G_CALLBACK (watch_closed), &watch);
      cp_response_stream_start (stream);
      g_main_loop_run (watch.loop);
      g_main_loop_unref (watch.loop);
      if (watch.error != NULL)
        {
          int status = rpc_error (watch.error);

          g_error_free (watch.error);
          return status;
        }
      return 0;
    }
  else
    {
      g_autoptr(CpHealthCheckResponse) response =
        cp_health_service_call_check_sync (proxy, request, options, NULL, &error);

      if (response == NULL)
        return rpc_error (error);
      print_health (response);
      return cp_health_check_response_get_status (response) == CP_SERVING_STATUS_SERVING ? 0 : 3;
    }
}

/* ---- call: Connect with the JSON codecs, no schema ---- */

typedef struct {
  SoupSession *session;
  char *base;               /* http(s)://host[:port][/prefix], no trailing slash */
} Target;

static void
target_clear (Target *target)
{
  g_clear_object (&target->session);
  g_clear_pointer (&target->base, g_free);
}

static gboolean
target_init (Target      *target,
             const char  *url,
             GError     **error)
{
  g_autoptr(GSocketConnectable) connectable = NULL;
  g_autoptr(GTlsDatabase) database = tls_database (error);
  gsize len;

  if (opt_cacert != NULL && database == NULL)
    return FALSE;
  if (!load_client_certificate (error))
    return FALSE;
  /* The plugin `launch` started: its discovery's AutoMTLS credentials,
   * unless given on the command line. */
  if (launched_discovery != NULL &&
      g_strcmp0 (url, cp_process_discovery_get_url (launched_discovery)) == 0)
    {
      g_autoptr(CpChannel) channel = cp_discovery_create_channel (CP_DISCOVERY (launched_discovery),
                                                                  url, NULL);

      if (channel != NULL && database == NULL)
        g_object_get (channel, "tls-database", &database, NULL);
      if (channel != NULL && client_certificate == NULL)
        g_object_get (channel, "tls-certificate", &client_certificate, NULL);
    }
  if (g_str_has_prefix (url, "unix:"))
    {
      connectable = G_SOCKET_CONNECTABLE (g_unix_socket_address_new (url + strlen ("unix:")));
      target->base = g_strdup ("http://localhost");
    }
  else if (g_str_has_prefix (url, "http://") || g_str_has_prefix (url, "https://"))
    target->base = g_strdup (url);
  else
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "\"%s\" is not an http://, https:// or unix: URL", url);
      return FALSE;
    }
  len = strlen (target->base);
  while (len > 0 && target->base[len - 1] == '/')
    target->base[--len] = '\0';
  target->session = g_object_new (SOUP_TYPE_SESSION, "timeout", 0, "idle-timeout", 0,
                                  "user-agent", "cpctl/" G_STRINGIFY (CP_MAJOR_VERSION) "."
                                                G_STRINGIFY (CP_MINOR_VERSION),
                                  "remote-connectable", connectable,
                                  "tls-database", database, NULL);
  return TRUE;
}

static SoupMessage *
call_message_new (Target      *target,
                  const char  *method,
                  const char  *content_type,
                  GBytes      *body,
                  GError     **error)
{
  g_autofree char *uri = g_strdup_printf ("%s/%s", target->base, method);
  g_autoptr(SoupMessage) message = soup_message_new (SOUP_METHOD_POST, uri);
  SoupMessageHeaders *headers;

  if (message == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "invalid URL %s", uri);
      return NULL;
    }
  if (client_certificate != NULL)
    soup_message_set_tls_client_certificate (message, client_certificate);
  headers = soup_message_get_request_headers (message);
  soup_message_headers_replace (headers, "Connect-Protocol-Version", "1");
  if (opt_timeout_ms > 0)
    {
      g_autofree char *ms = g_strdup_printf ("%" G_GINT64_FORMAT, opt_timeout_ms);

      soup_message_headers_replace (headers, "Connect-Timeout-Ms", ms);
    }
  if (!add_headers (headers, error))
    return NULL;
  soup_message_set_request_body_from_bytes (message, content_type, body);
  return g_steal_pointer (&message);
}

/* A Connect error body ({"code": …, "message": …}) as an error. */
static GError *
error_from_json (const char *json,
                 gsize       len,
                 guint       http_status)
{
  g_autoptr(GRegex) code_re = g_regex_new ("\"code\"\\s*:\\s*\"([a-z_]+)\"", 0, 0, NULL);
  g_autoptr(GRegex) message_re = g_regex_new ("\"message\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"", 0, 0, NULL);
  g_autoptr(GMatchInfo) code_match = NULL;
  g_autoptr(GMatchInfo) message_match = NULL;
  g_autofree char *text = g_utf8_make_valid (json, (gssize) len);
  g_autofree char *code = NULL;
  g_autofree char *message = NULL;
  CpError error_code = CP_ERROR_UNKNOWN;

  if (g_regex_match (code_re, text, 0, &code_match))
    {
      code = g_match_info_fetch (code_match, 1);
      if (!cp_error_code_from_string (code, &error_code))
        error_code = CP_ERROR_UNKNOWN;
    }
  else
    error_code = cp_error_code_from_http_status (http_status);
  if (g_regex_match (message_re, text, 0, &message_match))
    message = g_match_info_fetch (message_match, 1);
  if (message != NULL)
    return g_error_new (CP_ERROR, error_code, "%s", message);
  return g_error_new (CP_ERROR, error_code, "HTTP status %u", http_status);
}

/* The call could not be made (connection refused, TLS, …): unavailable, as
 * the library's channel says. (CP_ERROR errors carry private data: a new
 * error, never an error whose domain is changed.) */
static int
transport_error (const char   *method,
                 const GError *error)
{
  g_autoptr(GError) rpc = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE, "%s: %s",
                                       method, error->message);

  return rpc_error (rpc);
}

/* One unary call; *unsupported is set on 415 (a streaming method). */
static int
call_unary (Target     *target,
            const char *method,
            const char *json,
            gboolean   *unsupported)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = g_bytes_new (json, strlen (json));
  g_autoptr(SoupMessage) message = call_message_new (target, method, "application/json", body, &error);
  g_autoptr(GBytes) response = NULL;
  const char *data;
  gsize len;
  guint status;

  *unsupported = FALSE;
  if (message == NULL)
    return usage_error ("%s", error->message);
  response = soup_session_send_and_read (target->session, message, NULL, &error);
  if (response == NULL)
    return transport_error (method, error);
  status = soup_message_get_status (message);
  data = g_bytes_get_data (response, &len);
  if (status == SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE)
    {
      *unsupported = TRUE;
      return 0;
    }
  if (status != SOUP_STATUS_OK)
    {
      g_autoptr(GError) rpc = error_from_json (data, len, status);

      return rpc_error (rpc);
    }
  fwrite (data, 1, len, stdout);
  g_print ("\n");
  return 0;
}

static void
append_envelope (GByteArray *body,
                 guint8      flags,
                 const char *data,
                 gsize       len)
{
  guint8 head[5] = { flags, (guint8) (len >> 24), (guint8) (len >> 16),
                     (guint8) (len >> 8), (guint8) len };

  g_byte_array_append (body, head, sizeof head);
  g_byte_array_append (body, (const guint8 *) data, (guint) len);
}

/* Reads exactly @len bytes; FALSE at a clean end before the first byte. */
static gboolean
read_exact (GInputStream  *in,
            guint8        *buffer,
            gsize          len,
            GError       **error)
{
  gsize got = 0;

  if (!g_input_stream_read_all (in, buffer, len, &got, NULL, error))
    return FALSE;
  if (got == 0 && len > 0)
    return FALSE;
  if (got != len)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "the stream ended inside a message");
      return FALSE;
    }
  return TRUE;
}

#define MAX_MESSAGE (64 * 1024 * 1024)

typedef void (*MessageFunc) (const char *json,
                             gsize       len,
                             gpointer    user_data);

/* A streaming call: @requests enveloped, @func called on each response
 * message as it arrives, then the end of the stream: FALSE with the
 * call's error. */
static gboolean
stream_call (Target       *target,
             const char   *method,
             GPtrArray    *requests,
             MessageFunc   func,
             gpointer      user_data,
             GError      **error)
{
  g_autoptr(GByteArray) body = g_byte_array_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(SoupMessage) message = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GError) local = NULL;
  guint status;

  for (guint i = 0; i < requests->len; i++)
    append_envelope (body, 0, requests->pdata[i], strlen (requests->pdata[i]));
  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&body));
  message = call_message_new (target, method, "application/connect+json", bytes, error);
  if (message == NULL)
    return FALSE;
  in = soup_session_send (target->session, message, NULL, &local);
  if (in == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE, "%s: %s", method, local->message);
      return FALSE;
    }
  status = soup_message_get_status (message);
  if (status != SOUP_STATUS_OK)
    {
      g_autoptr(GBytes) all = NULL;
      g_autoptr(GOutputStream) sink = g_memory_output_stream_new_resizable ();

      g_output_stream_splice (sink, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, NULL);
      all = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (sink));
      g_propagate_error (error, error_from_json (g_bytes_get_data (all, NULL),
                                                 g_bytes_get_size (all), status));
      return FALSE;
    }

  for (;;)
    {
      guint8 head[5];
      g_autofree guint8 *data = NULL;
      guint32 len;

      if (!read_exact (in, head, sizeof head, error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "the stream ended without its end message");
          return FALSE;
        }
      len = (guint32) head[1] << 24 | (guint32) head[2] << 16 | (guint32) head[3] << 8 | head[4];
      if (len > MAX_MESSAGE)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                       "a message of %u bytes (more than %u)", len, MAX_MESSAGE);
          return FALSE;
        }
      data = g_malloc (len + 1);
      if (len > 0 && !read_exact (in, data, len, error))
        {
          if (error != NULL && *error == NULL)
            g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "the stream ended inside a message");
          return FALSE;
        }
      data[len] = '\0';
      if (head[0] & 0x01)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "a compressed message, though none was asked for");
          return FALSE;
        }
      if (head[0] & 0x02)
        {
          /* The end: {"error": {...}} or success. */
          if (strstr ((char *) data, "\"error\"") != NULL)
            {
              g_propagate_error (error, error_from_json ((char *) data, len, 200));
              return FALSE;
            }
          return TRUE;
        }
      func ((const char *) data, len, user_data);
    }
}

static void
print_line (const char *json,
            gsize       len,
            gpointer    user_data)
{
  fwrite (json, 1, len, stdout);
  g_print ("\n");
  fflush (stdout);
}

static int
call_stream (Target     *target,
             const char *method,
             GPtrArray  *requests)
{
  g_autoptr(GError) error = NULL;

  if (!stream_call (target, method, requests, print_line, NULL, &error))
    return rpc_error (error);
  return 0;
}

/* ---- describe: gRPC server reflection, over Connect with JSON ---- */

static void
collect (const char *json,
         gsize       len,
         gpointer    user_data)
{
  g_ptr_array_add (user_data, g_strndup (json, len));
}

/* One reflection request; its response, parsed. v1, else v1alpha. */
static JsonNode *
reflect (Target      *target,
         const char  *request,
         GError     **error)
{
  static const char * const methods[] = {
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
  };
  g_autoptr(GPtrArray) requests = g_ptr_array_new ();
  g_autoptr(GPtrArray) responses = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(JsonParser) parser = json_parser_new ();

  g_ptr_array_add (requests, (gpointer) request);
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(GError) local = NULL;

      if (stream_call (target, methods[i], requests, collect, responses, &local))
        break;
      if (!g_error_matches (local, CP_ERROR, CP_ERROR_UNIMPLEMENTED) || i + 1 == G_N_ELEMENTS (methods))
        {
          if (g_error_matches (local, CP_ERROR, CP_ERROR_UNIMPLEMENTED))
            g_set_error_literal (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                 "the server does not offer gRPC reflection "
                                 "(a CpServer needs reflection-enabled, or --reflection)");
          else
            g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
    }
  if (responses->len != 1)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "%u reflection answers to one request",
                   responses->len);
      return NULL;
    }
  if (!json_parser_load_from_data (parser, responses->pdata[0], -1, error))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "a reflection answer is not an object");
      return NULL;
    }
  return json_node_copy (json_parser_get_root (parser));
}

/* The answer's errorResponse as an error. */
static gboolean
reflection_ok (JsonObject  *answer,
               GError     **error)
{
  JsonObject *failure;

  if (!json_object_has_member (answer, "errorResponse"))
    return TRUE;
  failure = json_object_get_object_member (answer, "errorResponse");
  g_set_error (error, CP_ERROR,
               failure != NULL && json_object_get_int_member_with_default (failure, "errorCode", 0) == 5
                 ? CP_ERROR_NOT_FOUND : CP_ERROR_UNKNOWN,
               "%s", failure != NULL ? json_object_get_string_member_with_default (failure, "errorMessage", "")
                                     : "reflection error");
  return FALSE;
}

static int
describe_services (Target *target)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = reflect (target, "{\"listServices\": \"*\"}", &error);
  JsonObject *list;
  JsonArray *services;

  if (root == NULL || !reflection_ok (json_node_get_object (root), &error))
    return rpc_error (error);
  list = json_object_get_object_member (json_node_get_object (root), "listServicesResponse");
  services = list != NULL && json_object_has_member (list, "service")
             ? json_object_get_array_member (list, "service") : NULL;
  for (guint i = 0; services != NULL && i < json_array_get_length (services); i++)
    {
      JsonObject *service = json_array_get_object_element (services, i);

      if (service != NULL)
        g_print ("%s\n", json_object_get_string_member_with_default (service, "name", ""));
    }
  return 0;
}

static int
describe_service (Target     *target,
                  const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) request = NULL;
  g_autofree char *request_json = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  JsonObject *files;
  JsonArray *protos;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "fileContainingSymbol");
  json_builder_add_string_value (builder, name);
  json_builder_end_object (builder);
  request = json_builder_get_root (builder);
  request_json = json_to_string (request, FALSE);
  root = reflect (target, request_json, &error);
  if (root == NULL || !reflection_ok (json_node_get_object (root), &error))
    return rpc_error (error);
  files = json_object_get_object_member (json_node_get_object (root), "fileDescriptorResponse");
  protos = files != NULL && json_object_has_member (files, "fileDescriptorProto")
           ? json_object_get_array_member (files, "fileDescriptorProto") : NULL;
  for (guint i = 0; protos != NULL && i < json_array_get_length (protos); i++)
    {
      const char *base64 = json_array_get_string_element (protos, i);
      g_autofree guint8 *data = NULL;
      gsize len = 0;
      gboolean malformed;

      if (base64 == NULL)
        continue;
      data = g_base64_decode (base64, &len);
      if (cpctl_describe_service (data, len, name, out, &malformed))
        {
          g_print ("%s", out->str);
          return 0;
        }
      if (malformed)
        {
          g_autoptr(GError) bad = g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                               "the server sent a malformed descriptor");

          return rpc_error (bad);
        }
    }
  error = g_error_new (CP_ERROR, CP_ERROR_NOT_FOUND,
                       "%s is declared by the server's schema, but is not a service", name);
  return rpc_error (error);
}

static int
cmd_describe (int    argc,
              char **argv)
{
  g_autoptr(GError) error = NULL;
  Target target = { NULL, NULL };
  int status;

  if (argc < 2 || argc > 3)
    return usage_error ("describe takes the server's URL and optionally a service name");
  if (!target_init (&target, argv[1], &error))
    return rpc_error (error);
  status = argc == 2 ? describe_services (&target) : describe_service (&target, argv[2]);
  target_clear (&target);
  return status;
}

/* Request messages: the argument, or JSON lines on standard input for
 * "-" (or no argument). */
static GPtrArray *
read_requests (const char *argument)
{
  GPtrArray *requests = g_ptr_array_new_with_free_func (g_free);

  if (argument != NULL && g_strcmp0 (argument, "-") != 0)
    g_ptr_array_add (requests, g_strdup (argument));
  else
    {
      char line[65536];

      while (fgets (line, sizeof line, stdin) != NULL)
        {
          g_strstrip (line);
          if (*line != '\0')
            g_ptr_array_add (requests, g_strdup (line));
        }
    }
  return requests;
}

static int
cmd_call (int    argc,
          char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) requests = NULL;
  Target target = { NULL, NULL };
  const char *method;
  gboolean unary, stream, unsupported = FALSE;
  int status;

  if (argc < 3 || argc > 4)
    return usage_error ("call takes the server's URL, SERVICE/METHOD and optionally the JSON request");
  method = argv[2][0] == '/' ? argv[2] + 1 : argv[2];
  if (strchr (method, '/') == NULL)
    return usage_error ("\"%s\" is not SERVICE/METHOD", argv[2]);
  unary = opt_kind == NULL || g_str_equal (opt_kind, "unary");
  stream = opt_kind == NULL || g_str_equal (opt_kind, "stream");
  if (!unary && !stream)
    return usage_error ("--kind is unary or stream, not \"%s\"", opt_kind);
  if (!target_init (&target, argv[1], &error))
    return rpc_error (error);

  requests = read_requests (argc == 4 ? argv[3] : NULL);
  if (requests->len == 0 && argc == 4)
    g_ptr_array_add (requests, g_strdup ("{}"));
  if (unary && requests->len == 1)
    {
      status = call_unary (&target, method, requests->pdata[0], &unsupported);
      if (status != 0 || !unsupported || !stream)
        {
          if (unsupported)
            status = rpc_error (error = g_error_new (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                                     "%s is not a unary method", method));
          target_clear (&target);
          return status;
        }
    }
  else if (!stream)
    {
      target_clear (&target);
      return usage_error ("a unary call takes exactly one request message, not %u", requests->len);
    }
  status = call_stream (&target, method, requests);
  target_clear (&target);
  return status;
}

/* ---- launch ---- */

static void
launched (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  char *url = cp_process_discovery_start_finish (CP_PROCESS_DISCOVERY (source), result, &error);

  if (url == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, url, g_free);
  g_object_unref (task);
}

static void
stopped (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  cp_process_discovery_stop_finish (CP_PROCESS_DISCOVERY (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static int
cmd_launch (int    argc,
            char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) plugin_argv = g_ptr_array_new ();
  g_autoptr(GPtrArray) command = g_ptr_array_new ();
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(GTask) task = NULL;
  g_autofree char *url = NULL;
  gboolean done = FALSE;
  int i, status;

  for (i = 1; i < argc && g_strcmp0 (argv[i], "--") != 0; i++)
    g_ptr_array_add (plugin_argv, argv[i]);
  if (plugin_argv->len == 0 || i + 1 >= argc)
    return usage_error ("launch takes EXECUTABLE [ARG…] -- COMMAND [ARG…]");
  if (g_str_equal (argv[i + 1], "launch"))
    return usage_error ("launch cannot run launch");
  g_ptr_array_add (plugin_argv, NULL);

  discovery = cp_process_discovery_new ((const char * const *) plugin_argv->pdata);
  task = g_task_new (NULL, NULL, NULL, NULL);
  cp_process_discovery_start_async (discovery, NULL, launched, g_object_ref (task));
  while (!g_task_get_completed (task))
    g_main_context_iteration (NULL, TRUE);
  url = g_task_propagate_pointer (task, &error);
  if (url == NULL)
    return rpc_error (error);

  /* COMMAND URL ARG…: the launched plugin's URL first. */
  g_ptr_array_add (command, argv[i + 1]);
  g_ptr_array_add (command, url);
  for (int j = i + 2; j < argc; j++)
    g_ptr_array_add (command, argv[j]);
  g_ptr_array_add (command, NULL);
  launched_discovery = discovery;
  status = run_command ((int) command->len - 1, (char **) command->pdata);
  launched_discovery = NULL;

  cp_process_discovery_stop_async (discovery, NULL, stopped, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  return status;
}

/* ---- main ---- */

static int
run_command (int    argc,
             char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  const char *command = argv[0];

  /* Options may also follow the command (not after launch's "--"). */
  if (!g_str_equal (command, "launch"))
    {
      g_option_context_add_main_entries (context, entries, NULL);
      g_option_context_set_help_enabled (context, FALSE);
      if (!g_option_context_parse (context, &argc, &argv, &error))
        return usage_error ("%s", error->message);
    }
  if (g_str_equal (command, "plugins"))
    return cmd_plugins (argc, argv);
  if (g_str_equal (command, "health"))
    return cmd_health (argc, argv);
  if (g_str_equal (command, "call"))
    return cmd_call (argc, argv);
  if (g_str_equal (command, "describe"))
    return cmd_describe (argc, argv);
  if (g_str_equal (command, "launch"))
    return cmd_launch (argc, argv);
  return usage_error ("unknown command \"%s\"", command);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context =
    g_option_context_new ("COMMAND [ARG…] — call connectplugin servers");
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_strict_posix (context, TRUE);
  g_option_context_set_summary (context,
    "Commands:\n"
    "  plugins URL [PLUGIN…]               handshake; list plugins, versions, paths, capabilities\n"
    "  health URL [SERVICE]                grpc.health.v1 status (--watch follows it)\n"
    "  describe URL [SERVICE]              list the services, or show one (gRPC reflection)\n"
    "  call URL SERVICE/METHOD [JSON|-]    call any method with JSON (JSON lines on stdin with -)\n"
    "  launch EXECUTABLE [ARG…] -- COMMAND [ARG…]\n"
    "                                      launch a plugin, run COMMAND on its URL, stop it\n"
    "\n"
    "URL: http://HOST:PORT, https://HOST:PORT or unix:/PATH.");
  g_option_context_set_description (context,
    "Exit status: 0 on success, 1 when a call failed (the Connect code and message are\n"
    "printed on standard error), 2 for bad arguments, 3 when health is not SERVING.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error ("%s", error->message);
  if (opt_key != NULL && opt_cert == NULL)
    return usage_error ("--key needs --cert");
  if (argc < 2)
    return usage_error ("no command");
  return run_command (argc - 1, argv + 1);
}
