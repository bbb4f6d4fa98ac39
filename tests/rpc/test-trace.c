/* test-trace.c: W3C trace context (traceparent, tracestate), spans of server
 * and client calls, and per-call debug log lines
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two CpRpcServers serve KV Get in-process: the "front" one records each
 * call's span and, for some keys, calls the "back" one from its handler
 * (during the handler, or later from an idle with an explicit parent); the
 * back one records the traceparent it received and its own span. Spans
 * reach the tests through the span-finished signals; log lines through a
 * writer function that keeps the structured fields of our log domain.
 */
#include <string.h>
#include "client-test-util.h"

#define VALID_TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define VALID_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define VALID_SPAN "00f067aa0ba902b7"

/* ------------------------------------------------------------------------ */
/* Parsing and formatting                                                    */

static void
test_parse_valid (void)
{
  g_autoptr(CpSpanContext) ctx = cp_span_context_parse (VALID_TP, NULL);
  g_autoptr(CpSpanContext) unsampled = NULL;
  g_autoptr(CpSpanContext) future = NULL;
  g_autoptr(CpSpanContext) future_exact = NULL;
  g_autofree char *formatted = NULL;
  gsize len = 0;
  const guint8 *bytes;

  g_assert_nonnull (ctx);
  g_assert_cmpstr (cp_span_context_get_trace_id (ctx), ==, VALID_TRACE);
  g_assert_cmpstr (cp_span_context_get_span_id (ctx), ==, VALID_SPAN);
  g_assert_null (cp_span_context_get_parent_span_id (ctx));
  g_assert_true (cp_span_context_is_sampled (ctx));
  g_assert_cmpuint (cp_span_context_get_flags (ctx), ==, 1);
  g_assert_null (cp_span_context_get_tracestate (ctx));
  bytes = cp_span_context_get_trace_id_bytes (ctx, &len);
  g_assert_cmpuint (len, ==, 16);
  g_assert_cmpuint (bytes[0], ==, 0x4b);
  g_assert_cmpuint (bytes[15], ==, 0x36);
  formatted = cp_span_context_to_traceparent (ctx);
  g_assert_cmpstr (formatted, ==, VALID_TP);

  unsampled = cp_span_context_parse ("00-" VALID_TRACE "-" VALID_SPAN "-00", NULL);
  g_assert_nonnull (unsampled);
  g_assert_false (cp_span_context_is_sampled (unsampled));

  /* A later version: the first 55 characters, then "-" and anything. */
  future = cp_span_context_parse ("cc-" VALID_TRACE "-" VALID_SPAN "-01-what-the-future-will-be-like",
                                  NULL);
  g_assert_nonnull (future);
  g_assert_cmpstr (cp_span_context_get_trace_id (future), ==, VALID_TRACE);
  future_exact = cp_span_context_parse ("01-" VALID_TRACE "-" VALID_SPAN "-09", NULL);
  g_assert_nonnull (future_exact);
  /* Only the sampled flag is kept (and sent on). */
  g_assert_cmpuint (cp_span_context_get_flags (future_exact), ==, 1);
}

static void
test_parse_invalid (void)
{
  static const char * const invalid[] = {
    "",
    "00",
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* uppercase */
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero span id */
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  /* 00 is exact */
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
    "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  /* no "-" after 55 */
    "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",   /* misplaced dash */
    "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
    "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
  };

  g_assert_null (cp_span_context_parse (NULL, "a=b"));
  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr(CpSpanContext) ctx = cp_span_context_parse (invalid[i], NULL);

      if (ctx != NULL)
        g_error ("accepted invalid traceparent \"%s\"", invalid[i]);
    }
}

static char *
tracestate_of (const char *tracestate)
{
  g_autoptr(CpSpanContext) ctx = cp_span_context_parse (VALID_TP, tracestate);

  g_assert_nonnull (ctx);
  return g_strdup (cp_span_context_get_tracestate (ctx));
}

