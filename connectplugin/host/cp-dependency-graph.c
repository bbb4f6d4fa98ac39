/* cp-dependency-graph.c: plugins' provides/requires as a start-up order and impact analysis
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Nodes are plugins keyed by runtime id. An edge runs from every provider
 * that satisfies a required_for_startup dependency (same type, version >=
 * min_version) to the plugin that requires it: a plugin starts after all
 * of them. Optional dependencies order nothing; they only show up in the
 * impact analysis. Everything the graph returns is sorted by the stable key
 * (self id, then runtime id), never by hash order, so the answers do not
 * depend on the order the plugins were added in.
 */

#include <string.h>

#include "cp-dependency-graph.h"
#include "cp-dependency-impact-private.h"
#include "cp-error.h"
#include "cp-semver-private.h"
#include "connectplugin/protocol/handshake.cp.h"

typedef struct
{
  char *type;
  char *version;                /* "" = unversioned */
} Provide;

typedef struct
{
  char *type;
  char *min_version;            /* "" = any version */
  gboolean required;
} Require;

typedef struct
{
  char *runtime_id;
  char *self_id;
  GPtrArray *provides;          /* Provide* */
  GPtrArray *requires;          /* Require* */
} Node;

/**
 * CpDependencyGraph:
 *
 * The plugins of a host as a dependency graph: one node per plugin, keyed
 * by runtime id, with the services it provides (type and semantic version)
 * and those it requires (type, minimum version, whether it needs them to
 * start).
 *
 * From that it computes a deterministic start-up order
 * ([method@ConnectPlugin.DependencyGraph.dup_startup_order]), reports a
 * dependency cycle with the plugins that form it and a missing or too old
 * provider by name (as %CP_ERROR_FAILED_PRECONDITION), answers "is there a
 * service of this type at this version"
 * ([method@ConnectPlugin.DependencyGraph.has_service]) and tells what
 * removing a plugin would break
 * ([method@ConnectPlugin.DependencyGraph.analyze_impact]).
 *
 * Every list it returns is sorted by self id, then runtime id, never by
 * hash order, so the answers do not depend on the order plugins were added
 * in. Versions compare as [func@ConnectPlugin.DependencyGraph.compare_versions]
 * says. The graph is plain data: no signals, not thread-safe.
 */
struct _CpDependencyGraph
{
  GObject parent_instance;
  GHashTable *nodes;            /* runtime id -> Node* */
};

G_DEFINE_FINAL_TYPE (CpDependencyGraph, cp_dependency_graph, G_TYPE_OBJECT)


/* ---- semantic versions ---- */

/**
 * cp_dependency_graph_compare_versions:
 * @a: a semantic version such as `1.2.3` or `1.0.0-rc.1`
 * @b: another one
 *
 * Compares two semantic versions the way the graph (and the host's
 * registry) matches a dependency's `min_version`. A version is
 * `MAJOR.MINOR.PATCH` with an optional `-PRERELEASE` of `[0-9A-Za-z.-]`, at
 * most 64 bytes, as connect-plugin-go accepts. The numbers compare
 * numerically, a prerelease is below its release, and prerelease
 * identifiers compare as semver 2.0.0 says. A string that is not a version
 * sorts below every version, and two such strings are equal.
 *
 * Returns: a negative value if @a is older than @b, 0 if they are
 *   equivalent, a positive value if @a is newer
 */
int
cp_dependency_graph_compare_versions (const char *a,
                                      const char *b)
{
  return cp_semver_compare (a, b);
}

/* Whether a provider at @version satisfies a dependency on @min_version:
 * any version if @min_version is empty, else a valid one at least as new;
 * nothing satisfies an invalid @min_version. */
static gboolean
version_satisfies (const char *version,
                   const char *min_version)
{
  if (min_version[0] != '\0' && !cp_semver_is_valid (min_version))
    return FALSE;
  return cp_semver_at_least (version, min_version);
}

static gboolean
check_version (const char  *what,
               const char  *version,
               GError     **error)
{
  if (version == NULL || version[0] == '\0' || cp_semver_is_valid (version))
    return TRUE;
  g_set_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
               "%s “%s” is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE])",
               what, version);
  return FALSE;
}

/* ---- nodes ---- */

static void
provide_free (gpointer data)
{
  Provide *p = data;
  g_free (p->type);
  g_free (p->version);
  g_free (p);
}

static void
require_free (gpointer data)
{
  Require *r = data;
  g_free (r->type);
  g_free (r->min_version);
  g_free (r);
}

static void
node_free (gpointer data)
{
  Node *node = data;
  g_free (node->runtime_id);
  g_free (node->self_id);
  g_ptr_array_unref (node->provides);
  g_ptr_array_unref (node->requires);
  g_free (node);
}

static Node *
node_new (const char *runtime_id,
          const char *self_id)
{
  Node *node = g_new0 (Node, 1);
  node->runtime_id = g_strdup (runtime_id);
  node->self_id = g_strdup (self_id != NULL ? self_id : "");
  node->provides = g_ptr_array_new_with_free_func (provide_free);
  node->requires = g_ptr_array_new_with_free_func (require_free);
  return node;
}

