/* cp-metadata.c: Connect metadata (headers, -bin values, reserved names)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-metadata.h"
#include "cp-metadata-private.h"
#include "cp-error.h"
#include "cp-base64-private.h"

static const char * const reserved_names[] = {
  "content-type",
  "content-length",
  "content-encoding",
  "accept-encoding",
  "transfer-encoding",
  "connection",
  "host",
  "user-agent",
  "trailer",
  "te",
  "date",
  "keep-alive",
};

/**
 * cp_metadata_is_reserved:
 * @name: a header name
 *
 * Checks whether @name is a protocol header that applications must not set
 * as metadata: HTTP framing headers (`Content-Type`, `Content-Length`,
 * `Content-Encoding`, `Accept-Encoding`, `Transfer-Encoding`, `Connection`,
 * `Host`, `User-Agent`, `Trailer`, `TE`, `Date`, `Keep-Alive`) and every
 * `Connect-*` and `Grpc-*` header. The comparison ignores case.
 *
 * Returns: %TRUE if @name is reserved
 */
gboolean
cp_metadata_is_reserved (const char *name)
{
  g_return_val_if_fail (name != NULL, FALSE);

  if (g_ascii_strncasecmp (name, "connect-", strlen ("connect-")) == 0 ||
      g_ascii_strncasecmp (name, "grpc-", strlen ("grpc-")) == 0)
    return TRUE;

  for (gsize i = 0; i < G_N_ELEMENTS (reserved_names); i++)
    {
      if (g_ascii_strcasecmp (name, reserved_names[i]) == 0)
        return TRUE;
    }

  return FALSE;
}

/**
 * cp_metadata_is_binary_key:
 * @name: a header name
 *
 * Checks whether @name denotes binary metadata: a name ending in `-bin`
 * (any case), whose values are base64.
 *
 * Returns: %TRUE if values of @name are base64-encoded bytes
 */
gboolean
cp_metadata_is_binary_key (const char *name)
{
  gsize len;

  g_return_val_if_fail (name != NULL, FALSE);

  len = strlen (name);
  return len >= 4 && g_ascii_strcasecmp (name + len - 4, "-bin") == 0;
}

/**
 * cp_metadata_append_binary:
 * @headers: a [struct@Soup.MessageHeaders]
 * @name: a binary header name (ending in `-bin`)
 * @value: the bytes to send
 *
 * Appends @value to @headers as unpadded standard base64.
 */
void
cp_metadata_append_binary (SoupMessageHeaders *headers,
                           const char         *name,
                           GBytes             *value)
{
  g_autofree char *text = NULL;
  const guint8 *data;
  gsize len;

  g_return_if_fail (headers != NULL);
  g_return_if_fail (name != NULL);
  g_return_if_fail (value != NULL);

  data = g_bytes_get_data (value, &len);
  text = cp_base64_encode_unpadded (data, len);
  soup_message_headers_append (headers, name, text);
}

/* Splits every value of @name on ',' and trims spaces and tabs; empty
 * pieces are dropped. */
static GPtrArray *
split_values (SoupMessageHeaders *headers,
              const char         *name)
{
  GPtrArray *result = g_ptr_array_new_with_free_func (g_free);
  const char *list = soup_message_headers_get_list (headers, name);
  g_auto(GStrv) pieces = NULL;

  if (list == NULL)
    return result;

  pieces = g_strsplit (list, ",", -1);
  for (guint i = 0; pieces[i] != NULL; i++)
    {
      char *piece = pieces[i];
      gsize len;

      while (*piece == ' ' || *piece == '\t')
        piece++;
      len = strlen (piece);
      while (len > 0 && (piece[len - 1] == ' ' || piece[len - 1] == '\t'))
        len--;
      if (len > 0)
        g_ptr_array_add (result, g_strndup (piece, len));
    }

  return result;
}

/**
 * cp_metadata_get_binary:
 * @headers: a [struct@Soup.MessageHeaders]
 * @name: a binary header name (ending in `-bin`)
 * @error: return location for a [struct@GLib.Error]
 *
 * Decodes every value of the binary header @name: repeated headers and
 * comma-separated values give one element each; standard and URL-safe
 * base64, padded or not, are accepted.
 *
 * Returns: (transfer container) (element-type GBytes): the decoded values
 *   (empty when the header is absent), or %NULL with
 *   %CP_ERROR_INVALID_ARGUMENT when a value is not base64
 */
