/* cp-health-monitor.c: follows the health of a plugin server
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-health-monitor-private.h"
#include "cp-call-options-private.h"
#include "cp-host-enum-types.h"
#include "cp-error.h"
#include "cp-plugin-constants.h"

/**
 * CpHealthMonitor:
 *
 * Follows the health of a server through its
 * `connectplugin.health.v1.HealthService`.
 *
 * Once started, the monitor opens the `Watch` stream for
 * [property@HealthMonitor:service] (`""`: the whole server), which sends
 * the current serving status and then every change. Because a stream
 * cannot tell a plugin that stopped answering from a quiet one, the
 * monitor also calls `Check` every [property@HealthMonitor:interval-ms],
 * with [property@HealthMonitor:timeout-ms] as its deadline. A server
 * without `Watch` is followed by these `Check` calls alone.
 *
 * The result is exposed as the serving status
 * ([property@HealthMonitor:serving-status], as the server reports it) and
 * a three-state plugin health ([property@HealthMonitor:health-state]):
 *
 * - `SERVING` → %CP_HEALTH_STATE_HEALTHY;
 * - `NOT_SERVING`, `SERVICE_UNKNOWN` (or `Check` answering `not_found`)
 *   → %CP_HEALTH_STATE_UNHEALTHY;
 * - a failed or timed-out `Check` → %CP_HEALTH_STATE_DEGRADED, and
 *   %CP_HEALTH_STATE_UNHEALTHY after
 *   [property@HealthMonitor:failure-threshold] failures in a row;
 * - the `Watch` stream ending or failing → %CP_HEALTH_STATE_UNHEALTHY at
 *   once (the server shut down or went away), then polling;
 * - a server without any health service → %CP_HEALTH_STATE_HEALTHY with
 *   status `UNSPECIFIED` as long as it answers.
 *
 * Changes are notified on the properties and by
 * [signal@HealthMonitor::changed], in the monitor's [struct@GLib.MainContext].
 *
 * The monitor's calls pass the channel's
 * [property@Channel:circuit-breaker] whatever its state and are not
 * counted by it: health reports keep coming while the circuit is open.
 */

#define DEFAULT_INTERVAL_MS       30000
#define DEFAULT_TIMEOUT_MS        5000
#define DEFAULT_FAILURE_THRESHOLD 3

struct _CpHealthMonitor
{
  GObject parent_instance;

  CpChannel *channel;
  char *service;
  guint interval_ms;
  guint timeout_ms;
  guint failure_threshold;

  GMainContext *context;
  CpServingStatus status;
  CpHealthState health;
  char *reason;
  CpHealthMode mode;

  CpResponseStream *watch;
  GCancellable *cancellable;    /* of the Check calls of this run */
  GSource *timer;
  gboolean check_pending;
  guint failures;
};

enum {
  PROP_0,
  PROP_CHANNEL,
  PROP_SERVICE,
  PROP_INTERVAL_MS,
  PROP_TIMEOUT_MS,
  PROP_FAILURE_THRESHOLD,
  PROP_SERVING_STATUS,
  PROP_HEALTH_STATE,
  PROP_REASON,
  PROP_MODE,
  N_PROPS
};

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (CpHealthMonitor, cp_health_monitor, G_TYPE_OBJECT)

static void do_check (CpHealthMonitor *self);

static void
set_mode (CpHealthMonitor *self,
          CpHealthMode     mode)
{
  if (self->mode == mode)
    return;
  self->mode = mode;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODE]);
}

static void
apply (CpHealthMonitor *self,
       CpServingStatus  status,
       CpHealthState    health,
       const char      *reason)
{
  gboolean changed = FALSE;

  g_object_freeze_notify (G_OBJECT (self));
  if (self->status != status)
    {
      self->status = status;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVING_STATUS]);
      changed = TRUE;
    }
  if (self->health != health)
    {
      self->health = health;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HEALTH_STATE]);
      changed = TRUE;
    }
  if (g_strcmp0 (self->reason, reason) != 0)
    {
      g_free (self->reason);
      self->reason = g_strdup (reason);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REASON]);
    }
  g_object_thaw_notify (G_OBJECT (self));

  if (changed)
    g_signal_emit (self, signals[SIGNAL_CHANGED], 0, health, status);
}

