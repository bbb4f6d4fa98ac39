/* cp-process-discovery-private.h: the units of CpProcessDiscovery
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CpProcessDiscovery is cut into three files that share its struct:
 * - cp-process-discovery.c: the object (properties, states, waiters,
 *   restarts with backoff, starting, the CpDiscovery interface);
 * - cp-process-launch.c: one launched child (its launch record, the
 *   environment and control secret it gets, reading the address it
 *   announces and forwarding its output, noticing its exit);
 * - cp-process-shutdown.c: stopping it (PluginControl.Shutdown, then
 *   SIGTERM and SIGKILL), and a re-attached plugin's Shutdown call.
 */
#pragma once

#include "cp-process-discovery.h"
#include "cp-host-enum-types.h"
#include "cp-automtls-private.h"

G_BEGIN_DECLS

/* One of a launched child's output pipes, read line by line. */
typedef struct {
  GPollableInputStream *stream;
  GSource *source;              /* readable (or cancelled); NULL at the end */
  GString *partial;             /* the start of a line not ended yet */
} LaunchPipe;

/* One launched child process. Outlives the discovery if need be: the
 * pending wait/read operations hold references, and find self == NULL.
 * Its sources (output pipes, exit wait, start-up timers) are in @context,
 * the thread-default context it was launched from, or the one
 * cp_process_discovery_move_launch () moved them to. */
typedef struct {
  CpProcessDiscovery *self;     /* NULL once detached */
  GMainContext *context;
  GSubprocess *proc;
  GCancellable *cancellable;    /* of the pipe readers and the probe */
  GCancellable *wait_cancellable;   /* of the exit wait (ended by a move) */
  GCancellable *probe_cancellable;  /* of the probe in flight (ended by a move) */
  gboolean probe_pending;       /* a connection attempt is in flight */
  LaunchPipe out;
  LaunchPipe err;
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
  guint16 port;                 /* CP_STARTUP_MODE_PORT: the port it was given */
  GSource *probe_retry;         /* ... and the next connection attempt */
  guint probe_delay_ms;
} Launch;

struct _CpProcessDiscovery
{
  GObject parent_instance;

  GStrv argv;
  GStrv environment;
  char *name;
  CpListenMode listen_mode;
  CpStartupMode startup_mode;
  char *host_url;
  guint start_timeout_ms;
  guint shutdown_grace_ms;
  CpRestartPolicy restart_policy;
  int max_restarts;
  guint restart_delay_ms;
  guint max_restart_delay_ms;
  gboolean die_with_host;
  char *control_secret;
  gboolean control_secret_given;  /* set by the user: not replaced per launch */
  GLogLevelFlags output_log_level;  /* of the plain lines it prints */
  gboolean auto_mtls;
  guint auto_mtls_lifetime_s;
  CpAutoMtls *automtls;         /* of the current TCP launch, or NULL */
  gboolean automtls_registered; /* url is in cp_automtls_register ()'s table */

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
  PROP_STARTUP_MODE,
  PROP_HOST_URL,
  PROP_START_TIMEOUT_MS,
  PROP_SHUTDOWN_GRACE_MS,
  PROP_RESTART_POLICY,
  PROP_MAX_RESTARTS,
  PROP_RESTART_DELAY_MS,
  PROP_MAX_RESTART_DELAY_MS,
  PROP_DIE_WITH_HOST,
  PROP_CONTROL_SECRET,
  PROP_OUTPUT_LOG_LEVEL,
  PROP_AUTO_MTLS,
  PROP_AUTO_MTLS_LIFETIME,
  PROP_STATE,
  PROP_PID,
  N_PROPS
};

/* cp-process-discovery.c */
void     cp_process_notify           (CpProcessDiscovery *self,
                                      guint               prop_id);
void     cp_process_emit_exited      (CpProcessDiscovery *self,
                                      int                 code,
                                      int                 sig);
void     cp_process_set_state        (CpProcessDiscovery *self,
                                      CpProcessState      state);
void     cp_process_set_url          (CpProcessDiscovery *self,
                                      const char         *url);
void     cp_process_clear_source     (GSource           **source);
/* A timeout calling @func (self) in the discovery's context. */
GSource *cp_process_add_timeout      (CpProcessDiscovery *self,
                                      guint               ms,
                                      GSourceFunc         func);
/* Completes and empties *@waiters: with @error, else @url, else TRUE. */
void     cp_process_complete_waiters (GPtrArray         **waiters,
                                      const char         *url,
                                      const GError       *error);
/* An event of the plugin's life, for the host's log. */
void     cp_process_event            (CpProcessDiscovery *self,
                                      const char         *format,
                                      ...) G_GNUC_PRINTF (2, 3);
/* Schedules a restart if the policy wants one. */
void     cp_process_maybe_restart    (CpProcessDiscovery *self,
                                      gboolean            failed,
                                      gint64              ran_us);

/* cp-process-launch.c */
Launch  *cp_process_launch_ref       (Launch             *launch);
/* Ends the launch's reading and probing (its cancellables). */
void     cp_process_launch_cancel    (Launch             *launch);
void     cp_process_launch_unref     (Launch             *launch);
/* Launches the child: state STARTING, self->launch set. */
gboolean cp_process_launch           (CpProcessDiscovery *self,
                                      GError            **error);
/* Takes @secret (transfer full, nullable); wipes the old one. */
void     cp_process_replace_control_secret (CpProcessDiscovery *self,
                                            char               *secret);
/* A line of a plugin's output as GLib's default log writer
 * (g_log_writer_format_fields ()) prints a record:
 *   [** ][(PRGNAME:PID): ][DOMAIN-]LEVEL[ (recursed)][ **]: HH:MM:SS.mmm: TEXT
 * where "** " starts a record without a domain, " **" ends the level of
 * ERROR, CRITICAL and WARNING, and the process prefix depends on
 * G_MESSAGES_PREFIXED. Returns the record's level (one of
 * G_LOG_LEVEL_ERROR ... G_LOG_LEVEL_DEBUG), sets *@domain to its domain
 * (newly allocated; NULL without one) and *@text to the message (inside
 * @line). Anything else is a plain line: returns 0, *@domain NULL and
 * *@text @line. Pure, on any bytes (tests/host/fuzz-plugin-output.c). */
GLogLevelFlags cp_process_parse_glib_line (const char   *line,
                                           char        **domain,
                                           const char  **text);

/* cp-process-shutdown.c */
/* The process is gone: completes the stop waiters. */
void     cp_process_stop_finished    (CpProcessDiscovery *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Launch, cp_process_launch_unref)

G_END_DECLS
