/* cp-process-launch.c: one launched plugin process
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The child of a CpProcessDiscovery (see cp-process-discovery-private.h):
 * its launch record, the environment it gets (listen address, a fresh
 * control secret; in port mode a free port in PORT and HOST_URL; with
 * AutoMTLS the number of the pipe its certificates come through, written
 * while it starts), reading
 * the address it announces on its standard output (or, in port mode,
 * probing the port until it accepts), forwarding its output to the host's
 * log line by line (pollable pipe sources in the context it was launched
 * from; a line is cut at 64 KiB; plain lines at the discovery's
 * output-log-level, lines of GLib's default log writer at their own
 * level), noticing its exit (once its standard
 * error is drained), and moving all that to another context (for
 * cp_client_connect_sync (), which launches in a private one).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cp-process-discovery-private.h"
#include "cp-host-private.h"
#include "cp-error.h"
#include "cp-plugin-constants.h"
#include "cp-runtime-identity-private.h"

#define EXIT_GRACE_MS 500
/* Port mode: connection attempts start this far apart and back off to
 * the maximum (a refused local connection fails at once). */
#define PROBE_FIRST_DELAY_MS 5
#define PROBE_MAX_DELAY_MS   100

/* A line longer than this is cut (a plugin writing without newlines
 * cannot make the host buffer without limit). */
#define MAX_LINE_BYTES (64 * 1024)

static void pipe_watch (Launch *launch, LaunchPipe *pipe);

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
  cp_process_clear_source (&launch->probe_retry);
  g_clear_object (&launch->proc);
  g_clear_object (&launch->cancellable);
  g_clear_object (&launch->wait_cancellable);
  g_clear_object (&launch->probe_cancellable);
  for (LaunchPipe *pipe = &launch->out; pipe != NULL; pipe = pipe == &launch->out ? &launch->err : NULL)
    {
      cp_process_clear_source (&pipe->source);
      g_clear_object (&pipe->stream);
      if (pipe->partial != NULL)
        g_string_free (pipe->partial, TRUE);
    }
  g_clear_pointer (&launch->context, g_main_context_unref);
  if (launch->socket_path != NULL)
    g_unlink (launch->socket_path);
  if (launch->tmpdir != NULL)
    g_rmdir (launch->tmpdir);
  g_free (launch->socket_path);
  g_free (launch->tmpdir);
  g_free (launch->pid);
  g_free (launch->last_stderr);
}

void
cp_process_launch_cancel (Launch *launch)
{
  g_cancellable_cancel (launch->cancellable);
  if (launch->probe_cancellable != NULL)
    g_cancellable_cancel (launch->probe_cancellable);
}

Launch *
cp_process_launch_ref (Launch *launch)
{
  return g_rc_box_acquire (launch);
}

void
cp_process_launch_unref (Launch *launch)
{
  g_rc_box_release_full (launch, launch_clear);
}

/* ---- output and exit ---- */

/* The level names of mklevel_prefix () in GLib's gmessages.c. */
static const struct {
  const char *name;
  GLogLevelFlags level;
} glib_levels[] = {
  { "ERROR", G_LOG_LEVEL_ERROR },
  { "CRITICAL", G_LOG_LEVEL_CRITICAL },
  { "WARNING", G_LOG_LEVEL_WARNING },
  { "Message", G_LOG_LEVEL_MESSAGE },
  { "INFO", G_LOG_LEVEL_INFO },
  { "DEBUG", G_LOG_LEVEL_DEBUG },
};

/* The levels GLib marks with " **" (and an empty line before). */
#define GLIB_ALERT_LEVELS (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)

/* "HH:MM:SS.mmm: " at @p. */
#define GLIB_TIMESTAMP_LEN 14

static gboolean
glib_timestamp (const char *p)
{
  static const char shape[] = "00:00:00.000: ";

  for (gsize i = 0; i < GLIB_TIMESTAMP_LEN; i++)
    if (shape[i] == '0' ? !g_ascii_isdigit (p[i]) : p[i] != shape[i])
      return FALSE;
  return TRUE;
}

