/* test-circuit-breaker.c: CpCircuitBreaker alone, and on a CpChannel
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The state machine is driven by hand with a small open timeout (set while
 * the circuit is open, so no test depends on how fast the machine is).
 * Then a channel calls a real CpRpcServer (over TCP and in-process) whose
 * methods fail with `unavailable` on demand and count the requests they
 * see: an open circuit must fail calls without the server seeing them.
 */
#include <string.h>
#include "client-test-util.h"
#include "cp-call-options-private.h"

#define KV_PROCEDURE_PUT_MANY "/kv.v1.KVService/PutMany"

/* ------------------------------------------------------------------------ */
/* Watching a breaker                                                        */

typedef struct {
  GMutex lock;
  GArray *transitions;   /* CpCircuitState pairs: old, new */
  guint n_notify;
  GThread *forbidden;    /* a thread that must not emit (threads test) */
  gboolean check_state;  /* single-threaded: the state is the new one */
} Recorder;

static void
on_state_changed (CpCircuitBreaker *breaker,
                  CpCircuitState    old_state,
                  CpCircuitState    new_state,
                  Recorder         *r)
{
  g_assert_cmpint (old_state, !=, new_state);
  g_assert_true (g_thread_self () != r->forbidden);
  if (r->check_state)
    g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, new_state);
  g_mutex_lock (&r->lock);
  g_array_append_val (r->transitions, old_state);
  g_array_append_val (r->transitions, new_state);
  g_mutex_unlock (&r->lock);
}

static void
on_notify_state (CpCircuitBreaker *breaker,
                 GParamSpec       *pspec,
                 Recorder         *r)
{
  g_mutex_lock (&r->lock);
  r->n_notify++;
  g_mutex_unlock (&r->lock);
}

static void
recorder_init (Recorder         *r,
               CpCircuitBreaker *breaker)
{
  memset (r, 0, sizeof *r);
  g_mutex_init (&r->lock);
  r->transitions = g_array_new (FALSE, FALSE, sizeof (CpCircuitState));
  r->check_state = TRUE;
  g_signal_connect (breaker, "state-changed", G_CALLBACK (on_state_changed), r);
  g_signal_connect (breaker, "notify::state", G_CALLBACK (on_notify_state), r);
}

static void
recorder_clear (Recorder         *r,
                CpCircuitBreaker *breaker)
{
  g_signal_handlers_disconnect_by_data (breaker, r);
  g_array_unref (r->transitions);
  g_mutex_clear (&r->lock);
}

/* Asserts the transitions seen: pairs of states, ended by -1. */
static void
assert_transitions (Recorder *r,
                    ...)
{
  va_list ap;
  guint i = 0;
  int expected;

  va_start (ap, r);
  while ((expected = va_arg (ap, int)) >= 0)
    {
      g_assert_cmpuint (i, <, r->transitions->len);
      g_assert_cmpint (g_array_index (r->transitions, CpCircuitState, i), ==, expected);
      i++;
    }
  va_end (ap);
  g_assert_cmpuint (i, ==, r->transitions->len);
  g_assert_cmpuint (r->n_notify, ==, r->transitions->len / 2);
}

#define C CP_CIRCUIT_STATE_CLOSED
#define O CP_CIRCUIT_STATE_OPEN
#define H CP_CIRCUIT_STATE_HALF_OPEN

/* One call through the breaker by hand: allowed, then @code (0: success). */
static void
call_by_hand (CpCircuitBreaker *breaker,
              int               code)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_circuit_breaker_allow (breaker, &error));
  g_assert_no_error (error);
  if (code != 0)
    error = g_error_new_literal (CP_ERROR, code, "failed");
  cp_circuit_breaker_record (breaker, error);
}

static void
assert_refused (CpCircuitBreaker *breaker,
                const char       *message)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (cp_circuit_breaker_allow (breaker, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, message));
}

/* ------------------------------------------------------------------------ */
/* The breaker alone                                                         */

