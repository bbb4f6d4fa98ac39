package cpgo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// LaunchResult mirrors connect-plugin-go's LaunchResult, plus the process.
type LaunchResult struct {
	Endpoint string
	Cmd      *exec.Cmd
	Cleanup  func()
}

// ProcessLaunch mirrors connect-plugin-go's ProcessStrategy.Launch: start
// the binary with PORT and HOST_URL in the environment, poll the TCP port
// every 100 ms (5 s at most), then one GET / (any answer is fine).
func ProcessLaunch(ctx context.Context, binary string, port int, hostURL string) (LaunchResult, error) {
	if hostURL == "" {
		hostURL = "http://localhost:8080"
	}
	cmd := exec.CommandContext(ctx, binary)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), fmt.Sprintf("HOST_URL=%s", hostURL))
	cmd.Stdout = os.Stderr // the plugin's URL line is not ours to print
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return LaunchResult{}, fmt.Errorf("failed to start process %s: %w", binary, err)
	}
	endpoint := fmt.Sprintf("http://localhost:%d", port)
	if err := waitForPluginReady(endpoint, 5*time.Second); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return LaunchResult{}, fmt.Errorf("plugin didn't become ready: %w", err)
	}
	cleanup := func() {
		if cmd.Process != nil {
			cmd.Process.Signal(os.Interrupt)
			time.Sleep(100 * time.Millisecond)
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	return LaunchResult{Endpoint: endpoint, Cmd: cmd, Cleanup: cleanup}, nil
}

func waitForPluginReady(endpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("timeout waiting for plugin: %w", ctx.Err())
		case <-ticker.C:
			conn, err := net.DialTimeout("tcp", endpoint[7:], 100*time.Millisecond)
			if err == nil {
				conn.Close()
				return checkHTTPReady(endpoint)
			}
		}
	}
}

func checkHTTPReady(endpoint string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", endpoint+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
