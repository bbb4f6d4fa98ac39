/* cp-message.c: GObject base class over a protobuf-c message
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include "cp-message.h"
#include "cp-codec-private.h"
#include "cp-error.h"
#include "cp-proto-field-private.h"
#include "cp-well-known.h"

/**
 * CpMessage:
 *
 * A protobuf message as a GObject.
 *
 * Each subclass is bound to one protobuf-c message descriptor (see
 * [method@ConnectPlugin.MessageClass.set_descriptor]) and owns one instance of the
 * corresponding C struct. Messages can be serialized to and parsed from
 * the binary protobuf encoding and the proto3 JSON mapping, compared and
 * copied, and their fields can be read and written by name with
 * [method@ConnectPlugin.Message.get_field] and [method@ConnectPlugin.Message.set_field], which is how bindings
 * use messages without generated accessors.
 *
 * Subclasses register their fully-qualified protobuf name, so the GType of
 * a message can be found with [func@ConnectPlugin.Message.type_from_name]. The library
 * ships subclasses for `google.protobuf.Empty` and the common wrapper
 * types, see [class@ConnectPlugin.Empty] and [class@ConnectPlugin.StringValue].
 */

typedef struct
{
  ProtobufCMessage *c_message;
} CpMessagePrivate;

G_DEFINE_TYPE_WITH_PRIVATE (CpMessage, cp_message, G_TYPE_OBJECT)

static void
c_message_free (ProtobufCMessage *m)
{
  protobuf_c_message_free_unpacked (m, NULL);
}

static GMutex registry_lock;
static GHashTable *registry;  /* full name → GType */

static const ProtobufCMessageDescriptor *
message_descriptor (CpMessage *self)
{
  return CP_MESSAGE_GET_CLASS (self)->descriptor;
}

/* The C message is created in constructed (instance init runs with the
 * parent class, which has no descriptor) or on first use. */
static ProtobufCMessage *
ensure_c_message (CpMessage *self)
{
  CpMessagePrivate *priv = cp_message_get_instance_private (self);

  if (priv->c_message == NULL && message_descriptor (self) != NULL)
    priv->c_message = cp_proto_message_new (message_descriptor (self));
  return priv->c_message;
}

/* The C message cp_message_new_take () is making a message for, on this
 * thread: a message of its type being constructed meanwhile makes no
 * default one (only to be freed when the C message is set). Any other
 * such message, made on the way, makes its own on first use. */
static _Thread_local const ProtobufCMessageDescriptor *taking;

static void
cp_message_constructed (GObject *object)
{
  CpMessage *self = CP_MESSAGE (object);

  G_OBJECT_CLASS (cp_message_parent_class)->constructed (object);
  if (taking == NULL || taking != message_descriptor (self))
    ensure_c_message (self);
}

static void
cp_message_finalize (GObject *object)
{
  CpMessagePrivate *priv = cp_message_get_instance_private (CP_MESSAGE (object));

  g_clear_pointer (&priv->c_message, c_message_free);

  G_OBJECT_CLASS (cp_message_parent_class)->finalize (object);
}

static void
cp_message_class_init (CpMessageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_message_constructed;
  object_class->finalize = cp_message_finalize;
}

static void
cp_message_init (CpMessage *self)
{
}

/**
 * cp_message_class_set_descriptor: (skip)
 * @klass: a [struct@ConnectPlugin.MessageClass]
 * @descriptor: (type gpointer): the `const ProtobufCMessageDescriptor *` of the message
 *
 * Binds a message class to its protobuf-c descriptor. Call it from the
 * class_init function of every subclass. This also registers the
 * descriptor's full name for [func@ConnectPlugin.Message.type_from_name]; the first class
 * registered for a name keeps it.
 */
void
cp_message_class_set_descriptor (CpMessageClass *klass,
                                 gconstpointer   descriptor)
{
  const ProtobufCMessageDescriptor *desc = descriptor;
  GType type;

  g_return_if_fail (CP_IS_MESSAGE_CLASS (klass));
  g_return_if_fail (desc != NULL && desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);

  klass->descriptor = desc;
  type = G_TYPE_FROM_CLASS (klass);

  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_hash_table_new (g_str_hash, g_str_equal);
  if (!g_hash_table_contains (registry, desc->name))
    g_hash_table_insert (registry, (gpointer) desc->name, GSIZE_TO_POINTER (type));
  g_mutex_unlock (&registry_lock);
}

/**
 * cp_message_class_get_descriptor: (skip)
 * @klass: a [struct@ConnectPlugin.MessageClass]
 *
 * Gets the protobuf-c descriptor bound to a message class.
 *
 * Returns: (nullable): the `const ProtobufCMessageDescriptor *`
 */
gconstpointer
cp_message_class_get_descriptor (CpMessageClass *klass)
{
  g_return_val_if_fail (CP_IS_MESSAGE_CLASS (klass), NULL);

  return klass->descriptor;
}

