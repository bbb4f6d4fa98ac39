/* cp-call-options.c: per-call settings, and what a call brought back
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-call-options-private.h"
#include "cp-enum-types.h"

/**
 * CpCallOptions:
 *
 * Settings for one RPC made through a [class@Channel], and what the call
 * brought back besides its message: the response headers and trailers.
 *
 * Settings left at their defaults fall back to the channel's: a timeout of
 * 0 means "the channel's default timeout", and the codec and compression
 * are the channel's unless set here. Request metadata is added to
 * [method@CallOptions.get_request_headers]; protocol headers
 * (`Content-Type`, `Connect-*`, ...) added there are ignored.
 *
 * One [class@ConnectPlugin.CallOptions] describes one call at a time: the response headers and
 * trailers are replaced when a call made with it completes (also when it
 * fails).
 *
 * Options also carry what applies to one call only: interceptors
 * ([method@ConnectPlugin.CallOptions.add_interceptor], run after the
 * client's and the channel's), a [class@RetryPolicy] that replaces the
 * channel's, and whether the call may be sent twice
 * ([property@CallOptions:idempotent]).
 */
struct _CpCallOptions
{
  GObject parent_instance;

  gint64 timeout_ms;
  gint64 deadline;
  CpCodec codec;
  CpCompression compression;
  guint codec_set : 1;
  guint compression_set : 1;
  guint use_get : 1;
  guint circuit_breaker_exempt : 1;
  guint idempotent : 1;
  CpRetryPolicy *retry_policy;
  GPtrArray *interceptors;      /* CpClientInterceptor; replaced on add */
  CpSpanContext *parent_span;   /* NULL: the thread-default span */
  GCancellable *cancellable;    /* for stream calls, which take none */

  SoupMessageHeaders *request_headers;
  SoupMessageHeaders *response_headers;
  SoupMessageHeaders *response_trailers;
};

