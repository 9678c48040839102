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
	return NewServerWith(t, server.Options{JetStream: true})
}

// NewServerWith is NewServer with the test's own options (authorisation,
// TLS, operator mode ...). Host, Port and NoSigs are always set to loopback,
// a random port and true; with JetStream on and no StoreDir, the store goes
// under t.TempDir().
func NewServerWith(t testing.TB, o server.Options) *server.Server {
	t.Helper()
	o.Host, o.Port, o.NoSigs = "127.0.0.1", -1, true
	if o.JetStream && o.StoreDir == "" {
		o.StoreDir = t.TempDir() // removed after the server's cleanup below has run
	}
	s, err := server.NewServer(&o)
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