static void
node_add_provide (Node       *node,
                  const char *type,
                  const char *version)
{
  Provide *p = g_new0 (Provide, 1);
  p->type = g_strdup (type);
  p->version = g_strdup (version != NULL ? version : "");
  g_ptr_array_add (node->provides, p);
}

static void
node_add_require (Node       *node,
                  const char *type,
                  const char *min_version,
                  gboolean    required)
{
  Require *r = g_new0 (Require, 1);
  r->type = g_strdup (type);
  r->min_version = g_strdup (min_version != NULL ? min_version : "");
  r->required = required;
  g_ptr_array_add (node->requires, r);
}

/* Whether @node provides @type at a version >= @min_version. */
static gboolean
node_satisfies (const Node *node,
                const char *type,
                const char *min_version)
{
  for (guint i = 0; i < node->provides->len; i++)
    {
      const Provide *p = g_ptr_array_index (node->provides, i);
      if (g_str_equal (p->type, type) && version_satisfies (p->version, min_version))
        return TRUE;
    }
  return FALSE;
}

static gboolean
node_provides_type (const Node *node,
                    const char *type)
{
  return node_satisfies (node, type, "");
}

static int
node_compare (gconstpointer a,
              gconstpointer b)
{
  const Node *na = *(const Node * const *) a, *nb = *(const Node * const *) b;
  int c = strcmp (na->self_id, nb->self_id);
  return c != 0 ? c : strcmp (na->runtime_id, nb->runtime_id);
}

static GPtrArray *
all_nodes (CpDependencyGraph *self)
{
  GPtrArray *nodes = g_ptr_array_sized_new (g_hash_table_size (self->nodes));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->nodes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (nodes, value);
  return nodes;
}

/* The nodes sorted by the stable key (self id, then runtime id). */
static GPtrArray *
sorted_nodes (CpDependencyGraph *self)
{
  GPtrArray *nodes = all_nodes (self);
  g_ptr_array_sort (nodes, node_compare);
  return nodes;
}

static GStrv
runtime_ids_strv (GPtrArray *nodes)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_ptr_array_sort (nodes, node_compare);
  for (guint i = 0; i < nodes->len; i++)
    g_strv_builder_add (builder, ((Node *) g_ptr_array_index (nodes, i))->runtime_id);
  return g_strv_builder_end (builder);
}

static int
strv_compare (const void *a,
              const void *b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

static void
sort_strv (GStrv strv)
{
  qsort (strv, g_strv_length (strv), sizeof (char *), strv_compare);
}

static Node *
lookup_node (CpDependencyGraph  *self,
             const char         *runtime_id,
             GError            **error)
{
  Node *node = g_hash_table_lookup (self->nodes, runtime_id);
  if (node == NULL)
    g_set_error (error, CP_ERROR, CP_ERROR_NOT_FOUND,
                 "no plugin with runtime id “%s” in the dependency graph", runtime_id);
  return node;
}

static gboolean
check_type (const char  *service_type,
            GError     **error)
{
  if (service_type != NULL && service_type[0] != '\0')
    return TRUE;
  g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                       "a service declaration or dependency needs a type");
  return FALSE;
}

/* ---- CpDependencyGraph ---- */

static void
cp_dependency_graph_finalize (GObject *object)
{
  CpDependencyGraph *self = CP_DEPENDENCY_GRAPH (object);
  g_hash_table_unref (self->nodes);
  G_OBJECT_CLASS (cp_dependency_graph_parent_class)->finalize (object);
}

static void
cp_dependency_graph_class_init (CpDependencyGraphClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_dependency_graph_finalize;
}

static void
cp_dependency_graph_init (CpDependencyGraph *self)
{
  self->nodes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, node_free);
}

/**
 * cp_dependency_graph_new:
 *
 * Creates an empty dependency graph.
 *
 * Returns: (transfer full): a new graph
 */
CpDependencyGraph *
cp_dependency_graph_new (void)
{
  return g_object_new (CP_TYPE_DEPENDENCY_GRAPH, NULL);
}

/**
 * cp_dependency_graph_add_plugin:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: the plugin's runtime id, the node's key
 * @self_id: (nullable): the plugin's self id, used for ordering and messages
 * @error: return location for a #GError
 *
 * Adds a plugin with no provides and no requires. A plugin already in the
 * graph under @runtime_id is replaced (its declarations are dropped).
 * Declare its services with cp_dependency_graph_add_provides() and
 * cp_dependency_graph_add_requires().
 *
 * Returns: %TRUE, or %FALSE with %CP_ERROR_INVALID_ARGUMENT if @runtime_id
 *   is empty
 */
gboolean
cp_dependency_graph_add_plugin (CpDependencyGraph  *self,
                                const char         *runtime_id,
                                const char         *self_id,
                                GError            **error)
{
  Node *node;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (runtime_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (runtime_id[0] == '\0')
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                           "a plugin in the dependency graph needs a runtime id");
      return FALSE;
    }
  node = node_new (runtime_id, self_id);
  g_hash_table_replace (self->nodes, node->runtime_id, node);
  return TRUE;
}