static void
apply_status (CpHealthMonitor *self,
              CpServingStatus  status)
{
  self->failures = 0;
  switch (status)
    {
    case CP_SERVING_STATUS_SERVING:
      apply (self, status, CP_HEALTH_STATE_HEALTHY, NULL);
      break;
    case CP_SERVING_STATUS_NOT_SERVING:
      apply (self, status, CP_HEALTH_STATE_UNHEALTHY, "the server is not serving");
      break;
    case CP_SERVING_STATUS_SERVICE_UNKNOWN:
      apply (self, status, CP_HEALTH_STATE_UNHEALTHY, "the server does not know the service");
      break;
    case CP_SERVING_STATUS_UNSPECIFIED:
    default:
      apply (self, CP_SERVING_STATUS_UNSPECIFIED, CP_HEALTH_STATE_DEGRADED,
             "the server reports no serving status");
      break;
    }
}

/* ---- Watch ---- */

static void
drop_watch (CpHealthMonitor *self)
{
  if (self->watch != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->watch, self);
      cp_response_stream_cancel (self->watch);
      g_clear_object (&self->watch);
    }
}

static void
watch_message_cb (CpResponseStream *stream,
                  CpMessage        *message,
                  gpointer          user_data)
{
  CpHealthMonitor *self = user_data;

  apply_status (self, cp_health_check_response_get_status (CP_HEALTH_CHECK_RESPONSE (message)));
}

static void
watch_closed_cb (CpResponseStream *stream,
                 const GError     *error,
                 gpointer          user_data)
{
  CpHealthMonitor *self = user_data;
  g_autofree char *reason = NULL;

  g_object_ref (self);
  g_signal_handlers_disconnect_by_data (stream, self);
  g_clear_object (&self->watch);
  set_mode (self, CP_HEALTH_MODE_POLLING);

  if (error != NULL && error->domain == CP_ERROR && error->code == CP_ERROR_UNIMPLEMENTED)
    {
      /* No Watch on this server: polling is all there is. */
      g_debug ("health: Watch is not implemented, polling Check");
      do_check (self);
    }
  else
    {
      reason = error != NULL
        ? g_strdup_printf ("the health stream failed: %s", error->message)
        : g_strdup ("the server ended the health stream");
      apply (self, CP_SERVING_STATUS_UNSPECIFIED, CP_HEALTH_STATE_UNHEALTHY, reason);
    }
  g_object_unref (self);
}

static void
open_watch (CpHealthMonitor *self)
{
  g_autoptr(CpHealthCheckRequest) request = cp_health_check_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();

  cp_health_check_request_set_service (request, self->service);
  /* A watch stays open as long as the server lives. */
  cp_call_options_set_timeout_ms (options, -1);
  /* Health reports come also (above all) while the circuit is open. */
  cp_call_options_set_circuit_breaker_exempt (options, TRUE);
  self->watch = cp_channel_call_server_stream (self->channel, CP_PROCEDURE_HEALTH_WATCH,
                                               CP_MESSAGE (request),
                                               CP_TYPE_HEALTH_CHECK_RESPONSE, options);
  g_signal_connect (self->watch, "message", G_CALLBACK (watch_message_cb), self);
  g_signal_connect (self->watch, "closed", G_CALLBACK (watch_closed_cb), self);
  set_mode (self, CP_HEALTH_MODE_WATCHING);
}

/* ---- Check ---- */

static void
check_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(CpHealthMonitor) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);
  self->check_pending = FALSE;
  if (self->mode == CP_HEALTH_MODE_IDLE ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
      (self->cancellable != NULL && g_cancellable_is_cancelled (self->cancellable)))
    return;

  if (g_error_matches (error, CP_ERROR, CP_ERROR_CANCELED))
    return;
  if (g_error_matches (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED))
    {
      /* It answers, but has no Check to read. */
      self->failures = 0;
      if (self->mode == CP_HEALTH_MODE_POLLING)
        apply (self, CP_SERVING_STATUS_UNSPECIFIED, CP_HEALTH_STATE_HEALTHY,
               "the server has no health service");
      return;
    }
  cp_health_monitor_apply_check (self, response, error);
}

