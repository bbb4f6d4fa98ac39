/* cp-codec.c: Connect codecs (binary protobuf, proto3 JSON)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-codec.h"
#include "cp-codec-private.h"
#include "cp-error.h"
#include "cp-proto-field-private.h"

/**
 * cp_codec_to_string:
 * @codec: a [enum@ConnectPlugin.Codec]
 *
 * Gets the codec name used in content types: `proto` or `json`.
 *
 * Returns: (transfer none): the codec name
 */
const char *
cp_codec_to_string (CpCodec codec)
{
  switch (codec)
    {
    case CP_CODEC_PROTO:
      return "proto";
    case CP_CODEC_JSON:
      return "json";
    default:
      g_return_val_if_reached ("proto");
    }
}

/**
 * cp_codec_from_string:
 * @name: a codec name such as `proto` or `json` (ASCII case-insensitive)
 * @out_codec: (out) (optional): return location for the codec
 *
 * Looks up a codec by the name it has in content types.
 *
 * Returns: %TRUE if @name is a known codec
 */
gboolean
cp_codec_from_string (const char *name,
                      CpCodec    *out_codec)
{
  CpCodec codec;

  g_return_val_if_fail (name != NULL, FALSE);

  if (g_ascii_strcasecmp (name, "proto") == 0)
    codec = CP_CODEC_PROTO;
  else if (g_ascii_strcasecmp (name, "json") == 0)
    codec = CP_CODEC_JSON;
  else
    return FALSE;
  if (out_codec)
    *out_codec = codec;
  return TRUE;
}

GBytes *
cp_codec_encode (CpCodec                 codec,
                 const ProtobufCMessage *message,
                 GError                **error)
{
  g_return_val_if_fail (message != NULL, NULL);

  if (codec == CP_CODEC_JSON)
    {
      gsize len;
      char *text = cp_json_encode (message, &len, error);
      if (text == NULL)
        return NULL;
      return g_bytes_new_take (text, len);
    }
  else
    {
      gsize size = protobuf_c_message_get_packed_size (message);
      guint8 *buf = g_malloc (size > 0 ? size : 1);
      gsize packed = protobuf_c_message_pack (message, buf);
      g_assert (packed == size);
      if (size == 0)
        {
          g_free (buf);
          return g_bytes_new (NULL, 0);
        }
      return g_bytes_new_take (buf, size);
    }
}

ProtobufCMessage *
cp_codec_decode (CpCodec                           codec,
                 const ProtobufCMessageDescriptor *descriptor,
                 GBytes                           *data,
                 GError                          **error)
{
  return cp_codec_decode_bounded (codec, descriptor, data, 0, error);
}

ProtobufCMessage *
cp_codec_decode_bounded (CpCodec                           codec,
                         const ProtobufCMessageDescriptor *descriptor,
                         GBytes                           *data,
                         gsize                             max_decoded,
                         GError                          **error)
{
  const guint8 *bytes = NULL;
  gsize len = 0;

  g_return_val_if_fail (descriptor != NULL, NULL);

  if (data != NULL)
    bytes = g_bytes_get_data (data, &len);

  if (codec == CP_CODEC_JSON)
    return cp_json_decode (descriptor, (const char *) bytes, len, error);

  if (len == 0)
    return cp_proto_message_new (descriptor);
  else
    {
      ProtobufCMessage *m;

      /* protobuf-c recurses without a depth limit and does not check UTF-8 */
      if (!cp_proto_prescan (descriptor, bytes, len, max_decoded, error))
        return NULL;
      m = protobuf_c_message_unpack (descriptor, NULL, len, bytes);
      if (m == NULL)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "invalid protobuf message: cannot decode %s", descriptor->name);
          return NULL;
        }
      return m;
    }
}
