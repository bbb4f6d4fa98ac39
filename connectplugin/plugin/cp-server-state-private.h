/* cp-server-state-private.h: the state of a CpServer, shared by its files
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CpServer is one object in five files (only they include this header):
 *   cp-server.c            the object, its properties and public API, and
 *                          cp_server_start() (validation, registration,
 *                          the /healthz and /readyz probes, /metrics);
 *   cp-server-handshake.c  HandshakeService and the runtime identities it
 *                          issues (cp-server-private.h);
 *   cp-server-control.c    PluginControl and PluginIdentity, behind the
 *                          control secret;
 *   cp-server-shutdown.c   graceful shutdown (drain with a timeout) and close;
 *   cp-server-run.c        cp_server_run(): options, signals, main loop;
 *   cp-host-link.c         the link to a host (register, report health,
 *                          unregister) and what a plugin asks of it
 *                          (capability grants, discovery, watches).
 */
#pragma once

#include "cp-server-private.h"
#include "cp-plugin-constants.h"
#include "cp-rpc-server-private.h"
#include "cp-health-server-private.h"

G_BEGIN_DECLS

typedef struct {
  char *self_id;
  char *token;
  gint64 expires;     /* monotonic µs */
} RuntimeIdentity;

struct _CpServer
{
  GObject parent_instance;

  CpRpcServer *rpc_server;
  CpHealthServer *health;
  GPtrArray *plugins;             /* CpPlugin* */

  char *listen_address;
  char *magic_cookie_key;
  char *magic_cookie_value;
  int core_protocol_version;
  int app_protocol_version;
  GHashTable *metadata;           /* char* → char* */
  guint shutdown_timeout_ms;
  gboolean health_enabled;
  gboolean plugin_control_enabled;
  gboolean plugin_control_set;    /* set explicitly (cp_server_run keeps it) */
  gboolean identity_enabled;
  char *control_secret;           /* PluginControl/PluginIdentity bearer */
  gboolean control_allow_unauthenticated;
  gboolean metrics_enabled;       /* read by cp_server_start() */
  gboolean reflection_enabled;    /* read by cp_server_start() */
  char *self_id;
  char *self_version;

  /* PluginControl.GetHealth */
  CpHealthState health_state;
  char *health_reason;
  GStrv unavailable_dependencies;

  /* PluginIdentity.SetRuntimeIdentity */
  char *runtime_id;
  char *runtime_token;
  char *host_url;

  GHashTable *issued;             /* runtime id → RuntimeIdentity* */
  CpServerHandshakeHook handshake_hook;
  gpointer handshake_hook_data;

  /* The link to the host (cp-host-link.c) */
  guint host_timeout_ms;
  guint grant_renew_interval_ms;
  CpChannel *host_channel;        /* to host_url, with the runtime headers */
  GCancellable *host_cancellable; /* the link's own calls */
  GSource *host_retry;
  int host_step;                  /* HostStep */
  guint host_attempt;
  guint host_provide_index;
  GPtrArray *host_provides;       /* CpServiceDeclaration* still to register */
  GPtrArray *registrations;       /* char* registration ids */
  gboolean host_link_started;
  gboolean host_registered;
  gboolean health_report_busy;
  gboolean health_report_dirty;

  gboolean started;
  gboolean serving;
  gboolean shutting_down;
  gboolean closed;
  GCancellable *drain_cancellable;
  GSource *drain_timeout;
  GError *shutdown_error;         /* why running calls were cut, if they were */
  GQueue shutdown_tasks;
};

enum {
  PROP_0,
  PROP_RPC_SERVER,
  PROP_LISTEN_ADDRESS,
  PROP_MAGIC_COOKIE_KEY,
  PROP_MAGIC_COOKIE_VALUE,
  PROP_CORE_PROTOCOL_VERSION,
  PROP_APP_PROTOCOL_VERSION,
  PROP_SERVER_METADATA,
  PROP_SHUTDOWN_TIMEOUT_MS,
  PROP_HEALTH_ENABLED,
  PROP_PLUGIN_CONTROL_ENABLED,
  PROP_IDENTITY_ENABLED,
  PROP_CONTROL_SECRET,
  PROP_CONTROL_ALLOW_UNAUTHENTICATED,
  PROP_SELF_ID,
  PROP_SELF_VERSION,
  PROP_SERVING,
  PROP_RUNTIME_ID,
  PROP_RUNTIME_TOKEN,
  PROP_HOST_URL,
  PROP_MAX_RECEIVE_SIZE,
  PROP_MAX_SEND_QUEUE_SIZE,
  PROP_HOST_REGISTERED,
  PROP_HOST_TIMEOUT_MS,
  PROP_GRANT_RENEW_INTERVAL_MS,
  PROP_METRICS_ENABLED,
  PROP_REFLECTION_ENABLED,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_DATABASE,
  PROP_TLS_AUTHENTICATION_MODE,
  PROP_N_WORKERS,
  N_PROPS
};

