/* test-rpc-workers.c: CpRpcServer:n-workers, connections served by worker threads
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The server runs in this thread's main context (its listeners, the
 * acceptor); clients run in threads of their own with blocking sockets
 * (HTTP/1.1 over TCP, a unix socket and TLS) or a CpChannel (HTTP/2 h2c).
 * The handler records the thread and the thread-default context of every
 * call. The acceptor hands connections to the workers in turn, so with at
 * least n-workers connections each worker serves some: the tests assert
 * exactly n-workers distinct handler threads, none of them this one.
 * Nothing here measures time.
 */
#include <string.h>
#include <glib/gstdio.h>

#include <connectplugin.h>
#include "kv-test.h"
#include "cp-rpc-server-private.h"

/* Hang guard for a client's blocking socket (not a timing assertion). */
#define CLIENT_IO_TIMEOUT_S 30

typedef struct {
  CpRpcServer *server;
  char *url;
  char *tmpdir;
  GMutex lock;
  GHashTable *threads;       /* GThread* seen in handlers */
  GHashTable *contexts;      /* GMainContext* thread-default in handlers */
  guint n_calls;             /* handled */
  guint n_slow_waiting;      /* slow calls inside their handler (atomic) */
  gboolean bad_context;      /* a handler ran outside its worker's context */
  GPtrArray *kept;           /* never-answered invocations */
  GThread *main_thread;
} Workers;

/* ---- the server ---- */

typedef struct {
  CpInvocation *invocation;
  char *key;
} SlowCall;

static void
answer (CpInvocation *invocation,
        const char   *key)
{
  g_autoptr(KvGetResponse) response = kv_get_response_new ();
  g_autoptr(GBytes) value = g_bytes_new (key, strlen (key));

  kv_get_response_set_found (response, TRUE);
  kv_get_response_set_value (response, value);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static gboolean
slow_answer_cb (gpointer data)
{
  SlowCall *call = data;

  answer (call->invocation, call->key);
  g_object_unref (call->invocation);
  g_free (call->key);
  g_free (call);
  return G_SOURCE_REMOVE;
}

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  Workers *f = user_data;
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  GMainContext *context = g_main_context_get_thread_default ();

  g_mutex_lock (&f->lock);
  g_hash_table_add (f->threads, g_thread_self ());
  g_hash_table_add (f->contexts, context);
  if (context == NULL || !g_main_context_is_owner (context) ||
      context == cp_rpc_server_get_context (f->server) ||
      g_thread_self () == f->main_thread)
    f->bad_context = TRUE;
  f->n_calls++;
  g_mutex_unlock (&f->lock);

  if (g_str_has_prefix (key, "slow"))
    {
      /* Answered from the worker's main loop, after the test has seen
       * every slow call arrive and started the shutdown. */
      SlowCall *call = g_new0 (SlowCall, 1);
      g_autoptr(GSource) source = g_timeout_source_new (50);

      call->invocation = g_object_ref (invocation);
      call->key = g_strdup (key);
      g_source_set_callback (source, slow_answer_cb, call, NULL);
      g_source_attach (source, context);
      g_atomic_int_inc (&f->n_slow_waiting);
      /* The test thread waits for this in its main loop. */
      g_main_context_wakeup (g_main_context_default ());
      return;
    }
  if (g_str_has_prefix (key, "never"))
    {
      /* Never answered: close() must end it. */
      g_mutex_lock (&f->lock);
      g_ptr_array_add (f->kept, g_object_ref (invocation));
      g_mutex_unlock (&f->lock);
      g_atomic_int_inc (&f->n_slow_waiting);
      /* The test thread waits for this in its main loop. */
      g_main_context_wakeup (g_main_context_default ());
      return;
    }
  answer (invocation, key);
}

