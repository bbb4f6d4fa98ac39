/* cp-json-reader.c: proto3 JSON text into a protobuf-c message
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Reads JSON text directly rather than through json-glib: its parser wraps
 * integers above G_MAXINT64 silently and accepts non-JSON numbers (`01`,
 * `.5`), so it cannot give the exact proto3 mapping
 * (https://protobuf.dev/programming-guides/json/). One unit: a tokenizer
 * and a recursive-descent parser sharing one Parser state, in one pass with
 * no tree in between (the JsonNode entry point goes through the text form).
 *
 * State (Parser):
 *   p / end     the cursor over the input; every token reader (skip_ws,
 *               peek, expect, parse_literal, parse_string, scan_number)
 *               moves p past what it consumed. peek() returns '\0' at end.
 *   depth       message/array/object nesting; enter() raises it and fails
 *               past CP_MESSAGE_MAX_DEPTH, each level lowers it on return.
 *   error       set once, by fail(), with the offset p - start; any later
 *               fail() keeps the first message. Every reader returns
 *               FALSE (or NULL) after a failure, and the caller unwinds.
 *   scratch     the buffer for strings (member names, values) being read.
 *
 * Flow, per value:
 *   parse_message   wrapper types → parse_singular of their one field;
 *                   Any/Struct/Value/ListValue/Duration/... → parse_special;
 *                   others → parse_fields: one object, member by member.
 *   parse_fields    per member: look the name up (proto or JSON name);
 *                   unknown → skip_value; else check_duplicate (marks per
 *                   field: FIELD_SEEN, FIELD_ONEOF), then null → clear or
 *                   NullValue, repeated → parse_repeated / parse_map,
 *                   singular → parse_value.
 *   parse_value     one scalar or message of the field's type into a
 *                   CpProtoValue: PARSE_OK, PARSE_SKIP (valid JSON to be
 *                   ignored: an unknown enum name) or PARSE_ERROR.
 * What a value owns is stored into the message at once (cp_proto_field_set)
 * or freed on the way out, so a failure anywhere leaves no leak: the
 * caller frees the half-built message.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cp-base64-private.h"
#include "cp-codec-private.h"
#include "cp-error.h"
#include "cp-json-private.h"
#include "cp-proto-field-private.h"

typedef struct {
  const char *start;
  const char *p;
  const char *end;
  guint depth;
  GError **error;
  GString *scratch;
} Parser;

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
int_from_text (Parser *ps, const ProtobufCFieldDescriptor *f, const char *s, gsize len, CpProtoValue *out)
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
parse_value (Parser *ps, const ProtobufCFieldDescriptor *f, CpProtoValue *out)
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
      if (!cp_base64_decode (ps->scratch->str, ps->scratch->len, &out->bin.data, &out->bin.len, NULL))
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
  CpProtoValue v;
  ParseResult r = parse_value (ps, f, &v);

  if (r == PARSE_ERROR)
    return FALSE;
  if (r == PARSE_OK)
    cp_proto_field_set (m, f, &v);
  return TRUE;
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
      CpProtoValue v;
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
  cp_proto_field_free_elements (f, arr);
  return FALSE;
}

static gboolean
parse_map_key (Parser *ps, const ProtobufCFieldDescriptor *kf, const char *key, gsize len, CpProtoValue *out)
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
      CpProtoValue k, v;
      ParseResult r;
      ProtobufCMessage *entry;
      gsize keylen;
      g_autofree char *key = NULL;
      GBytes *canon;

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
            cp_json_is_named (vf->descriptor, "google.protobuf.Value")))
        {
          cp_proto_value_free (kf, &k);
          fail (ps, "field %s: null map value", f->name);
          goto error;
        }
      r = parse_value (ps, vf, &v);
      if (r == PARSE_ERROR)
        {
          cp_proto_value_free (kf, &k);
          goto error;
        }
      if (r == PARSE_SKIP)
        {
          cp_proto_value_free (kf, &k);
          goto next;
        }
      entry = cp_proto_message_new (ed);
      cp_proto_field_set (entry, kf, &k);
      cp_proto_field_set (entry, vf, &v);

      /* A key given twice is an error, as in protobuf-go (not "last wins"). */
      if (kf->type == PROTOBUF_C_TYPE_STRING)
        canon = g_bytes_new (k.s, strlen (k.s));
      else
        canon = g_bytes_new (&k, cp_proto_type_size (kf->type));
      if (g_hash_table_contains (seen, canon))
        {
          g_bytes_unref (canon);
          protobuf_c_message_free_unpacked (entry, NULL);
          fail (ps, "field %s: duplicate map key \"%s\"", f->name, key);
          goto error;
        }
      g_hash_table_add (seen, canon);
      g_array_append_val (arr, entry);

    next:
      if (!list_next (ps, '}', &more))
        goto error;
    }
  cp_proto_field_set_repeated (m, f, arr);
  return TRUE;