static GType
registry_lookup (const char *full_name)
{
  GType type = G_TYPE_INVALID;

  g_mutex_lock (&registry_lock);
  if (registry != NULL)
    type = GPOINTER_TO_SIZE (g_hash_table_lookup (registry, full_name));
  g_mutex_unlock (&registry_lock);
  return type;
}

static void
ensure_builtin_types (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      GType types[] = {
        CP_TYPE_EMPTY, CP_TYPE_STRING_VALUE, CP_TYPE_BYTES_VALUE,
        CP_TYPE_INT32_VALUE, CP_TYPE_INT64_VALUE, CP_TYPE_BOOL_VALUE,
      };
      /* class_init registers the name; the classes stay referenced */
      for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
        g_type_class_ref (types[i]);
      g_once_init_leave (&once, 1);
    }
}

static void
ref_subclasses (GType parent)
{
  guint n = 0;
  g_autofree GType *children = g_type_children (parent, &n);

  for (guint i = 0; i < n; i++)
    {
      /* referencing a class runs its class_init, which registers it */
      gpointer klass = g_type_class_ref (children[i]);
      ref_subclasses (children[i]);
      g_type_class_unref (klass);
    }
}

/**
 * cp_message_type_from_name:
 * @full_name: a fully-qualified protobuf message name, e.g. `google.protobuf.Empty`
 *
 * Finds the message class registered for a protobuf message name.
 *
 * Returns: the [alias@GObject.Type], or %G_TYPE_INVALID if no class is registered
 */
GType
cp_message_type_from_name (const char *full_name)
{
  GType type;

  g_return_val_if_fail (full_name != NULL, G_TYPE_INVALID);

  ensure_builtin_types ();
  type = registry_lookup (full_name);
  if (type == G_TYPE_INVALID)
    {
      /* classes register when first initialised: initialise the others */
      ref_subclasses (CP_TYPE_MESSAGE);
      type = registry_lookup (full_name);
    }
  return type;
}

static GType
type_for_descriptor (const ProtobufCMessageDescriptor *desc)
{
  GType type;

  ensure_builtin_types ();
  type = registry_lookup (desc->name);
  if (type == G_TYPE_INVALID)
    type = cp_message_type_from_name (desc->name);
  return type;
}

static gboolean
check_message_type (GType message_type)
{
  g_autoptr(GTypeClass) klass = NULL;

  g_return_val_if_fail (g_type_is_a (message_type, CP_TYPE_MESSAGE), FALSE);

  klass = g_type_class_ref (message_type);
  if (((CpMessageClass *) klass)->descriptor == NULL)
    {
      g_critical ("%s has no protobuf descriptor (see cp_message_class_set_descriptor())",
                  g_type_name (message_type));
      return FALSE;
    }
  return TRUE;
}

/**
 * cp_message_new:
 * @message_type: a subtype of [class@ConnectPlugin.Message] bound to a descriptor
 *
 * Creates a message of @message_type with every field at its default.
 *
 * Returns: (transfer full): a new message
 */
CpMessage *
cp_message_new (GType message_type)
{
  if (!check_message_type (message_type))
    return NULL;
  return g_object_new (message_type, NULL);
}

/**
 * cp_message_new_take: (skip)
 * @message_type: a subtype of [class@ConnectPlugin.Message] bound to a descriptor
 * @c_message: (transfer full): a `ProtobufCMessage *` of the class's
 *   descriptor, allocated with protobuf-c's default allocator
 *
 * Wraps a protobuf-c message.
 *
 * Returns: (transfer full): a new message owning @c_message
 */
CpMessage *
cp_message_new_take (GType    message_type,
                     gpointer c_message)
{
  CpMessage *self;

  g_return_val_if_fail (c_message != NULL, NULL);
  if (!check_message_type (message_type))
    return NULL;

  taking = ((ProtobufCMessage *) c_message)->descriptor;
  self = g_object_new (message_type, NULL);
  taking = NULL;
  cp_message_take_c_message (self, c_message);
  return self;
}

/**
 * cp_message_new_from_bytes:
 * @message_type: a subtype of [class@ConnectPlugin.Message] bound to a descriptor
 * @codec: the encoding of @data
 * @data: the encoded message (may be empty for %CP_CODEC_PROTO)
 * @error: return location for a [struct@GLib.Error]
 *
 * Decodes a message. Malformed input gives %CP_ERROR_INVALID_ARGUMENT.
 *
 * Returns: (transfer full) (nullable): a new message, or %NULL on error
 */
CpMessage *
cp_message_new_from_bytes (GType    message_type,
                           CpCodec  codec,
                           GBytes  *data,
                           GError **error)
{
  return cp_message_new_from_bytes_bounded (message_type, codec, data, 0, error);
}

