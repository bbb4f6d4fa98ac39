/* test-plugin-run.c: cp_server_run() in a plugin executable (examples/kv/kv-plugin)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <connectplugin.h>
#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>

#include "cp-plugin-constants.h"
#include "cp-plugin-protos.h"

static const char *plugin_path;

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;
  *out = g_object_ref (result);
}

#define SECRET "cnVuLXRlc3Qtc2VjcmV0LWZvci1rdi1wbHVnaW4tMzJi"

/* With "Authorization: @authorization" unless NULL. */
static CpMessage *
call_auth (CpChannel   *channel,
           const char  *authorization,
           const char  *procedure,
           gpointer     request,
           GType        response_type,
           GError     **error)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  GAsyncResult *result = NULL;
  CpMessage *response;

  if (authorization != NULL)
    soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                  "Authorization", authorization);
  cp_channel_call_async (channel, procedure, CP_MESSAGE (request), response_type, options,
                         NULL, store_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  response = cp_channel_call_finish (channel, result, error);
  g_object_unref (result);
  return response;
}

static CpMessage *
call (CpChannel   *channel,
      const char  *procedure,
      gpointer     request,
      GType        response_type,
      GError     **error)
{
  return call_auth (channel, NULL, procedure, request, response_type, error);
}

/* Starts the plugin (with CONNECTPLUGIN_CONTROL_SECRET=@secret_env unless
 * NULL); returns the first line of its stdout. */
static GSubprocess *
spawn_plugin_with_secret (const char * const *args,
                          const char         *listen_env,
                          const char         *port_env,
                          const char         *secret_env,
                          char              **first_line)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                                        G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  GSubprocess *process;

  g_subprocess_launcher_unsetenv (launcher, CP_LISTEN_ENV);
  g_subprocess_launcher_unsetenv (launcher, "PORT");
  g_subprocess_launcher_unsetenv (launcher, CP_CONTROL_SECRET_ENV);
  if (secret_env != NULL)
    g_subprocess_launcher_setenv (launcher, CP_CONTROL_SECRET_ENV, secret_env, TRUE);
  if (listen_env != NULL)
    g_subprocess_launcher_setenv (launcher, CP_LISTEN_ENV, listen_env, TRUE);
  if (port_env != NULL)
    g_subprocess_launcher_setenv (launcher, "PORT", port_env, TRUE);

  g_ptr_array_add (argv, (gpointer) plugin_path);
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);

  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  *first_line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  return process;
}

static GSubprocess *
spawn_plugin (const char * const *args,
              const char         *listen_env,
              const char         *port_env,
              char              **first_line)
{
  return spawn_plugin_with_secret (args, listen_env, port_env, NULL, first_line);
}

static void
assert_handshake (const char *url)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (url, &error);
  g_autoptr(CpHandshakeRequest) request = cp_handshake_request_new ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GPtrArray) plugins = NULL;
  const char *requested[] = { "kv", NULL };

  g_assert_no_error (error);
  cp_handshake_request_set_core_protocol_version (request, CP_CORE_PROTOCOL_VERSION);
  cp_handshake_request_set_app_protocol_version (request, 1);
  cp_handshake_request_set_magic_cookie_key (request, CP_MAGIC_COOKIE_KEY);
  cp_handshake_request_set_magic_cookie_value (request, CP_MAGIC_COOKIE_VALUE);
  cp_handshake_request_set_requested_plugins (request, requested);
  response = call (channel, CP_PROCEDURE_HANDSHAKE, request, CP_TYPE_HANDSHAKE_RESPONSE, &error);
  g_assert_no_error (error);
  plugins = cp_handshake_response_get_plugins (CP_HANDSHAKE_RESPONSE (response));
  g_assert_cmpuint (plugins->len, ==, 1);
  g_assert_cmpstr (cp_plugin_info_get_name (plugins->pdata[0]), ==, "kv");
  g_assert_cmpstr (cp_plugin_info_get_version (plugins->pdata[0]), ==, "1.0.0");
  g_assert_cmpstr (cp_plugin_info_get_service_path (plugins->pdata[0]), ==, "kv.v1.KVService");
}

static void
assert_exits_cleanly (GSubprocess *process)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (g_subprocess_wait (process, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
}

static void
test_run_listen_option_sigterm (void)
{
  const char *args[] = { "--listen", "127.0.0.1:0", NULL };
  g_autofree char *url = NULL;
  /* The option wins over the environment. */
  g_autoptr(GSubprocess) process = spawn_plugin (args, "unix:/nonexistent/dir/sock", "1", &url);

  g_assert_nonnull (url);
  g_assert_true (g_str_has_prefix (url, "http://127.0.0.1:"));
  assert_handshake (url);

  g_subprocess_send_signal (process, SIGTERM);
  assert_exits_cleanly (process);
}

static void
test_run_env_unix_control_shutdown (void)
{
  g_autofree char *dir = g_dir_make_tmp ("cp-plugin-XXXXXX", NULL);
  g_autofree char *socket_path = g_build_filename (dir, "kv.sock", NULL);
  g_autofree char *listen = g_strconcat ("unix:", socket_path, NULL);
  g_autofree char *url = NULL;
  g_autoptr(GSubprocess) process = spawn_plugin_with_secret (NULL, listen, "1", SECRET, &url);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpShutdownRequest) request = cp_shutdown_request_new ();
  g_autoptr(CpMessage) ack = NULL;

  /* CONNECTPLUGIN_LISTEN wins over PORT. */
  g_assert_cmpstr (url, ==, listen);
  assert_handshake (url);

  /* PluginControl is on for plugins run by cp_server_run(), behind the
   * secret the host gave. */
  channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  cp_shutdown_request_set_reason (request, "host closing");
  ack = call_auth (channel, "Bearer wrong", CP_PROCEDURE_CONTROL_SHUTDOWN, request,
                   CP_TYPE_SHUTDOWN_RESPONSE, &error);
  g_assert_null (ack);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);
  ack = call_auth (channel, "Bearer " SECRET, CP_PROCEDURE_CONTROL_SHUTDOWN, request,
                   CP_TYPE_SHUTDOWN_RESPONSE, &error);
  g_assert_no_error (error);
  g_assert_true (cp_shutdown_response_get_acknowledged (CP_SHUTDOWN_RESPONSE (ack)));

  assert_exits_cleanly (process);
  g_assert_false (g_file_test (socket_path, G_FILE_TEST_EXISTS));
  g_rmdir (dir);
}

