package cpgo

// Follows connect-plugin-go's router.go: ServiceRouter, serving
// /services/{type}/{provider_id}/{method…}. Its weaknesses are kept:
//   - the {type} segment is only logged: the provider is looked up by
//     runtime id alone (any of its registrations), so a provider is
//     reachable under any type name;
//   - no path hygiene: "..", encoded slashes and extra segments go into
//     the upstream URL as they are (base_url + endpoint_path + method);
//   - the runtime token is checked here (ValidateToken), unlike in the
//     registry and lifecycle services;
//   - pluginEndpoints is a plain map written by RegisterPluginEndpoint
//     without a lock while calls read it;
//   - upstream calls use a new http.Client with a 30 s timeout each time
//     (streams longer than 30 s are cut), no deadline propagation beyond
//     the caller's context, and the response is written through without
//     flushing (Connect streams are delivered when Go's buffer fills or
//     the call ends).

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"
)

// ServiceRouter mirrors connect-plugin-go's ServiceRouter.
type ServiceRouter struct {
	handshakeServer *HandshakeServer
	registry        *ServiceRegistry
	lifecycleServer *LifecycleServer
	pluginEndpoints map[string]string // runtime_id → base URL (managed plugins)
}

func NewServiceRouter(handshake *HandshakeServer, registry *ServiceRegistry, lifecycle *LifecycleServer) *ServiceRouter {
	return &ServiceRouter{handshakeServer: handshake, registry: registry, lifecycleServer: lifecycle,
		pluginEndpoints: map[string]string{}}
}

// RegisterPluginEndpoint: where a managed plugin (Platform.AddPlugin) is
// reached; self-registered ones are reached at their metadata base_url.
func (r *ServiceRouter) RegisterPluginEndpoint(runtimeID, endpoint string) {
	r.pluginEndpoints[runtimeID] = endpoint
}

// ServeHTTP: 404 outside /services/; 400 for fewer than three segments;
// 401 without X-Plugin-Runtime-ID, without "Bearer ", or for a token
// ValidateToken refuses; 404 for a runtime id with no registration; 503
// when it reported UNHEALTHY; 404 when no endpoint is known for it; then
// the proxied answer, or 502 when the upstream cannot be reached. Errors
// are Go's http.Error text/plain bodies.
func (r *ServiceRouter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !strings.HasPrefix(req.URL.Path, "/services/") {
		http.NotFound(w, req)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(req.URL.Path, "/services/"), "/", 3)
	if len(parts) < 3 {
		log.Printf("[ROUTER] Invalid path: %s (parts: %d)", req.URL.Path, len(parts))
		http.Error(w, "invalid service path format, expected /services/{type}/{provider-id}/{method}", http.StatusBadRequest)
		return
	}
	serviceType, providerID, method := parts[0], parts[1], "/"+parts[2]
	callerID := req.Header.Get("X-Plugin-Runtime-ID")
	if callerID == "" {
		http.Error(w, "X-Plugin-Runtime-ID header required", http.StatusUnauthorized)
		return
	}
	auth := req.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") {
		http.Error(w, "Authorization: Bearer <token> required", http.StatusUnauthorized)
		return
	}
	if !r.handshakeServer.ValidateToken(callerID, strings.TrimPrefix(auth, "Bearer ")) {
		log.Printf("[ROUTER] Invalid token for caller: %s", callerID)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	provider, err := r.registry.GetProviderByRuntimeID(providerID)
	if err != nil {
		http.Error(w, fmt.Sprintf("provider not found: %s", providerID), http.StatusNotFound)
		return
	}
	if !r.lifecycleServer.ShouldRouteTraffic(providerID) {
		http.Error(w, "service unavailable (provider unhealthy)", http.StatusServiceUnavailable)
		return
	}
	baseURL, ok := r.pluginEndpoints[providerID]
	if !ok {
		if baseURL, ok = provider.Metadata["base_url"]; !ok {
			http.Error(w, fmt.Sprintf("provider endpoint not registered: %s", providerID), http.StatusNotFound)
			return
		}
	}
	start := time.Now()
	log.Printf("[ROUTER] %s → %s %s (service: %s)", callerID, providerID, method, serviceType)
	target := baseURL + provider.EndpointPath + strings.TrimPrefix(method, "/")
	status, err := r.proxyRequest(w, req, target)
	if err != nil {
		log.Printf("[ROUTER] %s → %s %s FAILED: %v (duration: %s)", callerID, providerID, method, err, time.Since(start))
	} else {
		log.Printf("[ROUTER] %s → %s %s %d (duration: %s)", callerID, providerID, method, status, time.Since(start))
	}
}

// proxyRequest: same method, query kept, every header but Authorization
// and X-Plugin-Runtime-ID copied, request body streamed; response headers,
// status and body copied back.
func (r *ServiceRouter) proxyRequest(w http.ResponseWriter, req *http.Request, targetURL string) (int, error) {
	full := targetURL
	if req.URL.RawQuery != "" {
		full += "?" + req.URL.RawQuery
	}
	preq, err := http.NewRequestWithContext(req.Context(), req.Method, full, req.Body)
	if err != nil {
		http.Error(w, "failed to create proxy request", http.StatusInternalServerError)
		return http.StatusInternalServerError, err
	}
	for key, values := range req.Header {
		k := http.CanonicalHeaderKey(key)
		if k == "Authorization" || k == "X-Plugin-Runtime-Id" {
			continue
		}
		for _, v := range values {
			preq.Header.Add(key, v)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(preq)
	if err != nil {
		http.Error(w, "failed to proxy request", http.StatusBadGateway)
		return http.StatusBadGateway, err
	}
	defer resp.Body.Close()
	for key, values := range resp.Header {
		for _, v := range values {
			w.Header().Add(key, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, copyErr := io.Copy(w, resp.Body)
	return resp.StatusCode, copyErr
}
