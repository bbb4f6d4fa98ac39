/* greeter-plugin.c: a plugin of one's own in C, on the generated skeleton
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   greeter-plugin [--listen ADDR]
 *
 * Serves greeter.v1.GreeterService as the plugin "greeter" through
 * cp_server_run (): the address on the first line of standard output, then
 * calls until a host says stop.
 */
#include <connectplugin.h>
#include "greeter.cp.h"

static char *
greeting (GreeterGreetRequest *request)
{
  if (greeter_greet_request_has_title (request))
    return g_strdup_printf ("Hello, %s %s!", greeter_greet_request_get_title (request),
                            greeter_greet_request_get_name (request));
  return g_strdup_printf ("Hello, %s!", greeter_greet_request_get_name (request));
}

static gboolean
handle_greet (GreeterGreeterService *service,
              CpInvocation          *invocation,
              GreeterGreetRequest   *request,
              gpointer               user_data)
{
  g_autoptr(GreeterGreetResponse) response = greeter_greet_response_new ();
  g_autofree char *text = NULL;

  (void) user_data;
  if (*greeter_greet_request_get_name (request) == '\0')
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_INVALID_ARGUMENT, "no name");
      return TRUE;
    }
  text = greeting (request);
  greeter_greet_response_set_text (response, text);
  greeter_greeter_service_complete_greet (service, invocation, response);
  return TRUE;
}

/* Server stream: one greeting per language. */
static gboolean
handle_greet_many (GreeterGreeterService *service,
                   CpInvocation          *invocation,
                   GreeterGreetRequest   *request,
                   gpointer               user_data)
{
  static const char * const hellos[] = { "Hello", "Bonjour", "Hallo" };

  (void) service;
  (void) user_data;
  for (guint i = 0; i < G_N_ELEMENTS (hellos); i++)
    {
      g_autoptr(GreeterGreetResponse) response = greeter_greet_response_new ();
      g_autofree char *text = g_strdup_printf ("%s, %s!", hellos[i],
                                               greeter_greet_request_get_name (request));

      greeter_greet_response_set_text (response, text);
      if (!cp_invocation_send_message (invocation, CP_MESSAGE (response), NULL))
        return TRUE;
    }
  cp_invocation_return_ok (invocation);
  return TRUE;
}

typedef struct {
  GreeterGreeterService *service;
  CpInvocation *invocation;
  GString *names;
} GreetAll;

static void
greet_all_received (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GreetAll *all = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (all->invocation, result, &error);

  (void) source;
  if (message != NULL)
    {
      g_string_append_printf (all->names, "%s%s", all->names->len > 0 ? " and " : "",
                              greeter_greet_request_get_name (GREETER_GREET_REQUEST (message)));
      cp_invocation_receive_async (all->invocation, NULL, greet_all_received, all);
      return;
    }
  if (error == NULL)
    {
      g_autoptr(GreeterGreetResponse) response = greeter_greet_response_new ();
      g_autofree char *text = g_strdup_printf ("Hello, %s!", all->names->str);

      greeter_greet_response_set_text (response, text);
      greeter_greeter_service_complete_greet_all (all->service, all->invocation, response);
    }
  g_object_unref (all->invocation);
  g_string_free (all->names, TRUE);
  g_free (all);
}

/* Client stream: one greeting for everyone sent. */
static gboolean
handle_greet_all (GreeterGreeterService *service,
                  CpInvocation          *invocation,
                  gpointer               user_data)
{
  GreetAll *all = g_new0 (GreetAll, 1);

  (void) user_data;
  all->service = service;
  all->invocation = g_object_ref (invocation);
  all->names = g_string_new (NULL);
  cp_invocation_receive_async (invocation, NULL, greet_all_received, all);
  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(CpServer) server = cp_server_new ();
  g_autoptr(CpPlugin) plugin = cp_plugin_new ("greeter", "1.0.0");
  g_autoptr(GreeterGreeterService) service = greeter_greeter_service_skeleton_new ();

  g_signal_connect (service, "handle-greet", G_CALLBACK (handle_greet), NULL);
  g_signal_connect (service, "handle-greet-many", G_CALLBACK (handle_greet_many), NULL);
  g_signal_connect (service, "handle-greet-all", G_CALLBACK (handle_greet_all), NULL);
  cp_plugin_add_service (plugin, CP_SKELETON (service));
  cp_server_add_plugin (server, plugin);
  return cp_server_run (server, argc, argv);
}