static void
test_defaults (void)
{
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(GEnumClass) klass = g_type_class_ref (CP_TYPE_CIRCUIT_STATE);
  guint failure, success, timeout;
  CpCircuitState state;

  /* connect-plugin-go's DefaultCircuitBreakerConfig (). */
  g_object_get (breaker, "failure-threshold", &failure, "success-threshold", &success,
                "open-timeout-ms", &timeout, "state", &state, NULL);
  g_assert_cmpuint (failure, ==, 5);
  g_assert_cmpuint (success, ==, 2);
  g_assert_cmpuint (timeout, ==, 10000);
  g_assert_cmpint (state, ==, CP_CIRCUIT_STATE_CLOSED);

  g_assert_true (G_TYPE_IS_ENUM (CP_TYPE_CIRCUIT_STATE));
  g_assert_cmpstr (g_enum_get_value (klass, C)->value_nick, ==, "closed");
  g_assert_cmpstr (g_enum_get_value (klass, O)->value_nick, ==, "open");
  g_assert_cmpstr (g_enum_get_value (klass, H)->value_nick, ==, "half-open");
}

static void
count_cb (GObject    *object,
          GParamSpec *pspec,
          guint      *count)
{
  (*count)++;
}

static void
test_properties (void)
{
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  guint n_failure = 0, n_success = 0, n_timeout = 0;

  g_signal_connect (breaker, "notify::failure-threshold", G_CALLBACK (count_cb), &n_failure);
  g_signal_connect (breaker, "notify::success-threshold", G_CALLBACK (count_cb), &n_success);
  g_signal_connect (breaker, "notify::open-timeout-ms", G_CALLBACK (count_cb), &n_timeout);

  g_object_set (breaker, "failure-threshold", 3, "success-threshold", 4,
                "open-timeout-ms", 250, NULL);
  g_assert_cmpuint (cp_circuit_breaker_get_failure_threshold (breaker), ==, 3);
  g_assert_cmpuint (cp_circuit_breaker_get_success_threshold (breaker), ==, 4);
  g_assert_cmpuint (cp_circuit_breaker_get_open_timeout_ms (breaker), ==, 250);
  g_assert_cmpuint (n_failure, ==, 1);
  g_assert_cmpuint (n_success, ==, 1);
  g_assert_cmpuint (n_timeout, ==, 1);

  /* Explicit notify: the same value again says nothing. */
  cp_circuit_breaker_set_failure_threshold (breaker, 3);
  cp_circuit_breaker_set_success_threshold (breaker, 4);
  cp_circuit_breaker_set_open_timeout_ms (breaker, 250);
  g_assert_cmpuint (n_failure, ==, 1);
  g_assert_cmpuint (n_success, ==, 1);
  g_assert_cmpuint (n_timeout, ==, 1);

  /* The threshold set is the one used: 3 failures open it. */
  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
}

static void
test_state_machine (void)
{
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  Recorder r;

  recorder_init (&r, breaker);
  g_object_set (breaker, "failure-threshold", 3, NULL);

  /* Closed: failures in a row, up to the threshold. */
  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  call_by_hand (breaker, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  assert_transitions (&r, -1);
  call_by_hand (breaker, CP_ERROR_INTERNAL);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  assert_transitions (&r, C, O, -1);

  /* Open: refused, for as long as the timeout (10 s) runs. */
  for (guint i = 0; i < 3; i++)
    assert_refused (breaker, "circuit breaker is open");
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  assert_transitions (&r, C, O, -1);

  /* A shorter timeout applies to the open circuit at once; the state
   * stays open until a call asks. */
  cp_circuit_breaker_set_open_timeout_ms (breaker, 20);
  g_usleep (40 * 1000);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  assert_transitions (&r, C, O, -1);

  /* Half-open: the first call after the timeout is a probe; 2 successes
   * (the default success threshold) close it. */
  call_by_hand (breaker, 0);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, H);
  assert_transitions (&r, C, O, O, H, -1);
  call_by_hand (breaker, 0);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  assert_transitions (&r, C, O, O, H, H, C, -1);

  /* Closed again, with the count of failures started over. */
  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);

  recorder_clear (&r, breaker);
}

