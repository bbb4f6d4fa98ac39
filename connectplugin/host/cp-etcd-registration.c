/* cp-etcd-registration.c: a plugin endpoint registered in etcd under a lease
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-etcd-registration.h"
#include "cp-etcd-discovery.h"
#include "cp-etcd-client-private.h"
#include "cp-error.h"

/**
 * CpEtcdRegistration:
 *
 * One plugin endpoint in etcd, for [class@ConnectPlugin.EtcdDiscovery]s
 * (on this host or others) to find: the key `PREFIX NAME/ID` holds
 * `{"name":…,"url":…,"version":…,"metadata":{…}}` and is attached to a
 * lease of [property@EtcdRegistration:ttl] seconds.
 *
 * [method@ConnectPlugin.EtcdRegistration.register_async] grants the
 * lease and writes the key; the registration then renews the lease every
 * third of its TTL (`/v3/lease/keepalive`). When the registering process
 * dies, renewals stop and etcd deletes the key when the lease expires;
 * [method@ConnectPlugin.EtcdRegistration.revoke_async] deletes it at once.
 * When a renewal finds the lease gone (etcd lost it, or the host was cut
 * off longer than the TTL), the registration registers again with a new
 * lease. Disposing the object stops the renewals and sends a revoke
 * without waiting for it. Renewals run in the thread-default main context
 * the registration was created in.
 */

/* States: unregistered → registering (grant, put) → registered (timer
 * renewing) → revoked (timer stopped, revoke sent). A renewal that finds
 * the lease gone goes back to registering. */
struct _CpEtcdRegistration
{
  GObject parent_instance;

  GStrv endpoints;
  char *prefix;
  char *name;
  char *id;
  char *url;
  char *version;
  guint ttl;
  GHashTable *metadata;

  char *key;                  /* prefix + name + "/" + id */
  CpEtcdClient *client;
  GMainContext *context;      /* the creator's: renewals run there */
  GCancellable *cancellable;  /* renewals and re-registrations */
  gint64 lease;               /* 0: none */
  gboolean registered;
  GSource *renew;
  guint generation;           /* bumped by revoke: older grants and puts are void */
};

enum {
  PROP_0,
  PROP_ENDPOINTS,
  PROP_PREFIX,
  PROP_NAME,
  PROP_ID,
  PROP_URL,
  PROP_VERSION,
  PROP_TTL,
  PROP_REGISTERED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (CpEtcdRegistration, cp_etcd_registration, G_TYPE_OBJECT)

static JsonObject *
lease_request (gint64 lease)
{
  JsonObject *request = json_object_new ();
  g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, lease);

  json_object_set_string_member (request, "ID", id);
  return request;
}

static void
set_registered (CpEtcdRegistration *self,
                gboolean            registered)
{
  if (self->registered == registered)
    return;
  self->registered = registered;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_REGISTERED]);
}

static void
stop_renewing (CpEtcdRegistration *self)
{
  if (self->renew != NULL)
    g_source_destroy (self->renew);
  g_clear_pointer (&self->renew, g_source_unref);
}

/* ---- registering: grant, then put ---- */

static void
revoke_quietly_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(JsonObject) response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, NULL);
}

/* A revoke came while @task was granting or writing: it fails, and what
 * it obtained must not live on. */
static gboolean
revoked_meanwhile (CpEtcdRegistration *self,
                   GTask              *task)
{
  if (GPOINTER_TO_UINT (g_task_get_task_data (task)) == self->generation)
    return FALSE;
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           "the registration was revoked meanwhile");
  return TRUE;
}

static void start_renewing (CpEtcdRegistration *self);

