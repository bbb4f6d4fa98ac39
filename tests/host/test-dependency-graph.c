/* test-dependency-graph.c: CpDependencyGraph
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The cases are tables of plugins written as
 *   "RUNTIME_ID SELF_ID [P:type@version]... [R:type>=min]... [O:type>=min]..."
 * (P = provides, R = requires for start-up, O = optional dependency; the
 * version parts may be left out). Every ordering case is run under every
 * insertion order of its plugins.
 */
#include <string.h>

#include <connectplugin.h>
#include "connectplugin/protocol/handshake.cp.h"

static void
add_spec (CpDependencyGraph *graph,
          const char        *spec)
{
  g_auto(GStrv) parts = g_strsplit (spec, " ", -1);
  g_autoptr(GError) error = NULL;

  g_assert_true (cp_dependency_graph_add_plugin (graph, parts[0], parts[1], &error));
  g_assert_no_error (error);
  for (guint i = 2; parts[i] != NULL; i++)
    {
      const char *body = parts[i] + 2;
      g_auto(GStrv) tv = NULL;

      if (parts[i][0] == 'P')
        {
          tv = g_strsplit (body, "@", 2);
          g_assert_true (cp_dependency_graph_add_provides (graph, parts[0], tv[0], tv[1], &error));
        }
      else
        {
          tv = g_strsplit (body, ">=", 2);
          g_assert_true (cp_dependency_graph_add_requires (graph, parts[0], tv[0], tv[1],
                                                           parts[i][0] == 'R', &error));
        }
      g_assert_no_error (error);
    }
}

/* Builds a graph from @specs added in the order given by @perm. */
static CpDependencyGraph *
build_graph (const char * const *specs,
             const guint        *perm,
             guint               n)
{
  CpDependencyGraph *graph = cp_dependency_graph_new ();
  for (guint i = 0; i < n; i++)
    add_spec (graph, specs[perm != NULL ? perm[i] : i]);
  return graph;
}

/* Steps @perm to the next permutation in lexicographic order. */
static gboolean
next_permutation (guint *perm,
                  guint  n)
{
  guint i, j, t;

  if (n < 2)
    return FALSE;
  for (i = n - 1; i > 0 && perm[i - 1] >= perm[i]; i--)
    ;
  if (i == 0)
    return FALSE;
  for (j = n - 1; perm[j] <= perm[i - 1]; j--)
    ;
  t = perm[i - 1], perm[i - 1] = perm[j], perm[j] = t;
  for (j = n - 1; i < j; i++, j--)
    t = perm[i], perm[i] = perm[j], perm[j] = t;
  return TRUE;
}

typedef struct
{
  const char *name;
  const char *specs[7];
  const char *order;            /* space-separated, or NULL on error */
  const char *cycle;            /* space-separated, or NULL */
  const char *message;          /* a substring of the error message */
} OrderCase;