static void
test_caller_errors (void)
{
  static const CpError failures[] = {
    CP_ERROR_UNAVAILABLE, CP_ERROR_DEADLINE_EXCEEDED, CP_ERROR_INTERNAL, CP_ERROR_UNKNOWN,
    CP_ERROR_RESOURCE_EXHAUSTED,
  };
  static const CpError answers[] = {
    CP_ERROR_INVALID_ARGUMENT, CP_ERROR_NOT_FOUND, CP_ERROR_ALREADY_EXISTS,
    CP_ERROR_PERMISSION_DENIED, CP_ERROR_FAILED_PRECONDITION, CP_ERROR_ABORTED,
    CP_ERROR_OUT_OF_RANGE, CP_ERROR_UNIMPLEMENTED, CP_ERROR_DATA_LOSS,
    CP_ERROR_UNAUTHENTICATED, CP_ERROR_CANCELED,
  };
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(GError) cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "x");
  g_autoptr(GError) other = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "x");
  Recorder r;

  for (gsize i = 0; i < G_N_ELEMENTS (failures); i++)
    {
      g_autoptr(GError) error = g_error_new_literal (CP_ERROR, failures[i], "x");

      g_assert_true (cp_circuit_breaker_is_failure (error));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (answers); i++)
    {
      g_autoptr(GError) error = g_error_new_literal (CP_ERROR, answers[i], "x");

      g_assert_false (cp_circuit_breaker_is_failure (error));
    }
  g_assert_false (cp_circuit_breaker_is_failure (NULL));
  g_assert_false (cp_circuit_breaker_is_failure (cancelled));
  g_assert_true (cp_circuit_breaker_is_failure (other));

  recorder_init (&r, breaker);
  /* Errors of the caller's making, many times over: never open it. */
  for (guint n = 0; n < 10; n++)
    {
      for (gsize i = 0; i < G_N_ELEMENTS (answers); i++)
        call_by_hand (breaker, answers[i]);
      g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
      cp_circuit_breaker_record (breaker, cancelled);
    }
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  assert_transitions (&r, -1);

  /* An answer (not_found) shows the server at work: the failures before
   * it no longer count. */
  for (guint i = 0; i < 4; i++)
    call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  call_by_hand (breaker, CP_ERROR_NOT_FOUND);
  for (guint i = 0; i < 4; i++)
    call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);

  /* A cancellation says nothing either way: the fifth failure in a row
   * after it opens the circuit. */
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
  cp_circuit_breaker_record (breaker, cancelled);
  call_by_hand (breaker, CP_ERROR_RESOURCE_EXHAUSTED);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  assert_transitions (&r, C, O, -1);

  recorder_clear (&r, breaker);
}

static void
test_half_open_failure (void)
{
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  Recorder r;

  recorder_init (&r, breaker);
  g_object_set (breaker, "failure-threshold", 1, "open-timeout-ms", 0, NULL);

  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  /* Timeout 0: the next call is a probe; its failure reopens. */
  call_by_hand (breaker, CP_ERROR_DEADLINE_EXCEEDED);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  assert_transitions (&r, C, O, O, H, H, O, -1);

  /* After one success, a failure still reopens it. */
  call_by_hand (breaker, 0);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, H);
  call_by_hand (breaker, CP_ERROR_UNKNOWN);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  assert_transitions (&r, C, O, O, H, H, O, O, H, H, O, -1);

  /* An answer that is an error (not_found) is a success. */
  call_by_hand (breaker, CP_ERROR_NOT_FOUND);
  call_by_hand (breaker, 0);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  assert_transitions (&r, C, O, O, H, H, O, O, H, H, O, O, H, H, C, -1);

  recorder_clear (&r, breaker);
}

static void
test_half_open_probes (void)
{
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  g_autoptr(GError) cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "x");

  g_object_set (breaker, "failure-threshold", 1, "success-threshold", 2, NULL);
  call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  cp_circuit_breaker_set_open_timeout_ms (breaker, 0);

  /* Two probes at a time (the success threshold), no more. */
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, H);
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
  assert_refused (breaker, "half-open");
  assert_refused (breaker, "half-open");

  /* A cancelled probe gives its place back, and counts for nothing. */
  cp_circuit_breaker_record (breaker, cancelled);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, H);
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
  assert_refused (breaker, "half-open");

  cp_circuit_breaker_record (breaker, NULL);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, H);
  cp_circuit_breaker_record (breaker, NULL);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
}

