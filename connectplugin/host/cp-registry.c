/* cp-registry.c: the host's ServiceRegistry and PluginLifecycle
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connect-plugin-go's registry.go and lifecycle.go, with every call
 * authenticated by runtime id and token, a cap on registrations per plugin,
 * allow-lists per self id, semver min_version, the four selection
 * strategies and watchers whose memory is bounded: each watcher sends one
 * event at a time (cp_invocation_send_message_async() completes when the
 * connection takes more) and keeps at most max-watch-queue events; past
 * that its queue collapses to one resync (the state when it is sent).
 *
 * With a CpEtcdRegistry attached (cp-etcd-registry.c), every local
 * provider is mirrored into etcd as it comes, changes health and goes, and
 * the providers other hosts published there are kept beside the local
 * ones ("remote" providers: no instance, reached through their host's
 * router); discovery and watches answer local providers first, then remote
 * ones.
 */
#include "cp-registry-private.h"

#include <string.h>

#include "cp-etcd-registry-private.h"

#include "cp-error.h"
#include "cp-runtime-identity-private.h"
#include "cp-semver-private.h"
#include "connectplugin/protocol/lifecycle.cp.h"

typedef struct {
  char *registration_id;
  char *service_type;
  char *version;
  char *endpoint_path;          /* NULL for a remote provider */
  GHashTable *metadata;         /* char* → char* */
  CpPluginInstance *instance;   /* ref; NULL for a remote provider */
  char *runtime_id;
  /* A remote provider: its etcd key, its host, that host's router, and
   * the health it published. */
  char *key;
  char *host_id;
  char *router_url;
  CpHealthState health;
} Provider;

typedef struct _Watcher Watcher;

typedef struct {
  GPtrArray *providers;         /* Provider* (owned), registration order */
  GPtrArray *remote;            /* Provider* (owned) of other hosts, in key order */
  GPtrArray *watchers;          /* Watcher* (ref) */
  guint rr_index;
} TypeEntry;

struct _Watcher {
  CpRegistry *registry;         /* NULL once dropped */
  CpInvocation *invocation;
  char *service_type;
  GQueue queue;                 /* CpWatchServiceEvent*, or NULL: a resync */
  gboolean sending;
  gulong cancelled_id;
};

struct _CpRegistry {
  CpBroker *broker;
  CpServiceRegistry *service;
  CpPluginLifecycle *lifecycle;
  GHashTable *types;            /* service type → TypeEntry* */
  GHashTable *registrations;    /* registration id → Provider* (borrowed) */
  GHashTable *counts;           /* runtime id → number of registrations */
  GHashTable *allowed;          /* self id → set of service types */
  GHashTable *strategies;       /* service type → strategy + 1 */
  GHashTable *remote;           /* etcd key → Provider* (borrowed: in its type's remote) */
  GRand *rand;
  guint n_resyncs;
};

/* ------------------------------------------------------------------ */
/* Providers and types                                                  */

static void
provider_free (Provider *provider)
{
  g_free (provider->registration_id);
  g_free (provider->service_type);
  g_free (provider->version);
  g_free (provider->endpoint_path);
  g_clear_pointer (&provider->metadata, g_hash_table_unref);
  g_clear_object (&provider->instance);
  g_free (provider->runtime_id);
  g_free (provider->key);
  g_free (provider->host_id);
  g_free (provider->router_url);
  g_free (provider);
}

static void watcher_unref (Watcher *watcher);

static void
type_entry_free (TypeEntry *entry)
{
  g_ptr_array_unref (entry->providers);
  g_ptr_array_unref (entry->remote);
  g_ptr_array_unref (entry->watchers);
  g_free (entry);
}

static TypeEntry *
ensure_type (CpRegistry *registry,
             const char *service_type)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);

  if (entry == NULL)
    {
      entry = g_new0 (TypeEntry, 1);
      entry->providers = g_ptr_array_new_with_free_func ((GDestroyNotify) provider_free);
      entry->remote = g_ptr_array_new_with_free_func ((GDestroyNotify) provider_free);
      entry->watchers = g_ptr_array_new_with_free_func ((GDestroyNotify) watcher_unref);
      g_hash_table_insert (registry->types, g_strdup (service_type), entry);
    }
  return entry;
}

/* Forgets a type nobody provides or watches (bounds the table). */
static void
maybe_drop_type (CpRegistry *registry,
                 const char *service_type)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);

  if (entry != NULL && entry->providers->len == 0 && entry->remote->len == 0 &&
      entry->watchers->len == 0)
    g_hash_table_remove (registry->types, service_type);
}

/* Unhealthy providers and those being removed get no new calls;
 * degraded ones still do. */
static CpHealthState
provider_health (Provider *provider)
{
  if (provider->instance == NULL)
    return provider->health;
  return cp_plugin_instance_get_health_state (provider->instance);
}

static gboolean
provider_available (Provider *provider)
{
  if (provider->instance == NULL)
    return provider->health != CP_HEALTH_STATE_UNHEALTHY;
  return cp_plugin_instance_get_routable (provider->instance) &&
         cp_plugin_instance_get_health_state (provider->instance) != CP_HEALTH_STATE_UNHEALTHY;
}

