/* test-kubeconfig.c: the kubeconfig reader and the EndpointSlice parsers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <glib/gstdio.h>

#include <connectplugin.h>
#include "cp-kubernetes-private.h"

static CpKubeConfig *
parse (const char  *text,
       const char  *base_dir,
       const char  *context,
       GError     **error)
{
  return cp_kube_config_parse (text, strlen (text), base_dir, context, error);
}

/* What kubectl writes, with comments, quotes, data fields and two contexts. */
static void
test_kubectl_style (void)
{
  g_autofree char *ca64 = g_base64_encode ((const guchar *) "CA PEM\n", 7);
  g_autofree char *cert64 = g_base64_encode ((const guchar *) "CERT", 4);
  g_autofree char *key64 = g_base64_encode ((const guchar *) "KEY", 3);
  g_autofree char *text =
    g_strdup_printf ("---\n"
                     "# written by kubectl\n"
                     "apiVersion: v1\n"
                     "clusters:\n"
                     "- cluster:\n"
                     "    certificate-authority-data: %s\n"
                     "    server: https://10.1.2.3:6443/\n"
                     "  name: prod\n"
                     "- cluster:\n"
                     "    insecure-skip-tls-verify: true\n"
                     "    server: \"http://[::1]:8080\"\n"
                     "  name: 'dev'   # a comment\n"
                     "contexts:\n"
                     "- context:\n"
                     "    cluster: prod\n"
                     "    namespace: plugins\n"
                     "    user: admin\n"
                     "  name: prod-admin\n"
                     "- context: {}\n"
                     "  name: empty\n"
                     "- name: dev\n"
                     "  context:\n"
                     "    cluster: dev\n"
                     "current-context: prod-admin\n"
                     "kind: Config\n"
                     "preferences: {}\n"
                     "users:\n"
                     "  - name: admin\n"
                     "    user:\n"
                     "      client-certificate-data: %s\n"
                     "      client-key-data: %s\n"
                     "      token: \"tok\\u00e9n\"\n", ca64, cert64, key64);
  g_autoptr(CpKubeConfig) config = NULL;
  g_autoptr(GError) error = NULL;

  config = parse (text, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->server, ==, "https://10.1.2.3:6443");
  g_assert_cmpstr (config->ca_pem, ==, "CA PEM\n");
  g_assert_false (config->insecure);
  g_assert_cmpstr (config->token, ==, "tok\xc3\xa9n");
  g_assert_cmpstr (config->client_cert_pem, ==, "CERT");
  g_assert_cmpstr (config->client_key_pem, ==, "KEY");
  g_assert_cmpstr (config->namespace, ==, "plugins");
  g_clear_pointer (&config, cp_kube_config_free);

  config = parse (text, NULL, "dev", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->server, ==, "http://[::1]:8080");
  g_assert_true (config->insecure);
  g_assert_null (config->token);
  g_assert_null (config->ca_pem);
  g_assert_null (config->namespace);
  g_clear_pointer (&config, cp_kube_config_free);

  config = parse (text, NULL, "empty", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "names no cluster"));
  g_clear_error (&error);

  config = parse (text, NULL, "missing", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (config);
}

