/* cp-upstream.c: keep-alive HTTP/1.1 connections from the router to providers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A pool of connections per provider origin (scheme, host, port) and the
 * calls that run on them, one call per connection at a time. Everything
 * is non-blocking I/O on pollable streams in the context the pool was
 * made in; a call is:
 *
 *   connecting (a new connection) or attached (an idle one reused)
 *   → the request head, then its body, written as they are queued
 *   → the response parsed by CpUpstreamParser and handed on piece by piece
 *   → done: the connection goes back to the pool when both directions
 *     completed cleanly and the server keeps it alive, else it is closed.
 *
 * A reused connection may have been closed by the provider while idle; a
 * call that fails on one before any response byte is sent once more on a
 * fresh connection, when all its request bytes are still at hand.
 */
#include "cp-upstream-private.h"
#include "cp-automtls-private.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#define READ_CHUNK (16 * 1024)
#define HIGH_WATER (64 * 1024)
#define LOW_WATER (16 * 1024)
#define REPLAY_MAX (64 * 1024)
#define MAX_IDLE_PER_ORIGIN 64

typedef struct _Conn Conn;

struct _CpUpstreamPool
{
  GMainContext *context;
  GHashTable *idle;             /* origin → GQueue of Conn* */
  GHashTable *conns;            /* every Conn* */
  GHashTable *calls;            /* every live CpUpstreamCall* */
  GSocketClient *client;
  GSocketClient *tls_client;
  GHashTable *origins;          /* base URL → Origin*, parsed once */
  GTlsCertificate *certificate; /* presented to https origins not AutoMTLS's */
  GTlsDatabase *database;       /* ...whose certificates must chain to it */
};

/* A base URL, parsed (a call copies what it needs). */
typedef struct {
  char *host;
  char *authority;              /* the Host header: host:port, [v6]:port */
  char *origin;                 /* scheme://host:port, the idle-queue key */
  guint16 port;
  gboolean tls;
} Origin;

#define MAX_ORIGINS 1024

static void
origin_free (gpointer data)
{
  Origin *o = data;

  g_free (o->host);
  g_free (o->authority);
  g_free (o->origin);
  g_free (o);
}

struct _Conn
{
  CpUpstreamPool *pool;
  char *origin;
  GIOStream *stream;
  GPollableInputStream *in;
  GPollableOutputStream *out;
  GSocket *socket;              /* plain TCP: read through a socket source */
  gboolean reading;             /* in on_conn_readable() */
  gboolean reentered;           /* ...and it ran inside itself */
  GSource *in_source;
  GSource *out_source;
  CpUpstreamCall *call;         /* NULL while idle */
  gboolean reused;
  guint8 *rbuf;
  gsize rstart, rend;
};

struct _CpUpstreamCall
{
  int refs;
  CpUpstreamPool *pool;
  Conn *conn;
  char *origin;
  char *host;
  guint16 port;
  gboolean tls;
  CpUpstreamCallbacks cb;
  gpointer user_data;

  GByteArray *out;              /* request bytes not yet written */
  gsize out_off;
  GByteArray *replay;           /* every request byte, while a retry is possible */
  gboolean chunked;
  gboolean body_ended;
  gboolean congested;
  gboolean retried;

  CpUpstreamParser parser;
  gboolean response_bytes;      /* a response byte arrived */
  gboolean started;             /* head delivered */
  gboolean paused;

  GCancellable *connecting;
  GSource *kick;
  GError *error;                /* a failure waiting to be reported */
  gboolean over;                /* done/failed delivered or cancelled */
};

static void conn_close (Conn *conn);
static void conn_watch_in (Conn *conn);
static void call_kick (CpUpstreamCall *call);
static void call_connect (CpUpstreamCall *call);

/* ---- calls: lifetime ----------------------------------------------------- */

static CpUpstreamCall *
call_ref (CpUpstreamCall *call)
{
  call->refs++;
  return call;
}

static void
call_unref (CpUpstreamCall *call)
{
  if (--call->refs > 0)
    return;
  g_assert (call->conn == NULL);
  cp_upstream_parser_clear (&call->parser);
  if (call->kick != NULL)
    {
      g_source_destroy (call->kick);
      g_source_unref (call->kick);
    }
  g_clear_object (&call->connecting);
  g_clear_pointer (&call->out, g_byte_array_unref);
  g_clear_pointer (&call->replay, g_byte_array_unref);
  g_clear_error (&call->error);
  g_free (call->origin);
  g_free (call->host);
  g_free (call);
}

