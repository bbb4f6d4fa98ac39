/* cp-channel-exchange-h2.c: the HTTP/2 transport of CpChannelExchange
 * (see cp-channel-exchange.c): hands the exchange to the channel's
 * CpH2Client (cp-h2-connection.c), whose thread queues the response's
 * head, chunks and end here, delivered in the owner context
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The events queue and the request body queue (h2_out) are shared with
 * the client's thread under the exchange's lock. Back-pressure: while the
 * owner is paused the received bytes are not given back to the stream's
 * flow-control window (h2_hold, h2_unconsumed), so the server stops
 * sending once the window is full; resume gives them back.
 */
#include <string.h>

#include "cp-channel-exchange-impl-private.h"
#include "cp-channel-private.h"
#include "cp-error.h"
#include "cp-h2-connection-private.h"

typedef enum {
  H2_HEAD,
  H2_CHUNK,
  H2_END,
  H2_FALLBACK,
} H2EventKind;

typedef struct {
  H2EventKind kind;
  guint status;
  SoupMessageHeaders *headers;   /* head: response headers; end: trailers */
  GBytes *chunk;
  GError *error;
  gboolean not_sent;
  gboolean connection_lost;
} H2Event;

static void
h2_event_free (H2Event *event)
{
  g_clear_pointer (&event->headers, soup_message_headers_unref);
  g_clear_pointer (&event->chunk, g_bytes_unref);
  g_clear_error (&event->error);
  g_free (event);
}

/* The server does not speak HTTP/2: libsoup sends the exchange. A
 * streamed request body goes on streaming there (chunked) from what is
 * left in h2_out, unless the exchange is full-duplex, which HTTP/1.1
 * cannot carry: the response would only be read once the body ended. */
static void
fall_back (CpChannelExchange *self)
{
  self->h2 = NULL;
  if (self->request_streaming && !self->request_half_duplex && !self->body_ended)
    {
      cp_channel_exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                                             "the server does not speak HTTP/2, "
                                                             "which full-duplex streams need"),
                                  TRUE);
      return;
    }
  if (!self->request_streaming)
    {
      g_mutex_lock (&self->lock);
      g_queue_clear_full (&self->h2_out, (GDestroyNotify) g_bytes_unref);
      self->h2_out_offset = 0;
      g_mutex_unlock (&self->lock);
    }
  cp_channel_exchange_soup_start (self);
}

static void
handle_event (CpChannelExchange *self,
              H2Event           *event)
{
  switch (event->kind)
    {
    case H2_HEAD:
      self->status = event->status;
      self->reason = g_strdup (soup_status_get_phrase (event->status));
      self->response_headers = g_steal_pointer (&event->headers);
      self->head_received = TRUE;
      if (self->callbacks.head)
        self->callbacks.head (self, self->user_data);
      break;
    case H2_CHUNK:
      if (self->callbacks.chunk)
        self->callbacks.chunk (self, event->chunk, self->user_data);
      break;
    case H2_END:
      self->not_sent = event->not_sent;
      self->connection_lost = event->connection_lost;
      if (event->error == NULL)
        {
          self->response_trailers = g_steal_pointer (&event->headers);
          self->eof = TRUE;
        }
      cp_channel_exchange_finish (self, g_steal_pointer (&event->error), TRUE);
      break;
    case H2_FALLBACK:
      fall_back (self);
      break;
    }
}

static gboolean
on_h2_events (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->h2_event_source, g_source_unref);
  g_mutex_unlock (&self->lock);

  while (!self->finished && !self->paused)
    {
      H2Event *event;

      /* The caller cancelled (the cancel source has not run yet): that
       * wins over whatever arrived meanwhile, as it would have a moment
       * earlier. */
      if (g_cancellable_is_cancelled (self->cancellable))
        {
          cp_channel_exchange_finish (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                                 "the call was cancelled"), TRUE);
          break;
        }
      g_mutex_lock (&self->lock);
      event = g_queue_pop_head (&self->h2_events);
      g_mutex_unlock (&self->lock);
      if (event == NULL)
        break;
      handle_event (self, event);
      h2_event_free (event);
    }
  return G_SOURCE_REMOVE;
}

/* With self->lock held. */
static void
schedule_events_locked (CpChannelExchange *self)
{
  if (self->h2_event_source != NULL || self->h2_aborted)
    return;
  self->h2_event_source = g_idle_source_new ();
  g_source_set_priority (self->h2_event_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->h2_event_source, on_h2_events,
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->h2_event_source, "[connectplugin] HTTP/2 response");
  g_source_attach (self->h2_event_source, self->context);
}

static void
push_event (CpChannelExchange *self,
            H2Event           *event)
{
  g_mutex_lock (&self->lock);
  if (self->h2_aborted)
    h2_event_free (event);
  else
    {
      g_queue_push_tail (&self->h2_events, event);
      schedule_events_locked (self);
    }
  g_mutex_unlock (&self->lock);
}

/* ---- the client's thread ---- */

