/* cp-json.c: the proto3 JSON mapping, driven by protobuf-c descriptors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Writing and reading work on JSON text directly: json-glib's parser wraps
 * integers above G_MAXINT64 silently and accepts non-JSON numbers (`01`,
 * `.5`), and its generator prints doubles with 17 digits, so neither gives
 * the exact proto3 mapping (https://protobuf.dev/programming-guides/json/). The JsonNode entry
 * points of cp-codec-private.h go through the text form.
 *
 * Memory: every pointer stored into a message is malloc'd (g_malloc is
 * malloc), so protobuf_c_message_free_unpacked (m, NULL) frees it.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cp-codec-private.h"
#include "cp-error.h"
#include "cp-message.h"

#define MEMBER(m, off) ((void *) (((guint8 *) (m)) + (off)))
#define CMEMBER(m, off) ((const void *) (((const guint8 *) (m)) + (off)))

/* ------------------------------------------------------------------ */
/* Descriptor helpers                                                   */

char *
cp_json_field_name (const char *proto_name)
{
  GString *out = g_string_sized_new (strlen (proto_name));
  gboolean upper = FALSE;

  for (const char *p = proto_name; *p; p++)
    {
      if (*p == '_')
        upper = TRUE;
      else if (upper)
        {
          g_string_append_c (out, g_ascii_toupper (*p));
          upper = FALSE;
        }
      else
        g_string_append_c (out, *p);
    }
  return g_string_free (out, FALSE);
}

/* Does @s start with the camel-case form of @proto_name (its first letter
 * upper-cased when @upper)? Returns the rest of @s, or NULL. */
static const char *
camel_prefix (const char *proto_name, const char *s, gboolean upper)
{
  for (const char *p = proto_name; *p; p++)
    {
      char c;
      if (*p == '_')
        {
          upper = TRUE;
          continue;
        }
      c = upper ? g_ascii_toupper (*p) : *p;
      upper = FALSE;
      if (*s++ != c)
        return NULL;
    }
  return s;
}

/* Does @key (NUL-terminated) equal the JSON name derived from @proto_name? */
static gboolean
json_name_equal (const char *proto_name, const char *key)
{
  const char *rest = camel_prefix (proto_name, key, FALSE);

  return rest != NULL && *rest == '\0';
}

/* protoc names the entry message of `map<K,V> foo_bar` "FooBarEntry",
 * nested in the message declaring the field; protobuf-c keeps no map flag. */
gboolean
cp_proto_field_is_map (const ProtobufCMessageDescriptor  *parent,
              const ProtobufCFieldDescriptor    *field)
{
  const ProtobufCMessageDescriptor *entry;
  const char *name;
  gsize plen;

  if (field->label != PROTOBUF_C_LABEL_REPEATED || field->type != PROTOBUF_C_TYPE_MESSAGE)
    return FALSE;
  entry = field->descriptor;
  if (entry->n_fields != 2 || entry->fields[0].id != 1 || entry->fields[1].id != 2 ||
      strcmp (entry->fields[0].name, "key") != 0 || strcmp (entry->fields[1].name, "value") != 0 ||
      entry->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
      entry->fields[1].label == PROTOBUF_C_LABEL_REPEATED)
    return FALSE;

  plen = strlen (parent->name);
  name = entry->name;
  if (strncmp (name, parent->name, plen) != 0 || name[plen] != '.')
    return FALSE;
  name = camel_prefix (field->name, name + plen + 1, TRUE);
  return name != NULL && strcmp (name, "Entry") == 0;
}

static gboolean
is_wrapper (const ProtobufCMessageDescriptor *desc)
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

static gboolean
is_named (const ProtobufCMessageDescriptor *desc, const char *name)
{
  return strcmp (desc->name, name) == 0;
}

/* Well-known types whose JSON form is not an object of their fields: inside
 * an Any they go in a "value" member. */
static gboolean
has_special_json (const ProtobufCMessageDescriptor *desc)
{
  return is_wrapper (desc) ||
         is_named (desc, "google.protobuf.Any") ||
         is_named (desc, "google.protobuf.Struct") ||
         is_named (desc, "google.protobuf.Value") ||
         is_named (desc, "google.protobuf.ListValue") ||
         is_named (desc, "google.protobuf.Duration") ||
         is_named (desc, "google.protobuf.Timestamp") ||
         is_named (desc, "google.protobuf.FieldMask");
}

/* The descriptor of the message class registered for the type name of an
 * Any's type URL (the part after the last '/'); NULL when unknown. A class
 * is registered once it is initialised (g_type_class_ref / g_type_ensure
 * of the generated type, or any instance). */
static const ProtobufCMessageDescriptor *
any_lookup (const char *type_url)
{
  const char *slash = strrchr (type_url, '/');
  const char *name = slash != NULL ? slash + 1 : type_url;
  const ProtobufCMessageDescriptor *desc;
  CpMessageClass *klass;
  GType type;

  if (*name == '\0')
    return NULL;
  type = cp_message_type_from_name (name);
  if (type == G_TYPE_INVALID && g_str_has_prefix (name, "google.protobuf."))
    {
      cp_well_known_ensure_types ();
      type = cp_message_type_from_name (name);
    }
  if (type == G_TYPE_INVALID)
    return NULL;
  klass = g_type_class_ref (type);
  desc = cp_message_class_get_descriptor (klass);
  g_type_class_unref (klass);
  return desc;
}

static const ProtobufCFieldDescriptor *
field_named (const ProtobufCMessageDescriptor *desc, const char *name)
{
  return protobuf_c_message_descriptor_get_field_by_name (desc, name);
}

