/* greeter-host.c: a GApplication host of one's own, in C
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   greeter-host PLUGIN-EXECUTABLE [ARG…]
 *
 * Launches the plugin (C, Vala or Python: the same protocol), connects a CpClient,
 * dispenses the generated proxy and calls each method kind asynchronously,
 * printing what comes back (and checking it: the exit status is 0 only when
 * every answer is the expected one); then closes the client (which stops
 * the plugin) and quits. The application holds itself while the calls run.
 */
#include <connectplugin.h>
#include "greeter.cp.h"

typedef struct {
  GApplication *app;
  CpClient *client;
  GreeterGreeterService *proxy;
  guint n_greetings;
  gboolean wrong;
  int status;
} Host;

static void
check (Host       *host,
       const char *got,
       const char *expected)
{
  if (g_strcmp0 (got, expected) != 0)
    {
      g_printerr ("expected “%s”, got “%s”\n", expected, got);
      host->wrong = TRUE;
    }
}

static void
finish (Host  *host,
        int    status);

static void
closed (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr(GError) error = NULL;

  if (!cp_client_close_finish (CP_CLIENT (source), result, &error))
    g_printerr ("close: %s\n", error->message);
  g_application_release (host->app);
}

static void
finish (Host *host,
        int   status)
{
  host->status = status != 0 || host->wrong ? 1 : 0;
  cp_client_close_async (host->client, NULL, closed, host);
}

static void
greeted_all (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) response = cp_request_stream_close_finish (CP_REQUEST_STREAM (source),
                                                                  result, &error);

  if (response == NULL)
    {
      g_printerr ("GreetAll: %s\n", error->message);
      finish (host, 1);
      return;
    }
  g_print ("GreetAll: %s\n", greeter_greet_response_get_text (GREETER_GREET_RESPONSE (response)));
  check (host, greeter_greet_response_get_text (GREETER_GREET_RESPONSE (response)),
         "Hello, Ada and Grace!");
  finish (host, 0);
}

static void
greet_all (Host *host)
{
  g_autoptr(CpRequestStream) stream = greeter_greeter_service_call_greet_all (host->proxy, NULL);
  static const char * const names[] = { "Ada", "Grace" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GreeterGreetRequest) request = greeter_greet_request_new ();

      greeter_greet_request_set_name (request, names[i]);
      cp_request_stream_send (stream, CP_MESSAGE (request), NULL);
    }
  cp_request_stream_close_async (stream, NULL, greeted_all, host);
}

static void
on_greeting (CpResponseStream *stream,
             CpMessage        *message,
             gpointer          user_data)
{
  static const char * const expected[] = { "Hello, Linus!", "Bonjour, Linus!", "Hallo, Linus!" };
  Host *host = user_data;
  const char *text = greeter_greet_response_get_text (GREETER_GREET_RESPONSE (message));

  (void) stream;
  g_print ("GreetMany: %s\n", text);
  check (host, text, host->n_greetings < G_N_ELEMENTS (expected) ? expected[host->n_greetings] : "");
  host->n_greetings++;
}

static void
on_greetings_done (CpResponseStream *stream,
                   const GError     *error,
                   gpointer          user_data)
{
  Host *host = user_data;

  if (error != NULL)
    {
      g_printerr ("GreetMany: %s\n", error->message);
      finish (host, 1);
    }
  else
    {
      if (host->n_greetings != 3)
        host->wrong = TRUE;
      greet_all (host);
    }
  g_object_unref (stream);
}

static void
greeted (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GreeterGreetResponse) response =
    greeter_greeter_service_call_greet_finish (GREETER_GREETER_SERVICE (source), result, &error);
  g_autoptr(GreeterGreetRequest) request = greeter_greet_request_new ();
  CpResponseStream *stream;

  if (response == NULL)
    {
      g_printerr ("Greet: %s\n", error->message);
      finish (host, 1);
      return;
    }
  g_print ("Greet: %s\n", greeter_greet_response_get_text (response));
  check (host, greeter_greet_response_get_text (response), "Hello, dear World!");

  greeter_greet_request_set_name (request, "Linus");
  stream = greeter_greeter_service_call_greet_many (host->proxy, request, NULL);
  g_signal_connect (stream, "message", G_CALLBACK (on_greeting), host);
  g_signal_connect (stream, "closed", G_CALLBACK (on_greetings_done), host);
}

static void
connected (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Host *host = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GreeterGreetRequest) request = greeter_greet_request_new ();

  if (!cp_client_connect_finish (host->client, result, &error))
    {
      g_printerr ("connect: %s\n", error->message);
      finish (host, 1);
      return;
    }
  host->proxy = GREETER_GREETER_SERVICE (cp_client_dispense (host->client, "greeter",
                                                             GREETER_TYPE_GREETER_SERVICE_PROXY,
                                                             &error));
  if (host->proxy == NULL)
    {
      g_printerr ("dispense: %s\n", error->message);
      finish (host, 1);
      return;
    }
  greeter_greet_request_set_name (request, "World");
  greeter_greet_request_set_title (request, "dear");
  greeter_greeter_service_call_greet (host->proxy, request, NULL, NULL, greeted, host);
  (void) source;
}

static int
command_line (GApplication            *app,
              GApplicationCommandLine *command_line,
              Host                    *host)
{
  g_auto(GStrv) args = g_application_command_line_get_arguments (command_line, NULL);
  g_autoptr(CpProcessDiscovery) discovery = NULL;

  if (g_strv_length (args) < 2)
    {
      g_application_command_line_printerr (command_line, "usage: greeter-host PLUGIN-EXECUTABLE [ARG…]\n");
      return 2;
    }
  discovery = cp_process_discovery_new ((const char * const *) args + 1);
  host->client = cp_client_new_for_discovery (CP_DISCOVERY (discovery));
  g_application_hold (app);
  cp_client_connect_async (host->client, NULL, connected, host);
  return 0;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GApplication) app = g_application_new ("org.example.GreeterHost",
                                                   G_APPLICATION_HANDLES_COMMAND_LINE |
                                                   G_APPLICATION_NON_UNIQUE);
  Host host = { app, NULL, NULL, 0, FALSE, 1 };

  g_signal_connect (app, "command-line", G_CALLBACK (command_line), &host);
  g_application_run (app, argc, argv);
  g_clear_object (&host.proxy);
  g_clear_object (&host.client);
  return host.status;
}
