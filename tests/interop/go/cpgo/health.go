package cpgo

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	"cpinterop/gen/healthv1"
	"cpinterop/gen/healthv1/healthv1connect"
)

// HealthServer mirrors connect-plugin-go's HealthServer.
type HealthServer struct {
	mu        sync.RWMutex
	shutdown  bool
	statusMap map[string]healthv1.ServingStatus
	watchers  map[string][]*healthWatcher
}

type healthWatcher struct {
	ch chan healthv1.ServingStatus
}

// NewHealthServer: "" (the whole server) starts SERVING.
func NewHealthServer() *HealthServer {
	return &HealthServer{
		statusMap: map[string]healthv1.ServingStatus{"": healthv1.ServingStatus_SERVING_STATUS_SERVING},
		watchers:  map[string][]*healthWatcher{},
	}
}

// Check answers the status, not_found for an unknown name.
func (h *HealthServer) Check(ctx context.Context, req *connect.Request[healthv1.HealthCheckRequest]) (*connect.Response[healthv1.HealthCheckResponse], error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	status, ok := h.statusMap[req.Msg.Service]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service: %s", req.Msg.Service))
	}
	return connect.NewResponse(&healthv1.HealthCheckResponse{Status: status}), nil
}

// Watch sends the current status, then each change (duplicates dropped).
func (h *HealthServer) Watch(ctx context.Context, req *connect.Request[healthv1.HealthCheckRequest], stream *connect.ServerStream[healthv1.HealthCheckResponse]) error {
	service := req.Msg.Service
	h.mu.Lock()
	status, ok := h.statusMap[service]
	if !ok {
		status = healthv1.ServingStatus_SERVING_STATUS_SERVICE_UNKNOWN
	}
	w := &healthWatcher{ch: make(chan healthv1.ServingStatus, 1)}
	w.ch <- status
	h.watchers[service] = append(h.watchers[service], w)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		ws := h.watchers[service]
		for i, x := range ws {
			if x == w {
				h.watchers[service] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
	}()
	var lastSent healthv1.ServingStatus = -1
	for {
		select {
		case <-ctx.Done():
			return nil
		case status := <-w.ch:
			if status == lastSent {
				continue
			}
			lastSent = status
			if err := stream.Send(&healthv1.HealthCheckResponse{Status: status}); err != nil {
				return err
			}
		}
	}
}

// SetServingStatus updates a status and wakes the watchers.
func (h *HealthServer) SetServingStatus(service string, status healthv1.ServingStatus) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.shutdown {
		return
	}
	h.setStatusLocked(service, status)
}

// Shutdown marks every service NOT_SERVING for good.
func (h *HealthServer) Shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.shutdown = true
	for service := range h.statusMap {
		h.setStatusLocked(service, healthv1.ServingStatus_SERVING_STATUS_NOT_SERVING)
	}
}

func (h *HealthServer) setStatusLocked(service string, status healthv1.ServingStatus) {
	h.statusMap[service] = status
	for _, w := range h.watchers[service] {
		select {
		case <-w.ch:
		default:
		}
		select {
		case w.ch <- status:
		default:
		}
	}
}

// HTTPHealthHandler serves /healthz ("ok") and /readyz ("ready" / 503 "not ready").
func HTTPHealthHandler(server *HealthServer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := server.Check(r.Context(), connect.NewRequest(&healthv1.HealthCheckRequest{}))
		if err != nil || resp.Msg.Status != healthv1.ServingStatus_SERVING_STATUS_SERVING {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready"))
			return
		}
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("ready"))
	})
	return mux
}

var _ healthv1connect.HealthServiceHandler = (*HealthServer)(nil)
