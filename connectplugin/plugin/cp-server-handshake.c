/* cp-server-handshake.c: a CpServer's HandshakeService
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connectplugin.v1.HandshakeService/Handshake (docs/wire-contract.md): the
 * magic cookie and protocol versions, the requested plugins, the server
 * metadata and, when the client names itself, a fresh runtime identity
 * (id and token, 24 h TTL, at most MAX_ISSUED_IDENTITIES remembered) that
 * cp_server_check_runtime_token() checks later.
 */
#include "cp-server-state-private.h"

#include <string.h>

#include "cp-error.h"
#include "cp-runtime-identity-private.h"

#define RUNTIME_TOKEN_TTL_US (24 * G_TIME_SPAN_HOUR)
/* Handshakes are unauthenticated: bound what they can make us remember. */
#define MAX_ISSUED_IDENTITIES 4096

static CpPlugin *
find_plugin (CpServer   *self,
             const char *name)
{
  for (guint i = 0; i < self->plugins->len; i++)
    if (g_strcmp0 (cp_plugin_get_name (self->plugins->pdata[i]), name) == 0)
      return self->plugins->pdata[i];
  return NULL;
}

/* ------------------------------------------------------------------ */
/* HandshakeService                                                     */

static void
expire_identities (CpServer *self)
{
  GHashTableIter iter;
  gpointer value;
  gint64 now = g_get_monotonic_time ();

  g_hash_table_iter_init (&iter, self->issued);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((RuntimeIdentity *) value)->expires <= now)
      g_hash_table_iter_remove (&iter);

  /* Still full: forget the oldest identity (it fails later checks). */
  while (g_hash_table_size (self->issued) >= MAX_ISSUED_IDENTITIES)
    {
      gpointer key, oldest_key = NULL;
      gint64 oldest = G_MAXINT64;

      g_hash_table_iter_init (&iter, self->issued);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (((RuntimeIdentity *) value)->expires < oldest)
          {
            oldest = ((RuntimeIdentity *) value)->expires;
            oldest_key = key;
          }
      g_hash_table_remove (self->issued, oldest_key);
    }
}

static void
handle_handshake (CpInvocation *invocation,
                  CpMessage    *message,
                  gpointer      user_data)
{
  CpServer *self = user_data;
  CpHandshakeRequest *request = CP_HANDSHAKE_REQUEST (message);
  g_autoptr(CpHandshakeResponse) response = NULL;
  g_autoptr(GPtrArray) infos = NULL;
  g_autoptr(GHashTable) metadata = NULL;
  g_auto(GStrv) requested = NULL;
  g_autofree char *plugin_names = NULL;
  const char *self_id;
  GHashTableIter iter;
  gpointer key, value;

  /* The order of the checks is part of the contract: the first failure
   * answers. */
  if (g_strcmp0 (cp_handshake_request_get_magic_cookie_key (request), effective_cookie_key (self)) != 0 ||
      !cp_token_equal (cp_handshake_request_get_magic_cookie_value (request), effective_cookie_value (self)))
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_INVALID_ARGUMENT,
                                          "invalid magic cookie - this may not be a connect-plugin server");
      return;
    }
  if (cp_handshake_request_get_core_protocol_version (request) != self->core_protocol_version)
    {
      cp_invocation_return_error (invocation, CP_ERROR_INVALID_ARGUMENT,
                                  "unsupported core protocol version: %d (server supports: %d)",
                                  cp_handshake_request_get_core_protocol_version (request),
                                  self->core_protocol_version);
      return;
    }
  if (cp_handshake_request_get_app_protocol_version (request) != self->app_protocol_version)
    {
      cp_invocation_return_error (invocation, CP_ERROR_FAILED_PRECONDITION,
                                  "version mismatch: client=%d, server=%d",
                                  cp_handshake_request_get_app_protocol_version (request),
                                  self->app_protocol_version);
      return;
    }
  self_id = cp_handshake_request_get_self_id (request);
  if (self_id[0] != '\0' && !cp_self_id_is_valid (self_id))
    {
      cp_invocation_return_error_literal (invocation, CP_ERROR_INVALID_ARGUMENT,
                                          "invalid self_id: must be 1-128 characters matching "
                                          "^[a-zA-Z][a-zA-Z0-9_.-]*$");
      return;
    }

  response = cp_handshake_response_new ();
  cp_handshake_response_set_core_protocol_version (response, self->core_protocol_version);
  cp_handshake_response_set_app_protocol_version (response, self->app_protocol_version);

  /* Requested plugins we do not serve are left out: the client names them. */
  infos = g_ptr_array_new_with_free_func (g_object_unref);
  requested = cp_handshake_request_get_requested_plugins (request);
  for (guint i = 0; requested != NULL && requested[i] != NULL; i++)
    {
      CpPlugin *plugin = find_plugin (self, requested[i]);

      if (plugin != NULL)
        g_ptr_array_add (infos, cp_plugin_to_info (plugin));
    }
  cp_handshake_response_set_plugins (response, infos);

  /* As connect-plugin-go: server_version, which configured metadata may
   * override. */
  metadata = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_replace (metadata, (gpointer) "server_version", (gpointer) CP_SERVER_VERSION);
  /* Ours alone (connect-plugin-go's hosts ignore it): the names of the
   * plugins served, comma-separated, for tools such as cpctl that do not
   * know them beforehand. */
  if (self->plugins->len > 0)
    {
      GString *names = g_string_new (NULL);

      for (guint i = 0; i < self->plugins->len; i++)
        g_string_append_printf (names, "%s%s", i > 0 ? "," : "",
                                cp_plugin_get_name (self->plugins->pdata[i]));
      plugin_names = g_string_free (names, FALSE);
      g_hash_table_replace (metadata, (gpointer) "plugins", plugin_names);
    }
  g_hash_table_iter_init (&iter, self->metadata);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_replace (metadata, key, value);
  cp_handshake_response_set_server_metadata (response, metadata);

  if (self_id[0] != '\0')
    {
      g_autofree char *runtime_id = NULL;
      g_autofree char *token = NULL;

      cp_server_issue_runtime_identity (self, self_id, &runtime_id, &token);
      cp_handshake_response_set_runtime_id (response, runtime_id);
      cp_handshake_response_set_runtime_token (response, token);
    }

  if (self->handshake_hook != NULL)
    self->handshake_hook (self, request, response, self->handshake_hook_data);

  cp_invocation_return_message (invocation, CP_MESSAGE (response));
}

