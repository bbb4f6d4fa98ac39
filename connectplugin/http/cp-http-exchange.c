/* cp-http-exchange.c: one HTTP request/response, as the engine sees it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The same object serves both transports: a socket connection
 * (cp-http-connection.c, exchange->conn set) and the in-process transport
 * (cp-http-local.c, exchange->local set). This file holds what is common
 * and hands each response call to the exchange's transport.
 */
#include "cp-http-connection-private.h"
#include "cp-http2-session-private.h"

#include <string.h>

CpHttpExchange *
cp_http_exchange_new_internal (void)
{
  CpHttpExchange *exchange = g_new0 (CpHttpExchange, 1);

  exchange->ref_count = 1;
  exchange->version = SOUP_HTTP_1_1;
  exchange->request_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_queue_init (&exchange->local_body);
  return exchange;
}

void
cp_http_exchange_clear_callbacks (CpHttpExchange *exchange)
{
  gpointer user_data = exchange->user_data;
  GDestroyNotify destroy = exchange->destroy;

  exchange->has_callbacks = FALSE;
  memset (&exchange->callbacks, 0, sizeof exchange->callbacks);
  exchange->user_data = NULL;
  exchange->destroy = NULL;
  if (destroy != NULL)
    destroy (user_data);
}

/* Makes a finished exchange reusable by its connection for the next request
 * (only when nobody else holds a reference). */
void
cp_http_exchange_reset (CpHttpExchange *exchange)
{
  cp_http_exchange_clear_callbacks (exchange);
  g_clear_pointer (&exchange->method, g_free);
  g_clear_pointer (&exchange->path, g_free);
  exchange->query = NULL;
  soup_message_headers_clear (exchange->request_headers);
  exchange->server = NULL;
  exchange->conn = NULL;
  exchange->arrival_time = 0;
  exchange->content_length = 0;
  exchange->version = SOUP_HTTP_1_1;
  exchange->has_callbacks = exchange->empty_body = exchange->chunked_request = FALSE;
  exchange->expect_continue = exchange->keep_alive = exchange->head_request = FALSE;
  exchange->handler_returned = exchange->paused = exchange->body_ended = FALSE;
  exchange->response_started = exchange->chunked_response = FALSE;
  exchange->response_has_body = exchange->finished = exchange->aborted = FALSE;
  exchange->close = exchange->discard_body = FALSE;
  exchange->congestion_reported = exchange->counted_active = FALSE;
  g_clear_pointer (&exchange->response_trailers, soup_message_headers_unref);
}

CpHttpExchange *
cp_http_exchange_ref (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  exchange->ref_count++;
  return exchange;
}

void
cp_http_exchange_unref (CpHttpExchange *exchange)
{
  g_return_if_fail (exchange != NULL);
  g_return_if_fail (exchange->ref_count > 0);

  if (--exchange->ref_count > 0)
    return;

  /* A local exchange dropped by everybody while the handler never
   * answered: nothing can complete it any more. */
  if (exchange->counted_active && exchange->server != NULL)
    cp_http_server_exchange_done (exchange->server, exchange);

  cp_http_exchange_clear_callbacks (exchange);
  cp_http_local_clear_callbacks (exchange);
  g_queue_clear_full (&exchange->local_body, (GDestroyNotify) g_bytes_unref);
  g_clear_object (&exchange->local_remote_address);
  g_clear_object (&exchange->local_peer_certificate);
  g_free (exchange->method);
  g_free (exchange->path);
  soup_message_headers_unref (exchange->request_headers);
  g_clear_pointer (&exchange->response_trailers, soup_message_headers_unref);
  g_free (exchange);
}

const char *
cp_http_exchange_get_method (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  return exchange->method;
}

const char *
cp_http_exchange_get_path (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  return exchange->path;
}

const char *
cp_http_exchange_get_query (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  return exchange->query;
}

SoupMessageHeaders *
cp_http_exchange_get_request_headers (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  return exchange->request_headers;
}

GSocketAddress *
cp_http_exchange_get_remote_address (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  if (exchange->h2 != NULL)
    return cp_http2_stream_get_remote_address (exchange->h2);
  if (exchange->conn == NULL)
    return exchange->local_remote_address;
  return cp_http_connection_get_remote_address (exchange->conn);
}

