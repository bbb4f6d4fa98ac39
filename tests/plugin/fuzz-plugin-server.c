/* fuzz-plugin-server.c: arbitrary request bodies to CpServer's unary built-ins
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The first byte picks the procedure and the codec; the rest is the request
 * body, sent through the in-process transport (no socket). Every input must
 * be answered (a response or a Connect error), never crash or hang.
 */
#include <connectplugin.h>
#include <stdint.h>

#include "cp-plugin-constants.h"
#include "cp-server.h"
#include "cp-http-exchange-private.h"
#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"
#include "plugintest.cp.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char * const procedures[] = {
  CP_PROCEDURE_HANDSHAKE,
  CP_PROCEDURE_HEALTH_CHECK,
  CP_PROCEDURE_CONTROL_GET_HEALTH,
  CP_PROCEDURE_IDENTITY_GET_PLUGIN_INFO,
  CP_PROCEDURE_IDENTITY_SET_RUNTIME_IDENTITY,
  "/plugintest.v1.SlowService/Slow",
};

static gboolean done;

static void
on_head (CpHttpExchange *exchange, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  g_assert (status == 200 || (status >= 400 && status < 600));
}

static void
on_chunk (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data)
{
}

static void
on_end (CpHttpExchange *exchange, gpointer user_data)
{
  done = TRUE;
}

static gboolean
on_handle_slow (PlugintestSlowService *object,
                CpInvocation          *invocation,
                PlugintestSlowRequest *request,
                gpointer               user_data)
{
  g_autoptr(PlugintestSlowResponse) response = plugintest_slow_response_new ();

  plugintest_slow_response_set_text (response, plugintest_slow_request_get_text (request));
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

#define FUZZ_SECRET "fuzz-control-secret"

static CpServer *
get_server (void)
{
  static CpServer *server;

  if (server == NULL)
    {
      g_autoptr(CpPlugin) plugin = cp_plugin_new ("fuzz", "1.0.0");
      g_autoptr(PlugintestSlowService) skeleton = plugintest_slow_service_skeleton_new ();
      g_autoptr(GError) error = NULL;

      g_signal_connect (skeleton, "handle-slow", G_CALLBACK (on_handle_slow), NULL);
      cp_plugin_add_service (plugin, CP_SKELETON (skeleton));
      server = g_object_new (CP_TYPE_SERVER,
                             "plugin-control-enabled", TRUE,
                             "identity-enabled", TRUE,
                             "control-secret", FUZZ_SECRET,
                             NULL);
      cp_server_add_plugin (server, plugin);
      if (!cp_server_start (server, &error))
        g_error ("%s", error->message);
    }
  return server;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static const CpHttpLocalCallbacks callbacks = { on_head, on_chunk, on_end };
  CpServer *server = get_server ();
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  g_autoptr(GBytes) body = NULL;
  CpHttpExchange *exchange;
  guint8 selector;

  if (size == 0)
    return 0;
  selector = data[0];
  soup_message_headers_replace (headers, "Content-Type",
                                (selector & 0x80) ? "application/json" : "application/proto");
  if (selector & 0x40)
    soup_message_headers_replace (headers, "Content-Encoding", "gzip");
  /* Past the control secret, so that the handlers see the bodies. */
  soup_message_headers_replace (headers, "Authorization", "Bearer " FUZZ_SECRET);

  done = FALSE;
  exchange = cp_http_exchange_new_local ("POST", procedures[(selector & 0x3f) % G_N_ELEMENTS (procedures)],
                                         headers, &callbacks, NULL, NULL);
  body = g_bytes_new (data + 1, size - 1);
  cp_http_exchange_local_push_body (exchange, body);
  cp_http_exchange_local_end_body (exchange);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (cp_server_get_rpc_server (server)),
                                 exchange);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  /* What the engine finishes after the answer (at lower priorities) must run
   * now: left pending, it piles up over millions of inputs. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  cp_http_exchange_unref (exchange);
  return 0;
}
