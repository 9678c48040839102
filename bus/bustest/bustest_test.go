package bustest_test

import (
	"strings"
	"testing"
	"time"

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
