/* rpc-test-util.h: a raw HTTP/1.1 client and the server fixture for server tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The raw client (inline below) sends exact request bytes over a real TCP
 * connection and parses the response (Content-Length, chunked, or until
 * EOF) while iterating the thread-default main context, where the server
 * under test runs. The fixture and request helpers at the end are defined
 * in rpc-test-util.c.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>
#include <string.h>

typedef struct {
  GSocketConnection *conn;
  GByteArray *in;
  gboolean eof;
  gboolean pending;
  gboolean stalled;
  GError *error;
} RawConn;

/* Hang guard (not a timing assertion): an I/O step that makes no progress
 * for this long fails the test instead of blocking it forever. */
#define RAW_STALL_SECONDS 10

static inline gboolean
raw_stall_cb (gpointer user_data)
{
  RawConn *rc = user_data;

  rc->stalled = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates until the pending operation is done; FALSE when it stalled. */
static inline gboolean
raw_wait (RawConn *rc)
{
  guint id = g_timeout_add_seconds (RAW_STALL_SECONDS, raw_stall_cb, rc);

  while (rc->pending && !rc->stalled)
    g_main_context_iteration (NULL, TRUE);
  if (rc->stalled)
    {
      g_test_message ("raw client: no progress for %d s", RAW_STALL_SECONDS);
      return FALSE;
    }
  g_source_remove (id);
  return TRUE;
}

typedef struct {
  guint status;
  SoupMessageHeaders *headers;
  GBytes *body;
} RawResponse;

typedef struct {
  guint8 flags;
  GBytes *payload;
} RawEnvelope;

static inline RawConn *
raw_conn_new (const char *url)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  RawConn *rc = g_new0 (RawConn, 1);
  const char *hostport = strstr (url, "://");

  g_assert_nonnull (hostport);
  rc->conn = g_socket_client_connect_to_host (client, hostport + 3, 80, NULL, &error);
  g_assert_no_error (error);
  rc->in = g_byte_array_new ();
  return rc;
}

static inline void
raw_conn_free (RawConn *rc)
{
  if (rc->conn)
    g_io_stream_close (G_IO_STREAM (rc->conn), NULL, NULL);
  g_clear_object (&rc->conn);
  g_byte_array_unref (rc->in);
  g_clear_error (&rc->error);
  g_free (rc);
}

static inline void
raw_write_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  RawConn *rc = user_data;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &rc->error);
  rc->pending = FALSE;
}

static inline gboolean
raw_send (RawConn *rc, const void *data, gsize len)
{
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (rc->conn));

  rc->pending = TRUE;
  g_output_stream_write_all_async (out, data, len, G_PRIORITY_DEFAULT, NULL, raw_write_done, rc);
  if (!raw_wait (rc))
    return FALSE;
  if (rc->error)
    {
      g_clear_error (&rc->error);
      return FALSE;
    }
  return TRUE;
}

static inline void
raw_read_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  RawConn *rc = user_data;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &rc->error);

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    rc->eof = TRUE;
  else
    g_byte_array_append (rc->in, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  rc->pending = FALSE;
}

/* Reads more bytes; FALSE at EOF. */
static inline gboolean
raw_read_more (RawConn *rc)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (rc->conn));

  if (rc->eof || rc->stalled)
    return FALSE;
  rc->pending = TRUE;
  g_input_stream_read_bytes_async (in, 65536, G_PRIORITY_DEFAULT, NULL, raw_read_done, rc);
  if (!raw_wait (rc))
    return FALSE;
  g_clear_error (&rc->error);
  return !rc->eof;
}

static inline gssize
find_crlfcrlf (GByteArray *buf)
{
  for (guint i = 0; i + 3 < buf->len; i++)
    if (memcmp (buf->data + i, "\r\n\r\n", 4) == 0)
      return i;
  return -1;
}

static inline void
raw_response_clear (RawResponse *resp)
{
  g_clear_pointer (&resp->headers, soup_message_headers_unref);
  g_clear_pointer (&resp->body, g_bytes_unref);
}

/* Reads the head only (leaves the body in rc->in). */
static inline gboolean
raw_read_head (RawConn *rc, RawResponse *resp)
{
  gssize end;
  SoupHTTPVersion version;

  while ((end = find_crlfcrlf (rc->in)) < 0)
    if (!raw_read_more (rc))
      return FALSE;
  resp->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_assert_true (soup_headers_parse_response ((const char *) rc->in->data, end + 4, resp->headers,
                                              &version, &resp->status, NULL));
  g_byte_array_remove_range (rc->in, 0, end + 4);
  return TRUE;
}