/* The call is over: detach it from its connection (which goes back to the
 * pool when @reuse, else is closed) and drop the pool's reference. */
static void
call_end (CpUpstreamCall *call,
          gboolean        reuse)
{
  Conn *conn = call->conn;

  if (call->over)
    return;
  call->over = TRUE;
  if (call->connecting != NULL)
    g_cancellable_cancel (call->connecting);
  if (conn != NULL)
    {
      call->conn = NULL;
      conn->call = NULL;
      if (conn->out_source != NULL)
        {
          g_source_destroy (conn->out_source);
          g_clear_pointer (&conn->out_source, g_source_unref);
        }
      if (reuse && conn->rstart == conn->rend)
        {
          GQueue *queue = g_hash_table_lookup (call->pool->idle, conn->origin);

          if (queue == NULL)
            {
              queue = g_queue_new ();
              g_hash_table_insert (call->pool->idle, g_strdup (conn->origin), queue);
            }
          if (queue->length < MAX_IDLE_PER_ORIGIN)
            {
              conn->reused = TRUE;
              g_queue_push_head (queue, conn);
              conn_watch_in (conn);   /* an idle connection that turns readable is closed */
            }
          else
            conn_close (conn);
        }
      else
        conn_close (conn);
    }
  g_hash_table_remove (call->pool->calls, call);
  call_unref (call);
}

static void
call_fail (CpUpstreamCall *call,
           GError         *error)   /* transfer full */
{
  g_autoptr(GError) owned = error;
  gboolean started = call->started;

  if (call->over)
    return;
  g_debug ("upstream %s: %s", call->origin, error->message);
  call_ref (call);
  call_end (call, FALSE);
  call->cb.failed (call, owned, started, call->user_data);
  call_unref (call);
}

/* A failure before any response byte on a connection that had served an
 * earlier call: the provider may have closed it while idle. Sends the
 * request again on a fresh connection when every byte is still here. */
static gboolean
call_retry (CpUpstreamCall *call)
{
  Conn *conn = call->conn;

  if (call->retried || call->response_bytes || call->replay == NULL ||
      conn == NULL || !conn->reused)
    return FALSE;
  call->retried = TRUE;
  g_clear_error (&call->error);   /* the old connection's, maybe not yet reported */
  call->conn = NULL;
  conn->call = NULL;
  conn_close (conn);
  g_byte_array_set_size (call->out, 0);
  g_byte_array_append (call->out, call->replay->data, call->replay->len);
  call->out_off = 0;
  call_connect (call);
  return TRUE;
}

static void
call_error (CpUpstreamCall *call,
            GError         *error)   /* transfer full */
{
  if (call_retry (call))
    {
      g_error_free (error);
      return;
    }
  call_fail (call, error);
}

/* ---- connections --------------------------------------------------------- */

static void
conn_close (Conn *conn)
{
  CpUpstreamPool *pool = conn->pool;

  if (conn->call == NULL)
    {
      GQueue *queue = g_hash_table_lookup (pool->idle, conn->origin);

      if (queue != NULL)
        g_queue_remove (queue, conn);
    }
  if (conn->in_source != NULL)
    {
      g_source_destroy (conn->in_source);
      g_clear_pointer (&conn->in_source, g_source_unref);
    }
  if (conn->out_source != NULL)
    {
      g_source_destroy (conn->out_source);
      g_clear_pointer (&conn->out_source, g_source_unref);
    }
  g_hash_table_remove (pool->conns, conn);
  /* Closing a plain socket does not block; a TLS close may try to send
   * close_notify, which it does without waiting on a non-blocking socket. */
  g_io_stream_close (conn->stream, NULL, NULL);
  g_object_unref (conn->stream);
  g_free (conn->rbuf);
  g_free (conn->origin);
  g_free (conn);
}

/* Bytes arrived for the current call: feed the parser and hand on what
 * it finds, until the call pauses, ends or the buffer is used up. */
