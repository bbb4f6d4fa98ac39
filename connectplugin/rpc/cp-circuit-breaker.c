/* cp-circuit-breaker.c: fails calls fast while a server keeps failing
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>

#include "cp-circuit-breaker-private.h"
#include "cp-enum-types.h"
#include "cp-error.h"

/**
 * CpCircuitBreaker:
 *
 * A circuit breaker: after a run of failed calls it fails the next calls
 * at once, without sending them, until the server had time to recover.
 *
 * The breaker is in one of three states ([enum@CircuitState]):
 *
 * - `CLOSED`: calls go through. After
 *   [property@CircuitBreaker:failure-threshold] failures in a row (5 by
 *   default) it opens.
 * - `OPEN`: calls fail at once with `unavailable` ("circuit breaker is
 *   open"). Once [property@CircuitBreaker:open-timeout-ms] has passed
 *   (10 s by default), the next call makes it half-open.
 * - `HALF_OPEN`: at most [property@CircuitBreaker:success-threshold] probe
 *   calls are let through at a time (others fail as when open). After
 *   that many successes (2 by default) it closes; one failure opens it
 *   again.
 *
 * The defaults and the failures counted are connect-plugin-go's. A
 * failure is an error with one of the codes `unavailable`,
 * `deadline_exceeded`, `internal`, `unknown` or `resource_exhausted`, or an
 * error outside the %CP_ERROR domain
 * ([func@ConnectPlugin.CircuitBreaker.is_failure]). Every other answer of
 * the server, errors included (`invalid_argument`, `not_found`,
 * `permission_denied`, …), shows that it works and counts as a success.
 * A cancelled call (%G_IO_ERROR_CANCELLED, or `canceled`) counts for
 * nothing: it says nothing about the server.
 *
 * Give a breaker to a [class@Channel] ([property@Channel:circuit-breaker])
 * or a [class@Client] ([property@Client:circuit-breaker]) and every call
 * made through it asks the breaker before it sends anything and reports
 * its outcome; or drive it by hand with
 * [method@ConnectPlugin.CircuitBreaker.allow] and
 * [method@ConnectPlugin.CircuitBreaker.record] around calls of your own.
 * [method@ConnectPlugin.CircuitBreaker.force_open] and
 * [method@ConnectPlugin.CircuitBreaker.force_half_open] let other
 * knowledge (a health report) move it.
 *
 * The open timeout is not a timer: an open circuit becomes half-open when
 * a call asks to go through after the timeout, and
 * [property@CircuitBreaker:state] stays `OPEN` until then.
 *
 * Threading: unlike most connectplugin objects, a breaker belongs to no
 * [struct@GLib.MainContext]. One breaker may serve channels used from
 * several threads at once: its state is guarded by a lock, and every
 * method and property may be used from any thread. The
 * [signal@CircuitBreaker::state-changed] signal and the notifications of
 * its properties are emitted without the lock held, in the thread that
 * caused the change (the thread whose call reported the last failure,
 * for instance), so handlers may call the breaker's methods. When
 * threads cause transitions at the same time, each emission still
 * carries the states of its own transition, but handlers in different
 * threads may see them in a different order, and GObject may merge the
 * `notify::state` of one into another's: count the signal, not the
 * notifications.
 */

#define DEFAULT_FAILURE_THRESHOLD 5
#define DEFAULT_SUCCESS_THRESHOLD 2
#define DEFAULT_OPEN_TIMEOUT_MS   10000

struct _CpCircuitBreaker
{
  GObject parent_instance;

  GMutex lock;
  guint failure_threshold;
  guint success_threshold;
  guint open_timeout_ms;

  CpCircuitState state;
  guint64 epoch;        /* the period of the current state; a call's ticket */
  guint failures;       /* in a row, while closed */
  guint successes;      /* while half-open */
  guint probes;         /* calls under way let through while half-open */
  gint64 opened_at;     /* monotonic µs */
  guint64 n_opened;     /* transitions to open, for metrics */
};

G_DEFINE_FINAL_TYPE (CpCircuitBreaker, cp_circuit_breaker, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_FAILURE_THRESHOLD,
  PROP_SUCCESS_THRESHOLD,
  PROP_OPEN_TIMEOUT_MS,
  PROP_STATE,
  N_PROPS
};

