/* cp-broker-capabilities.c: the capability broker of a CpBroker
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The host application offers capabilities (any generated skeleton) with
 * cp_broker_add_capability(); each is exported on a CpRpcServer of its own
 * that never listens. A plugin asks CapabilityBroker.RequestCapability
 * (at /connectplugin.v1.CapabilityBroker/… and at the advertised
 * /broker/connectplugin.v1.CapabilityBroker/…) for a grant, then calls
 * /capabilities/{type}/{grant_id}/{Service}/{Method} with the grant's
 * bearer token; the call is dispatched in-process to the capability's
 * server (cp_rpc_server_dispatch()), no socket hop. As connect-plugin-go's
 * broker.go, with the checks it lacks (caller identity, allow-list,
 * min_version, the path's type, revocation when the plugin goes).
 */

#include "cp-broker-capabilities-private.h"

#include <string.h>

#include "cp-error.h"
#include "cp-runtime-identity-private.h"
#include "cp-semver-private.h"
#include "connectplugin/protocol/broker.cp.h"
#include "connectplugin/protocol/handshake.cp.h"

#define CAPABILITIES_PREFIX "/capabilities/"
#define BROKER_PREFIX "/broker/"
#define BROKER_SERVICE "/connectplugin.v1.CapabilityBroker/"
#define GRANT_ID_BYTES 16
#define GRANT_TOKEN_BYTES 32
#define MAX_SEGMENT 256

typedef struct {
  char *type;
  char *version;
  CpSkeleton *skeleton;
  CpRpcServer *server;               /* never listens */
} Capability;

typedef struct {
  char *id;
  char *token;
  char *type;
  gint64 issued_at;                  /* grant clock, µs */
  gint64 expires_at;
  CpPluginInstance *instance;        /* the plugin it was granted to (ref) */
} Grant;

struct _CpBrokerCapabilities
{
  CpBroker *broker;
  CpCapabilityBroker *service;       /* RequestCapability */
  GHashTable *capabilities;          /* type → Capability* */
  GHashTable *grants;                /* grant id → Grant* */
  GHashTable *allow;                 /* self id → set of types */
  gint64 clock_offset;               /* µs, tests */
};

static void
capability_free (gpointer data)
{
  Capability *cap = data;

  cp_skeleton_unexport (cap->skeleton);
  g_object_unref (cap->skeleton);
  g_object_unref (cap->server);
  g_free (cap->type);
  g_free (cap->version);
  g_free (cap);
}

static void
grant_free (gpointer data)
{
  Grant *grant = data;

  g_free (grant->id);
  /* The token is a secret: do not leave it in freed memory. */
  memset (grant->token, 0, strlen (grant->token));
  g_free (grant->token);
  g_free (grant->type);
  g_object_unref (grant->instance);
  g_free (grant);
}

static gint64
grant_clock (CpBrokerCapabilities *caps)
{
  return g_get_monotonic_time () + caps->clock_offset;
}

/* Drops the grants that expired. */
static void
sweep_grants (CpBrokerCapabilities *caps,
              gint64                now)
{
  GHashTableIter iter;
  Grant *grant;

  g_hash_table_iter_init (&iter, caps->grants);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &grant))
    if (now >= grant->expires_at)
      g_hash_table_iter_remove (&iter);
}

/* Keeps @instance below the per-plugin cap by dropping its oldest grant:
 * renewals make a new grant each time, so a plugin holds a few, and a
 * flood of requests cannot grow the table without bound. */
static void
cap_plugin_grants (CpBrokerCapabilities *caps,
                   CpPluginInstance     *instance)
{
  GHashTableIter iter;
  Grant *grant, *oldest = NULL;
  guint n = 0;

  g_hash_table_iter_init (&iter, caps->grants);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &grant))
    if (grant->instance == instance)
      {
        n++;
        if (oldest == NULL || grant->issued_at < oldest->issued_at)
          oldest = grant;
      }
  if (n >= CP_BROKER_MAX_GRANTS_PER_PLUGIN && oldest != NULL)
    g_hash_table_remove (caps->grants, oldest->id);
}

