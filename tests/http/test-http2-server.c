/* test-http2-server.c: the HTTP/2 server transport, driven by a real nghttp2 client
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The server runs in a thread of its own; each test talks to it over a
 * blocking socket with an nghttp2 client session (or raw frames where
 * nghttp2 will not produce the abuse: CONTINUATION and PING floods). Every
 * hardening test ends by checking that a fresh client is still served.
 */
#include "cp-http-connection-private.h"

#include <nghttp2/nghttp2.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
  CpHttpServer *server;
  char         *url;
  guint16       port;
  gboolean      tls;
  guint         body_timeout_ms;
  guint         idle_timeout_ms;

  GMutex        lock;
  GCond         cond;
  gboolean      ready;
  /* recorded by handlers, under lock */
  guint         n_requests;
  guint         n_aborted;
  GError       *abort_error;
  gsize         paused_received;
  gboolean      resume_now;
  CpHttpExchange *paused;
} Fixture;

/* ---- the server side ---- */

typedef struct {
  Fixture        *f;
  CpHttpExchange *ex;
  GByteArray     *body;
  guint           remaining;   /* /stream: chunks to write */
  gsize           chunk_size;
} Call;

static void
call_free (gpointer data)
{
  Call *call = data;

  g_byte_array_unref (call->body);
  cp_http_exchange_unref (call->ex);
  g_free (call);
}

/* A timeout in the server thread's context (handlers run there). */
static void
timeout_here (guint ms, GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
  g_autoptr(GSource) source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, destroy);
  g_source_attach (source, g_main_context_get_thread_default ());
}

static void
stream_fill (Call *call)
{
  while (call->remaining > 0 && !cp_http_exchange_is_congested (call->ex))
    {
      guint8 *data = g_malloc (call->chunk_size);
      g_autoptr(GBytes) chunk = NULL;

      memset (data, 'a' + call->remaining % 26, call->chunk_size);
      chunk = g_bytes_new_take (data, call->chunk_size);
      cp_http_exchange_write (call->ex, chunk);   /* (transfer none) */
      call->remaining--;
    }
  if (call->remaining == 0)
    cp_http_exchange_end_response (call->ex);
}

static void
on_writable (CpHttpExchange *ex, gpointer user_data)
{
  stream_fill (user_data);
}

static gboolean
resume_check_cb (gpointer data)
{
  Call *call = data;
  Fixture *f = call->f;
  gboolean resume;

  g_mutex_lock (&f->lock);
  resume = f->resume_now;
  g_mutex_unlock (&f->lock);
  if (!resume)
    return G_SOURCE_CONTINUE;
  cp_http_exchange_resume_body (call->ex);
  return G_SOURCE_REMOVE;
}

static void
on_body_chunk (CpHttpExchange *ex, GBytes *chunk, gpointer user_data)
{
  Call *call = user_data;
  Fixture *f = call->f;
  gsize size;
  const guint8 *data = g_bytes_get_data (chunk, &size);

  g_byte_array_append (call->body, data, size);
  if (g_str_equal (cp_http_exchange_get_path (ex), "/pause"))
    {
      g_mutex_lock (&f->lock);
      f->paused_received = call->body->len;
      if (!f->resume_now)
        {
          cp_http_exchange_pause_body (ex);
          timeout_here (10, resume_check_cb, call, NULL);
        }
      g_cond_broadcast (&f->cond);
      g_mutex_unlock (&f->lock);
    }
}

static void
on_body_end (CpHttpExchange *ex, gpointer user_data)
{
  Call *call = user_data;
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = g_bytes_new (call->body->data, call->body->len);
  const char *path = cp_http_exchange_get_path (ex);

  if (g_str_equal (path, "/slow"))
    return;
  soup_message_headers_append (headers, "X-Version",
                               cp_http_exchange_get_http_version (ex) == SOUP_HTTP_2_0 ? "2" : "1.1");
  soup_message_headers_append (headers, "Content-Type", "application/octet-stream");
  if (g_str_equal (path, "/trailers"))
    {
      g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

      soup_message_headers_append (trailers, "X-Status", "done");
      cp_http_exchange_begin_response (ex, 200, headers);
      cp_http_exchange_write (ex, body);
      cp_http_exchange_set_response_trailers (ex, trailers);
      cp_http_exchange_end_response (ex);
      return;
    }
  if (g_str_equal (path, "/stream"))
    {
      const char *query = cp_http_exchange_get_query (ex);

      call->remaining = query != NULL ? atoi (query) : 16;
      call->chunk_size = 64 * 1024;
      cp_http_exchange_begin_response (ex, 200, headers);
      stream_fill (call);
      return;
    }
  cp_http_exchange_respond (ex, 200, headers, body);
}