static void
conn_deliver (Conn    *conn,
              gboolean eof)
{
  CpUpstreamCall *call = call_ref (conn->call);

  while (!call->over && !call->paused)
    {
      g_autoptr(GError) error = NULL;
      const guint8 *body;
      gsize consumed, body_len;
      CpUpstreamEvent event;

      event = cp_upstream_parser_feed (&call->parser, conn->rbuf + conn->rstart,
                                       conn->rend - conn->rstart, eof,
                                       &consumed, &body, &body_len, &error);
      conn->rstart += consumed;
      if (conn->rstart == conn->rend)
        conn->rstart = conn->rend = 0;

      if (event == CP_UPSTREAM_NEED_MORE)
        {
          if (consumed == 0)
            break;
        }
      else if (event == CP_UPSTREAM_HEAD)
        {
          call->started = TRUE;
          call->cb.head (call, call->parser.status, call->parser.headers, call->user_data);
        }
      else if (event == CP_UPSTREAM_DATA)
        {
          g_autoptr(GBytes) chunk = g_bytes_new (body, body_len);

          call->cb.data (call, chunk, call->user_data);
        }
      else if (event == CP_UPSTREAM_DONE)
        {
          /* Reusable only when the request went out whole, the server keeps
           * the connection, and no stray byte follows the response. */
          gboolean reuse = call->parser.keep_alive && call->body_ended &&
                           call->out_off == call->out->len && !eof;

          call_end (call, reuse);
          call->cb.done (call, call->user_data);
          break;
        }
      else
        {
          call_fail (call, g_steal_pointer (&error));
          break;
        }
    }
  call_unref (call);
}

static gboolean conn_readable (Conn *conn);
static void conn_watch_in (Conn *conn);

/* The read source of a plain connection is a socket source that may
 * recurse: GLib 2.74 blocks a non-recursive source around its dispatch by
 * removing and re-adding its fd, each time signalling the context's wakeup
 * fd (and a GPollable source does so for its child source too): four
 * system calls per response read. Nothing here runs a main loop, but a
 * callback (the router's, and through it an application's GTask callback)
 * might: a nested dispatch of the same connection drops its source, which
 * is put back when the outer one returns. */
static gboolean
on_conn_readable (GObject  *stream,
                  gpointer  user_data)
{
  Conn *conn = user_data;
  CpUpstreamPool *pool = conn->pool;
  gboolean result;

  if (conn->reading)
    {
      conn->reentered = TRUE;
      if (conn->in_source != NULL)
        {
          g_source_destroy (conn->in_source);
          g_clear_pointer (&conn->in_source, g_source_unref);
        }
      return G_SOURCE_REMOVE;
    }
  conn->reading = TRUE;
  result = conn_readable (conn);
  /* @conn may be gone; if it is still there and was dispatched inside
   * itself, it watches again. */
  if (!g_hash_table_contains (pool->conns, conn))
    return result;
  conn->reading = FALSE;
  if (conn->reentered)
    {
      conn->reentered = FALSE;
      conn_watch_in (conn);
      result = G_SOURCE_REMOVE;   /* conn_watch_in() made a new source */
    }
  return result;
}

static gboolean
on_socket_readable (GSocket      *socket,
                    GIOCondition  condition,
                    gpointer      user_data)
{
  return on_conn_readable (NULL, user_data);
}

