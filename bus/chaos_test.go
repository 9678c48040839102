package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
	"github.com/cmmv-hive/resilience/providers/fault"
)

// fakeChaos is a ChaosHandler that keeps the faults in a list. It checks
// and describes them as a node does (providers/fault); a fault of kind
// kill is refused as unsupported; a partition has a start that closes
// started.
type fakeChaos struct {
	mu      sync.Mutex // guards faults
	faults  []string
	started chan string
}

func newFakeChaos() *fakeChaos { return &fakeChaos{started: make(chan string, 10)} }

func (f *fakeChaos) Inject(spec *messages.FaultSpec) (func(), error) {
	if err := fault.Check(spec); err != nil {
		return nil, fmt.Errorf("%w: %w", bus.ErrInvalidFault, err)
	}
	if spec.GetKind() == messages.FaultSpec_kill {
		return nil, fmt.Errorf("kill: %w", errors.ErrUnsupported)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(slices.DeleteFunc(f.faults, func(id string) bool { return id == spec.GetId() }), spec.GetId())
	if spec.GetKind() == messages.FaultSpec_partition {
		return func() { f.started <- spec.GetId() }, nil
	}
	return nil, nil
}

func (f *fakeChaos) Describe(spec *messages.FaultSpec) string { return fault.Describe(spec) }

func (f *fakeChaos) Clear(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = slices.DeleteFunc(f.faults, func(have string) bool { return id == "" || have == id })
	return nil
}

func (f *fakeChaos) Active() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.faults)
}

func startChaos(t *testing.T, nc *nats.Conn, nodes ...string) map[string]*fakeChaos {
	t.Helper()
	out := make(map[string]*fakeChaos)
	for _, n := range nodes {
		f := newFakeChaos()
		c, err := bus.StartChaos(bus.ChaosConfig{Conn: nc, Node: n, Handler: f, Logger: zerolog.Nop()})
		require.NoError(t, err)
		t.Cleanup(c.Stop)
		out[n] = f
	}
	return out
}

func chaosCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func nextAudit(t *testing.T, sub *nats.Subscription) (string, *messages.AdminCommand) {
	t.Helper()
	m, err := sub.NextMsg(wait)
	require.NoError(t, err)
	cmd := &messages.AdminCommand{}
	require.NoError(t, bus.DecodeTyped(m.Header, m.Data, cmd))
	return m.Subject, cmd
}

func TestChaosInjectAndClear(t *testing.T) {
	srv := bustest.NewServer(t)
	fakes := startChaos(t, bustest.Connect(t, srv), "node-a", "node-b")
	client, err := nats.Connect(srv.ClientURL(), nats.Name("chaos runner"))
	require.NoError(t, err)
	t.Cleanup(client.Close)
	audit, err := client.SubscribeSync("hive.v1.events.admin.>")
	require.NoError(t, err)
	require.NoError(t, client.Flush())

	spec := &messages.FaultSpec{Model: "gpt-5", Kind: messages.FaultSpec_error, ErrorClass: messages.ErrorClass_overloaded, DurationMs: 10000}
	acks, err := bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "node-a", false, spec, time.Second)
	require.NoError(t, err)
	require.Len(t, acks, 1)
	a := acks[0]
	assert.True(t, a.GetOk(), "ack %v", a)
	assert.Equal(t, "node-a", a.GetNode())
	assert.NotEmpty(t, a.GetFaultId(), "an id is assigned")
	assert.Empty(t, spec.GetId(), "the caller's spec is left alone")
	assert.Equal(t, []string{a.GetFaultId()}, a.GetActive())
	assert.Equal(t, []string{a.GetFaultId()}, fakes["node-a"].Active())
	assert.Empty(t, fakes["node-b"].Active(), "a fault for node-a stays on node-a")

	subject, cmd := nextAudit(t, audit)
	assert.Equal(t, "hive.v1.events.admin.node-a.chaos_inject", subject)
	assert.Equal(t, "gpt-5", cmd.GetModel())
	assert.Equal(t, "chaos runner (claimed)", cmd.GetActor())
	assert.Equal(t, "error overloaded on gpt-5, for 10s ("+a.GetFaultId()+")", cmd.GetReason())
	assert.Equal(t, int32(10000), cmd.GetDurationMs())

	all, err := bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "all", false,
		&messages.FaultSpec{Id: "lat", Kind: messages.FaultSpec_latency, LatencyMs: 300}, 300*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, all, 2, "every node answers all")
	var nodes []string
	for _, a := range all {
		assert.True(t, a.GetOk())
		assert.Equal(t, "lat", a.GetFaultId())
		nodes = append(nodes, a.GetNode())
	}
	assert.ElementsMatch(t, []string{"node-a", "node-b"}, nodes)
	assert.Equal(t, []string{a.GetFaultId(), "lat"}, fakes["node-a"].Active())

	cleared, err := bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "", true, &messages.FaultSpec{Id: "lat"}, 300*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, cleared, 2)
	assert.Equal(t, []string{a.GetFaultId()}, fakes["node-a"].Active())
	assert.Empty(t, fakes["node-b"].Active())

	cleared, err = bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "node-a", true, nil, time.Second)
	require.NoError(t, err)
	require.Len(t, cleared, 1)
	assert.True(t, cleared[0].GetOk())
	assert.Empty(t, cleared[0].GetActive(), "no id clears every fault")
	assert.Empty(t, fakes["node-a"].Active())

	var commands []string
	for range 5 { // the latency on two nodes, its clear on two, the clear of all
		subject, cmd := nextAudit(t, audit)
		commands = append(commands, subject[len("hive.v1.events.admin."):]+": "+cmd.GetReason())
	}
	assert.ElementsMatch(t, []string{
		"node-a.chaos_inject: latency 300ms on every model, until cleared (lat)",
		"node-b.chaos_inject: latency 300ms on every model, until cleared (lat)",
		"node-a.chaos_clear: clear fault lat",
		"node-b.chaos_clear: clear fault lat",
		"node-a.chaos_clear: clear every fault",
	}, commands)
}

