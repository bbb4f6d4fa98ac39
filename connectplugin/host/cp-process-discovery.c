/* cp-process-discovery.c: plugins launched as child processes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The object: properties, states, waiters, restarts, starting, the
 * CpDiscovery interface. The child itself is in cp-process-launch.c, its
 * shutdown in cp-process-shutdown.c (see cp-process-discovery-private.h).
 */
#include <signal.h>
#include <string.h>

#include "cp-process-discovery-private.h"
#include "cp-host-private.h"
#include "cp-channel-private.h"
#include "cp-error.h"
#include "cp-plugin-constants.h"

/**
 * CpProcessDiscovery:
 *
 * A [iface@Discovery] that launches a plugin executable as a child process
 * and finds it at the address the plugin announces.
 *
 * The child gets the environment variable `CONNECTPLUGIN_LISTEN` set to
 * `127.0.0.1:0` (it picks a free port) or, with %CP_LISTEN_UNIX, to
 * `unix:/path` inside a private temporary directory (mode 0700). The first
 * line the plugin writes on its standard output is the URL it serves
 * (`http://127.0.0.1:PORT` or `unix:/path`): the discovery reads it, with
 * [property@ProcessDiscovery:start-timeout-ms] as the limit. Further lines
 * of its standard output and every line of its standard error are
 * forwarded to the host's structured log (g_log_structured_array(), log
 * domain `ConnectPlugin`) with the field `CP_PLUGIN` set to the plugin's
 * name, `CP_PLUGIN_STREAM` to `stderr` or `stdout` and `CP_PLUGIN_PID` to
 * its process id; the message is `NAME: line` (the line alone when it
 * already starts with `NAME:`), and empty lines are dropped. A plain line
 * is logged at [property@ProcessDiscovery:output-log-level]
 * (%G_LOG_LEVEL_DEBUG unless set). A line that GLib's default log writer
 * printed in the plugin, such as
 * `(prgname:1234): Domain-WARNING **: 12:34:56.789: text` or
 * `** Message: 12:34:56.789: text`, keeps its level (%G_LOG_LEVEL_ERROR
 * becomes %G_LOG_LEVEL_CRITICAL, so that it does not abort the host); its
 * message loses GLib's prefix and time stamp, and its log domain goes into
 * the field `CP_PLUGIN_DOMAIN`. g_log_writer_default() does not make these
 * records fatal under the host's `G_DEBUG=fatal-warnings` (or a GTest
 * host's fatal criticals). The following lines of a message that spans
 * several lines are plain lines.
 *
 * The end of the child is noticed at once (g_subprocess_wait_async();
 * reported once its standard error is drained, so that its last words are
 * logged and quoted in start-up errors, waiting at most half a second for
 * that): the state changes to %CP_PROCESS_STATE_EXITED and
 * [signal@ProcessDiscovery::exited] and [signal@Discovery::changed] are
 * emitted; with a [property@ProcessDiscovery:restart-policy] the plugin is
 * launched again after an exponential backoff.
 *
 * [method@ConnectPlugin.ProcessDiscovery.stop_async] (also [method@ConnectPlugin.Discovery.shutdown_async],
 * used by [method@Client.close_async]) shuts the plugin down: it calls
 * `PluginControl.Shutdown`, sends `SIGTERM` if the plugin is still there
 * after [property@ProcessDiscovery:shutdown-grace-ms] (or at once if it
 * does not implement PluginControl), and `SIGKILL` after the same time
 * again.
 *
 * Each launch gets a fresh control secret (32 random bytes, base64url) in
 * the environment variable `CONNECTPLUGIN_CONTROL_SECRET`, never on its
 * command line; `PluginControl.Shutdown` carries it as
 * `Authorization: Bearer SECRET` (see [property@Server:control-secret]),
 * and so must the host's own PluginControl and PluginIdentity calls
 * ([method@ConnectPlugin.Client.new_control_call_options]).
 *
 * Plugins that do not print their URL (connect-plugin-go's) are launched
 * with [property@ProcessDiscovery:startup-mode] set to
 * %CP_STARTUP_MODE_PORT: the discovery picks a free port, passes it in
 * `PORT` (and [property@ProcessDiscovery:host-url] in `HOST_URL`), and
 * connects to `127.0.0.1:PORT` again and again, a few milliseconds apart,
 * until the port accepts; the plugin then serves `http://127.0.0.1:PORT`.
 *
 * With [ctor@ConnectPlugin.ProcessDiscovery.new_attach] the discovery launches nothing:
 * it re-attaches to a plugin that is already running at a known address
 * (e.g. one launched by an earlier run of the host), and stopping it only
 * calls `PluginControl.Shutdown`, with the
 * [property@ProcessDiscovery:control-secret] the plugin was launched with.
 */

