package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// answerDispatcher answers each request from a goroutine of its own, at
// once, so that many replies are encoded and published at the same time:
// content is the request's last message repeated to the length the model
// name gives ("len-<n>"), or, for model "fail", a server_error naming it.
type answerDispatcher struct {
	wg sync.WaitGroup // the answering goroutines, waited for by the test
}

func (d *answerDispatcher) Dispatch(_ context.Context, req *messages.InferRequest, sink messages.Sink) {
	d.wg.Go(func() {
		last := req.GetMessages()[len(req.GetMessages())-1].GetContent()
		if req.GetModel() == "fail" {
			sink.Final(&messages.InferResponse{Error: messages.Failure(messages.ErrorClass_server_error, "upstream", "failed %s", last)})
			return
		}
		var n int
		if _, err := fmt.Sscanf(req.GetModel(), "len-%d", &n); err != nil {
			sink.Final(nil)
			return
		}
		sink.Final(&messages.InferResponse{Content: fill(last, n), ServedBy: req.GetModel()})
	})
}

// fill repeats s to exactly n bytes.
func fill(s string, n int) string { return strings.Repeat(s, n/len(s)+1)[:n] }

// TestIngressRepliesIntactUnderLoad: with many requests in flight, replies
// leave through pooled buffers and in bursts; each caller still gets its
// own reply, whole, with its own headers, in its encoding, whatever the
// size (some beyond the largest buffer kept for reuse) and whether it is
// an error.
func TestIngressRepliesIntactUnderLoad(t *testing.T) {
	const n = 300
	d := &answerDispatcher{}
	nd, client := setup(t, d)
	t.Cleanup(d.wg.Wait)

	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- checkedRequest(client, i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 0, nd.in.InFlight())
	assert.JSONEq(t, fmt.Sprintf(`{"in_flight":0,"streaming":0,"replied":%d,"errors":%d,"abandoned":0,"streams":0,"chunks":0,"forwarded":0,"refused_replies":0}`,
		n, n/10), statsData(t, client))
}

// checkedRequest sends request i (in JSON when i is odd; every tenth one
// fails; every seventh one's answer is 70 KiB) and checks its reply.
func checkedRequest(nc *nats.Conn, i int) error {
	enc := bus.Encoding(i % 2)
	id := fmt.Sprintf("req-%d", i)
	size := 1 + i*37
	if i%7 == 0 {
		size = 70 << 10
	}
	model := fmt.Sprintf("len-%d", size)
	if i%10 == 0 {
		model = "fail"
	}
	req := &messages.InferRequest{RequestId: id, Model: model, Messages: []*messages.ChatMessage{{Role: "user", Content: id + "/"}}}
	body, err := bus.Encode(enc, req)
	if err != nil {
		return err
	}
	m, err := nc.Request(subjects.Infer(), body, wait)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	resp := new(messages.InferResponse)
	if err := bus.Decode(enc, m.Data, resp); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	var problems []string
	check := func(what, got, want string) {
		if got != want {
			if len(got) > 80 {
				got = got[:80] + "..."
			}
			if len(want) > 80 {
				want = want[:80] + "..."
			}
			problems = append(problems, fmt.Sprintf("%s %q, want %q", what, got, want))
		}
	}
	check("request_id", resp.GetRequestId(), id)
	check("node", resp.GetNode(), "n1")
	check(bus.ContentTypeHeader, m.Header.Get(bus.ContentTypeHeader), enc.ContentType())
	check(bus.TypeHeader, m.Header.Get(bus.TypeHeader), "hive.v1.InferResponse")
	if model == "fail" {
		check("error", resp.GetError().GetMessage(), "failed "+id+"/")
		check(micro.ErrorCodeHeader, m.Header.Get(micro.ErrorCodeHeader), "502")
		check(micro.ErrorHeader, m.Header.Get(micro.ErrorHeader), "server_error: failed "+id+"/")
	} else {
		check("content", resp.GetContent(), fill(id+"/", size))
		check("served_by", resp.GetServedBy(), model)
		if e := resp.GetError(); e != nil {
			problems = append(problems, fmt.Sprintf("error %v, want none", e))
		}
		check(micro.ErrorCodeHeader, m.Header.Get(micro.ErrorCodeHeader), "")
		check(micro.ErrorHeader, m.Header.Get(micro.ErrorHeader), "")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s (%s): %s", id, enc, strings.Join(problems, "; "))
	}
	return nil
}

// TestIngressStopSendsAnsweredReplies: requests answered just before Stop
// have all had their replies handed to the connection by the time Stop
// returns, though the replies may have waited in the outbox.
func TestIngressStopSendsAnsweredReplies(t *testing.T) {
	const n = 100
	d := newQueueDispatcher()
	nd, client := setup(t, d)

	inbox := nats.NewInbox()
	replies, err := client.SubscribeSync(inbox)
	require.NoError(t, err)
	for i := range n {
		req := hello("gpt-5")
		req.RequestId = fmt.Sprintf("req-%d", i)
		require.NoError(t, client.PublishRequest(subjects.Infer(), inbox, encode(t, bus.Protobuf, req)))
	}
	calls := make([]heldCall, 0, n)
	for range n {
		calls = append(calls, d.next(t))
	}
	for _, c := range calls {
		c.done(&messages.InferResponse{Content: "for " + c.req.GetRequestId()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, nd.in.Stop(ctx))
	// Close writes out what the connection holds and nothing after: a
	// reply still in the outbox when Stop returned would be lost.
	nd.nc.Close()

	seen := make(map[string]bool)
	for range n {
		m, err := replies.NextMsg(wait)
		require.NoError(t, err)
		resp := decodeReply(t, bus.Protobuf, m)
		assert.Equal(t, "for "+resp.GetRequestId(), resp.GetContent())
		seen[resp.GetRequestId()] = true
	}
	assert.Len(t, seen, n, "one reply per request")
}
