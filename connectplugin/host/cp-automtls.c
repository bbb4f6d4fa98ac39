/* cp-automtls.c: making the ephemeral CA and certificates of AutoMTLS
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-automtls-private.h"
#include "cp-tls-private.h"
#include "cp-error.h"

#include <dlfcn.h>
#include <string.h>
#include <time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>

/* GnuTLS is opened on the first AutoMTLS launch, not linked: a plugin
 * process (which links this library too) would otherwise load it and the
 * five libraries only it needs at every start, for nothing. */
#define GNUTLS_FUNCTIONS(F) \
  F (gnutls_rnd) \
  F (gnutls_strerror) \
  F (gnutls_x509_crt_deinit) \
  F (gnutls_x509_crt_export2) \
  F (gnutls_x509_crt_get_key_id) \
  F (gnutls_x509_crt_get_subject_key_id) \
  F (gnutls_x509_crt_init) \
  F (gnutls_x509_crt_set_activation_time) \
  F (gnutls_x509_crt_set_authority_key_id) \
  F (gnutls_x509_crt_set_basic_constraints) \
  F (gnutls_x509_crt_set_dn_by_oid) \
  F (gnutls_x509_crt_set_expiration_time) \
  F (gnutls_x509_crt_set_key) \
  F (gnutls_x509_crt_set_key_purpose_oid) \
  F (gnutls_x509_crt_set_key_usage) \
  F (gnutls_x509_crt_set_serial) \
  F (gnutls_x509_crt_set_subject_alt_name) \
  F (gnutls_x509_crt_set_subject_key_id) \
  F (gnutls_x509_crt_set_version) \
  F (gnutls_x509_crt_sign2) \
  F (gnutls_x509_privkey_deinit) \
  F (gnutls_x509_privkey_export2_pkcs8) \
  F (gnutls_x509_privkey_generate) \
  F (gnutls_x509_privkey_init)

static struct {
#define DECLARE(name) __typeof__ (name) *name;
  GNUTLS_FUNCTIONS (DECLARE)
#undef DECLARE
  gnutls_free_function *gnutls_free;
} gt;

static gpointer
open_gnutls (gpointer data)
{
  void *handle = dlopen (CP_GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL);

  if (handle == NULL)
    return g_strdup (dlerror ());
#define LOOKUP(name) \
  if ((gt.name = (__typeof__ (gt.name)) dlsym (handle, #name)) == NULL) \
    return g_strdup_printf ("%s: no %s", CP_GNUTLS_SONAME, #name);
  GNUTLS_FUNCTIONS (LOOKUP)
  LOOKUP (gnutls_free)
#undef LOOKUP
  return NULL;
}

static gboolean
ensure_gnutls (GError **error)
{
  static GOnce once = G_ONCE_INIT;
  const char *failure = g_once (&once, open_gnutls, NULL);

  if (failure == NULL)
    return TRUE;
  g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "AutoMTLS: cannot load GnuTLS: %s", failure);
  return FALSE;
}

typedef struct {
  gnutls_x509_crt_t crt;
  gnutls_x509_privkey_t key;
} Cert;

static void
cert_clear (Cert *c)
{
  if (c->crt != NULL)
    gt.gnutls_x509_crt_deinit (c->crt);
  if (c->key != NULL)
    gt.gnutls_x509_privkey_deinit (c->key);
  c->crt = NULL;
  c->key = NULL;
}

static gboolean
check (int      ret,
       const char *what,
       GError **error)
{
  if (ret >= 0)
    return TRUE;
  g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
               "AutoMTLS: %s: %s", what, gt.gnutls_strerror (ret));
  return FALSE;
}

static char *
export_pem (gnutls_x509_crt_t      crt,
            gnutls_x509_privkey_t  key,
            GError               **error)
{
  gnutls_datum_t out = { NULL, 0 };
  char *pem;
  int ret;

  if (crt != NULL)
    ret = gt.gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &out);
  else
    ret = gt.gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                             GNUTLS_PKCS_PLAIN, &out);
  if (!check (ret, "exporting", error))
    return NULL;
  pem = g_strndup ((const char *) out.data, out.size);
  explicit_bzero (out.data, out.size);
  (*gt.gnutls_free) (out.data);
  return pem;
}

/* Kinds of certificate. */
enum { KIND_CA, KIND_SERVER, KIND_CLIENT };

