/* cp-etcd-discovery.c: plugin endpoints registered in etcd
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include "cp-etcd-discovery.h"
#include "cp-etcd-client-private.h"
#include "cp-etcd-watch-private.h"
#include "cp-error.h"
#include "cp-host-private.h"

/* Reconnection delays of the watch (and of the list while etcd is away). */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/**
 * CpEtcdDiscovery:
 *
 * A [iface@Discovery] answering the plugins registered in etcd (see
 * [class@ConnectPlugin.EtcdRegistration]): every key under
 * [property@EtcdDiscovery:prefix] (`PREFIX NAME/ID`) holds one plugin
 * endpoint as JSON (`{"name":…,"url":…,"version":…,"metadata":{…}}`).
 *
 * The discovery lists the prefix once (on the first discovery), then
 * watches it from the next revision and emits [signal@Discovery::changed]
 * when the set of live URLs changes: a plugin registered, revoked, or
 * gone because its lease expired. Several hosts using one etcd therefore
 * see one registry.
 *
 * When the watch breaks (etcd restarted, a network failure) it is
 * reopened with a growing delay (0.1 s to 5 s) from the last revision
 * seen plus one, so nothing in between is missed; when that revision was
 * compacted away meanwhile, etcd says so (`compact_revision`) and the
 * discovery lists the prefix again instead.
 *
 * etcd is spoken to over its HTTP/JSON gateway (`/v3/kv/range`,
 * `/v3/watch`), with libsoup; the endpoints are tried in turn. The watch
 * and its retries run in the thread-default main context the discovery
 * was created in (`changed` is emitted there); a discovery answers in the
 * caller's thread-default context, so cp_client_connect_sync () works.
 */

/* The calls in flight do not hold the discovery: dispose cancels them
 * (@cancellable, @watch_cancellable), and their callbacks, which then see
 * G_IO_ERROR_CANCELLED, return before touching it.
 *
 * States: not started (no list yet) → listing → watching ⇄ waiting to
 * reconnect (source armed), listing again after a compaction. The first
 * successful list makes it "synced": discover_async answers from the
 * entries at once from then on, and callers before that wait in
 * @waiters (failed together when a list fails while nothing is known). */
struct _CpEtcdDiscovery
{
  GObject parent_instance;

  GStrv endpoints;
  char *prefix;
  char *plugin_name;

  CpEtcdClient *client;
  GMainContext *context;        /* the creator's: the watch and retries run there */
  GCancellable *cancellable;    /* everything in flight; cancelled in dispose */
  GHashTable *entries;          /* key → CpEtcdEntry */
  gint64 revision;              /* the last revision applied */
  gboolean started;
  gboolean synced;
  GPtrArray *waiters;           /* discover tasks before the first list */
  CpEtcdWatch *watch;           /* the prefix's, from revision + 1 */
  GSource *retry;
  guint backoff_ms;
  GStrv urls;                   /* the live URLs as last announced */
};