static gboolean
conn_readable (Conn *conn)
{
  CpUpstreamCall *call = conn->call;
  gboolean eof = FALSE;

  if (call == NULL)
    {
      /* Idle: EOF or an unexpected byte. Either way it is unusable. */
      g_clear_pointer (&conn->in_source, g_source_unref);
      conn_close (conn);
      return G_SOURCE_REMOVE;
    }

  for (guint i = 0; i < 4 && !eof; i++)
    {
      g_autoptr(GError) error = NULL;
      gsize space;
      gssize n;

      if (conn->rbuf == NULL)
        conn->rbuf = g_malloc (READ_CHUNK);
      if (conn->rend == READ_CHUNK)
        {
          if (conn->rstart == 0)
            break;     /* full: the parser needs the consumer to move on */
          memmove (conn->rbuf, conn->rbuf + conn->rstart, conn->rend - conn->rstart);
          conn->rend -= conn->rstart;
          conn->rstart = 0;
        }
      space = READ_CHUNK - conn->rend;
      n = g_pollable_input_stream_read_nonblocking (conn->in, conn->rbuf + conn->rend,
                                                    space, NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        break;
      /* A TLS peer that shut its side without close_notify (our own
       * server does so after a response that ends the connection): EOF,
       * and the response's framing says whether it was whole. Only a body
       * read until the close could be cut short unnoticed. */
      if (n < 0 && g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_EOF) &&
          !cp_upstream_parser_reads_until_close (&call->parser))
        n = 0;
      if (n < 0)
        {
          call_error (call, g_steal_pointer (&error));
          return G_SOURCE_CONTINUE;   /* the source is gone with the connection */
        }
      if (n == 0)
        eof = TRUE;
      else
        {
          call->response_bytes = TRUE;
          conn->rend += n;
        }
      if (conn->rend - conn->rstart >= READ_CHUNK / 2)
        break;
      /* A short read drained a plain socket (TLS may hold more inside):
       * poll says when there is more, no read needs to see EAGAIN. */
      if (conn->socket != NULL && n > 0 && (gsize) n < space)
        break;
    }

  if (eof && !call->response_bytes)
    {
      call_error (call, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                             "the provider closed the connection without a response"));
      return G_SOURCE_CONTINUE;
    }
  call_ref (call);
  conn_deliver (conn, eof);
  /* @conn is gone unless the call still holds it or it went back to the
   * pool (never after EOF). A call still there after EOF is paused: the
   * rest is delivered on resume, where EOF is seen again. */
  if (eof && call->conn == conn && conn->in_source != NULL)
    {
      g_source_destroy (conn->in_source);
      g_clear_pointer (&conn->in_source, g_source_unref);
    }
  call_unref (call);
  return G_SOURCE_CONTINUE;
}

static void
conn_watch_in (Conn *conn)
{
  if (conn->in_source != NULL)
    return;
  if (conn->socket != NULL)
    {
      conn->in_source = g_socket_create_source (conn->socket, G_IO_IN, NULL);
      g_source_set_callback (conn->in_source, G_SOURCE_FUNC (on_socket_readable), conn, NULL);
      g_source_set_can_recurse (conn->in_source, TRUE);   /* see on_conn_readable() */
    }
  else
    {
      conn->in_source = g_pollable_input_stream_create_source (conn->in, NULL);
      g_source_set_callback (conn->in_source, G_SOURCE_FUNC (on_conn_readable), conn, NULL);
    }
  g_source_attach (conn->in_source, conn->pool->context);
}

static void call_flush (CpUpstreamCall *call);

static gboolean
on_conn_writable (GObject  *stream,
                  gpointer  user_data)
{
  Conn *conn = user_data;

  g_clear_pointer (&conn->out_source, g_source_unref);
  if (conn->call != NULL)
    call_flush (conn->call);
  return G_SOURCE_REMOVE;
}

/* ---- calls: writing ------------------------------------------------------ */

/* Writes what is queued. Never runs a callback: a write error is kept and
 * reported from the call's kick source. */
static void
call_flush (CpUpstreamCall *call)
{
  Conn *conn = call->conn;

  if (conn == NULL || call->over || call->error != NULL)
    return;
  while (call->out_off < call->out->len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_pollable_output_stream_write_nonblocking (conn->out,
                                                             call->out->data + call->out_off,
                                                             call->out->len - call->out_off,
                                                             NULL, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (conn->out_source == NULL)
            {
              conn->out_source = g_pollable_output_stream_create_source (conn->out, NULL);
              g_source_set_callback (conn->out_source, G_SOURCE_FUNC (on_conn_writable), conn, NULL);
              g_source_attach (conn->out_source, call->pool->context);
            }
          return;
        }
      if (n < 0)
        {
          call->error = g_steal_pointer (&error);
          call_kick (call);
          return;
        }
      call->out_off += n;
    }
  g_byte_array_set_size (call->out, 0);
  call->out_off = 0;
  if (call->congested)
    {
      call->congested = FALSE;
      call_kick (call);       /* reports drained */
    }
}

static gboolean
on_call_kick (gpointer user_data)
{
  CpUpstreamCall *call = user_data;

  g_clear_pointer (&call->kick, g_source_unref);
  if (call->over)
    return G_SOURCE_REMOVE;
  if (call->error != NULL)
    {
      GError *error = g_steal_pointer (&call->error);

      call_error (call, error);
      return G_SOURCE_REMOVE;
    }
  call_flush (call);
  if (!call->over && !call->congested && call->cb.drained != NULL &&
      call->out->len - call->out_off < LOW_WATER)
    {
      call_ref (call);
      call->cb.drained (call, call->user_data);
      call_unref (call);
    }
  return G_SOURCE_REMOVE;
}

