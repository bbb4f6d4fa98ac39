/* cp-proxy.c: base class of generated service proxies (client side)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-proxy.h"

#include "cp-channel-private.h"
#include "cp-error.h"

/**
 * CpProxy:
 *
 * The client side of one RPC service: the base class of the Proxy classes
 * protoc-gen-cp generates (`KvKVServiceProxy`), which add a typed
 * `…_call_<method>()` function per method.
 *
 * A proxy is a thin, stateless object over a [class@ConnectPlugin.Channel] (its construct-only
 * [property@ConnectPlugin.Proxy:channel] property): `g_object_new (type, "channel", channel, NULL)`
 * makes one, so does the generated `…_proxy_new()`. The class knows its
 * service through a [struct@ConnectPlugin.ServiceDescriptor]; [method@ConnectPlugin.Proxy.call_async] and
 * friends call a method by name, which is what the generated functions do
 * and what generic code (a host dispensing any service) can use directly.
 *
 * Like the channel, a proxy delivers every callback and stream signal in
 * the thread-default [struct@GLib.MainContext] of the caller that started the call.
 *
 * A proxy knows its methods' `idempotency_level` (from the proto, through
 * the descriptor): the channel's [class@RetryPolicy] retries the calls of
 * methods declared `IDEMPOTENT` or `NO_SIDE_EFFECTS` for their error codes,
 * and those of other methods only when they never reached the server.
 */

typedef struct
{
  /* Replaced when a CpClient that dispensed the proxy reconnects, maybe
   * while another thread calls: read it with dup_channel (). */
  GMutex lock;
  CpChannel *channel;
} CpProxyPrivate;

