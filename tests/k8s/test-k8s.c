/* test-k8s.c: CpKubernetesDiscovery against a real kube-apiserver and etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One etcd and one kube-apiserver (k8s-harness.c) for the whole program;
 * each test works in a namespace of its own and creates the EndpointSlices
 * itself (no controllers run). EndpointSlices refuse loopback addresses:
 * the slices name 192.0.2.x and the discovery's address-map sends those to
 * plugin servers on 127.0.0.1.
 */
#include <string.h>

#include <connectplugin.h>
#include "cp-kubernetes-private.h"
#include "drain-plugin.h"
#include "k8s-harness.h"

static K8sHarness *harness;

#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    gint64 _end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC; \
    while (!(cond)) \
      { \
        if (g_get_monotonic_time () > _end) \
          g_error ("timed out waiting for %s", #cond); \
        g_main_context_iteration (NULL, TRUE); \
      } \
  } G_STMT_END

static gboolean
tick_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

static CpKubernetesDiscovery *
new_discovery (const char *ns,
               const char *service)
{
  g_autoptr(GError) error = NULL;
  CpKubernetesDiscovery *discovery =
    cp_kubernetes_discovery_new_from_kubeconfig (harness->kubeconfig, NULL, service, ns,
                                                 "grpc", &error);

  g_assert_no_error (error);
  g_assert_nonnull (discovery);
  return discovery;
}

static void
result_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static char **
discover (CpKubernetesDiscovery  *discovery,
          GError                **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_discovery_discover_async (CP_DISCOVERY (discovery), NULL, NULL, result_cb, &result);
  WAIT_UNTIL (result != NULL);
  return cp_discovery_discover_finish (CP_DISCOVERY (discovery), result, error);
}

static char *
url_of (const char *pod,
        const char *ns)
{
  return g_strdup_printf ("k8s:///%s.%s:8080", pod, ns);
}

/* Whether the ready URLs are exactly the pods given (NULL-terminated). */
static gboolean
ready_is (CpKubernetesDiscovery *discovery,
          const char            *ns,
          ...)
{
  g_auto(GStrv) urls = cp_kubernetes_discovery_dup_ready_urls (discovery);
  guint n = 0;
  const char *pod;
  va_list args;
  gboolean same = TRUE;

  va_start (args, ns);
  while ((pod = va_arg (args, const char *)) != NULL)
    {
      g_autofree char *url = url_of (pod, ns);

      same = same && urls[n] != NULL && strcmp (urls[n], url) == 0;
      n++;
    }
  va_end (args);
  return same && g_strv_length (urls) == n;
}

/* The endpoints JSON of one pod. */
static char *
endpoint (const char *pod,
          const char *address,
          const char *ready)
{
  return g_strdup_printf ("{\"addresses\":[\"%s\"],%s%s%s\"targetRef\":{\"kind\":\"Pod\",\"name\":\"%s\"}}",
                          address, ready != NULL ? "\"conditions\":{\"ready\":" : "",
                          ready != NULL ? ready : "", ready != NULL ? "}," : "", pod);
}