G_DEFINE_FINAL_TYPE (CpCallOptions, cp_call_options, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_TIMEOUT_MS,
  PROP_DEADLINE,
  PROP_CODEC,
  PROP_COMPRESSION,
  PROP_USE_GET,
  PROP_REQUEST_HEADERS,
  PROP_RESPONSE_HEADERS,
  PROP_RESPONSE_TRAILERS,
  PROP_IDEMPOTENT,
  PROP_RETRY_POLICY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
cp_call_options_finalize (GObject *object)
{
  CpCallOptions *self = CP_CALL_OPTIONS (object);

  g_clear_pointer (&self->request_headers, soup_message_headers_unref);
  g_clear_pointer (&self->response_headers, soup_message_headers_unref);
  g_clear_pointer (&self->response_trailers, soup_message_headers_unref);
  g_clear_object (&self->retry_policy);
  g_clear_pointer (&self->interceptors, g_ptr_array_unref);
  g_clear_pointer (&self->parent_span, cp_span_context_unref);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (cp_call_options_parent_class)->finalize (object);
}

static void
cp_call_options_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  CpCallOptions *self = CP_CALL_OPTIONS (object);

  switch (prop_id)
    {
    case PROP_TIMEOUT_MS:
      g_value_set_int64 (value, self->timeout_ms);
      break;
    case PROP_DEADLINE:
      g_value_set_int64 (value, self->deadline);
      break;
    case PROP_CODEC:
      g_value_set_enum (value, self->codec);
      break;
    case PROP_COMPRESSION:
      g_value_set_enum (value, self->compression);
      break;
    case PROP_USE_GET:
      g_value_set_boolean (value, self->use_get);
      break;
    case PROP_REQUEST_HEADERS:
      g_value_set_boxed (value, self->request_headers);
      break;
    case PROP_RESPONSE_HEADERS:
      g_value_set_boxed (value, self->response_headers);
      break;
    case PROP_RESPONSE_TRAILERS:
      g_value_set_boxed (value, self->response_trailers);
      break;
    case PROP_IDEMPOTENT:
      g_value_set_boolean (value, self->idempotent);
      break;
    case PROP_RETRY_POLICY:
      g_value_set_object (value, self->retry_policy);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_call_options_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  CpCallOptions *self = CP_CALL_OPTIONS (object);

  switch (prop_id)
    {
    case PROP_TIMEOUT_MS:
      cp_call_options_set_timeout_ms (self, g_value_get_int64 (value));
      break;
    case PROP_DEADLINE:
      cp_call_options_set_deadline (self, g_value_get_int64 (value));
      break;
    case PROP_CODEC:
      cp_call_options_set_codec (self, g_value_get_enum (value));
      break;
    case PROP_COMPRESSION:
      cp_call_options_set_compression (self, g_value_get_enum (value));
      break;
    case PROP_USE_GET:
      cp_call_options_set_use_get (self, g_value_get_boolean (value));
      break;
    case PROP_IDEMPOTENT:
      cp_call_options_set_idempotent (self, g_value_get_boolean (value));
      break;
    case PROP_RETRY_POLICY:
      cp_call_options_set_retry_policy (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_call_options_class_init (CpCallOptionsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = cp_call_options_finalize;
  object_class->get_property = cp_call_options_get_property;
  object_class->set_property = cp_call_options_set_property;

  /**
   * CpCallOptions:timeout-ms:
   *
   * The call's timeout in milliseconds: 0 uses the channel's default
   * ([property@Channel:timeout-ms] for unary calls, none for streams),
   * -1 (or any negative value) means no timeout at all.
   */
  properties[PROP_TIMEOUT_MS] =
    g_param_spec_int64 ("timeout-ms", NULL, NULL,
                        -1, G_MAXINT64, 0,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:deadline:
   *
   * An absolute deadline on the g_get_monotonic_time() clock (microseconds),
   * 0 for none. Used to propagate a server handler's deadline
   * ([method@ConnectPlugin.Invocation.get_deadline]) to downstream calls; when both a
   * deadline and a timeout apply, the earlier one wins.
   */
  properties[PROP_DEADLINE] =
    g_param_spec_int64 ("deadline", NULL, NULL,
                        0, G_MAXINT64, 0,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:codec:
   *
   * The codec of the call; the channel's codec unless set.
   */
  properties[PROP_CODEC] =
    g_param_spec_enum ("codec", NULL, NULL,
                       CP_TYPE_CODEC, CP_CODEC_PROTO,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:compression:
   *
   * How the request messages are compressed; the channel's compression
   * unless set. Responses may always be gzip-compressed.
   */
  properties[PROP_COMPRESSION] =
    g_param_spec_enum ("compression", NULL, NULL,
                       CP_TYPE_COMPRESSION, CP_COMPRESSION_IDENTITY,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:use-get:
   *
   * Send a unary call as HTTP GET, with the message in the query string.
   * Only valid for methods declared `NO_SIDE_EFFECTS`: the caller (usually
   * generated code) asserts that the method allows it. Ignored for
   * streaming calls.
   */
  properties[PROP_USE_GET] =
    g_param_spec_boolean ("use-get", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:request-headers:
   *
   * Request metadata to send; add to it.
   */
  properties[PROP_REQUEST_HEADERS] =
    g_param_spec_boxed ("request-headers", NULL, NULL,
                        SOUP_TYPE_MESSAGE_HEADERS,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:response-headers:
   *
   * The response headers (leading metadata) of the last call made with
   * these options, without the `Trailer-` prefixed ones.
   */
  properties[PROP_RESPONSE_HEADERS] =
    g_param_spec_boxed ("response-headers", NULL, NULL,
                        SOUP_TYPE_MESSAGE_HEADERS,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:response-trailers:
   *
   * The trailing metadata of the last call made with these options.
   */
  properties[PROP_RESPONSE_TRAILERS] =
    g_param_spec_boxed ("response-trailers", NULL, NULL,
                        SOUP_TYPE_MESSAGE_HEADERS,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:idempotent:
   *
   * Whether the call may be sent twice, as a method declared
   * `idempotency_level = IDEMPOTENT` or `NO_SIDE_EFFECTS` may: its
   * [class@RetryPolicy] then retries it for its retryable codes. Generated
   * proxies know this from the proto and need not set it; calls made with
   * [method@ConnectPlugin.Channel.call_async] and friends do not know the
   * method and are not retried for their codes unless this is set.
   */
  properties[PROP_IDEMPOTENT] =
    g_param_spec_boolean ("idempotent", NULL, NULL,
                          FALSE,
                          G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpCallOptions:retry-policy:
   *
   * The [class@RetryPolicy] of the call, replacing the channel's
   * ([property@Channel:retry-policy]); %NULL (the default) for the
   * channel's. A policy with [property@RetryPolicy:max-attempts] 1 turns
   * retries off for the call.
   */
  properties[PROP_RETRY_POLICY] =
    g_param_spec_object ("retry-policy", NULL, NULL,
                         CP_TYPE_RETRY_POLICY,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_call_options_init (CpCallOptions *self)
{
  self->codec = CP_CODEC_PROTO;
  self->compression = CP_COMPRESSION_IDENTITY;
  self->request_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  self->response_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  self->response_trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
}

/**
 * cp_call_options_new:
 *
 * Creates call options with every setting at its default (the channel's).
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.CallOptions]
 */
CpCallOptions *
cp_call_options_new (void)
{
  return g_object_new (CP_TYPE_CALL_OPTIONS, NULL);
}

/**
 * cp_call_options_set_timeout_ms:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @timeout_ms: the timeout in milliseconds; 0 = the channel's default
 *   ([property@Channel:timeout-ms] for unary calls, none for streams),
 *   negative = no timeout
 *
 * Sets the call's timeout. The client enforces it itself and also sends it
 * to the server as `Connect-Timeout-Ms`.
 */
void
cp_call_options_set_timeout_ms (CpCallOptions *options,
                                gint64         timeout_ms)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));

  if (timeout_ms < 0)
    timeout_ms = -1;
  if (options->timeout_ms == timeout_ms)
    return;
  options->timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (options), properties[PROP_TIMEOUT_MS]);
}

/**
 * cp_call_options_get_timeout_ms:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets the timeout of calls made with these options.
 *
 * Returns: the timeout in milliseconds (0 = the channel's default, -1 = none)
 */
gint64
cp_call_options_get_timeout_ms (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), 0);

  return options->timeout_ms;
}

/**
 * cp_call_options_set_deadline:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @deadline: a g_get_monotonic_time() value in microseconds, 0 for none
 *
 * Sets an absolute deadline, e.g. the one of the server call being served
 * ([method@ConnectPlugin.Invocation.get_deadline]). A deadline that has already passed when
 * the call is made fails it with `deadline_exceeded` without sending
 * anything.
 */
void
cp_call_options_set_deadline (CpCallOptions *options,
                              gint64         deadline)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (deadline >= 0);

  if (options->deadline == deadline)
    return;
  options->deadline = deadline;
  g_object_notify_by_pspec (G_OBJECT (options), properties[PROP_DEADLINE]);
}

/**
 * cp_call_options_get_deadline:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets the absolute deadline of calls made with these options.
 *
 * Returns: the absolute deadline (monotonic microseconds), 0 for none
 */
gint64
cp_call_options_get_deadline (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), 0);

  return options->deadline;
}

/**
 * cp_call_options_set_codec:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @codec: the codec
 *
 * Sets the codec of the call, overriding the channel's.
 */
void
cp_call_options_set_codec (CpCallOptions *options,
                           CpCodec        codec)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));

  options->codec_set = TRUE;
  if (options->codec == codec)
    return;
  options->codec = codec;
  g_object_notify_by_pspec (G_OBJECT (options), properties[PROP_CODEC]);
}

/**
 * cp_call_options_get_codec:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets the codec calls made with these options use.
 *
 * Returns: the codec set with [method@ConnectPlugin.CallOptions.set_codec], or
 *   %CP_CODEC_PROTO when none was set
 */
CpCodec
cp_call_options_get_codec (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), CP_CODEC_PROTO);

  return options->codec;
}

/**
 * cp_call_options_set_compression:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @compression: the compression of request messages
 *
 * Sets how request messages are compressed, overriding the channel's.
 */
void
cp_call_options_set_compression (CpCallOptions *options,
                                 CpCompression  compression)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));

  options->compression_set = TRUE;
  if (options->compression == compression)
    return;
  options->compression = compression;
  g_object_notify_by_pspec (G_OBJECT (options), properties[PROP_COMPRESSION]);
}

