/* cp-server-run.c: cp_server_run(), a plugin executable's main ()
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Parses its options (--listen, --insecure-control, --metrics, --reflection,
 * --tls-*, --workers), picks the address (option, environment, property, default),
 * catches SIGTERM and SIGINT, prints the URL served and runs the main loop
 * until the server closes. The option table and what the options do are
 * shared with cp_server_bind_application () (cp-server-application.c).
 */
#include "cp-server-state-private.h"
#include "cp-tls-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

/* ------------------------------------------------------------------ */
/* cp_server_run                                                        */

typedef struct {
  CpServer *server;
  GMainLoop *loop;
  guint n_signals;
} RunState;

static gboolean
on_unix_signal (gpointer user_data)
{
  RunState *state = user_data;

  /* First signal: graceful; second: now. */
  if (state->n_signals++ == 0)
    cp_server_shutdown_async (state->server, NULL, NULL, NULL);
  else
    cp_server_close (state->server);
  return G_SOURCE_CONTINUE;
}

static void
on_run_closed (CpServer *server,
               gpointer  user_data)
{
  RunState *state = user_data;

  g_main_loop_quit (state->loop);
}

static char *
pick_listen_address (CpServer   *self,
                     const char *option)
{
  const char *env;

  if (option != NULL && option[0] != '\0')
    return g_strdup (option);
  env = g_getenv (CP_LISTEN_ENV);
  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  env = g_getenv ("PORT");
  if (env != NULL && env[0] != '\0')
    return g_strdup_printf ("127.0.0.1:%s", env);
  if (self->listen_address != NULL)
    return g_strdup (self->listen_address);
  return g_strdup ("127.0.0.1:0");
}

/**
 * cp_server_set_tls_files:
 * @server: a [class@ConnectPlugin.Server]
 * @cert_pem: (type filename) (nullable): the server certificate (PEM; it
 *   may be followed by its chain, and hold the key when @key_pem is %NULL)
 * @key_pem: (type filename) (nullable): its private key (PEM)
 * @ca_pem: (type filename) (nullable): the CAs that client certificates
 *   must chain to (PEM)
 * @error: return location for a #GError
 *
 * Loads TLS settings from files, now, into
 * [property@ConnectPlugin.Server:tls-certificate] and
 * [property@ConnectPlugin.Server:tls-database]; arguments left %NULL leave
 * their property as it is. Call it before the server listens. A CA alone
 * does not make clients present certificates: set
 * [property@ConnectPlugin.Server:tls-authentication-mode] too.
 *
 * Returns: %TRUE, or %FALSE with @error set (unreadable or malformed files,
 *   a key without a certificate) and the server unchanged
 */
gboolean
cp_server_set_tls_files (CpServer    *server,
                         const char  *cert_pem,
                         const char  *key_pem,
                         const char  *ca_pem,
                         GError     **error)
{
  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return cp_tls_set_files (G_OBJECT (server), cert_pem, key_pem, ca_pem, error);
}

/* The options of cp_server_run () and cp_server_bind_application (). */
static const struct {
  const char *name;
  char short_name;
  GOptionArg arg;
  const char *description;
  const char *arg_description;
} run_options[] = {
  { "listen", 'l', G_OPTION_ARG_STRING, "Where to listen: HOST:PORT or unix:PATH", "ADDR" },
  { "insecure-control", 0, G_OPTION_ARG_NONE,
    "Without " CP_CONTROL_SECRET_ENV ", serve PluginControl and PluginIdentity "
    "to anyone who can connect", NULL },
  { "metrics", 0, G_OPTION_ARG_NONE, "Serve Prometheus metrics at /metrics", NULL },
  { "reflection", 0, G_OPTION_ARG_NONE,
    "Answer gRPC server reflection (grpc.reflection.v1 and v1alpha)", NULL },
  { "tls-cert", 0, G_OPTION_ARG_FILENAME, "Serve TLS with this certificate (PEM)", "FILE" },
  { "tls-key", 0, G_OPTION_ARG_FILENAME, "The private key of --tls-cert (PEM)", "FILE" },
  { "tls-ca", 0, G_OPTION_ARG_FILENAME, "Verify client certificates against these CAs (PEM)", "FILE" },
  { "tls-require-client-cert", 0, G_OPTION_ARG_NONE,
    "Require a client certificate valid for --tls-ca (mutual TLS)", NULL },
  { "workers", 0, G_OPTION_ARG_INT,
    "Serve connections on N worker threads (0: one per CPU; default 1)", "N" },
};

