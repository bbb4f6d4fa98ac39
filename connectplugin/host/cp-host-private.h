/* cp-host-private.h: helpers shared by the host folder's files
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "cp-process-discovery.h"

G_BEGIN_DECLS

/* Replaces the string vector *@field with a copy of @value unless they are
 * equal (both %NULL, or the same strings). Returns whether *@field changed,
 * so that the caller notifies only then. */
static inline gboolean
cp_host_strv_replace (GStrv              *field,
                      const char * const *value)
{
  if (*field == NULL && value == NULL)
    return FALSE;
  if (*field != NULL && value != NULL &&
      g_strv_equal ((const char * const *) *field, value))
    return FALSE;
  g_strfreev (*field);
  *field = g_strdupv ((char **) value);
  return TRUE;
}

/* Called with the tasks' source object when a cancelled waiter was the
 * last one left. */
typedef void (*CpHostWaitersCancelled) (GObject *owner);

/* Callers waiting on one outcome (cp-host-waiters.c): adds @task to
 * *@waiters (the owner's field; the owner must outlive its tasks). When the
 * task's cancellable fires, the task leaves the list at once and returns
 * G_IO_ERROR_CANCELLED; the operation goes on for the others, and
 * @all_cancelled (nullable) is called when no one is left waiting. The task
 * data is the helper's. */
void       cp_host_waiters_add  (GPtrArray              **waiters,
                                 GTask                   *task,
                                 CpHostWaitersCancelled   all_cancelled);
/* Empties *@waiters (a new, empty array takes its place) and returns the
 * tasks in it, to be completed; their cancellables no longer end them. */
GPtrArray *cp_host_waiters_take (GPtrArray **waiters);

/* For cp_client_connect_sync (), which launches in a private context:
 * moves the sources of @self's current launch (its output pipes, exit
 * wait, port probe and start-up timers) from @from to @to, keeping the
 * time the timers had left. Does nothing unless the launch runs in @from.
 * (cp-process-launch.c) */
void cp_process_discovery_move_launch (CpProcessDiscovery *self,
                                       GMainContext       *from,
                                       GMainContext       *to);

G_END_DECLS
