/* cp-rpc-server.c: the Connect server engine
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Owns a CpHttpServer and routes its exchanges: docs/engine.md "Server checks"
 * 1–4 (path, verb, content type) are decided here with bare HTTP statuses;
 * everything after that belongs to the CpInvocation of the call. Plain
 * paths (cp_rpc_server_add_plain_handler(), CpServer's /healthz and
 * /readyz, and /metrics with CpRpcServer:metrics-enabled) are answered
 * here with the handler's status and text. A call's metrics series is
 * found here, once per method (cached on its route), and handed to the
 * invocation, which counts into it (cp-metrics-private.h).
 *
 * Worker threads (CpRpcServer:n-workers > 1): the transport calls
 * on_http_request() in each worker's context at once; "home" routes are
 * relayed to the server's own context (cp-rpc-relay.c). The tables of
 * routes are then read without locks, so they are filled before
 * listening (later registrations are refused); the interceptor chain is
 * swapped atomically and old chains are kept until dispose; the calls in
 * flight and the shutdown tasks share a mutex, and so do the metrics
 * methods' lookup and the rendering.
 */
#include "cp-rpc-server-private.h"

#include <string.h>

#include "cp-invocation-private.h"

typedef struct {
  CpMethodInfo *info;
  CpMethodHandler handler;
  gpointer user_data;
  GDestroyNotify destroy;
  CpMetricsMethod *metrics;      /* the method's series, from its first counted call */
  gboolean home;                 /* served in the server's own context (relayed from workers) */
} Route;

#define CP_RPC_SERVER_DEFAULT_COMPRESS_MIN_BYTES 1024
/* As gRPC's default; connect-go has none, but a finite default keeps an
 * unauthenticated peer from making the server buffer gigabytes. */
#define CP_RPC_SERVER_DEFAULT_MAX_RECEIVE_SIZE (4 * 1024 * 1024)
#define CP_RPC_SERVER_DEFAULT_MAX_SEND_QUEUE_SIZE (4 * 1024 * 1024)

struct _CpRpcServer
{
  GObject parent_instance;

  GMainContext *context;
  CpHttpServer *http_server;
  GHashTable *routes;            /* procedure → Route */
  GObject *span_forward;         /* weak: the CpServer owning the engine */
  guint span_forward_signal;
  GHashTable *plain_routes;      /* path → PlainRoute */
  GPtrArray *prefix_routes;      /* PrefixRoute*, longest prefix first */
  GPtrArray *interceptors;       /* CpServerInterceptor*, immutable; NULL if none */

  guint max_receive_size;
  guint max_send_queue_size;
  guint compress_min_bytes;
  gboolean require_protocol_header;
  GStrv compressions;            /* as set, for the property */
  gboolean supports_gzip;
  char *accept_encoding;

  guint n_workers;               /* as set (0: one per CPU) */
  GMutex lock;                   /* n_inflight and shutdown_tasks; metrics lookups */
  guint n_inflight;
  GQueue shutdown_tasks;
  GPtrArray *retired_chains;     /* interceptor chains replaced (workers may hold them) */

  /* Metrics: `metrics` is what calls check (NULL when off); the store
   * outlives turning them off, for the calls that still count into it. */
  CpMetrics *metrics;
  CpMetrics *metrics_store;
};

enum {
  PROP_0,
  PROP_MAX_RECEIVE_SIZE,
  PROP_COMPRESSIONS,
  PROP_COMPRESS_MIN_BYTES,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_DATABASE,
  PROP_TLS_AUTHENTICATION_MODE,
  PROP_REQUIRE_CONNECT_PROTOCOL_HEADER,
  PROP_MAX_SEND_QUEUE_SIZE,
  PROP_METRICS_ENABLED,
  PROP_N_WORKERS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (CpRpcServer, cp_rpc_server, G_TYPE_OBJECT)

typedef struct {
  CpRpcPlainHandler handler;
  gpointer user_data;
  GDestroyNotify destroy;
  const char *content_type;      /* static */
  gboolean home;                 /* served in the server's own context */
} PlainRoute;

typedef struct {
  char *prefix;
  CpRpcExchangeHandler handler;
  gpointer user_data;
  GDestroyNotify destroy;
} PrefixRoute;                   /* always served in the server's own context */

static void
prefix_route_free (gpointer data)
{
  PrefixRoute *route = data;

  if (route->destroy != NULL)
    route->destroy (route->user_data);
  g_free (route->prefix);
  g_free (route);
}

static void
plain_route_free (gpointer data)
{
  PlainRoute *route = data;

  if (route->destroy != NULL)
    route->destroy (route->user_data);
  g_free (route);
}

static void
route_free (gpointer data)
{
  Route *route = data;

  if (route->destroy != NULL)
    route->destroy (route->user_data);
  cp_method_info_unref (route->info);
  g_free (route);
}

/* ------------------------------------------------------------------ */
/* Worker threads (CpRpcServer:n-workers)                              */

/* TRUE once worker threads serve: the tables are frozen. */
static gboolean
workers_running (CpRpcServer *self)
{
  return self->http_server != NULL &&
         cp_http_server_get_n_running_workers (self->http_server) > 0;
}

static void
set_n_workers (CpRpcServer *self,
               guint        n_workers)
{
  guint resolved = n_workers == 0 ? g_get_num_processors () : n_workers;

  if (self->n_workers == n_workers)
    return;
  if (workers_running (self) || cp_rpc_server_get_urls (self)[0] != NULL)
    {
      /* g_log (), not g_critical (): like g_return_if_fail (), it can be
       * expected by g_test_expect_message (). */
      g_log (G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
             "CpRpcServer:n-workers must be set before listening");
      return;
    }
  self->n_workers = n_workers;
  g_object_set (self->http_server, "n-workers", resolved, NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_WORKERS]);
}

/* ------------------------------------------------------------------ */
/* Request routing: server checks 1–4 (docs/engine.md)                 */

static void
respond_plain (CpHttpExchange *exchange,
               guint           status,
               const char     *allow,
               const char     *accept_post)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autofree char *text = g_strdup_printf ("%u %s\n", status, soup_status_get_phrase (status));
  g_autoptr(GBytes) body = g_bytes_new (text, strlen (text));

  soup_message_headers_replace (headers, "Content-Type", "text/plain; charset=utf-8");
  if (allow != NULL)
    soup_message_headers_replace (headers, "Allow", allow);
  if (accept_post != NULL)
    soup_message_headers_replace (headers, "Accept-Post", accept_post);
  /* The request body is not read: do not reuse the connection for it. */
  if (!cp_http_exchange_has_empty_body (exchange))
    cp_http_exchange_set_close (exchange);
  cp_http_exchange_respond (exchange, status, headers, body);
}