static void
test_force (void)
{
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  Recorder r;

  recorder_init (&r, breaker);

  /* Nothing to do on a closed circuit. */
  cp_circuit_breaker_force_half_open (breaker);
  cp_circuit_breaker_reset (breaker);
  assert_transitions (&r, -1);

  cp_circuit_breaker_force_open (breaker);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, O);
  assert_refused (breaker, "circuit breaker is open");
  cp_circuit_breaker_force_open (breaker);
  assert_transitions (&r, C, O, -1);

  cp_circuit_breaker_force_half_open (breaker);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, H);
  cp_circuit_breaker_force_half_open (breaker);
  assert_transitions (&r, C, O, O, H, -1);

  /* Opened by hand, from half-open too; reset closes from anywhere. */
  cp_circuit_breaker_force_open (breaker);
  cp_circuit_breaker_reset (breaker);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  g_assert_true (cp_circuit_breaker_allow (breaker, NULL));
  assert_transitions (&r, C, O, O, H, H, O, O, C, -1);

  /* Reset forgets the failures counted. */
  for (guint i = 0; i < 4; i++)
    call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  cp_circuit_breaker_reset (breaker);
  for (guint i = 0; i < 4; i++)
    call_by_hand (breaker, CP_ERROR_UNAVAILABLE);
  g_assert_cmpint (cp_circuit_breaker_get_state (breaker), ==, C);
  assert_transitions (&r, C, O, O, H, H, O, O, C, -1);

  recorder_clear (&r, breaker);
}

#define N_THREADS 4
#define N_ITERATIONS 20000

static gpointer
hammer_thread (gpointer data)
{
  CpCircuitBreaker *breaker = data;
  g_autoptr(GError) failure = g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE, "x");

  for (guint i = 0; i < N_ITERATIONS; i++)
    if (cp_circuit_breaker_allow (breaker, NULL))
      cp_circuit_breaker_record (breaker, i % 3 != 0 ? failure : NULL);
  return NULL;
}

static void
test_threads (void)
{
  g_autoptr(CpCircuitBreaker) breaker = cp_circuit_breaker_new ();
  GThread *threads[N_THREADS];
  Recorder r;

  recorder_init (&r, breaker);
  r.check_state = FALSE;
  /* Transitions are announced in the threads that make the calls. */
  r.forbidden = g_thread_self ();
  g_object_set (breaker, "failure-threshold", 2, "success-threshold", 1,
                "open-timeout-ms", 0, NULL);
  for (guint i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("hammer", hammer_thread, breaker);
  for (guint i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);

  g_test_message ("%u transitions", r.transitions->len / 2);
  g_assert_cmpuint (r.transitions->len, >, 0);
  /* GObject merges notifications of a property that another thread is
   * notifying at the same moment; signals are never merged. */
  g_assert_cmpuint (r.n_notify, >, 0);
  g_assert_cmpuint (r.n_notify, <=, r.transitions->len / 2);
  recorder_clear (&r, breaker);
}

/* ------------------------------------------------------------------------ */
/* On a channel                                                              */

typedef struct {
  CpRpcServer *server;
  CpChannel *channel;
  CpCircuitBreaker *breaker;
  gboolean failing;          /* every method fails with `unavailable` */
  guint n_unary;             /* requests each method saw */
  guint n_watch;
  guint n_put_many;
  GPtrArray *hanging;        /* CpInvocation of Get "hang", never answered */
} Fixture;

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Fixture *f = user_data;
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  g_autoptr(KvGetResponse) response = NULL;

  f->n_unary++;
  if (f->failing)
    {
      cp_invocation_return_error (invocation, CP_ERROR_UNAVAILABLE, "down");
      return;
    }
  if (g_str_equal (key, "hang"))
    {
      g_ptr_array_add (f->hanging, g_object_ref (invocation));
      return;
    }
  if (g_str_equal (key, "invalid"))
    {
      cp_invocation_return_error (invocation, CP_ERROR_INVALID_ARGUMENT, "bad key");
      return;
    }
  response = kv_test_get_response (NULL, FALSE);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  Fixture *f = user_data;
  g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "k", NULL);

  f->n_watch++;
  if (f->failing)
    {
      cp_invocation_return_error (invocation, CP_ERROR_UNAVAILABLE, "down");
      return;
    }
  cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
  cp_invocation_return_ok (invocation);
}

