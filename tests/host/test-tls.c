/* test-tls.c: TLS and mutual TLS on CpRpcServer, CpChannel, CpServer and CpClient
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The certificates are made at run time with GnuTLS (ECDSA P-256): two CAs,
 * a server certificate for 127.0.0.1/localhost and a client certificate
 * ("CN=alice") from the first, and a client certificate ("CN=mallory") from
 * the second. No key is kept anywhere but in a temporary directory.
 */
#include <string.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "host-test-util.h"
#include "kv-test.h"

typedef struct {
  gnutls_x509_crt_t crt;
  gnutls_x509_privkey_t key;
  char *cert_pem;
  char *key_pem;
} TestCert;

static TestCert ca, server_cert, alice, bob, other_ca, mallory;
static char *tmpdir;

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

/* @issuer NULL: a self-signed CA. */
static void
make_cert (TestCert   *out,
           const char *cn,
           TestCert   *issuer,
           gboolean    is_ca,
           gboolean    for_server)
{
  static guint8 serial = 1;
  guint8 serial_bytes[2] = { 0x01, serial++ };
  guint8 key_id[64];
  size_t key_id_size = sizeof key_id;
  time_t now = time (NULL);

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
  gnutls_x509_crt_set_basic_constraints (out->crt, is_ca, -1);
  if (is_ca)
    gnutls_x509_crt_set_key_usage (out->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
                                             GNUTLS_KEY_DIGITAL_SIGNATURE);
  else
    {
      gnutls_x509_crt_set_key_usage (out->crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
      gnutls_x509_crt_set_key_purpose_oid (out->crt, for_server ? GNUTLS_KP_TLS_WWW_SERVER
                                                                : GNUTLS_KP_TLS_WWW_CLIENT, 0);
    }
  if (for_server)
    {
      const guint8 loopback[4] = { 127, 0, 0, 1 };

      gnutls_x509_crt_set_subject_alt_name (out->crt, GNUTLS_SAN_DNSNAME, "localhost",
                                            strlen ("localhost"), GNUTLS_FSAN_APPEND);
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

static GTlsCertificate *
tls_cert (TestCert *c)
{
  g_autofree char *pem = g_strconcat (c->cert_pem, c->key_pem, NULL);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *certificate = g_tls_certificate_new_from_pem (pem, -1, &error);

  g_assert_no_error (error);
  return certificate;
}

static char *
write_file (const char *name,
            const char *contents)
{
  char *path = g_build_filename (tmpdir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

static GTlsDatabase *
database_of (TestCert *c)
{
  g_autofree char *path = write_file (c == &ca ? "ca.pem" : "other-ca.pem", c->cert_pem);
  g_autoptr(GError) error = NULL;
  GTlsDatabase *database = g_tls_file_database_new (path, &error);

  g_assert_no_error (error);
  return database;
}

/* ---- a CpRpcServer serving KV Get, recording who called ---- */

typedef struct {
  CpRpcServer *server;
  char *url;
  guint n_calls;
  char *identity;          /* of the last call */
  char *principal;         /* the same */
  gboolean had_certificate;
} Fixture;

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  f->n_calls++;
  f->had_certificate = cp_invocation_get_peer_certificate (invocation) != NULL;
  g_free (f->identity);
  f->identity = g_strdup (cp_invocation_get_peer_identity (invocation));
  g_free (f->principal);
  f->principal = g_strdup (cp_invocation_get_principal (invocation));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
fixture_setup (Fixture            *f,
               GTlsAuthenticationMode mode)
{
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GTlsCertificate) certificate = tls_cert (&server_cert);
  g_autoptr(GTlsDatabase) database = database_of (&ca);
  g_autoptr(GError) error = NULL;

  memset (f, 0, sizeof *f);
  f->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (f->server, get, handle_get, f, NULL);
  g_object_set (f->server, "tls-certificate", certificate, "tls-database", database,
                "tls-authentication-mode", mode, NULL);
  f->url = cp_rpc_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (f->url, "https://"));
}

static void
fixture_teardown (Fixture *f)
{
  cp_rpc_server_close (f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->server);
  g_free (f->url);
  g_free (f->identity);
  g_free (f->principal);
}

static void
call_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* A KV Get on a channel to @f with @trust (the CA database) and @client. */
static gboolean
call_get (Fixture      *f,
          TestCert     *trust,
          TestCert     *client,
          GError      **error)
{
  g_autoptr(CpChannel) channel = cp_channel_new (f->url, error);
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpMessage) response = NULL;

  g_assert_nonnull (channel);
  if (trust != NULL)
    {
      g_autoptr(GTlsDatabase) database = database_of (trust);

      g_object_set (channel, "tls-database", database, NULL);
    }
  if (client != NULL)
    {
      g_autoptr(GTlsCertificate) certificate = tls_cert (client);

      g_object_set (channel, "tls-certificate", certificate, NULL);
    }
  cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (request), KV_TYPE_GET_RESPONSE,
                         NULL, NULL, call_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = cp_channel_call_finish (channel, result, error);
  return response != NULL;
}

static void
test_mtls_ok (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;

  fixture_setup (&f, G_TLS_AUTHENTICATION_REQUIRED);
  g_assert_true (call_get (&f, &ca, &alice, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f.n_calls, ==, 1);
  g_assert_true (f.had_certificate);
  g_assert_nonnull (f.identity);
  g_test_message ("peer identity: %s", f.identity);
  g_assert_cmpstr (f.identity, ==, "CN=alice");
  fixture_teardown (&f);
}

/* An authorization interceptor on the peer identity: only CN=alice. */
typedef CpServerInterceptor PeerAuthz;
typedef CpServerInterceptorClass PeerAuthzClass;
static GType peer_authz_get_type (void);
G_DEFINE_TYPE (PeerAuthz, peer_authz, CP_TYPE_SERVER_INTERCEPTOR)

static gboolean
peer_authz_intercept (CpServerInterceptor  *self,
                      CpInvocation         *invocation,
                      CpMessage            *request,
                      GError              **error)
{
  const char *identity = cp_invocation_get_peer_identity (invocation);

  if (g_strcmp0 (identity, "CN=alice") != 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED, "%s may not call",
                   identity != NULL ? identity : "an anonymous peer");
      return FALSE;
    }
  cp_invocation_set_principal (invocation, identity, "mtls");
  return TRUE;
}

static void
peer_authz_class_init (PeerAuthzClass *klass)
{
  klass->intercept = peer_authz_intercept;
}

static void
peer_authz_init (PeerAuthz *self)
{
}

static void
test_authz_interceptor (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpServerInterceptor) authz = g_object_new (peer_authz_get_type (), NULL);

  fixture_setup (&f, G_TLS_AUTHENTICATION_REQUIRED);
  cp_rpc_server_add_interceptor (f.server, authz);
  g_assert_true (call_get (&f, &ca, &alice, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (f.principal, ==, "CN=alice");
  /* bob's certificate is valid (same CA), the interceptor refuses him. */
  g_assert_false (call_get (&f, &ca, &bob, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED);
  g_assert_cmpuint (f.n_calls, ==, 1);
  fixture_teardown (&f);
}

/* In-process calls have no TLS peer. */
static void
test_in_process (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpMessage) response = NULL;

  fixture_setup (&f, G_TLS_AUTHENTICATION_REQUIRED);
  channel = cp_channel_new_in_process (f.server);
  cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (request), KV_TYPE_GET_RESPONSE,
                         NULL, NULL, call_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = cp_channel_call_finish (channel, result, &error);
  g_assert_no_error (error);
  g_assert_nonnull (response);
  g_assert_cmpuint (f.n_calls, ==, 1);
  g_assert_false (f.had_certificate);
  g_assert_null (f.identity);
  fixture_teardown (&f);
}

/* One-way TLS: no client certificate asked for, none seen. */
static void
test_tls_no_client_auth (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;

  fixture_setup (&f, G_TLS_AUTHENTICATION_NONE);
  g_assert_true (call_get (&f, &ca, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f.n_calls, ==, 1);
  g_assert_false (f.had_certificate);
  g_assert_null (f.identity);
  fixture_teardown (&f);
}

static void
test_mtls_no_client_cert (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;

  fixture_setup (&f, G_TLS_AUTHENTICATION_REQUIRED);
  g_assert_false (call_get (&f, &ca, NULL, &error));
  g_assert_nonnull (error);
  g_test_message ("without a client certificate: %s", error->message);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f.n_calls, ==, 0);
  fixture_teardown (&f);
}

static void
test_mtls_other_ca (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;

  fixture_setup (&f, G_TLS_AUTHENTICATION_REQUIRED);
  g_assert_false (call_get (&f, &ca, &mallory, &error));
  g_assert_nonnull (error);
  g_test_message ("with another CA's client certificate: %s", error->message);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f.n_calls, ==, 0);
  fixture_teardown (&f);
}

static void
test_server_untrusted (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;

  fixture_setup (&f, G_TLS_AUTHENTICATION_REQUIRED);
  g_assert_false (call_get (&f, &other_ca, &alice, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f.n_calls, ==, 0);
  fixture_teardown (&f);
}

/* ---- a channel given its database at construction ---- */

/* A KV Get on a channel made with @trust and @client as construction
 * properties (the channel then makes its own TLS connections: see
 * CpChannel:tls-database). */
static gboolean
call_get_pinned (const char  *url,
                 TestCert    *trust,
                 TestCert    *client,
                 GError     **error)
{
  g_autoptr(GTlsDatabase) database = database_of (trust);
  g_autoptr(GTlsCertificate) certificate = client != NULL ? tls_cert (client) : NULL;
  g_autoptr(CpChannel) channel = g_object_new (CP_TYPE_CHANNEL, "base-url", url,
                                               "tls-database", database,
                                               "tls-certificate", certificate, NULL);
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpMessage) response = NULL;

  cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (request), KV_TYPE_GET_RESPONSE,
                         NULL, NULL, call_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  response = cp_channel_call_finish (channel, result, error);
  return response != NULL;
}

/* Mutual TLS works as with a database set later: the server sees alice;
 * without her certificate the server refuses; pinned to another CA, the
 * server is not trusted (the system's CAs are not asked either). */
static void
test_pinned_at_construction (void)
{
  Fixture f;
  g_autoptr(GError) error = NULL;

  fixture_setup (&f, G_TLS_AUTHENTICATION_REQUIRED);
  g_assert_true (call_get_pinned (f.url, &ca, &alice, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f.n_calls, ==, 1);
  g_assert_true (f.had_certificate);
  g_assert_cmpstr (f.identity, ==, "CN=alice");

  g_assert_false (call_get_pinned (f.url, &ca, NULL, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_clear_error (&error);

  g_assert_false (call_get_pinned (f.url, &other_ca, &alice, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (f.n_calls, ==, 1);
  fixture_teardown (&f);
}

/* ---- CpServer and CpClient, from files ---- */

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static void
close_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  cp_client_close_finish (CP_CLIENT (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static gboolean
client_connects (const char *url,
                 TestCert   *client_cert,
                 GError    **error)
{
  g_autoptr(CpClient) client = cp_client_new (url);
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *ca_path = write_file ("ca.pem", ca.cert_pem);
  g_autofree char *cert_path = NULL;
  g_autofree char *key_path = NULL;
  const char *plugins[] = { "echo", NULL };
  gboolean ok, closed = FALSE;

  if (client_cert != NULL)
    {
      cert_path = write_file ("client.pem", client_cert->cert_pem);
      key_path = write_file ("client.key", client_cert->key_pem);
    }
  g_assert_true (cp_client_set_tls_files (client, cert_path, key_path, ca_path, error));
  if (client_cert != NULL)
    {
      g_autoptr(GTlsCertificate) loaded = NULL;

      g_object_get (client, "tls-certificate", &loaded, NULL);
      g_assert_nonnull (loaded);
    }
  cp_client_set_plugins (client, plugins);
  cp_client_connect_async (client, NULL, connect_cb, &result);
  HOST_TEST_WAIT_UNTIL (result != NULL);
  ok = cp_client_connect_finish (client, result, error);
  cp_client_close_async (client, NULL, close_cb, &closed);
  HOST_TEST_WAIT_UNTIL (closed);
  return ok;
}

static void
test_files (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *cert_path = write_file ("server.pem", server_cert.cert_pem);
  g_autofree char *key_path = write_file ("server.key", server_cert.key_pem);
  g_autofree char *ca_path = write_file ("ca.pem", ca.cert_pem);
  g_autofree char *missing = g_build_filename (tmpdir, "missing.pem", NULL);
  g_autofree char *url = NULL;
  g_autoptr(GTlsCertificate) loaded = NULL;

  /* Bad paths fail and change nothing. */
  g_assert_false (cp_server_set_tls_files (server, missing, key_path, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_false (cp_server_set_tls_files (server, NULL, key_path, NULL, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_object_get (server, "tls-certificate", &loaded, NULL);
  g_assert_null (loaded);

  g_assert_true (cp_server_set_tls_files (server, cert_path, key_path, ca_path, &error));
  g_assert_no_error (error);
  g_object_set (server, "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUIRED, NULL);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (url, "https://"));

  g_assert_true (client_connects (url, &alice, &error));
  g_assert_no_error (error);
  g_assert_false (client_connects (url, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  cp_server_close (server);
}

/* ---- the plaintext warning ---- */

static guint n_plaintext_warnings;
static char *last_plaintext_warning;

static GLogWriterOutput
capture_writer (GLogLevelFlags   log_level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE") && fields[i].length < 0 &&
        strstr (fields[i].value, "plaintext HTTP") != NULL)
      {
        n_plaintext_warnings++;
        g_free (last_plaintext_warning);
        last_plaintext_warning = g_strdup (fields[i].value);
        return G_LOG_WRITER_HANDLED;
      }
  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

static void
new_channel (const char *url)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (url, &error);

  g_assert_no_error (error);
  g_assert_nonnull (channel);
}

static void
test_plaintext_warning (void)
{
  /* TEST-NET addresses: never connected to, only named. */
  g_unsetenv ("CONNECTPLUGIN_DISABLE_TLS_WARNING");
  n_plaintext_warnings = 0;
  new_channel ("http://192.0.2.10:8080");
  g_assert_cmpuint (n_plaintext_warnings, ==, 1);
  g_assert_nonnull (strstr (last_plaintext_warning, "192.0.2.10"));
  /* Once per host. */
  new_channel ("http://192.0.2.10:8080/prefix");
  new_channel ("http://192.0.2.10:9090");
  g_assert_cmpuint (n_plaintext_warnings, ==, 1);
  new_channel ("http://plugin.example:8080");
  g_assert_cmpuint (n_plaintext_warnings, ==, 2);

  /* Never for https, loopback or unix sockets. */
  new_channel ("https://192.0.2.11:8443");
  new_channel ("http://127.0.0.1:8080");
  new_channel ("http://localhost:8080");
  new_channel ("http://[::1]:8080");
  new_channel ("unix:/tmp/no-such-plugin.sock");
  g_assert_cmpuint (n_plaintext_warnings, ==, 2);

  /* Suppressed by the environment. */
  g_setenv ("CONNECTPLUGIN_DISABLE_TLS_WARNING", "1", TRUE);
  new_channel ("http://192.0.2.12:8080");
  g_assert_cmpuint (n_plaintext_warnings, ==, 2);
  g_unsetenv ("CONNECTPLUGIN_DISABLE_TLS_WARNING");
  new_channel ("http://192.0.2.12:8080");
  g_assert_cmpuint (n_plaintext_warnings, ==, 3);
}

static void
cert_clear (TestCert *c)
{
  gnutls_x509_crt_deinit (c->crt);
  gnutls_x509_privkey_deinit (c->key);
  g_free (c->cert_pem);
  g_free (c->key_pem);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int status;

  g_log_set_writer_func (capture_writer, NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();
  g_assert_cmpint (gnutls_global_init (), ==, 0);

  tmpdir = g_dir_make_tmp ("cp-test-tls-XXXXXX", &error);
  g_assert_no_error (error);
  make_cert (&ca, "Test CA", NULL, TRUE, FALSE);
  make_cert (&server_cert, "localhost", &ca, FALSE, TRUE);
  make_cert (&alice, "alice", &ca, FALSE, FALSE);
  make_cert (&bob, "bob", &ca, FALSE, FALSE);
  make_cert (&other_ca, "Other CA", NULL, TRUE, FALSE);
  make_cert (&mallory, "mallory", &other_ca, FALSE, FALSE);

  g_test_add_func ("/tls/mtls-ok", test_mtls_ok);
  g_test_add_func ("/tls/no-client-auth", test_tls_no_client_auth);
  g_test_add_func ("/tls/in-process", test_in_process);
  g_test_add_func ("/tls/authz-interceptor", test_authz_interceptor);
  g_test_add_func ("/tls/mtls-no-client-cert", test_mtls_no_client_cert);
  g_test_add_func ("/tls/mtls-other-ca", test_mtls_other_ca);
  g_test_add_func ("/tls/server-untrusted", test_server_untrusted);
  g_test_add_func ("/tls/pinned-at-construction", test_pinned_at_construction);
  g_test_add_func ("/tls/files", test_files);
  g_test_add_func ("/tls/plaintext-warning", test_plaintext_warning);
  status = g_test_run ();

  for (const char * const *name = (const char * const[]) { "ca.pem", "other-ca.pem", "server.pem",
                                                           "server.key", "client.pem",
                                                           "client.key", NULL };
       *name != NULL; name++)
    {
      g_autofree char *path = g_build_filename (tmpdir, *name, NULL);

      (void) g_unlink (path);
    }
  (void) g_rmdir (tmpdir);
  g_free (tmpdir);
  g_free (last_plaintext_warning);
  cert_clear (&ca);
  cert_clear (&server_cert);
  cert_clear (&alice);
  cert_clear (&bob);
  cert_clear (&other_ca);
  cert_clear (&mallory);
  gnutls_global_deinit ();
  return status;
}
