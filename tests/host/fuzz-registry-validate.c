/* fuzz-registry-validate.c: the service registry's request validation
 * (RegisterService bodies as the host decodes them, proto or JSON) and
 * semver precedence
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A valid request must satisfy the limits the registry relies on; two
 * valid versions must compare antisymmetrically.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

#include "cp-registry-private.h"
#include "cp-semver-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_versions (const char *a,
                const char *b)
{
  if (!cp_registry_validate_version (a, NULL) || !cp_registry_validate_version (b, NULL))
    return;
  g_assert (cp_semver_compare (a, b) == -cp_semver_compare (b, a));
  g_assert (cp_semver_compare (a, a) == 0);
}

static void
check_request (CpRegisterServiceRequest *request)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) metadata = NULL;

  if (!cp_registry_validate_register (request, &error))
    {
      g_assert (g_error_matches (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT));
      g_assert (error->message[0] != '\0');
      return;
    }
  g_assert (strlen (cp_register_service_request_get_service_type (request)) <= CP_REGISTRY_MAX_SERVICE_TYPE_LEN);
  g_assert (strstr (cp_register_service_request_get_service_type (request), "/") == NULL);
  g_assert (cp_register_service_request_get_endpoint_path (request)[0] == '/');
  metadata = cp_register_service_request_get_metadata (request);
  g_assert (metadata == NULL || g_hash_table_size (metadata) <= CP_REGISTRY_MAX_METADATA_ENTRIES);
  check_versions (cp_register_service_request_get_version (request), "1.0.0-rc.1");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);
  g_autofree char *text = size > 0 ? g_strndup ((const char *) data, size) : g_strdup ("");
  g_auto(GStrv) parts = NULL;

  for (CpCodec codec = CP_CODEC_PROTO; codec <= CP_CODEC_JSON; codec++)
    {
      g_autoptr(CpMessage) message = cp_message_new_from_bytes (CP_TYPE_REGISTER_SERVICE_REQUEST,
                                                                codec, bytes, NULL);

      if (message != NULL)
        check_request (CP_REGISTER_SERVICE_REQUEST (message));
    }

  /* The input as "a\nb": two versions to compare, and each field alone. */
  parts = g_strsplit (text, "\n", 3);
  if (parts[0] != NULL && parts[1] != NULL)
    check_versions (parts[0], parts[1]);
  if (parts[0] != NULL)
    {
      cp_registry_validate_service_type (parts[0], NULL);
      cp_registry_validate_endpoint_path (parts[0], NULL);
    }
  return 0;
}