static void
on_aborted (CpHttpExchange *ex, const GError *error, gpointer user_data)
{
  Call *call = user_data;
  Fixture *f = call->f;

  g_mutex_lock (&f->lock);
  f->n_aborted++;
  g_clear_error (&f->abort_error);
  f->abort_error = g_error_copy (error);
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
}

static const CpHttpExchangeCallbacks callbacks = { on_body_chunk, on_body_end, on_aborted, on_writable };

static gboolean
hold_done_cb (gpointer data)
{
  Call *call = data;

  if (!cp_http_exchange_is_finished (call->ex))
    {
      g_autoptr(GBytes) body = g_bytes_new_static ("held", 4);

      cp_http_exchange_respond (call->ex, 200, NULL, body);
    }
  return G_SOURCE_REMOVE;
}

static void
test_handler (CpHttpServer *server, CpHttpExchange *ex, gpointer user_data)
{
  Fixture *f = user_data;
  Call *call = g_new0 (Call, 1);

  call->f = f;
  call->ex = cp_http_exchange_ref (ex);
  call->body = g_byte_array_new ();
  g_mutex_lock (&f->lock);
  f->n_requests++;
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
  if (g_str_equal (cp_http_exchange_get_path (ex), "/hold"))
    {
      timeout_here (300, hold_done_cb, call, call_free);
      return;
    }
  cp_http_exchange_set_callbacks (ex, &callbacks, call, call_free);
}

static gpointer
server_thread (gpointer data)
{
  Fixture *f = data;
  g_autoptr(GError) error = NULL;

  g_main_context_push_thread_default (f->context);
  f->server = cp_http_server_new ();
  if (f->body_timeout_ms)
    g_object_set (f->server, "body-timeout-ms", f->body_timeout_ms, NULL);
  if (f->idle_timeout_ms)
    g_object_set (f->server, "idle-timeout-ms", f->idle_timeout_ms, NULL);
  if (f->tls)
    {
      g_autoptr(GTlsCertificate) cert = g_tls_certificate_new_from_file (TEST_TLS_PEM, &error);
      g_assert_no_error (error);
      g_object_set (f->server, "tls-certificate", cert, NULL);
    }
  cp_http_server_set_handler (f->server, test_handler, f, NULL);
  f->url = cp_http_server_listen (f->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  g_mutex_lock (&f->lock);
  f->ready = TRUE;
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);

  g_main_loop_run (f->loop);

  cp_http_server_close (f->server);
  g_assert_cmpuint (cp_http_server_get_n_connections (f->server), ==, 0);
  g_assert_cmpuint (cp_http_server_get_n_active_exchanges (f->server), ==, 0);
  g_clear_object (&f->server);
  while (g_main_context_iteration (f->context, FALSE))
    ;
  g_main_context_pop_thread_default (f->context);
  return NULL;
}

static void
fixture_start (Fixture *f)
{
  f->context = g_main_context_new ();
  f->loop = g_main_loop_new (f->context, FALSE);
  f->thread = g_thread_new ("http2-server", server_thread, f);
  g_mutex_lock (&f->lock);
  while (!f->ready)
    g_cond_wait (&f->cond, &f->lock);
  g_mutex_unlock (&f->lock);
  f->port = atoi (strrchr (f->url, ':') + 1);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_mutex_init (&f->lock);
  g_cond_init (&f->cond);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  if (f->thread != NULL)
    {
      g_main_loop_quit (f->loop);
      g_main_context_wakeup (f->context);
      g_thread_join (f->thread);
      g_main_loop_unref (f->loop);
      g_main_context_unref (f->context);
    }
  g_clear_error (&f->abort_error);
  g_free (f->url);
  g_mutex_clear (&f->lock);
  g_cond_clear (&f->cond);
}

/* Runs @func in the server's thread and waits for it. */
typedef struct {
  Fixture  *f;
  void    (*func) (Fixture *f);
  gboolean  done;
} Call0;

static gboolean
in_server_cb (gpointer data)
{
  Call0 *c = data;

  c->func (c->f);
  g_mutex_lock (&c->f->lock);
  c->done = TRUE;
  g_cond_broadcast (&c->f->cond);
  g_mutex_unlock (&c->f->lock);
  return G_SOURCE_REMOVE;
}

static void
in_server (Fixture *f, void (*func) (Fixture *f))
{
  Call0 c = { f, func, FALSE };

  g_main_context_invoke (f->context, in_server_cb, &c);
  g_mutex_lock (&f->lock);
  while (!c.done)
    g_cond_wait (&f->cond, &f->lock);
  g_mutex_unlock (&f->lock);
}

/* ---- the client: nghttp2 on a blocking socket ---- */

typedef struct {
  int           status;
  GByteArray   *body;
  GString      *headers;     /* "name: value\n" of the response and trailers */
  gboolean      closed;
  uint32_t      error_code;
} ClientStream;