static void
fixture_start (Workers    *f,
               guint       n_workers,
               const char *transport)
{
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;

  g_mutex_init (&f->lock);
  f->threads = g_hash_table_new (NULL, NULL);
  f->contexts = g_hash_table_new (NULL, NULL);
  f->kept = g_ptr_array_new_with_free_func (g_object_unref);
  f->main_thread = g_thread_self ();
  f->server = cp_rpc_server_new ();
  g_object_set (f->server, "n-workers", n_workers, NULL);
  cp_rpc_server_add_method (f->server, get, handle_get, f, NULL);

  if (g_str_equal (transport, "tls"))
    {
      g_autoptr(GTlsCertificate) cert = g_tls_certificate_new_from_file (TEST_TLS_PEM, &error);

      g_assert_no_error (error);
      g_object_set (f->server, "tls-certificate", cert, NULL);
    }
  if (g_str_equal (transport, "unix"))
    {
      f->tmpdir = g_dir_make_tmp ("cp-workers-XXXXXX", &error);
      g_assert_no_error (error);
      address = g_strdup_printf ("unix:%s/sock", f->tmpdir);
    }
  f->url = cp_rpc_server_listen (f->server, address ? address : "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cp_http_server_get_n_running_workers (cp_rpc_server_get_http_server (f->server)),
                    ==, n_workers > 1 ? n_workers : 0);
}

static void
fixture_stop (Workers *f)
{
  if (f->server != NULL)
    {
      cp_rpc_server_close (f->server);
      /* close() joined the threads. */
      g_assert_cmpuint (cp_http_server_get_n_running_workers (cp_rpc_server_get_http_server (f->server)),
                        ==, 0);
      g_clear_object (&f->server);
    }
  if (f->tmpdir != NULL)
    {
      g_autofree char *sock = g_build_filename (f->tmpdir, "sock", NULL);

      g_unlink (sock);
      g_rmdir (f->tmpdir);
    }
  g_clear_pointer (&f->tmpdir, g_free);
  g_clear_pointer (&f->url, g_free);
  g_clear_pointer (&f->threads, g_hash_table_unref);
  g_clear_pointer (&f->contexts, g_hash_table_unref);
  g_clear_pointer (&f->kept, g_ptr_array_unref);
  g_mutex_clear (&f->lock);
}

/* ---- the clients: threads with blocking sockets ---- */

typedef struct {
  const char *url;
  const char *key;
  guint n_conns;        /* connections, opened one after the other */
  guint n_calls;        /* calls per connection, one after the other */
  gboolean h2;          /* a CpChannel over h2c instead */
  /* results */
  guint ok;
  guint failed;
  char *first_error;
  gboolean done;        /* atomic */
} Job;

static void
job_fail (Job        *job,
          const char *what)
{
  job->failed++;
  if (job->first_error == NULL)
    job->first_error = g_strdup (what);
}

static gboolean
on_accept_certificate (GTlsConnection       *conn,
                       GTlsCertificate      *cert,
                       GTlsCertificateFlags  errors,
                       gpointer              user_data)
{
  return TRUE;   /* the test's self-signed certificate */
}

static GIOStream *
job_connect (Job     *job,
             GError **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  gboolean tls = g_str_has_prefix (job->url, "https://");

  if (g_str_has_prefix (job->url, "unix:"))
    {
      g_autoptr(GSocketAddress) address = g_unix_socket_address_new (job->url + strlen ("unix:"));

      conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, error);
    }
  else
    conn = g_socket_client_connect_to_host (client, strstr (job->url, "://") + 3, 80, NULL, error);
  if (conn == NULL)
    return NULL;
  g_socket_set_timeout (g_socket_connection_get_socket (conn), CLIENT_IO_TIMEOUT_S);
  if (tls)
    {
      g_autoptr(GIOStream) tls_conn = g_tls_client_connection_new (G_IO_STREAM (conn), NULL, error);

      if (tls_conn == NULL)
        return NULL;
      g_signal_connect (tls_conn, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);
      if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls_conn), NULL, error))
        return NULL;
      return g_steal_pointer (&tls_conn);
    }
  return G_IO_STREAM (g_steal_pointer (&conn));
}