CpMessage *
cp_message_new_from_bytes_bounded (GType    message_type,
                                   CpCodec  codec,
                                   GBytes  *data,
                                   gsize    max_decoded,
                                   GError **error)
{
  g_autoptr(GTypeClass) klass = NULL;
  ProtobufCMessage *c_message;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  if (!check_message_type (message_type))
    return NULL;

  klass = g_type_class_ref (message_type);
  c_message = cp_codec_decode_bounded (codec, ((CpMessageClass *) klass)->descriptor, data,
                                       max_decoded, error);
  if (c_message == NULL)
    return NULL;
  return cp_message_new_take (message_type, c_message);
}

/**
 * cp_message_get_full_name:
 * @message: a [class@ConnectPlugin.Message]
 *
 * Gets the fully-qualified protobuf name of the message type, e.g.
 * `google.protobuf.StringValue`.
 *
 * Returns: (transfer none): the name
 */
const char *
cp_message_get_full_name (CpMessage *message)
{
  g_return_val_if_fail (CP_IS_MESSAGE (message), NULL);
  g_return_val_if_fail (message_descriptor (message) != NULL, NULL);

  return message_descriptor (message)->name;
}

/**
 * cp_message_get_c_message: (skip)
 * @message: a [class@ConnectPlugin.Message]
 *
 * Gets the underlying protobuf-c message, owned by @message. It may be
 * modified in place; anything stored in it must come from malloc().
 *
 * Returns: (transfer none): the `ProtobufCMessage *`
 */
gpointer
cp_message_get_c_message (CpMessage *message)
{
  g_return_val_if_fail (CP_IS_MESSAGE (message), NULL);

  return ensure_c_message (message);
}

/**
 * cp_message_take_c_message: (skip)
 * @message: a [class@ConnectPlugin.Message]
 * @c_message: (transfer full): a `ProtobufCMessage *` of the class's
 *   descriptor, allocated with protobuf-c's default allocator
 *
 * Replaces the underlying protobuf-c message, freeing the previous one.
 */
void
cp_message_take_c_message (CpMessage *message,
                           gpointer   c_message)
{
  CpMessagePrivate *priv;
  ProtobufCMessage *m = c_message;

  g_return_if_fail (CP_IS_MESSAGE (message));
  g_return_if_fail (m != NULL);
  g_return_if_fail (m->descriptor == message_descriptor (message));

  priv = cp_message_get_instance_private (message);
  if (priv->c_message != m)
    g_clear_pointer (&priv->c_message, c_message_free);
  priv->c_message = m;
}

/**
 * cp_message_serialize:
 * @message: a [class@ConnectPlugin.Message]
 * @codec: the encoding to produce
 * @error: return location for a [struct@GLib.Error]
 *
 * Encodes the message. The binary encoding never fails; JSON fails with
 * %CP_ERROR_INTERNAL if a string field holds invalid UTF-8.
 *
 * Returns: (transfer full) (nullable): the encoded message
 */
GBytes *
cp_message_serialize (CpMessage *message,
                      CpCodec    codec,
                      GError   **error)
{
  g_return_val_if_fail (CP_IS_MESSAGE (message), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  g_return_val_if_fail (ensure_c_message (message) != NULL, NULL);

  return cp_codec_encode (codec, ensure_c_message (message), error);
}

/**
 * cp_message_parse:
 * @message: a [class@ConnectPlugin.Message]
 * @codec: the encoding of @data
 * @data: the encoded message
 * @error: return location for a [struct@GLib.Error]
 *
 * Replaces the contents of @message with the decoded @data. On error
 * (%CP_ERROR_INVALID_ARGUMENT) @message is left unchanged.
 *
 * Returns: %TRUE on success
 */
gboolean
cp_message_parse (CpMessage *message,
                  CpCodec    codec,
                  GBytes    *data,
                  GError   **error)
{
  ProtobufCMessage *c_message;

  g_return_val_if_fail (CP_IS_MESSAGE (message), FALSE);
  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (message_descriptor (message) != NULL, FALSE);

  c_message = cp_codec_decode (codec, message_descriptor (message), data, error);
  if (c_message == NULL)
    return FALSE;
  cp_message_take_c_message (message, c_message);
  return TRUE;
}

/**
 * cp_message_to_bytes:
 * @message: a [class@ConnectPlugin.Message]
 *
 * Encodes the message in the binary protobuf format.
 *
 * Returns: (transfer full): the encoded message
 */
GBytes *
cp_message_to_bytes (CpMessage *message)
{
  return cp_message_serialize (message, CP_CODEC_PROTO, NULL);
}

/**
 * cp_message_to_json:
 * @message: a [class@ConnectPlugin.Message]
 *
 * Encodes the message as compact proto3 JSON.
 *
 * Returns: (transfer full) (nullable): the JSON text, or %NULL if a string
 *   field holds invalid UTF-8
 */
char *
cp_message_to_json (CpMessage *message)
{
  g_return_val_if_fail (CP_IS_MESSAGE (message), NULL);
  g_return_val_if_fail (ensure_c_message (message) != NULL, NULL);

  return cp_json_encode (ensure_c_message (message), NULL, NULL);
}

/* Deep copy through the binary form; @to_desc may differ from the source
 * descriptor when two compiled copies of one proto meet. */
static ProtobufCMessage *
c_message_copy (const ProtobufCMessage           *src,
                const ProtobufCMessageDescriptor *to_desc)
{
  gsize size = protobuf_c_message_get_packed_size (src);
  g_autofree guint8 *buf = g_malloc (size > 0 ? size : 1);
  ProtobufCMessage *copy;

  protobuf_c_message_pack (src, buf);
  copy = protobuf_c_message_unpack (to_desc, NULL, size, buf);
  if (copy == NULL)  /* e.g. a proto2 message missing required fields */
    copy = cp_proto_message_new (to_desc);
  return copy;
}

/**
 * cp_message_copy:
 * @message: a [class@ConnectPlugin.Message]
 *
 * Makes a deep copy of @message, of the same type.
 *
 * Returns: (transfer full): the copy
 */
CpMessage *
cp_message_copy (CpMessage *message)
{
  g_return_val_if_fail (CP_IS_MESSAGE (message), NULL);
  g_return_val_if_fail (ensure_c_message (message) != NULL, NULL);

  return cp_message_new_take (G_OBJECT_TYPE (message),
                              c_message_copy (ensure_c_message (message),
                                              message_descriptor (message)));
}

/* ---- equality: map fields compare as unordered ---- */

/* Where a field's value or pointer lives in a C message. */
#define FIELD_PTR(m, off) ((guint8 *) (m) + (off))

/* A message field's sub-message, or NULL when unset (a oneof member only
 * when it is the selected one: members share their storage). */
static ProtobufCMessage *
singular_sub_message (const ProtobufCMessage          *m,
                      const ProtobufCFieldDescriptor *f)
{
  if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
      *(const guint32 *) FIELD_PTR (m, f->quantifier_offset) != f->id)
    return NULL;
  return *(ProtobufCMessage **) FIELD_PTR (m, f->offset);
}