/* Files named by the kubeconfig, relative to its directory. */
static void
test_files (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cp-kubeconfig-XXXXXX", &error);
  g_autofree char *ca = g_build_filename (dir, "ca.pem", NULL);
  g_autofree char *token = g_build_filename (dir, "token", NULL);
  g_autoptr(CpKubeConfig) config = NULL;
  const char *text = "clusters:\n"
                     "- name: c\n"
                     "  cluster:\n"
                     "    server: https://k8s.example:443\n"
                     "    certificate-authority: ca.pem\n"
                     "contexts:\n"
                     "- name: x\n"
                     "  context:\n"
                     "    cluster: c\n"
                     "    user: u\n"
                     "current-context: x\n"
                     "users:\n"
                     "- name: u\n"
                     "  user:\n"
                     "    tokenFile: token\n";

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (ca, "PEM TEXT", -1, NULL));
  g_assert_true (g_file_set_contents (token, "  secret\n", -1, NULL));
  config = parse (text, dir, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (config->ca_pem, ==, "PEM TEXT");
  g_assert_cmpstr (config->token, ==, "secret");
  g_clear_pointer (&config, cp_kube_config_free);

  /* From elsewhere, the relative names are not found. */
  config = parse (text, "/nonexistent", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_unlink (ca);
  g_unlink (token);
  g_rmdir (dir);
}

/* JSON is valid kubeconfig too. */
static void
test_json (void)
{
  const char *text = "{\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://h:1\","
                     "\"insecure-skip-tls-verify\":true}}],\"contexts\":[{\"name\":\"x\","
                     "\"context\":{\"cluster\":\"c\",\"user\":\"u\"}}],\"users\":[{\"name\":\"u\","
                     "\"user\":{\"token\":\"t\"}}],\"current-context\":\"x\"}";
  g_autoptr(GError) error = NULL;
  g_autoptr(CpKubeConfig) config = parse (text, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (config->server, ==, "https://h:1");
  g_assert_true (config->insecure);
  g_assert_cmpstr (config->token, ==, "t");
}

/* The YAML subset: block scalars, nested sequences, quoting. */
static void
test_yaml_subset (void)
{
  const char *text = "a: |\n"
                     "  line 1\n"
                     "  line 2\n"
                     "b: >-\n"
                     "  folded\n"
                     "  text\n"
                     "c:\n"
                     "- - x\n"
                     "  - 'it''s'\n"
                     "- y # comment\n"
                     "d: \"tab\\there\"\n"
                     "e: ~\n"
                     "f: a:b\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = cp_kube_yaml_parse (text, strlen (text), &error);
  g_autofree char *json = NULL;

  g_assert_no_error (error);
  json = json_to_string (root, FALSE);
  g_assert_cmpstr (json, ==, "{\"a\":\"line 1\\nline 2\\n\",\"b\":\"folded text\","
                             "\"c\":[[\"x\",\"it's\"],\"y\"],\"d\":\"tab\\there\",\"e\":null,"
                             "\"f\":\"a:b\"}");
}

static void
test_yaml_errors (void)
{
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
    { "", "empty" },
    { "# only a comment\n", "empty" },
    { "a: &anchor x\n", "line 1: flow collections, anchors" },
    { "a: *alias\n", "line 1: flow collections, anchors" },
    { "a: [1, 2]\n", "line 1: flow collections" },
    { "a:\n\tb: c\n", "line 2: tabs" },
    { "a: b\n  c: d\n", "line 2: bad indentation" },
    { "a:\n  b: c\n d: e\n", "line 3: bad indentation" },
    { "a: b\n---\nc: d\n", "line 2" },
    { "just a scalar\n", "line 1: expected" },
    { "a: \"unterminated\n", "line 1: bad quoted string" },
    { "a: \"bad \\q escape\"\n", "line 1: bad quoted string" },
    { "a: 'x' trailing\n", "line 1: bad quoted string" },
    { "{\"a\": ", "bad JSON" },
    { "{\"a\": 1} {\"b\": 2}", "not one JSON object" },
    { "[1] [2]", "not one JSON object" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) root = cp_kube_yaml_parse (cases[i].text, strlen (cases[i].text), &error);

      g_test_message ("%s", cases[i].text);
      g_assert_null (root);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, cases[i].message));
    }

  /* A NUL byte and bad UTF-8. */
  {
    g_autoptr(GError) error = NULL;

    g_assert_null (cp_kube_yaml_parse ("a: b\0c", 6, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    g_clear_error (&error);
    g_assert_null (cp_kube_yaml_parse ("a: \xff\n", 5, &error));
    g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  }
}

static void
test_config_errors (void)
{
  static const struct {
    const char *text;
    const char *message;
  } cases[] = {
    { "- a\n", "not a mapping" },
    { "clusters: []\n", "no context given" },
    { "current-context: x\n", "no context named" },
    { "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n",
      "no cluster named" },
    { "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
      "clusters:\n- name: c\n  cluster:\n    server: ftp://h\n", "not an http(s) URL" },
    { "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
      "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
      "    certificate-authority-data: \"not base64!\"\n", "not base64" },
    { "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
      "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
      "users:\n- name: u\n  user:\n    client-certificate-data: QUJD\n", "needs its key" },
    { "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
      "clusters:\n- name: c\n  cluster:\n    server: https://h\n", "no user named" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpKubeConfig) config = parse (cases[i].text, NULL, NULL, &error);

      g_test_message ("%s", cases[i].text);
      g_assert_null (config);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, cases[i].message));
    }
}

