/* cp-dependency-impact.c: what removing a plugin would break, as an object
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The result of cp_dependency_graph_analyze_impact () (computed in
 * cp-dependency-graph.c, which fills the fields of
 * cp-dependency-impact-private.h): a snapshot with getters.
 */
#include "cp-dependency-impact-private.h"

/**
 * CpDependencyImpact:
 *
 * What removing one plugin from a [class@ConnectPlugin.DependencyGraph]
 * would break, from [method@ConnectPlugin.DependencyGraph.analyze_impact]:
 * the plugins affected (directly and transitively), those degraded (an
 * optional dependency lost) or rebound (served by an alternative), the
 * services that become unavailable and, per service type, the alternative
 * providers. It is a snapshot: it does not follow later graph changes.
 */
G_DEFINE_FINAL_TYPE (CpDependencyImpact, cp_dependency_impact, G_TYPE_OBJECT)

static void
cp_dependency_impact_finalize (GObject *object)
{
  CpDependencyImpact *self = CP_DEPENDENCY_IMPACT (object);

  g_free (self->target);
  g_strfreev (self->affected);
  g_strfreev (self->direct);
  g_strfreev (self->degraded);
  g_strfreev (self->rebound);
  g_strfreev (self->services);
  g_strfreev (self->unavailable);
  g_hash_table_unref (self->alternatives);
  G_OBJECT_CLASS (cp_dependency_impact_parent_class)->finalize (object);
}

static void
cp_dependency_impact_class_init (CpDependencyImpactClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_dependency_impact_finalize;
}

static void
cp_dependency_impact_init (CpDependencyImpact *self)
{
  self->alternatives = g_hash_table_new_full (g_str_hash, g_str_equal,
                                              g_free, (GDestroyNotify) g_strfreev);
}

/**
 * cp_dependency_impact_get_target:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 *
 * The result of [method@ConnectPlugin.DependencyGraph.analyze_impact]: a
 * snapshot, not updated when the graph changes. Every list of plugins in
 * it is sorted by self id, then runtime id.
 *
 * Returns: the runtime id of the plugin the analysis removed
 */
const char *
cp_dependency_impact_get_target (CpDependencyImpact *self)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  return self->target;
}

/**
 * cp_dependency_impact_get_affected_plugins:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 *
 * Gets the plugins that lose a `required_for_startup` dependency, directly or
 * through another affected plugin, and would have to stop too.
 *
 * Returns: (transfer none) (array zero-terminated=1): the plugins that lose
 *   a `required_for_startup` dependency, directly or through another
 *   affected plugin, and would have to stop too
 */
const char * const *
cp_dependency_impact_get_affected_plugins (CpDependencyImpact *self)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  return (const char * const *) self->affected;
}

/**
 * cp_dependency_impact_get_directly_affected_plugins:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 *
 * Gets the affected plugins that lose a required dependency the target itself
 * served.
 *
 * Returns: (transfer none) (array zero-terminated=1): the affected plugins
 *   that lose a required dependency the target itself served
 */
const char * const *
cp_dependency_impact_get_directly_affected_plugins (CpDependencyImpact *self)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  return (const char * const *) self->direct;
}

/**
 * cp_dependency_impact_get_degraded_plugins:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 *
 * Gets the plugins that keep running but lose an optional dependency  that
 * has no other provider.
 *
 * Returns: (transfer none) (array zero-terminated=1): the plugins that keep
 *   running but lose an optional dependency (not `required_for_startup`)
 *   that has no other provider
 */
const char * const *
cp_dependency_impact_get_degraded_plugins (CpDependencyImpact *self)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  return (const char * const *) self->degraded;
}

/**
 * cp_dependency_impact_get_rebound_plugins:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 *
 * Gets the plugins that use a service of a removed plugin but keep every
 * dependency, because an alternative provider remains; they have to switch to
 * it.
 *
 * Returns: (transfer none) (array zero-terminated=1): the plugins that use
 *   a service of a removed plugin but keep every dependency, because an
 *   alternative provider remains; they have to switch to it
 */
const char * const *
cp_dependency_impact_get_rebound_plugins (CpDependencyImpact *self)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  return (const char * const *) self->rebound;
}

/**
 * cp_dependency_impact_get_services:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 *
 * Gets the service types the target provides, sorted, each once.
 *
 * Returns: (transfer none) (array zero-terminated=1): the service types the
 *   target provides, sorted, each once
 */
const char * const *
cp_dependency_impact_get_services (CpDependencyImpact *self)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  return (const char * const *) self->services;
}

/**
 * cp_dependency_impact_get_unavailable_services:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 *
 * Gets the service types provided by the target or an affected plugin that no
 * remaining plugin provides at any version, sorted.
 *
 * Returns: (transfer none) (array zero-terminated=1): the service types
 *   provided by the target or an affected plugin that no remaining plugin
 *   provides at any version, sorted
 */
const char * const *
cp_dependency_impact_get_unavailable_services (CpDependencyImpact *self)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  return (const char * const *) self->unavailable;
}

/**
 * cp_dependency_impact_has_alternative:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 * @service_type: a service type
 *
 * Checks whether a plugin that remains  provides @service_type, at any
 * version.
 *
 * Returns: whether a plugin that remains (neither the target nor an
 *   affected plugin) provides @service_type, at any version
 */
gboolean
cp_dependency_impact_has_alternative (CpDependencyImpact *self,
                                      const char         *service_type)
{
  GStrv others;

  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), FALSE);
  g_return_val_if_fail (service_type != NULL, FALSE);
  others = g_hash_table_lookup (self->alternatives, service_type);
  return others != NULL && others[0] != NULL;
}

/**
 * cp_dependency_impact_dup_alternatives:
 * @self: a [class@ConnectPlugin.DependencyImpact]
 * @service_type: a service type a removed plugin provides
 *
 * Gets the runtime ids of the remaining plugins that provide @service_type,
 * sorted by self id, then runtime id; empty if there are none or no removed
 * plugin provided it.
 *
 * Returns: (transfer full) (array zero-terminated=1): the runtime ids of the
 *   remaining plugins that provide @service_type, sorted by self id, then
 *   runtime id; empty if there are none or no removed plugin provided it
 */
char **
cp_dependency_impact_dup_alternatives (CpDependencyImpact *self,
                                       const char         *service_type)
{
  GStrv others;

  g_return_val_if_fail (CP_IS_DEPENDENCY_IMPACT (self), NULL);
  g_return_val_if_fail (service_type != NULL, NULL);
  others = g_hash_table_lookup (self->alternatives, service_type);
  return others != NULL ? g_strdupv (others) : g_new0 (char *, 1);
}
