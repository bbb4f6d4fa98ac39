/* cp-http-server.c: our HTTP/1.1 server transport on GIO sockets
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Listening sockets are non-blocking and polled by g_socket_create_source()
 * on the GMainContext that was thread-default when the server was created;
 * every accepted socket becomes a CpHttpConnection on that same context.
 *
 * Worker threads (n-workers > 1, docs/engine.md "Worker threads"): the first
 * listen starts n-workers threads, each running its own GMainContext with a
 * worker CpHttpServer of its own (one actor per core: nothing of a worker is
 * shared with the others). The listeners stay on this server's context, the
 * acceptor, which hands every accepted socket to the next worker in turn
 * (round-robin, for TCP and unix sockets alike); the connection then lives
 * on its worker's context for good. The acceptor, rather than one
 * SO_REUSEPORT listener per worker, because REUSEPORT does not balance unix
 * sockets, hashes TCP connections by their 4-tuple (64 connections are
 * rarely split 32/32) and lets any process of the same user bind the port
 * and take a share; the price is one wake-up of the acceptor per new
 * connection, nothing per request. Stopping and closing run on each
 * worker's context and wait for it; close ends the threads and joins them.
 */
#include "cp-http-connection-private.h"
#include "cp-memory-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <sys/stat.h>

#define ACCEPT_BATCH 64
/* At most this many main loop iterations flush a worker's context after its
 * loop was told to quit (aborted exchanges, released callbacks). */
#define WORKER_FLUSH_ITERATIONS 1000

typedef struct {
  CpHttpServer *server;   /* the worker's own server, bound to context */
  GMainContext *context;
  GMainLoop    *loop;
  GThread      *thread;
} Worker;

typedef struct {
  CpHttpServer *server;
  GSocket      *socket;
  GSource      *source;
  GSource      *retry_source;
  char         *url;
  char         *unix_path;   /* removed when the server stops */
  gboolean      tls;
} Listener;

struct _CpHttpServer
{
  GObject        parent_instance;

  GMainContext  *context;
  guint          max_head_size;
  guint          max_header_count;
  guint          head_timeout_ms;
  guint          idle_timeout_ms;
  guint          body_timeout_ms;
  guint          max_connections;
  GTlsCertificate *tls_certificate;
  GTlsDatabase  *tls_database;
  GTlsAuthenticationMode tls_auth_mode;
  /* cp_http_server_set_tls_pending (): TCP listeners speak TLS before the
   * certificate is known; the sockets they accept meanwhile wait here
   * (GSocket*, oldest first), in the acceptor, unread. */
  gboolean       tls_pending;
  GQueue         tls_waiting;

  CpHttpHandler  handler;
  gpointer       handler_data;
  GDestroyNotify handler_destroy;

  GPtrArray     *listeners;     /* Listener* */
  GPtrArray     *urls;          /* char*, NULL-terminated */
  GHashTable    *connections;   /* CpHttpConnection* (owned) */
  /* Connections waiting on their client, least recently active first; the
   * links belong to the connections. The head is evicted at the cap. */
  GQueue         waiting;
  /* Read from any thread (metrics, the acceptor summing its workers):
   * changed with atomics, in this server's context only. */
  guint          n_active;
  guint          n_open;        /* connections open: the size of connections */
  guint64        n_accepted;    /* connections ever accepted (metrics) */
  gboolean       stopping;
  gboolean       closing;

  guint          n_workers;     /* as set; threads run when workers != NULL */
  GPtrArray     *workers;       /* Worker*, while the threads run */
  guint          next_worker;   /* round-robin */
};