static void
put_cb (GObject      *source,
        GAsyncResult *result,
        gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CpEtcdRegistration *self = g_task_get_source_object (task);
  g_autoptr(JsonObject) response = NULL;
  GError *error = NULL;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (response == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (revoked_meanwhile (self, task))
    return;  /* the revoke took the lease, and the key with it */
  set_registered (self, TRUE);
  start_renewing (self);
  g_task_return_boolean (task, TRUE);
}

static void
grant_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CpEtcdRegistration *self = g_task_get_source_object (task);
  g_autoptr(JsonObject) response = NULL;
  g_autoptr(JsonObject) request = NULL;
  g_autofree char *value = NULL;
  g_autofree char *lease = NULL;
  GCancellable *cancellable;
  GError *error = NULL;

  gint64 granted = 0;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (response == NULL || !cp_etcd_get_int64 (response, "ID", &granted, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (granted == 0)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_INTERNAL, "etcd: the lease grant has no ID");
      return;
    }
  if (revoked_meanwhile (self, task))
    {
      g_autoptr(JsonObject) revoke = lease_request (granted);

      cp_etcd_client_call_async (self->client, "/v3/lease/revoke", revoke, NULL,
                                 revoke_quietly_cb, NULL);
      return;
    }
  self->lease = granted;
  value = cp_etcd_entry_to_json (self->name, self->url, self->version, self->metadata);
  lease = g_strdup_printf ("%" G_GINT64_FORMAT, self->lease);
  request = json_object_new ();
  cp_etcd_set_bytes (request, "key", self->key, strlen (self->key));
  cp_etcd_set_bytes (request, "value", value, strlen (value));
  json_object_set_string_member (request, "lease", lease);
  cancellable = g_task_get_cancellable (task);
  cp_etcd_client_call_async (self->client, "/v3/kv/put", request, cancellable,
                             put_cb, g_steal_pointer (&task));
}

static void
grant (CpEtcdRegistration *self,
       GTask              *task)
{
  g_autoptr(JsonObject) request = json_object_new ();

  json_object_set_int_member (request, "TTL", self->ttl);
  g_task_set_task_data (task, GUINT_TO_POINTER (self->generation), NULL);
  cp_etcd_client_call_async (self->client, "/v3/lease/grant", request,
                             g_task_get_cancellable (task), grant_cb, g_object_ref (task));
}

/* ---- renewing ---- */

static void
reregister_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* etcd still away: try again at the next tick. */
      g_debug ("etcd registration: registering again: %s", error->message);
      start_renewing (CP_ETCD_REGISTRATION (source));
    }
}

static void
keepalive_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(CpEtcdRegistration) self = user_data;
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
      g_debug ("etcd registration: renewing lease: %s", error->message);
      start_renewing (self);
      return;
    }
  if (ttl > 0)
    {
      start_renewing (self);
      return;
    }
  /* TTL 0: the lease is gone, and the key with it. */
  g_debug ("etcd registration: lease of %s expired, registering again", self->key);
  set_registered (self, FALSE);
  self->lease = 0;
  {
    g_autoptr(GTask) task = g_task_new (self, self->cancellable, reregister_cb, NULL);

    grant (self, task);
  }
}

static gboolean
renew_cb (gpointer user_data)
{
  CpEtcdRegistration *self = user_data;
  g_autoptr(JsonObject) request = NULL;

  g_clear_pointer (&self->renew, g_source_unref);
  g_main_context_push_thread_default (self->context);
  if (self->lease == 0)
    {
      g_autoptr(GTask) task = g_task_new (self, self->cancellable, reregister_cb, NULL);

      grant (self, task);
    }
  else
    {
      request = lease_request (self->lease);
      cp_etcd_client_call_async (self->client, "/v3/lease/keepalive", request, self->cancellable,
                                 keepalive_cb, g_object_ref (self));
    }
  g_main_context_pop_thread_default (self->context);
  return G_SOURCE_REMOVE;
}

static void
start_renewing (CpEtcdRegistration *self)
{
  stop_renewing (self);
  self->renew = g_timeout_source_new (MAX (self->ttl * 1000 / 3, 100));
  g_source_set_callback (self->renew, renew_cb, self, NULL);
  g_source_set_static_name (self->renew, "[connectplugin] etcd lease renewal");
  g_source_attach (self->renew, self->context);
}

/* ---- GObject ---- */