/* TRUE if a map field with two entries or more is anywhere in @m: only then
 * can the encoding depend on the entries' order. */
static gboolean
has_unordered_map (const ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;

  for (guint i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];

      if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        continue;
      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          gsize n = *(const size_t *) FIELD_PTR (m, f->quantifier_offset);
          ProtobufCMessage **items = *(ProtobufCMessage ***) FIELD_PTR (m, f->offset);

          if (n >= 2 && cp_proto_field_is_map (desc, f))
            return TRUE;
          for (gsize j = 0; j < n; j++)
            if (items[j] != NULL && has_unordered_map (items[j]))
              return TRUE;
        }
      else
        {
          ProtobufCMessage *sub = singular_sub_message (m, f);

          if (sub != NULL && has_unordered_map (sub))
            return TRUE;
        }
    }
  return FALSE;
}

/* Orders map entries (pointers to entry messages) by key; map keys are
 * integers, bool or strings. */
static gint
map_entry_compare (gconstpointer a,
                   gconstpointer b,
                   gpointer      user_data)
{
  const ProtobufCFieldDescriptor *key = user_data;
  const guint8 *ka = FIELD_PTR (*(ProtobufCMessage * const *) a, key->offset);
  const guint8 *kb = FIELD_PTR (*(ProtobufCMessage * const *) b, key->offset);

#define CMP_AS(T) (*(const T *) ka < *(const T *) kb ? -1 : *(const T *) ka > *(const T *) kb)
  switch (key->type)
    {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      return CMP_AS (int32_t);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return CMP_AS (uint32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      return CMP_AS (int64_t);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return CMP_AS (uint64_t);
    case PROTOBUF_C_TYPE_BOOL:
      return (*(const protobuf_c_boolean *) ka != 0) - (*(const protobuf_c_boolean *) kb != 0);
    case PROTOBUF_C_TYPE_STRING:
      {
        const char *sa = *(const char * const *) ka;
        const char *sb = *(const char * const *) kb;

        return strcmp (sa != NULL ? sa : "", sb != NULL ? sb : "");
      }
    default:
      return 0;  /* not a valid map key type: keep the order */
    }
#undef CMP_AS
}

/* Rewrites @m (a private copy) so that its encoding no longer depends on
 * the order of map entries: each map sorted by key, and of entries with the
 * same key only the last kept, as parsing does. */
static void
canonicalise_maps (ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;

  for (guint i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];

      if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        continue;
      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          size_t *n = (size_t *) FIELD_PTR (m, f->quantifier_offset);
          ProtobufCMessage **items = *(ProtobufCMessage ***) FIELD_PTR (m, f->offset);
          const ProtobufCFieldDescriptor *key;
          gsize kept = 0;

          for (gsize j = 0; j < *n; j++)
            if (items[j] != NULL)
              canonicalise_maps (items[j]);
          if (*n < 2 || !cp_proto_field_is_map (desc, f))
            continue;

          key = &((const ProtobufCMessageDescriptor *) f->descriptor)->fields[0];
          /* stable: of equal keys, the last one stays last */
          g_qsort_with_data (items, *n, sizeof *items, map_entry_compare, (gpointer) key);
          for (gsize j = 0; j < *n; j++)
            {
              if (j + 1 < *n && map_entry_compare (&items[j], &items[j + 1], (gpointer) key) == 0)
                protobuf_c_message_free_unpacked (items[j], NULL);
              else
                items[kept++] = items[j];
            }
          *n = kept;
        }
      else
        {
          ProtobufCMessage *sub = singular_sub_message (m, f);

          if (sub != NULL)
            canonicalise_maps (sub);
        }
    }
}