/* A plain path (cp_rpc_server_add_plain_handler()): any verb, HEAD
 * without a body, never cached. */
static void
respond_plain_route (CpRpcServer    *self,
                     CpHttpExchange *exchange,
                     PlainRoute     *route)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(GBytes) body = NULL;
  const char *text = NULL;
  guint status;

  status = route->handler (self, &text, route->user_data);
  if (text == NULL)
    text = "";
  body = g_bytes_new (text, strlen (text));

  soup_message_headers_replace (headers, "Content-Type", route->content_type);
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  /* A body sent with the probe is not read: do not reuse the connection. */
  if (!cp_http_exchange_has_empty_body (exchange))
    cp_http_exchange_set_close (exchange);
  if (strcmp (cp_http_exchange_get_method (exchange), "HEAD") == 0)
    g_clear_pointer (&body, g_bytes_unref);
  cp_http_exchange_respond (exchange, status, headers, body);
}

static void
query_value_free (gpointer data)
{
  g_bytes_unref (data);
}

/* Splits an application/x-www-form-urlencoded query ('+' is a space).
 * Values are GBytes whose data is NUL-terminated past their size; the first
 * occurrence of a name wins; pairs with bad escapes are skipped. */
static GHashTable *
parse_query (const char *query)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, query_value_free);
  g_auto(GStrv) pairs = NULL;

  if (query == NULL)
    return table;

  pairs = g_strsplit (query, "&", -1);
  for (guint i = 0; pairs[i] != NULL; i++)
    {
      char *eq = strchr (pairs[i], '=');
      g_autofree char *name = NULL;
      g_autoptr(GBytes) raw = NULL;
      gsize len;
      const char *data;
      char *value;

      if (pairs[i][0] == '\0')
        continue;
      if (eq != NULL)
        *eq = '\0';
      g_strdelimit (pairs[i], "+", ' ');
      name = g_uri_unescape_string (pairs[i], NULL);
      if (name == NULL || g_hash_table_contains (table, name))
        continue;

      if (eq != NULL)
        {
          g_strdelimit (eq + 1, "+", ' ');
          raw = g_uri_unescape_bytes (eq + 1, -1, NULL, NULL);
          if (raw == NULL)
            continue;
        }
      else
        raw = g_bytes_new (NULL, 0);

      data = g_bytes_get_data (raw, &len);
      value = g_malloc (len + 1);
      if (len > 0)
        memcpy (value, data, len);
      value[len] = '\0';
      g_hash_table_insert (table, g_steal_pointer (&name), g_bytes_new_take (value, len));
    }

  return table;
}

/* Codec of a POST Content-Type for @kind; FALSE when unsupported (415). */
static gboolean
codec_from_content_type (SoupMessageHeaders *headers,
                         const char         *value,
                         gboolean            stream,
                         CpCodec            *out_codec)
{
  g_autoptr(GHashTable) params = NULL;
  const char *mime;
  const char *prefix = stream ? "application/connect+" : "application/";
  const char *charset;
  g_autofree char *name = NULL;

  /* Fast path: the exact lowercase types clients send, without
   * parameters; anything else goes through the full media-type parser. */
  if (value != NULL && strncmp (value, prefix, strlen (prefix)) == 0)
    {
      const char *rest = value + strlen (prefix);

      if (strcmp (rest, "proto") == 0)
        {
          *out_codec = CP_CODEC_PROTO;
          return TRUE;
        }
      if (strcmp (rest, "json") == 0)
        {
          *out_codec = CP_CODEC_JSON;
          return TRUE;
        }
    }

  mime = soup_message_headers_get_content_type (headers, &params);
  if (mime == NULL || g_ascii_strncasecmp (mime, prefix, strlen (prefix)) != 0)
    return FALSE;
  name = g_ascii_strdown (mime + strlen (prefix), -1);
  if (!cp_codec_from_string (name, out_codec))
    return FALSE;

  charset = params ? g_hash_table_lookup (params, "charset") : NULL;
  if (charset != NULL &&
      g_ascii_strcasecmp (charset, "utf-8") != 0 && g_ascii_strcasecmp (charset, "utf8") != 0)
    return FALSE;
  return TRUE;
}

/* A GET must come without a body. Over HTTP/2 a client may end the
 * stream with an empty DATA frame after the head (Go's client over TLS
 * does): without a Content-Length that is still no body (any bytes that
 * came anyway are ignored: a GET call reads none). */
static gboolean
get_body_is_empty (CpHttpExchange *exchange)
{
  if (cp_http_exchange_has_empty_body (exchange))
    return TRUE;
  return cp_http_exchange_get_http_version (exchange) == SOUP_HTTP_2_0 &&
         soup_message_headers_get_one (cp_http_exchange_get_request_headers (exchange),
                                       "Content-Length") == NULL;
}

/* gRPC and gRPC-Web Content-Types: application/grpc[-web[-text]][+proto|+json]
 * (no suffix: proto). FALSE when not one of them. */
static gboolean
grpc_from_content_type (SoupMessageHeaders *headers,
                        CpProtocol         *out_protocol,
                        gboolean           *out_text,
                        CpCodec            *out_codec)
{
  g_autoptr(GHashTable) params = NULL;
  const char *mime = soup_message_headers_get_content_type (headers, &params);
  const char *rest;

  if (mime == NULL || g_ascii_strncasecmp (mime, "application/grpc", 16) != 0)
    return FALSE;
  rest = mime + 16;
  *out_protocol = CP_PROTOCOL_GRPC;
  *out_text = FALSE;
  if (g_ascii_strncasecmp (rest, "-web-text", 9) == 0)
    {
      *out_protocol = CP_PROTOCOL_GRPC_WEB;
      *out_text = TRUE;
      rest += 9;
    }
  else if (g_ascii_strncasecmp (rest, "-web", 4) == 0)
    {
      *out_protocol = CP_PROTOCOL_GRPC_WEB;
      rest += 4;
    }
  if (rest[0] == '\0')
    {
      *out_codec = CP_CODEC_PROTO;
      return TRUE;
    }
  if (rest[0] != '+')
    return FALSE;
  {
    g_autofree char *name = g_ascii_strdown (rest + 1, -1);

    return cp_codec_from_string (name, out_codec);
  }
}

static PrefixRoute *
lookup_prefix_route (CpRpcServer *self,
                     const char  *path)
{
  if (self->prefix_routes == NULL)
    return NULL;
  for (guint i = 0; i < self->prefix_routes->len; i++)
    {
      PrefixRoute *route = self->prefix_routes->pdata[i];

      if (g_str_has_prefix (path, route->prefix))
        return route;
    }
  return NULL;
}