G_DEFINE_TYPE_WITH_PRIVATE (CpProxy, cp_proxy, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_CHANNEL,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

static void
cp_proxy_constructed (GObject *object)
{
  CpProxyPrivate *priv = cp_proxy_get_instance_private (CP_PROXY (object));

  G_OBJECT_CLASS (cp_proxy_parent_class)->constructed (object);

  if (priv->channel == NULL)
    g_critical ("%s: a proxy needs a channel (the \"channel\" property)",
                G_OBJECT_TYPE_NAME (object));
}

static void
cp_proxy_dispose (GObject *object)
{
  CpProxyPrivate *priv = cp_proxy_get_instance_private (CP_PROXY (object));

  g_mutex_lock (&priv->lock);
  g_clear_object (&priv->channel);
  g_mutex_unlock (&priv->lock);

  G_OBJECT_CLASS (cp_proxy_parent_class)->dispose (object);
}

static void
cp_proxy_finalize (GObject *object)
{
  CpProxyPrivate *priv = cp_proxy_get_instance_private (CP_PROXY (object));

  g_mutex_clear (&priv->lock);

  G_OBJECT_CLASS (cp_proxy_parent_class)->finalize (object);
}

/* The channel, referenced: it may be replaced meanwhile. */
static CpChannel *
dup_channel (CpProxy *proxy)
{
  CpProxyPrivate *priv = cp_proxy_get_instance_private (proxy);
  CpChannel *channel;

  g_mutex_lock (&priv->lock);
  channel = priv->channel != NULL ? g_object_ref (priv->channel) : NULL;
  g_mutex_unlock (&priv->lock);
  return channel;
}

static void
cp_proxy_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  switch (prop_id)
    {
    case PROP_CHANNEL:
      g_value_take_object (value, dup_channel (CP_PROXY (object)));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_proxy_set_property (GObject      *object,
                       guint         prop_id,
                       const GValue *value,
                       GParamSpec   *pspec)
{
  switch (prop_id)
    {
    case PROP_CHANNEL:
      cp_proxy_set_channel (CP_PROXY (object), g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_proxy_class_init (CpProxyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_proxy_constructed;
  object_class->dispose = cp_proxy_dispose;
  object_class->finalize = cp_proxy_finalize;
  object_class->get_property = cp_proxy_get_property;
  object_class->set_property = cp_proxy_set_property;

  /**
   * CpProxy:channel:
   *
   * The channel calls are made on. Setting it moves the calls that start
   * afterwards to another channel (calls under way finish on theirs): a
   * [class@ConnectPlugin.Client] does so for the proxies it dispensed when
   * it reconnects, as a [class@Gio.DBusProxy] follows its name's owner.
   */
  props[PROP_CHANNEL] =
    g_param_spec_object ("channel", NULL, NULL, CP_TYPE_CHANNEL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_EXPLICIT_NOTIFY |
                         G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, props);
}

static void
cp_proxy_init (CpProxy *self)
{
  CpProxyPrivate *priv = cp_proxy_get_instance_private (self);

  g_mutex_init (&priv->lock);
}

/**
 * cp_proxy_set_channel:
 * @proxy: a [class@ConnectPlugin.Proxy]
 * @channel: the channel for the calls started from now on
 *
 * Sets [property@ConnectPlugin.Proxy:channel]. Calls under way finish on
 * the channel they started on. Safe while other threads call.
 */
void
cp_proxy_set_channel (CpProxy   *proxy,
                      CpChannel *channel)
{
  CpProxyPrivate *priv;
  g_autoptr(CpChannel) old = NULL;

  g_return_if_fail (CP_IS_PROXY (proxy));
  g_return_if_fail (channel == NULL || CP_IS_CHANNEL (channel));

  priv = cp_proxy_get_instance_private (proxy);
  g_mutex_lock (&priv->lock);
  if (priv->channel == channel)
    {
      g_mutex_unlock (&priv->lock);
      return;
    }
  old = g_steal_pointer (&priv->channel);
  priv->channel = channel != NULL ? g_object_ref (channel) : NULL;
  g_mutex_unlock (&priv->lock);
  g_object_notify_by_pspec (G_OBJECT (proxy), props[PROP_CHANNEL]);
}

/**
 * cp_proxy_get_channel:
 * @proxy: a [class@ConnectPlugin.Proxy]
 *
 * Gets the channel the proxy calls on. A proxy dispensed by a
 * [class@ConnectPlugin.Client] changes channel when the client reconnects:
 * use the channel right away, or take a reference.
 *
 * Returns: (transfer none): the channel
 */
CpChannel *
cp_proxy_get_channel (CpProxy *proxy)
{
  CpProxyPrivate *priv;

  g_return_val_if_fail (CP_IS_PROXY (proxy), NULL);

  priv = cp_proxy_get_instance_private (proxy);
  return priv->channel;
}

/**
 * cp_proxy_get_descriptor:
 * @proxy: a [class@ConnectPlugin.Proxy]
 *
 * Gets the description of the service the proxy's class calls.
 *
 * Returns: (transfer none) (nullable): the descriptor, or %NULL for a class
 *   that was not bound to a service
 */
CpServiceDescriptor *
cp_proxy_get_descriptor (CpProxy *proxy)
{
  g_return_val_if_fail (CP_IS_PROXY (proxy), NULL);

  return CP_PROXY_GET_CLASS (proxy)->descriptor;
}

/**
 * cp_proxy_class_set_descriptor:
 * @klass: a [struct@ConnectPlugin.ProxyClass]
 * @descriptor: the service the class calls
 *
 * Binds a proxy class to its service; generated code calls this in its
 * class_init. Subclasses inherit the binding.
 */
void
cp_proxy_class_set_descriptor (CpProxyClass        *klass,
                               CpServiceDescriptor *descriptor)
{
  g_return_if_fail (CP_IS_PROXY_CLASS (klass));
  g_return_if_fail (descriptor != NULL);

  /* Classes are never finalized: the reference is kept for good. */
  klass->descriptor = cp_service_descriptor_ref (descriptor);
}

/* The method @method_name of @proxy's service if it has kind @kind; else
 * NULL and @error set. */
static CpMethodInfo *
lookup_method (CpProxy       *proxy,
               const char    *method_name,
               CpMethodKind   kind,
               GError       **error)
{
  CpServiceDescriptor *descriptor = cp_proxy_get_descriptor (proxy);
  CpMethodInfo *info;

  if (descriptor == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                   "%s is not bound to a service", G_OBJECT_TYPE_NAME (proxy));
      return NULL;
    }
  info = cp_service_descriptor_lookup_method (descriptor, method_name);
  if (info == NULL || cp_method_info_get_kind (info) != kind)
    {
      static const char * const kinds[] = {
        "unary", "client-streaming", "server-streaming", "bidi-streaming"
      };
      g_set_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                   "%s has no %s method \"%s\"",
                   cp_service_descriptor_get_full_name (descriptor),
                   kinds[kind], method_name);
      return NULL;
    }
  return info;
}

static void
call_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  CpMessage *response;

  response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);
  if (response == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, response, g_object_unref);
}

/**
 * cp_proxy_call_async:
 * @proxy: a [class@ConnectPlugin.Proxy]
 * @method_name: the name of a unary method of the service, e.g. `Get`
 * @request: the request, of the method's input type
 * @options: (nullable): per-call options
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async) (nullable): called when the call completes
 * @user_data: (closure): data for @callback
 *
 * Makes a unary call of the method @method_name through the proxy's
 * channel; see [method@ConnectPlugin.Channel.call_async]. @callback runs in the thread-default
 * main context of the caller, with @proxy as its source object; call
 * [method@ConnectPlugin.Proxy.call_finish] there. A method the service does not have as a
 * unary method fails with %CP_ERROR_UNIMPLEMENTED.
 */
void
cp_proxy_call_async (CpProxy             *proxy,
                     const char          *method_name,
                     CpMessage           *request,
                     CpCallOptions       *options,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  CpMethodInfo *info;

  g_return_if_fail (CP_IS_PROXY (proxy));
  g_return_if_fail (method_name != NULL);
  g_return_if_fail (CP_IS_MESSAGE (request));
  g_return_if_fail (options == NULL || CP_IS_CALL_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  g_return_if_fail (cp_proxy_get_channel (proxy) != NULL);

  task = g_task_new (proxy, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_proxy_call_async);
  /* The channel reports cancellation (G_IO_ERROR_CANCELLED) itself. */
  g_task_set_check_cancellable (task, FALSE);

  info = lookup_method (proxy, method_name, CP_METHOD_UNARY, &error);
  if (info == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_return_if_fail (G_TYPE_CHECK_INSTANCE_TYPE (request, cp_method_info_get_input_type (info)));

  {
    g_autoptr(CpChannel) channel = dup_channel (proxy);

    cp_channel_call_method_async (channel, info, request, options,
                                  cancellable, call_done, g_steal_pointer (&task));
  }
}

/**
 * cp_proxy_call_finish:
 * @proxy: a [class@ConnectPlugin.Proxy]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * Finishes a call started with [method@ConnectPlugin.Proxy.call_async].
 *
 * Returns: (transfer full): the response, of the method's output type, or
 *   %NULL on error
 */
CpMessage *
cp_proxy_call_finish (CpProxy       *proxy,
                      GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (CP_IS_PROXY (proxy), NULL);
  g_return_val_if_fail (g_task_is_valid (result, proxy), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == cp_proxy_call_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * cp_proxy_call_sync:
 * @proxy: a [class@ConnectPlugin.Proxy]
 * @method_name: the name of a unary method of the service, e.g. `Get`
 * @request: the request, of the method's input type
 * @options: (nullable): per-call options
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @error: return location for a [struct@GLib.Error] (domain %CP_ERROR, or %G_IO_ERROR_CANCELLED)
 *
 * Makes a unary call and blocks until it completes; see
 * [method@ConnectPlugin.Channel.call_sync]. Never call this from the thread whose main
 * context serves the called server (except through an in-process channel):
 * the server could not answer.
 *
 * Returns: (transfer full): the response, of the method's output type, or
 *   %NULL on error
 */
CpMessage *
cp_proxy_call_sync (CpProxy        *proxy,
                    const char     *method_name,
                    CpMessage      *request,
                    CpCallOptions  *options,
                    GCancellable   *cancellable,
                    GError        **error)
{
  CpMethodInfo *info;

  g_return_val_if_fail (CP_IS_PROXY (proxy), NULL);
  g_return_val_if_fail (method_name != NULL, NULL);
  g_return_val_if_fail (CP_IS_MESSAGE (request), NULL);
  g_return_val_if_fail (cp_proxy_get_channel (proxy) != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  info = lookup_method (proxy, method_name, CP_METHOD_UNARY, error);
  if (info == NULL)
    return NULL;
  g_return_val_if_fail (G_TYPE_CHECK_INSTANCE_TYPE (request, cp_method_info_get_input_type (info)),
                        NULL);

  {
    g_autoptr(CpChannel) channel = dup_channel (proxy);

    return cp_channel_call_method_sync (channel, info, request, options, cancellable, error);
  }
}

/**
 * cp_proxy_call_server_stream:
 * @proxy: a [class@ConnectPlugin.Proxy]
 * @method_name: the name of a server-streaming method of the service
 * @request: the request, of the method's input type
 * @options: (nullable): per-call options
 *
 * Starts a server-streaming call; see [method@ConnectPlugin.Channel.call_server_stream]. The
 * stream's [signal@ConnectPlugin.ResponseStream::message] signal carries messages of the
 * method's output type.
 *
 * Returns: (transfer full) (nullable): the response stream, or %NULL (with
 *   a critical warning) if the service has no such method
 */
CpResponseStream *
cp_proxy_call_server_stream (CpProxy       *proxy,
                             const char    *method_name,
                             CpMessage     *request,
                             CpCallOptions *options)
{
  g_autoptr(GError) error = NULL;
  CpMethodInfo *info;

  g_return_val_if_fail (CP_IS_PROXY (proxy), NULL);
  g_return_val_if_fail (method_name != NULL, NULL);
  g_return_val_if_fail (CP_IS_MESSAGE (request), NULL);
  g_return_val_if_fail (cp_proxy_get_channel (proxy) != NULL, NULL);

  info = lookup_method (proxy, method_name, CP_METHOD_SERVER_STREAMING, &error);
  if (info == NULL)
    {
      g_critical ("%s", error->message);
      return NULL;
    }
  g_return_val_if_fail (G_TYPE_CHECK_INSTANCE_TYPE (request, cp_method_info_get_input_type (info)),
                        NULL);

  {
    g_autoptr(CpChannel) channel = dup_channel (proxy);

    return cp_channel_call_method_server_stream (channel, info, request, options);
  }
}

/* The client- and bidi-streaming calls: both start with a request stream
 * and differ only in the method @kind they accept. */
static CpRequestStream *
call_request_stream (CpProxy       *proxy,
                     const char    *method_name,
                     CpMethodKind   kind,
                     CpCallOptions *options)
{
  g_autoptr(GError) error = NULL;
  CpMethodInfo *info;

  info = lookup_method (proxy, method_name, kind, &error);
  if (info == NULL)
    {
      g_critical ("%s", error->message);
      return NULL;
    }
  {
    g_autoptr(CpChannel) channel = dup_channel (proxy);

    return cp_channel_call_method_request_stream (channel, info, options);
  }
}

/**
 * cp_proxy_call_client_stream:
 * @proxy: a [class@ConnectPlugin.Proxy]
 * @method_name: the name of a client-streaming method of the service
 * @options: (nullable): per-call options
 *
 * Starts a client-streaming call; see [method@ConnectPlugin.Channel.call_client_stream]. Send
 * messages of the method's input type on the returned stream, then close
 * it to get the response, of the method's output type.
 *
 * Returns: (transfer full) (nullable): the request stream, or %NULL (with a
 *   critical warning) if the service has no such method
 */
CpRequestStream *
cp_proxy_call_client_stream (CpProxy       *proxy,
                             const char    *method_name,
                             CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_PROXY (proxy), NULL);
  g_return_val_if_fail (method_name != NULL, NULL);
  g_return_val_if_fail (cp_proxy_get_channel (proxy) != NULL, NULL);

  return call_request_stream (proxy, method_name, CP_METHOD_CLIENT_STREAMING, options);
}

/**
 * cp_proxy_call_bidi_stream:
 * @proxy: a [class@ConnectPlugin.Proxy]
 * @method_name: the name of a bidirectional-streaming method of the service
 * @options: (nullable): per-call options
 *
 * Starts a half-duplex bidirectional-streaming call; see
 * [method@ConnectPlugin.Channel.call_bidi_stream]. Send messages of the method's input type
 * on the returned stream, then [method@ConnectPlugin.RequestStream.close_and_receive] gives
 * the stream of responses, of the method's output type.
 *
 * Returns: (transfer full) (nullable): the request stream, or %NULL (with a
 *   critical warning) if the service has no such method
 */
CpRequestStream *
cp_proxy_call_bidi_stream (CpProxy       *proxy,
                           const char    *method_name,
                           CpCallOptions *options)
{
  g_return_val_if_fail (CP_IS_PROXY (proxy), NULL);
  g_return_val_if_fail (method_name != NULL, NULL);
  g_return_val_if_fail (cp_proxy_get_channel (proxy) != NULL, NULL);

  return call_request_stream (proxy, method_name, CP_METHOD_BIDI_STREAMING, options);
}