gsize
cp_proto_type_size (ProtobufCType type)
{
  switch (type)
    {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return sizeof (int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return sizeof (int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
      return sizeof (float);
    case PROTOBUF_C_TYPE_DOUBLE:
      return sizeof (double);
    case PROTOBUF_C_TYPE_BOOL:
      return sizeof (protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
      return sizeof (int);
    case PROTOBUF_C_TYPE_STRING:
      return sizeof (char *);
    case PROTOBUF_C_TYPE_BYTES:
      return sizeof (ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
      return sizeof (ProtobufCMessage *);
    default:
      g_assert_not_reached ();
    }
}

ProtobufCMessage *
cp_proto_message_new (const ProtobufCMessageDescriptor *descriptor)
{
  ProtobufCMessage *m = g_malloc0 (descriptor->sizeof_message);
  protobuf_c_message_init (descriptor, m);
  return m;
}

static gboolean
member_is_zeroish (const ProtobufCFieldDescriptor *f, const void *member)
{
  switch (f->type)
    {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      return *(const uint32_t *) member == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return *(const uint64_t *) member == 0;
    case PROTOBUF_C_TYPE_FLOAT:
      return *(const float *) member == 0.0f;
    case PROTOBUF_C_TYPE_DOUBLE:
      return *(const double *) member == 0.0;
    case PROTOBUF_C_TYPE_BOOL:
      return !*(const protobuf_c_boolean *) member;
    case PROTOBUF_C_TYPE_ENUM:
      return *(const int *) member == 0;
    case PROTOBUF_C_TYPE_STRING:
      return *(char * const *) member == NULL || **(char * const *) member == '\0';
    case PROTOBUF_C_TYPE_BYTES:
      return ((const ProtobufCBinaryData *) member)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
      return *(ProtobufCMessage * const *) member == NULL;
    default:
      return TRUE;
    }
}

/* Would protobuf-c put this field on the wire? JSON writes exactly those. */
gboolean
cp_proto_field_is_set (const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  const void *member = CMEMBER (m, f->offset);
  gboolean ptr_type = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;

  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return *(const size_t *) CMEMBER (m, f->quantifier_offset) > 0;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    {
      if (*(const uint32_t *) CMEMBER (m, f->quantifier_offset) != f->id)
        return FALSE;
      if (ptr_type)
        {
          const void *ptr = *(const void * const *) member;
          return ptr != NULL && ptr != f->default_value;
        }
      return TRUE;
    }
  switch (f->label)
    {
    case PROTOBUF_C_LABEL_REQUIRED:
      return TRUE;
    case PROTOBUF_C_LABEL_OPTIONAL:
      if (ptr_type)
        {
          const void *ptr = *(const void * const *) member;
          return ptr != NULL && ptr != f->default_value;
        }
      return *(const protobuf_c_boolean *) CMEMBER (m, f->quantifier_offset);
    case PROTOBUF_C_LABEL_NONE:
    default:
      return !member_is_zeroish (f, member);
    }
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

static void
write_string (GString *out, const char *s, gsize len)
{
  g_string_append_c (out, '"');
  for (gsize i = 0; i < len; i++)
    {
      guchar c = s[i];
      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\b': g_string_append (out, "\\b"); break;
        case '\f': g_string_append (out, "\\f"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, c);
        }
    }
  g_string_append_c (out, '"');
}

/* Shortest decimal digits that read back as @v (as float when @is_float),
 * formatted the way Go's protojson (and encoding/json) does: plain notation
 * for 1e-6 <= |v| < 1e21, otherwise exponent notation like `1e+21`, `1e-7`. */
static void
write_float (GString *out, double v, gboolean is_float)
{
  char buf[64], digits[32];
  int exp10 = 0, nd = 0, p;
  double a;

  if (isnan (v))
    {
      g_string_append (out, "\"NaN\"");
      return;
    }
  if (isinf (v))
    {
      g_string_append (out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      return;
    }
  if (v == 0)
    {
      g_string_append (out, signbit (v) ? "-0" : "0");
      return;
    }

  /* DBL_DIG/FLT_DIG digits always read back, except for subnormals */
  p = is_float ? (fabsf ((float) v) < FLT_MIN ? 1 : 6) : (fabs (v) < DBL_MIN ? 1 : 15);
  for (; p <= 17; p++)
    {
      g_snprintf (buf, sizeof buf, "%.*e", p - 1, v);
      if (is_float ? (float) g_ascii_strtod (buf, NULL) == (float) v
                   : g_ascii_strtod (buf, NULL) == v)
        break;
    }

  /* buf is [-]d.ddde[+-]XX */
  {
    const char *s = buf;
    char *e;
    if (*s == '-')
      s++;
    for (; *s && *s != 'e'; s++)
      if (g_ascii_isdigit (*s))
        digits[nd++] = *s;
    exp10 = (int) strtol (s + 1, &e, 10);
    while (nd > 1 && digits[nd - 1] == '0')
      nd--;
    digits[nd] = '\0';
  }

  if (v < 0)
    g_string_append_c (out, '-');
  a = fabs (v);
  if (is_float ? ((float) a < 1e-6f || (float) a >= 1e21f) : (a < 1e-6 || a >= 1e21))
    {
      g_string_append_c (out, digits[0]);
      if (nd > 1)
        {
          g_string_append_c (out, '.');
          g_string_append (out, digits + 1);
        }
      g_string_append_printf (out, "e%c%s%d", exp10 < 0 ? '-' : '+',
                              (exp10 > -10 && exp10 < 10 && exp10 >= 0) ? "0" : "",
                              ABS (exp10));
    }
  else if (exp10 >= 0)
    {
      for (int i = 0; i <= exp10; i++)
        g_string_append_c (out, i < nd ? digits[i] : '0');
      if (nd > exp10 + 1)
        {
          g_string_append_c (out, '.');
          g_string_append (out, digits + exp10 + 1);
        }
    }
  else
    {
      g_string_append (out, "0.");
      for (int i = 0; i < -exp10 - 1; i++)
        g_string_append_c (out, '0');
      g_string_append (out, digits);
    }
}

static gboolean write_message (GString *out, const ProtobufCMessage *m, GError **error);

static gboolean
write_value (GString                        *out,
             const ProtobufCFieldDescriptor *f,
             const void                     *member,
             GError                        **error)
{
  switch (f->type)
    {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
      g_string_append_printf (out, "%" G_GINT32_FORMAT, *(const int32_t *) member);
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      g_string_append_printf (out, "%" G_GUINT32_FORMAT, *(const uint32_t *) member);
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      g_string_append_printf (out, "\"%" G_GINT64_FORMAT "\"", *(const int64_t *) member);
      break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      g_string_append_printf (out, "\"%" G_GUINT64_FORMAT "\"", *(const uint64_t *) member);
      break;
    case PROTOBUF_C_TYPE_FLOAT:
      write_float (out, *(const float *) member, TRUE);
      break;
    case PROTOBUF_C_TYPE_DOUBLE:
      write_float (out, *(const double *) member, FALSE);
      break;
    case PROTOBUF_C_TYPE_BOOL:
      g_string_append (out, *(const protobuf_c_boolean *) member ? "true" : "false");
      break;
    case PROTOBUF_C_TYPE_ENUM:
      {
        int v = *(const int *) member;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value (f->descriptor, v);
        if (ev != NULL)
          write_string (out, ev->name, strlen (ev->name));
        else
          g_string_append_printf (out, "%d", v);
      }
      break;
    case PROTOBUF_C_TYPE_STRING:
      {
        const char *s = *(char * const *) member;
        gsize len;
        if (s == NULL)
          s = "";
        len = strlen (s);
        if (!g_utf8_validate_len (s, len, NULL))
          {
            g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                         "field %s: string is not valid UTF-8", f->name);
            return FALSE;
          }
        write_string (out, s, len);
      }
      break;
    case PROTOBUF_C_TYPE_BYTES:
      {
        const ProtobufCBinaryData *b = member;
        g_autofree char *b64 = g_base64_encode (b->data, b->len);
        g_string_append_c (out, '"');
        g_string_append (out, b64);
        g_string_append_c (out, '"');
      }
      break;
    case PROTOBUF_C_TYPE_MESSAGE:
      {
        const ProtobufCMessage *sub = *(ProtobufCMessage * const *) member;
        if (sub == NULL)
          {
            /* only reachable for map values and repeated elements */
            ProtobufCMessage *def = cp_proto_message_new (f->descriptor);
            gboolean ok = write_message (out, def, error);
            protobuf_c_message_free_unpacked (def, NULL);
            return ok;
          }
        return write_message (out, sub, error);
      }
    default:
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "field %s: unsupported type", f->name);
      return FALSE;
    }
  return TRUE;
}

/* Repeated (not map) field @f of @m as a JSON array. */
static gboolean
write_repeated (GString *out, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m, GError **error)
{
  size_t n = *(const size_t *) CMEMBER (m, f->quantifier_offset);
  const guint8 *arr = *(const guint8 * const *) CMEMBER (m, f->offset);
  gsize size = cp_proto_type_size (f->type);

  g_string_append_c (out, '[');
  for (size_t j = 0; j < n; j++)
    {
      if (j > 0)
        g_string_append_c (out, ',');
      if (!write_value (out, f, arr + j * size, error))
        return FALSE;
    }
  g_string_append_c (out, ']');
  return TRUE;
}

static gboolean
write_map_key (GString *out, const ProtobufCFieldDescriptor *kf, const void *member, GError **error)
{
  switch (kf->type)
    {
    case PROTOBUF_C_TYPE_STRING:
      return write_value (out, kf, member, error);
    case PROTOBUF_C_TYPE_BOOL:
      g_string_append (out, *(const protobuf_c_boolean *) member ? "\"true\"" : "\"false\"");
      return TRUE;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      return write_value (out, kf, member, error);
    default:
      /* 32-bit integers */
      g_string_append_c (out, '"');
      write_value (out, kf, member, error);
      g_string_append_c (out, '"');
      return TRUE;
    }
}

static gboolean
write_map (GString *out, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m, GError **error)
{
  size_t n = *(const size_t *) CMEMBER (m, f->quantifier_offset);
  ProtobufCMessage * const *entries = *(ProtobufCMessage * const * const *) CMEMBER (m, f->offset);
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
  g_autoptr(GHashTable) last = NULL;
  gboolean first = TRUE;

  /* Duplicate keys on the wire: the last entry wins, as in every protobuf
   * runtime; JSON objects must not repeat keys. */
  if (n > 1)
    {
      last = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      for (size_t i = 0; i < n; i++)
        {
          GString *k;
          if (entries[i] == NULL)
            continue;
          k = g_string_new (NULL);
          if (!write_map_key (k, kf, CMEMBER (entries[i], kf->offset), error))
            {
              g_string_free (k, TRUE);
              return FALSE;
            }
          g_hash_table_insert (last, g_string_free (k, FALSE), GSIZE_TO_POINTER (i));
        }
    }

  g_string_append_c (out, '{');
  for (size_t i = 0; i < n; i++)
    {
      gsize key_start = out->len;
      if (entries[i] == NULL)
        continue;
      if (!first)
        g_string_append_c (out, ',');
      key_start = out->len;
      if (!write_map_key (out, kf, CMEMBER (entries[i], kf->offset), error))
        return FALSE;
      if (last != NULL &&
          GPOINTER_TO_SIZE (g_hash_table_lookup (last, out->str + key_start)) != i)
        {
          /* a later entry has the same key */
          g_string_truncate (out, first ? key_start : key_start - 1);
          continue;
        }
      g_string_append_c (out, ':');
      if (!write_value (out, vf, CMEMBER (entries[i], vf->offset), error))
        return FALSE;
      first = FALSE;
    }
  g_string_append_c (out, '}');
  return TRUE;
}

static gboolean write_special (GString *out, const ProtobufCMessage *m, gboolean *handled, GError **error);

static gboolean
write_message (GString *out, const ProtobufCMessage *m, GError **error)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  gboolean first = TRUE;
  gboolean handled = FALSE;

  if (is_wrapper (desc))
    return write_value (out, &desc->fields[0], CMEMBER (m, desc->fields[0].offset), error);
  if (g_str_has_prefix (desc->name, "google.protobuf."))
    {
      gboolean ok = write_special (out, m, &handled, error);
      if (handled)
        return ok;
    }

  g_string_append_c (out, '{');
  for (unsigned i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];
      g_autofree char *name = NULL;

      if (!cp_proto_field_is_set (m, f))
        continue;
      if (!first)
        g_string_append_c (out, ',');
      first = FALSE;
      name = cp_json_field_name (f->name);
      write_string (out, name, strlen (name));
      g_string_append_c (out, ':');

      if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          if (cp_proto_field_is_map (desc, f) ? !write_map (out, f, m, error)
                                              : !write_repeated (out, f, m, error))
            return FALSE;
        }
      else if (!write_value (out, f, CMEMBER (m, f->offset), error))
        return FALSE;
    }
  g_string_append_c (out, '}');
  return TRUE;
}

