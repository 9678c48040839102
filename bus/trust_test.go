package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

func TestReplyGuardAllowed(t *testing.T) {
	custom := bus.NewReplyGuard([]string{"apps.inbox."}, zerolog.Nop(), nil)
	var none *bus.ReplyGuard // nil: the defaults
	for _, tc := range []struct {
		name  string
		guard *bus.ReplyGuard
		reply string
		want  bool
	}{
		{"default inbox", none, "_INBOX.abc.def", true},
		{"private inbox token", none, "_INBOX.app.abc", true},
		{"private inbox prefix", none, "_INBOX_app.abc", true},
		{"admin subject", none, "hive.v1.admin.n1.breaker_open", false},
		{"event subject", none, "hive.v1.events.breaker.n1.gpt-5", false},
		{"infer subject", none, "hive.v1.infer", false},
		{"jetstream api", none, "$JS.API.STREAM.DELETE.HIVE_EVENTS", false},
		{"wildcard inbox", none, "_INBOX.>", false},
		{"star token", none, "_INBOX.*.x", false},
		{"the prefix alone", none, "_INBOX.", false},
		{"empty token", none, "_INBOX..x", false},
		{"space", none, "_INBOX.a b", false},
		{"inbox lookalike", none, "_INBOXES.x", false},
		{"custom prefix", custom, "apps.inbox.x", true},
		{"default not allowed with custom", custom, "_INBOX.x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.guard.Allowed(tc.reply), "reply %q", tc.reply)
		})
	}
}

func TestReplyGuardCountsRefusals(t *testing.T) {
	var byEndpoint = map[string]int{}
	g := bus.NewReplyGuard(nil, zerolog.Nop(), func(endpoint string) { byEndpoint[endpoint]++ })
	assert.True(t, g.Check("infer", "hive.v1.infer", "_INBOX.x"))
	for range 3 {
		assert.False(t, g.Check("infer", "hive.v1.infer", "hive.v1.admin.all.drain"))
	}
	assert.False(t, g.Check("admin", "hive.v1.admin.n1.status", "hive.v1.events.admin.n1.x"))
	assert.Equal(t, int64(4), g.Refused())
	assert.Equal(t, map[string]int{"infer": 3, "admin": 1}, byEndpoint)
}

// hijackBody is what an infer reply hijacked onto an admin subject would
// carry: an InferResponse whose request_id (field 1) decodes as
// AdminCommand.model.
func hijackBody(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&messages.InferResponse{RequestId: "gpt-5"})
	require.NoError(t, err)
	cmd := &messages.AdminCommand{}
	require.NoError(t, proto.Unmarshal(b, cmd), "the overlap the type header closes")
	require.Equal(t, "gpt-5", cmd.GetModel())
	return b
}

// TestAdminRefusesUntypedCommands: a message without the AdminCommand type
// never reaches the handler, even when its body decodes as a command.
func TestAdminRefusesUntypedCommands(t *testing.T) {
	srv := bustest.NewServer(t)
	fakes := startAdmins(t, bustest.Connect(t, srv), "node-a")
	client := bustest.Connect(t, srv)
	for _, typ := range []string{"", "hive.v1.InferResponse", "hive.v1.FaultSpec"} {
		msg := nats.NewMsg("hive.v1.admin.node-a.breaker_open")
		if typ != "" {
			msg.Header.Set(bus.TypeHeader, typ)
		}
		msg.Data = hijackBody(t)
		m, err := client.RequestMsg(msg, wait)
		require.NoError(t, err)
		r := &messages.AdminReply{}
		require.NoError(t, bus.DecodeTyped(m.Header, m.Data, r))
		assert.Equal(t, "wrong_type", r.GetError().GetCode(), "type %q", typ)
		assert.Contains(t, r.GetError().GetMessage(), "hive.v1.AdminCommand")
	}
	assert.Equal(t, messages.BreakerState_closed, fakes["node-a"].Status().GetModels()[0].GetBreaker(), "the breaker moved")
	// A typed command still works.
	replies, err := bus.AdminRequest(adminCtx(t), client, bus.Subjects{}, "node-a", bus.CmdBreakerOpen, &messages.AdminCommand{Model: "gpt-5"}, time.Second)
	require.NoError(t, err)
	assert.True(t, replies[0].GetOk(), "reply %v", replies[0])
}