/* After "(PRGNAME:PID): " at @p, or NULL. */
static const char *
skip_glib_process_prefix (const char *p)
{
  const char *end, *digits;

  if (p[0] != '(')
    return NULL;
  end = strstr (p, "): ");
  if (end == NULL)
    return NULL;
  for (digits = end; digits > p + 1 && g_ascii_isdigit (digits[-1]); digits--)
    ;
  /* A program name (at least one byte), ':', at least one digit. */
  if (digits == end || digits - 1 <= p + 1 || digits[-1] != ':')
    return NULL;
  return end + 3;
}

/* "[DOMAIN-]LEVEL[ (recursed)][ **]: HH:MM:SS.mmm: TEXT" at @p. */
static GLogLevelFlags
parse_glib_level (const char   *p,
                  gboolean      with_domain,
                  char        **domain,
                  const char  **text)
{
  const char *colon = strstr (p, ": ");
  const char *end = colon;
  gboolean alert;

  if (colon == NULL)
    return 0;
  alert = end - p >= 3 && memcmp (end - 3, " **", 3) == 0;
  if (alert)
    end -= 3;
  if (end - p >= 11 && memcmp (end - 11, " (recursed)", 11) == 0)
    end -= 11;

  for (gsize i = 0; i < G_N_ELEMENTS (glib_levels); i++)
    {
      gsize len = strlen (glib_levels[i].name);
      gsize head;

      if ((gsize) (end - p) < len || memcmp (end - len, glib_levels[i].name, len) != 0)
        continue;
      /* What precedes the level: "DOMAIN-" (a domain of one byte at
       * least), or nothing when the record had no domain ("** "). */
      head = (gsize) (end - p) - len;
      if (with_domain ? head < 2 || p[head - 1] != '-' : head != 0)
        return 0;
      if (alert != ((glib_levels[i].level & GLIB_ALERT_LEVELS) != 0) ||
          !glib_timestamp (colon + 2))
        return 0;
      *domain = with_domain ? g_strndup (p, head - 1) : NULL;
      *text = colon + 2 + GLIB_TIMESTAMP_LEN;
      return glib_levels[i].level;
    }
  return 0;
}

GLogLevelFlags
cp_process_parse_glib_line (const char   *line,
                            char        **domain,
                            const char  **text)
{
  gboolean no_domain = g_str_has_prefix (line, "** ");
  const char *p = no_domain ? line + 3 : line;
  const char *after_prefix = skip_glib_process_prefix (p);
  GLogLevelFlags level = 0;

  *domain = NULL;
  *text = line;
  /* A domain may itself look like a process prefix: try both. */
  if (after_prefix != NULL)
    level = parse_glib_level (after_prefix, !no_domain, domain, text);
  if (level == 0)
    level = parse_glib_level (p, !no_domain, domain, text);
  return level;
}

/* The journal's priority of @level, as g_log_structured () gives it. */
static const char *
log_priority (GLogLevelFlags level)
{
  switch (level)
    {
    case G_LOG_LEVEL_CRITICAL:
    case G_LOG_LEVEL_WARNING:
      return "4";
    case G_LOG_LEVEL_MESSAGE:
      return "5";
    case G_LOG_LEVEL_INFO:
      return "6";
    default:
      return "7";
    }
}

/* One line of the plugin's output, into the host's log: a record GLib's
 * default writer printed keeps its level (ERROR as CRITICAL: an ERROR
 * record aborts the process that logs it) and the plugin's domain in
 * CP_PLUGIN_DOMAIN, without GLib's prefix and timestamp; any other line
 * goes at the discovery's output-log-level. The message is "NAME: text",
 * unless the text already starts with "NAME:". Empty lines are dropped
 * (GLib's writer prints one before each warning). */
