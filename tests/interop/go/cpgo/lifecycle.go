package cpgo

// Follows connect-plugin-go's lifecycle.go: LifecycleServer (health reports
// by runtime id) and PluginControlClient. As in the original, ReportHealth
// trusts the X-Plugin-Runtime-ID header: no token is checked, so any caller
// can mark any plugin unhealthy; and a report changes nothing for
// WatchService watchers (the registry is not told).

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
)

// LifecycleServer mirrors connect-plugin-go's LifecycleServer.
type LifecycleServer struct {
	mu     sync.RWMutex
	states map[string]*PluginHealthState
	// changed is not in the original (whose Platform polls every 500 ms):
	// closed and replaced at every report, so waiters here need no polling.
	changed chan struct{}
}

// PluginHealthState mirrors connect-plugin-go's.
type PluginHealthState struct {
	State                   cpv1.HealthState
	Reason                  string
	UnavailableDependencies []string
}

func NewLifecycleServer() *LifecycleServer {
	return &LifecycleServer{states: map[string]*PluginHealthState{}, changed: make(chan struct{})}
}

// ReportHealth: invalid_argument without X-Plugin-Runtime-ID, else the
// state is stored (any value, UNSPECIFIED included).
func (l *LifecycleServer) ReportHealth(ctx context.Context, req *connect.Request[cpv1.ReportHealthRequest]) (*connect.Response[cpv1.ReportHealthResponse], error) {
	runtimeID := req.Header().Get("X-Plugin-Runtime-ID")
	if runtimeID == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("X-Plugin-Runtime-ID header required"))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states[runtimeID] = &PluginHealthState{
		State:                   req.Msg.State,
		Reason:                  req.Msg.Reason,
		UnavailableDependencies: req.Msg.UnavailableDependencies,
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return connect.NewResponse(&cpv1.ReportHealthResponse{}), nil
}

// GetHealthState: a copy, nil if the plugin never reported.
func (l *LifecycleServer) GetHealthState(runtimeID string) *PluginHealthState {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s, ok := l.states[runtimeID]
	if !ok {
		return nil
	}
	return &PluginHealthState{State: s.State, Reason: s.Reason,
		UnavailableDependencies: append([]string{}, s.UnavailableDependencies...)}
}

// Changed returns a channel closed at the next report (stand-in only).
func (l *LifecycleServer) Changed() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.changed
}

// ShouldRouteTraffic: false only for UNHEALTHY; never reported, HEALTHY,
// DEGRADED and unknown values route.
func (l *LifecycleServer) ShouldRouteTraffic(runtimeID string) bool {
	s := l.GetHealthState(runtimeID)
	return s == nil || s.State != cpv1.HealthState_HEALTH_STATE_UNHEALTHY
}

func LifecycleServerHandler(server *LifecycleServer) (string, http.Handler) {
	return cpv1connect.NewPluginLifecycleHandler(server)
}

// PluginControlClient mirrors connect-plugin-go's (host → plugin).
type PluginControlClient struct {
	client cpv1connect.PluginControlClient
}

func NewPluginControlClient(endpoint string, httpClient connect.HTTPClient) *PluginControlClient {
	if httpClient == nil {
		httpClient = &http.Client{} // the original passes nil through to connect-go
	}
	return &PluginControlClient{client: cpv1connect.NewPluginControlClient(httpClient, endpoint)}
}

func (p *PluginControlClient) GetHealth(ctx context.Context) (*cpv1.GetHealthResponse, error) {
	resp, err := p.client.GetHealth(ctx, connect.NewRequest(&cpv1.GetHealthRequest{}))
	if err != nil {
		return nil, err
	}
	return resp.Msg, nil
}

func (p *PluginControlClient) Shutdown(ctx context.Context, gracePeriodSeconds int32, reason string) (bool, error) {
	resp, err := p.client.Shutdown(ctx, connect.NewRequest(&cpv1.ShutdownRequest{GracePeriodSeconds: gracePeriodSeconds, Reason: reason}))
	if err != nil {
		return false, err
	}
	return resp.Msg.Acknowledged, nil
}
