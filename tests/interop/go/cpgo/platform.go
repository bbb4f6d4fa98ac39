package cpgo

// Follows connect-plugin-go's platform.go (Platform: AddPlugin,
// RemovePlugin, ReplacePlugin and their waits), pluginidentity.go
// (PluginIdentityClient) and the metadata types of plugin.go. Kept as in
// the original:
//   - AddPlugin sends SetRuntimeIdentity with an empty host_url (a managed
//     plugin stays on its default host URL) unless IdentityHostURL is set
//     (a stand-in knob, empty by default);
//   - AddPlugin's runtime token is not given to the HandshakeServer, so the
//     router refuses the managed plugin's own calls (401);
//   - the required-dependency check only sees plugins added through the
//     Platform (its dependency graph), not self-registered ones;
//   - waitForHealthy polls every 500 ms for 30 s and wants HEALTHY only;
//   - RemovePlugin sleeps 5 s, unregisters, asks Shutdown(30 s), no drain;
//   - ReplacePlugin makes a new runtime identity but never sends it to the
//     new plugin (no GetPluginInfo/SetRuntimeIdentity call), so it always
//     fails after its 30 s wait; had it succeeded it would sleep 30 s to
//     "drain" and never switch routes;
//   - plugins is a map without a lock.
// One change: the original's PluginControlClient gets a nil HTTPClient,
// with which connect-go panics at the first call (RemovePlugin of an added
// plugin crashes its caller); here it gets an http.Client.

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
)

// PluginMetadata, ServiceDeclaration, ServiceDependency: plugin.go's.
type PluginMetadata struct {
	Name     string
	Path     string
	Version  string
	Provides []ServiceDeclaration
	Requires []ServiceDependency
}

type ServiceDeclaration struct {
	Type    string
	Version string
	Path    string
}

type ServiceDependency struct {
	Type               string
	MinVersion         string
	RequiredForStartup bool
	WatchForChanges    bool
}

// PluginIdentityClient mirrors connect-plugin-go's (host → managed plugin).
type PluginIdentityClient struct {
	client cpv1connect.PluginIdentityClient
}

func NewPluginIdentityClient(baseURL string, httpClient connect.HTTPClient) *PluginIdentityClient {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return &PluginIdentityClient{client: cpv1connect.NewPluginIdentityClient(httpClient, baseURL)}
}

