/* kv-plugin.c: the KV service as a connectplugin plugin ("kv", 1.0.0)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   kv-plugin [--listen 127.0.0.1:PORT | --listen unix:PATH]
 *
 * Served by CpServer through cp_server_run(): prints the URL it serves as
 * the first line of stdout (hosts read it), listens where --listen,
 * CONNECTPLUGIN_LISTEN or PORT say, answers the handshake, health and
 * PluginControl, and shuts down gracefully on SIGTERM/SIGINT or
 * PluginControl.Shutdown. Logs go to stderr.
 *
 * The KV messages are the hand-written classes of kv-messages.h; the
 * service is registered through a small CpSkeleton subclass whose dispatch
 * calls the handlers (a generated KvKVServiceSkeleton would do the same
 * with handle-* signals).
 */
#include <connectplugin.h>
#include <stdio.h>

#include "cp-plugin.h"
#include "cp-server.h"
#include "kv-messages.h"

/* ------------------------------------------------------------------ */
/* The store                                                            */

typedef struct {
  GHashTable *store;    /* char* key → GBytes* value */
  GPtrArray  *watchers; /* Watcher* of open Watch calls */
} KvStore;

typedef struct {
  KvStore      *kv;
  CpInvocation *invocation;
  char         *prefix;
  gulong        cancelled_id;
} Watcher;

