/* cp-descriptor-set.c: the files of a serialized FileDescriptorSet
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>

#include "cp-descriptor-set-private.h"

/* Nesting of messages within messages that is read (deeper ones are an
 * error: no real schema comes near it, and it bounds the recursion). */
#define MAX_DEPTH 32

typedef struct {
  const guint8 *p;
  const guint8 *end;
} Reader;

static gboolean
read_varint (Reader  *r,
             guint64 *value)
{
  guint64 v = 0;

  for (guint shift = 0; shift < 64; shift += 7)
    {
      guint8 b;

      if (r->p >= r->end)
        return FALSE;
      b = *r->p++;
      v |= (guint64) (b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        {
          *value = v;
          return TRUE;
        }
    }
  return FALSE;
}

/* The next field: its number and wire type; for a length-delimited one,
 * *sub is its contents; other values are skipped. */
static gboolean
next_field (Reader  *r,
            guint32 *number,
            guint   *wire_type,
            Reader  *sub)
{
  guint64 key, value;

  if (!read_varint (r, &key) || (key >> 3) == 0 || (key >> 3) > G_MAXINT32)
    return FALSE;
  *number = (guint32) (key >> 3);
  *wire_type = (guint) (key & 7);
  switch (*wire_type)
    {
    case 0:
      return read_varint (r, &value);
    case 1:
      if (r->end - r->p < 8)
        return FALSE;
      r->p += 8;
      return TRUE;
    case 2:
      if (!read_varint (r, &value) || value > (guint64) (r->end - r->p))
        return FALSE;
      sub->p = r->p;
      sub->end = r->p + value;
      r->p += value;
      return TRUE;
    case 5:
      if (r->end - r->p < 4)
        return FALSE;
      r->p += 4;
      return TRUE;
    default:
      return FALSE;
    }
}

static char *
string_of (const Reader *r)
{
  return g_utf8_make_valid ((const char *) r->p, r->end - r->p);
}

static char *
qualified (const char *scope,
           const Reader *name)
{
  g_autofree char *n = string_of (name);

  return *scope != '\0' ? g_strconcat (scope, ".", n, NULL) : g_steal_pointer (&n);
}

/* The name (field 1) of a DescriptorProto, EnumDescriptorProto,
 * ServiceDescriptorProto or MethodDescriptorProto; NULL if it has none. */
static gboolean
find_name (Reader  message,
           Reader *name,
           gboolean *found)
{
  guint32 number;
  guint wire;
  Reader sub = { NULL, NULL };

  *found = FALSE;
  while (message.p < message.end)
    {
      if (!next_field (&message, &number, &wire, &sub))
        return FALSE;
      if (number == 1 && wire == 2)
        {
          *name = sub;
          *found = TRUE;
        }
    }
  return TRUE;
}

/* A DescriptorProto: itself, its nested messages (3) and enums (4). */
static gboolean
add_message (Reader      message,
             const char *scope,
             GPtrArray  *symbols,
             guint       depth)
{
  Reader name = { NULL, NULL }, sub = { NULL, NULL };
  g_autofree char *full = NULL;
  gboolean found;
  guint32 number;
  guint wire;

  if (depth > MAX_DEPTH || !find_name (message, &name, &found))
    return FALSE;
  if (!found)
    return TRUE;
  full = qualified (scope, &name);
  g_ptr_array_add (symbols, g_strdup (full));
  while (message.p < message.end)
    {
      if (!next_field (&message, &number, &wire, &sub))
        return FALSE;
      if (wire != 2)
        continue;
      if (number == 3 && !add_message (sub, full, symbols, depth + 1))
        return FALSE;
      if (number == 4)
        {
          if (!find_name (sub, &name, &found))
            return FALSE;
          if (found)
            g_ptr_array_add (symbols, qualified (full, &name));
        }
    }
  return TRUE;
}

/* A ServiceDescriptorProto: itself and its methods (2). */
static gboolean
add_service (Reader      service,
             const char *scope,
             GPtrArray  *symbols)
{
  Reader name = { NULL, NULL }, sub = { NULL, NULL };
  g_autofree char *full = NULL;
  gboolean found;
  guint32 number;
  guint wire;

  if (!find_name (service, &name, &found))
    return FALSE;
  if (!found)
    return TRUE;
  full = qualified (scope, &name);
  g_ptr_array_add (symbols, g_strdup (full));
  while (service.p < service.end)
    {
      if (!next_field (&service, &number, &wire, &sub))
        return FALSE;
      if (number == 2 && wire == 2)
        {
          if (!find_name (sub, &name, &found))
            return FALSE;
          if (found)
            g_ptr_array_add (symbols, qualified (full, &name));
        }
    }
  return TRUE;
}

static CpDescriptorFile *
read_file (Reader   file,
           GError **error)
{
  g_autoptr(CpDescriptorFile) result = g_new0 (CpDescriptorFile, 1);
  g_autofree char *package = NULL;
  Reader r = file, sub = { NULL, NULL };
  guint32 number;
  guint wire;

  result->bytes = g_bytes_new (file.p, file.end - file.p);
  result->imports = g_ptr_array_new_with_free_func (g_free);
  result->symbols = g_ptr_array_new_with_free_func (g_free);

  /* The package first: it may come after the declarations. */
  while (r.p < r.end)
    {
      if (!next_field (&r, &number, &wire, &sub))
        goto malformed;
      if (wire != 2)
        continue;
      if (number == 1)
        {
          g_free (result->name);
          result->name = string_of (&sub);
        }
      else if (number == 2)
        {
          g_free (package);
          package = string_of (&sub);
        }
      else if (number == 3)
        g_ptr_array_add (result->imports, string_of (&sub));
    }
  if (result->name == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "a FileDescriptorProto without a name");
      return NULL;
    }

  r = file;
  while (r.p < r.end)
    {
      gboolean ok = TRUE;

      if (!next_field (&r, &number, &wire, &sub))
        goto malformed;
      if (wire != 2)
        continue;
      if (number == 4)
        ok = add_message (sub, package ? package : "", result->symbols, 0);
      else if (number == 5)
        {
          Reader name;
          gboolean found;

          ok = find_name (sub, &name, &found);
          if (ok && found)
            g_ptr_array_add (result->symbols, qualified (package ? package : "", &name));
        }
      else if (number == 6)
        ok = add_service (sub, package ? package : "", result->symbols);
      if (!ok)
        goto malformed;
    }
  return g_steal_pointer (&result);

malformed:
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "malformed FileDescriptorProto%s%s", result->name ? " " : "",
               result->name ? result->name : "");
  return NULL;
}

void
cp_descriptor_file_free (CpDescriptorFile *file)
{
  if (file == NULL)
    return;
  g_free (file->name);
  g_clear_pointer (&file->bytes, g_bytes_unref);
  g_clear_pointer (&file->imports, g_ptr_array_unref);
  g_clear_pointer (&file->symbols, g_ptr_array_unref);
  g_free (file);
}

GPtrArray *
cp_descriptor_set_read (GBytes  *set,
                        GError **error)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_descriptor_file_free);
  gsize len;
  const guint8 *data = g_bytes_get_data (set, &len);
  Reader r = { data, data + len }, sub = { NULL, NULL };
  guint32 number;
  guint wire;

  while (r.p < r.end)
    {
      CpDescriptorFile *file;

      if (!next_field (&r, &number, &wire, &sub))
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                               "malformed FileDescriptorSet");
          return NULL;
        }
      if (number != 1 || wire != 2)
        continue;
      if ((file = read_file (sub, error)) == NULL)
        return NULL;
      g_ptr_array_add (files, file);
    }
  return g_steal_pointer (&files);
}
