/* cp-http2-session-private.h: HTTP/2 on a server connection, with libnghttp2
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A CpHttp2Session lives inside a CpHttpConnection once the connection
 * turned out to speak HTTP/2: the client preface on a plaintext socket
 * (h2c with prior knowledge), or ALPN "h2" after a TLS handshake. The
 * connection keeps doing the I/O (socket or TLS streams, its source, the
 * write queue, deadlines, the server's connection tracking); the session
 * turns the bytes read into exchanges (one per stream, exchange->h2) and
 * fills the write queue with the frames nghttp2 produces. For the files of
 * connectplugin/http only.
 */
#pragma once

#include "cp-http-connection-private.h"

G_BEGIN_DECLS

typedef struct _CpHttp2Session CpHttp2Session;
typedef struct _CpHttp2Stream  CpHttp2Stream;

/* The 24 bytes every HTTP/2 client sends first (RFC 9113 §3.4). */
#define CP_HTTP2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CP_HTTP2_PREFACE_LEN 24

/* Limits of a session (settings we announce, hardening thresholds). */
#define CP_HTTP2_MAX_CONCURRENT_STREAMS 100
#define CP_HTTP2_STREAM_WINDOW          (256 * 1024)
#define CP_HTTP2_CONNECTION_WINDOW      (4 * 1024 * 1024)
/* More queued response bytes than this over all streams: congested. */
#define CP_HTTP2_SESSION_HIGH_WATER     (4 * 1024 * 1024)
/* Incoming RST_STREAM token bucket (CVE-2023-44487): burst, per second. */
#define CP_HTTP2_RESET_BURST            100
#define CP_HTTP2_RESET_RATE             50
/* Ranges of skipped client stream ids remembered (RFC 9113 §5.1.1). */
#define CP_HTTP2_SKIPPED_RANGES         16

CpHttp2Session *cp_http2_session_new        (CpHttpConnection *conn);
/* Frees the nghttp2 session; streams must have been closed. */
void            cp_http2_session_free       (CpHttp2Session   *session);
/* Reads the connection's buffered bytes, runs the streams' work (handlers,
 * body delivery, writable callbacks, ends) and queues the frames to send.
 * Called by the connection's process loop. */
void            cp_http2_session_process    (CpHttp2Session   *session);
gboolean        cp_http2_session_want_read  (CpHttp2Session   *session);
/* More frames would be produced once the write queue drains. */
gboolean        cp_http2_session_want_write (CpHttp2Session   *session);
/* No stream is open. */
gboolean        cp_http2_session_is_idle    (CpHttp2Session   *session);
/* Graceful shutdown: GOAWAY, in-flight streams finish, then the connection
 * closes. */
void            cp_http2_session_shutdown   (CpHttp2Session   *session);
/* The connection's deadline passed: reset slow streams, or end an idle
 * connection. Returns FALSE when the connection should just close. */
gboolean        cp_http2_session_timeout    (CpHttp2Session   *session);
/* The connection is closing: every open stream's exchange is aborted. */
void            cp_http2_session_abort_all  (CpHttp2Session   *session,
                                             const GError     *error);

/* The exchange calls of a stream (exchange->h2). */
GSocketAddress *cp_http2_stream_get_remote_address (CpHttp2Stream *stream);
GTlsCertificate *cp_http2_stream_get_peer_certificate (CpHttp2Stream *stream);
void            cp_http2_stream_respond     (CpHttp2Stream      *stream,
                                             guint               status,
                                             SoupMessageHeaders *headers,
                                             GBytes             *body);
void            cp_http2_stream_begin_response (CpHttp2Stream      *stream,
                                                guint               status,
                                                SoupMessageHeaders *headers);
void            cp_http2_stream_write       (CpHttp2Stream      *stream,
                                             GBytes             *chunk);
void            cp_http2_stream_end_response (CpHttp2Stream     *stream);
gboolean        cp_http2_stream_is_congested (CpHttp2Stream     *stream);
/* The handler changed what it takes (callbacks set, resumed, set_close). */
void            cp_http2_stream_body_flow   (CpHttp2Stream      *stream);
void            cp_http2_stream_fail        (CpHttp2Stream      *stream,
                                             const char         *reason);

G_END_DECLS