/* One unary Get over HTTP/1.1: TRUE when answered 200 with the key. */
static gboolean
job_call (Job       *job,
          GIOStream *io,
          GError   **error)
{
  g_autoptr(GByteArray) in = g_byte_array_new ();
  g_autofree char *head = NULL;
  guint8 body[64];
  gsize key_len = strlen (job->key), header_end = 0, content_length = 0;
  char buf[4096];

  g_assert_cmpuint (key_len, <, 60);
  body[0] = 0x0a;
  body[1] = (guint8) key_len;
  memcpy (body + 2, job->key, key_len);
  head = g_strdup_printf ("POST " KV_PROCEDURE_GET " HTTP/1.1\r\nHost: test\r\n"
                          "Content-Type: application/proto\r\nContent-Length: %zu\r\n\r\n",
                          key_len + 2);
  /* One write: head and body in one segment (no Nagle wait on TCP). */
  g_byte_array_append (in, (guint8 *) head, strlen (head));
  g_byte_array_append (in, body, key_len + 2);
  if (!g_output_stream_write_all (g_io_stream_get_output_stream (io), in->data, in->len,
                                  NULL, NULL, error))
    return FALSE;
  g_byte_array_set_size (in, 0);

  for (;;)
    {
      gssize n;

      if (header_end == 0 && in->len > 0)
        {
          const char *end = g_strstr_len ((const char *) in->data, in->len, "\r\n\r\n");

          if (end != NULL)
            {
              g_autofree char *headers = g_strndup ((const char *) in->data,
                                                    end - (const char *) in->data);
              char *cl = strstr (headers, "Content-Length: ");

              if (!g_str_has_prefix (headers, "HTTP/1.1 200 ") || cl == NULL)
                {
                  g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "bad answer: %s", headers);
                  return FALSE;
                }
              header_end = end - (const char *) in->data + 4;
              content_length = g_ascii_strtoull (cl + strlen ("Content-Length: "), NULL, 10);
            }
        }
      if (header_end != 0 && in->len >= header_end + content_length)
        break;
      n = g_input_stream_read (g_io_stream_get_input_stream (io), buf, sizeof buf, NULL, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "closed");
          return FALSE;
        }
      g_byte_array_append (in, (guint8 *) buf, n);
    }
  if (in->len != header_end + content_length ||
      memmem (in->data + header_end, content_length, job->key, key_len) == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "wrong body");
      return FALSE;
    }
  return TRUE;
}

static void
job_run_h1 (Job *job)
{
  g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func (g_object_unref);

  /* All connections first (each is a turn of the acceptor), then calls. */
  for (guint i = 0; i < job->n_conns; i++)
    {
      g_autoptr(GError) error = NULL;
      GIOStream *io = job_connect (job, &error);

      if (io == NULL)
        {
          job_fail (job, error->message);
          return;
        }
      g_ptr_array_add (conns, io);
    }
  for (guint c = 0; c < job->n_calls; c++)
    for (guint i = 0; i < conns->len; i++)
      {
        g_autoptr(GError) error = NULL;

        if (job_call (job, conns->pdata[i], &error))
          job->ok++;
        else
          job_fail (job, error->message);
      }
  for (guint i = 0; i < conns->len; i++)
    g_io_stream_close (conns->pdata[i], NULL, NULL);
}

static void
job_run_h2 (Job *job)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GPtrArray) channels = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(KvGetRequest) request = kv_test_get_request (job->key);

  g_main_context_push_thread_default (context);
  for (guint i = 0; i < job->n_conns; i++)
    {
      g_autoptr(GError) error = NULL;
      CpChannel *channel = cp_channel_new (job->url, &error);

      g_assert_no_error (error);
      cp_channel_set_http_version (channel, CP_HTTP_VERSION_HTTP_2);
      g_ptr_array_add (channels, channel);
    }
  for (guint c = 0; c < job->n_calls; c++)
    for (guint i = 0; i < channels->len; i++)
      {
        g_autoptr(GError) error = NULL;
        g_autoptr(CpMessage) response =
          cp_channel_call_sync (channels->pdata[i], KV_PROCEDURE_GET, CP_MESSAGE (request),
                                KV_TYPE_GET_RESPONSE, NULL, NULL, &error);

        if (response != NULL && kv_get_response_get_found (KV_GET_RESPONSE (response)))
          job->ok++;
        else
          job_fail (job, error != NULL ? error->message : "not found");
      }
  g_ptr_array_set_size (channels, 0);
  g_main_context_pop_thread_default (context);
}