/* google.protobuf.Value: the JSON value of the kind that is set. */
static gboolean
write_struct_value (GString *out, const ProtobufCMessage *m, GError **error)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;

  for (unsigned i = 0; i < desc->n_fields; i++)
    {
      const ProtobufCFieldDescriptor *f = &desc->fields[i];

      if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
          *(const uint32_t *) CMEMBER (m, f->quantifier_offset) != f->id)
        continue;
      if (strcmp (f->name, "null_value") == 0)
        {
          g_string_append (out, "null");
          return TRUE;
        }
      if (strcmp (f->name, "number_value") == 0)
        {
          double d = *(const double *) CMEMBER (m, f->offset);
          if (!isfinite (d))
            {
              g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "google.protobuf.Value: %s cannot be JSON", isnan (d) ? "NaN" : "Infinity");
              return FALSE;
            }
          write_float (out, d, FALSE);
          return TRUE;
        }
      if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage * const *) CMEMBER (m, f->offset) == NULL)
        {
          /* an empty struct or list */
          g_string_append (out, strcmp (f->name, "list_value") == 0 ? "[]" : "{}");
          return TRUE;
        }
      return write_value (out, f, CMEMBER (m, f->offset), error);
    }
  g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "google.protobuf.Value: no kind is set");
  return FALSE;
}

/* google.protobuf.Any: {"@type": URL, fields...} or, for types with a
 * special JSON form, {"@type": URL, "value": ...}. */
static gboolean
write_any (GString *out, const ProtobufCMessage *m, GError **error)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  const ProtobufCFieldDescriptor *url_f = field_named (desc, "type_url");
  const ProtobufCFieldDescriptor *value_f = field_named (desc, "value");
  const char *url;
  const ProtobufCBinaryData *value;
  const ProtobufCMessageDescriptor *inner_desc;
  g_autoptr(GBytes) data = NULL;
  ProtobufCMessage *inner;
  g_autoptr(GString) body = NULL;
  gboolean ok;

  if (url_f == NULL || value_f == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "malformed google.protobuf.Any descriptor");
      return FALSE;
    }
  url = *(char * const *) CMEMBER (m, url_f->offset);
  value = CMEMBER (m, value_f->offset);
  if (url == NULL || *url == '\0')
    {
      if (value->len > 0)
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                               "google.protobuf.Any: a value without a type URL");
          return FALSE;
        }
      g_string_append (out, "{}");
      return TRUE;
    }
  inner_desc = any_lookup (url);
  if (inner_desc == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "google.protobuf.Any: no message class for type URL \"%s\"", url);
      return FALSE;
    }
  data = g_bytes_new_static (value->data != NULL ? value->data : (const guint8 *) "", value->len);
  inner = cp_codec_decode (CP_CODEC_PROTO, inner_desc, data, error);
  if (inner == NULL)
    return FALSE;

  body = g_string_new (NULL);
  ok = write_message (body, inner, error);
  protobuf_c_message_free_unpacked (inner, NULL);
  if (!ok)
    return FALSE;

  g_string_append (out, "{\"@type\":");
  write_string (out, url, strlen (url));
  if (has_special_json (inner_desc))
    {
      g_string_append (out, ",\"value\":");
      g_string_append_len (out, body->str, body->len);
      g_string_append_c (out, '}');
    }
  else if (body->len > 2)
    {
      g_string_append_c (out, ',');
      g_string_append_len (out, body->str + 1, body->len - 1);
    }
  else
    g_string_append_c (out, '}');
  return TRUE;
}

/* The well-known types with their own JSON form (Any, Struct, Value,
 * ListValue); *handled = FALSE for the others. */
static gboolean
write_special (GString *out, const ProtobufCMessage *m, gboolean *handled, GError **error)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;

  *handled = TRUE;
  if (is_named (desc, "google.protobuf.Any"))
    return write_any (out, m, error);
  if (is_named (desc, "google.protobuf.Value"))
    return write_struct_value (out, m, error);
  if (is_named (desc, "google.protobuf.Struct") && field_named (desc, "fields") != NULL)
    {
      const ProtobufCFieldDescriptor *f = field_named (desc, "fields");
      if (*(const size_t *) CMEMBER (m, f->quantifier_offset) == 0)
        {
          g_string_append (out, "{}");
          return TRUE;
        }
      return write_map (out, f, m, error);
    }
  if (is_named (desc, "google.protobuf.ListValue") && field_named (desc, "values") != NULL)
    {
      return write_repeated (out, field_named (desc, "values"), m, error);
    }
  *handled = FALSE;
  return TRUE;
}

char *
cp_json_encode (const ProtobufCMessage *message,
                gsize                  *out_len,
                GError                **error)
{
  GString *out = g_string_sized_new (64);

  g_return_val_if_fail (message != NULL, NULL);

  if (!write_message (out, message, error))
    {
      g_string_free (out, TRUE);
      return NULL;
    }
  if (out_len)
    *out_len = out->len;
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

typedef struct {
  const char *start;
  const char *p;
  const char *end;
  guint depth;
  GError **error;
  GString *scratch;
} Parser;

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
} Value;

typedef enum {
  PARSE_ERROR = 0,
  PARSE_OK = 1,
  PARSE_SKIP = 2,  /* valid JSON whose value is to be ignored (unknown enum name) */
} ParseResult;

static gboolean G_GNUC_PRINTF (2, 3)
fail (Parser *ps, const char *format, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  if (ps->error == NULL || *ps->error != NULL)
    return FALSE;
  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (ps->error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
               "invalid JSON at offset %" G_GSIZE_FORMAT ": %s",
               (gsize) (ps->p - ps->start), msg);
  return FALSE;
}