/**
 * cp_dependency_graph_add_provides:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: a plugin added with cp_dependency_graph_add_plugin()
 * @service_type: the service type it provides, e.g. `cache`
 * @version: (nullable): the semantic version it provides; %NULL or empty
 *   for an unversioned service, which satisfies only dependencies without
 *   a minimum version
 * @error: return location for a #GError
 *
 * Declares that a plugin provides a service.
 *
 * Returns: %TRUE, or %FALSE with %CP_ERROR_NOT_FOUND for an unknown plugin
 *   or %CP_ERROR_INVALID_ARGUMENT for an empty type or a malformed version
 */
gboolean
cp_dependency_graph_add_provides (CpDependencyGraph  *self,
                                  const char         *runtime_id,
                                  const char         *service_type,
                                  const char         *version,
                                  GError            **error)
{
  Node *node;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (runtime_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if ((node = lookup_node (self, runtime_id, error)) == NULL ||
      !check_type (service_type, error) ||
      !check_version ("version", version, error))
    return FALSE;
  node_add_provide (node, service_type, version);
  return TRUE;
}

/**
 * cp_dependency_graph_add_requires:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: a plugin added with cp_dependency_graph_add_plugin()
 * @service_type: the service type it requires
 * @min_version: (nullable): the lowest acceptable semantic version, or
 *   %NULL / empty for any version
 * @required_for_startup: whether the plugin cannot start without it; only
 *   such dependencies order the start-up and can be reported missing
 * @error: return location for a #GError
 *
 * Declares that a plugin depends on a service.
 *
 * Returns: %TRUE, or %FALSE with %CP_ERROR_NOT_FOUND for an unknown plugin
 *   or %CP_ERROR_INVALID_ARGUMENT for an empty type or a malformed version
 */
gboolean
cp_dependency_graph_add_requires (CpDependencyGraph  *self,
                                  const char         *runtime_id,
                                  const char         *service_type,
                                  const char         *min_version,
                                  gboolean            required_for_startup,
                                  GError            **error)
{
  Node *node;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (runtime_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if ((node = lookup_node (self, runtime_id, error)) == NULL ||
      !check_type (service_type, error) ||
      !check_version ("min_version", min_version, error))
    return FALSE;
  node_add_require (node, service_type, min_version, required_for_startup);
  return TRUE;
}

/**
 * cp_dependency_graph_add_declared:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: the plugin's runtime id
 * @self_id: (nullable): the plugin's self id
 * @provides: (nullable) (element-type ConnectPlugin.ServiceDeclaration):
 *   what the plugin provides, as in its `GetPluginInfo` answer or handshake
 * @requires: (nullable) (element-type ConnectPlugin.ServiceDependency):
 *   what it requires
 * @error: return location for a #GError
 *
 * Adds (or replaces) a plugin with the declarations it sent over the wire,
 * e.g. the arrays of [method@ConnectPlugin.PluginInstance.get_provides] and
 * [method@ConnectPlugin.PluginInstance.get_requires]. The declarations are
 * checked first; on error the graph is left unchanged.
 *
 * Returns: %TRUE, or %FALSE with %CP_ERROR_INVALID_ARGUMENT for an empty
 *   runtime id or type, or a malformed version
 */
gboolean
cp_dependency_graph_add_declared (CpDependencyGraph  *self,
                                  const char         *runtime_id,
                                  const char         *self_id,
                                  GPtrArray          *provides,
                                  GPtrArray          *requires,
                                  GError            **error)
{
  Node *node;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (runtime_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (guint i = 0; provides != NULL && i < provides->len; i++)
    {
      CpServiceDeclaration *decl = g_ptr_array_index (provides, i);
      if (!check_type (cp_service_declaration_get_type_ (decl), error) ||
          !check_version ("version", cp_service_declaration_get_version (decl), error))
        return FALSE;
    }
  for (guint i = 0; requires != NULL && i < requires->len; i++)
    {
      CpServiceDependency *dep = g_ptr_array_index (requires, i);
      if (!check_type (cp_service_dependency_get_type_ (dep), error) ||
          !check_version ("min_version", cp_service_dependency_get_min_version (dep), error))
        return FALSE;
    }
  if (!cp_dependency_graph_add_plugin (self, runtime_id, self_id, error))
    return FALSE;

  node = g_hash_table_lookup (self->nodes, runtime_id);
  for (guint i = 0; provides != NULL && i < provides->len; i++)
    {
      CpServiceDeclaration *decl = g_ptr_array_index (provides, i);
      node_add_provide (node, cp_service_declaration_get_type_ (decl),
                        cp_service_declaration_get_version (decl));
    }
  for (guint i = 0; requires != NULL && i < requires->len; i++)
    {
      CpServiceDependency *dep = g_ptr_array_index (requires, i);
      node_add_require (node, cp_service_dependency_get_type_ (dep),
                        cp_service_dependency_get_min_version (dep),
                        cp_service_dependency_get_required_for_startup (dep));
    }
  return TRUE;
}

/**
 * cp_dependency_graph_remove_plugin:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: a plugin's runtime id
 *
 * Removes a plugin and its declarations.
 *
 * Returns: whether the plugin was in the graph
 */
gboolean
cp_dependency_graph_remove_plugin (CpDependencyGraph *self,
                                   const char        *runtime_id)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (runtime_id != NULL, FALSE);
  return g_hash_table_remove (self->nodes, runtime_id);
}

/**
 * cp_dependency_graph_has_plugin:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: a plugin's runtime id
 *
 * Checks whether a plugin with @runtime_id is in the graph.
 *
 * Returns: whether a plugin with @runtime_id is in the graph
 */
gboolean
cp_dependency_graph_has_plugin (CpDependencyGraph *self,
                                const char        *runtime_id)
{
  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (runtime_id != NULL, FALSE);
  return g_hash_table_contains (self->nodes, runtime_id);
}

/**
 * cp_dependency_graph_get_self_id:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: a plugin's runtime id
 *
 * Gets the self id the plugin was added with , or %NULL if it is not in the
 * graph.
 *
 * Returns: (nullable): the self id the plugin was added with (empty if it
 *   had none), or %NULL if it is not in the graph
 */
const char *
cp_dependency_graph_get_self_id (CpDependencyGraph *self,
                                 const char        *runtime_id)
{
  Node *node;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), NULL);
  g_return_val_if_fail (runtime_id != NULL, NULL);
  node = g_hash_table_lookup (self->nodes, runtime_id);
  return node != NULL ? node->self_id : NULL;
}

