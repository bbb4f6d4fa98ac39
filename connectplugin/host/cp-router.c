/* cp-router.c: /services/{type}/{provider_runtime_id}/{Method}
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Routed plugin-to-plugin calls (connect-plugin-go's router.go): the
 * caller is authenticated by its runtime identity, the provider looked up
 * in the registry, and the call forwarded to `base_url + endpoint path +
 * Method` on a keep-alive connection of the router's CpUpstreamPool, both
 * bodies streamed with back-pressure (the upstream queue's high-water
 * mark pauses the caller's body, the exchange's congestion pauses the
 * upstream response).
 */
#include "cp-router-private.h"
#include "cp-etcd-registry-private.h"

#include <stdlib.h>
#include <string.h>

#include "cp-error.h"
#include "cp-http-exchange-private.h"
#include "cp-upstream-private.h"
#include "cp-rpc-server-private.h"
#include "cp-trace-private.h"

#define READ_SIZE (16 * 1024)

/* Per-call debug lines: formatted only when debug output is on (g_debug
 * formats its message before the writer drops it, which on the routed hot
 * path cost about 2% of the host's time). */
#define ROUTE_DEBUG(...) \
  G_STMT_START { \
    if (!g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN)) \
      g_debug (__VA_ARGS__); \
  } G_STMT_END

struct _CpRouter
{
  CpBroker *broker;
  CpUpstreamPool *upstream;
  CpUpstreamPool *peers;        /* to other hosts' routers (CpEtcdRegistry), over mTLS */
  GHashTable *calls;            /* RouteCall* in flight */
};

typedef struct {
  int refs;
  CpRouter *router;             /* NULL once the router is gone */
  CpHttpExchange *exchange;
  CpPluginInstance *provider;   /* NULL: forwarded to another host */
  CpUpstreamCall *upstream;     /* NULL once it is over */
  GSource *deadline;
  char *target;
  gboolean body_paused;
  gboolean response_paused;
  gboolean started;             /* the response head went to the caller */
  gboolean aborted;             /* the caller went away */
  gboolean timed_out;
  gboolean finished;
  /* Tracing (the host's CpRpcServer::span-finished connected): the
   * router span, between the caller's span and the provider's. */
  CpSpanContext *span;
  gint64 span_start;            /* real µs */
  guint status;                 /* of the provider's response head; 0: none */
} RouteCall;

static void
route_call_unref (RouteCall *call)
{
  if (--call->refs > 0)
    return;
  g_assert (call->finished);
  g_clear_object (&call->provider);
  g_clear_pointer (&call->exchange, cp_http_exchange_unref);
  g_clear_pointer (&call->span, cp_span_context_unref);
  g_free (call->target);
  g_free (call);
}

/* The router span: a child of the caller's traceparent (or a new trace),
 * sent on as the provider's parent. Only when the host traces. */
static void
route_trace_begin (RouteCall   *call,
                   CpRpcServer *server)
{
  SoupMessageHeaders *headers = cp_http_exchange_get_request_headers (call->exchange);
  g_autofree char *traceparent = NULL;

  if (!cp_rpc_server_get_tracing (server))
    return;
  call->span = cp_trace_server_span (headers, TRUE);
  call->span_start = g_get_real_time ();
  traceparent = cp_span_context_to_traceparent (call->span);
  /* The request headers are read once more, when the upstream request
   * copies them. */
  soup_message_headers_replace (headers, "traceparent", traceparent);
}

