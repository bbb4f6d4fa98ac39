/* cp-channel.c: CpChannel, the Connect client engine: the channel object
 * and its transport, unary calls (async and sync), and the entry points of
 * the streaming calls. Its other units: cp-call-settings.c,
 * cp-channel-exchange.c, cp-stream-decoder.c, cp-channel-util.c and the
 * stream objects (see cp-channel-private.h)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gio/gunixsocketaddress.h>

#include "cp-channel.h"
#include "cp-channel-private.h"
#include "cp-call-options-private.h"
#include "cp-call-settings-private.h"
#include "cp-circuit-breaker-private.h"
#include "cp-channel-exchange-private.h"
#include "cp-channel-util-private.h"
#include "cp-request-stream-private.h"
#include "cp-response-stream-private.h"
#include "cp-enum-types.h"
#include "cp-error.h"
#include "cp-error-private.h"
#include "cp-base64-private.h"
#include "cp-compression.h"
#include "cp-metadata.h"

/* Cap on the body of a unary error response we are willing to buffer. */
#define ERROR_BODY_LIMIT (1024 * 1024)
/* Defaults of CpChannel:timeout-ms (the wire contract's RPC timeout, as
 * CpClient's call-timeout-ms) and CpChannel:max-receive-size (as servers'). */
#define DEFAULT_TIMEOUT_MS       30000
#define DEFAULT_MAX_RECEIVE_SIZE (4 * 1024 * 1024)

/**
 * CpChannel:
 *
 * The client side of the Connect protocol: makes unary, server-streaming
 * and client-streaming calls to one server.
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
 * [method@ConnectPlugin.Channel.set_header] and the
 * [property@Channel:circuit-breaker] are the exception: they are guarded
 * by a lock and may change at any time, from any thread.
 */
struct _CpChannel
{
  GObject parent_instance;

  char *base_url;
  char *http_base;       /* "http://host:port[/prefix]", no trailing '/' */
  CpRpcServer *server;   /* in-process */
  CpCodec codec;
  CpCompression compression;
  gint64 timeout_ms;
  guint64 max_receive_size;
  GTlsDatabase *tls_database;

  SoupSession *session;
  SoupSession *sync_session;    /* for cp_channel_call_sync () */
  GMainContext *context; /* construction context; the server's for in-process */
  GError *setup_error;

  /* cp_channel_set_header() and cp_channel_rebase() may run in any thread
   * while calls are being built in others: the headers and http_base are
   * only touched under the lock once constructed. */
  GMutex headers_lock;
  SoupMessageHeaders *headers;
  gboolean method_only_paths;
  /* Replaceable at any time, from any thread: under headers_lock too. */
  CpCircuitBreaker *circuit_breaker;
};

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
  PROP_METHOD_ONLY_PATHS,
  PROP_CIRCUIT_BREAKER,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ------------------------------------------------------------------------ */
/* Unary calls                                                               */

typedef struct {
  CpCallOptions *options;
  CpCallSettings settings;
  GType response_type;
  CpChannelExchange *exchange;
  GByteArray *body;
  gsize body_limit;
  gboolean body_truncated;
  CpCompression response_encoding;
  CpChannelAdmission admission;
} UnaryData;

static void
unary_data_free (UnaryData *data)
{
  cp_channel_admission_clear (&data->admission);
  g_clear_object (&data->options);
  cp_call_settings_clear (&data->settings);
  g_clear_pointer (&data->exchange, cp_channel_exchange_unref);
  g_clear_pointer (&data->body, g_byte_array_unref);
  g_free (data);
}

/* Completes the task: @error (transfer full) is a transport error, or NULL
 * to decode the received response. */
