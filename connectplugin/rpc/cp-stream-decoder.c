/* cp-stream-decoder.c: decoding of a streaming response, shared by
 * CpResponseStream and CpRequestStream: checks the head, splits the body
 * into envelopes, decompresses and decodes messages, and reads the
 * outcome — Connect's EndStream message; gRPC-Web's trailers frame (flag
 * 0x80); gRPC's HTTP trailers (cp_stream_decoder_set_http_trailers ());
 * for both gRPC protocols, the head of a trailers-only response
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-stream-decoder-private.h"
#include "cp-call-options-private.h"
#include "cp-channel-util-private.h"
#include "cp-compression.h"
#include "cp-envelope-private.h"
#include "cp-error-private.h"
#include "cp-grpc-private.h"

struct _CpStreamDecoder
{
  GType response_type;
  CpCodec codec;
  CpProtocol protocol;
  gsize max_receive_size;
  CpEnvelopeReader *reader;
  CpCompression encoding;
  gboolean end_seen;             /* Connect EndStream, gRPC-Web trailers
                                 * frame, or a trailers-only head */
  gboolean http_trailers_seen;  /* gRPC: the status came in HTTP trailers */
  GError *rpc_error;
  GError *failed;
  SoupMessageHeaders *trailers;
};

CpStreamDecoder *
cp_stream_decoder_new (GType      response_type,
                       CpCodec    codec,
                       CpProtocol protocol,
                       gsize      max_receive_size)
{
  CpStreamDecoder *decoder = g_new0 (CpStreamDecoder, 1);

  decoder->response_type = response_type;
  decoder->codec = codec;
  decoder->protocol = protocol;
  decoder->max_receive_size = max_receive_size;
  decoder->reader = cp_envelope_reader_new (max_receive_size);
  if (protocol == CP_PROTOCOL_GRPC)
    cp_envelope_reader_set_known_flags (decoder->reader, CP_ENVELOPE_FLAG_COMPRESSED);
  else if (protocol == CP_PROTOCOL_GRPC_WEB)
    cp_envelope_reader_set_known_flags (decoder->reader,
                                        CP_ENVELOPE_FLAG_COMPRESSED | CP_GRPC_FLAG_TRAILERS);
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

/* The outcome in @trailers (grpc-status and friends): the call's error
 * into rpc_error, or a protocol error into failed. */
static void
grpc_take_status (CpStreamDecoder    *decoder,
                  SoupMessageHeaders *trailers)
{
  GError *local_error = NULL;

  g_clear_error (&decoder->rpc_error);
  if (!cp_grpc_error_from_trailers (trailers, &decoder->rpc_error, &local_error) &&
      decoder->failed == NULL)
    decoder->failed = local_error;
  else
    g_clear_error (&local_error);
}

/* gRPC and gRPC-Web: application/grpc[-web][+codec] (no suffix: proto),
 * the messages' encoding in grpc-encoding; a head carrying grpc-status is
 * a trailers-only response (no body follows), the outcome itself. */
static gboolean
grpc_head (CpStreamDecoder     *decoder,
           guint                status,
           const char          *reason,
           SoupMessageHeaders  *headers,
           GError             **error)
{
  const char *prefix = decoder->protocol == CP_PROTOCOL_GRPC ? "application/grpc"
                                                              : "application/grpc-web";
  const char *codec_name = cp_codec_to_string (decoder->codec);
  g_autofree char *type = NULL;
  const char *suffix;

  /* No usable gRPC answer: the HTTP status says what happened (the gRPC
   * spec's mapping, as for Connect). */
  if (status != SOUP_STATUS_OK)
    {
      g_set_error (error, CP_ERROR, cp_error_code_from_http_status (status),
                   "HTTP %u %s", status, reason ? reason : "");
      return FALSE;
    }
  type = cp_channel_media_type (headers);
  if (type == NULL || !g_str_has_prefix (type, prefix) ||
      (type[strlen (prefix)] != '\0' && type[strlen (prefix)] != '+'))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNKNOWN,
                   "unexpected response content type \"%s\"", type ? type : "");
      return FALSE;
    }
  suffix = type + strlen (prefix);
  if (suffix[0] == '\0' ? decoder->codec != CP_CODEC_PROTO : strcmp (suffix + 1, codec_name) != 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "response content type \"%s\" does not match the request codec \"%s\"",
                   type, codec_name);
      return FALSE;
    }
  if (soup_message_headers_get_one (headers, "grpc-status") != NULL)
    {
      /* Trailers-only: the head's metadata are the trailers. */
      cp_headers_copy_into (decoder->trailers, headers);
      grpc_take_status (decoder, decoder->trailers);
      decoder->end_seen = TRUE;
      return TRUE;
    }
  return cp_channel_parse_encoding (headers, "grpc-encoding", &decoder->encoding, error);
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

  if (decoder->protocol != CP_PROTOCOL_CONNECT)
    return grpc_head (decoder, status, reason, headers, error);
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
      if (decoder->protocol == CP_PROTOCOL_GRPC_WEB && (flags & CP_GRPC_FLAG_TRAILERS))
        {
          /* gRPC-Web's trailers frame: the outcome, last in the body. */
          if (!cp_grpc_web_trailers_decode (payload, decoder->trailers, &local_error))
            {
              decoder->failed = cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL);
              continue;
            }
          grpc_take_status (decoder, decoder->trailers);
          decoder->end_seen = TRUE;
          continue;
        }
      if (decoder->protocol == CP_PROTOCOL_CONNECT && (flags & CP_ENVELOPE_FLAG_END_STREAM))
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
  if (decoder->protocol == CP_PROTOCOL_GRPC && !decoder->end_seen)
    {
      /* The status comes in the HTTP trailers, after the last message. */
      if (cp_envelope_reader_get_pending (decoder->reader) > 0)
        {
          GError *local_error = NULL;

          if (!cp_envelope_reader_finish (decoder->reader, &local_error))
            {
              g_propagate_error (error, cp_channel_ensure_cp_error (local_error, CP_ERROR_INTERNAL));
              return FALSE;
            }
        }
      if (!decoder->http_trailers_seen)
        {
          /* A body cut short of its trailers: gRPC's "missing status". */
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                               "protocol error: no grpc-status in the trailers");
          return FALSE;
        }
      if (decoder->rpc_error != NULL)
        {
          g_propagate_error (error, g_error_copy (decoder->rpc_error));
          return FALSE;
        }
      return TRUE;
    }
  if (!decoder->end_seen)
    {
      if (decoder->protocol == CP_PROTOCOL_GRPC_WEB)
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
                               "protocol error: gRPC-Web response without trailers");
          return FALSE;
        }
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

void
cp_stream_decoder_set_http_trailers (CpStreamDecoder    *decoder,
                                     SoupMessageHeaders *trailers)
{
  /* Only gRPC puts the outcome there, and not after a trailers-only head. */
  if (decoder->protocol != CP_PROTOCOL_GRPC || decoder->end_seen || trailers == NULL ||
      decoder->http_trailers_seen)
    return;
  decoder->http_trailers_seen = TRUE;
  cp_headers_copy_into (decoder->trailers, trailers);
  grpc_take_status (decoder, decoder->trailers);
}

gboolean
cp_stream_decoder_has_end_stream (CpStreamDecoder *decoder)
{
  return decoder->end_seen || decoder->http_trailers_seen;
}

SoupMessageHeaders *
cp_stream_decoder_get_trailers (CpStreamDecoder *decoder)
{
  return decoder->trailers;
}