static void
test_tracestate (void)
{
  g_autoptr(GString) many = g_string_new (NULL);
  g_autoptr(GString) long_state = g_string_new (NULL);
  char *s;

  s = tracestate_of ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  g_assert_cmpstr (s, ==, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  g_free (s);
  /* Optional whitespace and empty members go. */
  s = tracestate_of (" rojo=1 ,\t, congo=2 ");
  g_assert_cmpstr (s, ==, "rojo=1,congo=2");
  g_free (s);
  s = tracestate_of ("tenant@vendor=x,a_-*/1=v w");
  g_assert_cmpstr (s, ==, "tenant@vendor=x,a_-*/1=v w");
  g_free (s);

  /* Not valid: dropped as a whole. */
  static const char * const invalid[] = {
    "Rojo=1", "rojo", "rojo=", "rojo=a=b", "rojo=1,rojo=2", "1abc=x", "a@=x",
    "a@B=x", "rojo=a\x01b", "rojo=\x7f", "=x", "a@vendorvendorvend=x",
  };
  for (guint i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      s = tracestate_of (invalid[i]);
      if (s != NULL)
        g_error ("kept invalid tracestate \"%s\" as \"%s\"", invalid[i], s);
    }
  s = tracestate_of ("");
  g_assert_null (s);

  /* 32 members are fine, 33 are not. */
  for (guint i = 0; i < 32; i++)
    g_string_append_printf (many, "%sk%u=v", i ? "," : "", i);
  s = tracestate_of (many->str);
  g_assert_cmpstr (s, ==, many->str);
  g_free (s);
  g_string_append (many, ",k32=v");
  s = tracestate_of (many->str);
  g_assert_null (s);

  /* Longer than 512: long members (> 128) go first, then the last ones. */
  g_string_append (long_state, "first=1,");
  g_string_append (long_state, "big=");
  for (guint i = 0; i < 200; i++)
    g_string_append_c (long_state, 'x');
  for (guint i = 0; i < 20; i++)
    g_string_append_printf (long_state, ",m%02u=%s", i, "0123456789abcdef0123");
  g_assert_cmpuint (long_state->len, >, 512);
  s = tracestate_of (long_state->str);
  g_assert_nonnull (s);
  g_assert_cmpuint (strlen (s), <=, 512);
  g_assert_true (g_str_has_prefix (s, "first=1,m00="));
  g_assert_null (strstr (s, "big="));
  g_free (s);
}

static void
test_new_spans (void)
{
  g_autoptr(CpSpanContext) root = cp_span_context_new_root (TRUE);
  g_autoptr(CpSpanContext) child = cp_span_context_new_child (root);
  g_autoptr(CpSpanContext) parsed = NULL;
  g_autofree char *tp = NULL;

  g_assert_cmpuint (strlen (cp_span_context_get_trace_id (root)), ==, 32);
  g_assert_cmpuint (strlen (cp_span_context_get_span_id (root)), ==, 16);
  g_assert_null (cp_span_context_get_parent_span_id (root));
  g_assert_true (cp_span_context_is_sampled (root));
  g_assert_cmpstr (cp_span_context_get_trace_id (child), ==, cp_span_context_get_trace_id (root));
  g_assert_cmpstr (cp_span_context_get_parent_span_id (child), ==,
                   cp_span_context_get_span_id (root));
  g_assert_cmpstr (cp_span_context_get_span_id (child), !=, cp_span_context_get_span_id (root));

  /* What we format, we parse back. */
  tp = cp_span_context_to_traceparent (child);
  parsed = cp_span_context_parse (tp, NULL);
  g_assert_nonnull (parsed);
  g_assert_cmpstr (cp_span_context_get_span_id (parsed), ==, cp_span_context_get_span_id (child));

  /* The thread-default span nests. */
  g_assert_null (cp_span_context_get_thread_default ());
  cp_span_context_push_thread_default (root);
  cp_span_context_push_thread_default (child);
  g_assert_true (cp_span_context_get_thread_default () == child);
  cp_span_context_pop_thread_default (child);
  g_assert_true (cp_span_context_get_thread_default () == root);
  cp_span_context_pop_thread_default (root);
  g_assert_null (cp_span_context_get_thread_default ());
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */

typedef struct {
  CpRpcServer *front;
  CpRpcServer *back;
  CpChannel *channel;       /* to front */
  CpChannel *back_channel;  /* front's handler → back */
  gboolean front_hook;      /* connect front's span-finished */
  gboolean back_hook;

  /* What the servers saw. */
  CpSpanContext *front_span;    /* cp_invocation_get_span_context () */
  char *back_traceparent;       /* the header back received */
  char *back_tracestate;
  GPtrArray *front_spans;       /* CpSpan, from span-finished */
  GPtrArray *back_spans;
  GPtrArray *client_spans;      /* channel's span-finished */
  GPtrArray *nested_spans;      /* back_channel's */
} Fixture;

static Fixture *current;

static const char *
request_key (CpMessage *request)
{
  Kv__V1__GetRequest *m = cp_message_get_c_message (request);

  return m->key;
}

static void
nested_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(CpInvocation) invocation = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);

  g_assert_no_error (error);
  cp_invocation_return_message (invocation, response);
}

