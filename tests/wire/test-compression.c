/* test-compression.c: identity and gzip, with bounded decompression
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gio/gio.h>

#include "cp-compression.h"
#include "cp-error.h"

static GBytes *
pattern_bytes (gsize len)
{
  guint8 *data = g_malloc (len ? len : 1);

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) ((i * 7) ^ (i >> 5));
  return g_bytes_new_take (data, len);
}

static GBytes *
gzip (GBytes *data)
{
  g_autoptr(GError) error = NULL;
  GBytes *out = cp_compress (CP_COMPRESSION_GZIP, data, &error);

  g_assert_no_error (error);
  g_assert_nonnull (out);
  return out;
}

static void
test_names (void)
{
  CpCompression c = 99;

  g_assert_cmpstr (cp_compression_to_string (CP_COMPRESSION_IDENTITY), ==, "identity");
  g_assert_cmpstr (cp_compression_to_string (CP_COMPRESSION_GZIP), ==, "gzip");

  g_assert_true (cp_compression_from_string ("gzip", &c));
  g_assert_cmpint (c, ==, CP_COMPRESSION_GZIP);
  g_assert_true (cp_compression_from_string ("identity", &c));
  g_assert_cmpint (c, ==, CP_COMPRESSION_IDENTITY);
  c = 99;
  g_assert_true (cp_compression_from_string ("", &c));
  g_assert_cmpint (c, ==, CP_COMPRESSION_IDENTITY);
  c = 99;
  g_assert_true (cp_compression_from_string (NULL, &c));
  g_assert_cmpint (c, ==, CP_COMPRESSION_IDENTITY);
  g_assert_false (cp_compression_from_string ("br", NULL));
  g_assert_false (cp_compression_from_string ("deflate", NULL));
  g_assert_false (cp_compression_from_string ("foo", NULL));
}

static void
test_round_trip (void)
{
  static const gsize sizes[] = { 1, 5, 100, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 300000 };

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autoptr(GBytes) data = pattern_bytes (sizes[i]);
      g_autoptr(GBytes) compressed = gzip (data);
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) back = NULL;
      const guint8 *c = g_bytes_get_data (compressed, NULL);

      /* A gzip member (RFC 1952): magic 1f 8b, method 8. */
      g_assert_cmpuint (g_bytes_get_size (compressed), >=, 18);
      g_assert_cmpuint (c[0], ==, 0x1f);
      g_assert_cmpuint (c[1], ==, 0x8b);
      g_assert_cmpuint (c[2], ==, 8);

      back = cp_decompress (CP_COMPRESSION_GZIP, compressed, 0, &error);
      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (back, data));
    }
}

static void
test_interop_zlib (void)
{
  /* Compressed by GIO independently, decompressed by us, and the reverse. */
  g_autoptr(GBytes) data = g_bytes_new_static ("hello hello hello hello", 23);
  g_autoptr(GZlibDecompressor) dec = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr(GBytes) compressed = gzip (data);
  guint8 out[64];
  gsize read = 0, written = 0;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_converter_convert (G_CONVERTER (dec),
                                        g_bytes_get_data (compressed, NULL), g_bytes_get_size (compressed),
                                        out, sizeof out, G_CONVERTER_INPUT_AT_END,
                                        &read, &written, &error), ==, G_CONVERTER_FINISHED);
  g_assert_no_error (error);
  g_assert_cmpmem (out, written, "hello hello hello hello", 23);
}

static void
test_identity (void)
{
  g_autoptr(GBytes) data = pattern_bytes (100);
  g_autoptr(GBytes) same = cp_compress (CP_COMPRESSION_IDENTITY, data, NULL);
  g_autoptr(GBytes) back = cp_decompress (CP_COMPRESSION_IDENTITY, data, 100, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) too_big = cp_decompress (CP_COMPRESSION_IDENTITY, data, 99, &error);

  g_assert_true (g_bytes_equal (same, data));
  g_assert_true (g_bytes_equal (back, data));
  g_assert_null (too_big);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
}

static void
test_bomb (void)
{
  gsize big = 10 * 1024 * 1024;
  g_autoptr(GBytes) zeros = g_bytes_new_take (g_malloc0 (big), big);
  g_autoptr(GBytes) bomb = gzip (zeros);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = NULL;

  /* ~10 KiB of input that would inflate to 10 MiB. */
  g_assert_cmpuint (g_bytes_get_size (bomb), <, 64 * 1024);
  out = cp_decompress (CP_COMPRESSION_GZIP, bomb, 1024 * 1024, &error);
  g_assert_null (out);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
}