enum {
  PROP_0,
  PROP_ENDPOINTS,
  PROP_PREFIX,
  PROP_PLUGIN_NAME,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void cp_etcd_discovery_iface_init (CpDiscoveryInterface *iface);
static void list (CpEtcdDiscovery *self);
static void open_watch (CpEtcdDiscovery *self);

G_DEFINE_FINAL_TYPE_WITH_CODE (CpEtcdDiscovery, cp_etcd_discovery, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (CP_TYPE_DISCOVERY,
                                                      cp_etcd_discovery_iface_init))

/* ---- entries and the URLs they offer ---- */

static gboolean
entry_matches (CpEtcdDiscovery    *self,
               CpEtcdEntry        *entry,
               const char * const *plugins)
{
  if (self->plugin_name != NULL && strcmp (entry->name, self->plugin_name) != 0)
    return FALSE;
  return plugins == NULL || plugins[0] == NULL || g_strv_contains (plugins, entry->name);
}

/* The URLs of the matching entries, in key order, without duplicates. */
static GStrv
collect_urls (CpEtcdDiscovery    *self,
              const char * const *plugins)
{
  g_autoptr(GList) keys = g_list_sort (g_hash_table_get_keys (self->entries),
                                       (GCompareFunc) strcmp);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (GList *l = keys; l != NULL; l = l->next)
    {
      CpEtcdEntry *entry = g_hash_table_lookup (self->entries, l->data);

      if (!entry_matches (self, entry, plugins) || !g_hash_table_add (seen, entry->url))
        continue;
      g_strv_builder_add (builder, entry->url);
    }
  return g_strv_builder_end (builder);
}

static void
announce (CpEtcdDiscovery *self)
{
  g_auto(GStrv) urls = collect_urls (self, NULL);

  if (cp_host_strv_replace (&self->urls, (const char * const *) urls))
    cp_discovery_emit_changed (CP_DISCOVERY (self));
}

static void
apply (CpEtcdDiscovery *self,
       CpEtcdKv        *kv)
{
  g_autoptr(GError) error = NULL;
  CpEtcdEntry *entry;

  if (kv->mod_revision > self->revision)
    self->revision = kv->mod_revision;
  if (kv->deleted)
    {
      g_hash_table_remove (self->entries, kv->key);
      return;
    }
  entry = cp_etcd_entry_parse (g_bytes_get_data (kv->value, NULL), g_bytes_get_size (kv->value),
                               &error);
  if (entry == NULL)
    {
      g_debug ("etcd discovery: ignoring %s: %s", kv->key, error->message);
      g_hash_table_remove (self->entries, kv->key);
      return;
    }
  g_hash_table_replace (self->entries, g_strdup (kv->key), entry);
}

/* ---- reconnecting ---- */

static gboolean
retry_cb (gpointer user_data)
{
  CpEtcdDiscovery *self = user_data;

  g_clear_pointer (&self->retry, g_source_unref);
  g_main_context_push_thread_default (self->context);
  if (self->synced)
    open_watch (self);
  else
    list (self);
  g_main_context_pop_thread_default (self->context);
  return G_SOURCE_REMOVE;
}

/* The watch or list failed: try again after the current delay, which
 * doubles up to BACKOFF_MAX_MS until a watch is created. */
static void
schedule_retry (CpEtcdDiscovery *self)
{
  cp_etcd_watch_drop (self->watch);
  if (self->retry != NULL || g_cancellable_is_cancelled (self->cancellable))
    return;
  self->retry = g_timeout_source_new (self->backoff_ms);
  g_source_set_callback (self->retry, retry_cb, self, NULL);
  g_source_set_static_name (self->retry, "[connectplugin] etcd discovery retry");
  g_source_attach (self->retry, self->context);
  self->backoff_ms = MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
}

/* ---- the watch ---- */

static void
watch_created (GObject *owner)
{
  CP_ETCD_DISCOVERY (owner)->backoff_ms = BACKOFF_MIN_MS;
}

static void
watch_events (GObject   *owner,
              GPtrArray *events)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (owner);

  for (guint i = 0; i < events->len; i++)
    apply (self, g_ptr_array_index (events, i));
  announce (self);
}

static void
watch_ended (GObject      *owner,
             gboolean      compacted,
             const GError *error)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (owner);

  if (compacted)
    {
      /* What changed since self->revision can only be learnt by listing. */
      self->synced = FALSE;
      list (self);
    }
  else
    schedule_retry (self);
}

static const CpEtcdWatchCallbacks watch_callbacks = { watch_created, watch_events, watch_ended };

static void
open_watch (CpEtcdDiscovery *self)
{
  cp_etcd_watch_open (self->watch, self->revision + 1, self->cancellable);
}

/* ---- the list ---- */