/* @entries (G_N_ELEMENTS (run_options) + 1) pointing into @options, or
 * without storage for NULL @options (a GApplication's, whose values come
 * in a GVariantDict). */
static void
fill_entries (GOptionEntry       *entries,
              CpServerRunOptions *options)
{
  gpointer data[G_N_ELEMENTS (run_options)] = { 0 };

  if (options != NULL)
    {
      data[0] = &options->listen;
      data[1] = &options->insecure_control;
      data[2] = &options->metrics;
      data[3] = &options->reflection;
      data[4] = &options->tls_cert;
      data[5] = &options->tls_key;
      data[6] = &options->tls_ca;
      data[7] = &options->tls_require_client_cert;
      data[8] = &options->workers;
    }
  for (guint i = 0; i < G_N_ELEMENTS (run_options); i++)
    entries[i] = (GOptionEntry) { run_options[i].name, run_options[i].short_name, 0,
                                  run_options[i].arg, data[i], run_options[i].description,
                                  run_options[i].arg_description };
  entries[G_N_ELEMENTS (run_options)] = (GOptionEntry) G_OPTION_ENTRY_NULL;
}

const GOptionEntry *
cp_server_run_option_entries (void)
{
  static GOptionEntry entries[G_N_ELEMENTS (run_options) + 1];

  if (entries[0].long_name == NULL)
    fill_entries (entries, NULL);
  return entries;
}

void
cp_server_run_options_clear (CpServerRunOptions *options)
{
  g_clear_pointer (&options->listen, g_free);
  g_clear_pointer (&options->tls_cert, g_free);
  g_clear_pointer (&options->tls_key, g_free);
  g_clear_pointer (&options->tls_ca, g_free);
}

/* ---- AutoMTLS: the credentials the launching host sends ---- */

/* More than a certificate, a key and a CA could need. */
#define AUTOMTLS_PIPE_MAX (64 * 1024)

/* A launching host gives the number of a pipe (CP_AUTOMTLS_FD_ENV) that it
 * fills while the plugin starts. Before main (), automtls_launch_early ()
 * takes the variable and starts loading the TLS backend (GnuTLS and
 * glib-networking's module: about a millisecond). A thread, started as
 * soon as cp_server_run () begins, waits for that, starts a worker of
 * GTask's pool (where the first handshake will run) to initialise the
 * class of server connections (GnuTLS parses its priorities there), reads
 * the pipe and makes the certificate and the database that verifies the
 * host. The main thread parses its options meanwhile, then either takes
 * them (waiting for the thread), or, in cp_server_run (), listens and
 * announces its https:// URL at once, the HTTP server keeping the
 * connections it accepts until the thread, done, has the credentials set
 * from the server's context (automtls_ready_cb ()). */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean ready;
  int fd;
  GTlsCertificate *certificate;
  GTlsDatabase *database;
  GError *error;
  /* Set by automtls_pipe_defer (): the thread, done, tells the server in
   * its context. */
  CpServer *notify_server;
  GMainContext *notify_context;
} AutoMtlsPipe;

G_LOCK_DEFINE_STATIC (automtls_pipe);
static AutoMtlsPipe *automtls_pipe;   /* begun, not yet taken */

static void
automtls_pipe_clear (gpointer data)
{
  AutoMtlsPipe *p = data;

  g_mutex_clear (&p->lock);
  g_cond_clear (&p->cond);
  g_clear_object (&p->certificate);
  g_clear_object (&p->database);
  g_clear_error (&p->error);
  g_clear_object (&p->notify_server);
  g_clear_pointer (&p->notify_context, g_main_context_unref);
}