enum {
  PROP_0,
  PROP_MAX_HEAD_SIZE,
  PROP_MAX_HEADER_COUNT,
  PROP_HEAD_TIMEOUT_MS,
  PROP_IDLE_TIMEOUT_MS,
  PROP_BODY_TIMEOUT_MS,
  PROP_MAX_CONNECTIONS,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_DATABASE,
  PROP_TLS_AUTHENTICATION_MODE,
  PROP_N_WORKERS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (CpHttpServer, cp_http_server, G_TYPE_OBJECT)

static void
listener_free (Listener *listener)
{
  if (listener->source != NULL)
    {
      g_source_destroy (listener->source);
      g_source_unref (listener->source);
    }
  if (listener->retry_source != NULL)
    {
      g_source_destroy (listener->retry_source);
      g_source_unref (listener->retry_source);
    }
  if (listener->socket != NULL)
    {
      g_socket_close (listener->socket, NULL);
      g_object_unref (listener->socket);
    }
  if (listener->unix_path != NULL)
    g_unlink (listener->unix_path);
  g_free (listener->unix_path);
  g_free (listener->url);
  g_free (listener);
}

static void stop_workers (CpHttpServer *server);
static void close_tls_waiting (CpHttpServer *server);

static void
cp_http_server_finalize (GObject *object)
{
  CpHttpServer *self = CP_HTTP_SERVER (object);

  cp_http_server_close (self);
  stop_workers (self);
  close_tls_waiting (self);
  g_ptr_array_unref (self->listeners);
  g_ptr_array_unref (self->urls);
  g_hash_table_unref (self->connections);
  if (self->handler_destroy != NULL)
    self->handler_destroy (self->handler_data);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_database);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (cp_http_server_parent_class)->finalize (object);
}

