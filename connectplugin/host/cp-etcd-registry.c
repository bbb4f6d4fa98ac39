/* cp-etcd-registry.c: the broker's service registry shared by several hosts through etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-etcd-registry-private.h"
#include "cp-etcd-watch-private.h"
#include "cp-error.h"
#include "cp-router-private.h"
#include "cp-rpc-server-private.h"
#include "cp-http-exchange-private.h"
#include "cp-tls-private.h"

/* Reconnection delays of the watch (and of the list while etcd is away). */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Remote providers kept at most (etcd is shared: bound what it can make
 * us hold). */
#define MAX_REMOTE 16384

/**
 * CpEtcdRegistry:
 *
 * An etcd back-end for a [class@ConnectPlugin.Broker]'s service registry,
 * so that several hosts on one etcd see one registry: a provider a plugin
 * registers with host A is discovered, and called, by plugins of host B.
 *
 * Once started ([method@ConnectPlugin.EtcdRegistry.start_async]), the
 * registry
 *
 * - writes every provider registered with its broker under
 *   `PREFIX services/TYPE/REG_ID` ([property@EtcdRegistry:prefix]) as a
 *   JSON object (`registration_id`, `service_type`, `version`,
 *   `provider_id` (the plugin's runtime id), `host_id`, `router_url`,
 *   `health`, `metadata`), all of them under one lease of
 *   [property@EtcdRegistry:ttl] seconds for the host, renewed every third
 *   of the TTL. Unregistering, the plugin going away, or a health change
 *   rewrites or deletes its key; stopping the registry revokes the lease,
 *   and when the host dies its keys go when the lease expires. A lease
 *   found lost is granted again and every provider written again.
 * - lists and watches the prefix, and hands the providers of other hosts
 *   to the broker: `DiscoverService` and `WatchService` answer local
 *   providers first, then remote ones (min_version, selection strategies
 *   and health apply to both). The watch resumes from the last revision
 *   seen after etcd restarts, and lists again when that revision was
 *   compacted.
 * - serves the other hosts on a listener of its own, over mutual TLS: a
 *   remote provider's endpoint is the same router path as a local one
 *   (`/services/TYPE/RUNTIME_ID`), so a plugin calls its own host, whose
 *   router forwards the call to the owning host's
 *   [property@EtcdRegistry:peer-url] presenting
 *   [property@EtcdRegistry:tls-certificate]. The owning host admits it only
 *   from a certificate that chains to [property@EtcdRegistry:tls-database]
 *   (401 without a certificate, a refused handshake with one it does not
 *   trust) and, when [property@EtcdRegistry:trusted-peers] is set, whose
 *   identity is in that list (403 otherwise), then routes it to its own
 *   provider only (never forwarded again). Headers (but the caller's
 *   credentials) and the deadline (`Connect-Timeout-Ms`) go along, and
 *   bodies stream in both directions as in the local router.
 *
 * Use one certificate per host, valid for both TLS server and client
 * authentication and naming the address of its peer URL, all signed by
 * one CA the hosts trust.
 *
 * Everything runs in the thread-default main context the registry was
 * created in, which must be the broker's.
 */

typedef struct {
  gboolean delete;
  char *key;
  char *value;                  /* NULL for a delete */
} Write;

struct _CpEtcdRegistry
{
  GObject parent_instance;

  CpBroker *broker;
  GStrv endpoints;
  char *prefix;
  char *services_prefix;        /* prefix + "services/" */
  char *host_id;
  guint ttl;
  GTlsCertificate *tls_certificate;
  GTlsDatabase *tls_database;
  GStrv trusted_peers;
  char *peer_url;
  gboolean registered;

  CpEtcdClient *client;
  GMainContext *context;
  GCancellable *cancellable;    /* everything in flight; cancelled when stopped */
  CpRpcServer *peer_server;
  gboolean started;
  gboolean stopped;

  gint64 lease;                 /* 0: none */
  GSource *renew;

  GQueue writes;                /* Write*, sent one at a time, in order */
  gboolean writing;

  gint64 revision;
  gboolean synced;
  CpEtcdWatch *watch;           /* services_prefix, from revision + 1 */
  GSource *retry;
  guint backoff_ms;

  guint n_lists;                /* test hook: lists applied */

  GTask *start_task;            /* until the first lease and list */
  gboolean start_granted;
  gboolean start_listed;
};

