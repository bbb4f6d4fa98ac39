/* test-kv-example.c: the KV example (examples/kv/) end to end, across languages
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each test starts a KV server as a child process on 127.0.0.1:0, reads the
 * URL from its first line of stdout, drives it, and stops it by PID
 * (SIGTERM) expecting a clean exit. The server is $KV_SERVER (a command
 * line; default: the C kv-server), so the same tests check the C, Vala and
 * Python implementations:
 *
 *   /examples/kv/client       kv-client (C host, generated Proxy): its whole transcript
 *   /examples/kv/proxy        this program as a host: typed calls, errors, Watch
 *   /examples/kv/python-host  python/kv_host.py (PyGObject through Kv-1.0.typelib)
 *   /examples/kv/gjs-watch    gjs/watch.js following Watch while this program Puts
 *
 * No sleeps: the URL line says a server is up, and Watch's response headers
 * (cp_invocation_send_headers () in the servers, "watching" from watch.js)
 * say the watch is registered.
 */
#include <gio/gio.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "kv.cp.h"

typedef struct {
  GSubprocess      *process;
  GDataInputStream *out;
  char             *url;
} Server;

static void
die_with_parent (gpointer user_data)
{
  /* A failed assertion aborts this program: its children must not outlive
   * it (they hold the test's stderr, and a server its port). */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocessLauncher *
launcher_new (void)
{
  /* The children inherit the environment meson sets: GI_TYPELIB_PATH and
   * LD_LIBRARY_PATH point into the build tree. */
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  return launcher;
}

static void
server_start (Server *server)
{
  const char *command = g_getenv ("KV_SERVER");
  g_auto(GStrv) argv = NULL;
  g_autoptr(GError) error = NULL;

  if (command == NULL || *command == '\0')
    command = KV_SERVER_DEFAULT;
  g_shell_parse_argv (command, NULL, &argv, &error);
  g_assert_no_error (error);

  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  for (guint i = 0; argv[i] != NULL; i++)
    g_ptr_array_add (args, argv[i]);
  g_ptr_array_add (args, "--listen");
  g_ptr_array_add (args, "127.0.0.1:0");
  g_ptr_array_add (args, NULL);

  g_autoptr(GSubprocessLauncher) launcher = launcher_new ();
  server->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) args->pdata, &error);
  g_assert_no_error (error);
  server->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server->process));
  server->url = g_data_input_stream_read_line_utf8 (server->out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (server->url);
  g_assert_true (g_str_has_prefix (server->url, "http://127.0.0.1:"));
  g_test_message ("%s serving on %s", command, server->url);
}

/* Stops the server by PID and returns what it printed after the URL. */
static char *
server_stop (Server *server)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) rest = g_string_new (NULL);
  char *line;

  g_subprocess_send_signal (server->process, SIGTERM);
  while ((line = g_data_input_stream_read_line_utf8 (server->out, NULL, NULL, &error)) != NULL)
    {
      g_string_append_printf (rest, "%s\n", line);
      g_free (line);
    }
  g_assert_no_error (error);
  g_subprocess_wait (server->process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (server->process));
  g_assert_cmpint (g_subprocess_get_exit_status (server->process), ==, 0);

  g_clear_object (&server->out);
  g_clear_object (&server->process);
  g_clear_pointer (&server->url, g_free);
  return g_string_free (g_steal_pointer (&rest), FALSE);
}

static KvKVService *
proxy_new (const char *url)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (url, &error);

  g_assert_no_error (error);
  return kv_kv_service_proxy_new (channel);
}