static void
cp_http_server_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  CpHttpServer *self = CP_HTTP_SERVER (object);

  switch (prop_id)
    {
    case PROP_MAX_HEAD_SIZE:
      g_value_set_uint (value, self->max_head_size);
      break;
    case PROP_MAX_HEADER_COUNT:
      g_value_set_uint (value, self->max_header_count);
      break;
    case PROP_HEAD_TIMEOUT_MS:
      g_value_set_uint (value, self->head_timeout_ms);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    case PROP_BODY_TIMEOUT_MS:
      g_value_set_uint (value, self->body_timeout_ms);
      break;
    case PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, self->max_connections);
      break;
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;
    case PROP_TLS_AUTHENTICATION_MODE:
      g_value_set_enum (value, self->tls_auth_mode);
      break;
    case PROP_N_WORKERS:
      g_value_set_uint (value, self->n_workers);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_http_server_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  CpHttpServer *self = CP_HTTP_SERVER (object);

  switch (prop_id)
    {
    case PROP_MAX_HEAD_SIZE:
      self->max_head_size = g_value_get_uint (value);
      break;
    case PROP_MAX_HEADER_COUNT:
      self->max_header_count = g_value_get_uint (value);
      break;
    case PROP_HEAD_TIMEOUT_MS:
      self->head_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      self->idle_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_BODY_TIMEOUT_MS:
      self->body_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_MAX_CONNECTIONS:
      self->max_connections = g_value_get_uint (value);
      break;
    case PROP_TLS_CERTIFICATE:
      g_set_object (&self->tls_certificate, g_value_get_object (value));
      break;
    case PROP_TLS_DATABASE:
      g_set_object (&self->tls_database, g_value_get_object (value));
      break;
    case PROP_TLS_AUTHENTICATION_MODE:
      self->tls_auth_mode = g_value_get_enum (value);
      break;
    case PROP_N_WORKERS:
      if (self->workers != NULL)
        g_warning ("CpHttpServer: n-workers must be set before listening; ignored");
      else
        self->n_workers = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_http_server_class_init (CpHttpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS;

  object_class->finalize = cp_http_server_finalize;
  object_class->get_property = cp_http_server_get_property;
  object_class->set_property = cp_http_server_set_property;

  properties[PROP_MAX_HEAD_SIZE] =
    g_param_spec_uint ("max-head-size", NULL, NULL, 256, G_MAXINT / 2, 64 * 1024, flags);
  properties[PROP_MAX_HEADER_COUNT] =
    g_param_spec_uint ("max-header-count", NULL, NULL, 1, G_MAXINT / 2, 100, flags);
  properties[PROP_HEAD_TIMEOUT_MS] =
    g_param_spec_uint ("head-timeout-ms", NULL, NULL, 1, G_MAXUINT, 10000, flags);
  properties[PROP_IDLE_TIMEOUT_MS] =
    g_param_spec_uint ("idle-timeout-ms", NULL, NULL, 1, G_MAXUINT, 120000, flags);
  properties[PROP_BODY_TIMEOUT_MS] =
    g_param_spec_uint ("body-timeout-ms", NULL, NULL, 1, G_MAXUINT, 60000, flags);
  properties[PROP_MAX_CONNECTIONS] =
    g_param_spec_uint ("max-connections", NULL, NULL, 1, G_MAXUINT, 10000, flags);
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TLS_AUTHENTICATION_MODE] =
    g_param_spec_enum ("tls-authentication-mode", NULL, NULL,
                       G_TYPE_TLS_AUTHENTICATION_MODE, G_TLS_AUTHENTICATION_NONE,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  properties[PROP_N_WORKERS] =
    g_param_spec_uint ("n-workers", NULL, NULL, 0, 1024, 1,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_http_server_init (CpHttpServer *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->n_workers = 1;
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  self->urls = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (self->urls, NULL);
  g_queue_init (&self->waiting);
  self->connections = g_hash_table_new_full (NULL, NULL,
                                             (GDestroyNotify) cp_http_connection_unref, NULL);
}

CpHttpServer *
cp_http_server_new (void)
{
  return g_object_new (CP_TYPE_HTTP_SERVER, NULL);
}

void
cp_http_server_set_handler (CpHttpServer   *server,
                            CpHttpHandler   handler,
                            gpointer        user_data,
                            GDestroyNotify  destroy)
{
  g_return_if_fail (CP_IS_HTTP_SERVER (server));

  if (server->handler_destroy != NULL)
    server->handler_destroy (server->handler_data);
  server->handler = handler;
  server->handler_data = user_data;
  server->handler_destroy = destroy;
}

/* ---- internal accessors ---- */

GMainContext *
cp_http_server_get_context (CpHttpServer *server)
{
  return server->context;
}

guint
cp_http_server_get_max_head_size (CpHttpServer *server)
{
  return server->max_head_size;
}

guint
cp_http_server_get_max_header_count (CpHttpServer *server)
{
  return server->max_header_count;
}

GTlsDatabase *
cp_http_server_get_tls_database (CpHttpServer *server)
{
  return server->tls_database;
}

GTlsAuthenticationMode
cp_http_server_get_tls_authentication_mode (CpHttpServer *server)
{
  return server->tls_auth_mode;
}

guint
cp_http_server_get_head_timeout_ms (CpHttpServer *server)
{
  return server->head_timeout_ms;
}

guint
cp_http_server_get_idle_timeout_ms (CpHttpServer *server)
{
  return server->idle_timeout_ms;
}

guint
cp_http_server_get_body_timeout_ms (CpHttpServer *server)
{
  return server->body_timeout_ms;
}

void
cp_http_server_touch_waiting (CpHttpServer *server,
                              GList        *link,
                              gboolean      linked)
{
  if (linked)
    {
      if (link == server->waiting.tail)
        return;
      g_queue_unlink (&server->waiting, link);
    }
  g_queue_push_tail_link (&server->waiting, link);
}

void
cp_http_server_remove_waiting (CpHttpServer *server,
                               GList        *link)
{
  g_queue_unlink (&server->waiting, link);
}

gboolean
cp_http_server_is_stopping (CpHttpServer *server)
{
  return server->stopping;
}

void
cp_http_server_invoke_handler (CpHttpServer   *server,
                               CpHttpExchange *exchange)
{
  exchange->server = server;
  exchange->counted_active = TRUE;
  g_atomic_int_inc (&server->n_active);

  if (server->handler == NULL)
    {
      cp_http_exchange_respond (exchange, SOUP_STATUS_NOT_FOUND, NULL, NULL);
      return;
    }
  g_object_ref (server);
  server->handler (server, exchange, server->handler_data);
  g_object_unref (server);
}

void
cp_http_server_exchange_done (CpHttpServer   *server,
                              CpHttpExchange *exchange)
{
  if (!exchange->counted_active)
    return;
  exchange->counted_active = FALSE;
  g_assert (g_atomic_int_get (&server->n_active) > 0);
  g_atomic_int_add (&server->n_active, -1);
}

void
cp_http_server_connection_closed (CpHttpServer     *server,
                                  CpHttpConnection *conn)
{
  if (g_hash_table_remove (server->connections, conn))
    g_atomic_int_add (&server->n_open, -1);
  cp_memory_trim_soon ();
}

/* ---- accepting ---- */

void
cp_http_server_accept_socket (CpHttpServer *server,
                              GSocket      *socket,
                              gboolean      tls)
{
  CpHttpConnection *conn;

  if (tls && server->tls_certificate == NULL)
    tls = FALSE;
  conn = cp_http_connection_new (server, socket, tls ? server->tls_certificate : NULL);
  if (conn != NULL)
    {
      g_hash_table_add (server->connections, conn);
      g_atomic_int_inc (&server->n_open);
      __atomic_add_fetch (&server->n_accepted, 1, __ATOMIC_RELAXED);
    }
}

/* Closes the connection that has waited longest on its client, to make room
 * for a new one. FALSE when every connection is busy on the server side. */
static gboolean
evict_stalled (CpHttpServer *server)
{
  g_autoptr(GError) error = NULL;

  if (server->waiting.head == NULL)
    return FALSE;
  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "Closed to make room for a new connection");
  cp_http_connection_close (server->waiting.head->data, error);
  return TRUE;
}

static gboolean accept_cb (GSocket *socket, GIOCondition condition, gpointer user_data);

/* ---- worker threads ---- */

typedef struct {
  CpHttpServer *server;   /* the worker's */
  GSocket      *socket;
  gboolean      tls;
} Handoff;

static void
handoff_free (gpointer data)
{
  Handoff *handoff = data;

  /* Never dispatched (the worker stopped first): the client sees a close. */
  if (handoff->socket != NULL)
    {
      g_socket_close (handoff->socket, NULL);
      g_object_unref (handoff->socket);
    }
  g_object_unref (handoff->server);
  g_free (handoff);
}

/* In the worker's context: the same admission as accept_cb's. */
static gboolean
handoff_cb (gpointer data)
{
  Handoff *handoff = data;
  CpHttpServer *server = handoff->server;
  g_autoptr(GSocket) socket = g_steal_pointer (&handoff->socket);

  if (server->stopping ||
      (g_hash_table_size (server->connections) >= server->max_connections &&
       !evict_stalled (server)))
    {
      g_socket_close (socket, NULL);
      return G_SOURCE_REMOVE;
    }
  cp_http_server_accept_socket (server, socket, handoff->tls);
  return G_SOURCE_REMOVE;
}

/* In the acceptor's context: the next worker in turn gets @socket. */
static void
hand_off (CpHttpServer *server,
          GSocket      *socket,
          gboolean      tls)
{
  Worker *worker = server->workers->pdata[server->next_worker++ % server->workers->len];
  Handoff *handoff = g_new0 (Handoff, 1);
  g_autoptr(GSource) source = g_idle_source_new ();

  handoff->server = g_object_ref (worker->server);
  handoff->socket = socket;
  handoff->tls = tls;
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, handoff_cb, handoff, handoff_free);
  g_source_set_static_name (source, "[connectplugin] http handoff");
  g_source_attach (source, worker->context);
}

static gpointer
worker_main (gpointer data)
{
  Worker *worker = data;
  GMainContext *context = g_main_context_ref (worker->context);
  GMainLoop *loop = g_main_loop_ref (worker->loop);
  CpHttpServer *server = g_object_ref (worker->server);

  g_main_context_push_thread_default (context);
  g_main_loop_run (loop);
  /* What closing queued: aborted calls answering, callbacks released. */
  for (guint i = 0; i < WORKER_FLUSH_ITERATIONS && g_main_context_iteration (context, FALSE); i++)
    ;
  g_main_context_pop_thread_default (context);
  g_object_unref (server);
  g_main_loop_unref (loop);
  g_main_context_unref (context);
  return NULL;
}

static void
worker_free (gpointer data)
{
  Worker *worker = data;

  g_clear_pointer (&worker->thread, g_thread_unref);
  g_object_unref (worker->server);
  g_main_loop_unref (worker->loop);
  g_main_context_unref (worker->context);
  g_free (worker);
}

static void
start_workers (CpHttpServer *server)
{
  server->workers = g_ptr_array_new_with_free_func (worker_free);
  for (guint i = 0; i < server->n_workers; i++)
    {
      Worker *worker = g_new0 (Worker, 1);
      g_autofree char *name = g_strdup_printf ("cp-worker-%u", i);

      worker->context = g_main_context_new ();
      worker->loop = g_main_loop_new (worker->context, FALSE);
      /* Made with its context thread-default: its connections live there. */
      g_main_context_push_thread_default (worker->context);
      worker->server = g_object_new (CP_TYPE_HTTP_SERVER,
                                     "max-head-size", server->max_head_size,
                                     "max-header-count", server->max_header_count,
                                     "head-timeout-ms", server->head_timeout_ms,
                                     "idle-timeout-ms", server->idle_timeout_ms,
                                     "body-timeout-ms", server->body_timeout_ms,
                                     /* The cap is shared out among the workers. */
                                     "max-connections",
                                     MAX (1, (server->max_connections + server->n_workers - 1) /
                                             server->n_workers),
                                     "tls-certificate", server->tls_certificate,
                                     "tls-database", server->tls_database,
                                     "tls-authentication-mode", server->tls_auth_mode,
                                     NULL);
      g_main_context_pop_thread_default (worker->context);
      /* The same handler; it gets the worker's server and exchanges. */
      worker->server->handler = server->handler;
      worker->server->handler_data = server->handler_data;
      g_ptr_array_add (server->workers, worker);
      worker->thread = g_thread_new (name, worker_main, worker);
    }
}

typedef struct {
  void        (*func) (CpHttpServer *server);
  CpHttpServer *server;
  GMutex        lock;
  GCond         cond;
  gboolean      done;
} SyncCall;

static gboolean
sync_call_cb (gpointer data)
{
  SyncCall *call = data;

  call->func (call->server);
  g_mutex_lock (&call->lock);
  call->done = TRUE;
  g_cond_signal (&call->cond);
  g_mutex_unlock (&call->lock);
  return G_SOURCE_REMOVE;
}

/* Runs @func on @worker's server in the worker's context and waits for it
 * (at once when called from that worker). */
static void
worker_call_sync (Worker  *worker,
                  void   (*func) (CpHttpServer *server))
{
  SyncCall call = { func, worker->server, { 0 }, { 0 }, FALSE };
  g_autoptr(GSource) source = NULL;

  /* From the worker itself, or once its thread ended: nothing else runs
   * its context. (The thread runs until stop_workers(), which comes after
   * the last of these calls.) */
  if (worker->thread == NULL || g_main_context_is_owner (worker->context))
    {
      func (worker->server);
      return;
    }
  g_mutex_init (&call.lock);
  g_cond_init (&call.cond);
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, sync_call_cb, &call, NULL);
  g_source_set_static_name (source, "[connectplugin] http worker call");
  g_source_attach (source, worker->context);
  g_mutex_lock (&call.lock);
  while (!call.done)
    g_cond_wait (&call.cond, &call.lock);
  g_mutex_unlock (&call.lock);
  g_mutex_clear (&call.lock);
  g_cond_clear (&call.cond);
}