typedef struct {
  GSocketClient   *client;
  GIOStream       *io;
  GSocket         *socket;
  nghttp2_session *ng;
  GHashTable      *streams;  /* id → ClientStream */
  gboolean         eof;
  gboolean         goaway;
  uint32_t         goaway_error;
  int32_t          goaway_last;
  gsize            window_updates;
} Client;

static void
client_stream_free (gpointer data)
{
  ClientStream *s = data;

  g_byte_array_unref (s->body);
  g_string_free (s->headers, TRUE);
  g_free (s);
}

static ClientStream *
client_stream (Client *c, int32_t id)
{
  ClientStream *s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));

  if (s == NULL)
    {
      s = g_new0 (ClientStream, 1);
      s->body = g_byte_array_new ();
      s->headers = g_string_new (NULL);
      g_hash_table_insert (c->streams, GINT_TO_POINTER (id), s);
    }
  return s;
}

static int
cl_on_header (nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
              size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
              void *user_data)
{
  ClientStream *s = client_stream (user_data, frame->hd.stream_id);

  if (namelen == 7 && memcmp (name, ":status", 7) == 0)
    s->status = atoi ((const char *) value);
  g_string_append_len (s->headers, (const char *) name, namelen);
  g_string_append (s->headers, ": ");
  g_string_append_len (s->headers, (const char *) value, valuelen);
  g_string_append_c (s->headers, '\n');
  return 0;
}

static int
cl_on_data (nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
            size_t len, void *user_data)
{
  g_byte_array_append (client_stream (user_data, id)->body, data, len);
  return 0;
}

static int
cl_on_close (nghttp2_session *ng, int32_t id, uint32_t error_code, void *user_data)
{
  ClientStream *s = client_stream (user_data, id);

  s->closed = TRUE;
  s->error_code = error_code;
  return 0;
}

static int
cl_on_frame_recv (nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
  Client *c = user_data;

  if (frame->hd.type == NGHTTP2_GOAWAY)
    {
      c->goaway = TRUE;
      c->goaway_error = frame->goaway.error_code;
      c->goaway_last = frame->goaway.last_stream_id;
    }
  if (frame->hd.type == NGHTTP2_WINDOW_UPDATE)
    c->window_updates++;
  return 0;
}

static gboolean
accept_any (GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors, gpointer data)
{
  return TRUE;
}

static Client *
client_new_full (Fixture *f, gboolean use_nghttp2, int rcvbuf)
{
  Client *c = g_new0 (Client, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, f->port);
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, &error);

  g_assert_no_error (error);
  if (rcvbuf > 0)
    g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, rcvbuf, NULL);
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  g_socket_set_timeout (socket, 10);
  c->socket = g_object_ref (socket);
  conn = g_socket_connection_factory_create_connection (socket);
  c->streams = g_hash_table_new_full (NULL, NULL, NULL, client_stream_free);
  if (f->tls)
    {
      static const char * const alpn[] = { "h2", NULL };
      g_autoptr(GSocketConnectable) identity = g_network_address_new ("localhost", f->port);

      c->io = G_IO_STREAM (g_tls_client_connection_new (G_IO_STREAM (conn), identity, &error));
      g_assert_no_error (error);
      g_signal_connect (c->io, "accept-certificate", G_CALLBACK (accept_any), NULL);
      g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (c->io), alpn);
      g_tls_connection_handshake (G_TLS_CONNECTION (c->io), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (g_tls_connection_get_negotiated_protocol (G_TLS_CONNECTION (c->io)), ==, "h2");
    }
  else
    c->io = G_IO_STREAM (g_steal_pointer (&conn));

  if (use_nghttp2)
    {
      nghttp2_session_callbacks *cbs;

      nghttp2_session_callbacks_new (&cbs);
      nghttp2_session_callbacks_set_on_header_callback (cbs, cl_on_header);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback (cbs, cl_on_data);
      nghttp2_session_callbacks_set_on_stream_close_callback (cbs, cl_on_close);
      nghttp2_session_callbacks_set_on_frame_recv_callback (cbs, cl_on_frame_recv);
      nghttp2_session_client_new (&c->ng, cbs, c);
      nghttp2_session_callbacks_del (cbs);
      nghttp2_submit_settings (c->ng, NGHTTP2_FLAG_NONE, NULL, 0);
    }
  return c;
}

static Client *
client_new (Fixture *f)
{
  return client_new_full (f, TRUE, 0);
}

static void
client_free (Client *c)
{
  if (c->ng != NULL)
    nghttp2_session_del (c->ng);
  g_io_stream_close (c->io, NULL, NULL);
  g_object_unref (c->io);
  g_object_unref (c->socket);
  g_hash_table_unref (c->streams);
  g_free (c);
}

static gboolean
client_write_raw (Client *c, const void *data, gsize len)
{
  return g_output_stream_write_all (g_io_stream_get_output_stream (c->io), data, len,
                                    NULL, NULL, NULL);
}

