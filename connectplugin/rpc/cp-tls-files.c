/* cp-tls-files.c: loading TLS certificates, keys and CAs from PEM files
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-tls-private.h"
#include "cp-error.h"

#include <dlfcn.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#ifdef RTLD_NODELETE
/* What preloading reads from the environment, read at once: the thread
 * that loads may run while the program changes its environment. */
typedef struct {
  int flags;             /* for dlopen () */
  char *module_dir;      /* GIO's module directory; NULL: no module */
} PreloadPlan;

/* GIO's module of the TLS backend, as its giomodule.cache names it in
 * @dir: the one module that implements gio-tls-backend there, else none
 * (GIO then chooses among several, GIO_USE_TLS first). */
static char *
tls_module_path (const char *dir)
{
  g_autofree char *cache = NULL;
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  char *found = NULL;

  cache = g_build_filename (dir, "giomodule.cache", NULL);
  if (!g_file_get_contents (cache, &contents, NULL, NULL))
    return NULL;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      g_auto(GStrv) points = NULL;

      if (colon == NULL)
        continue;
      *colon = '\0';
      points = g_strsplit (colon + 1, ",", -1);
      for (guint j = 0; points[j] != NULL; j++)
        if (g_str_equal (g_strstrip (points[j]), "gio-tls-backend"))
          {
            if (found != NULL)
              {
                g_free (found);
                return NULL;
              }
            found = g_build_filename (dir, g_strstrip (lines[i]), NULL);
            break;
          }
    }
  return found;
}

#ifdef RTLD_DEEPBIND
/* RTLD_DEEPBIND when nothing in the process stands in for the C library:
 * no sanitizer runtime, no LD_PRELOAD, and its malloc () is libc's own.
 * Where something does (ASan, jemalloc, a preloaded shim), GnuTLS must
 * bind to it as the rest of the process does, and ASan refuses the flag. */
static int
deep_bind_flag (void)
{
  void *libc;
  gboolean plain;

  if (g_getenv ("LD_PRELOAD") != NULL ||
      dlsym (RTLD_DEFAULT, "__sanitizer_set_report_path") != NULL)
    return 0;
  libc = dlopen ("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (libc == NULL)
    return 0;
  plain = dlsym (libc, "malloc") == dlsym (RTLD_DEFAULT, "malloc") &&
          dlsym (libc, "free") == dlsym (RTLD_DEFAULT, "free");
  dlclose (libc);
  return plain ? RTLD_DEEPBIND : 0;
}
#else
#define deep_bind_flag() 0
#endif

static PreloadPlan *
preload_plan_new (void)
{
  PreloadPlan *plan = g_new0 (PreloadPlan, 1);
  const char *dir = g_getenv ("GIO_MODULE_DIR");

  plan->flags = RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE | deep_bind_flag ();
  if (dir == NULL || *dir == '\0')
    dir = CP_GIO_MODULE_DIR;
  if (g_getenv ("GIO_USE_TLS") == NULL && *dir != '\0')
    plan->module_dir = g_strdup (dir);
  return plan;
}

/* Set by cp_tls_preload_backend_start () before its thread starts. */
static PreloadPlan *early_plan;

static gpointer
preload_backend (gpointer data)
{
  PreloadPlan *plan = early_plan != NULL ? g_steal_pointer (&early_plan) : preload_plan_new ();
  g_autofree char *module = NULL;

  /* The handles are never closed: the libraries stay, whatever GIO
   * unloads. GIO loads the backend's module to register its types, unloads
   * it and loads it again for the backend object; kept, the module is
   * mapped, relocated and initialised once.
   *
   * Deep binding: each of GnuTLS's thousands of symbol references is
   * looked up in its own dependencies (Nettle, GMP, libtasn1, p11-kit …)
   * first, instead of in every library of the process before them; in a
   * plugin, linked with some thirty libraries, that is a third of the
   * time the load takes. */
  (void) dlopen (CP_GNUTLS_SONAME, plan->flags);
  if (plan->module_dir != NULL && (module = tls_module_path (plan->module_dir)) != NULL)
    (void) dlopen (module, plan->flags);
  g_free (plan->module_dir);
  g_free (plan);
  return NULL;
}

static GOnce preload_once = G_ONCE_INIT;

static gpointer
preload_thread (gpointer data)
{
  cp_tls_preload_backend ();
  return NULL;
}
#endif

void
cp_tls_preload_backend (void)
{
#ifdef RTLD_NODELETE
  g_once (&preload_once, preload_backend, NULL);
#endif
}

void
cp_tls_preload_backend_start (void)
{
#ifdef RTLD_NODELETE
  if (early_plan != NULL || preload_once.status != G_ONCE_STATUS_NOTCALLED)
    return;
  early_plan = preload_plan_new ();
  g_thread_unref (g_thread_new ("cp-tls-preload", preload_thread, NULL));
#endif
}

gboolean
cp_tls_load_files (const char       *cert_pem,
                   const char       *key_pem,
                   const char       *ca_pem,
                   GTlsCertificate **out_certificate,
                   GTlsDatabase    **out_database,
                   GError          **error)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;

  g_return_val_if_fail (out_certificate != NULL && out_database != NULL, FALSE);
  *out_certificate = NULL;
  *out_database = NULL;

  if (key_pem != NULL && cert_pem == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "a TLS key file needs a certificate file");
      return FALSE;
    }
  if (cert_pem != NULL || ca_pem != NULL)
    cp_tls_preload_backend ();
  if (cert_pem != NULL)
    {
      if (key_pem != NULL)
        certificate = g_tls_certificate_new_from_files (cert_pem, key_pem, error);
      else
        certificate = g_tls_certificate_new_from_file (cert_pem, error);
      if (certificate == NULL)
        {
          g_prefix_error (error, "%s: ", cert_pem);
          return FALSE;
        }
    }
  if (ca_pem != NULL)
    {
      database = g_tls_file_database_new (ca_pem, error);
      if (database == NULL)
        {
          g_prefix_error (error, "%s: ", ca_pem);
          return FALSE;
        }
    }
  *out_certificate = g_steal_pointer (&certificate);
  *out_database = g_steal_pointer (&database);
  return TRUE;
}

