/* kv-host.c: a host that launches the KV plugin and uses it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   kv-host [--plugin PATH] [--unix]
 *
 * Launches kv-plugin (found next to this program unless --plugin says
 * where) through CpProcessDiscovery, handshakes with it through CpClient,
 * shows its plugins and health, does Put/Get/Delete, watches the events
 * these produce through signals, and shuts the plugin down cleanly
 * (PluginControl.Shutdown). The plugin's own log lines (its stderr) appear
 * in this program's log, tagged with the plugin's name.
 *
 * The client dispenses the KvKVServiceProxy that protoc-gen-cp generates
 * from kv.proto (libkv/): typed calls (kv_kv_service_call_put () and its
 * _finish), and Watch as a CpResponseStream whose signals carry
 * KvWatchEvents.
 */
#include <stdio.h>
#include <stdlib.h>

#include "kv.cp.h"

/* ------------------------------------------------------------------ */
/* Waiting for asynchronous results (a demo runs one step at a time)    */

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_for (GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *result;
}

static void
check (gpointer    response,
       const char *method,
       GError     *error)
{
  if (response == NULL)
    {
      g_printerr ("kv-host: %s failed: %s\n", method, error->message);
      exit (1);
    }
}

/* The calls, one at a time; the main context runs meanwhile, so the watch's
 * events are printed as they arrive. */

static void
put (KvKVService *kv,
     const char  *key,
     const char  *value)
{
  g_autoptr(GBytes) bytes = g_bytes_new (value, strlen (value));
  g_autoptr(KvPutRequest) request = g_object_new (KV_TYPE_PUT_REQUEST,
                                                  "key", key, "value", bytes, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvPutResponse) response = NULL;
  g_autoptr(GError) error = NULL;

  kv_kv_service_call_put (kv, request, NULL, NULL, store_result, &result);
  response = kv_kv_service_call_put_finish (kv, wait_for (&result), &error);
  check (response, "Put", error);
  g_print ("put %s = %s\n", key, value);
}