/**
 * cp_dependency_graph_dup_plugins:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 *
 * Gets the runtime ids of the plugins in the graph, sorted by self id, then
 * runtime id.
 *
 * Returns: (transfer full) (array zero-terminated=1): the runtime ids of the
 *   plugins in the graph, sorted by self id, then runtime id
 */
char **
cp_dependency_graph_dup_plugins (CpDependencyGraph *self)
{
  g_autoptr(GPtrArray) nodes = NULL;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), NULL);
  nodes = all_nodes (self);
  return runtime_ids_strv (nodes);
}

/* The nodes other than @except (may be NULL) that satisfy a dependency. */
static GPtrArray *
find_providers (CpDependencyGraph *self,
                const char        *service_type,
                const char        *min_version,
                const Node        *except)
{
  GPtrArray *found = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->nodes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (value != except && node_satisfies (value, service_type, min_version))
      g_ptr_array_add (found, value);
  return found;
}

/**
 * cp_dependency_graph_dup_providers:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @service_type: a service type
 * @min_version: (nullable): the lowest acceptable version, or %NULL for any;
 *   a string that is not a semantic version matches no provider
 *
 * Gets the runtime ids of the plugins providing @service_type at @min_version
 * or newer, sorted by self id, then runtime id; empty if there are none.
 *
 * Returns: (transfer full) (array zero-terminated=1): the runtime ids of the
 *   plugins providing @service_type at @min_version or newer, sorted by self
 *   id, then runtime id; empty if there are none
 */
char **
cp_dependency_graph_dup_providers (CpDependencyGraph *self,
                                   const char        *service_type,
                                   const char        *min_version)
{
  g_autoptr(GPtrArray) found = NULL;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), NULL);
  g_return_val_if_fail (service_type != NULL, NULL);
  found = find_providers (self, service_type, min_version ? min_version : "", NULL);
  return runtime_ids_strv (found);
}

/**
 * cp_dependency_graph_has_service:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @service_type: a service type
 * @min_version: (nullable): the lowest acceptable version, or %NULL for any;
 *   a string that is not a semantic version matches no provider
 *
 * Checks whether some plugin provides @service_type at @min_version or newer
 * ).
 *
 * Returns: whether some plugin provides @service_type at @min_version or
 *   newer (see cp_dependency_graph_compare_versions())
 */
