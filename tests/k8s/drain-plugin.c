/* drain-plugin.c: a plugin server whose calls can be held, for graceful-shutdown tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "drain-plugin.h"

static gboolean
handle_say (HosttestEchoService *object,
            CpInvocation        *invocation,
            HosttestSayRequest  *request,
            gpointer             user_data)
{
  DrainPlugin *plugin = user_data;
  const char *text = hosttest_say_request_get_text (request);
  g_autoptr(HosttestSayResponse) response = hosttest_say_response_new ();
  g_autofree char *answer = g_strdup_printf ("%s:%s", plugin->tag, text);

  plugin->calls++;
  if (g_strcmp0 (text, "slow") == 0)
    {
      g_ptr_array_add (plugin->held, g_object_ref (invocation));
      return TRUE;
    }
  hosttest_say_response_set_text (response, answer);
  hosttest_echo_service_complete_say (object, invocation, response);
  return TRUE;
}

DrainPlugin *
drain_plugin_new (const char *tag)
{
  DrainPlugin *plugin = g_new0 (DrainPlugin, 1);
  g_autoptr(CpPlugin) echo = cp_plugin_new ("echo", "1.0.0");
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = NULL;

  plugin->tag = g_strdup (tag);
  plugin->held = g_ptr_array_new_with_free_func (g_object_unref);
  plugin->server = cp_server_new ();
  plugin->impl = hosttest_echo_service_skeleton_new ();
  g_signal_connect (plugin->impl, "handle-say", G_CALLBACK (handle_say), plugin);
  cp_plugin_add_service (echo, CP_SKELETON (plugin->impl));
  cp_server_add_plugin (plugin->server, echo);
  plugin->url = cp_server_listen (plugin->server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  uri = g_uri_parse (plugin->url, G_URI_FLAGS_NONE, &error);
  g_assert_no_error (error);
  plugin->port = (guint16) g_uri_get_port (uri);
  return plugin;
}

void
drain_plugin_release (DrainPlugin *plugin)
{
  for (guint i = 0; i < plugin->held->len; i++)
    {
      g_autoptr(HosttestSayResponse) response = hosttest_say_response_new ();
      g_autofree char *answer = g_strdup_printf ("%s:slow", plugin->tag);

      hosttest_say_response_set_text (response, answer);
      hosttest_echo_service_complete_say (plugin->impl, g_ptr_array_index (plugin->held, i),
                                          response);
    }
  g_ptr_array_set_size (plugin->held, 0);
}

void
drain_plugin_free (DrainPlugin *plugin)
{
  cp_server_close (plugin->server);
  g_clear_pointer (&plugin->held, g_ptr_array_unref);
  g_clear_object (&plugin->impl);
  g_clear_object (&plugin->server);
  g_free (plugin->url);
  g_free (plugin->tag);
  g_free (plugin);
}

typedef struct {
  gboolean *done;
  char **answer;
  GError **error;
} SayWait;

static void
say_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  SayWait *wait = user_data;
  g_autoptr(HosttestSayResponse) response =
    hosttest_echo_service_call_say_finish (HOSTTEST_ECHO_SERVICE (source), result, wait->error);

  if (response != NULL)
    *wait->answer = g_strdup (hosttest_say_response_get_text (response));
  *wait->done = TRUE;
  g_free (wait);
}

void
drain_say_start (CpProxy     *proxy,
                 const char  *text,
                 gboolean    *done,
                 char       **answer,
                 GError     **error)
{
  g_autoptr(HosttestSayRequest) request = hosttest_say_request_new ();
  SayWait *wait = g_new0 (SayWait, 1);

  *done = FALSE;
  wait->done = done;
  wait->answer = answer;
  wait->error = error;
  hosttest_say_request_set_text (request, text);
  hosttest_echo_service_call_say (HOSTTEST_ECHO_SERVICE (proxy), request, NULL, NULL,
                                  say_cb, wait);
}

char *
drain_say (CpProxy     *proxy,
           const char  *text,
           GError     **error)
{
  gboolean done = FALSE;
  char *answer = NULL;
  gint64 end = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  drain_say_start (proxy, text, &done, &answer, error);
  while (!done)
    {
      if (g_get_monotonic_time () > end)
        g_error ("timed out waiting for a Say");
      g_main_context_iteration (NULL, TRUE);
    }
  return answer;
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

gboolean
drain_connect (CpClient  *client,
               GError   **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  gint64 end = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  cp_client_connect_async (client, NULL, connect_cb, &result);
  while (result == NULL)
    {
      if (g_get_monotonic_time () > end)
        g_error ("timed out waiting for a connect");
      g_main_context_iteration (NULL, TRUE);
    }
  return cp_client_connect_finish (client, result, error);
}
