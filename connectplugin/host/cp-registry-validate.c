/* cp-registry-validate.c: the service registry's request validation and
 * semver precedence (pure functions, linked alone by the fuzz target)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The limits and messages are connect-plugin-go's validation.go; Go's %q
 * is approximated with g_strescape().
 */
#include "cp-registry-private.h"

#include <string.h>

#include "cp-error.h"

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

/* One or more digits at *s; advances past them. */
static gboolean
skip_digits (const char **s)
{
  const char *start = *s;

  while (g_ascii_isdigit (**s))
    (*s)++;
  return *s != start;
}

/* validVersionPattern: ^[0-9]+\.[0-9]+\.[0-9]+(-[a-zA-Z0-9.-]+)?$ */
static gboolean
matches_version_pattern (const char *s)
{
  for (guint i = 0; i < 3; i++)
    {
      if (!skip_digits (&s))
        return FALSE;
      if (i < 2 && *s++ != '.')
        return FALSE;
    }
  if (*s == '\0')
    return TRUE;
  if (*s++ != '-' || *s == '\0')
    return FALSE;
  for (; *s != '\0'; s++)
    if (!g_ascii_isalnum (*s) && *s != '.' && *s != '-')
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
  if (!matches_version_pattern (version))
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

/* ------------------------------------------------------------------ */
/* Semver precedence                                                    */

static gboolean
is_numeric (const char *s,
            gsize       len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (s[i]))
      return FALSE;
  return TRUE;
}

/* Numbers of any length: without leading zeros, longer is larger. */
static int
compare_numbers (const char *a,
                 gsize       a_len,
                 const char *b,
                 gsize       b_len)
{
  int cmp;

  while (a_len > 1 && a[0] == '0')
    a++, a_len--;
  while (b_len > 1 && b[0] == '0')
    b++, b_len--;
  if (a_len != b_len)
    return a_len < b_len ? -1 : 1;
  cmp = memcmp (a, b, a_len);
  return cmp < 0 ? -1 : cmp > 0;
}

/* semver.org §11.4: identifiers one by one; numeric ones compare as
 * numbers and sort before alphanumeric ones (ASCII order); a shorter list
 * that is a prefix of the other is lower. */
static int
compare_prerelease (const char *a,
                    const char *b)
{
  while (TRUE)
    {
      gsize a_len = strcspn (a, "."), b_len = strcspn (b, ".");
      gboolean a_num = is_numeric (a, a_len), b_num = is_numeric (b, b_len);
      int cmp;

      if (a_num && b_num)
        cmp = compare_numbers (a, a_len, b, b_len);
      else if (a_num != b_num)
        cmp = a_num ? -1 : 1;
      else
        {
          cmp = memcmp (a, b, MIN (a_len, b_len));
          if (cmp == 0 && a_len != b_len)
            cmp = a_len < b_len ? -1 : 1;
        }
      if (cmp != 0)
        return cmp < 0 ? -1 : 1;
      a += a_len;
      b += b_len;
      if (*a == '\0' || *b == '\0')
        return *a == *b ? 0 : (*a == '\0' ? -1 : 1);
      a++, b++;
    }
}

int
cp_registry_semver_compare (const char *a,
                            const char *b)
{
  /* major, minor, patch */
  for (guint i = 0; i < 3; i++)
    {
      gsize a_len = strspn (a, "0123456789"), b_len = strspn (b, "0123456789");
      int cmp = compare_numbers (a, a_len, b, b_len);

      if (cmp != 0)
        return cmp;
      a += a_len;
      b += b_len;
      if (i < 2)
        {
          if (*a == '.')
            a++;
          if (*b == '.')
            b++;
        }
    }
  /* A pre-release is lower than its release. */
  if (*a != '-' || *b != '-')
    return *a == *b ? 0 : (*a == '-' ? -1 : 1);
  return compare_prerelease (a + 1, b + 1);
}
