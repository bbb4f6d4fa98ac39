/* cp-http-exchange.c: one HTTP request/response, as the engine sees it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The same object serves both transports: a socket connection
 * (cp-http-connection.c, exchange->conn set) and the in-process transport
 * (exchange->local set), which is implemented here in full.
 */
#include "cp-http-connection-private.h"

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

static void
clear_local_callbacks (CpHttpExchange *exchange)
{
  gpointer user_data = exchange->local_user_data;
  GDestroyNotify destroy = exchange->local_destroy;

  memset (&exchange->local_callbacks, 0, sizeof exchange->local_callbacks);
  exchange->local_user_data = NULL;
  exchange->local_destroy = NULL;
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
  exchange->close = exchange->congestion_reported = exchange->counted_active = FALSE;
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
  clear_local_callbacks (exchange);
  g_queue_clear_full (&exchange->local_body, (GDestroyNotify) g_bytes_unref);
  g_free (exchange->method);
  g_free (exchange->path);
  soup_message_headers_unref (exchange->request_headers);
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

SoupHTTPVersion
cp_http_exchange_get_http_version (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, SOUP_HTTP_1_1);
  return exchange->version;
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
  if (exchange->conn == NULL)
    return NULL;
  return cp_http_connection_get_remote_address (exchange->conn);
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

static void local_deliver (CpHttpExchange *exchange);

static gboolean
local_deliver_cb (gpointer data)
{
  local_deliver (data);
  return G_SOURCE_REMOVE;
}

/* Handler calls (set_callbacks, resume_body) never call back into the
 * handler synchronously: delivery continues from the main loop. */
static void
local_schedule_deliver (CpHttpExchange *exchange)
{
  g_autoptr(GSource) source = NULL;

  if (!exchange->handler_returned)
    return;   /* cp_http_server_dispatch_local() delivers when the handler returns */
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, local_deliver_cb, cp_http_exchange_ref (exchange),
                         (GDestroyNotify) cp_http_exchange_unref);
  g_source_set_static_name (source, "[connectplugin] local exchange body");
  g_source_attach (source, exchange->server ? cp_http_server_get_context (exchange->server) : NULL);
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
    local_schedule_deliver (exchange);
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
    local_schedule_deliver (exchange);
  else if (exchange->conn != NULL && exchange->handler_returned)
    cp_http_connection_body_flow (exchange->conn);
}

/* ---- response side ---- */

static void local_finish (CpHttpExchange *exchange);

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
    {
      g_autoptr(SoupMessageHeaders) empty = NULL;

      if (headers == NULL)
        headers = empty = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      cp_http_exchange_ref (exchange);
      if (exchange->local_callbacks.response_head != NULL)
        exchange->local_callbacks.response_head (exchange, status, headers, exchange->local_user_data);
      if (body != NULL && g_bytes_get_size (body) > 0 &&
          exchange->local_callbacks.response_chunk != NULL)
        exchange->local_callbacks.response_chunk (exchange, body, exchange->local_user_data);
      local_finish (exchange);
      cp_http_exchange_unref (exchange);
      return;
    }
  if (exchange->conn != NULL)
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
    {
      g_autoptr(SoupMessageHeaders) empty = NULL;

      if (headers == NULL)
        headers = empty = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
      if (exchange->local_callbacks.response_head != NULL)
        exchange->local_callbacks.response_head (exchange, status, headers, exchange->local_user_data);
      return;
    }
  if (exchange->conn != NULL)
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
    {
      if (exchange->local_callbacks.response_chunk != NULL)
        exchange->local_callbacks.response_chunk (exchange, chunk, exchange->local_user_data);
      return;
    }
  if (exchange->conn != NULL)
    cp_http_connection_write (exchange->conn, exchange, chunk);
}

gboolean
cp_http_exchange_is_congested (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, FALSE);

  if (exchange->aborted || exchange->finished || exchange->conn == NULL)
    return FALSE;
  if (cp_http_connection_is_congested (exchange->conn))
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
    {
      cp_http_exchange_ref (exchange);
      local_finish (exchange);
      cp_http_exchange_unref (exchange);
      return;
    }
  if (exchange->conn != NULL)
    cp_http_connection_end_response (exchange->conn, exchange);
}

void
cp_http_exchange_set_close (CpHttpExchange *exchange)
{
  g_return_if_fail (exchange != NULL);
  exchange->close = TRUE;
  if (exchange->conn != NULL && exchange->handler_returned)
    cp_http_connection_body_flow (exchange->conn);
}

gboolean
cp_http_exchange_is_finished (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL, TRUE);
  return exchange->finished || exchange->aborted;
}

/* ---- In-process (local) transport ---- */

