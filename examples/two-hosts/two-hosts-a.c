/* two-hosts-a.c: host A launches the KV plugin and registers it in etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   two-hosts-a --etcd URL [--prefix P] [--ttl SECONDS] [--plugin PATH]
 *               [--tls-cert FILE --tls-key FILE --tls-ca FILE]
 *
 * Launches kv-plugin (next to ../kv/ of this program unless --plugin says
 * where) through CpProcessDiscovery over TCP, serving mutual TLS with the
 * given files, and registers the URL it serves in etcd
 * (CpEtcdRegistration, key PREFIX kv/ID, lease of --ttl seconds renewed
 * while this program runs). When the plugin dies, the entry is revoked
 * and the plugin is restarted after a second; its new URL is registered
 * again. When this program dies, its lease expires and the entry goes.
 *
 * Prints one line per event on standard output, for people and tests:
 *   registered URL PID     the plugin (process PID) is in etcd
 *   revoked                its entry was removed (it exited)
 */
#include <glib-unix.h>
#include <stdio.h>

#include <connectplugin.h>

typedef struct {
  char **etcd;
  char *prefix;
  guint ttl;
  CpProcessDiscovery *discovery;
  CpEtcdRegistration *registration;
  GMainLoop *loop;
} HostA;

static void
registered_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  HostA *host = user_data;
  CpEtcdRegistration *registration = CP_ETCD_REGISTRATION (source);
  g_autoptr(GError) error = NULL;

  if (!cp_etcd_registration_register_finish (registration, result, &error))
    {
      g_printerr ("two-hosts-a: registering in etcd: %s\n", error->message);
      return;
    }
  if (registration != host->registration)
    return;  /* superseded meanwhile */
  g_print ("registered %s %d\n", cp_process_discovery_get_url (host->discovery),
           (int) cp_process_discovery_get_pid (host->discovery));
}

static void
revoked_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  /* Failing is harmless: the lease then expires. */
  if (!cp_etcd_registration_revoke_finish (CP_ETCD_REGISTRATION (source), result, &error))
    g_printerr ("two-hosts-a: revoking: %s\n", error->message);
  g_object_unref (source);
}

/* The plugin's URL appeared (launched) or went (exited): follow it in etcd. */
static void
on_url (CpProcessDiscovery *discovery,
        GParamSpec         *pspec,
        HostA              *host)
{
  const char *url = cp_process_discovery_get_url (discovery);

  if (host->registration != NULL)
    {
      cp_etcd_registration_revoke_async (host->registration, NULL, revoked_cb, NULL);
      host->registration = NULL;
      g_print ("revoked\n");
    }
  if (url == NULL)
    return;
  host->registration = g_object_new (CP_TYPE_ETCD_REGISTRATION,
                                     "endpoints", host->etcd,
                                     "prefix", host->prefix,
                                     "name", "kv",
                                     "url", url,
                                     "ttl", host->ttl,
                                     "version", "1.0.0",
                                     NULL);
  cp_etcd_registration_set_metadata (host->registration, "host", g_get_host_name ());
  cp_etcd_registration_register_async (host->registration, NULL, registered_cb, host);
}

static void
started_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  HostA *host = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = cp_process_discovery_start_finish (CP_PROCESS_DISCOVERY (source),
                                                            result, &error);

  if (url == NULL)
    {
      g_printerr ("two-hosts-a: %s\n", error->message);
      g_main_loop_quit (host->loop);
    }
}

static void
done_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  (*(guint *) user_data)--;
}

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (((HostA *) user_data)->loop);
  return G_SOURCE_CONTINUE;
}

static char *
find_plugin (void)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = g_path_get_dirname (self != NULL ? self : ".");

  return g_build_filename (dir, "..", "kv", "kv-plugin", NULL);
}

int
main (int argc, char **argv)
{
  HostA host = { .ttl = 5 };
  g_autofree char *plugin = NULL, *cert = NULL, *key = NULL, *ca = NULL;
  int ttl = 5;
  GOptionEntry entries[] = {
    { "etcd", 0, 0, G_OPTION_ARG_STRING_ARRAY, &host.etcd, "etcd client URL (repeatable)", "URL" },
    { "prefix", 0, 0, G_OPTION_ARG_STRING, &host.prefix, "Key prefix", "PREFIX" },
    { "ttl", 0, 0, G_OPTION_ARG_INT, &ttl, "Lease TTL in seconds (5)", "SECONDS" },
    { "plugin", 0, 0, G_OPTION_ARG_FILENAME, &plugin, "The kv-plugin executable", "PATH" },
    { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "The plugin's certificate (PEM)", "FILE" },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &key, "Its private key (PEM)", "FILE" },
    { "tls-ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "CA that signs the hosts' client certificates", "FILE" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— launch the KV plugin, register it in etcd");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) plugin_argv = g_ptr_array_new ();

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || ttl < 1)
    {
      g_printerr ("two-hosts-a: %s\n", error != NULL ? error->message : "--ttl must be at least 1");
      return 2;
    }
  host.ttl = ttl;
  if (plugin == NULL)
    plugin = find_plugin ();

  g_ptr_array_add (plugin_argv, plugin);
  if (cert != NULL && key != NULL)
    {
      g_ptr_array_add (plugin_argv, "--tls-cert");
      g_ptr_array_add (plugin_argv, cert);
      g_ptr_array_add (plugin_argv, "--tls-key");
      g_ptr_array_add (plugin_argv, key);
    }
  if (ca != NULL)
    {
      g_ptr_array_add (plugin_argv, "--tls-ca");
      g_ptr_array_add (plugin_argv, ca);
      g_ptr_array_add (plugin_argv, "--tls-require-client-cert");
    }
  g_ptr_array_add (plugin_argv, NULL);

  /* Our own certificates: AutoMTLS would trust only this host. */
  host.discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY,
                                 "argv", plugin_argv->pdata,
                                 "name", "kv",
                                 "listen-mode", CP_LISTEN_TCP,
                                 "auto-mtls", FALSE,
                                 "restart-policy", CP_RESTART_ON_FAILURE,
                                 "restart-delay-ms", 1000,
                                 NULL);
  g_signal_connect (host.discovery, "notify::url", G_CALLBACK (on_url), &host);
  host.loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_signal, &host);
  g_unix_signal_add (SIGTERM, on_signal, &host);
  setvbuf (stdout, NULL, _IOLBF, 0);

  cp_process_discovery_start_async (host.discovery, NULL, started_cb, &host);
  g_main_loop_run (host.loop);

  /* Leaving: revoke the entry and stop the plugin, waiting two seconds
   * at most (the lease expires anyway). */
  {
    guint pending = 1;
    gint64 end = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;

    g_signal_handlers_disconnect_by_data (host.discovery, &host);
    if (host.registration != NULL)
      {
        pending++;
        cp_etcd_registration_revoke_async (host.registration, NULL, done_cb, &pending);
      }
    cp_discovery_shutdown_async (CP_DISCOVERY (host.discovery), NULL, done_cb, &pending);
    while (pending > 0 && g_get_monotonic_time () < end)
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (10 * 1000);
    g_clear_object (&host.registration);
  }
  g_object_unref (host.discovery);
  g_main_loop_unref (host.loop);
  g_strfreev (host.etcd);
  g_free (host.prefix);
  return 0;
}