static gpointer
job_thread (gpointer data)
{
  Job *job = data;

  if (job->h2)
    job_run_h2 (job);
  else
    job_run_h1 (job);
  g_atomic_int_set (&job->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

static gboolean
jobs_done (Job   *jobs,
           guint  n_jobs)
{
  for (guint i = 0; i < n_jobs; i++)
    if (!g_atomic_int_get (&jobs[i].done))
      return FALSE;
  return TRUE;
}

/* Iterates the server's (this thread's) context until every job ends. */
static void
run_jobs (Job   *jobs,
          guint  n_jobs)
{
  g_autoptr(GPtrArray) threads = g_ptr_array_new ();

  for (guint i = 0; i < n_jobs; i++)
    g_ptr_array_add (threads, g_thread_new ("test-client", job_thread, &jobs[i]));
  while (!jobs_done (jobs, n_jobs))
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < n_jobs; i++)
    g_thread_join (threads->pdata[i]);
}

static void
jobs_clear (Job   *jobs,
            guint  n_jobs)
{
  for (guint i = 0; i < n_jobs; i++)
    g_clear_pointer (&jobs[i].first_error, g_free);
}

#define N_JOBS 4

/* N_JOBS client threads, @conns_per_job connections each, @calls calls on
 * every connection: all answered, by exactly @n_workers worker threads. */
static void
check_load (guint       n_workers,
            const char *transport,
            guint       conns_per_job,
            guint       calls)
{
  Workers f = { 0 };
  Job jobs[N_JOBS] = { 0 };
  guint total_conns = N_JOBS * conns_per_job;

  g_test_message ("%u workers, %s, %u connections × %u calls",
                  n_workers, transport, total_conns, calls);
  fixture_start (&f, n_workers, transport);
  for (guint i = 0; i < N_JOBS; i++)
    {
      jobs[i].url = f.url;
      jobs[i].key = "hello";
      jobs[i].n_conns = conns_per_job;
      jobs[i].n_calls = calls;
      jobs[i].h2 = g_str_equal (transport, "h2c");
    }
  run_jobs (jobs, N_JOBS);

  for (guint i = 0; i < N_JOBS; i++)
    {
      if (jobs[i].first_error != NULL)
        g_test_message ("client %u: %s", i, jobs[i].first_error);
      g_assert_cmpuint (jobs[i].failed, ==, 0);
      g_assert_cmpuint (jobs[i].ok, ==, conns_per_job * calls);
    }
  g_assert_cmpuint (f.n_calls, ==, total_conns * calls);
  g_assert_false (f.bad_context);
  /* Round-robin: every worker got total_conns / n_workers connections or
   * one more, and each connection made calls. */
  g_assert_cmpuint (total_conns, >=, n_workers);
  g_assert_cmpuint (g_hash_table_size (f.threads), ==, n_workers);
  g_assert_cmpuint (g_hash_table_size (f.contexts), ==, n_workers);
  g_assert_cmpuint (cp_http_server_get_n_accepted (cp_rpc_server_get_http_server (f.server)),
                    ==, total_conns);
  jobs_clear (jobs, N_JOBS);
  fixture_stop (&f);
}

static void
test_tcp (void)
{
  for (guint n = 2; n <= 4; n++)
    check_load (n, "tcp", 8, 10);
}

static void
test_unix (void)
{
  for (guint n = 2; n <= 4; n++)
    check_load (n, "unix", 8, 10);
}

static void
test_tls (void)
{
  check_load (3, "tls", 2, 5);
}

static void
test_h2c (void)
{
  check_load (2, "h2c", 2, 10);
  check_load (4, "h2c", 2, 10);
}

/* Metrics count every call of every worker: the counters are atomic. */
static void
test_metrics (void)
{
  Workers f = { 0 };
  Job jobs[N_JOBS] = { 0 };
  g_autofree char *calls = NULL;
  const char *text;

  fixture_start (&f, 2, "tcp");
  g_object_set (f.server, "metrics-enabled", TRUE, NULL);
  for (guint i = 0; i < N_JOBS; i++)
    {
      jobs[i].url = f.url;
      jobs[i].key = "hello";
      jobs[i].n_conns = 4;
      jobs[i].n_calls = 50;
    }
  run_jobs (jobs, N_JOBS);
  for (guint i = 0; i < N_JOBS; i++)
    g_assert_cmpuint (jobs[i].ok, ==, 4 * 50);

  text = cp_metrics_render (cp_rpc_server_get_metrics (f.server));
  calls = g_strdup_printf ("connectplugin_server_calls_total{service=\"kv.v1.KVService\","
                           "method=\"Get\",code=\"ok\"} %u\n", N_JOBS * 4 * 50);
  g_assert_nonnull (strstr (text, calls));
  g_assert_nonnull (strstr (text, "connectplugin_server_connections_total 16\n"));
  g_assert_nonnull (strstr (text, "connectplugin_server_calls_in_flight{service=\"kv.v1.KVService\","
                                  "method=\"Get\"} 0\n"));
  jobs_clear (jobs, N_JOBS);
  fixture_stop (&f);
}

/* One per CPU: as many workers as g_get_num_processors (). */
static void
test_zero_means_cpus (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  guint n;

  g_object_set (server, "n-workers", 0, NULL);
  g_object_get (server, "n-workers", &n, NULL);
  g_assert_cmpuint (n, ==, 0);
  url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cp_http_server_get_n_running_workers (cp_rpc_server_get_http_server (server)),
                    ==, g_get_num_processors () > 1 ? g_get_num_processors () : 0);
  cp_rpc_server_close (server);
}

