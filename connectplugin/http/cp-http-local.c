/* cp-http-local.c: the in-process transport, no socket at all
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A client in the same process (an in-process CpChannel) makes a
 * CpHttpExchange with cp_http_exchange_new_local() and has the server run it
 * with cp_http_server_dispatch_local(): the handler sees the same exchange
 * API as for a socket connection. The request body the client pushes is
 * queued until the handler can take it and delivered from the server's
 * context; the response goes straight to the client's
 * CpHttpLocalCallbacks. Everything runs in the server's context.
 */
#include "cp-http-connection-private.h"

#include <string.h>

void
cp_http_local_clear_callbacks (CpHttpExchange *exchange)
{
  gpointer user_data = exchange->local_user_data;
  GDestroyNotify destroy = exchange->local_destroy;

  memset (&exchange->local_callbacks, 0, sizeof exchange->local_callbacks);
  exchange->local_user_data = NULL;
  exchange->local_destroy = NULL;
  if (destroy != NULL)
    destroy (user_data);
}

/* ---- the request body, handed to the handler ---- */

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
local_deliver_cb (gpointer data)
{
  local_deliver (data);
  return G_SOURCE_REMOVE;
}

/* Handler calls (set_callbacks, resume_body) never call back into the
 * handler synchronously: delivery continues from the main loop. */
void
cp_http_local_schedule_deliver (CpHttpExchange *exchange)
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

/* ---- the response, handed to the client ---- */

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
  cp_http_local_clear_callbacks (exchange);

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
cp_http_local_respond (CpHttpExchange     *exchange,
                       guint               status,
                       SoupMessageHeaders *headers,
                       GBytes             *body)
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
}

void
cp_http_local_begin_response (CpHttpExchange     *exchange,
                              guint               status,
                              SoupMessageHeaders *headers)
{
  g_autoptr(SoupMessageHeaders) empty = NULL;

  if (headers == NULL)
    headers = empty = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  if (exchange->local_callbacks.response_head != NULL)
    exchange->local_callbacks.response_head (exchange, status, headers, exchange->local_user_data);
}

void
cp_http_local_write (CpHttpExchange *exchange,
                     GBytes         *chunk)
{
  if (exchange->local_callbacks.response_chunk != NULL)
    exchange->local_callbacks.response_chunk (exchange, chunk, exchange->local_user_data);
}

void
cp_http_local_end_response (CpHttpExchange *exchange)
{
  cp_http_exchange_ref (exchange);
  local_finish (exchange);
  cp_http_exchange_unref (exchange);
}

/* ---- the client's side ---- */

SoupMessageHeaders *
cp_http_exchange_local_get_response_trailers (CpHttpExchange *exchange)
{
  g_return_val_if_fail (exchange != NULL && exchange->local, NULL);
  return exchange->response_trailers;
}

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
  cp_http_local_clear_callbacks (exchange);
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
