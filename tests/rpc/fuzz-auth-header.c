/* fuzz-auth-header.c: arbitrary credential headers into a CpAuthInterceptor
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Input layout:
 *   byte 0  bit 0: send Authorization; bit 1: send X-API-Key; bit 2: call
 *           Put, a public procedure, instead of Get
 *   rest    the Authorization value, '\n', the X-API-Key value (CR, LF and
 *           NUL, which HTTP never delivers in a value, become spaces)
 * A CpRpcServer with a bearer provider (a token set and a verify function)
 * and an API key provider serves Get and Put through the in-process transport. Every
 * request must be answered 200 or 401 (`unauthenticated`), without crash or
 * hang, and an answer of 401 must not echo the credential.
 */
#include <connectplugin.h>
#include <stdint.h>
#include <string.h>

#include "cp-http-server-private.h"
#include "cp-rpc-server-private.h"
#include "kv-test.h"

typedef struct {
  gboolean head;
  gboolean done;
  guint status;
  GByteArray *body;
} Result;

static void
get_handler (CpInvocation *invocation, CpMessage *request, gpointer user_data)
{
  g_autoptr(KvGetResponse) response = kv_test_get_response (NULL, TRUE);

  /* Authenticated calls carry a principal, public ones none. */
  g_assert (cp_invocation_get_principal (invocation) != NULL ||
            cp_invocation_get_auth_scheme (invocation) == NULL);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

static gboolean
verify (const char *credential, char **principal, gpointer user_data)
{
  if (!g_str_has_prefix (credential, "user:"))
    return FALSE;
  *principal = g_strdup (credential + 5);
  return TRUE;
}

static CpRpcServer *
get_server (void)
{
  static CpRpcServer *server;

  if (server == NULL)
    {
      g_autoptr(CpMethodInfo) get = cp_method_info_new (KV_PROCEDURE_GET, CP_METHOD_UNARY,
                                                        KV_TYPE_GET_REQUEST, KV_TYPE_GET_RESPONSE);
      g_autoptr(CpAuthProvider) bearer = cp_token_auth_provider_new_bearer ();
      g_autoptr(CpAuthProvider) api_key = cp_token_auth_provider_new_api_key (NULL);
      g_autoptr(CpMethodInfo) put = cp_method_info_new (KV_PROCEDURE_PUT, CP_METHOD_UNARY,
                                                        KV_TYPE_PUT_REQUEST, KV_TYPE_GET_RESPONSE);
      g_autoptr(CpAuthInterceptor) auth = cp_auth_interceptor_new ();

      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
      kv_test_ensure_types ();
      server = cp_rpc_server_new ();
      cp_rpc_server_add_method (server, get, get_handler, NULL, NULL);
      cp_rpc_server_add_method (server, put, get_handler, NULL, NULL);
      cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (bearer), "tok", "alice");
      cp_token_auth_provider_set_verify_func (CP_TOKEN_AUTH_PROVIDER (bearer), verify, NULL, NULL);
      cp_token_auth_provider_add_token (CP_TOKEN_AUTH_PROVIDER (api_key), "key", "svc");
      cp_auth_interceptor_add_public_procedure (auth, KV_PROCEDURE_PUT);
      cp_auth_interceptor_add_provider (auth, api_key);
      cp_auth_interceptor_add_provider (auth, bearer);
      cp_rpc_server_add_interceptor (server, CP_SERVER_INTERCEPTOR (auth));
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
  gsize len;
  const guint8 *data = g_bytes_get_data (chunk, &len);

  g_assert (result->head && !result->done);
  g_byte_array_append (result->body, data, len);
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

/* A header value as HTTP could deliver it. */
static char *
header_value (const uint8_t *data, size_t len)
{
  char *value = g_malloc (len + 1);

  for (size_t i = 0; i < len; i++)
    value[i] = (data[i] == '\0' || data[i] == '\r' || data[i] == '\n') ? ' ' : (char) data[i];
  value[len] = '\0';
  return value;
}

/* The credential (after its scheme word) is not in the error body, when it
 * is long enough to be told apart from the fixed words of the messages. */
static void
assert_not_echoed (const GByteArray *body, const char *credential)
{
  g_autofree char *text = g_strndup ((const char *) body->data, body->len);
  g_autofree char *stripped = g_strstrip (g_strdup (credential));
  const char *space = strrchr (stripped, ' ');
  const char *secret = space != NULL ? space + 1 : stripped;

  /* Short ones may be part of "invalid bearer credentials". */
  if (strlen (secret) >= 12 && strchr (secret, '"') == NULL && strchr (secret, '\\') == NULL)
    g_assert (strstr (text, secret) == NULL);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  CpRpcServer *server = get_server ();
  g_autoptr(SoupMessageHeaders) headers = NULL;
  g_autoptr(CpHttpExchange) exchange = NULL;
  g_autoptr(KvGetRequest) request = kv_test_get_request ("k");
  g_autoptr(GBytes) body = NULL;
  g_autofree char *authorization = NULL;
  g_autofree char *api_key = NULL;
  Result result = { 0 };
  const uint8_t *rest, *split;
  size_t rest_len;

  if (size < 1)
    return 0;

  rest = data + 1;
  rest_len = size - 1;
  split = memchr (rest, '\n', rest_len);
  authorization = header_value (rest, split ? (size_t) (split - rest) : rest_len);
  api_key = split ? header_value (split + 1, rest_len - (size_t) (split + 1 - rest)) : g_strdup ("");

  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  soup_message_headers_replace (headers, "Content-Type", "application/proto");
  if (data[0] & 1)
    soup_message_headers_replace (headers, "Authorization", authorization);
  if (data[0] & 2)
    soup_message_headers_replace (headers, "X-API-Key", api_key);
  body = cp_message_serialize (CP_MESSAGE (request), CP_CODEC_PROTO, NULL);
  g_assert (body != NULL);
  soup_message_headers_set_content_length (headers, g_bytes_get_size (body));

  result.body = g_byte_array_new ();
  exchange = cp_http_exchange_new_local ("POST", (data[0] & 4) ? KV_PROCEDURE_PUT : KV_PROCEDURE_GET, headers, &local_callbacks,
                                         &result, NULL);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (server), exchange);
  cp_http_exchange_local_push_body (exchange, body);
  cp_http_exchange_local_end_body (exchange);

  while (!result.done && g_main_context_iteration (NULL, FALSE))
    ;
  if (!result.done)
    g_error ("request was not answered (hang)");
  g_assert (result.status == 200 || result.status == 401);
  g_assert (result.status == 200 || (data[0] & 4) == 0);
  if (result.status != 200)
    {
      if (data[0] & 1)
        assert_not_echoed (result.body, authorization);
      if (data[0] & 2)
        assert_not_echoed (result.body, api_key);
    }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_byte_array_unref (result.body);

  return 0;
}
