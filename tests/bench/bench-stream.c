/* bench-stream.c: server-streaming throughput and memory under a slow reader
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Talks to bench-kv-server's Watch ("count:N" → N small WatchEvents, each
 * sent by the handler with cp_invocation_send_message_async(), awaiting
 * back-pressure).
 *
 *   bench-stream --url http://127.0.0.1:PORT [--count N] [--max-seconds S]
 *       Fast reader: a raw blocking socket reads the chunked Connect stream as
 *       fast as it can and counts envelopes (measures the server).
 *   bench-stream --url ... --batch
 *       The same, the handler queueing 63 messages without waiting and
 *       awaiting the 64th (the engine's write path without a GTask per
 *       message).
 *   bench-stream --url ... --accept-gzip
 *       The same, offering gzip (Connect-Accept-Encoding) as CpChannel does.
 *   bench-stream --url ... --channel
 *       The same through our client, CpChannel's CpResponseStream (measures
 *       server + client engine).
 *   bench-stream --url ... --slow --server-pid PID [--seconds S]
 *       Slow reader: a tiny receive buffer drained at ~0.5 MB/s while the
 *       server has a million events to send; reports the server's VmRSS
 *       before and VmRSS/VmHWM after (from /proc/PID/status). With working
 *       back-pressure memory stays flat; without it the server buffers
 *       everything.
 *
 * Prints one "RESULT key=value ..." line for run-bench.sh; exits non-zero
 * when the stream is not what the protocol says it must be.
 */
#include <connectplugin.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kv-test.h"

/* ---- An incremental parser: HTTP/1.1 chunked body → Connect envelopes ---- */

typedef enum {
  CHUNK_SIZE,
  CHUNK_DATA,
  CHUNK_DATA_CRLF,
  CHUNK_TRAILER,
  CHUNK_DONE,
} ChunkState;

typedef struct {
  gboolean   chunked;
  gint64     content_left;     /* when not chunked; -1 = until EOF */
  ChunkState cstate;
  guint64    chunk_left;
  GString   *line;

  guint8     prefix[5];
  guint      prefix_have;
  guint64    payload_left;
  guint8     flags;
  GString   *end_stream;       /* the EndStream JSON */

  guint64    messages;
  gboolean   ended;            /* EndStream envelope complete */
  gboolean   body_done;
  char      *error;            /* protocol error seen */
} StreamParser;

static void
envelope_feed (StreamParser *p,
               const guint8 *data,
               gsize         len)
{
  while (len > 0 && p->error == NULL)
    {
      if (p->ended)
        {
          p->error = g_strdup ("bytes after the EndStream envelope");
          return;
        }
      if (p->prefix_have < 5)
        {
          gsize n = MIN (len, 5 - p->prefix_have);
          memcpy (p->prefix + p->prefix_have, data, n);
          p->prefix_have += (guint) n;
          data += n;
          len -= n;
          if (p->prefix_have < 5)
            return;
          p->flags = p->prefix[0];
          p->payload_left = ((guint32) p->prefix[1] << 24) | ((guint32) p->prefix[2] << 16) |
                            ((guint32) p->prefix[3] << 8) | p->prefix[4];
          if ((p->flags & ~0x03) != 0)
            {
              p->error = g_strdup_printf ("reserved envelope flags 0x%02x", p->flags);
              return;
            }
        }
      else
        {
          gsize n = (gsize) MIN ((guint64) len, p->payload_left);
          if (p->flags & 0x02)
            g_string_append_len (p->end_stream, (const char *) data, (gssize) n);
          data += n;
          len -= n;
          p->payload_left -= n;
        }
      if (p->prefix_have == 5 && p->payload_left == 0)
        {
          if (p->flags & 0x02)
            p->ended = TRUE;
          else
            p->messages++;
          p->prefix_have = 0;
        }
    }
}

