package bustest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/cmmv-hive/resilience/bus/bustest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServerAndConnect(t *testing.T) {
	s := bustest.NewServer(t)
	if !s.JetStreamEnabled() {
		t.Fatal("JetStream is off, want on")
	}
	if got := s.Addr().String(); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("server listens on %s, want 127.0.0.1:<port>", got)
	}

	nc := bustest.Connect(t, s)
	sub, err := nc.SubscribeSync("ping")
	if err != nil {
		t.Fatalf("subscribe ping: %v", err)
	}
	if err := nc.Publish("ping", []byte("pong")); err != nil {
		t.Fatalf("publish ping: %v", err)
	}
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("next message: %v", err)
	}
	if got := string(m.Data); got != "pong" {
		t.Fatalf("got %q, want %q", got, "pong")
	}
}

// TestServersAreSeparate: two tests' servers never share a port.
func TestServersAreSeparate(t *testing.T) {
	a, b := bustest.NewServer(t), bustest.NewServer(t)
	if a.ClientURL() == b.ClientURL() {
		t.Fatalf("both servers at %s", a.ClientURL())
	}
}

// TestNewCluster: a message published through one server of the cluster
// reaches a subscriber on another, and JetStream answers on every server.
func TestNewCluster(t *testing.T) {
	servers := bustest.NewCluster(t, 3)
	sub := bustest.Connect(t, servers[2])
	pub := bustest.Connect(t, servers[0])
	s, err := sub.SubscribeSync("cluster.ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	// Interest crosses the route by gossip: published until it arrives.
	var got *nats.Msg
	for deadline := time.Now().Add(10 * time.Second); got == nil && time.Now().Before(deadline); {
		if err := pub.Publish("cluster.ping", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		got, _ = s.NextMsg(50 * time.Millisecond)
	}
	if got == nil || string(got.Data) != "hi" {
		t.Fatalf("no message across the cluster: %v", got)
	}
	for _, srv := range servers {
		js, err := jetstream.New(bustest.Connect(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = js.AccountInfo(ctx)
		cancel()
		if err != nil {
			t.Fatalf("JetStream on %s: %v", srv.Name(), err)
		}
	}
}