/* Ends the worker threads and joins them; a worker calling this (its own
 * last call ended the server) is left to end by itself. */
static void
stop_workers (CpHttpServer *server)
{
  g_autoptr(GPtrArray) workers = g_steal_pointer (&server->workers);

  if (workers == NULL)
    return;
  for (guint i = 0; i < workers->len; i++)
    {
      Worker *worker = workers->pdata[i];

      g_main_loop_quit (worker->loop);
    }
  for (guint i = 0; i < workers->len; i++)
    {
      Worker *worker = workers->pdata[i];

      if (g_main_context_is_owner (worker->context))
        continue;   /* our own thread: worker_free() detaches it */
      g_thread_join (g_steal_pointer (&worker->thread));
    }
}

static void
listener_start (Listener *listener)
{
  listener->source = g_socket_create_source (listener->socket, G_IO_IN, NULL);
  g_source_set_callback (listener->source, G_SOURCE_FUNC (accept_cb), listener, NULL);
  g_source_set_static_name (listener->source, "[connectplugin] http accept");
  g_source_attach (listener->source, listener->server->context);
}

static gboolean
accept_retry_cb (gpointer user_data)
{
  Listener *listener = user_data;

  g_clear_pointer (&listener->retry_source, g_source_unref);
  if (!listener->server->stopping)
    listener_start (listener);
  return G_SOURCE_REMOVE;
}

