/* cp-service-watch.c: CpServiceWatch, a plugin's watch of the providers
 * of a service type at its host (ServiceRegistry.WatchService)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-service-watch-private.h"

#include "cp-error.h"
#include "cp-response-stream.h"

/**
 * CpServiceWatch:
 *
 * Follows the providers of one service type at a plugin host, made by
 * [method@ConnectPlugin.Server.watch_service].
 *
 * The host first sends the current state, then one event per change;
 * each becomes a [signal@ConnectPlugin.ServiceWatch::changed] emission and
 * updates [property@ConnectPlugin.ServiceWatch:state] and
 * [property@ConnectPlugin.ServiceWatch:endpoint]. An endpoint's
 * `endpoint_url` is relative to the host (`/services/{type}/{provider}`);
 * [method@ConnectPlugin.Server.discover_service_async] makes a channel to
 * it.
 *
 * The stream stays open until [method@ConnectPlugin.ServiceWatch.cancel],
 * the watch's disposal, or the host ends it
 * ([property@ConnectPlugin.ServiceWatch:active] turns %FALSE and
 * [signal@ConnectPlugin.ServiceWatch::closed] tells why). Signals are emitted
 * in the thread-default main context of the thread that made the watch.
 */
struct _CpServiceWatch
{
  GObject parent_instance;

  char *service_type;
  CpServiceState state;
  CpServiceEndpoint *endpoint;
  CpResponseStream *stream;
  gboolean active;
};

G_DEFINE_FINAL_TYPE (CpServiceWatch, cp_service_watch, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_SERVICE_TYPE,
  PROP_STATE,
  PROP_ENDPOINT,
  PROP_ACTIVE,
  N_PROPS
};

enum {
  SIGNAL_CHANGED,
  SIGNAL_CLOSED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void
stop_stream (CpServiceWatch *self)
{
  if (self->stream == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->stream, self);
  cp_response_stream_cancel (self->stream);
  g_clear_object (&self->stream);
}

static void
set_inactive (CpServiceWatch *self)
{
  if (!self->active)
    return;
  self->active = FALSE;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ACTIVE]);
}

static void
on_message (CpResponseStream *stream,
            CpMessage        *message,
            gpointer          user_data)
{
  CpServiceWatch *self = user_data;
  CpWatchServiceEvent *event = CP_WATCH_SERVICE_EVENT (message);
  g_autoptr(CpServiceEndpoint) endpoint = cp_watch_service_event_get_endpoint (event);

  g_object_freeze_notify (G_OBJECT (self));
  if (self->state != cp_watch_service_event_get_state (event))
    {
      self->state = cp_watch_service_event_get_state (event);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
    }
  if (g_set_object (&self->endpoint, endpoint))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ENDPOINT]);
  g_object_thaw_notify (G_OBJECT (self));
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0, self->state, endpoint);
}

static void
on_closed (CpResponseStream *stream,
           const GError     *error,
           gpointer          user_data)
{
  g_autoptr(CpServiceWatch) self = g_object_ref (user_data);

  g_signal_handlers_disconnect_by_data (stream, self);
  g_clear_object (&self->stream);
  set_inactive (self);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0, error);
}

CpServiceWatch *
cp_service_watch_new_internal (CpChannel  *host_channel,
                               const char *service_type)
{
  CpServiceWatch *self = g_object_new (CP_TYPE_SERVICE_WATCH, "service-type", service_type, NULL);
  g_autoptr(CpServiceRegistry) proxy = cp_service_registry_proxy_new (host_channel);
  g_autoptr(CpWatchServiceRequest) request = cp_watch_service_request_new ();

  cp_watch_service_request_set_service_type (request, service_type);
  self->stream = cp_service_registry_call_watch_service (proxy, request, NULL);
  self->active = TRUE;
  g_signal_connect (self->stream, "message", G_CALLBACK (on_message), self);
  g_signal_connect (self->stream, "closed", G_CALLBACK (on_closed), self);
  return self;
}

/**
 * cp_service_watch_get_service_type:
 * @watch: a [class@ConnectPlugin.ServiceWatch]
 *
 * Gets [property@ConnectPlugin.ServiceWatch:service-type].
 *
 * Returns: (transfer none): the service type watched
 */
const char *
cp_service_watch_get_service_type (CpServiceWatch *watch)
{
  g_return_val_if_fail (CP_IS_SERVICE_WATCH (watch), NULL);
  return watch->service_type;
}

/**
 * cp_service_watch_get_state:
 * @watch: a [class@ConnectPlugin.ServiceWatch]
 *
 * Gets [property@ConnectPlugin.ServiceWatch:state].
 *
 * Returns: the state of the last event, %CP_SERVICE_STATE_UNSPECIFIED
 *   before the first
 */
