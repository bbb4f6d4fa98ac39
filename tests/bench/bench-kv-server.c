/* bench-kv-server.c: our server, through the whole engine
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A CpRpcServer serving kv.v1.KVService:
 *   Get    returns a small value from an in-memory table ("hello" → "world");
 *   Watch  streams small WatchEvents for the benchmark: the request prefix
 *          "count:N" asks for N events (each sent with
 *          cp_invocation_send_message_async(), awaiting back-pressure), then
 *          the stream ends successfully; "batch:count:N" queues 63 events
 *          with cp_invocation_send_message() and awaits the 64th.
 *
 *   bench-kv-server [--listen 127.0.0.1:0 | --listen unix:/path] [--compress-min-bytes N]
 *                   [--metrics]
 *
 * Prints the URL it serves as the first stdout line; runs until
 * SIGINT/SIGTERM.
 */
#include <connectplugin.h>
#include <glib-unix.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kv-test.h"

static GHashTable *table;  /* key → GBytes */

static void
handle_get (CpInvocation *invocation,
            CpMessage    *request,
            gpointer      user_data)
{
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  GBytes *value = g_hash_table_lookup (table, key);
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, value != NULL);

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

typedef struct {
  CpInvocation *invocation;
  GBytes       *value;
  guint64       remaining;
  guint         batch;      /* messages per awaited send (1 = await each) */
} WatchJob;

static void
watch_job_free (WatchJob *job)
{
  g_object_unref (job->invocation);
  g_bytes_unref (job->value);
  g_free (job);
}

static void watch_send_next (WatchJob *job);

static void
on_event_sent (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  WatchJob *job = user_data;
  g_autoptr(GError) error = NULL;

  if (!cp_invocation_send_message_finish (CP_INVOCATION (source), result, &error))
    {
      /* The client went away (the slow-reader run closes early). */
      watch_job_free (job);
      return;
    }
  job->remaining--;
  watch_send_next (job);
}

static void
watch_send_next (WatchJob *job)
{
  g_autoptr(KvWatchEvent) event = NULL;

  /* Batched mode: queue batch - 1 messages without waiting, then await the
   * last one (bounded memory, one back-pressure check per batch). */
  for (guint i = 1; i < job->batch && job->remaining > 1; i++)
    {
      g_autoptr(KvWatchEvent) queued = kv_test_watch_event (KV_EVENT_TYPE_PUT, "bench/key", job->value);
      if (!cp_invocation_send_message (job->invocation, CP_MESSAGE (queued), NULL))
        {
          watch_job_free (job);
          return;
        }
      job->remaining--;
    }
  if (job->remaining == 0)
    {
      cp_invocation_return_ok (job->invocation);
      watch_job_free (job);
      return;
    }
  event = kv_test_watch_event (KV_EVENT_TYPE_PUT, "bench/key", job->value);
  cp_invocation_send_message_async (job->invocation, CP_MESSAGE (event), NULL,
                                    on_event_sent, job);
}

static void
handle_watch (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  const char *prefix = kv_watch_request_get_prefix (KV_WATCH_REQUEST (request));
  guint batch = 1;
  WatchJob *job;

  if (g_str_has_prefix (prefix, "batch:"))
    {
      batch = 64;
      prefix += strlen ("batch:");
    }
  if (!g_str_has_prefix (prefix, "count:"))
    {
      cp_invocation_return_error (invocation, CP_ERROR_INVALID_ARGUMENT,
                                  "the benchmark Watch wants a prefix \"[batch:]count:N\"");
      return;
    }
  job = g_new0 (WatchJob, 1);
  job->invocation = g_object_ref (invocation);
  job->value = g_bytes_new_static ("12345678", 8);
  job->remaining = g_ascii_strtoull (prefix + strlen ("count:"), NULL, 10);
  job->batch = batch;
  watch_send_next (job);
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
  g_autofree char *url = NULL;
  gint compress_min_bytes = -1;
  gboolean metrics = FALSE;
  g_autoptr(GOptionContext) options = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpRpcServer) server = NULL;
  g_autoptr(CpMethodInfo) get_info = NULL;
  g_autoptr(CpMethodInfo) watch_info = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  GOptionEntry entries[] = {
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen_address, "Address to listen on", "HOST:PORT|unix:PATH" },
    { "compress-min-bytes", 0, 0, G_OPTION_ARG_INT, &compress_min_bytes,
      "Set CpRpcServer:compress-min-bytes (default: the engine's)", "N" },
    { "metrics", 0, 0, G_OPTION_ARG_NONE, &metrics,
      "Set CpRpcServer:metrics-enabled (serve /metrics)", NULL },
    { NULL }
  };

  options = g_option_context_new ("- kv.v1.KVService on CpRpcServer, for benchmarks");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  signal (SIGPIPE, SIG_IGN);
  kv_test_ensure_types ();

  table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_bytes_unref);
  g_hash_table_insert (table, g_strdup ("hello"), g_bytes_new_static ("world", 5));
  g_hash_table_insert (table, g_strdup ("plugin"), g_bytes_new_static ("connectplugin", 13));

  server = cp_rpc_server_new ();
  if (compress_min_bytes >= 0)
    g_object_set (server, "compress-min-bytes", (guint) compress_min_bytes, NULL);
  if (metrics)
    g_object_set (server, "metrics-enabled", TRUE, NULL);
  get_info = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                 KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
  cp_method_info_set_idempotency (get_info, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
  cp_rpc_server_add_method (server, get_info, handle_get, NULL, NULL);
  watch_info = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                   KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);
  cp_rpc_server_add_method (server, watch_info, handle_watch, NULL, NULL);

  url = cp_rpc_server_listen (server, listen_address ? listen_address : "127.0.0.1:0", &error);
  if (url == NULL)
    {
      g_printerr ("listen: %s\n", error->message);
      return 1;
    }
  printf ("%s\n", url);
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);

  cp_rpc_server_close (server);
  g_hash_table_unref (table);
  return 0;
}