static const OrderCase order_cases[] = {
  { "empty", { NULL }, "", NULL, NULL },
  { "independent, by self id then runtime id",
    { "z-1 zeta", "b-2 alpha", "a-9 beta", "b-1 alpha", NULL },
    "b-1 b-2 a-9 z-1", NULL, NULL },
  { "chain",
    { "app-1 app R:cache", "cache-1 cache P:cache@1.0.0 R:store",
      "store-1 store P:store@1.0.0", NULL },
    "store-1 cache-1 app-1", NULL, NULL },
  { "diamond",
    { "app-1 app R:cache R:logger", "logger-1 logger P:logger@1.0.0 R:store",
      "cache-1 cache P:cache@1.0.0 R:store", "store-1 store P:store@1.0.0", NULL },
    "store-1 cache-1 logger-1 app-1", NULL, NULL },
  { "after every provider",
    { "app-1 app R:store", "store-b sb P:store@1.0.0", "store-a sa P:store@2.0.0",
      "aaa-1 aaa", NULL },
    "aaa-1 store-a store-b app-1", NULL, NULL },
  { "only providers new enough order",
    { "app-1 app P:app R:store>=2.0.0", "old-1 zold P:store@1.0.0 R:app", "new-1 new P:store@2.1.0",
      NULL },
    "new-1 app-1 old-1", NULL, NULL },
  { "version satisfied",
    { "app-1 app R:store>=1.2.0", "store-1 store P:store@1.10.0", NULL },
    "store-1 app-1", NULL, NULL },
  { "optional dependencies do not order",
    { "app-1 app O:zeta O:missing", "zeta-1 zeta P:zeta@1.0.0", NULL },
    "app-1 zeta-1", NULL, NULL },
  { "cycle of two",
    { "a-1 a P:x R:y", "b-1 b P:y R:x", "c-1 c", NULL },
    NULL, "a-1 b-1", "dependency cycle between plugins (→ = requires): a-1 → b-1 → a-1" },
  { "cycle of three, reported from its lowest self id",
    { "d-1 d R:x", "a-1 a P:x R:z", "b-1 b P:y R:x", "c-1 c P:z R:y", NULL },
    NULL, "a-1 c-1 b-1", "a-1 → c-1 → b-1 → a-1" },
  { "cycle entered from a plugin outside it",
    { "a-1 a R:x", "c-1 c P:x R:y", "d-1 d P:y R:z", "b-1 b P:z R:x", NULL },
    NULL, "b-1 c-1 d-1", "b-1 → c-1 → d-1 → b-1" },
  { "two cycles: the one reached from the lowest plugin",
    { "a-1 a P:p R:q", "b-1 b P:q R:p", "c-1 c P:r R:s", "d-1 d P:s R:r", NULL },
    NULL, "a-1 b-1", "a-1 → b-1 → a-1" },
  { "self dependency",
    { "a-1 a P:x R:x", "b-1 b", NULL },
    NULL, "a-1", "a-1 → a-1" },
  { "self dependency with another provider",
    { "a-1 a P:x R:x", "b-1 b P:x", NULL },
    "b-1 a-1", NULL, NULL },
  { "missing provider",
    { "app-1 app R:cache>=2.0.0 R:store", "store-1 store P:store", NULL },
    NULL, NULL,
    "plugin app (runtime id app-1) requires service cache >= 2.0.0, but no plugin provides it" },
  { "too old provider",
    { "app-1 app R:cache>=2.0.0", "cache-1 cache P:cache@1.9.9", NULL },
    NULL, NULL,
    "requires service cache >= 2.0.0, but the only providers are too old: cache-1 1.9.9" },
  { "prerelease below its release",
    { "app-1 app R:cache>=2.0.0", "cache-1 cache P:cache@2.0.0-rc.1", NULL },
    NULL, NULL, "the only providers are too old: cache-1 2.0.0-rc.1" },
  { "release above its prerelease",
    { "app-1 app R:cache>=2.0.0-rc.1", "cache-1 cache P:cache@2.0.0", NULL },
    "cache-1 app-1", NULL, NULL },
  { "every too old provider listed",
    { "app-1 app R:cache>=2.0.0", "cache-2 cache P:cache@1.0.0 P:cache@1.5.0",
      "cache-1 cache P:cache@1.9.0", NULL },
    NULL, NULL, "too old: cache-1 1.9.0, cache-2 1.0.0, cache-2 1.5.0" },
  { "unversioned provider and a minimum version",
    { "app-1 app R:cache>=1.0.0", "cache-1 cache P:cache", NULL },
    NULL, NULL, "too old: cache-1 (unversioned)" },
  { "every missing provider named",
    { "b-1 b R:y", "a-1 a R:x", NULL },
    NULL, NULL,
    "plugin a (runtime id a-1) requires service x, but no plugin provides it; "
    "plugin b (runtime id b-1) requires service y, but no plugin provides it" },
};

