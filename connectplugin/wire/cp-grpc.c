/* cp-grpc.c: gRPC and gRPC-Web wire pieces (timeouts, status, trailers, text mode)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-grpc-private.h"
#include "cp-base64-private.h"
#include "cp-metadata.h"
#include "cp-metadata-private.h"

#define MAX_TIMEOUT_DIGITS 8
#define MAX_GRPC_CODE 16
#define ANY_TYPE_PREFIX "type.googleapis.com/"

/* ------------------------------------------------------------------ */
/* grpc-timeout                                                         */

static gint64
unit_us (char unit,
         gint64 *out_ns_divisor)
{
  *out_ns_divisor = 1;
  switch (unit)
    {
    case 'H': return G_GINT64_CONSTANT (3600000000);
    case 'M': return 60000000;
    case 'S': return 1000000;
    case 'm': return 1000;
    case 'u': return 1;
    case 'n': *out_ns_divisor = 1000; return 1;
    default: return 0;
    }
}

gboolean
cp_grpc_timeout_parse (const char *value,
                       gint64     *out_us,
                       GError    **error)
{
  gsize len = value ? strlen (value) : 0;
  gint64 num = 0, per_unit, divisor;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  per_unit = len >= 2 ? unit_us (value[len - 1], &divisor) : 0;
  if (per_unit == 0 || len - 1 > MAX_TIMEOUT_DIGITS)
    goto invalid;
  for (gsize i = 0; i < len - 1; i++)
    {
      if (!g_ascii_isdigit (value[i]))
        goto invalid;
      num = num * 10 + (value[i] - '0');
    }

  /* As connect-go and grpc-go: more hours than a gint64 of nanoseconds
   * holds is as good as no timeout. */
  if (value[len - 1] == 'H' && num > G_MAXINT64 / G_GINT64_CONSTANT (3600000000000))
    *out_us = -1;
  else
    *out_us = (num * per_unit + divisor - 1) / divisor;
  return TRUE;

invalid:
  {
    gboolean show = value != NULL && len <= 32 && g_str_is_ascii (value);

    for (gsize i = 0; show && i < len; i++)
      show = g_ascii_isprint (value[i]);
    g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                 "protocol error: invalid grpc-timeout %s%s%s: expected 1 to %d digits "
                 "and a unit (H, M, S, m, u, n)",
                 show ? "\"" : "", show ? value : "value", show ? "\"" : "",
                 MAX_TIMEOUT_DIGITS);
    return FALSE;
  }
}

char *
cp_grpc_timeout_format (gint64 us)
{
  static const struct { char unit; gint64 us; } units[] = {
    { 'u', 1 }, { 'm', 1000 }, { 'S', 1000000 }, { 'M', 60000000 },
    { 'H', G_GINT64_CONSTANT (3600000000) },
  };

  if (us <= 0)
    return g_strdup ("0n");
  if (us < 100000) /* 1e8 ns */
    return g_strdup_printf ("%" G_GINT64_FORMAT "n", us * 1000);
  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      /* Rounded up, so that the peer never sees a shorter deadline. */
      gint64 n = us / units[i].us + (us % units[i].us != 0);

      if (n < 100000000 || i == G_N_ELEMENTS (units) - 1)
        return g_strdup_printf ("%" G_GINT64_FORMAT "%c", MIN (n, 99999999), units[i].unit);
    }
  g_assert_not_reached ();
}

/* ------------------------------------------------------------------ */
/* grpc-message                                                         */

static gboolean
should_escape (guchar c)
{
  return c < ' ' || c > '~' || c == '%';
}

char *
cp_grpc_percent_encode (const char *message)
{
  GString *out;

  if (message == NULL)
    return g_strdup ("");
  out = g_string_sized_new (strlen (message));
  for (const guchar *p = (const guchar *) message; *p != '\0'; p++)
    {
      if (should_escape (*p))
        g_string_append_printf (out, "%%%02X", *p);
      else
        g_string_append_c (out, *p);
    }
  return g_string_free (out, FALSE);
}

char *
cp_grpc_percent_decode (const char *value,
                        GError    **error)
{
  GString *out = g_string_sized_new (strlen (value));

  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p != '%')
        {
          g_string_append_c (out, *p);
          continue;
        }
      if (!g_ascii_isxdigit (p[1]) || !g_ascii_isxdigit (p[2]))
        {
          g_string_free (out, TRUE);
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                               "protocol error: invalid percent-encoding in grpc-message");
          return NULL;
        }
      g_string_append_c (out, (char) (g_ascii_xdigit_value (p[1]) << 4 | g_ascii_xdigit_value (p[2])));
      p += 2;
    }
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------ */
/* google.rpc.Status                                                    */

