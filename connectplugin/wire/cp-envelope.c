/* cp-envelope.c: Connect streaming envelopes (flags + uint32 BE length)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-envelope-private.h"
#include "cp-error.h"

#define KNOWN_FLAGS (CP_ENVELOPE_FLAG_COMPRESSED | CP_ENVELOPE_FLAG_END_STREAM)

struct _CpEnvelopeReader
{
  gsize   max_payload;
  guint8  known_flags; /* flag bits accepted (KNOWN_FLAGS unless set) */
  GQueue  chunks;    /* (element-type GBytes) (owned): non-empty chunks */
  gsize   offset;    /* bytes of the head chunk already consumed */
  gsize   pending;   /* bytes buffered and not consumed */
  GError *error;     /* (owned) (nullable): set once the reader failed */
};

CpEnvelopeReader *
cp_envelope_reader_new (gsize max_payload)
{
  CpEnvelopeReader *reader = g_new0 (CpEnvelopeReader, 1);

  reader->max_payload = max_payload;
  reader->known_flags = KNOWN_FLAGS;
  g_queue_init (&reader->chunks);
  return reader;
}

void
cp_envelope_reader_set_known_flags (CpEnvelopeReader *reader,
                                    guint8            flags)
{
  g_return_if_fail (reader != NULL);

  reader->known_flags = flags;
}

void
cp_envelope_reader_free (CpEnvelopeReader *reader)
{
  if (reader == NULL)
    return;

  g_queue_clear_full (&reader->chunks, (GDestroyNotify) g_bytes_unref);
  g_clear_error (&reader->error);
  g_free (reader);
}

void
cp_envelope_reader_push (CpEnvelopeReader *reader,
                         GBytes           *chunk)
{
  g_return_if_fail (reader != NULL);
  g_return_if_fail (chunk != NULL);

  /* A failed reader has nothing more to say about the stream: drop input
   * instead of buffering it. */
  if (reader->error != NULL || g_bytes_get_size (chunk) == 0)
    return;

  g_queue_push_tail (&reader->chunks, g_bytes_ref (chunk));
  reader->pending += g_bytes_get_size (chunk);
}

gsize
cp_envelope_reader_get_pending (CpEnvelopeReader *reader)
{
  g_return_val_if_fail (reader != NULL, 0);

  return reader->pending;
}

/* Copies the first @len buffered bytes (len <= pending) without consuming. */
static void
reader_peek (CpEnvelopeReader *reader,
             guint8           *dest,
             gsize             len)
{
  gsize offset = reader->offset;

  for (GList *l = reader->chunks.head; len > 0 && l != NULL; l = l->next)
    {
      gsize size;
      const guint8 *data = g_bytes_get_data (l->data, &size);
      gsize n = MIN (len, size - offset);

      memcpy (dest, data + offset, n);
      dest += n;
      len -= n;
      offset = 0;
    }
}

/* Consumes @len buffered bytes (len <= pending), copying them to @dest
 * unless it is NULL. */
static void
reader_consume (CpEnvelopeReader *reader,
                guint8           *dest,
                gsize             len)
{
  while (len > 0)
    {
      GBytes *head = g_queue_peek_head (&reader->chunks);
      gsize size;
      const guint8 *data = g_bytes_get_data (head, &size);
      gsize n = MIN (len, size - reader->offset);

      if (dest != NULL)
        {
          memcpy (dest, data + reader->offset, n);
          dest += n;
        }
      len -= n;
      reader->offset += n;
      reader->pending -= n;
      if (reader->offset == size)
        {
          g_bytes_unref (g_queue_pop_head (&reader->chunks));
          reader->offset = 0;
        }
    }
}

static gboolean
reader_fail (CpEnvelopeReader *reader,
             GError          **error,
             GError           *failure)
{
  g_queue_clear_full (&reader->chunks, (GDestroyNotify) g_bytes_unref);
  reader->offset = 0;
  reader->pending = 0;
  reader->error = failure;
  if (error != NULL)
    *error = g_error_copy (failure);
  return FALSE;
}