static void
skip_ws (Parser *ps)
{
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static char
peek (Parser *ps)
{
  skip_ws (ps);
  return ps->p < ps->end ? *ps->p : '\0';
}

static gboolean
expect (Parser *ps, char c)
{
  if (peek (ps) != c)
    return ps->p < ps->end ? fail (ps, "expected '%c'", c) : fail (ps, "unexpected end of input, expected '%c'", c);
  ps->p++;
  return TRUE;
}

static gboolean
parse_literal (Parser *ps, const char *lit)
{
  gsize len = strlen (lit);
  skip_ws (ps);
  if ((gsize) (ps->end - ps->p) < len || memcmp (ps->p, lit, len) != 0)
    return fail (ps, "invalid literal");
  ps->p += len;
  return TRUE;
}

/* After the opening bracket of an array or object: consumes @close and
 * returns TRUE when the container is empty. */
static gboolean
list_empty (Parser *ps, char close)
{
  if (peek (ps) != close)
    return FALSE;
  ps->p++;
  return TRUE;
}

/* After an element of an array or object: consumes the ',' before the next
 * element (*more = TRUE) or the closing @close (*more = FALSE). */
static gboolean
list_next (Parser *ps, char close, gboolean *more)
{
  if (peek (ps) == ',')
    {
      ps->p++;
      *more = TRUE;
      return TRUE;
    }
  *more = FALSE;
  return expect (ps, close);
}

static int
hex4 (const char *p)
{
  int v = 0;
  for (int i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (p[i]);
      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
  return v;
}

/* Reads a JSON string into @out (which it clears). The input was checked
 * to be UTF-8 up front, so only escapes and control characters matter here.
 * *has_nul tells whether the decoded text contains U+0000. */
static gboolean
parse_string (Parser *ps, GString *out, gboolean *has_nul)
{
  g_string_truncate (out, 0);
  if (has_nul)
    *has_nul = FALSE;
  if (!expect (ps, '"'))
    return FALSE;
  while (ps->p < ps->end)
    {
      guchar c = *ps->p;
      if (c == '"')
        {
          ps->p++;
          return TRUE;
        }
      if (c < 0x20)
        return fail (ps, "control character in string");
      if (c != '\\')
        {
          const char *run = ps->p;
          while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (guchar) *ps->p >= 0x20)
            ps->p++;
          g_string_append_len (out, run, ps->p - run);
          continue;
        }
      if (ps->end - ps->p < 2)
        break;
      ps->p++;
      switch (*ps->p)
        {
        case '"': g_string_append_c (out, '"'); ps->p++; break;
        case '\\': g_string_append_c (out, '\\'); ps->p++; break;
        case '/': g_string_append_c (out, '/'); ps->p++; break;
        case 'b': g_string_append_c (out, '\b'); ps->p++; break;
        case 'f': g_string_append_c (out, '\f'); ps->p++; break;
        case 'n': g_string_append_c (out, '\n'); ps->p++; break;
        case 'r': g_string_append_c (out, '\r'); ps->p++; break;
        case 't': g_string_append_c (out, '\t'); ps->p++; break;
        case 'u':
          {
            int u, lo;
            gunichar ch;
            if (ps->end - ps->p < 5 || (u = hex4 (ps->p + 1)) < 0)
              return fail (ps, "invalid \\u escape");
            ps->p += 5;
            if (u >= 0xDC00 && u <= 0xDFFF)
              return fail (ps, "lone low surrogate in string");
            if (u >= 0xD800 && u <= 0xDBFF)
              {
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                    (lo = hex4 (ps->p + 2)) < 0xDC00 || lo > 0xDFFF)
                  return fail (ps, "unpaired high surrogate in string");
                ps->p += 6;
                ch = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
              }
            else
              ch = u;
            if (ch == 0 && has_nul)
              *has_nul = TRUE;
            g_string_append_unichar (out, ch);
          }
          break;
        default:
          return fail (ps, "invalid escape in string");
        }
    }
  return fail (ps, "unterminated string");
}

/* Checks the JSON number grammar on [s, s+len). */
static gboolean
number_syntax_ok (const char *s, gsize len)
{
  const char *p = s, *end = s + len;

  if (p < end && *p == '-')
    p++;
  if (p >= end)
    return FALSE;
  if (*p == '0')
    p++;
  else if (*p >= '1' && *p <= '9')
    while (p < end && g_ascii_isdigit (*p))
      p++;
  else
    return FALSE;
  if (p < end && *p == '.')
    {
      p++;
      if (p >= end || !g_ascii_isdigit (*p))
        return FALSE;
      while (p < end && g_ascii_isdigit (*p))
        p++;
    }
  if (p < end && (*p == 'e' || *p == 'E'))
    {
      p++;
      if (p < end && (*p == '+' || *p == '-'))
        p++;
      if (p >= end || !g_ascii_isdigit (*p))
        return FALSE;
      while (p < end && g_ascii_isdigit (*p))
        p++;
    }
  return p == end;
}

