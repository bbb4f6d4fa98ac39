package cpgo

// Follows connect-plugin-go's internal/depgraph/depgraph.go, which its
// Platform uses. Only required_for_startup dependencies are edges; a type
// is "available" when any node provides it (versions are not compared).

import (
	"fmt"
	"sort"
)

type DepGraph struct {
	nodes  map[string]*DepNode
	edges  map[string][]string // runtime_id → required types
	byType map[string][]string // type → provider runtime_ids
}

type DepNode struct {
	RuntimeID string
	SelfID    string
	Provides  []ServiceDeclaration
	Requires  []ServiceDependency
}

// ImpactAnalysis mirrors depgraph.ImpactAnalysis.
type ImpactAnalysis struct {
	TargetPlugin     string
	AffectedServices []string
	AffectedPlugins  []string
	OptionalImpact   []string
}

func NewDepGraph() *DepGraph {
	return &DepGraph{nodes: map[string]*DepNode{}, edges: map[string][]string{}, byType: map[string][]string{}}
}

func (g *DepGraph) Add(n *DepNode) {
	g.nodes[n.RuntimeID] = n
	required := []string{}
	for _, d := range n.Requires {
		if d.RequiredForStartup {
			required = append(required, d.Type)
		}
	}
	g.edges[n.RuntimeID] = required
	for _, s := range n.Provides {
		g.byType[s.Type] = append(g.byType[s.Type], n.RuntimeID)
	}
}

func (g *DepGraph) Remove(runtimeID string) {
	n, ok := g.nodes[runtimeID]
	if !ok {
		return
	}
	delete(g.nodes, runtimeID)
	delete(g.edges, runtimeID)
	for _, s := range n.Provides {
		ps := g.byType[s.Type]
		for i, id := range ps {
			if id == runtimeID {
				g.byType[s.Type] = append(ps[:i], ps[i+1:]...)
				break
			}
		}
		if len(g.byType[s.Type]) == 0 {
			delete(g.byType, s.Type)
		}
	}
}

func (g *DepGraph) HasService(serviceType string) bool { return len(g.byType[serviceType]) > 0 }

// StartupOrder: Kahn's algorithm, the ready queue kept sorted. The cycle
// error names no plugin, only counts; the missing-provider error names
// the first one met in map order.
func (g *DepGraph) StartupOrder() ([]string, error) {
	inDegree := map[string]int{}
	adj := map[string][]string{}
	for id := range g.nodes {
		inDegree[id] = 0
	}
	for id, required := range g.edges {
		for _, t := range required {
			providers := g.byType[t]
			if len(providers) == 0 {
				return nil, fmt.Errorf("plugin %s requires service %q but no provider exists", id, t)
			}
			for _, p := range providers {
				adj[p] = append(adj[p], id)
				inDegree[id]++
			}
		}
	}
	queue := []string{}
	for id, d := range inDegree {
		if d == 0 {
			queue = append(queue, id)
		}
	}
	sort.Strings(queue)
	result := make([]string, 0, len(g.nodes))
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		result = append(result, cur)
		for _, dep := range adj[cur] {
			inDegree[dep]--
			if inDegree[dep] == 0 {
				queue = append(queue, dep)
				sort.Strings(queue)
			}
		}
	}
	if len(result) != len(g.nodes) {
		return nil, fmt.Errorf("dependency cycle detected (processed %d of %d plugins)", len(result), len(g.nodes))
	}
	return result, nil
}

// GetImpact: the types the plugin provides, the plugins left without a
// required type (transitively), and those with an alternative provider or
// an optional dependency.
func (g *DepGraph) GetImpact(runtimeID string) *ImpactAnalysis {
	n, ok := g.nodes[runtimeID]
	if !ok {
		return &ImpactAnalysis{TargetPlugin: runtimeID}
	}
	impact := &ImpactAnalysis{TargetPlugin: runtimeID, AffectedServices: []string{}, AffectedPlugins: []string{}, OptionalImpact: []string{}}
	for _, s := range n.Provides {
		impact.AffectedServices = append(impact.AffectedServices, s.Type)
	}
	g.findDependents(runtimeID, impact, map[string]bool{})
	sort.Strings(impact.AffectedPlugins)
	sort.Strings(impact.OptionalImpact)
	sort.Strings(impact.AffectedServices)
	return impact
}

func (g *DepGraph) findDependents(runtimeID string, impact *ImpactAnalysis, visited map[string]bool) {
	if visited[runtimeID] {
		return
	}
	visited[runtimeID] = true
	n := g.nodes[runtimeID]
	if n == nil {
		return
	}
	for _, s := range n.Provides {
		for otherID, other := range g.nodes {
			if otherID == runtimeID {
				continue
			}
			for _, d := range other.Requires {
				if d.Type != s.Type {
					continue
				}
				switch {
				case len(g.otherProviders(s.Type, runtimeID)) > 0:
					impact.OptionalImpact = appendUnique(impact.OptionalImpact, otherID)
				case d.RequiredForStartup:
					impact.AffectedPlugins = appendUnique(impact.AffectedPlugins, otherID)
					g.findDependents(otherID, impact, visited)
				default:
					impact.OptionalImpact = appendUnique(impact.OptionalImpact, otherID)
				}
			}
		}
	}
}

func (g *DepGraph) otherProviders(serviceType, exclude string) []string {
	out := []string{}
	for _, id := range g.byType[serviceType] {
		if id != exclude {
			out = append(out, id)
		}
	}
	return out
}

func appendUnique(s []string, item string) []string {
	for _, x := range s {
		if x == item {
			return s
		}
	}
	return append(s, item)
}