static void
log_plugin_line (CpProcessDiscovery *self,
                 Launch             *launch,
                 const char         *stream,
                 const char         *line)
{
  const char *name = self != NULL ? self->name : "plugin";
  gsize name_len = strlen (name);
  g_autofree char *valid = g_utf8_make_valid (line, -1);
  g_autofree char *domain = NULL;
  g_autofree char *message = NULL;
  const char *text;
  GLogLevelFlags level = cp_process_parse_glib_line (valid, &domain, &text);
  GLogField fields[] = {
    /* First, so that g_log_writer_default () does not make the record
     * fatal when the host runs with G_DEBUG=fatal-warnings (or as a GTest
     * program): how fatal a plugin's record was is the plugin's business,
     * as for records of the old g_log () API, which pass this field. */
    { "GLIB_OLD_LOG_API", "1", -1 },
    { "MESSAGE", NULL, -1 },
    { "PRIORITY", NULL, -1 },
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    { "CP_PLUGIN", name, -1 },
    { "CP_PLUGIN_STREAM", stream, -1 },
    { "CP_PLUGIN_PID", launch->pid != NULL ? launch->pid : "", -1 },
    { "CP_PLUGIN_DOMAIN", NULL, -1 },   /* last: left out without a domain */
  };

  if (level == 0)
    {
      if (valid[0] == '\0')
        return;
      level = self != NULL ? self->output_log_level : G_LOG_LEVEL_DEBUG;
    }
  else if (level == G_LOG_LEVEL_ERROR)
    level = G_LOG_LEVEL_CRITICAL;

  if (strncmp (text, name, name_len) == 0 && text[name_len] == ':')
    message = g_strdup (text);
  else
    message = g_strconcat (name, ": ", text, NULL);
  fields[1].value = message;
  fields[2].value = log_priority (level);
  fields[G_N_ELEMENTS (fields) - 1].value = domain;
  g_log_structured_array (level, fields, G_N_ELEMENTS (fields) - (domain == NULL ? 1 : 0));
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

/* ---- start-up ---- */

/* The current launch failed before it announced an address. */
static void
start_failed (CpProcessDiscovery *self,
              GError             *error)
{
  Launch *launch = self->launch;
  gint64 ran = launch != NULL ? g_get_monotonic_time () - launch->started_at : 0;

  cp_process_clear_source (&self->start_timeout);
  if (launch != NULL)
    {
      /* Detach it: its wait callback only cleans up. */
      launch->self = NULL;
      cp_process_launch_cancel (launch);
      if (!launch->exited)
        g_subprocess_force_exit (launch->proc);
      self->launch = NULL;
      cp_process_launch_unref (launch);
      cp_process_notify (self, PROP_PID);
    }
  g_free (self->exit_description);
  self->exit_description = g_strdup (error->message);
  cp_process_set_state (self, CP_PROCESS_STATE_EXITED);
  cp_process_complete_waiters (&self->start_waiters, NULL, error);
  g_error_free (error);
  cp_process_maybe_restart (self, TRUE, ran);
}

static gboolean
start_timeout_cb (gpointer user_data)
{
  CpProcessDiscovery *self = user_data;

  g_clear_pointer (&self->start_timeout, g_source_unref);
  if (self->startup_mode == CP_STARTUP_MODE_PORT && self->launch != NULL)
    start_failed (self, g_error_new (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                     "plugin %s did not accept connections on 127.0.0.1:%u "
                                     "(the port given in PORT) within %u ms",
                                     self->name, self->launch->port, self->start_timeout_ms));
  else
    start_failed (self, g_error_new (CP_ERROR, CP_ERROR_DEADLINE_EXCEEDED,
                                     "plugin %s did not announce its address within %u ms",
                                     self->name, self->start_timeout_ms));
  return G_SOURCE_REMOVE;
}

/* The start-up limit of @launch, in its context. */
static GSource *
start_timeout_new (CpProcessDiscovery *self,
                   Launch             *launch,
                   guint               ms)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, start_timeout_cb, self, NULL);
  g_source_set_static_name (source, "[connectplugin] plugin start-up");
  g_source_attach (source, launch->context);
  return source;
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
  cp_process_clear_source (&self->start_timeout);
  self->restarting = FALSE;
  cp_process_set_url (self, line);
  cp_process_set_state (self, CP_PROCESS_STATE_RUNNING);
  g_debug ("plugin %s (pid %s) serves %s", self->name, launch->pid, line);
  cp_process_complete_waiters (&self->start_waiters, line, NULL);
  if (restarted)
    cp_discovery_emit_changed (CP_DISCOVERY (self));
}

static void handle_exit (Launch *launch);

