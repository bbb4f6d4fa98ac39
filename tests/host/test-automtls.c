/* test-automtls.c: AutoMTLS of CpProcessDiscovery with launched plugins
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A "fake-plugin serve" launched over TCP serves https:// with the
 * certificates its host made for it: the host's channel calls it; a client
 * without the host's certificate is refused; a host pinned to another CA
 * does not accept it; the certificates expire when configured; no key is
 * left on the command line, in the environment, on disk or in an open
 * pipe; a plugin whose pipe holds something else refuses to serve.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <glib-unix.h>

#include "host-test-util.h"
#include "cp-automtls-private.h"
#include "cp-tls-private.h"

#define SAY "/hosttest.v1.EchoService/Say"

static CpProcessDiscovery *
discovery_new (const char *tmpdir)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, "serve", NULL };
  g_autofree char *tmp_env = tmpdir != NULL ? g_strconcat ("TMPDIR=", tmpdir, NULL) : NULL;
  const char *environment[] = { tmp_env, NULL };

  return g_object_new (CP_TYPE_PROCESS_DISCOVERY,
                       "argv", argv,
                       "name", "serve",
                       "environment", tmp_env != NULL ? environment : NULL,
                       NULL);
}

static void
start_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  char **url = user_data;
  g_autoptr(GError) error = NULL;

  *url = cp_process_discovery_start_finish (CP_PROCESS_DISCOVERY (source), result, &error);
  g_assert_no_error (error);
}

static char *
start (CpProcessDiscovery *discovery)
{
  char *url = NULL;

  cp_process_discovery_start_async (discovery, NULL, start_cb, &url);
  HOST_TEST_WAIT_UNTIL (url != NULL);
  return url;
}

static void
stop_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_process_discovery_stop_finish (CP_PROCESS_DISCOVERY (source), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

static void
stop (CpProcessDiscovery *discovery)
{
  gboolean done = FALSE;

  cp_process_discovery_stop_async (discovery, NULL, stop_cb, &done);
  host_test_wait_flag (&done);
}

static void
call_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Say "hi" through @channel: the answer's text, or NULL and *error. */
static char *
say (CpChannel  *channel,
     GError    **error)
{
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpMessage) response = NULL;

  hosttest_say_request_set_text (request, "hi");
  cp_channel_call_async (channel, SAY, CP_MESSAGE (request), HOSTTEST_TYPE_SAY_RESPONSE,
                         NULL, NULL, call_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = cp_channel_call_finish (channel, result, error);
  if (response == NULL)
    return NULL;
  return g_strdup (hosttest_say_response_get_text (HOSTTEST_SAY_RESPONSE (response)));
}

static gboolean
accept_any (GTlsConnection       *connection,
            GTlsCertificate      *peer,
            GTlsCertificateFlags  errors,
            gpointer              user_data)
{
  return TRUE;
}

/* A raw TLS client of @url that accepts any server certificate and
 * presents @certificate (nullable), sends one HTTP request and returns
 * what came back ("" when the server closed or failed the connection).
 * Sets *@peer_not_after to the server certificate's notAfter. */
static char *
raw_request (const char      *url,
             GTlsCertificate *certificate,
             GDateTime      **peer_not_after)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) base = NULL;
  g_autoptr(GIOStream) tls = NULL;
  g_autoptr(GError) error = NULL;
  const char *request = "POST " SAY " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/proto\r\nContent-Length: 0\r\n\r\n";
  char buf[256] = { 0 };
  gsize n = 0;

  base = g_socket_client_connect_to_host (client, url + strlen ("https://"), 0, NULL, &error);
  g_assert_no_error (error);
  tls = g_tls_client_connection_new (G_IO_STREAM (base), NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (accept_any), NULL);
  if (certificate != NULL)
    g_tls_connection_set_certificate (G_TLS_CONNECTION (tls), certificate);
  if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error))
    return g_strdup ("");
  if (peer_not_after != NULL)
    g_object_get (g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (tls)),
                  "not-valid-after", peer_not_after, NULL);
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (tls), request, strlen (request),
                                  NULL, NULL, &error) ||
      !g_input_stream_read_all (g_io_stream_get_input_stream (tls), buf, 12, &n, NULL, &error))
    return g_strdup ("");
  return g_strndup (buf, n);
}