enum {
  PROP_0,
  PROP_BROKER,
  PROP_ENDPOINTS,
  PROP_PREFIX,
  PROP_HOST_ID,
  PROP_TTL,
  PROP_TLS_CERTIFICATE,
  PROP_TLS_DATABASE,
  PROP_TRUSTED_PEERS,
  PROP_PEER_URL,
  PROP_REGISTERED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (CpEtcdRegistry, cp_etcd_registry, G_TYPE_OBJECT)

static void grant (CpEtcdRegistry *self);
static void list (CpEtcdRegistry *self);
static void open_watch (CpEtcdRegistry *self);

static CpRegistry *
registry_of (CpEtcdRegistry *self)
{
  if (self->broker == NULL || self->broker->etcd_registry != self)
    return NULL;
  return self->broker->registry;
}

static void
set_registered (CpEtcdRegistry *self,
                gboolean        registered)
{
  if (self->registered == registered)
    return;
  self->registered = registered;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REGISTERED]);
}

static JsonObject *
lease_request (gint64 lease)
{
  JsonObject *request = json_object_new ();
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, lease);

  json_object_set_string_member (request, "ID", id);
  return request;
}

static void
call_quietly_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(JsonObject) response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, NULL);
}

/* ---- starting ---- */

static void teardown (CpEtcdRegistry *self);

/* The first grant or list failed, or the start was cancelled: it fails and
 * nothing stays (a lease already granted is revoked). */
static void
start_failed (CpEtcdRegistry *self,
              GError         *error)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->start_task);

  teardown (self);
  if (self->lease != 0)
    {
      g_autoptr(JsonObject) request = lease_request (self->lease);

      cp_etcd_client_call_async (self->client, "/v3/lease/revoke", request, NULL,
                                 call_quietly_cb, NULL);
      self->lease = 0;
    }
  set_registered (self, FALSE);
  g_task_return_error (task, error);
}

static void
maybe_started (CpEtcdRegistry *self)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;

  if (self->start_task == NULL || !self->start_granted || !self->start_listed)
    return;
  if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (self->start_task), &error))
    {
      start_failed (self, error);
      return;
    }
  task = g_steal_pointer (&self->start_task);
  g_task_return_boolean (task, TRUE);
}

/* ---- writes ---- */

static void
write_free (Write *write)
{
  g_free (write->key);
  g_free (write->value);
  g_free (write);
}

static void pump_writes (CpEtcdRegistry *self);

static void
write_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  CpEtcdRegistry *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) response = NULL;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* A lost write is made good by the next lease: every provider is
   * written again then. */
  if (error != NULL)
    g_debug ("etcd registry: write: %s", error->message);
  self->writing = FALSE;
  pump_writes (self);
}

/* Sends the next write unless one is on its way. Puts wait for a lease:
 * without one they are dropped (the next grant writes every provider). */
static void
pump_writes (CpEtcdRegistry *self)
{
  Write *write;

  while (!self->writing && !self->stopped &&
         (write = g_queue_pop_head (&self->writes)) != NULL)
    {
      g_autoptr(JsonObject) request = json_object_new ();

      cp_etcd_set_bytes (request, "key", write->key, strlen (write->key));
      if (write->delete)
        {
          self->writing = TRUE;
          cp_etcd_client_call_async (self->client, "/v3/kv/deleterange", request,
                                     self->cancellable, write_cb, self);
        }
      else if (self->lease != 0)
        {
          g_autofree char *lease = g_strdup_printf ("%" G_GINT64_FORMAT, self->lease);

          cp_etcd_set_bytes (request, "value", write->value, strlen (write->value));
          json_object_set_string_member (request, "lease", lease);
          self->writing = TRUE;
          cp_etcd_client_call_async (self->client, "/v3/kv/put", request, self->cancellable,
                                     write_cb, self);
        }
      write_free (write);
    }
}

static char *
provider_key (CpEtcdRegistry *self,
              const char     *service_type,
              const char     *registration_id)
{
  return g_strconcat (self->services_prefix, service_type, "/", registration_id, NULL);
}

void
cp_etcd_registry_put_provider (CpEtcdRegistry *self,
                               const char     *registration_id,
                               const char     *service_type,
                               const char     *version,
                               const char     *runtime_id,
                               CpHealthState   health,
                               GHashTable     *metadata)
{
  CpEtcdService service = {
    .registration_id = (char *) registration_id,
    .service_type = (char *) service_type,
    .version = (char *) version,
    .provider_id = (char *) runtime_id,
    .host_id = self->host_id,
    .router_url = self->peer_url,
    .health = health,
    .metadata = metadata,
  };
  Write *write;

  if (self->stopped || self->lease == 0)
    return;                 /* written with the others once there is a lease */
  write = g_new0 (Write, 1);
  write->key = provider_key (self, service_type, registration_id);
  write->value = cp_etcd_service_to_json (&service);
  g_queue_push_tail (&self->writes, write);
  pump_writes (self);
}

void
cp_etcd_registry_delete_provider (CpEtcdRegistry *self,
                                  const char     *registration_id,
                                  const char     *service_type)
{
  Write *write;

  if (self->stopped)
    return;
  write = g_new0 (Write, 1);
  write->delete = TRUE;
  write->key = provider_key (self, service_type, registration_id);
  g_queue_push_tail (&self->writes, write);
  pump_writes (self);
}

