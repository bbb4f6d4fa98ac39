/* fuzz-http2-session.c: arbitrary HTTP/2 frames into one server connection
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each input follows the client preface on one end of a socketpair whose
 * other end a CpHttpServer serves (so the connection turns into an HTTP/2
 * session at once). The handler echoes the request body, alternately with
 * respond() and as a streamed response with trailers, pausing the body now
 * and then. The client side then shuts its write side and the main context
 * is iterated until the server closed the connection. A crash, an
 * assertion, an exchange left active or a connection that never settles is
 * a failure.
 */
#include "cp-http-connection-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

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
      g_autoptr(SoupMessageHeaders) trailers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);

      soup_message_headers_append (trailers, "x-length", "even");
      cp_http_exchange_begin_response (ex, 200, NULL);
      cp_http_exchange_write (ex, body);
      cp_http_exchange_set_response_trailers (ex, trailers);
      cp_http_exchange_end_response (ex);
    }
}

static void
on_aborted (CpHttpExchange *ex, const GError *error, gpointer user_data)
{
}

static const CpHttpExchangeCallbacks callbacks = { on_chunk, on_end, on_aborted, NULL };

static void
handler (CpHttpServer *server, CpHttpExchange *ex, gpointer user_data)
{
  Call *call = g_new0 (Call, 1);

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
  g_autoptr(GByteArray) input = g_byte_array_sized_new (size + 24);
  gsize sent = 0;
  guint iterations = 0;
  char sink[65536];

  if (server == NULL)
    {
      server = cp_http_server_new ();
      g_object_set (server, "max-head-size", 4096, "max-header-count", 20, NULL);
      cp_http_server_set_handler (server, handler, NULL, NULL);
    }
  g_byte_array_append (input, (const guint8 *) PREFACE, 24);
  g_byte_array_append (input, data, size);

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    abort ();
  server_side = g_socket_new_from_fd (fds[0], NULL);
  client_side = g_socket_new_from_fd (fds[1], NULL);
  g_socket_set_blocking (client_side, FALSE);
  cp_http_server_accept_socket (server, server_side, FALSE);

  /* Feed the input as the socket takes it, half-close, drain what the
   * server sends so it is never blocked on us, until it closes. */
  while (cp_http_server_get_n_connections (server) > 0)
    {
      if (sent < input->len)
        {
          gssize n = g_socket_send (client_side, (const char *) input->data + sent,
                                    input->len - sent, NULL, NULL);
          if (n > 0)
            sent += n;
          if (sent == input->len)
            g_socket_shutdown (client_side, FALSE, TRUE, NULL);
        }
      while (g_socket_receive (client_side, sink, sizeof sink, NULL, NULL) > 0)
        ;
      g_main_context_iteration (NULL, FALSE);
      if (++iterations > 100000)
        {
          g_printerr ("fuzz-http2-session: the connection did not settle\n");
          abort ();
        }
    }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (cp_http_server_get_n_active_exchanges (server), ==, 0);
  return 0;
}
