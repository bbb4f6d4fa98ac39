/* cp-server-application.c: a plugin executable that is a GApplication
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * cp_server_bind_application (): what cp_server_run () does, inside a
 * GApplication's life cycle instead of its own main loop. The options
 * (--listen, --metrics, --tls-cert, …) become the application's; when its
 * local options are handled the server listens and prints its URL on the
 * first line of standard output; the application is held while the server
 * serves; SIGTERM and SIGINT start a graceful shutdown (a second one closes
 * at once); the application is released when the server closes.
 */
#include "cp-server-state-private.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

typedef struct {
  CpServer *server;           /* strong */
  GApplication *application;  /* unowned: the binding lives on it */
  char *url;
  guint n_signals;
  guint sigterm_id;
  guint sigint_id;
  gulong closed_id;
  gboolean held;
} Binding;

static void
binding_free (gpointer data)
{
  Binding *b = data;

  if (b->sigterm_id != 0)
    g_source_remove (b->sigterm_id);
  if (b->sigint_id != 0)
    g_source_remove (b->sigint_id);
  g_clear_signal_handler (&b->closed_id, b->server);
  if (b->url != NULL && g_str_has_prefix (b->url, "unix:"))
    (void) g_unlink (b->url + strlen ("unix:"));
  g_free (b->url);
  g_object_unref (b->server);
  g_free (b);
}

static gboolean
on_unix_signal (gpointer user_data)
{
  Binding *b = user_data;

  /* First signal: graceful; second: now. */
  if (b->n_signals++ == 0)
    cp_server_shutdown_async (b->server, NULL, NULL, NULL);
  else
    cp_server_close (b->server);
  return G_SOURCE_CONTINUE;
}

static void
on_closed (CpServer *server,
           gpointer  user_data)
{
  Binding *b = user_data;

  if (b->held)
    {
      b->held = FALSE;
      g_application_release (b->application);
    }
}

static int
on_handle_local_options (GApplication *application,
                         GVariantDict *dict,
                         gpointer      user_data)
{
  Binding *b = user_data;
  CpServerRunOptions options = { .workers = -1 };
  g_autoptr(GError) error = NULL;
  int status;

  g_variant_dict_lookup (dict, "listen", "s", &options.listen);
  g_variant_dict_lookup (dict, "insecure-control", "b", &options.insecure_control);
  g_variant_dict_lookup (dict, "metrics", "b", &options.metrics);
  g_variant_dict_lookup (dict, "reflection", "b", &options.reflection);
  g_variant_dict_lookup (dict, "tls-cert", "^ay", &options.tls_cert);
  g_variant_dict_lookup (dict, "tls-key", "^ay", &options.tls_key);
  g_variant_dict_lookup (dict, "tls-ca", "^ay", &options.tls_ca);
  g_variant_dict_lookup (dict, "tls-require-client-cert", "b", &options.tls_require_client_cert);
  g_variant_dict_lookup (dict, "workers", "i", &options.workers);

  status = cp_server_apply_run_options (b->server, &options, &b->url, &error);
  cp_server_run_options_clear (&options);
  if (status != 0)
    {
      g_printerr ("%s\n", error->message);
      return status;
    }
  /* The first line of stdout: the host reads it to find us. */
  fprintf (stdout, "%s\n", b->url);
  fflush (stdout);
  return -1;
}

static void
on_startup (GApplication *application,
            gpointer      user_data)
{
  Binding *b = user_data;

  if (!b->server->closed && !b->held)
    {
      b->held = TRUE;
      g_application_hold (application);
    }
}

static void
on_activate (GApplication *application,
             gpointer      user_data)
{
  /* Serving is the plugin's work: nothing to show. (Connected so that
   * GApplication does not warn about an application without activate.) */
}

/**
 * cp_server_bind_application:
 * @server: a [class@ConnectPlugin.Server], with its plugins added
 * @application: a [class@Gio.Application], not yet run (typically
 *   %G_APPLICATION_NON_UNIQUE: each launch is a plugin process of its own)
 *
 * Makes @application run @server as [method@ConnectPlugin.Server.run]
 * would, for a plugin that is a GApplication (with its resources,
 * settings, actions): [method@Gio.Application.run] then does it all.
 *
 * - The options of [method@ConnectPlugin.Server.run] (`--listen`,
 *   `--metrics`, `--reflection`, `--tls-cert`, `--tls-key`, `--tls-ca`,
 *   `--tls-require-client-cert`, `--insecure-control`) become the
 *   application's main options.
 * - When the local options are handled, the server listens (the address
 *   chosen as [method@ConnectPlugin.Server.run] chooses it) and prints its
 *   URL on the first line of standard output; if it cannot, the error is
 *   printed and the application exits with status 1 (2 for bad options).
 * - The application is held from its startup until the server closes;
 *   `SIGTERM` and `SIGINT` start a graceful shutdown (a second one closes
 *   at once), as does PluginControl.Shutdown.
 *
 * The application's own `startup`, `activate` and `shutdown` handlers run
 * as usual; `activate` needs none.
 */
void
cp_server_bind_application (CpServer     *server,
                            GApplication *application)
{
  Binding *b;

  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (G_IS_APPLICATION (application));

  b = g_new0 (Binding, 1);
  b->server = g_object_ref (server);
  b->application = application;
  g_object_set_data_full (G_OBJECT (application), "cp-server-binding", b, binding_free);

  g_application_add_main_option_entries (application, cp_server_run_option_entries ());
  g_signal_connect (application, "handle-local-options", G_CALLBACK (on_handle_local_options), b);
  g_signal_connect (application, "startup", G_CALLBACK (on_startup), b);
  g_signal_connect (application, "activate", G_CALLBACK (on_activate), b);
  b->closed_id = g_signal_connect (server, "closed", G_CALLBACK (on_closed), b);
  /* Caught from before the address is announced: a host may send SIGTERM
   * as soon as it has read it. */
  b->sigterm_id = g_unix_signal_add (SIGTERM, on_unix_signal, b);
  b->sigint_id = g_unix_signal_add (SIGINT, on_unix_signal, b);
}