/* ---- the lease ---- */

static gboolean
renew_cb (gpointer user_data);

static void
schedule_renewal (CpEtcdRegistry *self)
{
  if (self->renew != NULL)
    g_source_destroy (self->renew);
  g_clear_pointer (&self->renew, g_source_unref);
  if (self->stopped)
    return;
  self->renew = g_timeout_source_new (MAX (self->ttl * 1000 / 3, 100));
  g_source_set_callback (self->renew, renew_cb, self, NULL);
  g_source_set_static_name (self->renew, "[connectplugin] etcd registry lease renewal");
  g_source_attach (self->renew, self->context);
}

static void
grant_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  CpEtcdRegistry *self = user_data;
  g_autoptr(JsonObject) response = NULL;
  GError *error = NULL;
  gint64 granted = 0;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (response != NULL && cp_etcd_get_int64 (response, "ID", &granted, &error) && granted == 0)
    error = g_error_new_literal (CP_ERROR, CP_ERROR_INTERNAL, "etcd: the lease grant has no ID");
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_error_free (error);
      return;
    }
  if (error != NULL)
    {
      if (self->start_task != NULL)
        {
          start_failed (self, error);
          return;
        }
      /* etcd away: try again at the next tick. */
      g_debug ("etcd registry: granting a lease: %s", error->message);
      g_error_free (error);
      schedule_renewal (self);
      return;
    }
  self->lease = granted;
  g_debug ("etcd registry: host %s holds lease %" G_GINT64_FORMAT, self->host_id, granted);
  if (registry_of (self) != NULL)
    cp_registry_publish_all (registry_of (self));
  set_registered (self, TRUE);
  schedule_renewal (self);
  self->start_granted = TRUE;
  maybe_started (self);
}

static void
grant (CpEtcdRegistry *self)
{
  g_autoptr(JsonObject) request = json_object_new ();

  json_object_set_int_member (request, "TTL", self->ttl);
  cp_etcd_client_call_async (self->client, "/v3/lease/grant", request, self->cancellable,
                             grant_cb, self);
}

static void
keepalive_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CpEtcdRegistry *self = user_data;
  g_autoptr(JsonObject) response = NULL;
  g_autoptr(GError) error = NULL;
  JsonNode *node;
  gint64 ttl = 0;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (response != NULL)
    {
      node = json_object_get_member (response, "result");
      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        cp_etcd_get_int64 (json_node_get_object (node), "TTL", &ttl, &error);
    }
  if (response == NULL || error != NULL)
    {
      /* Unreachable: the lease may outlive the outage; renew again. */
      g_debug ("etcd registry: renewing the lease: %s", error->message);
      schedule_renewal (self);
      return;
    }
  if (ttl > 0)
    {
      schedule_renewal (self);
      return;
    }
  /* TTL 0: the lease is gone, and every key with it. */
  g_debug ("etcd registry: lease %" G_GINT64_FORMAT " of host %s lost, registering again",
           self->lease, self->host_id);
  self->lease = 0;
  set_registered (self, FALSE);
  grant (self);
}

static gboolean
renew_cb (gpointer user_data)
{
  CpEtcdRegistry *self = user_data;
  g_autoptr(JsonObject) request = NULL;

  g_clear_pointer (&self->renew, g_source_unref);
  if (self->lease == 0)
    grant (self);
  else
    {
      request = lease_request (self->lease);
      cp_etcd_client_call_async (self->client, "/v3/lease/keepalive", request, self->cancellable,
                                 keepalive_cb, self);
    }
  return G_SOURCE_REMOVE;
}

/* ---- what other hosts published ---- */

