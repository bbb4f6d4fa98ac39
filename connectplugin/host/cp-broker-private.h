/* cp-broker-private.h: the state of a CpBroker, shared by its units
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * CpBroker is one object in several files; each unit owns its own state
 * behind an opaque pointer and is reached through the functions below:
 *   cp-broker.c               the object, its properties, the plugin list,
 *                             authentication of plugin calls;
 *   cp-broker-capabilities.c  CapabilityBroker, grants, /capabilities/;
 *   cp-registry.c             ServiceRegistry and PluginLifecycle;
 *   cp-router.c               /services/ (routed plugin-to-plugin calls);
 *   cp-rate-limiter.c         token buckets for host APIs and the router;
 *   cp-broker-plugins.c       adding, removing, replacing plugins;
 *   cp-etcd-registry.c        (when started) the registry shared through
 *                             etcd, and calls from other hosts.
 */
#pragma once

#include "cp-broker.h"
#include "cp-dependency-graph.h"
#include "cp-plugin-instance-private.h"
#include "cp-server-private.h"
#include "cp-rpc-server-private.h"

G_BEGIN_DECLS

typedef struct _CpBrokerCapabilities CpBrokerCapabilities;
typedef struct _CpRegistry CpRegistry;
typedef struct _CpRouter CpRouter;
typedef struct _CpRateLimiter CpRateLimiter;
typedef struct _CpEtcdRegistry CpEtcdRegistry;

struct _CpBroker
{
  GObject parent_instance;

  CpServer *server;
  CpRpcServer *rpc_server;
  GMainContext *context;

  GListStore *plugins;              /* CpPluginInstance*, in order of arrival */
  GHashTable *plugins_by_id;        /* runtime id → CpPluginInstance* (ref) */

  /* Properties (read by the units) */
  char *base_url;                   /* NULL: the server's URL */
  guint grant_ttl_seconds;          /* 3600 */
  guint max_registrations_per_plugin; /* 100 */
  guint route_timeout_ms;           /* 30000 */
  double rate_limit_rps;            /* 0: no limit */
  guint rate_limit_burst;
  guint max_watch_queue;            /* events kept per slow watcher */
  guint add_timeout_ms;             /* 30000 */
  guint drain_timeout_ms;           /* 30000 */
  gboolean protect_dependents;      /* refuse removals that stop other plugins */

  CpDependencyGraph *graph;         /* what plugins declared they provide and require */
  GHashTable *controls;             /* runtime id → CpChannel* to a plugin the host added */
  GHashTable *aliases;              /* runtime id of a replaced plugin that left → its replacement's */

  CpBrokerCapabilities *capabilities;
  CpRegistry *registry;
  CpRouter *router;
  CpRateLimiter *limiter;
  CpEtcdRegistry *etcd_registry;    /* weak: the started etcd back-end, or NULL */
};

/* The host's base URL as plugins reach it (no trailing slash), transfer
 * none; NULL before the server listens and without base-url. */
const char       *cp_broker_get_base_url     (CpBroker            *broker);

/* Checks the caller of a host API or routed call: `X-Plugin-Runtime-ID`
 * and `Authorization: Bearer <runtime token>` issued by this host. Returns
 * the caller's instance (transfer none; created on its first call), or
 * NULL with CP_ERROR_UNAUTHENTICATED. */
CpPluginInstance *cp_broker_authenticate     (CpBroker            *broker,
                                              SoupMessageHeaders  *headers,
                                              GError             **error);
/* Adds @instance to the plugin list (plugin-added, items-changed). */
void              cp_broker_add_instance     (CpBroker            *broker,
                                              CpPluginInstance    *instance);
/* The plugin is gone: its registrations, grants and identity are dropped
 * and it leaves the list (plugin-removed). */
void              cp_broker_remove_instance  (CpBroker            *broker,
                                              CpPluginInstance    *instance);
/* A plugin reported health (::plugin-health-changed). */
void              cp_broker_health_changed   (CpBroker            *broker,
                                              CpPluginInstance    *instance);
/* A removal passed its impact check (::plugin-removing). */
void              cp_broker_plugin_removing  (CpBroker            *broker,
                                              CpPluginInstance    *instance,
                                              CpDependencyImpact  *impact);

/* The channel (with the control secret) to a plugin the host added, for
 * its removal's Shutdown. */
void              cp_broker_set_control_channel (CpBroker         *broker,
                                                 CpPluginInstance *instance,
                                                 CpChannel        *channel);
CpChannel        *cp_broker_steal_control_channel (CpBroker       *broker,
                                                   CpPluginInstance *instance);
/* Where a call addressed to @runtime_id goes: its instance, or, when that
 * one was replaced and no longer takes calls, its replacement (transfer
 * none; NULL for an unknown id). For the router. */
CpPluginInstance *cp_broker_route_target     (CpBroker            *broker,
                                              const char          *runtime_id);

/* Each unit: created by cp_broker_new() (which attaches it to the host's
 * server), told when a plugin goes, freed at finalize. */
CpBrokerCapabilities *cp_broker_capabilities_new (CpBroker *broker);
void              cp_broker_capabilities_plugin_gone (CpBrokerCapabilities *caps,
                                                      CpPluginInstance     *instance);
void              cp_broker_capabilities_free (CpBrokerCapabilities *caps);

CpRegistry       *cp_registry_new            (CpBroker            *broker);
void              cp_registry_plugin_gone    (CpRegistry          *registry,
                                              CpPluginInstance    *instance);
/* A plugin's health changed: watchers of its types get an event. */
void              cp_registry_health_changed (CpRegistry          *registry,
                                              CpPluginInstance    *instance);
/* A routable, not unhealthy provider of @service_type at @min_version or
 * newer is registered. */
gboolean          cp_registry_has_provider   (CpRegistry          *registry,
                                              const char          *service_type,
                                              const char          *min_version);
/* The provider @runtime_id registered for @service_type: its endpoint path
 * (transfer none), or NULL. */
const char       *cp_registry_lookup_endpoint_path (CpRegistry    *registry,
                                              const char          *service_type,
                                              const char          *runtime_id);
void              cp_registry_free           (CpRegistry          *registry);

CpRouter         *cp_router_new              (CpBroker            *broker);
void              cp_router_free             (CpRouter            *router);

CpRateLimiter    *cp_rate_limiter_new        (CpBroker            *broker);
/* TRUE when the caller keyed @key (runtime id, else peer address) may make
 * one more call now. */
gboolean          cp_rate_limiter_allow      (CpRateLimiter       *limiter,
                                              const char          *key);
void              cp_rate_limiter_free       (CpRateLimiter       *limiter);

G_END_DECLS