static void
call_back (CpInvocation  *invocation,
           CpCallOptions *options)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request ("plain");

  cp_channel_call_async (current->back_channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                         KV_TYPE_GET_RESPONSE, options, NULL, nested_done,
                         g_object_ref (invocation));
}

static gboolean
call_back_later (gpointer user_data)
{
  g_autoptr(CpInvocation) invocation = user_data;
  g_autoptr(CpCallOptions) options = cp_call_options_new ();

  /* Outside the handler: no thread-default span any more. */
  g_assert_null (cp_span_context_get_thread_default ());
  cp_call_options_set_parent_span (options, cp_invocation_get_span_context (invocation));
  call_back (invocation, options);
  return G_SOURCE_REMOVE;
}

static void
front_get (CpInvocation *invocation,
           CpMessage    *request,
           gpointer      user_data)
{
  const char *key = request_key (request);
  CpSpanContext *span = cp_invocation_get_span_context (invocation);

  g_clear_pointer (&current->front_span, cp_span_context_unref);
  if (span != NULL)
    current->front_span = cp_span_context_ref (span);
  /* While the handler runs, its span is the thread default. */
  g_assert_true (cp_span_context_get_thread_default () == span);

  if (g_strcmp0 (key, "fail") == 0)
    cp_invocation_return_error_literal (invocation, CP_ERROR_NOT_FOUND, "no such key");
  else if (g_strcmp0 (key, "nested") == 0)
    call_back (invocation, NULL);
  else if (g_strcmp0 (key, "nested-later") == 0)
    g_idle_add (call_back_later, g_object_ref (invocation));
  else
    {
      g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

      cp_invocation_return_message (invocation, CP_MESSAGE (response));
    }
}

static void
back_get (CpInvocation *invocation,
          CpMessage    *request,
          gpointer      user_data)
{
  SoupMessageHeaders *headers = cp_invocation_get_request_headers (invocation);
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  g_free (current->back_traceparent);
  current->back_traceparent = g_strdup (soup_message_headers_get_one (headers, "traceparent"));
  g_free (current->back_tracestate);
  current->back_tracestate = g_strdup (soup_message_headers_get_one (headers, "tracestate"));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

/* Server stream: one event, then the end. */
static void
front_watch (CpInvocation *invocation,
             CpMessage    *request,
             gpointer      user_data)
{
  g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "k", NULL);

  g_clear_pointer (&current->front_span, cp_span_context_unref);
  if (cp_invocation_get_span_context (invocation) != NULL)
    current->front_span = cp_span_context_ref (cp_invocation_get_span_context (invocation));
  g_assert_true (cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL));
  cp_invocation_return_ok (invocation);
}

static void
on_span (GObject   *source,
         CpSpan    *span,
         GPtrArray *into)
{
  g_ptr_array_add (into, cp_span_ref (span));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(CpMethodInfo) info = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                     KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);

  current = f;
  f->front = cp_rpc_server_new ();
  f->back = cp_rpc_server_new ();
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);

  cp_rpc_server_add_method (f->front, info, front_get, NULL, NULL);
  cp_rpc_server_add_method (f->front, watch, front_watch, NULL, NULL);
  cp_rpc_server_add_method (f->back, info, back_get, NULL, NULL);
  f->channel = cp_channel_new_in_process (f->front);
  f->back_channel = cp_channel_new_in_process (f->back);
  f->front_spans = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_span_unref);
  f->back_spans = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_span_unref);
  f->client_spans = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_span_unref);
  f->nested_spans = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_span_unref);
  g_signal_connect (f->channel, "span-finished", G_CALLBACK (on_span), f->client_spans);
  g_signal_connect (f->back_channel, "span-finished", G_CALLBACK (on_span), f->nested_spans);
  g_signal_connect (f->back, "span-finished", G_CALLBACK (on_span), f->back_spans);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  g_clear_object (&f->channel);
  g_clear_object (&f->back_channel);
  g_clear_object (&f->front);
  g_clear_object (&f->back);
  g_clear_pointer (&f->front_span, cp_span_context_unref);
  g_clear_pointer (&f->back_traceparent, g_free);
  g_clear_pointer (&f->back_tracestate, g_free);
  g_ptr_array_unref (f->front_spans);
  g_ptr_array_unref (f->back_spans);
  g_ptr_array_unref (f->client_spans);
  g_ptr_array_unref (f->nested_spans);
  current = NULL;
}