/* A remote provider's endpoint is this host's router path too: the
 * plugin calls its own host, which forwards to the provider's. */
static CpServiceEndpoint *
endpoint_new (Provider *provider)
{
  CpServiceEndpoint *endpoint = cp_service_endpoint_new ();
  const char *runtime_id = provider->runtime_id;
  g_autofree char *url = g_strdup_printf ("/services/%s/%s", provider->service_type, runtime_id);

  cp_service_endpoint_set_provider_id (endpoint, runtime_id);
  cp_service_endpoint_set_version (endpoint, provider->version);
  cp_service_endpoint_set_endpoint_url (endpoint, url);
  if (provider->metadata != NULL)
    cp_service_endpoint_set_metadata (endpoint, provider->metadata);
  return endpoint;
}

/* buildServiceEventLocked: the first available provider, degraded or
 * available, or unavailable. */
static CpWatchServiceEvent *
build_event (CpRegistry *registry,
             const char *service_type)
{
  CpWatchServiceEvent *event = cp_watch_service_event_new ();
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);

  cp_watch_service_event_set_service_type (event, service_type);
  cp_watch_service_event_set_state (event, CP_SERVICE_STATE_UNAVAILABLE);
  /* Local providers first, then those of other hosts. */
  for (guint i = 0; entry != NULL && i < entry->providers->len + entry->remote->len; i++)
    {
      Provider *provider = i < entry->providers->len ? entry->providers->pdata[i]
                                                     : entry->remote->pdata[i - entry->providers->len];
      g_autoptr(CpServiceEndpoint) endpoint = NULL;

      if (!provider_available (provider))
        continue;
      endpoint = endpoint_new (provider);
      cp_watch_service_event_set_state (event,
        provider_health (provider) == CP_HEALTH_STATE_DEGRADED
          ? CP_SERVICE_STATE_DEGRADED : CP_SERVICE_STATE_AVAILABLE);
      cp_watch_service_event_set_endpoint (event, endpoint);
      break;
    }
  return event;
}

/* ------------------------------------------------------------------ */
/* Watchers                                                             */

/* Queue entries: events, or NULL for a resync. */
static void
event_free (gpointer event)
{
  if (event != NULL)
    g_object_unref (event);
}

static Watcher *
watcher_ref (Watcher *watcher)
{
  return g_atomic_rc_box_acquire (watcher);
}

static void
watcher_clear (Watcher *watcher)
{
  g_queue_clear_full (&watcher->queue, event_free);
  g_clear_object (&watcher->invocation);
  g_free (watcher->service_type);
}

static void
watcher_unref (Watcher *watcher)
{
  g_atomic_rc_box_release_full (watcher, (GDestroyNotify) watcher_clear);
}

/* Ends the watch: the call is answered (harmless if already over) and the
 * watcher leaves its type. */
static void
watcher_drop (Watcher *watcher)
{
  CpRegistry *registry = watcher->registry;
  g_autofree char *service_type = g_strdup (watcher->service_type);
  TypeEntry *entry;

  if (registry == NULL)
    return;
  watcher->registry = NULL;
  g_cancellable_disconnect (cp_invocation_get_cancellable (watcher->invocation),
                            watcher->cancelled_id);
  watcher->cancelled_id = 0;
  g_queue_clear_full (&watcher->queue, event_free);
  cp_invocation_return_ok (watcher->invocation);
  entry = g_hash_table_lookup (registry->types, service_type);
  if (entry != NULL)
    g_ptr_array_remove_fast (entry->watchers, watcher);
  maybe_drop_type (registry, service_type);
}

static void watcher_pump (Watcher *watcher);

static void
on_event_sent (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  Watcher *watcher = user_data;

  watcher->sending = FALSE;
  if (!cp_invocation_send_message_finish (CP_INVOCATION (source), result, &error))
    watcher_drop (watcher);
  else if (watcher->registry != NULL)
    watcher_pump (watcher);
  watcher_unref (watcher);
}

/* Sends the next queued event unless one is on its way. */
static void
watcher_pump (Watcher *watcher)
{
  g_autoptr(CpWatchServiceEvent) event = NULL;

  if (watcher->sending || g_queue_is_empty (&watcher->queue) || watcher->registry == NULL)
    return;
  event = g_queue_pop_head (&watcher->queue);
  if (event == NULL)
    event = build_event (watcher->registry, watcher->service_type);
  watcher->sending = TRUE;
  cp_invocation_send_message_async (watcher->invocation, CP_MESSAGE (event), NULL,
                                    on_event_sent, watcher_ref (watcher));
}

/* Queues @event (transfer full; NULL: a resync). A resync already at the
 * tail covers it; a full queue collapses into one resync. */
