/* cp-channel-exchange.c: one HTTP exchange made by a CpChannel — a
 * request sent and its response read back as head, body chunks and end —
 * over libsoup (cp-channel-exchange-soup.c) or, for an in-process channel,
 * straight into the CpRpcServer's CpHttpServer without a socket
 * (cp-channel-exchange-local.c). This file is the core both share: life
 * cycle, deadline, cancellation, back-pressure and the end.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The unary call (cp-channel-unary.c) and the stream objects each drive one
 * exchange. It is named an exchange, not a call: an RPC "call" is the
 * public cp_channel_call_*() API and the streams on top of this, while this
 * unit only moves HTTP bytes (in-process it is the client end of a
 * server-side CpHttpExchange), enforces the deadline and maps transport
 * failures to Connect codes.
 *
 * Its flags (cp-channel-exchange-impl-private.h), all in the owner context
 * unless noted:
 *
 *   started          cp_channel_exchange_start() ran (sources attached)
 *   head_received    status and headers are known; head callback ran
 *   paused           the owner asked for back-pressure: no chunk callback
 *                    until resume (libsoup: no read; in-process: events
 *                    stay queued)
 *   read_pending     libsoup: an async read or a readable-source wait is
 *                    outstanding (it holds a reference)
 *   eof              the body ended by its framing (clean end)
 *   finished         cp_channel_exchange_finish() ran: sources gone, I/O
 *                    aborted or body stream closed, end callback delivered
 *                    (unless closed), user data released; nothing follows
 *   msg_finished     libsoup has unqueued the message and released its
 *                    connection (transport_busy() is FALSE from then on)
 *   connection_lost  libsoup: hint that the server's close ended the body
 *   not_sent         libsoup: the connection could not be made, so no
 *                    byte of the request was written (safe to re-send)
 *   local_done       in-process, server context: the server ended the
 *                    response
 *   aborted          in-process and HTTP/2, under lock: no more response
 *                    events are queued (cp_channel_exchange_push_event ())
 *
 * Moves: new → start (errors before sending end through a deferred idle,
 * never from inside start) → head → chunk* → end (eof, or error from the
 * transport, the deadline or cancellation). close() finishes at once
 * without the end callback.
 */
#include <string.h>

#include "cp-channel-exchange-impl-private.h"
#include "cp-channel-private.h"
#include "cp-error.h"
#include "cp-timeout-private.h"
#include "cp-grpc-private.h"
#include "cp-h2-connection-private.h"

/* "/pkg.Service/Method?query" → "/Method?query" (CpChannel:method-only-paths). */
static char *
method_only_path (const char *path_and_query)
{
  const char *query = strchr (path_and_query, '?');
  gsize path_len = query ? (gsize) (query - path_and_query) : strlen (path_and_query);
  const char *slash = g_strrstr_len (path_and_query, path_len, "/");

  return g_strdup (slash ? slash : path_and_query);
}

void
cp_channel_exchange_set_sync_pool (CpChannelExchange *self)
{
  g_return_if_fail (!self->started);

  self->sync_pool = TRUE;
}

