/* cp-router.c: /services/{type}/{provider_runtime_id}/{Method}
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Routed plugin-to-plugin calls (connect-plugin-go's router.go): the
 * caller is authenticated by its runtime identity, the provider looked up
 * in the registry, and the call forwarded to `base_url + endpoint path +
 * Method` with a SoupSession, both bodies streamed with back-pressure
 * (CpRouterBody upstream, the exchange's congestion downstream).
 */
#include "cp-router-private.h"

#include <stdlib.h>
#include <string.h>

#include "cp-error.h"
#include "cp-http-connection-private.h"

#define READ_SIZE (16 * 1024)

struct _CpRouter
{
  CpBroker *broker;
  SoupSession *session;
  GHashTable *calls;            /* RouteCall* in flight */
};

typedef struct {
  int refs;
  CpRouter *router;             /* NULL once the router is gone */
  CpHttpExchange *exchange;
  CpPluginInstance *provider;
  SoupMessage *msg;
  CpRouterBody *body;
  GCancellable *cancellable;
  GInputStream *response;
  GSource *deadline;
  char *target;
  gboolean body_paused;
  gboolean aborted;             /* the caller went away */
  gboolean timed_out;
  gboolean waiting_writable;
  gboolean completed;           /* the upstream response was read to its end */
  gboolean finished;
} RouteCall;

static RouteCall *
route_call_ref (RouteCall *call)
{
  call->refs++;
  return call;
}

static void
route_call_unref (RouteCall *call)
{
  if (--call->refs > 0)
    return;
  g_assert (call->finished);
  if (call->body != NULL)
    cp_router_body_detach (call->body);
  g_clear_object (&call->body);
  g_clear_object (&call->response);
  g_clear_object (&call->msg);
  g_clear_object (&call->cancellable);
  g_clear_object (&call->provider);
  g_clear_pointer (&call->exchange, cp_http_exchange_unref);
  g_free (call->target);
  g_free (call);
}

/* The call is over on our side: bracket closed, upstream cancelled. */
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
  /* A completed upstream response keeps its connection for the next call;
   * anything else is cancelled. */
  if (!call->completed)
    g_cancellable_cancel (call->cancellable);
  if (call->body != NULL)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                      "routed call finished");
      cp_router_body_detach (call->body);
      cp_router_body_fail (call->body, error);
    }
  if (call->body_paused && !call->aborted)
    {
      /* Let the transport drain what the caller still sends. */
      call->body_paused = FALSE;
      cp_http_exchange_resume_body (call->exchange);
    }
  cp_plugin_instance_call_finished (call->provider);
  if (call->router != NULL)
    g_hash_table_remove (call->router->calls, call);
  g_debug ("router: %s done%s%s", call->target, call->aborted ? " (caller gone)" : "",
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
  if (aborted || cp_http_exchange_is_finished (exchange))
    return;
  if (exchange->conn != NULL)
    {
      /* A reset, not a clean end of the chunked body. */
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                                                      "upstream failed mid-response");
      cp_http_connection_close (exchange->conn, error);
    }
  else
    {
      cp_http_exchange_set_close (exchange);
      cp_http_exchange_end_response (exchange);
    }
}

static void read_next (RouteCall *call);

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  RouteCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source),
                                                             result, &error);

  if (call->finished)
    ;
  else if (chunk == NULL)
    route_call_cut (call);
  else if (g_bytes_get_size (chunk) == 0)
    {
      call->completed = TRUE;
      /* After EOF closing cannot block, and doing it now hands the
       * connection back to libsoup's pool before the next call arrives. */
      g_input_stream_close (call->response, NULL, NULL);
      g_clear_object (&call->response);
      cp_http_exchange_end_response (call->exchange);
      route_call_finish (call);
    }
  else
    {
      cp_http_exchange_write (call->exchange, chunk);
      if (cp_http_exchange_is_congested (call->exchange))
        call->waiting_writable = TRUE;
      else
        read_next (call);
    }
  route_call_unref (call);
}

