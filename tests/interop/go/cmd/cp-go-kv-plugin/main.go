// cp-go-kv-plugin: connect-plugin-go's KV example plugin (standalone mode:
// Serve with the KV store and a HealthServer), on cpgo.
//
//	cp-go-kv-plugin [--listen HOST:PORT]
//
// Listens on --listen, else 127.0.0.1:$PORT (the Go example listens on
// :$PORT), else 127.0.0.1:0, and prints its URL as the first stdout line
// (as connectplugin's plugins do; the Go example only logs). SIGINT/SIGTERM:
// graceful shutdown.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"

	"cpinterop/cpgo"
)

func main() {
	listen := flag.String("listen", "", "address to listen on")
	flag.Parse()
	addr := *listen
	if addr == "" {
		if port := os.Getenv("PORT"); port != "" {
			addr = "127.0.0.1:" + port
		} else {
			addr = "127.0.0.1:0"
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("listen %s: %v", addr, err)
	}
	fmt.Printf("http://%s\n", l.Addr())
	os.Stdout.Sync()
	err = cpgo.Serve(&cpgo.ServeConfig{
		KV:            cpgo.NewStore(),
		Listener:      l,
		HealthService: cpgo.NewHealthServer(),
	})
	if err != nil {
		log.Fatalf("serve: %v", err)
	}
}
