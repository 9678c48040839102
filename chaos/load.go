package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/config"
	"github.com/cmmv-hive/resilience/messages"
)

// lostGrace is how long past its deadline the runner waits for a reply
// before it counts a request lost: a node that is up answers by the
// deadline (deadlineMs), with an error if it must.
const lostGrace = time.Second

// loadGen drives a scenario's load over NATS and records every request.
type loadGen struct {
	load     Load
	subjects bus.Subjects
	conns    []*nats.Conn
	rec      *recorder
	// expect gives the full answer a model must return for a prompt,
	// for the models whose answer is known (sim); nil for the others.
	expect map[string]func(prompt string) string
	// issue ends when no more requests may start (the load's end, an
	// interruption); abandon ends when the requests in flight are given up
	// (an interruption).
	issue, abandon context.Context
	wg             sync.WaitGroup
	// runID makes the run's idempotency keys its own: a deployment keeps
	// keys for its idempotency window, across runs.
	runID string
	hub   *jobHub // the announcements of ended jobs; nil unless the load is of jobs
}

// expectations returns the answer each sim model of cfg gives: its
// configured reply, or "<model> (simulated) received: <prompt>".
func expectations(cfg *config.Config) map[string]func(string) string {
	out := map[string]func(string) string{}
	if cfg == nil {
		return out
	}
	for name, m := range cfg.Models {
		if m.Provider != config.ProviderSim {
			continue
		}
		if reply := m.Sim.Reply; reply != "" {
			out[name] = func(string) string { return reply }
			continue
		}
		out[name] = func(prompt string) string { return name + " (simulated) received: " + prompt }
	}
	return out
}

// run starts requests until the load's duration has passed or issue ends,
// then waits for the last replies.
func (g *loadGen) run() {
	if g.load.Rate > 0 {
		g.openLoop()
	} else {
		g.closedLoop()
	}
	g.wg.Wait()
}

// openLoop starts request i at t0 + i/rate, whatever the replies do.
func (g *loadGen) openLoop() {
	rng := rand.New(rand.NewPCG(1, 7))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; ; i++ {
		offset := time.Duration(float64(i) / g.load.Rate * float64(time.Second))
		if offset >= g.load.Duration {
			return
		}
		if wait := time.Until(g.rec.t0.Add(offset)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-g.issue.Done():
				return
			}
		} else if g.issue.Err() != nil {
			return
		}
		model, stream, tools := g.pick(rng)
		nc := g.conns[i%len(g.conns)]
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.send(nc, i, model, stream, tools)
		}()
	}
}

// closedLoop keeps Concurrency requests in flight: each worker sends its
// next request when the previous one ends.
func (g *loadGen) closedLoop() {
	var seq sync.Mutex
	next := 0
	for w := range g.load.Concurrency {
		nc := g.conns[w%len(g.conns)]
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, 7))
			for time.Since(g.rec.t0) < g.load.Duration && g.issue.Err() == nil {
				seq.Lock()
				i := next
				next++
				seq.Unlock()
				model, stream, tools := g.pick(rng)
				g.send(nc, i, model, stream, tools)
			}
		}()
	}
}

// pick draws a model by weight, whether to stream, and whether to send
// tools (drawn only when toolsShare is set, so that other loads draw as
// they always did).
func (g *loadGen) pick(rng *rand.Rand) (string, bool, bool) {
	total := 0.0
	for _, m := range g.load.Mix {
		total += m.Weight
	}
	x := rng.Float64() * total
	model := g.load.Mix[len(g.load.Mix)-1].Model
	for _, m := range g.load.Mix {
		if x < m.Weight {
			model = m.Model
			break
		}
		x -= m.Weight
	}
	stream := g.load.StreamShare > 0 && rng.Float64() < g.load.StreamShare
	return model, stream, g.load.ToolsShare > 0 && rng.Float64() < g.load.ToolsShare
}

// loadTools is the tools array of a request sent with tools: one function
// the models never call (sim models take no tools), enough to make the
// router treat the request as one a splice would corrupt.
const loadTools = `[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{}}}}]`

