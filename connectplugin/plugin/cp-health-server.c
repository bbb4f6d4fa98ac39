/* cp-health-server.c: connectplugin.health.v1.HealthService
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * grpc.health.v1 semantics in connect-plugin-go's package: Check answers
 * the current status (`not_found` for unknown names); Watch sends the
 * current status at once (SERVICE_UNKNOWN for unknown names), then one
 * message per change, and stays open until the client goes away or the
 * server shuts down.
 */
#include "cp-health-server-private.h"

#include "cp-plugin-constants.h"
#include "cp-rpc-server-private.h"

typedef struct _Watcher Watcher;

struct _CpHealthServer
{
  GObject parent_instance;

  GHashTable *statuses;   /* char* → GINT_TO_POINTER (CpServingStatus) */
  GPtrArray *watchers;    /* Watcher* */
  gboolean shut_down;
};

struct _Watcher
{
  CpHealthServer *self;   /* unowned: the server outlives its watchers */
  CpInvocation *invocation;
  char *service;
  CpServingStatus last_sent;
  gulong cancelled_id;
};

G_DEFINE_FINAL_TYPE (CpHealthServer, cp_health_server, G_TYPE_OBJECT)

static void
watcher_free (gpointer data)
{
  Watcher *watcher = data;

  if (watcher->cancelled_id != 0)
    g_signal_handler_disconnect (cp_invocation_get_cancellable (watcher->invocation),
                                 watcher->cancelled_id);
  g_object_unref (watcher->invocation);
  g_free (watcher->service);
  g_free (watcher);
}

static gboolean
watcher_send (Watcher         *watcher,
              CpServingStatus  status)
{
  g_autoptr(CpHealthCheckResponse) response = cp_health_check_response_new ();
  g_autoptr(GError) error = NULL;

  cp_health_check_response_set_status (response, status);
  if (!cp_invocation_send_message (watcher->invocation, CP_MESSAGE (response), &error))
    {
      g_debug ("health watch of \"%s\": %s", watcher->service, error->message);
      return FALSE;
    }
  watcher->last_sent = status;
  return TRUE;
}

static void
on_watch_cancelled (GCancellable *cancellable,
                    gpointer      user_data)
{
  Watcher *watcher = user_data;

  /* The client went away (or the deadline passed): forget the stream. */
  g_ptr_array_remove (watcher->self->watchers, watcher);
}

static CpServingStatus
lookup_status (CpHealthServer *self,
               const char     *service,
               gboolean       *found)
{
  gpointer value;
  gboolean known = g_hash_table_lookup_extended (self->statuses, service, NULL, &value);

  if (found != NULL)
    *found = known;
  return known ? (CpServingStatus) GPOINTER_TO_INT (value) : CP_SERVING_STATUS_SERVICE_UNKNOWN;
}

static void
handle_check (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  CpHealthServer *self = user_data;
  const char *service = cp_health_check_request_get_service (CP_HEALTH_CHECK_REQUEST (request));
  g_autoptr(CpHealthCheckResponse) response = NULL;
  gboolean found;
  CpServingStatus status = lookup_status (self, service, &found);

  if (!found)
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND,
                                  "unknown service: \"%s\"", service);
      return;
    }
  response = cp_health_check_response_new ();
  cp_health_check_response_set_status (response, status);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  CpHealthServer *self = user_data;
  const char *service = cp_health_check_request_get_service (CP_HEALTH_CHECK_REQUEST (request));
  Watcher *watcher;

  watcher = g_new0 (Watcher, 1);
  watcher->self = self;
  watcher->invocation = g_object_ref (invocation);
  watcher->service = g_strdup (service);

  if (!watcher_send (watcher, lookup_status (self, service, NULL)) || self->shut_down)
    {
      cp_invocation_return_ok (invocation);
      watcher_free (watcher);
      return;
    }

  watcher->cancelled_id = g_signal_connect (cp_invocation_get_cancellable (invocation),
                                            "cancelled", G_CALLBACK (on_watch_cancelled),
                                            watcher);
  g_ptr_array_add (self->watchers, watcher);
}

/* ------------------------------------------------------------------ */

CpHealthServer *
cp_health_server_new (void)
{
  return g_object_new (CP_TYPE_HEALTH_SERVER, NULL);
}

