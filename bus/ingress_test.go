package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/bus/bustest"
	"github.com/cmmv-hive/resilience/messages"
)

func TestIngressReplyEncoding(t *testing.T) {
	_, client := setup(t, echoDispatcher{})
	withID := hello("gpt-5")
	withID.RequestId = "caller-chose-this"

	tests := []struct {
		name   string
		header nats.Header
		enc    bus.Encoding // of the request, and so of the reply
		req    *messages.InferRequest
		wantID string // "" means assigned by the node
	}{
		{"protobuf", nil, bus.Protobuf, hello("gpt-5"), ""},
		{"json by first byte", nil, bus.JSON, hello("gpt-5"), ""},
		{"json by header", nats.Header{"Content-Type": {"application/json; charset=utf-8"}}, bus.JSON, hello("gpt-5"), ""},
		{"protobuf keeps the caller's request id", nil, bus.Protobuf, withID, "caller-chose-this"},
		{"json keeps the caller's request id", nil, bus.JSON, withID, "caller-chose-this"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := encode(t, tt.enc, tt.req)
			if tt.header != nil {
				body = append([]byte("  "), body...) // only the header can say JSON
			}
			m := infer(t, client, body, tt.header)

			assert.Equal(t, tt.enc.ContentType(), m.Header.Get("Content-Type"))
			assert.Empty(t, m.Header.Get(micro.ErrorCodeHeader), "a success carries no error header")
			if tt.enc == bus.JSON {
				assert.Equal(t, byte('{'), m.Data[0], "reply is JSON: %q", m.Data)
			}
			resp := decodeReply(t, tt.enc, m)
			assert.Equal(t, "echo: hello", resp.GetContent())
			assert.Equal(t, "gpt-5", resp.GetServedBy())
			assert.Equal(t, "n1", resp.GetNode())
			assert.Nil(t, resp.GetError())
			if tt.wantID != "" {
				assert.Equal(t, tt.wantID, resp.GetRequestId())
			} else {
				assert.NotEmpty(t, resp.GetRequestId(), "the node assigns a request id")
			}
		})
	}
}

func TestIngressRefusals(t *testing.T) {
	_, client := setup(t, echoDispatcher{})

	tests := []struct {
		name     string
		enc      bus.Encoding // expected reply encoding
		body     []byte
		wantCode string
	}{
		{"json that does not parse", bus.JSON, []byte(`{"model":`), "malformed_request"},
		{"json with an unknown field", bus.JSON, []byte(`{"model":"gpt-5","temprature":1}`), "malformed_request"},
		{"protobuf that does not parse", bus.Protobuf, []byte("\xff\xff\xff\xff"), "malformed_request"},
		{"missing model, protobuf", bus.Protobuf, encode(t, bus.Protobuf, &messages.InferRequest{}), "missing_model"},
		{"missing model, json", bus.JSON, []byte(`{"messages":[{"role":"user","content":"hi"}]}`), "missing_model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := infer(t, client, tt.body, nil)

			assert.Equal(t, tt.enc.ContentType(), m.Header.Get("Content-Type"))
			assert.Equal(t, "400", m.Header.Get(micro.ErrorCodeHeader))
			assert.True(t, strings.HasPrefix(m.Header.Get(micro.ErrorHeader), "bad_request: "),
				"error header %q", m.Header.Get(micro.ErrorHeader))
			resp := decodeReply(t, tt.enc, m)
			require.NotNil(t, resp.GetError(), "reply %v carries an error", resp)
			assert.Equal(t, messages.ErrorClass_bad_request, resp.GetError().GetClass())
			assert.Equal(t, tt.wantCode, resp.GetError().GetCode())
			assert.NotEmpty(t, resp.GetError().GetMessage())
			assert.Equal(t, "n1", resp.GetNode())
		})
	}

	t.Run("the next good request is served", func(t *testing.T) {
		resp := decodeReply(t, bus.Protobuf, infer(t, client, encode(t, bus.Protobuf, hello("gpt-5")), nil))
		assert.Equal(t, "echo: hello", resp.GetContent())
	})
}

func TestIngressUnknownFieldMessage(t *testing.T) {
	_, client := setup(t, echoDispatcher{})
	m := infer(t, client, []byte(`{"model":"gpt-5","temprature":1}`), nil)
	resp := decodeReply(t, bus.JSON, m)
	assert.Contains(t, resp.GetError().GetMessage(), `unknown field "temprature"`, "the message says what was wrong")
	assert.Contains(t, m.Header.Get(micro.ErrorHeader), `temprature`)
}

