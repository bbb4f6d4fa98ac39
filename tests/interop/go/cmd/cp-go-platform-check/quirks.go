package main

// Checks of what connect-plugin-go's host does on the wire that ours does
// differently on purpose (see cpgo/registry.go, router.go, broker.go,
// lifecycle.go, ratelimit.go): run against the Go host only. They pin the
// stand-in to the original's behaviour.

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"

	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
)

func wantCode(err error, code connect.Code) error {
	if err == nil {
		return fmt.Errorf("succeeded, want %v", code)
	}
	if connect.CodeOf(err) != code {
		return fmt.Errorf("got %v, want %v", err, code)
	}
	return nil
}

func register(ctx context.Context, reg cpv1connect.ServiceRegistryClient, runtimeID, typ, version string) (string, error) {
	req := connect.NewRequest(&cpv1.RegisterServiceRequest{ServiceType: typ, Version: version,
		EndpointPath: "/x.v1.X/", Metadata: map[string]string{"base_url": "http://127.0.0.1:9"}})
	if runtimeID != "" {
		req.Header().Set("X-Plugin-Runtime-ID", runtimeID)
	}
	resp, err := reg.RegisterService(ctx, req)
	if err != nil {
		return "", err
	}
	return resp.Msg.RegistrationId, nil
}

func reportHealth(ctx context.Context, host, runtimeID string, state cpv1.HealthState) error {
	lc := cpv1connect.NewPluginLifecycleClient(http.DefaultClient, host)
	req := connect.NewRequest(&cpv1.ReportHealthRequest{State: state, Reason: "platform-check"})
	req.Header().Set("X-Plugin-Runtime-ID", runtimeID)
	_, err := lc.ReportHealth(ctx, req)
	return err
}