static const char slice_list[] =
  "{\"kind\":\"EndpointSliceList\",\"metadata\":{\"resourceVersion\":\"42\"},\"items\":["
  "{\"metadata\":{\"name\":\"s1\",\"resourceVersion\":\"40\"},"
  " \"ports\":[{\"name\":\"metrics\",\"port\":9090},{\"name\":\"grpc\",\"port\":8080}],"
  " \"endpoints\":["
  "  {\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true},\"targetRef\":{\"name\":\"Pod_1\"}},"
  "  {\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":false},\"hostname\":\"h2\"},"
  "  {\"addresses\":[\"10.0.0.3\"]},"
  "  {\"addresses\":[]},"
  "  {\"addresses\":[\"bad address!\"]},"
  "  {\"addresses\":[\"fd00::1\"],\"conditions\":{\"ready\":null}}]},"
  "{\"metadata\":{\"name\":\"s2\"},\"ports\":[{\"name\":\"other\",\"port\":1}],"
  " \"endpoints\":[{\"addresses\":[\"10.0.0.9\"]}]},"
  "{\"metadata\":{\"name\":\"s3\"},\"ports\":[{\"name\":\"grpc\",\"port\":8443,\"appProtocol\":\"https\"}],"
  " \"endpoints\":[{\"addresses\":[\"plugin.example\"]}]}]}";

