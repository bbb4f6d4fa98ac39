/* cp-upstream-parser.c: incremental HTTP/1.1 response parser
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * States: HEAD (waiting for the blank line that ends the head; 1xx heads
 * are skipped), then one body form — LENGTH (Content-Length bytes left),
 * CHUNK_SIZE / CHUNK_DATA / CHUNK_CRLF (chunked), TRAILERS (after the last
 * chunk, up to the blank line), UNTIL_CLOSE (no length: the body ends at
 * EOF) — then DONE. Any framing error is final (ERROR). Body bytes are
 * returned as pointers into the caller's buffer, never copied.
 */
#include "cp-upstream-private.h"

#include <string.h>

enum {
  ST_HEAD,
  ST_LENGTH,
  ST_CHUNK_SIZE,
  ST_CHUNK_DATA,
  ST_CHUNK_CRLF,
  ST_TRAILERS,
  ST_UNTIL_CLOSE,
  ST_DONE,
  ST_ERROR,
};

#define MAX_CHUNK_LINE 1024
#define MAX_TRAILERS (16 * 1024)

void
cp_upstream_parser_init (CpUpstreamParser *parser,
                         gboolean          head_request)
{
  memset (parser, 0, sizeof *parser);
  parser->state = ST_HEAD;
  parser->head_request = head_request;
  parser->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
}

void
cp_upstream_parser_clear (CpUpstreamParser *parser)
{
  g_clear_pointer (&parser->headers, soup_message_headers_unref);
}

gboolean
cp_upstream_parser_reads_until_close (CpUpstreamParser *parser)
{
  return parser->state == ST_UNTIL_CLOSE;
}

static CpUpstreamEvent
fail (CpUpstreamParser *parser,
      GError          **error,
      const char       *message)
{
  parser->state = ST_ERROR;
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, message);
  return CP_UPSTREAM_ERROR;
}

static const guint8 *
find_head_end (const guint8 *data,
               gsize         len)
{
  for (gsize i = 0; i + 3 < len; i++)
    if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n')
      return data + i + 4;
  return NULL;
}

/* Chooses the body form from a parsed head. */
static CpUpstreamEvent
begin_body (CpUpstreamParser *parser,
            GError          **error)
{
  SoupMessageHeaders *h = parser->headers;
  const char *te = soup_message_headers_get_list (h, "Transfer-Encoding");
  const char *cl = soup_message_headers_get_list (h, "Content-Length");

  parser->keep_alive = parser->version == SOUP_HTTP_1_1 &&
                       !soup_message_headers_header_contains (h, "Connection", "close");
  if (parser->head_request || parser->status == 204 || parser->status == 304)
    {
      parser->state = ST_DONE;
      return CP_UPSTREAM_HEAD;
    }
  if (te != NULL)
    {
      if (g_ascii_strcasecmp (te, "chunked") != 0)
        return fail (parser, error, "unsupported Transfer-Encoding in the provider's response");
      if (cl != NULL)
        return fail (parser, error, "both Content-Length and Transfer-Encoding in the provider's response");
      parser->state = ST_CHUNK_SIZE;
      return CP_UPSTREAM_HEAD;
    }
  if (cl != NULL)
    {
      guint64 n = 0;
      gsize i;

      /* Digits only, no list (two differing values were joined by ','). */
      for (i = 0; cl[i] != '\0'; i++)
        {
          if (!g_ascii_isdigit (cl[i]) || n > (G_MAXUINT64 - 9) / 10)
            return fail (parser, error, "invalid Content-Length in the provider's response");
          n = n * 10 + (guint64) (cl[i] - '0');
        }
      if (i == 0)
        return fail (parser, error, "invalid Content-Length in the provider's response");
      parser->remaining = n;
      parser->state = n > 0 ? ST_LENGTH : ST_DONE;
      return CP_UPSTREAM_HEAD;
    }
  parser->keep_alive = FALSE;
  parser->state = ST_UNTIL_CLOSE;
  return CP_UPSTREAM_HEAD;
}

static CpUpstreamEvent
parse_head (CpUpstreamParser *parser,
            const guint8     *data,
            gsize             len,
            gsize            *consumed,
            GError          **error)
{
  const guint8 *end = find_head_end (data, MIN (len, CP_UPSTREAM_MAX_HEAD));

  if (end == NULL)
    {
      if (len >= CP_UPSTREAM_MAX_HEAD)
        return fail (parser, error, "the provider's response head is too large");
      return CP_UPSTREAM_NEED_MORE;
    }
  /* soup_headers_parse_response() wants a NUL-free string. */
  if (memchr (data, '\0', end - data) != NULL)
    return fail (parser, error, "malformed response head from the provider");
  soup_message_headers_clear (parser->headers);
  if (!soup_headers_parse_response ((const char *) data, end - data, parser->headers,
                                    &parser->version, &parser->status, NULL) ||
      parser->status < 100 || parser->status > 999)
    return fail (parser, error, "malformed response head from the provider");
  *consumed = end - data;
  if (parser->status >= 100 && parser->status < 200)
    {
      if (parser->status == 101)
        return fail (parser, error, "the provider switched protocols");
      return CP_UPSTREAM_NEED_MORE;   /* an interim response: the real head follows */
    }
  return begin_body (parser, error);
}

