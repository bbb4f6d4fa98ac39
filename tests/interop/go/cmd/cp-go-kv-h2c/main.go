// cp-go-kv-h2c: a connect-go KV server speaking HTTP/2 without TLS (h2c with
// prior knowledge, net/http's unencrypted HTTP/2), the Go side of the HTTP/2
// benchmark (tests/bench/run-bench-h2.sh). The store holds "hello" → "world".
//
//	cp-go-kv-h2c [--listen HOST:PORT]
//
// Prints its URL as the first stdout line; SIGINT/SIGTERM stop it (exit 0).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"connectrpc.com/connect"

	"cpinterop/cpgo"
	"cpinterop/gen/kvv1"
	"cpinterop/gen/kvv1/kvv1connect"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	store := cpgo.NewStore()
	if _, err := store.Put(context.Background(), connect.NewRequest(&kvv1.PutRequest{
		Key: "hello", Value: []byte("world"),
	})); err != nil {
		log.Fatalf("put: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(kvv1connect.NewKVServiceHandler(store))
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen %s: %v", *listen, err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: protocols}
	fmt.Printf("http://%s\n", l.Addr())
	os.Stdout.Sync()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		srv.Close()
	}()
	if err := srv.Serve(l); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