/* List → the ready endpoints only; the other service's slice is not seen. */
static void
test_list_ready (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  g_autofree char *e1 = endpoint ("p1", "192.0.2.1", "true");
  g_autofree char *e2 = endpoint ("p2", "192.0.2.2", "false");
  g_autofree char *e3 = endpoint ("p3", "192.0.2.3", NULL);
  g_autofree char *e4 = endpoint ("q1", "192.0.2.4", "true");
  g_autofree char *list = g_strdup_printf ("[%s,%s,%s]", e1, e2, e3);
  g_autofree char *other = g_strdup_printf ("[%s]", e4);
  g_autoptr(CpKubernetesDiscovery) discovery = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;
  g_autofree char *u1 = url_of ("p1", ns);
  g_autofree char *u3 = url_of ("p3", ns);
  gint64 start;

  k8s_harness_create_slice (harness, ns, "plug-a", "plug", list);
  k8s_harness_create_slice (harness, ns, "other-a", "other", other);
  discovery = new_discovery (ns, "plug");
  start = g_get_monotonic_time ();
  urls = discover (discovery, &error);
  g_test_message ("first discovery (TLS connection + list): %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (urls), ==, 2);
  g_assert_cmpstr (urls[0], ==, u1);
  g_assert_cmpstr (urls[1], ==, u3);
  g_assert_cmpstr (cp_kubernetes_discovery_get_server (discovery), ==, harness->server);

  /* A service without slices has no ready endpoint. */
  {
    g_autoptr(CpKubernetesDiscovery) none = new_discovery (ns, "nothing");
    g_auto(GStrv) empty = discover (none, &error);

    g_assert_null (empty);
    g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  }
}

static void
changed_cb (CpDiscovery *discovery,
            guint       *count)
{
  (*count)++;
}

/* A slice turning an endpoint not ready (and another ready) emits
 * "changed": the client moves to the live endpoint; the call running on
 * the old one finishes; new calls go to the new one. */
static void
test_readiness_moves_client (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  DrainPlugin *a = drain_plugin_new ("A");
  DrainPlugin *b = drain_plugin_new ("B");
  g_autofree char *map_a = g_strdup_printf ("192.0.2.1=127.0.0.1:%u", a->port);
  g_autofree char *map_b = g_strdup_printf ("192.0.2.2=127.0.0.1:%u", b->port);
  const char *map[] = { map_a, map_b, NULL };
  g_autofree char *a_ready = endpoint ("pa", "192.0.2.1", "true");
  g_autofree char *a_gone = endpoint ("pa", "192.0.2.1", "false");
  g_autofree char *b_ready = endpoint ("pb", "192.0.2.2", "true");
  g_autofree char *b_not = endpoint ("pb", "192.0.2.2", "false");
  g_autofree char *before = g_strdup_printf ("[%s,%s]", a_ready, b_not);
  g_autofree char *after = g_strdup_printf ("[%s,%s]", a_gone, b_ready);
  g_autofree char *url_a = url_of ("pa", ns);
  g_autofree char *url_b = url_of ("pb", ns);
  g_autoptr(CpKubernetesDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) slow_error = NULL;
  g_autofree char *answer = NULL;
  g_autofree char *slow_answer = NULL;
  gboolean slow_done = FALSE;
  guint changed = 0;
  guint ticker = g_timeout_add (50, tick_cb, NULL);
  gint64 start;

  k8s_harness_create_slice (harness, ns, "plug-a", "plug", before);
  discovery = new_discovery (ns, "plug");
  g_object_set (discovery, "address-map", map, NULL);
  g_signal_connect (discovery, "changed", G_CALLBACK (changed_cb), &changed);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  g_object_set (client, "health-interval-ms", 100, NULL);
  g_assert_true (drain_connect (client, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (cp_client_get_url (client), ==, url_a);
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);
  answer = drain_say (proxy, "hi", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (answer, ==, "A:hi");
  g_clear_pointer (&answer, g_free);

  /* A call in flight on A when A stops being ready. */
  drain_say_start (proxy, "slow", &slow_done, &slow_answer, &slow_error);
  WAIT_UNTIL (a->held->len == 1);

  start = g_get_monotonic_time ();
  k8s_harness_patch_slice (harness, ns, "plug-a", after);
  WAIT_UNTIL (changed > 0);
  g_test_message ("readiness flip: PATCH to \"changed\" in %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);
  WAIT_UNTIL (g_strcmp0 (cp_client_get_url (client), url_b) == 0 &&
              cp_client_get_state (client) == CP_CLIENT_STATE_READY);
  g_test_message ("readiness flip: PATCH to the client READY on B in %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);
  g_assert_true (ready_is (discovery, ns, "pb", NULL));

  /* New calls go to B, through the same proxy. */
  answer = drain_say (proxy, "hi", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (answer, ==, "B:hi");
  g_assert_false (slow_done);

  /* The call on A finishes normally. */
  drain_plugin_release (a);
  WAIT_UNTIL (slow_done);
  g_assert_no_error (slow_error);
  g_assert_cmpstr (slow_answer, ==, "A:slow");
  g_assert_cmpuint (a->calls, ==, 2);

  g_source_remove (ticker);
    drain_plugin_free (a);
  drain_plugin_free (b);
}

/* Deleting the slice removes the endpoints: the client cannot reconnect
 * and new calls fail with unavailable. */
static void
test_slice_deleted (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  DrainPlugin *a = drain_plugin_new ("A");
  g_autofree char *map_a = g_strdup_printf ("192.0.2.1=127.0.0.1:%u", a->port);
  const char *map[] = { map_a, NULL };
  g_autofree char *e1 = endpoint ("pa", "192.0.2.1", "true");
  g_autofree char *list = g_strdup_printf ("[%s]", e1);
  g_autoptr(CpKubernetesDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(CpProxy) proxy = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *answer = NULL;
  guint ticker = g_timeout_add (50, tick_cb, NULL);

  k8s_harness_create_slice (harness, ns, "plug-a", "plug", list);
  discovery = new_discovery (ns, "plug");
  g_object_set (discovery, "address-map", map, NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  g_assert_true (drain_connect (client, &error));
  g_assert_no_error (error);
  proxy = cp_client_dispense (client, "echo", HOSTTEST_TYPE_ECHO_SERVICE_PROXY, &error);
  g_assert_no_error (error);

  k8s_harness_delete_slice (harness, ns, "plug-a");
  WAIT_UNTIL (ready_is (discovery, ns, NULL));
  WAIT_UNTIL (cp_client_get_state (client) == CP_CLIENT_STATE_FAILED);
  g_assert_error (cp_client_get_error (client), CP_ERROR, CP_ERROR_UNAVAILABLE);
  answer = drain_say (proxy, "hi", &error);
  g_assert_null (answer);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (a->calls, ==, 0);

  g_source_remove (ticker);
    drain_plugin_free (a);
}

/* The apiserver restarts (same port, same etcd) while the discovery
 * watches: it watches again and sees what changed afterwards. */
static void
test_apiserver_restart (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  g_autofree char *e1 = endpoint ("p1", "192.0.2.1", "true");
  g_autofree char *e2 = endpoint ("p2", "192.0.2.2", "true");
  g_autofree char *one = g_strdup_printf ("[%s]", e1);
  g_autofree char *two = g_strdup_printf ("[%s,%s]", e1, e2);
  g_autoptr(CpKubernetesDiscovery) discovery = new_discovery (ns, "plug");
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;
  guint lists = 0, watches = 0, watches_before = 0;
  guint ticker = g_timeout_add (50, tick_cb, NULL);
  gint64 start;

  k8s_harness_create_slice (harness, ns, "plug-a", "plug", one);
  urls = discover (discovery, &error);
  g_assert_no_error (error);
  g_assert_true (ready_is (discovery, ns, "p1", NULL));
  cp_kubernetes_discovery_get_counts (discovery, &lists, &watches_before);
  g_assert_cmpuint (lists, ==, 1);

  k8s_harness_stop_apiserver (harness);
  /* The watch breaks and is retried while the apiserver is down. */
  WAIT_UNTIL ((cp_kubernetes_discovery_get_counts (discovery, &lists, &watches),
               watches > watches_before + 1));
  g_assert_true (ready_is (discovery, ns, "p1", NULL));
  start = g_get_monotonic_time ();
  k8s_harness_start_apiserver (harness);
  g_test_message ("apiserver restart: ready again in %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);

  start = g_get_monotonic_time ();
  k8s_harness_patch_slice (harness, ns, "plug-a", two);
  WAIT_UNTIL (ready_is (discovery, ns, "p1", "p2", NULL));
  cp_kubernetes_discovery_get_counts (discovery, &lists, &watches);
  g_test_message ("apiserver restart: a change seen %.1f ms after the PATCH; %u lists, %u watches",
                  (g_get_monotonic_time () - start) / 1000.0, lists, watches);
  g_source_remove (ticker);
}

/* A resourceVersion compacted away: the watch gets 410 Gone and the
 * discovery lists again. */
static void
test_gone_relists (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  g_autofree char *e1 = endpoint ("p1", "192.0.2.1", "true");
  g_autofree char *e2 = endpoint ("p2", "192.0.2.2", "true");
  g_autofree char *one = g_strdup_printf ("[%s]", e1);
  g_autofree char *two = g_strdup_printf ("[%s]", e2);
  g_autoptr(CpKubernetesDiscovery) discovery = new_discovery (ns, "plug");
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;
  guint lists = 0, watches = 0;
  guint ticker = g_timeout_add (50, tick_cb, NULL);
  gint64 start;

  k8s_harness_create_slice (harness, ns, "plug-a", "plug", one);
  urls = discover (discovery, &error);
  g_assert_no_error (error);
  cp_kubernetes_discovery_get_counts (discovery, &lists, &watches);
  g_assert_cmpuint (lists, ==, 1);

  /* While the apiserver is down, etcd moves on and forgets its history:
   * the discovery's resourceVersion is gone when it comes back. */
  k8s_harness_stop_apiserver (harness);
  k8s_harness_compact_etcd (harness);
  k8s_harness_start_apiserver (harness);
  start = g_get_monotonic_time ();
  WAIT_UNTIL ((cp_kubernetes_discovery_get_counts (discovery, &lists, &watches), lists >= 2));
  g_test_message ("410 Gone: listed again %.1f ms after the apiserver was ready (%u watches)",
                  (g_get_monotonic_time () - start) / 1000.0, watches);

  /* Listed again, it watches again: later changes arrive. */
  k8s_harness_patch_slice (harness, ns, "plug-a", two);
  WAIT_UNTIL (ready_is (discovery, ns, "p2", NULL));
  g_source_remove (ticker);
}

/* The in-cluster configuration: token and CA from the service-account
 * directory, the apiserver from KUBERNETES_SERVICE_HOST/PORT, the
 * namespace from the pod's. */
static void
test_in_cluster (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  g_autofree char *e1 = endpoint ("p1", "192.0.2.1", "true");
  g_autofree char *one = g_strdup_printf ("[%s]", e1);
  g_autofree char *sa = g_build_filename (harness->dir, "serviceaccount", NULL);
  g_autofree char *ca = NULL;
  g_autofree char *token_path = g_build_filename (sa, "token", NULL);
  g_autofree char *ca_path = g_build_filename (sa, "ca.crt", NULL);
  g_autofree char *ns_path = g_build_filename (sa, "namespace", NULL);
  g_autofree char *port = g_strdup_printf ("%u", harness->api_port);
  g_autoptr(CpKubernetesDiscovery) discovery = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;
  g_autofree char *token_line = g_strdup_printf ("%s\n", harness->token);

  g_assert_cmpint (g_mkdir_with_parents (sa, 0700), ==, 0);
  g_assert_true (g_file_get_contents (harness->ca_file, &ca, NULL, NULL));
  g_assert_true (g_file_set_contents (token_path, token_line, -1, NULL));
  g_assert_true (g_file_set_contents (ca_path, ca, -1, NULL));
  g_assert_true (g_file_set_contents (ns_path, ns, -1, NULL));
  k8s_harness_create_slice (harness, ns, "plug-a", "plug", one);

  g_unsetenv ("KUBERNETES_SERVICE_HOST");
  discovery = cp_kubernetes_discovery_new_in_cluster_at (sa, "plug", NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_null (discovery);
  g_clear_error (&error);

  g_setenv ("KUBERNETES_SERVICE_HOST", "127.0.0.1", TRUE);
  g_setenv ("KUBERNETES_SERVICE_PORT", port, TRUE);
  discovery = cp_kubernetes_discovery_new_in_cluster_at (sa, "plug", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cp_kubernetes_discovery_get_namespace (discovery), ==, ns);
  urls = discover (discovery, &error);
  g_assert_no_error (error);
  g_assert_true (ready_is (discovery, ns, "p1", NULL));
  g_unsetenv ("KUBERNETES_SERVICE_HOST");
  g_unsetenv ("KUBERNETES_SERVICE_PORT");
}

/* A wrong token: unauthenticated; a CA that did not sign the apiserver's
 * certificate: the TLS handshake fails (unavailable). */
static void
test_bad_credentials (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  g_autofree char *path = g_build_filename (harness->dir, "bad-kubeconfig", NULL);
  g_autofree char *config = g_strdup_printf ("clusters:\n"
                                             "- name: c\n"
                                             "  cluster:\n"
                                             "    server: %s\n"
                                             "    certificate-authority: %s\n"
                                             "contexts:\n"
                                             "- name: x\n"
                                             "  context: {cluster: c, user: u}\n", harness->server,
                                             harness->ca_file);
  g_autofree char *good = g_strdup_printf ("apiVersion: v1\n"
                                           "clusters:\n"
                                           "- name: c\n"
                                           "  cluster:\n"
                                           "    server: %s/\n"
                                           "    certificate-authority: %s\n"
                                           "contexts:\n"
                                           "- name: x\n"
                                           "  context:\n"
                                           "    cluster: c\n"
                                           "    user: u\n"
                                           "current-context: x\n"
                                           "users:\n"
                                           "- name: u\n"
                                           "  user:\n"
                                           "    token: not-the-token\n",
                                           harness->server, harness->ca_file);
  g_autoptr(CpKubernetesDiscovery) discovery = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;

  /* Flow mappings other than {} are refused with the line. */
  g_assert_true (g_file_set_contents (path, config, -1, NULL));
  discovery = cp_kubernetes_discovery_new_from_kubeconfig (path, NULL, "plug", ns, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "line 8"));
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (path, good, -1, NULL));
  discovery = cp_kubernetes_discovery_new_from_kubeconfig (path, NULL, "plug", ns, NULL, &error);
  g_assert_no_error (error);
  urls = discover (discovery, &error);
  g_assert_null (urls);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);
}

/* A kubeconfig user with a client certificate (files relative to the
 * kubeconfig) and no token: the apiserver authenticates the certificate. */
static void
test_client_certificate (void)
{
  g_autofree char *ns = k8s_harness_new_namespace (harness);
  g_autofree char *e1 = endpoint ("p1", "192.0.2.1", "true");
  g_autofree char *one = g_strdup_printf ("[%s]", e1);
  g_autofree char *path = g_build_filename (harness->dir, "cert-kubeconfig", NULL);
  g_autofree char *config = g_strdup_printf ("apiVersion: v1\n"
                                             "kind: Config\n"
                                             "clusters:\n"
                                             "- cluster:\n"
                                             "    certificate-authority: certs/apiserver.crt\n"
                                             "    server: %s\n"
                                             "  name: c\n"
                                             "contexts:\n"
                                             "- context:\n"
                                             "    cluster: c\n"
                                             "    user: cert\n"
                                             "  name: with-cert\n"
                                             "- context:\n"
                                             "    cluster: c\n"
                                             "  name: anonymous\n"
                                             "current-context: anonymous\n"
                                             "users:\n"
                                             "- name: cert\n"
                                             "  user:\n"
                                             "    client-certificate: client.crt\n"
                                             "    client-key: client.key\n",
                                             harness->server);
  g_autoptr(CpKubernetesDiscovery) discovery = NULL;
  g_autoptr(CpKubernetesDiscovery) anonymous = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;

  g_assert_true (g_file_set_contents (path, config, -1, NULL));
  k8s_harness_create_slice (harness, ns, "plug-a", "plug", one);

  discovery = cp_kubernetes_discovery_new_from_kubeconfig (path, "with-cert", "plug", ns, "grpc",
                                                           &error);
  g_assert_no_error (error);
  urls = discover (discovery, &error);
  g_assert_no_error (error);
  g_assert_true (ready_is (discovery, ns, "p1", NULL));
  g_clear_pointer (&urls, g_strfreev);

  /* The same cluster without credentials: anonymous access is off. */
  anonymous = cp_kubernetes_discovery_new_from_kubeconfig (path, NULL, "plug", ns, "grpc", &error);
  g_assert_no_error (error);
  urls = discover (anonymous, &error);
  g_assert_null (urls);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAUTHENTICATED);

  /* Nothing keeps them (and their watch) alive. */
  g_object_add_weak_pointer (G_OBJECT (discovery), (gpointer *) &discovery);
  g_object_add_weak_pointer (G_OBJECT (anonymous), (gpointer *) &anonymous);
  g_object_unref (discovery);
  g_object_unref (anonymous);
  g_assert_null (discovery);
  g_assert_null (anonymous);
}

int
main (int    argc,
      char **argv)
{
  int status;
  gint64 start;

  g_test_init (&argc, &argv, NULL);
  if (argc < 2 && g_getenv ("CP_KUBE_BUILD_SCRIPT") == NULL)
    g_error ("usage: test-k8s BUILD-SCRIPT");
  start = g_get_monotonic_time ();
  harness = k8s_harness_start (argc >= 2 ? argv[1] : g_getenv ("CP_KUBE_BUILD_SCRIPT"));
  g_test_message ("etcd + kube-apiserver ready in %.1f ms",
                  (g_get_monotonic_time () - start) / 1000.0);

  g_test_add_func ("/k8s/bad-credentials", test_bad_credentials);
  g_test_add_func ("/k8s/list-ready", test_list_ready);
  g_test_add_func ("/k8s/readiness-moves-client", test_readiness_moves_client);
  g_test_add_func ("/k8s/slice-deleted", test_slice_deleted);
  g_test_add_func ("/k8s/apiserver-restart", test_apiserver_restart);
  g_test_add_func ("/k8s/gone-relists", test_gone_relists);
  g_test_add_func ("/k8s/in-cluster", test_in_cluster);
  g_test_add_func ("/k8s/client-certificate", test_client_certificate);
  status = g_test_run ();
  k8s_harness_free (harness);
  return status;
}