/* A record of GLib's default log writer, which prints INFO and DEBUG ones
 * on standard output: one before the address (a plugin run with
 * G_MESSAGES_DEBUG) is logged, not taken for the announcement. */
static gboolean
is_glib_record (const char *line)
{
  g_autofree char *domain = NULL;
  const char *text;

  return cp_process_parse_glib_line (line, &domain, &text) != 0;
}

/* One line of the plugin's output: its announcement, or one for the log. */
static void
pipe_line (Launch     *launch,
           gboolean    is_stdout,
           char       *line)
{
  CpProcessDiscovery *self = launch->self;
  gsize len = strlen (line);

  if (len > 0 && line[len - 1] == '\r')
    line[len - 1] = '\0';
  if (self != NULL && is_stdout && !launch->announced && self->launch == launch &&
      self->state == CP_PROCESS_STATE_STARTING &&
      self->startup_mode == CP_STARTUP_MODE_STDOUT_LINE &&
      !is_glib_record (line))
    announced (self, launch, line);
  else
    {
      log_plugin_line (self, launch, is_stdout ? "stdout" : "stderr", line);
      if (!is_stdout)
        {
          g_free (launch->last_stderr);
          launch->last_stderr = g_utf8_make_valid (line, -1);
        }
    }
}

/* The end of a pipe. A plugin that closes its standard output before
 * announcing is handled by its exit or the timeout. */
static void
pipe_end (Launch     *launch,
          LaunchPipe *pipe)
{
  if (pipe->partial->len > 0)
    {
      g_autofree char *line = g_strndup (pipe->partial->str, pipe->partial->len);

      g_string_truncate (pipe->partial, 0);
      pipe_line (launch, pipe == &launch->out, line);
    }
  g_clear_pointer (&pipe->source, g_source_unref);
  if (pipe == &launch->err)
    {
      launch->err_eof = TRUE;
      /* Its last words are in: the exit can be told. */
      if (launch->exited && !launch->exit_handled)
        handle_exit (launch);
    }
}

static gboolean
pipe_readable_cb (GObject  *stream,
                  gpointer  user_data)
{
  Launch *launch = user_data;
  LaunchPipe *pipe = G_POLLABLE_INPUT_STREAM (stream) == launch->out.stream ? &launch->out
                                                                          : &launch->err;
  g_autoptr(GError) error = NULL;
  char buf[4096];
  gssize n;

  if (g_cancellable_is_cancelled (launch->cancellable))
    {
      g_clear_pointer (&pipe->source, g_source_unref);
      return G_SOURCE_REMOVE;
    }
  n = g_pollable_input_stream_read_nonblocking (pipe->stream, buf, sizeof buf, NULL, &error);
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      if (error != NULL)
        g_debug ("plugin %s: reading its output: %s",
                 launch->self != NULL ? launch->self->name : "?", error->message);
      pipe_end (launch, pipe);
      return G_SOURCE_REMOVE;
    }

  g_string_append_len (pipe->partial, buf, n);
  for (;;)
    {
      char *nl = memchr (pipe->partial->str, '\n', pipe->partial->len);
      gsize take = nl != NULL ? (gsize) (nl - pipe->partial->str)
                              : pipe->partial->len >= MAX_LINE_BYTES ? pipe->partial->len : 0;
      g_autofree char *line = NULL;

      if (nl == NULL && take == 0)
        break;
      line = g_strndup (pipe->partial->str, take);
      g_string_erase (pipe->partial, 0, nl != NULL ? take + 1 : take);
      pipe_line (launch, pipe == &launch->out, line);
      /* The line may have ended the launch (a bad announcement). */
      if (g_cancellable_is_cancelled (launch->cancellable))
        {
          g_clear_pointer (&pipe->source, g_source_unref);
          return G_SOURCE_REMOVE;
        }
    }
  return G_SOURCE_CONTINUE;
}

/* Reads @pipe in the launch's context (again, after a move). */
static void
pipe_watch (Launch     *launch,
            LaunchPipe *pipe)
{
  cp_process_clear_source (&pipe->source);
  pipe->source = g_pollable_input_stream_create_source (pipe->stream, launch->cancellable);
  g_source_set_callback (pipe->source, (GSourceFunc) (void (*) (void)) pipe_readable_cb,
                         cp_process_launch_ref (launch), (GDestroyNotify) cp_process_launch_unref);
  g_source_set_static_name (pipe->source, "[connectplugin] plugin output");
  g_source_attach (pipe->source, launch->context);
}

