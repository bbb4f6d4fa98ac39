/* cp-envelope-private.h: Connect streaming envelopes (flags + uint32 BE length)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CP_ENVELOPE_HEADER_SIZE      5
#define CP_ENVELOPE_FLAG_COMPRESSED  0x01
#define CP_ENVELOPE_FLAG_END_STREAM  0x02

typedef struct _CpEnvelopeReader CpEnvelopeReader;

/* @max_payload: 0 = unlimited; a larger announced length fails with
 * resource_exhausted before anything is buffered. */
CpEnvelopeReader *cp_envelope_reader_new    (gsize             max_payload);
void              cp_envelope_reader_free   (CpEnvelopeReader *reader);
/* The flag bits an envelope may carry (default: compressed and end-stream,
 * Connect's); others fail as below. gRPC: compressed only; gRPC-Web: also
 * the trailers frame's 0x80 (cp-grpc-private.h). */
void              cp_envelope_reader_set_known_flags (CpEnvelopeReader *reader,
                                                      guint8            flags);

/* Appends bytes read from the wire; boundaries are arbitrary. */
void              cp_envelope_reader_push   (CpEnvelopeReader *reader,
                                             GBytes           *chunk);

/* Pops the next complete envelope. Returns TRUE with *flags and *payload
 * (transfer full; a slice of the pushed chunk when possible, zero copy) set.
 * Returns FALSE with @error unset when more bytes are needed, FALSE with
 * @error set on a protocol error: reserved flag bits set →
 * CP_ERROR_INTERNAL; length above max_payload → CP_ERROR_RESOURCE_EXHAUSTED.
 * After an error the reader stays failed. */
gboolean          cp_envelope_reader_next   (CpEnvelopeReader *reader,
                                             guint8           *flags,
                                             GBytes          **payload,
                                             GError          **error);

/* Bytes buffered but not yet returned. */
gsize             cp_envelope_reader_get_pending (CpEnvelopeReader *reader);

/* Call at end of input: TRUE when input ended on an envelope boundary,
 * otherwise FALSE with CP_ERROR_INVALID_ARGUMENT ("promised N bytes"). */
gboolean          cp_envelope_reader_finish (CpEnvelopeReader *reader,
                                             GError          **error);

/* Writes flags + length + payload (payload may be NULL = empty). */
void              cp_envelope_append        (GByteArray       *out,
                                             guint8            flags,
                                             GBytes           *payload);
GBytes           *cp_envelope_encode        (guint8            flags,
                                             GBytes           *payload);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpEnvelopeReader, cp_envelope_reader_free)

G_END_DECLS