/* Methods are registered before listening; the property is frozen then. */
static void
test_frozen_after_listen (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  guint n;

  g_object_set (server, "n-workers", 2, NULL);
  url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  g_test_expect_message ("ConnectPlugin", G_LOG_LEVEL_CRITICAL, "*must be set before listening*");
  g_object_set (server, "n-workers", 3, NULL);
  g_test_assert_expected_messages ();
  g_object_get (server, "n-workers", &n, NULL);
  g_assert_cmpuint (n, ==, 2);

  g_test_expect_message ("ConnectPlugin", G_LOG_LEVEL_CRITICAL, "*workers_running*");
  cp_rpc_server_add_method (server, get, handle_get, NULL, NULL);
  g_test_assert_expected_messages ();
  cp_rpc_server_close (server);
}

/* Starts @n_slow "slow" (or "never") calls, one per connection, and
 * iterates until every one is inside its handler. */
static void
start_slow_calls (Workers    *f,
                  Job        *jobs,
                  GPtrArray  *threads,
                  guint       n_slow,
                  const char *key)
{
  for (guint i = 0; i < n_slow; i++)
    {
      jobs[i].url = f->url;
      jobs[i].key = key;
      jobs[i].n_conns = 1;
      jobs[i].n_calls = 1;
      g_ptr_array_add (threads, g_thread_new ("test-client", job_thread, &jobs[i]));
    }
  while ((guint) g_atomic_int_get (&f->n_slow_waiting) < n_slow)
    g_main_context_iteration (NULL, TRUE);
}

