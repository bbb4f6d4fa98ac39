/* cp-http2-session.c: HTTP/2 streams of a server connection, on libnghttp2
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The connection (cp-http-connection.c) reads into its buffer and calls
 * cp_http2_session_process() from its process loop; that hands the bytes to
 * nghttp2_session_mem_recv(), then runs the work the frames created (one
 * pass over the streams queued in session->work: invoking the handler of a
 * complete request head, delivering request body, writable callbacks,
 * releasing closed streams), then moves the frames nghttp2 has to send
 * into the connection's write queue with nghttp2_session_mem_send(), up to
 * CP_HTTP_HIGH_WATER: beyond it the session stops reading too, so a peer
 * that does not read cannot make us queue without bound.
 *
 * nghttp2's callbacks only record what happened (they run inside
 * mem_recv/mem_send); handlers are called from the pass afterwards, never
 * from inside nghttp2 and never from inside a cp_http_exchange_* call.
 *
 * Flow control: automatic WINDOW_UPDATEs are off
 * (NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE); received DATA is consumed
 * (nghttp2_session_consume) only when it is handed to the handler, so a
 * handler that pauses the body stops the peer once the stream window
 * (CP_HTTP2_STREAM_WINDOW) is used up. Response bodies go through a data
 * provider that reads the stream's queue and answers NGHTTP2_ERR_DEFERRED
 * when it is empty; write/end_response resume it.
 *
 * Hardening: nghttp2's own limits (SETTINGS entries, queued PING/SETTINGS
 * acknowledgements, CONTINUATION frames, incoming RST_STREAM rate: the
 * rapid reset attack) are set explicitly; header lists are capped by the
 * server's max-head-size and max-header-count (an HPACK bomb resets the
 * stream); a stream whose request body stalls longer than body-timeout-ms is
 * reset; a connection without streams is closed (GOAWAY) after
 * idle-timeout-ms.
 */
#include "cp-http2-session-private.h"
#include "cp-http-connection-state-private.h"

#include <nghttp2/nghttp2.h>
#include <string.h>

struct _CpHttp2Session
{
  CpHttpConnection *conn;          /* borrowed: the connection owns us */
  nghttp2_session  *ng;
  GQueue            streams;       /* every CpHttp2Stream, by link */
  GQueue            work;          /* streams with something to do, by work_link */
  guint             closed : 1;    /* the connection closed: no more I/O */
  guint             output_capped : 1;
  guint             in_process : 1;
  guint             shutdown : 1;
  guint             goaway_final : 1;

  /* Client stream ids the peer skipped (RFC 9113 §5.1.1: implicitly
   * closed, never opened), as [lo, hi] ranges of odd ids, the oldest
   * dropped when full. A HEADERS frame on one of them is a connection
   * error (PROTOCOL_ERROR); libnghttp2 alone ignores it, as it ignores
   * HEADERS on the streams it opened and closed (which it must, §5.1). */
  int32_t           max_headers_id;
  int32_t           skipped[CP_HTTP2_SKIPPED_RANGES][2];
  guint             n_skipped;
};

struct _CpHttp2Stream
{
  CpHttp2Session   *session;
  int32_t           id;
  CpHttpExchange   *ex;            /* owned */
  GList             link;
  GList             work_link;
  gboolean          in_work;

  /* request */
  gsize             header_bytes;
  guint             n_headers;
  char             *method;
  char             *path;
  GQueue            body;          /* GBytes not yet handed to the handler */
  gsize             body_queued;
  gint64            last_activity;
  guint             head_done : 1;
  guint             body_complete : 1;
  guint             dispatched : 1;
  guint             closed : 1;    /* nghttp2 closed it: release at the next pass */
  guint             released : 1;

  /* response */
  GQueue            out;           /* GBytes, the first read from out_offset */
  gsize             out_offset;
  gsize             out_queued;
  guint             out_ended : 1;
  guint             deferred : 1;
  guint             submitted : 1;
};

static void
session_queue_work (CpHttp2Session *session,
                    CpHttp2Stream  *stream)
{
  if (stream->in_work)
    return;
  stream->in_work = TRUE;
  g_queue_push_tail_link (&session->work, &stream->work_link);
}

static void
session_schedule (CpHttp2Session *session)
{
  if (!session->closed)
    cp_http_conn_schedule (session->conn);
}

/* Returns the body bytes the peer sent but nobody consumed to the
 * connection's flow-control window. */
static void
stream_consume (CpHttp2Stream *stream,
                gsize          n)
{
  CpHttp2Session *session = stream->session;

  if (n == 0 || session->closed)
    return;
  if (nghttp2_session_consume (session->ng, stream->id, n) != 0)
    nghttp2_session_consume_connection (session->ng, n);
}