static void
pipe_init (Launch       *launch,
           LaunchPipe   *pipe,
           GInputStream *stream)
{
  pipe->stream = G_POLLABLE_INPUT_STREAM (g_object_ref (stream));
  pipe->partial = g_string_new (NULL);
  pipe_watch (launch, pipe);
}

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
  cp_process_launch_ref (launch);
  how = describe_exit (launch->proc);
  if (g_subprocess_get_if_signaled (launch->proc))
    sig = g_subprocess_get_term_sig (launch->proc);
  else
    code = g_subprocess_get_exit_status (launch->proc);
  failed = sig != 0 || code != 0;
  ran = g_get_monotonic_time () - launch->started_at;

  self->launch = NULL;
  launch->self = NULL;
  cp_process_launch_unref (launch);   /* self's reference (this function holds one) */
                           g_free (self->exit_description);
  self->exit_description = g_strdup_printf ("plugin %s exited (%s)", self->name, how);
  cp_process_set_url (self, NULL);
  cp_process_notify (self, PROP_PID);

  switch (self->state)
    {
    case CP_PROCESS_STATE_STOPPING:
      g_debug ("plugin %s stopped (%s)", self->name, how);
      cp_process_set_state (self, CP_PROCESS_STATE_STOPPED);
      cp_process_emit_exited (self, code, sig);
      cp_process_stop_finished (self);
      break;

    case CP_PROCESS_STATE_STARTING:
      {
        GError *error = g_error_new (CP_ERROR, CP_ERROR_UNAVAILABLE,
                                     "plugin %s exited during start-up (%s)%s%s",
                                     self->name, how,
                                     launch->last_stderr != NULL ? ": " : "",
                                     launch->last_stderr != NULL ? launch->last_stderr : "");
        cp_process_clear_source (&self->start_timeout);
        g_free (self->exit_description);
        self->exit_description = g_strdup (error->message);
        cp_process_set_state (self, CP_PROCESS_STATE_EXITED);
        cp_process_emit_exited (self, code, sig);
        cp_process_complete_waiters (&self->start_waiters, NULL, error);
        g_error_free (error);
        cp_process_maybe_restart (self, TRUE, ran);
      }
      break;

    default:
      cp_process_event (self, "exited unexpectedly (%s)", how);
      cp_process_set_state (self, CP_PROCESS_STATE_EXITED);
      cp_process_emit_exited (self, code, sig);
      /* Restart first, so that those reacting to "changed" wait for the
       * new process instead of finding the plugin gone. */
      cp_process_maybe_restart (self, failed, ran);
      cp_discovery_emit_changed (CP_DISCOVERY (self));
      break;
    }
  cp_process_launch_unref (launch);
  g_object_unref (self);
}

/* A timeout in the launch's context, holding a reference on it. */
static GSource *
launch_timeout (Launch      *launch,
                guint        ms,
                GSourceFunc  func)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, cp_process_launch_ref (launch),
                         (GDestroyNotify) cp_process_launch_unref);
  g_source_set_static_name (source, "[connectplugin] plugin launch");
  g_source_attach (source, launch->context);
  return source;
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

  /* It fails only when a move cancelled it (and waits again elsewhere). */
  if (!g_subprocess_wait_finish (launch->proc, result, NULL))
    return;
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
      launch->exit_grace = launch_timeout (launch, EXIT_GRACE_MS, exit_grace_cb);
    }
}

/* Waits for the end of the process, in the launch's context. */
static void
launch_wait (Launch *launch)
{
  g_clear_object (&launch->wait_cancellable);
  launch->wait_cancellable = g_cancellable_new ();
  g_main_context_push_thread_default (launch->context);
  g_subprocess_wait_async (launch->proc, launch->wait_cancellable, wait_cb,
                           cp_process_launch_ref (launch));
  g_main_context_pop_thread_default (launch->context);
}

/* ---- port mode: waiting until the plugin's port accepts ---- */

static void probe (Launch *launch);

