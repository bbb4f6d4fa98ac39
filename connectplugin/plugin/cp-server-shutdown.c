/* cp-server-shutdown.c: a CpServer's graceful shutdown and close
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Shutdown: health NOT_SERVING everywhere (Watch streams end), stop
 * accepting, drain running calls up to a timeout (the drain cancellable
 * cuts them), then finish_close(): the engine closed, CpServer::closed
 * emitted once, every pending shutdown task completed. cp_server_close()
 * and a cancelled shutdown jump to the end.
 */
#include "cp-server-state-private.h"
#include "cp-sync-private.h"
#include "cp-rpc-server-private.h"

/* ------------------------------------------------------------------ */
/* Shutdown                                                             */

static void
finish_close (CpServer *self)
{
  GTask *task;

  if (self->drain_timeout != NULL)
    {
      g_source_destroy (self->drain_timeout);
      g_clear_pointer (&self->drain_timeout, g_source_unref);
    }

  if (!self->closed)
    {
      /* Best effort: sent while the main loop runs, never waited for. */
      if (!self->shutting_down)
        cp_server_host_unregister_async (self, NULL, NULL);
      self->closed = TRUE;
      self->shutting_down = TRUE;
      cp_health_server_shutdown (self->health);
      cp_server_set_serving (self, FALSE);
      cp_rpc_server_close (self->rpc_server);
      g_signal_emit (self, cp_server_signals[SIGNAL_CLOSED], 0);
    }

  while ((task = g_queue_pop_head (&self->shutdown_tasks)) != NULL)
    {
      g_task_set_task_data (task, NULL, NULL);
      if (self->shutdown_error != NULL)
        g_task_return_error (task, g_error_copy (self->shutdown_error));
      else
        g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

static void
set_shutdown_error (CpServer   *self,
                    gint        code,
                    const char *message)
{
  if (self->shutdown_error == NULL)
    self->shutdown_error = g_error_new_literal (G_IO_ERROR, code, message);
}

static void
on_drained (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(CpServer) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!cp_rpc_server_shutdown_finish (CP_RPC_SERVER (source), result, &error))
    g_debug ("CpServer: drain stopped: %s", error->message);
  finish_close (self);
}

static gboolean
on_drain_timeout (gpointer user_data)
{
  CpServer *self = user_data;

  g_clear_pointer (&self->drain_timeout, g_source_unref);
  set_shutdown_error (self, G_IO_ERROR_TIMED_OUT,
                      "graceful shutdown timed out: calls still running were cut");
  g_cancellable_cancel (self->drain_cancellable);
  return G_SOURCE_REMOVE;
}

static void
on_shutdown_task_cancelled (GCancellable *cancellable,
                            gpointer      user_data)
{
  /* The caller does not want to wait: close at once. */
  CpServer *self = user_data;

  set_shutdown_error (self, G_IO_ERROR_CANCELLED, "Operation was cancelled");
  if (self->drain_cancellable != NULL)
    g_cancellable_cancel (self->drain_cancellable);
}

typedef struct {
  GCancellable *cancellable;
  gulong handler_id;
} TaskCancelWatch;

static void
task_cancel_watch_free (gpointer data)
{
  TaskCancelWatch *watch = data;

  g_cancellable_disconnect (watch->cancellable, watch->handler_id);
  g_object_unref (watch->cancellable);
  g_free (watch);
}

static void
begin_drain (CpServer *self,
             guint     timeout_ms)
{
  /* 1. Health: NOT_SERVING everywhere; Watch streams hear it and end. */
  self->shutting_down = TRUE;
  cp_server_set_serving (self, FALSE);
  cp_health_server_shutdown (self->health);

  /* 2.–3. Stop accepting, drain in-flight calls up to the timeout. */
  self->drain_cancellable = g_cancellable_new ();
  if (timeout_ms > 0)
    {
      self->drain_timeout = g_timeout_source_new (timeout_ms);
      g_source_set_callback (self->drain_timeout, on_drain_timeout, self, NULL);
      g_source_attach (self->drain_timeout, cp_rpc_server_get_context (self->rpc_server));
    }
  cp_rpc_server_shutdown_async (self->rpc_server, self->drain_cancellable,
                                on_drained, g_object_ref (self));
}

static void
on_unregistered_then_drain (GObject      *source,
                            GAsyncResult *result,
                            gpointer      user_data)
{
  g_autoptr(CpServer) self = CP_SERVER (source);
  guint timeout_ms = GPOINTER_TO_UINT (user_data);

  /* close() may have come meanwhile: it finished the waiting tasks. */
  if (!self->closed)
    begin_drain (self, timeout_ms);
}

void
cp_server_shutdown_with_timeout (CpServer            *self,
                                 guint                timeout_ms,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_server_shutdown_async);

  if (self->closed)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  g_queue_push_tail (&self->shutdown_tasks, task);

  if (!self->shutting_down)
    {
      /* Unregister from the host first (bounded by host-timeout-ms), so
       * that it stops routing calls here while we still serve them. */
      if (cp_server_host_unregister_async (self, on_unregistered_then_drain,
                                           GUINT_TO_POINTER (timeout_ms)))
        {
          self->shutting_down = TRUE;
          g_object_ref (self);
        }
      else
        begin_drain (self, timeout_ms);
    }

  if (cancellable != NULL)
    {
      TaskCancelWatch *watch = g_new0 (TaskCancelWatch, 1);

      watch->cancellable = g_object_ref (cancellable);
      watch->handler_id = g_cancellable_connect (cancellable,
                                                 G_CALLBACK (on_shutdown_task_cancelled),
                                                 self, NULL);
      g_task_set_task_data (task, watch, task_cancel_watch_free);
    }
}

