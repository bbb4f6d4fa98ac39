/* cp-channel.c: CpChannel, the Connect client engine: the channel object,
 * its properties and transport, and the entry points of the streaming
 * calls. Its other units: cp-channel-wrappers.c (what wraps each call:
 * interceptors, retry policy and budget, circuit breaker),
 * cp-channel-unary.c (unary calls), cp-call-settings.c,
 * cp-channel-exchange*.c, cp-stream-decoder.c, cp-channel-util.c, the
 * stream objects and the wrappers' objects (see cp-channel-private.h)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gio/gunixsocketaddress.h>

#include "cp-channel.h"
#include "cp-channel-private.h"
#include "cp-channel-state-private.h"
#include "cp-call-options-private.h"
#include "cp-circuit-breaker-private.h"
#include "cp-client-metrics-private.h"
#include "cp-request-stream-private.h"
#include "cp-response-stream-private.h"
#include "cp-enum-types.h"
#include "cp-error.h"
#include "cp-metadata.h"
#include "cp-span.h"
#include "cp-h2-connection-private.h"
#include "cp-tls-proxy-private.h"

/* Defaults of CpChannel:timeout-ms (the wire contract's RPC timeout, as
 * CpClient's call-timeout-ms) and CpChannel:max-receive-size (as servers'). */
#define DEFAULT_TIMEOUT_MS       30000
#define DEFAULT_MAX_RECEIVE_SIZE (4 * 1024 * 1024)

/**
 * CpChannel:
 *
 * The client side of the Connect protocol (or gRPC and gRPC-Web, see
 * [property@Channel:protocol]): makes unary, server-streaming,
 * client-streaming and bidirectional calls to one server.
 *
 * A channel talks to a server given by a base URL: `http://host:port`,
 * `https://host:port` (optionally with a path prefix, e.g.
 * `http://host:port/api`) or `unix:/path/to/socket`; or, with
 * [ctor@ConnectPlugin.Channel.new_in_process], to a [class@RpcServer] in the same process
 * without any socket.
 *
 * HTTP goes through one [class@Soup.Session] per channel, tuned for RPC: no
 * transparent content decoding (Connect compression is done by the
 * channel), up to 64 connections per host, and no inactivity timeouts (the
 * channel enforces each call's deadline itself, and streams may stay quiet
 * for a long time). Every request is marked %SOUP_MESSAGE_IDEMPOTENT so that
 * keep-alive connections are reused; as a consequence libsoup re-sends a
 * request once when the reused connection turns out to have been closed by
 * the server before any byte of the response arrived. Never more than once,
 * and never after a response has started: callers of methods with side
 * effects should keep the server's keep-alive timeout longer than the
 * client's (our server's default is) so that this does not happen.
 *
 * Threading: the channel follows connectplugin's actor model. The result of
 * an asynchronous call and the signals of a stream are delivered in the
 * [struct@GLib.MainContext] that was the thread-default one when the call was made, on
 * that context's thread. A channel may be used from several threads, each
 * with its own thread-default context; configure it (properties) in the
 * thread that created it, before the first call. Headers set with
 * [method@ConnectPlugin.Channel.set_header], the
 * [property@Channel:circuit-breaker], the [property@Channel:retry-policy]
 * and the interceptors ([method@ConnectPlugin.Channel.add_interceptor]) are
 * the exception: they are guarded by a lock and may change at any time,
 * from any thread (calls under way keep what they started with).
 *
 * Every call goes, in this order, through: the interceptors
 * ([class@ClientInterceptor]: the channel's [class@Client]'s, the
 * channel's own, then the call's), which see one logical call; its
 * [class@RetryPolicy], which may make several attempts; the
 * [class@CircuitBreaker], asked by each attempt; and the transport.
 */

G_DEFINE_FINAL_TYPE (CpChannel, cp_channel, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_BASE_URL,
  PROP_SERVER,
  PROP_CODEC,
  PROP_COMPRESSION,
  PROP_TIMEOUT_MS,
  PROP_MAX_RECEIVE_SIZE,
  PROP_TLS_DATABASE,
  PROP_TLS_CERTIFICATE,
  PROP_METHOD_ONLY_PATHS,
  PROP_CIRCUIT_BREAKER,
  PROP_RETRY_POLICY,
  PROP_METRICS_ENABLED,
  PROP_METRICS_LABEL,
  PROP_TRACING,
  PROP_HTTP_VERSION,
  PROP_PROTOCOL,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];
static guint span_finished_signal;

/* Library-internal (cp-channel-private.h). */
const char *
cp_channel_get_peer (CpChannel *channel)
{
  return channel->base_url != NULL ? channel->base_url : "in-process";
}

gboolean
cp_channel_get_tracing (CpChannel *channel)
{
  return g_atomic_int_get (&channel->tracing);
}

gboolean
cp_channel_wants_spans (CpChannel *channel)
{
  return g_signal_has_handler_pending (channel, span_finished_signal, 0, TRUE);
}

void
cp_channel_emit_span_finished (CpChannel *channel,
                               CpSpan    *span)
{
  g_signal_emit (channel, span_finished_signal, 0, span);
}


/**
 * cp_channel_call_server_stream:
 * @channel: a [class@ConnectPlugin.Channel]
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Watch`
 * @request: the request message
 * @response_type: the [alias@GObject.Type] of the response messages
 * @options: (nullable): per-call options (use-get is ignored)
 *
 * Starts a server-streaming call. Connect to the stream's signals; the
 * request is sent when control returns to the main loop of the current
 * thread-default context (or at [method@ConnectPlugin.ResponseStream.start]), and the
 * signals are emitted in that context.
 *
 * Returns: (transfer full): the response stream
 */