static void
watcher_push (Watcher             *watcher,
              CpWatchServiceEvent *event)
{
  CpRegistry *registry = watcher->registry;

  if (!g_queue_is_empty (&watcher->queue) && g_queue_peek_tail (&watcher->queue) == NULL)
    {
      g_clear_object (&event);
      return;
    }
  if (g_queue_get_length (&watcher->queue) >= MAX (registry->broker->max_watch_queue, 1))
    {
      g_queue_clear_full (&watcher->queue, event_free);
      g_clear_object (&event);
      registry->n_resyncs++;
    }
  g_queue_push_tail (&watcher->queue, event);
  watcher_pump (watcher);
}

static void
notify_watchers (CpRegistry *registry,
                 const char *service_type)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);
  g_autoptr(CpWatchServiceEvent) event = NULL;

  if (entry == NULL || entry->watchers->len == 0)
    return;
  event = build_event (registry, service_type);
  for (guint i = 0; i < entry->watchers->len; i++)
    watcher_push (entry->watchers->pdata[i], g_object_ref (event));
}

static gboolean
drop_cancelled (gpointer user_data)
{
  watcher_drop (user_data);
  return G_SOURCE_REMOVE;
}

/* The client went away: drop the watcher from the broker's context. */
static void
on_watch_cancelled (GCancellable *cancellable,
                    Watcher      *watcher)
{
  CpRegistry *registry = watcher->registry;
  g_autoptr(GSource) source = NULL;

  if (registry == NULL)
    return;
  /* Never inline: watcher_drop() disconnects this very handler. */
  source = g_idle_source_new ();
  g_source_set_callback (source, drop_cancelled, watcher_ref (watcher),
                         (GDestroyNotify) watcher_unref);
  g_source_attach (source, registry->broker->context);
}

/* ------------------------------------------------------------------ */
/* Selection                                                            */

static guint
provider_weight (Provider *provider)
{
  const char *text = provider->metadata != NULL ? g_hash_table_lookup (provider->metadata, "weight") : NULL;
  guint64 weight;

  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, 1000000, &weight, NULL))
    return 1;
  return (guint) weight;
}

static CpSelectionStrategy
strategy_of (CpRegistry *registry,
             const char *service_type)
{
  gpointer value = g_hash_table_lookup (registry->strategies, service_type);

  return value != NULL ? GPOINTER_TO_INT (value) - 1 : CP_SELECTION_FIRST;
}

static Provider *
apply_strategy (CpRegistry *registry,
                TypeEntry  *entry,
                const char *service_type,
                GPtrArray  *available)
{
  guint64 total = 0, draw;

  switch (strategy_of (registry, service_type))
    {
    case CP_SELECTION_ROUND_ROBIN:
      {
        Provider *provider = available->pdata[entry->rr_index % available->len];

        entry->rr_index = (entry->rr_index % available->len + 1) % available->len;
        return provider;
      }
    case CP_SELECTION_RANDOM:
      return available->pdata[g_rand_int_range (registry->rand, 0, available->len)];
    case CP_SELECTION_WEIGHTED:
      for (guint i = 0; i < available->len; i++)
        total += provider_weight (available->pdata[i]);
      /* total ≤ 100 × 10⁶ per plugin cap × providers: fits a double draw. */
      draw = (guint64) (g_rand_double (registry->rand) * (double) total);
      for (guint i = 0; i < available->len; i++)
        {
          guint w = provider_weight (available->pdata[i]);

          if (draw < w)
            return available->pdata[i];
          draw -= w;
        }
      return available->pdata[available->len - 1];
    case CP_SELECTION_FIRST:
    default:
      return available->pdata[0];
    }
}

/* By version, then health, then the type's strategy, among @providers;
 * NULL when none is available. */
static Provider *
select_among (CpRegistry *registry,
              TypeEntry  *entry,
              const char *service_type,
              GPtrArray  *providers,
              const char *min_version,
              gboolean   *compatible)
{
  g_autoptr(GPtrArray) available = g_ptr_array_new ();

  for (guint i = 0; i < providers->len; i++)
    {
      Provider *provider = providers->pdata[i];

      if (!cp_semver_at_least (provider->version, min_version))
        continue;
      *compatible = TRUE;
      if (!provider_available (provider))
        continue;
      /* The default strategy needs no list: O(1) with many providers. */
      if (strategy_of (registry, service_type) == CP_SELECTION_FIRST)
        return provider;
      g_ptr_array_add (available, provider);
    }
  if (available->len == 0)
    return NULL;
  return apply_strategy (registry, entry, service_type, available);
}

/* SelectProvider: by version, then health, then the type's strategy; this
 * host's providers first, then (none available here) other hosts'. */
static Provider *
select_provider (CpRegistry  *registry,
                 const char  *service_type,
                 const char  *min_version,
                 GError     **error)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);
  gboolean compatible = FALSE;
  Provider *provider;

  if (entry == NULL || (entry->providers->len == 0 && entry->remote->len == 0))
    {
      g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND, "no providers for service \"%s\"", service_type);
      return NULL;
    }
  provider = select_among (registry, entry, service_type, entry->providers, min_version, &compatible);
  if (provider == NULL)
    provider = select_among (registry, entry, service_type, entry->remote, min_version, &compatible);
  if (provider != NULL)
    return provider;
  if (!compatible)
    {
      g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND,
                   "no compatible providers for service \"%s\" (min version: %s)",
                   service_type, min_version);
      return NULL;
    }
  g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND,
               "no available providers for service \"%s\" (all unhealthy)", service_type);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* ServiceRegistry                                                      */