static void
route_trace_end (RouteCall *call)
{
  g_autoptr(GError) outcome = NULL;
  g_autoptr(CpSpan) span = NULL;
  g_autofree char *peer = NULL;

  if (call->router == NULL || !cp_rpc_server_get_tracing (call->router->broker->rpc_server))
    return;
  /* What the router saw: a Connect stream's status is in its body. */
  if (call->aborted)
    outcome = g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED, "the caller went away");
  else if (call->timed_out)
    outcome = g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED, "the route timed out");
  else if (call->status == 0)
    outcome = g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE, "upstream failed");
  else if (call->status != SOUP_STATUS_OK)
    outcome = g_error_new (CP_ERROR, cp_error_code_from_http_status (call->status),
                           "HTTP %u", call->status);
  peer = cp_trace_peer_string (cp_http_exchange_get_remote_address (call->exchange));
  span = cp_span_new_internal (call->span, call->target, CP_SPAN_KIND_ROUTER, call->span_start,
                               g_get_real_time (), outcome, peer);
  cp_rpc_server_emit_span_finished (call->router->broker->rpc_server, span);
}

/* The call is over on our side: the upstream call ended or cancelled. */
static void
route_call_finish (RouteCall *call)
{
  if (call->finished)
    return;
  call->finished = TRUE;
  if (call->deadline != NULL)
    {
      g_source_destroy (call->deadline);
      g_clear_pointer (&call->deadline, g_source_unref);
    }
  if (call->upstream != NULL)
    cp_upstream_call_cancel (g_steal_pointer (&call->upstream));
  if (call->body_paused && !call->aborted)
    {
      /* Let the transport drain what the caller still sends. */
      call->body_paused = FALSE;
      cp_http_exchange_resume_body (call->exchange);
    }
  if (call->provider != NULL)
    cp_plugin_instance_call_finished (call->provider);
  if (call->span != NULL)
    route_trace_end (call);
  if (call->router != NULL)
    g_hash_table_remove (call->router->calls, call);
  ROUTE_DEBUG ("router: %s done%s%s", call->target, call->aborted ? " (caller gone)" : "",
           call->timed_out ? " (timed out)" : "");
  route_call_unref (call);     /* the in-flight reference */
}

/* The upstream failed after the response began: the caller must see an
 * error, not a clean end, so the connection is closed on a cut stream. */
static void
route_call_cut (RouteCall *call)
{
  g_autoptr(CpHttpExchange) exchange = cp_http_exchange_ref (call->exchange);
  gboolean aborted = call->aborted;

  route_call_finish (call);     /* may free @call */
  if (!aborted)
    cp_http_exchange_fail_response (exchange, "upstream failed mid-response");
}

/* Hop-by-hop headers (and the framing ones, which each side writes for
 * itself). Switched on the first letter: this runs for every header of
 * every routed request and response. */
static gboolean
hop_by_hop (const char *name)
{
  switch (name[0])
    {
    case 'c': case 'C':
      return g_ascii_strcasecmp (name, "Connection") == 0 ||
             g_ascii_strcasecmp (name, "Content-Length") == 0;
    case 'e': case 'E':
      return g_ascii_strcasecmp (name, "Expect") == 0;
    case 'h': case 'H':
      return g_ascii_strcasecmp (name, "Host") == 0;
    case 'k': case 'K':
      return g_ascii_strcasecmp (name, "Keep-Alive") == 0;
    case 'p': case 'P':
      return g_ascii_strcasecmp (name, "Proxy-Connection") == 0 ||
             g_ascii_strcasecmp (name, "Proxy-Authenticate") == 0 ||
             g_ascii_strcasecmp (name, "Proxy-Authorization") == 0;
    case 't': case 'T':
      return g_ascii_strcasecmp (name, "TE") == 0 ||
             g_ascii_strcasecmp (name, "Trailer") == 0 ||
             g_ascii_strcasecmp (name, "Transfer-Encoding") == 0;
    case 'u': case 'U':
      return g_ascii_strcasecmp (name, "Upgrade") == 0;
    default:
      return FALSE;
    }
}


/* ---- upstream → caller ---- */

