// cp-grpc-go-kv-client: grpc-go (google.golang.org/grpc) as a client of our
// KV server over gRPC on h2c (prior knowledge), for the interop suite.
//
//	cp-grpc-go-kv-client --spawn PROGRAM [ARGS...]
//	cp-grpc-go-kv-client --addr HOST:PORT
//	cp-grpc-go-kv-client --addr HOST:PORT --get KEY=VALUE
//
// --spawn starts PROGRAM ARGS... (a kv.v1.KVService server printing its URL,
// http://HOST:PORT, as its first stdout line, e.g. examples/kv/kv-server
// --listen 127.0.0.1:0), runs the checks against it, then stops it with
// SIGTERM and checks that it exits 0. --addr runs them against a server
// already running (its store must not hold keys under "grpc/" or "w/").
// --get only checks that Get{KEY} answers found with VALUE (used by the
// benchmark before and after load).
//
// The checks: Put, Get (found and missing), an empty key refused with
// INVALID_ARGUMENT (a Connect error code mapped to its gRPC status), an
// unknown method and service UNIMPLEMENTED, a 300 KiB value both ways (HTTP/2
// flow control), a gzip-compressed request (grpc-encoding), response
// headers, 64 concurrent calls on the one connection, Delete, the Watch
// server stream (events for the prefix only, headers sent once the watch is
// in place, cancelled by the client), deadlines (a unary call with one, a
// Watch ended by its deadline with DEADLINE_EXCEEDED) and the server still
// answering after all of it. Every call has a deadline, so a silent server
// fails the check instead of hanging. Prints "ok - NAME" or "not ok - NAME:
// WHY" per check; exits 1 if any failed, 2 on bad usage or when the server
// could not be started or reached.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"cpinterop/gen/kvv1"
)

const service = "/kv.v1.KVService/"

// callTimeout bounds every call: a server that does not answer fails the
// check that waited for it.
const callTimeout = 10 * time.Second

var passed, failed int

func report(name string, err error) {
	if err != nil {
		failed++
		fmt.Printf("not ok - %s: %v\n", name, err)
	} else {
		passed++
		fmt.Printf("ok - %s\n", name)
	}
}

type kv struct{ cc *grpc.ClientConn }

func (k kv) call(method string, req, resp proto.Message, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return k.cc.Invoke(ctx, service+method, req, resp, opts...)
}

func (k kv) get(key string, opts ...grpc.CallOption) (*kvv1.GetResponse, error) {
	resp := new(kvv1.GetResponse)
	return resp, k.call("Get", &kvv1.GetRequest{Key: key}, resp, opts...)
}

func (k kv) put(key string, value []byte) error {
	return k.call("Put", &kvv1.PutRequest{Key: key, Value: value}, new(kvv1.PutResponse))
}