static void
unary_complete (GTask  *task,
                GError *error)
{
  UnaryData *data = g_task_get_task_data (task);
  CpChannelExchange *exchange = data->exchange;
  SoupMessageHeaders *response = cp_channel_exchange_get_response_headers (exchange);
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(SoupMessageHeaders) trailers = NULL;
  g_autoptr(GBytes) body = NULL;
  guint status = cp_channel_exchange_get_status (exchange);
  CpMessage *message = NULL;

  if (response != NULL)
    {
      headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      cp_metadata_split_trailers (response, headers, trailers);
    }
  if (data->options != NULL)
    cp_call_options_set_response (data->options, headers, trailers);

  if (error == NULL)
    body = g_byte_array_free_to_bytes (g_steal_pointer (&data->body));

  if (error == NULL && status != SOUP_STATUS_OK)
    {
      g_autofree char *type = cp_channel_media_type (response);
      CpCompression encoding = CP_COMPRESSION_IDENTITY;
      g_autoptr(GBytes) json = NULL;

      if (!data->body_truncated &&
          g_strcmp0 (type, "application/json") == 0 &&
          cp_channel_parse_encoding (response, "Content-Encoding", &encoding, &error))
        {
          if (encoding != CP_COMPRESSION_IDENTITY && g_bytes_get_size (body) > 0)
            json = cp_decompress (encoding, body, ERROR_BODY_LIMIT, NULL);
          else
            json = g_bytes_ref (body);
        }
      if (error == NULL)
        error = cp_error_from_json (json, status, cp_channel_exchange_get_reason (exchange));
    }
  else if (error == NULL)
    {
      if (data->response_encoding != CP_COMPRESSION_IDENTITY && g_bytes_get_size (body) > 0)
        {
          GBytes *plain = cp_decompress (data->response_encoding, body,
                                         data->settings.max_receive_size, &error);

          if (plain != NULL)
            {
              g_bytes_unref (body);
              body = plain;
            }
          else
            error = cp_channel_ensure_cp_error (error, CP_ERROR_INVALID_ARGUMENT);
        }
      if (error == NULL)
        message = cp_channel_decode_message (data->response_type, data->settings.codec, body, &error);
    }

  cp_channel_admission_settle (&data->admission, error);
  if (error != NULL)
    {
      cp_channel_error_set_metadata (error, headers, trailers);
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, message, g_object_unref);
}

/* Validates a 200 response head; FALSE with error when unusable. */
static gboolean
unary_check_head (UnaryData          *data,
                  SoupMessageHeaders *headers,
                  GError            **error)
{
  g_autofree char *type = cp_channel_media_type (headers);
  const char *codec_name = cp_codec_to_string (data->settings.codec);

  if (type == NULL || !g_str_has_prefix (type, "application/"))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNKNOWN,
                   "unexpected response content type \"%s\"", type ? type : "");
      return FALSE;
    }
  if (g_strcmp0 (type + strlen ("application/"), codec_name) != 0)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "response content type \"%s\" does not match the request codec \"%s\"",
                   type, codec_name);
      return FALSE;
    }
  return cp_channel_parse_encoding (headers, "Content-Encoding", &data->response_encoding, error);
}

static void
unary_on_head (CpChannelExchange *exchange,
               gpointer           user_data)
{
  GTask *task = user_data;
  UnaryData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (cp_channel_exchange_get_status (exchange) == SOUP_STATUS_OK)
    {
      data->body_limit = data->settings.max_receive_size;
      if (!unary_check_head (data, cp_channel_exchange_get_response_headers (exchange), &error))
        {
          g_autoptr(GTask) keep = g_object_ref (task);

          cp_channel_exchange_close (exchange);
          unary_complete (keep, error);
        }
    }
  else
    data->body_limit = ERROR_BODY_LIMIT;
}

static void
unary_on_chunk (CpChannelExchange *exchange,
                GBytes            *chunk,
                gpointer           user_data)
{
  GTask *task = user_data;
  UnaryData *data = g_task_get_task_data (task);
  gsize size = g_bytes_get_size (chunk);

  if (data->body_limit > 0 && data->body->len + size > data->body_limit)
    {
      g_autoptr(GTask) keep = g_object_ref (task);

      cp_channel_exchange_close (exchange);
      if (cp_channel_exchange_get_status (exchange) == SOUP_STATUS_OK)
        unary_complete (keep, g_error_new (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                                           "the response message is larger than the limit of %"
                                           G_GSIZE_FORMAT " bytes", data->body_limit));
      else
        {
          data->body_truncated = TRUE;
          unary_complete (keep, NULL);
        }
      return;
    }
  g_byte_array_append (data->body, g_bytes_get_data (chunk, NULL), size);
}

static void
unary_on_end (CpChannelExchange *exchange,
              const GError      *error,
              gpointer           user_data)
{
  unary_complete (user_data, error ? g_error_copy (error) : NULL);
}

static const CpChannelExchangeCallbacks unary_callbacks = {
  unary_on_head,
  unary_on_chunk,
  unary_on_end,
};

