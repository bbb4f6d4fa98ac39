/* test-client-sync.c: blocking calls with no main loop running (issue 12)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The server runs in a thread of its own, with its own context and loop;
 * the test threads only make cp_channel_call_sync() calls and never
 * iterate their contexts, as a script without a main loop does. Every
 * call also carries a 10 s timeout: a hang guard, so that a call that
 * would wait for ever fails instead.
 *
 * The server's open connections are counted in /proc/net/tcp (its
 * ESTABLISHED and CLOSE_WAIT sockets on the listening port): sequential
 * calls must reuse a bounded number of them.
 */
#include <stdio.h>
#include <string.h>
#include "client-test-util.h"

#define HANG_GUARD_MS 10000
/* Connections one sequential caller may have open at a time: the one in
 * use, and one the server has not finished closing. */
#define MAX_CONNECTIONS 2

typedef struct {
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  CpRpcServer *server;
  CpChannel *in_process;   /* made in the server's context, as it must be */
  GPtrArray *hanging;      /* server thread only */
  char *url;
  guint port;
  GMutex lock;
  GCond cond;
} ServerThread;

/* ---- the server, in its own thread ---- */

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  ServerThread *st = user_data;
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvGetResponse) response = NULL;

  if (g_str_equal (key, "hang"))
    {
      g_ptr_array_add (st->hanging, g_object_ref (invocation));
      return;
    }
  if (g_str_equal (key, "missing"))
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND, "no such key");
      return;
    }
  if (g_str_equal (key, "big"))
    value = g_bytes_new_take (g_malloc0 (64 * 1024), 64 * 1024);
  else
    value = g_bytes_new (key, strlen (key));
  response = kv_test_get_response (value, TRUE);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_put (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  g_autoptr(KvPutResponse) response = kv_put_response_new ();

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static gpointer
server_thread (gpointer data)
{
  ServerThread *st = data;
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(CpMethodInfo) put = cp_method_info_new (KV_PROCEDURE_PUT, CP_METHOD_UNARY,
                                                    KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;
  char *url;

  g_main_context_push_thread_default (st->context);
  st->server = cp_rpc_server_new ();
  cp_rpc_server_add_method (st->server, get, handle_get, st, NULL);
  cp_rpc_server_add_method (st->server, put, handle_put, st, NULL);
  st->in_process = cp_channel_new_in_process (st->server);
  url = cp_rpc_server_listen (st->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);

  g_mutex_lock (&st->lock);
  st->port = g_uri_get_port (uri);
  st->url = url;
  g_cond_signal (&st->cond);
  g_mutex_unlock (&st->lock);

  g_main_loop_run (st->loop);

  for (guint i = 0; i < st->hanging->len; i++)
    cp_invocation_return_error (st->hanging->pdata[i], CP_ERROR_CANCELED, "teardown");
  g_ptr_array_set_size (st->hanging, 0);
  g_clear_object (&st->in_process);
  cp_rpc_server_close (st->server);
  while (g_main_context_iteration (st->context, FALSE))
    ;
  g_clear_object (&st->server);
  g_main_context_pop_thread_default (st->context);
  return NULL;
}

static void
server_start (ServerThread *st)
{
  memset (st, 0, sizeof *st);
  g_mutex_init (&st->lock);
  g_cond_init (&st->cond);
  st->context = g_main_context_new ();
  st->loop = g_main_loop_new (st->context, FALSE);
  st->hanging = g_ptr_array_new_with_free_func (g_object_unref);
  st->thread = g_thread_new ("server", server_thread, st);
  g_mutex_lock (&st->lock);
  while (st->url == NULL)
    g_cond_wait (&st->cond, &st->lock);
  g_mutex_unlock (&st->lock);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
server_stop (ServerThread *st)
{
  g_main_context_invoke (st->context, quit_loop, st->loop);
  g_thread_join (st->thread);
  g_main_loop_unref (st->loop);
  g_main_context_unref (st->context);
  g_ptr_array_unref (st->hanging);
  g_free (st->url);
  g_mutex_clear (&st->lock);
  g_cond_clear (&st->cond);
}

/* The server's sockets on @port that are connected or that the peer has
 * closed (ESTABLISHED, CLOSE_WAIT): those it holds open. */
static guint
count_server_connections (guint port)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;
  guint n = 0;

  g_file_get_contents ("/proc/net/tcp", &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      unsigned int local_port, state;

      if (sscanf (lines[i], " %*u: %*x:%x %*x:%*x %x", &local_port, &state) == 2 &&
          local_port == port && state == 0x01 /* ESTABLISHED: a connection the client still holds */)
        n++;
    }
  return n;
}

/* ---- calls ---- */

static CpCallOptions *
guarded_options (void)
{
  CpCallOptions *options = cp_call_options_new ();

  cp_call_options_set_timeout_ms (options, HANG_GUARD_MS);
  return options;
}

static CpMessage *
sync_get (CpChannel   *channel,
          const char  *key,
          GError     **error)
{
  g_autoptr(KvGetRequest) request = kv_test_get_request (key);
  g_autoptr(CpCallOptions) options = guarded_options ();

  return cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                               KV_TYPE_GET_RESPONSE, options, NULL, error);
}

static void
sync_get_ok (CpChannel  *channel,
             const char *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = sync_get (channel, key, &error);
  g_autoptr(GBytes) expected = g_bytes_new (key, strlen (key));
  g_autoptr(GBytes) value = NULL;

  g_assert_no_error (error);
  /* Not test_get_value (): its buffer is shared by all threads. */
  value = kv_get_response_get_value (KV_GET_RESPONSE (response));
  g_assert_true (g_bytes_equal (value, expected));
}

static void
sync_put_ok (CpChannel  *channel,
             const char *key)
{
  g_autoptr(GBytes) value = g_bytes_new_static ("v", 1);
  g_autoptr(KvPutRequest) request = kv_test_put_request (key, value);
  g_autoptr(CpCallOptions) options = guarded_options ();
  g_autoptr(CpMessage) response = NULL;
  g_autoptr(GError) error = NULL;

  response = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (request),
                                   KV_TYPE_PUT_RESPONSE, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (KV_IS_PUT_RESPONSE (response));
}

/* @n calls alternating Put and Get, checking the server's connections
 * every @check_every calls against @max_connections. */
static void
run_sequential (CpChannel    *channel,
                ServerThread *st,
                guint         n,
                guint         check_every,
                guint         max_connections)
{
  guint max_seen = 0;

  for (guint i = 0; i < n; i++)
    {
      char key[32];

      g_snprintf (key, sizeof key, "k%u", i % 100);
      if (i % 2 == 0)
        sync_put_ok (channel, key);
      else
        sync_get_ok (channel, key);
      if (i % check_every == check_every - 1)
        {
          guint n_open = count_server_connections (st->port);

          max_seen = MAX (max_seen, n_open);
          g_assert_cmpuint (n_open, <=, max_connections);
        }
    }
  g_test_message ("%u calls: at most %u connections open", n, max_seen);
}

/* ---- tests ---- */

static void
test_sequential (void)
{
  ServerThread st;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  server_start (&st);
  channel = cp_channel_new (st.url, &error);
  g_assert_no_error (error);
  /* Calls 1–64 used to leave their connection in use; call 65 waited for
   * one for ever. */
  run_sequential (channel, &st, 10000, 10, MAX_CONNECTIONS);
  g_clear_object (&channel);
  server_stop (&st);
}

typedef struct {
  ServerThread *st;
  guint n_calls;
} ThreadRun;

static gpointer
caller_thread (gpointer data)
{
  ThreadRun *run = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (run->st->url, &error);

  g_assert_no_error (error);
  /* All four callers' connections together. */
  run_sequential (channel, run->st, run->n_calls, 50, 4 * MAX_CONNECTIONS);
  return NULL;
}

static void
test_threads (void)
{
  ServerThread st;
  ThreadRun run;
  GThread *threads[4];

  server_start (&st);
  run.st = &st;
  run.n_calls = 2500;
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("caller", caller_thread, &run);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_thread_join (threads[i]);
  g_assert_cmpuint (count_server_connections (st.port), <=, 4 * MAX_CONNECTIONS);
  server_stop (&st);
}

static void
test_mixed (void)
{
  ServerThread st;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  server_start (&st);
  channel = cp_channel_new (st.url, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 1000; i++)
    {
      g_autoptr(KvGetRequest) request = kv_test_get_request ("async");
      g_autoptr(CpCallOptions) options = guarded_options ();
      g_autoptr(CpMessage) response = NULL;

      sync_get_ok (channel, "sync");
      /* An async call on the same channel, this thread's context iterated
       * only until it completes. */
      response = test_call_unary (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                  KV_TYPE_GET_RESPONSE, options, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (test_get_value (response), ==, "async");
      /* Blocking and asynchronous calls have a pool each, so each of the
       * two sequential callers may hold its MAX_CONNECTIONS (seen under
       * ASan on a loaded machine: the async call's connection goes back
       * to its pool an iteration after the callback). Stranded
       * connections would grow past that. */
      if (i % 10 == 9)
        g_assert_cmpuint (count_server_connections (st.port), <=, 2 * MAX_CONNECTIONS);
    }
  g_clear_object (&channel);
  server_stop (&st);
}

static void
async_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* A blocking call made while an asynchronous call of this thread's context
 * is still connecting: libsoup 3.2 makes a message wait for a connection
 * the same thread is opening (in case it becomes HTTP/2), and that one
 * only completes when the blocked context runs. Blocking calls have a
 * connection pool of their own, so they do not wait (they used to, until
 * their deadline). */
static void
test_async_connecting (void)
{
  ServerThread st;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("async");
  g_autoptr(CpCallOptions) options = guarded_options ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(CpMessage) response = NULL;
  gint64 started;

  server_start (&st);
  channel = cp_channel_new (st.url, &error);
  g_assert_no_error (error);
  cp_channel_call_async (channel, KV_PROCEDURE_GET, CP_MESSAGE (request), KV_TYPE_GET_RESPONSE,
                         options, NULL, async_done, &result);
  /* One dispatch: libsoup starts opening a connection for it. */
  g_main_context_iteration (NULL, FALSE);
  g_assert_null (result);

  started = g_get_monotonic_time ();
  sync_get_ok (channel, "sync");
  g_test_message ("the blocking call took %" G_GINT64_FORMAT " µs",
                  g_get_monotonic_time () - started);

  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  response = cp_channel_call_finish (channel, result, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (test_get_value (response), ==, "async");
  g_clear_object (&channel);
  server_stop (&st);
}

static void
test_errors (void)
{
  ServerThread st;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  server_start (&st);
  channel = cp_channel_new (st.url, &error);
  g_assert_no_error (error);
  g_object_set (channel, "max-receive-size", (guint64) 1024, NULL);
  for (guint i = 0; i < 300; i++)
    {
      g_autoptr(CpMessage) response = NULL;

      /* An error answer (the body is read to its end)... */
      response = sync_get (channel, "missing", &error);
      g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
      g_assert_null (response);
      g_clear_error (&error);
      /* ...and a response over the limit (the exchange is aborted). */
      response = sync_get (channel, "big", &error);
      g_assert_error (error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED);
      g_assert_null (response);
      g_clear_error (&error);
      sync_get_ok (channel, "ok");
      if (i % 10 == 9)
        g_assert_cmpuint (count_server_connections (st.port), <=, MAX_CONNECTIONS + 1);
    }
  g_clear_object (&channel);
  server_stop (&st);
}

static void
test_deadline (void)
{
  ServerThread st;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(GError) error = NULL;

  server_start (&st);
  channel = cp_channel_new (st.url, &error);
  g_assert_no_error (error);
  /* The channel's default deadline, shortened, cuts a call the server
   * never answers; the aborted exchanges leave nothing behind. */
  g_object_set (channel, "timeout-ms", (gint64) 50, NULL);
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(KvGetRequest) request = kv_test_get_request ("hang");
      g_autoptr(CpMessage) response = NULL;

      response = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (request),
                                       KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
      g_assert_error (error, CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED);
      g_assert_null (response);
      g_clear_error (&error);
      sync_get_ok (channel, "ok");
      g_assert_cmpuint (count_server_connections (st.port), <=, MAX_CONNECTIONS + 1);
    }
  g_clear_object (&channel);
  server_stop (&st);
}

static void
test_in_process (void)
{
  ServerThread st;
  g_autoptr(CpChannel) channel = NULL;

  server_start (&st);
  channel = g_object_ref (st.in_process);
  for (guint i = 0; i < 2000; i++)
    {
      char key[32];

      g_snprintf (key, sizeof key, "k%u", i);
      sync_get_ok (channel, key);
    }
  g_assert_cmpuint (count_server_connections (st.port), ==, 0);
  g_clear_object (&channel);
  server_stop (&st);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  kv_test_ensure_types ();

  g_test_add_func ("/client/sync/sequential", test_sequential);
  g_test_add_func ("/client/sync/threads", test_threads);
  g_test_add_func ("/client/sync/mixed", test_mixed);
  g_test_add_func ("/client/sync/async-connecting", test_async_connecting);
  g_test_add_func ("/client/sync/errors", test_errors);
  g_test_add_func ("/client/sync/deadline", test_deadline);
  g_test_add_func ("/client/sync/in-process", test_in_process);

  return g_test_run ();
}
