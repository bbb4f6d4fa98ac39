/* test-envelope.c: incremental envelope reader and writer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-envelope-private.h"
#include "cp-error.h"

/* Three envelopes: a message, an empty message, an EndStream. */
static GBytes *
sample_stream (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GBytes) msg = g_bytes_new_static ("\x0a\x03\x42\x75\x66", 5);
  g_autoptr(GBytes) end = g_bytes_new_static ("{}", 2);

  cp_envelope_append (out, 0, msg);
  cp_envelope_append (out, 0, NULL);
  cp_envelope_append (out, CP_ENVELOPE_FLAG_END_STREAM, end);
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static void
assert_sample_envelopes (CpEnvelopeReader *reader)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) p1 = NULL, p2 = NULL, p3 = NULL, p4 = NULL;
  guint8 flags = 0xff;

  g_assert_true (cp_envelope_reader_next (reader, &flags, &p1, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (flags, ==, 0);
  g_assert_cmpmem (g_bytes_get_data (p1, NULL), g_bytes_get_size (p1), "\x0a\x03\x42\x75\x66", 5);

  g_assert_true (cp_envelope_reader_next (reader, &flags, &p2, &error));
  g_assert_cmpuint (flags, ==, 0);
  g_assert_cmpuint (g_bytes_get_size (p2), ==, 0);

  g_assert_true (cp_envelope_reader_next (reader, &flags, &p3, &error));
  g_assert_cmpuint (flags, ==, CP_ENVELOPE_FLAG_END_STREAM);
  g_assert_cmpmem (g_bytes_get_data (p3, NULL), g_bytes_get_size (p3), "{}", 2);

  g_assert_false (cp_envelope_reader_next (reader, &flags, &p4, &error));
  g_assert_no_error (error);
  g_assert_null (p4);
  g_assert_cmpuint (cp_envelope_reader_get_pending (reader), ==, 0);
  g_assert_true (cp_envelope_reader_finish (reader, &error));
  g_assert_no_error (error);
}

static void
test_encode (void)
{
  g_autoptr(GBytes) msg = g_bytes_new_static ("\x0a\x03\x42\x75\x66", 5);
  g_autoptr(GBytes) one = cp_envelope_encode (0, msg);
  g_autoptr(GBytes) empty = cp_envelope_encode (0, NULL);
  g_autoptr(GBytes) end = g_bytes_new_static ("{}", 2);
  g_autoptr(GBytes) end_env = cp_envelope_encode (CP_ENVELOPE_FLAG_END_STREAM, end);
  g_autoptr(GBytes) big_payload = g_bytes_new_take (g_malloc0 (0x010203), 0x010203);
  g_autoptr(GBytes) big = cp_envelope_encode (CP_ENVELOPE_FLAG_COMPRESSED, big_payload);

  g_assert_cmpmem (g_bytes_get_data (one, NULL), g_bytes_get_size (one),
                   "\x00\x00\x00\x00\x05\x0a\x03\x42\x75\x66", 10);
  g_assert_cmpmem (g_bytes_get_data (empty, NULL), g_bytes_get_size (empty), "\x00\x00\x00\x00\x00", 5);
  g_assert_cmpmem (g_bytes_get_data (end_env, NULL), g_bytes_get_size (end_env),
                   "\x02\x00\x00\x00\x02{}", 7);
  g_assert_cmpuint (g_bytes_get_size (big), ==, 5 + 0x010203);
  g_assert_cmpmem (g_bytes_get_data (big, NULL), 5, "\x01\x00\x01\x02\x03", 5);
}

static void
test_whole (void)
{
  g_autoptr(GBytes) stream = sample_stream ();
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);

  cp_envelope_reader_push (reader, stream);
  assert_sample_envelopes (reader);
}

static void
test_split_every_boundary (void)
{
  g_autoptr(GBytes) stream = sample_stream ();
  gsize len = g_bytes_get_size (stream);

  for (gsize a = 0; a <= len; a++)
    for (gsize b = a; b <= len; b++)
      {
        g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);
        g_autoptr(GBytes) c1 = g_bytes_new_from_bytes (stream, 0, a);
        g_autoptr(GBytes) c2 = g_bytes_new_from_bytes (stream, a, b - a);
        g_autoptr(GBytes) c3 = g_bytes_new_from_bytes (stream, b, len - b);

        cp_envelope_reader_push (reader, c1);
        cp_envelope_reader_push (reader, c2);
        cp_envelope_reader_push (reader, c3);
        assert_sample_envelopes (reader);
      }
}

