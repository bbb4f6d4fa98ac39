// cp-go-host: a Go host in the manner of connect-plugin-go's KV host
// example, checking a connectplugin KV plugin executable. One line per
// check ("ok   <check>" or "FAIL <check>: <why>"); exit status 1 if any
// check failed.
//
//	cp-go-host spawn   KV_PLUGIN   start it with --listen 127.0.0.1:0, read its URL line
//	cp-go-host process KV_PLUGIN   launch it like connect-plugin-go's ProcessStrategy
//	                               (PORT and HOST_URL in the environment, TCP polling)
//	cp-go-host url     URL         check a running plugin (no shutdown check)
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
	"cpinterop/gen/healthv1"
	"cpinterop/gen/healthv1/healthv1connect"
	"cpinterop/gen/kvv1"
	"cpinterop/gen/kvv1/kvv1connect"
)

var failures int

// xfail: the keys in $CP_GO_HOST_XFAIL (comma-separated) name checks
// known to fail against our side; they print "xfail" instead of failing,
// and "XPASS" (counted as a failure: remove the key) once they pass.
var xfail = map[string]bool{}

func init() {
	for _, k := range strings.Split(os.Getenv("CP_GO_HOST_XFAIL"), ",") {
		if k != "" {
			xfail[k] = true
		}
	}
}

func check(name string, f func() error) { checkKey("", name, f) }

func checkKey(key, name string, f func() error) {
	err := f()
	switch {
	case err != nil && xfail[key]:
		fmt.Printf("xfail %s: %v [known: %s]\n", name, err, key)
	case err != nil:
		failures++
		fmt.Printf("FAIL %s: %v\n", name, err)
	case xfail[key]:
		failures++
		fmt.Printf("XPASS %s: remove %q from CP_GO_HOST_XFAIL\n", name, key)
	default:
		fmt.Printf("ok   %s\n", name)
	}
}

func ctxT() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

var runtimeIDPattern = regexp.MustCompile(`^go-interop-host-[0-9a-f]{4}$`)

func checkToken(tok string) error {
	if len(tok) != 44 {
		return fmt.Errorf("runtime token %q: %d chars, want 44", tok, len(tok))
	}
	raw, err := base64.URLEncoding.DecodeString(tok)
	if err != nil || len(raw) != 32 {
		return fmt.Errorf("runtime token %q is not 32 bytes of padded base64url", tok)
	}
	return nil
}