gboolean
cp_dependency_graph_has_service (CpDependencyGraph *self,
                                 const char        *service_type,
                                 const char        *min_version)
{
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (service_type != NULL, FALSE);
  g_hash_table_iter_init (&iter, self->nodes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (node_satisfies (value, service_type, min_version ? min_version : ""))
      return TRUE;
  return FALSE;
}

/* Appends to @msg why @node's dependency @req is not met, and returns FALSE,
 * or returns TRUE if another plugin satisfies it. */
static gboolean
explain_requirement (CpDependencyGraph *self,
                     const Node        *node,
                     const Require     *req,
                     GString           *msg)
{
  g_autoptr(GPtrArray) ok = find_providers (self, req->type, req->min_version, node);
  g_autoptr(GPtrArray) any = NULL;

  if (ok->len > 0)
    return TRUE;
  if (msg->len > 0)
    g_string_append (msg, "; ");
  g_string_append_printf (msg, "plugin %s (runtime id %s) requires service %s",
                          node->self_id, node->runtime_id, req->type);
  if (req->min_version[0] != '\0')
    g_string_append_printf (msg, " >= %s", req->min_version);

  any = find_providers (self, req->type, "", node);
  if (any->len == 0)
    {
      g_string_append (msg, node_provides_type (node, req->type)
                       ? ", which only it provides itself" : ", but no plugin provides it");
      return FALSE;
    }
  g_ptr_array_sort (any, node_compare);
  g_string_append (msg, ", but the only providers are too old:");
  for (guint i = 0, listed = 0; i < any->len; i++)
    {
      const Node *p = g_ptr_array_index (any, i);
      for (guint j = 0; j < p->provides->len; j++)
        {
          const Provide *pv = g_ptr_array_index (p->provides, j);
          if (g_str_equal (pv->type, req->type))
            g_string_append_printf (msg, "%s %s %s", listed++ > 0 ? "," : "", p->runtime_id,
                                    pv->version[0] ? pv->version : "(unversioned)");
        }
    }
  return FALSE;
}

/**
 * cp_dependency_graph_check_plugin:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: a plugin's runtime id
 * @unavailable: (out) (optional) (transfer full) (array zero-terminated=1):
 *   the service types of the plugin's required dependencies that no other
 *   plugin satisfies, sorted; empty when it returns %TRUE
 * @error: return location for a #GError
 *
 * Checks that every dependency a plugin needs to start
 * (`required_for_startup`) is provided by another plugin at a sufficient
 * version — the host's check before it admits a plugin.
 *
 * Returns: %TRUE if they all are; otherwise %FALSE with
 *   %CP_ERROR_FAILED_PRECONDITION naming each missing type, its minimum
 *   version and, if there are providers that are too old, their versions
 *   (or %CP_ERROR_NOT_FOUND if the plugin is not in the graph)
 */
gboolean
cp_dependency_graph_check_plugin (CpDependencyGraph   *self,
                                  const char          *runtime_id,
                                  char              ***unavailable,
                                  GError             **error)
{
  g_autoptr(GString) msg = g_string_new (NULL);
  g_autoptr(GStrvBuilder) missing = g_strv_builder_new ();
  g_auto(GStrv) types = NULL;
  Node *node;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), FALSE);
  g_return_val_if_fail (runtime_id != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (unavailable != NULL)
    *unavailable = NULL;
  if ((node = lookup_node (self, runtime_id, error)) == NULL)
    return FALSE;
  for (guint i = 0; i < node->requires->len; i++)
    {
      const Require *req = g_ptr_array_index (node->requires, i);
      if (req->required && !explain_requirement (self, node, req, msg))
        g_strv_builder_add (missing, req->type);
    }
  types = g_strv_builder_end (missing);
  sort_strv (types);
  if (unavailable != NULL)
    *unavailable = g_strdupv (types);
  if (msg->len == 0)
    return TRUE;
  g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION, msg->str);
  return FALSE;
}

/* ---- start-up order ---- */

typedef struct
{
  GPtrArray *nodes;             /* Node*, sorted: the index is the tie-break rank */
  GArray **preds;               /* per node: indices of the providers it waits for */
  GArray **succs;               /* per node: indices of the plugins waiting for it */
  GPtrArray *unmet;             /* Node*, Require* pairs no other plugin satisfies */
} Edges;

static void
edges_clear (Edges *e)
{
  for (guint i = 0; e->nodes != NULL && i < e->nodes->len; i++)
    {
      g_array_unref (e->preds[i]);
      g_array_unref (e->succs[i]);
    }
  g_free (e->preds);
  g_free (e->succs);
  g_clear_pointer (&e->nodes, g_ptr_array_unref);
  g_clear_pointer (&e->unmet, g_ptr_array_unref);
}

static void
edges_add (Edges *e,
           guint  from,
           guint  to)
{
  GArray *preds = e->preds[to];

  for (guint k = 0; k < preds->len; k++)
    if (g_array_index (preds, guint, k) == from)
      return;
  g_array_append_val (preds, from);
  g_array_append_val (e->succs[from], to);
}

/* Builds the edges of the required dependencies. A dependency only the
 * plugin itself satisfies becomes a self-edge: a cycle of one. */
static void
edges_build (CpDependencyGraph *self,
             Edges             *e)
{
  g_autoptr(GHashTable) by_type = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                         (GDestroyNotify) g_array_unref);
  guint n;

  e->nodes = sorted_nodes (self);
  e->unmet = g_ptr_array_new ();
  n = e->nodes->len;
  e->preds = g_new0 (GArray *, n);
  e->succs = g_new0 (GArray *, n);
  for (guint i = 0; i < n; i++)
    {
      e->preds[i] = g_array_new (FALSE, FALSE, sizeof (guint));
      e->succs[i] = g_array_new (FALSE, FALSE, sizeof (guint));
    }
  /* type -> ranks of the nodes providing it, so that each dependency only
   * looks at the providers of its type */
  for (guint i = 0; i < n; i++)
    {
      const Node *node = g_ptr_array_index (e->nodes, i);
      for (guint k = 0; k < node->provides->len; k++)
        {
          const char *type = ((Provide *) g_ptr_array_index (node->provides, k))->type;
          GArray *ranks = g_hash_table_lookup (by_type, type);

          if (ranks == NULL)
            g_hash_table_insert (by_type, (gpointer) type,
                                 ranks = g_array_new (FALSE, FALSE, sizeof (guint)));
          if (ranks->len == 0 || g_array_index (ranks, guint, ranks->len - 1) != i)
            g_array_append_val (ranks, i);
        }
    }
  for (guint i = 0; i < n; i++)
    {
      const Node *node = g_ptr_array_index (e->nodes, i);
      for (guint r = 0; r < node->requires->len; r++)
        {
          const Require *req = g_ptr_array_index (node->requires, r);
          GArray *ranks = g_hash_table_lookup (by_type, req->type);
          gboolean found = FALSE;

          if (!req->required)
            continue;
          for (guint k = 0; ranks != NULL && k < ranks->len; k++)
            {
              guint j = g_array_index (ranks, guint, k);
              if (j != i && node_satisfies (g_ptr_array_index (e->nodes, j),
                                            req->type, req->min_version))
                {
                  edges_add (e, j, i);
                  found = TRUE;
                }
            }
          if (!found && node_satisfies (node, req->type, req->min_version))
            edges_add (e, i, i);
          else if (!found)
            {
              g_ptr_array_add (e->unmet, (gpointer) node);
              g_ptr_array_add (e->unmet, (gpointer) req);
            }
        }
    }
}

