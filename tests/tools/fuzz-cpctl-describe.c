/* fuzz-cpctl-describe.c: cpctl's FileDescriptorProto reader on arbitrary bytes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `cpctl describe` reads the descriptors a server answers reflection with:
 * whatever the bytes, it describes the service, says it is absent, or says
 * the bytes are malformed (and then appends nothing), without a crash.
 */
#include <glib.h>
#include <stdint.h>

#include "cpctl-describe.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static const char * const names[] = { "kv.v1.KVService", "hosttest.v1.EchoService", "S", "" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GString) out = g_string_new (NULL);
      gboolean malformed = FALSE;

      if (cpctl_describe_service (data, size, names[i], out, &malformed))
        {
          g_assert_false (malformed);
          g_assert_true (g_str_has_prefix (out->str, "service "));
          g_assert_true (g_str_has_suffix (out->str, "}\n"));
          g_assert_true (g_utf8_validate (out->str, -1, NULL));
        }
      else
        g_assert_cmpuint (out->len, ==, 0);
    }
  return 0;
}