/* Started by hand, without a secret: Shutdown is refused, the plugin
 * serves on, and SIGTERM still stops it. */
static void
test_run_no_secret_refuses_shutdown (void)
{
  const char *args[] = { "--listen", "127.0.0.1:0", NULL };
  g_autofree char *url = NULL;
  g_autoptr(GSubprocess) process = spawn_plugin (args, NULL, NULL, &url);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpShutdownRequest) request = cp_shutdown_request_new ();
  g_autoptr(CpMessage) ack = NULL;

  g_assert_nonnull (url);
  channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  ack = call (channel, CP_PROCEDURE_CONTROL_SHUTDOWN, request, CP_TYPE_SHUTDOWN_RESPONSE, &error);
  g_assert_null (ack);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_assert_nonnull (strstr (error->message, "--insecure-control"));
  g_clear_error (&error);
  ack = call_auth (channel, "Bearer guess", CP_PROCEDURE_CONTROL_SHUTDOWN, request,
                   CP_TYPE_SHUTDOWN_RESPONSE, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
  g_clear_error (&error);

  assert_handshake (url);
  g_subprocess_send_signal (process, SIGTERM);
  assert_exits_cleanly (process);
}

/* --insecure-control: for hosts that cannot send a secret. */
static void
test_run_insecure_control (void)
{
  const char *args[] = { "--listen", "127.0.0.1:0", "--insecure-control", NULL };
  g_autofree char *url = NULL;
  g_autoptr(GSubprocess) process = spawn_plugin (args, NULL, NULL, &url);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpShutdownRequest) request = cp_shutdown_request_new ();
  g_autoptr(CpMessage) ack = NULL;

  g_assert_nonnull (url);
  channel = cp_channel_new (url, &error);
  g_assert_no_error (error);
  ack = call (channel, CP_PROCEDURE_CONTROL_SHUTDOWN, request, CP_TYPE_SHUTDOWN_RESPONSE, &error);
  g_assert_no_error (error);
  g_assert_true (cp_shutdown_response_get_acknowledged (CP_SHUTDOWN_RESPONSE (ack)));
  assert_exits_cleanly (process);
}

static guint16
free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_socket_bind (socket, any, TRUE, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
test_run_port_env (void)
{
  g_autofree char *port = g_strdup_printf ("%u", free_port ());
  g_autofree char *expected = g_strdup_printf ("http://127.0.0.1:%s", port);
  g_autofree char *url = NULL;
  g_autoptr(GSubprocess) process = spawn_plugin (NULL, NULL, port, &url);

  g_assert_cmpstr (url, ==, expected);
  assert_handshake (url);
  g_subprocess_send_signal (process, SIGINT);
  assert_exits_cleanly (process);
}

static void
test_run_bad_address (void)
{
  const char *args[] = { "--listen", "unix:/nonexistent/dir/sock", NULL };
  g_autofree char *url = NULL;
  g_autoptr(GSubprocess) process = spawn_plugin (args, NULL, NULL, &url);
  g_autoptr(GError) error = NULL;

  /* Nothing on stdout, a failure status. */
  g_assert_null (url);
  g_assert_true (g_subprocess_wait (process, NULL, &error));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 1);
}

static void
test_run_bad_option (void)
{
  const char *args[] = { "--no-such-option", NULL };
  g_autofree char *url = NULL;
  g_autoptr(GSubprocess) process = spawn_plugin (args, NULL, NULL, &url);
  g_autoptr(GError) error = NULL;

  g_assert_null (url);
  g_assert_true (g_subprocess_wait (process, NULL, &error));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  plugin_path = g_getenv ("KV_PLUGIN");
  if (plugin_path == NULL)
    {
      g_printerr ("KV_PLUGIN is not set: skipped\n");
      return 77;
    }

  g_test_add_func ("/plugin/run/listen-option-sigterm", test_run_listen_option_sigterm);
  g_test_add_func ("/plugin/run/env-unix-control-shutdown", test_run_env_unix_control_shutdown);
  g_test_add_func ("/plugin/run/port-env", test_run_port_env);
  g_test_add_func ("/plugin/run/no-secret-refuses-shutdown", test_run_no_secret_refuses_shutdown);
  g_test_add_func ("/plugin/run/insecure-control", test_run_insecure_control);
  g_test_add_func ("/plugin/run/bad-address", test_run_bad_address);
  g_test_add_func ("/plugin/run/bad-option", test_run_bad_option);

  return g_test_run ();
}