void
cp_channel_exchange_h2_push_head (CpChannelExchange  *self,
                                  guint               status,
                                  SoupMessageHeaders *headers)
{
  H2Event *event = g_new0 (H2Event, 1);

  event->kind = H2_HEAD;
  event->status = status;
  event->headers = soup_message_headers_ref (headers);
  push_event (self, event);
}

gboolean
cp_channel_exchange_h2_push_chunk (CpChannelExchange *self,
                                   const guint8      *data,
                                   gsize              len)
{
  H2Event *event = g_new0 (H2Event, 1);
  gboolean consume;

  event->kind = H2_CHUNK;
  event->chunk = g_bytes_new (data, len);
  g_mutex_lock (&self->lock);
  if (self->h2_aborted)
    {
      h2_event_free (event);
      consume = TRUE;
    }
  else
    {
      g_queue_push_tail (&self->h2_events, event);
      schedule_events_locked (self);
      consume = !self->h2_hold;
      if (!consume)
        self->h2_unconsumed += len;
    }
  g_mutex_unlock (&self->lock);
  return consume;
}

void
cp_channel_exchange_h2_push_end (CpChannelExchange  *self,
                                 GError             *error,
                                 SoupMessageHeaders *trailers,
                                 gboolean            not_sent,
                                 gboolean            connection_lost)
{
  H2Event *event = g_new0 (H2Event, 1);

  event->kind = H2_END;
  event->error = error;
  event->headers = trailers ? soup_message_headers_ref (trailers) : NULL;
  event->not_sent = not_sent;
  event->connection_lost = connection_lost;
  push_event (self, event);
}

void
cp_channel_exchange_h2_push_fallback (CpChannelExchange *self)
{
  H2Event *event = g_new0 (H2Event, 1);

  event->kind = H2_FALLBACK;
  push_event (self, event);
}

gssize
cp_channel_exchange_h2_read_body (CpChannelExchange *self,
                                  guint8            *buffer,
                                  gsize              len,
                                  gboolean          *eof)
{
  gsize copied = 0;
  GBytes *head;

  g_mutex_lock (&self->lock);
  while (copied < len && (head = g_queue_peek_head (&self->h2_out)) != NULL)
    {
      gsize size;
      const guint8 *data = g_bytes_get_data (head, &size);
      gsize n = MIN (len - copied, size - self->h2_out_offset);

      memcpy (buffer + copied, data + self->h2_out_offset, n);
      copied += n;
      self->h2_out_offset += n;
      if (self->h2_out_offset == size)
        {
          g_bytes_unref (g_queue_pop_head (&self->h2_out));
          self->h2_out_offset = 0;
        }
    }
  *eof = self->h2_out_ended && g_queue_is_empty (&self->h2_out);
  if (self->request_streaming)
    cp_channel_exchange_body_taken_locked (self, copied);
  g_mutex_unlock (&self->lock);
  if (copied == 0 && !*eof)
    return -1;
  return copied;
}

/* ---- the owner context ---- */

void
cp_channel_exchange_h2_start (CpChannelExchange *self)
{
  self->h2 = cp_channel_get_h2_client (self->channel);
  if (!self->request_streaming)
    {
      g_mutex_lock (&self->lock);
      if (self->body != NULL && g_bytes_get_size (self->body) > 0)
        g_queue_push_tail (&self->h2_out, g_bytes_ref (self->body));
      self->h2_out_ended = TRUE;
      g_mutex_unlock (&self->lock);
    }
  cp_h2_client_submit (self->h2, self);
}

void
cp_channel_exchange_h2_abort (CpChannelExchange *self)
{
  gboolean was_aborted;

  g_mutex_lock (&self->lock);
  was_aborted = self->h2_aborted;
  self->h2_aborted = TRUE;
  g_queue_clear_full (&self->h2_events, (GDestroyNotify) h2_event_free);
  g_mutex_unlock (&self->lock);
  if (!was_aborted)
    cp_h2_client_cancel (self->h2, self);
}

void
cp_channel_exchange_h2_stop (CpChannelExchange *self)
{
  g_mutex_lock (&self->lock);
  if (self->h2_event_source != NULL)
    g_source_destroy (self->h2_event_source);
  g_clear_pointer (&self->h2_event_source, g_source_unref);
  g_mutex_unlock (&self->lock);
}

void
cp_channel_exchange_h2_pause (CpChannelExchange *self)
{
  g_mutex_lock (&self->lock);
  self->h2_hold = TRUE;
  g_mutex_unlock (&self->lock);
}

void
cp_channel_exchange_h2_resume (CpChannelExchange *self)
{
  gboolean kick;

  g_mutex_lock (&self->lock);
  self->h2_hold = FALSE;
  kick = self->h2_unconsumed > 0;
  if (!g_queue_is_empty (&self->h2_events))
    schedule_events_locked (self);
  g_mutex_unlock (&self->lock);
  if (kick)
    cp_h2_client_kick (self->h2, self);
}

void
cp_channel_exchange_h2_clear (CpChannelExchange *self)
{
  g_queue_clear_full (&self->h2_events, (GDestroyNotify) h2_event_free);
  g_queue_clear_full (&self->h2_out, (GDestroyNotify) g_bytes_unref);
}
