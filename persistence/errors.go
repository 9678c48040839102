package persistence

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors of package persistence, matched with errors.Is.
var (
	// ErrUnavailable marks a NATS deployment without JetStream (not enabled
	// on the server or for the account, nobody answering the JetStream API,
	// or the API timing out). A node can run without persistence and say so.
	ErrUnavailable = errors.New("jetstream unavailable")

	// ErrNoStream marks an audit read against a deployment where no node
	// with persistence has created the audit stream yet.
	ErrNoStream = errors.New("no audit stream")

	// ErrInvalidConfig marks a Config that Open refuses; the error names
	// the field and the bound.
	ErrInvalidConfig = errors.New("invalid persistence config")
)

// wrap adds op to err, and ErrUnavailable when err says JetStream cannot
// be reached, so that callers need not know nats.go's many ways of saying
// it.
func wrap(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrJetStreamNotEnabled) ||
		errors.Is(err, nats.ErrJetStreamNotEnabledForAccount) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded)
}