CpResponseStream *
cp_channel_call_server_stream (CpChannel     *channel,
                               const char    *procedure,
                               CpMessage     *request,
                               GType          response_type,
                               CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (procedure != NULL && procedure[0] == '/', NULL);
  g_return_val_if_fail (CP_IS_MESSAGE (request), NULL);
  g_return_val_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE), NULL);
  g_return_val_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options), NULL);

  return cp_response_stream_new_internal (channel, procedure, request, response_type, options,
                                          CP_IDEMPOTENCY_UNKNOWN);
}

/**
 * cp_channel_call_client_stream:
 * @channel: a [class@ConnectPlugin.Channel]
 * @procedure: the procedure
 * @response_type: the [alias@GObject.Type] of the response message
 * @options: (nullable): per-call options (use-get is ignored)
 *
 * Starts a client-streaming call (half-duplex over HTTP/1.1): queue
 * messages with [method@ConnectPlugin.RequestStream.send], then [method@ConnectPlugin.RequestStream.close_async]
 * sends them and returns the response. The deadline counts from now.
 *
 * Returns: (transfer full): the request stream
 */
CpRequestStream *
cp_channel_call_client_stream (CpChannel     *channel,
                               const char    *procedure,
                               GType          response_type,
                               CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (procedure != NULL && procedure[0] == '/', NULL);
  g_return_val_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE), NULL);
  g_return_val_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options), NULL);

  return cp_request_stream_new_internal (channel, procedure, CP_METHOD_CLIENT_STREAMING,
                                         response_type, options, CP_IDEMPOTENCY_UNKNOWN);
}

/**
 * cp_channel_call_bidi_stream:
 * @channel: a [class@ConnectPlugin.Channel]
 * @procedure: the procedure
 * @response_type: the [alias@GObject.Type] of the response messages
 * @options: (nullable): per-call options (use-get is ignored)
 *
 * Starts a bidirectional-streaming call, half-duplex as HTTP/1.1 allows:
 * queue messages with [method@ConnectPlugin.RequestStream.send], then
 * [method@ConnectPlugin.RequestStream.close_and_receive] sends them and returns the
 * [class@ConnectPlugin.ResponseStream] carrying the responses. The deadline counts from now.
 *
 * Returns: (transfer full): the request stream
 */
CpRequestStream *
cp_channel_call_bidi_stream (CpChannel     *channel,
                             const char    *procedure,
                             GType          response_type,
                             CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (procedure != NULL && procedure[0] == '/', NULL);
  g_return_val_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE), NULL);
  g_return_val_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options), NULL);

  return cp_request_stream_new_internal (channel, procedure, CP_METHOD_BIDI_STREAMING,
                                         response_type, options, CP_IDEMPOTENCY_UNKNOWN);
}

/* ------------------------------------------------------------------------ */
/* The channel object                                                        */

/* @direct: a unix socket or a loopback host, never reached through a
 * proxy (a system http_proxy would send a launched plugin's calls to it). */
static SoupSession *
new_session (CpChannel          *self,
             GSocketConnectable *connectable,
             gboolean            direct)
{
  SoupSession *session = g_object_new (SOUP_TYPE_SESSION,
                                       "max-conns-per-host", 64,
                                       "max-conns", 128,
                                       "timeout", 0,
                                       "idle-timeout", 0,
                                       "user-agent", "connectplugin/0.1",
                                       "remote-connectable", connectable,
                                       "tls-database", self->tls_database,
                                       NULL);

  if (CP_IS_TLS_CONNECTABLE (connectable))
    {
      /* Its addresses are proxy addresses, followed only with a resolver
       * set; this one is never asked (the connectable names the proxy). */
      g_autoptr(GProxyResolver) resolver = g_simple_proxy_resolver_new (NULL, NULL);

      soup_session_set_proxy_resolver (session, resolver);
    }
  else if (direct)
    soup_session_set_proxy_resolver (session, NULL);
  soup_session_remove_feature_by_type (session, SOUP_TYPE_CONTENT_DECODER);
  soup_session_remove_feature_by_type (session, SOUP_TYPE_AUTH_MANAGER);
  return session;
}

