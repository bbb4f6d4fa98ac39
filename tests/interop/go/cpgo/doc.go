// Package cpgo reproduces, on connectrpc.com/connect and Go code generated
// from connectplugin's own protos, the parts of connect-plugin-go
// (github.com/masegraye/connect-plugin-go) that the interop tests exercise:
// its Client (handshake with SelfID, plugin list, dispense), its Serve
// (handshake, HealthService, /healthz, /readyz, graceful shutdown), its
// HealthServer, its KV example store and its ProcessStrategy launcher; and
// its host platform (phase 2): HandshakeServer with runtime tokens,
// CapabilityBroker, LifecycleServer, ServiceRegistry, ServiceRouter,
// Platform with its dependency graph, rate limiter, and the plugin-side
// Client pieces (runtime identity, ReportHealth, registry client). Each
// file names the original file it follows and the original's weaknesses it
// keeps on purpose: they are what a connect-plugin-go peer does on the wire.
//
// connect-plugin-go is not served by the Go module proxy, so it cannot be a
// module dependency; this package follows its code (as of its commit 6f150b6)
// behaviour for behaviour: same defaults, same validation order, same
// error codes, same environment variables, same polling.
package cpgo

const (
	// DefaultMagicCookieKey and DefaultMagicCookieValue: connect-plugin-go's.
	DefaultMagicCookieKey   = "CONNECT_PLUGIN"
	DefaultMagicCookieValue = "d3f40b3c2e1a5f8b9c4d7e6a1b2c3d4e"
)