void
cp_health_server_register (CpHealthServer *self,
                           CpRpcServer    *server)
{
  g_autoptr(CpMethodInfo) check = NULL;
  g_autoptr(CpMethodInfo) watch = NULL;

  g_return_if_fail (CP_IS_HEALTH_SERVER (self));
  g_return_if_fail (CP_IS_RPC_SERVER (server));

  check = cp_method_info_new (CP_PROCEDURE_HEALTH_CHECK, CP_METHOD_UNARY,
                              CP_TYPE_HEALTH_CHECK_REQUEST, CP_TYPE_HEALTH_CHECK_RESPONSE);
  cp_method_info_set_idempotency (check, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
  watch = cp_method_info_new (CP_PROCEDURE_HEALTH_WATCH, CP_METHOD_SERVER_STREAMING,
                              CP_TYPE_HEALTH_CHECK_REQUEST, CP_TYPE_HEALTH_CHECK_RESPONSE);

  cp_rpc_server_add_home_method (server, check, handle_check, g_object_ref (self), g_object_unref);
  cp_rpc_server_add_home_method (server, watch, handle_watch, g_object_ref (self), g_object_unref);
}

void
cp_health_server_set_status (CpHealthServer  *self,
                             const char      *service,
                             CpServingStatus  status)
{
  g_autoptr(GPtrArray) snapshot = NULL;

  g_return_if_fail (CP_IS_HEALTH_SERVER (self));
  g_return_if_fail (service != NULL);

  if (self->shut_down)
    return;

  g_hash_table_replace (self->statuses, g_strdup (service), GINT_TO_POINTER (status));

  /* Sending may fail and drop a watcher: walk a copy (which must not own
   * the watchers: g_ptr_array_copy() would keep the free function). */
  snapshot = g_ptr_array_sized_new (self->watchers->len);
  for (guint i = 0; i < self->watchers->len; i++)
    g_ptr_array_add (snapshot, self->watchers->pdata[i]);
  for (guint i = 0; i < snapshot->len; i++)
    {
      Watcher *watcher = snapshot->pdata[i];

      if (g_strcmp0 (watcher->service, service) != 0 || watcher->last_sent == status)
        continue;
      if (!watcher_send (watcher, status))
        g_ptr_array_remove (self->watchers, watcher);
    }
}

CpServingStatus
cp_health_server_get_status (CpHealthServer *self,
                             const char     *service)
{
  g_return_val_if_fail (CP_IS_HEALTH_SERVER (self), CP_SERVING_STATUS_SERVICE_UNKNOWN);
  g_return_val_if_fail (service != NULL, CP_SERVING_STATUS_SERVICE_UNKNOWN);

  return lookup_status (self, service, NULL);
}

void
cp_health_server_shutdown (CpHealthServer *self)
{
  GHashTableIter iter;
  gpointer key, value;
  g_autoptr(GPtrArray) watchers = NULL;

  g_return_if_fail (CP_IS_HEALTH_SERVER (self));

  if (self->shut_down)
    return;

  g_hash_table_iter_init (&iter, self->statuses);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_iter_replace (&iter, GINT_TO_POINTER (CP_SERVING_STATUS_NOT_SERVING));

  self->shut_down = TRUE;
  watchers = g_steal_pointer (&self->watchers);
  self->watchers = g_ptr_array_new_with_free_func (watcher_free);

  for (guint i = 0; i < watchers->len; i++)
    {
      Watcher *watcher = watchers->pdata[i];
      CpServingStatus status = lookup_status (self, watcher->service, NULL);

      if (watcher->last_sent != status)
        watcher_send (watcher, status);
      cp_invocation_return_ok (watcher->invocation);
    }
}

/* ------------------------------------------------------------------ */

static void
cp_health_server_finalize (GObject *object)
{
  CpHealthServer *self = CP_HEALTH_SERVER (object);

  g_clear_pointer (&self->watchers, g_ptr_array_unref);
  g_clear_pointer (&self->statuses, g_hash_table_unref);

  G_OBJECT_CLASS (cp_health_server_parent_class)->finalize (object);
}

static void
cp_health_server_class_init (CpHealthServerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_health_server_finalize;
}

static void
cp_health_server_init (CpHealthServer *self)
{
  self->statuses = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->watchers = g_ptr_array_new_with_free_func (watcher_free);
}
