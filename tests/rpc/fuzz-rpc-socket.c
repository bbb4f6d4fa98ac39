/* fuzz-rpc-socket.c: arbitrary client bytes into CpRpcServer over a socket
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is exactly what a client writes on one connection: it goes into
 * one end of a unix socketpair whose other end is served by a CpRpcServer
 * (the whole path: HTTP/1.1 framing, the Connect engine, codecs, handlers).
 * The service has unary (Get, Put), server-streaming (Watch),
 * client-streaming (Sum) and bidi (Echo) methods. Once the server has done
 * what it can with the input, the client half-closes (EOF) and keeps
 * reading; the main context is iterated until the server has closed the
 * connection. Failures: a crash, a warning or critical,
 * a connection the server never closes (a CLOSE-WAIT leak: the server holding
 * a socket whose peer is gone), an exchange left active, or the server's fd
 * still open once the connection is gone.
 */
#include <connectplugin.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cp-http-connection-private.h"
#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"
#include "kv-test.h"

#define SUM_PROCEDURE  "/test.v1.TestService/Sum"
#define ECHO_PROCEDURE "/test.v1.TestService/Echo"

/* Non-blocking iterations allowed for one input; a well-behaved server needs
 * a few dozen. */
#define MAX_ITERATIONS 20000

/* Iterations with nothing left to do after the client's EOF before a still
 * open connection counts as leaked. */
#define MAX_IDLE_AFTER_EOF 100

/* FUZZ_VERBOSE=1: print what the server sends (to check seeds).
 * FUZZ_TOLERATE_CLOSE_WAIT=1: count connections the server never closes
 * (and start a new server) instead of aborting, to fuzz past that bug. */
static gboolean verbose;
static gboolean tolerate_close_wait;
static guint n_close_wait;
static CpRpcServer *server;

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
get_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  g_autoptr(GBytes) value = g_bytes_new (key, strlen (key));
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

  if (g_str_has_prefix (key, "e"))
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND, "no %s", key);
      return;
    }
  soup_message_headers_append (cp_invocation_get_response_trailers (invocation), "x-t", "1");
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
put_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  g_autoptr(KvPutResponse) response = kv_put_response_new ();

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static gboolean
send_event (CpInvocation *invocation, const char *key)
{
  g_autoptr(KvWatchEvent) event = kv_test_watch_event (1, key, NULL);

  return cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL);
}

static void
watch_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  const char *prefix = kv_watch_request_get_prefix (KV_WATCH_REQUEST (request));

  for (int i = 0; i < 2; i++)
    if (!send_event (invocation, prefix))
      return;
  if (g_str_has_prefix (prefix, "e"))
    cp_invocation_return_error (invocation, CP_ERROR_ABORTED, "%s", prefix);
  else
    cp_invocation_return_ok (invocation);
}

/* Sum (client stream of PutRequest -> one GetResponse with the keys joined)
 * and Echo (bidi, one WatchEvent per WatchRequest) share the receive loop;
 * the invocation is referenced while a receive is pending. */
static void
stream_finish (CpInvocation *invocation, GString *keys, const GError *error)
{
  if (error != NULL)
    cp_invocation_return_gerror (invocation, error);
  else if (g_str_equal (cp_invocation_get_procedure (invocation), SUM_PROCEDURE))
    {
      g_autoptr(GBytes) value = g_bytes_new (keys->str, keys->len);
      g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);
      cp_invocation_return_message (invocation, CP_MESSAGE (response));
    }
  else
    cp_invocation_return_ok (invocation);
  g_string_free (keys, TRUE);
  g_object_unref (invocation);
}

static void
stream_receive_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CpInvocation *invocation = CP_INVOCATION (source);
  GString *keys = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (invocation, result, &error);

  if (message == NULL)
    {
      stream_finish (invocation, keys, error);
      return;
    }
  if (KV_IS_PUT_REQUEST (message))
    g_string_append (keys, kv_put_request_get_key (KV_PUT_REQUEST (message)));
  else if (!send_event (invocation, kv_watch_request_get_prefix (KV_WATCH_REQUEST (message))))
    {
      /* The stream is gone (send_message says so); nothing left to answer. */
      g_string_free (keys, TRUE);
      g_object_unref (invocation);
      return;
    }
  cp_invocation_receive_async (invocation, NULL, stream_receive_cb, keys);
}

static void
stream_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  cp_invocation_receive_async (g_object_ref (invocation), NULL, stream_receive_cb,
                               g_string_new (NULL));
}

static void
print_stats (void)
{
  g_printerr ("fuzz-rpc-socket: %u connection(s) left open after EOF (tolerated)\n", n_close_wait);
}