gboolean
cp_tls_set_files (GObject     *object,
                  const char  *cert_pem,
                  const char  *key_pem,
                  const char  *ca_pem,
                  GError     **error)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;

  if (!cp_tls_load_files (cert_pem, key_pem, ca_pem, &certificate, &database, error))
    return FALSE;
  if (certificate != NULL)
    g_object_set (object, "tls-certificate", certificate, NULL);
  if (database != NULL)
    g_object_set (object, "tls-database", database, NULL);
  return TRUE;
}

/* glib-networking reads a file database's file again whenever it sets up
 * a connection's credentials: the file (or memfd) lives as long as the
 * database. */
typedef struct {
  int fd;
  char *dir;
  char *path;
} PemBacking;

static void
pem_backing_free (gpointer data)
{
  PemBacking *backing = data;

  if (backing->fd >= 0)
    close (backing->fd);
  else
    {
      (void) g_unlink (backing->path);
      (void) g_rmdir (backing->dir);
    }
  g_free (backing->dir);
  g_free (backing->path);
  g_free (backing);
}

#if defined(__linux__) && defined(MFD_CLOEXEC)
static int
memfd_with (const char *contents,
            gsize       len)
{
  int fd = memfd_create ("connectplugin-ca", MFD_CLOEXEC);
  gsize done = 0;

  if (fd < 0)
    return -1;
  while (done < len)
    {
      gssize n = write (fd, contents + done, len - done);

      if (n <= 0)
        {
          close (fd);
          return -1;
        }
      done += (gsize) n;
    }
  return fd;
}
#endif

GTlsDatabase *
cp_tls_database_new_from_pem (const char  *ca_pem,
                              GError     **error)
{
  PemBacking *backing = g_new0 (PemBacking, 1);
  GTlsDatabase *database = NULL;
  gsize len = strlen (ca_pem);

  backing->fd = -1;
#if defined(__linux__) && defined(MFD_CLOEXEC)
  backing->fd = memfd_with (ca_pem, len);
#endif
  if (backing->fd >= 0)
    backing->path = g_strdup_printf ("/proc/self/fd/%d", backing->fd);
  else
    {
      backing->dir = g_dir_make_tmp ("connectplugin-ca-XXXXXX", error);
      if (backing->dir == NULL)
        {
          pem_backing_free (backing);
          return NULL;
        }
      backing->path = g_build_filename (backing->dir, "ca.pem", NULL);
      if (!g_file_set_contents_full (backing->path, ca_pem, (gssize) len,
                                     G_FILE_SET_CONTENTS_NONE, 0600, error))
        {
          pem_backing_free (backing);
          return NULL;
        }
    }
  database = g_tls_file_database_new (backing->path, error);
  if (database == NULL)
    {
      pem_backing_free (backing);
      return NULL;
    }
  g_object_set_data_full (G_OBJECT (database), "cp-pem-backing", backing, pem_backing_free);
  return database;
}

/* ---- a database that trusts one certificate ---- */