GPtrArray *
cp_metadata_get_binary (SoupMessageHeaders *headers,
                        const char         *name,
                        GError            **error)
{
  g_autoptr(GPtrArray) values = NULL;
  g_autoptr(GPtrArray) result = NULL;

  g_return_val_if_fail (headers != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  values = split_values (headers, name);
  result = g_ptr_array_new_full (values->len, (GDestroyNotify) g_bytes_unref);
  for (guint i = 0; i < values->len; i++)
    {
      g_autoptr(GError) local_error = NULL;
      GBytes *bytes = cp_base64_decode_liberal (g_ptr_array_index (values, i), -1, &local_error);

      if (bytes == NULL)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "header %s: %s", name, local_error->message);
          return NULL;
        }
      g_ptr_array_add (result, bytes);
    }

  return g_steal_pointer (&result);
}

/**
 * cp_metadata_get_values:
 * @headers: a [struct@Soup.MessageHeaders]
 * @name: a header name
 *
 * Gets all values of @name: repeated headers and comma-separated values
 * (`a, b`) give one element each, trimmed of spaces; empty values are
 * skipped.
 *
 * Returns: (transfer full) (array zero-terminated=1): the values, an empty
 *   array when the header is absent
 */
char **
cp_metadata_get_values (SoupMessageHeaders *headers,
                        const char         *name)
{
  GPtrArray *values;

  g_return_val_if_fail (headers != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  values = split_values (headers, name);
  g_ptr_array_set_free_func (values, NULL);
  g_ptr_array_add (values, NULL);
  return (char **) g_ptr_array_free (values, FALSE);
}

/**
 * cp_metadata_merge:
 * @dest: the headers to add to
 * @src: the headers to copy
 * @prefix: (nullable): a prefix for the copied names, such as `trailer-`
 *
 * Appends every header of @src that is not reserved (see
 * [func@ConnectPlugin.metadata_is_reserved]) to @dest, its name prefixed with @prefix when
 * given. This is how a server sends a unary RPC's trailers
 * (`trailer-` prefix) and an error's metadata.
 */
void
cp_metadata_merge (SoupMessageHeaders *dest,
                   SoupMessageHeaders *src,
                   const char         *prefix)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;

  g_return_if_fail (dest != NULL);
  g_return_if_fail (src != NULL);

  soup_message_headers_iter_init (&iter, src);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      g_autofree char *prefixed = NULL;

      if (cp_metadata_is_reserved (name))
        continue;

      if (prefix != NULL && *prefix != '\0')
        {
          prefixed = g_strconcat (prefix, name, NULL);
          soup_message_headers_append (dest, prefixed, value);
        }
      else
        soup_message_headers_append (dest, name, value);
    }
}

/**
 * cp_metadata_split_trailers:
 * @response: the headers of a unary response
 * @headers: (nullable): where to append the leading metadata
 * @trailers: (nullable): where to append the trailing metadata
 *
 * Separates a unary response's headers: each header whose name starts with
 * `trailer-` (any case) is appended to @trailers with that prefix removed;
 * every other header is appended to @headers.
 */
void
cp_metadata_split_trailers (SoupMessageHeaders *response,
                            SoupMessageHeaders *headers,
                            SoupMessageHeaders *trailers)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;
  const gsize prefix_len = strlen ("trailer-");

  g_return_if_fail (response != NULL);

  soup_message_headers_iter_init (&iter, response);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      if (g_ascii_strncasecmp (name, "trailer-", prefix_len) == 0 && name[prefix_len] != '\0')
        {
          if (trailers != NULL)
            soup_message_headers_append (trailers, name + prefix_len, value);
        }
      else if (headers != NULL)
        soup_message_headers_append (headers, name, value);
    }
}

gboolean
cp_metadata_is_valid_name (const char *name)
{
  if (name == NULL || *name == '\0')
    return FALSE;

  for (const char *p = name; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      if (g_ascii_isalnum (c))
        continue;
      if (strchr ("!#$%&'*+-.^_`|~", c) == NULL)
        return FALSE;
    }

  return TRUE;
}

gboolean
cp_metadata_is_valid_value (const char *value,
                            gssize      len)
{
  gsize n;

  if (value == NULL)
    return FALSE;

  n = len < 0 ? strlen (value) : (gsize) len;
  for (gsize i = 0; i < n; i++)
    {
      if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
        return FALSE;
    }

  return TRUE;
}
