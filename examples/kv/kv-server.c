/* kv-server.c: the KV service (kv.v1.KVService) served through the Connect engine
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   kv-server [--listen 127.0.0.1:PORT | --listen unix:PATH]
 *
 * Prints the URL it serves as the first line of stdout, then one line per call.
 * SIGINT/SIGTERM stop it.
 */
#include <connectplugin.h>
#include <glib-unix.h>
#include <stdio.h>

#include "kv-messages.h"

typedef struct {
  GHashTable *store;    /* char* key → GBytes* value */
  GPtrArray  *watchers; /* CpInvocation* of open Watch calls */
} KvStore;

static void
log_line (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
log_line (const char *format, ...)
{
  va_list args;
  va_start (args, format);
  vprintf (format, args);
  va_end (args);
  putchar ('\n');
  fflush (stdout);
}

static void
notify_watchers (KvStore *kv, int type, const char *key, GBytes *value)
{
  for (guint i = 0; i < kv->watchers->len; i++)
    {
      CpInvocation *inv = g_ptr_array_index (kv->watchers, i);
      g_autoptr(KvWatchRequest) req = g_object_get_data (G_OBJECT (inv), "kv-request")
                                        ? g_object_ref (g_object_get_data (G_OBJECT (inv), "kv-request"))
                                        : NULL;
      if (req == NULL || !g_str_has_prefix (key, kv_watch_request_get_prefix (req)))
        continue;
      g_autoptr(KvWatchEvent) event = kv_watch_event_new (type, key, value);
      g_autoptr(GError) error = NULL;
      if (!cp_invocation_send_message (inv, CP_MESSAGE (event), &error))
        log_line ("watch: dropping event for %s: %s", key, error->message);
    }
}

static void
handle_get (CpInvocation *inv, CpMessage *request, gpointer user_data)
{
  KvStore *kv = user_data;
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  GBytes *value = g_hash_table_lookup (kv->store, key);
  g_autoptr(KvGetResponse) response = kv_get_response_new (value, value != NULL);

  log_line ("get %s → %s", key, value ? "found" : "not found");
  cp_invocation_return_message (inv, CP_MESSAGE (response));
}

static void
handle_put (CpInvocation *inv, CpMessage *request, gpointer user_data)
{
  KvStore *kv = user_data;
  KvPutRequest *put = KV_PUT_REQUEST (request);
  const char *key = kv_put_request_get_key (put);

  if (*key == '\0')
    {
      cp_invocation_return_error (inv, CP_ERROR_INVALID_ARGUMENT, "key must not be empty");
      return;
    }
  GBytes *value = kv_put_request_get_value (put);
  log_line ("put %s (%zu bytes)", key, g_bytes_get_size (value));
  g_hash_table_replace (kv->store, g_strdup (key), g_bytes_ref (value));
  notify_watchers (kv, KV_EVENT_TYPE_PUT, key, value);
  g_bytes_unref (value);

  g_autoptr(KvPutResponse) response = kv_put_response_new ();
  cp_invocation_return_message (inv, CP_MESSAGE (response));
}

static void
handle_delete (CpInvocation *inv, CpMessage *request, gpointer user_data)
{
  KvStore *kv = user_data;
  const char *key = kv_delete_request_get_key (KV_DELETE_REQUEST (request));
  gboolean found = g_hash_table_remove (kv->store, key);

  log_line ("delete %s → %s", key, found ? "found" : "not found");
  if (found)
    notify_watchers (kv, KV_EVENT_TYPE_DELETE, key, NULL);
  g_autoptr(KvDeleteResponse) response = kv_delete_response_new (found);
  cp_invocation_return_message (inv, CP_MESSAGE (response));
}

typedef struct {
  KvStore      *kv;
  CpInvocation *inv;
} Watcher;

static void
watch_cancelled (GCancellable *cancellable, gpointer user_data)
{
  Watcher *w = user_data;
  log_line ("watch ended");
  /* The caller went away or the deadline passed: the engine answers. */
  g_ptr_array_remove (w->kv->watchers, w->inv);
}

static void
handle_watch (CpInvocation *inv, CpMessage *request, gpointer user_data)
{
  KvStore *kv = user_data;
  Watcher *w = g_new0 (Watcher, 1);

  w->kv = kv;
  w->inv = inv;
  log_line ("watch prefix=\"%s\"", kv_watch_request_get_prefix (KV_WATCH_REQUEST (request)));
  g_object_set_data_full (G_OBJECT (inv), "kv-request", g_object_ref (request), g_object_unref);
  g_ptr_array_add (kv->watchers, g_object_ref (inv));
  /* Streams until the caller cancels: the invocation's cancellable fires. */
  g_cancellable_connect (cp_invocation_get_cancellable (inv),
                         G_CALLBACK (watch_cancelled), w, g_free);
  /* Tell the caller now that the watch is in place. */
  cp_invocation_send_headers (inv);
}

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autofree char *listen = NULL;
  GOptionEntry entries[] = {
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
      "Address to listen on: HOST:PORT (port 0 = any) or unix:PATH", "ADDRESS" },
    { NULL }
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("— serve kv.v1.KVService");
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("kv-server: %s\n", error->message);
      return 2;
    }

  KvStore kv = {
    .store = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref),
    .watchers = g_ptr_array_new_with_free_func (g_object_unref),
  };
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  struct {
    const char *procedure;
    CpMethodKind kind;
    GType in, out;
    CpMethodHandler handler;
  } methods[] = {
    { KV_PROCEDURE_GET, CP_METHOD_UNARY, KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE, handle_get },
    { KV_PROCEDURE_PUT, CP_METHOD_UNARY, KV_TYPE_PUT_REQUEST, KV_TYPE_PUT_RESPONSE, handle_put },
    { KV_PROCEDURE_DELETE, CP_METHOD_UNARY, KV_TYPE_DELETE_REQUEST, KV_TYPE_DELETE_RESPONSE, handle_delete },
    { KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING, KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT, handle_watch },
  };
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(CpMethodInfo) info = cp_method_info_new (methods[i].procedure, methods[i].kind,
                                                         methods[i].in, methods[i].out);
      if (methods[i].handler == handle_get)
        cp_method_info_set_idempotency (info, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
      cp_rpc_server_add_method (server, info, methods[i].handler, &kv, NULL);
    }

  g_autofree char *url = cp_rpc_server_listen (server, listen ? listen : "127.0.0.1:0", &error);
  if (url == NULL)
    {
      g_printerr ("kv-server: %s\n", error->message);
      return 1;
    }
  log_line ("%s", url);

  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);

  cp_rpc_server_close (server);
  g_ptr_array_unref (kv.watchers);
  g_hash_table_unref (kv.store);
  return 0;
}