static void
handle_put_many (CpInvocation *invocation,
                 CpMessage    *request,
                 gpointer      user_data)
{
  Fixture *f = user_data;

  f->n_put_many++;
  if (f->failing)
    {
      cp_invocation_return_error (invocation, CP_ERROR_UNAVAILABLE, "down");
      return;
    }
  test_receive_all_then_found (invocation);
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(CpMethodInfo) put_many = cp_method_info_new (KV_PROCEDURE_PUT_MANY, CP_METHOD_CLIENT_STREAMING,
                                                         KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;

  memset (f, 0, sizeof *f);
  f->hanging = g_ptr_array_new_with_free_func (g_object_unref);
  f->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (f->server, get, handle_get, f, NULL);
  cp_rpc_server_add_method (f->server, watch, handle_watch, f, NULL);
  cp_rpc_server_add_method (f->server, put_many, handle_put_many, f, NULL);

  f->channel = test_channel_new (f->server, data);
  f->breaker = cp_circuit_breaker_new ();
  cp_channel_set_circuit_breaker (f->channel, f->breaker);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  for (guint i = 0; i < f->hanging->len; i++)
    cp_invocation_return_error (f->hanging->pdata[i], CP_ERROR_CANCELED, "teardown");
  cp_rpc_server_close (f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->server);
  g_clear_object (&f->breaker);
  g_ptr_array_unref (f->hanging);
}

static CpMessage *
get (Fixture        *f,
     const char     *key,
     CpCallOptions  *options,
     GError        **error)
{
  return test_kv_get (f->channel, key, options, error);
}

static void
assert_get_fails (Fixture    *f,
                  const char *message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = get (f, "k", NULL, &error);

  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (error->message, ==, message);
}

static void
assert_get_ok (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = get (f, "k", NULL, &error);

  g_assert_no_error (error);
  g_assert_true (KV_IS_GET_RESPONSE (response));
}

/* Lets the open circuit's timeout pass (the breaker's default, 10 s, made
 * short while it is open). */
static void
pass_open_timeout (Fixture *f)
{
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, O);
  cp_circuit_breaker_set_open_timeout_ms (f->breaker, 20);
  g_usleep (40 * 1000);
}

static void
test_channel_properties (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(CpCircuitBreaker) other = cp_circuit_breaker_new ();
  g_autoptr(CpCircuitBreaker) got = NULL;
  guint notified = 0;

  g_signal_connect (f->channel, "notify::circuit-breaker", G_CALLBACK (count_cb), &notified);
  g_object_get (f->channel, "circuit-breaker", &got, NULL);
  g_assert_true (got == f->breaker);
  g_assert_true (cp_channel_get_circuit_breaker (f->channel) == f->breaker);

  cp_channel_set_circuit_breaker (f->channel, f->breaker);
  g_assert_cmpuint (notified, ==, 0);
  g_object_set (f->channel, "circuit-breaker", other, NULL);
  g_assert_cmpuint (notified, ==, 1);
  g_assert_true (cp_channel_get_circuit_breaker (f->channel) == other);

  /* The channel's breaker is the one asked. */
  cp_circuit_breaker_force_open (f->breaker);
  assert_get_ok (f);
  cp_circuit_breaker_force_open (other);
  assert_get_fails (f, "circuit breaker is open");

  cp_channel_set_circuit_breaker (f->channel, NULL);
  g_assert_cmpuint (notified, ==, 2);
  g_assert_null (cp_channel_get_circuit_breaker (f->channel));
  assert_get_ok (f);
  g_assert_cmpuint (f->n_unary, ==, 2);
}

typedef struct {
  Fixture *f;
  gint done;
  CpMessage *response;
} SyncCall;