static void
client_flush (Client *c)
{
  const uint8_t *data;
  ssize_t n;

  while ((n = nghttp2_session_mem_send (c->ng, &data)) > 0)
    if (!client_write_raw (c, data, n))
      {
        c->eof = TRUE;
        return;
      }
}

/* One read (blocking up to the socket's timeout); FALSE at EOF. */
static gboolean
client_read_once (Client *c)
{
  guint8 buf[16 * 1024];
  gssize n;

  if (c->eof)
    return FALSE;
  n = g_input_stream_read (g_io_stream_get_input_stream (c->io), buf, sizeof buf, NULL, NULL);
  if (n <= 0)
    {
      c->eof = TRUE;
      return FALSE;
    }
  if (c->ng != NULL && nghttp2_session_mem_recv (c->ng, buf, n) < 0)
    {
      c->eof = TRUE;
      return FALSE;
    }
  return TRUE;
}

typedef gboolean (*ClientCond) (Client *c, gpointer data);

static gboolean
client_run_until (Client *c, ClientCond cond, gpointer data)
{
  gint64 end = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < end)
    {
      client_flush (c);
      if (cond (c, data))
        return TRUE;
      if (!client_read_once (c))
        return cond (c, data);
    }
  return FALSE;
}

static gboolean
stream_closed_cond (Client *c, gpointer data)
{
  ClientStream *s = g_hash_table_lookup (c->streams, data);

  return s != NULL && s->closed;
}

static gboolean
eof_cond (Client *c, gpointer data)
{
  return c->eof;
}

static int32_t
client_request (Client *c, const char *method, const char *path, nghttp2_data_provider *body,
                const nghttp2_nv *extra, gsize n_extra)
{
  nghttp2_nv nva[64];
  gsize n = 0;
  int32_t id;

#define NV(N, V) { (uint8_t *) (N), (uint8_t *) (V), strlen (N), strlen (V), NGHTTP2_NV_FLAG_NONE }
  nghttp2_nv base[] = { NV (":method", method), NV (":path", path), NV (":scheme", "http"),
                        NV (":authority", "localhost") };
#undef NV
  for (gsize i = 0; i < G_N_ELEMENTS (base); i++)
    nva[n++] = base[i];
  for (gsize i = 0; i < n_extra && n < G_N_ELEMENTS (nva); i++)
    nva[n++] = extra[i];
  id = nghttp2_submit_request (c->ng, NULL, nva, n, body, NULL);
  g_assert_cmpint (id, >, 0);
  return id;
}

static ClientStream *
client_get (Client *c, const char *path)
{
  int32_t id = client_request (c, "GET", path, NULL, NULL, 0);

  g_assert_true (client_run_until (c, stream_closed_cond, GINT_TO_POINTER (id)));
  return g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));
}

/* A request body from memory. */
typedef struct {
  const guint8 *data;
  gsize         len, pos;
} Upload;

