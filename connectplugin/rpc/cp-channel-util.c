/* cp-channel-util.c: response checks and error helpers shared by the
 * channel's units: unary calls (cp-channel-unary.c), call settings and the
 * streaming response decoder
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-channel-util-private.h"
#include "cp-call-options-private.h"
#include "cp-channel-private.h"

/* Gives a decoding/decompression error a Connect code (default @code). */
GError *
cp_channel_ensure_cp_error (GError  *error,
                            CpError  code)
{
  GError *ret;

  if (error->domain == CP_ERROR)
    return error;
  ret = g_error_new_literal (CP_ERROR, code, error->message);
  g_error_free (error);
  return ret;
}

/* Lower-cased media type without parameters; NULL when absent. */
char *
cp_channel_media_type (SoupMessageHeaders *headers)
{
  const char *value = soup_message_headers_get_one (headers, "Content-Type");
  const char *semi;
  g_autofree char *type = NULL;

  if (value == NULL)
    return NULL;
  semi = strchr (value, ';');
  type = semi ? g_strndup (value, semi - value) : g_strdup (value);
  g_strstrip (type);
  return g_ascii_strdown (type, -1);
}

/* Reads a Content-Encoding-like header: absent/empty/identity → identity. */
gboolean
cp_channel_parse_encoding (SoupMessageHeaders  *headers,
                           const char          *name,
                           CpCompression       *out,
                           GError             **error)
{
  const char *value = soup_message_headers_get_one (headers, name);
  g_autofree char *trimmed = NULL;

  *out = CP_COMPRESSION_IDENTITY;
  if (value == NULL)
    return TRUE;
  trimmed = g_strstrip (g_strdup (value));
  if (*trimmed == '\0' || g_ascii_strcasecmp (trimmed, "identity") == 0)
    return TRUE;
  if (!cp_compression_from_string (trimmed, out))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "unknown compression \"%s\" in the response", trimmed);
      return FALSE;
    }
  return TRUE;
}

CpMessage *
cp_channel_decode_message (GType     type,
                           CpCodec   codec,
                           GBytes   *data,
                           GError  **error)
{
  GError *local_error = NULL;
  CpMessage *message;

  if (g_bytes_get_size (data) == 0 && codec == CP_CODEC_PROTO)
    return cp_message_new (type);

  message = cp_message_new_from_bytes (type, codec, data, &local_error);
  if (message == NULL)
    {
      g_propagate_error (error, cp_channel_ensure_cp_error (local_error, CP_ERROR_INVALID_ARGUMENT));
      return NULL;
    }
  return message;
}

void
cp_channel_error_set_metadata (GError             *error,
                               SoupMessageHeaders *headers,
                               SoupMessageHeaders *trailers)
{
  g_autoptr(SoupMessageHeaders) metadata = NULL;

  if (error == NULL || error->domain != CP_ERROR)
    return;
  if (headers == NULL && trailers == NULL)
    return;
  metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  cp_headers_copy_into (metadata, headers);
  cp_headers_copy_into (metadata, trailers);
  cp_error_set_metadata (error, metadata);
}

gboolean
cp_channel_protocol_usable (CpChannel   *channel,
                            CpProtocol   protocol,
                            GError     **error)
{
  if (protocol == CP_PROTOCOL_GRPC && cp_channel_get_h2_client (channel) == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                           "the client speaks gRPC over HTTP/2 only (CpChannel:http-version)");
      return FALSE;
    }
  return TRUE;
}