/* An accepted @socket (transfer full) becomes a connection: handed to the
 * next worker, or served here unless the server is full. */
static void
admit (CpHttpServer *server,
       GSocket      *socket,
       gboolean      tls)
{
  if (server->workers != NULL)
    {
      hand_off (server, socket, tls);
      return;
    }
  if (g_hash_table_size (server->connections) >= server->max_connections &&
      !evict_stalled (server))
    g_socket_close (socket, NULL);
  else
    cp_http_server_accept_socket (server, socket, tls);
  g_object_unref (socket);
}

static void
close_tls_waiting (CpHttpServer *server)
{
  GSocket *socket;

  while ((socket = g_queue_pop_head (&server->tls_waiting)) != NULL)
    {
      g_socket_close (socket, NULL);
      g_object_unref (socket);
    }
}

/* In the acceptor's context, while TLS is pending: the workers' servers
 * take the TLS settings. Set here, not in their threads: a worker reads
 * them only when it is handed a TLS socket, and none was handed yet (they
 * waited in the acceptor); the hand-off's g_source_attach () (the worker
 * context's lock) makes these writes visible to it before the first. */
static void
update_workers_tls (CpHttpServer *server)
{
  for (guint i = 0; server->workers != NULL && i < server->workers->len; i++)
    {
      CpHttpServer *worker = ((Worker *) server->workers->pdata[i])->server;

      g_set_object (&worker->tls_certificate, server->tls_certificate);
      g_set_object (&worker->tls_database, server->tls_database);
      worker->tls_auth_mode = server->tls_auth_mode;
    }
}

