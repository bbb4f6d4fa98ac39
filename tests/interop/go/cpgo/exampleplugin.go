package cpgo

// Follows what connect-plugin-go's phase 2 example plugins repeat in each
// main.go (examples/{logger,cache,app,storage}-plugin): HOST_URL set →
// unmanaged (handshake with a self id, register, report health); unset →
// managed (wait for PluginIdentity.SetRuntimeIdentity, then the same);
// PluginControl (GetHealth always HEALTHY, Shutdown exits the process
// 100 ms later); routed calls to another plugin as storage-plugin makes
// them (discover, then host URL + endpoint_url + "/Method" with
// X-Plugin-Runtime-ID and the runtime token).
//
// Changes, for tests: they listen on 127.0.0.1 (--listen, else $PORT, 0
// allowed) instead of ":$PORT" (default 808x), print their URL as the
// first stdout line, and register base_url = that URL instead of
// http://$HOSTNAME:$PORT (cache- and app-plugin register no base_url in
// the original, so the router cannot reach them unless they were added
// through Platform.AddPlugin).

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
	"syscall"
	"time"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
)

// ExamplePlugin is one example plugin process.
type ExamplePlugin struct {
	Client   *Client
	Managed  bool
	BaseURL  string
	Mux      *http.ServeMux
	listener net.Listener
	// AfterIdentity registers and reports health once the plugin has its
	// runtime identity (the examples' registerServices).
	AfterIdentity func(ctx context.Context)
}

// ParseExampleFlags: --listen ADDR and --prepare-managed (see
// Client.PrepareHTTPClient: without it a managed plugin behaves as the
// original's, which never registers).
func ParseExampleFlags() (listen string, prepareManaged bool) {
	l := flag.String("listen", "", "address to listen on (default 127.0.0.1:$PORT, else 127.0.0.1:0)")
	pm := flag.Bool("prepare-managed", false, "managed mode: give the client an HTTP client so that it registers after SetRuntimeIdentity (the original's examples do not)")
	flag.Parse()
	return *l, *pm
}

// NewExamplePlugin listens, prints the URL line and builds the client.
func NewExamplePlugin(listen, selfID string, meta PluginMetadata, prepareManaged bool) *ExamplePlugin {
	addr := listen
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
	base := "http://" + l.Addr().String()
	fmt.Println(base)
	os.Stdout.Sync()

	hostURL := os.Getenv("HOST_URL")
	managed := hostURL == ""
	if managed {
		hostURL = "http://localhost:8080" // the original's placeholder until SetRuntimeIdentity
	}
	client, err := NewClient(ClientConfig{HostURL: hostURL, SelfID: selfID, SelfVersion: "1.0.0", Metadata: meta})
	if err != nil {
		log.Fatalf("Failed to create client: %v", err)
	}
	if managed && prepareManaged {
		client.PrepareHTTPClient()
	}
	p := &ExamplePlugin{Client: client, Managed: managed, BaseURL: base, Mux: http.NewServeMux(), listener: l}
	p.Mux.Handle(cpv1connect.NewPluginControlHandler(&exampleControl{}))
	p.Mux.Handle(cpv1connect.NewPluginIdentityHandler(&exampleIdentity{p}))
	return p
}

// Run: unmanaged plugins connect and register first (as the originals do,
// before serving), then serve until SIGINT/SIGTERM.
func (p *ExamplePlugin) Run() {
	ctx := context.Background()
	if !p.Managed {
		if err := p.Client.Connect(ctx); err != nil {
			log.Fatalf("Failed to connect: %v", err)
		}
		log.Printf("%s started (Unmanaged) with runtime_id: %s", p.Client.Config().SelfID, p.Client.RuntimeID())
		if p.AfterIdentity != nil {
			p.AfterIdentity(ctx)
		}
	} else {
		log.Printf("%s started (Managed) - waiting for host to assign identity", p.Client.Config().SelfID)
	}
	srv := &http.Server{Handler: p.Mux}
	sigCh := make(chan os.Signal, 1)
	signal.Notify(sigCh, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigCh
		srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(p.listener); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("Server error: %v", err)
	}
}

// withIdentity adds the runtime id and token, as every example does.
func (p *ExamplePlugin) withIdentity(h http.Header) {
	h.Set("X-Plugin-Runtime-ID", p.Client.RuntimeID())
	h.Set("Authorization", "Bearer "+p.Client.RuntimeToken())
}

// RegisterServices registers every provided service with base_url; a
// refusal is fatal, as in the examples.
func (p *ExamplePlugin) RegisterServices(ctx context.Context) bool {
	reg := p.Client.RegistryClient()
	if reg == nil {
		log.Println("Registry client not available yet, skipping registration")
		return false
	}
	for _, svc := range p.Client.Config().Metadata.Provides {
		req := connect.NewRequest(&cpv1.RegisterServiceRequest{ServiceType: svc.Type, Version: svc.Version,
			EndpointPath: svc.Path, Metadata: map[string]string{"base_url": p.BaseURL}})
		p.withIdentity(req.Header())
		if _, err := reg.RegisterService(ctx, req); err != nil {
			log.Fatalf("Failed to register service %s: %v", svc.Type, err)
		}
		log.Printf("Registered service: %s v%s at %s", svc.Type, svc.Version, p.BaseURL)
	}
	return true
}