/* Scans a number token (lexically; grammar checked by number_syntax_ok). */
static gboolean
scan_number (Parser *ps, const char **out_s, gsize *out_len)
{
  const char *s;
  skip_ws (ps);
  s = ps->p;
  while (ps->p < ps->end && (g_ascii_isdigit (*ps->p) || *ps->p == '-' || *ps->p == '+' ||
                             *ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
    ps->p++;
  if (!number_syntax_ok (s, ps->p - s))
    return fail (ps, "invalid number");
  *out_s = s;
  *out_len = ps->p - s;
  return TRUE;
}

typedef enum {
  INT_OK,
  INT_SYNTAX,
  INT_FRACTION,
  INT_RANGE,
} IntResult;

/* Exact conversion of a JSON number text (`1e2`, `1.0`, `-7`) to an
 * integer in [min, max] given as sign + magnitude limits. */
static IntResult
text_to_int (const char *s, gsize len, gboolean is_signed, gboolean is64,
             gint64 *out_i, guint64 *out_u)
{
  const char *p = s, *end = s + len;
  gboolean neg = FALSE;
  const char *first_nz = NULL, *last_nz = NULL;
  gssize ndigits = 0, frac_digits = 0, last_nz_index = -1;
  gint64 exp = 0, e;
  gssize sig_len;
  guint64 mag = 0;
  gboolean in_frac = FALSE;

  if (!number_syntax_ok (s, len))
    return INT_SYNTAX;
  if (*p == '-')
    {
      neg = TRUE;
      p++;
    }
  for (; p < end && *p != 'e' && *p != 'E'; p++)
    {
      if (*p == '.')
        {
          in_frac = TRUE;
          continue;
        }
      if (*p != '0')
        {
          if (first_nz == NULL)
            first_nz = p;
          last_nz = p;
          last_nz_index = ndigits;
        }
      ndigits++;
      if (in_frac)
        frac_digits++;
    }
  if (p < end)
    {
      gboolean eneg = FALSE;
      p++;
      if (*p == '+' || *p == '-')
        eneg = *p++ == '-';
      for (; p < end; p++)
        if (exp < 100000)
          exp = exp * 10 + (*p - '0');
      if (eneg)
        exp = -exp;
    }

  if (first_nz == NULL)
    mag = 0;
  else
    {
      /* value = D * 10^e with D = digits first_nz..last_nz */
      e = exp - frac_digits + (ndigits - 1 - last_nz_index);
      if (e < 0)
        return INT_FRACTION;
      sig_len = 0;
      for (const char *q = first_nz; q <= last_nz; q++)
        if (*q != '.')
          sig_len++;
      if (sig_len + e > 20)
        return INT_RANGE;
      for (const char *q = first_nz; q <= last_nz; q++)
        {
          if (*q == '.')
            continue;
          if (mag > (G_MAXUINT64 - (*q - '0')) / 10)
            return INT_RANGE;
          mag = mag * 10 + (*q - '0');
        }
      for (gint64 i = 0; i < e; i++)
        {
          if (mag > G_MAXUINT64 / 10)
            return INT_RANGE;
          mag *= 10;
        }
    }

  if (is_signed)
    {
      guint64 limit = is64 ? (guint64) G_MAXINT64 : (guint64) G_MAXINT32;
      if (neg ? mag > limit + 1 : mag > limit)
        return INT_RANGE;
      *out_i = neg ? (gint64) (0 - mag) : (gint64) mag;
    }
  else
    {
      guint64 limit = is64 ? G_MAXUINT64 : G_MAXUINT32;
      if ((neg && mag != 0) || mag > limit)
        return INT_RANGE;
      *out_u = mag;
    }
  return INT_OK;
}

static gboolean
text_to_double (const char *s, gsize len, gboolean is_float, double *out)
{
  char buf[128];
  g_autofree char *heap = NULL;
  const char *str;
  double v;

  if (len == 3 && memcmp (s, "NaN", 3) == 0)
    {
      *out = NAN;
      return TRUE;
    }
  if (len == 8 && memcmp (s, "Infinity", 8) == 0)
    {
      *out = INFINITY;
      return TRUE;
    }
  if (len == 9 && memcmp (s, "-Infinity", 9) == 0)
    {
      *out = -INFINITY;
      return TRUE;
    }
  if (!number_syntax_ok (s, len))
    return FALSE;
  if (len < sizeof buf)
    {
      memcpy (buf, s, len);
      buf[len] = '\0';
      str = buf;
    }
  else
    str = heap = g_strndup (s, len);
  v = g_ascii_strtod (str, NULL);
  if (!isfinite (v))
    return FALSE;
  if (is_float && isinf ((float) v))  /* out of float range after rounding */
    return FALSE;
  *out = v;
  return TRUE;
}

static gboolean skip_value (Parser *ps);
static ProtobufCMessage *parse_message (Parser *ps, const ProtobufCMessageDescriptor *desc);

static gboolean
enter (Parser *ps)
{
  if (++ps->depth > CP_MESSAGE_MAX_DEPTH)
    return fail (ps, "nesting deeper than %d levels", CP_MESSAGE_MAX_DEPTH);
  return TRUE;
}

static gboolean
skip_value (Parser *ps)
{
  switch (peek (ps))
    {
    case '"':
      return parse_string (ps, ps->scratch, NULL);
    case 't':
      return parse_literal (ps, "true");
    case 'f':
      return parse_literal (ps, "false");
    case 'n':
      return parse_literal (ps, "null");
    case '{':
    case '[':
      {
        char close = peek (ps) == '{' ? '}' : ']';
        gboolean obj = close == '}';
        gboolean more;
        if (!enter (ps))
          return FALSE;
        ps->p++;
        more = !list_empty (ps, close);
        while (more)
          {
            if (obj && (!parse_string (ps, ps->scratch, NULL) || !expect (ps, ':')))
              return FALSE;
            if (!skip_value (ps) || !list_next (ps, close, &more))
              return FALSE;
          }
        ps->depth--;
        return TRUE;
      }
    case '\0':
      return fail (ps, "unexpected end of input");
    default:
      {
        const char *s;
        gsize len;
        return scan_number (ps, &s, &len);
      }
    }
}

static void
free_value (const ProtobufCFieldDescriptor *f, Value *v)
{
  switch (f->type)
    {
    case PROTOBUF_C_TYPE_STRING:
      if (v->s != NULL && v->s != f->default_value)
        free (v->s);
      v->s = NULL;
      break;
    case PROTOBUF_C_TYPE_BYTES:
      {
        const ProtobufCBinaryData *def = f->default_value;
        if (v->bin.data != NULL && (def == NULL || def->data != v->bin.data))
          free (v->bin.data);
        v->bin.data = NULL;
        v->bin.len = 0;
      }
      break;
    case PROTOBUF_C_TYPE_MESSAGE:
      if (v->m != NULL && (const void *) v->m != f->default_value)
        protobuf_c_message_free_unpacked (v->m, NULL);
      v->m = NULL;
      break;
    default:
      break;
    }
}

static const char *
int_error (IntResult r)
{
  switch (r)
    {
    case INT_FRACTION:
      return "not an integer";
    case INT_RANGE:
      return "integer out of range";
    default:
      return "invalid integer";
    }
}

static gboolean
int_from_text (Parser *ps, const ProtobufCFieldDescriptor *f, const char *s, gsize len, Value *out)
{
  gint64 i = 0;
  guint64 u = 0;
  IntResult r;

  switch (f->type)
    {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
      r = text_to_int (s, len, TRUE, FALSE, &i, &u);
      if (r == INT_OK)
        {
          if (f->type == PROTOBUF_C_TYPE_ENUM)
            out->e = (int) i;
          else
            out->i32 = (int32_t) i;
        }
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
      r = text_to_int (s, len, FALSE, FALSE, &i, &u);
      out->u32 = (uint32_t) u;
      break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
      r = text_to_int (s, len, TRUE, TRUE, &i, &u);
      out->i64 = i;
      break;
    default:
      r = text_to_int (s, len, FALSE, TRUE, &i, &u);
      out->u64 = u;
      break;
    }
  if (r != INT_OK)
    return fail (ps, "field %s: %s", f->name, int_error (r));
  return TRUE;
}

static gboolean
base64_decode_liberal (const char *s, gsize len, ProtobufCBinaryData *out)
{
  guint8 *buf;
  gsize n = 0;
  guint32 acc = 0;
  int bits = 0;

  while (len > 0 && s[len - 1] == '=')
    len--;
  if (len % 4 == 1)
    return FALSE;
  buf = g_malloc (len * 3 / 4 + 1);
  for (gsize i = 0; i < len; i++)
    {
      char c = s[i];
      int v;
      if (c >= 'A' && c <= 'Z')
        v = c - 'A';
      else if (c >= 'a' && c <= 'z')
        v = c - 'a' + 26;
      else if (c >= '0' && c <= '9')
        v = c - '0' + 52;
      else if (c == '+' || c == '-')
        v = 62;
      else if (c == '/' || c == '_')
        v = 63;
      else
        {
          g_free (buf);
          return FALSE;
        }
      acc = (acc << 6) | v;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          buf[n++] = (acc >> bits) & 0xff;
        }
    }
  if (n == 0)
    {
      g_free (buf);
      buf = NULL;
    }
  out->data = buf;
  out->len = n;
  return TRUE;
}

/* The text of a number, bare or (proto3 JSON allows both) quoted, for
 * field @f; @what says what was expected otherwise. */
static gboolean
number_text (Parser *ps, const ProtobufCFieldDescriptor *f, const char *what,
             const char **out_s, gsize *out_len)
{
  char c = peek (ps);

  if (c == '"')
    {
      if (!parse_string (ps, ps->scratch, NULL))
        return FALSE;
      *out_s = ps->scratch->str;
      *out_len = ps->scratch->len;
      return TRUE;
    }
  if (c == '-' || g_ascii_isdigit (c))
    return scan_number (ps, out_s, out_len);
  return fail (ps, "field %s: %s", f->name, what);
}

/* Parses one value of field @f's type (not null, not repeated). */
static ParseResult
parse_value (Parser *ps, const ProtobufCFieldDescriptor *f, Value *out)
{
  char c = peek (ps);
  gboolean has_nul;

  memset (out, 0, sizeof *out);
  switch (f->type)
    {
    case PROTOBUF_C_TYPE_ENUM:
      if (c == '"')
        {
          const ProtobufCEnumValue *ev;
          if (!parse_string (ps, ps->scratch, NULL))
            return PARSE_ERROR;
          ev = protobuf_c_enum_descriptor_get_value_by_name (f->descriptor, ps->scratch->str);
          if (ev == NULL)
            return PARSE_SKIP;  /* unknown names are ignored, like unknown fields */
          out->e = ev->value;
          return PARSE_OK;
        }
      /* otherwise a number, read like an int32 (never quoted here) */
      G_GNUC_FALLTHROUGH;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
      {
        const char *s;
        gsize len;

        if (!number_text (ps, f, f->type == PROTOBUF_C_TYPE_ENUM ? "expected an enum name or number"
                                                                 : "expected an integer", &s, &len))
          return PARSE_ERROR;
        return int_from_text (ps, f, s, len, out);
      }

    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
      {
        gboolean is_float = f->type == PROTOBUF_C_TYPE_FLOAT;
        double d;
        const char *s;
        gsize len;

        if (!number_text (ps, f, "expected a number", &s, &len))
          return PARSE_ERROR;
        if (!text_to_double (s, len, is_float, &d))
          return fail (ps, "field %s: invalid or out of range number", f->name);
        if (is_float)
          out->f = (float) d;
        else
          out->d = d;
        return PARSE_OK;
      }

    case PROTOBUF_C_TYPE_BOOL:
      if (c == 't')
        {
          out->b = TRUE;
          return parse_literal (ps, "true");
        }
      if (c == 'f')
        {
          out->b = FALSE;
          return parse_literal (ps, "false");
        }
      return fail (ps, "field %s: expected true or false", f->name);

    case PROTOBUF_C_TYPE_STRING:
      if (c != '"')
        return fail (ps, "field %s: expected a string", f->name);
      if (!parse_string (ps, ps->scratch, &has_nul))
        return PARSE_ERROR;
      if (has_nul)
        return fail (ps, "field %s: string contains U+0000", f->name);
      out->s = g_strndup (ps->scratch->str, ps->scratch->len);
      return PARSE_OK;

    case PROTOBUF_C_TYPE_BYTES:
      if (c != '"')
        return fail (ps, "field %s: expected a base64 string", f->name);
      if (!parse_string (ps, ps->scratch, NULL))
        return PARSE_ERROR;
      if (!base64_decode_liberal (ps->scratch->str, ps->scratch->len, &out->bin))
        return fail (ps, "field %s: invalid base64", f->name);
      return PARSE_OK;

    case PROTOBUF_C_TYPE_MESSAGE:
      out->m = parse_message (ps, f->descriptor);
      return out->m != NULL ? PARSE_OK : PARSE_ERROR;

    default:
      return fail (ps, "field %s: unsupported type", f->name);
    }
}

/* Parses one value into singular field @f of @m (an unknown enum name
 * leaves the field as it was). */
static gboolean
parse_singular (Parser *ps, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  Value v;
  ParseResult r = parse_value (ps, f, &v);

  if (r == PARSE_ERROR)
    return FALSE;
  if (r == PARSE_OK)
    cp_proto_field_set (m, f, &v);
  return TRUE;
}

/* Frees the @n elements of repeated field @f at @arr, not @arr itself. */
static void
free_array_values (const ProtobufCFieldDescriptor *f, guint8 *arr, size_t n)
{
  gsize size = cp_proto_type_size (f->type);

  for (size_t i = 0; i < n; i++)
    {
      Value v;
      memcpy (&v, arr + i * size, size);
      if (f->type == PROTOBUF_C_TYPE_STRING)
        free (v.s);  /* repeated strings are always owned */
      else
        free_value (f, &v);
    }
}

/* Frees whatever field @f holds and resets it to its default. */
void
cp_proto_field_clear (ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  void *member = MEMBER (m, f->offset);
  gsize size = cp_proto_type_size (f->type);

  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    {
      size_t *n = MEMBER (m, f->quantifier_offset);
      guint8 *arr = *(guint8 **) member;
      if (arr != NULL)
        free_array_values (f, arr, *n);
      free (arr);
      *(void **) member = NULL;
      *n = 0;
      return;
    }

  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    {
      uint32_t *oneof_case = MEMBER (m, f->quantifier_offset);
      Value v;
      if (*oneof_case != f->id)
        return;
      memcpy (&v, member, size);
      free_value (f, &v);
      memset (member, 0, size);
      *oneof_case = 0;
      return;
    }

  {
    Value v;
    memcpy (&v, member, size);
    free_value (f, &v);
    /* back to what protobuf_c_message_init () puts there */
    switch (f->type)
      {
      case PROTOBUF_C_TYPE_STRING:
        *(char **) member = (char *) f->default_value;
        break;
      case PROTOBUF_C_TYPE_BYTES:
        if (f->default_value != NULL)
          *(ProtobufCBinaryData *) member = *(const ProtobufCBinaryData *) f->default_value;
        else
          memset (member, 0, size);
        break;
      case PROTOBUF_C_TYPE_MESSAGE:
        *(void **) member = NULL;
        break;
      default:
        if (f->default_value != NULL)
          memcpy (member, f->default_value, size);
        else
          memset (member, 0, size);
      }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE)
      *(protobuf_c_boolean *) MEMBER (m, f->quantifier_offset) = FALSE;
  }
}