static void
stream_drop_body (CpHttp2Stream *stream)
{
  gsize n = stream->body_queued;

  g_queue_clear_full (&stream->body, (GDestroyNotify) g_bytes_unref);
  stream->body_queued = 0;
  stream_consume (stream, n);
}

static void
stream_free (CpHttp2Stream *stream)
{
  if (stream->ex != NULL)
    {
      stream->ex->h2 = NULL;
      cp_http_exchange_clear_callbacks (stream->ex);
      cp_http_exchange_unref (stream->ex);
    }
  g_queue_clear_full (&stream->body, (GDestroyNotify) g_bytes_unref);
  g_queue_clear_full (&stream->out, (GDestroyNotify) g_bytes_unref);
  g_free (stream->method);
  g_free (stream->path);
  g_free (stream);
}

/* ---- nghttp2 callbacks: record, do not call handlers ---- */

static gboolean
session_skipped (CpHttp2Session *session,
                 int32_t         id)
{
  for (guint i = 0; i < session->n_skipped; i++)
    if (id >= session->skipped[i][0] && id <= session->skipped[i][1])
      return TRUE;
  return FALSE;
}

/* Every frame header, before libnghttp2 acts on the frame: HEADERS on a
 * client stream id the peer skipped over fails the connection. */
static int
on_begin_frame (nghttp2_session         *ng,
                const nghttp2_frame_hd  *hd,
                void                    *user_data)
{
  CpHttp2Session *session = user_data;
  int32_t id = hd->stream_id;

  if (hd->type != NGHTTP2_HEADERS || id % 2 == 0)
    return 0;
  if (id > session->max_headers_id)
    {
      int32_t lo = session->max_headers_id + (session->max_headers_id == 0 ? 1 : 2);

      if (id > lo)
        {
          if (session->n_skipped == CP_HTTP2_SKIPPED_RANGES)
            {
              memmove (session->skipped[0], session->skipped[1],
                       sizeof session->skipped[0] * (CP_HTTP2_SKIPPED_RANGES - 1));
              session->n_skipped--;
            }
          session->skipped[session->n_skipped][0] = lo;
          session->skipped[session->n_skipped][1] = id - 2;
          session->n_skipped++;
        }
      session->max_headers_id = id;
      return 0;
    }
  if (session_skipped (session, id))
    {
      g_debug ("HTTP/2: HEADERS on stream %d, skipped over for stream %d", id,
               session->max_headers_id);
      return NGHTTP2_ERR_CALLBACK_FAILURE;   /* session_fail (): GOAWAY PROTOCOL_ERROR */
    }
  return 0;
}

static int
on_begin_headers (nghttp2_session     *ng,
                  const nghttp2_frame *frame,
                  void                *user_data)
{
  CpHttp2Session *session = user_data;
  CpHttp2Stream *stream;

  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  stream = g_new0 (CpHttp2Stream, 1);
  stream->session = session;
  stream->id = frame->hd.stream_id;
  stream->link.data = stream;
  stream->work_link.data = stream;
  stream->last_activity = g_get_monotonic_time ();
  stream->ex = cp_http_exchange_new_internal ();
  stream->ex->h2 = stream;
  stream->ex->version = SOUP_HTTP_2_0;
  stream->ex->keep_alive = TRUE;
  stream->ex->server = session->conn->server;
  g_queue_push_tail_link (&session->streams, &stream->link);
  nghttp2_session_set_stream_user_data (ng, stream->id, stream);
  return 0;
}