static void
read_next (RouteCall *call)
{
  g_input_stream_read_bytes_async (call->response, READ_SIZE, G_PRIORITY_DEFAULT,
                                   call->cancellable, on_read, route_call_ref (call));
}

static gboolean
hop_by_hop (const char *name)
{
  static const char *const names[] = {
    "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
    "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    "Content-Length", "Host", "Expect",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_ascii_strcasecmp (name, names[i]) == 0)
      return TRUE;
  return FALSE;
}

static void
begin_response (RouteCall *call)
{
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, soup_message_get_response_headers (call->msg));
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (!hop_by_hop (name))
      soup_message_headers_append (headers, name, value);
  cp_http_exchange_begin_response (call->exchange, soup_message_get_status (call->msg), headers);
}

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  RouteCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);

  if (call->finished)
    ;
  else if (stream == NULL)
    {
      g_debug ("router: %s failed: %s", call->target, error->message);
      if (!call->aborted)
        cp_rpc_server_respond_plain (call->exchange, SOUP_STATUS_BAD_GATEWAY,
                                     call->timed_out ? "upstream timed out"
                                                     : "upstream failed");
      route_call_finish (call);
    }
  else
    {
      call->response = g_steal_pointer (&stream);
      begin_response (call);
      read_next (call);
    }
  route_call_unref (call);
}

static gboolean
on_deadline (gpointer user_data)
{
  RouteCall *call = user_data;

  call->timed_out = TRUE;
  g_clear_pointer (&call->deadline, g_source_unref);
  if (call->response != NULL)
    route_call_cut (call);
  else
    g_cancellable_cancel (call->cancellable);   /* on_sent answers 502 */
  return G_SOURCE_REMOVE;
}

static void
on_body_drained (gpointer user_data)
{
  RouteCall *call = user_data;

  if (call->body_paused && !call->finished)
    {
      call->body_paused = FALSE;
      cp_http_exchange_resume_body (call->exchange);
    }
}