static void
assert_not_after_within (GDateTime *not_after,
                         guint      lifetime_s)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 end;

  g_assert_nonnull (not_after);
  end = g_date_time_to_unix (not_after);
  g_assert_cmpint (end, >, now);
  g_assert_cmpint (end, <=, now + (gint64) lifetime_s);
  g_assert_cmpint (end, >=, now + (gint64) lifetime_s - 300);
}

static gboolean
dir_is_empty (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);

  g_assert_nonnull (dir);
  return g_dir_read_name (dir) == NULL;
}

static gboolean
file_contains (const char *path,
               const char *needle)
{
  g_autofree char *contents = NULL;
  gsize len;
  gsize n = strlen (needle);

  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  for (gsize i = 0; i + n <= len; i++)
    if (memcmp (contents + i, needle, n) == 0)
      return TRUE;
  return FALSE;
}

/* The host's channel calls it over https; the PluginControl.Shutdown of
 * stop () also goes through (the plugin exits on its own). */
static void
test_call (void)
{
  g_autoptr(CpProcessDiscovery) discovery = discovery_new (NULL);
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *text = NULL;
  gboolean auto_mtls = FALSE;

  g_object_get (discovery, "auto-mtls", &auto_mtls, NULL);
  g_assert_true (auto_mtls);
  host_test_plugin_logs_clear ();
  url = start (discovery);
  g_assert_true (g_str_has_prefix (url, "https://127.0.0.1:"));
  channel = cp_discovery_create_channel (CP_DISCOVERY (discovery), url, &error);
  g_assert_no_error (error);
  text = say (channel, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "hi");
  stop (discovery);
  /* By PluginControl.Shutdown, with the control secret that the plugin
   * took from its environment before main (). */
  g_assert_true (host_test_plugin_log_has ("serve", "stderr", "shutdown requested"));
}

/* Without the host's certificate, or with one from another CA, the
 * plugin answers nothing; with it, the same raw request is answered. */
static void
test_foreign_client (void)
{
  g_autoptr(CpProcessDiscovery) discovery = discovery_new (NULL);
  g_autoptr(CpProcessDiscovery) other = discovery_new (NULL);
  g_autoptr(CpChannel) host_channel = NULL;
  g_autoptr(CpChannel) other_channel = NULL;
  g_autoptr(CpChannel) plain = NULL;
  g_autoptr(GTlsCertificate) host_cert = NULL;
  g_autoptr(GTlsCertificate) other_cert = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *other_url = NULL;
  g_autofree char *text = NULL;
  g_autofree char *answer = NULL;

  url = start (discovery);
  other_url = start (other);
  host_channel = cp_discovery_create_channel (CP_DISCOVERY (discovery), url, &error);
  g_assert_no_error (error);
  other_channel = cp_discovery_create_channel (CP_DISCOVERY (other), other_url, &error);
  g_assert_no_error (error);
  g_object_get (host_channel, "tls-certificate", &host_cert, NULL);
  g_object_get (other_channel, "tls-certificate", &other_cert, NULL);
  g_assert_nonnull (host_cert);
  g_assert_nonnull (other_cert);

  /* The control: the host's own certificate is answered. */
  answer = raw_request (url, host_cert, NULL);
  g_assert_true (g_str_has_prefix (answer, "HTTP/1.1 "));
  g_clear_pointer (&answer, g_free);

  /* No certificate: refused. */
  answer = raw_request (url, NULL, NULL);
  g_assert_false (g_str_has_prefix (answer, "HTTP/"));
  g_clear_pointer (&answer, g_free);

  /* Another launch's client certificate (another CA): refused. */
  answer = raw_request (url, other_cert, NULL);
  g_assert_false (g_str_has_prefix (answer, "HTTP/"));
  g_clear_pointer (&answer, g_free);

  /* A plain channel (no certificate, the system CAs) fails too. */
  plain = cp_channel_new (url, &error);
  g_assert_no_error (error);
  text = say (plain, &error);
  g_assert_null (text);
  g_assert_nonnull (error);
  g_clear_error (&error);

  stop (discovery);
  stop (other);
}

