/* test-etcd-registry.c: CpEtcdRegistry, one service registry for several hosts, against a real etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One etcd (Debian's etcd-server) for the program; each test uses its own
 * key prefix and two or three hosts (CpServer + CpBroker + CpEtcdRegistry
 * on 127.0.0.1) in this process. A provider (a CpRpcServer serving the KV
 * example's Get) registers with host A under a runtime identity host A
 * issued, as a plugin does; a caller with host B's identity discovers it
 * through B's registry and calls it through B's router, which forwards to
 * A's peer listener over mutual TLS.
 *
 * Certificates are made at run time with GnuTLS (ECDSA P-256): a CA for the
 * hosts (CN=host-a, CN=host-b, CN=host-c) and a foreign CA (CN=mallory).
 * Waits are for conditions with a 60-second guard; nothing asserts how
 * long something took.
 */
#include <string.h>
#include <stdlib.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <connectplugin.h>
#include "cp-broker-private.h"
#include "cp-etcd-registry-private.h"
#include "cp-registry-private.h"
#include "kv-test.h"

#include "etcd-harness.h"

static EtcdHarness *etcd;
static char *tmpdir;

/* ---- certificates ---- */

typedef struct {
  gnutls_x509_crt_t crt;
  gnutls_x509_privkey_t key;
  char *cert_pem;
  char *key_pem;
} TestCert;

static TestCert ca, host_a, host_b, host_c, other_ca, mallory;

static char *
export_pem (gnutls_x509_crt_t      crt,
            gnutls_x509_privkey_t  key)
{
  gnutls_datum_t out = { NULL, 0 };
  char *pem;

  if (crt != NULL)
    g_assert_cmpint (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &out), ==, 0);
  else
    g_assert_cmpint (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                        GNUTLS_PKCS_PLAIN, &out), ==, 0);
  pem = g_strndup ((const char *) out.data, out.size);
  gnutls_free (out.data);
  return pem;
}

/* @issuer NULL: a self-signed CA. A host's certificate serves both ends
 * of TLS (its peer listener, and its calls to other hosts), for 127.0.0.1. */
