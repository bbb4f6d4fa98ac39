/* cp-json-well-known.c: what the proto3 JSON reader and writer know about
 * the well-known types: the wrappers, the types with a JSON form of their
 * own, and the message class behind an Any's type URL
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-codec-private.h"
#include "cp-json-private.h"
#include "cp-message.h"

gboolean
cp_json_is_wrapper (const ProtobufCMessageDescriptor *desc)
{
  static const char *const names[] = {
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
    "google.protobuf.Int64Value", "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
  };

  if (desc->n_fields != 1 || desc->fields[0].id != 1 ||
      desc->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
      !g_str_has_prefix (desc->name, "google.protobuf."))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (strcmp (desc->name, names[i]) == 0)
      return TRUE;
  return FALSE;
}

gboolean
cp_json_is_named (const ProtobufCMessageDescriptor *desc, const char *name)
{
  return strcmp (desc->name, name) == 0;
}

/* Well-known types whose JSON form is not an object of their fields: inside
 * an Any they go in a "value" member. */
gboolean
cp_json_has_special_form (const ProtobufCMessageDescriptor *desc)
{
  return cp_json_is_wrapper (desc) ||
         cp_json_is_named (desc, "google.protobuf.Any") ||
         cp_json_is_named (desc, "google.protobuf.Struct") ||
         cp_json_is_named (desc, "google.protobuf.Value") ||
         cp_json_is_named (desc, "google.protobuf.ListValue") ||
         cp_json_is_named (desc, "google.protobuf.Duration") ||
         cp_json_is_named (desc, "google.protobuf.Timestamp") ||
         cp_json_is_named (desc, "google.protobuf.FieldMask");
}

/* The descriptor of the message class registered for the type name of an
 * Any's type URL (the part after the last '/'); NULL when unknown. A class
 * is registered once it is initialised (g_type_class_ref / g_type_ensure
 * of the generated type, or any instance). */
const ProtobufCMessageDescriptor *
cp_json_any_descriptor (const char *type_url)
{
  const char *slash = strrchr (type_url, '/');
  const char *name = slash != NULL ? slash + 1 : type_url;
  const ProtobufCMessageDescriptor *desc;
  CpMessageClass *klass;
  GType type;

  type = cp_well_known_type_from_name (name);
  if (type == G_TYPE_INVALID)
    return NULL;
  klass = g_type_class_ref (type);
  desc = cp_message_class_get_descriptor (klass);
  g_type_class_unref (klass);
  return desc;
}

const ProtobufCFieldDescriptor *
cp_json_field_named (const ProtobufCMessageDescriptor *desc, const char *name)
{
  return protobuf_c_message_descriptor_get_field_by_name (desc, name);
}
