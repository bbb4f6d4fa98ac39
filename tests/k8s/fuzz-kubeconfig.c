/* fuzz-kubeconfig.c: kubeconfig files through the YAML-subset reader and cp_kube_config_parse ()
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Any bytes: a JSON tree or a CP_ERROR_INVALID_ARGUMENT error, never both
 * and never neither; a configuration, when one comes out, has an http(s)
 * server without a trailing slash, and a client certificate only with its
 * key. Inputs naming files (which the parser reads) only go through the
 * YAML reader, so that no input makes the target read /dev/zero.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

#include "cp-kubernetes-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gboolean
names_files (const char *text,
             size_t      size)
{
  static const char * const keys[] = {
    "tokenFile", "certificate-authority\"", "certificate-authority:", "certificate-authority ",
    "client-certificate\"", "client-certificate:", "client-certificate ",
    "client-key\"", "client-key:", "client-key ",
  };

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    if (memmem (text, size, keys[i], strlen (keys[i])) != NULL)
      return TRUE;
  return FALSE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = size > 0 ? (const char *) data : "";
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = cp_kube_yaml_parse (text, size, &error);
  g_autoptr(CpKubeConfig) config = NULL;

  g_assert_true ((root == NULL) != (error == NULL));
  if (root == NULL)
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      return 0;
    }
  if (names_files (text, size))
    return 0;

  config = cp_kube_config_parse (text, size, "/nonexistent-cp-fuzz", NULL, &error);
  g_assert_true ((config == NULL) != (error == NULL));
  if (config == NULL)
    {
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      return 0;
    }
  g_assert_true (g_str_has_prefix (config->server, "http://") ||
                 g_str_has_prefix (config->server, "https://"));
  g_assert_false (g_str_has_suffix (config->server, "/"));
  g_assert_true ((config->client_cert_pem == NULL) == (config->client_key_pem == NULL));
  return 0;
}