static int
on_header (nghttp2_session     *ng,
           const nghttp2_frame *frame,
           const uint8_t       *name,
           size_t               namelen,
           const uint8_t       *value,
           size_t               valuelen,
           uint8_t              flags,
           void                *user_data)
{
  CpHttp2Session *session = user_data;
  CpHttp2Stream *stream = nghttp2_session_get_stream_user_data (ng, frame->hd.stream_id);
  CpHttpServer *server = session->conn->server;
  /* nghttp2 hands both NUL-terminated (HTTP messaging is on: no NUL can
   * be inside them). */
  const char *n = (const char *) name;
  const char *v = (const char *) value;

  if (stream == NULL || frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  /* RFC 9113 §6.5.2 counts 32 bytes of overhead per field. */
  stream->header_bytes += namelen + valuelen + 32;
  stream->n_headers++;
  if (stream->header_bytes > cp_http_server_get_max_head_size (server) ||
      stream->n_headers > cp_http_server_get_max_header_count (server))
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets the stream */
  if (stream->head_done)
    return 0;                                        /* request trailers: ignored */

  if (namelen > 0 && name[0] == ':')
    {
      if (strcmp (n, ":method") == 0)
        {
          g_free (stream->method);
          stream->method = g_strndup (v, valuelen);
        }
      else if (strcmp (n, ":path") == 0)
        {
          g_free (stream->path);
          stream->path = g_strndup (v, valuelen);
        }
      else if (strcmp (n, ":authority") == 0)
        soup_message_headers_replace (stream->ex->request_headers, "Host", v);
      return 0;
    }
  if (strcmp (n, "host") == 0 &&
      soup_message_headers_get_one (stream->ex->request_headers, "Host") != NULL)
    return 0;   /* :authority wins */
  soup_message_headers_append (stream->ex->request_headers, n, v);
  return 0;
}

static int
on_data_chunk_recv (nghttp2_session *ng,
                    uint8_t          flags,
                    int32_t          stream_id,
                    const uint8_t   *data,
                    size_t           len,
                    void            *user_data)
{
  CpHttp2Session *session = user_data;
  CpHttp2Stream *stream = nghttp2_session_get_stream_user_data (ng, stream_id);

  if (stream != NULL)
    stream->last_activity = g_get_monotonic_time ();
  if (stream == NULL || stream->ex->finished || stream->ex->aborted || stream->ex->discard_body)
    {
      /* Nobody takes it: give the window back at once. */
      if (nghttp2_session_consume (ng, stream_id, len) != 0)
        nghttp2_session_consume_connection (ng, len);
      return 0;
    }
  g_queue_push_tail (&stream->body, g_bytes_new (data, len));
  stream->body_queued += len;
  session_queue_work (session, stream);
  return 0;
}

static int
on_frame_recv (nghttp2_session     *ng,
               const nghttp2_frame *frame,
               void                *user_data)
{
  CpHttp2Session *session = user_data;
  CpHttp2Stream *stream;

  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  stream = nghttp2_session_get_stream_user_data (ng, frame->hd.stream_id);
  if (stream == NULL)
    return 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
    stream->head_done = TRUE;
  if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
    stream->body_complete = TRUE;
  stream->last_activity = g_get_monotonic_time ();
  session_queue_work (session, stream);
  return 0;
}

static int
on_stream_close (nghttp2_session *ng,
                 int32_t          stream_id,
                 uint32_t         error_code,
                 void            *user_data)
{
  CpHttp2Session *session = user_data;
  CpHttp2Stream *stream = nghttp2_session_get_stream_user_data (ng, stream_id);

  if (stream == NULL || session->closed)
    return 0;
  nghttp2_session_set_stream_user_data (ng, stream_id, NULL);
  stream->closed = TRUE;
  session_queue_work (session, stream);
  return 0;
}

/* The data provider of a response body. */
/* A header block for nghttp2 (which copies what it is given): names
 * lower-cased into a small arena, both on the stack for the usual few
 * fields, on the heap beyond. */
#define NV_STACK 16
#define NV_ARENA 512

typedef struct {
  nghttp2_nv stack[NV_STACK];
  char arena[NV_ARENA];
  gsize arena_used;
  nghttp2_nv *nv;
  gsize len, size;
  GPtrArray *heap_names;        /* lower-cased names past the arena */
} NvList;

static void
nv_list_init (NvList *list)
{
  list->arena_used = 0;
  list->nv = list->stack;
  list->len = 0;
  list->size = NV_STACK;
  list->heap_names = NULL;
}

static void
nv_list_clear (NvList *list)
{
  if (list->nv != list->stack)
    g_free (list->nv);
  if (list->heap_names != NULL)
    g_ptr_array_unref (list->heap_names);
}

static void
nv_list_add (NvList     *list,
             const char *name,
             gsize       name_len,
             const char *value,
             gsize       value_len)
{
  if (list->len == list->size)
    {
      nghttp2_nv *grown = g_new (nghttp2_nv, list->size * 2);

      memcpy (grown, list->nv, list->len * sizeof (nghttp2_nv));
      if (list->nv != list->stack)
        g_free (list->nv);
      list->nv = grown;
      list->size *= 2;
    }
  list->nv[list->len++] = (nghttp2_nv) { (uint8_t *) name, (uint8_t *) value, name_len,
                                         value_len, NGHTTP2_NV_FLAG_NONE };
}

/* Adds @name lower-cased (HTTP/2 field names are). */
static void
nv_list_add_lower (NvList     *list,
                   const char *name,
                   const char *value)
{
  gsize len = strlen (name);
  char *lower;

  if (len <= NV_ARENA - list->arena_used)
    {
      lower = list->arena + list->arena_used;
      list->arena_used += len;
    }
  else
    {
      if (list->heap_names == NULL)
        list->heap_names = g_ptr_array_new_with_free_func (g_free);
      lower = g_malloc (len);
      g_ptr_array_add (list->heap_names, lower);
    }
  for (gsize i = 0; i < len; i++)
    lower[i] = g_ascii_tolower (name[i]);
  nv_list_add (list, lower, len, value, strlen (value));
}

static ssize_t
read_body (nghttp2_session     *ng,
           int32_t              stream_id,
           uint8_t             *buf,
           size_t               length,
           uint32_t            *data_flags,
           nghttp2_data_source *source,
           void                *user_data)
{
  CpHttp2Stream *stream = source->ptr;
  CpHttpExchange *ex = stream->ex;
  gsize copied = 0;

  while (copied < length)
    {
      GBytes *head = g_queue_peek_head (&stream->out);
      gsize size, n;
      const guint8 *data;

      if (head == NULL)
        break;
      data = g_bytes_get_data (head, &size);
      n = MIN (size - stream->out_offset, length - copied);
      memcpy (buf + copied, data + stream->out_offset, n);
      copied += n;
      stream->out_offset += n;
      if (stream->out_offset == size)
        {
          g_bytes_unref (g_queue_pop_head (&stream->out));
          stream->out_offset = 0;
        }
    }
  stream->out_queued -= copied;
  if (ex != NULL && ex->congestion_reported && stream->out_queued < CP_HTTP_LOW_WATER)
    session_queue_work (stream->session, stream);

  if (stream->out_queued == 0 && stream->out_ended)
    {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (ex != NULL && ex->response_trailers != NULL)
        {
          NvList list;
          SoupMessageHeadersIter iter;
          const char *name, *value;

          nv_list_init (&list);
          soup_message_headers_iter_init (&iter, ex->response_trailers);
          while (soup_message_headers_iter_next (&iter, &name, &value))
            nv_list_add_lower (&list, name, value);
          if (list.len > 0 && nghttp2_submit_trailer (ng, stream_id, list.nv, list.len) == 0)
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          nv_list_clear (&list);
        }
      return copied;
    }
  if (copied == 0)
    {
      stream->deferred = TRUE;
      return NGHTTP2_ERR_DEFERRED;
    }
  return copied;
}

/* ---- the pass after the frames: handlers and streams' state ---- */

static void
stream_dispatch (CpHttp2Stream *stream)
{
  CpHttp2Session *session = stream->session;
  CpHttpExchange *ex = stream->ex;
  const char *length;
  char *query;

  stream->dispatched = TRUE;
  if (stream->method == NULL || stream->path == NULL || stream->path[0] != '/')
    {
      /* CONNECT, or an asterisk/authority form: nothing we serve. */
      nghttp2_submit_rst_stream (session->ng, NGHTTP2_FLAG_NONE, stream->id,
                                 NGHTTP2_REFUSED_STREAM);
      return;
    }
  ex->method = g_steal_pointer (&stream->method);
  ex->path = g_steal_pointer (&stream->path);
  query = strchr (ex->path, '?');
  if (query != NULL)
    {
      *query = '\0';
      ex->query = query + 1;
    }
  ex->head_request = strcmp (ex->method, "HEAD") == 0;
  ex->arrival_time = g_get_monotonic_time ();
  length = soup_message_headers_get_one (ex->request_headers, "content-length");
  ex->content_length = length != NULL ? g_ascii_strtoull (length, NULL, 10) : 0;
  ex->empty_body = (stream->body_complete && stream->body_queued == 0) ||
                   (length != NULL && ex->content_length == 0);
  if (cp_http_server_is_stopping (session->conn->server))
    ex->close = TRUE;
  cp_http_exchange_ref (ex);
  cp_http_server_invoke_handler (session->conn->server, ex);
  ex->handler_returned = TRUE;
  cp_http_exchange_unref (ex);
}

static void
stream_deliver (CpHttp2Stream *stream)
{
  CpHttp2Session *session = stream->session;
  CpHttpExchange *ex = stream->ex;

  while (!session->closed && !stream->closed)
    {
      GBytes *chunk;

      if (ex->finished || ex->aborted || ex->discard_body)
        {
          stream_drop_body (stream);
          return;
        }
      if (!cp_http_exchange_can_deliver (ex))
        return;
      chunk = g_queue_pop_head (&stream->body);
      if (chunk != NULL)
        {
          gsize size = g_bytes_get_size (chunk);

          stream->body_queued -= size;
          stream_consume (stream, size);
          cp_http_exchange_deliver_chunk (ex, chunk);
          g_bytes_unref (chunk);
          continue;
        }
      if (stream->body_complete)
        cp_http_exchange_deliver_end (ex);
      return;
    }
}

static void
stream_release (CpHttp2Stream *stream)
{
  CpHttp2Session *session = stream->session;
  CpHttpExchange *ex = stream->ex;

  if (!ex->finished && !ex->aborted)
    {
      g_autoptr(GError) error =
        g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                             "The client reset the HTTP/2 stream");

      cp_http_exchange_abort (ex, error);
      if (session->closed)
        return;
    }
  stream->released = TRUE;
  stream_drop_body (stream);
  g_queue_unlink (&session->streams, &stream->link);
  stream_free (stream);
}