void
cp_http_server_set_tls_pending (CpHttpServer *server,
                                gboolean      pending)
{
  GSocket *socket;

  g_return_if_fail (CP_IS_HTTP_SERVER (server));

  if (pending)
    {
      g_return_if_fail (server->listeners->len == 0);
      server->tls_pending = TRUE;
      return;
    }
  if (!server->tls_pending)
    return;
  server->tls_pending = FALSE;
  if (server->tls_certificate == NULL || server->stopping)
    {
      close_tls_waiting (server);
      return;
    }
  if (server->workers != NULL)
    update_workers_tls (server);
  while ((socket = g_queue_pop_head (&server->tls_waiting)) != NULL)
    admit (server, socket, TRUE);
}

static gboolean
accept_cb (GSocket      *socket,
           GIOCondition  condition,
           gpointer      user_data)
{
  Listener *listener = user_data;
  CpHttpServer *server = listener->server;

  for (guint i = 0; i < ACCEPT_BATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) client = g_socket_accept (socket, NULL, &error);

      if (client == NULL)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          /* Out of descriptors: free one held by a stalled client. */
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES) &&
              evict_stalled (server))
            continue;
          /* EMFILE and friends: back off instead of spinning. */
          g_debug ("accept failed: %s", error->message);
          g_source_destroy (listener->source);
          g_clear_pointer (&listener->source, g_source_unref);
          listener->retry_source = g_timeout_source_new (100);
          g_source_set_callback (listener->retry_source, accept_retry_cb, listener, NULL);
          g_source_attach (listener->retry_source, server->context);
          return G_SOURCE_REMOVE;
        }
      if (listener->tls && server->tls_pending && server->tls_certificate == NULL)
        {
          /* The certificate is on its way: the client's hello waits in
           * the socket until cp_http_server_set_tls_pending (FALSE). */
          if (g_queue_get_length (&server->tls_waiting) >= server->max_connections)
            g_socket_close (client, NULL);
          else
            g_queue_push_tail (&server->tls_waiting, g_steal_pointer (&client));
          continue;
        }
      admit (server, g_steal_pointer (&client), listener->tls);
    }
  return G_SOURCE_CONTINUE;
}

static char *
make_url (CpHttpServer   *server,
          GSocket        *socket,
          gboolean       *out_tls,
          char          **out_unix_path,
          GError        **error)
{
  g_autoptr(GSocketAddress) address = g_socket_get_local_address (socket, error);

  *out_tls = FALSE;
  *out_unix_path = NULL;
  if (address == NULL)
    return NULL;

  if (G_IS_UNIX_SOCKET_ADDRESS (address))
    {
      const char *path = g_unix_socket_address_get_path (G_UNIX_SOCKET_ADDRESS (address));

      return g_strconcat ("unix:", path, NULL);
    }
  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (address);
      g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (inet));
      gboolean tls = server->tls_certificate != NULL || server->tls_pending;
      const char *scheme = tls ? "https" : "http";

      *out_tls = tls;
      if (g_inet_address_get_family (g_inet_socket_address_get_address (inet)) == G_SOCKET_FAMILY_IPV6)
        return g_strdup_printf ("%s://[%s]:%u", scheme, host, g_inet_socket_address_get_port (inet));
      return g_strdup_printf ("%s://%s:%u", scheme, host, g_inet_socket_address_get_port (inet));
    }
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       "Unsupported socket address family");
  return NULL;
}

