/* cp-proto-prescan.c: checks binary protobuf before protobuf-c unpacks it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * protobuf-c recurses without a depth limit, takes strings without
 * checking UTF-8 and allocates per field far more than the wire size:
 * cp_proto_prescan() walks the wire format once against the descriptor
 * to refuse such input first (cp-codec-private.h).
 */
#include <string.h>

#include "cp-codec-private.h"
#include "cp-error.h"

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
