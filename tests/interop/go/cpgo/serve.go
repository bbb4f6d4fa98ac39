package cpgo

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

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

// Serve mirrors connect-plugin-go's Serve: handshake, health service and
// /healthz + /readyz when HealthService is set, the plugin's handler, and
// a graceful shutdown on SIGINT/SIGTERM (or StopCh): health NOT_SERVING,
// then http.Server.Shutdown.
func Serve(cfg *ServeConfig) error {
	if cfg.GracefulShutdownTimeout == 0 {
		cfg.GracefulShutdownTimeout = 30 * time.Second
	}
	mux := http.NewServeMux()
	mux.Handle(cpv1connect.NewHandshakeServiceHandler(NewHandshakeServer(&HandshakeConfig{
		ProtocolVersion: cfg.ProtocolVersion,
		Plugins: map[string]*cpv1.PluginInfo{"kv": {
			Name: "kv", Version: "1.0.0", ServicePath: kvv1connect.KVServiceName,
			Provides: []*cpv1.ServiceDeclaration{{Type: "kv", Version: "1.0.0", Path: kvv1connect.KVServiceName}},
		}},
	})))
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
