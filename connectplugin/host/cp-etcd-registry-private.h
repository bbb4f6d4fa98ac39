/* cp-etcd-registry-private.h: CpEtcdRegistry as the broker's units see it
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The registry unit (cp-registry.c) tells a started CpEtcdRegistry
 * (broker->etcd_registry) about every local provider, and the etcd
 * registry hands it the providers other hosts published (remote ones).
 */
#pragma once

#include "cp-broker-private.h"
#include "cp-etcd-client-private.h"
#include "cp-etcd-registry.h"
#include "connectplugin/protocol/lifecycle.cp.h"

G_BEGIN_DECLS

/* A local provider was registered or changed health: (re)written under
 * `PREFIX services/TYPE/REG_ID` with the host's lease (queued until there
 * is one; etcd writes go one at a time, in order). */
void        cp_etcd_registry_put_provider    (CpEtcdRegistry *self,
                                              const char     *registration_id,
                                              const char     *service_type,
                                              const char     *version,
                                              const char     *runtime_id,
                                              CpHealthState   health,
                                              GHashTable     *metadata);
/* A local provider went: its key is deleted. */
void        cp_etcd_registry_delete_provider (CpEtcdRegistry *self,
                                              const char     *registration_id,
                                              const char     *service_type);

/* Registry side (cp-registry.c). */
/* Writes every local provider (after a new lease). */
void        cp_registry_publish_all          (CpRegistry          *registry);
/* Adds or replaces the remote provider under @key (watchers are told
 * when something changed). */
void        cp_registry_set_remote           (CpRegistry          *registry,
                                              const char          *key,
                                              const CpEtcdService *service);
gboolean    cp_registry_remove_remote        (CpRegistry          *registry,
                                              const char          *key);
/* Drops the remote providers whose key is not in @keys (a set; NULL: all). */
void        cp_registry_retain_remote        (CpRegistry          *registry,
                                              GHashTable          *keys);
/* The router URL of the host holding remote provider @runtime_id of
 * @service_type (transfer none), or NULL. */
const char *cp_registry_lookup_remote        (CpRegistry          *registry,
                                              const char          *service_type,
                                              const char          *runtime_id);
guint       cp_registry_get_n_remote         (CpRegistry          *registry);

/* Test hooks: the lease (0: none); how many lists of the prefix were applied;
 * stop renewing and watching without revoking anything, as if the host
 * had crashed. */
gint64      cp_etcd_registry_get_lease       (CpEtcdRegistry *self);
guint       cp_etcd_registry_get_n_lists     (CpEtcdRegistry *self);
void        cp_etcd_registry_abandon         (CpEtcdRegistry *self);

G_END_DECLS
