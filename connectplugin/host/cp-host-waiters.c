/* cp-host-waiters.c: callers waiting on one outcome, each with its own
 * cancellable
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CpClient's connect waiters and CpProcessDiscovery's start and stop
 * waiters are GTasks kept in a GPtrArray until the outcome is known. Each
 * caller's cancellable ends only its own wait, at once, with
 * G_IO_ERROR_CANCELLED; the operation goes on for the others. (GTask's
 * return-on-cancel does this for g_task_run_in_thread () tasks only.)
 */
#include <gio/gio.h>

#include "cp-host-private.h"

typedef struct {
  GPtrArray **waiters;          /* the owner's field: the owner outlives its tasks' sources */
  GSource *source;              /* the cancellable's */
  CpHostWaitersCancelled all_cancelled;
} Waiter;

static void
waiter_free (gpointer data)
{
  Waiter *waiter = data;

  g_source_destroy (waiter->source);
  g_source_unref (waiter->source);
  g_free (waiter);
}

static gboolean
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = g_object_ref (user_data);
  Waiter *waiter = g_task_get_task_data (task);

  CpHostWaitersCancelled all_cancelled = waiter->all_cancelled;
  GPtrArray **waiters = waiter->waiters;
  /* The callback may drop the owner's last reference elsewhere. */
  g_autoptr(GObject) owner = g_object_ref (g_task_get_source_object (task));

  if (*waiters == NULL || !g_ptr_array_remove (*waiters, task))
    return G_SOURCE_REMOVE;
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "the wait was cancelled");
  if (all_cancelled != NULL && *waiters != NULL && (*waiters)->len == 0)
    all_cancelled (owner);
  return G_SOURCE_REMOVE;
}

void
cp_host_waiters_add (GPtrArray              **waiters,
                     GTask                   *task,
                     CpHostWaitersCancelled   all_cancelled)
{
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (cancellable != NULL)
    {
      Waiter *waiter = g_new0 (Waiter, 1);

      waiter->waiters = waiters;
      waiter->all_cancelled = all_cancelled;
      waiter->source = g_cancellable_source_new (cancellable);
      /* Before the source is attached: the task data holds it. */
      g_task_set_task_data (task, waiter, waiter_free);
      g_task_attach_source (task, waiter->source,
                            (GSourceFunc) (void (*) (void)) waiter_cancelled_cb);
    }
  g_ptr_array_add (*waiters, g_object_ref (task));
}

GPtrArray *
cp_host_waiters_take (GPtrArray **waiters)
{
  GPtrArray *tasks = g_steal_pointer (waiters);

  *waiters = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < tasks->len; i++)
    {
      Waiter *waiter = g_task_get_task_data (g_ptr_array_index (tasks, i));

      if (waiter != NULL)
        g_source_destroy (waiter->source);
    }
  return tasks;
}
