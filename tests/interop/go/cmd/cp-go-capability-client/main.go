// cp-go-capability-client: requests a capability from a host's broker and
// calls it through the grant, as connect-plugin-go's
// examples/kv/impl-with-logger/store.go does (CapabilityBroker client,
// then the capability's generated client at the grant's endpoint_url with
// a transport adding "Authorization: Bearer <grant token>").
//
//	cp-go-capability-client --host URL [--broker URL|advertised]
//	    [--anonymous] [--type secrets|logger] [--secret NAME] [--message M]
//
// --host defaults to $HOST_URL. Unless --anonymous, it first handshakes
// as "capability-client" and sends X-Plugin-Runtime-ID and the runtime
// token with RequestCapability (the original's example sends neither: its
// host checks nothing). --broker: base URL of the CapabilityBroker client
// (default the host URL; "advertised" = the endpoint the handshake lists
// for the type, host + "/broker", which the original example uses and
// where the original's Serve answers 404). Then GetSecret(NAME) (type
// secrets, default "db-password") or Log(M) (type logger).
//
// Output, one line each: "advertised TYPE VERSION ENDPOINT" per host
// capability, "runtime-id ID", "grant ID ENDPOINT_URL", then
// "secret NAME=VALUE" or "logged". On error: "FAIL what: error" and exit 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
	"cpinterop/gen/loggerv1"
	"cpinterop/gen/loggerv1/loggerv1connect"
	"cpinterop/gen/secretsv1"
	"cpinterop/gen/secretsv1/secretsv1connect"
)

// bearerTokenTransport: impl-with-logger's.
type bearerTokenTransport struct {
	base  http.RoundTripper
	token string
}

func (t *bearerTokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(req)
}

func fail(what string, err error) {
	fmt.Printf("FAIL %s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	host := flag.String("host", os.Getenv("HOST_URL"), "host URL")
	brokerURL := flag.String("broker", "", `CapabilityBroker base URL, or "advertised"`)
	anonymous := flag.Bool("anonymous", false, "no handshake, no runtime identity headers")
	typ := flag.String("type", "secrets", "capability type")
	secret := flag.String("secret", "db-password", "secret to read")
	message := flag.String("message", "hello from cp-go-capability-client", "message to log")
	flag.Parse()
	if *host == "" {
		fail("usage", fmt.Errorf("--host or HOST_URL required"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var client *cpgo.Client
	var advertised string
	if !*anonymous || *brokerURL == "advertised" {
		c, _ := cpgo.NewClient(cpgo.ClientConfig{HostURL: *host, SelfID: "capability-client", SelfVersion: "1.0.0"})
		if err := c.Connect(ctx); err != nil {
			fail("handshake", err)
		}
		for _, cp := range c.HandshakeResponse().HostCapabilities {
			fmt.Printf("advertised %s %s %s\n", cp.Type, cp.Version, cp.Endpoint)
			if cp.Type == *typ {
				advertised = cp.Endpoint
			}
		}
		fmt.Printf("runtime-id %s\n", c.RuntimeID())
		client = c
	}
	base := *brokerURL
	switch base {
	case "":
		base = *host
	case "advertised":
		if advertised == "" {
			fail("advertised endpoint", fmt.Errorf("the host lists no %q capability", *typ))
		}
		base = advertised
	}
	broker := cpv1connect.NewCapabilityBrokerClient(&http.Client{}, base)
	req := connect.NewRequest(&cpv1.RequestCapabilityRequest{CapabilityType: *typ, MinVersion: "1.0.0",
		Reason: "cp-go-capability-client needs " + *typ})
	if !*anonymous {
		req.Header().Set("X-Plugin-Runtime-ID", client.RuntimeID())
		req.Header().Set("Authorization", "Bearer "+client.RuntimeToken())
	}
	resp, err := broker.RequestCapability(ctx, req)
	if err != nil {
		fail("RequestCapability", err)
	}
	grant := resp.Msg.Grant
	fmt.Printf("grant %s %s\n", grant.GrantId, grant.EndpointUrl)

	hc := &http.Client{Transport: &bearerTokenTransport{base: http.DefaultTransport, token: grant.BearerToken}}
	switch *typ {
	case "secrets":
		s := secretsv1connect.NewSecretsClient(hc, grant.EndpointUrl)
		r, err := s.GetSecret(ctx, connect.NewRequest(&secretsv1.GetSecretRequest{Name: *secret}))
		if err != nil {
			fail("GetSecret", err)
		}
		fmt.Printf("secret %s=%s\n", *secret, r.Msg.Value)
	case "logger":
		l := loggerv1connect.NewLoggerClient(hc, grant.EndpointUrl)
		if _, err := l.Log(ctx, connect.NewRequest(&loggerv1.LogRequest{Level: "info", Message: *message,
			Fields: map[string]string{"from": "cp-go-capability-client"}})); err != nil {
			fail("Log", err)
		}
		fmt.Println("logged")
	default:
		fmt.Println("no call for this type")
	}
}
