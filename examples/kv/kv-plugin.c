/* kv-plugin.c: the KV service as a connectplugin plugin ("kv", 1.0.0)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   kv-plugin [--listen 127.0.0.1:PORT | --listen unix:PATH] [--insecure-control] [--metrics]
 *
 * Served by CpServer through cp_server_run(): prints the URL it serves as
 * the first line of stdout (hosts read it), listens where --listen,
 * CONNECTPLUGIN_LISTEN or PORT say, answers the handshake, health and
 * PluginControl, and shuts down gracefully on SIGTERM/SIGINT or
 * PluginControl.Shutdown. PluginControl needs the secret its host gives in
 * CONNECTPLUGIN_CONTROL_SECRET; started by hand without one, it refuses
 * PluginControl unless run with --insecure-control. --metrics serves
 * Prometheus metrics at /metrics (CpServer:metrics-enabled). Logs go to stderr
 * (GLib's debug records too), each call at debug level (G_MESSAGES_DEBUG=kv).
 *
 * The service is ExampleKvStore (kv-store.c, shared with kv-server), a
 * subclass of the KvKVServiceSkeleton that protoc-gen-cp generates from
 * kv.proto (libkv/); the plugin registers it and the server exports it.
 */
#include <stdio.h>

#include "kv-store.h"

/* A graceful shutdown waits for running calls: end the open watches. */
static void
on_serving_changed (CpServer   *server,
                    GParamSpec *pspec,
                    gpointer    user_data)
{
  if (!cp_server_get_serving (server))
    example_kv_store_end_watches (user_data);
}

/* Only a host with the control secret gets here (CpServer:control-secret). */
static void
on_shutdown_requested (CpServer   *server,
                       int         grace_period_seconds,
                       const char *reason,
                       gpointer    user_data)
{
  fprintf (stderr, "kv plugin: shutdown requested (%s)\n", reason);
}

int
main (int argc, char **argv)
{
  g_autoptr(ExampleKvStore) kv = NULL;
  g_autoptr(CpPlugin) plugin = NULL;
  g_autoptr(CpServer) server = NULL;
  int status;

  /* stdout is the address channel: GLib writes its debug and info
   * records there unless told otherwise. */
  g_log_writer_default_set_use_stderr (TRUE);
  kv = example_kv_store_new ();

  plugin = cp_plugin_new ("kv", "1.0.0");
  cp_plugin_add_service (plugin, CP_SKELETON (kv));
  cp_plugin_add_provides (plugin, "kv", "1.0.0", "/kv.v1.KVService/");

  server = cp_server_new ();
  cp_server_add_plugin (server, plugin);
  g_signal_connect_object (server, "notify::serving", G_CALLBACK (on_serving_changed), kv, 0);
  g_signal_connect (server, "shutdown-requested", G_CALLBACK (on_shutdown_requested), NULL);

  status = cp_server_run (server, argc, argv);
  fprintf (stderr, "kv plugin stopped (status %d)\n", status);

  g_clear_object (&server);
  cp_skeleton_unexport (CP_SKELETON (kv));
  return status;
}
