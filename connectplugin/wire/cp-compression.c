/* cp-compression.c: Connect compression (identity, gzip)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>

#include "cp-compression.h"
#include "cp-error.h"

#define CONVERT_CHUNK (16 * 1024)
/* Hard cap on decompressed output when no (or a huge) limit is given: the
 * output lives in a GByteArray, and envelopes carry at most 4 GiB anyway. */
#define MAX_DECOMPRESSED ((gsize) G_MAXINT32)

/**
 * cp_compression_to_string:
 * @compression: a #CpCompression
 *
 * Gets the name of @compression as used in `Content-Encoding` and
 * `Connect-Content-Encoding`.
 *
 * Returns: (transfer none): `identity` or `gzip`
 */
const char *
cp_compression_to_string (CpCompression compression)
{
  switch (compression)
    {
    case CP_COMPRESSION_GZIP:
      return "gzip";
    case CP_COMPRESSION_IDENTITY:
    default:
      return "identity";
    }
}

/**
 * cp_compression_from_string:
 * @name: (nullable): an encoding name from a header
 * @out_compression: (out) (optional): return location for the compression
 *
 * Looks up a compression by its name. %NULL and the empty string mean
 * `identity`, as an absent or empty header does. Names are matched
 * case-insensitively.
 *
 * Returns: %TRUE if @name is supported
 */
gboolean
cp_compression_from_string (const char    *name,
                            CpCompression *out_compression)
{
  CpCompression compression;

  if (name == NULL || *name == '\0' || g_ascii_strcasecmp (name, "identity") == 0)
    compression = CP_COMPRESSION_IDENTITY;
  else if (g_ascii_strcasecmp (name, "gzip") == 0)
    compression = CP_COMPRESSION_GZIP;
  else
    return FALSE;

  if (out_compression != NULL)
    *out_compression = compression;
  return TRUE;
}

/**
 * cp_compress:
 * @compression: a #CpCompression
 * @data: the bytes to compress
 * @error: return location for a #GError
 *
 * Compresses @data. Each call produces an independent stream (a gzip
 * member for %CP_COMPRESSION_GZIP); %CP_COMPRESSION_IDENTITY returns @data.
 *
 * Returns: (transfer full): the compressed bytes, or %NULL on error
 */
GBytes *
cp_compress (CpCompression   compression,
             GBytes         *data,
             GError        **error)
{
  g_autoptr(GZlibCompressor) compressor = NULL;
  g_autoptr(GByteArray) out = NULL;
  const guint8 *in;
  gsize in_len, in_pos = 0;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (compression != CP_COMPRESSION_GZIP)
    return g_bytes_ref (data);

  in = g_bytes_get_data (data, &in_len);
  compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, -1);
  out = g_byte_array_sized_new (MIN (in_len / 2 + 64, CONVERT_CHUNK));

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      GConverterResult res;
      gsize bytes_read = 0, bytes_written = 0;
      guint old_len = out->len;

      g_byte_array_set_size (out, old_len + CONVERT_CHUNK);
      res = g_converter_convert (G_CONVERTER (compressor),
                                 in + in_pos, in_len - in_pos,
                                 out->data + old_len, CONVERT_CHUNK,
                                 G_CONVERTER_INPUT_AT_END,
                                 &bytes_read, &bytes_written, &local_error);
      g_byte_array_set_size (out, old_len + bytes_written);
      in_pos += bytes_read;

      if (res == G_CONVERTER_ERROR)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "gzip compression failed: %s", local_error->message);
          return NULL;
        }
      if (res == G_CONVERTER_FINISHED)
        break;
    }

  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static gboolean
check_limit (gsize    size,
             gsize    max_size,
             GError **error)
{
  if (max_size > 0 && size > max_size)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                   "message is larger than configured max %" G_GSIZE_FORMAT " bytes",
                   max_size);
      return FALSE;
    }
  return TRUE;
}

/**
 * cp_decompress:
 * @compression: a #CpCompression
 * @data: the received bytes
 * @max_size: the largest decompressed size accepted, 0 for no limit
 * @error: return location for a #GError
 *
 * Decompresses @data, stopping as soon as the output would exceed
 * @max_size (so a small "compression bomb" never inflates in memory).
 * Whatever @max_size, gzip output is capped at 2 GiB.
 * Empty input gives empty output and is never decompressed.
 *
 * Errors: %CP_ERROR_RESOURCE_EXHAUSTED when the output is larger than
 * @max_size; %CP_ERROR_INVALID_ARGUMENT when @data is corrupt, truncated, or
 * followed by trailing bytes that are not another gzip member.
 *
 * Returns: (transfer full): the decompressed bytes, or %NULL on error
 */
GBytes *
cp_decompress (CpCompression   compression,
               GBytes         *data,
               gsize           max_size,
               GError        **error)
{
  g_autoptr(GZlibDecompressor) decompressor = NULL;
  g_autoptr(GByteArray) out = NULL;
  const guint8 *in;
  gsize in_len, in_pos = 0;
  gsize limit;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  in = g_bytes_get_data (data, &in_len);

  if (compression != CP_COMPRESSION_GZIP)
    {
      if (!check_limit (in_len, max_size, error))
        return NULL;
      return g_bytes_ref (data);
    }

  if (in_len == 0)
    return g_bytes_new (NULL, 0);

  if (max_size == 0 || max_size > MAX_DECOMPRESSED)
    max_size = MAX_DECOMPRESSED;
  /* Producing max_size + 1 bytes is enough to know the message is too big. */
  limit = max_size + 1;

  decompressor = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  out = g_byte_array_new ();

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      GConverterResult res;
      gsize bytes_read = 0, bytes_written = 0;
      guint old_len = out->len;
      gsize room = MIN ((gsize) CONVERT_CHUNK, limit - out->len);

      g_byte_array_set_size (out, old_len + room);
      res = g_converter_convert (G_CONVERTER (decompressor),
                                 in + in_pos, in_len - in_pos,
                                 out->data + old_len, room,
                                 G_CONVERTER_INPUT_AT_END,
                                 &bytes_read, &bytes_written, &local_error);
      g_byte_array_set_size (out, old_len + bytes_written);
      in_pos += bytes_read;

      if (!check_limit (out->len, max_size, error))
        return NULL;

      if (res == G_CONVERTER_ERROR)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "invalid gzip data: %s", local_error->message);
          return NULL;
        }

      if (res == G_CONVERTER_FINISHED)
        {
          if (in_pos >= in_len)
            break;
          /* More input after the end of a member: like Go's gzip.Reader,
           * read it as the next member; garbage fails the header check. */
          g_converter_reset (G_CONVERTER (decompressor));
          continue;
        }

      if (bytes_read == 0 && bytes_written == 0)
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                               "invalid gzip data: truncated");
          return NULL;
        }
    }

  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}
