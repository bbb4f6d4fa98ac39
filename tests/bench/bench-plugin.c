/* bench-plugin.c: launching a plugin, connecting to it, its footprint
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   bench-plugin --plugin PATH/kv-plugin [--runs 20] [--calls 1000]
 *
 * Measures, with the example KV plugin (examples/kv/kv-plugin) and the
 * host API a real host uses (CpProcessDiscovery + CpClient + the
 * generated KvKVServiceProxy), over TCP on 127.0.0.1:
 *
 * - launch → first answer: from creating the discovery and the client to
 *   the first answered Get: spawn, address announcement on stdout,
 *   handshake, first health report (READY), dispense, one call. The median
 *   of --runs launches, each plugin shut down (not timed) before the next;
 *   also the median of the part up to READY;
 * - connect → ready: a new CpClient on the URL of a plugin that is already
 *   running (handshake + first health report), median of --runs;
 * - spawn → first answered Get, raw: the executable started with
 *   `--listen 127.0.0.1:0`, its URL read from the first stdout line, one
 *   binary Connect POST kv.v1.KVService/Get on a fresh TCP connection with
 *   blocking GIO sockets, no handshake; median of --runs. Any plugin that
 *   takes --listen and prints its URL first (connect-plugin-go's KV example
 *   as tests/interop/go builds it) is measured the same way;
 * - the plugin's memory (VmRSS, and its anonymous part RssAnon, from
 *   /proc/PID/status) once idle after start-up, and after --calls
 *   sequential calls (half Put, half Get, over 16 keys) plus VmHWM.
 *
 * The host-API measures need only what connectplugin's CpClient expects of a
 * plugin, so --plugin may also be tests/interop/go's cp-go-kv-plugin
 * (run-bench.sh does that for its table against connect-plugin-go; --label
 * names the plugin in the heading).
 *
 * Prints a table with the targets beside (it reports, it does not
 * judge) and one "RESULT k=v …" line for scripts. Exits non-zero only when
 * something could not run or a call got a wrong answer.
 */
#include <connectplugin.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.cp.h"

#define TARGET_FIRST_RPC_MS 15.0
#define TARGET_RSS_KB       (8 * 1024)

static guint plugin_log_lines;

/* The plugin's stderr comes back as log records (field CP_PLUGIN): one per
 * call from the KV store. Count them instead of printing them. */
static GLogWriterOutput
log_writer (GLogLevelFlags   level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, "CP_PLUGIN") == 0)
      {
        plugin_log_lines++;
        return G_LOG_WRITER_HANDLED;
      }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *result;
}

G_GNUC_NORETURN static void
die (const char   *what,
     const GError *error)
{
  g_printerr ("bench-plugin: %s: %s\n", what, error != NULL ? error->message : "failed");
  exit (1);
}

static double
ms_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / 1000.0;
}

static int
compare_double (gconstpointer a,
                gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

typedef struct {
  double median, min, max;
} Stats;

static Stats
stats_of (GArray *values)
{
  Stats s = { 0, 0, 0 };
  guint n = values->len;

  if (n == 0)
    return s;
  g_array_sort (values, compare_double);
  s.min = g_array_index (values, double, 0);
  s.max = g_array_index (values, double, n - 1);
  s.median = n % 2 ? g_array_index (values, double, n / 2)
                   : (g_array_index (values, double, n / 2 - 1) + g_array_index (values, double, n / 2)) / 2;
  return s;
}

/* ---- calls ---- */

static void
call_get (KvKVService *kv,
          const char  *key,
          const char  *expected)
{
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", key, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) value = NULL;

  kv_kv_service_call_get (kv, request, NULL, NULL, store_result, &result);
  response = kv_kv_service_call_get_finish (kv, wait_for (&result), &error);
  if (response == NULL)
    die ("Get", error);
  if (expected == NULL)
    {
      if (kv_get_response_get_found (response))
        die ("Get: found a key that was never put", NULL);
      return;
    }
  value = kv_get_response_get_value (response);
  if (!kv_get_response_get_found (response) || value == NULL ||
      g_bytes_get_size (value) != strlen (expected) ||
      memcmp (g_bytes_get_data (value, NULL), expected, strlen (expected)) != 0)
    die ("Get: wrong value", NULL);
}

static void
call_put (KvKVService *kv,
          const char  *key,
          const char  *value)
{
  g_autoptr(GBytes) bytes = g_bytes_new (value, strlen (value));
  g_autoptr(KvPutRequest) request = g_object_new (KV_TYPE_PUT_REQUEST,
                                                  "key", key, "value", bytes, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvPutResponse) response = NULL;
  g_autoptr(GError) error = NULL;

  kv_kv_service_call_put (kv, request, NULL, NULL, store_result, &result);
  response = kv_kv_service_call_put_finish (kv, wait_for (&result), &error);
  if (response == NULL)
    die ("Put", error);
}

/* ---- clients ---- */

static CpClient *
client_for (CpClient *client)
{
  const char *plugins[] = { "kv", NULL };

  cp_client_set_plugins (client, plugins);
  return client;
}

static void
client_connect (CpClient *client)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  cp_client_connect_async (client, NULL, store_result, &result);
  if (!cp_client_connect_finish (client, wait_for (&result), &error))
    die ("connect", error);
  if (cp_client_get_state (client) != CP_CLIENT_STATE_READY)
    die ("connect: the client is not ready", NULL);
}