func wantCode(err error, code connect.Code) error {
	if err == nil {
		return fmt.Errorf("succeeded, want %v", code)
	}
	if connect.CodeOf(err) != code {
		return fmt.Errorf("got %v (%v), want %v", connect.CodeOf(err), err, code)
	}
	return nil
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// healthWatch is a HealthService.Watch stream read by a goroutine.
type healthWatch struct {
	statuses chan healthv1.ServingStatus
	done     chan error
	cancel   context.CancelFunc
}

func startHealthWatch(h healthv1connect.HealthServiceClient, service string) (*healthWatch, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := h.Watch(ctx, connect.NewRequest(&healthv1.HealthCheckRequest{Service: service}))
	if err != nil {
		cancel()
		return nil, err
	}
	w := &healthWatch{make(chan healthv1.ServingStatus, 16), make(chan error, 1), cancel}
	go func() {
		for stream.Receive() {
			w.statuses <- stream.Msg().Status
		}
		close(w.statuses)
		w.done <- stream.Err()
	}()
	return w, nil
}

func (w *healthWatch) next() (healthv1.ServingStatus, error) {
	select {
	case s, ok := <-w.statuses:
		if !ok {
			return 0, fmt.Errorf("stream ended: %v", <-w.done)
		}
		return s, nil
	case <-time.After(10 * time.Second):
		return 0, errors.New("no status within 10 s")
	}
}

func runChecks(endpoint string) *healthWatch {
	ctx := context.Background()
	fmt.Printf("#    endpoint %s\n", endpoint)

	// Handshake with SelfID, the way a connect-plugin-go Client does it.
	var client *cpgo.Client
	check("handshake with SelfID issues runtime id and token", func() error {
		var err error
		client, err = cpgo.NewClient(cpgo.ClientConfig{Endpoint: endpoint, Plugins: []string{"kv"},
			SelfID: "Go-Interop-Host", SelfVersion: "1.0.0"})
		if err != nil {
			return err
		}
		c, cancel := ctxT()
		defer cancel()
		if err := client.Connect(c); err != nil {
			return err
		}
		if !runtimeIDPattern.MatchString(client.RuntimeID()) {
			return fmt.Errorf("runtime id %q does not match %s", client.RuntimeID(), runtimeIDPattern)
		}
		return checkToken(client.RuntimeToken())
	})
	if client == nil || client.HandshakeResponse() == nil {
		fmt.Println("FAIL no handshake: stopping")
		failures++
		return nil
	}
	check("second handshake issues a fresh runtime id and token", func() error {
		c2, _ := cpgo.NewClient(cpgo.ClientConfig{Endpoint: endpoint, Plugins: []string{"kv"}, SelfID: "Go-Interop-Host"})
		c, cancel := ctxT()
		defer cancel()
		if err := c2.Connect(c); err != nil {
			return err
		}
		if c2.RuntimeID() == client.RuntimeID() || c2.RuntimeToken() == client.RuntimeToken() {
			return fmt.Errorf("same identity issued twice: %s", c2.RuntimeID())
		}
		return checkToken(c2.RuntimeToken())
	})
	check("handshake without SelfID: no runtime identity", func() error {
		c2, _ := cpgo.NewClient(cpgo.ClientConfig{Endpoint: endpoint, Plugins: []string{"kv"}})
		c, cancel := ctxT()
		defer cancel()
		if err := c2.Connect(c); err != nil {
			return err
		}
		if c2.RuntimeID() != "" || c2.RuntimeToken() != "" {
			return fmt.Errorf("got runtime id %q token %q", c2.RuntimeID(), c2.RuntimeToken())
		}
		return nil
	})
	check("plugin list: kv 1.0.0 at kv.v1.KVService, provides kv; server_version", func() error {
		r := client.HandshakeResponse()
		if r.CoreProtocolVersion != 1 || r.AppProtocolVersion != 1 {
			return fmt.Errorf("versions %d/%d", r.CoreProtocolVersion, r.AppProtocolVersion)
		}
		if len(r.Plugins) != 1 {
			return fmt.Errorf("%d plugins: %v", len(r.Plugins), r.Plugins)
		}
		p := r.Plugins[0]
		if p.Name != "kv" || p.Version != "1.0.0" ||
			(p.ServicePath != "kv.v1.KVService" && p.ServicePath != "/kv.v1.KVService/") {
			return fmt.Errorf("plugin %v", p)
		}
		if len(p.Provides) != 1 || p.Provides[0].Type != "kv" || p.Provides[0].Version != "1.0.0" {
			return fmt.Errorf("provides %v", p.Provides)
		}
		if r.ServerMetadata["server_version"] == "" {
			return fmt.Errorf("server_metadata %v has no server_version", r.ServerMetadata)
		}
		return nil
	})
	check("missing plugin: handshake succeeds, Go client fails naming it", func() error {
		hs := cpv1connect.NewHandshakeServiceClient(http.DefaultClient, endpoint)
		c, cancel := ctxT()
		defer cancel()
		resp, err := hs.Handshake(c, connect.NewRequest(&cpv1.HandshakeRequest{CoreProtocolVersion: 1,
			AppProtocolVersion: 1, MagicCookieKey: cpgo.DefaultMagicCookieKey,
			MagicCookieValue: cpgo.DefaultMagicCookieValue, RequestedPlugins: []string{"nope"}}))
		if err != nil {
			return err
		}
		if len(resp.Msg.Plugins) != 0 {
			return fmt.Errorf("plugins %v", resp.Msg.Plugins)
		}
		c2, _ := cpgo.NewClient(cpgo.ClientConfig{Endpoint: endpoint, Plugins: []string{"kv", "nope"}})
		err = c2.Connect(c)
		if err == nil || !strings.Contains(err.Error(), `requested plugin "nope" not available`) {
			return fmt.Errorf("Connect: %v", err)
		}
		return nil
	})

	raw, err := client.Dispense("kv")
	if err != nil {
		fmt.Printf("FAIL dispense kv: %v\n", err)
		failures++
		return nil
	}
	kv := raw.(kvv1connect.KVServiceClient)

	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i * 7)
	}
	payloads := []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"1 byte", []byte{0x00}},
		{"1 MiB", mib},
		{"non-UTF-8", []byte{0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80, 'k', 'v'}},
	}
	for _, p := range payloads {
		check(fmt.Sprintf("Put/Get/Delete %s value (%d bytes)", p.name, len(p.value)), func() error {
			key := "bin/" + p.name
			c, cancel := ctxT()
			defer cancel()
			if _, err := kv.Put(c, connect.NewRequest(&kvv1.PutRequest{Key: key, Value: p.value})); err != nil {
				return fmt.Errorf("Put: %w", err)
			}
			g, err := kv.Get(c, connect.NewRequest(&kvv1.GetRequest{Key: key}))
			if err != nil {
				return fmt.Errorf("Get: %w", err)
			}
			if !g.Msg.Found || !bytes.Equal(g.Msg.Value, p.value) {
				return fmt.Errorf("Get: found=%v, %d bytes back", g.Msg.Found, len(g.Msg.Value))
			}
			d, err := kv.Delete(c, connect.NewRequest(&kvv1.DeleteRequest{Key: key}))
			if err != nil || !d.Msg.Found {
				return fmt.Errorf("Delete: %v found=%v", err, d != nil && d.Msg.Found)
			}
			g, err = kv.Get(c, connect.NewRequest(&kvv1.GetRequest{Key: key}))
			if err != nil || g.Msg.Found {
				return fmt.Errorf("Get after Delete: %v", err)
			}
			return nil
		})
	}
	check("Get/Delete of a missing key: found=false; Put with empty key: invalid_argument", func() error {
		c, cancel := ctxT()
		defer cancel()
		g, err := kv.Get(c, connect.NewRequest(&kvv1.GetRequest{Key: "missing"}))
		if err != nil || g.Msg.Found || len(g.Msg.Value) != 0 {
			return fmt.Errorf("Get: %v %v", err, g)
		}
		d, err := kv.Delete(c, connect.NewRequest(&kvv1.DeleteRequest{Key: "missing"}))
		if err != nil || d.Msg.Found {
			return fmt.Errorf("Delete: %v %v", err, d)
		}
		_, err = kv.Put(c, connect.NewRequest(&kvv1.PutRequest{Key: "", Value: []byte("x")}))
		return wantCode(err, connect.CodeInvalidArgument)
	})
	check("Watch receives the events of Puts/Deletes made meanwhile (prefix filtered)", func() error {
		c, cancel := ctxT()
		defer cancel()
		stream, err := kv.Watch(c, connect.NewRequest(&kvv1.WatchRequest{Prefix: "w/"}))
		if err != nil {
			return err
		}
		defer stream.Close()
		stream.ResponseHeader() // blocks until the watch is in place
		events := make(chan *kvv1.WatchEvent, 16)
		go func() {
			for stream.Receive() {
				events <- stream.Msg()
			}
			close(events)
		}()
		nonUTF8 := []byte{0xff, 0x00, 0xfe}
		for _, op := range []struct {
			key   string
			value []byte
		}{{"w/a", []byte("1")}, {"other", []byte("2")}, {"w/b", nonUTF8}} {
			if _, err := kv.Put(c, connect.NewRequest(&kvv1.PutRequest{Key: op.key, Value: op.value})); err != nil {
				return err
			}
		}
		if _, err := kv.Delete(c, connect.NewRequest(&kvv1.DeleteRequest{Key: "w/a"})); err != nil {
			return err
		}
		want := []*kvv1.WatchEvent{
			{Type: kvv1.EventType_EVENT_TYPE_PUT, Key: "w/a", Value: []byte("1")},
			{Type: kvv1.EventType_EVENT_TYPE_PUT, Key: "w/b", Value: nonUTF8},
			{Type: kvv1.EventType_EVENT_TYPE_DELETE, Key: "w/a"},
		}
		for i := 0; i < len(want); {
			select {
			case ev, ok := <-events:
				if !ok {
					return fmt.Errorf("stream ended after %d events: %v", i, stream.Err())
				}
				if ev.Type == kvv1.EventType_EVENT_TYPE_UNSPECIFIED && ev.Key == "_watch_started" {
					continue // connect-plugin-go's store announces itself
				}
				if ev.Type != want[i].Type || ev.Key != want[i].Key || !bytes.Equal(ev.Value, want[i].Value) {
					return fmt.Errorf("event %d: got %v, want %v", i, ev, want[i])
				}
				i++
			case <-c.Done():
				return fmt.Errorf("only %d of %d events", i, len(want))
			}
		}
		return nil
	})

	health := healthv1connect.NewHealthServiceClient(http.DefaultClient, endpoint)
	check(`HealthService.Check("") SERVING, unknown name not_found`, func() error {
		c, cancel := ctxT()
		defer cancel()
		r, err := health.Check(c, connect.NewRequest(&healthv1.HealthCheckRequest{}))
		if err != nil || r.Msg.Status != healthv1.ServingStatus_SERVING_STATUS_SERVING {
			return fmt.Errorf("Check(\"\"): %v %v", err, r)
		}
		_, err = health.Check(c, connect.NewRequest(&healthv1.HealthCheckRequest{Service: "no.such.Service"}))
		return wantCode(err, connect.CodeNotFound)
	})
	checkKey("health-plugin-name", `HealthService.Check("kv") SERVING (the plugin name, as the Go KV host asks)`, func() error {
		c, cancel := ctxT()
		defer cancel()
		r, err := health.Check(c, connect.NewRequest(&healthv1.HealthCheckRequest{Service: "kv"}))
		if err != nil || r.Msg.Status != healthv1.ServingStatus_SERVING_STATUS_SERVING {
			return fmt.Errorf("%v %v", err, r)
		}
		return nil
	})
	check(`HealthService.Watch(unknown) sends SERVICE_UNKNOWN`, func() error {
		w, err := startHealthWatch(health, "no.such.Service")
		if err != nil {
			return err
		}
		defer w.cancel()
		s, err := w.next()
		if err != nil || s != healthv1.ServingStatus_SERVING_STATUS_SERVICE_UNKNOWN {
			return fmt.Errorf("%v %v", s, err)
		}
		return nil
	})
	var watch *healthWatch
	check(`HealthService.Watch("") sends SERVING at once`, func() error {
		var err error
		watch, err = startHealthWatch(health, "")
		if err != nil {
			return err
		}
		s, err := watch.next()
		if err != nil || s != healthv1.ServingStatus_SERVING_STATUS_SERVING {
			return fmt.Errorf("%v %v", s, err)
		}
		return nil
	})
	check("/healthz 200 ok, /readyz 200 ready", func() error {
		code, body, err := httpGet(endpoint + "/healthz")
		if err != nil || code != 200 || body != "ok" {
			return fmt.Errorf("/healthz: %d %q %v", code, body, err)
		}
		code, body, err = httpGet(endpoint + "/readyz")
		if err != nil || code != 200 || body != "ready" {
			return fmt.Errorf("/readyz: %d %q %v", code, body, err)
		}
		return nil
	})
	bad := []struct {
		name string
		cfg  cpgo.ClientConfig
		code connect.Code
	}{
		{"wrong magic cookie value → invalid_argument", cpgo.ClientConfig{MagicCookieKey: cpgo.DefaultMagicCookieKey, MagicCookieValue: "wrong"}, connect.CodeInvalidArgument},
		{"wrong magic cookie key → invalid_argument", cpgo.ClientConfig{MagicCookieKey: "OTHER", MagicCookieValue: cpgo.DefaultMagicCookieValue}, connect.CodeInvalidArgument},
		{"wrong app protocol version → failed_precondition", cpgo.ClientConfig{ProtocolVersion: 2}, connect.CodeFailedPrecondition},
		{"wrong core protocol version → invalid_argument", cpgo.ClientConfig{CoreProtocolVersion: 2}, connect.CodeInvalidArgument},
		{"wrong cookie and version: cookie checked first → invalid_argument", cpgo.ClientConfig{MagicCookieKey: "OTHER", MagicCookieValue: "x", ProtocolVersion: 2}, connect.CodeInvalidArgument},
		{"invalid SelfID → invalid_argument", cpgo.ClientConfig{SelfID: "9-starts-with-digit"}, connect.CodeInvalidArgument},
	}
	for _, b := range bad {
		check("handshake with "+b.name, func() error {
			cfg := b.cfg
			cfg.Endpoint = endpoint
			cfg.Plugins = []string{"kv"}
			cl, _ := cpgo.NewClient(cfg)
			c, cancel := ctxT()
			defer cancel()
			err := cl.Connect(c)
			if err := wantCode(err, b.code); err != nil {
				return err
			}
			var ce *connect.Error
			if !errors.As(err, &ce) || ce.Message() == "" {
				return fmt.Errorf("no error message: %v", err)
			}
			return nil
		})
	}
	client.Close()
	_ = ctx
	return watch
}

