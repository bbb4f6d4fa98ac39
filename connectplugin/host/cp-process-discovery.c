/* cp-process-discovery.c: plugins launched as child processes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cp-process-discovery.h"
#include "cp-host-enum-types.h"
#include "cp-error.h"
#include "cp-plugin-constants.h"
#include "cp-runtime-identity-private.h"
#include "control.cp.h"

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
 * forwarded to the host's structured log (g_log_structured(), log domain
 * `ConnectPlugin`, level %G_LOG_LEVEL_MESSAGE) with the field `CP_PLUGIN`
 * set to the plugin's name and `CP_PLUGIN_STREAM` to `stderr` or `stdout`.
 *
 * The end of the child is noticed at once (g_subprocess_wait_async();
 * reported once its standard error is drained, so that its last words are
 * logged and quoted in start-up errors, waiting at most half a second for
 * that): the state changes to %CP_PROCESS_STATE_EXITED and
 * [signal@ProcessDiscovery::exited] and [signal@Discovery::changed] are
 * emitted; with a [property@ProcessDiscovery:restart-policy] the plugin is
 * launched again after an exponential backoff.
 *
 * cp_process_discovery_stop_async() (also cp_discovery_shutdown_async(),
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
 * (cp_client_new_control_call_options()).
 *
 * With cp_process_discovery_new_attach() the discovery launches nothing:
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
#define EXIT_GRACE_MS                500

/* One launched child process. Outlives the discovery if need be: the
 * pending wait/read operations hold references, and find self == NULL. */
typedef struct {
  CpProcessDiscovery *self;     /* NULL once detached */
  GSubprocess *proc;
  GCancellable *cancellable;    /* of the pipe readers */
  GDataInputStream *out;
  GDataInputStream *err;
  char *pid;
  char *tmpdir;                 /* unix socket directory, removed at the end */
  char *socket_path;
  char *last_stderr;            /* for start-up error messages */
  gint64 started_at;
  gboolean announced;
  gboolean exited;              /* reaped */
  gboolean err_eof;             /* its stderr is drained */
  gboolean exit_handled;
  GSource *exit_grace;          /* waits for stderr to drain after the exit */
} Launch;

struct _CpProcessDiscovery
{
  GObject parent_instance;

  GStrv argv;
  GStrv environment;
  char *name;
  CpListenMode listen_mode;
  guint start_timeout_ms;
  guint shutdown_grace_ms;
  CpRestartPolicy restart_policy;
  int max_restarts;
  guint restart_delay_ms;
  guint max_restart_delay_ms;
  gboolean die_with_host;
  char *control_secret;
  gboolean control_secret_given;  /* set by the user: not replaced per launch */

  GMainContext *context;
  CpProcessState state;
  char *url;
  gboolean attached;
  char *exit_description;       /* why the last process ended */

  Launch *launch;
  GPtrArray *start_waiters;     /* GTask */
  GPtrArray *stop_waiters;      /* GTask */
  GSource *start_timeout;
  GSource *restart_source;
  GSource *escalate_source;
  guint escalation;             /* 0: Shutdown RPC, 1: SIGTERM sent, 2: SIGKILL */
  guint restart_count;
  guint next_delay_ms;
  gboolean restarting;          /* the current launch is a restart */
};

enum {
  PROP_0,
  PROP_ARGV,
  PROP_ENVIRONMENT,
  PROP_NAME,
  PROP_URL,
  PROP_LISTEN_MODE,
  PROP_START_TIMEOUT_MS,
  PROP_SHUTDOWN_GRACE_MS,
  PROP_RESTART_POLICY,
  PROP_MAX_RESTARTS,
  PROP_RESTART_DELAY_MS,
  PROP_MAX_RESTART_DELAY_MS,
  PROP_DIE_WITH_HOST,
  PROP_CONTROL_SECRET,
  PROP_STATE,
  PROP_PID,
  N_PROPS
};