static void
hook_front (Fixture *f)
{
  g_signal_connect (f->front, "span-finished", G_CALLBACK (on_span), f->front_spans);
}

static void
get (Fixture       *f,
     const char    *key,
     CpCallOptions *options,
     CpError        expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = test_kv_get (f->channel, key, options, &error);

  if (expected == 0)
    g_assert_no_error (error);
  else
    g_assert_error (error, CP_ERROR, (gint) expected);
}

/* A caller's traceparent (request metadata) is continued: the client span
 * is its child, the server span the client span's child. */
static void
test_server_continues (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  CpSpanContext *client;

  soup_message_headers_append (cp_call_options_get_request_headers (options), "traceparent", VALID_TP);
  soup_message_headers_append (cp_call_options_get_request_headers (options), "tracestate", "rojo=1");
  get (f, "plain", options, 0);

  g_assert_nonnull (f->front_span);
  g_assert_cmpstr (cp_span_context_get_trace_id (f->front_span), ==, VALID_TRACE);
  g_assert_cmpstr (cp_span_context_get_tracestate (f->front_span), ==, "rojo=1");
  g_assert_cmpuint (f->client_spans->len, ==, 1);
  client = cp_span_get_context (f->client_spans->pdata[0]);
  g_assert_cmpstr (cp_span_context_get_trace_id (client), ==, VALID_TRACE);
  g_assert_cmpstr (cp_span_context_get_parent_span_id (client), ==, VALID_SPAN);
  g_assert_cmpstr (cp_span_context_get_parent_span_id (f->front_span), ==,
                   cp_span_context_get_span_id (client));
  g_assert_cmpstr (cp_span_context_get_span_id (f->front_span), !=, VALID_SPAN);
  g_assert_cmpint (cp_span_get_kind (f->client_spans->pdata[0]), ==, CP_SPAN_KIND_CLIENT);
  g_assert_cmpstr (cp_span_get_peer (f->client_spans->pdata[0]), ==, "in-process");
  /* No hook on the front server: nothing emitted, no trace started. */
  g_assert_cmpuint (f->front_spans->len, ==, 0);
}

