/* cp-well-known.c: built-in message classes for protobuf well-known types
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The C structs come from protoc-c run at build time over the installed
 * google/protobuf/{any,empty,struct,wrappers}.proto. Their JSON forms (Empty
 * as `{}`, wrappers as the bare value, Any as `{"@type": ...}`, Struct,
 * Value and ListValue as plain JSON) are handled by full name in the JSON
 * reader and writer (cp-json-reader.c, cp-json-writer.c).
 */
#include <string.h>

#include "cp-well-known.h"
#include "cp-codec-private.h"
#include "any.pb-c.h"
#include "empty.pb-c.h"
#include "struct.pb-c.h"
#include "wrappers.pb-c.h"
#include "cp-error.h"
#include "cp-proto-field-private.h"

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
 * Returns: (transfer full): a new [class@ConnectPlugin.Empty]
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
 * Returns: (transfer full): a new [class@ConnectPlugin.StringValue]
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
 * @self: a [class@ConnectPlugin.StringValue]
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
 * @self: a [class@ConnectPlugin.StringValue]
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
 * Returns: (transfer full): a new [class@ConnectPlugin.BytesValue]
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
 * @self: a [class@ConnectPlugin.BytesValue]
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
 * @self: a [class@ConnectPlugin.BytesValue]
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
 * Returns: (transfer full): a new [class@ConnectPlugin.Int32Value]
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
 * @self: a [class@ConnectPlugin.Int32Value]
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
 * @self: a [class@ConnectPlugin.Int32Value]
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
 * Returns: (transfer full): a new [class@ConnectPlugin.Int64Value]
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
 * @self: a [class@ConnectPlugin.Int64Value]
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
 * @self: a [class@ConnectPlugin.Int64Value]
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
 * Returns: (transfer full): a new [class@ConnectPlugin.BoolValue]
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
 * @self: a [class@ConnectPlugin.BoolValue]
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
 * @self: a [class@ConnectPlugin.BoolValue]
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

/**
 * CpAny:
 *
 * `google.protobuf.Any`: a message of any type, as its type URL
 * (`type.googleapis.com/full.Name`) and its binary encoding. Pack one with
 * [func@ConnectPlugin.Any.pack], and unpack it with [method@ConnectPlugin.Any.unpack], which finds the class
 * through the registry of [class@ConnectPlugin.Message] ([func@ConnectPlugin.Message.type_from_name]): the
 * class must have been initialised, e.g. with g_type_ensure(). Its JSON
 * form is the object of the message with an `"@type"` member (or, for
 * well-known types with a special JSON form, `{"@type": ..., "value": ...}`).
 */
struct _CpAny
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpAny, cp_any, CP_TYPE_MESSAGE)

static void
cp_any_class_init (CpAnyClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__any__descriptor);
}

static void
cp_any_init (CpAny *self)
{
}

/**
 * cp_any_new:
 *
 * Creates an empty `google.protobuf.Any` (no type URL, no value).
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Any]
 */
CpAny *
cp_any_new (void)
{
  return g_object_new (CP_TYPE_ANY, NULL);
}

/**
 * cp_any_pack:
 * @message: the message to pack
 * @error: return location for a [struct@GLib.Error]
 *
 * Packs @message into a `google.protobuf.Any` with the type URL
 * `type.googleapis.com/` followed by the message's full name.
 *
 * Returns: (transfer full) (nullable): a new [class@ConnectPlugin.Any], or %NULL on error
 */