/**
 * cp_server_shutdown_async:
 * @server: a [class@ConnectPlugin.Server]
 * @cancellable: (nullable): cancel to stop waiting and close at once
 * @callback: (scope async): called when the server has stopped
 * @user_data: (closure): data for @callback
 *
 * Stops @server gracefully: a server registered with a host
 * ([property@ConnectPlugin.Server:host-url]) first unregisters its services
 * there (each call bounded by [property@ConnectPlugin.Server:host-timeout-ms]),
 * then every health status becomes NOT_SERVING (Watch
 * streams hear it and end), the server stops accepting connections, running
 * calls and streams may finish for up to [property@ConnectPlugin.Server:shutdown-timeout-ms],
 * then everything is closed and [signal@ConnectPlugin.Server::closed] is emitted.
 */
void
cp_server_shutdown_async (CpServer            *server,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  cp_server_shutdown_with_timeout (server, server->shutdown_timeout_ms, cancellable,
                                   callback, user_data);
}

/**
 * cp_server_shutdown_finish:
 * @server: a [class@ConnectPlugin.Server]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Server.shutdown_async]. The server is closed either way.
 *
 * Returns: %TRUE when every running call finished in time; %FALSE with
 *   %G_IO_ERROR_TIMED_OUT when some had to be cut
 */
gboolean
cp_server_shutdown_finish (CpServer      *server,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, server), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

typedef struct {
  CpServer *server;
  GCancellable *cancellable;
} ShutdownSync;

static void
start_shutdown (gpointer             data,
                GAsyncReadyCallback  callback,
                gpointer             callback_data)
{
  ShutdownSync *sync = data;

  cp_server_shutdown_async (sync->server, sync->cancellable, callback, callback_data);
}

/**
 * cp_server_shutdown_sync:
 * @server: a [class@ConnectPlugin.Server]
 * @cancellable: (nullable): a [class@Gio.Cancellable]: cancelling it closes
 *   the server at once, as for [method@ConnectPlugin.Server.shutdown_async]
 * @error: return location for a [struct@GLib.Error]
 *
 * The blocking form of [method@ConnectPlugin.Server.shutdown_async]: a
 * graceful shutdown, waiting until the calls under way are done (or the
 * timeout closes the server). The server's [struct@GLib.MainContext] keeps
 * running meanwhile: this thread iterates it when it may (it runs it, or
 * no thread does); else the shutdown runs there and this thread waits.
 *
 * Returns: %TRUE when the shutdown finished
 */
gboolean
cp_server_shutdown_sync (CpServer      *server,
                         GCancellable  *cancellable,
                         GError       **error)
{
  ShutdownSync sync = { server, cancellable };
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);

  result = cp_run_sync (cp_rpc_server_get_context (server->rpc_server), start_shutdown, &sync);
  return cp_server_shutdown_finish (server, result, error);
}

/**
 * cp_server_close:
 * @server: a [class@ConnectPlugin.Server]
 *
 * Stops @server at once: health NOT_SERVING, every connection closed,
 * running calls cancelled. Emits [signal@ConnectPlugin.Server::closed] (once).
 * A server registered with a host sends its UnregisterService calls
 * without waiting for them (they go out while the main loop runs).
 */
void
cp_server_close (CpServer *server)
{
  g_return_if_fail (CP_IS_SERVER (server));

  if (!g_queue_is_empty (&server->shutdown_tasks))
    set_shutdown_error (server, G_IO_ERROR_CLOSED,
                        "the server was closed before running calls finished");
  finish_close (server);
}
