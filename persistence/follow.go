package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cmmv-hive/resilience/bus"
)

// FollowEvents calls fn with every live event q selects (Since and Follow
// are ignored), as nodes publish them, on the caller's goroutine, until ctx
// ends; then it returns nil. It subscribes with core NATS, so it works
// without JetStream but sees nothing published before it started (use
// ReadAudit for that). Filtering and undecodable events are as in
// ReadAudit; Entry.Seq is 0. An error from fn stops it and is returned as
// is.
func FollowEvents(ctx context.Context, nc *nats.Conn, s bus.Subjects, q Query, fn func(Entry) error) error {
	// One subscription on every event, filtered here: the filters of
	// ReadAudit would need several subscriptions, whose messages could
	// not be read in order from one goroutine.
	sub, err := nc.SubscribeSync(s.Events())
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", s.Events(), err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow %s: %w", s.Events(), err)
		}
		e, _ := DecodeEvent(s, msg.Subject, msg.Header, msg.Data, time.Now()) // undecodable: Event nil
		if matches(e, q) {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}