/* Reads @fd to its end (at most AUTOMTLS_PIPE_MAX bytes) and closes it. */
static GByteArray *
read_pipe (int      fd,
           GError **error)
{
  GByteArray *data = g_byte_array_sized_new (4096);
  gboolean ok = TRUE;

  while (ok)
    {
      guint8 buf[4096];
      gssize n = read (fd, buf, sizeof buf);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "reading descriptor %d: %s", fd, g_strerror (saved_errno));
          ok = FALSE;
        }
      else if (n == 0)
        break;
      else if (data->len + (gsize) n > AUTOMTLS_PIPE_MAX)
        {
          g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "more than %d bytes on descriptor %d", AUTOMTLS_PIPE_MAX, fd);
          ok = FALSE;
        }
      else
        g_byte_array_append (data, buf, (guint) n);
      explicit_bzero (buf, sizeof buf);
    }
  close (fd);
  if (!ok)
    {
      explicit_bzero (data->data, data->len);
      g_byte_array_unref (data);
      return NULL;
    }
  return data;
}

/* "CERT\0KEY\0CA\0CLIENT\0" from the pipe into @p's certificate and
 * database: the database trusts the host's client certificate CLIENT
 * alone; without CLIENT (a host of an earlier version), the CA. */
static gboolean
load_from_pipe (AutoMtlsPipe  *p,
                GError       **error)
{
  GByteArray *data = read_pipe (p->fd, error);
  const char *parts[4] = { NULL, NULL, NULL, NULL };
  guint n_parts = 0;
  gsize start = 0;
  gboolean ok = FALSE;

  p->fd = -1;
  if (data == NULL)
    return FALSE;
  for (gsize i = 0; i < data->len; i++)
    if (data->data[i] == '\0')
      {
        if (n_parts < G_N_ELEMENTS (parts))
          parts[n_parts] = (const char *) data->data + start;
        n_parts++;
        start = i + 1;
      }
  if (n_parts < 3 || n_parts > G_N_ELEMENTS (parts) || start != data->len ||
      parts[0][0] == '\0' || parts[1][0] == '\0' || parts[2][0] == '\0' ||
      (n_parts == 4 && parts[3][0] == '\0'))
    g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                 "expected a certificate, a key, a CA and a client certificate "
                 "(%u bytes, %u parts)", data->len, n_parts);
  else
    {
      char *pem = g_strconcat (parts[0], "\n", parts[1], NULL);

      p->certificate = g_tls_certificate_new_from_pem (pem, -1, error);
      explicit_bzero (pem, strlen (pem));
      g_free (pem);
      if (p->certificate != NULL && n_parts == 4)
        p->database = cp_tls_pinned_database_new_from_pem (parts[3], error);
      else if (p->certificate != NULL)
        p->database = cp_tls_database_new_from_pem (parts[2], error);
      ok = p->database != NULL;
    }
  explicit_bzero (data->data, data->len);
  g_byte_array_unref (data);
  return ok;
}

/* In GTask's thread pool, as the first TLS handshake will be: its worker
 * thread is started now, and idles until then. The class of the server
 * connections (GnuTLS parses its priorities when it is initialised) is
 * held for good: the first connection would initialise it anyway. */
static void
warm_tls_classes (GTask        *task,
                  gpointer      source_object,
                  gpointer      task_data,
                  GCancellable *cancellable)
{
  GTlsBackend *backend = g_tls_backend_get_default ();

  (void) g_type_class_ref (g_tls_backend_get_server_connection_type (backend));
  g_task_return_boolean (task, TRUE);
}

static gboolean automtls_ready_cb (gpointer data);

static void
automtls_pipe_release (gpointer data)
{
  g_atomic_rc_box_release_full (data, automtls_pipe_clear);
}