/* @issuer NULL: self-signed (the CA). */
static gboolean
make_cert (Cert        *out,
           int          kind,
           Cert        *issuer,
           guint        lifetime_s,
           GError     **error)
{
  static const char *names[] = { "connectplugin AutoMTLS CA",
                                 "connectplugin plugin", "connectplugin host" };
  guint8 serial[16];
  guint8 key_id[64];
  size_t key_id_size = sizeof key_id;
  time_t now = time (NULL);
  const char *cn = names[kind];

  if (!check (gt.gnutls_x509_privkey_init (&out->key), "key", error) ||
      !check (gt.gnutls_x509_privkey_generate (out->key, GNUTLS_PK_ECDSA,
                                            GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
              "generating a key", error) ||
      !check (gt.gnutls_x509_crt_init (&out->crt), "certificate", error) ||
      !check (gt.gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial), "serial", error))
    return FALSE;
  serial[0] &= 0x7f;            /* positive */
  serial[0] |= 0x01;
  gt.gnutls_x509_crt_set_version (out->crt, 3);
  gt.gnutls_x509_crt_set_serial (out->crt, serial, sizeof serial);
  gt.gnutls_x509_crt_set_activation_time (out->crt, now - 60);
  gt.gnutls_x509_crt_set_expiration_time (out->crt, now + (time_t) lifetime_s);
  if (!check (gt.gnutls_x509_crt_set_dn_by_oid (out->crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                             cn, strlen (cn)), "name", error) ||
      !check (gt.gnutls_x509_crt_set_key (out->crt, out->key), "setting the key", error))
    return FALSE;
  gt.gnutls_x509_crt_set_basic_constraints (out->crt, kind == KIND_CA, kind == KIND_CA ? 0 : -1);
  if (kind == KIND_CA)
    gt.gnutls_x509_crt_set_key_usage (out->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
                                             GNUTLS_KEY_DIGITAL_SIGNATURE);
  else
    {
      gt.gnutls_x509_crt_set_key_usage (out->crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
      gt.gnutls_x509_crt_set_key_purpose_oid (out->crt, kind == KIND_SERVER ? GNUTLS_KP_TLS_WWW_SERVER
                                                                         : GNUTLS_KP_TLS_WWW_CLIENT, 0);
    }
  if (kind == KIND_SERVER)
    {
      const guint8 loopback[4] = { 127, 0, 0, 1 };
      const guint8 loopback6[16] = { [15] = 1 };

      gt.gnutls_x509_crt_set_subject_alt_name (out->crt, GNUTLS_SAN_DNSNAME, "localhost",
                                            strlen ("localhost"), GNUTLS_FSAN_APPEND);
      gt.gnutls_x509_crt_set_subject_alt_name (out->crt, GNUTLS_SAN_IPADDRESS, loopback,
                                            sizeof loopback, GNUTLS_FSAN_APPEND);
      gt.gnutls_x509_crt_set_subject_alt_name (out->crt, GNUTLS_SAN_IPADDRESS, loopback6,
                                            sizeof loopback6, GNUTLS_FSAN_APPEND);
    }
  if (!check (gt.gnutls_x509_crt_get_key_id (out->crt, 0, key_id, &key_id_size), "key id", error))
    return FALSE;
  gt.gnutls_x509_crt_set_subject_key_id (out->crt, key_id, key_id_size);
  if (issuer != NULL)
    {
      key_id_size = sizeof key_id;
      if (!check (gt.gnutls_x509_crt_get_subject_key_id (issuer->crt, key_id, &key_id_size, NULL),
                  "issuer key id", error))
        return FALSE;
      gt.gnutls_x509_crt_set_authority_key_id (out->crt, key_id, key_id_size);
    }
  return check (gt.gnutls_x509_crt_sign2 (out->crt,
                                       issuer != NULL ? issuer->crt : out->crt,
                                       issuer != NULL ? issuer->key : out->key,
                                       GNUTLS_DIG_SHA256, 0), "signing", error);
}

static void
wipe_free (char *s)
{
  if (s != NULL)
    explicit_bzero (s, strlen (s));
  g_free (s);
}

void
cp_automtls_free (CpAutoMtls *automtls)
{
  if (automtls == NULL)
    return;
  g_free (automtls->ca_pem);
  g_free (automtls->server_cert_pem);
  g_free (automtls->client_cert_pem);
  wipe_free (automtls->server_key_pem);
  g_clear_object (&automtls->client_certificate);
  g_clear_object (&automtls->database);
  g_free (automtls);
}

static gboolean
fill (CpAutoMtls  *self,
      guint        lifetime_s,
      GError     **error)
{
  Cert ca = { NULL, NULL }, server = { NULL, NULL }, client = { NULL, NULL };
  char *client_key = NULL;
  char *client_pem = NULL;
  gboolean ok = FALSE;

  if (make_cert (&ca, KIND_CA, NULL, lifetime_s, error) &&
      make_cert (&server, KIND_SERVER, &ca, lifetime_s, error) &&
      make_cert (&client, KIND_CLIENT, &ca, lifetime_s, error) &&
      (self->ca_pem = export_pem (ca.crt, NULL, error)) != NULL &&
      (self->server_cert_pem = export_pem (server.crt, NULL, error)) != NULL &&
      (self->server_key_pem = export_pem (NULL, server.key, error)) != NULL &&
      (self->client_cert_pem = export_pem (client.crt, NULL, error)) != NULL &&
      (client_key = export_pem (NULL, client.key, error)) != NULL)
    {
      client_pem = g_strconcat (self->client_cert_pem, client_key, NULL);
      self->client_certificate = g_tls_certificate_new_from_pem (client_pem, -1, error);
      /* The host trusts the plugin's certificate alone, not the CA. */
      if (self->client_certificate != NULL)
        self->database = cp_tls_pinned_database_new_from_pem (self->server_cert_pem, error);
      ok = self->database != NULL;
    }
  wipe_free (client_key);
  wipe_free (client_pem);
  cert_clear (&ca);
  cert_clear (&server);
  cert_clear (&client);
  return ok;
}

CpAutoMtls *
cp_automtls_new (guint    lifetime_s,
                 GError **error)
{
  g_autoptr(CpAutoMtls) self = NULL;

  if (!ensure_gnutls (error))
    return NULL;
  self = g_new0 (CpAutoMtls, 1);
  if (!fill (self, lifetime_s, error))
    return NULL;
  return g_steal_pointer (&self);
}

/* ---- the table of running AutoMTLS plugins ---- */

typedef struct {
  GTlsCertificate *certificate;
  GTlsDatabase *database;
} Entry;

static GMutex table_lock;
static GHashTable *table;       /* "host:port" → Entry */

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_object_unref (entry->certificate);
  g_object_unref (entry->database);
  g_free (entry);
}

