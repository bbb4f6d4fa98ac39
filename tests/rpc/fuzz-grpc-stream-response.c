/* fuzz-grpc-stream-response.c: a gRPC or gRPC-Web streaming response
 * through the client's stream decoder (cp-stream-decoder.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Input: byte 0 picks the protocol (bit 0: gRPC-Web, else gRPC), the
 * request codec (bit 1: JSON) and the size of the body's pieces (bits 2–7,
 * plus one); the rest is the head, the body and the HTTP trailers, split
 * at the first two "@@@@" markers (head and trailers as "name: value"
 * lines; a section that does not parse is left empty). The head goes
 * through the head checks (status 200: the content type, grpc-encoding,
 * a trailers-only head); the body through the envelope reader in pieces
 * (messages, compressed ones, gRPC-Web's trailers frame, whatever comes
 * after it); the trailers as gRPC's outcome. Whatever the bytes: every
 * error is a CP_ERROR, the decoder reports success only with every
 * message decoded and a status of 0, and it buffers no envelope larger
 * than the receive limit.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

#include "cp-grpc-private.h"
#include "cp-stream-decoder-private.h"
#include "kv-test.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define RECEIVE_LIMIT (64 * 1024)

static SoupMessageHeaders *
parse_lines (const uint8_t *data, size_t size)
{
  SoupMessageHeaders *headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) bytes = g_bytes_new (data, size);

  if (!cp_grpc_web_trailers_decode (bytes, headers, NULL))
    soup_message_headers_clear (headers);
  return headers;
}

/* The next "@@@@" at or after @from, or @size. */
static size_t
find_marker (const uint8_t *data, size_t size, size_t from)
{
  for (size_t i = from; i + 4 <= size; i++)
    if (memcmp (data + i, "@@@@", 4) == 0)
      return i;
  return size;
}

static void
assert_cp_error (const GError *error)
{
  g_assert_nonnull (error);
  g_assert_true (error->domain == CP_ERROR);
  g_assert_cmpint (error->code, >=, 1);
  g_assert_cmpint (error->code, <=, 16);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(CpStreamDecoder) decoder = NULL;
  g_autoptr(SoupMessageHeaders) head = NULL;
  g_autoptr(SoupMessageHeaders) trailers = NULL;
  g_autoptr(GError) error = NULL;
  CpProtocol protocol;
  CpCodec codec;
  size_t piece, head_end, body_start, body_end;
  gboolean failed = FALSE;

  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
  if (size < 1)
    return 0;
  protocol = (data[0] & 1) ? CP_PROTOCOL_GRPC_WEB : CP_PROTOCOL_GRPC;
  codec = (data[0] & 2) ? CP_CODEC_JSON : CP_CODEC_PROTO;
  piece = (data[0] >> 2) + 1;
  data++;
  size--;

  head_end = find_marker (data, size, 0);
  body_start = MIN (head_end + 4, size);
  body_end = find_marker (data, size, body_start);
  head = parse_lines (data, head_end);
  trailers = body_end < size ? parse_lines (data + body_end + 4, size - MIN (body_end + 4, size))
                             : NULL;

  decoder = cp_stream_decoder_new (KV_TYPE_WATCH_EVENT, codec, protocol, RECEIVE_LIMIT);
  if (!cp_stream_decoder_head (decoder, 200, "OK", head, &error))
    {
      assert_cp_error (error);
      return 0;
    }

  for (size_t pos = body_start; pos < body_end && !failed; pos += piece)
    {
      g_autoptr(GBytes) chunk = g_bytes_new (data + pos, MIN (piece, body_end - pos));

      cp_stream_decoder_push (decoder, chunk);
      for (;;)
        {
          g_autoptr(CpMessage) message = NULL;

          if (cp_stream_decoder_next (decoder, &message, &error))
            {
              g_assert_true (KV_IS_WATCH_EVENT (message));
              continue;
            }
          if (error != NULL)
            {
              assert_cp_error (error);
              g_clear_error (&error);
              failed = TRUE;
            }
          break;
        }
    }

  cp_stream_decoder_set_http_trailers (decoder, trailers);
  if (cp_stream_decoder_finish (decoder, &error))
    {
      g_assert_false (failed);
      g_assert_no_error (error);
      g_assert_true (cp_stream_decoder_has_end_stream (decoder));
    }
  else
    assert_cp_error (error);
  return 0;
}