// TestChaosRefusesInvalidFaults: a bad spec is answered with
// bad_request/invalid_fault and names every problem: an id or model that is
// no subject token, refused by Chaos itself, or what the handler's check
// finds; none is applied.
func TestChaosRefusesInvalidFaults(t *testing.T) {
	srv := bustest.NewServer(t)
	fakes := startChaos(t, bustest.Connect(t, srv), "node-a")
	client := bustest.Connect(t, srv)
	tests := []struct {
		name string
		spec *messages.FaultSpec
		want string
	}{
		{"unknown kind", &messages.FaultSpec{Kind: 42}, "unknown kind 42"},
		{"probability above 1", &messages.FaultSpec{Probability: 1.5}, "probability 1.5 is outside (0, 1]"},
		{"negative probability", &messages.FaultSpec{Probability: -0.1}, "probability -0.1 is outside (0, 1]"},
		{"negative duration", &messages.FaultSpec{DurationMs: -1}, "durationMs -1 is negative"},
		{"negative start", &messages.FaultSpec{StartAfterMs: -5}, "startAfterMs -5 is negative"},
		{"cut without after", &messages.FaultSpec{Kind: messages.FaultSpec_cut_stream}, "cut_stream needs afterTokens"},
		{"latency without latency", &messages.FaultSpec{Kind: messages.FaultSpec_latency}, "latency needs latencyMs above 0"},
		{"partition forever", &messages.FaultSpec{Kind: messages.FaultSpec_partition}, "partition needs durationMs above 0"},
		{"model with a dot", &messages.FaultSpec{Model: "gpt.5"}, `model name "gpt.5" contains '.'`},
		{"status 200", &messages.FaultSpec{StatusCode: 200}, "statusCode 200 is not an HTTP error status"},
		{"unknown class", &messages.FaultSpec{ErrorClass: 99}, "unknown error class 99"},
		{"two problems", &messages.FaultSpec{LatencyMs: -1, JitterMs: -2}, "latencyMs -1 is negative; jitterMs -2 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acks, err := bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "node-a", false, tt.spec, time.Second)
			require.NoError(t, err)
			require.Len(t, acks, 1)
			a := acks[0]
			assert.False(t, a.GetOk())
			assert.Equal(t, messages.ErrorClass_bad_request, a.GetError().GetClass())
			assert.Equal(t, "invalid_fault", a.GetError().GetCode())
			assert.Contains(t, a.GetError().GetMessage(), tt.want)
		})
	}
	assert.Empty(t, fakes["node-a"].Active(), "no invalid fault was applied")

	acks, err := bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "node-a", false, &messages.FaultSpec{Kind: messages.FaultSpec_kill}, time.Second)
	require.NoError(t, err)
	assert.Equal(t, "unsupported", acks[0].GetError().GetCode(), "the handler's refusal: %v", acks[0])
}