static void
check_order (const OrderCase *c,
             const guint     *perm,
             guint            n)
{
  g_autoptr(CpDependencyGraph) graph = build_graph (c->specs, perm, n);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) order = cp_dependency_graph_dup_startup_order (graph, &error);
  g_auto(GStrv) cycle = cp_dependency_graph_dup_cycle (graph);

  if (c->order != NULL)
    {
      g_autofree char *joined = NULL;
      g_assert_no_error (error);
      g_assert_null (cycle);
      joined = g_strjoinv (" ", order);
      g_assert_cmpstr (joined, ==, c->order);
      return;
    }
  g_assert_null (order);
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_nonnull (strstr (error->message, c->message));
  if (c->cycle != NULL)
    {
      g_autofree char *joined = NULL;
      g_assert_nonnull (cycle);
      joined = g_strjoinv (" ", cycle);
      g_assert_cmpstr (joined, ==, c->cycle);
    }
  else
    g_assert_null (cycle);
}

static void
test_order (gconstpointer data)
{
  const OrderCase *c = data;
  guint n = g_strv_length ((char **) c->specs), perm[7], runs = 0;

  for (guint i = 0; i < n; i++)
    perm[i] = i;
  do
    {
      check_order (c, perm, n);
      runs++;
    }
  while (next_permutation (perm, n));
  g_test_message ("%s: %u insertion orders", c->name, runs);
}

typedef struct
{
  const char *a, *b;
  int sign;
} VersionCase;

static const VersionCase version_cases[] = {
  { "1.0.0", "1.0.0", 0 },
  { "1.10.0", "1.9.0", 1 },
  { "2.0.0", "10.0.0", -1 },
  { "1.0.1", "1.0.0", 1 },
  { "1.0.0-alpha", "1.0.0", -1 },
  { "1.0.0-alpha", "1.0.0-alpha.1", -1 },
  { "1.0.0-alpha.1", "1.0.0-alpha.beta", -1 },
  { "1.0.0-alpha.beta", "1.0.0-beta", -1 },
  { "1.0.0-beta.2", "1.0.0-beta.11", -1 },
  { "1.0.0-beta.11", "1.0.0-rc.1", -1 },
  { "1.0.0-rc.1", "1.0.0", -1 },
  { "1.0.0-rc.01", "1.0.0-rc.1", 0 },
  { "v1.0.0", "0.0.1", -1 },
  { "99999999999999999.0.0", "1.0.0", 1 },
  { "garbage", "0.0.1", -1 },
  { "garbage", "garbage", 0 },
};

static int
sign (int v)
{
  return (v > 0) - (v < 0);
}

static void
test_versions (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (version_cases); i++)
    {
      const VersionCase *c = &version_cases[i];
      g_test_message ("%s vs %s", c->a, c->b);
      g_assert_cmpint (sign (cp_dependency_graph_compare_versions (c->a, c->b)), ==, c->sign);
      g_assert_cmpint (sign (cp_dependency_graph_compare_versions (c->b, c->a)), ==, -c->sign);
    }
}