static ssize_t
upload_read (nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
             uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  Upload *u = source->ptr;
  gsize n = MIN (length, u->len - u->pos);

  memcpy (buf, u->data + u->pos, n);
  u->pos += n;
  if (u->pos == u->len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return n;
}

static void
expect_still_serving (Fixture *f)
{
  Client *c = client_new (f);
  ClientStream *s = client_get (c, "/after");

  g_assert_cmpint (s->status, ==, 200);
  g_assert_nonnull (strstr (s->headers->str, "x-version: 2\n"));
  client_free (c);
}

/* ---- raw frames ---- */

static void
frame_header (guint8 *p, gsize length, guint8 type, guint8 flags, guint32 stream_id)
{
  p[0] = length >> 16;
  p[1] = length >> 8;
  p[2] = length;
  p[3] = type;
  p[4] = flags;
  p[5] = stream_id >> 24;
  p[6] = stream_id >> 16;
  p[7] = stream_id >> 8;
  p[8] = stream_id;
}

static Client *
raw_client_new (Fixture *f, int rcvbuf)
{
  Client *c = client_new_full (f, FALSE, rcvbuf);
  guint8 settings[9];

  g_assert_true (client_write_raw (c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24));
  frame_header (settings, 0, NGHTTP2_SETTINGS, 0, 0);
  g_assert_true (client_write_raw (c, settings, sizeof settings));
  return c;
}

/* Reads raw frames until EOF; TRUE when a GOAWAY with @error came first. */
static gboolean
raw_read_until_goaway (Client *c, guint32 error_code)
{
  GByteArray *buf = g_byte_array_new ();
  gboolean found = FALSE;
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (!found && g_get_monotonic_time () < end)
    {
      guint8 chunk[16 * 1024];
      gssize n = g_input_stream_read (g_io_stream_get_input_stream (c->io), chunk, sizeof chunk,
                                      NULL, NULL);
      gsize pos = 0;

      if (n <= 0)
        break;
      g_byte_array_append (buf, chunk, n);
      while (buf->len - pos >= 9)
        {
          gsize len = (buf->data[pos] << 16) | (buf->data[pos + 1] << 8) | buf->data[pos + 2];

          if (buf->len - pos < 9 + len)
            break;
          if (buf->data[pos + 3] == NGHTTP2_GOAWAY && len >= 8)
            {
              const guint8 *e = buf->data + pos + 13;

              found = (guint32) ((e[0] << 24) | (e[1] << 16) | (e[2] << 8) | e[3]) == error_code;
              break;
            }
          pos += 9 + len;
        }
      g_byte_array_remove_range (buf, 0, pos);
    }
  g_byte_array_unref (buf);
  return found;
}

/* ---- tests ---- */

static void
test_h2c_and_http1 (Fixture *f, gconstpointer data)
{
  Client *c;
  ClientStream *s;
  g_autoptr(GSocketClient) sc = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  char reply[512] = { 0 };
  gsize got = 0;
  const char *req = "GET /h1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

  fixture_start (f);
  c = client_new (f);
  s = client_get (c, "/hello?x=1");
  g_assert_cmpint (s->status, ==, 200);
  g_assert_nonnull (strstr (s->headers->str, "x-version: 2\n"));
  g_assert_nonnull (strstr (s->headers->str, "content-length: 0\n"));
  client_free (c);

  /* the same port still speaks HTTP/1.1 */
  conn = g_socket_client_connect_to_host (sc, "127.0.0.1", f->port, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), req, strlen (req),
                             NULL, NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (conn)), reply,
                           sizeof reply - 1, &got, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (reply, "HTTP/1.1 200"));
  g_assert_nonnull (strstr (reply, "X-Version: 1.1"));
}

static void
test_post_echo (Fixture *f, gconstpointer data)
{
  Client *c;
  g_autofree guint8 *payload = g_malloc (1024 * 1024);
  Upload u = { payload, 1024 * 1024, 0 };
  nghttp2_data_provider provider = { .source.ptr = &u, .read_callback = upload_read };
  ClientStream *s;
  int32_t id;

  for (gsize i = 0; i < u.len; i++)
    payload[i] = i * 7;
  fixture_start (f);
  c = client_new (f);
  id = client_request (c, "POST", "/echo", &provider, NULL, 0);
  g_assert_true (client_run_until (c, stream_closed_cond, GINT_TO_POINTER (id)));
  s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));
  g_assert_cmpint (s->status, ==, 200);
  g_assert_cmpuint (s->body->len, ==, u.len);
  g_assert_cmpmem (s->body->data, s->body->len, payload, u.len);
  client_free (c);
}

static void
test_tls_alpn (Fixture *f, gconstpointer data)
{
  Client *c;
  ClientStream *s;

  f->tls = TRUE;
  fixture_start (f);
  c = client_new (f);
  s = client_get (c, "/tls");
  g_assert_cmpint (s->status, ==, 200);
  g_assert_nonnull (strstr (s->headers->str, "x-version: 2\n"));
  client_free (c);
}

typedef struct {
  int32_t *ids;
  guint    n;
} Many;

static gboolean
all_closed_cond (Client *c, gpointer data)
{
  Many *m = data;

  for (guint i = 0; i < m->n; i++)
    if (!stream_closed_cond (c, GINT_TO_POINTER (m->ids[i])))
      return FALSE;
  return TRUE;
}

static void
test_many_streams (Fixture *f, gconstpointer data)
{
  int32_t ids[300];
  Many m = { ids, G_N_ELEMENTS (ids) };
  Client *c;

  fixture_start (f);
  c = client_new (f);
  /* more than the 100 concurrent streams allowed: nghttp2 queues the rest */
  for (guint i = 0; i < m.n; i++)
    ids[i] = client_request (c, "GET", "/many", NULL, NULL, 0);
  g_assert_true (client_run_until (c, all_closed_cond, &m));
  for (guint i = 0; i < m.n; i++)
    {
      ClientStream *s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (ids[i]));

      g_assert_cmpint (s->status, ==, 200);
      g_assert_cmpuint (s->error_code, ==, 0);
    }
  g_assert_cmpuint (nghttp2_session_get_remote_settings (c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
                    ==, 100);
  client_free (c);
}

static gboolean
paused_cond (Client *c, gpointer data)
{
  Fixture *f = data;
  gboolean paused;

  g_mutex_lock (&f->lock);
  paused = f->paused_received > 0;
  g_mutex_unlock (&f->lock);
  /* keep going until the client cannot send more: window exhausted */
  return paused && nghttp2_session_get_stream_remote_window_size (c->ng, 1) == 0;
}