// Discover: DiscoverService with the runtime identity headers.
func (p *ExamplePlugin) Discover(ctx context.Context, serviceType, minVersion string) (*cpv1.ServiceEndpoint, error) {
	reg := p.Client.RegistryClient()
	if reg == nil {
		return nil, fmt.Errorf("no registry client (no runtime identity)")
	}
	req := connect.NewRequest(&cpv1.DiscoverServiceRequest{ServiceType: serviceType, MinVersion: minVersion})
	p.withIdentity(req.Header())
	resp, err := reg.DiscoverService(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.Msg.Endpoint, nil
}

// CheckDependency: after a pause (the examples sleep 200-300 ms), discover
// the dependency and report HEALTHY, or DEGRADED naming it.
func (p *ExamplePlugin) CheckDependency(ctx context.Context, dep string, pause time.Duration) {
	time.Sleep(pause)
	if _, err := p.Discover(ctx, dep, "1.0.0"); err != nil {
		log.Printf("%s not available yet, reporting degraded: %v", dep, err)
		p.Client.ReportHealth(ctx, cpv1.HealthState_HEALTH_STATE_DEGRADED, dep+" dependency not available", []string{dep})
		return
	}
	log.Printf("%s discovered, reporting healthy", dep)
	p.Client.ReportHealth(ctx, cpv1.HealthState_HEALTH_STATE_HEALTHY, "", nil)
}

// RoutedCall makes a unary call to another plugin through the host's
// router: discover the type, then host URL + endpoint_url + "/" + method.
// Returns the provider's runtime id and the response.
func RoutedCall[Req, Res any](ctx context.Context, p *ExamplePlugin, serviceType, method string, msg *Req) (string, *connect.Response[Res], error) {
	ep, err := p.Discover(ctx, serviceType, "1.0.0")
	if err != nil {
		return "", nil, fmt.Errorf("%s not available: %w", serviceType, err)
	}
	url := p.Client.Config().HostURL + ep.EndpointUrl + "/" + method
	c := connect.NewClient[Req, Res](http.DefaultClient, url)
	req := connect.NewRequest(msg)
	p.withIdentity(req.Header())
	resp, err := c.CallUnary(ctx, req)
	return ep.ProviderId, resp, err
}

type exampleControl struct{}

func (exampleControl) GetHealth(ctx context.Context, req *connect.Request[cpv1.GetHealthRequest]) (*connect.Response[cpv1.GetHealthResponse], error) {
	return connect.NewResponse(&cpv1.GetHealthResponse{State: cpv1.HealthState_HEALTH_STATE_HEALTHY,
		Reason: "all systems operational"}), nil
}

func (exampleControl) Shutdown(ctx context.Context, req *connect.Request[cpv1.ShutdownRequest]) (*connect.Response[cpv1.ShutdownResponse], error) {
	log.Printf("Received shutdown request (grace: %ds, reason: %s)", req.Msg.GracePeriodSeconds, req.Msg.Reason)
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.Exit(0)
	}()
	return connect.NewResponse(&cpv1.ShutdownResponse{Acknowledged: true}), nil
}

type exampleIdentity struct{ p *ExamplePlugin }

func (h *exampleIdentity) GetPluginInfo(ctx context.Context, req *connect.Request[cpv1.GetPluginInfoRequest]) (*connect.Response[cpv1.GetPluginInfoResponse], error) {
	cfg := h.p.Client.Config()
	provides := make([]*cpv1.ServiceDeclaration, len(cfg.Metadata.Provides))
	for i, s := range cfg.Metadata.Provides {
		provides[i] = &cpv1.ServiceDeclaration{Type: s.Type, Version: s.Version, Path: s.Path}
	}
	requires := make([]*cpv1.ServiceDependency, len(cfg.Metadata.Requires))
	for i, d := range cfg.Metadata.Requires {
		requires[i] = &cpv1.ServiceDependency{Type: d.Type, MinVersion: d.MinVersion,
			RequiredForStartup: d.RequiredForStartup, WatchForChanges: d.WatchForChanges}
	}
	return connect.NewResponse(&cpv1.GetPluginInfoResponse{SelfId: cfg.SelfID, SelfVersion: cfg.SelfVersion,
		Provides: provides, Requires: requires,
		Metadata: map[string]string{"name": cfg.Metadata.Name, "version": cfg.Metadata.Version}}), nil
}

// SetRuntimeIdentity: as the examples, including their log line, which
// panics on a token shorter than 8 characters (net/http then drops the
// connection: the host sees a transport error, the identity is not set).
func (h *exampleIdentity) SetRuntimeIdentity(ctx context.Context, req *connect.Request[cpv1.SetRuntimeIdentityRequest]) (*connect.Response[cpv1.SetRuntimeIdentityResponse], error) {
	log.Printf("Received runtime identity: %s (token: %s...)", req.Msg.RuntimeId, req.Msg.RuntimeToken[:8])
	h.p.Client.SetRuntimeIdentity(req.Msg.RuntimeId, req.Msg.RuntimeToken, req.Msg.HostUrl)
	go func() {
		time.Sleep(100 * time.Millisecond)
		if h.p.AfterIdentity != nil {
			h.p.AfterIdentity(context.Background())
		}
	}()
	return connect.NewResponse(&cpv1.SetRuntimeIdentityResponse{Acknowledged: true}), nil
}
