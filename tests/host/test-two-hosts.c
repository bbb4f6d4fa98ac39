/* test-two-hosts.c: two hosts and one etcd, the examples/two-hosts scenario
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Host A is the example program two-hosts-a (a separate process): it
 * launches kv-plugin over TCP with mutual TLS and registers it in etcd.
 * Host B is this program: CpEtcdDiscovery finds the plugin, CpClient
 * connects with its own client certificate (a test CA made with openssl,
 * not AutoMTLS, which trusts only the launching host) and calls it.
 * Killing the plugin removes it from B's view (host A revokes its entry);
 * host A restarts it and B finds and calls it again; killing host A
 * itself removes the entry when its lease (2 s) expires.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <connectplugin.h>
#include "kv-test.h"
#include "etcd-harness.h"

#define PREFIX "/two-hosts/"

typedef struct {
  EtcdHarness *etcd;
  char *certs;                 /* temporary directory */
  GSubprocess *host_a;
  GDataInputStream *host_a_out;
  GQueue lines;                /* host A's stdout lines not yet taken */
} Fixture;

static Fixture f;

/* ---- certificates ---- */

static void
run_openssl (const char *dir,
             const char *command)
{
  g_autofree char *line = g_strdup_printf ("openssl %s", command);
  g_auto(GStrv) argv = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  g_assert_true (g_shell_parse_argv (line, NULL, &argv, NULL));
  if (!g_spawn_sync (dir, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                     NULL, &err, &status, &error) ||
      !g_spawn_check_wait_status (status, &error))
    g_error ("%s: %s\n%s", line, error->message, err != NULL ? err : "");
}

/* A test CA, the plugin's server certificate (IP 127.0.0.1) and host B's
 * client certificate, all signed by it. */
static void
make_certificates (void)
{
  static const char *steps[] = {
    "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    " -keyout ca.key -out ca.pem -subj /CN=two-hosts-ca",
    "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    " -keyout plugin.key -out plugin.csr -subj /CN=kv-plugin",
    "x509 -req -in plugin.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
    " -out plugin.pem -extfile plugin.ext",
    "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    " -keyout host.key -out host.csr -subj /CN=host-b",
    "x509 -req -in host.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
    " -out host.pem -extfile host.ext",
  };
  g_autofree char *plugin_ext = g_build_filename (f.certs, "plugin.ext", NULL);
  g_autofree char *host_ext = g_build_filename (f.certs, "host.ext", NULL);

  g_assert_true (g_file_set_contents (plugin_ext, "subjectAltName=IP:127.0.0.1\n"
                                      "extendedKeyUsage=serverAuth\n", -1, NULL));
  g_assert_true (g_file_set_contents (host_ext, "extendedKeyUsage=clientAuth\n", -1, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    run_openssl (f.certs, steps[i]);
}

static char *
cert_path (const char *name)
{
  return g_build_filename (f.certs, name, NULL);
}

/* ---- host A ---- */

static void read_host_a (void);

static void
host_a_line_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  char *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result,
                                                     NULL, NULL);

  if (line == NULL)
    return;
  g_test_message ("host A: %s", line);
  g_queue_push_tail (&f.lines, line);
  read_host_a ();
}

static void
read_host_a (void)
{
  g_data_input_stream_read_line_async (f.host_a_out, G_PRIORITY_DEFAULT, NULL, host_a_line_cb,
                                       NULL);
}

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
start_host_a (void)
{
  g_autofree char *cert = cert_path ("plugin.pem");
  g_autofree char *key = cert_path ("plugin.key");
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(GError) error = NULL;

  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);

  /* Host A (and kv-plugin, which dies with its host) goes if we do. */
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f.host_a = g_subprocess_launcher_spawn (launcher, &error, TWO_HOSTS_A_PATH,
                                          "--etcd", f.etcd->url, "--prefix", PREFIX, "--ttl", "2",
                                          "--plugin", KV_PLUGIN_PATH, "--tls-cert", cert,
                                          "--tls-key", key, "--tls-ca", ca, NULL);
  g_assert_no_error (error);
  f.host_a_out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f.host_a));
  read_host_a ();
}