static void
put (KvKVService *kv, const char *key, const char *value)
{
  g_autoptr(GBytes) bytes = g_bytes_new (value, strlen (value));
  g_autoptr(KvPutRequest) request = g_object_new (KV_TYPE_PUT_REQUEST, "key", key, "value", bytes, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvPutResponse) response = kv_kv_service_call_put_sync (kv, request, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (KV_IS_PUT_RESPONSE (response));
}

static KvGetResponse *
get (KvKVService *kv, const char *key)
{
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", key, NULL);
  g_autoptr(GError) error = NULL;
  KvGetResponse *response = kv_kv_service_call_get_sync (kv, request, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (response));
  return response;
}

static gboolean
delete (KvKVService *kv, const char *key)
{
  g_autoptr(KvDeleteRequest) request = g_object_new (KV_TYPE_DELETE_REQUEST, "key", key, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(KvDeleteResponse) response = kv_kv_service_call_delete_sync (kv, request, NULL, NULL, &error);

  g_assert_no_error (error);
  return kv_delete_response_get_found (response);
}

static void
assert_value (KvKVService *kv, const char *key, const char *expected)
{
  g_autoptr(KvGetResponse) response = get (kv, key);
  g_autoptr(GBytes) value = kv_get_response_get_value (response);
  g_autoptr(GBytes) want = g_bytes_new (expected, strlen (expected));

  g_assert_true (kv_get_response_get_found (response));
  g_assert_true (g_bytes_equal (value, want));
}

/* kv-client's whole transcript: every line of the demo. */
static void
test_client (void)
{
  Server server = { 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  server_start (&server);
  g_autoptr(GSubprocessLauncher) launcher = launcher_new ();
  g_autoptr(GSubprocess) client = g_subprocess_launcher_spawn (launcher, &error, KV_CLIENT,
                                                               server.url, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (client, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (client));
  g_assert_cmpint (g_subprocess_get_exit_status (client), ==, 0);

  g_autofree char *expected = g_strdup_printf (
    "connected to %s\n"
    "put greeting = hello, connect\n"
    "get greeting → hello, connect\n"
    "get missing → (not found)\n"
    "put \"\" → error invalid_argument: key must not be empty\n"
    "watching fruit/ ...\n"
    "put fruit/apple = red\n"
    "put veg/leek = green\n"
    "put fruit/kiwi = brown\n"
    "delete fruit/apple → deleted\n"
    "  watch event: PUT fruit/apple = red\n"
    "  watch event: PUT fruit/kiwi = brown\n"
    "  watch event: DELETE fruit/apple\n"
    "delete greeting → deleted\n"
    "get greeting → (not found)\n"
    "done\n", server.url);
  g_assert_cmpstr (out, ==, expected);

  g_autofree char *log = server_stop (&server);
  g_test_message ("server log:\n%s", log);
}

typedef struct {
  gboolean   headers;
  GPtrArray *events;
  gboolean   closed;
  GError    *error;
} Watch;

static void
on_headers (CpResponseStream *stream, SoupMessageHeaders *headers, gpointer user_data)
{
  ((Watch *) user_data)->headers = TRUE;
}

static void
on_message (CpResponseStream *stream, CpMessage *message, gpointer user_data)
{
  g_assert_true (KV_IS_WATCH_EVENT (message));
  g_ptr_array_add (((Watch *) user_data)->events, g_object_ref (message));
}

static void
on_closed (CpResponseStream *stream, GError *error, gpointer user_data)
{
  Watch *watch = user_data;

  watch->closed = TRUE;
  if (error != NULL)
    watch->error = g_error_copy (error);
}

static void
assert_event (KvWatchEvent *event, KvEventType type, const char *key, const char *value)
{
  g_autoptr(GBytes) bytes = kv_watch_event_get_value (event);
  g_autoptr(GBytes) want = g_bytes_new (value, strlen (value));

  g_assert_cmpint (kv_watch_event_get_type_ (event), ==, type);
  g_assert_cmpstr (kv_watch_event_get_key (event), ==, key);
  g_assert_true (g_bytes_equal (bytes, want));
}

static void
on_get_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  KvGetResponse **response = user_data;
  g_autoptr(GError) error = NULL;

  *response = kv_kv_service_call_get_finish (KV_KV_SERVICE (source), result, &error);
  g_assert_no_error (error);
}

/* This program as the host: the generated Proxy against the server. */
static void
test_proxy (void)
{
  Server server = { 0 };
  g_autoptr(GError) error = NULL;

  server_start (&server);
  g_autoptr(KvKVService) kv = proxy_new (server.url);

  /* Unary calls, binary values. */
  const guint8 raw[] = { 0x00, 0xff, 'k', 0x00, 0x80 };
  g_autoptr(GBytes) value = g_bytes_new (raw, sizeof raw);
  g_autoptr(KvPutRequest) put_request = kv_put_request_new ();
  kv_put_request_set_key (put_request, "bin");
  kv_put_request_set_value (put_request, value);
  g_autoptr(KvPutResponse) put_response = kv_kv_service_call_put_sync (kv, put_request, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (put_response);

  g_autoptr(KvGetResponse) got = get (kv, "bin");
  g_autoptr(GBytes) got_value = kv_get_response_get_value (got);
  g_assert_true (kv_get_response_get_found (got));
  g_assert_true (g_bytes_equal (got_value, value));

  g_autoptr(KvGetResponse) missing = get (kv, "missing");
  g_autoptr(GBytes) missing_value = kv_get_response_get_value (missing);
  g_assert_false (kv_get_response_get_found (missing));
  g_assert_cmpuint (g_bytes_get_size (missing_value), ==, 0);

  /* The asynchronous form, in this thread's main context. */
  g_autoptr(KvGetRequest) get_request = g_object_new (KV_TYPE_GET_REQUEST, "key", "bin", NULL);
  KvGetResponse *async_got = NULL;
  kv_kv_service_call_get (kv, get_request, NULL, NULL, on_get_done, &async_got);
  while (async_got == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (kv_get_response_get_found (async_got));
  g_clear_object (&async_got);

  /* A refused call: the server's error code and message. */
  g_autoptr(KvPutRequest) empty_key = g_object_new (KV_TYPE_PUT_REQUEST, "key", "", NULL);
  g_autoptr(KvPutResponse) refused = kv_kv_service_call_put_sync (kv, empty_key, NULL, NULL, &error);
  g_assert_null (refused);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==, "key must not be empty");
  g_clear_error (&error);

  g_assert_true (delete (kv, "bin"));
  g_assert_false (delete (kv, "bin"));

  /* Watch: registered once the response headers arrive; then only the
   * changes under the prefix arrive, in order, typed. */
  Watch watch = { .events = g_ptr_array_new_with_free_func (g_object_unref) };
  g_autoptr(KvWatchRequest) watch_request = g_object_new (KV_TYPE_WATCH_REQUEST, "prefix", "w/", NULL);
  g_autoptr(CpResponseStream) stream = kv_kv_service_call_watch (kv, watch_request, NULL);
  g_signal_connect (stream, "headers", G_CALLBACK (on_headers), &watch);
  g_signal_connect (stream, "message", G_CALLBACK (on_message), &watch);
  g_signal_connect (stream, "closed", G_CALLBACK (on_closed), &watch);
  cp_response_stream_start (stream);
  while (!watch.headers && !watch.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (watch.error);
  g_assert_true (watch.headers);

  put (kv, "w/1", "one");
  put (kv, "x/2", "two");
  put (kv, "w/3", "three");
  g_assert_true (delete (kv, "w/1"));
  assert_value (kv, "w/3", "three");
  while (watch.events->len < 3 && !watch.closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (watch.error);
  g_assert_cmpuint (watch.events->len, ==, 3);
  assert_event (watch.events->pdata[0], KV_EVENT_TYPE_PUT, "w/1", "one");
  assert_event (watch.events->pdata[1], KV_EVENT_TYPE_PUT, "w/3", "three");
  assert_event (watch.events->pdata[2], KV_EVENT_TYPE_DELETE, "w/1", "");

  cp_response_stream_cancel (stream);
  while (!watch.closed)
    g_main_context_iteration (NULL, TRUE);
  g_ptr_array_unref (watch.events);
  g_clear_error (&watch.error);

  g_autofree char *log = server_stop (&server);
  g_test_message ("server log:\n%s", log);
}

/* python/kv_host.py against the server; its Put is seen from C. */
static void
test_python_host (void)
{
  const char *python = "/usr/bin/python3";
  Server server = { 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  if (!g_file_test (python, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("no /usr/bin/python3");
      return;
    }
  server_start (&server);
  g_autoptr(GSubprocessLauncher) launcher = launcher_new ();
  g_autoptr(GSubprocess) host = g_subprocess_launcher_spawn (launcher, &error, python,
                                                             KV_PYTHON_HOST, server.url, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (host, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (host));
  g_assert_cmpint (g_subprocess_get_exit_status (host), ==, 0);
  g_assert_cmpstr (out, ==, "greeting = hello from Python\n");

  g_autoptr(KvKVService) kv = proxy_new (server.url);
  assert_value (kv, "greeting", "hello from Python");

  g_autofree char *log = server_stop (&server);
  g_test_message ("server log:\n%s", log);
}

static char *
read_line (GDataInputStream *in)
{
  g_autoptr(GError) error = NULL;
  char *line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);

  g_assert_no_error (error);
  return line;
}

/* gjs/watch.js follows Watch while this program changes the store. */
static void
test_gjs_watch (void)
{
  g_autofree char *gjs = g_find_program_in_path ("gjs");
  Server server = { 0 };
  g_autoptr(GError) error = NULL;

  if (gjs == NULL)
    {
      g_test_skip ("no gjs");
      return;
    }
  server_start (&server);
  g_autoptr(GSubprocessLauncher) launcher = launcher_new ();
  g_autoptr(GSubprocess) watcher = g_subprocess_launcher_spawn (launcher, &error, gjs, KV_GJS_WATCH,
                                                                server.url, "fruit/", "3", NULL);
  g_assert_no_error (error);
  g_autoptr(GDataInputStream) out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (watcher));

  /* watch.js prints this when the Watch's response headers arrive. */
  g_autofree char *first = read_line (out);
  g_assert_cmpstr (first, ==, "watching fruit/");

  g_autoptr(KvKVService) kv = proxy_new (server.url);
  put (kv, "fruit/apple", "red");
  put (kv, "veg/leek", "green");
  put (kv, "fruit/kiwi", "brown");
  g_assert_true (delete (kv, "fruit/apple"));

  const char *expected[] = { "PUT fruit/apple = red", "PUT fruit/kiwi = brown", "DELETE fruit/apple" };
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autofree char *line = read_line (out);
      g_assert_cmpstr (line, ==, expected[i]);
    }
  g_autofree char *last = read_line (out);
  g_assert_null (last);
  g_subprocess_wait (watcher, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (watcher));
  g_assert_cmpint (g_subprocess_get_exit_status (watcher), ==, 0);

  g_autofree char *log = server_stop (&server);
  g_test_message ("server log:\n%s", log);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/examples/kv/client", test_client);
  g_test_add_func ("/examples/kv/proxy", test_proxy);
  g_test_add_func ("/examples/kv/python-host", test_python_host);
  g_test_add_func ("/examples/kv/gjs-watch", test_gjs_watch);

  return g_test_run ();
}