/* Reads a whole response. Returns FALSE if the connection ended before. */
static inline gboolean
raw_read_response (RawConn *rc, RawResponse *resp)
{
  GByteArray *body = g_byte_array_new ();
  const char *te;
  goffset length;

  memset (resp, 0, sizeof *resp);
  if (!raw_read_head (rc, resp))
    {
      g_byte_array_unref (body);
      return FALSE;
    }

  te = soup_message_headers_get_one (resp->headers, "Transfer-Encoding");
  length = soup_message_headers_get_content_length (resp->headers);
  if (te != NULL && g_ascii_strcasecmp (te, "chunked") == 0)
    {
      for (;;)
        {
          gssize eol = -1;
          guint64 size;

          for (guint i = 0; i + 1 < rc->in->len; i++)
            if (rc->in->data[i] == '\r' && rc->in->data[i + 1] == '\n')
              {
                eol = i;
                break;
              }
          if (eol < 0)
            {
              if (!raw_read_more (rc))
                goto truncated;
              continue;
            }
          {
            g_autofree char *line = g_strndup ((const char *) rc->in->data, eol);
            size = g_ascii_strtoull (line, NULL, 16);
          }
          while (rc->in->len < eol + 2 + size + 2)
            if (!raw_read_more (rc))
              goto truncated;
          g_byte_array_append (body, rc->in->data + eol + 2, size);
          g_byte_array_remove_range (rc->in, 0, eol + 2 + size + 2);
          if (size == 0)
            break;
        }
    }
  else if (soup_message_headers_get_encoding (resp->headers) == SOUP_ENCODING_CONTENT_LENGTH)
    {
      while (rc->in->len < length)
        if (!raw_read_more (rc))
          goto truncated;
      g_byte_array_append (body, rc->in->data, length);
      g_byte_array_remove_range (rc->in, 0, length);
    }
  else
    {
      while (raw_read_more (rc))
        ;
      g_byte_array_append (body, rc->in->data, rc->in->len);
      g_byte_array_set_size (rc->in, 0);
    }

  resp->body = g_byte_array_free_to_bytes (body);
  return TRUE;

truncated:
  g_byte_array_unref (body);
  return FALSE;
}

/* Splits a Connect streaming body into envelopes; asserts it is well formed. */
static inline GArray *
raw_parse_envelopes (GBytes *body)
{
  GArray *out = g_array_new (FALSE, TRUE, sizeof (RawEnvelope));
  gsize len, pos = 0;
  const guint8 *data = g_bytes_get_data (body, &len);

  while (pos < len)
    {
      RawEnvelope env;
      guint32 n;

      g_assert_cmpuint (len - pos, >=, 5);
      env.flags = data[pos];
      n = ((guint32) data[pos + 1] << 24) | ((guint32) data[pos + 2] << 16) |
          ((guint32) data[pos + 3] << 8) | data[pos + 4];
      g_assert_cmpuint (len - pos - 5, >=, n);
      env.payload = g_bytes_new (data + pos + 5, n);
      g_array_append_val (out, env);
      pos += 5 + n;
    }
  return out;
}

static inline void
raw_envelopes_free (GArray *envs)
{
  for (guint i = 0; i < envs->len; i++)
    g_bytes_unref (g_array_index (envs, RawEnvelope, i).payload);
  g_array_unref (envs);
}

static inline GBytes *
raw_envelope (guint8 flags, const void *data, gsize len)
{
  guint8 *buf = g_malloc (len + 5);

  buf[0] = flags;
  buf[1] = (len >> 24) & 0xff;
  buf[2] = (len >> 16) & 0xff;
  buf[3] = (len >> 8) & 0xff;
  buf[4] = len & 0xff;
  if (len)
    memcpy (buf + 5, data, len);
  return g_bytes_new_take (buf, len + 5);
}

/* ------------------------------------------------------------------ */
/* The server fixture and request helpers (rpc-test-util.c)             */

#include <connectplugin.h>
#include "kv-test.h"

#define UNICODE_MESSAGE "\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\n"
#define SUM_PROCEDURE  "/test.v1.TestService/Sum"
#define ECHO_PROCEDURE "/test.v1.TestService/Echo"

typedef struct {
  CpRpcServer *server;
  char *url;

  /* What handlers saw / do. */
  CpInvocation *held;          /* a call kept open by the test */
  gboolean held_cancelled;
  gboolean late_answer_done;
  gint64 seen_timeout_ms;
  gint64 seen_remaining_ms;
  guint n_calls;

  /* Flood (back-pressure) producer. */
  guint flood_total;
  guint flood_sent;
  gboolean flood_waiting;
  gboolean flood_done;
  GError *flood_error;
} Fixture;

/* A CpRpcServer on 127.0.0.1:0 with the test handlers registered. */
void fixture_setup (Fixture *f, gconstpointer data);
void fixture_teardown (Fixture *f, gconstpointer data);

/* Request bytes; one round trip on a fresh connection. */
GBytes *build_request (const char *method,
                       const char *target,
                       const char *headers,
                       GBytes     *body);
void roundtrip (Fixture     *f,
                const char  *method,
                const char  *target,
                const char  *headers,
                GBytes      *body,
                RawResponse *resp);

/* Messages and envelopes. */
GBytes *proto_of (gpointer message);
GBytes *get_request_proto (const char *key);
GBytes *watch_request_envelope (const char *prefix);
GBytes *put_envelopes (const char * const *keys);
KvGetResponse *decode_get_response (GBytes *body, CpCodec codec);

/* Assertions on answers. */
void assert_value (KvGetResponse *response, const char *expected);
void assert_header (SoupMessageHeaders *headers, const char *name, const char *expected);
void assert_error_json (GBytes *body, CpErrorCode code, const char *message);
void assert_rich_error_json (GBytes *body, CpErrorCode code);
GError *parse_end_stream (GBytes *payload, SoupMessageHeaders *trailers);
void assert_server_alive (Fixture *f);

/* Streams: the envelopes of a 200 answer, or the error its end carries. */
GArray *stream_call (Fixture *f, const char *procedure, const char *headers, GBytes *body,
                     RawResponse *resp);
GError *stream_call_error (Fixture *f, const char *procedure, const char *headers, GBytes *body);