CpChannelExchange *
cp_channel_exchange_new (CpChannel                        *channel,
                         const char                       *http_method,
                         const char                       *path_and_query,
                         SoupMessageHeaders               *headers,
                         GBytes                           *body,
                         gint64                            deadline,
                         GCancellable                     *cancellable,
                         const CpChannelExchangeCallbacks *callbacks,
                         gpointer                          user_data,
                         GDestroyNotify                    destroy)
{
  CpChannelExchange *self = g_new0 (CpChannelExchange, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->channel = g_object_ref (channel);
  self->context = g_main_context_ref_thread_default ();
  self->method = g_strdup (http_method);
  self->path_and_query = cp_channel_get_method_only_paths (channel)
                         ? method_only_path (path_and_query)
                         : g_strdup (path_and_query);
  self->request_headers = soup_message_headers_ref (headers);
  self->body = body ? g_bytes_ref (body) : NULL;
  self->deadline = deadline;
  self->user_cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  self->cancellable = g_cancellable_new ();
  self->callbacks = *callbacks;
  self->user_data = user_data;
  self->destroy = destroy;
  g_mutex_init (&self->lock);
  g_queue_init (&self->events);
  g_queue_init (&self->h2_out);
  return self;
}

CpChannelExchange *
cp_channel_exchange_ref (CpChannelExchange *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
cp_channel_exchange_unref (CpChannelExchange *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  /* Every async operation holds a reference, so nothing is pending here;
   * the exchange is only left when the server context went away. */
  /* libsoup first: a streamed request body reads under the lock. */
  cp_channel_exchange_soup_clear (self);
  cp_channel_exchange_local_clear (self);
  cp_channel_exchange_h2_clear (self);
  g_mutex_clear (&self->lock);
  if (self->destroy && self->user_data)
    self->destroy (self->user_data);
  g_clear_pointer (&self->response_headers, soup_message_headers_unref);
  g_clear_pointer (&self->response_trailers, soup_message_headers_unref);
  g_free (self->reason);
  g_clear_error (&self->deferred_error);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->user_cancellable);
  g_clear_pointer (&self->body, g_bytes_unref);
  g_clear_pointer (&self->request_headers, soup_message_headers_unref);
  g_free (self->path_and_query);
  g_free (self->method);
  g_clear_pointer (&self->server_context, g_main_context_unref);
  g_main_context_unref (self->context);
  g_object_unref (self->channel);
  g_free (self);
}

guint
cp_channel_exchange_get_status (CpChannelExchange *self)
{
  return self->status;
}

const char *
cp_channel_exchange_get_reason (CpChannelExchange *self)
{
  return self->reason;
}

SoupMessageHeaders *
cp_channel_exchange_get_response_headers (CpChannelExchange *self)
{
  return self->response_headers;
}

SoupMessageHeaders *
cp_channel_exchange_get_response_trailers (CpChannelExchange *self)
{
  return self->response_trailers;
}

gboolean
cp_channel_exchange_channel_full_duplex (CpChannel *channel)
{
  return cp_channel_get_server (channel) == NULL && cp_channel_get_h2_client (channel) != NULL;
}

gboolean
cp_channel_exchange_channel_streams_body (CpChannel *channel)
{
  return cp_channel_get_server (channel) == NULL;
}

/* Owner context: the transport took request body bytes. */
static gboolean
on_progress (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->progress_source, g_source_unref);
  g_mutex_unlock (&self->lock);
  if (!self->finished && self->callbacks.progress)
    self->callbacks.progress (self, self->user_data);
  return G_SOURCE_REMOVE;
}

void
cp_channel_exchange_body_taken_locked (CpChannelExchange *self,
                                       gsize              n)
{
  if (n == 0)
    return;
  self->body_queued -= MIN (n, self->body_queued);
  self->body_taken += n;
  if (self->progress_source != NULL || self->callbacks.progress == NULL || self->finished)
    return;
  self->progress_source = g_idle_source_new ();
  g_source_set_priority (self->progress_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->progress_source, on_progress,
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->progress_source, "[connectplugin] request body sent");
  g_source_attach (self->progress_source, self->context);
}

gsize
cp_channel_exchange_get_body_queued (CpChannelExchange *self)
{
  gsize queued;

  g_mutex_lock (&self->lock);
  queued = self->body_queued;
  g_mutex_unlock (&self->lock);
  return queued;
}

guint64
cp_channel_exchange_get_body_sent (CpChannelExchange *self)
{
  guint64 taken;

  g_mutex_lock (&self->lock);
  taken = self->body_taken;
  g_mutex_unlock (&self->lock);
  return taken;
}

void
cp_channel_exchange_set_request_streaming (CpChannelExchange *self)
{
  g_return_if_fail (!self->started && self->body == NULL);

  self->request_streaming = TRUE;
}

void
cp_channel_exchange_set_request_half_duplex (CpChannelExchange *self)
{
  g_return_if_fail (!self->started && self->body == NULL);

  self->request_streaming = TRUE;
  self->request_half_duplex = TRUE;
}