enum {
  SIGNAL_EXITED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void cp_process_discovery_iface_init (CpDiscoveryInterface *iface);
static void launch_next_line (Launch *launch, GDataInputStream *stream);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpProcessDiscovery, cp_process_discovery, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (CP_TYPE_DISCOVERY,
                                                      cp_process_discovery_iface_init))

/* ---- the launch record ---- */

static void
launch_clear (gpointer data)
{
  Launch *launch = data;

  if (launch->exit_grace != NULL)
    {
      g_source_destroy (launch->exit_grace);
      g_clear_pointer (&launch->exit_grace, g_source_unref);
    }
  g_clear_object (&launch->proc);
  g_clear_object (&launch->cancellable);
  g_clear_object (&launch->out);
  g_clear_object (&launch->err);
  if (launch->socket_path != NULL)
    g_unlink (launch->socket_path);
  if (launch->tmpdir != NULL)
    g_rmdir (launch->tmpdir);
  g_free (launch->socket_path);
  g_free (launch->tmpdir);
  g_free (launch->pid);
  g_free (launch->last_stderr);
}

static Launch *
launch_ref (Launch *launch)
{
  return g_rc_box_acquire (launch);
}

static void
launch_unref (Launch *launch)
{
  g_rc_box_release_full (launch, launch_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Launch, launch_unref)

/* ---- helpers ---- */

static void
set_state (CpProcessDiscovery *self,
           CpProcessState      state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
set_url (CpProcessDiscovery *self,
         const char         *url)
{
  if (g_strcmp0 (self->url, url) == 0)
    return;
  g_free (self->url);
  self->url = g_strdup (url);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_URL]);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static GSource *
add_timeout (CpProcessDiscovery *self,
             guint               ms,
             GSourceFunc         func)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, self, NULL);
  g_source_set_static_name (source, "[connectplugin] process discovery");
  g_source_attach (source, self->context);
  return source;
}

static void
complete_waiters (GPtrArray    **waiters,
                  const char    *url,
                  const GError  *error)
{
  g_autoptr(GPtrArray) tasks = g_steal_pointer (waiters);

  *waiters = g_ptr_array_new_with_free_func (g_object_unref);
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

static void
log_plugin_line (CpProcessDiscovery *self,
                 Launch             *launch,
                 const char         *stream,
                 const char         *line)
{
  const char *name = self != NULL ? self->name : "plugin";
  g_autofree char *valid = g_utf8_make_valid (line, -1);

  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE,
                    "CP_PLUGIN", name,
                    "CP_PLUGIN_STREAM", stream,
                    "CP_PLUGIN_PID", launch->pid != NULL ? launch->pid : "",
                    "MESSAGE", "%s: %s", name, valid);
}

/* Events of the plugin's life worth a line in the host's log (not
 * warnings: a plugin crashing is not a bug of the host). */
static void plugin_event (CpProcessDiscovery *self,
                          const char         *format,
                          ...) G_GNUC_PRINTF (2, 3);

static void
plugin_event (CpProcessDiscovery *self,
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

static char *
describe_exit (GSubprocess *proc)
{
  if (g_subprocess_get_if_signaled (proc))
    {
      int sig = g_subprocess_get_term_sig (proc);
      return g_strdup_printf ("killed by signal %d (%s)", sig, g_strsignal (sig));
    }
  return g_strdup_printf ("exit status %d", g_subprocess_get_exit_status (proc));
}

/* ---- restarts ---- */

static gboolean launch_process (CpProcessDiscovery *self, GError **error);

static gboolean
restart_cb (gpointer user_data)
{
  CpProcessDiscovery *self = user_data;
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&self->restart_source, g_source_unref);
  self->restart_count++;
  self->restarting = TRUE;
  g_debug ("restarting plugin %s (restart %u)", self->name, self->restart_count);
  if (!launch_process (self, &error))
    {
      plugin_event (self, "could not be restarted: %s", error->message);
      g_free (self->exit_description);
      self->exit_description = g_strdup (error->message);
      set_state (self, CP_PROCESS_STATE_EXITED);
      complete_waiters (&self->start_waiters, NULL, error);
    }
  return G_SOURCE_REMOVE;
}

