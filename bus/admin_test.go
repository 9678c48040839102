package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

// fakeAdmin is an AdminHandler over one model, "gpt-5", and one alert, "a1".
type fakeAdmin struct {
	node    string
	mu      sync.Mutex // guards breaker and drained
	breaker messages.BreakerState
	drained bool
}

func (f *fakeAdmin) Status() *messages.NodeStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &messages.NodeStatus{Node: f.node, Draining: f.drained,
		Models: []*messages.ModelStatus{{Name: "gpt-5", Breaker: f.breaker, Enabled: true}}}
}

func (f *fakeAdmin) Control(command string, cmd *messages.AdminCommand) (*messages.ModelStatus, error) {
	if cmd.GetModel() != "gpt-5" {
		return nil, fmt.Errorf("model %q: %w", cmd.GetModel(), bus.ErrNotFound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if command == bus.CmdBreakerOpen {
		f.breaker = messages.BreakerState_forced_open
	}
	return &messages.ModelStatus{Name: "gpt-5", Breaker: f.breaker, Enabled: true}, nil
}

func (f *fakeAdmin) Drain() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained = true
	return nil
}

func (f *fakeAdmin) AckAlert(id, actor string) (*messages.Alert, error) {
	if id != "a1" {
		return nil, fmt.Errorf("alert %q: %w", id, bus.ErrNotFound)
	}
	return &messages.Alert{Id: id, Rule: "open_breakers", Actor: actor}, nil
}

// startAdmins starts one Admin per node name on srv.
func startAdmins(t *testing.T, nc *nats.Conn, nodes ...string) map[string]*fakeAdmin {
	t.Helper()
	out := make(map[string]*fakeAdmin)
	for _, n := range nodes {
		f := &fakeAdmin{node: n}
		a, err := bus.StartAdmin(bus.AdminConfig{Conn: nc, Node: n, Handler: f, Logger: zerolog.Nop()})
		require.NoError(t, err)
		t.Cleanup(a.Stop)
		out[n] = f
	}
	return out
}

func adminCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAdminStatusFromEveryNode(t *testing.T) {
	srv := bustest.NewServer(t)
	startAdmins(t, bustest.Connect(t, srv), "node-a", "node-b", "node-c")
	client := bustest.Connect(t, srv)

	replies, err := bus.AdminRequest(adminCtx(t), client, bus.Subjects{}, "all", bus.CmdStatus, nil, 200*time.Millisecond)
	require.NoError(t, err)
	var nodes []string
	for _, r := range replies {
		assert.True(t, r.GetOk(), "reply %v", r)
		nodes = append(nodes, r.GetStatus().GetNode())
	}
	assert.ElementsMatch(t, []string{"node-a", "node-b", "node-c"}, nodes)

	one, err := bus.AdminRequest(adminCtx(t), client, bus.Subjects{}, "node-b", bus.CmdStatus, nil, time.Second)
	require.NoError(t, err)
	require.Len(t, one, 1)
	assert.Equal(t, "node-b", one[0].GetNode())
}

func TestAdminCommands(t *testing.T) {
	srv := bustest.NewServer(t)
	fakes := startAdmins(t, bustest.Connect(t, srv), "node-a")
	client := bustest.Connect(t, srv)
	audit, err := client.SubscribeSync("hive.v1.events.admin.>")
	require.NoError(t, err)
	require.NoError(t, client.Flush())

	tests := []struct {
		name     string
		command  string
		cmd      *messages.AdminCommand
		wantCode string // "" for success
	}{
		{"breaker open", bus.CmdBreakerOpen, &messages.AdminCommand{Model: "gpt-5", Actor: "alice", Reason: "provider incident"}, ""},
		{"unknown model", bus.CmdBreakerClose, &messages.AdminCommand{Model: "nope"}, "not_found"},
		{"model missing", bus.CmdModelDisable, &messages.AdminCommand{}, "bad_request"},
		{"unknown command", "reboot", &messages.AdminCommand{}, "unknown_command"},
		{"alert ack", bus.CmdAlertAck, &messages.AdminCommand{AlertId: "a1", Actor: "bob"}, ""},
		{"alert ack unknown", bus.CmdAlertAck, &messages.AdminCommand{AlertId: "zz"}, "not_found"},
		{"drain", bus.CmdDrain, &messages.AdminCommand{Actor: "carol"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			replies, err := bus.AdminRequest(adminCtx(t), client, bus.Subjects{}, "node-a", tc.command, tc.cmd, time.Second)
			require.NoError(t, err)
			require.Len(t, replies, 1)
			r := replies[0]
			if tc.wantCode == "" {
				assert.True(t, r.GetOk(), "got %v, want ok", r)
				return
			}
			assert.False(t, r.GetOk())
			assert.Equal(t, tc.wantCode, r.GetError().GetCode(), "got %v", r.GetError())
		})
	}
	assert.Equal(t, messages.BreakerState_forced_open, fakes["node-a"].Status().Models[0].Breaker)
	assert.True(t, fakes["node-a"].Status().Draining)

	// The three applied commands are on the audit subject, in order, with
	// the actors the client declared.
	want := []struct{ subject, actor string }{
		{"hive.v1.events.admin.node-a.breaker_open", "alice (claimed)"},
		{"hive.v1.events.admin.node-a.alert_ack", "bob (claimed)"},
		{"hive.v1.events.admin.node-a.drain", "carol (claimed)"},
	}
	for _, w := range want {
		m, err := audit.NextMsg(5 * time.Second)
		require.NoError(t, err)
		got := &messages.AdminCommand{}
		require.NoError(t, bus.DecodeTyped(m.Header, m.Data, got))
		assert.Equal(t, w.subject, m.Subject)
		assert.Equal(t, w.actor, got.GetActor())
	}
}

func TestAdminMalformedBody(t *testing.T) {
	srv := bustest.NewServer(t)
	startAdmins(t, bustest.Connect(t, srv), "node-a")
	client := bustest.Connect(t, srv)
	msg := nats.NewMsg("hive.v1.admin.node-a.breaker_open")
	msg.Header.Set(bus.TypeHeader, "hive.v1.AdminCommand")
	msg.Data = []byte(`{"model": 7}`)
	m, err := client.RequestMsg(msg, 5*time.Second)
	require.NoError(t, err)
	r := &messages.AdminReply{}
	require.NoError(t, bus.Decode(bus.JSON, m.Data, r))
	assert.Equal(t, "malformed_command", r.GetError().GetCode())
	// and the node still answers
	replies, err := bus.AdminRequest(adminCtx(t), client, bus.Subjects{}, "node-a", bus.CmdStatus, nil, time.Second)
	require.NoError(t, err)
	assert.True(t, replies[0].GetOk())
}

func TestAdminRequestNobodyThere(t *testing.T) {
	srv := bustest.NewServer(t)
	client := bustest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := bus.AdminRequest(ctx, client, bus.Subjects{}, "", bus.CmdStatus, nil, 100*time.Millisecond)
	assert.ErrorIs(t, err, bus.ErrNoNodes)
}
