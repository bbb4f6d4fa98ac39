/* cp-secret.c: comparing secrets without leaking them through timing
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-secret-private.h"

gboolean
cp_secret_equal (const guint8 *a,
                 const guint8 *b,
                 gsize         len)
{
  guint64 diff = 0;
  volatile guint64 result;
  gsize i = 0;

  /* Eight bytes at a time (a token set compares 32-byte digests by the
   * hundred), every byte always, the differences only ORed together. */
  for (; i + 8 <= len; i += 8)
    {
      guint64 x, y;

      memcpy (&x, a + i, 8);
      memcpy (&y, b + i, 8);
      diff |= x ^ y;
    }
  for (; i < len; i++)
    diff |= (guint64) (a[i] ^ b[i]);
  /* Tested through a volatile, once, at the end. */
  result = diff;
  return result == 0;
}

gboolean
cp_token_equal (const char *a,
                const char *b)
{
  gsize la, lb;
  volatile guint8 diff;

  if (a == NULL || b == NULL)
    return FALSE;
  la = strlen (a);
  lb = strlen (b);
  diff = la != lb;
  for (gsize i = 0; i < lb; i++)
    diff |= (guint8) (b[i] ^ (i < la ? a[i] : 0));
  return diff == 0;
}