static void
cp_etcd_registration_constructed (GObject *object)
{
  CpEtcdRegistration *self = CP_ETCD_REGISTRATION (object);

  G_OBJECT_CLASS (cp_etcd_registration_parent_class)->constructed (object);
  if (self->prefix == NULL || self->prefix[0] == '\0')
    {
      g_free (self->prefix);
      self->prefix = g_strdup (CP_ETCD_DEFAULT_PREFIX);
    }
  if (self->id == NULL || self->id[0] == '\0')
    {
      g_free (self->id);
      self->id = g_uuid_string_random ();
    }
  self->key = g_strconcat (self->prefix, self->name != NULL ? self->name : "", "/", self->id, NULL);
  self->client = cp_etcd_client_new ((const char * const *) self->endpoints);
}

static void
cp_etcd_registration_dispose (GObject *object)
{
  CpEtcdRegistration *self = CP_ETCD_REGISTRATION (object);

  g_cancellable_cancel (self->cancellable);
  stop_renewing (self);
  if (self->lease != 0 && self->client != NULL)
    {
      g_autoptr(JsonObject) request = lease_request (self->lease);

      /* The call holds the client, not us. */
      cp_etcd_client_call_async (self->client, "/v3/lease/revoke", request, NULL,
                                 revoke_quietly_cb, NULL);
      self->lease = 0;
    }

  G_OBJECT_CLASS (cp_etcd_registration_parent_class)->dispose (object);
}

static void
cp_etcd_registration_finalize (GObject *object)
{
  CpEtcdRegistration *self = CP_ETCD_REGISTRATION (object);

  g_clear_pointer (&self->endpoints, g_strfreev);
  g_clear_pointer (&self->prefix, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->url, g_free);
  g_clear_pointer (&self->version, g_free);
  g_clear_pointer (&self->key, g_free);
  g_clear_pointer (&self->metadata, g_hash_table_unref);
  g_clear_object (&self->client);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (cp_etcd_registration_parent_class)->finalize (object);
}