/* Feeds raw body bytes (still chunk-framed when chunked). */
static void
body_feed (StreamParser *p,
           const guint8 *data,
           gsize         len)
{
  if (!p->chunked)
    {
      if (p->content_left >= 0)
        {
          len = (gsize) MIN ((gint64) len, p->content_left);
          p->content_left -= (gint64) len;
          if (p->content_left == 0)
            p->body_done = TRUE;
        }
      envelope_feed (p, data, len);
      return;
    }

  while (len > 0 && p->error == NULL && !p->body_done)
    {
      switch (p->cstate)
        {
        case CHUNK_SIZE:
        case CHUNK_TRAILER:
          {
            const guint8 *nl = memchr (data, '\n', len);
            gsize n = nl ? (gsize) (nl - data) + 1 : len;

            g_string_append_len (p->line, (const char *) data, (gssize) n);
            data += n;
            len -= n;
            if (nl == NULL)
              break;
            if (p->cstate == CHUNK_SIZE)
              {
                char *end = NULL;
                p->chunk_left = g_ascii_strtoull (p->line->str, &end, 16);
                if (end == p->line->str)
                  p->error = g_strdup ("bad chunk size line");
                p->cstate = p->chunk_left ? CHUNK_DATA : CHUNK_TRAILER;
              }
            else if (p->line->len <= 2)  /* the empty line ending the trailer */
              {
                p->cstate = CHUNK_DONE;
                p->body_done = TRUE;
              }
            g_string_truncate (p->line, 0);
          }
          break;
        case CHUNK_DATA:
          {
            gsize n = (gsize) MIN ((guint64) len, p->chunk_left);
            envelope_feed (p, data, n);
            data += n;
            len -= n;
            p->chunk_left -= n;
            if (p->chunk_left == 0)
              {
                p->cstate = CHUNK_DATA_CRLF;
                p->chunk_left = 2;
              }
          }
          break;
        case CHUNK_DATA_CRLF:
          {
            gsize n = (gsize) MIN ((guint64) len, p->chunk_left);
            data += n;
            len -= n;
            p->chunk_left -= n;
            if (p->chunk_left == 0)
              p->cstate = CHUNK_SIZE;
          }
          break;
        case CHUNK_DONE:
          return;
        }
    }
}

static void
stream_parser_clear (StreamParser *p)
{
  g_string_free (p->line, TRUE);
  g_string_free (p->end_stream, TRUE);
  g_free (p->error);
}

/* ---- Raw socket client ---- */

typedef struct {
  guint64 messages;
  gdouble seconds;       /* request sent → stream end (or cut-off) */
  gboolean complete;     /* EndStream seen */
  char *end_stream;
} RawResult;

static long
proc_status_kb (int         pid,
                const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree char *contents = NULL;
  const char *line;

  if (pid <= 0 || !g_file_get_contents (path, &contents, NULL, NULL))
    return -1;
  line = strstr (contents, field);
  if (line == NULL)
    return -1;
  return strtol (line + strlen (field) + 1, NULL, 10);
}

static GSocket *
connect_to (GUri    *uri,
            int      rcvbuf,
            GError **error)
{
  g_autoptr(GSocketConnectable) connectable = NULL;
  g_autoptr(GSocketAddressEnumerator) enumerator = NULL;
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GSocket) socket = NULL;

  connectable = g_network_address_new (g_uri_get_host (uri), (guint16) g_uri_get_port (uri));
  enumerator = g_socket_connectable_enumerate (connectable);
  addr = g_socket_address_enumerator_next (enumerator, NULL, error);
  if (addr == NULL)
    return NULL;
  socket = g_socket_new (g_socket_address_get_family (addr), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return NULL;
  if (rcvbuf > 0 && !g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, rcvbuf, error))
    return NULL;
  if (!g_socket_connect (socket, addr, NULL, error))
    return NULL;
  return g_steal_pointer (&socket);
}

/* Runs one Watch("count:N") and reads it. slow_seconds > 0: slow reader that
 * stops after that long. */
static gboolean accept_gzip;
static gboolean batched;