GTlsCertificate *
cp_http_exchange_get_peer_certificate (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, NULL);
  if (exchange->h2 != NULL)
    return cp_http2_stream_get_peer_certificate (exchange->h2);
  if (exchange->conn == NULL)
    return exchange->local_peer_certificate;
  return cp_http_connection_get_peer_certificate (exchange->conn);
}

gint64
cp_http_exchange_get_arrival_time (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, 0);
  return exchange->arrival_time;
}

gboolean
cp_http_exchange_has_empty_body (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, TRUE);
  return exchange->empty_body;
}

/* ---- body delivery (both transports) ---- */

gboolean
cp_http_exchange_can_deliver (CpHttpExchange *exchange)
{
  return exchange->handler_returned && exchange->has_callbacks &&
         !exchange->paused && !exchange->body_ended &&
         !exchange->aborted && !exchange->finished;
}

void
cp_http_exchange_deliver_chunk (CpHttpExchange *exchange,
                                GBytes         *chunk)
{
  if (exchange->callbacks.body_chunk != NULL)
    exchange->callbacks.body_chunk (exchange, chunk, exchange->user_data);
}

void
cp_http_exchange_deliver_end (CpHttpExchange *exchange)
{
  exchange->body_ended = TRUE;
  if (exchange->callbacks.body_end != NULL)
    exchange->callbacks.body_end (exchange, exchange->user_data);
}

/* Marks @exchange as aborted and tells the handler (once). */
void
cp_http_exchange_abort (CpHttpExchange *exchange,
                        const GError   *error)
{
  if (exchange->aborted || exchange->finished)
    return;

  cp_http_exchange_ref (exchange);
  exchange->aborted = TRUE;
  if (exchange->counted_active && exchange->server != NULL)
    cp_http_server_exchange_done (exchange->server, exchange);
  if (exchange->has_callbacks && exchange->callbacks.aborted != NULL)
    exchange->callbacks.aborted (exchange, error, exchange->user_data);
  cp_http_exchange_clear_callbacks (exchange);
  cp_http_exchange_unref (exchange);
}

void
cp_http_exchange_set_callbacks (CpHttpExchange                *exchange,
                                const CpHttpExchangeCallbacks *callbacks,
                                gpointer                       user_data,
                                GDestroyNotify                 destroy)
{
  g_return_if_fail (exchange != NULL);
  g_return_if_fail (callbacks != NULL);

  cp_http_exchange_clear_callbacks (exchange);
  if (exchange->aborted)
    {
      /* Too late: nothing will ever be delivered. */
      if (destroy != NULL)
        destroy (user_data);
      return;
    }

  exchange->callbacks = *callbacks;
  exchange->user_data = user_data;
  exchange->destroy = destroy;
  exchange->has_callbacks = TRUE;

  if (exchange->local)
    cp_http_local_schedule_deliver (exchange);
  else if (exchange->h2 != NULL)
    cp_http2_stream_body_flow (exchange->h2);
  else if (exchange->conn != NULL && exchange->handler_returned)
    cp_http_connection_body_flow (exchange->conn);
}

void
cp_http_exchange_pause_body (CpHttpExchange *exchange)
{
  g_return_if_fail (exchange != NULL);
  exchange->paused = TRUE;
}

void
cp_http_exchange_resume_body (CpHttpExchange *exchange)
{
  g_return_if_fail (exchange != NULL);

  if (!exchange->paused)
    return;
  exchange->paused = FALSE;
  if (exchange->local)
    cp_http_local_schedule_deliver (exchange);
  else if (exchange->h2 != NULL)
    cp_http2_stream_body_flow (exchange->h2);
  else if (exchange->conn != NULL && exchange->handler_returned)
    cp_http_connection_body_flow (exchange->conn);
}

/* ---- response side ---- */

void
cp_http_exchange_respond (CpHttpExchange     *exchange,
                          guint               status,
                          SoupMessageHeaders *headers,
                          GBytes             *body)
{
  g_return_if_fail (exchange != NULL);
  g_return_if_fail (status >= 200 && status <= 999);

  if (exchange->aborted)
    return;
  g_return_if_fail (!exchange->response_started);

  exchange->response_started = TRUE;
  if (exchange->local)
    cp_http_local_respond (exchange, status, headers, body);
  else if (exchange->h2 != NULL)
    cp_http2_stream_respond (exchange->h2, status, headers, body);
  else if (exchange->conn != NULL)
    cp_http_connection_respond (exchange->conn, exchange, status, headers, body);
}

