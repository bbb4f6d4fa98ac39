/* fuzz-plugin-output.c: a launched plugin's output lines, as the host reads them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Any line (bytes of another process, up to the first NUL as the host
 * sees it) must come out of cp_process_parse_glib_line () as a plain line
 * (level 0, no domain, the whole line as text) or as one of GLib's six
 * levels with the text a suffix of the line that follows a time stamp,
 * and a non-empty domain that the line starts with (after the "(PRGNAME:PID): "
 * prefix, if any) followed by '-'.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

#include "cp-process-discovery-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *line = size > 0 ? g_strndup ((const char *) data, size) : g_strdup ("");
  g_autofree char *domain = NULL;
  const char *text = NULL;
  GLogLevelFlags level = cp_process_parse_glib_line (line, &domain, &text);
  gsize len = strlen (line);
  gsize text_at;

  g_assert_nonnull (text);
  if (level == 0)
    {
      g_assert_null (domain);
      g_assert_true (text == line);
      return 0;
    }

  g_assert_true (level == G_LOG_LEVEL_ERROR || level == G_LOG_LEVEL_CRITICAL ||
                 level == G_LOG_LEVEL_WARNING || level == G_LOG_LEVEL_MESSAGE ||
                 level == G_LOG_LEVEL_INFO || level == G_LOG_LEVEL_DEBUG);
  /* The text is the end of the line, after "HH:MM:SS.mmm: ". */
  g_assert_true (text >= line + strlen ("X: 00:00:00.000: ") && text <= line + len);
  text_at = (gsize) (text - line);
  g_assert_cmpstr (text, ==, line + text_at);
  g_assert_true (memcmp (text - 2, ": ", 2) == 0 && text[-6] == '.' && text[-9] == ':');

  if (domain == NULL)
    g_assert_true (g_str_has_prefix (line, "** "));
  else
    {
      g_autofree char *dashed = g_strconcat (domain, "-", NULL);
      const char *in_line = strstr (line, dashed);

      g_assert_false (g_str_has_prefix (line, "** "));
      g_assert_cmpuint (strlen (domain), >, 0);
      g_assert_nonnull (in_line);
      g_assert_true (in_line == line || g_str_has_prefix (line, "("));
      g_assert_true (in_line + strlen (dashed) < text);
    }
  return 0;
}