static void
maybe_restart (CpProcessDiscovery *self,
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
      plugin_event (self, "keeps failing: giving up after %u restarts", self->restart_count);
      return;
    }

  set_state (self, CP_PROCESS_STATE_RESTARTING);
  clear_source (&self->restart_source);
  self->restart_source = add_timeout (self, self->next_delay_ms, restart_cb);
  self->next_delay_ms = MIN ((guint64) self->next_delay_ms * 2, self->max_restart_delay_ms);
}

/* ---- start-up ---- */

/* The current launch failed before it announced an address. */
static void
start_failed (CpProcessDiscovery *self,
              GError             *error)
{
  Launch *launch = self->launch;
  gint64 ran = launch != NULL ? g_get_monotonic_time () - launch->started_at : 0;

  clear_source (&self->start_timeout);
  if (launch != NULL)
    {
      /* Detach it: its wait callback only cleans up. */
      launch->self = NULL;
      g_cancellable_cancel (launch->cancellable);
      if (!launch->exited)
        g_subprocess_force_exit (launch->proc);
      self->launch = NULL;
      launch_unref (launch);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
    }
  g_free (self->exit_description);
  self->exit_description = g_strdup (error->message);
  set_state (self, CP_PROCESS_STATE_EXITED);
  complete_waiters (&self->start_waiters, NULL, error);
  g_error_free (error);
  maybe_restart (self, TRUE, ran);
}

static gboolean
start_timeout_cb (gpointer user_data)
{
  CpProcessDiscovery *self = user_data;

  g_clear_pointer (&self->start_timeout, g_source_unref);
  start_failed (self, g_error_new (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                   "plugin %s did not announce its address within %u ms",
                                   self->name, self->start_timeout_ms));
  return G_SOURCE_REMOVE;
}

static gboolean
valid_announcement (const char *line)
{
  g_autoptr(GUri) uri = NULL;

  if (g_str_has_prefix (line, "unix:/"))
    return TRUE;
  if (!g_str_has_prefix (line, "http://") && !g_str_has_prefix (line, "https://"))
    return FALSE;
  uri = g_uri_parse (line, G_URI_FLAGS_NONE, NULL);
  return uri != NULL && g_uri_get_host (uri) != NULL && g_uri_get_port (uri) > 0;
}

static void
announced (CpProcessDiscovery *self,
           Launch             *launch,
           char               *line)
{
  /* Those who wait (clients reconnecting since the exit) get the new
   * address; "changed" is for the others. */
  gboolean restarted = self->restarting && self->start_waiters->len == 0;

  g_strstrip (line);
  if (!valid_announcement (line))
    {
      g_autofree char *valid = g_utf8_make_valid (line, -1);

      start_failed (self, g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                       "plugin %s announced “%s” instead of its address "
                                       "(the first line on its standard output must be "
                                       "the URL it serves)", self->name, valid));
      return;
    }

  launch->announced = TRUE;
  clear_source (&self->start_timeout);
  self->restarting = FALSE;
  set_url (self, line);
  set_state (self, CP_PROCESS_STATE_RUNNING);
  g_debug ("plugin %s (pid %s) serves %s", self->name, launch->pid, line);
  complete_waiters (&self->start_waiters, line, NULL);
  if (restarted)
    cp_discovery_emit_changed (CP_DISCOVERY (self));
}

static void handle_exit (Launch *launch);

typedef struct {
  Launch *launch;
  GDataInputStream *stream;
} ReadData;