static void
on_upstream_head (CpUpstreamCall     *upstream,
                  guint               status,
                  SoupMessageHeaders *in,
                  gpointer            user_data)
{
  RouteCall *call = user_data;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  SoupMessageHeadersIter iter;
  const char *name, *value;
  /* An in-process caller gets the headers as they are: strip them all. */
  gboolean copy = cp_http_exchange_is_local (call->exchange);

  /* Usually the provider sends only framing headers among the hop-by-hop
   * ones, which the connection leaves out anyway: no copy then. */
  soup_message_headers_iter_init (&iter, in);
  while (!copy && soup_message_headers_iter_next (&iter, &name, &value))
    copy = hop_by_hop (name) && !cp_http_is_framing_header (name);
  if (copy)
    {
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      soup_message_headers_iter_init (&iter, in);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        if (!hop_by_hop (name))
          soup_message_headers_append (headers, name, value);
    }
  call->started = TRUE;
  call->status = status;
  cp_http_exchange_begin_response (call->exchange, status, copy ? headers : in);
}

static void
on_upstream_data (CpUpstreamCall *upstream,
                  GBytes         *chunk,
                  gpointer        user_data)
{
  RouteCall *call = user_data;

  cp_http_exchange_write (call->exchange, chunk);
  if (cp_http_exchange_is_congested (call->exchange) && !call->response_paused)
    {
      call->response_paused = TRUE;
      cp_upstream_call_pause (upstream);
    }
}

static void
on_upstream_done (CpUpstreamCall *upstream,
                  gpointer        user_data)
{
  RouteCall *call = user_data;

  call->upstream = NULL;
  cp_http_exchange_end_response (call->exchange);
  route_call_finish (call);
}

static void
on_upstream_failed (CpUpstreamCall *upstream,
                    const GError   *error,
                    gboolean        started,
                    gpointer        user_data)
{
  RouteCall *call = user_data;

  call->upstream = NULL;
  g_debug ("router: %s failed: %s", call->target, error->message);
  if (call->started)
    route_call_cut (call);
  else
    {
      if (!call->aborted)
        cp_rpc_server_respond_plain (call->exchange, SOUP_STATUS_BAD_GATEWAY, "upstream failed");
      route_call_finish (call);
    }
}

static void
on_upstream_drained (CpUpstreamCall *upstream,
                     gpointer        user_data)
{
  RouteCall *call = user_data;

  if (call->body_paused && !call->finished)
    {
      call->body_paused = FALSE;
      cp_http_exchange_resume_body (call->exchange);
    }
}

static const CpUpstreamCallbacks upstream_callbacks = {
  on_upstream_head, on_upstream_data, on_upstream_done, on_upstream_failed,
  on_upstream_drained,
};

static gboolean
on_deadline (gpointer user_data)
{
  RouteCall *call = user_data;

  call->timed_out = TRUE;
  g_clear_pointer (&call->deadline, g_source_unref);
  if (call->started)
    route_call_cut (call);
  else
    {
      if (!call->aborted)
        cp_rpc_server_respond_plain (call->exchange, SOUP_STATUS_BAD_GATEWAY,
                                     "upstream timed out");
      route_call_finish (call);
    }
  return G_SOURCE_REMOVE;
}

/* ---- caller → upstream ---- */

static void
on_body_chunk (CpHttpExchange *exchange,
               GBytes         *chunk,
               gpointer        user_data)
{
  RouteCall *call = user_data;

  if (call->upstream != NULL && cp_upstream_call_write (call->upstream, chunk) &&
      !call->body_paused)
    {
      call->body_paused = TRUE;
      cp_http_exchange_pause_body (exchange);
    }
}

static void
on_body_end (CpHttpExchange *exchange,
             gpointer        user_data)
{
  RouteCall *call = user_data;

  if (call->upstream != NULL)
    cp_upstream_call_end (call->upstream);
}

static void
on_aborted (CpHttpExchange *exchange,
            const GError   *error,
            gpointer        user_data)
{
  RouteCall *call = user_data;

  call->aborted = TRUE;
  route_call_finish (call);
}

