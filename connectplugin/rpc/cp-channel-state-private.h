/* cp-channel-state-private.h: CpChannel's struct
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shared by the files of the channel object: cp-channel.c (the object, its
 * properties and transport set-up) and cp-channel-wrappers.c (what wraps
 * each call: interceptors, retry policy and budget, circuit breaker).
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-channel.h"
#include "cp-channel-private.h"
#include "cp-codec.h"
#include "cp-h2-connection-private.h"
#include "cp-tls-proxy-private.h"

G_BEGIN_DECLS

struct _CpChannel
{
  GObject parent_instance;

  char *base_url;
  char *http_base;       /* "http://host:port[/prefix]", no trailing '/' */
  CpRpcServer *server;   /* in-process */
  CpCodec codec;
  CpCompression compression;
  gint64 timeout_ms;
  guint64 max_receive_size;
  GTlsDatabase *tls_database;
  GTlsCertificate *tls_certificate;   /* the client certificate, nullable */

  SoupSession *session;
  SoupSession *sync_session;    /* for cp_channel_call_sync () */
  CpHttpVersion http_version;
  CpProtocol protocol;          /* CpChannel:protocol */
  GSocketConnectable *connectable;  /* HTTP/2: a unix socket, or NULL */
  gboolean direct;              /* never through a proxy (see new_session ()) */
  /* libsoup's remote-connectable when the channel is pinned to its own
   * TLS database from construction (cp-tls-proxy-private.h), or NULL. */
  CpTlsConnectable *tls_connectable;
  CpH2Client *h2_client;        /* HTTP/2: made by the first call, under headers_lock */
  GMainContext *context; /* construction context; the server's for in-process */
  GError *setup_error;

  /* cp_channel_set_header() and cp_channel_rebase() may run in any thread
   * while calls are being built in others: the headers and http_base are
   * only touched under the lock once constructed. */
  GMutex headers_lock;
  SoupMessageHeaders *headers;
  gboolean method_only_paths;
  /* Replaceable at any time, from any thread: under headers_lock too. */
  CpCircuitBreaker *circuit_breaker;
  CpRetryPolicy *retry_policy;
  /* Immutable arrays (CpClientInterceptor), replaced on change; NULL when
   * empty. Under headers_lock. */
  GPtrArray *client_interceptors;   /* set by a CpClient */
  GPtrArray *interceptors;          /* cp_channel_add_interceptor () */
  CpRetryBudget retry_budget;

  /* CpChannel:metrics-enabled. `metrics` is made (or given by a CpClient)
   * before `metrics_on` is first set and then kept until finalize: a call
   * reads it without a lock (and holds its own reference). */
  CpClientMetrics *metrics;
  gint metrics_on;                  /* atomic */
  char *metrics_label;              /* under headers_lock */

  gint tracing;                     /* atomic: CpChannel:tracing */
};

G_END_DECLS