// expectValue: Get{key} answers found with value.
func (k kv) expectValue(key string, value []byte, opts ...grpc.CallOption) error {
	resp, err := k.get(key, opts...)
	if err != nil {
		return err
	}
	if !resp.Found || !bytes.Equal(resp.Value, value) {
		return fmt.Errorf("Get %q answered found=%v value=%q (%d bytes), expected found=true value=%.32q (%d bytes)",
			key, resp.Found, truncate(resp.Value), len(resp.Value), value, len(value))
	}
	return nil
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// expectCode: err is a gRPC status with code (and, if not empty, a message
// containing text).
func expectCode(err error, code codes.Code, text string) error {
	if err == nil {
		return fmt.Errorf("succeeded, expected %v", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("not a gRPC status: %v", err)
	}
	if st.Code() != code {
		return fmt.Errorf("status %v (%q), expected %v", st.Code(), st.Message(), code)
	}
	if text != "" && !strings.Contains(st.Message(), text) {
		return fmt.Errorf("status message %q does not contain %q", st.Message(), text)
	}
	return nil
}

func checkPutGet(k kv) {
	value := []byte{0x00, 0xff, 0x01, 0x80}
	report("Put grpc/a", k.put("grpc/a", value))
	report("Get grpc/a", k.expectValue("grpc/a", value))
	report("Get missing", func() error {
		resp, err := k.get("grpc/missing")
		if err != nil {
			return err
		}
		if resp.Found || len(resp.Value) != 0 {
			return fmt.Errorf("answered found=%v value=%q, expected found=false and no value", resp.Found, resp.Value)
		}
		return nil
	}())
}

func checkErrors(k kv) {
	report("Put with an empty key is INVALID_ARGUMENT",
		expectCode(k.put("", []byte("x")), codes.InvalidArgument, "key"))
	report("unknown method is UNIMPLEMENTED",
		expectCode(k.call("Nope", &kvv1.GetRequest{Key: "hello"}, new(kvv1.GetResponse)), codes.Unimplemented, ""))
	report("unknown service is UNIMPLEMENTED", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		err := k.cc.Invoke(ctx, "/kv.v1.NoSuchService/Get", &kvv1.GetRequest{Key: "hello"}, new(kvv1.GetResponse))
		return expectCode(err, codes.Unimplemented, "")
	}())
	report("the server answers after the errors", k.expectValue("grpc/a", []byte{0x00, 0xff, 0x01, 0x80}))
}

func checkLarge(k kv) {
	big := make([]byte, 300*1024)
	for i := range big {
		big[i] = byte(i*7 + i/251)
	}
	report("Put a 300 KiB value", k.put("grpc/big", big))
	report("Get a 300 KiB value", k.expectValue("grpc/big", big))
}

func checkGzipAndHeaders(k kv) {
	report("Get with a gzip-compressed request", k.expectValue("grpc/a", []byte{0x00, 0xff, 0x01, 0x80},
		grpc.UseCompressor(gzip.Name)))
	report("response headers", func() error {
		var header, trailer metadata.MD
		if _, err := k.get("grpc/a", grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
			return err
		}
		ct := header.Get("content-type")
		if len(ct) != 1 || !strings.HasPrefix(ct[0], "application/grpc") {
			return fmt.Errorf("content-type %q, expected application/grpc[+proto]", ct)
		}
		return nil
	}())
}

func checkConcurrent(k kv) {
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprintf("grpc/c%d", i)
			value := []byte(strings.Repeat(fmt.Sprint(i), i+1))
			if err := k.put(key, value); err != nil {
				errs <- fmt.Errorf("Put %s: %w", key, err)
				return
			}
			if err := k.expectValue(key, value); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	report(fmt.Sprintf("%d concurrent Put+Get on one connection", n), errors.Join(all...))
}

func checkDelete(k kv) {
	report("Delete grpc/a", func() error {
		resp := new(kvv1.DeleteResponse)
		if err := k.call("Delete", &kvv1.DeleteRequest{Key: "grpc/a"}, resp); err != nil {
			return err
		}
		if !resp.Found {
			return fmt.Errorf("answered found=false")
		}
		after, err := k.get("grpc/a")
		if err != nil {
			return err
		}
		if after.Found {
			return fmt.Errorf("Get after Delete answered found=true")
		}
		return nil
	}())
}

var watchDesc = &grpc.StreamDesc{StreamName: "Watch", ServerStreams: true}

// openWatch starts Watch{prefix} and waits for its response headers (sent
// once the watch is in place).
func openWatch(ctx context.Context, k kv, prefix string) (grpc.ClientStream, error) {
	stream, err := k.cc.NewStream(ctx, watchDesc, service+"Watch")
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(&kvv1.WatchRequest{Prefix: prefix}); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	if _, err := stream.Header(); err != nil {
		return nil, fmt.Errorf("waiting for the headers: %w", err)
	}
	return stream, nil
}

func checkWatch(k kv) {
	report("Watch streams the events under its prefix", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		stream, err := openWatch(ctx, k, "w/")
		if err != nil {
			return err
		}
		if err := k.put("w/1", []byte("one")); err != nil {
			return err
		}
		if err := k.put("other/1", []byte("not watched")); err != nil {
			return err
		}
		if err := k.call("Delete", &kvv1.DeleteRequest{Key: "w/1"}, new(kvv1.DeleteResponse)); err != nil {
			return err
		}
		want := []*kvv1.WatchEvent{
			{Type: kvv1.EventType_EVENT_TYPE_PUT, Key: "w/1", Value: []byte("one")},
			{Type: kvv1.EventType_EVENT_TYPE_DELETE, Key: "w/1"},
		}
		for i, w := range want {
			ev := new(kvv1.WatchEvent)
			if err := stream.RecvMsg(ev); err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
			if !proto.Equal(ev, w) {
				return fmt.Errorf("event %d is %v, expected %v", i, ev, w)
			}
		}
		// The client goes away: its stream ends CANCELED on its side; the
		// server must let go of the watch (checked below: it still answers).
		cancel()
		return expectCode(stream.RecvMsg(new(kvv1.WatchEvent)), codes.Canceled, "")
	}())
	report("the server answers after a cancelled Watch", k.expectValue("grpc/big", func() []byte {
		big := make([]byte, 300*1024)
		for i := range big {
			big[i] = byte(i*7 + i/251)
		}
		return big
	}()))
}