CpServiceState
cp_service_watch_get_state (CpServiceWatch *watch)
{
  g_return_val_if_fail (CP_IS_SERVICE_WATCH (watch), CP_SERVICE_STATE_UNSPECIFIED);
  return watch->state;
}

/**
 * cp_service_watch_get_endpoint:
 * @watch: a [class@ConnectPlugin.ServiceWatch]
 *
 * Gets [property@ConnectPlugin.ServiceWatch:endpoint].
 *
 * Returns: (transfer none) (nullable): the endpoint of the last event
 */
CpServiceEndpoint *
cp_service_watch_get_endpoint (CpServiceWatch *watch)
{
  g_return_val_if_fail (CP_IS_SERVICE_WATCH (watch), NULL);
  return watch->endpoint;
}

/**
 * cp_service_watch_get_active:
 * @watch: a [class@ConnectPlugin.ServiceWatch]
 *
 * Gets [property@ConnectPlugin.ServiceWatch:active].
 *
 * Returns: whether the watch stream is still open
 */
gboolean
cp_service_watch_get_active (CpServiceWatch *watch)
{
  g_return_val_if_fail (CP_IS_SERVICE_WATCH (watch), FALSE);
  return watch->active;
}

/**
 * cp_service_watch_cancel:
 * @watch: a [class@ConnectPlugin.ServiceWatch]
 *
 * Ends the watch: the stream to the host is cancelled and no more
 * signals are emitted (not even [signal@ConnectPlugin.ServiceWatch::closed]).
 * Disposing of the watch does the same.
 */
void
cp_service_watch_cancel (CpServiceWatch *watch)
{
  g_return_if_fail (CP_IS_SERVICE_WATCH (watch));

  stop_stream (watch);
  set_inactive (watch);
}

static void
cp_service_watch_dispose (GObject *object)
{
  CpServiceWatch *self = CP_SERVICE_WATCH (object);

  stop_stream (self);
  g_clear_object (&self->endpoint);
  G_OBJECT_CLASS (cp_service_watch_parent_class)->dispose (object);
}

static void
cp_service_watch_finalize (GObject *object)
{
  CpServiceWatch *self = CP_SERVICE_WATCH (object);

  g_free (self->service_type);
  G_OBJECT_CLASS (cp_service_watch_parent_class)->finalize (object);
}

static void
cp_service_watch_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  CpServiceWatch *self = CP_SERVICE_WATCH (object);

  switch (prop_id)
    {
    case PROP_SERVICE_TYPE:
      g_value_set_string (value, self->service_type);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_ENDPOINT:
      g_value_set_object (value, self->endpoint);
      break;
    case PROP_ACTIVE:
      g_value_set_boolean (value, self->active);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_service_watch_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  CpServiceWatch *self = CP_SERVICE_WATCH (object);

  switch (prop_id)
    {
    case PROP_SERVICE_TYPE:
      self->service_type = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_service_watch_class_init (CpServiceWatchClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags ro = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = cp_service_watch_dispose;
  object_class->finalize = cp_service_watch_finalize;
  object_class->get_property = cp_service_watch_get_property;
  object_class->set_property = cp_service_watch_set_property;

  /**
   * CpServiceWatch:service-type:
   *
   * The service type watched, e.g. `logger`.
   */
  properties[PROP_SERVICE_TYPE] =
    g_param_spec_string ("service-type", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpServiceWatch:state:
   *
   * The state of the last event: available, unavailable or degraded;
   * %CP_SERVICE_STATE_UNSPECIFIED before the first.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, CP_TYPE_SERVICE_STATE,
                       CP_SERVICE_STATE_UNSPECIFIED, ro);

  /**
   * CpServiceWatch:endpoint:
   *
   * The provider named by the last event (its `provider_id`, `version`,
   * relative `endpoint_url` and metadata), or %NULL.
   */
  properties[PROP_ENDPOINT] =
    g_param_spec_object ("endpoint", NULL, NULL, CP_TYPE_SERVICE_ENDPOINT, ro);

  /**
   * CpServiceWatch:active:
   *
   * Whether the watch stream is open.
   */
  properties[PROP_ACTIVE] =
    g_param_spec_boolean ("active", NULL, NULL, FALSE, ro);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpServiceWatch::changed:
   * @watch: the watch
   * @state: the new state of the service type
   * @endpoint: (nullable): the provider the event is about
   *
   * Emitted for every event of the host: first the current state, then
   * each change.
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                  CP_TYPE_SERVICE_STATE, CP_TYPE_SERVICE_ENDPOINT);

  /**
   * CpServiceWatch::closed:
   * @watch: the watch
   * @error: (nullable): why the host ended the stream, or %NULL when it
   *   ended it cleanly
   *
   * Emitted once when the host (or the connection) ends the stream; not
   * after [method@ConnectPlugin.ServiceWatch.cancel].
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                  G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
cp_service_watch_init (CpServiceWatch *self)
{
}
