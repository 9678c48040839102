package bus_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
)

// These tests join a real nats-server, started in process on a random
// loopback port with the authentication an existing deployment would use,
// through bus.Connect with each kind of credential it offers.

// connect calls bus.Connect with o and closes the connection at cleanup.
func connect(t *testing.T, o bus.ConnectOptions) (*nats.Conn, error) {
	t.Helper()
	nc, err := bus.Connect(o)
	if nc != nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

// roundTrip proves nc works: a message published on it comes back through
// a subscription on it, so the server accepted both.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	subject := nats.NewInbox()
	sub, err := nc.SubscribeSync(subject)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush(), "subscription reaches the server")
	require.NoError(t, nc.Publish(subject, []byte("ping")))
	msg, err := sub.NextMsg(wait)
	require.NoError(t, err, "message back on %s", subject)
	assert.Equal(t, "ping", string(msg.Data))
}

// writeFile writes data to name in a fresh temporary directory, readable
// by the owner only, as a secret should be, and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// TestConnectSecretsFromEnv joins servers that want a user and password or
// a token, with the secrets taken from the environment by FromEnv. A wrong
// secret is refused, and neither the error nor the log shows it.
func TestConnectSecretsFromEnv(t *testing.T) {
	userServer := server.Options{Username: "alice", Password: "s3cret-pass"}
	tokenServer := server.Options{Authorization: "s3cret-token"}
	tests := []struct {
		name    string
		server  server.Options
		env     map[string]string
		url     string // user information put in the URL, before host:port
		wantErr bool
		secrets []string // must appear in neither the error nor the log
	}{
		{
			name:   "user and password",
			server: userServer,
			env:    map[string]string{bus.EnvUser: "alice", bus.EnvPassword: "s3cret-pass"},
		},
		{
			name:    "wrong password",
			server:  userServer,
			env:     map[string]string{bus.EnvUser: "alice", bus.EnvPassword: "wr0ng-pass"},
			wantErr: true,
			secrets: []string{"wr0ng-pass", "alice:wr0ng-pass"},
		},
		{
			name:    "wrong password in the url",
			server:  userServer,
			url:     "alice:wr0ng-pass@",
			wantErr: true,
			secrets: []string{"wr0ng-pass", "alice:wr0ng-pass"},
		},
		{
			name:   "token",
			server: tokenServer,
			env:    map[string]string{bus.EnvToken: "s3cret-token"},
		},
		{
			name:    "wrong token",
			server:  tokenServer,
			env:     map[string]string{bus.EnvToken: "wr0ng-token"},
			wantErr: true,
			secrets: []string{"wr0ng-token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, env := range []string{bus.EnvUser, bus.EnvPassword, bus.EnvToken} {
				t.Setenv(env, tt.env[env]) // empty when unset: FromEnv must not pick up the caller's
			}
			s := bustest.NewServerWith(t, tt.server)
			logs := newLogSink()
			o := bus.ConnectOptions{URLs: "nats://" + tt.url + s.Addr().String(), Logger: logs.logger()}
			o.FromEnv()

			nc, err := connect(t, o)
			if !tt.wantErr {
				require.NoError(t, err)
				roundTrip(t, nc)
				return
			}
			require.Error(t, err)
			t.Logf("error: %v", err)
			assert.ErrorIs(t, err, nats.ErrAuthorization)
			for _, secret := range tt.secrets {
				assert.NotContains(t, err.Error(), secret, "error text")
				assert.NotContains(t, logs.all(), secret, "log")
			}
		})
	}
}

// TestConnectNKeyFile joins a server that knows a user by its public nkey,
// with the user's seed in ConnectOptions.NKeyFile. A seed the server does
// not know is refused, and a file holding no seed is named in the error.
func TestConnectNKeyFile(t *testing.T) {
	known, knownSeed := newUserKey(t)
	_, strangerSeed := newUserKey(t)
	s := bustest.NewServerWith(t, server.Options{Nkeys: []*server.NkeyUser{{Nkey: known}}})

	t.Run("known user", func(t *testing.T) {
		nc, err := connect(t, bus.ConnectOptions{URLs: s.ClientURL(), NKeyFile: writeFile(t, "user.nk", knownSeed)})
		require.NoError(t, err)
		roundTrip(t, nc)
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := connect(t, bus.ConnectOptions{URLs: s.ClientURL(), NKeyFile: writeFile(t, "user.nk", strangerSeed)})
		require.Error(t, err)
		t.Logf("error: %v", err)
		assert.ErrorIs(t, err, nats.ErrAuthorization)
		assert.NotContains(t, err.Error(), string(strangerSeed))
	})
	t.Run("no seed in the file", func(t *testing.T) {
		path := writeFile(t, "user.nk", []byte("not a seed\n"))
		_, err := connect(t, bus.ConnectOptions{URLs: s.ClientURL(), NKeyFile: path})
		require.Error(t, err)
		t.Logf("error: %v", err)
		assert.Contains(t, err.Error(), "NKeyFile "+path)
	})
}