/* The binary encoding with map entries in key order. */
static GBytes *
canonical_bytes (CpMessage *message)
{
  const ProtobufCMessage *c = ensure_c_message (message);
  g_autoptr(GBytes) bytes = cp_message_to_bytes (message);
  ProtobufCMessage *copy;
  gsize size;
  guint8 *buf;

  if (!has_unordered_map (c))
    return g_steal_pointer (&bytes);

  /* a private copy to reorder; one protobuf-c cannot parse back (a proto2
   * message missing required fields) is compared as it is */
  copy = protobuf_c_message_unpack (c->descriptor, NULL, g_bytes_get_size (bytes),
                                    g_bytes_get_data (bytes, NULL));
  if (copy == NULL)
    return g_steal_pointer (&bytes);
  canonicalise_maps (copy);
  size = protobuf_c_message_get_packed_size (copy);
  buf = g_malloc (size > 0 ? size : 1);
  protobuf_c_message_pack (copy, buf);
  c_message_free (copy);
  return g_bytes_new_take (buf, size);
}

/**
 * cp_message_equal:
 * @a: a [class@ConnectPlugin.Message]
 * @b: a [class@ConnectPlugin.Message]
 *
 * Compares two messages of the same protobuf type by their binary
 * encoding, with map fields compared as unordered: the entries of a map
 * are compared by key, whatever their order (when a key repeats, the last
 * entry counts, as when parsing). Other repeated fields compare in order.
 *
 * Returns: %TRUE if both have the same type and equal contents
 */
gboolean
cp_message_equal (CpMessage *a,
                  CpMessage *b)
{
  g_autoptr(GBytes) ba = NULL;
  g_autoptr(GBytes) bb = NULL;

  g_return_val_if_fail (CP_IS_MESSAGE (a), FALSE);
  g_return_val_if_fail (CP_IS_MESSAGE (b), FALSE);

  if (a == b)
    return TRUE;
  if (message_descriptor (a) == NULL || message_descriptor (b) == NULL ||
      strcmp (message_descriptor (a)->name, message_descriptor (b)->name) != 0)
    return FALSE;
  ba = canonical_bytes (a);
  bb = canonical_bytes (b);
  return g_bytes_equal (ba, bb);
}

/* ------------------------------------------------------------------ */
/* Field access through GValue                                          */

static const ProtobufCFieldDescriptor *
find_field (CpMessage *message, const char *name, GError **error)
{
  const ProtobufCFieldDescriptor *f;

  f = cp_proto_field_lookup (message_descriptor (message), name);
  if (f == NULL)
    g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                 "%s has no field “%s”", message_descriptor (message)->name, name);
  return f;
}

static CpMessage *
wrap_sub_message (const ProtobufCFieldDescriptor *f,
                  const ProtobufCMessage         *sub,
                  GType                           type)
{
  g_autoptr(GTypeClass) klass = g_type_class_ref (type);
  const ProtobufCMessageDescriptor *class_desc = ((CpMessageClass *) klass)->descriptor;

  if (sub == NULL)
    return NULL;
  return cp_message_new_take (type, c_message_copy (sub, class_desc));
}

/**
 * cp_message_get_field:
 * @message: a [class@ConnectPlugin.Message]
 * @name: the proto field name (`foo_bar`) or its JSON name (`fooBar`)
 * @value: (out caller-allocates): return location for the value
 * @error: return location for a [struct@GLib.Error]
 *
 * Reads a field into a [struct@GObject.Value]. The value type follows the field type:
 * 32-bit integers and enums give `gint`/`guint`, 64-bit integers
 * `gint64`/`guint64`, `float`, `double` and `bool` map to their GLib types,
 * `string` to a string, `bytes` to [struct@GLib.Bytes], message fields to a copy of the
 * sub-message as the [class@ConnectPlugin.Message] subclass registered for its type (%NULL when
 * unset), `repeated string` to a [alias@GLib.Strv]. A oneof member that is not the
 * selected one reads as its default.
 *
 * Unknown names, and field kinds without a [struct@GObject.Value] mapping (maps, repeated
 * fields other than strings), give %CP_ERROR_INVALID_ARGUMENT.
 *
 * Returns: (skip): %TRUE on success
 */
