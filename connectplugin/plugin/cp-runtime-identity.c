/* cp-runtime-identity.c: ids and tokens of the plugin system
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-runtime-identity-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>

gboolean
cp_random_bytes (guint8  *buf,
                 gsize    len,
                 GError **error)
{
  gsize done = 0;
  int fd;

  fd = open ("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "cannot open /dev/urandom: %s", g_strerror (saved));
      return FALSE;
    }

  while (done < len)
    {
      ssize_t n = read (fd, buf + done, len - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int saved = n < 0 ? errno : EIO;
          close (fd);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "cannot read /dev/urandom: %s", g_strerror (saved));
          return FALSE;
        }
      done += (gsize) n;
    }
  close (fd);
  return TRUE;
}

/* Random bytes or abort: a plugin system that cannot make secrets must not
 * fall back to guessable ones. */
static void
random_bytes_or_die (guint8 *buf,
                     gsize   len)
{
  g_autoptr(GError) error = NULL;

  if (!cp_random_bytes (buf, len, &error))
    g_error ("connectplugin: %s", error->message);
}

char *
cp_generate_token (gsize n_bytes)
{
  g_autofree guint8 *buf = g_malloc (MAX (n_bytes, 1));
  char *token;

  random_bytes_or_die (buf, n_bytes);
  token = g_base64_encode (buf, n_bytes);
  g_strdelimit (token, "+", '-');
  g_strdelimit (token, "/", '_');
  explicit_bzero (buf, n_bytes);
  return token;
}

char *
cp_generate_runtime_id (const char *self_id)
{
  g_autofree char *lower = g_ascii_strdown (self_id, -1);
  guint8 suffix[2];

  random_bytes_or_die (suffix, sizeof suffix);
  return g_strdup_printf ("%s-%02x%02x", lower, suffix[0], suffix[1]);
}

char *
cp_generate_registration_id (void)
{
  guint8 bytes[8];
  GString *id = g_string_new ("reg-");

  random_bytes_or_die (bytes, sizeof bytes);
  for (gsize i = 0; i < sizeof bytes; i++)
    g_string_append_printf (id, "%02x", bytes[i]);
  return g_string_free (id, FALSE);
}

gboolean
cp_self_id_is_valid (const char *self_id)
{
  gsize len;

  if (self_id == NULL)
    return FALSE;
  len = strlen (self_id);
  if (len < 1 || len > 128 || !g_ascii_isalpha (self_id[0]))
    return FALSE;
  for (gsize i = 1; i < len; i++)
    {
      char c = self_id[i];

      if (!g_ascii_isalnum (c) && c != '_' && c != '.' && c != '-')
        return FALSE;
    }
  return TRUE;
}