/* Stores @v (ownership taken) into singular field @f. */
void
cp_proto_field_set (ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, gconstpointer v)
{
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    {
      uint32_t *oneof_case = MEMBER (m, f->quantifier_offset);
      if (*oneof_case != 0)
        {
          const ProtobufCFieldDescriptor *cur =
            protobuf_c_message_descriptor_get_field (m->descriptor, *oneof_case);
          if (cur != NULL)
            cp_proto_field_clear (m, cur);
        }
      *oneof_case = f->id;
    }
  else
    cp_proto_field_clear (m, f);
  memcpy (MEMBER (m, f->offset), v, cp_proto_type_size (f->type));
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
      f->type != PROTOBUF_C_TYPE_MESSAGE)
    *(protobuf_c_boolean *) MEMBER (m, f->quantifier_offset) = TRUE;
}

static void
free_elements (const ProtobufCFieldDescriptor *f, GArray *arr)
{
  free_array_values (f, (guint8 *) arr->data, arr->len);
  g_array_free (arr, TRUE);
}

void
cp_proto_field_set_repeated (ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, GArray *arr)
{
  cp_proto_field_clear (m, f);
  *(size_t *) MEMBER (m, f->quantifier_offset) = arr->len;
  if (arr->len == 0)
    {
      g_array_free (arr, TRUE);
      return;
    }
  *(void **) MEMBER (m, f->offset) = g_array_free (arr, FALSE);
}

/* A JSON array into repeated field @f; null elements only when @null_ok
 * (google.protobuf.ListValue, whose elements are Values). */
static gboolean
parse_repeated (Parser *ps, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, gboolean null_ok)
{
  GArray *arr = g_array_new (FALSE, TRUE, cp_proto_type_size (f->type));
  gboolean more;

  if (!expect (ps, '['))
    goto error;
  more = !list_empty (ps, ']');
  while (more)
    {
      Value v;
      ParseResult r;
      if (!null_ok && peek (ps) == 'n')
        {
          fail (ps, "field %s: null inside a list", f->name);
          goto error;
        }
      r = parse_value (ps, f, &v);
      if (r == PARSE_ERROR)
        goto error;
      if (r == PARSE_OK)
        g_array_append_vals (arr, &v, 1);
      if (!list_next (ps, ']', &more))
        goto error;
    }
  cp_proto_field_set_repeated (m, f, arr);
  return TRUE;

error:
  free_elements (f, arr);
  return FALSE;
}

static gboolean
parse_map_key (Parser *ps, const ProtobufCFieldDescriptor *kf, const char *key, gsize len, Value *out)
{
  memset (out, 0, sizeof *out);
  switch (kf->type)
    {
    case PROTOBUF_C_TYPE_STRING:
      if (memchr (key, '\0', len) != NULL)
        return fail (ps, "map key contains U+0000");
      out->s = g_strndup (key, len);
      return TRUE;
    case PROTOBUF_C_TYPE_BOOL:
      if (strcmp (key, "true") == 0)
        out->b = TRUE;
      else if (strcmp (key, "false") == 0)
        out->b = FALSE;
      else
        return fail (ps, "invalid bool map key");
      return TRUE;
    default:
      return int_from_text (ps, kf, key, len, out);
    }
}

static gboolean
parse_map (Parser *ps, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
  GArray *arr = g_array_new (FALSE, TRUE, sizeof (ProtobufCMessage *));
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                       (GDestroyNotify) g_bytes_unref, NULL);
  gboolean more;

  if (!expect (ps, '{'))
    goto error;
  more = !list_empty (ps, '}');
  while (more)
    {
      Value k, v;
      ParseResult r;
      ProtobufCMessage *entry;
      gsize keylen;
      g_autofree char *key = NULL;
      GBytes *canon;
      gpointer idx;

      if (!parse_string (ps, ps->scratch, NULL))
        goto error;
      keylen = ps->scratch->len;
      key = g_strndup (ps->scratch->str, keylen);
      if (!expect (ps, ':'))
        goto error;
      if (!parse_map_key (ps, kf, key, keylen, &k))
        goto error;
      if (peek (ps) == 'n' &&
          !(vf->type == PROTOBUF_C_TYPE_MESSAGE &&
            is_named (vf->descriptor, "google.protobuf.Value")))
        {
          free_value (kf, &k);
          fail (ps, "field %s: null map value", f->name);
          goto error;
        }
      r = parse_value (ps, vf, &v);
      if (r == PARSE_ERROR)
        {
          free_value (kf, &k);
          goto error;
        }
      if (r == PARSE_SKIP)
        {
          free_value (kf, &k);
          goto next;
        }
      entry = cp_proto_message_new (ed);
      cp_proto_field_set (entry, kf, &k);
      cp_proto_field_set (entry, vf, &v);

      /* duplicate keys: the last one wins */
      if (kf->type == PROTOBUF_C_TYPE_STRING)
        canon = g_bytes_new (k.s, strlen (k.s));
      else
        canon = g_bytes_new (&k, cp_proto_type_size (kf->type));
      if (g_hash_table_lookup_extended (seen, canon, NULL, &idx))
        {
          ProtobufCMessage **slot = &g_array_index (arr, ProtobufCMessage *, GPOINTER_TO_UINT (idx));
          protobuf_c_message_free_unpacked (*slot, NULL);
          *slot = entry;
          g_bytes_unref (canon);
        }
      else
        {
          g_hash_table_insert (seen, canon, GUINT_TO_POINTER (arr->len));
          g_array_append_val (arr, entry);
        }

    next:
      if (!list_next (ps, '}', &more))
        goto error;
    }
  cp_proto_field_set_repeated (m, f, arr);
  return TRUE;

error:
  free_elements (f, arr);
  return FALSE;
}

const ProtobufCFieldDescriptor *
cp_proto_field_lookup (const ProtobufCMessageDescriptor *desc, const char *key)
{
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name (desc, key);
  if (f != NULL)
    return f;
  for (unsigned i = 0; i < desc->n_fields; i++)
    if (json_name_equal (desc->fields[i].name, key))
      return &desc->fields[i];
  return NULL;
}

static gboolean parse_fields (Parser *ps, ProtobufCMessage *m, gboolean any_body);

/* Sets the member @name of google.protobuf.Value's `kind` oneof. */
static void
set_value_kind (ProtobufCMessage *m, const char *name, Value *v)
{
  const ProtobufCFieldDescriptor *f = field_named (m->descriptor, name);

  g_assert (f != NULL);
  cp_proto_field_set (m, f, v);
}