/**
 * cp_call_options_get_compression:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets the compression of the requests of calls made with these options.
 *
 * Returns: the compression set with [method@ConnectPlugin.CallOptions.set_compression], or
 *   %CP_COMPRESSION_IDENTITY when none was set
 */
CpCompression
cp_call_options_get_compression (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), CP_COMPRESSION_IDENTITY);

  return options->compression;
}

/**
 * cp_call_options_set_use_get:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @use_get: whether to send a unary call as HTTP GET
 *
 * Sends a unary call as HTTP GET (`connect=v1&...&message=...`). Only for
 * methods declared `NO_SIDE_EFFECTS`; the server answers 405 otherwise.
 */
void
cp_call_options_set_use_get (CpCallOptions *options,
                             gboolean       use_get)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));

  use_get = !!use_get;
  if (options->use_get == (guint) use_get)
    return;
  options->use_get = use_get;
  g_object_notify_by_pspec (G_OBJECT (options), properties[PROP_USE_GET]);
}

/**
 * cp_call_options_get_use_get:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Whether unary calls with these options are sent as HTTP GET.
 *
 * Returns: whether unary calls are sent as HTTP GET
 */
gboolean
cp_call_options_get_use_get (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), FALSE);

  return options->use_get;
}

/**
 * cp_call_options_set_idempotent:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @idempotent: whether the call may be sent twice
 *
 * Sets [property@CallOptions:idempotent]: the caller asserts that the
 * method has no other effect when called twice, so that a
 * [class@RetryPolicy] may retry it for its codes.
 */