static CpPluginInstance *
authenticate (CpRegistry   *registry,
              CpInvocation *invocation)
{
  GError *error = NULL;
  CpPluginInstance *instance;

  instance = cp_broker_authenticate (registry->broker, cp_invocation_get_request_headers (invocation),
                                     &error);
  if (instance == NULL)
    cp_invocation_take_error (invocation, error);
  return instance;
}

/* The self id's allow-list (cp_broker_allow_service) and the plugin's own
 * declared provides, when it has either, must name @service_type. */
static gboolean
may_register (CpRegistry       *registry,
              CpPluginInstance *instance,
              const char       *service_type)
{
  const char *self_id = cp_plugin_instance_get_self_id (instance);
  GHashTable *allowed = self_id != NULL ? g_hash_table_lookup (registry->allowed, self_id) : NULL;
  GPtrArray *provides = cp_plugin_instance_get_provides (instance);
  gboolean declared = FALSE;

  if (allowed != NULL && !g_hash_table_contains (allowed, service_type))
    return FALSE;
  if (provides == NULL || provides->len == 0)
    return TRUE;
  for (guint i = 0; i < provides->len && !declared; i++)
    declared = g_strcmp0 (cp_service_declaration_get_type_ (provides->pdata[i]), service_type) == 0;
  return declared;
}

/* ------------------------------------------------------------------ */
/* The etcd mirror (cp-etcd-registry.c)                                 */

/* What etcd shows of a local provider's health: one that takes no new
 * calls is unhealthy to other hosts. */
static CpHealthState
mirror_health (Provider *provider)
{
  CpHealthState state = cp_plugin_instance_get_health_state (provider->instance);

  if (!cp_plugin_instance_get_routable (provider->instance) || state == CP_HEALTH_STATE_UNHEALTHY)
    return CP_HEALTH_STATE_UNHEALTHY;
  return state == CP_HEALTH_STATE_DEGRADED ? CP_HEALTH_STATE_DEGRADED : CP_HEALTH_STATE_HEALTHY;
}

static void
mirror_put (CpRegistry *registry,
            Provider   *provider)
{
  if (registry->broker->etcd_registry != NULL)
    cp_etcd_registry_put_provider (registry->broker->etcd_registry, provider->registration_id,
                                   provider->service_type, provider->version,
                                   provider->runtime_id, mirror_health (provider),
                                   provider->metadata);
}

void
cp_registry_publish_all (CpRegistry *registry)
{
  GHashTableIter iter;
  Provider *provider;

  g_hash_table_iter_init (&iter, registry->registrations);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &provider))
    mirror_put (registry, provider);
}

static gboolean
same_metadata (GHashTable *a,
               GHashTable *b)
{
  GHashTableIter iter;
  gpointer key, value;
  guint na = a != NULL ? g_hash_table_size (a) : 0;
  guint nb = b != NULL ? g_hash_table_size (b) : 0;

  if (na != nb)
    return FALSE;
  if (na == 0)
    return TRUE;
  g_hash_table_iter_init (&iter, a);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (g_strcmp0 (value, g_hash_table_lookup (b, key)) != 0)
      return FALSE;
  return TRUE;
}

/* Takes @provider (remote) out of its type and frees it. Its
 * watchers are not told. */
static void
remote_unlink (CpRegistry *registry,
               Provider   *provider)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, provider->service_type);

  g_hash_table_remove (registry->remote, provider->key);
  g_ptr_array_remove (entry->remote, provider);   /* frees it */
}

static gint
compare_remote (gconstpointer a,
                gconstpointer b)
{
  return strcmp ((*(Provider **) a)->key, (*(Provider **) b)->key);
}

void
cp_registry_set_remote (CpRegistry          *registry,
                        const char          *key,
                        const CpEtcdService *service)
{
  Provider *old = g_hash_table_lookup (registry->remote, key);
  g_autofree char *old_type = NULL;
  Provider *provider;
  TypeEntry *entry;

  if (old != NULL && g_str_equal (old->service_type, service->service_type) &&
      g_str_equal (old->version, service->version) &&
      g_str_equal (old->runtime_id, service->provider_id) &&
      g_str_equal (old->router_url, service->router_url) &&
      g_str_equal (old->registration_id, service->registration_id) &&
      old->health == (CpHealthState) service->health &&
      same_metadata (old->metadata, service->metadata))
    return;
  if (old != NULL)
    {
      old_type = g_strdup (old->service_type);
      remote_unlink (registry, old);
    }
  provider = g_new0 (Provider, 1);
  provider->registration_id = g_strdup (service->registration_id);
  provider->service_type = g_strdup (service->service_type);
  provider->version = g_strdup (service->version);
  provider->metadata = g_hash_table_ref (service->metadata);
  provider->runtime_id = g_strdup (service->provider_id);
  provider->key = g_strdup (key);
  provider->host_id = g_strdup (service->host_id);
  provider->router_url = g_strdup (service->router_url);
  provider->health = service->health;
  entry = ensure_type (registry, provider->service_type);
  g_ptr_array_add (entry->remote, provider);
  g_ptr_array_sort (entry->remote, compare_remote);
  g_hash_table_insert (registry->remote, provider->key, provider);
  if (old_type != NULL && !g_str_equal (old_type, service->service_type))
    {
      notify_watchers (registry, old_type);
      maybe_drop_type (registry, old_type);
    }
  notify_watchers (registry, service->service_type);
}

