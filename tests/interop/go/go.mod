// Test-only Go peer for tests/interop/go (suite interop-go): a Go host and a
// Go KV plugin speaking connect-plugin-go's wire protocol. Never needed to
// build or use connectplugin. Versions pinned to those connect-plugin-go
// itself requires.
module cpinterop

go 1.24

require (
	connectrpc.com/connect v1.18.1
	google.golang.org/protobuf v1.36.9
)
