/* cp-tls-files.c: loading TLS certificates, keys and CAs from PEM files
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-tls-private.h"
#include "cp-error.h"

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