static void
log_line (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
log_line (const char *format, ...)
{
  va_list args;

  /* stdout is the address channel: logs go to stderr, line by line. */
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputc ('\n', stderr);
  fflush (stderr);
}

static void
watcher_free (gpointer data)
{
  Watcher *w = data;

  g_signal_handler_disconnect (cp_invocation_get_cancellable (w->invocation), w->cancelled_id);
  g_object_unref (w->invocation);
  g_free (w->prefix);
  g_free (w);
}

static void
notify_watchers (KvStore    *kv,
                 int         type,
                 const char *key,
                 GBytes     *value)
{
  for (guint i = 0; i < kv->watchers->len; i++)
    {
      Watcher *w = g_ptr_array_index (kv->watchers, i);
      g_autoptr(KvWatchEvent) event = NULL;
      g_autoptr(GError) error = NULL;

      if (!g_str_has_prefix (key, w->prefix))
        continue;
      event = kv_watch_event_new (type, key, value);
      if (!cp_invocation_send_message (w->invocation, CP_MESSAGE (event), &error))
        log_line ("watch: dropping event for %s: %s", key, error->message);
    }
}

static void
handle_get (KvStore      *kv,
            CpInvocation *invocation,
            CpMessage    *request)
{
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  GBytes *value = g_hash_table_lookup (kv->store, key);
  g_autoptr(KvGetResponse) response = kv_get_response_new (value, value != NULL);

  log_line ("get %s → %s", key, value ? "found" : "not found");
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_put (KvStore      *kv,
            CpInvocation *invocation,
            CpMessage    *request)
{
  KvPutRequest *put = KV_PUT_REQUEST (request);
  const char *key = kv_put_request_get_key (put);
  g_autoptr(GBytes) value = NULL;
  g_autoptr(KvPutResponse) response = NULL;

  if (*key == '\0')
    {
      cp_invocation_return_error (invocation, CP_ERROR_INVALID_ARGUMENT, "key must not be empty");
      return;
    }
  value = kv_put_request_get_value (put);
  log_line ("put %s (%zu bytes)", key, g_bytes_get_size (value));
  g_hash_table_replace (kv->store, g_strdup (key), g_bytes_ref (value));
  notify_watchers (kv, KV_EVENT_TYPE_PUT, key, value);

  response = kv_put_response_new ();
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
handle_delete (KvStore      *kv,
               CpInvocation *invocation,
               CpMessage    *request)
{
  const char *key = kv_delete_request_get_key (KV_DELETE_REQUEST (request));
  gboolean found = g_hash_table_remove (kv->store, key);
  g_autoptr(KvDeleteResponse) response = kv_delete_response_new (found);

  log_line ("delete %s → %s", key, found ? "found" : "not found");
  if (found)
    notify_watchers (kv, KV_EVENT_TYPE_DELETE, key, NULL);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
on_watch_cancelled (GCancellable *cancellable,
                    gpointer      user_data)
{
  Watcher *w = user_data;

  /* The caller went away or the deadline passed: the engine answers. */
  log_line ("watch ended");
  g_ptr_array_remove (w->kv->watchers, w);
}

static void
handle_watch (KvStore      *kv,
              CpInvocation *invocation,
              CpMessage    *request)
{
  Watcher *w = g_new0 (Watcher, 1);

  w->kv = kv;
  w->invocation = g_object_ref (invocation);
  w->prefix = g_strdup (kv_watch_request_get_prefix (KV_WATCH_REQUEST (request)));
  log_line ("watch prefix=\"%s\"", w->prefix);
  w->cancelled_id = g_signal_connect (cp_invocation_get_cancellable (invocation), "cancelled",
                                      G_CALLBACK (on_watch_cancelled), w);
  g_ptr_array_add (kv->watchers, w);
  /* Tell the caller now that the watch is in place. */
  cp_invocation_send_headers (invocation);
}

/* A graceful shutdown waits for running calls: end the open watches. */
static void
on_serving_changed (CpServer   *server,
                    GParamSpec *pspec,
                    gpointer    user_data)
{
  KvStore *kv = user_data;
  g_autoptr(GPtrArray) watchers = NULL;

  if (cp_server_get_serving (server))
    return;
  watchers = g_steal_pointer (&kv->watchers);
  kv->watchers = g_ptr_array_new_with_free_func (watcher_free);
  for (guint i = 0; i < watchers->len; i++)
    cp_invocation_return_ok (((Watcher *) watchers->pdata[i])->invocation);
}

/* ------------------------------------------------------------------ */
/* kv.v1.KVService as a CpSkeleton                                      */

#define KV_TYPE_PLUGIN_SKELETON (kv_plugin_skeleton_get_type ())
G_DECLARE_FINAL_TYPE (KvPluginSkeleton, kv_plugin_skeleton, KV, PLUGIN_SKELETON, CpSkeleton)

struct _KvPluginSkeleton
{
  CpSkeleton parent_instance;
  KvStore *kv;
};

G_DEFINE_FINAL_TYPE (KvPluginSkeleton, kv_plugin_skeleton, CP_TYPE_SKELETON)

static gboolean
kv_plugin_skeleton_dispatch (CpSkeleton   *skeleton,
                             CpMethodInfo *method,
                             CpInvocation *invocation,
                             CpMessage    *request)
{
  KvStore *kv = KV_PLUGIN_SKELETON (skeleton)->kv;
  const char *name = cp_method_info_get_method_name (method);

  if (g_str_equal (name, "Get"))
    handle_get (kv, invocation, request);
  else if (g_str_equal (name, "Put"))
    handle_put (kv, invocation, request);
  else if (g_str_equal (name, "Delete"))
    handle_delete (kv, invocation, request);
  else if (g_str_equal (name, "Watch"))
    handle_watch (kv, invocation, request);
  else
    return FALSE;
  return TRUE;
}

static void
kv_plugin_skeleton_class_init (KvPluginSkeletonClass *klass)
{
  CpSkeletonClass *skeleton_class = CP_SKELETON_CLASS (klass);
  g_autoptr(CpServiceDescriptor) descriptor = NULL;
  struct {
    const char *procedure;
    CpMethodKind kind;
    GType in, out;
  } methods[] = {
    { KV_PROCEDURE_GET, CP_METHOD_UNARY, KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE },
    { KV_PROCEDURE_PUT, CP_METHOD_UNARY, KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE },
    { KV_PROCEDURE_DELETE, CP_METHOD_UNARY, KV_TYPE_DELETE_REQUEST, KV_TYPE_DELETE_RESPONSE },
    { KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING, KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT },
  };

  skeleton_class->dispatch = kv_plugin_skeleton_dispatch;

  descriptor = cp_service_descriptor_new ("kv.v1.KVService", G_TYPE_INVALID,
                                          G_TYPE_FROM_CLASS (klass));
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(CpMethodInfo) info = cp_method_info_new (methods[i].procedure, methods[i].kind,
                                                         methods[i].in, methods[i].out);

      if (i == 0)
        cp_method_info_set_idempotency (info, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
      cp_service_descriptor_add_method (descriptor, info);
    }
  cp_skeleton_class_set_descriptor (skeleton_class, descriptor);
}

static void
kv_plugin_skeleton_init (KvPluginSkeleton *self)
{
}

/* ------------------------------------------------------------------ */

int
main (int argc, char **argv)
{
  KvStore kv = { 0 };
  g_autoptr(CpServer) server = NULL;
  g_autoptr(CpPlugin) plugin = NULL;
  g_autoptr(KvPluginSkeleton) skeleton = NULL;
  int status;

  kv_messages_ensure_types ();
  kv.store = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref);
  kv.watchers = g_ptr_array_new_with_free_func (watcher_free);

  skeleton = g_object_new (KV_TYPE_PLUGIN_SKELETON, NULL);
  skeleton->kv = &kv;

  plugin = cp_plugin_new ("kv", "1.0.0");
  cp_plugin_add_service (plugin, CP_SKELETON (skeleton));
  cp_plugin_add_provides (plugin, "kv", "1.0.0", "/kv.v1.KVService/");

  server = cp_server_new ();
  cp_server_add_plugin (server, plugin);
  g_signal_connect (server, "notify::serving", G_CALLBACK (on_serving_changed), &kv);

  status = cp_server_run (server, argc, argv);
  log_line ("kv plugin stopped (status %d)", status);

  g_signal_handlers_disconnect_by_data (server, &kv);
  g_clear_object (&server);
  cp_skeleton_unexport (CP_SKELETON (skeleton));
  g_ptr_array_unref (kv.watchers);
  g_hash_table_unref (kv.store);
  return status;
}
