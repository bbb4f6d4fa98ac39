/* cp-proto-field.c: field access by protobuf-c descriptor
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Reads, stores and frees one field of a ProtobufCMessage from its
 * ProtobufCFieldDescriptor alone: what the JSON reader and writer, the
 * GValue accessors of CpMessage and the well-known classes share. Values
 * travel as CpProtoValue (the field's C storage type); every pointer stored
 * into a message is malloc'd (g_malloc is malloc), so
 * protobuf_c_message_free_unpacked (m, NULL) frees it.
 */
#include <stdlib.h>
#include <string.h>

#include "cp-proto-field-private.h"

/* ------------------------------------------------------------------ */
/* Names                                                                */

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

/* ------------------------------------------------------------------ */
/* Reading                                                              */

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
  const void *member = CP_PROTO_CMEMBER (m, f->offset);
  gboolean ptr_type = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE;

  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return *(const size_t *) CP_PROTO_CMEMBER (m, f->quantifier_offset) > 0;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    {
      if (*(const uint32_t *) CP_PROTO_CMEMBER (m, f->quantifier_offset) != f->id)
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
      return *(const protobuf_c_boolean *) CP_PROTO_CMEMBER (m, f->quantifier_offset);
    case PROTOBUF_C_LABEL_NONE:
    default:
      return !member_is_zeroish (f, member);
    }
}

/* ------------------------------------------------------------------ */
/* Storing and freeing                                                  */

void
cp_proto_value_free (const ProtobufCFieldDescriptor *f, CpProtoValue *v)
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

/* Frees the @n elements of repeated field @f at @arr, not @arr itself. */
static void
free_array_values (const ProtobufCFieldDescriptor *f, guint8 *arr, size_t n)
{
  gsize size = cp_proto_type_size (f->type);

  for (size_t i = 0; i < n; i++)
    {
      CpProtoValue v;
      memcpy (&v, arr + i * size, size);
      if (f->type == PROTOBUF_C_TYPE_STRING)
        free (v.s);  /* repeated strings are always owned */
      else
        cp_proto_value_free (f, &v);
    }
}

/* Frees whatever field @f holds and resets it to its default. */
void
cp_proto_field_clear (ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
  void *member = CP_PROTO_MEMBER (m, f->offset);
  gsize size = cp_proto_type_size (f->type);

  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    {
      size_t *n = CP_PROTO_MEMBER (m, f->quantifier_offset);
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
      uint32_t *oneof_case = CP_PROTO_MEMBER (m, f->quantifier_offset);
      CpProtoValue v;
      if (*oneof_case != f->id)
        return;
      memcpy (&v, member, size);
      cp_proto_value_free (f, &v);
      memset (member, 0, size);
      *oneof_case = 0;
      return;
    }

  {
    CpProtoValue v;
    memcpy (&v, member, size);
    cp_proto_value_free (f, &v);
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
      *(protobuf_c_boolean *) CP_PROTO_MEMBER (m, f->quantifier_offset) = FALSE;
  }
}

/* Stores @v (ownership taken) into singular field @f. */
void
cp_proto_field_set (ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, gconstpointer v)
{
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    {
      uint32_t *oneof_case = CP_PROTO_MEMBER (m, f->quantifier_offset);
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
  memcpy (CP_PROTO_MEMBER (m, f->offset), v, cp_proto_type_size (f->type));
  if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
      f->type != PROTOBUF_C_TYPE_MESSAGE)
    *(protobuf_c_boolean *) CP_PROTO_MEMBER (m, f->quantifier_offset) = TRUE;
}

void
cp_proto_field_free_elements (const ProtobufCFieldDescriptor *f, GArray *arr)
{
  free_array_values (f, (guint8 *) arr->data, arr->len);
  g_array_free (arr, TRUE);
}

void
cp_proto_field_set_repeated (ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, GArray *arr)
{
  cp_proto_field_clear (m, f);
  *(size_t *) CP_PROTO_MEMBER (m, f->quantifier_offset) = arr->len;
  if (arr->len == 0)
    {
      g_array_free (arr, TRUE);
      return;
    }
  *(void **) CP_PROTO_MEMBER (m, f->offset) = g_array_free (arr, FALSE);
}
