package bus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/cmmv-hive/resilience/messages"
)

// The audit commands of chaos: the last token of
// hive.v1.events.admin.<node>.<command> for an applied inject or clear.
const (
	CmdChaosInject = "chaos_inject"
	CmdChaosClear  = "chaos_clear"
)

// ActorHeader is the header a chaos client may set to say who it is; the
// node records it, marked "(claimed)", when the server vouches for no user
// (see Admin). ChaosRequest sets it to the connection's name.
const ActorHeader = "Hive-Actor"

// ChaosHandler applies faults on one node. Its methods run on the NATS
// callbacks of the chaos subscriptions, those of the node's own subjects
// and of "all" possibly at the same time, and must not block.
type ChaosHandler interface {
	// Inject applies spec, which carries its id, and whose id and model
	// are valid subject tokens (the rest of it is the handler's to check).
	// start, when not nil, is called once the ack and the audit event have
	// reached the server: a fault that cuts the node off (a partition, a
	// kill) begins there, so that its ack is never lost. An error matching
	// ErrInvalidFault is a spec the handler refuses, answered
	// bad_request/invalid_fault; one matching errors.ErrUnsupported is a
	// fault this node cannot apply, answered bad_request/unsupported.
	Inject(spec *messages.FaultSpec) (start func(), err error)
	// Describe is a one-line description of spec, for the log and the
	// audit trail.
	Describe(spec *messages.FaultSpec) string
	// Clear ends the fault id, or every fault when id is "". Clearing a
	// fault that is not there is not an error.
	Clear(id string) error
	// Active returns the ids of the faults injected and not yet over.
	Active() []string
}

// ChaosConfig configures StartChaos.
type ChaosConfig struct {
	Conn     *nats.Conn // required
	Subjects Subjects
	Node     string       // this node's name; required
	Handler  ChaosHandler // required
	Logger   zerolog.Logger
	// Events, when set, gives the encoding of the audit records (the
	// node's event encoding); nil means JSON.
	Events *Events
	// Replies decides which reply subjects get an answer; nil allows
	// DefaultReplyPrefixes. A request whose reply subject it refuses is
	// not carried out.
	Replies *ReplyGuard
}

// Chaos answers hive.v1.chaos.<node>.inject and .clear, and
// hive.v1.chaos.all.inject and .clear (every node answers those, so a
// client gathers one ack per node). The body is a FaultSpec, protobuf or
// JSON as for infer (for a clear, only its id matters: none clears every
// fault; an empty body too); the reply a FaultAck in the same encoding,
// with the fault's id (assigned when the spec has none), the ids active
// after the change, or an error: bad_request with code malformed_spec,
// invalid_fault (an id or model that is not a subject token, or a spec the
// handler refuses) or unsupported. Chaos carries faults; what a fault
// means, and which are valid, is the handler's (providers/fault).
//
// A node starts Chaos only when chaos is enabled in its configuration;
// otherwise nothing answers these subjects. Every applied inject and
// clear is published on hive.v1.events.admin.<node>.chaos_inject or
// .chaos_clear as an AdminCommand (model, a one-line description of the
// fault as its reason, who asked as its actor, as Admin does), so the
// audit trail keeps it. Restrict who may publish on chaos subjects with
// NATS permissions (see deploy/nats-server.conf).
type Chaos struct {
	cfg  ChaosConfig
	subs []*nats.Subscription
}

// StartChaos subscribes the chaos subjects of cfg.Node and of "all".
func StartChaos(cfg ChaosConfig) (*Chaos, error) {
	switch {
	case cfg.Conn == nil:
		return nil, errors.New("bus: ChaosConfig.Conn is required")
	case cfg.Handler == nil:
		return nil, errors.New("bus: ChaosConfig.Handler is required")
	}
	if err := ValidToken("node", cfg.Node); err != nil {
		return nil, fmt.Errorf("bus: chaos: %w", err)
	}
	c, s := &Chaos{cfg: cfg}, cfg.Subjects
	subs, err := subscribeAll(cfg.Conn, c.handle, s.ChaosInject(cfg.Node), s.ChaosInject(allNodes), s.ChaosClear(cfg.Node), s.ChaosClear(allNodes))
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	c.subs = subs
	return c, nil
}

