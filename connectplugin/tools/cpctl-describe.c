/* cpctl-describe.c: a service of a FileDescriptorProto, as .proto text
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The wire level of descriptor.proto, read for what `cpctl describe` prints:
 * FileDescriptorProto.package (2) and service (6); ServiceDescriptorProto
 * .name (1) and method (2); MethodDescriptorProto .name (1), input_type (2),
 * output_type (3), client_streaming (5), server_streaming (6). The bytes come
 * from a server: every length is checked (tests/tools/fuzz-cpctl-describe.c).
 */
#include <string.h>

#include "cpctl-describe.h"

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

/* The next field; *sub is a length-delimited one's contents, *value a
 * varint's value. */
static gboolean
next_field (Reader  *r,
            guint32 *number,
            guint   *wire,
            Reader  *sub,
            guint64 *value)
{
  guint64 key;

  if (!read_varint (r, &key) || (key >> 3) == 0 || (key >> 3) > G_MAXINT32)
    return FALSE;
  *number = (guint32) (key >> 3);
  *wire = (guint) (key & 7);
  switch (*wire)
    {
    case 0:
      return read_varint (r, value);
    case 1:
      if (r->end - r->p < 8)
        return FALSE;
      r->p += 8;
      return TRUE;
    case 2:
      if (!read_varint (r, value) || *value > (guint64) (r->end - r->p))
        return FALSE;
      sub->p = r->p;
      sub->end = r->p + *value;
      r->p += *value;
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
text_of (const Reader *r)
{
  return g_utf8_make_valid ((const char *) r->p, r->end - r->p);
}

/* A type name as protoc writes it (".pkg.Msg"), without the leading dot. */
static const char *
type_name (const char *name)
{
  return name[0] == '.' ? name + 1 : name;
}

static gboolean
append_method (Reader   method,
               GString *out)
{
  g_autofree char *name = NULL, *input = NULL, *output = NULL;
  gboolean client_streaming = FALSE, server_streaming = FALSE;
  Reader sub = { NULL, NULL };
  guint64 value = 0;
  guint32 number;
  guint wire;

  while (method.p < method.end)
    {
      if (!next_field (&method, &number, &wire, &sub, &value))
        return FALSE;
      if (wire == 2 && number == 1)
        g_free (name), name = text_of (&sub);
      else if (wire == 2 && number == 2)
        g_free (input), input = text_of (&sub);
      else if (wire == 2 && number == 3)
        g_free (output), output = text_of (&sub);
      else if (wire == 0 && number == 5)
        client_streaming = value != 0;
      else if (wire == 0 && number == 6)
        server_streaming = value != 0;
    }
  g_string_append_printf (out, "  rpc %s(%s%s) returns (%s%s);\n",
                          name ? name : "?", client_streaming ? "stream " : "",
                          input ? type_name (input) : "?", server_streaming ? "stream " : "",
                          output ? type_name (output) : "?");
  return TRUE;
}

gboolean
cpctl_describe_service (const guint8 *data,
                        gsize         len,
                        const char   *name,
                        GString      *out,
                        gboolean     *malformed)
{
  Reader file = { data, data + len }, r, sub = { NULL, NULL };
  g_autofree char *package = NULL;
  guint64 value;
  guint32 number;
  guint wire;

  *malformed = FALSE;
  /* The package first: it may follow the services. */
  r = file;
  while (r.p < r.end)
    {
      if (!next_field (&r, &number, &wire, &sub, &value))
        goto malformed;
      if (wire == 2 && number == 2)
        g_free (package), package = text_of (&sub);
    }

  r = file;
  while (r.p < r.end)
    {
      Reader service, field = { NULL, NULL };
      g_autofree char *service_name = NULL;
      g_autofree char *full = NULL;

      if (!next_field (&r, &number, &wire, &sub, &value))
        goto malformed;
      if (wire != 2 || number != 6)
        continue;

      service = sub;
      while (service.p < service.end)
        {
          if (!next_field (&service, &number, &wire, &field, &value))
            goto malformed;
          if (wire == 2 && number == 1)
            g_free (service_name), service_name = text_of (&field);
        }
      if (service_name == NULL)
        continue;
      full = package && *package ? g_strconcat (package, ".", service_name, NULL)
                                 : g_strdup (service_name);
      if (!g_str_equal (full, name))
        continue;

      {
        gsize start = out->len;

        g_string_append_printf (out, "service %s {\n", full);
        service = sub;
        while (service.p < service.end)
          {
            if (!next_field (&service, &number, &wire, &field, &value) ||
                (wire == 2 && number == 2 && !append_method (field, out)))
              {
                g_string_truncate (out, start);
                goto malformed;
              }
          }
        g_string_append (out, "}\n");
      }
      return TRUE;
    }
  return FALSE;

malformed:
  *malformed = TRUE;
  return FALSE;
}
