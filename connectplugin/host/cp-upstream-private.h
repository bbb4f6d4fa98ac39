/* cp-upstream-private.h: the router's HTTP/1.1 client to providers
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two units:
 *
 * - CpUpstreamParser (cp-upstream-parser.c): an incremental parser of
 *   HTTP/1.1 responses (status line, headers, Content-Length / chunked /
 *   until-close bodies, trailers skipped). No I/O; fuzzed.
 * - CpUpstreamPool (cp-upstream.c): keep-alive connections to providers
 *   and the calls that run on them, non-blocking in one GMainContext.
 *   It exists because a routed call through SoupSession cost ten times
 *   the provider's own work (tests/bench/bench-platform.sh).
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* ---- parser ------------------------------------------------------------ */

#define CP_UPSTREAM_MAX_HEAD (64 * 1024)

typedef enum {
  CP_UPSTREAM_NEED_MORE,    /* consumed everything it could; feed more */
  CP_UPSTREAM_HEAD,         /* status and headers are ready */
  CP_UPSTREAM_DATA,         /* *body / *body_len: a piece of the body */
  CP_UPSTREAM_DONE,         /* the response is complete */
  CP_UPSTREAM_ERROR,        /* malformed; *error says why */
} CpUpstreamEvent;

typedef struct {
  int state;
  gboolean head_request;    /* the request was HEAD: no body follows */
  guint status;
  SoupHTTPVersion version;
  SoupMessageHeaders *headers;
  gboolean keep_alive;      /* valid after CP_UPSTREAM_HEAD */
  guint64 remaining;        /* in a Content-Length body or a chunk */
  gsize trailer_bytes;
} CpUpstreamParser;

void            cp_upstream_parser_init  (CpUpstreamParser *parser,
                                          gboolean          head_request);
void            cp_upstream_parser_clear (CpUpstreamParser *parser);
/* Parses from @data[0..len). Sets *consumed to the bytes used (the caller
 * drops them) and returns what happened. CP_UPSTREAM_NEED_MORE with
 * *consumed < len means the rest is an incomplete line or head. For a
 * body read until the connection closes, call with @eof TRUE and @len 0
 * at EOF to get CP_UPSTREAM_DONE; EOF anywhere else is an error. */
CpUpstreamEvent cp_upstream_parser_feed  (CpUpstreamParser *parser,
                                          const guint8     *data,
                                          gsize             len,
                                          gboolean          eof,
                                          gsize            *consumed,
                                          const guint8    **body,
                                          gsize            *body_len,
                                          GError          **error);
/* TRUE when the body lasts until the server closes the connection. */
gboolean        cp_upstream_parser_reads_until_close (CpUpstreamParser *parser);

/* ---- pool and calls ---------------------------------------------------- */

typedef struct _CpUpstreamPool CpUpstreamPool;
typedef struct _CpUpstreamCall CpUpstreamCall;

typedef struct {
  /* The response head (1xx skipped). @headers: transfer none. */
  void (*head)     (CpUpstreamCall *call, guint status, SoupMessageHeaders *headers,
                    gpointer user_data);
  /* A piece of the response body. */
  void (*data)     (CpUpstreamCall *call, GBytes *chunk, gpointer user_data);
  /* The response is complete: the last callback. */
  void (*done)     (CpUpstreamCall *call, gpointer user_data);
  /* The call failed (connect, write, read, malformed response); the last
   * callback. @started: the head callback had run. */
  void (*failed)   (CpUpstreamCall *call, const GError *error, gboolean started,
                    gpointer user_data);
  /* The request body queue fell below the low-water mark after
   * cp_upstream_call_write() returned TRUE. */
  void (*drained)  (CpUpstreamCall *call, gpointer user_data);
} CpUpstreamCallbacks;

CpUpstreamPool *cp_upstream_pool_new  (void);   /* the thread-default context */
void            cp_upstream_pool_free (CpUpstreamPool *pool);
/* The client certificate presented to https origins, and the CAs their
 * certificates must chain to (either NULL: none, the system's), for
 * origins that are not AutoMTLS plugins (those use their own). Applies to
 * connections made afterwards. */
void            cp_upstream_pool_set_tls (CpUpstreamPool  *pool,
                                          GTlsCertificate *certificate,
                                          GTlsDatabase    *database);

/* TRUE when a request header named @name is to be sent. */
typedef gboolean (*CpUpstreamHeaderFilter) (const char *name);

/* Starts a call to @base_url (http:// or https://) + @target (path and
 * query). @headers (transfer none) are sent as they are, those @keep
 * (NULL: all) accepts, after Host and the framing headers: @content_length -1 sends a chunked body, 0 none,
 * else exactly that many bytes. Callbacks run from the pool's context,
 * never from inside a cp_upstream_* call. NULL with @error when
 * @base_url is not usable. */
CpUpstreamCall *cp_upstream_call_start (CpUpstreamPool      *pool,
                                        const char          *base_url,
                                        const char          *method,
                                        const char          *target,
                                        SoupMessageHeaders  *headers,
                                        CpUpstreamHeaderFilter keep,
                                        gint64               content_length,
                                        const CpUpstreamCallbacks *callbacks,
                                        gpointer             user_data,
                                        GError             **error);
/* Queues request body bytes; TRUE when the queue is over its high-water
 * mark (wait for drained). */
gboolean        cp_upstream_call_write  (CpUpstreamCall *call,
                                         GBytes         *chunk);
void            cp_upstream_call_end    (CpUpstreamCall *call);
/* Back-pressure on the response: stop/restart reading it. */
void            cp_upstream_call_pause  (CpUpstreamCall *call);
void            cp_upstream_call_resume (CpUpstreamCall *call);
/* Ends the call without any further callback; its connection is closed
 * unless the exchange had completed. @call is invalid afterwards. Must
 * not be called after done or failed. */
void            cp_upstream_call_cancel (CpUpstreamCall *call);

G_END_DECLS