static char *
add_listener (CpHttpServer *server,
              GSocket      *socket,
              const char   *unix_path,
              GError      **error)
{
  Listener *listener;
  gboolean tls;
  char *ignored = NULL;
  g_autofree char *url = make_url (server, socket, &tls, &ignored, error);

  if (url == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  if (server->n_workers > 1 && server->workers == NULL)
    start_workers (server);

  listener = g_new0 (Listener, 1);
  listener->server = server;
  listener->socket = g_object_ref (socket);
  listener->url = g_strdup (url);
  listener->unix_path = g_strdup (unix_path);
  listener->tls = tls;
  g_ptr_array_add (server->listeners, listener);

  g_ptr_array_remove_index (server->urls, server->urls->len - 1);
  g_ptr_array_add (server->urls, g_strdup (url));
  g_ptr_array_add (server->urls, NULL);

  if (!server->stopping)
    listener_start (listener);
  return g_steal_pointer (&url);
}

static GSocket *
bind_and_listen (GSocketAddress *address,
                 GError        **error)
{
  g_autoptr(GSocket) socket =
    g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                  G_SOCKET_PROTOCOL_DEFAULT, error);

  if (socket == NULL)
    return NULL;
  g_socket_set_listen_backlog (socket, 1024);
  if (!g_socket_bind (socket, address, !G_IS_UNIX_SOCKET_ADDRESS (address), error) ||
      !g_socket_listen (socket, error))
    return NULL;
  return g_steal_pointer (&socket);
}

char *
cp_http_server_listen (CpHttpServer *server,
                       const char   *address,
                       GError      **error)
{
  g_autoptr(GSocketAddress) sockaddr = NULL;
  g_autoptr(GSocket) socket = NULL;

  g_return_val_if_fail (CP_IS_HTTP_SERVER (server), NULL);
  g_return_val_if_fail (address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_str_has_prefix (address, "unix:"))
    {
      const char *path = address + strlen ("unix:");
      GStatBuf st;

      if (*path == '\0')
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "Invalid listen address “%s”", address);
          return NULL;
        }
      /* A stale socket file of a previous run would make bind() fail. */
      if (g_lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
        g_unlink (path);
      sockaddr = g_unix_socket_address_new (path);
      socket = bind_and_listen (sockaddr, error);
      if (socket == NULL)
        return NULL;
      return add_listener (server, socket, path, error);
    }
  else
    {
      g_autoptr(GSocketConnectable) connectable = NULL;
      g_autoptr(GSocketAddressEnumerator) enumerator = NULL;
      g_autoptr(GError) last_error = NULL;

      connectable = g_network_address_parse (address, 0, error);
      if (connectable == NULL)
        return NULL;
      enumerator = g_socket_connectable_enumerate (connectable);
      for (;;)
        {
          g_autoptr(GError) local_error = NULL;
          g_autoptr(GSocketAddress) candidate =
            g_socket_address_enumerator_next (enumerator, NULL, &local_error);

          if (candidate == NULL)
            {
              if (local_error != NULL)
                g_propagate_error (error, g_steal_pointer (&local_error));
              else if (last_error != NULL)
                g_propagate_error (error, g_steal_pointer (&last_error));
              else
                g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                             "No address to listen on for “%s”", address);
              return NULL;
            }
          socket = bind_and_listen (candidate, &local_error);
          if (socket != NULL)
            return add_listener (server, socket, NULL, error);
          g_clear_error (&last_error);
          last_error = g_steal_pointer (&local_error);
        }
    }
}

const char * const *
cp_http_server_get_urls (CpHttpServer *server)
{
  g_return_val_if_fail (CP_IS_HTTP_SERVER (server), NULL);
  return (const char * const *) server->urls->pdata;
}

void
cp_http_server_dispatch_local (CpHttpServer   *server,
                               CpHttpExchange *exchange)
{
  g_return_if_fail (CP_IS_HTTP_SERVER (server));
  g_return_if_fail (exchange != NULL && exchange->local);
  g_return_if_fail (exchange->server == NULL);

  cp_http_exchange_ref (exchange);
  if (exchange->local_cancelled)
    {
      cp_http_exchange_unref (exchange);
      return;
    }
  cp_http_server_invoke_handler (server, exchange);
  cp_http_exchange_local_dispatched (exchange);
  cp_http_exchange_unref (exchange);
}