static gboolean
raw_stream (GUri       *uri,
            guint64     count,
            gdouble     max_seconds,
            gdouble     slow_seconds,
            RawResult  *result,
            GError    **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(KvWatchRequest) request = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GByteArray) head = g_byte_array_new ();
  g_autofree char *prefix = g_strdup_printf ("%scount:%" G_GUINT64_FORMAT,
                                             batched && slow_seconds <= 0 ? "batch:" : "", count);
  g_autofree char *req_head = NULL;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  StreamParser p = { 0 };
  gsize read_size = slow_seconds > 0 ? 1024 : 256 * 1024;
  g_autofree guint8 *buf = g_malloc (read_size);
  guint8 envelope_prefix[5];
  gsize payload_len;
  gint64 t0, now;
  gboolean head_done = FALSE;
  gboolean ok = TRUE;

  p.line = g_string_new (NULL);
  p.end_stream = g_string_new (NULL);
  p.content_left = -1;
  memset (result, 0, sizeof *result);

  socket = connect_to (uri, slow_seconds > 0 ? 4096 : 0, error);
  if (socket == NULL)
    return FALSE;

  request = kv_test_watch_request (prefix);
  payload = cp_message_serialize (CP_MESSAGE (request), CP_CODEC_PROTO, error);
  if (payload == NULL)
    return FALSE;
  payload_len = g_bytes_get_size (payload);
  envelope_prefix[0] = 0;
  envelope_prefix[1] = (guint8) (payload_len >> 24);
  envelope_prefix[2] = (guint8) (payload_len >> 16);
  envelope_prefix[3] = (guint8) (payload_len >> 8);
  envelope_prefix[4] = (guint8) payload_len;
  req_head = g_strdup_printf ("POST %s HTTP/1.1\r\n"
                              "Host: %s:%d\r\n"
                              "Content-Type: application/connect+proto\r\n"
                              "Connect-Protocol-Version: 1\r\n"
                              "Accept-Encoding: identity\r\n"
                              "%s"
                              "Content-Length: %" G_GSIZE_FORMAT "\r\n"
                              "\r\n",
                              KV_PROCEDURE_WATCH, g_uri_get_host (uri), g_uri_get_port (uri),
                              accept_gzip ? "Connect-Accept-Encoding: gzip\r\n" : "",
                              payload_len + 5);
  g_byte_array_append (out, (const guint8 *) req_head, (guint) strlen (req_head));
  g_byte_array_append (out, envelope_prefix, 5);
  g_byte_array_append (out, g_bytes_get_data (payload, NULL), (guint) payload_len);

  t0 = g_get_monotonic_time ();
  for (gsize sent = 0; sent < out->len;)
    {
      gssize n = g_socket_send (socket, (const char *) out->data + sent, out->len - sent, NULL, error);
      if (n < 0)
        return FALSE;
      sent += (gsize) n;
    }

  while (!p.body_done && !p.ended && p.error == NULL)
    {
      gssize n = g_socket_receive (socket, (char *) buf, read_size, NULL, error);
      const guint8 *data = buf;
      gsize len;

      if (n < 0)
        {
          ok = FALSE;
          break;
        }
      if (n == 0)
        {
          if (head_done && !p.chunked && p.content_left < 0)
            p.body_done = TRUE;
          else
            p.error = g_strdup ("connection closed before the stream ended");
          break;
        }
      len = (gsize) n;

      if (!head_done)
        {
          const guint8 *end;
          guint status;
          SoupHTTPVersion version;
          g_autofree char *reason = NULL;
          const char *content_type;
          gsize head_len;

          g_byte_array_append (head, data, (guint) len);
          end = memmem (head->data, head->len, "\r\n\r\n", 4);
          if (end == NULL)
            continue;
          head_len = (gsize) (end - head->data) + 4;
          if (!soup_headers_parse_response ((const char *) head->data, (int) head_len, headers,
                                            &version, &status, &reason))
            {
              p.error = g_strdup ("unparsable response head");
              break;
            }
          content_type = soup_message_headers_get_content_type (headers, NULL);
          if (status != 200 || g_strcmp0 (content_type, "application/connect+proto") != 0)
            {
              p.error = g_strdup_printf ("HTTP %u, Content-Type %s", status,
                                         content_type ? content_type : "(none)");
              break;
            }
          p.chunked = soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CHUNKED;
          if (!p.chunked && soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH)
            p.content_left = soup_message_headers_get_content_length (headers);
          head_done = TRUE;
          body_feed (&p, head->data + head_len, head->len - head_len);
          continue;
        }

      body_feed (&p, data, len);

      now = g_get_monotonic_time ();
      if (slow_seconds > 0)
        {
          if (now - t0 >= (gint64) (slow_seconds * G_USEC_PER_SEC))
            break;
          g_usleep (2000);  /* ~1 KiB per 2 ms: about 0.5 MB/s */
        }
      else if (max_seconds > 0 && now - t0 >= (gint64) (max_seconds * G_USEC_PER_SEC))
        break;
    }

  result->seconds = (gdouble) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  result->messages = p.messages;
  result->complete = p.ended;
  result->end_stream = g_strndup (p.end_stream->str, p.end_stream->len);
  if (ok && p.error != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s", p.error);
      ok = FALSE;
    }
  stream_parser_clear (&p);
  g_socket_close (socket, NULL);
  return ok;
}