gboolean
cp_registry_remove_remote (CpRegistry *registry,
                           const char *key)
{
  Provider *provider = g_hash_table_lookup (registry->remote, key);
  g_autofree char *type = NULL;

  if (provider == NULL)
    return FALSE;
  type = g_strdup (provider->service_type);
  remote_unlink (registry, provider);
  notify_watchers (registry, type);
  maybe_drop_type (registry, type);
  return TRUE;
}

void
cp_registry_retain_remote (CpRegistry *registry,
                           GHashTable *keys)
{
  g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  const char *key;

  g_hash_table_iter_init (&iter, registry->remote);
  while (g_hash_table_iter_next (&iter, (gpointer *) &key, NULL))
    if (keys == NULL || !g_hash_table_contains (keys, key))
      g_ptr_array_add (gone, g_strdup (key));
  for (guint i = 0; i < gone->len; i++)
    cp_registry_remove_remote (registry, gone->pdata[i]);
}

const char *
cp_registry_lookup_remote (CpRegistry *registry,
                           const char *service_type,
                           const char *runtime_id)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);

  for (guint i = 0; entry != NULL && i < entry->remote->len; i++)
    {
      Provider *provider = entry->remote->pdata[i];

      if (g_str_equal (provider->runtime_id, runtime_id))
        return provider->router_url;
    }
  return NULL;
}

guint
cp_registry_get_n_remote (CpRegistry *registry)
{
  return g_hash_table_size (registry->remote);
}

/* A provider stops (or resumes) taking new calls: as a health change. */
static void
on_routable_changed (CpPluginInstance *instance,
                     GParamSpec       *pspec,
                     CpRegistry       *registry)
{
  cp_registry_health_changed (registry, instance);
}

static gboolean
handle_register (CpServiceRegistry        *service,
                 CpInvocation             *invocation,
                 CpRegisterServiceRequest *request,
                 CpRegistry               *registry)
{
  g_autoptr(CpRegisterServiceResponse) response = NULL;
  GError *error = NULL;
  CpPluginInstance *instance = authenticate (registry, invocation);
  const char *type = cp_register_service_request_get_service_type (request);
  const char *runtime_id, *base_url;
  g_autoptr(GHashTable) metadata = cp_register_service_request_get_metadata (request);
  guint count;
  Provider *provider;

  if (instance == NULL)
    return TRUE;
  if (!cp_registry_validate_register (request, &error))
    {
      cp_invocation_take_error (invocation, error);
      return TRUE;
    }
  runtime_id = cp_plugin_instance_get_runtime_id (instance);
  if (!may_register (registry, instance, type))
    {
      cp_invocation_return_error (invocation, CP_ERROR_PERMISSION_DENIED,
                                  "plugin %s not authorized to register service type %s",
                                  runtime_id, type);
      return TRUE;
    }
  count = GPOINTER_TO_UINT (g_hash_table_lookup (registry->counts, runtime_id));
  if (count >= registry->broker->max_registrations_per_plugin)
    {
      cp_invocation_return_error (invocation, CP_ERROR_RESOURCE_EXHAUSTED,
                                  "plugin %s has reached its limit of %u registrations",
                                  runtime_id, registry->broker->max_registrations_per_plugin);
      return TRUE;
    }

  provider = g_new0 (Provider, 1);
  do
    {
      g_free (provider->registration_id);
      provider->registration_id = cp_generate_registration_id ();
    }
  while (g_hash_table_contains (registry->registrations, provider->registration_id));
  provider->service_type = g_strdup (type);
  provider->version = g_strdup (cp_register_service_request_get_version (request));
  provider->endpoint_path = g_strdup (cp_register_service_request_get_endpoint_path (request));
  provider->metadata = metadata != NULL ? g_hash_table_ref (metadata) : NULL;
  provider->instance = g_object_ref (instance);
  provider->runtime_id = g_strdup (runtime_id);
  g_ptr_array_add (ensure_type (registry, type)->providers, provider);
  g_hash_table_insert (registry->registrations, provider->registration_id, provider);
  g_hash_table_insert (registry->counts, g_strdup (runtime_id), GUINT_TO_POINTER (count + 1));
  if (count == 0)
    g_signal_connect (instance, "notify::routable", G_CALLBACK (on_routable_changed), registry);

  /* The router reaches the plugin where it says it listens. */
  base_url = metadata != NULL ? g_hash_table_lookup (metadata, "base_url") : NULL;
  if (base_url != NULL)
    cp_plugin_instance_set_url (instance, base_url);

  response = cp_register_service_response_new ();
  cp_register_service_response_set_registration_id (response, provider->registration_id);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  notify_watchers (registry, type);
  mirror_put (registry, provider);
  return TRUE;
}