static void
test_slice_list (void)
{
  g_autoptr(GPtrArray) slices = NULL;
  g_autofree char *rv = NULL;
  g_autoptr(GError) error = NULL;
  CpKubeSlice *slice;
  CpKubeEndpoint *e;
  g_autofree char *url = NULL;

  g_assert_true (cp_kube_slice_list_parse (slice_list, strlen (slice_list), "grpc",
                                           &slices, &rv, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (rv, ==, "42");
  g_assert_cmpuint (slices->len, ==, 3);

  slice = g_ptr_array_index (slices, 0);
  g_assert_cmpstr (slice->name, ==, "s1");
  g_assert_cmpuint (slice->endpoints->len, ==, 4);
  e = g_ptr_array_index (slice->endpoints, 0);
  g_assert_cmpstr (e->name, ==, "pod-1");
  g_assert_cmpstr (e->address, ==, "10.0.0.1");
  g_assert_cmpuint (e->port, ==, 8080);
  g_assert_true (e->ready);
  g_assert_false (e->tls);
  url = cp_kube_endpoint_url (e, "ns");
  g_assert_cmpstr (url, ==, "k8s:///pod-1.ns:8080");
  e = g_ptr_array_index (slice->endpoints, 1);
  g_assert_cmpstr (e->name, ==, "h2");
  g_assert_false (e->ready);
  e = g_ptr_array_index (slice->endpoints, 2);
  g_assert_cmpstr (e->name, ==, "10-0-0-3");
  g_assert_true (e->ready);
  e = g_ptr_array_index (slice->endpoints, 3);
  g_assert_cmpstr (e->name, ==, "fd00--1");
  g_assert_true (e->ready);

  /* No port named grpc: no endpoint. */
  slice = g_ptr_array_index (slices, 1);
  g_assert_cmpuint (slice->endpoints->len, ==, 0);

  slice = g_ptr_array_index (slices, 2);
  e = g_ptr_array_index (slice->endpoints, 0);
  g_assert_true (e->tls);
  g_assert_cmpuint (e->port, ==, 8443);
  g_assert_cmpstr (e->address, ==, "plugin.example");
  g_clear_pointer (&slices, g_ptr_array_unref);
  g_clear_pointer (&rv, g_free);

  /* Without a port name, the first port. */
  g_assert_true (cp_kube_slice_list_parse (slice_list, strlen (slice_list), NULL,
                                           &slices, &rv, &error));
  slice = g_ptr_array_index (slices, 0);
  g_assert_cmpuint (((CpKubeEndpoint *) g_ptr_array_index (slice->endpoints, 0))->port, ==, 9090);
}

static void
test_slice_list_errors (void)
{
  static const char * const bad[] = {
    "", "[]", "nope", "{}", "{\"metadata\":{}}",
    "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":{}}",
    "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[{\"metadata\":{}}]}",
    "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[1]}",
    "{\"metadata\":{\"resourceVersion\":\"1\"}} {\"metadata\":{}}",
    "{\"metadata\":{\"resourceVersion\":\"1\"},\"s\":\"}\"} x",
  };
  const char *status = "{\"kind\":\"Status\",\"message\":\"forbidden\",\"code\":403}";
  g_autoptr(GError) error = NULL;
  GPtrArray *slices = NULL;
  char *rv = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("%s", bad[i]);
      g_assert_false (cp_kube_slice_list_parse (bad[i], strlen (bad[i]), NULL, &slices, &rv, &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
      g_assert_null (slices);
      g_clear_error (&error);
    }
  g_assert_false (cp_kube_slice_list_parse (status, strlen (status), NULL, &slices, &rv, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "forbidden"));
}

static void
test_events (void)
{
  const char *added = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"s\",\"resourceVersion\":\"7\"},"
                      "\"ports\":[{\"port\":80}],\"endpoints\":[{\"addresses\":[\"10.1.1.1\"]}]}}";
  const char *bookmark = "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"99\"}}}";
  const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"message\":\"too old resource version\",\"code\":410}}";
  static const char * const bad[] = {
    "{\"type\":\"WHAT\",\"object\":{}}",
    "{\"type\":\"ADDED\"}",
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"s\"}}}",
    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
    "{\"type\":\"BOOKMARK\",\"object\":[]}",
    "not json",
  };
  g_autoptr(GError) error = NULL;
  CpKubeEvent *event;

  event = cp_kube_event_parse (added, strlen (added), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (event->type, ==, CP_KUBE_EVENT_ADDED);
  g_assert_cmpstr (event->resource_version, ==, "7");
  g_assert_cmpuint (event->slice->endpoints->len, ==, 1);
  cp_kube_event_free (event);

  event = cp_kube_event_parse (bookmark, strlen (bookmark), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (event->type, ==, CP_KUBE_EVENT_BOOKMARK);
  g_assert_cmpstr (event->resource_version, ==, "99");
  g_assert_null (event->slice);
  cp_kube_event_free (event);

  event = cp_kube_event_parse (gone, strlen (gone), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (event->type, ==, CP_KUBE_EVENT_ERROR);
  g_assert_cmpint (event->code, ==, 410);
  g_assert_cmpstr (event->message, ==, "too old resource version");
  cp_kube_event_free (event);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("%s", bad[i]);
      g_assert_null (cp_kube_event_parse (bad[i], strlen (bad[i]), NULL, &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
      g_clear_error (&error);
    }
}

/* The public constructors check what they are given. */
static void
test_constructors (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("cp-kubeconfig-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "config", NULL);
  g_autoptr(CpKubernetesDiscovery) discovery = NULL;
  g_auto(GStrv) urls = NULL;
  const char *text = "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n"
                     "contexts:\n- name: x\n  context:\n    cluster: c\n    namespace: team\n"
                     "current-context: x\n";

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  discovery = cp_kubernetes_discovery_new_from_kubeconfig (path, NULL, "Bad_Name", NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_null (discovery);
  g_clear_error (&error);

  discovery = cp_kubernetes_discovery_new_from_kubeconfig (path, NULL, "plug", NULL, "grpc", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (cp_kubernetes_discovery_get_namespace (discovery), ==, "team");
  g_assert_cmpstr (cp_kubernetes_discovery_get_service (discovery), ==, "plug");
  g_assert_cmpstr (cp_kubernetes_discovery_get_port_name (discovery), ==, "grpc");
  g_assert_cmpstr (cp_kubernetes_discovery_get_server (discovery), ==, "https://127.0.0.1:1");
  urls = cp_kubernetes_discovery_dup_ready_urls (discovery);
  g_assert_cmpuint (g_strv_length (urls), ==, 0);
  g_clear_object (&discovery);

  discovery = cp_kubernetes_discovery_new_from_kubeconfig ("/nonexistent/config", NULL, "plug",
                                                           NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_unlink (path);
  g_rmdir (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/kubeconfig/kubectl-style", test_kubectl_style);
  g_test_add_func ("/kubeconfig/files", test_files);
  g_test_add_func ("/kubeconfig/json", test_json);
  g_test_add_func ("/kubeconfig/yaml-subset", test_yaml_subset);
  g_test_add_func ("/kubeconfig/yaml-errors", test_yaml_errors);
  g_test_add_func ("/kubeconfig/config-errors", test_config_errors);
  g_test_add_func ("/kubeconfig/constructors", test_constructors);
  g_test_add_func ("/k8s-parse/slice-list", test_slice_list);
  g_test_add_func ("/k8s-parse/slice-list-errors", test_slice_list_errors);
  g_test_add_func ("/k8s-parse/events", test_events);
  return g_test_run ();
}