/* Walks from the first plugin left over by Kahn's algorithm to the first of
 * the providers it still waits for until a plugin repeats: every leftover
 * plugin waits for a leftover provider, so this ends on a cycle. The cycle
 * is returned in "requires" order, rotated to start at its lowest rank. */
static GPtrArray *
find_cycle (Edges          *e,
            const gboolean *done)
{
  guint n = e->nodes->len, start = 0, at, lowest;
  g_autofree gint *seen = g_new (gint, n);
  g_autoptr(GArray) path = g_array_new (FALSE, FALSE, sizeof (guint));
  GPtrArray *cycle = g_ptr_array_new ();

  for (guint i = 0; i < n; i++)
    seen[i] = -1;
  while (done[start])
    start++;
  for (at = start; seen[at] < 0;)
    {
      guint next = G_MAXUINT;
      seen[at] = (gint) path->len;
      g_array_append_val (path, at);
      for (guint k = 0; k < e->preds[at]->len; k++)
        {
          guint p = g_array_index (e->preds[at], guint, k);
          if (!done[p] && p < next)
            next = p;
        }
      g_assert (next != G_MAXUINT);
      at = next;
    }
  lowest = at;
  for (guint k = (guint) seen[at]; k < path->len; k++)
    lowest = MIN (lowest, g_array_index (path, guint, k));
  for (guint k = 0, len = path->len - (guint) seen[at]; k < len; k++)
    {
      guint pos = (guint) seen[lowest] + k;
      if (pos >= path->len)
        pos -= len;
      g_ptr_array_add (cycle, g_ptr_array_index (e->nodes, g_array_index (path, guint, pos)));
    }
  return cycle;
}

static void
report_cycle (GPtrArray  *cycle,
              GError    **error)
{
  g_autoptr(GString) msg = g_string_new ("dependency cycle between plugins (→ = requires): ");

  for (guint i = 0; i < cycle->len; i++)
    g_string_append_printf (msg, "%s → ", ((Node *) g_ptr_array_index (cycle, i))->runtime_id);
  g_string_append (msg, ((Node *) g_ptr_array_index (cycle, 0))->runtime_id);
  g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION, msg->str);
}

/* Kahn's algorithm; the ready plugin of lowest rank goes next (n is the
 * number of plugins a host runs, so the linear scan is fine). Adds the
 * order to @order and returns NULL, or returns the cycle that blocks it. */
static GPtrArray *
topological_order (Edges        *e,
                   GStrvBuilder *order)
{
  guint n = e->nodes->len, n_done = 0;
  g_autofree guint *waiting = g_new (guint, n);
  g_autofree gboolean *done = g_new0 (gboolean, n);

  for (guint i = 0; i < n; i++)
    waiting[i] = e->preds[i]->len;
  while (n_done < n)
    {
      guint next = 0;
      while (next < n && (done[next] || waiting[next] > 0))
        next++;
      if (next == n)
        return find_cycle (e, done);
      done[next] = TRUE;
      n_done++;
      if (order != NULL)
        g_strv_builder_add (order, ((Node *) g_ptr_array_index (e->nodes, next))->runtime_id);
      for (guint k = 0; k < e->succs[next]->len; k++)
        waiting[g_array_index (e->succs[next], guint, k)]--;
    }
  return NULL;
}

/**
 * cp_dependency_graph_dup_startup_order:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @error: return location for a #GError
 *
 * Computes the order in which to start the plugins: each after every
 * plugin that provides one of its `required_for_startup` dependencies at a
 * sufficient version. Among the plugins that could start next, the one with
 * the lowest self id, then runtime id, goes first, so the order does not
 * depend on how or when the plugins were added. Optional dependencies do
 * not order anything.
 *
 * Missing providers are checked first: if a required dependency has no
 * provider other than the plugin itself at a sufficient version, the call
 * fails with %CP_ERROR_FAILED_PRECONDITION naming every such plugin, type
 * and minimum version (and the versions of providers that are too old). A
 * plugin that requires only what it provides itself is a cycle of one.
 * Then, on a cycle, it fails with %CP_ERROR_FAILED_PRECONDITION and a
 * message such as `… a-1 → b-1 → a-1`;
 * [method@ConnectPlugin.DependencyGraph.dup_cycle] then returns its members.
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the runtime
 *   ids in start-up order, or %NULL on error
 */
char **
cp_dependency_graph_dup_startup_order (CpDependencyGraph  *self,
                                       GError            **error)
{
  g_autoptr(GString) msg = g_string_new (NULL);
  g_autoptr(GStrvBuilder) order = g_strv_builder_new ();
  g_autoptr(GPtrArray) found = NULL;
  Edges e = { 0 };

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  edges_build (self, &e);
  for (guint i = 0; i < e.unmet->len; i += 2)
    explain_requirement (self, g_ptr_array_index (e.unmet, i),
                         g_ptr_array_index (e.unmet, i + 1), msg);
  if (msg->len > 0)
    {
      g_set_error_literal (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION, msg->str);
      edges_clear (&e);
      return NULL;
    }

  found = topological_order (&e, order);
  edges_clear (&e);
  if (found != NULL)
    {
      report_cycle (found, error);
      return NULL;
    }
  return g_strv_builder_end (order);
}

