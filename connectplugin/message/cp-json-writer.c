/* cp-json-writer.c: proto3 JSON text from a protobuf-c message
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Writes JSON text directly rather than through json-glib: its generator
 * prints doubles with 17 digits, which is not the shortest round-trip form
 * the proto3 mapping (https://protobuf.dev/programming-guides/json/) and
 * the other implementations use. Fields are written when protobuf-c would
 * put them on the wire (cp_proto_field_is_set()), under their JSON names.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cp-codec-private.h"
#include "cp-error.h"
#include "cp-json-private.h"
#include "cp-proto-field-private.h"

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
  size_t n = *(const size_t *) CP_PROTO_CMEMBER (m, f->quantifier_offset);
  const guint8 *arr = *(const guint8 * const *) CP_PROTO_CMEMBER (m, f->offset);
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
  size_t n = *(const size_t *) CP_PROTO_CMEMBER (m, f->quantifier_offset);
  ProtobufCMessage * const *entries = *(ProtobufCMessage * const * const *) CP_PROTO_CMEMBER (m, f->offset);
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
          if (!write_map_key (k, kf, CP_PROTO_CMEMBER (entries[i], kf->offset), error))
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
      if (!write_map_key (out, kf, CP_PROTO_CMEMBER (entries[i], kf->offset), error))
        return FALSE;
      if (last != NULL &&
          GPOINTER_TO_SIZE (g_hash_table_lookup (last, out->str + key_start)) != i)
        {
          /* a later entry has the same key */
          g_string_truncate (out, first ? key_start : key_start - 1);
          continue;
        }
      g_string_append_c (out, ':');
      if (!write_value (out, vf, CP_PROTO_CMEMBER (entries[i], vf->offset), error))
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

  if (cp_json_is_wrapper (desc))
    return write_value (out, &desc->fields[0], CP_PROTO_CMEMBER (m, desc->fields[0].offset), error);
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
      else if (!write_value (out, f, CP_PROTO_CMEMBER (m, f->offset), error))
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
          *(const uint32_t *) CP_PROTO_CMEMBER (m, f->quantifier_offset) != f->id)
        continue;
      if (strcmp (f->name, "null_value") == 0)
        {
          g_string_append (out, "null");
          return TRUE;
        }
      if (strcmp (f->name, "number_value") == 0)
        {
          double d = *(const double *) CP_PROTO_CMEMBER (m, f->offset);
          if (!isfinite (d))
            {
              g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "google.protobuf.Value: %s cannot be JSON", isnan (d) ? "NaN" : "Infinity");
              return FALSE;
            }
          write_float (out, d, FALSE);
          return TRUE;
        }
      if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage * const *) CP_PROTO_CMEMBER (m, f->offset) == NULL)
        {
          /* an empty struct or list */
          g_string_append (out, strcmp (f->name, "list_value") == 0 ? "[]" : "{}");
          return TRUE;
        }
      return write_value (out, f, CP_PROTO_CMEMBER (m, f->offset), error);
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
  const ProtobufCFieldDescriptor *url_f = cp_json_field_named (desc, "type_url");
  const ProtobufCFieldDescriptor *value_f = cp_json_field_named (desc, "value");
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
  url = *(char * const *) CP_PROTO_CMEMBER (m, url_f->offset);
  value = CP_PROTO_CMEMBER (m, value_f->offset);
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
  inner_desc = cp_json_any_descriptor (url);
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
  if (cp_json_has_special_form (inner_desc))
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
  if (cp_json_is_named (desc, "google.protobuf.Any"))
    return write_any (out, m, error);
  if (cp_json_is_named (desc, "google.protobuf.Value"))
    return write_struct_value (out, m, error);
  if (cp_json_is_named (desc, "google.protobuf.Struct") && cp_json_field_named (desc, "fields") != NULL)
    {
      const ProtobufCFieldDescriptor *f = cp_json_field_named (desc, "fields");
      if (*(const size_t *) CP_PROTO_CMEMBER (m, f->quantifier_offset) == 0)
        {
          g_string_append (out, "{}");
          return TRUE;
        }
      return write_map (out, f, m, error);
    }
  if (cp_json_is_named (desc, "google.protobuf.ListValue") && cp_json_field_named (desc, "values") != NULL)
    {
      return write_repeated (out, cp_json_field_named (desc, "values"), m, error);
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
/* JsonNode entry point                                                 */

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