/* ------------------------------------------------------------------ */
/* Registration, and the identities for the rest of the library         */

void
cp_server_register_handshake (CpServer *server)
{
  cp_server_add_builtin (server, CP_PROCEDURE_HANDSHAKE, CP_METHOD_UNARY,
                         CP_TYPE_HANDSHAKE_REQUEST, CP_TYPE_HANDSHAKE_RESPONSE, handle_handshake);
}

void
cp_server_issue_runtime_identity (CpServer    *server,
                                  const char  *self_id,
                                  char       **runtime_id_out,
                                  char       **token_out)
{
  RuntimeIdentity *identity;
  g_autofree char *runtime_id = NULL;

  g_return_if_fail (CP_IS_SERVER (server));
  g_return_if_fail (cp_self_id_is_valid (self_id));

  /* A fresh identity every time (ids collide with p = 2^-16: draw again). */
  expire_identities (server);
  do
    {
      g_free (runtime_id);
      runtime_id = cp_generate_runtime_id (self_id);
    }
  while (g_hash_table_contains (server->issued, runtime_id));

  identity = g_new0 (RuntimeIdentity, 1);
  identity->self_id = g_strdup (self_id);
  identity->token = cp_generate_token (32);
  identity->expires = g_get_monotonic_time () + RUNTIME_TOKEN_TTL_US;
  if (token_out != NULL)
    *token_out = g_strdup (identity->token);
  if (runtime_id_out != NULL)
    *runtime_id_out = g_strdup (runtime_id);
  g_hash_table_replace (server->issued, g_steal_pointer (&runtime_id), identity);
}

void
cp_server_revoke_runtime_identity (CpServer   *server,
                                   const char *runtime_id)
{
  g_return_if_fail (CP_IS_SERVER (server));

  if (runtime_id != NULL)
    g_hash_table_remove (server->issued, runtime_id);
}

void
cp_server_set_handshake_hook (CpServer             *server,
                              CpServerHandshakeHook hook,
                              gpointer              user_data)
{
  g_return_if_fail (CP_IS_SERVER (server));

  server->handshake_hook = hook;
  server->handshake_hook_data = user_data;
}

gboolean
cp_server_check_runtime_token (CpServer   *server,
                               const char *runtime_id,
                               const char *token)
{
  RuntimeIdentity *identity;

  g_return_val_if_fail (CP_IS_SERVER (server), FALSE);

  if (runtime_id == NULL || token == NULL)
    return FALSE;
  identity = g_hash_table_lookup (server->issued, runtime_id);
  if (identity == NULL || identity->expires <= g_get_monotonic_time ())
    return FALSE;
  return cp_token_equal (token, identity->token);
}

const char *
cp_server_lookup_runtime_self_id (CpServer   *server,
                                  const char *runtime_id)
{
  RuntimeIdentity *identity;

  g_return_val_if_fail (CP_IS_SERVER (server), NULL);

  identity = runtime_id != NULL ? g_hash_table_lookup (server->issued, runtime_id) : NULL;
  return identity != NULL ? identity->self_id : NULL;
}