// TestChaosRefusesUntypedSpecs: the same for faults.
func TestChaosRefusesUntypedSpecs(t *testing.T) {
	srv := bustest.NewServer(t)
	fakes := startChaos(t, bustest.Connect(t, srv), "node-a")
	client := bustest.Connect(t, srv)
	body, err := proto.Marshal(&messages.InferResponse{RequestId: "f1", Content: "x"})
	require.NoError(t, err)
	for _, typ := range []string{"", "hive.v1.InferResponse"} {
		msg := nats.NewMsg("hive.v1.chaos.node-a.inject")
		if typ != "" {
			msg.Header.Set(bus.TypeHeader, typ)
		}
		msg.Data = body
		m, err := client.RequestMsg(msg, wait)
		require.NoError(t, err)
		ack := &messages.FaultAck{}
		require.NoError(t, bus.DecodeTyped(m.Header, m.Data, ack))
		assert.Equal(t, "wrong_type", ack.GetError().GetCode(), "type %q", typ)
	}
	assert.Empty(t, fakes["node-a"].Active(), "a fault from an untyped message")
}

// TestSubscribeHealthSkipsUntypedEvents: only events that declare their
// type reach recovery; the typed sentinel after the untyped one proves the
// untyped one was seen and skipped.
func TestSubscribeHealthSkipsUntypedEvents(t *testing.T) {
	srv := bustest.NewServer(t)
	nc := bustest.Connect(t, srv)
	got := make(chan proto.Message, 4)
	subs, err := bus.SubscribeHealth(nc, bus.Subjects{}, zerolog.Nop(), func(m proto.Message) { got <- m })
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	})
	require.NoError(t, nc.Flush())
	pub := bustest.Connect(t, srv)
	body, err := proto.Marshal(&messages.BreakerTransition{Model: "forged", To: messages.BreakerState_open})
	require.NoError(t, err)
	require.NoError(t, pub.Publish("hive.v1.events.breaker.n1.forged", body)) // untyped
	events := bus.NewEvents(pub, bus.Subjects{}, zerolog.Nop())
	events.Breaker(&messages.BreakerTransition{Node: "n1", Model: "real", To: messages.BreakerState_open})
	require.NoError(t, pub.Flush())
	select {
	case m := <-got:
		assert.Equal(t, "real", m.(*messages.BreakerTransition).GetModel(), "the untyped event came through")
	case <-time.After(wait):
		t.Fatal("the typed event never came")
	}
}