static CpUpstreamEvent
parse_chunk_size (CpUpstreamParser *parser,
                  const guint8     *data,
                  gsize             len,
                  gsize            *consumed,
                  GError          **error)
{
  const guint8 *nl = memchr (data, '\n', MIN (len, MAX_CHUNK_LINE));
  guint64 size = 0;
  gsize i, line_end;

  if (nl == NULL)
    {
      if (len >= MAX_CHUNK_LINE)
        return fail (parser, error, "chunk size line too long in the provider's response");
      return CP_UPSTREAM_NEED_MORE;
    }
  line_end = nl - data;
  if (line_end == 0 || data[line_end - 1] != '\r')
    return fail (parser, error, "malformed chunk size in the provider's response");
  for (i = 0; i < line_end - 1 && g_ascii_isxdigit (data[i]); i++)
    {
      if (size > (G_MAXUINT64 >> 4))
        return fail (parser, error, "chunk size overflow in the provider's response");
      size = (size << 4) | (guint64) g_ascii_xdigit_value (data[i]);
    }
  /* At least one digit, then nothing or an extension. */
  if (i == 0 || (i < line_end - 1 && data[i] != ';' && data[i] != ' ' && data[i] != '\t'))
    return fail (parser, error, "malformed chunk size in the provider's response");
  *consumed = line_end + 1;
  if (size == 0)
    parser->state = ST_TRAILERS;
  else
    {
      parser->remaining = size;
      parser->state = ST_CHUNK_DATA;
    }
  return CP_UPSTREAM_NEED_MORE;
}

static CpUpstreamEvent
parse_trailers (CpUpstreamParser *parser,
                const guint8     *data,
                gsize             len,
                gsize            *consumed,
                GError          **error)
{
  const guint8 *nl = memchr (data, '\n', len);
  gsize line_len;

  if (nl == NULL)
    {
      if (parser->trailer_bytes + len > MAX_TRAILERS)
        return fail (parser, error, "trailers too large in the provider's response");
      return CP_UPSTREAM_NEED_MORE;
    }
  line_len = nl - data + 1;
  parser->trailer_bytes += line_len;
  if (parser->trailer_bytes > MAX_TRAILERS)
    return fail (parser, error, "trailers too large in the provider's response");
  if (line_len < 2 || data[line_len - 2] != '\r')
    return fail (parser, error, "malformed trailer in the provider's response");
  *consumed = line_len;
  if (line_len == 2)
    {
      parser->state = ST_DONE;
      return CP_UPSTREAM_DONE;
    }
  /* Trailers are not forwarded (Connect over HTTP/1.1 does not use them). */
  return CP_UPSTREAM_NEED_MORE;
}

CpUpstreamEvent
cp_upstream_parser_feed (CpUpstreamParser *parser,
                         const guint8     *data,
                         gsize             len,
                         gboolean          eof,
                         gsize            *consumed,
                         const guint8    **body,
                         gsize            *body_len,
                         GError          **error)
{
  CpUpstreamEvent event;
  gsize n;

  *consumed = 0;
  *body = NULL;
  *body_len = 0;
  switch (parser->state)
    {
    case ST_ERROR:
      return fail (parser, error, "the provider's response was malformed");
    case ST_DONE:
      /* Bytes after a complete response: the connection is not reusable,
       * which the pool decides; they are not ours. */
      return CP_UPSTREAM_DONE;
    case ST_UNTIL_CLOSE:
      if (len > 0)
        {
          *consumed = len;
          *body = data;
          *body_len = len;
          return CP_UPSTREAM_DATA;
        }
      if (eof)
        {
          parser->state = ST_DONE;
          return CP_UPSTREAM_DONE;
        }
      return CP_UPSTREAM_NEED_MORE;
    default:
      break;
    }

  if (len == 0)
    {
      if (eof)
        return fail (parser, error, parser->state == ST_HEAD
                                    ? "the provider closed the connection without a response"
                                    : "the provider closed the connection in the middle of the response");
      return CP_UPSTREAM_NEED_MORE;
    }

  switch (parser->state)
    {
    case ST_HEAD:
      event = parse_head (parser, data, len, consumed, error);
      break;
    case ST_LENGTH:
    case ST_CHUNK_DATA:
      n = (gsize) MIN ((guint64) len, parser->remaining);
      parser->remaining -= n;
      *consumed = n;
      *body = data;
      *body_len = n;
      if (parser->remaining == 0)
        parser->state = parser->state == ST_LENGTH ? ST_DONE : ST_CHUNK_CRLF;
      return CP_UPSTREAM_DATA;
    case ST_CHUNK_SIZE:
      event = parse_chunk_size (parser, data, len, consumed, error);
      break;
    case ST_CHUNK_CRLF:
      if (data[0] != '\r' || (len >= 2 && data[1] != '\n'))
        return fail (parser, error, "malformed chunk end in the provider's response");
      event = CP_UPSTREAM_NEED_MORE;
      if (len >= 2)
        {
          *consumed = 2;
          parser->state = ST_CHUNK_SIZE;
        }
      break;
    case ST_TRAILERS:
      event = parse_trailers (parser, data, len, consumed, error);
      break;
    default:
      g_assert_not_reached ();
    }
  /* An incomplete line or head that will never be completed. */
  if (event == CP_UPSTREAM_NEED_MORE && *consumed == 0 && eof)
    return fail (parser, error, parser->state == ST_HEAD
                                ? "the provider closed the connection without a response"
                                : "the provider closed the connection in the middle of the response");
  return event;
}
