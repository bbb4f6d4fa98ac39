/* cp-host.c: a ready plugin-platform host
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   cp-host [--listen ADDR] [--config FILE] [--capabilities-dir DIR]
 *           [--grant-ttl SECONDS] [--rate-limit RPS[:BURST]]
 *           [--selection TYPE=first|round-robin|random|weighted]...
 *           [--port-mode] [--plugin-log-level debug|info|message|warning]
 *           [--metrics] [PLUGIN-COMMAND]...
 *
 * What an operator runs when the host application is not written yet: a
 * CpServer with a CpBroker (capability broker, service registry, plugin
 * health reports, router) listening on ADDR (default 127.0.0.1:0). The URL
 * it serves is the first line of standard output, as for the plugins;
 * everything else goes to standard error.
 *
 * Each PLUGIN-COMMAND (one argument, split like a shell would) is launched
 * with HOST_URL set to the host's URL, so the plugin handshakes, registers
 * what it provides and reports its health. With --port-mode (or
 * `startup=port` in the configuration) the plugin is not expected to print
 * its URL: it gets a free port in PORT and is polled until it accepts, so
 * connect-plugin-go's plugins run unchanged.
 *
 * What the plugins print goes to the host's log (standard error): lines
 * of GLib's default log writer at their own level, other lines at
 * --plugin-log-level (default debug: shown only with G_MESSAGES_DEBUG set,
 * e.g. G_MESSAGES_DEBUG=ConnectPlugin).
 *
 * The configuration file is a GKeyFile:
 *
 *   [host]
 *   listen=127.0.0.1:8080
 *   capabilities-dir=/usr/lib/myapp/capabilities
 *   grant-ttl=3600
 *   rate-limit=100:200
 *   selection=cache=round-robin;logger=first
 *   plugin-log-level=info
 *
 *   [plugin logger]
 *   command=/usr/libexec/myapp/logger-plugin --verbose
 *   startup=stdout            # or port
 *
 * Capabilities: every `*.so` in the capabilities directory is loaded with
 * GModule and its function
 *
 *   gboolean cp_host_module_init (CpBroker *broker, GError **error);
 *
 * is called; it adds its capabilities with cp_broker_add_capability().
 *
 * --metrics serves the host server's counters (the broker's and router's
 * calls, connections) at /metrics in the Prometheus text format
 * (CpServer:metrics-enabled; docs/engine.md, "Metrics").
 *
 * SIGINT or SIGTERM stops the plugins (PluginControl.Shutdown, then
 * signals) and exits 0.
 */
#include <gmodule.h>
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <connectplugin.h>

typedef gboolean (*CpHostModuleInit) (CpBroker *broker, GError **error);

typedef struct {
  char *name;
  char **argv;
  gboolean port_mode;
  CpDiscovery *discovery;
} Plugin;

typedef struct {
  GMainLoop *loop;
  CpServer *server;
  CpBroker *broker;
  char *url;
  GPtrArray *plugins;           /* Plugin* */
  GLogLevelFlags plugin_log_level;  /* of the plugins' plain output lines */
  guint n_stopping;
  int status;
} Host;

static void
plugin_free (gpointer data)
{
  Plugin *plugin = data;

  g_free (plugin->name);
  g_strfreev (plugin->argv);
  g_clear_object (&plugin->discovery);
  g_free (plugin);
}

static gboolean
add_plugin (Host        *host,
            const char  *name,
            const char  *command,
            gboolean     port_mode,
            GError     **error)
{
  g_auto(GStrv) argv = NULL;
  Plugin *plugin;

  if (!g_shell_parse_argv (command, NULL, &argv, error))
    {
      g_prefix_error (error, "plugin command \"%s\": ", command);
      return FALSE;
    }
  plugin = g_new0 (Plugin, 1);
  plugin->name = name != NULL ? g_strdup (name) : g_path_get_basename (argv[0]);
  plugin->argv = g_steal_pointer (&argv);
  plugin->port_mode = port_mode;
  g_ptr_array_add (host->plugins, plugin);
  return TRUE;
}

static const char *
nick (GType type, int value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  return v != NULL ? v->value_nick : "?";
}

