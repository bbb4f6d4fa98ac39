/* fuzz-connect-request.c: arbitrary Connect requests into CpRpcServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Input layout:
 *   byte 0  bits 0-1: target (0 POST Get, 1 GET Get, 2 POST Watch,
 *           3 POST to an unknown path / DELETE Get when bit 2 is set)
 *   byte 1  content type (index into content_types)
 *   byte 2  header flags (see below)
 *   byte 3  max-receive-size: 0 = unlimited, else byte * 4
 *   rest    request body (POST) or query string (GET)
 * Each request runs through an in-process exchange
 * (cp_http_exchange_new_local + cp_http_server_dispatch_local); it must be
 * answered, without crash or hang.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"
#include "kv-test.h"

static const char *content_types[] = {
  "application/proto",
  "application/json",
  "application/connect+proto",
  "application/connect+json",
  "application/json; charset=utf-8",
  "image/jpeg",
  NULL,
  "application/connect+json; charset=latin1",
  /* gRPC and gRPC-Web on the same handlers (docs/engine.md, "Protocols"). */
  "application/grpc-web+proto",
  "application/grpc-web-text",
  "application/grpc",
  "application/grpc-web+json",
};

enum {
  FLAG_GZIP            = 1 << 0,
  FLAG_ACCEPT_GZIP     = 1 << 1,
  FLAG_VERSION         = 1 << 2,
  FLAG_VERSION_BAD     = 1 << 3,
  FLAG_TIMEOUT         = 1 << 4,
  FLAG_TIMEOUT_ZERO    = 1 << 5,
  FLAG_TIMEOUT_LONG    = 1 << 6,
  FLAG_SPLIT           = 1 << 7,
};

typedef struct {
  gboolean head;
  gboolean done;
  guint status;
} Result;

static void
get_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  const char *key = kv_get_request_get_key (KV_GET_REQUEST (request));
  g_autoptr(GBytes) value = g_bytes_new (key, strlen (key));
  g_autoptr(KvGetResponse) response = kv_test_get_response (value, TRUE);

  if (g_str_has_prefix (key, "e"))
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND, "no %s", key);
      return;
    }
  soup_message_headers_append (cp_invocation_get_response_trailers (invocation), "x-t", "1");
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static void
watch_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  const char *prefix = kv_watch_request_get_prefix (KV_WATCH_REQUEST (request));

  for (int i = 0; i < 2; i++)
    {
      g_autoptr(KvWatchEvent) event = kv_test_watch_event (KV_EVENT_TYPE_PUT, prefix, NULL);
      if (!cp_invocation_send_message (invocation, CP_MESSAGE (event), NULL))
        return;
    }
  if (g_str_has_prefix (prefix, "e"))
    cp_invocation_return_error (invocation, CP_ERROR_ABORTED, "%s", prefix);
  else
    cp_invocation_return_ok (invocation);
}

static CpRpcServer *
get_server (void)
{
  static CpRpcServer *server;

  if (server == NULL)
    {
      g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                        KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
      g_autoptr(CpMethodInfo) watch = cp_method_info_new (KV_PROCEDURE_WATCH, CP_METHOD_SERVER_STREAMING,
                                                          KV_TYPE_WATCH_REQUEST, KV_TYPE_WATCH_EVENT);

      /* Any warning or critical from the engine is a bug. */
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
      kv_test_ensure_types ();
      cp_method_info_set_idempotency (get, CP_IDEMPOTENCY_NO_SIDE_EFFECTS);
      server = cp_rpc_server_new ();
      cp_rpc_server_add_method (server, get, get_handler, NULL, NULL);
      cp_rpc_server_add_method (server, watch, watch_handler, NULL, NULL);
    }
  return server;
}

static void
on_head (CpHttpExchange *exchange, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  Result *result = user_data;

  g_assert (!result->head);
  result->head = TRUE;
  result->status = status;
}

static void
on_chunk (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data)
{
  Result *result = user_data;

  g_assert (result->head && !result->done);
}

static void
on_end (CpHttpExchange *exchange, gpointer user_data)
{
  Result *result = user_data;

  g_assert (result->head);
  result->done = TRUE;
}