gboolean
cp_message_get_field (CpMessage   *message,
                      const char  *name,
                      GValue      *value,
                      GError     **error)
{
  const ProtobufCFieldDescriptor *f;
  const ProtobufCMessage *m;
  const void *member;
  gboolean selected;

  g_return_val_if_fail (CP_IS_MESSAGE (message), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (value != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (ensure_c_message (message) != NULL, FALSE);

  if ((f = find_field (message, name, error)) == NULL)
    return FALSE;
  m = ensure_c_message (message);
  member = (const guint8 *) m + f->offset;
  selected = !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
             *(const uint32_t *) ((const guint8 *) m + f->quantifier_offset) == f->id;

  if (G_IS_VALUE (value))
    g_value_unset (value);

  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    {
      if (f->type == PROTOBUF_C_TYPE_STRING)
        {
          size_t n = *(const size_t *) ((const guint8 *) m + f->quantifier_offset);
          char * const *arr = *(char * const * const *) member;
          GStrv strv = g_new0 (char *, n + 1);
          for (size_t i = 0; i < n; i++)
            strv[i] = g_strdup (arr[i] ? arr[i] : "");
          g_value_init (value, G_TYPE_STRV);
          g_value_take_boxed (value, strv);
          return TRUE;
        }
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "field “%s” of %s: only repeated string fields can be read as a GValue",
                   f->name, m->descriptor->name);
      return FALSE;
    }

  switch (f->type)
    {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      g_value_init (value, G_TYPE_INT);
      g_value_set_int (value, selected ? *(const int32_t *) member : 0);
      break;
    case PROTOBUF_C_TYPE_ENUM:
      g_value_init (value, G_TYPE_INT);
      g_value_set_int (value, selected ? *(const int *) member : 0);
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      g_value_init (value, G_TYPE_UINT);
      g_value_set_uint (value, selected ? *(const uint32_t *) member : 0);
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      g_value_init (value, G_TYPE_INT64);
      g_value_set_int64 (value, selected ? *(const int64_t *) member : 0);
      break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      g_value_init (value, G_TYPE_UINT64);
      g_value_set_uint64 (value, selected ? *(const uint64_t *) member : 0);
      break;
    case PROTOBUF_C_TYPE_FLOAT:
      g_value_init (value, G_TYPE_FLOAT);
      g_value_set_float (value, selected ? *(const float *) member : 0);
      break;
    case PROTOBUF_C_TYPE_DOUBLE:
      g_value_init (value, G_TYPE_DOUBLE);
      g_value_set_double (value, selected ? *(const double *) member : 0);
      break;
    case PROTOBUF_C_TYPE_BOOL:
      g_value_init (value, G_TYPE_BOOLEAN);
      g_value_set_boolean (value, selected ? *(const protobuf_c_boolean *) member : FALSE);
      break;
    case PROTOBUF_C_TYPE_STRING:
      {
        const char *s = selected ? *(char * const *) member : NULL;
        g_value_init (value, G_TYPE_STRING);
        g_value_set_string (value, s ? s : "");
      }
      break;
    case PROTOBUF_C_TYPE_BYTES:
      {
        const ProtobufCBinaryData *b = member;
        g_value_init (value, G_TYPE_BYTES);
        g_value_take_boxed (value, selected ? g_bytes_new (b->data, b->len) : g_bytes_new (NULL, 0));
      }
      break;
    case PROTOBUF_C_TYPE_MESSAGE:
      {
        const ProtobufCMessageDescriptor *sub_desc = f->descriptor;
        GType type = type_for_descriptor (sub_desc);
        if (type == G_TYPE_INVALID)
          {
            g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                         "field “%s”: no CpMessage class is registered for %s",
                         f->name, sub_desc->name);
            return FALSE;
          }
        g_value_init (value, type);
        if (selected)
          g_value_take_object (value, wrap_sub_message (f, *(ProtobufCMessage * const *) member, type));
      }
      break;
    default:
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "field “%s”: unsupported type", f->name);
      return FALSE;
    }
  return TRUE;
}

typedef enum { NUM_NONE, NUM_SIGNED, NUM_UNSIGNED, NUM_FLOAT } NumKind;

static NumKind
value_to_number (const GValue *v, gint64 *i, guint64 *u, double *d)
{
  GType t = G_VALUE_TYPE (v);

  if (G_TYPE_IS_ENUM (t))
    return (*i = g_value_get_enum (v)), NUM_SIGNED;
  switch (G_TYPE_FUNDAMENTAL (t))
    {
    case G_TYPE_CHAR: *i = g_value_get_schar (v); return NUM_SIGNED;
    case G_TYPE_UCHAR: *u = g_value_get_uchar (v); return NUM_UNSIGNED;
    case G_TYPE_INT: *i = g_value_get_int (v); return NUM_SIGNED;
    case G_TYPE_UINT: *u = g_value_get_uint (v); return NUM_UNSIGNED;
    case G_TYPE_LONG: *i = g_value_get_long (v); return NUM_SIGNED;
    case G_TYPE_ULONG: *u = g_value_get_ulong (v); return NUM_UNSIGNED;
    case G_TYPE_INT64: *i = g_value_get_int64 (v); return NUM_SIGNED;
    case G_TYPE_UINT64: *u = g_value_get_uint64 (v); return NUM_UNSIGNED;
    case G_TYPE_FLOAT: *d = g_value_get_float (v); return NUM_FLOAT;
    case G_TYPE_DOUBLE: *d = g_value_get_double (v); return NUM_FLOAT;
    default: return NUM_NONE;
    }
}

