/* fuzz-broker-capabilities.c: arbitrary requests to the capability
 * broker's paths (/capabilities/…, /broker/…, RequestCapability)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Input: "METHOD PATH\nAUTHORIZATION\nBODY" (missing parts are empty). In
 * PATH and AUTHORIZATION, "@GRANT@" and "@TOKEN@" become the id and token
 * of a real grant and "@RTOKEN@" the runtime token of its plugin, so that
 * seeds reach the dispatch to the capability. Through the in-process
 * transport into a host CpServer + CpBroker offering the secrets
 * capability: every request must be answered with 200 or 4xx/5xx.
 */
#include <connectplugin.h>
#include <json-glib/json-glib.h>
#include <stdint.h>
#include <string.h>

#include "cp-broker-private.h"
#include "cp-http-exchange-private.h"
#include "cp-http-local-private.h"
#include "secrets.cp.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gboolean done;
static GString *answer;

static void
on_head (CpHttpExchange *exchange, guint status, SoupMessageHeaders *headers, gpointer user_data)
{
  g_assert (status == 200 || (status >= 400 && status < 600));
  if (g_getenv ("FUZZ_VERBOSE"))
    g_printerr ("%s %u\n", cp_http_exchange_get_path (exchange), status);
}

static void
on_chunk (CpHttpExchange *exchange, GBytes *chunk, gpointer user_data)
{
  g_string_append_len (answer, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
}

static void
on_end (CpHttpExchange *exchange, gpointer user_data)
{
  done = TRUE;
}

static gboolean
on_get_secret (SecretsSecrets          *skeleton,
               CpInvocation            *invocation,
               SecretsGetSecretRequest *request,
               gpointer                 user_data)
{
  g_autoptr(SecretsGetSecretResponse) response = secrets_get_secret_response_new ();

  secrets_get_secret_response_set_value (response, secrets_get_secret_request_get_name (request));
  secrets_secrets_complete_get_secret (skeleton, invocation, response);
  return TRUE;
}

static CpServer *server;
static char *runtime_id, *runtime_token, *grant_id, *grant_token;

/* Sends one request in-process and runs the context until it is answered. */
static void
send_local (const char *method,
            const char *path,
            const char *authorization,
            GBytes     *body)
{
  static const CpHttpLocalCallbacks callbacks = { on_head, on_chunk, on_end };
  g_autoptr(SoupMessageHeaders) headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  CpHttpExchange *exchange;

  soup_message_headers_replace (headers, "Content-Type", "application/json");
  soup_message_headers_replace (headers, "X-Plugin-Runtime-ID", runtime_id);
  if (authorization != NULL)
    soup_message_headers_replace (headers, "Authorization", authorization);
  done = FALSE;
  g_string_truncate (answer, 0);
  exchange = cp_http_exchange_new_local (method, path, headers, &callbacks, NULL, NULL);
  cp_http_exchange_local_push_body (exchange, body);
  cp_http_exchange_local_end_body (exchange);
  cp_http_server_dispatch_local (cp_rpc_server_get_http_server (cp_server_get_rpc_server (server)),
                                 exchange);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  cp_http_exchange_unref (exchange);
}

static void
setup (void)
{
  static CpBroker *broker;
  static SecretsSecrets *secrets;
  static const char request[] = "{\"capabilityType\":\"secrets\"}";
  g_autoptr(GBytes) body = g_bytes_new_static (request, sizeof request - 1);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *bearer = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *grant;

  answer = g_string_new (NULL);
  server = cp_server_new ();
  broker = cp_broker_new (server);
  secrets = secrets_secrets_skeleton_new ();
  g_signal_connect (secrets, "handle-get-secret", G_CALLBACK (on_get_secret), NULL);
  cp_broker_add_capability (broker, "secrets", "1.0.0", CP_SKELETON (secrets));
  g_object_set (broker, "base-url", "http://fuzz.invalid", NULL);
  if (!cp_server_start (server, &error))
    g_error ("%s", error->message);
  cp_server_issue_runtime_identity (server, "fuzz-plugin", &runtime_id, &runtime_token);
  bearer = g_strconcat ("Bearer ", runtime_token, NULL);
  send_local ("POST", "/connectplugin.v1.CapabilityBroker/RequestCapability", bearer, body);
  if (!json_parser_load_from_data (parser, answer->str, answer->len, &error))
    g_error ("RequestCapability: %s", answer->str);
  grant = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "grant");
  if (grant == NULL)
    g_error ("RequestCapability: %s", answer->str);
  grant_id = g_strdup (json_object_get_string_member (grant, "grantId"));
  grant_token = g_strdup (json_object_get_string_member (grant, "bearerToken"));
}

static char *
substitute (const char *text)
{
  g_autoptr(GString) s = g_string_new (text);

  g_string_replace (s, "@GRANT@", grant_id, 0);
  g_string_replace (s, "@RTOKEN@", runtime_token, 0);
  g_string_replace (s, "@TOKEN@", grant_token, 0);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *text = size > 0 ? g_strndup ((const char *) data, size) : NULL;  /* stops at a NUL */
  g_auto(GStrv) lines = text != NULL ? g_strsplit (text, "\n", 3) : NULL;
  g_autofree char *path = NULL;
  g_autofree char *authorization = NULL;
  g_autoptr(GBytes) body = NULL;
  const char *method = "POST";
  char *space;

  if (server == NULL)
    setup ();
  if (lines == NULL || lines[0] == NULL)
    return 0;
  space = strchr (lines[0], ' ');
  if (space != NULL)
    {
      *space = '\0';
      method = lines[0][0] != '\0' ? lines[0] : "POST";
      path = substitute (space + 1);
    }
  else
    path = substitute (lines[0]);
  /* The transport hands on only paths that parse as a request target. */
  if (path[0] != '/' || strpbrk (path, " \r\t") != NULL || strlen (path) > 8192 ||
      strpbrk (method, " \r\t") != NULL)
    return 0;
  if (lines[1] != NULL)
    authorization = substitute (lines[1]);
  if (authorization != NULL && (strpbrk (authorization, "\r") != NULL ||
                                !g_utf8_validate (authorization, -1, NULL)))
    g_clear_pointer (&authorization, g_free);
  body = g_bytes_new (lines[1] != NULL && lines[2] != NULL ? lines[2] : "",
                      lines[1] != NULL && lines[2] != NULL ? strlen (lines[2]) : 0);
  send_local (method, path, authorization, body);
  return 0;
}