// send makes request i (or submits job i) and records how it ended.
func (g *loadGen) send(nc *nats.Conn, i int, model string, stream, tools bool) {
	id := "chaos-" + strconv.Itoa(i)
	prompt := "chaos request " + strconv.Itoa(i)
	req := &messages.InferRequest{
		RequestId:  id,
		Model:      model,
		Messages:   []*messages.ChatMessage{{Role: "user", Content: prompt}},
		Stream:     stream,
		DeadlineMs: int32(g.load.Timeout / time.Millisecond),
	}
	if tools {
		req.Tools = loadTools
	}
	if g.load.IdempotencyKeys {
		req.IdempotencyKey = "chaos-" + g.runID + "-" + strconv.Itoa(i)
	}
	start := time.Now()
	r := Request{ID: id, Model: model, Streamed: stream, Tools: tools, Start: start.Sub(g.rec.t0), Keyed: req.IdempotencyKey != ""}
	r.Warmup = r.Start < g.load.Warmup
	g.rec.started.Add(1)
	if g.load.Kind == LoadJobs {
		g.job(nc, req, &r, prompt)
	} else {
		body, err := bus.Encode(bus.Protobuf, req)
		ctx, cancel := context.WithTimeout(g.abandon, g.load.Timeout+lostGrace)
		switch {
		case err != nil:
			r.Outcome, r.ErrorClass, r.ErrorCode = Failed, ClassTransport, err.Error()
		case stream:
			r.Sends = 1
			g.stream(ctx, nc, body, &r, prompt)
		default:
			g.plain(ctx, nc, body, &r, prompt)
		}
		cancel()
	}
	r.End = time.Since(g.rec.t0)
	g.rec.request(r)
}

// attempt is the context of the n-th send of a request: it waits
// Retry.After, except the last send, which waits for the rest of ctx.
func (g *loadGen) attempt(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	if !g.retries(n) {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.load.Retry.After)
}

// retries reports whether the n-th send may be followed by another.
func (g *loadGen) retries(n int) bool {
	return g.load.Retry.After > 0 && n < g.load.Retry.Attempts
}

// again reports whether the n-th send, which failed with err, is sent
// once more: it got no answer within its own wait, and the request's
// deadline is not over.
func (g *loadGen) again(ctx context.Context, n int, err error) bool {
	return g.retries(n) && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout))
}

// plain sends the request and reads its reply; with load.retry, it sends
// it again (the same body, so the same idempotency key) each time an
// attempt gets no reply in time.
func (g *loadGen) plain(ctx context.Context, nc *nats.Conn, body []byte, r *Request, prompt string) {
	msg := nats.NewMsg(g.subjects.Infer())
	msg.Header.Set(bus.ContentTypeHeader, bus.Protobuf.ContentType())
	msg.Data = body
	var m *nats.Msg
	var err error
	for {
		r.Sends++
		actx, cancel := g.attempt(ctx, r.Sends)
		m, err = nc.RequestMsgWithContext(actx, msg)
		cancel()
		if err == nil || !g.again(ctx, r.Sends, err) {
			break
		}
	}
	if err != nil {
		g.failure(err, r)
		return
	}
	resp := &messages.InferResponse{}
	if err := bus.Decode(bus.DetectEncoding(m.Header, m.Data), m.Data, resp); err != nil {
		r.Outcome, r.ErrorClass = Failed, ClassUndecodable
		return
	}
	r.ServedBy, r.Node, r.Attempts, r.Replayed = resp.GetServedBy(), resp.GetNode(), attempts(resp.GetAttempts()), resp.GetReplayed()
	if e := resp.GetError(); e != nil {
		r.Outcome, r.ErrorClass, r.ErrorCode = Failed, e.GetClass().String(), e.GetCode()
		return
	}
	g.judge(r, resp.GetContent(), prompt)
}