func quirkChecks(peers, host string, me identity, ids map[string]string) {
	reg := cpv1connect.NewServiceRegistryClient(http.DefaultClient, host)
	check("Go host as the original: RegisterService with a runtime id header and no token is accepted; reg- + 16 hex", func() error {
		ctx, cancel := ctxT()
		defer cancel()
		id, err := register(ctx, reg, "forged-0000", "quirk", "1.0.0")
		if err != nil {
			return err
		}
		if len(id) != 20 || !strings.HasPrefix(id, "reg-") {
			return fmt.Errorf("registration id %q", id)
		}
		_, err = register(ctx, reg, "", "quirk", "1.0.0")
		return wantCode(err, connect.CodeInvalidArgument)
	})
	check("Go host as the original: min_version compared as a string (\"10.0.0\" < \"9.0.0\")", func() error {
		ctx, cancel := ctxT()
		defer cancel()
		if _, err := register(ctx, reg, "forged-0000", "quirk-ver", "10.0.0"); err != nil {
			return err
		}
		_, err := reg.DiscoverService(ctx, connect.NewRequest(&cpv1.DiscoverServiceRequest{ServiceType: "quirk-ver", MinVersion: "9.0.0"}))
		return wantCode(err, connect.CodeNotFound)
	})
	check("Go host as the original: DiscoverService and UnregisterService need no identity", func() error {
		ctx, cancel := ctxT()
		defer cancel()
		id, err := register(ctx, reg, "forged-0000", "quirk-unreg", "1.0.0")
		if err != nil {
			return err
		}
		d, err := reg.DiscoverService(ctx, connect.NewRequest(&cpv1.DiscoverServiceRequest{ServiceType: "quirk-unreg"}))
		if err != nil {
			return err
		}
		if d.Msg.Endpoint.EndpointUrl != "/services/quirk-unreg/forged-0000" || !d.Msg.SingleProvider {
			return fmt.Errorf("endpoint %v", d.Msg)
		}
		if _, err := reg.UnregisterService(ctx, connect.NewRequest(&cpv1.UnregisterServiceRequest{RegistrationId: id})); err != nil {
			return err
		}
		_, err = reg.UnregisterService(ctx, connect.NewRequest(&cpv1.UnregisterServiceRequest{RegistrationId: id}))
		return wantCode(err, connect.CodeNotFound)
	})
	if ids["cache"] != "" {
		check("Go host as the original: ReportHealth UNHEALTHY (header only, any caller) → router 503, discover not_found; DEGRADED routes", func() error {
			ctx, cancel := ctxT()
			defer cancel()
			url := host + "/services/cache/" + ids["cache"] + "/Get"
			auth := map[string]string{"X-Plugin-Runtime-ID": me.id, "Authorization": "Bearer " + me.token, "Content-Type": "application/json"}
			if err := reportHealth(ctx, host, ids["cache"], cpv1.HealthState_HEALTH_STATE_UNHEALTHY); err != nil {
				return err
			}
			status, body, err := post(url, auth)
			if err != nil || status != 503 {
				return fmt.Errorf("unhealthy: %d %s %v", status, body, err)
			}
			_, err = reg.DiscoverService(ctx, connect.NewRequest(&cpv1.DiscoverServiceRequest{ServiceType: "cache"}))
			if err := wantCode(err, connect.CodeNotFound); err != nil {
				return err
			}
			if err := reportHealth(ctx, host, ids["cache"], cpv1.HealthState_HEALTH_STATE_DEGRADED); err != nil {
				return err
			}
			status, body, err = post(url, auth)
			if err != nil || status != 200 {
				return fmt.Errorf("degraded: %d %s %v", status, body, err)
			}
			return reportHealth(ctx, host, ids["cache"], cpv1.HealthState_HEALTH_STATE_HEALTHY)
		})
	}
	check("Go host as the original: the advertised broker endpoint (host/broker) answers 404", func() error {
		ctx, cancel := ctxT()
		defer cancel()
		b := cpv1connect.NewCapabilityBrokerClient(http.DefaultClient, host+"/broker")
		_, err := b.RequestCapability(ctx, connect.NewRequest(&cpv1.RequestCapabilityRequest{CapabilityType: "secrets"}))
		return wantCode(err, connect.CodeUnimplemented)
	})
	check("Go host as the original: RequestCapability needs no identity; unknown type not_found", func() error {
		ctx, cancel := ctxT()
		defer cancel()
		b := cpv1connect.NewCapabilityBrokerClient(http.DefaultClient, host)
		if _, err := b.RequestCapability(ctx, connect.NewRequest(&cpv1.RequestCapabilityRequest{CapabilityType: "secrets"})); err != nil {
			return err
		}
		_, err := b.RequestCapability(ctx, connect.NewRequest(&cpv1.RequestCapabilityRequest{CapabilityType: "nope"}))
		return wantCode(err, connect.CodeNotFound)
	})
	check("Go host with --broker-like-serve (Serve's mounts): RequestCapability unreachable (404) at both paths", func() error {
		h, err := start("host like Serve", nil, filepath.Join(peers, "cp-go-platform-host"), "--listen", "127.0.0.1:0", "--broker-like-serve")
		if err != nil {
			return err
		}
		defer h.stop()
		ctx, cancel := ctxT()
		defer cancel()
		for _, base := range []string{h.url, h.url + "/broker"} {
			b := cpv1connect.NewCapabilityBrokerClient(http.DefaultClient, base)
			_, err := b.RequestCapability(ctx, connect.NewRequest(&cpv1.RequestCapabilityRequest{CapabilityType: "secrets"}))
			if err := wantCode(err, connect.CodeUnimplemented); err != nil {
				return fmt.Errorf("%s: %w", base, err)
			}
		}
		return nil
	})
	check("Go host with --rate-limit 0.01,2: third handshake resource_exhausted, third routed call 429", func() error {
		h, err := start("rate-limited host", nil, filepath.Join(peers, "cp-go-platform-host"), "--listen", "127.0.0.1:0", "--rate-limit", "0.01,2")
		if err != nil {
			return err
		}
		defer h.stop()
		ctx, cancel := ctxT()
		defer cancel()
		hs := cpv1connect.NewHandshakeServiceClient(http.DefaultClient, h.url)
		var last error
		for i := 0; i < 3; i++ {
			req := connect.NewRequest(&cpv1.HandshakeRequest{CoreProtocolVersion: 1, AppProtocolVersion: 1,
				MagicCookieKey: "CONNECT_PLUGIN", MagicCookieValue: "d3f40b3c2e1a5f8b9c4d7e6a1b2c3d4e"})
			req.Header().Set("X-Plugin-Runtime-ID", "rl-0000")
			_, last = hs.Handshake(ctx, req)
			if i < 2 && last != nil {
				return fmt.Errorf("handshake %d: %v", i+1, last)
			}
		}
		if err := wantCode(last, connect.CodeResourceExhausted); err != nil {
			return err
		}
		statuses := []int{}
		for i := 0; i < 3; i++ {
			status, _, err := post(h.url+"/services/a/b/C", map[string]string{"X-Plugin-Runtime-ID": "rl-0001"})
			if err != nil {
				return err
			}
			statuses = append(statuses, status)
		}
		if fmt.Sprint(statuses) != "[401 401 429]" {
			return fmt.Errorf("statuses %v, want [401 401 429]", statuses)
		}
		return nil
	})
}