#define DEFAULT_START_TIMEOUT_MS     10000
#define DEFAULT_SHUTDOWN_GRACE_MS    5000
#define DEFAULT_RESTART_DELAY_MS     100
#define DEFAULT_MAX_RESTART_DELAY_MS 10000
#define DEFAULT_MAX_RESTARTS         5

enum {
  SIGNAL_EXITED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void cp_process_discovery_iface_init (CpDiscoveryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpProcessDiscovery, cp_process_discovery, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (CP_TYPE_DISCOVERY,
                                                      cp_process_discovery_iface_init))

/* ---- helpers shared by the units ---- */

void
cp_process_notify (CpProcessDiscovery *self,
                   guint               prop_id)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

void
cp_process_emit_exited (CpProcessDiscovery *self,
                        int                 code,
                        int                 sig)
{
  g_signal_emit (self, signals[SIGNAL_EXITED], 0, code, sig);
}

void
cp_process_set_state (CpProcessDiscovery *self,
                      CpProcessState      state)
{
  if (self->state == state)
    return;
  self->state = state;
  cp_process_notify (self, PROP_STATE);
}

void
cp_process_set_url (CpProcessDiscovery *self,
                    const char         *url)
{
  if (g_strcmp0 (self->url, url) == 0)
    return;
  /* AutoMTLS plugins are known to the router and the broker by URL. */
  if (self->automtls_registered)
    cp_automtls_unregister (self->url);
  self->automtls_registered = FALSE;
  g_free (self->url);
  self->url = g_strdup (url);
  if (url != NULL && self->automtls != NULL && g_str_has_prefix (url, "https://"))
    {
      cp_automtls_register (url, self->automtls);
      self->automtls_registered = TRUE;
    }
  cp_process_notify (self, PROP_URL);
}

void
cp_process_clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

GSource *
cp_process_add_timeout (CpProcessDiscovery *self,
                        guint               ms,
                        GSourceFunc         func)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, self, NULL);
  g_source_set_static_name (source, "[connectplugin] process discovery");
  g_source_attach (source, self->context);
  return source;
}

void
cp_process_complete_waiters (GPtrArray    **waiters,
                             const char    *url,
                             const GError  *error)
{
  g_autoptr(GPtrArray) tasks = cp_host_waiters_take (waiters);

  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);

      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else if (url != NULL)
        g_task_return_pointer (task, g_strdup (url), g_free);
      else
        g_task_return_boolean (task, TRUE);
    }
}

/* Events of the plugin's life worth a line in the host's log (not
 * warnings: a plugin crashing is not a bug of the host). */
void
cp_process_event (CpProcessDiscovery *self,
                  const char         *format,
                  ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                    "CP_PLUGIN", self->name,
                    "CP_PLUGIN_STREAM", "event",
                    "MESSAGE", "plugin %s %s", self->name, message);
}

/* ---- restarts ---- */

static gboolean
restart_cb (gpointer user_data)
{
  CpProcessDiscovery *self = user_data;
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&self->restart_source, g_source_unref);
  self->restart_count++;
  self->restarting = TRUE;
  g_debug ("restarting plugin %s (restart %u)", self->name, self->restart_count);
  if (!cp_process_launch (self, &error))
    {
      cp_process_event (self, "could not be restarted: %s", error->message);
      g_free (self->exit_description);
      self->exit_description = g_strdup (error->message);
      cp_process_set_state (self, CP_PROCESS_STATE_EXITED);
      cp_process_complete_waiters (&self->start_waiters, NULL, error);
    }
  return G_SOURCE_REMOVE;
}

void
cp_process_maybe_restart (CpProcessDiscovery *self,
                          gboolean            failed,
                          gint64              ran_us)
{
  if (self->restart_policy == CP_RESTART_NEVER ||
      (self->restart_policy == CP_RESTART_ON_FAILURE && !failed))
    return;

  /* A plugin that ran for a while earns a fresh backoff. */
  if (ran_us >= (gint64) self->max_restart_delay_ms * 1000)
    {
      self->restart_count = 0;
      self->next_delay_ms = self->restart_delay_ms;
    }
  if (self->max_restarts >= 0 && self->restart_count >= (guint) self->max_restarts)
    {
      cp_process_event (self, "keeps failing: giving up after %u restarts", self->restart_count);
      return;
    }

  cp_process_set_state (self, CP_PROCESS_STATE_RESTARTING);
  cp_process_clear_source (&self->restart_source);
  self->restart_source = cp_process_add_timeout (self, self->next_delay_ms, restart_cb);
  self->next_delay_ms = MIN ((guint64) self->next_delay_ms * 2, self->max_restart_delay_ms);
}