// TestIngressDropsForeignReplySubjects: a request whose reply subject is
// not an inbox is never served; one with an inbox is.
func TestIngressDropsForeignReplySubjects(t *testing.T) {
	s := bustest.NewServer(t)
	nc, err := bus.Connect(bus.ConnectOptions{URLs: s.ClientURL()})
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	var refused atomic.Int32
	d := &countingDispatcher{}
	in, err := bus.StartIngress(bus.IngressConfig{Conn: nc, Node: "n1", Dispatcher: d,
		Replies: bus.NewReplyGuard(nil, zerolog.Nop(), func(string) { refused.Add(1) })})
	require.NoError(t, err)
	t.Cleanup(func() { _ = in.Stop(context.Background()) })

	client := bustest.Connect(t, s)
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`)
	for _, reply := range []string{"hive.v1.admin.all.drain", "hive.v1.events.breaker.n1.m", "elsewhere"} {
		require.NoError(t, client.PublishRequest("hive.v1.infer", reply, body))
	}
	require.NoError(t, client.Flush())
	// The inbox request is answered after the three, on the same
	// subscription, so by then all three were handled.
	_, err = client.Request("hive.v1.infer", body, wait)
	require.NoError(t, err)
	assert.Equal(t, int32(3), refused.Load())
	assert.Equal(t, int32(1), d.n.Load(), "requests dispatched")
}

type countingDispatcher struct{ n atomic.Int32 }

func (c *countingDispatcher) Dispatch(_ context.Context, req *messages.InferRequest, sink messages.Sink) {
	c.n.Add(1)
	if req.GetStream() {
		sink.Final(&messages.InferResponse{})
		return
	}
	sink.Final(&messages.InferResponse{Content: "ok"})
}

// nodeDispatcher answers with its node's name, plainly and as a stream of
// two pieces.
type nodeDispatcher struct{ node string }

func (d nodeDispatcher) Dispatch(_ context.Context, req *messages.InferRequest, sink messages.Sink) {
	if req.GetStream() {
		sink.Piece("", "from ")
		sink.Piece("", d.node)
		sink.Final(&messages.InferResponse{ServedBy: req.GetModel()})
		return
	}
	sink.Final(&messages.InferResponse{Content: "from " + d.node, ServedBy: req.GetModel()})
}

// TestIngressForwardsToANodeThatServesTheModel: two nodes with different
// model sets in one queue group; every request for a model one of them
// serves is answered by that node, plain or streamed, whichever node the
// public subject delivered it to; a model neither serves is unknown_model.
func TestIngressForwardsToANodeThatServesTheModel(t *testing.T) {
	s := bustest.NewServer(t)
	for node, models := range map[string][]string{"a": {"only-a", "both"}, "b": {"only-b", "both"}} {
		nc, err := bus.Connect(bus.ConnectOptions{URLs: s.ClientURL()})
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		in, err := bus.StartIngress(bus.IngressConfig{Conn: nc, Node: node, Dispatcher: nodeDispatcher{node}, Models: models})
		require.NoError(t, err)
		t.Cleanup(func() { _ = in.Stop(context.Background()) })
	}
	client := bustest.Connect(t, s)
	// The queue group spreads requests at random: 20 each make it all but
	// certain that both nodes receive some for the model they lack.
	for range 20 {
		for model, want := range map[string]string{"only-a": "a", "only-b": "b"} {
			body := []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"x"}]}`)
			resp := &messages.InferResponse{}
			require.NoError(t, bus.Decode(bus.JSON, infer(t, client, body, nil).Data, resp))
			require.Nil(t, resp.GetError(), "model %s: %v", model, resp.GetError())
			assert.Equal(t, want, resp.GetNode(), "model %s", model)
			assert.Equal(t, "from "+want, resp.GetContent())

			_, chunks := readStream(t, client, bus.JSON, streamOf(model, "x"), nil)
			require.Len(t, chunks, 3, "model %s", model)
			assert.Equal(t, want, chunks[1].GetDelta(), "model %s streamed", model)
			assert.True(t, chunks[2].GetFinal())
			assert.Equal(t, messages.InferChunk_complete, chunks[2].GetOutcome())
		}
	}
	for _, stream := range []bool{false, true} {
		if stream {
			_, chunks := readStream(t, client, bus.JSON, streamOf("nowhere", "x"), nil)
			require.Len(t, chunks, 1)
			assert.Equal(t, "unknown_model", chunks[0].GetError().GetCode())
			continue
		}
		resp := &messages.InferResponse{}
		require.NoError(t, bus.Decode(bus.JSON, infer(t, client, []byte(`{"model":"nowhere","messages":[{"role":"user","content":"x"}]}`), nil).Data, resp))
		assert.Equal(t, "unknown_model", resp.GetError().GetCode())
		assert.Contains(t, resp.GetError().GetMessage(), "no node in the deployment serves it")
	}
}