static CpRpcServer *
get_server (void)
{
  static const struct {
    const char *procedure;
    CpMethodKind kind;
    GType (*request) (void);
    GType (*response) (void);
    CpMethodHandler handler;
  } methods[] = {
    { KV_PROCEDURE_GET, CP_METHOD_UNARY, kv_get_request_get_type, kv_get_response_get_type, get_handler },
    { KV_PROCEDURE_PUT, CP_METHOD_UNARY, kv_put_request_get_type, kv_put_response_get_type, put_handler },
    { KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING, kv_watch_request_get_type, kv_watch_event_get_type, watch_handler },
    { SUM_PROCEDURE, CP_METHOD_CLIENT_STREAMING, kv_put_request_get_type, kv_get_response_get_type, stream_handler },
    { ECHO_PROCEDURE, CP_METHOD_BIDI_STREAMING, kv_watch_request_get_type, kv_watch_event_get_type, stream_handler },
  };

  if (server != NULL)
    return server;

  /* Any warning or critical from the engine is a bug. */
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
  kv_test_ensure_types ();
  verbose = g_getenv ("FUZZ_VERBOSE") != NULL;
  if (g_getenv ("FUZZ_TOLERATE_CLOSE_WAIT") != NULL && !tolerate_close_wait)
    {
      tolerate_close_wait = TRUE;
      atexit (print_stats);
    }
  server = cp_rpc_server_new ();
  /* Small limits so that inputs reach them; compress every response. */
  g_object_set (server, "max-receive-size", 2048, "compress-min-bytes", 0, NULL);
  g_object_set (cp_rpc_server_get_http_server (server),
                "max-head-size", 4096, "max-header-count", 32, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(CpMethodInfo) info = cp_method_info_new (methods[i].procedure, methods[i].kind,
                                                         methods[i].request (),
                                                         methods[i].response ());
      if (methods[i].handler == get_handler)  /* so that GET requests reach it */
        cp_method_info_set_idempotency (info, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
      cp_rpc_server_add_method (server, info, methods[i].handler, NULL, NULL);
    }
  return server;
}

/* After a tolerated leak: close everything and serve the next input with a
 * new server (a closed one would stay in its stopping state). */
static void
drop_server (void)
{
  cp_rpc_server_close (server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&server);
}

/* The server's end of the socketpair must be closed once the server has let
 * the connection go: anything else is a leaked descriptor. */
static void
assert_fd_closed (int fd)
{
  if (fcntl (fd, F_GETFD) != -1 || errno != EBADF)
    {
      g_printerr ("fuzz-rpc-socket: the server's fd %d is still open after the connection closed\n", fd);
      abort ();
    }
}

/* Reads what is there; TRUE once the server's side is closed (EOF or reset). */
static gboolean
drain (GSocket *client, char *sink, gsize sink_size)
{
  for (;;)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (client, sink, sink_size, NULL, &error);

      if (n > 0)
        {
          if (verbose)
            fwrite (sink, 1, n, stderr);
          continue;
        }
      return n == 0 || !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  CpRpcServer *server = get_server ();
  CpHttpServer *http = cp_rpc_server_get_http_server (server);
  g_autoptr(GSocket) client = NULL;
  gboolean shut = FALSE, peer_closed = FALSE;
  gsize sent = 0;
  guint iterations = 0, idle_after_eof = 0;
  int fds[2];
  char sink[65536];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    abort ();
  {
    g_autoptr(GSocket) server_side = g_socket_new_from_fd (fds[0], NULL);
    cp_http_server_accept_socket (http, server_side, FALSE);
  }
  client = g_socket_new_from_fd (fds[1], NULL);
  g_socket_set_blocking (client, FALSE);

  /* Write the input as the socket takes it, then EOF; read everything the
   * server sends so it never blocks on us; stop when it has closed. */
  while (cp_http_server_get_n_connections (http) > 0 || !peer_closed)
    {
      if (sent < size)
        {
          gssize n = g_socket_send (client, (const char *) data + sent, size - sent, NULL, NULL);
          if (n > 0)
            sent += n;
        }
      /* EOF only once the server has done all it can with the input, as
       * a client that waits for its answers and then goes away. */
      if (sent == size && !shut && !g_main_context_pending (NULL))
        {
          g_socket_shutdown (client, FALSE, TRUE, NULL);
          shut = TRUE;
        }
      peer_closed = peer_closed || drain (client, sink, sizeof sink);
      g_main_context_iteration (NULL, FALSE);
      if (shut && !g_main_context_pending (NULL))
        idle_after_eof++;
      if (idle_after_eof > MAX_IDLE_AFTER_EOF || ++iterations > MAX_ITERATIONS)
        {
          if (!tolerate_close_wait)
            {
              g_printerr ("fuzz-rpc-socket: the connection did not settle (client EOF %s; "
                          "%u connection(s) open, %u exchange(s) active)\n",
                          shut ? "sent, the server keeps the socket" : "not sent yet",
                          cp_http_server_get_n_connections (http),
                          cp_http_server_get_n_active_exchanges (http));
              abort ();
            }
          n_close_wait++;
          if (verbose)
            {
              g_autofree char *text = g_strndup ((const char *) data, size);
              g_autofree char *escaped = g_strescape (text, NULL);
              g_printerr ("fuzz-rpc-socket: left open: %s\n", escaped);
            }
          drop_server ();
          return 0;
        }
    }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (cp_http_server_get_n_active_exchanges (http), ==, 0);
  assert_fd_closed (fds[0]);
  return 0;
}