/* localhost, a name under .localhost, 127.0.0.0/8 or ::1. */
static gboolean
is_loopback_host (const char *host)
{
  g_autoptr(GInetAddress) address = NULL;
  g_autofree char *bare = NULL;

  if (g_ascii_strcasecmp (host, "localhost") == 0 ||
      g_str_has_suffix (host, ".localhost"))
    return TRUE;
  /* GUri keeps an IPv6 literal's brackets off already; be lenient. */
  bare = g_strdup (host[0] == '[' ? host + 1 : host);
  if (bare[0] != '\0' && bare[strlen (bare) - 1] == ']')
    bare[strlen (bare) - 1] = '\0';
  address = g_inet_address_new_from_string (bare);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

G_LOCK_DEFINE_STATIC (plaintext_warned);

/* Like connect-plugin-go: calls in plaintext HTTP to a host that is neither
 * loopback nor a unix socket are readable on the network. Warned once per
 * host and process; CONNECTPLUGIN_DISABLE_TLS_WARNING (non-empty) silences. */
static void
warn_plaintext (const char *host)
{
  static GHashTable *warned;   /* char* host → itself; under plaintext_warned */
  const char *disable = g_getenv ("CONNECTPLUGIN_DISABLE_TLS_WARNING");
  char *key;
  gboolean first;

  if (disable != NULL && disable[0] != '\0')
    return;
  key = g_ascii_strdown (host, -1);
  G_LOCK (plaintext_warned);
  if (warned == NULL)
    warned = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  first = g_hash_table_add (warned, key);   /* takes key either way */
  G_UNLOCK (plaintext_warned);
  if (first)
    g_message ("Connecting to %s over plaintext HTTP: the calls and their credentials "
               "are not encrypted; use https:// (set CONNECTPLUGIN_DISABLE_TLS_WARNING=1 "
               "to silence this warning)", host);
}

static gboolean
setup_http (CpChannel  *self,
            GError    **error)
{
  g_autoptr(GSocketConnectable) connectable = NULL;
  const char *url = self->base_url;
  gboolean direct = TRUE;

  if (url == NULL)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "a channel needs a base-url or a server");
      return FALSE;
    }

  if (g_str_has_prefix (url, "unix:"))
    {
      const char *path = url + strlen ("unix:");

      if (*path == '\0')
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "invalid URL \"%s\"", url);
          return FALSE;
        }
      connectable = G_SOCKET_CONNECTABLE (g_unix_socket_address_new (path));
      self->http_base = g_strdup ("http://localhost");
    }
  else
    {
      g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
      const char *scheme = uri ? g_uri_get_scheme (uri) : NULL;
      gsize len;

      if (uri == NULL ||
          (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0) ||
          g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0' ||
          g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "invalid URL \"%s\"", url);
          return FALSE;
        }
      direct = is_loopback_host (g_uri_get_host (uri));
      if (!direct && g_strcmp0 (scheme, "http") == 0)
        warn_plaintext (g_uri_get_host (uri));
      if (self->tls_database != NULL)
        self->tls_connectable = (CpTlsConnectable *)
          cp_tls_connectable_new_for_url (uri, self->tls_database, self->tls_certificate);
      self->http_base = g_strdup (url);
      len = strlen (self->http_base);
      while (len > 0 && self->http_base[len - 1] == '/')
        self->http_base[--len] = '\0';
    }

  self->session = new_session (self, self->tls_connectable != NULL
                                      ? G_SOCKET_CONNECTABLE (self->tls_connectable) : connectable,
                                direct);
  self->sync_session = new_session (self, self->tls_connectable != NULL
                                           ? G_SOCKET_CONNECTABLE (self->tls_connectable)
                                           : connectable,
                                    direct);
  self->connectable = g_steal_pointer (&connectable);
  self->direct = direct;
  return TRUE;
}

static void
cp_channel_constructed (GObject *object)
{
  CpChannel *self = CP_CHANNEL (object);

  G_OBJECT_CLASS (cp_channel_parent_class)->constructed (object);

  self->context = g_main_context_ref_thread_default ();
  if (self->server == NULL)
    setup_http (self, &self->setup_error);
}

static void
cp_channel_finalize (GObject *object)
{
  CpChannel *self = CP_CHANNEL (object);

  g_clear_pointer (&self->h2_client, cp_h2_client_free);
  g_clear_object (&self->connectable);
  g_clear_object (&self->tls_connectable);
  g_clear_object (&self->session);
  g_clear_object (&self->sync_session);
  g_clear_object (&self->server);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->circuit_breaker);
  g_clear_object (&self->retry_policy);
  g_clear_pointer (&self->client_interceptors, g_ptr_array_unref);
  g_clear_pointer (&self->interceptors, g_ptr_array_unref);
  cp_retry_budget_clear (&self->retry_budget);
  g_clear_error (&self->setup_error);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->headers, soup_message_headers_unref);
  g_mutex_clear (&self->headers_lock);
  g_free (self->base_url);
  g_free (self->http_base);
  g_clear_pointer (&self->metrics, cp_client_metrics_unref);
  g_free (self->metrics_label);

  G_OBJECT_CLASS (cp_channel_parent_class)->finalize (object);
}

/* ------------------------------------------------------------------------ */
/* Metrics (CpChannel:metrics-enabled)                                       */

/* Under headers_lock. */
static const char *
metrics_label (CpChannel *self)
{
  if (self->metrics_label != NULL)
    return self->metrics_label;
  return self->base_url != NULL ? self->base_url : "in-process";
}

static void
set_metrics_enabled (CpChannel *self,
                     gboolean   enabled)
{
  g_mutex_lock (&self->headers_lock);
  if (enabled && self->metrics == NULL)
    self->metrics = cp_client_metrics_new (metrics_label (self));
  g_mutex_unlock (&self->headers_lock);
  if (g_atomic_int_exchange (&self->metrics_on, enabled ? 1 : 0) != (enabled ? 1 : 0))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_METRICS_ENABLED]);
}

static void
set_metrics_label (CpChannel  *self,
                   const char *label)
{
  gboolean changed;

  g_mutex_lock (&self->headers_lock);
  changed = g_strcmp0 (self->metrics_label, label) != 0;
  if (changed)
    {
      g_free (self->metrics_label);
      self->metrics_label = g_strdup (label);
      if (self->metrics != NULL)
        cp_client_metrics_set_plugin (self->metrics, metrics_label (self));
    }
  g_mutex_unlock (&self->headers_lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_METRICS_LABEL]);
}

