/* cp-http-syntax.c: RFC 9112 message syntax, as the server reads it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The checks libsoup's parser does not make (it tolerates and skips what
 * RFC 9112 makes an error): request and field lines of a request head, the
 * framing headers (Content-Length / Transfer-Encoding, request smuggling),
 * chunk-size lines with their extensions, trailer lines. Stateless: the
 * connection (cp-http-connection.c) hands in its buffered bytes.
 */
#include "cp-http-connection-private.h"
#include "cp-http-syntax-private.h"

#include <string.h>

/* RFC 9110 §5.6.2 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~. The two words
 * are a bitmap of the ASCII codes 0–63 and 64–127; the table, made from
 * them at compile time, is what runs for every byte of every field name. */
#define TCHAR_LOW G_GUINT64_CONSTANT (0x03ff6cfa00000000)
#define TCHAR_HIGH G_GUINT64_CONSTANT (0x57ffffffc7fffffe)
#define TCHAR(c) ((c) < 64 ? (TCHAR_LOW >> (c)) & 1 : (c) < 128 ? (TCHAR_HIGH >> ((c) - 64)) & 1 : 0)
#define TCHAR4(c) TCHAR (c), TCHAR ((c) + 1), TCHAR ((c) + 2), TCHAR ((c) + 3)
#define TCHAR16(c) TCHAR4 (c), TCHAR4 ((c) + 4), TCHAR4 ((c) + 8), TCHAR4 ((c) + 12)

static const guint8 tchar_table[256] = {
  TCHAR16 (0), TCHAR16 (16), TCHAR16 (32), TCHAR16 (48),
  TCHAR16 (64), TCHAR16 (80), TCHAR16 (96), TCHAR16 (112),
  TCHAR16 (128), TCHAR16 (144), TCHAR16 (160), TCHAR16 (176),
  TCHAR16 (192), TCHAR16 (208), TCHAR16 (224), TCHAR16 (240),
};

static inline gboolean
is_tchar (guint8 c)
{
  return tchar_table[c];
}