/* A host pinned to another CA does not accept the plugin's certificate:
 * the other discovery's channel, pointed at this plugin, fails; pointed
 * at its own plugin, works. */
static void
test_impersonation (void)
{
  g_autoptr(CpProcessDiscovery) discovery = discovery_new (NULL);
  g_autoptr(CpProcessDiscovery) other = discovery_new (NULL);
  g_autoptr(CpChannel) wrong = NULL;
  g_autoptr(CpChannel) right = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *other_url = NULL;
  g_autofree char *text = NULL;

  url = start (discovery);
  other_url = start (other);

  right = cp_discovery_create_channel (CP_DISCOVERY (other), other_url, &error);
  g_assert_no_error (error);
  text = say (right, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "hi");
  g_clear_pointer (&text, g_free);

  wrong = cp_discovery_create_channel (CP_DISCOVERY (other), url, &error);
  g_assert_no_error (error);
  text = say (wrong, &error);
  g_assert_null (text);
  g_assert_nonnull (error);

  stop (discovery);
  stop (other);
}

/* The certificates end when auto-mtls-lifetime says. */
static void
test_lifetime (void)
{
  g_autoptr(CpProcessDiscovery) discovery = discovery_new (NULL);
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GTlsCertificate) host_cert = NULL;
  g_autoptr(GDateTime) client_end = NULL;
  g_autoptr(GDateTime) server_end = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *answer = NULL;
  guint lifetime = 0;

  g_object_get (discovery, "auto-mtls-lifetime", &lifetime, NULL);
  g_assert_cmpuint (lifetime, ==, 24 * 3600);
  g_object_set (discovery, "auto-mtls-lifetime", 3600, NULL);
  url = start (discovery);
  channel = cp_discovery_create_channel (CP_DISCOVERY (discovery), url, &error);
  g_assert_no_error (error);
  g_object_get (channel, "tls-certificate", &host_cert, NULL);
  g_object_get (host_cert, "not-valid-after", &client_end, NULL);
  assert_not_after_within (client_end, 3600);

  answer = raw_request (url, host_cert, &server_end);
  assert_not_after_within (server_end, 3600);
  stop (discovery);
}

/* The number of pipes among the descriptors of process @pid from 3 up
 * (0, 1 and 2 are its standard streams, pipes to the host). */
static guint
count_pipes (int pid)
{
  g_autofree char *fd_dir = g_strdup_printf ("/proc/%d/fd", pid);
  g_autoptr(GDir) dir = g_dir_open (fd_dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fd_dir, name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      if (atoi (name) >= 3 && target != NULL && g_str_has_prefix (target, "pipe:"))
        n++;
    }
  return n;
}

/* No key on the command line, in the plugin's environment (the host sends
 * the certificates through a pipe; the variable naming it is removed) nor
 * in a file, and the pipe is closed once read (the plugin announces its
 * address before it has read it: once it has answered a call, it has):
 * the plugin's own children inherit nothing. */
