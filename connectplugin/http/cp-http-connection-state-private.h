/* cp-http-connection-state-private.h: a server connection's struct
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared by the two files of the connection: cp-http-connection.c (the
 * state machine: reading, request heads and bodies, deadlines, I/O
 * readiness; its first comment is the table of the states and flags below)
 * and cp-http-response.c (the write side: the write queue, flushing,
 * response heads and the exchange's response calls).
 */
#pragma once

#include "cp-http-connection-private.h"

G_BEGIN_DECLS

#define DRAIN_CAP         (256 * 1024)  /* unread body we drain rather than close */

/* RFC 6585; libsoup 3.2 has no constant (nor phrase) for it */
#define STATUS_HEADER_FIELDS_TOO_LARGE 431

typedef enum {
  BODY_NONE,
  BODY_LENGTH,
  BODY_CHUNK_SIZE,
  BODY_CHUNK_DATA,
  BODY_CHUNK_DATA_END,
  BODY_TRAILERS,
  BODY_DONE,
} BodyState;

typedef enum {
  CONN_HANDSHAKING,
  CONN_OPEN,
  CONN_LINGER,   /* response sent, write side shut: reading until EOF (TCP and TLS) */
  CONN_CLOSED,
} ConnState;

typedef enum {
  DEADLINE_NONE,
  DEADLINE_HEAD,
  DEADLINE_IDLE,
  DEADLINE_BODY,    /* between request body reads; renewed by each read */
  DEADLINE_DRAIN,   /* draining an unread body after the response; not renewed */
  DEADLINE_LINGER,
} DeadlineKind;

typedef struct {
  GSource           source;
  CpHttpConnection *conn;
} ConnSource;

struct _CpHttpConnection
{
  int                ref_count;
  CpHttpServer      *server;
  GMainContext      *context;
  ConnState          state;

  GSocket           *socket;
  int                fd;          /* the socket's, read and written directly when plain */
  GSocketAddress    *remote;
  gboolean           is_unix;

  /* TLS */
  GIOStream         *tls;
  GPollableInputStream  *tls_in;
  GPollableOutputStream *tls_out;
  GSource           *tls_in_source;
  GSource           *tls_out_source;
  GCancellable      *cancellable;

  /* the connection source (fd for plain sockets, deadline always) */
  GSource           *source;
  gpointer           fd_tag;
  GIOCondition       fd_events;
  gint64             ready_time;

  /* read side */
  guint8            *rbuf;
  gsize              rsize, rstart, rend;
  gsize              scan_pos;     /* head scan resumes here (relative to rstart) */
  guint              scan_lines;
  gboolean           read_eof;

  /* write side: wq (GBytes*, first one consumed from wq_offset), then wtail */
  GQueue             wq;
  gsize              wq_offset;
  GByteArray        *wtail;
  gsize              queued;
  gboolean           write_blocked;

  /* current request */
  CpHttpExchange    *ex;
  CpHttpExchange    *spare;        /* a finished exchange kept for reuse */
  BodyState          body;
  guint64            body_remaining;
  gboolean           discard;      /* drain the body without delivering it */
  guint64            drained;
  gsize              trailer_bytes;

  DeadlineKind       deadline_kind;
  gint64             deadline;
  gsize              lingered;

  /* in the server's queue of connections waiting on their client */
  GList              waiting_link;
  gboolean           waiting;

  gboolean           in_process;
  gboolean           dispatching;   /* in conn_source_dispatch() */
  gboolean           reentered;     /* ...and a nested loop dispatched it again */
  gboolean           pending_process;
  gboolean           close_after_flush;
  gboolean           writable_check;
  gboolean           flush_pending; /* coalesced writes wait for the source */
  GError            *io_error;     /* a write failed: close from the loop */

  /* HTTP/2 (cp-http2-session.c): set once the connection speaks it */
  struct _CpHttp2Session *h2;
  gboolean           preface_checked; /* the first bytes were not the HTTP/2 preface */
};

/* cp-http-connection.c */
/* More to process: the connection source runs conn_process() next. */
void cp_http_conn_schedule      (CpHttpConnection *conn);
void cp_http_conn_set_deadline  (CpHttpConnection *conn,
                                 DeadlineKind      kind,
                                 guint             timeout_ms);
/* Flushes from the connection source in the next iteration. */
void cp_http_conn_defer_flush   (CpHttpConnection *conn);
/* The response is out and the connection ends: shut the write side and
 * read until EOF (or close at once). */
void cp_http_conn_start_linger  (CpHttpConnection *conn);
/* Updates the fd interest / TLS sources, the source's ready time and the
 * waiting queue to what the state now needs. */
void cp_http_conn_update_io     (CpHttpConnection *conn);

/* cp-http-response.c */
void cp_http_conn_queue_copy    (CpHttpConnection *conn,
                                 const void       *data,
                                 gsize             len);
/* recv () and sendmsg () on a plain connection's descriptor, without
 * GSocket's clock reads and "would block" GErrors: bytes moved (0 at EOF
 * for recv), -1 when it would block, -2 on error (@error set). */
gssize cp_http_conn_socket_recv (CpHttpConnection    *conn,
                                 void                *buf,
                                 gsize                len,
                                 GError             **error);
gssize cp_http_conn_socket_send (CpHttpConnection    *conn,
                                 const GOutputVector *vectors,
                                 guint                n_vectors,
                                 GError             **error);
/* Writes as much of the queue as the socket takes now. */
void cp_http_conn_flush         (CpHttpConnection *conn);
/* Answers with an error @status and closes after it. */
void cp_http_conn_fail          (CpHttpConnection *conn,
                                 guint             status);
/* The response is complete: decide what happens to the connection. */
void cp_http_conn_exchange_finished (CpHttpConnection *conn,
                                     CpHttpExchange   *ex);

G_END_DECLS
