/* fuzz-driver.c: runs a libFuzzer-style target without libFuzzer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every fuzz target defines LLVMFuzzerTestOneInput(). Built with clang and
 * -Dfuzzing=true, the targets link libFuzzer for coverage-guided runs; in the
 * normal build this driver gives them a main() that feeds a deterministic
 * smoke run: the seed files given on the command line, then mutations of them
 * (bit flips, truncations, splices, random lengths) and pure random inputs.
 *
 *   fuzz-NAME [-n COUNT] [-s SEED] [SEED_FILE_OR_DIR...]
 *
 * Exits 0 when every input was consumed without a crash (sanitizers, when
 * enabled, turn memory errors into crashes).
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
add_seed_path (GPtrArray *seeds, const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          add_seed_path (seeds, child);
        }
      return;
    }
  char *contents = NULL;
  gsize len = 0;
  if (g_file_get_contents (path, &contents, &len, NULL))
    g_ptr_array_add (seeds, g_bytes_new_take (contents, len));
}

static GBytes *
mutate (GRand *rand, GPtrArray *seeds)
{
  GByteArray *out = g_byte_array_new ();
  guint kind = g_rand_int_range (rand, 0, seeds->len ? 6 : 1);

  if (kind == 0)
    {
      /* pure random, biased towards short inputs */
      guint len = g_rand_int_range (rand, 0, g_rand_boolean (rand) ? 16 : 512);
      for (guint i = 0; i < len; i++)
        {
          guint8 b = g_rand_int_range (rand, 0, 256);
          g_byte_array_append (out, &b, 1);
        }
      return g_byte_array_free_to_bytes (out);
    }

  GBytes *seed = g_ptr_array_index (seeds, g_rand_int_range (rand, 0, seeds->len));
  gsize len;
  const guint8 *data = g_bytes_get_data (seed, &len);
  g_byte_array_append (out, data, len);

  guint rounds = g_rand_int_range (rand, 1, 5);
  for (guint r = 0; r < rounds; r++)
    {
      switch (g_rand_int_range (rand, 0, 6))
        {
        case 0: /* flip bits */
          if (out->len)
            out->data[g_rand_int_range (rand, 0, out->len)] ^= 1u << g_rand_int_range (rand, 0, 8);
          break;
        case 1: /* truncate */
          if (out->len)
            g_byte_array_set_size (out, g_rand_int_range (rand, 0, out->len));
          break;
        case 2: /* random byte */
          if (out->len)
            out->data[g_rand_int_range (rand, 0, out->len)] = g_rand_int_range (rand, 0, 256);
          break;
        case 3: /* insert interesting byte */
          {
            static const guint8 interesting[] = { 0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0xff, '\r', '\n', ':', '"', '{', '}', '0', '9' };
            guint8 b = interesting[g_rand_int_range (rand, 0, G_N_ELEMENTS (interesting))];
            g_array_insert_vals ((GArray *) out, g_rand_int_range (rand, 0, out->len + 1), &b, 1);
          }
          break;
        case 4: /* splice with another seed */
          {
            GBytes *other = g_ptr_array_index (seeds, g_rand_int_range (rand, 0, seeds->len));
            gsize olen;
            const guint8 *odata = g_bytes_get_data (other, &olen);
            if (olen)
              {
                gsize from = g_rand_int_range (rand, 0, olen);
                gsize cut = out->len ? g_rand_int_range (rand, 0, out->len) : 0;
                g_byte_array_set_size (out, cut);
                g_byte_array_append (out, odata + from, olen - from);
              }
          }
          break;
        default: /* duplicate a range */
          if (out->len)
            {
              guint from = g_rand_int_range (rand, 0, out->len);
              guint want = g_rand_int_range (rand, 1, 64);
              guint n = MIN (out->len - from, want);
              g_autofree guint8 *copy = g_memdup2 (out->data + from, n);
              g_array_insert_vals ((GArray *) out, from, copy, n);
            }
          break;
        }
    }
  return g_byte_array_free_to_bytes (out);
}

int
main (int argc, char **argv)
{
  guint64 count = 10000;
  guint32 seed = 0x5eed;
  g_autoptr(GPtrArray) seeds = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  for (int i = 1; i < argc; i++)
    {
      if (g_str_equal (argv[i], "-n") && i + 1 < argc)
        count = g_ascii_strtoull (argv[++i], NULL, 10);
      else if (g_str_equal (argv[i], "-s") && i + 1 < argc)
        seed = (guint32) g_ascii_strtoull (argv[++i], NULL, 10);
      else
        add_seed_path (seeds, argv[i]);
    }

  for (guint i = 0; i < seeds->len; i++)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (g_ptr_array_index (seeds, i), &len);
      LLVMFuzzerTestOneInput (data, len);
    }

  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  for (guint64 i = 0; i < count; i++)
    {
      g_autoptr(GBytes) input = mutate (rand, seeds);
      gsize len;
      const guint8 *data = g_bytes_get_data (input, &len);
      /* Give the target its own heap copy so ASan sees overreads. */
      g_autofree guint8 *copy = g_memdup2 (data, len ? len : 1);
      LLVMFuzzerTestOneInput (copy, len);
    }

  printf ("fuzz smoke: %" G_GUINT64_FORMAT " inputs (+%u seeds), no crash\n", count, seeds->len);
  return 0;
}
