/* cp-channel-exchange-impl-private.h: the fields of a CpChannelExchange
 * and the hooks between its core (cp-channel-exchange.c) and its three
 * transports (cp-channel-exchange-soup.c, cp-channel-exchange-local.c,
 * cp-channel-exchange-h2.c with cp-h2-connection.c). Included by those
 * files only.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core picks the transport at start: in-process when the channel has a
 * server (server_context is then set), HTTP/2 when CpChannel:http-version
 * is 2 (h2 is then set), libsoup otherwise. Later hooks: the
 * libsoup ones and the in-process stop/clear are called whatever the
 * transport (they do nothing while their fields are unset); the in-process
 * abort and resume only when server_context is set.
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-channel-exchange-private.h"
#include "cp-http-exchange-private.h"

G_BEGIN_DECLS

typedef struct _CpH2Client CpH2Client;   /* cp-h2-connection-private.h */

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
  SoupMessageHeaders *response_trailers;  /* HTTP trailers, once the body ended */

  /* libsoup transport (cp-channel-exchange-soup.c) */
  SoupMessage *msg;
  gboolean sync_pool;            /* sent on the channel's session for blocking calls */
  gboolean msg_finished;         /* libsoup is done with msg and its connection */
  GInputStream *stream;
  GSource *read_source;          /* waiting for a pollable body stream */
  GInputStream *body_stream;     /* a streamed request body (chunked), fed by write_body () */

  /* in-process transport (cp-channel-exchange-local.c) */
  GMainContext *server_context;
  CpHttpExchange *local;         /* used in the server context only */
  gboolean local_done;           /* server context only */
  GMutex lock;                   /* protects the fields below */
  /* The response as a transport thread (HTTP/2) or the server's context
   * (in-process) hands it over: CpExchangeEvents, delivered in the owner
   * context by event_source; none is queued once aborted. */
  GQueue events;
  GSource *event_source;
  gboolean aborted;

  /* HTTP/2 transport (cp-channel-exchange-h2.c in the owner context,
   * cp-h2-connection.c in the connection's thread) */
  CpH2Client *h2;                /* set at start when it is the transport */
  gboolean request_streaming;    /* body from cp_channel_exchange_write_body () */
  gboolean request_half_duplex;  /* ... and the response is awaited at its end only */
  gboolean body_ended;           /* owner context: end_body () ran */
  GQueue h2_out;                 /* under lock, like the fields below */                 /* GBytes of the request body not yet framed */
  gsize h2_out_offset;           /* into the head of h2_out */
  gboolean h2_out_ended;
  gboolean h2_hold;              /* paused: received data left unconsumed */
  gsize h2_unconsumed;           /* bytes received and not given back yet */
  gint32 h2_stream_id;           /* connection thread only */
  gpointer h2_stream;            /* connection thread only */

  /* A streamed request body (request_streaming, HTTP/2 or libsoup), under
   * lock: its bytes in h2_out not taken by the transport yet, the bytes
   * taken so far, and the idle that tells the owner (progress callback). */
  gsize body_queued;
  guint64 body_taken;
  GSource *progress_source;
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

/* ---- shared by the libsoup and HTTP/2 transports ---- */

/* Bytes were queued for the request body or its end was written: wakes a
 * libsoup body stream waiting for them (cp-channel-exchange-soup.c). */
void     cp_channel_exchange_soup_body_wake (CpChannelExchange *self);
/* The HTTP/2 transport's body reader took @n bytes: with self->lock held. */
void     cp_channel_exchange_body_taken_locked (CpChannelExchange *self,
                                                gsize              n);

/* A transport error as the call's: cancelled stays G_IO_ERROR_CANCELLED,
 * CP_ERROR is kept, anything else is `unavailable`. */
GError  *cp_channel_exchange_transport_error (const GError *error);
/* Whether @error is a failure to make a connection (nothing was sent). */
gboolean cp_channel_exchange_is_connect_error (const GError *error);

/* ---- HTTP/2 transport (cp-channel-exchange-h2.c) ---- */