/* ---- starting ---- */

/* Completes @task with the URL (a string) once the plugin serves. */
static void
start_internal (CpProcessDiscovery *self,
                GTask              *task)
{
  g_autoptr(GError) error = NULL;

  switch (self->state)
    {
    case CP_PROCESS_STATE_RUNNING:
      g_task_return_pointer (task, g_strdup (self->url), g_free);
      return;

    case CP_PROCESS_STATE_STARTING:
    case CP_PROCESS_STATE_RESTARTING:
      cp_host_waiters_add (&self->start_waiters, task, NULL);
      return;

    case CP_PROCESS_STATE_STOPPING:
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                               "plugin %s is shutting down", self->name);
      return;

    case CP_PROCESS_STATE_STOPPED:
    case CP_PROCESS_STATE_EXITED:
    default:
      break;
    }

  if (self->attached)
    {
      /* Stopped on request: it is gone, and not ours to relaunch. */
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE,
                               "plugin %s was shut down", self->name);
      return;
    }

  cp_process_clear_source (&self->restart_source);
  self->restarting = FALSE;
  self->restart_count = 0;
  self->next_delay_ms = self->restart_delay_ms;
  cp_host_waiters_add (&self->start_waiters, task, NULL);
  if (!cp_process_launch (self, &error))
    {
      g_free (self->exit_description);
      self->exit_description = g_strdup (error->message);
      cp_process_set_state (self, CP_PROCESS_STATE_EXITED);
      cp_process_complete_waiters (&self->start_waiters, NULL, error);
    }
}

/**
 * cp_process_discovery_start_async:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 * @cancellable: (nullable): a [class@Gio.Cancellable] (cancels the wait, not the launch)
 * @callback: (scope async): called once the plugin serves, or failed to start
 * @user_data: (closure): data for @callback
 *
 * Launches the plugin if it is not running (also after it exited) and
 * waits for its address. Errors: `deadline_exceeded` when the plugin does
 * not announce an address in time, `unavailable` when it cannot be
 * launched or exits during start-up (the message quotes its last line on
 * standard error), `internal` when its first line is not an address.
 */
void
cp_process_discovery_start_async (CpProcessDiscovery  *self,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_PROCESS_DISCOVERY (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_process_discovery_start_async);
  start_internal (self, task);
}

/**
 * cp_process_discovery_start_finish:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.ProcessDiscovery.start_async].
 *
 * Returns: (transfer full): the URL the plugin serves, or %NULL on error
 */
char *
cp_process_discovery_start_finish (CpProcessDiscovery  *self,
                                   GAsyncResult        *result,
                                   GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- CpDiscovery ---- */

static void
cp_process_discovery_discover_async (CpDiscovery         *discovery,
                                     const char * const  *plugins,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (discovery);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_process_discovery_discover_async);

  /* A plugin that exited stays down unless the restart policy brings it
   * back: discovering again does not relaunch it behind the policy's back
   * (cp_process_discovery_start_async() does). */
  if (self->state == CP_PROCESS_STATE_EXITED)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE, "%s",
                               self->exit_description != NULL ? self->exit_description
                                                              : "the plugin exited");
      return;
    }
  start_internal (self, task);
}

static char **
cp_process_discovery_discover_finish (CpDiscovery   *discovery,
                                      GAsyncResult  *result,
                                      GError       **error)
{
  char *url;
  char **urls;

  g_return_val_if_fail (g_task_is_valid (result, discovery), NULL);

  url = g_task_propagate_pointer (G_TASK (result), error);
  if (url == NULL)
    return NULL;
  urls = g_new0 (char *, 2);
  urls[0] = url;
  return urls;
}