void
cp_channel_exchange_write_body (CpChannelExchange *self,
                                GBytes            *chunk)
{
  g_return_if_fail (self->request_streaming && !self->body_ended);

  if (g_bytes_get_size (chunk) == 0)
    return;
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->h2_out, g_bytes_ref (chunk));
  self->body_queued += g_bytes_get_size (chunk);
  g_mutex_unlock (&self->lock);
  if (self->h2 != NULL && !self->finished)
    cp_h2_client_kick (self->h2, self);
  cp_channel_exchange_soup_body_wake (self);
}

void
cp_channel_exchange_end_body (CpChannelExchange *self)
{
  g_return_if_fail (self->request_streaming);

  if (self->body_ended)
    return;
  self->body_ended = TRUE;
  g_mutex_lock (&self->lock);
  self->h2_out_ended = TRUE;
  g_mutex_unlock (&self->lock);
  if (self->h2 != NULL && !self->finished)
    cp_h2_client_kick (self->h2, self);
  cp_channel_exchange_soup_body_wake (self);
}

gboolean
cp_channel_exchange_get_connection_lost (CpChannelExchange *self)
{
  return self->connection_lost;
}

gboolean
cp_channel_exchange_get_not_sent (CpChannelExchange *self)
{
  return self->not_sent;
}

/* Stops both transports' I/O (only the one in use has any). */
static void
abort_io (CpChannelExchange *self)
{
  g_cancellable_cancel (self->cancellable);
  cp_channel_exchange_soup_abort (self);
  if (self->h2 != NULL)
    cp_channel_exchange_h2_abort (self);
  if (self->server_context != NULL)
    cp_channel_exchange_local_abort (self);
}

void
cp_channel_exchange_finish (CpChannelExchange *self,
                            GError            *error,
                            gboolean           notify)
{
  g_autoptr(CpChannelExchange) self_ref = NULL;
  gpointer user_data;
  GDestroyNotify destroy;

  if (self->finished)
    {
      g_clear_error (&error);
      return;
    }
  self_ref = cp_channel_exchange_ref (self);
  self->finished = TRUE;

  cp_channel_exchange_destroy_source (&self->cancel_source);
  cp_channel_exchange_destroy_source (&self->timeout_source);
  cp_channel_exchange_destroy_source (&self->deferred_source);
  cp_channel_exchange_local_stop (self);
  cp_channel_exchange_h2_stop (self);
  g_mutex_lock (&self->lock);
  if (self->progress_source != NULL)
    g_source_destroy (self->progress_source);
  g_clear_pointer (&self->progress_source, g_source_unref);
  g_mutex_unlock (&self->lock);
  if (self->cancel_id != 0)
    {
      g_cancellable_disconnect (self->user_cancellable, self->cancel_id);
      self->cancel_id = 0;
    }

  if (error != NULL || !self->eof)
    abort_io (self);
  else
    cp_channel_exchange_soup_end (self);

  if (notify && self->callbacks.end)
    self->callbacks.end (self, error, self->user_data);
  g_clear_error (&error);

  user_data = g_steal_pointer (&self->user_data);
  destroy = g_steal_pointer (&self->destroy);
  if (destroy && user_data)
    destroy (user_data);
}

void
cp_channel_exchange_close (CpChannelExchange *self)
{
  cp_channel_exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_CANCELED, "closed"), FALSE);
}

void
cp_channel_exchange_cancel (CpChannelExchange *self)
{
  g_cancellable_cancel (self->cancellable);
}

static gboolean
on_deferred (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_clear_pointer (&self->deferred_source, g_source_unref);
  cp_channel_exchange_finish (self, g_steal_pointer (&self->deferred_error), TRUE);
  return G_SOURCE_REMOVE;
}

void
cp_channel_exchange_finish_later (CpChannelExchange *self,
                                  GError            *error)
{
  if (self->deferred_source != NULL)
    {
      g_error_free (error);
      return;
    }
  self->deferred_error = error;
  self->deferred_source = g_idle_source_new ();
  g_source_set_callback (self->deferred_source, on_deferred,
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->deferred_source, "[connectplugin] call end");
  g_source_attach (self->deferred_source, self->context);
}

static gboolean
on_timeout (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_clear_pointer (&self->timeout_source, g_source_unref);
  cp_channel_exchange_finish (self, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                              "the call's deadline expired"), TRUE);
  return G_SOURCE_REMOVE;
}