static void dispatch_route (CpRpcServer    *self,
                            CpHttpExchange *exchange,
                            Route          *route);
static guint handle_metrics (CpRpcServer  *server,
                             const char  **text,
                             gpointer      user_data);

/* TRUE when @exchange came to a worker: it is relayed home. */
static inline gboolean
relay_if_away (CpRpcServer    *self,
               CpHttpExchange *exchange)
{
  GMainContext *context = cp_http_exchange_get_context (exchange);

  if (context == NULL || context == self->context)
    return FALSE;
  cp_rpc_server_relay_home (self, exchange);
  return TRUE;
}

static void
on_http_request (CpHttpServer   *http_server,
                 CpHttpExchange *exchange,
                 gpointer        user_data)
{
  CpRpcServer *self = user_data;
  const char *path = cp_http_exchange_get_path (exchange);
  Route *route;

  /* 1. Route (nothing is left to route to once disposed). */
  if (self->routes == NULL)
    {
      respond_plain (exchange, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL, NULL);
      return;
    }
  route = g_hash_table_lookup (self->routes, path);
  if (route == NULL)
    {
      PlainRoute *plain_route = g_hash_table_lookup (self->plain_routes, path);
      PrefixRoute *prefix_route;

      if (plain_route != NULL)
        {
          if (plain_route->home && relay_if_away (self, exchange))
            return;
          respond_plain_route (self, exchange, plain_route);
          return;
        }
      prefix_route = lookup_prefix_route (self, path);
      if (prefix_route != NULL)
        {
          if (relay_if_away (self, exchange))
            return;
          prefix_route->handler (self, exchange, prefix_route->user_data);
          return;
        }
      respond_plain (exchange, SOUP_STATUS_NOT_FOUND, NULL, NULL);
      return;
    }
  if (G_UNLIKELY (route->home) && relay_if_away (self, exchange))
    return;
  dispatch_route (self, exchange, route);
}

/* Server checks 2–4 for a routed call, then the call itself. */
static void
dispatch_route (CpRpcServer    *self,
                CpHttpExchange *exchange,
                Route          *route)
{
  CpMethodKind kind;
  const char *method;
  gboolean get_allowed, is_get;
  g_autoptr(GHashTable) query = NULL;
  const char *content_type;
  CpCodec codec;
  CpProtocol protocol = CP_PROTOCOL_CONNECT;
  gboolean text = FALSE;
  g_autoptr(CpInvocation) invocation = NULL;
  CpRequestFields fields;

  kind = cp_method_info_get_kind (route->info);

  /* 2. Bidi over HTTP/1.1: served half-duplex (requests, then answers). */

  /* 3. Verb. */
  method = cp_http_exchange_get_method (exchange);
  get_allowed = kind == CP_METHOD_UNARY &&
                cp_method_info_get_idempotency (route->info) == CP_IDEMPOTENCY_NO_SIDE_EFFECTS;
  is_get = strcmp (method, "GET") == 0;
  if (strcmp (method, "POST") != 0 && !(is_get && get_allowed))
    {
      respond_plain (exchange, SOUP_STATUS_METHOD_NOT_ALLOWED,
                     get_allowed ? "GET, POST" : "POST", NULL);
      return;
    }

  /* 4. Codec (and the header fields the call's start reads, in one pass). */
  cp_request_fields_scan (&fields, cp_http_exchange_get_request_headers (exchange));
  if (is_get)
    {
      GBytes *encoding;
      g_autofree char *name = NULL;

      query = parse_query (cp_http_exchange_get_query (exchange));
      encoding = g_hash_table_lookup (query, "encoding");
      if (encoding != NULL)
        name = g_ascii_strdown (g_bytes_get_data (encoding, NULL), -1);
      if (name == NULL || !cp_codec_from_string (name, &codec) || !get_body_is_empty (exchange))
        {
          respond_plain (exchange, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, NULL, NULL);
          return;
        }
      content_type = codec == CP_CODEC_JSON ? "application/json" : "application/proto";
    }
  else
    {
      SoupMessageHeaders *headers = cp_http_exchange_get_request_headers (exchange);
      gboolean stream = kind != CP_METHOD_UNARY;

      if (!codec_from_content_type (headers, fields.content_type, stream, &codec) &&
          !grpc_from_content_type (headers, &protocol, &text, &codec))
        {
          respond_plain (exchange, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, NULL,
                         stream ? "application/connect+proto, application/connect+json"
                                : "application/proto, application/json");
          return;
        }
      content_type = fields.content_type;
    }

  /* 5.–7. belong to the call. */
  g_atomic_int_inc (&self->n_inflight);
  invocation = cp_invocation_new (self, route->info, route->handler, route->user_data,
                                  exchange, codec, content_type, query);
  if (G_UNLIKELY (protocol != CP_PROTOCOL_CONNECT))
    cp_invocation_set_protocol (invocation, protocol, text);
  if (G_UNLIKELY (g_atomic_pointer_get (&self->metrics) != NULL))
    {
      CpMetricsMethod *metrics = g_atomic_pointer_get (&route->metrics);

      /* Looked up once per method, then cached on its route. */
      if (metrics == NULL)
        {
          g_mutex_lock (&self->lock);
          metrics = cp_metrics_get_method (self->metrics_store,
                                           cp_method_info_get_procedure (route->info),
                                           kind != CP_METHOD_UNARY);
          g_atomic_pointer_set (&route->metrics, metrics);
          g_mutex_unlock (&self->lock);
        }
      cp_invocation_count_in (invocation, metrics);
    }
  cp_invocation_start_with_fields (invocation, &fields);
}

static void
add_plain_route (CpRpcServer       *self,
                 const char        *path,
                 const char        *content_type,
                 CpRpcPlainHandler  handler,
                 gpointer           user_data,
                 GDestroyNotify     destroy)
{
  PlainRoute *route = g_new0 (PlainRoute, 1);

  /* Plain handlers expect the server's own context; /metrics locks. */
  route->home = handler != handle_metrics;
  route->handler = handler;
  route->user_data = user_data;
  route->destroy = destroy;
  route->content_type = content_type;
  g_hash_table_replace (self->plain_routes, g_strdup (path), route);
}

/* ------------------------------------------------------------------ */
/* Metrics (CpRpcServer:metrics-enabled, docs/engine.md "Metrics")     */

#define METRICS_PATH "/metrics"
/* The Prometheus text exposition format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static guint
handle_metrics (CpRpcServer  *server,
                const char  **text,
                gpointer      user_data)
{
  if (g_atomic_pointer_get (&server->metrics) == NULL)
    return SOUP_STATUS_NOT_FOUND;
  /* The text is copied by the caller, before anyone renders again; with
   * workers, the lock keeps renders and new methods apart. (The plain
   * route runs in the rendering thread: the text is copied there.) */
  g_mutex_lock (&server->lock);
  *text = cp_metrics_render (server->metrics_store);
  g_mutex_unlock (&server->lock);
  return SOUP_STATUS_OK;
}