static void
complete_waiters (CpEtcdDiscovery *self,
                  const GError    *error)
{
  g_autoptr(GPtrArray) tasks = cp_host_waiters_take (&self->waiters);

  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);
      const char * const *plugins = g_object_get_data (G_OBJECT (task), "cp-plugins");
      g_auto(GStrv) urls = NULL;

      if (error != NULL)
        {
          g_task_return_error (task, g_error_copy (error));
          continue;
        }
      urls = collect_urls (self, plugins);
      if (urls[0] == NULL)
        g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE,
                                 "no plugin registered in etcd under %s", self->prefix);
      else
        g_task_return_pointer (task, g_steal_pointer (&urls), (GDestroyNotify) g_strfreev);
    }
}

static void
list_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  CpEtcdDiscovery *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) response = NULL;
  g_autoptr(GPtrArray) kvs = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_etcd_kv_free);
  g_autoptr(CpEtcdDiscovery) hold = NULL;
  gint64 revision = 0;

  response = cp_etcd_client_call_finish (CP_ETCD_CLIENT (source), result, &error);
  if (response != NULL)
    cp_etcd_parse_range (response, &revision, kvs, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  /* Waiters' callbacks and `changed` handlers may drop the last other
   * reference. */
  hold = g_object_ref (self);
  if (error != NULL)
    {
      g_debug ("etcd discovery: listing %s: %s", self->prefix, error->message);
      complete_waiters (self, error);
      schedule_retry (self);
      return;
    }
  g_debug ("etcd discovery: %u keys under %s at revision %" G_GINT64_FORMAT,
           kvs->len, self->prefix, revision);
  g_hash_table_remove_all (self->entries);
  self->revision = revision;
  for (guint i = 0; i < kvs->len; i++)
    apply (self, g_ptr_array_index (kvs, i));
  self->revision = revision;
  self->synced = TRUE;
  complete_waiters (self, NULL);
  announce (self);
  /* The first list may run in a caller's private context (as
   * cp_client_connect_sync () does it); the watch belongs in ours. */
  g_main_context_push_thread_default (self->context);
  open_watch (self);
  g_main_context_pop_thread_default (self->context);
}

static void
list (CpEtcdDiscovery *self)
{
  g_autoptr(JsonObject) request = json_object_new ();
  g_autofree char *end = cp_etcd_prefix_end (self->prefix);

  self->started = TRUE;
  cp_etcd_set_bytes (request, "key", self->prefix, strlen (self->prefix));
  cp_etcd_set_bytes (request, "range_end", end, strlen (end));
  cp_etcd_client_call_async (self->client, "/v3/kv/range", request, self->cancellable,
                             list_cb, self);
}

/* ---- CpDiscovery ---- */

static void
cp_etcd_discovery_discover_async (CpDiscovery         *discovery,
                                  const char * const  *plugins,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (discovery);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_auto(GStrv) urls = NULL;

  g_task_set_source_tag (task, cp_etcd_discovery_discover_async);
  if (!self->synced)
    {
      g_object_set_data_full (G_OBJECT (task), "cp-plugins", g_strdupv ((char **) plugins),
                              (GDestroyNotify) g_strfreev);
      cp_host_waiters_add (&self->waiters, task, NULL);
      if (!self->started)
        list (self);
      return;
    }
  urls = collect_urls (self, plugins);
  if (urls[0] == NULL)
    g_task_return_new_error (task, CP_ERROR, CP_ERROR_UNAVAILABLE,
                             "no plugin registered in etcd under %s", self->prefix);
  else
    g_task_return_pointer (task, g_steal_pointer (&urls), (GDestroyNotify) g_strfreev);
}

static char **
cp_etcd_discovery_discover_finish (CpDiscovery   *discovery,
                                   GAsyncResult  *result,
                                   GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, discovery), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
cp_etcd_discovery_iface_init (CpDiscoveryInterface *iface)
{
  iface->discover_async = cp_etcd_discovery_discover_async;
  iface->discover_finish = cp_etcd_discovery_discover_finish;
}

/* ---- GObject ---- */

