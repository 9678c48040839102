package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// Defaults of IngressConfig and Stop.
const (
	// DefaultVersion is the service version registered when none is given.
	DefaultVersion = "0.0.0"
	// inferEndpoint is the endpoint name shown by `nats micro info hive`.
	inferEndpoint = "infer"
	// stopFlushTimeout bounds Stop's flush when its context has no deadline.
	stopFlushTimeout = 10 * time.Second
)

// Dispatcher receives the requests an Ingress decodes. Dispatch runs on the
// NATS callback, so it must not block: it hands req on and returns. ctx is
// cancelled when the ingress stops.
//
// The reply goes to sink (see messages.Sink, and sink.go for the NATS
// one): for a request with stream true, the answer's pieces, then Final;
// for the others, Final alone. The sink takes ownership of the response and fills in request_id
// and node when they are empty. If Stop had to give up on the request
// first, the caller already got a node_stopping reply and whatever the
// Dispatcher sends later is dropped.
type Dispatcher interface {
	Dispatch(ctx context.Context, req *messages.InferRequest, sink messages.Sink)
}

// IngressConfig configures StartIngress.
type IngressConfig struct {
	// Conn is the NATS connection the endpoint subscribes on; required.
	Conn *nats.Conn
	// Subjects gives the infer subject; the zero value uses prefix "hive".
	Subjects Subjects
	// Node is this node's name, a valid token (see ValidToken); required.
	Node string
	// Version is the SemVer version shown by `nats micro info`; default
	// "0.0.0".
	Version string
	// Dispatcher serves the decoded requests; required.
	Dispatcher Dispatcher
	// Logger receives the ingress's own events and should carry the node
	// key; the zero value discards them.
	Logger zerolog.Logger
	// Replies decides which reply subjects get an answer; nil allows
	// DefaultReplyPrefixes. A request whose reply subject it refuses is
	// dropped unserved.
	Replies *ReplyGuard
	// Models are the models this node serves. When set, the node also
	// answers hive.v1.infer.<model> for each of them (queue group "hive"),
	// and forwards a request for any other model that reaches it on
	// hive.v1.infer to that model's subject, so that a deployment of nodes
	// with different model sets answers every model one of them serves.
	// Empty: every request is served here, as by a node that has all.
	Models []string
}

// Ingress is the hive.v1.infer endpoint of one node: a micro service named
// "hive" with one endpoint "infer" in queue group "hive", so that every
// request reaches one node. It decodes each request, answers the ones it
// cannot accept at once, and forwards the rest to its Dispatcher; replies go
// out in the request's encoding whenever the Dispatcher completes, so many
// requests are in flight at once. Every decoded request gets exactly one
// reply, even during Stop.
//
// A request with stream true is answered with a sequence of InferChunk
// published to its reply subject, in its encoding, each with the
// Content-Type header, ending with exactly one final chunk (final true,
// outcome complete or incomplete). A final chunk with outcome incomplete
// also carries the micro error headers, as an error reply does, so that
// stock tools (`nats req`, micro clients) see the stream failed; the other
// chunks carry none. A stream request refused before dispatch (no model,
// node stopped) gets a single final chunk with the error; only a body that
// does not decode gets an InferResponse. Streams count as in flight like
// any request: Stop waits for them and, when it gives up, ends each with a
// node_stopping final chunk.
//
// nc.Request returns the first chunk only, so a client reads a stream from
// its own inbox subscription, made before the request is published so that
// no chunk is missed; chunks arrive in order:
//
//	inbox := nc.NewInbox() // under the connection's prefix (see ConnectOptions.InboxPrefix)
//	sub, err := nc.SubscribeSync(inbox)
//	defer sub.Unsubscribe()
//	err = nc.PublishRequest("hive.v1.infer", inbox, body) // body has stream true
//	for {
//		m, err := sub.NextMsg(timeout)
//		// nats.ErrNoResponders: no node serves the subject (the server's
//		// 503 status message, reported as nc.Request reports it);
//		// nats.ErrTimeout: nothing came in time.
//		chunk := new(messages.InferChunk) // bus.Decode per m's Content-Type
//		if chunk.GetFinal() {
//			break // outcome complete, or incomplete with chunk.Error
//		}
//	}
//
// Replies to dispatched requests are published directly on the connection
// with the micro error headers (Nats-Service-Error-Code and
// Nats-Service-Error) set by hand: micro's Request.Respond and Request.Error
// record their outcome in a field that micro's own callback reads right
// after the handler returns, so calling them later from another goroutine is
// a data race. The micro endpoint stats therefore count only the requests
// answered inside the callback as errors; the "data" of each endpoint's
// stats carries the ingress's own counters, streams included. While other
// requests are in flight, a plain reply goes out through the ingress's
// outbox, in a burst with the others (outbox.go).
type Ingress struct {
	nc         *nats.Conn
	node       string
	subjects   Subjects
	dispatcher Dispatcher
	log        zerolog.Logger
	svc        micro.Service
	replies    *ReplyGuard
	models     map[string]bool // nil: serve every model here
	forwards   sync.WaitGroup  // forward goroutines, waited for by Stop
	out        outbox          // replies of plain requests sent in bursts under load

	// ctx is handed to Dispatch; cancel ends it when Stop finishes.
	ctx    context.Context
	cancel context.CancelFunc

	stopMu sync.Mutex // serialises Stop

	mu      sync.Mutex // guards state, pending and idle; held with a sink's mu, it is taken first
	state   ingressState
	pending map[*sink]struct{} // dispatched requests not yet answered
	idle    chan struct{}      // set by Stop; closed when pending empties
	busy    atomic.Int64       // len(pending), read without mu by sink.Final

	replied   atomic.Int64 // replies sent, errors and final chunks included
	failed    atomic.Int64 // error replies and incomplete final chunks sent
	abandoned atomic.Int64 // requests and streams Stop ended with node_stopping
	streams   atomic.Int64 // stream requests dispatched
	chunks    atomic.Int64 // stream chunks sent, final ones included
	forwarded atomic.Int64 // requests for models this node lacks, taken by a node that has them
}