/* field-vchar, SP, HTAB (RFC 9110 §5.5); obs-text is accepted */
static gboolean
is_field_char (guint8 c)
{
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Length of the line at @p (without its LF or CRLF) when it is terminated
 * within @avail bytes; -1 otherwise. *next: the start of the following
 * line. A CR inside the line is left to the caller. */
static gssize
line_length_any (const guint8 *p,
                 gsize         avail,
                 gsize        *next)
{
  const guint8 *nl = memchr (p, '\n', avail);
  gsize len;

  if (nl == NULL)
    return -1;
  len = nl - p;
  *next = len + 1;
  if (len > 0 && p[len - 1] == '\r')
    len--;
  return (gssize) len;
}

/* The same, and -1 for a line with a bare CR. */
static gssize
line_length (const guint8 *p,
             gsize         avail,
             gsize        *next)
{
  gssize len = line_length_any (p, avail, next);

  return len >= 0 && memchr (p, '\r', (gsize) len) == NULL ? len : -1;
}

/* Whether @p..@len are all field characters: eight bytes at a time, a
 * word with no control character (below 0x20) and no DEL taken whole, the
 * others byte by byte (a tab is a field character). A CR is a control
 * character: this also refuses a bare CR. */
static gboolean
all_field_chars (const guint8 *p,
                 gsize         len)
{
  const guint64 ones = G_GUINT64_CONSTANT (0x0101010101010101);
  const guint64 highs = G_GUINT64_CONSTANT (0x8080808080808080);
  gsize i = 0;

  for (; i + 8 <= len; i += 8)
    {
      guint64 x, del;

      memcpy (&x, p + i, 8);
      del = x ^ (ones * 0x7f);
      /* A byte below 0x20 (high bit clear, so not obs-text), or a zero
       * byte of x ^ 0x7f...: the word is looked at byte by byte. */
      if ((((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) & highs)
        for (gsize j = i; j < i + 8; j++)
          if (!is_field_char (p[j]))
            return FALSE;
    }
  for (; i < len; i++)
    if (!is_field_char (p[i]))
      return FALSE;
  return TRUE;
}

/* A field line per RFC 9112 §5: a token, a colon right after it, a value of
 * field characters. No whitespace before the name (obs-fold, or a first
 * line starting with whitespace) nor before the colon. */
static gboolean
check_field_line (const guint8 *line,
                  gsize         len,
                  gboolean     *is_host)
{
  gsize i = 0;

  while (i < len && is_tchar (line[i]))
    i++;
  if (i == 0 || i == len || line[i] != ':')
    return FALSE;
  *is_host = i == 4 && g_ascii_strncasecmp ((const char *) line, "Host", 4) == 0;
  return all_field_chars (line + i + 1, len - i - 1);
}

/* libsoup's parser tolerates and silently drops what RFC 9112 makes an
 * error (a line without a colon, whitespace before a colon — which would
 * hide a Transfer-Encoding —, obs-fold...): the raw head is checked here
 * first. @p..@len: the request line and the field lines, each with its
 * line end. Returns 0 or an error status; counts Host fields. */
guint
cp_http_check_head_syntax (const guint8 *p,
                   gsize         len,
                   guint        *n_host)
{
  gsize i = 0, next = 0;
  /* A bare CR fails the checks of each line below (no token, target,
   * version or field character is one): no search for it first. */
  gssize line = line_length_any (p, len, &next);

  /* request-line = method SP request-target SP HTTP-version */
  if (line < 0)
    return SOUP_STATUS_BAD_REQUEST;
  while (i < (gsize) line && is_tchar (p[i]))
    i++;
  if (i == 0 || i == (gsize) line || p[i++] != ' ')
    return SOUP_STATUS_BAD_REQUEST;
  if (i == (gsize) line || p[i] == ' ')
    return SOUP_STATUS_BAD_REQUEST;
  while (i < (gsize) line && p[i] > 0x20 && p[i] < 0x7f)
    i++;
  if (i + 9 != (gsize) line || p[i] != ' ' || memcmp (p + i + 1, "HTTP/", 5) != 0 ||
      !g_ascii_isdigit (p[i + 6]) || p[i + 7] != '.' || !g_ascii_isdigit (p[i + 8]))
    return SOUP_STATUS_BAD_REQUEST;

  *n_host = 0;
  for (i = next; i < len; i += next)
    {
      gboolean is_host = FALSE;

      line = line_length_any (p + i, len - i, &next);
      if (line < 0 || !check_field_line (p + i, line, &is_host))
        return SOUP_STATUS_BAD_REQUEST;
      *n_host += is_host;
    }
  return 0;
}

static gboolean
parse_content_length (const char *value,
                      guint64    *out)
{
  guint64 v = 0;

  if (*value == '\0')
    return FALSE;
  for (const char *p = value; *p; p++)
    {
      if (!g_ascii_isdigit (*p) || p - value >= 18)
        return FALSE;
      v = v * 10 + (*p - '0');
    }
  *out = v;
  return TRUE;
}

/* Checks the framing headers; returns 0 or an error status. */
guint
cp_http_check_framing (CpHttpExchange *ex)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;
  gboolean have_cl = FALSE, have_te = FALSE, te_ok = TRUE;
  guint64 cl = 0;

  ex->connection_close = FALSE;
  ex->connection_keep_alive = FALSE;
  ex->has_expect = FALSE;
  soup_message_headers_iter_init (&iter, ex->request_headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      gsize len = strlen (name);

      if (CP_HTTP_NAME_IS (name, len, "Content-Length"))
        {
          guint64 v;

          if (!parse_content_length (value, &v))
            return SOUP_STATUS_BAD_REQUEST;
          if (have_cl && v != cl)
            return SOUP_STATUS_BAD_REQUEST;
          have_cl = TRUE;
          cl = v;
        }
      else if (CP_HTTP_NAME_IS (name, len, "Transfer-Encoding"))
        {
          if (have_te || g_ascii_strcasecmp (value, "chunked") != 0)
            te_ok = FALSE;
          have_te = TRUE;
        }
      /* Read here rather than looked up after: the fields of the same
       * name are one comma-separated list, so a token in any of them. */
      else if (CP_HTTP_NAME_IS (name, len, "Connection"))
        {
          ex->connection_close |= soup_header_contains (value, "close");
          ex->connection_keep_alive |= soup_header_contains (value, "keep-alive");
        }
      else if (CP_HTTP_NAME_IS (name, len, "Expect"))
        ex->has_expect = TRUE;
    }

  if (have_te && have_cl)
    return SOUP_STATUS_BAD_REQUEST;   /* request smuggling */
  if (have_te && !te_ok)
    return SOUP_STATUS_NOT_IMPLEMENTED;
  if (have_te && ex->version == SOUP_HTTP_1_0)
    return SOUP_STATUS_BAD_REQUEST;

  ex->chunked_request = have_te;
  ex->content_length = cl;
  ex->empty_body = !have_te && cl == 0;
  return 0;
}

static gsize
skip_bws (const guint8 *p,
          gsize         i,
          gsize         len)
{
  while (i < len && (p[i] == ' ' || p[i] == '\t'))
    i++;
  return i;
}

/* RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
 * name a token, value a token or a quoted-string. Anything else after the
 * chunk size is an error. */
static gboolean
check_chunk_ext (const guint8 *p,
                 gsize         len)
{
  gsize i = 0;

  while (i < len)
    {
      gsize start;

      i = skip_bws (p, i, len);
      if (i == len || p[i] != ';')
        return FALSE;
      i = skip_bws (p, i + 1, len);
      for (start = i; i < len && is_tchar (p[i]); i++)
        ;
      if (i == start)
        return FALSE;
      start = i;
      i = skip_bws (p, i, len);
      if (i == len || p[i] != '=')
        {
          i = start;   /* BWS belongs before the next ";" */
          continue;
        }
      i = skip_bws (p, i + 1, len);
      if (i < len && p[i] == '"')
        {
          for (i++; i < len && p[i] != '"'; i++)
            {
              if (p[i] == '\\' && i + 1 < len)
                i++;
              if (!is_field_char (p[i]))
                return FALSE;
            }
          if (i == len)
            return FALSE;
          i++;
        }
      else
        {
          for (start = i; i < len && is_tchar (p[i]); i++)
            ;
          if (i == start)
            return FALSE;
        }
    }
  return TRUE;
}

/* A chunk-size line (RFC 9112 §7.1): hex digits, extensions, line end.
 * Returns 1 with *size and *line_len (with its line end) set, 0 when @avail
 * bytes hold no complete line yet, -1 on error. */
int
cp_http_parse_chunk_size_line (const guint8 *p,
                               gsize         avail,
                               guint64      *size_out,
                               gsize        *line_len)
{
  const guint8 *nl = memchr (p, '\n', MIN (avail, CP_HTTP_CHUNK_LINE_MAX));
  guint64 size = 0;
  gsize i = 0, digits = 0, end;

  if (nl == NULL)
    return avail >= CP_HTTP_CHUNK_LINE_MAX ? -1 : 0;
  for (; p + i < nl && g_ascii_isxdigit (p[i]); i++, digits++)
    {
      if (digits >= 15)
        return -1;
      size = size * 16 + g_ascii_xdigit_value (p[i]);
    }
  if (digits == 0)
    return -1;
  /* chunk extensions are checked, then ignored */
  end = nl - p;
  if (end > 0 && p[end - 1] == '\r')
    end--;
  if (!check_chunk_ext (p + i, end - i))
    return -1;

  *size_out = size;
  *line_len = (nl - p) + 1;
  return 1;
}

/* A trailer field line (with its line end) must be a field line too. */
gboolean
cp_http_check_trailer_line (const guint8 *p,
                    gsize         len)
{
  gsize next;
  gssize line = line_length (p, len, &next);
  gboolean is_host;

  return line >= 0 && check_field_line (p, line, &is_host);
}