static void
test_byte_by_byte (void)
{
  g_autoptr(GBytes) stream = sample_stream ();
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);
  const guint8 *data = g_bytes_get_data (stream, NULL);
  gsize len = g_bytes_get_size (stream);
  guint count = 0;

  /* Popping as soon as possible, with one byte at a time. */
  for (gsize i = 0; i < len; i++)
    {
      g_autoptr(GBytes) chunk = g_bytes_new (data + i, 1);
      g_autoptr(GBytes) payload = NULL;
      g_autoptr(GError) error = NULL;
      guint8 flags;

      cp_envelope_reader_push (reader, chunk);
      if (cp_envelope_reader_next (reader, &flags, &payload, &error))
        count++;
      g_assert_no_error (error);
    }
  g_assert_cmpuint (count, ==, 3);
  g_assert_true (cp_envelope_reader_finish (reader, NULL));
}

static void
test_zero_copy (void)
{
  g_autoptr(GBytes) stream = sample_stream ();
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) spanning = NULL;
  const guint8 *data = g_bytes_get_data (stream, NULL);
  guint8 flags;

  cp_envelope_reader_push (reader, stream);
  g_assert_true (cp_envelope_reader_next (reader, &flags, &payload, NULL));
  /* The payload points into the pushed chunk. */
  g_assert_true ((const guint8 *) g_bytes_get_data (payload, NULL) == data + 5);

  /* Spanning two chunks: copied, contents intact. */
  {
    g_autoptr(CpEnvelopeReader) split = cp_envelope_reader_new (0);
    g_autoptr(GBytes) c1 = g_bytes_new_from_bytes (stream, 0, 7);
    g_autoptr(GBytes) c2 = g_bytes_new_from_bytes (stream, 7, g_bytes_get_size (stream) - 7);

    cp_envelope_reader_push (split, c1);
    cp_envelope_reader_push (split, c2);
    g_assert_true (cp_envelope_reader_next (split, &flags, &spanning, NULL));
    g_assert_cmpmem (g_bytes_get_data (spanning, NULL), g_bytes_get_size (spanning), data + 5, 5);
  }

  /* Header in one chunk, payload alone in the next: still zero copy. */
  {
    g_autoptr(CpEnvelopeReader) split = cp_envelope_reader_new (0);
    g_autoptr(GBytes) c1 = g_bytes_new_from_bytes (stream, 0, 5);
    g_autoptr(GBytes) c2 = g_bytes_new_from_bytes (stream, 5, 5);
    g_autoptr(GBytes) p = NULL;

    cp_envelope_reader_push (split, c1);
    cp_envelope_reader_push (split, c2);
    g_assert_true (cp_envelope_reader_next (split, &flags, &p, NULL));
    g_assert_true (g_bytes_get_data (p, NULL) == g_bytes_get_data (c2, NULL));
  }
}

static void
test_empty_payload (void)
{
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (10);
  g_autoptr(GBytes) input = g_bytes_new_static ("\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", 10);
  g_autoptr(GBytes) p1 = NULL, p2 = NULL;
  guint8 flags;

  cp_envelope_reader_push (reader, input);
  g_assert_true (cp_envelope_reader_next (reader, &flags, &p1, NULL));
  g_assert_cmpuint (flags, ==, 0);
  g_assert_nonnull (p1);
  g_assert_cmpuint (g_bytes_get_size (p1), ==, 0);
  /* Compressed flag on an empty payload is the caller's to interpret. */
  g_assert_true (cp_envelope_reader_next (reader, &flags, &p2, NULL));
  g_assert_cmpuint (flags, ==, CP_ENVELOPE_FLAG_COMPRESSED);
  g_assert_cmpuint (g_bytes_get_size (p2), ==, 0);
  g_assert_true (cp_envelope_reader_finish (reader, NULL));
}

