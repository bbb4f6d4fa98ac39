/* cp-well-known.c: built-in message classes for protobuf well-known types
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The C structs come from protoc-c run at build time over the installed
 * google/protobuf/{empty,wrappers}.proto. Their JSON forms (Empty as `{}`,
 * wrappers as the bare value) are handled by cp-json.c by full name.
 */
#include <string.h>

#include "cp-well-known.h"
#include "cp-codec-private.h"
#include "empty.pb-c.h"
#include "wrappers.pb-c.h"

/**
 * CpEmpty:
 *
 * `google.protobuf.Empty`: a message without fields, the request or
 * response of RPCs that need none. Its JSON form is `{}`.
 */
struct _CpEmpty
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpEmpty, cp_empty, CP_TYPE_MESSAGE)

static void
cp_empty_class_init (CpEmptyClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__empty__descriptor);
}

static void
cp_empty_init (CpEmpty *self)
{
}

/**
 * cp_empty_new:
 *
 * Creates a `google.protobuf.Empty` message.
 *
 * Returns: (transfer full): a new #CpEmpty
 */
CpEmpty *
cp_empty_new (void)
{
  return g_object_new (CP_TYPE_EMPTY, NULL);
}

/* The wrapper C structs all start with the ProtobufCMessage header followed
 * by `value`. */
#define WRAPPER(self, CType) ((CType *) cp_message_get_c_message (CP_MESSAGE (self)))

/**
 * CpStringValue:
 *
 * `google.protobuf.StringValue`: a string with presence. Its JSON form is
 * the bare string.
 */
struct _CpStringValue
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpStringValue, cp_string_value, CP_TYPE_MESSAGE)

static void
cp_string_value_class_init (CpStringValueClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__string_value__descriptor);
}

static void
cp_string_value_init (CpStringValue *self)
{
}

/**
 * cp_string_value_new:
 * @value: (nullable): the string, or %NULL for ""
 *
 * Creates a `google.protobuf.StringValue` message.
 *
 * Returns: (transfer full): a new #CpStringValue
 */
CpStringValue *
cp_string_value_new (const char *value)
{
  CpStringValue *self = g_object_new (CP_TYPE_STRING_VALUE, NULL);
  cp_string_value_set_value (self, value);
  return self;
}

/**
 * cp_string_value_get_value:
 * @self: a #CpStringValue
 *
 * Gets the wrapped string.
 *
 * Returns: (transfer none): the string (never %NULL)
 */
const char *
cp_string_value_get_value (CpStringValue *self)
{
  const char *s;

  g_return_val_if_fail (CP_IS_STRING_VALUE (self), NULL);

  s = WRAPPER (self, Google__Protobuf__StringValue)->value;
  return s ? s : "";
}

/**
 * cp_string_value_set_value:
 * @self: a #CpStringValue
 * @value: (nullable): the string (valid UTF-8), or %NULL for ""
 *
 * Sets the wrapped string.
 */
void
cp_string_value_set_value (CpStringValue *self,
                           const char    *value)
{
  ProtobufCMessage *m;
  const ProtobufCFieldDescriptor *f;
  char *copy;

  g_return_if_fail (CP_IS_STRING_VALUE (self));
  g_return_if_fail (value == NULL || g_utf8_validate (value, -1, NULL));

  m = cp_message_get_c_message (CP_MESSAGE (self));
  f = &m->descriptor->fields[0];
  copy = g_strdup (value ? value : "");
  cp_proto_field_set (m, f, &copy);
}

/**
 * CpBytesValue:
 *
 * `google.protobuf.BytesValue`: bytes with presence. Its JSON form is the
 * bare base64 string.
 */
struct _CpBytesValue
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpBytesValue, cp_bytes_value, CP_TYPE_MESSAGE)

static void
cp_bytes_value_class_init (CpBytesValueClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__bytes_value__descriptor);
}

static void
cp_bytes_value_init (CpBytesValue *self)
{
}

/**
 * cp_bytes_value_new:
 * @value: (nullable): the bytes, or %NULL for none
 *
 * Creates a `google.protobuf.BytesValue` message.
 *
 * Returns: (transfer full): a new #CpBytesValue
 */
CpBytesValue *
cp_bytes_value_new (GBytes *value)
{
  CpBytesValue *self = g_object_new (CP_TYPE_BYTES_VALUE, NULL);
  cp_bytes_value_set_value (self, value);
  return self;
}

/**
 * cp_bytes_value_get_value:
 * @self: a #CpBytesValue
 *
 * Gets a copy of the wrapped bytes.
 *
 * Returns: (transfer full): the bytes (possibly empty, never %NULL)
 */
GBytes *
cp_bytes_value_get_value (CpBytesValue *self)
{
  Google__Protobuf__BytesValue *m;

  g_return_val_if_fail (CP_IS_BYTES_VALUE (self), NULL);

  m = WRAPPER (self, Google__Protobuf__BytesValue);
  return g_bytes_new (m->value.data, m->value.len);
}

/**
 * cp_bytes_value_set_value:
 * @self: a #CpBytesValue
 * @value: (nullable): the bytes, or %NULL for none
 *
 * Sets the wrapped bytes (copied).
 */
