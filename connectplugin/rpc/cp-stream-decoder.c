/* cp-stream-decoder.c: decoding of a Connect streaming response, shared
 * by CpResponseStream and CpRequestStream: checks the head, splits the body
 * into envelopes, decompresses and decodes messages, and parses the
 * EndStream message (its error and trailers)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-stream-decoder-private.h"
#include "cp-call-options-private.h"
#include "cp-channel-util-private.h"
#include "cp-compression.h"
#include "cp-envelope-private.h"
#include "cp-error-private.h"

struct _CpStreamDecoder
{
  GType response_type;
  CpCodec codec;
  gsize max_receive_size;
  CpEnvelopeReader *reader;
  CpCompression encoding;
  gboolean end_seen;
  GError *rpc_error;
  GError *failed;
  SoupMessageHeaders *trailers;
};

CpStreamDecoder *
cp_stream_decoder_new (GType   response_type,
                       CpCodec codec,
                       gsize   max_receive_size)
{
  CpStreamDecoder *decoder = g_new0 (CpStreamDecoder, 1);

  decoder->response_type = response_type;
  decoder->codec = codec;
  decoder->max_receive_size = max_receive_size;
  decoder->reader = cp_envelope_reader_new (max_receive_size);
  decoder->trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  return decoder;
}

void
cp_stream_decoder_free (CpStreamDecoder *decoder)
{
  cp_envelope_reader_free (decoder->reader);
  g_clear_error (&decoder->rpc_error);
  g_clear_error (&decoder->failed);
  soup_message_headers_unref (decoder->trailers);
  g_free (decoder);
}

gboolean
cp_stream_decoder_head (CpStreamDecoder     *decoder,
                        guint                status,
                        const char          *reason,
                        SoupMessageHeaders  *headers,
                        GError             **error)
{
  g_autofree char *type = NULL;
  const char *codec_name;

  if (status != SOUP_STATUS_OK)
    {
      g_set_error (error, CP_ERROR, cp_error_code_from_http_status (status),
                   "HTTP %u %s", status, reason ? reason : "");
      return FALSE;
    }
  type = cp_channel_media_type (headers);
  if (type == NULL || !g_str_has_prefix (type, "application/connect+"))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNKNOWN,
                   "unexpected response content type \"%s\"", type ? type : "");
      return FALSE;
    }
  codec_name = type + strlen ("application/connect+");
  if (g_strcmp0 (codec_name, cp_codec_to_string (decoder->codec)) != 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "response codec \"%s\" does not match the request's \"%s\"",
                   codec_name, cp_codec_to_string (decoder->codec));
      return FALSE;
    }
  return cp_channel_parse_encoding (headers, "Connect-Content-Encoding", &decoder->encoding, error);
}

gboolean
cp_stream_decoder_exchange_head (CpStreamDecoder     *decoder,
                                 CpChannelExchange   *exchange,
                                 SoupMessageHeaders  *headers_out,
                                 GError             **error)
{
  SoupMessageHeaders *headers = cp_channel_exchange_get_response_headers (exchange);

  cp_headers_copy_into (headers_out, headers);
  return cp_stream_decoder_head (decoder, cp_channel_exchange_get_status (exchange),
                                 cp_channel_exchange_get_reason (exchange), headers, error);
}

void
cp_stream_decoder_push (CpStreamDecoder *decoder,
                        GBytes          *chunk)
{
  if (decoder->end_seen && g_bytes_get_size (chunk) > 0)
    {
      if (decoder->failed == NULL)
        decoder->failed = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                               "the response continued after EndStream");
      return;
    }
  cp_envelope_reader_push (decoder->reader, chunk);
}

gboolean
cp_stream_decoder_next (CpStreamDecoder  *decoder,
                        CpMessage       **message,
                        GError          **error)
{
  for (;;)
    {
      g_autoptr(GBytes) payload = NULL;
      guint8 flags = 0;
      GError *local_error = NULL;

      if (decoder->failed != NULL)
        {
          g_propagate_error (error, g_error_copy (decoder->failed));
          return FALSE;
        }
      if (!cp_envelope_reader_next (decoder->reader, &flags, &payload, &local_error))
        {
          if (local_error != NULL)
            {
              decoder->failed = cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL);
              continue;
            }
          return FALSE;
        }
      if (decoder->end_seen)
        {
          decoder->failed = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                                 "the response continued after EndStream");
          continue;
        }
      if (flags & CP_ENVELOPE_FLAG_COMPRESSED)
        {
          if (decoder->encoding == CP_COMPRESSION_IDENTITY)
            {
              decoder->failed = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL,
                                                     "compressed message without a negotiated encoding");
              continue;
            }
          if (g_bytes_get_size (payload) > 0)
            {
              GBytes *plain = cp_decompress (decoder->encoding, payload,
                                             decoder->max_receive_size, &local_error);

              if (plain == NULL)
                {
                  decoder->failed = cp_channel_ensure_cp_error (local_error, CP_ERROR_INVALID_ARGUMENT);
                  continue;
                }
              g_bytes_unref (payload);
              payload = plain;
            }
        }
      if (flags & CP_ENVELOPE_FLAG_END_STREAM)
        {
          if (!cp_end_stream_parse (payload, decoder->trailers, &decoder->rpc_error, &local_error))
            {
              decoder->failed = cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL);
              continue;
            }
          decoder->end_seen = TRUE;
          continue;
        }

      *message = cp_channel_decode_message (decoder->response_type, decoder->codec, payload, &local_error);
      if (*message == NULL)
        {
          decoder->failed = local_error;
          continue;
        }
      return TRUE;
    }
}

gboolean
cp_stream_decoder_finish (CpStreamDecoder  *decoder,
                          GError          **error)
{
  if (decoder->failed != NULL)
    {
      g_propagate_error (error, g_error_copy (decoder->failed));
      return FALSE;
    }
  if (!decoder->end_seen)
    {
      if (cp_envelope_reader_get_pending (decoder->reader) > 0)
        {
          GError *local_error = NULL;

          if (!cp_envelope_reader_finish (decoder->reader, &local_error))
            {
              g_propagate_error (error, cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL));
              return FALSE;
            }
        }
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "the response ended without an EndStream message");
      return FALSE;
    }
  if (cp_envelope_reader_get_pending (decoder->reader) > 0)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "the response continued after EndStream");
      return FALSE;
    }
  if (decoder->rpc_error != NULL)
    {
      g_propagate_error (error, g_error_copy (decoder->rpc_error));
      return FALSE;
    }
  return TRUE;
}

gboolean
cp_stream_decoder_has_end_stream (CpStreamDecoder *decoder)
{
  return decoder->end_seen;
}

SoupMessageHeaders *
cp_stream_decoder_get_trailers (CpStreamDecoder *decoder)
{
  return decoder->trailers;
}
