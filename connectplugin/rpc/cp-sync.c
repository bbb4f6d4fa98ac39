/* cp-sync.c: a blocking form of an asynchronous operation
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-sync-private.h"

typedef struct {
  GMutex lock;
  GCond cond;
  GAsyncResult *result;
  CpSyncStartFunc start;
  gpointer data;
} SyncRun;

static void
sync_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  SyncRun *run = user_data;

  /* @run is the caller's, gone once it sees the result: nothing of it is
   * touched after the unlock. (A caller iterating the context runs this
   * callback itself, so needs no wake-up.) */
  g_mutex_lock (&run->lock);
  run->result = g_object_ref (result);
  g_cond_signal (&run->cond);
  g_mutex_unlock (&run->lock);
}

static gboolean
start_in_context (gpointer user_data)
{
  SyncRun *run = user_data;

  run->start (run->data, sync_done, run);
  return G_SOURCE_REMOVE;
}

GAsyncResult *
cp_run_sync (GMainContext    *context,
             CpSyncStartFunc  start,
             gpointer         data)
{
  SyncRun run = { 0 };
  GAsyncResult *result;

  g_mutex_init (&run.lock);
  g_cond_init (&run.cond);
  run.start = start;
  run.data = data;

  if (g_main_context_acquire (context))
    {
      g_main_context_push_thread_default (context);
      start (data, sync_done, &run);
      while (run.result == NULL)
        g_main_context_iteration (context, TRUE);
      g_main_context_pop_thread_default (context);
      g_main_context_release (context);
    }
  else
    {
      /* Another thread runs @context: start there, wait here. */
      g_main_context_invoke (context, start_in_context, &run);
      g_mutex_lock (&run.lock);
      while (run.result == NULL)
        g_cond_wait (&run.cond, &run.lock);
      g_mutex_unlock (&run.lock);
    }

  result = run.result;
  g_mutex_clear (&run.lock);
  g_cond_clear (&run.cond);
  return result;
}
