package cpgo

// Follows connect-plugin-go's registry.go: ServiceRegistry. Its known
// weaknesses are reproduced on purpose (they are the wire reference), noted
// where they happen:
//   - no call checks the runtime token; RegisterService wants only the
//     X-Plugin-Runtime-ID header, Unregister/Discover/Watch nothing at all
//     (anyone who knows a registration id can unregister it);
//   - min_version is compared as a plain string ("10.0.0" < "9.0.0",
//     "1.10.0" < "1.9.0");
//   - SelectionWeighted is SelectionFirst (a TODO in the original);
//   - the round-robin index is per type and taken modulo the list of
//     available providers, which changes as providers come and go;
//   - no limit on registrations per plugin; the same plugin may register
//     the same type many times;
//   - WatchService: buffered channel of 10, a watcher that does not keep up
//     silently misses events (no resync); health reports and
//     UnregisterPluginServices notify nobody; the event describes the
//     first available provider only;
//   - SetAllowedServices restricts only runtime ids it was called for
//     (the original's hosts never call it: every plugin may register
//     every type).

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
)

// SelectionStrategy mirrors connect-plugin-go's.
type SelectionStrategy int

const (
	SelectionFirst SelectionStrategy = iota
	SelectionRoundRobin
	SelectionRandom
	SelectionWeighted
)

// ServiceRegistry mirrors connect-plugin-go's ServiceRegistry.
type ServiceRegistry struct {
	mu              sync.RWMutex
	providers       map[string][]*ServiceProvider
	registrations   map[string]*ServiceProvider
	selection       map[string]SelectionStrategy
	roundRobinIndex map[string]int
	allowedServices map[string][]string
	lifecycleServer *LifecycleServer
	watchers        map[string][]*serviceWatcher
}

type serviceWatcher struct {
	ch     chan *cpv1.WatchServiceEvent
	ctx    context.Context
	cancel context.CancelFunc
}

// ServiceProvider mirrors connect-plugin-go's.
type ServiceProvider struct {
	RegistrationID string
	RuntimeID      string
	ServiceType    string
	Version        string
	EndpointPath   string
	Metadata       map[string]string
	RegisteredAt   time.Time
}

func NewServiceRegistry(lifecycle *LifecycleServer) *ServiceRegistry {
	return &ServiceRegistry{
		providers:       map[string][]*ServiceProvider{},
		registrations:   map[string]*ServiceProvider{},
		selection:       map[string]SelectionStrategy{},
		roundRobinIndex: map[string]int{},
		allowedServices: map[string][]string{},
		lifecycleServer: lifecycle,
		watchers:        map[string][]*serviceWatcher{},
	}
}

func (r *ServiceRegistry) SetAllowedServices(runtimeID string, serviceTypes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.allowedServices[runtimeID] = serviceTypes
}

func (r *ServiceRegistry) SetSelectionStrategy(serviceType string, strategy SelectionStrategy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.selection[serviceType] = strategy
}

// RegisterService: validation first (type, version, path, metadata:
// invalid_argument), then the X-Plugin-Runtime-ID header (invalid_argument
// if missing; its token is not checked), then the allow-list
// (permission_denied). Watchers of the type are notified.
func (r *ServiceRegistry) RegisterService(ctx context.Context, req *connect.Request[cpv1.RegisterServiceRequest]) (*connect.Response[cpv1.RegisterServiceResponse], error) {
	m := req.Msg
	for _, err := range []error{ValidateServiceType(m.ServiceType), ValidateVersion(m.Version),
		ValidateEndpointPath(m.EndpointPath), ValidateMetadata(m.Metadata)} {
		if err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
	}
	runtimeID := req.Header().Get("X-Plugin-Runtime-ID")
	if runtimeID == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("X-Plugin-Runtime-ID header required"))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if allowed, restricted := r.allowedServices[runtimeID]; restricted {
		ok := false
		for _, a := range allowed {
			ok = ok || a == m.ServiceType
		}
		if !ok {
			return nil, connect.NewError(connect.CodePermissionDenied,
				fmt.Errorf("plugin %s not authorized to register service type %s", runtimeID, m.ServiceType))
		}
	}
	regID, err := generateRegistrationID()
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	p := &ServiceProvider{RegistrationID: regID, RuntimeID: runtimeID, ServiceType: m.ServiceType,
		Version: m.Version, EndpointPath: m.EndpointPath, Metadata: m.Metadata, RegisteredAt: time.Now()}
	r.providers[m.ServiceType] = append(r.providers[m.ServiceType], p)
	r.registrations[regID] = p
	r.notifyWatchersLocked(m.ServiceType)
	return connect.NewResponse(&cpv1.RegisterServiceResponse{RegistrationId: regID}), nil
}