void
cp_http_exchange_begin_response (CpHttpExchange     *exchange,
                                 guint               status,
                                 SoupMessageHeaders *headers)
{
  g_return_if_fail (exchange != NULL);
  g_return_if_fail (status >= 200 && status <= 999);

  if (exchange->aborted)
    return;
  g_return_if_fail (!exchange->response_started);

  exchange->response_started = TRUE;
  exchange->chunked_response = TRUE;
  if (exchange->local)
    cp_http_local_begin_response (exchange, status, headers);
  else if (exchange->h2 != NULL)
    cp_http2_stream_begin_response (exchange->h2, status, headers);
  else if (exchange->conn != NULL)
    cp_http_connection_begin_response (exchange->conn, exchange, status, headers);
}

void
cp_http_exchange_write (CpHttpExchange *exchange,
                        GBytes         *chunk)
{
  g_return_if_fail (exchange != NULL);
  g_return_if_fail (chunk != NULL);

  if (exchange->aborted)
    return;
  g_return_if_fail (exchange->chunked_response && !exchange->finished);

  if (g_bytes_get_size (chunk) == 0)
    return;
  if (exchange->local)
    cp_http_local_write (exchange, chunk);
  else if (exchange->h2 != NULL)
    cp_http2_stream_write (exchange->h2, chunk);
  else if (exchange->conn != NULL)
    cp_http_connection_write (exchange->conn, exchange, chunk);
}

gboolean
cp_http_exchange_is_congested (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, FALSE);

  if (exchange->aborted || exchange->finished)
    return FALSE;
  if (exchange->h2 != NULL ? cp_http2_stream_is_congested (exchange->h2) :
      exchange->conn != NULL && cp_http_connection_is_congested (exchange->conn))
    {
      exchange->congestion_reported = TRUE;
      return TRUE;
    }
  return FALSE;
}

void
cp_http_exchange_end_response (CpHttpExchange *exchange)
{
  g_return_if_fail (exchange != NULL);

  if (exchange->aborted)
    return;
  g_return_if_fail (exchange->chunked_response && !exchange->finished);

  if (exchange->local)
    cp_http_local_end_response (exchange);
  else if (exchange->h2 != NULL)
    cp_http2_stream_end_response (exchange->h2);
  else if (exchange->conn != NULL)
    cp_http_connection_end_response (exchange->conn, exchange);
}

void
cp_http_exchange_set_response_trailers (CpHttpExchange     *exchange,
                                        SoupMessageHeaders *trailers)
{
  g_return_if_fail (exchange != NULL);
  g_return_if_fail (trailers != NULL);

  soup_message_headers_ref (trailers);
  g_clear_pointer (&exchange->response_trailers, soup_message_headers_unref);
  exchange->response_trailers = trailers;
}

SoupHTTPVersion
cp_http_exchange_get_http_version (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, SOUP_HTTP_1_1);
  return exchange->version;
}

void
cp_http_exchange_set_close (CpHttpExchange *exchange)
{
  g_return_if_fail (exchange != NULL);
  exchange->close = exchange->discard_body = TRUE;
  if (exchange->h2 != NULL)
    cp_http2_stream_body_flow (exchange->h2);
  else if (exchange->conn != NULL && exchange->handler_returned)
    cp_http_connection_body_flow (exchange->conn);
}

gboolean
cp_http_exchange_is_finished (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, TRUE);
  return exchange->finished || exchange->aborted;
}

void
cp_http_exchange_fail_response (CpHttpExchange *exchange,
                                const char     *reason)
{
  g_return_if_fail (exchange != NULL);

  if (cp_http_exchange_is_finished (exchange))
    return;
  if (exchange->h2 != NULL)
    cp_http2_stream_fail (exchange->h2, reason);
  else if (exchange->conn != NULL)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, reason);

      cp_http_connection_close (exchange->conn, error);
    }
  else if (exchange->local)
    {
      cp_http_exchange_set_close (exchange);
      cp_http_exchange_end_response (exchange);
    }
}

gboolean
cp_http_exchange_is_local (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, FALSE);
  return exchange->local;
}