static void
cp_etcd_discovery_constructed (GObject *object)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (object);

  G_OBJECT_CLASS (cp_etcd_discovery_parent_class)->constructed (object);
  if (self->prefix == NULL || self->prefix[0] == '\0')
    {
      g_free (self->prefix);
      self->prefix = g_strdup (CP_ETCD_DEFAULT_PREFIX);
    }
  self->client = cp_etcd_client_new ((const char * const *) self->endpoints);
  self->watch = cp_etcd_watch_new (self->client, self->prefix, "etcd discovery",
                                   &watch_callbacks, object);
}

static void
cp_etcd_discovery_dispose (GObject *object)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (object);

  g_cancellable_cancel (self->cancellable);
  if (self->retry != NULL)
    g_source_destroy (self->retry);
  g_clear_pointer (&self->retry, g_source_unref);
  cp_etcd_watch_drop (self->watch);

  G_OBJECT_CLASS (cp_etcd_discovery_parent_class)->dispose (object);
}

static void
cp_etcd_discovery_finalize (GObject *object)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (object);

  g_clear_pointer (&self->endpoints, g_strfreev);
  g_clear_pointer (&self->prefix, g_free);
  g_clear_pointer (&self->plugin_name, g_free);
  g_clear_pointer (&self->watch, cp_etcd_watch_free);
  g_clear_object (&self->client);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->entries, g_hash_table_unref);
  g_clear_pointer (&self->waiters, g_ptr_array_unref);
  g_clear_pointer (&self->urls, g_strfreev);

  G_OBJECT_CLASS (cp_etcd_discovery_parent_class)->finalize (object);
}