static void
test_no_secret_left (void)
{
  g_autofree char *tmpdir = g_dir_make_tmp ("test-automtls-XXXXXX", NULL);
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *url = NULL;
  g_autofree char *cmdline = NULL;
  g_autofree char *environ_path = NULL;
  int pid;

  g_assert_nonnull (tmpdir);
  discovery = discovery_new (tmpdir);
  host_test_plugin_logs_clear ();
  url = start (discovery);
  g_assert_true (g_str_has_prefix (url, "https://"));
  HOST_TEST_WAIT_UNTIL (host_test_plugin_log_has ("serve", "stderr",
                                                  "AutoMTLS in the environment: no"));
  /* Gone before main () already (the library's constructor), the pipe
   * not inherited by anything the program runs. */
  g_assert_true (host_test_plugin_log_has ("serve", "stderr",
                                           "at main: AutoMTLS descriptor in the environment: no, "
                                           "control secret in the environment: no, "
                                           "descriptor 3: close-on-exec"));
  channel = cp_discovery_create_channel (CP_DISCOVERY (discovery), url, &error);
  g_assert_no_error (error);
  text = say (channel, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "hi");
  pid = cp_process_discovery_get_pid (discovery);
  cmdline = g_strdup_printf ("/proc/%d/cmdline", pid);
  environ_path = g_strdup_printf ("/proc/%d/environ", pid);
  g_assert_false (file_contains (cmdline, "BEGIN"));
  /* /proc/PID/environ shows the environment the plugin started with. */
  g_assert_false (file_contains (environ_path, "BEGIN"));
  g_assert_true (file_contains (environ_path, CP_AUTOMTLS_FD_ENV "="));
  g_assert_cmpuint (count_pipes (pid), ==, 0);
  g_assert_true (dir_is_empty (tmpdir));
  stop (discovery);
  g_assert_true (dir_is_empty (tmpdir));
  g_assert_cmpint (g_rmdir (tmpdir), ==, 0);
}

static GSubprocess *
spawn_with_pipe (int *write_fd)
{
  const char *argv[] = { FAKE_PLUGIN_PATH, "serve", NULL };
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;
  int fds[2];

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, &error));
  g_assert_no_error (error);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, CP_LISTEN_ENV, "127.0.0.1:0", TRUE);
  g_subprocess_launcher_setenv (launcher, CP_AUTOMTLS_FD_ENV, "3", TRUE);
  g_subprocess_launcher_take_fd (launcher, fds[0], 3);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  *write_fd = fds[1];
  return proc;
}

static void
write_garbage (int fd)
{
  static const char garbage[] = "not a certificate\0nor a key\0";

  g_assert_cmpint (write (fd, garbage, sizeof garbage - 1), ==, (int) sizeof garbage - 1);
  close (fd);
}

/* A plugin whose AutoMTLS pipe does not hold a certificate, a key and a
 * CA refuses to serve (it does not fall back to plain text): it exits
 * with an error, whether it had announced its address by then or not. */
static void
test_bad_pipe (void)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int fd;

  proc = spawn_with_pipe (&fd);
  write_garbage (fd);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (proc), !=, 0);
  g_assert_true (g_str_equal (out, "") || g_str_has_prefix (out, "https://127.0.0.1:"));
  g_assert_nonnull (strstr (err, "bad AutoMTLS credentials from the host"));
}

/* The plugin announces its https:// address before it has read the pipe;
 * a client that connects then waits for the credentials. When they are
 * bad, that client sees its connection closed (it is not left hanging)
 * and the plugin exits with an error. */
static void
test_bad_pipe_after_announce (void)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) stdout_lines = NULL;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  char buf[16];
  gssize n;
  int fd;

  proc = spawn_with_pipe (&fd);
  stdout_lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  url = g_data_input_stream_read_line (stdout_lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (url);
  g_assert_true (g_str_has_prefix (url, "https://127.0.0.1:"));

  /* Accepted, and kept waiting for the credentials: the hello is not
   * answered. */
  connection = g_socket_client_connect_to_host (client, url + strlen ("https://"), 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                                            "\x16\x03\x01", 3, NULL, NULL, &error));
  g_assert_no_error (error);

  write_garbage (fd);
  n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                           buf, sizeof buf, NULL, &error);
  g_assert_true (n == 0 || (n < 0 && error != NULL));
  g_clear_error (&error);

  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (proc), !=, 0);
  g_assert_nonnull (strstr (err, "bad AutoMTLS credentials from the host"));
}

/* A plugin given a certificate, its key and a CA, without the host's
 * client certificate (a host of an earlier version), accepts any client
 * certificate of that CA, and no other. */
