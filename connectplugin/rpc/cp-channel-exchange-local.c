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

typedef enum {
  LOCAL_HEAD,
  LOCAL_CHUNK,
  LOCAL_END,
} LocalEventKind;

typedef struct {
  LocalEventKind kind;
  guint status;
  SoupMessageHeaders *headers;
  GBytes *chunk;
} LocalEvent;

static void
local_event_free (LocalEvent *event)
{
  g_clear_pointer (&event->headers, soup_message_headers_unref);
  g_clear_pointer (&event->chunk, g_bytes_unref);
  g_free (event);
}

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
handle_local_event (CpChannelExchange *self,
                    LocalEvent        *event)
{
  switch (event->kind)
    {
    case LOCAL_HEAD:
      self->status = event->status;
      self->reason = g_strdup (soup_status_get_phrase (event->status));
      self->response_headers = g_steal_pointer (&event->headers);
      self->head_received = TRUE;
      if (self->callbacks.head)
        self->callbacks.head (self, self->user_data);
      break;
    case LOCAL_CHUNK:
      if (self->callbacks.chunk)
        self->callbacks.chunk (self, event->chunk, self->user_data);
      break;
    case LOCAL_END:
      if (!self->head_received)
        {
          cp_channel_exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                      "the server ended the exchange without a response"),
                           TRUE);
          break;
        }
      self->eof = TRUE;
      cp_channel_exchange_finish (self, NULL, TRUE);
      break;
    }
}

static gboolean
on_local_events (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->event_source, g_source_unref);
  g_mutex_unlock (&self->lock);

  while (!self->finished && !self->paused)
    {
      LocalEvent *event;

      g_mutex_lock (&self->lock);
      event = g_queue_pop_head (&self->events);
      g_mutex_unlock (&self->lock);
      if (event == NULL)
        break;
      handle_local_event (self, event);
      local_event_free (event);
    }
  return G_SOURCE_REMOVE;
}

/* With self->lock held. */
static void
schedule_local_events_locked (CpChannelExchange *self)
{
  if (self->event_source != NULL || self->aborted)
    return;
  self->event_source = g_idle_source_new ();
  g_source_set_callback (self->event_source, on_local_events,
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->event_source, "[connectplugin] in-process response");
  g_source_attach (self->event_source, self->context);
}

static void
push_local_event (CpChannelExchange *self,
                  LocalEvent        *event)
{
  g_mutex_lock (&self->lock);
  if (self->aborted)
    local_event_free (event);
  else
    {
      g_queue_push_tail (&self->events, event);
      schedule_local_events_locked (self);
    }
  g_mutex_unlock (&self->lock);
}

static void
local_response_head (CpHttpExchange     *exchange,
                     guint               status,
                     SoupMessageHeaders *headers,
                     gpointer            user_data)
{
  LocalEvent *event = g_new0 (LocalEvent, 1);

  event->kind = LOCAL_HEAD;
  event->status = status;
  event->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  cp_headers_copy_into (event->headers, headers);
  push_local_event (user_data, event);
}

static void
local_response_chunk (CpHttpExchange *exchange,
                      GBytes         *chunk,
                      gpointer        user_data)
{
  LocalEvent *event;

  if (chunk == NULL || g_bytes_get_size (chunk) == 0)
    return;
  event = g_new0 (LocalEvent, 1);
  event->kind = LOCAL_CHUNK;
  event->chunk = g_bytes_ref (chunk);
  push_local_event (user_data, event);
}

static void
local_response_end (CpHttpExchange *exchange,
                    gpointer        user_data)
{
  CpChannelExchange *self = user_data;
  LocalEvent *event = g_new0 (LocalEvent, 1);

  self->local_done = TRUE;
  event->kind = LOCAL_END;
  push_local_event (self, event);
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
  g_mutex_lock (&self->lock);
  self->aborted = TRUE;
  g_queue_clear_full (&self->events, (GDestroyNotify) local_event_free);
  g_mutex_unlock (&self->lock);
  invoke_in_server (self, local_abort_in_server);
}

void
cp_channel_exchange_local_stop (CpChannelExchange *self)
{
  g_mutex_lock (&self->lock);
  if (self->event_source)
    g_source_destroy (self->event_source);
  g_clear_pointer (&self->event_source, g_source_unref);
  g_mutex_unlock (&self->lock);
}

void
cp_channel_exchange_local_resume (CpChannelExchange *self)
{
  g_mutex_lock (&self->lock);
  if (!g_queue_is_empty (&self->events))
    schedule_local_events_locked (self);
  g_mutex_unlock (&self->lock);
}

void
cp_channel_exchange_local_clear (CpChannelExchange *self)
{
  g_clear_pointer (&self->local, cp_http_exchange_unref);
  g_queue_clear_full (&self->events, (GDestroyNotify) local_event_free);
}
