// cp-go-cache-plugin: connect-plugin-go's examples/cache-plugin/main.go on
// cpgo, serving the generated cache.v1.Cache of
// examples/platform/cache.proto (the original answers a fixed JSON), type
// "cache" 1.0.0 at /cache.v1.Cache/, requiring "logger" 1.0.0. Every Get
// and Set is logged through the host's router, as the original's
// storage-plugin logs (discover "logger", then HOST_URL + endpoint_url +
// "/Log"); when that call succeeds the response carries the header
// X-Plugin-Route: "<cache runtime id> -> <logger runtime id>", from which
// the app plugin builds its route.
//
//	HOST_URL=http://HOST [PORT=N] cp-go-cache-plugin [--listen ADDR]
//	[PORT=N] cp-go-cache-plugin [--listen ADDR] [--prepare-managed]
//
// First stdout line: its URL. After registering it waits 200 ms, then
// reports HEALTHY if it can discover "logger", else DEGRADED.
package main

import (
	"context"
	"log"
	"sync"
	"time"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/cachev1"
	"cpinterop/gen/cachev1/cachev1connect"
	"cpinterop/gen/loggerv1"
)

type cache struct {
	p    *cpgo.ExamplePlugin
	mu   sync.RWMutex
	data map[string]string
}

// logOperation: failures are logged and ignored, as in storage-plugin.
func (c *cache) logOperation(ctx context.Context, h interface{ Set(string, string) }, op, key string) {
	provider, _, err := cpgo.RoutedCall[loggerv1.LogRequest, loggerv1.LogResponse](ctx, c.p, "logger", "Log",
		&loggerv1.LogRequest{Level: "info", Message: "cache " + op, Fields: map[string]string{"key": key}})
	if err != nil {
		log.Printf("Failed to call logger: %v", err)
		return
	}
	h.Set("X-Plugin-Route", c.p.Client.RuntimeID()+" -> "+provider)
}

func (c *cache) Get(ctx context.Context, req *connect.Request[cachev1.GetRequest]) (*connect.Response[cachev1.GetResponse], error) {
	c.mu.RLock()
	v, found := c.data[req.Msg.Key]
	c.mu.RUnlock()
	resp := connect.NewResponse(&cachev1.GetResponse{Value: v, Found: found})
	c.logOperation(ctx, resp.Header(), "GET", req.Msg.Key)
	return resp, nil
}

func (c *cache) Set(ctx context.Context, req *connect.Request[cachev1.SetRequest]) (*connect.Response[cachev1.SetResponse], error) {
	c.mu.Lock()
	c.data[req.Msg.Key] = req.Msg.Value
	c.mu.Unlock()
	resp := connect.NewResponse(&cachev1.SetResponse{})
	c.logOperation(ctx, resp.Header(), "SET", req.Msg.Key)
	return resp, nil
}

func main() {
	listen, prepare := cpgo.ParseExampleFlags()
	p := cpgo.NewExamplePlugin(listen, "cache-plugin", cpgo.PluginMetadata{
		Name: "Cache Plugin", Version: "1.0.0",
		Provides: []cpgo.ServiceDeclaration{{Type: "cache", Version: "1.0.0", Path: "/cache.v1.Cache/"}},
		Requires: []cpgo.ServiceDependency{{Type: "logger", MinVersion: "1.0.0", RequiredForStartup: true, WatchForChanges: true}},
	}, prepare)
	p.Mux.Handle(cachev1connect.NewCacheHandler(&cache{p: p, data: map[string]string{}}))
	p.AfterIdentity = func(ctx context.Context) {
		if p.RegisterServices(ctx) {
			p.CheckDependency(ctx, "logger", 200*time.Millisecond)
		}
	}
	p.Run()
}