// UnregisterService: not_found for an unknown id; no identity checked.
func (r *ServiceRegistry) UnregisterService(ctx context.Context, req *connect.Request[cpv1.UnregisterServiceRequest]) (*connect.Response[cpv1.UnregisterServiceResponse], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.registrations[req.Msg.RegistrationId]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("registration not found: %s", req.Msg.RegistrationId))
	}
	r.removeLocked(p)
	r.notifyWatchersLocked(p.ServiceType)
	return connect.NewResponse(&cpv1.UnregisterServiceResponse{}), nil
}

func (r *ServiceRegistry) removeLocked(p *ServiceProvider) {
	list := r.providers[p.ServiceType]
	for i, x := range list {
		if x.RegistrationID == p.RegistrationID {
			r.providers[p.ServiceType] = append(list[:i], list[i+1:]...)
			break
		}
	}
	delete(r.registrations, p.RegistrationID)
}

// UnregisterPluginServices removes every registration of a plugin; as in
// the original, watchers are not notified.
func (r *ServiceRegistry) UnregisterPluginServices(runtimeID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.registrations {
		if p.RuntimeID == runtimeID {
			r.removeLocked(p)
		}
	}
}

// SelectProvider: providers of the type, then min_version (string
// comparison), then health, then the type's strategy (default first).
func (r *ServiceRegistry) SelectProvider(serviceType, minVersion string) (*ServiceProvider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := r.providers[serviceType]
	if len(all) == 0 {
		return nil, fmt.Errorf("no providers for service %q", serviceType)
	}
	compatible := filterCompatibleVersions(all, minVersion)
	if len(compatible) == 0 {
		return nil, fmt.Errorf("no compatible providers for service %q (min version: %s)", serviceType, minVersion)
	}
	available := r.filterAvailable(compatible)
	if len(available) == 0 {
		return nil, fmt.Errorf("no available providers for service %q (all unhealthy)", serviceType)
	}
	return r.applyStrategy(serviceType, available, r.selection[serviceType]), nil
}

// filterCompatibleVersions: the original's "simple string comparison -
// TODO: use semver", kept: lexicographic, so "10.0.0" < "9.0.0".
func filterCompatibleVersions(providers []*ServiceProvider, minVersion string) []*ServiceProvider {
	if minVersion == "" {
		return providers
	}
	out := make([]*ServiceProvider, 0, len(providers))
	for _, p := range providers {
		if p.Version >= minVersion {
			out = append(out, p)
		}
	}
	return out
}

func (r *ServiceRegistry) filterAvailable(providers []*ServiceProvider) []*ServiceProvider {
	if r.lifecycleServer == nil {
		return providers
	}
	out := make([]*ServiceProvider, 0, len(providers))
	for _, p := range providers {
		if r.lifecycleServer.ShouldRouteTraffic(p.RuntimeID) {
			out = append(out, p)
		}
	}
	return out
}

func (r *ServiceRegistry) applyStrategy(serviceType string, providers []*ServiceProvider, strategy SelectionStrategy) *ServiceProvider {
	switch strategy {
	case SelectionRoundRobin:
		idx := r.roundRobinIndex[serviceType]
		p := providers[idx%len(providers)]
		r.roundRobinIndex[serviceType] = (idx + 1) % len(providers)
		return p
	case SelectionRandom:
		return providers[rand.Intn(len(providers))]
	default: // SelectionFirst; SelectionWeighted is a TODO in the original
		return providers[0]
	}
}

func (r *ServiceRegistry) HasService(serviceType, minVersion string) bool {
	_, err := r.SelectProvider(serviceType, minVersion)
	return err == nil
}