/* Whether the probe of @launch is still wanted. */
static gboolean
probing (Launch *launch)
{
  CpProcessDiscovery *self = launch->self;

  return self != NULL && self->launch == launch && !launch->announced &&
         self->state == CP_PROCESS_STATE_STARTING;
}

static gboolean
probe_retry_cb (gpointer user_data)
{
  Launch *launch = user_data;

  g_clear_pointer (&launch->probe_retry, g_source_unref);
  if (probing (launch))
    probe (launch);
  return G_SOURCE_REMOVE;
}

static void
probe_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(Launch) launch = user_data;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  /* Cancelled: the launch ended, or a move probes again elsewhere. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  launch->probe_pending = FALSE;
  if (!probing (launch))
    return;
  if (connection != NULL)
    {
      g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u", launch->port);

      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      announced (launch->self, launch, url);
      return;
    }

  /* Not listening yet: try again soon (its exit or the start timeout
   * ends this). */
  launch->probe_retry = launch_timeout (launch, launch->probe_delay_ms, probe_retry_cb);
  launch->probe_delay_ms = MIN (launch->probe_delay_ms * 2, PROBE_MAX_DELAY_MS);
}

static void
probe (Launch *launch)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, launch->port);

  /* The plugin's own port: never through a system proxy. */
  g_socket_client_set_enable_proxy (client, FALSE);
  g_clear_object (&launch->probe_cancellable);
  launch->probe_cancellable = g_cancellable_new ();
  launch->probe_pending = TRUE;
  g_main_context_push_thread_default (launch->context);
  g_socket_client_connect_async (client, G_SOCKET_CONNECTABLE (address), launch->probe_cancellable,
                                 probe_cb, cp_process_launch_ref (launch));
  g_main_context_pop_thread_default (launch->context);
}

/* ---- moving to another context ---- */

/* The milliseconds @source has left before it is due (0: due now). */
static guint
ms_left (GSource *source)
{
  gint64 ready = g_source_get_ready_time (source);
  gint64 now = g_get_monotonic_time ();

  if (ready < 0 || ready <= now)
    return 0;
  return (guint) MIN ((ready - now + 999) / 1000, (gint64) G_MAXUINT);
}

void
cp_process_discovery_move_launch (CpProcessDiscovery *self,
                                  GMainContext       *from,
                                  GMainContext       *to)
{
  Launch *launch;

  g_return_if_fail (CP_IS_PROCESS_DISCOVERY (self));

  launch = self->launch;
  if (launch == NULL || launch->context != from || from == to)
    return;

  g_debug ("plugin %s (pid %s): moving its launch to another context", self->name, launch->pid);
  g_main_context_unref (launch->context);
  launch->context = g_main_context_ref (to);

  for (LaunchPipe *pipe = &launch->out; pipe != NULL; pipe = pipe == &launch->out ? &launch->err : NULL)
    if (pipe->source != NULL)
      pipe_watch (launch, pipe);

  /* The old wait ends cancelled in @from (wait_cb ignores it). */
  if (!launch->exited)
    {
      g_cancellable_cancel (launch->wait_cancellable);
      launch_wait (launch);
    }
  if (launch->exit_grace != NULL)
    {
      guint ms = ms_left (launch->exit_grace);

      cp_process_clear_source (&launch->exit_grace);
      launch->exit_grace = launch_timeout (launch, ms, exit_grace_cb);
    }
  if (launch->probe_retry != NULL)
    {
      guint ms = ms_left (launch->probe_retry);

      cp_process_clear_source (&launch->probe_retry);
      launch->probe_retry = launch_timeout (launch, ms, probe_retry_cb);
    }
  if (launch->probe_pending)
    {
      g_cancellable_cancel (launch->probe_cancellable);
      probe (launch);
    }
  if (self->start_timeout != NULL)
    {
      guint ms = ms_left (self->start_timeout);

      cp_process_clear_source (&self->start_timeout);
      self->start_timeout = start_timeout_new (self, launch, ms);
    }
}

/* A TCP port on 127.0.0.1 that is free now, for a plugin told to listen
 * on it. */