CpClientMetrics *
cp_channel_get_metrics (CpChannel *channel)
{
  return g_atomic_int_get (&channel->metrics_on) ? channel->metrics : NULL;
}

void
cp_channel_set_client_metrics (CpChannel       *channel,
                               CpClientMetrics *metrics)
{
  g_return_if_fail (CP_IS_CHANNEL (channel));

  g_mutex_lock (&channel->headers_lock);
  if (metrics != NULL)
    cp_client_metrics_ref (metrics);
  g_clear_pointer (&channel->metrics, cp_client_metrics_unref);
  channel->metrics = metrics;
  g_mutex_unlock (&channel->headers_lock);
  set_metrics_enabled (channel, metrics != NULL);
}

/**
 * cp_channel_render_metrics:
 * @channel: a [class@ConnectPlugin.Channel]
 *
 * Writes the channel's series (see [property@Channel:metrics-enabled]) in
 * the Prometheus text exposition format 0.0.4, for an application that
 * serves its metrics its own way. Every family is declared even when it
 * has no sample yet. May be called from any thread.
 *
 * Returns: (transfer full): the exposition; only the families' `# HELP`
 *   and `# TYPE` lines when metrics were never enabled
 */
char *
cp_channel_render_metrics (CpChannel *channel)
{
  g_autoptr(GPtrArray) sources = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_client_metrics_unref);
  GString *out = g_string_new (NULL);

  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  g_mutex_lock (&channel->headers_lock);
  if (channel->metrics != NULL)
    g_ptr_array_add (sources, cp_client_metrics_ref (channel->metrics));
  g_mutex_unlock (&channel->headers_lock);
  cp_client_metrics_render (out, sources);
  return g_string_free (out, FALSE);
}