/* Converts a numeric GValue to an integer in [min, max] (as signed when
 * @is_signed, else unsigned), refusing fractions and out-of-range values. */
static gboolean
value_to_int (const GValue *v, gboolean is_signed, gint64 smin, gint64 smax, guint64 umax,
              gint64 *out_i, guint64 *out_u)
{
  gint64 i = 0;
  guint64 u = 0;
  double d = 0;

  switch (value_to_number (v, &i, &u, &d))
    {
    case NUM_SIGNED:
      if (is_signed)
        {
          if (i < smin || i > smax)
            return FALSE;
          *out_i = i;
        }
      else
        {
          if (i < 0 || (guint64) i > umax)
            return FALSE;
          *out_u = (guint64) i;
        }
      return TRUE;
    case NUM_UNSIGNED:
      if (is_signed)
        {
          if (u > (guint64) smax)
            return FALSE;
          *out_i = (gint64) u;
        }
      else
        {
          if (u > umax)
            return FALSE;
          *out_u = u;
        }
      return TRUE;
    case NUM_FLOAT:
      if (d != (double) (gint64) d && !(d >= 0 && d < 18446744073709551616.0 && d == (double) (guint64) d))
        return FALSE;
      if (is_signed)
        {
          if (!(d >= (double) smin && d <= (double) smax) || d >= 9223372036854775808.0)
            return FALSE;
          *out_i = (gint64) d;
        }
      else
        {
          if (!(d >= 0 && d <= (double) umax) || d >= 18446744073709551616.0)
            return FALSE;
          *out_u = (guint64) d;
        }
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
bad_value (const ProtobufCMessage         *m,
           const ProtobufCFieldDescriptor *f,
           const GValue                   *value,
           GError                        **error)
{
  g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
               "field “%s” of %s cannot hold this %s value", f->name,
               m->descriptor->name, g_type_name (G_VALUE_TYPE (value)));
  return FALSE;
}

/* cp_message_set_field() of a repeated field: only strings, from a GStrv. */
static gboolean
set_repeated_field (ProtobufCMessage               *m,
                    const ProtobufCFieldDescriptor *f,
                    const GValue                   *value,
                    GError                        **error)
{
  const char * const *strv;
  GArray *arr;

  if (f->type != PROTOBUF_C_TYPE_STRING || !g_type_is_a (G_VALUE_TYPE (value), G_TYPE_STRV))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "field “%s” of %s: only repeated string fields can be set from a GValue (a GStrv)",
                   f->name, m->descriptor->name);
      return FALSE;
    }
  strv = g_value_get_boxed (value);
  arr = g_array_new (FALSE, TRUE, sizeof (char *));
  for (gsize k = 0; strv && strv[k]; k++)
    {
      if (!g_utf8_validate (strv[k], -1, NULL))
        {
          for (guint j = 0; j < arr->len; j++)
            g_free (g_array_index (arr, char *, j));
          g_array_free (arr, TRUE);
          return bad_value (m, f, value, error);
        }
      char *dup = g_strdup (strv[k]);
      g_array_append_val (arr, dup);
    }
  cp_proto_field_set_repeated (m, f, arr);
  return TRUE;
}

/* The numeric, enum or bool @value as field @f's C type in @v; FALSE when
 * it does not fit (or @f is of another type). */
static gboolean
scalar_from_value (const ProtobufCFieldDescriptor *f,
                   const GValue                   *value,
                   CpProtoValue                   *v)
{
  GType vt = G_VALUE_TYPE (value);
  gint64 i = 0;
  guint64 u = 0;

  switch (f->type)
    {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      if (!value_to_int (value, TRUE, G_MININT32, G_MAXINT32, 0, &i, &u))
        return FALSE;
      v->i32 = (int32_t) i;
      return TRUE;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      if (!value_to_int (value, FALSE, 0, 0, G_MAXUINT32, &i, &u))
        return FALSE;
      v->u32 = (uint32_t) u;
      return TRUE;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      if (!value_to_int (value, TRUE, G_MININT64, G_MAXINT64, 0, &i, &u))
        return FALSE;
      v->i64 = i;
      return TRUE;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      if (!value_to_int (value, FALSE, 0, 0, G_MAXUINT64, &i, &u))
        return FALSE;
      v->u64 = u;
      return TRUE;
    case PROTOBUF_C_TYPE_ENUM:
      if (G_TYPE_FUNDAMENTAL (vt) == G_TYPE_STRING)
        {
          const char *s = g_value_get_string (value);
          const ProtobufCEnumValue *ev =
            s ? protobuf_c_enum_descriptor_get_value_by_name (f->descriptor, s) : NULL;
          if (ev == NULL)
            return FALSE;
          v->e = ev->value;
        }
      else if (value_to_int (value, TRUE, G_MININT32, G_MAXINT32, 0, &i, &u))
        v->e = (int) i;
      else
        return FALSE;
      return TRUE;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
      {
        double d = 0;
        switch (value_to_number (value, &i, &u, &d))
          {
          case NUM_SIGNED: d = (double) i; break;
          case NUM_UNSIGNED: d = (double) u; break;
          case NUM_FLOAT: break;
          default: return FALSE;
          }
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
          {
            if (isfinite (d) && isinf ((float) d))
              return FALSE;
            v->f = (float) d;
          }
        else
          v->d = d;
      }
      return TRUE;
    case PROTOBUF_C_TYPE_BOOL:
      if (G_TYPE_FUNDAMENTAL (vt) == G_TYPE_BOOLEAN)
        v->b = g_value_get_boolean (value);
      else if (value_to_int (value, FALSE, 0, 0, 1, &i, &u))
        v->b = u != 0;
      else
        return FALSE;
      return TRUE;
    default:
      return FALSE;
    }
}