static gpointer
automtls_pipe_thread (gpointer data)
{
  AutoMtlsPipe *p = data;
  GError *error = NULL;
  GMainContext *context;

  cp_tls_preload_backend ();
  (void) g_tls_backend_get_default ();
  /* While this thread reads the credentials (a fifth of a millisecond),
   * what the first TLS connection would otherwise do before its handshake
   * runs beside it. The class of certificates first: GObject initialises
   * one class at a time, and the other's takes as long. */
  (void) g_type_class_ref (g_tls_backend_get_certificate_type (g_tls_backend_get_default ()));
  {
    GTask *task = g_task_new (NULL, NULL, NULL, NULL);

    g_task_set_source_tag (task, warm_tls_classes);
    g_task_run_in_thread (task, warm_tls_classes);
    g_object_unref (task);
  }
  if (!load_from_pipe (p, &error))
    g_clear_object (&p->certificate);
  g_mutex_lock (&p->lock);
  p->error = error;
  p->ready = TRUE;
  g_cond_signal (&p->cond);
  context = g_steal_pointer (&p->notify_context);
  g_mutex_unlock (&p->lock);
  if (context != NULL)
    {
      GSource *source = g_idle_source_new ();

      /* Before the connections the host makes. */
      g_source_set_priority (source, G_PRIORITY_HIGH);
      g_source_set_callback (source, automtls_ready_cb, g_atomic_rc_box_acquire (p),
                             automtls_pipe_release);
      g_source_set_static_name (source, "[connectplugin] automtls ready");
      g_source_attach (source, context);
      g_source_unref (source);
      g_main_context_unref (context);
    }
  g_atomic_rc_box_release_full (p, automtls_pipe_clear);
  return NULL;
}

/* CP_AUTOMTLS_FD_ENV's value, taken out of the environment by
 * automtls_launch_early (). */
static char *early_automtls_fd;

static void unset_automtls_env (void);

/* A plugin launched with AutoMTLS (only a launching host sets the
 * variable): GnuTLS and GIO's TLS module start loading as the library
 * does, before main (), on a thread of their own. They are on the way to
 * the plugin's first answer (its handshake needs them) and take about a
 * millisecond, which the program's own start-up then overlaps.
 *
 * The launch's variables leave the environment first, here, while the
 * process has one thread: what the thread reads of the environment is
 * never changed by this library under it. */
__attribute__ ((constructor)) static void
automtls_launch_early (void)
{
  const char *fd = g_getenv (CP_AUTOMTLS_FD_ENV);
  guint64 n;
  int flags;

  if (fd == NULL)
    return;
  /* Not inherited by what the program runs before cp_server_run (). */
  if (g_ascii_string_to_unsigned (fd, 10, 3, G_MAXINT, &n, NULL) &&
      (flags = fcntl ((int) n, F_GETFD)) >= 0)
    (void) fcntl ((int) n, F_SETFD, flags | FD_CLOEXEC);
  early_automtls_fd = g_strdup (fd);
  g_unsetenv (CP_AUTOMTLS_FD_ENV);
  unset_automtls_env ();
  cp_server_stash_control_secret_from_env ();
  cp_tls_preload_backend_start ();
}

/* Removes the AutoMTLS variables from the environment (wiping the key's
 * bytes, as /proc/PID/environ shows the original ones): the plugin's own
 * children must not inherit them. */
static void
unset_automtls_env (void)
{
  const char *key = g_getenv (CP_AUTOMTLS_KEY_ENV);

  if (key != NULL)
    explicit_bzero ((char *) key, strlen (key));
  g_unsetenv (CP_AUTOMTLS_CERT_ENV);
  g_unsetenv (CP_AUTOMTLS_KEY_ENV);
  g_unsetenv (CP_AUTOMTLS_CA_ENV);
}

/* Starts reading the host's pipe when CP_AUTOMTLS_FD_ENV names one; a
 * no-op otherwise and after the first call. The variable is removed and
 * the descriptor made close-on-exec at once: the plugin's own children
 * inherit neither. The environment is changed before the thread starts,
 * never while it runs. */