static void
client_close (CpClient *client)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  cp_client_close_async (client, NULL, store_result, &result);
  if (!cp_client_close_finish (client, wait_for (&result), &error))
    die ("close", error);
}

static KvKVService *
dispense (CpClient *client)
{
  g_autoptr(GError) error = NULL;
  CpProxy *proxy = cp_client_dispense (client, "kv", KV_TYPE_KV_SERVICE_PROXY, &error);

  if (proxy == NULL)
    die ("dispense", error);
  return KV_KV_SERVICE (proxy);
}

static CpProcessDiscovery *
discovery_new (const char *plugin_path)
{
  const char *argv[] = { plugin_path, NULL };

  /* Plaintext, as the Go plugin serves (AutoMTLS costs: bench-automtls);
   * the raw GET and the clients made from the URL alone need it too. */
  return g_object_new (CP_TYPE_PROCESS_DISCOVERY,
                       "argv", argv,
                       "name", "kv",
                       "listen-mode", CP_LISTEN_TCP,
                       "auto-mtls", FALSE,
                       NULL);
}

/* ---- spawn → first answered Get, raw HTTP/1.1 ---- */

/* GetRequest{key: "absent"} */
static const char raw_request_body[] = "\x0a\x06" "absent";

/* Reads an HTTP/1.1 response with a Content-Length body (both our server and
 * Go's net/http send one for a small unary answer); returns the status. */
static guint
read_http_response (GInputStream *in)
{
  g_autoptr(GString) head = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  const char *p;
  guint status;
  gsize length = 0;
  gsize body_have;
  char buffer[4096];

  while (strstr (head->str, "\r\n\r\n") == NULL)
    {
      gssize n = g_input_stream_read (in, buffer, sizeof buffer, NULL, &error);

      if (n <= 0)
        die ("raw Get: reading the response", error);
      g_string_append_len (head, buffer, n);
      if (head->len > 64 * 1024)
        die ("raw Get: response head too long", NULL);
    }
  if (!g_str_has_prefix (head->str, "HTTP/1.1 ") ||
      (status = (guint) g_ascii_strtoull (head->str + 9, NULL, 10)) == 0)
    die ("raw Get: not an HTTP/1.1 status line", NULL);
  p = strstr (head->str, "\r\n\r\n") + 4;
  body_have = head->len - (gsize) (p - head->str);
  for (const char *line = strstr (head->str, "\r\n"); line != NULL && line + 2 < p;
       line = strstr (line + 2, "\r\n"))
    if (g_ascii_strncasecmp (line + 2, "Content-Length:", 15) == 0)
      length = g_ascii_strtoull (line + 17, NULL, 10);
  while (body_have < length)
    {
      gssize n = g_input_stream_read (in, buffer, MIN (sizeof buffer, length - body_have),
                                      NULL, &error);

      if (n <= 0)
        die ("raw Get: reading the response body", error);
      body_have += n;
    }
  return status;
}