/**
 * cp_dependency_graph_dup_cycle:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 *
 * Finds the dependency cycle that
 * [method@ConnectPlugin.DependencyGraph.dup_startup_order] reports in its
 * error message, as a list. Missing providers are ignored here.
 *
 * Returns: (transfer full) (array zero-terminated=1) (nullable): the runtime
 *   ids that form a cycle, each requiring the next and the last requiring
 *   the first, starting at the lowest self id (then runtime id); %NULL if
 *   there is none
 */
char **
cp_dependency_graph_dup_cycle (CpDependencyGraph *self)
{
  g_autoptr(GPtrArray) found = NULL;
  g_autoptr(GStrvBuilder) ids = g_strv_builder_new ();
  Edges e = { 0 };

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), NULL);
  edges_build (self, &e);
  found = topological_order (&e, NULL);
  edges_clear (&e);
  if (found == NULL)
    return NULL;
  for (guint i = 0; i < found->len; i++)
    g_strv_builder_add (ids, ((Node *) g_ptr_array_index (found, i))->runtime_id);
  return g_strv_builder_end (ids);
}

/* ---- impact analysis ---- */

/* Whether some node outside @gone satisfies @req of @node. */
static gboolean
still_satisfied (CpDependencyGraph *self,
                 const Node        *node,
                 const Require     *req,
                 GHashTable        *gone)
{
  g_autoptr(GPtrArray) providers = find_providers (self, req->type, req->min_version, node);

  for (guint i = 0; i < providers->len; i++)
    if (!g_hash_table_contains (gone, g_ptr_array_index (providers, i)))
      return TRUE;
  return FALSE;
}

/* Whether some node in @gone satisfied @req of @node. */
static gboolean
served_by_gone (const Node    *node,
                const Require *req,
                GHashTable    *gone)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, gone);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (key != node && node_satisfies (key, req->type, req->min_version))
      return TRUE;
  return FALSE;
}

/* Whether @user has a required dependency on @type that @gone_node served
 * and that no plugin outside @gone (and other than @user) serves. */
static gboolean
loses_dependency (const Node *user,
                  const Node *gone_node,
                  const char *type,
                  GHashTable *providers,
                  GHashTable *gone)
{
  GPtrArray *candidates = g_hash_table_lookup (providers, type);

  for (guint r = 0; r < user->requires->len; r++)
    {
      const Require *req = g_ptr_array_index (user->requires, r);
      gboolean kept = FALSE;

      if (!req->required || !g_str_equal (req->type, type) || gone_node == user ||
          !node_satisfies (gone_node, type, req->min_version))
        continue;
      for (guint k = 0; !kept && candidates != NULL && k < candidates->len; k++)
        {
          const Node *c = g_ptr_array_index (candidates, k);
          kept = c != user && !g_hash_table_contains (gone, c) &&
                 node_satisfies (c, type, req->min_version);
        }
      if (!kept)
        return TRUE;
    }
  return FALSE;
}

/* type -> GPtrArray of the nodes that provide it (@consumers FALSE) or
 * require it for start-up (@consumers TRUE) */
static GHashTable *
index_by_type (CpDependencyGraph *self,
               gboolean           consumers)
{
  GHashTable *index = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                             (GDestroyNotify) g_ptr_array_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->nodes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const Node *node = value;
      GPtrArray *decls = consumers ? node->requires : node->provides;

      for (guint i = 0; i < decls->len; i++)
        {
          const char *type = consumers ? ((Require *) g_ptr_array_index (decls, i))->type
                                       : ((Provide *) g_ptr_array_index (decls, i))->type;
          GPtrArray *nodes;

          if (consumers && !((Require *) g_ptr_array_index (decls, i))->required)
            continue;
          if ((nodes = g_hash_table_lookup (index, type)) == NULL)
            g_hash_table_insert (index, (gpointer) type, nodes = g_ptr_array_new ());
          if (nodes->len == 0 || g_ptr_array_index (nodes, nodes->len - 1) != node)
            g_ptr_array_add (nodes, value);
        }
    }
  return index;
}

/* Adds to @gone, breadth first from @target, every plugin that loses a
 * required dependency; only the consumers of a gone plugin's types are
 * looked at, so this is linear in the edges it follows. */
static void
grow_gone (CpDependencyGraph *self,
           const Node        *target,
           GHashTable        *providers,
           GHashTable        *gone,
           GPtrArray         *affected,
           GPtrArray         *direct)
{
  g_autoptr(GHashTable) consumers = index_by_type (self, TRUE);
  const Node *g = target;

  for (guint next = 0;; g = g_ptr_array_index (affected, next++))
    {
      for (guint i = 0; i < g->provides->len; i++)
        {
          const Provide *p = g_ptr_array_index (g->provides, i);
          GPtrArray *users = g_hash_table_lookup (consumers, p->type);

          for (guint u = 0; users != NULL && u < users->len; u++)
            {
              Node *user = g_ptr_array_index (users, u);
              if (!g_hash_table_contains (gone, user) &&
                  loses_dependency (user, g, p->type, providers, gone))
                {
                  g_hash_table_add (gone, user);
                  g_ptr_array_add (affected, user);
                  if (g == target)
                    g_ptr_array_add (direct, user);
                }
            }
        }
      if (next == affected->len)
        break;
    }
}