#define CP_TYPE_TLS_PINNED_DATABASE (cp_tls_pinned_database_get_type ())
G_DECLARE_FINAL_TYPE (CpTlsPinnedDatabase, cp_tls_pinned_database, CP, TLS_PINNED_DATABASE,
                      GTlsDatabase)

struct _CpTlsPinnedDatabase
{
  GTlsDatabase parent_instance;

  GBytes *der;                /* the certificate trusted */
  gint64 not_before;          /* its validity, Unix time; G_MININT64/G_MAXINT64: none */
  gint64 not_after;
};

G_DEFINE_FINAL_TYPE (CpTlsPinnedDatabase, cp_tls_pinned_database, G_TYPE_TLS_DATABASE)

static GBytes *
certificate_der (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) der = NULL;

  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&der));
}

static GTlsCertificateFlags
cp_tls_pinned_database_verify_chain (GTlsDatabase             *database,
                                     GTlsCertificate          *chain,
                                     const gchar              *purpose,
                                     GSocketConnectable       *identity,
                                     GTlsInteraction          *interaction,
                                     GTlsDatabaseVerifyFlags   flags,
                                     GCancellable             *cancellable,
                                     GError                  **error)
{
  CpTlsPinnedDatabase *self = CP_TLS_PINNED_DATABASE (database);
  g_autoptr(GBytes) der = NULL;
  GTlsCertificateFlags result = 0;
  gint64 now;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return G_TLS_CERTIFICATE_GENERIC_ERROR;
  /* The peer's own certificate (the head of the chain) must be the very
   * one pinned: the handshake has shown that the peer holds its key. The
   * rest of the chain, if any, does not matter, nor does @identity: no
   * other certificate is trusted, whoever signed it and whatever it names. */
  der = certificate_der (chain);
  if (der == NULL || !g_bytes_equal (der, self->der))
    return G_TLS_CERTIFICATE_UNKNOWN_CA;
  now = g_get_real_time () / G_USEC_PER_SEC;
  if (now < self->not_before)
    result |= G_TLS_CERTIFICATE_NOT_ACTIVATED;
  if (now > self->not_after)
    result |= G_TLS_CERTIFICATE_EXPIRED;
  return result;
}

/* Only the pinned certificate is known, and it is its own issuer here. */
static GTlsCertificate *
cp_tls_pinned_database_lookup_certificate_issuer (GTlsDatabase             *database,
                                                  GTlsCertificate          *certificate,
                                                  GTlsInteraction          *interaction,
                                                  GTlsDatabaseLookupFlags   flags,
                                                  GCancellable             *cancellable,
                                                  GError                  **error)
{
  g_cancellable_set_error_if_cancelled (cancellable, error);
  return NULL;
}

static void
cp_tls_pinned_database_finalize (GObject *object)
{
  CpTlsPinnedDatabase *self = CP_TLS_PINNED_DATABASE (object);

  g_clear_pointer (&self->der, g_bytes_unref);
  G_OBJECT_CLASS (cp_tls_pinned_database_parent_class)->finalize (object);
}

static void
cp_tls_pinned_database_class_init (CpTlsPinnedDatabaseClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GTlsDatabaseClass *database_class = G_TLS_DATABASE_CLASS (klass);

  object_class->finalize = cp_tls_pinned_database_finalize;
  database_class->verify_chain = cp_tls_pinned_database_verify_chain;
  database_class->lookup_certificate_issuer = cp_tls_pinned_database_lookup_certificate_issuer;
}

static void
cp_tls_pinned_database_init (CpTlsPinnedDatabase *self)
{
  self->not_before = G_MININT64;
  self->not_after = G_MAXINT64;
}

GTlsDatabase *
cp_tls_pinned_database_new (GTlsCertificate *certificate)
{
  CpTlsPinnedDatabase *self;
  g_autoptr(GDateTime) not_before = NULL;
  g_autoptr(GDateTime) not_after = NULL;

  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), NULL);

  self = g_object_new (CP_TYPE_TLS_PINNED_DATABASE, NULL);
  self->der = certificate_der (certificate);
  if (self->der == NULL)
    self->der = g_bytes_new (NULL, 0);   /* matches no certificate */
  not_before = g_tls_certificate_get_not_valid_before (certificate);
  not_after = g_tls_certificate_get_not_valid_after (certificate);
  if (not_before != NULL)
    self->not_before = g_date_time_to_unix (not_before);
  if (not_after != NULL)
    self->not_after = g_date_time_to_unix (not_after);
  return G_TLS_DATABASE (self);
}

GTlsDatabase *
cp_tls_pinned_database_new_from_pem (const char  *pem,
                                     GError     **error)
{
  g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_pem (pem, -1, error);

  if (certificate == NULL)
    return NULL;
  return cp_tls_pinned_database_new (certificate);
}
