/* cache-plugin.c: the "cache" service of seed scenario 3
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   HOST_URL=http://127.0.0.1:PORT cache-plugin [--listen ADDR]
 *
 * A plugin that provides cache.v1.Cache (type "cache", path /cache.v1.Cache/)
 * and logs every operation through the "logger" service, which it finds
 * with the host's registry (cp_server_discover_service_async()) and calls
 * through the host's router. Its answers carry the hop it made in the
 * header `X-Plugin-Route: <cache runtime id> -> <logger runtime id>` (the
 * convention of the Go stand-in's cache plugin), so that the app plugin can
 * report the whole route.
 *
 * Started without HOST_URL it waits for a host to add it
 * (cp_broker_add_plugin_async(): PluginIdentity, behind the control secret
 * its launcher gave it), as dynamic-host does.
 */
#include <stdio.h>

#include "cache.cp.h"
#include "logger.cp.h"

typedef struct {
  CpServer *server;
  GHashTable *values;
  DemoLogger *logger;           /* routed through the host, once found */
  char *logger_id;
} Cache;

typedef struct {
  Cache *cache;
  DemoCache *skeleton;
  CpInvocation *invocation;
  CpMessage *response;
  char *message;
} Pending;

static void
pending_free (Pending *pending)
{
  g_object_unref (pending->skeleton);
  g_object_unref (pending->invocation);
  g_object_unref (pending->response);
  g_free (pending->message);
  g_free (pending);
}

/* The logging is done (or failed: the cache answers all the same). */
static void
complete (Pending *pending,
          gboolean logged)
{
  if (logged)
    {
      g_autofree char *hop = g_strdup_printf ("%s -> %s",
                                              cp_server_get_runtime_id (pending->cache->server),
                                              pending->cache->logger_id);

      soup_message_headers_replace (cp_invocation_get_response_headers (pending->invocation),
                                    "X-Plugin-Route", hop);
    }
  if (DEMO_IS_GET_RESPONSE (pending->response))
    demo_cache_complete_get (pending->skeleton, pending->invocation, DEMO_GET_RESPONSE (pending->response));
  else
    demo_cache_complete_set (pending->skeleton, pending->invocation, DEMO_SET_RESPONSE (pending->response));
  pending_free (pending);
}

static void
on_logged (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DemoLogResponse) response = demo_logger_call_log_finish (DEMO_LOGGER (source), result, &error);

  if (response == NULL)
    fprintf (stderr, "cache-plugin: logging failed: %s\n", error->message);
  complete (pending, response != NULL);
}

static void
log_now (Pending *pending)
{
  g_autoptr(DemoLogRequest) request = demo_log_request_new ();

  demo_log_request_set_level (request, "info");
  demo_log_request_set_message (request, pending->message);
  demo_logger_call_log (pending->cache->logger, request, NULL, NULL, on_logged, pending);
}

static void
on_logger_found (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Pending *pending = user_data;
  Cache *cache = pending->cache;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_server_discover_service_finish (CP_SERVER (source), result, &error);
  g_autofree char *base_url = NULL;

  if (channel == NULL)
    {
      fprintf (stderr, "cache-plugin: no logger: %s\n", error->message);
      complete (pending, FALSE);
      return;
    }
  if (cache->logger == NULL)
    {
      /* The base URL ends with /services/logger/<provider runtime id>. */
      g_object_get (channel, "base-url", &base_url, NULL);
      cache->logger_id = g_path_get_basename (base_url);
      cache->logger = demo_logger_proxy_new (channel);
    }
  log_now (pending);
}

static void
log_then_complete (Cache        *cache,
                   DemoCache    *skeleton,
                   CpInvocation *invocation,
                   CpMessage    *response,
                   char         *message)
{
  Pending *pending = g_new0 (Pending, 1);

  pending->cache = cache;
  pending->skeleton = g_object_ref (skeleton);
  pending->invocation = g_object_ref (invocation);
  pending->response = response;
  pending->message = message;
  if (cache->logger != NULL)
    log_now (pending);
  else
    cp_server_discover_service_async (cache->server, "logger", "1.0.0", NULL,
                                      on_logger_found, pending);
}

static gboolean
on_get (DemoCache      *skeleton,
        CpInvocation   *invocation,
        DemoGetRequest *request,
        Cache          *cache)
{
  DemoGetResponse *response = demo_get_response_new ();
  const char *key = demo_get_request_get_key (request);
  const char *value = g_hash_table_lookup (cache->values, key);

  demo_get_response_set_found (response, value != NULL);
  demo_get_response_set_value (response, value);
  log_then_complete (cache, skeleton, invocation, CP_MESSAGE (response),
                     g_strdup_printf ("cache get %s (%s)", key, value != NULL ? "hit" : "miss"));
  return TRUE;
}

static gboolean
on_set (DemoCache      *skeleton,
        CpInvocation   *invocation,
        DemoSetRequest *request,
        Cache          *cache)
{
  const char *key = demo_set_request_get_key (request);

  g_hash_table_replace (cache->values, g_strdup (key), g_strdup (demo_set_request_get_value (request)));
  log_then_complete (cache, skeleton, invocation, CP_MESSAGE (demo_set_response_new ()),
                     g_strdup_printf ("cache set %s", key));
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(DemoCache) skeleton = demo_cache_skeleton_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("cache", "1.0.0");
  Cache cache = { 0 };
  int status;

  cache.server = cp_server_new ();
  cache.values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_signal_connect (skeleton, "handle-get", G_CALLBACK (on_get), &cache);
  g_signal_connect (skeleton, "handle-set", G_CALLBACK (on_set), &cache);
  cp_plugin_add_service (plugin, CP_SKELETON (skeleton));
  cp_plugin_add_provides (plugin, "cache", "1.0.0", "/cache.v1.Cache/");
  cp_plugin_add_requires (plugin, "logger", "1.0.0", TRUE, TRUE);
  cp_server_add_plugin (cache.server, plugin);
  g_object_set (cache.server, "self-id", "cache-plugin", "self-version", "1.0.0",
                "identity-enabled", TRUE, NULL);

  status = cp_server_run (cache.server, argc, argv);

  g_clear_object (&cache.logger);
  g_free (cache.logger_id);
  g_hash_table_unref (cache.values);
  g_object_unref (cache.server);
  return status;
}