static void
stream_run (CpHttp2Stream *stream)
{
  CpHttp2Session *session = stream->session;
  CpHttpExchange *ex = stream->ex;

  if (stream->closed)
    {
      stream_release (stream);
      return;
    }
  if (!stream->dispatched && stream->head_done)
    {
      stream_dispatch (stream);
      if (session->closed || stream->closed)
        return;
    }
  if (stream->dispatched && ex->handler_returned)
    stream_deliver (stream);
  if (session->closed || stream->closed)
    return;
  if (ex->congestion_reported && !ex->finished && !ex->aborted &&
      stream->out_queued < CP_HTTP_LOW_WATER)
    {
      ex->congestion_reported = FALSE;
      if (ex->has_callbacks && ex->callbacks.writable != NULL)
        {
          cp_http_exchange_ref (ex);
          ex->callbacks.writable (ex, ex->user_data);
          cp_http_exchange_unref (ex);
        }
    }
}

static void
session_run_work (CpHttp2Session *session)
{
  /* Streams queued while this pass runs wait for the next one. */
  guint n = session->work.length;

  while (n-- > 0 && !session->closed)
    {
      GList *link = g_queue_pop_head_link (&session->work);
      CpHttp2Stream *stream;

      if (link == NULL)
        break;
      stream = link->data;
      stream->in_work = FALSE;
      stream_run (stream);
    }
}