static void
read_line_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ReadData *data = user_data;
  g_autoptr(Launch) launch = data->launch;
  GDataInputStream *stream = data->stream;
  CpProcessDiscovery *self = launch->self;
  gboolean is_stdout = stream == launch->out;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  gsize len;

  g_free (data);
  line = g_data_input_stream_read_line_finish_utf8 (stream, result, &len, &error);
  if (line == NULL && error != NULL &&
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA))
    {
      /* Not UTF-8: read it as bytes next time round is not possible with
       * the _utf8 variant's consumed data; say so and go on. */
      g_clear_error (&error);
      line = g_strdup ("(invalid UTF-8 output)");
    }
  if (line == NULL)
    {
      /* End of the stream or cancelled. A plugin that closes its standard
       * output before announcing is handled by its exit or the timeout. */
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      if (error != NULL)
        g_debug ("plugin %s: reading its output: %s",
                 self != NULL ? self->name : "?", error->message);
      if (!is_stdout)
        {
          launch->err_eof = TRUE;
          /* Its last words are in: the exit can be told. */
          if (launch->exited && !launch->exit_handled)
            handle_exit (launch);
        }
      return;
    }
  if (len > 0 && line[len - 1] == '\r')
    line[len - 1] = '\0';

  if (self != NULL && is_stdout && !launch->announced && self->launch == launch &&
      self->state == CP_PROCESS_STATE_STARTING)
    announced (self, launch, line);
  else
    {
      log_plugin_line (self, launch, is_stdout ? "stdout" : "stderr", line);
      if (!is_stdout)
        {
          g_free (launch->last_stderr);
          launch->last_stderr = g_steal_pointer (&line);
        }
    }

  launch_next_line (launch, stream);
}

static void
launch_next_line (Launch           *launch,
                  GDataInputStream *stream)
{
  ReadData *data = g_new0 (ReadData, 1);

  data->launch = launch_ref (launch);
  data->stream = stream;
  g_data_input_stream_read_line_async (stream, G_PRIORITY_DEFAULT, launch->cancellable,
                                       read_line_cb, data);
}

static void
stop_finished (CpProcessDiscovery *self);

/* The process ended and its standard error is drained (or the grace
 * period for that is over). */
static void
handle_exit (Launch *launch)
{
  CpProcessDiscovery *self = launch->self;
  g_autofree char *how = NULL;
  gboolean failed;
  gint64 ran;
  int code = -1, sig = 0;

  launch->exit_handled = TRUE;
  if (launch->exit_grace != NULL)
    {
      g_source_destroy (launch->exit_grace);
      g_clear_pointer (&launch->exit_grace, g_source_unref);
    }
  if (self == NULL || self->launch != launch)
    return;

  g_object_ref (self);
  launch_ref (launch);
  how = describe_exit (launch->proc);
  if (g_subprocess_get_if_signaled (launch->proc))
    sig = g_subprocess_get_term_sig (launch->proc);
  else
    code = g_subprocess_get_exit_status (launch->proc);
  failed = sig != 0 || code != 0;
  ran = g_get_monotonic_time () - launch->started_at;

  self->launch = NULL;
  launch->self = NULL;
  launch_unref (launch);   /* self's reference (this function holds one) */
  g_free (self->exit_description);
  self->exit_description = g_strdup_printf ("plugin %s exited (%s)", self->name, how);
  set_url (self, NULL);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);

  switch (self->state)
    {
    case CP_PROCESS_STATE_STOPPING:
      g_debug ("plugin %s stopped (%s)", self->name, how);
      set_state (self, CP_PROCESS_STATE_STOPPED);
      g_signal_emit (self, signals[SIGNAL_EXITED], 0, code, sig);
      stop_finished (self);
      break;

    case CP_PROCESS_STATE_STARTING:
      {
        GError *error = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                     "plugin %s exited during start-up (%s)%s%s",
                                     self->name, how,
                                     launch->last_stderr != NULL ? ": " : "",
                                     launch->last_stderr != NULL ? launch->last_stderr : "");
        clear_source (&self->start_timeout);
        g_free (self->exit_description);
        self->exit_description = g_strdup (error->message);
        set_state (self, CP_PROCESS_STATE_EXITED);
        g_signal_emit (self, signals[SIGNAL_EXITED], 0, code, sig);
        complete_waiters (&self->start_waiters, NULL, error);
        g_error_free (error);
        maybe_restart (self, TRUE, ran);
      }
      break;

    default:
      plugin_event (self, "exited unexpectedly (%s)", how);
      set_state (self, CP_PROCESS_STATE_EXITED);
      g_signal_emit (self, signals[SIGNAL_EXITED], 0, code, sig);
      /* Restart first, so that those reacting to "changed" wait for the
       * new process instead of finding the plugin gone. */
      maybe_restart (self, failed, ran);
      cp_discovery_emit_changed (CP_DISCOVERY (self));
      break;
    }
  launch_unref (launch);
  g_object_unref (self);
}