/* ?connect=v1&base64=1&compression=gzip&encoding=proto&message=... */
static char *
build_get_query (CpCallSettings *settings,
                 GBytes         *payload,
                 gboolean        compressed)
{
  GString *query = g_string_new ("?connect=v1");
  gboolean binary = settings->codec != CP_CODEC_JSON || compressed;

  if (binary)
    g_string_append (query, "&base64=1");
  if (compressed)
    g_string_append_printf (query, "&compression=%s",
                            cp_compression_to_string (settings->compression));
  g_string_append_printf (query, "&encoding=%s", cp_codec_to_string (settings->codec));
  g_string_append (query, "&message=");
  if (binary)
    {
      gsize len;
      const guint8 *bytes = g_bytes_get_data (payload, &len);
      g_autofree char *text = cp_base64_url_encode_unpadded (bytes, len);

      g_string_append (query, text);
    }
  else
    {
      gsize len;
      const char *data = g_bytes_get_data (payload, &len);
      g_autofree char *text = g_strndup (data, len);
      g_autofree char *escaped = g_uri_escape_string (text, NULL, FALSE);

      g_string_append (query, escaped);
    }
  return g_string_free (query, FALSE);
}

static void call_start (CpChannel *channel, const char *procedure, CpMessage *request,
                        GType response_type, CpCallOptions *options, GCancellable *cancellable,
                        gboolean sync, GAsyncReadyCallback callback, gpointer user_data);

/**
 * cp_channel_call_async:
 * @channel: a [class@ConnectPlugin.Channel]
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Get`
 * @request: the request message
 * @response_type: the [alias@GObject.Type] of the response message (a [class@ConnectPlugin.Message] subclass)
 * @options: (nullable): per-call options; their response headers and
 *   trailers are filled in when the call completes
 * @cancellable: (nullable): a [class@Gio.Cancellable]; cancelling fails the call with
 *   %G_IO_ERROR_CANCELLED and aborts its HTTP exchange
 * @callback: (scope async): called when the call completes, in the
 *   thread-default main context of the caller
 * @user_data: (closure): data for @callback
 *
 * Makes a unary call. The deadline (from @options or the channel's
 * [property@Channel:timeout-ms], 30 s unless set) is enforced locally and
 * sent as `Connect-Timeout-Ms`.
 *
 * When the channel's [property@Channel:circuit-breaker] is open, the call
 * fails with `unavailable` ("circuit breaker is open") without sending
 * anything; @callback is still called from the main loop, never from
 * within this function. Otherwise the breaker hears the call's outcome.
 */
void
cp_channel_call_async (CpChannel           *channel,
                       const char          *procedure,
                       CpMessage           *request,
                       GType                response_type,
                       CpCallOptions       *options,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  call_start (channel, procedure, request, response_type, options, cancellable, FALSE,
              callback, user_data);
}