static void
automtls_pipe_begin (CpServer *server)
{
  g_autofree char *early = g_steal_pointer (&early_automtls_fd);
  const char *env = early != NULL ? early : g_getenv (CP_AUTOMTLS_FD_ENV);
  AutoMtlsPipe *p;
  guint64 fd = 0;
  int flags = -1;
  GError *error = NULL;

  if (env == NULL)
    return;
  if (!g_ascii_string_to_unsigned (env, 10, 3, G_MAXINT, &fd, NULL) ||
      (flags = fcntl ((int) fd, F_GETFD)) < 0)
    g_set_error (&error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                 "%s=%s is not an open descriptor", CP_AUTOMTLS_FD_ENV, env);
  else
    (void) fcntl ((int) fd, F_SETFD, flags | FD_CLOEXEC);
  if (early == NULL)
    {
      g_unsetenv (CP_AUTOMTLS_FD_ENV);
      unset_automtls_env ();
    }
  /* This host sends nothing else in the environment, and no one changes
   * it while the thread runs: the server's control secret is taken now
   * (from where automtls_launch_early () put it, if it did). */
  cp_server_take_control_secret_from_env (server);

  p = g_atomic_rc_box_new0 (AutoMtlsPipe);
  g_mutex_init (&p->lock);
  g_cond_init (&p->cond);
  p->fd = error == NULL ? (int) fd : -1;
  if (error != NULL)
    {
      p->error = error;
      p->ready = TRUE;
    }
  else
    g_thread_unref (g_thread_new ("cp-automtls", automtls_pipe_thread,
                                  g_atomic_rc_box_acquire (p)));
  G_LOCK (automtls_pipe);
  if (automtls_pipe != NULL)
    g_atomic_rc_box_release_full (automtls_pipe, automtls_pipe_clear);
  automtls_pipe = p;
  G_UNLOCK (automtls_pipe);
}

/* What the pipe gave, once read; FALSE without a pipe. */
static gboolean
automtls_pipe_take (GTlsCertificate **certificate,
                    GTlsDatabase    **database,
                    GError          **error)
{
  AutoMtlsPipe *p;

  G_LOCK (automtls_pipe);
  p = g_steal_pointer (&automtls_pipe);
  G_UNLOCK (automtls_pipe);
  if (p == NULL)
    return FALSE;
  g_mutex_lock (&p->lock);
  while (!p->ready)
    g_cond_wait (&p->cond, &p->lock);
  *certificate = g_steal_pointer (&p->certificate);
  *database = g_steal_pointer (&p->database);
  if (p->error != NULL)
    g_propagate_error (error, g_steal_pointer (&p->error));
  g_mutex_unlock (&p->lock);
  g_atomic_rc_box_release_full (p, automtls_pipe_clear);
  return TRUE;
}

/* The server's qdata: the error of credentials that came bad. */
static GQuark
automtls_error_quark (void)
{
  return g_quark_from_static_string ("cp-automtls-error");
}

/* In the server's context, once the pipe has been read (automtls_pipe_defer
 * ()): serves TLS with what it gave, or closes the server, keeping the
 * error for cp_server_run () to report. */
static gboolean
automtls_ready_cb (gpointer data)
{
  AutoMtlsPipe *p = data;
  g_autoptr(CpServer) server = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  GError *error = NULL;

  g_mutex_lock (&p->lock);
  server = g_steal_pointer (&p->notify_server);
  certificate = g_steal_pointer (&p->certificate);
  database = g_steal_pointer (&p->database);
  error = g_steal_pointer (&p->error);
  g_mutex_unlock (&p->lock);
  if (error == NULL)
    g_object_set (server,
                  "tls-certificate", certificate,
                  "tls-database", database,
                  NULL);
  /* The connections accepted meanwhile: served, or closed without a
   * certificate. */
  cp_http_server_set_tls_pending (cp_rpc_server_get_http_server (server->rpc_server), FALSE);
  if (error != NULL)
    {
      g_prefix_error (&error, "bad AutoMTLS credentials from the host: ");
      g_object_set_qdata_full (G_OBJECT (server), automtls_error_quark (), error,
                               (GDestroyNotify) g_error_free);
      cp_server_close (server);
    }
  return G_SOURCE_REMOVE;
}

/* When the thread reading the pipe is still at work: the server listens
 * without waiting for it, as https:// already, and requires client
 * certificates; automtls_ready_cb () sets the credentials when they come.
 * FALSE (nothing done) without a pipe, or when the pipe has been read. */
