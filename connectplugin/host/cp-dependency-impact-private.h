/* cp-dependency-impact-private.h: the fields of CpDependencyImpact, which
 * cp_dependency_graph_analyze_impact () fills in
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-dependency-graph.h"

G_BEGIN_DECLS

struct _CpDependencyImpact
{
  GObject parent_instance;
  char *target;
  GStrv affected;
  GStrv direct;
  GStrv degraded;
  GStrv rebound;
  GStrv services;
  GStrv unavailable;
  GHashTable *alternatives;     /* service type -> GStrv */
};

G_END_DECLS