/* A fatal nghttp2 error (flood, bad preface, out of memory): send what can
 * be sent (a GOAWAY) and close. */
static void
session_fail (CpHttp2Session *session,
              int             rv)
{
  CpHttpConnection *conn = session->conn;
  gboolean calm = rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;

  g_debug ("HTTP/2 session error: %s", nghttp2_strerror (rv));
  if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
    {
      const uint8_t *data;
      ssize_t n;

      nghttp2_session_terminate_session (session->ng, calm ? NGHTTP2_ENHANCE_YOUR_CALM :
                                                                NGHTTP2_PROTOCOL_ERROR);
      while ((n = nghttp2_session_mem_send (session->ng, &data)) > 0 &&
             conn->queued < 2 * CP_HTTP_HIGH_WATER)
        cp_http_conn_queue_copy (conn, data, n);
    }
  if (calm)
    {
      /* A peer that floods does not read either: no waiting for it. */
      cp_http_conn_flush (conn);
      if (conn->state == CONN_OPEN)
        cp_http_connection_close (conn, NULL);
      return;
    }
  conn->close_after_flush = TRUE;
  cp_http_conn_set_deadline (conn, DEADLINE_LINGER, 1000);
}

static gboolean
session_send (CpHttp2Session *session)
{
  CpHttpConnection *conn = session->conn;

  session->output_capped = FALSE;
  while (!session->closed)
    {
      const uint8_t *data;
      ssize_t n;

      if (conn->queued >= CP_HTTP_HIGH_WATER)
        {
          session->output_capped = TRUE;
          break;
        }
      n = nghttp2_session_mem_send (session->ng, &data);
      if (n < 0)
        {
          session_fail (session, (int) n);
          return FALSE;
        }
      if (n == 0)
        break;
      cp_http_conn_queue_copy (conn, data, n);
    }
  return TRUE;
}

/* The connection's one deadline: idle without streams, else the earliest
 * stalled request body. */