static void
call_kick (CpUpstreamCall *call)
{
  if (call->kick != NULL || call->over)
    return;
  call->kick = g_idle_source_new ();
  g_source_set_priority (call->kick, G_PRIORITY_DEFAULT);
  g_source_set_callback (call->kick, on_call_kick, call, NULL);
  g_source_attach (call->kick, call->pool->context);
}

static void
call_queue (CpUpstreamCall *call,
            const void     *data,
            gsize           len)
{
  g_byte_array_append (call->out, data, len);
  if (call->replay != NULL)
    {
      if (call->replay->len + len > REPLAY_MAX)
        g_clear_pointer (&call->replay, g_byte_array_unref);
      else
        g_byte_array_append (call->replay, data, len);
    }
}

/* ---- calls: connecting --------------------------------------------------- */

/* Puts @call on @conn. The head is written now when @flush, else from
 * the kick source: a unary request's body usually arrives within the
 * same main loop iteration, and goes out in the same write. */
static void
call_attach (CpUpstreamCall *call,
             Conn           *conn,
             gboolean        flush)
{
  call->conn = conn;
  conn->call = call;
  conn_watch_in (conn);
  if (flush)
    call_flush (call);
  else
    call_kick (call);
}

static void
on_connected (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CpUpstreamCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection =
    g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  Conn *conn;

  g_clear_object (&call->connecting);
  if (call->over)
    {
      call_unref (call);
      return;
    }
  if (connection == NULL)
    {
      call_fail (call, g_steal_pointer (&error));
      call_unref (call);
      return;
    }
  conn = g_new0 (Conn, 1);
  conn->pool = call->pool;
  conn->origin = g_strdup (call->origin);
  conn->stream = G_IO_STREAM (g_steal_pointer (&connection));
  conn->in = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (conn->stream));
  conn->out = G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (conn->stream));
  g_socket_set_option (g_socket_connection_get_socket (G_SOCKET_CONNECTION (conn->stream)),
                       IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  /* TLS buffers inside its streams: only a plain socket is read directly. */
  if (!call->tls)
    conn->socket = g_socket_connection_get_socket (G_SOCKET_CONNECTION (conn->stream));
  g_hash_table_add (call->pool->conns, conn);
  call_attach (call, conn, TRUE);
  call_unref (call);
}

static void
call_connect (CpUpstreamCall *call)
{
  GSocketClient *client = call->tls ? call->pool->tls_client : call->pool->client;

  call->connecting = g_cancellable_new ();
  g_socket_client_connect_to_host_async (client, call->host, call->port, call->connecting,
                                         on_connected, call_ref (call));
}

/* A plugin launched with AutoMTLS accepts only its host's certificate and
 * has one only that host trusts: both are given to its TLS connections. */
static void
on_tls_client_event (GSocketClient      *client,
                     GSocketClientEvent  event,
                     GSocketConnectable *connectable,
                     GIOStream          *connection,
                     gpointer            user_data)
{
  CpUpstreamPool *pool = user_data;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;

  if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING || !G_IS_NETWORK_ADDRESS (connectable) ||
      !G_IS_TLS_CONNECTION (connection))
    return;
  if (cp_automtls_lookup_host (g_network_address_get_hostname (G_NETWORK_ADDRESS (connectable)),
                               g_network_address_get_port (G_NETWORK_ADDRESS (connectable)),
                               &certificate, &database))
    {
      g_tls_connection_set_certificate (G_TLS_CONNECTION (connection), certificate);
      g_tls_connection_set_database (G_TLS_CONNECTION (connection), database);
    }
  else
    {
      /* The pool's own credentials (cp_upstream_pool_set_tls ()). */
      if (pool->certificate != NULL)
        g_tls_connection_set_certificate (G_TLS_CONNECTION (connection), pool->certificate);
      if (pool->database != NULL)
        g_tls_connection_set_database (G_TLS_CONNECTION (connection), pool->database);
    }
}

/* ---- public -------------------------------------------------------------- */