static void
apply (CpEtcdRegistry *self,
       CpEtcdKv       *kv,
       GHashTable     *listed)
{
  CpRegistry *registry = registry_of (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(CpEtcdService) service = NULL;
  g_autofree char *expected = NULL;

  if (kv->mod_revision > self->revision)
    self->revision = kv->mod_revision;
  if (registry == NULL)
    return;
  if (kv->deleted)
    {
      cp_registry_remove_remote (registry, kv->key);
      return;
    }
  service = cp_etcd_service_parse (g_bytes_get_data (kv->value, NULL),
                                   g_bytes_get_size (kv->value), &error);
  if (service != NULL)
    expected = provider_key (self, service->service_type, service->registration_id);
  if (service == NULL || strcmp (expected, kv->key) != 0)
    {
      g_debug ("etcd registry: ignoring %s: %s", kv->key,
               error != NULL ? error->message : "the key does not match the entry");
      cp_registry_remove_remote (registry, kv->key);
      return;
    }
  /* Ours: the registry has them already. */
  if (strcmp (service->host_id, self->host_id) == 0)
    {
      cp_registry_remove_remote (registry, kv->key);
      return;
    }
  if (cp_registry_get_n_remote (registry) >= MAX_REMOTE &&
      cp_registry_lookup_remote (registry, service->service_type, service->provider_id) == NULL)
    {
      g_warning ("etcd registry: more than %d remote providers, ignoring %s", MAX_REMOTE, kv->key);
      return;
    }
  cp_registry_set_remote (registry, kv->key, service);
  if (listed != NULL)
    g_hash_table_add (listed, g_strdup (kv->key));
}

static gboolean
retry_cb (gpointer user_data)
{
  CpEtcdRegistry *self = user_data;

  g_clear_pointer (&self->retry, g_source_unref);
  if (self->synced)
    open_watch (self);
  else
    list (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (CpEtcdRegistry *self)
{
  cp_etcd_watch_drop (self->watch);
  if (self->retry != NULL || self->stopped)
    return;
  self->retry = g_timeout_source_new (self->backoff_ms);
  g_source_set_callback (self->retry, retry_cb, self, NULL);
  g_source_set_static_name (self->retry, "[connectplugin] etcd registry watch retry");
  g_source_attach (self->retry, self->context);
  self->backoff_ms = MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
}

static void
watch_created (GObject *owner)
{
  CP_ETCD_REGISTRY (owner)->backoff_ms = BACKOFF_MIN_MS;
}

static void
watch_events (GObject   *owner,
              GPtrArray *events)
{
  CpEtcdRegistry *self = CP_ETCD_REGISTRY (owner);

  for (guint i = 0; i < events->len; i++)
    apply (self, g_ptr_array_index (events, i), NULL);
}

static void
watch_ended (GObject      *owner,
             gboolean      compacted,
             const GError *error)
{
  CpEtcdRegistry *self = CP_ETCD_REGISTRY (owner);

  if (compacted)
    {
      self->synced = FALSE;
      list (self);
    }
  else
    schedule_retry (self);
}

static const CpEtcdWatchCallbacks watch_callbacks = { watch_created, watch_events, watch_ended };

static void
open_watch (CpEtcdRegistry *self)
{
  cp_etcd_watch_open (self->watch, self->revision + 1, self->cancellable);
}

static void
list_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  CpEtcdRegistry *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) response = NULL;
  g_autoptr(GPtrArray) kvs = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_etcd_kv_free);
  g_autoptr(GHashTable) listed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  gint64 revision = 0;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (response != NULL)
    cp_etcd_parse_range (response, &revision, kvs, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (error != NULL)
    {
      if (self->start_task != NULL)
        {
          start_failed (self, g_steal_pointer (&error));
          return;
        }
      g_debug ("etcd registry: listing %s: %s", self->services_prefix, error->message);
      schedule_retry (self);
      return;
    }
  g_debug ("etcd registry: %u keys under %s at revision %" G_GINT64_FORMAT,
           kvs->len, self->services_prefix, revision);
  for (guint i = 0; i < kvs->len; i++)
    apply (self, g_ptr_array_index (kvs, i), listed);
  if (registry_of (self) != NULL)
    cp_registry_retain_remote (registry_of (self), listed);
  self->revision = revision;
  self->synced = TRUE;
  self->n_lists++;
  open_watch (self);
  self->start_listed = TRUE;
  maybe_started (self);
}

static void
list (CpEtcdRegistry *self)
{
  g_autoptr(JsonObject) request = json_object_new ();
  g_autofree char *end = cp_etcd_prefix_end (self->services_prefix);

  cp_etcd_set_bytes (request, "key", self->services_prefix, strlen (self->services_prefix));
  cp_etcd_set_bytes (request, "range_end", end, strlen (end));
  cp_etcd_client_call_async (self->client, "/v3/kv/range", request, self->cancellable,
                             list_cb, self);
}

/* ---- the peer listener ---- */

/* A printable identity of a peer's certificate: its subject DN, else its
 * first DNS name, else its first IP address. */
static char *
certificate_identity (GTlsCertificate *certificate)
{
  g_autofree char *subject = NULL;
  g_autoptr(GPtrArray) dns_names = NULL;
  g_autoptr(GPtrArray) ip_addresses = NULL;

  g_object_get (certificate, "subject-name", &subject, "dns-names", &dns_names,
                "ip-addresses", &ip_addresses, NULL);
  if (subject != NULL && subject[0] != '\0')
    return g_steal_pointer (&subject);
  if (dns_names != NULL && dns_names->len > 0)
    {
      gsize len;
      const char *name = g_bytes_get_data (g_ptr_array_index (dns_names, 0), &len);

      return g_strndup (name, len);
    }
  if (ip_addresses != NULL && ip_addresses->len > 0)
    return g_inet_address_to_string (g_ptr_array_index (ip_addresses, 0));
  return NULL;
}

static void
peer_handle (CpRpcServer    *server,
             CpHttpExchange *exchange,
             gpointer        user_data)
{
  CpEtcdRegistry *self = user_data;
  GTlsCertificate *certificate = cp_http_exchange_get_peer_certificate (exchange);
  g_autofree char *identity = NULL;
  g_autofree char *text = NULL;

  /* The TLS layer refused certificates that do not chain to our
   * database: one here is a trusted host's, or none was sent. */
  if (certificate == NULL)
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_UNAUTHORIZED,
                                   "a peer host's client certificate is required");
      return;
    }
  identity = certificate_identity (certificate);
  if (self->trusted_peers != NULL && self->trusted_peers[0] != NULL &&
      (identity == NULL || !g_strv_contains ((const char * const *) self->trusted_peers, identity)))
    {
      text = g_strdup_printf ("peer host %s is not trusted", identity != NULL ? identity : "(unnamed)");
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_FORBIDDEN, text);
      return;
    }
  if (registry_of (self) == NULL)
    {
      cp_rpc_server_respond_plain (exchange, SOUP_STATUS_SERVICE_UNAVAILABLE, "host stopping");
      return;
    }
  cp_router_handle_forwarded (self->broker->router, exchange,
                              identity != NULL ? identity : "(unnamed)");
}