static void
session_update_deadline (CpHttp2Session *session)
{
  CpHttpConnection *conn = session->conn;
  gint64 body_us = (gint64) cp_http_server_get_body_timeout_ms (conn->server) * 1000;
  gint64 earliest = G_MAXINT64;

  if (session->streams.length == 0)
    {
      if (conn->deadline_kind != DEADLINE_IDLE)
        cp_http_conn_set_deadline (conn, DEADLINE_IDLE,
                                   cp_http_server_get_idle_timeout_ms (conn->server));
      return;
    }
  for (GList *l = session->streams.head; l != NULL; l = l->next)
    {
      CpHttp2Stream *stream = l->data;
      CpHttpExchange *ex = stream->ex;

      /* A response that ended early still waits for the rest of the body
       * (dropped as it comes), as long as it keeps coming. */
      if (stream->body_complete || stream->closed || ex->aborted)
        continue;
      if (stream->dispatched && ex->paused && !ex->finished)
        continue;   /* time the handler holds the body does not count */
      earliest = MIN (earliest, stream->last_activity + body_us);
    }
  if (earliest == G_MAXINT64)
    cp_http_conn_set_deadline (conn, DEADLINE_NONE, 0);
  else
    {
      conn->deadline_kind = DEADLINE_BODY;
      conn->deadline = earliest;
    }
}

void
cp_http2_session_process (CpHttp2Session *session)
{
  CpHttpConnection *conn = session->conn;

  if (session->closed || session->in_process)
    return;
  session->in_process = TRUE;
  for (guint round = 0; round < 64 && !session->closed && !conn->close_after_flush; round++)
    {
      if (conn->rend > conn->rstart)
        {
          ssize_t n = nghttp2_session_mem_recv (session->ng, conn->rbuf + conn->rstart,
                                                conn->rend - conn->rstart);
          if (n < 0)
            {
              session_fail (session, (int) n);
              break;
            }
          conn->rstart += n;
        }
      if (session->shutdown && !session->goaway_final)
        {
          /* The notice went out last round: now the real GOAWAY, naming
           * the last stream we take. */
          session->goaway_final = TRUE;
          nghttp2_submit_goaway (session->ng, NGHTTP2_FLAG_NONE,
                                 nghttp2_session_get_last_proc_stream_id (session->ng),
                                 NGHTTP2_NO_ERROR, NULL, 0);
        }
      session_run_work (session);
      if (session->closed || !session_send (session))
        break;
      if (session->work.length == 0 && conn->rend == conn->rstart)
        break;
    }
  session->in_process = FALSE;
  if (session->closed)
    return;
  if (conn->close_after_flush)
    return;
  if (!nghttp2_session_want_read (session->ng) && !nghttp2_session_want_write (session->ng))
    {
      conn->close_after_flush = TRUE;
      cp_http_conn_set_deadline (conn, DEADLINE_LINGER, 1000);
      return;
    }
  session_update_deadline (session);
}

gboolean
cp_http2_session_want_read (CpHttp2Session *session)
{
  /* Reading goes on while output is capped: what a peer that does not read
   * makes us answer (PING and SETTINGS acknowledgements, RST_STREAM) then
   * piles up in nghttp2, whose limits end the session as a flood; requests
   * are bounded by the stream limit and bodies by flow control. */
  return !session->closed && nghttp2_session_want_read (session->ng);
}

gboolean
cp_http2_session_want_write (CpHttp2Session *session)
{
  return !session->closed && session->output_capped;
}

gboolean
cp_http2_session_is_idle (CpHttp2Session *session)
{
  return session->streams.length == 0;
}

void
cp_http2_session_shutdown (CpHttp2Session *session)
{
  if (session->closed || session->shutdown)
    return;
  session->shutdown = TRUE;
  nghttp2_submit_shutdown_notice (session->ng);
  session_schedule (session);
}

gboolean
cp_http2_session_timeout (CpHttp2Session *session)
{
  CpHttpConnection *conn = session->conn;
  gint64 now = g_get_monotonic_time ();
  gint64 body_us = (gint64) cp_http_server_get_body_timeout_ms (conn->server) * 1000;

  if (session->closed)
    return FALSE;
  if (conn->deadline_kind == DEADLINE_IDLE)
    {
      nghttp2_session_terminate_session (session->ng, NGHTTP2_NO_ERROR);
      cp_http_conn_set_deadline (conn, DEADLINE_LINGER, 1000);
      session_schedule (session);
      return TRUE;
    }
  if (conn->deadline_kind != DEADLINE_BODY)
    return FALSE;
  for (GList *l = session->streams.head; l != NULL; l = l->next)
    {
      CpHttp2Stream *stream = l->data;
      CpHttpExchange *ex = stream->ex;

      if (stream->body_complete || stream->closed || ex->aborted ||
          (stream->dispatched && ex->paused && !ex->finished) ||
          stream->last_activity + body_us > now)
        continue;
      nghttp2_submit_rst_stream (session->ng, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_CANCEL);
      {
        g_autoptr(GError) error =
          g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                               "Timed out waiting for the request body");
        cp_http_exchange_abort (ex, error);
      }
      if (session->closed)
        return TRUE;
    }
  cp_http_conn_set_deadline (conn, DEADLINE_NONE, 0);
  session_schedule (session);
  return TRUE;
}