static gboolean
parse_struct_value (Parser *ps, ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  const ProtobufCFieldDescriptor *f;
  Value v;

  memset (&v, 0, sizeof v);
  switch (peek (ps))
    {
    case 'n':
      if (!parse_literal (ps, "null"))
        return FALSE;
      set_value_kind (m, "null_value", &v);
      return TRUE;
    case 't':
    case 'f':
      f = field_named (desc, "bool_value");
      if (f == NULL || parse_value (ps, f, &v) != PARSE_OK)
        return FALSE;
      cp_proto_field_set (m, f, &v);
      return TRUE;
    case '"':
      f = field_named (desc, "string_value");
      if (f == NULL || parse_value (ps, f, &v) != PARSE_OK)
        return FALSE;
      cp_proto_field_set (m, f, &v);
      return TRUE;
    case '{':
      f = field_named (desc, "struct_value");
      break;
    case '[':
      f = field_named (desc, "list_value");
      break;
    default:
      {
        const char *s;
        gsize len;

        f = field_named (desc, "number_value");
        if (f == NULL || !scan_number (ps, &s, &len))
          return FALSE;
        if (!text_to_double (s, len, FALSE, &v.d))
          return fail (ps, "google.protobuf.Value: invalid or out of range number");
        cp_proto_field_set (m, f, &v);
        return TRUE;
      }
    }
  if (f == NULL)
    return fail (ps, "malformed google.protobuf.Value descriptor");
  v.m = parse_message (ps, f->descriptor);
  if (v.m == NULL)
    return FALSE;
  cp_proto_field_set (m, f, &v);
  return TRUE;
}

static gboolean
parse_list_value (Parser *ps, ProtobufCMessage *m)
{
  const ProtobufCFieldDescriptor *f = field_named (m->descriptor, "values");

  if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
    return fail (ps, "malformed google.protobuf.ListValue descriptor");
  return parse_repeated (ps, m, f, TRUE);
}

/* google.protobuf.Any: finds "@type" first (it may come after the other
 * members), then reads the object again as the named message, packs it. */
static gboolean
parse_any (Parser *ps, ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  const ProtobufCFieldDescriptor *url_f = field_named (desc, "type_url");
  const ProtobufCFieldDescriptor *value_f = field_named (desc, "value");
  const ProtobufCMessageDescriptor *inner_desc;
  const char *start = ps->p;
  g_autofree char *url = NULL;
  ProtobufCMessage *inner = NULL;
  gboolean empty = TRUE;
  gboolean more;
  Value v;

  if (url_f == NULL || value_f == NULL)
    return fail (ps, "malformed google.protobuf.Any descriptor");
  if (!expect (ps, '{'))
    return FALSE;
  more = !list_empty (ps, '}');
  while (more)
    {
      gboolean has_nul;

      empty = FALSE;
      if (!parse_string (ps, ps->scratch, &has_nul) || !expect (ps, ':'))
        return FALSE;
      if (!has_nul && strcmp (ps->scratch->str, "@type") == 0)
        {
          if (url != NULL)
            return fail (ps, "google.protobuf.Any: duplicate \"@type\"");
          if (peek (ps) != '"' || !parse_string (ps, ps->scratch, &has_nul))
            return fail (ps, "google.protobuf.Any: \"@type\" must be a string");
          url = g_strndup (ps->scratch->str, ps->scratch->len);
        }
      else if (!skip_value (ps))
        return FALSE;
      if (!list_next (ps, '}', &more))
        return FALSE;
    }
  if (url == NULL)
    {
      if (empty)
        return TRUE;
      return fail (ps, "google.protobuf.Any: missing \"@type\"");
    }
  inner_desc = any_lookup (url);
  if (inner_desc == NULL)
    return fail (ps, "google.protobuf.Any: unknown message type \"%s\"", url);

  {
    const char *end = ps->p;

    ps->p = start;
    if (has_special_json (inner_desc))
      {
        /* {"@type": ..., "value": <special form>} */
        ps->p++;
        more = TRUE;  /* the first pass found "@type" */
        while (more)
          {
            gboolean has_nul;

            if (!parse_string (ps, ps->scratch, &has_nul) || !expect (ps, ':'))
              goto error;
            if (!has_nul && strcmp (ps->scratch->str, "value") == 0 && inner == NULL)
              {
                inner = parse_message (ps, inner_desc);
                if (inner == NULL)
                  goto error;
              }
            else if (!skip_value (ps))
              goto error;
            if (!list_next (ps, '}', &more))
              goto error;
          }
        if (inner == NULL)
          inner = cp_proto_message_new (inner_desc);
      }
    else
      {
        inner = cp_proto_message_new (inner_desc);
        if (!enter (ps) || !parse_fields (ps, inner, TRUE))
          goto error;
        ps->depth--;
      }
    g_assert (ps->p == end);
  }

  memset (&v, 0, sizeof v);
  v.bin.len = protobuf_c_message_get_packed_size (inner);
  v.bin.data = g_malloc (v.bin.len > 0 ? v.bin.len : 1);
  protobuf_c_message_pack (inner, v.bin.data);
  protobuf_c_message_free_unpacked (inner, NULL);
  if (v.bin.len == 0)
    {
      g_free (v.bin.data);
      v.bin.data = NULL;
    }
  cp_proto_field_set (m, value_f, &v);
  memset (&v, 0, sizeof v);
  v.s = g_steal_pointer (&url);
  cp_proto_field_set (m, url_f, &v);
  return TRUE;

error:
  if (inner != NULL)
    protobuf_c_message_free_unpacked (inner, NULL);
  return FALSE;
}

static gboolean
parse_special (Parser *ps, ProtobufCMessage *m, gboolean *handled)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;

  *handled = TRUE;
  if (is_named (desc, "google.protobuf.Any"))
    return parse_any (ps, m);
  if (is_named (desc, "google.protobuf.Value"))
    return parse_struct_value (ps, m);
  if (is_named (desc, "google.protobuf.ListValue"))
    return parse_list_value (ps, m);
  if (is_named (desc, "google.protobuf.Struct") && field_named (desc, "fields") != NULL &&
      cp_proto_field_is_map (desc, field_named (desc, "fields")))
    {
      if (peek (ps) != '{')
        return fail (ps, "expected an object for google.protobuf.Struct");
      return parse_map (ps, m, field_named (desc, "fields"));
    }
  *handled = FALSE;
  return TRUE;
}

static ProtobufCMessage *
parse_message (Parser *ps, const ProtobufCMessageDescriptor *desc)
{
  ProtobufCMessage *m;

  if (!enter (ps))
    return NULL;
  m = cp_proto_message_new (desc);

  if (is_wrapper (desc))
    {
      if (!parse_singular (ps, m, &desc->fields[0]))
        goto error;
      ps->depth--;
      return m;
    }

  if (g_str_has_prefix (desc->name, "google.protobuf."))
    {
      gboolean handled = FALSE;
      gboolean ok = parse_special (ps, m, &handled);

      if (handled)
        {
          if (!ok)
            goto error;
          ps->depth--;
          return m;
        }
    }

  if (!parse_fields (ps, m, FALSE))
    goto error;
  ps->depth--;
  return m;

error:
  protobuf_c_message_free_unpacked (m, NULL);
  return NULL;
}

/* Per field of a message being parsed: seen (under either name), set as
 * a oneof member (with a non-null value). */
#define FIELD_SEEN  1
#define FIELD_ONEOF 2

/* As protobuf-go: a field named twice (also once by its proto name and
 * once by its JSON name), or two non-null members of one oneof, is an
 * error rather than "last wins". */
static gboolean
check_duplicate (Parser                         *ps,
                 const ProtobufCMessage         *m,
                 const ProtobufCFieldDescriptor *f,
                 guint8                         *marks,
                 gboolean                        is_null)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  gsize index = f - desc->fields;

  if (marks[index] & FIELD_SEEN)
    return fail (ps, "duplicate field %s of %s", f->name, desc->name);
  marks[index] |= FIELD_SEEN;
  if (is_null || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    return TRUE;
  for (guint i = 0; i < desc->n_fields; i++)
    if ((marks[i] & FIELD_ONEOF) && desc->fields[i].quantifier_offset == f->quantifier_offset)
      return fail (ps, "field %s of %s: its oneof is already set by %s",
                   f->name, desc->name, desc->fields[i].name);
  marks[index] |= FIELD_ONEOF;
  return TRUE;
}

static gboolean parse_fields_marked (Parser *ps, ProtobufCMessage *m, gboolean any_body,
                                     guint8 *marks);

/* The members of a JSON object into @m's fields. In the body of an Any
 * (@any_body), the "@type" member is skipped. */
static gboolean
parse_fields (Parser *ps, ProtobufCMessage *m, gboolean any_body)
{
  guint n_fields = m->descriptor->n_fields;
  guint8 stack_marks[64];
  g_autofree guint8 *heap_marks = NULL;
  guint8 *marks = stack_marks;

  if (n_fields > sizeof stack_marks)
    marks = heap_marks = g_malloc0 (n_fields);
  else
    memset (stack_marks, 0, sizeof stack_marks);
  return parse_fields_marked (ps, m, any_body, marks);
}