enum {
  SIGNAL_SHUTDOWN_REQUESTED,
  SIGNAL_CLOSED,
  SIGNAL_HOST_LINK_FAILED,
  SIGNAL_SPAN_FINISHED,
  N_SIGNALS
};

/* The magic cookie a handshake must carry: the properties, else the
 * defaults. */
static inline const char *
effective_cookie_key (CpServer *self)
{
  return self->magic_cookie_key != NULL ? self->magic_cookie_key : CP_MAGIC_COOKIE_KEY;
}

static inline const char *
effective_cookie_value (CpServer *self)
{
  return self->magic_cookie_value != NULL ? self->magic_cookie_value : CP_MAGIC_COOKIE_VALUE;
}

extern GParamSpec *cp_server_properties[N_PROPS];
extern guint cp_server_signals[N_SIGNALS];

/* cp-server.c */
/* Sets CpServer:serving, notifying a change. */
void     cp_server_set_serving          (CpServer        *self,
                                         gboolean         serving);
/* Serves a built-in method with @self as its handler's user data. */
void     cp_server_add_builtin          (CpServer        *self,
                                         const char      *procedure,
                                         CpMethodKind     kind,
                                         GType            input,
                                         GType            output,
                                         CpMethodHandler  handler);

/* cp-server-handshake.c */
void     cp_server_register_handshake   (CpServer        *server);

/* cp-server-run.c: the options of cp_server_run () and
 * cp_server_bind_application (), and what they do. */
typedef struct {
  char *listen;
  gboolean insecure_control;
  gboolean metrics;
  gboolean reflection;
  char *tls_cert;
  char *tls_key;
  char *tls_ca;
  gboolean tls_require_client_cert;
  int workers;        /* --workers N; -1 when not given */
  /* Not an option: listen (and announce) before the AutoMTLS credentials
   * are read; they are set from the main loop when they come, and bad ones
   * close the server (cp_server_run ()). */
  gboolean defer_automtls;
} CpServerRunOptions;

/* The entries without storage, for g_application_add_main_option_entries (). */
const GOptionEntry *cp_server_run_option_entries (void);
void     cp_server_run_options_clear    (CpServerRunOptions *options);
/* Applies @options, then listens (the address from the option, the
 * environment, the property, or the default): 0 and the URL, else an exit
 * status (2: bad TLS files, 1: cannot listen) and @error. */
int      cp_server_apply_run_options    (CpServer            *server,
                                         CpServerRunOptions  *options,
                                         char               **url,
                                         GError             **error);

/* cp-server-reflection.c */
/* gRPC server reflection, v1 and v1alpha, describing the plugins' services. */
void     cp_server_register_reflection  (CpServer        *server);

/* cp-server-control.c */
/* Takes the secret a launching host put in the environment, and removes it
 * there so that the plugin's own children do not inherit it. */
void     cp_server_take_control_secret_from_env (CpServer *self);
/* Takes it out of the environment before any server exists (the first
 * server then takes it from there). */
void     cp_server_stash_control_secret_from_env (void);
/* PluginControl and PluginIdentity, as enabled. */
void     cp_server_register_control     (CpServer        *server);

/* cp-host-link.c */
/* Links to CpServer:host-url once the server listens: handshakes for a
 * runtime identity unless @managed (SetRuntimeIdentity gave one), then
 * registers the provides and reports health. Does nothing without a host
 * URL, before listening, or when already linked. */
void     cp_server_host_link_start      (CpServer        *self,
                                         gboolean         managed);
/* Reports the current health to the host when registered. */
void     cp_server_host_report_health   (CpServer        *self);
/* Unregisters every registration, each call bounded by
 * CpServer:host-timeout-ms; never fails. @callback may be NULL (close).
 * FALSE, without calling @callback, when there was nothing to unregister. */
gboolean cp_server_host_unregister_async (CpServer           *self,
                                          GAsyncReadyCallback callback,
                                          gpointer            user_data);
/* Stops the link's retries and calls (dispose). */
void     cp_server_host_link_stop       (CpServer        *self);

/* cp-server-shutdown.c */
/* cp_server_shutdown_async() with @timeout_ms instead of
 * CpServer:shutdown-timeout-ms (PluginControl.Shutdown's grace period). */
void     cp_server_shutdown_with_timeout (CpServer            *self,
                                          guint                timeout_ms,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);

G_END_DECLS