/* ------------------------------------------------------------------ */
/* RequestCapability                                                    */

/* TRUE when @instance may use @type (no allow-list for its self id, or
 * one naming @type). */
static gboolean
is_allowed (CpBrokerCapabilities *caps,
            CpPluginInstance     *instance,
            const char           *type)
{
  const char *self_id = cp_plugin_instance_get_self_id (instance);
  GHashTable *types = self_id != NULL ? g_hash_table_lookup (caps->allow, self_id) : NULL;

  return types == NULL || g_hash_table_contains (types, type);
}

/* The capability @request asks for, checked; NULL with @error. */
static Capability *
check_request (CpBrokerCapabilities       *caps,
               CpPluginInstance           *instance,
               CpRequestCapabilityRequest *request,
               GError                    **error)
{
  const char *type = cp_request_capability_request_get_capability_type (request);
  const char *min_version = cp_request_capability_request_get_min_version (request);
  Capability *cap;

  if (type[0] == '\0')
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "capability_type required");
      return NULL;
    }
  if (min_version[0] != '\0' && !cp_semver_is_valid (min_version))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                   "min_version \"%s\" is not a semantic version", min_version);
      return NULL;
    }
  if (!is_allowed (caps, instance, type))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_PERMISSION_DENIED,
                   "plugin \"%s\" may not use capability \"%s\"",
                   cp_plugin_instance_get_self_id (instance), type);
      return NULL;
    }
  cap = g_hash_table_lookup (caps->capabilities, type);
  if (cap == NULL)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND, "capability \"%s\" not available", type);
      return NULL;
    }
  /* Too old is "not available" too: no capability satisfying the request
   * exists here, as a discovery with min_version finds no provider. */
  if (!cp_semver_at_least (cap->version, min_version))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND,
                   "capability \"%s\" version %s is older than %s", type, cap->version, min_version);
      return NULL;
    }
  return cap;
}

static CpCapabilityGrant *
issue_grant (CpBrokerCapabilities *caps,
             CpPluginInstance     *instance,
             Capability           *cap)
{
  CpCapabilityGrant *message = cp_capability_grant_new ();
  const char *base_url = cp_broker_get_base_url (caps->broker);
  gint64 now = grant_clock (caps);
  g_autofree char *url = NULL;
  Grant *grant;

  sweep_grants (caps, now);
  cap_plugin_grants (caps, instance);
  grant = g_new0 (Grant, 1);
  do
    {
      g_free (grant->id);
      grant->id = cp_generate_token (GRANT_ID_BYTES);
    }
  while (g_hash_table_contains (caps->grants, grant->id));
  grant->token = cp_generate_token (GRANT_TOKEN_BYTES);
  grant->type = g_strdup (cap->type);
  grant->issued_at = now;
  grant->expires_at = now + (gint64) caps->broker->grant_ttl_seconds * G_USEC_PER_SEC;
  grant->instance = g_object_ref (instance);
  g_hash_table_replace (caps->grants, grant->id, grant);

  url = g_strdup_printf ("%s" CAPABILITIES_PREFIX "%s/%s", base_url ? base_url : "",
                         cap->type, grant->id);
  cp_capability_grant_set_grant_id (message, grant->id);
  cp_capability_grant_set_endpoint_url (message, url);
  cp_capability_grant_set_bearer_token (message, grant->token);
  cp_capability_grant_set_capability_type (message, cap->type);
  cp_capability_grant_set_version (message, cap->version);
  return message;
}