static gboolean
exit_grace_cb (gpointer user_data)
{
  Launch *launch = user_data;

  if (!launch->exit_handled)
    handle_exit (launch);
  return G_SOURCE_REMOVE;
}

static void
wait_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(Launch) launch = user_data;
  CpProcessDiscovery *self = launch->self;

  /* The wait never fails without a cancellable. */
  g_subprocess_wait_finish (launch->proc, result, NULL);
  launch->exited = TRUE;
  if (self == NULL || self->launch != launch)
    return;

  if (launch->err_eof)
    handle_exit (launch);
  else
    {
      /* Its standard error may still hold its last words (why it failed):
       * they arrive with the end of the pipe, at once unless a child of
       * the plugin keeps the pipe open. */
      launch->exit_grace = g_timeout_source_new (EXIT_GRACE_MS);
      g_source_set_callback (launch->exit_grace, exit_grace_cb, launch_ref (launch),
                             (GDestroyNotify) launch_unref);
      g_source_set_static_name (launch->exit_grace, "[connectplugin] plugin exit");
      g_source_attach (launch->exit_grace, self->context);
    }
}

#ifdef __linux__
/* In the child, before exec: async-signal-safe calls only. */
static void
die_with_host_setup (gpointer user_data)
{
  pid_t host = (pid_t) GPOINTER_TO_INT (user_data);

  prctl (PR_SET_PDEATHSIG, SIGTERM);
  /* The host may have died before prctl () took effect. */
  if (getppid () != host)
    _exit (1);
}
#endif

/* Takes @secret (transfer full, nullable). */
static void
replace_control_secret (CpProcessDiscovery *self,
                        char               *secret)
{
  if (self->control_secret != NULL)
    explicit_bzero (self->control_secret, strlen (self->control_secret));
  g_free (self->control_secret);
  self->control_secret = secret;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONTROL_SECRET]);
}