static void
test_exact_limit (void)
{
  g_autoptr(GBytes) data = pattern_bytes (100000);
  g_autoptr(GBytes) compressed = gzip (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) exact = cp_decompress (CP_COMPRESSION_GZIP, compressed, 100000, &error);
  g_autoptr(GBytes) over = NULL;

  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (exact, data));

  over = cp_decompress (CP_COMPRESSION_GZIP, compressed, 99999, &error);
  g_assert_null (over);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
}

static void
test_corrupt (void)
{
  g_autoptr(GBytes) data = pattern_bytes (5000);
  g_autoptr(GBytes) compressed = gzip (data);
  gsize len = g_bytes_get_size (compressed);
  g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (compressed, NULL), len);
  g_autoptr(GBytes) not_gzip = g_bytes_new_static ("definitely not gzip", 19);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GBytes) corrupt = NULL;

  out = cp_decompress (CP_COMPRESSION_GZIP, not_gzip, 0, &error);
  g_assert_null (out);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Damage the CRC32 in the trailer. */
  copy[len - 6] ^= 0xff;
  corrupt = g_bytes_new (copy, len);
  out = cp_decompress (CP_COMPRESSION_GZIP, corrupt, 0, &error);
  g_assert_null (out);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
}

static void
test_truncated (void)
{
  g_autoptr(GBytes) data = pattern_bytes (5000);
  g_autoptr(GBytes) compressed = gzip (data);
  gsize len = g_bytes_get_size (compressed);

  for (gsize cut = 1; cut < len; cut += (cut < 40 || cut > len - 40) ? 1 : 97)
    {
      g_autoptr(GBytes) part = g_bytes_new_from_bytes (compressed, 0, cut);
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) out = cp_decompress (CP_COMPRESSION_GZIP, part, 0, &error);

      g_assert_null (out);
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_empty (void)
{
  g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = cp_decompress (CP_COMPRESSION_GZIP, empty, 10, &error);
  g_autoptr(GBytes) compressed = gzip (empty);
  g_autoptr(GBytes) back = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (out);
  g_assert_cmpuint (g_bytes_get_size (out), ==, 0);

  /* Compressing nothing still makes a valid (non-empty) gzip member. */
  g_assert_cmpuint (g_bytes_get_size (compressed), >, 0);
  back = cp_decompress (CP_COMPRESSION_GZIP, compressed, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (back), ==, 0);
}

static void
test_trailing_garbage (void)
{
  g_autoptr(GBytes) data = g_bytes_new_static ("payload", 7);
  g_autoptr(GBytes) compressed = gzip (data);
  g_autoptr(GByteArray) with_garbage = g_byte_array_new ();
  g_autoptr(GByteArray) two_members = g_byte_array_new ();
  g_autoptr(GBytes) garbage_bytes = NULL;
  g_autoptr(GBytes) members_bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = NULL;

  g_byte_array_append (with_garbage, g_bytes_get_data (compressed, NULL), g_bytes_get_size (compressed));
  g_byte_array_append (with_garbage, (const guint8 *) "xyz", 3);
  garbage_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&with_garbage));
  out = cp_decompress (CP_COMPRESSION_GZIP, garbage_bytes, 0, &error);
  g_assert_null (out);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Concatenated members are one gzip stream (RFC 1952 §2.2). */
  g_byte_array_append (two_members, g_bytes_get_data (compressed, NULL), g_bytes_get_size (compressed));
  g_byte_array_append (two_members, g_bytes_get_data (compressed, NULL), g_bytes_get_size (compressed));
  members_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&two_members));
  out = cp_decompress (CP_COMPRESSION_GZIP, members_bytes, 14, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), "payloadpayload", 14);
  g_clear_pointer (&out, g_bytes_unref);

  out = cp_decompress (CP_COMPRESSION_GZIP, members_bytes, 13, &error);
  g_assert_null (out);
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/compression/names", test_names);
  g_test_add_func ("/wire/compression/round-trip", test_round_trip);
  g_test_add_func ("/wire/compression/interop-zlib", test_interop_zlib);
  g_test_add_func ("/wire/compression/identity", test_identity);
  g_test_add_func ("/wire/compression/bomb", test_bomb);
  g_test_add_func ("/wire/compression/exact-limit", test_exact_limit);
  g_test_add_func ("/wire/compression/corrupt", test_corrupt);
  g_test_add_func ("/wire/compression/truncated", test_truncated);
  g_test_add_func ("/wire/compression/empty", test_empty);
  g_test_add_func ("/wire/compression/trailing-garbage", test_trailing_garbage);

  return g_test_run ();
}
