// cp-go-platform-check: smoke test of the Go platform peers (suite
// interop-go). Starts a host and the Go logger, cache and app plugins on
// 127.0.0.1 port 0 (HOST_URL set: unmanaged), checks that app.v1.App/Process
// goes app → cache → logger through the host's router (called directly and
// through the router), the router's refusals, a capability grant
// (cp-go-capability-client), and a Go host's Platform adding and removing
// a managed Go plugin through PluginIdentity. Stops every process by its
// PID (SIGTERM) and checks it exits. One line per check ("ok   …" or
// "FAIL …: why"); exit status 1 if any failed.
//
//	cp-go-platform-check PEERS_DIR [HOST_CMD [ARGS…]]
//
// HOST_CMD (default PEERS_DIR/cp-go-platform-host) is started with
// ARGS… --listen 127.0.0.1:0 and must print its URL as its first stdout
// line. The checks of the original's own behaviour (quirks.go) and of its
// Platform run only with the default (Go) host.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/appv1"
	"cpinterop/gen/appv1/appv1connect"
	"cpinterop/gen/cpv1"
	"cpinterop/gen/cpv1/cpv1connect"
)

var failures int

func check(name string, f func() error) {
	if err := f(); err != nil {
		failures++
		fmt.Printf("FAIL %s: %v\n", name, err)
	} else {
		fmt.Printf("ok   %s\n", name)
	}
}

func ctxT() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

// proc is a started peer: its URL line, later stdout lines, exit.
type proc struct {
	name   string
	cmd    *exec.Cmd
	url    string
	lines  chan string
	exited chan error    // the exit status, once
	done   chan struct{} // closed at exit
}

var procs []*proc

func start(name string, env []string, path string, args ...string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(append(os.Environ(), "CONNECTPLUGIN_DISABLE_TLS_WARNING=1", "HOST_URL=", "PORT="), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 16), exited: make(chan error, 1), done: make(chan struct{})}
	procs = append(procs, p)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- cmd.Wait()
		close(p.done)
	}()
	line, err := p.next(15 * time.Second)
	if err != nil {
		return p, fmt.Errorf("%s: no URL line: %w", name, err)
	}
	if !strings.HasPrefix(line, "http://127.0.0.1:") {
		return p, fmt.Errorf("%s: URL line %q", name, line)
	}
	p.url = line
	return p, nil
}

func (p *proc) next(timeout time.Duration) (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", errors.New("process ended")
		}
		return l, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("nothing within %s", timeout)
	}
}

// stop: SIGTERM by PID, then wait (SIGKILL after 10 s). An exit status
// already read elsewhere counts as success.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		return err
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for 10 s", p.name, p.cmd.Process.Pid)
	}
}

// identity: a handshake with a self id, for the checker's own calls.
type identity struct{ id, token string }

func (i identity) set(h http.Header) {
	h.Set("X-Plugin-Runtime-ID", i.id)
	h.Set("Authorization", "Bearer "+i.token)
}

// waitAvailable follows WatchService until the type is AVAILABLE and
// returns its provider id.
func waitAvailable(host string, me identity, serviceType string) (string, error) {
	ctx, cancel := ctxT()
	defer cancel()
	reg := cpv1connect.NewServiceRegistryClient(http.DefaultClient, host)
	req := connect.NewRequest(&cpv1.WatchServiceRequest{ServiceType: serviceType})
	me.set(req.Header())
	stream, err := reg.WatchService(ctx, req)
	if err != nil {
		return "", err
	}
	defer stream.Close()
	for stream.Receive() {
		ev := stream.Msg()
		if ev.State != cpv1.ServiceState_SERVICE_STATE_UNAVAILABLE && ev.Endpoint != nil {
			return ev.Endpoint.ProviderId, nil
		}
	}
	return "", fmt.Errorf("watch of %q ended: %v", serviceType, stream.Err())
}

