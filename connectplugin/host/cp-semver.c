/* cp-semver.c: semantic versions, as the platform compares them
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connect-plugin-go compares min_version as strings ("10.0.0" < "9.0.0");
 * the registry, the capability broker and the dependency graph use this
 * instead.
 */
#include "cp-semver-private.h"

#include <string.h>

#define MAX_VERSION_LEN 64

typedef struct {
  guint64 n[3];
  const char *pre;              /* after '-', or NULL */
} Version;

static gboolean
parse_number (const char **p,
              guint64     *out)
{
  const char *s = *p;
  guint64 v = 0;

  if (!g_ascii_isdigit (*s))
    return FALSE;
  while (g_ascii_isdigit (*s))
    {
      if (v > (G_MAXUINT64 - 9) / 10)
        return FALSE;
      v = v * 10 + (guint64) (*s - '0');
      s++;
    }
  *p = s;
  *out = v;
  return TRUE;
}

static gboolean
parse (const char *version,
       Version    *v)
{
  const char *p = version;

  if (version == NULL || strlen (version) > MAX_VERSION_LEN)
    return FALSE;
  for (guint i = 0; i < 3; i++)
    {
      if (!parse_number (&p, &v->n[i]))
        return FALSE;
      if (i < 2 && *p++ != '.')
        return FALSE;
    }
  v->pre = NULL;
  if (*p == '\0')
    return TRUE;
  if (*p != '-' || p[1] == '\0')
    return FALSE;
  v->pre = ++p;
  for (; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-')
      return FALSE;
  return TRUE;
}

gboolean
cp_semver_is_valid (const char *version)
{
  Version v;

  return parse (version, &v);
}

static gboolean
all_digits (const char *s,
            gsize       len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (s[i]))
      return FALSE;
  return TRUE;
}

static int
compare_prerelease (const char *a,
                    const char *b)
{
  while (TRUE)
    {
      gsize la = strcspn (a, "."), lb = strcspn (b, ".");
      gboolean na = all_digits (a, la), nb = all_digits (b, lb);
      int c;

      if (na && nb)
        {
          /* Numerically: a longer number (without leading zeros) is larger. */
          while (la > 1 && *a == '0')
            a++, la--;
          while (lb > 1 && *b == '0')
            b++, lb--;
          c = la != lb ? (la < lb ? -1 : 1) : memcmp (a, b, la);
        }
      else if (na != nb)
        c = na ? -1 : 1;
      else
        {
          c = memcmp (a, b, MIN (la, lb));
          if (c == 0 && la != lb)
            c = la < lb ? -1 : 1;
        }
      if (c != 0)
        return c < 0 ? -1 : 1;
      a += la;
      b += lb;
      if (*a == '\0' || *b == '\0')
        return *a == *b ? 0 : (*a == '\0' ? -1 : 1);
      a++;
      b++;
    }
}

int
cp_semver_compare (const char *a,
                   const char *b)
{
  Version va, vb;
  gboolean ok_a = parse (a, &va), ok_b = parse (b, &vb);

  if (!ok_a || !ok_b)
    return ok_a == ok_b ? 0 : (ok_a ? 1 : -1);
  for (guint i = 0; i < 3; i++)
    if (va.n[i] != vb.n[i])
      return va.n[i] < vb.n[i] ? -1 : 1;
  if (va.pre == NULL || vb.pre == NULL)
    return va.pre == vb.pre ? 0 : (va.pre == NULL ? 1 : -1);
  return compare_prerelease (va.pre, vb.pre);
}

gboolean
cp_semver_at_least (const char *version,
                    const char *min_version)
{
  if (min_version == NULL || min_version[0] == '\0')
    return TRUE;
  return cp_semver_is_valid (version) && cp_semver_compare (version, min_version) >= 0;
}