static gboolean
on_request_capability (CpCapabilityBroker         *service,
                       CpInvocation               *invocation,
                       CpRequestCapabilityRequest *request,
                       CpBrokerCapabilities       *caps)
{
  g_autoptr(CpRequestCapabilityResponse) response = NULL;
  g_autoptr(CpCapabilityGrant) grant = NULL;
  GError *error = NULL;
  CpPluginInstance *instance;
  Capability *cap;

  instance = cp_broker_authenticate (caps->broker, cp_invocation_get_request_headers (invocation),
                                     &error);
  cap = instance != NULL ? check_request (caps, instance, request, &error) : NULL;
  if (cap == NULL)
    {
      cp_invocation_take_error (invocation, error);
      return TRUE;
    }
  grant = issue_grant (caps, instance, cap);
  response = cp_request_capability_response_new ();
  cp_request_capability_response_set_grant (response, grant);
  cp_capability_broker_complete_request_capability (service, invocation, response);
  return TRUE;
}

/* /broker/connectplugin.v1.CapabilityBroker/…: where the handshake says
 * the broker is (connect-plugin-go's Capability.endpoint). */
static void
on_broker_exchange (CpRpcServer    *server,
                    CpHttpExchange *exchange,
                    gpointer        user_data)
{
  const char *procedure = cp_http_exchange_get_path (exchange) + strlen (BROKER_PREFIX) - 1;

  if (!g_str_has_prefix (procedure, BROKER_SERVICE) ||
      !cp_rpc_server_dispatch (server, exchange, procedure))
    cp_rpc_server_respond_plain (exchange, SOUP_STATUS_NOT_FOUND, NULL);
}

/* ------------------------------------------------------------------ */
/* /capabilities/{type}/{grant_id}/{Service}/{Method}                   */

static gboolean
segment_is_valid (const char *segment,
                  const char *extra_chars)
{
  gsize len = strlen (segment);

  if (len == 0 || len > MAX_SEGMENT || strcmp (segment, ".") == 0 || strcmp (segment, "..") == 0)
    return FALSE;
  for (const char *p = segment; *p; p++)
    if (!g_ascii_isalnum (*p) && strchr (extra_chars, *p) == NULL)
      return FALSE;
  return TRUE;
}

/* A capability path, split in place (no allocation: every call parses
 * one): type, grant id, service, and the procedure "/{Service}/{Method}". */
typedef struct {
  char buf[4 * MAX_SEGMENT + 8];
  const char *type;
  const char *grant_id;
  char procedure[2 * MAX_SEGMENT + 4];
} CapabilityPath;

/* FALSE when malformed: not exactly four parts, an empty or dot part, a
 * character outside each part's alphabet (so also any percent-encoding:
 * none of the parts may need one). */
static gboolean
parse_capability_path (const char     *path,
                       CapabilityPath *out)
{
  const char *rest = path + strlen (CAPABILITIES_PREFIX);
  char *parts[4];
  char *p;
  guint n = 0;

  if (strlen (rest) >= sizeof out->buf)
    return FALSE;
  strcpy (out->buf, rest);
  for (p = out->buf; n < 4; n++)
    {
      parts[n] = p;
      p = strchr (p, '/');
      if (p == NULL)
        break;
      *p++ = '\0';
    }
  if (n != 3 ||
      !segment_is_valid (parts[0], "._-") ||   /* type */
      !segment_is_valid (parts[1], "_-=") ||   /* grant id: base64url */
      !segment_is_valid (parts[2], "._") ||    /* package.Service */
      !segment_is_valid (parts[3], "_"))       /* Method */
    return FALSE;
  out->type = parts[0];
  out->grant_id = parts[1];
  g_snprintf (out->procedure, sizeof out->procedure, "/%s/%s", parts[2], parts[3]);
  return TRUE;
}

/* The grant the request's bearer token proves for @grant_id, or NULL with
 * the 401 text in *@refusal. An expired grant is dropped. */
static Grant *
check_grant (CpBrokerCapabilities *caps,
             SoupMessageHeaders   *headers,
             const char           *grant_id,
             const char          **refusal)
{
  const char *authorization = soup_message_headers_get_one (headers, "Authorization");
  Grant *grant;

  if (authorization == NULL || !g_str_has_prefix (authorization, "Bearer "))
    {
      *refusal = "missing or invalid authorization header";
      return NULL;
    }
  grant = g_hash_table_lookup (caps->grants, grant_id);
  if (grant == NULL)
    {
      *refusal = "invalid grant ID";
      return NULL;
    }
  if (grant_clock (caps) >= grant->expires_at)
    {
      g_hash_table_remove (caps->grants, grant_id);
      *refusal = "grant expired";
      return NULL;
    }
  if (!cp_token_equal (authorization + strlen ("Bearer "), grant->token))
    {
      *refusal = "invalid token";
      return NULL;
    }
  return grant;
}