static void
test_oversize (void)
{
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (4);
  g_autoptr(GBytes) exact = g_bytes_new_static ("\x00\x00\x00\x00\x04" "abcd", 9);
  /* Only the prefix of a 5-byte message: rejected before the payload. */
  g_autoptr(GBytes) prefix = g_bytes_new_static ("\x00\x00\x00\x00\x05", 5);
  g_autoptr(GBytes) more = g_bytes_new_static ("abcde", 5);
  g_autoptr(GBytes) p1 = NULL, p2 = NULL, p3 = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) again = NULL;
  g_autoptr(GError) finish_error = NULL;
  guint8 flags;

  cp_envelope_reader_push (reader, exact);
  g_assert_true (cp_envelope_reader_next (reader, &flags, &p1, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (p1), ==, 4);

  cp_envelope_reader_push (reader, prefix);
  g_assert_false (cp_envelope_reader_next (reader, &flags, &p2, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_null (p2);

  /* The reader stays failed and buffers nothing more. */
  cp_envelope_reader_push (reader, more);
  g_assert_cmpuint (cp_envelope_reader_get_pending (reader), ==, 0);
  g_assert_false (cp_envelope_reader_next (reader, &flags, &p3, &again));
  g_assert_error (again, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_false (cp_envelope_reader_finish (reader, &finish_error));
  g_assert_error (finish_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
}

static void
test_oversize_huge (void)
{
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (1024);
  g_autoptr(GBytes) prefix = g_bytes_new_static ("\x00\xff\xff\xff\xff", 5);
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GError) error = NULL;
  guint8 flags;

  cp_envelope_reader_push (reader, prefix);
  g_assert_false (cp_envelope_reader_next (reader, &flags, &payload, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
}

static void
test_reserved_flags (void)
{
  for (guint f = 0; f < 256; f++)
    {
      g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);
      guint8 input[7] = { f, 0, 0, 0, 2, '{', '}' };
      g_autoptr(GBytes) chunk = g_bytes_new (input, sizeof input);
      g_autoptr(GBytes) payload = NULL;
      g_autoptr(GError) error = NULL;
      guint8 flags = 0;
      gboolean ok;

      cp_envelope_reader_push (reader, chunk);
      ok = cp_envelope_reader_next (reader, &flags, &payload, &error);
      if (f <= 0x03)
        {
          g_assert_true (ok);
          g_assert_no_error (error);
          g_assert_cmpuint (flags, ==, f);
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, CP_ERROR, CP_ERROR_INTERNAL);
          g_assert_null (payload);
        }
    }
}

static void
test_truncated (void)
{
  g_autoptr(GBytes) stream = sample_stream ();
  gsize len = g_bytes_get_size (stream);
  /* Envelope boundaries of the sample: 0, 10, 15, 22. */
  static const gsize boundaries[] = { 0, 10, 15, 22 };

  for (gsize cut = 0; cut <= len; cut++)
    {
      g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);
      g_autoptr(GBytes) part = g_bytes_new_from_bytes (stream, 0, cut);
      g_autoptr(GError) error = NULL;
      gboolean at_boundary = FALSE;
      GBytes *payload = NULL;
      guint8 flags;

      for (gsize i = 0; i < G_N_ELEMENTS (boundaries); i++)
        at_boundary |= boundaries[i] == cut;

      cp_envelope_reader_push (reader, part);
      while (cp_envelope_reader_next (reader, &flags, &payload, &error))
        g_clear_pointer (&payload, g_bytes_unref);
      g_assert_no_error (error);

      if (at_boundary)
        {
          g_assert_true (cp_envelope_reader_finish (reader, &error));
          g_assert_no_error (error);
        }
      else
        {
          g_assert_false (cp_envelope_reader_finish (reader, &error));
          g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
        }
    }
}

static void
test_truncated_message (void)
{
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);
  g_autoptr(GBytes) part = g_bytes_new_static ("\x00\x00\x00\x00\x0a" "abc", 8);
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GError) error = NULL;
  guint8 flags;

  cp_envelope_reader_push (reader, part);
  g_assert_false (cp_envelope_reader_next (reader, &flags, &payload, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (cp_envelope_reader_get_pending (reader), ==, 8);
  g_assert_false (cp_envelope_reader_finish (reader, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "promised 10 bytes"));
  g_assert_nonnull (strstr (error->message, "got 3 bytes"));
}

static void
test_empty_chunks (void)
{
  g_autoptr(CpEnvelopeReader) reader = cp_envelope_reader_new (0);
  g_autoptr(GBytes) nothing = g_bytes_new (NULL, 0);
  g_autoptr(GBytes) payload = NULL;
  guint8 flags;

  cp_envelope_reader_push (reader, nothing);
  g_assert_cmpuint (cp_envelope_reader_get_pending (reader), ==, 0);
  g_assert_false (cp_envelope_reader_next (reader, &flags, &payload, NULL));
  g_assert_true (cp_envelope_reader_finish (reader, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/wire/envelope/encode", test_encode);
  g_test_add_func ("/wire/envelope/whole", test_whole);
  g_test_add_func ("/wire/envelope/split-every-boundary", test_split_every_boundary);
  g_test_add_func ("/wire/envelope/byte-by-byte", test_byte_by_byte);
  g_test_add_func ("/wire/envelope/zero-copy", test_zero_copy);
  g_test_add_func ("/wire/envelope/empty-payload", test_empty_payload);
  g_test_add_func ("/wire/envelope/oversize", test_oversize);
  g_test_add_func ("/wire/envelope/oversize-huge", test_oversize_huge);
  g_test_add_func ("/wire/envelope/reserved-flags", test_reserved_flags);
  g_test_add_func ("/wire/envelope/truncated", test_truncated);
  g_test_add_func ("/wire/envelope/truncated-message", test_truncated_message);
  g_test_add_func ("/wire/envelope/empty-chunks", test_empty_chunks);

  return g_test_run ();
}