type ingressState int

const (
	running  ingressState = iota
	draining              // Stop began: no new deliveries, finishing in flight
	stopped               // Stop ended: any late delivery is refused
)

// ingressStats is the "data" of the infer endpoint in `nats micro stats`.
type ingressStats struct {
	InFlight  int   `json:"in_flight"`       // requests and streams not yet answered
	Streaming int   `json:"streaming"`       // of which streams
	Replied   int64 `json:"replied"`         // replies, a stream's final chunk counting as its reply
	Errors    int64 `json:"errors"`          // error replies and incomplete final chunks
	Abandoned int64 `json:"abandoned"`       // requests and streams Stop ended with node_stopping
	Streams   int64 `json:"streams"`         // stream requests dispatched
	Chunks    int64 `json:"chunks"`          // stream chunks sent, final ones included
	Forwarded int64 `json:"forwarded"`       // requests for models this node lacks, taken by a node that has them
	Refused   int64 `json:"refused_replies"` // requests dropped because their reply subject is not an inbox
}

// StartIngress registers the infer endpoint on c.Conn and starts taking
// requests; when it returns, the server has the subscription (unless the
// connection is down, which is logged). It fails when Conn or Dispatcher is
// missing, Node is not a valid token, Version is not SemVer, or the
// subscription cannot be made.
func StartIngress(c IngressConfig) (*Ingress, error) {
	switch {
	case c.Conn == nil:
		return nil, errors.New("ingress: Conn is required")
	case c.Dispatcher == nil:
		return nil, errors.New("ingress: Dispatcher is required")
	}
	if err := ValidToken("node", c.Node); err != nil {
		return nil, fmt.Errorf("ingress: Node: %w", err)
	}
	version := c.Version
	if version == "" {
		version = DefaultVersion
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &Ingress{
		nc:         c.Conn,
		node:       c.Node,
		subjects:   c.Subjects,
		dispatcher: c.Dispatcher,
		log:        c.Logger,
		replies:    c.Replies,
		ctx:        ctx,
		cancel:     cancel,
		state:      running,
		pending:    make(map[*sink]struct{}),
	}
	in.out.in = in
	svc, err := micro.AddService(c.Conn, micro.Config{
		Name:         ServiceName,
		Version:      version,
		Description:  "Hive resilience: AI model calls that survive model failures",
		Metadata:     map[string]string{"node": c.Node},
		QueueGroup:   QueueGroup,
		StatsHandler: func(*micro.Endpoint) any { return in.stats() },
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("register service %s: %w", ServiceName, err)
	}
	subject := c.Subjects.Infer()
	meta := func(model string) map[string]string {
		m := map[string]string{
			"node":      c.Node,
			"request":   TypeName((*messages.InferRequest)(nil)),
			"response":  TypeName((*messages.InferResponse)(nil)),
			"chunk":     TypeName((*messages.InferChunk)(nil)),
			"encodings": contentTypeProtobuf + " " + contentTypeJSON,
		}
		if model != "" {
			m["model"] = model
		}
		return m
	}
	err = svc.AddEndpoint(inferEndpoint, micro.HandlerFunc(func(r micro.Request) { in.handle(r, false) }),
		micro.WithEndpointSubject(subject),
		micro.WithEndpointQueueGroup(QueueGroup),
		micro.WithEndpointMetadata(meta("")))
	if err == nil && len(c.Models) > 0 {
		in.models = make(map[string]bool, len(c.Models))
		for _, m := range c.Models {
			if err = ValidToken("model", m); err != nil {
				break
			}
			in.models[m] = true
			subject = c.Subjects.InferModel(m)
			err = svc.AddEndpoint(inferEndpoint+"-"+m, micro.HandlerFunc(func(r micro.Request) { in.handle(r, true) }),
				micro.WithEndpointSubject(subject),
				micro.WithEndpointQueueGroup(QueueGroup),
				micro.WithEndpointMetadata(meta(m)))
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		cancel()
		if stopErr := svc.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	in.svc = svc
	// Make sure the server has the subscription, so that a request sent
	// once StartIngress returns finds this node. While reconnecting, the
	// client sends it when the connection is back.
	if err := c.Conn.Flush(); err != nil {
		in.log.Warn().Err(err).Str("subject", subject).Msg("infer subscription not confirmed by the server")
	}
	return in, nil
}

// handle is the NATS callback: check the reply subject, decode, answer what
// cannot be accepted, and hand the rest on: to the Dispatcher, or, for a
// model this node lacks, to the nodes that serve it (direct is set on a
// model's own subject, which is never forwarded again). Nothing else
// happens here.
func (in *Ingress) handle(r micro.Request, direct bool) {
	h := nats.Header(r.Headers())
	reply := r.Reply()
	if reply == "" {
		in.log.Debug().Msg("infer request without a reply subject dropped")
		return
	}
	if !in.replies.Check(inferEndpoint, r.Subject(), reply) {
		return
	}
	// A forwarded request is answered where its first node was asked to
	// answer; the forwarding node only waits for the ack on reply.
	if to := headerValue(h, forwardReplyHeader); to != "" && direct {
		if !in.replies.Check(inferEndpoint, r.Subject(), to) {
			return
		}
		if err := r.Respond(nil, micro.WithHeaders(micro.Headers{TypeHeader: []string{forwardAckType}})); err != nil {
			in.log.Warn().Err(err).Msg("forwarded request not acknowledged; served anyway")
		}
		reply = to
	}
	body := r.Data()
	enc := DetectEncoding(h, body)
	req := new(messages.InferRequest)
	if t := headerValue(h, TypeHeader); t != "" && t != TypeName(req) {
		in.refuseTo(r, reply, enc, nil, messages.Failure(messages.ErrorClass_bad_request, "wrong_type",
			"%s is %q; the infer subject takes %s", TypeHeader, printableHeader(t), TypeName(req)))
		return
	}
	if err := decodeRequest(enc, body, req); err != nil {
		// Whether it asked for a stream is unknown: the reply is an
		// InferResponse.
		in.refuseTo(r, reply, enc, nil, messages.Failure(messages.ErrorClass_bad_request, "malformed_request", "%v", err))
		return
	}
	if req.RequestId == "" {
		req.RequestId = nuid.Next()
	}
	if p := messages.CheckRequest(req); p != nil {
		in.refuseTo(r, reply, enc, req, p.Error())
		return
	}
	if in.models != nil && !in.models[req.Model] && !direct {
		in.forward(r, reply, enc, req)
		return
	}

	rp := &sink{in: in, subject: reply, enc: enc, requestID: req.RequestId, stream: req.Stream}
	in.mu.Lock()
	if in.state == stopped {
		in.mu.Unlock()
		in.refuseTo(r, reply, enc, req, nodeStopping())
		return
	}
	in.pending[rp] = struct{}{}
	in.busy.Store(int64(len(in.pending)))
	in.mu.Unlock()

	if rp.stream {
		in.streams.Add(1)
	}
	in.dispatcher.Dispatch(in.ctx, req, rp)
}

// refuseTo answers r with an error reply on to: inside the callback through
// micro's Request.Error, so that micro counts it and sets the error
// headers, when to is r's own reply subject; else (a forwarded request)
// published there with the same headers. The reply to a stream request is
// its one and final chunk, so that a streaming client always reads
// InferChunk; req is nil when the body did not decode, and then the reply
// is an InferResponse.
func (in *Ingress) refuseTo(r micro.Request, to string, enc Encoding, req *messages.InferRequest, e *messages.Error) {
	requestID := req.GetRequestId()
	var reply proto.Message = &messages.InferResponse{RequestId: requestID, Node: in.node, Error: e}
	if req.GetStream() {
		reply = &messages.InferChunk{RequestId: requestID, Seq: 1, Final: true,
			Outcome: messages.InferChunk_incomplete, Error: e}
	}
	body, err := Encode(enc, reply)
	if err != nil {
		in.log.Error().Err(err).Msg("infer error reply not encoded")
	}
	code, desc := errorHeaders(e)
	if to != r.Reply() {
		h := nats.Header{ContentTypeHeader: []string{enc.ContentType()}, TypeHeader: []string{TypeName(reply)},
			micro.ErrorCodeHeader: []string{code}, micro.ErrorHeader: []string{desc}}
		if err := in.nc.PublishMsg(&nats.Msg{Subject: to, Header: h, Data: body}); err != nil {
			in.log.Warn().Err(err).Str("request_id", requestID).Msg("infer reply not sent")
			return
		}
		in.replied.Add(1)
		in.failed.Add(1)
		return
	}
	ct := micro.WithHeaders(micro.Headers{ContentTypeHeader: []string{enc.ContentType()}, TypeHeader: []string{TypeName(reply)}})
	if err := r.Error(code, desc, body, ct); err != nil {
		in.log.Warn().Err(err).Str("request_id", requestID).Msg("infer reply not sent")
		return
	}
	in.replied.Add(1)
	in.failed.Add(1)
	in.log.Debug().Str("request_id", requestID).Str("code", e.GetCode()).Msg("infer request refused")
}

// release forgets an answered request and wakes Stop when none is left.
func (in *Ingress) release(r *sink) {
	in.mu.Lock()
	delete(in.pending, r)
	in.busy.Store(int64(len(in.pending)))
	if len(in.pending) == 0 && in.idle != nil {
		close(in.idle)
		in.idle = nil
	}
	in.mu.Unlock()
}

// errorHeaders gives the micro error headers for e: the code is the class's
// HTTP-like status, the description "<class>: <message>" on one line.
func errorHeaders(e *messages.Error) (code, description string) {
	description = e.GetClass().String()
	if m := e.GetMessage(); m != "" {
		description += ": " + m
	}
	// A header value must not break the header block.
	description = strings.NewReplacer("\r", " ", "\n", " ").Replace(description)
	return strconv.Itoa(e.GetClass().Status()), description
}

// nodeStopping is the error of a request the node stopped before serving.
// Its class is no_capacity: this node has none left, another node may.
func nodeStopping() *messages.Error {
	return messages.Failure(messages.ErrorClass_no_capacity, "node_stopping", "the node stopped before the request was served")
}

// InFlight returns the number of dispatched requests not yet answered,
// open streams included.
func (in *Ingress) InFlight() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.pending)
}

func (in *Ingress) stats() ingressStats {
	in.mu.Lock()
	inFlight, streaming := 0, 0
	for r := range in.pending {
		switch {
		case r.stream:
			streaming++
			inFlight++
		case !r.ended.Load(): // an ended request has its reply and is only being sent
			inFlight++
		}
	}
	in.mu.Unlock()
	return ingressStats{
		InFlight:  inFlight,
		Streaming: streaming,
		Replied:   in.replied.Load(),
		Errors:    in.failed.Load(),
		Abandoned: in.abandoned.Load(),
		Streams:   in.streams.Load(),
		Chunks:    in.chunks.Load(),
		Forwarded: in.forwarded.Load(),
		Refused:   in.replies.Refused(),
	}
}

// Leave takes the node out of the infer queue group without stopping
// anything else: the micro service is stopped (so `nats micro ls` no longer
// lists the node), requests already delivered are still served and
// answered, and once Leave returns the server routes no new request here
// (the unsubscription was flushed). It is what an operator's drain does;
// Stop still ends the ingress at shutdown. Leave may run on a NATS callback.
func (in *Ingress) Leave(ctx context.Context) error {
	if err := in.svc.Stop(); err != nil {
		return fmt.Errorf("stop service %s: %w", ServiceName, err)
	}
	if err := in.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("leave queue group: flush: %w", err)
	}
	return nil
}

// Stop stops taking requests and waits for the ones in flight. It stops the
// micro service first, so the queue subscription goes away and other nodes
// get the traffic, then lets the requests already delivered to this node
// through, and waits until every dispatched request is answered and every
// stream has sent its final chunk, or ctx ends. When ctx ends first, each
// request still in flight is answered with {no_capacity, "node_stopping"},
// each open stream gets a final chunk {outcome incomplete, error
// {no_capacity, "node_stopping"}} and drops what comes later, the Dispatcher's
// context is cancelled, and the error (matching ErrAbandoned and ctx's
// error) says how many there were. A second Stop returns nil.
func (in *Ingress) Stop(ctx context.Context) error {
	in.stopMu.Lock()
	defer in.stopMu.Unlock()
	in.mu.Lock()
	if in.state == stopped {
		in.mu.Unlock()
		return nil
	}
	in.state = draining
	in.mu.Unlock()

	var errs []error
	if err := in.svc.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stop service %s: %w", ServiceName, err))
	}
	in.quiesce(ctx)
	in.waitForwards(ctx)
	in.waitIdle(ctx)
	abandoned := in.giveUp()
	in.out.wait(ctx) // the replies of requests that ended before giveUp
	in.cancel()
	for _, r := range abandoned {
		r.stopped()
		in.release(r)
	}
	if n := len(abandoned); n > 0 {
		in.abandoned.Add(int64(n))
		errs = append(errs, fmt.Errorf("%d %w: %w", n, ErrAbandoned, context.Cause(ctx)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("stop ingress: %w", errors.Join(errs...))
	}
	return nil
}

// quiesce returns once every message the server sent to the endpoint before
// it processed the unsubscribe has gone through handle, or when ctx ends.
// A flush proves the server has nothing more in flight to us; a barrier
// then runs after every message already queued on the connection's
// subscriptions has been handled. The barrier waits on all of the
// connection's subscriptions, so a blocked callback elsewhere delays it;
// ctx bounds that.
func (in *Ingress) quiesce(ctx context.Context) {
	fctx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		fctx, cancel = context.WithTimeout(ctx, stopFlushTimeout)
	}
	defer cancel()
	if err := in.nc.FlushWithContext(fctx); err != nil {
		in.log.Debug().Err(err).Msg("ingress stop: flush failed, relying on the barrier")
	}
	passed := make(chan struct{})
	if err := in.nc.Barrier(func() { close(passed) }); err != nil {
		return // the connection is closed: nothing more will be delivered
	}
	select {
	case <-passed:
	case <-ctx.Done():
	}
}

// waitIdle waits until no dispatched request is left or ctx ends.
func (in *Ingress) waitIdle(ctx context.Context) {
	in.mu.Lock()
	if len(in.pending) == 0 {
		in.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	in.idle = idle
	in.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// giveUp marks the ingress stopped and claims every request not yet
// answered, so that Stop answers them and what their Dispatcher sends
// later is dropped.
func (in *Ingress) giveUp() []*sink {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.state = stopped
	in.idle = nil
	var out []*sink
	for r := range in.pending {
		if r.abandon() {
			out = append(out, r)
		}
	}
	return out
}