/* Stops everything but the lease: no renewal, watch, write or peer call
 * any more, and the broker forgets us and the remote providers. */
static void
teardown (CpEtcdRegistry *self)
{
  self->stopped = TRUE;
  g_cancellable_cancel (self->cancellable);
  if (self->renew != NULL)
    g_source_destroy (self->renew);
  g_clear_pointer (&self->renew, g_source_unref);
  if (self->retry != NULL)
    g_source_destroy (self->retry);
  g_clear_pointer (&self->retry, g_source_unref);
  cp_etcd_watch_drop (self->watch);
  g_queue_clear_full (&self->writes, (GDestroyNotify) write_free);
  self->writing = FALSE;
  if (self->broker != NULL && self->broker->etcd_registry == self)
    {
      cp_registry_retain_remote (self->broker->registry, NULL);
      cp_router_set_peer_tls (self->broker->router, NULL, NULL);
      self->broker->etcd_registry = NULL;
    }
  if (self->peer_server != NULL)
    {
      cp_rpc_server_remove_prefix_handler (self->peer_server, CP_ROUTER_PREFIX);
      cp_rpc_server_close (self->peer_server);
      g_clear_object (&self->peer_server);
    }
}

/* ---- GObject ---- */

static void
cp_etcd_registry_constructed (GObject *object)
{
  CpEtcdRegistry *self = CP_ETCD_REGISTRY (object);

  G_OBJECT_CLASS (cp_etcd_registry_parent_class)->constructed (object);
  if (self->prefix == NULL || self->prefix[0] == '\0')
    {
      g_free (self->prefix);
      self->prefix = g_strdup (CP_ETCD_REGISTRY_DEFAULT_PREFIX);
    }
  if (self->host_id == NULL || self->host_id[0] == '\0')
    {
      g_free (self->host_id);
      self->host_id = g_uuid_string_random ();
    }
  self->services_prefix = g_strconcat (self->prefix, "services/", NULL);
  self->client = cp_etcd_client_new ((const char * const *) self->endpoints);
  self->watch = cp_etcd_watch_new (self->client, self->services_prefix, "etcd registry",
                                   &watch_callbacks, object);
}

static void
cp_etcd_registry_dispose (GObject *object)
{
  CpEtcdRegistry *self = CP_ETCD_REGISTRY (object);

  teardown (self);
  if (self->lease != 0 && self->client != NULL)
    {
      g_autoptr(JsonObject) request = lease_request (self->lease);

      /* The call holds the client, not us. */
      cp_etcd_client_call_async (self->client, "/v3/lease/revoke", request, NULL,
                                 call_quietly_cb, NULL);
      self->lease = 0;
    }
  g_clear_object (&self->broker);

  G_OBJECT_CLASS (cp_etcd_registry_parent_class)->dispose (object);
}

static void
cp_etcd_registry_finalize (GObject *object)
{
  CpEtcdRegistry *self = CP_ETCD_REGISTRY (object);

  g_clear_pointer (&self->endpoints, g_strfreev);
  g_clear_pointer (&self->prefix, g_free);
  g_clear_pointer (&self->services_prefix, g_free);
  g_clear_pointer (&self->host_id, g_free);
  g_clear_object (&self->tls_certificate);
  g_clear_object (&self->tls_database);
  g_clear_pointer (&self->trusted_peers, g_strfreev);
  g_clear_pointer (&self->peer_url, g_free);
  g_clear_pointer (&self->watch, cp_etcd_watch_free);
  g_clear_object (&self->client);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (cp_etcd_registry_parent_class)->finalize (object);
}