static void
shutdown_done_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (cp_process_discovery_stop_finish (CP_PROCESS_DISCOVERY (source), result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
cp_process_discovery_shutdown_async (CpDiscovery         *discovery,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  GTask *task = g_task_new (discovery, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_process_discovery_shutdown_async);
  cp_process_discovery_stop_async (CP_PROCESS_DISCOVERY (discovery), cancellable,
                                   shutdown_done_cb, task);
}

static gboolean
cp_process_discovery_shutdown_finish (CpDiscovery   *discovery,
                                      GAsyncResult  *result,
                                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, discovery), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The plugin's https:// URL of an AutoMTLS launch: pinned to the server
 * certificate the host made, with the host's client certificate. Other
 * URLs: a plain channel. */
static CpChannel *
cp_process_discovery_create_channel (CpDiscovery  *discovery,
                                     const char   *url,
                                     GError      **error)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (discovery);
  g_autoptr(CpChannel) channel = NULL;

  if (self->automtls == NULL || !g_str_has_prefix (url, "https://"))
    {
      if (self->automtls != NULL)
        g_debug ("plugin %s serves %s: without AutoMTLS", self->name, url);
      return cp_channel_new (url, error);
    }
  /* At construction: the channel makes its connections with them from the
   * first (never reading the system CA bundle). */
  channel = g_object_new (CP_TYPE_CHANNEL, "base-url", url,
                          "tls-certificate", self->automtls->client_certificate,
                          "tls-database", self->automtls->database,
                          NULL);
  if (cp_channel_get_setup_error (channel) != NULL)
    {
      g_propagate_error (error, g_error_copy (cp_channel_get_setup_error (channel)));
      return NULL;
    }
  return g_steal_pointer (&channel);
}

static void
cp_process_discovery_iface_init (CpDiscoveryInterface *iface)
{
  iface->create_channel = cp_process_discovery_create_channel;
  iface->discover_async = cp_process_discovery_discover_async;
  iface->discover_finish = cp_process_discovery_discover_finish;
  iface->shutdown_async = cp_process_discovery_shutdown_async;
  iface->shutdown_finish = cp_process_discovery_shutdown_finish;
}

/* ---- GObject ---- */

static void
cp_process_discovery_dispose (GObject *object)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (object);

  cp_process_clear_source (&self->start_timeout);
  cp_process_clear_source (&self->restart_source);
  cp_process_clear_source (&self->escalate_source);
  if (self->launch != NULL)
    {
      Launch *launch = g_steal_pointer (&self->launch);

      /* Nobody asked it to stop: ask it now, without waiting. Its wait
       * callback cleans up once it is gone. */
      launch->self = NULL;
      cp_process_launch_cancel (launch);
      if (!launch->exited)
        g_subprocess_send_signal (launch->proc, SIGTERM);
      cp_process_launch_unref (launch);
    }

  G_OBJECT_CLASS (cp_process_discovery_parent_class)->dispose (object);
}

static void
cp_process_discovery_finalize (GObject *object)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (object);

  if (self->automtls_registered)
    cp_automtls_unregister (self->url);
  g_clear_pointer (&self->automtls, cp_automtls_free);
  g_clear_pointer (&self->argv, g_strfreev);
  g_clear_pointer (&self->environment, g_strfreev);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->host_url, g_free);
  if (self->control_secret != NULL)
    explicit_bzero (self->control_secret, strlen (self->control_secret));
  g_clear_pointer (&self->control_secret, g_free);
  g_clear_pointer (&self->url, g_free);
  g_clear_pointer (&self->exit_description, g_free);
  g_clear_pointer (&self->start_waiters, g_ptr_array_unref);
  g_clear_pointer (&self->stop_waiters, g_ptr_array_unref);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (cp_process_discovery_parent_class)->finalize (object);
}

static void
cp_process_discovery_constructed (GObject *object)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (object);

  G_OBJECT_CLASS (cp_process_discovery_parent_class)->constructed (object);

  if (self->argv == NULL || self->argv[0] == NULL)
    {
      if (self->url == NULL)
        g_critical ("CpProcessDiscovery needs either argv or url");
      else
        {
          self->attached = TRUE;
          self->state = CP_PROCESS_STATE_RUNNING;
        }
    }
  if (self->name == NULL)
    self->name = self->argv != NULL && self->argv[0] != NULL
      ? g_path_get_basename (self->argv[0])
      : g_strdup (self->url != NULL ? self->url : "plugin");
  self->next_delay_ms = self->restart_delay_ms;
}