static void
do_check (CpHealthMonitor *self)
{
  g_autoptr(CpHealthCheckRequest) request = cp_health_check_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();

  if (self->check_pending)
    return;
  cp_health_check_request_set_service (request, self->service);
  cp_call_options_set_timeout_ms (options, self->timeout_ms > 0 ? (gint64) self->timeout_ms : -1);
  cp_call_options_set_circuit_breaker_exempt (options, TRUE);
  self->check_pending = TRUE;
  cp_channel_call_async (self->channel, CP_PROCEDURE_HEALTH_CHECK, CP_MESSAGE (request),
                         CP_TYPE_HEALTH_CHECK_RESPONSE, options, self->cancellable,
                         check_cb, g_object_ref (self));
}

static gboolean
timer_cb (gpointer user_data)
{
  CpHealthMonitor *self = user_data;

  /* A check still pending is caught by its own deadline. */
  do_check (self);
  return G_SOURCE_CONTINUE;
}

/* ---- GObject ---- */

static void
cp_health_monitor_dispose (GObject *object)
{
  CpHealthMonitor *self = CP_HEALTH_MONITOR (object);

  cp_health_monitor_stop (self);
  g_clear_object (&self->channel);

  G_OBJECT_CLASS (cp_health_monitor_parent_class)->dispose (object);
}

static void
cp_health_monitor_finalize (GObject *object)
{
  CpHealthMonitor *self = CP_HEALTH_MONITOR (object);

  g_clear_pointer (&self->service, g_free);
  g_clear_pointer (&self->reason, g_free);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (cp_health_monitor_parent_class)->finalize (object);
}