static void
on_capability_exchange (CpRpcServer    *server,
                        CpHttpExchange *exchange,
                        gpointer        user_data)
{
  CpBrokerCapabilities *caps = user_data;
  SoupMessageHeaders *headers = cp_http_exchange_get_request_headers (exchange);
  CapabilityPath parts;
  const char *refusal = NULL;
  Capability *cap;
  Grant *grant;

  if (!parse_capability_path (cp_http_exchange_get_path (exchange), &parts))
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_BAD_REQUEST, "invalid capability path");
      return;
    }
  /* The types on offer are public (every handshake lists them). */
  cap = g_hash_table_lookup (caps->capabilities, parts.type);
  if (cap == NULL)
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_NOT_FOUND, "capability not available");
      return;
    }
  grant = check_grant (caps, headers, parts.grant_id, &refusal);
  if (grant == NULL)
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_UNAUTHORIZED, refusal);
      return;
    }
  /* The caller proved it holds this grant, but it is for another
   * capability: authenticated, not authorised here. */
  if (strcmp (grant->type, cap->type) != 0)
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_FORBIDDEN,
                                   "grant is not for this capability");
      return;
    }
  /* Capability calls share the plugin's bucket with its host API calls. */
  if (caps->broker->rate_limit_rps > 0 && caps->broker->limiter != NULL)
    {
      g_autofree char *key = g_strconcat ("id:", cp_plugin_instance_get_runtime_id (grant->instance),
                                          NULL);

      if (!cp_rate_limiter_allow (caps->broker->limiter, key))
        {
          cp_rpc_server_respond_plain (exchange, 429, "rate limit exceeded");
          return;
        }
    }
  /* The capability sees who calls, never the grant's token. */
  soup_message_headers_remove (headers, "Authorization");
  soup_message_headers_replace (headers, "X-Plugin-Runtime-ID",
                                cp_plugin_instance_get_runtime_id (grant->instance));
  if (!cp_rpc_server_dispatch (cap->server, exchange, parts.procedure))
    cp_rpc_server_respond_plain (exchange, SOUP_STATUS_NOT_FOUND, "unknown capability method");
}

/* ------------------------------------------------------------------ */
/* Handshake                                                            */

static int
compare_capability (gconstpointer a,
                    gconstpointer b)
{
  return strcmp ((*(Capability **) a)->type, (*(Capability **) b)->type);
}

/* HandshakeResponse.host_capabilities: every capability, by type, at the
 * broker's advertised endpoint (connect-plugin-go's ListCapabilities). */
static void
on_handshake (CpServer            *server,
              CpHandshakeRequest  *request,
              CpHandshakeResponse *response,
              gpointer             user_data)
{
  CpBrokerCapabilities *caps = user_data;
  g_autoptr(GPtrArray) list = g_ptr_array_new ();
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func (g_object_unref);
  const char *base_url = cp_broker_get_base_url (caps->broker);
  g_autofree char *endpoint = g_strconcat (base_url ? base_url : "", "/broker", NULL);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, caps->capabilities);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (list, value);
  g_ptr_array_sort (list, compare_capability);
  for (guint i = 0; i < list->len; i++)
    {
      Capability *cap = list->pdata[i];
      CpCapability *message = cp_capability_new ();

      cp_capability_set_type_ (message, cap->type);
      cp_capability_set_version (message, cap->version);
      cp_capability_set_endpoint (message, endpoint);
      g_ptr_array_add (messages, message);
    }
  cp_handshake_response_set_host_capabilities (response, messages);
}

/* ------------------------------------------------------------------ */
/* The unit                                                             */