/* Waits for host A's next line starting with @word; answers it. */
static char *
host_a_expect (const char *word)
{
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  for (;;)
    {
      char *line;

      while (g_queue_is_empty (&f.lines))
        {
          if (g_get_monotonic_time () > end)
            g_error ("host A did not say \"%s\" in 60 s", word);
          g_main_context_iteration (NULL, TRUE);
        }
      line = g_queue_pop_head (&f.lines);
      if (g_str_has_prefix (line, word))
        return line;
      g_free (line);
    }
}

/* "registered URL PID" → URL and PID. */
static char *
parse_registered (const char *line,
                  GPid       *pid)
{
  g_auto(GStrv) words = g_strsplit (line, " ", 3);

  g_assert_cmpuint (g_strv_length (words), ==, 3);
  *pid = (GPid) atoi (words[2]);
  g_assert_cmpint (*pid, >, 0);
  return g_strdup (words[1]);
}

/* ---- host B ---- */

static void
on_changed (CpDiscovery *discovery,
            gpointer     user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
wait_view (CpEtcdDiscovery    *discovery,
           const char * const *expected)
{
  for (;;)
    {
      g_auto(GStrv) urls = cp_etcd_discovery_get_urls (discovery);
      gboolean changed = FALSE;
      gulong id;

      if (g_strv_equal ((const char * const *) urls, expected))
        return;
      id = g_signal_connect (discovery, "changed", G_CALLBACK (on_changed), &changed);
      etcd_harness_wait (&changed, 60);
      g_signal_handler_disconnect (discovery, id);
    }
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **result)
{
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (*result == NULL)
    {
      if (g_get_monotonic_time () > end)
        g_error ("timed out waiting for an answer");
      g_main_context_iteration (NULL, TRUE);
    }
  return *result;
}

static void
wait_ready (CpClient *client)
{
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  while (cp_client_get_state (client) != CP_CLIENT_STATE_READY)
    {
      if (g_get_monotonic_time () > end)
        g_error ("host B's client did not become ready in 60 s");
      g_main_context_iteration (NULL, TRUE);
    }
}

/* Put then Get through the plugin; checks the value came back. */
static void
put_get (CpClient   *client,
         const char *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(KvKVService) kv = KV_KV_SERVICE (cp_client_dispense (client, "kv",
                                                                 KV_TYPE_KV_SERVICE_PROXY, &error));
  g_autoptr(GBytes) bytes = g_bytes_new (value, strlen (value));
  g_autoptr(KvPutRequest) put = g_object_new (KV_TYPE_PUT_REQUEST, "key", "k", "value", bytes, NULL);
  g_autoptr(KvGetRequest) get = g_object_new (KV_TYPE_GET_REQUEST, "key", "k", NULL);
  g_autoptr(GAsyncResult) put_result = NULL;
  g_autoptr(GAsyncResult) get_result = NULL;
  g_autoptr(KvPutResponse) put_response = NULL;
  g_autoptr(KvGetResponse) get_response = NULL;
  g_autoptr(GBytes) got = NULL;

  g_assert_no_error (error);
  kv_kv_service_call_put (kv, put, NULL, NULL, store_result, &put_result);
  put_response = kv_kv_service_call_put_finish (kv, wait_result (&put_result), &error);
  g_assert_no_error (error);
  kv_kv_service_call_get (kv, get, NULL, NULL, store_result, &get_result);
  get_response = kv_kv_service_call_get_finish (kv, wait_result (&get_result), &error);
  g_assert_no_error (error);
  g_assert_true (kv_get_response_get_found (get_response));
  got = kv_get_response_get_value (get_response);
  g_assert_true (g_bytes_equal (got, bytes));
}

static void
test_two_hosts (void)
{
  const char *endpoints[] = { f.etcd->url, NULL };
  const char *plugins[] = { "kv", NULL };
  g_autoptr(CpEtcdDiscovery) discovery = cp_etcd_discovery_new (endpoints, PREFIX);
  g_autoptr(CpClient) client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  g_autofree char *cert = cert_path ("host.pem");
  g_autofree char *key = cert_path ("host.key");
  g_autofree char *ca = cert_path ("ca.pem");
  g_autofree char *line = NULL;
  g_autofree char *url = NULL;
  g_autofree char *url2 = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid, pid2;
  gint64 t0;

  /* 1. Host A launches the plugin and registers it. */
  start_host_a ();
  line = host_a_expect ("registered ");
  url = parse_registered (line, &pid);
  g_assert_true (g_str_has_prefix (url, "https://127.0.0.1:"));

  /* 2. Host B finds it in etcd and calls it over mutual TLS. */
  cp_etcd_discovery_set_plugin_name (discovery, "kv");
  cp_client_set_plugins (client, plugins);
  g_assert_true (cp_client_set_tls_files (client, cert, key, ca, &error));
  g_assert_no_error (error);
  cp_client_connect_async (client, NULL, store_result, &result);
  g_assert_true (cp_client_connect_finish (client, wait_result (&result), &error));
  g_assert_no_error (error);
  g_assert_cmpstr (cp_client_get_url (client), ==, url);
  put_get (client, "from host B");

  /* 3. The plugin dies: it leaves B's view. */
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  wait_view (discovery, (const char * const []) { NULL });
  /* Reported, not asserted: what the closing notes quote. */
  g_test_message ("timing: plugin SIGKILL -> gone from B's view: %.0f ms (host A revokes)",
                  (g_get_monotonic_time () - t0) / 1000.0);

  /* 4. Host A restarts it: it comes back, and B calls it again. */
  g_clear_pointer (&line, g_free);
  line = host_a_expect ("registered ");
  url2 = parse_registered (line, &pid2);
  g_assert_cmpint (pid2, !=, pid);
  wait_view (discovery, (const char * const []) { url2, NULL });
  g_test_message ("timing: plugin SIGKILL -> restarted one in B's view: %.0f ms "
                  "(host A's restart delay is 1 s)", (g_get_monotonic_time () - t0) / 1000.0);
  wait_ready (client);
  g_test_message ("timing: plugin SIGKILL -> B's client ready again: %.0f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_cmpstr (cp_client_get_url (client), ==, url2);
  put_get (client, "again");

  /* 5. Host A itself dies (no revoke): the entry goes when its lease
   * expires. */
  t0 = g_get_monotonic_time ();
  g_subprocess_force_exit (f.host_a);
  g_assert_true (g_subprocess_wait (f.host_a, NULL, NULL));
  wait_view (discovery, (const char * const []) { NULL });
  g_test_message ("timing: host A SIGKILL -> gone from B's view: %.0f ms (lease TTL 2 s)",
                  (g_get_monotonic_time () - t0) / 1000.0);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  int status;

  g_test_init (&argc, &argv, NULL);
  if (openssl == NULL)
    {
      g_print ("1..0 # SKIP no openssl to make the test certificates\n");
      return 77;
    }
  f.etcd = etcd_harness_start ();
  f.certs = g_dir_make_tmp ("cp-two-hosts-XXXXXX", &error);
  g_assert_no_error (error);
  make_certificates ();

  g_test_add_func ("/two-hosts/discover-call-kill-restart", test_two_hosts);
  status = g_test_run ();

  if (f.host_a != NULL)
    {
      g_subprocess_force_exit (f.host_a);
      g_subprocess_wait (f.host_a, NULL, NULL);
    }
  g_clear_object (&f.host_a_out);
  g_clear_object (&f.host_a);
  g_queue_clear_full (&f.lines, g_free);
  {
    g_autoptr(GFile) dir = g_file_new_for_path (f.certs);
    g_autoptr(GFileEnumerator) children =
      g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME, 0, NULL, NULL);
    GFile *child;

    while (children != NULL && g_file_enumerator_iterate (children, NULL, &child, NULL, NULL) &&
           child != NULL)
      g_file_delete (child, NULL, NULL);
    g_file_delete (dir, NULL, NULL);
  }
  g_free (f.certs);
  etcd_harness_free (f.etcd);
  return status;
}
