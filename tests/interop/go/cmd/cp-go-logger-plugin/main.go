// cp-go-logger-plugin: connect-plugin-go's examples/logger-plugin/main.go
// on cpgo, serving the generated logger.v1.Logger of
// examples/platform/logger.proto (the original answers a query-string
// handler with JSON) and registering the type "logger" 1.0.0 at
// /logger.v1.Logger/.
//
//	HOST_URL=http://HOST [PORT=N] cp-go-logger-plugin [--listen ADDR]
//	    unmanaged: handshake as "logger-plugin", register with base_url,
//	    report HEALTHY 100 ms later
//	[PORT=N] cp-go-logger-plugin [--listen ADDR] [--prepare-managed]
//	    managed: wait for PluginIdentity.SetRuntimeIdentity
//
// First stdout line: its URL (http://127.0.0.1:PORT). Each Log call is
// written to stderr as "[LOG] [level] message k=v …".
package main

import (
	"context"
	"fmt"
	"log"
	"sort"
	"time"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/cpv1"
	"cpinterop/gen/loggerv1"
	"cpinterop/gen/loggerv1/loggerv1connect"
)

type logger struct{}

func (logger) Log(ctx context.Context, req *connect.Request[loggerv1.LogRequest]) (*connect.Response[loggerv1.LogResponse], error) {
	keys := make([]string, 0, len(req.Msg.Fields))
	for k := range req.Msg.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msg := fmt.Sprintf("[%s] %s", req.Msg.Level, req.Msg.Message)
	for _, k := range keys {
		msg += fmt.Sprintf(" %s=%s", k, req.Msg.Fields[k])
	}
	log.Printf("[LOG] %s", msg)
	return connect.NewResponse(&loggerv1.LogResponse{}), nil
}

func main() {
	listen, prepare := cpgo.ParseExampleFlags()
	p := cpgo.NewExamplePlugin(listen, "logger-plugin", cpgo.PluginMetadata{
		Name: "Logger Plugin", Version: "1.0.0",
		Provides: []cpgo.ServiceDeclaration{{Type: "logger", Version: "1.0.0", Path: "/logger.v1.Logger/"}},
	}, prepare)
	p.Mux.Handle(loggerv1connect.NewLoggerHandler(logger{}))
	p.AfterIdentity = func(ctx context.Context) {
		if !p.RegisterServices(ctx) {
			return
		}
		time.Sleep(100 * time.Millisecond)
		if err := p.Client.ReportHealth(ctx, cpv1.HealthState_HEALTH_STATE_HEALTHY, "", nil); err != nil {
			log.Printf("Failed to report health: %v", err)
		}
	}
	p.Run()
}