static void
collect_connections (GString  *out,
                     gpointer  user_data)
{
  CpRpcServer *self = user_data;

  cp_metrics_write_family (out, "connectplugin_server_connections_open", "gauge",
                           "Client connections open on the server's listeners.");
  g_string_append_printf (out, "connectplugin_server_connections_open %u\n",
                          cp_http_server_get_n_connections (self->http_server));
  cp_metrics_write_family (out, "connectplugin_server_connections_total", "counter",
                           "Client connections the server's listeners accepted.");
  g_string_append_printf (out, "connectplugin_server_connections_total %" G_GUINT64_FORMAT "\n",
                          cp_http_server_get_n_accepted (self->http_server));
}

static void
set_metrics_enabled (CpRpcServer *self,
                     gboolean     enabled)
{
  if (enabled == (self->metrics != NULL))
    return;

  if (enabled)
    {
      if (self->metrics_store == NULL)
        {
          self->metrics_store = cp_metrics_new ();
          /* Unowned: collectors are dropped in dispose. */
          cp_metrics_add_collector (self->metrics_store, collect_connections, self, NULL);
        }
      g_atomic_pointer_set (&self->metrics, self->metrics_store);
      if (self->plain_routes != NULL && !workers_running (self))
        add_plain_route (self, METRICS_PATH, METRICS_CONTENT_TYPE, handle_metrics, NULL, NULL);
    }
  else
    {
      g_atomic_pointer_set (&self->metrics, NULL);
      /* With workers the path stays, answering 404 (the table is read
       * without locks). */
      if (self->plain_routes != NULL && !workers_running (self))
        g_hash_table_remove (self->plain_routes, METRICS_PATH);
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_METRICS_ENABLED]);
}

/* ------------------------------------------------------------------ */
/* Private API                                                          */

CpMetrics *
cp_rpc_server_get_metrics (CpRpcServer *server)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), NULL);
  return server->metrics_store;
}

CpHttpServer *
cp_rpc_server_get_http_server (CpRpcServer *server)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), NULL);
  return server->http_server;
}

gboolean
cp_rpc_server_supports_compression (CpRpcServer   *server,
                                    CpCompression  compression)
{
  return compression == CP_COMPRESSION_IDENTITY ||
         (compression == CP_COMPRESSION_GZIP && server->supports_gzip);
}

const char *
cp_rpc_server_get_accept_encoding (CpRpcServer *server)
{
  return server->accept_encoding;
}

guint
cp_rpc_server_get_max_receive_size (CpRpcServer *server)
{
  return server->max_receive_size;
}

guint
cp_rpc_server_get_max_send_queue_size (CpRpcServer *server)
{
  return server->max_send_queue_size;
}

guint
cp_rpc_server_get_compress_min_bytes (CpRpcServer *server)
{
  return server->compress_min_bytes;
}

gboolean
cp_rpc_server_get_require_protocol_header (CpRpcServer *server)
{
  return server->require_protocol_header;
}

GMainContext *
cp_rpc_server_get_context (CpRpcServer *server)
{
  return server->context;
}

GMainContext *
cp_rpc_server_get_call_context (CpRpcServer    *server,
                                CpHttpExchange *exchange)
{
  GMainContext *context = cp_http_exchange_get_context (exchange);

  return context != NULL ? context : server->context;
}

static guint span_finished_signal;

/* Library-internal (cp-rpc-server-private.h). */
gboolean
cp_rpc_server_get_tracing (CpRpcServer *server)
{
  return g_signal_has_handler_pending (server, span_finished_signal, 0, TRUE) ||
         (server->span_forward != NULL &&
          g_signal_has_handler_pending (server->span_forward, server->span_forward_signal, 0, TRUE));
}

void
cp_rpc_server_emit_span_finished (CpRpcServer *server,
                                  CpSpan      *span)
{
  g_signal_emit (server, span_finished_signal, 0, span);
  if (server->span_forward != NULL)
    g_signal_emit (server->span_forward, server->span_forward_signal, 0, span);
}

void
cp_rpc_server_set_span_forward (CpRpcServer *server,
                                GObject     *target,
                                guint        signal_id)
{
  if (server->span_forward != NULL)
    g_object_remove_weak_pointer (server->span_forward, (gpointer *) &server->span_forward);
  server->span_forward = target;
  server->span_forward_signal = signal_id;
  if (target != NULL)
    g_object_add_weak_pointer (target, (gpointer *) &server->span_forward);
}

/* Library-internal (cp-rpc-server-private.h). */
GPtrArray *
cp_rpc_server_get_interceptor_chain (CpRpcServer *server)
{
  return g_atomic_pointer_get (&server->interceptors);
}