static gboolean
parse_selection (CpBroker    *broker,
                 const char  *spec,
                 GError     **error)
{
  static const char *names[] = { "first", "round-robin", "random", "weighted" };
  const char *eq = strchr (spec, '=');
  g_autofree char *type = NULL;

  if (eq == NULL || eq == spec)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--selection wants TYPE=STRATEGY, not \"%s\"", spec);
      return FALSE;
    }
  type = g_strndup (spec, eq - spec);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (g_str_equal (eq + 1, names[i]))
      {
        cp_broker_set_selection_strategy (broker, type, (CpSelectionStrategy) i);
        return TRUE;
      }
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "unknown selection strategy \"%s\" (first, round-robin, random, weighted)", eq + 1);
  return FALSE;
}

static gboolean
parse_plugin_log_level (Host        *host,
                        const char  *name,
                        GError     **error)
{
  static const struct {
    const char *name;
    GLogLevelFlags level;
  } levels[] = {
    { "debug", G_LOG_LEVEL_DEBUG },
    { "info", G_LOG_LEVEL_INFO },
    { "message", G_LOG_LEVEL_MESSAGE },
    { "warning", G_LOG_LEVEL_WARNING },
  };

  for (guint i = 0; i < G_N_ELEMENTS (levels); i++)
    if (g_ascii_strcasecmp (name, levels[i].name) == 0)
      {
        host->plugin_log_level = levels[i].level;
        return TRUE;
      }
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "unknown plugin log level \"%s\" (debug, info, message, warning)", name);
  return FALSE;
}

static gboolean
parse_rate_limit (CpBroker    *broker,
                  const char  *spec,
                  GError     **error)
{
  char *end = NULL;
  double rps = g_ascii_strtod (spec, &end);
  guint64 burst = 0;

  if (end == spec || rps < 0 ||
      (*end == ':' && !g_ascii_string_to_unsigned (end + 1, 10, 0, G_MAXUINT32, &burst, NULL)) ||
      (*end != ':' && *end != '\0'))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--rate-limit wants RPS or RPS:BURST, not \"%s\"", spec);
      return FALSE;
    }
  g_object_set (broker, "rate-limit-rps", rps, "rate-limit-burst", (guint) burst, NULL);
  return TRUE;
}

static gboolean
load_capabilities (CpBroker    *broker,
                   const char  *dir,
                   GError     **error)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, error);
  const char *file;

  if (d == NULL)
    return FALSE;
  while ((file = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL;
      GModule *module;
      CpHostModuleInit init;

      if (!g_str_has_suffix (file, ".so"))
        continue;
      path = g_build_filename (dir, file, NULL);
      module = g_module_open (path, G_MODULE_BIND_LOCAL);
      if (module == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", g_module_error ());
          return FALSE;
        }
      if (!g_module_symbol (module, "cp_host_module_init", (gpointer *) &init) || init == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "%s has no cp_host_module_init()", path);
          g_module_close (module);
          return FALSE;
        }
      if (!init (broker, error))
        {
          g_prefix_error (error, "%s: ", path);
          g_module_close (module);
          return FALSE;
        }
      /* Its types stay registered: never unloaded. */
      g_module_make_resident (module);
      g_printerr ("cp-host: capabilities from %s\n", path);
    }
  return TRUE;
}

typedef struct {
  char *listen;
  char *config;
  char *capabilities_dir;
  int grant_ttl;
  char *rate_limit;
  char **selection;
  gboolean port_mode;
  char *plugin_log_level;
  gboolean metrics;
  char **commands;
} Options;