// GetProviderByRuntimeID: the router's lookup. Any registration of that
// runtime id (map order), whatever its type.
func (r *ServiceRegistry) GetProviderByRuntimeID(runtimeID string) (*ServiceProvider, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range r.registrations {
		if p.RuntimeID == runtimeID {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no provider found for runtime ID: %s", runtimeID)
}

// GetServicesBy: every registration of a plugin.
func (r *ServiceRegistry) GetServicesBy(runtimeID string) []*ServiceProvider {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []*ServiceProvider{}
	for _, p := range r.registrations {
		if p.RuntimeID == runtimeID {
			out = append(out, p)
		}
	}
	return out
}

// DiscoverService: not_found when no provider is selectable; the endpoint
// URL is relative (/services/{type}/{runtime_id}); single_provider counts
// all providers of the type, healthy or not.
func (r *ServiceRegistry) DiscoverService(ctx context.Context, req *connect.Request[cpv1.DiscoverServiceRequest]) (*connect.Response[cpv1.DiscoverServiceResponse], error) {
	p, err := r.SelectProvider(req.Msg.ServiceType, req.Msg.MinVersion)
	if err != nil {
		return nil, connect.NewError(connect.CodeNotFound, err)
	}
	r.mu.RLock()
	single := len(r.providers[req.Msg.ServiceType]) == 1
	r.mu.RUnlock()
	return connect.NewResponse(&cpv1.DiscoverServiceResponse{Endpoint: endpointOf(p), SingleProvider: single}), nil
}

func endpointOf(p *ServiceProvider) *cpv1.ServiceEndpoint {
	return &cpv1.ServiceEndpoint{ProviderId: p.RuntimeID, Version: p.Version,
		EndpointUrl: fmt.Sprintf("/services/%s/%s", p.ServiceType, p.RuntimeID), Metadata: p.Metadata}
}

// WatchService: the current state, then one event per register/unregister
// of the type (dropped when the watcher's 10 buffered events are unread).
func (r *ServiceRegistry) WatchService(ctx context.Context, req *connect.Request[cpv1.WatchServiceRequest], stream *connect.ServerStream[cpv1.WatchServiceEvent]) error {
	serviceType := req.Msg.ServiceType
	r.mu.Lock()
	wctx, cancel := context.WithCancel(ctx)
	w := &serviceWatcher{ch: make(chan *cpv1.WatchServiceEvent, 10), ctx: wctx, cancel: cancel}
	r.watchers[serviceType] = append(r.watchers[serviceType], w)
	w.ch <- r.buildServiceEventLocked(serviceType)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		ws := r.watchers[serviceType]
		for i, x := range ws {
			if x == w {
				r.watchers[serviceType] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		r.mu.Unlock()
		cancel()
		close(w.ch)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ch:
			if !ok {
				return nil
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

func (r *ServiceRegistry) notifyWatchersLocked(serviceType string) {
	ev := r.buildServiceEventLocked(serviceType)
	for _, w := range r.watchers[serviceType] {
		select {
		case w.ch <- ev:
		default: // not reading: the event is lost
		}
	}
}

// buildServiceEventLocked: UNAVAILABLE without a provider that may route,
// else the first such provider, DEGRADED if it reported so, else AVAILABLE.
func (r *ServiceRegistry) buildServiceEventLocked(serviceType string) *cpv1.WatchServiceEvent {
	unavailable := &cpv1.WatchServiceEvent{ServiceType: serviceType, State: cpv1.ServiceState_SERVICE_STATE_UNAVAILABLE}
	providers := r.providers[serviceType]
	if len(providers) == 0 {
		return unavailable
	}
	available := r.filterAvailable(providers)
	if len(available) == 0 {
		return unavailable
	}
	p := available[0]
	state := cpv1.ServiceState_SERVICE_STATE_AVAILABLE
	if r.lifecycleServer != nil {
		if h := r.lifecycleServer.GetHealthState(p.RuntimeID); h != nil && h.State == cpv1.HealthState_HEALTH_STATE_DEGRADED {
			state = cpv1.ServiceState_SERVICE_STATE_DEGRADED
		}
	}
	return &cpv1.WatchServiceEvent{ServiceType: serviceType, State: state, Endpoint: endpointOf(p)}
}

func ServiceRegistryHandler(server *ServiceRegistry) (string, http.Handler) {
	return cpv1connect.NewServiceRegistryHandler(server)
}

// generateRegistrationID: "reg-" and 16 hex digits.
func generateRegistrationID() (string, error) {
	h, err := generateRandomHex(16)
	if err != nil {
		return "", fmt.Errorf("failed to generate registration ID: %w", err)
	}
	return "reg-" + h, nil
}
