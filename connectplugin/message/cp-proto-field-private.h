/* cp-proto-field-private.h: field access by protobuf-c descriptor
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <protobuf-c/protobuf-c.h>

G_BEGIN_DECLS

/* The member at byte offset @off of message @m (ProtobufCFieldDescriptor's
 * offset and quantifier_offset). */
#define CP_PROTO_MEMBER(m, off)  ((void *) (((guint8 *) (m)) + (off)))
#define CP_PROTO_CMEMBER(m, off) ((const void *) (((const guint8 *) (m)) + (off)))

/* One value of a field in its C storage type: the member to use follows
 * the field's ProtobufCType (cp_proto_type_size() bytes of it are copied
 * in and out of messages). Pointers in it are malloc'd and owned. */
typedef union {
  int32_t i32;
  uint32_t u32;
  int64_t i64;
  uint64_t u64;
  float f;
  double d;
  protobuf_c_boolean b;
  int e;
  char *s;
  ProtobufCBinaryData bin;
  ProtobufCMessage *m;
} CpProtoValue;

/* The size of one value of @type in a message (or a repeated array). */
gsize             cp_proto_type_size    (ProtobufCType type);

/* A new default message of @descriptor, malloc'd (free with
 * protobuf_c_message_free_unpacked (m, NULL)). */
ProtobufCMessage *cp_proto_message_new  (const ProtobufCMessageDescriptor *descriptor);

/* lowerCamelCase JSON name of a proto field name ("foo_bar" → "fooBar"). */
char             *cp_json_field_name    (const char *proto_name);

/* The field named @name_or_json_name by its proto name or its JSON name. */
const ProtobufCFieldDescriptor *
                  cp_proto_field_lookup (const ProtobufCMessageDescriptor *descriptor,
                                         const char                       *name_or_json_name);
/* Is @field a map<K,V> field? (protobuf-c keeps no flag for it) */
gboolean          cp_proto_field_is_map (const ProtobufCMessageDescriptor *parent,
                                         const ProtobufCFieldDescriptor   *field);
/* Would protobuf-c put @field on the wire? JSON writes exactly those. */
gboolean          cp_proto_field_is_set (const ProtobufCMessage           *message,
                                         const ProtobufCFieldDescriptor   *field);
/* Frees whatever @field holds and resets it to its default. */
void              cp_proto_field_clear  (ProtobufCMessage                 *message,
                                         const ProtobufCFieldDescriptor   *field);
/* Stores the value @value points to (the field's C storage type, e.g. a
 * CpProtoValue) into singular @field, taking ownership of what it holds
 * (strings, bytes, messages); clears the other members of its oneof. */
void              cp_proto_field_set    (ProtobufCMessage                 *message,
                                         const ProtobufCFieldDescriptor   *field,
                                         gconstpointer                     value);
/* Takes ownership of @elements (a GArray of the element C type). */
void              cp_proto_field_set_repeated (ProtobufCMessage               *message,
                                               const ProtobufCFieldDescriptor *field,
                                               GArray                         *elements);

/* Frees what @value (of @field's type) owns, unless it is @field's
 * default, and resets the pointer in it. */
void              cp_proto_value_free   (const ProtobufCFieldDescriptor   *field,
                                         CpProtoValue                     *value);
/* Frees the elements of @elements (as collected for @field) and the array. */
void              cp_proto_field_free_elements (const ProtobufCFieldDescriptor *field,
                                                GArray                         *elements);

G_END_DECLS