CpHttpExchange *
cp_http_exchange_new_local (const char                 *method,
                            const char                 *path_and_query,
                            SoupMessageHeaders         *headers,
                            const CpHttpLocalCallbacks *callbacks,
                            gpointer                    user_data,
                            GDestroyNotify              destroy)
{
  CpHttpExchange *exchange;
  char *query;

  g_return_val_if_fail (method != NULL, NULL);
  g_return_val_if_fail (path_and_query != NULL, NULL);

  exchange = cp_http_exchange_new_internal ();
  exchange->local = TRUE;
  exchange->method = g_strdup (method);
  exchange->path = g_strdup (path_and_query);
  query = strchr (exchange->path, '?');
  if (query != NULL)
    {
      *query = '\0';
      exchange->query = query + 1;
    }
  exchange->arrival_time = g_get_monotonic_time ();
  exchange->keep_alive = TRUE;
  if (headers != NULL)
    {
      SoupMessageHeadersIter iter;
      const char *name, *value;

      soup_message_headers_iter_init (&iter, headers);
      while (soup_message_headers_iter_next (&iter, &name, &value))
        soup_message_headers_append (exchange->request_headers, name, value);
      exchange->empty_body =
        soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
        soup_message_headers_get_content_length (headers) == 0;
    }
  if (callbacks != NULL)
    exchange->local_callbacks = *callbacks;
  exchange->local_user_data = user_data;
  exchange->local_destroy = destroy;
  return exchange;
}

static void
local_deliver (CpHttpExchange *exchange)
{
  cp_http_exchange_ref (exchange);
  while (cp_http_exchange_can_deliver (exchange))
    {
      GBytes *chunk = g_queue_pop_head (&exchange->local_body);

      if (chunk != NULL)
        {
          cp_http_exchange_deliver_chunk (exchange, chunk);
          g_bytes_unref (chunk);
          continue;
        }
      if (exchange->local_body_ended)
        cp_http_exchange_deliver_end (exchange);
      break;
    }
  cp_http_exchange_unref (exchange);
}

static gboolean
local_release_callbacks_cb (gpointer data)
{
  cp_http_exchange_clear_callbacks (data);
  return G_SOURCE_REMOVE;
}

/* The response is complete: tell the client, then drop the handler's
 * callbacks from the main loop (never from inside the handler's call). */
static void
local_finish (CpHttpExchange *exchange)
{
  exchange->finished = TRUE;
  g_queue_clear_full (&exchange->local_body, (GDestroyNotify) g_bytes_unref);
  if (exchange->counted_active && exchange->server != NULL)
    cp_http_server_exchange_done (exchange->server, exchange);
  if (exchange->local_callbacks.response_end != NULL)
    exchange->local_callbacks.response_end (exchange, exchange->local_user_data);
  clear_local_callbacks (exchange);

  if (exchange->has_callbacks)
    {
      GMainContext *context = exchange->server ? cp_http_server_get_context (exchange->server) : NULL;
      g_autoptr(GSource) source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, local_release_callbacks_cb,
                             cp_http_exchange_ref (exchange),
                             (GDestroyNotify) cp_http_exchange_unref);
      g_source_set_static_name (source, "[connectplugin] local exchange done");
      g_source_attach (source, context);
    }
}

void
cp_http_exchange_local_push_body (CpHttpExchange *exchange,
                                  GBytes         *chunk)
{
  g_return_if_fail (exchange != NULL && exchange->local);
  g_return_if_fail (chunk != NULL);

  if (exchange->local_body_ended || exchange->aborted || exchange->finished)
    return;
  if (g_bytes_get_size (chunk) == 0)
    return;
  g_queue_push_tail (&exchange->local_body, g_bytes_ref (chunk));
  local_deliver (exchange);
}

void
cp_http_exchange_local_end_body (CpHttpExchange *exchange)
{
  g_return_if_fail (exchange != NULL && exchange->local);

  if (exchange->local_body_ended)
    return;
  exchange->local_body_ended = TRUE;
  local_deliver (exchange);
}

void
cp_http_exchange_local_cancel (CpHttpExchange *exchange)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (exchange != NULL && exchange->local);

  if (exchange->local_cancelled || exchange->finished || exchange->aborted)
    return;
  exchange->local_cancelled = TRUE;
  cp_http_exchange_ref (exchange);
  clear_local_callbacks (exchange);
  g_queue_clear_full (&exchange->local_body, (GDestroyNotify) g_bytes_unref);
  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               "The client cancelled the request");
  cp_http_exchange_abort (exchange, error);
  cp_http_exchange_unref (exchange);
}

/* Called by cp_http_server_dispatch_local() once the handler returned. */
void
cp_http_exchange_local_dispatched (CpHttpExchange *exchange)
{
  exchange->handler_returned = TRUE;
  if (!exchange->aborted && !exchange->finished)
    local_deliver (exchange);
}