void
cp_bytes_value_set_value (CpBytesValue *self,
                          GBytes       *value)
{
  ProtobufCMessage *m;
  ProtobufCBinaryData bin = { 0, NULL };

  g_return_if_fail (CP_IS_BYTES_VALUE (self));

  m = cp_message_get_c_message (CP_MESSAGE (self));
  if (value != NULL && g_bytes_get_size (value) > 0)
    {
      bin.len = g_bytes_get_size (value);
      bin.data = g_memdup2 (g_bytes_get_data (value, NULL), bin.len);
    }
  cp_proto_field_set (m, &m->descriptor->fields[0], &bin);
}

/**
 * CpInt32Value:
 *
 * `google.protobuf.Int32Value`: a 32-bit integer with presence. Its JSON
 * form is the bare number.
 */
struct _CpInt32Value
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpInt32Value, cp_int32_value, CP_TYPE_MESSAGE)

static void
cp_int32_value_class_init (CpInt32ValueClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__int32_value__descriptor);
}

static void
cp_int32_value_init (CpInt32Value *self)
{
}

/**
 * cp_int32_value_new:
 * @value: the number
 *
 * Creates a `google.protobuf.Int32Value` message.
 *
 * Returns: (transfer full): a new #CpInt32Value
 */
CpInt32Value *
cp_int32_value_new (gint32 value)
{
  CpInt32Value *self = g_object_new (CP_TYPE_INT32_VALUE, NULL);
  cp_int32_value_set_value (self, value);
  return self;
}

/**
 * cp_int32_value_get_value:
 * @self: a #CpInt32Value
 *
 * Gets the wrapped number.
 *
 * Returns: the number
 */
gint32
cp_int32_value_get_value (CpInt32Value *self)
{
  g_return_val_if_fail (CP_IS_INT32_VALUE (self), 0);

  return WRAPPER (self, Google__Protobuf__Int32Value)->value;
}

/**
 * cp_int32_value_set_value:
 * @self: a #CpInt32Value
 * @value: the number
 *
 * Sets the wrapped number.
 */
void
cp_int32_value_set_value (CpInt32Value *self,
                          gint32        value)
{
  g_return_if_fail (CP_IS_INT32_VALUE (self));

  WRAPPER (self, Google__Protobuf__Int32Value)->value = value;
}

/**
 * CpInt64Value:
 *
 * `google.protobuf.Int64Value`: a 64-bit integer with presence. Its JSON
 * form is the number as a decimal string.
 */
struct _CpInt64Value
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpInt64Value, cp_int64_value, CP_TYPE_MESSAGE)

static void
cp_int64_value_class_init (CpInt64ValueClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__int64_value__descriptor);
}

static void
cp_int64_value_init (CpInt64Value *self)
{
}

/**
 * cp_int64_value_new:
 * @value: the number
 *
 * Creates a `google.protobuf.Int64Value` message.
 *
 * Returns: (transfer full): a new #CpInt64Value
 */
CpInt64Value *
cp_int64_value_new (gint64 value)
{
  CpInt64Value *self = g_object_new (CP_TYPE_INT64_VALUE, NULL);
  cp_int64_value_set_value (self, value);
  return self;
}

/**
 * cp_int64_value_get_value:
 * @self: a #CpInt64Value
 *
 * Gets the wrapped number.
 *
 * Returns: the number
 */
gint64
cp_int64_value_get_value (CpInt64Value *self)
{
  g_return_val_if_fail (CP_IS_INT64_VALUE (self), 0);

  return WRAPPER (self, Google__Protobuf__Int64Value)->value;
}

/**
 * cp_int64_value_set_value:
 * @self: a #CpInt64Value
 * @value: the number
 *
 * Sets the wrapped number.
 */
void
cp_int64_value_set_value (CpInt64Value *self,
                          gint64        value)
{
  g_return_if_fail (CP_IS_INT64_VALUE (self));

  WRAPPER (self, Google__Protobuf__Int64Value)->value = value;
}

/**
 * CpBoolValue:
 *
 * `google.protobuf.BoolValue`: a boolean with presence. Its JSON form is
 * the bare `true` or `false`.
 */
struct _CpBoolValue
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpBoolValue, cp_bool_value, CP_TYPE_MESSAGE)

static void
cp_bool_value_class_init (CpBoolValueClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__bool_value__descriptor);
}

static void
cp_bool_value_init (CpBoolValue *self)
{
}

/**
 * cp_bool_value_new:
 * @value: the boolean
 *
 * Creates a `google.protobuf.BoolValue` message.
 *
 * Returns: (transfer full): a new #CpBoolValue
 */
CpBoolValue *
cp_bool_value_new (gboolean value)
{
  CpBoolValue *self = g_object_new (CP_TYPE_BOOL_VALUE, NULL);
  cp_bool_value_set_value (self, value);
  return self;
}

/**
 * cp_bool_value_get_value:
 * @self: a #CpBoolValue
 *
 * Gets the wrapped boolean.
 *
 * Returns: the boolean
 */
gboolean
cp_bool_value_get_value (CpBoolValue *self)
{
  g_return_val_if_fail (CP_IS_BOOL_VALUE (self), FALSE);

  return WRAPPER (self, Google__Protobuf__BoolValue)->value;
}

/**
 * cp_bool_value_set_value:
 * @self: a #CpBoolValue
 * @value: the boolean
 *
 * Sets the wrapped boolean.
 */
void
cp_bool_value_set_value (CpBoolValue *self,
                         gboolean     value)
{
  g_return_if_fail (CP_IS_BOOL_VALUE (self));

  WRAPPER (self, Google__Protobuf__BoolValue)->value = !!value;
}
