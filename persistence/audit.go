package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmv-hive/resilience/bus"
	"github.com/cmmv-hive/resilience/messages"
)

// Event kinds: the subject token after <prefix>.v1.events.
const (
	KindHealth   = "health"
	KindBreaker  = "breaker"
	KindRecovery = "recovery"
	KindAlert    = "alert"
	KindAdmin    = "admin"
)

// Entry is one event of the audit trail, or of the live event subjects.
type Entry struct {
	Seq     uint64    // stream sequence; 0 outside the audit stream
	Time    time.Time // the event's own time when it has one, else when it was stored or received
	Subject string
	Kind    string // KindHealth, KindBreaker, ...; the subject's token for kinds this version does not know
	// Node and Model come from the subject, or from the event for alerts
	// (both) and admin commands (the model); "" when unknown.
	Node, Model string
	// Event is the decoded *messages.HealthChanged, *BreakerTransition,
	// *RecoveryEvent, *Alert or *AdminCommand; nil when the kind is unknown
	// or the body does not decode.
	Event proto.Message
}

// DecodeEvent turns a message received on an event subject of s into an
// Entry, decoding the body by its Content-Type header (protobuf by
// default) once its Hive-Type header names the kind's message (see
// bus.TypeHeader). The Entry is filled from the subject even when the body
// does not decode or declares another type: then Event is nil and the
// error says why. received is the
// Entry's time when the event carries none.
func DecodeEvent(s bus.Subjects, subject string, h nats.Header, body []byte, received time.Time) (Entry, error) {
	e := Entry{Subject: subject, Time: received}
	tokens := strings.Split(strings.TrimPrefix(subject, eventsBase(s)), ".")
	e.Kind = tokens[0]
	if len(tokens) == 3 && e.Kind != KindAlert { // alert tokens are severity and rule
		e.Node = tokens[1]
		if e.Kind != KindAdmin { // admin's last token is the command
			e.Model = tokens[2]
		}
	}
	var m proto.Message
	switch e.Kind {
	case KindHealth:
		m = &messages.HealthChanged{}
	case KindBreaker:
		m = &messages.BreakerTransition{}
	case KindRecovery:
		m = &messages.RecoveryEvent{}
	case KindAlert:
		m = &messages.Alert{}
	case KindAdmin:
		m = &messages.AdminCommand{}
	default:
		return e, fmt.Errorf("%s: unknown event kind %q", subject, e.Kind)
	}
	// Only events that declare their type count: a message of another
	// kind on an event subject is never taken for an event.
	if err := bus.DecodeTyped(h, body, m); err != nil {
		return e, fmt.Errorf("%s: %w", subject, err)
	}
	e.Event = m
	switch m := m.(type) {
	case *messages.Alert:
		e.Node, e.Model = m.GetNode(), m.GetModel()
	case *messages.AdminCommand:
		e.Model = m.GetModel()
	}
	if t, ok := m.(interface{ GetTime() *timestamppb.Timestamp }); ok && t.GetTime() != nil {
		e.Time = t.GetTime().AsTime()
	}
	return e, nil
}

// eventsBase is "<prefix>.v1.events.", taken from bus so that the subject
// hierarchy stays defined in one place.
func eventsBase(s bus.Subjects) string { return strings.TrimSuffix(s.Events(), ">") }

// Query selects audit entries. The zero value reads everything once.
type Query struct {
	Since  time.Duration // only events stored in the last Since; 0 means all
	Model  string        // only this model's events; "" means all
	Node   string        // only this node's events; "" means all
	Follow bool          // keep delivering new events until ctx ends
}

// ReadAudit calls fn with every audit entry q selects, oldest first, on
// the caller's goroutine. Without Follow it returns nil at the end of the
// stream as it is when reading catches up; with Follow it keeps waiting for
// new events and returns nil when ctx ends. An error from fn stops the read
// and is returned as is.
//
// With Model or Node set, alerts are kept when their own node and model
// fields match, admin commands when their model field matches, so an
// undecodable alert or admin command is left out; without filters it is
// delivered with Event nil rather than hidden. Errors match ErrNoStream when
// the audit stream does not exist and ErrUnavailable without JetStream.
func ReadAudit(ctx context.Context, nc *nats.Conn, s bus.Subjects, q Query, fn func(Entry) error) error {
	var from time.Time
	if q.Since > 0 {
		from = time.Now().Add(-q.Since)
	}
	return readAudit(ctx, nc, s, q, from, fn)
}

// readAudit is ReadAudit from a point in time (zero: the beginning), so
// tests need not race the clock.
func readAudit(ctx context.Context, nc *nats.Conn, s bus.Subjects, q Query, from time.Time, fn func(Entry) error) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return wrap("jetstream", err)
	}
	stream := StreamName(s)
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: filterSubjects(s, q.Node, q.Model),
		// The server drops the consumer this long after the read ends,
		// rather than the default 5 minutes: every `hive-node audit` makes
		// one. Should a slow fn let it lapse, the ordered consumer
		// recreates it where it left off.
		InactiveThreshold: 30 * time.Second,
	}
	if !from.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("audit stream %s: %w", stream, ErrNoStream)
	}
	if err != nil {
		return wrap("audit stream "+stream, err)
	}
	// NumPending at creation counts what matches now; without Follow
	// there is nothing to wait for when it is 0.
	if !q.Follow && cons.CachedInfo().NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return wrap("audit stream "+stream, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			switch {
			case ctx.Err() != nil && q.Follow:
				return nil
			case ctx.Err() != nil: // the caller's deadline, not JetStream's
				return fmt.Errorf("read audit stream %s: %w", stream, ctx.Err())
			}
			return wrap("read audit stream "+stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return wrap("read audit stream "+stream, err)
		}
		e, _ := DecodeEvent(s, msg.Subject(), msg.Headers(), msg.Data(), meta.Timestamp) // undecodable: Event nil, see above
		e.Seq = meta.Sequence.Stream
		if matches(e, q) {
			if err := fn(e); err != nil {
				return err
			}
		}
		if !q.Follow && meta.NumPending == 0 {
			return nil
		}
	}
}

// filterSubjects narrows the consumer to node and model where the subjects
// carry them. Alert subjects carry neither and admin subjects no model:
// matches finishes those after decoding.
func filterSubjects(s bus.Subjects, node, model string) []string {
	if node == "" && model == "" {
		return nil // the whole stream
	}
	n, m := or(node, "*"), or(model, "*")
	return []string{
		s.Health(n, m), s.Breaker(n, m), s.Recovery(n, m),
		s.Alert("*", "*"),
		s.AdminAudit(n, "*"),
	}
}

// matches applies the filters the subject could not.
func matches(e Entry, q Query) bool {
	return (q.Node == "" || e.Node == q.Node) && (q.Model == "" || e.Model == q.Model)
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}