/* Removes @provider (registered) and tells its type's watchers. */
static void
remove_provider (CpRegistry *registry,
                 Provider   *provider)
{
  g_autofree char *type = g_strdup (provider->service_type);
  const char *runtime_id = cp_plugin_instance_get_runtime_id (provider->instance);
  TypeEntry *entry = g_hash_table_lookup (registry->types, type);
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (registry->counts, runtime_id));

  if (registry->broker->etcd_registry != NULL)
    cp_etcd_registry_delete_provider (registry->broker->etcd_registry, provider->registration_id,
                                      provider->service_type);
  if (count <= 1)
    {
      g_signal_handlers_disconnect_by_func (provider->instance, on_routable_changed, registry);
      g_hash_table_remove (registry->counts, runtime_id);
    }
  else
    g_hash_table_insert (registry->counts, g_strdup (runtime_id), GUINT_TO_POINTER (count - 1));
  g_hash_table_remove (registry->registrations, provider->registration_id);
  g_ptr_array_remove (entry->providers, provider);  /* frees it, keeps the order */
  notify_watchers (registry, type);
  maybe_drop_type (registry, type);
}

static gboolean
handle_unregister (CpServiceRegistry          *service,
                   CpInvocation               *invocation,
                   CpUnregisterServiceRequest *request,
                   CpRegistry                 *registry)
{
  g_autoptr(CpUnregisterServiceResponse) response = NULL;
  CpPluginInstance *instance = authenticate (registry, invocation);
  const char *id = cp_unregister_service_request_get_registration_id (request);
  Provider *provider;

  if (instance == NULL)
    return TRUE;
  provider = id != NULL ? g_hash_table_lookup (registry->registrations, id) : NULL;
  /* Another plugin's registration looks like an unknown one: answering
   * permission_denied would confirm that the id exists. */
  if (provider == NULL || provider->instance != instance)
    {
      cp_invocation_return_error (invocation, CP_ERROR_NOT_FOUND, "registration not found: %s",
                                  id != NULL ? id : "");
      return TRUE;
    }
  remove_provider (registry, provider);
  response = cp_unregister_service_response_new ();
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static gboolean
handle_discover (CpServiceRegistry        *service,
                 CpInvocation             *invocation,
                 CpDiscoverServiceRequest *request,
                 CpRegistry               *registry)
{
  g_autoptr(CpDiscoverServiceResponse) response = NULL;
  g_autoptr(CpServiceEndpoint) endpoint = NULL;
  GError *error = NULL;
  const char *type = cp_discover_service_request_get_service_type (request);
  const char *min_version = cp_discover_service_request_get_min_version (request);
  TypeEntry *entry;
  Provider *provider;

  if (authenticate (registry, invocation) == NULL)
    return TRUE;
  if (min_version != NULL && min_version[0] != '\0' &&
      !cp_registry_validate_version (min_version, &error))
    {
      cp_invocation_take_error (invocation, error);
      return TRUE;
    }
  provider = select_provider (registry, type != NULL ? type : "", min_version, &error);
  if (provider == NULL)
    {
      cp_invocation_take_error (invocation, error);
      return TRUE;
    }
  entry = g_hash_table_lookup (registry->types, type);
  endpoint = endpoint_new (provider);
  response = cp_discover_service_response_new ();
  cp_discover_service_response_set_endpoint (response, endpoint);
  cp_discover_service_response_set_single_provider (response,
                                                    entry->providers->len + entry->remote->len == 1);
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

static gboolean
handle_watch (CpServiceRegistry     *service,
              CpInvocation          *invocation,
              CpWatchServiceRequest *request,
              CpRegistry            *registry)
{
  GError *error = NULL;
  const char *type = cp_watch_service_request_get_service_type (request);
  Watcher *watcher;

  if (authenticate (registry, invocation) == NULL)
    return TRUE;
  /* Unlike the original: a type that could never be registered would
   * only make an entry nobody fills. */
  if (!cp_registry_validate_service_type (type, &error))
    {
      cp_invocation_take_error (invocation, error);
      return TRUE;
    }
  watcher = g_atomic_rc_box_new0 (Watcher);
  watcher->registry = registry;
  watcher->invocation = g_object_ref (invocation);
  watcher->service_type = g_strdup (type);
  g_queue_init (&watcher->queue);
  g_ptr_array_add (ensure_type (registry, type)->watchers, watcher);
  /* The current state first. */
  watcher_push (watcher, build_event (registry, type));
  if (watcher->registry != NULL)
    watcher->cancelled_id = g_cancellable_connect (cp_invocation_get_cancellable (invocation),
                                                   G_CALLBACK (on_watch_cancelled), watcher, NULL);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* PluginLifecycle                                                      */

static gboolean
handle_report_health (CpPluginLifecycle     *lifecycle,
                      CpInvocation          *invocation,
                      CpReportHealthRequest *request,
                      CpRegistry            *registry)
{
  g_autoptr(CpReportHealthResponse) response = NULL;
  g_auto(GStrv) unavailable = NULL;
  CpPluginInstance *instance = authenticate (registry, invocation);
  CpHealthState state;

  if (instance == NULL)
    return TRUE;
  /* proto3 keeps unknown enum numbers: they must not reach the property. */
  state = cp_report_health_request_get_state (request);
  if ((guint) state > CP_HEALTH_STATE_UNHEALTHY)
    {
      cp_invocation_return_error (invocation, CP_ERROR_INVALID_ARGUMENT, "unknown health state %d",
                                  (int) state);
      return TRUE;
    }
  unavailable = cp_report_health_request_get_unavailable_dependencies (request);
  /* ::health-changed reaches cp_registry_health_changed() through the broker. */
  cp_plugin_instance_set_health (instance, state,
                                 cp_report_health_request_get_reason (request),
                                 (const char * const *) unavailable);
  response = cp_report_health_response_new ();
  cp_invocation_return_message (invocation, CP_MESSAGE (response));
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* For the broker                                                       */

CpRegistry *
cp_registry_new (CpBroker *broker)
{
  CpRegistry *registry = g_new0 (CpRegistry, 1);
  g_autoptr(GError) error = NULL;

  registry->broker = broker;
  registry->types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify) type_entry_free);
  registry->registrations = g_hash_table_new (g_str_hash, g_str_equal);
  registry->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  registry->allowed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify) g_hash_table_unref);
  registry->strategies = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  registry->remote = g_hash_table_new (g_str_hash, g_str_equal);
  registry->rand = g_rand_new ();

  registry->service = cp_service_registry_skeleton_new ();
  g_signal_connect (registry->service, "handle-register-service", G_CALLBACK (handle_register), registry);
  g_signal_connect (registry->service, "handle-unregister-service", G_CALLBACK (handle_unregister), registry);
  g_signal_connect (registry->service, "handle-discover-service", G_CALLBACK (handle_discover), registry);
  g_signal_connect (registry->service, "handle-watch-service", G_CALLBACK (handle_watch), registry);
  registry->lifecycle = cp_plugin_lifecycle_skeleton_new ();
  g_signal_connect (registry->lifecycle, "handle-report-health", G_CALLBACK (handle_report_health), registry);
  if (!cp_skeleton_export (CP_SKELETON (registry->service), broker->rpc_server, &error) ||
      !cp_skeleton_export (CP_SKELETON (registry->lifecycle), broker->rpc_server, &error))
    g_warning ("CpBroker: cannot serve the service registry: %s", error->message);
  return registry;
}

