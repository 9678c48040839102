package main

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

// TestExamplePermissions runs a node on a real server configured with
// deploy/nats-server.conf: the app user may infer and nothing else; the
// operator may use the admin subjects.
func TestExamplePermissions(t *testing.T) {
	t.Setenv("HIVE_APP_PASSWORD", "app-secret")
	t.Setenv("HIVE_OPERATOR_PASSWORD", "operator-secret")
	opts, err := server.ProcessConfigFile("../../deploy/nats-server.conf")
	require.NoError(t, err)
	opts.StoreDir = t.TempDir()
	srv := bustest.NewServerWith(t, *opts)

	// The node runs as the operator, its password from the environment.
	t.Setenv(bus.EnvUser, "operator")
	t.Setenv(bus.EnvPassword, "operator-secret")
	cfg, err := config.Parse(config.GlobalFile, nil, config.ModelsFile, []byte(testModels))
	require.NoError(t, err)
	n, err := startNode(&serveFlags{natsFlags: natsFlags{natsURL: srv.ClientURL()}, nodeID: "auth", httpAddr: "off"},
		cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, n.shutdown()) })

	asyncErrs := make(chan error, 8)
	app, err := nats.Connect(srv.ClientURL(), nats.UserInfo("app", "app-secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs <- err }))
	require.NoError(t, err)
	t.Cleanup(app.Close)

	// Inference is allowed.
	_, resp := requestJSON(t, app, `{"model":"primary","messages":[{"role":"user","content":"hi"}]}`)
	assert.Nil(t, resp.GetError())
	assert.Equal(t, "primary", resp.GetServedBy())

	// Admin is refused by the server: the request never reaches the node.
	_, err = app.Request("hive.v1.admin.all.breaker_open", []byte(`{"model":"primary"}`), 2*time.Second)
	require.Error(t, err, "the app user must not reach admin subjects")
	select {
	case err := <-asyncErrs:
		assert.True(t, errors.Is(err, nats.ErrPermissionViolation), "got %v, want a permissions violation", err)
	case <-time.After(10 * time.Second):
		t.Fatal("got no permissions violation from the server")
	}
	// Nor may it listen to the event stream.
	_, err = app.SubscribeSync("hive.v1.events.>")
	require.NoError(t, err) // refused asynchronously
	select {
	case err := <-asyncErrs:
		assert.True(t, errors.Is(err, nats.ErrPermissionViolation), "got %v, want a permissions violation", err)
	case <-time.After(10 * time.Second):
		t.Fatal("got no permissions violation for the event subscription")
	}

	// The breaker did not move; the operator can move it.
	operator, err := nats.Connect(srv.ClientURL(), nats.UserInfo("operator", "operator-secret"))
	require.NoError(t, err)
	t.Cleanup(operator.Close)
	replies, err := bus.AdminRequest(t.Context(), operator, bus.Subjects{}, "auth", bus.CmdStatus, nil, time.Second)
	require.NoError(t, err)
	for _, m := range replies[0].GetStatus().GetModels() {
		assert.Equal(t, messages.BreakerState_closed, m.GetBreaker(), "model %s", m.GetName())
	}
	replies, err = bus.AdminRequest(t.Context(), operator, bus.Subjects{}, "auth", bus.CmdBreakerOpen,
		&messages.AdminCommand{Model: "primary", Actor: "ops"}, time.Second)
	require.NoError(t, err)
	require.True(t, replies[0].GetOk(), "reply %v", replies[0])
	assert.Equal(t, messages.BreakerState_forced_open, replies[0].GetStatus().GetModels()[0].GetBreaker())
}