func TestIngressDispatcherError(t *testing.T) {
	_, client := setup(t, echoDispatcher{})
	for _, enc := range []bus.Encoding{bus.Protobuf, bus.JSON} {
		t.Run(enc.String(), func(t *testing.T) {
			m := infer(t, client, encode(t, enc, hello("fail")), nil)

			assert.Equal(t, enc.ContentType(), m.Header.Get("Content-Type"))
			assert.Equal(t, "502", m.Header.Get(micro.ErrorCodeHeader), "server_error's status")
			assert.Equal(t, "server_error: upstream failed", m.Header.Get(micro.ErrorHeader))
			resp := decodeReply(t, enc, m)
			assert.Equal(t, messages.ErrorClass_server_error, resp.GetError().GetClass())
			assert.NotEmpty(t, resp.GetRequestId(), "the node fills in the request id")
			assert.Equal(t, "n1", resp.GetNode())
		})
	}
}

// TestIngressConcurrent holds 200 requests in flight at once and answers
// them in random order: each caller gets its own reply.
func TestIngressConcurrent(t *testing.T) {
	const n = 200
	d := newQueueDispatcher()
	nd, client := setup(t, d)

	type result struct {
		i    int
		resp *messages.InferResponse
		err  error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			enc := bus.Encoding(i % 2)
			req := hello("gpt-5")
			req.RequestId = fmt.Sprintf("req-%d", i)
			body, err := bus.Encode(enc, req)
			if err != nil {
				results <- result{i: i, err: err}
				return
			}
			m, err := client.Request(subjects.Infer(), body, wait)
			if err != nil {
				results <- result{i: i, err: err}
				return
			}
			resp := new(messages.InferResponse)
			results <- result{i: i, resp: resp, err: bus.Decode(enc, m.Data, resp)}
		})
	}

	calls := make([]heldCall, 0, n)
	for range n {
		calls = append(calls, d.next(t))
	}
	assert.Equal(t, n, nd.in.InFlight(), "every request is in flight at once")
	rand.Shuffle(len(calls), func(i, j int) { calls[i], calls[j] = calls[j], calls[i] })
	for _, c := range calls {
		c.done(&messages.InferResponse{Content: "for " + c.req.GetRequestId(), ServedBy: c.req.GetModel()})
	}
	wg.Wait()
	close(results)

	seen := make(map[int]bool)
	for r := range results {
		if !assert.NoError(t, r.err, "request %d", r.i) {
			continue
		}
		want := fmt.Sprintf("req-%d", r.i)
		assert.Equal(t, want, r.resp.GetRequestId())
		assert.Equal(t, "for "+want, r.resp.GetContent())
		seen[r.i] = true
	}
	assert.Len(t, seen, n)
	assert.Equal(t, 0, nd.in.InFlight())
}

func TestIngressDiscoverable(t *testing.T) {
	_, client := setup(t, echoDispatcher{})
	infer(t, client, encode(t, bus.Protobuf, hello("gpt-5")), nil) // something to count

	subject, err := micro.ControlSubject(micro.InfoVerb, bus.ServiceName, "")
	require.NoError(t, err)
	require.Equal(t, "$SRV.INFO.hive", subject)
	m, err := client.Request(subject, nil, wait)
	require.NoError(t, err)
	var info micro.Info
	require.NoError(t, json.Unmarshal(m.Data, &info), "info %s", m.Data)
	assert.Equal(t, "hive", info.Name)
	assert.Equal(t, "1.2.3", info.Version)
	assert.Equal(t, "n1", info.Metadata["node"])
	require.Len(t, info.Endpoints, 1)
	ep := info.Endpoints[0]
	assert.Equal(t, "infer", ep.Name)
	assert.Equal(t, "hive.v1.infer", ep.Subject)
	assert.Equal(t, "hive", ep.QueueGroup)
	assert.Equal(t, "n1", ep.Metadata["node"])
	assert.Equal(t, "hive.v1.InferRequest", ep.Metadata["request"])
	assert.Equal(t, "hive.v1.InferChunk", ep.Metadata["chunk"])

	subject, err = micro.ControlSubject(micro.StatsVerb, bus.ServiceName, "")
	require.NoError(t, err)
	m, err = client.Request(subject, nil, wait)
	require.NoError(t, err)
	var stats micro.Stats
	require.NoError(t, json.Unmarshal(m.Data, &stats), "stats %s", m.Data)
	require.Len(t, stats.Endpoints, 1)
	assert.Equal(t, 1, stats.Endpoints[0].NumRequests)
	assert.JSONEq(t, `{"in_flight":0,"streaming":0,"replied":1,"errors":0,"abandoned":0,"streams":0,"chunks":0,"forwarded":0,"refused_replies":0}`,
		string(stats.Endpoints[0].Data))

	subject, err = micro.ControlSubject(micro.PingVerb, "", "")
	require.NoError(t, err)
	m, err = client.Request(subject, nil, wait)
	require.NoError(t, err)
	assert.Contains(t, string(m.Data), `"name":"hive"`)
}