static void
put_varint (GByteArray *out,
            guint64     v)
{
  guint8 b;

  do
    {
      b = v & 0x7f;
      v >>= 7;
      if (v != 0)
        b |= 0x80;
      g_byte_array_append (out, &b, 1);
    }
  while (v != 0);
}

static void
put_bytes_field (GByteArray   *out,
                 guint         field,
                 const guint8 *data,
                 gsize         len)
{
  put_varint (out, (field << 3) | 2);
  put_varint (out, len);
  if (len > 0)
    g_byte_array_append (out, data, len);
}

GBytes *
cp_grpc_status_encode (guint       code,
                       const char *message,
                       GPtrArray  *details)
{
  GByteArray *out = g_byte_array_new ();

  if (code != 0)
    {
      put_varint (out, 1 << 3);
      put_varint (out, code);
    }
  if (message != NULL && message[0] != '\0')
    put_bytes_field (out, 2, (const guint8 *) message, strlen (message));
  for (guint i = 0; details != NULL && i < details->len; i++)
    {
      CpErrorDetail *detail = details->pdata[i];
      g_autofree char *url = g_strconcat (ANY_TYPE_PREFIX, cp_error_detail_get_type_name (detail), NULL);
      GBytes *value = cp_error_detail_get_value (detail);
      g_autoptr(GByteArray) any = g_byte_array_new ();
      gsize size;
      const guint8 *data = g_bytes_get_data (value, &size);

      put_bytes_field (any, 1, (const guint8 *) url, strlen (url));
      if (size > 0)
        put_bytes_field (any, 2, data, size);
      put_bytes_field (out, 3, any->data, any->len);
    }
  return g_byte_array_free_to_bytes (out);
}

static gboolean
get_varint (const guint8 **p,
            const guint8  *end,
            guint64       *out)
{
  guint64 v = 0;

  for (guint shift = 0; shift < 64; shift += 7)
    {
      if (*p >= end)
        return FALSE;
      v |= (guint64) (**p & 0x7f) << shift;
      if ((*(*p)++ & 0x80) == 0)
        {
          *out = v;
          return TRUE;
        }
    }
  return FALSE;
}

/* Reads one field's tag and, for length-delimited fields, its bytes;
 * skips the others' values. */
