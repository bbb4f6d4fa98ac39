/* raw-server.c: a scripted HTTP/1.1 server for client tests
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include "raw-server.h"

struct _RawServer
{
  GSocket *listener;
  GCancellable *cancellable;
  GThread *thread;
  char *url;

  GMutex lock;
  GBytes *response;
  RawAfter after;
  GPtrArray *requests;
  guint n_peer_closed;
};

static gssize
find_head_end (GByteArray *buf)
{
  for (guint i = 0; i + 3 < buf->len; i++)
    if (memcmp (buf->data + i, "\r\n\r\n", 4) == 0)
      return i + 4;
  return -1;
}

static gsize
content_length (const char *head)
{
  g_auto(GStrv) lines = g_strsplit (head, "\r\n", -1);

  for (guint i = 0; lines[i]; i++)
    if (g_ascii_strncasecmp (lines[i], "Content-Length:", 15) == 0)
      return g_ascii_strtoull (lines[i] + 15, NULL, 10);
  return 0;
}

static void
handle_connection (RawServer *self,
                   GSocket   *sock)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GBytes) response = NULL;
  gssize head_end = -1;
  gsize need = 0;
  RawAfter after;
  char tmp[16384];

  g_socket_set_timeout (sock, 10);
  for (;;)
    {
      gssize n;

      if (head_end >= 0 && buf->len >= need)
        break;
      n = g_socket_receive (sock, tmp, sizeof tmp, self->cancellable, NULL);
      if (n <= 0)
        return;
      g_byte_array_append (buf, (guint8 *) tmp, n);
      if (head_end < 0 && (head_end = find_head_end (buf)) >= 0)
        {
          g_autofree char *head = g_strndup ((char *) buf->data, head_end);

          need = head_end + content_length (head);
        }
    }

  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->requests, g_bytes_new (buf->data, buf->len));
  response = self->response ? g_bytes_ref (self->response) : NULL;
  after = self->after;
  g_mutex_unlock (&self->lock);

  if (response != NULL)
    {
      gsize len;
      const char *data = g_bytes_get_data (response, &len);
      gsize off = 0;

      while (off < len)
        {
          gssize n = g_socket_send (sock, data + off, len - off, self->cancellable, NULL);

          if (n <= 0)
            return;
          off += n;
        }
    }

  if (after == RAW_AFTER_WAIT_EOF)
    {
      for (;;)
        {
          g_autoptr(GError) error = NULL;
          gssize n = g_socket_receive (sock, tmp, sizeof tmp, self->cancellable, &error);

          if (n == 0 || (n < 0 && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) &&
                         !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
            {
              g_mutex_lock (&self->lock);
              self->n_peer_closed++;
              g_mutex_unlock (&self->lock);
              return;
            }
          if (n < 0)
            return;
        }
    }
}

static gpointer
server_thread (gpointer data)
{
  RawServer *self = data;

  for (;;)
    {
      g_autoptr(GSocket) sock = g_socket_accept (self->listener, self->cancellable, NULL);

      if (sock == NULL)
        break;
      handle_connection (self, sock);
      g_socket_close (sock, NULL);
    }
  return NULL;
}

RawServer *
raw_server_new (void)
{
  RawServer *self = g_new0 (RawServer, 1);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_mutex_init (&self->lock);
  self->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  self->cancellable = g_cancellable_new ();
  self->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL);
  g_assert_nonnull (self->listener);
  g_assert_true (g_socket_bind (self->listener, address, TRUE, NULL));
  g_assert_true (g_socket_listen (self->listener, NULL));
  bound = g_socket_get_local_address (self->listener, NULL);
  self->url = g_strdup_printf ("http://127.0.0.1:%u",
                               g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  self->thread = g_thread_new ("raw-server", server_thread, self);
  return self;
}

const char *
raw_server_get_url (RawServer *server)
{
  return server->url;
}

void
raw_server_set_response (RawServer *server,
                         GBytes    *response,
                         RawAfter   after)
{
  g_mutex_lock (&server->lock);
  g_clear_pointer (&server->response, g_bytes_unref);
  server->response = response ? g_bytes_ref (response) : NULL;
  server->after = after;
  g_mutex_unlock (&server->lock);
}

guint
raw_server_get_n_requests (RawServer *server)
{
  guint n;

  g_mutex_lock (&server->lock);
  n = server->requests->len;
  g_mutex_unlock (&server->lock);
  return n;
}

GBytes *
raw_server_get_request (RawServer *server,
                        guint      index)
{
  GBytes *request;

  g_mutex_lock (&server->lock);
  g_assert_cmpuint (index, <, server->requests->len);
  request = g_bytes_ref (server->requests->pdata[index]);
  g_mutex_unlock (&server->lock);
  return request;
}

guint
raw_server_get_n_peer_closed (RawServer *server)
{
  guint n;

  g_mutex_lock (&server->lock);
  n = server->n_peer_closed;
  g_mutex_unlock (&server->lock);
  return n;
}

void
raw_server_free (RawServer *server)
{
  g_cancellable_cancel (server->cancellable);
  g_thread_join (server->thread);
  g_socket_close (server->listener, NULL);
  g_object_unref (server->listener);
  g_object_unref (server->cancellable);
  g_clear_pointer (&server->response, g_bytes_unref);
  g_ptr_array_unref (server->requests);
  g_mutex_clear (&server->lock);
  g_free (server->url);
  g_free (server);
}

GBytes *
raw_response (guint       status,
              const char *headers,
              const void *body,
              gssize      len)
{
  GString *s = g_string_new (NULL);

  if (body != NULL && len < 0)
    len = strlen (body);
  if (body == NULL)
    len = 0;
  g_string_append_printf (s, "HTTP/1.1 %u Canned\r\n%sContent-Length: %" G_GSSIZE_FORMAT
                          "\r\nConnection: close\r\n\r\n",
                          status, headers ? headers : "", len);
  g_string_append_len (s, body, len);
  return g_string_free_to_bytes (s);
}

GBytes *
raw_response_unframed (guint       status,
                       const char *headers,
                       const void *body,
                       gsize       len)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "HTTP/1.1 %u Canned\r\n%sConnection: close\r\n\r\n",
                          status, headers ? headers : "");
  g_string_append_len (s, body, len);
  return g_string_free_to_bytes (s);
}

static char *
request_head (GBytes *request)
{
  gsize len;
  const char *data = g_bytes_get_data (request, &len);
  const char *end = g_strstr_len (data, len, "\r\n\r\n");

  return g_strndup (data, end ? (gsize) (end - data) : len);
}

char *
raw_request_header (GBytes     *request,
                    const char *name)
{
  g_autofree char *head = request_head (request);
  g_auto(GStrv) lines = g_strsplit (head, "\r\n", -1);
  gsize n = strlen (name);

  for (guint i = 1; lines[i]; i++)
    if (g_ascii_strncasecmp (lines[i], name, n) == 0 && lines[i][n] == ':')
      return g_strstrip (g_strdup (lines[i] + n + 1));
  return NULL;
}

char *
raw_request_line (GBytes *request)
{
  g_autofree char *head = request_head (request);
  char *eol = strstr (head, "\r\n");

  return eol ? g_strndup (head, eol - head) : g_strdup (head);
}

GBytes *
raw_request_body (GBytes *request)
{
  gsize len;
  const char *data = g_bytes_get_data (request, &len);
  const char *end = g_strstr_len (data, len, "\r\n\r\n");

  if (end == NULL)
    return g_bytes_new (NULL, 0);
  return g_bytes_new_from_bytes (request, end + 4 - data, len - (end + 4 - data));
}
