/* cp-process-shutdown.c: stopping a plugin process
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * cp_process_discovery_stop_async() of a CpProcessDiscovery (see
 * cp-process-discovery-private.h): PluginControl.Shutdown with the control
 * secret, then SIGTERM after shutdown-grace-ms (at once when the call
 * fails), then SIGKILL after the same time again. A re-attached plugin
 * only gets the Shutdown call.
 */
#include <signal.h>

#include "cp-process-discovery-private.h"
#include "cp-host-private.h"
#include "cp-error.h"
#include "cp-plugin-constants.h"
#include "control.cp.h"

/* ---- stopping ---- */

void
cp_process_stop_finished (CpProcessDiscovery *self)
{
  cp_process_clear_source (&self->escalate_source);
  cp_process_complete_waiters (&self->stop_waiters, NULL, NULL);
}

static gboolean
escalate_cb (gpointer user_data)
{
  CpProcessDiscovery *self = user_data;
  Launch *launch = self->launch;

  cp_process_clear_source (&self->escalate_source);
  if (launch == NULL || launch->exited)
    return G_SOURCE_REMOVE;

  if (self->escalation == 0)
    {
      g_debug ("plugin %s: sending SIGTERM", self->name);
      self->escalation = 1;
      g_subprocess_send_signal (launch->proc, SIGTERM);
      self->escalate_source = cp_process_add_timeout (self, self->shutdown_grace_ms, escalate_cb);
    }
  else
    {
      g_debug ("plugin %s: sending SIGKILL", self->name);
      self->escalation = 2;
      g_subprocess_force_exit (launch->proc);
    }
  return G_SOURCE_REMOVE;
}

typedef struct {
  CpProcessDiscovery *self;   /* strong */
  Launch *launch;             /* NULL when re-attached */
  GTask *task;                /* attached: the stop task */
} ShutdownCall;

static void
shutdown_rpc_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  ShutdownCall *call = user_data;
  CpProcessDiscovery *self = call->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = NULL;

  response = cp_channel_call_finish (CP_CHANNEL (source), result, &error);
  if (call->task != NULL)
    {
      /* Re-attached: the RPC is all we can do. */
      if (response != NULL)
        {
          cp_process_set_url (self, NULL);
          cp_process_set_state (self, CP_PROCESS_STATE_STOPPED);
          g_task_return_boolean (call->task, TRUE);
        }
      else
        g_task_return_error (call->task, g_steal_pointer (&error));
      g_object_unref (call->task);
    }
  else if (response == NULL && call->launch == self->launch &&
           self->state == CP_PROCESS_STATE_STOPPING && self->escalation == 0)
    {
      /* No PluginControl (or it failed): straight to SIGTERM. */
      g_debug ("plugin %s: Shutdown failed (%s)", self->name, error->message);
      cp_process_clear_source (&self->escalate_source);
      escalate_cb (self);
    }

  if (call->launch != NULL)
    cp_process_launch_unref (call->launch);
  g_object_unref (call->self);
  g_free (call);
}

static void
send_shutdown_rpc (CpProcessDiscovery *self,
                   GTask              *task)
{
  g_autoptr(GError) error = NULL;
  /* Through the discovery: an AutoMTLS plugin accepts only its host. */
  g_autoptr(CpChannel) channel = cp_discovery_create_channel (CP_DISCOVERY (self), self->url,
                                                              &error);
  g_autoptr(CpShutdownRequest) request = cp_shutdown_request_new ();
  g_autoptr(CpCallOptions) options = cp_call_options_new ();
  ShutdownCall *call;

  if (channel == NULL)
    {
      if (task != NULL)
        g_task_return_error (task, g_steal_pointer (&error));
      else
        escalate_cb (self);
      return;
    }

  cp_shutdown_request_set_grace_period_seconds (request,
                                                (self->shutdown_grace_ms + 999) / 1000);
  cp_shutdown_request_set_reason (request, "the host is shutting the plugin down");
  cp_call_options_set_timeout_ms (options, MAX (self->shutdown_grace_ms, 1));
  if (self->control_secret != NULL)
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", self->control_secret, NULL);

      soup_message_headers_replace (cp_call_options_get_request_headers (options),
                                    "Authorization", bearer);
    }

  call = g_new0 (ShutdownCall, 1);
  call->self = g_object_ref (self);
  call->launch = self->launch != NULL ? cp_process_launch_ref (self->launch) : NULL;
  call->task = task != NULL ? g_object_ref (task) : NULL;
  cp_channel_call_async (channel, CP_PROCEDURE_CONTROL_SHUTDOWN, CP_MESSAGE (request),
                         CP_TYPE_SHUTDOWN_RESPONSE, options, NULL, shutdown_rpc_cb, call);
}

/**
 * cp_process_discovery_stop_async:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 * @cancellable: (nullable): a [class@Gio.Cancellable] (cancels the wait, not the shutdown)
 * @callback: (scope async): called once the plugin is gone
 * @user_data: (closure): data for @callback
 *
 * Shuts the plugin down: `PluginControl.Shutdown`, then `SIGTERM` after
 * [property@ProcessDiscovery:shutdown-grace-ms] (at once when the call
 * fails), then `SIGKILL` after the same time again. Completes when the
 * process has exited; a pending restart is cancelled. For a re-attached
 * plugin, only the `Shutdown` call is made, and its error is returned.
 */
void
cp_process_discovery_stop_async (CpProcessDiscovery  *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Launch *launch;

  g_return_if_fail (CP_IS_PROCESS_DISCOVERY (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_process_discovery_stop_async);

  cp_process_clear_source (&self->restart_source);
  launch = self->launch;

  if (self->attached)
    {
      if (self->state == CP_PROCESS_STATE_RUNNING && self->url != NULL)
        send_shutdown_rpc (self, task);
      else
        g_task_return_boolean (task, TRUE);
      return;
    }

  if (launch == NULL)
    {
      g_autoptr(GError) error = g_error_new (CP_ERROR, CP_ERROR_CANCELED,
                                             "plugin %s was stopped before it restarted",
                                             self->name);

      /* Nothing runs; those waiting for a restart wait no more. */
      cp_process_set_state (self, CP_PROCESS_STATE_STOPPED);
      cp_process_complete_waiters (&self->start_waiters, NULL, error);
      g_task_return_boolean (task, TRUE);
      return;
    }

  cp_host_waiters_add (&self->stop_waiters, task, NULL);
  if (self->state == CP_PROCESS_STATE_STOPPING)
    return;

  if (self->state == CP_PROCESS_STATE_STARTING)
    {
      g_autoptr(GError) error = g_error_new (CP_ERROR, CP_ERROR_CANCELED,
                                             "plugin %s was stopped during start-up",
                                             self->name);
      cp_process_clear_source (&self->start_timeout);
      cp_process_complete_waiters (&self->start_waiters, NULL, error);
    }

  cp_process_set_state (self, CP_PROCESS_STATE_STOPPING);
  self->escalation = 0;
  cp_process_clear_source (&self->escalate_source);
  if (launch->announced && self->url != NULL)
    {
      self->escalate_source = cp_process_add_timeout (self, self->shutdown_grace_ms, escalate_cb);
      send_shutdown_rpc (self, NULL);
    }
  else
    escalate_cb (self);
}

/**
 * cp_process_discovery_stop_finish:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.ProcessDiscovery.stop_async].
 *
 * Returns: %TRUE once the plugin is gone
 */
gboolean
cp_process_discovery_stop_finish (CpProcessDiscovery  *self,
                                  GAsyncResult        *result,
                                  GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