gboolean
cp_envelope_reader_next (CpEnvelopeReader *reader,
                         guint8           *flags,
                         GBytes          **payload,
                         GError          **error)
{
  guint8 header[CP_ENVELOPE_HEADER_SIZE];
  guint32 length;
  GBytes *head;
  gsize head_size;

  g_return_val_if_fail (reader != NULL, FALSE);
  g_return_val_if_fail (payload != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (reader->error != NULL)
    {
      g_propagate_error (error, g_error_copy (reader->error));
      return FALSE;
    }

  if (reader->pending < CP_ENVELOPE_HEADER_SIZE)
    return FALSE;

  reader_peek (reader, header, sizeof header);
  length = ((guint32) header[1] << 24) | ((guint32) header[2] << 16) |
           ((guint32) header[3] << 8) | (guint32) header[4];

  if ((header[0] & ~reader->known_flags) != 0)
    return reader_fail (reader, error,
                        g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                     "protocol error: invalid envelope flags 0x%02x",
                                     header[0]));

  /* Checked on the prefix alone, before buffering any of the payload. */
  if (reader->max_payload > 0 && length > reader->max_payload)
    return reader_fail (reader, error,
                        g_error_new (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                                     "message size %u is larger than configured max %" G_GSIZE_FORMAT,
                                     length, reader->max_payload));

  if (reader->pending - CP_ENVELOPE_HEADER_SIZE < length)
    return FALSE;

  reader_consume (reader, NULL, CP_ENVELOPE_HEADER_SIZE);

  if (flags != NULL)
    *flags = header[0];

  if (length == 0)
    {
      *payload = g_bytes_new (NULL, 0);
      return TRUE;
    }

  head = g_queue_peek_head (&reader->chunks);
  head_size = g_bytes_get_size (head);
  if (head_size - reader->offset >= length)
    {
      /* Zero copy: the payload lies within one pushed chunk. */
      *payload = g_bytes_new_from_bytes (head, reader->offset, length);
      reader_consume (reader, NULL, length);
    }
  else
    {
      guint8 *data = g_malloc (length);

      reader_consume (reader, data, length);
      *payload = g_bytes_new_take (data, length);
    }

  return TRUE;
}

gboolean
cp_envelope_reader_finish (CpEnvelopeReader *reader,
                           GError          **error)
{
  guint8 header[CP_ENVELOPE_HEADER_SIZE];
  guint32 length;

  g_return_val_if_fail (reader != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (reader->error != NULL)
    {
      g_propagate_error (error, g_error_copy (reader->error));
      return FALSE;
    }

  if (reader->pending == 0)
    return TRUE;

  if (reader->pending < CP_ENVELOPE_HEADER_SIZE)
    return reader_fail (reader, error,
                        g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                     "protocol error: incomplete envelope: %" G_GSIZE_FORMAT
                                     " bytes of the %d-byte prefix",
                                     reader->pending, CP_ENVELOPE_HEADER_SIZE));

  reader_peek (reader, header, sizeof header);
  length = ((guint32) header[1] << 24) | ((guint32) header[2] << 16) |
           ((guint32) header[3] << 8) | (guint32) header[4];

  if (reader->pending - CP_ENVELOPE_HEADER_SIZE < length)
    return reader_fail (reader, error,
                        g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                     "protocol error: promised %u bytes in enveloped message, got %"
                                     G_GSIZE_FORMAT " bytes",
                                     length, reader->pending - CP_ENVELOPE_HEADER_SIZE));

  /* Complete envelopes the caller did not pop with _next(). */
  return reader_fail (reader, error,
                      g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                   "protocol error: %" G_GSIZE_FORMAT " unread bytes at end of stream",
                                   reader->pending));
}

void
cp_envelope_append (GByteArray *out,
                    guint8      flags,
                    GBytes     *payload)
{
  const guint8 *data = NULL;
  gsize len = 0;
  guint8 header[CP_ENVELOPE_HEADER_SIZE];

  g_return_if_fail (out != NULL);

  if (payload != NULL)
    data = g_bytes_get_data (payload, &len);
  g_return_if_fail (len <= G_MAXUINT32);

  header[0] = flags;
  header[1] = (len >> 24) & 0xff;
  header[2] = (len >> 16) & 0xff;
  header[3] = (len >> 8) & 0xff;
  header[4] = len & 0xff;
  g_byte_array_append (out, header, sizeof header);
  if (len > 0)
    g_byte_array_append (out, data, len);
}

GBytes *
cp_envelope_encode (guint8  flags,
                    GBytes *payload)
{
  gsize len = payload != NULL ? g_bytes_get_size (payload) : 0;
  GByteArray *out = g_byte_array_sized_new (CP_ENVELOPE_HEADER_SIZE + len);

  cp_envelope_append (out, flags, payload);
  return g_byte_array_free_to_bytes (out);
}