static void
test_old_host_pipe (void)
{
  g_autoptr(CpAutoMtls) automtls = cp_automtls_new (3600, NULL);
  g_autoptr(CpAutoMtls) other = cp_automtls_new (3600, NULL);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) stdout_lines = NULL;
  g_autoptr(GString) message = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *answer = NULL;
  int fd;

  g_assert_nonnull (automtls);
  g_assert_nonnull (other);
  proc = spawn_with_pipe (&fd);
  g_string_append (message, automtls->server_cert_pem);
  g_string_append_c (message, '\0');
  g_string_append (message, automtls->server_key_pem);
  g_string_append_c (message, '\0');
  g_string_append (message, automtls->ca_pem);
  g_string_append_c (message, '\0');
  g_assert_cmpint (write (fd, message->str, message->len), ==, (int) message->len);
  close (fd);
  stdout_lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  url = g_data_input_stream_read_line (stdout_lines, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (url, "https://127.0.0.1:"));

  answer = raw_request (url, automtls->client_certificate, NULL);
  g_assert_true (g_str_has_prefix (answer, "HTTP/1.1 "));
  g_clear_pointer (&answer, g_free);
  answer = raw_request (url, other->client_certificate, NULL);
  g_assert_false (g_str_has_prefix (answer, "HTTP/"));

  g_subprocess_send_signal (proc, SIGTERM);
  g_assert_true (g_subprocess_wait (proc, NULL, &error));
  g_assert_no_error (error);
}

/* The pinned database trusts its certificate, within its validity, and
 * nothing else: not another certificate of the same CA, nor the CA. */
static const char expired_pem[] =
  "-----BEGIN CERTIFICATE-----\n"
  "MIIBIjCByqADAgECAhR/KkZ2NK2SVV9rEIOsIc8jbOA01TAKBggqhkjOPQQDAjAS\n"
  "MRAwDgYDVQQDDAdleHBpcmVkMB4XDTAwMDEwMTAwMDAwMFoXDTAxMDEwMTAwMDAw\n"
  "MFowEjEQMA4GA1UEAwwHZXhwaXJlZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IA\n"
  "BKNRx4VR8vGGHCYt54jM1YoaqFIsL7yMArJB5okcekLFo60RUYU0nV/ITE02Y78q\n"
  "2ozN1kd25RkJd2izB6S7DfIwCgYIKoZIzj0EAwIDRwAwRAIgY6kSjRSkI+jSKGJp\n"
  "p0oESgD5sHO+lvVmaCUaCH7RdhgCIHvDCf5K/H468DQJe2cg5R1A+oE29IXJVili\n"
  "YCBPaf5B\n"
  "-----END CERTIFICATE-----\n";
static const char not_yet_pem[] =
  "-----BEGIN CERTIFICATE-----\n"
  "MIIBJjCBzqADAgECAhQ83SKPdWUsf6Ew/w1lG6jOFnJxZzAKBggqhkjOPQQDAjAS\n"
  "MRAwDgYDVQQDDAdub3QgeWV0MCIYDzIwOTAwMTAxMDAwMDAwWhgPMjA5MTAxMDEw\n"
  "MDAwMDBaMBIxEDAOBgNVBAMMB25vdCB5ZXQwWTATBgcqhkjOPQIBBggqhkjOPQMB\n"
  "BwNCAAQOvBDstz17dfD2xE23bMKEuR7+VZkGmlFKv+MhR0n0/S9qY6p13u0oRBf2\n"
  "7Edt16MwQSBmMecz4Vpsrrxt6UgQMAoGCCqGSM49BAMCA0cAMEQCIAZA9buR4/ne\n"
  "yqf690zszuaW5MSzsAEJcGIXrFLK14eSAiA6uAQHhJQ72z0VIG3xak8Ejkbcko2A\n"
  "EfK9jYOTE6UcLw==\n"
  "-----END CERTIFICATE-----\n";

static GTlsCertificateFlags
verify_pinned (GTlsDatabase *database,
               const char   *pem)
{
  g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_pem (pem, -1, NULL);

  g_assert_nonnull (certificate);
  return g_tls_database_verify_chain (database, certificate, G_TLS_DATABASE_PURPOSE_AUTHENTICATE_CLIENT,
                                      NULL, NULL, G_TLS_DATABASE_VERIFY_NONE, NULL, NULL);
}