void
cp_call_options_set_idempotent (CpCallOptions *options,
                                gboolean       idempotent)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));

  idempotent = !!idempotent;
  if (options->idempotent == (guint) idempotent)
    return;
  options->idempotent = idempotent;
  g_object_notify_by_pspec (G_OBJECT (options), properties[PROP_IDEMPOTENT]);
}

/**
 * cp_call_options_get_idempotent:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets [property@CallOptions:idempotent].
 *
 * Returns: whether calls made with these options may be sent twice
 */
gboolean
cp_call_options_get_idempotent (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), FALSE);

  return options->idempotent;
}

/**
 * cp_call_options_set_retry_policy:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @policy: (nullable): a [class@ConnectPlugin.RetryPolicy], or %NULL for the
 *   channel's
 *
 * Sets [property@CallOptions:retry-policy].
 */
void
cp_call_options_set_retry_policy (CpCallOptions *options,
                                  CpRetryPolicy *policy)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (policy == NULL || CP_IS_RETRY_POLICY (policy));

  if (g_set_object (&options->retry_policy, policy))
    g_object_notify_by_pspec (G_OBJECT (options), properties[PROP_RETRY_POLICY]);
}

/**
 * cp_call_options_get_retry_policy:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets [property@CallOptions:retry-policy].
 *
 * Returns: (transfer none) (nullable): the call's retry policy, or %NULL
 *   for the channel's
 */
CpRetryPolicy *
cp_call_options_get_retry_policy (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), NULL);

  return options->retry_policy;
}

/**
 * cp_call_options_add_interceptor:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @interceptor: a [class@ConnectPlugin.ClientInterceptor]
 *
 * Appends @interceptor to the interceptors of the calls made with these
 * options. They run after the channel's (its [class@Client]'s first,
 * then its own), in the order they were added: they are the innermost
 * of the chain (see [class@ClientInterceptor]). Calls already made are not
 * affected.
 */