static KvGetResponse *
get (KvKVService *kv,
     const char  *key)
{
  g_autoptr(KvGetRequest) request = g_object_new (KV_TYPE_GET_REQUEST, "key", key, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  KvGetResponse *response;

  kv_kv_service_call_get (kv, request, NULL, NULL, store_result, &result);
  response = kv_kv_service_call_get_finish (kv, wait_for (&result), &error);
  check (response, "Get", error);
  return response;
}

static gboolean
delete (KvKVService *kv,
        const char  *key)
{
  g_autoptr(KvDeleteRequest) request = g_object_new (KV_TYPE_DELETE_REQUEST, "key", key, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(KvDeleteResponse) response = NULL;
  g_autoptr(GError) error = NULL;

  kv_kv_service_call_delete (kv, request, NULL, NULL, store_result, &result);
  response = kv_kv_service_call_delete_finish (kv, wait_for (&result), &error);
  check (response, "Delete", error);
  return kv_delete_response_get_found (response);
}

/* ------------------------------------------------------------------ */
/* Signals                                                              */

static guint events_seen;
static gboolean watch_ready;

static void
on_watch_headers (CpResponseStream   *stream,
                  SoupMessageHeaders *headers,
                  gpointer            user_data)
{
  watch_ready = TRUE;
}

static void
on_watch_event (CpResponseStream *stream,
                CpMessage        *message,
                gpointer          user_data)
{
  KvWatchEvent *event = KV_WATCH_EVENT (message);
  g_autoptr(GBytes) value = kv_watch_event_get_value (event);
  KvEventType type = kv_watch_event_get_type_ (event);

  events_seen++;
  g_print ("  event: %-6s %s%s%.*s\n",
           type == KV_EVENT_TYPE_PUT ? "put" : type == KV_EVENT_TYPE_DELETE ? "delete" : "?",
           kv_watch_event_get_key (event),
           g_bytes_get_size (value) > 0 ? " = " : "",
           (int) g_bytes_get_size (value),
           g_bytes_get_size (value) > 0 ? (const char *) g_bytes_get_data (value, NULL) : "");
}

static void
on_watch_closed (CpResponseStream *stream,
                 const GError     *error,
                 gpointer          user_data)
{
  g_print ("  watch closed%s%s\n", error != NULL ? ": " : "", error != NULL ? error->message : "");
}

static const char *
nick (GType type, int value)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *v = g_enum_get_value (klass, value);

  return v != NULL ? v->value_nick : "?";
}

static void
on_client_state (CpClient   *client,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  g_print ("client: %s\n", nick (CP_TYPE_CLIENT_STATE, cp_client_get_state (client)));
}

static void
on_health_changed (CpHealthMonitor *monitor,
                   CpHealthState    health,
                   CpServingStatus  status,
                   gpointer         user_data)
{
  g_print ("health: %s (%s)\n", nick (CP_TYPE_HEALTH_STATE, health),
           nick (CP_TYPE_SERVING_STATUS, status));
}

static void
on_plugin_exited (CpProcessDiscovery *discovery,
                  int                 exit_status,
                  int                 term_signal,
                  gpointer            user_data)
{
  if (term_signal != 0)
    g_print ("plugin exited: killed by signal %d\n", term_signal);
  else
    g_print ("plugin exited: status %d\n", exit_status);
}

/* ------------------------------------------------------------------ */

static char *
find_plugin (const char *argv0)
{
  g_autofree char *self = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = g_path_get_dirname (self != NULL ? self : argv0);

  return g_build_filename (dir, "kv-plugin", NULL);
}

int
main (int argc, char **argv)
{
  g_autofree char *plugin_path = NULL;
  gboolean use_unix = FALSE;
  GOptionEntry entries[] = {
    { "plugin", 0, 0, G_OPTION_ARG_FILENAME, &plugin_path, "The kv-plugin executable", "PATH" },
    { "unix", 0, 0, G_OPTION_ARG_NONE, &use_unix, "Talk to the plugin over a unix socket", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— launch the KV plugin and use it");
  g_autoptr(GError) error = NULL;
  g_autoptr(CpProcessDiscovery) discovery = NULL;
  g_autoptr(CpClient) client = NULL;
  g_autoptr(KvKVService) kv = NULL;
  g_autoptr(CpResponseStream) watch = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  const char *plugins[] = { "kv", NULL };
  GPtrArray *infos;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("kv-host: %s\n", error->message);
      return 2;
    }
  if (plugin_path == NULL)
    plugin_path = find_plugin (argv[0]);

  /* 1. Launch the plugin and connect: discovery -> handshake -> health. */
  {
    const char *plugin_argv[] = { plugin_path, NULL };

    discovery = g_object_new (CP_TYPE_PROCESS_DISCOVERY,
                              "argv", plugin_argv,
                              "name", "kv",
                              "listen-mode", use_unix ? CP_LISTEN_UNIX : CP_LISTEN_TCP,
                              NULL);
  }
  g_signal_connect (discovery, "exited", G_CALLBACK (on_plugin_exited), NULL);
  client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  cp_client_set_plugins (client, plugins);
  g_signal_connect (client, "notify::state", G_CALLBACK (on_client_state), NULL);

  g_print ("launching %s\n", plugin_path);
  if (!cp_client_connect_sync (client, NULL, &error))
    {
      g_printerr ("kv-host: %s\n", error->message);
      return 1;
    }
  g_print ("plugin process %d serves %s\n",
           (int) cp_process_discovery_get_pid (discovery), cp_client_get_url (client));

  infos = cp_client_get_plugin_infos (client);
  for (guint i = 0; i < infos->len; i++)
    {
      CpPluginInfo *info = g_ptr_array_index (infos, i);

      g_print ("plugin: %s %s (%s)\n", cp_plugin_info_get_name (info),
               cp_plugin_info_get_version (info), cp_plugin_info_get_service_path (info));
    }
  {
    CpHealthMonitor *monitor = cp_client_get_health_monitor (client);

    on_health_changed (monitor, cp_health_monitor_get_health_state (monitor),
                       cp_health_monitor_get_serving_status (monitor), NULL);
    g_signal_connect (monitor, "changed", G_CALLBACK (on_health_changed), NULL);
  }

  /* 2. A typed proxy of the plugin's service. */
  kv = KV_KV_SERVICE (cp_client_dispense (client, "kv", KV_TYPE_KV_SERVICE_PROXY, &error));
  if (kv == NULL)
    {
      g_printerr ("kv-host: %s\n", error->message);
      return 1;
    }

  /* 3. Watch every key: events arrive as signals. */
  {
    g_autoptr(KvWatchRequest) request = kv_watch_request_new ();

    watch = kv_kv_service_call_watch (kv, request, NULL);
    g_signal_connect (watch, "message", G_CALLBACK (on_watch_event), NULL);
    g_signal_connect (watch, "closed", G_CALLBACK (on_watch_closed), NULL);
    /* Wait for the plugin to accept the watch before changing anything. */
    g_signal_connect (watch, "headers", G_CALLBACK (on_watch_headers), NULL);
    cp_response_stream_start (watch);
    while (!watch_ready)
      g_main_context_iteration (NULL, TRUE);
  }

  /* 4. Put, Get, Delete. */
  {
    g_autoptr(KvGetResponse) before = NULL;
    g_autoptr(KvGetResponse) after = NULL;
    g_autoptr(GBytes) value = NULL;
    gboolean found;

    put (kv, "greeting/a", "1");
    put (kv, "greeting/b", "2");
    before = get (kv, "greeting/a");
    value = kv_get_response_get_value (before);
    g_print ("get greeting/a -> %s%.*s\n",
             kv_get_response_get_found (before) ? "found, " : "not found",
             (int) g_bytes_get_size (value),
             g_bytes_get_size (value) > 0 ? (const char *) g_bytes_get_data (value, NULL) : "");
    found = delete (kv, "greeting/a");
    g_print ("delete greeting/a -> %s\n", found ? "found" : "not found");
    after = get (kv, "greeting/a");
    g_print ("get greeting/a -> %s\n", kv_get_response_get_found (after) ? "found" : "not found");
  }

  /* 5. The three changes come back through the watch. */
  while (events_seen < 3)
    g_main_context_iteration (NULL, TRUE);

  /* 6. Done: stop watching, close the client, which shuts the plugin down. */
  cp_response_stream_cancel (watch);
  cp_client_close_async (client, NULL, store_result, &result);
  if (!cp_client_close_finish (client, wait_for (&result), &error))
    {
      g_printerr ("kv-host: closing: %s\n", error->message);
      return 1;
    }
  g_print ("plugin %s\n", nick (CP_TYPE_PROCESS_STATE, cp_process_discovery_get_state (discovery)));
  return 0;
}
