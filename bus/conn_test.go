package bus_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no credentials", "nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"user and password", "nats://alice:s3cret@h:4222", "nats://alice:xxxxx@h:4222"},
		{"token", "nats://t0ken@h:4222", "nats://xxxxx@h:4222"},
		{"tls", "tls://alice:s3cret@h", "tls://alice:xxxxx@h"},
		{"slash in password", "nats://alice:s3/cret@h", "nats://alice:xxxxx@h"},
		{"list", "nats://a:p1@h1,nats://b:p2@h2,nats://h3", "nats://a:xxxxx@h1,nats://b:xxxxx@h2,nats://h3"},
		{"inside an error text", `parse "nats://alice:s3cret@h:x": invalid port`, `parse "nats://alice:xxxxx@h:x": invalid port`},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, bus.Redact(tt.in))
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestConnectErrorsHideSecrets(t *testing.T) {
	addr := closedPort(t)
	tests := []struct {
		name   string
		opts   bus.ConnectOptions
		secret string
	}{
		{"password in url", bus.ConnectOptions{URLs: "nats://alice:s3cret@" + addr}, "s3cret"},
		{"token in url", bus.ConnectOptions{URLs: "nats://t0ken-s3cret@" + addr}, "t0ken-s3cret"},
		{"password in url that does not parse", bus.ConnectOptions{URLs: "nats://alice:s3cret@127.0.0.1:notaport"}, "s3cret"},
		{"password option", bus.ConnectOptions{URLs: "nats://" + addr, User: "alice", Password: "s3cret"}, "s3cret"},
		{"token option", bus.ConnectOptions{URLs: "nats://" + addr, Token: "t0ken-s3cret"}, "t0ken-s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := newLogSink()
			tt.opts.Logger = logs.logger()
			nc, err := bus.Connect(tt.opts)
			if nc != nil {
				nc.Close()
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.NotContains(t, err.Error(), tt.secret)
			assert.NotContains(t, logs.all(), tt.secret)
		})
	}

	_, err := bus.Connect(bus.ConnectOptions{URLs: "nats://alice:s3cret@" + addr})
	assert.ErrorIs(t, err, nats.ErrNoServers, "nats.go sentinels still match")
}

func TestConnectTLSNeedsCertAndKey(t *testing.T) {
	_, err := bus.Connect(bus.ConnectOptions{URLs: "nats://" + closedPort(t), TLSCert: "client.pem"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TLSCert and TLSKey")
}

func TestConnectOptionsFromEnv(t *testing.T) {
	t.Setenv(bus.EnvUser, "env-user")
	t.Setenv(bus.EnvPassword, "env-pass")
	t.Setenv(bus.EnvToken, "env-token")

	var o bus.ConnectOptions
	o.FromEnv()
	assert.Equal(t, "env-user", o.User)
	assert.Equal(t, "env-pass", o.Password)
	assert.Equal(t, "env-token", o.Token)

	set := bus.ConnectOptions{User: "flag-user", Password: "flag-pass", Token: "flag-token"}
	set.FromEnv()
	assert.Equal(t, bus.ConnectOptions{User: "flag-user", Password: "flag-pass", Token: "flag-token"}, set, "set fields are kept")
}

// TestConnectLogsEvents restarts the server under a connected client: the
// disconnect, the reconnect (with the URL redacted) and the close are
// logged, and the password never is.
func TestConnectLogsEvents(t *testing.T) {
	first := bustest.NewServer(t)
	port := first.Addr().(*net.TCPAddr).Port
	logs := newLogSink()
	nc, err := bus.Connect(bus.ConnectOptions{
		URLs:   "nats://alice:s3cret@127.0.0.1:" + strconv.Itoa(port),
		Name:   "hive-node n1",
		Logger: logs.logger(),
	})
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	first.Shutdown()
	first.WaitForShutdown()
	logs.waitFor(t, `"level":"warn"`, "nats disconnected")

	second, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoSigs: true})
	require.NoError(t, err)
	second.Start()
	t.Cleanup(func() {
		second.Shutdown()
		second.WaitForShutdown()
	})
	require.True(t, second.ReadyForConnections(wait), "second server ready")

	logs.waitFor(t, `"level":"info"`, "nats reconnected", "nats://alice:xxxxx@127.0.0.1:"+strconv.Itoa(port))
	nc.Close()
	logs.waitFor(t, "nats connection closed")
	assert.NotContains(t, logs.all(), "s3cret")
}
