/* cp-channel-exchange-local.c: the in-process transport of
 * CpChannelExchange (see cp-channel-exchange.c): hands the request to the
 * CpRpcServer's CpHttpServer as a local CpHttpExchange in the server's
 * context, and queues the response's head, chunks and end back to the
 * owner context, under a lock since the two may be different threads
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-channel-exchange-impl-private.h"
#include "cp-channel-private.h"
#include "cp-call-options-private.h"
#include "cp-error.h"
#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"

static gboolean
local_abort_in_server (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  if (self->local != NULL)
    {
      if (!self->local_done)
        cp_http_exchange_local_cancel (self->local);
      g_clear_pointer (&self->local, cp_http_exchange_unref);
    }
  return G_SOURCE_REMOVE;
}

static void
invoke_in_server (CpChannelExchange *self,
                  GSourceFunc        func)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, cp_channel_exchange_ref (self),
                         (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (source, "[connectplugin] in-process call");
  g_source_attach (source, self->server_context);
  g_source_unref (source);
}

static void
local_response_head (CpHttpExchange     *exchange,
                     guint               status,
                     SoupMessageHeaders *headers,
                     gpointer            user_data)
{
  CpExchangeEvent *event = cp_exchange_event_new (CP_EXCHANGE_EVENT_HEAD);

  event->status = status;
  event->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  cp_headers_copy_into (event->headers, headers);
  cp_channel_exchange_push_event (user_data, event);
}

static void
local_response_chunk (CpHttpExchange *exchange,
                      GBytes         *chunk,
                      gpointer        user_data)
{
  CpExchangeEvent *event;

  if (chunk == NULL || g_bytes_get_size (chunk) == 0)
    return;
  event = cp_exchange_event_new (CP_EXCHANGE_EVENT_CHUNK);
  event->chunk = g_bytes_ref (chunk);
  cp_channel_exchange_push_event (user_data, event);
}

static void
local_response_end (CpHttpExchange *exchange,
                    gpointer        user_data)
{
  CpChannelExchange *self = user_data;
  self->local_done = TRUE;
  cp_channel_exchange_push_event (self, cp_exchange_event_new (CP_EXCHANGE_EVENT_END));
  /* Drop our reference to the exchange later, not inside its callback. */
  invoke_in_server (self, local_abort_in_server);
}

static const CpHttpLocalCallbacks local_callbacks = {
  local_response_head,
  local_response_chunk,
  local_response_end,
};

static gboolean
local_dispatch_in_server (gpointer user_data)
{
  CpChannelExchange *self = user_data;
  g_autoptr(SoupMessageHeaders) headers = NULL;
  CpRpcServer *server;
  gboolean aborted;

  g_mutex_lock (&self->lock);
  aborted = self->aborted;
  g_mutex_unlock (&self->lock);
  if (aborted)
    return G_SOURCE_REMOVE;

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  cp_headers_copy_into (headers, self->request_headers);
  /* What an HTTP/1.1 parser would see: no body (GET) = Content-Length 0. */
  soup_message_headers_set_content_length (headers, self->body ? g_bytes_get_size (self->body) : 0);

  self->local = cp_http_exchange_new_local (self->method, self->path_and_query, headers,
                                            &local_callbacks, cp_channel_exchange_ref (self),
                                            (GDestroyNotify) cp_channel_exchange_unref);
  server = cp_channel_get_server (self->channel);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (server), self->local);
  /* The handler may have finished (and local_abort_in_server been queued). */
  if (self->local != NULL && !self->local_done)
    {
      if (self->body != NULL && g_bytes_get_size (self->body) > 0)
        cp_http_exchange_local_push_body (self->local, self->body);
      cp_http_exchange_local_end_body (self->local);
    }
  return G_SOURCE_REMOVE;
}

void
cp_channel_exchange_local_start (CpChannelExchange *self)
{
  self->server_context = g_main_context_ref (cp_channel_get_context (self->channel));
  invoke_in_server (self, local_dispatch_in_server);
}

void
cp_channel_exchange_local_abort (CpChannelExchange *self)
{
  cp_channel_exchange_abort_events (self);
  invoke_in_server (self, local_abort_in_server);
}

void
cp_channel_exchange_local_stop (CpChannelExchange *self)
{
  cp_channel_exchange_stop_events (self);
}

void
cp_channel_exchange_local_resume (CpChannelExchange *self)
{
  cp_channel_exchange_resume_events (self);
}

void
cp_channel_exchange_local_clear (CpChannelExchange *self)
{
  g_clear_pointer (&self->local, cp_http_exchange_unref);
  g_queue_clear_full (&self->events, (GDestroyNotify) cp_exchange_event_free);
}
