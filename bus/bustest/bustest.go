package bustest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds the wait for a test server to accept clients.
const readyTimeout = 10 * time.Second

// NewServer starts an in-process nats-server on 127.0.0.1 and a random port,
// with JetStream storing under t.TempDir(), and waits until it accepts
// clients. The test fails at once if it does not start. t.Cleanup shuts the
// server down and waits for its goroutines to end.
func NewServer(t testing.TB) *server.Server {
	t.Helper()
	dir := t.TempDir() // removed after the server's cleanup below has run
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("bustest: new server: %v", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(readyTimeout) {
		t.Fatalf("bustest: server not ready for connections after %s", readyTimeout)
	}
	return s
}

// Connect opens a client connection to s over TCP, as a user's client
// would, and closes it at cleanup. The test fails at once if it cannot
// connect.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name("bustest "+t.Name()))
	if err != nil {
		t.Fatalf("bustest: connect %s: %v", s.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}