static void
on_writable (CpHttpExchange *exchange,
             gpointer        user_data)
{
  RouteCall *call = user_data;

  if (call->response_paused && call->upstream != NULL)
    {
      call->response_paused = FALSE;
      cp_upstream_call_resume (call->upstream);
    }
}

static const CpHttpExchangeCallbacks route_callbacks = {
  on_body_chunk, on_body_end, on_aborted, on_writable,
};

/* Connect-Timeout-Ms when the caller sent a valid one, else the broker's
 * route timeout (0: none). */
static guint
call_timeout_ms (CpRouter           *router,
                 SoupMessageHeaders *headers)
{
  const char *value = soup_message_headers_get_one (headers, "Connect-Timeout-Ms");
  guint64 ms;

  if (value != NULL && value[0] != '\0' && strlen (value) <= 10 &&
      strspn (value, "0123456789") == strlen (value) &&
      (ms = g_ascii_strtoull (value, NULL, 10)) <= G_MAXUINT)
    return MAX ((guint) ms, 1);
  return router->broker->route_timeout_ms;
}

/* What of the caller's headers goes upstream: not the hop-by-hop ones,
 * not its credentials. */
static gboolean
keep_upstream (const char *name)
{
  return !hop_by_hop (name) && g_ascii_strcasecmp (name, "Authorization") != 0 &&
         g_ascii_strcasecmp (name, "X-Plugin-Runtime-ID") != 0;
}

/* -1 (chunked) unless the caller framed its body with a Content-Length. */
static gint64
upstream_length (CpHttpExchange *exchange)
{
  SoupMessageHeaders *in = cp_http_exchange_get_request_headers (exchange);

  if (cp_http_exchange_has_empty_body (exchange))
    return 0;
  if (soup_message_headers_get_encoding (in) == SOUP_ENCODING_CONTENT_LENGTH)
    return soup_message_headers_get_content_length (in);
  return -1;
}

static const char *
lookup_endpoint (CpRouter   *router,
                 const char *service_type,
                 const char *runtime_id)
{
  if (router->broker->registry == NULL)
    return NULL;
  return cp_registry_lookup_endpoint_path (router->broker->registry, service_type, runtime_id);
}

/* endpoint path + Method [+ ?query]: the request target at the provider. */
static char *
target_path (const char *endpoint_path,
             const char *method,
             const char *query)
{
  GString *target = g_string_new (NULL);

  if (endpoint_path[0] != '/')
    g_string_append_c (target, '/');
  g_string_append (target, endpoint_path);
  if (target->str[target->len - 1] != '/')
    g_string_append_c (target, '/');
  g_string_append (target, method);
  if (query != NULL)
    g_string_append_printf (target, "?%s", query);
  return g_string_free (target, FALSE);
}

/* Forwards the call to @base_url + @target (transfer full) through @pool:
 * a local @provider's own URL, or (@provider NULL) the router of the host
 * that holds a remote provider. */
static void
forward (CpRouter         *router,
         CpHttpExchange   *exchange,
         CpUpstreamPool   *pool,
         const char       *base_url,
         CpPluginInstance *provider,
         char             *target)
{
  RouteCall *call = g_new0 (RouteCall, 1);
  g_autoptr(GError) error = NULL;
  guint timeout_ms;

  call->refs = 2;               /* in flight + the exchange's callbacks */
  call->router = router;
  call->exchange = cp_http_exchange_ref (exchange);
  call->provider = provider != NULL ? g_object_ref (provider) : NULL;
  call->target = target;
  g_hash_table_add (router->calls, call);
  if (provider != NULL)
    cp_plugin_instance_call_started (provider);
  cp_http_exchange_set_callbacks (exchange, &route_callbacks, call,
                                  (GDestroyNotify) route_call_unref);
  route_trace_begin (call, router->broker->rpc_server);
  /* Plugins register where they listen over TCP (base_url); a unix: URL
   * is not routable. */
  call->upstream = cp_upstream_call_start (pool, base_url,
                                           cp_http_exchange_get_method (exchange), target,
                                           cp_http_exchange_get_request_headers (exchange),
                                           keep_upstream, upstream_length (exchange),
                                           &upstream_callbacks, call, &error);
  if (call->upstream == NULL)
    {
      g_debug ("router: %s", error->message);
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_BAD_GATEWAY, "invalid provider URL");
      route_call_finish (call);
      return;
    }
  timeout_ms = call_timeout_ms (router, cp_http_exchange_get_request_headers (exchange));
  if (timeout_ms > 0)
    {
      call->deadline = g_timeout_source_new (timeout_ms);
      g_source_set_callback (call->deadline, on_deadline, call, NULL);
      g_source_attach (call->deadline, g_main_context_get_thread_default ());
    }
}

