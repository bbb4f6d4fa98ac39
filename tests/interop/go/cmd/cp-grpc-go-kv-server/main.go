// cp-grpc-go-kv-server: kv.v1.KVService on grpc-go (google.golang.org/grpc),
// the gRPC side of the protocol benchmark (tests/bench/run-bench-protocols.sh).
// The service is registered with a hand-written grpc.ServiceDesc over the
// message types that protoc-gen-go generates from examples/kv/kv.proto (the
// module has no protoc-gen-go-grpc); its behaviour is that of our examples/kv
// store: Put with an empty key is INVALID_ARGUMENT, Watch sends its headers
// once the watch is in place and then every Put and Delete under its prefix
// until the caller goes away. The store starts with "hello" → "world".
//
//	cp-grpc-go-kv-server [--listen HOST:PORT]
//
// Prints its URL (http://HOST:PORT) as the first stdout line; SIGINT/SIGTERM
// stop it (exit 0).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // grpc-encoding: gzip, as ours
	"google.golang.org/grpc/status"

	"cpinterop/gen/kvv1"
)

type store struct {
	mu       sync.RWMutex
	data     map[string][]byte
	watchers map[*watcher]struct{}
}

type watcher struct {
	prefix string
	ch     chan *kvv1.WatchEvent
}

func (s *store) get(_ context.Context, req *kvv1.GetRequest) (*kvv1.GetResponse, error) {
	s.mu.RLock()
	v, found := s.data[req.Key]
	s.mu.RUnlock()
	return &kvv1.GetResponse{Value: v, Found: found}, nil
}

func (s *store) put(_ context.Context, req *kvv1.PutRequest) (*kvv1.PutResponse, error) {
	if req.Key == "" {
		return nil, status.Error(codes.InvalidArgument, "key must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[req.Key] = req.Value
	s.notify(&kvv1.WatchEvent{Type: kvv1.EventType_EVENT_TYPE_PUT, Key: req.Key, Value: req.Value})
	return &kvv1.PutResponse{}, nil
}

func (s *store) delete(_ context.Context, req *kvv1.DeleteRequest) (*kvv1.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, found := s.data[req.Key]
	delete(s.data, req.Key)
	if found {
		s.notify(&kvv1.WatchEvent{Type: kvv1.EventType_EVENT_TYPE_DELETE, Key: req.Key})
	}
	return &kvv1.DeleteResponse{Found: found}, nil
}

// notify: called with s.mu held. A watcher whose buffer is full loses the
// event (the benchmark never watches).
func (s *store) notify(ev *kvv1.WatchEvent) {
	for w := range s.watchers {
		if strings.HasPrefix(ev.Key, w.prefix) {
			select {
			case w.ch <- ev:
			default:
			}
		}
	}
}

func (s *store) watch(req *kvv1.WatchRequest, stream grpc.ServerStream) error {
	w := &watcher{prefix: req.Prefix, ch: make(chan *kvv1.WatchEvent, 64)}
	s.mu.Lock()
	s.watchers[w] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case ev := <-w.ch:
			if err := stream.SendMsg(ev); err != nil {
				return err
			}
		}
	}
}

// unary adapts a typed handler to grpc.MethodDesc's signature (what
// protoc-gen-go-grpc generates).
func unary[Req any, Resp any](name string, call func(*store, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(Req)
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return call(srv.(*store), ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/kv.v1.KVService/" + name}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return call(srv.(*store), ctx, req.(*Req))
			})
		},
	}
}

// kvServiceHandler is the HandlerType of the service: *store implements it.
type kvServiceHandler interface{}

var kvServiceDesc = grpc.ServiceDesc{
	ServiceName: "kv.v1.KVService",
	HandlerType: (*kvServiceHandler)(nil),
	Methods: []grpc.MethodDesc{
		unary("Get", (*store).get),
		unary("Put", (*store).put),
		unary("Delete", (*store).delete),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := new(kvv1.WatchRequest)
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(*store).watch(req, stream)
		},
	}},
	Metadata: "kv.proto",
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	s := &store{data: map[string][]byte{"hello": []byte("world")}, watchers: map[*watcher]struct{}{}}
	srv := grpc.NewServer()
	srv.RegisterService(&kvServiceDesc, s)
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	fmt.Printf("http://%s\n", l.Addr())
	os.Stdout.Sync()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		srv.Stop()
	}()
	if err := srv.Serve(l); err != nil {
		log.Fatalf("serve: %v", err)
	}
}
