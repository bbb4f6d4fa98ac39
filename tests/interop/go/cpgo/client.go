package cpgo

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
	"cpinterop/gen/kvv1/kvv1connect"
)

// ClientConfig mirrors connect-plugin-go's ClientConfig (the fields used here).
type ClientConfig struct {
	Endpoint         string
	HostURL          string   // alias of Endpoint (phase 2 naming); Endpoint wins
	Plugins          []string // requested plugin names (PluginSet keys)
	ProtocolVersion  int
	MagicCookieKey   string
	MagicCookieValue string
	SelfID           string
	SelfVersion      string
	Metadata         PluginMetadata // phase 2: what the plugin provides and requires
	// CoreProtocolVersion is always 1 in connect-plugin-go; settable here
	// only to test the server's answer to a wrong one (0 means 1).
	CoreProtocolVersion int32
}

// Client mirrors connect-plugin-go's Client: Connect() handshakes, Dispense()
// hands out generated Connect clients on the same endpoint.
type Client struct {
	cfg          ClientConfig
	mu           sync.Mutex
	connected    bool
	closed       bool
	httpClient   connect.HTTPClient
	runtimeID    string
	runtimeToken string
	response     *cpv1.HandshakeResponse
	// Phase 2, set when the host issued (or assigned) a runtime identity.
	lifecycleClient cpv1connect.PluginLifecycleClient
	registryClient  cpv1connect.ServiceRegistryClient
}

// NewClient creates a client; like the Go project's, it connects lazily.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Endpoint == "" {
		cfg.Endpoint = cfg.HostURL
	}
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("invalid config: Endpoint, HostURL, or Discovery is required")
	}
	return &Client{cfg: cfg}, nil
}

// Connect performs the handshake (connect-plugin-go's doHandshake).
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("client closed")
	}
	if c.connected {
		return nil
	}
	c.httpClient = &http.Client{}
	if err := c.doHandshake(ctx); err != nil {
		return fmt.Errorf("handshake failed: %w", err)
	}
	c.connected = true
	return nil
}

func (c *Client) doHandshake(ctx context.Context) error {
	hs := cpv1connect.NewHandshakeServiceClient(c.httpClient, c.cfg.Endpoint)
	protocolVersion := c.cfg.ProtocolVersion
	if protocolVersion == 0 {
		protocolVersion = 1
	}
	magicKey, magicValue := c.cfg.MagicCookieKey, c.cfg.MagicCookieValue
	if magicKey == "" {
		magicKey, magicValue = DefaultMagicCookieKey, DefaultMagicCookieValue
	}
	core := c.cfg.CoreProtocolVersion
	if core == 0 {
		core = 1
	}
	req := &cpv1.HandshakeRequest{
		CoreProtocolVersion: core,
		AppProtocolVersion:  int32(protocolVersion),
		MagicCookieKey:      magicKey,
		MagicCookieValue:    magicValue,
		RequestedPlugins:    c.cfg.Plugins,
		ClientMetadata:      map[string]string{"client_version": "0.1.0"},
	}
	if c.cfg.SelfID != "" {
		req.SelfId = c.cfg.SelfID
		req.SelfVersion = c.cfg.SelfVersion
	}
	resp, err := hs.Handshake(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	if resp.Msg.CoreProtocolVersion != 1 {
		return fmt.Errorf("core protocol version mismatch: got %d, want 1", resp.Msg.CoreProtocolVersion)
	}
	if resp.Msg.AppProtocolVersion != int32(protocolVersion) {
		return fmt.Errorf("app protocol version mismatch: got %d, want %d",
			resp.Msg.AppProtocolVersion, protocolVersion)
	}
	available := map[string]bool{}
	for _, p := range resp.Msg.Plugins {
		available[p.Name] = true
	}
	for _, name := range c.cfg.Plugins {
		if !available[name] {
			return fmt.Errorf("requested plugin %q not available on server", name)
		}
	}
	if resp.Msg.RuntimeId != "" {
		c.runtimeID = resp.Msg.RuntimeId
		c.runtimeToken = resp.Msg.RuntimeToken
		c.lifecycleClient = cpv1connect.NewPluginLifecycleClient(c.httpClient, c.cfg.Endpoint)
		c.registryClient = cpv1connect.NewServiceRegistryClient(c.httpClient, c.cfg.Endpoint)
	}
	c.response = resp.Msg
	return nil
}

// Dispense returns the generated client of a plugin ("kv" only here, like
// the Go KV example's PluginSet).
func (c *Client) Dispense(name string) (any, error) {
	if err := c.Connect(context.Background()); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	found := false
	for _, p := range c.cfg.Plugins {
		found = found || p == name
	}
	if !found || name != "kv" {
		return nil, fmt.Errorf("plugin not found: %q", name)
	}
	return kvv1connect.NewKVServiceClient(c.httpClient, c.cfg.Endpoint), nil
}

// RuntimeID and RuntimeToken: the identity the handshake issued.
func (c *Client) RuntimeID() string    { c.mu.Lock(); defer c.mu.Unlock(); return c.runtimeID }
func (c *Client) RuntimeToken() string { c.mu.Lock(); defer c.mu.Unlock(); return c.runtimeToken }

// RegistryClient: nil until a runtime identity was issued or assigned.
func (c *Client) RegistryClient() cpv1connect.ServiceRegistryClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.registryClient
}