static void
test_backpressure (Fixture *f, gconstpointer data)
{
  gsize total = 4 * 1024 * 1024;
  g_autofree guint8 *payload = g_malloc0 (total);
  Upload u = { payload, total, 0 };
  nghttp2_data_provider provider = { .source.ptr = &u, .read_callback = upload_read };
  Client *c;
  ClientStream *s;
  int32_t id;

  fixture_start (f);
  c = client_new (f);
  id = client_request (c, "POST", "/pause", &provider, NULL, 0);
  g_assert_cmpint (id, ==, 1);
  /* The handler paused at its first chunk: the client's stream window runs
   * out while most of the upload is still unsent. */
  g_assert_true (client_run_until (c, paused_cond, f));
  g_assert_cmpuint (u.pos, <, total / 2);
  g_mutex_lock (&f->lock);
  f->resume_now = TRUE;
  g_mutex_unlock (&f->lock);
  g_assert_true (client_run_until (c, stream_closed_cond, GINT_TO_POINTER (id)));
  s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));
  g_assert_cmpint (s->status, ==, 200);
  g_assert_cmpuint (s->body->len, ==, total);
  client_free (c);
}

static void
test_slow_reader (Fixture *f, gconstpointer data)
{
  Client *c = NULL;
  ClientStream *s;
  int32_t id;

  fixture_start (f);
  c = client_new_full (f, TRUE, 8192);
  id = client_request (c, "GET", "/stream?64", NULL, NULL, 0);   /* 4 MiB */
  client_flush (c);
  /* read slowly: a read every 10 ms while the server has 4 MiB to send */
  for (guint i = 0; i < 40; i++)
    {
      g_usleep (10 * 1000);
      client_flush (c);
      if (g_socket_condition_timed_wait (c->socket, G_IO_IN, 50 * 1000, NULL, NULL))
        client_read_once (c);
    }
  g_assert_true (client_run_until (c, stream_closed_cond, GINT_TO_POINTER (id)));
  s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));
  g_assert_cmpint (s->status, ==, 200);
  g_assert_cmpuint (s->error_code, ==, 0);
  g_assert_cmpuint (s->body->len, ==, 64 * 64 * 1024);
  client_free (c);
}

static void
test_trailers (Fixture *f, gconstpointer data)
{
  Client *c;
  ClientStream *s;

  fixture_start (f);
  c = client_new (f);
  s = client_get (c, "/trailers");
  g_assert_cmpint (s->status, ==, 200);
  g_assert_nonnull (strstr (s->headers->str, "x-status: done\n"));
  client_free (c);
}

static void
stop_accepting (Fixture *f)
{
  cp_http_server_stop_accepting (f->server);
}

static void
test_goaway_shutdown (Fixture *f, gconstpointer data)
{
  Client *c;
  ClientStream *s;
  int32_t id;

  fixture_start (f);
  c = client_new (f);
  id = client_request (c, "GET", "/hold", NULL, NULL, 0);
  client_flush (c);
  g_mutex_lock (&f->lock);
  while (f->n_requests == 0)
    g_cond_wait (&f->cond, &f->lock);
  g_mutex_unlock (&f->lock);
  in_server (f, stop_accepting);
  g_assert_true (client_run_until (c, stream_closed_cond, GINT_TO_POINTER (id)));
  s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));
  /* the in-flight stream finished despite the GOAWAY */
  g_assert_true (c->goaway);
  g_assert_cmpuint (c->goaway_error, ==, NGHTTP2_NO_ERROR);
  g_assert_cmpint (c->goaway_last, >=, id);
  g_assert_cmpint (s->status, ==, 200);
  g_assert_cmpmem (s->body->data, s->body->len, "held", 4);
  /* and then the server closes the connection */
  g_assert_true (client_run_until (c, eof_cond, NULL));
  client_free (c);
}

