package cpgo

// Follows connect-plugin-go's broker.go: CapabilityBroker, its grants and
// its /capabilities/{type}/{grant_id}/… handler. Its weaknesses are kept,
// since they are what a connect-plugin-go host does on the wire:
//   - RequestCapability authenticates nobody (no runtime id, no token) and
//     ignores min_version (a TODO in the original);
//   - ListCapabilities advertises baseURL+"/broker", but Handler() mounts
//     the RPC at /connectplugin.v1.CapabilityBroker/ and Serve mounts
//     Handler() under /broker/ and /capabilities/ only: the advertised
//     endpoint answers 404 and the root path is not routed by Serve
//     (MountLikeServe reproduces that; a host building its own mux with
//     NewCapabilityBrokerHandler reaches the RPC at the root path);
//   - the grant handler ignores the {type} segment (a grant for one
//     capability is checked against its own handler only, whatever type
//     the path names) and keeps the broker's lock while the capability
//     serves the call: capability calls are serialised, and a capability
//     that asks the broker for something deadlocks;
//   - grants are never revoked, only dropped lazily when used after expiry.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
)

// DefaultCapabilityGrantTTL: connect-plugin-go's.
const DefaultCapabilityGrantTTL = 1 * time.Hour

// CapabilityHandler mirrors connect-plugin-go's: an http.Handler that
// serves the capability's RPCs at their plain paths (/Service/Method).
type CapabilityHandler interface {
	http.Handler
	CapabilityType() string
	Version() string
}

// CapabilityBroker mirrors connect-plugin-go's CapabilityBroker.
type CapabilityBroker struct {
	mu           sync.RWMutex
	capabilities map[string]CapabilityHandler
	grants       map[string]*grantInfo
	baseURL      string
	grantTTL     time.Duration
}

type grantInfo struct {
	grantID        string
	capabilityType string
	token          string
	handler        CapabilityHandler
	issuedAt       time.Time
	expiresAt      time.Time
}

func NewCapabilityBroker(baseURL string) *CapabilityBroker {
	return &CapabilityBroker{
		capabilities: map[string]CapabilityHandler{},
		grants:       map[string]*grantInfo{},
		baseURL:      baseURL,
		grantTTL:     DefaultCapabilityGrantTTL,
	}
}

// SetGrantTTL is ServeConfig.CapabilityGrantTTL, which connect-plugin-go
// declares but never passes to the broker (its grants always live 1 h);
// here only for tests of expiry.
func (b *CapabilityBroker) SetGrantTTL(ttl time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.grantTTL = ttl
}

// RegisterCapability adds (or replaces) the handler of its type.
func (b *CapabilityBroker) RegisterCapability(handler CapabilityHandler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.capabilities[handler.CapabilityType()] = handler
}

// ListCapabilities: the handshake's host_capabilities, in map order.
func (b *CapabilityBroker) ListCapabilities() []*cpv1.Capability {
	b.mu.RLock()
	defer b.mu.RUnlock()
	caps := make([]*cpv1.Capability, 0, len(b.capabilities))
	for _, h := range b.capabilities {
		caps = append(caps, &cpv1.Capability{Type: h.CapabilityType(), Version: h.Version(), Endpoint: b.baseURL + "/broker"})
	}
	return caps
}

// RequestCapability: not_found for an unknown type, else a grant (id: 16
// random bytes, token: 32, both padded base64url).
func (b *CapabilityBroker) RequestCapability(ctx context.Context, req *connect.Request[cpv1.RequestCapabilityRequest]) (*connect.Response[cpv1.RequestCapabilityResponse], error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	handler, ok := b.capabilities[req.Msg.CapabilityType]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("capability %q not available", req.Msg.CapabilityType))
	}
	grantID, err := generateGrantID()
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	token, err := generateToken()
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	now := time.Now()
	b.grants[grantID] = &grantInfo{grantID: grantID, capabilityType: req.Msg.CapabilityType, token: token,
		handler: handler, issuedAt: now, expiresAt: now.Add(b.grantTTL)}
	return connect.NewResponse(&cpv1.RequestCapabilityResponse{Grant: &cpv1.CapabilityGrant{
		GrantId:        grantID,
		EndpointUrl:    fmt.Sprintf("%s/capabilities/%s/%s", b.baseURL, req.Msg.CapabilityType, grantID),
		BearerToken:    token,
		CapabilityType: req.Msg.CapabilityType,
		Version:        handler.Version(),
	}}), nil
}

// Handler: the broker RPC at its root path and /capabilities/.
func (b *CapabilityBroker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(cpv1connect.NewCapabilityBrokerHandler(b))
	mux.HandleFunc("/capabilities/", b.handleCapabilityRequest)
	return mux
}

// MountLikeServe mounts Handler() where connect-plugin-go's Serve does:
// under /broker/ (where nothing in Handler() matches) and /capabilities/.
func (b *CapabilityBroker) MountLikeServe(mux *http.ServeMux) {
	h := b.Handler()
	mux.Handle("/broker/", h)
	mux.Handle("/capabilities/", h)
}

// handleCapabilityRequest: /capabilities/{type}/{grant_id}/{rest…}. 400
// with fewer than two segments; 401 for no "Bearer ", an unknown grant, an
// expired one (dropped) or a wrong token; else the capability serves
// "/{rest…}" (Go's http.Error answers are text/plain).
func (b *CapabilityBroker) handleCapabilityRequest(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/capabilities/"), "/")
	if len(parts) < 2 {
		http.Error(w, "invalid capability path", http.StatusBadRequest)
		return
	}
	grantID := parts[1]
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") {
		http.Error(w, "missing or invalid authorization header", http.StatusUnauthorized)
		return
	}
	token := strings.TrimPrefix(auth, "Bearer ")

	b.mu.Lock()
	defer b.mu.Unlock() // held while the capability serves the call, as in the original
	grant, ok := b.grants[grantID]
	if !ok {
		http.Error(w, "invalid grant ID", http.StatusUnauthorized)
		return
	}
	if time.Now().After(grant.expiresAt) {
		delete(b.grants, grantID)
		http.Error(w, "grant expired", http.StatusUnauthorized)
		return
	}
	if len(grant.token) != len(token) || subtle.ConstantTimeCompare([]byte(grant.token), []byte(token)) != 1 {
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	if len(parts) > 2 {
		r.URL.Path = "/" + strings.Join(parts[2:], "/")
	} else {
		r.URL.Path = "/"
	}
	grant.handler.ServeHTTP(w, r)
}

func generateGrantID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to generate grant ID: %w", err)
	}
	return base64.URLEncoding.EncodeToString(b), nil
}