static void
cp_etcd_registration_get_property (GObject    *object,
                                   guint       prop_id,
                                   GValue     *value,
                                   GParamSpec *pspec)
{
  CpEtcdRegistration *self = CP_ETCD_REGISTRATION (object);

  switch (prop_id)
    {
    case PROP_ENDPOINTS:
      g_value_set_boxed (value, self->endpoints);
      break;
    case PROP_PREFIX:
      g_value_set_string (value, self->prefix);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    case PROP_VERSION:
      g_value_set_string (value, self->version);
      break;
    case PROP_TTL:
      g_value_set_uint (value, self->ttl);
      break;
    case PROP_REGISTERED:
      g_value_set_boolean (value, self->registered);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_etcd_registration_set_property (GObject      *object,
                                   guint         prop_id,
                                   const GValue *value,
                                   GParamSpec   *pspec)
{
  CpEtcdRegistration *self = CP_ETCD_REGISTRATION (object);

  switch (prop_id)
    {
    case PROP_ENDPOINTS:
      self->endpoints = g_value_dup_boxed (value);
      break;
    case PROP_PREFIX:
      self->prefix = g_value_dup_string (value);
      break;
    case PROP_NAME:
      self->name = g_value_dup_string (value);
      break;
    case PROP_ID:
      self->id = g_value_dup_string (value);
      break;
    case PROP_URL:
      self->url = g_value_dup_string (value);
      break;
    case PROP_VERSION:
      self->version = g_value_dup_string (value);
      break;
    case PROP_TTL:
      self->ttl = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static GParamSpec *
construct_string (const char *name)
{
  return g_param_spec_string (name, NULL, NULL, NULL,
                              G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
}

static void
cp_etcd_registration_class_init (CpEtcdRegistrationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_etcd_registration_constructed;
  object_class->dispose = cp_etcd_registration_dispose;
  object_class->finalize = cp_etcd_registration_finalize;
  object_class->get_property = cp_etcd_registration_get_property;
  object_class->set_property = cp_etcd_registration_set_property;

  /**
   * CpEtcdRegistration:endpoints:
   *
   * etcd's client URLs, tried in turn; %NULL or empty means
   * `http://127.0.0.1:2379`.
   */
  properties[PROP_ENDPOINTS] =
    g_param_spec_boxed ("endpoints", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * CpEtcdRegistration:prefix:
   *
   * The key prefix; %NULL or empty means
   * [const@ConnectPlugin.ETCD_DEFAULT_PREFIX].
   */
  properties[PROP_PREFIX] = construct_string ("prefix");
  /**
   * CpEtcdRegistration:name:
   *
   * The plugin's name, as discoveries are asked for it (`kv`).
   */
  properties[PROP_NAME] = construct_string ("name");
  /**
   * CpEtcdRegistration:id:
   *
   * What tells this instance from others of the same plugin (the last
   * part of the key); %NULL makes a random UUID.
   */
  properties[PROP_ID] = construct_string ("id");
  /**
   * CpEtcdRegistration:url:
   *
   * The URL the plugin serves (`https://10.0.0.5:7001`).
   */
  properties[PROP_URL] = construct_string ("url");
  /**
   * CpEtcdRegistration:version:
   *
   * The plugin's version, for readers of the registry; %NULL for none.
   */
  properties[PROP_VERSION] = construct_string ("version");
  /**
   * CpEtcdRegistration:ttl:
   *
   * The lease's time to live in seconds: how long the entry outlives the
   * process that registered it.
   */
  properties[PROP_TTL] =
    g_param_spec_uint ("ttl", NULL, NULL, 1, G_MAXINT32, 10,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * CpEtcdRegistration:registered:
   *
   * Whether the key is in etcd under a live lease, as far as this object
   * knows.
   */
  properties[PROP_REGISTERED] =
    g_param_spec_boolean ("registered", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_etcd_registration_init (CpEtcdRegistration *self)
{
  self->ttl = 10;
  self->context = g_main_context_ref_thread_default ();
  self->cancellable = g_cancellable_new ();
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

/**
 * cp_etcd_registration_new:
 * @endpoints: (array zero-terminated=1) (nullable): etcd's client URLs
 * @prefix: (nullable): the key prefix, or %NULL for
 *   [const@ConnectPlugin.ETCD_DEFAULT_PREFIX]
 * @name: the plugin's name
 * @url: the URL the plugin serves
 *
 * Creates a registration of @url as an instance of the plugin @name,
 * with a random id and a TTL of 10 seconds (set
 * [property@EtcdRegistration:id] and [property@EtcdRegistration:ttl] with
 * g_object_new() for others). Nothing is sent before
 * [method@ConnectPlugin.EtcdRegistration.register_async].
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.EtcdRegistration]
 */
CpEtcdRegistration *
cp_etcd_registration_new (const char * const *endpoints,
                          const char         *prefix,
                          const char         *name,
                          const char         *url)
{
  g_return_val_if_fail (name != NULL && name[0] != '\0' && strchr (name, '/') == NULL, NULL);
  g_return_val_if_fail (url != NULL, NULL);

  return g_object_new (CP_TYPE_ETCD_REGISTRATION, "endpoints", endpoints, "prefix", prefix,
                       "name", name, "url", url, NULL);
}

/**
 * cp_etcd_registration_set_metadata:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 * @key: a metadata key
 * @value: (nullable): its value, or %NULL to remove it
 *
 * Sets one entry of the metadata stored with the endpoint; it is written
 * at the next registration.
 */
void
cp_etcd_registration_set_metadata (CpEtcdRegistration *self,
                                   const char         *key,
                                   const char         *value)
{
  g_return_if_fail (CP_IS_ETCD_REGISTRATION (self));
  g_return_if_fail (key != NULL);

  if (value == NULL)
    g_hash_table_remove (self->metadata, key);
  else
    g_hash_table_replace (self->metadata, g_strdup (key), g_strdup (value));
}

/**
 * cp_etcd_registration_register_async:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async) (closure user_data): called when the key is written
 * @user_data: data for @callback
 *
 * Grants a lease of [property@EtcdRegistration:ttl] seconds, writes the
 * key under it and starts renewing it. Registering again replaces the
 * lease (the old one is revoked).
 */
void
cp_etcd_registration_register_async (CpEtcdRegistration  *self,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_ETCD_REGISTRATION (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_etcd_registration_register_async);
  if (self->name == NULL || self->url == NULL)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                               "an etcd registration needs a name and a URL");
      return;
    }
  stop_renewing (self);
  /* Registering again: the old lease (and its key) goes. */
  if (self->lease != 0)
    {
      g_autoptr(JsonObject) revoke = lease_request (self->lease);

      cp_etcd_client_call_async (self->client, "/v3/lease/revoke", revoke, NULL,
                                 revoke_quietly_cb, NULL);
      self->lease = 0;
      set_registered (self, FALSE);
    }
  grant (self, task);
}

/**
 * cp_etcd_registration_register_finish:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.EtcdRegistration.register_async].
 * Errors: `unavailable` when etcd cannot be reached, etcd's own code
 * (in the CP_ERROR domain), or %G_IO_ERROR_CANCELLED when
 * [method@ConnectPlugin.EtcdRegistration.revoke_async] was called meanwhile.
 *
 * Returns: whether the endpoint is registered
 */
gboolean
cp_etcd_registration_register_finish (CpEtcdRegistration  *self,
                                      GAsyncResult        *result,
                                      GError             **error)
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
 * cp_etcd_registration_revoke_async:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async) (closure user_data): called when etcd has revoked the lease
 * @user_data: data for @callback
 *
 * Stops renewing and revokes the lease, which deletes the key at once.
 * [method@ConnectPlugin.EtcdRegistration.register_async] may register
 * again afterwards.
 */
void
cp_etcd_registration_revoke_async (CpEtcdRegistration  *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(JsonObject) request = NULL;

  g_return_if_fail (CP_IS_ETCD_REGISTRATION (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_etcd_registration_revoke_async);
  stop_renewing (self);
  /* Renewals and re-registrations in flight end here. */
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  self->generation++;
  set_registered (self, FALSE);
  if (self->lease == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  request = lease_request (self->lease);
  self->lease = 0;
  cp_etcd_client_call_async (self->client, "/v3/lease/revoke", request, cancellable,
                             revoke_cb, g_steal_pointer (&task));
}

/**
 * cp_etcd_registration_revoke_finish:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 * @result: the [iface@Gio.AsyncResult] given to the callback
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.EtcdRegistration.revoke_async]. When it
 * fails, the key still goes away when the lease expires.
 *
 * Returns: whether etcd revoked the lease
 */
gboolean
cp_etcd_registration_revoke_finish (CpEtcdRegistration  *self,
                                    GAsyncResult        *result,
                                    GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * cp_etcd_registration_get_key:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 *
 * Gets the etcd key of the entry: `PREFIX NAME/ID`.
 *
 * Returns: (transfer none): the key
 */
const char *
cp_etcd_registration_get_key (CpEtcdRegistration *self)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRATION (self), NULL);

  return self->key;
}

/**
 * cp_etcd_registration_get_lease:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 *
 * Gets the ID of the lease the key is attached to.
 *
 * Returns: the lease ID, 0 when not registered
 */
gint64
cp_etcd_registration_get_lease (CpEtcdRegistration *self)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRATION (self), 0);

  return self->lease;
}

/**
 * cp_etcd_registration_get_registered:
 * @self: a [class@ConnectPlugin.EtcdRegistration]
 *
 * Gets [property@EtcdRegistration:registered].
 *
 * Returns: whether the key is registered under a live lease
 */
gboolean
cp_etcd_registration_get_registered (CpEtcdRegistration *self)
{
  g_return_val_if_fail (CP_IS_ETCD_REGISTRATION (self), FALSE);

  return self->registered;
}