static gboolean
parse_fields_marked (Parser *ps, ProtobufCMessage *m, gboolean any_body, guint8 *marks)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  gboolean more;

  if (peek (ps) != '{')
    return fail (ps, "expected an object for message %s", desc->name);
  ps->p++;
  more = !list_empty (ps, '}');
  while (more)
    {
      const ProtobufCFieldDescriptor *f;
      gboolean has_nul;

      if (peek (ps) != '"')
        return fail (ps, "expected a field name");
      if (!parse_string (ps, ps->scratch, &has_nul) || !expect (ps, ':'))
        return FALSE;
      f = has_nul ? NULL : cp_proto_field_lookup (desc, ps->scratch->str);
      if (any_body && !has_nul && strcmp (ps->scratch->str, "@type") == 0)
        f = NULL;

      if (f == NULL)
        {
          /* unknown fields are ignored (docs/engine.md, "JSON") */
          if (!skip_value (ps))
            return FALSE;
        }
      else if (!check_duplicate (ps, m, f, marks, peek (ps) == 'n'))
        return FALSE;
      else if (peek (ps) == 'n')
        {
          if (!parse_literal (ps, "null"))
            return FALSE;
          if (f->type == PROTOBUF_C_TYPE_ENUM && f->label != PROTOBUF_C_LABEL_REPEATED &&
              strcmp (((const ProtobufCEnumDescriptor *) f->descriptor)->name,
                      "google.protobuf.NullValue") == 0)
            {
              Value v = { .e = 0 };
              cp_proto_field_set (m, f, &v);
            }
          else if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
                   is_named (f->descriptor, "google.protobuf.Value"))
            {
              Value v = { .m = cp_proto_message_new (f->descriptor) };
              set_value_kind (v.m, "null_value", &(Value) { .e = 0 });
              cp_proto_field_set (m, f, &v);
            }
          else
            cp_proto_field_clear (m, f);
        }
      else if (f->label == PROTOBUF_C_LABEL_REPEATED)
        {
          if (cp_proto_field_is_map (desc, f) ? !parse_map (ps, m, f) : !parse_repeated (ps, m, f, FALSE))
            return FALSE;
        }
      else if (!parse_singular (ps, m, f))
        return FALSE;

      if (!list_next (ps, '}', &more))
        return FALSE;
    }
  return TRUE;
}

ProtobufCMessage *
cp_json_decode (const ProtobufCMessageDescriptor *descriptor,
                const char                       *data,
                gsize                             len,
                GError                          **error)
{
  g_autoptr(GString) scratch = NULL;
  Parser ps;
  ProtobufCMessage *m;

  g_return_val_if_fail (descriptor != NULL, NULL);
  g_return_val_if_fail (data != NULL || len == 0, NULL);

  /* Before any pointer arithmetic: empty data may be NULL (NULL + 0 is UB). */
  if (len == 0)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "invalid JSON: empty input");
      return NULL;
    }
  scratch = g_string_new (NULL);
  ps = (Parser) { data, data, data + len, 0, error, scratch };
  if (!g_utf8_validate_len (data, len, NULL))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "invalid JSON: not valid UTF-8");
      return NULL;
    }
  if (peek (&ps) == '\0')
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "invalid JSON: empty input");
      return NULL;
    }
  m = parse_message (&ps, descriptor);
  if (m == NULL)
    return NULL;
  if (peek (&ps) != '\0')
    {
      fail (&ps, "trailing data after the message");
      protobuf_c_message_free_unpacked (m, NULL);
      return NULL;
    }
  return m;
}

/* ------------------------------------------------------------------ */
/* JsonNode entry points                                                */

JsonNode *
cp_json_from_message (const ProtobufCMessage *message,
                      GError                **error)
{
  gsize len;
  g_autofree char *text = cp_json_encode (message, &len, error);
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local_error = NULL;

  if (text == NULL)
    return NULL;
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, text, len, &local_error))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "%s", local_error->message);
      return NULL;
    }
  return json_node_copy (json_parser_get_root (parser));
}

ProtobufCMessage *
cp_json_to_message (const ProtobufCMessageDescriptor *descriptor,
                    JsonNode                         *node,
                    GError                          **error)
{
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;
  gsize len;

  g_return_val_if_fail (node != NULL, NULL);

  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, &len);
  return cp_json_decode (descriptor, text, len, error);
}

/* ------------------------------------------------------------------ */
/* Binary pre-scan                                                      */

static gboolean
read_varint (const guint8 *data, gsize len, gsize *pos, guint64 *out)
{
  guint64 v = 0;
  for (int shift = 0; shift < 70 && *pos < len; shift += 7)
    {
      guint8 b = data[(*pos)++];
      if (shift < 64)
        v |= (guint64) (b & 0x7f) << shift;
      if (!(b & 0x80))
        {
          *out = v;
          return TRUE;
        }
    }
  return FALSE;
}

/* What protobuf-c allocates while unpacking, estimated per field on the
 * wire: a ScannedMember (32 bytes on 64-bit) for every field; an unknown
 * field adds its ProtobufCMessageUnknownField (24) and a malloc'd copy
 * of its bytes (a 32-byte chunk at least). */
#define DECODED_FIELD_COST   32
#define DECODED_UNKNOWN_COST (24 + 32)

typedef struct {
  gsize cost;      /* estimated decoded bytes so far */
  gsize max_cost;  /* 0: unbounded */
} PrescanBudget;

static gboolean
budget_add (PrescanBudget *budget,
            gsize          cost)
{
  budget->cost += MIN (cost, G_MAXSIZE - budget->cost);
  return budget->max_cost == 0 || budget->cost <= budget->max_cost;
}

/* The estimated decoded cost of one field (@v: the length of a
 * length-delimited one, else 0); nested messages add their own fields. */
static gsize
field_cost (const ProtobufCFieldDescriptor *f,
            guint                           wire_type,
            guint64                         v)
{
  if (f == NULL)
    return DECODED_FIELD_COST + DECODED_UNKNOWN_COST + (wire_type == 2 ? v : 0);
  if (wire_type != 2)
    return DECODED_FIELD_COST + 8;
  if (f->type == PROTOBUF_C_TYPE_MESSAGE)
    return DECODED_FIELD_COST + ((const ProtobufCMessageDescriptor *) f->descriptor)->sizeof_message;
  if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES)
    return DECODED_FIELD_COST + 16 + v;
  /* Packed scalars: at most 8 bytes per wire byte (1-byte varints into
   * 64-bit elements). */
  return DECODED_FIELD_COST + 8 * v;
}

static gboolean
prescan (const ProtobufCMessageDescriptor *desc,
         const guint8                     *data,
         gsize                             len,
         guint                             depth,
         PrescanBudget                    *budget,
         GError                          **error)
{
  gsize pos = 0;

  if (depth > CP_MESSAGE_MAX_DEPTH)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "message nesting deeper than %d levels", CP_MESSAGE_MAX_DEPTH);
      return FALSE;
    }
  while (pos < len)
    {
      guint64 tag, v;
      const ProtobufCFieldDescriptor *f;

      if (!read_varint (data, len, &pos, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        goto malformed;
      f = protobuf_c_message_descriptor_get_field (desc, (unsigned) (tag >> 3));
      switch (tag & 7)
        {
        case 0:
          if (!read_varint (data, len, &pos, &v))
            goto malformed;
          break;
        case 1:
          if (len - pos < 8)
            goto malformed;
          pos += 8;
          break;
        case 5:
          if (len - pos < 4)
            goto malformed;
          pos += 4;
          break;
        case 2:
          if (!read_varint (data, len, &pos, &v) || v > len - pos)
            goto malformed;
          if (!budget_add (budget, field_cost (f, 2, v)))
            goto too_big;
          if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE)
            {
              if (!prescan (f->descriptor, data + pos, v, depth + 1, budget, error))
                return FALSE;
            }
          else if (f != NULL && f->type == PROTOBUF_C_TYPE_STRING &&
                   !g_utf8_validate_len ((const char *) data + pos, v, NULL))
            {
              g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "invalid protobuf message: field %s of %s is not valid UTF-8",
                           f->name, desc->name);
              return FALSE;
            }
          pos += v;
          break;
        default:
          goto malformed;
        }
      if ((tag & 7) != 2 && !budget_add (budget, field_cost (f, tag & 7, 0)))
        goto too_big;
    }
  return TRUE;

too_big:
  g_set_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
               "message %s would take more than %" G_GSIZE_FORMAT " bytes once decoded",
               desc->name, budget->max_cost);
  return FALSE;

malformed:
  g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
               "invalid protobuf message: malformed %s", desc->name);
  return FALSE;
}

gboolean
cp_proto_prescan (const ProtobufCMessageDescriptor *descriptor,
                  const guint8                     *data,
                  gsize                             len,
                  gsize                             max_decoded,
                  GError                          **error)
{
  PrescanBudget budget = { descriptor->sizeof_message, max_decoded };

  return prescan (descriptor, data, len, 1, &budget, error);
}
