/* fuzz-router-path.c: the router's path parser on arbitrary paths
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Any input must be accepted or refused without a crash; an accepted one
 * must split into three segments that rebuild the input exactly and hold
 * nothing a URL could reinterpret (`%`, `/`, `..`, `?`, `#`, `\`).
 */
#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "cp-router-path.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_segment (const char *segment)
{
  g_assert_true (segment[0] != '\0');
  g_assert_null (strpbrk (segment, "%/?#\\ "));
  g_assert_null (strstr (segment, ".."));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *path = g_strndup ((const char *) data, size);
  g_autofree char *type = NULL, *id = NULL, *method = NULL;
  g_autofree char *rebuilt = NULL;

  if (!cp_router_parse_path (path, &type, &id, &method))
    {
      g_assert_null (type);
      return 0;
    }
  check_segment (type);
  check_segment (id);
  check_segment (method);
  rebuilt = g_strconcat ("/services/", type, "/", id, "/", method, NULL);
  g_assert_cmpstr (rebuilt, ==, path);
  return 0;
}