static void
test_rapid_reset (Fixture *f, gconstpointer data)
{
  Client *c;

  fixture_start (f);
  c = client_new (f);
  /* each request goes out (HEADERS), then is cancelled at once */
  for (guint i = 0; i < 1000 && !c->eof && !c->goaway; i++)
    {
      int32_t id = client_request (c, "GET", "/reset", NULL, NULL, 0);

      client_flush (c);
      nghttp2_submit_rst_stream (c->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      client_flush (c);
    }
  g_assert_true (client_run_until (c, eof_cond, NULL));
  /* nghttp2's reset rate limit answers with GOAWAY (INTERNAL_ERROR) */
  g_assert_true (c->goaway);
  g_assert_cmpuint (c->goaway_error, !=, NGHTTP2_NO_ERROR);
  client_free (c);
  expect_still_serving (f);
}

static void
test_continuation_flood (Fixture *f, gconstpointer data)
{
  Client *c;
  guint8 frame[9 + 16];
  gboolean write_ok = TRUE;

  fixture_start (f);
  c = raw_client_new (f, 0);
  /* HEADERS without END_HEADERS, then endless CONTINUATION frames */
  frame_header (frame, 1, NGHTTP2_HEADERS, 0, 1);
  frame[9] = 0x82;   /* :method GET */
  client_write_raw (c, frame, 10);
  for (guint i = 0; i < 10000 && write_ok; i++)
    {
      frame_header (frame, 1, NGHTTP2_CONTINUATION, 0, 1);
      frame[9] = 0x84;   /* :path / */
      write_ok = client_write_raw (c, frame, 10);
    }
  g_assert_true (raw_read_until_goaway (c, NGHTTP2_ENHANCE_YOUR_CALM));
  client_free (c);
  expect_still_serving (f);
}

static void
test_hpack_bomb (Fixture *f, gconstpointer data)
{
  Client *c;
  g_autofree char *big = g_strnfill (4000, 'x');
  nghttp2_nv extra[60];
  ClientStream *s;
  int32_t id;

  /* One 4 KB field, indexed once and referenced 60 times: a few hundred
   * bytes on the wire, 240 KB decoded (above the 64 KiB head limit). */
  for (guint i = 0; i < G_N_ELEMENTS (extra); i++)
    extra[i] = (nghttp2_nv) { (uint8_t *) "x-bomb", (uint8_t *) big, 6, 4000, NGHTTP2_NV_FLAG_NONE };
  fixture_start (f);
  c = client_new (f);
  id = client_request (c, "GET", "/bomb", NULL, extra, G_N_ELEMENTS (extra));
  g_assert_true (client_run_until (c, stream_closed_cond, GINT_TO_POINTER (id)));
  s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));
  g_assert_cmpint (s->status, ==, 0);          /* never answered */
  g_assert_cmpuint (s->error_code, !=, 0);     /* reset */
  g_mutex_lock (&f->lock);
  g_assert_cmpuint (f->n_requests, ==, 0);     /* the handler never saw it */
  g_mutex_unlock (&f->lock);
  /* the same connection still works */
  s = client_get (c, "/after-bomb");
  g_assert_cmpint (s->status, ==, 200);
  client_free (c);
}

/* Control frames the server must acknowledge, sent by a client that does
 * not read: the server ends the connection rather than queue without
 * bound. */
static void
flood (Fixture *f, guint8 type)
{
  Client *c;
  guint8 frames[64 * 17];
  gsize stride = type == NGHTTP2_PING ? 17 : 15;
  gboolean write_ok = TRUE;
  gint64 end;

  fixture_start (f);
  c = raw_client_new (f, 4096);
  g_socket_set_timeout (c->socket, 5);
  for (guint i = 0; i < 64; i++)
    {
      guint8 *p = frames + i * stride;

      if (type == NGHTTP2_PING)
        {
          frame_header (p, 8, NGHTTP2_PING, 0, 0);
          memset (p + 9, i, 8);
        }
      else
        {
          frame_header (p, 6, NGHTTP2_SETTINGS, 0, 0);   /* ENABLE_PUSH = 0 */
          memcpy (p + 9, "\x00\x02\x00\x00\x00\x00", 6);
        }
    }
  /* ~10 MB of frames to acknowledge, more than the kernel's buffers hold */
  for (guint sent = 0; sent < 700000 && write_ok; sent += 64)
    write_ok = client_write_raw (c, frames, 64 * stride);
  /* The server ends the connection (it reads our backlog first): writes
   * fail once its reset arrives. */
  end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (write_ok && g_get_monotonic_time () < end)
    {
      g_usleep (20 * 1000);
      write_ok = client_write_raw (c, frames, stride);
    }
  g_assert_false (write_ok);
  client_free (c);
  expect_still_serving (f);
}

static void
test_ping_flood (Fixture *f, gconstpointer data)
{
  flood (f, NGHTTP2_PING);
}

static void
test_settings_flood (Fixture *f, gconstpointer data)
{
  flood (f, NGHTTP2_SETTINGS);
}

static void
test_settings_too_many (Fixture *f, gconstpointer data)
{
  Client *c;
  guint8 frame[9 + 40 * 6];

  fixture_start (f);
  c = raw_client_new (f, 0);
  frame_header (frame, 40 * 6, NGHTTP2_SETTINGS, 0, 0);
  for (guint i = 0; i < 40; i++)
    memcpy (frame + 9 + i * 6, "\x00\x02\x00\x00\x00\x00", 6);
  client_write_raw (c, frame, sizeof frame);
  g_assert_true (raw_read_until_goaway (c, NGHTTP2_ENHANCE_YOUR_CALM));
  client_free (c);
  expect_still_serving (f);
}