// Stop unsubscribes.
func (c *Chaos) Stop() { unsubscribeAll(c.subs) }

// startFlush bounds the wait for the server to have the ack before a
// fault that cuts the node off begins.
const startFlush = 2 * time.Second

func (c *Chaos) handle(msg *nats.Msg) {
	if msg.Reply != "" && !c.cfg.Replies.Check("chaos", msg.Subject, msg.Reply) {
		return
	}
	inject := strings.HasSuffix(msg.Subject, ".inject")
	enc := DetectEncoding(msg.Header, msg.Data)
	spec := &messages.FaultSpec{}
	ack, start := c.run(inject, enc, msg, spec)
	ack.Node = c.cfg.Node
	log := c.cfg.Logger.With().Str("fault", ack.GetFaultId()).Logger()
	if ack.Ok {
		c.audit(inject, msg.Header, spec)
		if inject {
			log.Info().Str("fault_spec", c.cfg.Handler.Describe(spec)).Msg("chaos: fault injected")
		} else {
			log.Info().Strs("active", ack.GetActive()).Msg("chaos: faults cleared")
		}
	}
	if msg.Reply != "" {
		c.reply(msg.Reply, enc, ack)
	}
	if start == nil {
		return
	}
	if err := c.cfg.Conn.FlushTimeout(startFlush); err != nil {
		log.Warn().Err(err).Msg("chaos: the ack may not have left before the fault began")
	}
	start()
}

// run decodes and carries out one inject or clear.
func (c *Chaos) run(inject bool, enc Encoding, msg *nats.Msg, spec *messages.FaultSpec) (*messages.FaultAck, func()) {
	if err := CheckType(msg.Header, spec); err != nil {
		return chaosError(messages.ErrorClass_bad_request, "wrong_type", "refused: %v (hive-node chaos and the chaos runner set it)", err), nil
	}
	if len(msg.Data) > 0 {
		if err := Decode(enc, msg.Data, spec); err != nil {
			return chaosError(messages.ErrorClass_bad_request, "malformed_spec", "the body is not a FaultSpec in %s: %v", enc, err), nil
		}
	}
	h := c.cfg.Handler
	if !inject {
		if err := h.Clear(spec.GetId()); err != nil {
			return chaosError(messages.ErrorClass_server_error, "failed", "%v", err), nil
		}
		return &messages.FaultAck{Ok: true, FaultId: spec.GetId(), Active: h.Active()}, nil
	}
	if spec.GetId() == "" {
		spec.Id = NewFaultID()
	}
	if err := checkFaultTokens(spec); err != nil {
		return chaosError(messages.ErrorClass_bad_request, "invalid_fault", "%v", err), nil
	}
	start, err := h.Inject(spec)
	switch {
	case errors.Is(err, ErrInvalidFault):
		return chaosError(messages.ErrorClass_bad_request, "invalid_fault", "%v", err), nil
	case errors.Is(err, errors.ErrUnsupported):
		return chaosError(messages.ErrorClass_bad_request, "unsupported", "%v", err), nil
	case err != nil:
		return chaosError(messages.ErrorClass_server_error, "failed", "%v", err), nil
	}
	return &messages.FaultAck{Ok: true, FaultId: spec.GetId(), Active: h.Active()}, start
}

func (c *Chaos) reply(subject string, enc Encoding, ack *messages.FaultAck) {
	if err := publish(c.cfg.Conn, subject, enc, ack); err != nil {
		c.cfg.Logger.Warn().Err(err).Msg("chaos ack not sent")
	}
}

// audit publishes an applied inject or clear on
// hive.v1.events.admin.<node>.chaos_inject or .chaos_clear.
func (c *Chaos) audit(inject bool, h nats.Header, spec *messages.FaultSpec) {
	command, reason := CmdChaosClear, "clear every fault"
	if spec.GetId() != "" {
		reason = "clear fault " + spec.GetId()
	}
	if inject {
		command, reason = CmdChaosInject, c.cfg.Handler.Describe(spec)
	}
	cmd := &messages.AdminCommand{Model: spec.GetModel(), Reason: reason, Actor: actorOf(h, headerValue(h, ActorHeader))}
	if inject {
		cmd.DurationMs = spec.GetDurationMs()
	}
	if err := publish(c.cfg.Conn, c.cfg.Subjects.AdminAudit(c.cfg.Node, command), c.cfg.Events.Encoding(), cmd); err != nil {
		c.cfg.Logger.Warn().Err(err).Str("command", command).Msg("chaos audit event not published")
	}
}

