/* raw-server.h: a scripted HTTP/1.1 server for client tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A thread with a blocking GSocket on 127.0.0.1:0 (or a unix socket). For
 * every connection it reads one request (head + Content-Length body),
 * records it, then writes the canned response and closes, or waits for the
 * client to close (hold mode), recording that it did.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _RawServer RawServer;

typedef enum {
  RAW_AFTER_CLOSE,     /* write the response, close */
  RAW_AFTER_WAIT_EOF,  /* write the response (maybe partial), wait for the client to close */
} RawAfter;

RawServer  *raw_server_new            (void);
const char *raw_server_get_url        (RawServer *server);
void        raw_server_set_response   (RawServer *server,
                                       GBytes    *response,
                                       RawAfter   after);
/* Requests seen so far (head + body, as received). */
guint       raw_server_get_n_requests (RawServer *server);
GBytes     *raw_server_get_request    (RawServer *server,
                                       guint      index);
/* Connections on which the client closed first (hold mode). */
guint       raw_server_get_n_peer_closed (RawServer *server);
void        raw_server_free           (RawServer *server);

/* "HTTP/1.1 <status> X\r\n<headers>Content-Length: n\r\nConnection: close\r\n\r\n<body>" */
GBytes     *raw_response              (guint       status,
                                       const char *headers,
                                       const void *body,
                                       gssize      len);
/* Same without Content-Length (body ends at close), for partial bodies. */
GBytes     *raw_response_unframed     (guint       status,
                                       const char *headers,
                                       const void *body,
                                       gsize       len);

/* Returns the value of header @name in the request (case-insensitive),
 * NULL if absent. */
char       *raw_request_header        (GBytes     *request,
                                       const char *name);
/* The request line ("POST /x HTTP/1.1"). */
char       *raw_request_line          (GBytes     *request);
GBytes     *raw_request_body          (GBytes     *request);

G_END_DECLS