// TestIngressStopWaitsForInFlight: Stop unsubscribes at once, so a new
// request finds no responder, yet it waits for the request already taken.
func TestIngressStopWaitsForInFlight(t *testing.T) {
	d := newQueueDispatcher()
	s := bustest.NewServer(t)
	nd := startNode(t, s, "n1", d)
	client := bustest.Connect(t, s)

	inbox := nats.NewInbox()
	replies, err := client.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, client.PublishRequest(subjects.Infer(), inbox, encode(t, bus.Protobuf, hello("gpt-5"))))
	held := d.next(t)

	stopped := make(chan error, 1)
	go func() { // owned by this test: it ends when Stop returns, waited for below
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		stopped <- nd.in.Stop(ctx)
	}()

	// The queue subscription goes away; no event says so, hence polling.
	acc := s.GlobalAccount()
	require.Eventually(t, func() bool { return acc.Interest(subjects.Infer()) == 0 }, wait, time.Millisecond,
		"the infer subscription is removed")
	_, err = client.Request(subjects.Infer(), encode(t, bus.Protobuf, hello("gpt-5")), wait)
	require.ErrorIs(t, err, nats.ErrNoResponders, "no new request is taken")

	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v with a request in flight", err)
	default:
	}
	assert.Equal(t, 1, nd.in.InFlight())

	held.done(&messages.InferResponse{Content: "late but served"})
	m, err := replies.NextMsg(wait)
	require.NoError(t, err)
	assert.Equal(t, "late but served", decodeReply(t, bus.Protobuf, m).GetContent())

	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatalf("Stop did not return after the last reply")
	}
	assert.Equal(t, 0, nd.in.InFlight())
	assert.Error(t, held.ctx.Err(), "the dispatch context ends with Stop")
	select {
	case c := <-d.calls:
		t.Fatalf("request %v dispatched after Stop", c.req)
	default:
	}
}

// TestIngressStopAbandons: when Stop's context ends first, the caller gets
// a node_stopping reply, Stop reports the count, and the dispatcher's late
// reply is dropped.
func TestIngressStopAbandons(t *testing.T) {
	d := newQueueDispatcher()
	nd, client := setup(t, d)

	inbox := nats.NewInbox()
	replies, err := client.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, client.PublishRequest(subjects.Infer(), inbox, encode(t, bus.JSON, hello("gpt-5"))))
	held := d.next(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the hard limit has already passed
	err = nd.in.Stop(ctx)
	require.ErrorIs(t, err, bus.ErrAbandoned)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "1 in-flight requests abandoned")
	assert.Error(t, held.ctx.Err(), "the dispatch context is cancelled")

	m, err := replies.NextMsg(wait)
	require.NoError(t, err)
	resp := decodeReply(t, bus.JSON, m)
	assert.Equal(t, messages.ErrorClass_no_capacity, resp.GetError().GetClass())
	assert.Equal(t, "node_stopping", resp.GetError().GetCode())
	assert.Equal(t, "503", m.Header.Get(micro.ErrorCodeHeader))

	// The late reply is dropped: the next message on the inbox, published
	// after it on the same connection, is the marker.
	held.done(&messages.InferResponse{Content: "too late"})
	require.NoError(t, nd.nc.Publish(inbox, []byte("marker")))
	m, err = replies.NextMsg(wait)
	require.NoError(t, err)
	assert.Equal(t, "marker", string(m.Data))
	assert.Equal(t, 0, nd.in.InFlight())
	assert.NoError(t, nd.in.Stop(context.Background()), "a second Stop is a no-op")
}

// TestIngressQueueGroup: two nodes share the subject; when one stops, the
// other serves everything.
func TestIngressQueueGroup(t *testing.T) {
	s := bustest.NewServer(t)
	a := startNode(t, s, "a", echoDispatcher{})
	startNode(t, s, "b", echoDispatcher{})
	client := bustest.Connect(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, a.in.Stop(ctx))
	for i := range 20 {
		resp := decodeReply(t, bus.Protobuf, infer(t, client, encode(t, bus.Protobuf, hello("gpt-5")), nil))
		assert.Equal(t, "b", resp.GetNode(), "request %d", i)
	}
}

func TestStartIngressValidates(t *testing.T) {
	s := bustest.NewServer(t)
	nc := bustest.Connect(t, s)
	tests := []struct {
		name string
		cfg  bus.IngressConfig
		want string
	}{
		{"no conn", bus.IngressConfig{Node: "n1", Dispatcher: echoDispatcher{}}, "Conn is required"},
		{"no dispatcher", bus.IngressConfig{Conn: nc, Node: "n1"}, "Dispatcher is required"},
		{"bad node", bus.IngressConfig{Conn: nc, Node: "n.1", Dispatcher: echoDispatcher{}}, `node name "n.1" contains '.'`},
		{"bad version", bus.IngressConfig{Conn: nc, Node: "n1", Version: "v1", Dispatcher: echoDispatcher{}}, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := bus.StartIngress(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, in)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