/* The plugins outside @gone with a dependency @gone served: rebound ones
 * (still served by someone else) or degraded ones (an optional one lost). */
static void
classify_survivors (CpDependencyGraph *self,
                    GHashTable        *gone,
                    GPtrArray         *degraded,
                    GPtrArray         *rebound)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->nodes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const Node *node = value;
      gboolean lost = FALSE, kept = FALSE;

      if (g_hash_table_contains (gone, node))
        continue;
      for (guint r = 0; r < node->requires->len; r++)
        {
          const Require *req = g_ptr_array_index (node->requires, r);
          if (!served_by_gone (node, req, gone))
            continue;
          if (still_satisfied (self, node, req, gone))
            kept = TRUE;
          else
            lost = TRUE;
        }
      if (lost)
        g_ptr_array_add (degraded, value);
      else if (kept)
        g_ptr_array_add (rebound, value);
    }
}

/* For every type the gone plugins provide: the other providers (any version). */
static void
collect_services (GHashTable         *providers,
                  CpDependencyImpact *impact,
                  const Node         *target,
                  GHashTable         *gone)
{
  g_autoptr(GStrvBuilder) services = g_strv_builder_new ();
  g_autoptr(GStrvBuilder) unavailable = g_strv_builder_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, gone);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      const Node *node = key;
      for (guint i = 0; i < node->provides->len; i++)
        {
          const Provide *p = g_ptr_array_index (node->provides, i);
          g_autoptr(GPtrArray) others = NULL;

          if (g_hash_table_contains (impact->alternatives, p->type))
            continue;
          others = g_ptr_array_copy (g_hash_table_lookup (providers, p->type), NULL, NULL);
          for (guint j = others->len; j > 0; j--)
            if (g_hash_table_contains (gone, g_ptr_array_index (others, j - 1)))
              g_ptr_array_remove_index_fast (others, j - 1);
          if (others->len == 0)
            g_strv_builder_add (unavailable, p->type);
          g_hash_table_insert (impact->alternatives, g_strdup (p->type),
                               runtime_ids_strv (others));
        }
    }
  for (guint i = 0; i < target->provides->len; i++)
    {
      const char *type = ((Provide *) g_ptr_array_index (target->provides, i))->type;
      /* a plugin may declare a type twice (two versions): list it once */
      if (g_hash_table_add (seen, (gpointer) type))
        g_strv_builder_add (services, type);
    }
  impact->services = g_strv_builder_end (services);
  impact->unavailable = g_strv_builder_end (unavailable);
  sort_strv (impact->services);
  sort_strv (impact->unavailable);
}

/**
 * cp_dependency_graph_analyze_impact:
 * @self: a [class@ConnectPlugin.DependencyGraph]
 * @runtime_id: the plugin that would go
 *
 * Tells what removing a plugin would break, without removing it. A plugin
 * whose `required_for_startup` dependency was served by the plugin and has
 * no other provider at a sufficient version is affected, and goes with it:
 * the analysis follows such losses transitively. Alternatives are providers
 * outside the removed plugin and every affected one.
 *
 * Returns: (transfer full) (nullable): the impact, or %NULL if @runtime_id
 *   is not in the graph
 */
CpDependencyImpact *
cp_dependency_graph_analyze_impact (CpDependencyGraph *self,
                                    const char        *runtime_id)
{
  g_autoptr(CpDependencyImpact) impact = NULL;
  g_autoptr(GHashTable) gone = NULL;
  g_autoptr(GHashTable) providers = NULL;
  g_autoptr(GPtrArray) affected = g_ptr_array_new ();
  g_autoptr(GPtrArray) direct = g_ptr_array_new ();
  g_autoptr(GPtrArray) degraded = g_ptr_array_new ();
  g_autoptr(GPtrArray) rebound = g_ptr_array_new ();
  Node *target;

  g_return_val_if_fail (CP_IS_DEPENDENCY_GRAPH (self), NULL);
  g_return_val_if_fail (runtime_id != NULL, NULL);

  if ((target = g_hash_table_lookup (self->nodes, runtime_id)) == NULL)
    return NULL;
  impact = g_object_new (CP_TYPE_DEPENDENCY_IMPACT, NULL);
  impact->target = g_strdup (runtime_id);
  gone = g_hash_table_new (NULL, NULL);
  g_hash_table_add (gone, target);

  providers = index_by_type (self, FALSE);
  grow_gone (self, target, providers, gone, affected, direct);
  classify_survivors (self, gone, degraded, rebound);
  collect_services (providers, impact, target, gone);

  impact->affected = runtime_ids_strv (affected);
  impact->direct = runtime_ids_strv (direct);
  impact->degraded = runtime_ids_strv (degraded);
  impact->rebound = runtime_ids_strv (rebound);
  return g_steal_pointer (&impact);
}