/**
 * cp_message_set_field:
 * @message: a [class@ConnectPlugin.Message]
 * @name: the proto field name (`foo_bar`) or its JSON name (`fooBar`)
 * @value: the new value
 * @error: return location for a [struct@GLib.Error]
 *
 * Writes a field from a [struct@GObject.Value], with the mapping of [method@ConnectPlugin.Message.get_field].
 * Numeric values of any integer or floating type are accepted when they fit
 * the field exactly; enum fields also take the value name as a string;
 * message fields take a [class@ConnectPlugin.Message] of the field's protobuf type (copied).
 * A %NULL string, [struct@GLib.Bytes], [alias@GLib.Strv] or message clears the field. Setting a
 * oneof member selects it.
 *
 * Unknown names, unsupported field kinds and values that do not fit give
 * %CP_ERROR_INVALID_ARGUMENT, and leave @message unchanged.
 *
 * Returns: %TRUE on success
 */
gboolean
cp_message_set_field (CpMessage     *message,
                      const char    *name,
                      const GValue  *value,
                      GError       **error)
{
  const ProtobufCFieldDescriptor *f;
  ProtobufCMessage *m;
  GType vt;
  CpProtoValue v;

  g_return_val_if_fail (CP_IS_MESSAGE (message), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (G_IS_VALUE (value), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  g_return_val_if_fail (ensure_c_message (message) != NULL, FALSE);

  if ((f = find_field (message, name, error)) == NULL)
    return FALSE;
  m = ensure_c_message (message);
  vt = G_VALUE_TYPE (value);
  memset (&v, 0, sizeof v);

  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return set_repeated_field (m, f, value, error);

  switch (f->type)
    {
    case PROTOBUF_C_TYPE_STRING:
      {
        const char *s;
        if (G_TYPE_FUNDAMENTAL (vt) != G_TYPE_STRING)
          return bad_value (m, f, value, error);
        s = g_value_get_string (value);
        if (s == NULL)
          {
            cp_proto_field_clear (m, f);
            return TRUE;
          }
        if (!g_utf8_validate (s, -1, NULL))
          return bad_value (m, f, value, error);
        v.s = g_strdup (s);
      }
      break;
    case PROTOBUF_C_TYPE_BYTES:
      {
        GBytes *b;
        if (!g_type_is_a (vt, G_TYPE_BYTES))
          return bad_value (m, f, value, error);
        b = g_value_get_boxed (value);
        if (b == NULL)
          {
            cp_proto_field_clear (m, f);
            return TRUE;
          }
        v.bin.len = g_bytes_get_size (b);
        v.bin.data = v.bin.len ? g_memdup2 (g_bytes_get_data (b, NULL), v.bin.len) : NULL;
      }
      break;
    case PROTOBUF_C_TYPE_MESSAGE:
      {
        const ProtobufCMessageDescriptor *sub_desc = f->descriptor;
        CpMessage *sub;
        if (!g_type_is_a (vt, CP_TYPE_MESSAGE))
          return bad_value (m, f, value, error);
        sub = g_value_get_object (value);
        if (sub == NULL)
          {
            cp_proto_field_clear (m, f);
            return TRUE;
          }
        if (message_descriptor (sub) == NULL ||
            strcmp (message_descriptor (sub)->name, sub_desc->name) != 0)
          {
            g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                         "field “%s” of %s holds %s, not %s", f->name, m->descriptor->name,
                         sub_desc->name, cp_message_get_full_name (sub));
            return FALSE;
          }
        v.m = c_message_copy (ensure_c_message (sub), sub_desc);
      }
      break;
    default:
      if (!scalar_from_value (f, value, &v))
        return bad_value (m, f, value, error);
      break;
    }

  cp_proto_field_set (m, f, &v);
  return TRUE;
}