static void
cp_etcd_registry_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  CpEtcdRegistry *self = CP_ETCD_REGISTRY (object);

  switch (prop_id)
    {
    case PROP_BROKER:
      g_value_set_object (value, self->broker);
      break;
    case PROP_ENDPOINTS:
      g_value_set_boxed (value, self->endpoints);
      break;
    case PROP_PREFIX:
      g_value_set_string (value, self->prefix);
      break;
    case PROP_HOST_ID:
      g_value_set_string (value, self->host_id);
      break;
    case PROP_TTL:
      g_value_set_uint (value, self->ttl);
      break;
    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;
    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;
    case PROP_TRUSTED_PEERS:
      g_value_set_boxed (value, self->trusted_peers);
      break;
    case PROP_PEER_URL:
      g_value_set_string (value, self->peer_url);
      break;
    case PROP_REGISTERED:
      g_value_set_boolean (value, self->registered);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_etcd_registry_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  CpEtcdRegistry *self = CP_ETCD_REGISTRY (object);

  switch (prop_id)
    {
    case PROP_BROKER:
      self->broker = g_value_dup_object (value);
      break;
    case PROP_ENDPOINTS:
      self->endpoints = g_value_dup_boxed (value);
      break;
    case PROP_PREFIX:
      self->prefix = g_value_dup_string (value);
      break;
    case PROP_HOST_ID:
      self->host_id = g_value_dup_string (value);
      break;
    case PROP_TTL:
      self->ttl = g_value_get_uint (value);
      break;
    case PROP_TLS_CERTIFICATE:
      g_set_object (&self->tls_certificate, g_value_get_object (value));
      break;
    case PROP_TLS_DATABASE:
      g_set_object (&self->tls_database, g_value_get_object (value));
      break;
    case PROP_TRUSTED_PEERS:
      cp_etcd_registry_set_trusted_peers (self, g_value_get_boxed (value));
      break;
    case PROP_PEER_URL:
      if (g_strcmp0 (self->peer_url, g_value_get_string (value)) != 0)
        {
          g_free (self->peer_url);
          self->peer_url = g_value_dup_string (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_etcd_registry_class_init (CpEtcdRegistryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_etcd_registry_constructed;
  object_class->dispose = cp_etcd_registry_dispose;
  object_class->finalize = cp_etcd_registry_finalize;
  object_class->get_property = cp_etcd_registry_get_property;
  object_class->set_property = cp_etcd_registry_set_property;

  /**
   * CpEtcdRegistry:broker:
   *
   * The broker whose service registry this one extends.
   */
  properties[PROP_BROKER] =
    g_param_spec_object ("broker", NULL, NULL, CP_TYPE_BROKER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:endpoints:
   *
   * etcd's client URLs (`http://host:2379`), tried in turn.
   */
  properties[PROP_ENDPOINTS] =
    g_param_spec_boxed ("endpoints", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:prefix:
   *
   * The key prefix, with its trailing `/`: providers are written under
   * `PREFIX services/TYPE/REG_ID`. %NULL or empty means
   * %CP_ETCD_REGISTRY_DEFAULT_PREFIX. Every host of one registry must use
   * the same.
   */
  properties[PROP_PREFIX] =
    g_param_spec_string ("prefix", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:host-id:
   *
   * This host's name in the registry: entries carrying it are this host's
   * own and are not taken as remote. A random UUID unless set; it must be
   * unique among the hosts, 1 to 128 printable characters without `/`.
   */
  properties[PROP_HOST_ID] =
    g_param_spec_string ("host-id", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:ttl:
   *
   * The TTL in seconds of the host's lease: how long the host's providers
   * outlive it when it dies without stopping the registry. Read at start.
   */
  properties[PROP_TTL] =
    g_param_spec_uint ("ttl", NULL, NULL, 1, 3600, 10,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:tls-certificate:
   *
   * This host's certificate, with its private key: served on the peer
   * listener and presented to other hosts when calls are forwarded to
   * them. Required to start. Set it with
   * [method@ConnectPlugin.EtcdRegistry.set_tls_files] or directly.
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:tls-database:
   *
   * The CAs of the hosts' certificates: a peer's client certificate and
   * another host's server certificate must chain to it. Required to start.
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:trusted-peers:
   *
   * When set (not empty), the identities of the peer hosts whose forwarded
   * calls are admitted, as a certificate's subject DN prints (for example
   * `CN=host-b`; its first DNS or IP subject alternative name when the
   * subject is empty); a peer with another certificate of the same CA is
   * answered 403. %NULL: any certificate chaining to
   * [property@EtcdRegistry:tls-database].
   */
  properties[PROP_TRUSTED_PEERS] =
    g_param_spec_boxed ("trusted-peers", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:peer-url:
   *
   * The URL other hosts forward calls to, as written in the registry
   * (`router_url`). Set it before starting when the listener is reached
   * at another address (a listener on `0.0.0.0`, a NAT); otherwise the
   * start sets it to the URL the listener serves.
   */
  properties[PROP_PEER_URL] =
    g_param_spec_string ("peer-url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdRegistry:registered:
   *
   * Whether the host holds a lease, under which its providers are written.
   * FALSE before the start, while a lost lease is granted again, and after
   * the stop.
   */
  properties[PROP_REGISTERED] =
    g_param_spec_boolean ("registered", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_etcd_registry_init (CpEtcdRegistry *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->cancellable = g_cancellable_new ();
  self->backoff_ms = BACKOFF_MIN_MS;
  self->ttl = 10;
  g_queue_init (&self->writes);
}

/* ---- public API ---- */

/**
 * cp_etcd_registry_new:
 * @broker: the [class@ConnectPlugin.Broker] whose registry is shared
 * @endpoints: (array zero-terminated=1): etcd's client URLs
 *
 * Creates an etcd back-end for @broker's service registry, with the
 * default prefix, a random host id and a 10-second lease. Set its TLS
 * credentials, then start it with
 * [method@ConnectPlugin.EtcdRegistry.start_async].
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.EtcdRegistry]
 */
CpEtcdRegistry *
cp_etcd_registry_new (CpBroker           *broker,
                      const char * const *endpoints)
{
  g_return_val_if_fail (CP_IS_BROKER (broker), NULL);
  g_return_val_if_fail (endpoints != NULL && endpoints[0] != NULL, NULL);

  return g_object_new (CP_TYPE_ETCD_REGISTRY, "broker", broker, "endpoints", endpoints, NULL);
}

/**
 * cp_etcd_registry_get_broker:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 *
 * Gets [property@EtcdRegistry:broker].
 *
 * Returns: (transfer none) (nullable): the broker (%NULL once disposed)
 */
CpBroker *
cp_etcd_registry_get_broker (CpEtcdRegistry *self)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRY (self), NULL);

  return self->broker;
}

/**
 * cp_etcd_registry_get_host_id:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 *
 * Gets [property@EtcdRegistry:host-id].
 *
 * Returns: (transfer none): this host's id in the registry
 */
const char *
cp_etcd_registry_get_host_id (CpEtcdRegistry *self)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRY (self), NULL);

  return self->host_id;
}

/**
 * cp_etcd_registry_get_peer_url:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 *
 * Gets [property@EtcdRegistry:peer-url].
 *
 * Returns: (transfer none) (nullable): where other hosts forward calls, or
 *   %NULL before the start when it was not set
 */
const char *
cp_etcd_registry_get_peer_url (CpEtcdRegistry *self)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRY (self), NULL);

  return self->peer_url;
}

/**
 * cp_etcd_registry_get_registered:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 *
 * Gets [property@EtcdRegistry:registered].
 *
 * Returns: whether the host holds a lease
 */
gboolean
cp_etcd_registry_get_registered (CpEtcdRegistry *self)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRY (self), FALSE);

  return self->registered;
}

/**
 * cp_etcd_registry_set_tls_files:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 * @cert_file: (type filename) (nullable): this host's certificate (PEM)
 * @key_file: (type filename) (nullable): its private key (PEM), or %NULL
 *   when it is in @cert_file
 * @ca_file: (type filename) (nullable): the CAs of the hosts' certificates
 *   (PEM)
 * @error: return location for a [struct@GLib.Error]
 *
 * Loads [property@EtcdRegistry:tls-certificate] and
 * [property@EtcdRegistry:tls-database] from files. On error nothing
 * changes.
 *
 * Returns: %TRUE on success
 */
gboolean
cp_etcd_registry_set_tls_files (CpEtcdRegistry  *self,
                                const char      *cert_file,
                                const char      *key_file,
                                const char      *ca_file,
                                GError         **error)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return cp_tls_set_files (G_OBJECT (self), cert_file, key_file, ca_file, error);
}

/**
 * cp_etcd_registry_set_trusted_peers:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 * @identities: (array zero-terminated=1) (nullable): the admitted peer
 *   identities, or %NULL for any peer the CA vouches for
 *
 * Sets [property@EtcdRegistry:trusted-peers]; applies to the next
 * forwarded call.
 */
void
cp_etcd_registry_set_trusted_peers (CpEtcdRegistry     *self,
                                    const char * const *identities)
{
  g_return_if_fail (CP_IS_ETCD_REGISTRY (self));

  g_strfreev (self->trusted_peers);
  self->trusted_peers = g_strdupv ((char **) identities);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TRUSTED_PEERS]);
}

/**
 * cp_etcd_registry_start_async:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 * @listen_address: where the peer listener listens (`HOST:PORT`, port 0
 *   for a free one)
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when started
 * @user_data: data for @callback
 *
 * Starts the registry: opens the peer listener (mutual TLS with
 * [property@EtcdRegistry:tls-certificate] and
 * [property@EtcdRegistry:tls-database], both required), attaches to the
 * broker, grants the host's lease and writes every provider already
 * registered, and lists the other hosts' providers. It completes when the
 * lease is held and the list is known; the watch, the renewals and the
 * writes of later changes go on until
 * [method@ConnectPlugin.EtcdRegistry.stop_async] or disposal. A broker
 * has at most one started registry; a registry starts once.
 *
 * Fails with %CP_ERROR_INVALID_ARGUMENT without credentials,
 * %CP_ERROR_FAILED_PRECONDITION when started before or when the broker
 * has another one, the listener's error, etcd's, or
 * %G_IO_ERROR_CANCELLED when @cancellable was cancelled before etcd
 * answered; then nothing stays (a lease granted meanwhile is revoked).
 */
void
cp_etcd_registry_start_async (CpEtcdRegistry      *self,
                              const char          *listen_address,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  g_return_if_fail (CP_IS_ETCD_REGISTRY (self));
  g_return_if_fail (listen_address != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_etcd_registry_start_async);
  g_task_set_check_cancellable (task, FALSE);
  if (self->started || self->broker == NULL || self->broker->etcd_registry != NULL)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_FAILED_PRECONDITION,
                               self->started ? "the etcd registry was started before"
                                             : "the broker has another etcd registry");
      return;
    }
  if (self->tls_certificate == NULL || self->tls_database == NULL)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                               "the etcd registry needs a TLS certificate and the hosts' CA");
      return;
    }
  self->started = TRUE;

  self->peer_server = cp_rpc_server_new ();
  g_object_set (self->peer_server, "tls-certificate", self->tls_certificate,
                "tls-database", self->tls_database,
                "tls-authentication-mode", G_TLS_AUTHENTICATION_REQUESTED, NULL);
  cp_rpc_server_add_prefix_handler (self->peer_server, CP_ROUTER_PREFIX, peer_handle, self, NULL);
  url = cp_rpc_server_listen (self->peer_server, listen_address, &error);
  if (url == NULL)
    {
      teardown (self);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (self->peer_url == NULL)
    {
      self->peer_url = g_steal_pointer (&url);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PEER_URL]);
    }
  self->broker->etcd_registry = self;
  cp_router_set_peer_tls (self->broker->router, self->tls_certificate, self->tls_database);

  self->start_task = g_steal_pointer (&task);
  grant (self);
  list (self);
}