static gboolean
apply_config (Host        *host,
              Options     *options,
              GError     **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  g_auto(GStrv) groups = NULL;

  if (!g_key_file_load_from_file (file, options->config, G_KEY_FILE_NONE, error))
    return FALSE;
  if (options->listen == NULL)
    options->listen = g_key_file_get_string (file, "host", "listen", NULL);
  if (options->capabilities_dir == NULL)
    options->capabilities_dir = g_key_file_get_string (file, "host", "capabilities-dir", NULL);
  if (options->grant_ttl == 0)
    options->grant_ttl = g_key_file_get_integer (file, "host", "grant-ttl", NULL);
  if (options->rate_limit == NULL)
    options->rate_limit = g_key_file_get_string (file, "host", "rate-limit", NULL);
  if (options->plugin_log_level == NULL)
    options->plugin_log_level = g_key_file_get_string (file, "host", "plugin-log-level", NULL);
  if (g_key_file_has_key (file, "host", "selection", NULL))
    {
      g_auto(GStrv) specs = g_key_file_get_string_list (file, "host", "selection", NULL, NULL);

      for (guint i = 0; specs != NULL && specs[i] != NULL; i++)
        if (!parse_selection (host->broker, specs[i], error))
          return FALSE;
    }

  groups = g_key_file_get_groups (file, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_autofree char *command = NULL;
      g_autofree char *startup = NULL;

      if (!g_str_has_prefix (groups[i], "plugin "))
        continue;
      command = g_key_file_get_string (file, groups[i], "command", error);
      if (command == NULL)
        return FALSE;
      startup = g_key_file_get_string (file, groups[i], "startup", NULL);
      if (startup != NULL && !g_str_equal (startup, "port") && !g_str_equal (startup, "stdout"))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       "[%s] startup must be stdout or port", groups[i]);
          return FALSE;
        }
      if (!add_plugin (host, groups[i] + strlen ("plugin "), command,
                       g_strcmp0 (startup, "port") == 0, error))
        return FALSE;
    }
  return TRUE;
}

static void
on_plugin_added (CpBroker         *broker,
                 CpPluginInstance *plugin,
                 gpointer          user_data)
{
  g_printerr ("cp-host: plugin %s joined\n", cp_plugin_instance_get_runtime_id (plugin));
}

static void
on_plugin_removed (CpBroker         *broker,
                   CpPluginInstance *plugin,
                   gpointer          user_data)
{
  g_printerr ("cp-host: plugin %s left\n", cp_plugin_instance_get_runtime_id (plugin));
}

static void
on_plugin_health (CpBroker         *broker,
                  CpPluginInstance *plugin,
                  gpointer          user_data)
{
  const char *reason = cp_plugin_instance_get_health_reason (plugin);

  g_printerr ("cp-host: plugin %s is %s%s%s%s\n", cp_plugin_instance_get_runtime_id (plugin),
              nick (CP_TYPE_HEALTH_STATE, cp_plugin_instance_get_health_state (plugin)),
              reason != NULL ? " (" : "", reason != NULL ? reason : "", reason != NULL ? ")" : "");
}

static void
on_launched (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Plugin *plugin = user_data;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) urls = cp_discovery_discover_finish (CP_DISCOVERY (source), result, &error);

  if (urls == NULL)
    g_printerr ("cp-host: plugin %s did not start: %s\n", plugin->name, error->message);
  else
    g_printerr ("cp-host: launched %s at %s\n", plugin->name, urls[0]);
}

static void
launch (Host   *host,
        Plugin *plugin)
{
  g_auto(GStrv) env = g_environ_setenv (g_get_environ (), "HOST_URL", host->url, TRUE);
  const char *names[] = { NULL };

  plugin->discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY,
                                    "argv", plugin->argv,
                                    "name", plugin->name,
                                    "environment", env,
                                    "startup-mode", plugin->port_mode ? CP_STARTUP_MODE_PORT
                                                                      : CP_STARTUP_MODE_STDOUT_LINE,
                                    "host-url", host->url,
                                    "output-log-level", (guint) host->plugin_log_level,
                                    NULL);
  cp_discovery_discover_async (plugin->discovery, names, NULL, on_launched, plugin);
}

static void
on_plugin_stopped (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr(GError) error = NULL;

  if (!cp_discovery_shutdown_finish (CP_DISCOVERY (source), result, &error))
    g_printerr ("cp-host: stopping a plugin: %s\n", error->message);
  if (--host->n_stopping == 0)
    g_main_loop_quit (host->loop);
}

