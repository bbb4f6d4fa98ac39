/* fuzz-envelope.c: the envelope reader, with input split at random points
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Differential: reading the input pushed whole and pushed in random pieces
 * (popping between pushes) must give the same envelopes and the same error.
 */
#include <string.h>

#include "fuzz-common.h"
#include "cp-envelope-private.h"
#include "cp-error.h"

typedef struct
{
  GPtrArray *flags;     /* GUINT_TO_POINTER (flags) */
  GPtrArray *payloads;  /* (element-type GBytes) */
  int        code;      /* 0 = clean end */
} Result;

static void
drain (CpEnvelopeReader *reader,
       Result           *result)
{
  g_autoptr(GError) error = NULL;
  GBytes *payload = NULL;
  guint8 flags;

  while (result->code == 0 && cp_envelope_reader_next (reader, &flags, &payload, &error))
    {
      g_ptr_array_add (result->flags, GUINT_TO_POINTER ((guint) flags));
      g_ptr_array_add (result->payloads, payload);
      payload = NULL;
    }
  g_assert_null (payload);
  if (error != NULL)
    {
      g_assert_true (error->domain == CP_ERROR);
      result->code = error->code;
    }
}

static void
run (const uint8_t *data, size_t size, gsize max_payload, guint32 seed, gboolean split, Result *result)
{
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (max_payload);
  g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
  g_autoptr(GError) error = NULL;
  gsize pos = 0;

  result->flags = g_ptr_array_new ();
  result->payloads = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  result->code = 0;

  while (pos < size)
    {
      gsize want = split ? (gsize) g_rand_int_range (rand, 0, 12) : size;
      gsize n = MIN (size - pos, want);
      g_autoptr(GBytes) chunk = g_bytes_new (data + pos, n);

      cp_envelope_reader_push (reader, chunk);
      pos += n;
      drain (reader, result);
    }

  if (!cp_envelope_reader_finish (reader, &error))
    {
      g_assert_true (error->domain == CP_ERROR);
      if (result->code == 0)
        result->code = error->code;
      else
        g_assert_cmpint (error->code, ==, result->code);
    }
}

static void
result_clear (Result *result)
{
  g_ptr_array_unref (result->flags);
  g_ptr_array_unref (result->payloads);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Result whole, pieces;
  gsize max_payload;
  guint32 seed;

  fuzz_set_up ();
  if (size < 1)
    return 0;

  /* First byte: the limit (0 = unlimited); the rest: the stream. */
  max_payload = data[0];
  seed = (guint32) g_str_hash ((const char *) "") ^ (guint32) size ^ (size > 1 ? data[1] : 0);
  data++;
  size--;

  run (data, size, max_payload, seed, FALSE, &whole);
  run (data, size, max_payload, seed, TRUE, &pieces);

  g_assert_cmpint (whole.code, ==, pieces.code);
  g_assert_cmpuint (whole.payloads->len, ==, pieces.payloads->len);
  for (guint i = 0; i < whole.payloads->len; i++)
    {
      GBytes *a = g_ptr_array_index (whole.payloads, i);
      g_autoptr(GBytes) encoded = NULL;

      g_assert_true (g_ptr_array_index (whole.flags, i) == g_ptr_array_index (pieces.flags, i));
      g_assert_true (g_bytes_equal (a, g_ptr_array_index (pieces.payloads, i)));
      g_assert_true (max_payload == 0 || g_bytes_get_size (a) <= max_payload);
      g_assert_cmpuint (GPOINTER_TO_UINT (g_ptr_array_index (whole.flags, i)) & ~3u, ==, 0);
      /* Re-encoding gives the same bytes back. */
      encoded = cp_envelope_encode (GPOINTER_TO_UINT (g_ptr_array_index (whole.flags, i)), a);
      g_assert_cmpuint (g_bytes_get_size (encoded), ==, g_bytes_get_size (a) + 5);
    }

  result_clear (&whole);
  result_clear (&pieces);
  return 0;
}