static void
cp_etcd_discovery_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_ENDPOINTS:
      g_value_set_boxed (value, self->endpoints);
      break;
    case PROP_PREFIX:
      g_value_set_string (value, self->prefix);
      break;
    case PROP_PLUGIN_NAME:
      g_value_set_string (value, self->plugin_name);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_etcd_discovery_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  CpEtcdDiscovery *self = CP_ETCD_DISCOVERY (object);

  switch (prop_id)
    {
    case PROP_ENDPOINTS:
      self->endpoints = g_value_dup_boxed (value);
      break;
    case PROP_PREFIX:
      self->prefix = g_value_dup_string (value);
      break;
    case PROP_PLUGIN_NAME:
      cp_etcd_discovery_set_plugin_name (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
cp_etcd_discovery_class_init (CpEtcdDiscoveryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = cp_etcd_discovery_constructed;
  object_class->dispose = cp_etcd_discovery_dispose;
  object_class->finalize = cp_etcd_discovery_finalize;
  object_class->get_property = cp_etcd_discovery_get_property;
  object_class->set_property = cp_etcd_discovery_set_property;

  /**
   * CpEtcdDiscovery:endpoints:
   *
   * etcd's client URLs (`http://host:2379`), tried in turn; %NULL or
   * empty means `http://127.0.0.1:2379`.
   */
  properties[PROP_ENDPOINTS] =
    g_param_spec_boxed ("endpoints", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdDiscovery:prefix:
   *
   * The key prefix plugins are registered under (keys `PREFIX NAME/ID`);
   * %NULL or empty means [const@ConnectPlugin.ETCD_DEFAULT_PREFIX].
   */
  properties[PROP_PREFIX] =
    g_param_spec_string ("prefix", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * CpEtcdDiscovery:plugin-name:
   *
   * When set, only the entries of the plugin of this name count (for
   * answers and for [signal@Discovery::changed]); %NULL for every plugin.
   */
  properties[PROP_PLUGIN_NAME] =
    g_param_spec_string ("plugin-name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
cp_etcd_discovery_init (CpEtcdDiscovery *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->cancellable = g_cancellable_new ();
  self->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) cp_etcd_entry_free);
  self->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  self->backoff_ms = BACKOFF_MIN_MS;
}

/**
 * cp_etcd_discovery_new:
 * @endpoints: (array zero-terminated=1) (nullable): etcd's client URLs
 * @prefix: (nullable): the key prefix, or %NULL for
 *   [const@ConnectPlugin.ETCD_DEFAULT_PREFIX]
 *
 * Creates a discovery of the plugins registered in the etcd at @endpoints
 * under @prefix. Nothing is sent before the first discovery.
 *
 * Returns: (transfer full): a new [class@ConnectPlugin.EtcdDiscovery]
 */
CpEtcdDiscovery *
cp_etcd_discovery_new (const char * const *endpoints,
                       const char         *prefix)
{
  return g_object_new (CP_TYPE_ETCD_DISCOVERY, "endpoints", endpoints, "prefix", prefix, NULL);
}

/**
 * cp_etcd_discovery_get_endpoints:
 * @self: a [class@ConnectPlugin.EtcdDiscovery]
 *
 * Gets etcd's client URLs, as given.
 *
 * Returns: (transfer none) (array zero-terminated=1) (nullable): the endpoints
 */
const char * const *
cp_etcd_discovery_get_endpoints (CpEtcdDiscovery *self)
{
  g_return_val_if_fail (CP_IS_ETCD_DISCOVERY (self), NULL);

  return (const char * const *) self->endpoints;
}

/**
 * cp_etcd_discovery_get_prefix:
 * @self: a [class@ConnectPlugin.EtcdDiscovery]
 *
 * Gets the key prefix watched.
 *
 * Returns: (transfer none): the prefix
 */
const char *
cp_etcd_discovery_get_prefix (CpEtcdDiscovery *self)
{
  g_return_val_if_fail (CP_IS_ETCD_DISCOVERY (self), NULL);

  return self->prefix;
}

/**
 * cp_etcd_discovery_get_plugin_name:
 * @self: a [class@ConnectPlugin.EtcdDiscovery]
 *
 * Gets the plugin name the entries are filtered on.
 *
 * Returns: (transfer none) (nullable): the name, or %NULL for every plugin
 */
const char *
cp_etcd_discovery_get_plugin_name (CpEtcdDiscovery *self)
{
  g_return_val_if_fail (CP_IS_ETCD_DISCOVERY (self), NULL);

  return self->plugin_name;
}

/**
 * cp_etcd_discovery_set_plugin_name:
 * @self: a [class@ConnectPlugin.EtcdDiscovery]
 * @plugin_name: (nullable): a plugin name, or %NULL for every plugin
 *
 * Counts only the entries of the plugin named @plugin_name; emits
 * [signal@Discovery::changed] when that changes the live URLs.
 */
void
cp_etcd_discovery_set_plugin_name (CpEtcdDiscovery *self,
                                   const char      *plugin_name)
{
  g_return_if_fail (CP_IS_ETCD_DISCOVERY (self));

  if (g_strcmp0 (self->plugin_name, plugin_name) == 0)
    return;
  g_free (self->plugin_name);
  self->plugin_name = g_strdup (plugin_name);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PLUGIN_NAME]);
  if (self->synced)
    announce (self);
}

/**
 * cp_etcd_discovery_get_urls:
 * @self: a [class@ConnectPlugin.EtcdDiscovery]
 *
 * Gets the URLs of the live entries (those of
 * [property@EtcdDiscovery:plugin-name] when set) in key order, as last
 * seen in etcd; empty before the first discovery.
 *
 * Returns: (transfer full) (array zero-terminated=1): the URLs
 */
char **
cp_etcd_discovery_get_urls (CpEtcdDiscovery *self)
{
  g_return_val_if_fail (CP_IS_ETCD_DISCOVERY (self), NULL);

  return collect_urls (self, NULL);
}

/**
 * cp_etcd_discovery_get_revision:
 * @self: a [class@ConnectPlugin.EtcdDiscovery]
 *
 * Gets the etcd revision the entries reflect: the list's, then that of
 * the last change seen through the watch.
 *
 * Returns: the revision, 0 before the first list
 */
gint64
cp_etcd_discovery_get_revision (CpEtcdDiscovery *self)
{
  g_return_val_if_fail (CP_IS_ETCD_DISCOVERY (self), 0);

  return self->revision;
}