/* No traceparent: a new trace only when tracing is on (a hook). */
static void
test_server_new_trace (Fixture       *f,
                       gconstpointer  data)
{
  get (f, "plain", NULL, 0);
  g_assert_null (f->front_span);
  g_assert_cmpuint (f->client_spans->len, ==, 0);

  hook_front (f);
  get (f, "plain", NULL, 0);
  g_assert_nonnull (f->front_span);
  g_assert_null (cp_span_context_get_parent_span_id (f->front_span));
  g_assert_true (cp_span_context_is_sampled (f->front_span));
  g_assert_cmpuint (f->front_spans->len, ==, 1);
  g_assert_true (cp_span_get_context (f->front_spans->pdata[0]) == f->front_span);
  /* The channel does not trace by default. */
  g_assert_cmpuint (f->client_spans->len, ==, 0);

  /* An invalid traceparent starts a new trace too. */
  {
    g_autoptr(CpCallOptions) options = cp_call_options_new ();

    soup_message_headers_append (cp_call_options_get_request_headers (options), "traceparent",
                                 "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
    get (f, "plain", options, 0);
    g_assert_nonnull (f->front_span);
    g_assert_cmpstr (cp_span_context_get_trace_id (f->front_span), !=,
                     "00000000000000000000000000000000");
    g_assert_null (cp_span_context_get_parent_span_id (f->front_span));
  }
}

/* CpChannel:tracing: every call starts a trace. */
static void
test_channel_tracing (Fixture       *f,
                      gconstpointer  data)
{
  g_object_set (f->channel, "tracing", TRUE, NULL);
  get (f, "plain", NULL, 0);
  g_assert_cmpuint (f->client_spans->len, ==, 1);
  g_assert_nonnull (f->front_span);
  g_assert_cmpstr (cp_span_context_get_trace_id (f->front_span), ==,
                   cp_span_context_get_trace_id (cp_span_get_context (f->client_spans->pdata[0])));
  g_assert_null (cp_span_context_get_parent_span_id (cp_span_get_context (f->client_spans->pdata[0])));
}

/* A call the handler makes continues the server span. */
static void
test_nested_inherits (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(CpSpanContext) sent = NULL;
  CpSpanContext *nested_client, *back;

  hook_front (f);
  get (f, data, NULL, 0);

  g_assert_nonnull (f->front_span);
  g_assert_nonnull (f->back_traceparent);
  sent = cp_span_context_parse (f->back_traceparent, NULL);
  g_assert_nonnull (sent);
  g_assert_cmpstr (cp_span_context_get_trace_id (sent), ==,
                   cp_span_context_get_trace_id (f->front_span));

  g_assert_cmpuint (f->nested_spans->len, ==, 1);
  nested_client = cp_span_get_context (f->nested_spans->pdata[0]);
  g_assert_cmpstr (cp_span_context_get_parent_span_id (nested_client), ==,
                   cp_span_context_get_span_id (f->front_span));
  g_assert_cmpstr (cp_span_context_get_span_id (sent), ==, cp_span_context_get_span_id (nested_client));

  g_assert_cmpuint (f->back_spans->len, ==, 1);
  back = cp_span_get_context (f->back_spans->pdata[0]);
  g_assert_cmpstr (cp_span_context_get_trace_id (back), ==, cp_span_context_get_trace_id (f->front_span));
  g_assert_cmpstr (cp_span_context_get_parent_span_id (back), ==,
                   cp_span_context_get_span_id (nested_client));
  g_assert_cmpuint (f->front_spans->len, ==, 1);
}

/* Explicit parent in the options, from outside any handler. */
static void
test_explicit_parent (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(CpSpanContext) parent = cp_span_context_parse (VALID_TP, NULL);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();

  cp_call_options_set_parent_span (options, parent);
  g_assert_true (cp_call_options_get_parent_span (options) == parent);
  get (f, "plain", options, 0);
  g_assert_nonnull (f->front_span);
  g_assert_cmpstr (cp_span_context_get_trace_id (f->front_span), ==, VALID_TRACE);
  g_assert_cmpuint (f->client_spans->len, ==, 1);
  g_assert_cmpstr (cp_span_context_get_parent_span_id (cp_span_get_context (f->client_spans->pdata[0])),
                   ==, VALID_SPAN);

  /* The thread-default span, outside any server. */
  g_ptr_array_set_size (f->client_spans, 0);
  cp_span_context_push_thread_default (parent);
  get (f, "plain", NULL, 0);
  cp_span_context_pop_thread_default (parent);
  g_assert_cmpstr (cp_span_context_get_trace_id (f->front_span), ==, VALID_TRACE);
  g_assert_cmpuint (f->client_spans->len, ==, 1);
}

/* span-finished: once per call, with its status. */
static void
test_span_finished (Fixture       *f,
                    gconstpointer  data)
{
  CpSpan *span;

  hook_front (f);
  g_object_set (f->channel, "tracing", TRUE, NULL);
  get (f, "plain", NULL, 0);
  get (f, "fail", NULL, CP_ERROR_NOT_FOUND);

  g_assert_cmpuint (f->front_spans->len, ==, 2);
  g_assert_cmpuint (f->client_spans->len, ==, 2);
  span = f->front_spans->pdata[0];
  g_assert_cmpstr (cp_span_get_name (span), ==, KV_PROCEDURE_GET);
  g_assert_cmpint (cp_span_get_kind (span), ==, CP_SPAN_KIND_SERVER);
  g_assert_cmpuint (cp_span_get_status_code (span), ==, 0);
  g_assert_null (cp_span_get_status_message (span));
  g_assert_cmpint (cp_span_get_start_time (span), >, 0);
  g_assert_cmpint (cp_span_get_end_time (span), >=, cp_span_get_start_time (span));
  g_assert_null (cp_span_get_peer (span));  /* in-process */
  span = f->front_spans->pdata[1];
  g_assert_cmpuint (cp_span_get_status_code (span), ==, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (cp_span_get_status_message (span), ==, "no such key");
  span = f->client_spans->pdata[1];
  g_assert_cmpuint (cp_span_get_status_code (span), ==, CP_ERROR_NOT_FOUND);
  g_assert_cmpstr (cp_span_context_get_span_id (cp_span_get_context (span)), ==,
                   cp_span_context_get_parent_span_id (cp_span_get_context (f->front_spans->pdata[1])));
}

/* Streams carry the trace too, and report one client span each. */
static void
test_stream (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(CpSpanContext) parent = cp_span_context_parse (VALID_TP, NULL);
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  g_autoptr(KvWatchRequest) request = kv_test_watch_request ("k");
  StreamRun run;

  hook_front (f);
  cp_call_options_set_parent_span (options, parent);
  stream_run_init (&run, cp_channel_call_server_stream (f->channel, KV_PROCEDURE_WATCH,
                                                        CP_MESSAGE (request),
                                                        KV_TYPE_WATCH_EVENT, options));
  stream_run_wait (&run);
  g_assert_no_error (run.error);
  g_assert_cmpuint (run.messages->len, ==, 1);
  stream_run_clear (&run);

  g_assert_nonnull (f->front_span);
  g_assert_cmpstr (cp_span_context_get_trace_id (f->front_span), ==, VALID_TRACE);
  g_assert_cmpuint (f->client_spans->len, ==, 1);
  g_assert_cmpstr (cp_span_get_name (f->client_spans->pdata[0]), ==, KV_PROCEDURE_WATCH);
  g_assert_cmpstr (cp_span_context_get_parent_span_id (f->front_span), ==,
                   cp_span_context_get_span_id (cp_span_get_context (f->client_spans->pdata[0])));
  g_assert_cmpuint (f->front_spans->len, ==, 1);
  g_assert_cmpuint (cp_span_get_status_code (f->front_spans->pdata[0]), ==, 0);
}

/* ------------------------------------------------------------------------ */
/* Log lines                                                                 */

static GPtrArray *log_lines;   /* GHashTable: field → value, our CP_ lines */

static GLogWriterOutput
capture_writer (GLogLevelFlags   level,
                const GLogField *fields,
                gsize            n_fields,
                gpointer         user_data)
{
  GHashTable *line = NULL;

  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "CP_METHOD"))
      line = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (line != NULL)
    {
      for (gsize i = 0; i < n_fields; i++)
        g_hash_table_insert (line, g_strdup (fields[i].key),
                             fields[i].length < 0 ? g_strdup (fields[i].value)
                                                  : g_strndup (fields[i].value, fields[i].length));
      g_ptr_array_add (log_lines, line);
      return G_LOG_WRITER_HANDLED;
    }
  /* Other debug lines would mix with the TAP output. */
  if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static GHashTable *
find_line (const char *side)
{
  for (guint i = 0; i < log_lines->len; i++)
    if (g_strcmp0 (g_hash_table_lookup (log_lines->pdata[i], "CP_SIDE"), side) == 0)
      return log_lines->pdata[i];
  return NULL;
}

static void
test_log_lines (Fixture       *f,
                gconstpointer  data)
{
  GHashTable *server, *client;

  g_ptr_array_set_size (log_lines, 0);
  get (f, "fail", NULL, CP_ERROR_NOT_FOUND);
  g_assert_cmpuint (log_lines->len, ==, 0);

  /* Turned on at run time (G_MESSAGES_DEBUG is read once: see
   * test_log_lines_environment ()). */
  g_assert_false (cp_log_debug_enabled ("ConnectPlugin"));
  g_log_set_debug_enabled (TRUE);
  g_assert_true (cp_log_debug_enabled ("ConnectPlugin"));
  g_assert_true (cp_log_debug_enabled (NULL));
  hook_front (f);
  get (f, "fail", NULL, CP_ERROR_NOT_FOUND);
  g_log_set_debug_enabled (FALSE);
  g_assert_false (cp_log_debug_enabled ("ConnectPlugin"));

  server = find_line ("server");
  client = find_line ("client");
  g_assert_nonnull (server);
  g_assert_nonnull (client);
  g_assert_cmpstr (g_hash_table_lookup (server, "GLIB_DOMAIN"), ==, "ConnectPlugin");
  g_assert_cmpstr (g_hash_table_lookup (server, "CP_METHOD"), ==, KV_PROCEDURE_GET);
  g_assert_cmpstr (g_hash_table_lookup (server, "CP_CODE"), ==, "not_found");
  g_assert_nonnull (g_hash_table_lookup (server, "CP_DURATION_US"));
  g_assert_cmpint (g_ascii_strtoll (g_hash_table_lookup (server, "CP_DURATION_US"), NULL, 10), >=, 0);
  g_assert_cmpstr (g_hash_table_lookup (server, "CP_PEER"), ==, "");
  g_assert_cmpstr (g_hash_table_lookup (server, "CP_TRACE_ID"), ==,
                   cp_span_context_get_trace_id (f->front_span));
  g_assert_nonnull (strstr (g_hash_table_lookup (server, "MESSAGE"), KV_PROCEDURE_GET));
  g_assert_cmpstr (g_hash_table_lookup (client, "CP_CODE"), ==, "not_found");
  g_assert_cmpstr (g_hash_table_lookup (client, "CP_PEER"), ==, "in-process");
  /* The client sent no trace (the channel does not trace). */
  g_assert_cmpstr (g_hash_table_lookup (client, "CP_TRACE_ID"), ==, "");

  /* Off again: silent. */
  g_ptr_array_set_size (log_lines, 0);
  get (f, "plain", NULL, 0);
  g_assert_cmpuint (log_lines->len, ==, 0);
}

/* G_MESSAGES_DEBUG as the process starts: in a subprocess, whose first
 * call reads it. It names the domain among others (GLib's rule). */
static void
test_log_lines_environment (void)
{
  if (g_test_subprocess ())
    {
      Fixture f = { 0 };

      g_assert_false (g_log_get_debug_enabled ());
      /* The public check, with GLib's rule: the domain anywhere in the list. */
      g_assert_true (cp_log_debug_enabled ("kv"));
      g_assert_true (cp_log_debug_enabled ("ConnectPlugin"));
      g_assert_false (cp_log_debug_enabled ("Other"));
      g_assert_false (cp_log_debug_enabled (NULL));
      fixture_setup (&f, NULL);
      g_ptr_array_set_size (log_lines, 0);
      get (&f, "fail", NULL, CP_ERROR_NOT_FOUND);
      g_assert_nonnull (find_line ("server"));
      g_assert_nonnull (find_line ("client"));
      g_assert_cmpstr (g_hash_table_lookup (find_line ("server"), "CP_CODE"), ==, "not_found");
      fixture_teardown (&f, NULL);
      return;
    }
  g_setenv ("G_MESSAGES_DEBUG", "kv ConnectPlugin", TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_unsetenv ("G_MESSAGES_DEBUG");
  g_test_trap_assert_passed ();
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();
  if (!g_test_subprocess ())
    g_unsetenv ("G_MESSAGES_DEBUG");
  log_lines = g_ptr_array_new_with_free_func ((GDestroyNotify) g_hash_table_unref);
  g_log_set_writer_func (capture_writer, NULL, NULL);

  g_test_add_func ("/trace/parse/valid", test_parse_valid);
  g_test_add_func ("/trace/parse/invalid", test_parse_invalid);
  g_test_add_func ("/trace/parse/tracestate", test_tracestate);
  g_test_add_func ("/trace/span/new", test_new_spans);
  g_test_add ("/trace/server/continues", Fixture, NULL, fixture_setup, test_server_continues,
              fixture_teardown);
  g_test_add ("/trace/server/new-trace", Fixture, NULL, fixture_setup, test_server_new_trace,
              fixture_teardown);
  g_test_add ("/trace/client/tracing", Fixture, NULL, fixture_setup, test_channel_tracing,
              fixture_teardown);
  g_test_add ("/trace/nested/in-handler", Fixture, "nested", fixture_setup, test_nested_inherits,
              fixture_teardown);
  g_test_add ("/trace/nested/explicit-later", Fixture, "nested-later", fixture_setup,
              test_nested_inherits, fixture_teardown);
  g_test_add ("/trace/client/explicit-parent", Fixture, NULL, fixture_setup, test_explicit_parent,
              fixture_teardown);
  g_test_add ("/trace/span-finished", Fixture, NULL, fixture_setup, test_span_finished,
              fixture_teardown);
  g_test_add ("/trace/client/server-stream", Fixture, NULL, fixture_setup, test_stream,
              fixture_teardown);
  g_test_add ("/trace/log-lines", Fixture, NULL, fixture_setup, test_log_lines, fixture_teardown);
  g_test_add_func ("/trace/log-lines/environment", test_log_lines_environment);

  return g_test_run ();
}