static gpointer
sync_call_thread (gpointer data)
{
  SyncCall *call = data;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GError) error = NULL;

  call->response = cp_channel_call_sync (call->f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                         KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  g_atomic_int_set (&call->done, 1);
  g_main_context_wakeup (NULL);
  return NULL;
}

static gboolean
sync_call_done (gpointer data)
{
  return g_atomic_int_get (&((SyncCall *) data)->done);
}

static void
test_channel_unary (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  Recorder r;

  recorder_init (&r, f->breaker);
  f->failing = TRUE;
  for (guint i = 0; i < 5; i++)
    {
      assert_get_fails (f, "down");
      g_assert_cmpuint (f->n_unary, ==, i + 1);
    }
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, O);
  assert_transitions (&r, C, O, -1);

  /* Open: the next calls fail at once; the server sees none of them. */
  assert_get_fails (f, "circuit breaker is open");
  assert_get_fails (f, "circuit breaker is open");
  response = cp_channel_call_sync (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                   KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_null (response);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (error->message, ==, "circuit breaker is open");
  g_clear_error (&error);
  g_assert_cmpuint (f->n_unary, ==, 5);

  /* After the timeout a probe goes through; two successes close it. */
  f->failing = FALSE;
  pass_open_timeout (f);
  assert_get_ok (f);
  g_assert_cmpuint (f->n_unary, ==, 6);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, H);
  /* A blocking call from another thread, while this one serves. */
  {
    SyncCall call = { f, 0, NULL };
    GThread *thread = g_thread_new ("sync", sync_call_thread, &call);

    test_wait_until (sync_call_done, &call);
    g_thread_join (thread);
    g_assert_true (KV_IS_GET_RESPONSE (call.response));
    g_clear_object (&call.response);
  }
  g_assert_cmpuint (f->n_unary, ==, 7);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, C);
  assert_transitions (&r, C, O, O, H, H, C, -1);

  recorder_clear (&r, f->breaker);
}

static void
test_channel_half_open_failure (Fixture       *f,
                                gconstpointer  data)
{
  cp_circuit_breaker_set_failure_threshold (f->breaker, 1);
  f->failing = TRUE;
  assert_get_fails (f, "down");
  pass_open_timeout (f);
  /* The probe fails: open again, for the whole timeout. */
  assert_get_fails (f, "down");
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, O);
  cp_circuit_breaker_set_open_timeout_ms (f->breaker, 10000);
  assert_get_fails (f, "circuit breaker is open");
  g_assert_cmpuint (f->n_unary, ==, 2);
}

static void
test_channel_server_stream (Fixture       *f,
                            gconstpointer  data)
{
  Recorder r;

  recorder_init (&r, f->breaker);
  f->failing = TRUE;
  for (guint i = 0; i < 6; i++)
    {
      g_autoptr(KvWatchRequest) request = kv_test_watch_request ("");
      StreamRun run;

      stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                            CP_MESSAGE (request),
                                                            KV_TYPE_WATCH_EVENT, NULL));
      g_assert_false (run.closed);
      stream_run_wait (&run);
      g_assert_error (run.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
      /* Five failures seen by the server, then the circuit is open. */
      g_assert_cmpstr (run.error->message, ==, i < 5 ? "down" : "circuit breaker is open");
      g_assert_cmpuint (f->n_watch, ==, MIN (i + 1, 5));
      /* (A stream's error comes at its end, after headers.) */
      g_assert_true (run.got_headers == (i < 5));
      stream_run_clear (&run);
    }
  assert_transitions (&r, C, O, -1);
  /* Unary calls share the breaker. */
  assert_get_fails (f, "circuit breaker is open");
  g_assert_cmpuint (f->n_unary, ==, 0);

  f->failing = FALSE;
  pass_open_timeout (f);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(KvWatchRequest) request = kv_test_watch_request ("");
      StreamRun run;

      stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                            CP_MESSAGE (request),
                                                            KV_TYPE_WATCH_EVENT, NULL));
      stream_run_wait (&run);
      g_assert_no_error (run.error);
      g_assert_cmpuint (run.messages->len, ==, 1);
      g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, i == 0 ? H : C);
      stream_run_clear (&run);
    }
  g_assert_cmpuint (f->n_watch, ==, 7);
  assert_transitions (&r, C, O, O, H, H, C, -1);
  recorder_clear (&r, f->breaker);
}