// Config: the configuration (Endpoint and HostURL follow SetRuntimeIdentity).
func (c *Client) Config() ClientConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// SetRuntimeIdentity (managed plugins, from PluginIdentity). As in the
// original, the phase 2 clients are made only if Connect ran before: the
// original's example plugins never Connect in managed mode, so they get no
// registry client, skip registration ("Registry client not available
// yet") and never report health: a Platform.AddPlugin of them times out.
// PrepareHTTPClient (stand-in only) avoids that.
func (c *Client) SetRuntimeIdentity(runtimeID, runtimeToken, hostURL string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runtimeID = runtimeID
	c.runtimeToken = runtimeToken
	if hostURL != "" && c.cfg.Endpoint != hostURL {
		c.cfg.Endpoint = hostURL
		c.cfg.HostURL = hostURL
	}
	if c.lifecycleClient == nil && c.httpClient != nil {
		c.lifecycleClient = cpv1connect.NewPluginLifecycleClient(c.httpClient, c.cfg.Endpoint)
		c.registryClient = cpv1connect.NewServiceRegistryClient(c.httpClient, c.cfg.Endpoint)
	}
}

// PrepareHTTPClient gives the client its http client without a handshake
// (not in the original; see SetRuntimeIdentity).
func (c *Client) PrepareHTTPClient() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.httpClient == nil {
		c.httpClient = &http.Client{}
	}
}

// ReportHealth sends the state with X-Plugin-Runtime-ID and the runtime
// token as bearer.
func (c *Client) ReportHealth(ctx context.Context, state cpv1.HealthState, reason string, unavailableDeps []string) error {
	c.mu.Lock()
	lc, id, tok := c.lifecycleClient, c.runtimeID, c.runtimeToken
	c.mu.Unlock()
	if lc == nil {
		return fmt.Errorf("ReportHealth requires Phase 2 runtime identity (provide SelfID in ClientConfig)")
	}
	req := connect.NewRequest(&cpv1.ReportHealthRequest{State: state, Reason: reason, UnavailableDependencies: unavailableDeps})
	req.Header().Set("X-Plugin-Runtime-ID", id)
	req.Header().Set("Authorization", "Bearer "+tok)
	_, err := lc.ReportHealth(ctx, req)
	return err
}

// HandshakeResponse is not in connect-plugin-go's API; the checks read the
// plugin list from it.
func (c *Client) HandshakeResponse() *cpv1.HandshakeResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.response
}

// Close closes the client (a flag, as in connect-plugin-go).
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}
