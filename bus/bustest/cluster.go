package bustest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NewCluster starts n in-process nats-servers on loopback, joined by routes
// into one cluster named "hive", each with JetStream storing under its own
// t.TempDir(), and waits until every server routes to every other one and
// JetStream has a meta leader that all of them know. The servers are
// returned in order; a client of servers[i] is a client of the whole
// deployment, as with a nats-server cluster in production. t.Cleanup shuts
// them down.
func NewCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("bustest: a cluster of %d servers", n)
	}
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	routes := make([]*url.URL, n)
	for i, p := range ports {
		routes[i] = &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))}
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		o := server.Options{
			ServerName: fmt.Sprintf("s%d", i+1),
			JetStream:  true,
			Cluster:    server.ClusterOpts{Name: "hive", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
		}
		o.Host, o.Port, o.NoSigs = "127.0.0.1", -1, true
		o.StoreDir = t.TempDir()
		s, err := server.NewServer(&o)
		if err != nil {
			t.Fatalf("bustest: new server s%d: %v", i+1, err)
		}
		s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		servers[i] = s
	}
	for _, s := range servers {
		if !s.ReadyForConnections(readyTimeout) {
			t.Fatalf("bustest: server %s not ready for connections after %s", s.Name(), readyTimeout)
		}
	}
	// Routes and the JetStream meta group form by gossip: there is no event
	// to wait on, so the state is polled until the deadline.
	deadline := time.Now().Add(4 * readyTimeout)
	for !formed(servers) {
		if time.Now().After(deadline) {
			t.Fatalf("bustest: a cluster of %d servers did not form within %s", n, 4*readyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return servers
}

// formed reports whether every server routes to all others, every one is
// current with JetStream's meta group, and exactly one leads it.
func formed(servers []*server.Server) bool {
	leaders := 0
	for _, s := range servers {
		if s.NumRoutes() < len(servers)-1 || !s.JetStreamEnabled() || !s.JetStreamIsCurrent() {
			return false
		}
		if s.JetStreamIsLeader() {
			leaders++
		}
	}
	return leaders == 1
}

// freePort returns a loopback TCP port that was free a moment ago (the
// route listener needs a port known before the servers start).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bustest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