// shutdownChecks: the health stream turns NOT_SERVING and ends, the
// process exits 0, the port is closed.
func shutdownChecks(name string, endpoint string, watch *healthWatch, cmd *exec.Cmd, exited <-chan error, trigger func() error) {
	check(name, func() error {
		if err := trigger(); err != nil {
			return err
		}
		if watch != nil {
			for {
				s, err := watch.next()
				if err != nil {
					return fmt.Errorf("health watch: no NOT_SERVING before the end: %v", err)
				}
				if s == healthv1.ServingStatus_SERVING_STATUS_NOT_SERVING {
					break
				}
			}
		}
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("plugin exit: %v", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			return errors.New("plugin did not exit within 15 s")
		}
		if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(endpoint, "http://"), time.Second); err == nil {
			conn.Close()
			return errors.New("port still open after exit")
		}
		return nil
	})
}

// spawn starts KV_PLUGIN --listen 127.0.0.1:0 ARGS… and reads its URL line.
func spawn(plugin string, args ...string) (*exec.Cmd, string, <-chan error) {
	cmd := exec.Command(plugin, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = os.Stderr
	// No secret from the environment of whoever runs the test.
	cmd.Env = append(os.Environ(), "CONNECTPLUGIN_CONTROL_SECRET=")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fmt.Printf("FAIL start %s: %v\n", plugin, err)
		os.Exit(1)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		fmt.Printf("FAIL no URL line from the plugin: %v\n", err)
		os.Exit(1)
	}
	go io.Copy(io.Discard, out)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, strings.TrimSpace(line), exited
}

