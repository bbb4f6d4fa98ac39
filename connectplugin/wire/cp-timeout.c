/* cp-timeout.c: Connect-Timeout-Ms
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-timeout-private.h"
#include "cp-error.h"

#define MAX_TIMEOUT_DIGITS 10
#define MAX_TIMEOUT_MS G_GINT64_CONSTANT (9999999999)

gboolean
cp_timeout_parse (const char *value,
                  gint64     *out_ms,
                  GError    **error)
{
  gint64 ms = 0;
  gsize n = 0;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (value != NULL)
    {
      for (; value[n] != '\0' && n <= MAX_TIMEOUT_DIGITS; n++)
        {
          if (!g_ascii_isdigit (value[n]))
            break;
          ms = ms * 10 + (value[n] - '0');
        }
    }

  /* 1-10 digits and nothing else; 10 digits cannot overflow a gint64. */
  if (value == NULL || n == 0 || n > MAX_TIMEOUT_DIGITS || value[n] != '\0')
    {
      /* Echo the value only when it is short, printable text. */
      gboolean show = value != NULL && strlen (value) <= 32 && g_str_is_ascii (value);

      for (gsize i = 0; show && value[i] != '\0'; i++)
        show = g_ascii_isprint (value[i]);
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "protocol error: invalid timeout %s%s%s: expected 1 to %d digits",
                   show ? "\"" : "", show ? value : "value",
                   show ? "\"" : "", MAX_TIMEOUT_DIGITS);
      return FALSE;
    }

  if (out_ms != NULL)
    *out_ms = ms;
  return TRUE;
}

char *
cp_timeout_format (gint64 ms)
{
  if (ms > MAX_TIMEOUT_MS)
    return NULL;
  /* An already expired deadline is sent as 0 (callers normally fail
   * locally instead of sending). */
  return g_strdup_printf ("%" G_GINT64_FORMAT, MAX (ms, 0));
}