enum {
  SIGNAL_STATE_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

typedef enum {
  OUTCOME_SUCCESS,
  OUTCOME_FAILURE,
  OUTCOME_NONE,
} Outcome;

/* A transition decided under the lock, announced after it. */
typedef struct {
  gboolean changed;
  CpCircuitState from;
  CpCircuitState to;
} Transition;

/* Under the lock: enters @state, starting a new period (the tickets of
 * the calls let through before stop counting). */
static void
enter_state (CpCircuitBreaker *self,
             CpCircuitState    state,
             Transition       *transition)
{
  transition->changed = TRUE;
  transition->from = self->state;
  transition->to = state;
  self->state = state;
  self->epoch++;
  self->failures = 0;
  self->successes = 0;
  self->probes = 0;
  if (state == CP_CIRCUIT_STATE_OPEN)
    {
      self->opened_at = g_get_monotonic_time ();
      self->n_opened++;
    }
}

/* Without the lock, in the thread that caused the transition. */
static void
announce (CpCircuitBreaker *self,
          Transition       *transition)
{
  if (!transition->changed)
    return;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
  g_signal_emit (self, signals[SIGNAL_STATE_CHANGED], 0, transition->from, transition->to);
}

static Outcome
classify (const GError *error)
{
  if (error == NULL)
    return OUTCOME_SUCCESS;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
      g_error_matches (error, CP_ERROR, CP_ERROR_CANCELED))
    return OUTCOME_NONE;
  return cp_circuit_breaker_is_failure (error) ? OUTCOME_FAILURE : OUTCOME_SUCCESS;
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */

guint64
cp_circuit_breaker_admit (CpCircuitBreaker  *self,
                          GError           **error)
{
  Transition transition = { FALSE, 0, 0 };
  guint64 ticket = 0;
  CpCircuitState refused_in = CP_CIRCUIT_STATE_OPEN;
  guint probes = 0;

  g_mutex_lock (&self->lock);
  switch (self->state)
    {
    case CP_CIRCUIT_STATE_CLOSED:
      ticket = self->epoch;
      break;
    case CP_CIRCUIT_STATE_OPEN:
      if (g_get_monotonic_time () - self->opened_at >= (gint64) self->open_timeout_ms * 1000)
        {
          enter_state (self, CP_CIRCUIT_STATE_HALF_OPEN, &transition);
          self->probes = 1;
          ticket = self->epoch;
        }
      break;
    case CP_CIRCUIT_STATE_HALF_OPEN:
    default:
      if (self->probes < self->success_threshold)
        {
          self->probes++;
          ticket = self->epoch;
        }
      else
        {
          refused_in = CP_CIRCUIT_STATE_HALF_OPEN;
          probes = self->probes;
        }
      break;
    }
  g_mutex_unlock (&self->lock);
  announce (self, &transition);

  if (ticket == 0)
    {
      if (refused_in == CP_CIRCUIT_STATE_OPEN)
        g_set_error_literal (error, CP_ERROR, CP_ERROR_UNAVAILABLE, "circuit breaker is open");
      else
        g_set_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE,
                     "circuit breaker is half-open and its %u probe calls are under way",
                     probes);
    }
  return ticket;
}

/* @ticket 0: the current period (cp_circuit_breaker_record()). */
static void
settle (CpCircuitBreaker *self,
        guint64           ticket,
        Outcome           outcome)
{
  Transition transition = { FALSE, 0, 0 };

  g_mutex_lock (&self->lock);
  if (ticket != 0 && ticket != self->epoch)
    {
      /* Let through before the last transition: its period is over. */
      g_mutex_unlock (&self->lock);
      return;
    }
  switch (self->state)
    {
    case CP_CIRCUIT_STATE_CLOSED:
      if (outcome == OUTCOME_FAILURE)
        {
          if (++self->failures >= self->failure_threshold)
            enter_state (self, CP_CIRCUIT_STATE_OPEN, &transition);
        }
      else if (outcome == OUTCOME_SUCCESS)
        self->failures = 0;
      break;
    case CP_CIRCUIT_STATE_HALF_OPEN:
      if (self->probes > 0)
        self->probes--;
      if (outcome == OUTCOME_FAILURE)
        enter_state (self, CP_CIRCUIT_STATE_OPEN, &transition);
      else if (outcome == OUTCOME_SUCCESS &&
               ++self->successes >= self->success_threshold)
        enter_state (self, CP_CIRCUIT_STATE_CLOSED, &transition);
      break;
    case CP_CIRCUIT_STATE_OPEN:
    default:
      /* Nothing was let through in this period. */
      break;
    }
  g_mutex_unlock (&self->lock);
  announce (self, &transition);
}