func post(url string, h map[string]string) (int, string, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"input":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func checkRoute(name string, app appv1connect.AppClient, me *identity, input string, ids map[string]string) {
	check(name, func() error {
		ctx, cancel := ctxT()
		defer cancel()
		req := connect.NewRequest(&appv1.ProcessRequest{Input: input})
		if me != nil {
			me.set(req.Header())
		}
		resp, err := app.Process(ctx, req)
		if err != nil {
			return err
		}
		want := []string{ids["app"] + " → " + ids["cache"], ids["cache"] + " → " + ids["logger"]}
		if resp.Msg.Result != "processed:"+input {
			return fmt.Errorf("result %q", resp.Msg.Result)
		}
		if strings.Join(resp.Msg.Route, "|") != strings.Join(want, "|") {
			return fmt.Errorf("route %q, want %q", resp.Msg.Route, want)
		}
		return nil
	})
}

func platformChecks(peers string) {
	// The original's managed example: SetRuntimeIdentity before any
	// Connect leaves it without a registry client: it never registers.
	check("Platform.AddPlugin of a managed Go logger as the original's (no HTTP client): add-failed", func() error {
		pl, err := start("managed logger (original)", nil, filepath.Join(peers, "cp-go-logger-plugin"))
		if err != nil {
			return err
		}
		defer pl.stop()
		h, err := start("platform host", nil, filepath.Join(peers, "cp-go-platform-host"), "--listen", "127.0.0.1:0",
			"--add", pl.url, "--identity-host-url", "self", "--health-timeout", "2s")
		if err != nil {
			return err
		}
		defer h.stop()
		line, err := h.next(20 * time.Second)
		if err != nil || !strings.HasPrefix(line, "add-failed: ") || !strings.Contains(line, "did not become healthy") {
			return fmt.Errorf("got %q %v", line, err)
		}
		return nil
	})
	check("Platform.ReplacePlugin as the original's: the new plugin never gets its identity, replace-failed", func() error {
		var pls [2]*proc
		for i := range pls {
			pl, err := start("managed logger", nil, filepath.Join(peers, "cp-go-logger-plugin"), "--prepare-managed")
			if err != nil {
				return err
			}
			defer pl.stop()
			pls[i] = pl
		}
		h, err := start("platform host", nil, filepath.Join(peers, "cp-go-platform-host"), "--listen", "127.0.0.1:0",
			"--add", pls[0].url, "--replace", pls[1].url, "--identity-host-url", "self", "--health-timeout", "2s")
		if err != nil {
			return err
		}
		defer h.stop()
		added, err := h.next(40 * time.Second)
		if err != nil || !strings.HasPrefix(added, "added logger-plugin-") {
			return fmt.Errorf("AddPlugin: %q %v", added, err)
		}
		line, err := h.next(40 * time.Second)
		if err != nil || line != "replace-failed: new version did not become healthy: timeout waiting for plugin to become healthy" {
			return fmt.Errorf("ReplacePlugin: %q %v", line, err)
		}
		return nil
	})
	check("Platform.AddPlugin then RemovePlugin of a managed Go logger (--prepare-managed): added, removed, plugin exits 0", func() error {
		pl, err := start("managed logger", nil, filepath.Join(peers, "cp-go-logger-plugin"), "--prepare-managed")
		if err != nil {
			return err
		}
		defer pl.stop()
		h, err := start("platform host", nil, filepath.Join(peers, "cp-go-platform-host"), "--listen", "127.0.0.1:0",
			"--add", pl.url, "--remove", "--identity-host-url", "self", "--remove-grace", "100ms")
		if err != nil {
			return err
		}
		defer h.stop()
		added, err := h.next(40 * time.Second)
		if err != nil || !regexp.MustCompile(`^added logger-plugin-[0-9a-f]{4}$`).MatchString(added) {
			return fmt.Errorf("AddPlugin: %q %v", added, err)
		}
		removed, err := h.next(40 * time.Second)
		if err != nil || removed != "removed "+strings.TrimPrefix(added, "added ") {
			return fmt.Errorf("RemovePlugin: %q %v", removed, err)
		}
		select {
		case err := <-pl.exited:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("the plugin did not exit after PluginControl.Shutdown")
		}
	})
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cp-go-platform-check PEERS_DIR [HOST_CMD [ARGS...]]")
		os.Exit(2)
	}
	peers := os.Args[1]
	hostCmd, hostArgs := filepath.Join(peers, "cp-go-platform-host"), []string{}
	if len(os.Args) > 2 {
		hostCmd, hostArgs = os.Args[2], os.Args[3:]
	}
	// os.Exit skips defers: kill what is left before each exit.
	cleanup := func() {
		for _, p := range procs {
			p.cmd.Process.Kill() // an error for those already gone
		}
	}
	host, err := start("host", nil, hostCmd, append(hostArgs, "--listen", "127.0.0.1:0")...)
	check("host started on 127.0.0.1 port 0, URL on its first line", func() error { return err })
	if err != nil {
		fmt.Println("1 failed")
		cleanup()
		os.Exit(1)
	}
	fmt.Printf("#    host %s\n", host.url)

	var me identity
	check("handshake with SelfID issues a runtime identity", func() error {
		c, _ := cpgo.NewClient(cpgo.ClientConfig{HostURL: host.url, SelfID: "platform-check", SelfVersion: "1.0.0"})
		ctx, cancel := ctxT()
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			return err
		}
		me = identity{c.RuntimeID(), c.RuntimeToken()}
		if me.id == "" || me.token == "" {
			return errors.New("no runtime id or token")
		}
		return nil
	})

	ids := map[string]string{}
	plugins := map[string]*proc{}
	for _, name := range []string{"logger", "cache", "app"} {
		check(fmt.Sprintf("%s plugin (HOST_URL, PORT=0) registers; WatchService sees it", name), func() error {
			p, err := start(name, []string{"HOST_URL=" + host.url, "PORT=0"}, filepath.Join(peers, "cp-go-"+name+"-plugin"))
			if err != nil {
				return err
			}
			plugins[name] = p
			ids[name], err = waitAvailable(host.url, me, name)
			if err == nil && !strings.HasPrefix(ids[name], name+"-plugin-") {
				err = fmt.Errorf("provider id %q", ids[name])
			}
			return err
		})
	}
	if len(ids) == 3 && ids["app"] != "" && ids["cache"] != "" && ids["logger"] != "" {
		direct := appv1connect.NewAppClient(http.DefaultClient, plugins["app"].url)
		checkRoute("App.Process called on the app plugin: route app → cache → logger through the router", direct, nil, "direct", ids)
		// The generated client appends /app.v1.App/Process; the router wants /Process.
		routed := appv1connect.NewAppClient(&stripService{http.DefaultClient}, host.url+"/services/app/"+ids["app"])
		checkRoute("App.Process through the host's router: same route", routed, &me, "routed", ids)
		checkRoute("App.Process through the router again: cache hit, same route", routed, &me, "routed", ids)
	}

	if ids["app"] != "" {
		url := host.url + "/services/app/" + ids["app"] + "/Process"
		for _, c := range []struct {
			name   string
			url    string
			header map[string]string
			status int
		}{
			{"no X-Plugin-Runtime-ID → 401", url, nil, 401},
			{"no bearer → 401", url, map[string]string{"X-Plugin-Runtime-ID": me.id}, 401},
			{"wrong token → 401", url, map[string]string{"X-Plugin-Runtime-ID": me.id, "Authorization": "Bearer " + strings.Repeat("A", 44)}, 401},
			{"another plugin's id with my token → 401", url, map[string]string{"X-Plugin-Runtime-ID": ids["app"], "Authorization": "Bearer " + me.token}, 401},
			{"unknown provider → 404", host.url + "/services/app/nobody-0000/Process", map[string]string{"X-Plugin-Runtime-ID": me.id, "Authorization": "Bearer " + me.token}, 404},
			{"path without method → 400", host.url + "/services/app/" + ids["app"], map[string]string{"X-Plugin-Runtime-ID": me.id, "Authorization": "Bearer " + me.token}, 400},
		} {
			check("router: "+c.name, func() error {
				status, body, err := post(c.url, c.header)
				if err != nil {
					return err
				}
				if status != c.status {
					return fmt.Errorf("status %d (%s)", status, body)
				}
				return nil
			})
		}
	}

	var grantURL string
	check("cp-go-capability-client: secrets grant from the broker, GetSecret through it", func() error {
		out, err := exec.Command(filepath.Join(peers, "cp-go-capability-client"), "--host", host.url).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		text := string(out)
		m := regexp.MustCompile(`(?m)^grant \S{24} (` + regexp.QuoteMeta(host.url) + `/capabilities/secrets/\S{24})$`).FindStringSubmatch(text)
		if m == nil || !strings.Contains(text, "\nsecret db-password=hunter2\n") {
			return fmt.Errorf("output:\n%s", text)
		}
		grantURL = m[1]
		return nil
	})
	if grantURL != "" {
		check("capability call with a wrong bearer token → 401", func() error {
			status, body, err := post(grantURL+"/secrets.v1.Secrets/GetSecret", map[string]string{"Authorization": "Bearer " + strings.Repeat("A", 44)})
			if err != nil {
				return err
			}
			if status != 401 {
				return fmt.Errorf("status %d (%s)", status, body)
			}
			return nil
		})
	}

	if len(os.Args) == 2 {
		quirkChecks(peers, host.url, me, ids)
		platformChecks(peers)
	}

	for _, name := range []string{"app", "cache", "logger"} {
		if p := plugins[name]; p != nil {
			check(fmt.Sprintf("%s plugin stops on SIGTERM (pid %d), exit 0", name, p.cmd.Process.Pid), p.stop)
		}
	}
	check(fmt.Sprintf("host stops on SIGTERM (pid %d), exit 0", host.cmd.Process.Pid), host.stop)
	fmt.Printf("%d failed\n", failures)
	cleanup()
	if failures > 0 {
		os.Exit(1)
	}
}

// stripService turns the generated client's …/app.v1.App/Process into the
// router's …/Process (the method alone, as connect-plugin-go's callers
// build it).
type stripService struct{ c *http.Client }

func (s *stripService) Do(r *http.Request) (*http.Response, error) {
	r.URL.Path = strings.Replace(r.URL.Path, "/app.v1.App/", "/", 1)
	return s.c.Do(r)
}
