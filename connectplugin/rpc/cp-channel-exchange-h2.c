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

/* The server does not speak HTTP/2: libsoup sends the exchange. A
 * streamed request body goes on streaming there (chunked) from what is
 * left in h2_out, unless the exchange is full-duplex, which HTTP/1.1
 * cannot carry: the response would only be read once the body ended. */
void
cp_channel_exchange_h2_fall_back (CpChannelExchange *self)
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

/* ---- the client's thread ---- */

void
cp_channel_exchange_h2_push_head (CpChannelExchange  *self,
                                  guint               status,
                                  SoupMessageHeaders *headers)
{
  CpExchangeEvent *event = cp_exchange_event_new (CP_EXCHANGE_EVENT_HEAD);

  event->status = status;
  event->headers = soup_message_headers_ref (headers);
  cp_channel_exchange_push_event (self, event);
}

gboolean
cp_channel_exchange_h2_push_chunk (CpChannelExchange *self,
                                   const guint8      *data,
                                   gsize              len)
{
  CpExchangeEvent *event = cp_exchange_event_new (CP_EXCHANGE_EVENT_CHUNK);
  gboolean consume = TRUE;

  event->chunk = g_bytes_new (data, len);
  g_mutex_lock (&self->lock);
  if (cp_channel_exchange_push_event_locked (self, event))
    {
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
  CpExchangeEvent *event = cp_exchange_event_new (CP_EXCHANGE_EVENT_END);

  event->error = error;
  event->headers = trailers ? soup_message_headers_ref (trailers) : NULL;
  event->not_sent = not_sent;
  event->connection_lost = connection_lost;
  cp_channel_exchange_push_event (self, event);
}

void
cp_channel_exchange_h2_push_fallback (CpChannelExchange *self)
{
  cp_channel_exchange_push_event (self, cp_exchange_event_new (CP_EXCHANGE_EVENT_FALLBACK));
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
  if (!cp_channel_exchange_abort_events (self))
    cp_h2_client_cancel (self->h2, self);
}

void
cp_channel_exchange_h2_stop (CpChannelExchange *self)
{
  cp_channel_exchange_stop_events (self);
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
  g_mutex_unlock (&self->lock);
  cp_channel_exchange_resume_events (self);
  if (kick)
    cp_h2_client_kick (self->h2, self);
}

void
cp_channel_exchange_h2_clear (CpChannelExchange *self)
{
  g_queue_clear_full (&self->events, (GDestroyNotify) cp_exchange_event_free);
  g_queue_clear_full (&self->h2_out, (GDestroyNotify) g_bytes_unref);
}