/* ---- Through CpChannel ---- */

typedef struct {
  GMainLoop *loop;
  guint64    messages;
  GError    *error;
  gboolean   closed;
} ChannelRun;

static void
on_stream_message (CpResponseStream *stream,
                   CpMessage        *message,
                   gpointer          user_data)
{
  ChannelRun *run = user_data;
  run->messages++;
}

static void
on_stream_closed (CpResponseStream *stream,
                  const GError     *error,
                  gpointer          user_data)
{
  ChannelRun *run = user_data;

  run->closed = TRUE;
  if (error != NULL)
    run->error = g_error_copy (error);
  g_main_loop_quit (run->loop);
}

static gboolean
on_channel_timeout (gpointer user_data)
{
  ChannelRun *run = user_data;
  g_main_loop_quit (run->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
channel_stream (const char  *url,
                guint64      count,
                gdouble      max_seconds,
                RawResult   *result,
                GError     **error)
{
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(CpResponseStream) stream = NULL;
  g_autoptr(KvWatchRequest) request = NULL;
  g_autofree char *prefix = g_strdup_printf ("count:%" G_GUINT64_FORMAT, count);
  ChannelRun run = { 0 };
  guint timeout_id;
  gint64 t0;

  memset (result, 0, sizeof *result);
  channel = cp_channel_new (url, error);
  if (channel == NULL)
    return FALSE;
  request = kv_test_watch_request (prefix);
  run.loop = g_main_loop_new (NULL, FALSE);

  t0 = g_get_monotonic_time ();
  stream = cp_channel_call_server_stream (channel, KV_PROCEDURE_WATCH, CP_MESSAGE (request),
                                          KV_TYPE_WATCH_EVENT, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_stream_message), &run);
  g_signal_connect (stream, "closed", G_CALLBACK (on_stream_closed), &run);
  cp_response_stream_start (stream);
  timeout_id = g_timeout_add ((guint) (max_seconds * 1000), on_channel_timeout, &run);
  g_main_loop_run (run.loop);
  if (run.closed)
    g_source_remove (timeout_id);
  else
    cp_response_stream_cancel (stream);
  g_signal_handlers_disconnect_by_data (stream, &run);

  result->seconds = (gdouble) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  result->messages = run.messages;
  result->complete = run.closed && run.error == NULL;
  g_main_loop_unref (run.loop);
  if (run.error != NULL)
    {
      g_propagate_error (error, run.error);
      return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *url = NULL;
  gint64 count = 0;
  gdouble max_seconds = 5.0;
  gdouble slow_seconds = 3.0;
  gboolean slow = FALSE;
  gboolean use_channel = FALSE;
  int server_pid = 0;
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;
  RawResult r;
  GOptionEntry entries[] = {
    { "url", 0, 0, G_OPTION_ARG_STRING, &url, "Server URL", "URL" },
    { "count", 0, 0, G_OPTION_ARG_INT64, &count, "Messages to ask for", "N" },
    { "max-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &max_seconds, "Stop reading after this long (fast run)", "S" },
    { "channel", 0, 0, G_OPTION_ARG_NONE, &use_channel, "Read through CpChannel", NULL },
    { "batch", 0, 0, G_OPTION_ARG_NONE, &batched, "Raw reader: the handler awaits every 64th send only", NULL },
    { "accept-gzip", 0, 0, G_OPTION_ARG_NONE, &accept_gzip, "Raw reader: send Connect-Accept-Encoding: gzip (as CpChannel does)", NULL },
    { "slow", 0, 0, G_OPTION_ARG_NONE, &slow, "Slow reader; report server memory", NULL },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &slow_seconds, "Slow reader duration", "S" },
    { "server-pid", 0, 0, G_OPTION_ARG_INT, &server_pid, "Server process (for /proc/PID/status)", "PID" },
    { NULL }
  };

  options = g_option_context_new ("- Connect server-streaming benchmark");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error) || url == NULL)
    {
      g_printerr ("%s\n", error ? error->message : "--url is required");
      return 2;
    }
  kv_test_ensure_types ();
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &error);
  if (uri == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }

  if (use_channel)
    {
      if (count <= 0)
        count = 300000;
      if (!channel_stream (url, (guint64) count, max_seconds, &r, &error))
        {
          g_printerr ("bench-stream: channel: %s\n", error->message);
          return 1;
        }
      printf ("RESULT mode=channel messages=%" G_GUINT64_FORMAT " seconds=%.3f msgs_per_s=%.0f complete=%d\n",
              r.messages, r.seconds, r.messages / r.seconds, r.complete);
    }
  else if (!slow)
    {
      if (count <= 0)
        count = 1000000;
      /* Warm-up (connections, allocator), then the measured run. */
      if (!raw_stream (uri, 20000, max_seconds, 0, &r, &error))
        {
          g_printerr ("bench-stream: warm-up: %s\n", error->message);
          return 1;
        }
      g_free (r.end_stream);
      if (!raw_stream (uri, (guint64) count, max_seconds, 0, &r, &error))
        {
          g_printerr ("bench-stream: %s\n", error->message);
          return 1;
        }
      if (r.complete && r.messages != (guint64) count)
        {
          g_printerr ("bench-stream: asked for %" G_GINT64_FORMAT " messages, got %" G_GUINT64_FORMAT "\n",
                      count, r.messages);
          return 1;
        }
      if (r.complete && strstr (r.end_stream, "\"error\"") != NULL)
        {
          g_printerr ("bench-stream: stream failed: %s\n", r.end_stream);
          return 1;
        }
      printf ("RESULT mode=%s messages=%" G_GUINT64_FORMAT " seconds=%.3f msgs_per_s=%.0f complete=%d\n",
              batched ? "raw-batch" : accept_gzip ? "raw-gzip" : "raw", r.messages, r.seconds, r.messages / r.seconds, r.complete);
      g_free (r.end_stream);
    }
  else
    {
      long rss_before, rss_after, hwm_after, hwm_before;

      if (count <= 0)
        count = 1000000;
      if (!raw_stream (uri, 20000, max_seconds, 0, &r, &error))
        {
          g_printerr ("bench-stream: warm-up: %s\n", error->message);
          return 1;
        }
      g_free (r.end_stream);
      rss_before = proc_status_kb (server_pid, "VmRSS:");
      hwm_before = proc_status_kb (server_pid, "VmHWM:");
      if (!raw_stream (uri, (guint64) count, 0, slow_seconds, &r, &error))
        {
          g_printerr ("bench-stream: slow reader: %s\n", error->message);
          return 1;
        }
      rss_after = proc_status_kb (server_pid, "VmRSS:");
      hwm_after = proc_status_kb (server_pid, "VmHWM:");
      printf ("RESULT mode=slow messages=%" G_GUINT64_FORMAT " seconds=%.3f "
              "rss_before_kb=%ld hwm_before_kb=%ld rss_after_kb=%ld hwm_after_kb=%ld\n",
              r.messages, r.seconds, rss_before, hwm_before, rss_after, hwm_after);
      g_free (r.end_stream);
    }
  return 0;
}