// stream reads a streamed answer from an inbox of its own until the final
// chunk, as the Ingress doc comment shows.
func (g *loadGen) stream(ctx context.Context, nc *nats.Conn, body []byte, r *Request, prompt string) {
	inbox := nc.NewInbox() // under the connection's inbox prefix, which its permissions may require
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		g.failure(err, r)
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(g.subjects.Infer())
	msg.Reply = inbox
	msg.Header.Set(bus.ContentTypeHeader, bus.Protobuf.ContentType())
	msg.Data = body
	if err := nc.PublishMsg(msg); err != nil {
		g.failure(err, r)
		return
	}
	var content strings.Builder
	var by []piece // who wrote which text, for a stream another model continued
	gap := false
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			g.failure(err, r)
			return
		}
		chunk := &messages.InferChunk{}
		if err := bus.Decode(bus.DetectEncoding(m.Header, m.Data), m.Data, chunk); err != nil {
			r.Outcome, r.ErrorClass = Failed, ClassUndecodable
			return
		}
		r.Chunks++
		gap = gap || chunk.GetSeq() != uint32(r.Chunks)
		content.WriteString(chunk.GetDelta())
		if !chunk.GetFinal() {
			if d := chunk.GetDelta(); d != "" {
				by = append(by, piece{model: chunk.GetServedBy(), text: d})
			}
			continue
		}
		r.ServedBy, r.Attempts, r.Continuation = chunk.GetServedBy(), attempts(chunk.GetAttempts()), chunk.GetContinuation()
		if n := len(r.Attempts); n > 0 {
			r.Node = r.Attempts[n-1].Node
		}
		if chunk.GetOutcome() != messages.InferChunk_complete {
			r.Outcome, r.ErrorClass = Failed, messages.ErrorClass_stream_cut.String()
			if e := chunk.GetError(); e != nil {
				r.ErrorClass, r.ErrorCode = e.GetClass().String(), e.GetCode()
			}
			return
		}
		if gap {
			r.Outcome, r.ErrorClass, r.ErrorCode = Truncated, ClassTruncated, "chunk_missing"
			r.Content = content.String()[:min(content.Len(), 300)]
			return
		}
		if r.Continuation == "complete" {
			g.judgeSplice(r, content.String(), prompt, by)
			return
		}
		g.judge(r, content.String(), prompt)
		return
	}
}

// piece is the text of one chunk and the model that wrote it.
type piece struct{ model, text string }

// judgeSplice judges a stream another model finished after a cut: the
// text of the models cut (every piece before the first of the model that
// served) and the continuation. When the cut model and the one that
// served give the same answer, the splice must be that answer exactly, the
// white space between the two parts once. When they differ (sim models
// answering with their own names) the whole cannot be known, so the
// parts are checked: the cut part a prefix of the cut model's answer, and
// the continuation the end of the serving model's (a sim continues with
// the rest of its answer when its answer begins with the partial one, and
// gives it whole otherwise), neither empty.
func (g *loadGen) judgeSplice(r *Request, content, prompt string, by []piece) {
	cutModel, cut := "", 0
	for _, p := range by {
		if p.model == r.ServedBy {
			break
		}
		if cutModel == "" {
			cutModel = p.model
		}
		cut += len(p.text)
	}
	wantCut, okCut := g.expect[cutModel]
	wantServed, okServed := g.expect[r.ServedBy]
	switch {
	case !okCut || !okServed:
		if content == "" {
			r.Outcome, r.ErrorClass, r.ErrorCode = Truncated, ClassTruncated, "content_mismatch"
			return
		}
		r.Outcome = OK
		return
	case wantCut(prompt) == wantServed(prompt):
		g.judge(r, content, prompt)
		return
	}
	head, tail := content[:cut], content[cut:]
	if cut == 0 || tail == "" || !strings.HasPrefix(wantCut(prompt), head) || !strings.HasSuffix(wantServed(prompt), tail) {
		r.Outcome, r.ErrorClass, r.ErrorCode = Truncated, ClassTruncated, "splice_mismatch"
		r.Content = content[:min(len(content), 300)]
		return
	}
	r.Outcome = OK
}

// judge marks an answer given as a success: OK when it is the whole
// answer (when the runner knows it), Truncated when it is not.
func (g *loadGen) judge(r *Request, content, prompt string) {
	if want, ok := g.expect[r.ServedBy]; ok && content != want(prompt) || content == "" {
		r.Outcome, r.ErrorClass, r.ErrorCode = Truncated, ClassTruncated, "content_mismatch"
		r.Content = content[:min(len(content), 300)]
		return
	}
	r.Outcome = OK
}

// failure records a request that got no usable reply.
func (g *loadGen) failure(err error, r *Request) {
	switch {
	case g.abandon.Err() != nil:
		r.Outcome = Abandoned
	case errors.Is(err, nats.ErrNoResponders):
		r.Outcome, r.ErrorClass = Failed, ClassNoResponders
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		r.Outcome, r.ErrorClass = Lost, ClassLost
	default:
		r.Outcome, r.ErrorClass, r.ErrorCode = Failed, ClassTransport, err.Error()
	}
}

func attempts(as []*messages.Attempt) []Attempt {
	out := make([]Attempt, len(as))
	for i, a := range as {
		out[i] = Attempt{Model: a.GetModel(), Node: a.GetNode(), Class: a.GetErrorClass().String(), Continued: a.GetContinued()}
		if a.GetSkipped() != messages.Attempt_called {
			out[i].Class = "skipped" // never called: the router skipped it for its limits
		}
	}
	return out
}
