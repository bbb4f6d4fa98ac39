/* cf-common.c: helpers shared by the conformance server and client
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cf-common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

CfArena *
cf_arena_new (void)
{
  return g_ptr_array_new_with_free_func (g_free);
}

gpointer
cf_arena_alloc (CfArena *arena,
                gsize    size)
{
  gpointer p = g_malloc0 (MAX (size, 1));

  g_ptr_array_add (arena, p);
  return p;
}

char *
cf_arena_strdup (CfArena    *arena,
                 const char *s)
{
  char *copy = g_strdup (s != NULL ? s : "");

  g_ptr_array_add (arena, copy);
  return copy;
}

ProtobufCBinaryData
cf_arena_take_bytes (CfArena *arena,
                     GBytes  *bytes)
{
  ProtobufCBinaryData data = { 0, NULL };
  gsize size = 0;
  gpointer copy;

  if (bytes == NULL)
    return data;
  copy = g_bytes_unref_to_data (bytes, &size);
  g_ptr_array_add (arena, copy);
  data.len = size;
  data.data = copy;
  return data;
}

void
cf_headers_to_pb (CfArena             *arena,
                  SoupMessageHeaders  *headers,
                  CfHeader          ***out,
                  size_t              *n_out)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  g_autoptr(GHashTable) values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                        (GDestroyNotify) g_ptr_array_unref);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  *out = NULL;
  *n_out = 0;
  if (headers == NULL)
    return;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      g_autofree char *lower = g_ascii_strdown (name, -1);
      GPtrArray *list = g_hash_table_lookup (values, lower);

      if (list == NULL)
        {
          list = g_ptr_array_new ();
          g_ptr_array_add (names, cf_arena_strdup (arena, lower));
          g_hash_table_insert (values, g_steal_pointer (&lower), list);
        }
      g_ptr_array_add (list, cf_arena_strdup (arena, value));
    }

  *out = cf_arena_alloc (arena, names->len * sizeof (CfHeader *));
  for (guint i = 0; i < names->len; i++)
    {
      CfHeader *h = cf_arena_alloc (arena, sizeof *h);
      GPtrArray *list = g_hash_table_lookup (values, g_ptr_array_index (names, i));

      connectrpc__conformance__v1__header__init (h);
      h->name = g_ptr_array_index (names, i);
      h->n_value = list->len;
      h->value = cf_arena_alloc (arena, list->len * sizeof (char *));
      memcpy (h->value, list->pdata, list->len * sizeof (char *));
      (*out)[i] = h;
    }
  *n_out = names->len;
}

void
cf_headers_from_pb (SoupMessageHeaders *headers,
                    CfHeader * const   *pb,
                    size_t              n_pb)
{
  for (size_t i = 0; i < n_pb; i++)
    for (size_t j = 0; j < pb[i]->n_value; j++)
      soup_message_headers_append (headers, pb[i]->name, pb[i]->value[j]);
}

CfAny *
cf_any_new (CfArena    *arena,
            const char *full_name,
            GBytes     *value)
{
  CfAny *any = cf_arena_alloc (arena, sizeof *any);
  char *url = g_strconcat (CF_TYPE_URL_PREFIX, full_name, NULL);

  google__protobuf__any__init (any);
  g_ptr_array_add (arena, url);
  any->type_url = url;
  any->value = cf_arena_take_bytes (arena, value != NULL ? g_bytes_ref (value) : NULL);
  return any;
}

const char *
cf_any_type_name (const CfAny *any)
{
  const char *slash = any->type_url != NULL ? strrchr (any->type_url, '/') : NULL;

  if (slash != NULL)
    return slash + 1;
  return any->type_url != NULL ? any->type_url : "";
}

GBytes *
cf_pack (const ProtobufCMessage *message)
{
  gsize size = protobuf_c_message_get_packed_size (message);
  guint8 *data = g_malloc (MAX (size, 1));

  protobuf_c_message_pack (message, data);
  return g_bytes_new_take (data, size);
}

CpMessage *
cf_message_with_payload (GType                   type,
                         const ProtobufCMessage *payload)
{
  g_autoptr(GBytes) inner = cf_pack (payload);
  g_autoptr(GByteArray) outer = g_byte_array_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  gsize len = g_bytes_get_size (inner);
  guint8 tag = 0x0a; /* field 1, length-delimited */
  CpMessage *message;

  g_byte_array_append (outer, &tag, 1);
  do
    {
      guint8 b = len & 0x7f;

      len >>= 7;
      if (len != 0)
        b |= 0x80;
      g_byte_array_append (outer, &b, 1);
    }
  while (len != 0);
  g_byte_array_append (outer, g_bytes_get_data (inner, NULL), g_bytes_get_size (inner));
  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&outer));
  message = cp_message_new_from_bytes (type, CP_CODEC_PROTO, bytes, &error);
  g_assert_no_error (error);
  return message;
}

static gboolean
read_exactly (guint8  *buf,
              gsize    size,
              gboolean eof_ok,
              GError **error)
{
  gsize done = 0;

  while (done < size)
    {
      ssize_t n = read (STDIN_FILENO, buf + done, size - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "reading stdin: %s", g_strerror (saved));
          return FALSE;
        }
      if (n == 0)
        {
          if (!(eof_ok && done == 0))
            g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                                 "stdin ended inside a frame");
          return FALSE;
        }
      done += n;
    }
  return TRUE;
}

gboolean
cf_read_frame (GBytes  **frame,
               GError  **error)
{
  guint8 prefix[4];
  guint32 size;
  guint8 *data;

  if (!read_exactly (prefix, sizeof prefix, TRUE, error))
    return FALSE;
  size = ((guint32) prefix[0] << 24) | ((guint32) prefix[1] << 16) |
         ((guint32) prefix[2] << 8) | prefix[3];
  data = g_malloc (MAX (size, 1));
  if (!read_exactly (data, size, FALSE, error))
    {
      g_free (data);
      return FALSE;
    }
  *frame = g_bytes_new_take (data, size);
  return TRUE;
}

void
cf_write_frame (const ProtobufCMessage *message)
{
  g_autoptr(GBytes) bytes = cf_pack (message);
  gsize size = g_bytes_get_size (bytes);
  guint8 prefix[4] = { size >> 24, size >> 16, size >> 8, size };

  fwrite (prefix, 1, sizeof prefix, stdout);
  fwrite (g_bytes_get_data (bytes, NULL), 1, size, stdout);
  fflush (stdout);
}

void
cf_register_types (void)
{
  GType types[] = {
    CONNECTRPC_TYPE_UNARY_REQUEST,
    CONNECTRPC_TYPE_IDEMPOTENT_UNARY_REQUEST,
    CONNECTRPC_TYPE_SERVER_STREAM_REQUEST,
    CONNECTRPC_TYPE_CLIENT_STREAM_REQUEST,
    CONNECTRPC_TYPE_BIDI_STREAM_REQUEST,
    CONNECTRPC_TYPE_UNIMPLEMENTED_REQUEST,
    CONNECTRPC_TYPE_CONFORMANCE_PAYLOAD_REQUEST_INFO,
    CONNECTRPC_TYPE_ERROR,
    CONNECTRPC_TYPE_HEADER,
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    g_type_class_unref (g_type_class_ref (types[i]));
}
