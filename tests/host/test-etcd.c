/* test-etcd.c: CpEtcdRegistration and CpEtcdDiscovery against a real etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One etcd (Debian's etcd-server) for the whole program, on free ports
 * with a temporary data directory; each test uses its own key prefix.
 * Waits are on signals, with generous time-outs; nothing asserts how long
 * something took.
 */
#include <string.h>

#include <connectplugin.h>
#include "cp-etcd-discovery.h"
#include "cp-etcd-registration.h"
#include "cp-etcd-client-private.h"

#include "etcd-harness.h"

static EtcdHarness *etcd;

/* ---- helpers ---- */

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

/* A string literal and its length. */
#define S(literal) literal, strlen (literal)

static CpEtcdDiscovery *
new_discovery (const char *prefix)
{
  const char *endpoints[] = { etcd->url, NULL };

  return cp_etcd_discovery_new (endpoints, prefix);
}

static CpEtcdRegistration *
new_registration (const char *prefix,
                  const char *name,
                  const char *url,
                  guint       ttl)
{
  const char *endpoints[] = { etcd->url, NULL };

  return g_object_new (CP_TYPE_ETCD_REGISTRATION, "endpoints", endpoints, "prefix", prefix,
                       "name", name, "url", url, "ttl", ttl, "version", "1.0.0", NULL);
}

static void
do_register (CpEtcdRegistration *registration)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  cp_etcd_registration_register_async (registration, NULL, store_result, &result);
  g_assert_true (cp_etcd_registration_register_finish (registration, wait_result (&result), &error));
  g_assert_no_error (error);
  g_assert_true (cp_etcd_registration_get_registered (registration));
  g_assert_cmpint (cp_etcd_registration_get_lease (registration), !=, 0);
}

/* Discovers @plugins; answers the URLs, or NULL with @error. */
static GStrv
discover (CpEtcdDiscovery     *discovery,
          const char * const  *plugins,
          GError             **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  cp_discovery_discover_async (CP_DISCOVERY (discovery), plugins, NULL, store_result, &result);
  return cp_discovery_discover_finish (CP_DISCOVERY (discovery), wait_result (&result), error);
}

