/* cp-channel-exchange-impl-private.h: the fields of a CpChannelExchange
 * and the hooks between its core (cp-channel-exchange.c) and its two
 * transports (cp-channel-exchange-soup.c, cp-channel-exchange-local.c).
 * Included by those three files only.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core picks the transport at start: in-process when the channel has a
 * server (server_context is then set), libsoup otherwise. Later hooks: the
 * libsoup ones and the in-process stop/clear are called whatever the
 * transport (they do nothing while their fields are unset); the in-process
 * abort and resume only when server_context is set.
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-channel-exchange-private.h"
#include "cp-http-exchange-private.h"

G_BEGIN_DECLS

struct _CpChannelExchange
{
  gatomicrefcount ref_count;

  CpChannel *channel;
  GMainContext *context;
  char *method;
  char *path_and_query;
  SoupMessageHeaders *request_headers;
  GBytes *body;
  gint64 deadline;

  GCancellable *user_cancellable;
  gulong cancel_id;
  GCancellable *cancellable;     /* internal: aborts the I/O */
  GSource *cancel_source;
  GSource *timeout_source;
  GSource *deferred_source;
  GError *deferred_error;

  CpChannelExchangeCallbacks callbacks;
  gpointer user_data;
  GDestroyNotify destroy;

  gboolean started;
  gboolean finished;
  gboolean head_received;
  gboolean paused;
  gboolean read_pending;
  gboolean eof;
  gboolean connection_lost;      /* see body_connection_lost () */
  gboolean not_sent;             /* libsoup: no connection could be made */

  guint status;
  char *reason;
  SoupMessageHeaders *response_headers;

  /* libsoup transport (cp-channel-exchange-soup.c) */
  SoupMessage *msg;
  gboolean sync_pool;            /* sent on the channel's session for blocking calls */
  gboolean msg_finished;         /* libsoup is done with msg and its connection */
  GInputStream *stream;
  GSource *read_source;          /* waiting for a pollable body stream */

  /* in-process transport (cp-channel-exchange-local.c) */
  GMainContext *server_context;
  CpHttpExchange *local;         /* used in the server context only */
  gboolean local_done;           /* server context only */
  GMutex lock;                   /* protects the fields below */
  GQueue events;
  GSource *event_source;
  gboolean aborted;
};

static inline void
cp_channel_exchange_destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/* ---- core (cp-channel-exchange.c) ---- */

/* Ends the exchange: @error (transfer full) NULL = clean end of body;
 * @notify: deliver the end callback. Only the first call counts. */
void     cp_channel_exchange_finish       (CpChannelExchange *self,
                                           GError            *error,
                                           gboolean           notify);
/* Ends it with @error (transfer full) from an idle of the owner context. */
void     cp_channel_exchange_finish_later (CpChannelExchange *self,
                                           GError            *error);

/* ---- libsoup transport (cp-channel-exchange-soup.c) ---- */

void     cp_channel_exchange_soup_start   (CpChannelExchange *self);
/* Stops reading and aborts the body stream (the cancellable is cancelled). */
void     cp_channel_exchange_soup_abort   (CpChannelExchange *self);
/* After a clean end: closes the body stream, handing the connection back. */
void     cp_channel_exchange_soup_end     (CpChannelExchange *self);
/* Reads on after a pause. */
void     cp_channel_exchange_soup_resume  (CpChannelExchange *self);
/* At the last unref. */
void     cp_channel_exchange_soup_clear   (CpChannelExchange *self);

/* ---- in-process transport (cp-channel-exchange-local.c) ---- */

void     cp_channel_exchange_local_start  (CpChannelExchange *self);
/* Drops queued events and cancels the server-side exchange. */
void     cp_channel_exchange_local_abort  (CpChannelExchange *self);
/* At the end: no more event deliveries. */
void     cp_channel_exchange_local_stop   (CpChannelExchange *self);
/* Delivers the events queued during a pause. */
void     cp_channel_exchange_local_resume (CpChannelExchange *self);
/* At the last unref. */
void     cp_channel_exchange_local_clear  (CpChannelExchange *self);

G_END_DECLS
