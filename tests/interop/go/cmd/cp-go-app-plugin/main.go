// cp-go-app-plugin: connect-plugin-go's examples/app-plugin/main.go on
// cpgo, serving the generated app.v1.App of examples/platform/app.proto
// (the original answers a fixed JSON and provides nothing). Here it
// provides "app" 1.0.0 at /app.v1.App/ (as app.proto says), requires
// "cache" 1.0.0, and Process calls the cache through the host's router:
// Get(input), and on a miss Set(input, "processed:"+input); result is the
// cached value, route the hops taken ("<app id> → <cache id>", then each
// X-Plugin-Route hop the cache reports, "<cache id> → <logger id>").
// Unlike the original's unmanaged mode (handshake only) it registers and
// reports health in both modes.
//
//	HOST_URL=http://HOST [PORT=N] cp-go-app-plugin [--listen ADDR]
//	[PORT=N] cp-go-app-plugin [--listen ADDR] [--prepare-managed]
//
// First stdout line: its URL. After registering it waits 300 ms, then
// reports HEALTHY if it can discover "cache", else DEGRADED.
package main

import (
	"context"
	"strings"
	"time"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/appv1"
	"cpinterop/gen/appv1/appv1connect"
	"cpinterop/gen/cachev1"
)

type app struct{ p *cpgo.ExamplePlugin }

func (a *app) Process(ctx context.Context, req *connect.Request[appv1.ProcessRequest]) (*connect.Response[appv1.ProcessResponse], error) {
	route := []string{}
	hop := func(from, to string) {
		h := from + " → " + to
		for _, r := range route {
			if r == h {
				return
			}
		}
		route = append(route, h)
	}
	follow := func(provider string, header interface{ Values(string) []string }) {
		hop(a.p.Client.RuntimeID(), provider)
		for _, v := range header.Values("X-Plugin-Route") {
			if from, to, ok := strings.Cut(v, " -> "); ok {
				hop(from, to)
			}
		}
	}
	provider, got, err := cpgo.RoutedCall[cachev1.GetRequest, cachev1.GetResponse](ctx, a.p, "cache", "Get",
		&cachev1.GetRequest{Key: req.Msg.Input})
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	follow(provider, got.Header())
	result := got.Msg.Value
	if !got.Msg.Found {
		result = "processed:" + req.Msg.Input
		provider, set, err := cpgo.RoutedCall[cachev1.SetRequest, cachev1.SetResponse](ctx, a.p, "cache", "Set",
			&cachev1.SetRequest{Key: req.Msg.Input, Value: result})
		if err != nil {
			return nil, connect.NewError(connect.CodeUnavailable, err)
		}
		follow(provider, set.Header())
	}
	return connect.NewResponse(&appv1.ProcessResponse{Result: result, Route: route}), nil
}

func main() {
	listen, prepare := cpgo.ParseExampleFlags()
	p := cpgo.NewExamplePlugin(listen, "app-plugin", cpgo.PluginMetadata{
		Name: "App Plugin", Version: "1.0.0",
		Provides: []cpgo.ServiceDeclaration{{Type: "app", Version: "1.0.0", Path: "/app.v1.App/"}},
		Requires: []cpgo.ServiceDependency{{Type: "cache", MinVersion: "1.0.0", RequiredForStartup: true, WatchForChanges: true}},
	}, prepare)
	p.Mux.Handle(appv1connect.NewAppHandler(&app{p: p}))
	p.AfterIdentity = func(ctx context.Context) {
		if p.RegisterServices(ctx) {
			p.CheckDependency(ctx, "cache", 300*time.Millisecond)
		}
	}
	p.Run()
}
