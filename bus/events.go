package bus

import (
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/cmmv-hive/resilience/messages"
)

// Events publishes a node's health, breaker, recovery and alert events on
// their subjects (see Subjects), JSON-encoded by default (so that `nats sub
// 'hive.v1.events.>'` shows them as text; events are few, so the encoding
// costs nothing that matters) or protobuf (WithEncoding), with the
// Content-Type and Hive-Type headers. Consumers decode either by the
// header. Publishing only buffers in the connection, so the actors that
// call it never wait on the network. It is safe for concurrent use.
type Events struct {
	nc       *nats.Conn
	subjects Subjects
	enc      Encoding
	log      zerolog.Logger
}

// NewEvents returns a JSON publisher on nc. log receives publish failures.
func NewEvents(nc *nats.Conn, s Subjects, log zerolog.Logger) *Events {
	return &Events{nc: nc, subjects: s, enc: JSON, log: log}
}

// WithEncoding returns a publisher like e that encodes in enc.
func (e *Events) WithEncoding(enc Encoding) *Events {
	c := *e
	c.enc = enc
	return &c
}

// Encoding is the encoding e publishes in.
func (e *Events) Encoding() Encoding {
	if e == nil {
		return JSON
	}
	return e.enc
}

// Breaker publishes on hive.v1.events.breaker.<node>.<model>.
func (e *Events) Breaker(ev *messages.BreakerTransition) {
	e.publish(e.subjects.Breaker(ev.GetNode(), ev.GetModel()), ev)
}

// Health publishes on hive.v1.events.health.<node>.<model>.
func (e *Events) Health(ev *messages.HealthChanged) {
	e.publish(e.subjects.Health(ev.GetNode(), ev.GetModel()), ev)
}

// Recovery publishes on hive.v1.events.recovery.<node>.<model>.
func (e *Events) Recovery(ev *messages.RecoveryEvent) {
	e.publish(e.subjects.Recovery(ev.GetNode(), ev.GetModel()), ev)
}

// Alert publishes on hive.v1.events.alert.<severity>.<rule>.
func (e *Events) Alert(ev *messages.Alert) {
	e.publish(e.subjects.Alert(ev.GetSeverity().String(), ev.GetRule()), ev)
}

func (e *Events) publish(subject string, m proto.Message) {
	if err := publish(e.nc, subject, e.enc, m); err != nil {
		e.log.Warn().Err(err).Str("subject", subject).Msg("event not published")
	}
}

// SubscribeHealth delivers every node's HealthChanged and
// BreakerTransition events to fn (from the subscription's goroutine, one
// at a time). An event that does not declare its type (TypeHeader) or does
// not decode is logged and skipped.
func SubscribeHealth(nc *nats.Conn, s Subjects, log zerolog.Logger, fn func(proto.Message)) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, sub := range []struct {
		subject string
		decode  func() proto.Message
	}{
		{s.Health("*", "*"), func() proto.Message { return &messages.HealthChanged{} }},
		{s.Breaker("*", "*"), func() proto.Message { return &messages.BreakerTransition{} }},
	} {
		decode := sub.decode
		ns, err := nc.Subscribe(sub.subject, func(msg *nats.Msg) {
			ev := decode()
			if err := DecodeTyped(msg.Header, msg.Data, ev); err != nil {
				log.Warn().Err(err).Str("subject", msg.Subject).Msg("event skipped")
				return
			}
			fn(ev)
		})
		if err != nil {
			for _, done := range subs {
				_ = done.Unsubscribe()
			}
			return nil, err
		}
		subs = append(subs, ns)
	}
	return subs, nil
}