void
cp_http_server_stop_accepting (CpHttpServer *server)
{
  g_autoptr(GPtrArray) idle = NULL;
  GHashTableIter iter;
  gpointer key;

  g_return_if_fail (CP_IS_HTTP_SERVER (server));

  server->stopping = TRUE;
  for (guint i = 0; i < server->listeners->len; i++)
    {
      Listener *listener = server->listeners->pdata[i];

      if (listener->source != NULL)
        {
          g_source_destroy (listener->source);
          g_clear_pointer (&listener->source, g_source_unref);
        }
      if (listener->retry_source != NULL)
        {
          g_source_destroy (listener->retry_source);
          g_clear_pointer (&listener->retry_source, g_source_unref);
        }
      g_socket_close (listener->socket, NULL);
    }
  close_tls_waiting (server);

  idle = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, server->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (cp_http_connection_is_idle (key))
      g_ptr_array_add (idle, key);
    else
      cp_http_connection_stop (key);
  for (guint i = 0; i < idle->len; i++)
    cp_http_connection_close (idle->pdata[i], NULL);

  if (server->workers != NULL)
    for (guint i = 0; i < server->workers->len; i++)
      worker_call_sync (server->workers->pdata[i], cp_http_server_stop_accepting);
}

void
cp_http_server_close (CpHttpServer *server)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) conns = NULL;
  GHashTableIter iter;
  gpointer key;

  g_return_if_fail (CP_IS_HTTP_SERVER (server));

  if (server->closing)
    return;
  server->closing = TRUE;
  cp_http_server_stop_accepting (server);
  g_ptr_array_set_size (server->listeners, 0);

  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED, "The server is shutting down");
  conns = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, server->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, key);
  for (guint i = 0; i < conns->len; i++)
    {
      /* Each close removes itself from the table (and may close others). */
      if (g_hash_table_contains (server->connections, conns->pdata[i]))
        cp_http_connection_close (conns->pdata[i], error);
    }
  if (server->workers != NULL)
    {
      for (guint i = 0; i < server->workers->len; i++)
        worker_call_sync (server->workers->pdata[i], cp_http_server_close);
      stop_workers (server);
    }
  server->closing = FALSE;
}

/* The workers' counters are read racily but atomically: a snapshot. The
 * workers array only changes in this server's context. */
guint
cp_http_server_get_n_connections (CpHttpServer *server)
{
  guint n;

  g_return_val_if_fail (CP_IS_HTTP_SERVER (server), 0);
  n = g_atomic_int_get (&server->n_open);
  if (server->workers != NULL)
    for (guint i = 0; i < server->workers->len; i++)
      n += g_atomic_int_get (&((Worker *) server->workers->pdata[i])->server->n_open);
  return n;
}

guint64
cp_http_server_get_n_accepted (CpHttpServer *server)
{
  guint64 n;

  g_return_val_if_fail (CP_IS_HTTP_SERVER (server), 0);
  n = __atomic_load_n (&server->n_accepted, __ATOMIC_RELAXED);
  if (server->workers != NULL)
    for (guint i = 0; i < server->workers->len; i++)
      n += __atomic_load_n (&((Worker *) server->workers->pdata[i])->server->n_accepted,
                            __ATOMIC_RELAXED);
  return n;
}

guint
cp_http_server_get_n_active_exchanges (CpHttpServer *server)
{
  guint n;

  g_return_val_if_fail (CP_IS_HTTP_SERVER (server), 0);
  n = g_atomic_int_get (&server->n_active);
  if (server->workers != NULL)
    for (guint i = 0; i < server->workers->len; i++)
      n += g_atomic_int_get (&((Worker *) server->workers->pdata[i])->server->n_active);
  return n;
}

guint
cp_http_server_get_n_running_workers (CpHttpServer *server)
{
  g_return_val_if_fail (CP_IS_HTTP_SERVER (server), 0);
  return server->workers != NULL ? server->workers->len : 0;
}

void
cp_http_exchange_local_set_peer (CpHttpExchange  *exchange,
                                 GSocketAddress  *remote_address,
                                 GTlsCertificate *peer_certificate)
{
  g_return_if_fail (exchange != NULL && exchange->local);

  g_set_object (&exchange->local_remote_address, remote_address);
  g_set_object (&exchange->local_peer_certificate, peer_certificate);
}

GMainContext *
cp_http_exchange_get_context (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  return exchange->server != NULL ? exchange->server->context : NULL;
}
