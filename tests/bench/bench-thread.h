/* bench-thread.h: a benchmark's server side in a thread with its own context
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * bench_thread_start() makes the context and loop, starts @func and waits
 * until it calls bench_thread_ready() (from inside, once it serves);
 * bench_thread_stop() quits the loop and joins the thread. @func pushes
 * the context, sets up, calls bench_thread_ready() and runs the loop.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  GMutex lock;
  GCond cond;
  gboolean ready;
} BenchThread;

void bench_thread_start (BenchThread *t,
                         const char  *name,
                         GThreadFunc  func,
                         gpointer     data);
void bench_thread_ready (BenchThread *t);
void bench_thread_stop  (BenchThread *t);

G_END_DECLS
