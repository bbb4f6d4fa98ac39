/* k8s-harness.c: a real etcd and kube-apiserver on 127.0.0.1 for the k8s tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>

#include "k8s-harness.h"

#define STARTUP_TIMEOUT_S 90

static guint
free_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (socket);
  g_assert_true (g_socket_bind (socket, any, FALSE, &error));
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* The children die with the test, even when it aborts. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
spawn (K8sHarness         *h,
       const char         *log_name,
       const char * const *argv)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_autofree char *log = g_build_filename (h->dir, log_name, NULL);
  g_autoptr(GError) error = NULL;
  GSubprocess *process;
  int fd = g_open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

  g_assert_cmpint (fd, >=, 0);
  g_subprocess_launcher_take_stdout_fd (launcher, fd);
  g_subprocess_launcher_set_flags (launcher, G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  g_subprocess_launcher_set_cwd (launcher, h->dir);
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  return process;
}

static void
waited_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static gboolean
kill_cb (gpointer user_data)
{
  g_subprocess_force_exit (user_data);
  return G_SOURCE_REMOVE;
}

/* SIGTERM, and SIGKILL after 10 s: the apiserver's graceful termination
 * may wait a minute for requests it still counts as running. */
static void
stop (GSubprocess **process)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GSource) timeout = NULL;
  gboolean done = FALSE;

  if (*process == NULL)
    return;
  /* In a private context: what the test runs in the default one (a
   * discovery watching again) waits meanwhile. */
  context = g_main_context_new ();
  g_main_context_push_thread_default (context);
  timeout = g_timeout_source_new_seconds (10);
  g_source_set_callback (timeout, kill_cb, *process, NULL);
  g_source_attach (timeout, context);
  g_subprocess_send_signal (*process, SIGTERM);
  g_subprocess_wait_async (*process, NULL, waited_cb, &done);
  while (!done)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_main_context_pop_thread_default (context);
  g_clear_object (process);
}

static gboolean
accept_any (SoupMessage          *message,
            GTlsCertificate      *certificate,
            GTlsCertificateFlags  errors,
            gpointer              user_data)
{
  return TRUE;
}

guint
k8s_harness_request (K8sHarness  *h,
                     const char  *method,
                     const char  *path,
                     const char  *content_type,
                     const char  *body,
                     char       **out_body)
{
  g_autofree char *url = g_str_has_prefix (path, "http") ? g_strdup (path)
                                                         : g_strconcat (h->server, path, NULL);
  g_autoptr(SoupMessage) message = soup_message_new (method, url);
  g_autofree char *auth = g_strdup_printf ("Bearer %s", h->token);
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (message);
  soup_message_headers_replace (soup_message_get_request_headers (message),
                                "Authorization", auth);
  g_signal_connect (message, "accept-certificate", G_CALLBACK (accept_any), NULL);
  if (body != NULL)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (message, content_type, bytes);
    }
  answer = soup_session_send_and_read (h->session, message, NULL, &error);
  if (answer == NULL)
    {
      if (out_body != NULL)
        *out_body = g_strdup (error->message);
      return 0;
    }
  if (out_body != NULL)
    *out_body = g_strndup (g_bytes_get_data (answer, NULL), g_bytes_get_size (answer));
  return soup_message_get_status (message);
}

/* Polls @url until it answers 200. */
static void
wait_ready (K8sHarness  *h,
            GSubprocess *process,
            const char  *url,
            const char  *what)
{
  gint64 end = g_get_monotonic_time () + STARTUP_TIMEOUT_S * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *body = NULL;

      if (k8s_harness_request (h, "GET", url, NULL, NULL, &body) == 200)
        return;
      if (g_subprocess_get_identifier (process) == NULL)
        g_error ("%s exited at start-up (see %s)", what, h->dir);
      if (g_get_monotonic_time () > end)
        g_error ("%s not ready after %d s: %s", what, STARTUP_TIMEOUT_S, body);
      g_usleep (100 * 1000);
    }
}

static void
start_etcd (K8sHarness *h)
{
  guint peer = free_port ();
  g_autofree char *data = g_build_filename (h->dir, "etcd", NULL);
  g_autofree char *client = g_strdup_printf ("http://127.0.0.1:%u", h->etcd_port);
  g_autofree char *peer_url = g_strdup_printf ("http://127.0.0.1:%u", peer);
  g_autofree char *cluster = g_strdup_printf ("t=%s", peer_url);
  g_autofree char *health = g_strdup_printf ("%s/health", client);
  const char *argv[] = {
    "etcd", "--name", "t", "--data-dir", data,
    "--listen-client-urls", client, "--advertise-client-urls", client,
    "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
    "--initial-cluster", cluster, "--log-level", "warn", NULL
  };

  h->etcd = spawn (h, "etcd.log", argv);
  wait_ready (h, h->etcd, health, "etcd");
}

