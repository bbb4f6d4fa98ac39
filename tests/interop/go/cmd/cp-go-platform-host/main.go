// cp-go-platform-host: a connect-plugin-go host platform, as its
// examples/docker-compose/host/main.go (handshake, lifecycle, registry,
// router at /services/, /health) plus a CapabilityBroker offering
// "secrets" (secrets.v1.Secrets, examples/platform/secrets.proto, from a
// fixed map) and "logger" (logger.v1.Logger, as its
// examples/capabilities/logger), and optionally a Platform driving one
// managed plugin through PluginIdentity.
//
//	cp-go-platform-host [flags]
//	  --listen ADDR          default 127.0.0.1:$PORT, else 127.0.0.1:0
//	  --broker-like-serve    mount the broker only where Serve does
//	                         (/broker/ and /capabilities/): RequestCapability
//	                         is then unreachable, as in the original; by
//	                         default it is also at /connectplugin.v1.CapabilityBroker/
//	  --grant-ttl D          capability grant lifetime (default 1h)
//	  --token-ttl D          runtime token lifetime (default 24h)
//	  --rate-limit RPS,BURST wrap the services as ratelimit.go allows (off)
//	  --selection TYPE=first|round-robin|random|weighted (repeatable)
//	  --add URL              Platform.AddPlugin(URL) once serving; prints
//	                         "added RUNTIME_ID" or "add-failed: ERROR"
//	  --remove               then Platform.RemovePlugin; prints "removed
//	                         RUNTIME_ID" or "remove-failed: ERROR"
//	  --replace URL          then (instead of --remove) Platform.ReplacePlugin
//	                         by the plugin at URL; prints "replaced NEW_ID" or
//	                         "replace-failed: ERROR" (the original's always
//	                         fails: it never gives the new plugin its identity)
//	  --identity-host-url U  host_url AddPlugin sends: "" (the original's),
//	                         or "self" for this host's URL
//	  --remove-grace D       RemovePlugin's sleep (default 5s, the original's)
//	  --health-timeout D     AddPlugin's wait for HEALTHY (default 30s)
//
// First stdout line: its URL. The router's log and the logger capability
// write to stderr. SIGINT/SIGTERM: exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/cpv1/cpv1connect"
	"cpinterop/gen/loggerv1"
	"cpinterop/gen/loggerv1/loggerv1connect"
	"cpinterop/gen/secretsv1"
	"cpinterop/gen/secretsv1/secretsv1connect"
)

// Secrets is the fixed map the "secrets" capability answers from.
var Secrets = map[string]string{"db-password": "hunter2", "api-key": "k-0123456789"}

type secretsCap struct{ h http.Handler }

func (s *secretsCap) CapabilityType() string { return "secrets" }
func (s *secretsCap) Version() string        { return "1.0.0" }
func (s *secretsCap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.h.ServeHTTP(w, r)
}
func (s *secretsCap) GetSecret(ctx context.Context, req *connect.Request[secretsv1.GetSecretRequest]) (*connect.Response[secretsv1.GetSecretResponse], error) {
	v, ok := Secrets[req.Msg.Name]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no secret %q", req.Msg.Name))
	}
	return connect.NewResponse(&secretsv1.GetSecretResponse{Value: v}), nil
}

// loggerCap follows examples/capabilities/logger/logger.go (which builds
// a new Connect handler at every request; built once here).
type loggerCap struct{ h http.Handler }

func (l *loggerCap) CapabilityType() string { return "logger" }
func (l *loggerCap) Version() string        { return "1.0.0" }
func (l *loggerCap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.h.ServeHTTP(w, r)
}
func (l *loggerCap) Log(ctx context.Context, req *connect.Request[loggerv1.LogRequest]) (*connect.Response[loggerv1.LogResponse], error) {
	keys := make([]string, 0, len(req.Msg.Fields))
	for k := range req.Msg.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	msg := fmt.Sprintf("[%s] %s", req.Msg.Level, req.Msg.Message)
	for _, k := range keys {
		msg += fmt.Sprintf(" %s=%s", k, req.Msg.Fields[k])
	}
	log.Println(msg)
	return connect.NewResponse(&loggerv1.LogResponse{}), nil
}

type selections []string

func (s *selections) String() string     { return strings.Join(*s, ",") }
func (s *selections) Set(v string) error { *s = append(*s, v); return nil }

var strategies = map[string]cpgo.SelectionStrategy{"first": cpgo.SelectionFirst,
	"round-robin": cpgo.SelectionRoundRobin, "random": cpgo.SelectionRandom, "weighted": cpgo.SelectionWeighted}