static void
cp_process_discovery_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_ARGV:
      g_value_set_boxed (value, self->argv);
      break;
    case PROP_ENVIRONMENT:
      g_value_set_boxed (value, self->environment);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    case PROP_LISTEN_MODE:
      g_value_set_enum (value, self->listen_mode);
      break;
    case PROP_STARTUP_MODE:
      g_value_set_enum (value, self->startup_mode);
      break;
    case PROP_HOST_URL:
      g_value_set_string (value, self->host_url);
      break;
    case PROP_START_TIMEOUT_MS:
      g_value_set_uint (value, self->start_timeout_ms);
      break;
    case PROP_SHUTDOWN_GRACE_MS:
      g_value_set_uint (value, self->shutdown_grace_ms);
      break;
    case PROP_RESTART_POLICY:
      g_value_set_enum (value, self->restart_policy);
      break;
    case PROP_MAX_RESTARTS:
      g_value_set_int (value, self->max_restarts);
      break;
    case PROP_RESTART_DELAY_MS:
      g_value_set_uint (value, self->restart_delay_ms);
      break;
    case PROP_MAX_RESTART_DELAY_MS:
      g_value_set_uint (value, self->max_restart_delay_ms);
      break;
    case PROP_DIE_WITH_HOST:
      g_value_set_boolean (value, self->die_with_host);
      break;
    case PROP_CONTROL_SECRET:
      g_value_set_string (value, self->control_secret);
      break;
    case PROP_OUTPUT_LOG_LEVEL:
      g_value_set_uint (value, self->output_log_level);
      break;
    case PROP_AUTO_MTLS:
      g_value_set_boolean (value, self->auto_mtls);
      break;
    case PROP_AUTO_MTLS_LIFETIME:
      g_value_set_uint (value, self->auto_mtls_lifetime_s);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_PID:
      g_value_set_int (value, cp_process_discovery_get_pid (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_process_discovery_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_ARGV:
      self->argv = g_value_dup_boxed (value);
      break;
    case PROP_ENVIRONMENT:
      self->environment = g_value_dup_boxed (value);
      break;
    case PROP_NAME:
      self->name = g_value_dup_string (value);
      break;
    case PROP_URL:
      self->url = g_value_dup_string (value);
      break;
    case PROP_LISTEN_MODE:
      self->listen_mode = g_value_get_enum (value);
      break;
    case PROP_STARTUP_MODE:
      self->startup_mode = g_value_get_enum (value);
      break;
    case PROP_HOST_URL:
      g_free (self->host_url);
      self->host_url = g_value_dup_string (value);
      break;
    case PROP_START_TIMEOUT_MS:
      self->start_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_SHUTDOWN_GRACE_MS:
      self->shutdown_grace_ms = g_value_get_uint (value);
      break;
    case PROP_RESTART_POLICY:
      self->restart_policy = g_value_get_enum (value);
      break;
    case PROP_MAX_RESTARTS:
      self->max_restarts = g_value_get_int (value);
      break;
    case PROP_RESTART_DELAY_MS:
      self->restart_delay_ms = g_value_get_uint (value);
      self->next_delay_ms = self->restart_delay_ms;
      break;
    case PROP_MAX_RESTART_DELAY_MS:
      self->max_restart_delay_ms = g_value_get_uint (value);
      break;
    case PROP_DIE_WITH_HOST:
      self->die_with_host = g_value_get_boolean (value);
      break;
    case PROP_CONTROL_SECRET:
      {
        const char *secret = g_value_get_string (value);

        /* "" or NULL: generated per launch again. */
        self->control_secret_given = secret != NULL && secret[0] != '\0';
        if (self->control_secret_given || self->launch == NULL)
          cp_process_replace_control_secret (self, self->control_secret_given ? g_strdup (secret) : NULL);
      }
      break;
    case PROP_OUTPUT_LOG_LEVEL:
      cp_process_discovery_set_output_log_level (self, g_value_get_uint (value));
      break;
    case PROP_AUTO_MTLS:
      self->auto_mtls = g_value_get_boolean (value);
      break;
    case PROP_AUTO_MTLS_LIFETIME:
      self->auto_mtls_lifetime_s = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_process_discovery_class_init (CpProcessDiscoveryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags construct = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  GParamFlags settable = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS;

  object_class->dispose = cp_process_discovery_dispose;
  object_class->finalize = cp_process_discovery_finalize;
  object_class->constructed = cp_process_discovery_constructed;
  object_class->get_property = cp_process_discovery_get_property;
  object_class->set_property = cp_process_discovery_set_property;

  /**
   * CpProcessDiscovery:argv:
   *
   * The plugin's command line: the executable (a path, or a name looked up
   * in `PATH`) and its arguments.
   */
  properties[PROP_ARGV] =
    g_param_spec_boxed ("argv", NULL, NULL, G_TYPE_STRV, construct);

  /**
   * CpProcessDiscovery:environment:
   *
   * Extra `NAME=VALUE` environment entries for the plugin, on top of the
   * host's environment.
   */
  properties[PROP_ENVIRONMENT] =
    g_param_spec_boxed ("environment", NULL, NULL, G_TYPE_STRV, construct);

  /**
   * CpProcessDiscovery:name:
   *
   * The plugin's name in log records and error messages; the executable's
   * base name by default.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL, construct);

  /**
   * CpProcessDiscovery:url:
   *
   * The URL the running plugin serves (%NULL when none). Set at
   * construction without [property@ProcessDiscovery:argv] to re-attach to
   * a plugin that is already running there.
   */
  properties[PROP_URL] =
    g_param_spec_string ("url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpProcessDiscovery:listen-mode:
   *
   * Where the plugin is told to listen.
   */
  properties[PROP_LISTEN_MODE] =
    g_param_spec_enum ("listen-mode", NULL, NULL, CP_TYPE_LISTEN_MODE, CP_LISTEN_TCP,
                       settable);

  /**
   * CpProcessDiscovery:startup-mode:
   *
   * How the discovery learns where a launched plugin serves: from the
   * first line of its standard output (%CP_STARTUP_MODE_STDOUT_LINE, the
   * default), or by giving it a free port in `PORT` and waiting until
   * `127.0.0.1:PORT` accepts a connection (%CP_STARTUP_MODE_PORT, for
   * plugins written with connect-plugin-go, which print nothing). In port
   * mode [property@ProcessDiscovery:listen-mode] is ignored (the plugin
   * listens on TCP), `CONNECTPLUGIN_LISTEN` is set to `127.0.0.1:PORT`, and
   * the lines on the plugin's standard output are only logged.
   */
  properties[PROP_STARTUP_MODE] =
    g_param_spec_enum ("startup-mode", NULL, NULL, CP_TYPE_STARTUP_MODE,
                       CP_STARTUP_MODE_STDOUT_LINE, settable);

  /**
   * CpProcessDiscovery:host-url:
   *
   * The host's URL, given to plugins launched in %CP_STARTUP_MODE_PORT in
   * the environment variable `HOST_URL` (connect-plugin-go's plugins then
   * register with that host); %NULL (the default) sets no `HOST_URL`.
   */
  properties[PROP_HOST_URL] =
    g_param_spec_string ("host-url", NULL, NULL, NULL, settable);

  /**
   * CpProcessDiscovery:start-timeout-ms:
   *
   * How long a launched plugin has to announce its address; 0 for no limit.
   */
  properties[PROP_START_TIMEOUT_MS] =
    g_param_spec_uint ("start-timeout-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_START_TIMEOUT_MS, settable);

  /**
   * CpProcessDiscovery:shutdown-grace-ms:
   *
   * How long a plugin asked to shut down gets before `SIGTERM`, and again
   * before `SIGKILL`.
   */
  properties[PROP_SHUTDOWN_GRACE_MS] =
    g_param_spec_uint ("shutdown-grace-ms", NULL, NULL, 1, G_MAXUINT,
                       DEFAULT_SHUTDOWN_GRACE_MS, settable);

  /**
   * CpProcessDiscovery:restart-policy:
   *
   * Whether a plugin that exits on its own is launched again.
   */
  properties[PROP_RESTART_POLICY] =
    g_param_spec_enum ("restart-policy", NULL, NULL, CP_TYPE_RESTART_POLICY,
                       CP_RESTART_NEVER, settable);

  /**
   * CpProcessDiscovery:max-restarts:
   *
   * How many restarts in a row are tried before giving up; -1 for no limit.
   * A plugin that ran longer than
   * [property@ProcessDiscovery:max-restart-delay-ms] starts a new series.
   */
  properties[PROP_MAX_RESTARTS] =
    g_param_spec_int ("max-restarts", NULL, NULL, -1, G_MAXINT,
                      DEFAULT_MAX_RESTARTS, settable);

  /**
   * CpProcessDiscovery:restart-delay-ms:
   *
   * The delay before the first restart; it doubles for each further one.
   */
  properties[PROP_RESTART_DELAY_MS] =
    g_param_spec_uint ("restart-delay-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_RESTART_DELAY_MS, settable);

  /**
   * CpProcessDiscovery:max-restart-delay-ms:
   *
   * The longest delay between restarts.
   */
  properties[PROP_MAX_RESTART_DELAY_MS] =
    g_param_spec_uint ("max-restart-delay-ms", NULL, NULL, 0, G_MAXUINT,
                       DEFAULT_MAX_RESTART_DELAY_MS, settable);

  /**
   * CpProcessDiscovery:die-with-host:
   *
   * Whether a launched plugin gets `SIGTERM` when the host process dies
   * without shutting it down (Linux: `PR_SET_PDEATHSIG`; elsewhere it has
   * no effect). The kernel ties this to the thread that launched the
   * plugin: turn it off when launching from a thread that ends before the
   * host does.
   */
  properties[PROP_DIE_WITH_HOST] =
    g_param_spec_boolean ("die-with-host", NULL, NULL, TRUE, settable);

  /**
   * CpProcessDiscovery:control-secret:
   *
   * The secret the plugin's PluginControl and PluginIdentity calls carry
   * (`Authorization: Bearer SECRET`, see [property@Server:control-secret]).
   * Unless set, a fresh one is generated for each launch and given to the
   * plugin in the environment variable `CONNECTPLUGIN_CONTROL_SECRET`; it
   * can be read here while the plugin runs (keep it secret). Set it for a
   * re-attached plugin ([ctor@ConnectPlugin.ProcessDiscovery.new_attach]): the secret it
   * was launched with. A secret set here is given to every launch.
   */
  properties[PROP_CONTROL_SECRET] =
    g_param_spec_string ("control-secret", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpProcessDiscovery:output-log-level:
   *
   * The level at which the plain lines a launched plugin prints on its
   * standard output and standard error are forwarded to the host's log:
   * one of %G_LOG_LEVEL_DEBUG (the default), %G_LOG_LEVEL_INFO,
   * %G_LOG_LEVEL_MESSAGE and %G_LOG_LEVEL_WARNING (a
   * [flags@GLib.LogLevelFlags] value; the property is an unsigned integer
   * because GLib registers no type for those flags). Lines that GLib's
   * default log writer printed in the plugin keep their own level (see
   * [class@ProcessDiscovery]).
   */
  properties[PROP_OUTPUT_LOG_LEVEL] =
    g_param_spec_uint ("output-log-level", NULL, NULL,
                       G_LOG_LEVEL_WARNING, G_LOG_LEVEL_DEBUG, G_LOG_LEVEL_DEBUG,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpProcessDiscovery:auto-mtls:
   *
   * Whether plugins launched over TCP are reached through mutual TLS with
   * ephemeral certificates (AutoMTLS; %TRUE by default). For each launch
   * the discovery makes a CA (ECDSA P-256, with GnuTLS), a server
   * certificate for `127.0.0.1`/`localhost` and a client certificate, both
   * signed by it, and drops the CA's key. The plugin gets its certificate,
   * its key and the CA through a pipe it inherits, whose descriptor number
   * is in its environment ([const@ConnectPlugin.AUTOMTLS_FD_ENV]; never in
   * argv, the environment or a file; the host makes them while the plugin
   * starts, and [method@ConnectPlugin.Server.run] reads and closes the
   * pipe), with the host's client certificate; it serves `https://` and
   * accepts only a client presenting that exact certificate; the host's
   * channels to it accept only the exact server certificate the host made
   * and present the client certificate. Another local process can thus
   * neither call the plugin
   * nor pretend to be it. A plugin that does not know AutoMTLS (it
   * announces `http://`, as connect-plugin-go's do) is reached in plain
   * text. Not used in [enum@ConnectPlugin.StartupMode.PORT] mode (the host
   * assumes `http://` there) nor over a unix socket, whose directory is
   * private to the user (mode 0700). Takes effect at the next launch.
   */
  properties[PROP_AUTO_MTLS] =
    g_param_spec_boolean ("auto-mtls", NULL, NULL, TRUE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpProcessDiscovery:auto-mtls-lifetime:
   *
   * How long, in seconds, the AutoMTLS certificates of a launch are valid
   * (24 hours by default; at least 60). Past it, the plugin's connections
   * already open keep working but new ones fail: raise it for plugins that
   * run longer, or restart them. Takes effect at the next launch.
   */
  properties[PROP_AUTO_MTLS_LIFETIME] =
    g_param_spec_uint ("auto-mtls-lifetime", NULL, NULL, 60, G_MAXUINT32 / 2, 24 * 3600,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpProcessDiscovery:state:
   *
   * Where the plugin process is in its life cycle.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, CP_TYPE_PROCESS_STATE,
                       CP_PROCESS_STATE_STOPPED,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpProcessDiscovery:pid:
   *
   * The process id of the running plugin, 0 when none.
   */
  properties[PROP_PID] =
    g_param_spec_int ("pid", NULL, NULL, 0, G_MAXINT, 0,
                      G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * CpProcessDiscovery::exited:
   * @self: the discovery
   * @exit_status: the exit status, or -1 when the process was killed
   * @term_signal: the signal that killed the process, or 0
   *
   * The plugin process ended, whether asked to or not (see
   * [property@ProcessDiscovery:state]).
   */
  signals[SIGNAL_EXITED] =
    g_signal_new ("exited", G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);
}

static void
cp_process_discovery_init (CpProcessDiscovery *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->start_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  self->stop_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  self->start_timeout_ms = DEFAULT_START_TIMEOUT_MS;
  self->shutdown_grace_ms = DEFAULT_SHUTDOWN_GRACE_MS;
  self->max_restarts = DEFAULT_MAX_RESTARTS;
  self->restart_delay_ms = DEFAULT_RESTART_DELAY_MS;
  self->max_restart_delay_ms = DEFAULT_MAX_RESTART_DELAY_MS;
  self->die_with_host = TRUE;
  self->output_log_level = G_LOG_LEVEL_DEBUG;
  self->auto_mtls = TRUE;
  self->auto_mtls_lifetime_s = 24 * 3600;
}

/**
 * cp_process_discovery_new:
 * @argv: (array zero-terminated=1): the plugin's command line
 *
 * Creates a discovery that launches the plugin executable @argv.
 *
 * Returns: (transfer full): a discovery that launches @argv when first asked
 */
CpProcessDiscovery *
cp_process_discovery_new (const char * const *argv)
{
  g_return_val_if_fail (argv != NULL && argv[0] != NULL, NULL);

  return g_object_new (CP_TYPE_PROCESS_DISCOVERY, "argv", argv, NULL);
}

/**
 * cp_process_discovery_new_attach:
 * @url: the address of a plugin that is already running
 *
 * Creates a discovery that re-attaches to a plugin already running at @url and launches nothing.
 *
 * Returns: (transfer full): a discovery for the plugin serving @url, which
 *   it did not launch
 */
CpProcessDiscovery *
cp_process_discovery_new_attach (const char *url)
{
  g_return_val_if_fail (url != NULL, NULL);

  return g_object_new (CP_TYPE_PROCESS_DISCOVERY, "url", url, NULL);
}

/**
 * cp_process_discovery_get_name:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 *
 * Gets the plugin's name, used in log messages.
 *
 * Returns: (transfer none): the plugin's name in logs
 */
const char *
cp_process_discovery_get_name (CpProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_PROCESS_DISCOVERY (self), NULL);

  return self->name;
}

/**
 * cp_process_discovery_get_state:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 *
 * Gets the state of the plugin process.
 *
 * Returns: the state of the plugin process
 */
CpProcessState
cp_process_discovery_get_state (CpProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_PROCESS_DISCOVERY (self), CP_PROCESS_STATE_STOPPED);

  return self->state;
}

/**
 * cp_process_discovery_get_url:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 *
 * Gets the URL the plugin announced, if it is running.
 *
 * Returns: (transfer none) (nullable): the URL the plugin serves, %NULL
 *   when it is not running
 */
const char *
cp_process_discovery_get_url (CpProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_PROCESS_DISCOVERY (self), NULL);

  return self->url;
}

/**
 * cp_process_discovery_get_pid:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 *
 * Gets the process id of the running plugin.
 *
 * Returns: the plugin's process id, 0 when no process is running (or the
 *   plugin was re-attached)
 */
GPid
cp_process_discovery_get_pid (CpProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_PROCESS_DISCOVERY (self), 0);

  if (self->launch == NULL || self->launch->pid == NULL)
    return 0;
  return (GPid) g_ascii_strtoll (self->launch->pid, NULL, 10);
}

/**
 * cp_process_discovery_get_output_log_level:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 *
 * Gets [property@ProcessDiscovery:output-log-level].
 *
 * Returns: the level at which the plugin's plain output lines are logged
 */
GLogLevelFlags
cp_process_discovery_get_output_log_level (CpProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_PROCESS_DISCOVERY (self), G_LOG_LEVEL_DEBUG);

  return self->output_log_level;
}

/**
 * cp_process_discovery_set_output_log_level:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 * @level: %G_LOG_LEVEL_DEBUG, %G_LOG_LEVEL_INFO, %G_LOG_LEVEL_MESSAGE or
 *   %G_LOG_LEVEL_WARNING
 *
 * Sets [property@ProcessDiscovery:output-log-level]: the level at which
 * the plain lines the plugin prints are forwarded to the host's log, from
 * the next line on.
 */
void
cp_process_discovery_set_output_log_level (CpProcessDiscovery *self,
                                           GLogLevelFlags      level)
{
  g_return_if_fail (CP_IS_PROCESS_DISCOVERY (self));
  g_return_if_fail (level == G_LOG_LEVEL_DEBUG || level == G_LOG_LEVEL_INFO ||
                    level == G_LOG_LEVEL_MESSAGE || level == G_LOG_LEVEL_WARNING);

  if (self->output_log_level == level)
    return;
  self->output_log_level = level;
  cp_process_notify (self, PROP_OUTPUT_LOG_LEVEL);
}

/**
 * cp_process_discovery_get_restart_count:
 * @self: a [class@ConnectPlugin.ProcessDiscovery]
 *
 * Gets how many times the plugin was launched again after it exited.
 *
 * Returns: how many times in a row the plugin was restarted
 */
guint
cp_process_discovery_get_restart_count (CpProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_PROCESS_DISCOVERY (self), 0);

  return self->restart_count;
}