static void
call_start (CpChannel           *channel,
            const char          *procedure,
            CpMessage           *request,
            GType                response_type,
            CpCallOptions       *options,
            GCancellable        *cancellable,
            gboolean             sync,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autofree char *path = NULL;
  g_autofree char *content_type = NULL;
  GError *error = NULL;
  UnaryData *data;
  gboolean compressed = FALSE;
  gboolean use_get;

  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (procedure != NULL && procedure[0] == '/');
  g_return_if_fail (CP_IS_MESSAGE (request));
  g_return_if_fail (g_type_is_a (response_type, CP_TYPE_MESSAGE));
  g_return_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (channel, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_channel_call_async);
  g_task_set_name (task, "[connectplugin] unary call");
  /* Cancellation is reported (G_IO_ERROR_CANCELLED) by the call itself. */
  g_task_set_check_cancellable (task, FALSE);
  data = g_new0 (UnaryData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) unary_data_free);
  if (options != NULL)
    cp_call_options_set_response (options, NULL, NULL);
  /* First of all: an open circuit fails the call before any work. */
  if (!cp_channel_admit (channel, options, &data->admission, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  data->options = options ? g_object_ref (options) : NULL;
  data->response_type = response_type;
  data->body = g_byte_array_new ();
  cp_call_settings_init (&data->settings, channel, options, TRUE);

  payload = cp_message_serialize (request, data->settings.codec, &error);
  if (payload == NULL)
    {
      g_task_return_error (task, cp_channel_ensure_cp_error (error, CP_ERROR_INTERNAL));
      return;
    }
  /* Even an empty message is compressed: a server may insist on the
   * negotiated encoding (the conformance suite's reference server does). */
  if (data->settings.compression != CP_COMPRESSION_IDENTITY)
    {
      GBytes *c = cp_compress (data->settings.compression, payload, &error);

      if (c == NULL)
        {
          g_task_return_error (task, cp_channel_ensure_cp_error (error, CP_ERROR_INTERNAL));
          return;
        }
      g_bytes_unref (payload);
      payload = c;
      compressed = TRUE;
    }

  use_get = data->settings.use_get;
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  if (use_get)
    {
      g_autofree char *query = build_get_query (&data->settings, payload, compressed);

      path = g_strconcat (procedure, query, NULL);
    }
  else
    {
      path = g_strdup (procedure);
      content_type = g_strconcat ("application/", cp_codec_to_string (data->settings.codec), NULL);
      soup_message_headers_append (headers, "Content-Type", content_type);
      soup_message_headers_append (headers, "Connect-Protocol-Version", "1");
      if (compressed)
        soup_message_headers_append (headers, "Content-Encoding",
                                     cp_compression_to_string (data->settings.compression));
    }
  soup_message_headers_append (headers, "Accept-Encoding", "gzip");
  cp_headers_copy_into (headers, data->settings.metadata);

  data->exchange = cp_channel_exchange_new (channel, use_get ? "GET" : "POST", path, headers,
                                            use_get ? NULL : payload, data->settings.deadline,
                                            cancellable, &unary_callbacks,
                                            g_object_ref (task), g_object_unref);
  if (sync)
    cp_channel_exchange_set_sync_pool (data->exchange);
  cp_channel_exchange_start (data->exchange);
}

/**
 * cp_channel_call_finish:
 * @channel: a [class@ConnectPlugin.Channel]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * Finishes a call started with [method@ConnectPlugin.Channel.call_async].
 *
 * Returns: (transfer full): the response message, or %NULL on error
 */
CpMessage *
cp_channel_call_finish (CpChannel     *channel,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);
  g_return_val_if_fail (g_task_is_valid (result, channel), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct {
  GAsyncResult *result;
  gboolean done;
  gboolean guard_expired;
} SyncData;

/* Bound on the wait for libsoup to let go of a finished call: normally one
 * iteration. libsoup 3.2 does not finish a cancelled message still queued
 * for a connection slot (all max-conns-per-host busy) until a slot frees;
 * such a message holds no connection, so the call need not wait for it. */
#define SYNC_RELEASE_GUARD_MS 1000

static void
sync_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  SyncData *data = user_data;

  data->result = g_object_ref (result);
  data->done = TRUE;
}

static gboolean
on_sync_release_guard (gpointer user_data)
{
  SyncData *data = user_data;

  data->guard_expired = TRUE;
  return G_SOURCE_REMOVE;
}

/* libsoup 3.2 finishes an asynchronous message (unqueues it and hands its
 * connection back to the pool) from the session's queue source in the
 * context the message was sent from, an iteration after its body was
 * closed; no other context ever does (soup-session.c, async_run_queue()
 * only collects the items of the thread-default context). The result of a
 * call comes first, so a sync call keeps running its private context until
 * then: leaving earlier strands the connection "in use" for good, and once
 * max-conns-per-host of them are stranded the next call waits for ever. */
static void
sync_wait_released (GMainContext *context,
                    SyncData     *data)
{
  UnaryData *unary = g_task_get_task_data (G_TASK (data->result));
  GSource *guard;

  if (unary->exchange == NULL || !cp_channel_exchange_transport_busy (unary->exchange))
    return;
  guard = g_timeout_source_new (SYNC_RELEASE_GUARD_MS);
  g_source_set_callback (guard, on_sync_release_guard, data, NULL);
  g_source_set_static_name (guard, "[connectplugin] sync call release guard");
  g_source_attach (guard, context);
  while (cp_channel_exchange_transport_busy (unary->exchange) && !data->guard_expired)
    g_main_context_iteration (context, TRUE);
  if (data->guard_expired)
    g_debug ("libsoup did not release a finished sync call in %d ms", SYNC_RELEASE_GUARD_MS);
  g_source_destroy (guard);
  g_source_unref (guard);
}

/* Whether @context is this thread's: owned by it, or its thread-default. */
static gboolean
server_context_is_ours (GMainContext *context)
{
  g_autoptr(GMainContext) thread_default = g_main_context_ref_thread_default ();

  return g_main_context_is_owner (context) || thread_default == context;
}

/**
 * cp_channel_call_sync:
 * @channel: a [class@ConnectPlugin.Channel]
 * @procedure: the procedure, e.g. `/kv.v1.KVService/Get`
 * @request: the request message
 * @response_type: the [alias@GObject.Type] of the response message
 * @options: (nullable): per-call options
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * Makes a unary call and blocks until it completes, running a main context
 * of its own meanwhile (as GIO's synchronous calls do), so no other source
 * of the caller's context is dispatched. No main loop needs to run: when
 * the call returns, its HTTP connection is back in the channel's pool, so
 * a loop of sync calls keeps reusing one connection. Blocking calls have a
 * pool of their own: they never wait for a connection that an asynchronous
 * call of the context they block is opening.
 *
 * For an in-process channel whose server runs in the calling thread's
 * context, that context is iterated instead so that the server can answer.
 *
 * Returns: (transfer full): the response message, or %NULL on error
 */
CpMessage *
cp_channel_call_sync (CpChannel      *channel,
                      const char     *procedure,
                      CpMessage      *request,
                      GType           response_type,
                      CpCallOptions  *options,
                      GCancellable   *cancellable,
                      GError        **error)
{
  g_autoptr(GMainContext) context = NULL;
  SyncData data = { NULL, FALSE, FALSE };
  CpMessage *message;

  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  if (channel->server != NULL && server_context_is_ours (channel->context) &&
      g_main_context_acquire (channel->context))
    context = g_main_context_ref (channel->context);
  else
    {
      context = g_main_context_new ();
      g_main_context_acquire (context);
    }

  g_main_context_push_thread_default (context);
  call_start (channel, procedure, request, response_type, options, cancellable, TRUE,
              sync_done, &data);
  while (!data.done)
    g_main_context_iteration (context, TRUE);
  sync_wait_released (context, &data);
  g_main_context_pop_thread_default (context);
  g_main_context_release (context);

  message = cp_channel_call_finish (channel, data.result, error);
  g_object_unref (data.result);
  return message;
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

  return cp_response_stream_new_internal (channel, procedure, request, response_type, options);
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

  return cp_request_stream_new_internal (channel, procedure, response_type, options);
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

  return cp_request_stream_new_internal (channel, procedure, response_type, options);
}

/* ------------------------------------------------------------------------ */
/* The channel object                                                        */

static SoupSession *
new_session (CpChannel          *self,
             GSocketConnectable *connectable)
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

  soup_session_remove_feature_by_type (session, SOUP_TYPE_CONTENT_DECODER);
  soup_session_remove_feature_by_type (session, SOUP_TYPE_AUTH_MANAGER);
  return session;
}

