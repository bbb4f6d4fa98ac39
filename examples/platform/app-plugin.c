/* app-plugin.c: the "app" service of seed scenario 3
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   HOST_URL=http://127.0.0.1:PORT app-plugin [--listen ADDR]
 *
 * A plugin that provides app.v1.App (type "app", path /app.v1.App/).
 * Process(input) stores the input upper-cased in the "cache" service and
 * reads it back, both through the host's router, and answers the value with
 * the route the calls took: its own hop to the cache, then the cache's hop
 * to the logger (from the cache's `X-Plugin-Route` answer header). Each
 * call is logged with g_debug () (G_MESSAGES_DEBUG=app-plugin shows them).
 */
#define G_LOG_DOMAIN "app-plugin"

#include "app.cp.h"
#include "cache.cp.h"

typedef struct {
  CpServer *server;
  DemoCache *cache;             /* routed through the host, once found */
  char *cache_id;
} App;

typedef struct {
  App *app;
  DemoApp *skeleton;
  CpInvocation *invocation;
  char *input;
  CpCallOptions *options;
} Pending;

static void
pending_free (Pending *pending)
{
  g_object_unref (pending->skeleton);
  g_object_unref (pending->invocation);
  g_clear_object (&pending->options);
  g_free (pending->input);
  g_free (pending);
}

static void
fail (Pending      *pending,
      const GError *error)
{
  cp_invocation_return_gerror (pending->invocation, error);
  pending_free (pending);
}

static void
on_got (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DemoGetResponse) got = demo_cache_call_get_finish (DEMO_CACHE (source), result, &error);
  g_autoptr(DemoProcessResponse) response = NULL;
  g_autoptr(GStrvBuilder) route = g_strv_builder_new ();
  g_auto(GStrv) hops = NULL;
  g_autofree char *hop = NULL;
  const char *cache_hop;

  if (got == NULL)
    {
      fail (pending, error);
      return;
    }
  hop = g_strdup_printf ("%s -> %s", cp_server_get_runtime_id (pending->app->server),
                         pending->app->cache_id);
  g_strv_builder_add (route, hop);
  cache_hop = soup_message_headers_get_one (cp_call_options_get_response_headers (pending->options),
                                            "X-Plugin-Route");
  if (cache_hop != NULL)
    g_strv_builder_add (route, cache_hop);
  hops = g_strv_builder_end (route);

  response = demo_process_response_new ();
  demo_process_response_set_result (response, demo_get_response_get_value (got));
  demo_process_response_set_route (response, (const char * const *) hops);
  demo_app_complete_process (pending->skeleton, pending->invocation, response);
  pending_free (pending);
}

static void
on_set (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Pending *pending = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(DemoSetResponse) set = demo_cache_call_set_finish (DEMO_CACHE (source), result, &error);
  g_autoptr(DemoGetRequest) request = demo_get_request_new ();

  if (set == NULL)
    {
      fail (pending, error);
      return;
    }
  demo_get_request_set_key (request, pending->input);
  pending->options = cp_call_options_new ();
  demo_cache_call_get (pending->app->cache, request, pending->options, NULL, on_got, pending);
}

static void
use_cache (Pending *pending)
{
  g_autoptr(DemoSetRequest) request = demo_set_request_new ();
  g_autofree char *upper = g_utf8_strup (pending->input, -1);

  demo_set_request_set_key (request, pending->input);
  demo_set_request_set_value (request, upper);
  demo_cache_call_set (pending->app->cache, request, NULL, NULL, on_set, pending);
}

static void
on_cache_found (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Pending *pending = user_data;
  App *app = pending->app;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpChannel) channel = cp_server_discover_service_finish (CP_SERVER (source), result, &error);
  g_autofree char *base_url = NULL;

  if (channel == NULL)
    {
      fail (pending, error);
      return;
    }
  if (app->cache == NULL)
    {
      /* The base URL ends with /services/cache/<provider runtime id>. */
      g_object_get (channel, "base-url", &base_url, NULL);
      app->cache_id = g_path_get_basename (base_url);
      app->cache = demo_cache_proxy_new (channel);
    }
  use_cache (pending);
}

static gboolean
on_process (DemoApp            *skeleton,
            CpInvocation       *invocation,
            DemoProcessRequest *request,
            App                *app)
{
  Pending *pending = g_new0 (Pending, 1);

  pending->app = app;
  pending->skeleton = g_object_ref (skeleton);
  pending->invocation = g_object_ref (invocation);
  pending->input = g_strdup (demo_process_request_get_input (request));
  g_debug ("Process(%s)", pending->input);
  if (app->cache != NULL)
    use_cache (pending);
  else
    cp_server_discover_service_async (app->server, "cache", "1.0.0", NULL, on_cache_found, pending);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(DemoApp) skeleton = demo_app_skeleton_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("app", "1.0.0");
  App app = { 0 };
  int status;

  app.server = cp_server_new ();
  g_signal_connect (skeleton, "handle-process", G_CALLBACK (on_process), &app);
  cp_plugin_add_service (plugin, CP_SKELETON (skeleton));
  cp_plugin_add_provides (plugin, "app", "1.0.0", "/app.v1.App/");
  cp_plugin_add_requires (plugin, "cache", "1.0.0", TRUE, TRUE);
  cp_server_add_plugin (app.server, plugin);
  g_object_set (app.server, "self-id", "app-plugin", "self-version", "1.0.0", NULL);

  status = cp_server_run (app.server, argc, argv);

  g_clear_object (&app.cache);
  g_free (app.cache_id);
  g_object_unref (app.server);
  return status;
}