static double
raw_spawn_first_get (const char *plugin_path)
{
  const char *argv[] = { plugin_path, "--listen", "127.0.0.1:0", NULL };
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  g_autoptr(GSocketClient) socket_client = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *request = NULL;
  gint64 start;
  double ms;
  guint status;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_unsetenv (launcher, "CONNECTPLUGIN_LISTEN");
  g_subprocess_launcher_unsetenv (launcher, "PORT");
  g_subprocess_launcher_unsetenv (launcher, "HOST_URL");

  start = g_get_monotonic_time ();
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (process == NULL)
    die ("raw: spawning the plugin", error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (process));
  url = g_data_input_stream_read_line (lines, NULL, NULL, &error);
  if (url == NULL || !g_str_has_prefix (url, "http://"))
    die ("raw: the plugin printed no http:// URL", error);

  socket_client = g_socket_client_new ();
  connection = g_socket_client_connect_to_uri (socket_client, url, 80, NULL, &error);
  if (connection == NULL)
    die ("raw: connecting", error);
  g_tcp_connection_set_graceful_disconnect (G_TCP_CONNECTION (connection), FALSE);
  g_socket_set_option (g_socket_connection_get_socket (connection), IPPROTO_TCP, TCP_NODELAY,
                       1, NULL);
  request = g_strdup_printf ("POST /kv.v1.KVService/Get HTTP/1.1\r\n"
                             "Host: %s\r\n"
                             "Content-Type: application/proto\r\n"
                             "Connect-Protocol-Version: 1\r\n"
                             "Content-Length: %zu\r\n"
                             "\r\n",
                             url + strlen ("http://"), sizeof raw_request_body - 1);
  {
    g_autofree char *whole = g_strconcat (request, raw_request_body, NULL);
    GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));

    if (!g_output_stream_write_all (out, whole, strlen (whole), NULL, NULL, &error))
      die ("raw: sending the Get", error);
  }
  status = read_http_response (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  ms = ms_since (start);
  if (status != 200)
    {
      g_printerr ("bench-plugin: raw Get answered HTTP %u\n", status);
      exit (1);
    }

  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  g_subprocess_send_signal (process, SIGTERM);
  if (!g_subprocess_wait (process, NULL, &error))
    die ("raw: waiting for the plugin", error);
  return ms;
}

/* ---- /proc ---- */

typedef struct {
  guint64 rss_kb, anon_kb, hwm_kb;
} Memory;

static guint64
status_field (const char *status,
              const char *name)
{
  g_autofree char *needle = g_strconcat ("\n", name, ":", NULL);
  const char *p = strstr (status, needle);

  return p != NULL ? g_ascii_strtoull (p + strlen (needle), NULL, 10) : 0;
}

static Memory
read_memory (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *status = NULL;
  g_autoptr(GError) error = NULL;
  Memory m;

  if (!g_file_get_contents (path, &status, NULL, &error))
    die ("reading the plugin's /proc status", error);
  m.rss_kb = status_field (status, "VmRSS");
  m.anon_kb = status_field (status, "RssAnon");
  m.hwm_kb = status_field (status, "VmHWM");
  if (m.rss_kb == 0)
    die ("no VmRSS in the plugin's /proc status", NULL);
  return m;
}