void
cp_http2_session_abort_all (CpHttp2Session *session,
                            const GError   *error)
{
  if (session->closed)
    return;
  session->closed = TRUE;
  for (GList *l = session->streams.head; l != NULL; l = l->next)
    {
      CpHttp2Stream *stream = l->data;

      cp_http_exchange_abort (stream->ex, error);
      cp_http_exchange_clear_callbacks (stream->ex);
    }
}

/* ---- creation ---- */

CpHttp2Session *
cp_http2_session_new (CpHttpConnection *conn)
{
  CpHttp2Session *session = g_new0 (CpHttp2Session, 1);
  CpHttpServer *server = conn->server;
  nghttp2_session_callbacks *callbacks;
  nghttp2_option *option;
  nghttp2_settings_entry settings[] = {
    { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, CP_HTTP2_MAX_CONCURRENT_STREAMS },
    { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CP_HTTP2_STREAM_WINDOW },
    { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cp_http_server_get_max_head_size (server) },
  };

  session->conn = conn;
  nghttp2_session_callbacks_new (&callbacks);
  nghttp2_session_callbacks_set_on_begin_frame_callback (callbacks, on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback (callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback (callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback (callbacks, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_recv_callback (callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback (callbacks, on_stream_close);

  nghttp2_option_new (&option);
  nghttp2_option_set_no_auto_window_update (option, 1);
  nghttp2_option_set_max_settings (option, 32);
  nghttp2_option_set_max_outbound_ack (option, 1000);
  nghttp2_option_set_max_continuations (option, 8);
  nghttp2_option_set_stream_reset_rate_limit (option, CP_HTTP2_RESET_BURST, CP_HTTP2_RESET_RATE);
  nghttp2_option_set_max_deflate_dynamic_table_size (option, 4096);

  nghttp2_session_server_new2 (&session->ng, callbacks, session, option);
  nghttp2_session_callbacks_del (callbacks);
  nghttp2_option_del (option);

  nghttp2_submit_settings (session->ng, NGHTTP2_FLAG_NONE, settings, G_N_ELEMENTS (settings));
  nghttp2_session_set_local_window_size (session->ng, NGHTTP2_FLAG_NONE, 0,
                                         CP_HTTP2_CONNECTION_WINDOW);
  return session;
}

void
cp_http2_session_free (CpHttp2Session *session)
{
  GList *link;

  session->closed = TRUE;
  g_queue_init (&session->work);   /* the links are the streams' own */
  while ((link = g_queue_pop_head_link (&session->streams)) != NULL)
    stream_free (link->data);
  nghttp2_session_del (session->ng);
  g_free (session);
}

/* ---- the exchange's calls ---- */

static gboolean
stream_usable (CpHttp2Stream *stream)
{
  return !stream->session->closed && !stream->closed;
}

GSocketAddress *
cp_http2_stream_get_remote_address (CpHttp2Stream *stream)
{
  return cp_http_connection_get_remote_address (stream->session->conn);
}

GTlsCertificate *
cp_http2_stream_get_peer_certificate (CpHttp2Stream *stream)
{
  return cp_http_connection_get_peer_certificate (stream->session->conn);
}

static gboolean
status_has_body (guint status)
{
  return !(status < 200 || status == SOUP_STATUS_NO_CONTENT || status == SOUP_STATUS_NOT_MODIFIED);
}

/* Submits the response HEADERS (with a data provider when a body or
 * trailers follow). */
static void
stream_submit (CpHttp2Stream      *stream,
               guint               status,
               SoupMessageHeaders *headers,
               gint64              content_length,
               gboolean            with_body)
{
  CpHttp2Session *session = stream->session;
  NvList list;
  char status_str[8], length_str[24];
  nghttp2_data_provider provider = { .source.ptr = stream, .read_callback = read_body };

  nv_list_init (&list);
  if (status == 200)
    nv_list_add (&list, ":status", 7, "200", 3);
  else
    {
      g_snprintf (status_str, sizeof status_str, "%u", status);
      nv_list_add (&list, ":status", 7, status_str, strlen (status_str));
    }
  if (headers != NULL)
    {
      SoupMessageHeadersIter iter;
      const char *name, *value;

      soup_message_headers_iter_init (&iter, headers);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        {
          if (cp_http_is_framing_header (name) || g_ascii_strcasecmp (name, "Upgrade") == 0 ||
              g_ascii_strcasecmp (name, "Proxy-Connection") == 0)
            continue;
          nv_list_add_lower (&list, name, value);
        }
    }
  if (content_length >= 0 && status_has_body (status))
    {
      g_snprintf (length_str, sizeof length_str, "%" G_GINT64_FORMAT, content_length);
      nv_list_add (&list, "content-length", 14, length_str, strlen (length_str));
    }
  stream->submitted = TRUE;
  if (nghttp2_submit_response (session->ng, stream->id, list.nv, list.len,
                               with_body ? &provider : NULL) != 0)
    nghttp2_submit_rst_stream (session->ng, NGHTTP2_FLAG_NONE, stream->id,
                               NGHTTP2_INTERNAL_ERROR);
  nv_list_clear (&list);
  session_schedule (session);
}

static void
stream_finished (CpHttp2Stream *stream)
{
  CpHttpExchange *ex = stream->ex;

  ex->finished = TRUE;
  cp_http_server_exchange_done (stream->session->conn->server, ex);
  if (stream->deferred)
    {
      stream->deferred = FALSE;
      nghttp2_session_resume_data (stream->session->ng, stream->id);
    }
  /* An unread request body is dropped (window given back). */
  session_queue_work (stream->session, stream);
  session_schedule (stream->session);
}

void
cp_http2_stream_respond (CpHttp2Stream      *stream,
                         guint               status,
                         SoupMessageHeaders *headers,
                         GBytes             *body)
{
  gsize size = body != NULL ? g_bytes_get_size (body) : 0;
  gboolean has_body = size > 0 && !stream->ex->head_request && status_has_body (status);

  if (!stream_usable (stream))
    return;
  if (has_body)
    {
      g_queue_push_tail (&stream->out, g_bytes_ref (body));
      stream->out_queued += size;
    }
  stream->out_ended = TRUE;
  stream_submit (stream, status, headers, stream->ex->head_request ? -1 : (gint64) size,
                 has_body || stream->ex->response_trailers != NULL);
  stream_finished (stream);
}

void
cp_http2_stream_begin_response (CpHttp2Stream      *stream,
                                guint               status,
                                SoupMessageHeaders *headers)
{
  if (!stream_usable (stream))
    return;
  stream->ex->response_has_body = !stream->ex->head_request && status_has_body (status);
  stream_submit (stream, status, headers, -1, TRUE);
}

void
cp_http2_stream_write (CpHttp2Stream *stream,
                       GBytes        *chunk)
{
  if (!stream_usable (stream) || !stream->ex->response_has_body)
    return;
  g_queue_push_tail (&stream->out, g_bytes_ref (chunk));
  stream->out_queued += g_bytes_get_size (chunk);
  if (stream->deferred)
    {
      stream->deferred = FALSE;
      nghttp2_session_resume_data (stream->session->ng, stream->id);
    }
  session_schedule (stream->session);
}

void
cp_http2_stream_end_response (CpHttp2Stream *stream)
{
  if (!stream_usable (stream))
    return;
  stream->out_ended = TRUE;
  stream_finished (stream);
}

gboolean
cp_http2_stream_is_congested (CpHttp2Stream *stream)
{
  CpHttp2Session *session = stream->session;
  gsize total = 0;

  if (!stream_usable (stream))
    return FALSE;
  if (stream->out_queued > CP_HTTP_HIGH_WATER)
    return TRUE;
  if (session->streams.length < 16 || stream->out_queued == 0)
    return FALSE;
  for (GList *l = session->streams.head; l != NULL; l = l->next)
    total += ((CpHttp2Stream *) l->data)->out_queued;
  return total > CP_HTTP2_SESSION_HIGH_WATER;
}

void
cp_http2_stream_body_flow (CpHttp2Stream *stream)
{
  if (!stream_usable (stream))
    return;
  session_queue_work (stream->session, stream);
  session_schedule (stream->session);
}

void
cp_http2_stream_fail (CpHttp2Stream *stream,
                      const char    *reason)
{
  CpHttpExchange *ex = stream->ex;
  g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, reason);

  if (stream_usable (stream))
    {
      nghttp2_submit_rst_stream (stream->session->ng, NGHTTP2_FLAG_NONE, stream->id,
                                 NGHTTP2_INTERNAL_ERROR);
      session_schedule (stream->session);
    }
  cp_http_exchange_abort (ex, error);
}
