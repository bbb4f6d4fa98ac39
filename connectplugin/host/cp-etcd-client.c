/* cp-etcd-client.c: etcd's v3 API over its HTTP/JSON gateway, on libsoup
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two SoupSessions: one for unary calls (put, range, lease grant,
 * keep-alive, revoke) with an I/O timeout, one for watches, which stay
 * idle as long as nothing changes and so have none. Neither goes through
 * a system proxy: etcd is a peer on the operator's network.
 */
#include <string.h>

#include <libsoup/soup.h>

#include "cp-etcd-client-private.h"
#include "cp-error.h"

/* Seconds a unary call may stay silent before it fails. */
#define CALL_TIMEOUT_S 10

struct _CpEtcdClient
{
  GObject parent_instance;

  GStrv endpoints;          /* at least one, no trailing '/' */
  guint current;            /* index of the endpoint the next call uses */
  SoupSession *session;
  SoupSession *watch_session;
};

G_DEFINE_FINAL_TYPE (CpEtcdClient, cp_etcd_client, G_TYPE_OBJECT)

static void
cp_etcd_client_finalize (GObject *object)
{
  CpEtcdClient *self = CP_ETCD_CLIENT (object);

  g_clear_pointer (&self->endpoints, g_strfreev);
  g_clear_object (&self->session);
  g_clear_object (&self->watch_session);

  G_OBJECT_CLASS (cp_etcd_client_parent_class)->finalize (object);
}

static void
cp_etcd_client_class_init (CpEtcdClientClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_etcd_client_finalize;
}

static void
cp_etcd_client_init (CpEtcdClient *self)
{
  self->session = soup_session_new_with_options ("proxy-resolver", NULL,
                                                 "timeout", CALL_TIMEOUT_S,
                                                 "idle-timeout", 30, NULL);
  self->watch_session = soup_session_new_with_options ("proxy-resolver", NULL,
                                                       "timeout", 0, NULL);
}

CpEtcdClient *
cp_etcd_client_new (const char * const *endpoints)
{
  CpEtcdClient *self = g_object_new (CP_TYPE_ETCD_CLIENT, NULL);
  GPtrArray *list = g_ptr_array_new ();

  for (guint i = 0; endpoints != NULL && endpoints[i] != NULL; i++)
    {
      gsize len = strlen (endpoints[i]);

      while (len > 0 && endpoints[i][len - 1] == '/')
        len--;
      if (len > 0)
        g_ptr_array_add (list, g_strndup (endpoints[i], len));
    }
  if (list->len == 0)
    g_ptr_array_add (list, g_strdup ("http://127.0.0.1:2379"));
  g_ptr_array_add (list, NULL);
  self->endpoints = (GStrv) g_ptr_array_free (list, FALSE);
  return self;
}

/* A new POST of @request to the current endpoint, or NULL with @error
 * when the endpoint is not a valid URL. */
static SoupMessage *
new_message (CpEtcdClient  *self,
             const char    *path,
             JsonObject    *request,
             GError       **error)
{
  g_autofree char *uri = g_strconcat (self->endpoints[self->current], path, NULL);
  g_autoptr(JsonNode) node = json_node_init_object (json_node_alloc (), request);
  g_autofree char *body = json_to_string (node, FALSE);
  g_autoptr(GBytes) bytes = NULL;
  SoupMessage *message;
  gsize len = strlen (body);

  message = soup_message_new (SOUP_METHOD_POST, uri);
  if (message == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "etcd: bad endpoint URL \"%s\"", uri);
      return NULL;
    }
  bytes = g_bytes_new_take (g_steal_pointer (&body), len);
  soup_message_set_request_body_from_bytes (message, "application/json", bytes);
  return message;
}

/* A failed exchange: the next call tries the next endpoint. */
static void
rotate (CpEtcdClient *self)
{
  self->current++;
  if (self->endpoints[self->current] == NULL)
    self->current = 0;
}

static void
call_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CpEtcdClient *self = g_task_get_source_object (task);
  SoupMessage *message = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  JsonObject *object;
  guint status;
  gsize len = 0;
  const char *data;

  body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  if (body == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        rotate (self);
      if (error->domain != CP_ERROR && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE, "etcd: %s", error->message);
      else
        g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  data = g_bytes_get_data (body, &len);
  status = soup_message_get_status (message);
  object = cp_etcd_parse_response (data, len, &error);
  if (object == NULL && status != SOUP_STATUS_OK && g_error_matches (error, CP_ERROR, CP_ERROR_INTERNAL))
    {
      g_clear_error (&error);
      g_set_error (&error, CP_ERROR, CP_ERROR_UNAVAILABLE, "etcd: HTTP %u %s", status,
                   soup_message_get_reason_phrase (message));
    }
  if (object == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, object, (GDestroyNotify) json_object_unref);
}

void
cp_etcd_client_call_async (CpEtcdClient        *self,
                           const char          *path,
                           JsonObject          *request,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  SoupMessage *message;

  g_return_if_fail (CP_IS_ETCD_CLIENT (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_etcd_client_call_async);
  message = new_message (self, path, request, &error);
  if (message == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_set_task_data (task, message, g_object_unref);
  soup_session_send_and_read_async (self->session, message, G_PRIORITY_DEFAULT, cancellable,
                                    call_cb, g_steal_pointer (&task));
}

JsonObject *
cp_etcd_client_call_finish (CpEtcdClient  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
watch_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CpEtcdClient *self = g_task_get_source_object (task);
  SoupMessage *message = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;

  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (stream == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      rotate (self);
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE, "etcd watch: %s", error->message);
      return;
    }
  if (soup_message_get_status (message) != SOUP_STATUS_OK)
    {
      rotate (self);
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE, "etcd watch: HTTP %u %s",
                               soup_message_get_status (message),
                               soup_message_get_reason_phrase (message));
      return;
    }
  /* The body stream belongs to the message's connection: keep the
   * message as long as the stream. */
  g_object_set_data_full (G_OBJECT (stream), "cp-etcd-message", g_object_ref (message),
                          g_object_unref);
  g_task_return_pointer (task, g_steal_pointer (&stream), g_object_unref);
}

void
cp_etcd_client_watch_async (CpEtcdClient        *self,
                            const char          *key,
                            const char          *range_end,
                            gint64               start_revision,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) request = json_object_new ();
  g_autoptr(JsonObject) create = json_object_new ();
  SoupMessage *message;

  g_return_if_fail (CP_IS_ETCD_CLIENT (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_etcd_client_watch_async);
  cp_etcd_set_bytes (create, "key", key, strlen (key));
  cp_etcd_set_bytes (create, "range_end", range_end, strlen (range_end));
  if (start_revision > 0)
    {
      g_autofree char *revision = g_strdup_printf ("%" G_GINT64_FORMAT, start_revision);

      json_object_set_string_member (create, "start_revision", revision);
    }
  json_object_set_object_member (request, "create_request", g_steal_pointer (&create));
  message = new_message (self, "/v3/watch", request, &error);
  if (message == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_set_task_data (task, message, g_object_unref);
  soup_session_send_async (self->watch_session, message, G_PRIORITY_DEFAULT, cancellable,
                           watch_cb, g_steal_pointer (&task));
}

GInputStream *
cp_etcd_client_watch_finish (CpEtcdClient  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
