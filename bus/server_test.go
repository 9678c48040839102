package bus_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
)

// startEmbedded starts an embedded server and shuts it down at cleanup.
func startEmbedded(t *testing.T, o bus.EmbeddedOptions) *server.Server {
	t.Helper()
	s, err := bus.StartEmbedded(o)
	require.NoError(t, err)
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func TestStartEmbedded(t *testing.T) {
	logs := newLogSink()
	s := startEmbedded(t, bus.EmbeddedOptions{Port: -1, StoreDir: t.TempDir(), ServerName: "hive-test", Logger: logs.logger()})

	assert.True(t, s.JetStreamEnabled(), "JetStream is on")
	assert.Equal(t, "hive-test", s.Name())
	host, _, err := net.SplitHostPort(s.Addr().String())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host, "listens on loopback by default")

	nc, err := bus.ConnectInProcess(s, bus.ConnectOptions{Name: "test"})
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	require.NoError(t, err, "JetStream answers")

	// The server's notices reach zerolog at debug: its banner is not news.
	logs.waitFor(t, `"level":"debug"`, `"component":"nats-server"`, "Starting nats-server")
	logs.waitFor(t, `"level":"debug"`, "Server is ready")
}

func TestStartEmbeddedBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	s, err := bus.StartEmbedded(bus.EmbeddedOptions{Port: port, StoreDir: t.TempDir()})
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
	require.ErrorIs(t, err, bus.ErrPortInUse)
	for _, want := range []string{l.Addr().String(), "--nats-listen", "--nats-url"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestStartEmbeddedNeedsStoreDir(t *testing.T) {
	_, err := bus.StartEmbedded(bus.EmbeddedOptions{Port: -1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "StoreDir")
}

func TestStartEmbeddedFatalStartError(t *testing.T) {
	// A store "directory" that is a file stops JetStream from starting. The
	// server reports that through its logger's Fatalf, which must neither
	// exit the process nor leave StartEmbedded waiting out its bound.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	logs := newLogSink()

	s, err := bus.StartEmbedded(bus.EmbeddedOptions{Port: -1, StoreDir: file, Logger: logs.logger()})
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "JetStream")
	logs.waitFor(t, `"level":"error"`, `"fatal":true`)
}