func main() {
	listen := flag.String("listen", "", "address to listen on")
	likeServe := flag.Bool("broker-like-serve", false, "mount the broker only where connect-plugin-go's Serve does")
	grantTTL := flag.Duration("grant-ttl", cpgo.DefaultCapabilityGrantTTL, "capability grant lifetime")
	tokenTTL := flag.Duration("token-ttl", cpgo.DefaultRuntimeTokenTTL, "runtime token lifetime")
	rateLimit := flag.String("rate-limit", "", "RPS,BURST")
	var sel selections
	flag.Var(&sel, "selection", "TYPE=STRATEGY")
	add := flag.String("add", "", "plugin URL for Platform.AddPlugin")
	remove := flag.Bool("remove", false, "Platform.RemovePlugin after --add")
	replace := flag.String("replace", "", "plugin URL for Platform.ReplacePlugin after --add")
	identityHostURL := flag.String("identity-host-url", "", `host_url AddPlugin sends ("" or "self")`)
	removeGrace := flag.Duration("remove-grace", 5*time.Second, "RemovePlugin's sleep")
	healthTimeout := flag.Duration("health-timeout", 30*time.Second, "AddPlugin's wait for HEALTHY")
	flag.Parse()

	addr := *listen
	if addr == "" {
		addr = "127.0.0.1:" + os.Getenv("PORT")
		if os.Getenv("PORT") == "" {
			addr = "127.0.0.1:0"
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("listen %s: %v", addr, err)
	}
	self := "http://" + l.Addr().String()

	broker := cpgo.NewCapabilityBroker(self)
	broker.SetGrantTTL(*grantTTL)
	sc := &secretsCap{}
	_, sc.h = secretsv1connect.NewSecretsHandler(sc)
	lc := &loggerCap{}
	_, lc.h = loggerv1connect.NewLoggerHandler(lc)
	broker.RegisterCapability(sc)
	broker.RegisterCapability(lc)

	handshake := cpgo.NewHandshakeServer(&cpgo.HandshakeConfig{CapabilityBroker: broker, RuntimeTokenTTL: *tokenTTL})
	lifecycle := cpgo.NewLifecycleServer()
	registry := cpgo.NewServiceRegistry(lifecycle)
	for _, s := range sel {
		typ, name, _ := strings.Cut(s, "=")
		st, ok := strategies[name]
		if !ok {
			log.Fatalf("--selection %s: unknown strategy", s)
		}
		registry.SetSelectionStrategy(typ, st)
	}
	router := cpgo.NewServiceRouter(handshake, registry, lifecycle)

	var opts []connect.HandlerOption
	wrap := func(h http.Handler) http.Handler { return h }
	if *rateLimit != "" {
		rps, burst, _ := strings.Cut(*rateLimit, ",")
		r, err1 := strconv.ParseFloat(rps, 64)
		b, err2 := strconv.Atoi(burst)
		if err1 != nil || err2 != nil {
			log.Fatalf("--rate-limit %q: want RPS,BURST", *rateLimit)
		}
		limiter := cpgo.NewTokenBucketLimiter()
		rate := cpgo.Rate{RequestsPerSecond: r, Burst: b}
		opts = append(opts, connect.WithInterceptors(cpgo.RateLimitInterceptor(limiter, cpgo.DefaultRateLimitKeyExtractor, rate)))
		wrap = func(h http.Handler) http.Handler {
			return cpgo.RateLimitHTTPHandler(h, limiter, cpgo.HTTPRateLimitKeyExtractor, rate)
		}
	}

	mux := http.NewServeMux()
	mux.Handle(cpv1connect.NewHandshakeServiceHandler(handshake, opts...))
	mux.Handle(cpv1connect.NewPluginLifecycleHandler(lifecycle, opts...))
	mux.Handle(cpv1connect.NewServiceRegistryHandler(registry, opts...))
	mux.Handle("/services/", wrap(router))
	if *likeServe {
		broker.MountLikeServe(mux)
	} else {
		bh := broker.Handler()
		mux.Handle("/broker/", bh)
		mux.Handle("/capabilities/", wrap(bh))
		path, h := cpv1connect.NewCapabilityBrokerHandler(broker, opts...)
		mux.Handle(path, h)
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("OK"))
	})

	fmt.Println(self)
	os.Stdout.Sync()
	log.Printf("Host platform listening on %s", self)

	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			log.Fatalf("Server error: %v", err)
		}
	}()

	if *add != "" {
		platform := cpgo.NewPlatform(registry, lifecycle, router)
		platform.RemoveGrace = *removeGrace
		platform.HealthTimeout = *healthTimeout
		if *identityHostURL == "self" {
			platform.IdentityHostURL = self
		} else {
			platform.IdentityHostURL = *identityHostURL
		}
		go drive(platform, *add, *remove, *replace)
	}

	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, os.Interrupt, syscall.SIGTERM)
	<-sigCh
	srv.Close()
}

// drive: AddPlugin, then ReplacePlugin or RemovePlugin if asked; one
// stdout line each.
func drive(platform *cpgo.Platform, url string, remove bool, replace string) {
	ctx := context.Background()
	id, err := platform.AddPlugin(ctx, cpgo.PluginConfig{Endpoint: url})
	if err != nil {
		fmt.Printf("add-failed: %v\n", err)
		return
	}
	fmt.Printf("added %s\n", id)
	if replace != "" {
		old := platform.Plugin(id)
		err := platform.ReplacePlugin(ctx, id, cpgo.PluginConfig{SelfID: old.SelfID, Endpoint: replace, Metadata: old.Metadata})
		if err != nil {
			fmt.Printf("replace-failed: %v\n", err)
			return
		}
		fmt.Printf("replaced %s\n", id)
		return
	}
	if !remove {
		return
	}
	if err := platform.RemovePlugin(ctx, id); err != nil {
		fmt.Printf("remove-failed: %v\n", err)
		return
	}
	fmt.Printf("removed %s\n", id)
}