func checkDeadlines(k kv) {
	report("Get with a deadline (grpc-timeout)", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp := new(kvv1.GetResponse)
		if err := k.cc.Invoke(ctx, service+"Get", &kvv1.GetRequest{Key: "grpc/c3"}, resp); err != nil {
			return err
		}
		if !resp.Found || string(resp.Value) != "3333" {
			return fmt.Errorf("answered %v", resp)
		}
		return nil
	}())
	report("Watch ended by its deadline is DEADLINE_EXCEEDED", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		stream, err := openWatch(ctx, k, "quiet/")
		if err != nil {
			// On a loaded machine the deadline may pass before the
			// headers came: the call must still end DEADLINE_EXCEEDED.
			return expectCode(err, codes.DeadlineExceeded, "")
		}
		// Nothing is ever put under quiet/: the stream ends by the
		// deadline (the server's, from grpc-timeout, or the client's).
		// The outer bound keeps a broken stream from hanging the test.
		done := make(chan error, 1)
		go func() { done <- stream.RecvMsg(new(kvv1.WatchEvent)) }()
		select {
		case err := <-done:
			return expectCode(err, codes.DeadlineExceeded, "")
		case <-time.After(callTimeout):
			return fmt.Errorf("the stream did not end")
		}
	}())
	report("the server answers after the deadline", k.expectValue("grpc/c3", []byte("3333")))
}

func runChecks(addr string) {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cp-grpc-go-kv-client: %v\n", err)
		os.Exit(2)
	}
	defer cc.Close()
	k := kv{cc}
	checkPutGet(k)
	checkErrors(k)
	checkLarge(k)
	checkGzipAndHeaders(k)
	checkConcurrent(k)
	checkDelete(k)
	checkWatch(k)
	checkDeadlines(k)
}

// spawn starts the server and returns it with its host:port.
func spawn(argv []string) (*exec.Cmd, string, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		s, _ := r.ReadString('\n')
		line <- strings.TrimSpace(s)
		for { // keep draining the server's stdout
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	select {
	case s := <-line:
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, "", fmt.Errorf("%s printed %q, expected its http:// URL", argv[0], s)
		}
		return cmd, u.Host, nil
	case <-time.After(callTimeout):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", fmt.Errorf("%s printed no URL", argv[0])
	}
}

func stop(cmd *exec.Cmd) error {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("the server exited with %v", err)
		}
		return nil
	case <-time.After(callTimeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("the server did not exit on SIGTERM")
	}
}

func main() {
	addr := flag.String("addr", "", "HOST:PORT of a running server")
	spawnServer := flag.Bool("spawn", false, "start the server given as arguments")
	getOnly := flag.String("get", "", "only check that Get{KEY} answers VALUE (KEY=VALUE)")
	flag.Parse()
	if *spawnServer == (*addr != "") || (*spawnServer && flag.NArg() == 0) || (!*spawnServer && flag.NArg() != 0) {
		fmt.Fprintln(os.Stderr, "usage: cp-grpc-go-kv-client --spawn PROGRAM [ARGS...] | --addr HOST:PORT [--get KEY=VALUE]")
		os.Exit(2)
	}
	if *getOnly != "" {
		key, value, ok := strings.Cut(*getOnly, "=")
		if !ok || *addr == "" {
			fmt.Fprintln(os.Stderr, "cp-grpc-go-kv-client: --get KEY=VALUE needs --addr")
			os.Exit(2)
		}
		cc, err := grpc.NewClient("passthrough:///"+*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintf(os.Stderr, "cp-grpc-go-kv-client: %v\n", err)
			os.Exit(2)
		}
		defer cc.Close()
		if err := (kv{cc}).expectValue(key, []byte(value)); err != nil {
			fmt.Fprintf(os.Stderr, "cp-grpc-go-kv-client: %v\n", err)
			os.Exit(1)
		}
		return
	}
	var cmd *exec.Cmd
	target := *addr
	if *spawnServer {
		var err error
		cmd, target, err = spawn(flag.Args())
		if err != nil {
			fmt.Fprintf(os.Stderr, "cp-grpc-go-kv-client: %v\n", err)
			os.Exit(2)
		}
	}
	runChecks(target)
	if cmd != nil {
		report("the server exits 0 on SIGTERM", stop(cmd))
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
