/* cp-codec-private.h: descriptor-driven codecs over protobuf-c messages
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <protobuf-c/protobuf-c.h>
#include "cp-codec.h"

G_BEGIN_DECLS

/* All ProtobufCMessage memory is owned through protobuf-c's default
 * allocator (malloc/free): free with protobuf_c_message_free_unpacked (m, NULL). */

/* Encodes @message with @codec. JSON is compact proto3 JSON. */
GBytes           *cp_codec_encode (CpCodec                           codec,
                                   const ProtobufCMessage           *message,
                                   GError                          **error);

/* Decodes @data (may be empty) as @descriptor. Bad input →
 * CP_ERROR_INVALID_ARGUMENT. Returns a newly allocated message. */
ProtobufCMessage *cp_codec_decode (CpCodec                           codec,
                                   const ProtobufCMessageDescriptor *descriptor,
                                   GBytes                           *data,
                                   GError                          **error);

/* proto3 JSON mapping (see connect-protocol.md §11). */
JsonNode         *cp_json_from_message (const ProtobufCMessage           *message,
                                        GError                          **error);
ProtobufCMessage *cp_json_to_message   (const ProtobufCMessageDescriptor *descriptor,
                                        JsonNode                         *node,
                                        GError                          **error);

/* lowerCamelCase JSON name of a proto field name ("foo_bar" → "fooBar"). */
char             *cp_json_field_name   (const char *proto_name);

G_END_DECLS
