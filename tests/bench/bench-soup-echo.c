/* bench-soup-echo.c: the same echo as bench-gio-echo, on SoupServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What we left behind (docs/architecture.md, "The server transport"): a libsoup 3
 * SoupServer answering every request with 200 application/proto echoing the
 * request body.
 *
 *   bench-soup-echo [--listen 127.0.0.1:0]
 *
 * Prints the URL it serves ("http://127.0.0.1:PORT") as the first stdout
 * line; runs until SIGINT/SIGTERM.
 */
#include <gio/gio.h>
#include <glib-unix.h>
#include <libsoup/soup.h>

#include <signal.h>
#include <stdio.h>

static void
echo_handler (SoupServer        *server,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query,
              gpointer           user_data)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
  gsize len = 0;
  gconstpointer data = g_bytes_get_data (bytes, &len);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/proto", SOUP_MEMORY_COPY, data, len);
}

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *listen_address = NULL;
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GSocketConnectable) connectable = NULL;
  g_autoptr(GSocketAddressEnumerator) enumerator = NULL;
  g_autoptr(GSocketAddress) addr = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  GSList *uris;
  GUri *uri;
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen_address, "Address to listen on", "HOST:PORT" },
    { NULL }
  };

  options = g_option_context_new ("- HTTP/1.1 echo server on SoupServer");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  signal (SIGPIPE, SIG_IGN);

  connectable = g_network_address_parse (listen_address ? listen_address : "127.0.0.1:0", 0, &error);
  if (connectable != NULL)
    {
      enumerator = g_socket_connectable_enumerate (connectable);
      addr = g_socket_address_enumerator_next (enumerator, NULL, &error);
    }
  server = soup_server_new (NULL, NULL);
  soup_server_add_handler (server, NULL, echo_handler, NULL, NULL);
  if (addr == NULL || !soup_server_listen (server, addr, 0, &error))
    {
      g_printerr ("listen: %s\n", error->message);
      return 1;
    }

  uris = soup_server_get_uris (server);
  uri = uris->data;
  printf ("http://%s:%d\n", g_uri_get_host (uri), g_uri_get_port (uri));
  fflush (stdout);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);

  soup_server_disconnect (server);
  return 0;
}