static void
complete_shutdown_tasks (GQueue *tasks)
{
  GTask *task;

  while ((task = g_queue_pop_head (tasks)) != NULL)
    {
      g_task_set_task_data (task, NULL, NULL);
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

/* From any thread. A shutdown task is queued, and the count checked, under
 * the lock; the last call to finish takes the lock to complete the tasks,
 * so that one of the two always sees the other (GTask returns in the
 * task's own context). */
void
cp_rpc_server_invocation_finished (CpRpcServer *server)
{
  g_return_if_fail (g_atomic_int_get (&server->n_inflight) > 0);

  if (g_atomic_int_dec_and_test (&server->n_inflight))
    {
      GQueue tasks = G_QUEUE_INIT;

      g_mutex_lock (&server->lock);
      if (g_atomic_int_get (&server->n_inflight) == 0)
        {
          tasks = server->shutdown_tasks;
          g_queue_init (&server->shutdown_tasks);
        }
      g_mutex_unlock (&server->lock);
      /* Outside the lock: a callback may run at once. */
      complete_shutdown_tasks (&tasks);
    }
}

/* ------------------------------------------------------------------ */
/* GObject                                                              */

static void
set_compressions (CpRpcServer        *self,
                  const char * const *names)
{
  static const char * const defaults[] = { "gzip", "identity", NULL };

  if (names == NULL)
    names = defaults;

  g_strfreev (self->compressions);
  self->compressions = g_strdupv ((GStrv) names);
  self->supports_gzip = FALSE;

  for (guint i = 0; names[i] != NULL; i++)
    {
      CpCompression compression;

      if (!cp_compression_from_string (names[i], &compression))
        g_warning ("CpRpcServer: unsupported compression \"%s\" ignored", names[i]);
      else if (compression == CP_COMPRESSION_GZIP)
        self->supports_gzip = TRUE;
    }

  g_free (self->accept_encoding);
  self->accept_encoding = g_strdup (self->supports_gzip ? "gzip" : "identity");
}

static void
cp_rpc_server_dispose (GObject *object)
{
  CpRpcServer *self = CP_RPC_SERVER (object);

  /* Joins the worker threads first: nothing reads the tables after. */
  if (self->http_server != NULL)
    cp_http_server_close (self->http_server);
  g_clear_pointer (&self->routes, g_hash_table_unref);
  g_clear_pointer (&self->plain_routes, g_hash_table_unref);
  g_clear_pointer (&self->prefix_routes, g_ptr_array_unref);
  g_clear_pointer (&self->interceptors, g_ptr_array_unref);
  g_clear_pointer (&self->retired_chains, g_ptr_array_unref);
  /* Collectors may point at their owners (CpServer): nothing renders
   * after dispose, which took /metrics down with the plain routes. */
  if (self->metrics_store != NULL)
    cp_metrics_clear_collectors (self->metrics_store);

  G_OBJECT_CLASS (cp_rpc_server_parent_class)->dispose (object);
}

static void
cp_rpc_server_finalize (GObject *object)
{
  CpRpcServer *self = CP_RPC_SERVER (object);

  g_clear_object (&self->http_server);
  g_main_context_unref (self->context);
  g_strfreev (self->compressions);
  g_free (self->accept_encoding);
  cp_metrics_free (self->metrics_store);
  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (cp_rpc_server_parent_class)->finalize (object);
}

static void
cp_rpc_server_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  CpRpcServer *self = CP_RPC_SERVER (object);

  switch (prop_id)
    {
    case PROP_MAX_RECEIVE_SIZE:
      g_value_set_uint (value, self->max_receive_size);
      break;
    case PROP_COMPRESSIONS:
      g_value_set_boxed (value, self->compressions);
      break;
    case PROP_COMPRESS_MIN_BYTES:
      g_value_set_uint (value, self->compress_min_bytes);
      break;
    case PROP_TLS_CERTIFICATE:
      g_object_get_property (G_OBJECT (self->http_server), "tls-certificate", value);
      break;
    case PROP_TLS_DATABASE:
      g_object_get_property (G_OBJECT (self->http_server), "tls-database", value);
      break;
    case PROP_TLS_AUTHENTICATION_MODE:
      g_object_get_property (G_OBJECT (self->http_server), "tls-authentication-mode", value);
      break;
    case PROP_REQUIRE_CONNECT_PROTOCOL_HEADER:
      g_value_set_boolean (value, self->require_protocol_header);
      break;
    case PROP_MAX_SEND_QUEUE_SIZE:
      g_value_set_uint (value, self->max_send_queue_size);
      break;
    case PROP_METRICS_ENABLED:
      g_value_set_boolean (value, self->metrics != NULL);
      break;
    case PROP_N_WORKERS:
      g_value_set_uint (value, self->n_workers);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_rpc_server_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  CpRpcServer *self = CP_RPC_SERVER (object);

  switch (prop_id)
    {
    case PROP_MAX_RECEIVE_SIZE:
      self->max_receive_size = g_value_get_uint (value);
      break;
    case PROP_COMPRESSIONS:
      set_compressions (self, g_value_get_boxed (value));
      break;
    case PROP_COMPRESS_MIN_BYTES:
      self->compress_min_bytes = g_value_get_uint (value);
      break;
    case PROP_TLS_CERTIFICATE:
      g_object_set_property (G_OBJECT (self->http_server), "tls-certificate", value);
      break;
    case PROP_TLS_DATABASE:
      g_object_set_property (G_OBJECT (self->http_server), "tls-database", value);
      break;
    case PROP_TLS_AUTHENTICATION_MODE:
      g_object_set_property (G_OBJECT (self->http_server), "tls-authentication-mode", value);
      break;
    case PROP_REQUIRE_CONNECT_PROTOCOL_HEADER:
      self->require_protocol_header = g_value_get_boolean (value);
      break;
    case PROP_MAX_SEND_QUEUE_SIZE:
      self->max_send_queue_size = g_value_get_uint (value);
      break;
    case PROP_METRICS_ENABLED:
      set_metrics_enabled (self, g_value_get_boolean (value));
      break;
    case PROP_N_WORKERS:
      set_n_workers (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_rpc_server_class_init (CpRpcServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = cp_rpc_server_dispose;
  object_class->finalize = cp_rpc_server_finalize;
  object_class->get_property = cp_rpc_server_get_property;
  object_class->set_property = cp_rpc_server_set_property;

  /**
   * CpRpcServer:max-receive-size:
   *
   * The largest request message accepted, in bytes, both as received and
   * after decompression. Default 4 MiB (4194304), as gRPC. Larger messages
   * fail with `resource_exhausted`: a unary body as soon as its declared
   * `Content-Length` or the bytes received pass the limit (the connection
   * is then closed, the rest never read), a stream message as soon as its
   * envelope prefix announces it, a compressed one as soon as inflating
   * passes it. The limit also bounds the memory a binary message may
   * take once decoded (many tiny unknown fields cost far more decoded
   * than on the wire): a message whose estimated decoded size passes 16
   * times the limit is refused the same way.
   *
   * 0 means no configured limit; the engine then still refuses anything
   * over 2 GiB.
   */
  properties[PROP_MAX_RECEIVE_SIZE] =
    g_param_spec_uint ("max-receive-size", NULL, NULL,
                       0, G_MAXUINT, CP_RPC_SERVER_DEFAULT_MAX_RECEIVE_SIZE,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:compressions:
   *
   * The names of the supported compressions (`identity` is always
   * supported). Default: `gzip` and `identity`.
   */
  properties[PROP_COMPRESSIONS] =
    g_param_spec_boxed ("compressions", NULL, NULL,
                        G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:compress-min-bytes:
   *
   * Responses smaller than this many bytes are sent uncompressed even when
   * the client accepts a compression. Default 1024, as connect-es: gzip
   * costs more than it saves on small messages (measured in tests/bench:
   * a 9-byte response gzipped costs 6x the CPU of the whole uncompressed
   * call). 0 compresses everything.
   */
  properties[PROP_COMPRESS_MIN_BYTES] =
    g_param_spec_uint ("compress-min-bytes", NULL, NULL,
                       0, G_MAXUINT, CP_RPC_SERVER_DEFAULT_COMPRESS_MIN_BYTES,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:tls-certificate:
   *
   * When set, TCP listeners speak TLS with this certificate (set it before
   * [method@ConnectPlugin.RpcServer.listen]).
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL,
                         G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:tls-database:
   *
   * The database that verifies client certificates when
   * [property@ConnectPlugin.RpcServer:tls-authentication-mode] is not
   * %G_TLS_AUTHENTICATION_NONE; %NULL uses the system default database.
   * Set it before [method@ConnectPlugin.RpcServer.listen]; connections
   * accepted later use the new value.
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL,
                         G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:tls-authentication-mode:
   *
   * Whether TLS clients must present a certificate (mutual TLS).
   * %G_TLS_AUTHENTICATION_REQUESTED asks for one;
   * %G_TLS_AUTHENTICATION_REQUIRED makes the handshake fail for a client
   * without a certificate valid for
   * [property@ConnectPlugin.RpcServer:tls-database]. The verified
   * certificate is on each call:
   * [method@ConnectPlugin.Invocation.get_peer_certificate].
   */
  properties[PROP_TLS_AUTHENTICATION_MODE] =
    g_param_spec_enum ("tls-authentication-mode", NULL, NULL,
                       G_TYPE_TLS_AUTHENTICATION_MODE, G_TLS_AUTHENTICATION_NONE,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:require-connect-protocol-header:
   *
   * Whether unary requests must carry `Connect-Protocol-Version: 1` (or,
   * with GET, `connect=v1`); missing ones fail with `invalid_argument`.
   * Default %FALSE, so that plain `curl` requests work.
   */
  properties[PROP_REQUIRE_CONNECT_PROTOCOL_HEADER] =
    g_param_spec_boolean ("require-connect-protocol-header", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:max-send-queue-size:
   *
   * How many response bytes one stream may queue for a client that does
   * not read them, in bytes, beyond the connection's own small write
   * buffer (256 KiB). Default 4 MiB. A handler that sends past it with
   * [method@ConnectPlugin.Invocation.send_message] ends the stream with
   * `resource_exhausted` (that send fails with it) and the connection
   * closes. Handlers using [method@ConnectPlugin.Invocation.send_message_async], which
   * waits while the client is slow, never reach it. 0 means no limit.
   */
  properties[PROP_MAX_SEND_QUEUE_SIZE] =
    g_param_spec_uint ("max-send-queue-size", NULL, NULL,
                       0, G_MAXUINT, CP_RPC_SERVER_DEFAULT_MAX_SEND_QUEUE_SIZE,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:metrics-enabled:
   *
   * Whether the server counts its calls and serves them at `/metrics`
   * in the Prometheus text format (version 0.0.4), as plain HTTP next to
   * the methods (any verb, not intercepted). Default %FALSE: then a call
   * costs nothing more and `/metrics` is `404`.
   *
   * What is counted (the names are in docs/engine.md, "Metrics"): calls
   * started and completed per service, method and Connect code, the
   * calls in flight, a histogram of their durations from the arrival of
   * the request head to the end of the response, request and response
   * body bytes, the messages of streams in each direction, and the open
   * and accepted connections. Calls are those that passed routing, verb
   * and content-type checks (a `404`, `405` or `415` is not a call);
   * in-process calls count too. A method gets its series at its first
   * call. Counters start when this is first set and are kept when it is
   * turned off and on again; calls that started while it was on keep
   * counting.
   *
   * [property@ConnectPlugin.Server:metrics-enabled] sets it for a
   * [class@ConnectPlugin.Server].
   */
  properties[PROP_METRICS_ENABLED] =
    g_param_spec_boolean ("metrics-enabled", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpRpcServer:n-workers:
   *
   * How many worker threads serve the connections, each running a
   * [struct@GLib.MainContext] of its own (one per core). Default 1: no
   * threads, everything runs in the server's context. 0 means one per
   * CPU ([func@GLib.get_num_processors]).
   *
   * With more than one, the first [method@ConnectPlugin.RpcServer.listen]
   * starts the threads; the listeners hand each new connection to the
   * next worker in turn (TCP and unix sockets alike), and the connection
   * and every call on it stay on that worker. Handlers and interceptors
   * are then called concurrently, each call in its worker's context,
   * which is the thread-default one there: they must be thread-safe.
   * Methods and plain paths must be added before listening; later ones
   * are refused with a critical warning. In-process calls still run in
   * the server's own context.
   * [method@ConnectPlugin.RpcServer.close] and
   * [method@ConnectPlugin.RpcServer.shutdown_async] stop every worker, and
   * close (or disposing the server) ends and joins the threads.
   *
   * Set it before listening; it cannot change after.
   */
  properties[PROP_N_WORKERS] =
    g_param_spec_uint ("n-workers", NULL, NULL,
                       0, 1024, 1,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpRpcServer::span-finished:
   * @server: the server
   * @span: the finished server span of a call
   *
   * Emitted in the server's context once for every call, when its answer
   * is complete or the client went away, with the call's server span:
   * a child of the caller's `traceparent`, or a new trace. Export it to
   * a tracing system from here (docs/engine.md, "Tracing").
   *
   * Connecting a handler turns tracing on: calls that come without a
   * `traceparent` then start a new trace, and their handlers' calls
   * continue it. With no handler, a call that brings a `traceparent`
   * still has a span context (and passes it on), and nothing is emitted.
   */
  span_finished_signal =
    g_signal_new ("span-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                  CP_TYPE_SPAN | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_rpc_server_init (CpRpcServer *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->n_workers = 1;
  g_mutex_init (&self->lock);
  self->routes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, route_free);
  self->plain_routes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, plain_route_free);
  self->prefix_routes = g_ptr_array_new_with_free_func (prefix_route_free);
  self->http_server = cp_http_server_new ();
  cp_http_server_set_handler (self->http_server, on_http_request, self, NULL);
  g_queue_init (&self->shutdown_tasks);
  set_compressions (self, NULL);
  self->compress_min_bytes = CP_RPC_SERVER_DEFAULT_COMPRESS_MIN_BYTES;
  self->max_receive_size = CP_RPC_SERVER_DEFAULT_MAX_RECEIVE_SIZE;
  self->max_send_queue_size = CP_RPC_SERVER_DEFAULT_MAX_SEND_QUEUE_SIZE;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

/**
 * CpRpcServer:
 *
 * The Connect server engine: a table of methods served over HTTP/1.1 with
 * the Connect protocol (unary calls over POST and GET, server, client and
 * half-duplex bidi streams), on our own HTTP transport.
 *
 * Register methods with [method@ConnectPlugin.RpcServer.add_method], then serve them with
 * [method@ConnectPlugin.RpcServer.listen]. Handlers run in the [struct@GLib.MainContext] that was the
 * thread-default one when the server was created, unless
 * [property@ConnectPlugin.RpcServer:n-workers] is more than 1: then they
 * are called concurrently on worker threads, each call in its worker's
 * context (thread-default there), and must be thread-safe. Interceptors
 * ([method@ConnectPlugin.RpcServer.add_interceptor]) see every call before its handler.
 * With [property@ConnectPlugin.RpcServer:metrics-enabled] it counts its calls
 * and serves them at `/metrics` for Prometheus.
 *
 * Calls keep the server alive while they run; call [method@ConnectPlugin.RpcServer.close]
 * (which ends them all) or [method@ConnectPlugin.RpcServer.shutdown_async] before dropping
 * the last reference of a server that has long-lived streams.
 */

/**
 * cp_rpc_server_new:
 *
 * Creates a server with no methods, bound to the thread-default
 * [struct@GLib.MainContext].
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.RpcServer]
 */
CpRpcServer *
cp_rpc_server_new (void)
{
  return g_object_new (CP_TYPE_RPC_SERVER, NULL);
}

/**
 * cp_rpc_server_add_method:
 * @server: a [class@ConnectPlugin.RpcServer]
 * @info: the method to serve
 * @handler: (scope notified) (closure user_data) (destroy destroy): called
 *   for every call of the method
 * @user_data: data for @handler
 * @destroy: (nullable): frees @user_data when the method is replaced or the
 *   server is disposed
 *
 * Serves @info at its procedure path. A method already registered at the
 * same path is replaced.
 */
void
cp_rpc_server_add_method (CpRpcServer     *server,
                          CpMethodInfo    *info,
                          CpMethodHandler  handler,
                          gpointer         user_data,
                          GDestroyNotify   destroy)
{
  Route *route;

  g_return_if_fail (CP_IS_RPC_SERVER (server));
  g_return_if_fail (info != NULL);
  g_return_if_fail (handler != NULL);
  g_return_if_fail (server->routes != NULL);
  g_return_if_fail (!workers_running (server));

  route = g_new0 (Route, 1);
  route->info = cp_method_info_ref (info);
  route->handler = handler;
  route->user_data = user_data;
  route->destroy = destroy;
  g_hash_table_replace (server->routes, g_strdup (cp_method_info_get_procedure (info)), route);
}

/**
 * cp_rpc_server_add_interceptor:
 * @server: a [class@ConnectPlugin.RpcServer]
 * @interceptor: the interceptor
 *
 * Appends @interceptor to the chain that sees every RPC call before its
 * handler (see [class@ConnectPlugin.ServerInterceptor]): interceptors run in the order they
 * were added, in the server's [struct@GLib.MainContext]. Calls already running keep
 * the chain they started with. Plain HTTP paths (`/healthz`) are not RPC
 * calls and are not intercepted.
 */
void
cp_rpc_server_add_interceptor (CpRpcServer         *server,
                               CpServerInterceptor *interceptor)
{
  GPtrArray *chain;

  g_return_if_fail (CP_IS_RPC_SERVER (server));
  g_return_if_fail (CP_IS_SERVER_INTERCEPTOR (interceptor));
  g_return_if_fail (server->routes != NULL);

  /* Copy on write: running calls hold the previous array. A worker may be
   * about to take a reference to it, so with workers it is kept until
   * dispose. */
  chain = g_ptr_array_new_full ((server->interceptors ? server->interceptors->len : 0) + 1,
                                g_object_unref);
  if (server->interceptors != NULL)
    for (guint i = 0; i < server->interceptors->len; i++)
      g_ptr_array_add (chain, g_object_ref (server->interceptors->pdata[i]));
  g_ptr_array_add (chain, g_object_ref (interceptor));
  if (server->interceptors != NULL && workers_running (server))
    {
      if (server->retired_chains == NULL)
        server->retired_chains = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
      g_ptr_array_add (server->retired_chains, server->interceptors);
    }
  else if (server->interceptors != NULL)
    g_ptr_array_unref (server->interceptors);
  g_atomic_pointer_set (&server->interceptors, chain);
}

/* Library-internal (cp-rpc-server-private.h). */
void
cp_rpc_server_add_home_method (CpRpcServer     *server,
                               CpMethodInfo    *info,
                               CpMethodHandler  handler,
                               gpointer         user_data,
                               GDestroyNotify   destroy)
{
  Route *route;

  g_return_if_fail (CP_IS_RPC_SERVER (server));

  cp_rpc_server_add_method (server, info, handler, user_data, destroy);
  route = server->routes != NULL
    ? g_hash_table_lookup (server->routes, cp_method_info_get_procedure (info)) : NULL;
  if (route != NULL && route->handler == handler && route->user_data == user_data)
    route->home = TRUE;
}

void
cp_rpc_server_add_plain_handler (CpRpcServer       *server,
                                 const char        *path,
                                 CpRpcPlainHandler  handler,
                                 gpointer           user_data,
                                 GDestroyNotify     destroy)
{
  g_return_if_fail (CP_IS_RPC_SERVER (server));
  g_return_if_fail (path != NULL && path[0] == '/');
  g_return_if_fail (handler != NULL);
  g_return_if_fail (server->plain_routes != NULL);
  g_return_if_fail (!workers_running (server));

  add_plain_route (server, path, "text/plain; charset=utf-8", handler, user_data, destroy);
}

static int
compare_prefix_length (gconstpointer a,
                       gconstpointer b)
{
  const PrefixRoute *ra = *(const PrefixRoute * const *) a;
  const PrefixRoute *rb = *(const PrefixRoute * const *) b;
  size_t la = strlen (ra->prefix), lb = strlen (rb->prefix);

  return la < lb ? 1 : la > lb ? -1 : 0;
}

void
cp_rpc_server_add_prefix_handler (CpRpcServer          *server,
                                  const char           *prefix,
                                  CpRpcExchangeHandler  handler,
                                  gpointer              user_data,
                                  GDestroyNotify        destroy)
{
  PrefixRoute *route;

  g_return_if_fail (CP_IS_RPC_SERVER (server));
  g_return_if_fail (prefix != NULL && prefix[0] == '/');
  g_return_if_fail (handler != NULL);
  g_return_if_fail (server->prefix_routes != NULL);
  g_return_if_fail (!workers_running (server));

  for (guint i = 0; i < server->prefix_routes->len; i++)
    if (strcmp (((PrefixRoute *) server->prefix_routes->pdata[i])->prefix, prefix) == 0)
      {
        g_ptr_array_remove_index (server->prefix_routes, i);
        break;
      }
  route = g_new0 (PrefixRoute, 1);
  route->prefix = g_strdup (prefix);
  route->handler = handler;
  route->user_data = user_data;
  route->destroy = destroy;
  g_ptr_array_add (server->prefix_routes, route);
  g_ptr_array_sort (server->prefix_routes, compare_prefix_length);
}

void
cp_rpc_server_remove_prefix_handler (CpRpcServer *server,
                                     const char  *prefix)
{
  g_return_if_fail (CP_IS_RPC_SERVER (server));
  g_return_if_fail (prefix != NULL);

  if (server->prefix_routes == NULL)
    return;
  for (guint i = 0; i < server->prefix_routes->len; i++)
    if (strcmp (((PrefixRoute *) server->prefix_routes->pdata[i])->prefix, prefix) == 0)
      {
        g_ptr_array_remove_index (server->prefix_routes, i);
        return;
      }
}

gboolean
cp_rpc_server_dispatch (CpRpcServer    *server,
                        CpHttpExchange *exchange,
                        const char     *procedure)
{
  Route *route;

  g_return_val_if_fail (CP_IS_RPC_SERVER (server), FALSE);
  g_return_val_if_fail (exchange != NULL, FALSE);
  g_return_val_if_fail (procedure != NULL, FALSE);

  route = server->routes != NULL ? g_hash_table_lookup (server->routes, procedure) : NULL;
  if (route == NULL)
    return FALSE;
  dispatch_route (server, exchange, route);
  return TRUE;
}

void
cp_rpc_server_respond_plain (CpHttpExchange *exchange,
                             guint           status,
                             const char     *text)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autofree char *line = g_strdup_printf ("%s\n", text != NULL ? text : soup_status_get_phrase (status));
  g_autoptr(GBytes) body = g_bytes_new (line, strlen (line));

  soup_message_headers_replace (headers, "Content-Type", "text/plain; charset=utf-8");
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  if (!cp_http_exchange_has_empty_body (exchange))
    cp_http_exchange_set_close (exchange);
  if (strcmp (cp_http_exchange_get_method (exchange), "HEAD") == 0)
    g_clear_pointer (&body, g_bytes_unref);
  cp_http_exchange_respond (exchange, status, headers, body);
}

/**
 * cp_rpc_server_listen:
 * @server: a [class@ConnectPlugin.RpcServer]
 * @address: where to listen: `HOST:PORT` (port 0 picks a free port,
 *   `[::1]:0` for IPv6) or `unix:/path/to/socket`
 * @error: return location for a [struct@GLib.Error]
 *
 * Starts serving on @address. May be called several times.
 *
 * Returns: (transfer full): the URL served, e.g. `http://127.0.0.1:41234`
 *   (`https` with a TLS certificate) or `unix:/path`; %NULL on error
 */
char *
cp_rpc_server_listen (CpRpcServer  *server,
                      const char   *address,
                      GError      **error)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), NULL);
  g_return_val_if_fail (address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* With workers, /metrics is always routed (the tables are frozen from
   * the first listen on); it answers 404 while metrics are off. */
  if (server->n_workers != 1 && !workers_running (server) && server->plain_routes != NULL &&
      !g_hash_table_contains (server->plain_routes, METRICS_PATH))
    add_plain_route (server, METRICS_PATH, METRICS_CONTENT_TYPE, handle_metrics, NULL, NULL);
  return cp_http_server_listen (server->http_server, address, error);
}

/**
 * cp_rpc_server_get_urls:
 * @server: a [class@ConnectPlugin.RpcServer]
 *
 * Gets the URLs of all listeners, in the order they were added.
 *
 * Returns: (transfer none) (array zero-terminated=1): the URLs
 */
const char * const *
cp_rpc_server_get_urls (CpRpcServer *server)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), NULL);
  return cp_http_server_get_urls (server->http_server);
}

/**
 * cp_rpc_server_close:
 * @server: a [class@ConnectPlugin.RpcServer]
 *
 * Stops listening and closes every connection at once. Running calls see
 * their client disappear: their cancellables are cancelled and their
 * answers are dropped.
 */
void
cp_rpc_server_close (CpRpcServer *server)
{
  g_return_if_fail (CP_IS_RPC_SERVER (server));
  cp_http_server_close (server->http_server);
}

static gboolean
shutdown_cancelled_cb (GCancellable *cancellable,
                       gpointer      user_data)
{
  GTask *task = user_data;
  CpRpcServer *self = g_task_get_source_object (task);
  gboolean removed;

  g_mutex_lock (&self->lock);
  removed = g_queue_remove (&self->shutdown_tasks, task);
  g_mutex_unlock (&self->lock);
  if (removed)
    {
      g_task_set_task_data (task, NULL, NULL);
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
      g_object_unref (task);
    }
  return G_SOURCE_REMOVE;
}

static void
destroy_source (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

/**
 * cp_rpc_server_shutdown_async:
 * @server: a [class@ConnectPlugin.RpcServer]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when no call is running any more
 * @user_data: (closure): data for @callback
 *
 * Gracefully stops @server: it stops accepting connections and closes idle
 * ones at once, lets running calls finish, then completes. Open streams
 * count as running calls: end them (or cancel @cancellable and call
 * [method@ConnectPlugin.RpcServer.close]) if they may last forever.
 */
void
cp_rpc_server_shutdown_async (CpRpcServer         *server,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_RPC_SERVER (server));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (server, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_rpc_server_shutdown_async);

  cp_http_server_stop_accepting (server->http_server);

  g_mutex_lock (&server->lock);
  if (g_atomic_int_get (&server->n_inflight) == 0)
    {
      g_mutex_unlock (&server->lock);
      g_task_return_boolean (task, TRUE);
      return;
    }
  g_mutex_unlock (&server->lock);
  if (g_task_return_error_if_cancelled (task))
    return;

  if (cancellable != NULL)
    {
      GSource *source = g_cancellable_source_new (cancellable);

      g_source_set_callback (source, G_SOURCE_FUNC (shutdown_cancelled_cb), task, NULL);
      g_source_attach (source, g_task_get_context (task));
      g_task_set_task_data (task, source, destroy_source);
    }
  g_mutex_lock (&server->lock);
  if (g_atomic_int_get (&server->n_inflight) == 0)
    {
      /* The last call finished meanwhile. */
      g_mutex_unlock (&server->lock);
      g_task_set_task_data (task, NULL, NULL);
      g_task_return_boolean (task, TRUE);
      return;
    }
  g_queue_push_tail (&server->shutdown_tasks, g_steal_pointer (&task));
  g_mutex_unlock (&server->lock);
}

/**
 * cp_rpc_server_shutdown_finish:
 * @server: a [class@ConnectPlugin.RpcServer]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.RpcServer.shutdown_async].
 *
 * Returns: %TRUE when every call finished; %FALSE if the operation was
 *   cancelled
 */
gboolean
cp_rpc_server_shutdown_finish (CpRpcServer   *server,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, server), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