static gboolean
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  CpChannelExchange *self = user_data;

  g_clear_pointer (&self->cancel_source, g_source_unref);
  cp_channel_exchange_finish (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                              "the call was cancelled"), TRUE);
  return G_SOURCE_REMOVE;
}

/* Any thread: forwards the caller's cancellation to the internal
 * cancellable; the exchange notices it in its own context. */
static void
on_user_cancelled (GCancellable *cancellable,
                   gpointer      user_data)
{
  CpChannelExchange *self = user_data;

  g_cancellable_cancel (self->cancellable);
}

void
cp_channel_exchange_start (CpChannelExchange *self)
{
  g_return_if_fail (!self->started);
  self->started = TRUE;

  if (cp_channel_get_setup_error (self->channel) != NULL)
    {
      cp_channel_exchange_finish_later (self, g_error_copy (cp_channel_get_setup_error (self->channel)));
      return;
    }
  if (g_cancellable_is_cancelled (self->user_cancellable))
    {
      cp_channel_exchange_finish_later (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                               "the call was cancelled"));
      return;
    }
  if (self->deadline > 0)
    {
      gint64 remaining_us = self->deadline - g_get_monotonic_time ();
      gint64 remaining_ms;
      g_autofree char *value = NULL;

      if (remaining_us <= 0)
        {
          cp_channel_exchange_finish_later (self, g_error_new_literal (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                                   "the call's deadline expired before it was sent"));
          return;
        }
      remaining_ms = (remaining_us + 999) / 1000;
      if (G_UNLIKELY (g_str_has_prefix (soup_message_headers_get_one (self->request_headers, "Content-Type") ?: "",
                                        "application/grpc")))
        {
          /* gRPC and gRPC-Web calls (cp-grpc-private.h). */
          value = cp_grpc_timeout_format (remaining_us);
          soup_message_headers_replace (self->request_headers, "grpc-timeout", value);
        }
      else if ((value = cp_timeout_format (remaining_ms)) != NULL)
        soup_message_headers_replace (self->request_headers, "Connect-Timeout-Ms", value);
      self->timeout_source = g_timeout_source_new ((guint) MIN (remaining_ms, G_MAXUINT));
      g_source_set_callback (self->timeout_source, on_timeout,
                             cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
      g_source_set_static_name (self->timeout_source, "[connectplugin] call deadline");
      g_source_attach (self->timeout_source, self->context);
    }

  self->cancel_source = g_cancellable_source_new (self->cancellable);
  g_source_set_callback (self->cancel_source, G_SOURCE_FUNC (on_cancelled),
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->cancel_source, "[connectplugin] call cancelled");
  g_source_attach (self->cancel_source, self->context);
  if (self->user_cancellable != NULL)
    self->cancel_id = g_cancellable_connect (self->user_cancellable,
                                             G_CALLBACK (on_user_cancelled), self, NULL);

  if (cp_channel_get_server (self->channel) != NULL)
    cp_channel_exchange_local_start (self);
  else if (cp_channel_get_h2_client (self->channel) != NULL)
    cp_channel_exchange_h2_start (self);
  else
    cp_channel_exchange_soup_start (self);
}

void
cp_channel_exchange_pause (CpChannelExchange *self)
{
  self->paused = TRUE;
  if (self->h2 != NULL)
    cp_channel_exchange_h2_pause (self);
}

void
cp_channel_exchange_resume (CpChannelExchange *self)
{
  if (!self->paused)
    return;
  self->paused = FALSE;
  if (self->finished)
    return;
  if (self->server_context != NULL)
    cp_channel_exchange_local_resume (self);
  else if (self->h2 != NULL)
    cp_channel_exchange_h2_resume (self);
  else if (self->head_received)
    cp_channel_exchange_soup_resume (self);
}

/* ---- Response events (HTTP/2 and in-process transports) ---- */

CpExchangeEvent *
cp_exchange_event_new (CpExchangeEventKind kind)
{
  CpExchangeEvent *event = g_new0 (CpExchangeEvent, 1);

  event->kind = kind;
  return event;
}