static gboolean
launch_process (CpProcessDiscovery  *self,
                GError             **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(Launch) launch = g_rc_box_new0 (Launch);
  g_autoptr(GError) local_error = NULL;
  g_autofree char *listen = NULL;

  g_assert (self->launch == NULL);

  if (self->listen_mode == CP_LISTEN_UNIX)
    {
      launch->tmpdir = g_dir_make_tmp ("connectplugin-XXXXXX", &local_error);
      if (launch->tmpdir == NULL)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "could not make a socket directory for plugin %s: %s",
                       self->name, local_error->message);
          return FALSE;
        }
      launch->socket_path = g_build_filename (launch->tmpdir, "plugin.sock", NULL);
      listen = g_strconcat ("unix:", launch->socket_path, NULL);
    }
  else
    listen = g_strdup ("127.0.0.1:0");

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_stdin_file_path (launcher, "/dev/null");
  for (guint i = 0; self->environment != NULL && self->environment[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (self->environment[i], "=", 2);

      if (kv[0] != NULL && kv[1] != NULL)
        g_subprocess_launcher_setenv (launcher, kv[0], kv[1], TRUE);
    }
  g_subprocess_launcher_setenv (launcher, CP_LISTEN_ENV, listen, TRUE);
  /* In the environment, never in argv: /proc/PID/cmdline is world-readable. */
  if (!self->control_secret_given)
    replace_control_secret (self, cp_generate_token (32));
  g_subprocess_launcher_setenv (launcher, CP_CONTROL_SECRET_ENV, self->control_secret, TRUE);
#ifdef __linux__
  if (self->die_with_host)
    g_subprocess_launcher_set_child_setup (launcher, die_with_host_setup,
                                           GINT_TO_POINTER ((int) getpid ()), NULL);
#endif

  launch->proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) self->argv,
                                               &local_error);
  if (launch->proc == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE,
                   "could not launch plugin %s: %s", self->name, local_error->message);
      return FALSE;
    }

  launch->self = self;
  launch->cancellable = g_cancellable_new ();
  launch->pid = g_strdup (g_subprocess_get_identifier (launch->proc));
  launch->started_at = g_get_monotonic_time ();
  launch->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (launch->proc));
  launch->err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (launch->proc));
  g_data_input_stream_set_newline_type (launch->out, G_DATA_STREAM_NEWLINE_TYPE_LF);
  g_data_input_stream_set_newline_type (launch->err, G_DATA_STREAM_NEWLINE_TYPE_LF);

  self->launch = launch_ref (launch);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
  set_state (self, CP_PROCESS_STATE_STARTING);

  g_subprocess_wait_async (launch->proc, NULL, wait_cb, launch_ref (launch));
  launch_next_line (launch, launch->out);
  launch_next_line (launch, launch->err);
  if (self->start_timeout_ms > 0)
    self->start_timeout = add_timeout (self, self->start_timeout_ms, start_timeout_cb);

  g_debug ("launched plugin %s (pid %s), listening on %s", self->name, launch->pid, listen);
  return TRUE;
}

/* ---- stopping ---- */

static void
stop_finished (CpProcessDiscovery *self)
{
  clear_source (&self->escalate_source);
  complete_waiters (&self->stop_waiters, NULL, NULL);
}

static gboolean
escalate_cb (gpointer user_data)
{
  CpProcessDiscovery *self = user_data;
  Launch *launch = self->launch;

  clear_source (&self->escalate_source);
  if (launch == NULL || launch->exited)
    return G_SOURCE_REMOVE;

  if (self->escalation == 0)
    {
      g_debug ("plugin %s: sending SIGTERM", self->name);
      self->escalation = 1;
      g_subprocess_send_signal (launch->proc, SIGTERM);
      self->escalate_source = add_timeout (self, self->shutdown_grace_ms, escalate_cb);
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
          set_url (self, NULL);
          set_state (self, CP_PROCESS_STATE_STOPPED);
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
      clear_source (&self->escalate_source);
      escalate_cb (self);
    }

  if (call->launch != NULL)
    launch_unref (call->launch);
  g_object_unref (call->self);
  g_free (call);
}

static void
send_shutdown_rpc (CpProcessDiscovery *self,
                   GTask              *task)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_channel_new (self->url, &error);
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
  call->launch = self->launch != NULL ? launch_ref (self->launch) : NULL;
  call->task = task != NULL ? g_object_ref (task) : NULL;
  cp_channel_call_async (channel, CP_PROCEDURE_CONTROL_SHUTDOWN, CP_MESSAGE (request),
                         CP_TYPE_SHUTDOWN_RESPONSE, options, NULL, shutdown_rpc_cb, call);
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
      g_ptr_array_add (self->start_waiters, g_object_ref (task));
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

  clear_source (&self->restart_source);
  self->restarting = FALSE;
  self->restart_count = 0;
  self->next_delay_ms = self->restart_delay_ms;
  g_ptr_array_add (self->start_waiters, g_object_ref (task));
  if (!launch_process (self, &error))
    {
      g_free (self->exit_description);
      self->exit_description = g_strdup (error->message);
      set_state (self, CP_PROCESS_STATE_EXITED);
      complete_waiters (&self->start_waiters, NULL, error);
    }
}