CpAny *
cp_any_pack (CpMessage  *message,
             GError    **error)
{
  g_autoptr(CpAny) any = NULL;
  g_autoptr(GBytes) data = NULL;
  g_autofree char *url = NULL;

  g_return_val_if_fail (CP_IS_MESSAGE (message), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  data = cp_message_serialize (message, CP_CODEC_PROTO, error);
  if (data == NULL)
    return NULL;
  url = g_strconcat ("type.googleapis.com/", cp_message_get_full_name (message), NULL);
  any = cp_any_new ();
  cp_any_set (any, url, data);
  return g_steal_pointer (&any);
}

/**
 * cp_any_unpack:
 * @self: a [class@ConnectPlugin.Any]
 * @error: return location for a [struct@GLib.Error]
 *
 * Decodes the packed message as an instance of the class registered for
 * its type name (the part of the type URL after the last `/`).
 *
 * Returns: (transfer full) (nullable): the message, or %NULL with
 *   %CP_ERROR_INVALID_ARGUMENT when the type is unknown or the value does
 *   not decode
 */
CpMessage *
cp_any_unpack (CpAny   *self,
               GError **error)
{
  const char *name;
  g_autoptr(GBytes) value = NULL;
  GType type;

  g_return_val_if_fail (CP_IS_ANY (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  name = cp_any_get_type_name (self);
  type = cp_well_known_type_from_name (name);
  if (type == G_TYPE_INVALID)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "google.protobuf.Any: no message class for type URL \"%s\"",
                   cp_any_get_type_url (self));
      return NULL;
    }
  value = cp_any_get_value (self);
  return cp_message_new_from_bytes (type, CP_CODEC_PROTO, value, error);
}

/**
 * cp_any_get_type_url:
 * @self: a [class@ConnectPlugin.Any]
 *
 * Gets the type URL, e.g. `type.googleapis.com/kv.v1.GetRequest`.
 *
 * Returns: (transfer none): the type URL (empty when unset)
 */
const char *
cp_any_get_type_url (CpAny *self)
{
  const char *url;

  g_return_val_if_fail (CP_IS_ANY (self), NULL);

  url = WRAPPER (self, Google__Protobuf__Any)->type_url;
  return url != NULL ? url : "";
}

/**
 * cp_any_get_type_name:
 * @self: a [class@ConnectPlugin.Any]
 *
 * Gets the full message name of the type URL: what follows its last `/`.
 *
 * Returns: (transfer none): the full name (empty when unset)
 */
const char *
cp_any_get_type_name (CpAny *self)
{
  const char *url, *slash;

  g_return_val_if_fail (CP_IS_ANY (self), NULL);

  url = cp_any_get_type_url (self);
  slash = strrchr (url, '/');
  return slash != NULL ? slash + 1 : url;
}

/**
 * cp_any_get_value:
 * @self: a [class@ConnectPlugin.Any]
 *
 * Gets the binary encoding of the packed message.
 *
 * Returns: (transfer full): a copy of the value
 */
GBytes *
cp_any_get_value (CpAny *self)
{
  Google__Protobuf__Any *any;

  g_return_val_if_fail (CP_IS_ANY (self), NULL);

  any = WRAPPER (self, Google__Protobuf__Any);
  return g_bytes_new (any->value.data, any->value.len);
}

/**
 * cp_any_set:
 * @self: a [class@ConnectPlugin.Any]
 * @type_url: (nullable): the type URL
 * @value: (nullable): the binary encoding of a message of that type
 *
 * Replaces the type URL and the value (both copied).
 */
void
cp_any_set (CpAny      *self,
            const char *type_url,
            GBytes     *value)
{
  Google__Protobuf__Any *any;
  gsize len = 0;
  gconstpointer data = NULL;

  g_return_if_fail (CP_IS_ANY (self));

  any = WRAPPER (self, Google__Protobuf__Any);
  if (any->type_url != NULL && any->type_url != protobuf_c_empty_string)
    free (any->type_url);
  any->type_url = type_url != NULL && *type_url != '\0'
    ? g_strdup (type_url) : (char *) protobuf_c_empty_string;
  free (any->value.data);
  any->value.data = NULL;
  any->value.len = 0;
  if (value != NULL)
    data = g_bytes_get_data (value, &len);
  if (len > 0)
    {
      any->value.data = g_memdup2 (data, len);
      any->value.len = len;
    }
}

/**
 * CpStruct:
 *
 * `google.protobuf.Struct`: a JSON object. Its JSON form is the object
 * itself; read and write it as JSON ([method@ConnectPlugin.Message.to_json],
 * [method@ConnectPlugin.Message.parse]) or through its `fields` map.
 */
struct _CpStruct
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpStruct, cp_struct, CP_TYPE_MESSAGE)

static void
cp_struct_class_init (CpStructClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__struct__descriptor);
}

static void
cp_struct_init (CpStruct *self)
{
}

/**
 * cp_struct_new:
 *
 * Creates an empty `google.protobuf.Struct`.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Struct]
 */
CpStruct *
cp_struct_new (void)
{
  return g_object_new (CP_TYPE_STRUCT, NULL);
}

/**
 * CpValue:
 *
 * `google.protobuf.Value`: any JSON value (null, number, string, boolean,
 * object or list). Its JSON form is that value.
 */
struct _CpValue
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpValue, cp_value, CP_TYPE_MESSAGE)

static void
cp_value_class_init (CpValueClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__value__descriptor);
}

static void
cp_value_init (CpValue *self)
{
}

/**
 * cp_value_new:
 *
 * Creates a `google.protobuf.Value` with no kind set.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Value]
 */
CpValue *
cp_value_new (void)
{
  return g_object_new (CP_TYPE_VALUE, NULL);
}

/**
 * CpListValue:
 *
 * `google.protobuf.ListValue`: a JSON array. Its JSON form is the array.
 */
struct _CpListValue
{
  CpMessage parent_instance;
};

G_DEFINE_FINAL_TYPE (CpListValue, cp_list_value, CP_TYPE_MESSAGE)

static void
cp_list_value_class_init (CpListValueClass *klass)
{
  cp_message_class_set_descriptor (CP_MESSAGE_CLASS (klass), &google__protobuf__list_value__descriptor);
}

static void
cp_list_value_init (CpListValue *self)
{
}

/**
 * cp_list_value_new:
 *
 * Creates an empty `google.protobuf.ListValue`.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.ListValue]
 */
CpListValue *
cp_list_value_new (void)
{
  return g_object_new (CP_TYPE_LIST_VALUE, NULL);
}

void
cp_well_known_ensure_types (void)
{
  /* The registry is filled in class_init: initialise the classes. */
  const GType types[] = {
    CP_TYPE_EMPTY, CP_TYPE_STRING_VALUE, CP_TYPE_BYTES_VALUE, CP_TYPE_INT32_VALUE,
    CP_TYPE_INT64_VALUE, CP_TYPE_BOOL_VALUE, CP_TYPE_ANY, CP_TYPE_STRUCT,
    CP_TYPE_VALUE, CP_TYPE_LIST_VALUE,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    g_type_class_unref (g_type_class_ref (types[i]));
}

GType
cp_well_known_type_from_name (const char *name)
{
  GType type;

  if (*name == '\0')
    return G_TYPE_INVALID;
  type = cp_message_type_from_name (name);
  if (type == G_TYPE_INVALID && g_str_has_prefix (name, "google.protobuf."))
    {
      cp_well_known_ensure_types ();
      type = cp_message_type_from_name (name);
    }
  return type;
}