static gboolean
setup_http (CpChannel  *self,
            GError    **error)
{
  g_autoptr(GSocketConnectable) connectable = NULL;
  const char *url = self->base_url;

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
      self->http_base = g_strdup (url);
      len = strlen (self->http_base);
      while (len > 0 && self->http_base[len - 1] == '/')
        self->http_base[--len] = '\0';
    }

  self->session = new_session (self, connectable);
  self->sync_session = new_session (self, connectable);
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

  g_clear_object (&self->session);
  g_clear_object (&self->sync_session);
  g_clear_object (&self->server);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->circuit_breaker);
  g_clear_error (&self->setup_error);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->headers, soup_message_headers_unref);
  g_mutex_clear (&self->headers_lock);
  g_free (self->base_url);
  g_free (self->http_base);

  G_OBJECT_CLASS (cp_channel_parent_class)->finalize (object);
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
    case PROP_METHOD_ONLY_PATHS:
      g_value_set_boolean (value, self->method_only_paths);
      break;
    case PROP_CIRCUIT_BREAKER:
      g_value_take_object (value, cp_channel_dup_circuit_breaker (self));
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
      if (self->session != NULL)
        soup_session_set_tls_database (self->session, self->tls_database);
      if (self->sync_session != NULL)
        soup_session_set_tls_database (self->sync_session, self->tls_database);
      break;
    case PROP_METHOD_ONLY_PATHS:
      self->method_only_paths = g_value_get_boolean (value);
      break;
    case PROP_CIRCUIT_BREAKER:
      cp_channel_set_circuit_breaker (self, g_value_get_object (value));
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
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

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
   * Unary calls (asynchronous and blocking) ask when they start; a
   * server stream when its request is sent
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

  g_object_class_install_properties (object_class, N_PROPS, properties);
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