static void
cp_channel_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  CpChannel *self = CP_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_BASE_URL:
      g_value_set_string (value, self->base_url);
      break;
    case PROP_SERVER:
      g_value_set_object (value, self->server);
      break;
    case PROP_CODEC:
      g_value_set_enum (value, self->codec);
      break;
    case PROP_COMPRESSION:
      g_value_set_enum (value, self->compression);
      break;
    case PROP_TIMEOUT_MS:
      g_value_set_int64 (value, self->timeout_ms);
      break;
    case PROP_MAX_RECEIVE_SIZE:
      g_value_set_uint64 (value, self->max_receive_size);
      break;
    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    case PROP_METHOD_ONLY_PATHS:
      g_value_set_boolean (value, self->method_only_paths);
      break;
    case PROP_CIRCUIT_BREAKER:
      g_value_take_object (value, cp_channel_dup_circuit_breaker (self));
      break;
    case PROP_RETRY_POLICY:
      g_value_take_object (value, cp_channel_dup_retry_policy (self));
      break;
    case PROP_METRICS_ENABLED:
      g_value_set_boolean (value, g_atomic_int_get (&self->metrics_on));
      break;
    case PROP_METRICS_LABEL:
      g_mutex_lock (&self->headers_lock);
      g_value_set_string (value, self->metrics_label);
      g_mutex_unlock (&self->headers_lock);
      break;
    case PROP_TRACING:
      g_value_set_boolean (value, g_atomic_int_get (&self->tracing));
      break;
    case PROP_HTTP_VERSION:
      g_value_set_enum (value, self->http_version);
      break;
    case PROP_PROTOCOL:
      g_value_set_enum (value, self->protocol);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_channel_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  CpChannel *self = CP_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_BASE_URL:
      self->base_url = g_value_dup_string (value);
      break;
    case PROP_SERVER:
      self->server = g_value_dup_object (value);
      break;
    case PROP_CODEC:
      self->codec = g_value_get_enum (value);
      break;
    case PROP_COMPRESSION:
      self->compression = g_value_get_enum (value);
      break;
    case PROP_TIMEOUT_MS:
      self->timeout_ms = g_value_get_int64 (value);
      break;
    case PROP_MAX_RECEIVE_SIZE:
      self->max_receive_size = g_value_get_uint64 (value);
      break;
    case PROP_TLS_DATABASE:
      g_set_object (&self->tls_database, g_value_get_object (value));
      if (self->tls_connectable != NULL)
        cp_tls_connectable_set_tls (self->tls_connectable, self->tls_database,
                                    self->tls_certificate);
      if (self->session != NULL)
        soup_session_set_tls_database (self->session, self->tls_database);
      if (self->sync_session != NULL)
        soup_session_set_tls_database (self->sync_session, self->tls_database);
      break;
    case PROP_TLS_CERTIFICATE:
      g_set_object (&self->tls_certificate, g_value_get_object (value));
      if (self->tls_connectable != NULL)
        cp_tls_connectable_set_tls (self->tls_connectable, self->tls_database,
                                    self->tls_certificate);
      break;
    case PROP_METHOD_ONLY_PATHS:
      self->method_only_paths = g_value_get_boolean (value);
      break;
    case PROP_CIRCUIT_BREAKER:
      cp_channel_set_circuit_breaker (self, g_value_get_object (value));
      break;
    case PROP_RETRY_POLICY:
      cp_channel_set_retry_policy (self, g_value_get_object (value));
      break;
    case PROP_METRICS_ENABLED:
      set_metrics_enabled (self, g_value_get_boolean (value));
      break;
    case PROP_METRICS_LABEL:
      set_metrics_label (self, g_value_get_string (value));
      break;
    case PROP_TRACING:
      if (g_atomic_int_exchange (&self->tracing, g_value_get_boolean (value)) !=
          g_value_get_boolean (value))
        g_object_notify_by_pspec (object, pspec);
      break;
    case PROP_HTTP_VERSION:
      if (self->http_version != (CpHttpVersion) g_value_get_enum (value))
        {
          self->http_version = g_value_get_enum (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    case PROP_PROTOCOL:
      if (self->protocol != (CpProtocol) g_value_get_enum (value))
        {
          self->protocol = g_value_get_enum (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_channel_class_init (CpChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_channel_constructed;
  object_class->finalize = cp_channel_finalize;
  object_class->get_property = cp_channel_get_property;
  object_class->set_property = cp_channel_set_property;

  /**
   * CpChannel:base-url:
   *
   * Where the server is: `http://host:port`, `https://host:port` (each
   * optionally followed by a path prefix) or `unix:/path/to/socket`.
   *
   * A unix socket or a loopback host (`localhost`, `*.localhost`,
   * 127.0.0.0/8, `::1`) is always reached directly; other hosts go
   * through the system's proxy settings ([func@Gio.ProxyResolver.get_default],
   * e.g. `http_proxy`), as libsoup does.
   */
  properties[PROP_BASE_URL] =
    g_param_spec_string ("base-url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:server:
   *
   * The in-process server this channel calls without any socket; see
   * [ctor@ConnectPlugin.Channel.new_in_process].
   */
  properties[PROP_SERVER] =
    g_param_spec_object ("server", NULL, NULL, CP_TYPE_RPC_SERVER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:codec:
   *
   * The default codec of calls.
   */
  properties[PROP_CODEC] =
    g_param_spec_enum ("codec", NULL, NULL, CP_TYPE_CODEC, CP_CODEC_PROTO,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:compression:
   *
   * The default compression of request messages. gzip-compressed
   * responses are always accepted.
   */
  properties[PROP_COMPRESSION] =
    g_param_spec_enum ("compression", NULL, NULL, CP_TYPE_COMPRESSION, CP_COMPRESSION_IDENTITY,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:timeout-ms:
   *
   * The default timeout of unary calls in milliseconds, 0 for none; by
   * default 30000 (30 s), the RPC timeout of the wire contract. A call
   * whose deadline passes fails with `deadline_exceeded`.
   *
   * Streaming calls (server, client and bidirectional) get no default
   * timeout: they may rightly stay open and quiet for a long time. Give
   * one a deadline with [property@CallOptions:timeout-ms].
   */
  properties[PROP_TIMEOUT_MS] =
    g_param_spec_int64 ("timeout-ms", NULL, NULL, 0, G_MAXINT64, DEFAULT_TIMEOUT_MS,
                        G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:max-receive-size:
   *
   * The largest response message accepted, in bytes (after
   * decompression, which stops as soon as the output passes it); 0 for no
   * limit. By default 4194304 (4 MiB), as servers. Larger messages fail
   * the call with `resource_exhausted`.
   */
  properties[PROP_MAX_RECEIVE_SIZE] =
    g_param_spec_uint64 ("max-receive-size", NULL, NULL, 0, G_MAXUINT32,
                         DEFAULT_MAX_RECEIVE_SIZE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:tls-database:
   *
   * The [class@Gio.TlsDatabase] used to verify `https://` servers; %NULL for the
   * system's default.
   *
   * Given at construction for a URL whose host is an IP address, the
   * channel's connections are made with it from the start and the system
   * CA bundle is never read (libsoup would read it for each new connection
   * before using this database); they speak HTTP/1.1.
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:tls-certificate:
   *
   * The client certificate (with its private key) presented to `https://`
   * servers that ask for one (mutual TLS); %NULL for none. Set it before
   * the first call: connections already open keep the certificate they
   * were made with.
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:method-only-paths:
   *
   * Whether requests go to the base URL followed by the method name
   * only (`/Get`), leaving out the service part of the procedure
   * (`/kv.v1.KVService`), for every kind of call and both transports.
   *
   * This is the form of a call routed by a plugin host: its router
   * serves a provider's service at `HOST/services/{type}/{provider_id}`
   * and expects the method name after it; a plugin gets such a channel
   * from [method@ConnectPlugin.Server.discover_service_async]. By default
   * %FALSE: the URL is the base URL followed by the whole procedure.
   */
  properties[PROP_METHOD_ONLY_PATHS] =
    g_param_spec_boolean ("method-only-paths", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:circuit-breaker:
   *
   * The [class@CircuitBreaker] that every call made through the channel
   * asks before it sends anything, and tells its outcome; %NULL (the
   * default) for none.
   *
   * Unary calls (asynchronous and blocking) ask when they start (after
   * the interceptors, and again before each retry of their
   * [property@Channel:retry-policy]); a server stream when its request is
   * sent
   * ([method@ConnectPlugin.ResponseStream.start]); a client or
   * bidirectional stream when it is closed
   * ([method@ConnectPlugin.RequestStream.close_async],
   * [method@ConnectPlugin.RequestStream.close_and_receive]), as nothing is
   * sent before. A refused call fails with `unavailable` ("circuit breaker
   * is open") the way its kind reports errors: through its callback or the
   * stream's [signal@ResponseStream::closed] signal, from the main loop. A
   * unary call's outcome is its result; a stream's, the status it ends
   * with. A cancelled call counts for nothing.
   *
   * The calls a [class@Client] and a [class@HealthMonitor] make about the
   * server itself (the handshake, health checks and watches, plugin
   * control) pass whatever the breaker's state and are not counted.
   *
   * One breaker may serve several channels, and this property may be
   * changed at any time and from any thread (calls under way report to the
   * breaker that let them through).
   */
  properties[PROP_CIRCUIT_BREAKER] =
    g_param_spec_object ("circuit-breaker", NULL, NULL, CP_TYPE_CIRCUIT_BREAKER,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:retry-policy:
   *
   * The [class@RetryPolicy] of the calls made through the channel, unless
   * a call's options have one ([property@CallOptions:retry-policy]); %NULL
   * (the default) makes every call once.
   *
   * Retries sit inside the interceptors (they see one call) and outside
   * the [property@Channel:circuit-breaker] (each attempt asks it, and a
   * refusal is not retried). The channel keeps the retry budget of all its
   * calls (see [class@RetryPolicy]).
   *
   * The calls a [class@Client] and a [class@HealthMonitor] make about the
   * server itself are not retried. This property may be changed at any
   * time and from any thread; calls under way keep the policy they started
   * with.
   */
  properties[PROP_RETRY_POLICY] =
    g_param_spec_object ("retry-policy", NULL, NULL, CP_TYPE_RETRY_POLICY,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:metrics-enabled:
   *
   * Whether the channel counts its calls for Prometheus: calls started and
   * completed (by Connect code) and in flight, a duration histogram, request
   * and response bytes, stream messages, retries and retries refused by the
   * budget, per procedure ([method@ConnectPlugin.Channel.render_metrics];
   * docs/engine.md, "Metrics", lists the series). Default %FALSE: a call
   * then pays one check.
   *
   * The calls a [class@Client] and a [class@HealthMonitor] make about the
   * server itself are not counted. Counting may be turned on and off at any
   * time, from any thread; the counts are kept while it is off. The
   * counters are atomic, so calls from several threads count correctly.
   */
  properties[PROP_METRICS_ENABLED] =
    g_param_spec_boolean ("metrics-enabled", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:metrics-label:
   *
   * The value of the `plugin` label of the channel's series. %NULL (the
   * default) stands for the base URL, or `in-process`. A [class@Client]'s
   * channels carry the client's [property@Client:metrics-label] instead.
   */
  properties[PROP_METRICS_LABEL] =
    g_param_spec_string ("metrics-label", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:tracing:
   *
   * Whether every call starts a trace when it has no parent span: it then
   * sends a `traceparent` (W3C Trace Context) of a new trace. Off by
   * default, as in connect-plugin-go: calls send no trace headers unless
   * they continue a trace, which they always do when they have a parent
   * span (the thread-default span, e.g. while a server handler runs, or
   * [method@ConnectPlugin.CallOptions.set_parent_span], or a
   * `traceparent` in the call's request headers). May be changed at any
   * time, from any thread.
   */
  properties[PROP_TRACING] =
    g_param_spec_boolean ("tracing", NULL, NULL, FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:http-version:
   *
   * The HTTP version the channel speaks. The default is what
   * connect-plugin-go's client speaks: HTTP/1.1 for `http://` and `unix:`
   * URLs, libsoup's choice for `https://`.
   *
   * With %CP_HTTP_VERSION_HTTP_2 the channel opens one HTTP/2 connection when
   * its first call is made (h2c with prior knowledge for `http://` and
   * `unix:`, ALPN `h2` over TLS for `https://`, with the channel's
   * [property@Channel:tls-database] and [property@Channel:tls-certificate]),
   * multiplexes every call of every thread on it, and opens a new one once
   * the server has sent GOAWAY or closed it. A TLS server that does not
   * pick `h2` is spoken to in HTTP/1.1. The HTTP/2 connection never goes
   * through a proxy. Client and bidirectional streams are full-duplex
   * there (see [method@ConnectPlugin.RequestStream.start_duplex]).
   *
   * Set it before the first call; ignored by an in-process channel.
   */
  properties[PROP_HTTP_VERSION] =
    g_param_spec_enum ("http-version", NULL, NULL, CP_TYPE_HTTP_VERSION, CP_HTTP_VERSION_DEFAULT,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpChannel:protocol:
   *
   * The RPC protocol of the channel's calls: Connect (the default),
   * gRPC-Web (`application/grpc-web+proto` or `+json`, the status in a
   * trailers frame at the end of the body), which any HTTP version
   * carries, or gRPC (`application/grpc+proto` or `+json`, the status in
   * HTTP trailers), which needs [property@Channel:http-version]
   * %CP_HTTP_VERSION_HTTP_2: over another transport (HTTP/1.1, in-process) its
   * calls fail with `unimplemented` without sending anything.
   *
   * Every kind of call is spoken in all three: unary, server-streaming,
   * client-streaming and half-duplex bidirectional calls, and full-duplex
   * ones ([method@ConnectPlugin.RequestStream.start_duplex]) over HTTP/2.
   * In gRPC and gRPC-Web the deadline travels as `grpc-timeout`, the
   * compression of [property@Channel:compression] as `grpc-encoding` (the
   * channel accepts gzip, `grpc-accept-encoding`), and a call's outcome is
   * read from `grpc-status`, `grpc-message` and `grpc-status-details-bin`
   * (whose `google.rpc.Status` wins, with its details) in the trailers —
   * or in the headers of a trailers-only answer. The response trailers
   * (of [class@CallOptions], [class@ResponseStream] and
   * [class@RequestStream]) hold what the server sent there, `grpc-*`
   * names included. A missing status is `internal` (an unparsable one
   * `unknown`); an answer other than HTTP 200 gets the code of its HTTP
   * status, as gRPC specifies (404 `unimplemented`, 503 `unavailable`...).
   *
   * Set it before the first call.
   */
  properties[PROP_PROTOCOL] =
    g_param_spec_enum ("protocol", NULL, NULL, CP_TYPE_PROTOCOL, CP_PROTOCOL_CONNECT,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpChannel::span-finished:
   * @channel: the channel
   * @span: the finished client span of a call
   *
   * Emitted once for every call that carried a trace (see
   * [property@Channel:tracing]) when it is over, with its client span (all
   * its attempts), in the context the call completes in (the caller's
   * thread-default context). Export it to a tracing system from here
   * (docs/engine.md, "Tracing").
   */
  span_finished_signal =
    g_signal_new ("span-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                  CP_TYPE_SPAN | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_channel_init (CpChannel *self)
{
  g_mutex_init (&self->headers_lock);
  self->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  self->codec = CP_CODEC_PROTO;
  self->compression = CP_COMPRESSION_IDENTITY;
  self->timeout_ms = DEFAULT_TIMEOUT_MS;
  self->max_receive_size = DEFAULT_MAX_RECEIVE_SIZE;
  cp_retry_budget_init (&self->retry_budget);
}

/**
 * cp_channel_new:
 * @base_url: the server's URL: `http://host:port`, `https://host:port` or
 *   `unix:/path/to/socket`
 * @error: return location for a [struct@GLib.Error]
 *
 * Creates a channel to the server at @base_url. Nothing is connected yet.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Channel], or %NULL if @base_url is
 *   invalid
 */
CpChannel *
cp_channel_new (const char  *base_url,
                GError     **error)
{
  g_autoptr(CpChannel) channel = NULL;

  g_return_val_if_fail (base_url != NULL, NULL);

  channel = g_object_new (CP_TYPE_CHANNEL, "base-url", base_url, NULL);
  if (channel->setup_error != NULL)
    {
      g_propagate_error (error, g_error_copy (channel->setup_error));
      return NULL;
    }
  return g_steal_pointer (&channel);
}

/**
 * cp_channel_new_in_process:
 * @server: a [class@ConnectPlugin.RpcServer]
 *
 * Creates a channel that calls @server directly, without sockets or HTTP
 * parsing: requests are handed to the server as in-process exchanges.
 * Create the channel in the [struct@GLib.MainContext] the server runs in (its
 * thread-default one when it was created); calls may then be made from any
 * context, and results come back where each call was made.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.Channel]
 */
CpChannel *
cp_channel_new_in_process (CpRpcServer *server)
{
  g_return_val_if_fail (CP_IS_RPC_SERVER (server), NULL);

  return g_object_new (CP_TYPE_CHANNEL, "server", server, NULL);
}

/**
 * cp_channel_set_header:
 * @channel: a [class@ConnectPlugin.Channel]
 * @name: a header name, e.g. `Authorization`
 * @value: (nullable): its value, or %NULL to remove the header
 *
 * Sets a request header that every call made on @channel from now on
 * carries (calls already running keep the headers they were sent with).
 * A header of the same name in a call's [class@ConnectPlugin.CallOptions]
 * replaces the channel's for that call. Protocol headers
 * ([func@ConnectPlugin.metadata_is_reserved]) are ignored, as in call
 * options.
 *
 * Unlike the channel's properties, this may be called at any time and
 * from any thread, also while other threads make calls: a token that is
 * renewed is updated in place this way.
 */
void
cp_channel_set_header (CpChannel  *channel,
                       const char *name,
                       const char *value)
{
  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (name != NULL && *name != '\0');

  if (cp_metadata_is_reserved (name))
    {
      g_debug ("Ignoring protocol header %s set on a channel", name);
      return;
    }
  g_mutex_lock (&channel->headers_lock);
  if (value != NULL)
    soup_message_headers_replace (channel->headers, name, value);
  else
    soup_message_headers_remove (channel->headers, name);
  g_mutex_unlock (&channel->headers_lock);
}

CpResponseStream *
cp_channel_call_method_server_stream (CpChannel     *channel,
                                      CpMethodInfo  *info,
                                      CpMessage     *request,
                                      CpCallOptions *options)
{
  return cp_response_stream_new_internal (channel, cp_method_info_get_procedure (info), request,
                                          cp_method_info_get_output_type (info), options,
                                          cp_method_info_get_idempotency (info));
}

CpRequestStream *
cp_channel_call_method_request_stream (CpChannel     *channel,
                                       CpMethodInfo  *info,
                                       CpCallOptions *options)
{
  return cp_request_stream_new_internal (channel, cp_method_info_get_procedure (info),
                                         cp_method_info_get_kind (info),
                                         cp_method_info_get_output_type (info), options,
                                         cp_method_info_get_idempotency (info));
}

gboolean
cp_channel_get_method_only_paths (CpChannel *channel)
{
  return channel->method_only_paths;
}

void
cp_channel_add_headers (CpChannel          *channel,
                        SoupMessageHeaders *headers)
{
  SoupMessageHeadersIter iter;
  const char *name, *value;

  g_mutex_lock (&channel->headers_lock);
  soup_message_headers_iter_init (&iter, channel->headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    if (soup_message_headers_get_one (headers, name) == NULL)
      soup_message_headers_append (headers, name, value);
  g_mutex_unlock (&channel->headers_lock);
}

CpCodec
cp_channel_get_codec (CpChannel *channel)
{
  return channel->codec;
}

CpCompression
cp_channel_get_compression (CpChannel *channel)
{
  return channel->compression;
}

gint64
cp_channel_get_timeout_ms (CpChannel *channel)
{
  return channel->timeout_ms;
}

guint64
cp_channel_get_max_receive_size (CpChannel *channel)
{
  return channel->max_receive_size;
}

CpRpcServer *
cp_channel_get_server (CpChannel *channel)
{
  return channel->server;
}

GMainContext *
cp_channel_get_context (CpChannel *channel)
{
  return channel->context;
}

SoupSession *
cp_channel_get_session (CpChannel *channel)
{
  return channel->session;
}

SoupSession *
cp_channel_get_sync_session (CpChannel *channel)
{
  return channel->sync_session;
}

GTlsCertificate *
cp_channel_get_tls_certificate (CpChannel *channel)
{
  return channel->tls_certificate;
}

char *
cp_channel_dup_http_base (CpChannel *channel)
{
  char *base;

  g_mutex_lock (&channel->headers_lock);
  base = g_strdup (channel->http_base);
  g_mutex_unlock (&channel->headers_lock);
  return base;
}

char *
cp_channel_dup_soup_base (CpChannel *channel)
{
  char *base = cp_channel_dup_http_base (channel);

  /* Our proxy made the TLS connection: libsoup speaks plain HTTP on it. */
  if (channel->tls_connectable != NULL && g_str_has_prefix (base, "https://"))
    memmove (base + 4, base + 5, strlen (base + 5) + 1);
  return base;
}

gboolean
cp_channel_rebase (CpChannel   *channel,
                   const char  *base_url,
                   GError     **error)
{
  g_autoptr(GUri) uri = g_uri_parse (base_url, G_URI_FLAGS_NONE, NULL);
  char *base;
  gsize len;

  if (channel->session == NULL || uri == NULL ||
      (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 &&
       g_strcmp0 (g_uri_get_scheme (uri), "https") != 0) ||
      g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "invalid URL \"%s\"", base_url);
      return FALSE;
    }
  if (channel->tls_connectable != NULL &&
      !cp_tls_connectable_set_url (channel->tls_connectable, uri))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "a channel pinned to its TLS database moves only to another "
                   "https://IP-address URL, not \"%s\"", base_url);
      return FALSE;
    }
  base = g_strdup (base_url);
  len = strlen (base);
  while (len > 0 && base[len - 1] == '/')
    base[--len] = '\0';
  g_mutex_lock (&channel->headers_lock);
  g_free (channel->http_base);
  channel->http_base = base;
  g_mutex_unlock (&channel->headers_lock);
  return TRUE;
}

const GError *
cp_channel_get_setup_error (CpChannel *channel)
{
  return channel->setup_error;
}

/**
 * cp_channel_set_http_version:
 * @channel: a [class@ConnectPlugin.Channel]
 * @version: the HTTP version of the calls
 *
 * Sets [property@Channel:http-version]; before the first call.
 */
void
cp_channel_set_http_version (CpChannel     *channel,
                             CpHttpVersion  version)
{
  g_return_if_fail (CP_IS_CHANNEL (channel));

  g_object_set (channel, "http-version", version, NULL);
}

/**
 * cp_channel_get_http_version:
 * @channel: a [class@ConnectPlugin.Channel]
 *
 * Gets the HTTP version the channel's calls go over.
 *
 * Returns: the channel's [property@Channel:http-version]
 */
CpHttpVersion
cp_channel_get_http_version (CpChannel *channel)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), CP_HTTP_VERSION_DEFAULT);

  return channel->http_version;
}

/**
 * cp_channel_set_protocol:
 * @channel: a [class@ConnectPlugin.Channel]
 * @protocol: the RPC protocol of the calls
 *
 * Sets [property@Channel:protocol]; before the first call.
 */
void
cp_channel_set_protocol (CpChannel  *channel,
                         CpProtocol  protocol)
{
  g_return_if_fail (CP_IS_CHANNEL (channel));

  g_object_set (channel, "protocol", protocol, NULL);
}

/**
 * cp_channel_get_protocol:
 * @channel: a [class@ConnectPlugin.Channel]
 *
 * Gets the RPC protocol the channel's calls speak.
 *
 * Returns: the channel's [property@Channel:protocol]
 */
CpProtocol
cp_channel_get_protocol (CpChannel *channel)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), CP_PROTOCOL_CONNECT);

  return channel->protocol;
}

CpH2Client *
cp_channel_get_h2_client (CpChannel *channel)
{
  CpH2Client *client;

  if (channel->http_version != CP_HTTP_VERSION_HTTP_2 || channel->session == NULL)
    return NULL;
  g_mutex_lock (&channel->headers_lock);
  if (channel->h2_client == NULL)
    channel->h2_client = cp_h2_client_new (channel, channel->connectable, channel->direct);
  client = channel->h2_client;
  g_mutex_unlock (&channel->headers_lock);
  return client;
}

GTlsDatabase *
cp_channel_get_tls_database (CpChannel *channel)
{
  return channel->tls_database;
}