void
k8s_harness_start_apiserver (K8sHarness *h)
{
  g_autofree char *etcd = g_strdup_printf ("--etcd-servers=%s", h->etcd_url);
  g_autofree char *port = g_strdup_printf ("--secure-port=%u", h->api_port);
  g_autofree char *certs = g_strdup_printf ("--cert-dir=%s/certs", h->dir);
  g_autofree char *readyz = g_strdup_printf ("%s/readyz", h->server);
  const char *argv[] = {
    h->apiserver_bin, etcd, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
    port, "--endpoint-reconciler-type=none", certs,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--service-account-key-file=sa.pub", "--service-account-signing-key-file=sa.key",
    "--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=AlwaysAllow",
    "--token-auth-file=tokens.csv", "--client-ca-file=client-ca.crt", NULL
  };

  g_assert_null (h->apiserver);
  h->apiserver = spawn (h, "apiserver.log", argv);
  wait_ready (h, h->apiserver, readyz, "kube-apiserver");
}

void
k8s_harness_stop_apiserver (K8sHarness *h)
{
  stop (&h->apiserver);
}

static void
run (K8sHarness         *h,
     const char * const *argv,
     char              **out)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  int status = 0;

  g_spawn_sync (h->dir, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                out, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s failed: %s", argv[0], err);
}

/* The apiserver binary, built (or found cached) by the build script. */
static char *
find_apiserver (const char *build_script)
{
  const char *argv[] = { "sh", build_script, NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                &out, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_autofree char *go = g_find_program_in_path ("go");

      if (go == NULL)
        {
          printf ("SKIP: Go is missing: kube-apiserver cannot be built (%s)\n", build_script);
          exit (77);
        }
      g_error ("building kube-apiserver failed: %s", err);
    }
  g_strstrip (out);
  return g_steal_pointer (&out);
}

