package cpgo

// Follows connect-plugin-go's handshake.go: HandshakeServer (validation
// order, runtime identity issued for a self_id, tokens kept with a TTL for
// ValidateToken, host capabilities from the broker).

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
)

// DefaultRuntimeTokenTTL: connect-plugin-go's.
const DefaultRuntimeTokenTTL = 24 * time.Hour

// HandshakeConfig holds the ServeConfig fields connect-plugin-go's
// HandshakeServer reads. Plugins stands for its PluginSet: the PluginInfo
// each plugin's Metadata() gives, by name.
type HandshakeConfig struct {
	ProtocolVersion  int
	MagicCookieKey   string
	MagicCookieValue string
	ServerMetadata   map[string]string
	Plugins          map[string]*cpv1.PluginInfo
	CapabilityBroker *CapabilityBroker
	RuntimeTokenTTL  time.Duration
}

type tokenInfo struct {
	token     string
	issuedAt  time.Time
	expiresAt time.Time
}

// HandshakeServer mirrors connect-plugin-go's HandshakeServer.
type HandshakeServer struct {
	cfg    *HandshakeConfig
	mu     sync.RWMutex
	tokens map[string]*tokenInfo // runtime_id → token
}

func NewHandshakeServer(cfg *HandshakeConfig) *HandshakeServer {
	return &HandshakeServer{cfg: cfg, tokens: map[string]*tokenInfo{}}
}

// Handshake: magic cookie (invalid_argument), core version 1
// (invalid_argument), app version exact (failed_precondition), then a
// runtime identity when self_id is set. Unknown requested plugins are
// skipped (the client fails naming them).
func (h *HandshakeServer) Handshake(ctx context.Context, req *connect.Request[cpv1.HandshakeRequest]) (*connect.Response[cpv1.HandshakeResponse], error) {
	m := req.Msg
	key, value := h.cfg.MagicCookieKey, h.cfg.MagicCookieValue
	if key == "" {
		key, value = DefaultMagicCookieKey, DefaultMagicCookieValue
	}
	if m.MagicCookieKey != key || m.MagicCookieValue != value {
		return nil, connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("invalid magic cookie - this may not be a connect-plugin server"))
	}
	if m.CoreProtocolVersion != 1 {
		return nil, connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("unsupported core protocol version: %d (server supports: 1)", m.CoreProtocolVersion))
	}
	serverVersion := h.cfg.ProtocolVersion
	if serverVersion == 0 {
		serverVersion = 1
	}
	if m.AppProtocolVersion != int32(serverVersion) {
		return nil, connect.NewError(connect.CodeFailedPrecondition,
			fmt.Errorf("version mismatch: client=%d, server=%d", m.AppProtocolVersion, serverVersion))
	}
	var runtimeID, runtimeToken string
	if m.SelfId != "" {
		if err := ValidateSelfID(m.SelfId); err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, err)
		}
		var err error
		if runtimeID, err = generateRuntimeID(m.SelfId); err != nil {
			return nil, connect.NewError(connect.CodeInternal, err)
		}
		if runtimeToken, err = generateToken(); err != nil {
			return nil, connect.NewError(connect.CodeInternal, err)
		}
		ttl := DefaultRuntimeTokenTTL
		if h.cfg.RuntimeTokenTTL > 0 {
			ttl = h.cfg.RuntimeTokenTTL
		}
		now := time.Now()
		h.mu.Lock()
		h.tokens[runtimeID] = &tokenInfo{token: runtimeToken, issuedAt: now, expiresAt: now.Add(ttl)}
		h.mu.Unlock()
	}
	plugins := make([]*cpv1.PluginInfo, 0, len(m.RequestedPlugins))
	for _, name := range m.RequestedPlugins {
		if p, ok := h.cfg.Plugins[name]; ok {
			plugins = append(plugins, p)
		}
	}
	meta := map[string]string{"server_version": "0.1.0"}
	for k, v := range h.cfg.ServerMetadata {
		meta[k] = v
	}
	var caps []*cpv1.Capability
	if h.cfg.CapabilityBroker != nil {
		caps = h.cfg.CapabilityBroker.ListCapabilities()
	}
	return connect.NewResponse(&cpv1.HandshakeResponse{
		CoreProtocolVersion: 1,
		AppProtocolVersion:  int32(serverVersion),
		Plugins:             plugins,
		ServerMetadata:      meta,
		HostCapabilities:    caps,
		RuntimeId:           runtimeID,
		RuntimeToken:        runtimeToken,
	}), nil
}

// ValidateToken: known runtime id, not expired (an expired one is dropped),
// same length, constant-time equal. Only the router calls it in
// connect-plugin-go: the registry and lifecycle services trust the
// X-Plugin-Runtime-ID header alone.
func (h *HandshakeServer) ValidateToken(runtimeID, token string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	info, ok := h.tokens[runtimeID]
	if !ok {
		return false
	}
	if time.Now().After(info.expiresAt) {
		delete(h.tokens, runtimeID)
		return false
	}
	if len(info.token) != len(token) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(info.token), []byte(token)) == 1
}

// generateRuntimeID: lower-cased self_id, spaces to hyphens, "-" and 4 hex
// digits (2 random bytes: collisions are likely after a few hundred
// plugins of one self_id, and a collision overwrites the first one's token).
func generateRuntimeID(selfID string) (string, error) {
	suffix, err := generateRandomHex(4)
	if err != nil {
		return "", fmt.Errorf("failed to generate runtime ID: %w", err)
	}
	return strings.ToLower(strings.ReplaceAll(selfID, " ", "-")) + "-" + suffix, nil
}

func generateRandomHex(length int) (string, error) {
	b := make([]byte, (length+1)/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("crypto/rand.Read failed: %w", err)
	}
	return hex.EncodeToString(b)[:length], nil
}

// generateToken: 32 random bytes, padded base64url (44 characters); also
// the capability grant token (broker.go).
func generateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to generate secure token: %w", err)
	}
	return base64.URLEncoding.EncodeToString(b), nil
}