static char *
key_of_host (const char *host,
             guint16     port)
{
  return g_strdup_printf ("%s:%u", host, port);
}

/* "host:port" of an https URL, or NULL. */
static char *
key_of_url (const char *url)
{
  g_autoptr(GUri) uri = NULL;

  if (url == NULL || !g_str_has_prefix (url, "https://"))
    return NULL;
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL || g_uri_get_port (uri) <= 0)
    return NULL;
  return key_of_host (g_uri_get_host (uri), (guint16) g_uri_get_port (uri));
}

void
cp_automtls_register (const char *url,
                      CpAutoMtls *automtls)
{
  char *key = key_of_url (url);
  Entry *entry;

  if (key == NULL)
    return;
  entry = g_new0 (Entry, 1);
  entry->certificate = g_object_ref (automtls->client_certificate);
  entry->database = g_object_ref (automtls->database);
  g_mutex_lock (&table_lock);
  if (table == NULL)
    table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, entry_free);
  g_hash_table_replace (table, key, entry);
  g_mutex_unlock (&table_lock);
}

void
cp_automtls_unregister (const char *url)
{
  g_autofree char *key = key_of_url (url);

  if (key == NULL)
    return;
  g_mutex_lock (&table_lock);
  if (table != NULL)
    g_hash_table_remove (table, key);
  g_mutex_unlock (&table_lock);
}

static gboolean
lookup_key (const char       *key,
            GTlsCertificate **certificate,
            GTlsDatabase    **database)
{
  Entry *entry = NULL;

  *certificate = NULL;
  *database = NULL;
  if (key == NULL)
    return FALSE;
  g_mutex_lock (&table_lock);
  if (table != NULL)
    entry = g_hash_table_lookup (table, key);
  if (entry != NULL)
    {
      *certificate = g_object_ref (entry->certificate);
      *database = g_object_ref (entry->database);
    }
  g_mutex_unlock (&table_lock);
  return entry != NULL;
}

gboolean
cp_automtls_lookup (const char       *url,
                    GTlsCertificate **certificate,
                    GTlsDatabase    **database)
{
  g_autofree char *key = key_of_url (url);

  return lookup_key (key, certificate, database);
}

gboolean
cp_automtls_lookup_host (const char       *host,
                         guint16           port,
                         GTlsCertificate **certificate,
                         GTlsDatabase    **database)
{
  g_autofree char *key = key_of_host (host, port);

  return lookup_key (key, certificate, database);
}