func (c *PluginIdentityClient) GetPluginInfo(ctx context.Context) (*cpv1.GetPluginInfoResponse, error) {
	resp, err := c.client.GetPluginInfo(ctx, connect.NewRequest(&cpv1.GetPluginInfoRequest{}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (c *PluginIdentityClient) SetRuntimeIdentity(ctx context.Context, runtimeID, runtimeToken, hostURL string) error {
	_, err := c.client.SetRuntimeIdentity(ctx, connect.NewRequest(&cpv1.SetRuntimeIdentityRequest{
		RuntimeId: runtimeID, RuntimeToken: runtimeToken, HostUrl: hostURL}))
	return err
}

// PluginInstance mirrors connect-plugin-go's.
type PluginInstance struct {
	RuntimeID string
	SelfID    string
	Metadata  PluginMetadata
	Endpoint  string
	Token     string
	control   *PluginControlClient
}

// PluginConfig mirrors connect-plugin-go's.
type PluginConfig struct {
	SelfID      string
	SelfVersion string
	Endpoint    string
	Metadata    PluginMetadata
}

// Platform mirrors connect-plugin-go's Platform.
type Platform struct {
	depGraph        *DepGraph
	registry        *ServiceRegistry
	lifecycleServer *LifecycleServer
	router          *ServiceRouter
	plugins         map[string]*PluginInstance

	// Stand-in knobs (the original's values are the defaults).
	IdentityHostURL string        // host_url sent by AddPlugin ("")
	HealthTimeout   time.Duration // waitForHealthy (30 s)
	RemoveGrace     time.Duration // RemovePlugin's sleep (5 s)
	DrainTime       time.Duration // ReplacePlugin's drainPlugin sleep (30 s)
}

func NewPlatform(registry *ServiceRegistry, lifecycle *LifecycleServer, router *ServiceRouter) *Platform {
	return &Platform{depGraph: NewDepGraph(), registry: registry, lifecycleServer: lifecycle, router: router,
		plugins: map[string]*PluginInstance{}, HealthTimeout: 30 * time.Second,
		RemoveGrace: 5 * time.Second, DrainTime: 30 * time.Second}
}

func (p *Platform) Plugin(runtimeID string) *PluginInstance { return p.plugins[runtimeID] }

// AddPlugin: GetPluginInfo → required deps in the graph → new identity →
// SetRuntimeIdentity → graph → wait HEALTHY → router endpoint → stored.
// Returns the runtime id (the original returns only an error; the id is
// then found in its plugins map).
func (p *Platform) AddPlugin(ctx context.Context, cfg PluginConfig) (string, error) {
	ic := NewPluginIdentityClient(cfg.Endpoint, nil)
	info, err := ic.GetPluginInfo(ctx)
	if err != nil {
		return "", fmt.Errorf("failed to get plugin info: %w", err)
	}
	selfID := info.SelfId
	if selfID == "" {
		selfID = cfg.SelfID
	}
	provides := make([]ServiceDeclaration, len(info.Provides))
	for i, s := range info.Provides {
		provides[i] = ServiceDeclaration{Type: s.Type, Version: s.Version, Path: s.Path}
	}
	requires := make([]ServiceDependency, len(info.Requires))
	for i, d := range info.Requires {
		requires[i] = ServiceDependency{Type: d.Type, MinVersion: d.MinVersion,
			RequiredForStartup: d.RequiredForStartup, WatchForChanges: d.WatchForChanges}
	}
	for _, d := range requires {
		if d.RequiredForStartup && !p.depGraph.HasService(d.Type) {
			return "", fmt.Errorf("required service %q not available for plugin %q", d.Type, selfID)
		}
	}
	runtimeID, err := generateRuntimeID(selfID)
	if err != nil {
		return "", fmt.Errorf("failed to generate runtime ID: %w", err)
	}
	token, err := generateToken()
	if err != nil {
		return "", fmt.Errorf("failed to generate runtime token: %w", err)
	}
	if err := ic.SetRuntimeIdentity(ctx, runtimeID, token, p.IdentityHostURL); err != nil {
		return "", fmt.Errorf("failed to set runtime identity: %w", err)
	}
	inst := &PluginInstance{RuntimeID: runtimeID, SelfID: selfID,
		Metadata: PluginMetadata{Name: info.Metadata["name"], Version: info.Metadata["version"], Provides: provides, Requires: requires},
		Endpoint: cfg.Endpoint, Token: token, control: NewPluginControlClient(cfg.Endpoint, nil)}
	p.depGraph.Add(&DepNode{RuntimeID: runtimeID, SelfID: selfID, Provides: provides, Requires: requires})
	if err := p.waitForHealthy(ctx, runtimeID, p.HealthTimeout); err != nil {
		p.depGraph.Remove(runtimeID)
		return "", fmt.Errorf("plugin %q did not become healthy: %w", selfID, err)
	}
	p.router.RegisterPluginEndpoint(runtimeID, cfg.Endpoint)
	p.plugins[runtimeID] = inst
	return runtimeID, nil
}

// RemovePlugin: impact (computed, unused), RemoveGrace sleep, unregister,
// Shutdown(30, "plugin removed") with its error ignored, graph, map.
func (p *Platform) RemovePlugin(ctx context.Context, runtimeID string) error {
	inst, ok := p.plugins[runtimeID]
	if !ok {
		return fmt.Errorf("plugin not found: %s", runtimeID)
	}
	_ = p.depGraph.GetImpact(runtimeID).AffectedServices
	time.Sleep(p.RemoveGrace)
	p.registry.UnregisterPluginServices(runtimeID)
	if inst.control != nil {
		inst.control.Shutdown(ctx, 30, "plugin removed")
	}
	p.depGraph.Remove(runtimeID)
	delete(p.plugins, runtimeID)
	return nil
}

// ReplacePlugin: as the original, whose new instance never learns its
// identity and so never reports healthy: fails after HealthTimeout.
func (p *Platform) ReplacePlugin(ctx context.Context, runtimeID string, cfg PluginConfig) error {
	old, ok := p.plugins[runtimeID]
	if !ok {
		return fmt.Errorf("plugin not found: %s", runtimeID)
	}
	newID, err := generateRuntimeID(cfg.SelfID)
	if err != nil {
		return fmt.Errorf("failed to generate runtime ID: %w", err)
	}
	token, err := generateToken()
	if err != nil {
		return fmt.Errorf("failed to generate token: %w", err)
	}
	inst := &PluginInstance{RuntimeID: newID, SelfID: cfg.SelfID, Metadata: cfg.Metadata, Endpoint: cfg.Endpoint,
		Token: token, control: NewPluginControlClient(cfg.Endpoint, nil)}
	p.depGraph.Add(&DepNode{RuntimeID: newID, SelfID: cfg.SelfID, Provides: cfg.Metadata.Provides, Requires: cfg.Metadata.Requires})
	if err := p.waitForHealthy(ctx, newID, p.HealthTimeout); err != nil {
		p.depGraph.Remove(newID)
		return fmt.Errorf("new version did not become healthy: %w", err)
	}
	p.router.RegisterPluginEndpoint(newID, cfg.Endpoint)
	time.Sleep(p.DrainTime) // drainPlugin: "just wait"
	if old.control != nil {
		old.control.Shutdown(ctx, 10, "replaced with new version")
	}
	p.registry.UnregisterPluginServices(runtimeID)
	p.depGraph.Remove(runtimeID)
	delete(p.plugins, runtimeID)
	p.plugins[newID] = inst
	return nil
}

func (p *Platform) GetImpact(runtimeID string) *ImpactAnalysis {
	return p.depGraph.GetImpact(runtimeID)
}
func (p *Platform) GetStartupOrder() ([]string, error) { return p.depGraph.StartupOrder() }

// AddToDependencyGraph: for self-registered plugins (the original's API).
func (p *Platform) AddToDependencyGraph(runtimeID, selfID string, provides []ServiceDeclaration, requires []ServiceDependency) {
	p.depGraph.Add(&DepNode{RuntimeID: runtimeID, SelfID: selfID, Provides: provides, Requires: requires})
}

// waitForHealthy: the original polls every 500 ms (first look after
// 500 ms) until HEALTHY or the timeout; here, same outcome, woken by each
// health report instead of the ticker.
func (p *Platform) waitForHealthy(ctx context.Context, runtimeID string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := p.lifecycleServer.Changed()
		if s := p.lifecycleServer.GetHealthState(runtimeID); s != nil && s.State == cpv1.HealthState_HEALTH_STATE_HEALTHY {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("timeout waiting for plugin to become healthy")
		case <-changed:
		}
	}
}
