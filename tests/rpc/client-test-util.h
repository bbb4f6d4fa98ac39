/* client-test-util.h: running client calls to completion in tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <connectplugin.h>
#include "kv-test.h"

G_BEGIN_DECLS

/* Iterates the thread-default context until *flag becomes TRUE; fails the
 * test after 10 s instead of hanging. */
void        test_wait_for        (gboolean *flag);
/* Iterates until @func returns TRUE (polling). */
void        test_wait_until      (gboolean (*func) (gpointer), gpointer data);

CpMessage  *test_call_unary      (CpChannel      *channel,
                                  const char     *procedure,
                                  CpMessage      *request,
                                  GType           response_type,
                                  CpCallOptions  *options,
                                  GCancellable   *cancellable,
                                  GError        **error);

typedef struct {
  CpResponseStream *stream;
  GPtrArray *messages;
  GError *error;
  gboolean closed;
  gboolean got_headers;
  guint n_closed;
  /* Actions from the message handler (0 = none). */
  guint pause_at;
  guint cancel_at;
  GThread *thread;           /* every signal must arrive on this thread */
  GMainContext *context;     /* ... with this context owned */
} StreamRun;

void        stream_run_init      (StreamRun        *run,
                                  CpResponseStream *stream);
void        stream_run_wait      (StreamRun        *run);
void        stream_run_clear     (StreamRun        *run);

CpMessage  *test_client_stream   (CpRequestStream *stream,
                                  GError         **error);

/* A channel to @server: in process for @transport "in-process", else over
 * TCP on 127.0.0.1 (the server listens on a new port). */
CpChannel  *test_channel_new     (CpRpcServer    *server,
                                  const char     *transport);

/* A unary KV Get of @key on @channel (test_call_unary ()). */
CpMessage  *test_kv_get          (CpChannel      *channel,
                                  const char     *key,
                                  CpCallOptions  *options,
                                  GError        **error);

/* A client-stream handler's body: receives every request message, then
 * answers a found GetResponse (nothing when the stream failed). */
void        test_receive_all_then_found (CpInvocation *invocation);

GBytes     *test_get_response    (const char *value,
                                  gboolean    found,
                                  CpCodec     codec);
const char *test_get_value       (CpMessage  *message);

G_END_DECLS