void
cp_exchange_event_free (CpExchangeEvent *event)
{
  g_clear_pointer (&event->headers, soup_message_headers_unref);
  g_clear_pointer (&event->chunk, g_bytes_unref);
  g_clear_error (&event->error);
  g_free (event);
}

static void
handle_event (CpChannelExchange *self,
              CpExchangeEvent   *event)
{
  switch (event->kind)
    {
    case CP_EXCHANGE_EVENT_HEAD:
      self->status = event->status;
      self->reason = g_strdup (soup_status_get_phrase (event->status));
      self->response_headers = g_steal_pointer (&event->headers);
      self->head_received = TRUE;
      if (self->callbacks.head)
        self->callbacks.head (self, self->user_data);
      break;
    case CP_EXCHANGE_EVENT_CHUNK:
      if (self->callbacks.chunk)
        self->callbacks.chunk (self, event->chunk, self->user_data);
      break;
    case CP_EXCHANGE_EVENT_END:
      self->not_sent = event->not_sent;
      self->connection_lost = event->connection_lost;
      if (event->error == NULL && !self->head_received)
        event->error = g_error_new_literal (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                            "the server ended the exchange without a response");
      if (event->error == NULL)
        {
          self->response_trailers = g_steal_pointer (&event->headers);
          self->eof = TRUE;
        }
      cp_channel_exchange_finish (self, g_steal_pointer (&event->error), TRUE);
      break;
    case CP_EXCHANGE_EVENT_FALLBACK:
      cp_channel_exchange_h2_fall_back (self);
      break;
    }
}

static gboolean
on_events (gpointer user_data)
{
  CpChannelExchange *self = user_data;

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->event_source, g_source_unref);
  g_mutex_unlock (&self->lock);

  while (!self->finished && !self->paused)
    {
      CpExchangeEvent *event;

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
      event = g_queue_pop_head (&self->events);
      g_mutex_unlock (&self->lock);
      if (event == NULL)
        break;
      handle_event (self, event);
      cp_exchange_event_free (event);
    }
  return G_SOURCE_REMOVE;
}

/* With self->lock held. */
static void
schedule_events_locked (CpChannelExchange *self)
{
  if (self->event_source != NULL || self->aborted)
    return;
  self->event_source = g_idle_source_new ();
  g_source_set_priority (self->event_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->event_source, on_events,
                         cp_channel_exchange_ref (self), (GDestroyNotify) cp_channel_exchange_unref);
  g_source_set_static_name (self->event_source, "[connectplugin] exchange response");
  g_source_attach (self->event_source, self->context);
}

gboolean
cp_channel_exchange_push_event_locked (CpChannelExchange *self,
                                       CpExchangeEvent   *event)
{
  if (self->aborted)
    {
      cp_exchange_event_free (event);
      return FALSE;
    }
  g_queue_push_tail (&self->events, event);
  schedule_events_locked (self);
  return TRUE;
}

gboolean
cp_channel_exchange_push_event (CpChannelExchange *self,
                                CpExchangeEvent   *event)
{
  gboolean queued;

  g_mutex_lock (&self->lock);
  queued = cp_channel_exchange_push_event_locked (self, event);
  g_mutex_unlock (&self->lock);
  return queued;
}

gboolean
cp_channel_exchange_abort_events (CpChannelExchange *self)
{
  gboolean was_aborted;

  g_mutex_lock (&self->lock);
  was_aborted = self->aborted;
  self->aborted = TRUE;
  g_queue_clear_full (&self->events, (GDestroyNotify) cp_exchange_event_free);
  g_mutex_unlock (&self->lock);
  return was_aborted;
}

void
cp_channel_exchange_stop_events (CpChannelExchange *self)
{
  g_mutex_lock (&self->lock);
  if (self->event_source != NULL)
    g_source_destroy (self->event_source);
  g_clear_pointer (&self->event_source, g_source_unref);
  g_mutex_unlock (&self->lock);
}

void
cp_channel_exchange_resume_events (CpChannelExchange *self)
{
  g_mutex_lock (&self->lock);
  if (!g_queue_is_empty (&self->events))
    schedule_events_locked (self);
  g_mutex_unlock (&self->lock);
}