static void
on_shutdown (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_rpc_server_shutdown_finish (CP_RPC_SERVER (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

#define N_SLOW 6

/* A graceful shutdown with calls in flight on every worker: each is
 * answered, then shutdown completes, then close joins the workers. */
static void
test_shutdown_in_flight (void)
{
  Workers f = { 0 };
  Job jobs[N_SLOW] = { 0 };
  g_autoptr(GPtrArray) threads = g_ptr_array_new ();
  gboolean shut_down = FALSE;

  fixture_start (&f, 3, "tcp");
  start_slow_calls (&f, jobs, threads, N_SLOW, "slow");
  g_assert_cmpuint (g_hash_table_size (f.threads), ==, 3);

  cp_rpc_server_shutdown_async (f.server, NULL, on_shutdown, &shut_down);
  while (!shut_down || !jobs_done (jobs, N_SLOW))
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (threads->pdata[i]);
  for (guint i = 0; i < N_SLOW; i++)
    {
      if (jobs[i].first_error != NULL)
        g_test_message ("client %u: %s", i, jobs[i].first_error);
      g_assert_cmpuint (jobs[i].ok, ==, 1);
    }
  g_assert_cmpuint (cp_http_server_get_n_active_exchanges (cp_rpc_server_get_http_server (f.server)),
                    ==, 0);
  jobs_clear (jobs, N_SLOW);
  fixture_stop (&f);
}

/* close() with calls that never end, on every worker: the clients see
 * their connections closed, close() returns with the workers joined, and
 * the calls are over (the server can be dropped). */
static void
test_close_in_flight (void)
{
  Workers f = { 0 };
  Job jobs[N_SLOW] = { 0 };
  g_autoptr(GPtrArray) threads = g_ptr_array_new ();
  fixture_start (&f, 3, "unix");
  start_slow_calls (&f, jobs, threads, N_SLOW, "never");
  cp_rpc_server_close (f.server);
  g_assert_cmpuint (cp_http_server_get_n_running_workers (cp_rpc_server_get_http_server (f.server)),
                    ==, 0);
  g_assert_cmpuint (cp_http_server_get_n_connections (cp_rpc_server_get_http_server (f.server)),
                    ==, 0);
  while (!jobs_done (jobs, N_SLOW))
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (threads->pdata[i]);
  for (guint i = 0; i < N_SLOW; i++)
    {
      g_assert_cmpuint (jobs[i].ok, ==, 0);
      g_assert_cmpuint (jobs[i].failed, ==, 1);
    }
  /* The never-answered invocations the handler kept go with the fixture. */
  g_assert_cmpuint (f.kept->len, ==, N_SLOW);
  jobs_clear (jobs, N_SLOW);
  fixture_stop (&f);
}

/* ---- home routes: relayed to the server's own context ---- */

typedef struct {
  Workers *f;
  gboolean done;          /* atomic */
  void (*func) (gpointer data);
  gpointer data;
} InThread;

static gpointer
in_thread_main (gpointer data)
{
  InThread *t = data;

  t->func (t->data);
  g_atomic_int_set (&t->done, TRUE);
  g_main_context_wakeup (NULL);
  return NULL;
}

/* Runs @func in a thread of its own while this one serves. */
static void
run_in_thread (void   (*func) (gpointer data),
               gpointer data)
{
  InThread t = { NULL, FALSE, func, data };
  GThread *thread = g_thread_new ("test-client", in_thread_main, &t);

  while (!g_atomic_int_get (&t.done))
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
}

static void
record_home (Workers *f)
{
  GMainContext *context = g_main_context_get_thread_default ();

  if (context == NULL)
    context = g_main_context_default ();
  g_mutex_lock (&f->lock);
  if (g_thread_self () != f->main_thread || context != cp_rpc_server_get_context (f->server))
    f->bad_context = TRUE;
  f->n_calls++;
  g_mutex_unlock (&f->lock);
}

static void
handle_home_put (CpInvocation *invocation,
                 CpMessage    *request,
                 gpointer      user_data)
{
  g_autoptr(KvPutResponse) response = kv_put_response_new ();

  record_home (user_data);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

/* Three events, then the end: a stream relayed as it goes. */
static void
handle_home_watch (CpInvocation *invocation,
                   CpMessage    *request,
                   gpointer      user_data)
{
  record_home (user_data);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *key = g_strdup_printf ("event-%u", i);
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, key, NULL);

      cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
    }
  cp_invocation_return_ok (invocation);
}

static guint
handle_probe (CpRpcServer  *server,
              const char  **text,
              gpointer      user_data)
{
  record_home (user_data);
  *text = "home";
  return SOUP_STATUS_OK;
}

typedef struct {
  const char *url;
  CpHttpVersion version;
  CpProtocol protocol;
  guint n_ok;
  guint n_events;
  char *probe;
  guint probe_status;
} HomeCalls;

static void
on_home_event (CpResponseStream *stream,
               CpMessage        *message,
               gpointer          user_data)
{
  ((HomeCalls *) user_data)->n_events++;
}

static void
on_home_closed (CpResponseStream *stream,
                const GError     *error,
                gpointer          user_data)
{
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

static void
home_calls (gpointer data)
{
  HomeCalls *h = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvPutRequest) put = kv_test_put_request ("a", NULL);
  g_autoptr(KvGetRequest) get = kv_test_get_request ("worker");
  g_autoptr(KvWatchRequest) watch = kv_test_watch_request ("");

  g_main_context_push_thread_default (context);
  channel = cp_channel_new (h->url, &error);
  g_assert_no_error (error);
  cp_channel_set_http_version (channel, h->version);
  cp_channel_set_protocol (channel, h->protocol);
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(CpMessage) r1 = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (put),
                                                      KV_TYPE_PUT_RESPONSE, NULL, NULL, &error);
      g_autoptr(CpMessage) r2 = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (r1);
      r2 = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (get),
                                 KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_nonnull (r2);
      h->n_ok += 2;
    }
  {
    g_autoptr(CpResponseStream) stream =
      cp_channel_call_server_stream (channel, KV_PROCEDURE_WATCH, CP_MESSAGE (watch),
                                     KV_TYPE_WATCH_EVENT, NULL);
    gboolean closed = FALSE;

    g_signal_connect (stream, "message", G_CALLBACK (on_home_event), h);
    g_signal_connect (stream, "closed", G_CALLBACK (on_home_closed), &closed);
    while (!closed)
      g_main_context_iteration (context, TRUE);
  }
  g_clear_object (&channel);
  g_main_context_pop_thread_default (context);

  /* The plain path, over a raw connection. */
  {
    g_autoptr(GSocketClient) client = g_socket_client_new ();
    g_autoptr(GSocketConnection) conn =
      g_socket_client_connect_to_host (client, strstr (h->url, "://") + 3, 80, NULL, &error);
    const char request[] = "GET /probe HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    g_autoptr(GByteArray) in = g_byte_array_new ();
    char buf[1024];
    gssize n;

    g_assert_no_error (error);
    g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), request,
                               strlen (request), NULL, NULL, &error);
    g_assert_no_error (error);
    while ((n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (conn)),
                                     buf, sizeof buf, NULL, &error)) > 0)
      g_byte_array_append (in, (guint8 *) buf, n);
    g_assert_no_error (error);
    g_byte_array_append (in, (guint8 *) "", 1);
    h->probe = g_strdup ((char *) in->data);
  }
}