static void
test_pinned_database (void)
{
  g_autoptr(CpAutoMtls) automtls = cp_automtls_new (3600, NULL);
  g_autoptr(CpAutoMtls) other = cp_automtls_new (3600, NULL);
  g_autoptr(GTlsDatabase) pinned = NULL;
  g_autoptr(GTlsDatabase) expired = NULL;
  g_autoptr(GTlsDatabase) not_yet = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (automtls);
  g_assert_nonnull (other);
  pinned = cp_tls_pinned_database_new_from_pem (automtls->client_cert_pem, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (verify_pinned (pinned, automtls->client_cert_pem), ==, 0);
  g_assert_cmpuint (verify_pinned (pinned, automtls->server_cert_pem), ==, G_TLS_CERTIFICATE_UNKNOWN_CA);
  g_assert_cmpuint (verify_pinned (pinned, automtls->ca_pem), ==, G_TLS_CERTIFICATE_UNKNOWN_CA);
  g_assert_cmpuint (verify_pinned (pinned, other->client_cert_pem), ==, G_TLS_CERTIFICATE_UNKNOWN_CA);
  /* The host's own database trusts the plugin's certificate alone. */
  g_assert_cmpuint (verify_pinned (automtls->database, automtls->server_cert_pem), ==, 0);
  g_assert_cmpuint (verify_pinned (automtls->database, other->server_cert_pem), ==,
                    G_TLS_CERTIFICATE_UNKNOWN_CA);

  expired = cp_tls_pinned_database_new_from_pem (expired_pem, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (verify_pinned (expired, expired_pem), ==, G_TLS_CERTIFICATE_EXPIRED);
  g_assert_cmpuint (verify_pinned (expired, not_yet_pem), ==, G_TLS_CERTIFICATE_UNKNOWN_CA);
  not_yet = cp_tls_pinned_database_new_from_pem (not_yet_pem, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (verify_pinned (not_yet, not_yet_pem), ==, G_TLS_CERTIFICATE_NOT_ACTIVATED);
}

/* auto-mtls FALSE: plain http://; a unix socket: no TLS either. */
static void
test_off (void)
{
  g_autoptr(CpProcessDiscovery) discovery = discovery_new (NULL);
  g_autoptr(CpProcessDiscovery) unix_discovery = discovery_new (NULL);
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *unix_url = NULL;
  g_autofree char *text = NULL;

  g_object_set (discovery, "auto-mtls", FALSE, NULL);
  url = start (discovery);
  g_assert_true (g_str_has_prefix (url, "http://127.0.0.1:"));
  channel = cp_discovery_create_channel (CP_DISCOVERY (discovery), url, &error);
  g_assert_no_error (error);
  text = say (channel, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text, ==, "hi");
  stop (discovery);

  g_object_set (unix_discovery, "listen-mode", CP_LISTEN_UNIX, NULL);
  unix_url = start (unix_discovery);
  g_assert_true (g_str_has_prefix (unix_url, "unix:/"));
  stop (unix_discovery);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  host_test_capture_plugin_logs ();

  g_test_add_func ("/automtls/call", test_call);
  g_test_add_func ("/automtls/foreign-client", test_foreign_client);
  g_test_add_func ("/automtls/impersonation", test_impersonation);
  g_test_add_func ("/automtls/lifetime", test_lifetime);
  g_test_add_func ("/automtls/no-secret-left", test_no_secret_left);
  g_test_add_func ("/automtls/bad-pipe", test_bad_pipe);
  g_test_add_func ("/automtls/bad-pipe-after-announce", test_bad_pipe_after_announce);
  g_test_add_func ("/automtls/old-host-pipe", test_old_host_pipe);
  g_test_add_func ("/automtls/pinned-database", test_pinned_database);
  g_test_add_func ("/automtls/off", test_off);
  return g_test_run ();
}