void
cp_call_options_add_interceptor (CpCallOptions       *options,
                                 CpClientInterceptor *interceptor)
{
  GPtrArray *chain;

  g_return_if_fail (CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (CP_IS_CLIENT_INTERCEPTOR (interceptor));

  /* A new array: calls under way keep the one they took. */
  chain = g_ptr_array_new_full ((options->interceptors ? options->interceptors->len : 0) + 1,
                                g_object_unref);
  for (guint i = 0; options->interceptors != NULL && i < options->interceptors->len; i++)
    g_ptr_array_add (chain, g_object_ref (options->interceptors->pdata[i]));
  g_ptr_array_add (chain, g_object_ref (interceptor));
  g_clear_pointer (&options->interceptors, g_ptr_array_unref);
  options->interceptors = chain;
}

/**
 * cp_call_options_get_request_headers:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * The request metadata; add headers to it before making the call. Binary
 * values go in keys ending in `-bin` (see [func@ConnectPlugin.metadata_append_binary]).
 *
 * Returns: (transfer none): the request headers
 */
SoupMessageHeaders *
cp_call_options_get_request_headers (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), NULL);

  return options->request_headers;
}

/**
 * cp_call_options_get_response_headers:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * The response headers (leading metadata) of the last completed call,
 * including a failed one; empty before.
 *
 * Returns: (transfer none): the response headers
 */
SoupMessageHeaders *
cp_call_options_get_response_headers (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), NULL);

  return options->response_headers;
}

/**
 * cp_call_options_get_response_trailers:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * The trailing metadata of the last completed call (unary: the
 * `Trailer-` headers with the prefix removed; streams: the EndStream
 * metadata), including a failed one; empty before.
 *
 * Returns: (transfer none): the response trailers
 */
SoupMessageHeaders *
cp_call_options_get_response_trailers (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), NULL);

  return options->response_trailers;
}

/* ---- private ---- */

gboolean
cp_call_options_get_codec_is_set (CpCallOptions *options)
{
  return options->codec_set;
}

void
cp_call_options_set_circuit_breaker_exempt (CpCallOptions *options,
                                            gboolean       exempt)
{
  options->circuit_breaker_exempt = exempt != FALSE;
}

gboolean
cp_call_options_get_circuit_breaker_exempt (CpCallOptions *options)
{
  return options != NULL && options->circuit_breaker_exempt;
}

GPtrArray *
cp_call_options_get_interceptors (CpCallOptions *options)
{
  return options != NULL ? options->interceptors : NULL;
}

gboolean
cp_call_options_get_compression_is_set (CpCallOptions *options)
{
  return options->compression_set;
}

static void
copy_header (const char *name,
             const char *value,
             gpointer    user_data)
{
  soup_message_headers_append (user_data, name, value);
}

void
cp_headers_copy_into (SoupMessageHeaders *dest,
                      SoupMessageHeaders *src)
{
  if (src != NULL)
    soup_message_headers_foreach (src, copy_header, dest);
}

void
cp_call_options_set_response (CpCallOptions      *options,
                              SoupMessageHeaders *headers,
                              SoupMessageHeaders *trailers)
{
  soup_message_headers_clear (options->response_headers);
  soup_message_headers_clear (options->response_trailers);
  cp_headers_copy_into (options->response_headers, headers);
  cp_headers_copy_into (options->response_trailers, trailers);
}

/**
 * cp_call_options_set_parent_span:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @parent: (nullable): the span the call continues, or %NULL for the
 *   thread-default one
 *
 * Makes the call continue the trace of @parent: it is sent a
 * `traceparent` of @parent's trace, whose parent is the call's own client
 * span. A handler that makes calls from a callback, after it returned,
 * passes [method@ConnectPlugin.Invocation.get_span_context] here; during
 * the handler itself the call's span is the thread-default one
 * ([func@ConnectPlugin.SpanContext.get_thread_default]) and calls continue
 * it without this. A `traceparent` in the request headers wins over both.
 */