static gboolean
on_signal (gpointer user_data)
{
  Host *host = user_data;

  if (host->n_stopping > 0)
    return G_SOURCE_CONTINUE;
  g_printerr ("cp-host: stopping\n");
  for (guint i = 0; i < host->plugins->len; i++)
    {
      Plugin *plugin = host->plugins->pdata[i];

      if (plugin->discovery == NULL)
        continue;
      host->n_stopping++;
      cp_discovery_shutdown_async (plugin->discovery, NULL, on_plugin_stopped, host);
    }
  if (host->n_stopping == 0)
    g_main_loop_quit (host->loop);
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  Options options = { 0 };
  GOptionEntry entries[] = {
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &options.listen, "Where to serve (default 127.0.0.1:0)", "ADDR" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &options.config, "A key-file with [host] and [plugin NAME] groups", "FILE" },
    { "capabilities-dir", 0, 0, G_OPTION_ARG_FILENAME, &options.capabilities_dir, "Load capability modules (*.so) from DIR", "DIR" },
    { "grant-ttl", 0, 0, G_OPTION_ARG_INT, &options.grant_ttl, "Capability grant lifetime (default 3600)", "SECONDS" },
    { "rate-limit", 0, 0, G_OPTION_ARG_STRING, &options.rate_limit, "Calls per second per plugin on host APIs and the router", "RPS[:BURST]" },
    { "selection", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options.selection, "Provider selection for a service type", "TYPE=STRATEGY" },
    { "port-mode", 0, 0, G_OPTION_ARG_NONE, &options.port_mode, "Launch the plugins with PORT and poll it (plugins that print no URL)", NULL },
    { "plugin-log-level", 0, 0, G_OPTION_ARG_STRING, &options.plugin_log_level, "Log level of the plugins' plain output lines (default debug)", "debug|info|message|warning" },
    { "metrics", 0, 0, G_OPTION_ARG_NONE, &options.metrics, "Serve Prometheus metrics at /metrics", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &options.commands, NULL, "PLUGIN-COMMAND…" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("[PLUGIN-COMMAND…] — a plugin platform host");
  g_autoptr(GError) error = NULL;
  Host host = { 0 };

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("cp-host: %s\n", error->message);
      return 2;
    }

  host.loop = g_main_loop_new (NULL, FALSE);
  host.server = cp_server_new ();
  host.broker = cp_broker_new (host.server);
  host.plugins = g_ptr_array_new_with_free_func (plugin_free);
  host.plugin_log_level = G_LOG_LEVEL_DEBUG;
  g_signal_connect (host.broker, "plugin-added", G_CALLBACK (on_plugin_added), NULL);
  g_signal_connect (host.broker, "plugin-removed", G_CALLBACK (on_plugin_removed), NULL);
  g_signal_connect (host.broker, "plugin-health-changed", G_CALLBACK (on_plugin_health), NULL);

  if (options.config != NULL && !apply_config (&host, &options, &error))
    goto fail;
  for (guint i = 0; options.commands != NULL && options.commands[i] != NULL; i++)
    if (!add_plugin (&host, NULL, options.commands[i], options.port_mode, &error))
      goto fail;
  for (guint i = 0; options.selection != NULL && options.selection[i] != NULL; i++)
    if (!parse_selection (host.broker, options.selection[i], &error))
      goto fail;
  if (options.rate_limit != NULL && !parse_rate_limit (host.broker, options.rate_limit, &error))
    goto fail;
  if (options.plugin_log_level != NULL &&
      !parse_plugin_log_level (&host, options.plugin_log_level, &error))
    goto fail;
  if (options.grant_ttl > 0)
    g_object_set (host.broker, "grant-ttl-seconds", (guint) options.grant_ttl, NULL);
  if (options.capabilities_dir != NULL &&
      !load_capabilities (host.broker, options.capabilities_dir, &error))
    goto fail;

  if (options.metrics)
    g_object_set (host.server, "metrics-enabled", TRUE, NULL);
  if (!cp_server_start (host.server, &error) ||
      (host.url = cp_server_listen (host.server, options.listen != NULL ? options.listen : "127.0.0.1:0",
                                    &error)) == NULL)
    goto fail;
  printf ("%s\n", host.url);
  fflush (stdout);

  for (guint i = 0; i < host.plugins->len; i++)
    launch (&host, host.plugins->pdata[i]);

  g_unix_signal_add (SIGINT, on_signal, &host);
  g_unix_signal_add (SIGTERM, on_signal, &host);
  g_main_loop_run (host.loop);
  cp_server_close (host.server);
  goto out;

fail:
  g_printerr ("cp-host: %s\n", error->message);
  host.status = 1;
out:
  g_clear_pointer (&host.plugins, g_ptr_array_unref);
  g_clear_object (&host.broker);
  g_clear_object (&host.server);
  g_clear_pointer (&host.loop, g_main_loop_unref);
  g_free (host.url);
  g_free (options.listen);
  g_free (options.config);
  g_free (options.capabilities_dir);
  g_free (options.rate_limit);
  g_free (options.plugin_log_level);
  g_strfreev (options.selection);
  g_strfreev (options.commands);
  return host.status;
}
