/* fuzz-http-connection.c: arbitrary bytes into one server connection
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input is written into one end of a socketpair whose other end is
 * served by a CpHttpServer (handler: 200 with the request body echoed); the
 * client side then shuts down its write side and the main context is
 * iterated until the server has closed the connection. A crash, an
 * assertion or a connection that never settles is a failure.
 */
#include "cp-http-connection-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
  CpHttpExchange *exchange;
  GByteArray     *body;
} Call;

static void
call_free (gpointer data)
{
  Call *call = data;
  g_byte_array_unref (call->body);
  cp_http_exchange_unref (call->exchange);
  g_free (call);
}

static void
on_chunk (CpHttpExchange *ex, GBytes *chunk, gpointer user_data)
{
  Call *call = user_data;
  gsize size;
  const guint8 *data = g_bytes_get_data (chunk, &size);

  g_byte_array_append (call->body, data, size);
  if (call->body->len > 4096)
    cp_http_exchange_pause_body (ex), cp_http_exchange_resume_body (ex);
}

static void
on_end (CpHttpExchange *ex, gpointer user_data)
{
  Call *call = user_data;
  g_autoptr(GBytes) body = g_bytes_new (call->body->data, call->body->len);

  if (call->body->len % 2)
    cp_http_exchange_respond (ex, 200, NULL, body);
  else
    {
      cp_http_exchange_begin_response (ex, 200, NULL);
      cp_http_exchange_write (ex, body);
      cp_http_exchange_end_response (ex);
    }
}

static void
on_aborted (CpHttpExchange *ex, const GError *error, gpointer user_data)
{
}

static const CpHttpExchangeCallbacks callbacks = { on_chunk, on_end, on_aborted, NULL };

static guint n_requests;

static void
print_stats (void)
{
  g_printerr ("fuzz-http-connection: %u requests dispatched\n", n_requests);
}

static void
handler (CpHttpServer *server, CpHttpExchange *ex, gpointer user_data)
{
  Call *call = g_new0 (Call, 1);

  n_requests++;
  call->exchange = cp_http_exchange_ref (ex);
  call->body = g_byte_array_new ();
  cp_http_exchange_set_callbacks (ex, &callbacks, call, call_free);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static CpHttpServer *server;
  int fds[2];
  g_autoptr(GSocket) server_side = NULL;
  g_autoptr(GSocket) client_side = NULL;
  gsize sent = 0;
  guint iterations = 0;
  char sink[65536];

  if (server == NULL)
    {
      server = cp_http_server_new ();
      g_object_set (server, "max-head-size", 4096, "max-header-count", 20, NULL);
      cp_http_server_set_handler (server, handler, NULL, NULL);
      if (g_getenv ("FUZZ_VERBOSE") != NULL)
        atexit (print_stats);
    }

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    abort ();
  server_side = g_socket_new_from_fd (fds[0], NULL);
  client_side = g_socket_new_from_fd (fds[1], NULL);
  g_socket_set_blocking (client_side, FALSE);
  cp_http_server_accept_socket (server, server_side, FALSE);

  /* Feed the input (as the socket takes it), then half-close and let the
   * server finish; drain its responses so it is never blocked on us. */
  while (cp_http_server_get_n_connections (server) > 0)
    {
      if (sent < size)
        {
          gssize n = g_socket_send (client_side, (const char *) data + sent, size - sent, NULL, NULL);
          if (n > 0)
            sent += n;
          if (sent == size)
            g_socket_shutdown (client_side, FALSE, TRUE, NULL);
        }
      else if (sent == 0 && size == 0)
        {
          g_socket_shutdown (client_side, FALSE, TRUE, NULL);
          sent = 1;  /* only once */
          size = 1;
        }
      while (g_socket_receive (client_side, sink, sizeof sink, NULL, NULL) > 0)
        ;
      g_main_context_iteration (NULL, FALSE);
      if (++iterations > 100000)
        {
          g_printerr ("fuzz-http-connection: the connection did not settle\n");
          abort ();
        }
    }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (cp_http_server_get_n_active_exchanges (server), ==, 0);
  return 0;
}