/* Home methods, plain paths and streams reach a worker's connection but
 * are served in the server's own context; the others on the workers. */
static void
check_home_routes (CpHttpVersion version,
                   CpProtocol    protocol)
{
  Workers f = { 0 };
  HomeCalls h = { 0 };
  g_autoptr(CpMethodInfo) put = cp_method_info_new (KV_PROCEDURE_PUT, CP_METHOD_UNARY,
                                                    KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE);
  g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                      KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                    KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  g_autoptr(GError) error = NULL;

  g_mutex_init (&f.lock);
  f.threads = g_hash_table_new (NULL, NULL);
  f.contexts = g_hash_table_new (NULL, NULL);
  f.kept = g_ptr_array_new_with_free_func (g_object_unref);
  f.main_thread = g_thread_self ();
  f.server = cp_rpc_server_new ();
  g_object_set (f.server, "n-workers", 2, NULL);
  cp_rpc_server_add_method (f.server, get, handle_get, &f, NULL);
  cp_rpc_server_add_home_method (f.server, put, handle_home_put, &f, NULL);
  cp_rpc_server_add_home_method (f.server, watch, handle_home_watch, &f, NULL);
  cp_rpc_server_add_plain_handler (f.server, "/probe", handle_probe, &f, NULL);
  f.url = cp_rpc_server_listen (f.server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  h.url = f.url;
  h.version = version;
  h.protocol = protocol;
  run_in_thread (home_calls, &h);

  g_assert_cmpuint (h.n_ok, ==, 10);
  g_assert_cmpuint (h.n_events, ==, 3);
  g_assert_true (g_str_has_prefix (h.probe, "HTTP/1.1 200 "));
  g_assert_nonnull (strstr (h.probe, "\r\n\r\nhome"));
  g_assert_false (f.bad_context);
  /* 5 Gets on workers, 5 Puts, 1 Watch and the probe at home. */
  g_assert_cmpuint (f.n_calls, ==, 12);
  g_assert_cmpuint (g_hash_table_size (f.threads), >=, 1);
  g_assert_false (g_hash_table_contains (f.threads, f.main_thread));
  g_free (h.probe);
  fixture_stop (&f);
}

static void
test_home_routes_h1 (void)
{
  check_home_routes (CP_HTTP_VERSION_HTTP_1_1, CP_PROTOCOL_CONNECT);
}

static void
test_home_routes_h2 (void)
{
  check_home_routes (CP_HTTP_VERSION_HTTP_2, CP_PROTOCOL_CONNECT);
}

/* gRPC's status travels in trailers: relayed with the response. */
static void
test_home_routes_grpc (void)
{
  check_home_routes (CP_HTTP_VERSION_HTTP_2, CP_PROTOCOL_GRPC);
}

/* CpServer:n-workers: the plugin's method on the workers; the built-in
 * health service and /readyz at home, through the relay. */
static guint server_get_calls;
static GThread *server_get_thread;

static gboolean
on_server_handle_get (KvKVService  *service,
                      CpInvocation *invocation,
                      KvGetRequest *request,
                      gpointer      user_data)
{
  g_autoptr(KvGetResponse) response = kv_get_response_new ();

  g_atomic_int_inc (&server_get_calls);
  g_atomic_pointer_set (&server_get_thread, g_thread_self ());
  kv_kv_service_complete_get (service, invocation, response);
  return TRUE;
}

typedef struct {
  const char *url;
  int health_status;
  gboolean ready;
} ServerCalls;

static void
server_calls (gpointer data)
{
  ServerCalls *c = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = NULL;
  g_autoptr(KvGetRequest) get = kv_test_get_request ("x");
  g_autoptr(CpHealthCheckRequest) check = cp_health_check_request_new ();
  g_autoptr(CpMessage) r1 = NULL;
  g_autoptr(CpMessage) r2 = NULL;

  g_main_context_push_thread_default (context);
  channel = cp_channel_new (c->url, &error);
  g_assert_no_error (error);
  r1 = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (get),
                             KV_TYPE_GET_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  r2 = cp_channel_call_sync (channel, CP_PROCEDURE_HEALTH_CHECK, CP_MESSAGE (check),
                             CP_TYPE_HEALTH_CHECK_RESPONSE, NULL, NULL, &error);
  g_assert_no_error (error);
  c->health_status = cp_health_check_response_get_status (CP_HEALTH_CHECK_RESPONSE (r2));
  g_clear_object (&channel);
  g_main_context_pop_thread_default (context);
}

static void
test_cp_server (void)
{
  g_autoptr(CpServer) server = cp_server_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("kv", "1.0.0");
  g_autoptr(KvKVService) skeleton = kv_kv_service_skeleton_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  ServerCalls c = { 0 };
  guint n;

  g_signal_connect (skeleton, "handle-get", G_CALLBACK (on_server_handle_get), NULL);
  cp_plugin_add_service (plugin, CP_SKELETON (skeleton));
  cp_server_add_plugin (server, plugin);
  g_object_set (server, "n-workers", 2, NULL);
  g_object_get (server, "n-workers", &n, NULL);
  g_assert_cmpuint (n, ==, 2);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cp_http_server_get_n_running_workers (
                      cp_rpc_server_get_http_server (cp_server_get_rpc_server (server))), ==, 2);

  c.url = url;
  run_in_thread (server_calls, &c);
  g_assert_cmpint (c.health_status, ==, CP_SERVING_STATUS_SERVING);
  g_assert_cmpuint (server_get_calls, ==, 1);
  g_assert_true (server_get_thread != g_thread_self ());
  cp_server_close (server);
}