static guint16
pick_free_port (GError **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL || !g_socket_bind (socket, any_port, FALSE, error))
    return 0;
  bound = g_socket_get_local_address (socket, error);
  if (bound == NULL)
    return 0;
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
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
void
cp_process_replace_control_secret (CpProcessDiscovery *self,
                                   char               *secret)
{
  if (self->control_secret != NULL)
    explicit_bzero (self->control_secret, strlen (self->control_secret));
  g_free (self->control_secret);
  self->control_secret = secret;
  cp_process_notify (self, PROP_CONTROL_SECRET);
}

/* The descriptor number of the AutoMTLS pipe in the plugin (0, 1 and 2
 * are its standard streams). */
#define AUTOMTLS_CHILD_FD 3

/* AutoMTLS (CpProcessDiscovery:auto-mtls) for a TCP launch that announces
 * its address: a pipe whose read end the plugin inherits (its number in
 * CP_AUTOMTLS_FD_ENV), and *@write_fd, its write end (close-on-exec), which
 * send_automtls () fills once the plugin runs. Otherwise none: a unix
 * socket's directory is private (0700), and in port mode the host assumes
 * http://. */
static gboolean
setup_automtls (CpProcessDiscovery   *self,
                GSubprocessLauncher  *launcher,
                Launch               *launch,
                int                  *write_fd,
                GError              **error)
{
  g_autoptr(GError) local_error = NULL;
  int fds[2];

  *write_fd = -1;
  g_clear_pointer (&self->automtls, cp_automtls_free);
  g_subprocess_launcher_unsetenv (launcher, CP_AUTOMTLS_FD_ENV);
  g_subprocess_launcher_unsetenv (launcher, CP_AUTOMTLS_CERT_ENV);
  g_subprocess_launcher_unsetenv (launcher, CP_AUTOMTLS_KEY_ENV);
  g_subprocess_launcher_unsetenv (launcher, CP_AUTOMTLS_CA_ENV);
  if (!self->auto_mtls || launch->port != 0 || launch->socket_path != NULL)
    return TRUE;
  if (!g_unix_open_pipe (fds, FD_CLOEXEC, &local_error))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                   "could not make the AutoMTLS pipe for plugin %s: %s",
                   self->name, local_error->message);
      return FALSE;
    }
  /* Never in argv (world-readable) nor in a file: a pipe only the plugin
   * inherits, closed by the launcher once it has spawned. */
  g_subprocess_launcher_take_fd (launcher, fds[0], AUTOMTLS_CHILD_FD);
  g_subprocess_launcher_setenv (launcher, CP_AUTOMTLS_FD_ENV, G_STRINGIFY (AUTOMTLS_CHILD_FD), TRUE);
  *write_fd = fds[1];
  return TRUE;
}

static gboolean
write_all (int          fd,
           const char  *data,
           gsize        len,
           GError     **error)
{
  while (len > 0)
    {
      gssize n = write (fd, data, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          int saved_errno = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "%s", g_strerror (saved_errno));
          return FALSE;
        }
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Makes the certificates of @self's launch, now that the plugin starts (its
 * exec and dynamic linking take longer than this), and writes the plugin's
 * into @write_fd: its certificate, its key, the CA and the host's client
 * certificate (which the plugin pins), each ended by a NUL.
 * Closes @write_fd. The plugin's own read end is still open in the
 * launcher: the writes cannot meet a closed pipe (SIGPIPE), and 2 KiB fit
 * in its buffer without blocking. */
static gboolean
send_automtls (CpProcessDiscovery  *self,
               int                  write_fd,
               GError             **error)
{
  g_autoptr(GError) local_error = NULL;
  GString *message = NULL;
  gboolean ok;

  self->automtls = cp_automtls_new (self->auto_mtls_lifetime_s, &local_error);
  if (self->automtls != NULL)
    {
      message = g_string_sized_new (4096);
      g_string_append (message, self->automtls->server_cert_pem);
      g_string_append_c (message, '\0');
      g_string_append (message, self->automtls->server_key_pem);
      g_string_append_c (message, '\0');
      g_string_append (message, self->automtls->ca_pem);
      g_string_append_c (message, '\0');
      g_string_append (message, self->automtls->client_cert_pem);
      g_string_append_c (message, '\0');
      /* The plugin has its key: the host's copies are wiped. */
      explicit_bzero (self->automtls->server_key_pem, strlen (self->automtls->server_key_pem));
      g_clear_pointer (&self->automtls->server_key_pem, g_free);
    }
  ok = message != NULL && write_all (write_fd, message->str, message->len, &local_error);
  if (message != NULL)
    {
      explicit_bzero (message->str, message->allocated_len);
      g_string_free (message, TRUE);
    }
  close (write_fd);
  if (!ok)
    g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                 "could not %s AutoMTLS certificates for plugin %s: %s",
                 self->automtls == NULL ? "make" : "send", self->name, local_error->message);
  return ok;
}

