/* cpctl-test-server.c: one method of each kind, on google.protobuf.Struct,
 * for test-cpctl.py
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   /cpctl.test.v1.Test/Echo    unary: {"echo": REQUEST, "header": X-Echo}
 *   /cpctl.test.v1.Test/Slow    unary: answers after 5 s
 *   /cpctl.test.v1.Test/Count   server stream: {"i": 1} … {"i": 3}
 *   /cpctl.test.v1.Test/Sum     client stream: {"count": messages received}
 *   /cpctl.test.v1.Test/Chat    bidi: each message back, in order
 *
 * Prints its URL on the first line of standard output; runs until killed.
 */
#include <stdio.h>
#include <connectplugin.h>

static CpMessage *
struct_from_json (const char *json)
{
  g_autoptr(CpMessage) message = CP_MESSAGE (cp_struct_new ());
  g_autoptr(GBytes) bytes = g_bytes_new (json, strlen (json));
  g_autoptr(GError) error = NULL;

  if (!cp_message_parse (message, CP_CODEC_JSON, bytes, &error))
    g_error ("%s: %s", json, error->message);
  return g_steal_pointer (&message);
}

static void
handle_echo (CpInvocation *invocation,
             CpMessage    *request,
             gpointer      user_data)
{
  const char *header = soup_message_headers_get_one (cp_invocation_get_request_headers (invocation),
                                                     "X-Echo");
  g_autofree char *request_json = cp_message_to_json (request);
  g_autofree char *json = g_strdup_printf ("{\"echo\": %s, \"header\": \"%s\"}", request_json,
                                           header != NULL ? header : "");
  g_autoptr(CpMessage) response = struct_from_json (json);

  cp_invocation_return_message (invocation, response);
}

static gboolean
answer_late (gpointer user_data)
{
  g_autoptr(CpMessage) response = struct_from_json ("{}");

  cp_invocation_return_message (user_data, response);
  return G_SOURCE_REMOVE;
}

static void
handle_slow (CpInvocation *invocation,
             CpMessage    *request,
             gpointer      user_data)
{
  g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, 5, answer_late,
                              g_object_ref (invocation), g_object_unref);
}

static void
handle_count (CpInvocation *invocation,
              CpMessage    *request,
              gpointer      user_data)
{
  for (int i = 1; i <= 3; i++)
    {
      g_autofree char *json = g_strdup_printf ("{\"i\": %d}", i);
      g_autoptr(CpMessage) message = struct_from_json (json);

      if (!cp_invocation_send_message (invocation, message, NULL))
        return;
    }
  cp_invocation_return_ok (invocation);
}

typedef struct {
  CpInvocation *invocation;
  guint count;
  gboolean echo;
} Receiving;

static void
received (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Receiving *r = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) message = cp_invocation_receive_finish (r->invocation, result, &error);

  if (message != NULL)
    {
      r->count++;
      if (r->echo)
        cp_invocation_send_message (r->invocation, message, NULL);
      cp_invocation_receive_async (r->invocation, NULL, received, r);
      return;
    }
  if (error == NULL)
    {
      if (r->echo)
        cp_invocation_return_ok (r->invocation);
      else
        {
          g_autofree char *json = g_strdup_printf ("{\"count\": %u}", r->count);
          g_autoptr(CpMessage) response = struct_from_json (json);

          cp_invocation_return_message (r->invocation, response);
        }
    }
  g_object_unref (r->invocation);
  g_free (r);
}

static void
handle_receiving (CpInvocation *invocation,
                  CpMessage    *request,
                  gpointer      user_data)
{
  Receiving *r = g_new0 (Receiving, 1);

  r->invocation = g_object_ref (invocation);
  r->echo = GPOINTER_TO_INT (user_data);
  cp_invocation_receive_async (invocation, NULL, received, r);
}

static void
add (CpRpcServer     *server,
     const char      *name,
     CpMethodKind     kind,
     CpMethodHandler  handler,
     gpointer         data)
{
  g_autofree char *procedure = g_strconcat ("/cpctl.test.v1.Test/", name, NULL);
  g_autoptr(CpMethodInfo) info = cp_method_info_new (procedure, kind, CP_TYPE_STRUCT, CP_TYPE_STRUCT);

  cp_rpc_server_add_method (server, info, handler, data, NULL);
}

int
main (void)
{
  g_autoptr(CpRpcServer) server = cp_rpc_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  add (server, "Echo", CP_METHOD_UNARY, handle_echo, NULL);
  add (server, "Slow", CP_METHOD_UNARY, handle_slow, NULL);
  add (server, "Count", CP_METHOD_SERVER_STREAMING, handle_count, NULL);
  add (server, "Sum", CP_METHOD_CLIENT_STREAMING, handle_receiving, GINT_TO_POINTER (FALSE));
  add (server, "Chat", CP_METHOD_BIDI_STREAMING, handle_receiving, GINT_TO_POINTER (TRUE));
  url = cp_rpc_server_listen (server, "127.0.0.1:0", &error);
  if (url == NULL)
    g_error ("%s", error->message);
  printf ("%s\n", url);
  fflush (stdout);
  for (;;)
    g_main_context_iteration (NULL, TRUE);
}