void
cp_registry_plugin_gone (CpRegistry       *registry,
                         CpPluginInstance *instance)
{
  g_autoptr(GPtrArray) gone = g_ptr_array_new ();
  GHashTableIter iter;
  Provider *provider;

  g_hash_table_iter_init (&iter, registry->registrations);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &provider))
    if (provider->instance == instance)
      g_ptr_array_add (gone, provider);
  for (guint i = 0; i < gone->len; i++)
    remove_provider (registry, gone->pdata[i]);
}

void
cp_registry_health_changed (CpRegistry       *registry,
                            CpPluginInstance *instance)
{
  g_autoptr(GPtrArray) types = g_ptr_array_new ();
  GHashTableIter iter;
  const char *type;
  TypeEntry *entry;

  g_hash_table_iter_init (&iter, registry->types);
  while (g_hash_table_iter_next (&iter, (gpointer *) &type, (gpointer *) &entry))
    for (guint i = 0; i < entry->providers->len; i++)
      if (((Provider *) entry->providers->pdata[i])->instance == instance)
        {
          g_ptr_array_add (types, (gpointer) type);
          break;
        }
  /* Other hosts see the new health too. */
  for (guint t = 0; t < types->len; t++)
    {
      entry = g_hash_table_lookup (registry->types, types->pdata[t]);
      for (guint i = 0; i < entry->providers->len; i++)
        if (((Provider *) entry->providers->pdata[i])->instance == instance)
          mirror_put (registry, entry->providers->pdata[i]);
    }
  for (guint i = 0; i < types->len; i++)
    notify_watchers (registry, types->pdata[i]);
}

gboolean
cp_registry_has_provider (CpRegistry *registry,
                          const char *service_type,
                          const char *min_version)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);

  for (guint i = 0; entry != NULL && i < entry->providers->len; i++)
    {
      Provider *provider = entry->providers->pdata[i];

      if (provider_available (provider) && cp_semver_at_least (provider->version, min_version))
        return TRUE;
    }
  return FALSE;
}