static void
test_invalid (void)
{
  static const char *bad_versions[] = {
    "1.x", "1..2", "1.0.0-", "1.0.0+", "x1", "1.0.0 ", "-1", "1.0.0.0", "v1.0.0", "1.2",
    "1.0.0+build", "99999999999999999999.0.0",
  };
  g_autoptr(CpDependencyGraph) graph = cp_dependency_graph_new ();
  g_autoptr(GError) error = NULL;

  g_assert_false (cp_dependency_graph_add_plugin (graph, "", "x", &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (cp_dependency_graph_add_provides (graph, "nope", "x", "1.0.0", &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_true (cp_dependency_graph_add_plugin (graph, "a-1", NULL, &error));
  g_assert_cmpstr (cp_dependency_graph_get_self_id (graph, "a-1"), ==, "");
  g_assert_false (cp_dependency_graph_add_provides (graph, "a-1", "", "1.0.0", &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  for (guint i = 0; i < G_N_ELEMENTS (bad_versions); i++)
    {
      g_test_message ("version %s", bad_versions[i]);
      g_assert_false (cp_dependency_graph_add_provides (graph, "a-1", "x", bad_versions[i], &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      g_assert_false (cp_dependency_graph_add_requires (graph, "a-1", "x", bad_versions[i],
                                                        TRUE, &error));
      g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }
  g_assert_false (cp_dependency_graph_has_service (graph, "x", NULL));
}

static void
test_lookup (void)
{
  const char *specs[] = { "cache-2 cache P:cache@2.1.0", "cache-1 cache P:cache@1.0.0",
                          "app-1 app R:cache>=2.0.0 O:log" };
  g_autoptr(CpDependencyGraph) graph = build_graph (specs, NULL, 3);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) all = cp_dependency_graph_dup_plugins (graph);
  g_auto(GStrv) providers = cp_dependency_graph_dup_providers (graph, "cache", NULL);
  g_auto(GStrv) new_enough = cp_dependency_graph_dup_providers (graph, "cache", "2.0.0");
  g_auto(GStrv) none = cp_dependency_graph_dup_providers (graph, "cache", "3.0.0");
  g_auto(GStrv) invalid = cp_dependency_graph_dup_providers (graph, "cache", "3");
  g_auto(GStrv) unavailable = NULL;

  g_assert_cmpstrv (all, ((const char *[]) { "app-1", "cache-1", "cache-2", NULL }));
  g_assert_cmpstrv (providers, ((const char *[]) { "cache-1", "cache-2", NULL }));
  g_assert_cmpstrv (new_enough, ((const char *[]) { "cache-2", NULL }));
  g_assert_cmpstrv (none, ((const char *[]) { NULL }));
  g_assert_cmpstrv (invalid, ((const char *[]) { NULL }));
  g_assert_false (cp_dependency_graph_has_service (graph, "cache", "v1.0.0"));
  g_assert_true (cp_dependency_graph_has_service (graph, "cache", NULL));
  g_assert_true (cp_dependency_graph_has_service (graph, "cache", "2.1.0"));
  g_assert_true (cp_dependency_graph_has_service (graph, "cache", "2.1.0-rc.1"));
  g_assert_false (cp_dependency_graph_has_service (graph, "cache", "2.1.1"));
  g_assert_false (cp_dependency_graph_has_service (graph, "log", NULL));
  g_assert_true (cp_dependency_graph_has_plugin (graph, "app-1"));
  g_assert_cmpstr (cp_dependency_graph_get_self_id (graph, "app-1"), ==, "app");
  g_assert_null (cp_dependency_graph_get_self_id (graph, "nope"));

  g_assert_true (cp_dependency_graph_check_plugin (graph, "app-1", &unavailable, &error));
  g_assert_no_error (error);
  g_assert_cmpstrv (unavailable, ((const char *[]) { NULL }));
  g_clear_pointer (&unavailable, g_strfreev);

  /* Removing the new provider leaves only a too old one. */
  g_assert_true (cp_dependency_graph_remove_plugin (graph, "cache-2"));
  g_assert_false (cp_dependency_graph_remove_plugin (graph, "cache-2"));
  g_assert_false (cp_dependency_graph_has_plugin (graph, "cache-2"));
  g_assert_false (cp_dependency_graph_has_service (graph, "cache", "2.0.0"));
  g_assert_false (cp_dependency_graph_check_plugin (graph, "app-1", &unavailable, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_FAILED_PRECONDITION);
  g_assert_cmpstr (error->message, ==,
                   "plugin app (runtime id app-1) requires service cache >= 2.0.0, "
                   "but the only providers are too old: cache-1 1.0.0");
  g_assert_cmpstrv (unavailable, ((const char *[]) { "cache", NULL }));
  g_clear_error (&error);
  g_assert_false (cp_dependency_graph_check_plugin (graph, "nope", NULL, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* Adding a plugin again replaces its declarations. */
  g_assert_true (cp_dependency_graph_add_plugin (graph, "app-1", "app2", &error));
  g_assert_true (cp_dependency_graph_check_plugin (graph, "app-1", NULL, &error));
  g_assert_cmpstr (cp_dependency_graph_get_self_id (graph, "app-1"), ==, "app2");
}

static void
test_declared (void)
{
  g_autoptr(CpDependencyGraph) graph = cp_dependency_graph_new ();
  g_autoptr(GPtrArray) provides = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) requires = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) bad = g_ptr_array_new_with_free_func (g_object_unref);
  CpServiceDeclaration *decl = cp_service_declaration_new ();
  CpServiceDependency *dep = cp_service_dependency_new ();
  CpServiceDeclaration *bad_decl = cp_service_declaration_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) order = NULL;

  cp_service_declaration_set_type_ (decl, "cache");
  cp_service_declaration_set_version (decl, "1.2.0");
  g_ptr_array_add (provides, decl);
  cp_service_dependency_set_type_ (dep, "cache");
  cp_service_dependency_set_min_version (dep, "1.0.0");
  cp_service_dependency_set_required_for_startup (dep, TRUE);
  g_ptr_array_add (requires, dep);
  cp_service_declaration_set_type_ (bad_decl, "cache");
  cp_service_declaration_set_version (bad_decl, "one");
  g_ptr_array_add (bad, bad_decl);

  g_assert_true (cp_dependency_graph_add_declared (graph, "app-1", "app", NULL, requires, &error));
  g_assert_true (cp_dependency_graph_add_declared (graph, "cache-1", "cache", provides, NULL,
                                                   &error));
  g_assert_no_error (error);
  order = cp_dependency_graph_dup_startup_order (graph, &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (order, ((const char *[]) { "cache-1", "app-1", NULL }));

  /* A malformed declaration leaves the plugin as it was. */
  g_assert_false (cp_dependency_graph_add_declared (graph, "cache-1", "cache", bad, NULL, &error));
  g_assert_error (error, CP_ERROR, CP_ERROR_INVALID_ARGUMENT);
  g_assert_true (cp_dependency_graph_has_service (graph, "cache", "1.2.0"));
}

typedef struct
{
  const char *name;
  const char *specs[7];
  const char *target;
  const char *affected, *direct, *degraded, *rebound;
  const char *services, *unavailable;
  const char *alternatives;     /* "type=id,id;type=" */
} ImpactCase;

static const ImpactCase impact_cases[] = {
  { "no alternative, transitive",
    { "store-1 store P:store@1.0.0", "cache-1 cache P:cache@1.0.0 R:store",
      "app-1 app R:cache", "log-1 log O:cache", "other-1 other P:other", NULL },
    "store-1", "app-1 cache-1", "cache-1", "log-1", "", "store", "cache store",
    "store=;cache=" },
  { "alternative provider",
    { "store-a sa P:store@1.0.0", "store-b sb P:store@1.5.0", "cache-1 cache R:store",
      "log-1 log O:store", NULL },
    "store-a", "", "", "", "cache-1 log-1", "store", "", "store=store-b" },
  { "alternative too old",
    { "store-a sa P:store@2.0.0", "store-b sb P:store@1.0.0", "cache-1 cache R:store>=2.0.0",
      NULL },
    "store-a", "cache-1", "cache-1", "", "", "store", "", "store=store-b" },
  { "alternative goes too",
    { "store-1 store P:store", "cache-1 cache P:cache R:store", "cache-2 cache2 P:cache R:store",
      "app-1 app R:cache", NULL },
    "store-1", "app-1 cache-1 cache-2", "cache-1 cache-2", "", "", "store", "cache store",
    "cache=;store=" },
  { "nothing depends on it",
    { "a-1 a P:x@1.0.0 P:x@2.0.0 P:w", "b-1 b", NULL },
    "a-1", "", "", "", "", "w x", "w x", "x=;w=" },
  { "already missing dependency is not an impact",
    { "a-1 a P:x", "b-1 b R:x R:y", "c-1 c R:nothing", NULL },
    "a-1", "b-1", "b-1", "", "", "x", "x", "x=" },
};

static void
assert_strv_is (const char * const *strv,
                const char         *expected)
{
  g_autofree char *joined = g_strjoinv (" ", (char **) strv);
  g_assert_cmpstr (joined, ==, expected);
}

static void
check_impact (const ImpactCase *c,
              const guint      *perm,
              guint             n)
{
  g_autoptr(CpDependencyGraph) graph = build_graph (c->specs, perm, n);
  g_autoptr(CpDependencyImpact) impact = cp_dependency_graph_analyze_impact (graph, c->target);
  g_auto(GStrv) alts = g_strsplit (c->alternatives, ";", -1);

  g_assert_nonnull (impact);
  g_assert_cmpstr (cp_dependency_impact_get_target (impact), ==, c->target);
  assert_strv_is (cp_dependency_impact_get_affected_plugins (impact), c->affected);
  assert_strv_is (cp_dependency_impact_get_directly_affected_plugins (impact), c->direct);
  assert_strv_is (cp_dependency_impact_get_degraded_plugins (impact), c->degraded);
  assert_strv_is (cp_dependency_impact_get_rebound_plugins (impact), c->rebound);
  assert_strv_is (cp_dependency_impact_get_services (impact), c->services);
  assert_strv_is (cp_dependency_impact_get_unavailable_services (impact), c->unavailable);
  for (guint i = 0; alts[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (alts[i], "=", 2);
      g_auto(GStrv) ids = g_strsplit (kv[1], ",", -1);
      g_auto(GStrv) got = cp_dependency_impact_dup_alternatives (impact, kv[0]);

      g_assert_cmpstrv (got, ids);
      g_assert_cmpint (cp_dependency_impact_has_alternative (impact, kv[0]), ==, ids[0] != NULL);
    }
  /* The analysis only reads the graph. */
  g_assert_true (cp_dependency_graph_has_plugin (graph, c->target));
}

static void
test_impact (gconstpointer data)
{
  const ImpactCase *c = data;
  guint n = g_strv_length ((char **) c->specs), perm[7];

  for (guint i = 0; i < n; i++)
    perm[i] = i;
  do
    check_impact (c, perm, n);
  while (next_permutation (perm, n));
}

static void
test_impact_unknown (void)
{
  g_autoptr(CpDependencyGraph) graph = cp_dependency_graph_new ();
  g_autoptr(CpDependencyImpact) impact = NULL;
  g_auto(GStrv) alts = NULL;

  g_assert_null (cp_dependency_graph_analyze_impact (graph, "nope"));
  add_spec (graph, "a-1 a P:x");
  impact = cp_dependency_graph_analyze_impact (graph, "a-1");
  g_assert_false (cp_dependency_impact_has_alternative (impact, "unrelated"));
  alts = cp_dependency_impact_dup_alternatives (impact, "unrelated");
  g_assert_cmpstrv (alts, ((const char *[]) { NULL }));
}

/* Random graphs: a start-up order puts every provider of a required
 * dependency before the plugin, and the answer (order or error) and the
 * impact do not change when the same plugins are added in another order. */
static void
test_random (void)
{
  static const char *versions[] = { "", "1.0.0", "2.0.0-rc.1", "2.0.0" };

  for (guint round = 0; round < 300; round++)
    {
      char *specs[8];
      guint n = (guint) g_test_rand_int_range (1, 8), perm[8];
      g_autoptr(CpDependencyGraph) a = NULL, b = NULL;
      g_autoptr(GError) error_a = NULL, error_b = NULL;
      g_auto(GStrv) order_a = NULL, order_b = NULL;

      for (guint i = 0; i < n; i++)
        {
          GString *spec = g_string_new (NULL);
          g_string_append_printf (spec, "p%u-%u s%u", i, round, (guint) g_test_rand_int_range (0, 4));
          for (gint k = g_test_rand_int_range (0, 3); k > 0; k--)
            g_string_append_printf (spec, " P:t%d@%s", g_test_rand_int_range (0, 5),
                                    versions[g_test_rand_int_range (0, 4)]);
          for (gint k = g_test_rand_int_range (0, 3); k > 0; k--)
            g_string_append_printf (spec, " %c:t%d>=%s", g_test_rand_bit () ? 'R' : 'O',
                                    g_test_rand_int_range (0, 5),
                                    versions[g_test_rand_int_range (0, 4)]);
          specs[i] = g_string_free (spec, FALSE);
          perm[i] = n - 1 - i;
        }
      a = build_graph ((const char * const *) specs, NULL, n);
      b = build_graph ((const char * const *) specs, perm, n);
      order_a = cp_dependency_graph_dup_startup_order (a, &error_a);
      order_b = cp_dependency_graph_dup_startup_order (b, &error_b);
      g_assert_true ((order_a == NULL) == (order_b == NULL));
      if (order_a == NULL)
        g_assert_cmpstr (error_a->message, ==, error_b->message);
      else
        {
          g_assert_cmpstrv (order_a, order_b);
          g_assert_cmpuint (g_strv_length (order_a), ==, n);
          /* every provider of a required dependency starts first */
          for (guint i = 0; order_a[i] != NULL; i++)
            for (guint j = i + 1; order_a[j] != NULL; j++)
              {
                g_autoptr(CpDependencyImpact) impact =
                  cp_dependency_graph_analyze_impact (a, order_a[j]);
                g_assert_false (g_strv_contains (
                  cp_dependency_impact_get_directly_affected_plugins (impact), order_a[i]));
              }
        }
      for (guint i = 0; i < n; i++)
        {
          g_autofree char *id = g_strdup_printf ("p%u-%u", i, round);
          g_autoptr(CpDependencyImpact) ia = cp_dependency_graph_analyze_impact (a, id);
          g_autoptr(CpDependencyImpact) ib = cp_dependency_graph_analyze_impact (b, id);
          g_assert_cmpstrv (cp_dependency_impact_get_affected_plugins (ia),
                            cp_dependency_impact_get_affected_plugins (ib));
          g_assert_cmpstrv (cp_dependency_impact_get_rebound_plugins (ia),
                            cp_dependency_impact_get_rebound_plugins (ib));
          g_assert_cmpstrv (cp_dependency_impact_get_unavailable_services (ia),
                            cp_dependency_impact_get_unavailable_services (ib));
        }
      for (guint i = 0; i < n; i++)
        g_free (specs[i]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (guint i = 0; i < G_N_ELEMENTS (order_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/host/dependency-graph/order/%u", i);
      g_test_add_data_func (path, &order_cases[i], test_order);
    }
  g_test_add_func ("/host/dependency-graph/versions", test_versions);
  g_test_add_func ("/host/dependency-graph/invalid", test_invalid);
  g_test_add_func ("/host/dependency-graph/lookup", test_lookup);
  g_test_add_func ("/host/dependency-graph/declared", test_declared);
  for (guint i = 0; i < G_N_ELEMENTS (impact_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/host/dependency-graph/impact/%u", i);
      g_test_add_data_func (path, &impact_cases[i], test_impact);
    }
  g_test_add_func ("/host/dependency-graph/impact/unknown", test_impact_unknown);
  g_test_add_func ("/host/dependency-graph/random", test_random);
  return g_test_run ();
}