// shutdownRefused: PluginControl.Shutdown without credentials is refused
// with unauthenticated, and the plugin serves on; then SIGINT stops it.
func shutdownRefused(endpoint string, cmd *exec.Cmd, exited <-chan error) {
	check("without --insecure-control or a secret, Shutdown without credentials is unauthenticated and the plugin serves on", func() error {
		ctl := cpv1connect.NewPluginControlClient(http.DefaultClient, endpoint)
		c, cancel := ctxT()
		defer cancel()
		_, err := ctl.Shutdown(c, connect.NewRequest(&cpv1.ShutdownRequest{GracePeriodSeconds: 5, Reason: "interop test"}))
		if err := wantCode(err, connect.CodeUnauthenticated); err != nil {
			return err
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the plugin exited (%v)", err)
		case <-time.After(300 * time.Millisecond):
		}
		if status, _, err := httpGet(endpoint + "/readyz"); err != nil || status != 200 {
			return fmt.Errorf("/readyz after the refused Shutdown: %d %v", status, err)
		}
		return nil
	})
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: cp-go-host spawn|process KV_PLUGIN | url URL")
		os.Exit(2)
	}
	mode, arg := os.Args[1], os.Args[2]
	switch mode {
	case "url":
		if w := runChecks(arg); w != nil {
			w.cancel()
		}
	case "spawn":
		// Started by hand, without a control secret: a host like
		// connect-plugin-go's, which sends none, cannot stop it.
		cmd, endpoint, exited := spawn(arg)
		shutdownRefused(endpoint, cmd, exited)

		// Hence the explicit opt-in for such hosts.
		cmd, endpoint, exited = spawn(arg, "--insecure-control")
		check("plugin started by the test prints its URL first ("+endpoint+")", func() error {
			if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
				return fmt.Errorf("URL line %q", endpoint)
			}
			return nil
		})
		watch := runChecks(endpoint)
		shutdownChecks("clean shutdown by PluginControl.Shutdown: health NOT_SERVING, exit 0, port closed",
			endpoint, watch, cmd, exited, func() error {
				ctl := cpv1connect.NewPluginControlClient(http.DefaultClient, endpoint)
				c, cancel := ctxT()
				defer cancel()
				r, err := ctl.Shutdown(c, connect.NewRequest(&cpv1.ShutdownRequest{GracePeriodSeconds: 5, Reason: "interop test"}))
				if err != nil {
					return err
				}
				if !r.Msg.Acknowledged {
					return errors.New("shutdown not acknowledged")
				}
				return nil
			})
	case "process":
		port := freePort()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// A HOST_URL where no registry answers: the plugin serves standalone.
		res, err := cpgo.ProcessLaunch(ctx, arg, port, fmt.Sprintf("http://127.0.0.1:%d", freePort()))
		check(fmt.Sprintf("ProcessStrategy launch (PORT=%d, HOST_URL, TCP polling)", port), func() error { return err })
		if err != nil {
			break
		}
		exited := make(chan error, 1)
		go func() { exited <- res.Cmd.Wait() }()
		watch := runChecks(res.Endpoint)
		// ProcessStrategy's cleanup sends os.Interrupt first.
		shutdownChecks("clean shutdown on SIGINT (ProcessStrategy cleanup): health NOT_SERVING, exit 0, port closed",
			res.Endpoint, watch, res.Cmd, exited, func() error { return res.Cmd.Process.Signal(syscall.SIGINT) })
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		os.Exit(2)
	}
	fmt.Printf("%d failed\n", failures)
	if failures > 0 {
		os.Exit(1)
	}
}