const char *
cp_registry_lookup_endpoint_path (CpRegistry *registry,
                                  const char *service_type,
                                  const char *runtime_id)
{
  TypeEntry *entry = g_hash_table_lookup (registry->types, service_type);

  for (guint i = 0; entry != NULL && i < entry->providers->len; i++)
    {
      Provider *provider = entry->providers->pdata[i];

      if (g_strcmp0 (cp_plugin_instance_get_runtime_id (provider->instance), runtime_id) == 0)
        return provider->endpoint_path;
    }
  return NULL;
}

void
cp_registry_free (CpRegistry *registry)
{
  g_autoptr(GPtrArray) watchers = g_ptr_array_new_with_free_func ((GDestroyNotify) watcher_unref);
  GHashTableIter iter;
  TypeEntry *entry;
  Provider *provider;

  g_hash_table_iter_init (&iter, registry->types);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    for (guint i = 0; i < entry->watchers->len; i++)
      g_ptr_array_add (watchers, watcher_ref (entry->watchers->pdata[i]));
  for (guint i = 0; i < watchers->len; i++)
    watcher_drop (watchers->pdata[i]);
  g_hash_table_iter_init (&iter, registry->registrations);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &provider))
    g_signal_handlers_disconnect_by_func (provider->instance, on_routable_changed, registry);
  cp_skeleton_unexport (CP_SKELETON (registry->service));
  cp_skeleton_unexport (CP_SKELETON (registry->lifecycle));
  g_signal_handlers_disconnect_by_data (registry->service, registry);
  g_signal_handlers_disconnect_by_data (registry->lifecycle, registry);
  g_clear_object (&registry->service);
  g_clear_object (&registry->lifecycle);
  g_hash_table_unref (registry->types);
  g_hash_table_unref (registry->registrations);
  g_hash_table_unref (registry->counts);
  g_hash_table_unref (registry->allowed);
  g_hash_table_unref (registry->strategies);
  g_hash_table_unref (registry->remote);
  g_rand_free (registry->rand);
  g_free (registry);
}

/* ------------------------------------------------------------------ */
/* Test hooks                                                           */

void
cp_registry_set_seed (CpRegistry *registry,
                      guint32     seed)
{
  g_rand_set_seed (registry->rand, seed);
}

guint
cp_registry_get_max_watch_backlog (CpRegistry *registry)
{
  GHashTableIter iter;
  TypeEntry *entry;
  guint max = 0;

  g_hash_table_iter_init (&iter, registry->types);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    for (guint i = 0; i < entry->watchers->len; i++)
      max = MAX (max, g_queue_get_length (&((Watcher *) entry->watchers->pdata[i])->queue));
  return max;
}

guint
cp_registry_get_n_resyncs (CpRegistry *registry)
{
  return registry->n_resyncs;
}

guint
cp_registry_get_n_watchers (CpRegistry *registry)
{
  GHashTableIter iter;
  TypeEntry *entry;
  guint n = 0;

  g_hash_table_iter_init (&iter, registry->types);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &entry))
    n += entry->watchers->len;
  return n;
}

/* ------------------------------------------------------------------ */
/* Public API                                                           */

/**
 * cp_broker_allow_service:
 * @broker: a [class@ConnectPlugin.Broker]
 * @self_id: a plugin's self id
 * @service_type: a service type the plugin may register
 *
 * Restricts the plugins with @self_id to the service types allowed this
 * way: once a self id has one, its `RegisterService` calls for any other
 * type are refused with `permission_denied`. Independently, a plugin whose
 * handshake declared what it provides may register only those types.
 */
void
cp_broker_allow_service (CpBroker   *broker,
                         const char *self_id,
                         const char *service_type)
{
  GHashTable *allowed;

  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (self_id != NULL);
  g_return_if_fail (service_type != NULL);

  allowed = g_hash_table_lookup (broker->registry->allowed, self_id);
  if (allowed == NULL)
    {
      allowed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (broker->registry->allowed, g_strdup (self_id), allowed);
    }
  g_hash_table_add (allowed, g_strdup (service_type));
}

/**
 * cp_broker_set_selection_strategy:
 * @broker: a [class@ConnectPlugin.Broker]
 * @service_type: a service type
 * @strategy: how `DiscoverService` picks among its available providers
 *
 * Sets how the registry picks one provider of @service_type
 * ([enum@ConnectPlugin.SelectionStrategy]); %CP_SELECTION_FIRST until set.
 * Providers below the caller's `min_version`, unhealthy ones and those
 * being removed are never picked.
 */
void
cp_broker_set_selection_strategy (CpBroker            *broker,
                                  const char          *service_type,
                                  CpSelectionStrategy  strategy)
{
  g_return_if_fail (CP_IS_BROKER (broker));
  g_return_if_fail (service_type != NULL);
  g_return_if_fail (strategy >= CP_SELECTION_FIRST && strategy <= CP_SELECTION_WEIGHTED);

  g_hash_table_insert (broker->registry->strategies, g_strdup (service_type),
                       GINT_TO_POINTER (strategy + 1));
}