/**
 * cp_channel_set_circuit_breaker:
 * @channel: a [class@ConnectPlugin.Channel]
 * @breaker: (nullable): a [class@ConnectPlugin.CircuitBreaker], or %NULL for none
 *
 * Sets [property@Channel:circuit-breaker]: the calls made from now on ask
 * @breaker before they send anything and tell it their outcome. May be
 * called at any time, from any thread.
 */
void
cp_channel_set_circuit_breaker (CpChannel        *channel,
                                CpCircuitBreaker *breaker)
{
  CpCircuitBreaker *old;

  g_return_if_fail (CP_IS_CHANNEL (channel));
  g_return_if_fail (breaker == NULL || CP_IS_CIRCUIT_BREAKER (breaker));

  g_mutex_lock (&channel->headers_lock);
  old = channel->circuit_breaker;
  channel->circuit_breaker = breaker != NULL ? g_object_ref (breaker) : NULL;
  g_mutex_unlock (&channel->headers_lock);
  if (old != breaker)
    g_object_notify_by_pspec (G_OBJECT (channel), properties[PROP_CIRCUIT_BREAKER]);
  g_clear_object (&old);
}

/**
 * cp_channel_get_circuit_breaker:
 * @channel: a [class@ConnectPlugin.Channel]
 *
 * Gets [property@Channel:circuit-breaker]. When another thread may
 * replace it meanwhile, read the property instead (it gives a reference).
 *
 * Returns: (transfer none) (nullable): the channel's circuit breaker
 */
CpCircuitBreaker *
cp_channel_get_circuit_breaker (CpChannel *channel)
{
  CpCircuitBreaker *breaker;

  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  g_mutex_lock (&channel->headers_lock);
  breaker = channel->circuit_breaker;
  g_mutex_unlock (&channel->headers_lock);
  return breaker;
}

/* ------------------------------------------------------------------------ */
/* For the channel's other units (cp-channel-private.h)                      */

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

char *
cp_channel_dup_http_base (CpChannel *channel)
{
  char *base;

  g_mutex_lock (&channel->headers_lock);
  base = g_strdup (channel->http_base);
  g_mutex_unlock (&channel->headers_lock);
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

CpCircuitBreaker *
cp_channel_dup_circuit_breaker (CpChannel *channel)
{
  CpCircuitBreaker *breaker;

  g_mutex_lock (&channel->headers_lock);
  breaker = channel->circuit_breaker != NULL ? g_object_ref (channel->circuit_breaker) : NULL;
  g_mutex_unlock (&channel->headers_lock);
  return breaker;
}

gboolean
cp_channel_admit (CpChannel           *channel,
                  CpCallOptions       *options,
                  CpChannelAdmission  *admission,
                  GError             **error)
{
  g_autoptr(CpCircuitBreaker) breaker = NULL;

  g_assert (admission->breaker == NULL);
  if (cp_call_options_get_circuit_breaker_exempt (options))
    return TRUE;
  breaker = cp_channel_dup_circuit_breaker (channel);
  if (breaker == NULL)
    return TRUE;
  admission->ticket = cp_circuit_breaker_admit (breaker, error);
  if (admission->ticket == 0)
    return FALSE;
  admission->breaker = g_steal_pointer (&breaker);
  return TRUE;
}

void
cp_channel_admission_settle (CpChannelAdmission *admission,
                             const GError       *outcome)
{
  g_autoptr(CpCircuitBreaker) breaker = g_steal_pointer (&admission->breaker);

  if (breaker != NULL)
    cp_circuit_breaker_settle (breaker, admission->ticket, outcome);
}

void
cp_channel_admission_clear (CpChannelAdmission *admission)
{
  g_autoptr(CpCircuitBreaker) breaker = g_steal_pointer (&admission->breaker);

  if (breaker != NULL)
    cp_circuit_breaker_abandon (breaker, admission->ticket);
}