void
cp_call_options_set_parent_span (CpCallOptions *options,
                                 CpSpanContext *parent)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));

  if (parent != NULL)
    cp_span_context_ref (parent);
  g_clear_pointer (&options->parent_span, cp_span_context_unref);
  options->parent_span = parent;
}

/**
 * cp_call_options_get_parent_span:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets the span set with [method@ConnectPlugin.CallOptions.set_parent_span].
 *
 * Returns: (transfer none) (nullable): the parent span, or %NULL
 */
CpSpanContext *
cp_call_options_get_parent_span (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), NULL);
  return options->parent_span;
}

/**
 * cp_call_options_set_cancellable:
 * @options: a [class@ConnectPlugin.CallOptions]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 *
 * Gives the stream calls made with @options a [class@Gio.Cancellable], as
 * the unary calls take one as a parameter: cancelling it cancels each
 * stream started with these options ([method@ConnectPlugin.ResponseStream.cancel],
 * [method@ConnectPlugin.RequestStream.cancel]; the stream closes with
 * %G_IO_ERROR_CANCELLED in its own context), from any thread; a stream
 * started with it already cancelled closes at once, without sending
 * anything. Unary calls use their own @cancellable parameter and ignore
 * this one.
 */
void
cp_call_options_set_cancellable (CpCallOptions *options,
                                 GCancellable  *cancellable)
{
  g_return_if_fail (CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  g_set_object (&options->cancellable, cancellable);
}

/**
 * cp_call_options_get_cancellable:
 * @options: a [class@ConnectPlugin.CallOptions]
 *
 * Gets the [class@Gio.Cancellable] set with
 * [method@ConnectPlugin.CallOptions.set_cancellable].
 *
 * Returns: (transfer none) (nullable): the cancellable
 */
GCancellable *
cp_call_options_get_cancellable (CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_CALL_OPTIONS (options), NULL);

  return options->cancellable;
}

typedef struct {
  GWeakRef target;
  GMainContext *context;
  void (*cancel) (gpointer target);
} CancelLink;

static void
cancel_link_free (gpointer data)
{
  CancelLink *link = data;

  g_weak_ref_clear (&link->target);
  g_main_context_unref (link->context);
  g_free (link);
}

typedef struct {
  GObject *target;
  void (*cancel) (gpointer target);
} CancelNow;

static gboolean
cancel_in_context (gpointer data)
{
  CancelNow *now = data;

  now->cancel (now->target);
  return G_SOURCE_REMOVE;
}

static void
cancel_now_free (gpointer data)
{
  CancelNow *now = data;

  g_object_unref (now->target);
  g_free (now);
}

/* Runs in the thread that cancels: the cancellation goes to the stream's
 * context. */
static void
on_options_cancelled (GCancellable *cancellable,
                      gpointer      data)
{
  CancelLink *link = data;
  GObject *target = g_weak_ref_get (&link->target);
  CancelNow *now;

  if (target == NULL)
    return;
  now = g_new0 (CancelNow, 1);
  now->target = target;
  now->cancel = link->cancel;
  g_main_context_invoke_full (link->context, G_PRIORITY_DEFAULT, cancel_in_context, now,
                              cancel_now_free);
}

gulong
cp_call_options_connect_cancel (CpCallOptions *options,
                                GObject       *target,
                                GMainContext  *context,
                                void         (*cancel) (gpointer target))
{
  CancelLink *link;

  if (options == NULL || options->cancellable == NULL)
    return 0;
  link = g_new0 (CancelLink, 1);
  g_weak_ref_init (&link->target, target);
  link->context = g_main_context_ref (context);
  link->cancel = cancel;
  /* Already cancelled: the callback runs now (and the id is 0). */
  return g_cancellable_connect (options->cancellable, G_CALLBACK (on_options_cancelled),
                                link, cancel_link_free);
}

void
cp_call_options_disconnect_cancel (CpCallOptions *options,
                                   gulong         id)
{
  if (options != NULL && options->cancellable != NULL && id != 0)
    g_cancellable_disconnect (options->cancellable, id);
}
