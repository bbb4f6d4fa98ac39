/* cp-codec-private.h: descriptor-driven codecs over protobuf-c messages
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include <protobuf-c/protobuf-c.h>
#include "cp-codec.h"
#include "cp-message.h"

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

/* As cp_codec_decode(), refusing binary input whose estimated decoded
 * size (cp_proto_prescan()) passes @max_decoded (0: no bound) with
 * CP_ERROR_RESOURCE_EXHAUSTED. */
ProtobufCMessage *cp_codec_decode_bounded (CpCodec                           codec,
                                           const ProtobufCMessageDescriptor *descriptor,
                                           GBytes                           *data,
                                           gsize                             max_decoded,
                                           GError                          **error);

/* cp_message_new_from_bytes() with cp_codec_decode_bounded(). */
CpMessage        *cp_message_new_from_bytes_bounded (GType    message_type,
                                                     CpCodec  codec,
                                                     GBytes  *data,
                                                     gsize    max_decoded,
                                                     GError **error);

/* proto3 JSON mapping (https://protobuf.dev/programming-guides/json/):
 * cp-json-writer.c and cp-json-reader.c. The JsonNode forms go through
 * the text form. */
JsonNode         *cp_json_from_message (const ProtobufCMessage           *message,
                                        GError                          **error);
ProtobufCMessage *cp_json_to_message   (const ProtobufCMessageDescriptor *descriptor,
                                        JsonNode                         *node,
                                        GError                          **error);

/* Maximum message nesting accepted by the decoders (binary and JSON). */
#define CP_MESSAGE_MAX_DEPTH 100

/* JSON text directly (no JsonNode in between): compact proto3 JSON. */
char             *cp_json_encode       (const ProtobufCMessage           *message,
                                        gsize                            *out_len,
                                        GError                          **error);
ProtobufCMessage *cp_json_decode       (const ProtobufCMessageDescriptor *descriptor,
                                        const char                       *data,
                                        gsize                             len,
                                        GError                          **error);

/* Checks binary @data against @descriptor before protobuf-c unpacks it
 * (cp-proto-prescan.c):
 * nesting depth (CP_MESSAGE_MAX_DEPTH), wire well-formedness, UTF-8 of
 * string fields (failure → CP_ERROR_INVALID_ARGUMENT), and, when
 * @max_decoded > 0, that the memory protobuf-c will allocate (estimated
 * per field: tiny unknown fields cost ~30 times their wire size) stays
 * within @max_decoded (failure → CP_ERROR_RESOURCE_EXHAUSTED). */
gboolean          cp_proto_prescan     (const ProtobufCMessageDescriptor *descriptor,
                                        const guint8                     *data,
                                        gsize                             len,
                                        gsize                             max_decoded,
                                        GError                          **error);

/* Initialises the built-in well-known classes (CpEmpty, CpAny, ...) so
 * that cp_message_type_from_name() finds them (cp-well-known.c). */
void              cp_well_known_ensure_types (void);

/* cp_message_type_from_name(), initialising the built-in well-known
 * classes first when @name is a google.protobuf one; G_TYPE_INVALID for
 * an empty or unknown name (cp-well-known.c). */
GType             cp_well_known_type_from_name (const char *name);

G_END_DECLS
