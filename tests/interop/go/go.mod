// Test-only Go peer for tests/interop/go (suite interop-go): a Go host and a
// Go KV plugin speaking connect-plugin-go's wire protocol, and a grpc-go KV
// server and client (cmd/cp-grpc-go-kv-*). Never needed to build or use
// connectplugin. connectrpc.com/connect is the version connect-plugin-go
// requires; google.golang.org/grpc v1.85.0 raised protobuf (and go) to what
// it needs.
module cpinterop

go 1.26.0

require (
	connectrpc.com/connect v1.18.1
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
)