/* Lets the plugin go idle: the main context runs (health, stderr) meanwhile. */
static void
settle (guint ms)
{
  gint64 end = g_get_monotonic_time () + ms * 1000;

  while (g_get_monotonic_time () < end)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

int
main (int argc, char **argv)
{
  g_autofree char *plugin_path = NULL;
  g_autofree char *label_option = NULL;
  int runs = 20;
  int calls = 1000;
  GOptionEntry entries[] = {
    { "plugin", 0, 0, G_OPTION_ARG_FILENAME, &plugin_path, "The kv-plugin executable", "PATH" },
    { "runs", 0, 0, G_OPTION_ARG_INT, &runs, "Launches and connections measured (20)", "N" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &calls, "Calls before the second RSS reading (1000)", "N" },
    { "label", 0, 0, G_OPTION_ARG_STRING, &label_option, "The plugin's name in the heading", "TEXT" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— plugin launch and footprint benchmark");
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) first_rpc = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) launch_ready = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) connect_ready = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) raw_first_get = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(KvKVService) kv = NULL;
  Stats s_first, s_launch, s_connect, s_raw;
  Memory idle, after;
  char url[256];
  char label[64];
  GPid pid;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    die ("options", error);
  if (plugin_path == NULL || runs < 1 || calls < 2)
    {
      g_printerr ("usage: bench-plugin --plugin PATH [--runs N] [--calls N]\n");
      return 2;
    }
  /* meson test sets MALLOC_PERTURB_: the plugin inherits the environment. */
  g_unsetenv ("MALLOC_PERTURB_");
  g_unsetenv ("MALLOC_CHECK_");
  g_log_set_writer_func (log_writer, NULL, NULL);

  /* 1. Launch → first answered call, --runs times. */
  for (int i = 0; i < runs; i++)
    {
      g_autoptr(CpProcessDiscovery) d = NULL;
      g_autoptr(CpClient) c = NULL;
      g_autoptr(KvKVService) proxy = NULL;
      gint64 start = g_get_monotonic_time ();
      double ready_ms, answered_ms;

      d = discovery_new (plugin_path);
      c = client_for (cp_client_new_for_discovery (CP_DISCOVERY (d)));
      client_connect (c);
      ready_ms = ms_since (start);
      proxy = dispense (c);
      call_get (proxy, "absent", NULL);
      answered_ms = ms_since (start);
      g_array_append_val (first_rpc, answered_ms);
      g_array_append_val (launch_ready, ready_ms);

      client_close (c);
      if (cp_process_discovery_get_state (d) != CP_PROCESS_STATE_STOPPED)
        die ("the plugin did not stop on close", NULL);
    }

  /* 2. Spawn → first answered Get, raw HTTP, --runs times. */
  for (int i = 0; i < runs; i++)
    {
      double ms = raw_spawn_first_get (plugin_path);

      g_array_append_val (raw_first_get, ms);
    }

  /* 3. One plugin kept running: its memory, and clients connecting to it. */
  discovery = discovery_new (plugin_path);
  client = client_for (cp_client_new_for_discovery (CP_DISCOVERY (discovery)));
  client_connect (client);
  kv = dispense (client);
  call_get (kv, "absent", NULL);
  pid = cp_process_discovery_get_pid (discovery);
  g_strlcpy (url, cp_client_get_url (client), sizeof url);
  settle (200);
  idle = read_memory (pid);

  for (int i = 0; i < runs; i++)
    {
      g_autoptr(CpClient) c = client_for (cp_client_new (url));
      gint64 start;
      double ready_ms;

      g_object_set (c, "shutdown-on-close", FALSE, NULL);
      start = g_get_monotonic_time ();
      client_connect (c);
      ready_ms = ms_since (start);
      g_array_append_val (connect_ready, ready_ms);
      client_close (c);
    }

  for (int i = 0; i < calls / 2; i++)
    {
      g_autofree char *key = g_strdup_printf ("key-%d", i % 16);
      g_autofree char *value = g_strdup_printf ("value-%d", i);

      call_put (kv, key, value);
      call_get (kv, key, value);
    }
  settle (200);
  after = read_memory (pid);

  client_close (client);

  s_first = stats_of (first_rpc);
  s_launch = stats_of (launch_ready);
  s_connect = stats_of (connect_ready);
  s_raw = stats_of (raw_first_get);

  printf ("== Plugin process (%s over TCP 127.0.0.1; CpProcessDiscovery + CpClient)\n",
          label_option != NULL ? label_option : "examples/kv/kv-plugin");
  printf ("%-44s %8s %8s %8s   %s\n", "", "median", "min", "max", "target");
  printf ("%-44s %6.2f ms %5.2f ms %5.2f ms   <= %.0f ms\n",
          "launch -> first answered Get", s_first.median, s_first.min, s_first.max,
          TARGET_FIRST_RPC_MS);
  printf ("%-44s %6.2f ms %5.2f ms %5.2f ms   (part of the above)\n",
          "  launch -> ready (handshake + health)", s_launch.median, s_launch.min, s_launch.max);
  printf ("%-44s %6.2f ms %5.2f ms %5.2f ms   (no target; the issue asks for it)\n",
          "connect -> ready, plugin already running", s_connect.median, s_connect.min,
          s_connect.max);
  printf ("%-44s %6.2f ms %5.2f ms %5.2f ms   (raw HTTP, fresh connection, no handshake)\n",
          "spawn -> first answered Get", s_raw.median, s_raw.min, s_raw.max);
  printf ("(%d runs each)\n", runs);
  printf ("%-44s %5" G_GUINT64_FORMAT " kB (anon %" G_GUINT64_FORMAT " kB)   <= %d kB\n",
          "plugin VmRSS, idle after start-up", idle.rss_kb, idle.anon_kb, TARGET_RSS_KB);
  g_snprintf (label, sizeof label, "  after %d calls (Put/Get, 16 keys)", calls);
  printf ("%-44s %5" G_GUINT64_FORMAT " kB (anon %" G_GUINT64_FORMAT " kB, VmHWM %" G_GUINT64_FORMAT
          " kB)   <= %d kB\n",
          label, after.rss_kb, after.anon_kb, after.hwm_kb, TARGET_RSS_KB);
  printf ("RESULT runs=%d first_rpc_ms=%.2f launch_ready_ms=%.2f connect_ready_ms=%.2f "
          "raw_first_get_ms=%.2f rss_idle_kb=%" G_GUINT64_FORMAT " rss_after_kb=%" G_GUINT64_FORMAT
          " anon_idle_kb=%" G_GUINT64_FORMAT " anon_after_kb=%" G_GUINT64_FORMAT
          " hwm_kb=%" G_GUINT64_FORMAT " calls=%d plugin_log_lines=%u\n",
          runs, s_first.median, s_launch.median, s_connect.median, s_raw.median, idle.rss_kb, after.rss_kb,
          idle.anon_kb, after.anon_kb, after.hwm_kb, calls, plugin_log_lines);
  return 0;
}