static void
cp_health_monitor_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  CpHealthMonitor *self = CP_HEALTH_MONITOR (object);

  switch (prop_id)
    {
    case PROP_CHANNEL:
      g_value_set_object (value, self->channel);
      break;
    case PROP_SERVICE:
      g_value_set_string (value, self->service);
      break;
    case PROP_INTERVAL_MS:
      g_value_set_uint (value, self->interval_ms);
      break;
    case PROP_TIMEOUT_MS:
      g_value_set_uint (value, self->timeout_ms);
      break;
    case PROP_FAILURE_THRESHOLD:
      g_value_set_uint (value, self->failure_threshold);
      break;
    case PROP_SERVING_STATUS:
      g_value_set_enum (value, self->status);
      break;
    case PROP_HEALTH_STATE:
      g_value_set_enum (value, self->health);
      break;
    case PROP_REASON:
      g_value_set_string (value, self->reason);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_health_monitor_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  CpHealthMonitor *self = CP_HEALTH_MONITOR (object);

  switch (prop_id)
    {
    case PROP_CHANNEL:
      self->channel = g_value_dup_object (value);
      break;
    case PROP_SERVICE:
      g_free (self->service);
      self->service = g_strdup (g_value_get_string (value) != NULL ? g_value_get_string (value) : "");
      break;
    case PROP_INTERVAL_MS:
      self->interval_ms = g_value_get_uint (value);
      break;
    case PROP_TIMEOUT_MS:
      self->timeout_ms = g_value_get_uint (value);
      break;
    case PROP_FAILURE_THRESHOLD:
      self->failure_threshold = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_health_monitor_class_init (CpHealthMonitorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags settable = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS;
  GParamFlags readable = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = cp_health_monitor_dispose;
  object_class->finalize = cp_health_monitor_finalize;
  object_class->get_property = cp_health_monitor_get_property;
  object_class->set_property = cp_health_monitor_set_property;

  /**
   * CpHealthMonitor:channel:
   *
   * The channel to the server.
   */
  properties[PROP_CHANNEL] =
    g_param_spec_object ("channel", NULL, NULL, CP_TYPE_CHANNEL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpHealthMonitor:service:
   *
   * The service whose health is followed; `""` for the whole server.
   */
  properties[PROP_SERVICE] =
    g_param_spec_string ("service", NULL, NULL, "",
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpHealthMonitor:interval-ms:
   *
   * The time between two `Check` calls. Takes effect at the next start.
   */
  properties[PROP_INTERVAL_MS] =
    g_param_spec_uint ("interval-ms", NULL, NULL, 1, G_MAXUINT, DEFAULT_INTERVAL_MS, settable);

  /**
   * CpHealthMonitor:timeout-ms:
   *
   * The deadline of each `Check` call; 0 for none.
   */
  properties[PROP_TIMEOUT_MS] =
    g_param_spec_uint ("timeout-ms", NULL, NULL, 0, G_MAXUINT, DEFAULT_TIMEOUT_MS, settable);

  /**
   * CpHealthMonitor:failure-threshold:
   *
   * How many failed `Check` calls in a row make the plugin unhealthy
   * (fewer make it degraded).
   */
  properties[PROP_FAILURE_THRESHOLD] =
    g_param_spec_uint ("failure-threshold", NULL, NULL, 1, G_MAXUINT,
                       DEFAULT_FAILURE_THRESHOLD, settable);

  /**
   * CpHealthMonitor:serving-status:
   *
   * The serving status last reported by the server
   * (%CP_SERVING_STATUS_UNSPECIFIED before the first report, and when it
   * is unknown).
   */
  properties[PROP_SERVING_STATUS] =
    g_param_spec_enum ("serving-status", NULL, NULL, CP_TYPE_SERVING_STATUS,
                       CP_SERVING_STATUS_UNSPECIFIED, readable);

  /**
   * CpHealthMonitor:health-state:
   *
   * The plugin's health (%CP_HEALTH_STATE_UNSPECIFIED before the first
   * report).
   */
  properties[PROP_HEALTH_STATE] =
    g_param_spec_enum ("health-state", NULL, NULL, CP_TYPE_HEALTH_STATE,
                       CP_HEALTH_STATE_UNSPECIFIED, readable);

  /**
   * CpHealthMonitor:reason:
   *
   * Why the plugin is not healthy, or %NULL.
   */
  properties[PROP_REASON] =
    g_param_spec_string ("reason", NULL, NULL, NULL, readable);

  /**
   * CpHealthMonitor:mode:
   *
   * Whether the monitor follows the Watch stream or polls.
   */
  properties[PROP_MODE] =
    g_param_spec_enum ("mode", NULL, NULL, CP_TYPE_HEALTH_MODE, CP_HEALTH_MODE_IDLE, readable);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpHealthMonitor::changed:
   * @self: the monitor
   * @health_state: the new health
   * @serving_status: the new serving status
   *
   * The health or the serving status changed.
   */
  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, CP_TYPE_HEALTH_STATE, CP_TYPE_SERVING_STATUS);
}

static void
cp_health_monitor_init (CpHealthMonitor *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->service = g_strdup ("");
  self->interval_ms = DEFAULT_INTERVAL_MS;
  self->timeout_ms = DEFAULT_TIMEOUT_MS;
  self->failure_threshold = DEFAULT_FAILURE_THRESHOLD;
}

/**
 * cp_health_monitor_new:
 * @channel: the channel to the server
 * @service: (nullable): the service to follow; %NULL or `""` for the whole
 *   server
 *
 * Creates a monitor of the health of the server behind @channel.
 *
 * Returns: (transfer full): a new, stopped [class@ConnectPlugin.HealthMonitor]
 */
CpHealthMonitor *
cp_health_monitor_new (CpChannel  *channel,
                       const char *service)
{
  g_return_val_if_fail (CP_IS_CHANNEL (channel), NULL);

  return g_object_new (CP_TYPE_HEALTH_MONITOR,
                       "channel", channel,
                       "service", service != NULL ? service : "",
                       NULL);
}

void
cp_health_monitor_apply_check (CpHealthMonitor *self,
                               CpMessage       *response,
                               const GError    *error)
{
  g_return_if_fail (CP_IS_HEALTH_MONITOR (self));
  g_return_if_fail ((response != NULL) != (error != NULL));

  if (response != NULL)
    apply_status (self, cp_health_check_response_get_status (CP_HEALTH_CHECK_RESPONSE (response)));
  else if (g_error_matches (error, CP_ERROR, CP_ERROR_NOT_FOUND))
    apply_status (self, CP_SERVING_STATUS_SERVICE_UNKNOWN);
  else if (g_error_matches (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED))
    {
      self->failures = 0;
      apply (self, CP_SERVING_STATUS_UNSPECIFIED, CP_HEALTH_STATE_HEALTHY,
             "the server has no health Check");
    }
  else
    {
      g_autofree char *reason = g_strdup_printf ("health check failed: %s", error->message);

      self->failures++;
      apply (self, self->status,
             self->failures >= self->failure_threshold ? CP_HEALTH_STATE_UNHEALTHY
                                                       : CP_HEALTH_STATE_DEGRADED,
             reason);
    }
}

/**
 * cp_health_monitor_start:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Starts following the server's health (does nothing when started).
 */
void
cp_health_monitor_start (CpHealthMonitor *self)
{
  g_return_if_fail (CP_IS_HEALTH_MONITOR (self));
  g_return_if_fail (self->channel != NULL);

  if (self->mode != CP_HEALTH_MODE_IDLE)
    return;

  self->failures = 0;
  self->cancellable = g_cancellable_new ();
  open_watch (self);
  self->timer = g_timeout_source_new (self->interval_ms);
  g_source_set_callback (self->timer, timer_cb, self, NULL);
  g_source_set_static_name (self->timer, "[connectplugin] health monitor");
  g_source_attach (self->timer, self->context);
}

/**
 * cp_health_monitor_stop:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Stops following the server's health. The properties keep their last
 * values.
 */
void
cp_health_monitor_stop (CpHealthMonitor *self)
{
  g_return_if_fail (CP_IS_HEALTH_MONITOR (self));

  drop_watch (self);
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  if (self->cancellable != NULL)
    {
      g_cancellable_cancel (self->cancellable);
      g_clear_object (&self->cancellable);
    }
  set_mode (self, CP_HEALTH_MODE_IDLE);
}

/**
 * cp_health_monitor_get_channel:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Gets the channel the health checks go through.
 *
 * Returns: (transfer none): the channel to the server
 */
CpChannel *
cp_health_monitor_get_channel (CpHealthMonitor *self)
{
  g_return_val_if_fail (CP_IS_HEALTH_MONITOR (self), NULL);

  return self->channel;
}

/**
 * cp_health_monitor_get_service:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Gets the name of the service whose health is followed (`""`: the whole server).
 *
 * Returns: (transfer none): the service followed (`""`: the whole server)
 */
const char *
cp_health_monitor_get_service (CpHealthMonitor *self)
{
  g_return_val_if_fail (CP_IS_HEALTH_MONITOR (self), NULL);

  return self->service;
}

/**
 * cp_health_monitor_get_serving_status:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Gets the last serving status reported.
 *
 * Returns: the serving status last reported
 */
CpServingStatus
cp_health_monitor_get_serving_status (CpHealthMonitor *self)
{
  g_return_val_if_fail (CP_IS_HEALTH_MONITOR (self), CP_SERVING_STATUS_UNSPECIFIED);

  return self->status;
}

/**
 * cp_health_monitor_get_health_state:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Gets the health state derived from the last reports.
 *
 * Returns: the plugin's health
 */
CpHealthState
cp_health_monitor_get_health_state (CpHealthMonitor *self)
{
  g_return_val_if_fail (CP_IS_HEALTH_MONITOR (self), CP_HEALTH_STATE_UNSPECIFIED);

  return self->health;
}

/**
 * cp_health_monitor_get_reason:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Gets why the health last changed, if known.
 *
 * Returns: (transfer none) (nullable): why the plugin is not healthy
 */
const char *
cp_health_monitor_get_reason (CpHealthMonitor *self)
{
  g_return_val_if_fail (CP_IS_HEALTH_MONITOR (self), NULL);

  return self->reason;
}

/**
 * cp_health_monitor_get_mode:
 * @self: a [class@ConnectPlugin.HealthMonitor]
 *
 * Gets how the health is followed now (watch stream or polling).
 *
 * Returns: how the monitor follows the server
 */
CpHealthMode
cp_health_monitor_get_mode (CpHealthMonitor *self)
{
  g_return_val_if_fail (CP_IS_HEALTH_MONITOR (self), CP_HEALTH_MODE_IDLE);

  return self->mode;
}