CpBrokerCapabilities *
cp_broker_capabilities_new (CpBroker *broker)
{
  CpBrokerCapabilities *caps = g_new0 (CpBrokerCapabilities, 1);
  g_autoptr(GError) error = NULL;

  caps->broker = broker;
  caps->capabilities = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, capability_free);
  caps->grants = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, grant_free);
  caps->allow = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_hash_table_unref);
  caps->service = cp_capability_broker_skeleton_new ();
  g_signal_connect (caps->service, "handle-request-capability",
                    G_CALLBACK (on_request_capability), caps);
  if (!cp_skeleton_export (CP_SKELETON (caps->service), broker->rpc_server, &error))
    g_critical ("connectplugin: cannot serve CapabilityBroker: %s", error->message);
  cp_rpc_server_add_prefix_handler (broker->rpc_server, BROKER_PREFIX,
                                    on_broker_exchange, caps, NULL);
  cp_rpc_server_add_prefix_handler (broker->rpc_server, CAPABILITIES_PREFIX,
                                    on_capability_exchange, caps, NULL);
  cp_server_set_handshake_hook (broker->server, on_handshake, caps);
  return caps;
}

void
cp_broker_capabilities_plugin_gone (CpBrokerCapabilities *caps,
                                    CpPluginInstance     *instance)
{
  GHashTableIter iter;
  Grant *grant;

  g_hash_table_iter_init (&iter, caps->grants);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &grant))
    if (grant->instance == instance)
      g_hash_table_iter_remove (&iter);
}

void
cp_broker_capabilities_free (CpBrokerCapabilities *caps)
{
  CpBroker *broker = caps->broker;

  cp_server_set_handshake_hook (broker->server, NULL, NULL);
  cp_rpc_server_remove_prefix_handler (broker->rpc_server, CAPABILITIES_PREFIX);
  cp_rpc_server_remove_prefix_handler (broker->rpc_server, BROKER_PREFIX);
  g_signal_handlers_disconnect_by_data (caps->service, caps);
  cp_skeleton_unexport (CP_SKELETON (caps->service));
  g_object_unref (caps->service);
  g_hash_table_unref (caps->grants);
  g_hash_table_unref (caps->capabilities);
  g_hash_table_unref (caps->allow);
  g_free (caps);
}

void
cp_broker_capabilities_advance_clock (CpBrokerCapabilities *caps,
                                      gint64                seconds)
{
  caps->clock_offset += seconds * G_USEC_PER_SEC;
}

guint
cp_broker_capabilities_get_n_grants (CpBrokerCapabilities *caps)
{
  return g_hash_table_size (caps->grants);
}

static void
drop_grants_of_type (CpBrokerCapabilities *caps,
                     const char           *type)
{
  GHashTableIter iter;
  Grant *grant;

  g_hash_table_iter_init (&iter, caps->grants);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &grant))
    if (strcmp (grant->type, type) == 0)
      g_hash_table_iter_remove (&iter);
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

/**
 * cp_broker_add_capability:
 * @broker: a [class@ConnectPlugin.Broker]
 * @capability_type: the capability's type, e.g. `secrets` (letters,
 *   digits, `.`, `_`, `-`)
 * @version: its semantic version, e.g. `1.0.0` (`MAJOR.MINOR.PATCH`, an
 *   optional `-PRERELEASE`)
 * @skeleton: the implementation: any generated skeleton (a subclass of
 *   [class@ConnectPlugin.Skeleton], also one made in Python or Vala), not
 *   exported anywhere yet
 *
 * Offers a capability to the plugins: every handshake lists it in
 * `host_capabilities` (endpoint `<base-url>/broker`), and a plugin that
 * asks `CapabilityBroker.RequestCapability` for @capability_type (at
 * `/connectplugin.v1.CapabilityBroker/RequestCapability` or under
 * `/broker/`) with its runtime identity, and is allowed to (see
 * [method@ConnectPlugin.Broker.allow_capability]), gets a grant: a bearer
 * token valid for [property@ConnectPlugin.Broker:grant-ttl-seconds] at
 * `<base-url>/capabilities/@capability_type/<grant id>`. A request with a
 * `min_version` newer than @version fails with `not_found`.
 *
 * Calls at that endpoint followed by `/{Service}/{Method}` are dispatched
 * in-process to @skeleton, which is exported on a server of its own that
 * never listens (no socket hop). @skeleton's handlers see the request
 * headers without `Authorization`, and `X-Plugin-Runtime-ID` set to the
 * runtime id of the plugin holding the grant.
 *
 * A capability already offered as @capability_type is replaced; its
 * grants stay valid and reach @skeleton. Call this in the broker's
 * [struct@GLib.MainContext].
 */