/* Threads of GLib's thread pools (named "pool-…") still running (Linux). */
static guint
count_pool_threads (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/comm", name);
      g_autofree char *comm = NULL;

      if (g_file_get_contents (path, &comm, NULL, NULL) && g_str_has_prefix (comm, "pool-"))
        n++;
    }
  return n;
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/rpc/workers/tcp", test_tcp);
  g_test_add_func ("/rpc/workers/unix", test_unix);
  g_test_add_func ("/rpc/workers/tls", test_tls);
  g_test_add_func ("/rpc/workers/h2c", test_h2c);
  g_test_add_func ("/rpc/workers/metrics", test_metrics);
  g_test_add_func ("/rpc/workers/zero-means-cpus", test_zero_means_cpus);
  g_test_add_func ("/rpc/workers/frozen-after-listen", test_frozen_after_listen);
  g_test_add_func ("/rpc/workers/home-routes/http1", test_home_routes_h1);
  g_test_add_func ("/rpc/workers/home-routes/h2c", test_home_routes_h2);
  g_test_add_func ("/rpc/workers/home-routes/grpc", test_home_routes_grpc);
  g_test_add_func ("/rpc/workers/cp-server", test_cp_server);
  g_test_add_func ("/rpc/workers/shutdown-in-flight", test_shutdown_in_flight);
  g_test_add_func ("/rpc/workers/close-in-flight", test_close_in_flight);
  status = g_test_run ();

  /* GTask's pool threads did TLS handshakes (GnuTLS, a dlopen()ed module
   * with dynamic TLS): let them end before exit, where LeakSanitizer (GCC
   * 12) may crash walking a live thread's dynamic TLS. A pool thread idle
   * for half a second leaves its pool, and with no unused threads kept it
   * ends. (A hang guard bounds the wait; nothing is asserted on time.) */
  g_thread_pool_set_max_unused_threads (0);
  for (guint i = 0; i < 500 && count_pool_threads () > 0; i++)
    g_usleep (10000);
  return status;
}