/**
 * cp_etcd_registry_start_finish:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.EtcdRegistry.start_async].
 *
 * Returns: %TRUE when the registry runs
 */
gboolean
cp_etcd_registry_start_finish (CpEtcdRegistry  *self,
                               GAsyncResult    *result,
                               GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
revoke_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(JsonObject) response = NULL;
  GError *error = NULL;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (response == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * cp_etcd_registry_stop_async:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called when the lease is revoked
 * @user_data: data for @callback
 *
 * Stops the registry: the peer listener closes, the broker forgets the
 * other hosts' providers, and the host's lease is revoked, so its
 * providers leave the registry at once for every other host. A start in
 * progress fails with %G_IO_ERROR_CANCELLED.
 */
void
cp_etcd_registry_stop_async (CpEtcdRegistry      *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(JsonObject) request = NULL;
  gint64 lease;

  g_return_if_fail (CP_IS_ETCD_REGISTRY (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_etcd_registry_stop_async);
  if (self->start_task != NULL)
    {
      g_autoptr(GTask) start = g_steal_pointer (&self->start_task);

      g_task_return_new_error (start, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               "the etcd registry was stopped");
    }
  teardown (self);
  lease = self->lease;
  self->lease = 0;
  set_registered (self, FALSE);
  if (lease == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  request = lease_request (lease);
  cp_etcd_client_call_async (self->client, "/v3/lease/revoke", request, cancellable,
                             revoke_cb, g_steal_pointer (&task));
}

/**
 * cp_etcd_registry_stop_finish:
 * @self: a [class@ConnectPlugin.EtcdRegistry]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.EtcdRegistry.stop_async]. An error
 * means the revoke did not reach etcd: the host's providers then go when
 * the lease expires.
 *
 * Returns: %TRUE when the lease was revoked (or there was none)
 */
gboolean
cp_etcd_registry_stop_finish (CpEtcdRegistry  *self,
                              GAsyncResult    *result,
                              GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- test hooks ---- */

gint64
cp_etcd_registry_get_lease (CpEtcdRegistry *self)
{
  return self->lease;
}

guint
cp_etcd_registry_get_n_lists (CpEtcdRegistry *self)
{
  return self->n_lists;
}

void
cp_etcd_registry_abandon (CpEtcdRegistry *self)
{
  teardown (self);
  self->lease = 0;          /* left to expire */
  set_registered (self, FALSE);
}