/**
 * cp_process_discovery_start_async:
 * @self: a #CpProcessDiscovery
 * @cancellable: (nullable): a #GCancellable (cancels the wait, not the launch)
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
  g_task_set_return_on_cancel (task, TRUE);
  start_internal (self, task);
}

/**
 * cp_process_discovery_start_finish:
 * @self: a #CpProcessDiscovery
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes cp_process_discovery_start_async().
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

/**
 * cp_process_discovery_stop_async:
 * @self: a #CpProcessDiscovery
 * @cancellable: (nullable): a #GCancellable (cancels the wait, not the shutdown)
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
  g_task_set_return_on_cancel (task, TRUE);

  clear_source (&self->restart_source);
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
      set_state (self, CP_PROCESS_STATE_STOPPED);
      complete_waiters (&self->start_waiters, NULL, error);
      g_task_return_boolean (task, TRUE);
      return;
    }

  g_ptr_array_add (self->stop_waiters, g_object_ref (task));
  if (self->state == CP_PROCESS_STATE_STOPPING)
    return;

  if (self->state == CP_PROCESS_STATE_STARTING)
    {
      g_autoptr(GError) error = g_error_new (CP_ERROR, CP_ERROR_CANCELED,
                                             "plugin %s was stopped during start-up",
                                             self->name);
      clear_source (&self->start_timeout);
      complete_waiters (&self->start_waiters, NULL, error);
    }

  set_state (self, CP_PROCESS_STATE_STOPPING);
  self->escalation = 0;
  clear_source (&self->escalate_source);
  if (launch->announced && self->url != NULL)
    {
      self->escalate_source = add_timeout (self, self->shutdown_grace_ms, escalate_cb);
      send_shutdown_rpc (self, NULL);
    }
  else
    escalate_cb (self);
}

/**
 * cp_process_discovery_stop_finish:
 * @self: a #CpProcessDiscovery
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes cp_process_discovery_stop_async().
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
  g_task_set_return_on_cancel (task, TRUE);

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

static void
cp_process_discovery_iface_init (CpDiscoveryInterface *iface)
{
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

  clear_source (&self->start_timeout);
  clear_source (&self->restart_source);
  clear_source (&self->escalate_source);
  if (self->launch != NULL)
    {
      Launch *launch = g_steal_pointer (&self->launch);

      /* Nobody asked it to stop: ask it now, without waiting. Its wait
       * callback cleans up once it is gone. */
      launch->self = NULL;
      g_cancellable_cancel (launch->cancellable);
      if (!launch->exited)
        g_subprocess_send_signal (launch->proc, SIGTERM);
      launch_unref (launch);
    }

  G_OBJECT_CLASS (cp_process_discovery_parent_class)->dispose (object);
}

static void
cp_process_discovery_finalize (GObject *object)
{
  CpProcessDiscovery *self = CP_PROCESS_DISCOVERY (object);

  g_clear_pointer (&self->argv, g_strfreev);
  g_clear_pointer (&self->environment, g_strfreev);
  g_clear_pointer (&self->name, g_free);
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
          replace_control_secret (self, self->control_secret_given ? g_strdup (secret) : NULL);
      }
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
   * re-attached plugin (cp_process_discovery_new_attach()): the secret it
   * was launched with. A secret set here is given to every launch.
   */
  properties[PROP_CONTROL_SECRET] =
    g_param_spec_string ("control-secret", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

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
}

/**
 * cp_process_discovery_new:
 * @argv: (array zero-terminated=1): the plugin's command line
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
 * @self: a #CpProcessDiscovery
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
 * @self: a #CpProcessDiscovery
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
 * @self: a #CpProcessDiscovery
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
 * @self: a #CpProcessDiscovery
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
 * cp_process_discovery_get_restart_count:
 * @self: a #CpProcessDiscovery
 *
 * Returns: how many times in a row the plugin was restarted
 */
guint
cp_process_discovery_get_restart_count (CpProcessDiscovery *self)
{
  g_return_val_if_fail (CP_IS_PROCESS_DISCOVERY (self), 0);

  return self->restart_count;
}