static gboolean
automtls_pipe_defer (CpServer *server)
{
  AutoMtlsPipe *p;
  gboolean deferred = FALSE;

  G_LOCK (automtls_pipe);
  p = automtls_pipe;
  if (p != NULL)
    {
      g_mutex_lock (&p->lock);
      if (!p->ready)
        {
          p->notify_server = g_object_ref (server);
          p->notify_context = g_main_context_ref (cp_rpc_server_get_context (server->rpc_server));
          automtls_pipe = NULL;
          deferred = TRUE;
        }
      g_mutex_unlock (&p->lock);
    }
  G_UNLOCK (automtls_pipe);
  if (!deferred)
    return FALSE;
  /* The thread's reference and the idle source's keep it. */
  g_atomic_rc_box_release_full (p, automtls_pipe_clear);
  g_object_set (server, "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUIRED, NULL);
  cp_http_server_set_tls_pending (cp_rpc_server_get_http_server (server->rpc_server), TRUE);
  return TRUE;
}

/* Takes the AutoMTLS credentials the host sent: from its pipe, or (hosts
 * of older versions) from the variables CP_AUTOMTLS_CERT_ENV, _KEY_ENV and
 * _CA_ENV, which it removes from the environment either way. Unless TLS
 * was set up otherwise (@explicit_tls), serves TLS with the certificate
 * given and requires client certificates that the database given accepts
 * (the host's own, or any from the CA given). With @defer, a pipe not yet
 * read is not waited for (automtls_pipe_defer ()). */
static gboolean
apply_automtls (CpServer  *server,
                gboolean   explicit_tls,
                gboolean   defer,
                GError   **error)
{
  g_autoptr(GTlsCertificate) certificate = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GTlsCertificate) current = NULL;
  g_autoptr(GError) local_error = NULL;

  automtls_pipe_begin (server);
  if (defer && !explicit_tls)
    {
      g_object_get (server, "tls-certificate", &current, NULL);
      if (current == NULL && automtls_pipe_defer (server))
        return TRUE;
      g_clear_object (&current);
    }
  if (!automtls_pipe_take (&certificate, &database, &local_error))
    {
      const char *cert = g_getenv (CP_AUTOMTLS_CERT_ENV);
      const char *key = g_getenv (CP_AUTOMTLS_KEY_ENV);
      const char *ca = g_getenv (CP_AUTOMTLS_CA_ENV);

      if (cert == NULL && key == NULL && ca == NULL)
        return TRUE;
      if (cert != NULL && key != NULL && ca != NULL && *cert != '\0' && *key != '\0' && *ca != '\0')
        {
          g_autofree char *pem = g_strconcat (cert, "\n", key, NULL);

          cp_tls_preload_backend ();
          certificate = g_tls_certificate_new_from_pem (pem, -1, &local_error);
          explicit_bzero (pem, strlen (pem));
          if (certificate != NULL)
            database = cp_tls_database_new_from_pem (ca, &local_error);
        }
      unset_automtls_env ();
      if (database == NULL && local_error == NULL)
        return TRUE;          /* incomplete: ignored, as before */
    }

  g_object_get (server, "tls-certificate", &current, NULL);
  if (explicit_tls || current != NULL)
    return TRUE;
  if (local_error != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                  "bad AutoMTLS credentials from the host: ");
      return FALSE;
    }
  g_object_set (server,
                "tls-certificate", certificate,
                "tls-database", database,
                "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUIRED,
                NULL);
  return TRUE;
}

