/* cp-sync-private.h: a blocking form of an asynchronous operation
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The _sync functions of objects that live in a GMainContext of their own
 * (a CpClient, a CpServer): @start begins the asynchronous operation with
 * @context as the thread-default one, and the result comes back to the
 * caller. When the caller's thread can own @context (it is the thread that
 * runs it, or nobody runs it), @context is iterated until the operation
 * completes; when another thread runs it, the operation is started there
 * and the caller waits for it.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef void (*CpSyncStartFunc) (gpointer             data,
                                 GAsyncReadyCallback  callback,
                                 gpointer             callback_data);

/* Returns the operation's result (transfer full), for its _finish. */
GAsyncResult *cp_run_sync (GMainContext    *context,
                           CpSyncStartFunc  start,
                           gpointer         data);

G_END_DECLS