static void
on_body_chunk (CpHttpExchange *exchange,
               GBytes         *chunk,
               gpointer        user_data)
{
  RouteCall *call = user_data;

  if (call->body != NULL && cp_router_body_push (call->body, chunk) && !call->body_paused)
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

  if (call->body != NULL)
    cp_router_body_end (call->body);
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

  if (call->waiting_writable && !call->finished)
    {
      call->waiting_writable = FALSE;
      read_next (call);
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

static SoupMessage *
upstream_message (CpHttpExchange *exchange,
                  const char     *target,
                  CpRouterBody   *body)
{
  SoupMessageHeaders *in = cp_http_exchange_get_request_headers (exchange);
  g_autoptr(GUri) uri = g_uri_parse (target, SOUP_HTTP_URI_FLAGS, NULL);
  SoupMessage *msg;
  SoupMessageHeaders *out;
  SoupMessageHeadersIter iter;
  const char *name, *value;

  /* Plugins register where they listen over TCP (base_url); a unix: URL
   * is not routable by this session. */
  if (uri == NULL || g_uri_get_host (uri) == NULL ||
      (g_ascii_strcasecmp (g_uri_get_scheme (uri), "http") != 0 &&
       g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") != 0))
    return NULL;
  msg = soup_message_new_from_uri (cp_http_exchange_get_method (exchange), uri);
  /* Connect calls are POSTs: without IDEMPOTENT libsoup opens a new
   * connection for every one of them. */
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT | SOUP_MESSAGE_IDEMPOTENT);
  if (body != NULL)
    soup_message_set_request_body (msg, NULL, G_INPUT_STREAM (body),
                                   soup_message_headers_get_content_length (in) > 0 &&
                                   soup_message_headers_get_encoding (in) == SOUP_ENCODING_CONTENT_LENGTH
                                   ? (gssize) soup_message_headers_get_content_length (in) : -1);
  out = soup_message_get_request_headers (msg);
  soup_message_headers_iter_init (&iter, in);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (!hop_by_hop (name) && g_ascii_strcasecmp (name, "Authorization") != 0 &&
        g_ascii_strcasecmp (name, "X-Plugin-Runtime-ID") != 0)
      soup_message_headers_append (out, name, value);
  return msg;
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

static char *
target_url (CpPluginInstance *provider,
            const char       *endpoint_path,
            const char       *method,
            const char       *query)
{
  const char *base = cp_plugin_instance_get_url (provider);
  gsize len = strlen (base);
  GString *url = g_string_new_len (base, len > 0 && base[len - 1] == '/' ? len - 1 : len);

  if (endpoint_path[0] != '/')
    g_string_append_c (url, '/');
  g_string_append (url, endpoint_path);
  if (url->len == 0 || url->str[url->len - 1] != '/')
    g_string_append_c (url, '/');
  g_string_append (url, method);
  if (query != NULL)
    g_string_append_printf (url, "?%s", query);
  return g_string_free (url, FALSE);
}

static void
forward (CpRouter         *router,
         CpHttpExchange   *exchange,
         CpPluginInstance *provider,
         char             *target)
{
  RouteCall *call = g_new0 (RouteCall, 1);
  guint timeout_ms;

  call->refs = 2;               /* in flight + the exchange's callbacks */
  call->router = router;
  call->exchange = cp_http_exchange_ref (exchange);
  call->provider = g_object_ref (provider);
  call->cancellable = g_cancellable_new ();
  call->target = target;
  if (!cp_http_exchange_has_empty_body (exchange))
    call->body = cp_router_body_new (G_CALLBACK (on_body_drained), call);
  call->msg = upstream_message (exchange, target, call->body);
  g_hash_table_add (router->calls, call);
  cp_plugin_instance_call_started (provider);
  cp_http_exchange_set_callbacks (exchange, &route_callbacks, call,
                                  (GDestroyNotify) route_call_unref);
  if (call->msg == NULL)
    {
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
  soup_session_send_async (router->session, call->msg, G_PRIORITY_DEFAULT,
                           call->cancellable, on_sent, route_call_ref (call));
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
  const char *endpoint_path;

  if (!cp_router_parse_path (cp_http_exchange_get_path (exchange), &type, &provider_id, &method))
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_BAD_REQUEST,
                                   "invalid service path, expected /services/{type}/{provider_runtime_id}/{Method}");
      return;
    }
  caller = cp_broker_authenticate (broker, cp_http_exchange_get_request_headers (exchange), &error);
  key = rate_key (exchange, caller);
  if (!cp_rate_limiter_allow (broker->limiter, key))
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
  g_debug ("router: %s -> %s %s (service %s)", cp_plugin_instance_get_runtime_id (caller),
           provider_id, method, type);
  forward (router, exchange, provider,
           target_url (provider, endpoint_path, method, cp_http_exchange_get_query (exchange)));
}

CpRouter *
cp_router_new (CpBroker *broker)
{
  CpRouter *router = g_new0 (CpRouter, 1);

  router->broker = broker;
  router->calls = g_hash_table_new (NULL, NULL);
  router->session = g_object_new (SOUP_TYPE_SESSION,
                                  "max-conns-per-host", 64,
                                  "max-conns", 256,
                                  "timeout", 0,
                                  "idle-timeout", 0,
                                  "user-agent", "connectplugin-router/0.1",
                                  NULL);
  soup_session_remove_feature_by_type (router->session, SOUP_TYPE_CONTENT_DECODER);
  soup_session_remove_feature_by_type (router->session, SOUP_TYPE_AUTH_MANAGER);
  cp_rpc_server_add_prefix_handler (broker->rpc_server, CP_ROUTER_PREFIX, handle, router, NULL);
  return router;
}

void
cp_router_free (CpRouter *router)
{
  GHashTableIter iter;
  RouteCall *call;

  cp_rpc_server_remove_prefix_handler (router->broker->rpc_server, CP_ROUTER_PREFIX);
  g_hash_table_iter_init (&iter, router->calls);
  while (g_hash_table_iter_next (&iter, (gpointer *) &call, NULL))
    {
      call->router = NULL;
      g_cancellable_cancel (call->cancellable);
    }
  g_hash_table_unref (router->calls);
  soup_session_abort (router->session);
  g_object_unref (router->session);
  g_free (router);
}
