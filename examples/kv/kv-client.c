/* kv-client.c: calls kv.v1.KVService through the Connect client engine
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   kv-client URL        (http://127.0.0.1:PORT or unix:PATH)
 *
 * Puts, gets and deletes a few keys, and watches the changes under a prefix
 * while it does, printing each step. Exits non-zero if anything fails.
 */
#include <connectplugin.h>
#include <stdio.h>

#include "kv-messages.h"

typedef struct {
  GMainLoop *loop;
  guint      n_events;
  GError    *error;
} WatchState;

static void
on_watch_message (CpResponseStream *stream, CpMessage *message, gpointer user_data)
{
  WatchState *state = user_data;
  KvWatchEvent *event = KV_WATCH_EVENT (message);
  g_autoptr(GBytes) value = kv_watch_event_get_value (event);

  state->n_events++;
  printf ("  watch event: %s %s%s%.*s\n",
          kv_watch_event_get_event_type (event) == KV_EVENT_TYPE_PUT ? "PUT" : "DELETE",
          kv_watch_event_get_key (event),
          g_bytes_get_size (value) ? " = " : "",
          (int) g_bytes_get_size (value), (const char *) g_bytes_get_data (value, NULL));
  if (state->n_events == 3)
    g_main_loop_quit (state->loop);
}

static void
on_watch_closed (CpResponseStream *stream, GError *error, gpointer user_data)
{
  WatchState *state = user_data;
  if (error != NULL && state->n_events < 3)
    state->error = g_error_copy (error);
  g_main_loop_quit (state->loop);
}

static gboolean
put (CpChannel *channel, const char *key, const char *value, GError **error)
{
  g_autoptr(GBytes) bytes = g_bytes_new (value, strlen (value));
  g_autoptr(KvPutRequest) req = kv_put_request_new (key, bytes);
  g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, KV_PROCEDURE_PUT, CP_MESSAGE (req),
                                                    KV_TYPE_PUT_RESPONSE, NULL, NULL, error);
  if (resp == NULL)
    return FALSE;
  printf ("put %s = %s\n", key, value);
  return TRUE;
}

static gboolean
get (CpChannel *channel, const char *key, GError **error)
{
  g_autoptr(KvGetRequest) req = kv_get_request_new (key);
  g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, KV_PROCEDURE_GET, CP_MESSAGE (req),
                                                    KV_TYPE_GET_RESPONSE, NULL, NULL, error);
  if (resp == NULL)
    return FALSE;
  if (kv_get_response_get_found (KV_GET_RESPONSE (resp)))
    {
      g_autoptr(GBytes) value = kv_get_response_get_value (KV_GET_RESPONSE (resp));
      printf ("get %s → %.*s\n", key, (int) g_bytes_get_size (value),
              (const char *) g_bytes_get_data (value, NULL));
    }
  else
    printf ("get %s → (not found)\n", key);
  return TRUE;
}

static gboolean
delete (CpChannel *channel, const char *key, GError **error)
{
  g_autoptr(KvDeleteRequest) req = kv_delete_request_new (key);
  g_autoptr(CpMessage) resp = cp_channel_call_sync (channel, KV_PROCEDURE_DELETE, CP_MESSAGE (req),
                                                    KV_TYPE_DELETE_RESPONSE, NULL, NULL, error);
  if (resp == NULL)
    return FALSE;
  printf ("delete %s → %s\n", key,
          kv_delete_response_get_found (KV_DELETE_RESPONSE (resp)) ? "deleted" : "was not there");
  return TRUE;
}

typedef struct {
  CpChannel *channel;
  GMainLoop *loop;
  GError    *error;
} Writer;

static gboolean
write_during_watch (gpointer user_data)
{
  Writer *w = user_data;
  if (!put (w->channel, "fruit/apple", "red", &w->error) ||
      !put (w->channel, "veg/leek", "green", &w->error) ||
      !put (w->channel, "fruit/kiwi", "brown", &w->error) ||
      !delete (w->channel, "fruit/apple", &w->error))
    g_main_loop_quit (w->loop);
  return G_SOURCE_REMOVE;
}

static void
on_watch_headers (CpResponseStream *stream, SoupMessageHeaders *headers, gpointer user_data)
{
  /* The server has accepted the Watch: now make the changes it should see. */
  g_idle_add (write_during_watch, user_data);
}

static gboolean
run (const char *url, GError **error)
{
  g_autoptr(CpChannel) channel = cp_channel_new (url, error);
  if (channel == NULL)
    return FALSE;

  printf ("connected to %s\n", url);
  if (!put (channel, "greeting", "hello, connect", error) ||
      !get (channel, "greeting", error) ||
      !get (channel, "missing", error))
    return FALSE;

  /* A Put with an empty key is refused by the server with invalid_argument. */
  g_autoptr(GError) put_error = NULL;
  if (put (channel, "", "x", &put_error))
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INTERNAL, "an empty key was accepted");
      return FALSE;
    }
  printf ("put \"\" → error %s: %s\n",
          cp_error_code_to_string (cp_error_get_code (put_error)), put_error->message);

  printf ("watching fruit/ ...\n");
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  WatchState state = { .loop = loop };
  Writer writer = { .channel = channel, .loop = loop };
  g_autoptr(KvWatchRequest) watch_req = kv_watch_request_new ("fruit/");
  g_autoptr(CpResponseStream) stream =
    cp_channel_call_server_stream (channel, KV_PROCEDURE_WATCH, CP_MESSAGE (watch_req),
                                   KV_TYPE_WATCH_EVENT, NULL);
  g_signal_connect (stream, "headers", G_CALLBACK (on_watch_headers), &writer);
  g_signal_connect (stream, "message", G_CALLBACK (on_watch_message), &state);
  g_signal_connect (stream, "closed", G_CALLBACK (on_watch_closed), &state);
  cp_response_stream_start (stream);
  g_main_loop_run (loop);
  cp_response_stream_cancel (stream);

  if (writer.error)
    {
      g_propagate_error (error, writer.error);
      g_clear_error (&state.error);
      return FALSE;
    }
  if (state.error)
    {
      g_propagate_error (error, state.error);
      return FALSE;
    }
  if (state.n_events != 3)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INTERNAL, "expected 3 watch events, got %u", state.n_events);
      return FALSE;
    }
  if (!delete (channel, "greeting", error) || !get (channel, "greeting", error))
    return FALSE;

  printf ("done\n");
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;

  setvbuf (stdout, NULL, _IOLBF, 0);
  if (argc != 2)
    {
      g_printerr ("usage: kv-client URL\n");
      return 2;
    }
  if (!run (argv[1], &error))
    {
      g_printerr ("kv-client: %s\n", error->message);
      return 1;
    }
  return 0;
}
