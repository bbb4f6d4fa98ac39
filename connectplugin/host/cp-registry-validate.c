/* cp-registry-validate.c: the service registry's request validation and
 * (pure functions, linked alone by the fuzz target)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The limits and messages are connect-plugin-go's validation.go; Go's %q
 * is approximated with g_strescape().
 */
#include "cp-registry-private.h"

#include <string.h>

#include "cp-error.h"
#include "cp-semver-private.h"

#define KEY_PATTERN "^[a-zA-Z][a-zA-Z0-9_.\\-]*$"

static gboolean
invalid (GError    **error,
         const char *format,
         ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError    **error,
         const char *format,
         ...)
{
  va_list args;

  va_start (args, format);
  if (error != NULL)
    *error = g_error_new_valist (CP_ERROR, CP_ERROR_INVALID_ARGUMENT, format, args);
  va_end (args);
  return FALSE;
}

/* validKeyPattern: a letter, then letters, digits, '_', '.', '-'. */
static gboolean
matches_key_pattern (const char *s)
{
  if (!g_ascii_isalpha (s[0]))
    return FALSE;
  for (s++; *s != '\0'; s++)
    if (!g_ascii_isalnum (*s) && *s != '_' && *s != '.' && *s != '-')
      return FALSE;
  return TRUE;
}

gboolean
cp_registry_validate_service_type (const char  *service_type,
                                   GError     **error)
{
  gsize len = service_type != NULL ? strlen (service_type) : 0;
  g_autofree char *quoted = NULL;

  if (len == 0)
    return invalid (error, "service type cannot be empty");
  if (len > CP_REGISTRY_MAX_SERVICE_TYPE_LEN)
    return invalid (error, "service type too long: %" G_GSIZE_FORMAT " bytes (max: %d)",
                    len, CP_REGISTRY_MAX_SERVICE_TYPE_LEN);
  if (!matches_key_pattern (service_type))
    {
      quoted = g_strescape (service_type, NULL);
      return invalid (error, "service type \"%s\" contains invalid characters (must match: %s)",
                      quoted, KEY_PATTERN);
    }
  /* The pattern allows "a..b": the original refuses it as traversal. */
  if (strstr (service_type, "..") != NULL)
    return invalid (error, "service type contains path traversal characters: %s", service_type);
  return TRUE;
}

gboolean
cp_registry_validate_version (const char  *version,
                              GError     **error)
{
  gsize len = version != NULL ? strlen (version) : 0;
  g_autofree char *quoted = NULL;

  if (len == 0)
    return invalid (error, "version cannot be empty");
  if (len > CP_REGISTRY_MAX_VERSION_LEN)
    return invalid (error, "version too long: %" G_GSIZE_FORMAT " bytes (max: %d)",
                    len, CP_REGISTRY_MAX_VERSION_LEN);
  if (!cp_semver_is_valid (version))
    {
      quoted = g_strescape (version, NULL);
      return invalid (error, "version \"%s\" must be semantic version (e.g., 1.0.0, 2.1.3-beta)",
                      quoted);
    }
  return TRUE;
}

gboolean
cp_registry_validate_endpoint_path (const char  *path,
                                    GError     **error)
{
  gsize len = path != NULL ? strlen (path) : 0;

  if (len == 0)
    return invalid (error, "endpoint path cannot be empty");
  if (path[0] != '/')
    return invalid (error, "endpoint path must start with /: %s", path);
  if (len > CP_REGISTRY_MAX_ENDPOINT_PATH_LEN)
    return invalid (error, "endpoint path too long: %" G_GSIZE_FORMAT " bytes (max: %d)",
                    len, CP_REGISTRY_MAX_ENDPOINT_PATH_LEN);
  return TRUE;
}

static gboolean
validate_entry (const char  *key,
                const char  *value,
                GError     **error)
{
  gsize key_len = strlen (key);
  gsize value_len = value != NULL ? strlen (value) : 0;
  g_autofree char *quoted = g_strescape (key, NULL);

  if (key_len == 0)
    return invalid (error, "metadata key cannot be empty");
  if (key_len > CP_REGISTRY_MAX_METADATA_KEY_LEN)
    return invalid (error, "metadata key too long: %" G_GSIZE_FORMAT " bytes (max: %d)",
                    key_len, CP_REGISTRY_MAX_METADATA_KEY_LEN);
  if (!matches_key_pattern (key))
    return invalid (error, "metadata key \"%s\" contains invalid characters (must match: %s)",
                    quoted, KEY_PATTERN);
  if (value_len > CP_REGISTRY_MAX_METADATA_VALUE_LEN)
    return invalid (error, "metadata value for key \"%s\" too long: %" G_GSIZE_FORMAT
                    " bytes (max: %d)", quoted, value_len, CP_REGISTRY_MAX_METADATA_VALUE_LEN);
  return TRUE;
}

static int
compare_keys (gconstpointer a,
              gconstpointer b,
              gpointer      user_data)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

gboolean
cp_registry_validate_metadata (GHashTable  *metadata,
                               GError     **error)
{
  g_autofree gpointer *keys = NULL;
  guint n_keys = 0;

  if (metadata == NULL)
    return TRUE;
  if (g_hash_table_size (metadata) > CP_REGISTRY_MAX_METADATA_ENTRIES)
    return invalid (error, "too many metadata entries: %u (max: %d)",
                    g_hash_table_size (metadata), CP_REGISTRY_MAX_METADATA_ENTRIES);
  keys = g_hash_table_get_keys_as_array (metadata, &n_keys);
  g_qsort_with_data (keys, n_keys, sizeof (gpointer), compare_keys, NULL);
  for (guint i = 0; i < n_keys; i++)
    if (!validate_entry (keys[i], g_hash_table_lookup (metadata, keys[i]), error))
      return FALSE;
  return TRUE;
}

/* `base_url` is where the router connects: an absolute http(s) URL. */
static gboolean
validate_base_url (GHashTable  *metadata,
                   GError     **error)
{
  const char *url = metadata != NULL ? g_hash_table_lookup (metadata, "base_url") : NULL;
  g_autoptr(GUri) uri = NULL;

  if (url == NULL)
    return TRUE;
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL || g_uri_get_host (uri)[0] == '\0' ||
      (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 &&
       g_strcmp0 (g_uri_get_scheme (uri), "https") != 0))
    return invalid (error, "metadata base_url must be an absolute http or https URL");
  return TRUE;
}

gboolean
cp_registry_validate_register (CpRegisterServiceRequest  *request,
                               GError                   **error)
{
  g_autoptr(GHashTable) metadata = cp_register_service_request_get_metadata (request);

  return cp_registry_validate_service_type (cp_register_service_request_get_service_type (request), error) &&
         cp_registry_validate_version (cp_register_service_request_get_version (request), error) &&
         cp_registry_validate_endpoint_path (cp_register_service_request_get_endpoint_path (request), error) &&
         cp_registry_validate_metadata (metadata, error) &&
         validate_base_url (metadata, error);
}
