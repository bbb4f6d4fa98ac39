/* test-base64.c: base64 as Connect and proto3 JSON use it (cp-base64.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-base64-private.h"
#include "cp-error.h"

/* Connect sends binary metadata and error detail values without padding,
 * in the standard alphabet; GET messages URL-safe without padding. */
static void
test_encode_unpadded (void)
{
  static const struct { const char *bytes; gsize len; const char *std; const char *url; } cases[] = {
    { "", 0, "", "" },
    { "\x00", 1, "AA", "AA" },
    { "\x00\x01", 2, "AAE", "AAE" },
    { "\x00\x01\x02", 3, "AAEC", "AAEC" },
    { "\x00\x01\x02\x03", 4, "AAECAw", "AAECAw" },
    { "\xfb\xff", 2, "+/8", "-_8" },
    { "\xfb\xef\xbe", 3, "++++", "----" },
    { "\xff\xff\xff\xff", 4, "/////w", "_____w" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *std = cp_base64_encode_unpadded ((const guint8 *) cases[i].bytes, cases[i].len);
      g_autofree char *url = cp_base64_url_encode_unpadded ((const guint8 *) cases[i].bytes, cases[i].len);

      g_assert_cmpstr (std, ==, cases[i].std);
      g_assert_cmpstr (url, ==, cases[i].url);
    }

  /* NULL data with no length is the empty text. */
  {
    g_autofree char *a = cp_base64_encode_unpadded (NULL, 0);
    g_autofree char *b = cp_base64_url_encode_unpadded (NULL, 0);

    g_assert_cmpstr (a, ==, "");
    g_assert_cmpstr (b, ==, "");
  }
}

static void
assert_decodes (const char *text,
                const char *bytes,
                gsize       len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = cp_base64_decode_liberal (text, -1, &error);

  g_test_message ("good base64 [%s]", text);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (out, NULL), g_bytes_get_size (out), bytes, len);
}

/* Padded or not, standard or URL-safe: all read the same bytes. */
static void
test_decode_accepts (void)
{
  static const struct { const char *text; const char *bytes; gsize len; } good[] = {
    { "AA", "\x00", 1 },
    { "AA==", "\x00", 1 },
    { "AAE", "\x00\x01", 2 },
    { "AAE=", "\x00\x01", 2 },
    { "AAEC", "\x00\x01\x02", 3 },
    { "AAECAw", "\x00\x01\x02\x03", 4 },
    { "AAECAw==", "\x00\x01\x02\x03", 4 },
    { "+/8", "\xfb\xff", 2 },
    { "+/8=", "\xfb\xff", 2 },
    { "-_8", "\xfb\xff", 2 },
    { "-_8=", "\xfb\xff", 2 },
    { "++++", "\xfb\xef\xbe", 3 },
    { "----", "\xfb\xef\xbe", 3 },
    { "/////w", "\xff\xff\xff\xff", 4 },
    { "_____w==", "\xff\xff\xff\xff", 4 },
    { "aGVsbG8gd29ybGQ", "hello world", 11 },
    { "aGVsbG8gd29ybGQ=", "hello world", 11 },
    /* Unused low bits of the last character are ignored (as Go's and
     * GLib's decoders do). */
    { "AB", "\x00", 1 },
    { "AB==", "\x00", 1 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    assert_decodes (good[i].text, good[i].bytes, good[i].len);

  /* Every byte value round-trips through both encoders. */
  {
    guint8 all[256];
    g_autofree char *std = NULL, *url = NULL;

    for (guint i = 0; i < 256; i++)
      all[i] = i;
    std = cp_base64_encode_unpadded (all, sizeof all);
    url = cp_base64_url_encode_unpadded (all, sizeof all);
    assert_decodes (std, (const char *) all, sizeof all);
    assert_decodes (url, (const char *) all, sizeof all);
  }
}

static void
assert_refused (const char *text,
                gssize      len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) out = cp_base64_decode_liberal (text, len, &error);

  g_test_message ("bad base64 [%s]", text);
  g_assert_null (out);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
}

static void
test_decode_refuses_characters (void)
{
  static const char * const bad[] = {
    "AA AA", "AA\n", "\nAA", "AA\r\n", "AA\t", "*AAA", "AA.A", "AA%3D", "AAÄ",
    /* '=' only at the end */
    "=AAA", "AA=A", "=", "==",
    /* one alphabet per text */
    "+_8", "-/8", "AA+-",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_refused (bad[i], -1);

  /* A NUL inside the given length is a character like any other. */
  assert_refused ("AA\0A", 4);
}

/* Padding fills the last group to four characters, no more and no less;
 * without padding one character cannot end a group. */
static void
test_decode_refuses_lengths (void)
{
  static const char * const bad[] = {
    "A", "AAAAA", "A=", "A==", "A===", "AA=", "AA===", "AAA==", "AAAA=",
    "AAAA==", "AA====", "AAE==",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_refused (bad[i], -1);
}

static void
test_decode_empty (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) a = cp_base64_decode_liberal ("", -1, &error);
  g_autoptr(GBytes) b = cp_base64_decode_liberal (NULL, 0, &error);
  guint8 *data = (guint8 *) "x";
  gsize len = 1;

  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (a), ==, 0);
  g_assert_cmpuint (g_bytes_get_size (b), ==, 0);

  /* The raw form gives no buffer for nothing. */
  g_assert_true (cp_base64_decode ("", 0, &data, &len, &error));
  g_assert_no_error (error);
  g_assert_null (data);
  g_assert_cmpuint (len, ==, 0);
}

/* With an explicit length only that prefix is read. */
static void
test_decode_length (void)
{
  g_autoptr(GBytes) bytes = cp_base64_decode_liberal ("AAECAw!!", 6, NULL);
  guint8 *data = NULL;
  gsize len = 0;

  g_assert_cmpuint (g_bytes_get_size (bytes), ==, 4);

  g_assert_true (cp_base64_decode ("AAEC====", 4, &data, &len, NULL));
  g_assert_cmpmem (data, len, "\x00\x01\x02", 3);
  g_free (data);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/base64/encode-unpadded", test_encode_unpadded);
  g_test_add_func ("/wire/base64/decode/accepts", test_decode_accepts);
  g_test_add_func ("/wire/base64/decode/refuses-characters", test_decode_refuses_characters);
  g_test_add_func ("/wire/base64/decode/refuses-lengths", test_decode_refuses_lengths);
  g_test_add_func ("/wire/base64/decode/empty", test_decode_empty);
  g_test_add_func ("/wire/base64/decode/length", test_decode_length);

  return g_test_run ();
}