static void
test_window_overflow (Fixture *f, gconstpointer data)
{
  Client *c;
  guint8 frame[13 * 2];

  fixture_start (f);
  c = raw_client_new (f, 0);
  /* two connection WINDOW_UPDATEs of 2^31-1: past the maximum window */
  for (guint i = 0; i < 2; i++)
    {
      frame_header (frame + i * 13, 4, NGHTTP2_WINDOW_UPDATE, 0, 0);
      memcpy (frame + i * 13 + 9, "\x7f\xff\xff\xff", 4);
    }
  client_write_raw (c, frame, sizeof frame);
  g_assert_true (raw_read_until_goaway (c, NGHTTP2_FLOW_CONTROL_ERROR));
  client_free (c);
  expect_still_serving (f);
}

/* RFC 9113 §5.1.1: opening stream 5 closes idle stream 3; HEADERS on it
 * then is a connection error of type PROTOCOL_ERROR (h2spec 5.1.1/2). */
static void
test_skipped_stream_id (Fixture *f, gconstpointer data)
{
  Client *c;
  guint8 frame[2 * (9 + 3)];
  static const guint8 get_root[3] = { 0x82, 0x86, 0x84 };   /* GET http / */

  fixture_start (f);
  c = raw_client_new (f, 0);
  frame_header (frame, 3, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 5);
  memcpy (frame + 9, get_root, 3);
  frame_header (frame + 12, 3, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3);
  memcpy (frame + 21, get_root, 3);
  client_write_raw (c, frame, sizeof frame);
  g_assert_true (raw_read_until_goaway (c, NGHTTP2_PROTOCOL_ERROR));
  client_free (c);
  expect_still_serving (f);
}

static void
test_idle_connection (Fixture *f, gconstpointer data)
{
  Client *c;

  f->idle_timeout_ms = 200;
  fixture_start (f);
  c = client_new (f);
  g_assert_cmpint (client_get (c, "/one")->status, ==, 200);
  /* nothing more: the server says GOAWAY and closes */
  g_assert_true (client_run_until (c, eof_cond, NULL));
  g_assert_true (c->goaway);
  g_assert_cmpuint (c->goaway_error, ==, NGHTTP2_NO_ERROR);
  client_free (c);
  expect_still_serving (f);
}

static ssize_t
stall_read (nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
            uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
  Upload *u = source->ptr;

  if (u->pos > 0)
    return NGHTTP2_ERR_DEFERRED;   /* one byte, then nothing, ever */
  buf[0] = 'x';
  u->pos = 1;
  return 1;
}

static void
test_slow_stream (Fixture *f, gconstpointer data)
{
  Client *c;
  Upload u = { NULL, 0, 0 };
  nghttp2_data_provider provider = { .source.ptr = &u, .read_callback = stall_read };
  ClientStream *s;
  int32_t id;

  f->body_timeout_ms = 200;
  fixture_start (f);
  c = client_new (f);
  id = client_request (c, "POST", "/slow", &provider, NULL, 0);
  g_assert_true (client_run_until (c, stream_closed_cond, GINT_TO_POINTER (id)));
  s = g_hash_table_lookup (c->streams, GINT_TO_POINTER (id));
  g_assert_cmpuint (s->error_code, ==, NGHTTP2_CANCEL);
  g_mutex_lock (&f->lock);
  g_assert_cmpuint (f->n_aborted, ==, 1);
  g_assert_error (f->abort_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_mutex_unlock (&f->lock);
  /* the connection itself lives on */
  g_assert_cmpint (client_get (c, "/after-slow")->status, ==, 200);
  client_free (c);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/http2/server/h2c-and-http1-same-port", test_h2c_and_http1);
  ADD ("/http2/server/post-echo", test_post_echo);
  ADD ("/http2/server/many-streams", test_many_streams);
  ADD ("/http2/server/request-backpressure", test_backpressure);
  ADD ("/http2/server/slow-reader", test_slow_reader);
  ADD ("/http2/server/trailers", test_trailers);
  ADD ("/http2/server/goaway-shutdown", test_goaway_shutdown);
  ADD ("/http2/hardening/rapid-reset", test_rapid_reset);
  ADD ("/http2/hardening/continuation-flood", test_continuation_flood);
  ADD ("/http2/hardening/hpack-bomb", test_hpack_bomb);
  ADD ("/http2/hardening/ping-flood", test_ping_flood);
  ADD ("/http2/hardening/settings-flood", test_settings_flood);
  ADD ("/http2/hardening/settings-too-many", test_settings_too_many);
  ADD ("/http2/hardening/window-update-overflow", test_window_overflow);
  ADD ("/http2/hardening/skipped-stream-id", test_skipped_stream_id);
  ADD ("/http2/hardening/idle-connection", test_idle_connection);
  ADD ("/http2/hardening/slow-stream", test_slow_stream);
  ADD ("/http2/tls/alpn-h2", test_tls_alpn);

  return g_test_run ();
}