error:
  cp_proto_field_free_elements (f, arr);
  return FALSE;
}

static gboolean parse_fields (Parser *ps, ProtobufCMessage *m, gboolean any_body);

/* Sets the member @name of google.protobuf.Value's `kind` oneof. */
static void
set_value_kind (ProtobufCMessage *m, const char *name, CpProtoValue *v)
{
  const ProtobufCFieldDescriptor *f = cp_json_field_named (m->descriptor, name);

  g_assert (f != NULL);
  cp_proto_field_set (m, f, v);
}

static gboolean
parse_struct_value (Parser *ps, ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  const ProtobufCFieldDescriptor *f;
  CpProtoValue v;

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
      f = cp_json_field_named (desc, "bool_value");
      if (f == NULL || parse_value (ps, f, &v) != PARSE_OK)
        return FALSE;
      cp_proto_field_set (m, f, &v);
      return TRUE;
    case '"':
      f = cp_json_field_named (desc, "string_value");
      if (f == NULL || parse_value (ps, f, &v) != PARSE_OK)
        return FALSE;
      cp_proto_field_set (m, f, &v);
      return TRUE;
    case '{':
      f = cp_json_field_named (desc, "struct_value");
      break;
    case '[':
      f = cp_json_field_named (desc, "list_value");
      break;
    default:
      {
        const char *s;
        gsize len;

        f = cp_json_field_named (desc, "number_value");
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
  const ProtobufCFieldDescriptor *f = cp_json_field_named (m->descriptor, "values");

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
  const ProtobufCFieldDescriptor *url_f = cp_json_field_named (desc, "type_url");
  const ProtobufCFieldDescriptor *value_f = cp_json_field_named (desc, "value");
  const ProtobufCMessageDescriptor *inner_desc;
  const char *start = ps->p;
  g_autofree char *url = NULL;
  ProtobufCMessage *inner = NULL;
  gboolean empty = TRUE;
  gboolean more;
  CpProtoValue v;

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
  inner_desc = cp_json_any_descriptor (url);
  if (inner_desc == NULL)
    return fail (ps, "google.protobuf.Any: unknown message type \"%s\"", url);

  {
    const char *end = ps->p;

    ps->p = start;
    if (cp_json_has_special_form (inner_desc))
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
  if (cp_json_is_named (desc, "google.protobuf.Any"))
    return parse_any (ps, m);
  if (cp_json_is_named (desc, "google.protobuf.Value"))
    return parse_struct_value (ps, m);
  if (cp_json_is_named (desc, "google.protobuf.ListValue"))
    return parse_list_value (ps, m);
  if (cp_json_is_named (desc, "google.protobuf.Struct") && cp_json_field_named (desc, "fields") != NULL &&
      cp_proto_field_is_map (desc, cp_json_field_named (desc, "fields")))
    {
      if (peek (ps) != '{')
        return fail (ps, "expected an object for google.protobuf.Struct");
      return parse_map (ps, m, cp_json_field_named (desc, "fields"));
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

  if (cp_json_is_wrapper (desc))
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
              CpProtoValue v = { .e = 0 };
              cp_proto_field_set (m, f, &v);
            }
          else if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
                   cp_json_is_named (f->descriptor, "google.protobuf.Value"))
            {
              CpProtoValue v = { .m = cp_proto_message_new (f->descriptor) };
              set_value_kind (v.m, "null_value", &(CpProtoValue) { .e = 0 });
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
/* JsonNode entry point                                                 */

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