static gboolean
next_field (const guint8 **p,
            const guint8  *end,
            guint64       *field,
            guint64       *varint,
            const guint8 **data,
            gsize         *len)
{
  guint64 tag, n;

  *data = NULL;
  *len = 0;
  if (!get_varint (p, end, &tag) || (tag >> 3) == 0)
    return FALSE;
  *field = tag >> 3;
  switch (tag & 7)
    {
    case 0:
      return get_varint (p, end, varint);
    case 1:
    case 5:
      n = (tag & 7) == 1 ? 8 : 4;
      if ((guint64) (end - *p) < n)
        return FALSE;
      *p += n;
      return TRUE;
    case 2:
      if (!get_varint (p, end, &n) || n > (guint64) (end - *p))
        return FALSE;
      *data = *p;
      *len = n;
      *p += n;
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
decode_any (const guint8  *p,
            const guint8  *end,
            CpErrorDetail **out)
{
  g_autofree char *url = NULL;
  g_autoptr(GBytes) value = NULL;
  guint64 field, varint;
  const guint8 *data;
  gsize len;

  *out = NULL;
  while (p < end)
    {
      if (!next_field (&p, end, &field, &varint, &data, &len))
        return FALSE;
      if (field == 1 && data != NULL)
        {
          g_free (url);
          url = g_strndup ((const char *) data, len);
        }
      else if (field == 2 && data != NULL)
        {
          g_clear_pointer (&value, g_bytes_unref);
          value = g_bytes_new (data, len);
        }
    }
  /* Only a type URL names the message: "<host>/<full.name>". */
  if (url != NULL && strrchr (url, '/') != NULL && strrchr (url, '/')[1] != '\0')
    *out = cp_error_detail_new (url, value);
  return TRUE;
}

gboolean
cp_grpc_status_decode (const guint8 *data,
                       gsize         len,
                       guint        *out_code,
                       char        **out_message,
                       GPtrArray   **out_details,
                       GError      **error)
{
  const guint8 *p = data, *end = data + len;
  guint64 code = 0;
  g_autofree char *message = NULL;
  g_autoptr(GPtrArray) details = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_error_detail_unref);

  while (p < end)
    {
      guint64 field, varint = 0;
      const guint8 *field_data;
      gsize field_len;

      if (!next_field (&p, end, &field, &varint, &field_data, &field_len))
        goto malformed;
      if (field == 1 && field_data == NULL)
        code = varint;
      else if (field == 2 && field_data != NULL)
        {
          g_free (message);
          message = g_strndup ((const char *) field_data, field_len);
        }
      else if (field == 3 && field_data != NULL)
        {
          CpErrorDetail *detail;

          if (!decode_any (field_data, field_data + field_len, &detail))
            goto malformed;
          if (detail != NULL)
            g_ptr_array_add (details, detail);
        }
    }

  *out_code = code > G_MAXUINT ? G_MAXUINT : (guint) code;
  *out_message = g_steal_pointer (&message);
  *out_details = g_steal_pointer (&details);
  return TRUE;

malformed:
  g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "protocol error: invalid google.rpc.Status in grpc-status-details-bin");
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Status in trailers                                                   */

void
cp_grpc_error_to_trailers (const GError       *error,
                           SoupMessageHeaders *trailers)
{
  CpError code;
  g_autofree char *message = NULL;
  GPtrArray *details;
  char status[16];

  if (error == NULL)
    {
      soup_message_headers_replace (trailers, "grpc-status", "0");
      return;
    }
  code = cp_error_get_code (error);
  if (cp_error_get_metadata (error) != NULL)
    cp_metadata_merge (trailers, cp_error_get_metadata (error), NULL);
  g_snprintf (status, sizeof status, "%u", (guint) code);
  soup_message_headers_replace (trailers, "grpc-status", status);
  message = cp_grpc_percent_encode (error->message);
  soup_message_headers_replace (trailers, "grpc-message", message);
  details = cp_error_get_details (error);
  if (details != NULL && details->len > 0)
    {
      g_autoptr(GBytes) bin = cp_grpc_status_encode (code, error->message, details);
      g_autofree char *text = cp_base64_encode_unpadded (g_bytes_get_data (bin, NULL),
                                                         g_bytes_get_size (bin));

      soup_message_headers_replace (trailers, "grpc-status-details-bin", text);
    }
}

static gboolean
parse_code (const char *text,
            guint      *out)
{
  guint64 v = 0;

  if (text == NULL || text[0] == '\0' || strlen (text) > 10)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    {
      if (!g_ascii_isdigit (*p))
        return FALSE;
      v = v * 10 + (*p - '0');
    }
  *out = (guint) MIN (v, G_MAXUINT);
  return TRUE;
}

gboolean
cp_grpc_error_from_trailers (SoupMessageHeaders  *trailers,
                             GError             **out_rpc_error,
                             GError             **error)
{
  const char *status = soup_message_headers_get_one (trailers, "grpc-status");
  const char *bin = soup_message_headers_get_one (trailers, "grpc-status-details-bin");
  g_autofree char *message = NULL;
  g_autoptr(GPtrArray) details = NULL;
  SoupMessageHeaders *metadata;
  SoupMessageHeadersIter iter;
  const char *name, *value;
  guint code;
  GError *rpc;

  *out_rpc_error = NULL;
  if (status == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                           "protocol error: no grpc-status in the trailers");
      return FALSE;
    }
  if (!parse_code (status, &code))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNKNOWN,
                   "protocol error: invalid grpc-status \"%.16s\"", status);
      return FALSE;
    }
  if (code == 0)
    return TRUE;

  message = cp_grpc_percent_decode (soup_message_headers_get_one (trailers, "grpc-message") ?: "",
                                    error);
  if (message == NULL)
    return FALSE;
  if (bin != NULL && bin[0] != '\0')
    {
      g_autoptr(GBytes) raw = cp_base64_decode_liberal (bin, -1, NULL);
      g_autofree char *status_message = NULL;
      guint status_code;

      if (raw == NULL ||
          !cp_grpc_status_decode (g_bytes_get_data (raw, NULL), g_bytes_get_size (raw),
                                  &status_code, &status_message, &details, NULL))
        {
          g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                               "protocol error: invalid grpc-status-details-bin");
          return FALSE;
        }
      /* The Status wins over the headers, as grpc-go and connect-go do. */
      code = status_code;
      g_free (message);
      message = g_steal_pointer (&status_message);
    }

  if (code == 0 || code > MAX_GRPC_CODE)
    code = CP_ERROR_UNKNOWN;
  rpc = g_error_new_literal (CP_ERROR, (int) code, message ? message : "");
  for (guint i = 0; details != NULL && i < details->len; i++)
    cp_error_add_detail (rpc, details->pdata[i]);
  metadata = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  soup_message_headers_iter_init (&iter, trailers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (g_ascii_strncasecmp (name, "grpc-", 5) != 0)
      soup_message_headers_append (metadata, name, value);
  cp_error_set_metadata (rpc, metadata);
  soup_message_headers_unref (metadata);
  *out_rpc_error = rpc;
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* gRPC-Web trailers frame                                              */

GBytes *
cp_grpc_web_trailers_encode (SoupMessageHeaders *trailers)
{
  GString *out = g_string_new (NULL);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, trailers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      gsize start = out->len;

      g_string_append (out, name);
      for (gsize i = start; i < out->len; i++)
        out->str[i] = g_ascii_tolower (out->str[i]);
      g_string_append (out, ": ");
      g_string_append (out, value);
      g_string_append (out, "\r\n");
    }
  return g_string_free_to_bytes (out);
}