static CpRequestStream *
put_many_stream (Fixture *f)
{
  g_autoptr(GBytes) value = g_bytes_new_static ("v", 1);
  g_autoptr(KvPutRequest) put = kv_test_put_request ("k", value);
  g_autoptr(GError) error = NULL;
  CpRequestStream *stream = cp_channel_call_client_stream (f->channel, KV_PROCEDURE_PUT_MANY,
                                                           KV_TYPE_GET_RESPONSE, NULL);

  g_assert_true (cp_request_stream_send (stream, CP_MESSAGE (put), &error));
  g_assert_no_error (error);
  return stream;
}

static void
test_channel_client_stream (Fixture       *f,
                            gconstpointer  data)
{
  f->failing = TRUE;
  for (guint i = 0; i < 6; i++)
    {
      g_autoptr(CpRequestStream) stream = put_many_stream (f);
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response = test_client_stream (stream, &error);

      g_assert_null (response);
      g_assert_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE);
      g_assert_cmpstr (error->message, ==, i < 5 ? "down" : "circuit breaker is open");
      g_assert_cmpuint (f->n_put_many, ==, MIN (i + 1, 5));
    }
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, O);

  /* The same call closed the half-duplex way: its response stream is
   * refused when it starts. */
  {
    g_autoptr(CpRequestStream) stream = put_many_stream (f);
    StreamRun run;

    stream_run_init (&run, cp_request_stream_close_and_receive (stream));
    stream_run_wait (&run);
    g_assert_error (run.error, CP_ERROR, CP_ERROR_UNAVAILABLE);
    g_assert_cmpstr (run.error->message, ==, "circuit breaker is open");
    stream_run_clear (&run);
  }
  g_assert_cmpuint (f->n_put_many, ==, 5);

  f->failing = FALSE;
  pass_open_timeout (f);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(CpRequestStream) stream = put_many_stream (f);
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response = test_client_stream (stream, &error);

      g_assert_no_error (error);
      g_assert_true (KV_IS_GET_RESPONSE (response));
    }
  g_assert_cmpuint (f->n_put_many, ==, 7);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, C);
}

typedef struct {
  gboolean done;
  CpMessage *message;
  GError *error;
} Pending;

static void
pending_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pending *p = user_data;

  p->message = cp_channel_call_finish (CP_CHANNEL (source), result, &p->error);
  p->done = TRUE;
}

static gboolean
one_hanging (gpointer data)
{
  return ((Fixture *) data)->hanging->len == 1;
}

/* Starts a Get "hang" and waits until the server holds it. */
static void
start_hanging (Fixture      *f,
               GCancellable *cancellable,
               Pending      *p)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("hang");

  memset (p, 0, sizeof *p);
  cp_channel_call_async (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                         KV_TYPE_GET_RESPONSE, NULL, cancellable, pending_done, p);
  test_wait_until (one_hanging, f);
}

static void
test_channel_caller_errors (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;
  Pending p;

  /* One failure would open it. */
  cp_circuit_breaker_set_failure_threshold (f->breaker, 1);

  /* Cancelled by the caller's cancellable: not a failure. */
  start_hanging (f, cancellable, &p);
  g_cancellable_cancel (cancellable);
  test_wait_for (&p.done);
  g_assert_null (p.message);
  g_assert_true (g_error_matches (p.error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
                 g_error_matches (p.error, CP_ERROR, CP_ERROR_CANCELED));
  g_clear_error (&p.error);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, C);

  /* Rejected by the server for the caller's fault: not a failure. */
  response = get (f, "invalid", NULL, &error);
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, C);

  /* A deadline that passes is a failure (as connect-plugin-go counts it). */
  {
    g_autoptr(KvGetRequest) request = kv_test_get_request ("hang");
    g_autoptr(CpCallOptions) options = cp_call_options_new ();

    cp_call_options_set_timeout_ms (options, 50);
    response = test_call_unary (f->channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                KV_TYPE_GET_RESPONSE, options, NULL, &error);
    g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
  }
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, O);
}

