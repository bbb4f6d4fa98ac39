/* bench-thread.c: a benchmark's server side in a thread with its own context
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "bench-thread.h"

void
bench_thread_ready (BenchThread *t)
{
  g_mutex_lock (&t->lock);
  t->ready = TRUE;
  g_cond_signal (&t->cond);
  g_mutex_unlock (&t->lock);
}

void
bench_thread_start (BenchThread *t,
                    const char  *name,
                    GThreadFunc  func,
                    gpointer     data)
{
  g_mutex_init (&t->lock);
  g_cond_init (&t->cond);
  t->context = g_main_context_new ();
  t->loop = g_main_loop_new (t->context, FALSE);
  t->thread = g_thread_new (name, func, data);
  g_mutex_lock (&t->lock);
  while (!t->ready)
    g_cond_wait (&t->cond, &t->lock);
  g_mutex_unlock (&t->lock);
}

void
bench_thread_stop (BenchThread *t)
{
  g_main_loop_quit (t->loop);
  g_thread_join (t->thread);
  g_main_loop_unref (t->loop);
  g_main_context_unref (t->context);
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->cond);
}