void
cp_circuit_breaker_settle (CpCircuitBreaker *self,
                           guint64           ticket,
                           const GError     *error)
{
  g_return_if_fail (ticket != 0);

  settle (self, ticket, classify (error));
}

void
cp_circuit_breaker_abandon (CpCircuitBreaker *self,
                            guint64           ticket)
{
  g_return_if_fail (ticket != 0);

  settle (self, ticket, OUTCOME_NONE);
}

/**
 * cp_circuit_breaker_allow:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 * @error: return location for a [struct@GLib.Error]
 *
 * Asks whether a call may go through now. A closed circuit lets every
 * call through; an open one none, until its open timeout has passed: the
 * first call asking after it makes the circuit half-open and goes through
 * as a probe. A half-open circuit lets at most
 * [property@CircuitBreaker:success-threshold] probes be under way at a
 * time.
 *
 * Report the outcome of every call let through with
 * [method@ConnectPlugin.CircuitBreaker.record], once it is known.
 * [class@Channel] does both for the calls made through it.
 *
 * Returns: %TRUE when the call may go through; %FALSE with @error
 *   (%CP_ERROR_UNAVAILABLE, "circuit breaker is open") when it must fail
 */
gboolean
cp_circuit_breaker_allow (CpCircuitBreaker  *breaker,
                          GError           **error)
{
  g_return_val_if_fail (CP_IS_CIRCUIT_BREAKER (breaker), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return cp_circuit_breaker_admit (breaker, error) != 0;
}

/**
 * cp_circuit_breaker_record:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 * @error: (nullable): the error the call failed with, or %NULL when it
 *   succeeded
 *
 * Reports the outcome of a call that
 * [method@ConnectPlugin.CircuitBreaker.allow] let through. A failure
 * ([func@ConnectPlugin.CircuitBreaker.is_failure]) counts towards opening
 * a closed circuit and opens a half-open one again; any other answer is a
 * success, which resets the count of failures of a closed circuit and
 * counts towards closing a half-open one; a cancelled call
 * (%G_IO_ERROR_CANCELLED, `canceled`) counts for nothing but ends its
 * probe. The outcome counts in the state the breaker is in now (a
 * [class@Channel] does better: it ignores the outcomes of calls let
 * through before the last change of state).
 */
void
cp_circuit_breaker_record (CpCircuitBreaker *breaker,
                           const GError     *error)
{
  g_return_if_fail (CP_IS_CIRCUIT_BREAKER (breaker));

  settle (breaker, 0, classify (error));
}

/**
 * cp_circuit_breaker_is_failure:
 * @error: (nullable): the error a call failed with
 *
 * Whether a circuit breaker counts @error as a failure of the server, as
 * connect-plugin-go's does: the codes `unavailable`, `deadline_exceeded`,
 * `internal`, `unknown` and `resource_exhausted`, and errors outside the
 * %CP_ERROR domain (which have no code: `unknown`) but for
 * %G_IO_ERROR_CANCELLED. The errors the caller caused or that show the
 * server at work (`invalid_argument`, `not_found`, `already_exists`,
 * `permission_denied`, `failed_precondition`, `unimplemented`, …) and
 * cancellations are not failures.
 *
 * Returns: %TRUE when @error counts as a failure
 */
gboolean
cp_circuit_breaker_is_failure (const GError *error)
{
  if (error == NULL)
    return FALSE;
  if (error->domain != CP_ERROR)
    return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  switch (error->code)
    {
    case CP_ERROR_UNAVAILABLE:
    case CP_ERROR_DEADLINE_EXCEEDED:
    case CP_ERROR_INTERNAL:
    case CP_ERROR_UNKNOWN:
    case CP_ERROR_RESOURCE_EXHAUSTED:
      return TRUE;
    default:
      return FALSE;
    }
}

/* ------------------------------------------------------------------------ */
/* Moving it by hand                                                         */

/**
 * cp_circuit_breaker_reset:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 *
 * Closes the circuit and forgets the failures counted. The outcomes of
 * calls let through before are ignored by channels.
 */
void
cp_circuit_breaker_reset (CpCircuitBreaker *breaker)
{
  Transition transition = { FALSE, 0, 0 };

  g_return_if_fail (CP_IS_CIRCUIT_BREAKER (breaker));

  g_mutex_lock (&breaker->lock);
  if (breaker->state != CP_CIRCUIT_STATE_CLOSED)
    enter_state (breaker, CP_CIRCUIT_STATE_CLOSED, &transition);
  else
    breaker->failures = 0;
  g_mutex_unlock (&breaker->lock);
  announce (breaker, &transition);
}

/**
 * cp_circuit_breaker_force_open:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 *
 * Opens the circuit now, whatever its state, as if the last failure
 * allowed had just happened: calls fail at once until
 * [property@CircuitBreaker:open-timeout-ms] has passed (counted from now
 * also when it was open already) or
 * [method@ConnectPlugin.CircuitBreaker.force_half_open] is called.
 *
 * A [class@Client] calls it when its [class@HealthMonitor] reports the
 * plugin unhealthy.
 */
void
cp_circuit_breaker_force_open (CpCircuitBreaker *breaker)
{
  Transition transition = { FALSE, 0, 0 };

  g_return_if_fail (CP_IS_CIRCUIT_BREAKER (breaker));

  g_mutex_lock (&breaker->lock);
  if (breaker->state != CP_CIRCUIT_STATE_OPEN)
    enter_state (breaker, CP_CIRCUIT_STATE_OPEN, &transition);
  else
    breaker->opened_at = g_get_monotonic_time ();
  g_mutex_unlock (&breaker->lock);
  announce (breaker, &transition);
}

/**
 * cp_circuit_breaker_force_half_open:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 *
 * Makes an open circuit half-open now, without waiting for its open
 * timeout: the next calls go through as probes, whose outcomes close or
 * reopen it. Does nothing when the circuit is closed or half-open.
 *
 * A [class@Client] calls it when its [class@HealthMonitor] reports the
 * plugin `SERVING` again.
 */
void
cp_circuit_breaker_force_half_open (CpCircuitBreaker *breaker)
{
  Transition transition = { FALSE, 0, 0 };

  g_return_if_fail (CP_IS_CIRCUIT_BREAKER (breaker));

  g_mutex_lock (&breaker->lock);
  if (breaker->state == CP_CIRCUIT_STATE_OPEN)
    enter_state (breaker, CP_CIRCUIT_STATE_HALF_OPEN, &transition);
  g_mutex_unlock (&breaker->lock);
  announce (breaker, &transition);
}

/* ------------------------------------------------------------------------ */
/* Properties                                                                */

static void
set_guint (CpCircuitBreaker *self,
           guint            *field,
           guint             value,
           guint             prop_id)
{
  gboolean changed;

  g_mutex_lock (&self->lock);
  changed = *field != value;
  *field = value;
  g_mutex_unlock (&self->lock);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

static guint
get_guint (CpCircuitBreaker *self,
           guint            *field)
{
  guint value;

  g_mutex_lock (&self->lock);
  value = *field;
  g_mutex_unlock (&self->lock);
  return value;
}

/**
 * cp_circuit_breaker_get_failure_threshold:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 *
 * Gets [property@CircuitBreaker:failure-threshold].
 *
 * Returns: how many failures in a row open a closed circuit
 */
guint
cp_circuit_breaker_get_failure_threshold (CpCircuitBreaker *breaker)
{
  g_return_val_if_fail (CP_IS_CIRCUIT_BREAKER (breaker), 0);

  return get_guint (breaker, &breaker->failure_threshold);
}

/**
 * cp_circuit_breaker_set_failure_threshold:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 * @threshold: how many failures in a row open a closed circuit (at least 1)
 *
 * Sets [property@CircuitBreaker:failure-threshold].
 */
void
cp_circuit_breaker_set_failure_threshold (CpCircuitBreaker *breaker,
                                          guint             threshold)
{
  g_return_if_fail (CP_IS_CIRCUIT_BREAKER (breaker));
  g_return_if_fail (threshold >= 1);

  set_guint (breaker, &breaker->failure_threshold, threshold, PROP_FAILURE_THRESHOLD);
}

/**
 * cp_circuit_breaker_get_success_threshold:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 *
 * Gets [property@CircuitBreaker:success-threshold].
 *
 * Returns: how many successes close a half-open circuit
 */
guint
cp_circuit_breaker_get_success_threshold (CpCircuitBreaker *breaker)
{
  g_return_val_if_fail (CP_IS_CIRCUIT_BREAKER (breaker), 0);

  return get_guint (breaker, &breaker->success_threshold);
}

/**
 * cp_circuit_breaker_set_success_threshold:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 * @threshold: how many successes close a half-open circuit (at least 1),
 *   also the number of probes let through at a time
 *
 * Sets [property@CircuitBreaker:success-threshold].
 */
void
cp_circuit_breaker_set_success_threshold (CpCircuitBreaker *breaker,
                                          guint             threshold)
{
  g_return_if_fail (CP_IS_CIRCUIT_BREAKER (breaker));
  g_return_if_fail (threshold >= 1);

  set_guint (breaker, &breaker->success_threshold, threshold, PROP_SUCCESS_THRESHOLD);
}

/**
 * cp_circuit_breaker_get_open_timeout_ms:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 *
 * Gets [property@CircuitBreaker:open-timeout-ms].
 *
 * Returns: how long the circuit stays open, in milliseconds
 */
guint
cp_circuit_breaker_get_open_timeout_ms (CpCircuitBreaker *breaker)
{
  g_return_val_if_fail (CP_IS_CIRCUIT_BREAKER (breaker), 0);

  return get_guint (breaker, &breaker->open_timeout_ms);
}

/**
 * cp_circuit_breaker_set_open_timeout_ms:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 * @timeout_ms: how long the circuit stays open, in milliseconds
 *
 * Sets [property@CircuitBreaker:open-timeout-ms]. It applies to an open
 * circuit at once.
 */
void
cp_circuit_breaker_set_open_timeout_ms (CpCircuitBreaker *breaker,
                                        guint             timeout_ms)
{
  g_return_if_fail (CP_IS_CIRCUIT_BREAKER (breaker));

  set_guint (breaker, &breaker->open_timeout_ms, timeout_ms, PROP_OPEN_TIMEOUT_MS);
}

/**
 * cp_circuit_breaker_get_state:
 * @breaker: a [class@ConnectPlugin.CircuitBreaker]
 *
 * Gets [property@CircuitBreaker:state].
 *
 * Returns: the state of the circuit
 */
CpCircuitState
cp_circuit_breaker_get_state (CpCircuitBreaker *breaker)
{
  CpCircuitState state;

  g_return_val_if_fail (CP_IS_CIRCUIT_BREAKER (breaker), CP_CIRCUIT_STATE_CLOSED);

  g_mutex_lock (&breaker->lock);
  state = breaker->state;
  g_mutex_unlock (&breaker->lock);
  return state;
}

/* ------------------------------------------------------------------------ */
/* The object                                                                */

static void
cp_circuit_breaker_finalize (GObject *object)
{
  CpCircuitBreaker *self = CP_CIRCUIT_BREAKER (object);

  g_mutex_clear (&self->lock);

  G_OBJECT_CLASS (cp_circuit_breaker_parent_class)->finalize (object);
}

static void
cp_circuit_breaker_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  CpCircuitBreaker *self = CP_CIRCUIT_BREAKER (object);

  switch (prop_id)
    {
    case PROP_FAILURE_THRESHOLD:
      g_value_set_uint (value, cp_circuit_breaker_get_failure_threshold (self));
      break;
    case PROP_SUCCESS_THRESHOLD:
      g_value_set_uint (value, cp_circuit_breaker_get_success_threshold (self));
      break;
    case PROP_OPEN_TIMEOUT_MS:
      g_value_set_uint (value, cp_circuit_breaker_get_open_timeout_ms (self));
      break;
    case PROP_STATE:
      g_value_set_enum (value, cp_circuit_breaker_get_state (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_circuit_breaker_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  CpCircuitBreaker *self = CP_CIRCUIT_BREAKER (object);

  switch (prop_id)
    {
    case PROP_FAILURE_THRESHOLD:
      cp_circuit_breaker_set_failure_threshold (self, g_value_get_uint (value));
      break;
    case PROP_SUCCESS_THRESHOLD:
      cp_circuit_breaker_set_success_threshold (self, g_value_get_uint (value));
      break;
    case PROP_OPEN_TIMEOUT_MS:
      cp_circuit_breaker_set_open_timeout_ms (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_circuit_breaker_class_init (CpCircuitBreakerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags settable = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = cp_circuit_breaker_finalize;
  object_class->get_property = cp_circuit_breaker_get_property;
  object_class->set_property = cp_circuit_breaker_set_property;

  /**
   * CpCircuitBreaker:failure-threshold:
   *
   * How many failures in a row open a closed circuit; 5 by default, as
   * connect-plugin-go's. A change applies from the next outcome on.
   */
  properties[PROP_FAILURE_THRESHOLD] =
    g_param_spec_uint ("failure-threshold", NULL, NULL, 1, G_MAXUINT,
                       DEFAULT_FAILURE_THRESHOLD, settable);

  /**
   * CpCircuitBreaker:success-threshold:
   *
   * How many successful probes close a half-open circuit, and how many
   * probes a half-open circuit lets be under way at a time; 2 by default,
   * as connect-plugin-go's.
   */
  properties[PROP_SUCCESS_THRESHOLD] =
    g_param_spec_uint ("success-threshold", NULL, NULL, 1, G_MAXUINT,
                       DEFAULT_SUCCESS_THRESHOLD, settable);

  /**
   * CpCircuitBreaker:open-timeout-ms:
   *
   * How long an open circuit fails calls before it lets probes through,
   * in milliseconds; 10000 (10 s) by default, as connect-plugin-go's. 0
   * lets the next call through as a probe at once.
   */
  properties[PROP_OPEN_TIMEOUT_MS] =
    g_param_spec_uint ("open-timeout-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_OPEN_TIMEOUT_MS, settable);

  /**
   * CpCircuitBreaker:state:
   *
   * The state of the circuit. Notified (in the thread that caused the
   * change) with each [signal@CircuitBreaker::state-changed].
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, CP_TYPE_CIRCUIT_STATE, CP_CIRCUIT_STATE_CLOSED,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpCircuitBreaker::state-changed:
   * @breaker: the breaker
   * @old_state: the state it left
   * @new_state: the state it entered
   *
   * Emitted after each change of [property@CircuitBreaker:state], in the
   * thread that caused it (a call's outcome, a call asking to go through
   * after the open timeout, or one of the `force` methods), without the
   * breaker's lock held.
   */
  signals[SIGNAL_STATE_CHANGED] =
    g_signal_new ("state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, CP_TYPE_CIRCUIT_STATE, CP_TYPE_CIRCUIT_STATE);
}

static void
cp_circuit_breaker_init (CpCircuitBreaker *self)
{
  g_mutex_init (&self->lock);
  self->failure_threshold = DEFAULT_FAILURE_THRESHOLD;
  self->success_threshold = DEFAULT_SUCCESS_THRESHOLD;
  self->open_timeout_ms = DEFAULT_OPEN_TIMEOUT_MS;
  self->state = CP_CIRCUIT_STATE_CLOSED;
  self->epoch = 1;
}

/**
 * cp_circuit_breaker_new:
 *
 * Creates a closed circuit breaker with connect-plugin-go's defaults: it
 * opens after 5 failures in a row, stays open 10 s, and closes after 2
 * successful probes.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.CircuitBreaker]
 */
CpCircuitBreaker *
cp_circuit_breaker_new (void)
{
  return g_object_new (CP_TYPE_CIRCUIT_BREAKER, NULL);
}

guint64
cp_circuit_breaker_get_n_opened (CpCircuitBreaker *breaker)
{
  guint64 n;

  g_return_val_if_fail (CP_IS_CIRCUIT_BREAKER (breaker), 0);

  g_mutex_lock (&breaker->lock);
  n = breaker->n_opened;
  g_mutex_unlock (&breaker->lock);
  return n;
}