void
cp_broker_add_capability (CpBroker   *broker,
                          const char *capability_type,
                          const char *version,
                          CpSkeleton *skeleton)
{
  g_autoptr(GError) error = NULL;
  CpBrokerCapabilities *caps;
  Capability *cap;

  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (capability_type != NULL && segment_is_valid (capability_type, "._-"));
  g_return_if_fail (version != NULL && cp_semver_is_valid (version));
  g_return_if_fail (CP_IS_SKELETON (skeleton));
  g_return_if_fail (!cp_skeleton_is_exported (skeleton));
  g_return_if_fail (broker->capabilities != NULL);

  caps = broker->capabilities;
  cap = g_new0 (Capability, 1);
  cap->type = g_strdup (capability_type);
  cap->version = g_strdup (version);
  cap->skeleton = g_object_ref (skeleton);
  /* Its handlers run in the broker's context, where calls arrive. */
  g_main_context_push_thread_default (broker->context);
  cap->server = cp_rpc_server_new ();
  g_main_context_pop_thread_default (broker->context);
  if (!cp_skeleton_export (skeleton, cap->server, &error))
    {
      g_critical ("connectplugin: cannot offer capability %s: %s", capability_type, error->message);
      g_object_unref (cap->server);
      g_object_unref (cap->skeleton);
      g_free (cap->type);
      g_free (cap->version);
      g_free (cap);
      return;
    }
  g_hash_table_replace (caps->capabilities, cap->type, cap);
}

/**
 * cp_broker_remove_capability:
 * @broker: a [class@ConnectPlugin.Broker]
 * @capability_type: a type given to [method@ConnectPlugin.Broker.add_capability]
 *
 * Stops offering a capability: it leaves `host_capabilities`, its grants
 * are revoked, requests for it fail with `not_found` and calls at its
 * endpoints with HTTP 404. Its skeleton is unexported. Nothing happens
 * when @capability_type is not offered.
 */
void
cp_broker_remove_capability (CpBroker   *broker,
                             const char *capability_type)
{
  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (capability_type != NULL);

  if (broker->capabilities == NULL)
    return;
  drop_grants_of_type (broker->capabilities, capability_type);
  g_hash_table_remove (broker->capabilities->capabilities, capability_type);
}

/**
 * cp_broker_allow_capability:
 * @broker: a [class@ConnectPlugin.Broker]
 * @self_id: a plugin's self id (as in its handshake, e.g. `cache-plugin`)
 * @capability_type: a capability type that plugin may request
 *
 * Adds @capability_type to the allow-list of the plugins with @self_id.
 * A plugin whose self id has an allow-list gets `permission_denied` when
 * it requests any other capability; a plugin whose self id has none may
 * request every capability offered (as in connect-plugin-go).
 */
void
cp_broker_allow_capability (CpBroker   *broker,
                            const char *self_id,
                            const char *capability_type)
{
  GHashTable *types;

  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (self_id != NULL);
  g_return_if_fail (capability_type != NULL);
  g_return_if_fail (broker->capabilities != NULL);

  types = g_hash_table_lookup (broker->capabilities->allow, self_id);
  if (types == NULL)
    {
      types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (broker->capabilities->allow, g_strdup (self_id), types);
    }
  g_hash_table_add (types, g_strdup (capability_type));
}