CpUpstreamPool *
cp_upstream_pool_new (void)
{
  CpUpstreamPool *pool = g_new0 (CpUpstreamPool, 1);

  pool->context = g_main_context_ref_thread_default ();
  pool->idle = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_queue_free);
  pool->conns = g_hash_table_new (NULL, NULL);
  pool->origins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, origin_free);
  pool->calls = g_hash_table_new (NULL, NULL);
  pool->client = g_socket_client_new ();
  /* Providers are reached as they registered, never through a proxy. */
  g_socket_client_set_enable_proxy (pool->client, FALSE);
  pool->tls_client = g_socket_client_new ();
  g_socket_client_set_enable_proxy (pool->tls_client, FALSE);
  g_socket_client_set_tls (pool->tls_client, TRUE);
  g_signal_connect (pool->tls_client, "event", G_CALLBACK (on_tls_client_event), pool);
  return pool;
}

void
cp_upstream_pool_free (CpUpstreamPool *pool)
{
  GHashTableIter iter;
  gpointer key;

  /* Calls end quietly (their owner is going away too), then connections. */
  while (g_hash_table_size (pool->calls) > 0)
    {
      g_hash_table_iter_init (&iter, pool->calls);
      g_hash_table_iter_next (&iter, &key, NULL);
      call_end (key, FALSE);
    }
  while (g_hash_table_size (pool->conns) > 0)
    {
      g_hash_table_iter_init (&iter, pool->conns);
      g_hash_table_iter_next (&iter, &key, NULL);
      conn_close (key);
    }
  g_hash_table_unref (pool->calls);
  g_hash_table_unref (pool->conns);
  g_hash_table_unref (pool->origins);
  g_hash_table_unref (pool->idle);
  g_object_unref (pool->client);
  g_object_unref (pool->tls_client);
  g_clear_object (&pool->certificate);
  g_clear_object (&pool->database);
  g_main_context_unref (pool->context);
  g_free (pool);
}

void
cp_upstream_pool_set_tls (CpUpstreamPool  *pool,
                          GTlsCertificate *certificate,
                          GTlsDatabase    *database)
{
  g_set_object (&pool->certificate, certificate);
  g_set_object (&pool->database, database);
}

/* @base_url parsed, from the pool's cache; NULL when it is not an http or
 * https URL with a host. */
static const Origin *
lookup_origin (CpUpstreamPool *pool,
               const char     *base_url)
{
  Origin *o = g_hash_table_lookup (pool->origins, base_url);
  g_autoptr(GUri) uri = NULL;
  const char *scheme;
  int port;

  if (o != NULL)
    return o;
  uri = g_uri_parse (base_url, G_URI_FLAGS_NONE, NULL);
  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  if (scheme == NULL || g_uri_get_host (uri) == NULL || g_uri_get_host (uri)[0] == '\0' ||
      (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0))
    return NULL;
  o = g_new0 (Origin, 1);
  o->tls = g_ascii_strcasecmp (scheme, "https") == 0;
  port = g_uri_get_port (uri);
  o->port = port > 0 ? port : (o->tls ? 443 : 80);
  o->host = g_strdup (g_uri_get_host (uri));
  o->origin = g_strdup_printf ("%s://%s:%u", o->tls ? "https" : "http", o->host, o->port);
  /* An IPv6 literal keeps its brackets in Host. */
  o->authority = strchr (o->host, ':') != NULL ? g_strdup_printf ("[%s]:%u", o->host, o->port)
                                               : g_strdup_printf ("%s:%u", o->host, o->port);
  if (g_hash_table_size (pool->origins) >= MAX_ORIGINS)
    g_hash_table_remove_all (pool->origins);
  g_hash_table_insert (pool->origins, g_strdup (base_url), o);
  return o;
}