static const CpHttpLocalCallbacks local_callbacks = {
  .response_head = on_head,
  .response_chunk = on_chunk,
  .response_end = on_end,
};

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  CpRpcServer *server = get_server ();
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(CpHttpExchange) exchange = NULL;
  g_autofree char *target = NULL;
  const char *method = "POST";
  const char *content_type;
  Result result = { 0 };
  guint8 selector, flags;
  gboolean stream;
  const uint8_t *body;
  size_t body_len;

  if (size < 4)
    return 0;

  selector = data[0];
  content_type = content_types[data[1] % G_N_ELEMENTS (content_types)];
  flags = data[2];
  g_object_set (server, "max-receive-size", (guint) data[3] * 4, NULL);
  body = data + 4;
  body_len = size - 4;

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  switch (selector & 3)
    {
    case 0:
      target = g_strdup (KV_PROCEDURE_GET);
      break;
    case 1:
      {
        /* The body becomes the query string (NUL bytes cut it short). */
        g_autofree char *query = g_strndup ((const char *) body, body_len);
        method = "GET";
        target = g_strdup_printf ("%s?%s", KV_PROCEDURE_GET, query);
        body_len = 0;
      }
      break;
    case 2:
      target = g_strdup (KV_PROCEDURE_WATCH);
      break;
    default:
      if (selector & 4)
        {
          method = "DELETE";
          target = g_strdup (KV_PROCEDURE_GET);
        }
      else
        target = g_strdup ("/kv.v1.KVService/Nope");
    }
  stream = (selector & 3) == 2;

  if (content_type != NULL && strcmp (method, "GET") != 0)
    soup_message_headers_replace (headers, "Content-Type", content_type);
  if (flags & FLAG_GZIP)
    soup_message_headers_replace (headers, stream ? "Connect-Content-Encoding" : "Content-Encoding",
                                  (selector & 8) ? "br" : "gzip");
  if (flags & FLAG_ACCEPT_GZIP)
    soup_message_headers_replace (headers, stream ? "Connect-Accept-Encoding" : "Accept-Encoding",
                                  "br, gzip");
  if (flags & FLAG_VERSION)
    soup_message_headers_replace (headers, "Connect-Protocol-Version",
                                  (flags & FLAG_VERSION_BAD) ? "2" : "1");
  if (flags & FLAG_TIMEOUT)
    soup_message_headers_replace (headers, "Connect-Timeout-Ms",
                                  (flags & FLAG_TIMEOUT_ZERO) ? "0" : "12a");
  else if (flags & FLAG_TIMEOUT_LONG)
    soup_message_headers_replace (headers, "Connect-Timeout-Ms", "100000");
  if (body_len > 0 || strcmp (method, "GET") == 0)
    soup_message_headers_set_content_length (headers, body_len);

  exchange = cp_http_exchange_new_local (method, target, headers, &local_callbacks, &result, NULL);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (server), exchange);

  if (body_len > 0)
    {
      if ((flags & FLAG_SPLIT) && body_len >= 3)
        {
          size_t third = body_len / 3;
          for (int i = 0; i < 3; i++)
            {
              size_t start = i * third;
              size_t end = i == 2 ? body_len : start + third;
              g_autoptr(GBytes) piece = g_bytes_new (body + start, end - start);
              cp_http_exchange_local_push_body (exchange, piece);
            }
        }
      else
        {
          g_autoptr(GBytes) all = g_bytes_new (body, body_len);
          cp_http_exchange_local_push_body (exchange, all);
        }
    }
  cp_http_exchange_local_end_body (exchange);

  while (!result.done && g_main_context_iteration (NULL, FALSE))
    ;
  if (!result.done)
    g_error ("request was not answered (hang)");
  g_assert (result.status >= 200 && result.status < 600);
  g_debug ("%s %s -> %u", method, target, result.status);
  /* What the engine finishes after the answer (at lower priorities) must run
   * now: left pending, it piled up to 2 GB over 1.6 million inputs. */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  return 0;
}
