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

/* zlib allocates ~270 KiB of state per deflate stream (and a window per
 * inflate stream): one converter per message costs more than the
 * compression. Each thread keeps one of each and resets it before use
 * (deflateReset/inflateReset keep the buffers). cp_compress() and
 * cp_decompress() never call out while a converter is in use, so one per
 * thread is enough. */
static GPrivate cached_compressor = G_PRIVATE_INIT (g_object_unref);
static GPrivate cached_decompressor = G_PRIVATE_INIT (g_object_unref);

static GConverter *
take_converter (GPrivate *cache,
                gboolean  compress)
{
  GConverter *converter = g_private_get (cache);

  if (converter != NULL)
    {
      g_private_set (cache, NULL);
      g_converter_reset (converter);
      return converter;
    }
  if (compress)
    return G_CONVERTER (g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, -1));
  return G_CONVERTER (g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP));
}

/* Gives @converter back to the thread's cache (or drops it if the cache
 * was refilled meanwhile). */
static void
return_converter (GPrivate   *cache,
                  GConverter *converter)
{
  if (g_private_get (cache) == NULL)
    g_private_set (cache, converter);
  else
    g_object_unref (converter);
}

/**
 * cp_compression_to_string:
 * @compression: a [enum@ConnectPlugin.Compression]
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
 * @compression: a [enum@ConnectPlugin.Compression]
 * @data: the bytes to compress
 * @error: return location for a [struct@GLib.Error]
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
  g_autoptr(GConverter) compressor = NULL;
  g_autoptr(GByteArray) out = NULL;
  guint8 scratch[CONVERT_CHUNK];
  const guint8 *in;
  gsize in_len, in_pos = 0;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (compression != CP_COMPRESSION_GZIP)
    return g_bytes_ref (data);

  in = g_bytes_get_data (data, &in_len);
  /* Empty GBytes may have NULL data, and NULL + 0 is undefined. */
  if (in == NULL)
    in = (const guint8 *) "";
  compressor = take_converter (&cached_compressor, TRUE);

  /* Output goes to a scratch buffer first: small messages (the common
   * case) end up in one exactly sized allocation. */
  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      GConverterResult res;
      gsize bytes_read = 0, bytes_written = 0;

      res = g_converter_convert (compressor,
                                 in + in_pos, in_len - in_pos,
                                 scratch, sizeof scratch,
                                 G_CONVERTER_INPUT_AT_END,
                                 &bytes_read, &bytes_written, &local_error);
      in_pos += bytes_read;

      if (res == G_CONVERTER_ERROR)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "gzip compression failed: %s", local_error->message);
          return NULL;
        }
      if (res == G_CONVERTER_FINISHED && out == NULL)
        {
          return_converter (&cached_compressor, g_steal_pointer (&compressor));
          return g_bytes_new (scratch, bytes_written);
        }
      if (out == NULL)
        out = g_byte_array_sized_new (MIN (in_len / 2 + 64, 4 * CONVERT_CHUNK));
      g_byte_array_append (out, scratch, bytes_written);
      if (res == G_CONVERTER_FINISHED)
        break;
    }

  return_converter (&cached_compressor, g_steal_pointer (&compressor));
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
 * @compression: a [enum@ConnectPlugin.Compression]
 * @data: the received bytes
 * @max_size: the largest decompressed size accepted, 0 for no limit
 * @error: return location for a [struct@GLib.Error]
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
  g_autoptr(GConverter) decompressor = NULL;
  g_autoptr(GByteArray) out = NULL;
  guint8 scratch[CONVERT_CHUNK];
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

  decompressor = take_converter (&cached_decompressor, FALSE);

  /* Output goes to a scratch buffer first: a small message ends up in one
   * exactly sized allocation; larger ones accumulate in @out. */
  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      GConverterResult res;
      gsize bytes_read = 0, bytes_written = 0;
      gsize total = out != NULL ? out->len : 0;
      gsize room = MIN (sizeof scratch, limit - total);

      res = g_converter_convert (decompressor,
                                 in + in_pos, in_len - in_pos,
                                 scratch, room,
                                 G_CONVERTER_INPUT_AT_END,
                                 &bytes_read, &bytes_written, &local_error);
      in_pos += bytes_read;

      if (!check_limit (total + bytes_written, max_size, error))
        return NULL;

      if (res == G_CONVERTER_FINISHED && out == NULL && in_pos >= in_len)
        {
          return_converter (&cached_decompressor, g_steal_pointer (&decompressor));
          return g_bytes_new (scratch, bytes_written);
        }
      if (bytes_written > 0)
        {
          if (out == NULL)
            out = g_byte_array_sized_new (MIN (limit, 4 * sizeof scratch));
          g_byte_array_append (out, scratch, bytes_written);
        }

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
          g_converter_reset (decompressor);
          continue;
        }

      if (bytes_read == 0 && bytes_written == 0)
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                               "invalid gzip data: truncated");
          return NULL;
        }
    }

  return_converter (&cached_decompressor, g_steal_pointer (&decompressor));
  if (out == NULL)
    return g_bytes_new (NULL, 0);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}
