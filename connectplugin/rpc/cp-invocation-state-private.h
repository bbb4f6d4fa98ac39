/* cp-invocation-state-private.h: the state of a CpInvocation, shared by its files
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CpInvocation is one object in three files (only the invocation's own
 * files include this header):
 *   cp-invocation.c          lifecycle: server checks 5-7 and start, the
 *                            interceptor chain and handler, exchange
 *                            aborts, deadline, finishing, the getters and
 *                            the return_* answers;
 *   cp-invocation-receive.c  the request body: unary POST and GET payloads,
 *                            request envelopes, cp_invocation_receive_async();
 *   cp-invocation-send.c     the answer: unary responses and errors, stream
 *                            headers, messages and EndStream, the send
 *                            queue and cp_invocation_send_message_async().
 */
#pragma once

#include "cp-invocation-private.h"
#include "cp-envelope-private.h"
#include "cp-grpc-private.h"
#include "cp-rpc-server-private.h"
#include "cp-trace-private.h"

G_BEGIN_DECLS

/* Client/bidi streams: stop reading the socket when this many decoded
 * requests wait for cp_invocation_receive_async(). */
#define MAX_QUEUED_REQUESTS 4

/* With no configured limit (max-receive-size 0), bodies and messages still
 * stop here: below what a GByteArray can hold, so that no size from the
 * network ever reaches a GLib abort. */
#define HARD_RECEIVE_LIMIT ((gsize) G_MAXINT32)

/* A binary message may take this many times the receive limit once
 * decoded (see cp_proto_prescan()). */
#define DECODED_SIZE_FACTOR 16

/* Request bodies from this size on leave freed memory worth giving back
 * to the system (cp_memory_trim_soon()). */
#define TRIM_AFTER_BYTES (1024 * 1024)

typedef struct {
  CpInvocation *invocation; /* weak: cleared when it is finalized */
} InvocationLink;

/* How a call moves through the flags below (each only goes FALSE → TRUE,
 * except reading_body, body_paused and close_on_answer):
 *   started           cp_invocation_start() ran; self_ref is the engine's
 *                     reference until the handler was called or the call
 *                     ended (then cleared, and the handler's own refs hold)
 *   reading_body      unary POST whose body is still coming (cleared when
 *                     it is complete and decoded)
 *   body_done         the exchange delivered the whole body (or aborted)
 *   input_done        streams: no more request messages (EndStream frame,
 *                     end of body); body_paused while the queue is full
 *   handler_answered  a return_* or an interceptor answered: later
 *                     answers are programming errors
 *   headers_sent      streams: the response head is written
 *   finished          the answer is complete or the client is gone;
 *                     finish_error says why when the engine ended it
 *   cancelled         the call was cancelled (deadline, client gone,
 *                     engine failure); the handler's cancellable, made
 *                     on demand, follows it
 */
struct _CpInvocation
{
  GObject parent_instance;

  CpRpcServer *server;
  CpMethodInfo *info;
  CpMethodKind kind;
  CpMethodHandler handler;
  gpointer handler_data;
  CpHttpExchange *exchange;
  InvocationLink *link;

  CpCodec codec;
  CpProtocol protocol;         /* CONNECT unless cp_invocation_set_protocol() */
  gboolean grpc_text;          /* application/grpc-web-text: base64 both ways */
  CpGrpcTextDecoder *text_decoder;
  const char *content_type;    /* content_type_owned, or a static string */
  char *content_type_owned;
  const CpRequestFields *fields;  /* during cp_invocation_start () only */
  gboolean is_get;
  GHashTable *query;

  SoupMessageHeaders *response_headers;   /* created on demand */
  SoupMessageHeaders *response_trailers;  /* created on demand */
  gint64 deadline;
  gint64 timeout_ms;
  GCancellable *cancellable;  /* created on demand */
  gboolean cancelled;
  GSource *deadline_source;

  CpCompression request_compression;
  CpCompression response_compression;
  gsize receive_limit;          /* max-receive-size, or HARD_RECEIVE_LIMIT */

  /* Request body. */
  GBytes *body_first;          /* unary POST: the body while it is one chunk */
  GByteArray *body;            /* unary POST: several chunks */
  gsize body_size;
  gsize received_bytes;        /* the whole body so far, streams included */
  CpEnvelopeReader *reader;    /* streams */
  guint n_requests;
  CpMessage *first_request;    /* server streams */
  GQueue received;             /* client/bidi streams: CpMessage* */
  GQueue receive_tasks;        /* GTask* waiting for a request */
  gboolean input_done;         /* all requests decoded (client/bidi) */
  gboolean body_done;          /* the exchange delivered the whole body */
  gboolean body_paused;
  gboolean reading_body;       /* unary POST body expected */
  gboolean close_on_answer;    /* bad stream: do not drain the rest */