CpUpstreamCall *
cp_upstream_call_start (CpUpstreamPool            *pool,
                        const char                *base_url,
                        const char                *method,
                        const char                *target,
                        SoupMessageHeaders        *headers,
                        CpUpstreamHeaderFilter     keep,
                        gint64                     content_length,
                        const CpUpstreamCallbacks *callbacks,
                        gpointer                   user_data,
                        GError                   **error)
{
  const Origin *origin = lookup_origin (pool, base_url);
  CpUpstreamCall *call;
  SoupMessageHeadersIter iter;
  const char *name, *value;
  GString *head;
  GQueue *idle;

  if (origin == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "not an http or https URL: %s", base_url);
      return NULL;
    }

  call = g_new0 (CpUpstreamCall, 1);
  call->refs = 1;               /* the pool's, until done/failed/cancel */
  call->pool = pool;
  call->tls = origin->tls;
  call->port = origin->port;
  call->host = g_strdup (origin->host);
  call->origin = g_strdup (origin->origin);
  call->cb = *callbacks;
  call->user_data = user_data;
  call->chunked = content_length < 0;
  call->body_ended = content_length == 0;
  cp_upstream_parser_init (&call->parser, g_ascii_strcasecmp (method, "HEAD") == 0);
  call->out = g_byte_array_sized_new (512);
  call->replay = g_byte_array_new ();
  g_hash_table_add (pool->calls, call);

  head = g_string_sized_new (512);
  /* Plain appends, not printf: this runs once per routed call. */
  g_string_append (head, method);
  g_string_append_c (head, ' ');
  g_string_append (head, target);
  g_string_append (head, " HTTP/1.1\r\nHost: ");
  g_string_append (head, origin->authority);
  g_string_append (head, "\r\n");
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      if (keep != NULL && !keep (name))
        continue;
      g_string_append (head, name);
      g_string_append (head, ": ");
      g_string_append (head, value);
      g_string_append (head, "\r\n");
    }
  if (content_length < 0)
    g_string_append (head, "Transfer-Encoding: chunked\r\n");
  else if (content_length > 0 || g_ascii_strcasecmp (method, "POST") == 0 ||
           g_ascii_strcasecmp (method, "PUT") == 0)
    g_string_append_printf (head, "Content-Length: %" G_GINT64_FORMAT "\r\n", content_length);
  g_string_append (head, "\r\n");
  call_queue (call, head->str, head->len);
  g_string_free (head, TRUE);

  idle = g_hash_table_lookup (pool->idle, call->origin);
  if (idle != NULL && !g_queue_is_empty (idle))
    {
      Conn *conn = g_queue_pop_head (idle);

      call_attach (call, conn, call->body_ended);
    }
  else
    call_connect (call);
  return call;
}

gboolean
cp_upstream_call_write (CpUpstreamCall *call,
                        GBytes         *chunk)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (chunk, &len);

  if (call->over || call->body_ended || len == 0)
    return FALSE;
  if (call->chunked)
    {
      char size[24];
      int n = g_snprintf (size, sizeof size, "%" G_GSIZE_MODIFIER "x\r\n", len);

      call_queue (call, size, n);
      call_queue (call, data, len);
      call_queue (call, "\r\n", 2);
    }
  else
    call_queue (call, data, len);
  call_flush (call);
  if (call->out->len - call->out_off > HIGH_WATER)
    call->congested = TRUE;
  return call->congested;
}

void
cp_upstream_call_end (CpUpstreamCall *call)
{
  if (call->over || call->body_ended)
    return;
  call->body_ended = TRUE;
  if (call->chunked)
    call_queue (call, "0\r\n\r\n", 5);
  call_flush (call);
}

void
cp_upstream_call_pause (CpUpstreamCall *call)
{
  if (call->over || call->paused)
    return;
  call->paused = TRUE;
  if (call->conn != NULL && call->conn->in_source != NULL)
    {
      g_source_destroy (call->conn->in_source);
      g_clear_pointer (&call->conn->in_source, g_source_unref);
    }
}

static gboolean
on_resume (gpointer user_data)
{
  CpUpstreamCall *call = user_data;
  Conn *conn = call->conn;

  if (call->over || call->paused || conn == NULL)
    return G_SOURCE_REMOVE;
  /* What is buffered first; then the socket (EOF included). */
  if (conn->rstart < conn->rend)
    conn_deliver (conn, FALSE);
  if (!call->over && !call->paused && call->conn != NULL)
    conn_watch_in (call->conn);
  return G_SOURCE_REMOVE;
}

void
cp_upstream_call_resume (CpUpstreamCall *call)
{
  GSource *source;

  if (call->over || !call->paused)
    return;
  call->paused = FALSE;
  /* Delivering may run callbacks: not from inside this call. */
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, on_resume, call_ref (call), (GDestroyNotify) call_unref);
  g_source_attach (source, call->pool->context);
  g_source_unref (source);
}

void
cp_upstream_call_cancel (CpUpstreamCall *call)
{
  call_end (call, FALSE);
}