static void
test_channel_stale_outcome (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(KvGetResponse) answer = kv_test_get_response (NULL, TRUE);
  Pending p;

  /* One success would close a half-open circuit. */
  cp_circuit_breaker_set_success_threshold (f->breaker, 1);

  /* A call let through while closed ... */
  start_hanging (f, NULL, &p);
  /* ... ends after the circuit opened and became half-open: its success
   * was not a probe's, and does not close the circuit. */
  cp_circuit_breaker_force_open (f->breaker);
  cp_circuit_breaker_force_half_open (f->breaker);
  cp_invocation_return_message (f->hanging->pdata[0], CP_MESSAGE (answer));
  g_ptr_array_set_size (f->hanging, 0);
  test_wait_for (&p.done);
  g_assert_no_error (p.error);
  g_clear_object (&p.message);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, H);

  /* A probe's success does. */
  assert_get_ok (f);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, C);
}

static void
test_channel_exempt (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();

  cp_call_options_set_circuit_breaker_exempt (options, TRUE);
  cp_circuit_breaker_force_open (f->breaker);

  /* The calls a client makes about the server pass an open circuit ... */
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response = get (f, "k", options, &error);

      g_assert_no_error (error);
    }
  {
    g_autoptr(KvWatchRequest) request = kv_test_watch_request ("");
    StreamRun run;

    stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                          CP_MESSAGE (request),
                                                          KV_TYPE_WATCH_EVENT, options));
    stream_run_wait (&run);
    g_assert_no_error (run.error);
    stream_run_clear (&run);
  }
  g_assert_cmpuint (f->n_unary, ==, 3);
  g_assert_cmpuint (f->n_watch, ==, 1);
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, O);

  /* ... and are not counted: their successes do not close it, their
   * failures do not reopen it. */
  cp_circuit_breaker_force_half_open (f->breaker);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(CpMessage) response = NULL;

      f->failing = i == 2;
      response = get (f, "k", options, &error);
      g_assert_true (i < 2 ? error == NULL : error != NULL);
    }
  g_assert_cmpint (cp_circuit_breaker_get_state (f->breaker), ==, H);
}

int
main (int    argc,
      char **argv)
{
  static const char *transports[] = { "tcp", "in-process" };
  static const struct {
    const char *name;
    void (*func) (Fixture *, gconstpointer);
  } channel_tests[] = {
    { "properties", test_channel_properties },
    { "unary", test_channel_unary },
    { "half-open-failure", test_channel_half_open_failure },
    { "server-stream", test_channel_server_stream },
    { "client-stream", test_channel_client_stream },
    { "caller-errors", test_channel_caller_errors },
    { "stale-outcome", test_channel_stale_outcome },
    { "exempt", test_channel_exempt },
  };

  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  g_test_add_func ("/rpc/circuit-breaker/defaults", test_defaults);
  g_test_add_func ("/rpc/circuit-breaker/properties", test_properties);
  g_test_add_func ("/rpc/circuit-breaker/state-machine", test_state_machine);
  g_test_add_func ("/rpc/circuit-breaker/caller-errors", test_caller_errors);
  g_test_add_func ("/rpc/circuit-breaker/half-open-failure", test_half_open_failure);
  g_test_add_func ("/rpc/circuit-breaker/half-open-probes", test_half_open_probes);
  g_test_add_func ("/rpc/circuit-breaker/force", test_force);
  g_test_add_func ("/rpc/circuit-breaker/threads", test_threads);

  for (gsize t = 0; t < G_N_ELEMENTS (transports); t++)
    for (gsize i = 0; i < G_N_ELEMENTS (channel_tests); i++)
      {
        g_autofree char *path = g_strdup_printf ("/rpc/circuit-breaker/channel/%s/%s",
                                                 channel_tests[i].name, transports[t]);

        g_test_add (path, Fixture, transports[t], fixture_setup, channel_tests[i].func,
                    fixture_teardown);
      }

  return g_test_run ();
}