static void
make_cert (TestCert   *out,
           const char *cn,
           TestCert   *issuer)
{
  static guint8 serial = 1;
  guint8 serial_bytes[2] = { 0x02, serial++ };
  guint8 key_id[64];
  size_t key_id_size = sizeof key_id;
  time_t now = time (NULL);
  const guint8 loopback[4] = { 127, 0, 0, 1 };

  g_assert_cmpint (gnutls_x509_privkey_init (&out->key), ==, 0);
  g_assert_cmpint (gnutls_x509_privkey_generate (out->key, GNUTLS_PK_ECDSA,
                                                 GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1),
                                                 0), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_init (&out->crt), ==, 0);
  gnutls_x509_crt_set_version (out->crt, 3);
  gnutls_x509_crt_set_serial (out->crt, serial_bytes, sizeof serial_bytes);
  gnutls_x509_crt_set_activation_time (out->crt, now - 3600);
  gnutls_x509_crt_set_expiration_time (out->crt, now + 24 * 3600);
  g_assert_cmpint (gnutls_x509_crt_set_dn_by_oid (out->crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                                  cn, strlen (cn)), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_set_key (out->crt, out->key), ==, 0);
  gnutls_x509_crt_set_basic_constraints (out->crt, issuer == NULL, -1);
  if (issuer == NULL)
    gnutls_x509_crt_set_key_usage (out->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
                                             GNUTLS_KEY_DIGITAL_SIGNATURE);
  else
    {
      gnutls_x509_crt_set_key_usage (out->crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
      gnutls_x509_crt_set_key_purpose_oid (out->crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
      gnutls_x509_crt_set_key_purpose_oid (out->crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
      gnutls_x509_crt_set_subject_alt_name (out->crt, GNUTLS_SAN_IPADDRESS, loopback,
                                            sizeof loopback, GNUTLS_FSAN_APPEND);
    }
  g_assert_cmpint (gnutls_x509_crt_get_key_id (out->crt, 0, key_id, &key_id_size), ==, 0);
  gnutls_x509_crt_set_subject_key_id (out->crt, key_id, key_id_size);
  if (issuer != NULL)
    {
      key_id_size = sizeof key_id;
      g_assert_cmpint (gnutls_x509_crt_get_subject_key_id (issuer->crt, key_id, &key_id_size,
                                                           NULL), ==, 0);
      gnutls_x509_crt_set_authority_key_id (out->crt, key_id, key_id_size);
    }
  g_assert_cmpint (gnutls_x509_crt_sign2 (out->crt,
                                          issuer != NULL ? issuer->crt : out->crt,
                                          issuer != NULL ? issuer->key : out->key,
                                          GNUTLS_DIG_SHA256, 0), ==, 0);
  out->cert_pem = export_pem (out->crt, NULL);
  out->key_pem = export_pem (NULL, out->key);
}

static void
free_cert (TestCert *c)
{
  gnutls_x509_crt_deinit (c->crt);
  gnutls_x509_privkey_deinit (c->key);
  g_free (c->cert_pem);
  g_free (c->key_pem);
}

static GTlsCertificate *
tls_cert (TestCert *c)
{
  g_autofree char *pem = g_strconcat (c->cert_pem, c->key_pem, NULL);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate = g_tls_certificate_new_from_pem (pem, -1, &error);

  g_assert_no_error (error);
  return certificate;
}

static GTlsDatabase *
database_of (TestCert *c)
{
  g_autofree char *path = g_build_filename (tmpdir, c == &ca ? "ca.pem" : "other-ca.pem", NULL);
  g_autoptr(GError) error = NULL;
  GTlsDatabase *database;

  g_file_set_contents (path, c->cert_pem, -1, &error);
  g_assert_no_error (error);
  database = g_tls_file_database_new (path, &error);
  g_assert_no_error (error);
  return database;
}

/* ---- waiting ---- */

#define WAIT_UNTIL(cond) \
  G_STMT_START { \
    gint64 _end = g_get_monotonic_time () + 60 * G_USEC_PER_SEC; \
    while (!(cond)) \
      { \
        if (g_get_monotonic_time () > _end) \
          g_error ("timed out waiting for %s", #cond); \
        g_main_context_iteration (NULL, TRUE); \
      } \
  } G_STMT_END

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Wakes the main loop now and then, so WAIT_UNTIL re-checks conditions
 * that change without a source of this context firing. */
static gboolean
tick (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* ---- hosts ---- */

typedef struct {
  CpServer *server;
  CpBroker *broker;
  char *url;
  CpEtcdRegistry *etcd;
  gboolean abandoned;
} Host;

static Host *
host_new (const char         *prefix,
          const char         *id,
          TestCert           *cert,
          const char * const *trusted_peers)
{
  const char *endpoints[] = { etcd->url, NULL };
  Host *host = g_new0 (Host, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = tls_cert (cert);
  g_autoptr(GTlsDatabase) database = database_of (&ca);
  g_autoptr(GAsyncResult) result = NULL;

  host->server = cp_server_new ();
  host->broker = cp_broker_new (host->server);
  host->url = cp_server_listen (host->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  host->etcd = g_object_new (CP_TYPE_ETCD_REGISTRY, "broker", host->broker, "endpoints", endpoints,
                             "prefix", prefix, "host-id", id, "ttl", 2,
                             "tls-certificate", certificate, "tls-database", database,
                             "trusted-peers", trusted_peers, NULL);
  cp_etcd_registry_start_async (host->etcd, "127.0.0.1:0", NULL, store_result, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_true (cp_etcd_registry_start_finish (host->etcd, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);
  g_assert_true (cp_etcd_registry_get_registered (host->etcd));
  g_assert_true (g_str_has_prefix (cp_etcd_registry_get_peer_url (host->etcd), "https://127.0.0.1:"));
  return host;
}

static void
host_free (Host *host)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  if (!host->abandoned)
    {
      cp_etcd_registry_stop_async (host->etcd, NULL, store_result, &result);
      WAIT_UNTIL (result != NULL);
      g_assert_true (cp_etcd_registry_stop_finish (host->etcd, result, &error));
      g_assert_no_error (error);
      g_clear_object (&result);   /* it holds the registry */
    }
  g_assert_finalize_object (host->etcd);
  cp_server_close (host->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_finalize_object (host->broker);
  g_clear_object (&host->server);
  g_free (host->url);
  g_free (host);
}

static guint
n_remote (Host *host)
{
  return cp_registry_get_n_remote (host->broker->registry);
}

/* ---- a provider: KV Get echoing what reached it ---- */

typedef struct {
  CpRpcServer *rpc;
  KvKVService *kv;
  char *url;
  CpInvocation *watch;          /* a Watch call the test answers by hand */
} Provider;

static gboolean
on_kv_get (KvKVService  *kv,
           CpInvocation *invocation,
           KvGetRequest *request,
           gpointer      user_data)
{
  SoupMessageHeaders *h = cp_invocation_get_request_headers (invocation);
  const char *auth = soup_message_headers_get_one (h, "Authorization");
  const char *rid = soup_message_headers_get_one (h, "X-Plugin-Runtime-ID");
  const char *custom = soup_message_headers_get_one (h, "X-Custom");
  const char *timeout = soup_message_headers_get_one (h, "Connect-Timeout-Ms");
  g_autofree char *text = g_strdup_printf ("%s|auth=%s;rid=%s;custom=%s;timeout=%s",
                                           kv_get_request_get_key (request),
                                           auth ? auth : "-", rid ? rid : "-",
                                           custom ? custom : "-", timeout ? "yes" : "-");
  g_autoptr(GBytes) value = g_bytes_new (text, strlen (text));
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static gboolean
on_kv_watch (KvKVService    *kv,
             CpInvocation   *invocation,
             KvWatchRequest *request,
             Provider       *p)
{
  g_set_object (&p->watch, invocation);
  return TRUE;
}

static Provider *
provider_new (void)
{
  Provider *p = g_new0 (Provider, 1);
  g_autoptr(GError) error = NULL;

  p->rpc = cp_rpc_server_new ();
  p->kv = kv_kv_service_skeleton_new ();
  g_signal_connect (p->kv, "handle-get", G_CALLBACK (on_kv_get), NULL);
  g_signal_connect (p->kv, "handle-watch", G_CALLBACK (on_kv_watch), p);
  g_assert_true (cp_skeleton_export (CP_SKELETON (p->kv), p->rpc, &error));
  p->url = cp_rpc_server_listen (p->rpc, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  return p;
}

static void
provider_free (Provider *p)
{
  g_clear_object (&p->watch);
  cp_rpc_server_close (p->rpc);
  g_clear_object (&p->kv);
  g_clear_object (&p->rpc);
  g_free (p->url);
  g_free (p);
}

/* ---- plugin identities and the registry API ---- */

typedef struct {
  char *id;
  char *token;
  CpChannel *channel;
  CpServiceRegistry *registry;
} Identity;

static Identity *
identity_new (Host       *host,
              const char *self_id)
{
  Identity *identity = g_new0 (Identity, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *bearer = NULL;

  cp_server_issue_runtime_identity (host->server, self_id, &identity->id, &identity->token);
  bearer = g_strdup_printf ("Bearer %s", identity->token);
  identity->channel = cp_channel_new (host->url, &error);
  g_assert_no_error (error);
  cp_channel_set_header (identity->channel, "X-Plugin-Runtime-ID", identity->id);
  cp_channel_set_header (identity->channel, "Authorization", bearer);
  identity->registry = cp_service_registry_proxy_new (identity->channel);
  return identity;
}

static void
identity_free (Identity *identity)
{
  g_clear_object (&identity->registry);
  g_clear_object (&identity->channel);
  g_free (identity->id);
  g_free (identity->token);
  g_free (identity);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Identity, identity_free)

static char *
register_service (Identity   *identity,
                  const char *type,
                  const char *version,
                  const char *base_url)
{
  g_autoptr(CpRegisterServiceRequest) request = cp_register_service_request_new ();
  g_autoptr(CpRegisterServiceResponse) response = NULL;
  g_autoptr(GHashTable) metadata = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  g_hash_table_insert (metadata, "base_url", (char *) base_url);
  cp_register_service_request_set_service_type (request, type);
  cp_register_service_request_set_version (request, version);
  cp_register_service_request_set_endpoint_path (request, "/kv.v1.KVService/");
  cp_register_service_request_set_metadata (request, metadata);
  cp_service_registry_call_register_service (identity->registry, request, NULL, NULL,
                                             store_result, &result);
  WAIT_UNTIL (result != NULL);
  response = cp_service_registry_call_register_service_finish (identity->registry, result, &error);
  g_assert_no_error (error);
  return g_strdup (cp_register_service_response_get_registration_id (response));
}

static void
unregister_service (Identity   *identity,
                    const char *registration_id)
{
  g_autoptr(CpUnregisterServiceRequest) request = cp_unregister_service_request_new ();
  g_autoptr(CpUnregisterServiceResponse) response = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  cp_unregister_service_request_set_registration_id (request, registration_id);
  cp_service_registry_call_unregister_service (identity->registry, request, NULL, NULL,
                                               store_result, &result);
  WAIT_UNTIL (result != NULL);
  response = cp_service_registry_call_unregister_service_finish (identity->registry, result, &error);
  g_assert_no_error (error);
}

/* DiscoverService: the endpoint's provider id, or NULL with @error. */
static char *
discover (Identity    *identity,
          const char  *type,
          const char  *min_version,
          char       **endpoint_url,
          GError     **error)
{
  g_autoptr(CpDiscoverServiceRequest) request = cp_discover_service_request_new ();
  g_autoptr(CpDiscoverServiceResponse) response = NULL;
  g_autoptr(CpServiceEndpoint) endpoint = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  cp_discover_service_request_set_service_type (request, type);
  if (min_version != NULL)
    cp_discover_service_request_set_min_version (request, min_version);
  cp_service_registry_call_discover_service (identity->registry, request, NULL, NULL,
                                             store_result, &result);
  WAIT_UNTIL (result != NULL);
  response = cp_service_registry_call_discover_service_finish (identity->registry, result, error);
  if (response == NULL)
    return NULL;
  endpoint = cp_discover_service_response_get_endpoint (response);
  g_assert_nonnull (endpoint);
  if (endpoint_url != NULL)
    *endpoint_url = g_strdup (cp_service_endpoint_get_endpoint_url (endpoint));
  return g_strdup (cp_service_endpoint_get_provider_id (endpoint));
}

/* KV Get through @host's router as @caller: the value, or NULL with @error. */
static char *
routed_get (Host        *host,
            Identity    *caller,
            const char  *type,
            const char  *provider_id,
            GError     **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *base = g_strdup_printf ("%s/services/%s/%s", host->url, type, provider_id);
  g_autofree char *bearer = g_strdup_printf ("Bearer %s", caller->token);
  g_autoptr(CpChannel) channel = cp_channel_new (base, &local);
  g_autoptr(KvKVService) proxy = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k1");
  g_autoptr(KvGetResponse) response = NULL;
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) value = NULL;

  g_assert_no_error (local);
  g_object_set (channel, "method-only-paths", TRUE, NULL);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", caller->id);
  cp_channel_set_header (channel, "Authorization", bearer);
  cp_channel_set_header (channel, "X-Custom", "yes");
  cp_call_options_set_timeout_ms (options, 30000);
  proxy = kv_kv_service_proxy_new (channel);
  kv_kv_service_call_get (proxy, request, options, NULL, store_result, &result);
  WAIT_UNTIL (result != NULL);
  response = kv_kv_service_call_get_finish (proxy, result, error);
  if (response == NULL)
    return NULL;
  value = kv_get_response_get_value (response);
  return g_strndup (g_bytes_get_data (value, NULL), g_bytes_get_size (value));
}

/* ---- WatchService as a stream of "STATE provider" strings ---- */

typedef struct {
  CpResponseStream *stream;
  GPtrArray *events;
} Watch;

static void
on_watch_message (CpResponseStream *stream,
                  CpMessage        *message,
                  Watch            *watch)
{
  CpWatchServiceEvent *event = CP_WATCH_SERVICE_EVENT (message);
  g_autoptr(CpServiceEndpoint) endpoint = cp_watch_service_event_get_endpoint (event);
  const char *state;

  switch (cp_watch_service_event_get_state (event))
    {
    case CP_SERVICE_STATE_AVAILABLE: state = "available"; break;
    case CP_SERVICE_STATE_DEGRADED: state = "degraded"; break;
    case CP_SERVICE_STATE_UNAVAILABLE: state = "unavailable"; break;
    default: state = "?"; break;
    }
  g_ptr_array_add (watch->events,
                   g_strdup_printf ("%s %s", state,
                                    endpoint != NULL ? cp_service_endpoint_get_provider_id (endpoint) : "-"));
}

static Watch *
watch_start (Identity   *identity,
             const char *type)
{
  Watch *watch = g_new0 (Watch, 1);
  g_autoptr(CpWatchServiceRequest) request = cp_watch_service_request_new ();

  watch->events = g_ptr_array_new_with_free_func (g_free);
  cp_watch_service_request_set_service_type (request, type);
  watch->stream = cp_service_registry_call_watch_service (identity->registry, request, NULL);
  g_signal_connect (watch->stream, "message", G_CALLBACK (on_watch_message), watch);
  cp_response_stream_start (watch->stream);
  return watch;
}

static void
watch_free (Watch *watch)
{
  g_signal_handlers_disconnect_by_data (watch->stream, watch);
  cp_response_stream_cancel (watch->stream);
  g_clear_object (&watch->stream);
  g_ptr_array_unref (watch->events);
  g_free (watch);
}

static const char *
last_event (Watch *watch)
{
  return watch->events->len > 0 ? watch->events->pdata[watch->events->len - 1] : "";
}

/* ---- tests ---- */

/* A provider on host A is written to etcd, discovered through host B
 * (endpoint: B's own router path) and called through B's router → A's
 * peer listener → the provider: B strips the caller's credentials, keeps
 * its other headers and the deadline. Unregistering removes it from B's
 * view. */
static void
test_discover_and_call (void)
{
  const char *prefix = "/test-reg/call/";
  Host *a = host_new (prefix, "host-a", &host_a, NULL);
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  Provider *provider = provider_new ();
  g_autoptr(Identity) p1 = identity_new (a, "kv-plugin");
  g_autoptr(Identity) app = identity_new (b, "app-plugin");
  g_autoptr(GError) error = NULL;
  g_autofree char *reg = NULL, *found = NULL, *endpoint = NULL, *value = NULL;
  g_autofree char *expected_endpoint = NULL;
  gint64 t0;

  t0 = g_get_monotonic_time ();
  reg = register_service (p1, "kv", "1.2.0", provider->url);
  WAIT_UNTIL (n_remote (b) == 1);
  /* Reported, not asserted. */
  g_test_message ("timing: RegisterService on A -> visible on B: %.1f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);
  g_assert_cmpuint (n_remote (a), ==, 0);     /* its own provider is not remote to A */

  found = discover (app, "kv", "1.0.0", &endpoint, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found, ==, p1->id);
  expected_endpoint = g_strdup_printf ("/services/kv/%s", p1->id);
  g_assert_cmpstr (endpoint, ==, expected_endpoint);

  /* min_version applies to remote providers too. */
  g_clear_pointer (&found, g_free);
  found = discover (app, "kv", "2.0.0", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_assert_null (found);
  g_clear_error (&error);

  t0 = g_get_monotonic_time ();
  value = routed_get (b, app, "kv", p1->id, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (value, ==, "k1|auth=-;rid=-;custom=yes;timeout=yes");
  g_test_message ("timing: first call B router -> A router -> provider (new TLS connection): %.1f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);
  g_clear_pointer (&value, g_free);
  t0 = g_get_monotonic_time ();
  for (int i = 0; i < 20; i++)
    {
      g_clear_pointer (&value, g_free);
      value = routed_get (b, app, "kv", p1->id, &error);
      g_assert_no_error (error);
    }
  g_test_message ("timing: 20 more calls through both routers (a new caller channel each, "
                  "routers kept alive): %.2f ms each", (g_get_monotonic_time () - t0) / 1000.0 / 20);

  /* Unknown on both hosts: B's router answers 404 as for a local one. */
  g_clear_pointer (&value, g_free);
  value = routed_get (b, app, "kv", "nobody", &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);   /* HTTP 404 */
  g_assert_null (value);
  g_clear_error (&error);

  t0 = g_get_monotonic_time ();
  unregister_service (p1, reg);
  WAIT_UNTIL (n_remote (b) == 0);
  g_test_message ("timing: UnregisterService on A -> gone on B: %.1f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);
  g_clear_pointer (&found, g_free);
  found = discover (app, "kv", NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_clear_error (&error);

  provider_free (provider);
  host_free (b);
  host_free (a);
}

/* A server stream through B's router and A's: each message reaches the
 * caller while the provider's response is still open (nothing is
 * buffered whole), then the clean end. */
typedef struct {
  GPtrArray *keys;
  gboolean closed;
  GError *error;
} StreamLog;

static void
on_stream_message (CpResponseStream *stream,
                   CpMessage        *message,
                   StreamLog        *log)
{
  g_ptr_array_add (log->keys, g_strdup (kv_watch_event_get_key (KV_WATCH_EVENT (message))));
}

static void
on_stream_closed (CpResponseStream *stream,
                  const GError     *error,
                  StreamLog        *log)
{
  log->closed = TRUE;
  log->error = error != NULL ? g_error_copy (error) : NULL;
}

static void
on_event_sent (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_invocation_send_message_finish (CP_INVOCATION (source), result, &error));
  g_assert_no_error (error);
}

static void
test_server_stream (void)
{
  const char *prefix = "/test-reg/stream/";
  Host *a = host_new (prefix, "host-a", &host_a, NULL);
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  Provider *provider = provider_new ();
  g_autoptr(Identity) p1 = identity_new (a, "kv-plugin");
  g_autoptr(Identity) app = identity_new (b, "app-plugin");
  g_autoptr(GError) error = NULL;
  g_autofree char *reg = NULL, *base = NULL, *bearer = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvKVService) proxy = NULL;
  g_autoptr(KvWatchRequest) request = kv_test_watch_request ("k/");
  g_autoptr(CpResponseStream) stream = NULL;
  StreamLog log = { g_ptr_array_new_with_free_func (g_free), FALSE, NULL };
  const char *keys[] = { "k/1", "k/2", "k/3" };

  reg = register_service (p1, "kv", "1.0.0", provider->url);
  WAIT_UNTIL (n_remote (b) == 1);
  base = g_strdup_printf ("%s/services/kv/%s", b->url, p1->id);
  bearer = g_strdup_printf ("Bearer %s", app->token);
  channel = cp_channel_new (base, &error);
  g_assert_no_error (error);
  g_object_set (channel, "method-only-paths", TRUE, NULL);
  cp_channel_set_header (channel, "X-Plugin-Runtime-ID", app->id);
  cp_channel_set_header (channel, "Authorization", bearer);
  proxy = kv_kv_service_proxy_new (channel);
  stream = kv_kv_service_call_watch (proxy, request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_stream_message), &log);
  g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), &log);
  WAIT_UNTIL (provider->watch != NULL);

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autoptr(GBytes) value = g_bytes_new_static ("v", 1);
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, keys[i], value);

      cp_invocation_send_message_async (provider->watch, CP_MESSAGE (event), NULL,
                                        on_event_sent, NULL);
      WAIT_UNTIL (log.keys->len == i + 1);
      g_assert_cmpstr (log.keys->pdata[i], ==, keys[i]);
      g_assert_false (log.closed);
    }
  cp_invocation_return_ok (provider->watch);
  WAIT_UNTIL (log.closed);
  g_assert_no_error (log.error);
  g_assert_cmpuint (log.keys->len, ==, 3);

  g_ptr_array_unref (log.keys);
  g_clear_object (&stream);
  provider_free (provider);
  host_free (b);
  host_free (a);
}

/* B's WatchService sees A's provider come, change health and go, and a
 * local provider of B is preferred to A's. */
static void
test_watch (void)
{
  const char *prefix = "/test-reg/watch/";
  Host *a = host_new (prefix, "host-a", &host_a, NULL);
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  Provider *provider = provider_new ();
  g_autoptr(Identity) p1 = identity_new (a, "kv-plugin");
  g_autoptr(Identity) p2 = identity_new (b, "kv-plugin");
  g_autoptr(Identity) app = identity_new (b, "app-plugin");
  g_autoptr(GError) error = NULL;
  g_autofree char *reg = NULL, *reg2 = NULL, *found = NULL;
  g_autofree char *available_p1 = NULL, *degraded_p1 = NULL, *available_p2 = NULL;
  Watch *watch = watch_start (app, "kv");
  CpPluginInstance *instance;

  available_p1 = g_strdup_printf ("available %s", p1->id);
  degraded_p1 = g_strdup_printf ("degraded %s", p1->id);
  WAIT_UNTIL (watch->events->len == 1);
  g_assert_cmpstr (last_event (watch), ==, "unavailable -");

  reg = register_service (p1, "kv", "1.0.0", provider->url);
  WAIT_UNTIL (g_str_equal (last_event (watch), available_p1));

  /* A's provider reports DEGRADED to A: B's watchers see it. */
  instance = cp_broker_lookup_plugin (a->broker, p1->id);
  g_assert_nonnull (instance);
  cp_plugin_instance_set_health (instance, CP_HEALTH_STATE_DEGRADED, "slow", NULL);
  WAIT_UNTIL (g_str_equal (last_event (watch), degraded_p1));
  /* ...and UNHEALTHY: no longer discoverable from B. */
  cp_plugin_instance_set_health (instance, CP_HEALTH_STATE_UNHEALTHY, "down", NULL);
  WAIT_UNTIL (g_str_equal (last_event (watch), "unavailable -"));
  found = discover (app, "kv", NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_clear_error (&error);
  cp_plugin_instance_set_health (instance, CP_HEALTH_STATE_HEALTHY, NULL, NULL);
  WAIT_UNTIL (g_str_equal (last_event (watch), available_p1));

  /* Local first: B's own provider wins over A's. */
  reg2 = register_service (p2, "kv", "1.0.0", provider->url);
  available_p2 = g_strdup_printf ("available %s", p2->id);
  WAIT_UNTIL (g_str_equal (last_event (watch), available_p2));
  found = discover (app, "kv", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found, ==, p2->id);
  unregister_service (p2, reg2);
  WAIT_UNTIL (g_str_equal (last_event (watch), available_p1));

  /* A unregisters: B's watch sees the removal. */
  unregister_service (p1, reg);
  WAIT_UNTIL (g_str_equal (last_event (watch), "unavailable -"));

  watch_free (watch);
  provider_free (provider);
  host_free (b);
  host_free (a);
}

/* A host that dies without stopping: its providers go from B's view when
 * its 2-second lease expires. A lease revoked behind a live host's back:
 * its providers go, and come back when the host notices and registers
 * again. */
static void
test_lease (void)
{
  const char *prefix = "/test-reg/lease/";
  Host *a = host_new (prefix, "host-a", &host_a, NULL);
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  Provider *provider = provider_new ();
  g_autoptr(Identity) p1 = identity_new (a, "kv-plugin");
  g_autoptr(JsonObject) revoked = NULL;
  g_autofree char *reg = NULL, *revoke = NULL;
  gint64 lease, t0;
  guint ticker = g_timeout_add (100, tick, NULL);

  reg = register_service (p1, "kv", "1.0.0", provider->url);
  WAIT_UNTIL (n_remote (b) == 1);

  /* Lease lost: revoked in etcd. */
  lease = cp_etcd_registry_get_lease (a->etcd);
  g_assert_cmpint (lease, !=, 0);
  revoke = g_strdup_printf ("{\"ID\":\"%" G_GINT64_FORMAT "\"}", lease);
  revoked = etcd_harness_call (etcd, "/v3/lease/revoke", revoke);
  WAIT_UNTIL (n_remote (b) == 0);
  WAIT_UNTIL (cp_etcd_registry_get_lease (a->etcd) != 0 &&
              cp_etcd_registry_get_lease (a->etcd) != lease);
  WAIT_UNTIL (n_remote (b) == 1);

  /* A "crashes": no revoke, no renewal. */
  t0 = g_get_monotonic_time ();
  cp_etcd_registry_abandon (a->etcd);
  a->abandoned = TRUE;
  WAIT_UNTIL (n_remote (b) == 0);
  g_test_message ("timing: A abandoned (2 s lease) -> gone on B: %.1f ms",
                  (g_get_monotonic_time () - t0) / 1000.0);

  g_source_remove (ticker);
  provider_free (provider);
  host_free (b);
  host_free (a);
}

/* Stopping a host revokes its lease: its providers leave B at once. */
static void
test_stop (void)
{
  const char *prefix = "/test-reg/stop/";
  Host *a = host_new (prefix, "host-a", &host_a, NULL);
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  Provider *provider = provider_new ();
  g_autoptr(Identity) p1 = identity_new (a, "kv-plugin");
  g_autofree char *reg = NULL;

  reg = register_service (p1, "kv", "1.0.0", provider->url);
  WAIT_UNTIL (n_remote (b) == 1);
  host_free (a);
  WAIT_UNTIL (n_remote (b) == 0);

  provider_free (provider);
  host_free (b);
}

/* The owning host's peer listener admits only trusted hosts: without a
 * client certificate 401, with one from another CA the handshake fails,
 * with one of the CA but not in trusted-peers 403; host B's passes. */
typedef struct {
  char *address;
  char *path;
  GTlsCertificate *certificate;
  GTlsDatabase *database;
  char *answer;
  gboolean done;
} PeerCall;

static gpointer
peer_call_thread (gpointer data)
{
  PeerCall *call = data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GIOStream) tls = NULL;
  g_autoptr(GSocketConnectable) identity = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *request = NULL;
  GString *answer = g_string_new (NULL);
  char buffer[4096];
  gssize n;

  conn = g_socket_client_connect_to_host (client, call->address, 0, NULL, &error);
  g_assert_no_error (error);
  identity = g_network_address_parse (call->address, 0, NULL);
  tls = g_tls_client_connection_new (G_IO_STREAM (conn), identity, &error);
  g_assert_no_error (error);
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), call->database);
  if (call->certificate != NULL)
    g_tls_connection_set_certificate (G_TLS_CONNECTION (tls), call->certificate);
  request = g_strdup_printf ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n", call->path);
  if (g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error) &&
      g_output_stream_write_all (g_io_stream_get_output_stream (tls), request, strlen (request),
                                 NULL, NULL, &error))
    while ((n = g_input_stream_read (g_io_stream_get_input_stream (tls), buffer, sizeof buffer,
                                     NULL, &error)) > 0)
      g_string_append_len (answer, buffer, n);
  if (answer->len == 0)
    g_string_printf (answer, "refused: %s", error != NULL ? error->message : "closed");
  g_io_stream_close (tls, NULL, NULL);
  call->answer = g_string_free (answer, FALSE);
  g_atomic_int_set (&call->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

/* "STATUS" of the answer, or "refused: …". */
static char *
peer_call (Host       *target,
           const char *path,
           TestCert   *cert,
           TestCert   *trust)
{
  PeerCall call = { 0 };
  GThread *thread;
  char *result;

  call.address = g_strdup (cp_etcd_registry_get_peer_url (target->etcd) + strlen ("https://"));
  call.path = g_strdup (path);
  call.certificate = cert != NULL ? tls_cert (cert) : NULL;
  call.database = database_of (trust);
  thread = g_thread_new ("peer-call", peer_call_thread, &call);
  WAIT_UNTIL (g_atomic_int_get (&call.done));
  g_thread_join (thread);
  if (g_str_has_prefix (call.answer, "HTTP/1.1 "))
    result = g_strndup (call.answer + strlen ("HTTP/1.1 "), 3);
  else
    result = g_strdup (call.answer);
  g_free (call.address);
  g_free (call.path);
  g_clear_object (&call.certificate);
  g_clear_object (&call.database);
  g_free (call.answer);
  return result;
}

static void
test_untrusted_peer (void)
{
  const char *prefix = "/test-reg/trust/";
  const char *trusted[] = { "CN=host-b", NULL };
  Host *a = host_new (prefix, "host-a", &host_a, trusted);
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  Host *c = host_new (prefix, "host-c", &host_c, NULL);
  Provider *provider = provider_new ();
  g_autoptr(Identity) p1 = identity_new (a, "kv-plugin");
  g_autoptr(Identity) app_b = identity_new (b, "app-plugin");
  g_autoptr(Identity) app_c = identity_new (c, "app-plugin");
  g_autoptr(GError) error = NULL;
  g_autofree char *reg = NULL, *path = NULL, *answer = NULL, *value = NULL, *found = NULL;

  reg = register_service (p1, "kv", "1.0.0", provider->url);
  WAIT_UNTIL (n_remote (b) == 1 && n_remote (c) == 1);
  path = g_strdup_printf ("/services/kv/%s/Get", p1->id);

  answer = peer_call (a, path, NULL, &ca);
  g_assert_cmpstr (answer, ==, "401");
  g_clear_pointer (&answer, g_free);
  answer = peer_call (a, path, &host_c, &ca);
  g_assert_cmpstr (answer, ==, "403");
  g_clear_pointer (&answer, g_free);
  answer = peer_call (a, path, &mallory, &ca);
  g_assert_true (g_str_has_prefix (answer, "refused: "));
  g_clear_pointer (&answer, g_free);
  /* Admitted: an unknown provider is then 404, not 401/403. */
  answer = peer_call (a, "/services/kv/nobody/Get", &host_b, &ca);
  g_assert_cmpstr (answer, ==, "404");
  g_clear_pointer (&answer, g_free);
  /* A host that does not trust A's CA does not talk to it either. */
  answer = peer_call (a, path, &host_b, &other_ca);
  g_assert_true (g_str_has_prefix (answer, "refused: "));

  /* Through the routers: B's call passes, C's is refused by A (403 comes
   * back to the caller as permission_denied). */
  value = routed_get (b, app_b, "kv", p1->id, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (value, "k1|"));
  found = routed_get (c, app_c, "kv", p1->id, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_null (found);

  provider_free (provider);
  host_free (c);
  host_free (b);
  host_free (a);
}

/* etcd restarts under both hosts: B's watch resumes from where it was (no
 * new list) and sees what A wrote after the restart; A's lease survived. */
static void
test_etcd_restart (void)
{
  const char *prefix = "/test-reg/restart/";
  Host *a = host_new (prefix, "host-a", &host_a, NULL);
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  Provider *provider = provider_new ();
  g_autoptr(Identity) p1 = identity_new (a, "kv-plugin");
  g_autoptr(Identity) p2 = identity_new (a, "kv-plugin-2");
  g_autofree char *reg = NULL, *reg2 = NULL;
  guint lists;
  guint ticker = g_timeout_add (100, tick, NULL);

  reg = register_service (p1, "kv", "1.0.0", provider->url);
  WAIT_UNTIL (n_remote (b) == 1);
  lists = cp_etcd_registry_get_n_lists (b->etcd);

  etcd_harness_restart (etcd);
  reg2 = register_service (p2, "kv", "1.0.0", provider->url);
  WAIT_UNTIL (n_remote (b) == 2);
  g_assert_cmpuint (cp_etcd_registry_get_n_lists (b->etcd), ==, lists);
  unregister_service (p1, reg);
  WAIT_UNTIL (n_remote (b) == 1);

  g_source_remove (ticker);
  provider_free (provider);
  host_free (b);
  host_free (a);
}

/* Changes made while B's watch was down, then compacted away: B lists
 * again and ends with etcd's state. Entries another host wrote by hand
 * (host-z) also test what B takes: an unhealthy one is not discovered, a
 * malformed one is ignored. */
static void
test_compaction (void)
{
  const char *prefix = "/test-reg/compact/";
  Host *b = host_new (prefix, "host-b", &host_b, NULL);
  g_autoptr(Identity) app = identity_new (b, "app-plugin");
  g_autoptr(GError) error = NULL;
  g_autofree char *found = NULL;
  const char *z1 = "{\"registration_id\":\"reg-z1\",\"service_type\":\"kv\",\"version\":\"1.0.0\","
                   "\"provider_id\":\"z1\",\"host_id\":\"host-z\","
                   "\"router_url\":\"https://127.0.0.1:9\",\"health\":\"healthy\"}";
  const char *z2 = "{\"registration_id\":\"reg-z2\",\"service_type\":\"kv\",\"version\":\"1.0.0\","
                   "\"provider_id\":\"z2\",\"host_id\":\"host-z\","
                   "\"router_url\":\"https://127.0.0.1:9\",\"health\":\"unhealthy\"}";
  guint lists;
  guint ticker = g_timeout_add (100, tick, NULL);

  etcd_harness_put (etcd, "/test-reg/compact/services/kv/reg-z1", z1, 0);
  WAIT_UNTIL (n_remote (b) == 1);
  found = discover (app, "kv", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found, ==, "z1");
  lists = cp_etcd_registry_get_n_lists (b->etcd);

  /* While this context does not run: etcd restarts, z1 goes, z2 comes,
   * a bad entry and a misplaced one are written, and history is compacted. */
  etcd_harness_restart (etcd);
  etcd_harness_delete (etcd, "/test-reg/compact/services/kv/reg-z1");
  etcd_harness_put (etcd, "/test-reg/compact/services/kv/reg-z2", z2, 0);
  etcd_harness_put (etcd, "/test-reg/compact/services/kv/bad", "{not json", 0);
  etcd_harness_put (etcd, "/test-reg/compact/services/other/reg-z1", z1, 0);
  etcd_harness_compact (etcd);

  WAIT_UNTIL (cp_etcd_registry_get_n_lists (b->etcd) > lists && n_remote (b) == 1);
  g_clear_pointer (&found, g_free);
  found = discover (app, "kv", NULL, NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);    /* z2 is unhealthy */
  g_assert_null (found);

  g_source_remove (ticker);
  host_free (b);
}

/* Starting needs the credentials, and a broker takes one registry. */
static void
test_start_errors (void)
{
  const char *endpoints[] = { etcd->url, NULL };
  const char *prefix = "/test-reg/errors/";
  Host *a = host_new (prefix, "host-a", &host_a, NULL);
  g_autoptr(CpServer) server = cp_server_new ();
  g_autoptr(CpBroker) broker = cp_broker_new (server);
  g_autoptr(CpEtcdRegistry) bare = cp_etcd_registry_new (broker, endpoints);
  g_autoptr(CpEtcdRegistry) second = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = tls_cert (&host_a);
  g_autoptr(GTlsDatabase) database = database_of (&ca);

  cp_etcd_registry_start_async (bare, "127.0.0.1:0", NULL, store_result, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (cp_etcd_registry_start_finish (bare, result, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_clear_object (&result);

  second = g_object_new (CP_TYPE_ETCD_REGISTRY, "broker", a->broker, "endpoints", endpoints,
                         "tls-certificate", certificate, "tls-database", database, NULL);
  cp_etcd_registry_start_async (second, "127.0.0.1:0", NULL, store_result, &result);
  WAIT_UNTIL (result != NULL);
  g_assert_false (cp_etcd_registry_start_finish (second, result, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_clear_object (&result);
  g_clear_object (&second);
  g_clear_object (&bare);

  host_free (a);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();
  etcd = etcd_harness_start ();
  tmpdir = g_dir_make_tmp ("cp-etcd-registry-XXXXXX", NULL);
  g_assert_nonnull (tmpdir);
  make_cert (&ca, "test-ca", NULL);
  make_cert (&host_a, "host-a", &ca);
  make_cert (&host_b, "host-b", &ca);
  make_cert (&host_c, "host-c", &ca);
  make_cert (&other_ca, "other-ca", NULL);
  make_cert (&mallory, "mallory", &other_ca);

  g_test_add_func ("/etcd-registry/discover-and-call", test_discover_and_call);
  g_test_add_func ("/etcd-registry/server-stream", test_server_stream);
  g_test_add_func ("/etcd-registry/watch", test_watch);
  g_test_add_func ("/etcd-registry/lease", test_lease);
  g_test_add_func ("/etcd-registry/stop", test_stop);
  g_test_add_func ("/etcd-registry/untrusted-peer", test_untrusted_peer);
  g_test_add_func ("/etcd-registry/etcd-restart", test_etcd_restart);
  g_test_add_func ("/etcd-registry/compaction", test_compaction);
  g_test_add_func ("/etcd-registry/start-errors", test_start_errors);

  status = g_test_run ();
  etcd_harness_free (etcd);
  {
    g_autofree char *ca_path = g_build_filename (tmpdir, "ca.pem", NULL);
    g_autofree char *other_path = g_build_filename (tmpdir, "other-ca.pem", NULL);

    g_unlink (ca_path);
    g_unlink (other_path);
    g_rmdir (tmpdir);
  }
  g_free (tmpdir);
  free_cert (&ca);
  free_cert (&host_a);
  free_cert (&host_b);
  free_cert (&host_c);
  free_cert (&other_ca);
  free_cert (&mallory);
  return status;
}