/* ---- The response events of the HTTP/2 and in-process transports
 * (cp-channel-exchange.c) ---- */
typedef enum {
  CP_EXCHANGE_EVENT_HEAD,        /* status, headers */
  CP_EXCHANGE_EVENT_CHUNK,       /* chunk */
  CP_EXCHANGE_EVENT_END,         /* error or headers (trailers), not_sent, connection_lost */
  CP_EXCHANGE_EVENT_FALLBACK,    /* HTTP/2 only: the server does not speak it */
} CpExchangeEventKind;

typedef struct {
  CpExchangeEventKind kind;
  guint status;
  SoupMessageHeaders *headers;
  GBytes *chunk;
  GError *error;
  gboolean not_sent;
  gboolean connection_lost;
} CpExchangeEvent;

CpExchangeEvent *cp_exchange_event_new  (CpExchangeEventKind kind);
void             cp_exchange_event_free (CpExchangeEvent    *event);
/* From any thread: queues @event (taken) for the owner context, or frees
 * it when the exchange was aborted; FALSE then. */
gboolean cp_channel_exchange_push_event        (CpChannelExchange *self,
                                                CpExchangeEvent   *event);
/* The same with self->lock held. */
gboolean cp_channel_exchange_push_event_locked (CpChannelExchange *self,
                                                CpExchangeEvent   *event);
/* No more events: drops the queued ones. Returns whether it was already. */
gboolean cp_channel_exchange_abort_events      (CpChannelExchange *self);
/* The owner stops listening: the pending delivery is dropped. */
void     cp_channel_exchange_stop_events       (CpChannelExchange *self);
/* Resumed after a pause: delivers what was queued meanwhile. */
void     cp_channel_exchange_resume_events     (CpChannelExchange *self);
/* The HTTP/2 transport's answer to CP_EXCHANGE_EVENT_FALLBACK. */
void     cp_channel_exchange_h2_fall_back      (CpChannelExchange *self);


void     cp_channel_exchange_h2_start     (CpChannelExchange *self);
/* Drops queued events and resets the stream (RST_STREAM CANCEL). */
void     cp_channel_exchange_h2_abort     (CpChannelExchange *self);
/* At the end: no more event deliveries. */
void     cp_channel_exchange_h2_stop      (CpChannelExchange *self);
void     cp_channel_exchange_h2_pause     (CpChannelExchange *self);
void     cp_channel_exchange_h2_resume    (CpChannelExchange *self);
void     cp_channel_exchange_h2_clear     (CpChannelExchange *self);

/* Connection thread → owner context (cp-h2-connection.c calls these). */
void     cp_channel_exchange_h2_push_head  (CpChannelExchange  *self,
                                            guint               status,
                                            SoupMessageHeaders *headers);
/* Returns TRUE when the bytes may be given back to the flow-control
 * window now (the owner is not paused). */
gboolean cp_channel_exchange_h2_push_chunk (CpChannelExchange  *self,
                                            const guint8       *data,
                                            gsize               len);
/* @error (transfer full) NULL = clean end; @trailers nullable. */
void     cp_channel_exchange_h2_push_end   (CpChannelExchange  *self,
                                            GError             *error,
                                            SoupMessageHeaders *trailers,
                                            gboolean            not_sent,
                                            gboolean            connection_lost);
/* The TLS server did not pick h2: send this exchange over libsoup. */
void     cp_channel_exchange_h2_push_fallback (CpChannelExchange *self);
/* Any thread, both the HTTP/2 connection's and libsoup's (the streamed
 * body of cp-channel-exchange-soup.c): copies up to @len bytes of the
 * request body; -1 when none is queued yet (deferred), else the count with
 * *@eof set at the end. Taken bytes are counted and reported to the owner
 * (progress callback). */
gssize   cp_channel_exchange_h2_read_body  (CpChannelExchange  *self,
                                            guint8             *buffer,
                                            gsize               len,
                                            gboolean           *eof);

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