gboolean
cp_process_launch (CpProcessDiscovery  *self,
                   GError             **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(Launch) launch = g_rc_box_new0 (Launch);
  g_autoptr(GError) local_error = NULL;
  g_autofree char *listen = NULL;
  int automtls_fd = -1;

  g_assert (self->launch == NULL);

  if (self->startup_mode == CP_STARTUP_MODE_PORT)
    {
      launch->port = pick_free_port (&local_error);
      if (launch->port == 0)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL,
                       "could not find a free port for plugin %s: %s",
                       self->name, local_error->message);
          return FALSE;
        }
      listen = g_strdup_printf ("127.0.0.1:%u", launch->port);
    }
  else if (self->listen_mode == CP_LISTEN_UNIX)
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
  if (launch->port != 0)
    {
      /* connect-plugin-go's ProcessStrategy conventions. */
      g_autofree char *port = g_strdup_printf ("%u", launch->port);

      g_subprocess_launcher_setenv (launcher, "PORT", port, TRUE);
      if (self->host_url != NULL)
        g_subprocess_launcher_setenv (launcher, "HOST_URL", self->host_url, TRUE);
    }
  /* In the environment, never in argv: /proc/PID/cmdline is world-readable. */
  if (!self->control_secret_given)
    cp_process_replace_control_secret (self, cp_generate_token (32));
  g_subprocess_launcher_setenv (launcher, CP_CONTROL_SECRET_ENV, self->control_secret, TRUE);
  if (!setup_automtls (self, launcher, launch, &automtls_fd, error))
    return FALSE;
#ifdef __linux__
  if (self->die_with_host)
    g_subprocess_launcher_set_child_setup (launcher, die_with_host_setup,
                                           GINT_TO_POINTER ((int) getpid ()), NULL);
#endif

  launch->proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) self->argv,
                                               &local_error);
  if (launch->proc == NULL)
    {
      if (automtls_fd >= 0)
        close (automtls_fd);
      g_set_error (error, CP_ERROR, CP_ERROR_UNAVAILABLE,
                   "could not launch plugin %s: %s", self->name, local_error->message);
      return FALSE;
    }
  /* The certificates are made while the plugin execs and links. */
  if (automtls_fd >= 0 && !send_automtls (self, automtls_fd, error))
    {
      g_subprocess_force_exit (launch->proc);
      g_clear_pointer (&self->automtls, cp_automtls_free);
      return FALSE;
    }

  launch->self = self;
  launch->context = g_main_context_ref_thread_default ();
  launch->cancellable = g_cancellable_new ();
  launch->pid = g_strdup (g_subprocess_get_identifier (launch->proc));
  launch->started_at = g_get_monotonic_time ();

  self->launch = cp_process_launch_ref (launch);
  cp_process_notify (self, PROP_PID);
  cp_process_set_state (self, CP_PROCESS_STATE_STARTING);

  launch_wait (launch);
  pipe_init (launch, &launch->out, g_subprocess_get_stdout_pipe (launch->proc));
  pipe_init (launch, &launch->err, g_subprocess_get_stderr_pipe (launch->proc));
  if (launch->port != 0)
    {
      launch->probe_delay_ms = PROBE_FIRST_DELAY_MS;
      probe (launch);
    }
  if (self->start_timeout_ms > 0)
    self->start_timeout = start_timeout_new (self, launch, self->start_timeout_ms);

  g_debug ("launched plugin %s (pid %s), listening on %s", self->name, launch->pid, listen);
  return TRUE;
}