// TestChaosOverJSON: a JSON spec gets a JSON ack; a body that is no
// FaultSpec gets malformed_spec.
func TestChaosOverJSON(t *testing.T) {
	srv := bustest.NewServer(t)
	startChaos(t, bustest.Connect(t, srv), "node-a")
	client := bustest.Connect(t, srv)

	req := nats.NewMsg("hive.v1.chaos.node-a.inject")
	req.Header.Set(bus.TypeHeader, "hive.v1.FaultSpec")
	req.Data = []byte(`{"id":"j1","model":"gpt-5","kind":"rate_limit","retryAfterMs":2000}`)
	msg, err := client.RequestMsg(req, wait)
	require.NoError(t, err)
	require.Equal(t, byte('{'), msg.Data[0], "a JSON spec gets a JSON ack: %s", msg.Data)
	var ack messages.FaultAck
	require.NoError(t, protojson.Unmarshal(msg.Data, &ack))
	assert.True(t, ack.GetOk(), "ack %s", msg.Data)
	assert.Equal(t, "j1", ack.GetFaultId())

	req.Data = []byte(`{"kind":"meteor"}`)
	msg, err = client.RequestMsg(req, wait)
	require.NoError(t, err)
	require.NoError(t, protojson.Unmarshal(msg.Data, &ack))
	assert.Equal(t, "malformed_spec", ack.GetError().GetCode())
}

// TestChaosStartsAfterTheAck: a fault with a start (a partition here) is
// acknowledged, then started.
func TestChaosStartsAfterTheAck(t *testing.T) {
	srv := bustest.NewServer(t)
	fakes := startChaos(t, bustest.Connect(t, srv), "node-a")
	client := bustest.Connect(t, srv)
	acks, err := bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "node-a", false,
		&messages.FaultSpec{Id: "p1", Kind: messages.FaultSpec_partition, DurationMs: 1000}, time.Second)
	require.NoError(t, err)
	require.True(t, acks[0].GetOk())
	select {
	case id := <-fakes["node-a"].started:
		assert.Equal(t, "p1", id)
	case <-time.After(wait):
		t.Fatal("the partition never started")
	}
}

func TestChaosNobodyListening(t *testing.T) {
	srv := bustest.NewServer(t)
	client := bustest.Connect(t, srv)
	_, err := bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "all", false, &messages.FaultSpec{}, time.Second)
	assert.ErrorIs(t, err, bus.ErrNoNodes, "chaos disabled everywhere: nobody answers")
	_, err = bus.ChaosRequest(chaosCtx(t), client, bus.Subjects{}, "all", false, nil, time.Second)
	assert.Error(t, err, "an inject needs a spec")
}

// TestPartitionCutsAndHeals: a cut connection leaves the server (its
// subscriptions with it) and cannot dial back; healing it reconnects at
// once, not after the reconnect backoff: here the backoff is an hour, so
// only the heal can bring it back within the test.
func TestPartitionCutsAndHeals(t *testing.T) {
	t.Cleanup(bus.SetReconnectDelay(time.Hour))
	srv := bustest.NewServer(t)
	p := bus.NewPartition()
	nc, err := bus.Connect(bus.ConnectOptions{URLs: srv.ClientURL(), Name: "cut me", Partition: p})
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	reconnected := make(chan struct{}, 1)
	nc.SetReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} })
	_, err = nc.Subscribe("echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	client := bustest.Connect(t, srv)
	_, err = client.Request("echo", []byte("hi"), wait)
	require.NoError(t, err)

	require.NoError(t, p.Cut())
	assert.True(t, p.IsCut())
	require.Eventually(t, func() bool { // once the server has noticed the closed socket
		_, err := client.Request("echo", []byte("hi"), 200*time.Millisecond)
		return errors.Is(err, nats.ErrNoResponders)
	}, wait, 10*time.Millisecond, "a cut connection's subscriptions leave the server")

	// The client has been refused and now waits its (hour-long) backoff.
	require.Eventually(t, func() bool { return p.Refused() >= 1 }, wait, 10*time.Millisecond)
	require.NoError(t, p.Heal())
	select {
	case <-reconnected:
	case <-time.After(wait):
		t.Fatal("no reconnect after the heal: it waited for the backoff")
	}
	require.NoError(t, nc.Flush()) // the server has the subscription again
	_, err = client.Request("echo", []byte("hi"), wait)
	assert.NoError(t, err, "the subscription is back")
	assert.NoError(t, p.Heal(), "healing twice does nothing")
}

func TestPartitionWithoutConnection(t *testing.T) {
	assert.Error(t, bus.NewPartition().Cut(), "a partition given to no Connect has nothing to cut")
}
