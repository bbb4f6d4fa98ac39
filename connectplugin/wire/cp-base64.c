/* cp-base64.c: base64 as Connect and proto3 JSON use it (rules in
 * cp-base64-private.h), on top of GLib's g_base64_*()
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-base64-private.h"
#include "cp-error.h"

/* g_base64_encode() with its '=' padding removed and, when @url, the
 * URL-safe alphabet. */
static char *
encode (const guint8 *data,
        gsize         len,
        gboolean      url)
{
  char *text;
  gsize text_len;

  if (len == 0)
    return g_strdup ("");

  text = g_base64_encode (data, len);
  text_len = strlen (text);
  while (text_len > 0 && text[text_len - 1] == '=')
    text[--text_len] = '\0';
  if (url)
    for (char *p = text; *p; p++)
      {
        if (*p == '+')
          *p = '-';
        else if (*p == '/')
          *p = '_';
      }
  return text;
}

char *
cp_base64_encode_unpadded (const guint8 *data,
                           gsize         len)
{
  return encode (data, len, FALSE);
}

char *
cp_base64_url_encode_unpadded (const guint8 *data,
                               gsize         len)
{
  return encode (data, len, TRUE);
}

static inline char
to_standard (char c)
{
  return c == '-' ? '+' : c == '_' ? '/' : c;
}

gboolean
cp_base64_decode (const char  *text,
                  gsize        len,
                  guint8     **out_data,
                  gsize       *out_len,
                  GError     **error)
{
  g_autofree guchar *buf = NULL;
  char chunk[1024];  /* a multiple of four */
  gboolean standard = FALSE, url = FALSE;
  gsize n = len, full, decoded_len = 0;
  gint state = 0;
  guint save = 0;

  g_return_val_if_fail (text != NULL || len == 0, FALSE);
  g_return_val_if_fail (out_data != NULL && out_len != NULL, FALSE);

  *out_data = NULL;
  *out_len = 0;

  /* Padding completes the last group of four, so it is only there when the
   * length is a multiple of four, as one or two '='. */
  if (len % 4 == 0)
    for (guint pad = 0; pad < 2 && n > 0 && text[n - 1] == '='; pad++)
      n--;
  if (n % 4 == 1)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "invalid base64: bad length");
      return FALSE;
    }

  for (gsize i = 0; i < n; i++)
    {
      char c = text[i];

      if (g_ascii_isalnum (c))
        continue;
      if (c == '+' || c == '/')
        standard = TRUE;
      else if (c == '-' || c == '_')
        url = TRUE;
      else
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "invalid base64: unexpected character at offset %" G_GSIZE_FORMAT, i);
          return FALSE;
        }
    }
  if (standard && url)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "invalid base64: mixes the standard and URL-safe alphabets");
      return FALSE;
    }
  if (n == 0)
    return TRUE;

  /* GLib decodes the standard alphabet (skipping what it does not know)
   * in groups of four; the checked text goes in as it is when it is
   * standard, else translated a chunk at a time, and its last, short
   * group padded. */
  buf = g_malloc (n / 4 * 3 + 3);
  full = n - n % 4;
  if (!url)
    decoded_len = g_base64_decode_step (text, full, buf, &state, &save);
  else
    for (gsize off = 0; off < full; off += sizeof chunk)
      {
        gsize m = MIN (sizeof chunk, full - off);

        for (gsize i = 0; i < m; i++)
          chunk[i] = to_standard (text[off + i]);
        decoded_len += g_base64_decode_step (chunk, m, buf + decoded_len, &state, &save);
      }
  if (full < n)
    {
      char tail[4] = { '=', '=', '=', '=' };

      for (gsize i = full; i < n; i++)
        tail[i - full] = to_standard (text[i]);
      decoded_len += g_base64_decode_step (tail, sizeof tail, buf + decoded_len, &state, &save);
    }

  *out_data = g_steal_pointer (&buf);
  *out_len = decoded_len;
  return TRUE;
}

GBytes *
cp_base64_decode_liberal (const char *text,
                          gssize      len,
                          GError    **error)
{
  guint8 *data;
  gsize data_len;

  g_return_val_if_fail (text != NULL || len == 0, NULL);

  if (!cp_base64_decode (text, len < 0 ? strlen (text) : (gsize) len, &data, &data_len, error))
    return NULL;
  return g_bytes_new_take (data, data_len);
}