static char *
rate_key (CpHttpExchange   *exchange,
          CpPluginInstance *caller)
{
  GSocketAddress *address;

  if (caller != NULL)
    return g_strconcat ("id:", cp_plugin_instance_get_runtime_id (caller), NULL);
  address = cp_http_exchange_get_remote_address (exchange);
  if (G_IS_INET_SOCKET_ADDRESS (address))
    {
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
      return g_strconcat ("ip:", ip, NULL);
    }
  return g_strdup ("ip:local");
}

static void
handle (CpRpcServer    *server,
        CpHttpExchange *exchange,
        gpointer        user_data)
{
  CpRouter *router = user_data;
  CpBroker *broker = router->broker;
  g_autofree char *type = NULL, *provider_id = NULL, *method = NULL, *key = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  CpPluginInstance *caller, *provider;
  const char *endpoint_path, *peer_url;

  if (!cp_router_parse_path (cp_http_exchange_get_path (exchange), &type, &provider_id, &method))
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_BAD_REQUEST,
                                   "invalid service path, expected /services/{type}/{provider_runtime_id}/{Method}");
      return;
    }
  caller = cp_broker_authenticate (broker, cp_http_exchange_get_request_headers (exchange), &error);
  if (broker->rate_limit_rps > 0)
    key = rate_key (exchange, caller);
  if (key != NULL && !cp_rate_limiter_allow (broker->limiter, key))
    {
      cp_rpc_server_respond_plain (exchange, 429, "rate limit exceeded");
      return;
    }
  if (caller == NULL)
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_UNAUTHORIZED, error->message);
      return;
    }
  /* A replaced provider's calls go to its replacement (cp-broker-plugins.c). */
  provider = cp_broker_route_target (broker, provider_id);
  /* Not ours: a provider another host published in etcd (CpEtcdRegistry)
   * is reached through that host's router. */
  if (provider == NULL && broker->registry != NULL &&
      (peer_url = cp_registry_lookup_remote (broker->registry, type, provider_id)) != NULL)
    {
      const char *query = cp_http_exchange_get_query (exchange);

      ROUTE_DEBUG ("router: %s -> %s %s (service %s, via %s)",
                   cp_plugin_instance_get_runtime_id (caller), provider_id, method, type, peer_url);
      forward (router, exchange, router->peers, peer_url, NULL,
               g_strdup_printf (CP_ROUTER_PREFIX "%s/%s/%s%s%s", type, provider_id, method,
                                query != NULL ? "?" : "", query != NULL ? query : ""));
      return;
    }
  endpoint_path = provider != NULL
    ? lookup_endpoint (router, type, cp_plugin_instance_get_runtime_id (provider)) : NULL;
  if (endpoint_path == NULL || cp_plugin_instance_get_url (provider) == NULL)
    {
      text = g_strdup_printf ("provider not found: %s for %s", provider_id, type);
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_NOT_FOUND, text);
      return;
    }
  if (cp_plugin_instance_get_health_state (provider) == CP_HEALTH_STATE_UNHEALTHY ||
      !cp_plugin_instance_get_routable (provider))
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                   "service unavailable (provider unhealthy)");
      return;
    }
  ROUTE_DEBUG ("router: %s -> %s %s (service %s)", cp_plugin_instance_get_runtime_id (caller),
           provider_id, method, type);
  forward (router, exchange, router->upstream, cp_plugin_instance_get_url (provider), provider,
           target_path (endpoint_path, method, cp_http_exchange_get_query (exchange)));
}