func chaosError(class messages.ErrorClass, code, format string, args ...any) *messages.FaultAck {
	return &messages.FaultAck{Error: messages.Failure(class, code, format, args...)}
}

// NewFaultID returns a fresh fault id, "f" and 12 hexadecimal digits: a
// valid subject token, unique enough that a fault injected on every node
// keeps one id everywhere.
func NewFaultID() string {
	return fmt.Sprintf("f%012x", rand.Uint64()&(1<<48-1))
}

// checkFaultTokens checks the parts of a FaultSpec that end up in
// subjects and events: its id, and its model ("" and "*" mean every model).
func checkFaultTokens(s *messages.FaultSpec) error {
	var errs []error
	if id := s.GetId(); id != "" {
		if err := ValidToken("fault id", id); err != nil {
			errs = append(errs, err)
		}
	}
	if m := s.GetModel(); m != "" && m != "*" {
		if err := ValidToken("model", m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ErrPartitioned is the error every dial gets while a Partition is cut.
var ErrPartitioned = errors.New("cut off from NATS by a chaos partition")

// Partition cuts one client connection off NATS on demand, for chaos. Give
// it to Connect in ConnectOptions.Partition. While it is cut, every dial is
// refused and the current connection is dropped, so to the deployment the
// node looks like one behind a network partition: its subscriptions leave
// the servers, requests find no responder from it, it publishes nothing
// (nats.go buffers what it sends meanwhile); the client keeps trying with
// its reconnect backoff. Heal lets dials through again and makes the client
// try at once, without waiting out its backoff. A Partition serves one
// connection, and its methods are safe for concurrent use.
type Partition struct {
	mu      sync.Mutex // guards cut, nc and refused
	cut     bool
	nc      *nats.Conn
	refused int
}

// NewPartition returns a Partition that is not cut.
func NewPartition() *Partition { return &Partition{} }

// attach is called by Connect with the connection p controls.
func (p *Partition) attach(nc *nats.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nc = nc
}

// Cut refuses dials and drops the current connection. Cutting a cut
// Partition does nothing. It fails when no connection is attached or the
// connection is closed.
func (p *Partition) Cut() error {
	p.mu.Lock()
	nc, was := p.nc, p.cut
	if nc != nil {
		p.cut = true
	}
	p.mu.Unlock()
	switch {
	case nc == nil:
		return errors.New("partition: no connection attached (was it given to Connect?)")
	case was:
		return nil
	}
	return nc.ForceReconnect()
}

// Heal lets dials through and, when the client is between reconnect
// attempts, makes it try at once. Healing a Partition that is not cut does
// nothing.
func (p *Partition) Heal() error {
	p.mu.Lock()
	nc, was := p.nc, p.cut
	p.cut = false
	p.mu.Unlock()
	if !was || nc == nil || nc.IsClosed() {
		return nil
	}
	// Reconnecting since the cut: ForceReconnect only cuts its backoff
	// short. (Had the client reconnected between the unlock and here,
	// it would drop that connection and reconnect at once: harmless.)
	if nc.IsReconnecting() {
		return nc.ForceReconnect()
	}
	return nil
}

// IsCut says whether dials are refused.
func (p *Partition) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Refused returns how many dials were refused since p was made.
func (p *Partition) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// refuse says whether a dial must be refused now, and counts it.
func (p *Partition) refuse() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		p.refused++
	}
	return p.cut
}

// dialer is the nats.CustomDialer of a connection with a Partition: a
// net.Dialer with the connect timeout, refusing while the Partition is cut.
type dialer struct {
	p *Partition
	d net.Dialer
}

func (d dialer) Dial(network, address string) (net.Conn, error) {
	if d.p.refuse() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: ErrPartitioned}
	}
	return d.d.Dial(network, address)
}