static void
on_changed (CpDiscovery *discovery,
            gpointer     user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* Waits for `changed` until the discovery offers exactly @expected. */
static void
wait_for_urls (CpEtcdDiscovery    *discovery,
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

#define URLS(...) ((const char * const []) { __VA_ARGS__, NULL })
#define NO_URLS ((const char * const []) { NULL })

/* Makes sure the discovery's watch is up: a change under @prefix must
 * reach it. */
static void
wait_watching (CpEtcdDiscovery *discovery,
               const char      *prefix)
{
  g_autofree char *key = g_strconcat (prefix, "probe/1", NULL);
  g_autofree char *value = cp_etcd_entry_to_json ("probe", "http://127.0.0.1:1", NULL, NULL);
  g_auto(GStrv) before = cp_etcd_discovery_get_urls (discovery);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) expected = NULL;

  g_strv_builder_addv (builder, (const char **) before);
  g_strv_builder_add (builder, "http://127.0.0.1:1");
  expected = g_strv_builder_end (builder);
  etcd_harness_put (etcd, key, value, 0);
  wait_for_urls (discovery, (const char * const *) expected);
  etcd_harness_delete (etcd, key);
  wait_for_urls (discovery, (const char * const *) before);
}

static gboolean
has_url (CpEtcdDiscovery *discovery,
         const char      *url)
{
  g_auto(GStrv) urls = cp_etcd_discovery_get_urls (discovery);

  return g_strv_contains ((const char * const *) urls, url);
}

/* ---- tests ---- */

static void
test_register_discover (void)
{
  const char *prefix = "/test/register/";
  g_autoptr(CpEtcdRegistration) a = new_registration (prefix, "kv", "http://127.0.0.1:7001", 10);
  g_autoptr(CpEtcdRegistration) b = new_registration (prefix, "other", "https://127.0.0.1:7002", 10);
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  const char *kv[] = { "kv", NULL };
  const char *missing[] = { "missing", NULL };
  g_auto(GStrv) urls = NULL;
  g_auto(GStrv) all = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) range = NULL;
  g_autofree char *key = NULL;

  cp_etcd_registration_set_metadata (a, "zone", "a");
  do_register (a);
  do_register (b);
  g_assert_true (g_str_has_prefix (cp_etcd_registration_get_key (a), "/test/register/kv/"));

  urls = discover (discovery, kv, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (urls, ((const char *[]) { "http://127.0.0.1:7001", NULL }));
  all = discover (discovery, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (all), ==, 2);
  g_assert_null (discover (discovery, missing, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpint (cp_etcd_discovery_get_revision (discovery), >, 0);

  /* The stored value, read back through the gateway. */
  key = g_base64_encode ((const guchar *) cp_etcd_registration_get_key (a),
                         strlen (cp_etcd_registration_get_key (a)));
  {
    g_autofree char *json = g_strdup_printf ("{\"key\":\"%s\"}", key);
    JsonArray *kvs;
    g_autofree guchar *value = NULL;
    gsize len;
    g_autoptr(CpEtcdEntry) entry = NULL;

    range = etcd_harness_call (etcd, "/v3/kv/range", json);
    kvs = json_object_get_array_member (range, "kvs");
    g_assert_cmpuint (json_array_get_length (kvs), ==, 1);
    value = g_base64_decode (json_object_get_string_member (json_array_get_object_element (kvs, 0),
                                                            "value"), &len);
    entry = cp_etcd_entry_parse ((const char *) value, len, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (entry->name, ==, "kv");
    g_assert_cmpstr (entry->version, ==, "1.0.0");
    g_assert_cmpstr (g_hash_table_lookup (entry->metadata, "zone"), ==, "a");
  }

  /* The plugin-name filter. */
  cp_etcd_discovery_set_plugin_name (discovery, "other");
  g_clear_pointer (&all, g_strfreev);
  all = cp_etcd_discovery_get_urls (discovery);
  g_assert_cmpstrv (all, ((const char *[]) { "https://127.0.0.1:7002", NULL }));
}

static void
test_changed (void)
{
  const char *prefix = "/test/changed/";
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autoptr(CpEtcdRegistration) registration = new_registration (prefix, "kv", "http://127.0.0.1:7003", 10);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;

  /* Nothing yet: unavailable, but listed and watching. */
  urls = discover (discovery, NULL, &error);
  g_assert_null (urls);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);

  do_register (registration);
  wait_for_urls (discovery, URLS ("http://127.0.0.1:7003"));

  cp_etcd_registration_revoke_async (registration, NULL, store_result, &result);
  g_assert_true (cp_etcd_registration_revoke_finish (registration, wait_result (&result), NULL));
  g_assert_false (cp_etcd_registration_get_registered (registration));
  wait_for_urls (discovery, NO_URLS);
}

/* A revoke while the lease is being granted: the registration fails as
 * cancelled and nothing stays in etcd. */
static void
test_revoke_while_registering (void)
{
  const char *prefix = "/test/revoke-early/";
  g_autoptr(CpEtcdRegistration) registration = new_registration (prefix, "kv", "http://127.0.0.1:7011", 30);
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autoptr(GAsyncResult) registered = NULL;
  g_autoptr(GAsyncResult) revoked = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;

  cp_etcd_registration_register_async (registration, NULL, store_result, &registered);
  cp_etcd_registration_revoke_async (registration, NULL, store_result, &revoked);
  g_assert_false (cp_etcd_registration_register_finish (registration, wait_result (&registered),
                                                        &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_true (cp_etcd_registration_revoke_finish (registration, wait_result (&revoked), &error));
  g_assert_no_error (error);
  g_assert_false (cp_etcd_registration_get_registered (registration));

  urls = discover (discovery, NULL, &error);
  g_assert_null (urls);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
}

static gboolean
timeout_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_keepalive (void)
{
  const char *prefix = "/test/keepalive/";
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autoptr(CpEtcdRegistration) registration = new_registration (prefix, "kv", "http://127.0.0.1:7004", 1);
  g_auto(GStrv) urls = NULL;
  gboolean later = FALSE;

  do_register (registration);
  urls = discover (discovery, NULL, NULL);
  g_assert_nonnull (urls);
  /* Four TTLs later the renewed lease still holds the key. */
  g_timeout_add_seconds (4, timeout_cb, &later);
  etcd_harness_wait (&later, 10);
  g_assert_true (has_url (discovery, "http://127.0.0.1:7004"));
  g_assert_true (cp_etcd_registration_get_registered (registration));
}

static void
test_lease_expiry (void)
{
  const char *prefix = "/test/expiry/";
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autofree char *value = cp_etcd_entry_to_json ("kv", "http://127.0.0.1:7005", NULL, NULL);
  g_auto(GStrv) urls = NULL;
  gint64 lease, t0;

  /* A registrar that dies at once: the lease is never renewed. */
  lease = etcd_harness_grant (etcd, 2);
  t0 = g_get_monotonic_time ();
  etcd_harness_put (etcd, "/test/expiry/kv/crashed", value, lease);
  urls = discover (discovery, NULL, NULL);
  g_assert_cmpstrv (urls, ((const char *[]) { "http://127.0.0.1:7005", NULL }));
  wait_for_urls (discovery, NO_URLS);
  g_test_message ("timing: 2 s lease, last put -> entry gone from the view: %.0f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);
}

/* The first discovery in a private context that is not run afterwards
 * (as cp_client_connect_sync () does it): the answer comes there, the
 * watch lives in the discovery's own context and still sees changes. */
static void
test_private_context (void)
{
  const char *prefix = "/test/private-context/";
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autoptr(GMainContext) private = g_main_context_new ();
  g_autofree char *value = cp_etcd_entry_to_json ("kv", "http://127.0.0.1:7012", NULL, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = NULL;
  gint64 end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  g_main_context_push_thread_default (private);
  cp_discovery_discover_async (CP_DISCOVERY (discovery), NULL, NULL, store_result, &result);
  while (result == NULL && g_get_monotonic_time () < end)
    g_main_context_iteration (private, TRUE);
  g_main_context_pop_thread_default (private);
  g_assert_nonnull (result);
  urls = cp_discovery_discover_finish (CP_DISCOVERY (discovery), result, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);

  etcd_harness_put (etcd, "/test/private-context/kv/1", value, 0);
  wait_for_urls (discovery, URLS ("http://127.0.0.1:7012"));
}

/* etcd killed and restarted on the same port and data directory: the
 * watch resumes from the last revision + 1. What changes between the
 * restart and the reconnection (the default context does not run while
 * the harness restarts etcd and writes) must still arrive. */
static void
test_watch_resume (void)
{
  const char *prefix = "/test/resume/";
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autofree char *a = cp_etcd_entry_to_json ("kv", "http://127.0.0.1:7006", NULL, NULL);
  g_autofree char *b = cp_etcd_entry_to_json ("kv", "http://127.0.0.1:7007", NULL, NULL);
  g_auto(GStrv) urls = NULL;
  gint64 before, t0;

  etcd_harness_put (etcd, "/test/resume/kv/a", a, 0);
  urls = discover (discovery, NULL, NULL);
  g_assert_nonnull (urls);
  wait_watching (discovery, prefix);
  before = cp_etcd_discovery_get_revision (discovery);

  etcd_harness_restart (etcd);
  etcd_harness_put (etcd, "/test/resume/kv/b", b, 0);
  etcd_harness_delete (etcd, "/test/resume/kv/a");

  t0 = g_get_monotonic_time ();
  wait_for_urls (discovery, URLS ("http://127.0.0.1:7007"));
  /* Reported, not asserted. */
  g_test_message ("timing: etcd back -> discovery caught up: %.0f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_cmpint (cp_etcd_discovery_get_revision (discovery), >, before);
}

/* The revision to resume from was compacted away while the watch was
 * down: etcd answers compact_revision and the discovery lists again. */
static void
test_compaction (void)
{
  const char *prefix = "/test/compaction/";
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autofree char *a = cp_etcd_entry_to_json ("kv", "http://127.0.0.1:7008", NULL, NULL);
  g_autofree char *b = cp_etcd_entry_to_json ("kv", "http://127.0.0.1:7009", NULL, NULL);
  g_auto(GStrv) urls = NULL;
  gint64 compacted;

  etcd_harness_put (etcd, "/test/compaction/kv/a", a, 0);
  urls = discover (discovery, NULL, NULL);
  g_assert_nonnull (urls);
  wait_watching (discovery, prefix);

  etcd_harness_restart (etcd);
  etcd_harness_put (etcd, "/test/compaction/kv/b", b, 0);
  etcd_harness_delete (etcd, "/test/compaction/kv/a");
  compacted = etcd_harness_compact (etcd);

  wait_for_urls (discovery, URLS ("http://127.0.0.1:7009"));
  g_assert_cmpint (cp_etcd_discovery_get_revision (discovery), >=, compacted);
}

/* Values that are not entries are ignored; the others still count. */
static void
test_bad_entry (void)
{
  const char *prefix = "/test/bad/";
  g_autoptr(CpEtcdDiscovery) discovery = new_discovery (prefix);
  g_autofree char *good = cp_etcd_entry_to_json ("kv", "http://127.0.0.1:7010", NULL, NULL);
  g_auto(GStrv) urls = NULL;
  g_autoptr(GError) error = NULL;

  etcd_harness_put (etcd, "/test/bad/kv/1", "{not json", 0);
  etcd_harness_put (etcd, "/test/bad/kv/2", "{\"name\":\"kv\",\"url\":\"ftp://x\"}", 0);
  etcd_harness_put (etcd, "/test/bad/kv/3", good, 0);
  urls = discover (discovery, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (urls, ((const char *[]) { "http://127.0.0.1:7010", NULL }));
}

/* The gateway's own error, and an endpoint where nothing listens. */
static void
test_gateway_errors (void)
{
  const char *endpoints[] = { etcd->url, NULL };
  g_autoptr(CpEtcdClient) client = cp_etcd_client_new (endpoints);
  g_autoptr(JsonObject) request = json_object_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpEtcdDiscovery) nowhere = NULL;
  g_auto(GStrv) urls = NULL;

  /* A lease ID that is not a number. */
  json_object_set_string_member (request, "ID", "not-a-number");
  cp_etcd_client_call_async (client, "/v3/lease/revoke", request, NULL, store_result, &result);
  g_assert_null (cp_etcd_client_call_finish (client, wait_result (&result), &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (error->message, "etcd: "));
  g_clear_error (&error);
  g_clear_object (&result);

  /* A path the gateway does not serve: HTTP 404 without an error body. */
  cp_etcd_client_call_async (client, "/v3/nothing", request, NULL, store_result, &result);
  g_assert_null (cp_etcd_client_call_finish (client, wait_result (&result), &error));
  g_assert_nonnull (error);
  g_assert_true (error->domain == CP_ERROR);
  g_clear_error (&error);

  {
    const char *closed[] = { "http://127.0.0.1:1", NULL };

    nowhere = cp_etcd_discovery_new (closed, NULL);
    urls = discover (nowhere, NULL, &error);
    g_assert_null (urls);
    g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  }
}

/* The parsers on what a broken gateway could send. */
static void
test_parse_errors (void)
{
  static const char *bad[] = {
    "", "garbage", "[1,2]", "{\"result\":3}", "{\"result\":{\"events\":{}}}",
    "{\"result\":{\"events\":[{\"kv\":7}]}}", "{\"result\":{\"compact_revision\":\"12x\"}}",
    "{\"error\":{\"code\":14,\"message\":\"etcdserver: no leader\"}}",
  };
  CpEtcdWatchResult result;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) object = NULL;
  g_autoptr(GPtrArray) kvs = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_etcd_kv_free);
  gint64 revision;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_false (cp_etcd_parse_watch_line (bad[i], strlen (bad[i]), &result, &error));
      g_assert_nonnull (error);
      g_assert_true (error->domain == CP_ERROR);
      g_test_message ("%s -> %s", bad[i], error->message);
      if (i == G_N_ELEMENTS (bad) - 1)
        g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
      g_clear_error (&error);
      cp_etcd_watch_result_clear (&result);
    }

  object = cp_etcd_parse_response (S ("{\"error\":\"x\",\"message\":\"bad\",\"code\":3}"), &error);
  g_assert_null (object);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  object = cp_etcd_parse_response (S ("{\"kvs\":[{\"key\":\"YQ==\"}]}"), &error);
  g_assert_no_error (error);
  g_assert_false (cp_etcd_parse_range (object, &revision, kvs, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
  g_clear_error (&error);

  g_assert_true (cp_etcd_parse_watch_line (S ("{\"result\":{\"header\":{\"revision\":\"9\"},"
                                           "\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\","
                                           "\"mod_revision\":\"9\"}},{\"kv\":{\"key\":\"Yg==\","
                                           "\"value\":\"Yw==\",\"mod_revision\":\"9\"}}]}}"),
                                           &result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (result.revision, ==, 9);
  g_assert_cmpuint (result.events->len, ==, 2);
  g_assert_true (((CpEtcdKv *) result.events->pdata[0])->deleted);
  g_assert_cmpstr (((CpEtcdKv *) result.events->pdata[1])->key, ==, "b");
  cp_etcd_watch_result_clear (&result);

  {
    g_autofree char *end = cp_etcd_prefix_end ("/a/");
    g_autofree char *all = cp_etcd_prefix_end ("\xff");

    g_assert_cmpstr (end, ==, "/a0");
    g_assert_cmpstr (all, ==, "");
  }
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  etcd = etcd_harness_start ();

  g_test_add_func ("/etcd/parse/errors", test_parse_errors);
  g_test_add_func ("/etcd/gateway/errors", test_gateway_errors);
  g_test_add_func ("/etcd/register/discover", test_register_discover);
  g_test_add_func ("/etcd/register/changed", test_changed);
  g_test_add_func ("/etcd/register/keepalive", test_keepalive);
  g_test_add_func ("/etcd/register/revoke-while-registering", test_revoke_while_registering);
  g_test_add_func ("/etcd/lease/expiry", test_lease_expiry);
  g_test_add_func ("/etcd/watch/bad-entry", test_bad_entry);
  g_test_add_func ("/etcd/watch/private-context", test_private_context);
  g_test_add_func ("/etcd/watch/resume-after-restart", test_watch_resume);
  g_test_add_func ("/etcd/watch/compaction-relists", test_compaction);

  status = g_test_run ();
  etcd_harness_free (etcd);
  return status;
}