// newUserKey makes a user nkey and returns its public key and seed.
func newUserKey(t *testing.T) (string, []byte) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	return pub, seed
}

// TestConnectCredsFile joins a server in operator mode (decentralized JWT
// authentication, as NGS or an nsc-managed deployment runs it) with a
// .creds file holding a user JWT and its seed. A user signed by an account
// the server does not know is refused; a malformed file fails with an
// error and does not echo the file.
func TestConnectCredsFile(t *testing.T) {
	operator := newKey(t, nkeys.CreateOperator)
	account := newKey(t, nkeys.CreateAccount)
	stranger := newKey(t, nkeys.CreateAccount)

	oc := jwt.NewOperatorClaims(publicKey(t, operator))
	oc.Name = "test-operator"
	operatorJWT, err := oc.Encode(operator)
	require.NoError(t, err)
	trusted, err := jwt.DecodeOperatorClaims(operatorJWT)
	require.NoError(t, err)

	resolver := &server.MemAccResolver{}
	for _, acc := range []nkeys.KeyPair{account, stranger} {
		ac := jwt.NewAccountClaims(publicKey(t, acc))
		accountJWT, err := ac.Encode(operator)
		require.NoError(t, err)
		if acc == account { // the stranger stays unknown to the server
			require.NoError(t, resolver.Store(ac.Subject, accountJWT))
		}
	}
	s := bustest.NewServerWith(t, server.Options{TrustedOperators: []*jwt.OperatorClaims{trusted}, AccountResolver: resolver})

	t.Run("user of a known account", func(t *testing.T) {
		nc, err := connect(t, bus.ConnectOptions{URLs: s.ClientURL(), CredsFile: newCreds(t, account)})
		require.NoError(t, err)
		roundTrip(t, nc)
	})
	t.Run("user of an unknown account", func(t *testing.T) {
		_, err := connect(t, bus.ConnectOptions{URLs: s.ClientURL(), CredsFile: newCreds(t, stranger)})
		require.Error(t, err)
		t.Logf("error: %v", err)
		assert.ErrorIs(t, err, nats.ErrAuthorization)
	})
	t.Run("malformed file", func(t *testing.T) {
		const garbage = "not-a-creds-file"
		path := writeFile(t, "user.creds", []byte(garbage+"\n"))
		_, err := connect(t, bus.ConnectOptions{URLs: s.ClientURL(), CredsFile: path})
		require.Error(t, err)
		t.Logf("error: %v", err)
		assert.Contains(t, err.Error(), path, "the error names the file")
		assert.NotContains(t, err.Error(), garbage)
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.creds")
		_, err := connect(t, bus.ConnectOptions{URLs: s.ClientURL(), CredsFile: path})
		require.Error(t, err)
		t.Logf("error: %v", err)
		assert.ErrorIs(t, err, os.ErrNotExist)
		assert.Contains(t, err.Error(), path)
	})
}

// newCreds makes a user signed by account and writes its .creds file.
func newCreds(t *testing.T, account nkeys.KeyPair) string {
	t.Helper()
	pub, seed := newUserKey(t)
	uc := jwt.NewUserClaims(pub)
	uc.Name = "hive-node"
	userJWT, err := uc.Encode(account)
	require.NoError(t, err)
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	require.NoError(t, err)
	return writeFile(t, "user.creds", creds)
}

func newKey(t *testing.T, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	require.NoError(t, err)
	return kp
}

func publicKey(t *testing.T, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	return pub
}

// TestConnectURLList connects through a list whose first server is down:
// the client skips it and joins the live one.
func TestConnectURLList(t *testing.T) {
	s := bustest.NewServerWith(t, server.Options{})
	nc, err := connect(t, bus.ConnectOptions{URLs: "nats://127.0.0.1:1," + s.ClientURL()})
	require.NoError(t, err)
	assert.Equal(t, s.ClientURL(), nc.ConnectedUrl())
	roundTrip(t, nc)
}
