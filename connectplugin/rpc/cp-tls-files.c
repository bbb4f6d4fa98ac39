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

static gpointer
preload_backend (gpointer data)
{
#ifdef RTLD_NODELETE
  /* The handle is never closed: the library stays, whatever GIO unloads. */
  (void) dlopen (CP_GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
#endif
  return NULL;
}

void
cp_tls_preload_backend (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, preload_backend, NULL);
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