int
cp_server_apply_run_options (CpServer            *server,
                             CpServerRunOptions  *options,
                             char               **url,
                             GError             **error)
{
  g_autofree char *address = NULL;

  if (!server->plugin_control_set)
    server->plugin_control_enabled = TRUE;
  if (options->insecure_control)
    g_object_set (server, "control-allow-unauthenticated", TRUE, NULL);
  if (options->metrics)
    g_object_set (server, "metrics-enabled", TRUE, NULL);
  if (options->reflection)
    g_object_set (server, "reflection-enabled", TRUE, NULL);
  if (!cp_server_set_tls_files (server, options->tls_cert, options->tls_key, options->tls_ca, error))
    return 2;
  if (options->tls_require_client_cert)
    g_object_set (server, "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUIRED, NULL);
  if (!apply_automtls (server, options->tls_cert != NULL, options->defer_automtls, error))
    return 2;
  if (options->workers < -1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--workers must be 0 (one per CPU) or more, not %d", options->workers);
      return 2;
    }
  if (options->workers >= 0)
    g_object_set (server, "n-workers", (guint) MIN (options->workers, 1024), NULL);

  /* connect-plugin-go's convention: a plugin given HOST_URL links to it. */
  if (server->host_url == NULL && g_getenv ("HOST_URL") != NULL && *g_getenv ("HOST_URL") != '\0')
    g_object_set (server, "host-url", g_getenv ("HOST_URL"), NULL);
  address = pick_listen_address (server, options->listen);
  *url = cp_server_listen (server, address, error);
  if (*url == NULL)
    {
      g_prefix_error (error, "cannot serve on %s: ", address);
      return 1;
    }
  return 0;
}

/**
 * cp_server_run:
 * @server: a [class@ConnectPlugin.Server]
 * @argc: the program's argument count
 * @argv: (array length=argc) (nullable): the program's arguments
 *
 * Runs a plugin executable: the whole of its `main ()` after the plugins
 * have been added. It takes the address to listen on from `--listen ADDR`,
 * else the environment variable `CONNECTPLUGIN_LISTEN`, else `PORT`
 * (`127.0.0.1:$PORT`), else [property@ConnectPlugin.Server:listen-address], else `127.0.0.1:0`;
 * listens; prints the URL it serves as the first line of standard output;
 * and runs the thread-default main loop until the server stops. `SIGTERM`
 * and `SIGINT` start a graceful shutdown (a second one closes at once), so
 * does PluginControl.Shutdown, which this function enables unless
 * [property@ConnectPlugin.Server:plugin-control-enabled] was set explicitly.
 *
 * When the environment variable `HOST_URL` is set (connect-plugin-go's
 * convention) and [property@ConnectPlugin.Server:host-url] is not, it becomes
 * the host URL: the server registers with that host once it listens.
 *
 * PluginControl and PluginIdentity calls must carry the secret that the
 * launching host gave in the environment variable `CONNECTPLUGIN_CONTROL_SECRET`
 * (see [property@ConnectPlugin.Server:control-secret]); a plugin started without one refuses
 * them, unless it is run with `--insecure-control`
 * ([property@ConnectPlugin.Server:control-allow-unauthenticated]), for hosts that cannot send a
 * secret.
 *
 * `--metrics` sets [property@ConnectPlugin.Server:metrics-enabled]: the
 * server then serves its counters at `/metrics` for Prometheus to scrape.
 * `--reflection` sets [property@ConnectPlugin.Server:reflection-enabled].
 * `--workers N` sets [property@ConnectPlugin.Server:n-workers]: N threads
 * serve the connections (0: one per CPU), so the plugin's handlers must
 * then be thread-safe.
 *
 * A plugin that is a [class@Gio.Application] uses
 * [method@ConnectPlugin.Server.bind_application] instead: the same options
 * and behaviour, in the application's life cycle.
 *
 * `--tls-cert FILE --tls-key FILE` serve TLS (`https://`) with that
 * certificate and key; `--tls-ca FILE` gives the CAs that client
 * certificates must chain to and `--tls-require-client-cert` requires one
 * (mutual TLS; see [method@ConnectPlugin.Server.set_tls_files]).
 *
 * A plugin launched by a [class@ProcessDiscovery] with AutoMTLS (see
 * [property@ConnectPlugin.ProcessDiscovery:auto-mtls]) reads an ephemeral
 * certificate, its key and a CA from the pipe whose descriptor number is in
 * the environment variable `CONNECTPLUGIN_AUTOMTLS_FD`
 * ([const@ConnectPlugin.AUTOMTLS_FD_ENV]; a host of an older version puts
 * them in `CONNECTPLUGIN_AUTOMTLS_CERT`, `CONNECTPLUGIN_AUTOMTLS_KEY` and
 * `CONNECTPLUGIN_AUTOMTLS_CA`): unless `--tls-cert` or
 * [property@ConnectPlugin.Server:tls-certificate] is set, it serves TLS with
 * them and requires client certificates from that CA, so that only the
 * host that launched it can call it. It closes the pipe and removes the
 * variables from its environment either way. It starts reading the pipe
 * (and loading the TLS backend) in a thread as soon as it is called, and
 * takes the control secret's variable out of the environment then.
 *
 * Standard output belongs to the host: its first line is the address.
 * GLib's default log writer prints `INFO` and `DEBUG` records (shown with
 * `G_MESSAGES_DEBUG`) on standard output; a [class@ProcessDiscovery] logs
 * such records and keeps waiting for the address, but other hosts
 * (connect-plugin-go's) take the first line as it is. A plugin that logs
 * at those levels before it serves should call
 * [func@GLib.log_writer_default_set_use_stderr] at the top of `main ()`,
 * before any thread is created (GLib refuses it later).
 *
 * Returns: the exit status for `main ()`: 0 after a clean shutdown, 1 on
 *   errors (reported on standard error), 2 for bad arguments
 */
int
cp_server_run (CpServer  *server,
               int        argc,
               char     **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainContext) main_context = NULL;
  g_auto(GStrv) args = NULL;
  g_autofree char *url = NULL;
  CpServerRunOptions options = { .workers = -1, .defer_automtls = TRUE };
  GOptionEntry entries[G_N_ELEMENTS (run_options) + 1];
  GError *automtls_error;
  RunState state = { server, NULL, 0 };
  GSource *sigterm_source, *sigint_source;
  gulong closed_id;
  int status;

  g_return_val_if_fail (CP_IS_SERVER (server), 1);

  /* First: AutoMTLS credentials load while the options are parsed. */
  automtls_pipe_begin (server);

  /* Parse a copy: the caller's argv stays as it was. */
  args = g_new0 (char *, (gsize) MAX (argc, 0) + 1);
  for (int i = 0; argv != NULL && i < argc; i++)
    args[i] = g_strdup (argv[i]);
  fill_entries (entries, &options);
  context = g_option_context_new ("- connectplugin plugin");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse_strv (context, &args, &error))
    {
      g_printerr ("%s\n", error->message);
      cp_server_run_options_clear (&options);
      return 2;
    }

  /* Signals are caught from before the address is announced: a host may
   * send SIGTERM as soon as it has read it. */
  main_context = g_main_context_ref_thread_default ();
  state.loop = g_main_loop_new (main_context, FALSE);
  closed_id = g_signal_connect (server, "closed", G_CALLBACK (on_run_closed), &state);
  sigterm_source = g_unix_signal_source_new (SIGTERM);
  g_source_set_callback (sigterm_source, on_unix_signal, &state, NULL);
  g_source_attach (sigterm_source, main_context);
  sigint_source = g_unix_signal_source_new (SIGINT);
  g_source_set_callback (sigint_source, on_unix_signal, &state, NULL);
  g_source_attach (sigint_source, main_context);

  status = cp_server_apply_run_options (server, &options, &url, &error);
  cp_server_run_options_clear (&options);
  if (status != 0)
    g_printerr ("%s\n", error->message);
  else
    {
      /* The first line of stdout: the host reads it to find us. */
      fprintf (stdout, "%s\n", url);
      fflush (stdout);

      if (!server->closed)
        g_main_loop_run (state.loop);
    }

  g_source_destroy (sigterm_source);
  g_source_unref (sigterm_source);
  g_source_destroy (sigint_source);
  g_source_unref (sigint_source);
  g_signal_handler_disconnect (server, closed_id);
  g_main_loop_unref (state.loop);

  /* Announced, then given bad credentials (automtls_ready_cb ()). */
  automtls_error = g_object_steal_qdata (G_OBJECT (server), automtls_error_quark ());
  if (automtls_error != NULL)
    {
      if (status == 0)
        {
          g_printerr ("%s\n", automtls_error->message);
          status = 1;
        }
      g_error_free (automtls_error);
    }
  if (status != 0)
    {
      if (url != NULL && g_str_has_prefix (url, "unix:"))
        (void) g_unlink (url + strlen ("unix:"));
      return status;
    }
  if (g_str_has_prefix (url, "unix:"))
    (void) g_unlink (url + strlen ("unix:"));
  return 0;
}
