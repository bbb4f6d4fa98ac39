package cpgo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
	"cpinterop/gen/healthv1"
	"cpinterop/gen/healthv1/healthv1connect"
	"cpinterop/gen/kvv1/kvv1connect"
)

// ServeConfig mirrors the fields of connect-plugin-go's ServeConfig used by
// its KV example: one plugin "kv" with its implementation, health enabled.
type ServeConfig struct {
	KV                      kvv1connect.KVServiceHandler
	ProtocolVersion         int
	Listener                net.Listener // connect-plugin-go listens on Addr; equivalent
	GracefulShutdownTimeout time.Duration
	HealthService           *HealthServer
	StopCh                  <-chan struct{}
}

var selfIDPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.\-]*$`)

type handshakeServer struct{ cfg *ServeConfig }

// Handshake follows connect-plugin-go's HandshakeServer.Handshake.
func (h *handshakeServer) Handshake(ctx context.Context, req *connect.Request[cpv1.HandshakeRequest]) (*connect.Response[cpv1.HandshakeResponse], error) {
	m := req.Msg
	if m.MagicCookieKey != DefaultMagicCookieKey || m.MagicCookieValue != DefaultMagicCookieValue {
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
		if len(m.SelfId) > 128 || !selfIDPattern.MatchString(m.SelfId) {
			return nil, connect.NewError(connect.CodeInvalidArgument,
				fmt.Errorf("self_id %q contains invalid characters", m.SelfId))
		}
		suffix := make([]byte, 2)
		token := make([]byte, 32)
		rand.Read(suffix)
		rand.Read(token)
		runtimeID = strings.ToLower(strings.ReplaceAll(m.SelfId, " ", "-")) + "-" + hex.EncodeToString(suffix)
		runtimeToken = base64.URLEncoding.EncodeToString(token)
	}
	plugins := []*cpv1.PluginInfo{}
	for _, name := range m.RequestedPlugins {
		if name != "kv" {
			continue
		}
		plugins = append(plugins, &cpv1.PluginInfo{
			Name: "kv", Version: "1.0.0", ServicePath: kvv1connect.KVServiceName,
			Provides: []*cpv1.ServiceDeclaration{{Type: "kv", Version: "1.0.0", Path: kvv1connect.KVServiceName}},
		})
	}
	return connect.NewResponse(&cpv1.HandshakeResponse{
		CoreProtocolVersion: 1,
		AppProtocolVersion:  int32(serverVersion),
		Plugins:             plugins,
		ServerMetadata:      map[string]string{"server_version": "0.1.0"},
		RuntimeId:           runtimeID,
		RuntimeToken:        runtimeToken,
	}), nil
}

// Serve mirrors connect-plugin-go's Serve: handshake, health service and
// /healthz + /readyz when HealthService is set, the plugin's handler, and
// a graceful shutdown on SIGINT/SIGTERM (or StopCh): health NOT_SERVING,
// then http.Server.Shutdown.
func Serve(cfg *ServeConfig) error {
	if cfg.GracefulShutdownTimeout == 0 {
		cfg.GracefulShutdownTimeout = 30 * time.Second
	}
	mux := http.NewServeMux()
	mux.Handle(cpv1connect.NewHandshakeServiceHandler(&handshakeServer{cfg}))
	if cfg.HealthService != nil {
		cfg.HealthService.SetServingStatus("", healthv1.ServingStatus_SERVING_STATUS_SERVING)
		mux.Handle(healthv1connect.NewHealthServiceHandler(cfg.HealthService))
		h := HTTPHealthHandler(cfg.HealthService)
		mux.Handle("/healthz", h)
		mux.Handle("/readyz", h)
	}
	mux.Handle(kvv1connect.NewKVServiceHandler(cfg.KV))
	if cfg.HealthService != nil {
		cfg.HealthService.SetServingStatus("kv", healthv1.ServingStatus_SERVING_STATUS_SERVING)
	}
	srv := &http.Server{Handler: mux}

	stopCh := cfg.StopCh
	if stopCh == nil {
		sigCh := make(chan os.Signal, 1)
		signal.Notify(sigCh, os.Interrupt, syscall.SIGTERM)
		shutdownCh := make(chan struct{})
		go func() { <-sigCh; close(shutdownCh) }()
		stopCh = shutdownCh
	}
	errCh := make(chan error, 1)
	go func() {
		if err := srv.Serve(cfg.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errCh <- err
		}
	}()
	select {
	case err := <-errCh:
		return err
	case <-stopCh:
		ctx, cancel := context.WithTimeout(context.Background(), cfg.GracefulShutdownTimeout)
		defer cancel()
		if cfg.HealthService != nil {
			cfg.HealthService.Shutdown()
		}
		return srv.Shutdown(ctx)
	}
}
