/* cp-router-path.c: the router's path parser
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Strict on purpose: the provider and method end up in an upstream URL,
 * so nothing that a URL parser could reinterpret (`%`, `..`, `?`, `#`,
 * `\`) gets through.
 */
#include "cp-router-path.h"

#include <string.h>

#define MAX_SEGMENT 128

/* A type or runtime id: [A-Za-z0-9][A-Za-z0-9_.-]*, no "..". */
static gboolean
valid_name (const char *s,
            gsize       len)
{
  if (len == 0 || len > MAX_SEGMENT || !g_ascii_isalnum (s[0]))
    return FALSE;
  for (gsize i = 1; i < len; i++)
    {
      char c = s[i];

      if (!g_ascii_isalnum (c) && c != '_' && c != '.' && c != '-')
        return FALSE;
      if (c == '.' && s[i - 1] == '.')
        return FALSE;
    }
  return TRUE;
}

/* A proto method name: [A-Za-z][A-Za-z0-9_]*. */
static gboolean
valid_method (const char *s,
              gsize       len)
{
  if (len == 0 || len > MAX_SEGMENT || !g_ascii_isalpha (s[0]))
    return FALSE;
  for (gsize i = 1; i < len; i++)
    if (!g_ascii_isalnum (s[i]) && s[i] != '_')
      return FALSE;
  return TRUE;
}

gboolean
cp_router_parse_path (const char  *path,
                      char       **service_type,
                      char       **runtime_id,
                      char       **method)
{
  const char *type, *id, *name, *slash;
  gsize type_len, id_len;

  g_return_val_if_fail (service_type != NULL && runtime_id != NULL && method != NULL, FALSE);
  *service_type = *runtime_id = *method = NULL;

  if (path == NULL || !g_str_has_prefix (path, CP_ROUTER_PREFIX))
    return FALSE;
  type = path + strlen (CP_ROUTER_PREFIX);
  if ((slash = strchr (type, '/')) == NULL)
    return FALSE;
  type_len = slash - type;
  id = slash + 1;
  if ((slash = strchr (id, '/')) == NULL)
    return FALSE;
  id_len = slash - id;
  name = slash + 1;

  if (!valid_name (type, type_len) || !valid_name (id, id_len) ||
      !valid_method (name, strlen (name)))
    return FALSE;

  *service_type = g_strndup (type, type_len);
  *runtime_id = g_strndup (id, id_len);
  *method = g_strdup (name);
  return TRUE;
}
