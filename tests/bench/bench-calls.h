/* bench-calls.h: sequential unary KV Gets, the loop several benchmarks time
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <connectplugin.h>
#include "kv-test.h"

G_BEGIN_DECLS

typedef struct {
  KvGetRequest *request;     /* sent by every call */
  CpCallOptions *options;    /* NULL for none */
  gboolean done;
  guint n_bad;               /* calls that failed */
} BenchCalls;

/* A KV Get handler answering found at once (a CpMethodHandler). */
void   bench_handle_get (CpInvocation *invocation,
                         CpMessage    *request,
                         gpointer      user_data);

/* µs per call of @n sequential asynchronous unary Gets on @channel,
 * iterating the thread-default context; failures count in n_bad. */
double bench_run_calls  (BenchCalls   *calls,
                         CpChannel    *channel,
                         guint         n);

G_END_DECLS