static void
write_file (K8sHarness *h,
            const char *name,
            const char *text)
{
  g_autofree char *path = g_build_filename (h->dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
  g_assert_no_error (error);
}

K8sHarness *
k8s_harness_start (const char *build_script)
{
  K8sHarness *h = g_new0 (K8sHarness, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *tokens = NULL;
  g_autofree char *config = NULL;
  const char *keygen[] = { "openssl", "genrsa", "-out", "sa.key", "2048", NULL };
  const char *pubout[] = { "openssl", "rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", NULL };
  /* A client CA the apiserver trusts, and a client certificate it signed
   * (group system:masters). */
  const char *client_ca[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                              "-keyout", "client-ca.key", "-out", "client-ca.crt",
                              "-subj", "/CN=cp-test-client-ca", "-days", "2", NULL };
  const char *client_csr[] = { "openssl", "req", "-newkey", "rsa:2048", "-nodes",
                               "-keyout", "client.key", "-out", "client.csr",
                               "-subj", "/O=system:masters/CN=cp-test-client", NULL };
  const char *client_sign[] = { "openssl", "x509", "-req", "-in", "client.csr",
                                "-CA", "client-ca.crt", "-CAkey", "client-ca.key",
                                "-CAcreateserial", "-out", "client.crt", "-days", "2", NULL };

  h->apiserver_bin = find_apiserver (build_script);
  h->dir = g_dir_make_tmp ("cp-k8s-XXXXXX", &error);
  g_assert_no_error (error);
  h->session = soup_session_new ();
  h->etcd_port = free_port ();
  h->api_port = free_port ();
  h->etcd_url = g_strdup_printf ("http://127.0.0.1:%u", h->etcd_port);
  h->server = g_strdup_printf ("https://127.0.0.1:%u", h->api_port);
  h->token = g_uuid_string_random ();
  h->ca_file = g_build_filename (h->dir, "certs", "apiserver.crt", NULL);
  h->kubeconfig = g_build_filename (h->dir, "kubeconfig", NULL);

  run (h, keygen, NULL);
  run (h, pubout, NULL);
  run (h, client_ca, NULL);
  run (h, client_csr, NULL);
  run (h, client_sign, NULL);
  tokens = g_strdup_printf ("%s,cp-test,cp-test-uid,system:masters\n", h->token);
  write_file (h, "tokens.csv", tokens);

  start_etcd (h);
  k8s_harness_start_apiserver (h);

  config = g_strdup_printf ("apiVersion: v1\n"
                            "kind: Config\n"
                            "clusters:\n"
                            "- cluster:\n"
                            "    certificate-authority: certs/apiserver.crt\n"
                            "    server: %s\n"
                            "  name: test\n"
                            "contexts:\n"
                            "- context:\n"
                            "    cluster: test\n"
                            "    user: test\n"
                            "  name: test\n"
                            "current-context: test\n"
                            "users:\n"
                            "- name: test\n"
                            "  user:\n"
                            "    token: \"%s\"\n", h->server, h->token);
  write_file (h, "kubeconfig", config);
  return h;
}

static void
remove_tree (GFile *dir)
{
  g_autoptr(GFileEnumerator) children =
    g_file_enumerate_children (dir, G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE,
                               G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  GFileInfo *info;

  while (children != NULL && (info = g_file_enumerator_next_file (children, NULL, NULL)) != NULL)
    {
      g_autoptr(GFile) child = g_file_get_child (dir, g_file_info_get_name (info));

      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        remove_tree (child);
      else
        g_file_delete (child, NULL, NULL);
      g_object_unref (info);
    }
  g_file_delete (dir, NULL, NULL);
}

void
k8s_harness_free (K8sHarness *h)
{
  g_autoptr(GFile) dir = g_file_new_for_path (h->dir);

  stop (&h->apiserver);
  stop (&h->etcd);
  remove_tree (dir);
  g_clear_object (&h->session);
  g_free (h->dir);
  g_free (h->apiserver_bin);
  g_free (h->etcd_url);
  g_free (h->server);
  g_free (h->token);
  g_free (h->ca_file);
  g_free (h->kubeconfig);
  g_free (h);
}

char *
k8s_harness_new_namespace (K8sHarness *h)
{
  char *ns = g_strdup_printf ("cp-test-%u-%u", (guint) getpid () % 100000, ++h->namespaces);
  g_autofree char *body = g_strdup_printf ("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                                           "\"metadata\":{\"name\":\"%s\"}}", ns);
  g_autofree char *answer = NULL;
  guint status = k8s_harness_request (h, "POST", "/api/v1/namespaces", "application/json",
                                      body, &answer);

  if (status != 201)
    g_error ("creating namespace %s: HTTP %u %s", ns, status, answer);
  return ns;
}

void
k8s_harness_create_slice (K8sHarness *h,
                          const char *ns,
                          const char *name,
                          const char *service,
                          const char *endpoints_json)
{
  g_autofree char *path = g_strdup_printf ("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices", ns);
  g_autofree char *body =
    g_strdup_printf ("{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
                     "\"metadata\":{\"name\":\"%s\",\"labels\":{\"kubernetes.io/service-name\":\"%s\"}},"
                     "\"addressType\":\"IPv4\","
                     "\"ports\":[{\"name\":\"grpc\",\"port\":8080,\"protocol\":\"TCP\"}],"
                     "\"endpoints\":%s}", name, service, endpoints_json);
  g_autofree char *answer = NULL;
  guint status = k8s_harness_request (h, "POST", path, "application/json", body, &answer);

  if (status != 201)
    g_error ("creating EndpointSlice %s: HTTP %u %s", name, status, answer);
}

void
k8s_harness_patch_slice (K8sHarness *h,
                         const char *ns,
                         const char *name,
                         const char *endpoints_json)
{
  g_autofree char *path = g_strdup_printf ("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/%s",
                                           ns, name);
  g_autofree char *body = g_strdup_printf ("{\"endpoints\":%s}", endpoints_json);
  g_autofree char *answer = NULL;
  guint status = k8s_harness_request (h, "PATCH", path, "application/merge-patch+json",
                                      body, &answer);

  if (status != 200)
    g_error ("patching EndpointSlice %s: HTTP %u %s", name, status, answer);
}

void
k8s_harness_delete_slice (K8sHarness *h,
                          const char *ns,
                          const char *name)
{
  g_autofree char *path = g_strdup_printf ("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/%s",
                                           ns, name);
  g_autofree char *answer = NULL;
  guint status = k8s_harness_request (h, "DELETE", path, NULL, NULL, &answer);

  if (status != 200)
    g_error ("deleting EndpointSlice %s: HTTP %u %s", name, status, answer);
}

void
k8s_harness_compact_etcd (K8sHarness *h)
{
  const char *status_argv[] = { "etcdctl", "--endpoints", h->etcd_url, "endpoint", "status",
                                "-w", "json", NULL };
  g_autofree char *status = NULL;
  g_autofree char *revision = NULL;
  const char *at;

  for (int i = 0; i < 3; i++)
    {
      const char *put[] = { "etcdctl", "--endpoints", h->etcd_url, "put", "/cp-test/junk",
                            i == 0 ? "a" : i == 1 ? "b" : "c", NULL };
      g_autofree char *ok = NULL;

      run (h, put, &ok);
    }
  run (h, status_argv, &status);
  at = strstr (status, "\"revision\":");
  g_assert_nonnull (at);
  revision = g_strdup_printf ("%" G_GUINT64_FORMAT,
                              g_ascii_strtoull (at + strlen ("\"revision\":"), NULL, 10));
  {
    const char *compact[] = { "etcdctl", "--endpoints", h->etcd_url, "compact", revision, NULL };
    g_autofree char *ok = NULL;

    run (h, compact, &ok);
  }
}