void
cp_router_handle_forwarded (CpRouter       *router,
                            CpHttpExchange *exchange,
                            const char     *peer)
{
  CpBroker *broker = router->broker;
  g_autofree char *type = NULL, *provider_id = NULL, *method = NULL, *key = NULL;
  g_autofree char *text = NULL;
  CpPluginInstance *provider;
  const char *endpoint_path;

  if (!cp_router_parse_path (cp_http_exchange_get_path (exchange), &type, &provider_id, &method))
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_BAD_REQUEST,
                                   "invalid service path, expected /services/{type}/{provider_runtime_id}/{Method}");
      return;
    }
  if (broker->rate_limit_rps > 0)
    key = g_strconcat ("peer:", peer, NULL);
  if (key != NULL && !cp_rate_limiter_allow (broker->limiter, key))
    {
      cp_rpc_server_respond_plain (exchange, 429, "rate limit exceeded");
      return;
    }
  /* Only this host's own providers: a forwarded call is never forwarded
   * again, so two hosts that disagree cannot bounce a call forever. */
  provider = cp_broker_route_target (broker, provider_id);
  endpoint_path = provider != NULL
    ? lookup_endpoint (router, type, cp_plugin_instance_get_runtime_id (provider)) : NULL;
  if (endpoint_path == NULL || cp_plugin_instance_get_url (provider) == NULL)
    {
      text = g_strdup_printf ("provider not found: %s for %s", provider_id, type);
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_NOT_FOUND, text);
      return;
    }
  if (cp_plugin_instance_get_health_state (provider) == CP_HEALTH_STATE_UNHEALTHY ||
      !cp_plugin_instance_get_routable (provider))
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                   "service unavailable (provider unhealthy)");
      return;
    }
  ROUTE_DEBUG ("router: peer %s -> %s %s (service %s)", peer, provider_id, method, type);
  forward (router, exchange, router->upstream, cp_plugin_instance_get_url (provider), provider,
           target_path (endpoint_path, method, cp_http_exchange_get_query (exchange)));
}

void
cp_router_set_peer_tls (CpRouter        *router,
                        GTlsCertificate *certificate,
                        GTlsDatabase    *database)
{
  cp_upstream_pool_set_tls (router->peers, certificate, database);
}

CpRouter *
cp_router_new (CpBroker *broker)
{
  CpRouter *router = g_new0 (CpRouter, 1);

  router->broker = broker;
  router->calls = g_hash_table_new (NULL, NULL);
  router->upstream = cp_upstream_pool_new ();
  router->peers = cp_upstream_pool_new ();
  cp_rpc_server_add_prefix_handler (broker->rpc_server, CP_ROUTER_PREFIX, handle, router, NULL);
  return router;
}

void
cp_router_free (CpRouter *router)
{
  g_autoptr(GList) calls = g_hash_table_get_keys (router->calls);

  cp_rpc_server_remove_prefix_handler (router->broker->rpc_server, CP_ROUTER_PREFIX);
  /* Calls in flight end as if their provider failed: 502, or a cut
   * response once it had begun. */
  for (GList *l = calls; l != NULL; l = l->next)
    {
      RouteCall *call = l->data;
      const GError error = { G_IO_ERROR, G_IO_ERROR_CANCELLED, (char *) "the router is going away" };

      call->router = NULL;
      if (call->upstream != NULL)
        {
          cp_upstream_call_cancel (g_steal_pointer (&call->upstream));
          on_upstream_failed (NULL, &error, call->started, call);
        }
    }
  g_hash_table_unref (router->calls);
  cp_upstream_pool_free (router->upstream);
  cp_upstream_pool_free (router->peers);
  g_free (router);
}