  /* Response. */
  CpInvocation *self_ref;
  gboolean started;
  gboolean handler_answered;
  gboolean headers_sent;
  gboolean finished;
  GError *finish_error;        /* why the engine ended the call, if it did */
  GQueue send_tasks;           /* GTask* waiting for the exchange to drain */
  GQueue send_done;            /* CpSendResult* to deliver from send_source */
  GSource *send_source;        /* created on demand */
  gsize congested_bytes;       /* written since the exchange was last congested */

  /* Metrics (cp_invocation_count_in()): NULL when not counted. */
  CpMetricsMethod *metrics;
  gint64 metrics_start;        /* monotonic µs: the arrival of the request head */

  /* Tracing (cp-trace-private.h): the server span, NULL when the call
   * came without a traceparent and tracing is off. */
  CpSpanContext *span;
  gint64 span_start;           /* real µs, set with span */

  /* Interceptors. */
  GPtrArray *interceptors;     /* the server's chain when the call came; NULL if none */
  guint n_intercepted;         /* interceptors asked so far (told the outcome) */
  CpMessage *chain_request;    /* the request, while the chain decides */

  /* Authentication (cp_invocation_set_principal()): NULL until an
   * interceptor vouched for the caller. */
  char *principal;
  char *auth_scheme;
};
static inline gboolean
is_stream (CpInvocation *self)
{
  return self->kind != CP_METHOD_UNARY;
}

/* The body is envelopes both ways: Connect streams, and every gRPC and
 * gRPC-Web call (a unary call is a stream of one message each way). */
static inline gboolean
enveloped (CpInvocation *self)
{
  return self->kind != CP_METHOD_UNARY || self->protocol != CP_PROTOCOL_CONNECT;
}

static inline gboolean
receives_stream (CpInvocation *self)
{
  return self->kind == CP_METHOD_CLIENT_STREAMING || self->kind == CP_METHOD_BIDI_STREAMING;
}

static inline gboolean
sends_stream (CpInvocation *self)
{
  return self->kind == CP_METHOD_SERVER_STREAMING || self->kind == CP_METHOD_BIDI_STREAMING;
}

/* cp-invocation.c */
const char *cp_invocation_query_lookup         (CpInvocation   *self,
                                                const char     *name);
/* A pending task (held in one of our queues) completes with
 * G_IO_ERROR_CANCELLED when its cancellable fires; detaching it drops
 * that watch. */
void        cp_invocation_watch_cancellable    (GTask          *task);
void        cp_invocation_task_detach          (GTask          *task);
/* @outcome: the call's error (NULL on success); @by_engine: the engine,
 * not the handler, ended the call, and later operations of the handler
 * fail with @outcome. Called once, after the answer was written. */
void        cp_invocation_mark_finished        (CpInvocation   *self,
                                                const GError   *outcome,
                                                gboolean        by_engine);
/* Runs the interceptors, then the handler, with @request (NULL for client
 * and bidi streams); drops the engine's reference. */
void        cp_invocation_dispatch             (CpInvocation   *self,
                                                CpMessage      *request);
/* The engine ends the call with @error (taken) and stops the handler. */
void        cp_invocation_engine_fail          (CpInvocation   *self,
                                                GError         *error);

/* cp-invocation-receive.c */
/* Any decoding failure of request bytes is the caller's fault. */
GError     *cp_invocation_as_invalid_argument  (GError         *error);
GError     *cp_invocation_size_error           (guint64         size,
                                                gsize           limit);
void        cp_invocation_process_unary_payload (CpInvocation  *self,
                                                 GBytes        *data);
void        cp_invocation_process_get          (CpInvocation   *self);
void        cp_invocation_stream_input_end     (CpInvocation   *self);
void        cp_invocation_complete_receive_tasks (CpInvocation *self);
void        cp_invocation_on_body_chunk        (CpHttpExchange *exchange,
                                                GBytes         *chunk,
                                                gpointer        user_data);
void        cp_invocation_on_body_end          (CpHttpExchange *exchange,
                                                gpointer        user_data);

/* cp-invocation-send.c */
void        cp_invocation_complete_send_tasks  (CpInvocation   *self,
                                                const GError   *error);
/* Ends the call with @error (already a CP_ERROR); see mark_finished for
 * @by_engine. */
void        cp_invocation_finish_with_error    (CpInvocation   *self,
                                                const GError   *error,
                                                gboolean        by_engine);
/* Ends a stream successfully. */
void        cp_invocation_finish_ok            (CpInvocation   *self);
/* Answers with a single message (unary and client streams) or one last
 * message and a successful end (server and bidi streams). */
void        cp_invocation_finish_with_message  (CpInvocation   *self,
                                                CpMessage      *message);

G_END_DECLS