gboolean
cp_grpc_web_trailers_decode (GBytes             *payload,
                             SoupMessageHeaders *trailers,
                             GError            **error)
{
  gsize size;
  const char *data = g_bytes_get_data (payload, &size);
  const char *p = data, *end = data + size;

  while (p < end)
    {
      const char *eol = memchr (p, '\n', end - p);
      const char *line_end = eol ? eol : end;
      const char *colon;
      g_autofree char *name = NULL;
      g_autofree char *value = NULL;

      if (line_end > p && line_end[-1] == '\r')
        line_end--;
      if (line_end == p)
        {
          p = eol ? eol + 1 : end;
          continue;
        }
      colon = memchr (p, ':', line_end - p);
      if (colon == NULL || memchr (p, '\0', line_end - p) != NULL)
        goto malformed;
      name = g_ascii_strdown (p, colon - p);
      value = g_strndup (colon + 1, line_end - colon - 1);
      g_strstrip (value);
      if (!cp_metadata_is_valid_name (name) || !cp_metadata_is_valid_value (value, -1))
        goto malformed;
      soup_message_headers_append (trailers, name, value);
      p = eol ? eol + 1 : end;
    }
  return TRUE;

malformed:
  g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "protocol error: invalid gRPC-Web trailers frame");
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* application/grpc-web-text                                            */

struct _CpGrpcTextDecoder
{
  char group[4];
  guint n;
  gboolean failed;
};

CpGrpcTextDecoder *
cp_grpc_text_decoder_new (void)
{
  return g_new0 (CpGrpcTextDecoder, 1);
}

void
cp_grpc_text_decoder_free (CpGrpcTextDecoder *decoder)
{
  g_free (decoder);
}

static int
b64_value (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Decodes one group of @n (2–4) characters, '=' only at its end. */
static gboolean
decode_group (const char *group,
              guint       n,
              GByteArray *out)
{
  guint used = n, v = 0;
  guint8 bytes[3];

  while (used > 2 && group[used - 1] == '=')
    used--;
  for (guint i = 0; i < 4; i++)
    {
      int d = i < used ? b64_value (group[i]) : 0;

      if (d < 0)
        return FALSE;
      v = v << 6 | (guint) d;
    }
  bytes[0] = v >> 16;
  bytes[1] = (v >> 8) & 0xff;
  bytes[2] = v & 0xff;
  g_byte_array_append (out, bytes, used - 1);
  return TRUE;
}

GBytes *
cp_grpc_text_decoder_push (CpGrpcTextDecoder *decoder,
                           const char        *text,
                           gsize              len,
                           GError           **error)
{
  g_autoptr(GByteArray) out = NULL;

  if (decoder->failed)
    goto invalid;
  out = g_byte_array_sized_new (len / 4 * 3 + 3);
  for (gsize i = 0; i < len; i++)
    {
      decoder->group[decoder->n++] = text[i];
      if (decoder->n < 4)
        continue;
      decoder->n = 0;
      if (!decode_group (decoder->group, 4, out))
        goto invalid;
    }
  if (out->len == 0)
    return NULL;
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));

invalid:
  decoder->failed = TRUE;
  g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "protocol error: invalid base64 in the grpc-web-text body");
  return NULL;
}

gboolean
cp_grpc_text_decoder_finish (CpGrpcTextDecoder *decoder,
                             GBytes           **out_tail,
                             GError           **error)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();

  *out_tail = NULL;
  if (decoder->failed || decoder->n == 1 ||
      (decoder->n > 1 && (memchr (decoder->group, '=', decoder->n) != NULL ||
                          !decode_group (decoder->group, decoder->n, out))))
    {
      decoder->failed = TRUE;
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "protocol error: the grpc-web-text body ends inside a base64 group");
      return FALSE;
    }
  decoder->n = 0;
  if (out->len > 0)
    *out_tail = g_byte_array_free_to_bytes (g_steal_pointer (&out));
  return TRUE;
}
